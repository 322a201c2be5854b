//! rpower … wake: Wake-on-LAN magic packets reach the node's segment, locally or through a router.

mod common;
use common::{sh, Bh, Netns, Pair};

/// Starts a listener for one UDP datagram on port 9 in `ns`; returns the child (prints hex).
fn listen(ns: &Netns) -> std::process::Child {
    let child = ns
        .command("/usr/bin/python3")
        .args(["-c", "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('0.0.0.0',9));s.settimeout(10);d,a=s.recvfrom(2048);print(d.hex(),a[0])"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python listener");
    std::thread::sleep(std::time::Duration::from_millis(400));
    child
}

fn received(child: std::process::Child) -> String {
    let o = child.wait_with_output().expect("listener");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// 6 × 0xFF then the MAC 16 times, written out.
fn magic(mac_hex: &str) -> String {
    format!("{}{}", "ff".repeat(6), mac_hex.repeat(16))
}

#[test]
fn wake_reaches_the_local_segment() {
    let bh = Bh::new();
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n5",
        "groups=all",
        "mac=52:54:00:99:90:05",
        "ip=10.99.90.5",
        "mgt=wol",
    ]);
    let pair = Pair::new("wl", "10.99.90.1/24");
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.90.5/24", "dev", "bhc0"]);
    let l = listen(&pair.cli);
    let o = pair
        .srv
        .command(common::bin())
        .args(["rpower", "n5", "on"])
        .env("BOOTHERD_DB", &bh.db)
        .output()
        .expect("rpower");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "n5: wake sent to 10.99.90.255:9 (1 MAC)\n"
    );
    let got = received(l);
    assert_eq!(got, format!("{} 10.99.90.1", magic("525400999005")));
    assert_eq!(
        bh.ok(&["nodels", "n5", "nodelist.status"]),
        "n5: powering-on\n"
    );
    // A WoL node cannot be powered off; an IPMI node without a BMC address gets a clear error.
    bh.ok(&["mkdef", "-t", "node", "-o", "n6", "groups=all", "mgt=ipmi"]);
    let o = pair
        .srv
        .command(common::bin())
        .args(["rpower", "n5,n6", "off"])
        .env("BOOTHERD_DB", &bh.db)
        .output()
        .expect("rpower");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("n5: Error: Wake-on-LAN can only power a node on")
            && out.contains("n6: Error: no BMC address (ipmi.bmc is empty)"),
        "{out}"
    );
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn wake_reaches_a_routed_segment_by_directed_broadcast() {
    let bh = Bh::new();
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "far",
        "net=10.99.92.0",
        "mask=255.255.255.0",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n7",
        "groups=all",
        "mac=52:54:00:99:92:07",
        "ip=10.99.92.7",
    ]);
    // appliance (10.99.91.1) — router (10.99.91.254 | 10.99.92.254) — node (10.99.92.7)
    let srv = Netns::new("wrs");
    let rtr = Netns::new("wrr");
    let node = Netns::new("wrn");
    sh(&[
        "ip", "-n", &srv.0, "link", "add", "a0", "type", "veth", "peer", "name", "r0", "netns",
        &rtr.0,
    ]);
    sh(&[
        "ip", "-n", &rtr.0, "link", "add", "r1", "type", "veth", "peer", "name", "n0", "netns",
        &node.0,
    ]);
    srv.exec(&["ip", "addr", "add", "10.99.91.1/24", "dev", "a0"]);
    rtr.exec(&["ip", "addr", "add", "10.99.91.254/24", "dev", "r0"]);
    rtr.exec(&["ip", "addr", "add", "10.99.92.254/24", "dev", "r1"]);
    node.exec(&["ip", "addr", "add", "10.99.92.7/24", "dev", "n0"]);
    for (ns, ifs) in [
        (&srv, vec!["a0"]),
        (&rtr, vec!["r0", "r1"]),
        (&node, vec!["n0"]),
    ] {
        for i in ifs {
            ns.exec(&["ip", "link", "set", i, "up"]);
        }
    }
    srv.exec(&["ip", "route", "add", "10.99.92.0/24", "via", "10.99.91.254"]);
    node.exec(&["ip", "route", "add", "default", "via", "10.99.92.254"]);
    rtr.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    for k in ["all", "r0", "r1"] {
        rtr.exec(&[
            "sysctl",
            "-qw",
            &format!("net.ipv4.conf.{k}.bc_forwarding=1"),
        ]);
    }
    let l = listen(&node);
    let o = srv
        .command(common::bin())
        .args(["rpower", "n7", "wake"])
        .env("BOOTHERD_DB", &bh.db)
        .output()
        .expect("rpower");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "n7: wake sent to 10.99.92.255:9 (1 MAC)\n"
    );
    assert_eq!(received(l), format!("{} 10.99.91.1", magic("525400999207")));
}
