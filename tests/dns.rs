//! DNS served by `bootherd serve`, asked with `dig` from a node namespace: nodes, BMCs (hosts
//! otherinterfaces), switches and regex rows forward and reverse, a hosts.ip change answered at
//! once, NXDOMAIN under the domain, other names forwarded to a dnsmasq in another namespace,
//! `makedns -d` and back, and malformed packets dropped.

mod common;
use common::{Bh, Daemon, Netns, Pair};

const SRV: &str = "10.99.90.1";

fn dig(ns: &Netns, args: &[&str]) -> String {
    let o = ns
        .command("dig")
        .args([&format!("@{SRV}"), "+time=2", "+tries=1"])
        .args(args)
        .output()
        .expect("dig (bind9-dnsutils)");
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn short(ns: &Netns, args: &[&str]) -> String {
    let mut a = vec!["+short"];
    a.extend_from_slice(args);
    dig(ns, &a).trim().to_string()
}

#[test]
fn nodes_bmcs_switches_resolve_forward_and_reverse_and_others_are_forwarded() {
    common::need(&[("dig", "bind9-dnsutils"), ("dnsmasq", "dnsmasq")]);
    let bh = Bh::new();
    bh.ok(&["chtab", "key=domain", "site.value=cluster.test"]);
    bh.ok(&[
        "chtab",
        "netname=net90",
        "networks.net=10.99.90.0",
        "networks.mask=255.255.255.0",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n1",
        "groups=all",
        "ip=10.99.90.11",
        "otherinterfaces=n1-bmc:10.99.90.111",
        "hostnames=login",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "sw1",
        "groups=all,switch",
        "nodetype=switch",
        "ip=10.99.90.250",
    ]);
    // A regex row on a group: cn02 is 10.99.90.102.
    bh.ok(&["nodeadd", "cn01-cn03", "groups=compute,all"]);
    bh.ok(&[
        "chtab",
        "node=compute",
        r"hosts.ip=|\D+(\d+)|10.99.90.(100+$1)|",
    ]);
    // An address outside every network is left out, as xCAT's makedns does.
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "far",
        "groups=all",
        "ip=172.31.9.9",
    ]);

    // makedns validates and reports; no forwarders is fine.
    let out = bh.ok(&["makedns", "-n"]);
    assert!(out.contains("Handling n1 in the hosts table."), "{out}");
    assert!(out.contains("Handling n1-bmc in the hosts table."), "{out}");
    assert!(out.contains("Handling cn02 in the hosts table."), "{out}");
    assert!(
        out.contains("Ignoring host far, it does not belong to any nets defined in networks table"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("DNS setup is completed"), "{out}");

    let pair = Pair::new("dn", &format!("{SRV}/24"));
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.90.2/24", "dev", "bhc0"]);
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.90.53/24", "dev", "bhc0"]);
    // The site's upstream name server: a dnsmasq that knows one name (192.0.2.0/24 is the
    // documentation range: nothing is ever sent there).
    let pid = bh.path("dnsmasq.pid");
    pair.cli.exec(&[
        "dnsmasq",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--listen-address=10.99.90.53",
        "--port=53",
        "--address=/example.org/192.0.2.80",
        &format!("--pid-file={}", pid.display()),
        "--user=root",
    ]);

    let d = Daemon::start(
        &bh,
        &pair.srv,
        &["--no-dhcp", "--no-tftp", "--no-http", "--no-nfs"],
    );
    assert!(d.wait_for("DNS listening", 5), "{}", d.dump());
    let c = &pair.cli;

    assert_eq!(short(c, &["n1.cluster.test", "A"]), "10.99.90.11");
    assert_eq!(short(c, &["-x", "10.99.90.11"]), "n1.cluster.test.");
    assert_eq!(short(c, &["n1-bmc.cluster.test"]), "10.99.90.111");
    assert_eq!(short(c, &["-x", "10.99.90.111"]), "n1-bmc.cluster.test.");
    assert_eq!(short(c, &["sw1.cluster.test"]), "10.99.90.250");
    assert_eq!(short(c, &["-x", "10.99.90.250"]), "sw1.cluster.test.");
    assert_eq!(short(c, &["cn02.cluster.test"]), "10.99.90.102");
    assert_eq!(short(c, &["-x", "10.99.90.103"]), "cn03.cluster.test.");
    // hosts.hostnames is an alias: a CNAME of the node's name, as xCAT's makedns adds it.
    assert_eq!(
        short(c, &["login.cluster.test"]),
        "n1.cluster.test.\n10.99.90.11"
    );
    // Over TCP too.
    assert_eq!(short(c, &["+tcp", "cn01.cluster.test"]), "10.99.90.101");
    // Authoritative, and NXDOMAIN for a name we do not have.
    let full = dig(c, &["n1.cluster.test"]);
    assert!(
        full.contains("status: NOERROR") && full.contains(" aa"),
        "{full}"
    );
    let nx = dig(c, &["nosuch.cluster.test"]);
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    assert!(nx.contains("SOA"), "negative answers carry the SOA: {nx}");
    let nx = dig(c, &["-x", "10.99.90.77"]);
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    assert!(short(c, &["far.cluster.test"]).is_empty());

    // Without site.forwarders, other names are refused; with it they are forwarded.
    let refused = dig(c, &["www.example.org"]);
    assert!(refused.contains("status: REFUSED"), "{refused}");
    bh.ok(&["chtab", "key=forwarders", "site.value=10.99.90.53"]);
    assert_eq!(short(c, &["www.example.org"]), "192.0.2.80");
    let fw = dig(c, &["www.example.org"]);
    assert!(
        fw.contains(" ra"),
        "forwarded answers say recursion is available: {fw}"
    );

    // A hosts.ip change is answered by the very next question (read your writes).
    let t = std::time::Instant::now();
    bh.ok(&["chdef", "n1", "ip=10.99.90.21"]);
    let after = short(c, &["n1.cluster.test"]);
    let took = t.elapsed();
    assert_eq!(after, "10.99.90.21");
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");
    eprintln!("chdef + first answer with the new address: {took:?}");
    assert_eq!(short(c, &["-x", "10.99.90.21"]), "n1.cluster.test.");
    assert!(short(c, &["-x", "10.99.90.11"]).is_empty());

    // makedns -d withdraws the records; makedns <node> puts them back.
    let out = bh.ok(&["makedns", "-d", "n1"]);
    assert!(out.contains("DNS setup is completed"), "{out}");
    let gone = dig(c, &["n1.cluster.test"]);
    assert!(gone.contains("status: NXDOMAIN"), "{gone}");
    assert!(short(c, &["n1-bmc.cluster.test"]).is_empty());
    bh.ok(&["makedns", "n1"]);
    assert_eq!(short(c, &["n1.cluster.test"]), "10.99.90.21");

    // Garbage gets no answer and does no harm.
    let py = bh.file(
        "garbage.py",
        "import socket,os\nn=0\nfor p in [b'', b'\\x00', b'\\x12\\x34\\x01\\x00\\x00\\x01', os.urandom(40), b'\\xab\\xcd\\x81\\x80'+b'\\x00\\x01'*4+b'\\x01a\\x00\\x00\\x01\\x00\\x01', b'\\x00\\x01\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\xc0\\x0c\\x00\\x01\\x00\\x01']:\n  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(0.5)\n  s.sendto(p,('10.99.90.1',53))\n  try:\n    s.recv(4096); n+=1\n  except socket.timeout:\n    pass\nprint(n)\n",
    );
    let o = c
        .command("/usr/bin/python3")
        .arg(&py)
        .output()
        .expect("python3");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "0",
        "no answers to garbage"
    );
    assert_eq!(short(c, &["n1.cluster.test"]), "10.99.90.21");
    assert!(d.wait_for("dropped", 2), "the drop is logged: {}", d.dump());
}

