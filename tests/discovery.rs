//! Discovery over HTTP as genesis drives it: findme from unknown machines (curl from a node
//! namespace), MTM+serial and sequential matching, the undefined machine explained, getdestiny,
//! the BMC settings given only to the node in its bmcsetup step, and the nodediscover* commands.

mod common;
use common::{Bh, Daemon, Pair};

const SRV: &str = "10.99.121.1";

/// POSTs a findme from `source` inside the client namespace; returns the answer body.
fn findme(pair: &Pair, source: &str, body: &str) -> String {
    let o = pair
        .cli
        .command("curl")
        .args([
            "-sS",
            "--interface",
            source,
            "--data-binary",
            body,
            &format!("http://{SRV}/xcat/discovery/findme"),
        ])
        .output()
        .expect("curl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// GET of `path` from `source`: (HTTP status, body).
fn get(pair: &Pair, source: &str, path: &str) -> (String, String) {
    let o = pair
        .cli
        .command("curl")
        .args([
            "-sS",
            "--interface",
            source,
            "-w",
            "\n%{http_code}",
            &format!("http://{SRV}{path}"),
        ])
        .output()
        .expect("curl");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", ""));
    (code.to_string(), body.trim_end_matches('\n').to_string())
}

fn machine(uuid: &str, mac: &str, ip: &str, mtm: &str, serial: &str) -> String {
    format!(
        "uuid={uuid}\narch=x86_64\nmtm={mtm}\nserial={serial}\ncpucount=4\nmemory=8192MB\n\
         mac=virtio_net|eth0|{mac}|{ip}/24\nmac=e1000|eth1|52:54:00:ff:{}|\n",
        &mac[12..]
    )
}

fn lab(tag: &str) -> (Bh, Pair, Daemon) {
    let bh = Bh::new();
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "mgmt",
        "net=10.99.121.0",
        "mask=255.255.255.0",
        "gateway=10.99.121.254",
    ]);
    let pair = Pair::new(tag, &format!("{SRV}/24"));
    for a in [
        "10.99.121.50",
        "10.99.121.51",
        "10.99.121.52",
        "10.99.121.53",
    ] {
        pair.cli
            .exec(&["ip", "addr", "add", &format!("{a}/24"), "dev", "bhc0"]);
    }
    let d = Daemon::start(&bh, &pair.srv, &["--no-dhcp", "--no-tftp"]);
    (bh, pair, d)
}

#[test]
fn mtms_match_writes_the_node_and_an_unknown_machine_is_explained() {
    let (bh, pair, _d) = lab("dsm");
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n5",
        "groups=compute,all",
        "ip=10.99.121.5",
    ]);
    bh.ok(&[
        "chtab",
        "node=n5",
        "vpd.mtm=7X06CTO1WW",
        "vpd.serial=J300ABCD",
    ]);
    let body = machine(
        "0c1e2a3b-0000-4000-8000-000000000005",
        "52:54:00:12:34:56",
        "10.99.121.50",
        "7X06CTO1WW",
        "J300ABCD",
    );
    assert_eq!(findme(&pair, "10.99.121.50", &body), "restart n5\n");
    assert_eq!(
        bh.ok(&[
            "nodels",
            "n5",
            "mac.mac",
            "vpd.uuid",
            "nodetype.arch",
            "noderes.netboot",
            "nodelist.status"
        ]),
        "n5: mac.mac: 52:54:00:12:34:56|52:54:00:ff:34:56!*NOIP*\n\
         n5: vpd.uuid: 0c1e2a3b-0000-4000-8000-000000000005\n\
         n5: nodetype.arch: x86_64\n\
         n5: noderes.netboot: xnba\n\
         n5: nodelist.status: discovered\n"
    );
    // The same machine again is recognised by its MAC, and keeps the method that placed it.
    assert_eq!(findme(&pair, "10.99.121.50", &body), "restart n5\n");
    assert!(bh.ok(&["nodediscoverls", "-t", "mtms"]).contains("n5"));

    // A machine nothing places: explained, listed as undefined.
    let other = machine(
        "0c1e2a3b-0000-4000-8000-000000000099",
        "52:54:00:12:34:99",
        "10.99.121.51",
        "7X06CTO1WW",
        "NOSUCH",
    );
    let ans = findme(&pair, "10.99.121.51", &other);
    assert!(
        ans.starts_with(
            "undefined MAC 52:54:00:12:34:99, 52:54:00:ff:34:99 not seen on any switch port"
        ),
        "{ans}"
    );
    assert!(
        ans.contains("no single node has vpd mtm 7X06CTO1WW serial NOSUCH"),
        "{ans}"
    );
    let ls = bh.ok(&["nodediscoverls"]);
    assert!(ls.starts_with("Discovered 2 nodes.\n"), "{ls}");
    assert!(
        ls.lines()
            .any(|l| l.contains("0c1e2a3b-0000-4000-8000-000000000005")
                && l.contains("n5")
                && l.contains("mtms")),
        "{ls}"
    );
    let undef = bh.ok(&["nodediscoverls", "-t", "undef"]);
    assert!(
        undef.contains("0c1e2a3b-0000-4000-8000-000000000099") && undef.contains("undef"),
        "{undef}"
    );

    // The admin assigns it by hand.
    bh.ok(&["mkdef", "-t", "node", "-o", "n6", "groups=all"]);
    assert_eq!(
        bh.ok(&[
            "nodediscoverdef",
            "-u",
            "0c1e2a3b-0000-4000-8000-000000000099",
            "-n",
            "n6"
        ]),
        "Defined [0c1e2a3b-0000-4000-8000-000000000099] to node n6.\n"
    );
    assert_eq!(bh.ok(&["nodels", "n6", "vpd.serial"]), "n6: NOSUCH\n");
    assert!(bh.ok(&["nodediscoverls", "-t", "manual"]).contains("n6"));
    // Garbage is refused with a reason.
    let bad = findme(&pair, "10.99.121.52", "hello");
    assert!(bad.contains("no network interface with a MAC"), "{bad}");
}

