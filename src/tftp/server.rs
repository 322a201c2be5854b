//! The TFTP service: one listening socket (port 69), and per read request one task with its own
//! socket, bound to the address the client talked to and connected to the client, that negotiates
//! options and sends the file (lockstep or RFC 7440 windows) until the last block is acknowledged.
//!
//! Reactions to bad input: a datagram that is not a request is dropped; a malformed request, an
//! unsupported mode, a write request, a name that breaks the path rules, a missing or unreadable
//! file and a full server each get the TFTP error RFC 1350 names and one log line with client and
//! name. Inside a transfer, anything but an ACK or ERROR from the client is ignored; a client ERROR
//! ends the transfer at once (PXE ROMs ask for `tsize` and abort); silence is retransmitted at the
//! negotiated timeout at most [`Config::max_retransmits`] times, and every transfer has a total
//! deadline, so nothing a client does holds a slot for long.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn};

use super::packet::{self, negotiate, wire_block, ErrorCode, Limits, Mode, Negotiated, Packet};
use super::source::{Content, FileSource, OpenError, PathError, TftpPath};
use crate::limits::{PerSource, SourceSlot, Throttle};

/// IPv4 + UDP + TFTP DATA header: what a block must leave room for inside the path MTU.
const OVERHEAD: i32 = 20 + 8 + packet::DATA_HEADER as i32;
/// A file is read from disk this many bytes at a time (at least a window), so lockstep transfers do
/// not make one trip to the blocking pool per 512-byte block.
const READ_AHEAD: usize = 128 * 1024;

/// What a running transfer holds: a slot of the pool and one of its client's share.
type Slot = (OwnedSemaphorePermit, SourceSlot);

/// Tunables of the service.
#[derive(Debug, Clone)]
pub struct Config {
    /// What negotiation may grant.
    pub limits: Limits,
    /// Transfers at once; beyond, requests are answered "server busy".
    pub max_transfers: usize,
    /// Transfers one client address may run at once (`site.tftpperclient`); beyond, "too many
    /// transfers from your address".
    pub per_client: usize,
    /// Retransmission timeout when the client does not negotiate one (RFC 2349 `timeout`).
    pub timeout: Duration,
    /// Retransmissions of the same window before the transfer is abandoned.
    pub max_retransmits: u32,
    /// Longest a transfer may take, whatever the client does: the bound on how long a client that
    /// acknowledges just often enough can hold a slot.
    pub deadline: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            limits: Limits::default(),
            max_transfers: 1024,
            // A PXE ROM or boot loader fetches one file at a time (plus a tsize probe it aborts).
            per_client: 16,
            timeout: Duration::from_secs(1),
            max_retransmits: 5,
            // A 1 GB initrd at 512-byte lockstep over a 1 ms round trip takes about 35 minutes;
            // an hour leaves room for that and still frees a slot a trickling client holds.
            deadline: Duration::from_secs(3600),
        }
    }
}

/// Counters for the log and for tests.
#[derive(Debug, Default)]
pub struct Stats {
    /// Read requests that started a transfer task.
    pub started: AtomicU64,
    /// Requests answered with an error before any data (including "busy" and "not found").
    pub refused: AtomicU64,
    /// Transfers whose last block was acknowledged.
    pub completed: AtomicU64,
    /// Transfers ended by a client ERROR.
    pub aborted_by_client: AtomicU64,
    /// Transfers abandoned (silence, deadline, socket error, shutdown).
    pub failed: AtomicU64,
    /// Datagrams on port 69 that were not requests, or repeats of a request being served.
    pub ignored: AtomicU64,
}

/// Shared state of the TFTP service.
pub struct TftpServer {
    source: Arc<dyn FileSource>,
    config: Config,
    permits: Arc<Semaphore>,
    sources: Arc<PerSource>,
    /// Transfers in progress by client address, with a hash of the request that started each: a
    /// client that repeats its request because our first answer was slow gets that answer, not a
    /// second transfer (atftp aborts on a second OACK).
    sessions: Mutex<HashMap<SocketAddrV4, (u64, u64)>>,
    next_id: AtomicU64,
    pub stats: Stats,
}

impl TftpServer {
    pub fn new(source: Arc<dyn FileSource>, config: Config) -> TftpServer {
        TftpServer {
            source,
            permits: Arc::new(Semaphore::new(config.max_transfers.max(1))),
            sources: PerSource::new(config.per_client),
            config,
            sessions: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            stats: Stats::default(),
        }
    }

    /// Transfers in progress.
    pub fn active(&self) -> usize {
        self.config.max_transfers.max(1) - self.permits.available_permits()
    }
}

/// Binds the listening socket with `IP_PKTINFO`, so each request says which local address it was
/// sent to. No `SO_REUSEADDR`: a second TFTP server on the port must be an error, not a silent
/// split of the requests.
pub fn bind(addr: SocketAddrV4) -> io::Result<UdpSocket> {
    UdpSocket::from_std(bind_std(addr)?)
}

/// [`bind`] without a runtime: the socket is registered with the runtime that serves it (see
/// [`TftpRuntime`]) when it gets there.
pub fn bind_std(addr: SocketAddrV4) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv4PacketInfo, &true)
        .map_err(io::Error::from)?;
    // Room for a boot storm's requests while the listener is busy: the kernel's default (about
    // 200 KiB, some 270 requests) dropped 106 of 500 nodes' first requests in the boot-storm
    // benchmark, each then waiting for its ROM's retransmission (1 s or more). Beyond
    // net.core.rmem_max only with CAP_NET_ADMIN (FORCE), else capped there.
    if nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::RcvBufForce, &LISTEN_RCVBUF)
        .is_err()
    {
        let _ = s.set_recv_buffer_size(LISTEN_RCVBUF);
    }
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V4(addr).into())?;
    Ok(s.into())
}

/// Receive buffer of the listening socket: about 5,000 queued requests.
const LISTEN_RCVBUF: usize = 4 << 20;

/// The TFTP service's own runtime: threads named `tftp`, one per CPU (at most 4).
///
/// A lockstep transfer is one round trip per block: a 90 KB xNBA binary is 64 of them, a 40 MB
/// initrd 29,000. On the daemon's shared runtime each ACK's wake-up waited in the queue behind
/// whatever else was ready there, and in a boot storm that is the HTTP service pushing kernels
/// and initrds with `sendfile` (milliseconds per call): the boot-storm benchmark measured
/// transfers of the 90 KB binary taking up to 3.3 s while 100 nodes downloaded over HTTP,
/// against 0.6 s from dnsmasq, whose process the kernel wakes at once. On threads of its own,
/// the kernel's scheduler does the same for TFTP, and a busy HTTP service no longer delays a
/// block. Dropping it stops its threads without waiting.
pub struct TftpRuntime(Option<tokio::runtime::Runtime>);