#[test]
fn makedns_needs_a_domain_and_refuses_external() {
    let bh = Bh::new();
    // A new store may have taken this machine's domain: start without one.
    bh.ok(&["chtab", "-d", "key=domain", "site"]);
    let e = bh.fail(&["makedns"]);
    assert!(e.contains("domain not defined in site table"), "{e}");
    bh.ok(&["chtab", "key=domain", "site.value=cluster.test"]);
    let e = bh.fail(&["makedns", "-e"]);
    assert!(e.contains("not supported"), "{e}");
    let e = bh.fail(&["makedns", "-d"]);
    assert!(
        e.contains("makedns -d without noderange or -a is not supported"),
        "{e}"
    );
}

#[test]
fn a_stub_resolver_on_127_0_0_53_does_not_keep_dns_from_the_nodes() {
    common::need(&[("dig", "bind9-dnsutils")]);
    let bh = Bh::new();
    bh.ok(&["chtab", "key=domain", "site.value=cluster.test"]);
    bh.ok(&[
        "chtab",
        "netname=net91",
        "networks.net=10.99.91.0",
        "networks.mask=255.255.255.0",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n1",
        "groups=all",
        "ip=10.99.91.11",
    ]);
    let pair = Pair::new("ds", "10.99.91.1/24");
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.91.2/24", "dev", "bhc0"]);
    // systemd-resolved's stub listener, as on many management nodes.
    let mut stub = pair
        .srv
        .command("python3")
        .args([
            "-c",
            "import socket,time\nu=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);u.bind(('127.0.0.53',53))\nt=socket.socket();t.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);t.bind(('127.0.0.53',53));t.listen()\ntime.sleep(60)\n",
        ])
        .spawn()
        .expect("python3");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let d = Daemon::start(
        &bh,
        &pair.srv,
        &["--no-dhcp", "--no-tftp", "--no-http", "--no-nfs"],
    );
    assert!(d.wait_for("held on some addresses", 5), "{}", d.dump());
    let out = pair
        .cli
        .command("dig")
        .args([
            "@10.99.91.1",
            "+short",
            "+time=2",
            "+tries=1",
            "n1.cluster.test",
        ])
        .output()
        .expect("dig");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "10.99.91.11");
    let _ = stub.kill();
    let _ = stub.wait();
}

