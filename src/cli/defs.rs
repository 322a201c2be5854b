//! Object commands: `mkdef`, `lsdef`, `chdef`, `rmdef`. Objects are xCAT's views over the tables
//! ([`crate::store::defspec`]): a node's `ip` is `hosts.ip`, an osimage's `template` is
//! `linuximage.template`, and so on. The `site` object (`clustersite`) has one attribute per site key.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use clap::Args;

use super::nodes::{check_node_name, remove_node, report_missing, BLANK_OVERRIDE};
use super::DbOpt;
use crate::store::defspec::{self, AttrDef, ObjDef};
use crate::store::resolver::{split_condition, ColumnView, Resolver, ValueTest};
use crate::store::{table_spec, Audit, StoreError, Txn};

/// The name lsdef shows for the one site object.
const SITE_OBJECT: &str = "clustersite";

#[derive(Debug, Args)]
pub struct LsdefArgs {
    /// Object type(s), comma-separated: node, group, osimage, network, site, … (default: node)
    #[arg(short = 't', value_name = "TYPE")]
    objtype: Option<String>,
    /// Object names (for nodes, a noderange)
    #[arg(short = 'o', value_name = "NAMES")]
    objects: Option<String>,
    /// Show every attribute of every object listed
    #[arg(short = 'l', long = "long")]
    long: bool,
    /// Show only the object names
    #[arg(short = 's', long = "short")]
    short: bool,
    /// Show only these attributes (comma-separated)
    #[arg(short = 'i', value_name = "ATTRS")]
    attrs: Option<String>,
    /// Only objects where COND holds: attr==value, attr!=value, attr=~regex, attr!~regex (repeatable)
    #[arg(short = 'w', value_name = "COND")]
    conds: Vec<String>,
    /// Include hidden nodes
    #[arg(short = 'S')]
    hidden: bool,
    /// Object names or a noderange (same as -o)
    #[arg(allow_hyphen_values = true)]
    names: Option<String>,
}

/// A parsed `-w` condition on object attributes.
struct AttrCond {
    attr: String,
    test: ValueTest,
}

impl AttrCond {
    fn parse(s: &str) -> anyhow::Result<AttrCond> {
        let (attr, op, value) = split_condition(s)
            .ok_or_else(|| anyhow!("'{s}' is not a condition (use attr==value, attr!=value, attr=~regex or attr!~regex)"))?;
        let test = ValueTest::new(op, value)
            .map_err(|e| anyhow!("bad regular expression in '{s}': {e}"))?;
        Ok(AttrCond {
            attr: attr.to_string(),
            test,
        })
    }

    fn holds(&self, attrs: &BTreeMap<String, String>) -> bool {
        self.test.holds(attrs.get(&self.attr).map(String::as_str))
    }
}

fn objdef(t: &str) -> anyhow::Result<&'static ObjDef> {
    defspec::object(t).ok_or_else(|| {
        let mut known: Vec<&str> = defspec::OBJECTS.iter().map(|o| o.objtype).collect();
        known.push("site");
        known.sort();
        anyhow!(
            "'{t}' is not a valid object type (valid types: {})",
            known.join(", ")
        )
    })
}

/// Reads objects of one type with their attributes.
struct ObjReader<'r> {
    r: &'r Resolver,
    def: Option<&'static ObjDef>,
    objtype: String,
    /// For nodes: one prepared column per attribute definition.
    views: Vec<(&'static AttrDef, ColumnView<'r>)>,
}

