//! `genimage <osimage>`: builds `<rootimgdir>/rootimg` for stateless and statelite boot, as xCAT's
//! `share/xcat/netboot/<family>/genimage` does, in named steps:
//!
//! 1. **check** — the definition (provmethod, pkglist, pkgdir) and the tools;
//! 2. **install** — Debian/Ubuntu with `mmdebstrap`, the RHEL family with `dnf --installroot`,
//!    from `linuximage.pkgdir` (copycds'd media or mirror URLs), each `#NEW_INSTALL_LIST#` as its own
//!    transaction, then the otherpkglist; downloaded packages are kept in a cache
//!    (`site.imagepkgcache`, default `/var/cache/bootherd/packages/<osvers>-<arch>`);
//! 3. **node-side** — the postscript runner `/opt/xcat/xcatdsklspost` with its boot-time unit
//!    `xcatpostinit1.service`, the statelite script `/etc/init.d/statelite`, `/.statelite`,
//!    `/.sllocal`, fstab, DHCP on the boot NIC;
//! 4. **postinstall** — each `linuximage.postinstall` script as `script <rootimg> <osver> <arch>
//!    <profile> [args]` with `IMG_*` in the environment; a non-zero exit fails the build;
//! 5. **kernel** — the image's kernel to `<rootimgdir>/kernel`;
//! 6. **initrd** — bootherd's busybox initramfs with the image's own NIC and NFS modules
//!    (`netdrivers` added), which by the command line nodeset renders either downloads the packed
//!    image into RAM (`imgurl=`) or mounts the root read-only over NFS (`root=nfs:`), as
//!    `initrd-stateless.gz` and `initrd-statelite.gz`;
//! 7. **swap** — the new root replaces the old one only now; kernel and initrds are copied to
//!    `<tftpdir>/xcat/osimage/<image>/`.
//!
//! The build happens in `<rootimgdir>/.rootimg.new`: a failing step leaves the previous image as
//! it was. Every step's output goes to `<rootimgdir>/genimage.log`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::media::Family;
use super::pkglist::{self, PkgList};
use super::spec::ImageSpec;
use crate::store::Store;

/// What `genimage` was asked, beyond the image name.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `-n`: NIC drivers added to the initrd's defaults.
    pub netdrivers: Vec<String>,
    /// `-k`: the kernel version to use when the image has several.
    pub kernelver: Option<String>,
    /// `--onlyinitrd`: rebuild the initrds from the existing root.
    pub onlyinitrd: bool,
    /// `--noupdate`: no package upgrade after the install.
    pub noupdate: bool,
    /// `--dryrun`: say what would be done.
    pub dryrun: bool,
}

/// A step that failed, with what was at fault.
#[derive(Debug, thiserror::Error)]
#[error("genimage: step '{step}' failed: {msg}")]
pub struct StepError {
    pub step: &'static str,
    pub msg: String,
}

fn fail<T>(step: &'static str, msg: impl Into<String>) -> Result<T, StepError> {
    Err(StepError {
        step,
        msg: msg.into(),
    })
}

/// Progress and the build log.
pub struct Progress {
    log: Option<std::fs::File>,
    start: std::time::Instant,
    pub log_path: PathBuf,
    tty: bool,
    quiet: bool,
    /// Packages fetched (apt's `Get:` lines) and their bytes.
    pub fetched: (u64, f64),
}

/// The size apt prints at the end of a `Get:` line (`[4,523 kB]`), in bytes.
pub fn apt_get_size(line: &str) -> Option<f64> {
    if !line.starts_with("Get:") {
        return None;
    }
    let open = line.rfind('[')?;
    let inner = line[open + 1..].strip_suffix(']')?;
    let (num, unit) = inner.split_once(' ')?;
    let n: f64 = num.replace(',', "").parse().ok()?;
    let mult = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => return None,
    };
    Some(n * mult)
}

impl Progress {
    fn new(log_path: PathBuf, quiet: bool) -> Progress {
        if let Some(p) = log_path.parent() {
            let _ = std::fs::create_dir_all(p);
        }
        Progress {
            log: std::fs::File::create(&log_path).ok(),
            start: std::time::Instant::now(),
            log_path,
            tty: crate::cli::request::out_is_terminal(),
            quiet,
            fetched: (0, 0.0),
        }
    }

    /// A line for the user and the log.
    pub fn say(&mut self, l: &str) {
        if !self.quiet {
            crate::outln!("{l}");
        }
        self.log_line(l);
    }

    fn log_line(&mut self, l: &str) {
        let t = self.start.elapsed().as_secs_f64();
        if let Some(f) = self.log.as_mut() {
            let _ = writeln!(f, "[{t:7.1}s] {l}");
        }
    }

    /// A tool's output line: logged; on a terminal, shown as a one-line status.
    fn tool(&mut self, l: &str) {
        self.log_line(l);
        if let Some(b) = apt_get_size(l) {
            self.fetched.0 += 1;
            self.fetched.1 += b;
        }
        if self.tty && !self.quiet {
            let s: String = l.chars().take(80).collect();
            let dl = if self.fetched.0 > 0 {
                format!(
                    "[downloaded {} packages, {:.1} MB] ",
                    self.fetched.0,
                    self.fetched.1 / 1e6
                )
            } else {
                String::new()
            };
            crate::out!("\r\x1b[K  {dl}{s}");
            let _ = crate::cli::request::OutWriter.flush();
        }
    }

