//! xcatd's wire format (`perl-xCAT/xCAT/Client.pm`, `xCAT-server/sbin/xcatd`): the client sends one
//! XML document `<xcatrequest>…</xcatrequest>`, the server answers with a stream of
//! `<xcatresponse>…</xcatresponse>` documents, the last of which holds `<serverdone>`. Pure: bytes
//! in, values out, and values in, bytes out.
//!
//! A request is XML::Simple's rendering of a hash of arrays: `<command>`, `<noderange>`, `<arg>`
//! (repeated), `<cwd>`, `<clienttype>`, `<stdin>`, `<environment><XCAT_X>…</XCAT_X></environment>`,
//! `<becomeuser><username/><password/></becomeuser>`, `<gettoken>…</gettoken>`,
//! `<tokens><tokenid/></tokens>`. bootherd's own client also sends the files a command reads as
//! `<file><name>/abs/path</name><content>base64</content></file>` (xCAT's server ignores what it
//! does not know, and so does this one).

use std::collections::BTreeMap;

use base64::Engine;
use quick_xml::events::Event;
use quick_xml::Reader;

/// The largest request accepted (files travel inside it).
pub const MAX_REQUEST: usize = 64 << 20;
/// How deep elements may nest (xCAT's requests use three levels).
const MAX_DEPTH: usize = 8;
/// How many elements a request may hold.
const MAX_ELEMENTS: usize = 100_000;

/// A parsed `<xcatrequest>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XcatRequest {
    pub command: String,
    pub noderange: Option<String>,
    pub args: Vec<String>,
    pub cwd: Option<String>,
    pub clienttype: Option<String>,
    pub stdin: Option<Vec<u8>>,
    pub environment: BTreeMap<String, String>,
    /// `<becomeuser>` or `<gettoken>` credentials: (username, password).
    pub becomeuser: Option<(String, String)>,
    pub gettoken: Option<(String, String)>,
    pub tokenid: Option<String>,
    /// `<username>`: only believed from a trusted peer.
    pub username: Option<String>,
    pub files: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("the request is larger than {MAX_REQUEST} bytes")]
    TooLarge,
    #[error("malformed XML: {0}")]
    Xml(String),
    #[error("not an xCAT request (the document is <{0}>, not <xcatrequest>)")]
    NotARequest(String),
    #[error("the request names no command")]
    NoCommand,
    #[error("the request nests elements deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("the request has more than {MAX_ELEMENTS} elements")]
    TooManyElements,
    #[error("file {0}: its content is not base64")]
    BadFile(String),
}

/// An element with its text and children, in order.
#[derive(Debug, Default, Clone)]
struct Node {
    name: String,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
    fn text_of(&self, name: &str) -> Option<String> {
        self.child(name).map(|c| c.text.clone())
    }
}

/// Where the request document ends in `buf`, if it is complete (xcatd reads until it sees
/// `</xcatrequest>`).
pub fn request_end(buf: &[u8]) -> Option<usize> {
    const END: &[u8] = b"</xcatrequest>";
    buf.windows(END.len())
        .position(|w| w == END)
        .map(|p| p + END.len())
}

/// Parses one request document.
pub fn parse_request(bytes: &[u8]) -> Result<XcatRequest, WireError> {
    if bytes.len() > MAX_REQUEST {
        return Err(WireError::TooLarge);
    }
    let root = parse_tree(bytes)?;
    if root.name != "xcatrequest" {
        return Err(WireError::NotARequest(root.name));
    }
    let mut r = XcatRequest::default();
    for c in &root.children {
        match c.name.as_str() {
            "command" => r.command = c.text.trim().to_string(),
            "noderange" => r.noderange = Some(c.text.clone()),
            "arg" => r.args.push(c.text.clone()),
            "cwd" => r.cwd = Some(c.text.clone()),
            "clienttype" => r.clienttype = Some(c.text.clone()),
            "stdin" => r.stdin = Some(c.text.clone().into_bytes()),
            "username" => r.username = Some(c.text.clone()),
            "environment" => {
                for e in &c.children {
                    r.environment.insert(e.name.clone(), e.text.clone());
                }
            }
            "becomeuser" | "gettoken" => {
                let cred = (
                    c.text_of("username").unwrap_or_default(),
                    c.text_of("password").unwrap_or_default(),
                );
                if c.name == "becomeuser" {
                    r.becomeuser = Some(cred);
                } else {
                    r.gettoken = Some(cred);
                }
            }
            "tokens" => r.tokenid = c.text_of("tokenid"),
            "file" => {
                let name = c.text_of("name").unwrap_or_default();
                let content = c.text_of("content").unwrap_or_default();
                let data = base64::engine::general_purpose::STANDARD
                    .decode(content.split_whitespace().collect::<String>())
                    .map_err(|_| WireError::BadFile(name.clone()))?;
                r.files.insert(name, data);
            }
            _ => {}
        }
    }
    if r.command.is_empty() && r.gettoken.is_none() {
        return Err(WireError::NoCommand);
    }
    Ok(r)
}

