//! The NFS service's sockets: TCP listeners (the NFS port, and 111 for the portmapper), the UDP
//! portmapper, one task per connection, and the limits that keep a hostile client from making
//! the daemon hold unbounded memory:
//!
//! - at most [`MAX_CONNECTIONS`] connections (more are closed at accept);
//! - records larger than [`rpc::MAX_RECORD`] end the connection when their fragment header
//!   arrives, before any of the body is buffered; bodies are read as they arrive, never
//!   preallocated from the length the client claims;
//! - every request holds a share of a global memory budget ([`BUDGET_KIB`]) for its record and
//!   its largest possible reply until the reply is written, so many slow or greedy connections
//!   queue instead of allocating;
//! - at most [`PER_CONNECTION`] requests of one connection are in progress at a time;
//! - idle connections close after [`IDLE`]; a record or a reply that does not move within
//!   [`STALL`] ends the connection.
//!
//! Threads: the TCP listeners and connections run on the service's own runtime
//! ([`NfsRuntime`]). A connection's reader starts each call as it arrives, without waiting for
//! earlier ones: calls that move file data (READ, WRITE, COMMIT) on the blocking pool, the rest as
//! tasks on the NFS runtime that do their system calls in place. Each call writes its own reply
//! (see [`Out`]), so a reply that fits in the socket costs no further hand-off.

use crate::store::resolver::Ticket;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};

use super::rpc::{self, Accept};
use super::vfs::Fs;
use super::xdr::Writer;
use super::{mount, nfs3, portmap};
use crate::limits::{PerSource, Throttle};

pub const MAX_CONNECTIONS: usize = 1024;
/// Connections one client address may hold (`site.nfsperclient`): a node mounts its image and
/// its state, each over one connection, and asks MOUNT and the portmapper over short ones.
pub const PER_CLIENT: usize = 16;
pub const PER_CONNECTION: usize = 16;
/// 256 MiB, counted in KiB.
pub const BUDGET_KIB: usize = 256 * 1024;
pub const IDLE: Duration = Duration::from_secs(600);
pub const STALL: Duration = Duration::from_secs(60);

/// Whether an address may connect (a node's, loopback); blocking (it may read the store).
pub type Admit = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// What every connection shares.
pub struct Service {
    pub fs: Arc<Fs>,
    pub nfs_port: u16,
    /// The portmapper port when we hold 111.
    pub pmap_port: Option<u16>,
    conns: Arc<Semaphore>,
    sources: Arc<PerSource>,
    /// Who may connect at all (a node, loopback); `None`: anyone. Asked on the blocking pool.
    admit: Option<Admit>,
    budget: Arc<Semaphore>,
    /// Brings the export table up to date with the store before each MOUNT and NFS call.
    fresh: Option<Arc<dyn Freshness>>,
}

/// Read your writes for NFS: [`Freshness::arrived`] when a call is received,
/// [`Freshness::refresh`] before it is answered (calls received together share one store check).
pub trait Freshness: Send + Sync {
    fn arrived(&self) -> Ticket;
    fn refresh(&self, arrived: Ticket);
}

impl Service {
    pub fn new(fs: Arc<Fs>, nfs_port: u16, pmap_port: Option<u16>) -> Service {
        Service {
            fs,
            nfs_port,
            pmap_port,
            conns: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            sources: PerSource::new(PER_CLIENT),
            admit: None,
            budget: Arc::new(Semaphore::new(BUDGET_KIB)),
            fresh: None,
        }
    }

    /// Sets the connections one address may hold.
    pub fn with_per_client(mut self, n: usize) -> Service {
        self.sources = PerSource::new(n);
        self
    }

    /// Sets who may connect at all: anyone else is closed at once, before taking a slot.
    pub fn with_admit(mut self, admit: Admit) -> Service {
        self.admit = Some(admit);
        self
    }

    /// Sets what brings the export table up to date before each MOUNT and NFS call.
    pub fn with_freshness(mut self, f: Arc<dyn Freshness>) -> Service {
        self.fresh = Some(f);
        self
    }

