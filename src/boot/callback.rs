//! What a node may tell its master while it installs and boots (xCAT's port-3002 protocol, and
//! the same operations over HTTP): `installstatus <state>`, `next`, `getpostscript`. The caller is
//! identified by its source address; unknown callers and invalid states are refused.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::nodeset::{apply_plans, next_plans, NodesetError};
use super::render::BootIndex;
use super::render::RenderCtx;
use crate::store::resolver::Resolver;
use crate::store::{Audit, StoreError};

/// `nodelist.status` values (xCAT's GlobalDef).
pub const STATUS_VALUES: &[&str] = &[
    "defined",
    "discovering",
    "discovered",
    "configuring",
    "configured",
    "standingby",
    "shell",
    "installing",
    "installed",
    "netbooting",
    "booting",
    "postbooting",
    "booted",
    "alive",
    "unreachable",
    "powering-on",
    "powering-off",
    "bmcready",
    "failed",
];

/// A request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Next,
    InstallStatus(String),
    GetPostscript,
}

impl Request {
    /// Parses one line as a node sends it.
    pub fn parse(line: &str) -> Result<Request, String> {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("next") => Ok(Request::Next),
            Some("getpostscript") => Ok(Request::GetPostscript),
            Some("installstatus") => match words.next() {
                Some(st) => Ok(Request::InstallStatus(st.to_string())),
                None => Err("installstatus needs a state".into()),
            },
            Some(other) => Err(format!("'{other}' is not a request this server answers (next, installstatus <state>, getpostscript)")),
            None => Err("empty request".into()),
        }
    }
}

/// Why a callback was refused.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Records `state` as the node's status (`nodelist.status`, `statustime`), unless
/// `site.nodestatus` is `n`/`no`.
pub fn set_status(r: &Resolver, node: &str, state: &str) -> Result<(), CallbackError> {
    if !STATUS_VALUES.contains(&state) {
        return Err(CallbackError::Refused(format!(
            "'{state}' is not a node status ({})",
            STATUS_VALUES.join(", ")
        )));
    }
    if r.site("nodestatus")?
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "n" | "no" | "0"))
    {
        return Ok(());
    }
    let now = crate::store::now_xcat();
    r.store().write(None, |tx| {
        tx.set(
            "nodelist",
            &[node],
            &[("status", Some(state)), ("statustime", Some(&now))],
        )
    })?;
    crate::timeline::record_with(|| {
        crate::timeline::Event::now(
            crate::timeline::Who::Node(node.to_string()),
            crate::timeline::Kind::Status,
            state,
        )
    });
    Ok(())
}

/// Moves `node` one step along its chain; returns its new state.
pub fn next(r: &Resolver, ctx: &RenderCtx, node: &str) -> Result<String, CallbackError> {
    let (plans, none) = next_plans(r, &[node.to_string()])?;
    if !none.is_empty() {
        return Err(CallbackError::Refused(format!(
            "{node} has no chain to follow"
        )));
    }
    let audit = Audit {
        command: "nodeset".into(),
        noderange: node.into(),
        args: "next (from the node)".into(),
    };
    match apply_plans(r, ctx, &plans, &audit) {
        Ok(done) => {
            let cs = done
                .into_iter()
                .next()
                .map(|(_, cs)| cs)
                .unwrap_or_default();
            crate::timeline::record_with(|| {
                crate::timeline::Event::now(
                    crate::timeline::Who::Node(node.to_string()),
                    crate::timeline::Kind::Status,
                    format!("next: {cs}"),
                )
            });
            Ok(cs)
        }
        Err(NodesetError::Refused(p)) => Err(CallbackError::Refused(p.join("; "))),
        Err(NodesetError::BadState(e)) => Err(CallbackError::Refused(e)),
        Err(NodesetError::Store(e)) => Err(e.into()),
    }
}

/// The node's mypostscript, as `getpostscript` returns it: the admin's template
/// (`<installdir>/postscripts/mypostscript.tmpl`) or the shipped one.
pub fn getpostscript(r: &Resolver, node: &str) -> Result<String, CallbackError> {
    let installdir = r.site("installdir")?.unwrap_or_else(|| "/install".into());
    let ip = r.attr(node, "hosts", "ip")?.and_then(|s| s.parse().ok());
    let master = r.site_master()?;
    let server = super::render::my_ip_for(ip, None, master.as_deref());
    let (file, text) = super::postscripts::mypostscript_template(std::path::Path::new(&installdir))
        .map_err(|e| CallbackError::Refused(e.to_string()))?;
    let out = super::postscripts::render_mypostscript_from(r, node, &server, &text, &file)
        .map_err(|e| CallbackError::Refused(e.to_string()));
    crate::timeline::record_with(|| {
        crate::timeline::Event::now(
            crate::timeline::Who::Node(node.to_string()),
            match &out {
                Ok(_) => crate::timeline::Kind::Postscript,
                Err(_) => crate::timeline::Kind::Error,
            },
            match &out {
                Ok(_) => "getpostscript: mypostscript sent".to_string(),
                Err(e) => format!("getpostscript: {e}"),
            },
        )
    });
    out
}

/// Finds the node behind a source address, with the index cached per resolver generation.
pub struct Callers {
    resolver: Arc<Resolver>,
    index: Mutex<Option<(u64, Arc<BootIndex>)>>,
}

impl Callers {
    pub fn new(resolver: Arc<Resolver>) -> Callers {
        Callers {
            resolver,
            index: Mutex::new(None),
        }
    }

    /// The node whose address is `ip`.
    pub fn node(&self, ip: IpAddr) -> Option<String> {
        let IpAddr::V4(v4) = ip else { return None };
        let gen = self.resolver.generation();
        let mut slot = self.index.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = slot
            .as_ref()
            .filter(|(g, _)| *g == gen)
            .map(|(_, i)| i.clone());
        let idx = match fresh {
            Some(i) => i,
            None => {
                let i = Arc::new(BootIndex::build(&self.resolver).ok()?);
                *slot = Some((gen, i.clone()));
                i
            }
        };
        idx.node_by_ip(v4).map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        assert_eq!(Request::parse("next\n"), Ok(Request::Next));
        assert_eq!(
            Request::parse("installstatus installing"),
            Ok(Request::InstallStatus("installing".into()))
        );
        assert_eq!(Request::parse("getpostscript"), Ok(Request::GetPostscript));
        assert!(Request::parse("rm -rf /").unwrap_err().contains("'rm'"));
        assert!(Request::parse("installstatus").is_err());
    }
}
