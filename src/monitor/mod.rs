//! Node liveness, as xCAT's `nodestat` and its `xcatmon` monitoring plug-in
//! (`plugins/nodestat.pm`, `xCAT_monitoring/xcatmon.pm`, `plugins/monctrlcmds.pm`).
//!
//! * [`icmp`]: the echo request/reply codec (pure, fuzzed);
//! * [`probe`]: ICMP and TCP probes of many nodes at once on the tokio runtime;
//! * here: the monitoring plug-ins bootherd has (only the built-in `xcatmon`), the `monitoring`
//!   and `monsetting` rows they read, and the nodestat engine: which applications to ask about
//!   (`monsetting` `xcatmon apps`, or xCAT's default ports), each node's status as xCAT words it,
//!   and the `nodelist.status`/`appstatus` updates (written only when a value changes).
//!
//! `nodestat` and the daemon's xcatmon service (`daemon::xcatmon`) both use [`nodestat`]; the
//! daemon runs it every `ping-interval` minutes where xCAT's cron line ran `nodestat all -m -u -q`.

pub mod icmp;
pub mod probe;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::store::resolver::Resolver;
use crate::store::{Audit, Store, StoreError};

/// Where xCAT looks for monitoring plug-ins (named in its messages about unknown plug-ins).
pub const PLUGIN_DIR: &str = "/opt/xcat/lib/perl/xCAT_monitoring";

/// The plug-ins bootherd has.
pub const PLUGINS: &[&str] = &["xcatmon"];

/// xcatmon's `getDescription` text (monls -d).
pub const XCATMON_DESCRIPTION: &str = "  Description:
    xcatmon provides node status monitoring using fping on AIX and nmap on Linux.
    It also provides application status monitoring. The status and the appstatus
    columns of the nodelist table will be  updated periodically  with the latest
    status values for the nodes.   Use  command 'monadd xcatmon -n' and then
    'monstart xcatmon'  to start monitoring.
  Settings:
    ping-interval:  the number of minutes between each nmap/fping operation.
        The default value is 3.
    apps: a list of comma separated application names whose status will be queried.
        For how to get the status of each app, look for app name in the key field
        in a different row.
    port: the application daemon port number, if not specified, use internal list,
        then /etc/services.
    group:  the name of a node group that needs to get the application status from.
         If not specified, assume all the nodes in the nodelist table.
         To specify more than one groups, use group=a,group=b format.
    cmd: the command that will be run locally on mn or sn.
    lcmd: the command that will be run locally on the mn only.
    dcmd: the command that will be run distributed on the nodes using xdsh.

       For commands specified by 'cmd' and 'lcmd', the input of is a list of comma
       separated node names, the output must be in the following format:
         node1:string1
         node2:string2
         ...
       For the command specified by 'dcmd', no input is needed, the output can be a
       string.";

/// xCAT's `disable` test for monitoring rows: enabled when the value matches `/0|NO|No|no|N|n/`.
pub fn enabled_value(disable: Option<&str>) -> bool {
    disable.is_some_and(|d| {
        ["0", "NO", "No", "no", "N", "n"]
            .iter()
            .any(|p| d.contains(p))
    })
}

/// xCAT's `nodestatmon` test: `/1|Yes|yes|YES|Y|y/`.
pub fn yes_value(v: Option<&str>) -> bool {
    v.is_some_and(|d| {
        ["1", "Yes", "yes", "YES", "Y", "y"]
            .iter()
            .any(|p| d.contains(p))
    })
}

/// One `monitoring` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonRow {
    pub name: String,
    pub nodestatmon: bool,
    pub enabled: bool,
}

/// Every `monitoring` row, in table order.
pub fn monitoring_rows(store: &Store) -> Result<Vec<MonRow>, StoreError> {
    Ok(store
        .rows("monitoring")?
        .into_iter()
        .filter_map(|r| {
            let get = |i: usize| r.get(i).cloned().flatten();
            let name = get(0)?;
            Some(MonRow {
                name,
                nodestatmon: yes_value(get(1).as_deref()),
                enabled: enabled_value(get(3).as_deref()),
            })
        })
        .collect())
}

/// `monsetting` rows of one plug-in: key → value (rows with `disable` set are skipped).
pub fn settings(store: &Store, plugin: &str) -> Result<BTreeMap<String, String>, StoreError> {
    let spec = crate::store::table_spec("monsetting")?;
    Ok(store
        .rows("monsetting")?
        .into_iter()
        .filter(|r| !crate::store::is_disabled(spec, r))
        .filter(|r| r.first().cloned().flatten().as_deref() == Some(plugin))
        .filter_map(|r| {
            let k = r.get(1).cloned().flatten()?;
            Some((k, r.get(2).cloned().flatten().unwrap_or_default()))
        })
        .collect())
}

