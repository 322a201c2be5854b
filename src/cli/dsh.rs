//! Parallel commands over the system's ssh, scp and rsync (so `~/.ssh/config` applies): `xdsh`,
//! `xdcp`, `psh`, `pscp`, `prsync`, `pping` and `makeknownhosts`, as xCAT's (DSHCLI.pm and the
//! xCAT-client scripts). Every node runs as its own child process, at most `fanout` at once; a
//! node that fails gets its error and the others go on.
//!
//! A node is reached by its name (so `Host` entries in the ssh configuration match); when the
//! configuration gives no `HostName` for it and the node has a `hosts.ip`, that address is used
//! (`-o HostName=<ip>`), so nodes need not be in DNS or /etc/hosts.
//!
//! The runner ([`run`]) reads each child's stdout and stderr on worker threads and hands every
//! line to the command's own thread, which prints it (prefixed `node: `) — as it arrives with
//! `-s`, else all of a node's output when it finishes, as xCAT does.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;

use super::nodes::report_missing;
use super::DbOpt;
use crate::store::resolver::Resolver;

/// xCAT's default fanout (DSH_FANOUT, XCATPSHFANOUT).
pub const FANOUT: usize = 64;

/// What a job's child printed, or how it ended.
enum Ev {
    Line(usize, bool, String),
    Started(usize, u32),
    Done(usize, Result<ExitStatus, String>),
}

/// One node's work: made on a worker thread (it may ask `ssh -G` or probe the node), then run.
pub struct Job {
    pub node: String,
    pub prepare: Box<dyn FnOnce() -> Result<Prepared, String> + Send>,
}

/// The commands to run for a node, one after the other (the first failure ends them), and what
/// the first gets on its standard input.
pub struct Prepared {
    pub cmds: Vec<Command>,
    pub stdin: Option<Vec<u8>>,
}

/// How one node ended.
pub struct Outcome {
    pub node: String,
    /// The exit status of the last command run, or why nothing could run.
    pub status: Result<ExitStatus, String>,
    /// Stopped by `-t` (no output within the timeout).
    pub timed_out: bool,
    /// (stderr?, line) in order, when the output is not streamed.
    pub lines: Vec<(bool, String)>,
}

fn spawn_job(i: usize, job: Job, tx: mpsc::Sender<Ev>) {
    std::thread::spawn(move || {
        let prepared = match (job.prepare)() {
            Ok(p) => p,
            Err(e) => {
                let _ = tx.send(Ev::Done(i, Err(e)));
                return;
            }
        };
        let mut stdin = prepared.stdin;
        let mut last = Err("nothing to run".to_string());
        for mut cmd in prepared.cmds {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            cmd.stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    let prog = cmd.get_program().to_string_lossy().to_string();
                    last = Err(format!("cannot run {prog}: {e}"));
                    break;
                }
            };
            let _ = tx.send(Ev::Started(i, child.id()));
            if let (Some(data), Some(mut w)) = (stdin.take(), child.stdin.take()) {
                std::thread::spawn(move || {
                    let _ = w.write_all(&data);
                });
            }
            let err_reader = child.stderr.take().map(|e| {
                let tx = tx.clone();
                std::thread::spawn(move || read_lines(e, |l| tx.send(Ev::Line(i, true, l)).is_ok()))
            });
            if let Some(o) = child.stdout.take() {
                read_lines(o, |l| tx.send(Ev::Line(i, false, l)).is_ok());
            }
            if let Some(h) = err_reader {
                let _ = h.join();
            }
            last = child.wait().map_err(|e| e.to_string());
            if !matches!(&last, Ok(s) if s.success()) {
                break;
            }
        }
        let _ = tx.send(Ev::Done(i, last));
    });
}

fn read_lines(r: impl Read, mut f: impl FnMut(String) -> bool) {
    for line in BufReader::new(r).split(b'\n') {
        let Ok(line) = line else { return };
        let s = String::from_utf8_lossy(&line);
        if !f(s.trim_end_matches('\r').to_string()) {
            return;
        }
    }
}

