//! What the DHCP server knows, built from the table store in one pass and swapped whole when the
//! change log touches a table it depends on: subnets (`networks`), interfaces
//! (`site.dhcpinterfaces`), and every known MAC with its node, address and boot facts.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, ToSocketAddrs};

use super::bootfile::Netboot;
use super::omapi::statements::Statements;
use crate::store::resolver::Resolver;
use crate::store::StoreError;

/// Tables whose changes make the view stale.
pub const DEPENDS_ON: &[&str] = &[
    "site",
    "networks",
    "nodelist",
    "mac",
    "hosts",
    "noderes",
    "chain",
    "nodegroup",
    "omapihosts",
    "dhcpexcluded",
];

/// One `networks` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub name: String,
    pub net: Ipv4Addr,
    pub mask: Ipv4Addr,
    pub prefix: u8,
    /// `None` when unset; `Some(None)` means `<xcatmaster>`: the server's own address.
    pub gateway: Option<Option<Ipv4Addr>>,
    /// Name servers; `None` entries stand for `<xcatmaster>`.
    pub dns: Vec<Option<Ipv4Addr>>,
    pub domain: Option<String>,
    pub ntp: Vec<Option<Ipv4Addr>>,
    pub mtu: Option<u16>,
    /// Dynamic ranges, inclusive.
    pub ranges: Vec<(Ipv4Addr, Ipv4Addr)>,
    pub tftpserver: Option<Ipv4Addr>,
}

impl Subnet {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & u32::from(self.mask) == u32::from(self.net)
    }
    pub fn in_dynamic_range(&self, ip: Ipv4Addr) -> bool {
        let v = u32::from(ip);
        self.ranges
            .iter()
            .any(|(a, b)| u32::from(*a) <= v && v <= u32::from(*b))
    }
}

/// A MAC that belongs to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub node: String,
    /// The name this MAC answers to (the node, or `host` of a `mac!host` entry).
    pub hostname: String,
    pub ip: Option<Ipv4Addr>,
    /// `mac!*NOIP*`: the MAC is the node's but must not boot or get an address.
    pub noip: bool,
    pub netboot: Option<Netboot>,
    /// `noderes.tftpserver` when it names an address.
    pub tftpserver: Option<Ipv4Addr>,
    /// Boot state `boot`: UEFI firmware is sent no boot file.
    pub local_boot: bool,
    /// Statements of an OMAPI host object for this MAC; they decide the boot file when present.
    pub statements: Option<std::sync::Arc<Statements>>,
}

/// `site.dhcpinterfaces` for this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceSpec {
    pub name: String,
    /// `:noboot`: answer DHCP but send no discovery boot file to unknown clients.
    pub noboot: bool,
}

/// Everything the server needs, resolved.
#[derive(Debug, Clone, Default)]
pub struct DhcpView {
    pub subnets: Vec<Subnet>,
    /// Lower-case `aa:bb:…` → host.
    pub hosts: HashMap<String, HostEntry>,
    /// Addresses reserved for nodes: never handed out dynamically.
    pub reserved: HashMap<Ipv4Addr, String>,
    pub lease_time: u32,
    /// `site.dhcpcachethreshold` (ISC dhcpd's `dhcp-cache-threshold`): a client's active lease
    /// younger than this percentage of its length is answered as it stands, with its remaining
    /// time, and nothing is written. 0: every ACK writes a new lease.
    pub cache_threshold: u8,
    /// `None`: `site.dhcpinterfaces` is not set (serve every interface on a defined network).
    pub interfaces: Option<Vec<InterfaceSpec>>,
    pub domain: Option<String>,
    pub site_dns: Vec<Option<Ipv4Addr>>,
    /// Problems found while building (logged by the server, reported by makedhcp -n).
    pub problems: Vec<String>,
    /// MACs of nodes another appliance answers (`noderes.servicenode`/`xcatmaster`): this one
    /// stays silent for them instead of treating them as unknown clients.
    pub elsewhere: HashSet<String>,
}

/// An address, `<xcatmaster>` (None), or a host name resolved now.
fn addr_or_master(s: &str) -> Option<Option<Ipv4Addr>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s == "<xcatmaster>" {
        return Some(None);
    }
    if let Ok(a) = s.parse() {
        return Some(Some(a));
    }
    resolve_name(s).map(Some)
}

