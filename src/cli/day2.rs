//! IPMI day-two commands, over the same BMC runner as rpower (noderange order, per-node errors,
//! exit 1 when any node failed): `reventlog` (the SEL, decoded as xCAT's ipmi.pm prints it),
//! `rbeacon` (Chassis Identify), `rspreset` (BMC cold reset); and `rinstall` / `rnetboot`, which
//! chain nodeset, rsetboot net and rpower boot as xCAT's rinstall plugin does.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::bmc::{self, bmc_spec, Settings, Work};
use super::nodes::report_missing;
use super::DbOpt;
use crate::power::ipmi::{sdr, sel, IpmiError, Session, Target};
use crate::store::resolver::Resolver;

/// Each node's BMC work: its lines, or its error.
type NodeWork = Vec<(String, Work<Vec<String>>)>;

/// The nodes of a range as BMC work items (no BMC: the node's error).
fn bmc_work(r: &Resolver, range: &str) -> anyhow::Result<(NodeWork, bool)> {
    let exp = r.noderange(range, true)?;
    let failed = report_missing(&exp.missing);
    let mut work = Vec::new();
    for node in &exp.nodes {
        let w = match bmc_spec(r, node)? {
            Ok(spec) => Work::Bmc(spec),
            Err(e) => Work::Done(Err(e)),
        };
        work.push((node.clone(), w));
    }
    Ok((work, failed))
}

/// Runs `job` on every node's BMC and prints its lines (`node: line`), or `node: Error: …`.
fn per_node<F, Fut>(db: &DbOpt, range: &str, job: F) -> anyhow::Result<ExitCode>
where
    F: Fn(Target) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Vec<String>, IpmiError>> + Send + 'static,
{
    let store = db.open()?;
    let r = Resolver::new(store);
    let (work, mut failed) = bmc_work(&r, range)?;
    let settings = Settings::from_site(&r)?;
    bmc::run(&settings, work, job, |node, res| match res {
        Ok(lines) => {
            for l in lines {
                crate::outln!("{node}: {l}");
            }
        }
        Err(e) => {
            crate::outln!("{node}: Error: {e}");
            failed = true;
        }
    })?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Debug, Args)]
