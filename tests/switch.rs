//! switchprobe and MAC location against simulated switches (snmpsim) in a network namespace:
//! SNMP v1, v2c and v3 (SHA/AES, and xCAT's MD5 default with DES), the four port-name styles
//! matched as xCAT's `namesmatch` matches them, Q-BRIDGE and BRIDGE-only switches, and failing
//! switches (unreachable, silent, wrong community, wrong v3 password) reported per switch without
//! holding up the others.

mod common;
use common::snmpsim::{add_lo_addr, SimSwitch, Snmpsim, Style, V3User};
use common::{bin, need, Bh, Netns};

use std::collections::HashMap;
use std::process::Output;
use std::time::{Duration, Instant};

fn peers() {
    need(&[
        ("snmpsimd", "snmpsim"),
        ("snmpget", "snmp"),
        ("ip", "iproute2"),
    ]);
}

/// Runs bootherd with `args` inside `ns` on `bh`'s store.
fn run_in(ns: &Netns, bh: &Bh, program: &str, args: &[&str]) -> Output {
    ns.command(program)
        .args(args)
        .env("BOOTHERD_DB", &bh.db)
        .env_remove("RUST_LOG")
        .output()
        .expect("run bootherd")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// switchprobe's table rows: MAC → (switch, port(MTU), MAC(VLAN) column, node).
fn rows(out: &str) -> HashMap<String, (String, String, String, String)> {
    let mut m = HashMap::new();
    for l in out.lines().skip(2) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 || l.starts_with("---") {
            continue;
        }
        let mac = f[2].split('(').next().unwrap_or_default().to_string();
        let node = f.get(3).copied().unwrap_or_default().to_string();
        m.insert(
            mac,
            (f[0].to_string(), f[1].to_string(), f[2].to_string(), node),
        );
    }
    m
}

fn check(
    rows: &HashMap<String, (String, String, String, String)>,
    mac: &str,
    sw: &str,
    port: &str,
    vlan: Option<u32>,
    node: &str,
) {
    let r = rows.get(mac).unwrap_or_else(|| panic!("{mac} not listed"));
    let mac_col = match vlan {
        Some(v) => format!("{mac}({v})"),
        None => mac.to_string(),
    };
    assert_eq!(
        (r.0.as_str(), r.1.as_str(), r.2.as_str(), r.3.as_str()),
        (sw, format!("{port}(1500)").as_str(), mac_col.as_str(), node),
        "row of {mac}"
    );
}

