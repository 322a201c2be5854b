//! Service nodes: two `bootherd serve` appliances (sn1, sn2) in two namespaces on one bridge, one
//! PostgreSQL store (a throwaway cluster this test starts), the test's own DHCP client on the
//! bridge. The management node is the test's commands (site.master names an address no daemon
//! holds).
//!
//! What a user of xCAT's service-node pools would check: a node of the pool `sn1,sn2` gets its
//! lease and boot file from either, each naming itself as next-server; with one appliance gone
//! the other answers alone; a node of one appliance only, or of the management node, is not
//! answered by the others; 200 unknown clients spread over both never get one address twice and
//! every lease is in the store; a change on the management node is in both appliances' answers
//! at once; `bootherd status` and `lsxcatd -a` show who is alive; a QEMU VM of the pool PXE-boots
//! from either appliance, and from the other when the one that served it is gone.

mod common;
use common::pg::PgCluster;
use common::{in_netns, sh, Bh, Daemon, Netns};

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use bootherd::dhcp::packet::{opt, MessageType, Packet};

const NET: &str = "10.99.91";
const SN1: Ipv4Addr = Ipv4Addr::new(10, 99, 91, 11);
const SN2: Ipv4Addr = Ipv4Addr::new(10, 99, 91, 12);
/// The client side of the bridge (for HTTP to the appliances).
const CLIENT: &str = "10.99.91.250";
const IMG: &str = "rhels9.4-x86_64-install-compute";
const POOL_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x91, 0x00, 0x50];
const SN1_ONLY_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x91, 0x00, 0x51];
const MN_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x91, 0x00, 0x52];

/// The store, the bridge and the two appliances' namespaces.
struct Lab {
    _pg: PgCluster,
    bh: Bh,
    sw: Netns,
    ns: [Netns; 2],
}

fn mac_str(m: [u8; 6]) -> String {
    bootherd::dhcp::packet::hex_joined(&m, Some(':'))
}

