//! The `statements` of an OMAPI host object: the subset of ISC dhcpd's statement language that
//! xCAT's `makedhcp`, pypureomapi and omshell users send, parsed once and evaluated per request.
//!
//! Understood: `filename "f";` / `filename = "f";`, `next-server A;`, `option conf-file "u";`,
//! `option host-name "n";`, `send host-name "n";`, `supersede host-name "n";`,
//! `ddns-hostname "n";`, `supersede server.ddns-hostname = "n";`, `always-broadcast on;`,
//! `deny booting;`, `allow booting;`, and `if … { … } else if … { … } else { … }` over
//! `option user-class-identifier = "…"`, `option client-architecture = 00:07`,
//! `option vendor-class-identifier = "…"`, `substring(option vendor-class-identifier, a, b) = "…"`
//! with `and`, `or`, `not` and parentheses. Anything else is refused with a message naming it, so
//! an OMAPI client learns at once that bootherd will not do what it asked.
//!
//! One deliberate difference from ISC: `user-class-identifier = "xNBA"` also holds for stock iPXE
//! (user class "iPXE", or option 175 present). xCAT's statements use it to mean "already running
//! iPXE", and sending iPXE to iPXE again would loop.

use std::net::Ipv4Addr;

/// What a request looks like, for conditions.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts {
    pub user_classes: Vec<String>,
    pub ipxe: bool,
    pub arch: Option<u16>,
    pub vendor_class: Option<String>,
}