impl TftpRuntime {
    pub fn new() -> io::Result<TftpRuntime> {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("tftp")
            .enable_all()
            .build()?;
        Ok(TftpRuntime(Some(rt)))
    }

    /// Runs the service for `sock` (from [`bind_std`]) on these threads until shutdown.
    pub fn serve(
        &self,
        server: Arc<TftpServer>,
        sock: std::net::UdpSocket,
        shutdown: watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let rt = self.0.as_ref()?;
        Some(rt.spawn(async move {
            match UdpSocket::from_std(sock) {
                Ok(s) => run(server, s, shutdown).await,
                Err(e) => warn!("TFTP: listener not moved to the TFTP threads: {e}"),
            }
        }))
    }
}

impl Drop for TftpRuntime {
    fn drop(&mut self) {
        // Dropped inside the daemon's runtime, where blocking on the threads' end is refused.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// One `recvmsg`: length, sender, and the local address the datagram was sent to (`IP_PKTINFO`).
/// For a datagram sent to a broadcast address that is the receiving interface's own address.
fn recv_request(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, SocketAddrV4, Option<Ipv4Addr>)> {
    // Room for one in_pktinfo message (CMSG_SPACE(12) is 32 on 64-bit), aligned for cmsghdr.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid sockaddr_in and msghdr (integers and null pointers).
    let mut from: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_in).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: every pointer in `msg` points at a live local of the length stated next to it; the
    // kernel writes within those lengths.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if i32::from(from.sin_family) != libc::AF_INET {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "datagram without an IPv4 sender",
        ));
    }
    let mut local = None;
    // SAFETY: the CMSG_* macros walk `control` within the msg_controllen the kernel set; the data
    // of an IP_PKTINFO message is an in_pktinfo, read unaligned to make no alignment assumption.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::IPPROTO_IP && (*c).cmsg_type == libc::IP_PKTINFO {
                let pi: libc::in_pktinfo = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                let dst = Ipv4Addr::from(u32::from_be(pi.ipi_addr.s_addr));
                let spec = Ipv4Addr::from(u32::from_be(pi.ipi_spec_dst.s_addr));
                local = Some(
                    if dst.is_broadcast() || dst.is_multicast() || dst.is_unspecified() {
                        spec
                    } else {
                        dst
                    },
                );
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let from = SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(from.sin_addr.s_addr)),
        u16::from_be(from.sin_port),
    );
    Ok((n as usize, from, local))
}

/// A socket for one transfer: from the address the client asked, port chosen by the kernel (the
/// server's TID), connected so only the client's TID reaches it and ICMP errors end the transfer.
fn transfer_socket(local: Option<Ipv4Addr>, client: SocketAddrV4) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::from((local.unwrap_or(Ipv4Addr::UNSPECIFIED), 0)).into())?;
    s.connect(&SocketAddr::V4(client).into())?;
    // A 64-block window is up to 512 KiB in flight; the kernel caps this at wmem_max.
    let _ = s.set_send_buffer_size(1 << 20);
    UdpSocket::from_std(s.into())
}

/// An error answer to a request, sent from a fresh port as RFC 1350 has the server's TID change.
fn reply_error(local: Option<Ipv4Addr>, to: SocketAddrV4, code: ErrorCode, message: &str) {
    let sent = std::net::UdpSocket::bind((local.unwrap_or(Ipv4Addr::UNSPECIFIED), 0))
        .and_then(|s| s.set_nonblocking(true).map(|()| s))
        .and_then(|s| s.send_to(&packet::error(code, message), to));
    if let Err(e) = sent {
        debug!(client = %to, "cannot send TFTP error: {e}");
    }
}

/// Returns once shutdown is signalled (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|&s| s).await;
}

