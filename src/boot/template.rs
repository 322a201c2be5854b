//! Install templates: the kickstart, AutoYaST or preseed file a node fetches from
//! `/install/autoinst/<node>`, chosen and expanded as xCAT's `nodeset` (`anaconda.pm`, `sles.pm`,
//! `debian.pm` and `Template.pm`) would have written it — rendered when asked for, never stale.
//!
//! **Which file.** `linuximage.template` of the node's osimage when set; otherwise the first
//! readable name of [`candidates`] in `<installdir>/custom/install/<platform>/`, then in the shipped
//! directory ([`TemplateDirs`]). The platform directory is xCAT's: `rh`, `centos`, `alma`, `rocky`,
//! `fedora`, `SL`, `ol`, `sles` (also leap15), `sle`, `suse`, `debian`, `ubuntu` ([`platform`]).
//! The shipped directory is flat, so one more step, `<profile>.<family>[.<arch>].tmpl` with family
//! `rhels`, `sles`, `debian` or `ubuntu`, comes before `<profile>.<arch>.tmpl` — that is how
//! `compute.rhels.tmpl` serves every RHEL-family release.
//!
//! **Directives** (one line each; an argument may nest `#ENV:…#`/`#XCATVAR:…#`):
//! `#TABLE:tab:key:col#` (key `THISNODE`, `$NODE`, a node name, or `col=value[,col=value]`; a
//! missing value is an error except that `noderes.nfsserver`/`tftpserver` fall back to
//! `noderes.xcatmaster`, which falls back to the server's address facing the node),
//! `#TABLEBLANKOKAY:…#` (missing is empty), `#XCATVAR:name#` and `#ENV:name#` (the variables of
//! [`install_vars`]; undefined is empty), `#INCLUDE:path#` (relative paths from the top template's
//! directory, then from the shipped directory; `$VAR` in the path is substituted),
//! `#INCLUDE_NOP:path#` (verbatim, `$` and backquote escaped), `#INCLUDE_PKGLIST:…#`,
//! `#INCLUDE_PTRNLIST:…#`, `#INCLUDE_RMPKGLIST:…#` (AutoYaST `<package>`/`<pattern>` lines; nested
//! `#INCLUDE:#` lines keep the mode), `#INCLUDE_DEFAULT_PKGLIST#` (+`_S`, `PTRNLIST_S`,
//! `RMPKGLIST_S`, `_PRESEED`: the image's package list), `#CRYPT:tab:k=v,…:col#` and
//! `#CRYPTORLOCKED:…#`, `#COMMAND:cmd#`, `#HOSTNAME#`, `#SHORTNAME#`, `#COLONHTTPPORT#`,
//! `#KICKSTARTNET#`, `#KICKSTARTBOOTLOADER#`, `#GETNODEDOMAIN:THISNODE#`, `#GETPRINICMAC:THISNODE#`,
//! `#MANAGEDADDRESSMODE#`, `#INSTALL_SOURCES#`, `#INSTALL_SOURCES_IN_PRE#`, `#WRITEREPO#`, and the
//! markers `#XCAT_PARTITION_START#`… and `#UNCOMMENTOENABLEDEBUGPORT#`/`#UNCOMMENTOENABLESSH#`.
//! A directive is `#` + an upper-case name + `#` or `:args#`; any other such name is an error naming
//! the file and line, as is a missing include or includes nested deeper than
//! [`MAX_INCLUDE_DEPTH`]. Rendered values are never scanned again. `#CRYPT:…#` passes an
//! already-crypted value (`$6$…`, `$y$…`, …) through and otherwise writes SHA-512 crypt (SHA-256
//! when the row's cryptmethod says `sha256`) with a random 16-character salt; `*` when
//! site.secureroot is 1.
//!
//! **What the shipped templates call** (`netboot-templates/install/scripts/`), with
//! `M` = `MASTER_IP` and `P` = site.httpport: `GET http://M:P/xcat/node/installstatus/installing`
//! before installing, `GET http://M:P/xcat/node/getpostscript` for the node's mypostscript,
//! `GET http://M:P<installdir>/postscripts/<script>` for each listed script and `xcatlib.sh`,
//! `GET http://M:P/xcat/node/next` when done (always), `…/installstatus/failed` when the
//! configuration cannot be fetched, and at first boot `…/installstatus/postbooting` then
//! `…/installstatus/booted` or `…/failed`. When HTTP fails and bash is there, the same words go
//! over xCAT's port-3002 protocol (site.xcatiport). The preseeds fetch
//! `http://<nfsserver>:P/install/autoinst/<node>.pre` and `.post` ([`Part`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::store::resolver::Resolver;
use crate::store::{column_index, StoreError};

/// How deep `#INCLUDE:#` may nest; deeper is taken to be a file including itself.
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// How long a `#COMMAND:…#` may run: rendering answers a node's HTTP request.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong rendering a template.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node's definition is incomplete for an install.
    #[error("{node}: {problem}")]
    Node { node: String, problem: String },
    /// No template matched (the message lists what was tried where).
    #[error("{node}: {problem}")]
    NoTemplate { node: String, problem: String },
    /// A problem at one line of one template file.
    #[error("{}:{line}: {problem}", file.display())]
    At {
        file: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where templates are looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateDirs {
    /// The site's own templates, `<installdir>/custom/install`, with one directory per platform.
    pub custom: PathBuf,
    /// The shipped `netboot-templates/install` (flat).
    pub shipped: PathBuf,
}

impl TemplateDirs {
    /// `<installdir>/custom/install` and [`shipped_root`]`/install`.
    pub fn new(installdir: &Path) -> TemplateDirs {
        TemplateDirs {
            custom: installdir.join("custom").join("install"),
            shipped: shipped_root().join("install"),
        }
    }
}

/// The shipped `netboot-templates` directory: `$BOOTHERD_TEMPLATES` when set; else
/// `<prefix>/share/bootherd/netboot-templates` when the binary is `<prefix>/bin/bootherd` and that
/// directory exists (an installed package); else the source tree's copy, so that `cargo run` and
/// the tests work without installing anything.
pub fn shipped_root() -> PathBuf {
    if let Some(p) = std::env::var_os("BOOTHERD_TEMPLATES").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(prefix) = exe.parent().and_then(Path::parent) {
            let p = prefix.join("share/bootherd/netboot-templates");
            if p.is_dir() {
                return p;
            }
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("netboot-templates")
}

/// A file shipped beside `netboot-templates` (`statelite/rc.statelite`, `initrd/mknb.sh`, …):
/// next to the shipped templates when installed, else in the source tree.
pub fn shipped_file(rel: &str) -> PathBuf {
    match shipped_root().parent().map(|p| p.join(rel)) {
        Some(p) if p.exists() => p,
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel),
    }
}

/// The installer family, which decides the format and the shipped template's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Rhel,
    Sles,
    Debian,
    Ubuntu,
}

impl Family {
    /// The name in shipped templates: `compute.<name>.tmpl`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Rhel => "rhels",
            Family::Sles => "sles",
            Family::Debian => "debian",
            Family::Ubuntu => "ubuntu",
        }
    }

    /// The installer's file format, for messages.
    pub fn kind(self) -> &'static str {
        match self {
            Family::Rhel => "kickstart",
            Family::Sles => "AutoYaST",
            Family::Debian | Family::Ubuntu => "preseed",
        }
    }
}

/// An OS's xCAT platform directory and family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    /// The directory under `custom/install/` (xCAT's `getplatform`).
    pub dir: &'static str,
    pub family: Family,
}

/// xCAT's platform for an OS name (`rhels8.6`, `rocky9.2`, `sle15.4`, `ubuntu20.04`, …); `None`
/// for OSes that are not installed from a template (AIX, Windows, ESXi).
pub fn platform(os: &str) -> Option<Platform> {
    // Order matters: "sles" before "sle". xCAT matches anywhere in the name; a prefix is what every
    // real OS name has, and does not mistake e.g. "openSUSE" for "SL".
    const TABLE: &[(&str, &str, Family)] = &[
        ("rh", "rh", Family::Rhel),
        ("centos", "centos", Family::Rhel),
        ("alma", "alma", Family::Rhel),
        ("rocky", "rocky", Family::Rhel),
        ("fedora", "fedora", Family::Rhel),
        ("SL", "SL", Family::Rhel),
        ("ol", "ol", Family::Rhel),
        ("sles", "sles", Family::Sles),
        ("leap15", "sles", Family::Sles),
        ("sle", "sle", Family::Sles),
        ("suse", "suse", Family::Sles),
        ("debian", "debian", Family::Debian),
        ("ubuntu", "ubuntu", Family::Ubuntu),
    ];
    TABLE
        .iter()
        .find(|(prefix, _, _)| os.starts_with(prefix))
        .map(|(_, dir, family)| Platform {
            dir,
            family: *family,
        })
}

/// xCAT's `get_os_search_list`: `rhels8.6` → rhels8.6, rhels8.5 … rhels8.0, rhels8; a zero-padded
/// minor (`ubuntu22.04`) stops at itself; leap15 also tries sle15.
pub fn os_search_list(os: &str) -> Vec<String> {
    let base = os.split('-').next().unwrap_or(os);
    let mut words: Vec<&str> = base.split('.').collect();
    let mut list = Vec::new();
    while let Some(last) = words.last().copied() {
        if last.is_empty() || !last.bytes().all(|b| b.is_ascii_digit()) {
            break;
        }
        words.pop();
        let prefix = words.join(".");
        let join = |n: &str| {
            if prefix.is_empty() {
                n.to_string()
            } else {
                format!("{prefix}.{n}")
            }
        };
        if last.len() > 1 && last.starts_with('0') {
            list.push(join(last));
            return list;
        }
        let width = last.len();
        let Ok(mut n) = last.parse::<u64>() else {
            break;
        };
        loop {
            let padded = format!("{n:0width$}");
            list.push(join(&padded));
            if padded.len() > 1 && padded.starts_with('0') {
                list.push(join(&n.to_string()));
            }
            if n == 0 {
                break;
            }
            n -= 1;
        }
    }
    list.push(words.join("."));
    if base == "leap15" || base.starts_with("leap15.") {
        list.push("sle15".into());
    }
    list
}

/// File names tried, most specific first (xCAT's `get_file_name` plus the family step):
/// `p.os.arch`, `p.os`, `p.genos.arch`, `p.genos` (for each genos), then for each `os_search_list`
/// entry `p.b.arch`, `p.b`, then `p.family.arch`, `p.family`, `p.arch`, `p`.
pub fn candidates(
    profile: &str,
    os: &str,
    arch: &str,
    genos: &[String],
    family: Option<&str>,
    ext: &str,
) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !v.contains(&s) {
            v.push(s);
        }
    };
    push(format!("{profile}.{os}.{arch}.{ext}"));
    push(format!("{profile}.{os}.{ext}"));
    for g in genos {
        push(format!("{profile}.{g}.{arch}.{ext}"));
        push(format!("{profile}.{g}.{ext}"));
    }
    for b in os_search_list(os) {
        push(format!("{profile}.{b}.{arch}.{ext}"));
        push(format!("{profile}.{b}.{ext}"));
    }
    if let Some(f) = family {
        push(format!("{profile}.{f}.{arch}.{ext}"));
        push(format!("{profile}.{f}.{ext}"));
    }
    push(format!("{profile}.{arch}.{ext}"));
    push(format!("{profile}.{ext}"));
    v
}

/// What the node is to install, from its osimage (nodetype.provmethod) or, for a node set up the
/// old way, from nodetype.os/arch/profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallFacts {
    pub node: String,
    /// The osimage name, when nodetype.provmethod names one.
    pub image: Option<String>,
    pub os: String,
    pub arch: String,
    pub profile: String,
    pub platform: Platform,
    /// linuximage.template.
    pub template: Option<String>,
    /// linuximage.pkglist (comma-separated files).
    pub pkglist: Option<String>,
    /// linuximage.pkgdir split at commas, else `<installdir>/<os>/<arch>`; the first is the OS media.
    pub pkgdirs: Vec<String>,
    /// linuximage.partitionfile.
    pub partitionfile: Option<String>,
    /// Kernel options for the installed system: `R::` words of bootparams.addkcmdline and (unless
    /// linuximage.boottarget is set) linuximage.addkcmdline.
    pub persistent_kcmdline: String,
    /// osimage.environvar.
    pub environvar: Option<String>,
    /// xCAT's "generic OS" names tried after the exact OS (nodetype-based installs only).
    pub genos: Vec<String>,
}

