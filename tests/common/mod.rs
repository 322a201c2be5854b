//! Shared test harness: the real `bootherd` binary against a throwaway store.
#![allow(dead_code)]

pub mod ipmisim;
pub mod pg;
pub mod vm;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod snmpsim;

/// A scratch directory with its own table store.
pub struct Bh {
    pub dir: tempfile::TempDir,
    pub db: String,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_bootherd")
}

/// Set by tests/run.sh's PostgreSQL pass: a server URL without a database
/// (`postgres://user@host:port`); every [`Bh`] then gets a database of its own there.
pub const TEST_PG: &str = "BOOTHERD_TEST_PG";

impl Bh {
    pub fn new() -> Bh {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = match std::env::var(TEST_PG) {
            Ok(base) if !base.is_empty() => {
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                format!(
                    "{}/bh_{}_{n}",
                    base.trim_end_matches('/'),
                    std::process::id()
                )
            }
            _ => format!("sqlite:{}", dir.path().join("bootherd.db").display()),
        };
        Bh { dir, db }
    }

    /// Whether this run's stores are in PostgreSQL (tests/run.sh's second pass).
    pub fn on_postgres(&self) -> bool {
        self.db.starts_with("postgres")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .env("BOOTHERD_DB", &self.db)
            // The CA beside the test's store, whatever the backend (a PostgreSQL store would
            // otherwise use /etc/bootherd/pki on this machine).
            .env("BOOTHERD_PKI", self.dir.path().join("pki"))
            .env_remove("RUST_LOG");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run bootherd")
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "bootherd {:?} failed ({}):\nstdout: {}\nstderr: {}",
            args,
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).expect("utf8 stdout")
    }

    /// Runs and expects failure; returns stderr.
    pub fn fail(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "bootherd {:?} should have failed:\nstdout: {}\nstderr: {}",
            args,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stderr).expect("utf8 stderr")
    }

    /// Writes a file in the scratch directory and returns its path as a string.
    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write file");
        p.display().to_string()
    }

    /// Every table dumped, for "the store is unchanged" checks (auditlog excluded: every
    /// command, this one too, adds its row there; appliances too: a running daemon beats there).
    pub fn snapshot(&self) -> String {
        let tables = self.ok(&["tabdump"]);
        let mut all = String::new();
        for t in tables
            .lines()
            .filter(|t| *t != "auditlog" && *t != "appliances")
        {
            all.push_str(&self.ok(&["tabdump", t]));
        }
        all
    }
}

pub fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