/// The effect of the statements on one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effect {
    pub filename: Option<String>,
    pub next_server: Option<Ipv4Addr>,
    pub conf_file: Option<String>,
    pub hostname: Option<String>,
    pub deny_booting: bool,
    pub always_broadcast: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stmt {
    Filename(String),
    NextServer(Ipv4Addr),
    ConfFile(String),
    HostName(String),
    DenyBooting(bool),
    AlwaysBroadcast,
    If(Vec<(Cond, Vec<Stmt>)>, Vec<Stmt>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Cond {
    UserClass(String),
    Arch(u16),
    VendorClass(String),
    VendorPrefix(usize, usize, String),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

/// Parsed statements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Statements(Vec<Stmt>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Str(String),
    Sym(char),
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    while let Some(&c) = it.peek() {
        if c.is_whitespace() {
            it.next();
        } else if c == '"' {
            it.next();
            let mut v = String::new();
            loop {
                match it.next() {
                    Some('"') => break,
                    Some('\\') => match it.next() {
                        Some(e) => v.push(e),
                        None => return Err("unterminated string".into()),
                    },
                    Some(ch) => v.push(ch),
                    None => return Err("unterminated string".into()),
                }
            }
            out.push(Tok::Str(v));
        } else if "{}();=,".contains(c) {
            it.next();
            out.push(Tok::Sym(c));
        } else {
            let mut w = String::new();
            while let Some(&ch) = it.peek() {
                if ch.is_whitespace() || "{}();=,\"".contains(ch) {
                    break;
                }
                w.push(ch);
                it.next();
            }
            out.push(Tok::Word(w));
        }
    }
    Ok(out)
}

struct P {
    toks: Vec<Tok>,
    i: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.i).cloned();
        self.i += 1;
        t
    }
    fn word(&mut self, w: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Word(x)) if x == w) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn sym(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Sym(c)) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect_sym(&mut self, c: char) -> Result<(), String> {
        if self.sym(c) {
            Ok(())
        } else {
            Err(format!("expected '{c}' near {}", self.here()))
        }
    }
    fn string(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            other => Err(format!(
                "expected a quoted string, found {}",
                show(other.as_ref())
            )),
        }
    }
    fn here(&self) -> String {
        let rest: Vec<String> = self.toks[self.i.min(self.toks.len())..]
            .iter()
            .take(6)
            .map(|t| show(Some(t)))
            .collect();
        if rest.is_empty() {
            "the end".into()
        } else {
            format!("'{}'", rest.join(" "))
        }
    }

    fn block(&mut self) -> Result<Vec<Stmt>, String> {
        self.expect_sym('{')?;
        let mut v = Vec::new();
        while !self.sym('}') {
            if self.peek().is_none() {
                return Err("missing '}'".into());
            }
            v.push(self.stmt()?);
        }
        Ok(v)
    }

    fn stmt(&mut self) -> Result<Stmt, String> {
        let start = self.here();
        let Some(Tok::Word(w)) = self.next() else {
            return Err(format!("a statement cannot start at {start}"));
        };
        let s = match w.as_str() {
            "filename" => {
                self.sym('=');
                Stmt::Filename(self.string()?)
            }
            "next-server" => {
                self.sym('=');
                match self.next() {
                    Some(Tok::Word(a)) | Some(Tok::Str(a)) => Stmt::NextServer(
                        a.parse()
                            .map_err(|_| format!("next-server '{a}' is not an IPv4 address"))?,
                    ),
                    other => {
                        return Err(format!(
                            "next-server needs an address, found {}",
                            show(other.as_ref())
                        ))
                    }
                }
            }
            "option" | "send" | "supersede" => {
                let Some(Tok::Word(name)) = self.next() else {
                    return Err(format!("{w} needs an option name near {start}"));
                };
                self.sym('=');
                match name.as_str() {
                    "conf-file" => Stmt::ConfFile(self.string()?),
                    "host-name" | "server.ddns-hostname" => Stmt::HostName(self.string()?),
                    _ => {
                        return Err(format!(
                            "option '{name}' is not supported in host statements"
                        ))
                    }
                }
            }
            "ddns-hostname" => {
                self.sym('=');
                Stmt::HostName(self.string()?)
            }
            "always-broadcast" => {
                self.word("on");
                Stmt::AlwaysBroadcast
            }
            "deny" | "allow" => {
                if !self.word("booting") {
                    return Err(format!("'{w}' is only understood as '{w} booting'"));
                }
                Stmt::DenyBooting(w == "deny")
            }
            "if" => {
                let mut arms = vec![(self.cond()?, self.block()?)];
                let mut otherwise = Vec::new();
                while self.word("else") {
                    if self.word("if") {
                        arms.push((self.cond()?, self.block()?));
                    } else {
                        otherwise = self.block()?;
                        break;
                    }
                }
                return Ok(Stmt::If(arms, otherwise));
            }
            other => return Err(format!("statement '{other}' is not understood")),
        };
        self.expect_sym(';')?;
        Ok(s)
    }

    fn cond(&mut self) -> Result<Cond, String> {
        let mut left = self.cond_and()?;
        while self.word("or") {
            left = Cond::Or(Box::new(left), Box::new(self.cond_and()?));
        }
        Ok(left)
    }
    fn cond_and(&mut self) -> Result<Cond, String> {
        let mut left = self.cond_atom()?;
        while self.word("and") {
            left = Cond::And(Box::new(left), Box::new(self.cond_atom()?));
        }
        Ok(left)
    }
    fn cond_atom(&mut self) -> Result<Cond, String> {
        if self.word("not") {
            return Ok(Cond::Not(Box::new(self.cond_atom()?)));
        }
        if self.sym('(') {
            let c = self.cond()?;
            self.expect_sym(')')?;
            return Ok(c);
        }
        if self.word("substring") {
            self.expect_sym('(')?;
            if !(self.word("option") && self.word("vendor-class-identifier")) {
                return Err(
                    "substring(...) is understood only over option vendor-class-identifier".into(),
                );
            }
            self.expect_sym(',')?;
            let a = self.number()?;
            self.expect_sym(',')?;
            let b = self.number()?;
            self.expect_sym(')')?;
            self.expect_sym('=')?;
            return Ok(Cond::VendorPrefix(a, b, self.string()?));
        }
        if !self.word("option") {
            return Err(format!("condition not understood near {}", self.here()));
        }
        let Some(Tok::Word(name)) = self.next() else {
            return Err("option name expected in condition".into());
        };
        self.expect_sym('=')?;
        match name.as_str() {
            "user-class-identifier" => Ok(Cond::UserClass(self.string()?)),
            "vendor-class-identifier" => Ok(Cond::VendorClass(self.string()?)),
            "client-architecture" | "pxe-system-type" => match self.next() {
                Some(Tok::Word(hex)) => {
                    let digits: String = hex.chars().filter(|c| *c != ':').collect();
                    u16::from_str_radix(&digits, 16)
                        .map(Cond::Arch)
                        .map_err(|_| {
                            format!("client-architecture value '{hex}' is not hex like 00:07")
                        })
                }
                other => Err(format!(
                    "client-architecture needs a value like 00:07, found {}",
                    show(other.as_ref())
                )),
            },
            other => Err(format!("conditions on option '{other}' are not supported")),
        }
    }
    fn number(&mut self) -> Result<usize, String> {
        match self.next() {
            Some(Tok::Word(n)) => n.parse().map_err(|_| format!("'{n}' is not a number")),
            other => Err(format!("number expected, found {}", show(other.as_ref()))),
        }
    }
}

