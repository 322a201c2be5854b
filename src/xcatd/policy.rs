//! xCAT's policy engine (`xCAT-server/lib/perl/xCAT/xcatd.pm` `validate`), as a pure function of
//! the policy rows and the request: rows by numeric priority (lower first); the first matching row
//! decides. A row matches when
//! - `name`: empty matches anyone, `*` anyone with a name (a certificate or a login), anything else
//!   exactly that name;
//! - `host`: empty or `*` any host, else exactly the client's host name;
//! - `commands`: empty or `*` any command, else one of the comma-separated names;
//! - `parameters`: empty or `*` any arguments, else a regular expression found in the arguments
//!   joined by spaces;
//! - `noderange`: empty or `*` any request; otherwise a request without nodes skips the row, one
//!   with none of the row's nodes skips it, and one with some of them, under an allowing row, has
//!   those nodes allowed and goes on to the next rows with the rest;
//! - `time` is ignored, as xcatd ignores it.
//!
//! `allow`, `accept` and `trusted` (any case, anywhere in the rule) allow; anything else denies; no
//! matching row denies. A peer is trusted when some row names it with a `trusted` rule: only
//! trusted peers may say which user they act for.

use std::collections::HashSet;

/// One row of the policy table (disabled rows are left out by the caller).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub priority: String,
    pub name: String,
    pub host: String,
    pub commands: String,
    pub noderange: String,
    pub parameters: String,
    pub rule: String,
}

/// What the policy decided, and by which row (its priority), for the log and the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed { priority: String },
    Denied { priority: Option<String> },
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }
}

/// Who asks.
#[derive(Debug, Clone, Default)]
pub struct Peer<'a> {
    /// The certificate's CN or the authenticated user; `None` for an anonymous client.
    pub name: Option<&'a str>,
    /// The client's host name (short), if it has one.
    pub host: Option<&'a str>,
}

/// What is asked.
#[derive(Debug, Clone, Default)]
pub struct Asked<'a> {
    pub command: &'a str,
    pub args: &'a [String],
    /// The request's nodes (expanded), if it names any.
    pub nodes: Option<Vec<String>>,
}

fn allows(rule: &str) -> bool {
    let r = rule.to_ascii_lowercase();
    r.contains("allow") || r.contains("accept") || r.contains("trusted")
}

/// Perl's `<=>` on the priority strings: numeric, non-numbers count as 0.
fn prio(p: &str) -> f64 {
    let t = p.trim();
    // Perl takes the longest numeric prefix.
    let mut end = 0;
    for (i, c) in t.char_indices() {
        if c.is_ascii_digit() || c == '.' || ((c == '-' || c == '+') && i == 0) {
            end = i + c.len_utf8();
        } else {
            break;
        }
    }
    t[..end].parse().unwrap_or(0.0)
}

