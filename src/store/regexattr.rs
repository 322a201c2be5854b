//! xCAT regex attribute values (`transRegexAttrs`) and variable substitution (`subVars`).
//!
//! # Regex values
//!
//! A table value in a node-keyed table may be a rule that computes the value from the
//! node name. [`RegexValue::parse`] recognises the rule once, compiling the pattern and
//! pre-parsing the replacement; [`RegexValue::apply`] then evaluates it for one node.
//!
//! Recognition mirrors the two tests xCAT's `Table.pm` applies to the *whole* value:
//!
//! * `^/[^/]*/[^/]*/$` — the **slash form** `/pat/repl/`: exactly three slashes, the
//!   first and last at the ends. So `/\z/-bmc/` is a rule, while `/install`, `/install/`
//!   and `/a/b/c` are plain values. Beware that a path with exactly two components and
//!   a trailing slash, such as `/install/foo/`, *is* a rule in xCAT (it replaces
//!   `install` by `foo` in the node name); this is mirrored.
//! * `^\|.*\|$` — the **pipe form**: starts and ends with `|` with no newline in
//!   between (`.` does not match a newline). The text between the outer bars is split
//!   at its first `|`: `|pat|repl|`. Without a `|` inside it is the **easy form**
//!   `|repl|`, whose pattern is generated from the node name: `[\D0]*(\d+)` once per
//!   number in the name, then `.*$`. A pattern may therefore never contain `|`, and a
//!   replacement may (`|a|b|c|` is pattern `a`, replacement `b|c`).
//!
//! Like Perl's `$`, both tests also accept a value followed by one final newline; the
//! outer characters are then stripped exactly as xCAT's `substr`/`chop` do.
//!
//! Evaluation is one substitution of the first match in the node name (Perl `s///`
//! without `/g`). When the pattern does not match, the node name itself is the value,
//! for both forms (xCAT's final `s///` leaves it unchanged). In the pipe forms every
//! top-level `(...)` of the replacement is an expression evaluated under Perl's
//! `use integer`: `+ - * / %` (truncating division, C remainder), unary `-`/`+`, `**`,
//! `.` (concatenation), nested parentheses, `$1`/`${1}` capture variables, numeric
//! literals (decimal, `0x`, `0b`, leading-`0` octal, `_` separators), quoted strings,
//! barewords (strings, as in non-strict Perl), xCAT's helpers `a2idx`, `a2zidx`,
//! `dim2idx`, `skip`, `ipadd`, `mknum`, and the Perl builtins `sprintf` (xCAT's own
//! manual uses `sprintf('%02d',...)`), `int`, `abs`, `lc`, `uc`, `length`, `ord`.
//! An empty result (or a lone newline, which Perl's `/^$/` also accepts) is undefined.
//!
//! # What of Perl's behaviour is mirrored, and what is not
//!
//! Mirrored: the recognition rules above; first-match substitution; node name unchanged
//! on no match; `$1` inside an expression is a *variable*, not pasted text (so `node010`
//! gives `010` → 10, never octal 8); a lone `($1)` keeps the captured text as it is, zero
//! padding included (xCAT evaluates the text `($1)`, whose value is the capture: its docs'
//! `|\D+(\d+)\D+(\d+)\D+(\d+)\D+(\d+)|c($1)f($2)x($3)|` on `c01f02x03v04` is `c01f02x03`,
//! and its regression case `mkdef_regex_kvm` checks it); numeric strings
//! convert like Perl's (`"007"`
//! → 7, `"12abc"` → 12, `"abc"` → 0, `"1.9"` → 1); unary minus on a string starting with
//! a letter gives `-abc` (Perl's string negation); missing captures are `undef` (empty
//! text, zero as a number); an empty pattern never matches (Perl would reuse the last
//! successful pattern, which in xCAT is its own form-recognition regex and cannot match
//! a node name); the helpers' argument conventions (missing arguments are `undef`,
//! extra ones ignored, `skip` returns its first argument untouched when nothing is
//! skipped, `ipadd` joins the first two octets as given).
//!
//! Deliberately *not* mirrored:
//!
//! * `$1`, `${1}` in the replacement text outside an expression are expanded (the project
//!   asks for it: `/(.*)/$1-ib0/` gives `n1-ib0`). xCAT interpolates the replacement
//!   only once, so there it yields the literal text `$1-ib0`. `$0` is left as it is.
//! * Expression failures are errors, not empty text: division or modulus by zero,
//!   integer overflow (Perl wraps), unknown functions, malformed expressions, and
//!   unbalanced parentheses in the replacement. xCAT silently evaluates a failed
//!   expression to an empty string, and falls back to a literal copy of the replacement
//!   when its first `(` is unbalanced.
//! * An expression is evaluated on its own. xCAT pastes it into a copy of the node name
//!   and `eval`s the whole thing, so when the pattern does not cover the entire name the
//!   unmatched text becomes Perl code around the expression (`node(1+1)` calls a
//!   function `node` and fails); its results for such partial matches are accidental.
//! * Only the Perl-expression subset above is accepted. Floating-point literals, the
//!   comma operator, `++`/`--`, comparisons, builtins not listed (`substr`, ...) or
//!   called without parentheses, and floating-point `sprintf` conversions are errors.
//!   Expressions are limited to 64 levels of nesting and 256 terms and operators, and
//!   `sprintf` widths to 1024, so hostile values cannot exhaust stack or memory.
//! * Patterns run on the `regex` crate. Constructs it lacks (backreferences,
//!   lookaround, atomic groups, possessive quantifiers, recursion, conditionals, `\G`,
//!   `\K`, code blocks, verbs) are reported with their position. `\Z` is treated as `\z`
//!   and `$` as end of text: they differ only before a final newline, which node names
//!   never contain. For the same reason the easy form's trailing `.*$` is taken as "the
//!   rest of the name". Perl's literal `{`/`}` and nested `[` inside a class are escaped
//!   for the crate, `(?#...)` comments dropped and `{,n}` written `{0,n}`.
//!
//! # Variables
//!
//! [`substitute_vars`] implements `subVars`, used for `litetree.directory` and
//! `statelite.statemnt`. In each `/`-separated component that contains `$`, the text
//! from the first `$` up to the first `#` or space is a run of variables: `$node` is the
//! node name, `$site.key` a site value, `$table.col` the node's attribute; a missing,
//! empty or `0` value becomes `UNDEFINED`; several variables (`$a$b`) are joined with
//! `.`. Afterwards, if the result contains `#CMD=`, it is split at every `#` and each
//! piece containing `CMD=` is replaced by the output of that command, run with `sh -c`.
//! [`substitute_vars`] keeps the template's slashes as they are; [`substitute_vars_xcat`]
//! reproduces xCAT's exact joining (its `dir` mode turns `/install/$node` into
//! `//install/n1`, which xCAT's callers then collapse).

use std::borrow::Cow;
use std::process::{Command, Stdio};

use regex::{CaptureLocations, Regex, RegexBuilder};

/// A table value that could not be evaluated for a node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad regex value '{value}': {reason}")]
pub struct RegexValueError {
    pub value: String,
    pub reason: String,
}

/// A parsed xCAT regex value (`/pat/repl/`, `|pat|repl|`, `|repl|`), compiled once and applied to many nodes.
#[derive(Debug, Clone)]
pub struct RegexValue {
    source: Box<str>,
    matcher: Matcher,
    template: Template,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// Empty pattern: never matches a node name (see the module docs).
    Never,
    /// An explicit pattern. `groups` is false when the replacement uses no capture, so
    /// the cheaper `find` suffices.
    Regex { re: Regex, groups: bool },
    /// The easy form: the generated pattern always covers the whole name, and its
    /// captures are the numbers found by [`easy_numbers`].
    Easy,
}

/// The replacement, split once into parts so that `apply` does no parsing.
#[derive(Debug, Clone)]
struct Template {
    parts: Vec<Part>,
    /// Bytes of literal text, to size the output buffer in one go.
    literal_len: usize,
}

#[derive(Debug, Clone)]
enum Part {
    Lit(Box<str>),
    Group(usize),
    Expr { expr: Expr, src: Box<str> },
}

impl RegexValue {
    /// `Ok(None)` when `value` is a plain value (not one of the regex forms).
    pub fn parse(value: &str) -> Result<Option<RegexValue>, RegexValueError> {
        let Some(form) = recognise(value) else {
            return Ok(None);
        };
        let err = |reason: String| RegexValueError {
            value: value.to_owned(),
            reason,
        };
        let (pattern, repl, arithmetic) = match form {
            Form::Slash { pattern, repl } => (Some(pattern), repl, false),
            Form::Pipe { pattern, repl } => (pattern, repl, true),
        };
        let template = Template::parse(repl, arithmetic).map_err(err)?;
        let matcher = match pattern {
            None => Matcher::Easy,
            Some("") => Matcher::Never,
            Some(p) => {
                let translated = translate_pattern(p).map_err(err)?;
                let re = RegexBuilder::new(&translated)
                    .octal(true)
                    .build()
                    .map_err(|e| err(format!("cannot compile pattern `{p}`: {e}")))?;
                let groups = template.parts.iter().any(|p| !matches!(p, Part::Lit(_)));
                Matcher::Regex { re, groups }
            }
        };
        Ok(Some(RegexValue {
            source: value.into(),
            matcher,
            template,
        }))
    }

    /// Whether `value` has one of the regex forms (without compiling it).
    pub fn is_regex_value(value: &str) -> bool {
        recognise(value).is_some()
    }

    /// The table value this was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The value for `node`. `Ok(None)` when the result is empty (xCAT treats that as undefined).
    pub fn apply(&self, node: &str) -> Result<Option<String>, RegexValueError> {
        let out = match &self.matcher {
            Matcher::Never => node.to_owned(),
            Matcher::Regex { re, groups: true } => {
                let mut locs = re.capture_locations();
                match re.captures_read(&mut locs, node) {
                    Some(m) => {
                        self.render(node, m.start(), m.end(), &Groups::Regex(node, &locs))?
                    }
                    None => node.to_owned(),
                }
            }
            Matcher::Regex { re, groups: false } => match re.find(node) {
                Some(m) => self.render(node, m.start(), m.end(), &Groups::None)?,
                None => node.to_owned(),
            },
            Matcher::Easy => {
                let spans = easy_numbers(node);
                self.render(node, 0, node.len(), &Groups::Spans(node, &spans))?
            }
        };
        // Perl's `/^$/` is also true for a lone newline.
        Ok(if out.is_empty() || out == "\n" {
            None
        } else {
            Some(out)
        })
    }

    fn render(
        &self,
        node: &str,
        start: usize,
        end: usize,
        groups: &Groups<'_>,
    ) -> Result<String, RegexValueError> {
        let mut out = String::with_capacity(node.len() + self.template.literal_len + 8);
        out.push_str(node.get(..start).unwrap_or(""));
        for part in &self.template.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Group(i) => out.push_str(groups.get(*i).unwrap_or("")),
                Part::Expr { expr, src } => match eval(expr, groups) {
                    // A lone capture is the variable `$1` in xCAT's eval, so its text is kept as
                    // it is: `c($1)f($2)` on c01f02x03v04 is c01f02 (xCAT's regexp_db docs).
                    Ok(v) => v.push_to(&mut out),
                    Err(reason) => {
                        return Err(RegexValueError {
                            value: self.source.to_string(),
                            reason: format!("node '{node}': {reason} in `{src}`"),
                        })
                    }
                },
            }
        }
        out.push_str(node.get(end..).unwrap_or(""));
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// Recognition

