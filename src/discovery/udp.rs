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
use crate::store::resolver::Resolver;
use crate::store::Store;

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
                warn!(%peer, "findme (UDP) refused: {e}");
                continue;
            }
        };
        let (store, resolver, ports) = (store.clone(), resolver.clone(), ports.clone());
        tokio::spawn(async move {
            let uuid = rep.uuid.clone();
            let done = tokio::task::spawn_blocking(move || {
                let outcome = matcher::place(&store, &rep, ports.as_ref())?;
                resolver.invalidate_all();
                Ok::<_, crate::store::StoreError>(outcome)
            })
            .await;
            match done {
                Ok(Ok(Outcome::Matched { node, method, .. })) => {
                    info!(%peer, %uuid, node = %node, method = method.as_str(), "discovered (UDP findme)");
                    tell(peer, "restart").await;
                }
                Ok(Ok(Outcome::Undefined { reason, .. })) => {
                    info!(%peer, %uuid, "undefined machine (UDP findme): {reason}");
                    tell(peer, "processed").await;
                }
                Ok(Err(e)) => warn!(%peer, %uuid, "findme failed: {e}"),
                Err(e) => warn!(%peer, %uuid, "findme task failed: {e}"),
            }
        });
    }
}
