//! `lslite`: the statelite summary of nodes (persistent directory, litefile, litetree) or of an
//! osimage (`-i`), in the layout of xCAT's litetree.pm (`>>>Node:`, eight-space indents,
//! `%-13s` options).

use std::process::ExitCode;

use clap::Args;

use super::nodes::report_missing;
use super::xcatdb::Output;
use super::DbOpt;
use crate::image::lite;
use crate::store::resolver::Resolver;

#[derive(Debug, Args)]
pub struct LsliteArgs {
    /// The osimage to show (its merged litefile entries)
    #[arg(short = 'i', value_name = "IMAGE")]
    image: Option<String>,
    /// Verbose (accepted as xCAT's is)
    #[arg(short = 'V', long = "verbose")]
    verbose: bool,
    /// The nodes
    noderange: Option<String>,
}

fn file_line(f: &lite::LiteFile) -> String {
    format!("        {:<13} {}", f.options, f.path)
}

/// What lslite prints for `a`.
pub fn lslite_lines(r: &Resolver, a: &LsliteArgs) -> anyhow::Result<Output> {
    let mut out = Output::default();
    if let Some(img) = &a.image {
        if crate::boot::state::osimage(r, img)?.is_none() {
            out.err
                .push(format!("Error: The osimage named '{img}' is not defined."));
            out.code = 1;
            return Ok(out);
        }
        out.out
            .extend(lite::litefile(r, img)?.iter().map(file_line));
        return Ok(out);
    }
    let Some(range) = &a.noderange else {
        return Ok(out);
    };
    let exp = r.noderange(range, true)?;
    if report_missing(&exp.missing) {
        out.code = 1;
    }
    for node in &exp.nodes {
        let image = match lite::node_image(r, node) {
            Ok(i) => i,
            Err(e) => {
                out.err.push(format!("Error: {e}"));
                out.code = 1;
                continue;
            }
        };
        // litetree.pm sends ">>>Node: n\n" and "\n" as info lines; the client adds a newline to each.
        out.out.push(format!(">>>Node: {node}\n"));
        out.out.push(format!("Osimage: {image}\n"));
        out.out
            .push("Persistent directory (statelite table):".into());
        if let Some(m) = lite::statemnt(r, node)? {
            out.out.push(format!("        {m}"));
        }
        out.out.push("\n".into());
        out.out.push("Litefiles (litefile table):".into());
        out.out
            .extend(lite::litefile(r, &image)?.iter().map(file_line));
        out.out.push("\n".into());
        out.out.push("Litetree path (litetree table):".into());
        match lite::litetree(r, node, &image) {
            Ok(dirs) => {
                for d in dirs {
                    out.out
                        .push(format!("        {}, {}", d.priority_text, d.location));
                }
            }
            Err(e) => {
                out.err.push(format!("Error: {node}: {e}"));
                out.code = 1;
            }
        }
        out.out.push("\n".into());
    }
    Ok(out)
}

pub fn lslite(db: &DbOpt, a: LsliteArgs) -> anyhow::Result<ExitCode> {
    let store = db.open_existing()?;
    let r = Resolver::new(store);
    let _ = a.verbose;
    lslite_lines(&r, &a)?.print()
}
