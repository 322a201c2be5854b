//! Monitoring commands, as xCAT's `monctrlcmds.pm`: `monadd`, `monrm`, `monls`, `monstart`,
//! `monstop` over the `monitoring` and `monsetting` tables, the seed's older `startmon`
//! (monadd + monstart) and `stopmon` (monstop + monrm), and `nodestat` (`nodestat.pm`).
//!
//! The commands only write the tables; `bootherd serve` follows them (the daemon's xcatmon
//! service starts probing when the `xcatmon` row is enabled with `nodestatmon`, and stops when
//! it is disabled), where xCAT's plug-in added and removed a cron line.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use clap::Args;

use super::nodes::report_missing;
use super::DbOpt;
use crate::monitor::{self, PLUGINS, PLUGIN_DIR};
use crate::store::resolver::Resolver;
use crate::store::{Audit, Store};

#[derive(Debug, Args)]
pub struct MonaddArgs {
    /// The plug-in feeds node liveness into nodelist.status
    #[arg(short = 'n', long = "nodestatmon")]
    nodestatmon: bool,
    /// A plug-in setting key=value (repeatable; also xCAT's old [key=value],[key=value] form)
    #[arg(short = 's', long = "settings", value_name = "SETTINGS")]
    settings: Vec<String>,
    /// The plug-in
    name: String,
}

#[derive(Debug, Args)]
pub struct MonrmArgs {
    /// The plug-in
    name: String,
}

#[derive(Debug, Args)]
pub struct MonlsArgs {
    /// Every plug-in this bootherd has, not only those in the monitoring table
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Also the plug-ins' descriptions and settings
    #[arg(short = 'd', long = "description", alias = "discription")]
    description: bool,
    /// One plug-in
    name: Option<String>,
}

#[derive(Debug, Args)]
pub struct MonstartArgs {
    /// Also on the nodes (xcatmon has nothing to run there)
    #[arg(short = 'r', long = "remote")]
    remote: bool,
    /// The plug-in
    name: String,
    /// The nodes (default: all)
    noderange: Option<String>,
}

#[derive(Debug, Args)]
pub struct StartmonArgs {
    /// The plug-in feeds node liveness into nodelist.status
    #[arg(short = 'n', long = "nodestatmon")]
    nodestatmon: bool,
    /// Plug-in settings: key=value[,key=value…] (repeatable)
    #[arg(short = 's', long = "settings", value_name = "SETTINGS")]
    settings: Vec<String>,
    /// The plug-in
    name: String,
}

#[derive(Debug, Args)]
pub struct StopmonArgs {
    /// The plug-in
    name: String,
}

#[derive(Debug, Args)]
pub struct NodestatArgs {
    /// Ask about the applications of the monsetting table (name=xcatmon, key=apps)
    #[arg(short = 'm', long = "usemon")]
    usemon: bool,
    /// Write the status into nodelist.status and appstatus
    #[arg(short = 'u', long = "updatedb")]
    updatedb: bool,
    /// For nodes that do not answer, their power state (rpower stat)
    #[arg(short = 'p', long = "powerstat")]
    powerstat: bool,
    /// Print nothing (with -u: only update the table)
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// The nodes
    #[arg(allow_hyphen_values = true)]
    noderange: Option<String>,
}

fn audit(cmd: &str, noderange: &str, args: String) -> Audit {
    Audit {
        command: cmd.into(),
        noderange: noderange.into(),
        args,
    }
}

fn known(name: &str) -> bool {
    PLUGINS.contains(&name)
}

