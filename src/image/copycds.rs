//! `copycds`: distribution media (an ISO image, a tar file or a directory) copied into
//! `<installdir>/<distname>/<arch>` with xCAT's naming, its osdistro row and osimage definitions.
//!
//! ISO images are read with `bsdtar` (libarchive, Debian package `libarchive-tools`): it reads
//! ISO 9660 with Rock Ridge and Joliet and UDF (RHEL DVDs over 4 GiB), keeps symlinks and modes,
//! and needs no loop mount, so copycds works in a container without privileges. No maintained
//! Rust crate reads Rock Ridge and UDF both.
//!
//! Nothing half-copied is left behind: the medium is extracted into a hidden sibling directory,
//! which becomes the target by rename (or is merged into an existing target, for a second disc)
//! only when extraction succeeded.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use super::media::{self, Family, MediaId};
use super::profiles;
use crate::store::{Audit, Store};

/// Where a medium is read from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A directory (a mounted medium or an unpacked tree).
    Dir(PathBuf),
    /// An ISO 9660/UDF image or a tar file, read through bsdtar.
    Archive(PathBuf),
}

impl Source {
    /// Opens `path`: a directory, or a file bsdtar can read.
    pub fn open(path: &Path) -> anyhow::Result<Source> {
        let md = std::fs::metadata(path).with_context(|| {
            format!(
                "The management server was unable to find/read {}. Ensure that file exists on the server at the specified location.",
                path.display()
            )
        })?;
        if md.is_dir() {
            return Ok(Source::Dir(path.to_path_buf()));
        }
        bsdtar()?;
        Ok(Source::Archive(path.to_path_buf()))
    }

    /// The text of a file on the medium, `None` when it is not there.
    pub fn read(&self, rel: &str) -> Option<String> {
        match self {
            Source::Dir(d) => std::fs::read_to_string(d.join(rel)).ok(),
            Source::Archive(f) => {
                let o = Command::new("bsdtar")
                    .arg("-xOf")
                    .arg(f)
                    .arg(rel)
                    .stderr(Stdio::null())
                    .output()
                    .ok()?;
                (o.status.success() && !o.stdout.is_empty())
                    .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
            }
        }
    }

    /// Every path on the medium as xCAT's fingerprint sees it (`.`, `./a`, `./a/b`).
    pub fn list(&self) -> anyhow::Result<Vec<String>> {
        let mut out = vec![".".to_string()];
        match self {
            Source::Dir(d) => walk(d, d, &mut out)?,
            Source::Archive(f) => {
                let o = Command::new("bsdtar")
                    .arg("-tf")
                    .arg(f)
                    .output()
                    .context("cannot run bsdtar")?;
                if !o.status.success() {
                    bail!(
                        "bsdtar cannot read {}: {}",
                        f.display(),
                        String::from_utf8_lossy(&o.stderr).trim()
                    );
                }
                for l in String::from_utf8_lossy(&o.stdout).lines() {
                    let l = l.trim_start_matches("./").trim_end_matches('/');
                    if !l.is_empty() && l != "." {
                        out.push(format!("./{l}"));
                    }
                }
            }
        }
        Ok(out)
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> anyhow::Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let e = e?;
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap_or(&p);
        out.push(format!("./{}", rel.display()));
        if e.file_type()?.is_dir() {
            walk(root, &p, out)?;
        }
    }
    Ok(())
}

fn bsdtar() -> anyhow::Result<()> {
    match Command::new("bsdtar").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => bail!(
            "copycds reads ISO and tar files with bsdtar: install the package libarchive-tools"
        ),
    }
}