    fn end_tool(&mut self) {
        if self.tty && !self.quiet {
            crate::out!("\r\x1b[K");
            let _ = crate::cli::request::OutWriter.flush();
        }
    }
}

/// Runs `cmd`, its output into the log (and a status line); returns the output's lines.
fn run(
    p: &mut Progress,
    step: &'static str,
    what: &str,
    cmd: &mut Command,
) -> Result<Vec<String>, StepError> {
    p.log_line(&format!("+ {cmd:?}"));
    let mut child = match cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return fail(step, format!("cannot run {what}: {e}")),
    };
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let mut threads = Vec::new();
    let outs: Vec<Box<dyn std::io::Read + Send>> = vec![
        Box::new(child.stdout.take().expect("piped stdout")),
        Box::new(child.stderr.take().expect("piped stderr")),
    ];
    for r in outs {
        let tx = tx.clone();
        threads.push(std::thread::spawn(move || {
            for l in BufReader::new(r).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let mut lines = Vec::new();
    for l in rx {
        p.tool(&l);
        lines.push(l);
    }
    for t in threads {
        let _ = t.join();
    }
    p.end_tool();
    let st = match child.wait() {
        Ok(s) => s,
        Err(e) => return fail(step, format!("{what}: {e}")),
    };
    if !st.success() {
        let tail: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with("E:") || l.contains("rror"))
            .collect();
        let detail = tail
            .last()
            .map(|s| s.to_string())
            .or_else(|| lines.last().cloned())
            .unwrap_or_default();
        return fail(
            step,
            format!(
                "{what} exited with {st}{}{} (see {})",
                if detail.is_empty() { "" } else { ": " },
                detail,
                p.log_path.display()
            ),
        );
    }
    Ok(lines)
}

/// Whether `name` is a program on `PATH`.
pub(crate) fn tool_present(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// The Debian/Ubuntu suite for an OS version (`debian12.5.0` → `bookworm`).
pub fn debian_suite(osvers: &str) -> Option<&'static str> {
    let v = osvers.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let major = v.split('.').next().unwrap_or("");
    if osvers.starts_with("debian") {
        return match major {
            "10" => Some("buster"),
            "11" => Some("bullseye"),
            "12" => Some("bookworm"),
            "13" => Some("trixie"),
            "14" => Some("forky"),
            _ => None,
        };
    }
    let mm: String = v.split('.').take(2).collect::<Vec<_>>().join(".");
    match mm.as_str() {
        "18.04" => Some("bionic"),
        "20.04" => Some("focal"),
        "22.04" => Some("jammy"),
        "24.04" => Some("noble"),
        "26.04" => Some("resolute"),
        _ => None,
    }
}

/// The kernel package an image gets when its lists name none.
pub fn kernel_package(family: Family, arch: &str) -> &'static str {
    match (family, arch) {
        (Family::Debian, "aarch64") => "linux-image-arm64",
        (Family::Debian, "ppc64el" | "ppc64le") => "linux-image-powerpc64le",
        (Family::Debian, _) => "linux-image-amd64",
        (Family::Ubuntu, _) => "linux-image-generic",
        (Family::Rh | Family::Sles, _) => "kernel",
    }
}

/// One apt source from a pkgdir entry: a copycds'd directory (`dists/<suite>` inside) or a URL
/// with optional suite and components (`http://mirror/debian bookworm main contrib`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    pub uri: String,
    pub suite: String,
    pub components: Vec<String>,
}

/// The apt sources of a Debian/Ubuntu image's pkgdir.
pub fn apt_sources(pkgdir: &str, default_suite: Option<&str>) -> Result<Vec<AptSource>, String> {
    let mut out = Vec::new();
    for entry in pkgdir.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let mut w = entry.split_whitespace();
        let Some(loc) = w.next() else { continue };
        let suite = w.next().map(str::to_string);
        let comps: Vec<String> = w.map(str::to_string).collect();
        let (uri, suite) = if loc.contains("://") {
            let s = suite
                .or_else(|| default_suite.map(str::to_string))
                .ok_or_else(|| {
                    format!("pkgdir entry '{entry}' names no suite and the OS version gives none")
                })?;
            (loc.to_string(), s)
        } else {
            let dir = Path::new(loc);
            let s = match suite {
                Some(s) => s,
                None => {
                    let dists = dir.join("dists");
                    let mut found = std::fs::read_dir(&dists)
                        .map_err(|_| format!("pkgdir {loc} is not a Debian repository (no dists/ directory): copycds a Debian/Ubuntu medium there, or give a mirror URL"))?
                        .filter_map(Result::ok)
                        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect::<Vec<_>>();
                    found.sort();
                    match default_suite.filter(|d| found.iter().any(|f| f == d)) {
                        Some(d) => d.to_string(),
                        None => found
                            .into_iter()
                            .find(|f| !["stable", "testing", "unstable"].contains(&f.as_str()))
                            .ok_or_else(|| format!("pkgdir {loc} has no suite under dists/"))?,
                    }
                }
            };
            (format!("file://{}", dir.display()), s)
        };
        let components = if comps.is_empty() {
            vec!["main".to_string()]
        } else {
            comps
        };
        out.push(AptSource {
            uri,
            suite,
            components,
        });
    }
    if out.is_empty() {
        return Err(
            "linuximage.pkgdir is empty: give the copycds'd media directory or a mirror URL".into(),
        );
    }
    Ok(out)
}

