//! Table commands: `tabdump`, `tabrestore`, `tabch`/`chtab`, `tabedit`, with xCAT's syntax and
//! output (tabdump's CSV is byte-for-byte xCAT's, so dumps move both ways).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::Args;

use super::DbOpt;
use crate::store::{csv, schema, table_spec, Audit, Row, Store, TableSpec};

#[derive(Debug, Args)]
pub struct TabdumpArgs {
    /// Describe the tables (no table given) or the table's columns, instead of printing rows
    #[arg(short = 'd')]
    describe: bool,
    /// Print only rows where COND holds: col==value, !=, <, <=, >, >=, col=~pattern, col!~pattern
    /// (SQL LIKE: % any run, _ one character) (repeatable)
    #[arg(short = 'w', value_name = "COND")]
    conds: Vec<String>,
    /// Write the CSV to FILE instead of standard output
    #[arg(short = 'f', value_name = "FILE")]
    file: Option<PathBuf>,
    /// The table to print; with no table, the table names are listed
    table: Option<String>,
}

/// The operators of tabdump's `-w`, which xCAT turns into SQL (`Table::buildWhereClause`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SqlOp {
    Eq,
    Ne,
    Like,
    NotLike,
    Le,
    Lt,
    Ge,
    Gt,
}

/// A `col<op>value` filter on one table's raw rows, with SQL's meaning: `=~`/`!~` are LIKE
/// patterns (`%` any run, `_` one character, ASCII case ignored), comparisons are on the text,
/// and a NULL column matches nothing.
pub struct ColCond {
    col: usize,
    op: SqlOp,
    value: String,
    like: Option<regex::Regex>,
}

/// Splits `s` as xCAT's buildWhereClause does, trying the operators in its order.
fn split_sql_condition(s: &str) -> Option<(&str, SqlOp, &str)> {
    let no_eq_before = |i: usize| !s[..i].contains('=');
    let at = |tok: &str| s.find(tok);
    if let Some(i) = at("==").filter(|i| no_eq_before(*i)) {
        return Some((&s[..i], SqlOp::Eq, &s[i + 2..]));
    }
    if let Some(i) = at("=~").filter(|i| no_eq_before(*i)) {
        return Some((&s[..i], SqlOp::Like, &s[i + 2..]));
    }
    if let Some(i) = at("!=").filter(|i| no_eq_before(*i)) {
        return Some((&s[..i], SqlOp::Ne, &s[i + 2..]));
    }
    if let Some(i) = at("!~") {
        return Some((&s[..i], SqlOp::NotLike, &s[i + 2..]));
    }
    for (tok, op) in [
        ("<=", SqlOp::Le),
        ("<", SqlOp::Lt),
        (">=", SqlOp::Ge),
        (">", SqlOp::Gt),
    ] {
        if let Some(i) = at(tok).filter(|i| no_eq_before(*i)) {
            return Some((&s[..i], op, &s[i + tok.len()..]));
        }
    }
    None
}

/// A LIKE pattern as an anchored, case-insensitive regex.
fn like_regex(pat: &str) -> anyhow::Result<regex::Regex> {
    let mut re = String::from("(?si)^");
    let mut buf = [0u8; 4];
    for c in pat.chars() {
        match c {
            '%' => re.push_str(".*"),
            '_' => re.push('.'),
            c => re.push_str(&regex::escape(c.encode_utf8(&mut buf))),
        }
    }
    re.push('$');
    regex::Regex::new(&re).map_err(|e| anyhow!("bad pattern '{pat}': {e}"))
}

impl ColCond {
    pub fn parse(spec: &TableSpec, s: &str) -> anyhow::Result<ColCond> {
        let (col, op, value) = split_sql_condition(s)
            .ok_or_else(|| anyhow!("Unsupported operator:{s} on -w flag input"))?;
        let idx = spec
            .col_index(col)
            .ok_or_else(|| anyhow!("No column \"{col}\" in table \"{}\"", spec.name))?;
        let mut value = value.to_string();
        if matches!(op, SqlOp::Like | SqlOp::NotLike) {
            value = value.strip_prefix('/').unwrap_or(&value).to_string();
            if let Some(v) = value.strip_suffix('/') {
                value = v.to_string();
            }
        }
        let like = match op {
            SqlOp::Like | SqlOp::NotLike => Some(like_regex(&value)?),
            _ => None,
        };
        Ok(ColCond {
            col: idx,
            op,
            value,
            like,
        })
    }

