//! Appliances sharing one store: the management node (MN, `site.master`) and its service nodes
//! (SN), each a `bootherd serve` with a name ([`Identity`]). Each records itself in bootherd's
//! own `appliances` table and beats there every few seconds ([`register`], [`heartbeat`]);
//! `bootherd status` and `lsxcatd -a` list them ([`list`], [`Appliance::alive`]).
//!
//! Which nodes an appliance answers is xCAT's rule, as a pure function ([`serves`]): the nodes
//! whose `noderes.servicenode` lists it (a pool `sn1,sn2` with `xcatmaster` empty is answered by
//! every member), or whose `noderes.xcatmaster` names it; a node with neither is the management
//! node's.

use std::net::Ipv4Addr;

use crate::store::{Store, StoreError};

/// What an appliance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The management node: `site.master` (or the only appliance when it is unset).
    Mn,
    /// A service node.
    Sn,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Mn => "MN",
            Role::Sn => "SN",
        }
    }
}

/// This appliance: its name, addresses and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub addrs: Vec<Ipv4Addr>,
    pub role: Role,
}

impl Identity {
    /// Whether `who` (a name, a host name of it, or an address) is this appliance.
    /// `resolve` turns a host name into an address (the system resolver, or a table lookup).
    pub fn is(&self, who: &str, resolve: &dyn Fn(&str) -> Option<Ipv4Addr>) -> bool {
        let who = who.trim();
        if who.is_empty() {
            return false;
        }
        if who.eq_ignore_ascii_case(&self.name) || short(who).eq_ignore_ascii_case(&self.name) {
            return true;
        }
        let addr = who.parse::<Ipv4Addr>().ok().or_else(|| resolve(who));
        addr.is_some_and(|a| self.addrs.contains(&a))
    }
}

/// A host name without its domain.
fn short(name: &str) -> &str {
    if name.parse::<Ipv4Addr>().is_ok() {
        return name;
    }
    name.split('.').next().unwrap_or(name)
}

/// The entries of a comma-separated `noderes.servicenode` value.
fn entries(v: Option<&str>) -> Vec<&str> {
    v.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect()
}

/// Whether appliance `me` answers a node with these `noderes.servicenode` and
/// `noderes.xcatmaster` values (xCAT's rules):
/// - `xcatmaster` set: the appliance it names — or, when `servicenode` names a single appliance,
///   that one too (`xcatmaster` is then the node's name for it, e.g. the interface facing it);
/// - else `servicenode` set: every appliance it lists (a pool);
/// - else: the management node.
pub fn serves(
    me: &Identity,
    servicenode: Option<&str>,
    xcatmaster: Option<&str>,
    resolve: &dyn Fn(&str) -> Option<Ipv4Addr>,
) -> bool {
    let sns = entries(servicenode);
    let master = xcatmaster.map(str::trim).filter(|m| !m.is_empty());
    match master {
        Some(m) => me.is(m, resolve) || (sns.len() == 1 && me.is(sns[0], resolve)),
        None if !sns.is_empty() => sns.iter().any(|s| me.is(s, resolve)),
        None => me.role == Role::Mn,
    }
}

/// The name this appliance takes: `explicit` (`--name`, `BOOTHERD_NAME`), else the node whose
/// `hosts.ip` is one of `my_addrs`, else the node named like the host, else the host's name.
/// `nodes` are (node, hosts.ip) pairs.
pub fn choose_name(
    explicit: Option<&str>,
    my_addrs: &[Ipv4Addr],
    hostname: &str,
    nodes: &[(String, Option<Ipv4Addr>)],
) -> String {
    if let Some(n) = explicit.map(str::trim).filter(|n| !n.is_empty()) {
        return n.to_string();
    }
    if let Some((n, _)) = nodes
        .iter()
        .find(|(_, ip)| ip.is_some_and(|ip| my_addrs.contains(&ip)))
    {
        return n.clone();
    }
    let host = short(hostname);
    if let Some((n, _)) = nodes
        .iter()
        .find(|(n, _)| n == hostname || n.eq_ignore_ascii_case(host))
    {
        return n.clone();
    }
    host.to_string()
}

