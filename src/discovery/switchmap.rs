//! Which switch port is a MAC on, and which node owns that port: the configuration read from the
//! tables, the per-switch poll cache, and the two questions discovery and `switchprobe` ask.
//!
//! **Configuration** ([`config_from_store`]): the `switch` table says which node is cabled to
//! which `switch`/`port` (rows keyed by a group apply to its members; regex values are evaluated
//! per node; nodes whose `nodetype.nodetype` is `switch` are left out, as xCAT's node discovery
//! does). The `switches` table gives each switch's SNMP settings: `snmpversion` (v1 if unset),
//! `password` (the community, or the v3 passphrase for both authentication and privacy; unset:
//! `site.snmpc`, else `public`), `username`, `auth` (MD5 if unset), `privacy` (authNoPriv if
//! unset). The address is `hosts.ip` of the switch, else its name through the system resolver;
//! SNMP port 161.
//!
//! **Polling** ([`SwitchMapper`]): switches are polled in parallel, one task each, so a dead
//! switch costs its own timeout and not everyone's. Each result is kept per switch; a switch is
//! polled again only when its last poll is at least 20 s old (xCAT's minimum), and cached results
//! up to 5 minutes old answer [`SwitchMapper::locate`] when they already name a node for every
//! MAC asked about (xCAT's `find_mac`). The daemon keeps one mapper; a command makes a fresh one,
//! so it always polls.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::fdb::{self, SwitchTable};
use super::portname::namesmatch;
use super::snmp::{self, AuthProto, Credentials, PrivProto, Settings, Version};
use super::MacAddr;
use crate::store::regexattr::RegexValue;
use crate::store::resolver::Resolver;
use crate::store::StoreError;

/// The SNMP agent port.
pub const SNMP_PORT: u16 = 161;
/// xCAT's minimum time between two polls of one switch.
pub const MIN_REPOLL: Duration = Duration::from_secs(20);
/// How long a cached poll may answer `locate` without polling (xCAT: 5 minutes).
pub const MAX_AGE: Duration = Duration::from_secs(300);

/// One switch to poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchConfig {
    /// The switch's name (as in `switch.switch` / `switches.switch`).
    pub name: String,
    /// What to resolve: `hosts.ip`, else the name.
    pub host: String,
    /// How to talk to it, or why the settings are unusable (reported as that switch's error).
    pub credentials: Result<Credentials, String>,
    /// Named in the `switch` table (node discovery polls only these; switchprobe polls all).
    pub cabled: bool,
}

/// A `switch` table entry: `node` is cabled to `port` (as the admin wrote it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortOwner {
    pub port: String,
    pub node: String,
}

/// Everything mapping needs from the tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapConfig {
    /// Sorted by name: switches named in `switch` or `switches`.
    pub switches: Vec<SwitchConfig>,
    /// Switch → its `switch` table entries.
    pub owners: BTreeMap<String, Vec<PortOwner>>,
    pub settings: Settings,
    /// Table problems that did not stop the configuration (bad regex values, …).
    pub warnings: Vec<String>,
}

impl MapConfig {
    /// The nodes whose `switch.port` names the interface `snmp_port` of `switch` (xCAT's
    /// `namesmatch`), sorted.
    pub fn nodes_on(&self, switch: &str, snmp_port: &str) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .owners
            .get(switch)
            .into_iter()
            .flatten()
            .filter(|o| namesmatch(&o.port, snmp_port))
            .map(|o| o.node.as_str())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    pub fn switch(&self, name: &str) -> Option<&SwitchConfig> {
        self.switches.iter().find(|s| s.name == name)
    }
}

/// A column of `table` by name, as an index (the schema is static; a missing column is a bug).
fn col(r: &Resolver, table: &str, column: &str) -> Result<usize, StoreError> {
    let t = r.table(table)?;
    crate::store::column_index(t.spec, column)
}