/// Builds the image. `say` lines go to the terminal and the log.
pub fn genimage(store: &Store, image: &str, req: &Request, quiet: bool) -> anyhow::Result<PathBuf> {
    let spec = ImageSpec::load(store, image)?;
    let rootimgdir = spec.rootimgdir()?;
    let mut p = Progress::new(rootimgdir.join("genimage.log"), quiet);
    let cache_base = store
        .site("imagepkgcache")?
        .unwrap_or_else(|| "/var/cache/bootherd/packages".into());
    let res = build(&spec, req, &rootimgdir, Path::new(&cache_base), &mut p);
    match res {
        Ok(()) => Ok(rootimgdir.join("rootimg")),
        Err(e) => {
            p.log_line(&e.to_string());
            Err(e.into())
        }
    }
}

struct Lock(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

fn lock(rootimgdir: &Path) -> Result<Lock, StepError> {
    let path = rootimgdir.join(".genimage.lock");
    let f = match std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) => return fail("check", format!("cannot open {}: {e}", path.display())),
    };
    match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(Lock(l)),
        Err(_) => fail(
            "check",
            format!(
                "another genimage, packimage or rmimage is working on {} (lock {})",
                rootimgdir.display(),
                path.display()
            ),
        ),
    }
}

/// Takes the image's lock for packimage/rmimage too.
pub fn lock_image(rootimgdir: &Path) -> anyhow::Result<impl Drop> {
    std::fs::create_dir_all(rootimgdir)?;
    Ok(lock(rootimgdir)?)
}

impl Drop for Lock {
    fn drop(&mut self) {}
}

fn build(
    spec: &ImageSpec,
    req: &Request,
    rootimgdir: &Path,
    cache_base: &Path,
    p: &mut Progress,
) -> Result<(), StepError> {
    // 1. check
    let provmethod = spec.provmethod();
    if !["netboot", "statelite"].contains(&provmethod) {
        return fail(
            "check",
            format!(
                "osimage {} has provmethod '{provmethod}'; genimage builds netboot and statelite images",
                spec.name
            ),
        );
    }
    let osvers = spec.osvers().to_string();
    let arch = spec.arch().to_string();
    if osvers.is_empty() || arch.is_empty() {
        return fail(
            "check",
            format!("osimage {} needs osvers and osarch", spec.name),
        );
    }
    let Some(family) = Family::of(&osvers) else {
        return fail(
            "check",
            format!("genimage does not know how to build osvers '{osvers}' (debian*, ubuntu*, rhels*/centos*/rocky*/alma*/fedora*)"),
        );
    };
    if let Err(e) = std::fs::create_dir_all(rootimgdir) {
        return fail(
            "check",
            format!("cannot create {}: {e}", rootimgdir.display()),
        );
    }
    let _lock = lock(rootimgdir)?;
    let final_root = rootimgdir.join("rootimg");
    let work = rootimgdir.join(".rootimg.new");
    let vars = |v: &str| -> Option<String> {
        match v {
            "OSVER" => Some(osvers.clone()),
            "ARCH" => Some(arch.clone()),
            "PROFILE" => Some(spec.profile().to_string()),
            _ => std::env::var(v).ok(),
        }
    };
    let root = if req.onlyinitrd {
        if !final_root.join("etc").is_dir() {
            return fail(
                "check",
                format!(
                    "--onlyinitrd needs a built image, and {} has none",
                    final_root.display()
                ),
            );
        }
        p.say(&format!(
            "genimage: rebuilding the initrds of {} from {}",
            spec.name,
            final_root.display()
        ));
        final_root.clone()
    } else {
        let pkglists = spec.files("pkglist");
        if pkglists.is_empty() {
            return fail(
                "check",
                format!(
                    "osimage {} has no pkglist (linuximage.pkglist): genimage needs the list of packages to install",
                    spec.name
                ),
            );
        }
        let read = |p: &Path| std::fs::read_to_string(p).ok();
        let mut pkgs = PkgList::default();
        for f in &pkglists {
            match pkglist::parse_pkglist(f, &read, &vars) {
                Ok(l) => {
                    pkgs.lists.extend(l.lists);
                    pkgs.env.extend(l.env);
                }
                Err(e) => return fail("check", format!("pkglist: {e}")),
            }
        }
        if pkgs.all().next().is_none() {
            return fail(
                "check",
                format!("the pkglist of {} names no package", spec.name),
            );
        }
        let mut other = PkgList::default();
        for f in spec.files("otherpkglist") {
            match pkglist::parse_pkglist(&f, &read, &vars) {
                Ok(l) => other = merge(other, l),
                Err(e) => return fail("check", format!("otherpkglist: {e}")),
            }
        }
        let cache = cache_base.join(format!("{osvers}-{arch}"));
        p.say(&format!(
            "genimage: building {} ({osvers} {arch}, {provmethod}) in {}",
            spec.name,
            rootimgdir.display()
        ));
        if req.dryrun {
            p.say(&format!(
                "genimage: would install {} packages: {}",
                pkgs.all().count(),
                pkgs.all().cloned().collect::<Vec<_>>().join(" ")
            ));
            return Ok(());
        }
        let _ = std::fs::remove_dir_all(&work);
        let res = match family {
            Family::Debian | Family::Ubuntu => {
                install_debian(spec, family, &pkgs, &other, &work, &cache, req, p)
            }
            Family::Rh => install_rh(spec, &pkgs, &other, &work, &cache, req, p),
            Family::Sles => fail(
                "check",
                "genimage for SLES images (zypper) is not built yet; Debian, Ubuntu and the RHEL family are",
            ),
        };
        if let Err(e) = res {
            let _ = std::fs::remove_dir_all(&work);
            return Err(e);
        }
        if let Err(e) = node_side(spec, &work, p) {
            let _ = std::fs::remove_dir_all(&work);
            return Err(e);
        }
        if let Err(e) = postinstall(spec, &work, p) {
            let _ = std::fs::remove_dir_all(&work);
            return Err(e);
        }
        work.clone()
    };
    let cleanup = |e: StepError| {
        if !req.onlyinitrd {
            let _ = std::fs::remove_dir_all(&work);
        }
        e
    };
    // 5. kernel
    let (kver, kfile) = kernel(
        &root,
        req.kernelver
            .as_deref()
            .or(Some(spec.li("kernelver")).filter(|s| !s.is_empty())),
    )
    .map_err(cleanup)?;
    p.say(&format!("genimage: kernel {kver}"));
    // 6. initrd
    let mut drivers: Vec<String> = spec
        .li("netdrivers")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    drivers.extend(req.netdrivers.iter().cloned());
    let initrd_tmp = rootimgdir.join(".initrd.new.gz");
    initrd(&root, &kver, &drivers, &initrd_tmp, p).map_err(cleanup)?;
    // 7. swap
    if !req.onlyinitrd {
        let old = rootimgdir.join(".rootimg.old");
        let _ = std::fs::remove_dir_all(&old);
        if final_root.exists() {
            if let Err(e) = std::fs::rename(&final_root, &old) {
                return Err(cleanup(StepError {
                    step: "swap",
                    msg: format!("cannot move the old root aside: {e}"),
                }));
            }
        }
        if let Err(e) = std::fs::rename(&work, &final_root) {
            let _ = std::fs::rename(&old, &final_root);
            return Err(cleanup(StepError {
                step: "swap",
                msg: format!("cannot put the new root in place: {e}"),
            }));
        }
        let _ = std::fs::remove_dir_all(&old);
    }
    let kfile = final_root.join(kfile.strip_prefix(&root).unwrap_or(&kfile));
    let place = |from: &Path, to: &Path| -> Result<(), StepError> {
        if let Some(d) = to.parent() {
            std::fs::create_dir_all(d).map_err(|e| StepError {
                step: "swap",
                msg: format!("cannot create {}: {e}", d.display()),
            })?;
        }
        let tmp = to.with_extension("new");
        std::fs::copy(from, &tmp)
            .and_then(|_| std::fs::rename(&tmp, to))
            .map_err(|e| StepError {
                step: "swap",
                msg: format!("cannot write {}: {e}", to.display()),
            })
            .map(|_| ())
    };
    place(&kfile, &rootimgdir.join("kernel"))?;
    place(&initrd_tmp, &rootimgdir.join("initrd-stateless.gz"))?;
    place(&initrd_tmp, &rootimgdir.join("initrd-statelite.gz"))?;
    let _ = std::fs::remove_file(&initrd_tmp);
    let tftp = spec.tftp_image_dir();
    place(&kfile, &tftp.join("kernel"))?;
    let which = if provmethod == "statelite" {
        "initrd-statelite.gz"
    } else {
        "initrd-stateless.gz"
    };
    place(&rootimgdir.join(which), &tftp.join(which))?;
    p.say(&format!(
        "genimage: {} is ready: {} (kernel and {which} in {})",
        spec.name,
        final_root.display(),
        tftp.display()
    ));
    if provmethod == "netboot" {
        p.say(&format!("genimage: next, run: packimage {}", spec.name));
    } else if provmethod == "statelite" {
        p.say(&format!("genimage: next, run: liteimg {}", spec.name));
    }
    Ok(())
}

