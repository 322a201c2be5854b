//! The HTTP/1.1 service's sockets: one listener accepted on by the service's threads
//! ([`HttpThreads`], one single-threaded runtime per core), one task per connection on the thread
//! that accepted it (keep-alive, pipelining in order), each request routed ([`Routes`]: fast paths
//! on the connection's task, the rest on the blocking pool) and its response written here.
//!
//! File bodies go out with `sendfile(2)` straight from the page cache. `sendfile` blocks while the
//! kernel reads a page that is not cached, which would stall every connection of its thread, so
//! before each window of [`WINDOW`] bytes the pages are probed with a one-byte
//! `preadv2(RWF_NOWAIT)`; a window not in memory is read on the blocking pool instead and written
//! from a buffer ([`BUFFERED`] bytes at a time). Files are never read whole into memory.
//!
//! Limits: [`Config::max_connections`] at once (beyond, a 503 and close), request heads of at most
//! [`Config::max_head`] bytes (431), bodies of at most [`Config::max_body`] (413), a request head
//! that must arrive within [`Config::idle`] of the previous response (or of the connection), and
//! a client that reads nothing for [`Config::stall`] is dropped. Every answer sent before the
//! request was understood closes the connection.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::socket::MsgFlags;
use tokio::io::{AsyncReadExt, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn};

use super::handler::{Body, RequestInfo, Response, Routed, Routes};
use super::proto::{self, Head, ProtoError};
use crate::limits::{PerSource, SourceSlot, Throttle};

/// Bytes sent with `sendfile` between two page-cache probes.
pub const WINDOW: u64 = 2 << 20;
/// Probe spacing inside a window: one page in every this many bytes must be cached. Readahead
/// brings pages in runs far longer than a page, so a few probes per window tell a cold file
/// from a warm one (at 128 KiB the probes cost 2% of a 1 MiB response's CPU; at 512 KiB, 0.5%).
const PROBE_STEP: u64 = 512 << 10;
/// Read size for windows that are not cached (per connection, only while it reads from disk).
pub const BUFFERED: usize = 256 << 10;
/// Answer when every connection slot is taken.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nServer: bootherd\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
/// Bodies up to this size are sent in the same write as the head.
const COALESCE: usize = 64 << 10;
/// File bodies from this size on wait their turn for a bulk-send slot ([`Config::bulk_sends`]).
pub const BULK_MIN: u64 = 1 << 20;
/// How long a bulk send may find its socket full before it lends its slot to the next in line,
/// and how long a connection keeps its slot for its next request ([`Config::bulk_patience`]).
pub const BULK_PATIENCE: Duration = Duration::from_millis(200);
/// Longest wait for a bulk-send slot: then the body goes out without one, beside the others
/// (as without the queue), so no client waits on a silent connection for long.
const BULK_MAX_WAIT: Duration = Duration::from_secs(10);

/// Tunables of the service.
#[derive(Debug, Clone)]
pub struct Config {
    /// Connections at once.
    pub max_connections: usize,
    /// Largest request head (request line and header fields).
    pub max_head: usize,
    /// Largest request body (uploads from nodes are small).
    pub max_body: u64,
    /// How long a connection may wait for (the whole of) its next request head and body.
    pub idle: Duration,
    /// How long a client may read nothing while a response waits to be written.
    pub stall: Duration,
    /// Connections one client address may hold at once (`site.httpperclient`); beyond, a 503.
    pub per_client: usize,
    /// Large file bodies (kernels, initrds, images: [`BULK_MIN`] and up) sent at once
    /// (`site.httpbulksends`); the rest wait their turn, first come first served. In a boot storm
    /// every node then gets its kernel and initrd at full speed in turn rather than all of them
    /// at a crawl together: the storm takes as long, but each node's wait is shorter. A send
    /// whose client stops reading for [`Config::bulk_patience`] gives its slot to the next in
    /// line and queues again when its client reads; a connection keeps its slot for its next
    /// request as long (iPXE asks for the initrd as soon as it has the kernel).
    pub bulk_sends: usize,
    /// See [`Config::bulk_sends`]; [`BULK_PATIENCE`].
    pub bulk_patience: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_connections: 4096,
            max_head: 16 << 10,
            max_body: 1 << 20,
            // Long enough for wget -r's pauses between requests on one connection; short
            // enough that idle keep-alive connections do not hold slots for minutes.
            idle: Duration::from_secs(30),
            stall: Duration::from_secs(60),
            // A node needs one or two (iPXE, wget -r, an installer's few parallel fetches);
            // 64 sources at their share still leave a third of the slots.
            per_client: 64,
            // Enough to fill a 25 GbE link with nodes that read at 1 GbE each, and the machine's
            // cores with nodes that read at memory speed.
            bulk_sends: 64,
            bulk_patience: BULK_PATIENCE,
        }
    }
}

/// Counters for the log and for tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub requests: AtomicU64,
    /// Connections answered 503 because every slot was taken.
    pub busy: AtomicU64,
    /// Connections answered 503 because their address held its share of the slots.
    pub over_share: AtomicU64,
    /// Body bytes sent with `sendfile`.
    pub zero_copy_bytes: AtomicU64,
    /// Body bytes sent from a buffer (cold files, in-memory bodies).
    pub buffered_bytes: AtomicU64,
    /// Times a large body waited for a bulk-send slot.
    pub bulk_waits: AtomicU64,
}

