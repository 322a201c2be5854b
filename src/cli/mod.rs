//! The admin commands. One file per family: [`tables`] (tabdump, tabrestore, tabch, tabedit),
//! [`nodes`] (nodels, nodeadd, nodech, noderm), [`defs`] (mkdef, lsdef, chdef, rmdef),
//! [`net`] (makehosts, makenetworks), [`power`] (rpower, rsetboot), [`inventory`] (rinv, rvitals)
//! with [`bmc`] (what the IPMI commands share), [`lite`] (litefile, litetree, liteimg),
//! [`discover`] (nodediscover*, mknb), [`switchprobe`] (SNMP switch-port mapping). `serve` lives
//! in [`crate::daemon`].
//!
//! The binary is multi-call: invoked through a link named after a command it acts as that command,
//! so xCAT admins keep typing `nodels compute nodetype.os`. xCAT's command-line conventions
//! (`-h`/`-?`/`--help`, `-v`/`--version`, usage with no arguments, naming the command as invoked)
//! are applied in [`usage`] before a command parses its arguments. Exit status: 0 success, 1 the
//! command failed (the message says why) or, for an xCAT command, its command line was wrong (the
//! usage is printed, as xCAT does); 2 a malformed command line for bootherd's own commands
//! (`serve`, `links`). [`stanza`] reads and writes xCAT's stanza files; [`xcatdb`] holds gettab,
//! tabgrep, tabprune, dumpxCATdb and restorexCATdb.

// Output goes through the request's sink (`crate::outln!`, `cli::stdout()`), never the
// process's own stdout: the same code answers local and remote requests.
#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::store::{Store, DEFAULT_DB_URL, NO_STORE};

pub mod bmc;
pub mod conserver;
pub mod day2;
pub mod db;
pub mod defs;
pub mod dhcp;
pub mod discover;
pub mod dns;
pub mod dsh;
pub mod images;
pub mod inventory;
pub mod lite;
pub mod lslite;
pub mod man;
pub mod monitor;
pub mod net;
pub mod nodes;
pub mod nodeset;
pub mod power;
pub mod request;
pub mod stanza;
pub mod switchprobe;
pub mod tables;
pub mod templates;
pub mod updatenode;
pub mod usage;
pub mod xcatdb;
pub mod xdshbak;

/// The store every command works on.
#[derive(Debug, Clone, Args)]
pub struct DbOpt {
    /// The table store: sqlite:/path/to/file.db or postgres://user:password@host:port/dbname
    #[arg(long, global = true, env = "BOOTHERD_DB", default_value = DEFAULT_DB_URL, value_name = "URL")]
    pub db: String,
}

impl DbOpt {
    /// Opens the store for a command that may write: a store that does not exist yet is created,
    /// and the command says so on stderr (a forgotten BOOTHERD_DB should not go unnoticed).
    pub fn open(&self) -> anyhow::Result<Arc<Store>> {
        let (store, created) = Store::open_reporting(&self.db)?;
        if created {
            crate::errln!(
                "Created a new store at {} with xCAT's defaults (set BOOTHERD_DB or --db to use another).",
                store.describe()
            );
        }
        Ok(Arc::new(store))
    }