fn merge(mut a: PkgList, b: PkgList) -> PkgList {
    a.lists.extend(b.lists);
    a.env.extend(b.env);
    a.remove_before.extend(b.remove_before);
    a.remove_after.extend(b.remove_after);
    a
}

#[allow(clippy::too_many_arguments)]
fn install_debian(
    spec: &ImageSpec,
    family: Family,
    pkgs: &PkgList,
    other: &PkgList,
    work: &Path,
    cache: &Path,
    req: &Request,
    p: &mut Progress,
) -> Result<(), StepError> {
    if !tool_present("mmdebstrap") {
        return fail(
            "check",
            "building Debian/Ubuntu images needs mmdebstrap (Debian package mmdebstrap)",
        );
    }
    let osvers = spec.osvers();
    let arch = spec.arch();
    let sources = match apt_sources(spec.li("pkgdir"), debian_suite(osvers)) {
        Ok(s) => s,
        Err(e) => return fail("check", e),
    };
    let debarch = match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "ppc64le" | "ppc64el" => "ppc64el",
        "x86" => "i386",
        a => a,
    };
    if let Err(e) = std::fs::create_dir_all(cache) {
        return fail(
            "install",
            format!("cannot create the package cache {}: {e}", cache.display()),
        );
    }
    let mut first: Vec<String> = pkgs.lists.first().cloned().unwrap_or_default();
    let names_kernel = pkgs.all().any(|p| p.starts_with("linux-image"));
    if !names_kernel {
        first.push(kernel_package(family, arch).to_string());
    }
    // The initramfs is built from the image's own static busybox.
    first.push("busybox-static".into());
    let q = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let mut cmd = Command::new("mmdebstrap");
    cmd.arg("--mode=root")
        .arg("--variant=minbase")
        .arg(format!("--architectures={debarch}"))
        .arg(format!("--include={}", first.join(",")))
        // The tree is thrown away if the build fails, so dpkg need not fsync every file.
        .arg("--dpkgopt=force-unsafe-io")
        .arg("--skip=download/empty")
        .arg("--skip=essential/unlink")
        .arg("--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/")
        .arg(format!(
            "--setup-hook=sync-in {} /var/cache/apt/archives/",
            q(&cache.display().to_string())
        ))
        .arg("--aptopt=Acquire::Retries \"3\"");
    // The image's own initramfs is never used (bootherd builds the node's): the kernel's
    // postinst need not spend a minute making one.
    cmd.env("INITRD", "No");
    for (k, v) in &pkgs.env {
        cmd.env(k, v);
    }
    let comps: Vec<String> = {
        let mut c: Vec<String> = sources.iter().flat_map(|s| s.components.clone()).collect();
        c.sort();
        c.dedup();
        c
    };
    cmd.arg(format!("--components={}", comps.join(",")));
    let apt = "chroot \"$1\" env DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Options::=--force-confold --no-install-recommends";
    for extra in pkgs.lists.iter().skip(1) {
        cmd.arg(format!(
            "--customize-hook={apt} install {}",
            extra.join(" ")
        ));
    }
    if !other.remove_before.is_empty() {
        cmd.arg(format!(
            "--customize-hook={apt} purge {}",
            other.remove_before.join(" ")
        ));
    }
    let other_pkgs: Vec<String> = other
        .all()
        .map(|p| p.rsplit('/').next().unwrap_or(p).to_string())
        .collect();
    if !other_pkgs.is_empty() {
        cmd.arg(format!(
            "--customize-hook={apt} install {}",
            other_pkgs.join(" ")
        ));
    }
    if !other.remove_after.is_empty() {
        cmd.arg(format!(
            "--customize-hook={apt} purge {}",
            other.remove_after.join(" ")
        ));
    }
    if !req.noupdate {
        cmd.arg(format!("--customize-hook={apt} upgrade"));
    }
    cmd.arg(format!(
        "--customize-hook=sync-out /var/cache/apt/archives {}",
        q(&cache.display().to_string())
    ));
    let first_suite = sources[0].suite.clone();
    cmd.arg(&first_suite).arg(work);
    for s in &sources {
        cmd.arg(format!(
            "deb [trusted=yes] {} {} {}",
            s.uri,
            s.suite,
            s.components.join(" ")
        ));
    }
    let otherdir = spec.li("otherpkgdir");
    if !other_pkgs.is_empty()
        && !otherdir.is_empty()
        && (Path::new(otherdir).join("Packages").exists()
            || Path::new(otherdir).join("Packages.gz").exists())
    {
        cmd.arg(format!("deb [trusted=yes] file://{otherdir} ./"));
    }
    p.say(&format!(
        "genimage: installing {} packages with mmdebstrap from {} (cache {})",
        pkgs.all().count() + usize::from(!names_kernel) + 1,
        sources
            .iter()
            .map(|s| format!("{} {}", s.uri, s.suite))
            .collect::<Vec<_>>()
            .join(", "),
        cache.display()
    ));
    match run(p, "install", "mmdebstrap", &mut cmd) {
        Ok(_) => {
            let (n, b) = p.fetched;
            p.say(&format!(
                "genimage: installed; {n} packages downloaded ({:.1} MB), the rest from the cache",
                b / 1e6
            ));
            Ok(())
        }
        Err(mut e) => {
            if let Some(pkg) = missing_package(&p.log_path) {
                e.msg = format!(
                    "package '{pkg}' was not found in {}: {}",
                    spec.li("pkgdir"),
                    e.msg
                );
            }
            Err(e)
        }
    }
}