/// Shared state of the HTTP service.
pub struct HttpServer {
    routes: Routes,
    config: Config,
    permits: Arc<Semaphore>,
    sources: Arc<PerSource>,
    /// Bulk-send slots ([`Config::bulk_sends`]); tokio's semaphore queues waiters in order.
    bulk: Arc<Semaphore>,
    pub stats: Stats,
}

impl HttpServer {
    pub fn new(routes: Routes, config: Config) -> HttpServer {
        HttpServer {
            routes,
            permits: Arc::new(Semaphore::new(config.max_connections.max(1))),
            sources: PerSource::new(config.per_client),
            bulk: Arc::new(Semaphore::new(config.bulk_sends.max(1))),
            config,
            stats: Stats::default(),
        }
    }

    /// Whether large bodies go without queueing (`bulk_sends` at least the connection limit).
    fn bulk_unlimited(&self) -> bool {
        self.config.bulk_sends >= self.config.max_connections
    }

    /// Connections open now.
    pub fn active(&self) -> usize {
        self.config.max_connections.max(1) - self.permits.available_permits()
    }
}

/// Binds the listening socket. `SO_REUSEADDR` lets a restarted daemon bind while its old
/// connections sit in TIME_WAIT; on Linux it does not let two servers listen on one port.
pub fn bind(addr: SocketAddrV4) -> io::Result<TcpListener> {
    TcpListener::from_std(bind_std(addr)?)
}

/// [`bind`], outside a runtime (for [`HttpThreads`]).
pub fn bind_std(addr: SocketAddrV4) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V4(addr).into())?;
    // As nginx's default on Linux: a storm's connections wait in the queue, not in SYN retries.
    s.listen(4096)?;
    Ok(s.into())
}

/// The HTTP service's threads, as nginx's worker processes: one per core (at most 8), each a
/// single-threaded runtime accepting on its own descriptor of the one listening socket, so a
/// connection lives and is written on the thread that accepted it. On the daemon's shared
/// multi-threaded runtime a socket's wake-ups hopped between workers (work stealing, a futex
/// per hand-off), and the HTTP service shared its threads with everything else; measured with
/// wrk (README, "HTTP"), the kernel's part of sending a file is 98 % of the service's CPU, so
/// what is left to win is scheduling.
pub struct HttpThreads {
    done: Vec<tokio::sync::oneshot::Receiver<()>>,
}

impl HttpThreads {
    /// Starts the threads on `listener` (from [`bind_std`]).
    pub fn start(
        server: Arc<HttpServer>,
        listener: std::net::TcpListener,
        shutdown: watch::Receiver<bool>,
    ) -> io::Result<HttpThreads> {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8);
        let mut done = Vec::with_capacity(n);
        for _ in 0..n {
            let l = listener.try_clone()?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name("http")
                .build()?;
            let (tx, rx) = tokio::sync::oneshot::channel();
            let (server, shutdown) = (server.clone(), shutdown.clone());
            std::thread::Builder::new()
                .name("http".into())
                .spawn(move || {
                    rt.block_on(async move {
                        match TcpListener::from_std(l) {
                            Ok(l) => run(server, l, shutdown).await,
                            Err(e) => warn!("HTTP: listener not moved to an HTTP thread: {e}"),
                        }
                    });
                    let _ = tx.send(());
                })?;
            done.push(rx);
        }
        Ok(HttpThreads { done })
    }

    /// Resolves when every thread has stopped accepting and its connections have ended.
    pub async fn finished(self) {
        for d in self.done {
            let _ = d.await;
        }
    }
}

