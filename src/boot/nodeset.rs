//! `nodeset`'s core, shared by the command and by node callbacks (`next` from an installer):
//! validate every node's plan, then write them all in one transaction.

use std::collections::HashMap;
use std::path::PathBuf;

use super::render::RenderCtx;
use super::state::{self, Destiny, Osimage};
use crate::store::resolver::Resolver;
use crate::store::{Audit, StoreError};

/// One node's plan: the state to apply now and the chain steps after it.
pub type Plan = (String, String, Vec<String>);

/// Why `nodeset` changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum NodesetError {
    /// Per-node problems (`node: Error: …`), all of them.
    #[error("nodeset changed nothing: {} node(s) cannot be set", .0.len())]
    Refused(Vec<String>),
    #[error("{0}")]
    BadState(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Plans for moving each node one step along its own chain (xCAT's nextdestiny). Nodes with no
/// chain are returned separately.
pub fn next_plans(r: &Resolver, nodes: &[String]) -> Result<(Vec<Plan>, Vec<String>), StoreError> {
    let mut plans = Vec::new();
    let mut none = Vec::new();
    for n in nodes {
        let cs = r.attr(n, "chain", "currstate")?;
        let cc = r.attr(n, "chain", "currchain")?;
        let ch = r.attr(n, "chain", "chain")?;
        match state::next_step(cs.as_deref(), cc.as_deref(), ch.as_deref()) {
            Some((step, rest)) => plans.push((n.clone(), step, vec![rest])),
            None => none.push(n.clone()),
        }
    }
    Ok((plans, none))
}

/// Validates every node's plan, then writes them all in one transaction. Any problem: nothing is
/// written and every problem is reported.
pub fn apply_plans(
    r: &Resolver,
    ctx: &RenderCtx,
    plans: &[Plan],
    audit: &Audit,
) -> Result<Vec<(String, String)>, NodesetError> {
    let mut images: HashMap<String, Result<Osimage, String>> = HashMap::new();
    let mut problems = Vec::new();
    let mut ready = Vec::with_capacity(plans.len());
    let macs = r.column("mac", "mac")?;
    let netboot = r.column("noderes", "netboot")?;
    for (node, step, rest) in plans {
        let destiny = match Destiny::parse(step) {
            Ok(d) => d,
            Err(e) => return Err(NodesetError::BadState(e)),
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
        return Err(NodesetError::Refused(problems));
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

/// Where a distribution's installer kernel and initrd are in a copycds'd tree (xCAT's mkinstall
/// per family): RHEL and friends `images/pxeboot`, SLES `boot/<arch>/loader`, Ubuntu live
/// media `casper`, Debian `install.amd`-style directories.
fn installer_files(pkgdir: &std::path::Path, arch: &str) -> Option<(PathBuf, PathBuf)> {
    let deb_arch = match arch {
        "x86_64" => "amd",
        "ppc64le" | "ppc64el" => "ppc64el",
        "aarch64" | "arm64" => "a64",
        other => other,
    };
    let candidates: Vec<(String, String)> = vec![
        (
            "images/pxeboot/vmlinuz".into(),
            "images/pxeboot/initrd.img".into(),
        ),
        (
            format!("boot/{arch}/loader/linux"),
            format!("boot/{arch}/loader/initrd"),
        ),
        ("casper/vmlinuz".into(), "casper/initrd".into()),
        (
            format!("install.{deb_arch}/vmlinuz"),
            format!("install.{deb_arch}/initrd.gz"),
        ),
        ("install/vmlinuz".into(), "install/initrd.gz".into()),
    ];
    candidates.into_iter().find_map(|(k, i)| {
        let (k, i) = (pkgdir.join(k), pkgdir.join(i));
        (k.is_file() && i.is_file()).then_some((k, i))
    })
}

/// For an install image whose kernel and initrd are not under the TFTP root yet, copies them there
/// from the install tree (`linuximage.pkgdir`, else `<installdir>/<os>/<arch>`), as xCAT's nodeset
/// does; xCAT's error when the tree has none.
fn stage_install_kernel(r: &Resolver, ctx: &RenderCtx, img: &Osimage) -> Result<(), String> {
    let (k, i) = state::image_files("install", &img.name);
    let (k, i) = (ctx.tftpdir.join(k), ctx.tftpdir.join(i));
    if k.is_file() && i.is_file() {
        return Ok(());
    }
    let installdir = r
        .site("installdir")
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|| "/install".into());
    let pkgdir = r
        .table("linuximage")
        .ok()
        .and_then(|t| {
            let c = t.spec.col_index("pkgdir")?;
            t.rows_for(&img.name)
                .next()
                .and_then(|row| row.get(c).cloned().flatten())
        })
        .and_then(|p| p.split(',').next().map(str::trim).map(str::to_string))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| format!("{installdir}/{}/{}", img.os, img.arch));
    let pkgdir = PathBuf::from(pkgdir);
    let Some((src_k, src_i)) = installer_files(&pkgdir, &img.arch) else {
        let missing = if k.is_file() { &i } else { &k };
        return Err(format!(
            "Install image not found in {} ({} is missing)",
            pkgdir.display(),
            missing.display()
        ));
    };
    let dir = k.parent().unwrap_or(&ctx.tftpdir);
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (from, to) in [(&src_k, &k), (&src_i, &i)] {
        // Into a temporary name first: a node never reads half a kernel.
        let tmp = to.with_extension("partial");
        std::fs::copy(from, &tmp)
            .and_then(|_| std::fs::rename(&tmp, to))
            .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    }
    Ok(())
}

/// The osimage exists and its kernel and initrd are under the TFTP root.
pub fn check_image(r: &Resolver, ctx: &RenderCtx, name: &str) -> Result<Osimage, String> {
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
    if img.provmethod == "install" {
        stage_install_kernel(r, ctx, &img)?;
    }
    if img.provmethod == "sysclone" {
        // Genesis runs the deploy script imgcapture wrote, with genesis's kernel and initrd.
        let installdir = r
            .site("installdir")
            .map_err(|e| e.to_string())?
            .unwrap_or_else(|| "/install".into());
        let script = crate::image::sysclone::paths(std::path::Path::new(&installdir), name).script;
        if !script.is_file() {
            return Err(format!(
                "osimage '{name}': {} is missing (capture it with imgcapture <node> -t sysclone -o {name})",
                script.display()
            ));
        }
        // linuximage.partitionfile, staged beside the script for the deploy to fetch.
        let li = r.table("linuximage").map_err(|e| e.to_string())?;
        let pf = li.rows_for(name).next().and_then(|row| {
            li.spec
                .col_index("partitionfile")
                .and_then(|i| row.get(i))
                .cloned()
                .flatten()
        });
        crate::image::sysclone::stage_partitions(
            std::path::Path::new(&installdir),
            name,
            pf.as_deref(),
        )?;
        let arch = if img.arch.is_empty() {
            "x86_64"
        } else {
            img.arch.as_str()
        };
        let kernel = ctx.tftpdir.join(format!("xcat/genesis.kernel.{arch}"));
        if !kernel.is_file() {
            return Err(format!(
                "osimage '{name}': {} is missing (sysclone deploys from genesis: run mknb {arch})",
                kernel.display()
            ));
        }
    } else {
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
