//! The walked tables of one switch → its ports and the MACs learned on each. Pure: no I/O, so it
//! is unit-tested and fuzzed; [`super::snmp`] fills a [`SwitchWalk`] from the wire.
//!
//! The chain, as xCAT's `MacMap.pm` follows it:
//!
//! - **forwarding database**: `dot1qTpFdbPort` (Q-BRIDGE-MIB, index `<fdbId>.<m1>…<m6>`), or on
//!   switches without Q-BRIDGE `dot1dTpFdbPort` (BRIDGE-MIB, index `<m1>…<m6>`). Either way the MAC
//!   is the index's last six sub-identifiers and the value is a **bridge port** number;
//! - **`dot1dBasePortIfIndex`** maps bridge port → ifIndex. Bridge ports and ifIndexes are
//!   different numbers on most switches (port 7 may be ifIndex 10107). Some switches report
//!   ifIndexes in the FDB directly; when no FDB port is a known bridge port the bridge ports are
//!   taken to be ifIndexes, as xCAT does;
//! - **ifName** (else **ifDescr**) maps ifIndex → the port's name, which [`super::portname`]
//!   compares with `switch.port`.
//!
//! Entries whose `dot1qTpFdbStatus` is `self` (4) are the switch's own addresses and are left out
//! (xCAT's switchprobe does the same).

use std::collections::{BTreeMap, HashMap};

use super::MacAddr;

/// One walked value, reduced to what mapping needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// INTEGER, Counter, Gauge, TimeTicks.
    Int(i64),
    /// OCTET STRING (names are octet strings).
    Bytes(Vec<u8>),
    /// Anything else (OIDs, addresses, NULL): ignored.
    Other,
}

/// One row of a walked column: the sub-identifiers after the column's OID, and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub index: Vec<u32>,
    pub value: Cell,
}

impl Row {
    pub fn int(index: &[u32], v: i64) -> Row {
        Row {
            index: index.to_vec(),
            value: Cell::Int(v),
        }
    }

    pub fn text(index: &[u32], v: &str) -> Row {
        Row {
            index: index.to_vec(),
            value: Cell::Bytes(v.as_bytes().to_vec()),
        }
    }
}

/// The columns walked on one switch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwitchWalk {
    /// ifName, or ifDescr when the switch has no usable ifName (index: ifIndex).
    pub names: Vec<Row>,
    /// ifMtu (index: ifIndex); may be empty.
    pub mtu: Vec<Row>,
    /// dot1dBasePortIfIndex (index: bridge port; value: ifIndex).
    pub base_port_ifindex: Vec<Row>,
    /// dot1qTpFdbPort when `qbridge`, else dot1dTpFdbPort (value: bridge port).
    pub fdb: Vec<Row>,
    /// dot1qTpFdbStatus (same index as `fdb` when `qbridge`); may be empty.
    pub fdb_status: Vec<Row>,
    /// Whether `fdb` came from Q-BRIDGE-MIB (its index starts with the FDB id, xCAT's "VLAN").
    pub qbridge: bool,
}

/// One MAC learned on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learned {
    pub mac: MacAddr,
    /// The Q-BRIDGE FDB id (the VLAN on most switches); `None` from BRIDGE-MIB.
    pub vlan: Option<u32>,
}

/// One switch port and what it learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// The name the switch reports (ifName or ifDescr).
    pub name: String,
    pub ifindex: u32,
    /// ifMtu, when the switch gave it.
    pub mtu: Option<i64>,
    pub macs: Vec<Learned>,
}

/// What one switch knows: its bridge ports by name, in xCAT's order, and a MAC index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwitchTable {
    pub ports: Vec<Port>,
    /// Whether the forwarding database came from Q-BRIDGE-MIB.
    pub qbridge: bool,
    by_mac: HashMap<MacAddr, Vec<(u32, Option<u32>)>>,
}

