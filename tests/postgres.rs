//! The PostgreSQL backend against a real PostgreSQL (Debian's package, a throwaway cluster
//! each test starts): the documented URL with a password, the change log's order under
//! concurrent writers, `db copy` both ways, and a daemon that lives through a server restart.

mod common;
use common::pg::PgCluster;
use common::{Bh, Daemon, Pair};

use std::time::{Duration, Instant};

use bootherd::store::watch::{ChangeFollower, Followed};
use bootherd::store::Store;

/// A scratch directory whose store is `url`.
fn bh_at(url: &str) -> Bh {
    let mut bh = Bh::new();
    bh.db = url.to_string();
    bh
}

#[test]
fn a_store_over_tcp_with_a_password_keeps_tables_log_and_audit() {
    let pg = PgCluster::start();
    let bh = bh_at(&pg.tcp_url("bootherd"));
    // The database does not exist yet: a reading command says so and creates nothing.
    let o = bh.run(&["nodels"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("there is no store at"), "{e}");
    assert!(!e.contains(common::pg::PASSWORD), "password shown: {e}");
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'bootherd'"
        ),
        "0\n"
    );
    // The first write creates database and tables, with xCAT's site defaults.
    let o = bh.run(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n1",
        "groups=all,compute",
        "ip=10.1.0.1",
        "mac=52:54:00:00:00:01",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("Created a new store at postgres://postgres:***@127.0.0.1"),
        "{e}"
    );
    assert_eq!(bh.ok(&["nodels", "n1", "hosts.ip"]), "n1: 10.1.0.1\n");
    assert_eq!(
        bh.ok(&["gettab", "key=installdir", "site.value"]),
        "/install\n"
    );
    // Rows are really in PostgreSQL's tables, under xCAT's names.
    assert_eq!(
        pg.psql("bootherd", "SELECT node, groups FROM nodelist"),
        "n1|all,compute\n"
    );
    // The audit log has the command; the change log is numbered 1..n without a gap.
    let audit = bh.ok(&["tabdump", "auditlog"]);
    assert!(audit.contains("\"mkdef\",\"n1\""), "{audit}");
    assert_eq!(
        pg.psql(
            "bootherd",
            "SELECT count(*) = max(seq) AND min(seq) = 1 FROM bootherd_changelog"
        ),
        "t\n"
    );
    // A failed command changes nothing (its audit row aside, as in xCAT), the log included.
    let before = pg.psql("bootherd", "SELECT max(seq) FROM bootherd_changelog");
    let snap = bh.snapshot();
    bh.fail(&["nodech", "n1", "hosts.ip=10.1.0.9", "nodelist.nosuchcol=1"]);
    assert_eq!(bh.snapshot(), snap);
    assert_eq!(
        pg.psql(
            "bootherd",
            &format!(
                "SELECT count(*) FROM bootherd_changelog WHERE seq > {} AND tab <> 'auditlog'",
                before.trim()
            )
        ),
        "0\n"
    );
    // A role that may only read and write rows (no CREATE: what a service node would get) uses
    // the existing store: opening it does no DDL when the schema is current.
    pg.psql(
        "bootherd",
        "CREATE ROLE sn LOGIN PASSWORD 'sn-pw'; REVOKE CREATE ON SCHEMA public FROM PUBLIC; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO sn; \
         GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO sn",
    );
    let sn = bh_at(&format!(
        "postgres://sn:sn-pw@127.0.0.1:{}/bootherd",
        pg.port
    ));
    sn.ok(&["nodech", "n1", "nodelist.status=booted"]);
    assert_eq!(bh.ok(&["nodels", "n1", "nodelist.status"]), "n1: booted\n");
    // A wrong password is a clear error that does not repeat the password.
    let wrong = pg
        .tcp_url("bootherd")
        .replace(common::pg::PASSWORD, "wrong-pw");
    let e = bh_at(&wrong).fail(&["nodels"]);
    assert!(e.contains("password authentication failed"), "{e}");
    assert!(!e.contains("wrong-pw"), "{e}");
}

