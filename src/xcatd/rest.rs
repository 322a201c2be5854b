//! xCAT's REST API (`xCAT-server/xCAT-wsapi/xcatws.cgi`) on HTTPS: the `/xcatws/…` resources turn
//! into the same admin commands the request port runs (`lsdef`, `chdef`, `rpower`, `nodeset`, …),
//! under the same authentication, policy and audit (client type `ws`), and their output into
//! xcatws's JSON shapes. Users log in as xcatws takes them: `?userName=&userPW=` (the `passwd`
//! row `key=xcat`), or a token from `POST /xcatws/tokens` in the `X-Auth-Token` header.
//!
//! Status codes as xcatws: 200, 201 for a POST; 401 `{"error":"Authentication failure"}` for a
//! failed login or a request policy refuses; 403 with the command's errors when it failed;
//! 404 `Unsupported resource.`; 400 for a body that is not a JSON object.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use super::server::{self, Asking, Ctx};
use crate::cli::request::Sink;

/// What a request runs with.
#[derive(Clone)]
struct Ws {
    ctx: Arc<Ctx>,
    peer: SocketAddr,
}

type Reply = Response;

fn json_reply(code: StatusCode, v: Value) -> Reply {
    let mut body = v.to_string();
    body.push('\n');
    (
        code,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// xcatws's `error()`: `{"error": msg, "errorcode": "2"}`.
fn error(code: StatusCode, msg: &str) -> Reply {
    json_reply(code, json!({"error": msg, "errorcode": "2"}))
}

fn empty(method: &Method) -> Reply {
    let code = if method == Method::POST {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (
        code,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
    )
        .into_response()
}

/// Binds the REST port (`site.xcatwsport`, default 443).
pub async fn bind(port: u16) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    let l = TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, port))
        .await
        .with_context(|| format!("cannot listen on TCP port {port} for the REST API (site.xcatwsport; `serve --no-rest` turns it off)"))?;
    info!(port, "REST API listening (HTTPS, /xcatws)");
    Ok(l)
}

pub async fn serve(listener: TcpListener, ctx: Arc<Ctx>, mut shutdown: watch::Receiver<bool>) {
    let limit = Arc::new(tokio::sync::Semaphore::new(256));
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!("REST accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let acceptor = ctx.acceptor();
            let tls = match tokio::time::timeout(
                std::time::Duration::from_secs(10),
                acceptor.accept(tcp),
            )
            .await
            {
                Ok(Ok(t)) => t,
                _ => return,
            };
            let app = router(Ws { ctx, peer });
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(30))
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(600), conn).await;
            drop(permit);
        });
    }
}

fn router(ws: Ws) -> Router {
    Router::new()
        .route("/xcatws/tokens", post(tokens))
        .route("/xcatws/nodes", get(nodes_list))
        .route(
            "/xcatws/nodes/{nr}",
            get(node_def).put(node_def).post(node_def).delete(node_def),
        )
        .route("/xcatws/nodes/{nr}/attrs/{attrs}", get(node_attrs))
        .route(
            "/xcatws/nodes/{nr}/{action}",
            get(node_action).put(node_action),
        )
        .route("/xcatws/globalconf", get(globalconf))
        .route("/xcatws/tables/{table}/rows", get(table_rows))
        .route("/xcatws/{kind}", get(kind_list))
        .route(
            "/xcatws/{kind}/{name}",
            get(kind_def).put(kind_def).post(kind_def).delete(kind_def),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, "Unsupported resource.") })
        .with_state(ws)
}

/// The body as xcatws reads it: a JSON object, or nothing.
fn body_object(body: &Bytes) -> Result<Map<String, Value>, Reply> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "put or post data must be a json object (hash/dict).",
        )),
        Err(e) => Err(error(StatusCode::BAD_REQUEST, &e.to_string())),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Who asks: a token (`X-Auth-Token`) or `userName`/`userPW`.
async fn authenticate(
    ws: &Ws,
    headers: &HeaderMap,
    q: &BTreeMap<String, String>,
) -> Result<String, Reply> {
    let store = ws.ctx.store.clone();
    let token = headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let login = match (q.get("userName"), q.get("userPW")) {
        (Some(u), Some(p)) => Some((u.clone(), p.clone())),
        _ => None,
    };
    let who = tokio::task::spawn_blocking(move || {
        if let Some(t) = token {
            return super::auth::verify_token(&store, &t);
        }
        let (u, p) = login?;
        super::auth::check_password(&store, &u, &p).then_some(u)
    })
    .await
    .ok()
    .flatten();
    who.ok_or_else(|| error(StatusCode::UNAUTHORIZED, "Authentication failure"))
}

/// What a command printed.
struct Captured {
    code: i32,
    out: String,
    err: Vec<String>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<(Vec<u8>, Vec<u8>)>>);

