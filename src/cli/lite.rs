//! Statelite commands: `litefile <noderange|image>`, `litetree <noderange>`, `liteimg <image>`
//! (also `liteimg -o os -a arch -p profile`), with xCAT's output formats.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

use super::nodes::report_missing;
use super::DbOpt;
use crate::image::lite::{self, LiteError};
use crate::image::liteimg::{self, Liteimg};
use crate::store::resolver::Resolver;

#[derive(Debug, Args)]
pub struct LitefileArgs {
    /// Nodes, or one osimage name
    #[arg(allow_hyphen_values = true)]
    target: String,
}

#[derive(Debug, Args)]
pub struct LitetreeArgs {
    /// The nodes
    #[arg(allow_hyphen_values = true)]
    noderange: String,
}

#[derive(Debug, Args)]
pub struct LiteimgArgs {
    /// The osimage (provmethod statelite)
    image: Option<String>,
    /// OS of the image (with -a and -p, instead of a name)
    #[arg(short = 'o', long = "osver")]
    osver: Option<String>,
    /// Architecture
    #[arg(short = 'a', long = "arch")]
    arch: Option<String>,
    /// Profile
    #[arg(short = 'p', long = "profile")]
    profile: Option<String>,
    /// Print every step
    #[arg(short = 'V', long = "verbose")]
    verbose: bool,
}

fn print_files(who: &str, files: &[lite::LiteFile]) {
    let mut out = super::stdout();
    for f in files {
        let _ = std::io::Write::write_fmt(
            &mut out,
            format_args!("{who}: {:<13} {}\n", f.options, f.path),
        );
    }
    let _ = super::finish(out);
}

pub fn litefile(db: &DbOpt, a: LitefileArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let r = Resolver::new(store);
    let is_node = r.membership()?.nodes.contains(a.target.as_str());
    if !is_node && crate::boot::state::osimage(&r, &a.target)?.is_some() {
        print_files(&a.target, &lite::litefile(&r, &a.target)?);
        return Ok(ExitCode::SUCCESS);
    }
    let exp = r.noderange(&a.target, true)?;
    let mut failed = report_missing(&exp.missing);
    for node in &exp.nodes {
        match lite::node_image(&r, node) {
            Ok(img) => print_files(node, &lite::litefile(&r, &img)?),
            Err(e) => {
                crate::outln!("{node}: Error: {e}");
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

pub fn litetree(db: &DbOpt, a: LitetreeArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let r = Resolver::new(store);
    let exp = r.noderange(&a.noderange, true)?;
    let mut failed = report_missing(&exp.missing);
    for node in &exp.nodes {
        let res = lite::node_image(&r, node).and_then(|img| lite::litetree(&r, node, &img));
        match res {
            Ok(dirs) => {
                for d in dirs {
                    crate::outln!("{node}: {}", d.line());
                }
            }
            Err(e) => {
                crate::outln!("{node}: Error: {e}");
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

pub fn liteimg(db: &DbOpt, a: LiteimgArgs) -> anyhow::Result<ExitCode> {
    let image = match (&a.image, &a.osver, &a.arch, &a.profile) {
        (Some(i), None, None, None) => i.clone(),
        (Some(_), ..) => {
            bail!("-o, -p and -a options are not allowed when an image name is specified")
        }
        (None, Some(o), Some(ar), Some(p)) => format!("{o}-{ar}-statelite-{p}"),
        _ => bail!("give an osimage name, or all of -o <os> -a <arch> -p <profile>"),
    };
    let store = db.open()?;
    let r = Resolver::new(store);
    let root = match liteimg::image_root(&r, &image) {
        Ok(p) => p,
        Err(e) => bail!("{e}"),
    };
    let files = lite::litefile(&r, &image)?;
    let installdir = PathBuf::from(r.site("installdir")?.unwrap_or_else(|| "/install".into()));
    let script = liteimg::shipped_script();
    let mut out = |l: &str| crate::outln!("{l}");
    let res = Liteimg::new(root.clone(), a.verbose, &mut out).run(
        &files,
        &script,
        Some(&installdir.join("postscripts")),
    );
    match res {
        Ok(()) => {
            // As xCAT's liteimg: the kernel and statelite initrd genimage built go where nodeset's
            // boot files point.
            let tftpdir = PathBuf::from(r.site("tftpdir")?.unwrap_or_else(|| "/tftpboot".into()));
            if let Some(dir) = root.parent() {
                let dest = tftpdir.join("xcat/osimage").join(&image);
                for f in ["kernel", "initrd-statelite.gz"] {
                    let src = dir.join(f);
                    if src.is_file() {
                        std::fs::create_dir_all(&dest)?;
                        let tmp = dest.join(format!(".{f}.new"));
                        std::fs::copy(&src, &tmp)?;
                        std::fs::rename(&tmp, dest.join(f))?;
                        crate::outln!("{} copied to {}", src.display(), dest.display());
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(LiteError::Invalid(msg)) => {
            for l in msg.lines() {
                crate::errln!("Error: {l}");
            }
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}