#[test]
fn concurrent_writers_leave_a_gap_free_log_that_a_follower_reads_in_order() {
    let pg = PgCluster::start();
    let url = pg.socket_url("conc");
    let reader = Store::open(&url).expect("open");
    let mut follower = ChangeFollower::from_now(&reader).expect("follower");
    let start_seq = follower.last_seq();
    const WRITERS: usize = 4;
    const EACH: usize = 40;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let seen = std::thread::scope(|s| {
        let mut ws = Vec::new();
        for w in 0..WRITERS {
            let url = url.clone();
            ws.push(s.spawn(move || {
                let st = Store::open(&url).expect("open writer");
                for i in 0..EACH {
                    st.write(None, |tx| {
                        tx.set(
                            "nodelist",
                            &[&format!("w{w}n{i}")],
                            &[("groups", Some("all"))],
                        )?;
                        tx.set(
                            "hosts",
                            &[&format!("w{w}n{i}")],
                            &[("ip", Some("10.2.0.1"))],
                        )
                    })
                    .expect("write");
                }
            }));
        }
        // The follower reads while the writers commit.
        let f = s.spawn(|| {
            let mut seen = Vec::new();
            loop {
                let done = stop.load(std::sync::atomic::Ordering::SeqCst);
                match follower.drain(&reader).expect("drain") {
                    Followed::Changes(c) => seen.extend(c),
                    Followed::Nothing => {}
                    Followed::Reset => panic!("the follower was reset"),
                }
                if done {
                    return seen;
                }
            }
        });
        for w in ws {
            w.join().expect("writer");
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        f.join().expect("follower")
    });
    // Every entry exactly once, in order, no gap: what a reader following by position needs.
    let seqs: Vec<u64> = seen.iter().map(|c| c.seq).collect();
    let want: Vec<u64> = (start_seq + 1..=start_seq + (WRITERS * EACH * 2) as u64).collect();
    assert_eq!(seqs, want);
    // Each transaction's two entries are adjacent (writers do not interleave inside the log).
    for pair in seen.chunks(2) {
        assert_eq!(pair[0].table, "nodelist");
        assert_eq!(pair[1].table, "hosts");
        assert_eq!(pair[0].key, pair[1].key);
    }
    assert_eq!(reader.rows("nodelist").expect("rows").len(), WRITERS * EACH);
}

#[test]
fn db_copy_moves_a_store_to_postgresql_and_back_verbatim() {
    let pg = PgCluster::start();
    let src = Bh::new();
    let sqlite = format!("sqlite:{}", src.path("src.db").display());
    let src = bh_at(&sqlite);
    src.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "c[01-20]",
        "groups=all,rack1",
        "ip=|c(\\d+)|10.3.0.($1+0)|",
    ]);
    src.ok(&["chtab", "key=domain", "site.value=cluster.example"]);
    src.ok(&["nodech", "c05", "nodelist.status=booted"]);
    src.ok(&["noderm", "c07"]);
    src.ok(&["chtab", "node=c01", "postscripts.postscripts=b,a"]);
    // Every request is audited; the dumps that compare the copies must not add rows themselves.
    src.ok(&["chtab", "key=auditskipcmds", "site.value=tabdump"]);
    let tables: Vec<String> = src.ok(&["tabdump"]).lines().map(str::to_string).collect();
    let dump = |bh: &Bh| -> Vec<String> { tables.iter().map(|t| bh.ok(&["tabdump", t])).collect() };
    let before = dump(&src);
    let bounds = Store::open(&sqlite)
        .expect("open")
        .change_bounds()
        .expect("bounds");
    assert!(bounds.1 > 20, "{bounds:?}");

    let pgurl = pg.tcp_url("copied");
    let out = src.ok(&["db", "copy", &sqlite, &pgurl]);
    assert!(out.starts_with("Copied "), "{out}");
    assert!(out.contains(&format!("(position {})", bounds.1)), "{out}");
    assert!(!out.contains(common::pg::PASSWORD), "{out}");
    let on_pg = bh_at(&pgurl);
    assert_eq!(dump(&on_pg), before, "every table, auditlog included");
    let pgs = Store::open(&pgurl).expect("open pg");
    assert_eq!(pgs.change_bounds().expect("bounds"), bounds);
    // A write on the copy continues the log where the original stopped.
    on_pg.ok(&["nodeadd", "d1", "groups=all"]);
    assert_eq!(pgs.change_bounds().expect("bounds").1, bounds.1 + 2);

    // A non-empty target is refused, and left alone.
    let e = src.fail(&["db", "copy", &sqlite, &pgurl]);
    assert!(e.contains("is not empty") && e.contains("--force"), "{e}");
    assert!(on_pg.ok(&["nodels", "d1"]).contains("d1"));
    // And back into a new SQLite file: identical again, positions included.
    let back = format!("sqlite:{}", src.path("back.db").display());
    src.ok(&["db", "copy", &pgurl, &back]);
    let back_bh = bh_at(&back);
    let after: Vec<String> = dump(&back_bh);
    assert_eq!(after, dump(&on_pg));
    assert_eq!(
        Store::open(&back)
            .expect("open")
            .change_bounds()
            .expect("b"),
        pgs.change_bounds().expect("b")
    );
    // --force replaces the target's contents.
    src.ok(&["db", "copy", "--force", &sqlite, &pgurl]);
    assert_eq!(dump(&on_pg), before);
}

