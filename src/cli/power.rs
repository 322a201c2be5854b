//! `rpower <noderange> <action>`: power control, one line per node, exit 1 when any node failed.
//! This version powers on by Wake-on-LAN (`wake`, and `on`/`boot` for nodes whose `nodehm.mgt`
//! is `wol`); IPMI over LAN is refused with a clear error until it is built.

use std::net::Ipv4Addr;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::nodes::report_missing;
use super::DbOpt;
use crate::power::wol;
use crate::store::resolver::Resolver;
use crate::store::Audit;

#[derive(Debug, Args)]
pub struct RpowerArgs {
    /// Send Wake-on-LAN to this broadcast address instead of the node's own segment
    #[arg(long, value_name = "ADDR")]
    broadcast: Option<Ipv4Addr>,
    /// The nodes
    #[arg(allow_hyphen_values = true)]
    noderange: String,
    /// on, off, reset, boot, cycle, softoff, stat, state, wake
    action: String,
}

const ACTIONS: &[&str] = &[
    "on", "off", "reset", "boot", "cycle", "softoff", "stat", "state", "wake",
];

pub fn rpower(db: &DbOpt, a: RpowerArgs) -> anyhow::Result<ExitCode> {
    if !ACTIONS.contains(&a.action.as_str()) {
        bail!(
            "'{}' is not an rpower action ({})",
            a.action,
            ACTIONS.join(", ")
        );
    }
    let store = db.open()?;
    let r = Resolver::new(store.clone());
    let exp = r.noderange(&a.noderange, true)?;
    let mut failed = report_missing(&exp.missing);
    let local = wol::local_addresses();
    let nets: Vec<(Ipv4Addr, Ipv4Addr)> = {
        let t = r.table("networks")?;
        let (n, m) = (t.spec.col_index("net"), t.spec.col_index("mask"));
        t.rows
            .iter()
            .filter_map(|row| {
                let get = |i: Option<usize>| {
                    i.and_then(|i| row.get(i))
                        .cloned()
                        .flatten()
                        .and_then(|v| v.trim().parse().ok())
                };
                Some((get(n)?, get(m)?))
            })
            .collect()
    };
    let mut woken = Vec::new();
    for node in &exp.nodes {
        let mgt = r.attr(node, "nodehm", "mgt")?.unwrap_or_default();
        let by_wol =
            a.action == "wake" || (mgt == "wol" && matches!(a.action.as_str(), "on" | "boot"));
        if !by_wol {
            let why = if mgt == "wol" {
                format!(
                    "Wake-on-LAN can only power a node on ('{}' needs a BMC)",
                    a.action
                )
            } else {
                format!(
                    "power control over {} is not available in this version of bootherd",
                    if mgt.is_empty() { "ipmi".into() } else { mgt }
                )
            };
            println!("{node}: Error: {why}");
            failed = true;
            continue;
        }
        let macs: Vec<[u8; 6]> = r
            .attr(node, "mac", "mac")?
            .unwrap_or_default()
            .split('|')
            .filter_map(|e| wol::parse_mac(e.split('!').next().unwrap_or("").trim()))
            .collect();
        if macs.is_empty() {
            println!("{node}: Error: no MAC address in mac.mac to wake");
            failed = true;
            continue;
        }
        let target = match a.broadcast {
            Some(b) => Some((Ipv4Addr::UNSPECIFIED, b)),
            None => match r.attr(node, "hosts", "ip")?.and_then(|s| s.parse().ok()) {
                Some(ip) => wol::route(ip, &local, &nets),
                None => None,
            },
        };
        let Some((source, dest)) = target else {
            println!("{node}: Error: cannot tell where {node} can hear a broadcast (no hosts.ip on a local interface's subnet or a networks row); use --broadcast");
            failed = true;
            continue;
        };
        let mut errors = Vec::new();
        for mac in &macs {
            if let Err(e) = wol::send(mac, source, dest) {
                errors.push(e.to_string());
            }
        }
        if errors.is_empty() {
            println!(
                "{node}: wake sent to {dest}:{} ({} MAC{})",
                wol::PORT,
                macs.len(),
                if macs.len() == 1 { "" } else { "s" }
            );
            woken.push(node.clone());
        } else {
            println!(
                "{node}: Error: cannot send to {dest}: {}",
                errors.join("; ")
            );
            failed = true;
        }
    }
    if !woken.is_empty() {
        let now = crate::store::now_xcat();
        let audit = Audit {
            command: "rpower".into(),
            noderange: a.noderange.clone(),
            args: a.action.clone(),
        };
        store.write(Some(&audit), |tx| {
            for n in &woken {
                tx.set(
                    "nodelist",
                    &[n],
                    &[("status", Some("powering-on")), ("statustime", Some(&now))],
                )?;
            }
            Ok(())
        })?;
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
