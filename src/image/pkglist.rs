//! xCAT's list files, as pure parsers over a file reader (`netboot/imgutils/imgutils.pm`,
//! `packimage.pm`):
//!
//! - **pkglist**: one package per line (several per line separated by spaces also work),
//!   `@group`, `#INCLUDE:<file>#` (relative to the including file, `$VAR` expanded),
//!   `#NEW_INSTALL_LIST#` (what follows is installed in a later transaction), `#ENV:K=V#`
//!   (exported to the package manager), `#` comments.
//! - **otherpkglist**: the same, plus `-pkg` (remove before installing), `--pkg` (remove after)
//!   and `dir/pkg` (from `<otherpkgdir>/dir`).
//! - **exlist**: `find -path` globs relative to the image root (`./usr/share/man*`), `+glob`
//!   re-includes, `#INCLUDE:<file>#`.

use std::path::{Path, PathBuf};

/// A parsed package list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PkgList {
    /// Install transactions in order; the first is the base install.
    pub lists: Vec<Vec<String>>,
    /// `#ENV:K=V#` settings.
    pub env: Vec<(String, String)>,
    /// `-pkg`: removed before the install (otherpkglist).
    pub remove_before: Vec<String>,
    /// `--pkg`: removed after the install (otherpkglist).
    pub remove_after: Vec<String>,
}

impl PkgList {
    /// Every package to install, all transactions.
    pub fn all(&self) -> impl Iterator<Item = &String> {
        self.lists.iter().flatten()
    }
}

/// A list file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read {path}{}", if .included_from.is_empty() { String::new() } else { format!(" (included from {})", .included_from) })]
pub struct ListError {
    pub path: String,
    pub included_from: String,
}

/// `$VAR` and `${VAR}` from `vars`, left alone when unknown.
pub fn expand(s: &str, vars: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let (name, end) = if b.get(i + 1) == Some(&b'{') {
                match s[i + 2..].find('}') {
                    Some(e) => (&s[i + 2..i + 2 + e], i + 3 + e),
                    None => ("", i + 1),
                }
            } else {
                let n = s[i + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(s.len() - i - 1);
                (&s[i + 1..i + 1 + n], i + 1 + n)
            };
            if !name.is_empty() {
                if let Some(v) = vars(name) {
                    out.push_str(&v);
                    i = end;
                    continue;
                }
            }
        }
        let c = s[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Parses `path` (and what it includes). `read` returns a file's text.
pub fn parse_pkglist(
    path: &Path,
    read: &dyn Fn(&Path) -> Option<String>,
    vars: &dyn Fn(&str) -> Option<String>,
) -> Result<PkgList, ListError> {
    let mut out = PkgList {
        lists: vec![Vec::new()],
        ..Default::default()
    };
    walk(path, "", read, vars, &mut out, 0)?;
    out.lists.retain(|l| !l.is_empty());
    Ok(out)
}

fn walk(
    path: &Path,
    from: &str,
    read: &dyn Fn(&Path) -> Option<String>,
    vars: &dyn Fn(&str) -> Option<String>,
    out: &mut PkgList,
    depth: usize,
) -> Result<(), ListError> {
    let text = read(path).ok_or_else(|| ListError {
        path: path.display().to_string(),
        included_from: from.to_string(),
    })?;
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() {
            continue;
        }
        if let Some(inc) = l
            .strip_prefix("#INCLUDE:")
            .and_then(|s| s.strip_suffix('#'))
        {
            if depth > 16 {
                continue;
            }
            let inc = expand(inc.trim(), vars);
            let p = resolve(path, &inc);
            walk(&p, &path.display().to_string(), read, vars, out, depth + 1)?;
            continue;
        }
        if l == "#NEW_INSTALL_LIST#" {
            out.lists.push(Vec::new());
            continue;
        }
        if let Some(kv) = l.strip_prefix("#ENV:").and_then(|s| s.strip_suffix('#')) {
            if let Some((k, v)) = kv.split_once('=') {
                out.env.push((k.trim().to_string(), v.trim().to_string()));
            }
            continue;
        }
        if l.starts_with('#') {
            continue;
        }
        for w in l.split_whitespace() {
            let w = expand(w, vars);
            if let Some(p) = w.strip_prefix("--") {
                out.remove_after.push(p.to_string());
            } else if let Some(p) = w.strip_prefix('-') {
                out.remove_before.push(p.to_string());
            } else if let Some(last) = out.lists.last_mut() {
                last.push(w);
            }
        }
    }
    Ok(())
}

/// An included file's path: absolute as given, else beside the including file.
fn resolve(from: &Path, inc: &str) -> PathBuf {
    let p = Path::new(inc);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        from.parent().unwrap_or(Path::new("/")).join(p)
    }
}

