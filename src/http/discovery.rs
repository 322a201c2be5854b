//! What genesis (the discovery image) asks over HTTP, the caller known by its source address:
//!
//! * `POST /xcat/discovery/findme` — the machine's report ([`crate::discovery::report`]). Answer
//!   `restart <node>` when it was placed (genesis then renews its DHCP lease and comes back as
//!   the node), or `undefined <reason>` (genesis waits and reports again).
//! * `GET /xcat/discovery/destiny` — xCAT's getdestiny: `discover` for a machine that is not a
//!   node; for a node its current chain step (`runcmd=bmcsetup`, `shell`, `standby`,
//!   `install …`, `boot`, …), starting the chain when no step is current; `standby` without a chain.
//!   The node's status follows (discovering, configuring, standingby, installing, …).
//! * `GET /xcat/discovery/bmcsetup` — the BMC settings (`key=value` lines), only to the node's
//!   own address and only while its current step is `runcmd=bmcsetup`; a password is generated and
//!   stored when none is set and `site.genpasswords` says so.

use std::sync::Arc;

use tracing::{info, warn};

use super::handler::{Handler, RequestInfo, Response};
use crate::boot::callback::{self, Callers};
use crate::boot::render::RenderCtx;
use crate::discovery::matcher::{self, Outcome, PortLocator};
use crate::discovery::report::Report;
use crate::store::resolver::Resolver;
use crate::store::Store;

pub struct Discovery {
    pub store: Arc<Store>,
    pub resolver: Arc<Resolver>,
    pub callers: Arc<Callers>,
    pub ctx: RenderCtx,
    pub ports: Arc<dyn PortLocator + Send + Sync>,
}

/// The status a node gets for the destiny genesis is handed (xCAT's getdestiny mapping).
fn status_for(destiny: &str) -> &'static str {
    match destiny.split([' ', '=']).next().unwrap_or("") {
        "discover" => "discovering",
        "runcmd" => "configuring",
        "standby" => "standingby",
        "install" => "installing",
        "netboot" | "statelite" => "netbooting",
        "shell" => "shell",
        _ => "booting",
    }
}

impl Discovery {
    fn findme(&self, req: &RequestInfo) -> Response {
        let rep = match Report::parse(&req.body) {
            Ok(r) => r,
            Err(e) => {
                static BAD: crate::limits::Throttle = crate::limits::Throttle::new();
                if let Some(suppressed) = BAD.check() {
                    warn!(peer = %req.peer.ip(), suppressed, "findme refused: {e}");
                }
                return Response::text(400, format!("400 {e}\n"));
            }
        };
        let outcome =
            match matcher::place(&self.store, &rep, self.ports.as_ref(), Some(req.peer.ip())) {
                Ok(o) => o,
                Err(e) => {
                    warn!(uuid = %rep.uuid, "findme: {e}");
                    return Response::text(500, format!("500 {e}\n"));
                }
            };
        self.resolver.invalidate_all();
        match outcome {
            Outcome::Matched { node, method, .. } => {
                info!(uuid = %rep.uuid, peer = %req.peer.ip(), node = %node, method = method.as_str(), "discovered");
                crate::timeline::record_with(|| {
                    crate::timeline::Event::now(
                        crate::timeline::Who::Node(node.clone()),
                        crate::timeline::Kind::Discovery,
                        format!(
                            "findme: discovered by {} (uuid {})",
                            method.as_str(),
                            rep.uuid
                        ),
                    )
                    .peer(req.peer.ip())
                });
                Response::text(200, format!("restart {node}\n"))
            }
            Outcome::Undefined { reason, .. } => {
                static UNDEF: crate::limits::Throttle =
                    crate::limits::Throttle::every(std::time::Duration::from_secs(1));
                if let Some(suppressed) = UNDEF.check() {
                    info!(uuid = %rep.uuid, peer = %req.peer.ip(), suppressed, "undefined machine: {reason}");
                }
                crate::timeline::record_with(|| {
                    crate::timeline::Event::now(
                        crate::timeline::Who::Ip(req.peer.ip()),
                        crate::timeline::Kind::Discovery,
                        format!("findme: undefined machine: {reason}"),
                    )
                    .peer(req.peer.ip())
                });
                Response::text(200, format!("undefined {reason}\n"))
            }
        }
    }

    fn destiny(&self, req: &RequestInfo) -> Response {
        let Some(node) = self.callers.node(req.peer.ip()) else {
            return Response::text(200, "discover\n");
        };
        if !crate::xcatd::server::node_request_allowed(&self.resolver, "getdestiny", &node) {
            return Response::text(403, "403 Permission denied for request\n");
        }
        let r = &self.resolver;
        let current = r
            .attr(&node, "chain", "currstate")
            .ok()
            .flatten()
            .filter(|s| !s.trim().is_empty());
        let destiny = match current {
            Some(cs) => cs,
            None => match callback::next(r, &self.ctx, &node) {
                Ok(cs) => cs,
                Err(_) => "standby".to_string(),
            },
        };
        if let Err(e) = callback::set_status(r, &node, status_for(&destiny)) {
            warn!(node = %node, "getdestiny: status not recorded: {e}");
        }
        // The node's next request must see what this one wrote, without waiting for the
        // change follower.
        r.invalidate("chain");
        r.invalidate("nodelist");
        info!(node = %node, destiny = %destiny, "getdestiny");
        crate::timeline::record_with(|| {
            crate::timeline::Event::now(
                crate::timeline::Who::Node(node.clone()),
                crate::timeline::Kind::Discovery,
                format!("getdestiny: {destiny}"),
            )
            .peer(req.peer.ip())
        });
        Response::text(200, format!("{destiny}\n"))
    }

    fn bmcsetup(&self, req: &RequestInfo) -> Response {
        let Some(node) = self.callers.node(req.peer.ip()) else {
            warn!(peer = %req.peer.ip(), "BMC settings refused: not a node's address");
            return Response::text(
                403,
                format!(
                    "403 Forbidden: {} is not the address of any node\n",
                    req.peer.ip()
                ),
            );
        };
        let fresh = Resolver::new(self.store.clone());
        if !crate::xcatd::server::node_request_allowed(&fresh, "getbmcconfig", &node) {
            return Response::text(403, "403 Permission denied for request\n");
        }
        match crate::discovery::bmc::settings(&self.store, &fresh, &node) {
            Ok(s) => {
                info!(node = %node, "BMC settings sent");
                Response::text(200, s)
            }
            Err(e) => {
                warn!(node = %node, "BMC settings refused: {e}");
                Response::text(403, format!("403 {e}\n"))
            }
        }
    }
}

impl Handler for Discovery {
    fn handle(&self, req: &RequestInfo) -> Option<Response> {
        let rest = req.under(&["xcat", "discovery"])?;
        Some(match (req.method.as_str(), rest) {
            ("POST", [op]) if op == "findme" => self.findme(req),
            ("GET", [op]) if op == "destiny" => self.destiny(req),
            ("GET", [op]) if op == "bmcsetup" => self.bmcsetup(req),
            (_, [op]) if op == "findme" => Response::method_not_allowed("POST"),
            (_, [op]) if op == "destiny" || op == "bmcsetup" => Response::method_not_allowed("GET"),
            _ => Response::error(404),
        })
    }
}