/// The first non-empty value of `col` in the row keyed `key` (tables keyed by image name etc.).
pub(crate) fn row_value(
    r: &Resolver,
    table: &str,
    key: &str,
    col: &str,
) -> Result<Option<String>, StoreError> {
    let t = r.table(table)?;
    let i = column_index(t.spec, col)?;
    let v = t
        .rows_for(key)
        .find_map(|row| row.get(i).cloned().flatten().filter(|v| !v.is_empty()));
    Ok(v)
}

/// The image a node's provmethod names (not `install`/`netboot`/`statelite`, which are the old
/// nodetype-based methods).
pub(crate) fn image_of(r: &Resolver, node: &str) -> Result<Option<String>, StoreError> {
    Ok(r.attr(node, "nodetype", "provmethod")?
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty() && !matches!(p.as_str(), "install" | "netboot" | "statelite")))
}

fn installdir(r: &Resolver) -> Result<String, StoreError> {
    Ok(r.site("installdir")?.unwrap_or_else(|| "/install".into()))
}

/// Gathers a node's install facts.
pub fn install_facts(r: &Resolver, node: &str) -> Result<InstallFacts, TemplateError> {
    let err = |problem: String| TemplateError::Node {
        node: node.to_string(),
        problem,
    };
    let image = image_of(r, node)?;
    let (os, arch, profile, mut missing) = match &image {
        Some(img) => {
            if r.table("osimage")?.rows_for(img).next().is_none() {
                return Err(err(format!(
                    "nodetype.provmethod names osimage '{img}', which does not exist"
                )));
            }
            let g = |c: &str| row_value(r, "osimage", img, c);
            let (os, arch, profile) = (g("osvers")?, g("osarch")?, g("profile")?);
            let mut m = Vec::new();
            for (v, n) in [(&os, "osvers"), (&arch, "osarch"), (&profile, "profile")] {
                if v.is_none() {
                    m.push(format!("osimage.{n}"));
                }
            }
            (os, arch, profile, m)
        }
        None => {
            let g = |c: &str| r.attr(node, "nodetype", c);
            let (os, arch, profile) = (g("os")?, g("arch")?, g("profile")?);
            let mut m = Vec::new();
            for (v, n) in [(&os, "os"), (&arch, "arch"), (&profile, "profile")] {
                if v.is_none() {
                    m.push(format!("nodetype.{n}"));
                }
            }
            (os, arch, profile, m)
        }
    };
    if !missing.is_empty() {
        missing.insert(0, "missing".into());
        return Err(err(missing.join(" ")));
    }
    let (os, arch, profile) = (
        os.unwrap_or_default(),
        arch.unwrap_or_default(),
        profile.unwrap_or_default(),
    );
    let Some(platform) = platform(&os) else {
        return Err(err(format!(
            "'{os}' is not an OS bootherd installs from a template (RHEL family, SLES, Debian, Ubuntu)"
        )));
    };
    let li = |c: &str| -> Result<Option<String>, StoreError> {
        match &image {
            Some(img) => row_value(r, "linuximage", img, c),
            None => Ok(None),
        }
    };
    let pkgdirs: Vec<String> = match li("pkgdir")? {
        Some(p) => p
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        None => vec![format!("{}/{os}/{arch}", installdir(r)?)],
    };
    // Kernel options for the installed system are the R:: words (xCAT's splitkcmdline).
    let mut kopts = r
        .attr(node, "bootparams", "addkcmdline")?
        .unwrap_or_default();
    if li("boottarget")?.is_none() {
        if let Some(a) = li("addkcmdline")? {
            kopts.push(' ');
            kopts.push_str(&a);
        }
    }
    let persistent_kcmdline = kopts
        .split(' ')
        .filter_map(|w| w.strip_prefix("R::"))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    // The old nodetype-based path also tries the OS without its minor version, and for RHEL
    // "rhel<major>" (anaconda.pm/debian.pm); an osimage-based install does not.
    let mut genos = Vec::new();
    if image.is_none()
        && matches!(
            platform.family,
            Family::Rhel | Family::Debian | Family::Ubuntu
        )
    {
        let g = os.split('.').next().unwrap_or(&os).to_string();
        if platform.family == Family::Rhel && g.starts_with("rh") {
            let digits: String = g
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            genos.push(g.clone());
            if !digits.is_empty() {
                genos.push(format!("rhel{digits}"));
            }
        } else {
            genos.push(g);
        }
    }
    Ok(InstallFacts {
        node: node.to_string(),
        environvar: match &image {
            Some(img) => row_value(r, "osimage", img, "environvar")?,
            None => None,
        },
        template: li("template")?,
        pkglist: li("pkglist")?,
        partitionfile: li("partitionfile")?,
        image,
        os,
        arch,
        profile,
        platform,
        pkgdirs,
        persistent_kcmdline,
        genos,
    })
}

fn find_in(dir: &Path, names: &[String]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// The file names tried for a node, in order.
pub fn template_candidates(facts: &InstallFacts, ext: &str) -> Vec<String> {
    candidates(
        &facts.profile,
        &facts.os,
        &facts.arch,
        &facts.genos,
        Some(facts.platform.family.name()),
        ext,
    )
}

/// Looks up `ext` files (`tmpl`, `pkglist`) for the node: custom platform directory first.
fn find_for(dirs: &TemplateDirs, facts: &InstallFacts, ext: &str) -> Option<PathBuf> {
    let names = template_candidates(facts, ext);
    find_in(&dirs.custom.join(facts.platform.dir), &names)
        .or_else(|| find_in(&dirs.shipped, &names))
}

/// The template a node's install uses.
pub fn template_path(dirs: &TemplateDirs, facts: &InstallFacts) -> Result<PathBuf, TemplateError> {
    if let Some(t) = &facts.template {
        return Ok(PathBuf::from(t));
    }
    find_for(dirs, facts, "tmpl").ok_or_else(|| TemplateError::NoTemplate {
        node: facts.node.clone(),
        problem: format!(
            "no {} template for profile '{}' (os {}, arch {}); looked for {} in {} and {}",
            facts.platform.family.kind(),
            facts.profile,
            facts.os,
            facts.arch,
            template_candidates(facts, "tmpl").join(", "),
            dirs.custom.join(facts.platform.dir).display(),
            dirs.shipped.display()
        ),
    })
}

/// Which file of an install is asked for: the main template, or (Debian/Ubuntu, whose preseed
/// runs them by URL, as xCAT's) `<node>.pre` / `<node>.post`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Main,
    Pre,
    Post,
}

impl Part {
    /// Splits an `/install/autoinst/` file name: `n1` → (n1, Main), `n1.pre` → (n1, Pre).
    /// Node names may contain dots, so a caller whose node list holds the whole name (`n1.pre`)
    /// should prefer it.
    pub fn split(name: &str) -> (&str, Part) {
        if let Some(n) = name.strip_suffix(".pre") {
            (n, Part::Pre)
        } else if let Some(n) = name.strip_suffix(".post") {
            (n, Part::Post)
        } else {
            (name, Part::Main)
        }
    }
}

fn part_path(
    dirs: &TemplateDirs,
    facts: &InstallFacts,
    part: Part,
) -> Result<PathBuf, TemplateError> {
    let word = if part == Part::Pre { "pre" } else { "post" };
    let name = format!("{word}.{}", facts.platform.dir);
    let tried = [
        dirs.custom.join("scripts").join(&name),
        dirs.shipped.join("scripts").join(&name),
    ];
    tried
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| TemplateError::Node {
            node: facts.node.clone(),
            problem: format!(
                "no {word} script for platform {} ({} or {})",
                facts.platform.dir,
                tried[0].display(),
                tried[1].display()
            ),
        })
}

/// A rendered install file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    /// The template it came from.
    pub template: PathBuf,
    pub platform: Platform,
}

/// Renders `node`'s kickstart/AutoYaST/preseed. `server` is this server's address as the node sees
/// it (the master when noderes.xcatmaster is unset, as xCAT's `my_ip_facing`).
pub fn render_install(
    r: &Resolver,
    node: &str,
    dirs: &TemplateDirs,
    server: &str,
) -> Result<Rendered, TemplateError> {
    render_install_part(r, node, dirs, server, Part::Main)
}

/// Renders one [`Part`] of `node`'s install.
pub fn render_install_part(
    r: &Resolver,
    node: &str,
    dirs: &TemplateDirs,
    server: &str,
    part: Part,
) -> Result<Rendered, TemplateError> {
    let facts = install_facts(r, node)?;
    if let Some(pf) = &facts.partitionfile {
        // Refused rather than ignored: installing with a layout other than the one asked for
        // could wipe what the partition file meant to keep.
        return Err(TemplateError::Node {
            node: node.to_string(),
            problem: format!(
                "linuximage.partitionfile ({pf}) is set, and bootherd does not support partition files yet"
            ),
        });
    }
    let path = match part {
        Part::Main => template_path(dirs, &facts)?,
        Part::Pre | Part::Post => part_path(dirs, &facts, part)?,
    };
    let text = std::fs::read_to_string(&path).map_err(|source| TemplateError::Io {
        path: path.clone(),
        source,
    })?;
    let vars = install_vars(r, &facts, server, dirs)?;
    let pkglists = match &facts.pkglist {
        Some(p) => p
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect(),
        None => find_for(dirs, &facts, "pkglist").into_iter().collect(),
    };
    let debugmode = r.site("xcatdebugmode")?.unwrap_or_default();
    let mut ex = Expander {
        r,
        node,
        server,
        facts: &facts,
        vars: &vars,
        top_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        shipped: &dirs.shipped,
        pkglists,
        debugmode,
        secureroot: r.site("secureroot")?.as_deref() == Some("1"),
        depth: 0,
    };
    let text = scan_text(&mut ex, &path, &text)?;
    Ok(Rendered {
        text,
        template: path,
        platform: facts.platform,
    })
}

/// This server's master address for `node`: noderes.xcatmaster, else `server` (the address facing
/// the node), else site.master.
pub(crate) fn master_for(
    r: &Resolver,
    node: &str,
    server: &str,
) -> Result<Option<String>, StoreError> {
    if let Some(m) = r.attr(node, "noderes", "xcatmaster")? {
        return Ok(Some(m));
    }
    if !server.trim().is_empty() {
        return Ok(Some(server.trim().to_string()));
    }
    r.site_master()
}

/// An address for a host name: itself when it is one, else hosts.ip, else the system resolver
/// (IPv4 first).
pub(crate) fn resolve_ip(r: &Resolver, name: &str) -> Result<Option<String>, StoreError> {
    if name.parse::<IpAddr>().is_ok() {
        return Ok(Some(name.to_string()));
    }
    if let Some(ip) = r.attr(name, "hosts", "ip")? {
        return Ok(Some(ip));
    }
    let addrs: Vec<IpAddr> = (name, 0)
        .to_socket_addrs()
        .map(|a| a.map(|s| s.ip()).collect())
        .unwrap_or_default();
    Ok(addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .map(IpAddr::to_string))
}