/// The package apt or dnf could not find, from the build log.
fn missing_package(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    for l in text.lines().rev() {
        for pat in [
            "Unable to locate package ",
            "No match for argument: ",
            "has no installation candidate",
        ] {
            if let Some(i) = l.find(pat) {
                if pat == "has no installation candidate" {
                    let w = l.split('\'').nth(1)?;
                    return Some(w.to_string());
                }
                return Some(l[i + pat.len()..].trim().to_string());
            }
        }
    }
    None
}

fn install_rh(
    spec: &ImageSpec,
    pkgs: &PkgList,
    other: &PkgList,
    work: &Path,
    cache: &Path,
    req: &Request,
    p: &mut Progress,
) -> Result<(), StepError> {
    let dnf = if tool_present("dnf") {
        "dnf"
    } else if tool_present("yum") {
        "yum"
    } else {
        return fail(
            "check",
            "building RHEL-family images needs dnf (or yum) on this machine",
        );
    };
    let mut repos = Vec::new();
    for (i, d) in spec
        .li("pkgdir")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
    {
        let url = if d.contains("://") {
            d.to_string()
        } else {
            // RHEL 8+ media keep BaseOS and AppStream as separate repositories.
            let base = Path::new(d);
            for sub in ["BaseOS", "AppStream"] {
                if base.join(sub).join("repodata").is_dir() {
                    repos.push(format!(
                        "--repofrompath=xcat-{i}-{sub},file://{}",
                        base.join(sub).display()
                    ));
                }
            }
            if !base.join("repodata").is_dir() {
                continue;
            }
            format!("file://{d}")
        };
        repos.push(format!("--repofrompath=xcat-{i},{url}"));
    }
    if repos.is_empty() {
        return fail(
            "check",
            format!(
                "linuximage.pkgdir '{}' has no repository (repodata/, BaseOS/repodata/ or a URL)",
                spec.li("pkgdir")
            ),
        );
    }
    let releasever = spec
        .osvers()
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .to_string();
    let base = |cmd: &mut Command| {
        cmd.arg(format!("--installroot={}", work.display()))
            .arg(format!("--releasever={releasever}"))
            .arg("--setopt=reposdir=/dev/null")
            .arg(format!("--setopt=cachedir={}", cache.display()))
            .arg("--setopt=keepcache=True")
            .arg("--nogpgcheck")
            .arg("-y")
            .args(&repos);
        for (k, v) in &pkgs.env {
            cmd.env(k, v);
        }
    };
    let _ = std::fs::create_dir_all(work);
    for (i, list) in pkgs.lists.iter().enumerate() {
        let mut list = list.clone();
        if i == 0
            && !pkgs
                .all()
                .any(|p| p == "kernel" || p.starts_with("kernel-"))
        {
            list.push("kernel".into());
        }
        let mut cmd = Command::new(dnf);
        base(&mut cmd);
        cmd.arg("install").args(&list);
        p.say(&format!(
            "genimage: installing {} packages with {dnf}",
            list.len()
        ));
        let res = run(p, "install", dnf, &mut cmd);
        keep_dnf_cache(work, cache);
        if let Err(mut e) = res {
            if let Some(pkg) = missing_package(&p.log_path) {
                e.msg = format!(
                    "package '{pkg}' was not found in {}: {}",
                    spec.li("pkgdir"),
                    e.msg
                );
            }
            return Err(e);
        }
    }
    for (verb, list) in [
        ("remove", &other.remove_before),
        ("install", &other.lists.concat()),
        ("remove", &other.remove_after),
    ] {
        if list.is_empty() {
            continue;
        }
        let mut cmd = Command::new(dnf);
        base(&mut cmd);
        let otherdir = spec.li("otherpkgdir");
        if !otherdir.is_empty() {
            cmd.arg(format!("--repofrompath=xcat-otherpkgs,file://{otherdir}"));
        }
        cmd.arg(verb).args(list);
        let res = run(p, "install", dnf, &mut cmd);
        keep_dnf_cache(work, cache);
        res?;
    }
    if !req.noupdate {
        let mut cmd = Command::new(dnf);
        base(&mut cmd);
        cmd.arg("update");
        let res = run(p, "install", dnf, &mut cmd);
        keep_dnf_cache(work, cache);
        res?;
    }
    Ok(())
}