enum Form<'v> {
    Slash {
        pattern: &'v str,
        repl: &'v str,
    },
    /// `pattern` is `None` for the easy form.
    Pipe {
        pattern: Option<&'v str>,
        repl: &'v str,
    },
}

fn recognise(value: &str) -> Option<Form<'_>> {
    // Perl's `$` matches at the end or just before a final newline, so each test is
    // tried on the whole value and on the value without that newline.
    let trimmed = value.strip_suffix('\n');
    let slash = |s: &str| {
        s.len() >= 3
            && s.starts_with('/')
            && s.ends_with('/')
            && s[1..s.len() - 1].bytes().filter(|&b| b == b'/').count() == 1
    };
    let pipe = |s: &str| {
        s.len() >= 2 && s.starts_with('|') && s.ends_with('|') && !s[1..s.len() - 1].contains('\n')
    };
    // xCAT then drops the first character and `chop`s the last one of the whole value,
    // which is the newline when only the trimmed value passed the test. All of these
    // characters are ASCII, so the slice is on character boundaries.
    let inner = || value.get(1..value.len() - 1).unwrap_or("");
    if slash(value) || trimmed.is_some_and(slash) {
        let exp = inner();
        let (pattern, repl) = exp.split_once('/').unwrap_or((exp, ""));
        return Some(Form::Slash { pattern, repl });
    }
    if pipe(value) || trimmed.is_some_and(pipe) {
        let exp = inner();
        return Some(match exp.split_once('|') {
            Some((pattern, repl)) => Form::Pipe {
                pattern: Some(pattern),
                repl,
            },
            // Perl's split of an empty string yields no fields at all, which xCAT then
            // treats as an easy form with an undefined (empty) replacement.
            None => Form::Pipe {
                pattern: None,
                repl: exp,
            },
        });
    }
    None
}

/// Spans of the captures of the easy-form pattern (`[\D0]*(\d+)` repeated once per
/// number, then `.*$`). `[\D0]*` is greedy and also eats zeros, so a capture starts at
/// the first non-zero digit (`node007` → `7`), and a run of zeros is only captured
/// (as the single last `0`) when no non-zero digit follows it (`a0b5c0` → `5`, `0`).
fn easy_numbers(node: &str) -> Vec<(usize, usize)> {
    let b = node.as_bytes();
    let mut spans = Vec::new();
    let mut p = 0;
    while p < b.len() {
        match b[p..].iter().position(|c| (b'1'..=b'9').contains(c)) {
            Some(off) => {
                let start = p + off;
                let len = b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
                spans.push((start, start + len));
                p = start + len;
            }
            None => {
                if let Some(z) = b[p..].iter().rposition(|&c| c == b'0') {
                    spans.push((p + z, p + z + 1));
                }
                break;
            }
        }
    }
    spans
}

// ---------------------------------------------------------------------------
// Pattern translation (Perl regex → regex crate)

/// Checks a Perl pattern for constructs the `regex` crate lacks and rewrites the few
/// that differ only in spelling. Errors name the construct and its byte offset.
fn translate_pattern(pat: &str) -> Result<String, String> {
    let b = pat.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len() + 8);
    let unsupported = |what: &str, at: usize| {
        format!(
            "{what} at byte {at} of pattern `{pat}` is not supported (the regex crate lacks it)"
        )
    };
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                let Some(&n) = b.get(i + 1) else {
                    return Err(format!("pattern `{pat}` ends with a lone backslash"));
                };
                match n {
                    b'1'..=b'9' | b'g' | b'k' => return Err(unsupported("backreference", i)),
                    b'K' => return Err(unsupported("`\\K`", i)),
                    b'G' => return Err(unsupported("`\\G`", i)),
                    b'Z' => out.extend_from_slice(b"\\z"),
                    _ => out.extend_from_slice(&b[i..i + 2]),
                }
                i += 2;
            }
            b'[' => i = copy_class(pat, i, &mut out)?,
            b'(' => {
                let rest = &b[i + 1..];
                if rest.first() == Some(&b'*') {
                    return Err(unsupported("backtracking verb `(*...)`", i));
                }
                if rest.first() == Some(&b'?') {
                    let r = &rest[1..];
                    let what = match r {
                        [b'=', ..] => Some("lookahead `(?=`"),
                        [b'!', ..] => Some("negative lookahead `(?!`"),
                        [b'<', b'=', ..] => Some("lookbehind `(?<=`"),
                        [b'<', b'!', ..] => Some("negative lookbehind `(?<!`"),
                        [b'>', ..] => Some("atomic group `(?>`"),
                        [b'|', ..] => Some("branch reset `(?|`"),
                        [b'(', ..] => Some("conditional `(?(`"),
                        [b'{', ..] | [b'?', b'{', ..] => Some("code block `(?{`"),
                        [b'R', ..] | [b'&', ..] | [b'0'..=b'9', ..] => Some("recursion"),
                        [b'+' | b'-', b'0'..=b'9', ..] => Some("recursion"),
                        [b'P', b'>', ..] => Some("recursion `(?P>`"),
                        [b'P', b'=', ..] => Some("backreference `(?P=`"),
                        [b'\'', ..] => Some("quoted group name `(?'`"),
                        [b'^', ..] => Some("caret flags `(?^`"),
                        _ => None,
                    };
                    if let Some(what) = what {
                        return Err(unsupported(what, i));
                    }
                    if r.first() == Some(&b'#') {
                        // Perl inline comment: drop it.
                        match r.iter().position(|&c| c == b')') {
                            Some(end) => {
                                i += 3 + end;
                                continue;
                            }
                            None => {
                                return Err(format!(
                                    "unterminated `(?#` comment at byte {i} of pattern `{pat}`"
                                ))
                            }
                        }
                    }
                    out.extend_from_slice(b"(?");
                    i += 2;
                } else {
                    out.push(b'(');
                    i += 1;
                }
            }
            b'*' | b'+' | b'?' => {
                out.push(b[i]);
                i += 1;
                if b.get(i) == Some(&b'+') {
                    return Err(unsupported("possessive quantifier", i - 1));
                }
            }
            b'{' => match brace_quantifier(&b[i..]) {
                Some((len, min_missing)) => {
                    out.push(b'{');
                    if min_missing {
                        out.push(b'0');
                    }
                    out.extend_from_slice(&b[i + 1..i + len]);
                    i += len;
                    if b.get(i) == Some(&b'+') {
                        return Err(unsupported("possessive quantifier", i - 1));
                    }
                }
                None => {
                    // Perl takes a `{` that does not start a quantifier literally.
                    out.extend_from_slice(b"\\{");
                    i += 1;
                }
            },
            b'}' => {
                out.extend_from_slice(b"\\}");
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("pattern `{pat}` is not valid text"))
}

/// Length of a Perl `{n}`, `{n,}`, `{n,m}` or `{,m}` quantifier at the start of `b`,
/// and whether the minimum is missing (`{,m}`, which is written `{0,m}` for the crate).
fn brace_quantifier(b: &[u8]) -> Option<(usize, bool)> {
    let mut i = 1;
    let min = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    i += min;
    let mut max = 0;
    let comma = b.get(i) == Some(&b',');
    if comma {
        i += 1;
        max = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += max;
    }
    if b.get(i) != Some(&b'}') || (min == 0 && max == 0) {
        return None;
    }
    Some((i + 1, min == 0))
}

/// Copies a bracketed character class starting at `start`, returning the index after it.
/// Perl treats `[`, `&&`, `~~` and `--` inside a class literally; the crate reads them as
/// nested classes and set operations, so they are escaped.
fn copy_class(pat: &str, start: usize, out: &mut Vec<u8>) -> Result<usize, String> {
    let b = pat.as_bytes();
    let mut i = start + 1;
    out.push(b'[');
    if b.get(i) == Some(&b'^') {
        out.push(b'^');
        i += 1;
    }
    if b.get(i) == Some(&b']') {
        out.extend_from_slice(b"\\]");
        i += 1;
    }
    while i < b.len() {
        match b[i] {
            b']' => {
                out.push(b']');
                return Ok(i + 1);
            }
            b'\\' => {
                let Some(&n) = b.get(i + 1) else { break };
                out.push(b'\\');
                out.push(n);
                i += 2;
            }
            b'[' if b.get(i + 1) == Some(&b':') => {
                // POSIX class `[:name:]`, which the crate understands.
                let end = b[i + 2..]
                    .windows(2)
                    .position(|w| w == b":]")
                    .ok_or_else(|| {
                        format!("unterminated POSIX class at byte {i} of pattern `{pat}`")
                    })?;
                let stop = i + 2 + end + 2;
                out.extend_from_slice(&b[i..stop]);
                i = stop;
            }
            b'[' | b'&' | b'~' => {
                out.push(b'\\');
                out.push(b[i]);
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                out.extend_from_slice(b"\\-");
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err(format!(
        "unterminated character class `[` at byte {start} of pattern `{pat}`"
    ))
}

// ---------------------------------------------------------------------------
// Replacement template

impl Template {
    /// Splits the replacement into literal text, `$N` captures and (pipe forms only)
    /// top-level `(...)` expressions. Groups are found the way xCAT's
    /// `Text::Balanced::extract_bracketed(..., '()')` finds them: quotes are not special,
    /// and inside a group a backslash hides the next character.
    fn parse(repl: &str, arithmetic: bool) -> Result<Template, String> {
        let mut t = Template {
            parts: Vec::new(),
            literal_len: 0,
        };
        if !arithmetic {
            t.push_literal(repl);
            return Ok(t);
        }
        let b = repl.as_bytes();
        let mut lit_start = 0;
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'(' => {
                    t.push_literal(&repl[lit_start..i]);
                    let open = i;
                    let mut depth = 0usize;
                    let mut close = None;
                    while i < b.len() {
                        match b[i] {
                            b'\\' => i += 1,
                            b'(' => depth += 1,
                            b')' => {
                                depth -= 1;
                                if depth == 0 {
                                    close = Some(i);
                                    break;
                                }
                            }
                            _ => {}
                        }
                        i += 1;
                    }
                    let Some(close) = close else {
                        return Err(format!(
                            "unbalanced `(` at byte {open} of replacement `{repl}`"
                        ));
                    };
                    let src = &repl[open..=close];
                    let expr = parse_group(&repl[open + 1..close])
                        .map_err(|e| format!("{e} in `{src}`"))?;
                    t.parts.push(Part::Expr {
                        expr,
                        src: src.into(),
                    });
                    i = close + 1;
                    lit_start = i;
                }
                b')' => return Err(format!("unmatched `)` at byte {i} of replacement `{repl}`")),
                _ => i += 1,
            }
        }
        t.push_literal(&repl[lit_start..]);
        Ok(t)
    }

    /// Literal text, with `$N` and `${N}` (N ≥ 1) turned into capture references.
    fn push_literal(&mut self, text: &str) {
        let b = text.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'$' {
                if let Some((group, len)) = capture_ref(&b[i + 1..]) {
                    self.push_text(&text[start..i]);
                    self.parts.push(Part::Group(group));
                    i += 1 + len;
                    start = i;
                    continue;
                }
            }
            i += 1;
        }
        self.push_text(&text[start..]);
    }

    fn push_text(&mut self, s: &str) {
        if !s.is_empty() {
            self.literal_len += s.len();
            self.parts.push(Part::Lit(s.into()));
        }
    }
}