/// xCAT's fingerprint of a medium: the md5 of its sorted path list, joined.
pub fn fingerprint(mut list: Vec<String>) -> String {
    use md5::Digest;
    list.sort();
    let mut h = md5::Md5::new();
    for l in &list {
        h.update(l.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What `copycds` was asked.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub name: Option<String>,
    pub arch: Option<String>,
    pub path: Option<PathBuf>,
    pub inspect: bool,
    pub no_osimage: bool,
    pub nonoverwrite: bool,
}

/// Identifies a medium (copycds -i and the first step of a copy).
pub fn identify(src: &Source, req: &Request) -> anyhow::Result<MediaId> {
    let read = |p: &str| src.read(p);
    Ok(media::identify(
        &read,
        req.name.as_deref(),
        req.arch.as_deref(),
    )?)
}

/// Copies one medium. `say` receives xCAT's output lines.
pub fn copy(
    store: &Store,
    file: &Path,
    req: &Request,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    let src = Source::open(file)?;
    let id = identify(&src, req)?;
    if req.inspect {
        say(&format!("OS Image:{}", file.display()));
        say(&format!("DISTNAME:{}", id.distname));
        say(&format!(
            "ARCH:{}",
            if id.family == Family::Debian || id.family == Family::Ubuntu {
                &id.media_arch
            } else {
                &id.arch
            }
        ));
        if !id.discno.is_empty() {
            say(&format!("DISCNO:{}", id.discno));
        }
        return Ok(());
    }
    if matches!(id.family, Family::Debian | Family::Ubuntu)
        && (req.path.is_some() || req.nonoverwrite)
    {
        bail!("copycds on Ubuntu/Debian does not support -p or -w option.");
    }
    let installdir = PathBuf::from(
        store
            .site("installdir")?
            .unwrap_or_else(|| "/install".into()),
    );
    let mut target = match &req.path {
        Some(p) => p.clone(),
        None => installdir.join(&id.distname).join(&id.arch),
    };
    if id.family == Family::Sles && req.path.is_none() {
        let disc = if id.discno.is_empty() {
            "1"
        } else {
            &id.discno
        };
        target = target.join(disc);
    }
    let fp = fingerprint(src.list()?);
    let fpfile = target.join(".fingerprint");
    if req.nonoverwrite
        && std::fs::read_to_string(&fpfile).is_ok_and(|t| t.lines().any(|l| l.trim() == fp))
    {
        say(&format!(
            "The disk iso has already been copied in to {}: skipped (-w).",
            target.display()
        ));
        return Ok(());
    }
    say(&format!("Copying media to {}", target.display()));
    let parent = target
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let tmp = parent.join(format!(
        ".{}.copycds-{}",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    let res = extract(&src, &tmp).and_then(|()| {
        // ISO images hold read-only directories; the copy must be ours to change.
        let st = Command::new("chmod")
            .arg("-R")
            .arg("u+w")
            .arg(&tmp)
            .status()?;
        if !st.success() {
            bail!("cannot make {} writable", tmp.display());
        }
        if matches!(id.family, Family::Debian | Family::Ubuntu) {
            for l in ["dists/unstable", "dists/testing"] {
                let p = tmp.join(l);
                if p.symlink_metadata()
                    .is_ok_and(|m| m.file_type().is_symlink())
                {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
        place(&tmp, &target)
    });
    if let Err(e) = res {
        let _ = std::fs::remove_dir_all(&tmp);
        bail!("Media copy operation failed: {}", crate::cli::chain(&e));
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&fpfile)
        .with_context(|| format!("cannot write {}", fpfile.display()))?;
    writeln!(f, "{fp}")?;
    record(store, &installdir, &id, &target, req, say)?;
    say("Media copy operation successful");
    Ok(())
}

/// Extracts the medium into `dir`, with a percentage on a terminal.
fn extract(src: &Source, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let total = src.list().map(|l| l.len()).unwrap_or(1).max(1);
    let mut cmd = match src {
        Source::Dir(d) => {
            let mut c = Command::new("cp");
            c.arg("-av").arg(format!("{}/.", d.display())).arg(dir);
            c
        }
        Source::Archive(f) => {
            let mut c = Command::new("bsdtar");
            c.arg("-xvf").arg(f).arg("-C").arg(dir);
            c
        }
    };
    // cp -v reports on stdout, bsdtar -v on stderr: read both, count lines.
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start the copy (cp / bsdtar)")?;
    let tty = crate::cli::request::err_is_terminal();
    let errs = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut threads = Vec::new();
    let outs: Vec<Box<dyn std::io::Read + Send>> = vec![
        Box::new(child.stdout.take().context("no stdout")?),
        Box::new(child.stderr.take().context("no stderr")?),
    ];
    for r in outs {
        let errs = errs.clone();
        let count = count.clone();
        threads.push(std::thread::spawn(move || {
            let mut last = 0;
            for l in BufReader::new(r).lines().map_while(Result::ok) {
                if l.starts_with("x ") || l.contains(" -> ") {
                    let n = count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    let pct = n * 100 / total;
                    if tty && pct != last {
                        last = pct;
                        crate::err!("\r{:.2}%", pct.min(100) as f64);
                    }
                } else {
                    if let Ok(mut e) = errs.lock() {
                        e.push(l);
                    }
                }
            }
        }));
    }
    let st = child.wait()?;
    for t in threads {
        let _ = t.join();
    }
    if tty {
        crate::errln!();
    }
    if !st.success() {
        let e = errs.lock().map(|e| e.join("; ")).unwrap_or_default();
        bail!("the copy stopped ({st}): {e}");
    }
    Ok(())
}

/// Moves the extracted tree to `target`: a rename when the target is new, else a merge.
fn place(tmp: &Path, target: &Path) -> anyhow::Result<()> {
    if !target.exists() {
        return std::fs::rename(tmp, target)
            .with_context(|| format!("cannot move the copy to {}", target.display()));
    }
    merge(tmp, target)
}

fn merge(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dst = to.join(e.file_name());
        if e.file_type()?.is_dir() && dst.is_dir() && !dst.is_symlink() {
            merge(&e.path(), &dst)?;
        } else {
            if dst.is_dir() && !dst.is_symlink() {
                std::fs::remove_dir_all(&dst)?;
            }
            std::fs::rename(e.path(), &dst)
                .with_context(|| format!("cannot move {}", dst.display()))?;
        }
    }
    Ok(())
}

/// The osdistro row and the osimage definitions, in one transaction.
fn record(
    store: &Store,
    installdir: &Path,
    id: &MediaId,
    target: &Path,
    req: &Request,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    let osdistro = format!("{}-{}", id.distname, id.arch);
    let digits = id
        .distname
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(id.distname.len());
    let (basename, ver) = id.distname.split_at(digits);
    let (major, minor) = ver.split_once('.').unwrap_or((ver, ""));
    let pkgdir = match id.family {
        // SLES media go to <arch>/<disc>; the package directory is the first disc.
        Family::Sles if req.path.is_none() => target
            .parent()
            .map(|p| p.join("1"))
            .unwrap_or_else(|| target.to_path_buf()),
        _ => target.to_path_buf(),
    }
    .display()
    .to_string();
    let defs = if req.no_osimage {
        Vec::new()
    } else {
        profiles::definitions(installdir, &id.distname, &id.arch, id.family, &pkgdir)
    };
    let audit = Audit {
        command: "copycds".into(),
        noderange: String::new(),
        args: target.display().to_string(),
    };
    store.write(Some(&audit), |tx| {
        let existing = tx
            .get("osdistro", &[&osdistro])?
            .and_then(|r| r.get(6).cloned().flatten())
            .unwrap_or_default();
        let t = target.display().to_string();
        let mut dirs: Vec<&str> = existing.split(',').filter(|s| !s.is_empty()).collect();
        if !dirs.contains(&t.as_str()) {
            dirs.push(&t);
        }
        let dirpaths = dirs.join(",");
        tx.set(
            "osdistro",
            &[&osdistro],
            &[
                ("basename", Some(basename)),
                ("majorversion", Some(major)),
                ("minorversion", Some(minor).filter(|m| !m.is_empty())),
                ("arch", Some(&id.arch)),
                ("type", Some("Linux")),
                ("dirpaths", Some(&dirpaths)),
            ],
        )?;
        for d in &defs {
            let os: Vec<(&str, Option<&str>)> = d
                .osimage
                .iter()
                .map(|(k, v)| (*k, Some(v.as_str())))
                .collect();
            tx.set("osimage", &[&d.name], &os)?;
            let had = tx.get("linuximage", &[&d.name])?.is_some();
            let mut li: Vec<(&str, Option<&str>)> = d
                .linuximage
                .iter()
                .map(|(k, v)| (*k, Some(v.as_str())))
                .collect();
            if !had {
                li.push(("addkcmdline", Some("quiet")));
            }
            tx.set("linuximage", &[&d.name], &li)?;
        }
        Ok(())
    })?;
    for d in &defs {
        say(&format!(
            "The osimage {} has been created or updated.",
            d.name
        ));
    }
    Ok(())
}