/// A table value for `node`: empty is undefined, regex values are evaluated for the node.
fn eval(value: Option<&String>, node: &str) -> Result<Option<String>, String> {
    let Some(v) = value.map(|v| v.trim()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    match RegexValue::parse(v).map_err(|e| e.to_string())? {
        None => Ok(Some(v.to_string())),
        Some(rv) => rv.apply(node).map_err(|e| e.to_string()),
    }
}

/// Reads the switch configuration from the tables (see the module docs for the rules).
pub fn config_from_store(r: &Resolver) -> Result<MapConfig, StoreError> {
    r.preload(&[
        "switch", "switches", "hosts", "nodetype", "site", "nodelist",
    ])?;
    let mut cfg = MapConfig {
        settings: Settings::default(),
        ..Default::default()
    };
    let t = r.table("switch")?;
    let (c_node, c_switch, c_port) = (
        col(r, "switch", "node")?,
        col(r, "switch", "switch")?,
        col(r, "switch", "port")?,
    );
    let m = r.membership()?;
    // Rows keyed by a node win; a node without its own rows takes its first group's rows.
    let mut keyed: BTreeSet<&str> = BTreeSet::new();
    for row in &t.rows {
        if let Some(Some(k)) = row.get(c_node) {
            keyed.insert(k.as_str());
        }
    }
    let nodetype = r.column("nodetype", "nodetype")?;
    for node in &m.nodes {
        let rows: Vec<&Vec<Option<String>>> = if keyed.contains(node.as_str()) {
            t.rows_for(node).collect()
        } else {
            let groups = m.node_groups.get(node).map(Vec::as_slice).unwrap_or(&[]);
            match groups.iter().find(|g| keyed.contains(g.as_str())) {
                Some(g) => t.rows_for(g).collect(),
                None => continue,
            }
        };
        if rows.is_empty() {
            continue;
        }
        if nodetype.get(node)?.as_deref() == Some("switch") {
            continue;
        }
        for row in rows {
            let sw = eval(row.get(c_switch).and_then(Option::as_ref), node);
            let port = eval(row.get(c_port).and_then(Option::as_ref), node);
            match (sw, port) {
                (Ok(Some(sw)), Ok(Some(port))) => {
                    cfg.owners.entry(sw).or_default().push(PortOwner {
                        port,
                        node: node.clone(),
                    });
                }
                (Err(e), _) | (_, Err(e)) => cfg
                    .warnings
                    .push(format!("switch table entry for {node}: {e}")),
                _ => cfg.warnings.push(format!(
                    "{node}: switch table entry without switch.switch or switch.port"
                )),
            }
        }
    }
    let mut names: BTreeMap<String, bool> = cfg.owners.keys().map(|s| (s.clone(), true)).collect();
    let st = r.table("switches")?;
    let c_sw = col(r, "switches", "switch")?;
    for row in &st.rows {
        if let Some(Some(s)) = row.get(c_sw) {
            if !s.trim().is_empty() {
                names.entry(s.trim().to_string()).or_insert(false);
            }
        }
    }
    let community = r.site("snmpc")?.unwrap_or_else(|| "public".to_string());
    for (name, cabled) in names {
        let get = |column: &str| -> Result<Option<String>, StoreError> {
            Ok(r.attr(&name, "switches", column)?.filter(|v| !v.is_empty()))
        };
        let version = Version::from_xcat(get("snmpversion")?.as_deref());
        let auth = get("auth")?;
        let privacy = get("privacy")?;
        let credentials = (|| {
            Ok(Credentials {
                version,
                secret: get("password")
                    .map_err(|e| e.to_string())?
                    .unwrap_or_else(|| community.clone()),
                username: get("username")
                    .map_err(|e| e.to_string())?
                    .unwrap_or_default(),
                auth: match auth.as_deref() {
                    None => AuthProto::Md5,
                    Some(a) => AuthProto::parse(a).ok_or_else(|| {
                        format!(
                            "switches.auth '{a}' is not MD5, SHA, SHA224, SHA256, SHA384 or SHA512"
                        )
                    })?,
                },
                privacy: match privacy.as_deref() {
                    None => None,
                    Some(p) => Some(PrivProto::parse(p).ok_or_else(|| {
                        format!("switches.privacy '{p}' is not DES, AES, AES192 or AES256")
                    })?),
                },
            })
        })();
        let host = r
            .attr(&name, "hosts", "ip")?
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| name.clone());
        cfg.switches.push(SwitchConfig {
            name,
            host,
            credentials,
            cabled,
        });
    }
    Ok(cfg)
}

/// The outcome of polling one switch.
#[derive(Debug, Clone)]
pub struct SwitchReport {
    pub switch: String,
    /// Where it was polled (`None` when the name did not resolve).
    pub address: Option<SocketAddr>,
    /// Its ports and MACs, or why not.
    pub result: Result<Arc<SwitchTable>, String>,
    /// When the poll finished (by the mapper's clock).
    pub polled: Instant,
    /// How long the poll took.
    pub took: Duration,
}