impl Sink for Capture {
    fn out_bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .0
            .extend_from_slice(b);
        Ok(())
    }
    fn err_bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .1
            .extend_from_slice(b);
        Ok(())
    }
}

/// Runs `command args` for `user` through policy, audit and the command code.
async fn run(ws: &Ws, user: &str, command: &str, args: Vec<String>) -> Result<Captured, Reply> {
    let (ctx, user, command) = (ws.ctx.clone(), user.to_string(), command.to_string());
    let ip = ws.peer.ip();
    let r = tokio::task::spawn_blocking(move || -> Result<Captured, String> {
        let _ = ctx.resolver.catch_up();
        let host = server::peer_host(&ctx, ip);
        let rules = server::policy_rules(&ctx.store);
        let wire = args.clone();
        let request = server::authorize(
            &ctx.store,
            &ctx.resolver,
            &rules,
            Asking {
                peername: Some(&user),
                user: &user,
                host: &host,
                command: &command,
                wire_args: &wire,
                args,
                noderange: None,
                clienttype: "ws".into(),
            },
        )?;
        let cap = Capture::default();
        let code = crate::cli::handle_remote(request, &ctx.db_url, Box::new(cap.clone()));
        let (o, e) = cap.0.lock().map(|g| g.clone()).unwrap_or_default();
        let out = String::from_utf8_lossy(&o).into_owned();
        let code = server::exit_value(code);
        // xcatws lists the errors as `msg` and per node as `node: msg`; per-node errors some
        // commands print with their output count too when the command failed.
        let mut err: Vec<String> = String::from_utf8_lossy(&e).lines().map(ws_error).collect();
        if code != 0 {
            err.extend(
                out.lines()
                    .filter(|l| l.contains(": Error: "))
                    .map(ws_error),
            );
        }
        Ok(Captured { code, out, err })
    })
    .await
    .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "the command failed"))?;
    match r {
        Ok(c) if c.code == 0 => Ok(c),
        // xcatws: the command's errors, 403.
        Ok(c) => Err(json_reply(
            StatusCode::FORBIDDEN,
            json!({"error": if c.err.is_empty() { vec!["Failed with unknown reason.".to_string()] } else { c.err.clone() }, "errorcode": c.code.to_string()}),
        )),
        // A refused request is an authentication failure to xcatws.
        Err(_) => Err(error(StatusCode::UNAUTHORIZED, "Authentication failure")),
    }
}

/// An error line as xcatws shows it: `Error: x` → `x`, `n1: Error: x` → `n1: x`.
fn ws_error(l: &str) -> String {
    if let Some(e) = l.strip_prefix("Error: ") {
        return e.to_string();
    }
    match l.split_once(": Error: ") {
        Some((node, e)) if !node.contains(' ') => format!("{node}: {e}"),
        _ => l.to_string(),
    }
}

/// `lsdef -t T` → the object names.
fn names(out: &str) -> Value {
    Value::Array(
        out.lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| !n.is_empty())
            .map(|n| Value::String(n.to_string()))
            .collect(),
    )
}