/// dnf puts its cache under the install root; move it out, into the package cache, so the image
/// does not carry it and the next build finds it.
fn keep_dnf_cache(root: &Path, cache: &Path) {
    let inside = root.join(cache.strip_prefix("/").unwrap_or(cache));
    if !inside.is_dir() {
        return;
    }
    let _ = std::fs::create_dir_all(cache);
    let _ = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", inside.display()))
        .arg(cache)
        .status();
    let _ = std::fs::remove_dir_all(&inside);
    // Remove the now-empty parents dnf created for it, up to the root.
    let mut d = inside.parent().map(Path::to_path_buf);
    while let Some(p) = d {
        if p == root || std::fs::remove_dir(&p).is_err() {
            break;
        }
        d = p.parent().map(Path::to_path_buf);
    }
}

fn write(step: &'static str, path: &Path, text: &str, mode: u32) -> Result<(), StepError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(d) = path.parent() {
        if let Err(e) = std::fs::create_dir_all(d) {
            return fail(step, format!("cannot create {}: {e}", d.display()));
        }
    }
    // The image may hold a symlink there (for example /etc/resolv.conf): replace it, never follow it.
    if path.symlink_metadata().is_ok() {
        let _ = std::fs::remove_file(path);
    }
    std::fs::write(path, text)
        .and_then(|_| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)))
        .or_else(|e| fail(step, format!("cannot write {}: {e}", path.display())))
}

/// The shipped node-side files (`statelite/…`, `initrd/…`).
fn shipped(rel: &str) -> PathBuf {
    crate::boot::template::shipped_file(rel)
}

const POSTINIT_UNIT: &str = "[Unit]
Description=xCAT postscripts and status report (bootherd)
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart=/opt/xcat/xcatpostinit1
RemainAfterExit=yes
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
";

const POSTINIT: &str = "#!/bin/sh
# Runs at every boot of a stateless or statelite node (xcatpostinit1.service): the postscripts
# and postbootscripts from the master in XCAT= on the kernel command line, then reports booted
# (or failed) to it. Installed by bootherd's genimage.
exec /opt/xcat/xcatdsklspost
";

const NETWORK: &str =
    "# Written by bootherd's genimage: the boot NIC keeps the address the initramfs got by DHCP
# (the root may be on NFS) and renews it from the same server.
[Match]
Name=en* eth* ib*

[Network]
DHCP=ipv4
KeepConfiguration=yes
";

