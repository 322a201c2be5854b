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

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};

use super::rpc::{self, Accept};
use super::vfs::Fs;
use super::xdr::Writer;
use super::{mount, nfs3, portmap};

pub const MAX_CONNECTIONS: usize = 1024;
pub const PER_CONNECTION: usize = 16;
/// 256 MiB, counted in KiB.
pub const BUDGET_KIB: usize = 256 * 1024;
pub const IDLE: Duration = Duration::from_secs(600);
pub const STALL: Duration = Duration::from_secs(60);

/// What every connection shares.
pub struct Service {
    pub fs: Arc<Fs>,
    pub nfs_port: u16,
    /// The portmapper port when we hold 111.
    pub pmap_port: Option<u16>,
    conns: Arc<Semaphore>,
    budget: Arc<Semaphore>,
}

impl Service {
    pub fn new(fs: Arc<Fs>, nfs_port: u16, pmap_port: Option<u16>) -> Service {
        Service {
            fs,
            nfs_port,
            pmap_port,
            conns: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            budget: Arc::new(Semaphore::new(BUDGET_KIB)),
        }
    }
}

fn kib(n: usize) -> u32 {
    n.div_ceil(1024).max(1) as u32
}

/// Answers one call; `None` means "no reply is possible: close the connection".
pub fn answer(svc: &Service, peer: IpAddr, record: &[u8], udp: bool) -> Option<Writer> {
    let call = match rpc::decode_call(record) {
        Ok(c) => c,
        Err(refusal) => {
            debug!(%peer, ?refusal, "nfs: RPC call refused");
            return rpc::denied(&refusal);
        }
    };
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
        Ok(()) => Some(w),
        Err(stat) => Some(rpc::accepted(call.xid, stat, 0)),
    }
}

/// How much reply a call may produce, for the memory budget (peeks at READ/READDIR counts).
fn reply_estimate(record: &[u8]) -> usize {
    let Ok(call) = rpc::decode_call(record) else {
        return 0;
    };
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

/// Accepts TCP connections until shutdown.
pub async fn serve_tcp(
    listener: TcpListener,
    svc: Arc<Service>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut refused: u64 = 0;
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
        let Ok(permit) = svc.conns.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                warn!("nfs: {MAX_CONNECTIONS} connections open; refused {peer} ({refused} refused so far)");
            }
            drop(sock);
            continue;
        };
        let _ = sock.set_nodelay(true);
        let svc = svc.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            connection(sock, peer, svc, stop).await;
            drop(permit);
        });
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
        let wait = if first { IDLE } else { STALL };
        let got = tokio::select! {
            r = tokio::time::timeout(wait, rd.read_exact(&mut hdr)) => r,
            _ = shutdown.changed(), if first => return Err(End::Closed),
        };
        match got {
            Err(_) if first => return Err(End::Closed),
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

/// One client connection: a reader that parses records and starts their calls, a writer that
/// sends replies as they complete (in completion order; RPC matches them by xid).
async fn connection(
    sock: TcpStream,
    peer: SocketAddr,
    svc: Arc<Service>,
    mut shutdown: watch::Receiver<bool>,
) {
    let peer_ip = super::exports::canonical(peer.ip());
    let (mut rd, mut wr) = sock.into_split();
    let (tx, mut rx) = mpsc::channel::<(Vec<u8>, Option<OwnedSemaphorePermit>)>(PER_CONNECTION);
    let writer = tokio::spawn(async move {
        while let Some((bytes, permit)) = rx.recv().await {
            let ok = tokio::time::timeout(STALL, wr.write_all(&bytes)).await;
            drop(permit);
            if !matches!(ok, Ok(Ok(()))) {
                return;
            }
        }
        let _ = wr.shutdown().await;
    });
    let inflight = Arc::new(Semaphore::new(PER_CONNECTION));
    loop {
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
        if matches!(
            rpc::decode_call(&record),
            Err(rpc::Refusal::Garbled(_) | rpc::Refusal::NotCall)
        ) {
            // Not an RPC call: nothing sensible can follow on this stream.
            debug!("nfs: {peer} sent something that is not an RPC call; closing the connection");
            break;
        }
        let Ok(slot) = inflight.clone().acquire_owned().await else {
            break;
        };
        // The reply's share of the budget, taken before the work that allocates it.
        let extra = reply_estimate(&record);
        let mut permit = permit;
        if extra > 0 {
            if let Ok(p) = svc.budget.clone().acquire_many_owned(kib(extra)).await {
                match permit.as_mut() {
                    Some(h) => h.merge(p),
                    None => permit = Some(p),
                }
            }
        }
        let svc2 = svc.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let reply = tokio::task::spawn_blocking(move || {
                let r = answer(&svc2, peer_ip, &record, false);
                drop(record);
                r
            })
            .await;
            match reply {
                Ok(Some(w)) => {
                    let _ = tx.send((rpc::seal(w), permit)).await;
                }
                Ok(None) => {}
                Err(e) => warn!("nfs: a call from {peer} failed: {e}"),
            }
            drop(slot);
        });
    }
    drop(tx);
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
