//! xCAT's table CSV, as `tabdump` writes it and `tabrestore` reads it.
//!
//! Writing: a `#col,col,…` header in schema order, then one line per row where a value is written
//! `"value"` (embedded quotes doubled) and NULL as nothing; xCAT removes exactly one trailing comma,
//! so a row ending in NULLs ends in `,`. Reading accepts what xCAT's tabrestore accepts: quoted or
//! bare values, a header naming a subset of columns in any order, quoted values spanning lines,
//! trailing white space ignored. `""` reads back as an empty string and an empty field as NULL, so
//! dump → restore → dump gives the same bytes.

use super::backend::Row;
use super::schema::TableSpec;

/// A CSV problem, with the 1-based line of the file where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct CsvError {
    pub line: usize,
    pub reason: String,
}

/// Renders rows as xCAT's tabdump does.
pub fn dump<'a>(spec: &TableSpec, rows: impl IntoIterator<Item = &'a Row>) -> String {
    let mut out = String::new();
    out.push('#');
    out.push_str(&spec.cols.join(","));
    out.push('\n');
    for row in rows {
        write_row(&mut out, row);
    }
    out
}

/// Appends one row line (with its newline) in tabdump format.
pub fn write_row(out: &mut String, row: &Row) {
    let start = out.len();
    for v in row {
        match v {
            Some(v) => {
                out.push('"');
                for ch in v.chars() {
                    if ch == '"' {
                        out.push('"');
                    }
                    out.push(ch);
                }
                out.push_str("\",");
            }
            None => out.push(','),
        }
    }
    if out.len() > start && out.ends_with(',') {
        out.pop();
    }
    out.push('\n');
}

/// A parsed CSV file: the header's columns and the records, each with the line it started on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub columns: Vec<String>,
    pub records: Vec<(usize, Vec<Option<String>>)>,
}

/// Parses xCAT CSV text. Every record has exactly `columns.len()` fields (missing trailing
/// fields are NULL, as in xCAT).
pub fn parse(text: &str) -> Result<Parsed, CsvError> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut idx = 0;
    // The header is the first line that is not blank.
    while idx < lines.len() && lines[idx].trim().is_empty() {
        idx += 1;
    }
    let Some(header) = lines.get(idx) else {
        return Err(CsvError {
            line: 1,
            reason: "the file is empty; expected a header line starting with #".into(),
        });
    };
    let header = header.trim_end();
    let Some(h) = header.strip_prefix('#') else {
        return Err(CsvError {
            line: idx + 1,
            reason: format!(
                "data is missing the header line starting with # (found '{}')",
                truncate(header)
            ),
        });
    };
    let columns: Vec<String> = h
        .replace('"', "")
        .split(',')
        .map(|c| c.trim().to_string())
        .collect();
    if columns.iter().any(String::is_empty) {
        return Err(CsvError {
            line: idx + 1,
            reason: "the header line has an empty column name".into(),
        });
    }
    idx += 1;
    let mut records = Vec::new();
    while idx < lines.len() {
        let start = idx;
        let first = lines[idx].trim_end();
        idx += 1;
        if first.is_empty() {
            continue;
        }
        // `rest` is what is left of the logical record; quoted values may pull in following lines.
        let mut rest: String = first.to_string();
        let mut fields = Vec::with_capacity(columns.len());
        for _ in &columns {
            // The statelite cookbook writes `"ALL", "/etc/adjtime", , ,`: spaces between fields are
            // not part of any value, so skip them before deciding what the field is.
            if rest.starts_with(' ') || rest.starts_with('\t') {
                rest = rest.trim_start_matches([' ', '\t']).to_string();
            }
            if rest.is_empty() || rest.starts_with(',') {
                fields.push(None);
                if rest.starts_with(',') {
                    rest.remove(0);
                }
            } else if rest.starts_with('"') {
                let (value, after) = loop {
                    match take_quoted(&rest) {
                        Quoted::Value(v, after) => break (v, after),
                        Quoted::Unterminated => {
                            let Some(next) = lines.get(idx) else {
                                return Err(CsvError {
                                    line: start + 1,
                                    reason: format!("unmatched \" in record: {}", truncate(first)),
                                });
                            };
                            rest.push('\n');
                            rest.push_str(next.trim_end());
                            idx += 1;
                        }
                        Quoted::Junk => {
                            return Err(CsvError {
                                line: start + 1,
                                reason: format!(
                                    "unescaped \" in a quoted value (write \"\" for a quote): {}",
                                    truncate(first)
                                ),
                            })
                        }
                    }
                };
                fields.push(Some(value));
                rest = after;
            } else {
                let end = rest.find(',').unwrap_or(rest.len());
                let value = rest[..end].trim_end_matches([' ', '\t']);
                if value.contains('"') {
                    return Err(CsvError {
                        line: start + 1,
                        reason: format!(
                            "a value with \" must be quoted as a whole: {}",
                            truncate(first)
                        ),
                    });
                }
                fields.push(Some(value.to_string()));
                rest = rest.get(end + 1..).unwrap_or("").to_string();
            }
        }
        if !rest.is_empty() {
            return Err(CsvError {
                line: start + 1,
                reason: format!(
                    "too many fields: the header names {} columns, left over: {}",
                    columns.len(),
                    truncate(&rest)
                ),
            });
        }
        records.push((start + 1, fields));
    }
    Ok(Parsed { columns, records })
}