/// 3. The node-side pieces every image gets.
fn node_side(spec: &ImageSpec, root: &Path, p: &mut Progress) -> Result<(), StepError> {
    const S: &str = "node-side";
    p.say("genimage: installing the postscript runner and the statelite script");
    let copy = |rel: &str, to: &str| -> Result<(), StepError> {
        let src = shipped(rel);
        match std::fs::read_to_string(&src) {
            Ok(t) => write(S, &root.join(to.trim_start_matches('/')), &t, 0o755),
            Err(e) => fail(S, format!("cannot read {}: {e}", src.display())),
        }
    };
    copy("statelite/xcatdsklspost", "/opt/xcat/xcatdsklspost")?;
    copy("statelite/rc.statelite", "/etc/init.d/statelite")?;
    write(S, &root.join("opt/xcat/xcatpostinit1"), POSTINIT, 0o755)?;
    write(
        S,
        &root.join("etc/systemd/system/xcatpostinit1.service"),
        POSTINIT_UNIT,
        0o644,
    )?;
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    let _ = std::fs::create_dir_all(&wants);
    let link = wants.join("xcatpostinit1.service");
    let _ = std::fs::remove_file(&link);
    if let Err(e) = std::os::unix::fs::symlink("../xcatpostinit1.service", &link) {
        return fail(S, format!("cannot enable xcatpostinit1.service: {e}"));
    }
    if root.join("lib/systemd/systemd-networkd").exists()
        || root.join("usr/lib/systemd/systemd-networkd").exists()
    {
        write(
            S,
            &root.join("etc/systemd/network/80-bootherd.network"),
            NETWORK,
            0o644,
        )?;
        let w = root.join("etc/systemd/system/multi-user.target.wants");
        let l = w.join("systemd-networkd.service");
        if l.symlink_metadata().is_err() {
            let target = if root
                .join("lib/systemd/system/systemd-networkd.service")
                .exists()
            {
                "/lib/systemd/system/systemd-networkd.service"
            } else {
                "/usr/lib/systemd/system/systemd-networkd.service"
            };
            let _ = std::os::unix::fs::symlink(target, &l);
        }
    }
    // A node boots unattended: systemd-firstboot must not wait for answers on the console
    // (the image's machine-id is empty, so every boot is a first boot).
    let fb = root.join("etc/systemd/system/systemd-firstboot.service");
    let _ = std::fs::remove_file(&fb);
    let _ = std::os::unix::fs::symlink("/dev/null", &fb);
    for d in [".statelite", ".sllocal", "xcatpost", "opt/xcat"] {
        let _ = std::fs::create_dir_all(root.join(d));
    }
    write(
        S,
        &root.join("etc/fstab"),
        &format!(
            "# {}: the root is a RAM disk (stateless) or read-only NFS (statelite), set up by the initramfs\nproc /proc proc defaults 0 0\nsysfs /sys sysfs defaults 0 0\ndevpts /dev/pts devpts gid=5,mode=620 0 0\n",
            spec.name
        ),
        0o644,
    )?;
    // The node takes its name from DHCP.
    let _ = std::fs::remove_file(root.join("etc/hostname"));
    write(
        S,
        &root.join("opt/xcat/xcatinfo"),
        &format!("IMAGENAME='{}'\n", spec.name),
        0o644,
    )?;
    Ok(())
}

/// 4. The postinstall scripts.
fn postinstall(spec: &ImageSpec, root: &Path, p: &mut Progress) -> Result<(), StepError> {
    let entries: Vec<String> = spec
        .li("postinstall")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    for e in entries {
        let mut w = e.split_whitespace();
        let Some(script) = w.next() else { continue };
        let args: Vec<&str> = w.collect();
        if !Path::new(script).is_file() {
            return fail(
                "postinstall",
                format!("postinstall script {script} does not exist"),
            );
        }
        p.say(&format!("genimage: running postinstall {e}"));
        let mut cmd = Command::new(script);
        cmd.arg(root)
            .arg(spec.osvers())
            .arg(spec.arch())
            .arg(spec.profile())
            .args(&args)
            .env("IMG_NAME", &spec.name)
            .env("IMG_ARCH", spec.arch())
            .env("IMG_OSVER", spec.osvers())
            .env("IMG_PROFILE", spec.profile())
            .env("IMG_PKGLIST", spec.li("pkglist"))
            .env("IMG_PKGDIR", spec.li("pkgdir"))
            .env("IMG_OTHERPKGLIST", spec.li("otherpkglist"))
            .env("IMG_OTHERPKGDIR", spec.li("otherpkgdir"))
            .env("IMG_ROOTIMGDIR", root.parent().unwrap_or(root))
            .env("IMG_KERNELVERSION", spec.li("kernelver"));
        if let Err(mut err) = run(p, "postinstall", script, &mut cmd) {
            err.msg = format!("postinstall script {script}: {}", err.msg);
            return Err(err);
        }
    }
    Ok(())
}

/// 5. The kernel in the image: (version, path of vmlinuz).
fn kernel(root: &Path, want: Option<&str>) -> Result<(String, PathBuf), StepError> {
    let mods = root.join("lib/modules");
    let mut versions: Vec<String> = std::fs::read_dir(&mods)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().join("kernel").is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    versions.sort_by(|a, b| version_cmp(a, b));
    let kver = match want {
        Some(w) => match versions.iter().find(|v| v.as_str() == w) {
            Some(v) => v.clone(),
            None => {
                return fail(
                    "kernel",
                    format!("kernel {w} is not in the image (it has: {})", versions.join(", ")),
                )
            }
        },
        None => match versions.last() {
            Some(v) => v.clone(),
            None => {
                return fail(
                    "kernel",
                    format!("the image has no kernel modules under {}: add the kernel package to the pkglist", mods.display()),
                )
            }
        },
    };
    for c in [
        root.join(format!("boot/vmlinuz-{kver}")),
        root.join(format!("lib/modules/{kver}/vmlinuz")),
        root.join(format!("boot/vmlinux-{kver}")),
    ] {
        if c.is_file() {
            return Ok((kver, c));
        }
    }
    fail(
        "kernel",
        format!("the image has modules for {kver} but no /boot/vmlinuz-{kver}"),
    )
}