#[test]
fn maps_macs_over_v1_v2c_and_v3_in_every_port_style() {
    peers();
    let bh = Bh::new();
    let ns = Netns::new("swm");
    let sim_dir = tempfile::tempdir().expect("tempdir");

    let swa = SimSwitch::new("swa", Style::Short, [0x52, 0x54, 0x0a]);
    let mut swb = SimSwitch::new("swb", Style::Long, [0x52, 0x54, 0x0b]);
    swb.qbridge = false;
    let swc = SimSwitch::new("swc", Style::Number, [0x52, 0x54, 0x0c]);
    let mut swd = SimSwitch::new("swd", Style::Nexus, [0x52, 0x54, 0x0d]);
    swd.vlan = 20;
    let mut swe = SimSwitch::new("swe", Style::Short, [0x52, 0x54, 0x0e]);
    swe.ports = 8;
    swe.macs = 10;
    let sha_aes = V3User {
        user: "snmpadmin".into(),
        auth_proto: "SHA".into(),
        auth_key: "c-passphrase".into(),
        privacy: Some(("AES".into(), "c-passphrase".into())),
    };
    let md5_des = V3User {
        user: "xcatv3".into(),
        auth_proto: "MD5".into(),
        auth_key: "d-passphrase".into(),
        privacy: Some(("DES".into(), "d-passphrase".into())),
    };
    let mut sims = Vec::new();
    for (i, (sw, community, user)) in [
        (&swa, "commA", None),
        (&swb, "sitecomm", None),
        (&swc, "public", Some(&sha_aes)),
        (&swd, "public", Some(&md5_des)),
        (&swe, "commE", None),
    ]
    .into_iter()
    .enumerate()
    {
        let addr = format!("10.98.1.{}", i + 1);
        add_lo_addr(&ns, &addr);
        sims.push(Snmpsim::start(
            &ns,
            sim_dir.path(),
            &addr,
            community,
            sw,
            user,
        ));
    }
    for s in &mut sims {
        s.wait_ready(&ns, 60);
    }

    // Switches: addresses from hosts.ip; credentials from switches, site.snmpc for swb.
    let hosts = bh.file(
        "hosts.csv",
        "#node,ip,hostnames,otherinterfaces,comments,disable\n\
         swa,10.98.1.1,,,,\nswb,10.98.1.2,,,,\nswc,10.98.1.3,,,,\nswd,10.98.1.4,,,,\nswe,10.98.1.5,,,,\n",
    );
    bh.ok(&["tabrestore", &hosts]);
    let switches = bh.file(
        "switches.csv",
        "#switch,snmpversion,username,password,privacy,auth,linkports,sshusername,sshpassword,protocol,switchtype,comments,disable\n\
         swa,2c,,commA,,,,,,,,,\n\
         swb,2c,,,,,,,,,,,\n\
         swc,3,snmpadmin,c-passphrase,AES,SHA,,,,,,,\n\
         swd,3,xcatv3,d-passphrase,DES,,,,,,,,\n\
         swe,,,commE,,,,,,,,,\n",
    );
    bh.ok(&["tabrestore", &switches]);
    bh.ok(&["tabch", "key=snmpc", "site.value=sitecomm"]);
    bh.ok(&[
        "nodeadd",
        "na7,na17,na9,nb7,nb8,nb9,nc7,nc17,nd7,nd9,ne3",
        "groups=compute,all",
    ]);
    bh.ok(&["nodeadd", "r5n20,r5n21", "groups=rack5,compute,all"]);
    let cabling = bh.file(
        "switch.csv",
        "#node,switch,port,vlan,interface,comments,disable\n\
         na7,swa,Gi1/0/7,,,,\n\
         na17,swa,Gi1/0/17,,,,\n\
         na9,swa,1/0/9,,,,\n\
         rack5,swa,\"|^r\\d+n(\\d+)$|Gi1/0/($1)|\",,,,\n\
         nb7,swb,GigabitEthernet1/0/7,,,,\n\
         nb8,swb,Gi1/0/8,,,,\n\
         nb9,swb,9,,,,\n\
         nc7,swc,7,,,,\n\
         nc17,swc,17,,,,\n\
         nd7,swd,Ethernet1/7,,,,\n\
         nd9,swd,9,,,,\n\
         ne3,swe,Gi1/0/3,,,,\n",
    );
    bh.ok(&["tabrestore", &cabling]);

    let o = run_in(&ns, &bh, bin(), &["switchprobe"]);
    let out = text(&o.stdout);
    assert!(
        o.status.success(),
        "switchprobe failed:\n{out}\n{}",
        text(&o.stderr)
    );
    assert!(out.starts_with("Switch  Port(MTU)"), "{out}");
    let r = rows(&out);

    // Short names (Q-BRIDGE, v2c with switches.password): exact, short-hand, group regex.
    check(&r, &swa.mac_on(7), "swa", "Gi1/0/7", Some(10), "na7");
    check(&r, &swa.mac(7 - 1 + 48), "swa", "Gi1/0/7", Some(10), "na7");
    check(&r, &swa.mac_on(17), "swa", "Gi1/0/17", Some(10), "na17");
    check(&r, &swa.mac_on(9), "swa", "Gi1/0/9", Some(10), "na9");
    check(&r, &swa.mac_on(20), "swa", "Gi1/0/20", Some(10), "r5n20");
    check(&r, &swa.mac_on(21), "swa", "Gi1/0/21", Some(10), "r5n21");
    check(&r, &swa.mac_on(8), "swa", "Gi1/0/8", Some(10), "");
    check(&r, &swa.foreign_mac(0), "swa", "Te1/0/49", Some(10), "");
    assert!(
        !r.contains_key(&swa.own_mac()),
        "the switch's own MAC (status self) is listed"
    );
    // Long names (BRIDGE-MIB only, community from site.snmpc): "Gi1/0/8" does not name
    // GigabitEthernet1/0/8 in xCAT's rule; "9" names GigabitEthernet1/0/9.
    check(
        &r,
        &swb.mac_on(7),
        "swb",
        "GigabitEthernet1/0/7",
        None,
        "nb7",
    );
    check(&r, &swb.mac_on(8), "swb", "GigabitEthernet1/0/8", None, "");
    check(
        &r,
        &swb.mac_on(9),
        "swb",
        "GigabitEthernet1/0/9",
        None,
        "nb9",
    );
    check(
        &r,
        &swb.foreign_mac(1),
        "swb",
        "TenGigabitEthernet1/0/49",
        None,
        "",
    );
    // Plain numbers over v3 SHA/AES: 7 is not 17 or 27.
    check(&r, &swc.mac_on(7), "swc", "7", Some(10), "nc7");
    check(&r, &swc.mac_on(17), "swc", "17", Some(10), "nc17");
    check(&r, &swc.mac_on(27), "swc", "27", Some(10), "");
    // Nexus names over v3 with xCAT's MD5 default and DES.
    check(&r, &swd.mac_on(7), "swd", "Ethernet1/7", Some(20), "nd7");
    check(&r, &swd.mac_on(9), "swd", "Ethernet1/9", Some(20), "nd9");
    check(&r, &swd.mac_on(19), "swd", "Ethernet1/19", Some(20), "");
    // SNMPv1 (snmpversion unset): GETNEXT walks.
    check(&r, &swe.mac_on(3), "swe", "Gi1/0/3", Some(10), "ne3");
    // Every learned MAC is listed once: 96 + 2 foreign on each big switch, 10 + 2 on swe.
    for (sw, n) in [
        ("swa", 98),
        ("swb", 98),
        ("swc", 98),
        ("swd", 98),
        ("swe", 12),
    ] {
        assert_eq!(r.values().filter(|v| v.0 == sw).count(), n, "{sw}");
    }

    // One switch by name; and what node discovery asks: where is this MAC, whose port is it.
    let o = run_in(&ns, &bh, bin(), &["switchprobe", "swc"]);
    assert!(o.status.success());
    assert!(text(&o.stdout)
        .lines()
        .skip(2)
        .filter(|l| !l.starts_with("---"))
        .all(|l| l.starts_with("swc ")));
    let unknown = "52:54:ff:00:00:01";
    let o = run_in(
        &ns,
        &bh,
        bin(),
        &[
            "switchprobe",
            "--mac",
            &swa.mac_on(7),
            "--mac",
            &swb.mac_on(8).to_uppercase(),
            "--mac",
            &swd.mac_on(9),
            "--mac",
            unknown,
        ],
    );
    assert_eq!(
        text(&o.stdout),
        format!(
            "MAC {0} is node na7 (swa port Gi1/0/7)\n\
             MAC {1} seen on swb port GigabitEthernet1/0/8; no node has switch swb port GigabitEthernet1/0/8\n\
             MAC {2} is node nd9 (swd port Ethernet1/9)\n\
             MAC {unknown} not seen on any switch (polled swa, swb, swc, swd, swe)\n",
            swa.mac_on(7),
            swb.mac_on(8),
            swd.mac_on(9),
        )
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "a MAC without a node is a failure"
    );
}

