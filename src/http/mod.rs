//! HTTP: the file service `bootherd serve` runs on `site.httpport` (default 80). It serves
//! `site.installdir` under `/install/` and the TFTP root under `/tftpboot/` — every rendered boot
//! file included, exactly as TFTP serves it — to installers, xNBA/iPXE and `wget -r` on the nodes.
//!
//! Rooms: [`proto`] (the HTTP/1.1 wire: heads, path rules, ranges, dates; pure), [`handler`] (what
//! a route sees and answers, and the [`Handler`] trait), [`files`] (the file trees, conditional
//! and range responses, directory listings), [`server`] (the listener, connections, limits, and
//! bodies streamed with `sendfile`). [`start`] is the daemon's wiring.
//!
//! Other routes (install templates, node callbacks) are [`Handler`]s added in [`extra_routes`];
//! they are asked in order before the file trees and see the client's address
//! ([`RequestInfo::peer`]).

pub mod dashboard;
pub mod discovery;
pub mod files;
pub mod handler;
pub mod nodes;
pub mod proto;
pub mod server;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;
use tracing::{info, warn};

pub use handler::{Body, Handler, Inline, RequestInfo, Response, Routes};

use crate::store::resolver::Resolver;
use crate::store::Store;

/// xCAT's default, used when `site.httpport` is unset or empty.
pub const DEFAULT_PORT: u16 = 80;
/// xCAT's default, used when `site.installdir` is unset or empty.
pub const DEFAULT_INSTALLDIR: &str = "/install";

/// The routes asked before the file trees, in order. To add one, add a line here
/// (`routes.add(&["install", "autoinst"], Arc::new(…))`; each handler keeps what it needs from
/// the store and resolver); see [`Handler`] for an example.
pub fn extra_routes(store: &Arc<Store>, resolver: &Arc<Resolver>) -> Routes {
    let mut routes = Routes::new();
    let site = |k: &str, d: &str| {
        store
            .site(k)
            .ok()
            .flatten()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| d.to_string())
    };
    let callers = Arc::new(crate::boot::callback::Callers::new(resolver.clone()));
    routes.add(
        &["install", "autoinst"],
        Arc::new(nodes::Autoinst {
            resolver: resolver.clone(),
            callers: callers.clone(),
            installdir: PathBuf::from(site("installdir", DEFAULT_INSTALLDIR)),
        }),
    );
    routes.add(
        &["install", "sysclone"],
        Arc::new(nodes::SyscloneGuard {
            callers: callers.clone(),
        }),
    );
    routes.add(
        &["install", "postscripts"],
        Arc::new(nodes::ShippedRunner {
            installdir: PathBuf::from(site("installdir", DEFAULT_INSTALLDIR)),
        }),
    );
    let ctx = crate::boot::render::RenderCtx {
        tftpdir: PathBuf::from(site("tftpdir", "/tftpboot")),
        server_ip: None,
    };
    routes.add(
        &["xcat", "discovery"],
        Arc::new(discovery::Discovery {
            store: store.clone(),
            resolver: resolver.clone(),
            callers: callers.clone(),
            ctx: ctx.clone(),
            ports: Arc::new(crate::discovery::ports::SnmpPorts::new(
                store.clone(),
                tokio::runtime::Handle::current(),
            )),
        }),
    );
    routes.add(
        &["dashboard"],
        Arc::new(dashboard::Dashboard {
            store: store.clone(),
            resolver: resolver.clone(),
        }),
    );
    routes.add(
        &["metrics"],
        Arc::new(MetricsPage {
            store: store.clone(),
        }),
    );
    routes.add(
        &["xcat", "node"],
        Arc::new(nodes::NodeCallbacks {
            resolver: resolver.clone(),
            callers,
            ctx,
        }),
    );
    routes
}

/// `/metrics`: the Prometheus text exposition ([`crate::metrics`]).
struct MetricsPage {
    store: Arc<Store>,
}

impl Handler for MetricsPage {
    fn handle(&self, req: &RequestInfo) -> Option<Response> {
        if !req.under(&["metrics"])?.is_empty() {
            return None;
        }
        if !req.is_read() {
            return Some(Response::method_not_allowed("GET, HEAD"));
        }
        let gauges = match crate::metrics::store_gauges(&self.store) {
            Ok(g) => g,
            Err(e) => {
                warn!("/metrics: cannot read the store: {e}");
                Default::default()
            }
        };
        Some(Response::bytes(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            crate::metrics::render(&gauges),
        ))
    }
}

/// What the service serves, from the site table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub port: u16,
    pub installdir: PathBuf,
    pub tftpdir: PathBuf,
}