/// The variables `#XCATVAR:…#` and `#ENV:…#` see. xCAT's: `XCATMASTER`, `MASTER_IP`, `NODESTATUS`,
/// `PERSKCMDLINE`, `INSTALLDIR`, `HTTPPORT`, `XCATROOT` (/opt/xcat) and osimage.environvar
/// (`NAME=value,…`); ours: `NODE`, `OSVER`, `ARCH`, `PROFILE`, `IMAGE`, `PLATFORM`, `PKGDIR` (the
/// first pkgdir), `XCATDPORT`, `XCATIPORT`, `TIMEZONE` (site.timezone, else UTC) and
/// `BOOTHERD_TEMPLATES` (the shipped install directory, for custom templates that include our
/// fragments).
pub fn install_vars(
    r: &Resolver,
    facts: &InstallFacts,
    server: &str,
    dirs: &TemplateDirs,
) -> Result<BTreeMap<String, String>, TemplateError> {
    let node = facts.node.as_str();
    let err = |problem: String| TemplateError::Node {
        node: node.to_string(),
        problem,
    };
    let mut v = BTreeMap::new();
    // environvar first: xCAT exports it into the environment before its own variables are set.
    for item in facts.environvar.as_deref().unwrap_or("").split(',') {
        if let Some((k, val)) = item.split_once('=') {
            let (k, val) = (k.trim(), val.trim());
            if !k.is_empty() && !k.contains(char::is_whitespace) {
                v.insert(k.to_string(), val.to_string());
            }
        }
    }
    let Some(master) = master_for(r, node, server)? else {
        return Err(err(
            "unable to identify the master (set noderes.xcatmaster or site.master)".into(),
        ));
    };
    let Some(master_ip) = resolve_ip(r, &master)? else {
        return Err(err(format!(
            "unable to resolve master '{master}' to an IP address"
        )));
    };
    let site = |k: &str, d: &str| -> Result<String, StoreError> {
        Ok(r.site(k)?.unwrap_or_else(|| d.to_string()))
    };
    let fixed = [
        ("XCATMASTER", master),
        ("MASTER_IP", master_ip),
        ("NODESTATUS", site("nodestatus", "")?),
        ("PERSKCMDLINE", facts.persistent_kcmdline.clone()),
        ("INSTALLDIR", installdir(r)?),
        ("HTTPPORT", site("httpport", "80")?),
        ("XCATROOT", "/opt/xcat".to_string()),
        ("NODE", node.to_string()),
        ("OSVER", facts.os.clone()),
        ("ARCH", facts.arch.clone()),
        ("PROFILE", facts.profile.clone()),
        ("IMAGE", facts.image.clone().unwrap_or_default()),
        ("PLATFORM", facts.platform.dir.to_string()),
        ("PKGDIR", facts.pkgdirs.first().cloned().unwrap_or_default()),
        ("XCATDPORT", site("xcatdport", "3001")?),
        ("XCATIPORT", site("xcatiport", "3002")?),
        ("TIMEZONE", site("timezone", "UTC")?),
        (
            "BOOTHERD_TEMPLATES",
            dirs.shipped.to_string_lossy().into_owned(),
        ),
    ];
    for (k, val) in fixed {
        v.insert(k.to_string(), val);
    }
    Ok(v)
}

/// Where a directive is, for errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Loc<'a> {
    pub file: &'a Path,
    pub line: usize,
}

impl Loc<'_> {
    pub(crate) fn err(&self, problem: impl Into<String>) -> TemplateError {
        TemplateError::At {
            file: self.file.to_path_buf(),
            line: self.line,
            problem: problem.into(),
        }
    }
}

/// A directive language: what each `#NAME…#` becomes.
pub(crate) trait Directives {
    /// The text replacing `raw` (`#name#` or `#name:args#`).
    fn expand(
        &mut self,
        loc: Loc<'_>,
        name: &str,
        args: Option<&str>,
        raw: &str,
    ) -> Result<String, TemplateError>;
    /// Whether `name` is a directive (an unterminated one is then an error, not text).
    fn is_known(&self, name: &str) -> bool;
}

/// Expands the directives of one line. A `#` not followed by an upper-case name and `#` or `:` is
/// text (shell comments, `${#x}`, `#!/bin/sh`); inside arguments, `#ENV:…#` and `#XCATVAR:…#` are
/// expanded first (`#INCLUDE:#ENV:XCATROOT#/x#`).
pub(crate) fn scan_line<D: Directives>(
    d: &mut D,
    loc: Loc<'_>,
    line: &str,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(line.len());
    let mut text_from = 0;
    let mut i = 0;
    while let Some(off) = line[i..].find('#') {
        let h = i + off;
        let name_end = h
            + 1
            + line[h + 1..]
                .bytes()
                .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
                .count();
        let name = &line[h + 1..name_end];
        if !name.as_bytes().first().is_some_and(u8::is_ascii_uppercase) {
            i = h + 1;
            continue;
        }
        match line.as_bytes().get(name_end) {
            Some(b'#') => {
                let v = d.expand(loc, name, None, &line[h..=name_end])?;
                out.push_str(&line[text_from..h]);
                out.push_str(&v);
                i = name_end + 1;
                text_from = i;
            }
            Some(b':') => {
                let mut args = String::new();
                let mut j = name_end + 1;
                let close = loop {
                    let Some(off) = line[j..].find('#') else {
                        break None;
                    };
                    let k = j + off;
                    args.push_str(&line[j..k]);
                    if let Some((nname, nargs, nend)) = nested_var(line, k) {
                        let v = d.expand(loc, nname, Some(nargs), &line[k..nend])?;
                        args.push_str(&v);
                        j = nend;
                        continue;
                    }
                    break Some(k);
                };
                match close {
                    Some(k) => {
                        let v = d.expand(loc, name, Some(&args), &line[h..=k])?;
                        out.push_str(&line[text_from..h]);
                        out.push_str(&v);
                        i = k + 1;
                        text_from = i;
                    }
                    None if d.is_known(name) => {
                        return Err(loc.err(format!(
                            "unterminated #{name}:…# directive (no closing '#' on this line)"
                        )));
                    }
                    None => i = h + 1,
                }
            }
            _ => i = h + 1,
        }
    }
    out.push_str(&line[text_from..]);
    Ok(out)
}

/// `#ENV:name#` or `#XCATVAR:name#` starting at `k`: (name, args, end).
fn nested_var(line: &str, k: usize) -> Option<(&str, &str, usize)> {
    let rest = &line[k + 1..];
    let (name, after) = if let Some(a) = rest.strip_prefix("ENV:") {
        ("ENV", a)
    } else if let Some(a) = rest.strip_prefix("XCATVAR:") {
        ("XCATVAR", a)
    } else {
        return None;
    };
    let close = after.find('#')?;
    if close == 0 {
        return None;
    }
    let args_start = line.len() - after.len();
    Some((name, &after[..close], args_start + close + 1))
}

/// Expands every line of `text` (from `file`).
pub(crate) fn scan_text<D: Directives>(
    d: &mut D,
    file: &Path,
    text: &str,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len() + 256);
    for (n, line) in text.split_inclusive('\n').enumerate() {
        out.push_str(&scan_line(d, Loc { file, line: n + 1 }, line)?);
    }
    Ok(out)
}

/// xCAT's `varsubinline`: `$NAME` and `${NAME}` in a path, for names that are defined.
fn subst_path_vars(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(b) = after.strip_prefix('{') {
            match b.find('}') {
                Some(e) => (&b[..e], e + 2),
                None => ("", 0),
            }
        } else {
            let e = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..e], e)
        };
        match vars.get(name) {
            Some(v) if !name.is_empty() => {
                out.push_str(v);
                rest = &after[len..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// How an included package list is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PkgMode {
    /// `<package>` for every line not starting with `@` or `-`.
    Pkg,
    /// `<pattern>` for lines starting with `@`.
    Ptrn,
    /// `<package>` for lines starting with `-` (packages to remove).
    Rm,
}

impl PkgMode {
    fn directive(self) -> &'static str {
        match self {
            PkgMode::Pkg => "INCLUDE_PKGLIST",
            PkgMode::Ptrn => "INCLUDE_PTRNLIST",
            PkgMode::Rm => "INCLUDE_RMPKGLIST",
        }
    }
}

/// xCAT directives recognised but not implemented: an error says so rather than "unknown".
const UNSUPPORTED: &[&str] = &[
    "MIRRORSPEC",
    "YAST2NET",
    "ESXIPV6SETUP",
    "MACHINEPASSWORD",
    "WINTIMEZONE",
    "WINPRODKEY",
    "WINNETCFG",
    "WINADJOIN",
    "WINPOSTSCRIPTS",
    "WINDNSCFG",
    "WINACCOUNTDATA",
    "WINDISABLENULLADMIN",
    "SLES_SDK_MEDIA",
    "INCLUDE_OSIMAGE_PKGDIR",
    "UBUNTU_SUBIQUITY_APT_CONFIG",
    "INCLUDE_GET_INSTALL_DISK_SCRIPT",
];

/// Directives that take no argument.
const BARE: &[&str] = &[
    "INCLUDE_DEFAULT_PKGLIST",
    "INCLUDE_DEFAULT_PKGLIST_S",
    "INCLUDE_DEFAULT_PTRNLIST_S",
    "INCLUDE_DEFAULT_RMPKGLIST_S",
    "INCLUDE_DEFAULT_PKGLIST_PRESEED",
    "HOSTNAME",
    "SHORTNAME",
    "COLONHTTPPORT",
    "KICKSTARTNET",
    "KICKSTARTBOOTLOADER",
    "MANAGEDADDRESSMODE",
    "INSTALL_SOURCES",
    "INSTALL_SOURCES_IN_PRE",
    "WRITEREPO",
    "XCAT_PARTITION_START",
    "XCAT_PARTITION_END",
    "XCA_PARTITION_SCRIPT",
    "XCA_PARTMAN_RECIPE_SCRIPT",
    "XCA_PARTMAN_DISK_SCRIPT",
    "XCA_PARTMAN_ADDITIONAL_CFG",
    "XCA_PARTMAN_ADDITIONAL_CONFIG_SCRIPT",
    "UNCOMMENTOENABLEDEBUGPORT",
    "UNCOMMENTOENABLESSH",
];

/// Directives that take an argument.
const WITH_ARGS: &[&str] = &[
    "TABLE",
    "TABLEBLANKOKAY",
    "XCATVAR",
    "ENV",
    "INCLUDE",
    "INCLUDE_NOP",
    "INCLUDE_PKGLIST",
    "INCLUDE_PTRNLIST",
    "INCLUDE_RMPKGLIST",
    "CRYPT",
    "CRYPTORLOCKED",
    "COMMAND",
    "GETNODEDOMAIN",
    "GETPRINICMAC",
];

/// `tab:key:col` of `#TABLE:…#`/`#CRYPT:…#`.
pub(crate) fn split_table_args(args: &str) -> Option<(&str, &str, &str)> {
    let mut p = args.splitn(3, ':');
    let (t, k, c) = (p.next()?.trim(), p.next()?.trim(), p.next()?.trim());
    (!t.is_empty() && !k.is_empty() && !c.is_empty()).then_some((t, k, c))
}

/// `#TABLE:`'s lookup. `key` is `THISNODE`/`$NODE` (the node, with group inheritance), a bare
/// name (that node), or `col=value[,col=value…]` (the first row matching, as xCAT's `getAttribs`;
/// `THISNODE` among them restricts to the node's own row).
pub(crate) fn lookup(
    r: &Resolver,
    node: &str,
    table: &str,
    key: &str,
    field: &str,
) -> Result<Option<String>, StoreError> {
    let is_me = |k: &str| k == "THISNODE" || k == "$NODE";
    if !key.contains('=') {
        let who = if is_me(key) { node } else { key };
        return r.attr(who, table, field);
    }
    let t = r.table(table)?;
    let fi = column_index(t.spec, field)?;
    let mut conds: Vec<(usize, String)> = Vec::new();
    for part in key.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if is_me(part) {
            let k0 = t.spec.keys.first().copied().unwrap_or("node");
            conds.push((column_index(t.spec, k0)?, node.to_string()));
            continue;
        }
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        conds.push((column_index(t.spec, k.trim())?, v.trim().to_string()));
    }
    let row = t.rows.iter().find(|row| {
        conds.iter().all(|(i, v)| {
            row.get(*i)
                .and_then(|x| x.as_deref())
                .unwrap_or("")
                .eq(v.as_str())
        })
    });
    Ok(row
        .and_then(|row| row.get(fi).cloned().flatten())
        .filter(|v| !v.is_empty()))
}

/// xCAT's `parseMacTabEntry`: of `mac.mac`'s `|`-separated entries, the one tagged `!<node>`, else
/// the last untagged one, with colons inserted into a bare 12-digit form.
pub(crate) fn primary_mac(macs: &str, node: &str) -> Option<String> {
    let mut found: Option<&str> = None;
    for m in macs.split('|').map(str::trim) {
        match m.split_once('!') {
            Some((mac, host)) if host == node => {
                found = Some(mac);
                break;
            }
            Some(_) => {}
            None if !m.is_empty() => found = Some(m),
            None => {}
        }
    }
    let m = found?;
    if !m.contains(':') && m.len() == 12 && m.is_ascii() {
        let parts: Vec<&str> = (0..6).map(|i| &m[i * 2..i * 2 + 2]).collect();
        return Some(parts.join(":"));
    }
    Some(m.to_string())
}

