//! The rest of xCAT's table commands: `gettab`, `tabgrep`, `tabprune`, and the whole-database
//! `dumpxCATdb -p <dir>` / `restorexCATdb -p <dir>`, with xCAT's options, messages and exit codes
//! (tabutils.pm and the dumpxCATdb/restorexCATdb scripts). Each command's work is a function of
//! the store and its parsed arguments that returns the lines to print.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::Args;

use super::DbOpt;
use crate::store::resolver::Resolver;
use crate::store::{csv, schema, table_spec, Audit, Row, Store, TableSpec};

/// Output of a command: lines for standard output, lines for standard error, the exit code.
#[derive(Debug, Default)]
pub struct Output {
    pub out: Vec<String>,
    pub err: Vec<String>,
    pub code: u8,
}

impl Output {
    pub fn print(self) -> anyhow::Result<ExitCode> {
        use std::io::Write;
        let mut o = super::stdout();
        for l in &self.out {
            writeln!(o, "{l}")?;
        }
        super::finish(o)?;
        for l in &self.err {
            crate::errln!("{l}");
        }
        Ok(ExitCode::from(self.code))
    }
}

#[derive(Debug, Args)]
pub struct GettabArgs {
    /// Label every value with its table.column
    #[arg(short = 'H', long = "with-fieldname")]
    with_fieldname: bool,
    /// key=value[,key=value…] then table.attribute …
    #[arg(num_args = 2.., required = true)]
    args: Vec<String>,
}

/// gettab: the first row of each table matching every key=value, raw (no group inheritance).
pub fn gettab_lines(store: &Store, a: &GettabArgs) -> anyhow::Result<Output> {
    let mut out = Output::default();
    let keyspec = &a.args[0];
    let mut keys: Vec<(String, String)> = Vec::new();
    for kv in keyspec.split(',') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        keys.push((k.to_string(), v.to_string()));
    }
    // Columns by table, in the order asked.
    let mut by_table: Vec<(String, Vec<String>)> = Vec::new();
    for tc in &a.args[1..] {
        let (t, c) = tc.split_once('.').unwrap_or((tc.as_str(), ""));
        match by_table.iter_mut().find(|(x, _)| x == t) {
            Some((_, cols)) => cols.push(c.to_string()),
            None => by_table.push((t.to_string(), vec![c.to_string()])),
        }
    }
    let terse = !a.with_fieldname && a.args.len() == 2;
    for (t, _) in &by_table {
        let spec = table_spec(t).map_err(|_| anyhow!("Table {t} does not exist."))?;
        for (k, _) in &keys {
            if spec.col_index(k).is_none() {
                out.err.push(format!("Error: Unknown key {k} to {t}"));
                out.code = 1;
                return Ok(out);
            }
        }
    }
    for (t, cols) in &by_table {
        let spec = table_spec(t)?;
        let rows = store.rows(spec.name)?;
        let row = rows.iter().find(|r| {
            !crate::store::is_disabled(spec, r)
                && keys.iter().all(|(k, v)| {
                    spec.col_index(k)
                        .and_then(|i| r.get(i).cloned().flatten())
                        .unwrap_or_default()
                        == *v
                })
        });
        let Some(row) = row else { continue };
        // xCAT's getAttribs fails on a column the table lacks, and gettab then prints nothing
        // for that table (exit 0).
        if cols.iter().any(|c| spec.col_index(c).is_none()) {
            continue;
        }
        for c in cols {
            let v = spec
                .col_index(c)
                .and_then(|i| row.get(i).cloned().flatten())
                .unwrap_or_default();
            let v = super::request::shown(spec.name, c, &v).into_owned();
            if terse {
                out.out.push(v);
            } else {
                out.out.push(format!("{t}.{c}: {v}"));
            }
        }
    }
    Ok(out)
}

pub fn gettab(db: &DbOpt, a: GettabArgs) -> anyhow::Result<ExitCode> {
    let store = db.open_existing()?;
    gettab_lines(&store, &a)?.print()
}

#[derive(Debug, Args)]
pub struct TabgrepArgs {
    /// The node
    node: String,
}

