//! Wiring of the DHCP service into the daemon: build the view, load leases, bind the sockets,
//! rebuild the view when the change log touches a table it depends on.

use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio::sync::{broadcast, watch};
use tracing::{info, warn};

use crate::dhcp::config::{self, DhcpView};
use crate::dhcp::keeper::ViewKeeper;
use crate::dhcp::leases::{LeaseBook, LeaseWriter};
use crate::dhcp::server::{self, DhcpServer, Iface};
use crate::store::resolver::Resolver;
use crate::store::Store;

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

/// IPv4 address of each interface (first one wins).
fn interface_addrs() -> Vec<(String, Ipv4Addr)> {
    let mut out: Vec<(String, Ipv4Addr)> = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifa in addrs {
            if let Some(a) = ifa
                .address
                .as_ref()
                .and_then(|a| a.as_sockaddr_in())
                .map(|s| s.ip())
            {
                if !out.iter().any(|(n, _)| *n == ifa.interface_name) {
                    out.push((ifa.interface_name.clone(), a));
                }
            }
        }
    }
    out
}

async fn build_view(keeper: Arc<ViewKeeper>) -> anyhow::Result<DhcpView> {
    let at = keeper.wanted();
    let k = keeper.clone();
    let view = tokio::task::spawn_blocking(move || k.build()).await??;
    keeper.mark_built(at);
    Ok(view)
}

/// Starts DHCP; returns the service and the names of the interfaces it answers on (router
/// advertisements go to the same ones). `Ok(None)` is kept for "nothing at all to run".
pub async fn start(
    store: Arc<Store>,
    resolver: Arc<Resolver>,
    me: Arc<crate::appliance::Identity>,
    mut changes: broadcast::Receiver<Arc<crate::store::watch::ChangeBatch>>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Option<(Task, Vec<String>)>> {
    let keeper = ViewKeeper::for_appliance(resolver.clone(), hostname(), Some(me.clone()));
    let view = build_view(keeper.clone()).await?;
    let s = store.clone();
    let mut book = tokio::task::spawn_blocking(move || LeaseBook::load(&s)).await??;
    book.spread(&me.name);
    let addrs = interface_addrs();
    let chosen: Vec<Iface> = match &view.interfaces {
        Some(list) => {
            let mut v = Vec::new();
            for spec in list {
                let Some((_, addr)) = addrs.iter().find(|(n, _)| *n == spec.name) else {
                    bail!(
                        "site.dhcpinterfaces names {}, which has no IPv4 address on this machine",
                        spec.name
                    );
                };
                v.push(Iface {
                    name: spec.name.clone(),
                    addr: *addr,
                    noboot: spec.noboot,
                });
            }
            v
        }
        None => addrs
            .iter()
            .filter(|(_, a)| !a.is_loopback() && view.subnets.iter().any(|s| s.contains(*a)))
            .map(|(n, a)| Iface {
                name: n.clone(),
                addr: *a,
                noboot: false,
            })
            .collect(),
    };
    // OMAPI runs even when no interface is served yet: hosts can be defined before the network is.
    let port: u16 = match store.site("omapiport")? {
        Some(p) => p
            .trim()
            .parse()
            .with_context(|| format!("site.omapiport '{p}' is not a port number"))?,
        None => 7911,
    };
    let omapi = tokio::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
        .await
        .with_context(|| format!("cannot listen for OMAPI on TCP port {port}"))?;
    info!(port, "OMAPI listening");
    let omapi_task = crate::dhcp::omapi::server::serve(omapi, store.clone(), shutdown.clone());
    if chosen.is_empty() {
        warn!("DHCP: no interface to serve (set site.dhcpinterfaces, or define the network of an interface with makenetworks)");
        return Ok(Some((Box::pin(omapi_task), Vec::new())));
    }
    let names: Vec<String> = chosen.iter().map(|i| i.name.clone()).collect();
    let mut sockets = Vec::new();
    for i in chosen {
        let sock = server::bind(&i.name, 67)
            .with_context(|| format!("cannot bind DHCP port 67 on {}", i.name))?;
        info!(interface = %i.name, address = %i.addr, noboot = i.noboot, "DHCP listening");
        sockets.push((Arc::new(i), sock));
    }
    info!(
        leases = book.len(),
        hosts = view.hosts.len(),
        subnets = view.subnets.len(),
        "DHCP ready"
    );
    let server = Arc::new(
        DhcpServer::new(view, book, LeaseWriter::spawn(store)).with_keeper(keeper.clone()),
    );
    // Leases removed by an admin (makedhcp -d, tabrestore) leave the book too, before the next
    // request is decided. The daemon's own lease writes are upserts/updates and need nothing.
    let weak = Arc::downgrade(&server);
    resolver.on_change(Box::new(move |batch| {
        let Some(srv) = weak.upgrade() else { return };
        for c in batch.changes.iter().filter(|c| {
            c.table == "dhcpleases"
                && matches!(
                    c.op,
                    crate::store::ChangeOp::Delete | crate::store::ChangeOp::Clear
                )
        }) {
            srv.forget_lease(&c.key);
        }
    }));
    let srv = server.clone();
    let mut stop = shutdown.clone();
    let reload = async move {
        loop {
            tokio::select! {
                r = changes.recv() => match r {
                    Ok(batch) => {
                        // Requests rebuild a stale view themselves; this only saves the next
                        // one the wait.
                        if batch.touches(config::DEPENDS_ON) {
                            srv.refresh(None).await;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => srv.refresh(None).await,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = stop.changed() => return,
            }
        }
    };
    Ok(Some((
        Box::pin(async move {
            tokio::join!(server::run(server, sockets, shutdown), reload, omapi_task);
        }),
        names,
    )))
}
