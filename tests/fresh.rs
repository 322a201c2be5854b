//! Read your writes: a request that arrives after a change returned sees the change — 1,000 times
//! "change, then ask at once" per path, with the change made by the real command (`nodeset`,
//! `chdef`, `chtab`, omshell) or by the daemon itself (`next` on the status port), and the asking
//! done by small clients in this file (so 1,000 rounds take seconds), from the node's namespace.
//! Zero stale answers allowed.

mod common;
use common::{in_netns, need, Bh, Daemon, Pair};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Stdio;
use std::time::{Duration, Instant};

const ROUNDS: usize = 1000;
const SERVER: &str = "10.99.130.1";
const NODE_IP: &str = "10.99.130.2";
const IMG_A: &str = "rhels9.4-x86_64-install-compute";
const IMG_B: &str = "rhels8.6-x86_64-install-compute";
/// The same 32-byte key as the passwd row, base64.
const SECRET: &str = "c2VjcmV0LWtleS1mb3ItYm9vdGhlcmQtb21hcGktdGVzdA==";

/// A store with node n1 at NODE_IP (xNBA), two install images, the lab network with a dynamic
/// range, and the OMAPI key; the daemon in the server namespace, the node's address in the other.
struct Lab {
    bh: Bh,
    pair: Pair,
    daemon: Daemon,
}

impl Lab {
    fn new(tag: &str, serve: &[&str]) -> Lab {
        let bh = Bh::new();
        let tftp = bh.path("tftpboot");
        for img in [IMG_A, IMG_B] {
            let d = tftp.join(format!("xcat/osimage/{img}"));
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::write(d.join("vmlinuz"), b"k").expect("kernel");
            std::fs::write(d.join("initrd.img"), b"i").expect("initrd");
        }
        bh.ok(&[
            "chtab",
            "key=tftpdir",
            &format!("site.value={}", tftp.display()),
        ]);
        bh.ok(&[
            "chtab",
            "key=installdir",
            &format!("site.value={}", bh.path("install").display()),
        ]);
        for (img, vers) in [(IMG_A, "rhels9.4"), (IMG_B, "rhels8.6")] {
            bh.ok(&[
                "mkdef",
                "-t",
                "osimage",
                "-o",
                img,
                "imagetype=linux",
                "provmethod=install",
                &format!("osvers={vers}"),
                "osarch=x86_64",
                "profile=compute",
            ]);
        }
        bh.ok(&[
            "mkdef",
            "-t",
            "network",
            "-o",
            "lab",
            "net=10.99.130.0",
            "mask=255.255.255.0",
            "dynamicrange=10.99.130.100-10.99.130.200",
        ]);
        bh.ok(&["chtab", "key=dhcpinterfaces", "site.value=bhs0"]);
        bh.ok(&[
            "chtab",
            "key=system,username=root",
            // Already crypted: passed through as is (no SHA-512 crypt on every render).
            "passwd.password=$6$freshsalt$Vq0mJ1gRkq1M2oFq9yq5m0",
        ]);
        bh.ok(&[
            "chtab",
            "key=omapi,username=xcat_key",
            &format!("passwd.password={SECRET}"),
        ]);
        bh.ok(&[
            "mkdef",
            "-t",
            "node",
            "-o",
            "n1",
            "groups=compute,all",
            "mac=52:54:00:99:13:01",
            &format!("ip={NODE_IP}"),
            "netboot=xnba",
            &format!("xcatmaster={SERVER}"),
        ]);
        let pair = Pair::new(tag, &format!("{SERVER}/24"));
        pair.cli
            .exec(&["ip", "addr", "add", &format!("{NODE_IP}/24"), "dev", "bhc0"]);
        let daemon = Daemon::start(&bh, &pair.srv, serve);
        Lab { bh, pair, daemon }
    }

