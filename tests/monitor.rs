//! Monitoring: xCAT's monadd/monls/monstart/monstop/monrm (and the older startmon/stopmon) over
//! the monitoring and monsetting tables, nodestat against real nodes in network namespaces, and
//! the daemon's xcatmon plug-in following a node whose interface goes down and comes back.
//! Expected texts are xCAT's (monctrlcmds.pm, xcatmon.pm, nodestat.pm).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{bin, in_netns, Bh, Daemon, Netns, Pair};

fn tab(bh: &Bh, t: &str) -> String {
    bh.ok(&["tabdump", t])
}

#[test]
fn monitoring_commands_as_xcat() {
    let bh = Bh::new();
    // An unknown plug-in: xCAT looks for its .pm file.
    let o = bh.run(&["monadd", "gangliamon"]);
    assert!(!o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "File /opt/xcat/lib/perl/xCAT_monitoring/gangliamon.pm does not exist.\n"
    );
    // monadd registers disabled, with its settings in monsetting.
    bh.ok(&["monadd", "xcatmon", "-n", "-s", "ping-interval=2"]);
    assert_eq!(
        tab(&bh, "monitoring"),
        "#name,nodestatmon,comments,disable\n\"xcatmon\",\"Y\",,\"1\"\n"
    );
    assert!(tab(&bh, "monsetting").contains("\"xcatmon\",\"ping-interval\",\"2\",,"));
    assert_eq!(bh.ok(&["monls"]), "xcatmon\t\tnot-monitored\n");
    // monstart enables it and says what xcatmon's startNodeStatusMon says.
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(
        bh.ok(&["monstart", "xcatmon"]),
        format!("{host}: started. Refresh interval is 2 minute(s).\n")
    );
    assert!(tab(&bh, "monitoring").contains("\"xcatmon\",\"Y\",,\"0\""));
    assert_eq!(
        bh.ok(&["monls"]),
        "xcatmon\t\tmonitored\tnode-status-monitored\n"
    );
    let d = bh.ok(&["monls", "xcatmon", "-d"]);
    assert!(d.starts_with("xcatmon\t\tmonitored\tnode-status-monitored\n  Description:\n    xcatmon provides node status monitoring"));
    assert!(d.ends_with("  Postscripts:\n    None\n  Support node status monitoring:\n    Yes\n\n"));
    // monrm refuses while it runs (exit 0, as xCAT), monstop stops it.
    assert_eq!(
        bh.ok(&["monrm", "xcatmon"]),
        "Please run command 'monstop xcatmon' to stop monitoring before running this command.\n"
    );
    assert_eq!(
        bh.ok(&["monstop", "xcatmon"]),
        format!("{host}: stopped.\n")
    );
    assert!(tab(&bh, "monitoring").contains("\"xcatmon\",\"Y\",,\"1\""));
    bh.ok(&["monrm", "xcatmon"]);
    assert_eq!(
        tab(&bh, "monitoring"),
        "#name,nodestatmon,comments,disable\n"
    );
    assert_eq!(
        bh.ok(&["monrm", "xcatmon"]),
        "xcatmon is not in the monitoring talble.\n"
    );
    // monstart of a plug-in not added, monstop of one not in the table.
    let o = bh.run(&["monstart", "xcatmon"]);
    assert!(!o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "xcatmon has not been added to the monitoring table. Please run 'monadd' command to add.\n"
    );
    let o = bh.run(&["monstop", "xcatmon"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "xcatmon cannot be found in the monitoring table.\n"
    );
    // monls -a lists the plug-ins there are; a name that is none.
    assert_eq!(bh.ok(&["monls", "-a"]), "xcatmon\t\tnot-monitored\n");
    assert_eq!(
        bh.ok(&["monls", "snmpmon"]),
        "snmpmon: The file /opt/xcat/lib/perl/xCAT_monitoring/snmpmon.pm cannot be located or has compiling errors.\n"
    );
    // monstart with a noderange naming no node.
    bh.ok(&["monadd", "xcatmon"]);
    let o = bh.run(&["monstart", "xcatmon", "nosuch"]);
    assert!(!o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "Invalid nodes in noderange:nosuch\n"
    );
    // Without -n, starting xcatmon says nothing (its start() prints only to xcatd's log).
    assert_eq!(bh.ok(&["monstart", "xcatmon"]), "");
    assert_eq!(bh.ok(&["monls"]), "xcatmon\t\tmonitored\n");
    bh.ok(&["monstop", "xcatmon"]);
    bh.ok(&["monrm", "xcatmon"]);
    // The seed's startmon registers and starts; the old comma form of the settings.
    assert_eq!(
        bh.ok(&[
            "startmon",
            "xcatmon",
            "-n",
            "-s",
            "ping-interval=0.5,apps=ssh"
        ]),
        format!("{host}: started. Refresh interval is 0.5 minute(s).\n")
    );
    let ms = tab(&bh, "monsetting");
    assert!(
        ms.contains("\"xcatmon\",\"ping-interval\",\"0.5\",,"),
        "{ms}"
    );
    assert!(ms.contains("\"xcatmon\",\"apps\",\"ssh\",,"), "{ms}");
    // stopmon stops and unregisters.
    assert_eq!(
        bh.ok(&["stopmon", "xcatmon"]),
        format!("{host}: stopped.\n")
    );
    assert_eq!(
        tab(&bh, "monitoring"),
        "#name,nodestatmon,comments,disable\n"
    );
    // Usage with no arguments (exit 1), and nodestat's.
    let o = bh.run(&["monadd"]);
    assert!(!o.status.success());
    let o = bh.run(&["nodestat"]);
    assert!(!o.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        all.contains(
            "nodestat [noderange] [-m|--usemon] [-p|powerstat] [-f|--usefping] [-u|--updatedb]"
        ),
        "{all}"
    );
    // xCAT's autotest nodestat_err_node: an unknown node fails with an Error.
    let e = bh.fail(&["nodestat", "testnode"]);
    assert!(e.contains("Error"), "{e}");
}

/// `bootherd <args>` inside a namespace, on `bh`'s store.
fn ns_run(ns: &Netns, bh: &Bh, args: &[&str]) -> (bool, String, String) {
    let o = Command::new("ip")
        .args(["netns", "exec", &ns.0, bin()])
        .args(args)
        .env("BOOTHERD_DB", &bh.db)
        .env_remove("RUST_LOG")
        .output()
        .expect("run bootherd");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A TCP listener on `addr` inside `ns`, accepting (and dropping) connections forever.
fn listen_in(ns: &Netns, addr: &str) {
    let l = in_netns(ns, || {
        std::net::TcpListener::bind(addr).expect("bind in namespace")
    });
    std::thread::spawn(move || for _c in l.incoming() {});
}

fn status_of(bh: &Bh, node: &str) -> String {
    let out = bh.ok(&["nodels", node, "nodelist.status"]);
    out.trim()
        .trim_start_matches(&format!("{node}:"))
        .trim()
        .to_string()
}

fn wait_status(bh: &Bh, d: &Daemon, node: &str, want: &str, secs: u64) -> Duration {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(secs) {
        if status_of(bh, node) == want {
            return t0.elapsed();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{node} did not become '{want}' within {secs} s (is '{}'):\n{}",
        status_of(bh, node),
        d.dump()
    );
}

#[test]
fn nodestat_and_xcatmon_follow_a_node_in_a_namespace() {
    let pair = Pair::new("mon", "10.99.77.1/24");
    // The node namespace: n1 runs sshd (a listener on 22), n2 (a second address) runs nothing,
    // n3's address answers nobody.
    common::sh(&[
        "ip",
        "-n",
        &pair.cli.0,
        "addr",
        "add",
        "10.99.77.10/24",
        "dev",
        "bhc0",
    ]);
    common::sh(&[
        "ip",
        "-n",
        &pair.cli.0,
        "addr",
        "add",
        "10.99.77.11/24",
        "dev",
        "bhc0",
    ]);
    listen_in(&pair.cli, "10.99.77.10:22");
    let bh = Bh::new();
    bh.ok(&["nodeadd", "n1-n3", "groups=compute,all"]);
    for (n, ip) in [
        ("n1", "10.99.77.10"),
        ("n2", "10.99.77.11"),
        ("n3", "10.99.77.99"),
    ] {
        bh.ok(&["nodech", n, &format!("hosts.ip={ip}")]);
    }
    bh.ok(&["nodech", "n2", "chain.currstate=boot"]);
    let n2_stat = bh.ok(&["nodeset", "n2", "stat"]);

    let t0 = Instant::now();
    let (ok, out, err) = ns_run(&pair.srv, &bh, &["nodestat", "compute"]);
    let took = t0.elapsed();
    assert!(ok, "nodestat failed: {err}");
    // n1 answers on 22: its applications; n2 is pingable with no service: its nodeset state;
    // n3 is silent.
    assert_eq!(
        out,
        format!("n1: sshd\n{}n3: noping\n", n2_stat),
        "stderr: {err}"
    );
    assert!(took < Duration::from_secs(10), "nodestat took {took:?}");
    // Without -u nothing is written.
    assert_eq!(status_of(&bh, "n1"), "");
    let (ok, _, err) = ns_run(&pair.srv, &bh, &["nodestat", "n1,n3", "-u"]);
    assert!(ok, "{err}");
    assert_eq!(status_of(&bh, "n1"), "ping");
    assert_eq!(status_of(&bh, "n3"), "noping");
    let app = bh.ok(&["nodels", "n1", "nodelist.appstatus"]);
    assert!(
        app.contains("sshd=up") && app.contains("https=down"),
        "{app}"
    );
    // A node with no address.
    bh.ok(&["nodeadd", "n4", "groups=other"]);
    let (_, out, _) = ns_run(&pair.srv, &bh, &["nodestat", "n4"]);
    assert_eq!(
        out,
        "n4: Please make sure n4 exists in /etc/hosts or DNS or hosts table\n"
    );

    // xcatmon in the daemon: every 0.02 minutes (1.2 s).
    bh.ok(&["nodech", "n1,n3", "nodelist.status=", "nodelist.appstatus="]);
    let d = Daemon::start(
        &bh,
        &pair.srv,
        &[
            "--no-dhcp",
            "--no-tftp",
            "--no-http",
            "--no-nfs",
            "--no-status-port",
            "--no-findme-udp",
        ],
    );
    bh.ok(&["monadd", "xcatmon", "-n", "-s", "ping-interval=0.02"]);
    // Not started yet: nothing is probed.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(status_of(&bh, "n1"), "");
    bh.ok(&["monstart", "xcatmon"]);
    wait_status(&bh, &d, "n1", "ping", 15);
    wait_status(&bh, &d, "n3", "noping", 15);
    // Only transitions are written: statustime stays while the status does.
    let t1 = bh.ok(&["nodels", "n1", "nodelist.statustime"]);
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(bh.ok(&["nodels", "n1", "nodelist.statustime"]), t1);
    // The node's interface goes down: noping; back up: ping again.
    common::sh(&["ip", "-n", &pair.cli.0, "link", "set", "bhc0", "down"]);
    let down = wait_status(&bh, &d, "n1", "noping", 20);
    assert_eq!(bh.ok(&["nodels", "n1", "nodelist.appstatus"]).trim(), "n1:");
    common::sh(&["ip", "-n", &pair.cli.0, "link", "set", "bhc0", "up"]);
    let up = wait_status(&bh, &d, "n1", "ping", 20);
    eprintln!("xcatmon noticed: down after {down:?}, up after {up:?}");
    // The transitions are in the node's timeline, in order.
    std::thread::sleep(Duration::from_millis(600));
    let tl = bh.ok(&["timeline", "n1"]);
    // After the time stamp (23 characters and two spaces).
    let steps: Vec<&str> = tl.lines().filter_map(|l| l.get(25..)).collect();
    // In this order. A round during which the link goes down may see one step more: the node
    // answered its echo request, then not the connect to port 22 (up, no service: its nodeset
    // state), as xCAT's nmap run would.
    let mut at = 0;
    for want in [
        "status      nodestat: ping",
        "status      nodestat: noping",
        "status      nodestat: ping",
    ] {
        match steps[at..].iter().position(|s| *s == want) {
            Some(i) => at += i + 1,
            None => panic!("no '{want}' after step {at} in the timeline:\n{tl}"),
        }
    }
    // monstop: no more rounds (a change now stays unwritten).
    bh.ok(&["monstop", "xcatmon"]);
    assert!(
        d.wait_for("xcatmon: node status monitoring stopped", 10),
        "{}",
        d.dump()
    );
    common::sh(&["ip", "-n", &pair.cli.0, "link", "set", "bhc0", "down"]);
    std::thread::sleep(Duration::from_millis(4000));
    assert_eq!(status_of(&bh, "n1"), "ping");
}

#[test]
fn nodestat_probes_two_thousand_nodes_at_once() {
    // The node namespace answers for a whole /21 (AnyIP: a local route), so 2000 nodes are up.
    let pair = Pair::new("mbig", "10.99.78.1/24");
    common::sh(&[
        "ip",
        "-n",
        &pair.cli.0,
        "addr",
        "add",
        "10.99.78.2/24",
        "dev",
        "bhc0",
    ]);
    common::sh(&[
        "ip",
        "-n",
        &pair.cli.0,
        "route",
        "add",
        "local",
        "10.99.80.0/21",
        "dev",
        "lo",
    ]);
    common::sh(&[
        "ip",
        "-n",
        &pair.srv.0,
        "route",
        "add",
        "10.99.80.0/21",
        "via",
        "10.99.78.2",
    ]);
    let bh = Bh::new();
    let mut csv = String::from("#node,ip,hostnames,otherinterfaces,comments,disable\n");
    for i in 0..2000u32 {
        csv.push_str(&format!(
            "\"big{:04}\",\"10.99.{}.{}\",,,,\n",
            i,
            80 + (i + 1) / 256,
            (i + 1) % 256
        ));
    }
    let f = bh.file("hosts.csv", &csv);
    bh.ok(&["tabrestore", &f]);
    bh.ok(&["nodeadd", "big[0000-1999]", "groups=big"]);
    let t0 = Instant::now();
    let child = Command::new("ip")
        .args(["netns", "exec", &pair.srv.0, bin(), "nodestat", "big"])
        .env("BOOTHERD_DB", &bh.db)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("nodestat");
    // Its threads while it probes (ip netns exec execs bootherd in place: same pid).
    let pid = child.id();
    let mut threads = 0u64;
    while t0.elapsed() < Duration::from_secs(30) {
        let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            break;
        };
        if let Some(n) = st
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            threads = threads.max(n);
        }
        if st.contains("State:\tZ") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().expect("nodestat");
    let took = t0.elapsed();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(o.status.success(), "{err}");
    eprintln!("nodestat threads (most seen): {threads}");
    assert!(threads <= 16, "nodestat ran {threads} threads");
    assert_eq!(out.lines().count(), 2000, "{out}");
    let noping = out.lines().filter(|l| l.ends_with(": noping")).count();
    assert_eq!(noping, 0, "{out}");
    eprintln!("nodestat of 2000 live nodes (6 ports each): {took:?}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}