    /// Notes a call's arrival (for [`answer_arrived`]).
    pub fn arrived(&self) -> Option<Ticket> {
        self.fresh.as_ref().map(|f| f.arrived())
    }
}

fn kib(n: usize) -> u32 {
    n.div_ceil(1024).max(1) as u32
}

/// Answers one call; `None` means "no reply is possible: close the connection".
pub fn answer(svc: &Service, peer: IpAddr, record: &[u8], udp: bool) -> Option<Writer> {
    answer_arrived(svc, peer, record, udp, svc.arrived())
}

/// [`answer`] for a call received at `arrived` ([`Service::arrived`]).
pub fn answer_arrived(
    svc: &Service,
    peer: IpAddr,
    record: &[u8],
    udp: bool,
    arrived: Option<Ticket>,
) -> Option<Writer> {
    let m = &crate::metrics::NFS;
    let began = std::time::Instant::now();
    m.request();
    let w = answer_inner(svc, peer, record, udp, arrived);
    match &w {
        Some((w, true)) => m.sent(w.len() as u64),
        Some((w, false)) => {
            m.sent(w.len() as u64);
            m.error();
        }
        None => m.error(),
    }
    m.duration.observe(began.elapsed());
    w.map(|(w, _)| w)
}

/// [`answer_arrived`]'s work; the bool says whether the call was accepted and succeeded at the
/// RPC level.
fn answer_inner(
    svc: &Service,
    peer: IpAddr,
    record: &[u8],
    udp: bool,
    arrived: Option<Ticket>,
) -> Option<(Writer, bool)> {
    let call = match rpc::decode_call(record) {
        Ok(c) => c,
        Err(refusal) => {
            debug!(%peer, ?refusal, "nfs: RPC call refused");
            return rpc::denied(&refusal).map(|w| (w, false));
        }
    };
    // Every store commit made before the call arrived is in the export table it is checked
    // against (the portmapper's answers do not depend on the store).
    if call.prog != portmap::PROGRAM {
        if let (Some(f), Some(t)) = (&svc.fresh, arrived) {
            f.refresh(t);
        }
    }
    let mut w = rpc::accepted(call.xid, Accept::Success, 128);
    let mismatch = |v: u32| Err(Accept::ProgMismatch { low: v, high: v });
    let r = match (call.prog, call.vers) {
        (portmap::PROGRAM, portmap::VERSION) => portmap::dispatch(
            svc.nfs_port,
            svc.pmap_port,
            udp,
            call.proc_,
            call.args,
            &mut w,
        ),
        (portmap::PROGRAM, _) => mismatch(portmap::VERSION),
        _ if udp => Err(Accept::ProgUnavail),
        (nfs3::PROGRAM, nfs3::VERSION) => {
            let ctx = nfs3::Ctx {
                fs: &svc.fs,
                peer,
                cred: &call.cred,
            };
            nfs3::dispatch(&ctx, call.proc_, call.args, &mut w)
        }
        (nfs3::PROGRAM, _) => mismatch(nfs3::VERSION),
        (mount::PROGRAM, mount::VERSION) => {
            mount::dispatch(&svc.fs, peer, call.proc_, call.args, &mut w)
        }
        (mount::PROGRAM, _) => mismatch(mount::VERSION),
        _ => Err(Accept::ProgUnavail),
    };
    match r {
        Ok(()) => Some((w, true)),
        Err(stat) => Some((rpc::accepted(call.xid, stat, 0), false)),
    }
}

/// How much reply a call may produce, for the memory budget (peeks at READ/READDIR counts).
fn reply_estimate(call: &rpc::Call<'_>) -> usize {
    if call.prog != nfs3::PROGRAM {
        return 4096;
    }
    match nfs3::decode_args(call.proc_, call.args) {
        Ok(nfs3::Args::Read { count, .. }) => count.min(nfs3::MAX_IO) as usize + 512,
        Ok(nfs3::Args::ReadDir { count, .. }) => count.min(nfs3::MAX_DIR_REPLY) as usize + 512,
        Ok(nfs3::Args::ReadDirPlus { maxcount, .. }) => {
            maxcount.min(nfs3::MAX_DIR_REPLY) as usize + 512
        }
        _ => 4096,
    }
}

