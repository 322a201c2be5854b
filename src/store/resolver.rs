//! "What is attribute X of node N": one place, with xCAT's semantics, cached in memory.
//!
//! A value comes from the node's own row; attributes it leaves empty come from the rows keyed by
//! the node's groups, in `nodelist.groups` order (the first group that has a value wins). For
//! attributes named in `site.hierarchicalattrs`, the node's and groups' values are concatenated
//! instead. Regex values (`/p/r/`, `|p|r|`) are then evaluated against the node's name
//! ([`super::regexattr`]). Empty strings count as undefined, as in xCAT.
//!
//! Tables are loaded whole on first use and kept until [`Resolver::invalidate`].
//! [`Resolver::catch_up`] invalidates each table the change log names since the last call, and the
//! daemon's services call it before answering each request, so no answer comes from a cache
//! older than a commit that returned before the request arrived. Loading a 100,000-row table
//! takes tens of milliseconds; a lookup after that is a hash probe.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::defspec;
use super::noderange::{self, Expansion, NodeUniverse, NoderangeError, SelectOp};
use super::regexattr::{RegexValue, RegexValueError};
use super::schema::{self, TableSpec};
use super::watch::{ChangeBatch, ChangeFollower, Followed};
use super::{is_disabled, table_spec, Row, Store, StoreError};

/// One table, enabled rows only, indexed by the first key column.
#[derive(Debug)]
pub struct TableIndex {
    pub spec: &'static TableSpec,
    pub rows: Vec<Row>,
    by_key: HashMap<String, Vec<u32>>,
}

impl TableIndex {
    fn build(spec: &'static TableSpec, all: Vec<Row>) -> TableIndex {
        let rows: Vec<Row> = all.into_iter().filter(|r| !is_disabled(spec, r)).collect();
        let key_col = spec
            .keys
            .first()
            .and_then(|k| spec.col_index(k))
            .unwrap_or(0);
        let mut by_key: HashMap<String, Vec<u32>> = HashMap::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            if let Some(Some(k)) = r.get(key_col) {
                by_key.entry(k.clone()).or_default().push(i as u32);
            }
        }
        TableIndex { spec, rows, by_key }
    }

    /// Rows whose first key column equals `key`.
    pub fn rows_for(&self, key: &str) -> impl Iterator<Item = &Row> {
        self.by_key
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|i| self.rows.get(*i as usize))
    }

    /// The value of column `col` in the first row keyed by `key`, if non-empty.
    fn value(&self, key: &str, col: usize) -> Option<&str> {
        self.rows_for(key).find_map(|r| {
            r.get(col)
                .and_then(|v| v.as_deref())
                .filter(|v| !v.is_empty())
        })
    }
}

/// Who is a node and who is in which group.
#[derive(Debug, Default)]
pub struct Membership {
    pub nodes: BTreeSet<String>,
    /// A node's groups, in `nodelist.groups` order.
    pub node_groups: HashMap<String, Vec<String>>,
    /// Static group → members (from `nodelist.groups` and static `nodegroup.members`).
    pub static_groups: HashMap<String, BTreeSet<String>>,
    /// Dynamic group → its `nodegroup.wherevals` conditions.
    pub dynamic_groups: HashMap<String, Vec<Condition>>,
}

/// Splits `lhs<op>value` at the first of `==`, `!=`, `=~`, `!~` (xCAT's selector operators).
pub fn split_condition(s: &str) -> Option<(&str, SelectOp, &str)> {
    let ops = [
        ("==", SelectOp::Eq),
        ("!=", SelectOp::Ne),
        ("=~", SelectOp::Match),
        ("!~", SelectOp::NotMatch),
    ];
    let (i, tok, op) = ops
        .iter()
        .filter_map(|(t, op)| s.find(t).map(|i| (i, *t, *op)))
        .min_by_key(|x| x.0)?;
    Some((&s[..i], op, &s[i + tok.len()..]))
}

/// The right-hand side of a condition: an operator and a value, the regex compiled once.
#[derive(Debug, Clone)]
pub struct ValueTest {
    pub op: SelectOp,
    pub value: String,
    regex: Option<regex::Regex>,
}