/// Runs the service until `shutdown` turns true: stops accepting, lets idle connections close and
/// the responses being written finish (the daemon bounds how long that may take).
pub async fn run(
    server: Arc<HttpServer>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut busy_logged: Option<Instant> = None;
    let mut accept_logged: Option<Instant> = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Some(slot) = server.sources.try_acquire(peer.ip()) else {
                    static OVER: Throttle = Throttle::new();
                    server.stats.over_share.fetch_add(1, Ordering::Relaxed);
                    let _ = stream.try_write(BUSY);
                    if let Some(suppressed) = OVER.check() {
                        warn!(client = %peer, suppressed, "HTTP: {} holds its {} connections (site.httpperclient); refused with 503", peer.ip(), server.sources.max());
                    }
                    continue;
                };
                match server.permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        server.stats.connections.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(connection(
                            server.clone(),
                            stream,
                            peer,
                            shutdown.clone(),
                            (permit, slot),
                        ));
                    }
                    Err(_) => {
                        let n = server.stats.busy.fetch_add(1, Ordering::Relaxed) + 1;
                        // Best effort, never waited for: the client learns why, the loop moves on.
                        let _ = stream.try_write(BUSY);
                        if busy_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                            busy_logged = Some(Instant::now());
                            warn!(client = %peer, refused_so_far = n, "HTTP busy: all {} connection slots in use", server.config.max_connections);
                        }
                    }
                }
            }
            Err(e) => {
                // Out of descriptors or memory: accepting again at once would spin.
                let resource = matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                );
                if accept_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    accept_logged = Some(Instant::now());
                    warn!("HTTP accept failed: {e}");
                }
                if resource {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    drop(listener);
    info!(
        open = server.active(),
        "HTTP stopped accepting; finishing open responses"
    );
    // Every slot back means every connection ended.
    let all = u32::try_from(server.config.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = server.permits.acquire_many(all).await;
}

/// Waits until the shutdown flag turns true (or its sender is gone).
async fn shut(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// How one attempt to read a request ended.
enum Incoming {
    Request(Head, usize),
    /// The client closed between requests.
    Closed,
    Bad(ProtoError),
}

/// Waits until `buf` holds a complete head (or anything that ends the wait: a close, an error,
/// a bad head) or `until` passes; true when it did not simply run out of time. What was read
/// stays in `buf` for [`read_head`].
async fn read_head_until(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    max: usize,
    until: tokio::time::Instant,
) -> bool {
    loop {
        if !buf.is_empty() && !matches!(proto::parse_head(buf, max), Ok(None)) {
            return true;
        }
        match tokio::time::timeout_at(until, read_more(stream, buf)).await {
            Err(_) => return false,
            Ok(Ok(n)) if n > 0 => {}
            // Closed or failed: read_head finds out and says so.
            Ok(_) => return true,
        }
    }
}

/// Reads until `buf` starts with a complete head.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>, max: usize) -> io::Result<Incoming> {
    loop {
        if !buf.is_empty() {
            match proto::parse_head(buf, max) {
                Ok(Some((h, n))) => return Ok(Incoming::Request(h, n)),
                Ok(None) => {}
                Err(e) => return Ok(Incoming::Bad(e)),
            }
        }
        if read_more(stream, buf).await? == 0 {
            return if buf.is_empty() {
                Ok(Incoming::Closed)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(8192);
    }
    stream.read_buf(buf).await
}

async fn connection(
    server: Arc<HttpServer>,
    mut stream: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
    _permit: (OwnedSemaphorePermit, SourceSlot),
) {
    let local = stream
        .local_addr()
        .unwrap_or(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)));
    // Responses are written whole (head and small body in one write, files corked around
    // sendfile), so Nagle would only delay the last segment of each.
    let _ = stream.set_nodelay(true);
    let cfg = &server.config;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    // A bulk-send turn kept from the last response for the next one on this connection (iPXE
    // asks for the initrd as soon as it has the kernel); given up if no request follows at once.
    let mut slot: Option<OwnedSemaphorePermit> = None;
    loop {
        let deadline = tokio::time::Instant::now() + cfg.idle;
        if slot.is_some() {
            let soon = tokio::time::Instant::now() + cfg.bulk_patience;
            let arrived = tokio::select! {
                r = read_head_until(&mut stream, &mut buf, cfg.max_head, soon) => r,
                _ = shut(&mut shutdown) => return,
            };
            if !arrived {
                slot = None;
            }
        }
        let incoming = tokio::select! {
            r = tokio::time::timeout_at(deadline, read_head(&mut stream, &mut buf, cfg.max_head)) => r,
            _ = shut(&mut shutdown) => return,
        };
        let (head, used) = match incoming {
            Ok(Ok(Incoming::Request(h, n))) => (h, n),
            Ok(Ok(Incoming::Closed)) => return,
            Ok(Ok(Incoming::Bad(e))) => {
                crate::metrics::HTTP.request();
                crate::metrics::HTTP.error();
                static BAD: Throttle = Throttle::new();
                if let Some(suppressed) = BAD.check() {
                    info!(client = %peer, suppressed, "HTTP bad request: {e}");
                }
                if finish(
                    &server,
                    &mut stream,
                    Response::error(e.status()),
                    false,
                    true,
                )
                .await
                .is_ok()
                {
                    linger(&mut stream).await;
                }
                return;
            }
            Ok(Err(e)) => {
                debug!(client = %peer, "HTTP connection ended: {e}");
                return;
            }
            Err(_) => {
                // Idle keep-alive connections just close; a half-sent head gets a 408.
                if !buf.is_empty() {
                    let _ = finish(&server, &mut stream, Response::error(408), false, true).await;
                }
                return;
            }
        };
        server.stats.requests.fetch_add(1, Ordering::Relaxed);
        crate::metrics::HTTP.request();
        let taken = Instant::now();
        let keep = head.keep_alive();
        let body_len = match head.body_length() {
            Ok(n) => n,
            Err(e) => {
                debug!(client = %peer, target = ?head.target, "HTTP bad request: {e}");
                let _ = finish(
                    &server,
                    &mut stream,
                    Response::error(e.status()),
                    false,
                    true,
                )
                .await;
                return;
            }
        };
        if body_len > cfg.max_body {
            debug!(client = %peer, target = ?head.target, "HTTP request body of {body_len} bytes refused");
            if finish(&server, &mut stream, Response::error(413), false, true)
                .await
                .is_ok()
            {
                linger(&mut stream).await;
            }
            return;
        }
        let total = used + body_len as usize;
        if buf.len() < total && head.expects_continue() {
            let cont = b"HTTP/1.1 100 Continue\r\n\r\n";
            if send_all(&stream, cont, false, cfg.stall).await.is_err() {
                return;
            }
        }
        while buf.len() < total {
            match tokio::time::timeout_at(deadline, read_more(&mut stream, &mut buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
        }
        let body = buf[used..total].to_vec();
        // What follows is the next (pipelined) request.
        buf.drain(..total);

        let path = match proto::parse_target(&head.target) {
            Ok(p) => p,
            Err(e) => {
                static ATTACK: Throttle = Throttle::burst(64, Duration::from_secs(2));
                if e.is_attack() {
                    if let Some(suppressed) = ATTACK.check() {
                        warn!(client = %peer, target = ?head.target, suppressed, "HTTP refused: {e}");
                    }
                } else {
                    debug!(client = %peer, target = ?head.target, "HTTP bad request: {e}");
                }
                let close = !keep || *shutdown.borrow();
                if finish(
                    &server,
                    &mut stream,
                    Response::error(e.status()),
                    false,
                    close,
                )
                .await
                .is_err()
                    || close
                {
                    return;
                }
                continue;
            }
        };
        let head_only = head.method == "HEAD";
        let req = RequestInfo {
            method: head.method,
            target: head.target,
            path,
            minor: head.minor,
            headers: head.headers,
            body,
            peer,
            local,
        };
        // On receipt: requests read before another's store check began share it.
        let arrived = server.routes.arrived();
        let (resp, method, target) = match server.routes.route_inline(&req) {
            Routed::Done(r) => (r, req.method, req.target),
            Routed::Blocking(from) => {
                let (method, target) = (req.method.clone(), req.target.clone());
                let srv = server.clone();
                match tokio::task::spawn_blocking(move || {
                    srv.routes.route_from_arrived(&req, from, arrived)
                })
                .await
                {
                    Ok(r) => (r, method, target),
                    Err(e) => {
                        warn!(client = %peer, target = ?target, "HTTP handler failed: {e}");
                        (Response::error(500), method, target)
                    }
                }
            }
        };
        let status = resp.status;
        let close = !keep || *shutdown.borrow();
        let started = Instant::now();
        let sent = finish_with(&server, &mut stream, resp, head_only, close, &mut slot).await;
        let m = &crate::metrics::HTTP;
        m.duration.observe(taken.elapsed());
        if let Ok(n) = &sent {
            m.sent(*n);
        }
        if status >= 400 || sent.is_err() {
            m.error();
        }
        // Files are boot steps; a node's callbacks record their own (status, postscripts).
        let file = target.starts_with("/install/") || target.starts_with("/tftpboot/");
        if crate::timeline::enabled() && target != "/metrics" && (file || status >= 400) {
            let ip = peer.ip();
            let ev = match &sent {
                Ok(n) if status < 400 => crate::timeline::Event::now(
                    crate::timeline::Who::Ip(ip),
                    crate::timeline::Kind::Http,
                    format!("{method} {target}"),
                )
                .file(*n, taken.elapsed()),
                Ok(_) => crate::timeline::Event::now(
                    crate::timeline::Who::Ip(ip),
                    crate::timeline::Kind::Error,
                    format!("http {status} {method} {target}"),
                ),
                Err(e) => crate::timeline::Event::now(
                    crate::timeline::Who::Ip(ip),
                    crate::timeline::Kind::Error,
                    format!("http {method} {target} cut short: {e}"),
                ),
            };
            crate::timeline::record(ev.peer(ip));
        }
        match &sent {
            Ok(n) => {
                debug!(client = %peer, method = %method, target = ?target, status, bytes = n, ms = started.elapsed().as_millis() as u64, "HTTP")
            }
            Err(e) => {
                debug!(client = %peer, method = %method, target = ?target, status, "HTTP response cut short: {e}")
            }
        }
        if sent.is_err() || close {
            return;
        }
    }
}

/// Closes after an error answered before the request was read whole, as Apache's lingering
/// close: our side is shut for writing, and what the client still sends is read and dropped for
/// a moment. Closing with unread data would make the kernel send a reset, which can destroy the
/// error response before the client reads it (curl then reports "connection reset", not 431).
async fn linger(stream: &mut TcpStream) {
    use tokio::io::AsyncWriteExt;
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 16 * 1024];
    let mut total = 0usize;
    let until = tokio::time::Instant::now() + LINGER;
    while total < LINGER_BYTES {
        match tokio::time::timeout_at(until, stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => total += n,
            _ => break,
        }
    }
}

/// How long, and how many bytes, [`linger`] reads.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

/// Whether a handler's field may be sent: a token name, a value without line breaks, and not
/// one of the fields the server owns.
fn sendable(name: &str, value: &str) -> bool {
    const OWNED: [&str; 5] = [
        "content-length",
        "connection",
        "date",
        "server",
        "transfer-encoding",
    ];
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
        && !OWNED.iter().any(|o| name.eq_ignore_ascii_case(o))
}

/// The response head.
fn head_bytes(resp: &Response, len: u64, close: bool) -> Vec<u8> {
    use std::fmt::Write as _;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut h = String::with_capacity(256);
    let _ = write!(
        h,
        "HTTP/1.1 {} {}\r\nServer: bootherd\r\nDate: {}\r\n",
        resp.status,
        proto::reason(resp.status),
        proto::http_date(now)
    );
    for (n, v) in &resp.headers {
        if sendable(n, v) {
            let _ = write!(h, "{n}: {v}\r\n");
        }
    }
    if !proto::bodiless(resp.status) {
        let _ = write!(h, "Content-Length: {len}\r\n");
    }
    h.push_str(if close {
        "Connection: close\r\n\r\n"
    } else {
        "Connection: keep-alive\r\n\r\n"
    });
    h.into_bytes()
}

/// Writes a response; returns the body bytes sent.
async fn finish(
    server: &HttpServer,
    stream: &mut TcpStream,
    resp: Response,
    head_only: bool,
    close: bool,
) -> io::Result<u64> {
    finish_with(server, stream, resp, head_only, close, &mut None).await
}

/// [`finish`] with the connection's bulk-send turn: taken for a large file body (unless held
/// already) and left in `slot` afterwards.
async fn finish_with(
    server: &HttpServer,
    stream: &mut TcpStream,
    resp: Response,
    head_only: bool,
    close: bool,
    slot: &mut Option<OwnedSemaphorePermit>,
) -> io::Result<u64> {
    let stall = server.config.stall;
    let len = if proto::bodiless(resp.status) {
        0
    } else {
        resp.body.len()
    };
    let mut head = head_bytes(&resp, len, close);
    if head_only || len == 0 {
        return send_all(stream, &head, false, stall).await.map(|_| 0);
    }
    match resp.body {
        Body::Empty => send_all(stream, &head, false, stall).await.map(|_| 0),
        Body::Bytes(b) => {
            if b.len() <= COALESCE {
                head.extend_from_slice(&b);
                send_all(stream, &head, false, stall).await?;
            } else {
                send_all(stream, &head, true, stall).await?;
                send_all(stream, &b, false, stall).await?;
            }
            server
                .stats
                .buffered_bytes
                .fetch_add(b.len() as u64, Ordering::Relaxed);
            Ok(b.len() as u64)
        }
        Body::File { file, offset, len } => {
            // Corked for the whole body, as nginx's tcp_nopush: the head rides in the first
            // segment and no sendfile call ends in a short one (measured: about 5% less CPU
            // per 1 MiB response than MSG_MORE on the head alone). Uncorking pushes the tail.
            let mut turn = Turn::new(server, len >= BULK_MIN && !server.bulk_unlimited(), slot);
            turn.take().await;
            let sock = socket2::SockRef::from(&*stream);
            let _ = sock.set_tcp_cork(true);
            send_all(stream, &head, false, stall).await?;
            send_file(server, stream, file, offset, len, &mut turn).await?;
            let _ = sock.set_tcp_cork(false);
            Ok(len)
        }
    }
}

/// A large body's place among the bulk sends ([`Config::bulk_sends`]).
struct Turn<'a> {
    server: &'a HttpServer,
    /// Whether this body queues at all.
    queued: bool,
    /// The connection's slot (kept between its requests).
    slot: &'a mut Option<OwnedSemaphorePermit>,
}

impl<'a> Turn<'a> {
    fn new(
        server: &'a HttpServer,
        queued: bool,
        slot: &'a mut Option<OwnedSemaphorePermit>,
    ) -> Turn<'a> {
        Turn {
            server,
            queued,
            slot,
        }
    }

    /// Waits for a slot, at most [`BULK_MAX_WAIT`]; after that the body goes without one.
    async fn take(&mut self) {
        if !self.queued || self.slot.is_some() {
            return;
        }
        if let Ok(p) = self.server.bulk.clone().try_acquire_owned() {
            *self.slot = Some(p);
            return;
        }
        self.server.stats.bulk_waits.fetch_add(1, Ordering::Relaxed);
        if let Ok(Ok(p)) =
            tokio::time::timeout(BULK_MAX_WAIT, self.server.bulk.clone().acquire_owned()).await
        {
            *self.slot = Some(p);
        }
    }

    /// [`writable`], lending the slot to the next in line while the client reads nothing for
    /// [`Config::bulk_patience`], and queueing again once it does.
    async fn writable(&mut self, stream: &TcpStream, stall: Duration) -> io::Result<()> {
        if self.slot.is_none() {
            return writable(stream, stall).await;
        }
        let patience = self.server.config.bulk_patience;
        if let Ok(r) = tokio::time::timeout(patience, stream.writable()).await {
            return r;
        }
        *self.slot = None;
        writable(stream, stall.saturating_sub(patience)).await?;
        self.take().await;
        Ok(())
    }
}