/// The role of appliance `name` with `addrs`: MN when `site.master` is unset (a lone appliance),
/// names it, or is one of its addresses (or resolves to one); SN otherwise.
pub fn role_of(
    name: &str,
    addrs: &[Ipv4Addr],
    site_master: Option<&str>,
    resolve: &dyn Fn(&str) -> Option<Ipv4Addr>,
) -> Role {
    let probe = Identity {
        name: name.to_string(),
        addrs: addrs.to_vec(),
        role: Role::Sn,
    };
    match site_master.map(str::trim).filter(|m| !m.is_empty()) {
        None => Role::Mn,
        Some(m) if probe.is(m, resolve) => Role::Mn,
        Some(_) => Role::Sn,
    }
}

/// The master a node is told to take (`updatenode`'s `-m`, and `-M` with `-s`): its
/// `xcatmaster` when set; else, for a node of service nodes, the first appliance of its
/// `servicenode` list that is alive in `registry` (the first listed when none is), by that
/// appliance's address nearest the node's (longest common prefix), else its `hosts.ip`
/// (`hosts_ip`), else its name. `None`: a node of the management node (the caller's address
/// facing the node).
pub fn master_of_node(
    servicenode: Option<&str>,
    xcatmaster: Option<&str>,
    node_ip: Option<Ipv4Addr>,
    registry: &[Appliance],
    hosts_ip: &dyn Fn(&str) -> Option<Ipv4Addr>,
    now: u64,
) -> Option<String> {
    if let Some(m) = xcatmaster.map(str::trim).filter(|m| !m.is_empty()) {
        return Some(m.to_string());
    }
    let sns = entries(servicenode);
    let find = |n: &str| registry.iter().find(|a| a.name == n);
    let chosen = sns
        .iter()
        .find(|n| find(n).is_some_and(|a| a.alive(now)))
        .or(sns.first())?;
    let addrs: Vec<Ipv4Addr> = find(chosen)
        .map(|a| {
            a.addresses
                .split(',')
                .filter_map(|x| x.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let near = match node_ip {
        Some(nip) => addrs
            .iter()
            .max_by_key(|a| (u32::from(**a) ^ u32::from(nip)).leading_zeros())
            .copied(),
        None => addrs.first().copied(),
    };
    Some(
        near.or_else(|| hosts_ip(chosen))
            .map(|a| a.to_string())
            .unwrap_or_else(|| chosen.to_string()),
    )
}

/// This machine's IPv4 addresses (loopback excluded).
pub fn local_addrs() -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifa in addrs {
            if let Some(a) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) {
                let ip = a.ip();
                if !ip.is_loopback() && !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
    }
    out
}

/// This machine's host name.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

/// The name asked for on the command line or in `BOOTHERD_NAME`.
pub fn explicit_name(arg: Option<&str>) -> Option<String> {
    arg.map(str::to_string)
        .or_else(|| std::env::var("BOOTHERD_NAME").ok())
        .filter(|n| !n.trim().is_empty())
}

/// Resolves this appliance's identity from the store (nodes' `hosts.ip`, `site.master`).
pub fn identify(
    resolver: &crate::store::resolver::Resolver,
    explicit: Option<&str>,
) -> Result<Identity, StoreError> {
    let addrs = local_addrs();
    let m = resolver.membership()?;
    let ip = resolver.column("hosts", "ip")?;
    let nodes: Vec<(String, Option<Ipv4Addr>)> = m
        .nodes
        .iter()
        .map(|n| {
            let a = ip
                .get(n)
                .ok()
                .flatten()
                .and_then(|s| s.trim().parse::<Ipv4Addr>().ok());
            (n.clone(), a)
        })
        .collect();
    let name = choose_name(explicit, &addrs, &hostname(), &nodes);
    // The appliance's own node row may hold an address it reaches nodes by (behind NAT, a VIP).
    let mut all = addrs.clone();
    if let Some((_, Some(a))) = nodes.iter().find(|(n, _)| *n == name) {
        if !all.contains(a) {
            all.push(*a);
        }
    }
    let master = resolver.site_master()?;
    let lookup = |h: &str| {
        nodes
            .iter()
            .find(|(n, _)| n == h)
            .and_then(|(_, a)| *a)
            .or_else(|| crate::dhcp::config::resolve_name(h))
    };
    let role = role_of(&name, &all, master.as_deref(), &lookup);
    Ok(Identity {
        name,
        addrs: all,
        role,
    })
}

/// The appliance this process serves as (set by `bootherd serve`): what commands run by its
/// request port report as "this" appliance.
pub static RUNNING: std::sync::OnceLock<Identity> = std::sync::OnceLock::new();

/// What this machine is, for `lsxcatd -t`: the serving appliance's role in its own process; else
/// the registry's entry named by `BOOTHERD_NAME` or holding one of this machine's addresses;
/// else a management node (a lone appliance).
pub fn local_role(store: &Store) -> Role {
    if let Some(me) = RUNNING.get() {
        return me.role;
    }
    let Ok(all) = list(store) else {
        return Role::Mn;
    };
    let mine = local_addrs();
    let named = explicit_name(None);
    let found = all.iter().find(|a| {
        named.as_deref().map_or_else(
            || {
                a.addresses
                    .split(',')
                    .filter_map(|x| x.trim().parse::<Ipv4Addr>().ok())
                    .any(|x| mine.contains(&x))
            },
            |n| a.name == n,
        )
    });
    match found {
        Some(a) if a.role == "SN" => Role::Sn,
        _ => Role::Mn,
    }
}

/// `lsxcatd -a`'s lines for the appliances: `appliance=<name> role=<MN|SN> alive=<yes|no>
/// addresses=<…> version=<…>`.
pub fn lsxcatd_lines(list: &[Appliance], now: u64) -> Vec<String> {
    list.iter()
        .map(|a| {
            format!(
                "appliance={} role={} alive={} addresses={} version={}",
                a.name,
                a.role,
                if a.alive(now) { "yes" } else { "no" },
                a.addresses,
                a.version
            )
        })
        .collect()
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One row of the `appliances` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appliance {
    pub name: String,
    pub role: String,
    pub addresses: String,
    pub version: String,
    pub started: u64,
    pub heartbeat: u64,
    pub interval: u64,
    pub state: String,
}

/// Heartbeats an appliance may miss before it counts as gone.
pub const MISSED_BEATS: u64 = 3;
/// Seconds between heartbeats unless `bootherd serve --heartbeat` says otherwise.
pub const DEFAULT_INTERVAL: u64 = 5;

impl Appliance {
    /// Alive at `now`: running, and its last heartbeat at most [`MISSED_BEATS`] intervals old.
    pub fn alive(&self, now: u64) -> bool {
        self.state == "running"
            && now.saturating_sub(self.heartbeat) <= MISSED_BEATS * self.interval.max(1)
    }
}

/// Records `me` as running (started now), beating every `interval` seconds.
pub fn register(store: &Store, me: &Identity, interval: u64) -> Result<(), StoreError> {
    let t = now().to_string();
    let addrs = me
        .addrs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let iv = interval.to_string();
    store.write(None, |tx| {
        tx.set(
            "appliances",
            &[&me.name],
            &[
                ("role", Some(me.role.as_str())),
                ("addresses", Some(&addrs)),
                ("version", Some(env!("CARGO_PKG_VERSION"))),
                ("started", Some(&t)),
                ("heartbeat", Some(&t)),
                ("interval", Some(&iv)),
                ("state", Some("running")),
            ],
        )
    })
}

/// One heartbeat of appliance `name`.
pub fn heartbeat(store: &Store, name: &str) -> Result<(), StoreError> {
    let t = now().to_string();
    store.write(None, |tx| {
        tx.set(
            "appliances",
            &[name],
            &[("heartbeat", Some(&t)), ("state", Some("running"))],
        )
    })
}

/// Marks appliance `name` stopped (a clean shutdown).
pub fn stopped(store: &Store, name: &str) -> Result<(), StoreError> {
    store.write(None, |tx| {
        tx.set("appliances", &[name], &[("state", Some("stopped"))])
    })
}

/// Every appliance the store knows, by name.
pub fn list(store: &Store) -> Result<Vec<Appliance>, StoreError> {
    let spec = crate::store::table_spec("appliances")?;
    let mut out = Vec::new();
    for row in store.rows("appliances")? {
        if crate::store::is_disabled(spec, &row) {
            continue;
        }
        let get = |c: &str| {
            spec.col_index(c)
                .and_then(|i| row.get(i))
                .cloned()
                .flatten()
                .unwrap_or_default()
        };
        let num = |c: &str| get(c).trim().parse::<u64>().unwrap_or(0);
        out.push(Appliance {
            name: get("name"),
            role: get("role"),
            addresses: get("addresses"),
            version: get("version"),
            started: num("started"),
            heartbeat: num("heartbeat"),
            interval: num("interval"),
            state: get("state"),
        });
    }
    out.sort_by(|a, b| (a.role.as_str(), &a.name).cmp(&(b.role.as_str(), &b.name)));
    Ok(out)
}

/// `bootherd status` lines: one per appliance, with whether it is alive and how long ago it beat.
pub fn status_lines(list: &[Appliance], now: u64) -> Vec<String> {
    let mut out = vec![format!(
        "{:<16} {:<4} {:<10} {:<32} {:<10} {}",
        "NAME", "ROLE", "STATE", "ADDRESSES", "VERSION", "LAST HEARTBEAT"
    )];
    for a in list {
        let state = if a.alive(now) {
            "alive"
        } else if a.state == "stopped" {
            "stopped"
        } else {
            "not-alive"
        };
        out.push(format!(
            "{:<16} {:<4} {:<10} {:<32} {:<10} {} s ago",
            a.name,
            a.role,
            state,
            a.addresses,
            a.version,
            now.saturating_sub(a.heartbeat)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me(name: &str, addrs: &[[u8; 4]], role: Role) -> Identity {
        Identity {
            name: name.into(),
            addrs: addrs.iter().map(|a| Ipv4Addr::from(*a)).collect(),
            role,
        }
    }

    fn resolve(h: &str) -> Option<Ipv4Addr> {
        match h {
            "sn1-eth1" => Some(Ipv4Addr::new(10, 1, 0, 11)),
            "mn" => Some(Ipv4Addr::new(10, 1, 0, 1)),
            _ => None,
        }
    }

    #[test]
    fn pool_members_each_serve_the_pools_nodes() {
        let sn1 = me("sn1", &[[10, 1, 0, 11]], Role::Sn);
        let sn2 = me("sn2", &[[10, 1, 0, 12]], Role::Sn);
        let sn3 = me("sn3", &[[10, 1, 0, 13]], Role::Sn);
        let mn = me("mn", &[[10, 1, 0, 1]], Role::Mn);
        for (a, want) in [(&sn1, true), (&sn2, true), (&sn3, false), (&mn, false)] {
            assert_eq!(
                serves(a, Some("sn1,sn2"), None, &resolve),
                want,
                "{}",
                a.name
            );
            assert_eq!(serves(a, Some(" sn1 , sn2 "), Some(""), &resolve), want);
        }
    }

    #[test]
    fn xcatmaster_names_the_one_appliance() {
        let sn1 = me("sn1", &[[10, 1, 0, 11]], Role::Sn);
        let sn2 = me("sn2", &[[10, 1, 0, 12]], Role::Sn);
        let mn = me("mn", &[[10, 1, 0, 1]], Role::Mn);
        // By name, by address, by a host name that resolves to one of its addresses.
        for xm in ["sn2", "10.1.0.12", "sn2.cluster.example"] {
            assert!(!serves(&sn1, Some("sn1,sn2"), Some(xm), &resolve), "{xm}");
            assert!(serves(&sn2, Some("sn1,sn2"), Some(xm), &resolve), "{xm}");
            assert!(!serves(&mn, Some("sn1,sn2"), Some(xm), &resolve), "{xm}");
        }
        // servicenode=sn1, xcatmaster=sn1-eth1 (the node's name for sn1's facing interface).
        assert!(serves(&sn1, Some("sn1"), Some("sn1-eth1"), &resolve));
        assert!(serves(&sn1, Some("sn1"), Some("somename"), &resolve));
        assert!(!serves(&sn2, Some("sn1"), Some("sn1-eth1"), &resolve));
        // xcatmaster alone naming the MN by a resolvable name.
        assert!(serves(&mn, None, Some("mn"), &resolve));
        assert!(!serves(&sn1, None, Some("mn"), &resolve));
    }

    #[test]
    fn nodes_with_neither_are_the_management_nodes() {
        let sn1 = me("sn1", &[[10, 1, 0, 11]], Role::Sn);
        let mn = me("mn", &[[10, 1, 0, 1]], Role::Mn);
        assert!(serves(&mn, None, None, &resolve));
        assert!(serves(&mn, Some(""), Some(" "), &resolve));
        assert!(!serves(&sn1, None, None, &resolve));
    }

    #[test]
    fn name_from_flag_address_or_host_name() {
        let mine = [Ipv4Addr::new(10, 1, 0, 12)];
        let nodes = vec![
            ("sn1".to_string(), Some(Ipv4Addr::new(10, 1, 0, 11))),
            ("sn2".to_string(), Some(Ipv4Addr::new(10, 1, 0, 12))),
            ("box".to_string(), None),
        ];
        assert_eq!(choose_name(Some("snx"), &mine, "box", &nodes), "snx");
        assert_eq!(choose_name(Some(" "), &mine, "box", &nodes), "sn2");
        assert_eq!(choose_name(None, &[], "box.example.org", &nodes), "box");
        assert_eq!(choose_name(None, &[], "other.example.org", &nodes), "other");
    }

    #[test]
    fn role_from_site_master() {
        let a = [Ipv4Addr::new(10, 1, 0, 1)];
        assert_eq!(role_of("x", &a, None, &resolve), Role::Mn);
        assert_eq!(role_of("x", &a, Some("10.1.0.1"), &resolve), Role::Mn);
        assert_eq!(role_of("mn", &[], Some("mn"), &resolve), Role::Mn);
        assert_eq!(role_of("sn1", &a, Some("10.1.0.2"), &resolve), Role::Sn);
    }

    #[test]
    fn alive_within_three_intervals() {
        let a = Appliance {
            name: "sn1".into(),
            role: "SN".into(),
            addresses: String::new(),
            version: String::new(),
            started: 0,
            heartbeat: 100,
            interval: 2,
            state: "running".into(),
        };
        assert!(a.alive(106));
        assert!(!a.alive(107));
        assert!(!Appliance {
            state: "stopped".into(),
            ..a.clone()
        }
        .alive(100));
    }

    #[test]
    fn registry_round_trip() {
        let store = Store::open_test().expect("store");
        let sn = me("sn1", &[[10, 1, 0, 11], [10, 2, 0, 11]], Role::Sn);
        register(&store, &sn, 2).expect("register");
        let l = list(&store).expect("list");
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].addresses, "10.1.0.11,10.2.0.11");
        assert_eq!(l[0].role, "SN");
        assert!(l[0].alive(now()));
        stopped(&store, "sn1").expect("stop");
        assert!(!list(&store).expect("list")[0].alive(now()));
    }

    #[test]
    fn a_nodes_master_is_its_first_live_service_node_facing_it() {
        let reg = |name: &str, addrs: &str, hb: u64| Appliance {
            name: name.into(),
            role: "SN".into(),
            addresses: addrs.into(),
            version: String::new(),
            started: 0,
            heartbeat: hb,
            interval: 5,
            state: "running".into(),
        };
        let registry = [
            reg("sn1", "192.168.0.11,10.1.0.11", 100),
            reg("sn2", "192.168.0.12,10.1.0.12", 1000),
        ];
        let node = Some(Ipv4Addr::new(10, 1, 0, 50));
        let none = |_: &str| None;
        let m = |sn: Option<&str>, xm: Option<&str>| {
            master_of_node(sn, xm, node, &registry, &none, 1000)
        };
        assert_eq!(
            m(Some("sn1,sn2"), Some("sn1-eth1")).as_deref(),
            Some("sn1-eth1")
        );
        // sn1 has not beaten for 900 s: sn2, by its address on the node's network.
        assert_eq!(m(Some("sn1,sn2"), None).as_deref(), Some("10.1.0.12"));
        assert_eq!(m(Some("sn2"), Some("")).as_deref(), Some("10.1.0.12"));
        // None alive: the first listed.
        assert_eq!(
            master_of_node(Some("sn1"), None, node, &registry, &none, 5000).as_deref(),
            Some("10.1.0.11")
        );
        // Not in the registry: its hosts.ip, else its name.
        let hip = |n: &str| (n == "sn7").then_some(Ipv4Addr::new(10, 1, 0, 17));
        assert_eq!(
            master_of_node(Some("sn7"), None, node, &registry, &hip, 1000).as_deref(),
            Some("10.1.0.17")
        );
        assert_eq!(m(Some("sn8"), None).as_deref(), Some("sn8"));
        // The management node's node.
        assert_eq!(m(None, None), None);
    }
}