/// Serves requests on `sock` until shutdown, then waits for the transfers (each ends with an
/// ERROR telling its client the server is going away).
pub async fn run(server: Arc<TftpServer>, sock: UdpSocket, mut shutdown: watch::Receiver<bool>) {
    let mut tasks = tokio::task::JoinSet::new();
    // Requests are small, but options may make them longer than 512 bytes; never truncate.
    let mut buf = vec![0u8; 65536];
    let fd = sock.as_raw_fd();
    loop {
        tokio::select! {
            r = sock.async_io(Interest::READABLE, || recv_request(fd, &mut buf)) => match r {
                Ok((n, from, local)) => {
                    if let Some((id, req, path, permit)) = server.admit(&buf[..n], from, local) {
                        let s = server.clone();
                        let stop = shutdown.clone();
                        tasks.spawn(async move {
                            s.session(id, req, path, from, local, permit, stop).await;
                        });
                    }
                }
                Err(e) => {
                    warn!("TFTP receive failed: {e}");
                    // A persistent error must not turn this loop into a busy spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = stopped(&mut shutdown) => break,
        }
    }
    drop(sock);
    while tasks.join_next().await.is_some() {}
}

/// How a transfer ended.
enum End {
    Done,
    ClientError { code: u16, message: String },
    Silent(u32),
    Socket(io::Error),
    Source(String),
}

impl TftpServer {
    fn refuse(
        &self,
        local: Option<Ipv4Addr>,
        from: SocketAddrV4,
        name: &str,
        code: ErrorCode,
        why: &str,
    ) {
        self.stats.refused.fetch_add(1, Ordering::Relaxed);
        crate::metrics::TFTP.request();
        crate::metrics::TFTP.error();
        reply_error(local, from, code, why);
        // One line per kind of refusal and interval: a client repeating a bad request (or a
        // flood of them) does not fill the log.
        static NOT_FOUND: Throttle = Throttle::burst(64, Duration::from_secs(1));
        static ILLEGAL: Throttle = Throttle::new();
        static DENIED: Throttle = Throttle::burst(64, Duration::from_secs(2));
        static BUSY: Throttle = Throttle::new();
        let t = match code {
            ErrorCode::FileNotFound => &NOT_FOUND,
            ErrorCode::IllegalOperation => &ILLEGAL,
            ErrorCode::AccessViolation => &DENIED,
            _ => &BUSY,
        };
        let Some(suppressed) = t.check() else {
            return;
        };
        if code == ErrorCode::FileNotFound {
            // PXE ROMs and pxelinux probe many names that do not exist: routine, not a warning.
            info!(client = %from, path = ?name, suppressed, "TFTP refused: {why}");
        } else {
            warn!(client = %from, path = ?name, suppressed, "TFTP refused: {why}");
        }
    }

    /// Decides what to do with one datagram on port 69: a transfer to start (with its permit), or
    /// nothing (answered with an error, or ignored).
    #[allow(clippy::type_complexity)]
    fn admit(
        &self,
        datagram: &[u8],
        from: SocketAddrV4,
        local: Option<Ipv4Addr>,
    ) -> Option<(u64, packet::Request, TftpPath, Slot)> {
        if from.port() == 0 {
            self.stats.ignored.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let req = match Packet::decode(datagram) {
            Ok(Packet::Rrq(r)) => r,
            Ok(Packet::Wrq(w)) => {
                self.refuse(
                    local,
                    from,
                    &w.filename,
                    ErrorCode::AccessViolation,
                    "write requests are refused: this TFTP server is read-only",
                );
                return None;
            }
            Err(e)
                if matches!(
                    packet::op_of(datagram),
                    Some(packet::op::RRQ | packet::op::WRQ)
                ) =>
            {
                self.refuse(
                    local,
                    from,
                    "",
                    ErrorCode::IllegalOperation,
                    &format!("malformed request: {e}"),
                );
                return None;
            }
            _ => {
                // DATA/ACK/ERROR to port 69 belong to no transfer; answering could start a loop.
                self.stats.ignored.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        match &req.mode {
            // netascii is translated (LF → CR LF, CR → CR NUL) as RFC 1350 says; see `transfer`.
            Mode::Octet | Mode::Netascii => {}
            m => {
                let why = format!("transfer mode '{}' is not supported", m.as_str());
                self.refuse(
                    local,
                    from,
                    &req.filename,
                    ErrorCode::IllegalOperation,
                    &why,
                );
                return None;
            }
        }
        let path = match TftpPath::parse(&req.filename) {
            Ok(p) => p,
            Err(e) => {
                let code = match e {
                    PathError::Empty => ErrorCode::FileNotFound,
                    PathError::Parent | PathError::Nul => ErrorCode::AccessViolation,
                };
                self.refuse(local, from, &req.filename, code, &e.to_string());
                return None;
            }
        };
        let Ok(mut sessions) = self.sessions.lock() else {
            return None;
        };
        let digest = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            datagram.hash(&mut h);
            h.finish()
        };
        if let Some((_, first)) = sessions.get(&from) {
            if *first == digest {
                self.stats.ignored.fetch_add(1, Ordering::Relaxed);
                debug!(client = %from, path = ?req.filename, "repeated request ignored: its transfer is running");
                return None;
            }
        }
        let Some(slot) = self.sources.try_acquire(IpAddr::V4(*from.ip())) else {
            drop(sessions);
            let why = format!(
                "too many transfers from {} ({} at once; site.tftpperclient)",
                from.ip(),
                self.sources.max()
            );
            self.refuse(local, from, &req.filename, ErrorCode::NotDefined, &why);
            return None;
        };
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            drop(sessions);
            self.refuse(
                local,
                from,
                &req.filename,
                ErrorCode::NotDefined,
                "server busy, try again later",
            );
            return None;
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        sessions.insert(from, (id, digest));
        Some((id, req, path, (permit, slot)))
    }

    fn forget(&self, from: SocketAddrV4, id: u64) {
        if let Ok(mut sessions) = self.sessions.lock() {
            if sessions.get(&from).map(|(i, _)| *i) == Some(id) {
                sessions.remove(&from);
            }
        }
    }

    /// One transfer, from opening the file to the last ACK (or the reason there was none).
    #[allow(clippy::too_many_arguments)]
    async fn session(
        self: Arc<Self>,
        id: u64,
        req: packet::Request,
        path: TftpPath,
        from: SocketAddrV4,
        local: Option<Ipv4Addr>,
        permit: Slot,
        mut shutdown: watch::Receiver<bool>,
    ) {
        self.stats.started.fetch_add(1, Ordering::Relaxed);
        self.transfer(&req, &path, from, local, &mut shutdown).await;
        self.forget(from, id);
        drop(permit);
    }

    async fn transfer(
        &self,
        req: &packet::Request,
        path: &TftpPath,
        from: SocketAddrV4,
        local: Option<Ipv4Addr>,
        shutdown: &mut watch::Receiver<bool>,
    ) {
        let m = &crate::metrics::TFTP;
        m.request();
        let sock = match transfer_socket(local, from) {
            Ok(s) => s,
            Err(e) => {
                m.error();
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                warn!(client = %from, path = ?req.filename, "TFTP: cannot open a transfer socket: {e}");
                return;
            }
        };
        // The open runs on the blocking pool: a slow disk or a rendered file never holds up
        // the listener or another transfer.
        let source = self.source.clone();
        let p = path.clone();
        let netascii = req.mode == Mode::Netascii;
        let opened = tokio::task::spawn_blocking(move || {
            let c = source.open(&p, SocketAddr::V4(from))?;
            if netascii {
                // Translated whole, in memory: its size is not known before (so no tsize, as
                // tftpd-hpa), and only tftp(1)-style clients ask for it. Octet streams as before.
                netascii_content(c)
            } else {
                Ok(c)
            }
        })
        .await;
        let content = match opened {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                let code = match e {
                    OpenError::NotFound => ErrorCode::FileNotFound,
                    OpenError::Denied(_) => ErrorCode::AccessViolation,
                    OpenError::Io(_) => ErrorCode::NotDefined,
                };
                m.error();
                crate::timeline::record_with(|| {
                    let ip = std::net::IpAddr::V4(*from.ip());
                    crate::timeline::Event::now(
                        crate::timeline::Who::Ip(ip),
                        crate::timeline::Kind::Error,
                        format!("tftp {}: {e}", req.filename),
                    )
                    .peer(ip)
                });
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                let _ = sock.send(&packet::error(code, &e.to_string())).await;
                static NOT_FOUND: Throttle = Throttle::burst(64, Duration::from_secs(1));
                static DENIED: Throttle = Throttle::burst(64, Duration::from_secs(2));
                if code == ErrorCode::FileNotFound {
                    if let Some(suppressed) = NOT_FOUND.check() {
                        info!(client = %from, path = ?req.filename, suppressed, "TFTP refused: {e}");
                    }
                } else if let Some(suppressed) = DENIED.check() {
                    warn!(client = %from, path = ?req.filename, suppressed, "TFTP refused: {e}");
                }
                return;
            }
            Err(e) => {
                m.error();
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                let _ = sock
                    .send(&packet::error(ErrorCode::NotDefined, "internal error"))
                    .await;
                warn!(client = %from, path = ?req.filename, "TFTP: opening failed: {e}");
                return;
            }
        };
        let mut limits = self.config.limits;
        // Blocks larger than the path MTU travel as IP fragments, and one lost fragment loses the
        // block: the test bed measured 20 s instead of 0.06 s. RFC 2348 lets the server answer less.
        if let Ok(mtu) =
            nix::sys::socket::getsockopt(&sock.as_fd(), nix::sys::socket::sockopt::IpMtu)
        {
            if let Ok(cap) = u16::try_from(mtu - OVERHEAD) {
                limits.max_blksize = limits.max_blksize.min(cap.max(packet::MIN_BLKSIZE));
            }
        }
        let size = content.size();
        let neg = negotiate(&req.options, (!netascii).then_some(size), &limits);
        let timeout = neg.timeout.unwrap_or(self.config.timeout);
        let started = Instant::now();
        let run = send_file(&sock, content, &neg, timeout, self.config.max_retransmits);
        let ended = tokio::select! {
            r = tokio::time::timeout(self.config.deadline, run) => r.ok(),
            _ = stopped(shutdown) => {
                let _ = sock.send(&packet::error(ErrorCode::NotDefined, "server shutting down")).await;
                m.error();
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                info!(client = %from, path = ?req.filename, "TFTP transfer stopped: shutting down");
                return;
            }
        };
        let secs = started.elapsed().as_secs_f64();
        m.duration.observe(started.elapsed());
        if !matches!(ended, Some(End::Done) | Some(End::ClientError { .. })) {
            m.error();
        }
        match ended {
            Some(End::Done) => {
                self.stats.completed.fetch_add(1, Ordering::Relaxed);
                m.sent(size);
                crate::timeline::record_with(|| {
                    let ip = std::net::IpAddr::V4(*from.ip());
                    crate::timeline::Event::now(
                        crate::timeline::Who::Ip(ip),
                        crate::timeline::Kind::Tftp,
                        req.filename.clone(),
                    )
                    .file(size, started.elapsed())
                    .peer(ip)
                });
                info!(
                    client = %from,
                    path = ?req.filename,
                    bytes = size,
                    blksize = neg.blksize,
                    windowsize = neg.windowsize,
                    ms = (secs * 1000.0) as u64,
                    "TFTP sent"
                );
            }
            Some(End::ClientError { code, message }) => {
                self.stats.aborted_by_client.fetch_add(1, Ordering::Relaxed);
                // Routine: firmware asks for tsize, then aborts with an ERROR before the data.
                info!(client = %from, path = ?req.filename, code, message = ?message, "TFTP transfer ended by the client");
            }
            Some(End::Silent(n)) => {
                static SILENT: Throttle = Throttle::new();
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                if let Some(suppressed) = SILENT.check() {
                    warn!(client = %from, path = ?req.filename, suppressed, "TFTP transfer abandoned: no answer after {n} retransmissions");
                }
            }
            Some(End::Socket(e)) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                warn!(client = %from, path = ?req.filename, "TFTP transfer abandoned: {e}");
            }
            Some(End::Source(e)) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                let _ = sock.send(&packet::error(ErrorCode::NotDefined, &e)).await;
                warn!(client = %from, path = ?req.filename, "TFTP transfer abandoned: {e}");
            }
            None => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                let _ = sock
                    .send(&packet::error(
                        ErrorCode::NotDefined,
                        "transfer took too long",
                    ))
                    .await;
                warn!(client = %from, path = ?req.filename, "TFTP transfer abandoned: longer than {:?}", self.config.deadline);
            }
        }
    }
}

