//! The table and definition commands answer as xCAT's do, called through their command links as
//! an xCAT administrator or script calls them. Expected text comes from xCAT's source
//! (xCAT-server/lib/xcat/plugins/DBobjectdefs.pm, tabutils.pm, perl-xCAT/xCAT/DBobjUtils.pm,
//! xCAT-client/sbin/dumpxCATdb and restorexCATdb) and its man pages.

mod common;
use common::{bin, Bh};

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// A store plus a directory of command links (`nodels`, `chdef`, … → bootherd).
struct Xcat {
    bh: Bh,
    bindir: PathBuf,
}

struct Ran {
    out: String,
    err: String,
    code: i32,
}

impl Ran {
    fn both(&self) -> String {
        format!("{}{}", self.out, self.err)
    }
}

impl Xcat {
    fn new() -> Xcat {
        let bh = Bh::new();
        let bindir = bh.path("bin");
        std::fs::create_dir_all(&bindir).expect("mkdir bin");
        let o = Command::new(bin())
            .args(["links", bindir.to_str().expect("path")])
            .output()
            .expect("links");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        Xcat { bh, bindir }
    }

    fn cmd(&self, name: &str, args: &[&str]) -> Command {
        let mut c = Command::new(self.bindir.join(name));
        c.args(args)
            .env("BOOTHERD_DB", &self.bh.db)
            .env_remove("XCAT_NODE_PREFIX")
            .env_remove("XCAT_NODE_SUFFIX")
            .env_remove("XCAT_SKIPTABLES")
            .env_remove("RUST_LOG");
        c
    }

