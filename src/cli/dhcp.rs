//! `makedhcp`: xCAT's command, for a DHCP server that reads the store itself. Nothing has to be
//! pushed to the daemon any more, so `makedhcp` checks and shows: `-n` creates the OMAPI key and
//! checks the whole configuration, `<noderange>`/`-a` report what each node will get, `-q` shows
//! the lease each node holds, and `-d` drops nodes' leases.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context};
use base64::Engine;
use clap::Args;

use super::nodes::report_missing;
use super::DbOpt;
use crate::dhcp::bootfile::{self, ClientKind};
use crate::dhcp::config::{self, DhcpView};
use crate::store::resolver::Resolver;
use crate::store::Audit;

#[derive(Debug, Args)]
pub struct MakedhcpArgs {
    /// Create the OMAPI key if missing and check the whole DHCP configuration
    #[arg(short = 'n')]
    new: bool,
    /// Every node (same as giving the noderange `all`)
    #[arg(short = 'a')]
    all: bool,
    /// Drop the nodes' leases
    #[arg(short = 'd', conflicts_with = "query")]
    delete: bool,
    /// Show each node's MAC, address, lease state and boot file
    #[arg(short = 'q')]
    query: bool,
    /// The nodes
    #[arg(allow_hyphen_values = true)]
    noderange: Option<String>,
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

/// A fresh OMAPI secret as xCAT makes it: base64 of 32 random printable characters.
fn new_secret() -> anyhow::Result<String> {
    let mut raw = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut raw))
        .context("cannot read /dev/urandom")?;
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let chars: Vec<u8> = raw
        .iter()
        .map(|b| ALNUM[*b as usize % ALNUM.len()])
        .collect();
    Ok(base64::engine::general_purpose::STANDARD.encode(chars))
}

/// What is wrong: the configuration's own errors (a broken network or node entry), and warnings
/// about this machine (no site.dhcpinterfaces, an interface that is not here, no networks yet, no
/// OMAPI key), which xCAT's `makedhcp -n` also only warns about.
fn check(r: &Resolver, view: &DhcpView) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let broken = view.problems.clone();
    let mut problems = Vec::new();
    let addrs: Vec<(String, std::net::Ipv4Addr)> = nix::ifaddrs::getifaddrs()
        .map(|it| {
            it.filter_map(|i| {
                i.address.and_then(|a| {
                    a.as_sockaddr_in()
                        .map(|s| (i.interface_name.clone(), s.ip()))
                })
            })
            .collect()
        })
        .unwrap_or_default();
    match &view.interfaces {
        None => problems.push(
            "site.dhcpinterfaces is not set: bootherd serves every interface on a defined network"
                .into(),
        ),
        Some(list) if list.is_empty() => problems.push(format!(
            "site.dhcpinterfaces names no interface for this machine ({})",
            hostname()
        )),
        Some(list) => {
            for i in list {
                match addrs.iter().find(|(n, _)| *n == i.name) {
                    None => problems.push(format!(
                        "site.dhcpinterfaces: {} has no IPv4 address on this machine",
                        i.name
                    )),
                    Some((_, a)) if !view.subnets.iter().any(|s| s.contains(*a)) => {
                        problems.push(format!(
                            "{} ({a}) is on no network of the networks table (run makenetworks)",
                            i.name
                        ))
                    }
                    _ => {}
                }
            }
        }
    }
    if view.subnets.is_empty() {
        problems.push("the networks table is empty (run makenetworks or mkdef -t network)".into());
    }
    let key = r
        .site("dhcpomapikeyname")?
        .unwrap_or_else(|| "xcat_key".into());
    if r.store().get("passwd", &["omapi", &key])?.is_none() {
        problems.push(format!(
            "no OMAPI key (passwd key=omapi username={key}); makedhcp -n creates it"
        ));
    }
    Ok((broken, problems))
}

