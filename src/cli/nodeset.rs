//! `nodeset <noderange> <state>`: records each node's next boot (chain, nodetype) in one
//! transaction. The boot files are rendered when a node asks for them; `nodeset … show` prints
//! exactly what each node would be served, `stat` its state, `next` moves it along its chain.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::nodes::report_missing;
use super::DbOpt;
use crate::boot::nodeset::{apply_plans, next_plans, NodesetError, Plan};
use crate::boot::render::{self, BootFile, RenderCtx};
use crate::store::resolver::Resolver;
use crate::store::Audit;

#[derive(Debug, Args)]
pub struct NodesetArgs {
    /// The nodes
    #[arg(allow_hyphen_values = true)]
    noderange: String,
    /// osimage=<image>, install, netboot, statelite, boot, shell, standby, runcmd=<cmd>,
    /// runimage=<url>, shutdown, offline, enact, next, stat, show — or a comma-separated chain
    state: String,
}

fn render_ctx(r: &Resolver) -> anyhow::Result<RenderCtx> {
    Ok(RenderCtx {
        tftpdir: PathBuf::from(r.site("tftpdir")?.unwrap_or_else(|| "/tftpboot".into())),
        server_ip: None,
    })
}

pub fn nodeset(db: &DbOpt, a: NodesetArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let r = Resolver::new(store.clone());
    r.preload(&[
        "nodelist",
        "nodetype",
        "chain",
        "mac",
        "noderes",
        "hosts",
        "osimage",
        "linuximage",
        "site",
        "nodehm",
        "bootparams",
        "statelite",
    ])?;
    let exp = r.noderange(&a.noderange, true)?;
    let mut failed = report_missing(&exp.missing);
    let nodes = exp.nodes;
    if nodes.is_empty() {
        bail!("no nodes in '{}'", a.noderange);
    }
    let ctx = render_ctx(&r)?;
    let mut out = super::stdout();
    match a.state.as_str() {
        "stat" => {
            for n in &nodes {
                let b = render::node_boot(&r, n, &ctx)?;
                writeln!(out, "{n}: {}", b.state.label())?;
            }
            super::finish(out)?;
            return Ok(code(failed));
        }
        "show" => {
            for n in &nodes {
                let b = render::node_boot(&r, n, &ctx)?;
                let files = render::files_for(&b, &ctx);
                if files.is_empty() {
                    writeln!(
                        out,
                        "# {n}: {} — nothing is served (no boot files)",
                        b.state.label()
                    )?;
                }
                for (path, f) in files {
                    match f {
                        BootFile::Text(t) => {
                            writeln!(out, "# {n}: {}/{path}", ctx.tftpdir.display())?;
                            out.write_all(t.as_bytes())?;
                        }
                        BootFile::Alias(target) => {
                            writeln!(out, "# {n}: {}/{path} -> {target} (the boot loader binary, served as it is)", ctx.tftpdir.display())?;
                        }
                    }
                }
            }
            super::finish(out)?;
            return Ok(code(failed));
        }
        _ => {}
    }
    drop(out);

    // `next`: each node moves one step along its own chain.
    let audit = Audit {
        command: "nodeset".into(),
        noderange: a.noderange.clone(),
        args: a.state.clone(),
    };
    if a.state == "next" {
        let (plans, none) = next_plans(&r, &nodes)?;
        for n in none {
            crate::errln!(
                "{n}: Error: no chain to follow (chain.chain and chain.currchain are empty)"
            );
            failed = true;
        }
        let done = apply(&r, &ctx, &plans, &audit)?;
        for (n, cs) in done {
            crate::outln!("{n}: {cs}");
        }
        return Ok(code(failed));
    }

    // `enact`: the current state again (for osimage states, the image's facts afresh).
    let steps: Vec<String> = if a.state == "enact" {
        Vec::new()
    } else {
        a.state
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let mut plans = Vec::new();
    for n in &nodes {
        let (first, rest) = if a.state == "enact" {
            let cs = r.attr(n, "chain", "currstate")?.unwrap_or_default();
            let word = cs.split(' ').next().unwrap_or("").to_string();
            let step = match word.as_str() {
                "install" | "netboot" | "statelite" | "sysclone" => "osimage".to_string(),
                "" => {
                    crate::errln!("{n}: Error: no current state to enact");
                    failed = true;
                    continue;
                }
                _ => cs.clone(),
            };
            (step, Vec::new())
        } else {
            let first = steps.first().cloned().unwrap_or_default();
            (first, steps[1..].to_vec())
        };
        plans.push((n.clone(), first, rest));
    }
    let done = apply(&r, &ctx, &plans, &audit)?;
    for (n, cs) in done {
        crate::outln!("{n}: {cs}");
    }
    Ok(code(failed))
}

fn code(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Applies plans, printing every refused node's problem.
fn apply(
    r: &Resolver,
    ctx: &RenderCtx,
    plans: &[Plan],
    audit: &Audit,
) -> anyhow::Result<Vec<(String, String)>> {
    match apply_plans(r, ctx, plans, audit) {
        Ok(done) => Ok(done),
        Err(NodesetError::Refused(problems)) => {
            for p in &problems {
                crate::errln!("{p}");
            }
            bail!(
                "nodeset changed nothing: {} node(s) cannot be set",
                problems.len()
            )
        }
        Err(e) => Err(e.into()),
    }
}
