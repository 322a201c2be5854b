//! Which node an unknown machine is, and what is written when we know (reference §6).
//!
//! Methods, first success wins: a MAC already in the `mac` table (`known`); the switch port any of
//! its MACs is seen on (`switch`, through a [`PortLocator`]); a unique `vpd` MTM+serial (`mtms`);
//! the next free node while sequential discovery runs (`sequential`, `site.__SEQDiscover`). A
//! machine none of them places is `undef`, with the reason in plain words.
//!
//! [`record`] writes everything learnt in one transaction: discoverydata, mac, vpd, hosts (and the
//! BMC address for sequential discovery), ipmi.bmc, nodetype.arch, noderes.netboot, the node's
//! status, and a fresh start of its chain (currstate/currchain cleared) so genesis's next
//! getdestiny runs it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use super::report::{norm_mac, Report};
use crate::store::resolver::Resolver;
use crate::store::{Audit, Store, StoreError};

/// Where a MAC was seen on a switch, and whose port that is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortHit {
    pub mac: String,
    pub switch: String,
    pub port: String,
    /// The node whose `switch` row names this switch and port.
    pub node: Option<String>,
}

/// Finds MACs on switch ports (SNMP in the daemon; a table in tests).
pub trait PortLocator {
    /// Hits for the MACs, and notes on switches that could not be asked.
    fn locate(&self, macs: &[String]) -> (Vec<PortHit>, Vec<String>);
}

/// No switches to ask.
pub struct NoSwitches;

impl PortLocator for NoSwitches {
    fn locate(&self, _: &[String]) -> (Vec<PortHit>, Vec<String>) {
        (Vec::new(), Vec::new())
    }
}

/// Sequential discovery's settings (`nodediscoverstart noderange=… hostiprange=… …`), kept in
/// `site.__SEQDiscover` as xCAT keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqParams {
    pub noderange: String,
    pub hostiprange: Option<String>,
    pub bmciprange: Option<String>,
    pub osimage: Option<String>,
    pub groups: Option<String>,
}

pub const SEQ_KEY: &str = "__SEQDiscover";

impl SeqParams {
    pub fn parse(args: &[String]) -> Result<SeqParams, String> {
        let mut p = SeqParams::default();
        for a in args.iter().flat_map(|a| split_params(a)) {
            let (k, v) = a
                .split_once('=')
                .ok_or_else(|| format!("'{a}' is not key=value"))?;
            let v = v.trim().to_string();
            match k.trim() {
                "noderange" => p.noderange = v,
                "hostiprange" => p.hostiprange = Some(v),
                "bmciprange" => p.bmciprange = Some(v),
                "osimage" => p.osimage = Some(v),
                "groups" => p.groups = Some(v),
                other => return Err(format!("'{other}' is not a nodediscoverstart parameter (noderange, hostiprange, bmciprange, osimage, groups)")),
            }
        }
        if p.noderange.is_empty() {
            return Err("sequential discovery needs noderange=<nodes>".into());
        }
        for r in [&p.hostiprange, &p.bmciprange].into_iter().flatten() {
            ip_range(r)?;
        }
        Ok(p)
    }

    pub fn to_site(&self) -> String {
        let mut v = vec![format!("noderange={}", self.noderange)];
        for (k, x) in [
            ("hostiprange", &self.hostiprange),
            ("bmciprange", &self.bmciprange),
            ("osimage", &self.osimage),
            ("groups", &self.groups),
        ] {
            if let Some(x) = x {
                v.push(format!("{k}={x}"));
            }
        }
        v.join(",")
    }

    pub fn from_site(s: &str) -> Option<SeqParams> {
        SeqParams::parse(&[s.to_string()]).ok()
    }
}

/// `a=1,b=x[1-3],c=2` → the pairs, keeping commas inside a value that has no `=` after them
/// (`noderange=cn1,cn2` stays whole).
fn split_params(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in s.split(',') {
        match out.last_mut() {
            Some(last) if !piece.contains('=') => {
                last.push(',');
                last.push_str(piece);
            }
            _ => out.push(piece.to_string()),
        }
    }
    out.into_iter().filter(|p| !p.is_empty()).collect()
}