fn show(t: Option<&Tok>) -> String {
    match t {
        None => "the end".into(),
        Some(Tok::Word(w)) => w.clone(),
        Some(Tok::Str(s)) => format!("\"{s}\""),
        Some(Tok::Sym(c)) => c.to_string(),
    }
}

impl Statements {
    /// Parses a statements string; the error names what was not understood.
    pub fn parse(s: &str) -> Result<Statements, String> {
        let mut p = P {
            toks: lex(s)?,
            i: 0,
        };
        let mut v = Vec::new();
        while p.peek().is_some() {
            if p.sym(';') {
                continue;
            }
            v.push(p.stmt()?);
        }
        Ok(Statements(v))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What the statements do for this request.
    pub fn eval(&self, req: &RequestFacts) -> Effect {
        let mut e = Effect::default();
        run(&self.0, req, &mut e);
        e
    }
}

fn run(stmts: &[Stmt], req: &RequestFacts, e: &mut Effect) {
    for s in stmts {
        match s {
            Stmt::Filename(f) => e.filename = Some(f.clone()),
            Stmt::NextServer(a) => e.next_server = Some(*a),
            Stmt::ConfFile(c) => e.conf_file = Some(c.clone()),
            Stmt::HostName(h) => e.hostname = Some(h.clone()),
            Stmt::DenyBooting(d) => e.deny_booting = *d,
            Stmt::AlwaysBroadcast => e.always_broadcast = true,
            Stmt::If(arms, otherwise) => match arms.iter().find(|(c, _)| holds(c, req)) {
                Some((_, body)) => run(body, req, e),
                None => run(otherwise, req, e),
            },
        }
    }
}

fn holds(c: &Cond, req: &RequestFacts) -> bool {
    match c {
        Cond::UserClass(u) => req.user_classes.iter().any(|x| x == u) || (u == "xNBA" && req.ipxe),
        Cond::Arch(a) => req.arch.unwrap_or(0) == *a,
        Cond::VendorClass(v) => req.vendor_class.as_deref() == Some(v.as_str()),
        Cond::VendorPrefix(a, b, v) => req
            .vendor_class
            .as_deref()
            .and_then(|vc| vc.get(*a..(*a + *b).min(vc.len())))
            .is_some_and(|sub| sub == v),
        Cond::And(x, y) => holds(x, req) && holds(y, req),
        Cond::Or(x, y) => holds(x, req) || holds(y, req),
        Cond::Not(x) => !holds(x, req),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xCAT's xnba statements for node n1 (dhcp.pm, as reference §5 quotes them), plus what
    /// makedhcp prepends and appends.
    const XNBA: &str = r#"ddns-hostname "n1"; send host-name "n1"; if option user-class-identifier = "xNBA" and option client-architecture = 00:00 { always-broadcast on; filename = "http://10.0.0.1/tftpboot/xcat/xnba/nodes/n1"; } else if option user-class-identifier = "xNBA" and (option client-architecture = 00:09 or option client-architecture = 00:07) { filename = "http://10.0.0.1/tftpboot/xcat/xnba/nodes/n1.uefi"; } else if option client-architecture = 00:07 { filename = "xcat/xnba.efi"; } else if option client-architecture = 00:00 { filename = "xcat/xnba.kpxe"; } else { filename = ""; } next-server 10.0.0.1;"#;

    fn req(arch: u16, uc: Option<&str>) -> RequestFacts {
        RequestFacts {
            user_classes: uc.map(|u| vec![u.to_string()]).unwrap_or_default(),
            ipxe: uc == Some("iPXE"),
            arch: Some(arch),
            vendor_class: Some("PXEClient:Arch:00000:UNDI:002001".into()),
        }
    }

    #[test]
    fn xcat_xnba_statements_choose_like_dhcpd() {
        let s = Statements::parse(XNBA).expect("parses");
        let f = |a, uc| s.eval(&req(a, uc)).filename.unwrap_or_default();
        assert_eq!(f(0, None), "xcat/xnba.kpxe");
        assert_eq!(f(7, None), "xcat/xnba.efi");
        assert_eq!(
            f(0, Some("xNBA")),
            "http://10.0.0.1/tftpboot/xcat/xnba/nodes/n1"
        );
        assert_eq!(
            f(9, Some("xNBA")),
            "http://10.0.0.1/tftpboot/xcat/xnba/nodes/n1.uefi"
        );
        assert_eq!(
            f(0, Some("iPXE")),
            "http://10.0.0.1/tftpboot/xcat/xnba/nodes/n1",
            "stock iPXE counts as xNBA"
        );
        assert_eq!(f(11, None), "");
        let e = s.eval(&req(0, None));
        assert_eq!(e.next_server, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(e.hostname.as_deref(), Some("n1"));
    }

    #[test]
    fn other_xcat_forms() {
        let e = Statements::parse(r#"filename = "pxelinux.0";"#)
            .expect("p")
            .eval(&req(0, None));
        assert_eq!(e.filename.as_deref(), Some("pxelinux.0"));
        let e = Statements::parse(r#"option conf-file "http://10.0.0.1/tftpboot/petitboot/n1";"#)
            .expect("p")
            .eval(&req(0x0e, None));
        assert_eq!(
            e.conf_file.as_deref(),
            Some("http://10.0.0.1/tftpboot/petitboot/n1")
        );
        assert!(
            Statements::parse("deny booting;")
                .expect("p")
                .eval(&req(0, None))
                .deny_booting
        );
        let e = Statements::parse(
            r#"supersede server.ddns-hostname = "n2"; supersede host-name = "n2";"#,
        )
        .expect("p")
        .eval(&req(0, None));
        assert_eq!(e.hostname.as_deref(), Some("n2"));
        let e = Statements::parse(r#"if substring(option vendor-class-identifier, 0, 9) = "PXEClient" { filename "a"; } else { filename "b"; }"#)
            .expect("p")
            .eval(&req(0, None));
        assert_eq!(e.filename.as_deref(), Some("a"));
    }

    #[test]
    fn unsupported_statements_are_named() {
        let e = Statements::parse("option routers 10.0.0.1;").unwrap_err();
        assert!(e.contains("routers"), "{e}");
        let e = Statements::parse("fixed-address 10.0.0.1;").unwrap_err();
        assert!(e.contains("fixed-address"), "{e}");
        let e = Statements::parse(r#"if option foo = "x" { }"#).unwrap_err();
        assert!(e.contains("foo"), "{e}");
        assert!(Statements::parse(r#"filename "x""#)
            .unwrap_err()
            .contains("';'"));
        assert!(
            Statements::parse(r#"if option client-architecture = 00:07 { filename "x";"#).is_err()
        );
        for junk in [
            "\"",
            "{",
            "}",
            "if",
            "if (",
            "next-server",
            "substring(",
            "((((",
            "filename = ;",
        ] {
            assert!(Statements::parse(junk).is_err(), "{junk}");
        }
    }
}
