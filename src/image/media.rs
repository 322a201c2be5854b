//! Which distribution a medium holds, from the metadata files on it — xCAT's `copycd` rules
//! (`plugins/anaconda.pm`, `sles.pm`, `debian.pm`), as pure functions over a file reader so the
//! same code reads an ISO image, a mounted medium or a copied tree.
//!
//! - RHEL family: `.discinfo` (timestamp / description / arch / disc numbers); the description
//!   names the product (`Red Hat Enterprise Linux 9.4` → `rhels9.4`, `Rocky Linux 9.4` →
//!   `rocky9.4`, …); a bare version number takes the family from `.treeinfo`; `.treeinfo`'s
//!   `variant = ComputeNode` makes it `rhelhpc`. Media with only a `.treeinfo` (newer DVDs) are
//!   read from its `[release]`/`[general]` sections.
//! - SLES: `media.1/products` or `content`, and openSUSE Leap from `.treeinfo`.
//! - Debian/Ubuntu: `.disk/info` words (`Debian GNU/Linux 12.5.0 "Bookworm" - Official amd64 …`
//!   → `debian12.5.0`, `x86_64`).

/// What a medium was identified as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaId {
    /// xCAT's distribution name: `rhels9.4`, `rocky9.4`, `sles15.5`, `debian12.5.0`, …
    pub distname: String,
    /// xCAT's architecture name: `x86_64`, `ppc64le`, `ppc64el`, `aarch64`, `x86`, `s390x`.
    pub arch: String,
    /// The medium's own name for the architecture (`amd64` on Debian); printed by `copycds -i`.
    pub media_arch: String,
    /// Disc number when the medium says it (`1`, `Binary-1`).
    pub discno: String,
    /// The installer family, which decides the templates and the image builder.
    pub family: Family,
}

/// Installer / image-builder family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// RHEL, CentOS, Rocky, Alma, Fedora, Oracle Linux: anaconda and dnf.
    Rh,
    /// SLES and openSUSE: AutoYaST and zypper.
    Sles,
    /// Debian: preseed and debootstrap/mmdebstrap.
    Debian,
    /// Ubuntu: preseed/autoinstall and debootstrap/mmdebstrap.
    Ubuntu,
}

impl Family {
    /// The family of a distribution name (`rhels9.4` → Rh).
    pub fn of(distname: &str) -> Option<Family> {
        let d = distname.to_ascii_lowercase();
        if d.starts_with("debian") {
            Some(Family::Debian)
        } else if d.starts_with("ubuntu") {
            Some(Family::Ubuntu)
        } else if d.starts_with("sle") || d.starts_with("leap") || d.starts_with("opensuse") {
            Some(Family::Sles)
        } else if [
            "rh", "centos", "rocky", "alma", "fedora", "ol", "sl", "pkvm", "rhel",
        ]
        .iter()
        .any(|p| d.starts_with(p))
        {
            Some(Family::Rh)
        } else {
            None
        }
    }

    /// The directory name xCAT uses under `share/xcat/{install,netboot}/`.
    pub fn dir(self) -> &'static str {
        match self {
            Family::Rh => "rh",
            Family::Sles => "sles",
            Family::Debian => "debian",
            Family::Ubuntu => "ubuntu",
        }
    }
}

/// Why a medium could not be identified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error("copycds could not identify the ISO supplied, you may wish to try -n <osver> (looked for .discinfo, .treeinfo, .disk/info, media.1/products and content: {found})")]
    Unknown { found: String },
    #[error("copycds could not identify the ARCH, you may wish to try -a <arch>.")]
    NoArch,
    #[error("Requested distribution architecture {asked}, but media is {media}")]
    ArchMismatch { asked: String, media: String },
}

/// The metadata files identification reads, relative to the medium's root.
pub const METADATA_FILES: &[&str] = &[
    ".discinfo",
    ".treeinfo",
    ".disk/info",
    "media.1/products",
    "media.1/media",
    "content",
];

/// xCAT's architecture name for a medium's (`amd64` → `x86_64`, `i686` → `x86`, …).
pub fn xcat_arch(media: &str) -> String {
    let m = media.trim();
    if m.len() == 4 && m.starts_with('i') && m.ends_with("86") {
        return "x86".into();
    }
    match m {
        "amd64" | "x86_64" => "x86_64".into(),
        "arm64" | "aarch64" => "aarch64".into(),
        "ppc64el" => "ppc64el".into(),
        "ppc" | "powerpc" => "ppc64".into(),
        other => other.to_string(),
    }
}

