//! Commands that look at the machine's network, run inside a network namespace this test makes.
//! Needs root; without it the test fails (it never skips).

mod common;
use common::{Bh, Netns};

use std::process::Command;

#[test]
fn makenetworks_defines_the_networks_on_this_machines_interfaces() {
    let ns = Netns::new("mknet");
    // veth pairs with both ends in the namespace carry the addresses; nothing is ever sent.
    ns.exec(&[
        "ip", "link", "add", "mgmt0", "type", "veth", "peer", "name", "mgmt0p",
    ]);
    ns.exec(&["ip", "link", "set", "mgmt0p", "up"]);
    ns.exec(&["ip", "addr", "add", "10.99.7.1/24", "dev", "mgmt0"]);
    ns.exec(&["ip", "link", "set", "mgmt0", "up"]);
    ns.exec(&[
        "ip",
        "route",
        "add",
        "default",
        "via",
        "10.99.7.254",
        "dev",
        "mgmt0",
    ]);
    ns.exec(&[
        "ip", "link", "add", "data0", "type", "veth", "peer", "name", "data0p",
    ]);
    ns.exec(&["ip", "addr", "add", "10.99.8.5/16", "dev", "data0"]);
    let bh = Bh::new();
    let run = |args: &[&str]| {
        let mut v = vec!["netns", "exec", ns.0.as_str(), common::bin()];
        v.extend_from_slice(args);
        Command::new("ip")
            .args(&v)
            .env("BOOTHERD_DB", &bh.db)
            .output()
            .expect("run")
    };
    let shown = run(&["makenetworks", "-d"]);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("10_99_7_0-255_255_255_0:\n"), "{text}");
    assert!(text.contains("    gateway=10.99.7.254\n"), "{text}");
    assert_eq!(
        bh.ok(&["tabdump", "networks"]).lines().count(),
        1,
        "-d changes nothing"
    );

    let o = run(&["makenetworks"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let nets = bh.ok(&["tabdump", "networks"]);
    assert!(
        nets.contains(
            "\"10_99_7_0-255_255_255_0\",\"10.99.7.0\",\"255.255.255.0\",\"mgmt0\",\"10.99.7.254\""
        ),
        "{nets}"
    );
    assert!(
        nets.contains("\"10_99_0_0-255_255_0_0\",\"10.99.0.0\",\"255.255.0.0\",\"data0\","),
        "{nets}"
    );
    assert!(
        !nets.contains("127.0.0"),
        "loopback is not a cluster network: {nets}"
    );
    // Running it again keeps what is there, with xCAT's warning (networks.pm); a network name
    // on the command line is ignored as xCAT ignores it, and -V is accepted.
    let again = run(&["makenetworks", "-V", "10_99_7_0-255_255_255_0"]);
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("Warning: The network entry '10_99_7_0-255_255_255_0' already exists in xCAT networks table. Cannot create a definition for '10_99_7_0-255_255_255_0'"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(bh.ok(&["tabdump", "networks"]), nets);
    // -d -V shows stanzas in networks.pm's order: net, mask, gateway, mgtifname, mtu.
    let shown = run(&["makenetworks", "-d", "-V"]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("10_99_7_0-255_255_255_0:\n    objtype=network\n    net=10.99.7.0\n    mask=255.255.255.0\n    gateway=10.99.7.254\n    mgtifname=mgmt0\n    mtu=1500\n"),
        "{text}"
    );
}
