//! What the DNS service knows, as a pure function of the tables: the forward zones (`site.domain`
//! and each network's `domain`), the reverse zones of the networks (xCAT's `getzonesfornet`:
//! whole octets, /24 zones for masks of /17–/32, /16 zones for /9–/16, /8 zones above), and a
//! name → addresses and address → name map of every host entry, as xCAT's `makedns` fills its
//! zones from `makehosts`' lines: each node's `hosts.ip` (regex rows and group values resolved),
//! its `hosts.hostnames` aliases, its `hosts.otherinterfaces` entries (BMCs, `-suffix` names) and
//! its `nics` addresses. Switches and BMCs defined as nodes are nodes here. As in xCAT, only
//! addresses inside a network of the `networks` table are served; the others are reported.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use crate::store::resolver::Resolver;
use crate::store::StoreError;

/// Tables the view is built from: a change to any of them rebuilds it.
pub const DEPENDS_ON: &[&str] = &[
    "hosts",
    "networks",
    "site",
    "nodelist",
    "nodegroup",
    "nics",
    "dnsexcluded",
];

/// Time to live of the answers (seconds): short, since the tables can change at any time.
pub const TTL: u32 = 60;

/// One IPv4 network of the `networks` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Net {
    pub net: Ipv4Addr,
    pub prefix: u8,
    pub domain: Option<String>,
}

impl Net {
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        let m = mask_bits(self.prefix);
        u32::from(a) & m == u32::from(self.net) & m
    }
}

fn mask_bits(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

/// One served name (what `makedns` reports as handled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The host name as the tables give it (`node01`, `node01-bmc`).
    pub host: String,
    /// The fully qualified name served (lower case, no trailing dot).
    pub fqdn: String,
    pub ip: Ipv4Addr,
    /// Also answered for these names (hosts.hostnames, nics aliases), qualified.
    pub aliases: Vec<String>,
}

/// The zones and records, ready to answer from.
#[derive(Debug, Clone, Default)]
pub struct DnsView {
    /// Forward zones, lower case, without trailing dot; the first is `site.domain`.
    pub domains: Vec<String>,
    /// Reverse zones (`1.168.192.in-addr.arpa`), lower case.
    pub reverse: Vec<String>,
    /// Qualified name (lower case) → its addresses.
    pub names: HashMap<String, Vec<Ipv4Addr>>,
    /// Alias (hosts.hostnames, nics aliases) → the canonical name it is a CNAME of.
    pub aliases: HashMap<String, String>,
    /// Address → its canonical qualified name.
    pub ptr: HashMap<Ipv4Addr, String>,
    /// `site.forwarders`.
    pub forwarders: Vec<IpAddr>,
    /// The served host entries, in node order.
    pub entries: Vec<Entry>,
    /// Host names not served: their address is in no network of the networks table.
    pub ignored: Vec<String>,
    /// Values that could not be used (bad addresses, forwarders, networks).
    pub problems: Vec<String>,
    /// The name server named in SOA and NS records.
    pub server: String,
}

/// xCAT's reverse zones for a network (`getzonesfornet`).
pub fn reverse_zones(net: Ipv4Addr, prefix: u8) -> Vec<String> {
    let n = u32::from(net);
    let (octets, step_bits) = match prefix {
        17.. => (3, 8),
        9..=16 => (2, 16),
        _ => (1, 24),
    };
    let base = n & mask_bits(prefix);
    let top = base | !mask_bits(prefix);
    let mut zones = Vec::new();
    let mut z = u64::from(base >> step_bits);
    let last = u64::from(top >> step_bits);
    // A /1 would give 128 zones of /8: that is the most there can be.
    while z <= last && zones.len() < 256 {
        let addr = (z as u32) << step_bits;
        let o = addr.to_be_bytes();
        let mut parts: Vec<String> = o[..octets].iter().map(|b| b.to_string()).collect();
        parts.reverse();
        zones.push(format!("{}.in-addr.arpa", parts.join(".")));
        z += 1;
    }
    zones
}

/// `name` qualified with `domain`, as xCAT's makedns does: a name already ending in the domain
/// is kept. Lower case, no trailing dot.
pub fn qualify(name: &str, domain: &str) -> String {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let domain = domain.trim().trim_matches('.').to_ascii_lowercase();
    if domain.is_empty() || name == domain || name.ends_with(&format!(".{domain}")) {
        name
    } else {
        format!("{name}.{domain}")
    }
}

/// A DNS host name: letters, digits, '-' and '.' (xCAT also refuses '_' in DNS).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A networks mask, dotted (`255.255.255.0`) or a prefix length (`24`, `/24`).
pub fn parse_mask(mask: &str) -> Option<u8> {
    let m = mask.trim().trim_start_matches('/');
    if let Ok(p) = m.parse::<u8>() {
        return (p <= 32).then_some(p);
    }
    let bits = u32::from(m.parse::<Ipv4Addr>().ok()?);
    let p = bits.leading_ones() as u8;
    (mask_bits(p) == bits).then_some(p)
}