    /// Opens the store for a command that only reads. One that does not exist is not created:
    /// the command says so on stderr and answers from an empty store with xCAT's defaults (what
    /// the first write would create), so a mistyped or forgotten BOOTHERD_DB is noticed.
    pub fn open_existing(&self) -> anyhow::Result<Arc<Store>> {
        match Store::open_existing(&self.db) {
            Ok(s) => Ok(Arc::new(s)),
            Err(crate::store::StoreError::Open { url, reason }) if reason.starts_with(NO_STORE) => {
                crate::errln!("Warning: there is no store at {url} yet; showing a new store's defaults (set BOOTHERD_DB or --db to use another).");
                Ok(Arc::new(Store::open_in_memory()?))
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "bootherd",
    version,
    about = "Network-boot appliance for clusters, on an xCAT-compatible table store"
)]
struct Cli {
    #[command(flatten)]
    db: DbOpt,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the appliance daemon
    Serve(crate::daemon::ServeArgs),
    /// Print a table as CSV, list tables, or describe them
    Tabdump(tables::TabdumpArgs),
    /// Replace (or with -a, add to) a table's rows from a CSV file named after the table
    Tabrestore(tables::TabrestoreArgs),
    /// Add, change or delete table rows by key
    #[command(alias = "chtab")]
    Tabch(tables::TabchArgs),
    /// Edit a table in $EDITOR
    Tabedit(tables::TabeditArgs),
    /// List nodes and their attributes
    Nodels(nodes::NodelsArgs),
    /// Add nodes
    Nodeadd(nodes::NodeaddArgs),
    /// Change node attributes
    Nodech(nodes::NodechArgs),
    /// Remove nodes from every table
    Noderm(nodes::NodermArgs),
    /// Define objects (node, group, osimage, network, site, …)
    Mkdef(defs::MkdefArgs),
    /// List object definitions
    Lsdef(defs::LsdefArgs),
    /// Change object definitions
    Chdef(defs::ChdefArgs),
    /// Remove object definitions
    Rmdef(defs::RmdefArgs),
    /// Write an /etc/hosts-format file from the hosts table
    Makehosts(net::MakehostsArgs),
    /// Create networks rows from this machine's interfaces
    Makenetworks(net::MakenetworksArgs),
    /// Check the DHCP configuration, show or drop nodes' leases, create the OMAPI key
    Makedhcp(dhcp::MakedhcpArgs),
    /// Check what the DNS service answers from the tables; -d withdraws nodes' records
    Makedns(dns::MakednsArgs),
    /// Set nodes' next boot (osimage=…, boot, shell, …), or show / stat / next
    Nodeset(nodeset::NodesetArgs),
    /// Run the postscripts on nodes over ssh (-s: make this appliance their master)
    Updatenode(updatenode::UpdatenodeArgs),
    /// Run a command on nodes over ssh, in parallel (output prefixed by node)
    Xdsh(dsh::XdshArgs),
    /// Copy files to (or with -P from) nodes over scp, or a synclist with rsync (-F)
    Xdcp(dsh::XdcpArgs),
    /// Run a command on nodes over ssh (xCAT's psh)
    Psh(dsh::PshArgs),
    /// Copy files to nodes with scp (xCAT's pscp)
    Pscp(dsh::PcopyArgs),
    /// Copy files to nodes with rsync (xCAT's prsync)
    Prsync(dsh::PcopyArgs),
    /// Ping nodes in parallel: node: ping / noping
    Pping(dsh::PpingArgs),
    /// Group xdsh output per node (-c: identical output once)
    Xdshbak(xdshbak::XdshbakArgs),
    /// Write the nodes' ssh host keys into known_hosts (-r: remove them)
    Makeknownhosts(dsh::MakeknownhostsArgs),
    /// Show or clear nodes' BMC event logs (SEL)
    Reventlog(day2::ReventlogArgs),
    /// Turn nodes' identify light on, off or blinking, or show it
    Rbeacon(day2::RbeaconArgs),
    /// Reset nodes' BMCs (cold reset)
    Rspreset(day2::RspresetArgs),
    /// Reinstall nodes: nodeset, rsetboot net, rpower boot
    Rinstall(day2::RinstallArgs),
    /// Boot nodes from the network now: rsetboot net, rpower boot
    Rnetboot(day2::RnetbootArgs),
    /// Open a node's serial console over IPMI Serial-over-LAN (~. leaves)
    Rcons(day2::RconsArgs),
    /// Write conserver.cf entries for the nodes' consoles
    Makeconservercf(conserver::MakeconservercfArgs),
    /// Power nodes on, off, reset… over IPMI (or wake them by Wake-on-LAN) and report
    Rpower(power::RpowerArgs),
    /// Set or show nodes' next boot device over IPMI
    Rsetboot(power::RsetbootArgs),
    /// Show nodes' hardware inventory over IPMI (device ID, firmware, FRU)
    Rinv(inventory::RinvArgs),
    /// Show nodes' sensor readings over IPMI (temperature, voltage, fans, power)
    Rvitals(inventory::RvitalsArgs),
    /// Statelite files of nodes or of an osimage (merged litefile rows)
    Litefile(lite::LitefileArgs),
    /// Statelite source directories of nodes (litetree rows, substituted)
    Litetree(lite::LitetreeArgs),
    /// Prepare a statelite image root (.default, .statelite links, the statelite script)
    Liteimg(lite::LiteimgArgs),
    /// Start sequential discovery (noderange=… hostiprange=… bmciprange=… osimage=… groups=…)
    Nodediscoverstart(discover::StartArgs),
    /// Stop sequential discovery and list what it found
    Nodediscoverstop(discover::StopArgs),
    /// Whether sequential discovery runs, and with what
    Nodediscoverstatus(discover::StatusArgs),
    /// List discovered machines (-t seq|switch|mtms|undef|all, -l, -u uuid)
    Nodediscoverls(discover::LsArgs),
    /// Make an undefined discovered machine a node (-u uuid -n node), or forget it (-r)
    Nodediscoverdef(discover::DefArgs),
    /// Build genesis, the discovery image, into the TFTP root
    Mknb(discover::MknbArgs),
    /// Poll switches over SNMP: the MACs learned on each port and the node cabled there
    Switchprobe(switchprobe::SwitchprobeArgs),
    /// Print attributes of the first table row matching key=value pairs
    Gettab(xcatdb::GettabArgs),
    /// List the tables holding rows for a node
    Tabgrep(xcatdb::TabgrepArgs),
    /// Remove old records from the auditlog or eventlog (or every row of a table with -a)
    Tabprune(xcatdb::TabpruneArgs),
    /// Dump every table to <dir>/<table>.csv
    #[command(name = "dumpxCATdb")]
    DumpxCATdb(xcatdb::DumpArgs),
    /// Restore every table from <dir>/<table>.csv
    #[command(name = "restorexCATdb")]
    RestorexCATdb(xcatdb::RestoreArgs),
    /// Change the attributes of node groups (what their members inherit)
    Nodegrpch(nodes::NodegrpchArgs),
    /// Remove nodes and everything made for them (hosts lines, rows)
    Nodepurge(nodes::NodepurgeArgs),
    /// Statelite summary of nodes, or of an osimage with -i
    Lslite(lslite::LsliteArgs),
    /// Register a command the daemon runs when tables change (-o a,u,d)
    Regnotif(xcatdb::RegnotifArgs),
    /// Remove a regnotif registration
    Unregnotif(xcatdb::UnregnotifArgs),
    /// The daemon's version, node type and database (-v, -t, -d, -a)
    Lsxcatd(xcatdb::LsxcatdArgs),
    /// Copy distribution media (ISO, tar or directory) into the install tree and define its osimages
    Copycds(images::CopycdsArgs),
    /// Build a netboot/statelite osimage's root (mmdebstrap or dnf), kernel and initramfs
    Genimage(images::GenimageArgs),
    /// Pack a netboot osimage's root for stateless boot (cpio/tar/squashfs; gzip/xz/zstd)
    Packimage(images::PackimageArgs),
    /// Remove an osimage's files (and with --xcatdef its definition)
    Rmimage(images::RmimageArgs),
    /// Bundle an osimage (definition and files) in xCAT's imgexport format
    Imgexport(images::ImgexportArgs),
    /// Define an osimage and put its files in place from an imgexport bundle
    Imgimport(images::ImgimportArgs),
    /// Capture a golden node's disk as a sysclone osimage (-t sysclone -o <osimage>)
    Imgcapture(images::ImgcaptureArgs),
    /// Register a monitoring plug-in (xcatmon) in the monitoring table, with its settings
    Monadd(monitor::MonaddArgs),
    /// Remove a stopped monitoring plug-in from the monitoring table
    Monrm(monitor::MonrmArgs),
    /// List monitoring plug-ins and whether they run
    Monls(monitor::MonlsArgs),
    /// Start a registered monitoring plug-in (xcatmon: node liveness into nodelist.status)
    Monstart(monitor::MonstartArgs),
    /// Stop a monitoring plug-in
    Monstop(monitor::MonstartArgs),
    /// Register and start a monitoring plug-in (xCAT 2.0's name: monadd + monstart)
    Startmon(monitor::StartmonArgs),
    /// Stop and unregister a monitoring plug-in (xCAT 2.0's name: monstop + monrm)
    Stopmon(monitor::StopmonArgs),
    /// Nodes' running status (sshd, ping, noping, install progress, …); -u writes nodelist.status
    Nodestat(monitor::NodestatArgs),
    /// A node's boot steps as the daemon saw them (DHCP, files, mounts, status, postscripts, discovery, errors)
    Timeline(monitor::TimelineArgs),
    /// Create links named after every command (nodels, tabdump, …) in a directory
    Links(LinksArgs),
    /// Write the man pages (bootherd.1, one per command) into a directory
    Man(man::ManArgs),
    /// Whole-store operations: `db copy <from-url> <to-url>` (SQLite ↔ PostgreSQL)
    Db(db::DbArgs),
    /// The appliances (management and service nodes) sharing this store, and whether each is alive
    Status(xcatdb::StatusArgs),
    /// The appliance's certificate authority: issue or revoke users' client certificates
    #[command(subcommand)]
    Cert(CertCmd),
}

#[derive(Debug, Subcommand)]
pub enum CertCmd {
    /// Issue a client certificate whose CN is <user>, into <dir>/.xcat/ (default: the user's home)
    Issue(CertIssueArgs),
    /// Revoke every certificate issued to <user> (refused at the TLS handshake from then on)
    Revoke(CertRevokeArgs),
}

#[derive(Debug, Args)]
pub struct CertIssueArgs {
    /// The user (the certificate's CN, the name policy rows match)
    pub user: String,
    /// Where to write .xcat/client-cred.pem and .xcat/ca.pem (default: the user's home directory)
    pub dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub pki: PkiOpt,
}

#[derive(Debug, Args)]
pub struct CertRevokeArgs {
    pub user: String,
    #[command(flatten)]
    pub pki: PkiOpt,
}

/// Where the appliance's CA lives.
#[derive(Debug, Clone, Args)]
pub struct PkiOpt {
    /// The CA directory (default: `pki/` beside an SQLite store, else /etc/bootherd/pki)
    #[arg(long = "pki-dir", env = "BOOTHERD_PKI", value_name = "DIR")]
    pub pki_dir: Option<std::path::PathBuf>,
}

impl PkiOpt {
    /// The CA directory for the store at `db`.
    pub fn dir(&self, db: &DbOpt) -> std::path::PathBuf {
        if let Some(d) = &self.pki_dir {
            return d.clone();
        }
        match Store::sqlite_file(&db.db) {
            Some(p) => p
                .parent()
                .map(|d| d.join("pki"))
                .unwrap_or_else(|| crate::xcatd::pki::DEFAULT_DIR.into()),
            None => crate::xcatd::pki::DEFAULT_DIR.into(),
        }
    }
}

/// Every name the binary answers to through argv[0].
pub const COMMANDS: &[&str] = &[
    "tabdump",
    "tabrestore",
    "tabch",
    "chtab",
    "tabedit",
    "nodels",
    "nodeadd",
    "nodech",
    "noderm",
    "mkdef",
    "lsdef",
    "chdef",
    "rmdef",
    "makehosts",
    "makenetworks",
    "makedhcp",
    "makedns",
    "nodeset",
    "updatenode",
    "xdsh",
    "xdcp",
    "psh",
    "pscp",
    "prsync",
    "pping",
    "xdshbak",
    "makeknownhosts",
    "reventlog",
    "rbeacon",
    "rspreset",
    "rinstall",
    "rnetboot",
    "rcons",
    "makeconservercf",
    "rpower",
    "rsetboot",
    "rinv",
    "rvitals",
    "litefile",
    "litetree",
    "liteimg",
    "nodediscoverstart",
    "nodediscoverstop",
    "nodediscoverstatus",
    "nodediscoverls",
    "nodediscoverdef",
    "mknb",
    "switchprobe",
    "gettab",
    "tabgrep",
    "tabprune",
    "dumpxCATdb",
    "restorexCATdb",
    "nodegrpch",
    "nodepurge",
    "lslite",
    "regnotif",
    "unregnotif",
    "lsxcatd",
    "copycds",
    "genimage",
    "packimage",
    "rmimage",
    "imgexport",
    "imgimport",
    "imgcapture",
    "monadd",
    "monrm",
    "monls",
    "monstart",
    "monstop",
    "startmon",
    "stopmon",
    "nodestat",
];

#[derive(Debug, Args)]
struct LinksArgs {
    /// Directory to create the links in (for example /usr/local/bin)
    dir: std::path::PathBuf,
}

/// Entry point for the binary: the command named by argv[0] (a link) or by the first argument,
/// served on the local store, or sent to the appliance named by `XCATHOST`/`--server`.
pub fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = args
        .first()
        .map(std::path::Path::new)
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("bootherd")
        .to_string();
    if COMMANDS.contains(&argv0.as_str()) {
        args.splice(
            0..1.min(args.len()),
            [OsString::from("bootherd"), OsString::from(argv0.clone())],
        );
    }
    if let Some(server) = crate::xcatd::client::target(&mut args) {
        return crate::xcatd::client::run(&server, &argv0, &args);
    }
    let (command, rest) = match xcat_command(&args) {
        Some((i, c)) => (
            c,
            args[i + 1..]
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
        ),
        None => (String::new(), Vec::new()),
    };
    let req = request::Request {
        command,
        args: rest,
        user: crate::store::local_user(),
        peer: String::new(),
        clienttype: "cli".into(),
        remote: false,
        cwd: std::env::current_dir().ok(),
        ..Default::default()
    };
    request::serve(req, Box::new(request::StdSink), || dispatch(args, &argv0))
}

/// Serves a request that came over the network on the store at `db_url`: the same command code
/// as the local CLI, with output into `sink`. Only xCAT's commands are served (not `serve`,
/// `links`, …), and the store is always the appliance's own.
pub fn handle_remote(
    req: request::Request,
    db_url: &str,
    sink: Box<dyn request::Sink>,
) -> ExitCode {
    if !COMMANDS.contains(&req.command.as_str()) || NOT_REMOTE.contains(&req.command.as_str()) {
        let msg = if NOT_REMOTE.contains(&req.command.as_str()) {
            format!("Error: {} cannot run remotely (it is interactive on the appliance); run it there\n", req.command)
        } else {
            format!(
                "Error: {} is not a command this appliance serves\n",
                req.command
            )
        };
        let mut sink = sink;
        let _ = sink.err_bytes(msg.as_bytes());
        return ExitCode::from(1);
    }
    if let Some(a) = req
        .args
        .iter()
        .find(|a| *a == "--db" || a.starts_with("--db="))
    {
        let mut sink = sink;
        let _ = sink.err_bytes(
            format!("Error: {a}: a remote command always works on the appliance's own store\n")
                .as_bytes(),
        );
        return ExitCode::from(1);
    }
    let mut args: Vec<OsString> = vec![
        "bootherd".into(),
        "--db".into(),
        db_url.into(),
        req.command.clone().into(),
    ];
    args.extend(req.args.iter().map(OsString::from));
    let invoked = req.command.clone();
    request::serve(req, sink, || dispatch(args, &invoked))
}

/// Runs another admin command as a step of the current request (rinstall's nodeset, rsetboot
/// and rpower), in this process, for the same user and client: (success, output lines then
/// error lines).
pub fn run_step(db: &DbOpt, args: &[String]) -> (bool, Vec<String>) {
    #[derive(Clone, Default)]
    struct Capture(std::sync::Arc<std::sync::Mutex<(Vec<u8>, Vec<u8>)>>);
    impl request::Sink for Capture {
        fn out_bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
            if let Ok(mut g) = self.0.lock() {
                g.0.extend_from_slice(b);
            }
            Ok(())
        }
        fn err_bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
            if let Ok(mut g) = self.0.lock() {
                g.1.extend_from_slice(b);
            }
            Ok(())
        }
    }
    let parent = request::request();
    let Some(command) = args.first().cloned() else {
        return (false, Vec::new());
    };
    let req = request::Request {
        command: command.clone(),
        args: args[1..].to_vec(),
        user: parent.user.clone(),
        peer: parent.peer.clone(),
        clienttype: parent.clienttype.clone(),
        remote: parent.remote,
        mask_secrets: parent.mask_secrets,
        cwd: parent.cwd.clone(),
        ..Default::default()
    };
    let mut argv: Vec<OsString> = vec!["bootherd".into(), "--db".into(), db.db.clone().into()];
    argv.extend(args.iter().map(OsString::from));
    let cap = Capture::default();
    let code = request::serve(req, Box::new(cap.clone()), || dispatch(argv, &command));
    let (o, e) = cap.0.lock().map(|g| g.clone()).unwrap_or_default();
    let mut lines: Vec<String> = String::from_utf8_lossy(&o)
        .lines()
        .map(String::from)
        .collect();
    lines.extend(String::from_utf8_lossy(&e).lines().map(String::from));
    (code == ExitCode::SUCCESS, lines)
}

