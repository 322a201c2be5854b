//! The request a command serves, and where its output goes.
//!
//! Every admin command is a handler over (store, [`Request`]) that writes a stream of responses:
//! lines of data (stdout) and of errors (stderr), then an exit code. The same handler serves the
//! local CLI (the sink is the process's stdout/stderr) and the remote protocol (the sink turns
//! each line into an `<xcatresponse>` on the client's connection). Commands never print with
//! `println!`: they write through [`outln!`](crate::outln)/[`errln!`](crate::errln) or
//! [`super::stdout`], which go to the sink of the request the current thread serves. A request
//! also carries what the client sent with it: stdin and the files its arguments name, so a command
//! reads its input through [`read_input`]/[`stdin`] and gets the client's bytes when it runs
//! remotely.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Who asks, from where, and what they sent along with the command line.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The command's name (`nodels`) and its arguments (without the name).
    pub command: String,
    pub args: Vec<String>,
    /// The user the request is made for (a certificate's CN, or the local user).
    pub user: String,
    /// The client's host (a node name, or its address), or empty for a local command.
    pub peer: String,
    /// xCAT's `clienttype` (`cli`, `ws` for the REST API, …).
    pub clienttype: String,
    /// The noderange the client sent apart from the arguments (xCAT's `xcatclient` does).
    pub noderange: Option<String>,
    /// True when the request came over the network: files are then only what the client sent.
    pub remote: bool,
    /// The client's working directory (relative file names are resolved against it).
    pub cwd: Option<PathBuf>,
    /// What the client sent as stdin (`mkdef -z`), if anything.
    pub stdin: Option<Vec<u8>>,
    /// Files the client sent (absolute path on the client → contents).
    pub files: BTreeMap<PathBuf, Vec<u8>>,
    /// Show secrets (passwords, keys) as `********`: a remote user whom policy does not allow
    /// `showsecrets`.
    pub mask_secrets: bool,
}

/// The columns that hold secrets: BMC and switch passwords, SNMP communities and keys, xCAT
/// logins and the keys in `passwd`, tokens.
pub const SECRET_COLUMNS: &[(&str, &str)] = &[
    ("domain", "adminpassword"),
    ("ipmi", "password"),
    ("iscsi", "passwd"),
    ("mpa", "password"),
    ("openbmc", "password"),
    ("passwd", "password"),
    ("pdu", "password"),
    ("pdu", "community"),
    ("pdu", "authkey"),
    ("pdu", "privkey"),
    ("ppcdirect", "password"),
    ("ppchcp", "password"),
    ("prodkey", "key"),
    ("switches", "password"),
    ("switches", "privacy"),
    ("switches", "sshpassword"),
    ("token", "tokenid"),
    ("vm", "vidpassword"),
    ("websrv", "password"),
];

/// What a masked secret shows.
pub const MASK: &str = "********";

/// Whether the current request must not see `table.column`'s values.
pub fn masked(table: &str, column: &str) -> bool {
    request().mask_secrets && SECRET_COLUMNS.contains(&(table, column))
}

/// A value as the current request may see it.
pub fn shown<'a>(table: &str, column: &str, value: &'a str) -> std::borrow::Cow<'a, str> {
    if !value.is_empty() && masked(table, column) {
        std::borrow::Cow::Borrowed(MASK)
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// Where a request's output goes. Lines are whole: each call is one line without its newline,
/// except [`Sink::out_bytes`], which carries raw bytes (listings written in bulk).
pub trait Sink: Send {
    fn out_bytes(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn err_bytes(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The process's own stdout and stderr (the local CLI).
pub struct StdSink;

impl Sink for StdSink {
    fn out_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        io::stdout().lock().write_all(bytes)
    }
    fn err_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        // Whatever went to stdout before an error line is shown before it.
        io::stdout().lock().flush()?;
        io::stderr().lock().write_all(bytes)
    }
    fn flush(&mut self) -> io::Result<()> {
        io::stdout().lock().flush()
    }
}

/// The request the current thread serves and its sink.
#[derive(Clone)]
pub struct Current {
    pub request: Arc<Request>,
    pub sink: Arc<Mutex<Box<dyn Sink>>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// Runs `f` serving `request` with output into `sink`; threads a command starts pass
/// [`current`] on with [`enter`].
pub fn serve<T>(request: Request, sink: Box<dyn Sink>, f: impl FnOnce() -> T) -> T {
    enter(
        Current {
            request: Arc::new(request),
            sink: Arc::new(Mutex::new(sink)),
        },
        f,
    )
}

/// Runs `f` as part of an existing request (on another thread of the same command). The
/// thread's previous request is restored even when `f` panics (a pool thread must not keep a
/// finished request's sink, and with it the client's connection, alive).
pub fn enter<T>(cur: Current, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Current>, Arc<Mutex<Box<dyn Sink>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Ok(mut s) = self.1.lock() {
                let _ = s.flush();
            }
            let prev = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = prev);
        }
    }
    let sink = cur.sink.clone();
    let prev = CURRENT.with(|c| c.replace(Some(cur)));
    let _restore = Restore(prev, sink);
    f()
}

/// The request this thread serves, if any (for handing to worker threads).
pub fn current() -> Option<Current> {
    CURRENT.with(|c| c.borrow().clone())
}

/// The request this thread serves; a local, empty one outside any.
pub fn request() -> Arc<Request> {
    current().map(|c| c.request).unwrap_or_default()
}

fn with_sink<T>(f: impl FnOnce(&mut dyn Sink) -> io::Result<T>) -> io::Result<T> {
    match current() {
        Some(c) => {
            let mut s = c
                .sink
                .lock()
                .map_err(|_| io::Error::other("output sink poisoned"))?;
            f(s.as_mut())
        }
        None => f(&mut StdSink),
    }
}