/// Rows in the order xcatd reads them.
pub fn sorted(rows: &[Rule]) -> Vec<&Rule> {
    let mut v: Vec<&Rule> = rows.iter().collect();
    v.sort_by(|a, b| {
        prio(&a.priority)
            .partial_cmp(&prio(&b.priority))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    v
}

/// Whether `peer` is named by a `trusted` row.
pub fn trusted(rows: &[Rule], peer: Option<&str>) -> bool {
    let Some(p) = peer else { return false };
    sorted(rows).iter().any(|r| {
        !r.name.is_empty() && r.name == p && r.rule.to_ascii_lowercase().contains("trusted")
    })
}

/// xcatd's `validate`. `expand` turns a row's noderange into node names.
pub fn validate(
    rows: &[Rule],
    peer: &Peer<'_>,
    asked: &Asked<'_>,
    expand: &dyn Fn(&str) -> Vec<String>,
) -> Decision {
    let mut left: Option<Vec<String>> = asked.nodes.clone().filter(|n| !n.is_empty());
    let params = asked.args.join(" ");
    for r in sorted(rows) {
        if !r.name.is_empty() {
            match peer.name {
                Some(n) if r.name == "*" || r.name == n => {}
                _ => continue,
            }
        }
        if !r.host.is_empty() && r.host != "*" && peer.host != Some(r.host.as_str()) {
            continue;
        }
        if !r.commands.is_empty()
            && r.commands != "*"
            && !r.commands.split(',').any(|c| c.trim() == asked.command)
        {
            continue;
        }
        if !r.parameters.is_empty() && r.parameters != "*" {
            match regex::Regex::new(&r.parameters) {
                Ok(re) if re.is_match(&params) => {}
                // An invalid pattern matches nothing (xcatd would die on it and deny).
                _ => continue,
            }
        }
        if !r.noderange.is_empty() && r.noderange != "*" {
            let Some(nodes) = left.as_ref() else { continue };
            let rule_nodes: HashSet<String> = expand(&r.noderange).into_iter().collect();
            let (hit, rest): (Vec<String>, Vec<String>) =
                nodes.iter().cloned().partition(|n| rule_nodes.contains(n));
            if hit.is_empty() {
                continue;
            }
            if !rest.is_empty() && allows(&r.rule) {
                left = Some(rest);
                continue;
            }
        }
        if r.rule.is_empty() {
            // xcatd: "Impossible line reached"; it denies.
            return Decision::Denied {
                priority: Some(r.priority.clone()),
            };
        }
        return if allows(&r.rule) {
            Decision::Allowed {
                priority: r.priority.clone(),
            }
        } else {
            Decision::Denied {
                priority: Some(r.priority.clone()),
            }
        };
    }
    Decision::Denied { priority: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(p: &str, name: &str, commands: &str, noderange: &str, r: &str) -> Rule {
        Rule {
            priority: p.into(),
            name: name.into(),
            commands: commands.into(),
            noderange: noderange.into(),
            rule: r.into(),
            ..Default::default()
        }
    }

    fn expand(nr: &str) -> Vec<String> {
        match nr {
            "rack1" => vec!["n1".into(), "n2".into()],
            "rack2" => vec!["n3".into(), "n4".into()],
            other => other.split(',').map(String::from).collect(),
        }
    }

    fn defaults() -> Vec<Rule> {
        vec![
            rule("1", "root", "", "", "allow"),
            rule("1.2", "mn", "", "", "trusted"),
            rule("4.4", "", "getpostscript", "", "allow"),
            rule("6", "alice", "nodels,lsdef", "rack1", "allow"),
        ]
    }

    fn ask<'a>(cmd: &'a str, args: &'a [String], nodes: Option<&str>) -> Asked<'a> {
        Asked {
            command: cmd,
            args,
            nodes: nodes.map(expand),
        }
    }

    #[test]
    fn root_may_do_anything_and_nobody_unnamed_may() {
        let rows = defaults();
        let root = Peer {
            name: Some("root"),
            host: None,
        };
        assert!(validate(&rows, &root, &ask("rpower", &[], Some("rack2")), &expand).allowed());
        let anon = Peer::default();
        assert_eq!(
            validate(&rows, &anon, &ask("nodels", &[], None), &expand),
            Decision::Denied { priority: None }
        );
        assert!(validate(&rows, &anon, &ask("getpostscript", &[], None), &expand).allowed());
    }

    #[test]
    fn a_noderange_rule_allows_its_nodes_only() {
        let rows = defaults();
        let alice = Peer {
            name: Some("alice"),
            host: Some("ws1"),
        };
        assert!(validate(&rows, &alice, &ask("nodels", &[], Some("rack1")), &expand).allowed());
        assert!(validate(&rows, &alice, &ask("nodels", &[], Some("n1")), &expand).allowed());
        assert!(!validate(&rows, &alice, &ask("nodels", &[], Some("rack2")), &expand).allowed());
        // Partly outside: the rest finds no row.
        assert!(!validate(&rows, &alice, &ask("nodels", &[], Some("n1,n3")), &expand).allowed());
        // No nodes: a noderange row does not apply.
        assert!(!validate(&rows, &alice, &ask("nodels", &[], None), &expand).allowed());
        assert!(!validate(&rows, &alice, &ask("rpower", &[], Some("rack1")), &expand).allowed());
    }

    #[test]
    fn partial_overlap_goes_on_with_the_rest() {
        let mut rows = defaults();
        rows.push(rule("7", "alice", "nodels", "rack2", "allow"));
        let alice = Peer {
            name: Some("alice"),
            host: None,
        };
        assert!(validate(&rows, &alice, &ask("nodels", &[], Some("n1,n3")), &expand).allowed());
        // A denying row with a partial overlap decides for the whole request.
        let rows = vec![
            rule("1", "bob", "nodels", "rack1", "deny"),
            rule("2", "bob", "", "", "allow"),
        ];
        let bob = Peer {
            name: Some("bob"),
            host: None,
        };
        assert_eq!(
            validate(&rows, &bob, &ask("nodels", &[], Some("n1,n3")), &expand),
            Decision::Denied {
                priority: Some("1".into())
            }
        );
        assert!(validate(&rows, &bob, &ask("nodels", &[], Some("n3")), &expand).allowed());
    }

    #[test]
    fn names_hosts_parameters_and_priorities() {
        let rows = vec![
            Rule {
                priority: "10".into(),
                name: "*".into(),
                host: "ws1".into(),
                parameters: "^-t osimage".into(),
                rule: "allow".into(),
                ..Default::default()
            },
            rule("2", "carol", "", "", "deny"),
            rule("1.5", "carol", "lsdef", "", "allow"),
        ];
        let carol = Peer {
            name: Some("carol"),
            host: Some("ws1"),
        };
        // 1.5 comes before 2 numerically.
        assert!(validate(&rows, &carol, &ask("lsdef", &[], None), &expand).allowed());
        assert!(!validate(&rows, &carol, &ask("nodels", &[], None), &expand).allowed());
        let dave = Peer {
            name: Some("dave"),
            host: Some("ws1"),
        };
        let a = vec!["-t".to_string(), "osimage".to_string()];
        assert!(validate(&rows, &dave, &ask("lsdef", &a, None), &expand).allowed());
        let b = vec!["-t".to_string(), "node".to_string()];
        assert!(!validate(&rows, &dave, &ask("lsdef", &b, None), &expand).allowed());
        let elsewhere = Peer {
            name: Some("dave"),
            host: Some("ws2"),
        };
        assert!(!validate(&rows, &elsewhere, &ask("lsdef", &a, None), &expand).allowed());
    }

    #[test]
    fn trust_comes_from_a_trusted_row() {
        let rows = defaults();
        assert!(trusted(&rows, Some("mn")));
        assert!(!trusted(&rows, Some("root")));
        assert!(!trusted(&rows, None));
    }
}
