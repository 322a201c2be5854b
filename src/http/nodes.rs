//! What nodes fetch besides files: their install template (`/install/autoinst/<node>`, and the
//! `.pre`/`.post` scripts of preseed installs) and the callbacks that drive the install state
//! machine (`/xcat/node/installstatus/<state>`, `/xcat/node/next`, `/xcat/node/getpostscript`),
//! and the statelite lists a booting node needs (`/xcat/node/litefile`, `/xcat/node/litetree`) —
//! the HTTP twins of xCAT's port-3002 requests. The caller is identified by its source address;
//! an install template goes only to its own node (or to this machine, for an admin checking it).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tracing::{info, warn};

use super::handler::{Handler, RequestInfo, Response};
use crate::boot::callback::{self, CallbackError, Callers};
use crate::boot::render::RenderCtx;
use crate::boot::template::{render_install_part, Part, TemplateDirs};
use crate::store::resolver::Resolver;

/// `/install/autoinst/<node>[.pre|.post]`.
pub struct Autoinst {
    pub resolver: Arc<Resolver>,
    pub callers: Arc<Callers>,
    pub installdir: PathBuf,
}

fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback()
}

impl Handler for Autoinst {
    fn handle(&self, req: &RequestInfo) -> Option<Response> {
        let [name] = req.under(&["install", "autoinst"])? else {
            return None;
        };
        if !req.is_read() {
            return Some(Response::method_not_allowed("GET, HEAD"));
        }
        let (node, part) = match self.resolver.membership() {
            Ok(m) if m.nodes.contains(name.as_str()) => (name.as_str(), Part::Main),
            _ => Part::split(name),
        };
        let caller = self.callers.node(req.peer.ip());
        if caller.as_deref() != Some(node) && !is_local(req.peer.ip()) {
            static STRANGER: crate::limits::Throttle =
                crate::limits::Throttle::burst(16, std::time::Duration::from_secs(10));
            if let Some(suppressed) = STRANGER.check() {
                warn!(peer = %req.peer.ip(), node, suppressed, "install template refused: not the node's own address");
            }
            return Some(Response::text(
                403,
                format!(
                    "403 Forbidden: {}'s install template is served to {} only\n",
                    node, node
                ),
            ));
        }
        let dirs = TemplateDirs::new(&self.installdir);
        match render_install_part(
            &self.resolver,
            node,
            &dirs,
            &req.local.ip().to_string(),
            part,
        ) {
            Ok(r) => Some(Response::text(200, r.text)),
            Err(e) => {
                warn!(node, "install template failed: {e}");
                Some(Response::text(500, format!("500 {e}\n")))
            }
        }
    }
}

/// `/xcat/node/…`: the callbacks.
pub struct NodeCallbacks {
    pub resolver: Arc<Resolver>,
    pub callers: Arc<Callers>,
    pub ctx: RenderCtx,
}

impl Handler for NodeCallbacks {
    fn handle(&self, req: &RequestInfo) -> Option<Response> {
        let rest = req.under(&["xcat", "node"])?;
        let Some(node) = self.callers.node(req.peer.ip()) else {
            static STRANGER: crate::limits::Throttle =
                crate::limits::Throttle::burst(16, std::time::Duration::from_secs(10));
            if let Some(suppressed) = STRANGER.check() {
                warn!(peer = %req.peer.ip(), path = %req.decoded_path(), suppressed, "node callback refused: not a node's address");
            }
            return Some(Response::text(
                403,
                format!(
                    "403 Forbidden: {} is not the address of any node\n",
                    req.peer.ip()
                ),
            ));
        };
        // Node requests go through policy as xcatd's do (the default rows allow them).
        let command = match rest {
            [op] if op == "next" => Some("nextdestiny"),
            [op] if op == "getpostscript" || op == "litefile" || op == "litetree" => {
                Some(op.as_str())
            }
            _ => None,
        };
        if let Some(c) = command {
            if !crate::xcatd::server::node_request_allowed(&self.resolver, c, &node) {
                return Some(Response::text(403, "403 Permission denied for request\n"));
            }
        }
        let result = match rest {
            [op] if op == "next" => {
                callback::next(&self.resolver, &self.ctx, &node).map(|cs| format!("{cs}\n"))
            }
            [op] if op == "getpostscript" => callback::getpostscript(&self.resolver, &node),
            [op] if op == "litefile" || op == "litetree" => {
                let text = if op == "litefile" {
                    crate::image::lite::litefile_text(&self.resolver, &node)
                } else {
                    crate::image::lite::litetree_text(&self.resolver, &node)
                };
                text.map_err(|e| match e {
                    crate::image::lite::LiteError::Store(s) => CallbackError::Store(s),
                    other => CallbackError::Refused(other.to_string()),
                })
            }
            [op, state] if op == "installstatus" => {
                callback::set_status(&self.resolver, &node, state).map(|_| format!("{state}\n"))
            }
            _ => return Some(Response::error(404)),
        };
        match result {
            Ok(body) => {
                info!(node = %node, path = %req.decoded_path(), "node callback");
                Some(Response::text(200, body))
            }
            Err(CallbackError::Refused(why)) => {
                warn!(node = %node, path = %req.decoded_path(), "node callback refused: {why}");
                Some(Response::text(400, format!("400 {why}\n")))
            }
            Err(e) => Some(Response::text(500, format!("500 {e}\n"))),
        }
    }
}

/// `/install/postscripts/xcatdsklspost`: the node-side runner shipped with bootherd, when the
/// install tree has none of its own (updatenode fetches it from here).
pub struct ShippedRunner {
    pub installdir: PathBuf,
}

/// Where the shipped runner is: next to the templates (`$BOOTHERD_TEMPLATES/../statelite`), else
/// the source tree's `statelite/`.
pub fn shipped_runner() -> PathBuf {
    let t = crate::boot::template::shipped_root();
    let beside = t
        .parent()
        .map(|p| p.join("statelite").join("xcatdsklspost"));
    match beside {
        Some(p) if p.is_file() => p,
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("statelite")
            .join("xcatdsklspost"),
    }
}

impl Handler for ShippedRunner {
    fn handle(&self, req: &RequestInfo) -> Option<Response> {
        let [name] = req.under(&["install", "postscripts"])? else {
            return None;
        };
        if name != "xcatdsklspost"
            || !req.is_read()
            || self.installdir.join("postscripts").join(name).exists()
        {
            return None;
        }
        let body = std::fs::read(shipped_runner()).ok()?;
        Some(Response::bytes(200, "text/x-shellscript", body))
    }
}

/// `/install/sysclone/…`: captured images hold a golden node's whole filesystem (password
/// hashes, service keys), so only nodes (by source address) and this machine may read them; the
/// file tree serves what passes.
pub struct SyscloneGuard {
    pub callers: Arc<Callers>,
}

impl Handler for SyscloneGuard {
    fn handle(&self, req: &RequestInfo) -> Option<Response> {
        req.under(&["install", "sysclone"])?;
        if is_local(req.peer.ip()) || self.callers.node(req.peer.ip()).is_some() {
            return None;
        }
        warn!(peer = %req.peer.ip(), path = %req.decoded_path(), "sysclone file refused: not a node's address");
        Some(Response::text(
            403,
            format!(
                "403 Forbidden: sysclone images are served to nodes only, and {} is not a node's address\n",
                req.peer.ip()
            ),
        ))
    }
}
