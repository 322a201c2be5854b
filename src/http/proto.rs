//! The HTTP/1.1 wire, as pure functions over bytes and strings: request heads (tokenised by
//! `httparse`, the parser hyper uses), request targets → path segments under the path rules,
//! `Range` (RFC 9110 §14), entity tags, HTTP dates (RFC 9110 §5.6.7) and response status lines.
//! Nothing here does I/O; the server and the file trees build on it.

use std::fmt::Write as _;

/// Header fields a request may carry; more is answered 431.
pub const MAX_HEADERS: usize = 64;

/// A parsed request head: the request line and the header fields, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    /// The request target exactly as sent.
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Field names lower-cased; values as sent (bytes outside UTF-8 replaced), trimmed.
    pub headers: Vec<(String, String)>,
}

/// Why a request head (or its framing) is refused. [`ProtoError::status`] is the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("request head larger than {0} bytes")]
    TooLarge(usize),
    #[error("more than {MAX_HEADERS} header fields")]
    TooManyHeaders,
    #[error("not HTTP/1.x")]
    Version,
    #[error("Transfer-Encoding in a request is not supported (send Content-Length)")]
    TransferEncoding,
    #[error("invalid Content-Length")]
    ContentLength,
}

impl ProtoError {
    pub fn status(&self) -> u16 {
        match self {
            ProtoError::Malformed(_) | ProtoError::ContentLength => 400,
            ProtoError::TooLarge(_) | ProtoError::TooManyHeaders => 431,
            ProtoError::Version => 505,
            // RFC 9112 §6.1: a server that does not understand a transfer coding answers 501;
            // request bodies here are small uploads from nodes, which always know their length.
            ProtoError::TransferEncoding => 501,
        }
    }
}

/// Parses a request head from the start of `buf`. `Ok(None)`: incomplete, read more (unless
/// `buf` already holds `max` bytes, which is [`ProtoError::TooLarge`]). `Ok(Some((head, n)))`:
/// the head took the first `n` bytes; what follows is the body or the next request.
pub fn parse_head(buf: &[u8], max: usize) -> Result<Option<(Head, usize)>, ProtoError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let n = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= max => return Err(ProtoError::TooLarge(max)),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ProtoError::TooManyHeaders),
        Err(httparse::Error::Version) => return Err(ProtoError::Version),
        Err(e) => return Err(ProtoError::Malformed(e.to_string())),
    };
    if n > max {
        return Err(ProtoError::TooLarge(max));
    }
    // Complete means every one of these is present.
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(ProtoError::Malformed("incomplete request line".into()));
    };
    let headers = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    Ok(Some((
        Head {
            method: method.to_string(),
            target: target.to_string(),
            minor,
            headers,
        },
        n,
    )))
}

impl Head {
    /// The first value of a field (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Whether the client lets the connection carry another request after this one.
    pub fn keep_alive(&self) -> bool {
        let tokens = || {
            self.headers
                .iter()
                .filter(|(n, _)| n == "connection")
                .flat_map(|(_, v)| v.split(','))
                .map(str::trim)
        };
        if tokens().any(|t| t.eq_ignore_ascii_case("close")) {
            return false;
        }
        self.minor >= 1 || tokens().any(|t| t.eq_ignore_ascii_case("keep-alive"))
    }

    /// The body's length: 0 without `Content-Length`. Every `Content-Length` must agree (RFC 9112
    /// §6.3), and a request with `Transfer-Encoding` is refused rather than guessed at: a length
    /// read two ways is how requests get smuggled.
    pub fn body_length(&self) -> Result<u64, ProtoError> {
        if self.headers.iter().any(|(n, _)| n == "transfer-encoding") {
            return Err(ProtoError::TransferEncoding);
        }
        let mut len: Option<u64> = None;
        for v in self
            .headers
            .iter()
            .filter(|(n, _)| n == "content-length")
            .flat_map(|(_, v)| v.split(','))
        {
            let v = v.trim();
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ProtoError::ContentLength);
            }
            let n: u64 = v.parse().map_err(|_| ProtoError::ContentLength)?;
            if len.is_some_and(|l| l != n) {
                return Err(ProtoError::ContentLength);
            }
            len = Some(n);
        }
        Ok(len.unwrap_or(0))
    }

    /// `Expect: 100-continue`.
    pub fn expects_continue(&self) -> bool {
        self.header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }
}

/// The first value of `name` (lower case) in a field list.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A request target after the path rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Decoded segments, each a plain name: never empty, `.`, `..`, and never holding `/` or NUL.
    pub segments: Vec<String>,
    /// The path ended in `/` (a directory is meant).
    pub trailing_slash: bool,
    /// The path as sent, still percent-encoded, without the query (for redirects).
    pub raw_path: String,
    /// The query as sent (after `?`, still encoded).
    pub query: Option<String>,
}