/// Identifies a medium. `read` returns a metadata file's text (`None` when absent); `name` and
/// `arch` are `copycds -n` / `-a`.
pub fn identify(
    read: &dyn Fn(&str) -> Option<String>,
    name: Option<&str>,
    arch: Option<&str>,
) -> Result<MediaId, MediaError> {
    let found: Vec<&str> = METADATA_FILES
        .iter()
        .copied()
        .filter(|f| read(f).is_some())
        .collect();
    let found_s = if found.is_empty() {
        "none of them found".to_string()
    } else {
        format!(
            "found {} but could not read a distribution from it",
            found.join(", ")
        )
    };
    let unknown = || MediaError::Unknown {
        found: found_s.clone(),
    };
    let id = debian(read).or_else(|| rh(read)).or_else(|| sles(read));
    let mut id = match (id, name) {
        (Some(id), _) => id,
        // -n names a medium we cannot read: trust the name, take the family from it.
        (None, Some(n)) => MediaId {
            distname: n.to_string(),
            arch: String::new(),
            media_arch: String::new(),
            discno: String::new(),
            family: Family::of(n).ok_or_else(unknown)?,
        },
        (None, None) => return Err(unknown()),
    };
    if let Some(n) = name {
        id.distname = n.to_string();
        if let Some(f) = Family::of(n) {
            id.family = f;
        }
    }
    match arch {
        Some(a) if !id.arch.is_empty() && a != id.arch && a != id.media_arch => {
            return Err(MediaError::ArchMismatch {
                asked: a.to_string(),
                media: id.arch.clone(),
            })
        }
        Some(a) if id.arch.is_empty() => {
            id.arch = xcat_arch(a);
            id.media_arch = a.to_string();
        }
        Some(_) => {}
        None if id.arch.is_empty() => return Err(MediaError::NoArch),
        None => {}
    }
    if id.arch == "ppc" {
        id.arch = "ppc64".into();
    }
    Ok(id)
}

/// `.disk/info`: `Debian GNU/Linux 12.5.0 "Bookworm" - Official amd64 DVD Binary-1 …`,
/// `Ubuntu-Server 22.04.4 LTS "Jammy Jellyfish" - Release amd64 (20240216)`.
fn debian(read: &dyn Fn(&str) -> Option<String>) -> Option<MediaId> {
    let info = read(".disk/info")?;
    let line = info.lines().next()?.trim_end();
    let w: Vec<&str> = line.split(' ').collect();
    let word = |i: usize| w.get(i).copied().unwrap_or("");
    match word(0) {
        "Debian" => {
            let ver = word(2);
            let darch = word(6);
            if ver.is_empty() || darch.is_empty() {
                return None;
            }
            Some(MediaId {
                distname: format!("debian{ver}"),
                arch: xcat_arch(darch),
                media_arch: darch.to_string(),
                discno: word(8).to_string(),
                family: Family::Debian,
            })
        }
        "Ubuntu" | "Ubuntu-Server" => {
            let ver = word(1);
            let darch = if word(2) == "LTS" { word(7) } else { word(6) };
            if ver.is_empty() || darch.is_empty() {
                return None;
            }
            Some(MediaId {
                distname: format!("ubuntu{ver}"),
                arch: xcat_arch(darch),
                media_arch: darch.to_string(),
                discno: String::new(),
                family: Family::Ubuntu,
            })
        }
        _ => None,
    }
}

/// One `key = value` from an INI section of `.treeinfo`.
fn ini_get(text: &str, section: &str, key: &str) -> Option<String> {
    let mut cur = String::new();
    for l in text.lines() {
        let l = l.trim();
        if let Some(s) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            cur = s.trim().to_string();
            continue;
        }
        if cur != section {
            continue;
        }
        if let Some((k, v)) = l.split_once('=') {
            if k.trim() == key {
                return Some(v.trim().to_string());
            }
        }
    }
    None
}