/// A parsed exclusion list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExList {
    pub exclude: Vec<String>,
    pub include: Vec<String>,
}

/// Paths packimage always leaves out of a stateless image.
pub const ALWAYS_EXCLUDED: &[&str] = &["./.statebackup*"];

impl ExList {
    /// Whether `path` (`./a/b`, relative to the image root) goes into the packed image.
    pub fn keeps(&self, path: &str) -> bool {
        let excluded = ALWAYS_EXCLUDED
            .iter()
            .map(|s| s.to_string())
            .chain(self.exclude.iter().cloned())
            .any(|g| glob(&g, path));
        !excluded || self.include.iter().any(|g| glob(g, path))
    }
}

/// Parses exlist files (`+` re-includes, `#INCLUDE:f#`).
pub fn parse_exlist(
    paths: &[PathBuf],
    read: &dyn Fn(&Path) -> Option<String>,
) -> Result<ExList, ListError> {
    let mut out = ExList::default();
    for p in paths {
        ex_walk(p, "", read, &mut out, 0)?;
    }
    Ok(out)
}

fn ex_walk(
    path: &Path,
    from: &str,
    read: &dyn Fn(&Path) -> Option<String>,
    out: &mut ExList,
    depth: usize,
) -> Result<(), ListError> {
    let text = read(path).ok_or_else(|| ListError {
        path: path.display().to_string(),
        included_from: from.to_string(),
    })?;
    for line in text.lines() {
        let l = line.trim();
        if let Some(inc) = l
            .strip_prefix("#INCLUDE:")
            .and_then(|s| s.strip_suffix('#'))
        {
            if depth <= 16 {
                let p = resolve(path, inc.trim());
                ex_walk(&p, &path.display().to_string(), read, out, depth + 1)?;
            }
            continue;
        }
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let norm = |g: &str| {
            if g.starts_with("./") {
                g.to_string()
            } else if let Some(r) = g.strip_prefix('/') {
                format!("./{r}")
            } else {
                format!("./{g}")
            }
        };
        if let Some(g) = l.strip_prefix('+') {
            out.include.push(norm(g.trim()));
        } else {
            out.exclude.push(norm(l));
        }
    }
    Ok(())
}

