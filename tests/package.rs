//! The Debian package on a fresh Debian 12: `tools/build-deb.sh` builds the .deb (cargo-deb), apt
//! installs it into a fresh bookworm root (mmdebstrap, minbase + systemd; the tarball and the
//! downloaded .debs are cached under target/pkg-test), and the root is booted under systemd with
//! `systemd-nspawn --boot` on a private network. Then, as a user would check: the unit is active
//! with the hardened capability set, `nodeadd`/`nodels` work from the PATH, the boot loaders from
//! Debian's packages are in /tftpboot and served over TFTP, the shipped node-side scripts over
//! HTTP, and the service survives a restart.
//!
//! nspawn runs without a system bus here (`--register=no --keep-unit`) and in a mount namespace of
//! its own with a tmpfs on /run/systemd/nspawn (systemd refuses to clean its propagation directory
//! on a disk file system), so nothing on the host is changed.

mod common;
use common::need;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SUITE: &str = "bookworm";

fn cache() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pkg-test");
    std::fs::create_dir_all(d.join("archives")).expect("create target/pkg-test");
    d
}

fn run(what: &str, cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The fresh Debian 12 root: minbase + systemd (what a minimal server install has), apt's lists
/// kept so that `apt install ./bootherd.deb` resolves the dependencies. Made once, cached.
fn base_tarball() -> PathBuf {
    let tar = cache().join(format!("{SUITE}-systemd.tar"));
    if !tar.exists() {
        let part = tar.with_extension("tar.part");
        run(
            "mmdebstrap",
            Command::new("mmdebstrap")
                .args([
                    "--variant=minbase",
                    "--include=systemd,systemd-sysv,dbus",
                    "--skip=cleanup/apt/lists",
                    "--dpkgopt=force-unsafe-io",
                    "--format=tar",
                    SUITE,
                ])
                .arg(&part),
        );
        std::fs::rename(&part, &tar).expect("rename the root tarball");
    }
    tar
}

/// systemd-nspawn in a private mount namespace with a tmpfs on /run/systemd/nspawn.
fn nspawn(root: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("unshare");
    c.args([
        "-m",
        "sh",
        "-c",
        "mkdir -p /run/systemd/nspawn && mount -t tmpfs tmpfs /run/systemd/nspawn && exec systemd-nspawn \"$@\"",
        "nspawn",
        "-q",
        "--register=no",
        "--keep-unit",
        "-D",
    ])
    .arg(root)
    .args(args);
    c
}

/// The booted container; halted (then killed) and its root removed on drop.
struct Booted {
    child: Child,
    init: u32,
    root: PathBuf,
}

impl Booted {
    fn boot(root: &Path) -> Booted {
        let log = std::fs::File::create(root.with_extension("console")).expect("console log");
        let child = nspawn(root, &["--boot", "--private-network", "--console=pipe"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("systemd-nspawn");
        let start = Instant::now();
        let nspawn_pid = child.id();
        let mut b = Booted {
            child,
            init: 0,
            root: root.to_path_buf(),
        };
        // The container's init is the process whose parent is nspawn (exec'd by sh).
        while b.init == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the container's init did not start; console:\n{}",
                b.console()
            );
            if let Some(pid) = children(nspawn_pid).into_iter().next() {
                b.init = pid;
            } else {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        b
    }

    fn console(&self) -> String {
        std::fs::read_to_string(self.root.with_extension("console")).unwrap_or_default()
    }

    /// A command inside the container (all its namespaces), as root at a shell would run it.
    fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("nsenter")
            .arg("-t")
            .arg(self.init.to_string())
            .args([
                "-a",
                "env",
                "-i",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG=C.UTF-8",
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(
            out.status.success(),
            "in the container, {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A host program in the container's network namespace only (a peer on its loopback).
    fn net(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.init.to_string())
            .arg("-n")
            .arg(program);
        c
    }

    fn journal(&self) -> String {
        let out = self.exec(&["journalctl", "-u", "bootherd", "--no-pager", "-n", "60"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Booted {
    fn drop(&mut self) {
        // SIGTERM makes nspawn halt the container cleanly; SIGKILL if it takes too long.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                _ if start.elapsed() > Duration::from_secs(20) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = std::fs::remove_file(self.root.with_extension("console"));
    }
}

fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let after = s.rsplit_once(')')?.1.to_string();
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// The capability numbers set in a /proc status mask (CapEff: 0000000000003403 …).
fn caps(status: &str, field: &str) -> Vec<u32> {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"))
        .trim();
    let mask = u64::from_str_radix(hex, 16).expect("capability mask");
    (0..64).filter(|b| mask & (1u64 << b) != 0).collect()
}

// linux/capability.h
const CAP_CHOWN: u32 = 0;
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_FOWNER: u32 = 3;
const CAP_FSETID: u32 = 4;
const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;

#[test]
fn deb_installs_and_runs_under_systemd_on_debian12() {
    need(&[
        ("mmdebstrap", "mmdebstrap"),
        ("systemd-nspawn", "systemd-container"),
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("tftp", "tftp-hpa"),
        ("curl", "curl"),
        ("dpkg-deb", "dpkg"),
    ]);
    let t0 = Instant::now();
    let deb = common::build_test_deb(&cache().join("deb"));
    let built = t0.elapsed();

    // The package's contents, as dpkg sees them.
    let listing = run("dpkg-deb -c", Command::new("dpkg-deb").arg("-c").arg(&deb));
    for want in [
        "./usr/bin/bootherd",
        "./usr/lib/systemd/system/bootherd.service",
        "./usr/share/bootherd/netboot-templates/boot/pxelinux.tmpl",
        "./usr/share/bootherd/statelite/xcatdsklspost",
        "./usr/share/bootherd/statelite/rc.statelite",
        "./usr/share/bootherd/initrd/mknb.sh",
        "./usr/share/bootherd/boot-assets/install.sh",
        "./usr/share/man/man1/bootherd.1.gz",
        "./usr/share/man/man1/bootherd-serve.1.gz",
        "./etc/default/bootherd",
    ] {
        assert!(
            listing.lines().any(|l| l.contains(want)),
            "{want} is not in the package:\n{listing}"
        );
    }
    let fields = run(
        "dpkg-deb -f",
        Command::new("dpkg-deb")
            .arg("-f")
            .arg(&deb)
            .args(["Depends", "Recommends"]),
    );
    for dep in ["pxelinux", "syslinux-common", "ipxe", "libc6"] {
        assert!(fields.contains(dep), "Depends lacks {dep}: {fields}");
    }
    for rec in ["grub-efi-amd64-signed", "shim-signed"] {
        assert!(fields.contains(rec), "Recommends lacks {rec}: {fields}");
    }

    // A fresh root; the cached .debs go in so that only new versions are downloaded.
    let tar = base_tarball();
    let root = cache().join(format!("root-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("root dir");
    let mut guard = RootGuard(Some(root.clone()));
    run(
        "tar -x",
        Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-xf")
            .arg(&tar),
    );
    let archives = root.join("var/cache/apt/archives");
    for e in std::fs::read_dir(cache().join("archives"))
        .expect("archives")
        .flatten()
    {
        let _ = std::fs::copy(e.path(), archives.join(e.file_name()));
    }
    let deb_name = deb
        .file_name()
        .expect("deb name")
        .to_string_lossy()
        .into_owned();
    std::fs::copy(&deb, root.join("root").join(&deb_name)).expect("copy the .deb");
    std::fs::write(root.join("etc/hostname"), "mgmt\n").expect("hostname");
    std::fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf")).ok();

    // What the README tells a user: apt install ./bootherd_*.deb (apt fetches the dependencies).
    let t1 = Instant::now();
    let apt = |update: bool| {
        let script = format!(
            "{}DEBIAN_FRONTEND=noninteractive apt-get install -y -q /root/{deb_name}",
            if update { "apt-get update -q && " } else { "" }
        );
        nspawn(&root, &["--pipe", "sh", "-c", &script])
            .stdin(Stdio::null())
            .output()
            .expect("apt-get in the root")
    };
    let mut out = apt(false);
    if !out.status.success() {
        // The cached lists name versions the mirror no longer has: refresh them once.
        out = apt(true);
    }
    let apt_log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "apt install ./bootherd.deb failed:\n{apt_log}"
    );
    let installed = t1.elapsed();
    for e in std::fs::read_dir(&archives).expect("archives").flatten() {
        if e.file_name().to_string_lossy().ends_with(".deb") {
            let _ = std::fs::copy(e.path(), cache().join("archives").join(e.file_name()));
        }
    }

    // Every command on the PATH is the binary; every one has its man page.
    for name in bootherd::cli::COMMANDS {
        let link = root.join("usr/bin").join(name);
        let target = std::fs::read_link(&link)
            .unwrap_or_else(|e| panic!("/usr/bin/{name} is not a link: {e}"));
        assert_eq!(target, Path::new("bootherd"), "/usr/bin/{name}");
        assert!(
            root.join(format!("usr/share/man/man1/{name}.1.gz"))
                .is_file(),
            "no man page for {name}"
        );
    }
    // The loaders nodes fetch, copied by the postinst from Debian's packages.
    for (tftp, pkg) in [
        ("pxelinux.0", "usr/lib/PXELINUX/pxelinux.0"),
        ("ldlinux.c32", "usr/lib/syslinux/modules/bios/ldlinux.c32"),
        ("xcat/xnba.kpxe", "usr/lib/ipxe/undionly.kpxe"),
        ("xcat/xnba.efi", "usr/lib/ipxe/ipxe.efi"),
    ] {
        let a = std::fs::read(root.join("tftpboot").join(tftp))
            .unwrap_or_else(|e| panic!("/tftpboot/{tftp}: {e}\napt said:\n{apt_log}"));
        let b = std::fs::read(root.join(pkg)).expect(pkg);
        assert!(a == b, "/tftpboot/{tftp} differs from /{pkg}");
    }

    // Boot it.
    let t2 = Instant::now();
    let c = Booted::boot(&root);
    guard.0 = None; // the container removes its root when it is dropped
                    // Until systemd answers on its socket, systemctl cannot connect: ask again.
    let state = loop {
        let out = c.exec(&["systemctl", "is-system-running", "--wait"]);
        let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !state.is_empty() && state != "offline" {
            break state;
        }
        assert!(
            t2.elapsed() < Duration::from_secs(60),
            "systemd did not come up in 60 s; console:\n{}",
            c.console()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let failed = c.ok(&["systemctl", "--failed", "--no-legend", "--plain"]);
    assert_eq!(
        state,
        "running",
        "the system is {state}; failed units:\n{failed}\nbootherd's journal:\n{}",
        c.journal()
    );
    let booted = t2.elapsed();
    assert_eq!(
        c.ok(&["systemctl", "is-active", "bootherd"]).trim(),
        "active",
        "{}",
        c.journal()
    );
    assert_eq!(
        c.ok(&["systemctl", "is-enabled", "bootherd"]).trim(),
        "enabled"
    );

    // The daemon runs with the unit's capabilities, not root's full set.
    let main_pid = c.ok(&["systemctl", "show", "-P", "MainPID", "bootherd"]);
    let status = c.ok(&["cat", &format!("/proc/{}/status", main_pid.trim())]);
    assert_eq!(
        caps(&status, "CapBnd"),
        vec![
            CAP_CHOWN,
            CAP_DAC_OVERRIDE,
            CAP_DAC_READ_SEARCH,
            CAP_FOWNER,
            CAP_FSETID,
            CAP_NET_BIND_SERVICE,
            CAP_NET_ADMIN,
            CAP_NET_RAW
        ],
        "bounding set:\n{status}"
    );
    let eff = caps(&status, "CapEff");
    for cap in [
        CAP_NET_BIND_SERVICE,
        CAP_NET_ADMIN,
        CAP_NET_RAW,
        CAP_DAC_READ_SEARCH,
    ] {
        assert!(
            eff.contains(&cap),
            "capability {cap} not effective:\n{status}"
        );
    }
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    // ProtectSystem=strict: the whole tree is read-only for the service but for the paths it
    // writes (the store, the install tree, the TFTP root, the CA).
    let mounts = c.ok(&["cat", &format!("/proc/{}/mountinfo", main_pid.trim())]);
    let opts = |point: &str| -> String {
        mounts
            .lines()
            .rfind(|l| l.split_whitespace().nth(4) == Some(point))
            .and_then(|l| l.split_whitespace().nth(5))
            .unwrap_or_else(|| panic!("no mount at {point} for the service:\n{mounts}"))
            .to_string()
    };
    assert!(opts("/").starts_with("ro"), "/ is writable for the service");
    for rw in [
        "/var/lib/bootherd",
        "/install",
        "/tftpboot",
        "/etc/bootherd",
    ] {
        assert!(
            opts(rw).starts_with("rw"),
            "{rw} is read-only for the service"
        );
    }

    // xCAT's commands, from the PATH, on the service's store.
    c.ok(&[
        "nodeadd",
        "n1",
        "groups=compute,all",
        "mac.mac=52:54:00:12:34:56",
    ]);
    assert_eq!(c.ok(&["nodels"]).trim(), "n1");
    assert_eq!(
        c.ok(&["nodels", "compute", "mac.mac"]).trim(),
        "n1: 52:54:00:12:34:56"
    );
    let man = c.ok(&[
        "sh",
        "-c",
        "zcat /usr/share/man/man1/nodels.1.gz | head -40",
    ]);
    assert!(man.contains(".TH nodels 1"), "{man}");

    // The services answer on the appliance: TFTP serves Debian's pxelinux.0, HTTP the shipped
    // node-side runner.
    let got = c.root.with_extension("pxelinux.0");
    let out = c
        .net("tftp")
        .args(["127.0.0.1", "-m", "binary", "-c", "get", "pxelinux.0"])
        .arg(&got)
        .output()
        .expect("tftp");
    assert!(
        out.status.success() && got.is_file(),
        "tftp get pxelinux.0: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        c.journal()
    );
    let fetched = std::fs::read(&got).expect("fetched pxelinux.0");
    let _ = std::fs::remove_file(&got);
    c.ok(&["rm", &format!("/root/{deb_name}")]);
    assert!(
        fetched == std::fs::read(c.root.join("usr/lib/PXELINUX/pxelinux.0")).expect("pxelinux"),
        "TFTP served something else as pxelinux.0"
    );
    let body = c
        .net("curl")
        .args(["-fsS", "http://127.0.0.1/install/postscripts/xcatdsklspost"])
        .output()
        .expect("curl");
    assert!(
        body.status.success(),
        "{}",
        String::from_utf8_lossy(&body.stderr)
    );
    let shipped =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("statelite/xcatdsklspost"))
            .expect("statelite/xcatdsklspost");
    assert!(body.stdout == shipped, "HTTP served another xcatdsklspost");

    // A restart keeps it healthy, and the store.
    c.ok(&["systemctl", "restart", "bootherd"]);
    assert_eq!(
        c.ok(&["systemctl", "is-active", "bootherd"]).trim(),
        "active"
    );
    assert_eq!(c.ok(&["nodels"]).trim(), "n1");

    container_image_checks(&c, &listing, &deb);

    eprintln!(
        "package: {} ({} bytes); build {:.1?}, apt install {:.1?}, boot to running {:.1?}, all {:.1?}",
        deb.display(),
        std::fs::metadata(&deb).map(|m| m.len()).unwrap_or(0),
        built,
        installed,
        booted,
        t0.elapsed()
    );
    drop(c);
    assert!(!root.exists(), "the root was not removed");
}

/// The ports a process set listens on, from `ss` in the container's network namespace:
/// "67/udp", "80/tcp", …
fn listening(c: &Booted) -> std::collections::BTreeSet<String> {
    let out = c.net("ss").args(["-H", "-lntu"]).output().expect("ss");
    assert!(
        out.status.success(),
        "ss: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let port = f.get(4)?.rsplit_once(':')?.1;
            Some(format!("{port}/{}", f.first()?))
        })
        .collect()
}

/// No container engine runs on this machine (docker has no daemon, podman cannot run
/// containers in this sandbox): the image is checked structurally — what the Containerfile
/// copies exists and is in the build context, its entrypoint and health check are files of the
/// package, its EXPOSE list is what the installed appliance really listens on — and the
/// entrypoint and health check are run in the installed Debian 12 root the Containerfile's
/// `apt-get install` makes (the same root as above).
fn container_image_checks(c: &Booted, listing: &str, deb: &Path) {
    eprintln!(
        "\n*** container image: NOT BUILT NOR RUN — no container engine on this machine \
         (docker has no daemon; see README). Structural check of Containerfile instead, and its \
         entrypoint and HEALTHCHECK run in the installed Debian 12 root. ***\n"
    );
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cf = std::fs::read_to_string(src.join("Containerfile")).expect("Containerfile");
    let ignore = std::fs::read_to_string(src.join(".dockerignore")).expect(".dockerignore");
    let instr = |name: &str| -> Vec<String> {
        let joined = cf.replace("\\\n", " ");
        joined
            .lines()
            .filter_map(|l| {
                l.trim()
                    .strip_prefix(&format!("{name} "))
                    .map(str::to_string)
            })
            .collect()
    };
    // Every COPY source matches a file of the build context, and the context keeps it.
    for copy in instr("COPY") {
        let srcs: Vec<&str> = copy.split_whitespace().collect();
        for s in &srcs[..srcs.len() - 1] {
            let (dir, pat) = s.rsplit_once('/').unwrap_or((".", s));
            let re = regex::Regex::new(&format!("^{}$", regex::escape(pat).replace("\\*", ".*")))
                .expect("glob");
            // The package: cargo-deb's default output directory, where tools/build-deb.sh
            // leaves it; this test built its own elsewhere (a debug build, not to replace a
            // release package there), so the pattern is checked against that one's name.
            let dir_path = if dir == "target/debian" {
                deb.parent().expect("the .deb's directory").to_path_buf()
            } else {
                src.join(dir)
            };
            let n = std::fs::read_dir(dir_path)
                .map(|d| {
                    d.flatten()
                        .filter(|e| re.is_match(&e.file_name().to_string_lossy()))
                        .count()
                })
                .unwrap_or(0);
            assert!(n > 0, "COPY {s}: no such file in the build context");
            assert!(
                ignore.lines().any(|l| l.trim() == format!("!{s}")),
                "COPY {s} is excluded by .dockerignore"
            );
        }
    }
    // The entrypoint and the health check are the package's files.
    let exec_path = |v: &str| -> String {
        v.split('"')
            .nth(1)
            .unwrap_or_else(|| panic!("not exec form: {v}"))
            .to_string()
    };
    let entry = exec_path(&instr("ENTRYPOINT")[0]);
    let health = exec_path(
        instr("HEALTHCHECK")[0]
            .split("CMD")
            .nth(1)
            .expect("HEALTHCHECK CMD"),
    );
    for p in [&entry, &health] {
        assert!(
            listing.lines().any(|l| l.contains(&format!(".{p}"))),
            "{p} is not in the package"
        );
    }
    let volumes = instr("VOLUME").join(" ");
    for v in ["/var/lib/bootherd", "/install", "/tftpboot"] {
        assert!(volumes.contains(&format!("\"{v}\"")), "VOLUME lacks {v}");
    }
    // EXPOSE = what the appliance listens on (the unit's daemon, default settings).
    let exposed: std::collections::BTreeSet<String> = instr("EXPOSE")
        .join(" ")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut listens = listening(c);
    // DHCP binds only on the interfaces in site.dhcpinterfaces, and this root names none.
    assert!(
        !listens.contains("67/udp"),
        "DHCP listens with no dhcpinterfaces"
    );
    listens.insert("67/udp".into());
    assert_eq!(
        exposed, listens,
        "EXPOSE differs from the ports the appliance listens on"
    );

    // The health check: healthy while the service runs, unhealthy once stopped.
    c.ok(&[&health]);
    c.ok(&["systemctl", "stop", "bootherd"]);
    assert!(
        !c.exec(&[&health]).status.success(),
        "healthy with the daemon stopped"
    );
    // The entrypoint on an empty TFTP volume: puts the loaders back, serves, becomes healthy.
    c.ok(&["sh", "-c", "rm -rf /tftpboot/* /tftpboot/.[!.]*"]);
    c.ok(&[
        "systemd-run",
        "--unit=bh-entrypoint",
        "--setenv=BOOTHERD_DB=sqlite:/var/lib/bootherd/bootherd.db",
        &entry,
    ]);
    let start = Instant::now();
    while !c.exec(&[&health]).status.success() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the entrypoint did not become healthy:\n{}",
            c.ok(&["journalctl", "-u", "bh-entrypoint", "--no-pager"])
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        c.root.join("tftpboot/pxelinux.0").is_file(),
        "the entrypoint put no pxelinux.0"
    );
    assert_eq!(c.ok(&["nodels"]).trim(), "n1");
    c.ok(&["systemctl", "stop", "bh-entrypoint"]);
}

/// Removes the unpacked root if the test fails before booting it.
struct RootGuard(Option<PathBuf>);

impl Drop for RootGuard {
    fn drop(&mut self) {
        if let Some(r) = &self.0 {
            let _ = std::fs::remove_dir_all(r);
        }
    }
}