/// Commands that cannot be served over the network.
const NOT_REMOTE: &[&str] = &["tabedit", "rcons", "xdshbak"];

/// Parses and runs one command line (`args[0]` is `bootherd`), writing to the current request's
/// sink. `argv0` is the name the binary was invoked by.
fn dispatch(args: Vec<OsString>, argv0: &str) -> ExitCode {
    // xCAT's -h/-v/no-argument conventions, with the command named as it was invoked.
    let xcat = xcat_command(&args).and_then(|(i, cmd)| {
        let invoked = if COMMANDS.contains(&argv0) {
            argv0.to_string()
        } else {
            cmd.clone()
        };
        usage::find(&cmd).map(|u| (i, u, invoked))
    });
    if let Some((i, u, invoked)) = &xcat {
        if let Some(code) = usage::early(u, invoked, &args[i + 1..]) {
            return code;
        }
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    crate::out!("{}", e.render());
                    ExitCode::SUCCESS
                }
                _ => match &xcat {
                    Some((_, u, invoked)) => {
                        let msg = e.to_string();
                        let first = msg
                            .lines()
                            .next()
                            .unwrap_or("")
                            .trim_start_matches("error: ");
                        crate::errln!("Error: {first}");
                        usage::bad_command_line(u, invoked)
                    }
                    None => {
                        crate::err!("{}", e.render());
                        ExitCode::from(2)
                    }
                },
            };
        }
    };
    // The request is audited before it runs; a command that creates the store is audited
    // once it exists.
    let db = cli.db.clone();
    let audited = xcat.is_none() || audit(&db);
    let result = crate::store::with_request_audited(|| run(cli));
    if !audited {
        audit(&db);
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            crate::errln!("Error: {}", chain(&e));
            ExitCode::from(1)
        }
    }
}