/// `find -path` matching: `*` and `?` match any character, `/` included; `[…]` classes.
pub fn glob(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = s.chars().collect();
    // Iterative matcher with one backtrack point for the last `*`.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some((ok, next)) = class(&p, pi, t[ti]) {
                        if ok {
                            pi = next;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == '[' {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
                c => {
                    if c == t[ti] {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// A `[...]` class at `p[i]`: (matches, index after the class), or None when unterminated.
fn class(p: &[char], i: usize, c: char) -> Option<(bool, usize)> {
    let mut j = i + 1;
    let neg = matches!(p.get(j), Some('!') | Some('^'));
    if neg {
        j += 1;
    }
    let mut ok = false;
    let start = j;
    while j < p.len() && (p[j] != ']' || j == start) {
        if j + 2 < p.len() && p[j + 1] == '-' && p[j + 2] != ']' {
            if p[j] <= c && c <= p[j + 2] {
                ok = true;
            }
            j += 3;
        } else {
            if p[j] == c {
                ok = true;
            }
            j += 1;
        }
    }
    if j >= p.len() {
        return None;
    }
    Some((ok != neg, j + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn fs(files: &[(&str, &str)]) -> HashMap<PathBuf, String> {
        files
            .iter()
            .map(|(p, t)| (PathBuf::from(p), (*t).to_string()))
            .collect()
    }

    #[test]
    fn pkglist_with_includes_transactions_and_env() {
        let f = fs(&[
            (
                "/l/compute.pkglist",
                "# base\nsystemd openssh-server\n#INCLUDE:extra.$OSVER.pkglist#\n#ENV:DEBIAN_FRONTEND=noninteractive#\n#NEW_INSTALL_LIST#\nnfs-common\n",
            ),
            ("/l/extra.debian12.pkglist", "vim-tiny\n@standard\n"),
        ]);
        let read = |p: &Path| f.get(p).cloned();
        let vars = |v: &str| (v == "OSVER").then(|| "debian12".to_string());
        let l = parse_pkglist(Path::new("/l/compute.pkglist"), &read, &vars).expect("parse");
        assert_eq!(
            l.lists,
            vec![
                vec!["systemd", "openssh-server", "vim-tiny", "@standard"],
                vec!["nfs-common"]
            ]
        );
        assert_eq!(
            l.env,
            vec![("DEBIAN_FRONTEND".into(), "noninteractive".into())]
        );
    }

    #[test]
    fn a_missing_include_names_both_files() {
        let f = fs(&[("/l/a", "#INCLUDE:/nope#\n")]);
        let read = |p: &Path| f.get(p).cloned();
        let e = parse_pkglist(Path::new("/l/a"), &read, &|_| None).expect_err("missing");
        assert_eq!(e.to_string(), "cannot read /nope (included from /l/a)");
    }

    #[test]
    fn otherpkglist_removals() {
        let f = fs(&[("/o", "-old --late new\nsub/pkg\n")]);
        let read = |p: &Path| f.get(p).cloned();
        let l = parse_pkglist(Path::new("/o"), &read, &|_| None).expect("parse");
        assert_eq!(l.remove_before, vec!["old"]);
        assert_eq!(l.remove_after, vec!["late"]);
        assert_eq!(l.lists, vec![vec!["new", "sub/pkg"]]);
    }

    #[test]
    fn find_path_globs() {
        assert!(glob("./usr/share/man*", "./usr/share/man/man1/ls.1.gz"));
        assert!(glob("./usr/share/man*", "./usr/share/man"));
        assert!(!glob("./usr/share/man*", "./usr/share/doc"));
        assert!(glob(
            "./lib/modules/*/kernel/sound*",
            "./lib/modules/6.1.0-50-amd64/kernel/sound/core/snd.ko"
        ));
        assert!(glob("./a?c", "./abc"));
        assert!(glob("./[ab]*", "./b/x"));
        assert!(!glob("./[!ab]*", "./b/x"));
    }

    #[test]
    fn exlist_with_reinclusion() {
        let f = fs(&[(
            "/e",
            "./usr/share/locale*\n+./usr/share/locale/locale.alias\n/boot*\n# comment\n",
        )]);
        let read = |p: &Path| f.get(p).cloned();
        let x = parse_exlist(&[PathBuf::from("/e")], &read).expect("parse");
        assert!(!x.keeps("./usr/share/locale/de/LC_MESSAGES/x.mo"));
        assert!(x.keeps("./usr/share/locale/locale.alias"));
        assert!(!x.keeps("./boot/vmlinuz"));
        assert!(x.keeps("./usr/bin/ls"));
        assert!(!x.keeps("./.statebackup/x"));
    }
}
