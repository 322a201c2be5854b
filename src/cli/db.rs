//! `bootherd db`: operations on a whole store (not an xCAT command).
//!
//! `db copy <from-url> <to-url>` moves a store between backends (SQLite ↔ PostgreSQL) verbatim:
//! every table (the audit log too) in its row order, and the change log with its positions.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::DbOpt;
use crate::store::{postgres::redact, Store};

#[derive(Debug, Args)]
pub struct DbArgs {
    #[command(subcommand)]
    cmd: DbCmd,
}

#[derive(Debug, Subcommand)]
enum DbCmd {
    /// Copy a whole store into an empty one (sqlite:/path or postgres://user:password@host:port/dbname)
    Copy(CopyArgs),
}

#[derive(Debug, Args)]
struct CopyArgs {
    /// The store to read (it must exist)
    from: String,
    /// The store to write (created when missing; must be empty unless --force)
    to: String,
    /// Replace whatever the target holds
    #[arg(long)]
    force: bool,
}

pub fn db(_db: &DbOpt, a: DbArgs) -> anyhow::Result<ExitCode> {
    match a.cmd {
        DbCmd::Copy(c) => copy(c),
    }
}

fn copy(c: CopyArgs) -> anyhow::Result<ExitCode> {
    let r = Store::copy(&c.from, &c.to, c.force)?;
    crate::outln!(
        "Copied {} rows in {} tables and {} change-log entries (position {}) from {} to {}.",
        r.rows,
        r.tables,
        r.changes,
        r.position,
        redact(&c.from),
        redact(&c.to)
    );
    Ok(ExitCode::SUCCESS)
}