/// Writes one line of output (the `outln!` macro). A closed client is not an error here: the
/// command learns of it when it writes in bulk through [`super::stdout`].
pub fn out_line(args: fmt::Arguments<'_>) {
    let mut line = args.to_string();
    line.push('\n');
    let _ = with_sink(|s| s.out_bytes(line.as_bytes()));
}

/// Writes output without a newline (the `out!` macro).
pub fn out_fmt(args: fmt::Arguments<'_>) {
    let text = args.to_string();
    let _ = with_sink(|s| s.out_bytes(text.as_bytes()));
}

/// Writes one line to the error stream (the `errln!` macro).
pub fn err_line(args: fmt::Arguments<'_>) {
    let mut line = args.to_string();
    line.push('\n');
    let _ = with_sink(|s| s.err_bytes(line.as_bytes()));
}

/// Writes to the error stream without a newline (the `err!` macro).
pub fn err_fmt(args: fmt::Arguments<'_>) {
    let text = args.to_string();
    let _ = with_sink(|s| s.err_bytes(text.as_bytes()));
}

/// A `Write` into the current request's output (what [`super::stdout`] buffers).
pub struct OutWriter;

impl Write for OutWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        with_sink(|s| s.out_bytes(buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        with_sink(|s| s.flush())
    }
}

/// Whether the request's output is a terminal (progress lines are drawn only there).
pub fn out_is_terminal() -> bool {
    use std::io::IsTerminal;
    !request().remote && io::stdout().is_terminal()
}

/// Whether the request's error stream is a terminal.
pub fn err_is_terminal() -> bool {
    use std::io::IsTerminal;
    !request().remote && io::stderr().is_terminal()
}

/// The contents of a file a command was given: from the client's request when the request came
/// over the network, from this machine's disk otherwise.
pub fn read_input(path: &Path) -> io::Result<Vec<u8>> {
    let req = request();
    if !req.remote {
        return std::fs::read(path);
    }
    let abs = absolute(&req, path);
    req.files.get(&abs).cloned().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} was not sent with the request", path.display()),
        )
    })
}

/// Whether a file a command was given exists (on the client for a remote request).
pub fn input_exists(path: &Path) -> bool {
    let req = request();
    if req.remote {
        req.files.contains_key(&absolute(&req, path))
    } else {
        path.exists()
    }
}

/// A path as the client meant it: relative names against the client's working directory.
pub fn absolute(req: &Request, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    match &req.cwd {
        Some(c) => c.join(path),
        None => std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf()),
    }
}

/// The command's standard input: what the client sent, or this process's stdin locally.
pub fn stdin() -> Box<dyn Read> {
    let req = request();
    match &req.stdin {
        Some(b) => Box::new(io::Cursor::new(b.clone())),
        None if req.remote => Box::new(io::empty()),
        None => Box::new(io::stdin()),
    }
}

/// Writes one line to the current request's output, like `println!`.
#[macro_export]
macro_rules! outln {
    () => { $crate::cli::request::out_line(format_args!("")) };
    ($($t:tt)*) => { $crate::cli::request::out_line(format_args!($($t)*)) };
}

/// Writes to the current request's output without a newline, like `print!`.
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::request::out_fmt(format_args!($($t)*)) };
}

/// Writes one line to the current request's error stream, like `eprintln!`.
#[macro_export]
macro_rules! errln {
    () => { $crate::cli::request::err_line(format_args!("")) };
    ($($t:tt)*) => { $crate::cli::request::err_line(format_args!($($t)*)) };
}

/// Writes to the current request's error stream without a newline, like `eprint!`.
#[macro_export]
macro_rules! err {
    ($($t:tt)*) => { $crate::cli::request::err_fmt(format_args!($($t)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<(Vec<u8>, Vec<u8>)>>);
    impl Sink for Capture {
        fn out_bytes(&mut self, b: &[u8]) -> io::Result<()> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("p"))?
                .0
                .extend(b);
            Ok(())
        }
        fn err_bytes(&mut self, b: &[u8]) -> io::Result<()> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("p"))?
                .1
                .extend(b);
            Ok(())
        }
    }

    #[test]
    fn output_goes_to_the_request_sink_also_from_worker_threads() {
        let cap = Capture::default();
        serve(Request::default(), Box::new(cap.clone()), || {
            crate::outln!("a {}", 1);
            crate::errln!("Error: b");
            let cur = current().expect("inside a request");
            std::thread::spawn(move || enter(cur, || crate::outln!("c")))
                .join()
                .expect("worker");
            let mut w = super::super::stdout();
            writeln!(w, "d").expect("write");
        });
        let (o, e) = cap.0.lock().expect("lock").clone();
        assert_eq!(String::from_utf8_lossy(&o), "a 1\nc\nd\n");
        assert_eq!(String::from_utf8_lossy(&e), "Error: b\n");
    }

    #[test]
    fn a_remote_request_reads_only_the_files_it_carries() {
        let mut files = BTreeMap::new();
        files.insert(PathBuf::from("/home/u/site.csv"), b"x".to_vec());
        let req = Request {
            remote: true,
            cwd: Some(PathBuf::from("/home/u")),
            files,
            ..Default::default()
        };
        serve(req, Box::new(Capture::default()), || {
            assert_eq!(read_input(Path::new("site.csv")).expect("sent"), b"x");
            let e = read_input(Path::new("/etc/passwd")).expect_err("not sent");
            assert!(e.to_string().contains("was not sent with the request"));
        });
    }
}