fn plugin_file(name: &str) -> String {
    format!("{PLUGIN_DIR}/{name}.pm")
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Parses monadd's settings: `key=value`, or the old `[key=value],[key=value]`.
fn parse_settings(items: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for s in items {
        let t = s.trim();
        if t.starts_with('[') && t.ends_with(']') {
            for part in t.split("],") {
                let p = part.trim_start_matches('[').trim_end_matches(']');
                match p.split_once('=') {
                    Some((k, v)) if !k.is_empty() => out.push((k.to_string(), v.to_string())),
                    _ => bail!("the setting '{p}' is not key=value"),
                }
            }
        } else {
            match t.split_once('=') {
                Some((k, v)) if !k.is_empty() => out.push((k.to_string(), v.to_string())),
                _ => bail!("the setting '{t}' is not key=value"),
            }
        }
    }
    Ok(out)
}

fn add(
    store: &Store,
    name: &str,
    nodestatmon: bool,
    settings: &[(String, String)],
    a: &Audit,
) -> anyhow::Result<()> {
    store.write(Some(a), |tx| {
        for (k, v) in settings {
            tx.set("monsetting", &[name, k], &[("value", Some(v))])?;
        }
        tx.set(
            "monitoring",
            &[name],
            &[
                ("nodestatmon", Some(if nodestatmon { "Y" } else { "N" })),
                ("disable", Some("1")),
            ],
        )
    })?;
    Ok(())
}

pub fn monadd(db: &DbOpt, a: MonaddArgs) -> anyhow::Result<ExitCode> {
    if !known(&a.name) {
        crate::outln!("File {} does not exist.", plugin_file(&a.name));
        return Ok(ExitCode::from(1));
    }
    let settings = parse_settings(&a.settings)?;
    let store = db.open()?;
    let mut args = vec![a.name.clone()];
    if a.nodestatmon {
        args.push("-n".into());
    }
    for s in &a.settings {
        args.push(format!("-s {s}"));
    }
    add(
        &store,
        &a.name,
        a.nodestatmon,
        &settings,
        &audit("monadd", "", args.join(" ")),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// monrm: 0 with a message when the plug-in is not in the table or still runs (as xCAT).
fn remove(store: &Store, name: &str, a: &Audit) -> anyhow::Result<()> {
    let rows = monitor::monitoring_rows(store)?;
    let Some(row) = rows.iter().find(|r| r.name == name) else {
        crate::outln!("{name} is not in the monitoring talble.");
        return Ok(());
    };
    if row.enabled {
        crate::outln!(
            "Please run command 'monstop {name}' to stop monitoring before running this command."
        );
        return Ok(());
    }
    store.write(Some(a), |tx| tx.delete("monitoring", &[name]))?;
    Ok(())
}

pub fn monrm(db: &DbOpt, a: MonrmArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    remove(&store, &a.name, &audit("monrm", "", a.name.clone()))?;
    Ok(ExitCode::SUCCESS)
}

fn ls_line(name: &str, row: Option<&monitor::MonRow>, description: bool) {
    match row {
        Some(r) if r.enabled => crate::outln!(
            "{name}\t\tmonitored{}",
            if r.nodestatmon {
                "\tnode-status-monitored"
            } else {
                ""
            }
        ),
        _ => crate::outln!("{name}\t\tnot-monitored"),
    }
    if description {
        // getModuleDescription: the description, the postscripts, node status support.
        crate::outln!("{}", monitor::XCATMON_DESCRIPTION);
        crate::outln!("  Postscripts:\n    None");
        crate::outln!("  Support node status monitoring:\n    Yes\n");
    }
}

pub fn monls(db: &DbOpt, a: MonlsArgs) -> anyhow::Result<ExitCode> {
    let store = db.open_existing()?;
    let rows = monitor::monitoring_rows(&store)?;
    // The names asked about (the table's when none and no -a), as monctrlcmds.pm's %names.
    let mut names: Vec<(String, bool)> = match (&a.name, a.all) {
        (Some(n), _) => vec![(n.clone(), false)],
        (None, true) => PLUGINS.iter().map(|p| (p.to_string(), false)).collect(),
        (None, false) => Vec::new(),
    };
    let use_table = a.name.is_none() && !a.all;
    for r in &rows {
        let listed = names.iter().position(|(n, _)| *n == r.name);
        if !use_table && listed.is_none() {
            continue;
        }
        if let Some(i) = listed {
            names[i].1 = true;
        }
        if !known(&r.name) {
            crate::outln!(
                "{}: The file {} cannot be located or has compiling errors.",
                r.name,
                plugin_file(&r.name)
            );
            continue;
        }
        ls_line(&r.name, Some(r), a.description);
    }
    for (n, done) in names {
        if done {
            continue;
        }
        if !known(&n) {
            crate::outln!(
                "{n}: The file {} cannot be located or has compiling errors.",
                plugin_file(&n)
            );
            continue;
        }
        ls_line(&n, None, a.description);
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks the noderange the way monstart/monstop do ("Invalid nodes in noderange:…").
fn check_noderange(store: &Arc<Store>, nr: Option<&str>) -> anyhow::Result<bool> {
    let Some(nr) = nr else {
        return Ok(true);
    };
    let r = Resolver::new(store.clone());
    let exp = r.noderange(nr, true)?;
    if !exp.missing.is_empty() {
        crate::outln!("Invalid nodes in noderange:{}", exp.missing.join(","));
        return Ok(false);
    }
    Ok(true)
}

/// Sets the plug-in's row enabled or disabled; the row as it was, or None when there is none.
fn set_enabled(
    store: &Store,
    name: &str,
    enable: bool,
    a: &Audit,
) -> anyhow::Result<Option<monitor::MonRow>> {
    let rows = monitor::monitoring_rows(store)?;
    let Some(row) = rows.into_iter().find(|r| r.name == name) else {
        return Ok(None);
    };
    if row.enabled != enable {
        store.write(Some(a), |tx| {
            tx.set(
                "monitoring",
                &[name],
                &[("disable", Some(if enable { "0" } else { "1" }))],
            )
        })?;
    }
    Ok(Some(row))
}

fn start(
    store: &Arc<Store>,
    name: &str,
    noderange: Option<&str>,
    a: &Audit,
) -> anyhow::Result<bool> {
    if !check_noderange(store, noderange)? {
        return Ok(false);
    }
    if !known(name) {
        crate::outln!("File {} does not exist.", plugin_file(name));
        return Ok(false);
    }
    let Some(row) = set_enabled(store, name, true, a)? else {
        crate::outln!(
            "{name} has not been added to the monitoring table. Please run 'monadd' command to add."
        );
        return Ok(false);
    };
    if row.nodestatmon {
        let interval = monitor::ping_interval(&monitor::settings(store, name)?);
        crate::outln!(
            "{}: started. Refresh interval is {} minute(s).",
            hostname(),
            monitor::minutes_text(interval)
        );
    }
    Ok(true)
}

fn stop(
    store: &Arc<Store>,
    name: &str,
    noderange: Option<&str>,
    a: &Audit,
) -> anyhow::Result<bool> {
    if !check_noderange(store, noderange)? {
        return Ok(false);
    }
    if !known(name) {
        crate::outln!("File {} does not exist.", plugin_file(name));
        return Ok(false);
    }
    let Some(row) = set_enabled(store, name, false, a)? else {
        crate::outln!("{name} cannot be found in the monitoring table.");
        return Ok(false);
    };
    if row.nodestatmon {
        crate::outln!("{}: stopped.", hostname());
    }
    Ok(true)
}

fn code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

pub fn monstart(db: &DbOpt, a: MonstartArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let nr = a.noderange.clone().unwrap_or_default();
    let ok = start(
        &store,
        &a.name,
        a.noderange.as_deref(),
        &audit("monstart", &nr, a.name.clone()),
    )?;
    Ok(code(ok))
}

pub fn monstop(db: &DbOpt, a: MonstartArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let nr = a.noderange.clone().unwrap_or_default();
    let ok = stop(
        &store,
        &a.name,
        a.noderange.as_deref(),
        &audit("monstop", &nr, a.name.clone()),
    )?;
    Ok(code(ok))
}

/// The seed's `startmon name [-n] [-s tag=value,tag=value…]`: registers and starts.
pub fn startmon(db: &DbOpt, a: StartmonArgs) -> anyhow::Result<ExitCode> {
    if !known(&a.name) {
        crate::outln!("File {} does not exist.", plugin_file(&a.name));
        return Ok(ExitCode::from(1));
    }
    // The old form separates settings with commas.
    let split: Vec<String> = a
        .settings
        .iter()
        .flat_map(|s| {
            if s.trim_start().starts_with('[') {
                vec![s.clone()]
            } else {
                s.split(',').map(str::to_string).collect()
            }
        })
        .collect();
    let settings = parse_settings(&split)?;
    let store = db.open()?;
    let au = audit("startmon", "", a.name.clone());
    add(&store, &a.name, a.nodestatmon, &settings, &au)?;
    Ok(code(start(&store, &a.name, None, &au)?))
}

/// The seed's `stopmon name`: stops and unregisters.
pub fn stopmon(db: &DbOpt, a: StopmonArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let au = audit("stopmon", "", a.name.clone());
    if !stop(&store, &a.name, None, &au)? {
        return Ok(ExitCode::from(1));
    }
    remove(&store, &a.name, &au)?;
    Ok(ExitCode::SUCCESS)
}

/// `rpower <nodes> stat` through this same binary, as nodestat.pm's runxcmd: node → state.
fn power_states(db: &DbOpt, nodes: &[String]) -> Vec<(String, String)> {
    let Ok(exe) = std::env::current_exe() else {
        return Vec::new();
    };
    let out = std::process::Command::new(exe)
        .arg("--db")
        .arg(&db.db)
        .arg("rpower")
        .arg(nodes.join(","))
        .arg("stat")
        .stdin(std::process::Stdio::null())
        .output();
    let Ok(o) = out else {
        return Vec::new();
    };
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let (n, s) = l.split_once(": ")?;
            Some((n.to_string(), s.to_string()))
        })
        .collect()
}

pub fn nodestat(db: &DbOpt, a: NodestatArgs) -> anyhow::Result<ExitCode> {
    let Some(nr) = a.noderange.clone() else {
        if let Some(u) = super::usage::find("nodestat") {
            return Ok(super::usage::bad_command_line(u, "nodestat"));
        }
        bail!("a noderange is needed");
    };
    let store = if a.updatedb {
        db.open()?
    } else {
        db.open_existing()?
    };
    let r = Arc::new(Resolver::new(store.clone()));
    r.preload(&[
        "nodelist",
        "nodegroup",
        "hosts",
        "chain",
        "nodetype",
        "site",
    ])?;
    let exp = r.noderange(&nr, true)?;
    if report_missing(&exp.missing) {
        return Ok(ExitCode::from(1));
    }
    if exp.nodes.is_empty() {
        bail!("no nodes in '{nr}'");
    }
    let opts = monitor::StatOpts {
        usemon: a.usemon,
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let nodes = exp.nodes.clone();
    let mut stats = match rt.block_on(monitor::nodestat(r.clone(), nodes, &opts)) {
        Ok(s) => s,
        Err(msg) => {
            crate::outln!("{msg}");
            return Ok(ExitCode::SUCCESS);
        }
    };
    if a.powerstat {
        let noping: Vec<String> = stats
            .iter()
            .filter(|s| s.status == "noping")
            .map(|s| s.node.clone())
            .collect();
        if !noping.is_empty() {
            for (n, st) in power_states(db, &noping) {
                if let Some(s) = stats.iter_mut().find(|s| s.node == n) {
                    s.status = format!("noping({st})");
                }
            }
        }
    }
    if !a.quiet {
        let mut out = super::stdout();
        use std::io::Write;
        for s in &stats {
            writeln!(out, "{}: {}", s.node, s.display())?;
        }
        super::finish(out)?;
    }
    if a.updatedb {
        let mut args = Vec::new();
        for (f, on) in [
            ("-m", a.usemon),
            ("-u", true),
            ("-p", a.powerstat),
            ("-q", a.quiet),
        ] {
            if on {
                args.push(f);
            }
        }
        monitor::update(
            &store,
            &stats,
            Some(&audit("nodestat", &nr, args.join(" "))),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// Only the newest N events
    #[arg(long, value_name = "N")]
    last: Option<usize>,
    /// The node (or mac:<address> for a machine that is no node yet)
    node: String,
}

/// `bootherd timeline <node>`: the node's boot steps as the daemon recorded them, oldest first.
pub fn timeline(db: &DbOpt, a: TimelineArgs) -> anyhow::Result<ExitCode> {
    let store = db.open_existing()?;
    let events = crate::timeline::events(&store, &a.node)?;
    if events.is_empty() {
        let r = Resolver::new(store.clone());
        if !a.node.starts_with("mac:") && !r.membership()?.nodes.contains(&a.node) {
            bail!("{} is not a node", a.node);
        }
        crate::outln!("{}: no boot events recorded", a.node);
        return Ok(ExitCode::SUCCESS);
    }
    let skip = a.last.map(|n| events.len().saturating_sub(n)).unwrap_or(0);
    let mut out = super::stdout();
    use std::io::Write;
    for e in &events[skip..] {
        writeln!(out, "{}", crate::timeline::line(e))?;
    }
    super::finish(out)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_forms() {
        let s = parse_settings(&["ping-interval=2".into(), "[a=1],[b=x=y]".into()]).unwrap();
        assert_eq!(
            s,
            vec![
                ("ping-interval".into(), "2".into()),
                ("a".into(), "1".into()),
                ("b".into(), "x=y".into())
            ]
        );
        assert!(parse_settings(&["novalue".into()]).is_err());
    }
}