/// After a `$`: `N` (all digits, as Perl reads `$10`) or `{N}`, N ≥ 1.
/// Returns the group and the number of bytes used.
fn capture_ref(b: &[u8]) -> Option<(usize, usize)> {
    let (digits, extra) = if b.first() == Some(&b'{') {
        let n = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || b.get(1 + n) != Some(&b'}') {
            return None;
        }
        (&b[1..1 + n], 2)
    } else {
        let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
        (&b[..n], 0)
    };
    if digits.first().is_none_or(|&d| d == b'0') {
        return None;
    }
    // A number too large to be a group simply never matches a group.
    let group = digits.iter().try_fold(0usize, |acc, &d| {
        acc.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    });
    Some((group.unwrap_or(usize::MAX), digits.len() + extra))
}

// ---------------------------------------------------------------------------
// Expressions

#[derive(Debug, Clone)]
enum Expr {
    /// An empty group `()`: Perl's empty list, `undef` in scalar context.
    Undef,
    Num(i64),
    Str(Box<str>),
    Interp(Vec<StrPiece>),
    Group(usize),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Concat(Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
}

#[derive(Debug, Clone)]
enum StrPiece {
    Lit(Box<str>),
    Group(usize),
}

#[derive(Debug, Clone, Copy)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Pow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    A2idx,
    A2zidx,
    Dim2idx,
    Skip,
    Ipadd,
    Mknum,
    Sprintf,
    Int,
    Abs,
    Lc,
    Uc,
    Length,
    Ord,
}

impl Func {
    fn by_name(name: &str) -> Option<Func> {
        Some(match name {
            "a2idx" => Func::A2idx,
            "a2zidx" => Func::A2zidx,
            "dim2idx" => Func::Dim2idx,
            "skip" => Func::Skip,
            "ipadd" => Func::Ipadd,
            "mknum" => Func::Mknum,
            "sprintf" => Func::Sprintf,
            "int" => Func::Int,
            "abs" => Func::Abs,
            "lc" => Func::Lc,
            "uc" => Func::Uc,
            "length" => Func::Length,
            "ord" => Func::Ord,
            _ => return None,
        })
    }

    /// xCAT's helpers are plain Perl subs and take any number of arguments; the Perl
    /// builtins refuse the wrong count at compile time.
    fn check_arity(self, name: &str, n: usize) -> Result<(), String> {
        match self {
            Func::Sprintf if n == 0 => Err("sprintf needs a format".into()),
            Func::Int | Func::Abs | Func::Lc | Func::Uc | Func::Length | Func::Ord if n != 1 => {
                Err(format!("{name} takes exactly one argument"))
            }
            _ => Ok(()),
        }
    }
}

/// Nesting limit for parentheses and chains of unary operators, so that hostile input
/// cannot exhaust the stack in the recursive parser or evaluator.
const MAX_DEPTH: u32 = 64;

/// Size limit for one expression. Operator chains (`1+1+1+...`) build left-deep trees
/// that the nesting limit does not see; this bounds evaluation and drop recursion too.
const MAX_NODES: u32 = 256;

/// Parses the inside of a top-level group.
fn parse_group(src: &str) -> Result<Expr, String> {
    let mut p = Parser {
        s: src.as_bytes(),
        src,
        pos: 0,
        depth: 0,
        nodes: 0,
    };
    p.ws();
    if p.pos == p.s.len() {
        return Ok(Expr::Undef);
    }
    let e = p.expr()?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(p.unexpected());
    }
    Ok(e)
}

struct Parser<'s> {
    s: &'s [u8],
    src: &'s str,
    pos: usize,
    depth: u32,
    nodes: u32,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn unexpected(&self) -> String {
        match self.src.get(self.pos..).and_then(|r| r.chars().next()) {
            Some(c) => format!(
                "unexpected `{c}` at byte {} (unsupported or malformed expression)",
                self.pos
            ),
            None => "expression ends unexpectedly".to_string(),
        }
    }

    /// Perl reads `++` and `--` as auto-increment/decrement, which cannot apply to
    /// these read-only values; refuse them rather than read two signs.
    fn no_increment(&self) -> Result<(), String> {
        match (self.peek(), self.s.get(self.pos + 1)) {
            (Some(c @ (b'+' | b'-')), Some(&d)) if c == d => {
                let op = char::from(c);
                Err(format!(
                    "unsupported operator `{op}{op}` at byte {}",
                    self.pos
                ))
            }
            _ => Ok(()),
        }
    }

    fn count_node(&mut self) -> Result<(), String> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            Err(format!(
                "expression longer than {MAX_NODES} terms and operators"
            ))
        } else {
            Ok(())
        }
    }

    fn deeper(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(format!("expression nested more than {MAX_DEPTH} deep"))
        } else {
            Ok(())
        }
    }

    fn expr(&mut self) -> Result<Expr, String> {
        self.deeper()?;
        let mut lhs = self.term()?;
        loop {
            self.ws();
            self.no_increment()?;
            let op = match self.peek() {
                Some(b'+') => Some(BinOp::Add),
                Some(b'-') => Some(BinOp::Sub),
                Some(b'.') => None,
                _ => break,
            };
            self.pos += 1;
            self.count_node()?;
            let rhs = self.term()?;
            lhs = match op {
                Some(op) => Expr::Bin(op, Box::new(lhs), Box::new(rhs)),
                None => Expr::Concat(Box::new(lhs), Box::new(rhs)),
            };
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn term(&mut self) -> Result<Expr, String> {
        let mut lhs = self.unary()?;
        loop {
            self.ws();
            let op = match self.peek() {
                Some(b'*') => BinOp::Mul,
                Some(b'/') => BinOp::Div,
                Some(b'%') => BinOp::Rem,
                _ => break,
            };
            self.pos += 1;
            self.count_node()?;
            let rhs = self.unary()?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        self.ws();
        self.no_increment()?;
        match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                self.count_node()?;
                self.deeper()?;
                let e = self.unary()?;
                self.depth -= 1;
                Ok(Expr::Neg(Box::new(e)))
            }
            Some(b'+') => {
                // Unary plus is a no-op in Perl: `(+$1)` is `($1)`.
                self.pos += 1;
                self.deeper()?;
                let e = self.unary()?;
                self.depth -= 1;
                Ok(e)
            }
            _ => self.power(),
        }
    }

    /// `**` binds tighter than unary minus on its left and is right-associative.
    fn power(&mut self) -> Result<Expr, String> {
        let base = self.primary()?;
        self.ws();
        if self.s[self.pos..].starts_with(b"**") {
            self.pos += 2;
            self.count_node()?;
            self.deeper()?;
            let exp = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Bin(BinOp::Pow, Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<Expr, String> {
        self.count_node()?;
        self.ws();
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                let e = self.expr()?;
                self.ws();
                if self.peek() != Some(b')') {
                    return Err(self.unexpected());
                }
                self.pos += 1;
                Ok(e)
            }
            Some(b'$') => self.variable(),
            Some(b'\'') => self.single_quoted(),
            Some(b'"') => self.double_quoted(),
            Some(c) if c.is_ascii_digit() => self.number(),
            Some(b'.') if self.s.get(self.pos + 1).is_some_and(u8::is_ascii_digit) => Err(format!(
                "floating-point literal at byte {} is not supported",
                self.pos
            )),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => self.word(),
            _ => Err(self.unexpected()),
        }
    }

    fn variable(&mut self) -> Result<Expr, String> {
        let at = self.pos;
        match capture_ref(&self.s[self.pos + 1..]) {
            Some((group, len)) => {
                self.pos += 1 + len;
                Ok(Expr::Group(group))
            }
            None => Err(format!(
                "unsupported variable at byte {at} (only capture groups $1, ${{1}}, ... are available)"
            )),
        }
    }

    fn number(&mut self) -> Result<Expr, String> {
        let at = self.pos;
        let s = self.s;
        let (radix, mut i) = match (s[at], s.get(at + 1)) {
            (b'0', Some(b'x' | b'X')) => (16, at + 2),
            (b'0', Some(b'b' | b'B')) => (2, at + 2),
            (b'0', Some(b'o' | b'O')) => (8, at + 2),
            (b'0', Some(c)) if c.is_ascii_digit() || *c == b'_' => (8, at + 1),
            _ => (10, at),
        };
        let mut value: i64 = 0;
        let mut digits = 0;
        while let Some(&c) = s.get(i) {
            let d = match c {
                b'_' => {
                    i += 1;
                    continue;
                }
                b'0'..=b'9' => u32::from(c - b'0'),
                b'a'..=b'f' if radix == 16 => u32::from(c - b'a' + 10),
                b'A'..=b'F' if radix == 16 => u32::from(c - b'A' + 10),
                _ => break,
            };
            if d >= radix {
                return Err(format!(
                    "illegal digit `{}` in number at byte {at}",
                    c as char
                ));
            }
            value = value
                .checked_mul(i64::from(radix))
                .and_then(|v| v.checked_add(i64::from(d)))
                .ok_or_else(|| format!("integer literal at byte {at} overflows"))?;
            digits += 1;
            i += 1;
        }
        if digits == 0 && radix != 8 {
            return Err(format!("malformed number at byte {at}"));
        }
        if radix == 10 {
            let frac = s.get(i) == Some(&b'.') && s.get(i + 1).is_some_and(u8::is_ascii_digit);
            let exp = matches!(s.get(i), Some(b'e' | b'E'));
            if frac || exp {
                return Err(format!(
                    "floating-point literal at byte {at} is not supported"
                ));
            }
        }
        if s.get(i).is_some_and(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("malformed number at byte {at}"));
        }
        self.pos = i;
        Ok(Expr::Num(value))
    }

    fn single_quoted(&mut self) -> Result<Expr, String> {
        let at = self.pos;
        let s = self.s;
        let mut i = at + 1;
        let mut text = Vec::new();
        while let Some(&c) = s.get(i) {
            match c {
                b'\'' => {
                    self.pos = i + 1;
                    let text = String::from_utf8(text)
                        .map_err(|_| "invalid text in string".to_string())?;
                    return Ok(Expr::Str(text.into()));
                }
                b'\\' if matches!(s.get(i + 1), Some(b'\\' | b'\'')) => {
                    text.push(s[i + 1]);
                    i += 2;
                }
                _ => {
                    text.push(c);
                    i += 1;
                }
            }
        }
        Err(format!("unterminated string starting at byte {at}"))
    }

    fn double_quoted(&mut self) -> Result<Expr, String> {
        let at = self.pos;
        let s = self.s;
        let mut i = at + 1;
        let mut pieces = Vec::new();
        let mut text: Vec<u8> = Vec::new();
        let flush = |text: &mut Vec<u8>, pieces: &mut Vec<StrPiece>| -> Result<(), String> {
            if !text.is_empty() {
                let t = String::from_utf8(std::mem::take(text))
                    .map_err(|_| "invalid text in string".to_string())?;
                pieces.push(StrPiece::Lit(t.into()));
            }
            Ok(())
        };
        while let Some(&c) = s.get(i) {
            match c {
                b'"' => {
                    flush(&mut text, &mut pieces)?;
                    self.pos = i + 1;
                    return Ok(match pieces.as_slice() {
                        [] => Expr::Str("".into()),
                        [StrPiece::Lit(t)] => Expr::Str(t.clone()),
                        _ => Expr::Interp(pieces),
                    });
                }
                b'\\' => {
                    let Some(&n) = s.get(i + 1) else { break };
                    text.push(match n {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        b'0' => 0,
                        // Perl drops the backslash of any other escape.
                        other => other,
                    });
                    i += 2;
                }
                b'$' => match capture_ref(&s[i + 1..]) {
                    Some((group, len)) => {
                        flush(&mut text, &mut pieces)?;
                        pieces.push(StrPiece::Group(group));
                        i += 1 + len;
                    }
                    None => {
                        return Err(format!(
                            "unsupported interpolation at byte {i} (escape a literal `$` as `\\$`)"
                        ))
                    }
                },
                b'@' if s
                    .get(i + 1)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'{') =>
                {
                    return Err(format!("unsupported array interpolation at byte {i}"));
                }
                _ => {
                    text.push(c);
                    i += 1;
                }
            }
        }
        Err(format!("unterminated string starting at byte {at}"))
    }

    fn word(&mut self) -> Result<Expr, String> {
        let at = self.pos;
        let len = self.s[at..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count();
        let name = &self.src[at..at + len];
        self.pos += len;
        self.ws();
        let func = Func::by_name(name);
        if self.peek() != Some(b'(') {
            return match func {
                Some(_) => Err(format!("call `{name}` with parentheses: `{name}(...)`")),
                // A bareword is a string in non-strict Perl.
                None => Ok(Expr::Str(name.into())),
            };
        }
        let Some(func) = func else {
            return Err(format!("unknown function `{name}` at byte {at}"));
        };
        self.pos += 1;
        self.deeper()?;
        let mut args = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(b')') {
                self.pos += 1;
                break;
            }
            args.push(self.expr()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b')') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.unexpected()),
            }
        }
        self.depth -= 1;
        func.check_arity(name, args.len())?;
        Ok(Expr::Call(func, args))
    }
}