/// tabgrep: the tables that have a row for the node (or one of its groups).
pub fn tabgrep_lines(store: &std::sync::Arc<Store>, node: &str) -> anyhow::Result<Output> {
    let mut out = Output::default();
    let r = Resolver::new(store.clone());
    let exp = r.noderange(node, true)?;
    if !exp.missing.is_empty() || exp.nodes.is_empty() {
        out.err.push(format!(
            "Error: Invalid nodes and/or groups in noderange: {}",
            exp.missing.join(",")
        ));
        out.code = 1;
        return Ok(out);
    }
    let n = &exp.nodes[0];
    let m = r.membership()?;
    let mut names: Vec<String> = vec![n.clone()];
    if let Some(g) = m.node_groups.get(n) {
        names.extend(g.iter().cloned());
    }
    let mut tables: Vec<&TableSpec> = schema::TABLES
        .iter()
        .filter(|t| t.col_index("node").is_some())
        .collect();
    tables.sort_by_key(|t| t.name);
    for spec in tables {
        let Some(i) = spec.col_index("node") else {
            continue;
        };
        let rows = store.rows(spec.name)?;
        if rows.iter().any(|row| {
            !crate::store::is_disabled(spec, row)
                && row
                    .get(i)
                    .and_then(|v| v.as_deref())
                    .is_some_and(|v| names.iter().any(|x| x == v))
        }) {
            out.out.push(spec.name.to_string());
        }
    }
    Ok(out)
}

pub fn tabgrep(db: &DbOpt, a: TabgrepArgs) -> anyhow::Result<ExitCode> {
    let store = db.open_existing()?;
    tabgrep_lines(&store, &a.node)?.print()
}

#[derive(Debug, Args)]
pub struct TabpruneArgs {
    /// Print the removed rows (in tabdump's format) instead of the completion line
    #[arg(short = 'V')]
    verbose: bool,
    /// Remove every row (any table)
    #[arg(short = 'a')]
    all: bool,
    /// Remove this many of the oldest records
    #[arg(short = 'n', long = "number", value_name = "N")]
    number: Option<u64>,
    /// Remove this percentage of the records, oldest first
    #[arg(short = 'p', long = "percent", value_name = "PERCENT")]
    percent: Option<u64>,
    /// Remove the records before this recid
    #[arg(short = 'i', long = "recid", value_name = "RECID")]
    recid: Option<String>,
    /// Remove the records older than this many days (auditlog, eventlog)
    #[arg(short = 'd', long = "days", value_name = "DAYS")]
    days: Option<u64>,
    /// eventlog or auditlog (any table with -a)
    table: Option<String>,
}

/// Parses xCAT's `MM-DD-YYYY HH:MM:SS` (and ISO `YYYY-MM-DD HH:MM:SS`) into a sortable string.
fn sortable_time(s: &str) -> Option<String> {
    let (d, t) = s.trim().split_once(' ')?;
    let p: Vec<&str> = d.split('-').collect();
    if p.len() != 3 {
        return None;
    }
    let (y, mo, da) = if p[0].len() == 4 {
        (p[0], p[1], p[2])
    } else {
        (p[2], p[0], p[1])
    };
    Some(format!("{y}-{mo}-{da} {t}"))
}