/// A networks row that contains `ip`: (mask, gateway, nameservers, domain).
pub(crate) struct NetFacts {
    pub mask: String,
    pub gateway: Option<String>,
    pub nameservers: Option<String>,
    pub domain: Option<String>,
}

pub(crate) fn network_for(r: &Resolver, ip: &str) -> Result<Option<NetFacts>, StoreError> {
    let Ok(ip) = ip.parse::<Ipv4Addr>() else {
        return Ok(None);
    };
    let t = r.table("networks")?;
    let col = |c: &str| t.spec.col_index(c);
    let get = |row: &crate::store::Row, c: &str| {
        col(c)
            .and_then(|i| row.get(i))
            .cloned()
            .flatten()
            .filter(|v| !v.is_empty())
    };
    for row in &t.rows {
        let (Some(net), Some(mask)) = (get(row, "net"), get(row, "mask")) else {
            continue;
        };
        let (Ok(n), Ok(m)) = (net.parse::<Ipv4Addr>(), mask.parse::<Ipv4Addr>()) else {
            continue;
        };
        let (n, m) = (u32::from(n), u32::from(m));
        if u32::from(ip) & m == n & m {
            return Ok(Some(NetFacts {
                mask,
                gateway: get(row, "gateway"),
                nameservers: get(row, "nameservers"),
                domain: get(row, "domain"),
            }));
        }
    }
    Ok(None)
}

/// xCAT's `getNodeDomains`: the domain of the node's network, else site.domain.
pub(crate) fn node_domain(r: &Resolver, node: &str) -> Result<Option<String>, StoreError> {
    if let Some(ip) = r.attr(node, "hosts", "ip")? {
        if let Some(d) = network_for(r, &ip)?.and_then(|n| n.domain) {
            return Ok(Some(d));
        }
    }
    r.site("domain")
}

/// Reads package-list files as xCAT's `get_pkglist_tex`: trimmed non-blank lines, comments
/// dropped, `#INCLUDE:f#` lines replaced by `f`'s entries (relative to the including list's
/// directory); `#ENV:…#` and `#NEW_INSTALL_LIST#` lines are kept for the caller.
pub(crate) fn pkglist_entries(files: &[PathBuf]) -> Result<Vec<String>, TemplateError> {
    fn read(path: &Path, depth: usize, out: &mut Vec<String>) -> Result<(), TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        for (n, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() {
                continue;
            }
            if let Some(inc) = l
                .strip_prefix("#INCLUDE:")
                .and_then(|s| s.strip_suffix('#'))
            {
                let loc = Loc {
                    file: path,
                    line: n + 1,
                };
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(loc.err(format!(
                        "includes nested deeper than {MAX_INCLUDE_DEPTH} levels (does a file include itself?)"
                    )));
                }
                let p = Path::new(inc.trim());
                let p = if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    path.parent().unwrap_or(Path::new("/")).join(p)
                };
                if !p.is_file() {
                    return Err(loc.err(format!("cannot include {}: no such file", p.display())));
                }
                read(&p, depth + 1, out)?;
                continue;
            }
            if l.starts_with('#') && !l.starts_with("#NEW_INSTALL_LIST#") && !l.starts_with("#ENV:")
            {
                continue;
            }
            out.push(l.to_string());
        }
        Ok(())
    }
    let mut out = Vec::new();
    for f in files {
        read(f, 0, &mut out)?;
    }
    Ok(out)
}

/// Whether a password is already in crypt(3) form (then it is passed through).
pub(crate) fn is_crypted(p: &str) -> bool {
    [
        "$1$", "$2a$", "$2b$", "$2y$", "$5$", "$6$", "$7$", "$y$", "$gy$",
    ]
    .iter()
    .any(|pre| p.starts_with(pre))
}

/// The install-template directive language.
struct Expander<'a> {
    r: &'a Resolver,
    node: &'a str,
    server: &'a str,
    facts: &'a InstallFacts,
    vars: &'a BTreeMap<String, String>,
    /// Relative includes start here (xCAT: the top template's directory, for nested ones too).
    top_dir: PathBuf,
    /// Then here, so that custom templates can include the shipped fragments by relative path.
    shipped: &'a Path,
    /// The image's package lists (for the `INCLUDE_DEFAULT_*` directives).
    pkglists: Vec<PathBuf>,
    debugmode: String,
    secureroot: bool,
    depth: usize,
}

impl Directives for Expander<'_> {
    fn is_known(&self, name: &str) -> bool {
        BARE.contains(&name) || WITH_ARGS.contains(&name) || UNSUPPORTED.contains(&name)
    }

    fn expand(
        &mut self,
        loc: Loc<'_>,
        name: &str,
        args: Option<&str>,
        raw: &str,
    ) -> Result<String, TemplateError> {
        let Some(a) = args else {
            return self.bare(loc, name, raw);
        };
        match name {
            "TABLE" => self.table(loc, a, false),
            "TABLEBLANKOKAY" => self.table(loc, a, true),
            "XCATVAR" | "ENV" => Ok(self.var(a)),
            "INCLUDE" => self.include(loc, a, None),
            "INCLUDE_PKGLIST" => self.include(loc, a, Some(PkgMode::Pkg)),
            "INCLUDE_PTRNLIST" => self.include(loc, a, Some(PkgMode::Ptrn)),
            "INCLUDE_RMPKGLIST" => self.include(loc, a, Some(PkgMode::Rm)),
            "INCLUDE_NOP" => self.include_nop(loc, a),
            "CRYPT" => self.crypt(loc, a, false),
            "CRYPTORLOCKED" => self.crypt(loc, a, true),
            "COMMAND" => run_command(a).map_err(|e| loc.err(e)),
            "GETNODEDOMAIN" => {
                let who = self.who(a);
                Ok(node_domain(self.r, &who)
                    .map_err(|e| loc.err(e.to_string()))?
                    .unwrap_or_default())
            }
            "GETPRINICMAC" => {
                let who = self.who(a);
                let macs = self
                    .r
                    .attr(&who, "mac", "mac")
                    .map_err(|e| loc.err(e.to_string()))?;
                Ok(macs.and_then(|m| primary_mac(&m, &who)).unwrap_or_default())
            }
            n if UNSUPPORTED.contains(&n) => Err(unsupported(loc, n)),
            n if BARE.contains(&n) => Err(loc.err(format!("#{n}# takes no arguments"))),
            _ => Err(loc.err(format!("unknown directive {raw}"))),
        }
    }
}

fn unsupported(loc: Loc<'_>, name: &str) -> TemplateError {
    loc.err(format!(
        "xCAT's #{name}# directive is not supported by bootherd"
    ))
}