/// The system resolver (/etc/hosts, DNS), IPv4 only.
pub fn resolve_name(name: &str) -> Option<Ipv4Addr> {
    (name, 0)
        .to_socket_addrs()
        .ok()?
        .find_map(|a| match a.ip() {
            std::net::IpAddr::V4(v4) => Some(v4),
            _ => None,
        })
}

fn list(s: Option<String>) -> Vec<Option<Ipv4Addr>> {
    s.unwrap_or_default()
        .split([',', ' '])
        .filter(|x| !x.is_empty())
        .filter_map(addr_or_master)
        .collect()
}

/// `a-b` or CIDR pieces separated by `;` or `,`.
pub fn parse_ranges(s: &str) -> Result<Vec<(Ipv4Addr, Ipv4Addr)>, String> {
    let mut out = Vec::new();
    for part in s.split([';', ',']).map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let a: Ipv4Addr = a
                .trim()
                .parse()
                .map_err(|_| format!("'{part}': '{a}' is not an IPv4 address"))?;
            let b: Ipv4Addr = b
                .trim()
                .parse()
                .map_err(|_| format!("'{part}': '{b}' is not an IPv4 address"))?;
            if u32::from(a) > u32::from(b) {
                return Err(format!("'{part}': the range runs backwards"));
            }
            out.push((a, b));
        } else if let Some((net, bits)) = part.split_once('/') {
            let net: Ipv4Addr = net
                .parse()
                .map_err(|_| format!("'{part}': '{net}' is not an IPv4 address"))?;
            let bits: u32 = bits
                .parse()
                .ok()
                .filter(|b| *b <= 32)
                .ok_or_else(|| format!("'{part}': bad prefix length"))?;
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            let lo = u32::from(net) & mask;
            let hi = lo | !mask;
            // Skip the network and broadcast addresses of a CIDR range.
            let (lo, hi) = if bits < 31 {
                (lo + 1, hi - 1)
            } else {
                (lo, hi)
            };
            out.push((lo.into(), hi.into()));
        } else {
            return Err(format!("'{part}' is neither a-b nor a CIDR range"));
        }
    }
    Ok(out)
}

fn mask_prefix(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let p = m.leading_ones();
    (m.checked_shl(p).unwrap_or(0) == 0).then_some(p as u8)
}

/// `site.dhcpinterfaces` entries that apply to the machine called `hostname`.
pub fn parse_interfaces(value: &str, hostname: &str) -> Vec<InterfaceSpec> {
    let short = hostname.split('.').next().unwrap_or(hostname);
    let mut out = Vec::new();
    for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let ifs = match part.split_once('|') {
            Some((host, ifs)) => {
                let host = host.trim();
                if host != hostname && host != short {
                    continue;
                }
                ifs
            }
            None => part,
        };
        for i in ifs.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, noboot) = match i.strip_suffix(":noboot") {
                Some(n) => (n, true),
                None => (i, false),
            };
            out.push(InterfaceSpec {
                name: name.to_string(),
                noboot,
            });
        }
    }
    out
}

/// ISC dhcpd's default `dhcp-cache-threshold`, in percent of a lease's length.
pub const DEFAULT_CACHE_THRESHOLD: u8 = 25;

/// A numeric site setting as [`crate::store::validate::site_value`] accepts it: `default` when
/// unset, and `default` with a problem noted when the stored value does not pass.
fn site_number<T: std::str::FromStr + std::fmt::Display + Copy>(
    r: &Resolver,
    key: &str,
    default: T,
    problems: &mut Vec<String>,
) -> Result<T, StoreError> {
    let Some(s) = r.site(key)?.filter(|s| !s.trim().is_empty()) else {
        return Ok(default);
    };
    Ok(match crate::store::validate::site_value(key, &s) {
        Ok(()) => s.trim().parse().unwrap_or(default),
        Err(e) => {
            problems.push(format!("{e}; using {default}"));
            default
        }
    })
}

/// Builds the view from the store. Errors only for store failures; bad rows become `problems`.
pub fn build(r: &Resolver, hostname: &str) -> Result<DhcpView, StoreError> {
    build_for(r, hostname, None)
}