pub struct ReventlogArgs {
    /// Newest entries first
    #[arg(short = 's')]
    sort: bool,
    /// The nodes
    #[arg(allow_hyphen_values = true)]
    noderange: String,
    /// all (default), a number of entries, or clear
    what: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SelWhat {
    All,
    First(usize),
    Clear,
}

pub fn reventlog(db: &DbOpt, a: ReventlogArgs) -> anyhow::Result<ExitCode> {
    let what = match a.what.as_deref().unwrap_or("all") {
        "all" => SelWhat::All,
        "clear" => SelWhat::Clear,
        n => match n.parse::<usize>() {
            Ok(n) => SelWhat::First(n),
            Err(_) => bail!("unsupported command eventlog {n}"),
        },
    };
    if what == SelWhat::Clear && a.sort {
        bail!("option \"first\" can not work with clear");
    }
    let sort = a.sort;
    per_node(db, &a.noderange, move |t| async move {
        let mut s = Session::open(&t).await?;
        let r = sel_job(&mut s, what, sort).await;
        s.close().await;
        r
    })
}

async fn sel_job(
    s: &mut Session,
    what: SelWhat,
    newest_first: bool,
) -> Result<Vec<String>, IpmiError> {
    let bmc_time = sel::time(s).await?;
    let info = sel::info(s).await?;
    if info.version != 0x51 {
        return Ok(vec![format!(
            "SEL version 51h support only, version reported: {:x}",
            info.version
        )]);
    }
    if info.entries == 0 {
        return Ok(vec!["no SEL entries".into()]);
    }
    if !info.reserve_supported {
        return Err(IpmiError::Unexpected(
            "SEL reservation not supported".into(),
        ));
    }
    if what == SelWhat::Clear {
        sel::clear(s).await?;
        return Ok(vec!["SEL cleared".into()]);
    }
    // Sensor names for the entries; a BMC without a readable SDR still has its SEL.
    let mut sdrs = Vec::new();
    if let Ok(records) = sdr::read_repository(s).await {
        for raw in records {
            if let Ok(Some(rec)) = sdr::parse_record(&raw) {
                sdrs.push(rec);
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let offset = sel::clock_offset(bmc_time, now);
    let mut entries = sel::read_all(s, info.entries).await?;
    if newest_first {
        entries.reverse();
    }
    if let SelWhat::First(n) = what {
        entries.truncate(n);
    }
    Ok(entries
        .iter()
        .map(|e| sel::describe(e, offset, &sdrs, &crate::store::local_date_time))
        .collect())
}

#[derive(Debug, Args)]
pub struct RbeaconArgs {
    /// The nodes
    #[arg(allow_hyphen_values = true)]
    noderange: String,
    /// on, off, blink (the BMC's timed identify, 15 s) or stat
    action: String,
}

/// Get Chassis Status byte 3 (misc. chassis state): the identify state when bit 6 says the
/// BMC reports it.
pub fn identify_state(d: &[u8]) -> Result<&'static str, IpmiError> {
    let b = d.get(2).copied().unwrap_or(0);
    if b & 0x40 == 0 {
        return Err(IpmiError::Unexpected(
            "the BMC does not report the chassis identify state".into(),
        ));
    }
    Ok(match (b >> 4) & 0x03 {
        0 => "off",
        1 => "blink",
        2 => "on",
        _ => "unknown",
    })
}

pub fn rbeacon(db: &DbOpt, a: RbeaconArgs) -> anyhow::Result<ExitCode> {
    let data: Option<Vec<u8>> = match a.action.as_str() {
        // Chassis Identify: interval 0 with "force on", interval 0 alone (off), the default
        // 15 s timed identify (blink).
        "on" => Some(vec![0, 1]),
        "off" => Some(vec![0, 0]),
        "blink" => Some(vec![15]),
        "stat" => None,
        other => bail!("'{other}' is not an rbeacon action (on, off, blink, stat)"),
    };
    let action = a.action.clone();
    per_node(db, &a.noderange, move |t| {
        let (data, action) = (data.clone(), action.clone());
        async move {
            let mut s = Session::open(&t).await?;
            let r = async {
                match &data {
                    Some(d) => {
                        s.request(0x00, 0x04, d).await?;
                        Ok(vec![action])
                    }
                    None => {
                        let st = s.request(0x00, 0x01, &[]).await?;
                        Ok(vec![identify_state(&st)?.to_string()])
                    }
                }
            }
            .await;
            s.close().await;
            r
        }
    })
}

#[derive(Debug, Args)]
pub struct RspresetArgs {
    /// The nodes
    #[arg(allow_hyphen_values = true)]
    noderange: String,
}

pub fn rspreset(db: &DbOpt, a: RspresetArgs) -> anyhow::Result<ExitCode> {
    per_node(db, &a.noderange, |t| async move {
        let mut s = Session::open(&t).await?;
        // Cold Reset; the BMC restarts, so the session is dropped rather than closed.
        s.request(0x06, 0x02, &[]).await?;
        Ok(vec!["BMC reset".to_string()])
    })
}

#[derive(Debug, Args)]
pub struct RinstallArgs {
    /// Ask for a UEFI network boot
    #[arg(short = 'u', long = "uefimode")]
    uefi: bool,
    /// Show every step's command and output
    #[arg(short = 'V', long = "verbose")]
    verbose: bool,
    /// Open the console afterwards (not available: use rcons)
    #[arg(short = 'c', long = "console")]
    console: bool,
    /// The nodes
    #[arg(allow_hyphen_values = true)]
    noderange: String,
    /// osimage[=<image>], boot, shell, runcmd=<cmd> or runimage=<url>
    state: Option<String>,
}

/// One step run as another admin command of this request: (exit ok, output lines).
fn step(db: &DbOpt, args: &[String]) -> anyhow::Result<(bool, Vec<String>)> {
    Ok(super::run_step(db, args))
}

/// rsetboot net + rpower boot for `nodes`, as xCAT's rinstall runs them after nodeset.
fn netboot(db: &DbOpt, nodes: Vec<String>, uefi: bool, verbose: bool) -> anyhow::Result<bool> {
    let mut failed = false;
    let mut nodes = nodes;
    if nodes.is_empty() {
        return Ok(true);
    }
    let mut args = vec!["rsetboot".to_string(), nodes.join(","), "net".into()];
    if uefi {
        args.push("-u".into());
    }
    let (ok, lines) = step(db, &args)?;
    if verbose {
        crate::outln!("Run command: {}", args.join(" "));
    }
    if verbose || !ok {
        for l in &lines {
            crate::outln!("{l}");
        }
    }
    if !ok {
        let good: Vec<String> = nodes
            .iter()
            .filter(|n| {
                lines
                    .iter()
                    .any(|l| l.starts_with(&format!("{n}: Network")))
            })
            .cloned()
            .collect();
        let bad: Vec<&String> = nodes.iter().filter(|n| !good.contains(n)).collect();
        if !bad.is_empty() {
            crate::errln!(
                "Error: Failed to run 'rsetboot' against the following nodes: {}",
                bad.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
            );
            failed = true;
        }
        nodes = good;
    }
    if nodes.is_empty() {
        return Ok(false);
    }
    let args = vec!["rpower".to_string(), nodes.join(","), "boot".into()];
    let (ok, lines) = step(db, &args)?;
    if verbose {
        crate::outln!("Run command: {}", args.join(" "));
    }
    if verbose || !ok {
        for l in &lines {
            crate::outln!("{l}");
        }
    }
    if !ok {
        let bad: Vec<&String> = nodes
            .iter()
            .filter(|n| {
                !lines.iter().any(|l| {
                    l.starts_with(&format!("{n}: on reset"))
                        || l.starts_with(&format!("{n}: off on"))
                })
            })
            .collect();
        if !bad.is_empty() {
            crate::errln!(
                "Error: Failed to run 'rpower' against the following nodes: {}",
                bad.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
            );
            failed = true;
        }
    }
    Ok(!failed)
}

/// The nodes of `range` whose nodehm.mgt is IPMI (or unset): the ones rsetboot can drive.
fn expand(db: &DbOpt, range: &str) -> anyhow::Result<Option<Vec<String>>> {
    let store = db.open()?;
    let r = Resolver::new(store);
    let exp = r.noderange(range, true)?;
    if report_missing(&exp.missing) {
        return Ok(None);
    }
    Ok(Some(exp.nodes))
}

pub fn rinstall(db: &DbOpt, a: RinstallArgs) -> anyhow::Result<ExitCode> {
    let state = a.state.clone().unwrap_or_else(|| "osimage".into());
    let valid = state.starts_with("osimage")
        || ["boot", "shell"].contains(&state.as_str())
        || state.starts_with("runcmd=")
        || state.starts_with("runimage=");
    if !valid {
        crate::errln!("Error: Invalid option {state}");
        return Ok(ExitCode::from(1));
    }
    let Some(nodes) = expand(db, &a.noderange)? else {
        return Ok(ExitCode::from(1));
    };
    if nodes.is_empty() {
        bail!("no nodes in '{}'", a.noderange);
    }
    crate::outln!("Provision node(s): {}", nodes.join(" "));
    let args = vec!["nodeset".to_string(), nodes.join(","), state.clone()];
    let (ok, lines) = step(db, &args)?;
    if a.verbose {
        crate::outln!("Run command: nodeset {} {state}", nodes.join(" "));
    }
    if a.verbose || !ok {
        for l in &lines {
            crate::outln!("{l}");
        }
    }
    let mut failed = false;
    let mut next = nodes.clone();
    if !ok {
        let bad: Vec<String> = nodes
            .iter()
            .filter(|n| {
                lines
                    .iter()
                    .any(|l| l.starts_with(&format!("{n}:")) && l.contains("Error"))
            })
            .cloned()
            .collect();
        if nodes.len() == 1 || bad.is_empty() || bad.len() == nodes.len() {
            crate::errln!(
                "Error: Failed to run 'nodeset' against the node: {}",
                nodes.join(" ")
            );
            return Ok(ExitCode::from(1));
        }
        crate::errln!(
            "Error: Failed to run 'nodeset' against the following nodes: {}",
            bad.join(" ")
        );
        failed = true;
        next.retain(|n| !bad.contains(n));
    }
    if !netboot(db, next, a.uefi, a.verbose)? {
        failed = true;
    }
    if a.console {
        crate::errln!("Warning: -c: no console is opened; use rcons <node>");
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Debug, Args)]
pub struct RnetbootArgs {
    /// Ask for a UEFI network boot
    #[arg(short = 'u', long = "uefimode")]
    uefi: bool,
    /// Show every step's command and output
    #[arg(short = 'V', long = "verbose")]
    verbose: bool,
    /// The nodes
    #[arg(allow_hyphen_values = true)]
    noderange: String,
}

/// `rnetboot <noderange>`: the next boot from the network and a reboot (rsetboot net, rpower
/// boot), each node's rpower line printed.
pub fn rnetboot(db: &DbOpt, a: RnetbootArgs) -> anyhow::Result<ExitCode> {
    let Some(nodes) = expand(db, &a.noderange)? else {
        return Ok(ExitCode::from(1));
    };
    if nodes.is_empty() {
        bail!("no nodes in '{}'", a.noderange);
    }
    Ok(if netboot(db, nodes, a.uefi, true)? {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Debug, Args)]
pub struct RconsArgs {
    /// Take the console over when another session holds it
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Also append everything the console prints to this file
    #[arg(long = "log", value_name = "FILE")]
    log: Option<std::path::PathBuf>,
    /// The node
    node: String,
}

/// The terminal in raw mode while the console runs; restored when dropped.
struct RawTerminal(Option<nix::sys::termios::Termios>);

impl RawTerminal {
    fn enter() -> RawTerminal {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(&stdin) else {
            return RawTerminal(None);
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        if tcsetattr(&stdin, SetArg::TCSANOW, &raw).is_err() {
            return RawTerminal(None);
        }
        RawTerminal(Some(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

/// `rcons <node> [-f]`: the node's serial console over IPMI Serial-over-LAN, with our own
/// RMCP+ client. `~.` at the start of a line leaves, `~B` sends a break.
pub fn rcons(db: &DbOpt, a: RconsArgs) -> anyhow::Result<ExitCode> {
    use crate::power::ipmi::sol;
    let store = db.open()?;
    let r = Resolver::new(store);
    let (work, missing) = bmc_work(&r, &a.node)?;
    if missing {
        return Ok(ExitCode::from(1));
    }
    if work.len() != 1 {
        bail!("rcons takes one node ('{}' names {})", a.node, work.len());
    }
    let settings = Settings::from_site(&r)?;
    let force = a.force;
    let log = match &a.log {
        Some(p) => Some(std::sync::Arc::new(std::sync::Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| anyhow::anyhow!("cannot open the console log {}: {e}", p.display()))?,
        ))),
        None => None,
    };
    let mut failed = false;
    let work: Vec<(String, Work<sol::Ended>)> = work
        .into_iter()
        .map(|(n, w)| {
            let w = match w {
                Work::Bmc(b) => Work::Bmc(b),
                Work::Done(Err(e)) => Work::Done(Err(e)),
                Work::Done(Ok(_)) => Work::Done(Err("internal: no BMC work".into())),
            };
            (n, w)
        })
        .collect();
    bmc::run(
        &settings,
        work,
        move |t| {
            let log = log.clone();
            async move {
                let mut s = Session::open(&t).await?;
                let max = match sol::activate(&mut s).await {
                    Ok(m) => m,
                    Err(IpmiError::Completion { code: 0x80, .. }) if force => {
                        sol::deactivate(&mut s).await?;
                        sol::activate(&mut s).await?
                    }
                    Err(IpmiError::Completion { code: 0x80, .. }) => {
                        s.close().await;
                        return Err(IpmiError::Unexpected(
                            "the console is in use (SOL already active); rcons -f takes it over"
                                .into(),
                        ));
                    }
                    Err(e) => {
                        s.close().await;
                        return Err(e);
                    }
                };
                crate::errln!("[SOL Session operational.  Use ~. to leave, ~B for a break]");
                let raw = RawTerminal::enter();
                let (tx, rx) = tokio::sync::mpsc::channel(64);
                std::thread::spawn(move || {
                    use std::io::Read;
                    let mut esc = sol::Escape::new();
                    let mut buf = [0u8; 512];
                    let mut stdin = std::io::stdin();
                    loop {
                        let n = match stdin.read(&mut buf) {
                            Ok(0) | Err(_) => {
                                let _ = tx.blocking_send(sol::Input::Quit);
                                return;
                            }
                            Ok(n) => n,
                        };
                        for i in esc.feed(&buf[..n]) {
                            let quit = matches!(i, sol::Input::Quit);
                            if tx.blocking_send(i).is_err() || quit {
                                return;
                            }
                        }
                    }
                });
                let mut out = super::stdout();
                let ended = sol::console(&mut s, max, rx, |b| {
                    use std::io::Write;
                    let _ = out.write_all(b);
                    let _ = out.flush();
                    if let Some(l) = &log {
                        if let Ok(mut f) = l.lock() {
                            let _ = f.write_all(b);
                        }
                    }
                })
                .await;
                drop(raw);
                let _ = sol::deactivate(&mut s).await;
                s.close().await;
                ended
            }
        },
        |node, res| match res {
            Ok(sol::Ended::User) => crate::errln!("\r\n[terminated rcons to {node}]"),
            Ok(sol::Ended::Bmc) => {
                crate::errln!("\r\n[{node}: the BMC ended the console session]")
            }
            Err(e) => {
                crate::errln!("{node}: Error: {e}");
                failed = true;
            }
        },
    )?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identify_state_needs_the_supported_bit() {
        assert!(identify_state(&[0, 0, 0]).is_err());
        assert_eq!(identify_state(&[0, 0, 0x40]).ok(), Some("off"));
        assert_eq!(identify_state(&[0, 0, 0x50]).ok(), Some("blink"));
        assert_eq!(identify_state(&[0, 0, 0x60]).ok(), Some("on"));
    }
}