/// Whether a call moves file data (READ, WRITE, COMMIT): those run on the blocking pool, since
/// they may wait on the disk for long and carry up to 1 MiB each (the hand-off is small next to
/// that); every other call runs on an NFS worker thread (see [`NfsRuntime`]).
fn moves_data(call: &rpc::Call<'_>) -> bool {
    call.prog == nfs3::PROGRAM && matches!(call.proc_, 6 | 7 | 21)
}

/// The NFS service's own multi-threaded runtime ([`workers`] threads named `nfs`). Connections
/// and their metadata calls (LOOKUP, GETATTR, ACCESS, READDIRPLUS, …) run on it, each call as a
/// task that does its system calls in place: a call is then one wake-up of one thread (the
/// socket's), where handing each call to the blocking pool cost two more thread switches —
/// measured at 15–20% of the server's CPU time for a recursive listing. Those calls are short
/// (microseconds when the metadata is cached, one disk read when not), and since the runtime
/// serves NFS alone, a slow one can only delay other NFS calls. Dropping it stops its threads
/// without waiting.
pub struct NfsRuntime(Option<tokio::runtime::Runtime>);

/// Worker threads of [`NfsRuntime`]: twice the CPUs, within 4..=16 — more than the CPUs, so
/// that a few calls waiting on the disk (a cold cache during a boot storm) leave threads to serve
/// the rest; idle ones cost nothing.
pub fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(4)
        .clamp(4, 16)
}

impl NfsRuntime {
    pub fn new() -> std::io::Result<NfsRuntime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers())
            .thread_name("nfs")
            .enable_all()
            .build()?;
        Ok(NfsRuntime(Some(rt)))
    }

    pub fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        match &self.0 {
            Some(rt) => rt.spawn(f),
            None => unreachable!("the runtime is only taken on drop"),
        }
    }
}