    fn run_in(&self, name: &str, args: &[&str], stdin: &str) -> Ran {
        let mut c = self.cmd(name, args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let o: Output = child.wait_with_output().expect("wait");
        Ran {
            out: String::from_utf8_lossy(&o.stdout).into_owned(),
            err: String::from_utf8_lossy(&o.stderr).into_owned(),
            code: o.status.code().unwrap_or(-1),
        }
    }

    fn run(&self, name: &str, args: &[&str]) -> Ran {
        self.run_in(name, args, "")
    }

    /// Runs and expects exit 0; returns stdout.
    fn ok(&self, name: &str, args: &[&str]) -> String {
        let r = self.run(name, args);
        assert_eq!(
            r.code, 0,
            "{name} {args:?} failed:\nstdout: {}\nstderr: {}",
            r.out, r.err
        );
        r.out
    }

    /// Runs and expects exit 1; returns stdout+stderr.
    fn fails(&self, name: &str, args: &[&str]) -> String {
        let r = self.run(name, args);
        assert_eq!(
            r.code, 1,
            "{name} {args:?} should exit 1:\nstdout: {}\nstderr: {}",
            r.out, r.err
        );
        r.both()
    }
}

#[test]
fn help_version_and_usage_name_the_command_as_invoked() {
    let x = Xcat::new();
    // -h, -? and --help print the usage and exit 0 (tabutils.pm: $usage->(0)).
    for (cmd, first) in [
        ("nodels", "Usage:\n  nodels [noderange] [-b|--blame] [-H|--with-fieldname] [table.attribute | shortname] [-S][...]\n"),
        ("tabdump", "Usage: tabdump [-d] [table]\n       tabdump      [table]\n"),
        ("gettab", "Usage: gettab [-H|--with-fieldname] key=value,...  table.attribute ...\n       gettab [-?|-h|--help]\n"),
        ("nodeadd", "Usage: nodeadd <noderange> groups=<groupnames> [table.column=value] [...]\n"),
        ("nodech", "Usage: nodech <noderange> table.column=value [...]\n       nodech {-d | --delete} <noderange> <table> [...]\n"),
        ("nodegrpch", "Usage: nodegrpch <group1,group2,...> [table.column=value] [...]\n"),
        ("tabgrep", "Usage: tabgrep nodename\n       tabgrep [-?|-h|--help]\n"),
        ("tabprune", "Usage: tabprune <tablename> [-V] -a\n"),
        ("chtab", "Usage: chtab\n       To add or update rows for tables:\n"),
        ("tabch", "Usage: tabch\n       To add or update rows for tables:\n"),
        ("lsdef", "\nUsage: lsdef - List xCAT data object definitions.\n"),
        ("makedhcp", "Usage: makedhcp -n\n\tmakedhcp -a\n"),
    ] {
        for flag in ["-h", "--help", "-?"] {
            let r = x.run(cmd, &[flag]);
            assert_eq!(r.code, 0, "{cmd} {flag}: {}", r.both());
            assert!(r.out.starts_with(first), "{cmd} {flag} printed:\n{}", r.out);
            assert!(!r.out.contains("bootherd"), "{cmd} {flag} names bootherd: {}", r.out);
        }
    }
    // -v / --version (and Getopt::Long's -version) print the version and exit 0.
    for cmd in [
        "nodeadd",
        "nodegrpch",
        "tabdump",
        "makenetworks",
        "dumpxCATdb",
        "tabprune",
    ] {
        for flag in ["-v", "--version"] {
            let out = x.ok(cmd, &[flag]);
            assert!(out.starts_with("Version "), "{cmd} {flag}: {out}");
        }
    }
    // tabch says "tabch :Version …" (tabutils.pm), under the name it was run as.
    assert!(x.ok("chtab", &["-v"]).starts_with("chtab :Version "));
    assert!(x.ok("chtab", &["-version"]).starts_with("chtab :Version "));
    // No arguments: usage, with xCAT's exit code for each command.
    let r = x.run("chdef", &[]);
    assert_eq!(r.code, 0, "defch_usage returns 0");
    assert!(r
        .out
        .starts_with("\nUsage: chdef - Change xCAT data object definitions.\n"));
    let r = x.run("mkdef", &[]);
    assert_eq!(r.code, 0);
    assert!(r
        .out
        .contains("Usage: mkdef - Create xCAT data object definitions."));
    for cmd in [
        "chtab",
        "nodeadd",
        "nodech",
        "noderm",
        "gettab",
        "tabgrep",
        "nodepurge",
        "makedhcp",
    ] {
        let r = x.run(cmd, &[]);
        assert_eq!(r.code, 1, "{cmd} with no arguments: {}", r.both());
        assert!(r.out.contains(&format!("{cmd} ")), "{cmd}: {}", r.out);
        assert!(r.out.contains("Usage"), "{cmd}: {}", r.out);
    }
    // Commands that work without arguments still do.
    assert_eq!(x.run("nodels", &[]).code, 0);
    assert!(x.ok("tabdump", &[]).lines().any(|l| l == "nodelist"));
    // A malformed command line prints the usage and exits 1.
    let r = x.run("gettab", &["-c"]);
    assert_eq!(r.code, 1);
    assert!(r.out.contains("Usage: gettab"), "{}", r.both());
    let r = x.run("nodegrpch", &["-c"]);
    assert_eq!(r.code, 1);
    assert!(r.out.contains("Usage: nodegrpch"), "{}", r.both());
}

#[test]
fn chdef_creates_changes_and_renames_as_xcat_does() {
    let x = Xcat::new();
    // A missing node is created (DBobjectdefs.pm defch).
    let out = x.ok(
        "chdef",
        &["-t", "node", "-o", "switch-template", "groups=test"],
    );
    assert_eq!(
        out,
        "1 object definitions have been created or modified.\nNew object definitions 'switch-template' have been created.\n"
    );
    assert_eq!(
        x.ok("lsdef", &["switch-template"]),
        "Object name: switch-template\n    groups=test\n    objtype=node\n    postbootscripts=otherpkgs\n    postscripts=syslog,remoteshell,syncfiles\n"
    );
    // Changing an existing one.
    assert_eq!(
        x.ok("chdef", &["switch-template", "groups=linux"]),
        "1 object definitions have been created or modified.\n"
    );
    // -p and -m on lists.
    x.ok("chdef", &["abcnode1", "-p", "groups=abc"]);
    x.ok(
        "chdef",
        &["-p", "-t", "node", "-o", "abcnode1", "groups=all"],
    );
    assert_eq!(
        x.ok("nodels", &["abcnode1", "groups"]),
        "abcnode1: abc,all\n"
    );
    x.ok(
        "chdef",
        &["-m", "-t", "node", "-o", "abcnode1", "groups=abc"],
    );
    assert_eq!(x.ok("nodels", &["abcnode1", "groups"]), "abcnode1: all\n");
    // A new node needs its groups.
    let e = x.fails("chdef", &["newnode", "arch=x86_64"]);
    assert!(e.contains("Error: Attribute 'groups' is not specified for node 'newnode', skipping to the next node.\n"), "{e}");
    assert!(e.contains("Error: One or more errors occured when attempting to create or modify xCAT object definitions.\n"), "{e}");
    // -m on something that does not exist.
    let e = x.fails("chdef", &["-m", "ghost", "groups=all"]);
    assert!(
        e.contains("The '-m' option is not valid since the 'ghost' definition does not exist."),
        "{e}"
    );
    // Unknown attribute and type.
    let e = x.fails("chdef", &["abcnode1", "colour=blue"]);
    assert!(
        e.contains("Error: 'colour' is not a valid attribute name for an object type of 'node'.\n"),
        "{e}"
    );
    let e = x.fails(
        "chdef",
        &["-t", "wrongtype", "-o", "testnode", "groups=all,aix"],
    );
    assert!(e.contains("not a valid"), "{e}");
    // Nothing to change.
    assert_eq!(
        x.ok("chdef", &["abcnode1"]),
        "No object definitions have been created or modified.\n"
    );
    // -n renames everything the object has.
    x.ok(
        "mkdef",
        &[
            "-t",
            "node",
            "-o",
            "testnode1",
            "mgt=hmc",
            "cons=hmc",
            "groups=all,systemp",
        ],
    );
    assert_eq!(
        x.ok("chdef", &["testnode1", "-n", "testnode2"]),
        "Changed the object name from testnode1 to testnode2.\n"
    );
    let e = x.fails("lsdef", &["testnode1"]);
    assert_eq!(
        e,
        "Error: Could not find an object named 'testnode1' of type 'node'.\n"
    );
    let l = x.ok("lsdef", &["testnode2"]);
    for want in [
        "Object name: testnode2\n",
        "    mgt=hmc\n",
        "    cons=hmc\n",
        "    groups=all,systemp\n",
    ] {
        assert!(l.contains(want), "{l}");
    }
    let e = x.fails("chdef", &["testnode2", "-n", "abcnode1"]);
    assert!(e.contains("Object abcnode1 already exists."), "{e}");
    let e = x.fails("chdef", &["nosuch", "-n", "other"]);
    assert!(e.contains("The nosuch is not a valid object."), "{e}");
    let e = x.fails("mkdef", &["-p", "newnode", "groups=all"]);
    assert!(
        e.contains("The '-p' and '-m' options are not valid for the mkdef command."),
        "{e}"
    );
    let e = x.fails("chdef", &["-f", "testnode2", "groups=all"]);
    assert!(
        e.contains("The '-f' option is not valid for the chdef command."),
        "{e}"
    );
    let e = x.fails("chdef", &["testnode2", "-p", "-n", "x"]);
    assert!(
        e.contains("Cannot combine '-n' and '-d','-p','-m','-z','-w' options."),
        "{e}"
    );
    // The site object.
    assert_eq!(
        x.ok("chdef", &["-t", "site", "clustersite", "dhcplease=300"]),
        "1 object definitions have been created or modified.\n"
    );
    assert_eq!(
        x.ok("lsdef", &["-t", "site", "clustersite", "-i", "dhcplease"]),
        "Object name: clustersite\n    dhcplease=300\n"
    );
    // mkdef over an existing definition: a warning, nothing changed, exit 1.
    let r = x.run("mkdef", &["-t", "node", "testnode2", "groups=x"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("Warning: A definition for 'testnode2' already exists. No changes will be made.  Run again with '-f' option to force replace.\n"), "{}", r.err);
    assert!(r
        .err
        .contains("Error: 0 object definitions have been created or modified.\n"));
    // rmdef.
    assert_eq!(
        x.ok("rmdef", &["testnode2,switch-template"]),
        "2 object definitions have been removed.\n"
    );
    let r = x.run("rmdef", &["testnode2"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.err,
        "Error: Could not find an object named 'testnode2' of type 'node'.\n"
    );
    assert_eq!(
        r.out,
        "No objects have been removed from the xCAT database.\n"
    );
}

#[test]
fn networks_need_net_and_mask_and_may_not_repeat_them() {
    let x = Xcat::new();
    assert_eq!(
        x.ok("chdef", &["-t", "network", "aaaaa_not_exist"]),
        "No object definitions have been created or modified.\n"
    );
    for args in [
        vec!["-t", "network", "aaaaa_not_exist", "mtu=1500"],
        vec![
            "-t",
            "network",
            "aaaaa_not_exist",
            "mtu=1500",
            "net=10.0.0.0",
        ],
        vec![
            "-t",
            "network",
            "aaaaa_not_exist",
            "mtu=1500",
            "mask=255.255.255.0",
        ],
    ] {
        let e = x.fails("chdef", &args);
        assert!(
            e.contains(
                "Net or mask value should not be empty for xCAT network object 'aaaaa_not_exist'."
            ),
            "{e}"
        );
    }
    assert!(x
        .ok(
            "chdef",
            &[
                "-t",
                "network",
                "aaaaa_not_exist",
                "mask=255.255.255.0",
                "net=100.0.0.0",
                "mtu=1500"
            ]
        )
        .starts_with("1 object definitions have been created or modified.\n"));
    x.ok(
        "chdef",
        &["-t", "network", "aaaaa_not_exist", "gateway=10.0.0.101"],
    );
    assert!(x
        .ok(
            "lsdef",
            &["-t", "network", "aaaaa_not_exist", "-i", "gateway"]
        )
        .contains("gateway=10.0.0.101"));
    let e = x.fails(
        "chdef",
        &[
            "-t",
            "network",
            "bbbbb_not_exist",
            "mask=255.255.255.0",
            "net=100.0.0.0",
        ],
    );
    assert!(e.contains("A network definition called 'aaaaa_not_exist' already exists that contains the same net and mask values. Cannot create a definition for 'bbbbb_not_exist'."), "{e}");
    // The same rule for stanza input.
    let r = x.run_in(
        "mkdef",
        &["-z"],
        "\nbbbbb_not_exist:\n    objtype=network\n    net=150.0.0.0\n",
    );
    assert_eq!(r.code, 1);
    assert!(
        r.err.contains("Net or mask value should not be empty"),
        "{}",
        r.err
    );
    assert_eq!(
        x.run("lsdef", &["-t", "network", "-o", "bbbbb_not_exist"])
            .code,
        1
    );
}

#[test]
fn groups_static_members_and_dynamic_conditions() {
    let x = Xcat::new();
    x.ok(
        "mkdef",
        &[
            "-t",
            "node",
            "-o",
            "testnode1-testnode2",
            "mgt=hmc",
            "cons=hmc",
            "groups=all,systemp",
        ],
    );
    x.ok(
        "mkdef",
        &[
            "-t",
            "node",
            "-o",
            "testnode3-testnode4",
            "mgt=hmc",
            "cons=ipmi",
            "groups=all,systemx",
        ],
    );
    x.ok(
        "mkdef",
        &[
            "-t",
            "group",
            "-o",
            "testgrp1",
            "members=testnode1,testnode3",
        ],
    );
    assert_eq!(
        x.ok("lsdef", &["-s", "testgrp1"]),
        "testnode1  (node)\ntestnode3  (node)\n"
    );
    x.ok(
        "chdef",
        &[
            "-t",
            "group",
            "-o",
            "testgrp1",
            "-p",
            "members=testnode2,testnode4",
        ],
    );
    assert_eq!(
        x.ok("nodels", &["testgrp1"]),
        "testnode1\ntestnode2\ntestnode3\ntestnode4\n"
    );
    x.ok(
        "chdef",
        &[
            "-t",
            "group",
            "-o",
            "testgrp1",
            "-m",
            "members=testnode1,testnode2",
        ],
    );
    assert_eq!(x.ok("nodels", &["testgrp1"]), "testnode3\ntestnode4\n");
    // A plain members= list replaces the membership.
    x.ok("chdef", &["-t", "group", "testgrp1", "members=testnode2"]);
    assert_eq!(x.ok("nodels", &["testgrp1"]), "testnode2\n");
    // Dynamic groups: -w replaces the conditions, -p adds to them, -m takes them away.
    x.ok(
        "mkdef",
        &["-t", "group", "-o", "dyngrp", "-d", "-w", "cons==hmc"],
    );
    assert_eq!(x.ok("nodels", &["dyngrp"]), "testnode1\ntestnode2\n");
    x.ok(
        "chdef",
        &["-t", "group", "-o", "dyngrp", "-d", "-w", "mgt==hmc"],
    );
    assert_eq!(
        x.ok("nodels", &["dyngrp"]),
        "testnode1\ntestnode2\ntestnode3\ntestnode4\n"
    );
    x.ok(
        "chdef",
        &[
            "-t",
            "group",
            "-o",
            "dyngrp",
            "-d",
            "-p",
            "-w",
            "cons==hmc",
            "-w",
            "groups=~systemp",
        ],
    );
    assert_eq!(x.ok("nodels", &["dyngrp"]), "testnode1\ntestnode2\n");
    assert!(x
        .ok("lsdef", &["-t", "group", "-o", "dyngrp"])
        .contains("    wherevals=mgt==hmc::cons==hmc::groups=~systemp\n"));
    x.ok(
        "chdef",
        &[
            "-t",
            "group",
            "-o",
            "dyngrp",
            "-d",
            "-m",
            "-w",
            "cons==hmc",
            "-w",
            "groups=~systemp",
        ],
    );
    assert_eq!(
        x.ok("nodels", &["dyngrp"]),
        "testnode1\ntestnode2\ntestnode3\ntestnode4\n"
    );
    let e = x.fails("chdef", &["-t", "group", "dyngrp", "mgt=ipmi"]);
    assert!(
        e.contains("Can not assign attributes to dynamic node group 'dyngrp'."),
        "{e}"
    );
    // A group that matches nothing is an empty noderange (the xCAT mkdef dyngrp3 case).
    x.ok(
        "mkdef",
        &[
            "-t",
            "group",
            "-o",
            "dyngrp3",
            "-d",
            "-w",
            "mgt==hmc",
            "-w",
            "cons==nosuch",
        ],
    );
    let e = x.fails("lsdef", &["-s", "dyngrp3"]);
    assert!(
        e.contains("No node in 'dyngrp3', check the noderange syntax."),
        "{e}"
    );
}

#[test]
fn stanza_files_out_of_lsdef_and_into_mkdef_and_chdef() {
    let x = Xcat::new();
    x.ok(
        "mkdef",
        &[
            "-t",
            "node",
            "-o",
            "testnode",
            "groups=all",
            "arch=x86_64",
            "ip=10.0.0.5",
        ],
    );
    // lsdef -z: the header, then a blank line, "name:", objtype first, attributes sorted.
    let z = x.ok("lsdef", &["testnode", "-z"]);
    assert_eq!(
        z,
        "# <xCAT data object stanza file>\n\ntestnode:\n    objtype=node\n    arch=x86_64\n    groups=all\n    ip=10.0.0.5\n"
    );
    // chdef -z reads it back (the xCAT chdef_z case: s/all/aix/ then cat | chdef -z).
    let r = x.run_in("chdef", &["-z"], &z.replace("all", "aix"));
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(x
        .ok("lsdef", &["testnode", "-l"])
        .contains("    groups=aix\n"));
    // -z does not combine with a noderange or -t.
    let e = x.fails("chdef", &["-z", "testnode"]);
    assert!(
        e.contains("Cannot use '-z' with '-o' or a noderange."),
        "{e}"
    );
    let e = x.fails("mkdef", &["-z", "-t", "node"]);
    assert!(
        e.contains("Cannot combine '-t' and '-a', '-z', or '-x' options."),
        "{e}"
    );
    // mkdef -z on a fresh store, with defaults for a type and several types in one file.
    let y = Xcat::new();
    let text = "# <xCAT data object stanza file>\n\ndefault-node:\n    groups=compute,all\n\nn1:\n    objtype=node\n    ip=10.0.0.1\n\nn2:\n    objtype=node\n    ip=10.0.0.2\n    groups=gpu,all\n\nnet1:\n    objtype=network\n    net=10.0.0.0\n    mask=255.255.255.0\n";
    let r = y.run_in("mkdef", &["-z"], text);
    assert_eq!(r.code, 0, "{}", r.both());
    assert_eq!(
        r.out,
        "3 object definitions have been created or modified.\n"
    );
    assert_eq!(
        y.ok("nodels", &["n1,n2", "groups"]),
        "n1: compute,all\nn2: gpu,all\n"
    );
    assert!(y
        .ok("lsdef", &["-t", "network", "-l"])
        .contains("    net=10.0.0.0\n"));
    let r = y.run_in("mkdef", &["-z"], "n3:\n    ip=1.2.3.4\n");
    assert_eq!(r.code, 1);
    assert!(
        r.err
            .contains("No objtype value was specified for 'n3'. Cannot create object definition."),
        "{}",
        r.err
    );
}

#[test]
fn tabdump_where_operators_and_chtab_partial_keys() {
    let x = Xcat::new();
    x.ok("nodeadd", &["n001-n012", "groups=all"]);
    x.ok("chtab", &["node=n003", "nodelist.comments=three"]);
    let names = |args: &[&str]| -> Vec<String> {
        let mut a = vec![];
        for w in args {
            a.push("-w");
            a.push(*w);
        }
        a.push("nodelist");
        x.ok("tabdump", &a)
            .lines()
            .skip(1)
            .map(|l| {
                l.split(',')
                    .next()
                    .unwrap_or("")
                    .trim_matches('"')
                    .to_string()
            })
            .collect()
    };
    assert_eq!(names(&["node==n002"]), ["n002"]);
    assert_eq!(names(&["node=~n01%"]), ["n010", "n011", "n012"]);
    assert_eq!(names(&["node=~/N00_/", "node>=n008"]), ["n008", "n009"]);
    assert_eq!(names(&["node<n003"]), ["n001", "n002"]);
    assert_eq!(names(&["node<=n002"]), ["n001", "n002"]);
    assert_eq!(names(&["node>n011"]), ["n012"]);
    assert_eq!(names(&["node!~%0_", "node!=n011"]), ["n010", "n012"]);
    // SQL: a NULL column matches no comparison.
    assert_eq!(names(&["comments!=x"]), ["n003"]);
    // Nothing matches: just the header.
    assert_eq!(names(&["node==zzz"]), Vec::<String>::new());
    let e = x.fails("tabdump", &["-w", "nosuch==1", "nodelist"]);
    assert!(
        e.contains("No column \"nosuch\" in table \"nodelist\""),
        "{e}"
    );
    let e = x.fails("tabdump", &["nosuchtable"]);
    assert!(e.contains("No such table: nosuchtable"), "{e}");
    // chtab with part of a key creates the row, the rest of the key coming from the values.
    x.ok(
        "chtab",
        &[
            "key=system",
            "passwd.username=root",
            "passwd.password=cluster",
        ],
    );
    assert_eq!(
        x.ok("tabdump", &["passwd"]),
        "#key,username,password,cryptmethod,authdomain,comments,disable\n\"system\",\"root\",\"cluster\",,,,\n"
    );
    x.ok("chtab", &["key=system", "passwd.password=other"]);
    assert!(x
        .ok("tabdump", &["passwd"])
        .contains("\"system\",\"root\",\"other\",,,,\n"));
    let e = x.fails("chtab", &["key=x", "nosuch.value=1"]);
    assert!(e.contains("Table nosuch does not exist."), "{e}");
    let e = x.fails("chtab", &["foo=x", "site.value=1"]);
    assert!(e.contains("no such column: foo"), "{e}");
    let e = x.fails("chtab", &["key=x", "site.nosuch=1"]);
    assert!(
        e.contains("site.nosuch not a valid table.column description"),
        "{e}"
    );
}

#[test]
fn gettab_tabgrep_nodegrpch_nodepurge() {
    let x = Xcat::new();
    assert_eq!(x.ok("gettab", &["key=xcatdport", "site.value"]), "3001\n");
    assert_eq!(
        x.ok("gettab", &["-H", "key=xcatdport", "site.value"]),
        "site.value: 3001\n"
    );
    let e = x.fails("gettab", &["-H", "groups=master", "site.key"]);
    assert!(e.contains("Error: Unknown key groups to site"), "{e}");
    // tabgrep names the tables that hold the node (tables sorted here; xCAT's are hash-ordered).
    x.ok(
        "mkdef",
        &[
            "-t",
            "node",
            "testnode",
            "groups=all",
            "mgt=ipmi",
            "ip=10.9.0.1",
        ],
    );
    assert_eq!(x.ok("tabgrep", &["testnode"]), "hosts\nnodehm\nnodelist\n");
    let e = x.fails("tabgrep", &["nonode"]);
    assert!(
        e.contains("Invalid nodes and/or groups in noderange: nonode"),
        "{e}"
    );
    // nodegrpch sets the group's own row; members inherit it.
    x.ok(
        "chdef",
        &["-t", "node", "-o", "gnode", "groups=rh4.1234567890"],
    );
    x.ok("nodegrpch", &["rh4.1234567890", "nodehm.mgt=hmc"]);
    assert!(x
        .ok("lsdef", &["-t", "node", "-o", "gnode", "-i", "mgt"])
        .contains("mgt=hmc"));
    let e = x.fails("nodegrpch", &["rh4.1234567890", "nodelist.groups=x"]);
    assert!(
        e.contains("Group membership is not changeable via nodegrpch"),
        "{e}"
    );
    let e = x.fails("nodegrpch", &["rh4.1234567890", "nodehm.mgt,=x"]);
    assert!(
        e.contains(",= and ^= are not supported by nodegrpch"),
        "{e}"
    );
    // nodepurge: the node's hosts lines go, then its definition.
    let hosts = x.bh.file(
        "hosts",
        "127.0.0.1 localhost\n10.9.0.1 testnode testnode.cluster\n10.9.0.2 other\n",
    );
    let o = x
        .cmd("nodepurge", &["testnode", "--hosts-file", &hosts])
        .output()
        .expect("nodepurge");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(&hosts).expect("hosts"),
        "127.0.0.1 localhost\n10.9.0.2 other\n"
    );
    assert!(std::fs::read_to_string(format!("{hosts}.xcatbak"))
        .expect("backup")
        .contains("testnode"));
    let e = x.fails("lsdef", &["-t", "node", "testnode"]);
    assert!(
        e.contains("Could not find an object named 'testnode' of type 'node'."),
        "{e}"
    );
}

#[test]
fn tabprune_the_audit_and_event_logs() {
    let x = Xcat::new();
    x.ok("chtab", &["key=auditskipcmds", "site.value="]);
    for i in 0..6 {
        x.ok(
            "chtab",
            &["key=domain", &format!("site.value=d{i}.example")],
        );
    }
    let rows = |x: &Xcat| x.ok("tabdump", &["auditlog"]).lines().count() - 1;
    let before = rows(&x);
    assert!(before >= 7, "{before} audit rows");
    // -V -n 3: the three oldest, printed as tabdump prints them.
    let out = x.ok("tabprune", &["auditlog", "-V", "-n", "3"]);
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(out.starts_with("#recid,audittime,"), "{out}");
    // Every request is audited before it runs, as xcatd audits it: the tabprune's own row and
    // the counting tabdump's are added.
    assert_eq!(rows(&x), before - 3 + 2);
    assert_eq!(
        x.ok("tabprune", &["auditlog", "-p", "50"]),
        "tabprune of auditlog complete.\n"
    );
    // -p 50: half of the rows there were (the tabprune's own included) are gone.
    let after = rows(&x);
    assert!(
        after <= before.div_ceil(2) + 1,
        "{after} of {before} rows left"
    );
    assert_eq!(
        x.ok("tabprune", &["auditlog", "-a"]),
        "tabprune of auditlog complete.\n"
    );
    assert_eq!(rows(&x), 1, "only the counting tabdump's own row");
    for (args, msg) in [
        (vec![], "Table name required."),
        (
            vec!["nodelist", "-n", "1"],
            "Table nodelist not supported, see tabprune -h for supported tables.",
        ),
        (
            vec!["auditlog"],
            "One option -p or -i or -n or -a or -d must be supplied.",
        ),
        (
            vec!["auditlog", "-a", "-n", "2"],
            "Only one option -p or -i or -n or -a maybe used at a time.",
        ),
    ] {
        let e = x.fails("tabprune", &args);
        assert_eq!(e, format!("{msg}\n"), "tabprune {args:?}");
    }
}

#[test]
fn dumpxcatdb_and_restorexcatdb_round_trip() {
    let x = Xcat::new();
    x.ok(
        "nodeadd",
        &[
            "cn[01-04]",
            "groups=compute,all",
            "hosts.ip=|cn(\\d+)|10.0.0.($1+0)|",
        ],
    );
    x.ok(
        "chtab",
        &[
            "key=system",
            "passwd.username=root",
            "passwd.password=secret",
        ],
    );
    x.ok("chtab", &["key=auditskipcmds", "site.value="]);
    let dir = x.bh.path("db");
    let d = dir.to_str().expect("path");
    let out = x.ok("dumpxCATdb", &["-p", d, "-V"]);
    assert!(
        out.contains("Skipping eventlog\n") && out.contains("Skipping auditlog\n"),
        "{out}"
    );
    assert!(out.contains("Dumping site\n"), "{out}");
    assert!(out.ends_with("Backup Complete.\n"), "{out}");
    assert!(dir.join("site.csv").exists() && !dir.join("auditlog.csv").exists());
    // -a includes the logs; site.skiptables leaves tables out.
    let all = x.bh.path("all");
    x.ok("dumpxCATdb", &["-a", "-p", all.to_str().expect("path")]);
    assert!(all.join("auditlog.csv").exists() && all.join("eventlog.csv").exists());
    x.ok("chtab", &["key=skiptables", "site.value=hosts,passwd"]);
    let sk = x.bh.path("skip");
    let out = x.ok("dumpxCATdb", &["-p", sk.to_str().expect("path"), "-V"]);
    assert!(out.contains("Skipping passwd\n"), "{out}");
    assert!(!sk.join("hosts.csv").exists() && !sk.join("passwd.csv").exists());
    x.ok("chtab", &["key=skiptables", "site.value="]);
    // Restore into a fresh store: every table reads back as it was dumped.
    let y = Xcat::new();
    let out = y.ok("restorexCATdb", &["-p", d]);
    assert!(out.ends_with("Restore of Database Complete.\n"), "{out}");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("readdir") {
        let p = e.expect("entry").path();
        let t = p
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_string();
        let want = std::fs::read_to_string(&p).expect("read");
        assert_eq!(y.ok("tabdump", &[&t]), want, "table {t}");
        n += 1;
    }
    assert!(n > 40, "{n} tables dumped");
    assert_eq!(y.ok("nodels", &["cn03", "hosts.ip"]), "cn03: 10.0.0.3\n");
    let e = x.fails("dumpxCATdb", &[]);
    assert!(
        e.contains("Requires -p with path to directory to hold db files."),
        "{e}"
    );
    let e = x.fails("restorexCATdb", &["-p", "/nonexistent/dir"]);
    assert!(e.contains("Input path must exist"), "{e}");
}

#[test]
fn bare_numbers_take_xcat_node_prefix_and_suffix() {
    let x = Xcat::new();
    x.ok("nodeadd", &["node5,cn5-ib,cn6-ib", "groups=all"]);
    assert_eq!(x.ok("nodels", &["5"]), "node5\n");
    let o = x
        .cmd("nodels", &["5-6"])
        .env("XCAT_NODE_PREFIX", "cn")
        .env("XCAT_NODE_SUFFIX", "-ib")
        .output()
        .expect("nodels");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "cn5-ib\ncn6-ib\n");
}

/// The acceptance script: written as for an xCAT management node, run with the command links
/// first in PATH. It defines a cluster, dumps it with lsdef -z, rebuilds it on a fresh store with
/// mkdef -z, and checks that dumpxCATdb/restorexCATdb round trips change nothing.
#[test]
fn an_xcat_script_defines_dumps_and_restores_a_cluster() {
    let x = Xcat::new();
    let fresh = Bh::new();
    let fresh2 = Bh::new();
    let work = x.bh.path("work");
    std::fs::create_dir_all(&work).expect("mkdir");
    let script = r#"
set -e
chtab key=domain site.value=cluster.example
chtab key=system passwd.username=root passwd.password=cluster
chdef -t network -o net10 net=10.0.0.0 mask=255.255.0.0 gateway=10.0.0.254 dhcpserver=10.0.0.1
nodeadd cn[001-008] groups=compute,all
chtab node=compute nodehm.mgt=ipmi noderes.netboot=xnba 'hosts.ip=|\D+(\d+)$|10.0.1.($1+0)|' 'ipmi.bmc=|\D+(\d+)$|10.0.2.($1+0)|'
chdef -t group compute os=rhels9.4 arch=x86_64 profile=compute
chdef gpu01 groups=gpu,compute,all ip=10.0.3.1 mac=52:54:00:00:03:01
chdef -t group -o gpu -p members=cn008
chdef -t osimage -o rhels9.4-x86_64-netboot-compute imagetype=linux provmethod=netboot osvers=rhels9.4 osarch=x86_64 profile=compute
mkdef -t group -o ipmi-nodes -d -w mgt==ipmi
dumpxCATdb -p db1
BOOTHERD_DB=$FRESH restorexCATdb -p db1
BOOTHERD_DB=$FRESH dumpxCATdb -p db2
for f in db1/*.csv; do cmp "$f" "db2/$(basename "$f")"; done
lsdef -t node,group,osimage,network -z > before.stanza
BOOTHERD_DB=$FRESH2 mkdef -z < before.stanza
BOOTHERD_DB=$FRESH2 lsdef -t node,group,osimage,network -z > after.stanza
cmp before.stanza after.stanza
nodels ipmi-nodes
"#;
    let path = std::env::var("PATH").unwrap_or_default();
    let o = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(&work)
        .env("PATH", format!("{}:{path}", x.bindir.display()))
        .env("BOOTHERD_DB", &x.bh.db)
        .env("FRESH", &fresh.db)
        .env("FRESH2", &fresh2.db)
        .env_remove("XCAT_SKIPTABLES")
        .output()
        .expect("sh");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "script failed:\nstdout: {out}\nstderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The dynamic group holds the ipmi nodes (gpu01 inherits mgt from compute).
    assert!(
        out.ends_with("cn001\ncn002\ncn003\ncn004\ncn005\ncn006\ncn007\ncn008\ngpu01\n"),
        "{out}"
    );
    let stanza = std::fs::read_to_string(work.join("before.stanza")).expect("stanza");
    for want in [
        "# <xCAT data object stanza file>\n",
        "\ncn003:\n    objtype=node\n",
        "    ip=10.0.1.3\n",
        "    bmc=10.0.2.3\n",
        "\nnet10:\n    objtype=network\n",
        "    wherevals=mgt==ipmi\n",
    ] {
        assert!(stanza.contains(want), "stanza lacks {want:?}:\n{stanza}");
    }
}

#[test]
fn a_lone_capture_keeps_its_zero_padding_as_xcat_documents() {
    // xCAT's "Using Regular Expressions in the xCAT Tables", fourth example: $1 is "01", and
    // c($1)f($2)x($3) is "c01f02x03"; ($4+0) is an expression, so 4.
    let x = Xcat::new();
    x.ok(
        "chtab",
        &[
            "node=kvms",
            r"vm.host=|\D+(\d+)\D+(\d+)\D+(\d+)\D+(\d+)|c($1)f($2)x($3)|",
            r"vm.storage=|\D+(\d+)\D+(\d+)\D+(\d+)\D+(\d+)|dir:///install/vms/vm($4+0)|",
        ],
    );
    x.ok(
        "mkdef",
        &["-t", "node", "-o", "c01f02x03v04", "groups=kvms", "mgt=kvm"],
    );
    assert_eq!(
        x.ok("lsdef", &["c01f02x03v04", "-i", "vmhost,vmstorage"]),
        "Object name: c01f02x03v04\n    vmhost=c01f02x03\n    vmstorage=dir:///install/vms/vm4\n"
    );
}

/// A new store holds what xCAT's xcatconfig (initDB) puts in a new database.
#[test]
fn a_new_store_is_seeded_as_xcatconfig_seeds_one() {
    let x = Xcat::new();
    let host = nix::unistd::gethostname()
        .expect("hostname")
        .into_string()
        .expect("utf-8");
    assert_eq!(
        x.ok("tabdump", &["policy"]),
        format!(
            "#priority,name,host,commands,noderange,parameters,time,rule,comments,disable\n\
         \"1\",\"root\",,,,,,\"allow\",,\n\
         \"1.2\",\"{host}\",,,,,,\"trusted\",,\n\
         \"2\",,,\"getbmcconfig\",,,,\"allow\",,\n\
         \"2.1\",,,\"remoteimmsetup\",,,,\"allow\",,\n\
         \"2.3\",,,\"lsxcatd\",,,,\"allow\",,\n\
         \"3\",,,\"nextdestiny\",,,,\"allow\",,\n\
         \"4\",,,\"getdestiny\",,,,\"allow\",,\n\
         \"4.4\",,,\"getpostscript\",,,,\"allow\",,\n\
         \"4.5\",,,\"getcredentials\",,,,\"allow\",,\n\
         \"4.6\",,,\"syncfiles\",,,,\"allow\",,\n\
         \"4.7\",,,\"litefile\",,,,\"allow\",,\n\
         \"4.8\",,,\"litetree\",,,,\"allow\",,\n\
         \"4.9\",,,\"getadapter\",,,,\"allow\",,\n"
        )
    );
    let site = x.ok("tabdump", &["site"]);
    for kv in [
        "\"SNsyncfiledir\",\"/var/xcat/syncfiles\"",
        "\"nodesyncfiledir\",\"/var/xcat/node/syncfiles\"",
        "\"vsftp\",\"n\"",
        "\"cleanupxcatpost\",\"no\"",
        "\"xcattlspolicy\",\"modern\"",
        "\"sshbetweennodes\",\"ALLGROUPS\"",
        "\"dhcplease\",\"43200\"",
    ] {
        assert!(site.contains(kv), "site lacks {kv}: {site}");
    }
    assert_eq!(x.ok("gettab", &["key=vsftp", "site.value"]), "n\n");
}

/// makedhcp -n on a machine without the named interfaces (a container, a namespace) warns and
/// exits 0 as xCAT's does; a node with a MAC and no address is warned about and still defined;
/// only a broken configuration is an error.
#[test]
fn makedhcp_warns_where_xcat_warns() {
    let x = Xcat::new();
    x.ok("chtab", &["key=dhcpinterfaces", "site.value=nosuchif0"]);
    x.ok(
        "chdef",
        &[
            "-t",
            "network",
            "-o",
            "lab",
            "net=10.77.0.0",
            "mask=255.255.255.0",
        ],
    );
    let r = x.run("makedhcp", &["-n"]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(
        r.err.contains("Warning: site.dhcpinterfaces: nosuchif0"),
        "{}",
        r.err
    );
    // MAC, no IP (the xCAT makedhcp_a_linux case): a warning, exit 0.
    x.ok(
        "mkdef",
        &[
            "-t",
            "node",
            "-o",
            "testnode1",
            "groups=compute",
            "mac=11:22:33:44:55:66",
            "arch=ppc64",
        ],
    );
    let r = x.run("makedhcp", &["-a"]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(
        r.err
            .contains("Warning: The hostname testnode1 of node testnode1 could not be resolved.\n"),
        "{}",
        r.err
    );
    // No MAC: xCAT's warning.
    x.ok(
        "mkdef",
        &["-t", "node", "-o", "testnode2", "groups=compute"],
    );
    let r = x.run("makedhcp", &["testnode2"]);
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(
        r.err
            .contains("Warning: Unable to find mac address for testnode2\n"),
        "{}",
        r.err
    );
    // A network whose address is not one: the configuration is broken, exit 1.
    x.ok(
        "chtab",
        &["net=10.0.0.300,mask=255.255.255.0", "networks.netname=bad"],
    );
    let r = x.run("makedhcp", &["-n"]);
    assert_eq!(r.code, 1, "{}", r.both());
    assert!(r.err.contains("Error: network 'bad'"), "{}", r.err);
}

/// makehosts rewrites the hosts file in place (it may be a bind mount, which a rename cannot
/// replace) after copying it to <file>.xcatbak, as hosts.pm copies /etc/hosts to
/// /etc/hosts.xcatbak.
#[test]
fn makehosts_edits_the_file_in_place_and_keeps_a_backup() {
    use std::os::unix::fs::MetadataExt;
    let x = Xcat::new();
    x.ok("nodeadd", &["cn1", "groups=all", "hosts.ip=10.5.0.1"]);
    let hosts = x.bh.file("hosts", "127.0.0.1 localhost\n");
    let before = std::fs::metadata(&hosts).expect("stat").ino();
    x.ok("makehosts", &["--file", &hosts]);
    assert_eq!(
        std::fs::metadata(&hosts).expect("stat").ino(),
        before,
        "same file, not a new one"
    );
    let text = std::fs::read_to_string(&hosts).expect("read");
    assert!(
        text.starts_with("127.0.0.1 localhost\n10.5.0.1 cn1"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{hosts}.xcatbak")).expect("backup"),
        "127.0.0.1 localhost\n"
    );
    // The nics table's addresses get lines too (xCAT's makehosts_null case): from a group's
    // regex rows, named <node>-<nic> with the NIC's aliases.
    x.ok(
        "chtab",
        &[
            "node=ibnodes",
            r"nics.nicips=ib0!|node(\d+)|10.0.0.($1+20)|",
            r"nics.nicaliases=ib0!|node(\d+)|m($1)-ib0|",
        ],
    );
    x.ok(
        "nodeadd",
        &["node01", "groups=ibnodes", "hosts.ip=10.5.0.11"],
    );
    x.ok("makehosts", &["--file", &hosts, "node01"]);
    let text = std::fs::read_to_string(&hosts).expect("read");
    assert!(
        text.contains("\n10.0.0.21 node01-ib0 node01-ib0.cluster m01-ib0\n"),
        "{text}"
    );
}

/// lsdef --template lists the templates under xCAT's names; mkdef --template fills a new object
/// from one (MANDATORY attributes must be given, OPTIONAL ones are dropped) or from an existing
/// object (DBobjectdefs.pm).
#[test]
fn object_templates() {
    let x = Xcat::new();
    // The names xCAT ships, listed as "name  (type)" when none is named (defls).
    let list = x.ok("lsdef", &["--template"]);
    for t in [
        "cec-template",
        "hmc-template",
        "ppc64le-template",
        "ppc64lekvmguest-template",
        "switch-template",
        "x86_64-template",
        "x86_64kvmguest-template",
    ] {
        assert!(
            list.contains(&format!("{t}  (node)\n")),
            "{t} missing: {list}"
        );
    }
    let cec = x.ok("lsdef", &["--template", "cec-template"]);
    assert!(
        cec.starts_with("Object name: cec-template\n")
            && cec.contains("    mgt=hmc\n")
            && cec.contains("    usercomment=the cec definition template\n"),
        "{cec}"
    );
    assert!(x
        .ok("lsdef", &["--template", "switch-template", "-z"])
        .starts_with("# <xCAT data object stanza file>\n\nswitch-template:\n    objtype=node\n"));
    let e = x.fails("lsdef", &["--template", "nosuch-template"]);
    assert!(
        e.contains("Could not find nosuch-template in xCAT templates."),
        "{e}"
    );
    let e = x.fails(
        "mkdef",
        &[
            "-t",
            "node",
            "-o",
            "cn1",
            "--template",
            "x86_64-template",
            "ip=10.0.0.1",
        ],
    );
    assert!(
        e.contains("The attribute \"bmc\" must be specified!"),
        "{e}"
    );
    x.ok(
        "mkdef",
        &[
            "-t",
            "node",
            "-o",
            "cn1",
            "--template",
            "x86_64-template",
            "ip=10.0.0.1",
            "bmc=10.1.0.1",
        ],
    );
    let l = x.ok("lsdef", &["cn1"]);
    for want in [
        "    arch=x86_64\n",
        "    mgt=ipmi\n",
        "    netboot=xnba\n",
        "    groups=all\n",
        "    bmc=10.1.0.1\n",
    ] {
        assert!(l.contains(want), "{want:?} missing:\n{l}");
    }
    assert!(!l.contains("OPTIONAL") && !l.contains("    mac="), "{l}");
    // An existing node as the template.
    x.ok(
        "mkdef",
        &[
            "-t",
            "node",
            "-o",
            "cn2",
            "--template",
            "cn1",
            "ip=10.0.0.2",
        ],
    );
    let l = x.ok("lsdef", &["cn2", "-i", "ip,bmc,mgt"]);
    assert_eq!(
        l,
        "Object name: cn2\n    bmc=10.1.0.1\n    ip=10.0.0.2\n    mgt=ipmi\n"
    );
    let e = x.fails(
        "mkdef",
        &[
            "-t",
            "node",
            "-o",
            "cn3",
            "--template",
            "nosuch",
            "groups=all",
        ],
    );
    assert!(
        e.contains("Could not find the template object named 'nosuch' of type 'node'."),
        "{e}"
    );
}

/// mkdef/chdef -t osimage -u fill what xCAT's parse_attr_for_osimage fills without files.
#[test]
fn osimage_u_fills_the_definition() {
    let x = Xcat::new();
    // xCAT's parse_attr_for_osimage: the profile's files found custom-first, then shipped
    // (bootherd ships netboot/rh/compute.{pkglist,exlist,postinstall}), and the directories.
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/netboot-templates/netboot/rh");
    let installdir = x.bh.path("install");
    std::fs::create_dir_all(installdir.join("custom/netboot/rh")).expect("mkdir custom");
    std::fs::write(
        installdir.join("custom/netboot/rh/compute.rhels9.pkglist"),
        "bash\n",
    )
    .expect("custom pkglist");
    x.ok(
        "chdef",
        &[
            "-t",
            "site",
            &format!("installdir={}", installdir.display()),
        ],
    );
    x.ok(
        "mkdef",
        &[
            "-t",
            "osimage",
            "-o",
            "img1",
            "-u",
            "profile=compute",
            "provmethod=statelite",
            "osvers=rhels9.4",
            "osarch=x86_64",
        ],
    );
    let i = installdir.display();
    assert_eq!(
        x.ok("lsdef", &["-t", "osimage", "img1"]),
        format!("Object name: img1\n    exlist={shipped}/compute.exlist\n    imagetype=linux\n    objtype=osimage\n    osarch=x86_64\n    osdistroname=rhels9.4-x86_64\n    osname=Linux\n    osvers=rhels9.4\n    otherpkgdir={i}/post/otherpkgs/rhels9.4/x86_64\n    pkgdir={i}/rhels9.4/x86_64\n    pkglist={i}/custom/netboot/rh/compute.rhels9.pkglist\n    postinstall={shipped}/compute.postinstall\n    profile=compute\n    provmethod=statelite\n    rootimgdir={i}/netboot/rhels9.4/x86_64/compute\n")
    );
    // What the command line gives is kept.
    x.ok(
        "mkdef",
        &[
            "-t",
            "osimage",
            "-o",
            "img3",
            "-u",
            "profile=compute",
            "provmethod=netboot",
            "osvers=debian12",
            "osarch=x86_64",
            "pkglist=/srv/mine.pkglist",
            "rootimgdir=/srv/img3",
        ],
    );
    let l = x.ok(
        "lsdef",
        &["-t", "osimage", "img3", "-i", "pkglist,rootimgdir,exlist"],
    );
    assert!(
        l.contains("    pkglist=/srv/mine.pkglist\n") && l.contains("    rootimgdir=/srv/img3\n"),
        "{l}"
    );
    assert!(
        l.contains("/netboot-templates/netboot/debian/compute.exlist"),
        "{l}"
    );
    let e = x.fails(
        "mkdef",
        &["-t", "osimage", "-o", "img2", "-u", "profile=compute"],
    );
    assert!(
        e.contains("The profile and provmethod are all need to be specified."),
        "{e}"
    );
    let e = x.fails(
        "mkdef",
        &[
            "-t",
            "osimage",
            "-o",
            "img2",
            "-u",
            "profile=compute",
            "provmethod=foo",
        ],
    );
    assert!(e.contains("The provmethod: foo is incorrect."), "{e}");
    let e = x.fails("mkdef", &["-t", "node", "-o", "n1", "-u", "groups=all"]);
    assert!(
        e.contains("Option '-u' only work for objtype 'osimage'."),
        "{e}"
    );
    let e = x.fails(
        "chdef",
        &["-t", "osimage", "img1", "-u", "-p", "osarch=ppc64le"],
    );
    assert!(e.contains("Cannot use '-u' with '-p' or '-m'."), "{e}");
    x.ok("chdef", &["-t", "osimage", "img1", "-u", "osarch=ppc64le"]);
    assert!(x
        .ok("lsdef", &["-t", "osimage", "img1", "-i", "osdistroname"])
        .contains("osdistroname=rhels9.4-ppc64le"));
}

/// Validation as xCAT's: nic* attributes per NIC (`nicips.eth0`), merged with the NICs the
/// object has; `passwd.<user>` FSP logins only when mgt is fsp or bpa; only_if rules judged with
/// the values the node's groups supply; xCAT's message when a rule refuses.
#[test]
fn attributes_validated_as_xcat_validates_them() {
    let x = Xcat::new();
    x.ok(
        "mkdef",
        &[
            "n1",
            "groups=all",
            "nicips.eth0=10.0.0.1",
            "nicips.ib0=11.0.0.1",
            "nichostnamesuffixes.ib0=-ib",
        ],
    );
    assert_eq!(
        x.ok("lsdef", &["n1"]),
        "Object name: n1\n    groups=all\n    nichostnamesuffixes.ib0=-ib\n    nicips.eth0=10.0.0.1\n    nicips.ib0=11.0.0.1\n    objtype=node\n    postbootscripts=otherpkgs\n    postscripts=syslog,remoteshell,syncfiles\n"
    );
    x.ok("chdef", &["n1", "nicips.eth1=12.0.0.1", "nicips.ib0="]);
    assert_eq!(
        x.ok("nodels", &["n1", "nics.nicips"]),
        "n1: eth0!10.0.0.1,eth1!12.0.0.1\n"
    );
    // The stanza form carries them per NIC and reads back the same.
    let z = x.ok("lsdef", &["n1", "-z"]);
    assert!(
        z.contains("    nicips.eth0=10.0.0.1\n    nicips.eth1=12.0.0.1\n"),
        "{z}"
    );
    let y = Xcat::new();
    assert_eq!(y.run_in("mkdef", &["-z"], &z).code, 0);
    assert_eq!(y.ok("lsdef", &["n1", "-z"]), z);
    let e = x.fails("chdef", &["n1", "nicfoo.eth0=1"]);
    assert!(
        e.contains("'nicfoo' is not a valid attribute name for an object type of 'node'."),
        "{e}"
    );
    // passwd.HMC and friends (the xCAT chdef_multiple_keys case).
    x.ok(
        "mkdef",
        &[
            "-t",
            "node",
            "-o",
            "testfsp",
            "mgt=fsp",
            "cons=fsp",
            "groups=all,fsp",
            "nodetype=fsp",
            "passwd.HMC=abc123",
            "passwd.general=abc123",
            "passwd.admin=abc123",
        ],
    );
    let l = x.ok("lsdef", &["testfsp"]);
    for want in [
        "    passwd.HMC=abc123\n",
        "    passwd.general=abc123\n",
        "    passwd.admin=abc123\n",
    ] {
        assert!(l.contains(want), "{l}");
    }
    x.ok(
        "chdef",
        &[
            "-t",
            "node",
            "-o",
            "testfsp",
            "groups=fsp",
            "passwd.HMC=HMC",
            "passwd.general=general",
            "passwd.admin=admin",
        ],
    );
    let l = x.ok("lsdef", &["testfsp"]);
    for want in [
        "    passwd.HMC=HMC\n",
        "    passwd.general=general\n",
        "    passwd.admin=admin\n",
    ] {
        assert!(l.contains(want), "{l}");
    }
    let e = x.fails("mkdef", &["n2", "groups=all", "passwd.HMC=x"]);
    assert!(
        e.contains("Cannot set the attr='passwd.HMC' attribute unless mgt value is bpa or fsp."),
        "{e}"
    );
    x.ok("rmdef", &["testfsp"]);
    assert_eq!(x.ok("tabdump", &["ppcdirect"]).lines().count(), 1);
    // bmc needs mgt ipmi or openbmc; a group can supply it.
    let e = x.fails("mkdef", &["n3", "groups=all", "bmc=10.1.0.3"]);
    assert!(
        e.contains("Cannot set the attr='bmc' attribute unless mgt value is ipmi or openbmc."),
        "{e}"
    );
    x.ok("chdef", &["-t", "group", "compute", "mgt=ipmi"]);
    x.ok("mkdef", &["n3", "groups=compute,all", "bmc=10.1.0.3"]);
    assert_eq!(x.ok("nodels", &["n3", "ipmi.bmc"]), "n3: 10.1.0.3\n");
}

/// lslite in the layout of xCAT's litetree.pm.
#[test]
fn lslite_summarises_statelite_settings() {
    let x = Xcat::new();
    x.ok(
        "mkdef",
        &[
            "-t",
            "osimage",
            "-o",
            "img1",
            "-u",
            "profile=compute",
            "provmethod=statelite",
            "osvers=rhels9.4",
            "osarch=x86_64",
        ],
    );
    x.ok(
        "mkdef",
        &[
            "n1",
            "groups=all",
            "os=rhels9.4",
            "arch=x86_64",
            "profile=compute",
            "provmethod=img1",
        ],
    );
    x.ok(
        "chtab",
        &["image=ALL,file=/xcatpost", "litefile.options=tmpfs"],
    );
    x.ok(
        "chtab",
        &["node=n1", "statelite.statemnt=10.0.0.1:/nodedata"],
    );
    x.ok(
        "chtab",
        &[
            "priority=2",
            "litetree.directory=test.server:/statelite/test",
        ],
    );
    let out = x.ok("lslite", &["n1"]);
    assert!(out.starts_with(">>>Node: n1\n\nOsimage: img1\n\nPersistent directory (statelite table):\n        10.0.0.1:/nodedata\n\n\nLitefiles (litefile table):\n"), "{out}");
    assert!(
        out.contains(&format!("        {:<13} /xcatpost\n", "tmpfs")),
        "{out}"
    );
    assert!(
        out.contains("Litetree path (litetree table):\n        2, test.server:/statelite/test\n"),
        "{out}"
    );
    let img = x.ok("lslite", &["-i", "img1"]);
    assert!(img.contains("        tmpfs         /xcatpost\n"), "{img}");
    assert!(!img.contains("Error"), "{img}");
    let e = x.fails("lslite", &["-i", "nosuch"]);
    assert!(
        e.contains("The osimage named 'nosuch' is not defined."),
        "{e}"
    );
    let r = x.run("lslite", &["-h"]);
    assert_eq!(r.code, 0);
    assert!(r.out.contains("Usage"), "{}", r.out);
}

/// regnotif: the daemon runs a registered command for each matching change, with the change on
/// its standard input in xCAT's NotifHandler format; unregnotif stops it.
#[test]
fn regnotif_commands_run_on_table_changes() {
    let x = Xcat::new();
    // Registration, as the xCAT regnotif_o case checks it.
    x.ok("regnotif", &["test.pm", "nodelist", "-o", "a,d"]);
    assert!(x
        .ok("tabdump", &["notification"])
        .contains("\"test.pm\",\"nodelist\",\"a,d\""));
    x.ok("unregnotif", &["test.pm"]);
    assert_eq!(x.ok("tabdump", &["notification"]).lines().count(), 1);
    for args in [vec!["test.pm", "-o", "a,d"], vec!["nodelist"], vec![]] {
        let r = x.run("regnotif", &args);
        assert_eq!(r.code, 0);
        assert!(r.out.contains("Usage"), "{args:?}: {}", r.both());
    }
    assert!(x
        .ok("regnotif", &["x", "nodelist", "-o", "q"])
        .contains("Invalid table operations: q"));
    // A command that appends what it reads to a file.
    let log = x.bh.path("notif.log");
    let script = x.bh.file(
        "notif.sh",
        &format!(
            "#!/bin/sh\ncat >> {}\necho --- >> {}\n",
            log.display(),
            log.display()
        ),
    );
    std::process::Command::new("chmod")
        .args(["+x", &script])
        .status()
        .expect("chmod");
    x.ok("regnotif", &[&script, "nodelist,nodehm", "-o", "a,u"]);
    let ns = common::Netns::new("notif");
    let d = common::Daemon::start(
        &x.bh,
        &ns,
        &[
            "--no-dhcp",
            "--no-tftp",
            "--no-http",
            "--no-nfs",
            "--no-status-port",
            "--no-xcatd",
            "--no-findme-udp",
        ],
    );
    // Each change is waited for: the command sees the row as it is when it runs.
    let wait = |n: usize| -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.matches("---").count() >= n || std::time::Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    x.ok("nodeadd", &["n1", "groups=all"]);
    wait(1);
    x.ok("chtab", &["node=n1", "nodehm.mgt=ipmi"]);
    wait(2);
    x.ok("chtab", &["node=n1", "nodehm.mgt=openbmc"]);
    let text = wait(3);
    assert_eq!(
        text,
        "a\nnodelist\n[old data]\n[new data]\nnode,groups\nn1,all\n---\n\
         a\nnodehm\n[old data]\n[new data]\nnode,mgt\nn1,ipmi\n---\n\
         u\nnodehm\n[old data]\n[new data]\nnode,mgt\nn1,openbmc\n---\n",
        "{}",
        d.dump()
    );
    // d is not registered; after unregnotif nothing runs at all.
    x.ok("noderm", &["n1"]);
    x.ok("unregnotif", &[&script]);
    x.ok("nodeadd", &["n2", "groups=all"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(std::fs::read_to_string(&log).unwrap_or_default(), text);
    d.stop();
}

/// lsdef -a lists every object as "name (type)"; with several types the long form names the type
/// (DBobjectdefs.pm defls).
#[test]
fn lsdef_all_and_several_types() {
    let x = Xcat::new();
    x.ok("mkdef", &["-t", "node", "-o", "testnode", "groups=all"]);
    x.ok(
        "mkdef",
        &[
            "-t",
            "network",
            "-o",
            "testnetwork",
            "net=1.2.3.0",
            "mask=255.255.255.0",
        ],
    );
    for flag in ["-a", "--all"] {
        let out = x.ok("lsdef", &[flag]);
        for want in [
            "testnode (node)\n",
            "testnetwork (network)\n",
            "clustersite (site)\n",
        ] {
            assert!(out.contains(want), "{flag}: {out}");
        }
    }
    let e = x.fails("lsdef", &["-a", "-t", "node"]);
    assert!(
        e.contains("The flags '-a' and '-t' cannot be used together."),
        "{e}"
    );
    assert_eq!(
        x.ok("lsdef", &["-t", "node,network", "-l"]),
        "Object name: testnode  (node)\n    groups=all\n    objtype=node\n    postbootscripts=otherpkgs\n    postscripts=syslog,remoteshell,syncfiles\nObject name: testnetwork  (network)\n    mask=255.255.255.0\n    net=1.2.3.0\n    objtype=network\n"
    );
    assert_eq!(
        x.ok("lsdef", &["-t", "network", "-i", "net"]),
        "Object name: testnetwork\n    net=1.2.3.0\n"
    );
}

/// tabdump -d site lists the site keys under the key column, as xCAT's description does.
#[test]
fn tabdump_d_site_lists_the_keys() {
    let x = Xcat::new();
    let d = x.ok("tabdump", &["-d", "site"]);
    assert!(
        d.starts_with("key:\t\tAttribute Name:  Description\n"),
        "{d}"
    );
    for k in [
        "dhcpinterfaces",
        "installdir",
        "tftpdir",
        "master",
        "skiptables",
        "xcatdport",
    ] {
        assert!(d.contains(&format!("\n {k}:  ")), "{k} missing:\n{d}");
    }
    let cols: Vec<&str> = d
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.is_empty())
        .map(|l| l.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(cols, ["key", "value", "comments", "disable"]);
    let e = x.fails("tabdump", &["-d", "nosuch"]);
    assert!(e.contains("table nosuch does not exist."), "{e}");
}

/// lsdef -i shows each asked-for attribute even when it is not set (xCAT's defls), which scripts
/// rely on (`lsdef -t site clustersite -i dhcpsetup | grep dhcpsetup=`).
#[test]
fn lsdef_i_shows_unset_attributes() {
    let x = Xcat::new();
    assert_eq!(
        x.ok(
            "lsdef",
            &["-t", "site", "clustersite", "-i", "dhcpsetup,dhcplease"]
        ),
        "Object name: clustersite\n    dhcplease=43200\n    dhcpsetup=\n"
    );
    x.ok("mkdef", &["n1", "groups=all"]);
    assert_eq!(
        x.ok("lsdef", &["n1", "-i", "ip,groups"]),
        "Object name: n1\n    groups=all\n    ip=\n"
    );
}

/// The xcatdefaults scripts: lsdef shows them first in a node's lists (not in -z output), and
/// chdef drops ones already there with xCAT's warning (the xCAT chdef_t_node case).
#[test]
fn xcatdefaults_scripts_in_node_definitions() {
    let x = Xcat::new();
    x.ok(
        "chtab",
        &[
            "node=xcatdefaults",
            "postscripts.postscripts=syslog,remoteshell,syncfiles",
            "postscripts.postbootscripts=otherpkgs",
        ],
    );
    x.ok("mkdef", &["-t", "node", "-o", "testnode", "groups=all"]);
    let l = x.ok("lsdef", &["testnode"]);
    assert!(
        l.contains("    postscripts=syslog,remoteshell,syncfiles\n"),
        "{l}"
    );
    assert!(l.contains("    postbootscripts=otherpkgs\n"), "{l}");
    assert!(!x.ok("lsdef", &["testnode", "-z"]).contains("postscripts"));
    let r = x.run(
        "chdef",
        &[
            "-t",
            "node",
            "-o",
            "testnode",
            "postscripts=syslog,remoteshell,syncfiles,mine",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.both());
    for s in ["syslog", "remoteshell", "syncfiles"] {
        assert!(
            r.err.contains(&format!(
                "Warning: testnode: postscripts '{s}' is already included in the 'xcatdefaults'.\n"
            )),
            "{}",
            r.err
        );
    }
    assert!(!r.both().contains("Error"), "{}", r.both());
    let r = x.run(
        "chdef",
        &["-t", "node", "-o", "testnode", "postbootscripts=otherpkgs"],
    );
    assert!(r.err.contains("Warning: testnode: postbootscripts 'otherpkgs' is already included in the 'xcatdefaults'."), "{}", r.err);
    assert_eq!(
        x.ok("nodels", &["testnode", "postscripts.postscripts"]),
        "testnode: mine\n"
    );
    assert!(x
        .ok("lsdef", &["testnode"])
        .contains("    postscripts=syslog,remoteshell,syncfiles,mine\n"));
}

/// nodech's list operators as xCAT's (its nodech case): `,=` puts new values first, `^=` takes
/// values out, `=@=` keeps a leading `=`.
#[test]
fn nodech_list_operators() {
    let x = Xcat::new();
    x.ok(
        "chdef",
        &["-t", "node", "-o", "testnode", "groups=all,rhels5.5"],
    );
    x.ok("nodech", &["testnode", "groups,=rhels5.5,rhels5.6"]);
    assert_eq!(
        x.ok("nodels", &["testnode", "groups"]),
        "testnode: rhels5.6,all,rhels5.5\n"
    );
    x.ok("nodech", &["testnode", "groups^=rhels5.4,rhels5.5"]);
    assert_eq!(
        x.ok("nodels", &["testnode", "groups"]),
        "testnode: rhels5.6,all\n"
    );
    x.ok(
        "nodech",
        &["testnode", "groups^=rhels5.6", "groups,=rhels5.4"],
    );
    assert_eq!(
        x.ok("nodels", &["testnode", "groups"]),
        "testnode: rhels5.4,all\n"
    );
    x.ok("nodech", &["testnode", "nodetype.os=@=helloworld"]);
    assert!(x
        .ok("lsdef", &["-t", "node", "-i", "os", "testnode"])
        .contains("os==helloworld"));
    x.ok("nodech", &["testnode", "tags=rhels5.4"]);
    assert_eq!(
        x.ok("nodels", &["testnode", "groups"]),
        "testnode: rhels5.4\n"
    );
}

/// lsdef's output modes and their flag checks, as DBobjectdefs.pm's defls and processArgs:
/// `-c` prints "<object>: <attr>=<value>" and needs `-i`; `--nics` is `-i nicips,…`;
/// `--osimage` adds the osimage a node's provmethod names (or what os/arch/profile give).
#[test]
fn lsdef_compress_nics_and_osimage() {
    let x = Xcat::new();
    x.ok(
        "mkdef",
        &[
            "-t",
            "node",
            "-o",
            "cn1,cn2",
            "groups=all",
            "mgt=ipmi",
            "nicips.eth1=10.5.0.1",
            "nicnetworks.eth1=net5",
        ],
    );
    assert_eq!(
        x.ok("lsdef", &["cn1,cn2", "-c", "-i", "mgt,groups"]),
        "cn1: groups=all\ncn1: mgt=ipmi\ncn2: groups=all\ncn2: mgt=ipmi\n"
    );
    let e = x.fails("lsdef", &["cn1", "-c"]);
    assert!(
        e.contains("The flags '-c' and '-i' must be used together."),
        "{e}"
    );
    let e = x.fails("lsdef", &["cn1", "-l", "-s"]);
    assert!(
        e.contains("The flags '-l' and '-s' cannot be used together."),
        "{e}"
    );
    let e = x.fails("lsdef", &["cn1", "-i", "mgt", "--nics"]);
    assert!(
        e.contains("The flags '-i' and '--nics' cannot be used together."),
        "{e}"
    );
    let e = x.fails("lsdef", &["cn1", "-i", "mgt", "--osimage"]);
    assert!(
        e.contains("The flags '-i' and '--osimage' cannot be used together."),
        "{e}"
    );
    let e = x.fails("lsdef", &["cn1", "-z", "--osimage"]);
    assert!(
        e.contains("The flags '-z' and '--osimage' cannot be used together."),
        "{e}"
    );

    let nics = x.ok("lsdef", &["cn1", "--nics"]);
    assert_eq!(
        nics,
        "Object name: cn1\n    nicips.eth1=10.5.0.1\n    nicnetworks.eth1=net5\n",
    );
    assert_eq!(
        x.ok("lsdef", &["cn1", "--nics", "-c"]),
        "cn1: nicips.eth1=10.5.0.1\ncn1: nicnetworks.eth1=net5\n",
    );

    // provmethod names an osimage: its attributes follow the node's.
    x.ok(
        "mkdef",
        &[
            "-t",
            "osimage",
            "-o",
            "myimg",
            "imagetype=linux",
            "osvers=debian12",
            "osarch=x86_64",
            "provmethod=netboot",
            "profile=compute",
            "rootimgdir=/srv/myimg",
        ],
    );
    x.ok("chdef", &["cn1", "provmethod=myimg"]);
    let l = x.ok("lsdef", &["cn1", "--osimage"]);
    assert!(l.starts_with("Object name: cn1\n"), "{l}");
    assert!(l.contains("    provmethod=myimg\n"), "{l}");
    assert!(l.contains("    rootimgdir=/srv/myimg\n"), "{l}");
    assert!(l.contains("    osvers=debian12\n"), "{l}");
    // install/netboot/statelite: derived from os, arch and profile; missing ones are an error.
    x.ok(
        "chdef",
        &[
            "cn2",
            "provmethod=netboot",
            "os=debian12",
            "arch=x86_64",
            "profile=compute",
        ],
    );
    let l = x.ok("lsdef", &["cn2", "--osimage"]);
    assert!(
        l.contains("    rootimgdir=/install/netboot/debian12/x86_64/compute\n"),
        "{l}"
    );
    assert!(l.contains("    pkgdir=/install/debian12/x86_64\n"), "{l}");
    assert!(l.contains("/netboot/debian/compute.pkglist\n"), "{l}");
    x.ok("chdef", &["cn2", "profile="]);
    let e = x.fails("lsdef", &["cn2", "--osimage"]);
    assert!(
        e.contains("Error: Missing attributes for node cn2, check the node attributes 'os', 'arch','profile' and 'provmethod'."),
        "{e}"
    );
}

/// rmdef as DBobjectdefs.pm's defrm: `-a` needs `-f` and clears every definition, `-V` lists
/// what went, `-t` alone names nothing, `-w` is not supported.
#[test]
fn rmdef_all_verbose_and_refusals() {
    let x = Xcat::new();
    x.ok(
        "mkdef",
        &["-t", "node", "-o", "r1,r2,r3", "groups=all,rack1"],
    );
    x.ok(
        "mkdef",
        &[
            "-t",
            "network",
            "-o",
            "net9",
            "net=10.9.0.0",
            "mask=255.255.0.0",
        ],
    );
    let e = x.fails("rmdef", &["-t", "node"]);
    assert!(e.contains("Error: No object names were provided."), "{e}");
    assert!(
        e.contains("Usage: rmdef - Remove xCAT data object definitions."),
        "{e}"
    );
    let r = x.run("rmdef", &["-t", "node", "-w", "groups==rack1"]);
    assert!(
        r.out
            .contains("The '-w' option is not supported for the rmdef command."),
        "{}",
        r.both()
    );
    assert!(x.ok("nodels", &[]).contains("r1"), "nothing removed");

    assert_eq!(
        x.ok("rmdef", &["-V", "r2,r1"]),
        "The following objects were removed:\nr1\nr2\n"
    );
    assert_eq!(x.ok("nodels", &[]), "r3\n");

    let e = x.fails("rmdef", &["-a"]);
    assert!(
        e.contains("Error: You must use the '-f' option when using the '-a' option."),
        "{e}"
    );
    assert_eq!(x.ok("nodels", &[]), "r3\n", "nothing removed without -f");
    let out = x.ok("rmdef", &["-a", "-f"]);
    assert!(
        out.ends_with("object definitions have been removed.\n"),
        "{out}"
    );
    assert_eq!(x.ok("nodels", &[]), "");
    let r = x.run("lsdef", &["-t", "network"]);
    assert!(
        r.err
            .contains("Could not find any object definitions to display."),
        "{}",
        r.both()
    );
    // -C: the node and its leases go; boot files are rendered from the tables, so nothing is
    // left to clean on disk.
    x.ok(
        "mkdef",
        &[
            "-t",
            "node",
            "-o",
            "c1",
            "groups=all",
            "mac=52:54:00:00:00:c1",
        ],
    );
    x.ok(
        "chtab",
        &[
            "ip=10.9.0.5",
            "dhcpleases.mac=52:54:00:00:00:c1",
            "dhcpleases.node=c1",
            "dhcpleases.state=active",
        ],
    );
    assert_eq!(
        x.ok("rmdef", &["-C", "c1"]),
        "1 object definitions have been removed.\n"
    );
    assert!(!x.ok("tabdump", &["dhcpleases"]).contains("c1"));
}

/// nodeset for an install image copies the installer's kernel and initrd from the copycds'd tree
/// into the TFTP root, as xCAT's nodeset does, and says xCAT's "Install image not found in …"
/// when the tree has none.
#[test]
fn nodeset_install_takes_the_kernel_from_the_install_tree() {
    let x = Xcat::new();
    let install = x.bh.path("install");
    let tftp = x.bh.path("tftpboot");
    std::fs::create_dir_all(&tftp).expect("tftp");
    x.ok(
        "chdef",
        &["-t", "site", &format!("installdir={}", install.display())],
    );
    x.ok(
        "chdef",
        &["-t", "site", &format!("tftpdir={}", tftp.display())],
    );
    x.ok(
        "mkdef",
        &[
            "-t",
            "node",
            "-o",
            "testnode1",
            "groups=all",
            "arch=x86_64",
            "ip=10.1.1.200",
            "mac=e6:d4:d2:3a:ad:06",
            "netboot=xnba",
        ],
    );
    x.ok(
        "mkdef",
        &[
            "rhels6.99-x86_64-install-compute",
            "-u",
            "profile=compute",
            "provmethod=install",
            "osvers=rhels6.99",
            "osarch=x86_64",
        ],
    );
    let e = x.fails(
        "nodeset",
        &["testnode1", "osimage=rhels6.99-x86_64-install-compute"],
    );
    assert!(
        e.contains(&format!(
            "Install image not found in {}/rhels6.99/x86_64",
            install.display()
        )),
        "{e}"
    );
    let pxe = install.join("rhels6.99/x86_64/images/pxeboot");
    std::fs::create_dir_all(&pxe).expect("mkdir");
    std::fs::write(pxe.join("vmlinuz"), "kernel").expect("kernel");
    std::fs::write(pxe.join("initrd.img"), "initrd").expect("initrd");
    x.ok(
        "nodeset",
        &["testnode1", "osimage=rhels6.99-x86_64-install-compute"],
    );
    let staged = tftp.join("xcat/osimage/rhels6.99-x86_64-install-compute");
    assert_eq!(
        std::fs::read_to_string(staged.join("vmlinuz")).expect("staged"),
        "kernel"
    );
    assert_eq!(
        std::fs::read_to_string(staged.join("initrd.img")).expect("staged"),
        "initrd"
    );
}
