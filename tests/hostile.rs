//! Hostile clients (issue #20), each reproduced against `bootherd serve` in a server namespace
//! from a client namespace holding a node's address and a stranger's: forged DHCPDECLINEs, a
//! public file in a private directory (curl, tftp-hpa), oversized request heads, one address
//! flooding every service while a node keeps being served, a random-MAC DISCOVER flood, and
//! findme floods and forgeries.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::{in_netns, need, plain, rss_kib, Bh, Daemon, Pair};

/// Raises this process's soft descriptor limit to the hard one (floods hold thousands).
fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// A TCP connection from `src` (an address of the calling thread's namespace) to `dst:port`.
fn connect_from(src: &str, dst: &str, port: u16) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    let from: SocketAddr = format!("{src}:0").parse().expect("source address");
    let to: SocketAddr = format!("{dst}:{port}").parse().expect("destination");
    s.bind(&SockAddr::from(from))?;
    s.connect_timeout(&SockAddr::from(to), Duration::from_secs(3))?;
    let t: TcpStream = s.into();
    t.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(t)
}

/// Opens `n` connections from `src`, writes `hello` on each, keeps them; returns them and how
/// many the server had already closed (read 0 or reset within `probe`), probing every one.
fn flood(src: &str, dst: &str, port: u16, n: usize, hello: &[u8]) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        match connect_from(src, dst, port) {
            Ok(mut s) => {
                let _ = s.write_all(hello);
                held.push(s);
            }
            Err(e) => panic!("connect {dst}:{port} from {src}: {e}"),
        }
    }
    held
}

/// How many of `conns` the server has closed (EOF or reset) after a moment.
fn closed(conns: &mut [TcpStream]) -> usize {
    let mut n = 0;
    for s in conns.iter_mut() {
        let _ = s.set_read_timeout(Some(Duration::from_millis(20)));
        let mut b = [0u8; 512];
        loop {
            match s.read(&mut b) {
                Ok(0) => {
                    n += 1;
                    break;
                }
                Ok(_) => continue,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    break
                }
                Err(_) => {
                    n += 1;
                    break;
                }
            }
        }
    }
    n
}

/// Prints a finding as it is made and keeps it for the summary.
fn say(report: &mut Vec<String>, line: String) {
    eprintln!("{line}");
    report.push(line);
}

/// Daemon log lines containing `needle`.
fn count(d: &Daemon, needle: &str) -> usize {
    d.log
        .lock()
        .map(|l| l.iter().filter(|x| plain(x).contains(needle)).count())
        .unwrap_or(0)
}

/// How many times a warning the daemon throttles may appear in `elapsed`: once, and once more per
/// started throttle interval (one line per call site every `limits::LOG_INTERVAL`, 10 s, with the
/// count of those it held back). A flood that was logged line by line exceeds it by hundreds.
fn throttled_at_most(elapsed: Duration) -> usize {
    1 + (elapsed.as_secs_f64() / 10.0) as usize
}

const DECLINE_PY: &str = r#"
import socket, struct, sys, time
giaddr, server = sys.argv[1], sys.argv[2]
owner, stranger, node = (bytes.fromhex(m.replace(':', '')) for m in sys.argv[3:6])
node_ip = sys.argv[6]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((giaddr, 67))
s.settimeout(5)
def msg(mac, mtype, xid, extra=b''):
    h = struct.pack('!BBBBIHH4s4s4s4s', 1, 1, 6, 1, xid, 0, 0, b'\0'*4, b'\0'*4, b'\0'*4, socket.inet_aton(giaddr))
    return h + mac + b'\0'*10 + b'\0'*192 + bytes([99, 130, 83, 99, 53, 1, mtype]) + extra + bytes([255])
def ip_opt(code, ip):
    return bytes([code, 4]) + socket.inet_aton(ip)
def mtype(d):
    o, i = d[240:], 0
    while i < len(o) and o[i] != 255:
        if o[i] == 0: i += 1; continue
        if o[i] == 53: return o[i+2]
        i += 2 + o[i+1]