/// Records the current request in the audit log (as xcatd does before it runs a command). A
/// store that does not exist yet is not created for it (false); one that cannot be written is
/// left unaudited.
fn audit(db: &DbOpt) -> bool {
    let req = request::request();
    let Ok(store) = Store::open_existing(&db.db) else {
        return false;
    };
    let a = crate::store::RequestAudit {
        user: req.user.clone(),
        client: if req.peer.is_empty() {
            crate::store::local_host()
        } else {
            req.peer.clone()
        },
        clienttype: req.clienttype.clone(),
        command: req.command.clone(),
        noderange: req
            .noderange
            .clone()
            .or_else(|| request_noderange(&req.command, &req.args))
            .unwrap_or_default(),
        args: audit_args(&req.args),
        status: "Allowed".into(),
    };
    if let Err(e) = store.audit_request(&a) {
        tracing::debug!("cannot write the audit log: {e}");
    }
    true
}

/// Commands whose first argument that is not an option is a noderange (xCAT's `xcatclient`
/// commands, and bootherd's that take nodes first).
const NODERANGE_FIRST: &[&str] = &[
    "nodels",
    "nodeadd",
    "nodech",
    "noderm",
    "nodepurge",
    "nodegrpch",
    "nodeset",
    "updatenode",
    "rpower",
    "rsetboot",
    "rinv",
    "rvitals",
    "litefile",
    "litetree",
    "makehosts",
    "makedhcp",
    "tabgrep",
    "imgcapture",
    "nodestat",
    "reventlog",
    "rbeacon",
    "rspreset",
    "rinstall",
    "rnetboot",
    "xdsh",
    "xdcp",
    "psh",
    "pscp",
    "prsync",
    "pping",
    "makedns",
    "makeknownhosts",
    "makeconservercf",
    "rcons",
    "switchprobe",
    "lslite",
];

