//! This appliance in the store's registry: who it is at start ([`start`]: name, addresses,
//! MN or SN, recorded in the `appliances` table) and its heartbeat ([`beat`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tracing::{info, warn};

use super::ServeArgs;
use crate::appliance::{self, Identity};
use crate::store::resolver::Resolver;
use crate::store::Store;

/// Works out this appliance's identity and records it as running.
pub async fn start(
    store: &Arc<Store>,
    resolver: &Arc<Resolver>,
    a: &ServeArgs,
) -> anyhow::Result<Identity> {
    let explicit = appliance::explicit_name(a.name.as_deref());
    let (s, r, iv) = (store.clone(), resolver.clone(), a.heartbeat.max(1));
    let me = tokio::task::spawn_blocking(move || -> anyhow::Result<Identity> {
        let me = appliance::identify(&r, explicit.as_deref())?;
        appliance::register(&s, &me, iv)?;
        Ok(me)
    })
    .await?
    .context("cannot record this appliance in the appliances table")?;
    let addrs: Vec<String> = me.addrs.iter().map(|a| a.to_string()).collect();
    info!(
        name = %me.name,
        role = me.role.as_str(),
        addresses = %addrs.join(","),
        "this appliance"
    );
    let _ = appliance::RUNNING.set(me.clone());
    Ok(me)
}

/// Writes a heartbeat every `secs` seconds until shutdown; an outage of the store is logged once.
pub async fn beat(store: Arc<Store>, name: String, secs: u64, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(secs.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {},
            _ = shutdown.changed() => return,
        }
        let (s, n) = (store.clone(), name.clone());
        match tokio::task::spawn_blocking(move || appliance::heartbeat(&s, &n)).await {
            Ok(Ok(())) => {
                if failing {
                    info!("heartbeats recorded again");
                    failing = false;
                }
            }
            Ok(Err(e)) if !failing => {
                warn!("cannot record this appliance's heartbeat: {e}");
                failing = true;
            }
            Ok(Err(_)) => {}
            Err(e) => {
                warn!("heartbeat task failed: {e}");
                return;
            }
        }
    }
}