#[test]
fn sequential_discovery_gives_the_next_nodes_and_addresses_then_bmcsetup() {
    let (bh, pair, _d) = lab("dsq");
    bh.ok(&[
        "mkdef",
        "-t",
        "osimage",
        "-o",
        "img",
        "imagetype=linux",
        "provmethod=install",
        "osvers=rhels9.4",
        "osarch=x86_64",
        "profile=compute",
    ]);
    bh.ok(&["chtab", "key=ipmi,username=admin", "passwd.password=s3cret"]);
    let out = bh.ok(&[
        "nodediscoverstart",
        "noderange=cn[1-3]",
        "hostiprange=10.99.121.[10-20]",
        "bmciprange=10.99.121.[30-40]",
        "osimage=img",
    ]);
    assert_eq!(
        out,
        "Sequential Discovery: Started:\n    Number of free node names: 3\n    Number of free host ips: 11\n    Number of free bmc ips: 11\n"
    );
    assert!(bh
        .ok(&["nodediscoverstatus"])
        .starts_with("Sequential discovery is running."));
    for (i, src) in ["10.99.121.50", "10.99.121.51", "10.99.121.52"]
        .iter()
        .enumerate()
    {
        let body = machine(
            &format!("5e000000-0000-4000-8000-00000000000{i}"),
            &format!("52:54:00:00:00:0{i}"),
            src,
            "M",
            &format!("S{i}"),
        );
        assert_eq!(findme(&pair, src, &body), format!("restart cn{}\n", i + 1));
    }
    assert_eq!(
        bh.ok(&["nodels", "cn1-cn3", "hosts.ip", "ipmi.bmc", "chain.chain"]),
        "cn1: hosts.ip: 10.99.121.10\ncn1: ipmi.bmc: 10.99.121.30\ncn1: chain.chain: runcmd=bmcsetup,osimage=img\n\
         cn2: hosts.ip: 10.99.121.11\ncn2: ipmi.bmc: 10.99.121.31\ncn2: chain.chain: runcmd=bmcsetup,osimage=img\n\
         cn3: hosts.ip: 10.99.121.12\ncn3: ipmi.bmc: 10.99.121.32\ncn3: chain.chain: runcmd=bmcsetup,osimage=img\n"
    );
    // A fourth machine finds no free node.
    let body = machine(
        "5e000000-0000-4000-8000-000000000009",
        "52:54:00:00:00:09",
        "10.99.121.53",
        "M",
        "S9",
    );
    assert!(findme(&pair, "10.99.121.53", &body).starts_with("undefined "));
    let stop = bh.ok(&["nodediscoverstop"]);
    assert!(
        stop.starts_with("Discovered 3 nodes.\n")
            && stop.ends_with("Sequential Discovery: Stopped.\n"),
        "{stop}"
    );

    // Genesis comes back under cn1's address: its first step is bmcsetup.
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.121.10/24", "dev", "bhc0"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(
        get(&pair, "10.99.121.10", "/xcat/discovery/destiny"),
        ("200".into(), "runcmd=bmcsetup".into())
    );
    assert_eq!(
        bh.ok(&["nodels", "cn1", "nodelist.status"]),
        "cn1: configuring\n"
    );
    assert_eq!(
        get(&pair, "10.99.121.10", "/xcat/discovery/bmcsetup"),
        ("200".into(), "bmcip=10.99.121.30\nnetmask=255.255.255.0\ngateway=10.99.121.254\nusername=admin\npassword=s3cret".into())
    );
    // Not to anyone else, and not to a node that is not in its bmcsetup step.
    let (code, body) = get(&pair, "10.99.121.53", "/xcat/discovery/bmcsetup");
    assert_eq!(code, "403", "{body}");
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.121.11/24", "dev", "bhc0"]);
    bh.ok(&["nodeset", "cn2", "shell"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (code, body) = get(&pair, "10.99.121.11", "/xcat/discovery/bmcsetup");
    assert_eq!(
        (code.as_str(), body.contains("not in its bmcsetup step")),
        ("403", true),
        "{body}"
    );
    // An unknown address is told to discover.
    assert_eq!(
        get(&pair, "10.99.121.53", "/xcat/discovery/destiny"),
        ("200".into(), "discover".into())
    );
}

#[test]
fn mknb_builds_genesis_into_the_tftp_root() {
    common::need(&[("ipmitool", "ipmitool"), ("cpio", "cpio")]);
    let a = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-assets");
    let bh = Bh::new();
    let tftp = bh.path("tftpboot");
    bh.ok(&[
        "chtab",
        "key=tftpdir",
        &format!("site.value={}", tftp.display()),
    ]);
    let s = |p: &str| a.join(p).display().to_string();
    bh.ok(&[
        "mknb",
        "x86_64",
        "-k",
        &s("vmlinuz"),
        "-m",
        &s("modules"),
        "-b",
        &s("busybox"),
    ]);
    let kernel = tftp.join("xcat/genesis.kernel.x86_64");
    assert_eq!(
        std::fs::read(&kernel).ok(),
        std::fs::read(a.join("vmlinuz")).ok()
    );
    let list = common::sh(&[
        "sh",
        "-c",
        &format!(
            "zcat {} | cpio -t 2>/dev/null",
            tftp.join("xcat/genesis.fs.x86_64.gz").display()
        ),
    ]);
    for want in [
        "init",
        "bin/busybox",
        "bin/bmcsetup",
        "usr/bin/ipmitool",
        "lib/modules/virtio_net.ko",
        "lib/modules/ipmi_si.ko",
        "modules.order",
    ] {
        assert!(
            list.lines().any(|l| l == want),
            "{want} missing from genesis:\n{list}"
        );
    }
}

/// End to end: a VM bootherd does not know boots genesis (dynamic address), reports itself, is
/// matched to n5 through a simulated switch (snmpsim; the VM's MAC is in the switch's forwarding
/// table on n5's port), comes back under n5's reserved address and runs n5's chain step, a runcmd
/// that prints a marker on the serial console.
#[test]
fn an_unknown_vm_boots_genesis_is_discovered_and_runs_its_chain() {
    use common::snmpsim::{add_lo_addr, SimSwitch, Snmpsim, Style};
    use common::vm;
    use std::time::Duration;
    common::need(&[("snmpsimd", "snmpsim")]);
    // The switch's MACs are <prefix>:00:00:<n>; the VM takes the one learned on port 7.
    let sw = SimSwitch::new("sw1", Style::Long, [0x52, 0x54, 0x00]);
    let mac = sw.mac_on(7);
    let mac = mac.as_str();
    let a = vm::assets();
    let bh = Bh::new();
    let tftp = vm::tftp_root(&bh);
    let s = |p: &str| a.join(p).display().to_string();
    bh.ok(&[
        "mknb",
        "x86_64",
        "-k",
        &s("vmlinuz"),
        "-m",
        &s("modules"),
        "-b",
        &s("busybox"),
    ]);
    assert!(tftp.join("xcat/genesis.fs.x86_64.gz").is_file());
    for kv in [
        "dhcpinterfaces=br0",
        "defserialport=0",
        "defserialspeed=115200",
    ] {
        let (k, v) = kv.split_once('=').unwrap_or_default();
        bh.ok(&["chtab", &format!("key={k}"), &format!("site.value={v}")]);
    }
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "vmnet",
        "net=10.99.72.0",
        "mask=255.255.255.0",
        "dynamicrange=10.99.72.100-10.99.72.120",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n5",
        "groups=all",
        "ip=10.99.72.5",
        "serialport=0",
        "serialspeed=115200",
    ]);
    bh.ok(&[
        "chtab",
        "node=n5",
        "chain.chain=runcmd=echo BOOTHERD-MARKER-RUNCMD on n5",
    ]);
    // The switch: snmpsim on an address of the server namespace, n5 cabled to its port 7.
    bh.ok(&["chtab", "node=sw1", "hosts.ip=10.98.72.1"]);
    bh.ok(&[
        "chtab",
        "switch=sw1",
        "switches.snmpversion=2c",
        "switches.password=labswitch",
    ]);
    bh.ok(&[
        "tabrestore",
        &bh.file(
            "switch.csv",
            &format!(
                "#node,switch,port,vlan,interface,comments,disable\n\"n5\",\"sw1\",\"{}\",,,,\n",
                sw.port_name(7)
            ),
        ),
    ]);
    let ns = vm::bridge("vg", "10.99.72");
    add_lo_addr(&ns, "10.98.72.1");
    let simdir = tempfile::tempdir().expect("tempdir");
    let mut sim = Snmpsim::start(&ns, simdir.path(), "10.98.72.1", "labswitch", &sw, None);
    sim.wait_ready(&ns, 60);
    let d = Daemon::start(&bh, &ns, &[]);
    let serial = bh.path("serial.txt");
    let (ok, console) = vm::run_until(
        &ns,
        &serial,
        mac,
        768,
        &[],
        "BOOTHERD-MARKER-RUNCMD on n5",
        Duration::from_secs(300),
    );
    assert!(
        ok,
        "the VM did not run n5's chain.\nserial:\n{console}\ndaemon:\n{}",
        d.dump()
    );
    assert!(console.contains("discovered as n5"), "{console}");
    assert!(
        console.contains("10.99.72.5/"),
        "genesis came back under n5's address:\n{console}"
    );
    assert_eq!(bh.ok(&["nodels", "n5", "mac.mac"]), format!("n5: {mac}\n"));
    let ls = bh.ok(&["nodediscoverls"]);
    assert!(
        ls.lines().any(|l| l.contains("n5") && l.contains("switch")),
        "{ls}"
    );
}