/// Runs the jobs, at most `fanout` at once. `stream`: `on_line` is called for each line as it
/// comes; else the lines are kept in the [`Outcome`]. A job without output for `timeout` is
/// stopped (SIGTERM to its child). `on_done` is called on this thread as each job ends.
pub fn run(
    jobs: Vec<Job>,
    fanout: usize,
    timeout: Option<Duration>,
    stream: bool,
    mut on_line: impl FnMut(&str, bool, &str),
    mut on_done: impl FnMut(Outcome),
) {
    let (tx, rx) = mpsc::channel();
    let names: Vec<String> = jobs.iter().map(|j| j.node.clone()).collect();
    let mut pending = jobs.into_iter().enumerate();
    // Per running job: its child's pid, when it last printed, its kept lines, stopped by -t.
    type Running = (Option<u32>, Instant, Vec<(bool, String)>, bool);
    let mut running: HashMap<usize, Running> = HashMap::new();
    let fanout = fanout.max(1);
    loop {
        while running.len() < fanout {
            let Some((i, job)) = pending.next() else {
                break;
            };
            running.insert(i, (None, Instant::now(), Vec::new(), false));
            spawn_job(i, job, tx.clone());
        }
        if running.is_empty() {
            break;
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Ev::Started(i, pid)) => {
                if let Some(r) = running.get_mut(&i) {
                    r.0 = Some(pid);
                }
            }
            Ok(Ev::Line(i, err, l)) => {
                if let Some(r) = running.get_mut(&i) {
                    r.1 = Instant::now();
                    if stream {
                        on_line(&names[i], err, &l);
                    } else {
                        r.2.push((err, l));
                    }
                }
            }
            Ok(Ev::Done(i, status)) => {
                if let Some((_, _, lines, timed_out)) = running.remove(&i) {
                    on_done(Outcome {
                        node: names[i].clone(),
                        status,
                        timed_out,
                        lines,
                    });
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if let Some(t) = timeout {
            for r in running.values_mut() {
                if !r.3 && r.1.elapsed() > t {
                    if let Some(pid) = r.0 {
                        r.3 = true;
                        // Only the child this command started.
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid as i32),
                            nix::sys::signal::Signal::SIGTERM,
                        );
                    }
                }
            }
        }
    }
}

/// Options for the remote shell: `-o "…"` or `$DSH_NODE_OPTS`, split at blanks (quotes keep
/// words together).
pub fn split_opts(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for ch in s.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(ch);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A string quoted for a POSIX shell.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// How ssh would reach `host` with `opts`: (host name, port), from `ssh -G`.
fn ssh_config(opts: &[String], user: Option<&str>, host: &str) -> Option<(String, u16)> {
    let mut c = Command::new("ssh");
    c.arg("-G").args(opts);
    if let Some(u) = user {
        c.args(["-l", u]);
    }
    let o = c.arg(host).stderr(Stdio::null()).output().ok()?;
    if !o.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&o.stdout);
    let mut name = None;
    let mut port = 22;
    for l in text.lines() {
        match l.split_once(' ') {
            Some(("hostname", v)) => name = Some(v.trim().to_string()),
            Some(("port", v)) => port = v.trim().parse().unwrap_or(22),
            _ => {}
        }
    }
    Some((name?, port))
}

/// One node as the remote commands see it.
#[derive(Debug, Clone)]
pub struct Target {
    pub node: String,
    /// The name given to ssh/scp/rsync.
    pub host: String,
    /// `hosts.ip`, used when the ssh configuration names no HostName for the node.
    pub ip: Option<String>,
}

/// The ssh options for `t`: the user's, plus `HostName=<ip>` when the configuration has none.
/// Also returns where ssh will connect (for `-v`).
fn reach(t: &Target, opts: &[String], user: Option<&str>) -> (Vec<String>, Option<(String, u16)>) {
    let mut o = opts.to_vec();
    let cfg = ssh_config(opts, user, &t.host);
    let mut dest = cfg.clone();
    if let (Some(ip), Some((name, port))) = (&t.ip, &cfg) {
        if name.eq_ignore_ascii_case(&t.host) {
            o.push("-o".into());
            o.push(format!("HostName={ip}"));
            dest = Some((ip.clone(), *port));
        }
    }
    (o, dest)
}

/// Whether something answers on `dest` within 5 s (xdsh -v).
fn answers(dest: &(String, u16)) -> bool {
    let addrs: Vec<SocketAddr> = match dest.0.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, dest.1)],
        Err(_) => (dest.0.as_str(), dest.1)
            .to_socket_addrs()
            .map(|a| a.collect())
            .unwrap_or_default(),
    };
    addrs
        .iter()
        .any(|a| TcpStream::connect_timeout(a, Duration::from_secs(5)).is_ok())
}

