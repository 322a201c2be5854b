//! xCAT's stanza files (`lsdef -z` writes them, `mkdef -z` / `chdef -z` read them), as
//! `xCAT::DBobjUtils::readFileInput` reads them:
//!
//! ```text
//! # <xCAT data object stanza file>
//!
//! node01:
//!     objtype=node
//!     groups=compute,all
//! ```
//!
//! A line ending in `:` starts an object; `default-<type>:` starts defaults for every later object
//! of that type; `attr=value` lines belong to the object above them (spaces around both trimmed,
//! one pair of surrounding double quotes dropped); blank lines and `#` comments are ignored.

use std::collections::BTreeMap;

/// One object of a stanza file, its attributes in file order (`objtype` among them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stanza {
    pub name: String,
    pub attrs: Vec<(String, String)>,
}

impl Stanza {
    pub fn objtype(&self) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == "objtype")
            .map(|(_, v)| v.as_str())
    }
}

/// Problems xCAT also reports while reading a stanza file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaError {
    pub line: usize,
    pub text: String,
}

/// Parses a stanza file. Lines xCAT skips (a stray `attr=value` before any object header, a
/// header with text after its colon) are reported as errors with their line numbers.
pub fn parse(text: &str) -> Result<Vec<Stanza>, StanzaError> {
    let mut out: Vec<Stanza> = Vec::new();
    let mut defaults: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    // Where attribute lines go: an object (index into out), the defaults of a type, or nowhere.
    enum Cur {
        None,
        Obj(usize),
        Default(String),
    }
    let mut cur = Cur::None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some(head) = t.strip_suffix(':') {
            let name = head.trim();
            if name.is_empty() || name.contains('=') {
                return Err(StanzaError {
                    line: i + 1,
                    text: raw.to_string(),
                });
            }
            if let Some(ty) = name.strip_prefix("default-").filter(|t| !t.contains('-')) {
                defaults.entry(ty.to_string()).or_default();
                cur = Cur::Default(ty.to_string());
                continue;
            }
            out.push(Stanza {
                name: name.to_string(),
                attrs: Vec::new(),
            });
            cur = Cur::Obj(out.len() - 1);
            continue;
        }
        let Some((k, v)) = t.split_once('=') else {
            return Err(StanzaError {
                line: i + 1,
                text: raw.to_string(),
            });
        };
        let k = k.trim().to_string();
        let mut v = v.trim();
        if let Some(s) = v.strip_prefix('"') {
            v = s.trim_start();
        }
        if let Some(s) = v.strip_suffix('"') {
            v = s.trim_end();
        }
        let v = v.to_string();
        match &cur {
            Cur::None => {
                return Err(StanzaError {
                    line: i + 1,
                    text: raw.to_string(),
                })
            }
            Cur::Default(ty) => defaults.entry(ty.clone()).or_default().push((k, v)),
            Cur::Obj(idx) => {
                let s = &mut out[*idx];
                match s.attrs.iter_mut().find(|(a, _)| *a == k) {
                    Some(slot) => slot.1 = v,
                    None => s.attrs.push((k, v)),
                }
            }
        }
    }
    // Defaults fill what an object of that type does not set itself.
    for s in &mut out {
        let Some(ty) = s.objtype().map(str::to_string) else {
            continue;
        };
        if let Some(d) = defaults.get(&ty) {
            for (k, v) in d {
                if !s.attrs.iter().any(|(a, _)| a == k) {
                    s.attrs.push((k.clone(), v.clone()));
                }
            }
        }
    }
    Ok(out)
}

/// The header line lsdef -z starts with.
pub const HEADER: &str = "# <xCAT data object stanza file>";

