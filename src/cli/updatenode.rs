//! `updatenode <noderange> [-P scripts] [-s]`: runs the postscript runner on nodes over ssh.
//! Each node downloads `xcatdsklspost` from this appliance and runs it; `-s` makes the node take
//! this appliance as its master (recorded in its /opt/xcat/xcatinfo), as xCAT's `updatenode -s`;
//! a node of service nodes takes its service node instead (`noderes.xcatmaster`, else the first
//! live appliance of `noderes.servicenode`): `chdef` it to another one, then `updatenode -s` moves it.

use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex};

use anyhow::bail;
use clap::Args;

use super::nodes::report_missing;
use super::DbOpt;
use crate::boot::render::my_ip_for;
use crate::store::resolver::Resolver;

#[derive(Debug, Args)]
pub struct UpdatenodeArgs {
    /// Run only these postscripts (comma-separated)
    #[arg(short = 'P', value_name = "SCRIPTS")]
    scripts: Option<String>,
    /// Make the nodes take this appliance as their master
    #[arg(short = 's')]
    set_master: bool,
    /// ssh user
    #[arg(long, default_value = "root")]
    user: String,
    /// Extra ssh options (repeatable), e.g. -o Port=2222
    #[arg(long = "ssh-option", value_name = "OPT")]
    ssh_options: Vec<String>,
    /// Nodes run at once
    #[arg(long, default_value_t = 32)]
    fanout: usize,
    /// The nodes
    #[arg(allow_hyphen_values = true)]
    noderange: String,
}

/// A node and how its run went.
type NodeResult = (String, Result<(), String>);

/// A string quoted for a POSIX shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

pub fn updatenode(db: &DbOpt, a: UpdatenodeArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let r = Resolver::new(store);
    let exp = r.noderange(&a.noderange, true)?;
    let mut failed = report_missing(&exp.missing);
    if exp.nodes.is_empty() {
        bail!("no nodes in '{}'", a.noderange);
    }
    let port = r.site("httpport")?.unwrap_or_else(|| "80".into());
    let master = r.site_master()?;
    // A node of service nodes is pointed at its (live) service node, as xCAT's updatenode does.
    let registry = crate::appliance::list(r.store())?;
    let now = crate::appliance::now();
    let hosts_ip = |h: &str| {
        r.attr(h, "hosts", "ip")
            .ok()
            .flatten()
            .and_then(|s| s.trim().parse().ok())
    };
    let mut jobs = Vec::new();
    for n in &exp.nodes {
        let ip = r.attr(n, "hosts", "ip")?;
        let addr = ip.clone().unwrap_or_else(|| n.clone());
        let sn = r.attr(n, "noderes", "servicenode")?;
        let xm = r.attr(n, "noderes", "xcatmaster")?;
        let nip = ip.as_deref().and_then(|i| i.trim().parse().ok());
        let me = match crate::appliance::master_of_node(
            sn.as_deref(),
            xm.as_deref(),
            nip,
            &registry,
            &hosts_ip,
            now,
        ) {
            Some(x) => x,
            None => my_ip_for(
                ip.as_deref().and_then(|i| i.parse().ok()),
                None,
                master.as_deref(),
            ),
        };
        let mut args = vec![
            if a.set_master {
                "-M".to_string()
            } else {
                "-m".to_string()
            },
            format!("{me}:{port}"),
        ];
        if let Some(p) = &a.scripts {
            args.push("-P".into());
            args.push(p.clone());
        }
        let remote = format!(
            "f=$(mktemp) && wget -q -O \"$f\" {url} && sh \"$f\" {args}; rc=$?; rm -f \"$f\"; exit $rc",
            url = sh_quote(&format!("http://{me}:{port}/install/postscripts/xcatdsklspost")),
            args = args.iter().map(|x| sh_quote(x)).collect::<Vec<_>>().join(" ")
        );
        jobs.push((n.clone(), addr, remote));
    }
    let results: Arc<Mutex<Vec<NodeResult>>> = Arc::new(Mutex::new(Vec::new()));
    let queue = Arc::new(Mutex::new(jobs));
    let mut workers = Vec::new();
    for _ in 0..a.fanout.clamp(1, 256) {
        let (q, res, user, opts) = (
            queue.clone(),
            results.clone(),
            a.user.clone(),
            a.ssh_options.clone(),
        );
        workers.push(std::thread::spawn(move || loop {
            let job = q.lock().ok().and_then(|mut q| q.pop());
            let Some((node, addr, remote)) = job else {
                return;
            };
            let mut c = Command::new("ssh");
            c.args([
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=accept-new",
                "-o",
                "ConnectTimeout=10",
            ]);
            for o in &opts {
                c.arg("-o").arg(o);
            }
            c.arg(format!("{user}@{addr}")).arg(remote);
            let out = match c.output() {
                Ok(o) if o.status.success() => Ok(()),
                Ok(o) => Err(format!(
                    "the runner failed ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                        .trim()
                )),
                Err(e) => Err(format!("cannot run ssh: {e}")),
            };
            if let Ok(mut r) = res.lock() {
                r.push((node, out));
            }
        }));
    }
    for w in workers {
        let _ = w.join();
    }
    let mut results = results.lock().map(|r| r.clone()).unwrap_or_default();
    results.sort_by(|x, y| x.0.cmp(&y.0));
    for (n, r) in results {
        match r {
            Ok(()) => crate::outln!("{n}: done"),
            Err(e) => {
                crate::outln!("{n}: Error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