    /// Runs the rounds inside the node's namespace (the clients' sockets live there; the commands
    /// it starts do not care). Fails with the round, what was wanted and what came.
    fn rounds(&self, what: &str, mut round: impl FnMut(usize) -> Result<(), String> + Send) {
        let started = Instant::now();
        let failed = in_netns(&self.pair.cli, || {
            for i in 0..ROUNDS {
                if let Err(e) = round(i) {
                    return Some(format!("round {i}: {e}"));
                }
            }
            None
        });
        if let Some(e) = failed {
            panic!(
                "{what}: stale answer, {e}\nserver log:\n{}",
                self.daemon.dump()
            );
        }
        eprintln!(
            "{what}: {ROUNDS} rounds, no stale answer, {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
}

/// GET `path` on the server (HTTP/1.1, one request per connection); (status, body).
fn http_get(path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect((SERVER, 80)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {SERVER}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no header end in {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok((status, body.to_string()))
}

/// Fetches `name` over TFTP (octet, 512-byte lockstep).
fn tftp_get(name: &str) -> Result<Vec<u8>, String> {
    let sock = UdpSocket::bind((NODE_IP, 0)).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    let mut rrq = vec![0, 1];
    for s in [name, "octet"] {
        rrq.extend_from_slice(s.as_bytes());
        rrq.push(0);
    }
    sock.send_to(&rrq, (SERVER, 69))
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut want: u16 = 1;
    let mut b = vec![0u8; 1024];
    loop {
        let (n, from) = sock
            .recv_from(&mut b)
            .map_err(|e| format!("TFTP {name}: no answer ({e})"))?;
        let d = &b[..n];
        if n < 4 {
            return Err("short datagram".into());
        }
        match u16::from_be_bytes([d[0], d[1]]) {
            3 => {
                let block = u16::from_be_bytes([d[2], d[3]]);
                if block == want {
                    out.extend_from_slice(&d[4..]);
                    want = want.wrapping_add(1);
                }
                sock.send_to(&[0, 4, d[2], d[3]], from)
                    .map_err(|e| e.to_string())?;
                if block.wrapping_add(1) == want && n - 4 < 512 {
                    return Ok(out);
                }
            }
            5 => {
                return Err(format!(
                    "TFTP {name}: error {}",
                    String::from_utf8_lossy(&d[4..])
                ))
            }
            op => return Err(format!("TFTP {name}: unexpected opcode {op}")),
        }
    }
}

/// One request on xCAT's status port from the node's address; the server's lines.
fn status_call(line: &str) -> Result<String, String> {
    let mut s = TcpStream::connect((SERVER, 3002)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut ready = [0u8; 6];
    s.read_exact(&mut ready).map_err(|e| e.to_string())?;
    s.write_all(format!("{line}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// A DHCP client on port 68 of the node's namespace (broadcast DISCOVERs, OFFERs broadcast back).
struct Dhcp {
    sock: UdpSocket,
    xid: u32,
}

impl Dhcp {
    fn new() -> Dhcp {
        let sock = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .expect("socket");
        sock.set_reuse_address(true).expect("reuse");
        sock.set_broadcast(true).expect("broadcast");
        sock.bind_device(Some(b"bhc0")).expect("bind to bhc0");
        sock.bind(&SocketAddr::from(([0, 0, 0, 0], 68)).into())
            .expect("bind port 68");
        let sock: UdpSocket = sock.into();
        sock.set_read_timeout(Some(Duration::from_millis(1500)))
            .expect("timeout");
        Dhcp {
            sock,
            xid: 0x1300_0000,
        }
    }

    /// The address offered to `mac` (None: no OFFER within 1.5 s).
    fn offer(&mut self, mac: [u8; 6]) -> Option<[u8; 4]> {
        self.xid += 1;
        let mut p = vec![0u8; 240];
        p[0] = 1; // BOOTREQUEST
        p[1] = 1;
        p[2] = 6;
        p[4..8].copy_from_slice(&self.xid.to_be_bytes());
        p[10] = 0x80; // broadcast flag
        p[28..34].copy_from_slice(&mac);
        p[236..240].copy_from_slice(&[99, 130, 83, 99]);
        p.extend_from_slice(&[53, 1, 1, 255]);
        self.sock
            .send_to(&p, ("255.255.255.255", 67))
            .expect("send DISCOVER");
        let mut b = vec![0u8; 1500];
        let deadline = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < deadline {
            let Ok((n, _)) = self.sock.recv_from(&mut b) else {
                return None;
            };
            let r = &b[..n];
            if n >= 240 && r[0] == 2 && r[4..8] == self.xid.to_be_bytes() && r[28..34] == mac {
                return Some([r[16], r[17], r[18], r[19]]);
            }
        }
        None
    }
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn ip_str(a: Option<[u8; 4]>) -> String {
    match a {
        Some(a) => format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]),
        None => "no offer".into(),
    }
}

fn install_of(img: &str) -> String {
    format!("xcat/osimage/{img}/vmlinuz")
}

/// The boot file's kernel line for `img`, and the install source in its kickstart.
fn image(i: usize) -> (&'static str, &'static str, &'static str, &'static str) {
    // The kickstart's install source names the image's OS.
    if i.is_multiple_of(2) {
        (
            IMG_A,
            IMG_B,
            "/install/rhels9.4/x86_64",
            "/install/rhels8.6/",
        )
    } else {
        (
            IMG_B,
            IMG_A,
            "/install/rhels8.6/x86_64",
            "/install/rhels9.4/",
        )
    }
}

#[test]
fn nodeset_then_tftp_and_http_get_the_new_boot_file() {
    let lab = Lab::new("fn", &["--no-dhcp", "--no-nfs"]);
    assert!(
        lab.daemon.wait_for("TFTP listening", 5),
        "{}",
        lab.daemon.dump()
    );
    let bh = &lab.bh;
    lab.rounds("nodeset → TFTP and HTTP boot file", |i| {
        let (img, other, _, _) = image(i);
        bh.ok(&["nodeset", "n1", &format!("osimage={img}")]);
        let t = String::from_utf8_lossy(&tftp_get("xcat/xnba/nodes/n1")?).to_string();
        if !t.contains(&install_of(img)) || t.contains(&install_of(other)) {
            return Err(format!("TFTP boot file for {img}:\n{t}"));
        }
        let (s, h) = http_get("/tftpboot/xcat/xnba/nodes/n1")?;
        if s != 200 || !h.contains(&install_of(img)) || h.contains(&install_of(other)) {
            return Err(format!("HTTP boot file for {img} ({s}):\n{h}"));
        }
        Ok(())
    });
}

#[test]
fn nodeset_then_http_gets_the_new_kickstart() {
    let lab = Lab::new("fk", &["--no-dhcp", "--no-tftp", "--no-nfs"]);
    let bh = &lab.bh;
    lab.rounds("nodeset → HTTP kickstart", |i| {
        let (img, _, source, other_source) = image(i);
        bh.ok(&["nodeset", "n1", &format!("osimage={img}")]);
        let (s, k) = http_get("/install/autoinst/n1")?;
        if s != 200 || !k.contains(source) || k.contains(other_source) {
            return Err(format!("kickstart for {img} ({s}):\n{k}"));
        }
        Ok(())
    });
}

#[test]
fn next_on_the_status_port_then_http_gets_local_boot() {
    let lab = Lab::new("fx", &["--no-dhcp", "--no-tftp", "--no-nfs"]);
    assert!(
        lab.daemon.wait_for("node status port listening", 5),
        "{}",
        lab.daemon.dump()
    );
    let bh = &lab.bh;
    lab.rounds("next → HTTP boot file", |_| {
        bh.ok(&["nodeset", "n1", &format!("osimage={IMG_A}")]);
        let (s, b) = http_get("/tftpboot/xcat/xnba/nodes/n1")?;
        if s != 200 || !b.contains(&install_of(IMG_A)) {
            return Err(format!("after nodeset ({s}):\n{b}"));
        }
        let said = status_call("next")?;
        if said != "boot\ndone\n" {
            return Err(format!("next answered {said:?}"));
        }
        // xCAT's local-boot xNBA file: no kernel, `exit` to the next boot device.
        let (s, b) = http_get("/tftpboot/xcat/xnba/nodes/n1")?;
        if s != 200 || b.contains("vmlinuz") || !b.contains("exit") {
            return Err(format!("after next ({s}):\n{b}"));
        }
        Ok(())
    });
}

#[test]
fn chdef_of_a_mac_then_dhcp_offers_by_the_new_mac() {
    let lab = Lab::new("fd", &["--no-tftp", "--no-http", "--no-nfs"]);
    assert!(
        lab.daemon.wait_for("DHCP ready", 5),
        "{}",
        lab.daemon.dump()
    );
    let macs = [
        [0x52, 0x54, 0x00, 0x99, 0x13, 0x0a],
        [0x52, 0x54, 0x00, 0x99, 0x13, 0x0b],
    ];
    let bh = &lab.bh;
    let mut dhcp = None;
    lab.rounds("chdef mac → DHCP", |i| {
        let c = dhcp.get_or_insert_with(Dhcp::new);
        let (new, old) = (macs[i % 2], macs[(i + 1) % 2]);
        bh.ok(&["chdef", "n1", &format!("mac={}", mac_str(new))]);
        let got = c.offer(new);
        if ip_str(got) != NODE_IP {
            return Err(format!(
                "{} (now n1's) was offered {}",
                mac_str(new),
                ip_str(got)
            ));
        }
        let got = c.offer(old);
        if got.is_none() || ip_str(got) == NODE_IP {
            return Err(format!(
                "{} (no longer n1's) was offered {}",
                mac_str(old),
                ip_str(got)
            ));
        }
        Ok(())
    });
}

#[test]
fn chtab_of_litefile_then_http_lists_it() {
    let lab = Lab::new("fl", &["--no-dhcp", "--no-tftp", "--no-nfs"]);
    let bh = &lab.bh;
    bh.ok(&[
        "mkdef",
        "-t",
        "osimage",
        "-o",
        "img",
        "imagetype=linux",
        "provmethod=statelite",
        "osvers=rhels9.4",
        "osarch=x86_64",
        "profile=compute",
    ]);
    bh.ok(&["chdef", "n1", "provmethod=img"]);
    let opts = ["tmpfs", "persistent"];
    lab.rounds("chtab litefile → HTTP /xcat/node/litefile", |i| {
        let want = opts[i % 2];
        bh.ok(&[
            "chtab",
            "image=ALL,file=/etc/fresh.conf",
            &format!("litefile.options={want}"),
        ]);
        let (s, b) = http_get("/xcat/node/litefile")?;
        let line = b.lines().find(|l| l.contains("/etc/fresh.conf"));
        let got = line.and_then(|l| l.split_whitespace().nth(1));
        if s != 200 || got != Some(want) {
            return Err(format!("wanted {want} ({s}):\n{b}"));
        }
        Ok(())
    });
}

#[test]
fn an_omapi_host_created_or_removed_then_dhcp_answers_by_it() {
    need(&[("omshell", "isc-dhcp-client")]);
    let lab = Lab::new("fo", &["--no-tftp", "--no-http", "--no-nfs"]);
    assert!(
        lab.daemon.wait_for("DHCP ready", 5),
        "{}",
        lab.daemon.dump()
    );
    assert!(
        lab.daemon.wait_for("OMAPI listening", 5),
        "{}",
        lab.daemon.dump()
    );
    let mac = [0x52, 0x54, 0x00, 0x99, 0x13, 0x33];
    let head = format!("server {SERVER}\nport 7911\nkey xcat_key {SECRET}\nconnect\n");
    let create = format!(
        "{head}new host\nset name = \"h33\"\nset hardware-address = {}\nset hardware-type = 1\nset ip-address = 10.99.130.33\ncreate\n",
        mac_str(mac)
    );
    let remove = format!(
        "{head}new host\nset hardware-address = {}\nset hardware-type = 1\nopen\nremove\n",
        mac_str(mac)
    );
    let mut dhcp = None;
    lab.rounds("OMAPI host create/remove → DHCP", |i| {
        let c = dhcp.get_or_insert_with(Dhcp::new);
        let created = i.is_multiple_of(2);
        let out = omshell(if created { &create } else { &remove })?;
        let got = c.offer(mac);
        if created && ip_str(got) != "10.99.130.33" {
            return Err(format!(
                "after create, offered {}; omshell: {out}",
                ip_str(got)
            ));
        }
        if !created && (got.is_none() || ip_str(got) == "10.99.130.33") {
            return Err(format!(
                "after remove, offered {}; omshell: {out}",
                ip_str(got)
            ));
        }
        Ok(())
    });
}

/// Feeds an omshell script (runs in the namespace of the calling thread); what it printed.
fn omshell(script: &str) -> Result<String, String> {
    let mut c = std::process::Command::new("timeout")
        .args(["20", "omshell"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("omshell: {e}"))?;
    c.stdin
        .take()
        .ok_or("no stdin")?
        .write_all(script.as_bytes())
        .map_err(|e| e.to_string())?;
    let o = c.wait_with_output().map_err(|e| e.to_string())?;
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if !o.status.success() || out.contains("can't") || out.contains("not found") {
        return Err(format!("omshell failed: {out}"));
    }
    Ok(out)
}