impl Expander<'_> {
    fn who(&self, a: &str) -> String {
        match a.trim() {
            "THISNODE" | "$NODE" | "" => self.node.to_string(),
            other => other.to_string(),
        }
    }

    fn var(&self, name: &str) -> String {
        let name = name.trim().trim_start_matches('$');
        self.vars.get(name).cloned().unwrap_or_default()
    }

    fn port(&self) -> String {
        self.var("HTTPPORT")
    }

    fn bare(&mut self, loc: Loc<'_>, name: &str, raw: &str) -> Result<String, TemplateError> {
        let e = |x: StoreError| loc.err(x.to_string());
        Ok(match name {
            "INCLUDE_DEFAULT_PKGLIST" => self.default_lists(loc, None)?,
            "INCLUDE_DEFAULT_PKGLIST_S" => self.default_lists(loc, Some(PkgMode::Pkg))?,
            "INCLUDE_DEFAULT_PTRNLIST_S" => self.default_lists(loc, Some(PkgMode::Ptrn))?,
            "INCLUDE_DEFAULT_RMPKGLIST_S" => self.default_lists(loc, Some(PkgMode::Rm))?,
            "INCLUDE_DEFAULT_PKGLIST_PRESEED" => pkglist_entries(&self.pkglists)?
                .into_iter()
                .filter(|p| !p.starts_with('#'))
                .collect::<Vec<_>>()
                .join(" "),
            "HOSTNAME" => self.node.to_string(),
            "SHORTNAME" => self.node.split('.').next().unwrap_or(self.node).to_string(),
            "COLONHTTPPORT" => format!(":{}", self.port()),
            "KICKSTARTNET" => self.kickstart_net(loc)?,
            "KICKSTARTBOOTLOADER" => match self.var("PERSKCMDLINE") {
                p if p.is_empty() => "bootloader".to_string(),
                p => format!("bootloader --append=\"{p}\""),
            },
            "MANAGEDADDRESSMODE" => self
                .r
                .site("managedaddressmode")
                .map_err(e)?
                .unwrap_or_default(),
            "INSTALL_SOURCES" => self.install_sources(loc, false)?,
            "INSTALL_SOURCES_IN_PRE" => self.install_sources(loc, true)?,
            "WRITEREPO" => self.write_repo(loc)?,
            // Markers a partition file would replace; without one xCAT leaves them (comments).
            "XCAT_PARTITION_START"
            | "XCAT_PARTITION_END"
            | "XCA_PARTITION_SCRIPT"
            | "XCA_PARTMAN_RECIPE_SCRIPT"
            | "XCA_PARTMAN_DISK_SCRIPT"
            | "XCA_PARTMAN_ADDITIONAL_CFG"
            | "XCA_PARTMAN_ADDITIONAL_CONFIG_SCRIPT" => raw.to_string(),
            // Comment prefixes that site.xcatdebugmode turns into live lines.
            "UNCOMMENTOENABLEDEBUGPORT" if matches!(self.debugmode.as_str(), "1" | "2") => {
                String::new()
            }
            "UNCOMMENTOENABLESSH" if self.debugmode == "2" => " ".to_string(),
            "UNCOMMENTOENABLEDEBUGPORT" | "UNCOMMENTOENABLESSH" => raw.to_string(),
            n if UNSUPPORTED.contains(&n) => return Err(unsupported(loc, n)),
            n if WITH_ARGS.contains(&n) => {
                return Err(loc.err(format!("#{n}# needs arguments (#{n}:…#)")))
            }
            _ => return Err(loc.err(format!("unknown directive {raw}"))),
        })
    }

    fn table(&self, loc: Loc<'_>, a: &str, blank_ok: bool) -> Result<String, TemplateError> {
        let Some((table, key, field)) = split_table_args(a) else {
            return Err(loc.err(format!(
                "#TABLE:{a}# is not table:key:column (e.g. #TABLE:noderes:THISNODE:nfsserver#)"
            )));
        };
        let v = lookup(self.r, self.node, table, key, field).map_err(|e| loc.err(e.to_string()))?;
        if let Some(v) = v {
            return Ok(v);
        }
        if blank_ok {
            return Ok(String::new());
        }
        // xCAT's fallbacks: the master defaults to this server's address facing the node, and a
        // node's NFS/TFTP server to its master.
        if field == "xcatmaster" && !self.server.trim().is_empty() {
            return Ok(self.server.trim().to_string());
        }
        if table == "noderes" && (field == "nfsserver" || field == "tftpserver") {
            return self.table(loc, "noderes:$NODE:xcatmaster", false);
        }
        Err(loc.err(format!(
            "no value for {table}.{field} (key {key}); set it, or use #TABLEBLANKOKAY:…# where empty is fine"
        )))
    }

    fn crypt(&self, loc: Loc<'_>, a: &str, or_locked: bool) -> Result<String, TemplateError> {
        let Some((table, key, field)) = split_table_args(a) else {
            return Err(loc.err(format!(
                "#CRYPT:{a}# is not table:key=value,…:column (e.g. #CRYPT:passwd:key=system,username=root:password#)"
            )));
        };
        if !key.contains('=') {
            return Err(loc.err(format!(
                "cannot parse the password key '{key}' (expected col=value[,col=value])"
            )));
        }
        if self.secureroot {
            return Ok("*".into());
        }
        let e = |x: StoreError| loc.err(x.to_string());
        let Some(pw) = lookup(self.r, self.node, table, key, field).map_err(e)? else {
            if or_locked {
                return Ok("*".into());
            }
            return Err(loc.err(format!(
                "no {table}.{field} for {key} (set it, e.g. tabch key=system,username=root passwd.password=…)"
            )));
        };
        if is_crypted(&pw) {
            return Ok(pw);
        }
        let method = match lookup(self.r, self.node, table, key, "cryptmethod") {
            Ok(m) => m,
            Err(StoreError::UnknownColumn { .. }) => None,
            Err(x) => return Err(e(x)),
        };
        let salt = shacrypt::random_salt().map_err(|x| loc.err(format!("no random salt: {x}")))?;
        // SHA-256 only when asked for; SHA-512 otherwise (md5-crypt is not produced: it is broken,
        // and every installer accepts SHA-512).
        Ok(match method.as_deref() {
            Some("sha256") => shacrypt::sha256_crypt(pw.as_bytes(), &salt, None),
            _ => shacrypt::sha512_crypt(pw.as_bytes(), &salt, None),
        })
    }

    /// Resolves an include argument to a file.
    fn include_path(&self, loc: Loc<'_>, arg: &str) -> Result<PathBuf, TemplateError> {
        let arg = subst_path_vars(arg.trim(), self.vars);
        let p = Path::new(&arg);
        if p.is_absolute() {
            return if p.is_file() {
                Ok(p.to_path_buf())
            } else {
                Err(loc.err(format!("cannot include {arg}: no such file")))
            };
        }
        let first = self.top_dir.join(p);
        let second = self.shipped.join(p);
        if first.is_file() {
            return Ok(first);
        }
        if second.is_file() {
            return Ok(second);
        }
        Err(loc.err(format!(
            "cannot include {arg}: not found as {} or {}",
            first.display(),
            second.display()
        )))
    }

    fn include(
        &mut self,
        loc: Loc<'_>,
        arg: &str,
        mode: Option<PkgMode>,
    ) -> Result<String, TemplateError> {
        if self.depth >= MAX_INCLUDE_DEPTH {
            return Err(loc.err(format!(
                "includes nested deeper than {MAX_INCLUDE_DEPTH} levels (does a file include itself?)"
            )));
        }
        let path = self.include_path(loc, arg)?;
        let text = std::fs::read_to_string(&path)
            .map_err(|e| loc.err(format!("cannot include {}: {e}", path.display())))?;
        self.depth += 1;
        let res = match mode {
            None => scan_text(self, &path, &text),
            Some(m) => self.pkglist_xml(&path, &text, m),
        };
        self.depth -= 1;
        // The directive's own line break ends the included text (xCAT chomps it).
        let mut s = res?;
        if s.ends_with('\n') {
            s.pop();
        }
        Ok(s)
    }

    /// An AutoYaST package list: one element per entry; nested `#INCLUDE:f#` lines keep the mode.
    fn pkglist_xml(
        &mut self,
        path: &Path,
        text: &str,
        mode: PkgMode,
    ) -> Result<String, TemplateError> {
        let mut out: Vec<String> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() {
                continue;
            }
            if let Some(rest) = l.strip_prefix("#INCLUDE:") {
                let rewritten = format!("#{}:{rest}", mode.directive());
                let loc = Loc {
                    file: path,
                    line: n + 1,
                };
                let s = scan_line(self, loc, &rewritten)?;
                if !s.is_empty() {
                    out.push(s);
                }
                continue;
            }
            if l.starts_with('#') {
                continue;
            }
            let (tag, item) = match mode {
                PkgMode::Pkg if l.starts_with('@') || l.starts_with('-') => continue,
                PkgMode::Pkg => ("package", l),
                PkgMode::Ptrn => match l.strip_prefix('@') {
                    Some(p) => ("pattern", p.trim()),
                    None => continue,
                },
                PkgMode::Rm => match l.strip_prefix('-') {
                    Some(p) => ("package", p.trim()),
                    None => continue,
                },
            };
            out.push(format!("<{tag}>{}</{tag}>", xml_escape(item)));
        }
        Ok(out.join("\n"))
    }

    fn include_nop(&self, loc: Loc<'_>, arg: &str) -> Result<String, TemplateError> {
        let path = self.include_path(loc, arg)?;
        let text = std::fs::read_to_string(&path)
            .map_err(|e| loc.err(format!("cannot include {}: {e}", path.display())))?;
        let mut s = text.replace('$', "\\$").replace('`', "\\`");
        if s.ends_with('\n') {
            s.pop();
        }
        Ok(s)
    }

    fn default_lists(
        &mut self,
        loc: Loc<'_>,
        mode: Option<PkgMode>,
    ) -> Result<String, TemplateError> {
        let files: Vec<String> = self
            .pkglists
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let mut parts = Vec::new();
        for f in files {
            parts.push(self.include(loc, &f, mode)?);
        }
        Ok(parts.join("\n"))
    }

    fn nfsserver(&self, loc: Loc<'_>) -> Result<String, TemplateError> {
        self.table(loc, "noderes:$NODE:nfsserver", false)
    }

    fn kickstart_net(&self, loc: Loc<'_>) -> Result<String, TemplateError> {
        let e = |x: StoreError| loc.err(x.to_string());
        let macs = self.r.attr(self.node, "mac", "mac").map_err(e)?;
        let Some(mac) = macs.and_then(|m| primary_mac(&m, self.node)) else {
            return Err(loc.err(format!(
                "#KICKSTARTNET#: no MAC address in mac.mac for {}",
                self.node
            )));
        };
        let mac = mac.to_ascii_lowercase();
        let mode = self
            .r
            .site("managedaddressmode")
            .map_err(e)?
            .unwrap_or_default();
        if mode == "autoula" {
            return Err(
                loc.err("#KICKSTARTNET#: managedaddressmode autoula is not supported by bootherd")
            );
        }
        if !mode.contains("static") {
            return Ok(format!(
                "network --onboot=yes --bootproto=dhcp --device={mac}"
            ));
        }
        let Some(ip) = self.r.attr(self.node, "hosts", "ip").map_err(e)? else {
            return Err(loc.err(format!(
                "#KICKSTARTNET#: static addressing needs hosts.ip for {}",
                self.node
            )));
        };
        let Some(net) = network_for(self.r, &ip).map_err(e)? else {
            return Err(loc.err(format!("#KICKSTARTNET#: no networks row contains {ip}")));
        };
        let me = |v: &str| {
            if v == "<xcatmaster>" {
                self.server.to_string()
            } else {
                v.to_string()
            }
        };
        let mut line = format!(
            "network --onboot=yes --bootproto=static --device={mac} --ip={ip} --netmask={}",
            net.mask
        );
        if let Some(gw) = net.gateway.as_deref().map(me).filter(|g| !g.is_empty()) {
            line.push_str(&format!(" --gateway={gw}"));
        }
        line.push_str(&format!(" --hostname={}", self.node));
        let ns = match self
            .r
            .attr(self.node, "noderes", "nameservers")
            .map_err(e)?
        {
            Some(n) => Some(n),
            None => match net.nameservers {
                Some(n) => Some(n),
                None => self.r.site("nameservers").map_err(e)?,
            },
        };
        if let Some(ns) = ns {
            let list: Vec<String> = ns
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(me)
                .collect();
            if !list.is_empty() {
                line.push_str(&format!(" --nameserver={}", list.join(",")));
            }
        }
        Ok(line)
    }

    /// Installation sources from the image's pkgdirs (Template.pm's `#INSTALL_SOURCES#`).
    fn install_sources(&self, loc: Loc<'_>, in_pre: bool) -> Result<String, TemplateError> {
        let port = self.port();
        let os = &self.facts.os;
        let mut out = Vec::new();
        match self.facts.platform.family {
            Family::Rhel => {
                let host = if in_pre {
                    "'$nextserver'".to_string()
                } else {
                    self.nfsserver(loc)?
                };
                for (c, dir) in self.facts.pkgdirs.iter().enumerate() {
                    let line = if c == 0 {
                        format!("url --url http://{host}:{port}{dir}")
                    } else {
                        format!("repo --name=pkg{c} --baseurl=http://{host}:{port}{dir}")
                    };
                    out.push(if in_pre {
                        format!("echo '{line}' >> /tmp/repos")
                    } else {
                        line
                    });
                }
            }
            Family::Sles if os.starts_with("sle") && !os.starts_with("sles") && !in_pre => {
                // SLE 15 media: one add-on per module/product directory of the first pkgdir.
                let host = self.nfsserver(loc)?;
                let media = format!(
                    "{}/1",
                    self.facts.pkgdirs.first().map(String::as_str).unwrap_or("")
                );
                let mut subdirs: Vec<String> = std::fs::read_dir(&media)
                    .map(|rd| {
                        rd.filter_map(Result::ok)
                            .filter(|e| e.path().is_dir())
                            .filter_map(|e| e.file_name().into_string().ok())
                            .collect()
                    })
                    .unwrap_or_default();
                subdirs.sort();
                for d in subdirs {
                    if let Some(product) = sle15_product(&d) {
                        out.push(format!(
                            "<listentry><media_url>http://{host}:{port}{media}</media_url><product>{product}</product><product_dir>/{d}</product_dir></listentry>"
                        ));
                    }
                }
            }
            Family::Sles => {
                let host = if in_pre {
                    "'$nextserver'".to_string()
                } else {
                    self.nfsserver(loc)?
                };
                for (c, dir) in self.facts.pkgdirs.iter().enumerate() {
                    let dir = if c == 0 {
                        format!("{dir}/1")
                    } else {
                        dir.clone()
                    };
                    out.push(format!(
                        "<listentry><media_url>http://{host}:{port}{dir}</media_url><product>SuSE-Linux-pkg{c}</product><product_dir>/</product_dir><ask_on_error config:type=\"boolean\">false</ask_on_error><name>SuSE-Linux-pkg{c}</name></listentry>"
                    ));
                }
            }
            Family::Debian | Family::Ubuntu => {}
        }
        Ok(out.join("\n"))
    }

    /// Yum repository files for the installed system, from copycds' `local-repository.tmpl`.
    fn write_repo(&self, loc: Loc<'_>) -> Result<String, TemplateError> {
        if self.facts.platform.family != Family::Rhel {
            return Ok(String::new());
        }
        let installdir = self.var("INSTALLDIR");
        let prefix = format!("http://{}:{}/", self.var("XCATMASTER"), self.port());
        let mut out = String::new();
        for (c, dir) in self.facts.pkgdirs.iter().enumerate() {
            let f = format!("{installdir}/postscripts/repos/{dir}/local-repository.tmpl");
            let Ok(t) = std::fs::read_to_string(&f) else {
                continue;
            };
            if t.trim().is_empty() {
                continue;
            }
            if t.lines().any(|l| l == "EOF") {
                return Err(loc.err(format!("{f} contains an 'EOF' line")));
            }
            out.push_str(&format!(
                "\ncat >/etc/yum.repos.d/local-repository-{c}.repo << 'EOF'\n{}\nEOF\n",
                t.replace("baseurl=", &format!("baseurl={prefix}"))
            ));
        }
        Ok(out)
    }
}

/// xCAT's `_sle15_install_product_name` for a SLE 15 media directory.
fn sle15_product(dir: &str) -> Option<String> {
    if dir.starts_with("Module-SAP-") {
        return None;
    }
    if dir.starts_with("Module-") {
        return Some(format!("sle-{}", dir.to_ascii_lowercase()));
    }
    if [
        "Product-SUSE-Manager-Server",
        "Product-SLES_SAP",
        "Product-SLED",
    ]
    .iter()
    .any(|p| dir.starts_with(p))
    {
        return None;
    }
    dir.strip_prefix("Product-").map(str::to_string)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `#COMMAND:…#`: the command's standard output, final newline removed (xCAT's backquotes), run by
/// `/bin/sh` with a time limit.
fn run_command(cmd: &str) -> Result<String, String> {
    use std::process::{Command, Stdio};
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("#COMMAND:{cmd}#: cannot run /bin/sh: {e}"))?;
    let stdout = child.stdout.take();
    // Read in a thread so a chatty command cannot fill the pipe and stall while we wait.
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut o) = stdout {
            let _ = o.read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                // The reader is left behind: a grandchild may still hold the pipe open.
                return Err(format!(
                    "#COMMAND:{cmd}# ran longer than {} seconds",
                    COMMAND_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("#COMMAND:{cmd}#: {e}")),
        }
    }
    let out = reader.join().unwrap_or_default();
    let mut s = String::from_utf8_lossy(&out).into_owned();
    if s.ends_with('\n') {
        s.pop();
    }
    Ok(s)
}

