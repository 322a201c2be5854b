//! `liteimg <image>`: prepares a statelite image root so one read-only NFS export can serve
//! every node (reference §9, the statelite cookbook §2.11).
//!
//! For each litefile entry, parents before children:
//! * `link…` entries get two levels of indirection: the original moves to `/.default<path>`,
//!   `<path>` becomes a symlink to `.statelite/tmpfs<path>`, which in the image points back to
//!   `/.default<path>`. On the node a tmpfs covers `/.statelite`, and the statelite script puts a
//!   writable copy (or a persistent one) where the link points.
//! * every other entry is copied into `/.default` (the node bind-mounts over the original).
//!
//! Entries whose options changed since the last run (`.statelite/litefile.save`) are first
//! restored from `.default`, so liteimg can be re-run after the litefile table changes. The rows
//! are checked ([`super::lite::check`]) before anything is touched.
//!
//! Paths are resolved inside the image root as a chroot would: an absolute symlink in the image
//! (`/var/run -> /run`) is followed inside the image, never onto this machine.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use super::lite::{self, LiteError, LiteFile};
use crate::store::resolver::Resolver;

/// What a run did, line by line (`-V` prints them all).
pub struct Liteimg<'a> {
    pub root: PathBuf,
    verbose: bool,
    out: &'a mut dyn FnMut(&str),
}

fn err(e: io::Error, what: impl std::fmt::Display) -> LiteError {
    LiteError::Invalid(format!("{what}: {e}"))
}

/// Where the image's root tree is: `linuximage.rootimgdir`/rootimg, else xCAT's default
/// `<installdir>/netboot/<os>/<arch>/<profile>/rootimg`.
pub fn image_root(r: &Resolver, image: &str) -> Result<PathBuf, LiteError> {
    let Some(img) = crate::boot::state::osimage(r, image)? else {
        return Err(LiteError::Invalid(format!(
            "Cannot find image '{image}' in the osimage table."
        )));
    };
    if img.provmethod != "statelite" {
        return Err(LiteError::Invalid(format!(
            "osimage {image} has provmethod '{}'; liteimg needs provmethod=statelite",
            img.provmethod
        )));
    }
    let li = r.table("linuximage")?;
    let dir = li
        .rows_for(image)
        .find_map(|row| {
            li.spec
                .col_index("rootimgdir")
                .and_then(|i| row.get(i))
                .cloned()
                .flatten()
        })
        .filter(|d| !d.trim().is_empty());
    let dir = match dir {
        Some(d) => PathBuf::from(d.trim()),
        None => {
            if img.os.is_empty() || img.arch.is_empty() || img.profile.is_empty() {
                return Err(LiteError::Invalid(format!("osimage {image} has no linuximage.rootimgdir and no osvers/osarch/profile to derive it from")));
            }
            let installdir = r.site("installdir")?.unwrap_or_else(|| "/install".into());
            Path::new(&installdir)
                .join("netboot")
                .join(&img.os)
                .join(&img.arch)
                .join(&img.profile)
        }
    };
    Ok(dir.join("rootimg"))
}

/// Resolves `path` (absolute, inside the image) to a host path under `root`, following symlinks
/// of the directories on the way as if `root` were `/`. The last component is not followed.
pub fn inside(root: &Path, path: &str) -> io::Result<PathBuf> {
    let mut parts: Vec<String> = Vec::new();
    let mut todo: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .rev()
        .map(str::to_string)
        .collect();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                parts.pop();
                continue;
            }
            _ => {}
        }
        if todo.is_empty() {
            parts.push(c);
            break;
        }
        let here: PathBuf = parts
            .iter()
            .fold(root.to_path_buf(), |p, s| p.join(s))
            .join(&c);
        match std::fs::symlink_metadata(&here) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return Err(io::Error::other(format!(
                        "too many symbolic links under {path}"
                    )));
                }
                let target = std::fs::read_link(&here)?;
                if target.is_absolute() {
                    parts.clear();
                }
                for comp in target.components().rev() {
                    match comp {
                        Component::Normal(s) => todo.push(s.to_string_lossy().into_owned()),
                        Component::ParentDir => todo.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => parts.push(c),
        }
    }
    Ok(parts.iter().fold(root.to_path_buf(), |p, s| p.join(s)))
}