/// `c` as netascii (RFC 1350): read whole and translated.
fn netascii_content(c: Content) -> Result<Content, OpenError> {
    let raw: Arc<[u8]> = match c {
        Content::Bytes(b) => b,
        Content::File { file, size } => {
            let mut v = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            let mut f = file;
            std::io::Read::read_to_end(&mut f, &mut v).map_err(|e| OpenError::Io(e.to_string()))?;
            Arc::from(v.into_boxed_slice())
        }
    };
    Ok(Content::Bytes(Arc::from(
        packet::to_netascii(&raw).into_boxed_slice(),
    )))
}

/// The file cut into blocks, with the blocks of the current window (and some read-ahead) in memory.
struct Blocks {
    src: Src,
    size: u64,
    blksize: usize,
    /// Bytes fetched from disk at a time: a whole number of blocks, at least a window.
    chunk: usize,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    start: u64,
}

enum Src {
    Mem(Arc<[u8]>),
    File(Arc<std::fs::File>),
}

impl Blocks {
    fn new(content: Content, blksize: u16, windowsize: u16) -> Blocks {
        let blksize = usize::from(blksize.max(packet::MIN_BLKSIZE));
        let window = blksize * usize::from(windowsize.max(1));
        let chunk = window.max(READ_AHEAD / blksize * blksize);
        let size = content.size();
        let src = match content {
            Content::File { file, .. } => Src::File(Arc::new(file)),
            Content::Bytes(b) => Src::Mem(b),
        };
        Blocks {
            src,
            size,
            blksize,
            chunk,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// Number of blocks: the last one is shorter than blksize, possibly empty (RFC 1350).
    fn count(&self) -> u64 {
        self.size / self.blksize as u64 + 1
    }

    fn range(&self, index: u64) -> (u64, u64) {
        let lo = (index - 1) * self.blksize as u64;
        (lo.min(self.size), (lo + self.blksize as u64).min(self.size))
    }

    /// Makes blocks `first..=last` available to [`Blocks::block`].
    async fn load(&mut self, first: u64, last: u64) -> Result<(), String> {
        let Src::File(file) = &self.src else {
            return Ok(());
        };
        let (lo, _) = self.range(first);
        let (_, hi) = self.range(last);
        let have = self.start + self.buf.len() as u64;
        if lo >= self.start && hi <= have {
            return Ok(());
        }
        // Keep what is still needed, read the rest: one trip to the blocking pool per chunk.
        let want = (self.size - lo).min(self.chunk.max((hi - lo) as usize) as u64) as usize;
        let mut buf = std::mem::take(&mut self.buf);
        let kept = if lo >= self.start && lo < have {
            let from = (lo - self.start) as usize;
            buf.copy_within(from.., 0);
            buf.len() - from
        } else {
            0
        };
        buf.resize(want.max(kept), 0);
        let file = file.clone();
        let at = lo + kept as u64;
        let filled = tokio::task::spawn_blocking(move || {
            let mut done = kept;
            while done < buf.len() {
                match file.read_at(&mut buf[done..], at + (done - kept) as u64) {
                    Ok(0) => break,
                    Ok(n) => done += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return (buf, Err(e)),
                }
            }
            (buf, Ok(done))
        })
        .await;
        let (buf, got) = filled.map_err(|e| format!("read task failed: {e}"))?;
        self.buf = buf;
        self.start = lo;
        match got {
            Ok(n) if n == self.buf.len() => Ok(()),
            // The size was announced (tsize) and decides the last block: a file that shrank
            // under us cannot be sent correctly.
            Ok(_) => Err("file changed during transfer".into()),
            Err(e) => Err(format!("read error: {e}")),
        }
    }

    fn block(&self, index: u64) -> &[u8] {
        let (lo, hi) = self.range(index);
        match &self.src {
            Src::Mem(b) => b.get(lo as usize..hi as usize).unwrap_or(&[]),
            Src::File(_) => {
                let (a, z) = ((lo - self.start) as usize, (hi - self.start) as usize);
                self.buf.get(a..z).unwrap_or(&[])
            }
        }
    }
}

/// UDP segmentation offload (`UDP_SEGMENT`, Linux 4.18): a window goes out in one system call per
/// 64 KiB instead of one per block, which is most of the server's CPU time in window mode.
struct Gso {
    /// Blocks per send: 1 without offload.
    batch: usize,
}

impl Gso {
    fn new(sock: &UdpSocket, segment: usize, window: u64) -> Gso {
        // Only for windows of full-size blocks: with the option set, any send longer than a segment
        // is cut, and the OACK and ERROR messages (under 512 bytes) must never be.
        let batch = (65507 / segment).min(64);
        if window < 2 || segment < 512 + packet::DATA_HEADER || batch < 2 {
            return Gso { batch: 1 };
        }
        let size = i32::try_from(segment).unwrap_or(0);
        match nix::sys::socket::setsockopt(
            &sock.as_fd(),
            nix::sys::socket::sockopt::UdpGsoSegment,
            &size,
        ) {
            Ok(()) => Gso { batch },
            Err(_) => Gso { batch: 1 },
        }
    }

    /// Falls back to one datagram per block; false when already there.
    fn disable(&mut self, sock: &UdpSocket) -> bool {
        if self.batch == 1 {
            return false;
        }
        self.batch = 1;
        let _ = nix::sys::socket::setsockopt(
            &sock.as_fd(),
            nix::sys::socket::sockopt::UdpGsoSegment,
            &0,
        );
        true
    }
}

/// What came back from the client while waiting.
enum Heard {
    Ack(u16),
    Error(u16, String),
    Nothing,
}

async fn listen(
    sock: &UdpSocket,
    buf: &mut [u8],
    until: tokio::time::Instant,
) -> Result<Heard, End> {
    loop {
        let n = match tokio::time::timeout_at(until, sock.recv(buf)).await {
            Err(_) => return Ok(Heard::Nothing),
            Ok(Err(e)) => return Err(End::Socket(e)),
            Ok(Ok(n)) => n,
        };
        match Packet::decode(&buf[..n]) {
            Ok(Packet::Ack(b)) => return Ok(Heard::Ack(b)),
            Ok(Packet::Error { code, message }) => return Ok(Heard::Error(code, message)),
            // Anything else from the client's TID is noise; keep waiting for the same deadline.
            _ => continue,
        }
    }
}

/// Sends the OACK (if any) and the blocks; returns when the last block is acknowledged, the client
/// sends ERROR, or retransmissions run out.
async fn send_file(
    sock: &UdpSocket,
    content: Content,
    neg: &Negotiated,
    timeout: Duration,
    max_retransmits: u32,
) -> End {
    let mut blocks = Blocks::new(content, neg.blksize, neg.windowsize);
    let last = blocks.count();
    let window = u64::from(neg.windowsize.max(1));
    let oack = (!neg.oack.is_empty()).then(|| Packet::Oack(neg.oack.clone()).encode());
    // `base` is the lowest unacknowledged block, 0 standing for the OACK (acknowledged by ACK 0);
    // `next` the next one to send. Blocks base..next are in flight.
    let mut base: u64 = if oack.is_some() { 0 } else { 1 };
    let mut next = base;
    let mut retries = 0u32;
    // After going back to resend (timeout, or an ACK reporting a gap), blocks up to `recover` were
    // sent twice, and the client answers the copies it already had with more ACKs (EDK2 ACKs every
    // unexpected block). Until `base` passes `recover`, such ACKs only slide the window: going back
    // again on them would resend what is already on its way, and each resend would provoke more.
    let mut recover = 0u64;
    let mut until = tokio::time::Instant::now() + timeout;
    let segment = blocks.blksize + packet::DATA_HEADER;
    let mut gso = Gso::new(sock, segment, window);
    let mut pkt = Vec::with_capacity(segment * gso.batch);
    let mut rbuf = [0u8; 1024];
    loop {
        let end = if base == 0 {
            0
        } else {
            (base + window - 1).min(last)
        };
        if next <= end {
            if let (0, Some(oack)) = (base, &oack) {
                if let Err(e) = sock.send(oack).await {
                    return End::Socket(e);
                }
            } else {
                if let Err(e) = blocks.load(next, end).await {
                    return End::Source(e);
                }
                let mut i = next;
                while i <= end {
                    // Blocks laid end to end; with segmentation offload they leave as one datagram
                    // each. Only the file's last block is short, and it is always last in a batch.
                    let upto = end.min(i + gso.batch as u64 - 1);
                    pkt.clear();
                    for j in i..=upto {
                        pkt.extend_from_slice(&packet::data_header(wire_block(j, neg.rollover)));
                        pkt.extend_from_slice(blocks.block(j));
                    }
                    match sock.send(&pkt).await {
                        Ok(_) => i = upto + 1,
                        // The route's device cannot segment (no checksum offload, MTU below the
                        // segment): send one block per datagram from now on, this batch included.
                        Err(_) if upto > i && gso.disable(sock) => {}
                        Err(e) => return End::Socket(e),
                    }
                }
            }
            next = end + 1;
            until = tokio::time::Instant::now() + timeout;
        }
        match listen(sock, &mut rbuf, until).await {
            Err(end) => return end,
            Ok(Heard::Error(code, message)) => return End::ClientError { code, message },
            Ok(Heard::Nothing) => {
                retries += 1;
                if retries > max_retransmits {
                    return End::Silent(max_retransmits);
                }
                recover = next.saturating_sub(1);
                next = base;
            }
            Ok(Heard::Ack(b)) => {
                // Which block it acknowledges: one of base-1 ..= next-1, found by wire number (the
                // window may straddle a rollover). Anything else is a stale duplicate.
                let Some(k) = (base.saturating_sub(1)..next)
                    .rev()
                    .find(|&k| wire_block(k, neg.rollover) == b)
                else {
                    continue;
                };
                if base == 0 {
                    base = 1;
                    next = 1;
                    retries = 0;
                    continue;
                }
                if k == last {
                    return End::Done;
                }
                let recovering = base <= recover;
                if k >= base {
                    base = k + 1;
                    retries = 0;
                    // Less acknowledged than sent: the client saw a gap (RFC 7440), so the rest
                    // is sent again from the first missing block.
                    if base < next && !recovering {
                        recover = next - 1;
                        next = base;
                    }
                } else if window > 1 && !recovering {
                    // The same ACK again in window mode: the window's first block was lost. Resend
                    // now rather than after a timeout. In lockstep only the timeout resends
                    // (RFC 1350's cure for the Sorcerer's Apprentice).
                    recover = next - 1;
                    next = base;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tftp::source::{DirSource, MemSource};
    use tokio::time::timeout;

    fn pattern(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    struct Running {
        addr: SocketAddrV4,
        server: Arc<TftpServer>,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    fn quick() -> Config {
        Config {
            timeout: Duration::from_millis(100),
            ..Config::default()
        }
    }

    async fn serve(source: impl FileSource + 'static, config: Config) -> Running {
        serve_on(source, config, Ipv4Addr::LOCALHOST).await
    }

    async fn serve_on(source: impl FileSource + 'static, config: Config, ip: Ipv4Addr) -> Running {
        let sock = bind(SocketAddrV4::new(ip, 0)).expect("bind");
        let Ok(SocketAddr::V4(mut addr)) = sock.local_addr() else {
            panic!("no IPv4 address");
        };
        if addr.ip().is_unspecified() {
            addr.set_ip(Ipv4Addr::LOCALHOST);
        }
        let server = Arc::new(TftpServer::new(Arc::new(source), config));
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(run(server.clone(), sock, rx));
        Running {
            addr,
            server,
            stop,
            task,
        }
    }

    /// Waits (briefly) for the server to see what the client already did.
    async fn settle(what: &str, done: impl Fn() -> bool) {
        for _ in 0..200 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{what} did not happen");
    }

    fn count(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    fn rrq(name: &str, options: &[(&str, &str)]) -> Vec<u8> {
        Packet::Rrq(packet::Request {
            filename: name.into(),
            mode: Mode::Octet,
            options: options
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        })
        .encode()
    }

    async fn client() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").await.expect("client bind")
    }

    async fn recv(sock: &UdpSocket, within: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let mut b = vec![0u8; 70000];
        match timeout(within, sock.recv_from(&mut b)).await {
            Ok(Ok((n, from))) => Some((b[..n].to_vec(), from)),
            _ => None,
        }
    }

    #[derive(Debug, Default)]
    struct Got {
        data: Vec<u8>,
        oack: Vec<(String, String)>,
        error: Option<(u16, String)>,
        /// Every DATA datagram received, duplicates included.
        datagrams: usize,
    }

    /// A small RFC 1350/7440 client: acknowledges every `windowsize` blocks in order (or the last
    /// in-order block when it sees a gap); drops the first arrival of each block index in `drop`.
    async fn get(server: SocketAddrV4, name: &str, options: &[(&str, &str)], drop: &[u64]) -> Got {
        get_with(server, name, options, drop, false).await
    }

    /// [`get`], optionally acknowledging every block (a sloppy window client).
    async fn get_with(
        server: SocketAddrV4,
        name: &str,
        options: &[(&str, &str)],
        drop: &[u64],
        ack_each: bool,
    ) -> Got {
        // From the address asked (loopback here): each test address is its own client.
        let sock = UdpSocket::bind(SocketAddrV4::new(*server.ip(), 0))
            .await
            .expect("client bind");
        sock.send_to(&rrq(name, options), server)
            .await
            .expect("send");
        let mut got = Got::default();
        let mut window = 1u64;
        let mut rollover = 0u16;
        let mut blksize = 512usize;
        let mut last = 0u64; // last in-order block index
        let mut since_ack = 0u64;
        let mut dropped = std::collections::HashSet::new();
        let mut tid: Option<SocketAddr> = None;
        loop {
            let Some((b, from)) = recv(&sock, Duration::from_secs(3)).await else {
                panic!("timed out after block {last}: {got:?}");
            };
            if *tid.get_or_insert(from) != from {
                continue;
            }
            match Packet::decode(&b).expect("server sends valid packets") {
                Packet::Oack(o) => {
                    for (k, v) in &o {
                        match k.as_str() {
                            "windowsize" => window = v.parse().expect("ws"),
                            "blksize" => blksize = v.parse().expect("bs"),
                            "rollover" => rollover = v.parse().expect("ro"),
                            _ => {}
                        }
                    }
                    got.oack = o;
                    sock.send_to(&Packet::Ack(0).encode(), from)
                        .await
                        .expect("ack");
                }
                Packet::Data { block, data } => {
                    got.datagrams += 1;
                    let index = last + 1;
                    if block != wire_block(index, rollover) {
                        // Out of order (or a duplicate): report the last good block at once.
                        if block != wire_block(last, rollover) {
                            sock.send_to(&Packet::Ack(wire_block(last, rollover)).encode(), from)
                                .await
                                .expect("ack");
                            since_ack = 0;
                        }
                        continue;
                    }
                    if drop.contains(&index) && dropped.insert(index) {
                        continue;
                    }
                    assert!(data.len() <= blksize, "block larger than negotiated");
                    got.data.extend_from_slice(data);
                    last = index;
                    since_ack += 1;
                    let end = data.len() < blksize;
                    if end || since_ack == window || ack_each {
                        sock.send_to(&Packet::Ack(block).encode(), from)
                            .await
                            .expect("ack");
                        since_ack = 0;
                    }
                    if end {
                        return got;
                    }
                }
                Packet::Error { code, message } => {
                    got.error = Some((code, message));
                    return got;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Sends a raw request and returns the first answer, decoded.
    async fn ask(server: SocketAddrV4, datagram: &[u8]) -> (Vec<u8>, SocketAddr) {
        let sock = client().await;
        sock.send_to(datagram, server).await.expect("send");
        recv(&sock, Duration::from_secs(3))
            .await
            .expect("an answer")
    }

    fn error_code(b: &[u8]) -> u16 {
        match Packet::decode(b) {
            Ok(Packet::Error { code, .. }) => code,
            other => panic!("expected an ERROR, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_files_of_every_size_lockstep_and_windowed() {
        let mut mem = MemSource::new();
        let sizes = [0usize, 1, 511, 512, 513, 1024, 5000, 70_000];
        for &n in &sizes {
            mem.insert(&format!("f{n}"), pattern(n, n as u32))
                .expect("insert");
        }
        let r = serve(mem, quick()).await;
        for &n in &sizes {
            let want = pattern(n, n as u32);
            let g = get(r.addr, &format!("f{n}"), &[], &[]).await;
            assert_eq!(g.data, want, "lockstep {n}");
            assert!(g.oack.is_empty(), "no options, no OACK");
            let g = get(
                r.addr,
                &format!("/f{n}"),
                &[("blksize", "1468"), ("tsize", "0"), ("windowsize", "4")],
                &[],
            )
            .await;
            assert_eq!(g.data, want, "ovmf-like {n}");
            assert_eq!(
                g.oack,
                [
                    ("blksize".to_string(), "1468".to_string()),
                    ("tsize".to_string(), n.to_string()),
                    ("windowsize".to_string(), "4".to_string())
                ]
            );
        }
        settle("16 completed transfers", || {
            count(&r.server.stats.completed) == 16 && r.server.active() == 0
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn files_on_disk_stream_and_block_numbers_roll_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        // 8-byte blocks: 75,000 blocks, past 65535, in a few hundred KB.
        let want = pattern(600_000, 7);
        std::fs::write(dir.path().join("big"), &want).expect("write");
        let r = serve(DirSource::new(dir.path()), quick()).await;
        let g = get(
            r.addr,
            "big",
            &[("blksize", "8"), ("windowsize", "64")],
            &[],
        )
        .await;
        assert_eq!(g.data.len(), want.len());
        assert!(g.data == want, "rollover to 0");
        let g = get(
            r.addr,
            "big",
            &[("blksize", "8"), ("windowsize", "16"), ("rollover", "1")],
            &[3, 65_535, 65_536, 65_537],
        )
        .await;
        assert!(g.data == want, "rollover to 1, with losses around the wrap");
        // A bigger window than the read-ahead, with losses inside it.
        let g = get(
            r.addr,
            "big",
            &[("blksize", "65464"), ("windowsize", "64")],
            &[2, 5],
        )
        .await;
        assert!(g.data == want, "blksize 65464");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lost_blocks_and_acks_are_recovered() {
        let mut mem = MemSource::new();
        let want = pattern(300_000, 3);
        mem.insert("f", want.clone()).expect("insert");
        let r = serve(mem, quick()).await;
        let g = get(r.addr, "f", &[], &[1, 2, 300, 586]).await;
        assert!(g.data == want, "lockstep with losses");
        let g = get(
            r.addr,
            "f",
            &[("blksize", "1000"), ("windowsize", "16")],
            &[1, 16, 17, 40, 41, 42, 300],
        )
        .await;
        assert!(g.data == want, "windowed with losses");
        // Few duplicates: each loss costs about one window, not a cascade.
        assert!(g.datagrams < 301 + 7 * 16, "{} datagrams", g.datagrams);
        eprintln!(
            "windowed with 7 losses: {} datagrams for 301 blocks",
            g.datagrams
        );
        // A client that acknowledges every block of a window must not multiply the traffic.
        let g = get_with(
            r.addr,
            "f",
            &[("blksize", "1000"), ("windowsize", "16")],
            &[],
            true,
        )
        .await;
        assert!(g.data == want, "acknowledging every block");
        assert!(g.datagrams < 2 * 301, "{} datagrams", g.datagrams);
        eprintln!(
            "acknowledging every block: {} datagrams for 301 blocks",
            g.datagrams
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_error_ends_the_session_at_once() {
        let mut mem = MemSource::new();
        mem.insert("ipxe.efi", pattern(100_000, 1)).expect("insert");
        let r = serve(mem, quick()).await;
        let sock = client().await;
        sock.send_to(
            &rrq("ipxe.efi", &[("tsize", "0"), ("blksize", "1468")]),
            r.addr,
        )
        .await
        .expect("send");
        let (b, tid) = recv(&sock, Duration::from_secs(2)).await.expect("OACK");
        assert_eq!(
            Packet::decode(&b),
            Ok(Packet::Oack(vec![
                ("tsize".into(), "100000".into()),
                ("blksize".into(), "1468".into())
            ]))
        );
        sock.send_to(&packet::error(ErrorCode::NotDefined, "tsize probe"), tid)
            .await
            .expect("send");
        // Ten retransmission timeouts of silence.
        assert!(recv(&sock, Duration::from_millis(1000)).await.is_none());
        assert_eq!(count(&r.server.stats.aborted_by_client), 1);
        assert_eq!(r.server.active(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retransmission_is_bounded() {
        let mut mem = MemSource::new();
        mem.insert("f", pattern(2000, 1)).expect("insert");
        let r = serve(mem, quick()).await;
        let sock = client().await;
        sock.send_to(&rrq("f", &[]), r.addr).await.expect("send");
        let mut copies = 0;
        while let Some((b, _)) = recv(&sock, Duration::from_millis(400)).await {
            assert!(matches!(
                Packet::decode(&b),
                Ok(Packet::Data { block: 1, .. })
            ));
            copies += 1;
        }
        assert_eq!(copies, 1 + 5, "the first send and five retransmissions");
        settle("an abandoned transfer", || {
            count(&r.server.stats.failed) == 1 && r.server.active() == 0
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refusals_carry_the_right_error_code() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ok"), b"x").expect("write");
        let r = serve(DirSource::new(dir.path()), quick()).await;
        let wrq = Packet::Wrq(packet::Request {
            filename: "ok".into(),
            mode: Mode::Octet,
            options: vec![],
        })
        .encode();
        assert_eq!(error_code(&ask(r.addr, &wrq).await.0), 2, "write request");
        assert_eq!(
            error_code(&ask(r.addr, &rrq("../etc/passwd", &[])).await.0),
            2
        );
        assert_eq!(error_code(&ask(r.addr, &rrq("\\..\\ok", &[])).await.0), 2);
        assert_eq!(error_code(&ask(r.addr, &rrq("nope", &[])).await.0), 1);
        assert_eq!(
            error_code(&ask(r.addr, &rrq("/etc/passwd", &[])).await.0),
            1
        );
        assert_eq!(
            error_code(&ask(r.addr, b"\x00\x01ok\x00mail\x00").await.0),
            4
        );
        assert_eq!(error_code(&ask(r.addr, b"\x00\x01ok").await.0), 4);
        // Noise on port 69 gets no answer.
        let sock = client().await;
        sock.send_to(&Packet::Ack(1).encode(), r.addr)
            .await
            .expect("send");
        assert!(recv(&sock, Duration::from_millis(300)).await.is_none());
        assert_eq!(count(&r.server.stats.refused), 7);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_server_says_busy_and_repeats_are_not_new_transfers() {
        let mut mem = MemSource::new();
        mem.insert("f", pattern(5000, 1)).expect("insert");
        let r = serve(
            mem,
            Config {
                max_transfers: 1,
                ..quick()
            },
        )
        .await;
        // Holds the only slot: asks and never acknowledges.
        let holder = client().await;
        let req = rrq("f", &[("tsize", "0")]);
        holder.send_to(&req, r.addr).await.expect("send");
        let (first, _) = recv(&holder, Duration::from_secs(2)).await.expect("OACK");
        // The same request again from the same port: no second transfer, no "busy".
        holder.send_to(&req, r.addr).await.expect("send");
        let (b, _) = recv(&holder, Duration::from_secs(2))
            .await
            .expect("OACK again");
        assert_eq!(b, first, "a retransmitted OACK, not an error");
        assert_eq!(count(&r.server.stats.started), 1);
        assert_eq!(count(&r.server.stats.ignored), 1);
        let (b, _) = ask(r.addr, &rrq("f", &[])).await;
        assert_eq!(
            Packet::decode(&b),
            Ok(Packet::Error {
                code: 0,
                message: "server busy, try again later".into()
            })
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_tells_clients_and_returns() {
        let mut mem = MemSource::new();
        mem.insert("f", pattern(5000, 1)).expect("insert");
        let r = serve(
            mem,
            Config {
                timeout: Duration::from_secs(5),
                ..Config::default()
            },
        )
        .await;
        let sock = client().await;
        sock.send_to(&rrq("f", &[]), r.addr).await.expect("send");
        let _ = recv(&sock, Duration::from_secs(2)).await.expect("DATA 1");
        r.stop.send(true).expect("signal");
        let (b, _) = recv(&sock, Duration::from_secs(2)).await.expect("an ERROR");
        assert_eq!(error_code(&b), 0);
        timeout(Duration::from_secs(2), r.task)
            .await
            .expect("run returns")
            .expect("no panic");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replies_come_from_the_address_the_client_asked() {
        let mut mem = MemSource::new();
        mem.insert("f", b"hello".to_vec()).expect("insert");
        // Listening on every address (port chosen by the kernel), asked on 127.0.0.2.
        let r = serve_on(mem, quick(), Ipv4Addr::UNSPECIFIED).await;
        let to = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), r.addr.port());
        let (b, from) = ask(to, &rrq("f", &[])).await;
        assert!(matches!(
            Packet::decode(&b),
            Ok(Packet::Data { block: 1, .. })
        ));
        assert_eq!(from.ip(), std::net::IpAddr::V4(*to.ip()));
        assert_ne!(from.port(), to.port(), "a new TID for the transfer");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_address_gets_its_share_and_others_are_still_served() {
        let mut mem = MemSource::new();
        mem.insert("f", pattern(5000, 3)).expect("insert");
        let r = serve_on(
            mem,
            Config {
                max_transfers: 8,
                per_client: 3,
                ..quick()
            },
            Ipv4Addr::UNSPECIFIED,
        )
        .await;
        let port = r.addr.port();
        let on_lo = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        // 127.0.0.1 asks for 10 transfers with a timeout of 255 s and never acknowledges.
        let mut holders = Vec::new();
        let mut answers = Vec::new();
        for _ in 0..10 {
            let h = client().await;
            h.send_to(&rrq("f", &[("timeout", "255"), ("tsize", "0")]), on_lo)
                .await
                .expect("send");
            let (b, _) = recv(&h, Duration::from_secs(2)).await.expect("an answer");
            answers.push(b);
            holders.push(h);
        }
        let oacks: Vec<&Vec<u8>> = answers.iter().filter(|b| b[1] == 6).collect();
        assert_eq!(oacks.len(), 3, "three transfers, the rest refused");
        for b in &oacks {
            let Ok(Packet::Oack(opts)) = Packet::decode(b) else {
                panic!("not an OACK: {b:?}");
            };
            assert!(
                !opts.iter().any(|(n, _)| n == "timeout"),
                "a 255 s timeout is not granted: {opts:?}"
            );
        }
        let refused: Vec<&Vec<u8>> = answers.iter().filter(|b| b[1] == 5).collect();
        assert_eq!(refused.len(), 7);
        assert!(
            String::from_utf8_lossy(refused[0]).contains("too many transfers from 127.0.0.1"),
            "{:?}",
            String::from_utf8_lossy(refused[0])
        );
        // Another address is served at once.
        let other = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), port);
        let g = get(other, "f", &[], &[]).await;
        assert_eq!(g.data, pattern(5000, 3));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_transfers_run_at_once() {
        let mut mem = MemSource::new();
        let want = pattern(200_000, 9);
        mem.insert("f", want.clone()).expect("insert");
        // Every client here is 127.0.0.1: lift the per-client share for this one.
        let r = serve(
            mem,
            Config {
                per_client: 64,
                ..quick()
            },
        )
        .await;
        let mut all = tokio::task::JoinSet::new();
        for i in 0..50 {
            let addr = r.addr;
            all.spawn(async move {
                let ws = ["1", "4", "64"][i % 3];
                get(addr, "f", &[("blksize", "1468"), ("windowsize", ws)], &[]).await
            });
        }
        while let Some(g) = all.join_next().await {
            assert!(g.expect("client task").data == want);
        }
        settle("50 completed transfers", || {
            count(&r.server.stats.completed) == 50
        })
        .await;
    }
}