impl Lab {
    /// `range`: the network's dynamic range.
    fn new(tag: &str, range: &str) -> Lab {
        let pg = PgCluster::start();
        let mut bh = Bh::new();
        bh.db = pg.socket_url("bootherd");
        let tftp = bh.path("tftpboot");
        let d = tftp.join(format!("xcat/osimage/{IMG}"));
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join("vmlinuz"), b"k").expect("kernel");
        std::fs::write(d.join("initrd.img"), b"i").expect("initrd");
        for (k, v) in [
            ("tftpdir", tftp.display().to_string()),
            ("installdir", bh.path("install").display().to_string()),
            // The management node: not running here; the test's commands are its admin.
            ("master", format!("{NET}.1")),
        ] {
            bh.ok(&["chtab", &format!("key={k}"), &format!("site.value={v}")]);
        }
        bh.ok(&[
            "mkdef",
            "-t",
            "osimage",
            "-o",
            IMG,
            "imagetype=linux",
            "provmethod=install",
            "osvers=rhels9.4",
            "osarch=x86_64",
            "profile=compute",
        ]);
        bh.ok(&[
            "mkdef",
            "-t",
            "network",
            "-o",
            "lab",
            &format!("net={NET}.0"),
            "mask=255.255.255.0",
            &format!("dynamicrange={range}"),
        ]);
        // The appliances are nodes too (sn2 is found by its address, sn1 is named).
        bh.ok(&[
            "mkdef",
            "-t",
            "node",
            "-o",
            "sn1",
            "groups=service,all",
            &format!("ip={SN1}"),
        ]);
        bh.ok(&[
            "mkdef",
            "-t",
            "node",
            "-o",
            "sn2",
            "groups=service,all",
            &format!("ip={SN2}"),
        ]);
        for (node, mac, ip, sn, xm) in [
            ("pn", POOL_MAC, 50, "sn1,sn2", ""),
            ("one", SN1_ONLY_MAC, 51, "sn1", "sn1"),
            ("mnn", MN_MAC, 52, "", ""),
        ] {
            bh.ok(&[
                "mkdef",
                "-t",
                "node",
                "-o",
                node,
                "groups=compute,all",
                &format!("mac={}", mac_str(mac)),
                &format!("ip={NET}.{ip}"),
                "netboot=xnba",
                &format!("servicenode={sn}"),
                &format!("xcatmaster={xm}"),
            ]);
        }
        bh.ok(&["nodeset", "pn", &format!("osimage={IMG}")]);
        // The segment: a bridge in the client's namespace, one veth into each appliance's.
        let sw = Netns::new(&format!("{tag}w"));
        sw.exec(&[
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
        sw.exec(&["ip", "addr", "add", &format!("{CLIENT}/24"), "dev", "br0"]);
        sw.exec(&["ip", "link", "set", "br0", "up"]);
        let ns = [
            Netns::new(&format!("{tag}1")),
            Netns::new(&format!("{tag}2")),
        ];
        for (i, (n, addr)) in ns.iter().zip([SN1, SN2]).enumerate() {
            let port = format!("p{}", i + 1);
            sh(&[
                "ip", "-n", &sw.0, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &n.0,
            ]);
            sw.exec(&["ip", "link", "set", &port, "master", "br0"]);
            sw.exec(&["ip", "link", "set", &port, "up"]);
            n.exec(&["ip", "addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
            n.exec(&["ip", "link", "set", "eth0", "up"]);
        }
        Lab {
            _pg: pg,
            bh,
            sw,
            ns,
        }
    }

    /// `bootherd serve` as sn1 (named on the command line) or sn2 (found by its address).
    fn serve(&self, which: usize) -> Daemon {
        self.serve_on(which, &self.bh)
    }

    /// [`Lab::serve`] on `bh`'s store URL (another role).
    fn serve_on(&self, which: usize, bh: &Bh) -> Daemon {
        let mut args = vec![
            "--no-nfs",
            "--no-rest",
            "--no-dns",
            "--no-xcatd",
            "--heartbeat",
            "1",
        ];
        if which == 0 {
            args.extend(["--name", "sn1"]);
        }
        let d = Daemon::start(bh, &self.ns[which], &args);
        assert!(d.wait_for("DHCP listening", 10), "{}", d.dump());
        d
    }
}

/// The test's DHCP client: port 68 on the bridge, every reply broadcast back.
struct Client {
    sock: UdpSocket,
    xid: u32,
}

/// A reply as the client saw it.
#[derive(Debug, Clone)]
struct Reply {
    mtype: MessageType,
    server: Ipv4Addr,
    yiaddr: Ipv4Addr,
    siaddr: Ipv4Addr,
    file: String,
    mac: [u8; 6],
    xid: u32,
}

impl Client {
    fn new() -> Client {
        let sock = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .expect("socket");
        sock.set_reuse_address(true).expect("reuse");
        sock.set_broadcast(true).expect("broadcast");
        sock.bind_device(Some(b"br0")).expect("bind to br0");
        sock.bind(&SocketAddr::from(([0, 0, 0, 0], 68)).into())
            .expect("bind port 68");
        let sock: UdpSocket = sock.into();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        Client {
            sock,
            xid: 0x9100_0000,
        }
    }

    /// Sends a DISCOVER (PXE firmware, BIOS) or a REQUEST; returns its xid.
    fn send(&mut self, mac: [u8; 6], mtype: MessageType, req: Option<(Ipv4Addr, Ipv4Addr)>) -> u32 {
        self.xid += 1;
        let mut chaddr = [0u8; 16];
        chaddr[..6].copy_from_slice(&mac);
        let mut p = Packet {
            op: 1,
            xid: self.xid,
            flags: 0x8000,
            chaddr,
            ..Packet::default()
        };
        p.set(opt::MESSAGE_TYPE, vec![mtype as u8]);
        p.set(
            opt::VENDOR_CLASS,
            b"PXEClient:Arch:00000:UNDI:002001".to_vec(),
        );
        p.set(opt::CLIENT_ARCH, vec![0, 0]);
        if let Some((server, ip)) = req {
            p.set_ip(opt::SERVER_ID, server);
            p.set_ip(opt::REQUESTED_IP, ip);
        }
        self.sock
            .send_to(&p.encode(), ("255.255.255.255", 67))
            .expect("send");
        self.xid
    }

    /// Every reply that arrives within `wait`.
    fn collect(&self, wait: Duration) -> Vec<Reply> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        let mut b = vec![0u8; 1500];
        while Instant::now() < deadline {
            let Ok((n, _)) = self.sock.recv_from(&mut b) else {
                continue;
            };
            let Ok(p) = Packet::decode(&b[..n]) else {
                continue;
            };
            let (Some(mtype), Some(server)) = (p.message_type(), p.get_ip(opt::SERVER_ID)) else {
                continue;
            };
            if p.op != 2 {
                continue;
            }
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&p.chaddr[..6]);
            out.push(Reply {
                mtype,
                server,
                yiaddr: p.yiaddr,
                siaddr: p.siaddr,
                file: String::from_utf8_lossy(&p.file)
                    .trim_end_matches('\0')
                    .to_string(),
                mac,
                xid: p.xid,
            });
        }
        out
    }

    /// DISCOVER for `mac`: the OFFERs that came within `wait`, by server.
    fn offers(&mut self, mac: [u8; 6], wait: Duration) -> HashMap<Ipv4Addr, Reply> {
        let xid = self.send(mac, MessageType::Discover, None);
        self.collect(wait)
            .into_iter()
            .filter(|r| r.xid == xid && r.mtype == MessageType::Offer)
            .map(|r| (r.server, r))
            .collect()
    }

    /// REQUEST `ip` from `server`: its ACK or NAK.
    fn request(&mut self, mac: [u8; 6], server: Ipv4Addr, ip: Ipv4Addr) -> Option<Reply> {
        let xid = self.send(mac, MessageType::Request, Some((server, ip)));
        self.collect(Duration::from_millis(1500))
            .into_iter()
            .find(|r| r.xid == xid && matches!(r.mtype, MessageType::Ack | MessageType::Nak))
    }
}

/// GET `path` from `server` (HTTP/1.1, one request per connection); (status, body).
fn http_get(server: Ipv4Addr, path: &str) -> (u16, String) {
    http_get_from(None, server, path)
}

/// [`http_get`] from source address `from` (a node's callbacks are known by their address).
fn http_get_from(from: Option<Ipv4Addr>, server: Ipv4Addr, path: &str) -> (u16, String) {
    let sock = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .expect("socket");
    if let Some(a) = from {
        sock.bind(&SocketAddr::from((a, 0)).into())
            .expect("bind the source address");
    }
    sock.connect_timeout(
        &SocketAddr::from((server, 80)).into(),
        Duration::from_secs(5),
    )
    .expect("connect to the appliance's HTTP");
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// The `bootherd status` line of appliance `name`.
fn status_of(bh: &Bh, name: &str) -> String {
    let out = bh.ok(&["status"]);
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("{name} is not in bootherd status:\n{out}"))
        .to_string()
}

/// Mac → (server, address) once ACKed.
type Bound = HashMap<[u8; 6], (Ipv4Addr, Ipv4Addr)>;

/// Binds every client of `macs` (DISCOVER, REQUEST; again from the start for those without an
/// ACK) until all are bound or `limit` passed; (bound, every ACK seen, rounds). Each client takes
/// the offer of "its" appliance (even MACs sn1, odd sn2) when there is one, so both hand out
/// addresses. Runs on the calling thread (in the bridge's namespace).
fn bind_all(macs: &[[u8; 6]], limit: Duration) -> (Bound, Vec<Reply>, usize) {
    let started = Instant::now();
    let mut c = Client::new();
    let mut bound = Bound::new();
    let mut acks: Vec<Reply> = Vec::new();
    let mut rounds = 0;
    while bound.len() < macs.len() && started.elapsed() < limit {
        rounds += 1;
        let mut xids = HashSet::new();
        for m in macs.iter().filter(|m| !bound.contains_key(*m)) {
            xids.insert(c.send(*m, MessageType::Discover, None));
        }
        let replies = c.collect(Duration::from_millis(600));
        let mut choice: HashMap<[u8; 6], Reply> = HashMap::new();
        for r in replies
            .into_iter()
            .filter(|r| r.mtype == MessageType::Offer && xids.contains(&r.xid))
        {
            let want = if r.mac[5] % 2 == 0 { SN1 } else { SN2 };
            let better = choice
                .get(&r.mac)
                .is_none_or(|c| c.server != want && r.server == want);
            if better {
                choice.insert(r.mac, r);
            }
        }
        let mut req = HashSet::new();
        for (m, o) in &choice {
            req.insert(c.send(*m, MessageType::Request, Some((o.server, o.yiaddr))));
        }
        for r in c.collect(Duration::from_millis(800)) {
            if !req.contains(&r.xid) || r.mtype != MessageType::Ack {
                continue;
            }
            acks.push(r.clone());
            bound.insert(r.mac, (r.server, r.yiaddr));
        }
    }
    (bound, acks, rounds)
}

/// Fails when an address was ACKed to two clients; the number of distinct addresses.
fn no_address_twice(acks: &[Reply]) -> usize {
    let mut holder: HashMap<Ipv4Addr, [u8; 6]> = HashMap::new();
    for a in acks {
        if let Some(prev) = holder.insert(a.yiaddr, a.mac) {
            assert_eq!(
                prev,
                a.mac,
                "{} ACKed to {} and to {}",
                a.yiaddr,
                mac_str(prev),
                mac_str(a.mac)
            );
        }
    }
    holder.len()
}

#[test]
fn a_pool_of_two_service_nodes_answers_its_nodes_from_either_and_fails_over() {
    let lab = Lab::new("sp", &format!("{NET}.100-{NET}.150"));
    // The pool's node's own address, for its callbacks (getpostscript).
    lab.sw
        .exec(&["ip", "addr", "add", "10.99.91.50/24", "dev", "br0"]);
    let sn1 = lab.serve(0);
    let sn2 = lab.serve(1);

    // (d) Both are registered and alive; lsxcatd -a lists them after xCAT's lines.
    for (name, addr) in [("sn1", SN1), ("sn2", SN2)] {
        let l = status_of(&lab.bh, name);
        assert!(l.contains(" SN ") && l.contains(" alive "), "{l}");
        assert!(l.contains(&addr.to_string()), "{l}");
    }
    let ls = lab.bh.ok(&["lsxcatd", "-a"]);
    assert!(ls.contains("dbengine=Pg"), "{ls}");
    assert!(
        ls.contains(&format!("appliance=sn1 role=SN alive=yes addresses={SN1}")),
        "{ls}"
    );
    assert!(
        ls.contains(&format!("appliance=sn2 role=SN alive=yes addresses={SN2}")),
        "{ls}"
    );
    let mut sn1_env = lab.bh.cmd(&["lsxcatd", "-t"]);
    sn1_env.env("BOOTHERD_NAME", "sn1");
    let o = sn1_env.output().expect("lsxcatd");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "This is a Service Node\n"
    );