/// The targets of a noderange (xCAT's `-i`/`--interface` suffix: `<node>-<suffix>`, no address).
fn targets(r: &Resolver, range: &str, suffix: Option<&str>) -> anyhow::Result<(Vec<Target>, bool)> {
    let exp = r.noderange(range, true)?;
    let failed = report_missing(&exp.missing);
    let ip = r.column("hosts", "ip")?;
    let mut out = Vec::new();
    for n in exp.nodes {
        let t = match suffix {
            Some(s) => Target {
                host: format!("{n}-{s}"),
                node: format!("{n}-{s}"),
                ip: None,
            },
            None => Target {
                host: n.clone(),
                ip: ip.get(&n)?.filter(|v| !v.trim().is_empty()),
                node: n,
            },
        };
        out.push(t);
    }
    Ok((out, failed))
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn exit(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_lines(node: &str, lines: &[(bool, String)], silent: bool) {
    if silent {
        return;
    }
    for (err, l) in lines {
        if *err {
            crate::errln!("{node}: {l}");
        } else {
            crate::outln!("{node}: {l}");
        }
    }
}

/// The xCAT error for a node whose remote shell failed.
fn report(o: &Outcome, what: &str, silent: bool) -> bool {
    if o.timed_out {
        crate::errln!(
            "Error: {} timed out: no output within the -t timeout",
            o.node
        );
        return true;
    }
    match &o.status {
        Ok(s) if s.success() => false,
        Ok(s) => {
            if !silent {
                match s.code() {
                    // ssh's own failure (connection, authentication).
                    Some(255) | None => crate::errln!(
                        "Error: {} remote shell had error code: {}",
                        o.node,
                        s.code().unwrap_or(255)
                    ),
                    Some(c) => {
                        crate::errln!("Error: {} remote {what} had return code: {c}", o.node)
                    }
                }
            }
            true
        }
        Err(e) => {
            crate::errln!("Error: {}: {e}", o.node);
            true
        }
    }
}

#[derive(Debug, Args)]
pub struct XdshArgs {
    /// command_list is a local script (and its arguments) to copy to the nodes and run
    #[arg(short = 'e', long = "execute")]
    execute: bool,
    /// Print output as it comes, not per node when it is done
    #[arg(short = 's', long = "stream")]
    stream: bool,
    /// Stop a node's command after this many seconds without output
    #[arg(short = 't', long = "timeout", value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Check that each node answers before running anything on it
    #[arg(short = 'v', long = "verify")]
    verify: bool,
    /// Nodes at once (default $DSH_FANOUT, else 64)
    #[arg(short = 'f', long = "fanout")]
    fanout: Option<usize>,
    /// The remote user
    #[arg(short = 'l', long = "user")]
    user: Option<String>,
    /// Options for ssh (default $DSH_NODE_OPTS), e.g. "-o Port=2222 -i key"
    #[arg(short = 'o', long = "node-options", allow_hyphen_values = true)]
    node_options: Option<String>,
    /// Silent: no output from the nodes
    #[arg(short = 'Q', long = "silent")]
    silent: bool,
    /// Export the local environment definition file before the command
    #[arg(short = 'E', long = "environment")]
    environment: Option<PathBuf>,
    /// The nodes
    noderange: String,
    /// The command (or, with -e, the script and its arguments)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

fn node_opts(o: &Option<String>) -> Vec<String> {
    match o {
        Some(s) => split_opts(s),
        None => std::env::var("DSH_NODE_OPTS")
            .map(|s| split_opts(&s))
            .unwrap_or_default(),
    }
}

fn ssh_base(opts: &[String], user: Option<&str>) -> Command {
    let mut c = Command::new("ssh");
    c.args(["-o", "BatchMode=yes"]).args(opts);
    if let Some(u) = user {
        c.args(["-l", u]);
    }
    c
}

pub fn xdsh(db: &DbOpt, a: XdshArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let r = Resolver::new(store);
    let (targets, mut failed) = targets(&r, &a.noderange, None)?;
    if targets.is_empty() {
        bail!("no nodes in '{}'", a.noderange);
    }
    let opts = node_opts(&a.node_options);
    let fanout = a
        .fanout
        .or_else(|| env_usize("DSH_FANOUT"))
        .unwrap_or(FANOUT);
    let timeout = a
        .timeout
        .or_else(|| env_usize("DSH_TIMEOUT").map(|t| t as u64))
        .map(Duration::from_secs);
    let mut prefix = String::new();
    if let Some(env) = &a.environment {
        let text = super::request::read_input(env)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", env.display()))?;
        prefix.push_str(&String::from_utf8_lossy(&text));
        prefix.push('\n');
    }
    let (remote, script) = if a.execute {
        let path = PathBuf::from(&a.command[0]);
        let body = super::request::read_input(&path)
            .map_err(|e| anyhow::anyhow!("cannot read the script {}: {e}", path.display()))?;
        let args: Vec<String> = a.command[1..].iter().map(|x| sh_quote(x)).collect();
        (
            format!(
                "{prefix}f=$(mktemp /tmp/xdsh.XXXXXXXX) || exit 1; cat > \"$f\" && chmod 700 \"$f\" && \"$f\" {}; rc=$?; rm -f \"$f\"; exit $rc",
                args.join(" ")
            ),
            Some(body),
        )
    } else {
        (format!("{prefix}{}", a.command.join(" ")), None)
    };
    let jobs = targets
        .into_iter()
        .map(|t| {
            let (opts, user, remote, script, verify) = (
                opts.clone(),
                a.user.clone(),
                remote.clone(),
                script.clone(),
                a.verify,
            );
            Job {
                node: t.node.clone(),
                prepare: Box::new(move || {
                    let (o, dest) = reach(&t, &opts, user.as_deref());
                    if verify && !dest.as_ref().is_some_and(answers) {
                        return Err(
                            "is not responding. No command will be issued to this host (-v)"
                                .to_string(),
                        );
                    }
                    let mut c = ssh_base(&o, user.as_deref());
                    c.arg(&t.host).arg(&remote);
                    Ok(Prepared {
                        cmds: vec![c],
                        stdin: script,
                    })
                }),
            }
        })
        .collect();
    let silent = a.silent;
    run(
        jobs,
        fanout,
        timeout,
        a.stream,
        |node, err, l| print_lines(node, &[(err, l.to_string())], silent),
        |o| {
            print_lines(&o.node, &o.lines, silent);
            failed |= report(&o, "Command", silent);
        },
    );
    Ok(exit(failed))
}

#[derive(Debug, Args)]
pub struct XdcpArgs {
    /// Copy directories recursively
    #[arg(short = 'R', long = "recursive")]
    recursive: bool,
    /// Pull: copy the files from the nodes into the local target directory (as <file>._<node>)
    #[arg(short = 'P', long = "pull")]
    pull: bool,
    /// A synclist file: lines "source … -> destination", copied with rsync
    #[arg(short = 'F', long = "File", value_name = "SYNCLIST")]
    synclist: Option<PathBuf>,
    /// Preserve modification times and modes
    #[arg(short = 'p', long = "preserve")]
    preserve: bool,
    /// Stop a node's copy after this many seconds without output
    #[arg(short = 't', long = "timeout")]
    timeout: Option<u64>,
    /// Check that each node answers first
    #[arg(short = 'v', long = "verify")]
    verify: bool,
    /// Nodes at once
    #[arg(short = 'f', long = "fanout")]
    fanout: Option<usize>,
    /// The remote user
    #[arg(short = 'l', long = "user")]
    user: Option<String>,
    /// Options for scp/ssh (default $DSH_NODE_OPTS)
    #[arg(short = 'o', long = "node-options", allow_hyphen_values = true)]
    node_options: Option<String>,
    /// The nodes
    noderange: String,
    /// Source files … and the target path
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    paths: Vec<String>,
}

/// One synclist line: sources and destination (xCAT's `file … -> dest`).
pub fn parse_synclist(text: &str) -> Result<Vec<(Vec<String>, String)>, String> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line.ends_with(':') && !line.contains("->") {
            return Err(format!(
                "line {}: the {} section is not supported",
                n + 1,
                line.trim_end_matches(':')
            ));
        }
        let Some((src, dst)) = line.split_once("->") else {
            return Err(format!("line {}: no '->' in '{line}'", n + 1));
        };
        let srcs: Vec<String> = src.split_whitespace().map(str::to_string).collect();
        let dst = dst.trim();
        if srcs.is_empty() || dst.is_empty() {
            return Err(format!(
                "line {}: '{line}' needs a source and a destination",
                n + 1
            ));
        }
        out.push((srcs, dst.to_string()));
    }
    Ok(out)
}

fn rsync_cmd(opts: &[String], user: Option<&str>) -> Command {
    let mut e = vec!["ssh".to_string(), "-o".into(), "BatchMode=yes".into()];
    e.extend(opts.iter().map(|o| sh_quote(o)));
    if let Some(u) = user {
        e.push("-l".into());
        e.push(sh_quote(u));
    }
    let mut c = Command::new("rsync");
    c.arg("-a").arg("-e").arg(e.join(" "));
    c
}

pub fn xdcp(db: &DbOpt, a: XdcpArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let r = Resolver::new(store);
    let (targets, mut failed) = targets(&r, &a.noderange, None)?;
    if targets.is_empty() {
        bail!("no nodes in '{}'", a.noderange);
    }
    let sync = match &a.synclist {
        Some(p) => {
            let text = super::request::read_input(p)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
            match parse_synclist(&String::from_utf8_lossy(&text)) {
                Ok(s) => Some(s),
                Err(e) => {
                    crate::errln!("Error: {}: {e}", p.display());
                    return Ok(ExitCode::from(1));
                }
            }
        }
        None => None,
    };
    if sync.is_none() && a.paths.len() < 2 {
        crate::errln!("Error: xdcp needs source files and a target path (or -F synclist)");
        return Ok(ExitCode::from(1));
    }
    let (sources, target) = match a.paths.split_last() {
        Some((t, s)) => (s.to_vec(), t.clone()),
        None => (Vec::new(), String::new()),
    };
    if a.pull {
        let dir = Path::new(&target);
        if !dir.is_dir() {
            crate::errln!("Error: with -P the target path {target} must be a local directory");
            return Ok(ExitCode::from(1));
        }
    }
    let opts = node_opts(&a.node_options);
    let fanout = a
        .fanout
        .or_else(|| env_usize("DSH_FANOUT"))
        .unwrap_or(FANOUT);
    let jobs = targets
        .into_iter()
        .map(|t| {
            let (opts, user, sources, target, sync) = (
                opts.clone(),
                a.user.clone(),
                sources.clone(),
                target.clone(),
                sync.clone(),
            );
            let (recursive, preserve, pull, verify) = (a.recursive, a.preserve, a.pull, a.verify);
            Job {
                node: t.node.clone(),
                prepare: Box::new(move || {
                    let (o, dest) = reach(&t, &opts, user.as_deref());
                    if verify && !dest.as_ref().is_some_and(answers) {
                        return Err(
                            "is not responding. No command will be issued to this host (-v)".into(),
                        );
                    }
                    let remote = |p: &str| format!("{}:{p}", t.host);
                    let mut cmds = Vec::new();
                    if let Some(lines) = sync {
                        for (srcs, dst) in lines {
                            let mut c = rsync_cmd(&o, user.as_deref());
                            c.arg("--mkpath").args(&srcs).arg(remote(&dst));
                            cmds.push(c);
                        }
                    } else {
                        let scp = || {
                            let mut c = Command::new("scp");
                            c.args(["-q", "-o", "BatchMode=yes"]).args(&o);
                            if let Some(u) = &user {
                                c.arg("-o").arg(format!("User={u}"));
                            }
                            if recursive {
                                c.arg("-r");
                            }
                            if preserve {
                                c.arg("-p");
                            }
                            c
                        };
                        if pull {
                            for s in &sources {
                                let base = Path::new(s)
                                    .file_name()
                                    .map(|b| b.to_string_lossy().to_string())
                                    .unwrap_or_else(|| s.clone());
                                let mut c = scp();
                                c.arg(remote(s))
                                    .arg(Path::new(&target).join(format!("{base}._{}", t.node)));
                                cmds.push(c);
                            }
                        } else {
                            let mut c = scp();
                            c.args(&sources).arg(remote(&target));
                            cmds.push(c);
                        }
                    }
                    Ok(Prepared { cmds, stdin: None })
                }),
            }
        })
        .collect();
    run(
        jobs,
        fanout,
        a.timeout.map(Duration::from_secs),
        false,
        |_, _, _| {},
        |o| {
            print_lines(&o.node, &o.lines, false);
            failed |= report(&o, "Command", false);
        },
    );
    Ok(exit(failed))
}

#[derive(Debug, Args)]
pub struct PshArgs {
    /// Reach <node>-<interface> instead of the node
    #[arg(short = 'i', long = "interface")]
    interface: Option<String>,
    /// The remote user
    #[arg(short = 'l', long = "loginname")]
    user: Option<String>,
    /// Stop the nodes still running after this many seconds
    #[arg(short = 't', long = "timeout")]
    timeout: Option<u64>,
    /// Nodes at once (default $XCATPSHFANOUT, else 64)
    #[arg(short = 'f', long = "fanout")]
    fanout: Option<usize>,
    /// The nodes
    noderange: String,
    /// The command
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

/// psh's exit code: the number of nodes whose ssh failed (mod 256, never 0 when some did).
pub fn psh_exit(failed: usize) -> u8 {
    match failed {
        0 => 0,
        n => match (n % 256) as u8 {
            0 => 1,
            c => c,
        },
    }
}

pub fn psh(db: &DbOpt, a: PshArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let r = Resolver::new(store);
    let (targets, missing) = targets(&r, &a.noderange, a.interface.as_deref())?;
    if missing {
        return Ok(ExitCode::from(1));
    }
    let opts = node_opts(&None);
    let fanout = a
        .fanout
        .or_else(|| env_usize("XCATPSHFANOUT"))
        .unwrap_or(FANOUT);
    let remote = a.command.join(" ");
    let jobs = targets
        .into_iter()
        .map(|t| {
            let (opts, user, remote) = (opts.clone(), a.user.clone(), remote.clone());
            Job {
                node: t.node.clone(),
                prepare: Box::new(move || {
                    let (o, _) = reach(&t, &opts, user.as_deref());
                    let mut c = ssh_base(&o, user.as_deref());
                    c.arg(&t.host).arg(&remote);
                    Ok(Prepared {
                        cmds: vec![c],
                        stdin: None,
                    })
                }),
            }
        })
        .collect();
    let mut failures = 0usize;
    // psh prints stdout and stderr (2>&1) as they come, prefixed.
    run(
        jobs,
        fanout,
        a.timeout.map(Duration::from_secs),
        true,
        |node, _, l| crate::outln!("{node}: {l}"),
        |o| {
            if o.timed_out {
                crate::errln!("{}: timeout exceeded", o.node);
            }
            match &o.status {
                Ok(s) if s.success() => {}
                Ok(s) => {
                    crate::errln!(
                        "{}: *** ssh exited with error code {}.",
                        o.node,
                        s.code().unwrap_or(255)
                    );
                    failures += 1;
                }
                Err(e) => {
                    crate::errln!("{}: *** {e}", o.node);
                    failures += 1;
                }
            }
        },
    );
    Ok(ExitCode::from(psh_exit(failures)))
}

#[derive(Debug, Args)]
pub struct PcopyArgs {
    /// Nodes at once
    #[arg(short = 'f', long = "fanout")]
    fanout: Option<usize>,
    /// Reach <node>-<suffix> instead of the node
    #[arg(short = 'i', long = "interface")]
    interface: Option<String>,
    /// Options for the copy program, files, and <noderange>:<destination> last
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    args: Vec<String>,
}

/// pscp and prsync: each node's output prefixed, then `<node>: done`; exit 0 as xCAT's.
fn pcopy(db: &DbOpt, a: PcopyArgs, rsync: bool) -> anyhow::Result<ExitCode> {
    let Some((last, files)) = a.args.split_last() else {
        bail!("no files given");
    };
    let Some((range, dest)) = last.split_once(':') else {
        crate::outln!("No node range specified\n");
        return Ok(ExitCode::from(1));
    };
    let store = db.open()?;
    let r = Resolver::new(store);
    let (targets, missing) = targets(&r, range, a.interface.as_deref())?;
    if missing {
        return Ok(ExitCode::from(1));
    }
    let opts = node_opts(&None);
    let fanout = a
        .fanout
        .or_else(|| env_usize("XCATPSHFANOUT"))
        .unwrap_or(FANOUT);
    let jobs = targets
        .into_iter()
        .map(|t| {
            let (opts, files, dest) = (opts.clone(), files.to_vec(), dest.to_string());
            Job {
                node: t.node.clone(),
                prepare: Box::new(move || {
                    let (o, _) = reach(&t, &opts, None);
                    let c = if rsync {
                        let mut c = rsync_cmd(&o, None);
                        c.arg("-z").args(&files).arg(format!("{}:{dest}", t.host));
                        c
                    } else {
                        let mut c = Command::new("scp");
                        c.args(["-o", "BatchMode=yes"]).args(&o).args(&files);
                        c.arg(format!("{}:{dest}", t.host));
                        c
                    };
                    Ok(Prepared {
                        cmds: vec![c],
                        stdin: None,
                    })
                }),
            }
        })
        .collect();
    run(
        jobs,
        fanout,
        None,
        true,
        |node, _, l| crate::outln!("{node}: {l}"),
        |o| {
            if let Err(e) = &o.status {
                crate::outln!("{}: {e}", o.node);
            }
            crate::outln!("{}: done", o.node);
        },
    );
    Ok(ExitCode::SUCCESS)
}

pub fn pscp(db: &DbOpt, a: PcopyArgs) -> anyhow::Result<ExitCode> {
    pcopy(db, a, false)
}

pub fn prsync(db: &DbOpt, a: PcopyArgs) -> anyhow::Result<ExitCode> {
    pcopy(db, a, true)
}

#[derive(Debug, Args)]
pub struct PpingArgs {
    /// Ping <node>-<interface> (comma-separated: each in turn)
    #[arg(short = 'i', long = "interface")]
    interface: Option<String>,
    /// Use fping (accepted; ping is used)
    #[arg(short = 'f', long = "use_fping")]
    fping: bool,
    /// The noderange is a comma-separated list of nodes
    #[arg(short = 'X', long = "noexpand")]
    noexpand: bool,
    /// The nodes
    noderange: String,
}

pub fn pping(db: &DbOpt, a: PpingArgs) -> anyhow::Result<ExitCode> {
    let _ = a.fping;
    let store = db.open()?;
    let r = Resolver::new(store);
    let suffixes: Vec<Option<String>> = match &a.interface {
        Some(i) => i.split(',').map(|s| Some(s.to_string())).collect(),
        None => vec![None],
    };
    for suffix in suffixes {
        let list: Vec<Target> = if a.noexpand {
            a.noderange
                .split(',')
                .filter(|n| !n.is_empty())
                .map(|n| Target {
                    node: n.to_string(),
                    host: n.to_string(),
                    ip: None,
                })
                .collect()
        } else {
            let (t, missing) = targets(&r, &a.noderange, suffix.as_deref())?;
            if missing {
                return Ok(ExitCode::from(1));
            }
            t
        };
        let jobs = list
            .into_iter()
            .map(|t| Job {
                node: t.node.clone(),
                prepare: Box::new(move || {
                    let mut c = Command::new("ping");
                    c.args(["-c", "1", "-W", "1", "-q"])
                        .arg(t.ip.as_deref().unwrap_or(&t.host));
                    Ok(Prepared {
                        cmds: vec![c],
                        stdin: None,
                    })
                }),
            })
            .collect();
        let mut results: Vec<(String, bool)> = Vec::new();
        run(
            jobs,
            256,
            None,
            false,
            |_, _, _| {},
            |o| {
                results.push((o.node, matches!(o.status, Ok(s) if s.success())));
            },
        );
        // Alive nodes first as they answer (fping's order), then the dead ones sorted (nmap_pping).
        results.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
        for (n, ok) in results {
            crate::outln!("{n}: {}", if ok { "ping" } else { "noping" });
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct MakeknownhostsArgs {
    /// Only remove the nodes' entries
    #[arg(
        short = 'r',
        long = "remove",
        visible_short_alias = 'd',
        visible_alias = "delete"
    )]
    remove: bool,
    /// Verbose
    #[arg(short = 'V', long = "verbose")]
    verbose: bool,
    /// The known_hosts file (default: ~/.ssh/known_hosts of the user running the command)
    #[arg(long = "file", value_name = "PATH")]
    file: Option<PathBuf>,
    /// The nodes
    noderange: String,
}

/// The directory holding xCAT's shared host keys, when a site copied them over.
const XCAT_HOSTKEYS: &str = "/etc/xcat/hostkeys";

fn known_hosts_path() -> anyhow::Result<PathBuf> {
    let u = nix::unistd::User::from_uid(nix::unistd::getuid())?
        .ok_or_else(|| anyhow::anyhow!("who is running this command?"))?;
    Ok(u.dir.join(".ssh/known_hosts"))
}

/// A known_hosts line names one of `names` (first field, comma-separated; hashed lines are kept).
fn names_any(line: &str, names: &[String]) -> bool {
    let first = line.split_whitespace().next().unwrap_or("");
    let first = if first.starts_with('@') {
        line.split_whitespace().nth(1).unwrap_or("")
    } else {
        first
    };
    first.split(',').any(|h| {
        let h = h
            .strip_prefix('[')
            .and_then(|x| x.split_once(']'))
            .map(|(x, _)| x)
            .unwrap_or(h);
        names.iter().any(|n| n.eq_ignore_ascii_case(h))
    })
}

pub fn makeknownhosts(db: &DbOpt, a: MakeknownhostsArgs) -> anyhow::Result<ExitCode> {
    let store = db.open()?;
    let r = Resolver::new(store);
    let (targets, mut failed) = targets(&r, &a.noderange, None)?;
    let file = match &a.file {
        Some(f) => f.clone(),
        None => known_hosts_path()?,
    };
    let domain = r.site("domain")?.unwrap_or_default();
    // Every name of each node: its name, its long name, its address.
    let names_of = |t: &Target| -> Vec<String> {
        let mut v = vec![t.node.clone()];
        let q = crate::dns::zone::qualify(&t.node, &domain);
        if q != t.node {
            v.push(q);
        }
        v.extend(t.ip.clone());
        v
    };
    let all_names: Vec<String> = targets.iter().flat_map(&names_of).collect();
    let old = std::fs::read_to_string(&file).unwrap_or_default();
    let mut lines: Vec<String> = old
        .lines()
        .filter(|l| !names_any(l, &all_names))
        .map(str::to_string)
        .collect();
    if a.remove {
        if a.verbose {
            for t in &targets {
                crate::outln!("{}: known_hosts entries removed", t.node);
            }
        }
    } else {
        // xCAT's shared host keys when the site has them; else each node's own keys.
        let shared: Vec<String> = std::fs::read_dir(XCAT_HOSTKEYS)
            .map(|d| {
                let mut keys: Vec<String> = d
                    .filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with("_key.pub"))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .map(|k| k.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
                    .collect();
                keys.sort();
                keys
            })
            .unwrap_or_default();
        let mut found: Vec<(String, Vec<String>)> = Vec::new();
        if shared.is_empty() {
            let opts = node_opts(&None);
            let jobs = targets
                .iter()
                .cloned()
                .map(|t| {
                    let opts = opts.clone();
                    Job {
                        node: t.node.clone(),
                        prepare: Box::new(move || {
                            let (_, dest) = reach(&t, &opts, None);
                            let (host, port) = dest
                                .unwrap_or((t.ip.clone().unwrap_or_else(|| t.host.clone()), 22));
                            let mut c = Command::new("ssh-keyscan");
                            c.args(["-T", "5", "-p", &port.to_string()]).arg(host);
                            Ok(Prepared {
                                cmds: vec![c],
                                stdin: None,
                            })
                        }),
                    }
                })
                .collect();
            run(
                jobs,
                FANOUT,
                None,
                false,
                |_, _, _| {},
                |o| {
                    let keys: Vec<String> = o
                        .lines
                        .iter()
                        .filter(|(err, l)| !err && !l.starts_with('#'))
                        .filter_map(|(_, l)| {
                            let mut w = l.split_whitespace();
                            let (_, t, k) = (w.next()?, w.next()?, w.next()?);
                            Some(format!("{t} {k}"))
                        })
                        .collect();
                    found.push((o.node, keys));
                },
            );
        } else {
            for t in &targets {
                found.push((t.node.clone(), shared.clone()));
            }
        }
        for t in &targets {
            let keys = found
                .iter()
                .find(|(n, _)| *n == t.node)
                .map(|(_, k)| k.clone())
                .unwrap_or_default();
            if keys.is_empty() {
                crate::errln!(
                    "Error: {}: no ssh host key (no answer from its ssh server, and no {XCAT_HOSTKEYS})",
                    t.node
                );
                failed = true;
                continue;
            }
            let names = names_of(t).join(",");
            for k in &keys {
                lines.push(format!("{names} {k}"));
            }
            if a.verbose {
                crate::outln!("{}: {} key(s) added for {names}", t.node, keys.len());
            }
        }
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    std::fs::write(&file, text)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
    Ok(exit(failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_like_a_shell() {
        assert_eq!(
            split_opts("-o Port=2222  -i '/k ey' -F\"x\""),
            vec!["-o", "Port=2222", "-i", "/k ey", "-Fx"]
        );
        assert!(split_opts("  ").is_empty());
    }

    #[test]
    fn synclists_parse() {
        let s = parse_synclist("# c\n/etc/a -> /etc/a\n/x /y -> /dir/\n\n").expect("parse");
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].0, vec!["/x", "/y"]);
        assert_eq!(s[1].1, "/dir/");
        assert!(parse_synclist("EXECUTE:\n/a\n").is_err());
        assert!(parse_synclist("/a /b\n").is_err());
    }

    #[test]
    fn psh_counts_failures() {
        assert_eq!(psh_exit(0), 0);
        assert_eq!(psh_exit(3), 3);
        assert_eq!(psh_exit(256), 1);
    }

    #[test]
    fn known_hosts_lines_match_names() {
        let n = vec!["n1".to_string(), "10.0.0.1".to_string()];
        assert!(names_any("n1,n1.c,10.0.0.1 ssh-ed25519 AAAA", &n));
        assert!(names_any("[10.0.0.1]:2222 ssh-ed25519 AAAA", &n));
        assert!(!names_any("n10 ssh-ed25519 AAAA", &n));
    }
}
