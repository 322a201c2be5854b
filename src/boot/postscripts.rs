//! `mypostscript`: the shell prologue and script list a node's postscripts run with (xCAT's
//! `Postage.pm` `makescript`), returned for `getpostscript` and the node's postscript request.
//!
//! The template is `<installdir>/postscripts/mypostscript.tmpl` when the site has one, else the
//! shipped `netboot-templates/mypostscript.tmpl` ([`mypostscript_template`]). Lines starting with
//! `##` are dropped, blank lines are dropped from the result (as `getpostscript` returns it), and
//! every value lands shell-quoted:
//! * `#SITE_TABLE_ALL_ATTRIBS_EXPORT#`: `export KEY='value'` for every site key, upper-cased, sorted
//!   (`master` becomes `SITEMASTER`; keys that are not shell names are left out);
//! * `#TABLE:tab:$NODE:col#` / `#TABLEBLANKOKAY:…#`: the value quoted, `''` when unset;
//!   noderes.xcatmaster falls back to `MASTER`, noderes.nfsserver/tftpserver to noderes.xcatmaster;
//! * `#XCATVAR:NAME#` (also `#ENV:NAME#`): one of [`MypostscriptVars`]' values, quoted;
//! * `#IPADDR#`, `#MASTER_IP_ADDR#`, `#OSIMAGE_VARS_EXPORT#`, `#ROUTES_VARS_EXPORT#`,
//!   `tabdump(<table>)`, `#INCLUDE:path#` (missing is empty), and xCAT's raw `$NODE`, `$NSETSTATE`,
//!   `$NTYPE`, `$MACADDRESS`, `$ENABLESSHBETWEENNODES`, `$ZONENAME`;
//! * `#INCLUDE_POSTSCRIPTS_LIST#` / `#INCLUDE_POSTBOOTSCRIPTS_LIST#`: [`script_lists`];
//! * xCAT's vlan, monitoring, kit, cloud, config-management, AIX and ppc64-diskless exports
//!   render empty: bootherd has none of those plugins.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::state::BootState;
use super::template::{
    image_of, lookup, master_for, platform, primary_mac, resolve_ip, row_value, scan_line,
    shipped_root, split_table_args, Directives, Loc, TemplateError,
};
use crate::store::resolver::Resolver;
use crate::store::StoreError;

/// `'value'` for the shell, embedded single quotes closed and escaped.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn is_shell_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn export(name: &str, value: &str) -> String {
    format!("export {name}={}\n", shell_quote(value))
}

/// Where a group of scripts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The `xcatdefaults` row of the postscripts table.
    Defaults,
    /// osimage.postscripts / postbootscripts of the node's image.
    Osimage,
    /// The node's row, or its groups' (resolved like any node attribute).
    Node,
}

impl Origin {
    fn label(self) -> &'static str {
        match self {
            Origin::Defaults => "defaults",
            Origin::Osimage => "osimage",
            Origin::Node => "node",
        }
    }
}

/// The scripts to run, grouped by origin, each entry with its arguments (`setupntp arg1`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptLists {
    pub postscripts: Vec<(Origin, Vec<String>)>,
    pub postbootscripts: Vec<(Origin, Vec<String>)>,
    /// Appended after the postscripts (xCAT adds `setbootfromdisk` for ppc64 installs).
    pub extra_postscripts: Vec<String>,
}

impl ScriptLists {
    /// Every postscript in run order.
    pub fn postscripts_flat(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .postscripts
            .iter()
            .flat_map(|(_, s)| s.iter().cloned())
            .collect();
        v.extend(self.extra_postscripts.iter().cloned());
        v
    }

    /// Every postboot script in run order.
    pub fn postbootscripts_flat(&self) -> Vec<String> {
        self.postbootscripts
            .iter()
            .flat_map(|(_, s)| s.iter().cloned())
            .collect()
    }
}

/// Splits a comma-separated list, keeping entries that were not seen yet (the whole entry,
/// arguments included, is what counts, as in xCAT).
fn take_new(list: Option<String>, seen: &mut Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for e in list.as_deref().unwrap_or("").split(',') {
        let e = e.trim();
        if e.is_empty() || seen.iter().any(|s| s == e) {
            continue;
        }
        seen.push(e.to_string());
        out.push(e.to_string());
    }
    out
}

/// The node's scripts in xCAT's order (`Postage.pm` `getScripts`/`getPostScripts`): the
/// `xcatdefaults` row, then the osimage's lists, then the node's own value of
/// postscripts.postscripts — which, like every node attribute, is the node's row if set, else the
/// first of its groups (in nodelist.groups order) that sets it, or all of them joined when
/// site.hierarchicalattrs names the column. Duplicates are dropped, the first kept.
pub fn script_lists(r: &Resolver, node: &str) -> Result<ScriptLists, StoreError> {
    let image = image_of(r, node)?;
    let mut out = ScriptLists::default();
    for (col, dest) in [
        ("postscripts", &mut out.postscripts),
        ("postbootscripts", &mut out.postbootscripts),
    ] {
        let mut seen = Vec::new();
        let sources = [
            (
                Origin::Defaults,
                row_value(r, "postscripts", "xcatdefaults", col)?,
            ),
            (
                Origin::Osimage,
                match &image {
                    Some(img) => row_value(r, "osimage", img, col)?,
                    None => None,
                },
            ),
            (Origin::Node, r.attr(node, "postscripts", col)?),
        ];
        for (origin, list) in sources {
            let scripts = take_new(list, &mut seen);
            if !scripts.is_empty() {
                dest.push((origin, scripts));
            }
        }
    }
    let state = nodeset_state(r, node)?;
    let arch = r.attr(node, "nodetype", "arch")?.unwrap_or_default();
    if arch == "ppc64" && (state == "install" || state == "sysclone") {
        out.extra_postscripts.push("setbootfromdisk".into());
    }
    Ok(out)
}

