//! Discovery commands, with xCAT's names and output: `nodediscoverstart`, `nodediscoverstop`,
//! `nodediscoverstatus`, `nodediscoverls`, `nodediscoverdef`. Switch-port and MTM+serial
//! matching are always on for machines that boot genesis; sequential discovery runs between
//! start and stop (its settings live in `site.__SEQDiscover`, as in xCAT).

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::DbOpt;
use crate::discovery::matcher::{self, ip_range, Method, Outcome, SeqParams, SEQ_KEY};
use crate::discovery::report::{Nic, Report};
use crate::store::resolver::Resolver;
use crate::store::Audit;

#[derive(Debug, Args)]
pub struct StartArgs {
    /// noderange=<nodes> [hostiprange=a-b] [bmciprange=a-b] [osimage=<image>] [groups=<groups>]
    params: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {}

#[derive(Debug, Args)]
pub struct StatusArgs {}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// seq, switch, mtms, known, manual, undef or all
    #[arg(short = 't', long = "type", default_value = "all")]
    kind: String,
    /// Every field of each machine
    #[arg(short = 'l', long = "long")]
    long: bool,
    /// Only this machine
    #[arg(short = 'u', long = "uuid")]
    uuid: Option<String>,
}

#[derive(Debug, Args)]
pub struct DefArgs {
    /// The discovered machine
    #[arg(short = 'u', long = "uuid")]
    uuid: String,
    /// The node to make it
    #[arg(short = 'n', long = "node")]
    node: Option<String>,
    /// Forget the machine instead
    #[arg(short = 'r', long = "remove")]
    remove: bool,
}

fn audit(cmd: &str, args: String) -> Audit {
    Audit {
        command: cmd.into(),
        noderange: String::new(),
        args,
    }
}

