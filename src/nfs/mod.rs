//! NFS for statelite nodes: NFSv3 and MOUNT v3 over TCP on `site.nfsport` (2049), plus a
//! portmapper v2 answer there and on port 111, all our own code (RFC 1813, 5531, 4506, 1833).
//!
//! Rooms: [`xdr`] and [`rpc`] (codecs with length limits, pure), [`fh`] (signed file handles),
//! [`sys`] (the unsafe system calls: kernel file handles, getdents64), [`exports`] (the export
//! table as a pure function of the tables), [`vfs`] (open exports and handle resolution),
//! [`dircache`] (directory listings kept while their directory is unchanged),
//! [`nfs3`], [`mount`], [`portmap`] (the procedures), [`server`] (sockets, limits and the NFS
//! threads).
//! [`start`] is the daemon's wiring: it loads the handle key, computes the exports, binds the
//! ports and reloads the exports when the change log touches a table they depend on.

pub mod dircache;
pub mod exports;
pub mod fh;
pub mod mount;
pub mod nfs3;
pub mod portmap;
pub mod rpc;
pub mod server;
pub mod sys;
pub mod vfs;
pub mod xdr;

use std::collections::HashSet;
use std::future::Future;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use tokio::sync::{broadcast, watch};
use tracing::{info, warn};

use crate::store::resolver::{Resolver, Ticket};
use crate::store::watch::ChangeBatch;
use crate::store::Store;

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The NFS port when `site.nfsport` is unset.
pub const DEFAULT_PORT: u16 = 2049;
/// Where the handle key lives: `passwd` row key=nfs-handle, username=bootherd.
pub const KEY_ROW: [&str; 2] = ["nfs-handle", "bootherd"];
/// How often exports whose root could not be opened are retried.
const RETRY: Duration = Duration::from_secs(30);

fn random<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context("cannot read /dev/urandom")?;
    Ok(b)
}

/// The handle key from the store, created (32 random bytes, base64) on first start.
/// Never logged.
pub fn load_or_create_key(store: &Store) -> anyhow::Result<fh::HandleKey> {
    let decode = |s: &str| -> Option<[u8; 32]> {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .ok()
            .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
    };
    if let Some(row) = store.get("passwd", &KEY_ROW)? {
        if let Some(s) = row.get(2).cloned().flatten() {
            return decode(&s).map(fh::HandleKey::new).with_context(|| {
                "passwd key=nfs-handle,username=bootherd does not hold 32 base64 bytes; delete the row to have a new key made (clients then need to remount)"
            });
        }
    }
    let key = random::<32>()?;
    let text = base64::engine::general_purpose::STANDARD.encode(key);
    store.write(None, |tx| {
        tx.set(
            "passwd",
            &KEY_ROW,
            &[
                ("password", Some(text.as_str())),
                ("comments", Some("bootherd NFS file handle key")),
            ],
        )
    })?;
    info!("nfs: created the file handle key (passwd key=nfs-handle)");
    Ok(fh::HandleKey::new(key))
}