/// Options of node-first commands that take a value, for finding the noderange among the
/// arguments.
fn value_options(command: &str) -> &'static [&'static str] {
    match command {
        "xdsh" | "xdcp" | "psh" | "pscp" | "prsync" => &[
            "-l",
            "-f",
            "-t",
            "-E",
            "-o",
            "-C",
            "--fanout",
            "--timeout",
            "--user",
        ],
        "updatenode" => &["-P", "--scripts", "-l"],
        "makedhcp" => &["-s"],
        "nodeset" | "rpower" => &["-m", "-r", "-t"],
        _ => &[],
    }
}

/// The nodes a command line names, as xcatd's policy and audit see them: the noderange of a
/// node-first command, or the objects of `mkdef`/`chdef`/`lsdef`/`rmdef` of type node (xcatd
/// cannot check those: its DB commands carry no noderange; bootherd does).
pub fn request_noderange(command: &str, args: &[String]) -> Option<String> {
    let defs = matches!(command, "mkdef" | "chdef" | "lsdef" | "rmdef");
    if !defs && !NODERANGE_FIRST.contains(&command) {
        return None;
    }
    if command == "lslite" && args.iter().any(|a| a == "-i") {
        return None;
    }
    let mut i = 0;
    let mut objtype: Option<&str> = None;
    let mut objects: Option<&str> = None;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            return args.get(i + 1).cloned();
        }
        if a.starts_with('-') && a.len() > 1 {
            let (opt, inline) = match a.split_once('=') {
                Some((o, v)) => (o, Some(v)),
                None => (a, None),
            };
            let takes = if defs {
                matches!(opt, "-t" | "-o" | "-i" | "-w" | "-n" | "--template")
            } else {
                value_options(command).contains(&opt)
            };
            let value = if takes {
                match inline {
                    Some(v) => Some(v),
                    None => {
                        i += 1;
                        args.get(i).map(String::as_str)
                    }
                }
            } else {
                None
            };
            if defs {
                match opt {
                    "-t" => objtype = value,
                    "-o" => objects = value,
                    _ => {}
                }
            }
            i += 1;
            continue;
        }
        if defs && a.contains('=') {
            i += 1;
            continue;
        }
        if defs && objtype.is_some_and(|t| t != "node") {
            return None;
        }
        return Some(a.to_string());
    }
    if defs && objtype.is_none_or(|t| t == "node") {
        return objects.map(String::from);
    }
    None
}