fn rh_name_from_desc(desc: &str, treeinfo: Option<&str>) -> Option<String> {
    let prefixed = [
        ("CentOS Linux ", "centos"),
        ("CentOS Stream ", "centos-stream"),
        ("Rocky Linux ", "rocky"),
        ("AlmaLinux ", "alma"),
    ];
    for (p, n) in prefixed {
        if let Some(i) = desc.find(p) {
            return Some(format!("{n}{}", &desc[i + p.len()..]));
        }
    }
    if desc.contains("Red Hat Enterprise Linux") {
        let v: Vec<&str> = desc.split(' ').collect();
        let last = v.last().copied().unwrap_or("");
        let mut name = if v.len() > 5 {
            format!("rhels{last}-{}", v[4].to_ascii_lowercase())
        } else {
            format!("rhels{last}")
        };
        if let Some(s) = name.strip_suffix("-alternate") {
            name = s.to_string();
        }
        if treeinfo.is_some_and(|t| t.lines().any(|l| l.contains("variant = ComputeNode"))) {
            name = format!("rhelhpc{}", v.get(4).copied().unwrap_or(""));
        }
        return Some(name);
    }
    if desc.contains("Fedora") {
        let v: Vec<&str> = desc.split([' ', '-']).collect();
        return v.get(1).map(|x| format!("fedora{x}"));
    }
    if !desc.is_empty() && desc.chars().all(|c| c.is_ascii_digit() || c == '.') {
        let t = treeinfo?;
        for l in t.lines() {
            let l = l.trim().to_ascii_lowercase().replace(' ', "");
            if let Some(f) = l.strip_prefix("family=") {
                for (p, n) in [("centos", "centos"), ("rocky", "rocky"), ("alma", "alma")] {
                    if f.starts_with(p) {
                        return Some(format!("{n}{desc}"));
                    }
                }
            }
        }
    }
    None
}

/// `.discinfo` (and `.treeinfo`).
fn rh(read: &dyn Fn(&str) -> Option<String>) -> Option<MediaId> {
    let treeinfo = read(".treeinfo");
    if let Some(di) = read(".discinfo") {
        let mut l = di.lines();
        let _id = l.next();
        let desc = l.next().unwrap_or("").trim().to_string();
        let darch = l.next().unwrap_or("").trim().to_string();
        let discno = l.next().unwrap_or("").trim().to_string();
        if let Some(distname) = rh_name_from_desc(&desc, treeinfo.as_deref()) {
            return Some(MediaId {
                distname,
                arch: if darch.is_empty() {
                    String::new()
                } else {
                    xcat_arch(&darch)
                },
                media_arch: darch,
                discno,
                family: Family::Rh,
            });
        }
    }
    // A .treeinfo alone (productmd): [release] name/version, [general] arch.
    let t = treeinfo?;
    let name = ini_get(&t, "release", "name").or_else(|| ini_get(&t, "general", "family"))?;
    let version =
        ini_get(&t, "release", "version").or_else(|| ini_get(&t, "general", "version"))?;
    let darch = ini_get(&t, "tree", "arch")
        .or_else(|| ini_get(&t, "general", "arch"))
        .unwrap_or_default();
    if name.contains("openSUSE Leap") {
        return Some(MediaId {
            distname: format!("leap{version}"),
            arch: xcat_arch(&darch),
            media_arch: darch,
            discno: "1".into(),
            family: Family::Sles,
        });
    }
    let distname = rh_name_from_desc(&format!("{name} {version}"), Some(&t))?;
    Some(MediaId {
        distname,
        arch: xcat_arch(&darch),
        media_arch: darch,
        discno: String::new(),
        family: Family::Rh,
    })
}