pub fn makedhcp(db: &DbOpt, a: MakedhcpArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let r = Resolver::new(store.clone());
    if a.new {
        let key = r
            .site("dhcpomapikeyname")?
            .unwrap_or_else(|| "xcat_key".into());
        if store.get("passwd", &["omapi", &key])?.is_none() {
            let secret = new_secret()?;
            let audit = Audit {
                command: "makedhcp".into(),
                noderange: String::new(),
                args: "-n".into(),
            };
            store.write(Some(&audit), |tx| {
                tx.set("passwd", &["omapi", &key], &[("password", Some(&secret))])
            })?;
            crate::outln!("Created the OMAPI key '{key}' (passwd key=omapi).");
            r.invalidate("passwd");
        }
        let view = config::build(&r, &hostname())?;
        let (broken, warnings) = check(&r, &view)?;
        for p in &warnings {
            crate::errln!("Warning: {p}");
        }
        for p in &broken {
            crate::errln!("Error: {p}");
        }
        crate::outln!(
            "DHCP configuration: {} network(s), {} node MAC(s), lease time {} s, {} problem(s).",
            view.subnets.len(),
            view.hosts.len(),
            view.lease_time,
            broken.len() + warnings.len()
        );
        if a.noderange.is_none() && !a.all {
            return Ok(if broken.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
    }
    let range = match (&a.noderange, a.all) {
        (Some(r), _) => r.clone(),
        (None, true) => "all".into(),
        (None, false) if a.new => return Ok(ExitCode::SUCCESS),
        (None, false) => bail!("give a noderange or -a (see makedhcp --help)"),
    };
    // -a is every node, whatever groups they are in.
    let (nodes, mut failed) = if a.all && a.noderange.is_none() {
        (r.membership()?.nodes.iter().cloned().collect(), false)
    } else {
        let exp = r.noderange(&range, true)?;
        let failed = report_missing(&exp.missing);
        (exp.nodes, failed)
    };

    if a.delete {
        let audit = Audit {
            command: "makedhcp".into(),
            noderange: range.clone(),
            args: "-d".into(),
        };
        let view = config::build(&r, &hostname())?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .to_string();
        let n = store.write(Some(&audit), |tx| {
            let mut n = 0;
            for node in &nodes {
                // The host entry is gone until `makedhcp <node>`, `-a` or discovery adds it back.
                tx.set("dhcpexcluded", &[node], &[("removed", Some(&now))])?;
                n += tx.delete_where("dhcpleases", "node", node)?;
                for (mac, h) in &view.hosts {
                    if h.node == *node {
                        n += tx.delete_where("dhcpleases", "mac", mac)?;
                    }
                }
            }
            Ok(n)
        })?;
        crate::outln!("{n} lease(s) removed.");
        return Ok(if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }

    let wanted: std::collections::HashSet<&String> = nodes.iter().collect();
    let excluded: std::collections::BTreeSet<String> = store
        .rows("dhcpexcluded")?
        .into_iter()
        .filter_map(|row| row.into_iter().next().flatten())
        .filter(|n| wanted.contains(n))
        .collect();
    if !a.query && !excluded.is_empty() {
        // Adding a node (by name or -a) puts back the host entry `makedhcp -d` removed.
        let audit = Audit {
            command: "makedhcp".into(),
            noderange: range.clone(),
            args: if a.all { "-a".into() } else { String::new() },
        };
        store.write(Some(&audit), |tx| {
            for node in &excluded {
                tx.delete("dhcpexcluded", &[node])?;
            }
            Ok(())
        })?;
        r.invalidate("dhcpexcluded");
    }
    let view = config::build(&r, &hostname())?;
    let leases = store.rows("dhcpleases")?;
    let mut out = super::stdout();
    for node in &nodes {
        let entries: Vec<(&String, &config::HostEntry)> =
            view.hosts.iter().filter(|(_, h)| h.node == *node).collect();
        if a.query && excluded.contains(node) {
            // xCAT's -q asks dhcpd for the host and prints nothing when it has none.
            continue;
        }
        if entries.is_empty() {
            // A warning in xCAT too: the other nodes are still defined.
            out.flush()?;
            crate::errln!("Warning: Unable to find mac address for {node}");
            continue;
        }
        let mut entries = entries;
        entries.sort_by(|x, y| x.0.cmp(y.0));
        for (mac, h) in entries {
            if h.noip {
                writeln!(
                    out,
                    "{node}: hardware-address = {mac}, deny booting (*NOIP*)"
                )?;
                continue;
            }
            let Some(ip) = h.ip else {
                // xCAT warns and still defines the MAC, which then gets a dynamic address.
                out.flush()?;
                crate::errln!(
                    "Warning: The hostname {} of node {node} could not be resolved.",
                    h.hostname
                );
                writeln!(out, "{node}: {mac} -> dynamic address (no hosts.ip)")?;
                continue;
            };
            let Some(subnet) = view.subnets.iter().find(|s| s.contains(ip)) else {
                writeln!(
                    out,
                    "{node}: Error: {ip} is on no network of the networks table"
                )?;
                failed = true;
                continue;
            };
            let server = h.tftpserver.or(subnet.tftpserver);
            let next = server
                .map(|s| s.to_string())
                .unwrap_or_else(|| "<this server>".into());
            let boot = |arch: u16, ipxe: bool| -> String {
                let Some(nb) = &h.netboot else {
                    return "(no noderes.netboot)".into();
                };
                let c = ClientKind {
                    arch: Some(arch),
                    ipxe,
                    vendor_class: None,
                };
                let b = bootfile::for_node(
                    node,
                    nb,
                    &c,
                    server.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
                    h.local_boot,
                );
                b.filename
                    .or(b.conf_file.map(|c| format!("conf-file {c}")))
                    .unwrap_or_default()
                    .replace("0.0.0.0", "<this server>")
            };
            if a.query {
                let lease = leases
                    .iter()
                    .find(|l| l.get(1).and_then(|v| v.as_deref()) == Some(mac.as_str()));
                let state = match lease {
                    Some(l) => {
                        let st = l.get(7).cloned().flatten().unwrap_or_default();
                        let ends = l
                            .get(6)
                            .cloned()
                            .flatten()
                            .and_then(|e| e.parse::<i64>().ok())
                            .unwrap_or(0);
                        format!("{st} until {}", crate::store::xcat_time(ends))
                    }
                    None => "none".into(),
                };
                writeln!(
                    out,
                    "{node}: ip-address = {ip}, hardware-address = {mac}, lease = {state}, filename = {}",
                    boot(0, false)
                )?;
            } else {
                writeln!(
                    out,
                    "{node}: {mac} -> {ip} on {} (next-server {next}; BIOS: {}; UEFI: {}; iPXE: {})",
                    subnet.name,
                    boot(0, false),
                    boot(7, false),
                    boot(0, true)
                )?;
            }
        }
    }
    super::finish(out)?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
