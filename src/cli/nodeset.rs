//! `nodeset <noderange> <state>`: records each node's next boot (chain, nodetype) in one
//! transaction. The boot files are rendered when a node asks for them; `nodeset … show` prints
//! exactly what each node would be served, `stat` its state, `next` moves it along its chain.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::nodes::report_missing;
use super::DbOpt;
use crate::boot::render::{self, BootFile, RenderCtx};
use crate::boot::state::{self, Destiny, Osimage};
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
        let mut plans = Vec::new();
        for n in &nodes {
            let cs = r.attr(n, "chain", "currstate")?;
            let cc = r.attr(n, "chain", "currchain")?;
            let ch = r.attr(n, "chain", "chain")?;
            match state::next_step(cs.as_deref(), cc.as_deref(), ch.as_deref()) {
                Some((step, rest)) => plans.push((n.clone(), step, vec![rest])),
                None => {
                    eprintln!("{n}: Error: no chain to follow (chain.chain and chain.currchain are empty)");
                    failed = true;
                }
            }
        }
        let done = apply_plans(&r, &ctx, &plans, &audit)?;
        for (n, cs) in done {
            println!("{n}: {cs}");
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
                    eprintln!("{n}: Error: no current state to enact");
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
    let done = apply_plans(&r, &ctx, &plans, &audit)?;
    for (n, cs) in done {
        println!("{n}: {cs}");
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

/// Validates every node's plan, then writes them all in one transaction. Any problem: nothing is
/// written and every problem is reported.
fn apply_plans(
    r: &Resolver,
    ctx: &RenderCtx,
    plans: &[(String, String, Vec<String>)],
    audit: &Audit,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut images: HashMap<String, Result<Osimage, String>> = HashMap::new();
    let mut problems = Vec::new();
    let mut ready = Vec::with_capacity(plans.len());
    let macs = r.column("mac", "mac")?;
    let netboot = r.column("noderes", "netboot")?;
    for (node, step, rest) in plans {
        let destiny = match Destiny::parse(step) {
            Ok(d) => d,
            Err(e) => bail!("{e}"),
        };
        let mut why = Vec::new();
        if macs
            .get(node)?
            .is_none_or(|m| m.split('|').all(|e| e.contains('!')))
        {
            why.push("no MAC address in mac.mac".to_string());
        }
        let nb = netboot.get(node)?;
        let image = match &destiny {
            Destiny::Osimage { image } => Some(image.clone()),
            Destiny::Shorthand(kind) => {
                let prov = r.attr(node, "nodetype", "provmethod")?;
                if kind == "osimage" {
                    prov
                } else {
                    let (os, arch, profile) = (
                        r.attr(node, "nodetype", "os")?,
                        r.attr(node, "nodetype", "arch")?,
                        r.attr(node, "nodetype", "profile")?,
                    );
                    match (os, arch, profile) {
                        (Some(o), Some(a), Some(p)) => Some(format!("{o}-{a}-{kind}-{p}")),
                        _ => {
                            why.push(format!("'{kind}' needs nodetype.os, arch and profile to name the image (or use osimage=<image>)"));
                            None
                        }
                    }
                }
            }
            _ => None,
        };
        let mut img = None;
        if let Some(name) = &image {
            let entry = images
                .entry(name.clone())
                .or_insert_with(|| check_image(r, ctx, name));
            match entry {
                Ok(i) => img = Some(i.clone()),
                Err(e) => why.push(e.clone()),
            }
        } else if matches!(destiny, Destiny::Shorthand(ref k) if k == "osimage") {
            why.push(
                "no osimage recorded for the node (nodetype.provmethod); use osimage=<image>"
                    .into(),
            );
        }
        if nb.is_none() && !matches!(destiny, Destiny::Offline) {
            why.push("no noderes.netboot (xnba, pxe, grub2, yaboot or petitboot)".into());
        }
        if !matches!(destiny, Destiny::Offline) && !why.is_empty() {
            problems.push(format!("{node}: Error: {}", why.join("; ")));
            continue;
        }
        ready.push((node.clone(), destiny, img, rest.clone()));
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("{p}");
        }
        bail!(
            "nodeset changed nothing: {} node(s) cannot be set",
            problems.len()
        );
    }
    let done = r.store().write(Some(audit), |tx| {
        let mut done = Vec::with_capacity(ready.len());
        for (node, destiny, img, rest) in &ready {
            let cs = state::apply(tx, node, destiny, img.as_ref(), rest)?;
            if matches!(destiny, Destiny::Offline) {
                // As xCAT's `makedhcp -d` on offline: the node's leases go.
                tx.delete_where("dhcpleases", "node", node)?;
            }
            done.push((node.clone(), cs));
        }
        Ok(done)
    })?;
    Ok(done)
}

/// The osimage exists and its kernel and initrd are under the TFTP root.
fn check_image(r: &Resolver, ctx: &RenderCtx, name: &str) -> Result<Osimage, String> {
    let img = match state::osimage(r, name) {
        Ok(Some(i)) => i,
        Ok(None) => {
            return Err(format!(
                "osimage '{name}' is not defined (lsdef -t osimage)"
            ))
        }
        Err(e) => return Err(e.to_string()),
    };
    if !matches!(
        img.provmethod.as_str(),
        "install" | "netboot" | "statelite" | "sysclone"
    ) {
        return Err(format!("osimage '{name}' has provmethod '{}' (install, netboot, statelite or sysclone expected)", img.provmethod));
    }
    if img.provmethod != "sysclone" {
        let (k, i) = state::image_files(&img.provmethod, name);
        for f in [k, i] {
            if !ctx.tftpdir.join(&f).is_file() {
                return Err(format!(
                    "osimage '{name}': {} is missing",
                    ctx.tftpdir.join(&f).display()
                ));
            }
        }
    }
    Ok(img)
}