fn parse_tree(bytes: &[u8]) -> Result<Node, WireError> {
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Node> = Vec::new();
    let mut count = 0usize;
    let mut buf = Vec::new();
    loop {
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| WireError::Xml(e.to_string()))?;
        match ev {
            Event::Start(s) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(WireError::TooManyElements);
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(WireError::TooDeep);
                }
                let name = s.name().as_ref().to_string();
                stack.push(Node {
                    name,
                    ..Default::default()
                });
            }
            Event::Empty(s) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(WireError::TooManyElements);
                }
                let node = Node {
                    name: s.name().as_ref().to_string(),
                    ..Default::default()
                };
                match stack.last_mut() {
                    Some(p) => p.children.push(node),
                    None => return Ok(node),
                }
            }
            Event::Text(t) => {
                if let Some(n) = stack.last_mut() {
                    let raw = t.as_ref().to_string();
                    n.text.push_str(&unescape(&raw)?);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(n) = stack.last_mut() {
                    let raw = format!("&{};", r.as_ref());
                    n.text.push_str(&unescape(&raw)?);
                }
            }
            Event::CData(t) => {
                if let Some(n) = stack.last_mut() {
                    n.text.push_str(t.as_ref());
                }
            }
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err(WireError::Xml("unbalanced end tag".into()));
                };
                match stack.last_mut() {
                    Some(p) => p.children.push(done),
                    None => return Ok(done),
                }
            }
            Event::Eof => return Err(WireError::Xml("the document ends early".into())),
            _ => {}
        }
        buf.clear();
    }
}

fn unescape(s: &str) -> Result<String, WireError> {
    quick_xml::escape::unescape(s)
        .map(|c| c.into_owned())
        .map_err(|e| WireError::Xml(e.to_string()))
}

/// XML text: `&`, `<`, `>` escaped; control characters XML 1.0 cannot carry (all but tab,
/// newline and CR) become `?`, as xcatd does (xcatd also turns non-ASCII into `?`; bootherd keeps
/// UTF-8).
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 16);
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '\t' | '\n' | '\r' => o.push(ch),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => o.push('?'),
            c => o.push(c),
        }
    }
    o
}

/// One response document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<String>,
    pub info: Vec<String>,
    pub warning: Vec<String>,
    pub error: Vec<String>,
    /// `NoErrorPrefix`: the client prints the error lines as they are.
    pub no_error_prefix: bool,
    pub errorcode: Option<i32>,
    pub serverdone: bool,
    /// Extra elements (name, text) a response carried.
    pub extra: Vec<(String, String)>,
    /// Elements written verbatim (nested data such as a token).
    pub raw: String,
}

impl Response {
    /// The document as xcatd writes it (XML::Simple, NoAttr).
    pub fn encode(&self) -> String {
        let mut o = String::from("<xcatresponse>\n");
        let mut el = |name: &str, text: &str| {
            o.push_str("  <");
            o.push_str(name);
            o.push('>');
            o.push_str(&escape(text));
            o.push_str("</");
            o.push_str(name);
            o.push_str(">\n");
        };
        for d in &self.data {
            el("data", d);
        }
        for d in &self.info {
            el("info", d);
        }
        for d in &self.warning {
            el("warning", d);
        }
        for d in &self.error {
            el("error", d);
        }
        if self.no_error_prefix {
            el("NoErrorPrefix", "1");
        }
        if let Some(c) = self.errorcode {
            el("errorcode", &c.to_string());
        }
        for (k, v) in &self.extra {
            el(k, v);
        }
        o.push_str(&self.raw);
        if self.serverdone {
            o.push_str("  <serverdone></serverdone>\n");
        }
        o.push_str("</xcatresponse>\n");
        o
    }
}