    pub fn holds(&self, row: &Row) -> bool {
        let Some(v) = row.get(self.col).and_then(|v| v.as_deref()) else {
            return false;
        };
        let want = self.value.as_str();
        match self.op {
            SqlOp::Eq => v == want,
            SqlOp::Ne => v != want,
            SqlOp::Like => self.like.as_ref().is_some_and(|r| r.is_match(v)),
            SqlOp::NotLike => self.like.as_ref().is_some_and(|r| !r.is_match(v)),
            SqlOp::Le => v <= want,
            SqlOp::Lt => v < want,
            SqlOp::Ge => v >= want,
            SqlOp::Gt => v > want,
        }
    }
}

/// The site keys bootherd reads or seeds, for `tabdump -d site` (bootherd's own words).
pub const SITE_KEYS: &[(&str, &str)] = &[
    ("auditnosyslog", "1: commands go only to the auditlog table, not to syslog. Default 0."),
    ("auditskipcmds", "Commands (or ALL) whose writes are not recorded in the auditlog table."),
    ("blademaxp", "Most blade management operations run at once. Default 64."),
    ("consoleondemand", "yes: consoles are opened only when used. Default no."),
    ("databaseloc", "Where a database instance directory is created. Default /var/lib."),
    ("defserialflow", "Serial console flow control for discovery (genesis) when the node has none."),
    ("defserialport", "Serial console port for discovery (genesis) when the node has none."),
    ("defserialspeed", "Serial console speed for discovery (genesis) when the node has none."),
    ("dhcpcachethreshold", "A DHCP lease younger than this % of its length is answered as it stands, unwritten (ISC dhcpd's dhcp-cache-threshold). Default 25; 0: off."),
    ("dhcpinterfaces", "Interfaces DHCP answers on (xCAT syntax, e.g. eth1,eth2). Unset: every interface on a defined network."),
    ("dhcplease", "DHCP lease time in seconds. Default 43200."),
    ("dhcpomapialgorithm", "HMAC algorithm of the OMAPI key (default HMAC-MD5)."),
    ("dhcpomapikeyname", "Name of the OMAPI key in the passwd table (key=omapi). Default xcat_key."),
    ("dnshandler", "How DNS is updated. Default ddns."),
    ("domain", "DNS domain of the cluster; nodes' long names are node.domain."),
    ("excludenodes", "Nodes and groups left out of every noderange."),
    ("FQDNfirst", "yes: makehosts writes the long name before the short one."),
    ("genpasswords", "yes: discovery gives each BMC a generated password."),
    ("hierarchicalattrs", "Table columns whose node and group values are joined instead of the first winning."),
    ("httpport", "HTTP port for install files and callbacks. Default 80."),
    ("installdir", "Root of install files (images, postscripts, templates). Default /install."),
    ("ipmiciphersuites", "IPMI cipher suites to try, in order (bootherd only, e.g. 17,3)."),
    ("ipmimaxp", "Most IPMI operations run at once. Default 64."),
    ("ipmiretries", "Times an IPMI request is sent before giving up. Default 3."),
    ("ipmitimeout", "Seconds to wait for each IPMI reply. Default 2."),
    ("managedaddressmode", "How installed nodes configure their address (dhcp by default; static, autoula)."),
    ("master", "Address of this management node as nodes reach it. Unset: the address a request came to."),
    ("maxssh", "Most ssh sessions at once. Default 8."),
    ("nameservers", "DNS servers given to nodes (<xcatmaster> for the node's master)."),
    ("nfsport", "NFS port for statelite and NFS-root images. Default 2049."),
    ("nodestatus", "n: node status is not updated during deployment and power operations."),
    ("nodesyncfiledir", "Where synced files land on nodes. Default /var/xcat/node/syncfiles."),
    ("omapiport", "OMAPI port. Default 7911."),
    ("powerinterval", "Seconds between power-on batches (0: none)."),
    ("secureroot", "1: #CRYPT# in install templates writes * (no root password) instead of the hash."),
    ("sharedtftp", "1: the TFTP root is shared by service nodes. Default 1."),
    ("skiptables", "Tables dumpxCATdb and restorexCATdb leave out."),
    ("snmpc", "SNMP community for switches without switches.password. Default public."),
    ("SNsyncfiledir", "Where synced files are kept on service nodes. Default /var/xcat/syncfiles."),
    ("sshbetweennodes", "Groups (or ALLGROUPS, NOGROUPS) whose nodes may ssh to each other."),
    ("tftpdir", "Root of TFTP files. Default /tftpboot."),
    ("xcatconfdir", "xCAT configuration directory. Default /etc/xcat."),
    ("xcatdebugmode", "1 or 2: more detail in logs and on nodes."),
    ("xcatdport", "Port for discovery reports (findme) and xCAT requests. Default 3001."),
    ("xcatiport", "Port for node status callbacks. Default 3002."),
];

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
    let spec = match table_spec(&table) {
        Ok(s) => s,
        Err(_) if a.describe => bail!("table {table} does not exist."),
        Err(_) => bail!("No such table: {table}"),
    };
    if a.describe {
        let mut out = super::stdout();
        for (c, d) in spec.cols.iter().zip(spec.descriptions) {
            // As xCAT's site.key description does, the keys themselves are listed under it.
            if spec.name == "site" && *c == "key" {
                writeln!(out, "{}", desc_line(c, "Attribute Name:  Description\n"))?;
                for (k, d) in SITE_KEYS {
                    writeln!(out, " {k}:  {d}")?;
                }
                writeln!(out)?;
                continue;
            }
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
    let store = db.open_existing()?;
    let mut rows = store.rows(spec.name)?;
    // Secrets stay on the appliance unless policy shows them to this user.
    for (i, c) in spec.cols.iter().enumerate() {
        if super::request::masked(spec.name, c) {
            for r in rows.iter_mut() {
                if let Some(Some(v)) = r.get_mut(i) {
                    if !v.is_empty() {
                        *v = super::request::MASK.to_string();
                    }
                }
            }
        }
    }
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
    // Two rows for one key: the second would silently replace the first.
    let mut first_line: std::collections::HashMap<Vec<String>, usize> =
        std::collections::HashMap::new();
    for (line, row) in &rows {
        let key = key_of(spec, row);
        if let Some(prev) = first_line.insert(key.clone(), *line) {
            bail!(
                "line {line}: a second row for {} (the first is on line {prev})",
                spec.keys
                    .iter()
                    .zip(&key)
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            );
        }
    }
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
    let text = super::request::read_input(&a.file)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
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

/// Rows of `table` whose named columns equal the given values (a missing value counts as empty).
fn matching_rows(
    tx: &mut crate::store::Txn<'_>,
    spec: &TableSpec,
    keys: &[(String, String)],
) -> Result<Vec<Row>, crate::store::StoreError> {
    let mut idx = Vec::new();
    for (k, v) in keys {
        idx.push((crate::store::column_index(spec, k)?, v.as_str()));
    }
    Ok(tx
        .rows(spec.name)?
        .into_iter()
        .filter(|r| {
            idx.iter()
                .all(|(i, v)| r.get(*i).and_then(|x| x.as_deref()).unwrap_or("") == *v)
        })
        .collect())
}

/// The key values of a row, in the table's key order.
fn key_of(spec: &TableSpec, row: &Row) -> Vec<String> {
    spec.keys
        .iter()
        .map(|k| {
            spec.col_index(k)
                .and_then(|i| row.get(i).cloned().flatten())
                .unwrap_or_default()
        })
        .collect()
}

/// A table and the (column, value, append?) assignments for it.
type TableSets = (&'static TableSpec, Vec<(String, String, bool)>);

/// The tables chtab touches must exist: xCAT's words when one does not.
fn tab_spec(t: &str) -> anyhow::Result<&'static TableSpec> {
    table_spec(t).map_err(|_| anyhow!("Table {t} does not exist."))
}

pub fn tabch(db: &DbOpt, a: TabchArgs) -> anyhow::Result<ExitCode> {
    let mut args = a.args.iter();
    let first = args
        .next()
        .ok_or_else(|| anyhow!("missing arguments; see tabch --help"))?;
    // As xCAT: the first argument is the key list unless it already looks like table.col=value.
    let (keys, rest): (Vec<(String, String)>, Vec<&String>) =
        if looks_like_assignment(first) && !a.delete {
            (Vec::new(), a.args.iter().collect())
        } else {
            (parse_keys(first)?, args.collect())
        };
    let store = db.open()?;
    let audit = Audit {
        command: "tabch".into(),
        noderange: String::new(),
        args: super::audit_args(&a.args),
    };
    if a.delete {
        if rest.is_empty() {
            bail!("Missing table name.");
        }
        let mut specs = Vec::new();
        let mut failed = false;
        for t in &rest {
            match tab_spec(t) {
                Ok(s) => specs.push(s),
                Err(e) => {
                    crate::errln!("Error: {e}");
                    failed = true;
                }
            }
        }
        for spec in &specs {
            for (k, _) in &keys {
                if spec.col_index(k).is_none() {
                    bail!(
                        "no such column: {k} (table \"{}\" has no column \"{k}\")",
                        spec.name
                    );
                }
            }
        }
        store.write(Some(&audit), |tx| {
            for spec in &specs {
                for row in matching_rows(tx, spec, &keys)? {
                    let key = key_of(spec, &row);
                    let k: Vec<&str> = key.iter().map(String::as_str).collect();
                    tx.delete(spec.name, &k)?;
                }
            }
            Ok(())
        })?;
        return Ok(ExitCode::from(if failed { 1 } else { 0 }));
    }
    if rest.is_empty() {
        bail!("nothing to change: give table.column=value after the keys");
    }
    // Group the assignments by table, validating everything before touching the store.
    let mut per_table: Vec<TableSets> = Vec::new();
    for arg in rest {
        let (t, temp) = arg
            .split_once('.')
            .ok_or_else(|| anyhow!("{arg} not a valid table.column description"))?;
        let spec = tab_spec(t)?;
        for (k, _) in &keys {
            if spec.col_index(k).is_none() {
                // The database's own words, as xCAT's tabch passes them on.
                bail!("no such column: {k} (table \"{t}\" has no column \"{k}\")");
            }
        }
        let (c, value, append) = match temp.split_once("+=") {
            Some((c, v)) if !c.contains('=') => (c, v, true),
            _ => {
                let (c, v) = temp
                    .split_once('=')
                    .ok_or_else(|| anyhow!("{arg} not a valid table.column description"))?;
                (c, v, false)
            }
        };
        if spec.col_index(c).is_none() {
            bail!("{t}.{c} not a valid table.column description");
        }
        match per_table.iter_mut().find(|(s, _)| s.name == spec.name) {
            Some((_, v)) => v.push((c.to_string(), value.to_string(), append)),
            None => per_table.push((spec, vec![(c.to_string(), value.to_string(), append)])),
        }
    }
    store.write(Some(&audit), |tx| {
        for (spec, sets) in &per_table {
            let mut targets: Vec<Option<Row>> = matching_rows(tx, spec, &keys)?
                .into_iter()
                .map(Some)
                .collect();
            if targets.is_empty() {
                // No row yet: xCAT's setAttribs inserts one from the keys and the values given,
                // so a key column may come from either (chtab key=system passwd.username=root …).
                targets.push(None);
            }
            for current in targets {
                let mut row: Row = current
                    .clone()
                    .unwrap_or_else(|| vec![None; spec.cols.len()]);
                for (kcol, kval) in &keys {
                    if let Some(i) = spec.col_index(kcol) {
                        row[i] = Some(kval.clone());
                    }
                }
                for (c, v, append) in sets {
                    let Some(i) = spec.col_index(c) else { continue };
                    let new = if *append {
                        let old = current
                            .as_ref()
                            .and_then(|r| r.get(i).cloned().flatten())
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
                    row[i] = Some(new);
                }
                let new_key = key_of(spec, &row);
                if let Some(k) = spec.keys.iter().zip(&new_key).find(|(_, v)| v.is_empty()) {
                    return Err(crate::store::StoreError::Invalid(format!(
                        "no row of {} matches, and a new row needs its key column '{}'",
                        spec.name, k.0
                    )));
                }
                if let Some(cur) = &current {
                    let old_key = key_of(spec, cur);
                    if old_key == new_key {
                        // Same row: an update of its columns (what change followers see as one).
                        let k: Vec<&str> = new_key.iter().map(String::as_str).collect();
                        let vals: Vec<(&str, Option<&str>)> = spec
                            .cols
                            .iter()
                            .zip(&row)
                            .filter(|(c, _)| !spec.keys.contains(c))
                            .map(|(c, v)| (*c, v.as_deref()))
                            .collect();
                        tx.set(spec.name, &k, &vals)?;
                        continue;
                    }
                    let k: Vec<&str> = old_key.iter().map(String::as_str).collect();
                    tx.delete(spec.name, &k)?;
                }
                tx.put(spec.name, row)?;
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
        crate::errln!("{}: no changes", spec.name);
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