/// `10.0.0.10-10.0.0.20`, `10.0.0.[10-20]` or `10.0.0.0/24` (host addresses) → the addresses.
pub fn ip_range(s: &str) -> Result<Vec<Ipv4Addr>, String> {
    let bad = || format!("'{s}' is not an IP range (a.b.c.d-e.f.g.h, a.b.c.[x-y] or a.b.c.d/n)");
    let (lo, hi): (u32, u32) = if let Some((a, b)) = s.split_once('[') {
        let (x, y) = b
            .strip_suffix(']')
            .and_then(|b| b.split_once('-'))
            .ok_or_else(bad)?;
        let lo: Ipv4Addr = format!("{a}{x}").parse().map_err(|_| bad())?;
        let hi: Ipv4Addr = format!("{a}{y}").parse().map_err(|_| bad())?;
        (lo.into(), hi.into())
    } else if let Some((a, b)) = s.split_once('-') {
        let lo: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
        let hi: Ipv4Addr = b.trim().parse().map_err(|_| bad())?;
        (lo.into(), hi.into())
    } else if let Some((a, n)) = s.split_once('/') {
        let net: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
        let bits: u32 = n.trim().parse().map_err(|_| bad())?;
        if !(8..=30).contains(&bits) {
            return Err(bad());
        }
        let mask = u32::MAX << (32 - bits);
        let base = u32::from(net) & mask;
        (base + 1, (base | !mask) - 1)
    } else {
        let one: Ipv4Addr = s.trim().parse().map_err(|_| bad())?;
        (one.into(), one.into())
    };
    if hi < lo || hi - lo > 65536 {
        return Err(bad());
    }
    Ok((lo..=hi).map(Ipv4Addr::from).collect())
}

/// Natural order: cn2 before cn10.
fn natural_key(s: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            if !num.is_empty() {
                out.push((std::mem::take(&mut text), num.parse().unwrap_or(u64::MAX)));
                num.clear();
            }
            text.push(c);
        }
    }
    out.push((text, num.parse().unwrap_or(0)));
    out
}

/// How a machine was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Known,
    Switch,
    Mtms,
    Sequential,
    /// `nodediscoverdef -u <uuid> -n <node>`.
    Manual,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Known => "known",
            Method::Switch => "switch",
            Method::Mtms => "mtms",
            Method::Sequential => "sequential",
            Method::Manual => "manual",
        }
    }
}

/// What discovery decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Matched {
        node: String,
        method: Method,
        /// Sequential discovery's new addresses for the node and its BMC.
        host_ip: Option<Ipv4Addr>,
        bmc_ip: Option<Ipv4Addr>,
        seq: Option<SeqParams>,
        hit: Option<PortHit>,
    },
    Undefined {
        reason: String,
        hit: Option<PortHit>,
    },
}

/// MAC → node, from the `mac` table (`mac!name` and `|`-separated lists).
fn known_macs(r: &Resolver) -> Result<BTreeMap<String, String>, StoreError> {
    let t = r.table("mac")?;
    let (nc, mc) = (t.spec.col_index("node"), t.spec.col_index("mac"));
    let mut m = BTreeMap::new();
    for row in &t.rows {
        let cell = |i: Option<usize>| i.and_then(|i| row.get(i)).cloned().flatten();
        let (Some(node), Some(macs)) = (cell(nc), cell(mc)) else {
            continue;
        };
        for e in macs.split('|') {
            if let Some(mac) = norm_mac(e.split('!').next().unwrap_or("").trim()) {
                m.insert(mac, node.clone());
            }
        }
    }
    Ok(m)
}