impl Site {
    /// Reads `site.httpport`, `site.installdir` and `site.tftpdir`, with xCAT's defaults.
    pub fn read(store: &Store) -> anyhow::Result<Site> {
        let value = |key: &str| -> anyhow::Result<Option<String>> {
            Ok(store
                .site(key)
                .with_context(|| format!("reading site.{key}"))?
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()))
        };
        let port = match value("httpport")? {
            None => DEFAULT_PORT,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .with_context(|| format!("site.httpport '{p}' is not a TCP port"))?,
        };
        Ok(Site {
            port,
            installdir: PathBuf::from(
                value("installdir")?.unwrap_or_else(|| DEFAULT_INSTALLDIR.into()),
            ),
            tftpdir: PathBuf::from(
                value("tftpdir")?.unwrap_or_else(|| crate::tftp::DEFAULT_ROOT.into()),
            ),
        })
    }
}

/// Starts HTTP: reads the site table, binds `0.0.0.0:site.httpport`, returns the service future.
/// `Ok(None)` is reserved for "nothing to serve"; today the service always runs.
pub async fn start(
    store: Arc<Store>,
    resolver: Arc<Resolver>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Option<impl Future<Output = ()> + Send + 'static>> {
    let extra = extra_routes(&store, &resolver);
    let s = store.clone();
    let d = server::Config::default();
    let (per_client, bulk_sends) = (d.per_client, d.bulk_sends);
    let (per_client, bulk_sends) = tokio::task::spawn_blocking(move || {
        (
            crate::limits::site_limit(&s, "httpperclient", per_client),
            crate::limits::site_limit(&s, "httpbulksends", bulk_sends),
        )
    })
    .await
    .unwrap_or((per_client, bulk_sends));
    let config = server::Config {
        per_client,
        bulk_sends,
        ..d
    };
    start_with(store, resolver, extra, config, shutdown).await
}

/// [`start`] with the routes to ask before the file trees and the limits given (tests, embedding).
pub async fn start_with(
    store: Arc<Store>,
    resolver: Arc<Resolver>,
    extra: Routes,
    config: server::Config,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Option<impl Future<Output = ()> + Send + 'static>> {
    let s = store.clone();
    let site = tokio::task::spawn_blocking(move || Site::read(&s))
        .await
        .context("reading the site table")??;
    for (what, dir) in [
        ("site.installdir", &site.installdir),
        ("site.tftpdir", &site.tftpdir),
    ] {
        if !dir.is_dir() {
            // Not fatal: roots are opened per request, so creating one later is enough.
            warn!(root = %dir.display(), "HTTP root ({what}) is not a directory; its requests get 404 until it is");
        }
    }
    let mut routes = extra;
    // Read your writes: a request answered from the store sees every commit made before it
    // arrived. Static files never ask the store, so their fast path does not pay for this.
    routes.catch_up_with(resolver.clone());
    routes.add(
        &["install"],
        Arc::new(files::StaticTree::new("install", site.installdir.clone())),
    );
    routes.add(
        &["tftpboot"],
        // The routes catch up before this is asked: the rendered source need not again.
        Arc::new(files::TftpTree::new(resolver, site.tftpdir.clone())),
    );
    raise_fd_limit(config.max_connections);
    let listener = server::bind_std(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, site.port))
        .with_context(|| format!("cannot bind HTTP port {} (site.httpport)", site.port))?;
    info!(
        port = site.port,
        install = %site.installdir.display(),
        tftpboot = %site.tftpdir.display(),
        "HTTP listening"
    );
    let server = Arc::new(server::HttpServer::new(routes, config));
    // On threads of its own (see `server::HttpThreads`).
    let threads = server::HttpThreads::start(server, listener, shutdown)
        .context("cannot start the HTTP threads")?;
    Ok(Some(threads.finished()))
}

/// Each connection holds a socket and, while sending, a file: the soft descriptor limit (1024
/// under systemd and most shells) would cap connections far below `max_connections`. systemd
/// expects services that need more to raise their soft limit up to the hard one.
fn raise_fd_limit(max_connections: usize) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let want = (2 * max_connections as u64).saturating_add(256);
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft >= want {
        return;
    }
    let new = want.min(hard);
    if new > soft && setrlimit(Resource::RLIMIT_NOFILE, new, hard).is_ok() && new >= want {
        return;
    }
    warn!(
        limit = new.max(soft),
        "open-file limit (RLIMIT_NOFILE) is below what {max_connections} HTTP connections need; raise LimitNOFILE"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_defaults_and_values() {
        let s = Store::open_in_memory().expect("store");
        assert_eq!(
            Site::read(&s).expect("site"),
            Site {
                port: 80,
                installdir: "/install".into(),
                tftpdir: "/tftpboot".into()
            }
        );
        s.write(None, |tx| {
            tx.set("site", &["httpport"], &[("value", Some(" 8080 "))])?;
            tx.set("site", &["installdir"], &[("value", Some("/srv/install"))])
        })
        .expect("write");
        let site = Site::read(&s).expect("site");
        assert_eq!((site.port, site.installdir), (8080, "/srv/install".into()));
        // The store refuses it where it is written; Site::read still names it for a store
        // written before that check.
        let e = s
            .write(None, |tx| {
                tx.set("site", &["httpport"], &[("value", Some("eighty"))])
            })
            .expect_err("bad port refused");
        assert!(e.to_string().contains("site.httpport 'eighty'"), "{e}");
    }
}
