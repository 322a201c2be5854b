//! DNS from the tables, served by `bootherd serve` on UDP and TCP 53: authoritative for
//! `site.domain`, the networks' domains and their reverse zones (names from the hosts table, as
//! xCAT's `makedns` puts them in its zones), forwarding everything else to `site.forwarders`.
//! There are no zone files: every question is answered from the store as it is now.
//!
//! `zone` (tables → [`zone::DnsView`], pure over the resolver), `answer` (packet → decision,
//! pure, fuzzed), `forward` (hickory's resolver towards the forwarders), `server` (sockets,
//! limits, the view keeper).

pub mod answer;
pub mod forward;
pub mod server;
pub mod zone;

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;
use tracing::info;

use crate::store::resolver::Resolver;

/// The DNS port unless `bootherd serve --dns-port` says otherwise.
pub const PORT: u16 = 53;

/// Binds the DNS port and returns the service.
pub async fn start(
    resolver: Arc<Resolver>,
    port: u16,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    let sockets = server::bind(port).await?;
    let r = resolver.clone();
    let (per_client, qps) = tokio::task::spawn_blocking(move || {
        (
            crate::limits::site_limit(r.store(), "dnsperclient", server::PER_CLIENT),
            crate::limits::site_limit(r.store(), "dnsqpsperclient", server::QPS_PER_CLIENT),
        )
    })
    .await
    .unwrap_or((server::PER_CLIENT, server::QPS_PER_CLIENT));
    info!(port, "DNS listening (UDP and TCP)");
    Ok(server::run(sockets, resolver, per_client, qps, shutdown))
}
