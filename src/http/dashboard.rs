//! The web dashboard at `/dashboard/`: static assets compiled into the binary (no build step on
//! the appliance) and a small JSON API they poll every two seconds for live updates:
//!
//! * `/dashboard/api/overview`: nodes per status, boots in progress (a boot event in the last
//!   ten minutes and no `booted` since), failures (status `failed`, or a last event that is an
//!   error), the services' request counters;
//! * `/dashboard/api/nodes?range=<noderange>`: the nodes of a noderange with their status,
//!   address, MAC and boot state;
//! * `/dashboard/api/node/<node>`: a node's attributes, its lease and its boot timeline;
//! * `POST /dashboard/api/node/<node>/power/<action>`: `rpower` (with an `X-Bootherd` header).
//!
//! Access: from loopback; with `site.dashboardtoken` given as `?token=` (the pages pass it on) or
//! `Authorization: Bearer`; or with an xCAT token from the REST API (`POST /xcatws/tokens`, as
//! `?token=` or `X-Auth-Token`), for which policy applies as to that user's `lsdef` (what they
//! may see) and `rpower` (the power buttons, audited). Anyone else gets 403.

use std::fmt::Write as _;
use std::sync::Arc;

use super::handler::{Handler, RequestInfo, Response};
use crate::store::resolver::Resolver;
use crate::store::Store;

const INDEX: &str = include_str!("../../dashboard/index.html");
const APP: &str = include_str!("../../dashboard/app.js");
const STYLE: &str = include_str!("../../dashboard/style.css");

/// How long after its last event a boot counts as in progress.
const IN_PROGRESS_SECS: u64 = 600;

/// A node's newest event: seq, time, event, detail.
type Last = (u64, String, String, String);

pub struct Dashboard {
    pub store: Arc<Store>,
    pub resolver: Arc<Resolver>,
}

/// A JSON string literal.
fn js(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn js_opt(s: Option<&str>) -> String {
    s.map(js).unwrap_or_else(|| "null".into())
}

/// Decodes `%XX` and `+` of a query value (invalid escapes are kept as they are).
pub fn unescape(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(x) => {
                        out.push(x);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(req: &RequestInfo, key: &str) -> Option<String> {
    req.path.query.as_deref()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| unescape(v))
    })
}

fn json(body: String) -> Response {
    Response::bytes(200, "application/json", body.into_bytes()).header("Cache-Control", "no-store")
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Who is looking at the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    /// This machine (loopback): as root at the console.
    Local,
    /// Someone with `site.dashboardtoken`.
    SiteToken,
    /// An xCAT user, by a token of the REST API (`POST /xcatws/tokens`): policy applies.
    User(String),
}

impl Dashboard {
    fn who(&self, req: &RequestInfo) -> Option<Who> {
        if req.peer.ip().is_loopback() {
            return Some(Who::Local);
        }
        let given = query_param(req, "token")
            .or_else(|| {
                req.header("authorization")
                    .and_then(|a| a.strip_prefix("Bearer "))
                    .map(|t| t.trim().to_string())
            })
            .or_else(|| req.header("x-auth-token").map(|t| t.trim().to_string()))?;
        if let Ok(Some(token)) = self.store.site("dashboardtoken") {
            let token = token.trim();
            if !token.is_empty() && constant_time_eq(given.as_bytes(), token.as_bytes()) {
                return Some(Who::SiteToken);
            }
        }
        crate::xcatd::auth::verify_token(&self.store, &given).map(Who::User)
    }

    /// Whether policy lets an xCAT user see the dashboard's data (as `lsdef` of `nodes`).
    fn may_read(&self, who: &Who, req: &RequestInfo, nodes: Option<&str>) -> bool {
        let Who::User(user) = who else { return true };
        let mut args = vec!["-t".to_string(), "node".to_string()];
        if let Some(n) = nodes {
            args.extend(["-o".to_string(), n.to_string()]);
        }
        crate::xcatd::server::permits(
            &self.resolver,
            user,
            &req.peer.ip().to_string(),
            "lsdef",
            &args,
            nodes,
        )
    }