/// Why a request target is refused before any handler sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("request target is not a path")]
    Form,
    #[error("bad percent-encoding in the path")]
    Encoding,
    #[error("path is not UTF-8")]
    NotUtf8,
    #[error("'..' in the path")]
    Parent,
    #[error("encoded '/' in a path segment")]
    EncodedSlash,
    #[error("NUL in the path")]
    Nul,
}

impl TargetError {
    /// Climbing or smuggling a separator is refused (403); a garbled target is a bad request.
    pub fn status(&self) -> u16 {
        match self {
            TargetError::Form | TargetError::Encoding | TargetError::NotUtf8 => 400,
            TargetError::Parent | TargetError::EncodedSlash | TargetError::Nul => 403,
        }
    }

    /// Refusals worth a warning: they are attempts to leave a root, not broken clients.
    pub fn is_attack(&self) -> bool {
        self.status() == 403
    }
}

/// Applies the path rules to a request target: origin form (`/a/b?q`) or absolute form
/// (`http://host/a/b`). `..` is refused, not resolved — raw or encoded (`%2e%2e`) — and so is an
/// encoded separator (`%2f`) or NUL: a name that needs one of those is never a file under a root.
/// `.` and empty segments vanish.
pub fn parse_target(target: &str) -> Result<Target, TargetError> {
    let target = target.split_once('#').map_or(target, |(t, _)| t);
    let origin = if target.starts_with('/') {
        target
    } else {
        let rest = strip_prefix_ci(target, "http://")
            .or_else(|| strip_prefix_ci(target, "https://"))
            .ok_or(TargetError::Form)?;
        match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => &rest[i..],
            Some(i) => return parse_target(&format!("/{}", &rest[i..])),
            None => "/",
        }
    };
    let (raw_path, query) = match origin.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (origin, None),
    };
    let mut segments = Vec::new();
    for raw in raw_path.split('/') {
        let bytes = percent_decode(raw)?;
        if bytes.contains(&b'/') {
            return Err(TargetError::EncodedSlash);
        }
        if bytes.contains(&0) {
            return Err(TargetError::Nul);
        }
        match bytes.as_slice() {
            b"" | b"." => {}
            b".." => return Err(TargetError::Parent),
            _ => segments.push(String::from_utf8(bytes).map_err(|_| TargetError::NotUtf8)?),
        }
    }
    Ok(Target {
        segments,
        trailing_slash: raw_path.ends_with('/'),
        raw_path: raw_path.to_string(),
        query,
    })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn percent_decode(s: &str) -> Result<Vec<u8>, TargetError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = b.get(i + 1).and_then(|c| (*c as char).to_digit(16));
            let lo = b.get(i + 2).and_then(|c| (*c as char).to_digit(16));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(TargetError::Encoding);
            };
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Percent-encodes a name for use as one path segment of a URL: RFC 3986 unreserved characters
/// and the sub-delimiters that need no escaping in HTML either stay as they are (`&` and `'` do
/// not, so a link is the same in an HTML attribute).
pub fn percent_encode_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for &c in name.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-._~!$()*+,;=:@".contains(&c) {
            out.push(c as char);
        } else {
            let _ = write!(out, "%{c:02X}");
        }
    }
    out
}

/// What a `Range` header asks of a representation of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeReq {
    /// Send everything (no range, a unit other than bytes, an invalid or a multi-range header).
    Whole,
    /// Bytes `start..=end` (206).
    Part { start: u64, end: u64 },
    /// No byte of the range exists (416).
    Unsatisfiable,
}

/// Interprets a `Range` header value. Only a single range is honoured; a header with several is
/// ignored and the whole representation sent (200), which RFC 9110 §14.2 allows and every client
/// handles, where multipart/byteranges would only serve download accelerators.
pub fn parse_range(value: &str, size: u64) -> RangeReq {
    let Some((unit, set)) = value.split_once('=') else {
        return RangeReq::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeReq::Whole;
    }
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return RangeReq::Whole;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeReq::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // Suffix: the last n bytes.
        let Some(n) = digits(last) else {
            return RangeReq::Whole;
        };
        if n == 0 || size == 0 {
            return RangeReq::Unsatisfiable;
        }
        return RangeReq::Part {
            start: size.saturating_sub(n),
            end: size - 1,
        };
    }
    let Some(start) = digits(first) else {
        return RangeReq::Whole;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match digits(last) {
            Some(e) if e >= start => e,
            // last < first is not a valid range-spec: the header is ignored.
            _ => return RangeReq::Whole,
        }
    };
    if start >= size {
        return RangeReq::Unsatisfiable;
    }
    RangeReq::Part {
        start,
        end: end.min(size - 1),
    }
}

