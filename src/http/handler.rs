//! What a route sees and answers: [`RequestInfo`] (a request after the path rules, with the
//! client's address), [`Response`] and its [`Body`], the [`Handler`] trait every route implements,
//! and [`Routes`], the ordered list the server asks.

use std::fs::File;
use std::net::SocketAddr;
use std::sync::Arc;

use super::proto::{self, Target};
use crate::store::resolver::{Resolver, Ticket};
use tracing::warn;

/// A request as handlers see it. Its path already passed the path rules ([`proto::parse_target`]):
/// no segment is `..`, empty, or holds `/` or NUL, so a handler can join segments onto a root.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// As sent (`GET`, `HEAD`, `POST`, …); methods are case-sensitive.
    pub method: String,
    /// The request target exactly as sent (for logs; quote it).
    pub target: String,
    /// The decoded path.
    pub path: Target,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Field names lower-cased, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The request body (at most [`super::server::Config::max_body`] bytes).
    pub body: Vec<u8>,
    /// The client's address: install templates go only to the node that asks for its own.
    pub peer: SocketAddr,
    /// The address the client connected to: this server as the node sees it.
    pub local: SocketAddr,
}

impl RequestInfo {
    /// The first value of a header field (`name` in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        proto::header(&self.headers, name)
    }

    /// GET or HEAD: the methods the file trees answer.
    pub fn is_read(&self) -> bool {
        self.method == "GET" || self.method == "HEAD"
    }

    /// The path segments after `prefix` (given as segments), if the path starts with it:
    /// `req.under(&["install", "autoinst"])` is `Some(["n1"])` for `/install/autoinst/n1`.
    pub fn under(&self, prefix: &[&str]) -> Option<&[String]> {
        let s = &self.path.segments;
        (s.len() >= prefix.len() && s.iter().zip(prefix).all(|(a, b)| a == b))
            .then(|| &s[prefix.len()..])
    }

    /// The decoded path, `/`-joined, with the trailing `/` if one was sent (for logs and messages).
    pub fn decoded_path(&self) -> String {
        let mut p = String::from("/");
        p.push_str(&self.path.segments.join("/"));
        if self.path.trailing_slash && !self.path.segments.is_empty() {
            p.push('/');
        }
        p
    }
}

/// A response body. The server sets `Content-Length` from it, sends nothing of it for HEAD, and
/// streams a file in place (`sendfile`) without reading it into memory.
#[derive(Debug, Default)]
pub enum Body {
    #[default]
    Empty,
    Bytes(Vec<u8>),
    /// `len` bytes of `file` from `offset`.
    File {
        file: File,
        offset: u64,
        len: u64,
    },
}

impl Body {
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A response from a handler. The server adds `Date`, `Server`, `Content-Length` and `Connection`;
/// those in `headers` are dropped.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Field names as they should be sent (`Content-Type`).
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// A body of bytes with its type.
    pub fn bytes(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: Body::Bytes(body.into()),
        }
    }

    /// A UTF-8 text body (`text/plain; charset=utf-8`).
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::bytes(
            status,
            "text/plain; charset=utf-8",
            body.into().into_bytes(),
        )
    }

    /// A short error page: the status line as text.
    pub fn error(status: u16) -> Response {
        Response::text(status, format!("{status} {}\n", proto::reason(status)))
    }

    /// 405 with the methods the resource answers.
    pub fn method_not_allowed(allow: &str) -> Response {
        Response::error(405).header("Allow", allow)
    }

    /// A redirect to `location` (a path or URL the client resolves against the request).
    pub fn redirect(status: u16, location: &str) -> Response {
        Response::error(status).header("Location", location)
    }

    /// The first value of a header field of this response (case-insensitive name).
    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a route's fast path decided ([`Handler::inline`]).
#[derive(Debug)]
pub enum Inline {
    /// The answer.
    Done(Response),
    /// Not this route's request: the next route is asked.
    Pass,
    /// Needs the blocking pool: [`Handler::handle`] is called there.
    Defer,
}

