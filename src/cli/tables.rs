//! Table commands: `tabdump`, `tabrestore`, `tabch`/`chtab`, `tabedit`, with xCAT's syntax and
//! output (tabdump's CSV is byte-for-byte xCAT's, so dumps move both ways).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::Args;

use super::DbOpt;
use crate::store::resolver::{split_condition, ValueTest};
use crate::store::{csv, schema, table_spec, Audit, Row, Store, TableSpec};

#[derive(Debug, Args)]
pub struct TabdumpArgs {
    /// Describe the tables (no table given) or the table's columns, instead of printing rows
    #[arg(short = 'd')]
    describe: bool,
    /// Print only rows where COND holds: col==value, col!=value, col=~regex, col!~regex (repeatable)
    #[arg(short = 'w', value_name = "COND")]
    conds: Vec<String>,
    /// Write the CSV to FILE instead of standard output
    #[arg(short = 'f', value_name = "FILE")]
    file: Option<PathBuf>,
    /// The table to print; with no table, the table names are listed
    table: Option<String>,
}

/// A `col<op>value` filter on one table's raw rows.
struct ColCond {
    col: usize,
    test: ValueTest,
}

impl ColCond {
    fn parse(spec: &TableSpec, s: &str) -> anyhow::Result<ColCond> {
        let (col, op, value) = split_condition(s).ok_or_else(|| {
            anyhow!(
                "'{s}' is not a condition (use col==value, col!=value, col=~regex or col!~regex)"
            )
        })?;
        let idx = spec
            .col_index(col)
            .ok_or_else(|| anyhow!("no column \"{col}\" in table \"{}\"", spec.name))?;
        let test = ValueTest::new(op, value)
            .with_context(|| format!("bad regular expression in '{s}'"))?;
        Ok(ColCond { col: idx, test })
    }

    fn holds(&self, row: &Row) -> bool {
        self.test
            .holds(row.get(self.col).and_then(|v| v.as_deref()))
    }
}

/// xCAT aligns descriptions with one tab after names of 7+ characters, two after shorter ones.
fn desc_line(name: &str, desc: &str) -> String {
    let gap = if name.len() < 7 { "\t\t" } else { "\t" };
    format!("{name}:{gap}{desc}")
}