    fn overview(&self) -> Result<String, crate::store::StoreError> {
        let g = crate::metrics::store_gauges(&self.store)?;
        let total: u64 = g.nodes_by_status.iter().map(|(_, n)| n).sum();
        // The newest event of each key.
        let mut last: std::collections::HashMap<String, Last> = std::collections::HashMap::new();
        for r in self.store.rows("bootevents")? {
            let get = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
            let Ok(seq) = get(1).parse::<u64>() else {
                continue;
            };
            let key = get(0);
            if last.get(&key).is_none_or(|(s, ..)| *s < seq) {
                last.insert(key, (seq, get(2), get(3), get(4)));
            }
        }
        let spec = crate::store::table_spec("nodelist")?;
        let sc = spec.col_index("status").unwrap_or(2);
        let statuses: std::collections::HashMap<String, String> = self
            .store
            .rows("nodelist")?
            .into_iter()
            .filter_map(|r| {
                Some((
                    r.first().cloned().flatten()?,
                    r.get(sc).cloned().flatten().unwrap_or_default(),
                ))
            })
            .collect();
        let now = now_us();
        let mut progress: Vec<(&String, &Last)> = last
            .iter()
            .filter(|(_, (seq, _, ev, detail))| {
                now.saturating_sub(*seq) < IN_PROGRESS_SECS * 1_000_000
                    && !(ev == "status" && detail == "booted")
            })
            .collect();
        progress.sort_by_key(|p| std::cmp::Reverse(p.1 .0));
        let mut failures: Vec<(String, String)> = statuses
            .iter()
            .filter(|(_, s)| s.as_str() == "failed")
            .map(|(n, s)| (n.clone(), format!("status {s}")))
            .collect();
        for (k, (_, _, ev, detail)) in &last {
            if ev == "error" && !failures.iter().any(|(n, _)| n == k) {
                failures.push((k.clone(), detail.clone()));
            }
        }
        failures.sort();
        let mut o = String::from("{");
        let _ = write!(o, "\"nodes\":{total},\"by_status\":[");
        for (i, (st, n)) in g.nodes_by_status.iter().enumerate() {
            let _ = write!(o, "{}[{},{n}]", if i > 0 { "," } else { "" }, js(st));
        }
        o.push_str("],\"in_progress\":[");
        for (i, (node, (_, time, ev, detail))) in progress.iter().enumerate() {
            let _ = write!(
                o,
                "{}{{\"node\":{},\"time\":{},\"event\":{},\"detail\":{},\"status\":{}}}",
                if i > 0 { "," } else { "" },
                js(node),
                js(time),
                js(ev),
                js(detail),
                js(statuses.get(*node).map(String::as_str).unwrap_or(""))
            );
        }
        o.push_str("],\"failures\":[");
        for (i, (node, why)) in failures.iter().enumerate() {
            let _ = write!(
                o,
                "{}{{\"node\":{},\"why\":{}}}",
                if i > 0 { "," } else { "" },
                js(node),
                js(why)
            );
        }
        o.push_str("],\"requests\":{");
        use std::sync::atomic::Ordering::Relaxed;
        for (i, (name, s)) in [
            ("dhcp", &crate::metrics::DHCP),
            ("tftp", &crate::metrics::TFTP),
            ("http", &crate::metrics::HTTP),
            ("nfs", &crate::metrics::NFS),
        ]
        .iter()
        .enumerate()
        {
            let _ = write!(
                o,
                "{}\"{name}\":{}",
                if i > 0 { "," } else { "" },
                s.requests.load(Relaxed)
            );
        }
        o.push_str("}}");
        Ok(o)
    }

    fn nodes(&self, range: &str) -> Result<String, crate::store::StoreError> {
        let _ = self.resolver.catch_up();
        // No range: every node (as nodels with no argument).
        let exp = if range.trim().is_empty() {
            crate::store::noderange::Expansion {
                nodes: self.resolver.membership()?.nodes.iter().cloned().collect(),
                missing: Vec::new(),
            }
        } else {
            match self.resolver.noderange(range.trim(), true) {
                Ok(e) => e,
                Err(e) => {
                    return Ok(format!(
                        "{{\"error\":{},\"nodes\":[],\"total\":0}}",
                        js(&e.to_string())
                    ))
                }
            }
        };
        let mut o = String::from("{");
        if exp.missing.is_empty() {
            o.push_str("\"error\":null");
        } else {
            let _ = write!(
                o,
                "\"error\":{}",
                js(&format!(
                    "Invalid nodes and/or groups in noderange: {}",
                    exp.missing.join(",")
                ))
            );
        }
        o.push_str(",\"nodes\":[");
        let r = &self.resolver;
        for (i, n) in exp.nodes.iter().take(5000).enumerate() {
            let a = |t: &str, c: &str| r.attr(n, t, c).ok().flatten();
            let _ = write!(
                o,
                "{}{{\"node\":{},\"status\":{},\"statustime\":{},\"groups\":{},\"ip\":{},\"mac\":{},\"currstate\":{}}}",
                if i > 0 { "," } else { "" },
                js(n),
                js_opt(a("nodelist", "status").as_deref()),
                js_opt(a("nodelist", "statustime").as_deref()),
                js_opt(a("nodelist", "groups").as_deref()),
                js_opt(a("hosts", "ip").as_deref()),
                js_opt(a("mac", "mac").as_deref()),
                js_opt(a("chain", "currstate").as_deref()),
            );
        }
        let _ = write!(o, "],\"total\":{}}}", exp.nodes.len());
        Ok(o)
    }

