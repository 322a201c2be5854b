//! bootstorm: N simulated PXE nodes booting at once, each with its own MAC and (leased) address.
//!
//! Every node does what a BIOS node with a PXE ROM does:
//!
//! 1. the ROM's DHCP DORA (PXEClient vendor class, arch 0, UNDI, UUID), broadcast flag set,
//!    retransmitting at 4, 8, 16 and 32 s (PXE 2.1);
//! 2. the ROM's TFTP of the boot file the lease names: a `tsize` probe it aborts, then the file
//!    with `blksize 1456`, lockstep, retransmitting at 1, 2, 4, 8 s;
//! 3. for `xnba.kpxe` (xCAT's iPXE): iPXE's DHCP again (user class "xNBA", option 175,
//!    retransmitting at 1, 2, 4, 8, 10 s), then over one keep-alive HTTP connection from the
//!    node's address its script, and the kernel and initrd the script names;
//!    for `pxelinux.0`: pxelinux's TFTP (`tsize` + `blksize 1408`, its own retransmission table)
//!    of ldlinux.c32, the config file (pxelinux.cfg/<UUID>, 01-<mac>, hex IP, … as pxelinux
//!    searches), then the kernel and initrd that config names.
//!
//! With `--nfs SERVER:MOUNTPORT:NFSPORT:/export --files LIST` each node instead does what a
//! statelite node's initramfs and early boot do to its NFS root: MOUNT the export from its own
//! address (a reserved port, AUTH_UNIX), then LOOKUP, GETATTR and READ (64 KiB at a time) every
//! file of LIST (`path size` a line: the files a boot reads), directories looked up once.
//!
//! Usage: bootstorm --iface IF --nodes FILE [--spread SECS] [--out CSV] [--nfs … --files LIST]
//!   FILE: one node a line, `name mac ip` (the address must be on IF, so the node can use it).
//! Prints one `key=value …` summary line; the CSV has every node's timeline (seconds from the
//! storm's start) and its retransmissions.

mod dhcp;
mod http;
mod nfs;
mod tftp;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

struct Node {
    name: String,
    mac: [u8; 6],
    ip: Ipv4Addr,
}

/// Replies of every node come in on one socket (port 68); this hands each to its node by xid.
struct Hub {
    sock: UdpSocket,
    waiting: Mutex<HashMap<u32, mpsc::Sender<dhcp::Reply>>>,
}

impl Hub {
    fn open(iface: &str) -> std::io::Result<Arc<Hub>> {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_address(true)?;
        s.set_broadcast(true)?;
        s.bind_device(Some(iface.as_bytes()))?;
        let _ = s.set_recv_buffer_size(16 << 20);
        s.bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68)).into())?;
        let hub = Arc::new(Hub {
            sock: s.into(),
            waiting: Mutex::new(HashMap::new()),
        });
        let h = hub.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            loop {
                let Ok((n, _)) = h.sock.recv_from(&mut buf) else {
                    continue;
                };
                let Some(r) = dhcp::parse(&buf[..n]) else {
                    continue;
                };
                let w = h.waiting.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(tx) = w.get(&r.xid) {
                    let _ = tx.send(r);
                }
            }
        });
        Ok(hub)
    }
}

#[derive(Default, Clone)]
struct Rec {
    start: f64,
    lease: Option<f64>,
    nbp: Option<f64>,
    lease2: Option<f64>,
    config: Option<f64>,
    kernel: Option<f64>,
    done: Option<f64>,
    fail: Option<String>,
    dhcp_resent: u32,
    tftp: tftp::Counts,
    http_connects: u32,
    bytes: u64,
}

struct NfsJob {
    server: Ipv4Addr,
    mount_port: u16,
    nfs_port: u16,
    export: String,
    files: Vec<(String, u64)>,
}

struct Ctx {
    nfs: Option<NfsJob>,
    hub: Arc<Hub>,
    epoch: Instant,
    rom: tftp::Schedule,
    pxelinux: tftp::Schedule,
}

impl Ctx {
    fn now(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }
}