/// The view of appliance `me` among several sharing the store: only the nodes it serves
/// ([`crate::appliance::serves`]) are its hosts, the others' MACs go to
/// [`DhcpView::elsewhere`], and a network whose `dhcpserver` names another appliance gets no
/// dynamic addresses from it. `None`: one appliance answering every node ([`build`]).
pub fn build_for(
    r: &Resolver,
    hostname: &str,
    me: Option<&crate::appliance::Identity>,
) -> Result<DhcpView, StoreError> {
    r.preload(DEPENDS_ON)?;
    let mut site_problems = Vec::new();
    // A store written before the checks: never hand out 0-second leases.
    let lease_time = site_number(r, "dhcplease", 43200, &mut site_problems)?;
    let cache_threshold = site_number(
        r,
        "dhcpcachethreshold",
        DEFAULT_CACHE_THRESHOLD,
        &mut site_problems,
    )?;
    let mut v = DhcpView {
        lease_time,
        cache_threshold,
        interfaces: r
            .site("dhcpinterfaces")?
            .map(|s| parse_interfaces(&s, hostname)),
        domain: r.site("domain")?,
        site_dns: list(r.site("nameservers")?),
        ..DhcpView::default()
    };
    v.problems.extend(site_problems);

    let nets = r.table("networks")?;
    let col = |c: &str| nets.spec.col_index(c);
    for row in &nets.rows {
        let get = |c: &str| {
            col(c)
                .and_then(|i| row.get(i))
                .and_then(|x| x.clone())
                .filter(|x| !x.trim().is_empty())
        };
        let name = get("netname").unwrap_or_default();
        let (Some(net), Some(mask)) = (get("net"), get("mask")) else {
            continue;
        };
        if crate::ra::parse_v6_network(&net, &mask).is_some() {
            // An IPv6 network: no DHCPv4 there; router advertisements name it on-link.
            continue;
        }
        let (Ok(net), Ok(mask)) = (
            net.trim().parse::<Ipv4Addr>(),
            mask.trim().parse::<Ipv4Addr>(),
        ) else {
            v.problems.push(format!(
                "network '{name}': net '{net}' or mask '{mask}' is not an IPv4 address"
            ));
            continue;
        };
        let Some(prefix) = mask_prefix(mask) else {
            v.problems
                .push(format!("network '{name}': mask {mask} is not contiguous"));
            continue;
        };
        // xCAT's networks.dhcpserver: the one DHCP server of a network (pooled service nodes).
        let theirs = me
            .is_some_and(|me| get("dhcpserver").is_some_and(|d| !me.is(&d, &|h| resolve_name(h))));
        let ranges = match get("dynamicrange").map(|s| parse_ranges(&s)).transpose() {
            Ok(_) if theirs => Vec::new(),
            Ok(r) => r.unwrap_or_default(),
            Err(e) => {
                v.problems
                    .push(format!("network '{name}': dynamicrange {e}"));
                Vec::new()
            }
        };
        let sub = Subnet {
            name,
            net: Ipv4Addr::from(u32::from(net) & u32::from(mask)),
            mask,
            prefix,
            gateway: get("gateway").and_then(|g| addr_or_master(&g)),
            dns: list(get("nameservers")),
            domain: get("domain"),
            ntp: list(get("ntpservers")),
            mtu: get("mtu").and_then(|m| m.trim().parse().ok()),
            ranges,
            tftpserver: get("tftpserver").and_then(|t| addr_or_master(&t)).flatten(),
        };
        for (a, b) in &sub.ranges {
            if !sub.contains(*a) || !sub.contains(*b) {
                v.problems.push(format!(
                    "network '{}': dynamic range {a}-{b} is outside {}/{}",
                    sub.name, sub.net, sub.prefix
                ));
            }
        }
        v.subnets.push(sub);
    }

    let m = r.membership()?;
    let mac = r.column("mac", "mac")?;
    let ip = r.column("hosts", "ip")?;
    let others = r.column("hosts", "otherinterfaces")?;
    let netboot = r.column("noderes", "netboot")?;
    let tftp = r.column("noderes", "tftpserver")?;
    let state = r.column("chain", "currstate")?;
    let servicenode = r.column("noderes", "servicenode")?;
    let xcatmaster = r.column("noderes", "xcatmaster")?;
    // Appliance names in servicenode/xcatmaster → addresses: their node's hosts.ip, else the
    // system resolver; each name looked up once per build.
    let seen_names: std::cell::RefCell<HashMap<String, Option<Ipv4Addr>>> = Default::default();
    let lookup = |h: &str| -> Option<Ipv4Addr> {
        if let Some(a) = seen_names.borrow().get(h) {
            return *a;
        }
        let a = ip
            .get(h)
            .ok()
            .flatten()
            .and_then(|s| s.trim().parse().ok())
            .or_else(|| resolve_name(h));
        seen_names.borrow_mut().insert(h.to_string(), a);
        a
    };
    // Nodes whose host entry `makedhcp -d` removed: their addresses stay reserved (nobody else
    // gets them), but their MACs are answered as unknown clients.
    let excluded: HashSet<String> = {
        let t = r.table("dhcpexcluded")?;
        let i = t.spec.col_index("node").unwrap_or(0);
        t.rows
            .iter()
            .filter_map(|row| row.get(i).cloned().flatten())
            .collect()
    };
    let mut seen_ip: HashSet<Ipv4Addr> = HashSet::new();
    for node in &m.nodes {
        let macs = match mac.get(node) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                v.problems.push(format!("{node}: {e}"));
                continue;
            }
        };
        let node_ip = match ip.get(node) {
            Ok(Some(s)) => match s.trim().parse::<Ipv4Addr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    let a = resolve_name(s.trim());
                    if a.is_none() && s.trim().parse::<std::net::IpAddr>().is_err() {
                        v.problems.push(format!(
                            "{node}: hosts.ip '{}' is not an IP address",
                            s.trim().escape_debug()
                        ));
                    }
                    a
                }
            },
            Ok(None) => resolve_name(node),
            Err(e) => {
                v.problems.push(format!("{node}: {e}"));
                None
            }
        };
        let nb_raw = netboot.get(node).ok().flatten();
        let nb = nb_raw.as_deref().and_then(Netboot::parse);
        if let (Some(raw), None) = (&nb_raw, &nb) {
            v.problems.push(format!(
                "{node}: noderes.netboot '{raw}' is not a boot method bootherd serves"
            ));
        }
        let tftpserver = tftp
            .get(node)
            .ok()
            .flatten()
            .and_then(|t| addr_or_master(&t))
            .flatten();
        let local_boot = state
            .get(node)
            .ok()
            .flatten()
            .is_some_and(|s| s.trim() == "boot" || s.starts_with("boot "));
        let other_ifs = others.get(node).ok().flatten().unwrap_or_default();
        let mine = me.is_none_or(|me| {
            let sn = servicenode.get(node).ok().flatten();
            let xm = xcatmaster.get(node).ok().flatten();
            crate::appliance::serves(me, sn.as_deref(), xm.as_deref(), &lookup)
        });
        for entry in macs.split('|').map(str::trim).filter(|e| !e.is_empty()) {
            let (mac_s, host) = match entry.split_once('!') {
                Some((m, h)) => (m.trim(), Some(h.trim())),
                None => (entry, None),
            };
            let Some(mac_norm) = normalize_mac(mac_s) else {
                v.problems
                    .push(format!("{node}: '{mac_s}' in mac.mac is not a MAC address"));
                continue;
            };
            let noip = host == Some("*NOIP*");
            let (hostname, addr) = match host {
                None => (node.clone(), node_ip),
                Some("*NOIP*") => (node.clone(), None),
                Some(h) => (h.to_string(), host_ip(r, h, node, &other_ifs)),
            };
            if let Some(a) = addr {
                if !seen_ip.insert(a) && v.reserved.get(&a).is_some_and(|n| n != node) {
                    v.problems.push(format!(
                        "{node}: address {a} is also {}'s",
                        v.reserved.get(&a).map(String::as_str).unwrap_or("?")
                    ));
                }
                v.reserved.insert(a, node.clone());
            }
            if excluded.contains(node) {
                continue;
            }
            if !mine {
                v.elsewhere.insert(mac_norm);
                continue;
            }
            if let Some(prev) = v.hosts.get(&mac_norm) {
                if prev.node != *node {
                    v.problems.push(format!(
                        "MAC {mac_norm} is listed for both {} and {node}; {} keeps it",
                        prev.node, prev.node
                    ));
                    continue;
                }
            }
            v.hosts.insert(
                mac_norm,
                HostEntry {
                    node: node.clone(),
                    hostname,
                    ip: addr,
                    noip,
                    netboot: nb.clone(),
                    tftpserver,
                    local_boot,
                    statements: None,
                },
            );
        }
    }
    // OMAPI host objects: what xCAT's makedhcp (or an admin with omshell) told the DHCP server.
    // They win over the tables for their MAC, as dhcpd host declarations did.
    let hosts_t = r.table("omapihosts")?;
    let hc = |c: &str| hosts_t.spec.col_index(c);
    for row in &hosts_t.rows {
        let get = |c: &str| {
            hc(c)
                .and_then(|i| row.get(i))
                .and_then(|x| x.clone())
                .filter(|x| !x.is_empty())
        };
        let Some(name) = get("name") else { continue };
        let Some(mac) = get("hwaddr").as_deref().and_then(normalize_mac) else {
            v.problems.push(format!(
                "OMAPI host '{name}' has no usable hardware-address"
            ));
            continue;
        };
        let ip = get("ip").and_then(|a| a.parse::<Ipv4Addr>().ok());
        let statements = match get("statements").map(|s| Statements::parse(&s)).transpose() {
            Ok(s) => s.map(std::sync::Arc::new),
            Err(e) => {
                v.problems.push(format!(
                    "OMAPI host '{name}': statements not understood: {e}"
                ));
                None
            }
        };
        if let Some(a) = ip {
            v.reserved.insert(a, name.clone());
        }
        let entry = v.hosts.entry(mac).or_insert_with(|| HostEntry {
            node: name.clone(),
            hostname: name.clone(),
            ip: None,
            noip: false,
            netboot: None,
            tftpserver: None,
            local_boot: false,
            statements: None,
        });
        if ip.is_some() {
            entry.ip = ip;
        }
        entry.statements = statements;
    }
    // Node addresses no network covers are never answered: say which (the first few).
    let mut stray: Vec<(String, Ipv4Addr)> = v
        .hosts
        .values()
        .filter_map(|h| h.ip.map(|ip| (h.node.clone(), ip)))
        .filter(|(_, ip)| !v.subnets.iter().any(|s| s.contains(*ip)))
        .collect();
    if !stray.is_empty() {
        stray.sort();
        stray.dedup();
        let shown: Vec<String> = stray
            .iter()
            .take(5)
            .map(|(n, ip)| format!("{n} ({ip})"))
            .collect();
        let more = stray.len().saturating_sub(shown.len());
        v.problems.push(format!(
            "{} node address(es) on no network of the networks table, not answered: {}{}",
            stray.len(),
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    // Never offered dynamically, whatever the dynamic range covers: each network's own and
    // broadcast addresses, its gateway, and this server's addresses (site.master included).
    let mut own: Vec<Ipv4Addr> = nix::ifaddrs::getifaddrs()
        .map(|it| {
            it.filter_map(|ifa| ifa.address?.as_sockaddr_in().map(|a| a.ip()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(m) = r.site_master()?.and_then(|m| m.parse::<Ipv4Addr>().ok()) {
        own.push(m);
    }
    for s in &v.subnets {
        let bcast = Ipv4Addr::from(u32::from(s.net) | !u32::from(s.mask));
        let mut claim = |a: Ipv4Addr, who: String| {
            if s.contains(a) {
                v.reserved.entry(a).or_insert(who);
            }
        };
        if s.prefix < 31 {
            claim(s.net, format!("the network address of '{}'", s.name));
            claim(bcast, format!("the broadcast address of '{}'", s.name));
        }
        if let Some(Some(gw)) = s.gateway {
            claim(gw, format!("the gateway of '{}'", s.name));
        }
        for a in &own {
            claim(*a, "this server".to_string());
        }
    }
    for s in &v.subnets {
        for (a, n) in &v.reserved {
            if s.in_dynamic_range(*a) {
                v.problems.push(format!(
                    "{n}: address {a} is inside the dynamic range of network '{}' (it is never offered from it)",
                    s.name
                ));
            }
        }
    }
    Ok(v)
}

/// The address of `host` from a `mac!host` entry: a node's own IP, an otherinterfaces entry of
/// `node` (`host:ip`, or `-suffix:ip` relative to the node), else the system resolver.
fn host_ip(r: &Resolver, host: &str, node: &str, other_ifs: &str) -> Option<Ipv4Addr> {
    if let Ok(Some(s)) = r.attr(host, "hosts", "ip") {
        if r.membership().ok()?.nodes.contains(host) {
            if let Ok(a) = s.trim().parse() {
                return Some(a);
            }
        }
    }
    for pair in other_ifs.split(',') {
        let (name, ip) = pair
            .split_once('!')
            .or_else(|| pair.split_once(':'))
            .unwrap_or((pair, ""));
        let name = match name.strip_prefix('-') {
            Some(suffix) => format!("{node}-{suffix}"),
            None => name.to_string(),
        };
        if name == host {
            if let Ok(a) = ip.trim().parse() {
                return Some(a);
            }
        }
    }
    resolve_name(host)
}

/// `52:54:00:AA:bb:01`, `52-54-00-aa-bb-01` or `525400aabb01` → `52:54:00:aa:bb:01`.
pub fn normalize_mac(s: &str) -> Option<String> {
    let hex: String = s
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    if hex.len() != 12 && hex.len() != 40 && hex.len() != 16 {
        return None;
    }
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let lower = hex.to_ascii_lowercase();
    Some(
        lower
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).to_string())
            .collect::<Vec<_>>()
            .join(":"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_in_both_notations() {
        assert_eq!(
            parse_ranges("10.0.0.200-10.0.0.250;10.0.1.0/30").expect("parses"),
            vec![
                (Ipv4Addr::new(10, 0, 0, 200), Ipv4Addr::new(10, 0, 0, 250)),
                (Ipv4Addr::new(10, 0, 1, 1), Ipv4Addr::new(10, 0, 1, 2))
            ]
        );
        assert!(parse_ranges("10.0.0.9-10.0.0.1")
            .unwrap_err()
            .contains("backwards"));
        assert!(parse_ranges("10.0.0.x-10.0.0.1").is_err());
    }

    #[test]
    fn dhcpinterfaces_syntax() {
        assert_eq!(
            parse_interfaces("eth1,eth2:noboot", "mn1"),
            vec![
                InterfaceSpec {
                    name: "eth1".into(),
                    noboot: false
                },
                InterfaceSpec {
                    name: "eth2".into(),
                    noboot: true
                }
            ]
        );
        assert_eq!(
            parse_interfaces("mn1|eth1;sn1|bond0", "mn1.cluster"),
            vec![InterfaceSpec {
                name: "eth1".into(),
                noboot: false
            }]
        );
    }

    #[test]
    fn macs_are_normalized() {
        assert_eq!(
            normalize_mac("52:54:00:AA:bb:01").as_deref(),
            Some("52:54:00:aa:bb:01")
        );
        assert_eq!(
            normalize_mac("52-54-00-aa-bb-01").as_deref(),
            Some("52:54:00:aa:bb:01")
        );
        assert_eq!(
            normalize_mac("525400aabb01").as_deref(),
            Some("52:54:00:aa:bb:01")
        );
        assert_eq!(normalize_mac("nonsense"), None);
    }

    #[test]
    fn view_from_tables() {
        let s = std::sync::Arc::new(crate::store::Store::open_in_memory().expect("store"));
        s.write(None, |tx| {
            tx.set(
                "networks",
                &["10.0.0.0", "255.255.255.0"],
                &[
                    ("netname", Some("mgmt")),
                    ("dynamicrange", Some("10.0.0.200-10.0.0.210")),
                    ("gateway", Some("<xcatmaster>")),
                ],
            )?;
            for n in ["n1", "n2"] {
                tx.set("nodelist", &[n], &[("groups", Some("compute,all"))])?;
            }
            tx.set(
                "hosts",
                &["compute"],
                &[("ip", Some(r"|n(\d+)|10.0.0.($1+10)|"))],
            )?;
            tx.set(
                "mac",
                &["n1"],
                &[("mac", Some("52:54:00:00:00:01|52:54:00:00:01:01!*NOIP*"))],
            )?;
            tx.set("mac", &["n2"], &[("mac", Some("52:54:00:00:00:02"))])?;
            tx.set("noderes", &["compute"], &[("netboot", Some("xnba"))])?;
            tx.set("chain", &["n2"], &[("currstate", Some("boot"))])
        })
        .expect("seed");
        let r = Resolver::new(s);
        let v = build(&r, "mn").expect("view");
        assert_eq!(v.subnets.len(), 1);
        assert_eq!(v.subnets[0].gateway, Some(None));
        let h1 = &v.hosts["52:54:00:00:00:01"];
        assert_eq!(
            (h1.node.as_str(), h1.ip, h1.netboot.clone()),
            ("n1", Some(Ipv4Addr::new(10, 0, 0, 11)), Some(Netboot::Xnba))
        );
        assert!(v.hosts["52:54:00:00:01:01"].noip);
        assert!(v.hosts["52:54:00:00:00:02"].local_boot);
        assert_eq!(
            v.reserved
                .get(&Ipv4Addr::new(10, 0, 0, 12))
                .map(String::as_str),
            Some("n2")
        );
        assert_eq!(v.lease_time, 43200);
        assert!(v.problems.is_empty(), "{:?}", v.problems);
    }

    #[test]
    fn each_appliance_answers_only_its_nodes() {
        use crate::appliance::{Identity, Role};
        let s = std::sync::Arc::new(crate::store::Store::open_in_memory().expect("store"));
        s.write(None, |tx| {
            tx.set(
                "networks",
                &["10.0.0.0", "255.255.255.0"],
                &[
                    ("netname", Some("mgmt")),
                    ("dynamicrange", Some("10.0.0.200-10.0.0.210")),
                ],
            )?;
            tx.set(
                "networks",
                &["10.0.1.0", "255.255.255.0"],
                &[
                    ("netname", Some("other")),
                    ("dynamicrange", Some("10.0.1.200-10.0.1.210")),
                    ("dhcpserver", Some("sn2")),
                ],
            )?;
            for (n, sn, xm) in [
                ("pool", Some("sn1,sn2"), None),
                ("only2", Some("sn1,sn2"), Some("sn2")),
                ("mns", None, None),
            ] {
                tx.set("nodelist", &[n], &[("groups", Some("all"))])?;
                tx.set("noderes", &[n], &[("servicenode", sn), ("xcatmaster", xm)])?;
            }
            tx.set("hosts", &["sn2"], &[("ip", Some("10.0.0.12"))])?;
            tx.set("mac", &["pool"], &[("mac", Some("52:54:00:00:00:01"))])?;
            tx.set("mac", &["only2"], &[("mac", Some("52:54:00:00:00:02"))])?;
            tx.set("mac", &["mns"], &[("mac", Some("52:54:00:00:00:03"))])
        })
        .expect("seed");
        let r = Resolver::new(s);
        let me = |name: &str, a: [u8; 4], role| Identity {
            name: name.into(),
            addrs: vec![a.into()],
            role,
        };
        let sn1 = build_for(&r, "x", Some(&me("sn1", [10, 0, 0, 11], Role::Sn))).expect("view");
        let sn2 = build_for(&r, "x", Some(&me("sn2", [10, 0, 0, 12], Role::Sn))).expect("view");
        let mn = build_for(&r, "x", Some(&me("mn", [10, 0, 0, 1], Role::Mn))).expect("view");
        let keys = |v: &DhcpView| {
            let mut k: Vec<&str> = v.hosts.values().map(|h| h.node.as_str()).collect();
            k.sort();
            k.join(",")
        };
        assert_eq!(keys(&sn1), "pool");
        assert_eq!(keys(&sn2), "only2,pool");
        assert_eq!(keys(&mn), "mns");
        // The others' MACs are known, not unknown clients.
        assert!(sn1.elsewhere.contains("52:54:00:00:00:02"));
        assert!(sn1.elsewhere.contains("52:54:00:00:00:03"));
        assert!(mn.elsewhere.contains("52:54:00:00:00:01"));
        // Every node's address stays reserved on every appliance.
        assert_eq!(sn1.reserved.len(), mn.reserved.len());
        // networks.dhcpserver=sn2: only sn2 hands out that network's dynamic addresses.
        let other = |v: &DhcpView| {
            v.subnets
                .iter()
                .find(|s| s.name == "other")
                .map(|s| s.ranges.len())
        };
        assert_eq!(other(&sn1), Some(0));
        assert_eq!(other(&sn2), Some(1));
        // Without an identity (one appliance): every node.
        assert_eq!(keys(&build(&r, "x").expect("view")), "mns,only2,pool");
    }
}