/// `dirname` of an image path (`/etc/ntp.conf` → `/etc`, `/tmp` → `/`).
fn dirname(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

/// `..` steps from the directory of `p` back to the image root (`.` at the top).
fn up_from(p: &str) -> String {
    let depth = dirname(p).split('/').filter(|s| !s.is_empty()).count();
    if depth == 0 {
        ".".into()
    } else {
        vec![".."; depth].join("/")
    }
}

impl<'a> Liteimg<'a> {
    pub fn new(root: PathBuf, verbose: bool, out: &'a mut dyn FnMut(&str)) -> Liteimg<'a> {
        Liteimg { root, verbose, out }
    }

    fn say(&mut self, line: String) {
        if self.verbose {
            (self.out)(&line);
        }
    }

    fn at(&self, path: &str) -> Result<PathBuf, LiteError> {
        inside(&self.root, path).map_err(|e| err(e, format!("{path} in the image")))
    }

    fn mkdir_p(&mut self, path: &str) -> Result<(), LiteError> {
        // The trailing "." makes every component, the last too, resolve inside the image.
        let p = self.at(&format!("{path}/."))?;
        if !p.is_dir() {
            self.say(format!("mkdir -p {}", p.display()));
            std::fs::create_dir_all(&p).map_err(|e| err(e, format!("mkdir {}", p.display())))?;
        }
        Ok(())
    }

    fn cp_a(&mut self, from: &Path, into_dir: &Path) -> Result<(), LiteError> {
        self.say(format!("cp -a {} {}", from.display(), into_dir.display()));
        let st = Command::new("cp")
            .arg("-a")
            .arg("--")
            .arg(from)
            .arg(into_dir)
            .status()
            .map_err(|e| err(e, "cannot run cp"))?;
        if !st.success() {
            return Err(LiteError::Invalid(format!(
                "cp -a {} {} failed",
                from.display(),
                into_dir.display()
            )));
        }
        Ok(())
    }

    fn rm_rf(&mut self, p: &Path) -> Result<(), LiteError> {
        let Ok(m) = std::fs::symlink_metadata(p) else {
            return Ok(());
        };
        self.say(format!("rm -rf {}", p.display()));
        if m.is_dir() {
            std::fs::remove_dir_all(p)
        } else {
            std::fs::remove_file(p)
        }
        .map_err(|e| err(e, format!("remove {}", p.display())))
    }

    fn symlink(&mut self, target: &str, at: &Path) -> Result<(), LiteError> {
        self.rm_rf(at)?;
        self.say(format!("ln -sfn {target} {}", at.display()));
        std::os::unix::fs::symlink(target, at)
            .map_err(|e| err(e, format!("symlink {}", at.display())))
    }

    fn touch(&mut self, p: &Path) -> Result<(), LiteError> {
        if std::fs::symlink_metadata(p).is_err() {
            self.say(format!("touch {}", p.display()));
            std::fs::File::create(p).map_err(|e| err(e, format!("create {}", p.display())))?;
        }
        Ok(())
    }

    /// Is `path` already a link into `.statelite/tmpfs` (done by an earlier run or a parent)?
    fn already_linked(&self, f: &LiteFile) -> bool {
        let Ok(p) = self.at(f.bare()) else {
            return false;
        };
        std::fs::read_link(p)
            .map(|t| t.to_string_lossy().contains(".statelite/tmpfs"))
            .unwrap_or(false)
    }

    /// Undoes a `link` entry whose options changed or that left the table.
    fn recover(&mut self, f: &LiteFile) -> Result<(), LiteError> {
        if f.is_link() && self.already_linked(f) {
            let real = self.at(f.bare())?;
            let default = self.at(&format!("/.default{}", f.bare()))?;
            self.rm_rf(&real)?;
            if std::fs::symlink_metadata(&default).is_ok() {
                let dir = real.parent().map(Path::to_path_buf).unwrap_or_default();
                self.cp_a(&default, &dir)?;
            } else if f.is_dir() {
                std::fs::create_dir_all(&real).map_err(|e| err(e, real.display()))?;
            } else {
                self.touch(&real)?;
            }
            let t = self.at(&format!("/.statelite/tmpfs{}", f.bare()))?;
            self.rm_rf(&t)?;
        }
        Ok(())
    }

    fn item(&mut self, f: &LiteFile, is_child: bool) -> Result<(), LiteError> {
        let bare = f.bare().to_string();
        let d = dirname(&bare).to_string();
        if !f.is_link() {
            let real = self.at(&bare)?;
            if std::fs::symlink_metadata(&real).is_err() {
                self.mkdir_p(&d)?;
                if f.is_dir() {
                    self.mkdir_p(&bare)?;
                } else {
                    self.touch(&real)?;
                }
            }
            self.mkdir_p(&format!("/.default{d}"))?;
            let into = self.at(&format!("/.default{d}/."))?;
            return self.cp_a(&real, &into);
        }
        let mut is_child = is_child;
        if bare == "/etc/mtab" {
            // Images whose /etc/mtab already follows the kernel need nothing.
            let real = self.at(&bare)?;
            if let Ok(t) = std::fs::read_link(&real) {
                if t.to_string_lossy().starts_with("/proc/") {
                    return Ok(());
                }
            }
            is_child = false;
        }
        if is_child {
            // The parent's link already covers it; its default content must exist.
            if f.is_dir() {
                self.mkdir_p(&format!("/.default{bare}"))?;
            } else {
                self.mkdir_p(&format!("/.default{d}"))?;
                let p = self.at(&format!("/.default{bare}"))?;
                self.touch(&p)?;
            }
            return Ok(());
        }
        if self.already_linked(f) {
            return Ok(());
        }
        let real = self.at(&bare)?;
        self.mkdir_p(&format!("/.default{d}"))?;
        if std::fs::symlink_metadata(&real).is_ok() {
            let into = self.at(&format!("/.default{d}/."))?;
            self.cp_a(&real, &into)?;
            self.rm_rf(&real)?;
        } else {
            self.mkdir_p(&d)?;
            if f.is_dir() {
                self.mkdir_p(&format!("/.default{bare}"))?;
            } else {
                let p = self.at(&format!("/.default{bare}"))?;
                self.touch(&p)?;
            }
        }
        self.mkdir_p(&format!("/.statelite/tmpfs{d}"))?;
        let up = up_from(&bare);
        let t = self.at(&format!("/.statelite/tmpfs{bare}"))?;
        self.symlink(&format!("../../{up}/.default{bare}"), &t)?;
        let real = self.at(&bare)?;
        self.symlink(&format!("{up}/.statelite/tmpfs{bare}"), &real)
    }

    /// Runs liteimg over `files` (already merged for the image).
    pub fn run(
        &mut self,
        files: &[LiteFile],
        statelite_script: &Path,
        postscripts: Option<&Path>,
    ) -> Result<(), LiteError> {
        let errors = lite::check(files);
        if !errors.is_empty() {
            return Err(LiteError::Invalid(errors.join("\n")));
        }
        if !self.root.is_dir() {
            return Err(LiteError::Invalid(format!(
                "the image root {} does not exist (build the image first)",
                self.root.display()
            )));
        }
        let root = self.root.display().to_string();
        (self.out)(&format!("Modifying {root} ..."));
        let save = self.at("/.statelite/litefile.save")?;
        let saved: BTreeMap<String, String> = std::fs::read_to_string(&save)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (o, p) = l.trim().split_once(char::is_whitespace)?;
                Some((p.trim().to_string(), o.to_string()))
            })
            .collect();
        let now: BTreeMap<&str, &LiteFile> = files.iter().map(|f| (f.path.as_str(), f)).collect();
        // Deepest first, so a restored parent is not clobbered by its child's restore.
        let mut old: Vec<LiteFile> = saved
            .iter()
            .filter(|(p, o)| now.get(p.as_str()).map(|f| f.kind()) != Some(o.as_str()))
            .map(|(p, o)| LiteFile {
                path: p.clone(),
                options: o.clone(),
            })
            .collect();
        old.sort_by_key(|f| std::cmp::Reverse(f.bare().matches('/').count()));
        for f in &old {
            self.say(format!("restoring {} ({} before)", f.path, f.options));
            self.recover(f)?;
        }
        self.mkdir_p("/.statelite/tmpfs")?;
        let parents = lite::parents(files);
        let mut order: Vec<usize> = (0..files.len()).collect();
        order.sort_by_key(|&i| (files.get(i).map(|f| f.bare().matches('/').count()), i));
        for i in order {
            let (Some(f), Some(p)) = (files.get(i), parents.get(i)) else {
                continue;
            };
            self.item(f, p.is_some())?;
        }
        let mut text = String::new();
        for f in files {
            text.push_str(&format!("{} {}\n", f.kind(), f.path));
        }
        std::fs::write(&save, text).map_err(|e| err(e, save.display()))?;
        // The node runs this before switching root (not from rc: nothing else is writable yet).
        self.mkdir_p("/etc/init.d")?;
        let init = self.at("/etc/init.d/statelite")?;
        self.rm_rf(&init)?;
        std::fs::copy(statelite_script, &init).map_err(|e| {
            err(
                e,
                format!("copy {} into the image", statelite_script.display()),
            )
        })?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| err(e, init.display()))?;
        self.say(format!("installed {}", init.display()));
        if let Some(ps) = postscripts.filter(|p| p.is_dir()) {
            let dst = self.at("/xcatpost")?;
            self.rm_rf(&dst)?;
            std::fs::create_dir_all(&dst).map_err(|e| err(e, dst.display()))?;
            for e in std::fs::read_dir(ps)
                .map_err(|e| err(e, ps.display()))?
                .flatten()
            {
                self.cp_a(&e.path(), &dst)?;
            }
        }
        (self.out)(&format!("Modifying {root} done."));
        Ok(())
    }
}