    fn node(&self, node: &str) -> Result<Option<String>, crate::store::StoreError> {
        let _ = self.resolver.catch_up();
        let r = &self.resolver;
        if !r.membership()?.nodes.contains(node) {
            return Ok(None);
        }
        let mut o = format!("{{\"node\":{},\"attrs\":[", js(node));
        let mut first = true;
        for (t, c) in [
            ("nodelist", "groups"),
            ("nodelist", "status"),
            ("nodelist", "statustime"),
            ("nodelist", "appstatus"),
            ("hosts", "ip"),
            ("mac", "mac"),
            ("noderes", "netboot"),
            ("nodetype", "os"),
            ("nodetype", "arch"),
            ("nodetype", "provmethod"),
            ("chain", "currstate"),
            ("chain", "chain"),
            ("nodehm", "mgt"),
            ("ipmi", "bmc"),
        ] {
            if let Some(v) = r.attr(node, t, c)? {
                let _ = write!(
                    o,
                    "{}[{},{}]",
                    if first { "" } else { "," },
                    js(&format!("{t}.{c}")),
                    js(&v)
                );
                first = false;
            }
        }
        o.push_str("],\"lease\":");
        let lease = self
            .store
            .rows("dhcpleases")?
            .into_iter()
            .find(|l| l.get(4).cloned().flatten().as_deref() == Some(node));
        match lease {
            Some(l) => {
                let g = |i: usize| l.get(i).cloned().flatten();
                let _ = write!(
                    o,
                    "{{\"ip\":{},\"mac\":{},\"state\":{},\"ends\":{}}}",
                    js_opt(g(0).as_deref()),
                    js_opt(g(1).as_deref()),
                    js_opt(g(7).as_deref()),
                    js_opt(g(6).as_deref())
                );
            }
            None => o.push_str("null"),
        }
        o.push_str(",\"timeline\":[");
        for (i, e) in crate::timeline::events(&self.store, node)?
            .iter()
            .enumerate()
        {
            let _ = write!(
                o,
                "{}{{\"time\":{},\"event\":{},\"detail\":{},\"bytes\":{},\"ms\":{}}}",
                if i > 0 { "," } else { "" },
                js(&e.time),
                js(&e.event),
                js(&e.detail),
                e.bytes
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "null".into()),
                e.ms.map(|b| b.to_string()).unwrap_or_else(|| "null".into()),
            );
        }
        o.push_str("]}");
        Ok(Some(o))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the node page's power buttons may ask (`rpower <node> <action>`).
const POWER_ACTIONS: &[&str] = &["stat", "on", "off", "reset", "boot", "wake"];

impl Dashboard {
    /// `POST /dashboard/api/node/<node>/power/<action>`: runs `rpower` (this binary, on this
    /// store) and answers its output. The custom `X-Bootherd` header the page sends makes a
    /// cross-site form or script unable to post here (it would need a CORS preflight, which is
    /// never answered).
    fn power(&self, req: &RequestInfo, who: &Who, node: &str, action: &str) -> Response {
        if req.method != "POST" {
            return Response::method_not_allowed("POST");
        }
        if req.header("x-bootherd").is_none() {
            return Response::text(
                403,
                "403 Forbidden: power actions need the X-Bootherd header\n",
            );
        }
        if !POWER_ACTIONS.contains(&action) {
            return Response::error(404);
        }
        match self.resolver.membership() {
            Ok(m) if m.nodes.contains(node) => {}
            Ok(_) => return Response::error(404),
            Err(e) => {
                tracing::warn!("dashboard: {e}");
                return Response::error(500);
            }
        }
        // An xCAT user: rpower as that user, through policy and the audit log, in this process.
        if let Who::User(user) = who {
            return self.power_as(req, user, node, action);
        }
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("dashboard: cannot find this executable: {e}");
                return Response::error(500);
            }
        };
        let out = std::process::Command::new(exe)
            .arg("--db")
            .arg(
                crate::daemon::DB_URL
                    .get()
                    .cloned()
                    .unwrap_or_else(|| self.store.describe()),
            )
            .args(["rpower", node, action])
            .stdin(std::process::Stdio::null())
            .output();
        match out {
            Ok(o) => {
                tracing::info!(node, action, peer = %req.peer.ip(), "dashboard: rpower");
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                json(format!(
                    "{{\"ok\":{},\"output\":{}}}",
                    o.status.success(),
                    js(text.trim_end())
                ))
            }
            Err(e) => {
                tracing::warn!("dashboard: cannot run rpower: {e}");
                Response::error(500)
            }
        }
    }
}

