//! DHCP against real clients (ISC dhclient, busybox udhcpc) and a relay, in network namespaces.

mod common;
use common::{udhcpc, Bh, Daemon, Pair};

const NODE_MAC: &str = "52:54:00:99:00:11";
const UNKNOWN_MAC: &str = "52:54:00:99:00:77";

/// A store with the lab network (10.99.10.0/24, dynamic .100-.150) and node n11 at 10.99.10.11.
/// The DISCOVER-flood test measures how the server behaves when it alone saturates a core: it
/// runs alone, the other tests of this file beside each other.
static ALONE: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn beside_others() -> std::sync::RwLockReadGuard<'static, ()> {
    ALONE.read().unwrap_or_else(|e| e.into_inner())
}

fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    ALONE.write().unwrap_or_else(|e| e.into_inner())
}

fn store(netboot: &str) -> Bh {
    let bh = Bh::new();
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "lab",
        "net=10.99.10.0",
        "mask=255.255.255.0",
        "gateway=10.99.10.254",
        "dynamicrange=10.99.10.100-10.99.10.150",
        "domain=lab.example",
        "nameservers=<xcatmaster>",
    ]);
    bh.ok(&["chtab", "key=dhcpinterfaces", "site.value=bhs0"]);
    bh.ok(&["chtab", "key=dhcplease", "site.value=3600"]);
    bh.ok(&[
        "nodeadd",
        "n11",
        "groups=compute,all",
        &format!("mac.mac={NODE_MAC}"),
        "hosts.ip=10.99.10.11",
        &format!("noderes.netboot={netboot}"),
    ]);
    bh
}