/// The position and name of the command in `args` (after `bootherd` and its global options).
pub fn xcat_command(args: &[OsString]) -> Option<(usize, String)> {
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if a == "--db" || a == "--server" {
            i += 2;
            continue;
        }
        if a.starts_with("--db=") || a.starts_with("--server=") {
            i += 1;
            continue;
        }
        return COMMANDS.contains(&a.as_ref()).then(|| (i, a.into_owned()));
    }
    None
}

/// An error and its causes, as one line.
pub fn chain(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let db = cli.db;
    match cli.cmd {
        Cmd::Serve(a) => crate::daemon::run(&db, a),
        Cmd::Db(a) => db::db(&db, a),
        Cmd::Status(a) => xcatdb::status(&db, a),
        Cmd::Tabdump(a) => tables::tabdump(&db, a),
        Cmd::Tabrestore(a) => tables::tabrestore(&db, a),
        Cmd::Tabch(a) => tables::tabch(&db, a),
        Cmd::Tabedit(a) => tables::tabedit(&db, a),
        Cmd::Nodels(a) => nodes::nodels(&db, a),
        Cmd::Nodeadd(a) => nodes::nodeadd(&db, a),
        Cmd::Nodech(a) => nodes::nodech(&db, a),
        Cmd::Noderm(a) => nodes::noderm(&db, a),
        Cmd::Mkdef(a) => defs::mkdef(&db, a),
        Cmd::Lsdef(a) => defs::lsdef(&db, a),
        Cmd::Chdef(a) => defs::chdef(&db, a),
        Cmd::Rmdef(a) => defs::rmdef(&db, a),
        Cmd::Makehosts(a) => net::makehosts(&db, a),
        Cmd::Makenetworks(a) => net::makenetworks(&db, a),
        Cmd::Makedhcp(a) => dhcp::makedhcp(&db, a),
        Cmd::Makedns(a) => dns::makedns(&db, a),
        Cmd::Nodeset(a) => nodeset::nodeset(&db, a),
        Cmd::Updatenode(a) => updatenode::updatenode(&db, a),
        Cmd::Xdsh(a) => dsh::xdsh(&db, a),
        Cmd::Xdcp(a) => dsh::xdcp(&db, a),
        Cmd::Psh(a) => dsh::psh(&db, a),
        Cmd::Pscp(a) => dsh::pscp(&db, a),
        Cmd::Prsync(a) => dsh::prsync(&db, a),
        Cmd::Pping(a) => dsh::pping(&db, a),
        Cmd::Xdshbak(a) => xdshbak::xdshbak(a),
        Cmd::Makeknownhosts(a) => dsh::makeknownhosts(&db, a),
        Cmd::Reventlog(a) => day2::reventlog(&db, a),
        Cmd::Rbeacon(a) => day2::rbeacon(&db, a),
        Cmd::Rspreset(a) => day2::rspreset(&db, a),
        Cmd::Rinstall(a) => day2::rinstall(&db, a),
        Cmd::Rnetboot(a) => day2::rnetboot(&db, a),
        Cmd::Rcons(a) => day2::rcons(&db, a),
        Cmd::Makeconservercf(a) => conserver::makeconservercf(&db, a),
        Cmd::Rpower(a) => power::rpower(&db, a),
        Cmd::Rsetboot(a) => power::rsetboot(&db, a),
        Cmd::Rinv(a) => inventory::rinv(&db, a),
        Cmd::Rvitals(a) => inventory::rvitals(&db, a),
        Cmd::Litefile(a) => lite::litefile(&db, a),
        Cmd::Litetree(a) => lite::litetree(&db, a),
        Cmd::Liteimg(a) => lite::liteimg(&db, a),
        Cmd::Nodediscoverstart(a) => discover::start(&db, a),
        Cmd::Nodediscoverstop(a) => discover::stop(&db, a),
        Cmd::Nodediscoverstatus(a) => discover::status(&db, a),
        Cmd::Nodediscoverls(a) => discover::ls(&db, a),
        Cmd::Nodediscoverdef(a) => discover::def(&db, a),
        Cmd::Mknb(a) => discover::mknb(&db, a),
        Cmd::Switchprobe(a) => switchprobe::switchprobe(&db, a),
        Cmd::Gettab(a) => xcatdb::gettab(&db, a),
        Cmd::Tabgrep(a) => xcatdb::tabgrep(&db, a),
        Cmd::Tabprune(a) => xcatdb::tabprune(&db, a),
        Cmd::DumpxCATdb(a) => xcatdb::dumpxcatdb(&db, a),
        Cmd::RestorexCATdb(a) => xcatdb::restorexcatdb(&db, a),
        Cmd::Nodegrpch(a) => nodes::nodegrpch(&db, a),
        Cmd::Nodepurge(a) => nodes::nodepurge(&db, a),
        Cmd::Lslite(a) => lslite::lslite(&db, a),
        Cmd::Regnotif(a) => xcatdb::regnotif(&db, a),
        Cmd::Unregnotif(a) => xcatdb::unregnotif(&db, a),
        Cmd::Lsxcatd(a) => xcatdb::lsxcatd(&db, a),
        Cmd::Copycds(a) => images::copycds(&db, a),
        Cmd::Genimage(a) => images::genimage(&db, a),
        Cmd::Packimage(a) => images::packimage(&db, a),
        Cmd::Rmimage(a) => images::rmimage(&db, a),
        Cmd::Imgexport(a) => images::imgexport(&db, a),
        Cmd::Imgimport(a) => images::imgimport(&db, a),
        Cmd::Imgcapture(a) => images::imgcapture(&db, a),
        Cmd::Monadd(a) => monitor::monadd(&db, a),
        Cmd::Monrm(a) => monitor::monrm(&db, a),
        Cmd::Monls(a) => monitor::monls(&db, a),
        Cmd::Monstart(a) => monitor::monstart(&db, a),
        Cmd::Monstop(a) => monitor::monstop(&db, a),
        Cmd::Startmon(a) => monitor::startmon(&db, a),
        Cmd::Stopmon(a) => monitor::stopmon(&db, a),
        Cmd::Nodestat(a) => monitor::nodestat(&db, a),
        Cmd::Timeline(a) => monitor::timeline(&db, a),
        Cmd::Links(a) => links(a),
        Cmd::Man(a) => man::man(a),
        Cmd::Cert(c) => cert(&db, c),
    }
}

