//! Object commands: `mkdef`, `lsdef`, `chdef`, `rmdef`. Objects are xCAT's views over the tables
//! ([`crate::store::defspec`]): a node's `ip` is `hosts.ip`, an osimage's `template` is
//! `linuximage.template`, and so on. The `site` object (`clustersite`) has one attribute per site key.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use clap::Args;

use super::nodes::{check_node_name, remove_node, BLANK_OVERRIDE};
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
    /// Write xCAT's stanza format (mkdef -z / chdef -z read it back)
    #[arg(short = 'z', long = "stanza")]
    stanza: bool,
    /// Every object of every type
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// List the object definition templates (all, or those named)
    #[arg(long = "template", value_name = "NAMES", num_args = 0..=1, default_missing_value = "")]
    template: Option<String>,
    /// Verbose (accepted for xCAT compatibility)
    #[arg(short = 'V', long = "verbose")]
    verbose: bool,
    /// With -i: one line per attribute, "<object>: <attr>=<value>" (for xcoll/xdshbak)
    #[arg(short = 'c', long = "compress")]
    compress: bool,
    /// Also show each node's osimage attributes
    #[arg(long = "osimage")]
    osimage: bool,
    /// Show the nodes' NIC attributes (-i nicips,nichostnamesuffixes,…)
    #[arg(long = "nics")]
    nics: bool,
    /// Object names or a noderange (same as -o)
    #[arg(allow_hyphen_values = true)]
    names: Option<String>,
}

/// `lsdef|mkdef|chdef|rmdef -t <types> -h [-i attrs]`: each type's attributes with their
/// descriptions, in xCAT's layout (DBobjectdefs.pm processArgs).
pub fn attribute_help(types: &str, only: Option<&str>) -> String {
    let wanted: Option<BTreeSet<String>> = only.map(|i| {
        i.split(',')
            .map(|a| {
                a.split_once('.')
                    .filter(|(n, _)| n.starts_with("nic"))
                    .map_or(a, |(n, _)| n)
            })
            .map(str::to_string)
            .collect()
    });
    let mut out = String::new();
    for t in types.split(',') {
        if t == "site" {
            if wanted.is_some() {
                out.push_str("Warning: It is not supported to list the description of some specific site attributes, displaying the description for all site attributes instead.\n");
            }
            out.push_str("\nThere can only be one xCAT site definition. This definition consists \nof an unlimited list of user-defined attributes and values that represent \nglobal settings for the whole cluster. The following is a list \nof the attributes currently supported by xCAT.\n");
            for (k, d) in super::tables::SITE_KEYS {
                out.push_str(&format!(" {k}:  {d}\n"));
            }
            continue;
        }
        let Some(def) = defspec::object(t) else {
            out.push_str(&format!(
                "Error: Type '{t}' is not a valid xCAT object type.\n"
            ));
            continue;
        };
        if wanted.is_none() {
            out.push_str(&format!(
                "The valid attribute names for object type '{t}' are:\n"
            ));
        }
        out.push_str("Attribute          Description\n\n");
        let mut lines: Vec<String> = Vec::new();
        let mut done = BTreeSet::new();
        for a in def.attrs {
            if wanted.as_ref().is_some_and(|w| !w.contains(a.attr)) || !done.insert(a.attr) {
                continue;
            }
            let desc = if a.description.is_empty() {
                table_spec(a.table)
                    .ok()
                    .and_then(|s| {
                        s.col_index(a.column)
                            .and_then(|i| s.descriptions.get(i).copied())
                    })
                    .unwrap_or("")
            } else {
                a.description
            };
            let space = if a.attr.len() < 7 { "\t\t" } else { "\t" };
            lines.push(format!("{}:{space}{desc}", a.attr));
        }
        lines.sort();
        out.push_str(&lines.join("\n\n"));
        out.push('\n');
    }
    out
}

/// What `lsdef --nics` shows (xCAT's list).
const NIC_ATTRS: &str = "nicips,nichostnamesuffixes,nichostnameprefixes,nictypes,niccustomscripts,nicnetworks,nicaliases,nicextraparams,nicdevices";

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
        tables.extend(["nodelist", "nodegroup", "site", "ppcdirect"]);
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
            self.add_ppc(name, &mut out)?;
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
        if self.objtype == "group" {
            self.add_ppc(name, &mut out)?;
        }
        out.remove(def.objkey);
        out.insert("objtype".into(), self.objtype.clone());
        Ok(out)
    }

    /// The object's `passwd.<user>` attributes from ppcdirect.
    fn add_ppc(&self, name: &str, out: &mut BTreeMap<String, String>) -> anyhow::Result<()> {
        let t = self.r.table("ppcdirect")?;
        for row in &t.rows {
            let get = |i: usize| row.get(i).and_then(|v| v.as_deref());
            if get(0) == Some(name) {
                if let (Some(user), Some(pw)) = (get(1), get(2)) {
                    if ppc_user(&format!("passwd.{user}")).is_some() && !pw.is_empty() {
                        out.insert(format!("passwd.{user}"), pw.to_string());
                    }
                }
            }
        }
        Ok(())
    }
}