async fn writable(stream: &TcpStream, stall: Duration) -> io::Result<()> {
    tokio::time::timeout(stall, stream.writable())
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client stopped reading"))?
}

/// Writes all of `data`; `more` corks it (MSG_MORE) because a body follows.
async fn send_all(
    stream: &TcpStream,
    mut data: &[u8],
    more: bool,
    stall: Duration,
) -> io::Result<()> {
    let mut flags = MsgFlags::MSG_NOSIGNAL;
    if more {
        // nix names no MSG_MORE; the bit is Linux's.
        flags |= MsgFlags::from_bits_retain(libc::MSG_MORE);
    }
    let fd = stream.as_raw_fd();
    while !data.is_empty() {
        writable(stream, stall).await?;
        match stream.try_io(Interest::WRITABLE, || {
            nix::sys::socket::send(fd, data, flags).map_err(io::Error::from)
        }) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What a one-byte `RWF_NOWAIT` read says about a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    Cached,
    Cold,
    /// The file system cannot say (no `RWF_NOWAIT` support): treat every window as cold.
    Unknown,
}

fn page(file: &std::fs::File, off: u64) -> Page {
    let mut b = [0u8; 1];
    let iov = libc::iovec {
        iov_base: b.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let Ok(off) = libc::off_t::try_from(off) else {
        return Page::Unknown;
    };
    // SAFETY: `iov` describes `b`, live and writable for the whole call; the descriptor is open
    // (borrowed from `file`).
    let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, off, libc::RWF_NOWAIT) };
    if n >= 0 {
        // 0 is end of file (it shrank): sendfile will find out and say so.
        return Page::Cached;
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN) => Page::Cold,
        _ => Page::Unknown,
    }
}