/// DORA with the given retransmission waits (each message gets the whole schedule).
fn dora(
    ctx: &Ctx,
    node: &Node,
    uuid: &[u8; 16],
    xid: u32,
    asker: dhcp::Asker,
    waits: &[u64],
    rec: &mut Rec,
) -> Result<dhcp::Reply, String> {
    let (tx, rx) = mpsc::channel();
    ctx.hub
        .waiting
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(xid, tx);
    let t0 = Instant::now();
    let dst = SocketAddrV4::new(Ipv4Addr::BROADCAST, 67);
    let res = (|| {
        let mut select = None;
        for phase in 0..2 {
            let mut answer = None;
            'tries: for (i, &w) in waits.iter().enumerate() {
                if i > 0 {
                    rec.dhcp_resent += 1;
                }
                let p = dhcp::build(&dhcp::Ask {
                    xid,
                    mac: node.mac,
                    secs: t0.elapsed().as_secs().min(u16::MAX as u64) as u16,
                    asker,
                    select,
                    uuid,
                });
                ctx.hub
                    .sock
                    .send_to(&p, dst)
                    .map_err(|e| format!("DHCP send: {e}"))?;
                let until = Instant::now() + Duration::from_secs(w);
                loop {
                    let left = until.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(left) {
                        Ok(r) if phase == 0 && r.msg_type == dhcp::OFFER => {
                            answer = Some(r);
                            break 'tries;
                        }
                        Ok(r) if phase == 1 && matches!(r.msg_type, dhcp::ACK | dhcp::NAK) => {
                            answer = Some(r);
                            break 'tries;
                        }
                        Ok(_) => {}
                        Err(_) => continue 'tries,
                    }
                }
            }
            let Some(r) = answer else {
                return Err(format!(
                    "{:?} DHCP: no {} after {} tries",
                    asker,
                    if phase == 0 { "OFFER" } else { "ACK" },
                    waits.len()
                ));
            };
            if phase == 0 {
                let sid = r.server_id.unwrap_or(r.siaddr);
                select = Some((r.yiaddr, sid));
            } else if r.msg_type == dhcp::NAK {
                return Err(format!("{asker:?} DHCP: NAK"));
            } else {
                return Ok(r);
            }
        }
        Err("unreachable".into())
    })();
    ctx.hub
        .waiting
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&xid);
    res
}

fn tget(
    ctx: &Ctx,
    ip: Ipv4Addr,
    server: Ipv4Addr,
    name: &str,
    pxelinux: bool,
    keep: bool,
    rec: &mut Rec,
) -> Result<tftp::Got, String> {
    let a = tftp::Ask {
        local: ip,
        server,
        name,
        blksize: Some(if pxelinux { 1408 } else { 1456 }),
        tsize: pxelinux,
        probe_only: false,
        keep,
        schedule: if pxelinux { &ctx.pxelinux } else { &ctx.rom },
    };
    let g = tftp::get(&a, &mut rec.tftp)?;
    if let tftp::Got::Data(n, _) = &g {
        rec.bytes += n;
    }
    Ok(g)
}

fn need(g: tftp::Got, name: &str) -> Result<Vec<u8>, String> {
    match g {
        tftp::Got::Data(_, v) => Ok(v),
        tftp::Got::NotFound(m) => Err(format!("TFTP {name}: {m}")),
    }
}