/// `lsdef … -l` → `{name: {attr: value}}` (xcatws's `defout`).
fn defout(out: &str) -> Value {
    let mut all = Map::new();
    let mut cur: Option<String> = None;
    for l in out.lines() {
        if let Some(rest) = l.strip_prefix("Object name:") {
            cur = rest.split_whitespace().next().map(String::from);
            if let Some(n) = &cur {
                all.entry(n.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
            }
            continue;
        }
        let (Some(n), Some((k, v))) = (&cur, l.trim_start().split_once('=')) else {
            continue;
        };
        if let Some(Value::Object(m)) = all.get_mut(n) {
            m.insert(k.to_string(), Value::String(v.to_string()));
        }
    }
    Value::Object(all)
}

/// `node: value` lines → `{node: {resource: value}}`; `node: desc: value` → `{node: {desc:
/// value}}` (xcatws's `actionout`).
fn actionout(out: &str, resource: &str) -> Value {
    let mut all = Map::new();
    for l in out.lines() {
        let Some((node, rest)) = l.split_once(": ") else {
            continue;
        };
        let entry = all
            .entry(node.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(m) = entry else { continue };
        match (resource, rest.split_once(": ")) {
            ("inventory" | "vitals", Some((desc, v))) => {
                m.insert(desc.trim().to_string(), Value::String(v.trim().to_string()));
            }
            _ => {
                m.insert(resource.to_string(), Value::String(rest.trim().to_string()));
            }
        }
    }
    Value::Object(all)
}

type Q = Query<BTreeMap<String, String>>;

async fn tokens(State(ws): State<Ws>, Query(q): Q, body: Bytes) -> Reply {
    let m = match body_object(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let user = m
        .get("userName")
        .map(text)
        .or_else(|| q.get("userName").cloned());
    let pw = m
        .get("userPW")
        .map(text)
        .or_else(|| q.get("userPW").cloned());
    let (Some(user), Some(pw)) = (user, pw) else {
        return error(StatusCode::UNAUTHORIZED, "Authentication failure");
    };
    let store = ws.ctx.store.clone();
    let r = tokio::task::spawn_blocking(move || {
        if !super::auth::check_password(&store, &user, &pw) {
            return None;
        }
        super::auth::new_token(&store, &user).ok()
    })
    .await
    .ok()
    .flatten();
    match r {
        Some((id, expire)) => json_reply(
            StatusCode::CREATED,
            json!({"token": {"id": id, "expire": expire}}),
        ),
        None => error(StatusCode::UNAUTHORIZED, "Authentication failure"),
    }
}

async fn nodes_list(State(ws): State<Ws>, headers: HeaderMap, Query(q): Q) -> Reply {
    kind_list(State(ws), headers, Path("nodes".to_string()), Query(q)).await
}

/// The object type of a collection resource.
fn objtype(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "nodes" => "node",
        "groups" => "group",
        "osimages" => "osimage",
        "networks" => "network",
        "policy" => "policy",
        _ => return None,
    })
}

async fn kind_list(
    State(ws): State<Ws>,
    headers: HeaderMap,
    Path(kind): Path<String>,
    Query(q): Q,
) -> Reply {
    let Some(t) = objtype(&kind) else {
        return error(StatusCode::NOT_FOUND, "Unsupported resource.");
    };
    let user = match authenticate(&ws, &headers, &q).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match run(&ws, &user, "lsdef", vec!["-t".into(), t.into()]).await {
        Ok(c) => json_reply(StatusCode::OK, names(&c.out)),
        Err(r) => r,
    }
}

async fn node_def(
    State(ws): State<Ws>,
    method: Method,
    headers: HeaderMap,
    Path(nr): Path<String>,
    Query(q): Q,
    body: Bytes,
) -> Reply {
    def(ws, method, headers, "node", nr, q, body).await
}

async fn kind_def(
    State(ws): State<Ws>,
    method: Method,
    headers: HeaderMap,
    Path((kind, name)): Path<(String, String)>,
    Query(q): Q,
    body: Bytes,
) -> Reply {
    let Some(t) = objtype(&kind) else {
        return error(StatusCode::NOT_FOUND, "Unsupported resource.");
    };
    def(ws, method, headers, t, name, q, body).await
}

/// xcatws's `defhdl`: GET `lsdef`, PUT `chdef`, POST `mkdef`, DELETE `rmdef`.
async fn def(
    ws: Ws,
    method: Method,
    headers: HeaderMap,
    t: &str,
    name: String,
    q: BTreeMap<String, String>,
    body: Bytes,
) -> Reply {
    let user = match authenticate(&ws, &headers, &q).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let mut args: Vec<String> = vec!["-t".into(), t.into()];
    if name == "ALLRESOURCES" {
        if method != Method::GET {
            return error(
                StatusCode::NOT_FOUND,
                "Keyword ALLRESOURCES is only supported for GET Action.",
            );
        }
        args.push("-l".into());
    } else {
        args.extend(["-o".to_string(), name]);
    }
    let cmd = match method {
        Method::GET => "lsdef",
        Method::PUT => "chdef",
        Method::POST => "mkdef",
        Method::DELETE => "rmdef",
        _ => {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                "request method is not supported",
            )
        }
    };
    if method == Method::PUT || method == Method::POST {
        let m = match body_object(&body) {
            Ok(m) => m,
            Err(r) => return r,
        };
        if m.is_empty() {
            return error(
                StatusCode::BAD_REQUEST,
                "No Field and Value map was supplied.",
            );
        }
        for (k, v) in &m {
            if k == "options" {
                if let Value::Object(opts) = v {
                    for (ok, ov) in opts {
                        if matches!(ok.as_str(), "-o" | "-l" | "-t") {
                            continue;
                        }
                        args.push(ok.clone());
                        let val = text(ov);
                        if !val.is_empty() {
                            args.push(val);
                        }
                    }
                }
                continue;
            }
            args.push(format!("{k}={}", text(v)));
        }
    }
    match run(&ws, &user, cmd, args).await {
        Ok(c) if method == Method::GET => json_reply(StatusCode::OK, defout(&c.out)),
        Ok(_) => empty(&method),
        Err(r) => r,
    }
}