// ---------------------------------------------------------------------------
// Evaluation

/// Where capture `$N` comes from.
enum Groups<'a> {
    None,
    Regex(&'a str, &'a CaptureLocations),
    Spans(&'a str, &'a [(usize, usize)]),
}

impl<'a> Groups<'a> {
    fn get(&self, i: usize) -> Option<&'a str> {
        match *self {
            Groups::None => None,
            Groups::Regex(hay, locs) => locs.get(i).and_then(|(s, e)| hay.get(s..e)),
            Groups::Spans(hay, spans) => {
                let (s, e) = *spans.get(i.checked_sub(1)?)?;
                hay.get(s..e)
            }
        }
    }
}

/// A Perl scalar as far as these expressions need one.
#[derive(Debug, Clone)]
enum Val<'a> {
    Undef,
    Int(i64),
    Str(Cow<'a, str>),
}

impl<'a> Val<'a> {
    fn int(&self) -> Result<i64, String> {
        match self {
            Val::Undef => Ok(0),
            Val::Int(n) => Ok(*n),
            Val::Str(s) => numify(s),
        }
    }

    fn text(&self) -> Cow<'_, str> {
        match self {
            Val::Undef => Cow::Borrowed(""),
            Val::Int(n) => Cow::Owned(n.to_string()),
            Val::Str(s) => Cow::Borrowed(&**s),
        }
    }

    fn push_to(&self, out: &mut String) {
        match self {
            Val::Undef => {}
            Val::Int(n) => push_i64(out, *n),
            Val::Str(s) => out.push_str(s),
        }
    }
}

fn push_i64(out: &mut String, n: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut u = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if n < 0 {
        out.push('-');
    }
    for &d in &buf[i..] {
        out.push(char::from(d));
    }
}

fn overflow() -> String {
    "integer overflow".to_string()
}

fn eval<'a>(e: &'a Expr, g: &Groups<'a>) -> Result<Val<'a>, String> {
    Ok(match e {
        Expr::Undef => Val::Undef,
        Expr::Num(n) => Val::Int(*n),
        Expr::Str(s) => Val::Str(Cow::Borrowed(&**s)),
        Expr::Interp(pieces) => {
            let mut s = String::new();
            for p in pieces {
                match p {
                    StrPiece::Lit(t) => s.push_str(t),
                    StrPiece::Group(i) => s.push_str(g.get(*i).unwrap_or("")),
                }
            }
            Val::Str(Cow::Owned(s))
        }
        Expr::Group(i) => g.get(*i).map_or(Val::Undef, |s| Val::Str(Cow::Borrowed(s))),
        Expr::Neg(x) => negate(eval(x, g)?)?,
        Expr::Concat(l, r) => {
            let (l, r) = (eval(l, g)?, eval(r, g)?);
            let mut s = l.text().into_owned();
            s.push_str(&r.text());
            Val::Str(Cow::Owned(s))
        }
        Expr::Bin(op, l, r) => {
            let (a, b) = (eval(l, g)?.int()?, eval(r, g)?.int()?);
            Val::Int(match op {
                BinOp::Add => a.checked_add(b).ok_or_else(overflow)?,
                BinOp::Sub => a.checked_sub(b).ok_or_else(overflow)?,
                BinOp::Mul => a.checked_mul(b).ok_or_else(overflow)?,
                BinOp::Div if b == 0 => return Err("division by zero".into()),
                BinOp::Div => a.checked_div(b).ok_or_else(overflow)?,
                BinOp::Rem if b == 0 => return Err("modulus zero".into()),
                BinOp::Rem => a.checked_rem(b).ok_or_else(overflow)?,
                BinOp::Pow => pow(a, b)?,
            })
        }
        Expr::Call(f, args) => {
            let mut vals = Vec::with_capacity(args.len());
            for a in args {
                vals.push(eval(a, g)?);
            }
            call(*f, vals)?
        }
    })
}

/// Perl's `**` ignores `use integer` and computes a float, printed exactly only below
/// 10^15; larger results and negative exponents (fractions) are refused.
fn pow(base: i64, exp: i64) -> Result<i64, String> {
    if exp < 0 {
        return Err("negative exponent (fractional result) is not supported".into());
    }
    let r = u32::try_from(exp)
        .ok()
        .and_then(|e| base.checked_pow(e))
        .ok_or_else(overflow)?;
    if r.unsigned_abs() >= 1_000_000_000_000_000 {
        return Err("`**` result too large for exact integer output".into());
    }
    Ok(r)
}

/// Perl's unary minus: strings that start like an identifier or with a sign are negated
/// as text (`-"abc"` is `-abc`, `-"-abc"` is `+abc`); everything else numerically.
fn negate(v: Val<'_>) -> Result<Val<'_>, String> {
    Ok(match v {
        Val::Undef => Val::Int(0),
        Val::Int(n) => Val::Int(n.checked_neg().ok_or_else(overflow)?),
        Val::Str(s) => match s.as_bytes().first() {
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                Val::Str(Cow::Owned(format!("-{s}")))
            }
            Some(b'+') => Val::Str(Cow::Owned(format!("-{}", &s[1..]))),
            Some(b'-') if !looks_like_number(&s) => Val::Str(Cow::Owned(format!("+{}", &s[1..]))),
            _ => Val::Int(numify(&s)?.checked_neg().ok_or_else(overflow)?),
        },
    })
}

fn is_perl_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Length of the leading decimal number (`[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?`)
/// and whether it has a fraction or exponent. `None` when there is none.
fn scan_number(b: &[u8]) -> Option<(usize, bool)> {
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let int = digits(i);
    i += int;
    let mut float = false;
    let mut frac = 0;
    if b.get(i) == Some(&b'.') {
        frac = digits(i + 1);
        if int > 0 || frac > 0 {
            float = true;
            i += 1 + frac;
        }
    }
    if int == 0 && frac == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut k = i + 1;
        if matches!(b.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        let e = digits(k);
        if e > 0 {
            float = true;
            i = k + e;
        }
    }
    Some((i, float))
}

/// Perl's numeric value of a string, as an integer (`use integer` truncates): leading
/// whitespace skipped, the leading number used, the rest ignored, no number → 0.
fn numify(s: &str) -> Result<i64, String> {
    let start = s.bytes().take_while(|&c| is_perl_space(c)).count();
    let t = &s[start..];
    let Some((len, float)) = scan_number(t.as_bytes()) else {
        let rest = t.trim_start_matches(['+', '-']).to_ascii_lowercase();
        if rest.starts_with("inf") || rest.starts_with("nan") {
            return Err(format!("`{s}` is not a finite number"));
        }
        return Ok(0);
    };
    let num = &t[..len];
    if !float {
        // Accumulate towards the sign so that i64::MIN is representable.
        let neg = num.starts_with('-');
        let mut v: i64 = 0;
        for d in num.bytes().filter(u8::is_ascii_digit) {
            let d = i64::from(d - b'0');
            v = v
                .checked_mul(10)
                .and_then(|v| {
                    if neg {
                        v.checked_sub(d)
                    } else {
                        v.checked_add(d)
                    }
                })
                .ok_or_else(|| format!("number `{num}` overflows"))?;
        }
        return Ok(v);
    }
    let f: f64 = num
        .parse()
        .map_err(|_| format!("malformed number `{num}`"))?;
    let f = f.trunc();
    if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        return Err(format!("number `{num}` overflows"));
    }
    Ok(f as i64)
}

/// Perl's `looks_like_number` for plain decimal text (surrounding whitespace allowed).
fn looks_like_number(s: &str) -> bool {
    let t = s.trim_matches(|c: char| c.is_ascii() && is_perl_space(c as u8));
    matches!(scan_number(t.as_bytes()), Some((len, _)) if len == t.len())
}

fn arg<'v, 'a>(args: &'v [Val<'a>], i: usize) -> &'v Val<'a> {
    args.get(i).unwrap_or(&Val::Undef)
}

