//! xCAT genesis's findme: gzipped (or plain) XML by UDP to `site.xcatdport` (3001), from a
//! privileged source port (xCAT's genesis sends from port 301; like xcatd we take only ports below
//! 1000, which only root on the machine can use). The machine is placed as an HTTP findme would be
//! ([`super::matcher`]); then, as xcatd does, we connect to the machine's TCP port 3001 (genesis's
//! minixcatd) and say `restart` (matched: it renews its lease and asks for its destiny) or
//! `processed` (not matched).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::matcher::{self, Outcome, PortLocator};
use super::report::Report;
use crate::limits::Throttle;
use crate::store::resolver::Resolver;
use crate::store::Store;

/// Reports being placed or waiting to be, at most; genesis sends again if it hears nothing.
const MAX_IN_FLIGHT: usize = 64;

/// Reports of one address placed or waiting at once (a machine sends one and waits).
const PER_SOURCE: usize = 2;

/// Largest datagram taken (a findme is a few KiB even for many NICs).
const MAX_DATAGRAM: usize = 64 * 1024;

/// Binds UDP `port` on all addresses; `None` (logged) when it is taken.
pub async fn bind(port: u16) -> Option<UdpSocket> {
    match UdpSocket::bind(("0.0.0.0", port)).await {
        Ok(s) => {
            info!(port, "findme (UDP) listening");
            Some(s)
        }
        Err(e) => {
            warn!(port, "findme over UDP disabled: cannot bind: {e}");
            None
        }
    }
}

/// Tells genesis's minixcatd on `peer`'s TCP port 3001 what came of its findme.
async fn tell(peer: SocketAddr, word: &str) {
    let to = SocketAddr::new(peer.ip(), 3001);
    match tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(to)).await {
        Ok(Ok(mut s)) => {
            if let Err(e) = s.write_all(format!("{word}\n").as_bytes()).await {
                debug!(%to, "findme answer not delivered: {e}");
            }
            let _ = s.shutdown().await;
        }
        Ok(Err(e)) => debug!(%to, "findme answer not delivered: {e}"),
        Err(_) => debug!(%to, "findme answer not delivered: connect timed out"),
    }
}

pub async fn serve(
    sock: UdpSocket,
    store: Arc<Store>,
    resolver: Arc<Resolver>,
    ports: Arc<dyn PortLocator + Send + Sync>,
    mut shutdown: watch::Receiver<bool>,
) {
    let sock = Arc::new(sock);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let sources = crate::limits::PerSource::new(PER_SOURCE);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, peer) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!("findme receive failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        if peer.port() >= 1000 {
            debug!(%peer, "findme from an unprivileged port ignored");
            continue;
        }
        let rep = match Report::parse(buf.get(..n).unwrap_or_default()) {
            Ok(r) => r,
            Err(e) => {
                static BAD: Throttle = Throttle::new();
                if let Some(suppressed) = BAD.check() {
                    warn!(%peer, suppressed, "findme (UDP) refused: {e}");
                }
                continue;
            }
        };
        // Reports are placed one at a time anyway: a flood waits here, bounded, not in memory.
        let Some(slot) = sources.try_acquire(peer.ip()) else {
            static OVER: Throttle = Throttle::new();
            if let Some(suppressed) = OVER.check() {
                warn!(%peer, suppressed, "findme (UDP) dropped: {PER_SOURCE} reports from this address already waiting");
            }
            continue;
        };
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            static BUSY: Throttle = Throttle::new();
            if let Some(suppressed) = BUSY.check() {
                warn!(%peer, suppressed, "findme (UDP) dropped: {MAX_IN_FLIGHT} reports already waiting");
            }
            continue;
        };
        let (store, resolver, ports) = (store.clone(), resolver.clone(), ports.clone());
        tokio::spawn(async move {
            let _permit = (permit, slot);
            let uuid = rep.uuid.clone();
            let done = tokio::task::spawn_blocking(move || {
                let outcome = matcher::place(&store, &rep, ports.as_ref(), Some(peer.ip()))?;
                resolver.invalidate_all();
                Ok::<_, crate::store::StoreError>(outcome)
            })
            .await;
            match done {
                Ok(Ok(Outcome::Matched { node, method, .. })) => {
                    info!(%peer, %uuid, node = %node, method = method.as_str(), "discovered (UDP findme)");
                    crate::timeline::record_with(|| {
                        crate::timeline::Event::now(
                            crate::timeline::Who::Node(node.clone()),
                            crate::timeline::Kind::Discovery,
                            format!(
                                "findme (UDP): discovered by {} (uuid {uuid})",
                                method.as_str()
                            ),
                        )
                        .peer(peer.ip())
                    });
                    tell(peer, "restart").await;
                }
                Ok(Ok(Outcome::Undefined { reason, .. })) => {
                    static UNDEF: Throttle = Throttle::every(Duration::from_secs(1));
                    if let Some(suppressed) = UNDEF.check() {
                        info!(%peer, %uuid, suppressed, "undefined machine (UDP findme): {reason}");
                    }
                    tell(peer, "processed").await;
                }
                Ok(Err(e)) => warn!(%peer, %uuid, "findme failed: {e}"),
                Err(e) => warn!(%peer, %uuid, "findme task failed: {e}"),
            }
        });
    }
}
