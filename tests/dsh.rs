//! xdsh, xdcp, psh, pscp, prsync, pping, xdshbak and makeknownhosts against real OpenSSH servers,
//! one per node namespace (each node also has its own private /srv-like directory, so copies land
//! on the node they were meant for), plus a node whose address nobody answers.

mod common;
use common::{Bh, Netns};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

const NET: &str = "10.99.84";

struct Lab {
    bh: Bh,
    mn: Netns,
    _nodes: Vec<(Netns, Child)>,
    /// The directory each node sees as its own (a private tmpfs in the node's mount namespace).
    own: PathBuf,
    cfg: String,
    known: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        common::need(&[
            ("sshd", "openssh-server"),
            ("ssh", "openssh-client"),
            ("rsync", "rsync"),
            ("ping", "iputils-ping"),
            ("unshare", "util-linux"),
        ]);
        let bh = Bh::new();
        let mn = Netns::new("dshm");
        mn.exec(&["ip", "link", "add", "br0", "type", "bridge"]);
        mn.exec(&["ip", "addr", "add", &format!("{NET}.1/24"), "dev", "br0"]);
        mn.exec(&["ip", "link", "set", "br0", "up"]);
        let dir = bh.path("ssh");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let d = |n: &str| dir.join(n).display().to_string();
        common::sh(&[
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            &d("client"),
        ]);
        std::fs::copy(dir.join("client.pub"), dir.join("authorized_keys")).expect("keys");
        std::fs::create_dir_all("/run/sshd").expect("privsep dir");
        let own = bh.path("own");
        std::fs::create_dir_all(&own).expect("own");
        let mut nodes = Vec::new();
        for (i, name) in ["n1", "n2"].iter().enumerate() {
            let ns = Netns::new(&format!("dsh{i}"));
            let ip = format!("{NET}.{}", i + 2);
            common::sh(&[
                "ip",
                "-n",
                &mn.0,
                "link",
                "add",
                &format!("v{i}"),
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &ns.0,
            ]);
            mn.exec(&["ip", "link", "set", &format!("v{i}"), "master", "br0"]);
            mn.exec(&["ip", "link", "set", &format!("v{i}"), "up"]);
            ns.exec(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
            ns.exec(&["ip", "link", "set", "eth0", "up"]);
            common::sh(&[
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-f",
                &d(&format!("host{i}")),
            ]);
            let cfg = format!(
                "ListenAddress {ip}\nPort 22\nHostKey {hk}\nAuthorizedKeysFile {ak}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nStrictModes no\nUsePAM no\nPidFile none\nSubsystem sftp /usr/lib/openssh/sftp-server\n",
                hk = d(&format!("host{i}")),
                ak = d("authorized_keys"),
            );
            let cf = dir.join(format!("sshd{i}.conf"));
            std::fs::write(&cf, cfg).expect("sshd config");
            // The node's own directory: a tmpfs over `own` in a mount namespace of its own.
            let child = ns
                .command("unshare")
                .args([
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    &format!(
                        "mount -t tmpfs tmpfs {own} && echo {name} > {own}/whoami && exec /usr/sbin/sshd -D -e -f {cf}",
                        own = own.display(),
                        cf = cf.display()
                    ),
                ])
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("sshd");
            nodes.push((ns, child));
            bh.ok(&[
                "mkdef",
                "-t",
                "node",
                "-o",
                name,
                "groups=all,compute",
                &format!("ip={ip}"),
            ]);
        }
        // n3's address answers nothing.
        bh.ok(&[
            "mkdef",
            "-t",
            "node",
            "-o",
            "n3",
            "groups=all",
            &format!("ip={NET}.99"),
        ]);
        let known = dir.join("known_hosts");
        let cfg = dir.join("ssh_config");
        std::fs::write(
            &cfg,
            format!(
                "Host *\n  IdentityFile {}\n  UserKnownHostsFile {}\n  StrictHostKeyChecking no\n  LogLevel ERROR\n  ConnectTimeout 2\n",
                d("client"),
                bh.path("scratch_known_hosts").display()
            ),
        )
        .expect("ssh config");
        let lab = Lab {
            bh,
            mn,
            _nodes: nodes,
            own,
            cfg: format!("-F {}", cfg.display()),
            known,
        };
        // Both sshds up.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let o = lab.run("xdsh", &["n1,n2", "true"]);
            if o.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not come up: {}",
                text(&o.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        lab
    }

    /// Runs a command in the management namespace, with the test's ssh configuration.
    fn run(&self, cmd: &str, args: &[&str]) -> Output {
        self.mn
            .command(common::bin())
            .arg(cmd)
            .args(args)
            .env("BOOTHERD_DB", &self.bh.db)
            .env("DSH_NODE_OPTS", &self.cfg)
            .output()
            .expect("run")
    }

    fn ok(&self, cmd: &str, args: &[&str]) -> String {
        let o = self.run(cmd, args);
        assert!(
            o.status.success(),
            "{cmd} {args:?}: {}\n{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn sorted(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn parallel_commands_over_ssh_reach_each_node_and_report_the_unreachable_one() {
    let lab = Lab::new();
    let own = lab.own.display().to_string();

    // Each node runs the command itself: its own address, its own directory.
    let out = lab.ok(
        "xdsh",
        &[
            "n1,n2",
            &format!("cat {own}/whoami; ip -o -4 addr show dev eth0 | awk '{{print $4}}'"),
        ],
    );
    assert_eq!(
        sorted(&out),
        vec!["n1: 10.99.84.2/24", "n1: n1", "n2: 10.99.84.3/24", "n2: n2"]
    );
    // The local host's directory is not a node's.
    assert!(!Path::new(&own).join("whoami").exists());

    // An unreachable node: its own error, the others' output, exit 1.
    let t = Instant::now();
    let o = lab.run("xdsh", &["n1,n2,n3", "echo hi"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(sorted(&text(&o.stdout)), vec!["n1: hi", "n2: hi"]);
    let err = text(&o.stderr);
    assert!(
        err.contains("Error: n3 remote shell had error code: 255"),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());

    // A failing remote command: xCAT's message with its code; stderr lines keep the prefix.
    let o = lab.run("xdsh", &["n1", "echo oops >&2; exit 3"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("n1: oops"), "{err}");
    assert!(
        err.contains("Error: n1 remote Command had return code: 3"),
        "{err}"
    );

    // -e: a local script, copied and run with its arguments.
    let script = lab.bh.file(
        "script.sh",
        "#!/bin/sh\necho \"script $1 on $(cat $2/whoami)\"\n",
    );
    let out = lab.ok("xdsh", &["compute", "-e", &script, "arg one", &own]);
    assert_eq!(
        sorted(&out),
        vec!["n1: script arg one on n1", "n2: script arg one on n2"]
    );

    // -l, -f 1 (one at a time), -s (streaming).
    assert_eq!(
        lab.ok("xdsh", &["n1", "-l", "root", "whoami"]),
        "n1: root\n"
    );
    let t = Instant::now();
    lab.ok("xdsh", &["n1,n2", "-f", "1", "sleep 1"]);
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "fanout 1 runs one node at a time"
    );
    let out = lab.ok("xdsh", &["-s", "n1,n2", "echo a; echo b"]);
    assert_eq!(sorted(&out), vec!["n1: a", "n1: b", "n2: a", "n2: b"]);

    // -t: a node silent for longer is stopped.
    let t = Instant::now();
    let o = lab.run("xdsh", &["n1", "-t", "1", "sleep 20; echo late"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("Error: n1 timed out"),
        "{}",
        text(&o.stderr)
    );
    assert!(!text(&o.stdout).contains("late"));
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());

    // -v: the unreachable node is skipped before anything runs.
    let o = lab.run("xdsh", &["n1,n3", "-v", "echo hi"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert_eq!(text(&o.stdout), "n1: hi\n");
    assert!(
        text(&o.stderr).contains("n3: is not responding"),
        "{}",
        text(&o.stderr)
    );

    // xdshbak: per-node blocks, and -c collapses identical output (xCAT's layout).
    let out = lab.ok("xdsh", &["n1,n2", "echo same; echo line2"]);
    let bak = |args: &[&str], input: &str| -> String {
        use std::io::Write;
        let mut c = Command::new(common::bin())
            .arg("xdshbak")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("xdshbak");
        c.stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
        let o = c.wait_with_output().expect("xdshbak");
        assert!(o.status.success());
        text(&o.stdout)
    };
    assert_eq!(
        bak(&["-c"], &out),
        format!(
            "HOSTS:\n{}\nn1, n2\n{}\nsame\nline2\n",
            "-".repeat(73),
            "-".repeat(79)
        )
    );
    let mixed = lab.ok("xdsh", &["n1,n2", &format!("cat {own}/whoami")]);
    assert_eq!(
        bak(&[], &mixed),
        "HOST:n1\n\n--------\nn1\n\nHOST:n2\n\n--------\nn2\n"
    );
    assert_eq!(bak(&["-c"], &mixed).matches("HOSTS:").count(), 2);

    // xdcp: push (each node gets its copy), -R, -P pull (<file>._<node>), -F synclist.
    let src = lab.bh.file("payload.txt", "payload\n");
    lab.ok("xdcp", &["n1,n2", &src, &format!("{own}/payload.txt")]);
    let out = lab.ok("xdsh", &["n1,n2", &format!("cat {own}/payload.txt")]);
    assert_eq!(sorted(&out), vec!["n1: payload", "n2: payload"]);
    let tree = lab.bh.path("tree");
    std::fs::create_dir_all(tree.join("sub")).expect("tree");
    std::fs::write(tree.join("sub/deep"), "deep\n").expect("deep");
    lab.ok(
        "xdcp",
        &["n1", "-R", &tree.display().to_string(), &format!("{own}/")],
    );
    assert_eq!(
        lab.ok("xdsh", &["n1", &format!("cat {own}/tree/sub/deep")]),
        "n1: deep\n"
    );
    let pulled = lab.bh.path("pulled");
    std::fs::create_dir_all(&pulled).expect("pulled");
    lab.ok(
        "xdcp",
        &[
            "n1,n2",
            "-P",
            &format!("{own}/whoami"),
            &pulled.display().to_string(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(pulled.join("whoami._n1")).unwrap_or_default(),
        "n1\n"
    );
    assert_eq!(
        std::fs::read_to_string(pulled.join("whoami._n2")).unwrap_or_default(),
        "n2\n"
    );
    let synclist = lab.bh.file(
        "synclist",
        &format!("# xCAT synclist\n{src} -> {own}/etc/synced.txt\n"),
    );
    lab.ok("xdcp", &["n2", "-F", &synclist]);
    assert_eq!(
        lab.ok("xdsh", &["n2", &format!("cat {own}/etc/synced.txt")]),
        "n2: payload\n"
    );
    // A copy to the unreachable node fails for it alone.
    let o = lab.run("xdcp", &["n1,n3", &src, &format!("{own}/again.txt")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("Error: n3 remote shell had error code: 255"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        lab.ok("xdsh", &["n1", &format!("cat {own}/again.txt")]),
        "n1: payload\n"
    );

    // psh: output as it comes; exit code = nodes whose ssh failed.
    let out = lab.ok("psh", &["n1,n2", "cat", &format!("{own}/whoami")]);
    assert_eq!(sorted(&out), vec!["n1: n1", "n2: n2"]);
    let o = lab.run("psh", &["n1,n3", "echo", "hi"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stdout).lines().filter(|l| *l == "n1: hi").count(),
        1
    );
    assert!(
        text(&o.stderr).contains("n3: *** ssh exited with error code 255."),
        "{}",
        text(&o.stderr)
    );

    // pscp / prsync: "<node>: done" per node.
    let out = lab.ok("pscp", &[&src, &format!("n1,n2:{own}/pscp.txt")]);
    assert_eq!(sorted(&out), vec!["n1: done", "n2: done"]);
    let out = lab.ok(
        "prsync",
        &[&tree.display().to_string(), &format!("n2:{own}/rs")],
    );
    assert_eq!(out, "n2: done\n");
    let out = lab.ok("xdsh", &["n1,n2", &format!("cat {own}/pscp.txt")]);
    assert_eq!(sorted(&out), vec!["n1: payload", "n2: payload"]);
    assert_eq!(
        lab.ok("xdsh", &["n2", &format!("cat {own}/rs/tree/sub/deep")]),
        "n2: deep\n"
    );

    // pping.
    let out = lab.ok("pping", &["all"]);
    assert_eq!(sorted(&out), vec!["n1: ping", "n2: ping", "n3: noping"]);

    // makeknownhosts: the nodes' keys under their names and addresses; then strict checking passes.
    let kh = lab.known.display().to_string();
    let o = lab.run("makeknownhosts", &["n1,n2,n3", "--file", &kh]);
    assert_eq!(o.status.code(), Some(1), "n3 has no ssh server");
    assert!(text(&o.stderr).contains("n3"), "{}", text(&o.stderr));
    let known = std::fs::read_to_string(&lab.known).expect("known_hosts");
    assert!(
        known
            .lines()
            .any(|l| l.starts_with("n1,") && l.contains(",10.99.84.2 ssh-ed25519 ")),
        "{known}"
    );
    let strict = format!(
        "{} -o StrictHostKeyChecking=yes -o UserKnownHostsFile={kh}",
        lab.cfg
    );
    let o = lab
        .mn
        .command(common::bin())
        .args(["xdsh", "n1,n2", "-o", &strict, "echo trusted"])
        .env("BOOTHERD_DB", &lab.bh.db)
        .output()
        .expect("xdsh");
    assert_eq!(
        sorted(&text(&o.stdout)),
        vec!["n1: trusted", "n2: trusted"],
        "{}",
        text(&o.stderr)
    );
    lab.ok("makeknownhosts", &["n1", "-r", "--file", &kh]);
    let known = std::fs::read_to_string(&lab.known).expect("known_hosts");
    assert!(!known.contains("10.99.84.2 "), "{known}");
    assert!(known.contains("10.99.84.3 "), "{known}");
}