fn list_text(kind: &str, sections: &[(Origin, Vec<String>)], extra: &[String]) -> String {
    let mut s = String::new();
    for (origin, scripts) in sections {
        s.push_str(&format!("# {}-{kind}-start-here\n", origin.label()));
        for sc in scripts {
            s.push_str(sc);
            s.push('\n');
        }
        s.push_str(&format!("# {}-{kind}-end-here\n", origin.label()));
    }
    for e in extra {
        s.push_str(e);
        s.push('\n');
    }
    s
}

/// The first word of the node's boot state, as `nodeset stat` shows it (`install`, `netboot`,
/// `boot`, …); `undefined` when there is none.
fn nodeset_state(r: &Resolver, node: &str) -> Result<String, StoreError> {
    let state = BootState::from_tables(
        r.attr(node, "chain", "currstate")?.as_deref(),
        r.attr(node, "nodetype", "provmethod")?.as_deref(),
    );
    if state == BootState::None {
        return Ok("undefined".into());
    }
    Ok(state
        .label()
        .split_whitespace()
        .next()
        .unwrap_or("undefined")
        .to_string())
}

/// The per-node values `#XCATVAR:NAME#` can name: `NODE`, `IPADDR`, `GROUP`, `MASTER`
/// (noderes.xcatmaster → the address facing the node → site.master), `MASTER_IP`, `NFSSERVER`,
/// `TFTPSERVER`, `INSTALLNIC`, `PRIMARYNIC`, `OSVER`, `ARCH`, `PROFILE`, `PROVMETHOD`,
/// `NODESETSTATE`, `NTYPE` (compute, service or MN), `MACMAC` (mac.mac as stored), `MACADDRESS`
/// (the install MAC), `ENABLESSHBETWEENNODES` (YES/NO from site.sshbetweennodes), `ZONENAME`,
/// `UPDATENODE` (0).
pub type MypostscriptVars = BTreeMap<&'static str, String>;

/// Computes [`MypostscriptVars`] for `node`; `server` is this server's address facing it.
pub fn mypostscript_vars(
    r: &Resolver,
    node: &str,
    server: &str,
) -> Result<MypostscriptVars, TemplateError> {
    let err = |problem: String| TemplateError::Node {
        node: node.to_string(),
        problem,
    };
    let a = |t: &str, c: &str| r.attr(node, t, c);
    let Some(master) = master_for(r, node, server)? else {
        return Err(err(
            "unable to identify the master (set noderes.xcatmaster or site.master)".into(),
        ));
    };
    let Some(master_ip) = resolve_ip(r, &master)? else {
        return Err(err(format!(
            "unable to resolve xcatmaster '{master}' to an IP address"
        )));
    };
    let ip = resolve_ip(r, node)?.unwrap_or_default();
    // nodetype holds what nodeset copied from the image; an image-only definition still answers.
    let image = image_of(r, node)?;
    let from_image = |c: &str| -> Result<Option<String>, StoreError> {
        match &image {
            Some(img) => row_value(r, "osimage", img, c),
            None => Ok(None),
        }
    };
    let osver = a("nodetype", "os")?.or(from_image("osvers")?);
    let arch = a("nodetype", "arch")?.or(from_image("osarch")?);
    let profile = a("nodetype", "profile")?.or(from_image("profile")?);
    let macmac = a("mac", "mac")?;
    let site_master = r.site_master()?;
    let ntype = if site_master.as_deref().is_some_and(|m| m == node || m == ip) {
        "MN"
    } else if row_value(r, "servicenode", node, "node")?.is_some() {
        "service"
    } else {
        "compute"
    };
    let ssh = enable_ssh(r, node, ntype == "service")?;
    let mut v = MypostscriptVars::new();
    v.insert("NODE", node.to_string());
    v.insert("IPADDR", ip);
    v.insert("GROUP", a("nodelist", "groups")?.unwrap_or_default());
    v.insert(
        "NFSSERVER",
        a("noderes", "nfsserver")?.unwrap_or_else(|| master.clone()),
    );
    v.insert(
        "TFTPSERVER",
        a("noderes", "tftpserver")?.unwrap_or_else(|| master.clone()),
    );
    v.insert("MASTER", master);
    v.insert("MASTER_IP", master_ip);
    v.insert(
        "INSTALLNIC",
        a("noderes", "installnic")?.unwrap_or_default(),
    );
    v.insert(
        "PRIMARYNIC",
        a("noderes", "primarynic")?.unwrap_or_default(),
    );
    v.insert("OSVER", osver.unwrap_or_default());
    v.insert("ARCH", arch.unwrap_or_default());
    v.insert("PROFILE", profile.unwrap_or_default());
    v.insert(
        "PROVMETHOD",
        a("nodetype", "provmethod")?.unwrap_or_default(),
    );
    v.insert("NODESETSTATE", nodeset_state(r, node)?);
    v.insert("NTYPE", ntype.to_string());
    v.insert(
        "MACADDRESS",
        macmac
            .as_deref()
            .and_then(|m| primary_mac(m, node))
            .unwrap_or_default(),
    );
    v.insert("MACMAC", macmac.unwrap_or_default());
    v.insert(
        "ENABLESSHBETWEENNODES",
        if ssh { "YES" } else { "NO" }.to_string(),
    );
    v.insert("ZONENAME", String::new());
    v.insert("UPDATENODE", "0".to_string());
    Ok(v)
}

