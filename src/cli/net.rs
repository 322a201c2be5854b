//! `makehosts` (an /etc/hosts-format file from the hosts table) and `makenetworks` (networks rows
//! from this machine's interfaces).

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;

use super::nodes::report_missing;
use super::DbOpt;
use crate::store::resolver::Resolver;
use crate::store::Audit;

#[derive(Debug, Args)]
pub struct MakehostsArgs {
    /// Start a new file (127.0.0.1 localhost plus the nodes) instead of updating the existing one
    #[arg(short = 'n')]
    new: bool,
    /// Remove the nodes' lines instead of adding them
    #[arg(short = 'd')]
    delete: bool,
    /// Write the long (domain) name before the short name
    #[arg(short = 'l', long = "longnamefirst")]
    long_first: bool,
    /// The hosts file to write
    #[arg(long = "file", default_value = "/etc/hosts", value_name = "PATH")]
    file: PathBuf,
    /// The nodes (default: all)
    #[arg(allow_hyphen_values = true)]
    noderange: Option<String>,
}

/// One hosts line: address, then names.
fn host_line(ip: &str, node: &str, domain: Option<&str>, others: &str, long_first: bool) -> String {
    let long = domain
        .filter(|d| !d.is_empty())
        .map(|d| format!("{node}.{d}"));
    let mut names: Vec<String> = Vec::new();
    match (&long, long_first) {
        (Some(l), true) => names.extend([l.clone(), node.to_string()]),
        (Some(l), false) => names.extend([node.to_string(), l.clone()]),
        (None, _) => names.push(node.to_string()),
    }
    for o in others.split([',', ' ']).filter(|o| !o.is_empty()) {
        if !names.iter().any(|n| n == o) {
            names.push(o.to_string());
        }
    }
    format!("{ip} {}", names.join(" "))
}

/// A node's NIC host entries from its nics values (`eth0!10.0.0.1|10.0.0.2,ib0!…`, `!` or `:`
/// after the NIC name): (host name, address, aliases) per address, as xCAT's donics builds them;
/// a regex value for one NIC is resolved for the node. Errors are xCAT's messages.
pub(crate) fn nic_lines(
    node: &str,
    ips: &str,
    suffixes: &str,
    prefixes: &str,
    aliases: &str,
) -> Vec<Result<(String, String, String), String>> {
    use crate::store::regexattr::RegexValue;
    let split = |v: &str| -> Vec<(String, String)> {
        v.split(',')
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (nic, val) = e
                    .split_once('!')
                    .or_else(|| e.split_once(':'))
                    .unwrap_or((e, ""));
                (nic.to_string(), val.to_string())
            })
            .collect()
    };
    let resolve = |v: &str| -> String {
        if v.starts_with('|') && v.ends_with('|') && v.len() > 1 {
            match RegexValue::parse(v) {
                Ok(Some(re)) => re.apply(node).ok().flatten().unwrap_or_default(),
                _ => v.to_string(),
            }
        } else {
            v.to_string()
        }
    };
    let lookup = |list: &[(String, String)], nic: &str, i: usize| -> Option<String> {
        list.iter()
            .find(|(n, _)| n == nic)
            .and_then(|(_, v)| v.split('|').nth(i).map(str::to_string))
            .filter(|s| !s.is_empty())
    };
    let (sufs, pres) = (split(suffixes), split(prefixes));
    let alias_list: Vec<(String, String)> = split(aliases)
        .into_iter()
        .map(|(n, v)| (n, resolve(&v)))
        .collect();
    let short = node.split('.').next().unwrap_or(node);
    let mut out = Vec::new();
    for (nic, raw) in split(ips) {
        if raw.is_empty() {
            continue;
        }
        let addrs = resolve(&raw);
        for (i, ip) in addrs.split('|').filter(|a| !a.is_empty()).enumerate() {
            let suffix = lookup(&sufs, &nic, i);
            let prefix = lookup(&pres, &nic, i);
            let suffix = match (&suffix, &prefix) {
                (None, None) if nic.contains('.') => {
                    out.push(Err(format!("{node}: since '{nic}' contains dot, nics.nichostnamesuffixes.{nic} should be configured without dot for '{nic}' interface.")));
                    continue;
                }
                (None, None) => format!("-{nic}"),
                (Some(s), _) if s.contains('.') => {
                    out.push(Err(format!("{node}: the value '{s}' of nics.nichostnamesuffixes.{nic} should not contain dot.")));
                    continue;
                }
                (s, _) => s.clone().unwrap_or_default(),
            };
            let name = format!("{}{short}{suffix}", prefix.unwrap_or_default());
            let alias = lookup(&alias_list, &nic, i).unwrap_or_default();
            out.push(Ok((name, ip.to_string(), alias)));
        }
    }
    out
}