fn boot(ctx: &Ctx, idx: u32, node: &Node, rec: &mut Rec) -> Result<(), String> {
    let mut uuid = [0u8; 16];
    uuid[..4].copy_from_slice(&idx.to_be_bytes());
    uuid[10..].copy_from_slice(&node.mac);
    let xid = 0x5000_0000 | (idx << 4);
    let ack = dora(
        ctx,
        node,
        &uuid,
        xid,
        dhcp::Asker::Rom,
        &[4, 8, 16, 32],
        rec,
    )?;
    rec.lease = Some(ctx.now());
    if ack.yiaddr != node.ip {
        return Err(format!("leased {}, defined {}", ack.yiaddr, node.ip));
    }
    let ip = ack.yiaddr;
    let server = if ack.siaddr.is_unspecified() {
        ack.server_id.unwrap_or(ack.siaddr)
    } else {
        ack.siaddr
    };
    if ack.file.is_empty() {
        return Err("no boot file in the lease".into());
    }
    // the ROM: tsize probe (aborted), then the file
    let probe = tftp::Ask {
        local: ip,
        server,
        name: &ack.file,
        blksize: None,
        tsize: true,
        probe_only: true,
        keep: false,
        schedule: &ctx.rom,
    };
    if let tftp::Got::NotFound(m) = tftp::get(&probe, &mut rec.tftp)? {
        return Err(format!("TFTP {}: {m}", ack.file));
    }
    need(
        tget(ctx, ip, server, &ack.file, false, false, rec)?,
        &ack.file,
    )?;
    rec.nbp = Some(ctx.now());
    let (kernel, initrd) = if ack.file.ends_with("pxelinux.0") {
        need(
            tget(ctx, ip, server, "ldlinux.c32", true, false, rec)?,
            "ldlinux.c32",
        )?;
        let mac = node
            .mac
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join("-");
        let u: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
        let uuid_name = format!(
            "{}-{}-{}-{}-{}",
            &u[0..8],
            &u[8..12],
            &u[12..16],
            &u[16..20],
            &u[20..32]
        );
        let hex = format!("{:08X}", u32::from(ip));
        let mut names = vec![
            format!("pxelinux.cfg/{uuid_name}"),
            format!("pxelinux.cfg/01-{mac}"),
        ];
        for l in (1..=8).rev() {
            names.push(format!("pxelinux.cfg/{}", &hex[..l]));
        }
        names.push("pxelinux.cfg/default".into());
        let mut cfg = None;
        for n in &names {
            if let tftp::Got::Data(_, v) = tget(ctx, ip, server, n, true, true, rec)? {
                cfg = Some(String::from_utf8_lossy(&v).into_owned());
                break;
            }
        }
        let cfg = cfg.ok_or("no pxelinux config found")?;
        rec.config = Some(ctx.now());
        let mut k = None;
        let mut i = None;
        for l in cfg.lines() {
            let mut w = l.split_whitespace();
            match w.next().map(|s| s.to_ascii_lowercase()).as_deref() {
                Some("kernel") | Some("linux") => k = w.next().map(str::to_string),
                Some("initrd") => i = w.next().map(str::to_string),
                Some("append") => {
                    for a in w {
                        if let Some(v) = a.strip_prefix("initrd=") {
                            i = Some(v.split(',').next().unwrap_or(v).to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        let k = k.ok_or("no KERNEL in the pxelinux config")?;
        let i = i.ok_or("no initrd in the pxelinux config")?;
        need(tget(ctx, ip, server, &k, true, false, rec)?, &k)?;
        rec.kernel = Some(ctx.now());
        need(tget(ctx, ip, server, &i, true, false, rec)?, &i)?;
        (k, i)
    } else {
        // iPXE: DHCP again, then the script and what it names over HTTP
        let ack2 = dora(
            ctx,
            node,
            &uuid,
            xid | 1,
            dhcp::Asker::Ipxe,
            &[1, 2, 4, 8, 10],
            rec,
        )?;
        rec.lease2 = Some(ctx.now());
        let url = ack2.file;
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("iPXE was given '{url}', not an http:// URL"))?;
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host: Ipv4Addr = host
            .split(':')
            .next()
            .unwrap_or(host)
            .parse()
            .map_err(|_| format!("host of '{url}' is not an address"))?;
        let mut conn = http::Conn::new(ip, SocketAddrV4::new(host, 80));
        let mut script_path = path.to_string();
        let mut urls = Vec::new();
        for _ in 0..3 {
            let (st, n, body) = conn.get(&script_path, true)?;
            rec.bytes += n;
            if st != 200 {
                return Err(format!("GET {script_path}: {st}"));
            }
            let s = String::from_utf8_lossy(&body).replace("${next-server}", &server.to_string());
            let mut chain = None;
            for l in s.lines() {
                let u = l.split_whitespace().find(|w| w.starts_with("http://"));
                match (l.split_whitespace().next(), u) {
                    (Some("chain"), Some(u)) => chain = Some(u.to_string()),
                    (Some("imgfetch" | "kernel" | "initrd" | "module"), Some(u)) => {
                        urls.push(u.to_string())
                    }
                    _ => {}
                }
            }
            match chain {
                Some(c) if urls.is_empty() => {
                    script_path = c
                        .strip_prefix("http://")
                        .and_then(|r| r.find('/').map(|p| r[p..].to_string()))
                        .unwrap_or(c);
                }
                _ => break,
            }
        }
        rec.config = Some(ctx.now());
        if urls.len() < 2 {
            return Err(format!(
                "the iPXE script names {} files, not kernel and initrd",
                urls.len()
            ));
        }
        for (j, u) in urls.iter().enumerate() {
            let p = u
                .strip_prefix("http://")
                .and_then(|r| r.find('/').map(|x| r[x..].to_string()))
                .unwrap_or_default();
            let (st, n, _) = conn.get(&p, false)?;
            rec.bytes += n;
            if st != 200 {
                return Err(format!("GET {p}: {st}"));
            }
            if j == 0 {
                rec.kernel = Some(ctx.now());
            }
        }
        rec.http_connects = conn.connects;
        (urls[0].clone(), urls[1].clone())
    };
    let _ = (kernel, initrd);
    rec.done = Some(ctx.now());
    Ok(())
}

/// The statelite variant: mount the root, read what a boot reads.
fn nfs_boot(ctx: &Ctx, job: &NfsJob, node: &Node, rec: &mut Rec) -> Result<(), String> {
    let mut m = nfs::Rpc::connect(node.ip, SocketAddrV4::new(job.server, job.mount_port))?;
    let root = m.mount(&job.export)?;
    // mount.nfs closes its MOUNT connection once it has the handle; the NFS one stays
    let rpc = if job.nfs_port == job.mount_port {
        m
    } else {
        drop(m);
        nfs::Rpc::connect(node.ip, SocketAddrV4::new(job.server, job.nfs_port))?
    };
    rec.config = Some(ctx.now());
    let mut c = nfs::Client::new(rpc, root);
    for (path, size) in &job.files {
        let fh = c.resolve(path)?;
        let n = c.read_all(&fh, 65536)?;
        if n != *size {
            return Err(format!("{path}: read {n} bytes, the file has {size}"));
        }
    }
    rec.bytes = c.bytes;
    rec.http_connects = c.rpc.calls.min(u64::from(u32::MAX)) as u32;
    rec.done = Some(ctx.now());
    Ok(())
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let v: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    v.try_into().ok()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

fn main() {
    let mut iface = String::new();
    let mut nodes_file = String::new();
    let mut spread = 10.0f64;
    let mut out = String::from("bootstorm.csv");
    let mut nfs_arg = String::new();
    let mut files_arg = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_default();
        match a.as_str() {
            "--iface" => iface = val(),
            "--nodes" => nodes_file = val(),
            "--spread" => spread = val().parse().unwrap_or(10.0),
            "--out" => out = val(),
            "--nfs" => nfs_arg = val(),
            "--files" => files_arg = val(),
            _ => {
                eprintln!("usage: bootstorm --iface IF --nodes FILE [--spread SECS] [--out CSV]");
                std::process::exit(2);
            }
        }
    }
    let text = std::fs::read_to_string(&nodes_file).unwrap_or_else(|e| {
        eprintln!("bootstorm: {nodes_file}: {e}");
        std::process::exit(2)
    });
    let mut nodes = Vec::new();
    for (n, l) in text.lines().enumerate() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.is_empty() {
            continue;
        }
        match (
            w.len(),
            w.get(1).and_then(|m| parse_mac(m)),
            w.get(2).and_then(|i| i.parse().ok()),
        ) {
            (3, Some(mac), Some(ip)) => nodes.push(Node {
                name: w[0].to_string(),
                mac,
                ip,
            }),
            _ => {
                eprintln!("bootstorm: {nodes_file}:{}: want 'name mac ip'", n + 1);
                std::process::exit(2);
            }
        }
    }
    let nfs_job = if nfs_arg.is_empty() {
        None
    } else {
        let p: Vec<&str> = nfs_arg.splitn(4, ':').collect();
        let parsed = (|| {
            let files = std::fs::read_to_string(&files_arg).ok()?;
            let files = files
                .lines()
                .filter_map(|l| {
                    let (p, s) = l.rsplit_once(' ')?;
                    Some((p.to_string(), s.trim().parse().ok()?))
                })
                .collect();
            Some(NfsJob {
                server: p.first()?.parse().ok()?,
                mount_port: p.get(1)?.parse().ok()?,
                nfs_port: p.get(2)?.parse().ok()?,
                export: p.get(3)?.to_string(),
                files,
            })
        })();
        match parsed {
            Some(j) => Some(j),
            None => {
                eprintln!("bootstorm: --nfs SERVER:MOUNTPORT:NFSPORT:/export --files LIST (path size a line)");
                std::process::exit(2);
            }
        }
    };
    let hub = Hub::open(&iface).unwrap_or_else(|e| {
        eprintln!("bootstorm: DHCP socket on {iface}: {e}");
        std::process::exit(1)
    });
    let ctx = Arc::new(Ctx {
        nfs: nfs_job,
        hub,
        epoch: Instant::now(),
        rom: tftp::Schedule::rom(),
        pxelinux: tftp::Schedule::pxelinux(),
    });
    let nodes = Arc::new(nodes);
    let n = nodes.len();
    let mut threads = Vec::with_capacity(n);
    for i in 0..n {
        let ctx = ctx.clone();
        let nodes = nodes.clone();
        let at = Duration::from_secs_f64(spread * i as f64 / n.max(1) as f64);
        let t = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let wake = ctx.epoch + at;
                let now = Instant::now();
                if wake > now {
                    std::thread::sleep(wake - now);
                }
                let mut rec = Rec {
                    start: ctx.now(),
                    ..Rec::default()
                };
                let r = match &ctx.nfs {
                    Some(job) => nfs_boot(&ctx, job, &nodes[i], &mut rec),
                    None => boot(&ctx, i as u32, &nodes[i], &mut rec),
                };
                if let Err(e) = r {
                    rec.fail = Some(e);
                }
                rec
            });
        match t {
            Ok(t) => threads.push(t),
            Err(e) => {
                eprintln!("bootstorm: cannot start node thread {i}: {e}");
                std::process::exit(1);
            }
        }
    }
    let recs: Vec<Rec> = threads
        .into_iter()
        .map(|t| {
            t.join().unwrap_or_else(|_| Rec {
                fail: Some("thread panicked".into()),
                ..Rec::default()
            })
        })
        .collect();
    let f = |x: Option<f64>| x.map(|v| format!("{v:.3}")).unwrap_or_default();
    let mut csv = String::from(
        "node,start,lease,nbp,lease2,config,kernel,done,seconds,dhcp_resent,tftp_rrq_resent,tftp_ack_resent,http_connects,bytes,fail\n",
    );
    for (node, r) in nodes.iter().zip(&recs) {
        csv.push_str(&format!(
            "{},{:.3},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            node.name,
            r.start,
            f(r.lease),
            f(r.nbp),
            f(r.lease2),
            f(r.config),
            f(r.kernel),
            f(r.done),
            f(r.done.map(|d| d - r.start)),
            r.dhcp_resent,
            r.tftp.rrq_resent,
            r.tftp.ack_resent,
            r.http_connects,
            r.bytes,
            r.fail.as_deref().unwrap_or("").replace(',', ";")
        ));
    }
    if let Err(e) = std::fs::write(&out, csv) {
        eprintln!("bootstorm: {out}: {e}");
    }
    let mut per: Vec<f64> = recs
        .iter()
        .filter_map(|r| r.done.map(|d| d - r.start))
        .collect();
    per.sort_by(|a, b| a.total_cmp(b));
    let booted = per.len();
    let last = recs.iter().filter_map(|r| r.done).fold(0.0, f64::max);
    let phase = |g: &dyn Fn(&Rec) -> Option<f64>| {
        let mut v: Vec<f64> = recs.iter().filter_map(g).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        (pct(&v, 50.0), v.last().copied().unwrap_or(f64::NAN))
    };
    let lease = phase(&|r| r.lease.map(|x| x - r.start));
    let nbp = phase(&|r| Some(r.nbp? - r.lease?));
    let cfg = phase(&|r| Some(r.config? - r.nbp?));
    let files = phase(&|r| Some(r.done? - r.config?));
    let resent = recs
        .iter()
        .filter(|r| r.dhcp_resent + r.tftp.rrq_resent + r.tftp.ack_resent > 0)
        .count();
    let mut fails: HashMap<String, usize> = HashMap::new();
    for r in &recs {
        if let Some(e) = &r.fail {
            // group by the message without node-specific numbers
            let k: String = e.chars().filter(|c| !c.is_ascii_digit()).collect();
            *fails.entry(k).or_default() += 1;
        }
    }
    let fails: Vec<String> = fails.iter().map(|(k, v)| format!("{v}× {k}")).collect();
    println!(
        "nodes={n} booted={booted} failed={} all_booted_s={:.2} p50_s={:.2} p99_s={:.2} max_s={:.2} lease_p50={:.2} lease_max={:.2} nbp_p50={:.2} nbp_max={:.2} config_p50={:.2} config_max={:.2} files_p50={:.2} files_max={:.2} nodes_with_retransmissions={resent} failures=\"{}\"",
        n - booted,
        last,
        pct(&per, 50.0),
        pct(&per, 99.0),
        per.last().copied().unwrap_or(f64::NAN),
        lease.0,
        lease.1,
        nbp.0,
        nbp.1,
        cfg.0,
        cfg.1,
        files.0,
        files.1,
        fails.join("; ")
    );
}