fn cert(db: &DbOpt, c: CertCmd) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    match c {
        CertCmd::Issue(a) => {
            let dir = a.pki.dir(db);
            let (pki, created) = crate::xcatd::pki::Pki::open_or_create(&dir, &[])?;
            if created {
                crate::outln!("Created the certificate authority in {}", dir.display());
            }
            let user = nix::unistd::User::from_name(&a.user).ok().flatten();
            let target = match (&a.dir, &user) {
                (Some(d), _) => d.clone(),
                (None, Some(u)) => u.dir.clone(),
                (None, None) => anyhow::bail!(
                    "{} is not a user of this machine; name the directory to write the certificate into",
                    a.user
                ),
            };
            let issued = pki.issue(&a.user)?;
            let owner = user.map(|u| (u.uid.as_raw(), u.gid.as_raw()));
            let x = crate::xcatd::pki::write_client_dir(&target, &issued, owner)
                .with_context(|| format!("cannot write the certificate for {}", a.user))?;
            crate::outln!(
                "Issued a client certificate for {} (serial {}) into {}",
                a.user,
                issued.serial,
                x.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        CertCmd::Revoke(a) => {
            let dir = a.pki.dir(db);
            let (pki, _) = crate::xcatd::pki::Pki::open_or_create(&dir, &[])?;
            let n = pki.revoke(&a.user)?;
            if n == 0 {
                crate::errln!("Error: no certificate issued to {} is still valid", a.user);
                return Ok(ExitCode::from(1));
            }
            crate::outln!("Revoked {n} certificate(s) of {}", a.user);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn links(a: LinksArgs) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    let exe = std::env::current_exe().context("cannot find the bootherd executable")?;
    for name in COMMANDS {
        let link = a.dir.join(name);
        if link.symlink_metadata().is_ok() {
            std::fs::remove_file(&link)
                .with_context(|| format!("cannot replace {}", link.display()))?;
        }
        std::os::unix::fs::symlink(&exe, &link)
            .with_context(|| format!("cannot create {}", link.display()))?;
    }
    crate::outln!(
        "{} commands linked to {} in {}",
        COMMANDS.len(),
        exe.display(),
        a.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Buffered stdout for commands that print a lot (100,000-node listings).
pub fn stdout() -> std::io::BufWriter<request::OutWriter> {
    std::io::BufWriter::with_capacity(1 << 16, request::OutWriter)
}

/// Writes and flushes, turning errors into anyhow.
pub fn finish(mut out: impl Write) -> anyhow::Result<()> {
    out.flush()?;
    Ok(())
}

/// The command line as one string, for the audit log.
pub fn audit_args(args: &[String]) -> String {
    args.join(" ")
}