/// Where the first complete response document ends in `buf`.
pub fn response_end(buf: &[u8]) -> Option<usize> {
    const END: &[u8] = b"</xcatresponse>";
    buf.windows(END.len())
        .position(|w| w == END)
        .map(|p| p + END.len())
}

/// Parses one response document (what bootherd's client reads).
pub fn parse_response(bytes: &[u8]) -> Result<Response, WireError> {
    let root = parse_tree(bytes)?;
    if root.name != "xcatresponse" {
        return Err(WireError::NotARequest(root.name));
    }
    let mut r = Response::default();
    for c in &root.children {
        match c.name.as_str() {
            "data" => {
                if c.children.is_empty() {
                    r.data.push(c.text.clone());
                } else {
                    // {desc, contents} data, as xCAT's client prints it.
                    let desc = c.text_of("desc");
                    let contents = c.text_of("contents");
                    r.data.push(match (desc, contents) {
                        (Some(d), Some(t)) => format!("{d}: {t}"),
                        (Some(d), None) => d,
                        (None, Some(t)) => t,
                        (None, None) => String::new(),
                    });
                }
            }
            "info" => r.info.push(c.text.clone()),
            "warning" => r.warning.push(c.text.clone()),
            "error" => r.error.push(c.text.clone()),
            "NoErrorPrefix" => r.no_error_prefix = true,
            "errorcode" => r.errorcode = c.text.trim().parse().ok(),
            "serverdone" => r.serverdone = true,
            "node" => {
                // xCAT's {node => [{name, data|error}]}: "name: data".
                let name = c.text_of("name").unwrap_or_default();
                if let Some(e) = c.text_of("error") {
                    r.error.push(format!("{name}: Error: {e}"));
                    r.no_error_prefix = true;
                } else if let Some(d) = c.text_of("data") {
                    r.data.push(format!("{name}: {d}"));
                }
                if let Some(code) = c
                    .text_of("errorcode")
                    .and_then(|c| c.trim().parse::<i32>().ok())
                {
                    r.errorcode = Some(r.errorcode.unwrap_or(0) | code);
                }
            }
            other => r.extra.push((other.to_string(), c.text.clone())),
        }
    }
    Ok(r)
}

