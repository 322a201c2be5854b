//! `bootherd man <dir>`: man pages generated from the command line definitions (clap_mangen), so
//! that the installed pages always match the binary: `bootherd.1`, one `<command>.1` for every
//! name in [`super::COMMANDS`] (the links on the PATH: `nodels.1`, `tabdump.1`, …) and
//! `bootherd-<sub>.1` for the other subcommands (`serve`, `links`, `db`, `cert`, `man`).

use anyhow::Context;
use clap::CommandFactory;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Directory to write the pages in (created if missing), for example /usr/share/man/man1
    pub dir: std::path::PathBuf,
}

fn write_page(cmd: clap::Command, path: &Path) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .section("1")
        .manual("bootherd")
        .render(&mut buf)
        .with_context(|| format!("cannot render {}", path.display()))?;
    std::fs::write(path, buf).with_context(|| format!("cannot write {}", path.display()))
}

pub fn man(a: ManArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&a.dir)
        .with_context(|| format!("cannot create {}", a.dir.display()))?;
    let mut top = super::Cli::command();
    top.build();
    let mut n = 0;
    for sub in top.get_subcommands() {
        let name = sub.get_name().to_string();
        if name == "help" {
            continue;
        }
        // Commands also reachable through a link (`chtab` is an alias of `tabch`) get a page of
        // their own name; the rest are `bootherd <sub>`.
        let mut names: Vec<String> = super::COMMANDS
            .iter()
            .filter(|c| **c == name || sub.get_all_aliases().any(|al| al == **c))
            .map(|c| c.to_string())
            .collect();
        if names.is_empty() {
            names.push(format!("bootherd-{name}"));
        }
        for page in names {
            let cmd = sub
                .clone()
                .name(page.clone())
                .bin_name(page.clone())
                .display_name(page.clone())
                .version(env!("CARGO_PKG_VERSION"));
            write_page(cmd, &a.dir.join(format!("{page}.1")))?;
            n += 1;
        }
    }
    write_page(top, &a.dir.join("bootherd.1"))?;
    n += 1;
    crate::outln!("{n} man pages written in {}", a.dir.display());
    Ok(ExitCode::SUCCESS)
}