pub fn tabprune_lines(store: &Store, a: &TabpruneArgs) -> anyhow::Result<Output> {
    let mut out = Output::default();
    let Some(table) = a.table.as_deref().map(|t| t.trim()) else {
        out.out.push("Table name required.".into());
        out.code = 1;
        return Ok(out);
    };
    if table != "eventlog" && table != "auditlog" && !a.all {
        out.out.push(format!(
            "Table {table} not supported, see tabprune -h for supported tables."
        ));
        out.code = 1;
        return Ok(out);
    }
    if table != "eventlog" && table != "auditlog" && a.days.is_some() {
        out.out
            .push(format!("Table {table} not supported for the -d option."));
        out.code = 1;
        return Ok(out);
    }
    let given = [
        a.percent.is_some(),
        a.recid.is_some(),
        a.all,
        a.number.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if given == 0 && a.days.is_none() {
        out.out
            .push("One option -p or -i or -n or -a or -d must be supplied.".into());
        out.code = 1;
        return Ok(out);
    }
    if given > 1 {
        out.out
            .push("Only one option -p or -i or -n or -a maybe used at a time.".into());
        out.code = 1;
        return Ok(out);
    }
    let spec = table_spec(table).map_err(|_| anyhow!("Unable to open {table}"))?;
    let rows = store.rows(spec.name)?;
    let recid_i = spec.col_index("recid");
    let recid = |r: &Row| -> Option<i64> {
        recid_i
            .and_then(|i| r.get(i).cloned().flatten())
            .and_then(|v| v.parse().ok())
    };
    // Which rows go.
    let doomed: Vec<Row> = if a.all {
        rows.clone()
    } else if let Some(days) = a.days {
        let col = if table == "eventlog" {
            "eventtime"
        } else {
            "audittime"
        };
        let ti = crate::store::column_index(spec, col)?;
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)
            .map(|t| t.tv_sec())
            .unwrap_or(0);
        let cutoff = sortable_time(&crate::store::xcat_time(
            now - i64::try_from(days.saturating_mul(86400)).unwrap_or(i64::MAX / 2),
        ))
        .unwrap_or_default();
        rows.iter()
            .filter(|r| {
                r.get(ti)
                    .cloned()
                    .flatten()
                    .and_then(|t| sortable_time(&t))
                    .is_some_and(|t| t < cutoff)
            })
            .cloned()
            .collect()
    } else {
        let ids: Vec<i64> = rows.iter().filter_map(recid).collect();
        let (Some(min), Some(max)) = (ids.iter().min().copied(), ids.iter().max().copied()) else {
            out.out.push(format!("Nothing to prune from {table}."));
            return Ok(out);
        };
        let below = if let Some(n) = a.number {
            min.saturating_add(i64::try_from(n).unwrap_or(i64::MAX))
        } else if let Some(p) = a.percent {
            let total = max - min + 1;
            min + (total as f64 * p as f64 / 100.0) as i64
        } else {
            let r = a.recid.as_deref().unwrap_or("");
            r.trim()
                .parse::<i64>()
                .map_err(|_| anyhow!("recid '{r}' is not a number"))?
        };
        rows.iter()
            .filter(|r| recid(r).is_some_and(|id| id < below))
            .cloned()
            .collect()
    };
    // xCAT records the command before running it, so pruning the auditlog removes that record too:
    // only other tables get an audit row here.
    let audit = Audit {
        command: "tabprune".into(),
        noderange: String::new(),
        args: table.to_string(),
    };
    let audit = (table != "auditlog").then_some(&audit);
    store.write(audit, |tx| {
        if a.all {
            return tx.clear(spec.name);
        }
        for r in &doomed {
            let key: Vec<String> = spec
                .keys
                .iter()
                .map(|k| {
                    spec.col_index(k)
                        .and_then(|i| r.get(i).cloned().flatten())
                        .unwrap_or_default()
                })
                .collect();
            let k: Vec<&str> = key.iter().map(String::as_str).collect();
            tx.delete(spec.name, &k)?;
        }
        Ok(())
    })?;
    if a.verbose {
        let text = csv::dump(spec, &doomed);
        out.out.extend(text.lines().map(str::to_string));
    } else {
        out.out.push(format!("tabprune of {table} complete."));
    }
    Ok(out)
}

pub fn tabprune(db: &DbOpt, a: TabpruneArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    tabprune_lines(&store, &a)?.print()
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Also dump the eventlog and auditlog tables
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Binary dump with the database's own tool (not supported for SQLite)
    #[arg(short = 'b', long = "bin")]
    binary: bool,
    /// The directory to write one <table>.csv per table into
    #[arg(short = 'p', long = "path", value_name = "DIR")]
    path: Option<PathBuf>,
    /// Say what is dumped and what is skipped
    #[arg(short = 'V', long = "verbose")]
    verbose: bool,
}

/// The tables dumpxCATdb and restorexCATdb leave out: eventlog and auditlog unless -a, xCAT's
/// x_teal* and isnm_perf* tables, and those named in site.skiptables (or $XCAT_SKIPTABLES).
fn skipped(table: &str, all: bool, skip: &[String]) -> bool {
    (!all && (table.starts_with("eventlog") || table.starts_with("auditlog")))
        || table.starts_with("x_teal")
        || table.starts_with("isnm_perf")
        || skip.iter().any(|s| s == table)
}