/// The node-side statelite script shipped with bootherd (`statelite/rc.statelite`).
pub fn shipped_script() -> PathBuf {
    crate::boot::template::shipped_file("statelite/rc.statelite")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn lf(path: &str, options: &str) -> LiteFile {
        LiteFile {
            path: path.into(),
            options: options.into(),
        }
    }

    #[test]
    fn inside_keeps_absolute_symlinks_in_the_image() {
        let d = tempfile::tempdir().expect("tmp");
        let root = d.path();
        fs::create_dir_all(root.join("run")).expect("run");
        fs::create_dir_all(root.join("var")).expect("var");
        std::os::unix::fs::symlink("/run", root.join("var/run")).expect("link");
        std::os::unix::fs::symlink("../../..", root.join("var/up")).expect("link");
        assert_eq!(
            inside(root, "/var/run/x.pid").expect("x"),
            root.join("run/x.pid")
        );
        assert_eq!(
            inside(root, "/var/up/etc/passwd").expect("x"),
            root.join("etc/passwd")
        );
        // The last component is not followed: a link entry can replace the link itself.
        assert_eq!(inside(root, "/var/run").expect("x"), root.join("var/run"));
    }

    #[test]
    fn relative_links_climb_to_the_root() {
        assert_eq!(up_from("/etc/ntp.conf"), "..");
        assert_eq!(up_from("/tmp"), ".");
        assert_eq!(up_from("/var/lib/dhcp"), "../..");
    }

    #[test]
    fn link_entries_get_two_levels_of_indirection() {
        let d = tempfile::tempdir().expect("tmp");
        let root = d.path().join("rootimg");
        fs::create_dir_all(root.join("etc/ssh")).expect("etc");
        fs::write(root.join("etc/ntp.conf"), "server 1\n").expect("ntp");
        fs::write(root.join("etc/ssh/sshd_config"), "x\n").expect("ssh");
        let script = d.path().join("rc.statelite");
        fs::write(&script, "#!/bin/sh\n").expect("script");
        let files = vec![
            lf("/etc/mtab", "link"),
            lf("/etc/ntp.conf", "tmpfs,rw"),
            lf("/etc/ssh/", "tmpfs"),
            lf("/var/log/", "persistent"),
        ];
        let mut lines = Vec::new();
        let mut out = |l: &str| lines.push(l.to_string());
        Liteimg::new(root.clone(), false, &mut out)
            .run(&files, &script, None)
            .expect("liteimg");
        let rl = |p: &str| fs::read_link(root.join(p)).expect(p).display().to_string();
        assert_eq!(rl("etc/ntp.conf"), "../.statelite/tmpfs/etc/ntp.conf");
        assert_eq!(
            rl(".statelite/tmpfs/etc/ntp.conf"),
            "../../../.default/etc/ntp.conf"
        );
        assert_eq!(
            fs::read_to_string(root.join("etc/ntp.conf")).expect("via links"),
            "server 1\n"
        );
        assert_eq!(
            fs::read_to_string(root.join(".default/etc/ssh/sshd_config")).expect("copy"),
            "x\n"
        );
        assert!(
            root.join("etc/ssh/sshd_config").is_file(),
            "non-link entries stay in place"
        );
        assert!(root.join("var/log").is_dir() && root.join(".default/var/log").is_dir());
        assert!(root.join("etc/init.d/statelite").is_file());
        // Re-running is harmless, and a changed option is undone first.
        let files2 = vec![
            lf("/etc/mtab", "link"),
            lf("/etc/ntp.conf", "tmpfs"),
            lf("/etc/ssh/", "tmpfs"),
        ];
        let mut out2 = |_: &str| {};
        Liteimg::new(root.clone(), false, &mut out2)
            .run(&files2, &script, None)
            .expect("liteimg again");
        assert!(fs::symlink_metadata(root.join("etc/ntp.conf"))
            .expect("ntp")
            .is_file());
        assert_eq!(
            fs::read_to_string(root.join("etc/ntp.conf")).expect("restored"),
            "server 1\n"
        );
        assert!(fs::symlink_metadata(root.join(".statelite/tmpfs/etc/ntp.conf")).is_err());
    }
}