/// Waits until at least `n` daemon log lines contain `needle`.
fn wait_count(d: &Daemon, needle: &str, n: usize, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let c = d
            .log
            .lock()
            .map(|l| l.iter().filter(|x| x.contains(needle)).count())
            .unwrap_or(0);
        if c >= n {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One request on the status port (3002) from `source` inside the client namespace.
fn call(pair: &Pair, bh: &Bh, source: &str, line: &str) -> String {
    let py = bh.file(
        "call.py",
        "import socket,sys\ns=socket.socket()\ns.settimeout(10)\ns.bind((sys.argv[1],0))\ns.connect(('10.99.87.1',3002))\nf=s.makefile('rwb')\nprint(f.readline().decode().strip())\nf.write((sys.argv[2]+'\\n').encode()); f.flush()\nprint(f.read().decode().strip())\n",
    );
    let o = pair
        .cli
        .command("/usr/bin/python3")
        .args([&py, source, line])
        .output()
        .expect("python");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn serve_learns_of_changes_by_notify_and_survives_a_postgresql_restart() {
    let pg = PgCluster::start();
    // The unix socket: the daemon runs in a network namespace of its own.
    let bh = bh_at(&pg.socket_url("served"));
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n1",
        "groups=all",
        "ip=10.99.87.2",
    ]);
    let pair = Pair::new("pgr", "10.99.87.1/24");
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.87.2/24", "dev", "bhc0"]);
    // The daemon starts while the server is down: it waits for it instead of failing.
    pg.stop();
    // Polling every 10 s: anything learnt sooner came by NOTIFY.
    let d = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(1500));
            pg.start_again();
        });
        Daemon::start(
            &bh,
            &pair.srv,
            &[
                "--no-dhcp",
                "--no-tftp",
                "--no-http",
                "--no-nfs",
                "--no-findme-udp",
                "--poll-ms",
                "10000",
            ],
        )
    });
    assert!(
        wait_count(&d, "waiting up to 60 s for it", 1, 0),
        "{}",
        d.dump()
    );
    assert!(
        wait_count(&d, "the store answers; starting", 1, 0),
        "{}",
        d.dump()
    );
    assert!(d.wait_for("node status port listening", 5), "{}", d.dump());

    let t = Instant::now();
    bh.ok(&["nodeadd", "n2", "groups=all"]);
    assert!(wait_count(&d, "key=node=n2", 1, 2), "{}", d.dump());
    let notified = t.elapsed();
    assert!(
        notified < Duration::from_secs(1),
        "change seen after {notified:?}"
    );

    // The server restarts under the daemon: every connection is cut.
    pg.restart();
    let lost = "lost the PostgreSQL connection that listens for changes";
    assert!(wait_count(&d, lost, 1, 10), "{}", d.dump());
    assert!(wait_count(&d, "PostgreSQL is back", 1, 15), "{}", d.dump());
    // A change made after the restart reaches the daemon by itself (no request asked) ...
    let t = Instant::now();
    bh.ok(&["chtab", "node=n1", "postscripts.postscripts=after-restart"]);
    assert!(
        wait_count(&d, "table=postscripts key=node=n1", 1, 3),
        "{}",
        d.dump()
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // ... and is served: the node's postscript has it; the daemon's own write (the node's
    // status) lands in the store.
    let out = call(&pair, &bh, "10.99.87.2", "getpostscript");
    assert!(out.contains("after-restart"), "{out}\n{}", d.dump());
    assert_eq!(
        call(&pair, &bh, "10.99.87.2", "installstatus booted"),
        "ready\ndone\n"
    );
    assert_eq!(bh.ok(&["nodels", "n1", "nodelist.status"]), "n1: booted\n");

    // Down for a while: requests fail cleanly meanwhile, and the daemon comes back by itself.
    pg.stop();
    std::thread::sleep(Duration::from_millis(500));
    let out = call(&pair, &bh, "10.99.87.2", "getpostscript");
    assert!(!out.contains("#END OF SCRIPT"), "{out}");
    pg.start_again();
    assert!(wait_count(&d, "PostgreSQL is back", 2, 15), "{}", d.dump());
    bh.ok(&["chtab", "node=n1", "postscripts.postscripts=after-outage"]);
    let out = call(&pair, &bh, "10.99.87.2", "getpostscript");
    assert!(out.contains("after-outage"), "{out}\n{}", d.dump());
    let mut d = d;
    assert!(d.child_alive(), "{}", d.dump());
}