fn skiptables(store: &Store, env_too: bool) -> anyhow::Result<Vec<String>> {
    let v = match std::env::var("XCAT_SKIPTABLES").ok().filter(|_| env_too) {
        Some(v) if !v.is_empty() => Some(v),
        _ => store.site("skiptables")?,
    };
    Ok(v.unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

pub fn dump_lines(store: &Store, a: &DumpArgs) -> anyhow::Result<Output> {
    let mut out = Output::default();
    if a.binary {
        bail!("Binary dump (-b) is not supported for SQLite");
    }
    let Some(dir) = &a.path else {
        bail!("Requires -p with path to directory to hold db files.");
    };
    if !dir.exists() {
        out.out
            .push(format!(" Creating {} for database dump", dir.display()));
        std::fs::create_dir_all(dir)
            .with_context(|| format!("Error running mkdir -p {}", dir.display()))?;
    }
    let skip = skiptables(store, true)?;
    let mut names: Vec<&TableSpec> = schema::TABLES.iter().collect();
    names.sort_by_key(|t| t.name);
    // One consistent snapshot of every table, then the files.
    let specs: Vec<&'static TableSpec> = names
        .iter()
        .copied()
        .filter(|t| !skipped(t.name, a.all, &skip))
        .collect();
    let data = store.read_tables(&specs)?;
    let mut dumped = specs.iter().zip(&data);
    for t in names {
        if skipped(t.name, a.all, &skip) {
            if a.verbose {
                out.out.push(format!("Skipping {}", t.name));
            }
            continue;
        }
        let Some((spec, rows)) = dumped.next() else {
            break;
        };
        let file = dir.join(format!("{}.csv", spec.name));
        match std::fs::write(&file, csv::dump(spec, rows)) {
            Ok(()) if a.verbose => out.out.push(format!("Dumping {}", spec.name)),
            Ok(()) => {}
            Err(e) => out.err.push(format!(
                "Error: Error running tabdump -f {} {}, {e}",
                file.display(),
                spec.name
            )),
        }
    }
    out.out.push("Backup Complete.".into());
    Ok(out)
}

pub fn dumpxcatdb(db: &DbOpt, a: DumpArgs) -> anyhow::Result<ExitCode> {
    let store = db.open_existing()?;
    dump_lines(&store, &a)?.print()
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Also restore the eventlog and auditlog tables
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Binary restore with the database's own tool (not supported for SQLite)
    #[arg(short = 'b', long = "binary")]
    binary: bool,
    /// Timestamp of a binary backup
    #[arg(short = 't', long = "timestamp")]
    timestamp: Option<String>,
    /// The directory holding the <table>.csv files
    #[arg(short = 'p', long = "path", value_name = "DIR")]
    path: Option<PathBuf>,
    /// Say what is restored and what is skipped
    #[arg(short = 'V', long = "verbose")]
    verbose: bool,
}

/// One table to restore: its spec, its parsed rows (with line numbers), the file name.
type Restore = (&'static TableSpec, Vec<(usize, Row)>, String);

/// Restores every `<table>.csv` of a directory, all in one transaction: a file that does not
/// parse leaves the whole store unchanged.
pub fn restore_lines(store: &Store, a: &RestoreArgs) -> anyhow::Result<Output> {
    let mut out = Output::default();
    if a.binary {
        bail!("Binary restore (-b) is not supported for SQLite");
    }
    let Some(dir) = &a.path else {
        bail!("-p with path to database files is required");
    };
    if !dir.exists() {
        bail!("Input path must exist");
    }
    let skip = skiptables(store, false)?;
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("Unable to read directory {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    files.sort();
    let mut todo: Vec<Restore> = Vec::new();
    for f in files {
        let base = f.split('.').next().unwrap_or("").to_string();
        if skipped(&f, a.all, &[]) || skip.contains(&base) {
            if a.verbose {
                out.out.push(format!(
                    "Skipping {}",
                    if skip.contains(&base) { &base } else { &f }
                ));
            }
            continue;
        }
        let path: &Path = &dir.join(&f);
        let Some(name) = f.strip_suffix(".csv") else {
            out.err.push(format!(
                "Error: Error running tabrestore {}, the file name must be <table>.csv",
                path.display()
            ));
            continue;
        };
        let Ok(spec) = table_spec(name) else {
            out.err.push(format!(
                "Error: Error running tabrestore {}, no such table: {name}",
                path.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let parsed = csv::parse(&text).map_err(|e| {
            anyhow!(
                "Error running tabrestore {}: {e}; nothing was restored",
                path.display()
            )
        })?;
        let rows = csv::to_rows(spec, &parsed).map_err(|e| {
            anyhow!(
                "Error running tabrestore {}: {e}; nothing was restored",
                path.display()
            )
        })?;
        todo.push((spec, rows, f));
    }
    let audit = Audit {
        command: "restorexCATdb".into(),
        noderange: String::new(),
        args: format!("-p {}", dir.display()),
    };
    let restores_audit = todo.iter().any(|(s, _, _)| s.name == "auditlog");
    store.write((!restores_audit).then_some(&audit), |tx| {
        for (spec, rows, _) in &todo {
            tx.clear(spec.name)?;
            for (line, row) in rows {
                tx.put(spec.name, row.clone()).map_err(|e| {
                    crate::store::StoreError::Invalid(format!("{}.csv line {line}: {e}", spec.name))
                })?;
            }
        }
        Ok(())
    })?;
    if a.verbose {
        for (_, _, f) in &todo {
            out.out.push(format!("Restoring {f}."));
        }
    }
    out.out.push("Restore of Database Complete.".into());
    Ok(out)
}

pub fn restorexcatdb(db: &DbOpt, a: RestoreArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    restore_lines(&store, &a)?.print()
}

#[derive(Debug, Args)]
pub struct RegnotifArgs {
    /// The table operations to be told about: a (add), d (delete), u (update), comma-separated
    #[arg(short = 'o', long = "operation", value_name = "OPS")]
    ops: Option<String>,
    /// The command to run, then the tables (comma-separated)
    args: Vec<String>,
}

const REGNOTIF_USAGE: &str = "Usage:\n  regnotif filename tablename[,tablename]... [-o|--operation tableop[,tableop][,tableop]]]\n       where tableop can be 'a' for add, 'd' for delete and 'u' for update\n  regnotif [-h|--help|-v|--version]";

/// regnotif: records a notification row (notification.pm); the daemon runs the command.
pub fn regnotif_lines(store: &Store, a: &RegnotifArgs) -> anyhow::Result<Output> {
    let mut out = Output::default();
    if a.args.len() < 2 {
        out.out.push(REGNOTIF_USAGE.into());
        return Ok(out);
    }
    let ops = a.ops.clone().unwrap_or_else(|| "a,d,u".into());
    let re = regex::Regex::new(r"^(a|d|u)(,(a|d|u)){0,2}$").map_err(|e| anyhow!("{e}"))?;
    if !re.is_match(&ops) {
        out.out.push(format!("Invalid table operations: {ops}"));
        return Ok(out);
    }
    let (file, tables) = (&a.args[0], &a.args[1]);
    let audit = Audit {
        command: "regnotif".into(),
        noderange: String::new(),
        args: format!("{file} {tables} -o {ops}"),
    };
    store.write(Some(&audit), |tx| {
        tx.set(
            "notification",
            &[file],
            &[("tables", Some(tables)), ("tableops", Some(&ops))],
        )
    })?;
    Ok(out)
}

pub fn regnotif(db: &DbOpt, a: RegnotifArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    regnotif_lines(&store, &a)?.print()
}

#[derive(Debug, Args)]
pub struct UnregnotifArgs {
    /// The command registered with regnotif
    file: Option<String>,
}

pub fn unregnotif(db: &DbOpt, a: UnregnotifArgs) -> anyhow::Result<ExitCode> {
    let Some(file) = a.file else {
        crate::outln!("Usage:\n  unregnotif filename\n  unregnotif [-h|--help|-v|--version]");
        return Ok(ExitCode::SUCCESS);
    };
    let store = db.open()?;
    let audit = Audit {
        command: "unregnotif".into(),
        noderange: String::new(),
        args: file.clone(),
    };
    store.write(Some(&audit), |tx| {
        tx.delete("notification", &[&file]).map(|_| ())
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct LsxcatdArgs {
    /// The database in use
    #[arg(short = 'd', long = "database")]
    database: bool,
    /// Whether this is a management node or a service node
    #[arg(short = 't', long = "type", alias = "nodetype")]
    nodetype: bool,
    /// Everything
    #[arg(short = 'a', long = "all")]
    all: bool,
}

/// xCAT's `lsxcatd` (tabutils.pm): the version, the node type and the database.
pub fn lsxcatd(db: &DbOpt, a: LsxcatdArgs) -> anyhow::Result<ExitCode> {
    if !(a.database || a.nodetype || a.all) {
        if let Some(u) = super::usage::find("lsxcatd") {
            crate::outln!("{}", super::usage::text(u, "lsxcatd"));
        }
        return Ok(ExitCode::from(1));
    }
    if a.all {
        crate::outln!("{}", super::usage::version());
    }
    let store = if a.nodetype || a.all {
        Some(db.open_existing()?)
    } else {
        None
    };
    if let Some(store) = store.as_ref().filter(|_| a.nodetype || a.all) {
        match crate::appliance::local_role(store) {
            crate::appliance::Role::Mn => crate::outln!("This is a Management Node"),
            crate::appliance::Role::Sn => crate::outln!("This is a Service Node"),
        }
    }
    if a.database || a.all {
        for l in database_lines(&db.db) {
            crate::outln!("{l}");
        }
    }
    // bootherd's addition: every appliance sharing the store.
    if let Some(store) = store.as_ref().filter(|_| a.all) {
        let list = crate::appliance::list(store)?;
        for l in crate::appliance::lsxcatd_lines(&list, crate::appliance::now()) {
            crate::outln!("{l}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct StatusArgs {}

/// `bootherd status`: every appliance sharing the store, whether it is alive (a heartbeat within
/// three of its intervals), its role and addresses.
pub fn status(db: &DbOpt, _a: StatusArgs) -> anyhow::Result<ExitCode> {
    let store = db.open_existing()?;
    let list = crate::appliance::list(&store)?;
    let now = crate::appliance::now();
    let mut out = super::stdout();
    use std::io::Write;
    if list.is_empty() {
        writeln!(
            out,
            "No appliance has served this store yet (bootherd serve records itself)."
        )?;
    } else {
        for l in crate::appliance::status_lines(&list, now) {
            writeln!(out, "{l}")?;
        }
    }
    super::finish(out)?;
    Ok(ExitCode::SUCCESS)
}

/// `lsxcatd -d` for a store URL: `dbengine=SQLite`, or xCAT's `cfgloc=Pg:dbname=…;host=…|user`
/// lines for PostgreSQL.
fn database_lines(url: &str) -> Vec<String> {
    let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    else {
        return vec!["dbengine=SQLite".into()];
    };
    let (auth, hostpart) = rest.rsplit_once('@').unwrap_or(("", rest));
    let user = auth.split(':').next().unwrap_or("").to_string();
    let (hostport, dbq) = hostpart.split_once('/').unwrap_or((hostpart, ""));
    let dbname = dbq.split('?').next().unwrap_or("").to_string();
    let host = if hostport.starts_with('[') {
        hostport
            .split(']')
            .next()
            .unwrap_or("")
            .trim_start_matches('[')
            .to_string()
    } else {
        hostport.split(':').next().unwrap_or("").to_string()
    };
    let host = host.replace("%2F", "/").replace("%2f", "/");
    vec![
        format!("cfgloc=Pg:dbname={dbname};host={host}|{user}"),
        "dbengine=Pg".into(),
        format!("dbname={dbname}"),
        format!("dbhost={host}"),
        format!("dbadmin={user}"),
    ]
}

#[cfg(test)]
mod lsxcatd_tests {
    use super::database_lines;

    #[test]
    fn database_lines_as_xcat_prints_them() {
        assert_eq!(
            database_lines("sqlite:/var/lib/bootherd/bootherd.db"),
            ["dbengine=SQLite"]
        );
        assert_eq!(
            database_lines("postgres://xcatadm:secret@10.0.0.5:5432/xcatdb?sslmode=require"),
            [
                "cfgloc=Pg:dbname=xcatdb;host=10.0.0.5|xcatadm",
                "dbengine=Pg",
                "dbname=xcatdb",
                "dbhost=10.0.0.5",
                "dbadmin=xcatadm"
            ]
        );
    }
}
