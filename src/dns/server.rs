//! The DNS listeners: UDP and TCP on one port (53). Each packet catches the store up first (read
//! your writes) and, when a table the zones come from changed, the view is rebuilt before the
//! answer. Our zones are answered on the receiving task; forwarded questions run as tasks of
//! their own, each holding a slot of its client ([`PerSource`], `site.dnsperclient`) and of the
//! pool. TCP connections take a client slot before a pool slot, as every TCP service here.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tracing::{debug, info, warn};

use super::answer::{decide, Decision, Transport};
use super::forward::Forwarder;
use super::zone::{self, DnsView};
use crate::limits::{PerSource, Throttle};
use crate::store::resolver::{Resolver, Ticket};
use crate::store::watch::ChangeBatch;

/// Forwarded questions in flight, all clients together.
pub const MAX_FORWARDS: usize = 256;
/// TCP connections, all clients together.
pub const MAX_TCP: usize = 64;
/// Forwarded questions or TCP connections one client address may hold (`site.dnsperclient`).
pub const PER_CLIENT: usize = 16;
/// Questions per second one address may ask over UDP (`site.dnsqpsperclient`); above it the
/// rest of that second is dropped. Generous for a node (a boot asks a handful).
pub const QPS_PER_CLIENT: usize = 2000;
/// Sources counted per second.
const RATE_SOURCES: usize = 16384;
/// A TCP connection idle this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// The zones, rebuilt when a table they come from changes.
pub struct Keeper {
    resolver: Arc<Resolver>,
    view: RwLock<Arc<DnsView>>,
    wanted: AtomicU64,
    built: AtomicU64,
    rebuilding: tokio::sync::Mutex<()>,
}

