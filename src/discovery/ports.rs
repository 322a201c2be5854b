//! The [`PortLocator`] discovery uses in the daemon: [`SwitchMapper`] over SNMP, reconfigured from
//! the tables on each lookup (cached polls of unchanged switches are kept, and a switch is polled
//! at most every 20 s), called from the blocking threads the findme handlers run on.

use std::sync::Arc;

use super::matcher::{PortHit, PortLocator};
use super::switchmap::{config_from_store, SwitchMapper, Verdict};
use super::MacAddr;
use crate::store::resolver::Resolver;
use crate::store::Store;

pub struct SnmpPorts {
    store: Arc<Store>,
    mapper: SwitchMapper,
    runtime: tokio::runtime::Handle,
}

impl SnmpPorts {
    /// `runtime` runs the SNMP polls; lookups block the calling (non-runtime) thread.
    pub fn new(store: Arc<Store>, runtime: tokio::runtime::Handle) -> SnmpPorts {
        SnmpPorts {
            store,
            mapper: SwitchMapper::new(Default::default()),
            runtime,
        }
    }
}

impl PortLocator for SnmpPorts {
    fn locate(&self, macs: &[String]) -> (Vec<PortHit>, Vec<String>) {
        match config_from_store(&Resolver::new(self.store.clone())) {
            Ok(cfg) => self.mapper.reconfigure(cfg),
            Err(e) => {
                return (
                    Vec::new(),
                    vec![format!("the switch tables cannot be read: {e}")],
                )
            }
        }
        if !self.mapper.config().switches.iter().any(|s| s.cabled) {
            return (Vec::new(), Vec::new());
        }
        let macs: Vec<MacAddr> = macs.iter().filter_map(|m| m.parse().ok()).collect();
        let located = self.runtime.block_on(self.mapper.locate(&macs));
        let mut hits = Vec::new();
        for loc in &located.macs {
            let owner = match &loc.verdict {
                Verdict::Node(n) => Some(n.clone()),
                _ => None,
            };
            for s in &loc.seen {
                hits.push(PortHit {
                    mac: loc.mac.to_string(),
                    switch: s.switch.clone(),
                    port: s.port.clone(),
                    node: owner.clone().filter(|n| s.nodes.contains(n)),
                });
            }
        }
        // Hits on a node's port first: the matcher takes the first hit that names a node.
        hits.sort_by_key(|h| h.node.is_none());
        let notes = located
            .switches
            .iter()
            .filter_map(|r| {
                r.result
                    .as_ref()
                    .err()
                    .map(|e| format!("{}: {e}", r.switch))
            })
            .collect();
        (hits, notes)
    }
}