enum Quoted {
    /// The unquoted value and what follows its separator.
    Value(String, String),
    /// The closing quote is not on this line.
    Unterminated,
    /// Something other than `,` or end of line follows a closing quote.
    Junk,
}

fn take_quoted(s: &str) -> Quoted {
    let mut value = String::new();
    let mut chars = s.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if c != '"' {
            value.push(c);
            continue;
        }
        match chars.peek() {
            Some((_, '"')) => {
                value.push('"');
                chars.next();
            }
            Some((j, ',')) => return Quoted::Value(value, s[j + 1..].to_string()),
            Some((_, ' ' | '\t')) => {
                // Spaces after the closing quote, then a comma or the end of the line.
                let after = s[i + 1..].trim_start_matches([' ', '\t']);
                return match after.strip_prefix(',') {
                    Some(a) => Quoted::Value(value, a.to_string()),
                    None if after.is_empty() => Quoted::Value(value, String::new()),
                    None => Quoted::Junk,
                };
            }
            None => {
                let _ = i;
                return Quoted::Value(value, String::new());
            }
            Some(_) => return Quoted::Junk,
        }
    }
    Quoted::Unterminated
}

fn truncate(s: &str) -> String {
    const MAX: usize = 120;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

/// Maps parsed records onto full rows of `spec`, checking column names and keys.
pub fn to_rows(spec: &TableSpec, parsed: &Parsed) -> Result<Vec<(usize, Row)>, CsvError> {
    let mut map = Vec::with_capacity(parsed.columns.len());
    for c in &parsed.columns {
        let Some(i) = spec.col_index(c) else {
            return Err(CsvError {
                line: 1,
                reason: format!(
                    "the header names column '{c}', which table '{}' does not have (its columns: {})",
                    spec.name,
                    spec.cols.join(",")
                ),
            });
        };
        if map.contains(&i) {
            return Err(CsvError {
                line: 1,
                reason: format!("the header names column '{c}' twice"),
            });
        }
        map.push(i);
    }
    let mut rows = Vec::with_capacity(parsed.records.len());
    for (line, fields) in &parsed.records {
        let mut row: Row = vec![None; spec.cols.len()];
        for (i, v) in map.iter().zip(fields) {
            row[*i] = v.clone();
        }
        for k in spec.keys {
            if Some(*k) == spec.autoinc {
                continue;
            }
            let i = spec.col_index(k).unwrap_or(0);
            if row
                .get(i)
                .is_none_or(|v| v.as_deref().is_none_or(str::is_empty))
            {
                return Err(CsvError {
                    line: *line,
                    reason: format!("key column '{k}' is empty"),
                });
            }
        }
        rows.push((*line, row));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> &'static TableSpec {
        crate::store::schema::table("site").expect("site table")
    }

    #[test]
    fn dump_quotes_values_and_leaves_nulls_empty() {
        let rows = vec![
            vec![
                Some("domain".to_string()),
                Some("cluster.com".to_string()),
                None,
                None,
            ],
            vec![
                Some("a".to_string()),
                Some("say \"hi\", ok".to_string()),
                Some(String::new()),
                None,
            ],
        ];
        let text = dump(site(), &rows);
        assert_eq!(
            text,
            "#key,value,comments,disable\n\"domain\",\"cluster.com\",,\n\"a\",\"say \"\"hi\"\", ok\",\"\",\n"
        );
    }

    #[test]
    fn parse_reads_back_what_dump_wrote() {
        let text = "#key,value,comments,disable\n\"domain\",\"cluster.com\",,\n\"a\",\"say \"\"hi\"\", ok\",\"\",\n";
        let p = parse(text).expect("parses");
        assert_eq!(p.columns, ["key", "value", "comments", "disable"]);
        assert_eq!(p.records[1].1[1].as_deref(), Some("say \"hi\", ok"));
        assert_eq!(p.records[1].1[2].as_deref(), Some(""));
        assert_eq!(p.records[1].1[3], None);
        let rows: Vec<Row> = to_rows(site(), &p)
            .expect("rows")
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        assert_eq!(dump(site(), &rows), text);
    }

    #[test]
    fn bare_values_subset_headers_and_multiline_values() {
        let p = parse("#value,key\nx,k1\n\"two\nlines\",k2\n").expect("parses");
        let rows = to_rows(site(), &p).expect("rows");
        assert_eq!(
            rows[0].1,
            vec![Some("k1".into()), Some("x".into()), None, None]
        );
        assert_eq!(rows[1].1[1].as_deref(), Some("two\nlines"));
        assert_eq!(rows[1].0, 3);
    }

    #[test]
    fn errors_name_the_line_and_problem() {
        let e = parse("key,value\n").unwrap_err();
        assert!(e.reason.contains("header"), "{e}");
        let e = parse("#key,value\n\"a\",\"b\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("unmatched"), "{e}");
        let e = parse("#key,value\n\"a\"x,b\n").unwrap_err();
        assert!(e.reason.contains("unescaped"), "{e}");
        let e = parse("#key,value\na,b,c\n").unwrap_err();
        assert!(e.reason.contains("too many fields"), "{e}");
        let e = parse("#key,value\na\"b,c\n").unwrap_err();
        assert!(e.reason.contains("quoted"), "{e}");
        let e = to_rows(site(), &parse("#key,bogus\na,b\n").expect("parses")).unwrap_err();
        assert!(e.reason.contains("'bogus'"), "{e}");
        let e = to_rows(site(), &parse("#key,value\n,b\n").expect("parses")).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("key column 'key'"), "{e}");
    }

    #[test]
    fn cookbook_spacing_is_accepted() {
        let p = parse("#image,file,options,comments,disable\n\"ALL\", \"/etc/adjtime\", , ,\n")
            .expect("parses");
        assert_eq!(
            p.records[0].1,
            vec![
                Some("ALL".into()),
                Some("/etc/adjtime".into()),
                None,
                None,
                None
            ]
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        for s in [
            "",
            "#",
            "#a\n\"",
            "#a,b\n\"\"\"",
            "#a\n\"é\"ü",
            "#a\n,\n,,,,",
            "\u{feff}#a",
        ] {
            let _ = parse(s);
        }
    }
}