/// Genesis's bmcsetup against an OpenIPMI simulator: the node fetches its settings from the
/// appliance (from its own address, in its bmcsetup step), configures LAN and a new admin user
/// with ipmitool, reports bmcready; then `rpower` works with the new credentials.
#[test]
fn bmcsetup_configures_a_simulated_bmc_and_rpower_uses_the_new_user() {
    let sim = common::ipmisim::IpmiSim::start();
    let bh = Bh::new();
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "mgmt",
        "net=10.99.122.0",
        "mask=255.255.255.0",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "bmcnet",
        "net=127.0.0.0",
        "mask=255.0.0.0",
        "gateway=127.0.0.254",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "cn1",
        "groups=all",
        "ip=10.99.122.10",
        "mac=52:54:00:99:22:10",
        "netboot=xnba",
        "mgt=ipmi",
        &format!("bmc={}", sim.bmc()),
    ]);
    bh.ok(&[
        "chtab",
        "node=cn1",
        "ipmi.username=bootherd",
        "ipmi.password=N3wPass1",
    ]);
    bh.ok(&["nodeset", "cn1", "runcmd=bmcsetup"]);
    // Before: the new user does not exist, so power control with it fails.
    let before = bh.run(&["rpower", "cn1", "stat"]);
    assert_eq!(
        before.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&before.stdout)
    );
    let pair = Pair::new("dbm", "10.99.122.1/24");
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.122.10/24", "dev", "bhc0"]);
    let _d = Daemon::start(&bh, &pair.srv, &["--no-dhcp", "--no-tftp"]);
    // The script runs in the node's namespace; its ipmitool reaches the simulator on the host's
    // loopback (a real genesis talks to its own BMC in-band instead).
    let ipmitool = format!(
        "nsenter --net=/proc/{}/ns/net ipmitool -I lanplus -C 3 -H 127.0.0.1 -p {} -U {} -P {} -N 1 -R 3",
        std::process::id(),
        sim.port,
        common::ipmisim::USER,
        common::ipmisim::PASSWORD
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("initrd/bmcsetup");
    let o = pair
        .cli
        .command("sh")
        .arg(&script)
        .env("SERVER", "10.99.122.1")
        .env("HTTPPORT", "80")
        .env("IPMITOOL", &ipmitool)
        .env("BMCSETUP_LOG", "/dev/stderr")
        .output()
        .expect("bmcsetup");
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "bmcsetup failed:\n{log}");
    assert!(log.contains("user bootherd"), "{log}");
    // The simulator now has the user and the address; the appliance heard bmcready.
    assert!(sim.ipmitool(&["user", "list", "1"]).contains("bootherd"));
    let lan = sim.ipmitool(&["lan", "print", "1"]);
    assert!(lan.contains("Subnet Mask             : 255.0.0.0"), "{lan}");
    assert_eq!(
        bh.ok(&["nodels", "cn1", "nodelist.status"]),
        "cn1: bmcready\n"
    );
    assert_eq!(bh.ok(&["rpower", "cn1", "stat"]), "cn1: off\n");
}