/// ASCII digits as a number, saturating (a position past any file is as good as `u64::MAX`).
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// The entity tag of a file: modification time and size, as nginx makes it.
pub fn etag(mtime: i64, size: u64) -> String {
    format!("\"{mtime:x}-{size:x}\"")
}

/// Whether an `If-None-Match` value matches `etag` (weak comparison, RFC 9110 §13.1.2).
pub fn none_match(value: &str, etag: &str) -> bool {
    if value.trim() == "*" {
        return true;
    }
    let ours = etag.trim_start_matches("W/");
    entity_tags(value).any(|t| t.trim_start_matches("W/") == ours)
}

/// The entity tags in a list value (`"a", W/"b"`), each with its quotes (and `W/`).
fn entity_tags(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = value;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return None;
        }
        let open = if rest.starts_with("W/\"") {
            3
        } else if rest.starts_with('"') {
            1
        } else {
            // Not an entity tag: skip to the next element.
            let end = rest.find(',').unwrap_or(rest.len());
            rest = &rest[end..];
            return Some("");
        };
        let close = rest[open..].find('"').map_or(rest.len(), |i| open + i + 1);
        let tag = &rest[..close];
        rest = &rest[close..];
        Some(tag)
    })
    .filter(|t| !t.is_empty())
}

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Seconds of 0001-01-01 and of 9999-12-31 23:59:59: the years a four-digit date can show.
const FIRST: i64 = -62_135_596_800;
const LAST: i64 = 253_402_300_799;

/// Seconds since the epoch as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`); times outside
/// years 1–9999 (a file's mtime can be anything) are clamped.
pub fn http_date(unix: i64) -> String {
    let unix = unix.clamp(FIRST, LAST);
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A directory listing's date column (`21-Nov-2026 13:13`, UTC), as nginx and Apache show it.
pub fn listing_date(unix: i64) -> String {
    let unix = unix.clamp(FIRST, LAST);
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{d:02}-{}-{y:04} {:02}:{:02}",
        MONTHS[(m - 1) as usize],
        secs / 3600,
        secs / 60 % 60
    )
}

