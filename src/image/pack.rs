//! `packimage <osimage> [-m cpio|tar|squashfs] [-c gzip|pigz|xz|zstd]`: packs
//! `<rootimgdir>/rootimg` for stateless boot, as xCAT's `packimage.pm`:
//!
//! 1. **prepare** — `/xcatpost` refreshed from `<installdir>/postscripts`; `IMAGENAME`,
//!    `IMAGEUUID` and `TIMESTAMP` in the image's `/opt/xcat/xcatinfo`; root's password from
//!    `passwd` (key=system, username=root; crypted with SHA-512 unless already crypted; `*` when
//!    `site.secureroot=1` or no row);
//! 2. **pack** — the tree, less the exlist (`find -path` globs, `+` re-includes), as a newc cpio
//!    archive or a tar archive streamed into the compressor (pigz, gzip, xz or zstd, all cores), or
//!    a squashfs with `mksquashfs`, into a temporary file;
//! 3. **swap** — the old `rootimg.*` files are deleted and the new one renamed into place only when
//!    packing succeeded: a full disk leaves the previous image as it was.
//!
//! The cpio writer is ours (the format is a header per file): it streams the tree without a
//! temporary list and applies the exlist while walking.

use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use super::pkglist::{self, ExList};
use super::spec::{ImageSpec, PACKED_NAMES};
use crate::store::Store;

/// Archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Cpio,
    Tar,
    Squashfs,
}

impl Method {
    pub fn parse(s: &str) -> anyhow::Result<Method> {
        Ok(match s {
            "cpio" => Method::Cpio,
            "tar" => Method::Tar,
            "squashfs" => Method::Squashfs,
            o => bail!("packimage: archive method '{o}' is not one of cpio, tar, squashfs"),
        })
    }
}

/// Compressors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compress {
    Gzip,
    Pigz,
    Xz,
    Zstd,
}

impl Compress {
    pub fn parse(s: &str) -> anyhow::Result<Compress> {
        Ok(match s {
            "gzip" => Compress::Gzip,
            "pigz" => Compress::Pigz,
            "xz" => Compress::Xz,
            "zstd" => Compress::Zstd,
            o => bail!("packimage: compress method '{o}' is not one of gzip, pigz, xz, zstd"),
        })
    }

    fn ext(self) -> &'static str {
        match self {
            Compress::Gzip | Compress::Pigz => "gz",
            Compress::Xz => "xz",
            Compress::Zstd => "zst",
        }
    }

    /// The compressing command; gzip uses pigz when it is there (xCAT's default).
    fn command(self) -> anyhow::Result<Command> {
        let has = super::genimage::tool_present;
        let (prog, args, pkg): (&str, &[&str], &str) = match self {
            Compress::Gzip if has("pigz") => ("pigz", &["-c"], "pigz"),
            Compress::Gzip => ("gzip", &["-c"], "gzip"),
            Compress::Pigz => ("pigz", &["-c"], "pigz"),
            Compress::Xz => ("xz", &["-T0", "-c"], "xz-utils"),
            Compress::Zstd => ("zstd", &["-T0", "-q", "-c"], "zstd"),
        };
        if !has(prog) {
            bail!("packimage: {prog} is needed for -c {self:?} (Debian package {pkg})");
        }
        let mut c = Command::new(prog);
        c.args(args);
        Ok(c)
    }

    fn squashfs_comp(self) -> &'static str {
        match self {
            Compress::Gzip | Compress::Pigz => "gzip",
            Compress::Xz => "xz",
            Compress::Zstd => "zstd",
        }
    }
}

/// The name packimage writes.
pub fn packed_name(m: Method, c: Compress) -> String {
    match m {
        Method::Cpio => format!("rootimg.cpio.{}", c.ext()),
        Method::Tar => format!("rootimg.tar.{}", c.ext()),
        Method::Squashfs => "rootimg.sfs".into(),
    }
}

