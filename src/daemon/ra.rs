//! Wiring of router advertisements into the daemon: on the interfaces DHCP serves, with the view
//! rebuilt when the change log touches `site` or `networks`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{broadcast, watch};
use tracing::{info, warn};

use crate::ra::{self, server::RaView};
use crate::store::resolver::Resolver;

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

async fn build(resolver: Arc<Resolver>) -> anyhow::Result<RaView> {
    Ok(tokio::task::spawn_blocking(move || ra::view(&resolver)).await??)
}

/// Starts advertising on `interfaces` (DHCP's). `Ok(None)` when there are none.
pub async fn start(
    interfaces: Vec<String>,
    resolver: Arc<Resolver>,
    mut changes: broadcast::Receiver<Arc<crate::store::watch::ChangeBatch>>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Option<Task>> {
    if interfaces.is_empty() {
        return Ok(None);
    }
    let v = build(resolver.clone()).await?;
    if !v.enabled {
        info!("router advertisements off (site.{} = no)", ra::SITE_KEY);
    }
    let (tx, rx) = watch::channel(Arc::new(v));
    let mut stop = shutdown.clone();
    let reload = async move {
        loop {
            tokio::select! {
                r = changes.recv() => match r {
                    Ok(batch) if !batch.touches(ra::DEPENDS_ON) => continue,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => match build(resolver.clone()).await {
                        Ok(v) => {
                            if **tx.borrow() != v {
                                info!(enabled = v.enabled, prefixes = v.prefixes.len(), "router advertisement settings reloaded");
                                let _ = tx.send(Arc::new(v));
                            }
                        }
                        Err(e) => warn!("router advertisement settings not reloaded: {e:#}"),
                    },
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = stop.changed() => return,
            }
        }
    };
    Ok(Some(Box::pin(async move {
        tokio::join!(ra::server::run(interfaces, rx, shutdown), reload);
    })))
}