/// The domain of the network that holds `ip` (networks.domain), else site.domain.
fn domain_for(r: &Resolver, ip: &str) -> anyhow::Result<Option<String>> {
    if let Ok(addr) = ip.parse::<Ipv4Addr>() {
        let nets = r.table("networks")?;
        let (n, m, d) = (
            nets.spec.col_index("net").unwrap_or(0),
            nets.spec.col_index("mask").unwrap_or(0),
            nets.spec.col_index("domain").unwrap_or(0),
        );
        for row in &nets.rows {
            let get = |i: usize| row.get(i).and_then(|v| v.as_deref());
            if let (Some(net), Some(mask), Some(dom)) = (get(n), get(m), get(d)) {
                if let (Ok(net), Ok(mask)) = (net.parse::<Ipv4Addr>(), mask.parse::<Ipv4Addr>()) {
                    if u32::from(addr) & u32::from(mask) == u32::from(net) & u32::from(mask)
                        && !dom.is_empty()
                    {
                        return Ok(Some(dom.to_string()));
                    }
                }
            }
        }
    }
    Ok(r.site("domain")?)
}

pub fn makehosts(db: &DbOpt, a: MakehostsArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let r = Resolver::new(store.clone());
    r.preload(&["hosts", "networks", "nodelist", "site"])?;
    let long_first = a.long_first
        || r.site("FQDNfirst")?
            .is_some_and(|v| ["1", "yes", "enable"].contains(&v.to_ascii_lowercase().as_str()));
    let exp = r.noderange(a.noderange.as_deref().unwrap_or("all"), true)?;
    let nodes = if a.noderange.is_none() {
        r.membership()?.nodes.iter().cloned().collect()
    } else {
        exp.nodes
    };
    let mut failed = a.noderange.is_some() && report_missing(&exp.missing);

    // (names that identify a line, the line) for every entry we own.
    let mut entries: Vec<(Vec<String>, String)> = Vec::new();
    let nic_cols = [
        r.column("nics", "nicips")?,
        r.column("nics", "nichostnamesuffixes")?,
        r.column("nics", "nichostnameprefixes")?,
        r.column("nics", "nicaliases")?,
    ];
    let ip_col = r.column("hosts", "ip")?;
    let other_col = r.column("hosts", "hostnames")?;
    let ifs_col = r.column("hosts", "otherinterfaces")?;
    for n in &nodes {
        let ip = match ip_col.get(n) {
            Ok(Some(ip)) => ip,
            Ok(None) => {
                crate::errln!("Warning: {n} has no hosts.ip; no line written for it");
                continue;
            }
            Err(e) => {
                crate::errln!("{n}: Error: {e}");
                failed = true;
                continue;
            }
        };
        let domain = domain_for(&r, &ip)?;
        let others = other_col.get(n)?.unwrap_or_default();
        entries.push((
            vec![n.clone(), ip.clone()],
            host_line(&ip, n, domain.as_deref(), &others, long_first),
        ));
        // otherinterfaces: `name:ip,name:ip` (xCAT also accepts `name!ip`).
        for pair in ifs_col
            .get(n)?
            .unwrap_or_default()
            .split(',')
            .filter(|p| !p.is_empty())
        {
            let (name, oip) = pair
                .split_once('!')
                .or_else(|| pair.split_once(':'))
                .unwrap_or((pair, ""));
            if oip.parse::<Ipv4Addr>().is_err() {
                crate::errln!(
                    "Warning: {n}: otherinterfaces entry '{pair}' has no valid IP; skipped"
                );
                continue;
            }
            let name = if let Some(suffix) = name.strip_prefix('-') {
                format!("{n}-{suffix}")
            } else {
                name.to_string()
            };
            let d = domain_for(&r, oip)?;
            entries.push((
                vec![name.clone(), oip.to_string()],
                host_line(oip, &name, d.as_deref(), "", long_first),
            ));
        }
        // The nics table (xCAT's donics): one line per NIC address, named
        // <prefix><node><suffix> (suffix "-<nic>" when neither is set), with its aliases.
        let get =
            |i: usize| -> anyhow::Result<String> { Ok(nic_cols[i].get(n)?.unwrap_or_default()) };
        let (ips, sufs, pres, aliases) = (get(0)?, get(1)?, get(2)?, get(3)?);
        for nl in nic_lines(n, &ips, &sufs, &pres, &aliases) {
            match nl {
                Ok((name, nip, alias)) => {
                    let d = domain_for(&r, &nip)?;
                    entries.push((
                        vec![name.clone(), nip.clone()],
                        host_line(&nip, &name, d.as_deref(), &alias, long_first),
                    ));
                }
                Err(e) => {
                    crate::errln!("Error: {e}");
                    failed = true;
                }
            }
        }
    }

    let old = if a.new {
        String::new()
    } else {
        std::fs::read_to_string(&a.file).unwrap_or_default()
    };
    if !a.new && a.file.exists() {
        let bak = a.file.with_extension("xcatbak");
        let bak = if a.file.extension().is_some() {
            bak
        } else {
            PathBuf::from(format!("{}.xcatbak", a.file.display()))
        };
        std::fs::copy(&a.file, &bak)
            .with_context(|| format!("cannot back up {} to {}", a.file.display(), bak.display()))?;
    }
    let mut lines: Vec<String> = if a.new {
        vec!["127.0.0.1 localhost".to_string()]
    } else {
        old.lines().map(str::to_string).collect()
    };
    // A line is ours to replace when its address or any of its names is one of the entry's.
    let matches = |line: &str, keys: &[String]| {
        let t = line.split('#').next().unwrap_or("");
        let mut f = t.split_whitespace();
        match f.next() {
            Some(ip) => {
                keys.iter().any(|k| k == ip)
                    || f.any(|name| keys.first().is_some_and(|k| k == name))
            }
            None => false,
        }
    };
    for (keys, line) in &entries {
        let pos = lines.iter().position(|l| matches(l, keys));
        lines.retain_mut(|l| !matches(l, keys));
        if !a.delete {
            match pos {
                Some(p) if p <= lines.len() => lines.insert(p, line.clone()),
                _ => lines.push(line.clone()),
            }
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    // In place, as xCAT does: /etc/hosts is often a bind mount (containers), which a rename
    // cannot replace. The .xcatbak copy made above is the way back.
    std::fs::write(&a.file, text).with_context(|| format!("cannot write {}", a.file.display()))?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Debug, Args)]
pub struct MakenetworksArgs {
    /// Only show what would be defined (as stanzas chdef -z reads); change nothing
    #[arg(short = 'd', long = "display")]
    display: bool,
    /// Verbose (accepted as xCAT's is)
    #[arg(short = 'V', long = "verbose")]
    verbose: bool,
    /// Ignored, as xCAT's makenetworks ignores them: it always looks at every interface
    #[arg(hide = true)]
    ignored: Vec<String>,
}

/// An interface's MTU, from sysfs.
fn mtu_of(ifname: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/mtu"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// A network found on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundNet {
    pub ifname: String,
    pub net: Ipv4Addr,
    pub mask: Ipv4Addr,
    pub gateway: Option<Ipv4Addr>,
}

impl FoundNet {
    /// xCAT's network object name: `10_0_0_0-255_255_255_0`.
    pub fn netname(&self) -> String {
        format!(
            "{}-{}",
            self.net.to_string().replace('.', "_"),
            self.mask.to_string().replace('.', "_")
        )
    }
}

/// Gateways from the kernel routing table, per interface: `(ifname, gateway)` of routes with one.
fn gateways() -> Vec<(String, Ipv4Addr)> {
    let Ok(text) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let (Some(ifname), Some(gw)) = (f.first(), f.get(2)) {
            if let Ok(raw) = u32::from_str_radix(gw, 16) {
                if raw != 0 {
                    // The kernel prints the address in host (little-endian) byte order.
                    out.push((ifname.to_string(), Ipv4Addr::from(raw.swap_bytes())));
                }
            }
        }
    }
    out
}