/// What packimage did.
#[derive(Debug)]
pub struct Packed {
    pub path: PathBuf,
    pub bytes: u64,
    pub files: u64,
}

/// Packs an image. `say` gets the progress lines.
pub fn packimage(
    store: &Store,
    image: &str,
    method: Method,
    compress: Compress,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<Packed> {
    let spec = ImageSpec::load(store, image)?;
    if spec.provmethod() != "netboot" {
        bail!(
            "packimage: the provmethod of osimage {image} is '{}'; packimage packs netboot images (statelite images are served over NFS: run liteimg)",
            spec.provmethod()
        );
    }
    let rootimgdir = spec.rootimgdir()?;
    let root = rootimgdir.join("rootimg");
    if !root.join("etc").is_dir() {
        bail!(
            "packimage: {} holds no image: run genimage {image} first",
            root.display()
        );
    }
    let _lock = super::genimage::lock_image(&rootimgdir)?;
    // 1. prepare
    say(&format!("Packing contents of {}", root.display()));
    prepare(store, &spec, &root).context("packimage: step 'prepare' failed")?;
    let read = |p: &Path| std::fs::read_to_string(p).ok();
    let ex = pkglist::parse_exlist(&spec.files("exlist"), &read)
        .map_err(|e| anyhow::anyhow!("packimage: step 'prepare' failed: exlist: {e}"))?;
    // 2. pack
    let name = packed_name(method, compress);
    let out = rootimgdir.join(&name);
    let tmp = rootimgdir.join(format!(".{name}.new"));
    say(&format!(
        "archive method:{}",
        match method {
            Method::Cpio => "cpio",
            Method::Tar => "tar",
            Method::Squashfs => "squashfs",
        }
    ));
    if method != Method::Squashfs {
        say(&format!(
            "compress method:{}",
            match compress {
                Compress::Gzip => "gzip",
                Compress::Pigz => "pigz",
                Compress::Xz => "xz",
                Compress::Zstd => "zstd",
            }
        ));
    }
    let res = match method {
        Method::Squashfs => squashfs(&root, &ex, compress, &tmp),
        _ => stream(&root, &ex, method, compress, &tmp),
    };
    let files = match res {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.context(format!(
                "packimage: step 'pack' failed writing {}; the previous image is unchanged",
                out.display()
            )));
        }
    };
    // 3. swap
    for n in PACKED_NAMES {
        let p = rootimgdir.join(n);
        if p != out {
            let _ = std::fs::remove_file(p);
        }
    }
    std::fs::rename(&tmp, &out).with_context(|| {
        format!(
            "packimage: step 'swap' failed: cannot rename to {}",
            out.display()
        )
    })?;
    let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    say(&format!(
        "{} written: {} files, {:.1} MiB",
        out.display(),
        files,
        bytes as f64 / 1048576.0
    ));
    Ok(Packed {
        path: out,
        bytes,
        files,
    })
}