impl ValueTest {
    /// `Err` for a bad regular expression.
    pub fn new(op: SelectOp, value: &str) -> Result<ValueTest, regex::Error> {
        let regex = match op {
            SelectOp::Match | SelectOp::NotMatch => Some(regex::Regex::new(value)?),
            _ => None,
        };
        Ok(ValueTest {
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// Whether `value` (undefined counts as empty, as in xCAT) passes.
    pub fn holds(&self, value: Option<&str>) -> bool {
        let v = value.unwrap_or("");
        match self.op {
            SelectOp::Eq => v == self.value,
            SelectOp::Ne => v != self.value,
            SelectOp::Match | SelectOp::NotMatch => {
                self.regex.as_ref().is_some_and(|r| r.is_match(v)) == (self.op == SelectOp::Match)
            }
        }
    }
}

/// One `attr<op>value` condition on a node attribute (dynamic groups, `nodels`/`nodech` filters).
#[derive(Debug, Clone)]
pub struct Condition {
    pub table: &'static str,
    pub column: String,
    pub test: ValueTest,
}

impl Condition {
    /// Parses `tab.col==v`, `attr=~re`, … Object attribute names (`mgt`, `os`) are mapped to their
    /// table column through the node object definition.
    pub fn parse(s: &str) -> Result<Condition, StoreError> {
        let Some((lhs, op, value)) = split_condition(s) else {
            return Err(StoreError::Invalid(format!(
                "'{s}' is not a condition (expected attr==value, attr!=value, attr=~regex or attr!~regex)"
            )));
        };
        let (table, column) = attr_column(lhs)?;
        Condition::new(table.name, column, op, value)
            .map_err(|e| StoreError::Invalid(format!("bad regular expression in '{s}': {e}")))
    }

    /// A condition on `table.column`; `Err` for a bad regular expression.
    pub fn new(
        table: &'static str,
        column: String,
        op: SelectOp,
        value: &str,
    ) -> Result<Condition, regex::Error> {
        Ok(Condition {
            table,
            column,
            test: ValueTest::new(op, value)?,
        })
    }

    fn holds(&self, value: Option<&str>) -> bool {
        self.test.holds(value)
    }
}

/// Maps `tab.col` or a node object attribute name to a table and column.
pub fn attr_column(name: &str) -> Result<(&'static TableSpec, String), StoreError> {
    if let Some((t, c)) = name.split_once('.') {
        let spec = table_spec(t)?;
        super::column_index(spec, c)?;
        return Ok((spec, c.to_string()));
    }
    if let Some(short) = short_name(name) {
        return attr_column(short);
    }
    let node = defspec::object("node");
    let def = node
        .and_then(|o| {
            o.attrs
                .iter()
                .find(|a| a.attr == name && a.only_if.is_none())
        })
        .or_else(|| node.and_then(|o| o.attrs.iter().find(|a| a.attr == name)));
    match def {
        Some(a) => Ok((table_spec(a.table)?, a.column.to_string())),
        None => Err(StoreError::Invalid(format!(
            "unknown attribute '{name}' (use table.column, for example nodetype.os, or a node attribute name from lsdef)"
        ))),
    }
}

/// xCAT's short names accepted by nodels/nodech (tabutils `%shortnames`).
pub fn short_name(name: &str) -> Option<&'static str> {
    Some(match name {
        "groups" => "nodelist.groups",
        "tags" => "nodelist.groups",
        "mgt" => "nodehm.mgt",
        _ => return None,
    })
}

/// Where a resolved value came from (for error messages).
fn origin(node: &str, group: Option<&str>) -> String {
    match group {
        Some(g) => format!("group '{g}' row"),
        None => format!("node '{node}' row"),
    }
}

type RegexCache = HashMap<String, Result<Option<Arc<RegexValue>>, RegexValueError>>;

/// A change listener: called inside [`Resolver::catch_up`], in change-log order.
pub type Listener = Box<dyn Fn(&Arc<ChangeBatch>) + Send + Sync>;

/// Cached tables, with a count of invalidations per table so that a load that raced with one
/// is not kept.
#[derive(Default)]
struct Tables {
    cached: HashMap<&'static str, Arc<TableIndex>>,
    /// Invalidations per table name.
    epochs: HashMap<&'static str, u64>,
    /// Invalidations of everything.
    all: u64,
}

impl Tables {
    fn epoch(&self, name: &'static str) -> (u64, u64) {
        (self.all, self.epochs.get(name).copied().unwrap_or(0))
    }
}

/// Where [`Resolver::catch_up`] is in the change log.
struct Follow {
    follower: ChangeFollower,
    /// The change log could not be read when the resolver was made: start with a full reset.
    reset_pending: bool,
}

/// The cached, inheritance-aware view of the store.
pub struct Resolver {
    store: Arc<Store>,
    /// Bumped whenever something cached was dropped (or a load was not kept because it raced
    /// with an invalidation), so derived caches (boot-file indexes) know when to rebuild.
    generation: AtomicU64,
    tables: RwLock<Tables>,
    membership: RwLock<Option<Arc<Membership>>>,
    /// Invalidations of the membership (nodelist, nodegroup, site, everything).
    membership_epoch: AtomicU64,
    regex_cache: Mutex<RegexCache>,
    follow: Mutex<Follow>,
    /// One more than the store's commit position up to which every change has been applied
    /// (0: not yet caught up).
    caught_up: AtomicU64,
    /// Catch-ups begun (each asks the commit position after this is bumped) and the highest
    /// one finished: a request whose [`Ticket`] is older than a finished catch-up is covered.
    begun: AtomicU64,
    finished: AtomicU64,
    listeners: RwLock<Vec<Listener>>,
}

/// When a request arrived, in catch-ups begun ([`Resolver::ticket`]).
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// A resolver with nothing cached, following the change log from its newest entry.
    pub fn new(store: Arc<Store>) -> Resolver {
        let follow = match ChangeFollower::from_now(&store) {
            Ok(follower) => Follow {
                follower,
                reset_pending: false,
            },
            Err(_) => Follow {
                follower: ChangeFollower::after(0),
                reset_pending: true,
            },
        };
        Resolver {
            store,
            generation: AtomicU64::new(0),
            tables: RwLock::new(Tables::default()),
            membership: RwLock::new(None),
            membership_epoch: AtomicU64::new(0),
            regex_cache: Mutex::new(HashMap::new()),
            follow: Mutex::new(follow),
            caught_up: AtomicU64::new(0),
            begun: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            listeners: RwLock::new(Vec::new()),
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Changes whenever something was invalidated.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Forgets what was cached of `table` (called for each table the change log names).
    pub fn invalidate(&self, table: &str) {
        let Some(spec) = schema::table(table) else {
            return;
        };
        let mut dropped = false;
        if let Ok(mut t) = self.tables.write() {
            *t.epochs.entry(spec.name).or_default() += 1;
            dropped |= t.cached.remove(spec.name).is_some();
        }
        if matches!(spec.name, "nodelist" | "nodegroup" | "site") {
            dropped |= self.drop_membership();
        }
        if dropped {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn drop_membership(&self) -> bool {
        match self.membership.write() {
            Ok(mut m) => {
                self.membership_epoch.fetch_add(1, Ordering::SeqCst);
                m.take().is_some()
            }
            Err(_) => false,
        }
    }

    /// Forgets everything (after a change-log gap).
    pub fn invalidate_all(&self) {
        if let Ok(mut t) = self.tables.write() {
            t.all += 1;
            t.cached.clear();
        }
        self.drop_membership();
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Calls `f` with every batch of changes [`Resolver::catch_up`] applies, after the tables
    /// it names were invalidated and before `catch_up` returns. `f` must be quick and must not
    /// call `catch_up`.
    pub fn on_change(&self, f: Listener) {
        if let Ok(mut l) = self.listeners.write() {
            l.push(f);
        }
    }

    /// Read-your-writes: after this returns, every cache here (and, through the listeners, every
    /// cache built on it) reflects each store commit that returned before this was called —
    /// by any process, this one included. Cheap when nothing was committed: one question to
    /// the backend ([`Store::commit_position`]) and an atomic comparison. Services call it once
    /// per request, before answering.
    pub fn catch_up(&self) -> Result<(), StoreError> {
        let me = self.begun.fetch_add(1, Ordering::SeqCst) + 1;
        self.catch_up_to_now()?;
        self.finished.fetch_max(me, Ordering::SeqCst);
        Ok(())
    }

    /// Taken when a request arrives: [`Resolver::catch_up_since`] with it is then as good as
    /// [`Resolver::catch_up`] called at that moment.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.begun.load(Ordering::SeqCst))
    }

    /// [`Resolver::catch_up`] for a request that arrived at `t` — free (one atomic load) when a
    /// catch-up begun after `t` has already finished, as under load, when many requests arrive
    /// while one catches up: a catch-up begun after the request arrived saw every commit made
    /// before it arrived.
    pub fn catch_up_since(&self, t: Ticket) -> Result<(), StoreError> {
        if self.finished.load(Ordering::SeqCst) > t.0 {
            return Ok(());
        }
        self.catch_up()
    }

    fn catch_up_to_now(&self) -> Result<(), StoreError> {
        // The position is read before the log, so everything it counts is in what we read.
        let pos = self.store.commit_position()?.saturating_add(1);
        if self.caught_up.load(Ordering::SeqCst) >= pos {
            return Ok(());
        }
        let mut f = self.follow.lock().unwrap_or_else(|p| p.into_inner());
        if self.caught_up.load(Ordering::SeqCst) >= pos {
            return Ok(());
        }
        let found = if f.reset_pending {
            let (_, newest) = self.store.change_bounds()?;
            f.follower = ChangeFollower::after(newest);
            f.reset_pending = false;
            Followed::Reset
        } else {
            f.follower.drain(&self.store)?
        };
        let batch = match found {
            Followed::Nothing => None,
            Followed::Reset => {
                self.invalidate_all();
                Some(Arc::new(ChangeBatch::reset()))
            }
            Followed::Changes(changes) => {
                let batch = ChangeBatch::of(changes);
                for t in &batch.tables {
                    self.invalidate(t);
                }
                // Shared, not copied, by every listener that passes it on.
                Some(Arc::new(batch))
            }
        };
        if let Some(b) = batch {
            if let Ok(l) = self.listeners.read() {
                for f in l.iter() {
                    f(&b);
                }
            }
        }
        self.caught_up.fetch_max(pos, Ordering::SeqCst);
        Ok(())
    }

    /// The last change-log entry applied by [`Resolver::catch_up`].
    pub fn last_seq(&self) -> u64 {
        self.follow
            .lock()
            .map(|f| f.follower.last_seq())
            .unwrap_or(0)
    }

    /// Keeps `idx` in the cache unless `name` was invalidated since `epoch` was read; a load
    /// that is not kept may already have been used, so derived caches are told to rebuild.
    fn keep(&self, name: &'static str, epoch: (u64, u64), idx: Arc<TableIndex>) {
        match self.tables.write() {
            Ok(mut t) if t.epoch(name) == epoch => {
                t.cached.insert(name, idx);
            }
            _ => {
                self.generation.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    fn epoch(&self, name: &'static str) -> (u64, u64) {
        self.tables
            .read()
            .map(|t| t.epoch(name))
            .unwrap_or((u64::MAX, u64::MAX))
    }

    /// The cached table, loading it on first use.
    pub fn table(&self, name: &str) -> Result<Arc<TableIndex>, StoreError> {
        if let Some(t) = self
            .tables
            .read()
            .ok()
            .and_then(|t| t.cached.get(name).cloned())
        {
            return Ok(t);
        }
        let spec = table_spec(name)?;
        let epoch = self.epoch(spec.name);
        let rows = self.store.read_tables(&[spec])?.pop().unwrap_or_default();
        let idx = Arc::new(TableIndex::build(spec, rows));
        self.keep(spec.name, epoch, idx.clone());
        Ok(idx)
    }

    /// Loads several tables at once from one snapshot (faster than one by one, and consistent).
    pub fn preload(&self, names: &[&str]) -> Result<(), StoreError> {
        let cached: Vec<&str> = self
            .tables
            .read()
            .map(|t| t.cached.keys().copied().collect())
            .unwrap_or_default();
        let mut specs = Vec::new();
        for n in names {
            let s = table_spec(n)?;
            if !cached.contains(&s.name) && !specs.iter().any(|x: &&TableSpec| x.name == s.name) {
                specs.push(s);
            }
        }
        if specs.is_empty() {
            return Ok(());
        }
        let epochs: Vec<(u64, u64)> = specs.iter().map(|s| self.epoch(s.name)).collect();
        let all = self.store.read_tables(&specs)?;
        for ((s, rows), e) in specs.into_iter().zip(all).zip(epochs) {
            self.keep(s.name, e, Arc::new(TableIndex::build(s, rows)));
        }
        Ok(())
    }

    /// A site value (enabled rows, non-empty).
    pub fn site(&self, key: &str) -> Result<Option<String>, StoreError> {
        let t = self.table("site")?;
        Ok(t.value(key, 1).map(str::to_string))
    }

    /// `site.master`, when it is an address or a host name. Anything else (a store written before
    /// the check) is logged once and treated as unset: nodes are then told the address they
    /// reached this server on, never the garbage.
    pub fn site_master(&self) -> Result<Option<String>, StoreError> {
        static WARNED: Mutex<Option<String>> = Mutex::new(None);
        let Some(m) = self.site("master")?.map(|m| m.trim().to_string()) else {
            return Ok(None);
        };
        if m.is_empty() {
            return Ok(None);
        }
        match super::validate::site_value("master", &m) {
            Ok(()) => Ok(Some(m)),
            Err(e) => {
                if let Ok(mut w) = WARNED.lock() {
                    if w.as_deref() != Some(m.as_str()) {
                        tracing::warn!("{e}: ignored (nodes get the address they reached us on)");
                        *w = Some(m);
                    }
                }
                Ok(None)
            }
        }
    }

    /// Nodes and groups.
    pub fn membership(&self) -> Result<Arc<Membership>, StoreError> {
        if let Some(m) = self.membership.read().ok().and_then(|m| m.clone()) {
            return Ok(m);
        }
        let epoch = self.membership_epoch.load(Ordering::SeqCst);
        self.preload(&["nodelist", "nodegroup", "site"])?;
        let nodelist = self.table("nodelist")?;
        let nodegroup = self.table("nodegroup")?;
        let mut m = Membership::default();
        let gcol = nodelist.spec.col_index("groups").unwrap_or(1);
        for r in &nodelist.rows {
            let Some(Some(node)) = r.first() else {
                continue;
            };
            let groups: Vec<String> = r
                .get(gcol)
                .and_then(|v| v.as_deref())
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_string)
                .collect();
            for g in &groups {
                m.static_groups
                    .entry(g.clone())
                    .or_default()
                    .insert(node.clone());
            }
            m.nodes.insert(node.clone());
            m.node_groups.insert(node.clone(), groups);
        }
        let s = nodegroup.spec;
        let (ty, mem, wh) = (
            s.col_index("grouptype"),
            s.col_index("members"),
            s.col_index("wherevals"),
        );
        let get = |r: &Row, i: Option<usize>| {
            i.and_then(|i| r.get(i))
                .and_then(|v| v.as_deref())
                .unwrap_or("")
                .to_string()
        };
        for r in &nodegroup.rows {
            let Some(Some(name)) = r.first() else {
                continue;
            };
            if get(r, ty) == "dynamic" {
                let conds = get(r, wh)
                    .split("::")
                    .filter(|c| !c.is_empty())
                    .map(Condition::parse)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| StoreError::Invalid(format!("dynamic group '{name}': {e}")))?;
                m.dynamic_groups.insert(name.clone(), conds);
            } else {
                let e = m.static_groups.entry(name.clone()).or_default();
                for n in get(r, mem)
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                {
                    e.insert(n.to_string());
                }
            }
        }
        let m = Arc::new(m);
        match self.membership.write() {
            Ok(mut slot) if self.membership_epoch.load(Ordering::SeqCst) == epoch => {
                *slot = Some(m.clone());
            }
            _ => {
                self.generation.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(m)
    }

    /// Expands a noderange against this store.
    pub fn noderange(&self, range: &str, verify: bool) -> Result<Expansion, StoreError> {
        let m = self.membership()?;
        let excluded = match self.site("excludenodes")? {
            Some(ex) if !ex.trim().is_empty() => {
                let u = Universe {
                    r: self,
                    m: m.clone(),
                    excluded: BTreeSet::new(),
                };
                noderange::expand(&ex, &u, true)
                    .map_err(nr_err)?
                    .nodes
                    .into_iter()
                    .collect()
            }
            _ => BTreeSet::new(),
        };
        let u = Universe {
            r: self,
            m,
            excluded,
        };
        noderange::expand(range, &u, verify).map_err(nr_err)
    }

    /// The resolved value of `table.column` for `node`.
    pub fn attr(
        &self,
        node: &str,
        table: &str,
        column: &str,
    ) -> Result<Option<String>, StoreError> {
        let t = self.table(table)?;
        let col = super::column_index(t.spec, column)?;
        let m = self.membership()?;
        let hier = self.hierarchical(column, t.spec)?;
        self.resolve(&t, col, node, &m, hier.as_deref())
    }

    /// The group whose row gives `node` its `table.column` value (nodels -b: "inherited from
    /// group g"); `None` when the node's own row has it, nothing has it, or the column is
    /// hierarchical (the value joins several rows).
    pub fn attr_origin(
        &self,
        node: &str,
        table: &str,
        column: &str,
    ) -> Result<Option<String>, StoreError> {
        let t = self.table(table)?;
        let col = super::column_index(t.spec, column)?;
        if t.spec.name == "nodelist"
            || t.spec.keys.first() != Some(&"node")
            || t.value(node, col).is_some()
            || self.hierarchical(column, t.spec)?.is_some()
        {
            return Ok(None);
        }
        let m = self.membership()?;
        let groups = m.node_groups.get(node).map(Vec::as_slice).unwrap_or(&[]);
        Ok(groups.iter().find(|g| t.value(g, col).is_some()).cloned())
    }

    /// Every column of `table` resolved for `node` (None where undefined).
    pub fn row(&self, node: &str, table: &str) -> Result<Vec<Option<String>>, StoreError> {
        let t = self.table(table)?;
        let m = self.membership()?;
        let mut out = Vec::with_capacity(t.spec.cols.len());
        for (i, c) in t.spec.cols.iter().enumerate() {
            let hier = self.hierarchical(c, t.spec)?;
            out.push(self.resolve(&t, i, node, &m, hier.as_deref())?);
        }
        Ok(out)
    }

    /// The delimiter for `column` when `site.hierarchicalattrs` names it.
    fn hierarchical(&self, column: &str, spec: &TableSpec) -> Result<Option<String>, StoreError> {
        if spec.name == "nodelist" {
            return Ok(None);
        }
        let Some(h) = self.site("hierarchicalattrs")? else {
            return Ok(None);
        };
        for item in h.split(',').map(str::trim) {
            let (name, delim) = item.split_once(':').unwrap_or((item, ","));
            if name == column {
                return Ok(Some(if delim.is_empty() {
                    ",".to_string()
                } else {
                    delim.to_string()
                }));
            }
        }
        Ok(None)
    }

    fn resolve(
        &self,
        t: &TableIndex,
        col: usize,
        node: &str,
        m: &Membership,
        hier: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let own = t.value(node, col);
        let inherit = t.spec.name != "nodelist" && t.spec.keys.first() == Some(&"node");
        let groups: &[String] = if inherit {
            m.node_groups.get(node).map(Vec::as_slice).unwrap_or(&[])
        } else {
            &[]
        };
        match hier {
            None => {
                if let Some(v) = own {
                    return self.eval(v, node, t.spec, col, None);
                }
                for g in groups {
                    if let Some(v) = t.value(g, col) {
                        return self.eval(v, node, t.spec, col, Some(g));
                    }
                }
                Ok(None)
            }
            Some(delim) => {
                let mut parts: Vec<String> = Vec::new();
                let sources = std::iter::once((own, None))
                    .chain(groups.iter().map(|g| (t.value(g, col), Some(g.as_str()))));
                for (v, g) in sources {
                    let Some(v) = v else { continue };
                    let Some(v) = self.eval(v, node, t.spec, col, g)? else {
                        continue;
                    };
                    for p in v.split(delim) {
                        if !p.is_empty() && !parts.iter().any(|x| x == p) {
                            parts.push(p.to_string());
                        }
                    }
                }
                Ok(if parts.is_empty() {
                    None
                } else {
                    Some(parts.join(delim))
                })
            }
        }
    }

    /// Applies a regex value for `node`; plain values pass through.
    fn eval(
        &self,
        value: &str,
        node: &str,
        spec: &TableSpec,
        col: usize,
        group: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        if !(value.starts_with('/') || value.starts_with('|')) {
            return Ok(Some(value.to_string()));
        }
        let parsed = {
            let mut cache = self.regex_cache.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .entry(value.to_string())
                .or_insert_with(|| RegexValue::parse(value).map(|o| o.map(Arc::new)))
                .clone()
        };
        let column = spec.cols.get(col).copied().unwrap_or("?");
        let bad = |e: RegexValueError| {
            StoreError::Invalid(format!(
                "{}.{} for {node} (from {}): {e}",
                spec.name,
                column,
                origin(node, group)
            ))
        };
        match parsed.map_err(bad)? {
            None => Ok(Some(value.to_string())),
            Some(rv) => rv.apply(node).map_err(bad),
        }
    }

    /// Nodes of `candidates` for which every condition holds.
    pub fn filter(
        &self,
        candidates: &[String],
        conds: &[Condition],
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        'node: for n in candidates {
            for c in conds {
                let v = self.attr(n, c.table, &c.column)?;
                if !c.holds(v.as_deref()) {
                    continue 'node;
                }
            }
            out.push(n.clone());
        }
        Ok(out)
    }
}

fn nr_err(e: NoderangeError) -> StoreError {
    StoreError::Invalid(e.to_string())
}

/// The resolver as seen by noderange expansion.
struct Universe<'r> {
    r: &'r Resolver,
    m: Arc<Membership>,
    excluded: BTreeSet<String>,
}

impl NodeUniverse for Universe<'_> {
    fn all_nodes(&self) -> &BTreeSet<String> {
        &self.m.nodes
    }

    fn group_members(&self, name: &str) -> Option<BTreeSet<String>> {
        if let Some(conds) = self.m.dynamic_groups.get(name) {
            let all: Vec<String> = self.m.nodes.iter().cloned().collect();
            // An error inside a dynamic group's conditions makes the group empty rather than the
            // whole range fail; the conditions were validated when the membership was built.
            return Some(
                self.r
                    .filter(&all, conds)
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            );
        }
        self.m.static_groups.get(name).cloned()
    }

    fn select(
        &self,
        table: &str,
        column: &str,
        op: SelectOp,
        value: &str,
    ) -> Result<BTreeSet<String>, String> {
        let spec = schema::table(table).ok_or_else(|| format!("no such table: {table}"))?;
        if spec.col_index(column).is_none() {
            return Err(format!("no column '{column}' in table '{table}'"));
        }
        let cond = Condition::new(spec.name, column.to_string(), op, value)
            .map_err(|e| format!("bad regular expression '{value}': {e}"))?;
        let all: Vec<String> = self.m.nodes.iter().cloned().collect();
        self.r
            .filter(&all, &[cond])
            .map(|v| v.into_iter().collect())
            .map_err(|e| e.to_string())
    }

    fn excluded(&self) -> BTreeSet<String> {
        self.excluded.clone()
    }
}

/// One column prepared for resolving across many nodes (table, index and hierarchy looked up once).
pub struct ColumnView<'r> {
    r: &'r Resolver,
    t: Arc<TableIndex>,
    col: usize,
    m: Arc<Membership>,
    hier: Option<String>,
}

impl Resolver {
    /// Prepares `table.column` for many lookups.
    pub fn column(&self, table: &str, column: &str) -> Result<ColumnView<'_>, StoreError> {
        let t = self.table(table)?;
        let col = super::column_index(t.spec, column)?;
        let hier = self.hierarchical(column, t.spec)?;
        Ok(ColumnView {
            r: self,
            t,
            col,
            m: self.membership()?,
            hier,
        })
    }
}

impl ColumnView<'_> {
    /// The resolved value for `node`.
    pub fn get(&self, node: &str) -> Result<Option<String>, StoreError> {
        self.r
            .resolve(&self.t, self.col, node, &self.m, self.hier.as_deref())
    }
}

impl Resolver {
    /// xCAT's `subVars` for `node` (litetree directories, statelite.statemnt): `$node`,
    /// `$table.col` (the node's resolved attribute) and `$site.key`. A broken attribute value
    /// counts as missing (`UNDEFINED`), as xCAT does.
    /// A `server:/path` value (statemnt, litetree) is substituted in its two parts, as xCAT's
    /// callers split it before calling subVars.
    pub fn substitute_vars(&self, node: &str, template: &str) -> String {
        let mut attr = |t: &str, c: &str| self.attr(node, t, c).ok().flatten();
        let mut site = |k: &str| self.site(k).ok().flatten();
        match template.split_once(':') {
            Some((server, path)) => format!(
                "{}:{}",
                super::regexattr::substitute_vars(server, node, &mut attr, &mut site),
                super::regexattr::substitute_vars(path, node, &mut attr, &mut site)
            ),
            None => super::regexattr::substitute_vars(template, node, &mut attr, &mut site),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Arc<Store> {
        let s = Arc::new(Store::open_test().expect("store"));
        s.write(None, |tx| {
            tx.set("nodelist", &["n1"], &[("groups", Some("compute,all"))])?;
            tx.set("nodelist", &["n2"], &[("groups", Some("all"))])?;
            tx.set("noderes", &["compute"], &[("nfsserver", Some("10.0.0.1"))])?;
            tx.set("nodetype", &["n1"], &[("profile", Some("compute"))])?;
            tx.set("site", &["installdir"], &[("value", Some("/install"))])
        })
        .expect("seed");
        s
    }

    #[test]
    fn substitute_vars_uses_resolved_attributes() {
        let r = Resolver::new(store());
        assert_eq!(
            r.substitute_vars(
                "n1",
                "$noderes.nfsserver:/lite/state/$nodetype.profile/$node"
            ),
            "10.0.0.1:/lite/state/compute/n1"
        );
        assert_eq!(
            r.substitute_vars("n2", "$noderes.nfsserver:$site.installdir"),
            "UNDEFINED:/install"
        );
    }

    #[test]
    fn invalidate_sees_new_rows() {
        let s = store();
        let r = Resolver::new(s.clone());
        assert_eq!(
            r.attr("n1", "noderes", "nfsserver")
                .expect("attr")
                .as_deref(),
            Some("10.0.0.1")
        );
        s.write(None, |tx| {
            tx.set("noderes", &["n1"], &[("nfsserver", Some("10.0.0.2"))])
        })
        .expect("write");
        // Cached until told otherwise: the daemon invalidates from the change log.
        assert_eq!(
            r.attr("n1", "noderes", "nfsserver")
                .expect("attr")
                .as_deref(),
            Some("10.0.0.1")
        );
        r.invalidate("noderes");
        assert_eq!(
            r.attr("n1", "noderes", "nfsserver")
                .expect("attr")
                .as_deref(),
            Some("10.0.0.2")
        );
        s.write(None, |tx| {
            tx.set("nodelist", &["n3"], &[("groups", Some("compute"))])
        })
        .expect("write");
        r.invalidate("nodelist");
        assert_eq!(
            r.attr("n3", "noderes", "nfsserver")
                .expect("attr")
                .as_deref(),
            Some("10.0.0.1")
        );
    }

    #[test]
    fn catch_up_sees_every_commit_made_before_it_by_anyone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = Store::test_url(dir.path(), "r");
        let other = Store::open(&url).expect("open");
        let own = Arc::new(Store::open(&url).expect("open again"));
        let r = Resolver::new(own.clone());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        r.on_change(Box::new(move |b| {
            if let Ok(mut s) = s2.lock() {
                s.extend(b.changes.iter().map(|c| c.key.clone()));
            }
        }));
        other
            .write(None, |tx| {
                tx.set("nodelist", &["n1"], &[("groups", Some("all"))])
            })
            .expect("write");
        assert_eq!(r.attr("n1", "nodetype", "os").expect("attr"), None);
        for i in 0..200 {
            // Another process's commit, then this process's own: each is seen at once.
            let v = format!("os{i}");
            other
                .write(None, |tx| tx.set("nodetype", &["n1"], &[("os", Some(&v))]))
                .expect("write");
            r.catch_up().expect("catch up");
            assert_eq!(r.attr("n1", "nodetype", "os").expect("attr"), Some(v));
            let v = format!("arch{i}");
            own.write(None, |tx| {
                tx.set("nodetype", &["n1"], &[("arch", Some(&v))])
            })
            .expect("write");
            r.catch_up().expect("catch up");
            assert_eq!(r.attr("n1", "nodetype", "arch").expect("attr"), Some(v));
        }
        // Listeners got each change once, in order.
        let keys = seen.lock().expect("lock").clone();
        assert_eq!(keys.len(), 401);
        assert!(keys.iter().all(|k| k == "node=n1"));
        // Nothing new: nothing delivered.
        r.catch_up().expect("catch up");
        assert_eq!(seen.lock().expect("lock").len(), 401);
    }

    #[test]
    fn a_load_racing_with_an_invalidation_is_not_kept() {
        let store = Arc::new(Store::open_test().expect("store"));
        let r = Resolver::new(store.clone());
        let g = r.generation();
        let epoch = r.epoch("nodelist");
        let stale = Arc::new(TableIndex::build(
            table_spec("nodelist").expect("spec"),
            Vec::new(),
        ));
        r.invalidate("nodelist");
        r.keep("nodelist", epoch, stale);
        assert!(!r
            .tables
            .read()
            .expect("lock")
            .cached
            .contains_key("nodelist"));
        assert_ne!(r.generation(), g, "derived caches must rebuild");
    }
}
