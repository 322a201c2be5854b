//! `switchprobe [switch …]`: polls switches over SNMP and prints, per port, the MACs it learned
//! and the node the `switch` table puts there, in xCAT's layout:
//!
//! ```text
//! Switch  Port(MTU)       MAC address(VLAN)           Node
//! --------------------------------------------------------------------------------------
//! sw1     Gi1/0/7(1500)   52:54:00:12:34:56(10)       n5
//! sw1     Gi1/0/8(1500)   N/A
//! --------------------------------------------------------------------------------------
//! ```
//!
//! `--mac MAC` asks what node discovery asks instead: where each MAC is cabled and whose port
//! that is, one sentence per MAC (exit 1 unless every MAC names one node).
//!
//! A switch that cannot be polled is reported as `sw3: Error: …` on stderr after the table, the
//! others are still listed, and the exit status is 1. `-c` only checks that each switch answers
//! (`sw1: PASS`). Switches come from the `switch` and `switches` tables
//! ([`crate::discovery::switchmap`]).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use super::DbOpt;
use crate::discovery::switchmap::{config_from_store, SwitchMapper};
use crate::discovery::MacAddr;
use crate::store::resolver::Resolver;

#[derive(Debug, Args)]
pub struct SwitchprobeArgs {
    /// Only check that each switch answers (prints PASS or the error)
    #[arg(short = 'c', long = "check")]
    check: bool,
    /// Say on stderr how each poll went (address, time, counts)
    #[arg(short = 'V', long = "verbose")]
    verbose: bool,
    /// Seconds to wait for each SNMP answer
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    timeout: f64,
    /// Times to resend an unanswered SNMP request
    #[arg(long, value_name = "N", default_value_t = 2)]
    retries: u32,
    /// Instead of the port table: where is this MAC cabled, and which node is that (repeatable;
    /// polls the switches of the switch table, as node discovery does)
    #[arg(long = "mac", value_name = "MAC")]
    macs: Vec<String>,
    /// The switches to probe (names, or comma-separated lists; default: all)
    switches: Vec<String>,
}

pub fn switchprobe(db: &DbOpt, a: SwitchprobeArgs) -> anyhow::Result<ExitCode> {
    if !(a.timeout.is_finite() && a.timeout > 0.0 && a.timeout <= 600.0) {
        bail!("--timeout must be a number of seconds between 0 and 600");
    }
    // RUST_LOG=async_snmp=debug shows the SNMP exchanges when a switch will not talk.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let store = db.open()?;
    let r = Resolver::new(store);
    let mut cfg = config_from_store(&r)?;
    for w in &cfg.warnings {
        crate::errln!("Warning: {w}");
    }
    cfg.settings.timeout = Duration::from_secs_f64(a.timeout);
    cfg.settings.retries = a.retries;
    let only: Vec<String> = a
        .switches
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if cfg.switches.is_empty() {
        bail!("No switch configuration info: no switch is named in the switch or switches table");
    }
    let mapper = SwitchMapper::new(cfg);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    if !a.macs.is_empty() {
        if !only.is_empty() {
            bail!("--mac asks every switch of the switch table; name no switches with it");
        }
        let macs = a
            .macs
            .iter()
            .map(|m| m.parse::<MacAddr>())
            .collect::<Result<Vec<_>, _>>()?;
        let located = rt.block_on(mapper.locate(&macs));
        let mut out = super::stdout();
        for m in &located.macs {
            writeln!(out, "{m}")?;
        }
        super::finish(out)?;
        let all = located.macs.iter().all(|m| m.node().is_some());
        return Ok(if all {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let reports = rt.block_on(mapper.probe(&only));
    let cfg = mapper.config();

    let mut out = super::stdout();
    let mut failed = Vec::new();
    if a.verbose {
        for rep in &reports {
            let addr = rep
                .address
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into());
            match &rep.result {
                Ok(t) => crate::errln!(
                    "{}: polled {addr} in {:.2} s: {} ports, {} MACs ({})",
                    rep.switch,
                    rep.took.as_secs_f64(),
                    t.ports.len(),
                    t.mac_count(),
                    if t.qbridge {
                        "Q-BRIDGE-MIB"
                    } else {
                        "BRIDGE-MIB"
                    }
                ),
                Err(_) => crate::errln!(
                    "{}: {addr} failed after {:.2} s",
                    rep.switch,
                    rep.took.as_secs_f64()
                ),
            }
        }
    }
    if a.check {
        for rep in &reports {
            match &rep.result {
                Ok(_) => writeln!(out, "{}: PASS", rep.switch)?,
                Err(e) => failed.push(format!("{}: Error: {e}", rep.switch)),
            }
        }
    } else {
        let ok: Vec<_> = reports
            .iter()
            .filter_map(|r| r.result.as_ref().ok().map(|t| (r, t)))
            .collect();
        // xCAT's column widths: the longest switch name; the longest port name plus 10 for "(MTU)".
        let sw_w = reports.iter().map(|r| r.switch.len()).max().unwrap_or(0);
        let port_w = ok
            .iter()
            .flat_map(|(_, t)| t.ports.iter().map(|p| p.name.len() + 10))
            .max()
            .unwrap_or(0);
        let line = |sw: &str, port: &str, mac: &str, node: &str| {
            format!("{sw:<sw_w$}  {port:<port_w$}  {mac:<26}  {node}")
                .trim_end()
                .to_string()
        };
        let rule = "-".repeat(86);
        if port_w > 0 {
            writeln!(
                out,
                "{}",
                line("Switch", "Port(MTU)", "MAC address(VLAN)", "Node")
            )?;
            writeln!(out, "{rule}")?;
        }
        for (rep, t) in &ok {
            for p in &t.ports {
                let port = match p.mtu {
                    Some(m) => format!("{}({m})", p.name),
                    None => p.name.clone(),
                };
                let nodes = cfg.nodes_on(&rep.switch, &p.name).join(",");
                if p.macs.is_empty() {
                    writeln!(out, "{}", line(&rep.switch, &port, "N/A", &nodes))?;
                }
                for l in &p.macs {
                    let mac = match l.vlan {
                        Some(v) => format!("{}({v})", l.mac),
                        None => l.mac.to_string(),
                    };
                    writeln!(out, "{}", line(&rep.switch, &port, &mac, &nodes))?;
                }
            }
        }
        if port_w > 0 {
            writeln!(out, "{rule}")?;
        }
        for rep in &reports {
            if let Err(e) = &rep.result {
                failed.push(format!("{}: Error: {e}", rep.switch));
            }
        }
    }
    super::finish(out)?;
    for f in &failed {
        crate::errln!("{f}");
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
