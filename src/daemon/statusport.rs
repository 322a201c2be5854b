//! xCAT's node status port (TCP `site.xcatiport`, 3002): the server says `ready`, the node sends
//! one line (`installstatus <state>`, `next`, `getpostscript`), the server answers and says
//! `done`. Kept for images and scripts built for xCAT; bootherd's own scripts use the HTTP routes.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tracing::{info, warn};

use crate::boot::callback::{self, Callers, Request};
use crate::boot::render::RenderCtx;
use crate::limits::{PerSource, Throttle};
use crate::store::resolver::Resolver;

const MAX_CONNECTIONS: usize = 256;
/// Connections one node address may hold (`site.xcatiportperclient`): a node sends one request
/// per connection, one at a time.
pub const PER_CLIENT: usize = 4;
const LINE_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_LINE: u64 = 4096;

/// Answers one request from `peer` (blocking: runs on the blocking pool). Returns the reply body.
pub fn answer(
    resolver: &Resolver,
    callers: &Callers,
    ctx: &RenderCtx,
    peer: SocketAddr,
    line: &str,
) -> Result<String, String> {
    // Every commit made before the request arrived is seen (read your writes).
    resolver
        .catch_up()
        .map_err(|e| format!("cannot read the change log: {e}"))?;
    let Some(node) = callers.node(peer.ip()) else {
        return Err(format!("{} is not the address of any node", peer.ip()));
    };
    let req = Request::parse(line)?;
    let command = match req {
        Request::Next => Some("nextdestiny"),
        Request::GetPostscript => Some("getpostscript"),
        Request::InstallStatus(_) => None,
    };
    if let Some(c) = command {
        if !crate::xcatd::server::node_request_allowed(resolver, c, &node) {
            return Err(format!("{node}: Permission denied for request"));
        }
    }
    let result = match req {
        Request::InstallStatus(st) => {
            callback::set_status(resolver, &node, &st).map(|_| String::new())
        }
        Request::Next => callback::next(resolver, ctx, &node).map(|cs| format!("{cs}\n")),
        // xCAT frames the script with a last line `#END OF SCRIPT`.
        Request::GetPostscript => callback::getpostscript(resolver, &node)
            .map(|s| format!("{}\n#END OF SCRIPT\n", s.trim_end())),
    };
    match result {
        Ok(body) => {
            info!(node = %node, request = %line.trim(), "node callback");
            Ok(body)
        }
        Err(e) => Err(format!("{node}: {e}")),
    }
}

/// Binds the status port.
pub async fn bind(resolver: &Resolver) -> anyhow::Result<TcpListener> {
    let port: u16 = match resolver.site("xcatiport")? {
        Some(p) => p
            .trim()
            .parse()
            .with_context(|| format!("site.xcatiport '{p}' is not a port number"))?,
        None => 3002,
    };
    let l = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
        .await
        .with_context(|| format!("cannot listen on TCP port {port}"))?;
    info!(port, "node status port listening");
    Ok(l)
}

pub async fn serve(
    listener: TcpListener,
    resolver: Arc<Resolver>,
    mut shutdown: watch::Receiver<bool>,
) {
    let callers = Arc::new(Callers::new(resolver.clone()));
    let tftpdir = resolver
        .site("tftpdir")
        .ok()
        .flatten()
        .unwrap_or_else(|| "/tftpboot".into());
    let ctx = Arc::new(RenderCtx {
        tftpdir: PathBuf::from(tftpdir),
        server_ip: None,
    });
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let r2 = resolver.clone();
    let per_client = tokio::task::spawn_blocking(move || {
        crate::limits::site_limit(r2.store(), "xcatiportperclient", PER_CLIENT)
    })
    .await
    .unwrap_or(PER_CLIENT);
    let sources = PerSource::new(per_client);
    static OVER: Throttle = Throttle::new();
    static FULL: Throttle = Throttle::new();
    loop {
        let (sock, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!("status port accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Some(slot) = sources.try_acquire(peer.ip()) else {
            if let Some(suppressed) = OVER.check() {
                warn!(suppressed, "status port: {} holds its {per_client} connections (site.xcatiportperclient); refusing more", peer.ip());
            }
            continue;
        };
        let (r, c, x, limit) = (
            resolver.clone(),
            callers.clone(),
            ctx.clone(),
            limit.clone(),
        );
        tokio::spawn(async move {
            // Only nodes may use the port: anyone else is closed before "ready", without taking
            // one of the slots the nodes share.
            let (r2, c2) = (r.clone(), c.clone());
            let node = tokio::task::spawn_blocking(move || {
                r2.catch_up().ok()?;
                c2.node(peer.ip())
            })
            .await
            .ok()
            .flatten();
            if node.is_none() {
                static STRANGER: Throttle = Throttle::new();
                if let Some(suppressed) = STRANGER.check() {
                    warn!(
                        suppressed,
                        "status port: {} is not the address of any node; closed",
                        peer.ip()
                    );
                }
                return;
            }
            let Ok(permit) = limit.try_acquire_owned() else {
                if let Some(suppressed) = FULL.check() {
                    warn!(
                        suppressed,
                        "status port: {MAX_CONNECTIONS} connections open; refusing {peer}"
                    );
                }
                return;
            };
            if let Err(e) = connection(sock, peer, r, c, x).await {
                static FAILED: Throttle = Throttle::new();
                if let Some(suppressed) = FAILED.check() {
                    warn!(peer = %peer, suppressed, "status port: {e}");
                }
            }
            drop(permit);
            drop(slot);
        });
    }
}

async fn connection(
    mut sock: TcpStream,
    peer: SocketAddr,
    r: Arc<Resolver>,
    c: Arc<Callers>,
    ctx: Arc<RenderCtx>,
) -> Result<(), String> {
    sock.write_all(b"ready\n")
        .await
        .map_err(|e| e.to_string())?;
    let (rd, mut wr) = sock.split();
    let mut line = String::new();
    let mut reader = BufReader::new(rd.take(MAX_LINE));
    match tokio::time::timeout(LINE_TIMEOUT, reader.read_line(&mut line)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("no request within 30 s".into()),
    }
    let l2 = line.clone();
    let result = tokio::task::spawn_blocking(move || answer(&r, &c, &ctx, peer, &l2))
        .await
        .map_err(|e| e.to_string())?;
    let reply = match result {
        Ok(body) => format!("{body}done\n"),
        Err(e) => {
            warn!(peer = %peer, request = %line.trim(), "node callback refused: {e}");
            format!("error: {e}\n")
        }
    };
    wr.write_all(reply.as_bytes())
        .await
        .map_err(|e| e.to_string())
}
