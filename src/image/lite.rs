//! Statelite lookups, as xCAT's `litefile`/`litetree` answer them (reference §9).
//!
//! * [`litefile`]: which paths of an image are not simply read from the read-only root, and how
//!   (`tmpfs`, `persistent`, `ro`, `con`, `link…`, `localdisk`). Rows merge in the order the
//!   osimage's `groups` (one group name), image `''`, `ALL`, the image itself — later rows win for
//!   the same path. Empty options mean `tmpfs,rw`; `/etc/mtab` is always `link` (the node links
//!   it to `/proc/mounts`).
//! * [`litetree`]: where the initial contents of those paths come from: `server:/dir` entries in
//!   numeric priority order (lowest first), after `$node`/`$table.col` substitution.
//! * [`statemnt`]: the node's persistent-state location (`statelite.statemnt`, substituted).
//! * [`check`]: the rules `liteimg` enforces before it touches an image (valid options, absolute
//!   paths, what a child of a directory entry may be), each error naming the row.

use std::collections::BTreeMap;

use crate::store::resolver::Resolver;
use crate::store::StoreError;

/// Options `liteimg` accepts (xCAT's list; `tmpfs,rw` is the old spelling of `link`).
pub const OPTIONS: &[&str] = &[
    "tmpfs",
    "persistent",
    "localdisk",
    "rw",
    "ro",
    "con",
    "link",
    "tmpfs,rw",
    "link,ro",
    "link,persistent",
    "link,con",
];

/// One merged litefile row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteFile {
    /// Absolute path; directories end with `/`.
    pub path: String,
    pub options: String,
}

impl LiteFile {
    pub fn is_dir(&self) -> bool {
        self.path.ends_with('/')
    }

    /// The options with `tmpfs,rw` written as `link`, as `liteimg` and the node treat them.
    pub fn kind(&self) -> &str {
        if self.options == "tmpfs,rw" {
            "link"
        } else {
            &self.options
        }
    }

    pub fn is_link(&self) -> bool {
        self.kind().starts_with("link")
    }

    /// The path without its trailing `/`.
    pub fn bare(&self) -> &str {
        match self.path.trim_end_matches('/') {
            "" => "/",
            p => p,
        }
    }
}

/// One litetree directory, ready for the node: `server:/dir` (or `/dir`) and mount options.
#[derive(Debug, Clone, PartialEq)]
pub struct LiteTree {
    pub priority: f64,
    pub priority_text: String,
    pub location: String,
    pub mntopts: String,
}

impl LiteTree {
    /// `server:/dir[ :mntopts]`, xCAT's output form.
    pub fn line(&self) -> String {
        if self.mntopts.is_empty() {
            self.location.clone()
        } else {
            format!("{} :{}", self.location, self.mntopts)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LiteError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0} does not have os, arch, or profile defined in nodetype table")]
    NoImage(String),
    #[error("{0}")]
    Invalid(String),
}

fn col<'a>(
    t: &'a crate::store::resolver::TableIndex,
    row: &'a crate::store::Row,
    c: &str,
) -> Option<&'a str> {
    t.spec
        .col_index(c)
        .and_then(|i| row.get(i))
        .and_then(|v| v.as_deref())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The osimage a node's statelite lookups use: `nodetype.provmethod` when it names an image,
/// else `<os>-<arch>-statelite-<profile>` (xCAT's rule).
pub fn node_image(r: &Resolver, node: &str) -> Result<String, LiteError> {
    let pm = r.attr(node, "nodetype", "provmethod")?.unwrap_or_default();
    if !pm.is_empty() && !matches!(pm.as_str(), "statelite" | "netboot" | "install") {
        return Ok(pm);
    }
    let os = r.attr(node, "nodetype", "os")?.unwrap_or_default();
    let arch = r.attr(node, "nodetype", "arch")?.unwrap_or_default();
    let profile = r.attr(node, "nodetype", "profile")?.unwrap_or_default();
    if os.is_empty() || arch.is_empty() || profile.is_empty() {
        return Err(LiteError::NoImage(node.to_string()));
    }
    Ok(format!("{os}-{arch}-statelite-{profile}"))
}