impl<'r> ObjReader<'r> {
    fn new(r: &'r Resolver, objtype: &str) -> anyhow::Result<ObjReader<'r>> {
        if objtype == "site" {
            return Ok(ObjReader {
                r,
                def: None,
                objtype: objtype.into(),
                views: Vec::new(),
            });
        }
        let def = objdef(objtype)?;
        let mut tables: Vec<&str> = def.attrs.iter().map(|a| a.table).collect();
        tables.extend(["nodelist", "nodegroup", "site"]);
        r.preload(&tables)?;
        let mut views = Vec::new();
        if objtype == "node" {
            for a in def.attrs {
                views.push((a, r.column(a.table, a.column)?));
            }
        }
        Ok(ObjReader {
            r,
            def: Some(def),
            objtype: objtype.into(),
            views,
        })
    }

    /// Every object name of this type.
    fn names(&self, include_hidden: bool) -> anyhow::Result<Vec<String>> {
        let Some(def) = self.def else {
            return Ok(vec![SITE_OBJECT.to_string()]);
        };
        match self.objtype.as_str() {
            "node" => {
                let m = self.r.membership()?;
                let hidden = self.r.column("nodelist", "hidden")?;
                let mut out = Vec::new();
                for n in &m.nodes {
                    if include_hidden || hidden.get(n)?.as_deref() != Some("1") {
                        out.push(n.clone());
                    }
                }
                Ok(out)
            }
            "group" => {
                let m = self.r.membership()?;
                let mut set: BTreeSet<String> = m.static_groups.keys().cloned().collect();
                set.extend(m.dynamic_groups.keys().cloned());
                Ok(set.into_iter().collect())
            }
            _ => {
                let key = def
                    .attrs
                    .iter()
                    .find(|a| a.attr == def.objkey)
                    .or_else(|| def.attrs.first());
                let Some(key) = key else {
                    return Ok(Vec::new());
                };
                let t = self.r.table(key.table)?;
                let i = crate::store::column_index(t.spec, key.column)?;
                let set: BTreeSet<String> = t
                    .rows
                    .iter()
                    .filter_map(|r| r.get(i).cloned().flatten())
                    .filter(|v| !v.is_empty())
                    .collect();
                Ok(set.into_iter().collect())
            }
        }
    }

    /// The attributes of object `name` (only the defined ones).
    fn attrs(&self, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        let Some(def) = self.def else {
            let t = self.r.table("site")?;
            for row in &t.rows {
                if let (Some(Some(k)), Some(Some(v))) = (row.first(), row.get(1)) {
                    if !v.is_empty() {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            return Ok(out);
        };
        if self.objtype == "node" {
            // Unconditional attributes first, so only_if conditions can be checked against them.
            let mut conditional = Vec::new();
            for (a, v) in &self.views {
                if a.only_if.is_some() {
                    conditional.push((a, v));
                    continue;
                }
                if let Some(val) = v.get(name)? {
                    out.entry(a.attr.to_string()).or_insert(val);
                }
            }
            // xCAT walks the mappings in order and the last applicable one with a value wins.
            for (a, v) in conditional {
                let Some((ca, _)) = a.only_if else { continue };
                if !a.applies(out.get(ca).map(String::as_str)) {
                    continue;
                }
                if let Some(val) = v.get(name)? {
                    out.insert(a.attr.to_string(), val);
                }
            }
            out.remove(def.objkey);
            out.retain(|_, v| v != BLANK_OVERRIDE && !v.is_empty());
            out.insert("objtype".into(), "node".into());
            return Ok(out);
        }
        for a in def.attrs {
            if out.contains_key(a.attr) && a.only_if.is_none() {
                continue;
            }
            if let Some((ca, _)) = a.only_if {
                if !a.applies(out.get(ca).map(String::as_str)) {
                    continue;
                }
            }
            let t = self.r.table(a.table)?;
            let (Some(kc), Some(c)) = (t.spec.col_index(a.key_column), t.spec.col_index(a.column))
            else {
                continue;
            };
            let val = if t.spec.keys.first() == Some(&a.key_column) {
                t.rows_for(name).find_map(|r| r.get(c).cloned().flatten())
            } else {
                t.rows
                    .iter()
                    .find(|r| r.get(kc).and_then(|v| v.as_deref()) == Some(name))
                    .and_then(|r| r.get(c).cloned().flatten())
            };
            if let Some(v) = val.filter(|v| !v.is_empty() && v != BLANK_OVERRIDE) {
                out.insert(a.attr.to_string(), v);
            }
        }
        if self.objtype == "group" {
            let m = self.r.membership()?;
            if let Some(members) = m.static_groups.get(name) {
                if !members.is_empty() && !out.contains_key("members") {
                    out.insert(
                        "members".into(),
                        members.iter().cloned().collect::<Vec<_>>().join(","),
                    );
                }
            }
            out.entry("grouptype".into())
                .or_insert_with(|| "static".into());
        }
        out.remove(def.objkey);
        out.insert("objtype".into(), self.objtype.clone());
        Ok(out)
    }
}

pub fn lsdef(db: &DbOpt, a: LsdefArgs) -> anyhow::Result<ExitCode> {
    let names_arg = a.objects.clone().or(a.names.clone());
    let types: Vec<String> = a
        .objtype
        .as_deref()
        .unwrap_or("node")
        .split(',')
        .map(str::to_string)
        .collect();
    let conds: Vec<AttrCond> = a
        .conds
        .iter()
        .map(|c| AttrCond::parse(c))
        .collect::<anyhow::Result<_>>()?;
    let only: Option<Vec<String>> = a
        .attrs
        .as_ref()
        .map(|s| s.split(',').map(str::to_string).collect());
    let store = db.open()?;
    let r = Resolver::new(store);
    let mut out = super::stdout();
    let mut failed = false;
    for t in &types {
        let reader = ObjReader::new(&r, t)?;
        let names: Vec<String> = match &names_arg {
            Some(n) if t == "node" => {
                let exp = r.noderange(n, true)?;
                failed |= report_missing(&exp.missing);
                exp.nodes
            }
            Some(n) => {
                let all: BTreeSet<String> = reader.names(true)?.into_iter().collect();
                let mut v = Vec::new();
                for name in n.split(',') {
                    if all.contains(name) {
                        v.push(name.to_string());
                    } else {
                        out.flush()?;
                        eprintln!("Error: Could not find an object named '{name}' of type '{t}'.");
                        failed = true;
                    }
                }
                v
            }
            None => reader.names(a.hidden)?,
        };
        let detailed = !a.short && (a.long || only.is_some() || names_arg.is_some());
        if names.is_empty() && names_arg.is_none() {
            out.flush()?;
            eprintln!("Could not find any object definitions to display.");
            continue;
        }
        for name in &names {
            let need_attrs = detailed || !conds.is_empty();
            let attrs = if need_attrs {
                reader.attrs(name)?
            } else {
                BTreeMap::new()
            };
            if !conds.iter().all(|c| c.holds(&attrs)) {
                continue;
            }
            if !detailed {
                writeln!(out, "{name}  ({t})")?;
                continue;
            }
            writeln!(out, "Object name: {name}")?;
            for (k, v) in &attrs {
                if let Some(only) = &only {
                    if !only.iter().any(|o| o == k) {
                        continue;
                    }
                }
                writeln!(out, "    {k}={v}")?;
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

/// `attr=value` pairs from the command line.
fn parse_pairs(args: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    args.iter()
        .map(|s| {
            s.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("'{s}' is not attr=value"))
        })
        .collect()
}

/// How chdef combines a value with what is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Replace,
    Plus,
    Minus,
}

fn combine(old: Option<&str>, new: &str, mode: Mode) -> Option<String> {
    match mode {
        Mode::Replace => Some(new.to_string()),
        Mode::Plus | Mode::Minus => {
            let mut items: Vec<String> = old
                .unwrap_or("")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            for v in new.split(',').filter(|s| !s.is_empty()) {
                if mode == Mode::Plus {
                    if !items.iter().any(|i| i == v) {
                        items.push(v.to_string());
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
    }
}

/// Chooses the table column for `attr` given the object's other attribute values (only_if).
fn pick_def<'a>(
    def: &'a ObjDef,
    attr: &str,
    known: &BTreeMap<String, String>,
) -> anyhow::Result<&'a AttrDef> {
    let cands: Vec<&AttrDef> = def.attrs.iter().filter(|a| a.attr == attr).collect();
    if cands.is_empty() {
        bail!(
            "'{attr}' is not a valid attribute name for an object type of '{}'",
            def.objtype
        );
    }
    if let Some(a) = cands.iter().find(|a| {
        a.only_if
            .is_some_and(|(k, _)| a.applies(known.get(k).map(String::as_str)))
    }) {
        return Ok(a);
    }
    if let Some(a) = cands.iter().find(|a| a.only_if.is_none()) {
        return Ok(a);
    }
    let conds: Vec<String> = cands
        .iter()
        .filter_map(|a| a.only_if.map(|(k, v)| format!("{k}={v}")))
        .collect();
    bail!(
        "cannot set '{attr}' for this {}: it applies only when {}",
        def.objtype,
        conds.join(" or ")
    )
}

/// Writes attributes of one object (any type but site) in `tx`.
fn write_attrs(
    tx: &mut Txn<'_>,
    def: &ObjDef,
    name: &str,
    pairs: &[(String, String)],
    known: &BTreeMap<String, String>,
    mode: Mode,
) -> anyhow::Result<()> {
    // Group by table so a new row (networks, say) is created with all its key columns at once.
    let mut by_table: BTreeMap<&str, Vec<(&AttrDef, &str)>> = BTreeMap::new();
    for (k, v) in pairs {
        if k == def.objkey || k == "objtype" {
            continue;
        }
        if def.objtype == "group" && (k == "members") {
            continue;
        }
        let a = pick_def(def, k, known)?;
        by_table.entry(a.table).or_default().push((a, v.as_str()));
    }
    for (table, sets) in by_table {
        let spec = table_spec(table)?;
        let key_column = sets.first().map(|(a, _)| a.key_column).unwrap_or("node");
        let kc = crate::store::column_index(spec, key_column)?;
        let keyed_by_name = spec.keys == [key_column];
        let rows: Vec<Vec<String>> = if keyed_by_name {
            match tx.get(table, &[name])? {
                Some(_) => vec![vec![name.to_string()]],
                None => Vec::new(),
            }
        } else {
            let key_idx: Vec<usize> = spec.keys.iter().filter_map(|k| spec.col_index(k)).collect();
            tx.rows(table)?
                .into_iter()
                .filter(|r| r.get(kc).and_then(|v| v.as_deref()) == Some(name))
                .map(|r| {
                    key_idx
                        .iter()
                        .map(|i| r.get(*i).cloned().flatten().unwrap_or_default())
                        .collect()
                })
                .collect()
        };
        let current =
            |tx: &mut Txn<'_>, key: &[&str], col: &str| -> Result<Option<String>, StoreError> {
                Ok(tx.get(table, key)?.and_then(|r| {
                    spec.col_index(col)
                        .and_then(|i| r.get(i).cloned().flatten())
                }))
            };
        if rows.is_empty() {
            // New row: the key columns come from the values being set (networks: net and mask).
            let mut key = Vec::new();
            for k in spec.keys {
                if *k == key_column {
                    key.push(name.to_string());
                } else if let Some((_, v)) = sets.iter().find(|(a, _)| a.column == *k) {
                    key.push((*v).to_string());
                } else {
                    let attr = def
                        .attrs
                        .iter()
                        .find(|a| a.table == table && a.column == *k)
                        .map(|a| a.attr)
                        .unwrap_or(k);
                    bail!("{} '{name}' needs '{attr}' to be set (it is part of the {table} table's key)", def.objtype);
                }
            }
            let mut vals: Vec<(&str, Option<String>)> = Vec::new();
            if !spec.keys.contains(&key_column) {
                vals.push((key_column, Some(name.to_string())));
            }
            for (a, v) in &sets {
                if !spec.keys.contains(&a.column) {
                    vals.push((a.column, combine(None, v, mode)));
                }
            }
            let k: Vec<&str> = key.iter().map(String::as_str).collect();
            let v: Vec<(&str, Option<&str>)> =
                vals.iter().map(|(c, v)| (*c, v.as_deref())).collect();
            tx.set(table, &k, &v)?;
            continue;
        }
        for key in rows {
            let k: Vec<&str> = key.iter().map(String::as_str).collect();
            let mut vals: Vec<(&str, Option<String>)> = Vec::new();
            for (a, v) in &sets {
                if spec.keys.contains(&a.column) {
                    bail!("'{}' is part of the {table} table's key and cannot be changed here; remove and re-create the {}", a.attr, def.objtype);
                }
                let old = current(tx, &k, a.column)?;
                let value = if v.is_empty() && mode == Mode::Replace {
                    // An empty value clears the attribute; for a node it must also hide the group's value.
                    if def.objtype == "node" {
                        Some(BLANK_OVERRIDE.to_string())
                    } else {
                        None
                    }
                } else {
                    combine(old.as_deref(), v, mode)
                };
                vals.push((a.column, value));
            }
            let v: Vec<(&str, Option<&str>)> =
                vals.iter().map(|(c, v)| (*c, v.as_deref())).collect();
            tx.set(table, &k, &v)?;
        }
    }
    Ok(())
}

/// Static group membership from `members=` (xCAT records it in each node's nodelist.groups).
fn set_members(
    tx: &mut Txn<'_>,
    group: &str,
    members: &[String],
    mode: Mode,
) -> anyhow::Result<()> {
    for n in members {
        let old = tx
            .get("nodelist", &[n])?
            .and_then(|r| r.get(1).cloned().flatten());
        if old.is_none() && tx.get("nodelist", &[n])?.is_none() {
            bail!("cannot add '{n}' to group '{group}': no such node");
        }
        let new = combine(
            old.as_deref(),
            group,
            if mode == Mode::Minus {
                Mode::Minus
            } else {
                Mode::Plus
            },
        );
        tx.set("nodelist", &[n], &[("groups", new.as_deref())])?;
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct MkdefArgs {
    /// Object type: node (default), group, osimage, network, site, …
    #[arg(short = 't', value_name = "TYPE", default_value = "node")]
    objtype: String,
    /// Object names (for nodes, a noderange)
    #[arg(short = 'o', value_name = "NAMES")]
    objects: Option<String>,
    /// Replace an existing definition instead of refusing
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// With -t group: a dynamic group, whose members are the nodes matching the -w conditions
    #[arg(short = 'd', long = "dynamic")]
    dynamic: bool,
    /// With -d: a condition attr==value, attr!=value, attr=~regex, attr!~regex (repeatable)
    #[arg(short = 'w', value_name = "COND")]
    conds: Vec<String>,
    /// Object names (or noderange), then attr=value pairs
    args: Vec<String>,
}

/// Splits positional arguments into object names and attr=value pairs.
fn split_names(objects: Option<String>, args: &[String]) -> (Option<String>, Vec<String>) {
    let mut rest = args.to_vec();
    let names = match objects {
        Some(o) => Some(o),
        None if rest.first().is_some_and(|f| !f.contains('=')) => Some(rest.remove(0)),
        None => None,
    };
    (names, rest)
}

pub fn mkdef(db: &DbOpt, a: MkdefArgs) -> anyhow::Result<ExitCode> {
    let (names, rest) = split_names(a.objects.clone(), &a.args);
    let pairs = parse_pairs(&rest)?;
    let store = db.open()?;
    let r = Resolver::new(store.clone());
    let audit = Audit {
        command: "mkdef".into(),
        noderange: names.clone().unwrap_or_default(),
        args: format!("-t {} {}", a.objtype, super::audit_args(&rest)),
    };
    if a.objtype == "site" {
        return set_site(&store, &pairs, Mode::Replace, &audit);
    }
    let def = objdef(&a.objtype)?;
    let names = names.ok_or_else(|| {
        anyhow!(
            "no object name given: mkdef -t {} -o <name> attr=value …",
            a.objtype
        )
    })?;
    let reader = ObjReader::new(&r, &a.objtype)?;
    let existing: BTreeSet<String> = reader.names(true)?.into_iter().collect();
    let objs: Vec<String> = if a.objtype == "node" {
        let v = r.noderange(&names, false)?.nodes;
        for n in &v {
            check_node_name(n)?;
        }
        v
    } else {
        names.split(',').map(str::to_string).collect()
    };
    if !a.force {
        let dup: Vec<&String> = objs.iter().filter(|o| existing.contains(*o)).collect();
        if !dup.is_empty() {
            bail!(
                "A definition for '{}' already exists (use -f to replace it, or chdef to change it)",
                dup.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
            );
        }
    }
    if a.dynamic && a.objtype != "group" {
        bail!("-d (dynamic) applies only to -t group");
    }
    if a.dynamic && a.conds.is_empty() {
        bail!("a dynamic group needs at least one -w condition");
    }
    for c in &a.conds {
        crate::store::resolver::Condition::parse(c)?;
    }
    let known: BTreeMap<String, String> = pairs.iter().cloned().collect();
    for (k, _) in &pairs {
        if k != def.objkey && k != "objtype" && !(a.objtype == "group" && k == "members") {
            pick_def(def, k, &known)?;
        }
    }
    let members: Vec<String> = known
        .get("members")
        .map(|m| m.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    store.write(Some(&audit), |tx| {
        let res = (|| -> anyhow::Result<()> {
            for o in &objs {
                if a.force && existing.contains(o) {
                    remove_object(tx, def, o)?;
                }
                if a.objtype == "node" {
                    let groups = known.get("groups").map(String::as_str);
                    tx.set("nodelist", &[o], &[("groups", groups)])?;
                }
                if a.objtype == "group" {
                    let (ty, wh) = if a.dynamic {
                        ("dynamic", Some(a.conds.join("::")))
                    } else {
                        ("static", None)
                    };
                    tx.set(
                        "nodegroup",
                        &[o],
                        &[("grouptype", Some(ty)), ("wherevals", wh.as_deref())],
                    )?;
                    set_members(tx, o, &members, Mode::Plus)?;
                }
                write_attrs(tx, def, o, &pairs, &known, Mode::Replace)?;
            }
            Ok(())
        })();
        res.map_err(|e| StoreError::Invalid(super::chain(&e)))
    })?;
    println!(
        "{} object definition(s) have been created or modified.",
        objs.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn set_site(
    store: &crate::store::Store,
    pairs: &[(String, String)],
    mode: Mode,
    audit: &Audit,
) -> anyhow::Result<ExitCode> {
    if pairs.is_empty() {
        bail!("nothing to set: give key=value pairs for the site object");
    }
    store.write(Some(audit), |tx| {
        for (k, v) in pairs {
            let old = tx
                .get("site", &[k])?
                .and_then(|r| r.get(1).cloned().flatten());
            let new = if v.is_empty() && mode == Mode::Replace {
                None
            } else {
                combine(old.as_deref(), v, mode)
            };
            tx.set("site", &[k], &[("value", new.as_deref())])?;
        }
        Ok(())
    })?;
    println!("1 object definition(s) have been created or modified.");
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct ChdefArgs {
    /// Object type: node (default), group, osimage, network, site, …
    #[arg(short = 't', value_name = "TYPE", default_value = "node")]
    objtype: String,
    /// Object names (for nodes, a noderange)
    #[arg(short = 'o', value_name = "NAMES")]
    objects: Option<String>,
    /// Add the values to comma-separated list attributes
    #[arg(short = 'p', long = "plus", conflicts_with = "minus")]
    plus: bool,
    /// Remove the values from comma-separated list attributes
    #[arg(short = 'm', long = "minus")]
    minus: bool,
    /// Object names (or noderange), then attr=value pairs
    args: Vec<String>,
}

pub fn chdef(db: &DbOpt, a: ChdefArgs) -> anyhow::Result<ExitCode> {
    let (names, rest) = split_names(a.objects.clone(), &a.args);
    let pairs = parse_pairs(&rest)?;
    let mode = if a.plus {
        Mode::Plus
    } else if a.minus {
        Mode::Minus
    } else {
        Mode::Replace
    };
    let store = db.open()?;
    let audit = Audit {
        command: "chdef".into(),
        noderange: names.clone().unwrap_or_default(),
        args: format!("-t {} {}", a.objtype, super::audit_args(&rest)),
    };
    if a.objtype == "site" {
        let pairs: Vec<(String, String)> = match names.as_deref() {
            Some(SITE_OBJECT) | None => pairs,
            Some(other) => bail!("the site object is named '{SITE_OBJECT}', not '{other}'"),
        };
        return set_site(&store, &pairs, mode, &audit);
    }
    if pairs.is_empty() {
        bail!("nothing to change: give attr=value pairs");
    }
    let def = objdef(&a.objtype)?;
    let names = names.ok_or_else(|| {
        anyhow!(
            "no object name given: chdef -t {} -o <name> attr=value …",
            a.objtype
        )
    })?;
    let r = Resolver::new(store.clone());
    let reader = ObjReader::new(&r, &a.objtype)?;
    let objs: Vec<String> = if a.objtype == "node" {
        let exp = r.noderange(&names, true)?;
        if !exp.missing.is_empty() {
            bail!(
                "Could not find an object named '{}' of type 'node' (use mkdef to create it)",
                exp.missing.join(",")
            );
        }
        exp.nodes
    } else {
        let existing: BTreeSet<String> = reader.names(true)?.into_iter().collect();
        let objs: Vec<String> = names.split(',').map(str::to_string).collect();
        if let Some(o) = objs.iter().find(|o| !existing.contains(*o)) {
            bail!(
                "Could not find an object named '{o}' of type '{}' (use mkdef to create it)",
                a.objtype
            );
        }
        objs
    };
    // only_if is judged on the values being set, then on what the object already has.
    let mut knowns = Vec::with_capacity(objs.len());
    for o in &objs {
        let mut known = reader.attrs(o)?;
        known.extend(pairs.iter().cloned());
        for (k, _) in &pairs {
            if k != def.objkey && !(a.objtype == "group" && k == "members") {
                pick_def(def, k, &known)?;
            }
        }
        knowns.push(known);
    }
    let members: Vec<String> = pairs
        .iter()
        .find(|(k, _)| k == "members")
        .map(|(_, m)| m.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    store.write(Some(&audit), |tx| {
        let res = (|| -> anyhow::Result<()> {
            for (o, known) in objs.iter().zip(&knowns) {
                if a.objtype == "group" && !members.is_empty() {
                    set_members(tx, o, &members, mode)?;
                }
                write_attrs(tx, def, o, &pairs, known, mode)?;
            }
            Ok(())
        })();
        res.map_err(|e| StoreError::Invalid(super::chain(&e)))
    })?;
    println!(
        "{} object definition(s) have been created or modified.",
        objs.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Deletes every row that defines object `name` of type `def`.
fn remove_object(tx: &mut Txn<'_>, def: &ObjDef, name: &str) -> anyhow::Result<()> {
    match def.objtype {
        "node" => remove_node(tx, name)?,
        "group" => {
            // Take the group out of every node's list, then drop the group's own rows.
            for row in tx.rows("nodelist")? {
                let (Some(Some(n)), groups) = (row.first(), row.get(1).cloned().flatten()) else {
                    continue;
                };
                if let Some(g) = groups {
                    if g.split(',').any(|x| x == name) {
                        let new = combine(Some(&g), name, Mode::Minus);
                        tx.set("nodelist", &[n], &[("groups", new.as_deref())])?;
                    }
                }
            }
            remove_node(tx, name)?;
            tx.delete("nodegroup", &[name])?;
        }
        _ => {
            let mut done = BTreeSet::new();
            for a in def.attrs {
                if done.insert((a.table, a.key_column)) {
                    tx.delete_where(a.table, a.key_column, name)?;
                }
            }
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct RmdefArgs {
    /// Object type: node (default), group, osimage, network, …
    #[arg(short = 't', value_name = "TYPE", default_value = "node")]
    objtype: String,
    /// Object names (for nodes, a noderange)
    #[arg(short = 'o', value_name = "NAMES")]
    objects: Option<String>,
    /// Object names or a noderange (same as -o)
    #[arg(allow_hyphen_values = true)]
    names: Option<String>,
}

pub fn rmdef(db: &DbOpt, a: RmdefArgs) -> anyhow::Result<ExitCode> {
    if a.objtype == "site" {
        bail!(
            "the site object cannot be removed; use chdef -t site key= to clear a site attribute"
        );
    }
    let def = objdef(&a.objtype)?;
    let names = a
        .objects
        .clone()
        .or(a.names.clone())
        .ok_or_else(|| anyhow!("no object name given"))?;
    let store = db.open()?;
    let r = Resolver::new(store.clone());
    let reader = ObjReader::new(&r, &a.objtype)?;
    let objs: Vec<String> = if a.objtype == "node" {
        let exp = r.noderange(&names, true)?;
        if report_missing(&exp.missing) && exp.nodes.is_empty() {
            return Ok(ExitCode::from(1));
        }
        exp.nodes
    } else {
        let existing: BTreeSet<String> = reader.names(true)?.into_iter().collect();
        let objs: Vec<String> = names.split(',').map(str::to_string).collect();
        if let Some(o) = objs.iter().find(|o| !existing.contains(*o)) {
            bail!(
                "Could not find an object named '{o}' of type '{}'",
                a.objtype
            );
        }
        objs
    };
    let audit = Audit {
        command: "rmdef".into(),
        noderange: names.clone(),
        args: format!("-t {}", a.objtype),
    };
    store.write(Some(&audit), |tx| {
        let res = (|| -> anyhow::Result<()> {
            for o in &objs {
                remove_object(tx, def, o)?;
            }
            Ok(())
        })();
        res.map_err(|e| StoreError::Invalid(super::chain(&e)))
    })?;
    println!("{} object definition(s) have been removed.", objs.len());
    Ok(ExitCode::SUCCESS)
}
