//! `makeconservercf [-d] [-t hosts] [-C] [-V] [noderange]`: conserver's configuration from the
//! nodehm table (cons, serialport, mgt, conserver, termserver, termport, consoleondemand), in the
//! layout xCAT's conserver.pm writes: the `access *` and `default *` headers, terminal-server
//! defaults (`#xCAT BEGIN <ts> TS`), and one `#xCAT BEGIN <node> CONS` stanza per node. IPMI
//! consoles exec this binary's `rcons <node> -f` (our own SOL client) where xCAT execs its
//! `share/xcat/cons/ipmi`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::nodes::report_missing;
use super::DbOpt;
use crate::store::resolver::Resolver;

#[derive(Debug, Args)]
pub struct MakeconservercfArgs {
    /// Remove the nodes' entries
    #[arg(short = 'd', long = "delete")]
    delete: bool,
    /// More trusted hosts (comma-separated)
    #[arg(short = 't', long = "trust")]
    trust: Option<String>,
    /// Remove the entries of nodes that are no longer defined
    #[arg(short = 'C', long = "cleanup")]
    cleanup: bool,
    /// Show what is written
    #[arg(short = 'V', long = "verbose")]
    verbose: bool,
    /// The file to write
    #[arg(
        long = "file",
        default_value = "/etc/conserver.cf",
        value_name = "PATH"
    )]
    file: PathBuf,
    /// The nodes (default: all)
    #[arg(allow_hyphen_values = true)]
    noderange: Option<String>,
}

/// Terminal-server console methods: the node's port on `termserver` (xCAT's @cservers).
const TERMINAL_SERVERS: &[&str] = &["mrv", "cyclades"];

/// One node's console settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsEnt {
    pub node: String,
    pub cons: String,
    pub conserver: Option<String>,
    pub termserver: Option<String>,
    pub termport: Option<String>,
    pub ondemand: Option<String>,
}

/// Removes every `#xCAT BEGIN … <kind>` … `#xCAT END` block whose name `drop` says so.
fn strip_blocks(lines: &mut Vec<String>, kind: &str, drop: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::with_capacity(lines.len());
    let mut removed = Vec::new();
    let mut skipping: Option<String> = None;
    for l in lines.drain(..) {
        let mut w = l.split_whitespace();
        let tag = (w.next(), w.next(), w.next(), w.next());
        if let (Some("#xCAT"), Some(be), Some(name), Some(k)) = tag {
            if k == kind {
                if be == "BEGIN" && skipping.is_none() && drop(name) {
                    skipping = Some(name.to_string());
                    removed.push(name.to_string());
                    continue;
                }
                if be == "END" && skipping.as_deref() == Some(name) {
                    skipping = None;
                    continue;
                }
            }
        }
        if skipping.is_none() {
            out.push(l);
        }
    }
    *lines = out;
    removed
}

/// The headers xCAT puts first (replacing `access *` and `default *` blocks already there).
fn headers(lines: &mut Vec<String>, trusted: &[String], ondemand: bool) {
    let meat: Vec<&String> = lines.iter().filter(|l| !l.starts_with('#')).collect();
    let mut new = Vec::new();
    if !meat.iter().any(|l| l.starts_with("default cyclades")) {
        new.push("default cyclades { type host; portbase 7000; portinc 1; }".to_string());
    }
    if !meat.iter().any(|l| l.starts_with("default mrv")) {
        new.push("default mrv { type host; portbase 2000; portinc 100; }".to_string());
    }
    // Drop the old access/default * blocks.
    let mut kept = Vec::new();
    let mut skip = false;
    for l in lines.drain(..) {
        if l.starts_with("access *") || l.starts_with("default *") {
            skip = true;
        }
        if !skip {
            kept.push(l);
        } else if l.contains('}') {
            skip = false;
        }
    }
    new.push("access * {".into());
    for t in trusted {
        new.push(format!("  trusted {t};"));
    }
    new.push("}".into());
    new.push("default * {".into());
    new.push("  logfile /var/log/consoles/&;".into());
    new.push("  timestamp 1lab;".into());
    new.push("  rw *;".into());
    new.push("  master localhost;".into());
    if ondemand {
        new.push("  options ondemand;".into());
    }
    new.push("}".into());
    new.extend(kept);
    *lines = new;
}

/// A node's stanza (pure): `exec` the console command, or a terminal server's port, or another
/// conserver's `master`.
pub fn node_stanza(e: &ConsEnt, exec: &str, local: bool, site_ondemand: bool) -> Vec<String> {
    let mut v = vec![
        format!("#xCAT BEGIN {} CONS", e.node),
        format!("console {} {{", e.node),
    ];
    let remote_master = e.conserver.as_ref().filter(|_| !local);
    if TERMINAL_SERVERS.contains(&e.cons.as_str()) {
        v.push(format!(
            " include {};",
            e.termserver.clone().unwrap_or_default()
        ));
        v.push(format!(" port {};", e.termport.clone().unwrap_or_default()));
        if let Some(m) = remote_master {
            v.push(format!("  master {m};"));
        }
    } else {
        v.push("  type exec;".into());
        match remote_master {
            Some(m) => v.push(format!("  master {m};")),
            None => v.push(format!("  exec {exec};")),
        }
    }
    match e
        .ondemand
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("1" | "yes") if !site_ondemand => v.push("  options ondemand;".into()),
        Some("0" | "no") if site_ondemand => v.push("  options !ondemand;".into()),
        _ => {}
    }
    v.push("}".into());
    v.push(format!("#xCAT END {} CONS", e.node));
    v
}