/// xCAT's genesis: a gzipped XML findme by UDP from port 301; the answer comes back as `restart`
/// on the machine's TCP port 3001, as xcatd sends it. From an unprivileged port it is ignored.
#[test]
fn xcat_udp_findme_is_placed_and_answered_on_port_3001() {
    let (bh, pair, d) = lab("dsu");
    assert!(d.wait_for("findme (UDP) listening", 5), "{}", d.dump());
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n7",
        "groups=all",
        "ip=10.99.121.7",
    ]);
    bh.ok(&["chtab", "node=n7", "vpd.mtm=8335-GTB", "vpd.serial=7800ABC"]);
    let py = bh.file(
        "findme.py",
        r#"import gzip, socket, sys
sport = int(sys.argv[1])
xml = ("<xcatrequest><command>findme</command><sequential>1</sequential><arch>ppc64le</arch>"
       "<mtm>8335-GTB</mtm><serial>7800ABC</serial><uuid>" + sys.argv[2] + "</uuid>"
       "<mac>mlx5_core|enP1p1s0|98:be:94:00:00:07|10.99.121.52/24</mac></xcatrequest>")
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("10.99.121.52", 3001)); l.listen(1); l.settimeout(4)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("10.99.121.52", sport))
u.sendto(gzip.compress(xml.encode()), ("10.99.121.1", 3001))
try:
    c, _ = l.accept(); print(c.recv(100).decode().strip())
