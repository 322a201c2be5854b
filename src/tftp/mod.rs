//! TFTP: the read-only boot-file server `bootherd serve` runs on UDP port 69, rooted at
//! `site.tftpdir`.
//!
//! Rooms: [`packet`] (the wire codec and option negotiation, pure), [`source`] (where file content
//! comes from, and the path rules that keep every name inside the root), [`server`] (the listener
//! and one task per transfer, on the service's own threads), [`rendered`] (per-node boot files
//! rendered from the store). [`start`] is the daemon's wiring.

pub mod packet;
pub mod rendered;
pub mod server;
pub mod source;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::store::resolver::Resolver;
use crate::store::Store;

/// xCAT's default, used when `site.tftpdir` is unset or empty.
pub const DEFAULT_ROOT: &str = "/tftpboot";
/// The TFTP port (RFC 1350).
pub const PORT: u16 = 69;

/// Starts TFTP: reads `site.tftpdir`, binds UDP 69 on every address, returns the service future.
/// `Ok(None)` is reserved for "nothing to serve"; today the service always runs.
pub async fn start(
    store: Arc<Store>,
    resolver: Arc<Resolver>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Option<impl Future<Output = ()> + Send + 'static>> {
    let s = store.clone();
    let (configured, config) = tokio::task::spawn_blocking(move || {
        let d = server::Config::default();
        let mut limits = d.limits;
        limits.max_timeout =
            crate::limits::site_limit(&s, "tftpmaxtimeout", limits.max_timeout as usize).min(255)
                as u64;
        let config = server::Config {
            per_client: crate::limits::site_limit(&s, "tftpperclient", d.per_client),
            limits,
            ..d
        };
        s.site("tftpdir").map(|c| (c, config))
    })
    .await
    .context("reading site.tftpdir")??;
    let root = PathBuf::from(
        configured
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .unwrap_or(DEFAULT_ROOT),
    );
    if !root.is_dir() {
        // Not fatal: the root is opened per request, so creating it later is enough.
        warn!(root = %root.display(), "TFTP root (site.tftpdir) is not a directory; requests fail until it is");
    }
    let sock = server::bind_std(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT))
        .with_context(|| format!("cannot bind TFTP port {PORT}"))?;
    info!(root = %root.display(), port = PORT, "TFTP listening");
    // Rendered boot files first (they shadow nothing on disk that xCAT would not have overwritten),
    // then the files under the root.
    let dir = source::DirSource::new(root);
    let layers: Vec<Box<dyn source::FileSource>> = vec![
        Box::new(rendered::RenderedSource::new(resolver, dir.clone())),
        Box::new(dir),
    ];
    let server = Arc::new(server::TftpServer::new(
        Arc::new(source::Layered::new(layers)),
        config,
    ));
    // On threads of its own (see `server::TftpRuntime`): a busy HTTP service in a boot storm
    // must not delay the next block of a lockstep transfer.
    let rt = server::TftpRuntime::new().context("cannot start the TFTP threads")?;
    let task = rt.serve(server, sock, shutdown);
    Ok(Some(async move {
        if let Some(t) = task {
            let _ = t.await;
        }
        // The transfers have ended (run waits for them); the threads go with the runtime.
        drop(rt);
    }))
}