/// SLES: `media.1/products` (`/ SLES15-SP5 15.5-0`), `content` (`VERSION 12.5`, `BASEARCHS x86_64`).
fn sles(read: &dyn Fn(&str) -> Option<String>) -> Option<MediaId> {
    let content = read("content").unwrap_or_default();
    let products = read("media.1/products").unwrap_or_default();
    let kv = |k: &str| {
        content.lines().find_map(|l| {
            let (a, b) = l.split_once(char::is_whitespace)?;
            (a == k).then(|| b.trim().to_string())
        })
    };
    let darch = kv("BASEARCHS").unwrap_or_default();
    let discno = read("media.1/media")
        .and_then(|m| m.lines().nth(2).map(|s| s.trim().to_string()))
        .unwrap_or_else(|| "1".into());
    if let Some(v) = kv("VERSION") {
        let label = kv("LABEL").unwrap_or_default();
        if label.contains("SUSE") || kv("DISTRIBUTION").is_some() || !products.is_empty() {
            let sp = kv("SP").unwrap_or_default();
            let ver = if v.contains('.') || sp.is_empty() || sp == "0" {
                v
            } else {
                format!("{v}.{sp}")
            };
            return Some(MediaId {
                distname: format!("sles{ver}"),
                arch: xcat_arch(&darch),
                media_arch: darch,
                discno,
                family: Family::Sles,
            });
        }
    }
    // SLE 15: "/ SLES15-SP5 15.5-0" or "/Product-SLES 15.5-0"
    let line = products.lines().next()?;
    let ver = line.split_whitespace().nth(2)?;
    let ver = ver.split('-').next()?;
    if !line.contains("SLE") {
        return None;
    }
    Some(MediaId {
        distname: format!("sle{ver}"),
        arch: xcat_arch(&darch),
        media_arch: darch,
        discno,
        family: Family::Sles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files<'a>(list: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |p| {
            list.iter()
                .find(|(n, _)| *n == p)
                .map(|(_, t)| (*t).to_string())
        }
    }

    #[test]
    fn debian_disk_info() {
        let f = files(&[(
            ".disk/info",
            "Debian GNU/Linux 12.5.0 \"Bookworm\" - Official amd64 DVD Binary-1 with firmware 20240210-11:28",
        )]);
        let id = identify(&f, None, None).expect("debian");
        assert_eq!(id.distname, "debian12.5.0");
        assert_eq!(id.arch, "x86_64");
        assert_eq!(id.media_arch, "amd64");
        assert_eq!(id.discno, "Binary-1");
        assert_eq!(id.family, Family::Debian);
        // -a amd64 (the medium's own name) and -a x86_64 both agree.
        assert!(identify(&f, None, Some("amd64")).is_ok());
        assert!(identify(&f, None, Some("x86_64")).is_ok());
        assert_eq!(
            identify(&f, None, Some("ppc64le")),
            Err(MediaError::ArchMismatch {
                asked: "ppc64le".into(),
                media: "x86_64".into()
            })
        );
    }

    #[test]
    fn ubuntu_lts_disk_info() {
        let f = files(&[(
            ".disk/info",
            "Ubuntu-Server 22.04.4 LTS \"Jammy Jellyfish\" - Release amd64 (20240216)",
        )]);
        let id = identify(&f, None, None).expect("ubuntu");
        assert_eq!(
            (id.distname.as_str(), id.arch.as_str()),
            ("ubuntu22.04.4", "x86_64")
        );
    }

    #[test]
    fn rhel_discinfo_and_treeinfo() {
        let f = files(&[(
            ".discinfo",
            "1713373534.419286\nRed Hat Enterprise Linux 9.4\nx86_64\n1\n",
        )]);
        let id = identify(&f, None, None).expect("rhel");
        assert_eq!(
            (id.distname.as_str(), id.arch.as_str()),
            ("rhels9.4", "x86_64")
        );
        let f = files(&[(".discinfo", "1\nRocky Linux 8.9\naarch64\n")]);
        assert_eq!(
            identify(&f, None, None).expect("rocky").distname,
            "rocky8.9"
        );
        let f = files(&[
            (".discinfo", "1\n9.2\nx86_64\n"),
            (".treeinfo", "[general]\nfamily = AlmaLinux\n"),
        ]);
        assert_eq!(identify(&f, None, None).expect("alma").distname, "alma9.2");
        // Only a productmd .treeinfo.
        let f = files(&[(
            ".treeinfo",
            "[header]\ntype = productmd.treeinfo\n[release]\nname = Red Hat Enterprise Linux\nshort = RHEL\nversion = 9.4\n[tree]\narch = x86_64\n",
        )]);
        let id = identify(&f, None, None).expect("treeinfo");
        assert_eq!(
            (id.distname.as_str(), id.arch.as_str()),
            ("rhels9.4", "x86_64")
        );
    }

    #[test]
    fn sles_products() {
        let f = files(&[
            ("media.1/products", "/ SLES15-SP5 15.5-0\n"),
            ("media.1/media", "SUSE - Linux\n20230512\n1\n"),
        ]);
        let id = identify(&f, None, Some("x86_64")).expect("sles");
        assert_eq!(id.distname, "sle15.5");
        assert_eq!(id.family, Family::Sles);
    }

    #[test]
    fn unknown_media_say_what_was_looked_for() {
        let f = files(&[("README", "hello")]);
        let e = identify(&f, None, None).expect_err("unknown");
        let msg = e.to_string();
        assert!(msg.starts_with(
            "copycds could not identify the ISO supplied, you may wish to try -n <osver>"
        ));
        assert!(msg.contains(".disk/info") && msg.contains(".discinfo"));
        // -n with a family name and -a make it usable.
        let id = identify(&f, Some("rhels9.4"), Some("x86_64")).expect("named");
        assert_eq!(id.family, Family::Rh);
        assert_eq!(
            identify(&f, Some("rhels9.4"), None),
            Err(MediaError::NoArch)
        );
    }
}