except socket.timeout:
    print("no answer")
"#,
    );
    let run = |sport: &str, uuid: &str| {
        let o = pair
            .cli
            .command("/usr/bin/python3")
            .args([&py, sport, uuid])
            .output()
            .expect("python");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    // From an unprivileged port: ignored, nothing recorded.
    assert_eq!(run("40000", "AAAA-1"), "no answer");
    assert!(bh
        .ok(&["nodediscoverls"])
        .starts_with("Discovered 0 nodes."));
    assert_eq!(run("301", "BBBB-2"), "restart");
    assert_eq!(
        bh.ok(&["nodels", "n7", "mac.mac", "nodetype.arch", "noderes.netboot"]),
        "n7: mac.mac: 98:be:94:00:00:07\nn7: nodetype.arch: ppc64le\nn7: noderes.netboot: petitboot\n"
    );
}

/// Machines reporting at the same moment never get the same node or address.
#[test]
fn concurrent_machines_get_distinct_nodes_and_addresses() {
    let (bh, pair, _d) = lab("dsc");
    bh.ok(&[
        "nodediscoverstart",
        "noderange=cn[01-30]",
        "hostiprange=10.99.121.[100-150]",
    ]);
    let dir = bh.path("reports");
    std::fs::create_dir_all(&dir).expect("dir");
    for i in 0..20 {
        std::fs::write(
            dir.join(format!("{i}")),
            format!("uuid=c0000000-0000-4000-8000-0000000000{i:02}\nmac=virtio_net|eth0|52:54:00:aa:00:{i:02x}|10.99.121.50/24\n"),
        )
        .expect("report");
    }
    let o = pair
        .cli
        .command("sh")
        .arg("-c")
        .arg(format!(
            "ls {d} | xargs -P 20 -I{{}} curl -s --data-binary @{d}/{{}} http://{SRV}/xcat/discovery/findme",
            d = dir.display()
        ))
        .output()
        .expect("curl");
    let out = String::from_utf8_lossy(&o.stdout);
    let mut nodes: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("restart "))
        .collect();
    assert_eq!(nodes.len(), 20, "{out}");
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes.len(), 20, "a node was given twice:\n{out}");
    let ips = bh.ok(&["nodels", "all", "hosts.ip"]);
    let mut v: Vec<&str> = ips
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(v.len(), 20, "{ips}");
    v.sort();
    v.dedup();
    assert_eq!(v.len(), 20, "an address was given twice:\n{ips}");
}