/// xcatmon's `ping-interval` in minutes (fractions allowed; xCAT's default 3 when unset, not a
/// number or not above 0).
pub fn ping_interval(settings: &BTreeMap<String, String>) -> f64 {
    settings
        .get("ping-interval")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(3.0)
}

/// A minutes value as xCAT prints it (`3`, `0.5`).
pub fn minutes_text(m: f64) -> String {
    if m.fract() == 0.0 && m < 1e15 {
        format!("{}", m as u64)
    } else {
        format!("{m}")
    }
}

/// How an application's status is learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppCheck {
    Port(u16),
    /// `cmd=` or `lcmd=`: run here with the nodes as one comma-separated argument; prints
    /// `node:string` lines.
    Command(String),
    /// `dcmd=`: runs on the nodes through xdsh, which bootherd does not have.
    Remote(String),
}

/// One application nodestat asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub name: String,
    pub check: AppCheck,
    /// Only nodes of these groups (empty: every node).
    pub groups: Vec<String>,
}

/// xCAT's port list for well-known applications (nodestat.pm `%default_ports`).
fn default_port(app: &str) -> Option<u16> {
    Some(match app {
        "ftp" => 21,
        "ssh" | "sshd" => 22,
        "pbs" | "pbs_mom" => 15002,
        "xend" => 8002,
        "ll" | "loadl" | "loadl_master" | "loadleveler" => 9616,
        "gpfs" => 1191,
        "rdp" => 3389,
        "msrpc" => 135,
        "https" => 443,
        _ => return None,
    })
}

/// The first `/etc/services` port of `app` (xCAT greps `^app` and sorts).
fn services_port(app: &str) -> Option<u16> {
    let text = std::fs::read_to_string("/etc/services").ok()?;
    let mut lines: Vec<&str> = text.lines().filter(|l| l.starts_with(app)).collect();
    lines.sort_unstable();
    let first = lines.first()?;
    first
        .split('/')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The applications nodestat asks about: with `usemon`, the `monsetting` `xcatmon apps` list
/// (plus sshd, which xCAT always adds), else xCAT's defaults (sshd, https, pbs, xend, rdp, msrpc
/// by port). An application without a port, command or known port is an error, in xCAT's words.
pub fn apps(store: &Store, usemon: bool) -> Result<Vec<App>, String> {
    let defaults = || {
        [
            ("sshd", 22),
            ("https", 443),
            ("pbs", 15002),
            ("xend", 8002),
            ("rdp", 3389),
            ("msrpc", 135),
        ]
        .iter()
        .map(|(n, p)| App {
            name: (*n).into(),
            check: AppCheck::Port(*p),
            groups: Vec::new(),
        })
        .collect::<Vec<_>>()
    };
    if !usemon {
        return Ok(defaults());
    }
    let s = settings(store, "xcatmon").map_err(|e| e.to_string())?;
    let Some(list) = s.get("apps").filter(|v| !v.trim().is_empty()) else {
        return Ok(defaults());
    };
    let mut out: Vec<App> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if out.iter().any(|a| a.name == name) {
            continue;
        }
        let mut kv: HashMap<String, Vec<String>> = HashMap::new();
        if let Some(v) = s.get(name) {
            for pair in v.split(',') {
                let mut it = pair.splitn(2, '=');
                let k = it.next().unwrap_or("").trim().to_string();
                let val = it.next().unwrap_or("").trim().to_string();
                kv.entry(k).or_default().push(val);
            }
        }
        let one = |k: &str| kv.get(k).and_then(|v| v.first()).cloned();
        let check = if let Some(c) = one("cmd").or_else(|| one("lcmd")) {
            AppCheck::Command(c)
        } else if let Some(c) = one("dcmd") {
            AppCheck::Remote(c)
        } else if let Some(p) = one("port") {
            AppCheck::Port(p.parse().map_err(|_| {
                format!("The port number '{p}' of application {name} in the monsetting table is not a number.")
            })?)
        } else if let Some(p) = default_port(name).or_else(|| services_port(name)) {
            AppCheck::Port(p)
        } else {
            return Err(format!("Cannot find port number for application {name}. Please either specify a port number or a command in monsetting table for {name}."));
        };
        out.push(App {
            name: name.to_string(),
            check,
            groups: kv.get("group").cloned().unwrap_or_default(),
        });
    }
    if !out.iter().any(|a| a.name == "sshd") {
        out.push(App {
            name: "sshd".into(),
            check: AppCheck::Port(22),
            groups: Vec::new(),
        });
    }
    Ok(out)
}