/// Runs ISC dhclient once (-1) with a PXE-like config; returns its lease file.
fn dhclient(pair: &Pair, bh: &Bh, conf: &str) -> String {
    let cf = bh.file("dhclient.conf", conf);
    let lf = bh.path("dhclient.leases");
    let pf = bh.path("dhclient.pid");
    let _ = std::fs::remove_file(&lf);
    let o = pair
        .cli
        .command("timeout")
        .args([
            "40",
            "dhclient",
            "-1",
            "-v",
            "-cf",
            &cf,
            "-lf",
            lf.to_str().expect("p"),
            "-pf",
            pf.to_str().expect("p"),
            "-sf",
            "/bin/true",
            "bhc0",
        ])
        .output()
        .expect("run dhclient");
    // dhclient forks after BOUND; stop it so it does not renew in the background.
    if let Ok(pid) = std::fs::read_to_string(&pf) {
        if let Ok(p) = pid.trim().parse::<i32>() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    let leases = std::fs::read_to_string(&lf).unwrap_or_default();
    assert!(
        o.status.success(),
        "dhclient failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        leases
    );
    leases
}

const UEFI_PXE_CONF: &str = "option arch code 93 = unsigned integer 16;\nsend vendor-class-identifier \"PXEClient:Arch:00007:UNDI:003016\";\nsend arch 7;\nrequest subnet-mask, routers, domain-name, domain-name-servers, host-name, bootfile-name;\ntimeout 30;\n";

#[test]
fn known_node_gets_its_reserved_address_and_boot_file_from_dhclient() {
    let _serial = beside_others();
    let bh = store("xnba");
    let pair = Pair::new("dk", "10.99.10.1/24");
    pair.client_mac(NODE_MAC);
    let d = Daemon::start(&bh, &pair.srv, &[]);
    assert!(d.wait_for("DHCP listening", 5), "{}", d.dump());
    let lease = dhclient(&pair, &bh, UEFI_PXE_CONF);
    assert!(lease.contains("fixed-address 10.99.10.11;"), "{lease}");
    assert!(
        lease.contains("filename \"xcat/xnba.efi\";"),
        "UEFI PXE gets xNBA's EFI build: {lease}"
    );
    assert!(lease.contains("option routers 10.99.10.254;"), "{lease}");
    assert!(
        lease.contains("option domain-name-servers 10.99.10.1;"),
        "<xcatmaster> is the server: {lease}"
    );
    assert!(lease.contains("option host-name \"n11\";"), "{lease}");
    assert!(lease.contains("option dhcp-lease-time 3600;"), "{lease}");
    assert!(
        lease.contains("option dhcp-server-identifier 10.99.10.1;"),
        "{lease}"
    );
    // dhclient with a MAC no node has: an address from the dynamic range, and the discovery file.
    pair.client_mac(UNKNOWN_MAC);
    let lease2 = dhclient(&pair, &bh, UEFI_PXE_CONF);
    let fixed = lease2
        .lines()
        .find(|l| l.contains("fixed-address"))
        .unwrap_or("");
    assert!(
        fixed.contains("fixed-address 10.99.10.1") && !fixed.contains("10.99.10.11;"),
        "{lease2}"
    );
    let last: u8 = fixed
        .trim()
        .trim_end_matches(';')
        .rsplit('.')
        .next()
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    assert!((100..=150).contains(&last), "{lease2}");
    assert!(lease2.contains("filename \"xcat/xnba.efi\";"), "{lease2}");
    // The lease is durable and visible as a table.
    let leases = bh.ok(&["tabdump", "dhcpleases"]);
    assert!(
        leases.contains("\"10.99.10.11\",\"52:54:00:99:00:11\""),
        "{leases}"
    );
    assert!(leases.contains("\"n11\""), "{leases}");
}

#[test]
fn unknown_mac_gets_a_dynamic_address_and_the_discovery_file_and_keeps_it_across_restart() {
    let _serial = beside_others();
    let bh = store("xnba");
    let pair = Pair::new("du", "10.99.10.1/24");
    pair.client_mac(UNKNOWN_MAC);
    let d = Daemon::start(&bh, &pair.srv, &[]);
    let env = udhcpc(
        &pair,
        &bh,
        &["-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000"],
    )
    .expect("udhcpc got a lease");
    let ip: std::net::Ipv4Addr = env["ip"].parse().expect("ip");
    assert!(
        (100..=150).contains(&ip.octets()[3]) && ip.octets()[..3] == [10, 99, 10],
        "dynamic range: {ip}"
    );
    assert_eq!(
        env.get("boot_file").map(String::as_str),
        Some("xcat/xnba.kpxe"),
        "{env:?}"
    );
    assert_eq!(env.get("siaddr").map(String::as_str), Some("10.99.10.1"));
    assert_eq!(env.get("subnet").map(String::as_str), Some("255.255.255.0"));
    assert_eq!(env.get("domain").map(String::as_str), Some("lab.example"));

    // Coming back (again and again, after the daemon has seen its own lease writes in the change
    // log) gives the same address: the daemon must not mistake its own writes for an admin's.
    // Within the first quarter of the lease (ISC dhcpd's dhcp-cache-threshold, 25 % by default)
    // the lease is ACKed as stored, with the time it has left, and not written again.
    let starts = |ip: &str| -> String {
        let dump = bh.ok(&["tabdump", "dhcpleases"]);
        let row = dump
            .lines()
            .find(|l| l.starts_with(&format!("\"{ip}\",")))
            .unwrap_or_else(|| panic!("no lease row for {ip}:\n{dump}"));
        row.split(',').nth(5).unwrap_or_default().to_string()
    };
    let first = starts(&env["ip"]);
    let full: u64 = env["lease"].parse().expect("lease time");
    for _ in 0..2 {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let back = udhcpc(&pair, &bh, &[]).expect("lease again");
        assert_eq!(back["ip"], env["ip"], "{}", d.dump());
        let left: u64 = back["lease"].parse().expect("lease time");
        assert!(
            left < full,
            "the time left, not a new lease: {left} of {full}"
        );
    }
    assert_eq!(starts(&env["ip"]), first, "the lease was not written again");
    // With the threshold 0 every ACK writes a new lease.
    bh.ok(&["chtab", "key=dhcpcachethreshold", "site.value=0"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let back = udhcpc(&pair, &bh, &[]).expect("lease again");
    assert_eq!(back["ip"], env["ip"]);
    assert_eq!(back["lease"], env["lease"], "a whole new lease");
    assert_ne!(starts(&env["ip"]), first, "the lease was written again");
    // A restart (clean, then hard) keeps the lease: the same MAC gets the same address.
    assert!(d.stop().success());
    let d = Daemon::start(&bh, &pair.srv, &[]);
    let again = udhcpc(&pair, &bh, &[]).expect("lease after restart");
    assert_eq!(again["ip"], env["ip"]);
    d.kill9();
    let _d = Daemon::start(&bh, &pair.srv, &[]);
    let third = udhcpc(&pair, &bh, &[]).expect("lease after SIGKILL");
    assert_eq!(third["ip"], env["ip"]);
    // Another unknown client gets a different address.
    pair.client_mac("52:54:00:99:00:78");
    let other = udhcpc(&pair, &bh, &[]).expect("second client");
    assert_ne!(other["ip"], env["ip"]);
}

#[test]
fn pxe_boot_files_by_architecture_and_ipxe_detection() {
    let _serial = beside_others();
    let bh = store("xnba");
    let pair = Pair::new("dp", "10.99.10.1/24");
    pair.client_mac(NODE_MAC);
    let _d = Daemon::start(&bh, &pair.srv, &[]);
    // (netboot, option 93 hex, user class, expected file). Expected values are xCAT's statements (reference §5).
    let ipxe_uc = "0x4d:0469505845"; // RFC 3004 user class "iPXE"
    let cases: &[(&str, &str, Option<&str>, &str)] = &[
        ("xnba", "0000", None, "xcat/xnba.kpxe"),
        (
            "xnba",
            "0000",
            Some(ipxe_uc),
            "http://10.99.10.1/tftpboot/xcat/xnba/nodes/n11",
        ),
        ("xnba", "0007", None, "xcat/xnba.efi"),
        ("xnba", "0009", None, "xcat/xnba.efi"),
        (
            "xnba",
            "0007",
            Some(ipxe_uc),
            "http://10.99.10.1/tftpboot/xcat/xnba/nodes/n11.uefi",
        ),
        ("xnba", "000b", None, ""),
        ("pxe", "0000", None, "pxelinux.0"),
        ("pxe", "0007", Some(ipxe_uc), "pxelinux.0"),
        ("grub2", "0007", None, "/boot/grub2/grub2-n11"),
        ("grub2", "000b", None, "/boot/grub2/grub2-n11"),
    ];
    for (netboot, arch, uc, want) in cases {
        bh.ok(&["chdef", "n11", &format!("netboot={netboot}")]);
        // The daemon reloads its view from the change log.
        std::thread::sleep(std::time::Duration::from_millis(600));
        let arch_opt = format!("0x5d:{arch}");
        let mut args = vec!["-x", arch_opt.as_str(), "-O", "175"];
        if let Some(u) = uc {
            args.extend_from_slice(&["-x", u]);
        }
        let env =
            udhcpc(&pair, &bh, &args).unwrap_or_else(|| panic!("no lease for {netboot}/{arch}"));
        assert_eq!(env.get("ip").map(String::as_str), Some("10.99.10.11"));
        assert_eq!(
            env.get("boot_file").map(String::as_str).unwrap_or(""),
            *want,
            "netboot {netboot}, arch {arch}, user class {uc:?}"
        );
        // iPXE is told not to wait for ProxyDHCP offers (encapsulated option 175.176 = 1, iPXE's
        // DHCP_EB_NO_PXEDHCP) when the answer names its boot file; other firmware is not.
        let no_pxedhcp = env.get("opt175").map(String::as_str);
        if uc.is_some() && !want.is_empty() {
            assert_eq!(
                no_pxedhcp,
                Some("b00101"),
                "{netboot}/{arch} to iPXE: {env:?}"
            );
        } else {
            assert_eq!(
                no_pxedhcp, None,
                "{netboot}/{arch}, user class {uc:?}: {env:?}"
            );
        }
    }
}

/// A relay agent (giaddr set, unicast from port 67) written with Python's socket module.
const RELAY_PY: &str = r#"
import socket, struct, sys, time
giaddr, server, mac = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3].replace(':', ''))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((giaddr, 67))
s.settimeout(5)
def msg(mtype, extra=b''):
    h = struct.pack('!BBBBIHH4s4s4s4s', 1, 1, 6, 1, 0xabcdef01, 0, 0, b'\0'*4, b'\0'*4, b'\0'*4, socket.inet_aton(giaddr))
    h += mac + b'\0'*10 + b'\0'*192 + bytes([99, 130, 83, 99]) + bytes([53, 1, mtype]) + extra
    h += bytes([82, 6, 1, 4]) + b'port' + bytes([255])
    return h
s.sendto(msg(1), (server, 67))
data, frm = s.recvfrom(2048)
yiaddr = socket.inet_ntoa(data[16:20])
opts = data[240:]
i, o = 0, {}
while i < len(opts) and opts[i] != 255:
    if opts[i] == 0: i += 1; continue
    o[opts[i]] = opts[i+2:i+2+opts[i+1]]; i += 2 + opts[i+1]
print('offer', yiaddr, frm[0], frm[1], o.get(53, b'?').hex(), o.get(82, b'').hex())
s.sendto(msg(3, bytes([50, 4]) + socket.inet_aton(yiaddr) + bytes([54, 4]) + o[54]), (server, 67))
data, frm = s.recvfrom(2048)
print('ack', socket.inet_ntoa(data[16:20]), data[242])
"#;

#[test]
fn relayed_requests_are_answered_to_the_relay() {
    let _serial = beside_others();
    let bh = Bh::new();
    // The server's own network and the remote one behind the relay.
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "local",
        "net=10.99.20.0",
        "mask=255.255.255.0",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "remote",
        "net=10.99.21.0",
        "mask=255.255.255.0",
        "gateway=10.99.21.1",
        "dynamicrange=10.99.21.50-10.99.21.60",
    ]);
    bh.ok(&["chtab", "key=dhcpinterfaces", "site.value=bhs0"]);
    let pair = Pair::new("dr", "10.99.20.1/24");
    // The relay sits on the client side with an address on the remote network, routed via the link.
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.21.1/24", "dev", "bhc0"]);
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.20.2/24", "dev", "bhc0"]);
    pair.srv
        .exec(&["ip", "route", "add", "10.99.21.0/24", "via", "10.99.20.2"]);
    let _d = Daemon::start(&bh, &pair.srv, &[]);
    let py = bh.file("relay.py", RELAY_PY);
    let o = pair
        .cli
        .command("/usr/bin/python3")
        .args([&py, "10.99.21.1", "10.99.20.1", "52:54:00:99:21:01"])
        .output()
        .expect("python");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "relay got no answer: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        out
    );
    let offer: Vec<&str> = out.lines().next().unwrap_or("").split(' ').collect();
    assert_eq!(
        offer.get(1).map(|s| s.starts_with("10.99.21.")),
        Some(true),
        "address from the relay's network: {out}"
    );
    assert_eq!(
        offer.get(3),
        Some(&"67"),
        "answered from port 67 to the relay: {out}"
    );
    assert_eq!(offer.get(4), Some(&"02"), "an OFFER: {out}");
    assert_eq!(
        offer.get(5),
        Some(&"0104706f7274"),
        "option 82 echoed: {out}"
    );
    assert!(
        out.lines().nth(1).is_some_and(|l| l.ends_with(" 5")),
        "then an ACK: {out}"
    );
}