/// Polls one switch. [`SnmpPoller`] is the real one; tests substitute their own.
pub trait Poller: Send + Sync + 'static {
    fn poll(
        &self,
        sw: &SwitchConfig,
        settings: &Settings,
    ) -> impl Future<Output = (Option<SocketAddr>, Result<SwitchTable, String>)> + Send;
}

/// Polls over SNMP ([`snmp::poll`]) and decodes ([`fdb::decode`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SnmpPoller;

/// `host` as an SNMP address: an IP literal, else the system resolver (IPv4 preferred).
pub async fn resolve(host: &str) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, SNMP_PORT));
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, SNMP_PORT))
        .await
        .map_err(|e| format!("Can not resolve IP address for {host}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("Can not resolve IP address for {host}"))
}

impl Poller for SnmpPoller {
    async fn poll(
        &self,
        sw: &SwitchConfig,
        settings: &Settings,
    ) -> (Option<SocketAddr>, Result<SwitchTable, String>) {
        let creds = match &sw.credentials {
            Ok(c) => c,
            Err(e) => return (None, Err(e.clone())),
        };
        let addr = match resolve(&sw.host).await {
            Ok(a) => a,
            Err(e) => return (None, Err(e)),
        };
        let walked = snmp::poll(addr, creds, settings).await;
        let table = walked.and_then(|w| fdb::decode(&w).map_err(|e| e.to_string()));
        (Some(addr), table)
    }
}

/// The mapper's notion of now (injectable so the cache can be tested without sleeping).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// One switch's cache slot. The async lock makes concurrent askers share one poll.
type Slot = Arc<tokio::sync::Mutex<Option<Arc<SwitchReport>>>>;

/// Polls switches and keeps their results (see the module docs).
pub struct SwitchMapper<P: Poller = SnmpPoller> {
    config: RwLock<Arc<MapConfig>>,
    poller: Arc<P>,
    clock: Clock,
    min_repoll: Duration,
    max_age: Duration,
    slots: Mutex<HashMap<String, Slot>>,
}

impl<P: Poller> fmt::Debug for SwitchMapper<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwitchMapper")
            .field("config", &self.config())
            .field("min_repoll", &self.min_repoll)
            .finish_non_exhaustive()
    }
}

impl SwitchMapper<SnmpPoller> {
    /// A mapper polling over SNMP, on the system clock.
    pub fn new(config: MapConfig) -> SwitchMapper<SnmpPoller> {
        SwitchMapper::with_poller(config, SnmpPoller, Arc::new(Instant::now))
    }
}