/// lsdef --template: the templates, in lsdef's long form or as stanzas.
fn list_templates(db: &DbOpt, a: &LsdefArgs) -> anyhow::Result<ExitCode> {
    let all = super::templates::all();
    let types: Option<Vec<&str>> = a.objtype.as_deref().map(|t| t.split(',').collect());
    let mut chosen = Vec::new();
    match a.template.as_deref() {
        Some(names) if !names.is_empty() => {
            for n in names.split(',') {
                match all.iter().find(|t| t.name == n) {
                    Some(t) => chosen.push(t.clone()),
                    None => bail!("Could not find {n} in xCAT templates."),
                }
            }
        }
        _ => chosen = all,
    }
    chosen.retain(|t| {
        types
            .as_ref()
            .is_none_or(|ts| ts.contains(&t.objtype().unwrap_or("")))
    });
    let mut out = super::stdout();
    if a.stanza {
        writeln!(out, "{}", super::stanza::HEADER)?;
    }
    // `--template` alone lists the names (xCAT's defls: details only for named templates, -l,
    // -i or -z).
    let named = a.template.as_deref().is_some_and(|n| !n.is_empty());
    if !named && !a.long && !a.stanza && a.attrs.is_none() {
        for t in &chosen {
            writeln!(out, "{}  ({})", t.name, t.objtype().unwrap_or("node"))?;
        }
        super::finish(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Node templates show what a node made from them runs: the xcatdefaults scripts first, as
    // defls merges them (not in -z output).
    let defaults = match db.open_existing() {
        Ok(store) if !a.stanza => Some(xcat_defaults(&store)),
        _ => None,
    };
    for t in &chosen {
        let ty = t.objtype().unwrap_or("node");
        let mut attrs: BTreeMap<String, String> = t
            .attrs
            .iter()
            .filter(|(k, _)| k != "objtype")
            .cloned()
            .collect();
        if let (Some(d), "node") = (&defaults, ty) {
            with_defaults(&mut attrs, d);
        }
        if a.stanza {
            let mut text = String::new();
            super::stanza::write_object(&mut text, &t.name, ty, &attrs);
            out.write_all(text.as_bytes())?;
            continue;
        }
        writeln!(out, "Object name: {}", t.name)?;
        attrs.insert("objtype".into(), ty.into());
        for (k, v) in &attrs {
            writeln!(out, "    {k}={v}")?;
        }
    }
    super::finish(out)?;
    Ok(ExitCode::SUCCESS)
}

pub fn lsdef(db: &DbOpt, mut a: LsdefArgs) -> anyhow::Result<ExitCode> {
    if a.template.is_some() {
        return list_templates(db, &a);
    }
    let names_arg = a.objects.clone().or(a.names.clone());
    // xCAT's checks, in xCAT's order and words.
    if a.attrs.is_some() && a.osimage {
        bail!("The flags '-i' and '--osimage' cannot be used together.");
    }
    if a.stanza && a.osimage {
        bail!("The flags '-z' and '--osimage' cannot be used together.");
    }
    if a.all && a.objtype.is_some() {
        bail!("The flags '-a' and '-t' cannot be used together.");
    }
    if a.long && a.short {
        bail!("The flags '-l' and '-s' cannot be used together.");
    }
    if a.nics && a.attrs.is_some() {
        bail!("The flags '-i' and '--nics' cannot be used together.");
    }
    if a.nics {
        a.attrs = Some(NIC_ATTRS.into());
    }
    if a.attrs.is_some() && a.short {
        bail!("The flags '-i' and '-s' cannot be used together.");
    }
    if a.compress && a.attrs.is_none() {
        bail!("The flags '-c' and '-i' must be used together.");
    }
    let types: Vec<String> = if a.all {
        // Every type, in xCAT's (sorted) order.
        let mut t: Vec<String> = defspec::OBJECTS
            .iter()
            .map(|o| o.objtype.to_string())
            .collect();
        t.push("site".into());
        t.sort();
        t
    } else {
        a.objtype
            .as_deref()
            .unwrap_or("node")
            .split(',')
            .map(str::to_string)
            .collect()
    };
    let several = types.len() > 1;
    let mut found_any = false;
    let mut defaults_for_lsdef: Option<(Vec<String>, Vec<String>)> = None;
    let conds: Vec<AttrCond> = a
        .conds
        .iter()
        .map(|c| AttrCond::parse(c))
        .collect::<anyhow::Result<_>>()?;
    let only: Option<Vec<String>> = a
        .attrs
        .as_ref()
        .map(|s| s.split(',').map(str::to_string).collect());
    let store = db.open_existing()?;
    let r = Resolver::new(store);
    let mut out = super::stdout();
    let mut failed = false;
    let mut stanza_started = false;
    for t in &types {
        let reader = ObjReader::new(&r, t)?;
        let names: Vec<String> = match &names_arg {
            Some(n) if t == "node" => {
                let all: BTreeSet<String> = reader.names(true)?.into_iter().collect();
                let mut v = Vec::new();
                for name in node_names(&r, n)? {
                    if all.contains(&name) {
                        v.push(name);
                    } else {
                        out.flush()?;
                        crate::errln!(
                            "Error: Could not find an object named '{name}' of type '{t}'."
                        );
                        failed = true;
                    }
                }
                v
            }
            Some(n) => {
                let all: BTreeSet<String> = reader.names(true)?.into_iter().collect();
                // xCAT's getobjdefs reads monitoring, auditlog and eventlog objects
                // straight from their tables: when none of the names is there, lsdef says it
                // could not get any definitions (and nothing per name).
                if matches!(t.as_str(), "monitoring" | "auditlog" | "eventlog")
                    && n.split(',').all(|name| !all.contains(name))
                {
                    out.flush()?;
                    crate::errln!("Error: Could not get xCAT object definitions.");
                    failed = true;
                    continue;
                }
                let mut v = Vec::new();
                for name in n.split(',') {
                    if all.contains(name) {
                        v.push(name.to_string());
                    } else {
                        out.flush()?;
                        crate::errln!(
                            "Error: Could not find an object named '{name}' of type '{t}'."
                        );
                        failed = true;
                    }
                }
                v
            }
            None => reader.names(a.hidden)?,
        };
        let detailed = !a.short && (a.long || a.stanza || only.is_some() || names_arg.is_some());
        if names.is_empty() && names_arg.is_none() {
            // With several types, said once at the end if none had any.
            if !several {
                out.flush()?;
                crate::errln!("Could not find any object definitions to display.");
            }
            continue;
        }
        found_any = true;
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
            let mut attrs = attrs;
            // lsdef shows what a node runs: the xcatdefaults scripts first (not in -z output).
            if t == "node" && !a.stanza && (detailed || !conds.is_empty()) {
                let d = defaults_for_lsdef.get_or_insert_with(|| xcat_defaults(r.store()));
                with_defaults(&mut attrs, d);
            }
            if let Some(only) = &only {
                attrs.retain(|k, _| only.iter().any(|o| o == k));
                // "since they asked for this attr show it even if not set" (defls).
                for o in only {
                    let valid = t == "site"
                        || reader
                            .def
                            .is_some_and(|d| d.attrs.iter().any(|a| a.attr == o.as_str()));
                    if valid && !o.starts_with("nic") {
                        attrs.entry(o.clone()).or_default();
                    }
                }
            }
            let mut attrs = expand_nics(attrs, (t == "node").then_some(name.as_str()));
            mask_secrets(t, &mut attrs);
            if a.stanza {
                if !stanza_started {
                    writeln!(out, "{}", super::stanza::HEADER)?;
                    stanza_started = true;
                }
                let shown = attrs;
                let mut text = String::new();
                super::stanza::write_object(&mut text, name, t, &shown);
                out.write_all(text.as_bytes())?;
                continue;
            }
            if !detailed {
                if a.all {
                    writeln!(out, "{name} ({t})")?;
                } else {
                    writeln!(out, "{name}  ({t})")?;
                }
                continue;
            }
            if several {
                writeln!(out, "Object name: {name}  ({t})")?;
            } else if !a.compress {
                writeln!(out, "Object name: {name}")?;
            }
            for (k, v) in &attrs {
                if a.compress {
                    writeln!(out, "{name}: {k}={v}")?;
                } else {
                    writeln!(out, "    {k}={v}")?;
                }
            }
            if a.osimage && t == "node" {
                match node_osimage(&r, name, &attrs)? {
                    Ok(img) => {
                        for (k, v) in img.iter().filter(|(k, v)| !v.is_empty() && *k != "objtype") {
                            writeln!(out, "    {k}={v}")?;
                        }
                    }
                    Err(msg) => {
                        out.flush()?;
                        crate::errln!("Error: {msg}");
                        failed = true;
                    }
                }
            }
        }
    }
    super::finish(out)?;
    if several && !found_any && names_arg.is_none() {
        crate::errln!("Could not find any object definitions to display.");
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `lsdef --osimage`: the osimage a node's `provmethod` names, or (for install/netboot/statelite)
/// what xCAT derives from os, arch and profile. `Err` is xCAT's message for a node missing those.
fn node_osimage(
    r: &Resolver,
    name: &str,
    node: &BTreeMap<String, String>,
) -> anyhow::Result<Result<BTreeMap<String, String>, String>> {
    let get = |k: &str| node.get(k).map(String::as_str).unwrap_or("");
    let pm = get("provmethod");
    if !pm.is_empty() && !["install", "netboot", "statelite"].contains(&pm) {
        let reader = ObjReader::new(r, "osimage")?;
        if !reader.names(true)?.iter().any(|n| n == pm) {
            return Ok(Ok(BTreeMap::new()));
        }
        return Ok(Ok(reader.attrs(pm)?));
    }
    let (os, arch, profile) = (get("os"), get("arch"), get("profile"));
    if os.is_empty() || arch.is_empty() || pm.is_empty() || profile.is_empty() {
        return Ok(Err(format!("Missing attributes for node {name}, check the node attributes 'os', 'arch','profile' and 'provmethod'.")));
    }
    let installdir = r.site("installdir")?.unwrap_or_else(|| "/install".into());
    let mut m = BTreeMap::new();
    for (k, v) in [
        ("osvers", os.to_string()),
        ("osarch", arch.to_string()),
        ("imagetype", "linux".to_string()),
        ("osname", "Linux".to_string()),
        ("profile", profile.to_string()),
        ("provmethod", pm.to_string()),
        ("pkgdir", format!("{installdir}/{os}/{arch}")),
        (
            "otherpkgdir",
            format!("{installdir}/post/otherpkgs/{os}/{arch}"),
        ),
    ] {
        m.insert(k.to_string(), v);
    }
    if pm != "install" {
        m.insert(
            "rootimgdir".into(),
            format!("{installdir}/netboot/{os}/{arch}/{profile}"),
        );
    }
    // The profile's files, custom directory first, as copycds/genimage find them.
    if let Some(family) = crate::image::media::Family::of(os) {
        use crate::image::profiles;
        let idir = std::path::Path::new(&installdir);
        let show = |p: std::path::PathBuf| p.display().to_string();
        if pm == "install" {
            let dirs = profiles::install_dirs(idir, family);
            let key = profiles::install_os_key(family);
            let find = |ext: &str| {
                profiles::find(&dirs, profile, os, arch, ext)
                    .or_else(|| profiles::find(&dirs, profile, key, arch, ext))
            };
            if let Some(p) = find("tmpl") {
                m.insert("template".into(), show(p));
            }
            if let Some(p) = find("pkglist") {
                m.insert("pkglist".into(), show(p));
            }
            if let Some(p) = find("otherpkgs.pkglist") {
                m.insert("otherpkglist".into(), show(p));
            }
        } else {
            let dirs = profiles::netboot_dirs(idir, family);
            for (attr, ext) in [
                ("pkglist", "pkglist"),
                ("otherpkglist", "otherpkgs.pkglist"),
                ("postinstall", "postinstall"),
                // xCAT's lsdef --osimage spells it so (the osimage attribute is exlist).
                ("extlist", "exlist"),
            ] {
                if let Some(p) = profiles::find(&dirs, profile, os, arch, ext) {
                    m.insert(attr.into(), show(p));
                }
            }
        }
    }
    Ok(Ok(m))
}

/// A node's postscripts and postbootscripts as lsdef shows them: the `xcatdefaults` row's first.
fn with_defaults(attrs: &mut BTreeMap<String, String>, d: &(Vec<String>, Vec<String>)) {
    for (col, list) in [("postscripts", &d.0), ("postbootscripts", &d.1)] {
        if list.is_empty() {
            continue;
        }
        let joined = list.join(",");
        let v = match attrs.get(col) {
            Some(own) => format!("{joined},{own}"),
            None => joined,
        };
        attrs.insert(col.to_string(), v);
    }
}

/// The postscripts and postbootscripts of the `xcatdefaults` row (every node runs them first).
fn xcat_defaults(store: &crate::store::Store) -> (Vec<String>, Vec<String>) {
    let Ok(spec) = table_spec("postscripts") else {
        return (Vec::new(), Vec::new());
    };
    let row = store
        .get("postscripts", &["xcatdefaults"])
        .ok()
        .flatten()
        .filter(|r| !crate::store::is_disabled(spec, r));
    let list = |col: &str| -> Vec<String> {
        row.as_ref()
            .and_then(|r| {
                spec.col_index(col)
                    .and_then(|i| r.get(i).cloned().flatten())
            })
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    (list("postscripts"), list("postbootscripts"))
}

/// The per-NIC attributes (`nicips`, `nichostnamesuffixes`, …) shown one line per NIC, as
/// xCAT's expandnicsattr does: `nicips=eth0!10.0.0.1,ib0!11.0.0.1` becomes `nicips.eth0=10.0.0.1`
/// and `nicips.ib0=11.0.0.1`.
///
/// For a node (`node` given), a NIC's value that is itself a regex value
/// (`eth1!|\D+(\d+)|172.20.254.($1%100)|` from a group row) is resolved for the node, as
/// expandnicsattr's transRegexAttrs does; groups show it as written.
fn expand_nics(attrs: BTreeMap<String, String>, node: Option<&str>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in attrs {
        if !k.starts_with("nic") || !v.contains('!') {
            out.insert(k, v);
            continue;
        }
        for entry in v.split(',') {
            if let Some((nic, val)) = entry.split_once('!') {
                let val = match node {
                    Some(n) if crate::store::regexattr::RegexValue::is_regex_value(val) => {
                        match crate::store::regexattr::RegexValue::parse(val) {
                            Ok(Some(re)) => re.apply(n).ok().flatten().unwrap_or_default(),
                            _ => val.to_string(),
                        }
                    }
                    _ => val.to_string(),
                };
                if !nic.is_empty() && !val.is_empty() {
                    out.insert(format!("{k}.{nic}"), val);
                }
            }
        }
    }
    out
}

/// `nicips.eth0` → `nicips` (xCAT's `^(nic\w+)\.(.*)$`).
fn nic_base(attr: &str) -> Option<(&str, &str)> {
    let (base, nic) = attr.split_once('.')?;
    (base.starts_with("nic")
        && base.len() > 3
        && base.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !nic.is_empty())
    .then_some((base, nic))
}

/// Folds `nicips.eth1=…` pairs into one `nicips` value, keeping the object's other NICs (as
/// xCAT's defch/defmk merge the stored value before collapsenicsattr); an empty value drops
/// that NIC.
fn collapse_nics(attrs: &mut Vec<(String, String)>, current: &BTreeMap<String, String>) {
    let mut per: Vec<(String, Vec<(String, String)>)> = Vec::new();
    attrs.retain(|(k, v)| {
        let Some((base, nic)) = nic_base(k) else {
            return true;
        };
        let slot = match per.iter().position(|(b, _)| b == base) {
            Some(i) => i,
            None => {
                let old: Vec<(String, String)> = current
                    .get(base)
                    .map(|v| {
                        v.split(',')
                            .filter_map(|e| e.split_once('!'))
                            .map(|(n, x)| (n.to_string(), x.to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                per.push((base.to_string(), old));
                per.len() - 1
            }
        };
        let list = &mut per[slot].1;
        match list.iter_mut().find(|(n, _)| n == nic) {
            Some(e) => e.1 = v.clone(),
            None => list.push((nic.to_string(), v.clone())),
        }
        false
    });
    for (base, list) in per {
        let joined: Vec<String> = list
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(n, v)| format!("{n}!{v}"))
            .collect();
        attrs.retain(|(k, _)| *k != base);
        attrs.push((base, joined.join(",")));
    }
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
            "'{attr}' is not a valid attribute name for an object type of '{}'.",
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
    // xCAT's validate_only_if_attrs words it so.
    let key = cands
        .iter()
        .find_map(|a| a.only_if.map(|(k, _)| k))
        .unwrap_or("");
    let mut values: Vec<&str> = cands
        .iter()
        .filter_map(|a| a.only_if.map(|(_, v)| v))
        .collect();
    values.sort();
    values.dedup();
    bail!(
        "Cannot set the attr='{attr}' attribute unless {key} value is {}.",
        values.join(" or ")
    )
}

/// The `passwd.<user>` attributes of nodes and groups (FSP/BPA logins, only when mgt is fsp or
/// bpa), stored in `ppcdirect` under (hcp=<object>, username=<user>) as xCAT's Schema.pm maps them.
const PPC_USERS: &[&str] = &["HMC", "hscroot", "admin", "general", "celogin"];

fn ppc_user(attr: &str) -> Option<&str> {
    attr.strip_prefix("passwd.")
        .filter(|u| PPC_USERS.contains(u))
}

/// Checks a `passwd.<user>` attribute against the object's mgt (its own, or its groups').
fn check_ppc(attr: &str, known: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let mgt = known.get("mgt").map(String::as_str).unwrap_or("");
    if defspec::only_if_matches("fsp", mgt) || defspec::only_if_matches("bpa", mgt) {
        Ok(())
    } else {
        bail!("Cannot set the attr='{attr}' attribute unless mgt value is bpa or fsp.")
    }
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
        for mut key in rows {
            // A key column that changes (a network's net or mask, as chdef -t network allows):
            // the row moves to its new key, keeping its other values.
            let rekey: Vec<(&str, &str)> = sets
                .iter()
                .filter(|(a, v)| {
                    spec.keys.contains(&a.column)
                        && a.column != key_column
                        && spec
                            .keys
                            .iter()
                            .position(|c| *c == a.column)
                            .and_then(|i| key.get(i))
                            .is_some_and(|cur| cur != v)
                })
                .map(|(a, v)| (a.column, *v))
                .collect();
            if !rekey.is_empty() {
                let old: Vec<&str> = key.iter().map(String::as_str).collect();
                let Some(mut row) = tx.get(table, &old)? else {
                    continue;
                };
                for (c, v) in &rekey {
                    if v.is_empty() {
                        bail!("'{c}' is part of the {table} table's key and cannot be empty");
                    }
                    let i = crate::store::column_index(spec, c)?;
                    row[i] = Some((*v).to_string());
                }
                let new_key: Vec<String> = spec
                    .keys
                    .iter()
                    .map(|c| {
                        spec.col_index(c)
                            .and_then(|i| row.get(i).cloned().flatten())
                            .unwrap_or_default()
                    })
                    .collect();
                let nk: Vec<&str> = new_key.iter().map(String::as_str).collect();
                if tx.get(table, &nk)?.is_some() {
                    bail!(
                        "a {table} row with {} already exists",
                        spec.keys
                            .iter()
                            .zip(&nk)
                            .map(|(c, v)| format!("{c}={v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                tx.delete(table, &old)?;
                tx.put(table, row)?;
                key = new_key;
            }
            let k: Vec<&str> = key.iter().map(String::as_str).collect();
            let mut vals: Vec<(&str, Option<String>)> = Vec::new();
            for (a, v) in &sets {
                if spec.keys.contains(&a.column) {
                    if a.column == key_column {
                        bail!("'{}' is part of the {table} table's key and cannot be changed here; remove and re-create the {}", a.attr, def.objtype);
                    }
                    continue;
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
    if mode == Mode::Replace {
        // The list replaces the members: the group leaves every node not in it.
        for row in tx.rows("nodelist")? {
            let (Some(Some(n)), Some(Some(g))) = (row.first(), row.get(1)) else {
                continue;
            };
            if !members.contains(n) && g.split(',').any(|x| x == group) {
                let new = combine(Some(g), group, Mode::Minus);
                tx.set("nodelist", &[n], &[("groups", new.as_deref())])?;
            }
        }
    }
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

/// One object to create or change, as the command line or a stanza file names it.
#[derive(Debug, Clone)]
pub struct ObjReq {
    pub name: String,
    pub objtype: String,
    pub attrs: Vec<(String, String)>,
}

/// One line of what a definition command reports, for whoever presents it (the CLI prints
/// `Info` plainly, `Warn` as `Warning: …`, `Error` as `Error: …` on standard error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp {
    Info(String),
    Warn(String),
    Error(String),
}

/// Which command is defining objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// mkdef: existing objects are left alone unless forced.
    Make { force: bool },
    /// chdef: existing objects change, missing ones are created.
    Change(Mode),
}

/// Options shared by mkdef and chdef.
struct DefOpts {
    how: How,
    /// -d: dynamic groups, with the -w conditions.
    dynamic: bool,
    conds: Vec<String>,
    /// -u: fill an osimage's attributes from provmethod, profile, osvers and osarch.
    setattr: bool,
}

/// The OS this machine runs, as xCAT names it (`rhels9.4`, `ubuntu22.04`, `sles15.5`, …), for
/// `mkdef -u` without osvers (xCAT's `Utils->osver("all")`).
fn host_osvers() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
    };
    let id = get("ID")?;
    let ver = get("VERSION_ID").unwrap_or_default();
    let name = match id.as_str() {
        "rhel" => "rhels".to_string(),
        "sles" | "opensuse-leap" => "sles".to_string(),
        other => other.to_string(),
    };
    Some(format!("{name}{ver}"))
}

/// `mkdef/chdef -t osimage -u`: xCAT's parse_attr_for_osimage: checks provmethod and profile,
/// defaults osvers (this machine's OS) and osarch (this machine's), sets imagetype, osname and
/// osdistroname, and fills the profile's files (template, pkglist, otherpkglist, exlist,
/// postinstall; custom directory first) and directories (pkgdir, otherpkgdir, rootimgdir) that the
/// command line did not give.
fn fill_osimage(
    attrs: &mut Vec<(String, String)>,
    existing: &BTreeMap<String, String>,
    installdir: &str,
    chdef: bool,
) -> Result<(), String> {
    let get = |attrs: &Vec<(String, String)>, k: &str| {
        attrs
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.clone())
            .or_else(|| existing.get(k).cloned())
    };
    let set = |attrs: &mut Vec<(String, String)>, k: &str, v: String| {
        attrs.retain(|(a, _)| a != k);
        attrs.push((k.to_string(), v));
    };
    let (Some(_profile), Some(prov)) = (get(attrs, "profile"), get(attrs, "provmethod")) else {
        return Err("The profile and provmethod are all need to be specified.".into());
    };
    if !["install", "netboot", "statelite"]
        .iter()
        .any(|m| prov.contains(m))
    {
        return Err(format!("The provmethod: {prov} is incorrect."));
    }
    let osvers = match get(attrs, "osvers") {
        Some(v) => v,
        None => host_osvers().ok_or("cannot tell this machine's OS; give osvers=")?,
    };
    let mut arch = get(attrs, "osarch").unwrap_or_else(|| {
        let a = std::env::consts::ARCH;
        if a == "x86" {
            "x86".into()
        } else {
            a.to_string()
        }
    });
    if osvers.to_ascii_lowercase().starts_with("ubuntu")
        && arch.to_ascii_lowercase().starts_with("ppc64le")
    {
        arch = "ppc64el".into();
    }
    let (ostype, imagetype) = if osvers.starts_with("win")
        || osvers.starts_with("imagex")
        || osvers.starts_with("hyperv")
    {
        ("Windows", "windows")
    } else {
        ("Linux", "linux")
    };
    match get(attrs, "imagetype") {
        Some(t) if !t.to_ascii_lowercase().starts_with(imagetype) => {
            return Err(format!("The input imagetype:{t} not match {imagetype}."))
        }
        _ => set(attrs, "imagetype", imagetype.into()),
    }
    match get(attrs, "osname") {
        Some(t)
            if !t
                .to_ascii_lowercase()
                .starts_with(&ostype.to_ascii_lowercase()) =>
        {
            return Err(format!("The input osname:{t} not match {ostype}."))
        }
        _ => set(attrs, "osname", ostype.into()),
    }
    set(attrs, "osvers", osvers.clone());
    set(attrs, "osarch", arch.clone());
    set(attrs, "osdistroname", format!("{osvers}-{arch}"));
    if imagetype == "windows" {
        return Ok(());
    }
    // What the command line gave is kept; the rest is looked up (xCAT: `exists $attr_hash->{…}`).
    let given: BTreeSet<String> = attrs.iter().map(|(a, _)| a.clone()).collect();
    let profile = _profile;
    let family = crate::image::media::Family::of(&osvers);
    let idir = std::path::Path::new(installdir);
    let show = |p: std::path::PathBuf| p.display().to_string();
    let fill = |attrs: &mut Vec<(String, String)>, k: &str, v: Option<String>| {
        if !given.contains(k) {
            if let Some(v) = v {
                set(attrs, k, v);
            }
        }
    };
    use crate::image::profiles;
    if prov == "install" {
        set(attrs, "exlist", String::new());
        set(attrs, "postinstall", String::new());
        set(attrs, "rootimgdir", String::new());
        if let Some(f) = family {
            let dirs = profiles::install_dirs(idir, f);
            let key = profiles::install_os_key(f);
            let find = |ext: &str| {
                profiles::find(&dirs, &profile, &osvers, &arch, ext)
                    .or_else(|| profiles::find(&dirs, &profile, key, &arch, ext))
                    .map(show)
            };
            // chdef -u looks the template up again even when one was given (xCAT does).
            match find("tmpl") {
                Some(t) if chdef => set(attrs, "template", t),
                t => fill(attrs, "template", t),
            }
            fill(attrs, "pkglist", find("pkglist"));
            fill(attrs, "otherpkglist", find("otherpkgs.pkglist"));
        }
    } else {
        set(attrs, "template", String::new());
        if let Some(f) = family {
            let dirs = profiles::netboot_dirs(idir, f);
            let find = |ext: &str| profiles::find(&dirs, &profile, &osvers, &arch, ext).map(show);
            fill(attrs, "exlist", find("exlist"));
            fill(attrs, "postinstall", find("postinstall"));
            fill(attrs, "pkglist", find("pkglist"));
            fill(attrs, "otherpkglist", find("otherpkgs.pkglist"));
        }
        fill(
            attrs,
            "rootimgdir",
            Some(format!("{installdir}/netboot/{osvers}/{arch}/{profile}")),
        );
    }
    fill(
        attrs,
        "otherpkgdir",
        Some(format!("{installdir}/post/otherpkgs/{osvers}/{arch}")),
    );
    fill(
        attrs,
        "pkgdir",
        Some(format!("{installdir}/{osvers}/{arch}")),
    );
    Ok(())
}

/// The outcome of [`define`]: what to report, how many objects were created or modified,
/// which of them are new, and whether anything failed.
struct Defined {
    resps: Vec<Resp>,
    changed: usize,
    new: Vec<String>,
    failed: bool,
}

/// An object that passed validation, with what it will be written as.
struct Planned {
    req: ObjReq,
    def: Option<&'static ObjDef>,
    exists: bool,
    known: BTreeMap<String, String>,
    /// mkdef -f over an existing object: its rows go first.
    replace: bool,
    members: Option<Vec<String>>,
    wherevals: Option<String>,
}

/// Creates or changes objects the way xCAT's defmk/defch do: every object is checked on its own
/// (an object that fails is reported and skipped), the rest are written in one transaction.
fn define(
    store: &std::sync::Arc<crate::store::Store>,
    reqs: Vec<ObjReq>,
    o: &DefOpts,
    audit: &Audit,
) -> anyhow::Result<Defined> {
    let r = Resolver::new(store.clone());
    let mut resps = Vec::new();
    let mut failed = false;
    let mut readers: BTreeMap<String, ObjReader<'_>> = BTreeMap::new();
    let mut existing: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut planned: Vec<Planned> = Vec::new();
    let mut group_reader: Option<ObjReader<'_>> = None;
    let mut xcatdefaults: Option<(Vec<String>, Vec<String>)> = None;
    let mut group_attrs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    // Nodes defined in the same request count as existing for group member lists.
    let mut all_nodes: BTreeSet<String> = r.membership()?.nodes.iter().cloned().collect();
    all_nodes.extend(
        reqs.iter()
            .filter(|q| q.objtype == "node")
            .map(|q| q.name.clone()),
    );
    'obj: for mut req in reqs {
        if req.objtype == "site" {
            planned.push(Planned {
                req,
                def: None,
                exists: true,
                known: BTreeMap::new(),
                replace: false,
                members: None,
                wherevals: None,
            });
            continue;
        }
        let Some(def) = defspec::object(&req.objtype) else {
            resps.push(Resp::Error(format!(
                "Type '{}' is not a valid xCAT object type.",
                req.objtype
            )));
            failed = true;
            continue;
        };
        if !readers.contains_key(&req.objtype) {
            let rd = ObjReader::new(&r, &req.objtype)?;
            existing.insert(req.objtype.clone(), rd.names(true)?.into_iter().collect());
            readers.insert(req.objtype.clone(), rd);
        }
        let (Some(reader), Some(names)) = (readers.get(&req.objtype), existing.get(&req.objtype))
        else {
            continue;
        };
        let name = req.name.clone();
        if req.objtype == "node" && name.contains('.') {
            resps.push(Resp::Error(format!(
                "The object name '{name}' is invalid, Cannot use '.' in node name."
            )));
            failed = true;
            continue;
        }
        if req.objtype == "node" && check_node_name(&name).is_err() {
            resps.push(Resp::Error(format!("The object name '{name}' is invalid, please refer to \"man xcatdb\" for the valid \"xCAT Object Name Format\"")));
            failed = true;
            continue;
        }
        // Unknown attributes are reported and skipped, as xCAT does.
        let special = |k: &str| {
            k == "objtype"
                || k == def.objkey
                || (req.objtype == "group" && matches!(k, "members" | "grouptype" | "wherevals"))
        };
        let mut kept = Vec::new();
        for (k, v) in std::mem::take(&mut req.attrs) {
            let base = nic_base(&k).map(|(b, _)| b).unwrap_or(&k);
            let ppc = ppc_user(&k).is_some() && matches!(def.objtype, "node" | "group");
            if ppc || special(&k) || def.attrs.iter().any(|a| a.attr == base) {
                kept.push((k, v));
            } else {
                resps.push(Resp::Error(format!(
                    "'{base}' is not a valid attribute name for an object type of '{}'.",
                    req.objtype
                )));
                failed = true;
            }
        }
        req.attrs = kept;
        let exists = names.contains(&name);
        if req.attrs.iter().any(|(k, _)| nic_base(k).is_some()) {
            let current = if exists {
                reader.attrs(&name)?
            } else {
                BTreeMap::new()
            };
            collapse_nics(&mut req.attrs, &current);
        }
        // Scripts the xcatdefaults row already runs are dropped with xCAT's warning (setobjdefs).
        if name != "xcatdefaults" {
            for (k, v) in req.attrs.iter_mut() {
                if k != "postscripts" && k != "postbootscripts" {
                    continue;
                }
                let defaults = xcatdefaults.get_or_insert_with(|| xcat_defaults(store));
                let have = if k == "postscripts" {
                    &defaults.0
                } else {
                    &defaults.1
                };
                let mut kept = Vec::new();
                for item in v.split(',').filter(|i| !i.is_empty()) {
                    if have.iter().any(|h| h == item) {
                        resps.push(Resp::Warn(format!(
                            "{name}: {k} '{item}' is already included in the 'xcatdefaults'."
                        )));
                    } else {
                        kept.push(item.to_string());
                    }
                }
                *v = kept.join(",");
            }
        }
        if o.setattr && req.objtype == "osimage" {
            let current = if exists {
                reader.attrs(&name)?
            } else {
                BTreeMap::new()
            };
            let installdir = r.site("installdir")?.unwrap_or_else(|| "/install".into());
            let chdef = matches!(o.how, How::Change(_));
            if let Err(e) = fill_osimage(&mut req.attrs, &current, &installdir, chdef) {
                resps.push(Resp::Error(e));
                failed = true;
                continue;
            }
        }
        let get = |k: &str| {
            req.attrs
                .iter()
                .find(|(a, _)| a == k)
                .map(|(_, v)| v.as_str())
        };
        match o.how {
            How::Make { force } => {
                if req.objtype == "network" && exists {
                    resps.push(Resp::Error(format!("A network definition called '{name}' already exists. Cannot create a definition for '{name}'.")));
                    failed = true;
                    continue;
                }
                if exists && !force {
                    resps.push(Resp::Warn(format!("A definition for '{name}' already exists. No changes will be made.  Run again with '-f' option to force replace.")));
                    continue;
                }
            }
            How::Change(Mode::Minus) if !exists => {
                resps.push(Resp::Error(format!(
                    "The '-m' option is not valid since the '{name}' definition does not exist."
                )));
                failed = true;
                continue;
            }
            How::Change(_) => {}
        }
        let creating = !exists || matches!(o.how, How::Make { force: true });
        if req.objtype == "network" {
            let (net, mask) = (get("net"), get("mask"));
            if creating
                && !(net.is_some_and(|v| !v.is_empty()) && mask.is_some_and(|v| !v.is_empty()))
            {
                resps.push(Resp::Error(format!(
                    "Net or mask value should not be empty for xCAT network object '{name}'."
                )));
                failed = true;
                continue;
            }
            if creating {
                for other in names {
                    if *other == name {
                        continue;
                    }
                    let a = reader.attrs(other)?;
                    if a.get("net").map(String::as_str) == net
                        && a.get("mask").map(String::as_str) == mask
                    {
                        resps.push(Resp::Error(format!("A network definition called '{other}' already exists that contains the same net and mask values. Cannot create a definition for '{name}'.")));
                        failed = true;
                        continue 'obj;
                    }
                }
            }
        }
        if req.objtype == "node" && creating && get("groups").is_none_or(str::is_empty) {
            resps.push(Resp::Error(format!(
                "Attribute 'groups' is not specified for node '{name}', skipping to the next node."
            )));
            failed = true;
            continue;
        }
        // Groups: static members, or the conditions of a dynamic group.
        let mut members = None;
        let mut wherevals = None;
        if req.objtype == "group" {
            let dynamic = o.dynamic
                || get("grouptype") == Some("dynamic")
                || (exists
                    && reader.attrs(&name)?.get("grouptype").map(String::as_str)
                        == Some("dynamic"));
            let own: Vec<&(String, String)> =
                req.attrs.iter().filter(|(k, _)| !special(k)).collect();
            if dynamic && !own.is_empty() {
                resps.push(Resp::Error(format!(
                    "Can not assign attributes to dynamic node group '{name}'."
                )));
                failed = true;
                continue;
            }
            if !o.conds.is_empty() && get("members").is_some() {
                resps.push(Resp::Error(
                    "Cannot use a list of members together with the '-w' option.".into(),
                ));
                failed = true;
                continue;
            }
            let mut conds: Vec<String> = o.conds.clone();
            if let Some(w) = get("wherevals") {
                conds.extend(w.split("::").map(str::to_string));
            }
            for c in &conds {
                if crate::store::resolver::Condition::parse(c).is_err() {
                    resps.push(Resp::Error("Incorrect selection string".into()));
                    failed = true;
                    continue 'obj;
                }
            }
            if dynamic {
                if creating && conds.is_empty() {
                    resps.push(Resp::Error(format!("The 'where' attributes and values were not provided for dynamic group '{name}'.")));
                    failed = true;
                    continue;
                }
                if !conds.is_empty() {
                    let old = if exists {
                        reader.attrs(&name)?.get("wherevals").cloned()
                    } else {
                        None
                    };
                    let mode = match o.how {
                        How::Change(m) => m,
                        How::Make { .. } => Mode::Replace,
                    };
                    let mut items: Vec<String> = match mode {
                        Mode::Replace => Vec::new(),
                        _ => old
                            .unwrap_or_default()
                            .split("::")
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect(),
                    };
                    for c in conds {
                        if mode == Mode::Minus {
                            items.retain(|i| *i != c);
                        } else if !items.contains(&c) {
                            items.push(c);
                        }
                    }
                    wherevals = Some(items.join("::"));
                }
            } else if let Some(m) = get("members") {
                let mut list = Vec::new();
                let exp = r.noderange(m, false)?;
                for n in exp.nodes {
                    if all_nodes.contains(&n) {
                        list.push(n);
                    } else {
                        resps.push(Resp::Error(format!(
                            "Could not find a node named '{n}', skipping to the next node."
                        )));
                    }
                }
                members = Some(list);
            } else if !conds.is_empty() {
                // A static group chosen once by -w: the nodes matching now become members.
                let parsed: Vec<_> = conds
                    .iter()
                    .filter_map(|c| crate::store::resolver::Condition::parse(c).ok())
                    .collect();
                let all: Vec<String> = all_nodes.iter().cloned().collect();
                members = Some(r.filter(&all, &parsed)?);
            }
            if dynamic && wherevals.is_none() && !exists {
                continue;
            }
            if dynamic {
                req.attrs.retain(|(k, _)| k != "grouptype");
                req.attrs.push(("grouptype".into(), "dynamic".into()));
            }
        }
        let mut known = if exists && !creating {
            reader.attrs(&name)?
        } else {
            BTreeMap::new()
        };
        known.extend(req.attrs.iter().cloned());
        // A new node's groups supply what only_if rules look at (a bmc is accepted when mgt
        // comes from a group), as xCAT's validate_only_if_attrs consults group attributes.
        // (An existing node's own attributes already include what its groups give it.)
        if req.objtype == "node" && creating {
            if let Some(groups) = known.get("groups").cloned() {
                let gr = group_reader.get_or_insert(ObjReader::new(&r, "group")?);
                for g in groups.split(',').filter(|g| !g.is_empty()) {
                    if !group_attrs.contains_key(g) {
                        group_attrs.insert(g.to_string(), gr.attrs(g)?);
                    }
                    for (k, v) in group_attrs.get(g).into_iter().flatten() {
                        if k != "objtype" && k != "members" && k != "grouptype" {
                            known.entry(k.clone()).or_insert(v.clone());
                        }
                    }
                }
            }
        }
        for (k, _) in &req.attrs {
            if special(k) {
                continue;
            }
            if ppc_user(k).is_some() {
                if let Err(e) = check_ppc(k, &known) {
                    resps.push(Resp::Error(e.to_string()));
                    failed = true;
                    continue 'obj;
                }
                continue;
            }
            if let Err(e) = pick_def(def, k, &known) {
                resps.push(Resp::Error(e.to_string()));
                failed = true;
                continue 'obj;
            }
        }
        planned.push(Planned {
            req,
            def: Some(def),
            exists,
            known,
            replace: exists && o.how == (How::Make { force: true }),
            members,
            wherevals,
        });
    }
    let mode = match o.how {
        How::Change(m) => m,
        How::Make { .. } => Mode::Replace,
    };
    // Groups last, so that their member lists find the nodes written with them.
    planned.sort_by_key(|p| p.req.objtype == "group");
    let mut changed = 0;
    let mut new = Vec::new();
    for p in &planned {
        let touches = !p.req.attrs.iter().all(|(k, _)| k == "objtype")
            || p.members.is_some()
            || p.wherevals.is_some();
        if touches {
            changed += 1;
            if !p.exists {
                new.push(p.req.name.clone());
            }
        }
    }
    store.write(Some(audit), |tx| {
        let res = (|| -> anyhow::Result<()> {
            for p in &planned {
                let Some(def) = p.def else {
                    let pairs: Vec<(String, String)> = p
                        .req
                        .attrs
                        .iter()
                        .filter(|(k, _)| k != "objtype")
                        .cloned()
                        .collect();
                    write_site(tx, &pairs, mode)?;
                    continue;
                };
                let o = &p.req.name;
                if p.replace {
                    remove_object(tx, def, o)?;
                }
                let pairs: Vec<(String, String)> = p
                    .req
                    .attrs
                    .iter()
                    .filter(|(k, _)| {
                        !(def.objtype == "group"
                            && matches!(k.as_str(), "members" | "wherevals" | "grouptype"))
                            && ppc_user(k).is_none()
                    })
                    .cloned()
                    .collect();
                for (k, v) in &p.req.attrs {
                    if let Some(user) = ppc_user(k) {
                        let old = tx
                            .get("ppcdirect", &[o, user])?
                            .and_then(|r| r.get(2).cloned().flatten());
                        let new = if v.is_empty() && mode == Mode::Replace {
                            None
                        } else {
                            combine(old.as_deref(), v, mode)
                        };
                        match new {
                            Some(pw) => {
                                tx.set("ppcdirect", &[o, user], &[("password", Some(&pw))])?
                            }
                            None => {
                                tx.delete("ppcdirect", &[o, user])?;
                            }
                        }
                    }
                }
                if def.objtype == "group" {
                    let dynamic = p
                        .req
                        .attrs
                        .iter()
                        .any(|(k, v)| k == "grouptype" && v == "dynamic");
                    let typed = p.req.attrs.iter().any(|(k, _)| k == "grouptype");
                    if !p.exists || dynamic || typed || p.wherevals.is_some() {
                        let ty = if dynamic { "dynamic" } else { "static" };
                        let mut vals: Vec<(&str, Option<&str>)> = vec![("grouptype", Some(ty))];
                        if let Some(w) = &p.wherevals {
                            vals.push(("wherevals", Some(w.as_str())));
                        }
                        tx.set("nodegroup", &[o], &vals)?;
                    }
                    if let Some(m) = &p.members {
                        set_members(tx, o, m, mode)?;
                    }
                }
                write_attrs(tx, def, o, &pairs, &p.known, mode)?;
            }
            Ok(())
        })();
        res.map_err(|e| StoreError::Invalid(super::chain(&e)))
    })?;
    Ok(Defined {
        resps,
        changed,
        new,
        failed,
    })
}

/// Prints responses as xCAT's client does.
fn emit(resps: &[Resp]) {
    for r in resps {
        match r {
            Resp::Info(s) => crate::outln!("{s}"),
            Resp::Warn(s) => crate::errln!("Warning: {s}"),
            Resp::Error(s) => crate::errln!("Error: {s}"),
        }
    }
}

/// Secrets (attributes stored in a secret column) as the current request may see them.
fn mask_secrets(objtype: &str, attrs: &mut BTreeMap<String, String>) {
    let Some(def) = crate::store::defspec::object(objtype) else {
        return;
    };
    for (k, v) in attrs.iter_mut() {
        if v.is_empty() {
            continue;
        }
        if def
            .attrs_named(k)
            .any(|d| super::request::masked(d.table, d.column))
        {
            *v = super::request::MASK.to_string();
        }
    }
}

/// Reads stanza text from standard input into object requests.
fn stanza_reqs(cmd: &str) -> anyhow::Result<Vec<ObjReq>> {
    use std::io::Read;
    let mut text = String::new();
    super::request::stdin()
        .read_to_string(&mut text)
        .map_err(|e| anyhow!("cannot read the stanza file from standard input: {e}"))?;
    let stanzas = super::stanza::parse(&text).map_err(|e| {
        anyhow!(
            "Could not process file input data: line {}: '{}' ({cmd} -z reads xCAT stanza files)",
            e.line,
            e.text
        )
    })?;
    let mut out = Vec::new();
    for s in stanzas {
        let Some(t) = s.objtype().map(str::to_string) else {
            bail!(
                "No objtype value was specified for '{}'. Cannot create object definition.",
                s.name
            );
        };
        out.push(ObjReq {
            name: s.name,
            objtype: t,
            attrs: s.attrs,
        });
    }
    Ok(out)
}

#[derive(Debug, Args)]
pub struct MkdefArgs {
    /// Object type: node (default), group, osimage, network, site, …
    #[arg(short = 't', value_name = "TYPE")]
    objtype: Option<String>,
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
    /// Read the definitions from a stanza file on standard input (as lsdef -z writes it)
    #[arg(short = 'z', long = "stanza")]
    stanza: bool,
    /// Verbose (accepted for xCAT compatibility)
    #[arg(short = 'V', long = "verbose")]
    verbose: bool,
    /// osimage: fill imagetype, osname, osarch, osvers, osdistroname from provmethod and profile
    #[arg(short = 'u')]
    setattr: bool,
    /// Not for mkdef (xCAT refuses it with its own message)
    #[arg(short = 'p', long = "plus", hide = true)]
    plus: bool,
    /// Not for mkdef (xCAT refuses it with its own message)
    #[arg(short = 'm', long = "minus", hide = true)]
    minus: bool,
    /// Create the objects from this template (lsdef --template lists them) or existing object
    #[arg(long = "template", value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    template: Option<String>,
    /// Object names (or noderange), then attr=value pairs
    #[arg()]
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

/// A noderange as the *def commands expand it (names need not exist); an empty expansion is
/// xCAT's processArgs error.
fn node_names(r: &Resolver, range: &str) -> anyhow::Result<Vec<String>> {
    let v = r.noderange(range, false)?.nodes;
    if v.is_empty() {
        bail!("No node in '{range}', check the noderange syntax.");
    }
    Ok(v)
}

/// The object names a command line names: a noderange for nodes, a comma list otherwise.
fn cli_names(r: &Resolver, objtype: &str, names: &str) -> anyhow::Result<Vec<String>> {
    if objtype == "node" {
        node_names(r, names)
    } else if objtype == "site" {
        Ok(vec![SITE_OBJECT.to_string()])
    } else {
        Ok(names
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect())
    }
}

pub fn mkdef(db: &DbOpt, a: MkdefArgs) -> anyhow::Result<ExitCode> {
    if a.plus || a.minus {
        bail!("The '-p' and '-m' options are not valid for the mkdef command.");
    }
    let (names, rest) = split_names(a.objects.clone(), &a.args);
    if a.stanza && (a.objtype.is_some()) {
        bail!("Cannot combine '-t' and '-a', '-z', or '-x' options.");
    }
    if a.stanza && names.is_some() {
        bail!("Cannot use '-z' with '-o' or a noderange.");
    }
    let objtype = a
        .objtype
        .clone()
        .unwrap_or_else(|| if a.setattr { "osimage" } else { "node" }.into());
    if a.setattr && objtype != "osimage" {
        bail!("Option '-u' only work for objtype 'osimage'.");
    }
    let store = db.open()?;
    let r = Resolver::new(store.clone());
    let reqs = if a.stanza {
        stanza_reqs("mkdef")?
    } else {
        let pairs = parse_pairs(&rest)?;
        if objtype != "site" && defspec::object(&objtype).is_none() {
            bail!("Type '{objtype}' is not a valid xCAT object type.");
        }
        let Some(names) = names
            .clone()
            .or_else(|| (objtype == "site").then(|| SITE_OBJECT.into()))
        else {
            bail!("No object names were provided.");
        };
        if a.dynamic && objtype != "group" {
            bail!("-d (dynamic) applies only to -t group");
        }
        let pairs = match a.template.as_deref() {
            None => pairs,
            Some("") => bail!("no object definition template specified for mkdef --template!"),
            Some(t) if t.contains(',') => {
                bail!("Only 1 template object definition should be specified for mkdef!")
            }
            Some(t) => from_template(&r, &objtype, t, &names, pairs)?,
        };
        // An empty static group is a definition of its own (xCAT keeps it in nodegroup).
        let pairs = if pairs.is_empty() && objtype == "group" && !a.dynamic {
            vec![("grouptype".to_string(), "static".to_string())]
        } else {
            pairs
        };
        if pairs.is_empty() && !(objtype == "group" && a.dynamic) {
            if objtype == "node" {
                bail!("No object definitions have been created or modified: no attributes were specified. The 'groups' attribute is required when creating node definitions.");
            }
            bail!("No object definitions have been created or modified: no attributes were specified.");
        }
        cli_names(&r, &objtype, &names)?
            .into_iter()
            .map(|n| ObjReq {
                name: n,
                objtype: objtype.clone(),
                attrs: pairs.clone(),
            })
            .collect()
    };
    let audit = Audit {
        command: "mkdef".into(),
        noderange: names.clone().unwrap_or_default(),
        args: format!("-t {} {}", objtype, super::audit_args(&rest)),
    };
    let opts = DefOpts {
        how: How::Make { force: a.force },
        dynamic: a.dynamic,
        conds: a.conds.clone(),
        setattr: a.setattr,
    };
    let d = define(&store, reqs, &opts, &audit)?;
    emit(&d.resps);
    if d.failed {
        crate::errln!("Error: One or more errors occured when attempting to create or modify xCAT object definitions.");
        return Ok(ExitCode::from(1));
    }
    let line = format!(
        "{} object definitions have been created or modified.",
        d.changed
    );
    if d.changed > 0 {
        crate::outln!("{line}");
        Ok(ExitCode::SUCCESS)
    } else {
        crate::errln!("Error: {line}");
        Ok(ExitCode::from(1))
    }
}

/// mkdef --template: the attributes of a shipped template (MANDATORY ones must be given,
/// OPTIONAL ones are dropped), or of an existing object of the type, under the command line's.
fn from_template(
    r: &Resolver,
    objtype: &str,
    template: &str,
    names: &str,
    pairs: Vec<(String, String)>,
) -> anyhow::Result<Vec<(String, String)>> {
    if let Some(t) = super::templates::find(template) {
        if t.objtype() != Some(objtype) {
            bail!("Could not find the template object named '{template}' of type '{objtype}'.");
        }
        return super::templates::fill(&t, &pairs).map_err(|e| anyhow!(e));
    }
    let reader = ObjReader::new(r, objtype)?;
    if !reader.names(true)?.iter().any(|n| n == template) {
        bail!("Could not find the template object named '{template}' of type '{objtype}'.");
    }
    if names.split(',').any(|n| n == template) {
        bail!("The template node cannot be the same as the node to create.");
    }
    let mut out = pairs;
    for (k, v) in reader.attrs(template)? {
        if k != "objtype" && !out.iter().any(|(g, gv)| *g == k && !gv.is_empty()) {
            out.push((k, v));
        }
    }
    Ok(out)
}

/// Sets site keys inside a transaction (`chdef -t site key=value`).
fn write_site(tx: &mut Txn<'_>, pairs: &[(String, String)], mode: Mode) -> anyhow::Result<()> {
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
}

#[derive(Debug, Args)]
pub struct ChdefArgs {
    /// Object type: node (default), group, osimage, network, site, …
    #[arg(short = 't', value_name = "TYPE")]
    objtype: Option<String>,
    /// Object names (for nodes, a noderange)
    #[arg(short = 'o', value_name = "NAMES")]
    objects: Option<String>,
    /// Add the values to comma-separated list attributes
    #[arg(short = 'p', long = "plus", conflicts_with = "minus")]
    plus: bool,
    /// Remove the values from comma-separated list attributes
    #[arg(short = 'm', long = "minus")]
    minus: bool,
    /// Rename the object
    #[arg(short = 'n', value_name = "NEWNAME")]
    newname: Option<String>,
    /// osimage: fill imagetype, osname, osarch, osvers, osdistroname from provmethod and profile
    #[arg(short = 'u')]
    setattr: bool,
    /// Not for chdef (xCAT refuses it with its own message)
    #[arg(short = 'f', long = "force", hide = true)]
    force: bool,
    /// With -t group: make or change a dynamic group from the -w conditions
    #[arg(short = 'd', long = "dynamic")]
    dynamic: bool,
    /// A condition attr==value, attr!=value, attr=~regex, attr!~regex (repeatable)
    #[arg(short = 'w', value_name = "COND")]
    conds: Vec<String>,
    /// Read the definitions from a stanza file on standard input (as lsdef -z writes it)
    #[arg(short = 'z', long = "stanza")]
    stanza: bool,
    /// Verbose (accepted for xCAT compatibility)
    #[arg(short = 'V', long = "verbose")]
    verbose: bool,
    /// Object names (or noderange), then attr=value pairs
    #[arg()]
    args: Vec<String>,
}

pub fn chdef(db: &DbOpt, a: ChdefArgs) -> anyhow::Result<ExitCode> {
    if a.force {
        bail!("The '-f' option is not valid for the chdef command.");
    }
    let (names, rest) = split_names(a.objects.clone(), &a.args);
    let mode = if a.plus {
        Mode::Plus
    } else if a.minus {
        Mode::Minus
    } else {
        Mode::Replace
    };
    let objtype = a
        .objtype
        .clone()
        .unwrap_or_else(|| if a.setattr { "osimage" } else { "node" }.into());
    if a.setattr && objtype != "osimage" {
        bail!("Option '-u' only work for objtype 'osimage'.");
    }
    if a.setattr && (a.plus || a.minus) {
        bail!("Cannot use '-u' with '-p' or '-m'.");
    }
    let store = db.open()?;
    if let Some(new) = &a.newname {
        if a.dynamic || a.plus || a.minus || a.stanza || !a.conds.is_empty() {
            bail!("Cannot combine '-n' and '-d','-p','-m','-z','-w' options.");
        }
        let names = names.ok_or_else(|| anyhow!("No object names were provided."))?;
        return rename(&store, &objtype, &names, new);
    }
    if a.stanza && a.objtype.is_some() {
        bail!("Cannot combine '-t' and '-a', '-z', or '-x' options.");
    }
    if a.stanza && names.is_some() {
        bail!("Cannot use '-z' with '-o' or a noderange.");
    }
    let r = Resolver::new(store.clone());
    let reqs = if a.stanza {
        stanza_reqs("chdef")?
    } else {
        let pairs = parse_pairs(&rest)?;
        if objtype != "site" && defspec::object(&objtype).is_none() {
            bail!("Type '{objtype}' is not a valid xCAT object type.");
        }
        let names = match names.clone() {
            None if objtype == "site" => SITE_OBJECT.to_string(),
            Some(n) if objtype == "site" && n == SITE_OBJECT => n,
            Some(n) if objtype == "site" => {
                bail!("the site object is named '{SITE_OBJECT}', not '{n}'")
            }
            Some(n) => n,
            None => bail!("No object names were provided."),
        };
        if pairs.is_empty() && a.conds.is_empty() {
            crate::outln!("No object definitions have been created or modified.");
            return Ok(ExitCode::SUCCESS);
        }
        cli_names(&r, &objtype, &names)?
            .into_iter()
            .map(|n| ObjReq {
                name: n,
                objtype: objtype.clone(),
                attrs: pairs.clone(),
            })
            .collect()
    };
    let audit = Audit {
        command: "chdef".into(),
        noderange: names.clone().unwrap_or_default(),
        args: format!("-t {} {}", objtype, super::audit_args(&rest)),
    };
    let opts = DefOpts {
        how: How::Change(mode),
        dynamic: a.dynamic,
        conds: a.conds.clone(),
        setattr: a.setattr,
    };
    let d = define(&store, reqs, &opts, &audit)?;
    emit(&d.resps);
    if d.failed {
        crate::errln!("Error: One or more errors occured when attempting to create or modify xCAT object definitions.");
        return Ok(ExitCode::from(1));
    }
    if d.changed > 0 {
        crate::outln!(
            "{} object definitions have been created or modified.",
            d.changed
        );
    } else {
        crate::outln!("No object definitions have been created or modified.");
    }
    if !d.new.is_empty() {
        crate::outln!(
            "New object definitions '{}' have been created.",
            d.new.join(",")
        );
        if objtype == "node" || a.stanza {
            let caps: Vec<&String> = d
                .new
                .iter()
                .filter(|n| n.chars().any(|c| c.is_ascii_uppercase()))
                .collect();
            if !caps.is_empty() && objtype == "node" {
                crate::errln!("Warning: The node name '{}' contains capital letters which may not be resolved correctly by the dns server.", caps.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// chdef -n: every row that names the object is rewritten with the new name.
fn rename(
    store: &std::sync::Arc<crate::store::Store>,
    objtype: &str,
    old: &str,
    new: &str,
) -> anyhow::Result<ExitCode> {
    let def = objdef(objtype)?;
    let r = Resolver::new(store.clone());
    let reader = ObjReader::new(&r, objtype)?;
    let names: BTreeSet<String> = reader.names(true)?.into_iter().collect();
    if old.contains(',') {
        bail!("The '-n' option (changing object name) can only work on one object.");
    }
    if !names.contains(old) {
        bail!("The {old} is not a valid object.");
    }
    if names.contains(new) {
        bail!("Object {new} already exists.");
    }
    if objtype == "node" {
        check_node_name(new).map_err(|_| anyhow!("The new object name '{new}' is not valid.Please refer to \"man xcatdb\" for the valid \"xCAT Object Name Format\" "))?;
    }
    // The (table, column) pairs that hold this type's object names.
    let mut places: BTreeSet<(&str, &str)> = BTreeSet::new();
    if objtype == "node" || objtype == "group" {
        for spec in crate::store::schema::TABLES {
            if spec.keys.first() == Some(&"node") {
                places.insert((spec.name, "node"));
            }
        }
        if objtype == "group" {
            places.insert(("nodegroup", "groupname"));
        }
    } else {
        for a in def.attrs {
            places.insert((a.table, a.key_column));
        }
    }
    let audit = Audit {
        command: "chdef".into(),
        noderange: old.into(),
        args: format!("-t {objtype} -n {new}"),
    };
    store.write(Some(&audit), |tx| {
        for (table, col) in &places {
            let spec = table_spec(table)?;
            let Some(i) = spec.col_index(col) else {
                continue;
            };
            for row in tx.rows(table)? {
                if row.get(i).and_then(|v| v.as_deref()) != Some(old) {
                    continue;
                }
                let key: Vec<String> = spec
                    .keys
                    .iter()
                    .map(|k| {
                        spec.col_index(k)
                            .and_then(|j| row.get(j).cloned().flatten())
                            .unwrap_or_default()
                    })
                    .collect();
                let k: Vec<&str> = key.iter().map(String::as_str).collect();
                tx.delete(table, &k)?;
                let mut row = row.clone();
                row[i] = Some(new.to_string());
                tx.put(table, row)?;
            }
        }
        if objtype == "group" {
            // Members name their groups in nodelist.groups.
            for row in tx.rows("nodelist")? {
                let (Some(Some(n)), Some(Some(g))) = (row.first(), row.get(1)) else {
                    continue;
                };
                if g.split(',').any(|x| x == old) {
                    let ng: Vec<&str> = g
                        .split(',')
                        .map(|x| if x == old { new } else { x })
                        .collect();
                    tx.set("nodelist", &[n], &[("groups", Some(&ng.join(",")))])?;
                }
            }
        }
        Ok(())
    })?;
    crate::outln!("Changed the object name from {old} to {new}.");
    Ok(ExitCode::SUCCESS)
}

/// Deletes every row that defines object `name` of type `def`.
fn remove_object(tx: &mut Txn<'_>, def: &ObjDef, name: &str) -> anyhow::Result<()> {
    match def.objtype {
        "node" => {
            remove_node(tx, name)?;
            tx.delete_where("ppcdirect", "hcp", name)?;
        }
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
    /// Object type(s): node (default), group, osimage, network, … (comma-separated with -a)
    #[arg(short = 't', value_name = "TYPE")]
    objtype: Option<String>,
    /// Object names (for nodes, a noderange)
    #[arg(short = 'o', value_name = "NAMES")]
    objects: Option<String>,
    /// Remove every object definition (with -f): the whole database, as xCAT's rmdef -a -f
    #[arg(short = 'a', long = "all")]
    all: bool,
    /// Confirms -a
    #[arg(short = 'f', long = "force")]
    force: bool,
    /// Also clean up the nodes' boot configuration (nodeset offline)
    #[arg(short = 'C', long = "cleanup")]
    cleanup: bool,
    /// List the objects removed
    #[arg(short = 'V', long = "verbose")]
    verbose: bool,
    /// Not supported by rmdef (as in xCAT)
    #[arg(short = 'w', value_name = "COND")]
    conds: Vec<String>,
    /// Object names or a noderange (same as -o)
    #[arg(allow_hyphen_values = true)]
    names: Option<String>,
}

pub fn rmdef(db: &DbOpt, a: RmdefArgs) -> anyhow::Result<ExitCode> {
    let usage = || {
        if let Some(u) = super::usage::find("rmdef") {
            crate::out!("{}", super::usage::text(u, "rmdef"));
        }
    };
    if a.all && !a.force {
        crate::errln!("Error: You must use the '-f' option when using the '-a' option.");
        usage();
        return Ok(ExitCode::from(1));
    }
    let names = a.objects.clone().or(a.names.clone());
    if a.all && names.is_some() {
        bail!("Cannot use '-a' with '-o', a noderange or file input.");
    }
    if a.all && a.objtype.is_some() {
        bail!("The flags '-a' and '-t' cannot be used together.");
    }
    if !a.conds.is_empty() {
        // xCAT says so as information and removes nothing.
        crate::outln!("The '-w' option is not supported for the rmdef command.");
        return Ok(ExitCode::from(1));
    }
    let store = db.open()?;
    let r = Resolver::new(store.clone());
    let mut objs: Vec<(String, String)> = Vec::new();
    let mut failed = false;
    if a.all {
        // Every object of every type; the audit and event logs are not objects here (xCAT skips
        // them too).
        let mut types: Vec<&str> = defspec::OBJECTS.iter().map(|o| o.objtype).collect();
        types.push("site");
        types.sort();
        for t in types {
            let reader = ObjReader::new(&r, t)?;
            for n in reader.names(true)? {
                objs.push((t.to_string(), n));
            }
        }
    } else {
        let Some(names) = names.clone() else {
            crate::errln!("Error: No object names were provided.");
            usage();
            return Ok(ExitCode::from(1));
        };
        let objtype = a.objtype.clone().unwrap_or_else(|| "node".into());
        // With names, there can be only one type (xCAT uses the first).
        let objtype = objtype.split(',').next().unwrap_or("node").to_string();
        let reader = ObjReader::new(&r, &objtype)?;
        let existing: BTreeSet<String> = reader.names(true)?.into_iter().collect();
        let wanted: Vec<String> = if objtype == "node" {
            node_names(&r, &names)?
        } else {
            names.split(',').map(str::to_string).collect()
        };
        for o in wanted {
            if existing.contains(&o) {
                objs.push((objtype.clone(), o));
            } else {
                crate::errln!("Error: Could not find an object named '{o}' of type '{objtype}'.");
                failed = true;
            }
        }
    }
    if objs.is_empty() {
        crate::outln!("No objects have been removed from the xCAT database.");
        return Ok(ExitCode::from(if failed { 1 } else { 0 }));
    }
    let nodes = objs.iter().filter(|(t, _)| t == "node").count();
    if a.cleanup && nodes > 100 {
        crate::outln!("Performing configuration cleanup. This might take a some time.");
    }
    let audit = Audit {
        command: "rmdef".into(),
        noderange: names.clone().unwrap_or_default(),
        args: if a.all {
            "-a -f".into()
        } else {
            format!("-t {}", objs[0].0)
        },
    };
    store.write(Some(&audit), |tx| {
        let res = (|| -> anyhow::Result<()> {
            for (t, o) in &objs {
                if t == "site" {
                    // xCAT deletes every key of the site object.
                    for row in tx.rows("site")? {
                        if let Some(Some(k)) = row.first() {
                            tx.delete("site", &[k])?;
                        }
                    }
                    continue;
                }
                remove_object(tx, objdef(t)?, o)?;
                if a.cleanup && t == "node" {
                    // nodeset offline: boot files are rendered from the tables, so once the
                    // node's rows are gone nothing is served for it; its chain and leases go too.
                    tx.delete_where("dhcpleases", "node", o)?;
                }
            }
            Ok(())
        })();
        res.map_err(|e| StoreError::Invalid(super::chain(&e)))
    })?;
    if a.verbose {
        crate::outln!("The following objects were removed:");
        let mut sorted: Vec<&String> = objs.iter().map(|(_, o)| o).collect();
        sorted.sort();
        for o in sorted {
            crate::outln!("{o}");
        }
    } else {
        crate::outln!("{} object definitions have been removed.", objs.len());
    }
    Ok(ExitCode::from(if failed { 1 } else { 0 }))
}