/// Decides which node `rep` is.
pub fn decide(r: &Resolver, rep: &Report, ports: &dyn PortLocator) -> Result<Outcome, StoreError> {
    let macs: Vec<String> = rep.nics.iter().map(|n| n.mac.clone()).collect();
    let known = known_macs(r)?;
    let nodes = r.membership()?.nodes.clone();
    if let Some(node) = macs.iter().find_map(|m| known.get(m)) {
        if nodes.contains(node) {
            return Ok(Outcome::Matched {
                node: node.clone(),
                method: Method::Known,
                host_ip: None,
                bmc_ip: None,
                seq: None,
                hit: None,
            });
        }
    }
    let (hits, notes) = ports.locate(&macs);
    if let Some(h) = hits.iter().find(|h| h.node.is_some()) {
        if let Some(node) = &h.node {
            return Ok(Outcome::Matched {
                node: node.clone(),
                method: Method::Switch,
                host_ip: None,
                bmc_ip: None,
                seq: None,
                hit: Some(h.clone()),
            });
        }
    }
    if !rep.mtm.is_empty() && !rep.serial.is_empty() {
        let vpd = r.table("vpd")?;
        let (nc, mc, sc) = (
            vpd.spec.col_index("node"),
            vpd.spec.col_index("mtm"),
            vpd.spec.col_index("serial"),
        );
        let found: Vec<String> = vpd
            .rows
            .iter()
            .filter(|row| {
                let cell = |i: Option<usize>| {
                    i.and_then(|i| row.get(i))
                        .cloned()
                        .flatten()
                        .unwrap_or_default()
                };
                cell(mc).eq_ignore_ascii_case(&rep.mtm)
                    && cell(sc).eq_ignore_ascii_case(&rep.serial)
            })
            .filter_map(|row| nc.and_then(|i| row.get(i)).cloned().flatten())
            .filter(|n| nodes.contains(n))
            .collect();
        if found.len() == 1 {
            return Ok(Outcome::Matched {
                node: found[0].clone(),
                method: Method::Mtms,
                host_ip: None,
                bmc_ip: None,
                seq: None,
                hit: hits.first().cloned(),
            });
        }
    }
    if let Some(seq) = r.site(SEQ_KEY)?.as_deref().and_then(SeqParams::from_site) {
        let mut candidates = r.noderange(&seq.noderange, false)?.nodes;
        candidates.sort_by_key(|n| natural_key(n));
        let taken: std::collections::BTreeSet<&String> = known.values().collect();
        if let Some(node) = candidates.into_iter().find(|n| !taken.contains(n)) {
            let used = used_ips(r)?;
            let has_ip = r.attr(&node, "hosts", "ip")?.is_some_and(|s| !s.is_empty());
            let host_ip = match (&seq.hostiprange, has_ip) {
                (Some(range), false) => Some(free_ip(range, &used).ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "sequential discovery: no free address left in hostiprange {range}"
                    ))
                })?),
                _ => None,
            };
            let bmc_ip = match &seq.bmciprange {
                Some(range) => {
                    let mut used = used;
                    used.extend(host_ip);
                    Some(free_ip(range, &used).ok_or_else(|| {
                        StoreError::Invalid(format!(
                            "sequential discovery: no free address left in bmciprange {range}"
                        ))
                    })?)
                }
                None => None,
            };
            return Ok(Outcome::Matched {
                node,
                method: Method::Sequential,
                host_ip,
                bmc_ip,
                seq: Some(seq),
                hit: hits.first().cloned(),
            });
        }
    }
    let mac_list = macs.join(", ");
    let mut reason = match hits.first() {
        Some(h) => format!(
            "MAC {} seen on {} port {}; no node has switch {} port {}",
            h.mac, h.switch, h.port, h.switch, h.port
        ),
        None => format!("MAC {mac_list} not seen on any switch port known to the switch table"),
    };
    if !rep.mtm.is_empty() && !rep.serial.is_empty() {
        reason.push_str(&format!(
            "; no single node has vpd mtm {} serial {}",
            rep.mtm, rep.serial
        ));
    }
    if !notes.is_empty() {
        reason.push_str(&format!(" ({})", notes.join("; ")));
    }
    Ok(Outcome::Undefined {
        reason,
        hit: hits.first().cloned(),
    })
}