/// A route, registered under a path prefix with [`Routes::add`] and asked only for requests under
/// it, in registration order; the file trees come last.
///
/// `handle` runs on tokio's blocking pool, so it may read the store, render a template or read
/// files; it returns `None` for a request that is not its own, and the next route is asked.
/// `inline` is an optional fast path run first on the connection's own task, for answers that
/// need nothing but a few quick system calls (the file trees use it: a trip to the blocking pool
/// costs more than serving a small file). It must never wait on the store, a lock held across
/// I/O, or a large directory; the default defers to `handle`.
///
/// Adding a route: implement this and add it in [`super::extra_routes`]:
///
/// ```text
/// /// `/install/autoinst/<node>`: the node's install template, to that node only.
/// struct Autoinst { resolver: Arc<Resolver> }
/// impl Handler for Autoinst {
///     fn handle(&self, req: &RequestInfo) -> Option<Response> {
///         let [node] = req.under(&["install", "autoinst"])? else { return None };
///         if !req.is_read() {
///             return Some(Response::method_not_allowed("GET, HEAD"));
///         }
///         if !self.is_address_of(node, req.peer.ip()) {
///             return Some(Response::error(403));
///         }
///         Some(Response::text(200, self.render(node)))
///     }
/// }
/// // in extra_routes():
/// routes.add(&["install", "autoinst"], Arc::new(Autoinst { resolver: resolver.clone() }));
/// ```
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: &RequestInfo) -> Option<Response>;

    fn inline(&self, _req: &RequestInfo) -> Inline {
        Inline::Defer
    }
}

/// Where routing ended on the connection's task.
#[derive(Debug)]
pub enum Routed {
    Done(Response),
    /// Continue on the blocking pool with [`Routes::route_from`] from this route on.
    Blocking(usize),
}

/// The routes in the order they are asked, each under its prefix; a request none answers gets
/// 404 (GET, HEAD) or 405 (any other method: nothing here takes it).
#[derive(Clone, Default)]
pub struct Routes {
    routes: Vec<(Vec<String>, Arc<dyn Handler>)>,
    /// Caught up on the blocking pool before the first blocking handler is asked (read your
    /// writes: every handler that reads the store is a blocking one).
    resolver: Option<Arc<Resolver>>,
}

impl Routes {
    pub fn new() -> Routes {
        Routes::default()
    }

    /// Adds a route after those already added, asked only for paths under `prefix` (segments;
    /// `&[]` for every path).
    pub fn add(&mut self, prefix: &[&str], h: Arc<dyn Handler>) {
        self.routes
            .push((prefix.iter().map(|s| s.to_string()).collect(), h));
    }

    /// Appends `other`'s routes after these.
    pub fn extend(&mut self, other: Routes) {
        self.routes.extend(other.routes);
        if other.resolver.is_some() {
            self.resolver = other.resolver;
        }
    }

    /// Catches `r` up before the blocking handlers are asked, once per request that reaches them
    /// ([`Resolver::catch_up_since`] with the request's [`Routes::arrived`]).
    pub fn catch_up_with(&mut self, r: Arc<Resolver>) {
        self.resolver = Some(r);
    }

    /// Notes a request's arrival (take it when the request has been read).
    pub fn arrived(&self) -> Option<Ticket> {
        self.resolver.as_ref().map(|r| r.ticket())
    }

    fn applies(&self, i: usize, req: &RequestInfo) -> bool {
        let p = &self.routes[i].0;
        let s = &req.path.segments;
        s.len() >= p.len() && s.iter().zip(p).all(|(a, b)| a == b)
    }

    fn fallback(req: &RequestInfo) -> Response {
        if req.is_read() {
            Response::error(404)
        } else {
            Response::method_not_allowed("GET, HEAD")
        }
    }

    /// The fast paths, in order, on the caller's task.
    pub fn route_inline(&self, req: &RequestInfo) -> Routed {
        for i in 0..self.routes.len() {
            if !self.applies(i, req) {
                continue;
            }
            match self.routes[i].1.inline(req) {
                Inline::Done(r) => return Routed::Done(r),
                Inline::Pass => {}
                Inline::Defer => return Routed::Blocking(i),
            }
        }
        Routed::Done(Routes::fallback(req))
    }

