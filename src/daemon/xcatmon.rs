//! The built-in `xcatmon` monitoring plug-in: while the `monitoring` row `xcatmon` is enabled
//! (`monstart`) with `nodestatmon` set (`monadd -n`), every `ping-interval` minutes (monsetting
//! `xcatmon ping-interval`, fractions accepted, default 3) it does what xCAT's cron line
//! `nodestat all -m -u -q` did: probes every node (ICMP echo and TCP, all at once on this
//! runtime, a bounded number of connects in flight) and writes `nodelist.status`/`statustime`
//! (and `appstatus`) for the nodes whose value changed, in one transaction. Nothing is written
//! when nothing changed.
//!
//! It learns of `monstart`/`monstop`/`monadd -s` from the change log (the `monitoring` and
//! `monsetting` tables), like every other service.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tracing::{debug, info, warn};

use super::ChangeBatch;
use crate::monitor;
use crate::store::resolver::Resolver;

/// What the tables say xcatmon should do.
#[derive(Debug, Clone, PartialEq)]
struct Config {
    running: bool,
    interval: Duration,
}

fn load(r: &Resolver) -> Config {
    let store = r.store();
    let running = match monitor::monitoring_rows(store) {
        Ok(rows) => rows
            .iter()
            .any(|m| m.name == "xcatmon" && m.enabled && m.nodestatmon),
        Err(e) => {
            warn!("xcatmon: cannot read the monitoring table: {e}");
            false
        }
    };
    let minutes = monitor::settings(store, "xcatmon")
        .map(|s| monitor::ping_interval(&s))
        .unwrap_or(3.0);
    Config {
        running,
        // At least a second between rounds, whatever the setting says.
        interval: Duration::from_secs_f64((minutes * 60.0).max(1.0)),
    }
}

/// One round: probe every node, write the transitions.
async fn round(r: &Arc<Resolver>) {
    let rr = r.clone();
    let nodes = match tokio::task::spawn_blocking(move || {
        rr.catch_up()?;
        Ok::<_, crate::store::StoreError>(
            rr.membership()?.nodes.iter().cloned().collect::<Vec<_>>(),
        )
    })
    .await
    {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => {
            warn!("xcatmon: cannot read the nodes: {e}");
            return;
        }
        Err(e) => {
            warn!("xcatmon: {e}");
            return;
        }
    };
    if nodes.is_empty() {
        return;
    }
    let count = nodes.len();
    let started = std::time::Instant::now();
    let opts = monitor::StatOpts {
        usemon: true,
        ..Default::default()
    };
    // The probes are async, but classifying the answers reads the store (addresses, boot
    // states): the whole round runs on a blocking thread, its sockets still on this runtime.
    let rr = r.clone();
    let handle = tokio::runtime::Handle::current();
    let stats = match tokio::task::spawn_blocking(move || {
        handle.block_on(monitor::nodestat(rr, nodes, &opts))
    })
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            warn!("xcatmon: {e}");
            return;
        }
        Err(e) => {
            warn!("xcatmon: {e}");
            return;
        }
    };
    for s in stats.iter().filter(|s| s.message.is_some()) {
        debug!(node = %s.node, "xcatmon: {}", s.message.as_deref().unwrap_or(""));
    }
    let store = r.store().clone();
    let written = tokio::task::spawn_blocking(move || monitor::update(&store, &stats, None)).await;
    match written {
        Ok(Ok(u)) => {
            let took = started.elapsed();
            if u.status > 0 || u.appstatus > 0 {
                info!(
                    nodes = count,
                    status_changes = u.status,
                    appstatus_changes = u.appstatus,
                    ms = took.as_millis() as u64,
                    "xcatmon: node status updated"
                );
            } else {
                debug!(
                    nodes = count,
                    ms = took.as_millis() as u64,
                    "xcatmon: no change"
                );
            }
        }
        Ok(Err(e)) => warn!("xcatmon: cannot write nodelist.status: {e}"),
        Err(e) => warn!("xcatmon: {e}"),
    }
}

/// Runs until shutdown.
pub async fn run(
    resolver: Arc<Resolver>,
    mut changes: broadcast::Receiver<Arc<ChangeBatch>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let r = resolver.clone();
    let mut cfg = match tokio::task::spawn_blocking(move || load(&r)).await {
        Ok(c) => c,
        Err(_) => return,
    };
    let mut announced = None;
    loop {
        if announced.as_ref() != Some(&cfg) {
            if cfg.running {
                info!(
                    interval_s = cfg.interval.as_secs_f64(),
                    "xcatmon: node status monitoring started"
                );
            } else if announced.as_ref().is_some_and(|c: &Config| c.running) {
                info!("xcatmon: node status monitoring stopped");
            }
            announced = Some(cfg.clone());
        }
        if cfg.running {
            tokio::select! {
                _ = round(&resolver) => {},
                _ = shutdown.changed() => return,
            }
        }
        // Wait for the next round, a change of the monitoring tables, or shutdown.
        let sleep = tokio::time::sleep(if cfg.running {
            cfg.interval
        } else {
            Duration::from_secs(86400 * 365)
        });
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                _ = shutdown.changed() => return,
                b = changes.recv() => {
                    let relevant = match b {
                        Ok(b) => b.reset || b.tables.iter().any(|t| t == "monitoring" || t == "monsetting"),
                        Err(broadcast::error::RecvError::Lagged(_)) => true,
                        Err(broadcast::error::RecvError::Closed) => return,
                    };
                    if relevant {
                        let r = resolver.clone();
                        let new = match tokio::task::spawn_blocking(move || load(&r)).await {
                            Ok(c) => c,
                            Err(_) => return,
                        };
                        if new != cfg {
                            let start_now = new.running && (!cfg.running || new.interval != cfg.interval);
                            cfg = new;
                            if start_now || !cfg.running {
                                break;
                            }
                        }
                    }
                }
            }
        }
    }
}