async fn node_attrs(
    State(ws): State<Ws>,
    headers: HeaderMap,
    Path((nr, attrs)): Path<(String, String)>,
    Query(q): Q,
) -> Reply {
    let user = match authenticate(&ws, &headers, &q).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let args = vec![
        "-t".into(),
        "node".into(),
        "-o".into(),
        nr,
        "-i".into(),
        attrs,
    ];
    match run(&ws, &user, "lsdef", args).await {
        Ok(c) => json_reply(StatusCode::OK, defout(&c.out)),
        Err(r) => r,
    }
}

async fn node_action(
    State(ws): State<Ws>,
    method: Method,
    headers: HeaderMap,
    Path((nr, action)): Path<(String, String)>,
    Query(q): Q,
    body: Bytes,
) -> Reply {
    let user = match authenticate(&ws, &headers, &q).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let m = match body_object(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let put = method == Method::PUT;
    let need = |key: &str| -> Result<String, Reply> {
        m.get(key)
            .map(text)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| error(StatusCode::BAD_REQUEST, "Lack of operation data."))
    };
    let (cmd, args): (&str, Vec<String>) = match (action.as_str(), put) {
        ("power", false) => ("rpower", vec![nr, "stat".into()]),
        ("power", true) => match need("action") {
            Ok(a) => ("rpower", vec![nr, a]),
            Err(r) => return r,
        },
        ("bootstate", false) => ("nodeset", vec![nr, "stat".into()]),
        ("bootstate", true) => {
            if let Some(a) = m.get("action").map(text) {
                ("nodeset", vec![nr, a])
            } else if let Some(img) = m.get("osimage").map(text) {
                ("nodeset", vec![nr, format!("osimage={img}")])
            } else if let Some(st) = m.get("state").map(text) {
                ("nodeset", vec![nr, st])
            } else {
                return error(StatusCode::BAD_REQUEST, "Lack of operation data.");
            }
        }
        ("nextboot", false) => ("rsetboot", vec![nr, "stat".into()]),
        ("nextboot", true) => match need("order") {
            Ok(o) => ("rsetboot", vec![nr, o]),
            Err(r) => return r,
        },
        ("inventory", false) => ("rinv", vec![nr, "all".into()]),
        ("vitals", false) => ("rvitals", vec![nr, "all".into()]),
        ("nodels", false) => ("nodels", vec![nr]),
        _ => return error(StatusCode::NOT_FOUND, "Unsupported resource."),
    };
    match run(&ws, &user, cmd, args).await {
        Ok(_) if put => empty(&method),
        Ok(c) if action == "nodels" => json_reply(StatusCode::OK, names(&c.out)),
        Ok(c) => json_reply(StatusCode::OK, actionout(&c.out, &action)),
        Err(r) => r,
    }
}

async fn globalconf(State(ws): State<Ws>, headers: HeaderMap, Query(q): Q) -> Reply {
    let user = match authenticate(&ws, &headers, &q).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let args = vec![
        "-t".into(),
        "site".into(),
        "-o".into(),
        "clustersite".into(),
    ];
    match run(&ws, &user, "lsdef", args).await {
        Ok(c) => json_reply(StatusCode::OK, defout(&c.out)),
        Err(r) => r,
    }
}

/// `/tables/{t}/rows`: `{"t": [{col: value, …}, …]}` (null columns left out), read through
/// `tabdump` so policy and masking apply.
async fn table_rows(
    State(ws): State<Ws>,
    headers: HeaderMap,
    Path(table): Path<String>,
    Query(q): Q,
) -> Reply {
    let user = match authenticate(&ws, &headers, &q).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let c = match run(&ws, &user, "tabdump", vec![table.clone()]).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let rows = match crate::store::csv::parse(&c.out) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let list: Vec<Value> = rows
        .records
        .iter()
        .map(|(_, r)| {
            let mut m = Map::new();
            for (col, v) in rows.columns.iter().zip(r.iter()) {
                if let Some(v) = v {
                    m.insert(col.to_string(), Value::String(v.clone()));
                }
            }
            Value::Object(m)
        })
        .collect();
    json_reply(StatusCode::OK, json!({ table: list }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsdef_output_becomes_xcatws_json() {
        let out =
            "Object name: n1\n    groups=all\n    mgt=ipmi\nObject name: n2\n    groups=rack=1\n";
        assert_eq!(
            defout(out),
            json!({"n1": {"groups": "all", "mgt": "ipmi"}, "n2": {"groups": "rack=1"}})
        );
        assert_eq!(names("n1  (node)\nn2  (node)\n"), json!(["n1", "n2"]));
        assert_eq!(
            actionout("n1: on\nn2: off\n", "power"),
            json!({"n1": {"power": "on"}, "n2": {"power": "off"}})
        );
        assert_eq!(
            actionout("n1: BMC Firmware: 1.2\n", "inventory"),
            json!({"n1": {"BMC Firmware": "1.2"}})
        );
    }
}
