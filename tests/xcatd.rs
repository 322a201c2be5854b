//! Client/server administration (xCAT's request port, TCP 3001 over TLS): the appliance runs in
//! one network namespace, the administrators' workstation is another. Commands sent from the
//! workstation (bootherd's CLI with XCATHOST, and a Perl client built on xCAT's wire format)
//! answer exactly as the same commands run locally on an identical store; policy decides per user
//! and noderange, every request is audited, and certificates not from the appliance's CA (or
//! revoked) are refused at the TLS handshake.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{bin, need, sh, Bh, Daemon, Pair};

const SRV: &str = "10.77.0.1";

/// A store with a small cluster, built by the same commands on each store it is called for.
fn populate(bh: &Bh) {
    bh.ok(&[
        "nodeadd",
        "cn[01-04]",
        "groups=compute,all",
        "nodetype.os=debian12",
        "nodetype.arch=x86_64",
    ]);
    bh.ok(&["chdef", "cn01,cn02", "groups=rack1,compute,all"]);
    bh.ok(&["chdef", "cn03,cn04", "groups=rack2,compute,all"]);
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "mgmt",
        "net=10.77.0.0",
        "mask=255.255.255.0",
        "gateway=10.77.0.1",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "osimage",
        "-o",
        "deb12-netboot",
        "imagetype=linux",
        "provmethod=netboot",
        "osvers=debian12",
        "osarch=x86_64",
        "profile=compute",
    ]);
    for i in 1..=4 {
        bh.ok(&[
            "chdef",
            &format!("cn0{i}"),
            &format!("ip=10.77.0.1{i}"),
            &format!("mac=52:54:00:77:00:1{i}"),
        ]);
    }
}

struct Lab {
    pair: Pair,
    local: Bh,
    remote: Bh,
    daemon: Daemon,
    home: tempfile::TempDir,
    work: tempfile::TempDir,
}