    let (offers, acked, boot_files, posts, only1, mnn, changed) = in_netns(&lab.sw, || {
        let mut c = Client::new();
        // (a) The pool's node: an OFFER from each, each naming itself as next-server.
        let offers = c.offers(POOL_MAC, Duration::from_millis(1500));
        // Its lease from sn2 (the client takes sn2's offer).
        let acked = c.request(POOL_MAC, SN2, Ipv4Addr::new(10, 99, 91, 50));
        // Its boot file from either, over HTTP: the install source is the appliance's own address.
        let boot_files: Vec<(u16, String)> = [SN1, SN2]
            .iter()
            .map(|s| http_get(*s, "/tftpboot/xcat/xnba/nodes/pn"))
            .collect();
        // Its postscripts name the appliance that answers as MASTER (xcatmaster is empty): what
        // the node's runner records as XCATSERVER in its xcatinfo.
        let posts: Vec<(u16, String)> = [SN1, SN2]
            .iter()
            .map(|s| {
                http_get_from(
                    Some(Ipv4Addr::new(10, 99, 91, 50)),
                    *s,
                    "/xcat/node/getpostscript",
                )
            })
            .collect();
        // A node of sn1 alone, and a node of the management node (neither runs it).
        let only1 = c.offers(SN1_ONLY_MAC, Duration::from_millis(1500));
        let mnn = c.offers(MN_MAC, Duration::from_millis(1500));
        // (c) A change on the management node, in both appliances' very next answers.
        let mut changed = Vec::new();
        for (i, nb) in ["pxe", "xnba", "pxe", "xnba", "pxe"].iter().enumerate() {
            let t = Instant::now();
            lab.bh.ok(&["chdef", "pn", &format!("netboot={nb}")]);
            let ret = t.elapsed();
            let want = if *nb == "pxe" {
                "pxelinux.0"
            } else {
                "xcat/xnba.kpxe"
            };
            let o = c.offers(POOL_MAC, Duration::from_millis(1000));
            changed.push((i, want, ret, o));
        }
        (offers, acked, boot_files, posts, only1, mnn, changed)
    });
    assert_eq!(offers.len(), 2, "both appliances offer: {offers:?}");
    for s in [SN1, SN2] {
        let o = &offers[&s];
        assert_eq!(o.yiaddr, Ipv4Addr::new(10, 99, 91, 50), "{o:?}");
        assert_eq!(o.siaddr, s, "{s} names itself as next-server: {o:?}");
        assert_eq!(o.file, "xcat/xnba.kpxe", "{o:?}");
    }
    let acked = acked.expect("an ACK from sn2");
    assert_eq!(
        (acked.mtype, acked.server, acked.siaddr),
        (MessageType::Ack, SN2, SN2),
        "{acked:?}"
    );
    for ((status, body), s) in boot_files.iter().zip([SN1, SN2]) {
        assert_eq!(*status, 200, "{body}");
        assert!(
            body.contains(&format!("xcat/osimage/{IMG}/vmlinuz")),
            "{body}"
        );
        assert!(
            body.contains(&format!("http://{s}")),
            "{s}'s boot file names {s}: {body}"
        );
        let other = if s == SN1 { SN2 } else { SN1 };
        assert!(!body.contains(&other.to_string()), "{body}");
    }
    for ((status, body), s) in posts.iter().zip([SN1, SN2]) {
        assert_eq!(*status, 200, "{body}");
        assert!(
            body.contains(&format!("export MASTER='{s}'\n")),
            "{s}'s mypostscript names {s} as MASTER: {body}"
        );
    }
    assert_eq!(
        only1.keys().copied().collect::<Vec<_>>(),
        vec![SN1],
        "servicenode=sn1, xcatmaster=sn1: sn1 alone answers"
    );
    assert!(
        mnn.is_empty(),
        "a node of the management node is answered by neither service node: {mnn:?}"
    );
    let mut slowest = Duration::ZERO;
    for (i, want, ret, o) in &changed {
        slowest = slowest.max(*ret);
        assert_eq!(o.len(), 2, "round {i}: {o:?}");
        for r in o.values() {
            assert_eq!(
                r.file, *want,
                "round {i}: the change is in {}'s answer",
                r.server
            );
        }
    }
    eprintln!(
        "chdef on the MN → both service nodes answer with it: 5 of 5 rounds, at once (slowest chdef {} ms)",
        slowest.as_millis()
    );