/// Switch-port matching in a findme: the machine's MAC sits on n5's port of a simulated switch
/// (snmpsim, v2c) → n5; a MAC on a port no node owns → undefined, with the place it was seen.
#[test]
fn a_findme_is_matched_by_the_switch_port_its_mac_is_on() {
    use common::snmpsim::{add_lo_addr, SimSwitch, Snmpsim, Style};
    common::need(&[("snmpsimd", "snmpsim")]);
    let (bh, pair, _d) = lab("dss");
    let sw = SimSwitch::new("sw1", Style::Short, [0x52, 0x54, 0x0a]);
    add_lo_addr(&pair.srv, "10.98.9.1");
    let simdir = tempfile::tempdir().expect("tempdir");
    let mut sim = Snmpsim::start(&pair.srv, simdir.path(), "10.98.9.1", "commA", &sw, None);
    sim.wait_ready(&pair.srv, 60);
    bh.ok(&["chtab", "node=sw1", "hosts.ip=10.98.9.1"]);
    bh.ok(&[
        "chtab",
        "switch=sw1",
        "switches.snmpversion=2c",
        "switches.password=commA",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n5",
        "groups=compute,all",
        "ip=10.99.121.5",
    ]);
    bh.ok(&[
        "tabrestore",
        &bh.file(
            "switch.csv",
            &format!(
                "#node,switch,port,vlan,interface,comments,disable\n\"n5\",\"sw1\",\"{}\",,,,\n",
                sw.port_name(7)
            ),
        ),
    ]);
    bh.ok(&["chtab", "node=n5", "chain.chain=runcmd=bmcsetup"]);
    let body = format!("uuid=5a000000-0000-4000-8000-000000000007\narch=x86_64\nmac=virtio_net|eth0|{}|10.99.121.50/24\n", sw.mac_on(7));
    assert_eq!(findme(&pair, "10.99.121.50", &body), "restart n5\n");
    assert_eq!(
        bh.ok(&["nodels", "n5", "mac.mac", "vpd.uuid", "nodelist.status"]),
        format!("n5: mac.mac: {}\nn5: vpd.uuid: 5a000000-0000-4000-8000-000000000007\nn5: nodelist.status: discovered\n", sw.mac_on(7))
    );
    let ls = bh.ok(&["nodediscoverls", "-t", "switch"]);
    assert!(
        ls.contains("5a000000-0000-4000-8000-000000000007") && ls.contains("n5"),
        "{ls}"
    );
    // A MAC on a port nobody owns.
    let other = format!(
        "uuid=5a000000-0000-4000-8000-000000000009\nmac=virtio_net|eth0|{}|10.99.121.51/24\n",
        sw.mac_on(9)
    );
    let ans = findme(&pair, "10.99.121.51", &other);
    assert!(
        ans.starts_with(&format!(
            "undefined MAC {} seen on sw1 port {}; no node has switch sw1 port {}",
            sw.mac_on(9),
            sw.port_name(9),
            sw.port_name(9)
        )),
        "{ans}"
    );
    assert!(bh
        .ok(&["nodediscoverls", "-t", "undef"])
        .contains("5a000000-0000-4000-8000-000000000009"));
}
