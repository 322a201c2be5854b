//! Node commands: `nodels`, `nodeadd`, `nodech`, `noderm`, with xCAT's syntax and output.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use clap::Args;

use super::DbOpt;
use crate::store::resolver::{short_name, Condition, Resolver};
use crate::store::{schema, table_spec, Audit, StoreError, TableSpec, Txn};

/// Prints the names a noderange could not find, as xCAT does, and says whether there were any.
pub fn report_missing(missing: &[String]) -> bool {
    if missing.is_empty() {
        return false;
    }
    crate::errln!(
        "Error: Invalid nodes and/or groups in noderange: {}",
        missing.join(",")
    );
    true
}

#[derive(Debug, Args)]
pub struct NodelsArgs {
    /// Say which group a value is inherited from
    #[arg(short = 'b', long = "blame")]
    blame: bool,
    /// Label every value with its table.column, even when only one is asked for
    #[arg(short = 'H', long = "with-fieldname")]
    with_fieldname: bool,
    /// Include hidden nodes (nodelist.hidden=1)
    #[arg(short = 'S')]
    hidden: bool,
    /// The nodes to list (default: all)
    #[arg(allow_hyphen_values = true)]
    noderange: Option<String>,
    /// table.column (or groups, mgt, or a whole table) to print; table.column==value, !=, =~, !~ filter
    attrs: Vec<String>,
}

/// One thing nodels was asked for.
enum Want {
    Show {
        label: String,
        table: &'static str,
        column: String,
    },
    Filter(Condition),
}

fn parse_want(arg: &str, out: &mut Vec<Want>) -> anyhow::Result<()> {
    if ["==", "!=", "=~", "!~"].iter().any(|op| arg.contains(op)) {
        // xCAT lets a regex be written /like this/.
        let arg = match arg.find("=~").or_else(|| arg.find("!~")) {
            Some(i) => {
                let (l, r) = arg.split_at(i + 2);
                format!(
                    "{l}{}",
                    r.strip_prefix('/')
                        .map(|r| r.strip_suffix('/').unwrap_or(r))
                        .unwrap_or(r)
                )
            }
            None => arg.to_string(),
        };
        let (lhs, _) = arg.split_at(arg.find(['=', '!']).unwrap_or(0));
        let lhs = short_name(lhs)
            .map(str::to_string)
            .unwrap_or_else(|| lhs.to_string());
        if !lhs.contains('.') {
            bail!("{lhs} not a valid table.column description");
        }
        out.push(Want::Filter(Condition::parse(&arg)?));
        return Ok(());
    }
    if let Some(full) = short_name(arg) {
        let (t, c) = full.split_once('.').unwrap_or((full, ""));
        out.push(Want::Show {
            label: arg.to_string(),
            table: table_spec(t)?.name,
            column: c.to_string(),
        });
        return Ok(());
    }
    if let Some((t, c)) = arg.split_once('.') {
        let spec =
            table_spec(t).map_err(|_| anyhow!("{arg} not a valid table.column description"))?;
        if spec.col_index(c).is_none() {
            bail!("{arg} not a valid table.column description");
        }
        out.push(Want::Show {
            label: arg.to_string(),
            table: spec.name,
            column: c.to_string(),
        });
        return Ok(());
    }
    if let Some(spec) = schema::table(arg) {
        let key = spec.keys.first().copied().unwrap_or("node");
        for c in spec.cols.iter().filter(|c| **c != key) {
            out.push(Want::Show {
                label: format!("{}.{c}", spec.name),
                table: spec.name,
                column: c.to_string(),
            });
        }
        return Ok(());
    }
    bail!("{arg} not a valid table.column description")
}

