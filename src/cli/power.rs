//! `rpower <noderange> <action>` and `rsetboot <noderange> <device>`: one line per node, in
//! noderange order, exit 1 when any node failed. Nodes whose `nodehm.mgt` is `ipmi` (or unset)
//! are driven over IPMI 2.0 (see [`super::bmc`] for addresses, credentials, fan-out); `wake`,
//! and `on`/`boot` for `nodehm.mgt=wol` nodes, send Wake-on-LAN instead.
//!
//! What rpower prints follows xCAT's ipmi.pm: `stat` → `on`/`off`; `on`/`off`/`reset`/`softoff`/
//! `cycle` → the action (or the unchanged state, when on is asked of a node already on, or off,
//! softoff or reset of one already off: nothing is sent then); `boot` → `on reset` when it was on
//! (reset sent), `off on` when it was off (on sent) — the words xCAT's other power plugins print
//! and its `rinstall` waits for. State changes set `nodelist.status` (powering-on for on, boot,
//! reset and cycle; powering-off for off and softoff) in one transaction with an auditlog row.

use std::net::Ipv4Addr;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::bmc::{self, bmc_spec, Settings, Work};
use super::nodes::report_missing;
use super::DbOpt;
use crate::power::ipmi::commands::{self, ChassisControl};
use crate::power::ipmi::{BootDevice, IpmiError, Session, Target};
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
    /// on, off, reset, boot, cycle, softoff, nmi, stat, state, wake
    action: String,
}

/// The IPMI side of rpower's actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PowerAction {
    Stat,
    On,
    Off,
    SoftOff,
    Reset,
    Cycle,
    Boot,
    Nmi,
}

impl PowerAction {
    fn parse(s: &str) -> Option<PowerAction> {
        Some(match s {
            "stat" | "state" | "status" => PowerAction::Stat,
            "on" => PowerAction::On,
            "off" => PowerAction::Off,
            "softoff" => PowerAction::SoftOff,
            "reset" => PowerAction::Reset,
            "cycle" => PowerAction::Cycle,
            "boot" => PowerAction::Boot,
            "nmi" => PowerAction::Nmi,
            _ => return None,
        })
    }
}