/// Places a machine: decides and records under one lock, so machines reporting at the same time
/// cannot be given the same free node or address (decide reads, record writes; SQLite alone would
/// not stop two deciders from reading the same state). Reads a fresh view of the tables: the admin
/// may have started sequential discovery or defined nodes a moment ago.
///
/// `peer` is the address the report came from. With `site.findmetrust=strict` a report naming a
/// known node's MAC is believed only from that node's own address or from the address this
/// appliance's DHCP leased to that MAC (see [`strict_check`]).
pub fn place(
    store: &Arc<Store>,
    rep: &Report,
    ports: &dyn PortLocator,
    peer: Option<IpAddr>,
) -> Result<Outcome, StoreError> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let fresh = Resolver::new(store.clone());
    let mut outcome = decide(&fresh, rep, ports)?;
    if let (
        Some(peer),
        Outcome::Matched {
            node,
            method: Method::Known,
            ..
        },
    ) = (peer, &outcome)
    {
        if Trust::read(&fresh)? == Trust::Strict {
            if let Some(reason) = strict_check(&fresh, rep, node, peer)? {
                outcome = Outcome::Undefined { reason, hit: None };
            }
        }
    }
    record(store, &fresh, rep, &outcome)?;
    Ok(outcome)
}

/// How far an unauthenticated findme is believed (`site.findmetrust`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// xCAT's behaviour (the default): a report naming a known node's MAC is that node, from
    /// wherever it comes.
    Xcat,
    /// A report naming a known node's MAC is believed only from the node's own address
    /// (`hosts.ip`) or from the address this appliance's DHCP service leased to that MAC.
    Strict,
}

impl Trust {
    pub fn read(r: &Resolver) -> Result<Trust, StoreError> {
        Ok(match r.site("findmetrust")?.as_deref().map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("strict") => Trust::Strict,
            Some(v) if !v.is_empty() && !v.eq_ignore_ascii_case("xcat") => {
                tracing::warn!(
                    "site.findmetrust '{v}' is neither 'xcat' nor 'strict'; using 'strict'"
                );
                Trust::Strict
            }
            _ => Trust::Xcat,
        })
    }
}

/// For [`Trust::Strict`]: why a report from `peer` that names `node`'s MAC is not believed
/// (`None`: it is).
pub fn strict_check(
    r: &Resolver,
    rep: &Report,
    node: &str,
    peer: IpAddr,
) -> Result<Option<String>, StoreError> {
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    if peer.is_loopback() {
        return Ok(None);
    }
    if r.attr(node, "hosts", "ip")?
        .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
        == Some(peer)
    {
        return Ok(None);
    }
    let macs: Vec<&str> = rep.nics.iter().map(|n| n.mac.as_str()).collect();
    let leases = r.table("dhcpleases")?;
    let col = |row: &crate::store::Row, c: &str| {
        leases
            .spec
            .col_index(c)
            .and_then(|i| row.get(i).cloned().flatten())
            .unwrap_or_default()
    };
    let leased = leases.rows.iter().any(|row| {
        col(row, "ip").parse::<IpAddr>().ok() == Some(peer)
            && col(row, "state") == "active"
            && norm_mac(&col(row, "mac")).is_some_and(|m| macs.contains(&m.as_str()))
    });
    if leased {
        return Ok(None);
    }
    Ok(Some(format!(
        "the report names {node}'s MAC but comes from {peer}, which is neither {node}'s address nor leased to that MAC (site.findmetrust=strict)"
    )))
}

/// Undefined machines kept in `discoverydata` at most (`site.discoverymaxundef`); the oldest
/// are dropped first.
pub const MAX_UNDEFINED: usize = 1000;

/// `MM-DD-YYYY HH:MM:SS` as a key that sorts by time.
fn time_key(t: &str) -> String {
    let (date, time) = t.split_once(' ').unwrap_or((t, ""));
    let d: Vec<&str> = date.split('-').collect();
    match d.as_slice() {
        [m, dd, y] => format!("{y:0>4}{m:0>2}{dd:0>2} {time}"),
        _ => t.to_string(),
    }
}