pub fn start(db: &DbOpt, a: StartArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let r = Resolver::new(store.clone());
    if r.site(SEQ_KEY)?.is_some_and(|v| !v.is_empty()) {
        bail!("Sequential Discovery is running. If you want to rerun the discovery, stop the running discovery first.");
    }
    let p = match SeqParams::parse(&a.params) {
        Ok(p) => p,
        Err(e) => bail!("{e}"),
    };
    if let Some(img) = &p.osimage {
        if crate::boot::state::osimage(&r, img)?.is_none() {
            bail!("osimage '{img}' is not defined");
        }
    }
    let names = r.noderange(&p.noderange, false)?.nodes;
    let taken: std::collections::BTreeSet<String> = {
        let t = r.table("mac")?;
        let nc = t.spec.col_index("node");
        t.rows
            .iter()
            .filter_map(|row| nc.and_then(|i| row.get(i)).cloned().flatten())
            .collect()
    };
    let free = names.iter().filter(|n| !taken.contains(*n)).count();
    store.write(
        Some(&audit("nodediscoverstart", a.params.join(" "))),
        |tx| tx.set("site", &[SEQ_KEY], &[("value", Some(&p.to_site()))]),
    )?;
    crate::outln!("Sequential Discovery: Started:");
    crate::outln!("    Number of free node names: {free}");
    for (what, range) in [("host", &p.hostiprange), ("bmc", &p.bmciprange)] {
        if let Some(range) = range {
            let n = ip_range(range).map(|v| v.len()).unwrap_or(0);
            crate::outln!("    Number of free {what} ips: {n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn rows(r: &Resolver) -> anyhow::Result<Vec<std::collections::BTreeMap<String, String>>> {
    let t = r.table("discoverydata")?;
    Ok(t.rows
        .iter()
        .map(|row| {
            t.spec
                .cols
                .iter()
                .enumerate()
                .filter_map(|(i, c)| Some((c.to_string(), row.get(i).cloned().flatten()?)))
                .collect()
        })
        .collect())
}

pub fn stop(db: &DbOpt, _: StopArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let r = Resolver::new(store.clone());
    if r.site(SEQ_KEY)?.is_none_or(|v| v.is_empty()) {
        crate::outln!("Sequential Discovery is stopped.");
        return Ok(ExitCode::SUCCESS);
    }
    store.write(Some(&audit("nodediscoverstop", String::new())), |tx| {
        tx.delete("site", &[SEQ_KEY])
    })?;
    let found: Vec<_> = rows(&r)?
        .into_iter()
        .filter(|m| m.get("method").map(String::as_str) == Some("sequential"))
        .collect();
    crate::outln!("Discovered {} nodes.", found.len());
    if !found.is_empty() {
        crate::outln!("    {:<20}{:<10}{:<10}", "NODE", "MTM", "SERIAL");
        for m in &found {
            let g = |k: &str| m.get(k).cloned().unwrap_or_default();
            crate::outln!(
                "    {:<20}{:<10}{:<10}",
                g("node"),
                g("mtm"),
                g("serial").chars().take(8).collect::<String>()
            );
        }
    }
    crate::outln!("Sequential Discovery: Stopped.");
    Ok(ExitCode::SUCCESS)
}

pub fn status(db: &DbOpt, _: StatusArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let r = Resolver::new(store);
    match r.site(SEQ_KEY)?.filter(|v| !v.is_empty()) {
        Some(p) => {
            crate::outln!("Sequential discovery is running.");
            crate::outln!("    The parameters used for discovery: {p}");
        }
        None => crate::outln!("Sequential Discovery is stopped."),
    }
    crate::outln!("Switch and MTMS discovery answer every machine that boots genesis.");
    Ok(ExitCode::SUCCESS)
}

pub fn ls(db: &DbOpt, a: LsArgs) -> anyhow::Result<ExitCode> {
    let want = match a.kind.as_str() {
        "seq" | "sequential" => Some("sequential"),
        "switch" | "mtms" | "known" | "manual" | "undef" => Some(a.kind.as_str()),
        "all" => None,
        other => bail!(
            "'{other}' is not a discovery type (seq, switch, mtms, known, manual, undef, all)"
        ),
    };
    let store = db.open()?;
    let r = Resolver::new(store);
    let found: Vec<_> = rows(&r)?
        .into_iter()
        .filter(|m| want.is_none_or(|w| m.get("method").map(String::as_str) == Some(w)))
        .filter(|m| {
            a.uuid
                .as_ref()
                .is_none_or(|u| m.get("uuid").is_some_and(|x| x.eq_ignore_ascii_case(u)))
        })
        .collect();
    if a.long {
        for m in &found {
            crate::outln!(
                "Object uuid: {}",
                m.get("uuid").cloned().unwrap_or_default()
            );
            for (k, v) in m.iter().filter(|(k, _)| k.as_str() != "uuid") {
                crate::outln!("    {k}={v}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    crate::outln!(
        "Discovered {} node{}.",
        found.len(),
        if found.len() == 1 { "" } else { "s" }
    );
    if !found.is_empty() {
        crate::outln!(
            "  {:<40}{:<20}{:<15}{:<10} {:<20}",
            "UUID",
            "NODE",
            "METHOD",
            "MTM",
            "SERIAL"
        );
        for m in &found {
            let g = |k: &str| m.get(k).cloned().unwrap_or_default();
            let node = if g("node").is_empty() {
                "undef".to_string()
            } else {
                g("node")
            };
            crate::outln!(
                "  {:<40}{:<20}{:<15}{:<10} {:<20}",
                g("uuid"),
                node,
                g("method"),
                g("mtm"),
                g("serial").chars().take(19).collect::<String>()
            );
        }
        for m in found
            .iter()
            .filter(|m| m.get("method").map(String::as_str) == Some("undef"))
        {
            if let (Some(u), Some(why)) = (m.get("uuid"), m.get("otherdata")) {
                crate::outln!("  {u}: {why}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A report rebuilt from a discoverydata row.
fn report_of(m: &std::collections::BTreeMap<String, String>) -> Report {
    let g = |k: &str| m.get(k).cloned().unwrap_or_default();
    let pairs = |k: &str| -> Vec<(String, String)> {
        g(k).split(',')
            .filter_map(|p| p.split_once('!'))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    let drivers = pairs("nicdriver");
    let ips = pairs("nicipv4");
    let nics = pairs("nichwaddr")
        .into_iter()
        .map(|(ifname, mac)| Nic {
            driver: drivers
                .iter()
                .find(|(i, _)| *i == ifname)
                .map(|(_, d)| d.clone())
                .unwrap_or_default(),
            ip: ips
                .iter()
                .find(|(i, _)| *i == ifname)
                .map(|(_, d)| d.clone()),
            ifname,
            mac,
        })
        .collect();
    Report {
        uuid: g("uuid"),
        arch: g("arch"),
        mtm: g("mtm"),
        serial: g("serial"),
        cpucount: g("cpucount"),
        cputype: g("cputype"),
        memory: g("memory"),
        nics,
        ..Report::default()
    }
}

pub fn def(db: &DbOpt, a: DefArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let r = Resolver::new(store.clone());
    let Some(m) = rows(&r)?.into_iter().find(|m| {
        m.get("uuid")
            .is_some_and(|u| u.eq_ignore_ascii_case(&a.uuid))
    }) else {
        bail!("no discovered machine has uuid {}", a.uuid);
    };
    if a.remove {
        store.write(
            Some(&audit("nodediscoverdef", format!("-r -u {}", a.uuid))),
            |tx| {
                tx.delete(
                    "discoverydata",
                    &[m.get("uuid").map(String::as_str).unwrap_or_default()],
                )
            },
        )?;
        crate::outln!("Removing discovery entries finished.");
        return Ok(ExitCode::SUCCESS);
    }
    let Some(node) = a.node else {
        bail!("give the node to define the machine as: nodediscoverdef -u <uuid> -n <node>");
    };
    if !r.membership()?.nodes.contains(&node) {
        bail!("{node} is not a node (define it first with mkdef)");
    }
    if m.get("method").is_some_and(|x| x != "undef") {
        bail!("the machine {} was already discovered as {} ({}); remove it first with nodediscoverdef -r -u {}", a.uuid, m.get("node").cloned().unwrap_or_default(), m.get("method").cloned().unwrap_or_default(), a.uuid);
    }
    let rep = report_of(&m);
    let outcome = Outcome::Matched {
        node: node.clone(),
        method: Method::Manual,
        host_ip: None,
        bmc_ip: None,
        seq: None,
        hit: None,
    };
    matcher::record(&store, &r, &rep, &outcome)?;
    crate::outln!("Defined [{}] to node {node}.", a.uuid);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct MknbArgs {
    /// Architecture of the image (x86_64 is fetched from Debian; others need -k/-m/-b)
    #[arg(default_value = "x86_64")]
    arch: String,
    /// The kernel (vmlinuz) instead of Debian's linux-image-amd64
    #[arg(short = 'k', long = "kernel")]
    kernel: Option<std::path::PathBuf>,
    /// Its modules directory (lib/modules/<version>)
    #[arg(short = 'm', long = "modules")]
    modules: Option<std::path::PathBuf>,
    /// A static busybox
    #[arg(short = 'b', long = "busybox")]
    busybox: Option<std::path::PathBuf>,
    /// The ipmitool to put in (default: this machine's)
    #[arg(short = 'x', long = "ipmitool")]
    ipmitool: Option<std::path::PathBuf>,
}

/// `initrd/mknb.sh`, next to the shipped templates or in the source tree.
fn mknb_script() -> std::path::PathBuf {
    crate::boot::template::shipped_file("initrd/mknb.sh")
}

/// `mknb <arch>`: builds genesis into `site.tftpdir` (xcat/genesis.kernel.<arch>, .fs.<arch>.gz).
pub fn mknb(db: &DbOpt, a: MknbArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let tftpdir = store
        .site("tftpdir")?
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "/tftpboot".into());
    let mut c = std::process::Command::new("sh");
    c.arg(mknb_script()).arg(&a.arch).arg(tftpdir.trim());
    for (flag, v) in [
        ("-k", &a.kernel),
        ("-m", &a.modules),
        ("-b", &a.busybox),
        ("-x", &a.ipmitool),
    ] {
        if let Some(v) = v {
            c.arg(flag).arg(v);
        }
    }
    let st = c
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", mknb_script().display()))?;
    Ok(if st.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