impl<P: Poller> SwitchMapper<P> {
    pub fn with_poller(config: MapConfig, poller: P, clock: Clock) -> SwitchMapper<P> {
        SwitchMapper {
            config: RwLock::new(Arc::new(config)),
            poller: Arc::new(poller),
            clock,
            min_repoll: MIN_REPOLL,
            max_age: MAX_AGE,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> Arc<MapConfig> {
        self.config
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Replaces the configuration (after the `switch`/`switches`/`hosts`/`site` tables changed).
    /// Cached polls are kept for switches whose address and credentials did not change.
    pub fn reconfigure(&self, config: MapConfig) {
        let old = self.config();
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.retain(|name, _| {
            matches!((old.switch(name), config.switch(name)),
                (Some(a), Some(b)) if a.host == b.host && a.credentials == b.credentials)
        });
        drop(slots);
        let mut c = self.config.write().unwrap_or_else(|p| p.into_inner());
        *c = Arc::new(config);
    }

    fn slot(&self, name: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(name.to_string()).or_default().clone()
    }

    /// The latest poll of each of `switches` (polling those not polled within 20 s), in parallel.
    async fn refresh(
        &self,
        switches: Vec<SwitchConfig>,
        settings: Settings,
    ) -> Vec<Arc<SwitchReport>> {
        let mut tasks = Vec::with_capacity(switches.len());
        for sw in switches {
            let slot = self.slot(&sw.name);
            let poller = self.poller.clone();
            let clock = self.clock.clone();
            let min_repoll = self.min_repoll;
            let name = sw.name.clone();
            let task = tokio::spawn(async move {
                let mut g = slot.lock().await;
                let now = clock();
                if let Some(r) = g.as_ref() {
                    if now.saturating_duration_since(r.polled) < min_repoll {
                        return r.clone();
                    }
                }
                let (address, result) = poller.poll(&sw, &settings).await;
                let polled = clock();
                let r = Arc::new(SwitchReport {
                    switch: sw.name.clone(),
                    address,
                    result: result.map(Arc::new),
                    polled,
                    took: polled.saturating_duration_since(now),
                });
                *g = Some(r.clone());
                r
            });
            tasks.push((name, task));
        }
        let mut out = Vec::with_capacity(tasks.len());
        for (name, task) in tasks {
            out.push(match task.await {
                Ok(r) => r,
                Err(e) => Arc::new(SwitchReport {
                    switch: name,
                    address: None,
                    result: Err(format!("the poll task failed: {e}")),
                    polled: (self.clock)(),
                    took: Duration::ZERO,
                }),
            });
        }
        out
    }

    /// Polls the switches named in `only` (all configured switches when empty) and reports each,
    /// sorted by name. A name that is not configured is reported as an error.
    pub async fn probe(&self, only: &[String]) -> Vec<Arc<SwitchReport>> {
        let cfg = self.config();
        let mut unknown = Vec::new();
        let switches: Vec<SwitchConfig> = if only.is_empty() {
            cfg.switches.clone()
        } else {
            let mut v = Vec::new();
            for name in only {
                match cfg.switch(name) {
                    Some(s) => v.push(s.clone()),
                    None => unknown.push(Arc::new(SwitchReport {
                        switch: name.clone(),
                        address: None,
                        result: Err("No switch configuration info found (not in the switch or switches table)".into()),
                        polled: (self.clock)(),
                        took: Duration::ZERO,
                    })),
                }
            }
            v
        };
        let mut out = self.refresh(switches, cfg.settings).await;
        out.extend(unknown);
        out.sort_by(|a, b| a.switch.cmp(&b.switch));
        out.dedup_by(|a, b| a.switch == b.switch);
        out
    }

    /// Where each of `macs` is cabled: the switch ports it was learned on and the node that owns
    /// the port, or why there is none. Polls the switches of the `switch` table unless cached
    /// results (≤ 5 min) already name a node for every MAC; a switch polled within 20 s is not
    /// polled again.
    pub async fn locate(&self, macs: &[MacAddr]) -> Located {
        let cfg = self.config();
        let cabled: Vec<SwitchConfig> = cfg.switches.iter().filter(|s| s.cabled).cloned().collect();
        let now = (self.clock)();
        let mut cached = Vec::new();
        for sw in &cabled {
            if let Ok(g) = self.slot(&sw.name).try_lock() {
                if let Some(r) = g.as_ref() {
                    if now.saturating_duration_since(r.polled) <= self.max_age {
                        cached.push(r.clone());
                    }
                }
            }
        }
        if !macs.is_empty() {
            let from_cache = evaluate(&cfg, &cached, macs);
            if from_cache.macs.iter().all(|m| m.node().is_some()) {
                return from_cache;
            }
        }
        let reports = self.refresh(cabled, cfg.settings).await;
        evaluate(&cfg, &reports, macs)
    }
}

/// Where a MAC was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub switch: String,
    /// The interface name the switch reports.
    pub port: String,
    pub vlan: Option<u32>,
    /// The nodes whose `switch.port` names this port.
    pub nodes: Vec<String>,
}

/// The answer for one MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Exactly one node owns a port the MAC was seen on.
    Node(String),
    /// Several nodes own the ports it was seen on.
    Ambiguous(Vec<String>),
    /// Seen, but on no port of the `switch` table.
    NoNode,
    /// Not in any polled switch's forwarding table.
    NotSeen,
}

/// One MAC: where it was seen, what that means, and a sentence saying so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacLocation {
    pub mac: MacAddr,
    pub seen: Vec<Sighting>,
    pub verdict: Verdict,
    why: String,
}

impl MacLocation {
    /// The node this MAC belongs to, when exactly one.
    pub fn node(&self) -> Option<&str> {
        match &self.verdict {
            Verdict::Node(n) => Some(n),
            _ => None,
        }
    }

    /// The sighting on the node's port, when there is a node.
    pub fn port(&self) -> Option<&Sighting> {
        let n = self.node()?;
        self.seen.iter().find(|s| s.nodes.iter().any(|x| x == n))
    }
}

impl fmt::Display for MacLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why)
    }
}