/// SHA-crypt (Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512"), as glibc's `crypt(3)`
/// writes `$5$`/`$6$` hashes; written here over `sha2` rather than adding a crate whose `sha2`
/// would raise the minimum Rust version.
pub(crate) mod shacrypt {
    use sha2::digest::Digest;
    use sha2::{Sha256, Sha512};

    const ITOA64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const DEFAULT_ROUNDS: u32 = 5000;

    /// 16 salt characters from the kernel's random source.
    pub fn random_salt() -> std::io::Result<String> {
        use std::io::Read;
        let mut b = [0u8; 16];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
        // 64 divides 256, so masking keeps the characters uniform.
        Ok(b.iter()
            .map(|x| char::from(ITOA64[usize::from(x & 63)]))
            .collect())
    }

    fn core<D: Digest + Clone>(pw: &[u8], salt: &[u8], rounds: u32) -> Vec<u8> {
        let n = <D as Digest>::output_size();
        let mut b = D::new();
        b.update(pw);
        b.update(salt);
        b.update(pw);
        let b = b.finalize();
        let mut a = D::new();
        a.update(pw);
        a.update(salt);
        let mut left = pw.len();
        while left > n {
            a.update(&b);
            left -= n;
        }
        a.update(&b[..left]);
        let mut bits = pw.len();
        while bits > 0 {
            if bits & 1 == 1 {
                a.update(&b);
            } else {
                a.update(pw);
            }
            bits >>= 1;
        }
        let mut acc = a.finalize().to_vec();
        let mut dp = D::new();
        for _ in 0..pw.len() {
            dp.update(pw);
        }
        let dp = dp.finalize();
        let p: Vec<u8> = dp.iter().cycle().take(pw.len()).copied().collect();
        let mut ds = D::new();
        for _ in 0..16 + usize::from(acc[0]) {
            ds.update(salt);
        }
        let ds = ds.finalize();
        let s: Vec<u8> = ds.iter().cycle().take(salt.len()).copied().collect();
        for i in 0..rounds {
            let mut c = D::new();
            if i & 1 == 1 {
                c.update(&p);
            } else {
                c.update(&acc);
            }
            if i % 3 != 0 {
                c.update(&s);
            }
            if i % 7 != 0 {
                c.update(&p);
            }
            if i & 1 == 1 {
                c.update(&acc);
            } else {
                c.update(&p);
            }
            acc = c.finalize().to_vec();
        }
        acc
    }

    fn b64(out: &mut String, b2: u8, b1: u8, b0: u8, n: usize) {
        let mut w = (u32::from(b2) << 16) | (u32::from(b1) << 8) | u32::from(b0);
        for _ in 0..n {
            out.push(char::from(ITOA64[(w & 63) as usize]));
            w >>= 6;
        }
    }

    /// Salt truncated to 16 bytes; rounds clamped to 1000..=999999999, written only when not
    /// the default (as glibc).
    fn prefix(id: &str, salt: &str, rounds: Option<u32>) -> (String, Vec<u8>, u32) {
        let salt: Vec<u8> = salt.bytes().take_while(|b| *b != b'$').take(16).collect();
        let r = rounds.map_or(DEFAULT_ROUNDS, |r| r.clamp(1000, 999_999_999));
        let mut s = format!("${id}$");
        if rounds.is_some() {
            s.push_str(&format!("rounds={r}$"));
        }
        s.push_str(&String::from_utf8_lossy(&salt));
        s.push('$');
        (s, salt, r)
    }

    pub fn sha512_crypt(pw: &[u8], salt: &str, rounds: Option<u32>) -> String {
        let (mut out, salt, r) = prefix("6", salt, rounds);
        let f = core::<Sha512>(pw, &salt, r);
        for i in 0..21 {
            let (x, y, z) = (i, i + 21, i + 42);
            // Drepper's byte order: each group rotates which of the three starts.
            let (b2, b1, b0) = match i % 3 {
                0 => (f[x], f[y], f[z]),
                1 => (f[y], f[z], f[x]),
                _ => (f[z], f[x], f[y]),
            };
            b64(&mut out, b2, b1, b0, 4);
        }
        b64(&mut out, 0, 0, f[63], 2);
        out
    }