/// Parses an HTTP date in any of the three forms RFC 9110 §5.6.7 says recipients accept:
/// IMF-fixdate, RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`).
pub fn parse_http_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let (day, mon, year, time) = if let Some((_, rest)) = s.split_once(", ") {
        let parts: Vec<&str> = rest.split_ascii_whitespace().collect();
        match parts.as_slice() {
            [d, m, y, t, "GMT"] => (*d, *m, y.parse::<i64>().ok()?, *t),
            [dmy, t, "GMT"] => {
                let mut it = dmy.split('-');
                let (d, m, y) = (it.next()?, it.next()?, it.next()?);
                let y: i64 = y.parse().ok()?;
                // RFC 850's two-digit year: within 50 years of now, i.e. 19xx before 70.
                let y = if y < 70 {
                    2000 + y
                } else if y < 100 {
                    1900 + y
                } else {
                    y
                };
                (d, m, y, *t)
            }
            _ => return None,
        }
    } else {
        let parts: Vec<&str> = s.split_ascii_whitespace().collect();
        let [_, m, d, t, y] = parts.as_slice() else {
            return None;
        };
        (*d, *m, y.parse::<i64>().ok()?, *t)
    };
    if !(1..=9999).contains(&year) {
        return None;
    }
    let d: u32 = day.parse().ok()?;
    let m = MONTHS.iter().position(|x| *x == mon)? as u32 + 1;
    let mut hms = time.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, se) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(year, m, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// The reason phrase of the statuses this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Statuses whose responses never have a body (RFC 9110 §6.4.1).
pub fn bodiless(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Head {
        parse_head(raw.as_bytes(), 16384)
            .expect("parses")
            .expect("complete")
            .0
    }

    #[test]
    fn heads_parse_and_partial_heads_wait() {
        let raw = "GET /install/x HTTP/1.1\r\nHost: a\r\nRange: bytes=0-1\r\n\r\nNEXT";
        let (h, n) = parse_head(raw.as_bytes(), 16384)
            .expect("ok")
            .expect("complete");
        assert_eq!(&raw[n..], "NEXT");
        assert_eq!(h.method, "GET");
        assert_eq!(h.target, "/install/x");
        assert_eq!(h.minor, 1);
        assert_eq!(h.header("range"), Some("bytes=0-1"));
        assert_eq!(h.header("host"), Some("a"));
        assert!(h.keep_alive());
        assert_eq!(h.body_length(), Ok(0));
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost:", 16384), Ok(None));
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nHost:", 10),
            Err(ProtoError::TooLarge(10))
        );
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 16384),
            Err(ProtoError::Malformed(_))
        ));
        assert_eq!(
            parse_head(b"GET / HTTP/2.0\r\n\r\n", 16384),
            Err(ProtoError::Version)
        );
        let many: String = (0..70).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(
            parse_head(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes(), 16384),
            Err(ProtoError::TooManyHeaders)
        );
    }

    #[test]
    fn keep_alive_and_body_framing() {
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
        assert!(!head("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n").keep_alive());
        assert_eq!(
            head("POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n").body_length(),
            Ok(12)
        );
        assert_eq!(
            head("POST / HTTP/1.1\r\nContent-Length: 12\r\nContent-Length: 12\r\n\r\n")
                .body_length(),
            Ok(12)
        );
        for bad in [
            "POST / HTTP/1.1\r\nContent-Length: 12\r\nContent-Length: 13\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        ] {
            assert_eq!(
                head(bad).body_length(),
                Err(ProtoError::ContentLength),
                "{bad}"
            );
        }
        assert_eq!(
            head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n")
                .body_length(),
            Err(ProtoError::TransferEncoding)
        );
        assert!(head("PUT / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n").expects_continue());
    }

    #[test]
    fn targets_decode_and_never_climb() {
        let t = parse_target("/install/post%20scripts/a%2Bb/?x=1").expect("ok");
        assert_eq!(t.segments, ["install", "post scripts", "a+b"]);
        assert!(t.trailing_slash);
        assert_eq!(t.raw_path, "/install/post%20scripts/a%2Bb/");
        assert_eq!(t.query.as_deref(), Some("x=1"));
        let t = parse_target("//install/./x//y").expect("ok");
        assert_eq!(t.segments, ["install", "x", "y"]);
        assert!(!t.trailing_slash);
        assert_eq!(
            parse_target("http://10.0.0.1:80/tftpboot/a")
                .expect("ok")
                .segments,
            ["tftpboot", "a"]
        );
        assert!(parse_target("HTTP://h").expect("ok").segments.is_empty());
        assert_eq!(
            parse_target("http://h?q").expect("ok").query.as_deref(),
            Some("q")
        );
        assert_eq!(
            parse_target("/install/%2e/x").expect("ok").segments,
            ["install", "x"]
        );
        assert_eq!(
            parse_target("/a..b/...").expect("ok").segments,
            ["a..b", "..."]
        );
        for (bad, why) in [
            ("/install/../etc/passwd", TargetError::Parent),
            ("/install/%2e%2e/etc", TargetError::Parent),
            ("/install/%2E%2e/etc", TargetError::Parent),
            ("/install/.%2e", TargetError::Parent),
            ("/install/..", TargetError::Parent),
            ("/install/a%2f..%2f..%2fetc", TargetError::EncodedSlash),
            ("/install/a%2Fb", TargetError::EncodedSlash),
            ("/install/a%00", TargetError::Nul),
            ("/install/%zz", TargetError::Encoding),
            ("/install/%4", TargetError::Encoding),
            ("/install/%ff", TargetError::NotUtf8),
            ("*", TargetError::Form),
            ("install", TargetError::Form),
        ] {
            assert_eq!(parse_target(bad), Err(why.clone()), "{bad}");
        }
        assert_eq!(TargetError::Parent.status(), 403);
        assert_eq!(TargetError::Encoding.status(), 400);
    }

    #[test]
    fn segments_encode_for_links() {
        assert_eq!(percent_encode_segment("a b#c?d%e"), "a%20b%23c%3Fd%25e");
        assert_eq!(percent_encode_segment("vmlinuz-6.1_x~"), "vmlinuz-6.1_x~");
        assert_eq!(percent_encode_segment("é"), "%C3%A9");
        let enc = percent_encode_segment("we<i>rd \"name\"");
        assert_eq!(
            parse_target(&format!("/{enc}")).expect("ok").segments,
            ["we<i>rd \"name\""]
        );
    }

    #[test]
    fn ranges() {
        use RangeReq::*;
        let r = |v| parse_range(v, 1000);
        assert_eq!(
            r("bytes=100-199"),
            Part {
                start: 100,
                end: 199
            }
        );
        assert_eq!(
            r("bytes=100-"),
            Part {
                start: 100,
                end: 999
            }
        );
        assert_eq!(
            r("bytes=-100"),
            Part {
                start: 900,
                end: 999
            }
        );
        assert_eq!(r("bytes=-5000"), Part { start: 0, end: 999 });
        assert_eq!(
            r("bytes=900-5000"),
            Part {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            r("bytes=999-999"),
            Part {
                start: 999,
                end: 999
            }
        );
        assert_eq!(r("Bytes = 1-2"), Part { start: 1, end: 2 });
        assert_eq!(r("bytes=1-2,"), Part { start: 1, end: 2 });
        assert_eq!(r("bytes=1000-"), Unsatisfiable);
        assert_eq!(r("bytes=1000-2000"), Unsatisfiable);
        assert_eq!(r("bytes=-0"), Unsatisfiable);
        assert_eq!(r("bytes=99999999999999999999999-"), Unsatisfiable);
        assert_eq!(
            r("bytes=0-99999999999999999999999"),
            Part { start: 0, end: 999 }
        );
        assert_eq!(parse_range("bytes=-1", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        for ignored in [
            "bytes=0-1,5-6",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=1",
            "items=0-1",
            "bytes 0-1",
            "bytes=+1-2",
            "bytes=",
        ] {
            assert_eq!(r(ignored), Whole, "{ignored}");
        }
    }

    #[test]
    fn entity_tags_match_weakly() {
        let e = etag(0x5f5e100, 1000);
        assert_eq!(e, "\"5f5e100-3e8\"");
        assert!(none_match(&e, &e));
        assert!(none_match("*", &e));
        assert!(none_match(&format!("\"x\", W/{e}"), &e));
        assert!(!none_match("\"x\", \"y\"", &e));
        assert!(!none_match("garbage", &e));
        assert!(!none_match("", &e));
    }

    /// Arbitrary input never panics and never yields a climbing path or an impossible range (a
    /// cheap stand-in for a fuzz target: mutations of valid requests and random bytes).
    #[test]
    fn arbitrary_input_is_refused_never_panics() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds: [&[u8]; 4] = [
            b"GET /install/%2e%2e/a%2fb?x HTTP/1.1\r\nRange: bytes=1-2\r\nContent-Length: 3\r\n\r\n",
            b"HEAD http://h/tftpboot/../x HTTP/1.0\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n",
            b"bytes=-100,5-",
            b"Sunday, 06-Nov-94 08:49:37 GMT",
        ];
        let alphabet = b"%./\\?#-=,:0123456789abcdefABCDEF \r\n\0\xff";
        for i in 0..20_000 {
            let mut b = seeds[i % seeds.len()].to_vec();
            for _ in 0..(rnd() % 6) {
                let at = (rnd() as usize) % (b.len() + 1);
                let c = if rnd() % 2 == 0 {
                    alphabet[(rnd() as usize) % alphabet.len()]
                } else {
                    rnd() as u8
                };
                match rnd() % 3 {
                    0 => b.insert(at, c),
                    1 if at < b.len() => b[at] = c,
                    _ if at < b.len() => {
                        b.remove(at);
                    }
                    _ => {}
                }
            }
            if let Ok(Some((h, n))) = parse_head(&b, 16384) {
                assert!(n <= b.len());
                let _ = h.body_length();
                let _ = h.keep_alive();
            }
            let text = String::from_utf8_lossy(&b);
            if let Ok(t) = parse_target(&text) {
                assert!(t.segments.iter().all(|s| !s.is_empty()
                    && s != "."
                    && s != ".."
                    && !s.contains('/')
                    && !s.contains('\0')));
            }
            for size in [0u64, 1, 1000] {
                if let RangeReq::Part { start, end } = parse_range(&text, size) {
                    assert!(start <= end && end < size, "{text:?} {size}");
                }
            }
            if let Some(t) = parse_http_date(&text) {
                let _ = http_date(t);
            }
        }
        assert_eq!(
            parse_http_date("Sun, 06 Nov 99999999999999999 08:49:37 GMT"),
            None
        );
        assert_eq!(http_date(i64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(http_date(i64::MIN), "Mon, 01 Jan 0001 00:00:00 GMT");
    }

    #[test]
    fn dates_round_trip_in_all_three_forms() {
        assert_eq!(http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(listing_date(784111777), "06-Nov-1994 08:49");
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(784111777)
        );
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(784111777));
        for t in [0i64, 951782400, 1_700_000_000, 4_102_444_800, -86_400] {
            assert_eq!(parse_http_date(&http_date(t)), Some(t), "{t}");
        }
        for bad in [
            "",
            "yesterday",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 PST",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }
}