/// Whether `len` bytes from `off` are (as far as one page per [`PROBE_STEP`] shows) in memory.
fn window(file: &std::fs::File, off: u64, len: u64) -> Page {
    let last = off + len - 1;
    let mut at = off;
    loop {
        match page(file, at.min(last)) {
            Page::Cached => {}
            other => return other,
        }
        if at >= last {
            return Page::Cached;
        }
        at += PROBE_STEP;
    }
}

/// Sends `len` bytes of `file` from `offset`: `sendfile` for cached windows, a blocking-pool read
/// and a buffered write for the rest.
async fn send_file(
    server: &HttpServer,
    stream: &TcpStream,
    mut file: std::fs::File,
    offset: u64,
    len: u64,
    turn: &mut Turn<'_>,
) -> io::Result<()> {
    let stall = server.config.stall;
    let end = offset + len;
    let mut off = offset;
    let mut warm_until = off;
    let mut probe = true;
    let mut buf: Vec<u8> = Vec::new();
    let shrank = || io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being sent");
    while off < end {
        if off >= warm_until && probe {
            let win = (end - off).min(WINDOW);
            match window(&file, off, win) {
                Page::Cached => warm_until = off + win,
                Page::Cold => {}
                Page::Unknown => probe = false,
            }
        }
        if off < warm_until {
            let want = usize::try_from(warm_until - off).unwrap_or(usize::MAX);
            let mut pos = i64::try_from(off).map_err(|_| shrank())?;
            turn.writable(stream, stall).await?;
            match stream.try_io(Interest::WRITABLE, || {
                nix::sys::sendfile::sendfile64(stream, &file, Some(&mut pos), want)
                    .map_err(io::Error::from)
            }) {
                Ok(0) => return Err(shrank()),
                Ok(n) => {
                    off += n as u64;
                    server
                        .stats
                        .zero_copy_bytes
                        .fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        } else {
            let n = usize::try_from((end - off).min(BUFFERED as u64)).unwrap_or(BUFFERED);
            let at = off;
            let (f, b, r) = tokio::task::spawn_blocking(move || {
                buf.resize(n, 0);
                let r = file.read_exact_at(&mut buf, at);
                (file, buf, r)
            })
            .await
            .map_err(io::Error::other)?;
            (file, buf) = (f, b);
            r.map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    shrank()
                } else {
                    e
                }
            })?;
            turn.writable(stream, stall).await?;
            send_all(stream, &buf, off + (n as u64) < end, stall).await?;
            off += n as u64;
            server
                .stats
                .buffered_bytes
                .fetch_add(n as u64, Ordering::Relaxed);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::files::StaticTree;
    use std::io::{Read, Write};

    /// A server on a loopback port over `root` served as /install; the runtime keeps it alive.
    fn serve(
        root: &std::path::Path,
        cfg: Config,
    ) -> (
        tokio::runtime::Runtime,
        SocketAddr,
        Arc<HttpServer>,
        watch::Sender<bool>,
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let mut routes = Routes::new();
        routes.add(&["install"], Arc::new(StaticTree::new("install", root)));
        let server = Arc::new(HttpServer::new(routes, cfg));
        let (tx, rx) = watch::channel(false);
        let listener = rt
            .block_on(async { bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)) })
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        rt.spawn(run(server.clone(), listener, rx));
        (rt, addr, server, tx)
    }

    /// Sends raw bytes, reads until the server closes (or `timeout`), returns what came back.
    fn exchange(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(raw).expect("write");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    }

    fn root_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let t = tempfile::tempdir().expect("tempdir");
        for (name, content) in files {
            let p = t.path().join(name);
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d).expect("mkdir");
            }
            std::fs::write(&p, content).expect("write");
        }
        t
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_and_close_is_honoured() {
        let t = root_with(&[("a", b"AAAA"), ("b", b"BB")]);
        let (_rt, addr, server, _tx) = serve(t.path(), Config::default());
        let out = exchange(
            addr,
            b"GET /install/a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /install/b HTTP/1.1\r\n\r\nGET /install/b HTTP/1.1\r\nRange: bytes=1-\r\nConnection: close\r\n\r\n",
        );
        let text = String::from_utf8_lossy(&out);
        let parts: Vec<&str> = text.split("HTTP/1.1 ").skip(1).collect();
        assert_eq!(parts.len(), 3, "{text}");
        assert!(
            parts[0].starts_with("200 OK")
                && parts[0].contains("Content-Length: 4\r\n")
                && parts[0].ends_with("\r\n\r\nAAAA"),
            "{}",
            parts[0]
        );
        assert!(
            parts[1].starts_with("200 OK")
                && parts[1].contains("Content-Length: 2\r\n")
                && parts[1].ends_with("keep-alive\r\n\r\n"),
            "{}",
            parts[1]
        );
        assert!(
            parts[2].starts_with("206 Partial")
                && parts[2].contains("Content-Range: bytes 1-1/2\r\n")
                && parts[2].contains("Connection: close")
                && parts[2].ends_with("\r\n\r\nB"),
            "{}",
            parts[2]
        );
        assert_eq!(server.stats.requests.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn malformed_and_oversized_requests_are_refused_and_closed() {
        let t = root_with(&[("a", b"A")]);
        let cfg = Config {
            max_head: 512,
            max_body: 10,
            ..Config::default()
        };
        let (_rt, addr, _server, _tx) = serve(t.path(), cfg);
        let status = |raw: &[u8]| {
            let out = exchange(addr, raw);
            String::from_utf8_lossy(&out)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(status(b"BLAH\r\n\r\n"), "HTTP/1.1 400 Bad Request");
        let big = format!("GET /install/a HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(600));
        assert_eq!(
            status(big.as_bytes()),
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
        assert_eq!(
            status(b"POST /x HTTP/1.1\r\nContent-Length: 11\r\n\r\n"),
            "HTTP/1.1 413 Content Too Large"
        );
        assert_eq!(
            status(b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            "HTTP/1.1 501 Not Implemented"
        );
        assert_eq!(
            status(b"GET /install/%2e%2e/x HTTP/1.1\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 403 Forbidden"
        );
        assert_eq!(
            status(b"DELETE /install/a HTTP/1.1\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 405 Method Not Allowed"
        );
        assert_eq!(
            status(b"GET /elsewhere HTTP/1.1\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 404 Not Found"
        );
        assert_eq!(
            status(b"PUT /elsewhere HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"),
            "HTTP/1.1 405 Method Not Allowed"
        );
    }

    #[test]
    fn idle_connections_close_and_slots_are_capped() {
        let t = root_with(&[("a", b"A")]);
        let cfg = Config {
            max_connections: 1,
            idle: Duration::from_millis(300),
            ..Config::default()
        };
        let (_rt, addr, server, _tx) = serve(t.path(), cfg);
        let first = std::net::TcpStream::connect(addr).expect("connect");
        std::thread::sleep(Duration::from_millis(100));
        let out = exchange(addr, b"GET /install/a HTTP/1.1\r\n\r\n");
        assert!(
            out.starts_with(b"HTTP/1.1 503"),
            "{}",
            String::from_utf8_lossy(&out)
        );
        assert_eq!(server.stats.busy.load(Ordering::Relaxed), 1);
        // The idle one is closed after `idle`, and its slot comes back.
        let mut first = first;
        first
            .set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        let mut b = Vec::new();
        assert_eq!(first.read_to_end(&mut b).expect("closed"), 0);
        std::thread::sleep(Duration::from_millis(100));
        let out = exchange(
            addr,
            b"GET /install/a HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(
            out.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }

    #[test]
    fn large_files_stream_cold_and_warm_byte_exact() {
        // 5 MiB + 7 with a position-dependent pattern: windows, probes and the tail all show.
        let size = (5 << 20) + 7;
        let data: Vec<u8> = (0..size)
            .map(|i: usize| (i % 251) as u8 ^ (i >> 16) as u8)
            .collect();
        let t = root_with(&[("big", &data)]);
        let (_rt, addr, server, _tx) = serve(t.path(), Config::default());
        let body = |out: &[u8]| {
            let at = out
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("head end")
                + 4;
            out[at..].to_vec()
        };
        // Drop the file's pages so the first transfer reads from disk (buffered path).
        let f = std::fs::File::open(t.path().join("big")).expect("open");
        f.sync_all().expect("sync");
        let _ = nix::fcntl::posix_fadvise(
            &f,
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
        let out = exchange(
            addr,
            b"GET /install/big HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(body(&out) == data, "cold transfer differs");
        let cold_buffered = server.stats.buffered_bytes.load(Ordering::Relaxed);
        // Now cached: sendfile.
        let before = server.stats.zero_copy_bytes.load(Ordering::Relaxed);
        let out = exchange(
            addr,
            b"GET /install/big HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(body(&out) == data, "warm transfer differs");
        let zc = server.stats.zero_copy_bytes.load(Ordering::Relaxed) - before;
        assert_eq!(zc, size as u64, "a cached file goes out by sendfile");
        // A range in the middle, across a window boundary.
        let out = exchange(addr, b"GET /install/big HTTP/1.1\r\nRange: bytes=2097000-2098000\r\nConnection: close\r\n\r\n");
        assert!(body(&out) == data[2097000..=2098000], "range differs");
        eprintln!("cold transfer: {cold_buffered} bytes buffered");
    }
    #[test]
    fn large_bodies_take_turns_and_a_stalled_client_lends_its_turn() {
        // 16 MiB: more than the socket buffers hold, so a client that reads nothing stalls.
        let size = 16 << 20;
        let data: Vec<u8> = (0..size).map(|i: usize| (i % 253) as u8).collect();
        let t = root_with(&[("big", &data), ("small", b"s")]);
        let cfg = Config {
            bulk_sends: 1,
            ..Config::default()
        };
        let (_rt, addr, server, _tx) = serve(t.path(), cfg);
        let get = b"GET /install/big HTTP/1.1\r\nConnection: close\r\n\r\n";
        let body_of = |out: &[u8]| {
            let at = out
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(0, |p| p + 4);
            out[at..].to_vec()
        };
        // A takes the only turn and then reads nothing.
        let mut a = std::net::TcpStream::connect(addr).expect("connect");
        a.write_all(get).expect("write");
        std::thread::sleep(Duration::from_millis(100));
        // B, and a small file beside them (never queued), still get everything while A stalls.
        let t0 = Instant::now();
        let small = exchange(
            addr,
            b"GET /install/small HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(body_of(&small), b"s");
        let out = exchange(addr, get);
        assert!(
            body_of(&out) == data,
            "B's body differs ({} bytes)",
            out.len()
        );
        assert!(
            t0.elapsed() < Duration::from_secs(4),
            "B waited {:?} behind a client that reads nothing",
            t0.elapsed()
        );
        assert!(
            server.stats.bulk_waits.load(Ordering::Relaxed) >= 1,
            "B queued behind A"
        );
        // A reads now and gets its whole body.
        a.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut got = Vec::new();
        let _ = a.read_to_end(&mut got);
        assert!(
            body_of(&got) == data,
            "A's body differs ({} bytes)",
            got.len()
        );
    }
    #[test]
    fn a_connection_keeps_its_turn_for_its_next_large_body() {
        // iPXE: kernel, then at once the initrd on the same connection. With one slot, a second
        // client that asked in between gets its body only after both.
        let size = 8 << 20;
        let data: Vec<u8> = (0..size).map(|i: usize| (i % 241) as u8).collect();
        let t = root_with(&[("kernel", &data), ("initrd", &data)]);
        let cfg = Config {
            bulk_sends: 1,
            // Generous, so a slow test machine does not make A lend its turn.
            bulk_patience: Duration::from_secs(2),
            ..Config::default()
        };
        let (_rt, addr, server, _tx) = serve(t.path(), cfg);
        let read_response = |s: &mut std::net::TcpStream| -> Vec<u8> {
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut b).expect("head");
                head.push(b[0]);
            }
            let h = String::from_utf8_lossy(&head).to_ascii_lowercase();
            let len: usize = h
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .expect("length");
            let mut body = vec![0u8; len];
            s.read_exact(&mut body).expect("body");
            body
        };
        let mut a = std::net::TcpStream::connect(addr).expect("connect");
        a.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        a.write_all(b"GET /install/kernel HTTP/1.1\r\n\r\n")
            .expect("write");
        // A has the turn (its head arrives) before B asks.
        let mut b1 = [0u8; 1];
        a.read_exact(&mut b1).expect("first byte");
        let b_thread = std::thread::spawn(move || {
            let mut b = std::net::TcpStream::connect(addr).expect("connect");
            b.set_read_timeout(Some(Duration::from_secs(20)))
                .expect("timeout");
            b.write_all(b"GET /install/initrd HTTP/1.1\r\nConnection: close\r\n\r\n")
                .expect("write");
            let mut first = [0u8; 1];
            b.read_exact(&mut first).expect("B's first byte");
            let at = Instant::now();
            let mut rest = Vec::new();
            let _ = b.read_to_end(&mut rest);
            (at, rest.len() + 1)
        });
        std::thread::sleep(Duration::from_millis(200));
        // The rest of A's kernel (its head's first byte is read), then at once the initrd.
        let mut rest_head = Vec::new();
        let mut c = [0u8; 1];
        while !rest_head.ends_with(b"\r\n\r\n") {
            a.read_exact(&mut c).expect("head");
            rest_head.push(c[0]);
        }
        let mut kernel = vec![0u8; size];
        a.read_exact(&mut kernel).expect("kernel");
        assert!(kernel == data, "kernel differs");
        a.write_all(b"GET /install/initrd HTTP/1.1\r\n\r\n")
            .expect("write");
        let initrd = read_response(&mut a);
        let a_done = Instant::now();
        assert!(initrd == data, "initrd differs");
        let (b_first, b_len) = b_thread.join().expect("B");
        assert!(b_len > size, "B got its whole response ({b_len} bytes)");
        assert!(
            b_first >= a_done - Duration::from_millis(50),
            "B was answered before A's initrd: A kept its turn between its two requests"
        );
        assert!(server.stats.bulk_waits.load(Ordering::Relaxed) >= 1);
    }
}