def ask(m, xid):
    s.sendto(m, (server, 67))
    while True:
        d, _ = s.recvfrom(2048)
        if struct.unpack('!I', d[4:8])[0] == xid: return d
sid = ip_opt(54, server)
o = ask(msg(owner, 1, 1), 1)
ip = socket.inet_ntoa(o[16:20])
a = ask(msg(owner, 3, 2, ip_opt(50, ip) + sid), 2)
print('owner', ip, mtype(a), flush=True)
# A stranger declines the owner's address, the node's reserved one, and one outside every pool.
for i, target in enumerate([ip, node_ip, '8.8.8.8']):
    s.sendto(msg(stranger, 4, 10 + i, ip_opt(50, target) + sid), (server, 67))
time.sleep(1)
a = ask(msg(owner, 3, 3, ip_opt(50, ip) + sid), 3)
print('renew', mtype(a), socket.inet_ntoa(a[16:20]), flush=True)
o = ask(msg(node, 1, 4), 4)
print('node', mtype(o), socket.inet_ntoa(o[16:20]), flush=True)
# The owner's own DECLINE is still believed: it is offered another address.
s.sendto(msg(owner, 4, 5, ip_opt(50, ip) + sid), (server, 67))
time.sleep(0.5)
o = ask(msg(owner, 1, 6), 6)
print('after', mtype(o), socket.inet_ntoa(o[16:20]), flush=True)
"#;

/// A server network (10.99.N.0/24, server .1) and a remote one behind a relay in the client
/// namespace (10.99.N+1.0/24, relay .1).
fn relay_lab(tag: &str, n: u8, remote_range: Option<&str>) -> (Bh, Pair) {
    let bh = Bh::new();
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "local",
        &format!("net=10.99.{n}.0"),
        "mask=255.255.255.0",
    ]);
    if let Some(range) = remote_range {
        bh.ok(&[
            "mkdef",
            "-t",
            "network",
            "-o",
            "remote",
            &format!("net=10.99.{}.0", n + 1),
            "mask=255.255.255.0",
            &format!("dynamicrange={range}"),
        ]);
    }
    bh.ok(&["chtab", "key=dhcpinterfaces", "site.value=bhs0"]);
    let pair = Pair::new(tag, &format!("10.99.{n}.1/24"));
    let relay = format!("10.99.{}.1/24", n + 1);
    pair.cli.exec(&["ip", "addr", "add", &relay, "dev", "bhc0"]);
    pair.cli.exec(&[
        "ip",
        "addr",
        "add",
        &format!("10.99.{n}.2/24"),
        "dev",
        "bhc0",
    ]);
    pair.srv.exec(&[
        "ip",
        "route",
        "add",
        &format!("10.99.{}.0/24", n + 1),
        "via",
        &format!("10.99.{n}.2"),
    ]);
    (bh, pair)
}