/// Runs a command and panics with its stderr if it fails.
pub fn sh(args: &[&str]) -> String {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run command");
    assert!(
        o.status.success(),
        "{:?} failed: {}",
        args,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// A network namespace, deleted (with every process in it killed) when dropped.
pub struct Netns(pub String);

impl Netns {
    pub fn new(tag: &str) -> Netns {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test creates network namespaces and must run as root (tests/run.sh does)"
        );
        let name = format!("bh{tag}{}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        // No IPv6 chatter (router solicitations, DAD) in test namespaces.
        let _ = Command::new("ip")
            .args([
                "netns",
                "exec",
                &name,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
            ])
            .status();
        Netns(name)
    }

    /// `ip netns exec <ns> args…`, must succeed.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "netns", "exec", &self.0];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program]);
        c
    }

    fn kill_all(&self) {
        if let Ok(o) = Command::new("ip").args(["netns", "pids", &self.0]).output() {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                if let Ok(p) = pid.parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.kill_all();
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A server namespace and a client namespace joined by a veth pair (`bhs0` ↔ `bhc0`).
pub struct Pair {
    pub srv: Netns,
    pub cli: Netns,
}

impl Pair {
    /// `srv_addr` like "10.99.10.1/24"; the client end has no address.
    pub fn new(tag: &str, srv_addr: &str) -> Pair {
        let srv = Netns::new(&format!("{tag}s"));
        let cli = Netns::new(&format!("{tag}c"));
        sh(&[
            "ip", "-n", &srv.0, "link", "add", "bhs0", "type", "veth", "peer", "name", "bhc0",
            "netns", &cli.0,
        ]);
        sh(&["ip", "-n", &srv.0, "addr", "add", srv_addr, "dev", "bhs0"]);
        sh(&["ip", "-n", &srv.0, "link", "set", "bhs0", "up"]);
        sh(&["ip", "-n", &cli.0, "link", "set", "bhc0", "up"]);
        Pair { srv, cli }
    }

    /// Sets the client interface's MAC (link briefly down).
    pub fn client_mac(&self, mac: &str) {
        sh(&["ip", "-n", &self.cli.0, "link", "set", "bhc0", "down"]);
        sh(&[
            "ip",
            "-n",
            &self.cli.0,
            "link",
            "set",
            "bhc0",
            "address",
            mac,
        ]);
        sh(&["ip", "-n", &self.cli.0, "link", "set", "bhc0", "up"]);
    }
}

/// A running `bootherd serve` whose stderr lines can be waited for.
pub struct Daemon {
    pub child: std::process::Child,
    pub lines: std::sync::mpsc::Receiver<String>,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts `bootherd serve` inside `ns` on `bh`'s store and waits for "bootherd ready".
    pub fn start(bh: &Bh, ns: &Netns, extra: &[&str]) -> Daemon {
        Daemon::start_logging(bh, ns, extra, "info,bootherd=debug")
    }

    /// [`Daemon::start`] with another `RUST_LOG` (floods: debug lines would be the bottleneck).
    pub fn start_logging(bh: &Bh, ns: &Netns, extra: &[&str], rust_log: &str) -> Daemon {
        let mut c = ns.command(bin());
        c.arg("serve")
            .args(extra)
            .env("BOOTHERD_DB", &bh.db)
            .env("BOOTHERD_PKI", bh.dir.path().join("pki"))
            .env("RUST_LOG", rust_log);
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().expect("start bootherd serve");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let err = child.stderr.take().expect("stderr");
        let keep = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if let Ok(mut k) = keep.lock() {
                    k.push(l.clone());
                }
                let _ = tx.send(l);
            }
        });
        let d = Daemon {
            child,
            lines: rx,
            log,
        };
        assert!(
            d.wait_for("bootherd ready", 20),
            "bootherd serve did not become ready:\n{}",
            d.dump()
        );
        d
    }

    /// Waits up to `secs` for a log line containing `needle`.
    pub fn wait_for(&self, needle: &str, secs: u64) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        if self
            .log
            .lock()
            .map(|l| l.iter().any(|x| x.contains(needle)))
            .unwrap_or(false)
        {
            return true;
        }
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }

    /// Whether the process is still running.
    pub fn child_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn dump(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        self.child.wait().expect("wait")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs busybox udhcpc once in the client namespace; returns the environment its script saw on `bound`.
pub fn udhcpc(
    pair: &Pair,
    bh: &Bh,
    extra: &[&str],
) -> Option<std::collections::HashMap<String, String>> {
    let env = bh.path(&format!("udhcpc.{}.env", std::process::id()));
    let _ = std::fs::remove_file(&env);
    let script = bh.file(
        "udhcpc.sh",
        &format!(
            "#!/bin/sh\n[ \"$1\" = bound ] && env > {}\nexit 0\n",
            env.display()
        ),
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let mut args = vec![
        "timeout", "20", "busybox", "udhcpc", "-i", "bhc0", "-f", "-q", "-n", "-t", "4", "-T", "2",
        "-A", "1", "-s", &script, "-O", "67",
    ];
    args.extend_from_slice(extra);
    let o = pair
        .cli
        .command(args[0])
        .args(&args[1..])
        .output()
        .expect("run udhcpc");
    let text = std::fs::read_to_string(&env).ok()?;
    let _ = o;
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// Each peer, with the Debian package that provides it: a missing one fails the test, loudly.
pub fn need(programs: &[(&str, &str)]) {
    for (program, package) in programs {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
            .unwrap_or(false);
        assert!(
            found,
            "{program} is not installed: apt-get install {package} (tests/run.sh does)"
        );
    }
}

/// A log line without ANSI colour sequences (ESC [ … letter).
pub fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub fn sha256(p: &Path) -> String {
    let out = sh(&["sha256sum", &p.display().to_string()]);
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Runs `f` on a thread that has joined network namespace `ns` (sockets it opens live there).
pub fn in_netns<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/var/run/netns/{}", ns.0);
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(&path).expect("open netns");
            use std::os::fd::AsRawFd;
            // SAFETY: setns on a descriptor we own; it affects only this thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("thread in netns")
    })
}

/// Resident memory of a process in KiB (VmRSS from /proc/<pid>/status).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The Debian package of this build, made by `tools/build-deb.sh --dev` into `dir`: the debug
/// binary the tests already built, packaged as the release one is (same files, unit, scripts),
/// without a second, optimised build. Returns the .deb's path.
pub fn build_test_deb(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create the .deb directory");
    let out = Command::new("bash")
        .arg(root.join("tools/build-deb.sh"))
        .arg("--dev")
        .arg("-o")
        .arg(format!("{}/", dir.display()))
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run tools/build-deb.sh");
    assert!(
        out.status.success(),
        "tools/build-deb.sh --dev failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_dir(dir)
        .expect("read the .deb directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .unwrap_or_else(|| panic!("tools/build-deb.sh --dev made no .deb in {}", dir.display()))
}