impl SwitchTable {
    /// Every port `mac` was learned on (a MAC seen in two VLANs may be on two ports), with its VLAN.
    pub fn find(&self, mac: &MacAddr) -> impl Iterator<Item = (&Port, Option<u32>)> {
        self.by_mac
            .get(mac)
            .into_iter()
            .flatten()
            .filter_map(|(i, vlan)| self.ports.get(*i as usize).map(|p| (p, *vlan)))
    }

    /// How many (port, MAC) entries the table holds.
    pub fn mac_count(&self) -> usize {
        self.ports.iter().map(|p| p.macs.len()).sum()
    }
}

/// Why a switch's tables could not be mapped (xCAT's wording where it has one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FdbError {
    #[error("no interface names (ifName and ifDescr are both empty)")]
    NoNames,
    #[error(
        "Failed to get a valid response to BRIDGE-MIB request (dot1dBasePortIfIndex is empty)"
    )]
    NoBridgePorts,
    #[error("Unable to get MAC entries via either BRIDGE or Q-BRIDGE MIB")]
    NoFdb,
}

/// dot1qTpFdbStatus `self`: the switch's own address.
const STATUS_SELF: i64 = 4;

fn as_u32(c: &Cell) -> Option<u32> {
    match c {
        Cell::Int(v) => u32::try_from(*v).ok(),
        _ => None,
    }
}

/// Whether the walked names carry any text (xCAT falls back to ifDescr when ifName is all
/// empty, as on some Nortel switches).
pub fn names_usable(names: &[Row]) -> bool {
    names
        .iter()
        .any(|r| matches!(&r.value, Cell::Bytes(b) if b.iter().any(|c| *c != 0 && !c.is_ascii_whitespace())))
}

/// The name in an ifName/ifDescr cell: bytes as text, trailing NULs (some agents pad) removed.
fn name_of(c: &Cell) -> Option<String> {
    match c {
        Cell::Bytes(b) => {
            let s = String::from_utf8_lossy(b);
            let s = s.trim_end_matches('\0').trim();
            (!s.is_empty()).then(|| s.to_string())
        }
        _ => None,
    }
}

/// xCAT's switchprobe order: by the name's non-numeric stem, then by its trailing number.
fn port_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn split(s: &str) -> (&str, Option<u64>) {
        let stem = s.trim_end_matches(|c: char| c.is_ascii_digit());
        (stem, s[stem.len()..].parse().ok())
    }
    let (sa, na) = split(a);
    let (sb, nb) = split(b);
    sa.cmp(sb).then(na.cmp(&nb)).then(a.cmp(b))
}