/// xCAT's `enableSSH`: service nodes always; otherwise by site.sshbetweennodes — unset or
/// ALLGROUPS yes, NOGROUPS no, else whether the node is in one of the listed groups.
fn enable_ssh(r: &Resolver, node: &str, service: bool) -> Result<bool, StoreError> {
    if service {
        return Ok(true);
    }
    let Some(v) = r.site("sshbetweennodes")? else {
        return Ok(true);
    };
    let items: Vec<&str> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() || items.contains(&"ALLGROUPS") {
        return Ok(true);
    }
    if items.contains(&"NOGROUPS") {
        return Ok(false);
    }
    // Groups, nodes, dynamic groups: whatever the noderange grammar makes of the list. A list that
    // does not parse enables nobody, as a list naming no existing group would.
    Ok(r.noderange(&items.join(","), false)
        .map(|e| e.nodes.iter().any(|n| n == node))
        .unwrap_or(false))
}

/// The site's template if it has one, else the shipped one: (path, text).
pub fn mypostscript_template(installdir: &Path) -> Result<(PathBuf, String), TemplateError> {
    let custom = installdir.join("postscripts").join("mypostscript.tmpl");
    let path = if custom.is_file() {
        custom
    } else {
        shipped_root().join("mypostscript.tmpl")
    };
    let text = std::fs::read_to_string(&path).map_err(|source| TemplateError::Io {
        path: path.clone(),
        source,
    })?;
    Ok((path, text))
}

/// Renders `node`'s mypostscript from `template` (the text of a mypostscript template).
/// `server` is this server's address facing the node.
pub fn render_mypostscript(
    r: &Resolver,
    node: &str,
    server: &str,
    template: &str,
) -> Result<String, TemplateError> {
    render_mypostscript_from(r, node, server, template, Path::new("mypostscript.tmpl"))
}

/// [`render_mypostscript`], with the template's file name for error messages.
pub fn render_mypostscript_from(
    r: &Resolver,
    node: &str,
    server: &str,
    template: &str,
    file: &Path,
) -> Result<String, TemplateError> {
    let vars = mypostscript_vars(r, node, server)?;
    let lists = script_lists(r, node)?;
    let mut ex = MyExpander {
        r,
        node,
        vars: &vars,
        lists: &lists,
        depth: 0,
    };
    let text = ex.text(file, template)?;
    let mut out = String::with_capacity(text.len());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

/// Tables `tabdump()` refuses (xCAT's list: node-keyed, logs, or secrets).
const NO_TABDUMP: &[&str] = &[
    "auditlog",
    "bootparams",
    "chain",
    "deps",
    "domain",
    "eventlog",
    "firmware",
    "hypervisor",
    "iscsi",
    "kvm_nodedata",
    "mac",
    "nics",
    "ipmi",
    "mp",
    "ppc",
    "ppcdirect",
    "site",
    "websrv",
    "zvm",
    "statelite",
    "rack",
    "hosts",
    "prodkey",
    "switch",
    "node",
    "kit",
    "kitcomponent",
];

/// Directives that render nothing here (xCAT plugins bootherd does not have).
const EMPTY: &[&str] = &[
    "VLAN_VARS_EXPORT",
    "MONITORING_VARS_EXPORT",
    "NETWORK_FOR_DISKLESS_EXPORT",
    "KITCOMP_DEPLOY_PARAMS_EXPORT",
    "CFGMGTINFO_EXPORT",
    "CLOUDINFO_EXPORT",
    "AIX_ROOT_PW_VARS_EXPORT",
];

const KNOWN: &[&str] = &[
    "TABLE",
    "TABLEBLANKOKAY",
    "XCATVAR",
    "ENV",
    "INCLUDE",
    "IPADDR",
    "MASTER_IP_ADDR",
    "SITE_TABLE_ALL_ATTRIBS_EXPORT",
    "OSIMAGE_VARS_EXPORT",
    "ROUTES_VARS_EXPORT",
    "INCLUDE_POSTSCRIPTS_LIST",
    "INCLUDE_POSTBOOTSCRIPTS_LIST",
];

struct MyExpander<'a> {
    r: &'a Resolver,
    node: &'a str,
    vars: &'a MypostscriptVars,
    lists: &'a ScriptLists,
    depth: usize,
}

/// Replaces `$NAME` where it is not the start of a longer name (xCAT's `$NODE` would otherwise
/// also eat `$NODESETSTATE`).
fn replace_word(s: &str, word: &str, with: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(word) {
        let after = &rest[i + word.len()..];
        let boundary = !after
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        out.push_str(&rest[..i]);
        out.push_str(if boundary { with } else { word });
        rest = after;
    }
    out.push_str(rest);
    out
}

