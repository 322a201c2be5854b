//! Router advertisements against a real peer, rdisc6 (package ndisc6): on the interface DHCP
//! serves, bootherd answers a router solicitation with an advertisement that configures nothing
//! (router lifetime 0, no prefix, M and O off); `site.routeradvertisements=no` silences it; and
//! with another router advertising on the segment it sends none.

mod common;
use common::{need, sh, Bh, Daemon, Netns, Pair};

use std::time::{Duration, Instant};

fn store(iface: &str, net: &str) -> Bh {
    let bh = Bh::new();
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "ranet",
        &format!("net={net}.0"),
        "mask=255.255.255.0",
    ]);
    bh.ok(&[
        "chtab",
        "key=dhcpinterfaces",
        &format!("site.value={iface}"),
    ]);
    bh
}

/// Turns IPv6 on for `dev` in `ns` (test namespaces start with it off).
fn ipv6_on(ns: &Netns, dev: &str) {
    ns.exec(&[
        "sysctl",
        "-qw",
        &format!("net.ipv6.conf.{dev}.disable_ipv6=0"),
    ]);
}

/// `dev`'s link-local address in `ns` once duplicate address detection is done.
fn link_local(ns: &Netns, dev: &str) -> String {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let out = ns.exec(&["ip", "-6", "addr", "show", "dev", dev, "scope", "link"]);
        if !out.contains("tentative") {
            if let Some(a) = out.split_whitespace().skip_while(|w| *w != "inet6").nth(1) {
                return a.split('/').next().unwrap_or(a).to_string();
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "{dev} has no usable link-local address: {}",
        ns.exec(&["ip", "-6", "addr", "show", "dev", dev])
    );
}

/// rdisc6's report of every advertisement it gets within two seconds of soliciting on `dev`.
fn rdisc6(ns: &Netns, dev: &str) -> String {
    let o = ns
        .command("rdisc6")
        .args(["-n", "-m", "-r", "1", "-w", "2000", dev])
        .output()
        .expect("run rdisc6 (package ndisc6)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The advertisements in rdisc6's report that came from `addr` (each report ends with "from …").
fn from_router(report: &str, addr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for l in report.lines() {
        cur.push_str(l);
        cur.push('\n');
        if let Some(src) = l.trim().strip_prefix("from ") {
            if src.trim() == addr {
                out.push(std::mem::take(&mut cur));
            } else {
                cur.clear();
            }
        }
    }
    out
}

fn field<'a>(ra: &'a str, name: &str) -> Option<&'a str> {
    ra.lines()
        .find(|l| l.trim_start().starts_with(name))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim())
}

#[test]
fn a_solicitation_gets_an_advertisement_that_configures_nothing() {
    need(&[("rdisc6", "ndisc6")]);
    let bh = store("bhs0", "10.99.80");
    let pair = Pair::new("ra", "10.99.80.1/24");
    ipv6_on(&pair.srv, "bhs0");
    ipv6_on(&pair.cli, "bhc0");
    let server = link_local(&pair.srv, "bhs0");
    link_local(&pair.cli, "bhc0");
    let d = Daemon::start(&bh, &pair.srv, &[]);
    assert!(
        d.wait_for("listening for solicitations", 10),
        "router advertisements did not start on bhs0:\n{}",
        d.dump()
    );

    let report = rdisc6(&pair.cli, "bhc0");
    let ras = from_router(&report, &server);
    assert!(
        !ras.is_empty(),
        "no advertisement from bootherd ({server}):\n{report}\ndaemon:\n{}",
        d.dump()
    );
    let ra = &ras[0];
    assert_eq!(
        field(ra, "Router lifetime").and_then(|v| v.split_whitespace().next()),
        Some("0"),
        "{ra}"
    );
    assert_eq!(field(ra, "Stateful address conf."), Some("No"), "{ra}");
    assert_eq!(field(ra, "Stateful other conf."), Some("No"), "{ra}");
    assert!(!ra.contains("Prefix"), "no prefix is advertised: {ra}");
    // The client took no default route from it.
    let routes = pair.cli.exec(&["ip", "-6", "route", "show", "default"]);
    assert!(routes.trim().is_empty(), "default route appeared: {routes}");

    // An IPv6 network on this interface is advertised on-link.
    bh.ok(&[
        "chtab",
        "net=fd00:80::,mask=/64",
        "networks.netname=ra6",
        "networks.mgtifname=bhs0",
    ]);
    assert!(
        d.wait_for("router advertisement settings reloaded", 5),
        "{}",
        d.dump()
    );
    let report = rdisc6(&pair.cli, "bhc0");
    let ras = from_router(&report, &server);
    assert!(
        ras.iter().any(|r| r.contains("fd00:80::/64")),
        "prefix of the networks table advertised:\n{report}"
    );
    assert!(ras
        .iter()
        .all(|r| field(r, "Router lifetime").is_some_and(|v| v.starts_with("0 "))));

    // site.routeradvertisements=no: silence.
    bh.ok(&["chtab", "key=routeradvertisements", "site.value=no"]);
    assert!(d.wait_for("turned off", 5), "{}", d.dump());
    let report = rdisc6(&pair.cli, "bhc0");
    assert!(
        from_router(&report, &server).is_empty(),
        "advertisements after site.routeradvertisements=no:\n{report}"
    );
}