/// The answer for several MACs, and what was polled to get it.
#[derive(Debug, Clone)]
pub struct Located {
    pub macs: Vec<MacLocation>,
    /// The switch polls the answer is based on (cached or fresh).
    pub switches: Vec<Arc<SwitchReport>>,
}

impl Located {
    pub fn get(&self, mac: &MacAddr) -> Option<&MacLocation> {
        self.macs.iter().find(|m| &m.mac == mac)
    }

    /// The node one of the MACs belongs to, when they agree on exactly one (a node with several
    /// NICs may boot with any of them).
    pub fn node(&self) -> Option<&str> {
        let mut nodes = self.macs.iter().filter_map(MacLocation::node);
        let first = nodes.next()?;
        nodes.all(|n| n == first).then_some(first)
    }
}

/// "sw1 port Gi1/0/7, sw2 port Te1/0/49".
fn places(seen: &[&Sighting]) -> String {
    seen.iter()
        .map(|s| format!("{} port {}", s.switch, s.port))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Answers for `macs` from the given polls.
pub fn evaluate(cfg: &MapConfig, reports: &[Arc<SwitchReport>], macs: &[MacAddr]) -> Located {
    let mut out = Vec::with_capacity(macs.len());
    for mac in macs {
        let mut seen = Vec::new();
        for r in reports {
            let Ok(t) = &r.result else { continue };
            for (port, vlan) in t.find(mac) {
                seen.push(Sighting {
                    switch: r.switch.clone(),
                    port: port.name.clone(),
                    vlan,
                    nodes: cfg
                        .nodes_on(&r.switch, &port.name)
                        .into_iter()
                        .map(str::to_string)
                        .collect(),
                });
            }
        }
        let owned: Vec<&Sighting> = seen.iter().filter(|s| !s.nodes.is_empty()).collect();
        let mut nodes: Vec<String> = owned.iter().flat_map(|s| s.nodes.iter().cloned()).collect();
        nodes.sort();
        nodes.dedup();
        let all: Vec<&Sighting> = seen.iter().collect();
        let (verdict, why) = match nodes.len() {
            1 => (
                Verdict::Node(nodes[0].clone()),
                format!("MAC {mac} is node {} ({})", nodes[0], places(&owned)),
            ),
            n if n > 1 => (
                Verdict::Ambiguous(nodes.clone()),
                format!(
                    "MAC {mac} seen on {}, which belong to several nodes: {}",
                    places(&owned),
                    nodes.join(", ")
                ),
            ),
            _ if !seen.is_empty() => (
                Verdict::NoNode,
                if let [s] = all.as_slice() {
                    format!(
                        "MAC {mac} seen on {0} port {1}; no node has switch {0} port {1}",
                        s.switch, s.port
                    )
                } else {
                    format!(
                        "MAC {mac} seen on {}; no node has any of these switch ports",
                        places(&all)
                    )
                },
            ),
            _ => {
                let ok: Vec<&str> = reports
                    .iter()
                    .filter(|r| r.result.is_ok())
                    .map(|r| r.switch.as_str())
                    .collect();
                let failed: Vec<String> = reports
                    .iter()
                    .filter_map(|r| {
                        r.result
                            .as_ref()
                            .err()
                            .map(|e| format!("{} failed: {e}", r.switch))
                    })
                    .collect();
                let why = if reports.is_empty() {
                    format!("MAC {mac} not seen: no switch is named in the switch table")
                } else {
                    let mut parts = Vec::new();
                    if !ok.is_empty() {
                        parts.push(format!("polled {}", ok.join(", ")));
                    }
                    parts.extend(failed);
                    format!("MAC {mac} not seen on any switch ({})", parts.join("; "))
                };
                (Verdict::NotSeen, why)
            }
        };
        out.push(MacLocation {
            mac: *mac,
            seen,
            verdict,
            why,
        });
    }
    Located {
        macs: out,
        switches: reports.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::fdb::{Row, SwitchWalk};

    fn mac(s: &str) -> MacAddr {
        s.parse().unwrap()
    }

    /// A switch whose port `Gi1/0/<p>` learned `52:54:00:00:<sw>:<p>`, plus an uplink with `mac_up`.
    fn table(sw: u8, mac_up: &str) -> SwitchTable {
        let mut w = SwitchWalk::default();
        for p in 1..=4u32 {
            w.names.push(Row::text(&[100 + p], &format!("Gi1/0/{p}")));
            w.base_port_ifindex.push(Row::int(&[p], i64::from(100 + p)));
            w.fdb
                .push(Row::int(&[82, 84, 0, 0, u32::from(sw), p], i64::from(p)));
        }
        w.names.push(Row::text(&[105], "Te1/0/49"));
        w.base_port_ifindex.push(Row::int(&[5], 105));
        let idx: Vec<u32> = mac(mac_up).0.iter().map(|b| u32::from(*b)).collect();
        w.fdb.push(Row::int(&idx, 5));
        fdb::decode(&w).unwrap()
    }

    fn sw(name: &str, cabled: bool) -> SwitchConfig {
        SwitchConfig {
            name: name.into(),
            host: name.into(),
            credentials: Ok(Credentials {
                version: Version::V2c,
                secret: "public".into(),
                username: String::new(),
                auth: AuthProto::Md5,
                privacy: None,
            }),
            cabled,
        }
    }

    fn config() -> MapConfig {
        let mut owners = BTreeMap::new();
        owners.insert(
            "sw1".to_string(),
            vec![
                PortOwner {
                    port: "Gi1/0/1".into(),
                    node: "n1".into(),
                },
                PortOwner {
                    port: "2".into(),
                    node: "n2".into(),
                },
                PortOwner {
                    port: "1/0/3".into(),
                    node: "n3".into(),
                },
                PortOwner {
                    port: "3".into(),
                    node: "n3b".into(),
                },
            ],
        );
        owners.insert(
            "sw2".to_string(),
            vec![PortOwner {
                port: "Gi1/0/1".into(),
                node: "m1".into(),
            }],
        );
        MapConfig {
            switches: vec![
                sw("sw1", true),
                sw("sw2", true),
                sw("sw3", true),
                sw("spare", false),
            ],
            owners,
            settings: Settings::default(),
            warnings: vec![],
        }
    }

    /// sw1 and sw2 answer (each sees the other's port-1 MAC on its uplink); sw3 never answers.
    struct Fake {
        polls: Arc<Mutex<Vec<String>>>,
    }

    impl Poller for Fake {
        async fn poll(
            &self,
            sw: &SwitchConfig,
            _: &Settings,
        ) -> (Option<SocketAddr>, Result<SwitchTable, String>) {
            self.polls.lock().unwrap().push(sw.name.clone());
            tokio::task::yield_now().await;
            match sw.name.as_str() {
                "sw1" => (None, Ok(table(1, "52:54:00:00:02:01"))),
                "sw2" => (None, Ok(table(2, "52:54:00:00:01:01"))),
                _ => (None, Err("no SNMP answer from 10.0.0.3:161".into())),
            }
        }
    }

    struct TestClock(Arc<Mutex<Instant>>);
    impl TestClock {
        fn advance(&self, d: Duration) {
            *self.0.lock().unwrap() += d;
        }
    }

    fn mapper() -> (SwitchMapper<Fake>, Arc<Mutex<Vec<String>>>, TestClock) {
        let polls = Arc::new(Mutex::new(Vec::new()));
        let t = Arc::new(Mutex::new(Instant::now()));
        let tc = t.clone();
        let clock: Clock = Arc::new(move || *tc.lock().unwrap());
        let m = SwitchMapper::with_poller(
            config(),
            Fake {
                polls: polls.clone(),
            },
            clock,
        );
        (m, polls, TestClock(t))
    }

    fn take(p: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
        let mut v = std::mem::take(&mut *p.lock().unwrap());
        v.sort();
        v
    }

    #[tokio::test]
    async fn locate_names_the_node_or_says_why_not() {
        let (m, _, _) = mapper();
        let l = m
            .locate(&[
                mac("52:54:00:00:01:01"),
                mac("52:54:00:00:01:02"),
                mac("52:54:00:00:01:03"),
                mac("52:54:00:00:01:04"),
                mac("52:54:00:00:09:09"),
            ])
            .await;
        let [a, b, c, d, e] = l.macs.as_slice() else {
            panic!()
        };
        // Seen on sw1 Gi1/0/1 (n1) and on sw2's uplink: the access port wins.
        assert_eq!(a.node(), Some("n1"));
        assert_eq!(a.seen.len(), 2);
        assert_eq!(a.port().unwrap().port, "Gi1/0/1");
        assert_eq!(
            a.to_string(),
            "MAC 52:54:00:00:01:01 is node n1 (sw1 port Gi1/0/1)"
        );
        assert_eq!(b.node(), Some("n2"));
        assert_eq!(
            c.verdict,
            Verdict::Ambiguous(vec!["n3".into(), "n3b".into()])
        );
        assert_eq!(d.verdict, Verdict::NoNode);
        assert_eq!(
            d.to_string(),
            "MAC 52:54:00:00:01:04 seen on sw1 port Gi1/0/4; no node has switch sw1 port Gi1/0/4"
        );
        assert_eq!(e.verdict, Verdict::NotSeen);
        assert_eq!(
            e.to_string(),
            "MAC 52:54:00:00:09:09 not seen on any switch (polled sw1, sw2; sw3 failed: no SNMP answer from 10.0.0.3:161)"
        );
        // Only cabled switches are polled for discovery.
        assert!(l.switches.iter().all(|r| r.switch != "spare"));
        assert_eq!(l.node(), None);
    }

    #[tokio::test]
    async fn polls_at_most_every_20s_and_answers_from_cache() {
        let (m, polls, clock) = mapper();
        let n1 = [mac("52:54:00:00:01:01")];
        let unknown = [mac("52:54:00:00:09:09")];
        assert_eq!(m.locate(&n1).await.node(), Some("n1"));
        assert_eq!(take(&polls), ["sw1", "sw2", "sw3"]);
        // A known MAC is answered from the cache, without polling, for 5 minutes.
        clock.advance(Duration::from_secs(100));
        assert_eq!(m.locate(&n1).await.node(), Some("n1"));
        assert!(take(&polls).is_empty());
        // An unknown MAC polls, but only switches last polled ≥ 20 s ago.
        assert_eq!(m.locate(&unknown).await.macs[0].verdict, Verdict::NotSeen);
        assert_eq!(take(&polls), ["sw1", "sw2", "sw3"]);
        clock.advance(Duration::from_secs(19));
        m.locate(&unknown).await;
        assert!(take(&polls).is_empty(), "re-polled within 20 s");
        clock.advance(Duration::from_secs(1));
        m.locate(&unknown).await;
        assert_eq!(take(&polls), ["sw1", "sw2", "sw3"]);
        // probe follows the same 20 s rule, per switch.
        clock.advance(Duration::from_secs(5));
        let r = m.probe(&["sw1".into()]).await;
        assert_eq!(r.len(), 1);
        assert!(take(&polls).is_empty());
        clock.advance(Duration::from_secs(15));
        m.probe(&["sw1".into()]).await;
        assert_eq!(take(&polls), ["sw1"]);
        // After 5 minutes the cache no longer answers even known MACs.
        clock.advance(Duration::from_secs(301));
        m.locate(&n1).await;
        assert_eq!(take(&polls), ["sw1", "sw2", "sw3"]);
    }

    #[tokio::test]
    async fn probe_reports_every_switch_and_unknown_names() {
        let (m, polls, _) = mapper();
        let r = m.probe(&[]).await;
        let names: Vec<&str> = r.iter().map(|r| r.switch.as_str()).collect();
        assert_eq!(names, ["spare", "sw1", "sw2", "sw3"]);
        assert!(r[1].result.is_ok() && r[3].result.is_err());
        assert_eq!(take(&polls).len(), 4);
        let r = m.probe(&["nosuch".into(), "sw1".into()]).await;
        assert!(r[0]
            .result
            .as_ref()
            .unwrap_err()
            .contains("No switch configuration"));
        assert!(r[1].result.is_ok());
    }

    #[tokio::test]
    async fn reconfigure_drops_changed_switches_only() {
        let (m, polls, clock) = mapper();
        m.probe(&[]).await;
        take(&polls);
        let mut c = config();
        c.switches[1].host = "10.9.9.9".into();
        m.reconfigure(c);
        clock.advance(Duration::from_secs(1));
        m.probe(&[]).await;
        assert_eq!(take(&polls), ["sw2"]);
    }

    #[test]
    fn nodes_on_uses_namesmatch() {
        let c = config();
        assert_eq!(c.nodes_on("sw1", "Gi1/0/1"), ["n1"]);
        assert_eq!(c.nodes_on("sw1", "Gi1/0/2"), ["n2"]);
        assert!(c.nodes_on("sw1", "Gi1/0/12").is_empty());
        assert!(c.nodes_on("sw9", "Gi1/0/1").is_empty());
    }
}