impl MyExpander<'_> {
    fn var(&self, name: &str) -> &str {
        self.vars.get(name).map(String::as_str).unwrap_or("")
    }

    fn text(&mut self, file: &Path, text: &str) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(text.len() + 1024);
        for (n, line) in text.split_inclusive('\n').enumerate() {
            if line.starts_with("##") {
                continue;
            }
            let loc = Loc { file, line: n + 1 };
            let mut l = line.to_string();
            for (word, value) in [
                ("$NODE", self.node.to_string()),
                ("$NSETSTATE", self.var("NODESETSTATE").to_string()),
                ("$NTYPE", self.var("NTYPE").to_string()),
                ("$MACADDRESS", self.var("MACADDRESS").to_string()),
                (
                    "$ENABLESSHBETWEENNODES",
                    shell_quote(self.var("ENABLESSHBETWEENNODES")),
                ),
                ("$ZONENAME", shell_quote(self.var("ZONENAME"))),
            ] {
                if l.contains(word) {
                    l = replace_word(&l, word, &value);
                }
            }
            // The old template form of the same value.
            let old = format!(
                "#Subroutine:xCAT::Template::enablesshbetweennodes:{}#",
                self.node
            );
            if l.contains(&old) {
                l = l.replace(&old, &shell_quote(self.var("ENABLESSHBETWEENNODES")));
            }
            if let Some(t) = l
                .trim()
                .strip_prefix("tabdump(")
                .and_then(|x| x.strip_suffix(')'))
            {
                out.push_str(&self.tabdump(loc, t.trim())?);
                continue;
            }
            out.push_str(&scan_line(self, loc, &l)?);
        }
        Ok(out)
    }

    fn tabdump(&self, loc: Loc<'_>, table: &str) -> Result<String, TemplateError> {
        if NO_TABDUMP.iter().any(|p| table.starts_with(p)) {
            return Err(loc.err(format!(
                "tabdump({table}): only tables not keyed by node can be dumped (use #TABLE:…# for node attributes)"
            )));
        }
        let t = self.r.table(table).map_err(|e| loc.err(e.to_string()))?;
        let up = table.to_ascii_uppercase();
        let mut s = export(&format!("{up}_LINES"), &t.rows.len().to_string());
        for (i, row) in t.rows.iter().enumerate() {
            let mut val = String::new();
            for (c, name) in t.spec.cols.iter().enumerate() {
                // Comments go last and empty: free text there broke the shell (xCAT issue 2634).
                if *name == "comments" {
                    continue;
                }
                let v = row.get(c).and_then(|x| x.as_deref()).unwrap_or("");
                val.push_str(&format!("{name}={v}||"));
                if *name == "disable" {
                    val.push_str("comments=");
                }
            }
            s.push_str(&export(&format!("{up}_LINE{}", i + 1), &val));
        }
        Ok(s)
    }

    fn table(&self, loc: Loc<'_>, a: &str) -> Result<String, TemplateError> {
        let Some((table, key, field)) = split_table_args(a) else {
            return Err(loc.err(format!("#TABLE:{a}# is not table:key:column")));
        };
        let v = lookup(self.r, self.node, table, key, field).map_err(|e| loc.err(e.to_string()))?;
        let v = match v {
            Some(v) => v,
            None if table == "noderes" && field == "xcatmaster" => self.var("MASTER").to_string(),
            None if table == "noderes" && (field == "nfsserver" || field == "tftpserver") => {
                self.var("MASTER").to_string()
            }
            None => String::new(),
        };
        Ok(shell_quote(&v))
    }

    fn site_exports(&self) -> Result<String, StoreError> {
        let t = self.r.table("site")?;
        let mut kv: BTreeMap<String, String> = BTreeMap::new();
        for row in &t.rows {
            let (Some(Some(k)), v) = (row.first(), row.get(1).cloned().flatten()) else {
                continue;
            };
            let name = if k == "master" {
                if self.r.site_master()?.is_none() {
                    // Garbage in site.master never reaches a node (logged by site_master).
                    continue;
                }
                "SITEMASTER".to_string()
            } else {
                k.to_ascii_uppercase()
            };
            if is_shell_name(&name) {
                kv.entry(name).or_insert_with(|| v.unwrap_or_default());
            }
        }
        Ok(kv.iter().map(|(k, v)| export(k, v)).collect())
    }

    fn routes(&self, loc: Loc<'_>) -> Result<String, TemplateError> {
        let e = |x: StoreError| loc.err(x.to_string());
        let names = self
            .r
            .attr(self.node, "noderes", "routenames")
            .map_err(e)?
            .unwrap_or_default();
        let mut s = String::new();
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let g = |c: &str| row_value(self.r, "routes", name, c);
            let (Some(net), Some(mask)) = (g("net").map_err(e)?, g("mask").map_err(e)?) else {
                continue;
            };
            let var = format!("ROUTE_{name}");
            if !is_shell_name(&var) {
                return Err(loc.err(format!(
                    "route name '{name}' (noderes.routenames) cannot be part of a shell variable name"
                )));
            }
            let gw = g("gateway").map_err(e)?.unwrap_or_default();
            let ifname = g("ifname").map_err(e)?.unwrap_or_default();
            s.push_str(&export(&var, &format!("{net},{mask},{gw},{ifname}")));
        }
        Ok(s)
    }

    /// Package lists and image environment (xCAT's `getImageitems_for_node`).
    fn osimage_vars(&self, loc: Loc<'_>) -> Result<String, TemplateError> {
        let e = |x: StoreError| loc.err(x.to_string());
        let r = self.r;
        let mut s = String::new();
        let (ospkglist, otherpkglist, synclists) = match image_of(r, self.node).map_err(e)? {
            Some(img) => {
                let li = |c: &str| row_value(r, "linuximage", &img, c);
                let pkglist = li("pkglist").map_err(e)?;
                let other = li("otherpkglist").map_err(e)?;
                if pkglist.is_some() {
                    if let Some(d) = li("pkgdir").map_err(e)? {
                        s.push_str(&export("OSPKGDIR", &d));
                    }
                }
                if other.is_some() {
                    if let Some(d) = li("otherpkgdir").map_err(e)? {
                        s.push_str(&export("OTHERPKGDIR", &d));
                    }
                }
                if let Some(env) = row_value(r, "osimage", &img, "environvar").map_err(e)? {
                    for item in env.split(',') {
                        if let Some((k, v)) = item.split_once('=') {
                            if is_shell_name(k.trim()) {
                                s.push_str(&export(k.trim(), v.trim()));
                            }
                        }
                    }
                }
                let sync = row_value(r, "osimage", &img, "synclists").map_err(e)?;
                (pkglist, other, sync)
            }
            None => {
                let found = |ext: &str| -> Result<Option<String>, StoreError> {
                    Ok(self
                        .find_list(ext)?
                        .map(|p| p.to_string_lossy().into_owned()))
                };
                (
                    found("pkglist").map_err(e)?,
                    found("otherpkgs.pkglist").map_err(e)?,
                    found("synclist").map_err(e)?,
                )
            }
        };
        let files = |l: &str| -> Vec<PathBuf> {
            l.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(PathBuf::from)
                .collect()
        };
        if let Some(l) = ospkglist {
            let (env, pkgs) = split_env(super::template::pkglist_entries(&files(&l))?);
            if !env.is_empty() {
                s.push_str(&export("ENVLIST", &env.join(" ")));
            }
            if !pkgs.is_empty() {
                s.push_str(&export("OSPKGS", &pkgs.join(",")));
            }
        }
        if let Some(l) = otherpkglist {
            let entries = super::template::pkglist_entries(&files(&l))?;
            let mut index = 0;
            for sub in entries.split(|x| x == "#NEW_INSTALL_LIST#") {
                index += 1;
                let (env, pkgs) = split_env(sub.to_vec());
                if !env.is_empty() {
                    s.push_str(&export(&format!("ENVLIST{index}"), &env.join(" ")));
                }
                s.push_str(&export(&format!("OTHERPKGS{index}"), &pkgs.join(",")));
            }
            if index > 0 && !entries.is_empty() {
                s.push_str(&export("OTHERPKGS_INDEX", &index.to_string()));
            }
        }
        if synclists.is_none() {
            s.push_str(&export("NOSYNCFILES", "1"));
        }
        Ok(s)
    }

    /// A node-type-based install's list file (`<installdir>/custom/<install|netboot>/<platform>/`,
    /// then the shipped install directory).
    fn find_list(&self, ext: &str) -> Result<Option<PathBuf>, StoreError> {
        let (os, arch, profile) = (self.var("OSVER"), self.var("ARCH"), self.var("PROFILE"));
        let Some(p) = platform(os) else {
            return Ok(None);
        };
        if profile.is_empty() {
            return Ok(None);
        }
        let stat = if matches!(self.var("NODESETSTATE"), "netboot" | "statelite") {
            "netboot"
        } else {
            "install"
        };
        let installdir = self
            .r
            .site("installdir")?
            .unwrap_or_else(|| "/install".into());
        let names = super::template::candidates(profile, os, arch, &[], Some(p.family.name()), ext);
        let mut dirs = vec![Path::new(&installdir).join("custom").join(stat).join(p.dir)];
        if stat == "install" {
            dirs.push(shipped_root().join("install"));
        }
        Ok(dirs
            .iter()
            .flat_map(|d| names.iter().map(move |n| d.join(n)))
            .find(|f| f.is_file()))
    }
}