#[test]
fn one_client_cannot_fill_the_forwarders_and_local_names_stay_quick() {
    common::need(&[("dig", "bind9-dnsutils")]);
    let bh = Bh::new();
    bh.ok(&["chtab", "key=domain", "site.value=cluster.test"]);
    bh.ok(&[
        "chtab",
        "netname=net92",
        "networks.net=10.99.92.0",
        "networks.mask=255.255.255.0",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n1",
        "groups=all",
        "ip=10.99.92.11",
    ]);
    // A forwarder that never answers: an address in the test network nobody has.
    bh.ok(&["chtab", "key=forwarders", "site.value=10.99.92.250"]);
    let pair = Pair::new("dl", "10.99.92.1/24");
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.92.2/24", "dev", "bhc0"]);
    let d = Daemon::start(
        &bh,
        &pair.srv,
        &["--no-dhcp", "--no-tftp", "--no-http", "--no-nfs"],
    );
    // 200 questions for outside names at once, from one address.
    let py = bh.file(
        "flood.py",
        "import socket,struct\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor i in range(200):\n  q=struct.pack('>HHHHHH',i,0x0100,1,0,0,0)+b'\\x04host'+bytes([len(str(i))])+str(i).encode()+b'\\x07example\\x03org\\x00'+struct.pack('>HH',1,1)\n  s.sendto(q,('10.99.92.1',53))\nprint('sent')\n",
    );
    let o = pair
        .cli
        .command("python3")
        .arg(&py)
        .output()
        .expect("python3");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "sent");
    assert!(
        d.wait_for(
            "questions at the forwarders (site.dnsperclient); dropped",
            5
        ),
        "{}",
        d.dump()
    );
    // The same client's question for a node is answered at once meanwhile.
    let t = std::time::Instant::now();
    let out = pair
        .cli
        .command("dig")
        .args([
            "@10.99.92.1",
            "+short",
            "+time=2",
            "+tries=1",
            "n1.cluster.test",
        ])
        .output()
        .expect("dig");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "10.99.92.11");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn a_source_over_its_questions_per_second_is_dropped_others_are_answered() {
    common::need(&[("dig", "bind9-dnsutils")]);
    let bh = Bh::new();
    bh.ok(&["chtab", "key=domain", "site.value=cluster.test"]);
    bh.ok(&["chtab", "key=dnsqpsperclient", "site.value=50"]);
    bh.ok(&[
        "chtab",
        "netname=net93",
        "networks.net=10.99.93.0",
        "networks.mask=255.255.255.0",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n1",
        "groups=all",
        "ip=10.99.93.11",
    ]);
    let pair = Pair::new("dq", "10.99.93.1/24");
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.93.2/24", "dev", "bhc0"]);
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.93.3/24", "dev", "bhc0"]);
    let d = Daemon::start(
        &bh,
        &pair.srv,
        &["--no-dhcp", "--no-tftp", "--no-http", "--no-nfs"],
    );
    // 500 questions at once from 10.99.93.2; count the answers within a second.
    let py = bh.file(
        "burst.py",
        "import socket,struct,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('10.99.93.2',0))\nq=lambda i: struct.pack('>HHHHHH',i,0x0100,1,0,0,0)+b'\\x02n1\\x07cluster\\x04test\\x00'+struct.pack('>HH',1,1)\nfor i in range(500): s.sendto(q(i),('10.99.93.1',53))\ns.settimeout(0.3);n=0\nend=time.time()+1\nwhile time.time()<end:\n  try: s.recv(512); n+=1\n  except socket.timeout: break\nprint(n)\n",
    );
    let o = pair
        .cli
        .command("python3")
        .arg(&py)
        .output()
        .expect("python3");
    let answered: usize = String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .unwrap_or(usize::MAX);
    assert!((50..=100).contains(&answered), "{answered} answered of 500");
    assert!(
        d.wait_for("asks more than its questions per second", 5),
        "{}",
        d.dump()
    );
    // Another address is answered at once.
    let out = pair
        .cli
        .command("dig")
        .args([
            "@10.99.93.1",
            "-b",
            "10.99.93.3",
            "+short",
            "+time=2",
            "+tries=1",
            "n1.cluster.test",
        ])
        .output()
        .expect("dig");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "10.99.93.11");
}