/// One node's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStat {
    pub node: String,
    /// `ping`, `noping`, the installer's answer or the `nodeset stat` value; empty when the
    /// node could not be probed (see `message`).
    pub status: String,
    /// The applications that answered, comma-separated (`sshd,https`), and command results
    /// (`gpfs=ok`).
    pub appstatus: String,
    /// Every application with `=up`/`=down` (and command results), for `nodelist.appstatus`.
    pub appsd: String,
    /// Said instead of a status (no address for the node).
    pub message: Option<String>,
}

impl NodeStat {
    /// The text nodestat prints after `node: ` (nodestat.pm's display rule).
    pub fn display(&self) -> String {
        if let Some(m) = &self.message {
            return m.clone();
        }
        let (st, ast) = (&self.status, &self.appstatus);
        if st.is_empty() {
            ast.clone()
        } else if st == "ping" {
            if ast.is_empty() {
                st.clone()
            } else {
                ast.clone()
            }
        } else if ast.is_empty() {
            st.clone()
        } else {
            format!("{st},{ast}")
        }
    }
}

/// xCAT's installer port: a node being installed answers `stat \n` with its progress.
const INSTALLER_PORT: u16 = 3001;

/// How the probes of one nodestat run go.
#[derive(Debug, Clone)]
pub struct StatOpts {
    pub usemon: bool,
    pub timeout: Duration,
    pub concurrency: usize,
}

impl Default for StatOpts {
    fn default() -> Self {
        StatOpts {
            usemon: false,
            timeout: Duration::from_millis(1500),
            concurrency: 512,
        }
    }
}

/// A node's address: `hosts.ip`, else the system resolver.
async fn address(r: &Resolver, node: &str) -> Option<IpAddr> {
    if let Ok(Some(ip)) = r.attr(node, "hosts", "ip") {
        if let Ok(a) = ip.trim().parse() {
            return Some(a);
        }
    }
    let mut it = tokio::net::lookup_host((node, 0)).await.ok()?;
    it.next().map(|a| a.ip())
}

/// Asks a node's installer on port 3001 for its status (the first line of the answer).
async fn installer_query(ip: IpAddr, timeout: Duration) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let go = async {
        let mut s =
            tokio::net::TcpStream::connect(std::net::SocketAddr::new(ip, INSTALLER_PORT)).await?;
        s.write_all(b"stat \n").await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 512];
        while buf.len() < 4096 {
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.contains(&b'\n') {
                break;
            }
        }
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(timeout, go).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&buf);
    let first = text.split('\n').next().unwrap_or("").trim_end().to_string();
    (!first.is_empty()).then_some(first)
}

/// Runs a `cmd=`/`lcmd=` application check: `<cmd> n1,n2,…`, output `node:string` lines.
fn run_app_command(cmd: &str, nodes: &[String]) -> Vec<(String, String)> {
    let arg = nodes.join(",");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{cmd} {arg}"))
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| {
                let mut it = l.splitn(3, ':');
                let n = it.next()?.to_string();
                let v = it.next().unwrap_or("").to_string();
                Some((n, v))
            })
            .collect(),
        Ok(o) => {
            tracing::debug!(
                "nodestat application command '{cmd}' exited with {}",
                o.status
            );
            Vec::new()
        }
        Err(e) => {
            tracing::debug!("cannot run nodestat application command '{cmd}': {e}");
            Vec::new()
        }
    }
}