#[test]
fn a_decline_from_a_stranger_is_ignored() {
    let started = Instant::now();
    let (bh, pair) = relay_lab("hd", 200, Some("10.99.201.50-10.99.201.60"));
    let (owner, stranger, node) = (
        "52:54:00:20:00:01",
        "52:54:00:20:00:66",
        "52:54:00:20:00:11",
    );
    bh.ok(&[
        "nodeadd",
        "n11",
        "groups=compute,all",
        &format!("mac.mac={node}"),
        "hosts.ip=10.99.201.11",
    ]);
    let d = Daemon::start(&bh, &pair.srv, &["--no-tftp", "--no-http", "--no-nfs"]);
    assert!(d.wait_for("DHCP listening", 5), "{}", d.dump());
    let py = bh.file("decline.py", DECLINE_PY);
    let o = pair
        .cli
        .command("/usr/bin/python3")
        .args([
            &py,
            "10.99.201.1",
            "10.99.200.1",
            owner,
            stranger,
            node,
            "10.99.201.11",
        ])
        .output()
        .expect("python");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}\n{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        d.dump()
    );
    let word = |w: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.starts_with(w))
            .map(|l| l.split(' ').map(str::to_string).collect())
            .unwrap_or_default()
    };
    let ip = word("owner").get(1).cloned().unwrap_or_default();
    assert_eq!(word("owner").get(2).map(String::as_str), Some("5"), "{out}");
    assert_eq!(
        word("renew"),
        vec!["renew".to_string(), "5".into(), ip.clone()],
        "the owner keeps its address after a stranger's DECLINE: {out}"
    );
    assert_eq!(
        word("node"),
        vec!["node".to_string(), "2".into(), "10.99.201.11".into()],
        "the node is still offered its reserved address: {out}"
    );
    let after = word("after");
    assert_eq!(after.get(1).map(String::as_str), Some("2"), "{out}");
    assert_ne!(
        after.get(2),
        Some(&ip),
        "the owner's own DECLINE takes the address out of the pool: {out}"
    );
    let leases = bh.ok(&["tabdump", "dhcpleases"]);
    assert!(
        !leases.contains(stranger),
        "no lease row for the stranger:\n{leases}"
    );
    assert!(!leases.contains("8.8.8.8"), "{leases}");
    assert!(
        !leases
            .lines()
            .any(|l| l.starts_with("\"10.99.201.11\"") && l.contains("declined")),
        "{leases}"
    );
    assert!(
        leases
            .lines()
            .any(|l| l.starts_with(&format!("\"{ip}\",\"{owner}\"")) && l.contains("declined")),
        "the owner's own decline is recorded:\n{leases}"
    );
    assert!(
        count(&d, "DHCPDECLINE of") >= 1 && count(&d, "DHCPDECLINE of") <= 3,
        "{}",
        d.dump()
    );
    eprintln!(
        "a_decline_from_a_stranger_is_ignored: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

const FLOOD_PY: &str = r#"
import os, socket, struct, sys, time
giaddr, server, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
s.bind((giaddr, 67))
head = struct.pack('!BBBBIHH4s4s4s4s', 1, 1, 6, 1, 7, 0, 0, b'\0'*4, b'\0'*4, b'\0'*4, socket.inet_aton(giaddr))
tail = b'\0'*10 + b'\0'*192 + bytes([99, 130, 83, 99, 53, 1, 1, 255])
t = time.time()
for i in range(n):
    s.sendto(head + os.urandom(6) + tail, (server, 67))
    if i % 500 == 499:
        time.sleep(0.004)
print('sent', n, round(time.time() - t, 1))
"#;

/// DISCOVERs with random MACs relayed from a network no `networks` row contains: each is
/// refused with a log line once per MAC; the set that remembers them is bounded (1,024 MACs,
/// 10 minutes), so memory returns and the log stays short.
#[test]
fn a_random_mac_discover_flood_keeps_memory_and_log_bounded() {
    let started = Instant::now();
    // The remote network is not defined: every relayed DISCOVER is "no network".
    let (bh, pair) = relay_lab("hm", 202, None);
    let d = Daemon::start_logging(
        &bh,
        &pair.srv,
        &["--no-tftp", "--no-http", "--no-nfs"],
        "info",
    );
    assert!(d.wait_for("DHCP listening", 5), "{}", d.dump());
    let pid = d.child.id();
    let py = bh.file("flood.py", FLOOD_PY);
    let run = |n: &str| {
        let o = pair
            .cli
            .command("/usr/bin/python3")
            .args([&py, "10.99.203.1", "10.99.202.1", n])
            .output()
            .expect("python");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    // Warm up: thread pools, the first thousand MACs.
    run("5000");
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kib(pid);
    let sent = run("600000");
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib(pid);
    let lines = count(&d, "no network in the networks table");
    let log = d.log.clone();
    let st = d.stop();
    // The daemon's own count of what reached it.
    let stopped = log
        .lock()
        .map(|l| {
            l.iter()
                .rev()
                .find(|x| x.contains("DHCP stopped"))
                .map(|x| plain(x))
                .unwrap_or_default()
        })
        .unwrap_or_default();
    eprintln!(
        "DISCOVER flood ({sent}): VmRSS {before} KiB before, {after} KiB after; {lines} log lines; daemon: {stopped}; {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(st.success());
    let received: u64 = stopped
        .split_whitespace()
        .find_map(|w| w.strip_prefix("received="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // What the kernel could hand a debug build on a shared machine: never all 600,000, but
    // enough that one remembered entry per MAC (about 90 bytes each) would show.
    assert!(
        received >= 150_000,
        "only {received} DISCOVERs reached the daemon"
    );
    assert!(
        after < before + 4 * 1024,
        "RSS grew from {before} KiB to {after} KiB after {received} random MACs"
    );
    assert!(
        lines <= 1024 + 100,
        "{lines} 'not answered' lines for a flood of random MACs"
    );
}

/// The hostile-client lab: `bootherd serve` on 10.99.204.1 with every service but DHCP on an
/// interface, node n1 at 10.99.204.2 (the client namespace's primary address) and a stranger
/// at 10.99.204.66 (no node's).
struct Lab {
    bh: Bh,
    pair: Pair,
    daemon: Daemon,
    install: std::path::PathBuf,
    tftp: std::path::PathBuf,
    image: std::path::PathBuf,
}

const SERVER: &str = "10.99.204.1";
const NODE: &str = "10.99.204.2";
const STRANGER: &str = "10.99.204.66";
const NODE_MAC: &str = "52:54:00:20:04:02";

impl Lab {
    fn new(tag: &str, site: &[(&str, &str)]) -> Lab {
        need(&[
            ("curl", "curl"),
            ("tftp", "tftp-hpa"),
            ("nfs-cat", "libnfs-utils"),
        ]);
        let bh = Bh::new();
        let install = bh.path("install");
        let tftp = bh.path("tftpboot");
        let imgdir = bh.path("netboot/compute");
        let image = imgdir.join("rootimg");
        std::fs::create_dir_all(image.join("etc")).expect("mkdir");
        std::fs::write(image.join("etc/hostname"), "image\n").expect("write");
        std::fs::create_dir_all(&install).expect("mkdir");
        std::fs::create_dir_all(&tftp).expect("mkdir");
        for (k, v) in [
            ("installdir", install.display().to_string()),
            ("tftpdir", tftp.display().to_string()),
        ] {
            bh.ok(&["chtab", &format!("key={k}"), &format!("site.value={v}")]);
        }
        for (k, v) in site {
            bh.ok(&["chtab", &format!("key={k}"), &format!("site.value={v}")]);
        }
        bh.ok(&[
            "mkdef",
            "-t",
            "osimage",
            "-o",
            "img1",
            "provmethod=statelite",
            &format!("rootimgdir={}", imgdir.display()),
            "osvers=rhels8",
            "osarch=x86_64",
            "profile=compute",
            "imagetype=linux",
        ]);
        bh.ok(&[
            "mkdef",
            "-t",
            "node",
            "-o",
            "n1",
            "groups=compute,all",
            &format!("ip={NODE}"),
            &format!("mac={NODE_MAC}"),
        ]);
        let pair = Pair::new(tag, &format!("{SERVER}/24"));
        for a in [NODE, STRANGER] {
            pair.cli
                .exec(&["ip", "addr", "add", &format!("{a}/24"), "dev", "bhc0"]);
        }
        let daemon = Daemon::start(&bh, &pair.srv, &[]);
        for what in [
            "TFTP listening",
            "HTTP listening",
            "NFS listening",
            "OMAPI listening",
        ] {
            assert!(daemon.wait_for(what, 5), "{what}?\n{}", daemon.dump());
        }
        Lab {
            bh,
            pair,
            daemon,
            install,
            tftp,
            image,
        }
    }

    /// Runs a program in the client namespace (from the node's address), bounded by `secs`.
    fn client(&self, secs: u32, args: &[&str]) -> std::process::Output {
        self.pair
            .cli
            .command("timeout")
            .arg(secs.to_string())
            .args(args)
            .output()
            .expect("run client")
    }

    /// `curl` from the node's address: (status code, body, seconds).
    fn curl(&self, url: &str, extra: &[&str]) -> (String, Vec<u8>, f64) {
        let out = self.bh.path("curl.out");
        let _ = std::fs::remove_file(&out);
        let t = Instant::now();
        let mut args = vec![
            "curl",
            "-sS",
            "--interface",
            NODE,
            "-o",
            out.to_str().expect("path"),
            "-w",
            "%{http_code}",
        ];
        args.extend_from_slice(extra);
        args.push(url);
        let o = self.client(30, &args);
        let secs = t.elapsed().as_secs_f64();
        assert!(
            o.status.success(),
            "curl {url}: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            self.daemon.dump()
        );
        (
            String::from_utf8_lossy(&o.stdout).to_string(),
            std::fs::read(&out).unwrap_or_default(),
            secs,
        )
    }

    /// tftp-hpa from the node's address: (succeeded, stderr/stdout text, seconds).
    fn tftp_get(&self, name: &str) -> (bool, String, f64) {
        let out = self.bh.path("tftp.out");
        let _ = std::fs::remove_file(&out);
        let t = Instant::now();
        let o = self.client(
            30,
            &[
                "tftp",
                SERVER,
                "-m",
                "binary",
                "-c",
                "get",
                name,
                out.to_str().expect("path"),
            ],
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        // tftp-hpa exits 0 even on an error packet; an error is in its output.
        let ok = o.status.success() && !text.contains("Error") && out.exists();
        (ok, text, t.elapsed().as_secs_f64())
    }
}

#[test]
fn a_public_file_in_a_private_directory_is_refused_and_big_heads_get_431() {
    let started = Instant::now();
    let lab = Lab::new("hp", &[]);
    use std::os::unix::fs::PermissionsExt;
    for root in [&lab.install, &lab.tftp] {
        for (dir, mode) in [("public", 0o755), ("private", 0o700)] {
            let d = root.join(dir);
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::write(d.join("f"), b"secret\n").expect("write");
            std::fs::set_permissions(d.join("f"), std::fs::Permissions::from_mode(0o644))
                .expect("chmod");
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
    }
    let url = |p: &str| format!("http://{SERVER}{p}");
    let (code, body, _) = lab.curl(&url("/install/public/f"), &[]);
    assert_eq!((code.as_str(), body.as_slice()), ("200", &b"secret\n"[..]));
    let (code, _, _) = lab.curl(&url("/install/private/f"), &[]);
    assert_eq!(code, "403", "a file inside a 0700 directory over HTTP");
    let (code, _, _) = lab.curl(&url("/tftpboot/private/f"), &[]);
    assert_eq!(code, "403", "the same under /tftpboot");
    let (ok, text, _) = lab.tftp_get("public/f");
    assert!(ok, "{text}");
    let (ok, text, _) = lab.tftp_get("private/f");
    assert!(!ok, "served over TFTP from a 0700 directory: {text}");
    assert!(text.contains("Error code 2"), "an access violation: {text}");
    // Request heads over 16 KiB: a 431 the client reads, not a reset (20 KiB in one field, and
    // 256 KiB in 64 fields, most of it still unread when the answer goes out).
    let big = format!("X-Big: {}", "a".repeat(20 * 1024));
    let (code, _, _) = lab.curl(&url("/install/public/f"), &["-H", &big]);
    assert_eq!(code, "431", "oversized header field");
    let many: String = (0..64)
        .map(|i| format!("X-Big-{i}: {}\n", "b".repeat(4096)))
        .collect();
    let f = lab.bh.file("headers.txt", &many);
    let (code, _, _) = lab.curl(&url("/install/public/f"), &["-H", &format!("@{f}")]);
    assert_eq!(code, "431", "256 KiB of header fields");
    // A client that sends its whole head before it reads (as Python's http.client does), a
    // field at a time: its writes must not be reset, and it must read the 431.
    let answer = in_netns(&lab.pair.cli, || -> Result<String, String> {
        let mut s = connect_from(NODE, SERVER, 80).map_err(|e| e.to_string())?;
        s.write_all(b"GET /install/public/f HTTP/1.1\r\nHost: x\r\n")
            .map_err(|e| format!("request line: {e}"))?;
        for i in 0..256 {
            let field = format!("X-Big-{i}: {}\r\n", "c".repeat(4000));
            s.write_all(field.as_bytes())
                .map_err(|e| format!("field {i}: {e}"))?;
            std::thread::sleep(Duration::from_millis(2));
        }
        s.write_all(b"\r\n").map_err(|e| format!("end: {e}"))?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).map_err(|e| format!("read: {e}"))?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .next()
            .unwrap_or("")
            .to_string())
    });
    assert_eq!(
        answer.as_deref(),
        Ok("HTTP/1.1 431 Request Header Fields Too Large"),
        "1 MiB of header fields, written before reading"
    );
    eprintln!(
        "a_public_file_in_a_private_directory_is_refused_and_big_heads_get_431: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// One address floods each service as issue #20's table did; the node is served meanwhile, in
/// about the time it takes when nobody floods.
#[test]
fn one_address_flooding_each_service_does_not_lock_out_a_node() {
    let started = Instant::now();
    raise_nofile();
    let lab = Lab::new("hf", &[]);
    std::fs::write(lab.install.join("f"), b"file\n").expect("write");
    std::fs::write(lab.tftp.join("f"), b"file\n").expect("write");
    let http = format!("http://{SERVER}/install/f");
    let nfs_url = format!(
        "nfs://{SERVER}{}/etc/hostname?nfsport=2049&mountport=2049",
        lab.image.display()
    );
    let nfs_cat = || {
        let t = Instant::now();
        let o = lab.client(30, &["nfs-cat", &nfs_url]);
        (
            o.status.success() && o.stdout == b"image\n",
            t.elapsed().as_secs_f64(),
        )
    };
    // The node's normal times.
    let (code, _, http0) = lab.curl(&http, &[]);
    assert_eq!(code, "200");
    let (ok, text, tftp0) = lab.tftp_get("f");
    assert!(ok, "{text}");
    let (ok, nfs0) = nfs_cat();
    assert!(ok, "{}", lab.daemon.dump());
    let status = |from: &str| -> Result<String, String> {
        in_netns(&lab.pair.cli, || {
            let mut s = connect_from(from, SERVER, 3002).map_err(|e| e.to_string())?;
            let mut got = Vec::new();
            let mut b = [0u8; 256];
            let t = Instant::now();
            let mut asked = false;
            while t.elapsed() < Duration::from_secs(5) {
                match s.read(&mut b) {
                    Ok(0) => break,
                    Ok(n) => got.extend_from_slice(&b[..n]),
                    Err(e) => return Err(e.to_string()),
                }
                if !asked && got.starts_with(b"ready\n") {
                    s.write_all(b"installstatus booting\n")
                        .map_err(|e| e.to_string())?;
                    asked = true;
                }
                if got.ends_with(b"done\n") {
                    break;
                }
            }
            Ok(String::from_utf8_lossy(&got).to_string())
        })
    };
    assert_eq!(status(NODE).as_deref(), Ok("ready\ndone\n"));
    let omapi_hello = |from: &str| -> Option<f64> {
        in_netns(&lab.pair.cli, || {
            let t = Instant::now();
            let mut s = connect_from(from, SERVER, 7911).ok()?;
            let mut b = [0u8; 8];
            s.read_exact(&mut b).ok()?;
            Some(t.elapsed().as_secs_f64())
        })
    };
    assert!(omapi_hello(NODE).is_some());
    let mut report = Vec::new();

    let cli = &lab.pair.cli;

    // HTTP: 4,500 slow connections (a request line and no more).
    let mut held = in_netns(cli, || {
        flood(STRANGER, SERVER, 80, 4500, b"GET /install/f HTTP/1.1\r\n")
    });
    std::thread::sleep(Duration::from_millis(300));
    let shut = closed(&mut held);
    say(
        &mut report,
        format!("HTTP: {shut} of 4,500 stranger connections refused at once"),
    );
    assert!(shut >= 4500 - 64, "only {shut} closed");
    let (code, _, secs) = lab.curl(&http, &[]);
    drop(held);
    assert_eq!(code, "200", "{}", lab.daemon.dump());
    say(
        &mut report,
        format!("HTTP: node served in {secs:.2} s (alone: {http0:.2} s)"),
    );
    assert!(secs < http0 + 2.0);

    // TFTP: 1,030 RRQs asking for a 255 s timeout, never acknowledged.
    let socks = in_netns(cli, || {
        let mut rrq = vec![0u8, 1];
        rrq.extend_from_slice(b"f\x00octet\x00timeout\x00255\x00");
        (0..1030)
            .map(|_| {
                let s = UdpSocket::bind((STRANGER, 0)).expect("bind");
                s.send_to(&rrq, (SERVER, 69)).expect("send");
                // Paced a little, so the answers are not lost in the socket buffers.
                std::thread::sleep(Duration::from_micros(300));
                s
            })
            .collect::<Vec<_>>()
    });
    std::thread::sleep(Duration::from_millis(500));
    let (mut busy, mut started_) = (0, 0);
    for s in &socks {
        s.set_nonblocking(true).expect("nonblocking");
        let mut b = [0u8; 600];
        if let Ok(n) = s.recv(&mut b) {
            if n > 4 && b[1] == 5 && String::from_utf8_lossy(&b[4..n]).contains("too many") {
                busy += 1;
            }
            // DATA 1 (no option was granted, so no OACK) or an OACK.
            if n > 2 && (b[1] == 3 || b[1] == 6) {
                started_ += 1;
            }
        }
    }
    say(&mut report, format!(
        "TFTP: {started_} of 1,030 stranger requests started a transfer, {busy} refused (too many transfers)"
    ));
    assert!(
        (1..=16).contains(&started_),
        "{started_} transfers for one address"
    );
    assert!(busy >= 1000, "{busy}");
    let (ok, text, secs) = lab.tftp_get("f");
    drop(socks);
    assert!(ok, "{text}\n{}", lab.daemon.dump());
    say(
        &mut report,
        format!("TFTP: node served in {secs:.2} s (alone: {tftp0:.2} s)"),
    );
    assert!(secs < tftp0 + 2.0);
    assert!(
        count(&lab.daemon, "too many transfers") <= throttled_at_most(started.elapsed()),
        "refusals are logged once per interval:\n{}",
        lab.daemon.dump()
    );

    // NFS: 2,000 idle connections with two bytes each, from an address that is no node's.
    let mut held = in_netns(cli, || flood(STRANGER, SERVER, 2049, 2000, &[0x80, 0]));
    std::thread::sleep(Duration::from_millis(500));
    let shut = closed(&mut held);
    say(
        &mut report,
        format!("NFS: {shut} of 2,000 stranger connections closed at once"),
    );
    // Beyond its share of 16, closed at accept; those 16 wait (5 s at most) for a call to refuse.
    assert!(shut >= 2000 - 16, "{shut}");
    let (ok, secs) = nfs_cat();
    drop(held);
    assert!(ok, "{}", lab.daemon.dump());
    say(
        &mut report,
        format!("NFS: node mounted and read in {secs:.2} s (alone: {nfs0:.2} s)"),
    );
    assert!(secs < nfs0 + 2.0);

    // OMAPI: 2,000 connections.
    let mut held = in_netns(cli, || flood(STRANGER, SERVER, 7911, 2000, b""));
    std::thread::sleep(Duration::from_millis(300));
    let shut = closed(&mut held);
    say(
        &mut report,
        format!("OMAPI: {shut} of 2,000 stranger connections refused at once"),
    );
    assert!(shut >= 2000 - 8, "{shut}");
    let secs = omapi_hello(NODE).expect("OMAPI greets another client");
    drop(held);
    say(
        &mut report,
        format!("OMAPI: another client greeted in {secs:.2} s"),
    );
    assert!(
        count(&lab.daemon, "OMAPI: 10.99.204.66 holds") <= throttled_at_most(started.elapsed()),
        "{}",
        lab.daemon.dump()
    );

    // Status port 3002: 2,000 connections from a non-node.
    let mut held = in_netns(cli, || flood(STRANGER, SERVER, 3002, 2000, b""));
    std::thread::sleep(Duration::from_millis(500));
    let shut = closed(&mut held);
    say(
        &mut report,
        format!("status port: {shut} of 2,000 stranger connections closed"),
    );
    assert!(shut >= 1990, "{shut}");
    let t = Instant::now();
    assert_eq!(status(NODE).as_deref(), Ok("ready\ndone\n"));
    drop(held);
    say(
        &mut report,
        format!(
            "status port: node answered in {:.2} s",
            t.elapsed().as_secs_f64()
        ),
    );
    // Two call sites (NFS, status port), each throttled on its own: a flood phase that lasts
    // past one interval logs its site twice.
    let bound = throttled_at_most(started.elapsed());
    for site in [
        "nfs: 10.99.204.66 is not",
        "status port: 10.99.204.66 is not",
    ] {
        let n = count(&lab.daemon, site);
        assert!(
            (1..=bound).contains(&n),
            "{site}: {n} lines, expected 1 to {bound}\n{}",
            lab.daemon.dump()
        );
    }
    assert_eq!(report.len(), 10);
    eprintln!(
        "one_address_flooding_each_service_does_not_lock_out_a_node: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn findme(lab: &Lab, from: &str, body: &str) -> String {
    let f = lab.bh.file("findme.txt", body);
    let o = lab.client(
        20,
        &[
            "curl",
            "-sS",
            "--interface",
            from,
            "--data-binary",
            &format!("@{f}"),
            &format!("http://{SERVER}/xcat/discovery/findme"),
        ],
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn vpd_serial(lab: &Lab) -> String {
    lab.bh
        .ok(&["nodels", "n1", "vpd.serial"])
        .trim()
        .to_string()
}

/// Random findme reports are kept to `site.discoverymaxundef` rows; with
/// `site.findmetrust=strict` a report naming n1's MAC from the stranger's address changes
/// nothing, while the same report from n1's own address is believed.
#[test]
fn findme_floods_are_bounded_and_strict_trust_refuses_forgeries() {
    let started = Instant::now();
    let lab = Lab::new(
        "hy",
        &[("discoverymaxundef", "40"), ("findmetrust", "strict")],
    );
    for i in 0..120u32 {
        let body = format!(
            "uuid=00000000-0000-0000-0000-{i:012x}\nmtm=x\nserial=s{i}\nmac=e1000|eth0|02:00:00:00:{:02x}:{:02x}|\n",
            i >> 8,
            i & 255
        );
        let out = findme(&lab, STRANGER, &body);
        assert!(out.starts_with("undefined"), "{out}");
    }
    let rows = lab.bh.ok(&["tabdump", "discoverydata"]);
    let n = rows.lines().count().saturating_sub(1);
    assert_eq!(n, 40, "{rows}");
    assert!(
        rows.contains("-00000000007") && !rows.contains("-000000000000\""),
        "the newest are kept, the oldest dropped:\n{rows}"
    );
    let forged = format!(
        "uuid=11111111-2222-3333-4444-555555555555\nmtm=evil\nserial=forged\nmac=e1000|eth0|{NODE_MAC}|{STRANGER}/24\n"
    );
    let out = findme(&lab, STRANGER, &forged);
    assert!(
        out.starts_with("undefined") && out.contains("site.findmetrust=strict"),
        "{out}"
    );
    assert_ne!(vpd_serial(&lab), "n1: forged");
    let out = findme(&lab, NODE, &forged.replace("forged", "real"));
    assert_eq!(out.trim(), "restart n1");
    assert_eq!(vpd_serial(&lab), "n1: real");
    // xCAT's trust (the default): the same forgery from the stranger is believed.
    lab.bh.ok(&["chtab", "key=findmetrust", "site.value=xcat"]);
    let out = findme(&lab, STRANGER, &forged);
    assert_eq!(out.trim(), "restart n1");
    assert_eq!(vpd_serial(&lab), "n1: forged");
    // Only the two reports that changed n1 are audited, not the 121 undefined machines.
    let audit = lab.bh.ok(&["tabdump", "auditlog"]);
    assert_eq!(
        audit.lines().filter(|l| l.contains("\"findme\"")).count(),
        2,
        "{audit}"
    );
    eprintln!(
        "findme_floods_are_bounded_and_strict_trust_refuses_forgeries: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