/// Maps the walked columns to ports and MACs.
pub fn decode(w: &SwitchWalk) -> Result<SwitchTable, FdbError> {
    let names: HashMap<u32, String> = w
        .names
        .iter()
        .filter_map(|r| match r.index.as_slice() {
            [ifindex] => name_of(&r.value).map(|n| (*ifindex, n)),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        return Err(FdbError::NoNames);
    }
    let mtu: HashMap<u32, i64> = w
        .mtu
        .iter()
        .filter_map(|r| match (r.index.as_slice(), &r.value) {
            ([ifindex], Cell::Int(v)) => Some((*ifindex, *v)),
            _ => None,
        })
        .collect();
    let mut bridge: BTreeMap<u32, u32> = w
        .base_port_ifindex
        .iter()
        .filter_map(|r| match r.index.as_slice() {
            [port] => as_u32(&r.value).map(|ifindex| (*port, ifindex)),
            _ => None,
        })
        .collect();
    if bridge.is_empty() {
        return Err(FdbError::NoBridgePorts);
    }
    let status: HashMap<&[u32], i64> = w
        .fdb_status
        .iter()
        .filter_map(|r| match r.value {
            Cell::Int(v) => Some((r.index.as_slice(), v)),
            _ => None,
        })
        .collect();
    // (bridge port, MAC, VLAN) in walk order.
    let mut entries: Vec<(u32, Learned)> = Vec::with_capacity(w.fdb.len());
    let mut any_fdb = false;
    for r in &w.fdb {
        let (Some(mac), Some(port)) = (MacAddr::from_index_tail(&r.index), as_u32(&r.value)) else {
            continue;
        };
        any_fdb = true;
        if w.qbridge && status.get(r.index.as_slice()) == Some(&STATUS_SELF) {
            continue;
        }
        let vlan = if w.qbridge && r.index.len() > 6 {
            r.index.first().copied()
        } else {
            None
        };
        entries.push((port, Learned { mac, vlan }));
    }
    if !any_fdb {
        return Err(FdbError::NoFdb);
    }
    if !entries.iter().any(|(p, _)| bridge.contains_key(p)) {
        // The switch numbers FDB ports by ifIndex: let every named interface be its own bridge port.
        bridge = names.keys().map(|i| (*i, *i)).collect();
    }
    // Ports by name: several bridge ports naming one interface are merged.
    let mut by_name: BTreeMap<&str, Port> = BTreeMap::new();
    let mut port_of_bridge: HashMap<u32, &str> = HashMap::new();
    for (bport, ifindex) in &bridge {
        let Some(name) = names.get(ifindex) else {
            continue;
        };
        by_name.entry(name.as_str()).or_insert_with(|| Port {
            name: name.clone(),
            ifindex: *ifindex,
            mtu: mtu.get(ifindex).copied(),
            macs: Vec::new(),
        });
        port_of_bridge.insert(*bport, name.as_str());
    }
    for (bport, learned) in entries {
        if let Some(p) = port_of_bridge.get(&bport).and_then(|n| by_name.get_mut(n)) {
            if !p.macs.contains(&learned) {
                p.macs.push(learned);
            }
        }
    }
    let mut ports: Vec<Port> = by_name.into_values().collect();
    ports.sort_by(|a, b| port_order(&a.name, &b.name));
    let mut by_mac: HashMap<MacAddr, Vec<(u32, Option<u32>)>> = HashMap::new();
    for (i, p) in ports.iter().enumerate() {
        for l in &p.macs {
            by_mac.entry(l.mac).or_default().push((i as u32, l.vlan));
        }
    }
    Ok(SwitchTable {
        ports,
        qbridge: w.qbridge,
        by_mac,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(s: &str) -> MacAddr {
        s.parse().unwrap()
    }

    fn idx(prefix: &[u32], m: &str) -> Vec<u32> {
        let mut v = prefix.to_vec();
        v.extend(mac(m).0.iter().map(|b| u32::from(*b)));
        v
    }

    /// Four access ports (bridge ports 1..4 = ifIndex 10101..10104) and an uplink (5 = 10105).
    fn walk(qbridge: bool) -> SwitchWalk {
        let mut w = SwitchWalk {
            qbridge,
            ..Default::default()
        };
        for p in 1..=5u32 {
            let name = if p == 5 {
                "Te1/0/49".to_string()
            } else {
                format!("Gi1/0/{p}")
            };
            w.names.push(Row::text(&[10100 + p], &name));
            w.mtu.push(Row::int(&[10100 + p], 1500));
            w.base_port_ifindex
                .push(Row::int(&[p], i64::from(10100 + p)));
        }
        // A VLAN interface has an ifIndex but no bridge port.
        w.names.push(Row::text(&[20010], "Vlan10"));
        let fdb = [
            ("52:54:00:00:00:01", 1),
            ("52:54:00:00:00:03", 3),
            ("52:54:00:00:00:33", 3),
            ("00:1b:21:00:00:01", 5),
            ("02:00:5e:00:00:01", 5),
        ];
        for (m, port) in fdb {
            let i = if qbridge { idx(&[10], m) } else { idx(&[], m) };
            w.fdb.push(Row::int(&i, port));
            if qbridge {
                let st = if m.starts_with("02:00:5e") { 4 } else { 3 };
                w.fdb_status.push(Row::int(&i, st));
            }
        }
        w
    }

    #[test]
    fn qbridge_maps_through_bridge_ports() {
        let t = decode(&walk(true)).unwrap();
        let names: Vec<&str> = t.ports.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["Gi1/0/1", "Gi1/0/2", "Gi1/0/3", "Gi1/0/4", "Te1/0/49"]
        );
        let (p, vlan) = t.find(&mac("52:54:00:00:00:03")).next().unwrap();
        assert_eq!(
            (p.name.as_str(), p.ifindex, p.mtu, vlan),
            ("Gi1/0/3", 10103, Some(1500), Some(10))
        );
        assert_eq!(t.ports[2].macs.len(), 2);
        assert!(t.ports[1].macs.is_empty());
        // The switch's own address (status self) is left out; the foreign MAC stays on the uplink.
        assert_eq!(t.find(&mac("02:00:5e:00:00:01")).count(), 0);
        assert_eq!(
            t.find(&mac("00:1b:21:00:00:01")).next().unwrap().0.name,
            "Te1/0/49"
        );
        assert_eq!(t.mac_count(), 4);
        assert!(t.qbridge);
    }

    #[test]
    fn bridge_only_has_no_vlan() {
        let t = decode(&walk(false)).unwrap();
        let (p, vlan) = t.find(&mac("52:54:00:00:00:01")).next().unwrap();
        assert_eq!((p.name.as_str(), vlan), ("Gi1/0/1", None));
        assert_eq!(t.mac_count(), 5);
    }

    #[test]
    fn skipping_the_bridge_port_map_would_be_wrong() {
        // Bridge port 1 is ifIndex 10101, not ifIndex 1: with an interface that *is* ifIndex 1,
        // the MAC must still land on Gi1/0/1.
        let mut w = walk(true);
        w.names.push(Row::text(&[1], "Gi9/0/9"));
        w.base_port_ifindex.push(Row::int(&[6], 1));
        let t = decode(&w).unwrap();
        assert_eq!(
            t.find(&mac("52:54:00:00:00:01")).next().unwrap().0.name,
            "Gi1/0/1"
        );
    }

    #[test]
    fn fdb_by_ifindex_falls_back_to_identity() {
        let mut w = walk(false);
        w.fdb = vec![Row::int(&idx(&[], "52:54:00:00:00:02"), 10102)];
        let t = decode(&w).unwrap();
        assert_eq!(
            t.find(&mac("52:54:00:00:00:02")).next().unwrap().0.name,
            "Gi1/0/2"
        );
    }

    #[test]
    fn errors_name_the_missing_table() {
        let mut w = walk(true);
        w.fdb.clear();
        assert_eq!(decode(&w), Err(FdbError::NoFdb));
        let mut w = walk(true);
        w.base_port_ifindex.clear();
        assert_eq!(decode(&w), Err(FdbError::NoBridgePorts));
        let mut w = walk(true);
        w.names = vec![Row::text(&[1], "")];
        assert!(!names_usable(&w.names));
        assert_eq!(decode(&w), Err(FdbError::NoNames));
    }

    #[test]
    fn malformed_rows_are_skipped() {
        let mut w = walk(false);
        w.fdb.push(Row::int(&[1, 2, 3], 1));
        w.fdb.push(Row::int(&[1, 2, 3, 4, 5, 999], 1));
        w.fdb.push(Row::int(&idx(&[], "52:54:00:00:00:09"), -1));
        w.fdb.push(Row {
            index: idx(&[], "52:54:00:00:00:0a"),
            value: Cell::Bytes(b"x".to_vec()),
        });
        w.names.push(Row::text(&[1, 2], "Gi7/7/7"));
        w.base_port_ifindex.push(Row::int(&[9], -5));
        let t = decode(&w).unwrap();
        assert_eq!(t.mac_count(), 5);
    }

    #[test]
    fn xcat_port_order() {
        let mut v = vec!["Gi1/0/10", "Gi1/0/2", "Te1/0/1", "Gi1/0/1", "7", "10"];
        v.sort_by(|a, b| port_order(a, b));
        assert_eq!(v, ["7", "10", "Gi1/0/1", "Gi1/0/2", "Gi1/0/10", "Te1/0/1"]);
    }
}