/// One object in lsdef -z form: a blank line, `name:`, `    objtype=…`, then `    attr=value`.
pub fn write_object(out: &mut String, name: &str, objtype: &str, attrs: &BTreeMap<String, String>) {
    out.push('\n');
    out.push_str(name);
    out.push_str(":\n");
    out.push_str("    objtype=");
    out.push_str(objtype);
    out.push('\n');
    for (k, v) in attrs {
        if k == "objtype" {
            continue;
        }
        out.push_str("    ");
        out.push_str(k);
        out.push('=');
        // The reader drops one surrounding pair of quotes, and takes a line ending in `:` for
        // an object header: such values are quoted so that they read back whole.
        if v.starts_with('"') || v.ends_with('"') || v.ends_with(':') {
            out.push('"');
            out.push_str(v);
            out.push('"');
        } else {
            out.push_str(v);
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_objects_defaults_and_quotes() {
        let s = parse(
            "# <xCAT data object stanza file>\n\ndefault-node:\n  groups=all\n\nn1:\n    objtype=node\n    ip = \"10.0.0.1\"\n\nn2:\n    objtype=node\n    groups=compute\n",
        )
        .expect("parses");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "n1");
        assert!(s[0].attrs.contains(&("ip".into(), "10.0.0.1".into())));
        assert!(s[0].attrs.contains(&("groups".into(), "all".into())));
        assert!(s[1].attrs.contains(&("groups".into(), "compute".into())));
        assert!(!s[1].attrs.contains(&("groups".into(), "all".into())));
    }

    #[test]
    fn stray_lines_are_errors() {
        assert_eq!(parse("ip=1\n").unwrap_err().line, 1);
        assert_eq!(parse("n1:\n  objtype=node\n  junk\n").unwrap_err().line, 3);
    }

    #[test]
    fn round_trips_what_it_writes() {
        let mut attrs = BTreeMap::new();
        attrs.insert("groups".to_string(), "all".to_string());
        attrs.insert("postscripts".to_string(), "a=b,c".to_string());
        let mut text = HEADER.to_string();
        text.push('\n');
        write_object(&mut text, "n1", "node", &attrs);
        let s = parse(&text).expect("parses");
        assert_eq!(s[0].objtype(), Some("node"));
        assert!(s[0].attrs.contains(&("postscripts".into(), "a=b,c".into())));
    }
}

#[cfg(test)]
mod fuzz_found {
    //! Cases the fuzz target found.
    use super::*;

    fn write(objs: &[Stanza]) -> String {
        let mut text = String::from(HEADER);
        text.push('\n');
        for s in objs {
            let attrs: BTreeMap<String, String> = s.attrs.iter().cloned().collect();
            write_object(&mut text, &s.name, s.objtype().unwrap_or(""), &attrs);
        }
        text
    }

    /// Found by the stanza fuzz target: a value that still starts with quotes after the reader
    /// dropped one must survive a write and a read.
    #[test]
    fn values_starting_with_quotes_round_trip() {
        let text = "\0:\n'=ccco\n=\"\"\"%=#%:%%:%";
        let first = parse(text).expect("parses");
        let once = parse(&write(&first)).expect("parses");
        assert!(once[0].attrs.contains(&("".into(), "\"\"%=#%:%%:%".into())));
        let twice = parse(&write(&once)).expect("again");
        assert_eq!(once, twice);
    }

    /// Also found by the fuzz target: a value ending in `:` must not read back as a header.
    #[test]
    fn values_ending_with_a_colon_round_trip() {
        let text = "\0:\n\u{5}\0;\0\0=  \u{1}ult-:\"";
        let first = parse(text).expect("parses");
        let once = parse(&write(&first)).expect("what lsdef -z writes parses");
        assert!(once[0].attrs.contains(&first[0].attrs[0]), "{once:?}");
        let mut a = BTreeMap::new();
        a.insert("url".to_string(), "http:".to_string());
        let mut t = String::new();
        write_object(&mut t, "n1", "node", &a);
        assert_eq!(
            parse(&t).expect("parses")[0].attrs[1],
            ("url".into(), "http:".into())
        );
    }
}