    pub fn sha256_crypt(pw: &[u8], salt: &str, rounds: Option<u32>) -> String {
        let (mut out, salt, r) = prefix("5", salt, rounds);
        let f = core::<Sha256>(pw, &salt, r);
        for i in 0..10 {
            let (x, y, z) = (i, i + 10, i + 20);
            // The rotation runs the other way from SHA-512's.
            let (b2, b1, b0) = match i % 3 {
                0 => (f[x], f[y], f[z]),
                1 => (f[z], f[x], f[y]),
                _ => (f[y], f[z], f[x]),
            };
            b64(&mut out, b2, b1, b0, 4);
        }
        b64(&mut out, 0, f[31], f[30], 3);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    type RowSpec<'a> = (&'a str, &'a [&'a str], &'a str, &'a str);

    fn resolver(rows: &[RowSpec<'_>]) -> Resolver {
        let s = Arc::new(crate::store::Store::open_in_memory().expect("store"));
        s.write(None, |tx| {
            for (t, k, c, v) in rows {
                tx.set(t, k, &[(c, Some(v))])?;
            }
            Ok(())
        })
        .expect("seed");
        Resolver::new(s)
    }

    const IMG: &str = "rhels8.6-x86_64-install-compute";

    fn rhel_node() -> Vec<RowSpec<'static>> {
        vec![
            ("nodelist", &["n1"], "groups", "compute,all"),
            ("nodetype", &["n1"], "provmethod", IMG),
            ("osimage", &[IMG], "osvers", "rhels8.6"),
            ("osimage", &[IMG], "osarch", "x86_64"),
            ("osimage", &[IMG], "profile", "compute"),
            ("osimage", &[IMG], "provmethod", "install"),
            ("osimage", &[IMG], "environvar", "MYVAR=hello"),
            ("linuximage", &[IMG], "pkgdir", "/install/rhels8.6/x86_64"),
            ("noderes", &["compute"], "installnic", "eth0"),
            ("hosts", &["n1"], "ip", "10.0.1.5"),
            ("mac", &["n1"], "mac", "52:54:00:aa:00:01"),
            ("site", &["domain"], "value", "cluster.test"),
            (
                "passwd",
                &["system", "root"],
                "password",
                "$6$abc$precrypted",
            ),
            (
                "bootparams",
                &["n1"],
                "addkcmdline",
                "quiet R::console=ttyS0",
            ),
        ]
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, text).expect("write");
    }

    /// A custom and a shipped directory under one temporary root.
    fn dirs(root: &Path) -> TemplateDirs {
        TemplateDirs {
            custom: root.join("custom/install"),
            shipped: root.join("shipped"),
        }
    }

    #[test]
    fn sha_crypt_matches_the_published_vectors() {
        // Test vectors from Drepper's SHA-crypt specification.
        assert_eq!(
            shacrypt::sha512_crypt(b"Hello world!", "saltstring", None),
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        );
        assert_eq!(
            shacrypt::sha512_crypt(b"Hello world!", "saltstringsaltstring", Some(10000)),
            "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."
        );
        assert_eq!(
            shacrypt::sha256_crypt(b"Hello world!", "saltstring", None),
            "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"
        );
        assert_eq!(
            shacrypt::sha256_crypt(b"Hello world!", "saltstringsaltstring", Some(10000)),
            "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"
        );
        let a = shacrypt::random_salt().expect("salt");
        let b = shacrypt::random_salt().expect("salt");
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
    }

    #[test]
    fn os_search_list_follows_xcat() {
        let l = os_search_list("rhels8.6");
        assert_eq!(l.first().map(String::as_str), Some("rhels8.6"));
        assert_eq!(
            &l[5..],
            ["rhels8.1", "rhels8.0", "rhels8"].map(String::from)
        );
        assert_eq!(os_search_list("ubuntu22.04"), ["ubuntu22.04"]);
        assert_eq!(os_search_list("sle15.1"), ["sle15.1", "sle15.0", "sle15"]);
        assert_eq!(
            os_search_list("rhels7.10")[..3],
            ["rhels7.10", "rhels7.09", "rhels7.9"]
        );
        assert_eq!(
            os_search_list("leap15.1"),
            ["leap15.1", "leap15.0", "leap15", "sle15"]
        );
        assert_eq!(
            platform("rocky9.2"),
            Some(Platform {
                dir: "rocky",
                family: Family::Rhel
            })
        );
        assert_eq!(platform("sles15.5").map(|p| p.dir), Some("sles"));
        assert_eq!(platform("sle15.4").map(|p| p.dir), Some("sle"));
        assert_eq!(platform("aix7.2"), None);
    }

    #[test]
    fn candidate_order() {
        let c = candidates("compute", "rhels8.1", "x86_64", &[], Some("rhels"), "tmpl");
        assert_eq!(
            c,
            [
                "compute.rhels8.1.x86_64.tmpl",
                "compute.rhels8.1.tmpl",
                "compute.rhels8.0.x86_64.tmpl",
                "compute.rhels8.0.tmpl",
                "compute.rhels8.x86_64.tmpl",
                "compute.rhels8.tmpl",
                "compute.rhels.x86_64.tmpl",
                "compute.rhels.tmpl",
                "compute.x86_64.tmpl",
                "compute.tmpl",
            ]
        );
        // The old nodetype-based path tries the OS without its minor release, then rhel<major>.
        let c = candidates(
            "compute",
            "rhels8.1",
            "x86_64",
            &["rhels8".into(), "rhel8".into()],
            None,
            "tmpl",
        );
        assert_eq!(
            c[2..6],
            [
                "compute.rhels8.x86_64.tmpl",
                "compute.rhels8.tmpl",
                "compute.rhel8.x86_64.tmpl",
                "compute.rhel8.tmpl"
            ]
        );
    }

    #[test]
    fn kickstart_expands_every_directive() {
        let tmp = tempfile::tempdir().expect("tmp");
        let d = dirs(tmp.path());
        let rh = d.custom.join("rh");
        write(
            &rh,
            "compute.rhels8.6.x86_64.tmpl",
            "# ks for #HOSTNAME#\n\
             host=#TABLE:nodelist:THISNODE:node# groups=#TABLE:nodelist:$NODE:groups#\n\
             nic=#TABLE:noderes:THISNODE:installnic#\n\
             nfs=#TABLE:noderes:THISNODE:nfsserver#\n\
             domain=#TABLE:site:key=domain:value#\n\
             serial=[#TABLEBLANKOKAY:nodehm:THISNODE:serialport#]\n\
             master=#XCATVAR:XCATMASTER# port=#ENV:HTTPPORT# my=#XCATVAR:MYVAR# none=[#ENV:NOSUCH#]\n\
             rootpw --iscrypted #CRYPT:passwd:key=system,username=root:password#\n\
             #KICKSTARTNET#\n\
             #KICKSTARTBOOTLOADER#\n\
             cmd=#COMMAND:echo hi#\n\
             #INCLUDE:frag/part.sh#\n\
             %packages\n\
             #INCLUDE_DEFAULT_PKGLIST#\n\
             %end\n\
             #INCLUDE_PKGLIST:lists/sles.pkglist#\n\
             #INCLUDE_PTRNLIST:lists/sles.pkglist#\n\
             shell ${#x} #!/bin/sh # a #plain comment\n",
        );
        // Nested includes are relative to the top template's directory, as in xCAT.
        write(
            &rh,
            "frag/part.sh",
            "part of #SHORTNAME# from #INCLUDE:#XCATVAR:PROFILE#.leaf#\n",
        );
        write(&rh, "compute.leaf", "leaf line\n");
        write(&rh, "compute.pkglist", "@core\nvim\n# comment\n");
        write(
            &rh,
            "lists/sles.pkglist",
            "@base\nzsh\n-nano\n\n#INCLUDE:lists/more.pkglist#\n",
        );
        write(&rh, "lists/more.pkglist", "@x11\n  emacs  \n");
        let r = resolver(&rhel_node());
        let out = render_install(&r, "n1", &d, "10.0.0.1").expect("render");
        assert_eq!(out.template, rh.join("compute.rhels8.6.x86_64.tmpl"));
        assert_eq!(
            out.text,
            "# ks for n1\n\
             host=n1 groups=compute,all\n\
             nic=eth0\n\
             nfs=10.0.0.1\n\
             domain=cluster.test\n\
             serial=[]\n\
             master=10.0.0.1 port=80 my=hello none=[]\n\
             rootpw --iscrypted $6$abc$precrypted\n\
             network --onboot=yes --bootproto=dhcp --device=52:54:00:aa:00:01\n\
             bootloader --append=\"console=ttyS0\"\n\
             cmd=hi\n\
             part of n1 from leaf line\n\
             %packages\n\
             @core\n\
             vim\n\
             # comment\n\
             %end\n\
             <package>zsh</package>\n\
             <package>emacs</package>\n\
             <pattern>base</pattern>\n\
             <pattern>x11</pattern>\n\
             shell ${#x} #!/bin/sh # a #plain comment\n"
        );
    }

    #[test]
    fn network_sources_and_markers() {
        let tmp = tempfile::tempdir().expect("tmp");
        let d = dirs(tmp.path());
        let rh = d.custom.join("rh");
        write(
            &rh,
            "compute.tmpl",
            "#KICKSTARTNET#\n\
             #GETPRINICMAC:THISNODE# #GETNODEDOMAIN:THISNODE# #SHORTNAME##COLONHTTPPORT#\n\
             #INSTALL_SOURCES#\n\
             #INSTALL_SOURCES_IN_PRE#\n\
             #XCAT_PARTITION_START#\n\
             #UNCOMMENTOENABLEDEBUGPORT#debug\n\
             #INCLUDE_NOP:raw.sh#\n\
             #INCLUDE:shared.txt#\n",
        );
        write(&rh, "raw.sh", "echo $HOME `date` #HOSTNAME#\n");
        // Not next to the template: found in the shipped directory.
        write(&d.shipped, "shared.txt", "shared for #HOSTNAME#\n");
        let mut rows = rhel_node();
        rows.push((
            "mac",
            &["n1"],
            "mac",
            "52:54:00:AA:00:01|525400aa0002!n1|52:54:00:aa:00:03!n1-ib",
        ));
        rows.push(("site", &["managedaddressmode"], "value", "static"));
        rows.push((
            "networks",
            &["10.0.0.0", "255.255.0.0"],
            "gateway",
            "<xcatmaster>",
        ));
        rows.push((
            "networks",
            &["10.0.0.0", "255.255.0.0"],
            "nameservers",
            "<xcatmaster>,10.0.0.2",
        ));
        rows.push((
            "networks",
            &["10.0.0.0", "255.255.0.0"],
            "domain",
            "mgmt.test",
        ));
        rows.push((
            "linuximage",
            &[IMG],
            "pkgdir",
            "/install/rhels8.6/x86_64,/install/updates",
        ));
        rows.push(("noderes", &["n1"], "nfsserver", "10.0.0.3"));
        let out = render_install(&resolver(&rows), "n1", &d, "10.0.0.1").expect("render");
        assert_eq!(
            out.text,
            "network --onboot=yes --bootproto=static --device=52:54:00:aa:00:02 --ip=10.0.1.5 --netmask=255.255.0.0 --gateway=10.0.0.1 --hostname=n1 --nameserver=10.0.0.1,10.0.0.2\n\
             52:54:00:aa:00:02 mgmt.test n1:80\n\
             url --url http://10.0.0.3:80/install/rhels8.6/x86_64\n\
             repo --name=pkg1 --baseurl=http://10.0.0.3:80/install/updates\n\
             echo 'url --url http://'$nextserver':80/install/rhels8.6/x86_64' >> /tmp/repos\n\
             echo 'repo --name=pkg1 --baseurl=http://'$nextserver':80/install/updates' >> /tmp/repos\n\
             #XCAT_PARTITION_START#\n\
             #UNCOMMENTOENABLEDEBUGPORT#debug\n\
             echo \\$HOME \\`date\\` #HOSTNAME#\n\
             shared for n1\n"
        );
        rows.push(("site", &["xcatdebugmode"], "value", "1"));
        let out = render_install(&resolver(&rows), "n1", &d, "10.0.0.1").expect("render");
        assert!(out.text.contains("\ndebug\n"), "{}", out.text);
    }

    #[test]
    fn crypt_hashes_plain_passwords_and_honours_secureroot() {
        let tmp = tempfile::tempdir().expect("tmp");
        let d = dirs(tmp.path());
        write(
            &d.custom.join("rh"),
            "compute.tmpl",
            "#CRYPT:passwd:key=system,username=root:password#\n#CRYPTORLOCKED:passwd:key=ipmi,username=ADMIN:password#\n",
        );
        let mut rows = rhel_node();
        rows.push(("passwd", &["system", "root"], "password", "cluster"));
        let out = render_install(&resolver(&rows), "n1", &d, "10.0.0.1").expect("render");
        let (hash, locked) = out.text.split_once('\n').expect("two lines");
        assert_eq!(locked, "*\n");
        let salt = hash
            .strip_prefix("$6$")
            .and_then(|s| s.split('$').next())
            .expect("sha512 form");
        assert_eq!(salt.len(), 16);
        assert_eq!(shacrypt::sha512_crypt(b"cluster", salt, None), hash);

        rows.push(("passwd", &["system", "root"], "cryptmethod", "sha256"));
        let out = render_install(&resolver(&rows), "n1", &d, "10.0.0.1").expect("render");
        assert!(out.text.starts_with("$5$"), "{}", out.text);

        rows.push(("site", &["secureroot"], "value", "1"));
        let out = render_install(&resolver(&rows), "n1", &d, "10.0.0.1").expect("render");
        assert_eq!(out.text, "*\n*\n");

        write(
            &d.custom.join("rh"),
            "compute.tmpl",
            "x\n#CRYPT:passwd:key=ipmi,username=ADMIN:password#\n",
        );
        let err = render_install(&resolver(&rhel_node()), "n1", &d, "10.0.0.1")
            .expect_err("no ipmi password");
        assert!(matches!(&err, TemplateError::At { line: 2, .. }), "{err}");
    }

    #[test]
    fn template_choice_order() {
        let tmp = tempfile::tempdir().expect("tmp");
        let d = dirs(tmp.path());
        let r = resolver(&rhel_node());
        let chosen = |d: &TemplateDirs| {
            let f = install_facts(&r, "n1").expect("facts");
            template_path(d, &f).expect("template")
        };
        // Shipped only: the family name serves every RHEL release.
        write(&d.shipped, "compute.tmpl", "plain\n");
        write(&d.shipped, "compute.rhels.tmpl", "family\n");
        assert_eq!(chosen(&d), d.shipped.join("compute.rhels.tmpl"));
        write(&d.shipped, "compute.rhels8.tmpl", "major\n");
        assert_eq!(chosen(&d), d.shipped.join("compute.rhels8.tmpl"));
        write(&d.shipped, "compute.rhels8.6.x86_64.tmpl", "exact\n");
        assert_eq!(chosen(&d), d.shipped.join("compute.rhels8.6.x86_64.tmpl"));
        // Any custom template, however general, comes before the shipped ones.
        let rh = d.custom.join("rh");
        write(&rh, "compute.tmpl", "custom plain\n");
        assert_eq!(chosen(&d), rh.join("compute.tmpl"));
        write(&rh, "compute.x86_64.tmpl", "custom arch\n");
        assert_eq!(chosen(&d), rh.join("compute.x86_64.tmpl"));
        write(&rh, "compute.rhels8.6.tmpl", "custom os\n");
        assert_eq!(chosen(&d), rh.join("compute.rhels8.6.tmpl"));
        write(&rh, "compute.rhels8.6.x86_64.tmpl", "custom exact\n");
        assert_eq!(chosen(&d), rh.join("compute.rhels8.6.x86_64.tmpl"));
        // Another platform's directory is not looked at.
        write(
            &d.custom.join("sles"),
            "compute.rhels8.6.x86_64.tmpl",
            "wrong\n",
        );
        assert_eq!(chosen(&d), rh.join("compute.rhels8.6.x86_64.tmpl"));
        // linuximage.template names the file outright.
        let own = tmp.path().join("mine.tmpl");
        write(tmp.path(), "mine.tmpl", "mine #HOSTNAME#\n");
        let mut rows = rhel_node();
        let own_s = own.to_string_lossy().into_owned();
        rows.push(("linuximage", &[IMG], "template", own_s.as_str()));
        let out = render_install(&resolver(&rows), "n1", &d, "10.0.0.1").expect("render");
        assert_eq!((out.template, out.text.as_str()), (own, "mine n1\n"));

        // Nothing matches: the error lists what was tried.
        let empty = dirs(&tmp.path().join("nothing"));
        let err = template_path(&empty, &install_facts(&r, "n1").expect("facts"))
            .expect_err("no template");
        let msg = err.to_string();
        assert!(
            msg.contains("no kickstart template for profile 'compute'"),
            "{msg}"
        );
        assert!(
            msg.contains("compute.rhels8.6.x86_64.tmpl, compute.rhels8.6.tmpl"),
            "{msg}"
        );
    }

    fn render_err(
        template: &str,
        extra: &[(&str, &str)],
    ) -> (TemplateDirs, TemplateError, tempfile::TempDir) {
        let tmp = tempfile::tempdir().expect("tmp");
        let d = dirs(tmp.path());
        let rh = d.custom.join("rh");
        write(&rh, "compute.tmpl", template);
        for (p, t) in extra {
            write(&rh, p, t);
        }
        let err =
            render_install(&resolver(&rhel_node()), "n1", &d, "10.0.0.1").expect_err("should fail");
        (d, err, tmp)
    }

    fn at(err: &TemplateError) -> (PathBuf, usize, String) {
        match err {
            TemplateError::At {
                file,
                line,
                problem,
            } => (file.clone(), *line, problem.clone()),
            other => panic!("expected a file:line error, got {other}"),
        }
    }

    #[test]
    fn unknown_directive_names_file_and_line() {
        let (d, err, _t) = render_err("ok #HOSTNAME#\nfoo #BOGUS:x# bar\n", &[]);
        let (file, line, problem) = at(&err);
        assert_eq!((file, line), (d.custom.join("rh/compute.tmpl"), 2));
        assert_eq!(problem, "unknown directive #BOGUS:x#");
        assert_eq!(
            err.to_string(),
            format!(
                "{}:2: unknown directive #BOGUS:x#",
                d.custom.join("rh/compute.tmpl").display()
            )
        );
        // In an included file, that file and its line are named.
        let (d, err, _t) = render_err("#INCLUDE:inc.sh#\n", &[("inc.sh", "a\nb\n#NOPE#\n")]);
        assert_eq!(
            at(&err),
            (
                d.custom.join("rh/inc.sh"),
                3,
                "unknown directive #NOPE#".into()
            )
        );
        // xCAT directives bootherd does not implement say so.
        let (_, err, _t) = render_err("#YAST2NET#\n", &[]);
        assert!(at(&err).2.contains("not supported by bootherd"), "{err}");
        // A known directive missing its closing '#'.
        let (_, err, _t) = render_err("x\n\ny #TABLE:site:key=domain:value\n", &[]);
        assert_eq!(at(&err).1, 3);
        assert!(at(&err).2.starts_with("unterminated #TABLE"), "{err}");
        // A value that must exist.
        let (_, err, _t) = render_err("#TABLE:nodehm:THISNODE:serialport#\n", &[]);
        assert!(
            at(&err).2.starts_with("no value for nodehm.serialport"),
            "{err}"
        );
    }

    #[test]
    fn include_errors_name_file_and_line() {
        let (d, err, _t) = render_err("a\n#INCLUDE:nope.sh#\n", &[]);
        let (file, line, problem) = at(&err);
        assert_eq!((file, line), (d.custom.join("rh/compute.tmpl"), 2));
        assert!(problem.starts_with("cannot include nope.sh"), "{problem}");
        // A file that includes itself stops at the depth limit, at the include that went too deep.
        let (d, err, _t) = render_err(
            "x\n#INCLUDE:loop.sh#\n",
            &[("loop.sh", "again\n#INCLUDE:loop.sh#\n")],
        );
        let (file, line, problem) = at(&err);
        assert_eq!((file, line), (d.custom.join("rh/loop.sh"), 2));
        assert!(problem.contains("deeper than 16"), "{problem}");
        // Sixteen levels are fine.
        let mut extra: Vec<(String, String)> = Vec::new();
        for i in 0..15 {
            extra.push((format!("l{i}"), format!("#INCLUDE:l{}#\n", i + 1)));
        }
        extra.push(("l15".into(), "bottom\n".into()));
        let tmp = tempfile::tempdir().expect("tmp");
        let dd = dirs(tmp.path());
        write(&dd.custom.join("rh"), "compute.tmpl", "#INCLUDE:l0#\n");
        for (p, t) in &extra {
            write(&dd.custom.join("rh"), p, t);
        }
        let out = render_install(&resolver(&rhel_node()), "n1", &dd, "10.0.0.1").expect("16 deep");
        assert_eq!(out.text, "bottom\n");
    }

    #[test]
    fn missing_facts_are_named() {
        let tmp = tempfile::tempdir().expect("tmp");
        let d = dirs(tmp.path());
        let r = resolver(&[
            ("nodelist", &["n2"], "groups", "all"),
            ("nodetype", &["n2"], "os", "rhels9.2"),
        ]);
        let err = render_install(&r, "n2", &d, "10.0.0.1").expect_err("incomplete");
        assert_eq!(
            err.to_string(),
            "n2: missing nodetype.arch nodetype.profile"
        );
        let r = resolver(&[("nodetype", &["n3"], "provmethod", "gone")]);
        let err = render_install(&r, "n3", &d, "10.0.0.1").expect_err("no image");
        assert!(err.to_string().contains("osimage 'gone'"), "{err}");
        let mut rows = rhel_node();
        rows.push((
            "linuximage",
            &[IMG],
            "partitionfile",
            "/install/custom/part",
        ));
        let err = render_install(&resolver(&rows), "n1", &d, "10.0.0.1").expect_err("partfile");
        assert!(err.to_string().contains("partition files"), "{err}");
    }

    #[test]
    fn part_names() {
        assert_eq!(Part::split("n1"), ("n1", Part::Main));
        assert_eq!(Part::split("n1.pre"), ("n1", Part::Pre));
        assert_eq!(Part::split("n1.cluster.post"), ("n1.cluster", Part::Post));
    }

    /// Tags balance (CDATA skipped): enough to catch a broken AutoYaST template.
    fn xml_balanced(s: &str) -> Result<(), String> {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = s;
        while let Some(i) = rest.find('<') {
            rest = &rest[i..];
            if let Some(after) = rest.strip_prefix("<![CDATA[") {
                let end = after.find("]]>").ok_or("unterminated CDATA")?;
                rest = &after[end + 3..];
                continue;
            }
            let end = rest.find('>').ok_or("unterminated tag")?;
            let tag = &rest[1..end];
            rest = &rest[end + 1..];
            if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
            } else {
                stack.push(tag.split_whitespace().next().unwrap_or("").to_string());
            }
        }
        if stack.is_empty() {
            Ok(())
        } else {
            Err(format!("unclosed {stack:?}"))
        }
    }

    /// The lines between `start` and the next `%end`.
    fn section(text: &str, start: &str) -> String {
        text.lines()
            .skip_while(|l| !l.starts_with(start))
            .skip(1)
            .take_while(|l| *l != "%end")
            .map(|l| format!("{l}\n"))
            .collect()
    }

    fn shell_ok(script: &str) {
        let tmp = tempfile::NamedTempFile::new().expect("tmp");
        std::fs::write(tmp.path(), script).expect("write");
        let st = std::process::Command::new("/bin/sh")
            .arg("-n")
            .arg(tmp.path())
            .status()
            .expect("sh");
        assert!(st.success(), "sh -n failed on:\n{script}");
    }

    fn leftover_directive(text: &str) -> Option<String> {
        let re = regex::Regex::new(r"#[A-Z][A-Z0-9_]*(#|:[^#\n]*#)").expect("re");
        re.find(text).map(|m| m.as_str().to_string())
    }

    fn shipped_dirs(tmp: &Path) -> TemplateDirs {
        TemplateDirs {
            custom: tmp.join("custom/install"),
            shipped: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("netboot-templates/install"),
        }
    }

    fn sample(os: &str, arch: &str, image: bool) -> Resolver {
        let img = format!("{os}-{arch}-install-compute");
        let mut rows: Vec<(String, Vec<String>, String, String)> = Vec::new();
        let mut add = |t: &str, k: &[&str], c: &str, v: &str| {
            rows.push((
                t.into(),
                k.iter().map(|x| x.to_string()).collect(),
                c.into(),
                v.into(),
            ))
        };
        add("nodelist", &["n1"], "groups", "compute,all");
        add("hosts", &["n1"], "ip", "10.0.1.5");
        add("mac", &["n1"], "mac", "52:54:00:aa:00:01");
        add("passwd", &["system", "root"], "password", "cluster");
        add("site", &["domain"], "value", "cluster.test");
        add("site", &["master"], "value", "10.0.0.1");
        add("networks", &["10.0.0.0", "255.255.0.0"], "netname", "mgmt");
        if image {
            add("nodetype", &["n1"], "provmethod", &img);
            add("osimage", &[&img], "osvers", os);
            add("osimage", &[&img], "osarch", arch);
            add("osimage", &[&img], "profile", "compute");
            add("osimage", &[&img], "provmethod", "install");
        } else {
            add("nodetype", &["n1"], "os", os);
            add("nodetype", &["n1"], "arch", arch);
            add("nodetype", &["n1"], "profile", "compute");
        }
        let s = Arc::new(crate::store::Store::open_in_memory().expect("store"));
        s.write(None, |tx| {
            for (t, k, c, v) in &rows {
                let k: Vec<&str> = k.iter().map(String::as_str).collect();
                tx.set(t, &k, &[(c.as_str(), Some(v.as_str()))])?;
            }
            Ok(())
        })
        .expect("seed");
        Resolver::new(s)
    }

    #[test]
    fn shipped_kickstart_renders() {
        let tmp = tempfile::tempdir().expect("tmp");
        let d = shipped_dirs(tmp.path());
        for (os, image) in [("rhels8.6", true), ("rocky9.2", false), ("alma9.3", true)] {
            let r = sample(os, "x86_64", image);
            let out =
                render_install(&r, "n1", &d, "10.0.0.1").unwrap_or_else(|e| panic!("{os}: {e}"));
            assert_eq!(out.template, d.shipped.join("compute.rhels.tmpl"));
            let t = &out.text;
            assert_eq!(leftover_directive(t), None, "{os}:\n{t}");
            for want in [
                format!("url --url http://10.0.0.1:80/install/{os}/x86_64\n"),
                "timezone UTC --utc\n".to_string(),
                "network --onboot=yes --bootproto=dhcp --device=52:54:00:aa:00:01\n".to_string(),
                "network --hostname=n1\n".to_string(),
                "@core\n".to_string(),
                "BOOTHERD_MASTER=\"10.0.0.1\"\n".to_string(),
                "/xcat/node/installstatus/$2".to_string(),
                "bootherd_tell installstatus installing ;;".to_string(),
                "/xcat/node/getpostscript\" mypostscript.raw".to_string(),
                "$INSTALLDIR/postscripts/$1".to_string(),
                "bootherd_tell next ||".to_string(),
            ] {
                assert!(t.contains(&want), "{os}: no {want:?} in\n{t}");
            }
            assert!(t.contains("rootpw --iscrypted $6$"), "{t}");
            let pre = section(t, "%pre");
            let post = section(t, "%post");
            assert!(pre.contains("/tmp/bootherd-disk"), "{pre}");
            shell_ok(&pre);
            shell_ok(&post);
        }
    }

    #[test]
    fn shipped_autoyast_renders() {
        let tmp = tempfile::tempdir().expect("tmp");
        let d = shipped_dirs(tmp.path());
        for os in ["sle15.4", "sles15.5"] {
            let r = sample(os, "x86_64", true);
            let out =
                render_install(&r, "n1", &d, "10.0.0.1").unwrap_or_else(|e| panic!("{os}: {e}"));
            assert_eq!(out.template, d.shipped.join("compute.sles.tmpl"));
            let t = &out.text;
            assert_eq!(leftover_directive(t), None, "{t}");
            xml_balanced(t).unwrap_or_else(|e| panic!("{os}: {e}\n{t}"));
            assert_eq!(t.matches("<![CDATA[").count(), 2);
            assert!(
                t.contains("<pattern>base</pattern>\n<pattern>minimal_base</pattern>"),
                "{t}"
            );
            assert!(
                t.contains("<package>chrony</package>\n<package>curl</package>"),
                "{t}"
            );
            assert!(t.contains("<user_password>$6$"), "{t}");
            assert!(t.contains("<timezone>UTC</timezone>"), "{t}");
            assert!(t.contains("bootherd_tell installstatus installing"), "{t}");
            assert!(t.contains("bootherd_tell next"), "{t}");
            for cdata in t.split("<![CDATA[").skip(1) {
                shell_ok(cdata.split("]]>").next().unwrap_or(""));
            }
        }
        // sles names list each pkgdir (the first as its /1 media directory).
        let r = sample("sles15.5", "x86_64", true);
        let t = render_install(&r, "n1", &d, "10.0.0.1")
            .expect("render")
            .text;
        assert!(
            t.contains("<media_url>http://10.0.0.1:80/install/sles15.5/x86_64/1</media_url>"),
            "{t}"
        );
    }

    #[test]
    fn shipped_preseed_renders_with_its_pre_and_post() {
        let tmp = tempfile::tempdir().expect("tmp");
        let d = shipped_dirs(tmp.path());
        for (os, image, family) in [
            ("debian12", true, "debian"),
            ("ubuntu20.04", false, "ubuntu"),
        ] {
            let r = sample(os, "x86_64", image);
            let out =
                render_install(&r, "n1", &d, "10.0.0.1").unwrap_or_else(|e| panic!("{os}: {e}"));
            assert_eq!(
                out.template,
                d.shipped.join(format!("compute.{family}.tmpl"))
            );
            let t = &out.text;
            assert_eq!(leftover_directive(t), None, "{t}");
            for want in [
                "d-i mirror/http/hostname string 10.0.0.1:80\n".to_string(),
                format!("d-i mirror/http/directory string /install/{os}/x86_64\n"),
                "d-i netcfg/get_domain string cluster.test\n".to_string(),
                "d-i pkgsel/include string openssh-server curl wget rsync chrony\n".to_string(),
                "http://10.0.0.1:80/install/autoinst/n1.pre && sh /tmp/bootherd.pre\n".to_string(),
                "http://10.0.0.1:80/install/autoinst/n1.post && in-target sh /tmp/bootherd.post\n"
                    .to_string(),
                "d-i passwd/root-password-crypted password $6$".to_string(),
            ] {
                assert!(t.contains(&want), "{os}: no {want:?} in\n{t}");
            }
            for line in t.lines() {
                assert!(
                    line.is_empty()
                        || line.starts_with('#')
                        || line.starts_with("d-i ")
                        || line.starts_with("tasksel ")
                        || line.starts_with("popularity-contest "),
                    "{os}: not a preseed line: {line}"
                );
            }
            let pre = render_install_part(&r, "n1", &d, "10.0.0.1", Part::Pre)
                .expect("pre")
                .text;
            assert!(pre.starts_with("#!/bin/sh\n"), "{pre}");
            assert!(
                pre.contains("bootherd_tell installstatus installing"),
                "{pre}"
            );
            shell_ok(&pre);
            let post = render_install_part(&r, "n1", &d, "10.0.0.1", Part::Post)
                .expect("post")
                .text;
            assert!(post.contains("bootherd_tell next"), "{post}");
            assert_eq!(leftover_directive(&post), None, "{post}");
            shell_ok(&post);
        }
    }
}