impl Keeper {
    pub fn new(resolver: Arc<Resolver>) -> Arc<Keeper> {
        let k = Arc::new(Keeper {
            resolver: resolver.clone(),
            view: RwLock::new(Arc::new(DnsView::default())),
            // Built for nothing yet: the first request (or `load`) builds.
            wanted: AtomicU64::new(1),
            built: AtomicU64::new(0),
            rebuilding: tokio::sync::Mutex::new(()),
        });
        let weak = Arc::downgrade(&k);
        resolver.on_change(Box::new(move |b: &Arc<ChangeBatch>| {
            if let Some(k) = weak.upgrade() {
                if b.reset || b.touches(zone::DEPENDS_ON) {
                    k.wanted.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
        k
    }

    pub fn view(&self) -> Arc<DnsView> {
        self.view
            .read()
            .map(|v| v.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Catches the store up for a request that arrived at `t` and rebuilds the view when it is
    /// out of date; returns the view to answer from.
    pub async fn current(self: &Arc<Self>, t: Ticket) -> Arc<DnsView> {
        // One commit-position question when nothing changed (and free when a catch-up begun
        // after the packet arrived has finished): cheaper inline than on the blocking pool, as
        // the DHCP keeper does it.
        if let Err(e) = self.resolver.catch_up_since(t) {
            warn!("DNS: cannot read the change log: {e}");
        }
        if self.built.load(Ordering::SeqCst) != self.wanted.load(Ordering::SeqCst) {
            let _one = self.rebuilding.lock().await;
            let want = self.wanted.load(Ordering::SeqCst);
            if self.built.load(Ordering::SeqCst) != want {
                let r = self.resolver.clone();
                match tokio::task::spawn_blocking(move || zone::build(&r, None)).await {
                    Ok(Ok(v)) => {
                        info!(
                            names = v.names.len(),
                            zones = v.domains.len() + v.reverse.len(),
                            forwarders = v.forwarders.len(),
                            "DNS zones loaded"
                        );
                        for p in &v.problems {
                            warn!("DNS: {p}");
                        }
                        if let Ok(mut slot) = self.view.write() {
                            *slot = Arc::new(v);
                        }
                    }
                    Ok(Err(e)) => warn!("DNS zones not reloaded: {e}"),
                    Err(e) => warn!("DNS zones not reloaded: {e}"),
                }
                self.built.store(want, Ordering::SeqCst);
            }
        }
        self.view()
    }
}

/// The bound sockets: one wildcard pair, or one pair per local address when another name
/// server already holds one address's port (systemd-resolved's stub on 127.0.0.53).
pub struct Sockets {
    pub udp: Vec<UdpSocket>,
    pub tcp: Vec<TcpListener>,
}

async fn bind_pair(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let udp = UdpSocket::bind(addr).await?;
    let tcp = TcpListener::bind(addr).await?;
    Ok((udp, tcp))
}

pub async fn bind(port: u16) -> anyhow::Result<Sockets> {
    let any = SocketAddr::from(([0, 0, 0, 0], port));
    let first = match bind_pair(any).await {
        Ok((u, t)) => {
            return Ok(Sockets {
                udp: vec![u],
                tcp: vec![t],
            })
        }
        Err(e) => e,
    };
    if first.kind() != std::io::ErrorKind::AddrInUse {
        anyhow::bail!("cannot bind DNS port {port}: {first}");
    }
    // Someone holds the port on one address: take it on every other address of ours.
    let mut s = Sockets {
        udp: Vec::new(),
        tcp: Vec::new(),
    };
    let mut taken = Vec::new();
    let addrs: Vec<std::net::Ipv4Addr> = nix::ifaddrs::getifaddrs()
        .map(|a| {
            a.filter_map(|i| i.address.and_then(|s| s.as_sockaddr_in().map(|v| v.ip())))
                .collect()
        })
        .unwrap_or_default();
    for ip in addrs {
        match bind_pair(SocketAddr::from((ip, port))).await {
            Ok((u, t)) => {
                s.udp.push(u);
                s.tcp.push(t);
            }
            Err(e) => taken.push(format!("{ip} ({e})")),
        }
    }
    if s.udp.is_empty() {
        anyhow::bail!("cannot bind DNS port {port}: {first}; no local address is free either");
    }
    warn!(
        "DNS port {port} is held on some addresses by another server: answering on this machine's other addresses as they are now (not on {})",
        taken.join(", ")
    );
    Ok(s)
}

struct Shared {
    keeper: Arc<Keeper>,
    resolver: Arc<Resolver>,
    forwarder: Forwarder,
    sources: Arc<PerSource>,
    forwards: Arc<Semaphore>,
    rate: std::sync::Mutex<crate::limits::Rate>,
}

pub async fn run(
    s: Sockets,
    resolver: Arc<Resolver>,
    per_client: usize,
    qps_per_client: usize,
    shutdown: watch::Receiver<bool>,
) {
    let keeper = Keeper::new(resolver.clone());
    // Zones ready before the first question.
    let _ = keeper.current(resolver.ticket()).await;
    let shared = Arc::new(Shared {
        keeper,
        resolver,
        forwarder: Forwarder::default(),
        sources: PerSource::new(per_client),
        forwards: Arc::new(Semaphore::new(MAX_FORWARDS)),
        rate: std::sync::Mutex::new(crate::limits::Rate::new(
            u32::try_from(qps_per_client).unwrap_or(u32::MAX),
            RATE_SOURCES,
        )),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for u in s.udp {
        tasks.spawn(serve_udp(Arc::new(u), shared.clone(), shutdown.clone()));
    }
    for t in s.tcp {
        tasks.spawn(serve_tcp(t, shared.clone(), shutdown.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

static DROPPED: Throttle = Throttle::new();
static OVER: Throttle = Throttle::new();

fn log_drop(peer: IpAddr, why: &str) {
    if let Some(suppressed) = DROPPED.check() {
        warn!(suppressed, "DNS: {why} from {peer}; dropped");
    }
}

async fn serve_udp(sock: Arc<UdpSocket>, sh: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    debug!("DNS UDP receive failed: {e}");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let allowed = sh
            .rate
            .lock()
            .map(|mut r| r.allow(peer.ip()))
            .unwrap_or(true);
        if !allowed {
            static FAST: Throttle = Throttle::new();
            if let Some(suppressed) = FAST.check() {
                warn!(
                    suppressed,
                    "DNS: {} asks more than its questions per second (site.dnsqpsperclient); dropped",
                    peer.ip()
                );
            }
            continue;
        }
        let ticket = sh.resolver.ticket();
        let view = sh.keeper.current(ticket).await;
        match decide(&view, &buf[..n], Transport::Udp) {
            Decision::Drop(why) => log_drop(peer.ip(), why),
            Decision::Reply(b) => {
                if let Err(e) = sock.send_to(&b, peer).await {
                    debug!("DNS: cannot answer {peer}: {e}");
                }
            }
            Decision::Forward(req) => {
                let Some(slot) = sh.sources.try_acquire(peer.ip()) else {
                    if let Some(suppressed) = OVER.check() {
                        warn!(suppressed, "DNS: {} has {} questions at the forwarders (site.dnsperclient); dropped", peer.ip(), sh.sources.max());
                    }
                    continue;
                };
                let Ok(permit) = sh.forwards.clone().try_acquire_owned() else {
                    static FULL: Throttle = Throttle::new();
                    if let Some(suppressed) = FULL.check() {
                        warn!(
                            suppressed,
                            "DNS: {MAX_FORWARDS} questions at the forwarders; dropped"
                        );
                    }
                    continue;
                };
                let (sh, sock, servers) = (sh.clone(), sock.clone(), view.forwarders.clone());
                tokio::spawn(async move {
                    let _held = (slot, permit);
                    if let Some(b) = sh.forwarder.answer(&servers, &req, Transport::Udp).await {
                        let _ = sock.send_to(&b, peer).await;
                    }
                });
            }
        }
    }
}

async fn serve_tcp(l: TcpListener, sh: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let pool = Arc::new(Semaphore::new(MAX_TCP));
    loop {
        let (conn, peer) = tokio::select! {
            r = l.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!("DNS TCP accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Some(slot) = sh.sources.try_acquire(peer.ip()) else {
            if let Some(suppressed) = OVER.check() {
                warn!(
                    suppressed,
                    "DNS: {} holds its {} slots (site.dnsperclient); connection refused",
                    peer.ip(),
                    sh.sources.max()
                );
            }
            continue;
        };
        let Ok(permit) = pool.clone().try_acquire_owned() else {
            static FULL: Throttle = Throttle::new();
            if let Some(suppressed) = FULL.check() {
                warn!(
                    suppressed,
                    "DNS: {MAX_TCP} TCP connections open; {} refused",
                    peer.ip()
                );
            }
            continue;
        };
        let sh = sh.clone();
        tokio::spawn(async move {
            let _held = (slot, permit);
            tcp_session(conn, peer, &sh).await;
        });
    }
}

async fn tcp_session(mut c: TcpStream, peer: SocketAddr, sh: &Shared) {
    let mut len = [0u8; 2];
    loop {
        match tokio::time::timeout(TCP_IDLE, c.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let n = usize::from(u16::from_be_bytes(len));
        let mut msg = vec![0u8; n];
        match tokio::time::timeout(TCP_IDLE, c.read_exact(&mut msg)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let ticket = sh.resolver.ticket();
        let view = sh.keeper.current(ticket).await;
        let out = match decide(&view, &msg, Transport::Tcp) {
            Decision::Drop(why) => {
                log_drop(peer.ip(), why);
                return;
            }
            Decision::Reply(b) => b,
            Decision::Forward(req) => {
                match sh
                    .forwarder
                    .answer(&view.forwarders, &req, Transport::Tcp)
                    .await
                {
                    Some(b) => b,
                    None => return,
                }
            }
        };
        let Ok(l) = u16::try_from(out.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(out.len() + 2);
        framed.extend_from_slice(&l.to_be_bytes());
        framed.extend_from_slice(&out);
        if c.write_all(&framed).await.is_err() {
            return;
        }
    }
}