/// Parses `site.forwarders` (addresses separated by commas or blanks).
pub fn parse_forwarders(v: &str) -> (Vec<IpAddr>, Vec<String>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for f in v.split([',', ' ', '\t']).filter(|f| !f.is_empty()) {
        match f.parse::<IpAddr>() {
            Ok(a) => ok.push(a),
            Err(_) => bad.push(format!("site.forwarders: '{f}' is not an IP address")),
        }
    }
    (ok, bad)
}

/// Builds the view for every node (`only`: just these nodes, for `makedns <noderange>`).
pub fn build(r: &Resolver, only: Option<&[String]>) -> Result<DnsView, StoreError> {
    r.preload(DEPENDS_ON)?;
    let mut v = DnsView::default();
    let site_domain = r
        .site("domain")?
        .map(|d| d.trim().trim_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty());
    if let Some(d) = &site_domain {
        v.domains.push(d.clone());
    }
    if let Some(f) = r.site("forwarders")? {
        let (ok, bad) = parse_forwarders(&f);
        v.forwarders = ok;
        v.problems.extend(bad);
    }

    // Networks, their domains and reverse zones.
    let mut nets: Vec<Net> = Vec::new();
    let t = r.table("networks")?;
    let col = |c: &str| t.spec.col_index(c);
    for row in &t.rows {
        let get = |c: &str| {
            col(c)
                .and_then(|i| row.get(i))
                .and_then(|x| x.clone())
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
        };
        let (Some(net), Some(mask)) = (get("net"), get("mask")) else {
            continue;
        };
        if net.contains(':') || mask.contains(':') {
            continue; // IPv6 networks: no AAAA records are served.
        }
        let (Ok(addr), Some(prefix)) = (net.parse::<Ipv4Addr>(), parse_mask(&mask)) else {
            v.problems.push(format!(
                "network {net}/{mask}: not an IPv4 network and mask"
            ));
            continue;
        };
        let domain = get("domain").map(|d| d.trim_matches('.').to_ascii_lowercase());
        if let Some(d) = &domain {
            if !v.domains.contains(d) {
                v.domains.push(d.clone());
            }
        }
        for z in reverse_zones(addr, prefix) {
            if !v.reverse.contains(&z) {
                v.reverse.push(z);
            }
        }
        nets.push(Net {
            net: addr,
            prefix,
            domain,
        });
    }
    let domain_of = |ip: Ipv4Addr| -> Option<Option<String>> {
        // The most specific network holding the address.
        nets.iter()
            .filter(|n| n.contains(ip))
            .max_by_key(|n| n.prefix)
            .map(|n| n.domain.clone().or_else(|| site_domain.clone()))
    };

    let first = v.domains.first().cloned().unwrap_or_default();
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "bootherd".into());
    let short = host
        .split('.')
        .next()
        .unwrap_or("bootherd")
        .to_ascii_lowercase();
    v.server = if first.is_empty() {
        short
    } else {
        qualify(&short, &first)
    };

    // Host entries: (host name, address text, aliases) per node, in node order.
    let m = r.membership()?;
    // Nodes `makedns -d` removed are left out (unless named explicitly).
    let excluded: std::collections::HashSet<String> = {
        let t = r.table("dnsexcluded")?;
        let i = t.spec.col_index("node").unwrap_or(0);
        t.rows
            .iter()
            .filter_map(|row| row.get(i).cloned().flatten())
            .collect()
    };
    let nodes: Vec<String> = match only {
        Some(list) => list.to_vec(),
        None => m
            .nodes
            .iter()
            .filter(|n| !excluded.contains(*n))
            .cloned()
            .collect(),
    };
    let ip_col = r.column("hosts", "ip")?;
    let names_col = r.column("hosts", "hostnames")?;
    let ifs_col = r.column("hosts", "otherinterfaces")?;
    let nic_cols = [
        r.column("nics", "nicips")?,
        r.column("nics", "nichostnamesuffixes")?,
        r.column("nics", "nichostnameprefixes")?,
        r.column("nics", "nicaliases")?,
    ];
    let mut raw: Vec<(String, String, String)> = Vec::new();
    for n in &nodes {
        let get = |c: &crate::store::resolver::ColumnView<'_>| match c.get(n) {
            Ok(x) => Ok(x.unwrap_or_default()),
            Err(e) => Err(format!("{n}: {e}")),
        };
        match get(&ip_col) {
            Ok(ip) if !ip.trim().is_empty() => {
                let aliases = get(&names_col).unwrap_or_default();
                raw.push((n.clone(), ip, aliases));
            }
            Ok(_) => {}
            Err(e) => v.problems.push(e),
        }
        // otherinterfaces: `name:ip` or `name!ip`; `-suffix` is the node's name plus suffix.
        for pair in get(&ifs_col)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let Some((name, ip)) = pair.split_once('!').or_else(|| pair.rsplit_once(':')) else {
                v.problems.push(format!(
                    "{n}: hosts.otherinterfaces entry '{pair}' has no address"
                ));
                continue;
            };
            let name = match name.strip_prefix('-') {
                Some(sfx) => format!("{n}-{sfx}"),
                None => name.to_string(),
            };
            raw.push((name, ip.to_string(), String::new()));
        }
        let nic = |i: usize| get(&nic_cols[i]).unwrap_or_default();
        let (ips, sufs, pres, als) = (nic(0), nic(1), nic(2), nic(3));
        if !ips.is_empty() {
            for l in crate::cli::net::nic_lines(n, &ips, &sufs, &pres, &als) {
                match l {
                    Ok(e) => raw.push(e),
                    Err(e) => v.problems.push(e),
                }
            }
        }
    }

    let mut seen: BTreeMap<String, Ipv4Addr> = BTreeMap::new();
    for (name, ip, aliases) in raw {
        let ip_t = ip.trim();
        let addr = match ip_t.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => a,
            Ok(IpAddr::V6(_)) => continue,
            Err(_) => {
                v.problems
                    .push(format!("{name}: '{ip_t}' is not an IP address; not served"));
                continue;
            }
        };
        if !valid_name(&name) {
            v.problems.push(format!(
                "{name}: not a valid DNS name (letters, digits, '-' and '.'); not served"
            ));
            continue;
        }
        let Some(domain) = domain_of(addr) else {
            v.ignored.push(name);
            continue;
        };
        let domain = domain.unwrap_or_default();
        let fqdn = qualify(&name, &domain);
        if let Some(prev) = seen.get(&fqdn) {
            if *prev != addr {
                v.problems.push(format!(
                    "{fqdn}: named for both {prev} and {addr}; answering both"
                ));
            }
        }
        seen.insert(fqdn.clone(), addr);
        let mut quals = Vec::new();
        for a in aliases.split([',', ' ']).filter(|a| !a.is_empty()) {
            if !valid_name(a) {
                v.problems
                    .push(format!("{name}: alias '{a}' is not a valid DNS name"));
                continue;
            }
            let q = qualify(a, &domain);
            if q != fqdn && !quals.contains(&q) {
                quals.push(q);
            }
        }
        let list = v.names.entry(fqdn.clone()).or_default();
        if !list.contains(&addr) {
            list.push(addr);
        }
        for q in &quals {
            v.aliases.entry(q.clone()).or_insert_with(|| fqdn.clone());
        }
        v.ptr.entry(addr).or_insert_with(|| fqdn.clone());
        v.entries.push(Entry {
            host: name,
            fqdn,
            ip: addr,
            aliases: quals,
        });
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_zones_follow_xcat() {
        let a = |s: &str| s.parse::<Ipv4Addr>().expect("ip");
        assert_eq!(
            reverse_zones(a("192.168.1.0"), 24),
            vec!["1.168.192.in-addr.arpa"]
        );
        assert_eq!(
            reverse_zones(a("192.168.1.64"), 27),
            vec!["1.168.192.in-addr.arpa"]
        );
        assert_eq!(
            reverse_zones(a("10.1.0.0"), 23),
            vec!["0.1.10.in-addr.arpa", "1.1.10.in-addr.arpa"]
        );
        assert_eq!(reverse_zones(a("10.1.0.0"), 16), vec!["1.10.in-addr.arpa"]);
        assert_eq!(
            reverse_zones(a("10.2.0.0"), 15),
            vec!["2.10.in-addr.arpa", "3.10.in-addr.arpa"]
        );
        assert_eq!(reverse_zones(a("10.0.0.0"), 8), vec!["10.in-addr.arpa"]);
        assert_eq!(
            reverse_zones(a("10.0.0.0"), 7),
            vec!["10.in-addr.arpa", "11.in-addr.arpa"]
        );
    }

    #[test]
    fn names_are_qualified_once() {
        assert_eq!(qualify("node1", "cluster.com"), "node1.cluster.com");
        assert_eq!(
            qualify("Node1.Cluster.com.", "cluster.com"),
            "node1.cluster.com"
        );
        assert_eq!(qualify("node1", ""), "node1");
        assert!(valid_name("node-01.a"));
        assert!(!valid_name("node_01"));
        assert!(!valid_name(".x"));
        assert_eq!(parse_mask("255.255.255.0"), Some(24));
        assert_eq!(parse_mask("/20"), Some(20));
        assert_eq!(parse_mask("255.0.255.0"), None);
    }
}