pub fn nodels(db: &DbOpt, a: NodelsArgs) -> anyhow::Result<ExitCode> {
    let mut wants = Vec::new();
    for arg in &a.attrs {
        parse_want(arg, &mut wants)?;
    }
    let shows = wants
        .iter()
        .filter(|w| matches!(w, Want::Show { .. }))
        .count();
    let whole_table = a.attrs.iter().any(|x| schema::table(x).is_some());
    let labelled = a.with_fieldname || shows > 1 || whole_table;
    let store = db.open_existing()?;
    let r = Resolver::new(store);
    let mut tables: Vec<&str> = vec!["nodelist", "site", "nodegroup"];
    for w in &wants {
        match w {
            Want::Show { table, .. } => tables.push(table),
            Want::Filter(c) => tables.push(c.table),
        }
    }
    r.preload(&tables)?;
    let exp = r.noderange(a.noderange.as_deref().unwrap_or("all"), true);
    let exp = match (exp, &a.noderange) {
        (Ok(e), _) => e,
        // With no noderange xCAT lists every node, whether or not a group `all` exists.
        (Err(e), Some(_)) => return Err(e.into()),
        (Err(e), None) => return Err(e.into()),
    };
    let mut nodes = if a.noderange.is_none() {
        r.membership()?.nodes.iter().cloned().collect()
    } else {
        exp.nodes
    };
    let missing = a.noderange.is_some() && report_missing(&exp.missing);
    if !a.hidden {
        let hidden = r.column("nodelist", "hidden")?;
        let mut keep = Vec::with_capacity(nodes.len());
        for n in nodes {
            if hidden.get(&n)?.as_deref() != Some("1") {
                keep.push(n);
            }
        }
        nodes = keep;
    }
    let filters: Vec<Condition> = wants
        .iter()
        .filter_map(|w| {
            if let Want::Filter(c) = w {
                Some(c.clone())
            } else {
                None
            }
        })
        .collect();
    if !filters.is_empty() {
        nodes = r.filter(&nodes, &filters)?;
    }
    let mut views = Vec::new();
    for w in &wants {
        if let Want::Show {
            label,
            table,
            column,
        } = w
        {
            views.push((
                label.as_str(),
                *table,
                column.as_str(),
                r.column(table, column)?,
            ));
        }
    }
    let mut out = super::stdout();
    let mut failed = missing;
    for n in &nodes {
        if views.is_empty() {
            writeln!(out, "{n}")?;
            continue;
        }
        for (label, table, column, v) in &views {
            match v.get(n) {
                Ok(val) => {
                    let mut val = val.unwrap_or_default();
                    if super::request::masked(table, column) && !val.is_empty() {
                        val = super::request::MASK.to_string();
                    }
                    if a.blame {
                        if let Some(g) = r.attr_origin(n, table, column)? {
                            val = format!("{val} (inherited from group {g})");
                        }
                    }
                    if labelled {
                        writeln!(out, "{n}: {label}: {val}")?;
                    } else {
                        writeln!(out, "{n}: {val}")?;
                    }
                }
                Err(e) => {
                    out.flush()?;
                    crate::errln!("{n}: Error: {e}");
                    failed = true;
                }
            }
        }
    }
    super::finish(out)?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// One `table.column<op>value` assignment of nodeadd/nodech.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub table: &'static TableSpec,
    pub column: String,
    pub op: AssignOp,
    pub value: String,
}

/// How an assignment combines with the current value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOp {
    /// `=`: replace.
    Set,
    /// `,=`: add to a comma-separated list.
    Append,
    /// `^=`: remove from a comma-separated list.
    Remove,
}

/// The value xCAT stores for `attr=` (empty): a regex that resolves to nothing, so that the node's
/// own row overrides whatever its groups say.
pub const BLANK_OVERRIDE: &str = "|^.*$||";