#[test]
fn a_command_cut_off_by_a_lost_connection_applies_nothing_and_the_next_one_works() {
    let pg = PgCluster::start();
    let url = pg.socket_url("cut");
    let store = Store::open(&url).expect("open");
    let r = store.write(None, |tx| {
        tx.set("nodelist", &["half1"], &[("groups", Some("all"))])?;
        // The server ends this very session (as a restart or a network cut would).
        pg.psql(
            "postgres",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = 'cut' AND state = 'idle in transaction'",
        );
        std::thread::sleep(Duration::from_millis(200));
        tx.set("nodelist", &["half2"], &[("groups", Some("all"))])
    });
    let e = r.expect_err("the command must fail").to_string();
    assert!(e.contains("nothing of this command was applied"), "{e}");
    // Nothing of it is in the store, the log included; the next command reconnects by itself.
    let bh = bh_at(&url);
    assert_eq!(bh.ok(&["nodels"]), "");
    assert_eq!(
        pg.psql(
            "cut",
            "SELECT count(*) FROM bootherd_changelog WHERE tab = 'nodelist'"
        ),
        "0\n"
    );
    store
        .write(None, |tx| {
            tx.set("nodelist", &["after"], &[("groups", Some("all"))])
        })
        .expect("the same store handle writes again");
    assert_eq!(bh.ok(&["nodels"]), "after\n");
}

#[test]
fn a_commit_whose_answer_is_lost_is_settled_by_asking_the_server() {
    use bootherd::store::postgres::{set_commit_failpoint, CUT_BEFORE_COMMIT, LOSE_COMMIT_ANSWER};
    let pg = PgCluster::start();
    let url = pg.socket_url("settle");
    let store = Store::open(&url).expect("open");
    let set = |n: &str| {
        store.write(None, |tx| {
            tx.set("nodelist", &[n], &[("groups", Some("all"))])
        })
    };
    // The COMMIT happened but its answer never came: the server confirms it, the command succeeds.
    set_commit_failpoint("settle", LOSE_COMMIT_ANSWER);
    set("kept").expect("a confirmed commit is a success");
    // The session ends before COMMIT arrives: the server says aborted, the command fails saying so.
    set_commit_failpoint("settle", CUT_BEFORE_COMMIT);
    let e = set("lost")
        .expect_err("an aborted commit is a failure")
        .to_string();
    assert!(
        e.contains("rolled the transaction back, nothing of this command was applied"),
        "{e}"
    );
    let bh = bh_at(&url);
    assert_eq!(bh.ok(&["nodels"]), "kept\n");
    assert_eq!(
        pg.psql(
            "settle",
            "SELECT count(*) FROM bootherd_changelog WHERE rowkey = 'node=lost'"
        ),
        "0\n"
    );
    set("after").expect("the store handle works again");
    assert_eq!(bh.ok(&["nodels"]), "after\nkept\n");
}

#[test]
fn a_store_over_tls_verifies_the_server_certificate() {
    let pg = PgCluster::start_tls();
    let url = format!(
        "{}?sslmode=require&sslrootcert={}",
        pg.tcp_url("tls"),
        pg.ca()
    );
    let bh = bh_at(&url);
    bh.ok(&["nodeadd", "t1", "groups=all"]);
    assert_eq!(bh.ok(&["nodels"]), "t1\n");
    // The sessions are encrypted (the server says so).
    let store = Store::open(&url).expect("open");
    assert_eq!(store.rows("nodelist").expect("rows").len(), 1);
    let n: u32 = pg
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = 'bootherd' AND s.ssl",
        )
        .trim()
        .parse()
        .expect("count");
    assert!(n >= 1, "no TLS session");
    // A CA that did not sign the server's certificate: refused, nothing read.
    let other = pg.make_ca("other");
    let wrong = format!("{}?sslmode=require&sslrootcert={other}", pg.tcp_url("tls"));
    let e = bh_at(&wrong).fail(&["nodels"]);
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    assert!(!e.contains(common::pg::PASSWORD), "{e}");
    // Without sslrootcert the public web roots are the trust anchors: a private CA is refused.
    let e = bh_at(&format!("{}?sslmode=require", pg.tcp_url("tls"))).fail(&["nodels"]);
    assert!(e.to_lowercase().contains("certificate"), "{e}");
}