pub fn tabdump(db: &DbOpt, a: TabdumpArgs) -> anyhow::Result<ExitCode> {
    let Some(table) = a.table else {
        if a.file.is_some() {
            bail!("table name missing from the command input");
        }
        let mut names: Vec<&TableSpec> = schema::TABLES.iter().collect();
        names.sort_by_key(|t| t.name);
        let mut out = super::stdout();
        for t in names {
            if a.describe {
                writeln!(out, "{}", desc_line(t.name, t.table_desc))?;
            } else {
                writeln!(out, "{}", t.name)?;
            }
        }
        super::finish(out)?;
        return Ok(ExitCode::SUCCESS);
    };
    let spec = table_spec(&table)?;
    if a.describe {
        let mut out = super::stdout();
        for (c, d) in spec.cols.iter().zip(spec.descriptions) {
            writeln!(out, "{}", desc_line(c, d))?;
        }
        super::finish(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let conds: Vec<ColCond> = a
        .conds
        .iter()
        .map(|c| ColCond::parse(spec, c))
        .collect::<anyhow::Result<_>>()?;
    let store = db.open()?;
    let rows = store.rows(spec.name)?;
    let text = csv::dump(
        spec,
        rows.iter().filter(|r| conds.iter().all(|c| c.holds(r))),
    );
    match a.file {
        Some(path) => std::fs::write(&path, text)
            .with_context(|| format!("error on tabdump of {} to {}", spec.name, path.display()))?,
        None => {
            let mut out = super::stdout();
            out.write_all(text.as_bytes())?;
            super::finish(out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct TabrestoreArgs {
    /// Add the file's rows to the table (replacing rows with the same key) instead of replacing the table
    #[arg(short = 'a', long = "addrows")]
    add: bool,
    /// A CSV file as tabdump writes it, named after its table (nodelist.csv restores nodelist)
    file: PathBuf,
}

/// The table a dump file restores into: its base name without `.csv`, as xCAT decides.
fn table_of_file(path: &std::path::Path) -> anyhow::Result<&'static TableSpec> {
    let base = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("bad file name {}", path.display()))?;
    let name = base.strip_suffix(".csv").unwrap_or(base);
    table_spec(name).map_err(|_| {
        anyhow!("{}: the file name must be a table name (like nodelist.csv); there is no table '{name}'", path.display())
    })
}

/// Parses `text` as `spec`'s CSV and writes it in one transaction (replacing the table unless `add`).
pub fn restore(
    store: &Store,
    spec: &'static TableSpec,
    text: &str,
    add: bool,
    audit: &Audit,
) -> anyhow::Result<usize> {
    let parsed = csv::parse(text)?;
    let rows = csv::to_rows(spec, &parsed)?;
    let n = rows.len();
    store.write(Some(audit), |tx| {
        if !add {
            tx.clear(spec.name)?;
        }
        for (line, row) in rows {
            tx.put(spec.name, row)
                .map_err(|e| crate::store::StoreError::Invalid(format!("line {line}: {e}")))?;
        }
        Ok(())
    })?;
    Ok(n)
}

pub fn tabrestore(db: &DbOpt, a: TabrestoreArgs) -> anyhow::Result<ExitCode> {
    let spec = table_of_file(&a.file)?;
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("cannot read {}", a.file.display()))?;
    let store = db.open()?;
    let audit = Audit {
        command: "tabrestore".into(),
        noderange: String::new(),
        args: format!("{}{}", if a.add { "-a " } else { "" }, a.file.display()),
    };
    restore(&store, spec, &text, a.add, &audit).with_context(|| {
        format!(
            "tabrestore of {} from {} failed; the table is unchanged",
            spec.name,
            a.file.display()
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct TabchArgs {
    /// Delete the rows matching the keys from the named tables
    #[arg(short = 'd', long = "delete")]
    delete: bool,
    /// keycol=value[,keycol=value…] then table.col=value … (or table.col+=value to append to a list);
    /// with -d: keycol=value[,…] then table names
    #[arg(required = true, allow_hyphen_values = true, value_name = "ARGS")]
    args: Vec<String>,
}

/// Parses `k=v,k=v`.
fn parse_keys(s: &str) -> anyhow::Result<Vec<(String, String)>> {
    s.split(',')
        .map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("incorrect argument \"{kv}\": expected keycolumn=value"))
        })
        .collect()
}

fn looks_like_assignment(s: &str) -> bool {
    match s.split_once('=') {
        Some((lhs, _)) => lhs.contains('.'),
        None => false,
    }
}

/// Rows of `table` whose named columns equal the given values.
fn matching_keys(
    tx: &mut crate::store::Txn<'_>,
    spec: &TableSpec,
    keys: &[(String, String)],
) -> Result<Vec<Vec<String>>, crate::store::StoreError> {
    let mut idx = Vec::new();
    for (k, v) in keys {
        idx.push((crate::store::column_index(spec, k)?, v.as_str()));
    }
    let key_idx: Vec<usize> = spec.keys.iter().filter_map(|k| spec.col_index(k)).collect();
    Ok(tx
        .rows(spec.name)?
        .into_iter()
        .filter(|r| {
            idx.iter()
                .all(|(i, v)| r.get(*i).and_then(|x| x.as_deref()).unwrap_or("") == *v)
        })
        .map(|r| {
            key_idx
                .iter()
                .map(|i| r.get(*i).cloned().flatten().unwrap_or_default())
                .collect()
        })
        .collect())
}

/// A table and the (column, value, append?) assignments for it.
type TableSets = (&'static TableSpec, Vec<(String, String, bool)>);

pub fn tabch(db: &DbOpt, a: TabchArgs) -> anyhow::Result<ExitCode> {
    let mut args = a.args.iter();
    let first = args
        .next()
        .ok_or_else(|| anyhow!("missing arguments; see tabch --help"))?;
    let (keys, rest): (Vec<(String, String)>, Vec<&String>) =
        if looks_like_assignment(first) && !a.delete {
            (Vec::new(), a.args.iter().collect())
        } else {
            (parse_keys(first)?, args.collect())
        };
    if keys.is_empty() {
        bail!("no key given: the first argument names the rows, for example node=n1 or key=domain");
    }
    let store = db.open()?;
    let audit = Audit {
        command: "tabch".into(),
        noderange: String::new(),
        args: super::audit_args(&a.args),
    };
    if a.delete {
        if rest.is_empty() {
            bail!("missing table name: tabch -d keycol=value table [table …]");
        }
        let specs: Vec<&TableSpec> = rest
            .iter()
            .map(|t| table_spec(t))
            .collect::<Result<_, _>>()?;
        store.write(Some(&audit), |tx| {
            for spec in specs {
                for key in matching_keys(tx, spec, &keys)? {
                    let k: Vec<&str> = key.iter().map(String::as_str).collect();
                    tx.delete(spec.name, &k)?;
                }
            }
            Ok(())
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    if rest.is_empty() {
        bail!("nothing to change: give table.column=value after the keys");
    }
    // Group the assignments by table, validating everything before touching the store.
    let mut per_table: Vec<TableSets> = Vec::new();
    for arg in rest {
        let (lhs, value) = arg
            .split_once('=')
            .ok_or_else(|| anyhow!("'{arg}' is not table.column=value"))?;
        let (lhs, append) = match lhs.strip_suffix('+') {
            Some(l) => (l, true),
            None => (lhs, false),
        };
        let (t, c) = lhs
            .split_once('.')
            .ok_or_else(|| anyhow!("'{arg}' is not table.column=value"))?;
        let spec = table_spec(t)?;
        crate::store::column_index(spec, c)?;
        for (k, _) in &keys {
            crate::store::column_index(spec, k)?;
        }
        match per_table.iter_mut().find(|(s, _)| s.name == spec.name) {
            Some((_, v)) => v.push((c.to_string(), value.to_string(), append)),
            None => per_table.push((spec, vec![(c.to_string(), value.to_string(), append)])),
        }
    }
    store.write(Some(&audit), |tx| {
        for (spec, sets) in &per_table {
            let mut targets = matching_keys(tx, spec, &keys)?;
            if targets.is_empty() {
                // No row yet: the keys given must name the new row completely.
                let mut key = Vec::new();
                for k in spec.keys {
                    match keys.iter().find(|(kk, _)| kk == k) {
                        Some((_, v)) => key.push(v.clone()),
                        None => {
                            return Err(crate::store::StoreError::Invalid(format!(
                                "no row of {} matches, and a new row needs its key column '{k}'",
                                spec.name
                            )))
                        }
                    }
                }
                targets.push(key);
                // Non-key columns named in the key list are set on the new row too.
            }
            for key in targets {
                let k: Vec<&str> = key.iter().map(String::as_str).collect();
                let current = tx.get(spec.name, &k)?;
                let mut values: Vec<(String, Option<String>)> = Vec::new();
                for (kcol, kval) in &keys {
                    if !spec.keys.contains(&kcol.as_str()) {
                        values.push((kcol.clone(), Some(kval.clone())));
                    }
                }
                for (c, v, append) in sets {
                    let new = if *append {
                        let old = current
                            .as_ref()
                            .and_then(|r| {
                                spec.col_index(c).and_then(|i| r.get(i).cloned().flatten())
                            })
                            .unwrap_or_default();
                        let mut items: Vec<&str> =
                            old.split(',').filter(|s| !s.is_empty()).collect();
                        for item in v.split(',').filter(|s| !s.is_empty()) {
                            if !items.contains(&item) {
                                items.push(item);
                            }
                        }
                        items.join(",")
                    } else {
                        v.clone()
                    };
                    values.push((c.clone(), Some(new)));
                }
                let vals: Vec<(&str, Option<&str>)> = values
                    .iter()
                    .map(|(c, v)| (c.as_str(), v.as_deref()))
                    .collect();
                tx.set(spec.name, &k, &vals)?;
            }
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct TabeditArgs {
    /// The table to edit
    table: String,
}

pub fn tabedit(db: &DbOpt, a: TabeditArgs) -> anyhow::Result<ExitCode> {
    let spec = table_spec(&a.table)?;
    let store = db.open()?;
    let before = csv::dump(spec, &store.rows(spec.name)?);
    let dir = std::env::temp_dir().join(format!("tabedit.{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{}.csv", spec.name));
    std::fs::write(&path, &before).with_context(|| format!("cannot write {}", path.display()))?;
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|e| !e.is_empty())
        .or_else(|| std::env::var("EDITOR").ok().filter(|e| !e.is_empty()))
        .unwrap_or_else(|| "vi".into());
    // Run through the shell so EDITOR="code --wait" and similar work as they do for git.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("tabedit")
        .arg(&path)
        .status()
        .with_context(|| format!("cannot run editor '{editor}'"))?;
    if !status.success() {
        bail!(
            "editor '{editor}' failed ({status}); {} is unchanged (your copy: {})",
            spec.name,
            path.display()
        );
    }
    let after = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read back {}", path.display()))?;
    if after == before {
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!("{}: no changes", spec.name);
        return Ok(ExitCode::SUCCESS);
    }
    let audit = Audit {
        command: "tabedit".into(),
        noderange: String::new(),
        args: spec.name.into(),
    };
    match restore(&store, spec, &after, false, &audit) {
        Ok(_) => {
            let _ = std::fs::remove_dir_all(&dir);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e.context(format!(
            "{} is unchanged; your edited copy is {}",
            spec.name,
            path.display()
        ))),
    }
}