impl Assignment {
    pub fn parse(arg: &str) -> anyhow::Result<Assignment> {
        let (lhs, value) = arg
            .split_once('=')
            .ok_or_else(|| anyhow!("malformed argument '{arg}': expected table.column=value"))?;
        let value = value.strip_prefix('@').unwrap_or(value);
        let (lhs, op) = if let Some(l) = lhs.strip_suffix(',') {
            (l, AssignOp::Append)
        } else if let Some(l) = lhs.strip_suffix('^') {
            (l, AssignOp::Remove)
        } else {
            (lhs, AssignOp::Set)
        };
        let full = short_name(lhs).unwrap_or(lhs);
        let (t, c) = full
            .split_once('.')
            .ok_or_else(|| anyhow!("{lhs} not a valid table.column description"))?;
        let spec = table_spec(t)?;
        if spec.col_index(c).is_none() {
            bail!("{t}.{c} not a valid table.column description");
        }
        if !spec.keys.contains(&"node") && spec.name != "nodelist" {
            bail!("table {t} is not keyed by node; use tabch to change it");
        }
        if spec.keys.contains(&c) {
            bail!("{t}.{c} is the key of table {t}; it cannot be assigned");
        }
        let value = if value.is_empty() && op == AssignOp::Set {
            BLANK_OVERRIDE.to_string()
        } else {
            value.to_string()
        };
        Ok(Assignment {
            table: spec,
            column: c.to_string(),
            op,
            value,
        })
    }

    /// Applies this assignment to `node`'s own row.
    pub fn apply(&self, tx: &mut Txn<'_>, node: &str) -> Result<(), StoreError> {
        let key = [node];
        if self.table.keys.len() != 1 {
            return Err(StoreError::Invalid(format!(
                "table {} has a multi-column key ({}); use tabch to change it",
                self.table.name,
                self.table.keys.join(",")
            )));
        }
        let new = match self.op {
            AssignOp::Set => Some(self.value.clone()),
            AssignOp::Append | AssignOp::Remove => {
                let old = tx
                    .get(self.table.name, &key)?
                    .and_then(|r| {
                        self.table
                            .col_index(&self.column)
                            .and_then(|i| r.get(i).cloned().flatten())
                    })
                    .unwrap_or_default();
                let mut items: Vec<String> = old
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                for v in self.value.split(',').filter(|s| !s.is_empty()) {
                    if self.op == AssignOp::Append {
                        // xCAT's nodech unshifts each new value: `groups,=a,b` on `all` is `b,a,all`.
                        if !items.iter().any(|i| i == v) {
                            items.insert(0, v.to_string());
                        }
                    } else {
                        items.retain(|i| i != v);
                    }
                }
                if items.is_empty() {
                    None
                } else {
                    Some(items.join(","))
                }
            }
        };
        tx.set(
            self.table.name,
            &key,
            &[(self.column.as_str(), new.as_deref())],
        )
    }
}

/// Node names xCAT would refuse or that break later (DHCP host names, file names under /tftpboot).
pub fn check_node_name(name: &str) -> anyhow::Result<()> {
    crate::store::validate::node_name(name).map_err(|e| anyhow::anyhow!(e))
}

#[derive(Debug, Args)]
pub struct NodeaddArgs {
    /// The nodes to add (a noderange; names need not exist yet)
    #[arg(allow_hyphen_values = true)]
    noderange: String,
    /// groups=<g1,g2,…> and any table.column=value
    #[arg(required = true)]
    attrs: Vec<String>,
}