/// Separates `#ENV:A=1#` entries (xCAT's `get_envlist`) from package names.
fn split_env(entries: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut env = Vec::new();
    let mut pkgs = Vec::new();
    for e in entries {
        match e.strip_prefix("#ENV:").and_then(|x| x.strip_suffix('#')) {
            Some(v) => env.push(v.to_string()),
            None if e.starts_with('#') => {}
            None => pkgs.push(e),
        }
    }
    (env, pkgs)
}

impl Directives for MyExpander<'_> {
    fn is_known(&self, name: &str) -> bool {
        KNOWN.contains(&name) || EMPTY.contains(&name)
    }

    fn expand(
        &mut self,
        loc: Loc<'_>,
        name: &str,
        args: Option<&str>,
        raw: &str,
    ) -> Result<String, TemplateError> {
        let e = |x: StoreError| loc.err(x.to_string());
        match (name, args) {
            ("TABLE" | "TABLEBLANKOKAY", Some(a)) => self.table(loc, a),
            ("XCATVAR" | "ENV", Some(a)) => {
                let n = a.trim().trim_start_matches('$');
                match self.vars.get(n) {
                    Some(v) => Ok(shell_quote(v)),
                    None => Err(loc.err(format!(
                        "unknown variable #{name}:{a}# (known: {})",
                        self.vars.keys().copied().collect::<Vec<_>>().join(", ")
                    ))),
                }
            }
            ("INCLUDE", Some(a)) => {
                // xCAT's includetmpl: a missing file includes nothing.
                let path = PathBuf::from(a.trim());
                let Ok(text) = std::fs::read_to_string(&path) else {
                    return Ok(String::new());
                };
                if self.depth >= super::template::MAX_INCLUDE_DEPTH {
                    return Err(loc.err("includes nested too deep (does a file include itself?)"));
                }
                self.depth += 1;
                let res = self.text(&path, &text);
                self.depth -= 1;
                res
            }
            ("IPADDR", None) => Ok(shell_quote(self.var("IPADDR"))),
            ("MASTER_IP_ADDR", None) => Ok(shell_quote(self.var("MASTER_IP"))),
            ("SITE_TABLE_ALL_ATTRIBS_EXPORT", None) => self.site_exports().map_err(e),
            ("OSIMAGE_VARS_EXPORT", None) => self.osimage_vars(loc),
            ("ROUTES_VARS_EXPORT", None) => self.routes(loc),
            ("INCLUDE_POSTSCRIPTS_LIST", None) => Ok(list_text(
                "postscripts",
                &self.lists.postscripts,
                &self.lists.extra_postscripts,
            )),
            ("INCLUDE_POSTBOOTSCRIPTS_LIST", None) => Ok(list_text(
                "postbootscripts",
                &self.lists.postbootscripts,
                &[],
            )),
            (n, None) if EMPTY.contains(&n) => Ok(String::new()),
            (n, _) if self.is_known(n) => Err(loc.err(format!("wrong use of {raw}"))),
            _ => Err(loc.err(format!("unknown directive {raw}"))),
        }
    }
}