/// IPv4 networks on this machine's interfaces (loopback excluded).
pub fn local_networks() -> anyhow::Result<Vec<FoundNet>> {
    let gws = gateways();
    let mut out: Vec<FoundNet> = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().context("cannot list network interfaces")? {
        let (Some(addr), Some(mask)) = (ifa.address, ifa.netmask) else {
            continue;
        };
        let (Some(addr), Some(mask)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) else {
            continue;
        };
        let (ip, mask) = (addr.ip(), mask.ip());
        if ip.is_loopback() || ip.is_link_local() {
            continue;
        }
        let net = Ipv4Addr::from(u32::from(ip) & u32::from(mask));
        let gateway = gws
            .iter()
            .find(|(i, g)| {
                *i == ifa.interface_name && u32::from(*g) & u32::from(mask) == u32::from(net)
            })
            .map(|(_, g)| *g);
        let found = FoundNet {
            ifname: ifa.interface_name.clone(),
            net,
            mask,
            gateway,
        };
        if !out
            .iter()
            .any(|o| o.net == found.net && o.mask == found.mask)
        {
            out.push(found);
        }
    }
    Ok(out)
}

pub fn makenetworks(db: &DbOpt, a: MakenetworksArgs) -> anyhow::Result<ExitCode> {
    let found = local_networks()?;
    if found.is_empty() {
        bail!("no IPv4 network found on this machine's interfaces (other than loopback)");
    }
    if a.display {
        // networks.pm's display: a blank line, "#From <host>.", then the stanza.
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        let mut out = super::stdout();
        for f in &found {
            writeln!(out, "\n#From {host}.")?;
            writeln!(out, "{}:", f.netname())?;
            writeln!(out, "    objtype=network")?;
            writeln!(out, "    net={}", f.net)?;
            writeln!(out, "    mask={}", f.mask)?;
            if let Some(g) = f.gateway {
                writeln!(out, "    gateway={g}")?;
            }
            writeln!(out, "    mgtifname={}", f.ifname)?;
            if let Some(m) = mtu_of(&f.ifname) {
                writeln!(out, "    mtu={m}")?;
            }
        }
        super::finish(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let store = db.open()?;
    let audit = Audit {
        command: "makenetworks".into(),
        noderange: String::new(),
        args: String::new(),
    };
    let added = store.write(Some(&audit), |tx| {
        let mut added = Vec::new();
        for f in &found {
            let (net, mask) = (f.net.to_string(), f.mask.to_string());
            let name = f.netname();
            let named = tx.rows("networks")?.iter().any(|r| {
                r.first().and_then(|v| v.as_deref()) == Some(name.as_str())
            });
            if named || tx.get("networks", &[&net, &mask])?.is_some() {
                crate::errln!("Warning: The network entry '{name}' already exists in xCAT networks table. Cannot create a definition for '{name}'");
                continue;
            }
            let gw = f.gateway.map(|g| g.to_string());
            let mtu = mtu_of(&f.ifname);
            tx.set(
                "networks",
                &[&net, &mask],
                &[
                    ("netname", Some(&name)),
                    ("mgtifname", Some(&f.ifname)),
                    ("gateway", gw.as_deref()),
                    ("mtu", mtu.as_deref()),
                ],
            )?;
            added.push(f.netname());
        }
        Ok(added)
    })?;
    for n in added {
        crate::outln!("Added network {n}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes the lines naming `nodes` (by name, or by their hosts.ip) from a hosts file, in
/// place, keeping a `.xcatbak` copy first (`makehosts -d` for nodepurge).
pub fn remove_hosts_lines(
    r: &Resolver,
    nodes: &[String],
    file: &std::path::Path,
) -> anyhow::Result<()> {
    let old =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let ip_col = r.column("hosts", "ip")?;
    let mut ips = Vec::new();
    for n in nodes {
        if let Some(ip) = ip_col.get(n)? {
            ips.push(ip);
        }
    }
    let mut changed = false;
    let kept: Vec<&str> = old
        .lines()
        .filter(|l| {
            let t = l.split('#').next().unwrap_or("");
            let mut f = t.split_whitespace();
            let drop = match f.next() {
                Some(ip) => ips.iter().any(|x| x == ip) || f.any(|n| nodes.iter().any(|x| x == n)),
                None => false,
            };
            changed |= drop;
            !drop
        })
        .collect();
    if !changed {
        return Ok(());
    }
    let bak = PathBuf::from(format!("{}.xcatbak", file.display()));
    std::fs::copy(file, &bak)
        .with_context(|| format!("cannot back up {} to {}", file.display(), bak.display()))?;
    let mut text = kept.join("\n");
    text.push('\n');
    std::fs::write(file, text).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nic_lines_as_xcat_donics() {
        let l = nic_lines(
            "node01",
            r"ib0!|node(\d+)|10.0.0.($1+20)|,eth1!10.1.0.1|10.2.0.1",
            "eth1!-e1|-e1b",
            "",
            r"ib0!|node(\d+)|m($1)-ib0|",
        );
        let ok: Vec<(String, String, String)> = l.into_iter().map(|x| x.expect("ok")).collect();
        assert_eq!(
            ok,
            [
                ("node01-ib0".into(), "10.0.0.21".into(), "m01-ib0".into()),
                ("node01-e1".into(), "10.1.0.1".into(), String::new()),
                ("node01-e1b".into(), "10.2.0.1".into(), String::new()),
            ]
        );
        let e = nic_lines("n1", "eth0.5!10.0.0.1", "", "", "");
        assert!(e[0].as_ref().is_err_and(|m| m.contains("contains dot")));
    }

    #[test]
    fn host_line_matches_xcat_order() {
        assert_eq!(
            host_line("10.0.0.7", "node007", Some("cluster.com"), "", false),
            "10.0.0.7 node007 node007.cluster.com"
        );
        assert_eq!(
            host_line("10.0.0.7", "node007", Some("cluster.com"), "", true),
            "10.0.0.7 node007.cluster.com node007"
        );
        assert_eq!(
            host_line("10.0.0.7", "n7", None, "alias1,alias2", false),
            "10.0.0.7 n7 alias1 alias2"
        );
    }

    #[test]
    fn netname_is_xcat_style() {
        let f = FoundNet {
            ifname: "eth0".into(),
            net: Ipv4Addr::new(10, 0, 0, 0),
            mask: Ipv4Addr::new(255, 255, 0, 0),
            gateway: None,
        };
        assert_eq!(f.netname(), "10_0_0_0-255_255_0_0");
    }
}