#[test]
fn no_dynamic_range_means_no_answer_and_one_log_line() {
    let _serial = beside_others();
    let bh = store("xnba");
    bh.ok(&["chdef", "-t", "network", "-o", "lab", "dynamicrange="]);
    let pair = Pair::new("dn", "10.99.10.1/24");
    pair.client_mac(UNKNOWN_MAC);
    let d = Daemon::start(&bh, &pair.srv, &[]);
    assert!(
        udhcpc(&pair, &bh, &[]).is_none(),
        "an unknown MAC without a dynamic range gets nothing"
    );
    assert!(d.wait_for("no dynamicrange", 2), "{}", d.dump());
    let n = d
        .log
        .lock()
        .map(|l| l.iter().filter(|x| x.contains("no dynamicrange")).count())
        .unwrap_or(0);
    assert_eq!(n, 1, "logged once per MAC, not per retry:\n{}", d.dump());
}

/// Many relayed clients at once: prints `ack <mac> <ip>` for every ACK received, as soon as it arrives.
const RELAY_LOAD_PY: &str = r#"
import socket, struct, sys, time
giaddr, server, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((giaddr, 67))
s.settimeout(0.2)
def mac(i): return bytes([0x52, 0x54, 0x01, (i >> 16) & 255, (i >> 8) & 255, i & 255])
def msg(i, mtype, extra=b''):
    h = struct.pack('!BBBBIHH4s4s4s4s', 1, 1, 6, 1, i, 0, 0, b'\0'*4, b'\0'*4, b'\0'*4, socket.inet_aton(giaddr))
    return h + mac(i) + b'\0'*10 + b'\0'*192 + bytes([99, 130, 83, 99, 53, 1, mtype]) + extra + bytes([255])