/// The postscripts bootherd ships (`postscripts/` beside the templates): xCAT's defaults that a
/// new store's `xcatdefaults` row names (syslog, remoteshell, syncfiles, otherpkgs).
pub fn shipped_postscripts_dir() -> PathBuf {
    super::template::shipped_file("postscripts")
}

/// Puts the shipped postscripts into `<installdir>/postscripts/` where a file of that name is
/// missing (a site's own version is never replaced), and root's ssh public keys into
/// `_ssh/authorized_keys` when that is missing (what the remoteshell postscript installs on
/// nodes, as xCAT's xcatconfig publishes them). Returns what was written.
///
/// Nothing is written when `installdir` itself does not exist: the install tree is the site's
/// (made by the package, copycds or the admin), not something the daemon conjures up.
pub fn install_shipped(installdir: &Path) -> std::io::Result<Vec<PathBuf>> {
    use std::os::unix::fs::PermissionsExt;
    let dest = installdir.join("postscripts");
    let mut written = Vec::new();
    if !installdir.is_dir() {
        return Ok(written);
    }
    let src = shipped_postscripts_dir();
    let Ok(entries) = std::fs::read_dir(&src) else {
        return Ok(written);
    };
    for e in entries.flatten() {
        let from = e.path();
        if !from.is_file() {
            continue;
        }
        let to = dest.join(e.file_name());
        if to.exists() {
            continue;
        }
        std::fs::create_dir_all(&dest)?;
        std::fs::copy(&from, &to)?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))?;
        written.push(to);
    }
    let keys = dest.join("_ssh").join("authorized_keys");
    if !keys.exists() {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"));
        let mut text = String::new();
        for name in ["id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"] {
            if let Ok(k) = std::fs::read_to_string(home.join(".ssh").join(name)) {
                text.push_str(k.trim_end());
                text.push('\n');
            }
        }
        if !text.is_empty() {
            std::fs::create_dir_all(dest.join("_ssh"))?;
            std::fs::write(&keys, text)?;
            std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644))?;
            written.push(keys);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    type RowSpec<'a> = (&'a str, &'a [&'a str], &'a str, &'a str);

    const IMG: &str = "rhels9.2-x86_64-install-compute";

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

    /// n1 in groups compute and gpu, installing an image that has postscripts of its own.
    fn rows() -> Vec<RowSpec<'static>> {
        vec![
            ("nodelist", &["n1"], "groups", "compute,gpu"),
            ("hosts", &["n1"], "ip", "10.0.1.5"),
            (
                "mac",
                &["n1"],
                "mac",
                "52:54:00:aa:00:01|52:54:00:aa:00:02!n1-ib",
            ),
            ("nodetype", &["n1"], "provmethod", IMG),
            ("nodetype", &["n1"], "os", "rhels9.2"),
            ("nodetype", &["n1"], "arch", "x86_64"),
            ("nodetype", &["n1"], "profile", "compute"),
            (
                "chain",
                &["n1"],
                "currstate",
                "install rhels9.2-x86_64-compute",
            ),
            ("osimage", &[IMG], "osvers", "rhels9.2"),
            ("osimage", &[IMG], "osarch", "x86_64"),
            ("osimage", &[IMG], "profile", "compute"),
            ("osimage", &[IMG], "postscripts", "setupntp arg1,syslog"),
            ("osimage", &[IMG], "postbootscripts", "confignetwork"),
            (
                "postscripts",
                &["xcatdefaults"],
                "postscripts",
                "syslog,remoteshell,syncfiles",
            ),
            (
                "postscripts",
                &["xcatdefaults"],
                "postbootscripts",
                "otherpkgs",
            ),
            (
                "postscripts",
                &["compute"],
                "postscripts",
                "compute1,setupntp arg1",
            ),
            ("postscripts", &["gpu"], "postscripts", "gpu1"),
            ("postscripts", &["gpu"], "postbootscripts", "gpuboot"),
            (
                "postscripts",
                &["n1"],
                "postbootscripts",
                "n1boot,otherpkgs",
            ),
            ("noderes", &["compute"], "installnic", "mac"),
            ("noderes", &["n1"], "syslog", "it's"),
            ("site", &["domain"], "value", "cluster.test"),
            ("site", &["master"], "value", "10.0.0.254"),
            ("networks", &["10.0.0.0", "255.255.0.0"], "netname", "mgmt"),
            (
                "networks",
                &["10.0.0.0", "255.255.0.0"],
                "gateway",
                "10.0.0.254",
            ),
        ]
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn lists_follow_xcat_order() {
        // Defaults, then the image, then the node's own value — which comes from its first group
        // that sets it (compute, not gpu); later duplicates go, arguments and all.
        let l = script_lists(&resolver(&rows()), "n1").expect("lists");
        assert_eq!(
            l.postscripts,
            vec![
                (Origin::Defaults, s(&["syslog", "remoteshell", "syncfiles"])),
                (Origin::Osimage, s(&["setupntp arg1"])),
                (Origin::Node, s(&["compute1"])),
            ]
        );
        // postbootscripts: the node's own row wins over its groups'.
        assert_eq!(
            l.postbootscripts,
            vec![
                (Origin::Defaults, s(&["otherpkgs"])),
                (Origin::Osimage, s(&["confignetwork"])),
                (Origin::Node, s(&["n1boot"])),
            ]
        );
        // With site.hierarchicalattrs naming the column, every group's list is used.
        let mut r = rows();
        r.push(("site", &["hierarchicalattrs"], "value", "postscripts"));
        let l = script_lists(&resolver(&r), "n1").expect("lists");
        assert_eq!(
            l.postscripts_flat(),
            s(&[
                "syslog",
                "remoteshell",
                "syncfiles",
                "setupntp arg1",
                "compute1",
                "gpu1"
            ])
        );
    }

    #[test]
    fn mypostscript_from_a_template() {
        let tmpl = "## dropped\n\
                    export NODE=#XCATVAR:NODE#\n\
                    export MASTER=#XCATVAR:MASTER#\n\
                    export MASTER_IP=#XCATVAR:MASTER_IP#\n\
                    NFSSERVER=#TABLE:noderes:$NODE:nfsserver#\n\
                    GROUP=#TABLE:nodelist:$NODE:groups#\n\
                    SYSLOG=#TABLE:noderes:THISNODE:syslog#\n\
                    PRIMARYNIC=#TABLE:noderes:$NODE:primarynic#\n\
                    DOMAIN=#TABLE:site:key=domain:value#\n\
                    IPADDR=#IPADDR#\n\
                    \n\
                    N=$NODE S=$NSETSTATE T=$NTYPE M=$MACADDRESS E=$ENABLESSHBETWEENNODES $NODESTATUS\n\
                    # postscripts-start-here\n\
                    #INCLUDE_POSTSCRIPTS_LIST#\n\
                    # postscripts-end-here\n\
                    # postbootscripts-start-here\n\
                    #INCLUDE_POSTBOOTSCRIPTS_LIST#\n\
                    # postbootscripts-end-here\n";
        let out = render_mypostscript(&resolver(&rows()), "n1", "10.0.0.1", tmpl).expect("render");
        assert_eq!(
            out,
            "export NODE='n1'\n\
             export MASTER='10.0.0.1'\n\
             export MASTER_IP='10.0.0.1'\n\
             NFSSERVER='10.0.0.1'\n\
             GROUP='compute,gpu'\n\
             SYSLOG='it'\\''s'\n\
             PRIMARYNIC=''\n\
             DOMAIN='cluster.test'\n\
             IPADDR='10.0.1.5'\n\
             N=n1 S=install T=compute M=52:54:00:aa:00:01 E='YES' $NODESTATUS\n\
             # postscripts-start-here\n\
             # defaults-postscripts-start-here\n\
             syslog\n\
             remoteshell\n\
             syncfiles\n\
             # defaults-postscripts-end-here\n\
             # osimage-postscripts-start-here\n\
             setupntp arg1\n\
             # osimage-postscripts-end-here\n\
             # node-postscripts-start-here\n\
             compute1\n\
             # node-postscripts-end-here\n\
             # postscripts-end-here\n\
             # postbootscripts-start-here\n\
             # defaults-postbootscripts-start-here\n\
             otherpkgs\n\
             # defaults-postbootscripts-end-here\n\
             # osimage-postbootscripts-start-here\n\
             confignetwork\n\
             # osimage-postbootscripts-end-here\n\
             # node-postbootscripts-start-here\n\
             n1boot\n\
             # node-postbootscripts-end-here\n\
             # postbootscripts-end-here\n"
        );
        // Without a server address facing the node, the master is site.master.
        let out = render_mypostscript(&resolver(&rows()), "n1", "", "M=#XCATVAR:MASTER#\n")
            .expect("render");
        assert_eq!(out, "M='10.0.0.254'\n");
        // noderes.xcatmaster first.
        let mut r = rows();
        r.push(("noderes", &["compute"], "xcatmaster", "10.0.0.9"));
        let out = render_mypostscript(
            &resolver(&r),
            "n1",
            "10.0.0.1",
            "M=#XCATVAR:MASTER# #TABLE:noderes:$NODE:tftpserver#\n",
        )
        .expect("render");
        assert_eq!(out, "M='10.0.0.9' '10.0.0.9'\n");
    }

    #[test]
    fn mypostscript_errors_name_the_line() {
        let err = render_mypostscript(&resolver(&rows()), "n1", "10.0.0.1", "a=1\n\nb=#WHAT#\n")
            .expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "mypostscript.tmpl:3: unknown directive #WHAT#"
        );
        let err = render_mypostscript(&resolver(&rows()), "n1", "10.0.0.1", "x=#XCATVAR:NOPE#\n")
            .expect_err("unknown variable");
        assert!(
            err.to_string()
                .starts_with("mypostscript.tmpl:1: unknown variable"),
            "{err}"
        );
        let err = render_mypostscript(&resolver(&rows()), "n1", "10.0.0.1", "tabdump(site)\n")
            .expect_err("site");
        assert!(
            err.to_string().contains("only tables not keyed by node"),
            "{err}"
        );
    }

    #[test]
    fn shipped_mypostscript_renders_and_runs() {
        let (path, tmpl) = mypostscript_template(Path::new("/nonexistent")).expect("shipped");
        assert!(
            path.ends_with("netboot-templates/mypostscript.tmpl"),
            "{}",
            path.display()
        );
        let out = render_mypostscript(&resolver(&rows()), "n1", "10.0.0.1", &tmpl).expect("render");
        for want in [
            "export DOMAIN='cluster.test'\n",
            "export SITEMASTER='10.0.0.254'\n",
            "export XCATIPORT='3002'\n",
            "export NODE='n1'\n",
            "export IPADDR='10.0.1.5'\n",
            "export GROUP='compute,gpu'\n",
            "export MASTER='10.0.0.1'\n",
            "export MASTER_IP='10.0.0.1'\n",
            "export NFSSERVER='10.0.0.1'\n",
            "export INSTALLNIC='mac'\n",
            "export PRIMARYNIC=''\n",
            "export SYSLOG='it'\\''s'\n",
            "export OSVER='rhels9.2'\n",
            "export ARCH='x86_64'\n",
            "export PROFILE='compute'\n",
            "export PROVMETHOD='rhels9.2-x86_64-install-compute'\n",
            "export NODESETSTATE='install'\n",
            "export NTYPE='compute'\n",
            "export MACMAC='52:54:00:aa:00:01|52:54:00:aa:00:02!n1-ib'\n",
            "export MACADDRESS='52:54:00:aa:00:01'\n",
            "export ENABLESSHBETWEENNODES='YES'\n",
            "export NOSYNCFILES='1'\n",
            "export NETWORKS_LINES='1'\n",
            "export NETWORKS_LINE1='netname=mgmt||net=10.0.0.0||mask=255.255.0.0||mgtifname=||gateway=10.0.0.254||",
        ] {
            assert!(out.contains(want), "no {want:?} in\n{out}");
        }
        assert!(!out.contains("\n##"), "{out}");

        assert!(!out.lines().any(|l| l.trim().is_empty()), "{out}");
        let post = out
            .split("# postscripts-start-here\n")
            .nth(1)
            .and_then(|x| x.split("# postscripts-end-here").next())
            .expect("postscripts section");
        let entries: Vec<&str> = post.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            entries,
            [
                "syslog",
                "remoteshell",
                "syncfiles",
                "setupntp arg1",
                "compute1"
            ]
        );

        // The prologue is valid shell that sets what it says, quotes and all.
        let tmp = tempfile::NamedTempFile::new().expect("tmp");
        std::fs::write(tmp.path(), &out).expect("write");
        let o = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(
                ". \"$0\" >/dev/null 2>&1; printf '%s|%s|%s' \"$NODE\" \"$SYSLOG\" \"$SITEMASTER\"",
            )
            .arg(tmp.path())
            .output()
            .expect("sh");
        assert_eq!(String::from_utf8_lossy(&o.stdout), "n1|it's|10.0.0.254");
    }

    #[test]
    fn ssh_between_nodes() {
        let mut r = rows();
        r.push(("site", &["sshbetweennodes"], "value", "gpu"));
        let v = mypostscript_vars(&resolver(&r), "n1", "10.0.0.1").expect("vars");
        assert_eq!(
            v.get("ENABLESSHBETWEENNODES").map(String::as_str),
            Some("YES")
        );
        let mut r = rows();
        r.push(("site", &["sshbetweennodes"], "value", "storage"));
        r.push(("nodelist", &["s1"], "groups", "storage"));
        let v = mypostscript_vars(&resolver(&r), "n1", "10.0.0.1").expect("vars");
        assert_eq!(
            v.get("ENABLESSHBETWEENNODES").map(String::as_str),
            Some("NO")
        );
        let mut r = rows();
        r.push(("site", &["sshbetweennodes"], "value", "NOGROUPS"));
        r.push(("servicenode", &["n1"], "tftpserver", "1"));
        let v = mypostscript_vars(&resolver(&r), "n1", "10.0.0.1").expect("vars");
        assert_eq!(v.get("NTYPE").map(String::as_str), Some("service"));
        assert_eq!(
            v.get("ENABLESSHBETWEENNODES").map(String::as_str),
            Some("YES")
        );
    }

    #[test]
    fn osimage_package_lists_and_environment() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path();
        std::fs::write(
            dir.join("os.pkglist"),
            "a\n  b  \n# note\n\n#ENV:FOO=1#\n#INCLUDE:more.pkglist#\n",
        )
        .expect("write");
        std::fs::write(dir.join("more.pkglist"), "c\n").expect("write");
        std::fs::write(dir.join("other.pkglist"), "x\n#NEW_INSTALL_LIST#\ny\nz\n").expect("write");
        let os_list = dir.join("os.pkglist").to_string_lossy().into_owned();
        let other_list = dir.join("other.pkglist").to_string_lossy().into_owned();
        let mut r = rows();
        r.push(("linuximage", &[IMG], "pkglist", &os_list));
        r.push(("linuximage", &[IMG], "pkgdir", "/install/rhels9.2/x86_64"));
        r.push(("linuximage", &[IMG], "otherpkglist", &other_list));
        r.push((
            "linuximage",
            &[IMG],
            "otherpkgdir",
            "/install/post/otherpkgs",
        ));
        r.push(("osimage", &[IMG], "environvar", "A=1,B=two"));
        r.push(("osimage", &[IMG], "synclists", "/install/custom/sync"));
        let out = render_mypostscript(&resolver(&r), "n1", "10.0.0.1", "#OSIMAGE_VARS_EXPORT#\n")
            .expect("render");
        assert_eq!(
            out,
            "export OSPKGDIR='/install/rhels9.2/x86_64'\n\
             export OTHERPKGDIR='/install/post/otherpkgs'\n\
             export A='1'\n\
             export B='two'\n\
             export ENVLIST='FOO=1'\n\
             export OSPKGS='a,b,c'\n\
             export OTHERPKGS1='x'\n\
             export OTHERPKGS2='y,z'\n\
             export OTHERPKGS_INDEX='2'\n"
        );
    }
}