impl Drop for NfsRuntime {
    fn drop(&mut self) {
        // A runtime dropped the ordinary way blocks until its threads end, which is refused
        // inside another runtime (where this is dropped): shut it down in the background.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Accepts TCP connections until shutdown.
pub async fn serve_tcp(
    listener: TcpListener,
    svc: Arc<Service>,
    mut shutdown: watch::Receiver<bool>,
) {
    static FULL: Throttle = Throttle::new();
    static OVER: Throttle = Throttle::new();
    loop {
        let (sock, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!("nfs: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Some(slot) = svc.sources.try_acquire(peer.ip()) else {
            if let Some(suppressed) = OVER.check() {
                warn!(
                    suppressed,
                    "nfs: {} holds its {} connections (site.nfsperclient); refusing more",
                    peer.ip(),
                    svc.sources.max()
                );
            }
            drop(sock);
            continue;
        };
        let svc = svc.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Some(admit) = svc.admit.clone() {
                let ip = super::exports::canonical(peer.ip());
                let ok = tokio::task::spawn_blocking(move || admit(ip))
                    .await
                    .unwrap_or(false);
                if !ok {
                    static STRANGER: Throttle = Throttle::new();
                    if let Some(suppressed) = STRANGER.check() {
                        warn!(
                            suppressed,
                            "nfs: {ip} is not the address of any node; its call is refused"
                        );
                    }
                    refuse_stranger(sock).await;
                    return;
                }
            }
            let Ok(permit) = svc.conns.clone().try_acquire_owned() else {
                if let Some(suppressed) = FULL.check() {
                    warn!(
                        suppressed,
                        "nfs: {MAX_CONNECTIONS} connections open; refused {peer}"
                    );
                }
                return;
            };
            let _ = sock.set_nodelay(true);
            connection(sock, peer, svc, stop).await;
            drop(permit);
            drop(slot);
        });
    }
}

/// How long a stranger (an address that is no node's) has to send its first call.
const STRANGER_WAIT: Duration = Duration::from_secs(5);
/// The largest first call a stranger may send (a MOUNT or NULL call is a few hundred bytes).
const STRANGER_RECORD: u32 = 4096;

/// Answers a stranger's first call with MSG_DENIED / AUTH_ERROR (AUTH_TOOWEAK: "rejected for
/// security reasons"), so its client gives up instead of reconnecting, and closes. It holds no
/// slot of the pool meanwhile, only one of its address's share, for at most [`STRANGER_WAIT`].
async fn refuse_stranger(mut sock: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let first = tokio::time::timeout(STRANGER_WAIT, async {
        let mut hdr = [0u8; 4];
        sock.read_exact(&mut hdr).await.ok()?;
        let (_, len) = rpc::fragment_header(hdr);
        if len > STRANGER_RECORD {
            return None;
        }
        let mut rec = vec![0u8; len as usize];
        sock.read_exact(&mut rec).await.ok()?;
        Some(rec)
    })
    .await
    .ok()
    .flatten();
    let Some(rec) = first else { return };
    let refusal = match rpc::decode_call(&rec) {
        Ok(call) => rpc::Refusal::Auth {
            xid: call.xid,
            stat: rpc::AUTH_TOOWEAK,
        },
        Err(r) => r,
    };
    if let Some(w) = rpc::denied(&refusal) {
        let _ = tokio::time::timeout(STRANGER_WAIT, sock.write_all(&rpc::seal(w))).await;
        let _ = sock.shutdown().await;
    }
}

#[derive(Debug)]
enum End {
    Closed,
    TooBig(u32),
    Stalled,
    Io(std::io::Error),
}

/// Reads one record (all its fragments). The first header may wait [`IDLE`]; everything after
/// it must keep moving.
async fn read_record<R: AsyncRead + Unpin>(
    rd: &mut R,
    budget: &Arc<Semaphore>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(Vec<u8>, Option<OwnedSemaphorePermit>), End> {
    let mut rec: Vec<u8> = Vec::new();
    let mut held: Option<OwnedSemaphorePermit> = None;
    let mut first = true;
    loop {
        let mut hdr = [0u8; 4];
        // Waiting for a call may take [`IDLE`]; once its first byte is in, the rest of the
        // record mark must follow within [`STALL`] (a client sending two bytes and nothing more
        // holds its connection for a minute, not ten).
        let wait = if first { IDLE } else { STALL };
        let got = tokio::select! {
            r = tokio::time::timeout(wait, rd.read_exact(&mut hdr[..1])) => r,
            _ = shutdown.changed(), if first => return Err(End::Closed),
        };
        match got {
            Err(_) if first => return Err(End::Closed),
            Err(_) => return Err(End::Stalled),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(End::Closed),
            Ok(Err(e)) => return Err(End::Io(e)),
            Ok(Ok(_)) => {}
        }
        match tokio::time::timeout(STALL, rd.read_exact(&mut hdr[1..])).await {
            Err(_) => return Err(End::Stalled),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(End::Closed),
            Ok(Err(e)) => return Err(End::Io(e)),
            Ok(Ok(_)) => {}
        }
        first = false;
        let (last, len) = rpc::fragment_header(hdr);
        if !rpc::fits(rec.len() as u32, len) {
            return Err(End::TooBig(len));
        }
        let p = budget
            .clone()
            .acquire_many_owned(kib(len as usize))
            .await
            .map_err(|_| End::Closed)?;
        match held.as_mut() {
            Some(h) => h.merge(p),
            None => held = Some(p),
        }
        let want = rec.len() + len as usize;
        rec.reserve(len.min(64 * 1024) as usize);
        let read = tokio::time::timeout(STALL, async {
            while rec.len() < want {
                let n = (&mut *rd)
                    .take((want - rec.len()) as u64)
                    .read_buf(&mut rec)
                    .await?;
                if n == 0 {
                    return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
                }
            }
            Ok(())
        })
        .await;
        match read {
            Err(_) => return Err(End::Stalled),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(End::Closed),
            Ok(Err(e)) => return Err(End::Io(e)),
            Ok(Ok(())) => {}
        }
        if last {
            return Ok((rec, held));
        }
    }
}

/// Replies of one connection on their way out. A call's reply is written by the thread that
/// computed it, at once, when no earlier reply is still queued and the socket takes all of it
/// (the common case: no hand-off to another task, no wake-up); otherwise it is queued whole and
/// the connection's writer task sends the queue in order as the socket drains. Replies go out
/// in completion order (RPC matches them by xid) and never interleave: every write happens
/// under the queue's lock, and only the front of the queue is ever partly written.
struct Out {
    wr: OwnedWriteHalf,
    q: Mutex<OutQ>,
    wake: Notify,
}

#[derive(Default)]
struct OutQ {
    pending: VecDeque<Pending>,
    /// No more replies will come (the reader ended and every call finished).
    closing: bool,
    /// The socket failed or stalled: replies are dropped, the reader stops.
    dead: bool,
}

/// A reply not yet (entirely) written, with its share of the memory budget.
struct Pending {
    bytes: Vec<u8>,
    at: usize,
    _permit: Option<OwnedSemaphorePermit>,
}

/// Writes `bytes[*at..]` without blocking: `Ok(true)` when all of it went, `Ok(false)` when the
/// socket is full.
fn write_some(wr: &OwnedWriteHalf, bytes: &[u8], at: &mut usize) -> std::io::Result<bool> {
    while *at < bytes.len() {
        match wr.try_write(&bytes[*at..]) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => *at += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

enum Flushed {
    All,
    Blocked,
    Dead,
}

impl Out {
    fn lock(&self) -> std::sync::MutexGuard<'_, OutQ> {
        // Every change to the queue is complete before the lock is released, so a poisoned
        // lock (a panic elsewhere) still guards a consistent queue.
        match self.q.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Sends one reply (from any thread; never blocks on the socket).
    fn send(&self, bytes: Vec<u8>, permit: Option<OwnedSemaphorePermit>) {
        let mut q = self.lock();
        if q.dead {
            return;
        }
        let mut at = 0;
        if q.pending.is_empty() {
            match write_some(&self.wr, &bytes, &mut at) {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    debug!("nfs: reply not sent: {e}");
                    q.dead = true;
                    drop(q);
                    self.wake.notify_one();
                    return;
                }
            }
        }
        q.pending.push_back(Pending {
            bytes,
            at,
            _permit: permit,
        });
        drop(q);
        self.wake.notify_one();
    }

    /// Writes queued replies until the queue is empty or the socket full.
    fn flush(&self) -> Flushed {
        let mut g = self.lock();
        let q = &mut *g;
        while !q.dead {
            let Some(front) = q.pending.front_mut() else {
                break;
            };
            match write_some(&self.wr, &front.bytes, &mut front.at) {
                Ok(true) => {
                    q.pending.pop_front();
                }
                Ok(false) => return Flushed::Blocked,
                Err(e) => {
                    debug!("nfs: reply not sent: {e}");
                    q.dead = true;
                }
            }
        }
        if q.dead {
            q.pending.clear();
            return Flushed::Dead;
        }
        Flushed::All
    }

    fn dead(&self) -> bool {
        self.lock().dead
    }

    /// The writer task: sends what `send` had to queue; once the connection is closing and the
    /// queue empty, shuts the socket's sending side.
    async fn writer(self: Arc<Out>) {
        loop {
            match self.flush() {
                Flushed::Dead => return,
                Flushed::Blocked => {
                    if !matches!(
                        tokio::time::timeout(STALL, self.wr.writable()).await,
                        Ok(Ok(()))
                    ) {
                        let mut q = self.lock();
                        q.dead = true;
                        q.pending.clear();
                        return;
                    }
                }
                Flushed::All => {
                    if self.lock().closing {
                        break;
                    }
                    self.wake.notified().await;
                }
            }
        }
        // Nothing is queued and nothing more will come; `wr` is shared, so shut it down through
        // the socket itself (dropping our handle would not close it).
        let _ = socket2::SockRef::from(self.wr.as_ref()).shutdown(std::net::Shutdown::Write);
    }
}

/// One client connection: a reader that parses records and starts their calls on the blocking
/// pool (at most [`PER_CONNECTION`] at a time); each call sends its own reply (see [`Out`]).
async fn connection(
    sock: TcpStream,
    peer: SocketAddr,
    svc: Arc<Service>,
    mut shutdown: watch::Receiver<bool>,
) {
    let peer_ip = super::exports::canonical(peer.ip());
    let (rd, wr) = sock.into_split();
    // A small read buffer: a typical call (well under 8 KiB) arrives with its record mark in one
    // recv. Large records (WRITE) bypass it and are read straight into their own buffer.
    let mut rd = BufReader::with_capacity(8 * 1024, rd);
    let out = Arc::new(Out {
        wr,
        q: Mutex::new(OutQ::default()),
        wake: Notify::new(),
    });
    let writer = tokio::spawn(out.clone().writer());
    let inflight = Arc::new(Semaphore::new(PER_CONNECTION));
    loop {
        if out.dead() {
            debug!("nfs: replies to {peer} could not be sent; closing the connection");
            break;
        }
        let (record, permit) = match read_record(&mut rd, &svc.budget, &mut shutdown).await {
            Ok(x) => x,
            Err(End::Closed) => break,
            Err(End::TooBig(len)) => {
                warn!("nfs: {peer} sent a record fragment of {len} bytes (limit {}); closing the connection", rpc::MAX_RECORD);
                break;
            }
            Err(End::Io(e)) => {
                debug!("nfs: connection from {peer} ended: {e}");
                break;
            }
            Err(End::Stalled) => {
                debug!("nfs: connection from {peer} stalled mid-record; closed");
                break;
            }
        };
        let (extra, blocking) = match rpc::decode_call(&record) {
            Ok(call) => (reply_estimate(&call), moves_data(&call)),
            // Not an RPC call: nothing sensible can follow on this stream.
            Err(rpc::Refusal::Garbled(_) | rpc::Refusal::NotCall) => {
                debug!(
                    "nfs: {peer} sent something that is not an RPC call; closing the connection"
                );
                break;
            }
            // Answered with a rejection.
            Err(_) => (0, false),
        };
        let Ok(slot) = inflight.clone().acquire_owned().await else {
            break;
        };
        // The reply's share of the budget, taken before the work that allocates it.
        let mut permit = permit;
        if extra > 0 {
            if let Ok(p) = svc.budget.clone().acquire_many_owned(kib(extra)).await {
                match permit.as_mut() {
                    Some(h) => h.merge(p),
                    None => permit = Some(p),
                }
            }
        }
        // Taken on receipt: calls read in one burst share the store check of whichever runs first.
        let arrived = svc.arrived();
        let svc2 = svc.clone();
        let out2 = out.clone();
        // The call sends its reply itself, and gives back its slot when done.
        let call = move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                answer_arrived(&svc2, peer_ip, &record, false, arrived)
            }));
            match r {
                Ok(Some(w)) => out2.send(rpc::seal(w), permit),
                Ok(None) => {}
                Err(_) => {
                    // A bug, not the client's doing: say so (SYSTEM_ERR) rather than leave the
                    // client waiting for a reply that never comes. The record decoded as a call,
                    // so it starts with its xid.
                    warn!("nfs: a call from {peer} failed (panicked)");
                    if let Some(x) = record.get(..4) {
                        let xid = u32::from_be_bytes([x[0], x[1], x[2], x[3]]);
                        out2.send(rpc::seal(rpc::accepted(xid, Accept::SystemErr, 0)), permit);
                    }
                }
            }
            drop(record);
            drop(slot);
        };
        // Neither is awaited: calls of one connection proceed side by side.
        if blocking {
            drop(tokio::task::spawn_blocking(call));
        } else {
            drop(tokio::spawn(async move { call() }));
        }
    }
    // Let the calls still running send their replies, then have the writer finish and close.
    let _ = inflight.acquire_many(PER_CONNECTION as u32).await;
    out.lock().closing = true;
    out.wake.notify_one();
    let _ = writer.await;
}

/// The portmapper on UDP: one datagram, one call.
pub async fn serve_udp(sock: UdpSocket, svc: Arc<Service>, mut shutdown: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 8192];
    loop {
        let (n, from) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    debug!("nfs: portmapper UDP receive failed: {e}");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        if let Some(w) = answer(&svc, super::exports::canonical(from.ip()), &buf[..n], true) {
            let _ = sock.send_to(rpc::unsealed(&w), from).await;
        }
    }
}