state, offered = {}, {}
for i in range(1, count + 1):
    s.sendto(msg(i, 1), (server, 67)); state[i] = 'discover'
deadline = time.time() + 30
while time.time() < deadline and any(v != 'done' for v in state.values()):
    try:
        data, _ = s.recvfrom(2048)
    except socket.timeout:
        for i, v in state.items():
            if v == 'discover': s.sendto(msg(i, 1), (server, 67))
            elif v == 'request': s.sendto(msg(i, 3, bytes([50, 4]) + offered[i] + bytes([54, 4]) + socket.inet_aton(server)), (server, 67))
        continue
    xid = struct.unpack('!I', data[4:8])[0]
    yi = data[16:20]
    t = data[242]
    if t == 2 and state.get(xid) == 'discover':
        offered[xid] = yi
        s.sendto(msg(xid, 3, bytes([50, 4]) + yi + bytes([54, 4]) + socket.inet_aton(server)), (server, 67)); state[xid] = 'request'
    elif t == 6 and state.get(xid) == 'request':
        print('nak', mac(xid).hex(':'), socket.inet_ntoa(offered[xid]), file=sys.stderr, flush=True)
        state[xid] = 'discover'
    elif t == 5 and state.get(xid) == 'request':
        state[xid] = 'done'
        print('ack', mac(xid).hex(':'), socket.inet_ntoa(yi), flush=True)
"#;