    /// `handle` of route `from` and those after it (on the blocking pool).
    pub fn route_from(&self, req: &RequestInfo, from: usize) -> Response {
        self.route_from_arrived(req, from, self.arrived())
    }

    /// [`Routes::route_from`] for a request read at `arrived`: requests read while another
    /// request's store check had not yet begun share it.
    pub fn route_from_arrived(
        &self,
        req: &RequestInfo,
        from: usize,
        arrived: Option<Ticket>,
    ) -> Response {
        if let (Some(r), Some(t)) = (&self.resolver, arrived) {
            if let Err(e) = r.catch_up_since(t) {
                warn!("cannot read the change log: {e}");
            }
        }
        (from..self.routes.len())
            .filter(|i| self.applies(*i, req))
            .find_map(|i| self.routes[i].1.handle(req))
            .unwrap_or_else(|| Routes::fallback(req))
    }

    /// Routing done entirely in the calling thread (tests; callers that may block).
    pub fn route(&self, req: &RequestInfo) -> Response {
        match self.route_inline(req) {
            Routed::Done(r) => r,
            Routed::Blocking(i) => self.route_from(req, i),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, target: &str) -> RequestInfo {
        RequestInfo {
            method: method.into(),
            target: target.into(),
            path: proto::parse_target(target).expect("target"),
            minor: 1,
            headers: Vec::new(),
            body: Vec::new(),
            peer: "10.0.1.5:40000".parse().expect("addr"),
            local: "10.0.0.1:80".parse().expect("addr"),
        }
    }

    /// Answers `/install/autoinst/<node>` with who asked; passes on anything deeper.
    struct Autoinst;
    impl Handler for Autoinst {
        fn handle(&self, req: &RequestInfo) -> Option<Response> {
            let [node] = req.under(&["install", "autoinst"])? else {
                return None;
            };
            Some(Response::text(200, format!("{node} for {}", req.peer.ip())))
        }
    }

    /// A file tree stand-in with a fast path.
    struct Files;
    impl Handler for Files {
        fn handle(&self, _: &RequestInfo) -> Option<Response> {
            Some(Response::text(200, "listing"))
        }
        fn inline(&self, req: &RequestInfo) -> Inline {
            if req.path.trailing_slash {
                Inline::Defer
            } else {
                Inline::Done(Response::text(200, "file"))
            }
        }
    }

    fn text(r: Response) -> String {
        match r.body {
            Body::Bytes(b) => String::from_utf8(b).expect("utf8"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn routes_are_asked_by_prefix_in_order_fast_paths_first() {
        let mut routes = Routes::new();
        routes.add(&["install", "autoinst"], Arc::new(Autoinst));
        routes.add(&["install"], Arc::new(Files));
        // The handler's own request: deferred to the blocking pool, where it answers.
        let r = req("GET", "/install/autoinst/n1");
        assert!(matches!(routes.route_inline(&r), Routed::Blocking(0)));
        assert_eq!(text(routes.route(&r)), "n1 for 10.0.1.5");
        // Under its prefix but not its own: the next route answers.
        assert_eq!(
            text(routes.route(&req("GET", "/install/autoinst/n1/x"))),
            "listing"
        );
        // Not under its prefix: never asked; the file tree's fast path answers inline.
        match routes.route_inline(&req("GET", "/install/x.iso")) {
            Routed::Done(r) => assert_eq!(text(r), "file"),
            Routed::Blocking(i) => panic!("deferred to {i}"),
        }
        assert!(matches!(
            routes.route_inline(&req("GET", "/install/dir/")),
            Routed::Blocking(1)
        ));
        assert_eq!(routes.route(&req("GET", "/elsewhere")).status, 404);
        let r = routes.route(&req("PUT", "/elsewhere"));
        assert_eq!((r.status, r.get_header("allow")), (405, Some("GET, HEAD")));
    }
}
