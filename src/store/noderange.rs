//! xCAT noderange expansion (STUB: being written; API is fixed).
use std::collections::BTreeSet;

/// Operator of a `tab.col<op>value` selector atom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `=~`
    Match,
    /// `!~`
    NotMatch,
}

/// What noderange expansion needs to know about the cluster.
pub trait NodeUniverse {
    /// Every defined node name (nodelist rows that are not disabled), sorted.
    fn all_nodes(&self) -> &BTreeSet<String>;
    /// Members of the static or dynamic group `name`, or `None` when no such group exists.
    fn group_members(&self, name: &str) -> Option<BTreeSet<String>>;
    /// Nodes for which `table.column <op> value` holds (resolved attribute values).
    /// `Err` carries a message such as "no column foo in table nodelist".
    fn select(
        &self,
        table: &str,
        column: &str,
        op: SelectOp,
        value: &str,
    ) -> Result<BTreeSet<String>, String>;
    /// Nodes listed in `site.excludenodes` (already expanded), removed from every result.
    fn excluded(&self) -> BTreeSet<String>;
}

/// The result of expanding a noderange.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// De-duplicated, string-sorted node names.
    pub nodes: Vec<String>,
    /// Names in the range that are neither nodes nor groups (only in verify mode).
    pub missing: Vec<String>,
}

/// A noderange that cannot be parsed at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid noderange '{range}': {reason}")]
pub struct NoderangeError {
    pub range: String,
    pub reason: String,
}

/// Expand `range`. With `verify`, only existing nodes are returned and unknown names go to `missing`;
/// without it (nodeadd, mkdef), names that do not exist yet are returned as they are spelled.
pub fn expand(
    range: &str,
    universe: &dyn NodeUniverse,
    verify: bool,
) -> Result<Expansion, NoderangeError> {
    let _ = (range, universe, verify);
    Err(NoderangeError {
        range: range.into(),
        reason: "not implemented yet".into(),
    })
}