#[test]
fn sigkill_while_answering_loses_no_acked_lease_and_never_doubles_an_address() {
    let _serial = beside_others();
    let bh = Bh::new();
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "local",
        "net=10.99.30.0",
        "mask=255.255.255.0",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "remote",
        "net=10.99.31.0",
        "mask=255.255.255.0",
        "dynamicrange=10.99.31.10-10.99.31.250",
    ]);
    bh.ok(&["chtab", "key=dhcpinterfaces", "site.value=bhs0"]);
    let pair = Pair::new("dx", "10.99.30.1/24");
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.31.1/24", "dev", "bhc0"]);
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.30.2/24", "dev", "bhc0"]);
    pair.srv
        .exec(&["ip", "route", "add", "10.99.31.0/24", "via", "10.99.30.2"]);
    let d = Daemon::start(&bh, &pair.srv, &[]);
    let py = bh.file("load.py", RELAY_LOAD_PY);
    let mut client = pair
        .cli
        .command("/usr/bin/python3")
        .args([&py, "10.99.31.1", "10.99.30.1", "200"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    let out = client.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    // Kill the server hard once some ACKs are out, while the rest are in flight.
    let mut acked: Vec<(String, String)> = Vec::new();
    while acked.len() < 40 {
        let l = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("ACKs before the kill");
        let f: Vec<&str> = l.split(' ').collect();
        acked.push((f[1].to_string(), f[2].to_string()));
    }
    d.kill9();
    while let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(300)) {
        let f: Vec<&str> = l.split(' ').collect();
        acked.push((f[1].to_string(), f[2].to_string()));
    }
    let _ = client.kill();
    let _ = client.wait();
    // Every ACKed lease is in the store, with the address the client was told.
    let dump = bh.ok(&["tabdump", "dhcpleases"]);
    for (mac, ip) in &acked {
        assert!(
            dump.contains(&format!("\"{ip}\",\"{mac}\"")),
            "ACKed {mac} → {ip} lost after SIGKILL:\n{dump}"
        );
    }
    // No address is held by two MACs.
    let mut seen = std::collections::HashMap::new();
    for line in dump.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if line.contains("\"active\"") {
            assert!(
                seen.insert(f[0].to_string(), f[1].to_string()).is_none(),
                "{} twice",
                f[0]
            );
        }
    }
    // After a restart the same clients get the same addresses back.
    let _d = Daemon::start(&bh, &pair.srv, &[]);
    let o = pair
        .cli
        .command("/usr/bin/python3")
        .args([&py, "10.99.31.1", "10.99.30.1", "200"])
        .output()
        .expect("python");
    let again: std::collections::HashMap<String, String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() == 3).then(|| (f[1].to_string(), f[2].to_string()))
        })
        .collect();
    assert_eq!(
        again.len(),
        200,
        "all 200 clients get leases after the restart"
    );
    for (mac, ip) in &acked {
        assert_eq!(
            again.get(mac),
            Some(ip),
            "{mac} got another address after the restart"
        );
    }
    let distinct: std::collections::HashSet<&String> = again.values().collect();
    assert_eq!(distinct.len(), 200, "no address given to two MACs");
}

/// Malformed datagrams, then a good request: the server drops the bad ones and still answers.
const MALFORMED_PY: &str = r#"
import socket, struct, sys
giaddr, server = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((giaddr, 67))
s.settimeout(5)
def hdr(mac=b'\x52\x54\x00\x99\x40\x01'):
    return struct.pack('!BBBBIHH4s4s4s4s', 1, 1, 6, 1, 77, 0, 0, b'\0'*4, b'\0'*4, b'\0'*4, socket.inet_aton(giaddr)) + mac + b'\0'*10 + b'\0'*192 + bytes([99, 130, 83, 99])
bad = [
    b'', b'\x01', hdr()[:100], hdr()[:239],                         # truncated
    hdr() + bytes([53, 1, 1, 12, 200]) + b'x' * 10,                 # option longer than the packet
    hdr() + bytes([53, 1, 1, 94, 7, 1, 2, 3, 4, 5, 6, 7, 255]),     # option 94 of the wrong length
    hdr() + bytes([53, 1, 1, 93, 1, 0, 255]),                       # option 93 too short
    hdr() + bytes([53, 1, 1]) + bytes([43, 255]) + b'\xff' * 255 + bytes([43, 255]) + b'\xfe' * 255 + bytes([255]),  # huge option 43
    hdr() + bytes([53, 5, 1, 1, 1, 1, 1, 255]),                     # message type of the wrong length
    hdr() + bytes([53, 1, 99, 255]),                                # unknown message type
    struct.pack('!B', 2) + hdr()[1:] + bytes([53, 1, 2, 255]),      # a BOOTREPLY
    bytes(range(256)) * 4,                                          # noise
]
for b in bad:
    s.sendto(b, (server, 67))
s.sendto(hdr() + bytes([53, 1, 1, 255]), (server, 67))
while True:
    data, _ = s.recvfrom(4096)
    if data[4:8] == struct.pack('!I', 77):
        print('offer', socket.inet_ntoa(data[16:20]))
        break
"#;

#[test]
fn malformed_packets_are_dropped_and_the_server_keeps_answering() {
    let _serial = beside_others();
    let bh = Bh::new();
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "local",
        "net=10.99.40.0",
        "mask=255.255.255.0",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "remote",
        "net=10.99.41.0",
        "mask=255.255.255.0",
        "dynamicrange=10.99.41.10-10.99.41.20",
    ]);
    bh.ok(&["chtab", "key=dhcpinterfaces", "site.value=bhs0"]);
    let pair = Pair::new("dm", "10.99.40.1/24");
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.41.1/24", "dev", "bhc0"]);
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.40.2/24", "dev", "bhc0"]);
    pair.srv
        .exec(&["ip", "route", "add", "10.99.41.0/24", "via", "10.99.40.2"]);
    let mut d = Daemon::start(&bh, &pair.srv, &[]);
    let py = bh.file("bad.py", MALFORMED_PY);
    let o = pair
        .cli
        .command("/usr/bin/python3")
        .args([&py, "10.99.41.1", "10.99.40.1"])
        .output()
        .expect("python");
    assert!(
        o.status.success(),
        "no answer after malformed packets: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        d.dump()
    );
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("offer 10.99.41."));
    assert!(d.child_alive(), "the daemon is still running");
}