impl Dashboard {
    fn power_as(&self, req: &RequestInfo, user: &str, node: &str, action: &str) -> Response {
        #[derive(Clone, Default)]
        struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);
        impl crate::cli::request::Sink for Capture {
            fn out_bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
                if let Ok(mut g) = self.0.lock() {
                    g.extend_from_slice(b);
                }
                Ok(())
            }
            fn err_bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
                self.out_bytes(b)
            }
        }
        let rules = crate::xcatd::server::rules_from(&self.resolver);
        let host = req.peer.ip().to_string();
        let args = vec![node.to_string(), action.to_string()];
        let wire = args.clone();
        let request = match crate::xcatd::server::authorize(
            &self.store,
            &self.resolver,
            &rules,
            crate::xcatd::server::Asking {
                peername: Some(user),
                user,
                host: &host,
                command: "rpower",
                wire_args: &wire,
                args,
                noderange: Some(node.to_string()),
                clienttype: "dashboard".into(),
            },
        ) {
            Ok(r) => r,
            Err(why) => return Response::text(403, format!("403 {why}\n")),
        };
        let db = crate::daemon::DB_URL
            .get()
            .cloned()
            .unwrap_or_else(|| self.store.describe());
        let cap = Capture::default();
        let code = crate::cli::handle_remote(request, &db, Box::new(cap.clone()));
        let text = cap
            .0
            .lock()
            .map(|g| String::from_utf8_lossy(&g).into_owned())
            .unwrap_or_default();
        tracing::info!(node, action, user, peer = %req.peer.ip(), "dashboard: rpower");
        json(format!(
            "{{\"ok\":{},\"output\":{}}}",
            code == std::process::ExitCode::SUCCESS,
            js(text.trim_end())
        ))
    }
}

impl Handler for Dashboard {
    fn handle(&self, req: &RequestInfo) -> Option<Response> {
        let rest = req.under(&["dashboard"])?;
        let Some(who) = self.who(req) else {
            return Some(Response::text(
                403,
                "403 Forbidden: the dashboard answers loopback, ?token=<site.dashboardtoken>, or an xCAT token (POST /xcatws/tokens)\n",
            ));
        };
        if let [a, b, n, p, action] = rest {
            if a == "api" && b == "node" && p == "power" {
                return Some(self.power(req, &who, n, action));
            }
        }
        // An xCAT user sees what policy lets them list.
        let denied = || Response::text(403, "403 Permission denied for request\n");
        match rest {
            [a, b] if a == "api" && b == "overview" && !self.may_read(&who, req, None) => {
                return Some(denied())
            }
            [a, b] if a == "api" && b == "nodes" => {
                let range = query_param(req, "range").filter(|r| !r.is_empty());
                if !self.may_read(&who, req, Some(range.as_deref().unwrap_or("all"))) {
                    return Some(denied());
                }
            }
            [a, b, n] if a == "api" && b == "node" && !self.may_read(&who, req, Some(n)) => {
                return Some(denied())
            }
            _ => {}
        }
        if !req.is_read() {
            return Some(Response::method_not_allowed("GET, HEAD"));
        }
        let fail = |e: crate::store::StoreError| {
            tracing::warn!("dashboard: {e}");
            Response::error(500)
        };
        let r = match rest {
            [] => {
                if !req.path.trailing_slash {
                    let q = req
                        .path
                        .query
                        .as_deref()
                        .map(|q| format!("?{q}"))
                        .unwrap_or_default();
                    return Some(Response::redirect(301, &format!("/dashboard/{q}")));
                }
                Response::bytes(200, "text/html; charset=utf-8", INDEX)
            }
            [f] if f == "app.js" => Response::bytes(200, "text/javascript; charset=utf-8", APP),
            [f] if f == "style.css" => Response::bytes(200, "text/css; charset=utf-8", STYLE),
            [a, b] if a == "api" && b == "overview" => match self.overview() {
                Ok(j) => json(j),
                Err(e) => fail(e),
            },
            [a, b] if a == "api" && b == "nodes" => {
                match self.nodes(&query_param(req, "range").unwrap_or_default()) {
                    Ok(j) => json(j),
                    Err(e) => fail(e),
                }
            }
            [a, b, n] if a == "api" && b == "node" => match self.node(n) {
                Ok(Some(j)) => json(j),
                Ok(None) => Response::error(404),
                Err(e) => fail(e),
            },
            _ => Response::error(404),
        };
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_and_queries() {
        assert_eq!(js("a\"b\\c\n<"), "\"a\\\"b\\\\c\\n\\u003c\"");
        assert_eq!(unescape("n%5B1-3%5D%2Cgrp+x"), "n[1-3],grp x");
        assert_eq!(unescape("100%"), "100%");
        assert_eq!(unescape("%zz%4"), "%zz%4");
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
    }
}
