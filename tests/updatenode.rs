//! updatenode against a real OpenSSH server in a node namespace.

mod common;
use common::{Bh, Daemon, Pair};

#[test]
fn updatenode_runs_the_postscripts_and_s_makes_us_the_master() {
    let bh = Bh::new();
    let install = bh.path("install");
    std::fs::create_dir_all(install.join("postscripts")).expect("mkdir");
    let marker = bh.path("marker");
    std::fs::write(
        install.join("postscripts/leavemark"),
        format!("#!/bin/sh\necho \"$NODE ran\" >> {}\n", marker.display()),
    )
    .expect("script");
    bh.ok(&[
        "chtab",
        "key=installdir",
        &format!("site.value={}", install.display()),
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n1",
        "groups=all",
        "ip=10.99.83.2",
        "xcatmaster=10.99.83.1",
    ]);
    bh.ok(&["chtab", "node=n1", "postscripts.postscripts=leavemark"]);
    // The "node" here shares this machine's filesystem: xCAT's default scripts (syslog,
    // remoteshell, …; the xcatdefaults row a new store has) would configure the test machine.
    bh.ok(&["chtab", "-d", "node=xcatdefaults", "postscripts"]);
    let pair = Pair::new("un", "10.99.83.1/24");
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.83.2/24", "dev", "bhc0"]);

    // An sshd in the node's namespace, with its own host key and our client key.
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
        &d("host"),
    ]);
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
    std::fs::copy(dir.join("client.pub"), dir.join("authorized_keys")).expect("authorized_keys");
    let info = bh.path("xcatinfo");
    std::fs::write(&info, "XCATSERVER=10.99.83.77\nHTTPPORT=80\n").expect("xcatinfo");
    let cfg = format!(
        "ListenAddress 10.99.83.2\nPort 22\nHostKey {host}\nAuthorizedKeysFile {ak}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nStrictModes no\nUsePAM no\nPidFile {pid}\nSetEnv XCATINFO={info} POSTDIR={post} LEASEDIRS=/nonexistent TRIES=1 TIMEOUT=2\n",
        host = d("host"),
        ak = d("authorized_keys"),
        pid = d("sshd.pid"),
        info = info.display(),
        post = bh.path("xcatpost").display()
    );
    std::fs::write(dir.join("sshd_config"), cfg).expect("sshd_config");
    std::fs::create_dir_all("/run/sshd").expect("privsep dir");
    pair.cli.exec(&["/usr/sbin/sshd", "-f", &d("sshd_config")]);

    let _daemon = Daemon::start(&bh, &pair.srv, &["--no-dhcp", "--no-tftp"]);
    let ssh_opts = [
        "--ssh-option",
        &format!("IdentityFile={}", d("client")),
        "--ssh-option",
        "UserKnownHostsFile=/dev/null",
        "--ssh-option",
        "LogLevel=ERROR",
    ];
    // Without -s the recorded master (gone) is tried first, then ours (-m).
    let run = |extra: &[&str]| {
        let mut args = vec!["updatenode"];
        args.extend_from_slice(&ssh_opts);
        args.extend_from_slice(extra);
        args.push("n1");
        pair.srv
            .command(common::bin())
            .args(&args)
            .env("BOOTHERD_DB", &bh.db)
            .output()
            .expect("updatenode")
    };
    let o = run(&[]);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "n1: done\n");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap_or_default(),
        "n1 ran\n"
    );
    assert_eq!(bh.ok(&["nodels", "n1", "nodelist.status"]), "n1: booted\n");
    // -s: the node records this appliance as its master.
    std::fs::write(&info, "XCATSERVER=10.99.83.77\nHTTPPORT=80\n").expect("xcatinfo");
    let o = run(&["-s"]);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(std::fs::read_to_string(&info)
        .unwrap_or_default()
        .contains("XCATSERVER=10.99.83.1\n"));
    // Moving the node to a service node: noderes.servicenode names it, xcatmaster is emptied,
    // and `updatenode -s` makes the node take it. Service node sn9 is this same daemon on a
    // second address, as the registry records it (a live appliance at 10.99.83.5).
    pair.srv
        .exec(&["ip", "addr", "add", "10.99.83.5/24", "dev", "bhs0"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    bh.ok(&[
        "chtab",
        "name=sn9",
        "appliances.role=SN",
        "appliances.addresses=192.168.77.9,10.99.83.5",
        &format!("appliances.heartbeat={now}"),
        "appliances.interval=600",
        "appliances.state=running",
    ]);
    bh.ok(&["chdef", "n1", "servicenode=sn9", "xcatmaster="]);
    let o = run(&["-s"]);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        std::fs::read_to_string(&info)
            .unwrap_or_default()
            .contains("XCATSERVER=10.99.83.5\n"),
        "the node takes its service node, by the address facing it: {}",
        std::fs::read_to_string(&info).unwrap_or_default()
    );
    bh.ok(&["chdef", "n1", "servicenode=", "xcatmaster=10.99.83.1"]);
    // -P runs only the named scripts; an unreachable node is a per-node error and exit 1.
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n2",
        "groups=all",
        "ip=10.99.83.99",
        "xcatmaster=10.99.83.1",
    ]);
    let mut args = vec!["updatenode"];
    args.extend_from_slice(&ssh_opts);
    args.extend_from_slice(&[
        "--ssh-option",
        "ConnectTimeout=2",
        "-P",
        "leavemark",
        "n1,n2",
    ]);
    let o = pair
        .srv
        .command(common::bin())
        .args(&args)
        .env("BOOTHERD_DB", &bh.db)
        .output()
        .expect("updatenode");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("n1: done\n") && out.contains("n2: Error:"),
        "{out}"
    );
    assert_eq!(o.status.code(), Some(1));
    // Four runs on n1 (plain, -s, -s to sn9, -P), none on n2.
    assert_eq!(
        std::fs::read_to_string(&marker)
            .unwrap_or_default()
            .lines()
            .count(),
        4
    );
}