#[test]
fn makedhcp_creates_the_key_reports_queries_and_drops_leases() {
    let _serial = beside_others();
    let bh = store("xnba");
    bh.ok(&[
        "nodeadd",
        "n12",
        "groups=compute,all",
        "hosts.ip=10.99.10.12",
    ]);
    let pair = Pair::new("dq", "10.99.10.1/24");
    pair.client_mac(NODE_MAC);
    // makedhcp runs on the appliance: in the server namespace, where bhs0 is.
    let on_server = |args: &[&str]| {
        pair.srv
            .command(common::bin())
            .args(args)
            .env("BOOTHERD_DB", &bh.db)
            .output()
            .expect("run")
    };
    // -n: the OMAPI key appears in passwd (base64, as omshell expects); the configuration checks out.
    let o = on_server(&["makedhcp", "-n"]);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let passwd = bh.ok(&["tabdump", "passwd"]);
    let secret = passwd
        .lines()
        .find(|l| l.starts_with("\"omapi\",\"xcat_key\""))
        .expect("omapi key row");
    let b64 = secret
        .split(',')
        .nth(2)
        .expect("password")
        .trim_matches('"');
    assert!(
        b64.len() >= 40
            && b64
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)),
        "{b64}"
    );
    on_server(&["makedhcp", "-n"]);
    assert_eq!(
        bh.ok(&["tabdump", "passwd"]),
        passwd,
        "an existing key is kept"
    );
    // Outside the server's namespace bhs0 does not exist: -n warns and, as xCAT's does on a
    // machine without the interface (a container, a namespace), exits 0.
    let o = bh.run(&["makedhcp", "-n"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("Warning: site.dhcpinterfaces: bhs0 has no IPv4 address"),
        "{e}"
    );
    assert_eq!(o.status.code(), Some(0), "{e}");
    // A node without a MAC gets xCAT's warning; the others are still reported, exit 0.
    let o = bh.run(&["makedhcp", "-a"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("n11: 52:54:00:99:00:11 -> 10.99.10.11 on lab"),
        "{text}"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Warning: Unable to find mac address for n12"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0));

    let d = Daemon::start(&bh, &pair.srv, &[]);
    assert!(udhcpc(&pair, &bh, &[]).is_some());
    let q = bh.ok(&["makedhcp", "-q", "n11"]);
    assert!(q.starts_with("n11: ip-address = 10.99.10.11, hardware-address = 52:54:00:99:00:11, lease = active until "), "{q}");
    assert!(q.trim_end().ends_with("filename = xcat/xnba.kpxe"), "{q}");
    bh.ok(&["makedhcp", "-d", "n11"]);
    assert!(!bh.ok(&["tabdump", "dhcpleases"]).contains("n11"));
    assert!(
        d.wait_for("lease(s) dropped from memory", 3),
        "the daemon forgets the dropped lease:\n{}",
        d.dump()
    );
    // As in xCAT, the host entry is gone: -q lists nothing for n11, and the DHCP server treats
    // its MAC as an unknown client (a dynamic address, not its reserved one).
    assert_eq!(bh.ok(&["makedhcp", "-q", "n11"]), "");
    // No waiting: every DHCP request sees the changes committed before it arrived.
    let unknown = udhcpc(&pair, &bh, &[]).expect("a dynamic lease");
    assert_ne!(unknown["ip"], "10.99.10.11", "{}", d.dump());
    // `makedhcp n11` adds it back: listed again, and it gets its own address.
    let o = bh.ok(&["makedhcp", "n11"]);
    assert!(o.contains("n11: 52:54:00:99:00:11 -> 10.99.10.11"), "{o}");
    assert!(bh
        .ok(&["makedhcp", "-q", "n11"])
        .starts_with("n11: ip-address = 10.99.10.11, hardware-address = 52:54:00:99:00:11"));
    let back = udhcpc(&pair, &bh, &[]).expect("its reserved lease");
    assert_eq!(back["ip"], "10.99.10.11", "{}", d.dump());
}

#[test]
fn omapi_host_objects_in_the_store_take_effect_on_the_next_packet() {
    let _serial = beside_others();
    let bh = store("xnba");
    let pair = Pair::new("do", "10.99.10.1/24");
    pair.client_mac("52:54:00:99:00:33");
    let d = Daemon::start(&bh, &pair.srv, &[]);
    // Unknown at first: a dynamic address.
    let first = udhcpc(&pair, &bh, &["-x", "0x5d:0000"]).expect("dynamic lease");
    assert!(first["ip"].starts_with("10.99.10.1"), "{first:?}");
    // What xCAT's makedhcp would create over OMAPI, written straight into the table.
    let statements = r#"ddns-hostname "h33"; send host-name "h33"; if option user-class-identifier = "xNBA" and option client-architecture = 00:00 { always-broadcast on; filename = "http://10.99.10.1/tftpboot/xcat/xnba/nodes/h33"; } else if option client-architecture = 00:00 { filename = "xcat/xnba.kpxe"; } else { filename = ""; } next-server 10.99.10.5;"#;
    bh.ok(&[
        "chtab",
        "name=h33",
        "omapihosts.hwaddr=52:54:00:99:00:33",
        "omapihosts.hwtype=1",
        "omapihosts.ip=10.99.10.33",
        &format!("omapihosts.statements={statements}"),
    ]);
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert!(d.wait_for("DHCP configuration reloaded", 3), "{}", d.dump());
    let env = udhcpc(&pair, &bh, &["-x", "0x5d:0000"]).expect("lease from the host object");
    assert_eq!(env["ip"], "10.99.10.33", "{}", d.dump());
    assert_eq!(
        env.get("boot_file").map(String::as_str),
        Some("xcat/xnba.kpxe")
    );
    assert_eq!(env.get("siaddr").map(String::as_str), Some("10.99.10.5"));
    assert_eq!(env.get("hostname").map(String::as_str), Some("h33"));
    let ipxe =
        udhcpc(&pair, &bh, &["-x", "0x5d:0000", "-x", "0x4d:0469505845"]).expect("iPXE lease");
    assert_eq!(
        ipxe.get("boot_file").map(String::as_str),
        Some("http://10.99.10.1/tftpboot/xcat/xnba/nodes/h33")
    );
    // deny booting: no answer at all.
    bh.ok(&["chtab", "name=h33", "omapihosts.statements=deny booting;"]);
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert!(udhcpc(&pair, &bh, &[]).is_none());
}

/// A dynamic range that covers the whole subnet never hands out the network and broadcast
/// addresses, the gateway, this server's address or a node's reserved one: on a /29 with the
/// server at .1, the gateway at .2 and a node at .3, three unknown clients get .4, .5 and .6
/// and a fourth gets nothing.
#[test]
fn a_whole_subnet_dynamic_range_leaves_out_the_server_gateway_and_nodes() {
    let _serial = beside_others();
    let bh = Bh::new();
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "tiny",
        "net=10.99.12.0",
        "mask=255.255.255.248",
        "gateway=10.99.12.2",
        "dynamicrange=10.99.12.0-10.99.12.7",
    ]);
    bh.ok(&["chtab", "key=dhcpinterfaces", "site.value=bhs0"]);
    bh.ok(&[
        "nodeadd",
        "t3",
        "groups=all",
        "mac.mac=52:54:00:99:12:03",
        "hosts.ip=10.99.12.3",
    ]);
    let pair = Pair::new("dw", "10.99.12.1/29");
    let d = Daemon::start(&bh, &pair.srv, &[]);
    let mut got = Vec::new();
    for i in 0..4 {
        pair.client_mac(&format!("52:54:00:99:12:{:02x}", 0x40 + i));
        got.push(udhcpc(&pair, &bh, &[]).map(|e| e["ip"].clone()));
    }
    let mut leased: Vec<String> = got.iter().flatten().cloned().collect();
    leased.sort();
    assert_eq!(
        leased,
        ["10.99.12.4", "10.99.12.5", "10.99.12.6"],
        "{got:?}\n{}",
        d.dump()
    );
    assert!(
        d.wait_for(
            "the gateway of 'tiny': address 10.99.12.2 is inside the dynamic range",
            3
        ),
        "the overlap is logged:\n{}",
        d.dump()
    );
}