fn prepare(store: &Store, spec: &ImageSpec, root: &Path) -> anyhow::Result<()> {
    // /xcatpost from the appliance's postscripts.
    let post = spec.installdir.join("postscripts");
    if post.is_dir() {
        let dst = root.join("xcatpost");
        let _ = std::fs::remove_dir_all(&dst);
        std::fs::create_dir_all(&dst)?;
        let st = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", post.display()))
            .arg(&dst)
            .status()
            .context("cannot run cp")?;
        if !st.success() {
            bail!("cannot copy {} into the image", post.display());
        }
    }
    // xcatinfo: keep other keys, set the image's.
    let info = root.join("opt/xcat/xcatinfo");
    std::fs::create_dir_all(root.join("opt/xcat"))?;
    let old = std::fs::read_to_string(&info).unwrap_or_default();
    let mut lines: Vec<String> = old
        .lines()
        .filter(|l| {
            !l.starts_with("IMAGENAME=")
                && !l.starts_with("IMAGEUUID=")
                && !l.starts_with("TIMESTAMP=")
        })
        .map(str::to_string)
        .collect();
    let mut uuid = [0u8; 16];
    getrandom::fill(&mut uuid).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    let h: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
    lines.push(format!("IMAGENAME='{}'", spec.name));
    lines.push(format!(
        "IMAGEUUID='{}-{}-{}-{}-{}'",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ));
    lines.push(format!("TIMESTAMP='{}'", crate::store::now_xcat()));
    std::fs::write(&info, lines.join("\n") + "\n")?;
    // root's password.
    let shadow = root.join("etc/shadow");
    if shadow.is_file() {
        let secure = store.site("secureroot")?.is_some_and(|v| v.trim() == "1");
        let pw = store
            .get("passwd", &["system", "root"])?
            .and_then(|r| r.get(2).cloned().flatten())
            .filter(|p| !p.is_empty());
        let method = store
            .get("passwd", &["system", "root"])?
            .and_then(|r| r.get(3).cloned().flatten());
        let hash = match (secure, pw) {
            (true, _) | (false, None) => "*".to_string(),
            (false, Some(p)) if crate::boot::template::is_crypted(&p) => p,
            (false, Some(p)) => {
                let salt = crate::boot::template::shacrypt::random_salt()?;
                if method.as_deref() == Some("sha256") {
                    crate::boot::template::shacrypt::sha256_crypt(p.as_bytes(), &salt, None)
                } else {
                    crate::boot::template::shacrypt::sha512_crypt(p.as_bytes(), &salt, None)
                }
            }
        };
        let text = std::fs::read_to_string(&shadow)?;
        let out: Vec<String> = text
            .lines()
            .map(|l| {
                let mut f: Vec<&str> = l.split(':').collect();
                if f.first() == Some(&"root") && f.len() > 1 {
                    f[1] = &hash;
                    f.join(":")
                } else {
                    l.to_string()
                }
            })
            .collect();
        let mode = std::fs::metadata(&shadow)?.permissions().mode();
        std::fs::write(&shadow, out.join("\n") + "\n")?;
        std::fs::set_permissions(&shadow, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Whether anything under `dir` (a `./…` path) could be re-included by a `+` rule.
fn reincluded_below(ex: &ExList, dir: &str) -> bool {
    ex.include.iter().any(|g| {
        let lit: String = g
            .chars()
            .take_while(|c| !matches!(c, '*' | '?' | '['))
            .collect();
        lit.starts_with(&format!("{dir}/")) || format!("{dir}/").starts_with(&lit)
    })
}

/// Every kept path of the tree, parents before children (`./a`, `./a/b`), sorted.
fn walk(
    root: &Path,
    ex: &ExList,
    mut f: impl FnMut(&str, &Path, &std::fs::Metadata) -> io::Result<()>,
) -> io::Result<u64> {
    let mut n = 0;
    let mut stack = vec![(String::from("."), root.to_path_buf())];
    while let Some((rel, path)) = stack.pop() {
        let md = std::fs::symlink_metadata(&path)?;
        let keep = rel == "." || ex.keeps(&rel);
        if keep {
            f(&rel, &path, &md)?;
            n += 1;
        }
        if md.is_dir() && (keep || reincluded_below(ex, &rel)) {
            let mut kids: Vec<_> = std::fs::read_dir(&path)?
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .collect();
            kids.sort();
            for k in kids.into_iter().rev() {
                let name = k.to_string_lossy().into_owned();
                stack.push((format!("{rel}/{name}"), path.join(&k)));
            }
        }
    }
    Ok(n)
}

/// Writes a newc cpio header + name.
fn cpio_header(
    w: &mut impl Write,
    ino: u64,
    md: &std::fs::Metadata,
    size: u64,
    name: &str,
) -> io::Result<()> {
    let rdev = md.rdev();
    let (rmaj, rmin) = (libc::major(rdev), libc::minor(rdev));
    let namesize = name.len() + 1;
    write!(
        w,
        "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
        ino as u32,
        md.mode(),
        md.uid(),
        md.gid(),
        if md.is_dir() { 2 } else { 1 },
        md.mtime().max(0) as u32,
        size as u32,
        0,
        0,
        rmaj,
        rmin,
        namesize,
        0
    )?;
    w.write_all(name.as_bytes())?;
    w.write_all(&[0])?;
    pad(w, 110 + namesize)
}

fn pad(w: &mut impl Write, len: usize) -> io::Result<()> {
    let p = (4 - len % 4) % 4;
    w.write_all(&[0u8; 3][..p])
}

/// cpio or tar into the compressor, into `tmp`. Returns the number of entries.
fn stream(
    root: &Path,
    ex: &ExList,
    method: Method,
    c: Compress,
    tmp: &Path,
) -> anyhow::Result<u64> {
    stream_prefixed(root, "", ex, method, c, tmp)
}

/// A cpio (newc, gzip) of the whole tree under `root`, its names starting `<prefix>/`
/// (imgexport's `rootimgtree.gz`).
pub fn cpio_gz_tree(root: &Path, prefix: &str, out: &Path) -> anyhow::Result<u64> {
    stream_prefixed(
        root,
        prefix,
        &ExList::default(),
        Method::Cpio,
        Compress::Gzip,
        out,
    )
}

fn stream_prefixed(
    root: &Path,
    prefix: &str,
    ex: &ExList,
    method: Method,
    c: Compress,
    tmp: &Path,
) -> anyhow::Result<u64> {
    let file =
        std::fs::File::create(tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut cmd = c.command()?;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(file)
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start the compressor")?;
    let stdin = child.stdin.take().context("compressor stdin")?;
    let mut w = io::BufWriter::with_capacity(1 << 20, stdin);
    let res: io::Result<u64> = match method {
        Method::Cpio => {
            let mut ino = 1u64;
            let r = walk(root, ex, |rel, path, md| {
                ino += 1;
                let stripped = rel.strip_prefix("./").unwrap_or(rel);
                let joined;
                let name = if prefix.is_empty() {
                    stripped
                } else if rel == "." {
                    prefix
                } else {
                    joined = format!("{prefix}/{stripped}");
                    joined.as_str()
                };
                if md.file_type().is_symlink() {
                    let t = std::fs::read_link(path)?;
                    let t = t.as_os_str().as_encoded_bytes();
                    cpio_header(&mut w, ino, md, t.len() as u64, name)?;
                    w.write_all(t)?;
                    pad(&mut w, t.len())
                } else if md.is_file() {
                    if md.len() > u32::MAX as u64 {
                        return Err(io::Error::other(format!(
                            "{} is over 4 GiB, more than cpio can hold: use -m tar or -m squashfs",
                            path.display()
                        )));
                    }
                    cpio_header(&mut w, ino, md, md.len(), name)?;
                    let mut f = std::fs::File::open(path)?;
                    let n = io::copy(&mut f, &mut w)?;
                    if n != md.len() {
                        return Err(io::Error::other(format!(
                            "{} changed while being packed",
                            path.display()
                        )));
                    }
                    pad(&mut w, n as usize)
                } else {
                    cpio_header(&mut w, ino, md, 0, name)
                }
            });
            r.and_then(|n| {
                let trailer = std::fs::metadata(root)?;
                // The trailer: an empty entry named TRAILER!!! (mode and times zero).
                write!(
                    w,
                    "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}TRAILER!!!\0",
                    0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11, 0
                )?;
                let _ = trailer;
                pad(&mut w, 110 + 11)?;
                Ok(n)
            })
        }
        Method::Tar => {
            let mut b = tar::Builder::new(&mut w);
            b.follow_symlinks(false);
            let r = walk(root, ex, |rel, path, md| {
                if rel == "." {
                    return Ok(());
                }
                let name = rel.strip_prefix("./").unwrap_or(rel);
                if md.is_dir() {
                    let mut h = tar::Header::new_gnu();
                    h.set_metadata(md);
                    h.set_size(0);
                    b.append_data(&mut h, name, io::empty())
                } else {
                    b.append_path_with_name(path, name)
                }
            });
            r.and_then(|n| b.finish().map(|()| n))
        }
        Method::Squashfs => unreachable!("squashfs is packed by mksquashfs"),
    };
    let flushed = res.and_then(|n| w.flush().map(|()| n));
    drop(w);
    let status = child.wait().context("the compressor")?;
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = io::Read::read_to_string(&mut e, &mut err);
    }
    let n = flushed.map_err(|e| {
        if e.kind() == io::ErrorKind::BrokenPipe {
            anyhow::anyhow!("the compressor stopped: {}", err.trim())
        } else {
            anyhow::anyhow!(e)
        }
    })?;
    if !status.success() {
        bail!("the compressor failed ({status}): {}", err.trim());
    }
    Ok(n)
}

fn squashfs(root: &Path, ex: &ExList, c: Compress, tmp: &Path) -> anyhow::Result<u64> {
    if !super::genimage::tool_present("mksquashfs") {
        bail!("packimage -m squashfs needs mksquashfs (Debian package squashfs-tools)");
    }
    // The excluded paths, exactly (no wildcards): what walk() leaves out.
    let mut excluded = Vec::new();
    let mut kept = 0u64;
    let mut stack = vec![(String::from("."), root.to_path_buf())];
    while let Some((rel, path)) = stack.pop() {
        let md = std::fs::symlink_metadata(&path)?;
        let keep = rel == "." || ex.keeps(&rel);
        if keep {
            kept += 1;
        } else if !(md.is_dir() && reincluded_below(ex, &rel)) {
            excluded.push(rel.trim_start_matches("./").to_string());
            continue;
        }
        if md.is_dir() {
            for e in std::fs::read_dir(&path)?.filter_map(Result::ok) {
                let name = e.file_name().to_string_lossy().into_owned();
                stack.push((format!("{rel}/{name}"), e.path()));
            }
        }
    }
    let exfile = tmp.with_extension("exclude");
    std::fs::write(&exfile, excluded.join("\n") + "\n")?;
    let _ = std::fs::remove_file(tmp);
    let o = Command::new("mksquashfs")
        .arg(root)
        .arg(tmp)
        .args([
            "-noappend",
            "-no-progress",
            "-comp",
            c.squashfs_comp(),
            "-ef",
        ])
        .arg(&exfile)
        .output()
        .context("cannot run mksquashfs")?;
    let _ = std::fs::remove_file(&exfile);
    if !o.status.success() {
        bail!(
            "mksquashfs failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_is_read_back_by_cpio() {
        let d = tempfile::tempdir().expect("tmp");
        let root = d.path().join("rootimg");
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::fs::create_dir_all(root.join("usr/share/man/man1")).expect("mkdir");
        std::fs::write(root.join("etc/hello"), "hi\n").expect("write");
        std::fs::write(root.join("usr/share/man/man1/x.1"), "man\n").expect("write");
        std::os::unix::fs::symlink("hello", root.join("etc/link")).expect("symlink");
        let ex = ExList {
            exclude: vec!["./usr/share/man*".into()],
            include: vec![],
        };
        let out = d.path().join("r.cpio.gz");
        let n = stream(&root, &ex, Method::Cpio, Compress::Gzip, &out).expect("pack");
        assert_eq!(n, 6); // . etc etc/hello etc/link usr usr/share
        let x = d.path().join("x");
        std::fs::create_dir_all(&x).expect("mkdir");
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!("gzip -dc {} | cpio -idm --quiet", out.display()))
            .current_dir(&x)
            .status()
            .expect("cpio");
        assert!(st.success());
        assert_eq!(
            std::fs::read_to_string(x.join("etc/hello")).expect("read"),
            "hi\n"
        );
        assert_eq!(
            std::fs::read_link(x.join("etc/link")).expect("link"),
            PathBuf::from("hello")
        );
        assert!(!x.join("usr/share/man").exists());
    }
}
