//! `xdshbak [-c | -x [-b] | -q]`: xdsh's `node: line` output grouped per node, in xCAT's
//! layout (xCAT-client/bin/xdshbak): `HOST:<node>`, a blank line and a rule as long as the header
//! plus one, the node's lines; with `-c`, nodes with identical output share one block headed
//! `HOSTS:`, a 73-dash rule, the sorted node names joined by ", " and a 79-dash rule. Lines
//! without `: ` are ignored, as xCAT does. Without `-q` a `.` is written per 1000 lines read.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct XdshbakArgs {
    /// Collapse nodes with identical output into one block
    #[arg(short = 'c')]
    collapse: bool,
    /// No per-node headers: the lines sorted by node, host names kept
    #[arg(short = 'x')]
    no_headers: bool,
    /// With -x: strip the host names
    #[arg(short = 'b')]
    bare: bool,
    /// Quiet: no progress dots
    #[arg(short = 'q')]
    quiet: bool,
}

/// The nodes' output, in the order nodes first appeared; each node's lines in order.
#[derive(Debug, Default)]
pub struct Collected {
    order: Vec<String>,
    lines: BTreeMap<String, Vec<String>>,
    /// Lines read (with or without a host prefix).
    pub read: usize,
}

impl Collected {
    pub fn push(&mut self, line: &str) {
        self.read += 1;
        let Some((host, rest)) = line.split_once(": ") else {
            return;
        };
        if !self.lines.contains_key(host) {
            self.order.push(host.to_string());
        }
        self.lines
            .entry(host.to_string())
            .or_default()
            .push(rest.to_string());
    }
}

/// The formatted output (pure).
pub fn format(c: &Collected, collapse: bool, no_headers: bool, bare: bool) -> String {
    let mut out = String::new();
    if collapse {
        // Groups of identical output, in the order their first node appeared.
        let mut groups: Vec<(Vec<String>, &Vec<String>)> = Vec::new();
        for h in &c.order {
            let Some(l) = c.lines.get(h) else { continue };
            match groups.iter_mut().find(|(_, g)| *g == l) {
                Some((hosts, _)) => hosts.push(h.clone()),
                None => groups.push((vec![h.clone()], l)),
            }
        }
        for (i, (mut hosts, lines)) in groups.into_iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            hosts.sort();
            out.push_str("HOSTS:\n");
            out.push_str(&"-".repeat(73));
            out.push('\n');
            out.push_str(&hosts.join(", "));
            out.push('\n');
            out.push_str(&"-".repeat(79));
            out.push('\n');
            for l in lines {
                out.push_str(l);
                out.push('\n');
            }
        }
        return out;
    }
    for (i, (host, lines)) in c.lines.iter().enumerate() {
        if no_headers {
            for l in lines {
                if !bare {
                    out.push_str(host);
                    out.push_str(": ");
                }
                out.push_str(l);
                out.push('\n');
            }
            continue;
        }
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("HOST:{host}\n\n"));
        out.push_str(&"-".repeat(6 + host.len()));
        out.push('\n');
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

pub fn xdshbak(a: XdshbakArgs) -> anyhow::Result<ExitCode> {
    if a.collapse && a.no_headers {
        crate::errln!("Usage: xdshbak   [-c | -x | -h | -q] ");
        return Ok(ExitCode::from(1));
    }
    let mut c = Collected::default();
    let mut out = super::stdout();
    let input = std::io::BufReader::new(super::request::stdin());
    for line in input.split(b'\n') {
        let line = line?;
        let text = String::from_utf8_lossy(&line);
        c.push(text.trim_end_matches('\r'));
        if !a.quiet && c.read % 1000 == 0 {
            write!(out, ".")?;
            out.flush()?;
        }
    }
    if !a.quiet && c.read > 999 {
        writeln!(out)?;
    }
    write!(out, "{}", format(&c, a.collapse, a.no_headers, a.bare))?;
    super::finish(out)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &str) -> Collected {
        let mut c = Collected::default();
        for l in text.lines() {
            c.push(l);
        }
        c
    }

    #[test]
    fn blocks_per_node_sorted() {
        let c = collect("n2: b\nn1: a: x\nn1: a2\nnoise\n");
        assert_eq!(
            format(&c, false, false, false),
            "HOST:n1\n\n--------\na: x\na2\n\nHOST:n2\n\n--------\nb\n"
        );
        assert_eq!(format(&c, false, true, false), "n1: a: x\nn1: a2\nn2: b\n");
        assert_eq!(format(&c, false, true, true), "a: x\na2\nb\n");
    }

    #[test]
    fn identical_output_collapses() {
        let c = collect("n3: same\nn1: other\nn2: same\n");
        let rule73 = "-".repeat(73);
        let rule79 = "-".repeat(79);
        assert_eq!(
            format(&c, true, false, false),
            format!("HOSTS:\n{rule73}\nn2, n3\n{rule79}\nsame\n\nHOSTS:\n{rule73}\nn1\n{rule79}\nother\n")
        );
    }
}