/// perfdhcp's report: the "drops ratio" and "received packets" of one exchange section
/// ("DISCOVER-OFFER" or "REQUEST-ACK").
fn perfdhcp_section(report: &str, section: &str) -> (f64, u64, u64) {
    let head = format!("***Statistics for: {section}***");
    let body = report
        .split_once(&head)
        .map(|(_, b)| b)
        .unwrap_or_else(|| panic!("no {section} section in perfdhcp's report:\n{report}"));
    let field = |name: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .unwrap_or_else(|| panic!("no '{name}' under {section}:\n{report}"))
            .to_string()
    };
    let ratio: f64 = field("drops ratio:").parse().expect("drops ratio");
    let sent: u64 = field("sent packets:").parse().expect("sent");
    let received: u64 = field("received packets:").parse().expect("received");
    (ratio, sent, received)
}

/// Under a flood of DISCOVERs far beyond what the server can answer (ISC perfdhcp sending
/// DISCOVERs only, from a second relay, sharing one core with the server), clients that were
/// offered an address still get their ACK: the server finishes REQUESTs before taking new
/// DISCOVERs, and says that it is overloaded.
#[test]
fn under_a_discover_flood_offered_clients_still_get_their_ack() {
    let _serial = alone();
    common::need(&[("perfdhcp", "kea-admin"), ("taskset", "util-linux")]);
    let bh = Bh::new();
    for (name, net, mask, extra) in [
        ("link", "10.99.30.0", "255.255.255.0", None),
        (
            "behindrelay",
            "10.99.32.0",
            "255.255.252.0",
            Some("dynamicrange=10.99.32.10-10.99.35.250"),
        ),
    ] {
        let mut a = vec![
            "mkdef".to_string(),
            "-t".into(),
            "network".into(),
            "-o".into(),
            name.into(),
            format!("net={net}"),
            format!("mask={mask}"),
        ];
        if let Some(e) = extra {
            a.push("mgtifname=!remote!".into());
            a.push("gateway=10.99.32.1".into());
            a.push(e.into());
        }
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        bh.ok(&a);
    }
    bh.ok(&["chtab", "key=dhcpinterfaces", "site.value=bhs0"]);
    let pair = Pair::new("df", "10.99.30.1/24");
    // Two relay agents on the client side (perfdhcp binds giaddr:67 as a relay does).
    for a in ["10.99.30.2/24", "10.99.32.1/22", "10.99.32.2/22"] {
        pair.cli.exec(&["ip", "addr", "add", a, "dev", "bhc0"]);
    }
    pair.srv
        .exec(&["ip", "route", "add", "10.99.32.0/22", "via", "10.99.30.2"]);
    let d = Daemon::start(&bh, &pair.srv, &[]);
    assert!(d.wait_for("DHCP listening", 5), "{}", d.dump());
    // The server on one core, perfdhcp on another (when there is one): the flood comes as fast as
    // perfdhcp can send, which the server (logging every packet, as tests run it) can read but not
    // answer. The flood's MACs (perfdhcp's default base) are not the measured clients' (-b).
    let pid = d.child.id().to_string();
    let gen_cpu = if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        "1"
    } else {
        "0"
    };
    common::sh(&["taskset", "-a", "-p", "-c", "0", &pid]);
    let flood = pair
        .cli
        .command("taskset")
        .args([
            "-c",
            gen_cpu,
            "perfdhcp",
            "-4",
            "-i",
            "-R",
            "500",
            "-r",
            "200000",
            "-p",
            "6",
            "-l",
            "10.99.32.2",
            "10.99.30.1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the perfdhcp flood");
    std::thread::sleep(std::time::Duration::from_millis(800));
    // An ACK waits for its lease's fsync, which another process's heavy writing can hold up for
    // seconds on a shared disk: a REQUEST counts as lost only after 10 s (-d, second value), and
    // perfdhcp waits up to 5 s after its 4 s for answers still on their way (-W). What is checked
    // is that every REQUEST is answered, not how fast the disk is.
    let o = pair
        .cli
        .command("taskset")
        .args([
            "-c",
            gen_cpu,
            "perfdhcp",
            "-4",
            "-b",
            "mac=02:00:00:99:30:00",
            "-R",
            "100",
            "-r",
            "100",
            "-p",
            "4",
            "-W",
            "5000000",
            "-d",
            "2",
            "-d",
            "10",
            "-l",
            "10.99.32.1",
            "10.99.30.1",
        ])
        .output()
        .expect("run perfdhcp");
    let flood = flood.wait_with_output().expect("flood");
    let report = String::from_utf8_lossy(&o.stdout).to_string();
    let flood_report = String::from_utf8_lossy(&flood.stdout).to_string();
    let (_, flood_sent, _) = perfdhcp_section(&flood_report, "DISCOVER-OFFER");
    let (_, _, offered) = perfdhcp_section(&report, "DISCOVER-OFFER");
    let (req_drops, requests, acked) = perfdhcp_section(&report, "REQUEST-ACK");
    assert!(
        d.log
            .lock()
            .map(|l| l.iter().any(|x| x.contains("overloaded")))
            .unwrap_or(false),
        "the flood ({flood_sent} DISCOVERs) did not overload the server, so this test shows nothing:\n{flood_report}"
    );
    assert!(
        offered >= 20 && requests >= 20,
        "too few of the measured clients were offered an address under the flood ({offered}):\n{report}"
    );
    assert!(
        req_drops <= 2.0 && acked + 1 >= requests,
        "REQUESTs went unanswered under the DISCOVER flood ({acked} ACKs for {requests} REQUESTs, {req_drops} % dropped):\n{report}\ndaemon warnings:\n{}",
        d.log
            .lock()
            .map(|l| l
                .iter()
                .filter(|x| x.contains("WARN") || x.contains("ERROR"))
                .cloned()
                .collect::<Vec<_>>()
                .join("\n"))
            .unwrap_or_default()
    );
}