/// Builds a request document (what bootherd's client sends).
pub fn encode_request(r: &XcatRequest) -> String {
    let mut o = String::from("<xcatrequest>\n");
    let el = |o: &mut String, name: &str, text: &str| {
        o.push_str("  <");
        o.push_str(name);
        o.push('>');
        o.push_str(&escape(text));
        o.push_str("</");
        o.push_str(name);
        o.push_str(">\n");
    };
    el(&mut o, "command", &r.command);
    if let Some(n) = &r.noderange {
        el(&mut o, "noderange", n);
    }
    for a in &r.args {
        el(&mut o, "arg", a);
    }
    if let Some(c) = &r.cwd {
        el(&mut o, "cwd", c);
    }
    el(
        &mut o,
        "clienttype",
        r.clienttype.as_deref().unwrap_or("cli"),
    );
    if let Some(s) = &r.stdin {
        el(&mut o, "stdin", &String::from_utf8_lossy(s));
    }
    if !r.environment.is_empty() {
        o.push_str("  <environment>\n");
        for (k, v) in &r.environment {
            el(&mut o, k, v);
        }
        o.push_str("  </environment>\n");
    }
    if let Some((u, p)) = &r.becomeuser {
        o.push_str("  <becomeuser>\n");
        el(&mut o, "username", u);
        el(&mut o, "password", p);
        o.push_str("  </becomeuser>\n");
    }
    if let Some(t) = &r.tokenid {
        o.push_str("  <tokens>\n");
        el(&mut o, "tokenid", t);
        o.push_str("  </tokens>\n");
    }
    for (name, data) in &r.files {
        o.push_str("  <file>\n");
        el(&mut o, "name", name);
        el(
            &mut o,
            "content",
            &base64::engine::general_purpose::STANDARD.encode(data),
        );
        o.push_str("  </file>\n");
    }
    o.push_str("</xcatrequest>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_xcats_client_sends() {
        // XML::Simple's XMLout(RootName => 'xcatrequest', NoAttr => 1) of xcatclient's hash.
        let doc = b"<xcatrequest>\n  <arg>-H</arg>\n  <arg>nodetype.os</arg>\n  <clienttype>cli</clienttype>\n  <command>nodels</command>\n  <cwd>/root</cwd>\n  <environment>\n    <XCAT_X>1</XCAT_X>\n  </environment>\n  <noderange>compute</noderange>\n</xcatrequest>\n";
        let end = request_end(doc).expect("complete");
        let r = parse_request(&doc[..end]).expect("parses");
        assert_eq!(r.command, "nodels");
        assert_eq!(r.noderange.as_deref(), Some("compute"));
        assert_eq!(r.args, ["-H", "nodetype.os"]);
        assert_eq!(r.cwd.as_deref(), Some("/root"));
        assert_eq!(r.environment.get("XCAT_X").map(String::as_str), Some("1"));
    }

    #[test]
    fn round_trips_our_own_request_with_files_and_escapes() {
        let mut r = XcatRequest {
            command: "tabrestore".into(),
            args: vec!["a<b&c>".into(), String::new()],
            cwd: Some("/tmp".into()),
            clienttype: Some("cli".into()),
            stdin: Some(b"x=1\n".to_vec()),
            becomeuser: Some(("u".into(), "p w".into())),
            ..Default::default()
        };
        r.files
            .insert("/tmp/site.csv".into(), b"#key,value\n\x00\xff".to_vec());
        let back = parse_request(encode_request(&r).as_bytes()).expect("parses");
        assert_eq!(back, r);
    }

    #[test]
    fn refuses_what_is_not_a_request() {
        assert!(matches!(
            parse_request(b"<foo><command>x</command></foo>"),
            Err(WireError::NotARequest(_))
        ));
        assert!(matches!(
            parse_request(b"<xcatrequest><arg>x</arg></xcatrequest>"),
            Err(WireError::NoCommand)
        ));
        assert!(matches!(
            parse_request(b"<xcatrequest><command>x</command>"),
            Err(WireError::Xml(_))
        ));
        let deep = format!(
            "<xcatrequest><command>x</command>{}{}</xcatrequest>",
            "<a>".repeat(20),
            "</a>".repeat(20)
        );
        assert_eq!(parse_request(deep.as_bytes()), Err(WireError::TooDeep));
        assert!(matches!(
            parse_request(b"<xcatrequest><command>x</command><file><name>f</name><content>!!</content></file></xcatrequest>"),
            Err(WireError::BadFile(_))
        ));
    }

    #[test]
    fn responses_round_trip() {
        let r = Response {
            data: vec!["n1: on\n\nn2: <off>".into()],
            error: vec!["n3: Error: no".into()],
            no_error_prefix: true,
            errorcode: Some(1),
            serverdone: true,
            ..Default::default()
        };
        let enc = r.encode();
        assert!(enc.starts_with("<xcatresponse>"));
        assert_eq!(response_end(enc.as_bytes()), Some(enc.trim_end().len()));
        assert_eq!(parse_response(enc.as_bytes()).expect("parses"), r);
    }

    #[test]
    fn reads_xcats_node_responses() {
        let doc = b"<xcatresponse><node><name>n1</name><data>on</data></node><node><name>n2</name><error>timeout</error><errorcode>1</errorcode></node></xcatresponse>";
        let r = parse_response(doc).expect("parses");
        assert_eq!(r.data, ["n1: on"]);
        assert_eq!(r.error, ["n2: Error: timeout"]);
        assert_eq!(r.errorcode, Some(1));
    }
}