/// Addresses already given: hosts.ip and the addresses in hosts.otherinterfaces.
fn used_ips(r: &Resolver) -> Result<Vec<Ipv4Addr>, StoreError> {
    let t = r.table("hosts")?;
    let (ic, oc) = (t.spec.col_index("ip"), t.spec.col_index("otherinterfaces"));
    let mut v = Vec::new();
    for row in &t.rows {
        if let Some(ip) = ic
            .and_then(|i| row.get(i))
            .cloned()
            .flatten()
            .and_then(|s| s.trim().parse().ok())
        {
            v.push(ip);
        }
        if let Some(o) = oc.and_then(|i| row.get(i)).cloned().flatten() {
            for part in o.split(',') {
                if let Some(ip) = part.rsplit(':').next().and_then(|s| s.trim().parse().ok()) {
                    v.push(ip);
                }
            }
        }
    }
    Ok(v)
}

fn free_ip(range: &str, used: &[Ipv4Addr]) -> Option<Ipv4Addr> {
    ip_range(range)
        .ok()?
        .into_iter()
        .find(|ip| !used.contains(ip))
}

/// Keeps `discoverydata` bounded: a node has one machine (rows of other UUIDs placed as the same
/// node go), and at most `max_undefined` undefined machines are kept, the oldest dropped first.
/// A flood of findme reports with random UUIDs adds nothing beyond that.
fn bound_discoverydata(
    tx: &mut crate::store::Txn<'_>,
    uuid: &str,
    node: Option<&str>,
    max_undefined: usize,
) -> Result<(), StoreError> {
    let spec = crate::store::table_spec("discoverydata")?;
    let idx = |c: &str| spec.col_index(c);
    let (uc, nc, tc) = (idx("uuid"), idx("node"), idx("discoverytime"));
    let cell = |row: &crate::store::Row, i: Option<usize>| {
        i.and_then(|i| row.get(i).cloned().flatten())
            .unwrap_or_default()
    };
    let rows = tx.rows("discoverydata")?;
    match node {
        Some(n) => {
            for row in &rows {
                let u = cell(row, uc);
                if cell(row, nc) == n && u != uuid {
                    tx.delete("discoverydata", &[&u])?;
                }
            }
        }
        None => {
            let mut undef: Vec<(String, String)> = rows
                .iter()
                .filter(|row| cell(row, nc).is_empty())
                .map(|row| (time_key(&cell(row, tc)), cell(row, uc)))
                .collect();
            if undef.len() > max_undefined {
                undef.sort();
                let extra = undef.len() - max_undefined;
                for (_, u) in undef.into_iter().filter(|(_, u)| u != uuid).take(extra) {
                    tx.delete("discoverydata", &[&u])?;
                }
            }
        }
    }
    Ok(())
}

fn now_text() -> String {
    crate::store::now_xcat()
}

