//! `bootherd serve` follows what admin commands write, from another process.

mod common;
use common::Bh;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Reads the daemon's stderr lines on a thread so the test can wait for one with a deadline.
fn lines(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for(
    rx: &mpsc::Receiver<String>,
    needle: &str,
    within: Duration,
) -> Option<(String, Duration)> {
    let start = Instant::now();
    while let Some(left) = within.checked_sub(start.elapsed()) {
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return Some((l, start.elapsed())),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn serve_sees_a_cli_change_within_a_second_and_stops_on_sigterm() {
    let bh = Bh::new();
    bh.ok(&["nodeadd", "n1", "groups=all"]);
    let mut child = bh
        .cmd(&[
            "serve",
            "--no-dhcp",
            "--no-tftp",
            "--no-http",
            "--no-status-port",
            "--no-xcatd",
        ]) // the machine's own namespace: serve nothing there
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let rx = lines(&mut child);
    let ready = wait_for(&rx, "bootherd ready", Duration::from_secs(20));
    assert!(ready.is_some(), "serve did not become ready");

    bh.ok(&["nodech", "n1", "nodetype.os=rhels9"]);
    let seen = wait_for(&rx, "store change", Duration::from_secs(1));
    let (line, _) = seen.expect("serve saw no change within a second of nodech");
    assert!(
        line.contains("nodetype") && line.contains("node=n1"),
        "{line}"
    );

    // SIGTERM: a clean, prompt exit.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("send SIGTERM");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "serve did not stop within 5 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "serve exited with {status}");
}

#[test]
fn serve_reports_a_bad_store_and_exits_nonzero() {
    let bh = Bh::new();
    let o = bh
        .cmd(&[
            "serve",
            "--no-dhcp",
            "--no-tftp",
            "--no-status-port",
            "--no-xcatd",
            "--no-http",
            "--db",
            "sqlite:/proc/no/such/dir/x.db",
        ])
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("/proc/no/such/dir"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A new store names xCAT's default postscripts (the xcatdefaults row, as xcatconfig makes it),
/// and `bootherd serve` puts the shipped ones into <installdir>/postscripts where the site has
/// none of that name, with root's public keys for remoteshell; a site's own script is kept.
#[test]
fn serve_installs_the_default_postscripts_a_new_store_names() {
    let bh = Bh::new();
    let install = bh.path("install");
    std::fs::create_dir_all(install.join("postscripts")).expect("mkdir");
    std::fs::write(
        install.join("postscripts/syslog"),
        "#!/bin/sh\n# site's own\n",
    )
    .expect("own");
    bh.ok(&[
        "chtab",
        "key=installdir",
        &format!("site.value={}", install.display()),
    ]);
    assert!(bh
        .ok(&["tabdump", "postscripts"])
        .contains("\"xcatdefaults\",\"syslog,remoteshell,syncfiles\",\"otherpkgs\","));
    let home = bh.path("home");
    std::fs::create_dir_all(home.join(".ssh")).expect("mkdir");
    std::fs::write(
        home.join(".ssh/id_ed25519.pub"),
        "ssh-ed25519 AAAAtest root@mn\n",
    )
    .expect("key");
    let mut child = bh
        .cmd(&[
            "serve",
            "--no-dhcp",
            "--no-tftp",
            "--no-http",
            "--no-status-port",
            "--no-xcatd",
        ])
        .env("HOME", &home)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let rx = lines(&mut child);
    let ready = wait_for(&rx, "bootherd ready", Duration::from_secs(20));
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready.is_some(), "serve did not become ready");
    let ps = install.join("postscripts");
    for s in ["remoteshell", "syncfiles", "otherpkgs"] {
        let text = std::fs::read_to_string(ps.join(s)).unwrap_or_default();
        assert!(text.starts_with("#!/bin/sh\n"), "{s} not installed");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(ps.join(s)).expect("stat").permissions(),
        );
        assert_eq!(mode & 0o755, 0o755, "{s} executable");
    }
    assert_eq!(
        std::fs::read_to_string(ps.join("syslog")).expect("syslog"),
        "#!/bin/sh\n# site's own\n",
        "the site's own script is kept"
    );
    assert_eq!(
        std::fs::read_to_string(ps.join("_ssh/authorized_keys")).expect("keys"),
        "ssh-ed25519 AAAAtest root@mn\n"
    );
}