/// What one node's power action printed, and the status it leaves (None: unchanged).
type PowerResult = (String, Option<&'static str>);

const POWERING_ON: &str = "powering-on";
const POWERING_OFF: &str = "powering-off";

/// One node's rpower over IPMI: (what to print, the status to record if the state changed).
async fn power_job(
    t: Target,
    action: PowerAction,
) -> Result<(String, Option<&'static str>), IpmiError> {
    let mut s = Session::open(&t).await?;
    let r = power_in_session(&mut s, action).await;
    s.close().await;
    r
}

async fn power_in_session(
    s: &mut Session,
    action: PowerAction,
) -> Result<(String, Option<&'static str>), IpmiError> {
    use PowerAction as P;
    if action == P::Nmi {
        // A diagnostic interrupt is sent whatever the state, as xCAT does.
        commands::chassis_control(s, ChassisControl::Nmi).await?;
        return Ok(("nmi".to_string(), None));
    }
    let on = commands::power_is_on(s).await?;
    let state = if on { "on" } else { "off" };
    let (control, said, status) = match (action, on) {
        (P::Stat, _) | (P::On, true) | (P::Off | P::SoftOff | P::Reset, false) => {
            return Ok((state.to_string(), None))
        }
        (P::On, false) => (ChassisControl::On, "on", POWERING_ON),
        (P::Off, true) => (ChassisControl::Off, "off", POWERING_OFF),
        (P::SoftOff, true) => (ChassisControl::SoftOff, "softoff", POWERING_OFF),
        (P::Reset, true) => (ChassisControl::Reset, "reset", POWERING_ON),
        (P::Cycle, _) => (ChassisControl::Cycle, "cycle", POWERING_ON),
        (P::Boot, true) => (ChassisControl::Reset, "on reset", POWERING_ON),
        (P::Boot, false) => (ChassisControl::On, "off on", POWERING_ON),
        (P::Nmi, _) => return Ok(("nmi".to_string(), None)),
    };
    commands::chassis_control(s, control).await?;
    Ok((said.to_string(), Some(status)))
}

const ACTIONS: &[&str] = &[
    "on", "off", "reset", "boot", "cycle", "softoff", "stat", "state", "wake", "nmi",
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
    let settings = Settings::from_site(&r)?;
    let action = PowerAction::parse(&a.action);
    let mut work: Vec<(String, Work<PowerResult>)> = Vec::new();
    for node in &exp.nodes {
        let mgt = r.attr(node, "nodehm", "mgt")?.unwrap_or_default();
        let by_wol =
            a.action == "wake" || (mgt == "wol" && matches!(a.action.as_str(), "on" | "boot"));
        if !by_wol {
            let w = match (mgt.as_str(), action) {
                ("wol", _) => Work::Done(Err(format!(
                    "Wake-on-LAN can only power a node on ('{}' needs a BMC)",
                    a.action
                ))),
                ("" | "ipmi", Some(_)) => match bmc_spec(&r, node)? {
                    Ok(spec) => Work::Bmc(spec),
                    Err(e) => Work::Done(Err(e)),
                },
                (other, _) => Work::Done(Err(format!(
                    "power control over {other} is not available in this version of bootherd"
                ))),
            };
            work.push((node.clone(), w));
            continue;
        }
        work.push((node.clone(), Work::Done(wake(&r, node, &a, &local, &nets)?)));
    }
    let mut woken: Vec<(String, &'static str)> = Vec::new();
    let job_action = action.unwrap_or(PowerAction::Stat);
    bmc::run(
        &settings,
        work,
        move |t| power_job(t, job_action),
        |node, res| match res {
            Ok((line, status)) => {
                crate::outln!("{node}: {line}");
                if let Some(st) = status {
                    woken.push((node.to_string(), st));
                }
            }
            Err(e) => {
                crate::outln!("{node}: Error: {e}");
                failed = true;
            }
        },
    )?;
    if !woken.is_empty() {
        let now = crate::store::now_xcat();
        let audit = Audit {
            command: "rpower".into(),
            noderange: a.noderange.clone(),
            args: a.action.clone(),
        };
        store.write(Some(&audit), |tx| {
            for (n, st) in &woken {
                tx.set(
                    "nodelist",
                    &[n],
                    &[("status", Some(st)), ("statustime", Some(&now))],
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

/// Wake-on-LAN for one node: the line to print and the status to record, or the error.
fn wake(
    r: &Resolver,
    node: &str,
    a: &RpowerArgs,
    local: &[(Ipv4Addr, Ipv4Addr)],
    nets: &[(Ipv4Addr, Ipv4Addr)],
) -> anyhow::Result<Result<(String, Option<&'static str>), String>> {
    let macs: Vec<[u8; 6]> = r
        .attr(node, "mac", "mac")?
        .unwrap_or_default()
        .split('|')
        .filter_map(|e| wol::parse_mac(e.split('!').next().unwrap_or("").trim()))
        .collect();
    if macs.is_empty() {
        return Ok(Err("no MAC address in mac.mac to wake".into()));
    }
    let target = match a.broadcast {
        Some(b) => Some((Ipv4Addr::UNSPECIFIED, b)),
        None => match r.attr(node, "hosts", "ip")?.and_then(|s| s.parse().ok()) {
            Some(ip) => wol::route(ip, local, nets),
            None => None,
        },
    };
    let Some((source, dest)) = target else {
        return Ok(Err(format!("cannot tell where {node} can hear a broadcast (no hosts.ip on a local interface's subnet or a networks row); use --broadcast")));
    };
    let mut errors = Vec::new();
    for mac in &macs {
        if let Err(e) = wol::send(mac, source, dest) {
            errors.push(e.to_string());
        }
    }
    if !errors.is_empty() {
        return Ok(Err(format!("cannot send to {dest}: {}", errors.join("; "))));
    }
    Ok(Ok((
        format!(
            "wake sent to {dest}:{} ({} MAC{})",
            wol::PORT,
            macs.len(),
            if macs.len() == 1 { "" } else { "s" }
        ),
        Some(POWERING_ON),
    )))
}

#[derive(Debug, Args)]
pub struct RsetbootArgs {
    /// Persistent: keep the device for every boot, not just the next
    #[arg(short = 'p')]
    persistent: bool,
    /// Ask for a UEFI boot (the EFI boot type bit)
    #[arg(short = 'u')]
    uefi: bool,
    /// The nodes
    #[arg(allow_hyphen_values = true)]
    noderange: String,
    /// net, hd, cd, floppy, def, setup, stat
    device: String,
}

/// `rsetboot <noderange> net|hd|cd|floppy|def|setup|stat [-p] [-u]`: Set System Boot Options as
/// xCAT does, then read parameter 5 back and print it (`Network`, `Hard Drive`, `CD/DVD`,
/// `BIOS Setup`, `Floppy`, `boot override inactive`). A device that does not read back as set
/// is an error: the BMC took the command but will not honour it.
pub fn rsetboot(db: &DbOpt, a: RsetbootArgs) -> anyhow::Result<ExitCode> {
    let dev = match a.device.as_str() {
        d if d.starts_with("stat") => None,
        d => match BootDevice::parse(d) {
            Some(dev) => Some(dev),
            None => bail!(
                "'{}' is not an rsetboot device (net, hd, cd, floppy, def, setup, stat)",
                a.device
            ),
        },
    };
    let store = db.open()?;
    let r = Resolver::new(store.clone());
    let exp = r.noderange(&a.noderange, true)?;
    let mut failed = report_missing(&exp.missing);
    let settings = Settings::from_site(&r)?;
    let mut work = Vec::new();
    for node in &exp.nodes {
        let w = match bmc_spec(&r, node)? {
            Ok(spec) => Work::Bmc(spec),
            Err(e) => Work::Done(Err(e)),
        };
        work.push((node.clone(), w));
    }
    let (persistent, uefi) = (a.persistent, a.uefi);
    bmc::run(
        &settings,
        work,
        move |t| async move {
            let mut s = Session::open(&t).await?;
            let r = async {
                if let Some(dev) = dev {
                    commands::set_boot_device(&mut s, dev, persistent, uefi).await?;
                }
                let got = commands::get_boot_device(&mut s).await?;
                if let Some(dev) = dev {
                    check_readback(dev, &got)?;
                }
                Ok(got.to_string())
            }
            .await;
            s.close().await;
            r
        },
        |node, res| match res {
            Ok(line) => crate::outln!("{node}: {line}"),
            Err(e) => {
                crate::outln!("{node}: Error: {e}");
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

/// The device code parameter 5 reads back as for each device set (selector >> 2).
fn check_readback(dev: BootDevice, got: &commands::BootOverride) -> Result<(), IpmiError> {
    // The device selector is what the BMC acts on; the valid bit is checked by the printout.
    let ok = match dev {
        BootDevice::Default => !got.valid || got.device == 0,
        d => got.device == d.selector() >> 2,
    };
    if ok {
        Ok(())
    } else {
        Err(IpmiError::Unexpected(format!(
            "the BMC accepted the boot device but reads back '{got}'"
        )))
    }
}