/// This host's addresses (every interface, IPv4 and IPv6).
fn local_addrs() -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifa in addrs {
            let Some(a) = ifa.address.as_ref() else {
                continue;
            };
            let ip = if let Some(s) = a.as_sockaddr_in() {
                IpAddr::V4(s.ip())
            } else if let Some(s) = a.as_sockaddr_in6() {
                IpAddr::V6(s.ip())
            } else {
                continue;
            };
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    out
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

/// Recomputes the export table and applies it; returns whether some export failed to open.
fn reload(resolver: &Resolver, fs: &vfs::Fs, warned: &mut HashSet<String>) -> anyhow::Result<bool> {
    let (images, nodes) = exports::gather(resolver)?;
    let local = exports::Local {
        addrs: local_addrs(),
        hostname: hostname(),
        master: resolver.site_master()?,
    };
    let plan = exports::plan(&images, &nodes, &local);
    for p in &plan.problems {
        warn!("nfs: {p}");
    }
    for n in &plan.missing_ip {
        if warned.insert(n.clone()) {
            warn!("nfs: node {n} has a state directory here but no hosts.ip; nobody can mount it until it has one");
        }
    }
    warned.retain(|n| plan.missing_ip.contains(n));
    Ok(!fs.apply(plan).is_empty())
}

impl server::Freshness for Exports {
    fn arrived(&self) -> Ticket {
        self.resolver.ticket()
    }

    fn refresh(&self, arrived: Ticket) {
        Exports::refresh(self, Some(arrived))
    }
}

/// Keeps the export table as current as the store: asked before every MOUNT and NFS call, it
/// catches the store up and recomputes the exports first when a table they come from changed
/// (read your writes: a node added or moved a moment ago can mount).
struct Exports {
    resolver: Arc<Resolver>,
    fs: Arc<vfs::Fs>,
    /// Bumped for each change batch touching [`exports::DEPENDS_ON`].
    wanted: AtomicU64,
    /// The `wanted` the table in use was computed for.
    built: AtomicU64,
    state: Mutex<ReloadState>,
}

#[derive(Default)]
struct ReloadState {
    /// Nodes already warned about (no hosts.ip).
    warned: HashSet<String>,
    /// Some export could not be opened (or the table not computed): try again later.
    retry: bool,
}

impl Exports {
    fn changed(&self, b: &ChangeBatch) {
        if b.touches(exports::DEPENDS_ON) {
            self.wanted.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Blocking. Cheap when nothing changed: one commit-position question (none when a check
    /// begun after `arrived` already finished), two atomic loads.
    fn refresh(&self, arrived: Option<Ticket>) {
        let caught = match arrived {
            Some(t) => self.resolver.catch_up_since(t),
            None => self.resolver.catch_up(),
        };
        if let Err(e) = caught {
            warn!("nfs: cannot read the change log: {e}");
        }
        if self.built.load(Ordering::SeqCst) == self.wanted.load(Ordering::SeqCst) {
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let want = self.wanted.load(Ordering::SeqCst);
        if self.built.load(Ordering::SeqCst) == want {
            return;
        }
        self.reload(&mut st);
        self.built.store(want, Ordering::SeqCst);
    }

    /// Recomputes now (start, and the retry of exports that failed to open). Blocking.
    fn reload_now(&self, only_if_retry: bool) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if only_if_retry && !st.retry {
            return;
        }
        let want = self.wanted.load(Ordering::SeqCst);
        self.reload(&mut st);
        self.built.store(want, Ordering::SeqCst);
    }

    fn reload(&self, st: &mut ReloadState) {
        st.retry = match reload(&self.resolver, &self.fs, &mut st.warned) {
            Ok(failed) => failed,
            Err(e) => {
                warn!("nfs: exports not computed: {e:#}");
                true
            }
        };
    }
}

/// Starts NFS. `portmapper`: also answer on port 111 when it is free.
pub async fn start(
    store: Arc<Store>,
    resolver: Arc<Resolver>,
    mut changes: broadcast::Receiver<Arc<ChangeBatch>>,
    shutdown: watch::Receiver<bool>,
    portmapper: bool,
) -> anyhow::Result<Option<Task>> {
    let s = store.clone();
    let port: u16 = match tokio::task::spawn_blocking(move || s.site("nfsport")).await?? {
        Some(p) if !p.trim().is_empty() => {
            crate::store::validate::site_value("nfsport", &p).map_err(anyhow::Error::msg)?;
            p.trim()
                .parse()
                .with_context(|| format!("site.nfsport '{p}' is not a port number"))?
        }
        _ => DEFAULT_PORT,
    };
    let s = store.clone();
    let key = tokio::task::spawn_blocking(move || load_or_create_key(&s)).await??;
    let fs = Arc::new(vfs::Fs::new(key, random::<8>()?));
    let keeper = Arc::new(Exports {
        resolver: resolver.clone(),
        fs: fs.clone(),
        wanted: AtomicU64::new(0),
        built: AtomicU64::new(0),
        state: Mutex::new(ReloadState::default()),
    });
    let weak = Arc::downgrade(&keeper);
    resolver.on_change(Box::new(move |b| {
        if let Some(k) = weak.upgrade() {
            k.changed(b);
        }
    }));
    let k = keeper.clone();
    tokio::task::spawn_blocking(move || k.reload_now(false)).await?;
    // Not fatal: another NFS server (the kernel's nfsd) may own the port; the rest of the
    // appliance still runs, and the log says how to silence this.
    let tcp = match tokio::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).await {
        Ok(l) => l,
        Err(e) => {
            warn!("NFS not started: cannot listen on TCP port {port} ({e}); another NFS server runs here? (--no-nfs, or set site.nfsport)");
            return Ok(None);
        }
    };
    let mut pmap_tcp = None;
    let mut pmap_udp = None;
    if portmapper && port != portmap::PORT {
        match tokio::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, portmap::PORT)).await {
            Ok(l) => pmap_tcp = Some(l),
            Err(e) => warn!("nfs: portmapper not started on TCP port 111 ({e}); rpcbind or another portmapper must map NFS to port {port}, or clients must name the ports"),
        }
        match tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, portmap::PORT)).await {
            Ok(u) => pmap_udp = Some(u),
            Err(e) => warn!("nfs: portmapper not started on UDP port 111 ({e})"),
        }
    }
    let s = store.clone();
    let per_client = tokio::task::spawn_blocking(move || {
        crate::limits::site_limit(&s, "nfsperclient", server::PER_CLIENT)
    })
    .await
    .unwrap_or(server::PER_CLIENT);
    // Only nodes (and this host) may connect: an address that no node has can mount nothing
    // a node needs, so it is closed before it takes a slot.
    let callers = Arc::new(crate::boot::callback::Callers::new(resolver.clone()));
    let (r2, fs2) = (resolver.clone(), fs.clone());
    let admit: server::Admit = Arc::new(move |ip: std::net::IpAddr| {
        if ip.is_loopback() {
            return true;
        }
        let _ = r2.catch_up();
        fs2.table().plan.exports.iter().any(
            |e| matches!(&e.access, exports::Access::ReadWrite { addr: Some(a), .. } if *a == ip),
        ) || callers.node(ip).is_some()
    });
    let svc = Arc::new(
        server::Service::new(fs.clone(), port, pmap_tcp.as_ref().map(|_| portmap::PORT))
            .with_freshness(keeper.clone())
            .with_per_client(per_client)
            .with_admit(admit),
    );
    info!(
        port,
        portmapper = pmap_tcp.is_some(),
        exports = fs.table().by_id.len(),
        "NFS listening"
    );
    // The TCP listeners and their connections live on the NFS service's own runtime (see
    // `server`): their metadata calls run on its worker threads, so they can only ever delay
    // other NFS calls, never the rest of the daemon.
    let rt = server::NfsRuntime::new().context("cannot start the NFS threads")?;
    let mut on_rt = Vec::new();
    for l in std::iter::once(tcp).chain(pmap_tcp) {
        // Moved from this runtime's reactor to the NFS runtime's.
        let l = l.into_std().context("NFS listener")?;
        let (svc, stop) = (svc.clone(), shutdown.clone());
        on_rt.push(rt.spawn(async move {
            match tokio::net::TcpListener::from_std(l) {
                Ok(l) => server::serve_tcp(l, svc, stop).await,
                Err(e) => warn!("nfs: listener not moved to the NFS threads: {e}"),
            }
        }));
    }
    let mut tasks: Vec<Task> = vec![Box::pin(async move {
        for t in on_rt {
            let _ = t.await;
        }
        // Ends the NFS threads without waiting for calls still running (`rt` also does this
        // when dropped, should this task be cancelled).
        drop(rt);
    })];
    if let Some(u) = pmap_udp {
        tasks.push(Box::pin(server::serve_udp(
            u,
            svc.clone(),
            shutdown.clone(),
        )));
    }
    let mut stop = shutdown.clone();
    tasks.push(Box::pin(async move {
        let mut tick = tokio::time::interval(RETRY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let retry_only = tokio::select! {
                r = changes.recv() => match r {
                    Ok(b) if b.touches(exports::DEPENDS_ON) => false,
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        keeper.wanted.fetch_add(1, Ordering::SeqCst);
                        false
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => true,
                _ = stop.changed() => return,
            };
            // Calls refresh the table themselves before they are answered; this only saves
            // the next one the wait, and retries exports that could not be opened.
            let k = keeper.clone();
            let done = tokio::task::spawn_blocking(move || {
                if retry_only {
                    k.reload_now(true)
                } else {
                    k.refresh(None)
                }
            })
            .await;
            if let Err(e) = done {
                warn!("nfs: export reload failed: {e}");
            }
        }
    }));
    Ok(Some(Box::pin(async move {
        let mut set = tokio::task::JoinSet::new();
        for t in tasks {
            set.spawn(t);
        }
        while set.join_next().await.is_some() {}
    })))
}