/// Another router on the segment, a raw ICMPv6 socket in Python advertising a default route and
/// a prefix twice a second for at most 30 s.
const ROUTER_PY: &str = r#"
import socket, struct, sys, time
ifindex = socket.if_nametoindex(sys.argv[1])
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
prefix = socket.inet_pton(socket.AF_INET6, 'fd00:81::')
ra = struct.pack('!BBHBBHII', 134, 0, 0, 64, 0, 1800, 0, 0)
ra += struct.pack('!BBBBIII', 3, 4, 64, 0xc0, 86400, 14400, 0) + prefix
end = time.time() + 30
while time.time() < end:
    try:
        s.sendto(ra, ('ff02::1', 0, 0, ifindex))
    except OSError:
        pass
    time.sleep(0.5)
"#;

#[test]
fn with_another_router_on_the_segment_bootherd_sends_none() {
    need(&[("rdisc6", "ndisc6"), ("python3", "python3")]);
    let bh = store("br0", "10.99.81");
    // One segment: bootherd's bridge, a client and another router, each on a veth into it.
    let srv = Netns::new("rbs");
    let cli = Netns::new("rbc");
    let rtr = Netns::new("rbr");
    srv.exec(&[
        "ip",
        "link",
        "add",
        "br0",
        "type",
        "bridge",
        "forward_delay",
        "0",
        "stp_state",
        "0",
    ]);
    ipv6_on(&srv, "br0");
    srv.exec(&["ip", "addr", "add", "10.99.81.1/24", "dev", "br0"]);
    srv.exec(&["ip", "link", "set", "br0", "up"]);
    for (port, peer) in [("p1", &cli), ("p2", &rtr)] {
        sh(&[
            "ip", "-n", &srv.0, "link", "add", port, "type", "veth", "peer", "name", "eth0",
            "netns", &peer.0,
        ]);
        srv.exec(&["ip", "link", "set", port, "master", "br0"]);
        srv.exec(&["ip", "link", "set", port, "up"]);
        ipv6_on(peer, "eth0");
        peer.exec(&["ip", "link", "set", "eth0", "up"]);
    }
    let server = link_local(&srv, "br0");
    link_local(&cli, "eth0");
    let router = link_local(&rtr, "eth0");
    let script = bh.file("router.py", ROUTER_PY);
    let mut other = rtr
        .command("python3")
        .args([script.as_str(), "eth0"])
        .spawn()
        .expect("start the other router");
    std::thread::sleep(Duration::from_secs(1));

    let d = Daemon::start(&bh, &srv, &[]);
    let noticed = d.wait_for("another router advertises", 10);
    let report = rdisc6(&cli, "eth0");
    let _ = other.kill();
    let _ = other.wait();
    assert!(
        noticed,
        "bootherd did not log the other router:\n{}",
        d.dump()
    );
    assert!(
        d.dump().contains(&router),
        "the log names the other router ({router}):\n{}",
        d.dump()
    );
    assert!(
        !from_router(&report, &router).is_empty(),
        "the client hears the other router:\n{report}"
    );
    assert!(
        from_router(&report, &server).is_empty(),
        "bootherd ({server}) advertised although another router does:\n{report}\ndaemon:\n{}",
        d.dump()
    );
    // Logged once, however many advertisements the other router sent.
    let times = d
        .log
        .lock()
        .map(|l| {
            l.iter()
                .filter(|x| x.contains("another router advertises"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(times, 1, "{}", d.dump());
}