/// The status of every node in `nodes` (sorted by name), probed concurrently.
pub async fn nodestat(
    r: Arc<Resolver>,
    nodes: Vec<String>,
    opts: &StatOpts,
) -> Result<Vec<NodeStat>, String> {
    let store = r.store().clone();
    let usemon = opts.usemon;
    let apps = tokio::task::spawn_blocking(move || apps(&store, usemon))
        .await
        .map_err(|e| e.to_string())??;
    // Group members, for apps limited to groups.
    let membership = r.membership().map_err(|e| e.to_string())?;
    let applies = |a: &App, node: &str| {
        a.groups.is_empty()
            || membership
                .node_groups
                .get(node)
                .is_some_and(|g| g.iter().any(|g| a.groups.contains(g)))
    };
    let mut ports: Vec<u16> = apps
        .iter()
        .filter_map(|a| match a.check {
            AppCheck::Port(p) => Some(p),
            _ => None,
        })
        .collect();
    ports.push(INSTALLER_PORT);
    ports.sort_unstable();
    ports.dedup();

    let mut stats: Vec<NodeStat> = Vec::with_capacity(nodes.len());
    let mut targets = Vec::new();
    let mut target_of = Vec::new();
    for n in &nodes {
        let mut s = NodeStat {
            node: n.clone(),
            ..Default::default()
        };
        match address(&r, n).await {
            Some(ip) => {
                targets.push(ip);
                target_of.push(stats.len());
            }
            None => {
                s.message = Some(format!(
                    "Please make sure {n} exists in /etc/hosts or DNS or hosts table"
                ))
            }
        }
        stats.push(s);
    }
    let popts = probe::ProbeOpts {
        ports,
        timeout: opts.timeout,
        concurrency: opts.concurrency,
    };
    let outcomes = probe::probe(&targets, &popts).await;
    let ctx = crate::boot::render::RenderCtx {
        tftpdir: std::path::PathBuf::from(
            r.site("tftpdir")
                .ok()
                .flatten()
                .unwrap_or_else(|| "/tftpboot".into()),
        ),
        server_ip: None,
    };
    for (ti, o) in outcomes.iter().enumerate() {
        let s = &mut stats[target_of[ti]];
        if !o.up {
            s.status = "noping".into();
            continue;
        }
        let node = s.node.clone();
        let mut up_apps: Vec<&str> = Vec::new();
        let mut sd: Vec<String> = Vec::new();
        for a in apps.iter().filter(|a| applies(a, &node)) {
            if let AppCheck::Port(p) = a.check {
                let up = o.open.contains(&p);
                if up {
                    up_apps.push(&a.name);
                }
                sd.push(format!("{}={}", a.name, if up { "up" } else { "down" }));
            }
        }
        up_apps.sort_unstable();
        up_apps.dedup();
        if !up_apps.is_empty() {
            s.status = "ping".into();
            s.appstatus = up_apps.join(",");
            s.appsd = sd.join(",");
            continue;
        }
        let currstate = r.attr(&node, "chain", "currstate").ok().flatten();
        if o.open.contains(&INSTALLER_PORT)
            && currstate
                .as_deref()
                .is_some_and(|c| c.starts_with("install"))
        {
            if let Some(text) = installer_query(targets[ti], opts.timeout).await {
                s.status = "ping".into();
                s.appstatus = text;
                s.appsd = sd.join(",");
                continue;
            }
        }
        // Pingable, with nothing to tell what it runs: its nodeset state.
        s.status = match crate::boot::render::node_boot(&r, &node, &ctx) {
            Ok(b) => b.state.label(),
            Err(e) => format!("ping ({e})"),
        };
    }
    // Command applications.
    for a in &apps {
        let applicable: Vec<String> = nodes.iter().filter(|n| applies(a, n)).cloned().collect();
        if applicable.is_empty() {
            continue;
        }
        let results: Vec<(String, String)> = match &a.check {
            AppCheck::Port(_) => continue,
            AppCheck::Command(c) => {
                let c = c.clone();
                tokio::task::spawn_blocking(move || run_app_command(&c, &applicable))
                    .await
                    .unwrap_or_default()
            }
            AppCheck::Remote(_) => {
                tracing::debug!(
                    "nodestat: application {} needs xdsh (dcmd), which bootherd does not have",
                    a.name
                );
                continue;
            }
        };
        for (n, v) in results {
            if let Some(s) = stats.iter_mut().find(|s| s.node == n) {
                let item = format!("{}={v}", a.name);
                for f in [&mut s.appstatus, &mut s.appsd] {
                    if f.is_empty() {
                        *f = item.clone();
                    } else {
                        f.push(',');
                        f.push_str(&item);
                    }
                }
            }
        }
    }
    stats.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(stats)
}

/// What [`update`] wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Updated {
    /// Nodes whose `status` changed.
    pub status: usize,
    /// Nodes whose `appstatus` changed.
    pub appstatus: usize,
}