/// Orders kernel versions numerically (6.1.0-9 before 6.1.0-10).
fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<u64> {
        s.split(|c: char| !c.is_ascii_digit())
            .filter(|x| !x.is_empty())
            .filter_map(|x| x.parse().ok())
            .collect()
    };
    parts(a).cmp(&parts(b)).then(a.cmp(b))
}

/// A statically linked busybox: the image's, else this machine's.
fn static_busybox(root: &Path) -> Option<PathBuf> {
    let is_static = |p: &Path| {
        let Ok(b) = std::fs::read(p) else {
            return false;
        };
        // A dynamic ELF names its interpreter (/lib64/ld-linux…): a static one has no PT_INTERP.
        b.starts_with(b"\x7fELF")
            && !b
                .windows(11)
                .any(|w| w == b"/lib64/ld-l" || w == b"/lib/ld-lin")
    };
    [
        root.join("bin/busybox"),
        root.join("usr/bin/busybox"),
        PathBuf::from("/bin/busybox"),
        PathBuf::from("/usr/bin/busybox"),
    ]
    .into_iter()
    .find(|p| p.is_file() && is_static(p))
}

/// 6. The initramfs, from the shipped builder and init.
fn initrd(
    root: &Path,
    kver: &str,
    drivers: &[String],
    out: &Path,
    p: &mut Progress,
) -> Result<(), StepError> {
    let Some(bb) = static_busybox(root) else {
        return fail(
            "initrd",
            "no static busybox in the image or on this machine (Debian: busybox-static; genimage installs it into Debian/Ubuntu images)",
        );
    };
    p.say(&format!(
        "genimage: building the initramfs (kernel {kver}{})",
        if drivers.is_empty() {
            String::new()
        } else {
            format!(", with {}", drivers.join(" "))
        }
    ));
    let mut cmd = Command::new("sh");
    cmd.arg(shipped("initrd/mkinitramfs.sh"))
        .arg("-m")
        .arg(root.join("lib/modules").join(kver))
        .arg("-b")
        .arg(&bb)
        .arg("-i")
        .arg(shipped("statelite/initrd-init"))
        .arg("-o")
        .arg(out);
    for d in ["squashfs", "overlay", "loop"]
        .iter()
        .map(|s| s.to_string())
        .chain(drivers.iter().cloned())
    {
        cmd.arg("-a").arg(d);
    }
    // zstd-packed images need zstd in the initramfs (busybox cannot unpack them).
    for z in ["/usr/bin/zstd", "/bin/zstd"] {
        if Path::new(z).is_file() {
            cmd.arg("-x").arg(z);
            break;
        }
    }
    run(p, "initrd", "initrd/mkinitramfs.sh", &mut cmd).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites() {
        assert_eq!(debian_suite("debian12.5.0"), Some("bookworm"));
        assert_eq!(debian_suite("debian12"), Some("bookworm"));
        assert_eq!(debian_suite("ubuntu22.04.4"), Some("jammy"));
        assert_eq!(debian_suite("rhels9"), None);
    }

    #[test]
    fn apt_sources_from_urls_and_media() {
        let s = apt_sources(
            "http://mirror/debian bookworm main contrib,http://mirror/security",
            Some("bookworm"),
        )
        .expect("sources");
        assert_eq!(s[0].suite, "bookworm");
        assert_eq!(s[0].components, vec!["main", "contrib"]);
        assert_eq!(s[1].uri, "http://mirror/security");
        assert_eq!(s[1].suite, "bookworm");
        let d = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(d.path().join("dists/bookworm")).expect("mkdir");
        let s = apt_sources(&d.path().display().to_string(), None).expect("media");
        assert_eq!(s[0].uri, format!("file://{}", d.path().display()));
        assert_eq!(s[0].suite, "bookworm");
        let e = apt_sources("/nonexistent", None).expect_err("no repo");
        assert!(e.contains("not a Debian repository"));
        assert!(apt_sources("", None).is_err());
    }

    #[test]
    fn apt_download_sizes() {
        assert_eq!(
            apt_get_size("Get:57 http://deb.debian.org/debian bookworm/main amd64 systemd amd64 252.39-1~deb12u1 [3,032 kB]"),
            Some(3_032_000.0)
        );
        assert_eq!(
            apt_get_size("Get:1 http://x bookworm InRelease [151 kB]"),
            Some(151_000.0)
        );
        assert_eq!(apt_get_size("Hit:1 http://x bookworm InRelease"), None);
        assert_eq!(apt_get_size("Get:2 http://x [weird]"), None);
    }

    #[test]
    fn kernel_versions_sort_numerically() {
        let mut v = vec!["6.1.0-10-amd64", "6.1.0-9-amd64", "5.10.0-30-amd64"];
        v.sort_by(|a, b| version_cmp(a, b));
        assert_eq!(
            v,
            vec!["5.10.0-30-amd64", "6.1.0-9-amd64", "6.1.0-10-amd64"]
        );
    }
}