/// The image names whose rows apply to `image`, in merge order (later wins).
fn scopes(r: &Resolver, image: &str) -> Result<Vec<String>, StoreError> {
    let os = r.table("osimage")?;
    let mut v = Vec::new();
    if let Some(g) = os.rows_for(image).find_map(|row| col(&os, row, "groups")) {
        v.push(g.to_string());
    }
    v.push(String::new());
    v.push("ALL".into());
    v.push(image.to_string());
    Ok(v)
}

/// The merged litefile list for `image`, sorted by path.
pub fn litefile(r: &Resolver, image: &str) -> Result<Vec<LiteFile>, StoreError> {
    let t = r.table("litefile")?;
    let image_col = t.spec.col_index("image");
    let mut merged: BTreeMap<String, String> = BTreeMap::new();
    for scope in scopes(r, image)? {
        for row in &t.rows {
            let img = image_col
                .and_then(|i| row.get(i))
                .and_then(|v| v.as_deref())
                .unwrap_or("")
                .trim();
            if img != scope {
                continue;
            }
            let Some(file) = col(&t, row, "file") else {
                continue;
            };
            let opts = col(&t, row, "options")
                .map(|o| o.split_whitespace().collect::<String>())
                .unwrap_or_else(|| "tmpfs,rw".into());
            merged.insert(file.to_string(), opts);
        }
    }
    // The node links /etc/mtab to /proc/mounts; only `link` lets it do that in a read-only root.
    merged.insert("/etc/mtab".into(), "link".into());
    Ok(merged
        .into_iter()
        .map(|(path, options)| LiteFile { path, options })
        .collect())
}

/// The litetree directories for `node` (its image's rows), substituted, lowest priority first.
pub fn litetree(r: &Resolver, node: &str, image: &str) -> Result<Vec<LiteTree>, LiteError> {
    let t = r.table("litetree")?;
    let mut by_prio: BTreeMap<String, (String, String)> = BTreeMap::new();
    for scope in scopes(r, image)? {
        for row in &t.rows {
            if col(&t, row, "image").unwrap_or("") != scope {
                continue;
            }
            let (Some(p), Some(dir)) = (col(&t, row, "priority"), col(&t, row, "directory")) else {
                continue;
            };
            let opts = col(&t, row, "mntopts").unwrap_or("").to_string();
            by_prio.insert(p.to_string(), (dir.to_string(), opts));
        }
    }
    let mut out = Vec::new();
    for (p, (dir, mntopts)) in by_prio {
        let priority: f64 = p.parse().map_err(|_| {
            LiteError::Invalid(format!(
                "litetree row with priority '{p}' ({dir}): the priority must be a number"
            ))
        })?;
        let location = r.substitute_vars(node, &dir).replace("//", "/");
        out.push(LiteTree {
            priority,
            priority_text: p,
            location,
            mntopts,
        });
    }
    out.sort_by(|a, b| a.priority.total_cmp(&b.priority));
    Ok(out)
}

/// The node's `statelite.statemnt`, substituted (`server:/path`), if set.
pub fn statemnt(r: &Resolver, node: &str) -> Result<Option<String>, StoreError> {
    Ok(r.attr(node, "statelite", "statemnt")?
        .map(|s| r.substitute_vars(node, s.trim()))
        .filter(|s| !s.is_empty()))
}

/// What the node's statelite script fetches: `litefile` lines (`node: options path`).
pub fn litefile_text(r: &Resolver, node: &str) -> Result<String, LiteError> {
    let img = node_image(r, node)?;
    Ok(litefile(r, &img)?
        .iter()
        .map(|f| format!("{node}: {:<13} {}\n", f.options, f.path))
        .collect())
}

/// What the node's statelite script fetches: `litetree` lines (`node: server:/dir[ :mntopts]`).
pub fn litetree_text(r: &Resolver, node: &str) -> Result<String, LiteError> {
    let img = node_image(r, node)?;
    Ok(litetree(r, node, &img)?
        .iter()
        .map(|t| format!("{node}: {}\n", t.line()))
        .collect())
}