#[test]
fn failing_switches_are_reported_without_holding_up_the_others() {
    peers();
    let bh = Bh::new();
    let ns = Netns::new("swf");
    let sim_dir = tempfile::tempdir().expect("tempdir");
    // swok: the default community "public"; swwrong: snmpsim knows "right", we send "wrong";
    // swv3bad: wrong v3 passphrase; swdead: an address with no agent; swsilent: a route to nowhere.
    let swok = SimSwitch::new("swok", Style::Short, [0x52, 0x54, 0x1a]);
    let swwrong = SimSwitch::new("swwrong", Style::Short, [0x52, 0x54, 0x1b]);
    let swv3 = SimSwitch::new("swv3bad", Style::Short, [0x52, 0x54, 0x1c]);
    let v3 = V3User {
        user: "snmpadmin".into(),
        auth_proto: "SHA".into(),
        auth_key: "the-right-one".into(),
        privacy: Some(("AES".into(), "the-right-one".into())),
    };
    let mut sims = Vec::new();
    for (addr, sw, community, user) in [
        ("10.98.2.1", &swok, "public", None),
        ("10.98.2.2", &swwrong, "right", None),
        ("10.98.2.3", &swv3, "right", Some(&v3)),
    ] {
        add_lo_addr(&ns, addr);
        sims.push(Snmpsim::start(
            &ns,
            sim_dir.path(),
            addr,
            community,
            sw,
            user,
        ));
    }
    add_lo_addr(&ns, "10.98.2.9");
    // A segment with nobody on it: ARP for 10.98.3.1 goes unanswered, packets vanish.
    common::sh(&[
        "ip", "-n", &ns.0, "link", "add", "bhv0", "type", "veth", "peer", "name", "bhv1",
    ]);
    common::sh(&[
        "ip",
        "-n",
        &ns.0,
        "addr",
        "add",
        "10.98.3.254/24",
        "dev",
        "bhv0",
    ]);
    common::sh(&["ip", "-n", &ns.0, "link", "set", "bhv0", "up"]);
    common::sh(&["ip", "-n", &ns.0, "link", "set", "bhv1", "up"]);
    for s in &mut sims {
        s.wait_ready(&ns, 60);
    }
    let hosts = bh.file(
        "hosts.csv",
        "#node,ip,hostnames,otherinterfaces,comments,disable\n\
         swok,10.98.2.1,,,,\nswwrong,10.98.2.2,,,,\nswv3bad,10.98.2.3,,,,\nswdead,10.98.2.9,,,,\nswsilent,10.98.3.1,,,,\n",
    );
    bh.ok(&["tabrestore", &hosts]);
    let switches = bh.file(
        "switches.csv",
        "#switch,snmpversion,username,password,privacy,auth,linkports,sshusername,sshpassword,protocol,switchtype,comments,disable\n\
         swok,2c,,,,,,,,,,,\n\
         swwrong,2c,,wrong,,,,,,,,,\n\
         swv3bad,3,snmpadmin,not-the-right-one,AES,SHA,,,,,,,\n\
         swdead,2c,,,,,,,,,,,\n\
         swsilent,2c,,,,,,,,,,,\n",
    );
    bh.ok(&["tabrestore", &switches]);
    bh.ok(&["nodeadd", "n5", "groups=all"]);
    let cabling = bh.file(
        "switch.csv",
        "#node,switch,port,vlan,interface,comments,disable\nn5,swok,Gi1/0/5,,,,\n",
    );
    bh.ok(&["tabrestore", &cabling]);

    // 1 s × 2 tries per silent switch: two of them in parallel take about 2 s, in series 4 s.
    let t0 = Instant::now();
    let o = run_in(
        &ns,
        &bh,
        bin(),
        &["switchprobe", "--timeout", "1", "--retries", "1"],
    );
    let took = t0.elapsed();
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    check(
        &rows(&out),
        &swok.mac_on(5),
        "swok",
        "Gi1/0/5",
        Some(10),
        "n5",
    );
    assert!(
        err.contains("swsilent: Error: no SNMP answer from 10.98.3.1:161 (2 tries of 1.0 s): unreachable, or wrong community"),
        "{err}"
    );
    assert!(
        err.contains("swwrong: Error: no SNMP answer from 10.98.2.2:161"),
        "{err}"
    );
    assert!(
        err.contains("swv3bad: Error: no SNMP answer from 10.98.2.3:161 (2 tries of 1.0 s): unreachable, or wrong SNMPv3 user or passphrase"),
        "{err}"
    );
    assert!(err.contains("swdead: Error: "), "{err}");
    assert_eq!(err.lines().count(), 4, "{err}");
    assert!(
        took < Duration::from_millis(3500),
        "the failing switches were waited for in series: {took:?}"
    );

    // -c through the multi-call name, as xCAT admins type it.
    let link = bh.path("switchprobe");
    std::os::unix::fs::symlink(bin(), &link).expect("symlink");
    let o = run_in(
        &ns,
        &bh,
        &link.display().to_string(),
        &["-c", "--timeout", "1", "--retries", "0"],
    );
    assert_eq!(text(&o.stdout), "swok: PASS\n");
    assert_eq!(o.status.code(), Some(1));
    // A MAC nowhere: the sentence names what was polled and what failed.
    let o = run_in(
        &ns,
        &bh,
        bin(),
        &[
            "switchprobe",
            "--timeout",
            "1",
            "--retries",
            "0",
            "--mac",
            "52:54:ff:00:00:02",
        ],
    );
    let out = text(&o.stdout);
    assert!(
        out.starts_with("MAC 52:54:ff:00:00:02 not seen on any switch (polled swok)"),
        "only switches of the switch table are polled for a MAC: {out}"
    );
    // Unknown switch names are an error of their own.
    let o = run_in(&ns, &bh, bin(), &["switchprobe", "swok,nosuch"]);
    assert!(text(&o.stderr).contains("nosuch: Error: No switch configuration info found"));
    assert_eq!(o.status.code(), Some(1));
}