    // One appliance dies: the other answers alone, and status says so.
    sn2.kill9();
    let (offers, acked) = in_netns(&lab.sw, || {
        let mut c = Client::new();
        let offers = c.offers(POOL_MAC, Duration::from_millis(1500));
        let acked = c.request(POOL_MAC, SN1, Ipv4Addr::new(10, 99, 91, 50));
        (offers, acked)
    });
    assert_eq!(
        offers.keys().copied().collect::<Vec<_>>(),
        vec![SN1],
        "{offers:?}"
    );
    let acked = acked.expect("an ACK from sn1");
    assert_eq!((acked.mtype, acked.siaddr), (MessageType::Ack, SN1));
    let started = Instant::now();
    let gone = loop {
        let l = status_of(&lab.bh, "sn2");
        if l.contains("not-alive") {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "sn2 still alive 8 s after it was killed: {l}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "sn2 killed → bootherd status says not-alive after {} ms",
        gone.as_millis()
    );
    assert!(status_of(&lab.bh, "sn1").contains(" alive "));
    // A clean stop says stopped at once.
    let code = sn1.stop();
    assert!(code.success(), "{code:?}");
    assert!(status_of(&lab.bh, "sn1").contains("stopped"));
    let ls = lab.bh.ok(&["lsxcatd", "-a"]);
    assert!(ls.contains("appliance=sn2 role=SN alive=no"), "{ls}");
}

#[test]
fn two_hundred_unknown_clients_over_two_appliances_never_share_an_address() {
    const N: usize = 200;
    // 220 addresses for 200 clients: the two appliances' picks meet.
    let lab = Lab::new("su", &format!("{NET}.20-{NET}.239"));
    let sn1 = lab.serve(0);
    let sn2 = lab.serve(1);
    let macs: Vec<[u8; 6]> = (0..N)
        .map(|i| [0x52, 0x54, 0x01, 0x91, (i >> 8) as u8, i as u8])
        .collect();
    let started = Instant::now();
    let (bound, acks, rounds) = in_netns(&lab.sw, || bind_all(&macs, Duration::from_secs(60)));
    let took = started.elapsed();
    assert_eq!(
        bound.len(),
        N,
        "every client bound ({} of {N} after {rounds} rounds)\nsn1:\n{}\nsn2:\n{}",
        bound.len(),
        sn1.dump(),
        sn2.dump()
    );
    // Promptly: a refused commit makes the appliance learn what the other gave out, so a
    // client is not walked through the other's addresses one refusal (one round) at a time.
    assert!(
        rounds <= 10,
        "bound, but only after {rounds} rounds\nsn1:\n{}",
        sn1.dump()
    );
    // No address ACKed to two clients, by either appliance.
    let addresses = no_address_twice(&acks);
    let by1 = bound.values().filter(|(s, _)| *s == SN1).count();
    let by2 = bound.values().filter(|(s, _)| *s == SN2).count();
    assert!(
        by1 > 50 && by2 > 50,
        "spread over both: sn1 {by1}, sn2 {by2}"
    );
    // Every lease is in the store, with the address the client was ACKed.
    let dump = lab.bh.ok(&["tabdump", "dhcpleases"]);
    for (m, (_, ip)) in &bound {
        let row = format!("\"{ip}\",\"{}\"", mac_str(*m));
        assert!(
            dump.contains(&row),
            "{row} missing from dhcpleases:\n{dump}"
        );
    }
    let refused: usize = [&sn1, &sn2]
        .iter()
        .map(|d| d.dump().matches("another appliance gave it to").count())
        .sum();
    eprintln!(
        "{N} unknown clients over two appliances: all bound in {:.1} s ({rounds} rounds), sn1 {by1}, sn2 {by2}, {} addresses, none twice; conflicts refused by the store (logged, throttled): {refused}",
        took.as_secs_f64(),
        addresses
    );
}

#[test]
fn a_service_node_runs_with_the_restricted_role_of_contrib() {
    let lab = Lab::new("sr", &format!("{NET}.100-{NET}.150"));
    // The role of contrib/postgresql/servicenode-role.sql, as the README says to make it.
    let sql = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib/postgresql/servicenode-role.sql");
    lab._pg
        .psql_file("bootherd", &sql, &[("snpw", "sn-secret")]);
    let mut sn = Bh::new();
    sn.db = lab._pg.socket_url_as("bootherd_sn", "bootherd");
    let sn1 = lab.serve_on(0, &sn);
    // It registers, answers its pool's node and records the lease.
    let l = status_of(&lab.bh, "sn1");
    assert!(l.contains(" alive "), "{l}");
    let acked = in_netns(&lab.sw, || {
        let mut c = Client::new();
        let offers = c.offers(POOL_MAC, Duration::from_millis(1500));
        let o = offers.get(&SN1).cloned();
        o.and_then(|o| c.request(POOL_MAC, SN1, o.yiaddr))
    });
    let acked = acked.unwrap_or_else(|| panic!("no ACK from sn1:\n{}", sn1.dump()));
    assert_eq!(
        (acked.mtype, acked.yiaddr),
        (MessageType::Ack, Ipv4Addr::new(10, 99, 91, 50))
    );
    let leases = lab.bh.ok(&["tabdump", "dhcpleases"]);
    assert!(
        leases.contains(&format!("\"10.99.91.50\",\"{}\"", mac_str(POOL_MAC))),
        "{leases}"
    );
    // Site settings and what only the management node defines (hardware management, networks)
    // are not the service node's to change.
    for args in [
        &["chtab", "key=master", "site.value=10.9.9.9"][..],
        &["chdef", "pn", "mgt=ipmi"],
        &[
            "mkdef",
            "-t",
            "network",
            "-o",
            "x",
            "net=10.9.9.0",
            "mask=255.255.255.0",
        ],
    ] {
        let o = sn.run(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("permission denied"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        lab.bh.ok(&["gettab", "key=master", "site.value"]),
        format!("{NET}.1\n")
    );
    assert!(!lab
        .bh
        .ok(&["lsdef", "pn", "-i", "mgt"])
        .contains("mgt=ipmi"));
    // Its clean stop is recorded too.
    assert!(sn1.stop().success());
    assert!(status_of(&lab.bh, "sn1").contains("stopped"));
}

#[test]
fn both_appliances_ride_out_a_postgresql_restart_under_load() {
    const N: usize = 80;
    let lab = Lab::new("sg", &format!("{NET}.100-{NET}.199"));
    let sn1 = lab.serve(0);
    let sn2 = lab.serve(1);
    let macs: Vec<[u8; 6]> = (0..N)
        .map(|i| [0x52, 0x54, 0x02, 0x91, 0, i as u8])
        .collect();
    // Clients keep asking while the server restarts under them (pg_ctl restart -m fast: every
    // connection cut).
    let started = Instant::now();
    let (bound, acks, rounds) = std::thread::scope(|s| {
        let clients = s.spawn(|| in_netns(&lab.sw, || bind_all(&macs, Duration::from_secs(60))));
        std::thread::sleep(Duration::from_millis(300));
        lab._pg.restart();
        clients.join().expect("clients")
    });
    let took = started.elapsed();
    assert_eq!(
        bound.len(),
        N,
        "every client bound ({} of {N} after {rounds} rounds)\nsn1:\n{}\nsn2:\n{}",
        bound.len(),
        sn1.dump(),
        sn2.dump()
    );
    no_address_twice(&acks);
    let dump = lab.bh.ok(&["tabdump", "dhcpleases"]);
    for (m, (_, ip)) in &bound {
        let row = format!("\"{ip}\",\"{}\"", mac_str(*m));
        assert!(
            dump.contains(&row),
            "{row} missing from dhcpleases:\n{dump}"
        );
    }
    // Heartbeats resumed; both follow the store's changes again (a chdef is in both answers).
    let t = Instant::now();
    while !["sn1", "sn2"]
        .iter()
        .all(|n| status_of(&lab.bh, n).contains(" alive "))
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{}",
            lab.bh.ok(&["status"])
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    lab.bh.ok(&["chdef", "pn", "netboot=pxe"]);
    let offers = in_netns(&lab.sw, || {
        Client::new().offers(POOL_MAC, Duration::from_millis(1500))
    });
    assert_eq!(offers.len(), 2, "{offers:?}");
    assert!(
        offers.values().all(|o| o.file == "pxelinux.0"),
        "{offers:?}"
    );
    eprintln!(
        "PostgreSQL restarted under {N} clients over two appliances: all bound in {:.1} s ({rounds} rounds), no address twice, every lease in the store, both alive again",
        took.as_secs_f64()
    );
}

/// An initramfs whose /init prints a marker and the kernel command line, then powers off.
fn marker_initrd(dir: &std::path::Path) -> std::path::PathBuf {
    let a = common::vm::assets();
    let init = dir.join("initrd-root");
    for d in ["bin", "proc", "dev"] {
        std::fs::create_dir_all(init.join(d)).expect("mkdir");
    }
    std::fs::copy(a.join("busybox"), init.join("bin/busybox")).expect("busybox");
    for applet in ["sh", "mount", "cat", "poweroff"] {
        std::os::unix::fs::symlink("busybox", init.join("bin").join(applet)).expect("applet");
    }
    std::fs::write(
        init.join("init"),
        "#!/bin/sh\nmount -t proc proc /proc\nmount -t devtmpfs dev /dev\necho \"SN-MARKER: cmdline $(cat /proc/cmdline)\" > /dev/console\npoweroff -f\n",
    )
    .expect("init");
    let out = dir.join("initrd.img");
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd '{}' && chmod +x init && find . | cpio -o -H newc --quiet | gzip -1 > '{}'",
            init.display(),
            out.display()
        ))
        .status()
        .expect("cpio");
    assert!(st.success(), "building the initramfs failed");
    out
}

/// Boots the pool node's VM (its MAC, iPXE ROM, PXE) on the bridge until its /init prints the
/// command line it was given; returns that line.
fn boot_pool_node(lab: &Lab, serial: &std::path::Path) -> String {
    let mut vm = common::vm::qemu_tap(&lab.sw, "tap0", serial, &mac_str(POOL_MAC), 512, "", &[]);
    let booted = common::vm::wait_serial(serial, "SN-MARKER: cmdline", Duration::from_secs(300));
    let _ = vm.kill();
    let _ = vm.wait();
    let console = String::from_utf8_lossy(&std::fs::read(serial).unwrap_or_default()).into_owned();
    assert!(
        booted,
        "the pool node did not boot to its /init:\n{console}"
    );
    console
        .lines()
        .find_map(|l| l.split("SN-MARKER: cmdline ").nth(1))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_pool_node_vm_pxe_boots_from_either_service_node_and_from_the_other_when_one_is_gone() {
    common::need(&[("qemu-system-x86_64", "qemu-system-x86"), ("cpio", "cpio")]);
    let lab = Lab::new("sv", &format!("{NET}.100-{NET}.199"));
    // Debian's boot loaders, the test kernel and an initramfs that shows its command line.
    let tftp = common::vm::tftp_root(&lab.bh);
    let img = tftp.join(format!("xcat/osimage/{IMG}"));
    std::fs::create_dir_all(&img).expect("mkdir");
    std::fs::copy(common::vm::assets().join("vmlinuz"), img.join("vmlinuz")).expect("kernel");
    let initrd = marker_initrd(&lab.bh.path("vm"));
    std::fs::copy(&initrd, img.join("initrd.img")).expect("initrd");
    lab.bh
        .ok(&["chdef", "pn", "serialport=0", "serialspeed=115200"]);
    lab.bh.ok(&["nodeset", "pn", &format!("osimage={IMG}")]);
    common::vm::add_tap(&lab.sw, "tap0");
    let mut daemons = vec![Some(lab.serve(0)), Some(lab.serve(1))];

    // First boot: whichever appliance answered first served the whole boot and named itself.
    let first = boot_pool_node(&lab, &lab.bh.path("console-1.txt"));
    let by = |addr: Ipv4Addr| first.contains(&format!("http://{addr}:80/install/autoinst/pn"));
    let served = match (by(SN1), by(SN2)) {
        (true, false) => 0,
        (false, true) => 1,
        _ => panic!("the first boot's command line names neither appliance alone: {first}"),
    };
    // That appliance goes away; the node boots again, from the other.
    if let Some(d) = daemons[served].take() {
        d.kill9();
    }
    let other = [SN1, SN2][1 - served];
    let second = boot_pool_node(&lab, &lab.bh.path("console-2.txt"));
    assert!(
        second.contains(&format!("http://{other}:80/install/autoinst/pn")),
        "with sn{} gone the node did not boot from sn{}: {second}",
        served + 1,
        2 - served
    );
    drop(daemons);
}