fn local_names() -> Vec<String> {
    let mut v = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if let Ok(h) = nix::unistd::gethostname() {
        let h = h.to_string_lossy().to_string();
        v.push(h.split('.').next().unwrap_or(&h).to_string());
        v.push(h);
    }
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            if let Some(ip) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
                v.push(ip.ip().to_string());
            }
        }
    }
    v
}

pub fn makeconservercf(db: &DbOpt, a: MakeconservercfArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let r = Resolver::new(store);
    let mut failed = false;
    let all: Vec<String> = r.membership()?.nodes.iter().cloned().collect();
    let nodes: Vec<String> = match &a.noderange {
        Some(range) => {
            let exp = r.noderange(range, true)?;
            failed |= report_missing(&exp.missing);
            exp.nodes
        }
        None => all.clone(),
    };
    let text = std::fs::read_to_string(&a.file).unwrap_or_default();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let site_ondemand = r
        .site("consoleondemand")?
        .is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    let locals = local_names();
    let mut trusted = vec!["127.0.0.1".to_string()];
    if let Some(m) = r.site_master()? {
        trusted.push(m);
    }
    let others: Vec<String> = locals
        .iter()
        .filter(|x| x.parse::<std::net::IpAddr>().is_ok() && !trusted.contains(x))
        .cloned()
        .chain(
            a.trust
                .iter()
                .flat_map(|t| t.split(',').map(str::to_string)),
        )
        .collect();
    if !others.is_empty() {
        trusted.push(others.join(","));
    }
    headers(&mut lines, &trusted, site_ondemand);

    if a.cleanup && a.noderange.is_none() {
        let removed = strip_blocks(&mut lines, "CONS", |n| !all.iter().any(|x| x == n));
        if removed.is_empty() {
            crate::outln!("Nothing removed");
        } else {
            crate::outln!("Remove console entry for the nodes:{}", removed.join(","));
        }
    } else {
        // Every node we are asked about loses its old stanza (all of ours without a noderange).
        if a.noderange.is_none() {
            strip_blocks(&mut lines, "CONS", |_| true);
            strip_blocks(&mut lines, "TS", |_| true);
        } else {
            strip_blocks(&mut lines, "CONS", |n| nodes.iter().any(|x| x == n));
        }
        if !a.delete {
            let col = |c: &str| r.column("nodehm", c);
            let (cons, serial, mgt, cs, ts, tp, od) = (
                col("cons")?,
                col("serialport")?,
                col("mgt")?,
                col("conserver")?,
                col("termserver")?,
                col("termport")?,
                col("consoleondemand")?,
            );
            let exe = std::env::current_exe()?;
            let mut sorted = nodes.clone();
            sorted.sort();
            let mut seen_ts: Vec<String> = lines
                .iter()
                .filter_map(|l| {
                    let w: Vec<&str> = l.split_whitespace().collect();
                    (w.len() == 4 && w[0] == "#xCAT" && w[1] == "BEGIN" && w[3] == "TS")
                        .then(|| w[2].to_string())
                })
                .collect();
            for n in &sorted {
                let c = cons.get(n)?;
                if c.is_none() && serial.get(n)?.is_none() {
                    continue;
                }
                let Some(method) = c.or(mgt.get(n)?) else {
                    crate::errln!(
                        "{n}: Error: Bad configuration, check attributes under the nodehm category"
                    );
                    failed = true;
                    continue;
                };
                let e = ConsEnt {
                    node: n.clone(),
                    cons: method.clone(),
                    conserver: cs.get(n)?,
                    termserver: ts.get(n)?,
                    termport: tp.get(n)?,
                    ondemand: od.get(n)?,
                };
                let terminal = TERMINAL_SERVERS.contains(&method.as_str());
                if terminal && (e.termserver.is_none() || e.termport.is_none()) {
                    crate::errln!(
                        "{n}: Error: Bad configuration, check attributes under the nodehm category"
                    );
                    failed = true;
                    continue;
                }
                if !terminal && method != "ipmi" {
                    crate::outln!("{n}: ignore, console method '{method}' is not available in bootherd. Please check mgt or cons attribute.");
                    continue;
                }
                if let (true, Some(t)) = (terminal, &e.termserver) {
                    if !seen_ts.contains(t) {
                        lines.extend([
                            format!("#xCAT BEGIN {t} TS"),
                            format!("default {t} {{"),
                            format!("  include {method};"),
                            format!("  host {t};"),
                            "}".into(),
                            format!("#xCAT END {t} TS"),
                        ]);
                        seen_ts.push(t.clone());
                    }
                }
                let local = e
                    .conserver
                    .as_ref()
                    .is_none_or(|c| locals.iter().any(|l| l == c));
                let exec = format!("{} --db {} rcons {n} -f", exe.display(), db.db);
                lines.extend(node_stanza(&e, &exec, local, site_ondemand));
            }
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    if a.verbose {
        crate::outln!(
            "Setting the following lines into {}:\n{text}",
            a.file.display()
        );
    }
    std::fs::write(&a.file, text)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", a.file.display()))?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