fn call(f: Func, args: Vec<Val<'_>>) -> Result<Val<'_>, String> {
    let first_byte = |v: &Val| -> i64 {
        v.text()
            .bytes()
            .next()
            .map_or(0, |c| i64::from(c.to_ascii_lowercase()))
    };
    Ok(match f {
        Func::A2idx => Val::Int(first_byte(arg(&args, 0)) - 96),
        Func::A2zidx => Val::Int(first_byte(arg(&args, 0)) - 97),
        Func::Mknum => Val::Int(arg(&args, 0).text().bytes().map(i64::from).sum()),
        Func::Dim2idx => {
            // Alternately add (value - 1) and multiply by a dimension size, stopping at
            // the first undefined argument; the result is one-based.
            let mut val: i64 = 0;
            let mut multiply = false;
            for a in &args {
                if let Val::Undef = a {
                    break;
                }
                let e = a.int()?;
                val = if multiply {
                    val.checked_mul(e)
                } else {
                    e.checked_sub(1).and_then(|d| val.checked_add(d))
                }
                .ok_or_else(overflow)?;
                multiply = !multiply;
            }
            Val::Int(val.checked_add(1).ok_or_else(overflow)?)
        }
        Func::Skip => return skip(args),
        Func::Ipadd => Val::Str(Cow::Owned(ipadd(&args)?)),
        Func::Sprintf => {
            let fmt = arg(&args, 0).text().into_owned();
            Val::Str(Cow::Owned(sprintf(&fmt, args.get(1..).unwrap_or(&[]))?))
        }
        Func::Int => Val::Int(arg(&args, 0).int()?),
        Func::Abs => Val::Int(arg(&args, 0).int()?.checked_abs().ok_or_else(overflow)?),
        Func::Lc => Val::Str(Cow::Owned(arg(&args, 0).text().to_ascii_lowercase())),
        Func::Uc => Val::Str(Cow::Owned(arg(&args, 0).text().to_ascii_uppercase())),
        Func::Length => match arg(&args, 0) {
            Val::Undef => Val::Undef,
            v => Val::Int(i64::try_from(v.text().len()).map_err(|_| overflow())?),
        },
        Func::Ord => Val::Int(arg(&args, 0).text().bytes().next().map_or(0, i64::from)),
    })
}

/// Perl's `split /sep/, $s`: leading empty fields kept, trailing empty fields dropped.
fn perl_split(s: &str, sep: char) -> Vec<&str> {
    let mut fields: Vec<&str> = s.split(sep).collect();
    while fields.last().is_some_and(|f| f.is_empty()) {
        fields.pop();
    }
    fields
}

/// `skip(index, "start[:count],...")`: -1 when the index falls in a skipped range,
/// otherwise the index lowered by the ranges below it. The list is assumed ascending.
fn skip(args: Vec<Val<'_>>) -> Result<Val<'_>, String> {
    let idx = arg(&args, 0).int()?;
    let mut val = idx;
    let mut changed = false;
    let skips = arg(&args, 1).text().into_owned();
    for element in perl_split(&skips, ',') {
        // `my ($start, $count) = split /:/` gets an implicit limit of 3, so a trailing
        // empty count survives ("3:" has count "" = 0); an empty element has no fields.
        let fields: Vec<&str> = match element {
            "" => Vec::new(),
            e => e.splitn(3, ':').collect(),
        };
        let start = fields.first().map_or(Ok(0), |s| numify(s))?;
        let count = fields.get(1).map_or(Ok(1), |s| numify(s))?;
        if idx >= start {
            if idx < start.checked_add(count).ok_or_else(overflow)? {
                return Ok(Val::Int(-1));
            }
            val = val.checked_sub(count).ok_or_else(overflow)?;
            changed = true;
        } else {
            break;
        }
    }
    // Perl returns the argument itself when nothing was subtracted ("05" stays "05").
    if !changed {
        return Ok(args.into_iter().next().unwrap_or(Val::Undef));
    }
    Ok(Val::Int(val))
}

/// `ipadd(o1, o2, o3, o4, toadd, skipstart, skipend)` under `use integer`: adds to the
/// last octet, carrying into the third (never further), optionally leaving out the
/// first `skipstart` and last `skipend` addresses of each last-octet block.
fn ipadd(args: &[Val<'_>]) -> Result<String, String> {
    let b4 = arg(args, 3).int()?;
    let toadd = arg(args, 4).int()?;
    let skipstart = arg(args, 5).int()?;
    let skipend = arg(args, 6).int()?;
    let offset = if b4 >= skipstart {
        b4.checked_sub(skipstart).ok_or_else(overflow)?
    } else {
        0
    };
    let block = 256i64
        .checked_sub(skipstart)
        .and_then(|v| v.checked_sub(skipend))
        .ok_or_else(overflow)?;
    if block == 0 {
        return Err("division by zero (skipstart + skipend = 256) in ipadd".into());
    }
    let pos = offset.checked_add(toadd).ok_or_else(overflow)?;
    let b3 = arg(args, 2)
        .int()?
        .checked_add(pos.checked_div(block).ok_or_else(overflow)?)
        .ok_or_else(overflow)?;
    let b4 = pos
        .checked_rem(block)
        .and_then(|r| r.checked_add(skipstart))
        .ok_or_else(overflow)?;
    Ok(format!(
        "{}.{}.{b3}.{b4}",
        arg(args, 0).text(),
        arg(args, 1).text()
    ))
}

/// Upper bound for sprintf widths and precisions, so a value cannot ask for gigabytes.
const MAX_WIDTH: usize = 1024;

#[derive(Default)]
struct Spec {
    left: bool,
    plus: bool,
    space: bool,
    zero: bool,
    alt: bool,
    width: usize,
    prec: Option<usize>,
}

/// Perl's `sprintf` for the integer and string conversions (`%d %i %u %x %X %o %b %B
/// %s %c %%`) with flags `- + space 0 #`, width and precision. Floating-point
/// conversions, `*` widths and explicit argument indexes are refused.
fn sprintf(fmt: &str, args: &[Val<'_>]) -> Result<String, String> {
    let mut out = String::with_capacity(fmt.len() + 8);
    let mut next = 0;
    let mut rest = fmt;
    while let Some(p) = rest.find('%') {
        out.push_str(&rest[..p]);
        let spec = &rest[p + 1..];
        let b = spec.as_bytes();
        if b.first() == Some(&b'%') {
            out.push('%');
            rest = &spec[1..];
            continue;
        }
        let mut f = Spec::default();
        let mut i = 0;
        while let Some(&c) = b.get(i) {
            match c {
                b'-' => f.left = true,
                b'+' => f.plus = true,
                b' ' => f.space = true,
                b'0' => f.zero = true,
                b'#' => f.alt = true,
                _ => break,
            }
            i += 1;
        }
        let number = |i: &mut usize| -> Result<usize, String> {
            let n = b[*i..].iter().take_while(|c| c.is_ascii_digit()).count();
            let v = match n {
                0 => 0,
                _ => spec[*i..*i + n].parse::<usize>().unwrap_or(usize::MAX),
            };
            *i += n;
            if v > MAX_WIDTH {
                return Err(format!("sprintf width or precision above {MAX_WIDTH}"));
            }
            Ok(v)
        };
        f.width = number(&mut i)?;
        if b.get(i) == Some(&b'.') {
            i += 1;
            f.prec = Some(number(&mut i)?);
        }
        while matches!(b.get(i), Some(b'h' | b'l' | b'q' | b'L' | b'V')) {
            i += 1;
        }
        let Some(&conv) = b.get(i) else {
            return Err(format!("incomplete sprintf conversion in `{fmt}`"));
        };
        let v = arg(args, next);
        next += 1;
        match conv {
            b'd' | b'i' => {
                let n = v.int()?;
                let sign = if n < 0 {
                    "-"
                } else if f.plus {
                    "+"
                } else if f.space {
                    " "
                } else {
                    ""
                };
                pad_number(&mut out, sign, "", &n.unsigned_abs().to_string(), &f);
            }
            b'u' | b'x' | b'X' | b'o' | b'b' | b'B' => {
                // Negative values print as their unsigned 64-bit pattern, as in Perl.
                let n = v.int()? as u64;
                let digits = match conv {
                    b'u' => n.to_string(),
                    b'x' => format!("{n:x}"),
                    b'X' => format!("{n:X}"),
                    b'o' => format!("{n:o}"),
                    _ => format!("{n:b}"),
                };
                let prefix = match conv {
                    _ if !f.alt || n == 0 => "",
                    b'x' => "0x",
                    b'X' => "0X",
                    b'b' => "0b",
                    b'B' => "0B",
                    b'o' if f.prec.is_none_or(|p| p <= digits.len()) => "0",
                    _ => "",
                };
                pad_number(&mut out, "", prefix, &digits, &f);
            }
            b's' => {
                let t = v.text();
                let t = match f.prec {
                    Some(p) => t.char_indices().nth(p).map_or(&*t, |(at, _)| &t[..at]),
                    None => &*t,
                };
                pad_text(&mut out, t, &f);
            }
            b'c' => {
                let c = u32::try_from(v.int()?)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                pad_text(&mut out, c.encode_utf8(&mut [0; 4]), &f);
            }
            b'e' | b'E' | b'f' | b'F' | b'g' | b'G' | b'a' | b'A' => {
                return Err(format!(
                    "floating-point sprintf conversion `%{}` is not supported",
                    conv as char
                ))
            }
            _ => {
                let c = spec[i..].chars().next().unwrap_or('?');
                return Err(format!("unsupported sprintf conversion `%{c}` in `{fmt}`"));
            }
        }
        rest = &spec[i + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn pad_number(out: &mut String, sign: &str, prefix: &str, digits: &str, f: &Spec) {
    let digits = match f.prec {
        Some(0) if digits == "0" => Cow::Borrowed(""),
        Some(p) if digits.len() < p => {
            Cow::Owned(format!("{}{digits}", "0".repeat(p - digits.len())))
        }
        _ => Cow::Borrowed(digits),
    };
    let len = sign.len() + prefix.len() + digits.len();
    let pad = f.width.saturating_sub(len);
    if f.left {
        out.extend([sign, prefix, &*digits]);
        out.extend(std::iter::repeat_n(' ', pad));
    } else if f.zero && f.prec.is_none() {
        out.extend([sign, prefix]);
        out.extend(std::iter::repeat_n('0', pad));
        out.push_str(&digits);
    } else {
        out.extend(std::iter::repeat_n(' ', pad));
        out.extend([sign, prefix, &*digits]);
    }
}

fn pad_text(out: &mut String, t: &str, f: &Spec) {
    let pad = f.width.saturating_sub(t.chars().count());
    if f.left {
        out.push_str(t);
        out.extend(std::iter::repeat_n(' ', pad));
    } else {
        // Perl pads strings with zeros too when asked (`%05s`).
        out.extend(std::iter::repeat_n(if f.zero { '0' } else { ' ' }, pad));
        out.push_str(t);
    }
}

// ---------------------------------------------------------------------------
// subVars

/// How [`substitute_vars_xcat`] joins components, after xCAT's `$type` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubVarsMode {
    /// `'dir'`: every component is written as `/` + component.
    Dir,
    /// `'server'`: components with variables are written without the leading `/`.
    Server,
}

/// xCAT `subVars`: `$node`, `$table.col`, `$site.key`, `#CMD=…#` in each `/`-separated component.
/// `attr(table, column)` returns the node's resolved attribute; `site(key)` a site value.
///
/// The template's slashes are kept as they are (`/install/$node` → `/install/n1`,
/// `$noderes.nfsserver` → `10.0.0.1`), which is what xCAT's callers end up with after
/// collapsing the `//` its `dir` mode produces. See [`substitute_vars_xcat`] for the
/// exact xCAT joining.
pub fn substitute_vars(
    template: &str,
    node: &str,
    attr: &mut dyn FnMut(&str, &str) -> Option<String>,
    site: &mut dyn FnMut(&str) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    for (i, comp) in template.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if comp.contains('$') {
            expand_component(comp, node, attr, site, &mut out);
        } else {
            out.push_str(comp);
        }
    }
    run_commands(out)
}

/// `subVars` with xCAT's exact joining: the template is split with Perl's `split("/")`
/// (trailing empty components dropped) and each component appended as `/` + text, except
/// that in [`SubVarsMode::Server`] components with variables get no `/`. So in `Dir`
/// mode `/install/$node` gives `//install/n1` and `install/$node/` gives `/install/n1`.
pub fn substitute_vars_xcat(
    template: &str,
    node: &str,
    mode: SubVarsMode,
    attr: &mut dyn FnMut(&str, &str) -> Option<String>,
    site: &mut dyn FnMut(&str) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    for comp in perl_split(template, '/') {
        if comp.contains('$') {
            if mode == SubVarsMode::Dir {
                out.push('/');
            }
            expand_component(comp, node, attr, site, &mut out);
        } else {
            out.push('/');
            out.push_str(comp);
        }
    }
    run_commands(out)
}

/// One component with a `$`: text before the first `$` is kept, the variables run up to
/// the first `#` or space, and the rest is kept up to a newline (xCAT's `(.*)` stops
/// there and drops what follows).
fn expand_component(
    comp: &str,
    node: &str,
    attr: &mut dyn FnMut(&str, &str) -> Option<String>,
    site: &mut dyn FnMut(&str) -> Option<String>,
    out: &mut String,
) {
    let dollar = comp.find('$').unwrap_or(comp.len());
    let (pre, rest) = comp.split_at(dollar);
    let var_end = rest.find(['#', ' ']).unwrap_or(rest.len());
    let (vars, suffix) = rest.split_at(var_end);
    let suffix = suffix.split('\n').next().unwrap_or("");
    out.push_str(pre);
    let mut first = true;
    for name in vars.split('$').filter(|p| !p.is_empty()) {
        if !first {
            out.push('.');
        }
        first = false;
        if name == "node" {
            out.push_str(node);
            continue;
        }
        let fields = perl_split(name, '.');
        let table = fields.first().copied().unwrap_or("");
        let col = fields.get(1).copied().unwrap_or("");
        // xCAT substitutes the column name `UNDEFINED` for an empty or "0" column, and
        // a table that does not exist aborts it; both end up as `UNDEFINED` here.
        let value = if table.is_empty() || col.is_empty() || col == "0" {
            None
        } else if table == "site" {
            site(col)
        } else {
            attr(table, col)
        };
        // Perl truthiness: an empty value and "0" are both "missing".
        match value {
            Some(v) if !v.is_empty() && v != "0" => out.push_str(&v),
            _ => out.push_str("UNDEFINED"),
        }
    }
    out.push_str(suffix);
}

/// When the text contains `#CMD=`, xCAT splits it at every `#` (dropping them all) and
/// replaces each piece containing `CMD=` by the output of the piece with its first
/// `CMD=` removed.
fn run_commands(s: String) -> String {
    if !s.contains("#CMD=") {
        return s;
    }
    let mut out = String::with_capacity(s.len());
    for piece in s.split('#') {
        match piece.find("CMD=") {
            Some(at) => {
                let cmd = format!("{}{}", &piece[..at], &piece[at + 4..]);
                out.push_str(&run_shell(&cmd));
            }
            None => out.push_str(piece),
        }
    }
    out
}

/// Runs `cmd` with `sh -c` and returns its trimmed standard output; any failure to run
/// it gives an empty string. The exit status is ignored, as with Perl's backticks.
fn run_shell(cmd: &str) -> String {
    match Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    {
        Ok(o) => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `value` as a regex value and applies it to `node`.
    fn run(value: &str, node: &str) -> Result<Option<String>, RegexValueError> {
        RegexValue::parse(value)?
            .unwrap_or_else(|| panic!("{value:?} should be a regex value"))
            .apply(node)
    }

    fn val(value: &str, node: &str) -> Option<String> {
        run(value, node).unwrap_or_else(|e| panic!("{value:?} on {node:?}: {e}"))
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    fn parse_err(value: &str) -> String {
        match RegexValue::parse(value) {
            Err(e) => {
                assert_eq!(e.value, value);
                e.reason
            }
            Ok(r) => panic!("{value:?} should not parse, got {r:?}"),
        }
    }

    fn apply_err(value: &str, node: &str) -> String {
        match run(value, node) {
            Err(e) => e.reason,
            Ok(r) => panic!("{value:?} on {node:?} should fail, got {r:?}"),
        }
    }

    // --- the forms, with the examples from the brief and xCAT's documentation ---

    #[test]
    fn slash_form_appends_at_end() {
        // `\z` matches the empty string at the end; replacing it appends.
        assert_eq!(val(r"/\z/-bmc/", "n1"), some("n1-bmc"));
    }

    #[test]
    fn slash_form_expands_captures() {
        // (.*) captures the whole name; $1 expands to it (xCAT would print "$1").
        assert_eq!(val("/(.*)/$1-ib0/", "n1"), some("n1-ib0"));
        // `$1a` is group 1 followed by "a"; `${1}0` is group 1 followed by "0".
        assert_eq!(val(r"/(\d)/<$1a>/", "n5"), some("n<5a>"));
        assert_eq!(val(r"/(\d)/${1}0/", "n5"), some("n50"));
        // `$10` is group 10 (as in Perl), which does not exist here: empty.
        assert_eq!(val(r"/(\d)/$10/", "n5"), some("n"));
        // `$0` is not a capture and stays as it is.
        assert_eq!(val(r"/(\d)/$0/", "n5"), some("n$0"));
        // Parentheses are literal in the slash form; a group that does not exist
        // expands to nothing.
        assert_eq!(val(r"/\z/(x+1)/", "n5"), some("n5(x+1)"));
        assert_eq!(val(r"/\z/($1+1)/", "n5"), some("n5(+1)"));
    }

    #[test]
    fn pipe_form_arithmetic() {
        // "007" numifies to 7.
        assert_eq!(
            val(r"|node(\d+)|10.0.0.($1+0)|", "node007"),
            some("10.0.0.7")
        );
        // 7 + 100.
        assert_eq!(
            val(r"|\D+(\d+)|192.168.1.($1+100)|", "node007"),
            some("192.168.1.107")
        );
        // Integer division and remainder: 300/255 = 1, 300%255 = 45; 510 → 2, 0.
        let v = r"|node(\d+)|10.1.($1/255).($1%255)|";
        assert_eq!(val(v, "node300"), some("10.1.1.45"));
        assert_eq!(val(v, "node510"), some("10.1.2.0"));
        // Two captures; a lone ($1) keeps its text, an expression makes a number.
        let v = r"|node(\d+)-(\d+)|10.($1).($2*2)|";
        assert_eq!(val(v, "node1-3"), some("10.1.6"));
        assert_eq!(val(v, "node01-3"), some("10.01.6"));
        // xCAT's documented example (regexp_db.rst): zero padding stays.
        let v = r"|\D+(\d+)\D+(\d+)\D+(\d+)\D+(\d+)|c($1)f($2)x($3)|";
        assert_eq!(val(v, "c01f02x03v04"), some("c01f02x03"));
        let v = r"|\D+(\d+)\D+(\d+)\D+(\d+)\D+(\d+)|dir:///install/vms/vm($4+0)|";
        assert_eq!(val(v, "c01f02x03v04"), some("dir:///install/vms/vm4"));
        assert_eq!(
            val(r"|\D+(\d+)$|node($1)-ib|", "node002"),
            some("node002-ib")
        );
        // Other captured text stays as it is.
        assert_eq!(val(r"|(\w+)-x|($1)|", "ab01-x"), some("ab01"));
        // `$1` is a variable, not pasted text: "010" is ten, not octal eight.
        assert_eq!(
            val(r"|node(\d+)|10.0.0.($1+0)|", "node010"),
            some("10.0.0.10")
        );
    }

    #[test]
    fn pipe_form_partial_match_replaces_only_the_match() {
        // Only "300" matches; the prefix stays (xCAT's eval would break here).
        let v = r"|(\d+)|10.1.($1/255).($1%255)|";
        assert_eq!(val(v, "300"), some("10.1.1.45"));
        assert_eq!(val(v, "node300"), some("node10.1.1.45"));
    }

    #[test]
    fn xcat_manual_examples() {
        // (20-1)/14+1 = 1+1 = 2, printed with %02d.
        assert_eq!(
            val(r"|\D+(\d+)|cmm(sprintf('%02d',($1-1)/14+1))|", "node20"),
            some("cmm02")
        );
        // (20-1)%14+1 = 5+1.
        assert_eq!(val(r"|\D+(\d+)|(($1-1)%14+1)|", "node20"), some("6"));
        let four = r"\D+(\d+)\D+(\d+)\D+(\d+)\D+(\d+)";
        // xCAT's regexp_db page: "c01f02x03". Table.pm substitutes the text `($1)` for the
        // match and evals it; `$1` is then the capture "01", a string, kept as it is (and its
        // regression case mkdef_regex_kvm checks exactly this).
        assert_eq!(
            val(&format!("|{four}|c($1)f($2)x($3)|"), "c01f02x03v04"),
            some("c01f02x03")
        );
        assert_eq!(
            val(
                &format!("|{four}|dir:///install/vms/vm($4+0)|"),
                "c01f02x03v04"
            ),
            some("dir:///install/vms/vm4")
        );
        assert_eq!(
            val("|(.*)|($1).cluster.net|", "node5"),
            some("node5.cluster.net")
        );
    }

    #[test]
    fn easy_form() {
        // `[\D0]*` swallows "node00", so $1 is "7".
        assert_eq!(val("|10.0.0.($1+0)|", "node007"), some("10.0.0.7"));
        assert_eq!(val("|bmc($1)|", "node007"), some("bmc7"));
        assert_eq!(val("|bmc($1)|", "node10"), some("bmc10"));
        // No number: the pattern is just `.*$`, $1 is undefined (empty, or 0).
        assert_eq!(val("|bmc($1)|", "mgmt"), some("bmc"));
        assert_eq!(val("|bmc($1+0)|", "mgmt"), some("bmc0"));
        // Two numbers; the whole name is replaced.
        assert_eq!(val("|r($1)c($2)|", "rack02-node11"), some("r2c11"));
        // A run of zeros merges into the next number; trailing zeros are one "0".
        assert_eq!(val("|($1).($2)|", "a0b5c0"), some("5.0"));
        // Without parentheses the replacement is plain text.
        assert_eq!(val("|bmc|", "node1"), some("bmc"));
        // `||` has an empty replacement: undefined.
        assert_eq!(val("||", "node7"), None);
    }

    #[test]
    fn easy_numbers_match_the_generated_regex() {
        // Cross-check the hand-written scan with the pattern xCAT builds, on every
        // string of length ≤ 6 over a small alphabet.
        let re = Regex::new("[^1-9]*([0-9]+)").unwrap();
        let alphabet = ['a', '0', '1', '9', '-'];
        let mut stack = vec![String::new()];
        while let Some(s) = stack.pop() {
            let want: Vec<(usize, usize)> = re
                .captures_iter(&s)
                .map(|c| {
                    let m = c.get(1).unwrap();
                    (m.start(), m.end())
                })
                .collect();
            assert_eq!(easy_numbers(&s), want, "{s:?}");
            if s.len() < 6 {
                for c in alphabet {
                    stack.push(format!("{s}{c}"));
                }
            }
        }
    }

    // --- helpers, each worked out from its Perl definition ---

    #[test]
    fn helper_a2idx_a2zidx() {
        // ord('b') - 96 = 2; lc('C') is 'c': 99 - 96 = 3; ord('b') - 97 = 1.
        assert_eq!(val(r"|node(\w)|(a2idx($1))|", "nodeb"), some("2"));
        assert_eq!(val(r"|node(\w)|(a2idx($1))|", "nodeC"), some("3"));
        assert_eq!(val(r"|node(\w)|(a2zidx($1))|", "nodeb"), some("1"));
        // ord("") is 0.
        assert_eq!(val(r"|node|(a2idx(''))|", "node"), some("-96"));
    }

    #[test]
    fn helper_dim2idx() {
        // 0+(2-1)=1, *10=10, +(3-1)=12, *8=96, +(4-1)=99, *8=792, +(5-1)=796, +1.
        assert_eq!(
            val(r"|n(\d)|(dim2idx(2, 10, 3, 8, 4, 8, 5))|", "n1"),
            some("797")
        );
        // Racks in rows of 4: (row-1)*4 + (col-1) + 1.
        let v = r"|row(\d+)-col(\d+)|(dim2idx($1, 4, $2))|";
        assert_eq!(val(v, "row1-col1"), some("1"));
        assert_eq!(val(v, "row2-col3"), some("7"));
        assert_eq!(val(v, "row2-col4"), some("8"));
        // Stops at the first undefined argument: 0+1, *10, then $3 is undef: 10+1.
        assert_eq!(val(r"|n(\d)|(dim2idx(2, 10, $3, 8))|", "n1"), some("11"));
    }

    #[test]
    fn helper_skip() {
        let v = |idx: &str, list: &str| val(&format!("|n|(skip({idx}, '{list}'))|"), "n");
        assert_eq!(v("10", "3"), some("9")); // 10 ≥ 3, not in [3,4): 10-1
        assert_eq!(v("10", "3:2"), some("8")); // not in [3,5): 10-2
        assert_eq!(v("10", "3:2,6"), some("7")); // 8, then not in [6,7): 8-1
        assert_eq!(v("4", "3:2"), some("-1")); // in [3,5)
        assert_eq!(v("2", "3:2"), some("2")); // below the first range
        assert_eq!(v("7", "3:"), some("7")); // count "" is defined: 0
                                             // Nothing skipped: the argument comes back as it was, leading zero included.
        assert_eq!(val(r"|n(\d+)|(skip($1, '30'))|", "n05"), some("05"));
        // The manual's example (with its missing parenthesis added): rack 7 → 5.
        let v = r"|row(\d+)-col(\d+)|(skip(dim2idx($1, 4, $2),'3:2'))|";
        assert_eq!(val(v, "row2-col3"), some("5"));
        assert_eq!(val(v, "row1-col3"), some("-1"));
    }

    #[test]
    fn helper_ipadd() {
        let v = |args: &str| val(&format!("|n|(ipadd({args}))|"), "n");
        // offset 10; 10+0 < 256: no carry.
        assert_eq!(v("10, 10, 10, 10, 0, 0, 0"), some("10.10.10.10"));
        // 10+245 = 255.
        assert_eq!(v("10, 10, 10, 10, 245, 0, 0"), some("10.10.10.255"));
        // 10+246 = 256: carry one into the third octet, remainder 0.
        assert_eq!(v("10, 10, 10, 10, 246, 0, 0"), some("10.10.11.0"));
        // Skipping .0 and .255: offset 250-1 = 249, +5 = 254 in blocks of 254:
        // third octet +1, last octet 0+1.
        assert_eq!(
            val(r"|n(\d+)|(ipadd(10, 10, 10, 250, $1, 1, 1))|", "n5"),
            some("10.10.11.1")
        );
        // Blocks of 256-128-128 = 0 addresses: Perl dies dividing by zero.
        assert!(
            apply_err("|n|(ipadd(10, 10, 10, 0, 1, 128, 128))|", "n").contains("division by zero")
        );
    }

    #[test]
    fn helper_mknum() {
        // f+r+e+d = 102+114+101+100; "free" is one more.
        assert_eq!(val("|(.*)|(mknum($1))|", "fred"), some("417"));
        assert_eq!(val("|(.*)|(mknum($1))|", "free"), some("418"));
    }

    #[test]
    fn perl_builtins() {
        assert_eq!(val(r"|n(\d+)|(int($1/2))|", "n7"), some("3"));
        assert_eq!(val(r"|n(\d+)|(abs(-$1))|", "n7"), some("7"));
        assert_eq!(val(r"|n(\w+)|(uc($1))-(lc('AB'))|", "nxy"), some("XY-ab"));
        assert_eq!(val(r"|n(\d+)|(length($1))|", "n007"), some("3"));
        assert_eq!(val(r"|n(\d+)|(ord('a'))|", "n1"), some("97"));
        // %-4s pads right; %+d signs; 255 in hex; 8 in octal.
        assert_eq!(
            val(
                r#"|n(\d+)|(sprintf("%-4s|%+d|%x|%o", $1, $1, 255, 8))|"#,
                "n7"
            ),
            some("7   |+7|ff|10")
        );
        // Precision on integers pads with zeros; %05s pads a string with zeros.
        assert_eq!(
            val(
                r#"|n|(sprintf("%.3d|%5s|%-5d|%05s", 7, "ab", 3, "ab"))|"#,
                "n"
            ),
            some("007|   ab|3    |000ab")
        );
        // -1 as unsigned 64-bit; alternate forms.
        assert_eq!(
            val(r#"|n|(sprintf("%u|%#x|%#o|%#b", -1, 255, 8, 5))|"#, "n"),
            some("18446744073709551615|0xff|010|0b101")
        );
        // A missing argument is undef.
        assert_eq!(val(r#"|n(\d)|(sprintf("%s-%s", $1))|"#, "n7"), some("7-"));
        assert!(apply_err(r#"|n|(sprintf("%f", 1))|"#, "n").contains("floating-point"));
    }

    #[test]
    fn perl_expression_semantics() {
        // Literal numbers: octal 010 = 8, hex 0x10 = 16, binary 0b11 = 3, 1_000.
        assert_eq!(val(r"|node(\d+)|(010+$1)|", "node7"), some("15"));
        assert_eq!(val(r"|node(\d+)|(0x10+0b11)|", "node7"), some("19"));
        assert_eq!(val(r"|node(\d+)|(1_000+$1)|", "node7"), some("1007"));
        // Truncating division and C remainder.
        assert_eq!(val("|n|(-7/2).(-7%3).(7%-3)|", "n"), some("-3.-1.1"));
        // Precedence: 5%3*2 - 10/3 = 4 - 3.
        assert_eq!(
            val(r"|node(\d+)|($1 % 3 * 2 - 10 / 3)|", "node5"),
            some("1")
        );
        // Unary plus is a no-op, so (+$1) is the capture's text; unary minus numifies.
        assert_eq!(val(r"|node(\d+)|(+$1)|", "node007"), some("007"));
        assert_eq!(val(r"|node(\d+)|(-$1)|", "node007"), some("-7"));
        // Perl's string negation.
        assert_eq!(val(r"|node(\w+)|(-$1)|", "nodeab"), some("-ab"));
        assert_eq!(
            val(r#"|n|(-"-abc").(-"+5").(-"-5")|"#, "n"),
            some("+abc.-5.5")
        );
        // ** binds tighter than unary minus and associates to the right.
        assert_eq!(
            val("|n|(2**10).(-2**2).(2**3**2)|", "n"),
            some("1024.-4.512")
        );
        // Concatenation, interpolation, barewords.
        assert_eq!(
            val(r#"|n(\d)|($1 . "x").("${1}y").(z)|"#, "n7"),
            some("7x.7y.z")
        );
        // Perl's string-to-number rules.
        assert_eq!(val(r"|n(.*)|($1+0)|", "n12abc"), some("12"));
        assert_eq!(val(r"|n(.*)|($1+0)|", "nabc"), some("0"));
        assert_eq!(val(r"|n(.*)|($1+0)|", "n1.9"), some("1"));
        // An empty group is undef.
        assert_eq!(val(r"|n(\d)|a()b|", "n1"), some("ab"));
        // Nested parentheses.
        assert_eq!(val(r"|n(\d+)|((((($1+1)*2))))|", "n1"), some("4"));
    }

    #[test]
    fn no_match_and_empty_results() {
        // No match: the node name itself.
        assert_eq!(val(r"|rack(\d+)|x($1)|", "node1"), some("node1"));
        assert_eq!(val("/rack/x/", "node1"), some("node1"));
        // An empty pattern never matches (Perl would reuse xCAT's recognition regex).
        assert_eq!(val("||x|", "node007"), some("node007"));
        assert_eq!(val("//x/", "n1"), some("n1"));
        assert_eq!(val("///", "n1"), some("n1"));
        // Empty results are undefined.
        assert_eq!(val("/.*//", "n1"), None);
        assert_eq!(val(r"|node(\d+)|($2)|", "node7"), None);
        // The pattern stops at the first `|`; the replacement may contain more.
        assert_eq!(val("|a|b|c|", "xay"), some("xb|cy"));
    }

    // --- recognition ---

    #[test]
    fn plain_values_and_paths_are_not_regex() {
        for v in [
            "",
            "foo",
            "10.0.0.1",
            "/",
            "//",
            "/install",
            "/install/",
            "/a/b/c",
            "/a/b/c/",
            "|",
            "|foo",
            "foo|",
            "a|b|",
            " |x|",
            "|x| ",
            "|a\nb|",
            "/install/$node",
            "$node",
        ] {
            assert!(RegexValue::parse(v).unwrap().is_none(), "{v:?}");
            assert!(!RegexValue::is_regex_value(v), "{v:?}");
        }
    }

    #[test]
    fn two_component_path_with_trailing_slash_is_a_regex_in_xcat() {
        // `^/[^/]*/[^/]*/$` matches: s/install/foo/ on the node name.
        assert!(RegexValue::is_regex_value("/install/foo/"));
        assert_eq!(val("/install/foo/", "n1"), some("n1"));
        assert_eq!(val("/install/foo/", "install5"), some("foo5"));
    }

    #[test]
    fn final_newline_is_accepted_like_perls_dollar() {
        // Recognised without the newline, then xCAT chops the newline instead of the
        // slash: pattern "n", replacement "x/".
        assert_eq!(val("/n/x/\n", "n1"), some("x/1"));
        // Likewise pattern "n", replacement "x|".
        assert_eq!(val("|n|x|\n", "n1"), some("x|1"));
    }

    // --- errors ---

    #[test]
    fn pattern_errors() {
        assert!(parse_err(r"|node(\d+|x|").contains("cannot compile pattern"));
        let r = parse_err(r"|node(?=\d)|x|");
        assert!(r.contains("lookahead") && r.contains("byte 4"), "{r}");
        assert!(parse_err(r"|a(?<=b)|x|").contains("lookbehind"));
        assert!(parse_err(r"|a(?!b)|x|").contains("negative lookahead"));
        assert!(parse_err(r"/(a)\1/x/").contains("backreference"));
        assert!(parse_err(r"/(?<n>a)\k<n>/x/").contains("backreference"));
        assert!(parse_err(r"|a++|x|").contains("possessive"));
        assert!(parse_err(r"|(?>a)|x|").contains("atomic"));
        assert!(parse_err(r"|a\Kb|x|").contains(r"\K"));
        assert!(parse_err(r"|[a|x|").contains("character class"));
    }

    #[test]
    fn pattern_translation() {
        // \Z is taken as \z; Perl's literal braces and class brackets are escaped.
        assert_eq!(val(r"/1\Z/x/", "n1"), some("nx"));
        assert_eq!(val("/n{/X/", "n{1"), some("X1"));
        assert_eq!(val("/n{2}/X/", "nn1"), some("X1"));
        assert_eq!(val("/n{,2}/X/", "nn1"), some("X1"));
        assert_eq!(val("/[[]/X/", "a[b"), some("aXb"));
        assert_eq!(val("/[]]/X/", "a]b"), some("aXb"));
        assert_eq!(val("/[&&]/X/", "a&b"), some("aXb"));
        assert_eq!(val("/[[:digit:]]+/X/", "ab12"), some("abX"));
        assert_eq!(val("/(?#note)n/X/", "n1"), some("X1"));
        assert_eq!(val("/(?i)NODE/x/", "node5"), some("x5"));
    }

    #[test]
    fn expression_errors() {
        assert!(apply_err(r"|node(\d+)|($1/0)|", "node7").contains("division by zero"));
        assert!(apply_err(r"|node(\d+)|($1%($1-7))|", "node7").contains("modulus zero"));
        assert!(apply_err(r"|node(\d+)|(9223372036854775807+$1)|", "node7").contains("overflow"));
        assert!(apply_err(r"|n(\d+)|($1+0)|", "n99999999999999999999").contains("overflows"));
        let r = apply_err(r"|node(\d+)|($1/0)|", "node7");
        assert!(r.contains("node7") && r.contains("($1/0)"), "{r}");
        assert!(parse_err(r"|node(\d+)|10.0.0.($1+0|").contains("unbalanced `(`"));
        assert!(parse_err(r"|n(\d)|$1)|").contains("unmatched `)`"));
        // The manual's own skip example lacks a closing parenthesis.
        assert!(
            parse_err(r"|row(\d+)-col(\d+)|(skip(dim2idx($1, 4, $2),'3:2')|")
                .contains("unbalanced")
        );
        assert!(parse_err(r"|n(\d)|(foo($1))|").contains("unknown function `foo`"));
        assert!(parse_err(r"|n(\d)|($1+)|").contains("ends unexpectedly"));
        assert!(parse_err(r"|n(\d)|($1 $1)|").contains("unexpected"));
        assert!(parse_err(r"|n(\d)|(1,2)|").contains("unexpected `,`"));
        assert!(parse_err(r"|n(\d)|(1.5*2)|").contains("floating-point"));
        assert!(parse_err(r"|n(\d)|(08)|").contains("illegal digit"));
        assert!(parse_err(r"|n(\d)|(--$1)|").contains("`--`"));
        assert!(parse_err(r"|n(\d)|($x)|").contains("unsupported variable"));
        assert!(parse_err(r"|n(\d)|(int)|").contains("parentheses"));
        assert!(parse_err(r"|n(\d)|(int(1, 2))|").contains("one argument"));
        assert!(parse_err(r#"|n(\d)|("abc)|"#).contains("unterminated string"));
        assert!(apply_err(r"|n(\d)|(2**-1)|", "n1").contains("negative exponent"));
        assert!(apply_err(r"|n(\d)|(10**15)|", "n1").contains("too large"));
    }

    #[test]
    fn limits_stop_hostile_expressions() {
        let deep = format!("|n|{}1{}|", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse_err(&deep).contains("nested"));
        let long = format!("|n|(1{})|", "+1".repeat(100_000));
        assert!(parse_err(&long).contains("longer than"));
        let unary = format!("|n|({}1)|", "- ".repeat(10_000));
        assert!(parse_err(&unary).contains("nested"));
        assert!(apply_err("|n|(sprintf('%99999d', 1))|", "n").contains("above"));
        // Within the limits, long chains still work: 1 + 100 × 1.
        assert_eq!(
            val(&format!("|n|(1{})|", "+1".repeat(100)), "n"),
            some("101")
        );
    }

    #[test]
    fn no_panic_sweep() {
        let fixed = [
            "|",
            "||",
            "|||",
            "||||",
            "//",
            "///",
            "////",
            "/\\/",
            "|\\|",
            "|(|",
            "|)|",
            "|()|",
            "|(()|",
            "|())|",
            "|$|",
            "|$1|",
            "|${|",
            "|${1|",
            "|${}|",
            "|$99999999999999999999999|",
            "|($99999999999999999999)|",
            "|(\"|",
            "|('|",
            "|(\"\\|",
            "|(\"$|",
            "|(\"${1|",
            "|(\"@a\")|",
            "|(sprintf(\"%\"))|",
            "|(sprintf(\"%5\"))|",
            "|(sprintf(\"%ü\"))|",
            "|(sprintf(\"%.99999999999999999999d\",1))|",
            "|(sprintf(\"%c\", -1))|",
            "|(sprintf(\"%c\", 55296))|",
            "|(sprintf(\"%.2s\", \"ü€x\"))|",
            "|(-9223372036854775807-1)|",
            "|((-9223372036854775807-1)/-1)|",
            "|((-9223372036854775807-1)%-1)|",
            "|(abs(-9223372036854775807-1))|",
            "|(-(-9223372036854775807-1))|",
            "|(0x)|",
            "|(0b)|",
            "|(0b2)|",
            "|(0xffffffffffffffffff)|",
            "|(1e5)|",
            "|(.5)|",
            "|(ü)|",
            "|(ü(1))|",
            "|(\\)|",
            "|(\\(|",
            "|x(\\))|",
            "|[|x|",
            "|[[:|x|",
            "|[[:alpha|x|",
            "|\\|x|",
            "|(?|x|",
            "|(?#|x|",
            "|(*|x|",
            "|x{99999999999}|y|",
            "|a{1000}{1000}{1000}|y|",
            "/ü/€/",
            "/€/$1€/",
            "|(ipadd())|",
            "|(skip())|",
            "|(skip(1,\",,,:,::\"))|",
            "|(dim2idx(9223372036854775807, 2, 2))|",
            "|(mknum())|",
            "|(length())|",
            "|(sprintf())|",
            "|(\"inf\"+1)|",
            "|(\"nan\"+1)|",
            "|($1 ** 99999999999)|",
            "|(1 ** 99999999999)|",
            "|(0 ** 0)|",
            "/\n/x/\n",
            "|\n|",
            "/a/b/\n\n",
        ];
        let nodes = [
            "",
            "\n",
            "n1",
            "node007",
            "ñødé1",
            "0",
            "00",
            "a0b5c0",
            "9999999999999999999999",
            "€",
            "-",
            "inf",
            "nan",
            "1e999",
        ];
        let check = |v: &str| {
            if let Ok(Some(rv)) = RegexValue::parse(v) {
                for n in nodes {
                    let _ = rv.apply(n);
                }
            }
        };
        for v in fixed {
            check(v);
        }
        // Random values over an alphabet of the characters that matter.
        let alphabet: Vec<char> = "|/()\\${}[]?*+-%.,'\"0123456789abdnxz:^#! \nü"
            .chars()
            .collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let mut v = String::from(if next() % 2 == 0 { "|" } else { "/" });
            for _ in 0..len {
                v.push(alphabet[(next() % alphabet.len() as u64) as usize]);
            }
            v.push(if next() % 2 == 0 { '|' } else { '/' });
            check(&v);
            // The same text as a subVars template (without commands).
            if !v.contains("#CMD=") {
                let _ = substitute_vars(&v, "n1", &mut |_, _| Some("x".into()), &mut |_| None);
            }
        }
    }

    // --- subVars ---

    fn attrs(table: &str, col: &str) -> Option<String> {
        match (table, col) {
            ("nodetype", "os") => Some("rhels8".into()),
            ("noderes", "nfsserver") => Some("10.0.0.1".into()),
            ("nodetype", "arch") => Some("0".into()),
            ("nodetype", "profile") => Some(String::new()),
            _ => None,
        }
    }

    fn site(key: &str) -> Option<String> {
        (key == "installdir").then(|| "/install".into())
    }

    fn subst(template: &str) -> String {
        substitute_vars(template, "n1", &mut attrs, &mut site)
    }

    #[test]
    fn sub_vars_variables() {
        assert_eq!(subst("/install/$node"), "/install/n1");
        assert_eq!(subst("$nodetype.os"), "rhels8");
        assert_eq!(subst("/x/$site.installdir/y"), "/x//install/y");
        assert_eq!(subst("$noderes.nfsserver"), "10.0.0.1");
        // Two variables in one component are joined with a dot.
        assert_eq!(subst("/st/$nodetype.os$node"), "/st/rhels8.n1");
        // Text before the variables is kept; after them from the first space or `#`.
        assert_eq!(subst("/st/pre$node rest"), "/st/pren1 rest");
        // Plain templates pass through.
        assert_eq!(subst("/install/custom/"), "/install/custom/");
    }

    #[test]
    fn sub_vars_missing_values() {
        // No value, an empty value, "0" (false in Perl), no column, a missing site key.
        assert_eq!(subst("/a/$nodetype.profile"), "/a/UNDEFINED");
        assert_eq!(subst("/a/$nodetype.arch"), "/a/UNDEFINED");
        assert_eq!(subst("/a/$nodetype.nosuch"), "/a/UNDEFINED");
        assert_eq!(subst("/a/$foo"), "/a/UNDEFINED");
        assert_eq!(subst("/a/$site.nosuch"), "/a/UNDEFINED");
        // `$node.x` is a table called "node", not the node name.
        assert_eq!(subst("/a/$node.x"), "/a/UNDEFINED");
    }

    #[test]
    fn sub_vars_asks_the_right_tables() {
        let mut asked = Vec::new();
        let mut attr = |t: &str, c: &str| {
            asked.push(format!("{t}.{c}"));
            None
        };
        let mut sites = Vec::new();
        let mut site = |k: &str| {
            sites.push(k.to_owned());
            None
        };
        let out = substitute_vars(
            "/$nodetype.os.extra/$site.master/$nocol",
            "n1",
            &mut attr,
            &mut site,
        );
        assert_eq!(out, "/UNDEFINED/UNDEFINED/UNDEFINED");
        // Only the first two dot-fields count; no lookup without a column.
        assert_eq!(asked, ["nodetype.os"]);
        assert_eq!(sites, ["master"]);
    }

    #[test]
    fn sub_vars_commands() {
        assert_eq!(subst("#CMD=echo hi#"), "hi");
        assert_eq!(subst("/a/#CMD=echo hi#/b"), "/a/hi/b");
        // Variables are substituted first, then the command runs.
        assert_eq!(subst("/a/#CMD=echo $node#"), "/a/n1");
        // Output is trimmed; a failing command gives what it printed.
        assert_eq!(subst("#CMD=printf '  x  \\n\\n'#"), "x");
        assert_eq!(subst("#CMD=exit 3#"), "");
        assert_eq!(subst("#CMD=/nonexistent/command#"), "");
        // A NUL cannot be passed to a process: empty, no panic.
        assert_eq!(subst("#CMD=echo a\0b#"), "");
    }

    #[test]
    fn sub_vars_xcat_joining() {
        let x = |t: &str, mode| substitute_vars_xcat(t, "n1", mode, &mut attrs, &mut site);
        // Perl's split keeps the leading empty field and xCAT prefixes every one with "/".
        assert_eq!(x("/install/$node", SubVarsMode::Dir), "//install/n1");
        assert_eq!(x("install/$node/", SubVarsMode::Dir), "/install/n1");
        assert_eq!(x("$noderes.nfsserver", SubVarsMode::Dir), "/10.0.0.1");
        assert_eq!(x("$noderes.nfsserver", SubVarsMode::Server), "10.0.0.1");
        // Every component is split off, so the all-empty split of "/" gives nothing.
        assert_eq!(x("/", SubVarsMode::Dir), "");
    }
}