/// Writes what discovery learnt about `node` in one transaction (see the module doc).
pub fn record(
    store: &Store,
    r: &Resolver,
    rep: &Report,
    outcome: &Outcome,
) -> Result<(), StoreError> {
    let now = now_text();
    let audit = Audit {
        command: "findme".into(),
        noderange: match outcome {
            Outcome::Matched { node, .. } => node.clone(),
            Outcome::Undefined { .. } => String::new(),
        },
        args: format!("uuid={}", rep.uuid),
    };
    let nicdriver: Vec<String> = rep
        .nics
        .iter()
        .filter(|n| !n.driver.is_empty())
        .map(|n| format!("{}!{}", n.ifname, n.driver))
        .collect();
    let nicipv4: Vec<String> = rep
        .nics
        .iter()
        .filter_map(|n| n.ip.as_ref().map(|ip| format!("{}!{}", n.ifname, ip)))
        .collect();
    let nichw: Vec<String> = rep
        .nics
        .iter()
        .map(|n| format!("{}!{}", n.ifname, n.mac))
        .collect();
    let (node, method, hit) = match outcome {
        Outcome::Matched {
            node, method, hit, ..
        } => (Some(node.clone()), method.as_str(), hit.clone()),
        Outcome::Undefined { hit, .. } => (None, "undef", hit.clone()),
    };
    // A machine reporting again (genesis resends until it hears back) keeps the method that
    // first placed it.
    let method: String = if method == "known" {
        let t = r.table("discoverydata")?;
        let before: Option<String> = t
            .rows_for(&rep.uuid)
            .find_map(|row| {
                t.spec
                    .col_index("method")
                    .and_then(|i| row.get(i))
                    .cloned()
                    .flatten()
            })
            .filter(|m| !m.is_empty() && m != "undef");
        before.unwrap_or_else(|| method.to_string())
    } else {
        method.to_string()
    };
    let other = match outcome {
        Outcome::Undefined { reason, .. } => Some(reason.clone()),
        _ => None,
    };
    let max_undefined = r
        .site("discoverymaxundef")?
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(MAX_UNDEFINED);
    // Existing values are read before the transaction (the resolver reads committed data).
    let (netboot_now, mac_now, groups_now, other_if) = match &node {
        Some(n) => (
            r.attr(n, "noderes", "netboot")?,
            r.attr(n, "mac", "mac")?,
            r.membership()?.node_groups.get(n).cloned(),
            r.attr(n, "hosts", "otherinterfaces")?,
        ),
        None => (None, None, None, None),
    };
    // An undefined machine changes no node: it is not audited (a flood of findme reports with
    // random UUIDs would otherwise grow `auditlog` without bound; `discoverydata` keeps it).
    let audited = matches!(outcome, Outcome::Matched { .. }).then_some(&audit);
    store.write(audited, |tx| {
        let ddata: Vec<(&str, Option<&str>)> = vec![
            ("node", node.as_deref()),
            ("method", Some(&method[..])),
            ("discoverytime", Some(&now)),
            ("arch", Some(&rep.arch)),
            ("cpucount", Some(&rep.cpucount)),
            ("cputype", Some(&rep.cputype)),
            ("memory", Some(&rep.memory)),
            ("mtm", Some(&rep.mtm)),
            ("serial", Some(&rep.serial)),
        ];
        let nd = nicdriver.join(",");
        let ni = nicipv4.join(",");
        let nh = nichw.join(",");
        let mut ddata = ddata;
        ddata.push(("nicdriver", Some(&nd)));
        ddata.push(("nicipv4", Some(&ni)));
        ddata.push(("nichwaddr", Some(&nh)));
        ddata.push(("switchname", hit.as_ref().map(|h| h.switch.as_str())));
        ddata.push(("switchport", hit.as_ref().map(|h| h.port.as_str())));
        ddata.push(("otherdata", other.as_deref()));
        tx.set("discoverydata", &[&rep.uuid], &ddata)?;
        bound_discoverydata(tx, &rep.uuid, node.as_deref(), max_undefined)?;
        let Outcome::Matched {
            node,
            method,
            host_ip,
            bmc_ip,
            seq,
            ..
        } = outcome
        else {
            return Ok(());
        };
        let n = node.as_str();
        if *method == Method::Sequential {
            let groups = seq
                .as_ref()
                .and_then(|s| s.groups.clone())
                .or_else(|| groups_now.as_ref().map(|g| g.join(",")))
                .filter(|g| !g.is_empty())
                .unwrap_or_else(|| "all".into());
            tx.set("nodelist", &[n], &[("groups", Some(&groups))])?;
        }
        // The NIC that booted is the install NIC; the others are recorded without an address.
        if *method != Method::Known || mac_now.as_deref().unwrap_or("").is_empty() {
            let boot = rep.boot_nic().map(|b| b.mac.clone()).unwrap_or_default();
            let mut entries = vec![boot.clone()];
            entries.extend(
                rep.nics
                    .iter()
                    .filter(|x| x.mac != boot)
                    .map(|x| format!("{}!*NOIP*", x.mac)),
            );
            tx.set("mac", &[n], &[("mac", Some(&entries.join("|")))])?;
        }
        // xCAT's discovery runs makedhcp for the node: a host entry `makedhcp -d` removed is back.
        tx.delete("dhcpexcluded", &[n])?;
        tx.set(
            "vpd",
            &[n],
            &[
                (
                    "serial",
                    Some(rep.serial.as_str()).filter(|s| !s.is_empty()),
                ),
                ("mtm", Some(rep.mtm.as_str()).filter(|s| !s.is_empty())),
                ("uuid", Some(rep.uuid.as_str())),
            ],
        )?;
        if let Some(ip) = host_ip {
            tx.set("hosts", &[n], &[("ip", Some(&ip.to_string()))])?;
        }
        if let Some(ip) = bmc_ip {
            let bmcname = format!("{n}-bmc");
            let entry = format!("{bmcname}:{ip}");
            let oi = match other_if.as_deref().filter(|s| !s.is_empty()) {
                Some(o) if !o.contains(&format!("{bmcname}:")) => format!("{o},{entry}"),
                Some(o) => o.to_string(),
                None => entry,
            };
            tx.set("hosts", &[n], &[("otherinterfaces", Some(&oi))])?;
            tx.set("ipmi", &[n], &[("bmc", Some(&ip.to_string()))])?;
        } else if !rep.bmc.is_empty() {
            tx.set("ipmi", &[n], &[("bmc", Some(&rep.bmc))])?;
        }
        if !rep.arch.is_empty() {
            tx.set("nodetype", &[n], &[("arch", Some(&rep.arch))])?;
        }
        if netboot_now.as_deref().unwrap_or("").is_empty() {
            let nb = match rep.arch.as_str() {
                "ppc64" | "ppc64le" => "petitboot",
                "aarch64" => "grub2",
                _ => "xnba",
            };
            tx.set("noderes", &[n], &[("netboot", Some(nb))])?;
        }
        if let Some(seq) = seq {
            let mut chain = Vec::new();
            if seq.bmciprange.is_some() {
                chain.push("runcmd=bmcsetup".to_string());
            }
            if let Some(img) = &seq.osimage {
                chain.push(format!("osimage={img}"));
            }
            if !chain.is_empty() {
                tx.set("chain", &[n], &[("chain", Some(&chain.join(",")))])?;
            }
        }
        // Genesis's next getdestiny starts the chain from its first step.
        tx.set("chain", &[n], &[("currstate", None), ("currchain", None)])?;
        tx.set(
            "nodelist",
            &[n],
            &[("status", Some("discovered")), ("statustime", Some(&now))],
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_ranges() {
        assert_eq!(ip_range("10.0.0.10-10.0.0.12").expect("r").len(), 3);
        assert_eq!(
            ip_range("10.0.0.[5-6]").expect("r"),
            vec![Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(10, 0, 0, 6)]
        );
        assert_eq!(ip_range("10.0.0.0/30").expect("r").len(), 2);
        assert!(ip_range("10.0.0.9-10.0.0.1").is_err());
        assert!(ip_range("nonsense").is_err());
    }

    #[test]
    fn seq_params_round_trip() {
        let p = SeqParams::parse(&[
            "noderange=cn1,cn2".into(),
            "hostiprange=10.0.0.[10-20]".into(),
            "osimage=img".into(),
        ])
        .expect("p");
        assert_eq!(p.noderange, "cn1,cn2");
        assert_eq!(SeqParams::from_site(&p.to_site()), Some(p));
        assert!(SeqParams::parse(&["hostiprange=1.2.3.4".into()]).is_err());
        assert!(
            SeqParams::parse(&["noderange=a".into(), "colour=red".into()])
                .unwrap_err()
                .contains("colour")
        );
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["cn10", "cn2", "cn1"];
        v.sort_by_key(|n| natural_key(n));
        assert_eq!(v, vec!["cn1", "cn2", "cn10"]);
    }
}