/// For each entry, the index of its nearest ancestor directory entry (xCAT's parent/child
/// relation: `/var/lib/` is a child of `/var/`).
pub fn parents(files: &[LiteFile]) -> Vec<Option<usize>> {
    let dirs: BTreeMap<&str, usize> = files
        .iter()
        .enumerate()
        .filter(|(_, f)| f.is_dir())
        .map(|(i, f)| (f.path.as_str(), i))
        .collect();
    files
        .iter()
        .map(|f| {
            let mut p = f.bare();
            while let Some(cut) = p.rfind('/') {
                p = &p[..cut];
                if p.is_empty() {
                    break;
                }
                let key = format!("{p}/");
                if let Some(&i) = dirs.get(key.as_str()) {
                    return Some(i);
                }
            }
            None
        })
        .collect()
}

/// The rules `liteimg` enforces; every problem found, each naming its row.
pub fn check(files: &[LiteFile]) -> Vec<String> {
    let mut errors = Vec::new();
    for f in files {
        if !OPTIONS.contains(&f.options.as_str()) {
            errors.push(format!(
                "litefile row {}: '{}' is not a statelite option (valid: {})",
                f.path,
                f.options,
                OPTIONS.join(" ")
            ));
        }
        if !f.path.starts_with('/') || f.path.contains("/../") || f.path.ends_with("/..") {
            errors.push(format!(
                "litefile row {}: the file must be an absolute path without '..'",
                f.path
            ));
        }
        if f.kind().ends_with("con") && f.is_dir() {
            errors.push(format!(
                "litefile row {}: is a directory; 'con' is for files only",
                f.path
            ));
        }
    }
    let parents = parents(files);
    for (i, p) in parents.iter().enumerate() {
        let (Some(p), Some(child)) = (p, files.get(i)) else {
            continue;
        };
        let Some(parent) = files.get(*p) else {
            continue;
        };
        let (pk, ck) = (parent.kind(), child.kind());
        if pk.ends_with("ro") || pk.ends_with("con") {
            errors.push(format!(
                "litefile row {}: a directory with children ({}) cannot be '{}'",
                parent.path, child.path, pk
            ));
        }
        if parent.is_link() {
            if ck == "link,ro" {
                errors.push(format!(
                    "litefile row {}: inside {} ({pk}) it cannot be 'link,ro'",
                    child.path, parent.path
                ));
            } else if !child.is_link() {
                errors.push(format!("litefile row {}: inside {} ({pk}) only link-based options are possible, not '{ck}'", child.path, parent.path));
            }
        } else if child.is_link() && child.path != "/etc/mtab" {
            errors.push(format!(
                "litefile row {}: inside {} ({pk}) link-based options are not possible",
                child.path, parent.path
            ));
        }
        if pk.contains("persistent") && !ck.contains("persistent") {
            errors.push(format!(
                "litefile row {}: inside the persistent directory {} it must be persistent too, not '{ck}'",
                child.path, parent.path
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use std::sync::Arc;

    fn lf(path: &str, options: &str) -> LiteFile {
        LiteFile {
            path: path.into(),
            options: options.into(),
        }
    }

    /// (table, keys, column values)
    type Seed<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, Option<&'a str>)]);

    fn resolver(rows: &[Seed<'_>]) -> Resolver {
        let s = Arc::new(Store::open_in_memory().expect("store"));
        s.write(None, |tx| {
            for (t, k, v) in rows {
                tx.set(t, k, v)?;
            }
            Ok(())
        })
        .expect("seed");
        Resolver::new(s)
    }

    #[test]
    fn rows_merge_by_scope_and_later_scopes_win() {
        let r = resolver(&[
            ("osimage", &["img"], &[("groups", Some("rack1imgs"))]),
            ("litefile", &["ALL", "/etc/ssh/"], &[]),
            (
                "litefile",
                &["ALL", "/var/log/"],
                &[("options", Some("tmpfs"))],
            ),
            (
                "litefile",
                &["img", "/var/log/"],
                &[("options", Some("persistent"))],
            ),
            (
                "litefile",
                &["rack1imgs", "/etc/motd"],
                &[("options", Some("ro"))],
            ),
            ("litefile", &["ALL", "/tmp/"], &[]),
            ("litefile", &["other", "/opt/"], &[("options", Some("ro"))]),
            (
                "litefile",
                &["ALL", "/etc/mtab"],
                &[("options", Some("tmpfs"))],
            ),
        ]);
        let got = litefile(&r, "img").expect("litefile");
        assert_eq!(
            got,
            vec![
                lf("/etc/motd", "ro"),
                lf("/etc/mtab", "link"),
                lf("/etc/ssh/", "tmpfs,rw"),
                lf("/tmp/", "tmpfs,rw"),
                lf("/var/log/", "persistent"),
            ]
        );
    }

    #[test]
    fn litetree_sorts_numerically_and_substitutes() {
        let r = resolver(&[
            ("nodelist", &["n1"], &[("groups", Some("compute"))]),
            ("noderes", &["compute"], &[("nfsserver", Some("10.0.0.1"))]),
            (
                "litetree",
                &["10"],
                &[
                    ("image", Some("ALL")),
                    ("directory", Some("cnfs:/gpfs/dallas/")),
                ],
            ),
            (
                "litetree",
                &["2"],
                &[
                    ("image", Some("img")),
                    ("directory", Some("$noderes.nfsserver:/statelite/$node")),
                    ("mntopts", Some("soft")),
                ],
            ),
            (
                "litetree",
                &["3"],
                &[("image", Some("other")), ("directory", Some("x:/y"))],
            ),
        ]);
        let t = litetree(&r, "n1", "img").expect("litetree");
        let lines: Vec<String> = t.iter().map(LiteTree::line).collect();
        assert_eq!(
            lines,
            vec!["10.0.0.1:/statelite/n1 :soft", "cnfs:/gpfs/dallas/"]
        );
    }

    #[test]
    fn node_image_follows_xcat() {
        let r = resolver(&[
            (
                "nodetype",
                &["n1"],
                &[
                    ("os", Some("rhels8")),
                    ("arch", Some("x86_64")),
                    ("profile", Some("compute")),
                    ("provmethod", Some("statelite")),
                ],
            ),
            ("nodetype", &["n2"], &[("provmethod", Some("myimg"))]),
            ("nodetype", &["n3"], &[("os", Some("rhels8"))]),
        ]);
        assert_eq!(
            node_image(&r, "n1").expect("n1"),
            "rhels8-x86_64-statelite-compute"
        );
        assert_eq!(node_image(&r, "n2").expect("n2"), "myimg");
        assert!(node_image(&r, "n3").is_err());
    }

    #[test]
    fn check_enforces_the_parent_child_rules() {
        let ok = [
            lf("/var/", "persistent"),
            lf("/var/lib/", "persistent"),
            lf("/root/", "link"),
            lf("/root/.bashrc", "link,persistent"),
            lf("/etc/mtab", "link"),
            lf("/etc/", "tmpfs"),
        ];
        assert_eq!(check(&ok), Vec::<String>::new());
        let bad = [
            lf("/var/", "persistent"),
            lf("/var/tmp/", "tmpfs"),
            lf("/opt/", "ro"),
            lf("/opt/x", "ro"),
            lf("/root/", "link"),
            lf("/root/a", "link,ro"),
            lf("/root/b", "tmpfs"),
            lf("/etc/", "tmpfs"),
            lf("/etc/hosts", "link"),
            lf("/data/", "con"),
            lf("relative", "tmpfs"),
            lf("/x", "bind"),
        ];
        let e = check(&bad).join("\n");
        for needle in [
            "/var/tmp/: inside the persistent directory /var/ it must be persistent too",
            "/opt/: a directory with children (/opt/x) cannot be 'ro'",
            "/root/a: inside /root/ (link) it cannot be 'link,ro'",
            "/root/b: inside /root/ (link) only link-based options",
            "/etc/hosts: inside /etc/ (tmpfs) link-based options are not possible",
            "/data/: is a directory; 'con' is for files only",
            "relative: the file must be an absolute path",
            "/x: 'bind' is not a statelite option",
        ] {
            assert!(e.contains(needle), "missing {needle:?} in\n{e}");
        }
    }

    #[test]
    fn parents_are_the_nearest_directory_entry() {
        let f = [
            lf("/var/", "persistent"),
            lf("/var/lib/", "persistent"),
            lf("/var/lib/x", "persistent"),
            lf("/variable", "tmpfs"),
        ];
        assert_eq!(parents(&f), vec![None, Some(0), Some(1), None]);
    }
}
