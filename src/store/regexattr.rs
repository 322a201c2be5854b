//! xCAT regex attribute values and variable substitution (STUB: being written; API is fixed).

/// A table value that could not be evaluated for a node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad regex value '{value}': {reason}")]
pub struct RegexValueError {
    pub value: String,
    pub reason: String,
}

/// A parsed xCAT regex value (`/pat/repl/`, `|pat|repl|`, `|repl|`), compiled once and applied to many nodes.
#[derive(Debug, Clone)]
pub struct RegexValue {}

impl RegexValue {
    /// `Ok(None)` when `value` is a plain value (not one of the regex forms).
    pub fn parse(value: &str) -> Result<Option<RegexValue>, RegexValueError> {
        let _ = value;
        Ok(None)
    }
    /// The value for `node`. `Ok(None)` when the result is empty (xCAT treats that as undefined).
    pub fn apply(&self, node: &str) -> Result<Option<String>, RegexValueError> {
        let _ = node;
        Ok(None)
    }
}

/// xCAT `subVars`: `$node`, `$table.col`, `$site.key`, `#CMD=…#` in each `/`-separated component.
/// `attr(table, column)` returns the node's resolved attribute; `site(key)` a site value.
pub fn substitute_vars(
    template: &str,
    node: &str,
    attr: &mut dyn FnMut(&str, &str) -> Option<String>,
    site: &mut dyn FnMut(&str) -> Option<String>,
) -> String {
    let _ = (node, attr, site);
    template.to_string()
}