/// Merges `new` (`app=up,…`) into `old` as xCAT does: a known app's value is replaced, a new
/// one appended.
pub fn merge_appstatus(old: &str, new: &str) -> String {
    let mut items: Vec<(String, String)> = old
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let mut it = s.splitn(2, '=');
            (
                it.next().unwrap_or("").to_string(),
                it.next().unwrap_or("").to_string(),
            )
        })
        .collect();
    for s in new.split(',').filter(|s| !s.is_empty()) {
        let mut it = s.splitn(2, '=');
        let (k, v) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
        match items.iter_mut().find(|(ik, _)| ik == k) {
            Some(slot) => slot.1 = v.to_string(),
            None => items.push((k.to_string(), v.to_string())),
        }
    }
    items
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Writes the statuses into `nodelist` (`nodestat -u`): `status`/`statustime` where the status
/// changed, `appstatus`/`appstatustime` where the merged application status changed (cleared on
/// `noping`). Nothing is written for a node whose values are unchanged, so a periodic run
/// touches the store only on transitions. One transaction.
pub fn update(
    store: &Store,
    stats: &[NodeStat],
    audit: Option<&Audit>,
) -> Result<Updated, StoreError> {
    let spec = crate::store::table_spec("nodelist")?;
    let (sc, ac) = (
        spec.col_index("status").unwrap_or(2),
        spec.col_index("appstatus").unwrap_or(4),
    );
    let now = crate::store::now_xcat();
    // node, new status (None: unchanged; Some(None): cleared), new appstatus (the same).
    type Change = (String, Option<Option<String>>, Option<Option<String>>);
    let mut changes: Vec<Change> = Vec::new();
    for s in stats.iter().filter(|s| s.message.is_none()) {
        let Some(row) = store.get("nodelist", &[&s.node])? else {
            continue;
        };
        let old_status = row.get(sc).cloned().flatten().unwrap_or_default();
        let old_app = row.get(ac).cloned().flatten().unwrap_or_default();
        let status =
            (s.status != old_status).then(|| (!s.status.is_empty()).then(|| s.status.clone()));
        let new_app = if s.status.contains("noping") {
            String::new()
        } else {
            merge_appstatus(&old_app, &s.appsd)
        };
        let app = (new_app != old_app).then(|| (!new_app.is_empty()).then_some(new_app));
        if status.is_some() || app.is_some() {
            changes.push((s.node.clone(), status, app));
        }
    }
    if changes.is_empty() {
        return Ok(Updated::default());
    }
    let written = store.write(audit, |tx| {
        let mut u = Updated::default();
        for (node, status, app) in &changes {
            let mut cols: Vec<(&str, Option<&str>)> = Vec::new();
            if let Some(st) = status {
                u.status += 1;
                cols.push(("status", st.as_deref()));
                cols.push(("statustime", st.as_ref().map(|_| now.as_str())));
            }
            if let Some(a) = app {
                u.appstatus += 1;
                cols.push(("appstatus", a.as_deref()));
                cols.push(("appstatustime", Some(now.as_str())));
            }
            tx.set("nodelist", &[node], &cols)?;
        }
        Ok(u)
    })?;
    // Liveness transitions belong in the nodes' boot timelines (a node that stops answering in
    // the middle of a boot is the question the timeline answers).
    for (node, status, _) in &changes {
        if let Some(st) = status {
            crate::timeline::record_with(|| {
                crate::timeline::Event::now(
                    crate::timeline::Who::Node(node.clone()),
                    crate::timeline::Kind::Status,
                    format!("nodestat: {}", st.as_deref().unwrap_or("(none)")),
                )
            });
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xcat_flag_values() {
        assert!(enabled_value(Some("0")));
        assert!(enabled_value(Some("no")));
        assert!(!enabled_value(Some("1")));
        assert!(!enabled_value(None));
        assert!(yes_value(Some("Y")));
        assert!(!yes_value(Some("N")));
    }

    #[test]
    fn display_follows_nodestat_pm() {
        let mut s = NodeStat {
            node: "n1".into(),
            status: "ping".into(),
            appstatus: "https,sshd".into(),
            ..Default::default()
        };
        assert_eq!(s.display(), "https,sshd");
        s.appstatus.clear();
        assert_eq!(s.display(), "ping");
        s.status = "noping".into();
        s.appstatus = "gpfs=ok".into();
        assert_eq!(s.display(), "noping,gpfs=ok");
    }

    #[test]
    fn appstatus_merge() {
        assert_eq!(merge_appstatus("", "sshd=up,pbs=down"), "sshd=up,pbs=down");
        assert_eq!(
            merge_appstatus("sshd=up,gpfs=ok", "sshd=down,pbs=down"),
            "sshd=down,gpfs=ok,pbs=down"
        );
    }

    #[test]
    fn intervals() {
        let mut s = BTreeMap::new();
        assert_eq!(ping_interval(&s), 3.0);
        s.insert("ping-interval".into(), "0.05".into());
        assert_eq!(ping_interval(&s), 0.05);
        s.insert("ping-interval".into(), "-1".into());
        assert_eq!(ping_interval(&s), 3.0);
        assert_eq!(minutes_text(2.0), "2");
        assert_eq!(minutes_text(0.5), "0.5");
    }
}