fn lab(tag: &str) -> Lab {
    need(&[("perl", "perl")]);
    let pair = Pair::new(tag, &format!("{SRV}/24"));
    sh(&[
        "ip",
        "-n",
        &pair.cli.0,
        "addr",
        "add",
        "10.77.0.2/24",
        "dev",
        "bhc0",
    ]);
    let (local, remote) = (Bh::new(), Bh::new());
    populate(&local);
    populate(&remote);
    let daemon = Daemon::start(
        &remote,
        &pair.srv,
        &[
            "--no-dhcp",
            "--no-tftp",
            "--no-http",
            "--no-nfs",
            "--no-findme-udp",
        ],
    );
    assert!(
        daemon.wait_for("xcatd request port listening", 5),
        "{}",
        daemon.dump()
    );
    let home = tempfile::tempdir().expect("home");
    remote.ok(&["cert", "issue", "root", &home.path().display().to_string()]);
    let work = tempfile::tempdir().expect("work");
    Lab {
        pair,
        local,
        remote,
        daemon,
        home,
        work,
    }
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn with_stdin(mut c: Command, stdin: Option<&str>) -> Output {
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    if let Some(s) = stdin {
        let mut i = child.stdin.take().expect("stdin");
        i.write_all(s.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

impl Lab {
    /// The command on the local store, in the work directory.
    fn local(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = self.local.cmd(args);
        c.current_dir(self.work.path());
        with_stdin(c, stdin)
    }

    /// The command from the workstation namespace through bootherd's CLI with XCATHOST (a
    /// BOOTHERD_DB that does not exist proves the store is not opened here).
    fn remote(&self, home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = self.pair.cli.command(bin());
        c.args(args)
            .current_dir(self.work.path())
            .env("XCATHOST", SRV)
            .env("HOME", home)
            .env("BOOTHERD_DB", "sqlite:/nonexistent/bootherd.db")
            .env_remove("RUST_LOG");
        with_stdin(c, stdin)
    }

    /// The command through the Perl client built on xCAT's wire format.
    fn perl(&self, home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.pair.cli.command("perl");
        c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/xcat-client.pl"))
            .args(args)
            .current_dir(self.work.path())
            .env("XCATHOST", SRV)
            .env("HOME", home);
        for (k, v) in env {
            c.env(k, v);
        }
        with_stdin(c, None)
    }
}

#[test]
fn every_admin_command_answers_remotely_as_it_does_locally() {
    let lab = lab("xd1");
    let w = lab.work.path();
    std::fs::write(
        w.join("noderes.csv"),
        "#node,servicenode,netboot,tftpserver,tftpdir,nfsserver,monserver,nfsdir,installnic,primarynic,discoverynics,cmdinterface,xcatmaster,current_osimage,next_osimage,nimserver,routenames,nameservers,proxydhcp,syslog,comments,disable\n\"compute\",,\"xnba\",,,,,,,,,,,,,,,,,,,\n",
    )
    .expect("csv");
    let stanza = "cn07:\n    objtype=node\n    groups=compute,all\n    arch=x86_64\n";
    let cases: &[(&[&str], Option<&str>)] = &[
        (&["nodels"], None),
        (&["nodels", "compute", "groups", "nodetype.os"], None),
        (&["nodels", "rack1", "-H", "nodetype.arch"], None),
        (&["nodels", "nosuch"], None),
        (&["nodels", "-h"], None),
        (&["tabdump", "-v"], None),
        (&["tabdump"], None),
        (&["tabdump", "nodelist"], None),
        (&["tabdump", "-d", "nodetype"], None),
        (&["tabdump", "-w", "node==cn01", "hosts"], None),
        (&["lsdef", "-l", "cn01,cn02"], None),
        (&["lsdef", "compute", "-i", "groups,ip"], None),
        (&["lsdef", "-t", "osimage", "-l"], None),
        (&["lsdef", "-t", "network", "-z"], None),
        (&["lsdef", "-t", "node", "-o", "nosuch"], None),
        (&["gettab", "key=domain", "site.value"], None),
        (&["tabgrep", "cn01"], None),
        (&["nodeadd", "cn[05-06]", "groups=compute,all"], None),
        (&["nodech", "cn05", "nodetype.os=rhels9"], None),
        (&["chdef", "-t", "node", "cn06", "arch=ppc64le"], None),
        (&["mkdef", "-z"], Some(stanza)),
        (&["lsdef", "cn07"], None),
        (&["tabrestore", "-a", "noderes.csv"], None),
        (&["nodels", "cn01", "noderes.netboot"], None),
        (&["nodegrpch", "rack2", "nodetype.profile=big"], None),
        (&["chtab", "key=bootherdtest", "site.value=yes"], None),
        (&["nodeset", "cn01", "boot"], None),
        (&["nodeset", "cn01,cn02", "stat"], None),
        (&["makedhcp", "-q", "cn01"], None),
        (&["litefile", "cn01"], None),
        (&["rpower", "cn01", "stat"], None),
        (&["rmdef", "-t", "node", "-o", "cn06"], None),
        (&["noderm", "cn05"], None),
        (&["tabprune", "eventlog", "-a"], None),
        (&["nodels", "compute"], None),
        (&["chdef", "-t", "nosuchtype", "-o", "x"], None),
        (&["lsxcatd", "-t"], None),
        (&["lsxcatd", "-d"], None),
        (&["lsxcatd"], None),
        (&["lslite", "cn01"], None),
        (&["litetree", "cn01"], None),
        (&["rsetboot", "cn01", "stat"], None),
        (&["rinv", "cn01", "all"], None),
        (&["rvitals", "cn01", "all"], None),
        (&["regnotif", "/usr/bin/true", "nodelist", "-o", "a"], None),
        (&["tabdump", "notification"], None),
        (&["unregnotif", "/usr/bin/true"], None),
        (&["nodediscoverstatus"], None),
        (
            &[
                "nodediscoverstart",
                "noderange=cn[10-12]",
                "hostiprange=10.77.0.100-10.77.0.102",
            ],
            None,
        ),
        (&["nodediscoverstatus"], None),
        (&["nodediscoverstop"], None),
        (&["nodediscoverls"], None),
        (&["imgexport", "nosuchimage"], None),
        (&["switchprobe"], None),
        (&["lsdef", "-t", "site", "-i", "domain,master"], None),
        (&["nodels", "cn01", "-b", "nodelist.groups"], None),
        (&["makedns", "-n"], None),
        (&["makedns", "-d", "cn02"], None),
        (&["makedns", "cn02"], None),
        (&["reventlog", "cn01", "5"], None),
        (&["rbeacon", "cn01", "on"], None),
        (&["makeconservercf", "-h"], None),
    ];
    let home = lab.home.path();
    for (args, stdin) in cases {
        let l = lab.local(args, *stdin);
        let r = lab.remote(home, args, *stdin);
        assert_eq!(
            show(&r),
            show(&l),
            "`{}` answers differently remotely (left) than locally (right)",
            args.join(" ")
        );
    }
    // lsxcatd -a: xCAT's lines alike, then the appliances sharing each store: the serving
    // appliance (the management node) on the remote one, none on the local one.
    let l = show(&lab.local(&["lsxcatd", "-a"], None));
    let r = show(&lab.remote(home, &["lsxcatd", "-a"], None));
    let (extra, rest): (Vec<&str>, Vec<&str>) =
        r.lines().partition(|x| x.starts_with("appliance="));
    assert_eq!(rest.join("\n") + "\n", l, "lsxcatd -a remotely:\n{r}");
    assert_eq!(extra.len(), 1, "{r}");
    assert!(extra[0].contains(" role=MN alive=yes "), "{r}");
    // The writes made remotely left the appliance's store as the local ones left the local store.
    assert_eq!(lab.remote.snapshot(), lab.local.snapshot());

    // xCAT's own client's wire format: the same answers.
    for args in [
        &["nodels"][..],
        &["nodels", "compute", "nodetype.os"],
        &["lsdef", "-l", "cn01,cn02"],
        &["lsdef", "-t", "osimage"],
        &["nodeset", "cn01", "stat"],
        &["tabdump", "site"],
        &["nodels", "nosuch"],
        &["gettab", "key=domain", "site.value"],
    ] {
        let l = lab.local(args, None);
        let p = lab.perl(home, args, &[]);
        assert_eq!(
            show(&p),
            show(&l),
            "`{}` through the Perl client (left) differs from local (right)",
            args.join(" ")
        );
    }
    // Every remote request is in the appliance's audit log, with the user and the client.
    let audit = lab
        .remote
        .ok(&["tabdump", "-w", "clientname==10.77.0.2", "auditlog"]);
    assert!(
        audit.lines().count() > cases.len(),
        "every request is audited:\n{audit}"
    );
    assert!(
        audit.contains("\"root\",\"10.77.0.2\",\"cli\",\"nodeadd\",\"cn[05-06]\""),
        "{audit}"
    );
    drop(lab.daemon);
}

#[test]
fn policy_decides_per_user_and_noderange_and_the_tls_layer_refuses_strangers() {
    let lab = lab("xd2");
    let alice = tempfile::tempdir().expect("home");
    lab.remote.ok(&[
        "cert",
        "issue",
        "alice",
        &alice.path().display().to_string(),
    ]);
    lab.remote.ok(&[
        "tabch",
        "priority=6",
        "policy.name=alice",
        "policy.commands=nodels,lsdef",
        "policy.noderange=rack1",
        "policy.rule=allow",
    ]);
    let a = alice.path();
    let ok = lab.remote(a, &["nodels", "rack1"], None);
    assert!(ok.status.success(), "{}", show(&ok));
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "cn01\ncn02\n");
    let ok = lab.remote(a, &["lsdef", "cn02", "-i", "groups"], None);
    assert!(ok.status.success(), "{}", show(&ok));
    for args in [
        &["nodels", "rack2"][..],
        &["nodels", "compute"],
        &["lsdef", "-t", "node", "-o", "cn03"],
        &["rpower", "rack1", "stat"],
        &["tabdump", "passwd"],
    ] {
        let o = lab.remote(a, args, None);
        assert_eq!(o.status.code(), Some(1), "{}", show(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stderr),
            "Error: Permission denied for request\n",
            "{}",
            args.join(" ")
        );
        assert!(o.stdout.is_empty(), "{}", show(&o));
    }
    // alice cannot claim to be root: only trusted peers may name the user.
    let o = lab.perl(
        a,
        &["rpower", "rack1", "stat"],
        &[("XCATTEST_USERNAME", "root")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let audit = lab
        .remote
        .ok(&["tabdump", "-w", "userid==alice", "auditlog"]);
    for needle in [
        "\"alice\",\"10.77.0.2\",\"cli\",\"nodels\",\"rack1\",\"rack1\",\"Allowed\"",
        "\"alice\",\"10.77.0.2\",\"cli\",\"nodels\",\"rack2\",\"rack2\",\"Denied\"",
        "\"alice\",\"10.77.0.2\",\"cli\",\"rpower\",\"rack1\",\"rack1 stat\",\"Denied\"",
    ] {
        assert!(audit.contains(needle), "{needle} not in\n{audit}");
    }
    assert!(
        !lab.remote
            .ok(&["tabdump", "auditlog"])
            .contains("\"root\",\"10.77.0.2\",\"cli\",\"rpower\""),
        "the asserted user name was not believed"
    );
    // Secrets: alice may now dump tables, but passwords and keys reach her masked; root (whom
    // the default policy allows everything, `showsecrets` included) sees them.
    lab.remote.ok(&[
        "tabch",
        "priority=6.5",
        "policy.name=alice",
        "policy.commands=tabdump,gettab",
        "policy.rule=allow",
    ]);
    lab.remote.ok(&[
        "chdef",
        "cn01",
        "mgt=ipmi",
        "bmc=10.77.1.11",
        "bmcpassword=s3cret",
    ]);
    lab.remote.ok(&[
        "tabch",
        "key=ipmi",
        "passwd.username=ADMIN",
        "passwd.password=hunter2",
    ]);
    let o = lab.remote(a, &["tabdump", "passwd"], None);
    assert!(o.status.success(), "{}", show(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.contains("\"ipmi\",\"ADMIN\",\"********\""), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let o = lab.remote(a, &["tabdump", "ipmi"], None);
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("s3cret"),
        "{}",
        show(&o)
    );
    let o = lab.remote(a, &["lsdef", "cn01", "-i", "bmc,bmcpassword"], None);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "Object name: cn01\n    bmc=10.77.1.11\n    bmcpassword=********\n",
        "{}",
        show(&o)
    );
    let o = lab.remote(a, &["gettab", "key=ipmi", "passwd.password"], None);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "********\n",
        "{}",
        show(&o)
    );
    let o = lab.remote(lab.home.path(), &["tabdump", "passwd"], None);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("hunter2"),
        "{}",
        show(&o)
    );
    // A login (xCAT's <becomeuser>) against passwd key=xcat.
    lab.remote
        .ok(&["tabch", "key=xcat,username=bob", "passwd.password=bobpw"]);
    lab.remote.ok(&[
        "tabch",
        "priority=7",
        "policy.name=bob",
        "policy.rule=allow",
    ]);
    let nobody = tempfile::tempdir().expect("home");
    let o = lab.perl(
        nobody.path(),
        &["nodels", "rack2"],
        &[("XCATTEST_USER", "bob"), ("XCATTEST_PASSWORD", "bobpw")],
    );
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "cn03\ncn04\n");
    let o = lab.perl(
        nobody.path(),
        &["nodels", "rack2"],
        &[("XCATTEST_USER", "bob"), ("XCATTEST_PASSWORD", "wrong")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Error: Authentication failure"),
        "{}",
        show(&o)
    );
    // Without a certificate: anonymous, and the default policy lets anonymous clients do
    // nothing but the node requests.
    let o = lab.perl(nobody.path(), &["nodels"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let o = lab.perl(nobody.path(), &["lsxcatd", "-t"], &[]);
    assert!(
        o.status.success(),
        "lsxcatd is allowed to anyone: {}",
        show(&o)
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "This is a Management Node\n"
    );

    // An administrator who is not root, on the appliance itself: the store is not theirs to
    // write, so their command goes to the appliance's own request port with their certificate.
    let ops = tempfile::tempdir().expect("home");
    std::fs::set_permissions(
        ops.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    lab.remote
        .ok(&["cert", "issue", "nobody", &ops.path().display().to_string()]);
    lab.remote.ok(&[
        "tabch",
        "priority=8",
        "policy.name=nobody",
        "policy.commands=nodels",
        "policy.rule=allow",
    ]);
    let mut c = lab.pair.srv.command("runuser");
    let home_env = format!("HOME={}", ops.path().display());
    c.args([
        "-u",
        "nobody",
        "--",
        "env",
        &home_env,
        bin(),
        "nodels",
        "rack2",
    ])
    .env("BOOTHERD_DB", &lab.remote.db)
    .env_remove("XCATHOST");
    let o = with_stdin(c, None);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "cn03\ncn04\n");
    assert!(
        lab.remote
            .ok(&["tabdump", "-w", "userid==nobody", "auditlog"])
            .contains("\"nobody\",\"127.0.0.1\",\"cli\",\"nodels\",\"rack2\""),
        "audited as nobody"
    );
    // A certificate from another CA is refused at the handshake.
    let other = tempfile::tempdir().expect("other");
    let mallory = tempfile::tempdir().expect("home");
    let o = Command::new(bin())
        .args([
            "cert",
            "issue",
            "root",
            &mallory.path().display().to_string(),
            "--pki-dir",
            &other.path().join("pki").display().to_string(),
        ])
        .output()
        .expect("issue");
    assert!(o.status.success(), "{}", show(&o));
    let o = lab.remote(mallory.path(), &["nodels"], None);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        o.stdout
            .starts_with(b"Unable to open socket connection to xcatd daemon on 10.77.0.1:3001."),
        "{}",
        show(&o)
    );
    assert!(
        lab.daemon.wait_for("TLS handshake refused", 5),
        "{}",
        lab.daemon.dump()
    );
    // A revoked certificate is refused from then on.
    lab.remote.ok(&["cert", "revoke", "alice"]);
    let o = lab.remote(a, &["nodels", "rack1"], None);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        o.stdout.starts_with(b"Unable to open socket connection"),
        "{}",
        show(&o)
    );
    // root's certificate still works.
    let o = lab.remote(lab.home.path(), &["nodels", "rack1"], None);
    assert!(o.status.success(), "{}", show(&o));
}

/// Raw bytes over TLS to the request port (python3's ssl, no certificate), returning what the
/// server answered.
fn raw_tls(lab: &Lab, script: &str) -> String {
    let mut c = lab.pair.cli.command("python3");
    c.arg("-c").arg(format!(
        "import socket, ssl, sys, time\nctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\nctx.check_hostname = False\nctx.verify_mode = ssl.CERT_NONE\ns = ctx.wrap_socket(socket.create_connection(('{SRV}', 3001), timeout=60))\n{script}\n"
    ));
    let o = c.output().expect("python3");
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn malformed_huge_and_slow_requests_are_bounded_and_others_are_served_meanwhile() {
    need(&[("python3", "python3")]);
    let lab = lab("xd3");
    let read_all = "out = b''\nwhile True:\n    try:\n        d = s.recv(65536)\n    except Exception as e:\n        print('closed:', e); break\n    if not d: break\n    out += d\nprint(out.decode(errors='replace'))";
    // Malformed XML: a clear error, and the connection ends.
    let out = raw_tls(
        &lab,
        &format!("s.sendall(b'<xcatrequest><command>nodels</arg></xcatrequest>')\n{read_all}"),
    );
    assert!(
        out.contains("<error>malformed request: malformed XML"),
        "{out}"
    );
    assert!(out.contains("<serverdone>"), "{out}");
    // Not a request at all: closed without an answer.
    let out = raw_tls(
        &lab,
        &format!("s.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n{read_all}"),
    );
    assert!(!out.contains("<xcatresponse>"), "{out}");
    // Slow clients hold a connection each while an admin is served.
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut c = lab.pair.cli.command("python3");
        c.arg("-c").arg(format!(
            "import socket, ssl, time\nctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\nctx.check_hostname = False\nctx.verify_mode = ssl.CERT_NONE\ns = ctx.wrap_socket(socket.create_connection(('{SRV}', 3001)))\ns.sendall(b'<xcatrequest><command>nod')\ntime.sleep(30)\n"
        ));
        slow.push(
            c.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("slow"),
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let t = std::time::Instant::now();
    let o = lab.remote(lab.home.path(), &["nodels", "rack1"], None);
    assert!(o.status.success(), "{}", show(&o));
    assert!(t.elapsed().as_secs() < 5, "served in {:?}", t.elapsed());
    // A request larger than the limit: refused once it passes it, memory stays bounded.
    let out = raw_tls(
        &lab,
        &format!("s.sendall(b'<xcatrequest><command>nodels</command><arg>')\nchunk = b'x' * (1 << 20)\ntry:\n    for i in range(80):\n        s.sendall(chunk)\nexcept Exception as e:\n    print('send stopped:', e)\n{read_all}"),
    );
    assert!(out.contains("the request is too large"), "{out}");
    let pid = lab.daemon.child.id();
    let rss = common::rss_kib(pid);
    assert!(
        rss < 300 * 1024,
        "daemon RSS {rss} KiB after a huge request"
    );
    // The slow ones are dropped after xcatd's 15 s of silence.
    assert!(
        lab.daemon.wait_for("no complete request in time", 25),
        "{}",
        lab.daemon.dump()
    );
    for mut s in slow {
        let _ = s.kill();
        let _ = s.wait();
    }
    let o = lab.remote(lab.home.path(), &["nodels", "rack2"], None);
    assert!(o.status.success(), "{}", show(&o));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// curl against the REST API: (HTTP status, body).
fn curl(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args(["-sk", "-X", method, "-w", "\n%{http_code}"])
        .arg(format!("https://127.0.0.1:{port}{path}"));
    if let Some(b) = body {
        c.args(["-H", "Content-Type: application/json", "-d", b]);
    }
    if let Some(t) = token {
        c.args(["-H", &format!("X-Auth-Token: {t}")]);
    }
    let o = c.output().expect("curl");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.trim().to_string())
}

#[test]
fn the_rest_api_answers_as_xcatws_with_tokens_policy_and_power_over_ipmi() {
    need(&[("curl", "curl")]);
    let sim = common::ipmisim::IpmiSim::start();
    let bh = Bh::new();
    populate(&bh);
    bh.ok(&[
        "chdef",
        "cn01",
        "mgt=ipmi",
        &format!("bmc={}", sim.bmc()),
        &format!("bmcusername={}", common::ipmisim::USER),
        &format!("bmcpassword={}", common::ipmisim::PASSWORD),
        "netboot=xnba",
    ]);
    bh.ok(&["chtab", "key=ipmitimeout", "site.value=0.5"]);
    bh.ok(&["tabch", "key=xcat,username=root", "passwd.password=cluster"]);
    bh.ok(&[
        "tabch",
        "key=xcat,username=carol",
        "passwd.password=carolpw",
    ]);
    bh.ok(&[
        "tabch",
        "priority=6",
        "policy.name=carol",
        "policy.commands=lsdef",
        "policy.rule=allow",
    ]);
    let (xcatd, ws) = (free_port(), free_port());
    bh.ok(&["chtab", "key=xcatdport", &format!("site.value={xcatd}")]);
    bh.ok(&["chtab", "key=xcatwsport", &format!("site.value={ws}")]);
    // The machine's own namespace, loopback only, on ports of its own: the IPMI simulator is
    // on loopback here.
    let mut child = bh
        .cmd(&[
            "serve",
            "--no-dhcp",
            "--no-tftp",
            "--no-http",
            "--no-nfs",
            "--no-status-port",
            "--no-findme-udp",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let up = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect(("127.0.0.1", ws)).is_ok()
    });
    assert!(up, "the REST port did not open");

    // Token flow.
    let (code, body) = curl(
        ws,
        "POST",
        "/xcatws/tokens",
        Some(r#"{"userName":"root","userPW":"cluster"}"#),
        None,
    );
    assert_eq!(code, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let token = v["token"]["id"].as_str().expect("token id").to_string();
    assert!(v["token"]["expire"].is_string(), "{body}");
    let (code, body) = curl(
        ws,
        "POST",
        "/xcatws/tokens",
        Some(r#"{"userName":"root","userPW":"nope"}"#),
        None,
    );
    assert_eq!(
        (code, body.as_str()),
        (401, r#"{"error":"Authentication failure","errorcode":"2"}"#)
    );
    let t = Some(token.as_str());
    // Node list and a node's attributes.
    let (code, body) = curl(ws, "GET", "/xcatws/nodes", None, t);
    assert_eq!(
        (code, body.as_str()),
        (200, r#"["cn01","cn02","cn03","cn04"]"#)
    );
    let (code, body) = curl(ws, "GET", "/xcatws/nodes/cn02/attrs/groups,ip", None, t);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("json"),
        serde_json::json!({"cn02": {"groups": "rack1,compute,all", "ip": "10.77.0.12"}})
    );
    let (code, body) = curl(
        ws,
        "GET",
        "/xcatws/nodes?userName=root&userPW=cluster",
        None,
        None,
    );
    assert_eq!(code, 200, "{body}");
    // Change, create, delete.
    let (code, _) = curl(
        ws,
        "PUT",
        "/xcatws/nodes/cn03",
        Some(r#"{"arch":"ppc64le"}"#),
        t,
    );
    assert_eq!(code, 200);
    assert_eq!(
        bh.ok(&["nodels", "cn03", "nodetype.arch"]),
        "cn03: ppc64le\n"
    );
    let (code, _) = curl(
        ws,
        "POST",
        "/xcatws/nodes/cn09",
        Some(r#"{"groups":"all"}"#),
        t,
    );
    assert_eq!(code, 201);
    let (code, _) = curl(ws, "DELETE", "/xcatws/nodes/cn09", None, t);
    assert_eq!(code, 200);
    assert!(!bh.ok(&["nodels"]).contains("cn09"), "cn09 was removed");
    // Power, against the IPMI simulator.
    let (code, body) = curl(
        ws,
        "PUT",
        "/xcatws/nodes/cn01/power",
        Some(r#"{"action":"on"}"#),
        t,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        sim.ipmitool(&["chassis", "power", "status"]).trim(),
        "Chassis Power is on"
    );
    let (code, body) = curl(ws, "GET", "/xcatws/nodes/cn01/power", None, t);
    assert_eq!((code, body.as_str()), (200, r#"{"cn01":{"power":"on"}}"#));
    // Boot state.
    let (code, body) = curl(
        ws,
        "PUT",
        "/xcatws/nodes/cn01/bootstate",
        Some(r#"{"action":"boot"}"#),
        t,
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = curl(ws, "GET", "/xcatws/nodes/cn01/bootstate", None, t);
    assert_eq!(
        (code, body.as_str()),
        (200, r#"{"cn01":{"bootstate":"boot"}}"#)
    );
    // A command that fails: its errors, 403.
    let (code, body) = curl(ws, "GET", "/xcatws/nodes/cn02/power", None, t);
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains(r#""errorcode":"1""#) && body.contains("cn02: "),
        "{body}"
    );
    // Other resources.
    let (code, body) = curl(ws, "GET", "/xcatws/osimages", None, t);
    assert_eq!((code, body.as_str()), (200, r#"["deb12-netboot"]"#));
    let (code, body) = curl(ws, "GET", "/xcatws/networks/mgmt", None, t);
    assert!(
        code == 200 && body.contains(r#""mask":"255.255.255.0""#),
        "{body}"
    );
    let (code, body) = curl(ws, "GET", "/xcatws/globalconf", None, t);
    assert!(
        code == 200 && body.starts_with(r#"{"clustersite":{"#),
        "{body}"
    );
    let (code, body) = curl(ws, "GET", "/xcatws/tables/nodetype/rows", None, t);
    assert!(
        code == 200 && body.contains(r#"{"arch":"ppc64le","node":"cn03","os":"debian12"}"#),
        "{body}"
    );
    let (code, body) = curl(ws, "GET", "/xcatws/nosuch", None, t);
    assert_eq!(
        (code, body.as_str()),
        (404, r#"{"error":"Unsupported resource.","errorcode":"2"}"#)
    );
    let (code, body) = curl(ws, "PUT", "/xcatws/nodes/cn01", Some("[1,2]"), t);
    assert_eq!(code, 400, "{body}");
    // Policy: carol may lsdef but not power, and her secrets are masked.
    let (code, body) = curl(
        ws,
        "GET",
        "/xcatws/nodes/cn01/attrs/bmcpassword?userName=carol&userPW=carolpw",
        None,
        None,
    );
    assert_eq!(
        (code, body.as_str()),
        (200, r#"{"cn01":{"bmcpassword":"********"}}"#)
    );
    let (code, body) = curl(
        ws,
        "PUT",
        "/xcatws/nodes/cn01/power?userName=carol&userPW=carolpw",
        Some(r#"{"action":"off"}"#),
        None,
    );
    assert_eq!(
        (code, body.as_str()),
        (401, r#"{"error":"Authentication failure","errorcode":"2"}"#)
    );
    assert_eq!(
        sim.ipmitool(&["chassis", "power", "status"]).trim(),
        "Chassis Power is on"
    );
    let audit = bh.ok(&["tabdump", "-w", "clienttype==ws", "auditlog"]);
    assert!(
        audit.contains(r#""carol","127.0.0.1","ws","rpower","cn01","cn01 off","Denied""#),
        "{audit}"
    );
    assert!(
        audit.contains(r#""root","127.0.0.1","ws","rpower","cn01","cn01 on","Allowed""#),
        "{audit}"
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
}