pub fn nodeadd(db: &DbOpt, a: NodeaddArgs) -> anyhow::Result<ExitCode> {
    let assigns: Vec<Assignment> = a
        .attrs
        .iter()
        .map(|s| Assignment::parse(s))
        .collect::<anyhow::Result<_>>()?;
    if !assigns
        .iter()
        .any(|x| x.table.name == "nodelist" && x.column == "groups")
    {
        bail!("nodeadd needs groups=<groupnames> (every node should be in group 'all')");
    }
    let store = db.open()?;
    let r = Resolver::new(store.clone());
    let nodes = r.noderange(&a.noderange, false)?.nodes;
    if nodes.is_empty() {
        bail!("no noderange to add");
    }
    for n in &nodes {
        check_node_name(n)?;
    }
    let caps: Vec<&str> = nodes
        .iter()
        .filter(|n| n.chars().any(|c| c.is_ascii_uppercase()))
        .map(String::as_str)
        .collect();
    if !caps.is_empty() {
        crate::errln!(
            "Warning: The node name '{}' contains capital letters which may not be resolved correctly by the dns server.",
            caps.join(",")
        );
    }
    warn_dynamic_groups(&r, &assigns)?;
    let audit = Audit {
        command: "nodeadd".into(),
        noderange: a.noderange.clone(),
        args: super::audit_args(&a.attrs),
    };
    store.write(Some(&audit), |tx| {
        for n in &nodes {
            for x in &assigns {
                x.apply(tx, n)?;
            }
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn warn_dynamic_groups(r: &Resolver, assigns: &[Assignment]) -> anyhow::Result<()> {
    let m = r.membership()?;
    for x in assigns
        .iter()
        .filter(|x| x.table.name == "nodelist" && x.column == "groups")
    {
        for g in x.value.split(',') {
            if m.dynamic_groups.contains_key(g) {
                crate::errln!("Warning: nodegroup {g} is a dynamic node group; a node should not be added to it statically.");
            }
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct NodechArgs {
    /// Delete the nodes' rows from the named tables
    #[arg(short = 'd', long = "delete")]
    delete: bool,
    /// The nodes to change
    #[arg(allow_hyphen_values = true)]
    noderange: String,
    /// table.column=value (`,=` appends to a list, `^=` removes from it, empty clears and overrides
    /// the groups); table.column==value, !=, =~, !~ select which nodes change; with -d: table names
    #[arg(required = true)]
    args: Vec<String>,
}

pub fn nodech(db: &DbOpt, a: NodechArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let r = Resolver::new(store.clone());
    let exp = r.noderange(&a.noderange, true)?;
    let failed = report_missing(&exp.missing);
    let mut nodes = exp.nodes;
    let audit = Audit {
        command: "nodech".into(),
        noderange: a.noderange.clone(),
        args: format!(
            "{}{}",
            if a.delete { "-d " } else { "" },
            super::audit_args(&a.args)
        ),
    };
    if a.delete {
        let mut specs = Vec::new();
        for t in &a.args {
            if t.contains(['.', '=']) {
                bail!(". and = not valid in delete mode");
            }
            let spec = table_spec(t)?;
            if spec.keys.first() != Some(&"node") {
                bail!("table {t} is not keyed by node");
            }
            specs.push(spec);
        }
        store.write(Some(&audit), |tx| {
            for n in &nodes {
                for s in &specs {
                    tx.delete_where(s.name, "node", n)?;
                }
            }
            Ok(())
        })?;
        return Ok(if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    let mut assigns = Vec::new();
    let mut conds = Vec::new();
    for arg in &a.args {
        if ["==", "!=", "=~", "!~"].iter().any(|op| arg.contains(op)) {
            conds.push(Condition::parse(arg)?);
        } else {
            assigns.push(Assignment::parse(arg)?);
        }
    }
    if assigns.is_empty() {
        bail!("nothing to change: give table.column=value");
    }
    if !conds.is_empty() {
        nodes = r.filter(&nodes, &conds)?;
    }
    warn_dynamic_groups(&r, &assigns)?;
    store.write(Some(&audit), |tx| {
        for n in &nodes {
            for x in &assigns {
                x.apply(tx, n)?;
            }
        }
        Ok(())
    })?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Debug, Args)]
pub struct NodermArgs {
    /// The nodes to remove
    #[arg(allow_hyphen_values = true)]
    noderange: String,
}

/// Removes `node` from every table keyed by node, and from static group member lists.
pub fn remove_node(tx: &mut Txn<'_>, node: &str) -> Result<(), StoreError> {
    for spec in schema::TABLES {
        if spec.keys.first() == Some(&"node") {
            tx.delete_where(spec.name, "node", node)?;
        }
    }
    Ok(())
}

pub fn noderm(db: &DbOpt, a: NodermArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let r = Resolver::new(store.clone());
    let exp = r.noderange(&a.noderange, true)?;
    let failed = report_missing(&exp.missing);
    let audit = Audit {
        command: "noderm".into(),
        noderange: a.noderange.clone(),
        args: String::new(),
    };
    store.write(Some(&audit), |tx| {
        for n in &exp.nodes {
            remove_node(tx, n)?;
        }
        Ok(())
    })?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Debug, Args)]
pub struct NodegrpchArgs {
    /// The groups (comma-separated)
    groups: String,
    /// table.column=value …
    #[arg(required = true)]
    args: Vec<String>,
}

/// nodegrpch: sets the groups' own rows (what their members inherit), as xCAT's nodech in group
/// mode does; membership itself cannot change here.
pub fn nodegrpch(db: &DbOpt, a: NodegrpchArgs) -> anyhow::Result<ExitCode> {
    let mut assigns = Vec::new();
    for arg in &a.args {
        let x = Assignment::parse(arg)?;
        if x.table.name == "nodelist" && x.column == "groups" {
            bail!("Group membership is not changeable via nodegrpch");
        }
        if x.op != AssignOp::Set {
            bail!(",= and ^= are not supported by nodegrpch");
        }
        assigns.push(x);
    }
    let groups: Vec<&str> = a.groups.split(',').filter(|g| !g.is_empty()).collect();
    if groups.is_empty() {
        bail!("No noderange to add.");
    }
    let store = super::DbOpt::open(db)?;
    let r = Resolver::new(store.clone());
    // xCAT's nodegrpch "clears conflicting node specific overrides of the specified groups":
    // the members' own values of these columns go, so the group's value is what they get.
    let mut members: Vec<(String, Vec<String>)> = Vec::new();
    for g in &groups {
        let nodes = r.noderange(g, false).map(|e| e.nodes).unwrap_or_default();
        members.push((g.to_string(), nodes));
    }
    let audit = Audit {
        command: "nodegrpch".into(),
        noderange: a.groups.clone(),
        args: super::audit_args(&a.args),
    };
    store.write(Some(&audit), |tx| {
        for (g, nodes) in &members {
            for x in &assigns {
                x.apply(tx, g)?;
                if x.column == "node" {
                    continue;
                }
                for n in nodes {
                    if n != g && tx.get(x.table.name, &[n])?.is_some() {
                        tx.set(x.table.name, &[n], &[(x.column.as_str(), None)])?;
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct NodepurgeArgs {
    /// The nodes to purge
    noderange: String,
    /// The hosts file their lines are removed from
    #[arg(
        long = "hosts-file",
        default_value = "/etc/hosts",
        value_name = "PATH",
        hide = true
    )]
    hosts_file: std::path::PathBuf,
}

/// nodepurge: what xCAT's script does in turn — the nodes' lines leave the hosts file
/// (makehosts -d), then every row of theirs goes (noderm); DHCP answers and boot files follow
/// the store, so nothing else is left behind.
pub fn nodepurge(db: &DbOpt, a: NodepurgeArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let r = Resolver::new(store.clone());
    let exp = r.noderange(&a.noderange, true)?;
    if report_missing(&exp.missing) && exp.nodes.is_empty() {
        return Ok(ExitCode::from(1));
    }
    if a.hosts_file.exists() {
        super::net::remove_hosts_lines(&r, &exp.nodes, &a.hosts_file)?;
    }
    let audit = Audit {
        command: "nodepurge".into(),
        noderange: a.noderange.clone(),
        args: String::new(),
    };
    store.write(Some(&audit), |tx| {
        for n in &exp.nodes {
            remove_node(tx, n)?;
        }
        Ok(())
    })?;
    Ok(if exp.missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
