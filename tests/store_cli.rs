//! The table store through the admin commands, as an admin types them.

mod common;
use common::{data, Bh};

const DUMP_TABLES: &[&str] = &[
    "site", "nodelist", "nodetype", "noderes", "hosts", "mac", "litefile", "policy",
];

#[test]
fn xcat_dumps_round_trip_byte_for_byte() {
    let bh = Bh::new();
    for t in DUMP_TABLES {
        let file = data(&format!("xcat-dump/{t}.csv"));
        bh.ok(&["tabrestore", file.to_str().expect("path")]);
        let want = std::fs::read_to_string(&file).expect("read dump");
        assert_eq!(
            bh.ok(&["tabdump", t]),
            want,
            "tabdump {t} differs from what was restored"
        );
    }
    // And the dump restores into a second store identically (xCAT → bootherd → bootherd).
    let other = Bh::new();
    for t in DUMP_TABLES {
        let f = other.file(&format!("{t}.csv"), &bh.ok(&["tabdump", t]));
        other.ok(&["tabrestore", &f]);
        assert_eq!(other.ok(&["tabdump", t]), bh.ok(&["tabdump", t]));
    }
}

#[test]
fn tabrestore_replaces_and_addrows_adds() {
    let bh = Bh::new();
    let f = bh.file(
        "nodelist.csv",
        "#node,groups\n\"a\",\"all\"\n\"b\",\"all\"\n",
    );
    bh.ok(&["tabrestore", &f]);
    std::fs::create_dir_all(bh.path("more")).expect("mkdir");
    let more = bh.path("more/nodelist.csv");
    std::fs::write(&more, "#node,groups\n\"c\",\"all\"\n").expect("write");
    bh.ok(&["tabrestore", "-a", more.to_str().expect("path")]);
    assert_eq!(bh.ok(&["nodels"]), "a\nb\nc\n");
    bh.ok(&["tabrestore", more.to_str().expect("path")]);
    assert_eq!(bh.ok(&["nodels"]), "c\n");
}

#[test]
fn tabdump_lists_and_describes_tables() {
    let bh = Bh::new();
    let list = bh.ok(&["tabdump"]);
    for t in [
        "site",
        "nodelist",
        "nodehm",
        "noderes",
        "nodetype",
        "mac",
        "hosts",
        "ipmi",
        "networks",
        "chain",
        "switch",
        "switches",
        "vpd",
        "postscripts",
        "policy",
        "litefile",
        "litetree",
        "statelite",
        "osimage",
        "linuximage",
        "passwd",
        "bootparams",
        "nodegroup",
        "discoverydata",
        "auditlog",
        "eventlog",
        "notification",
        "monitoring",
        "nodepos",
        "servicenode",
    ] {
        assert!(list.lines().any(|l| l == t), "tabdump does not list {t}");
    }
    let mut sorted: Vec<&str> = list.lines().collect();
    sorted.sort();
    assert_eq!(
        sorted,
        list.lines().collect::<Vec<_>>(),
        "table list is sorted"
    );
    let d = bh.ok(&["tabdump", "-d", "mac"]);
    let first: Vec<&str> = d
        .lines()
        .map(|l| l.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(first, ["node", "interface", "mac", "comments", "disable"]);
    assert!(d.starts_with("node:\t\t"), "short names get two tabs: {d}");
    // A new store (made by the first write) carries xCAT's site defaults.
    bh.ok(&["chtab", "key=domain", "site.value=cluster.example"]);
    let site = bh.ok(&["tabdump", "site"]);
    for kv in [
        "\"installdir\",\"/install\"",
        "\"tftpdir\",\"/tftpboot\"",
        "\"dhcplease\",\"43200\"",
        "\"xcatdport\",\"3001\"",
    ] {
        assert!(site.contains(kv), "site defaults lack {kv}: {site}");
    }
    // -w filters rows.
    bh.ok(&["nodeadd", "n1,n2", "groups=all"]);
    assert_eq!(
        bh.ok(&["tabdump", "-w", "node==n2", "nodelist"])
            .lines()
            .nth(1),
        Some("\"n2\",\"all\",,,,,,,,,,,")
    );
}

/// The acceptance example: a compute group row with an arithmetic regex gives each node its IP.
#[test]
fn group_regex_rows_resolve_per_node() {
    let bh = Bh::new();
    bh.ok(&["nodeadd", "node001-node020", "groups=compute,all"]);
    bh.ok(&[
        "chtab",
        "node=compute",
        r"hosts.ip=|node(\d+)|10.0.0.($1+0)|",
    ]);
    assert_eq!(
        bh.ok(&["nodels", "node007", "hosts.ip"]),
        "node007: 10.0.0.7\n"
    );
    assert_eq!(
        bh.ok(&["nodels", "node020", "hosts.ip"]),
        "node020: 10.0.0.20\n"
    );
    // Plain /pat/repl/ substitution on the node name.
    bh.ok(&["chtab", "node=compute", r"ipmi.bmc=/\z/-bmc/"]);
    assert_eq!(
        bh.ok(&["nodels", "node003", "ipmi.bmc"]),
        "node003: node003-bmc\n"
    );
    // The node's own row wins over the group's.
    bh.ok(&["nodech", "node005", "hosts.ip=192.168.5.5"]);
    assert_eq!(
        bh.ok(&["nodels", "node004-node006", "hosts.ip"]),
        "node004: 10.0.0.4\nnode005: 192.168.5.5\nnode006: 10.0.0.6\n"
    );
    // An empty assignment overrides the group with nothing.
    bh.ok(&["nodech", "node006", "hosts.ip="]);
    assert_eq!(bh.ok(&["nodels", "node006", "hosts.ip"]), "node006: \n");
    // Two attributes: each line says which.
    bh.ok(&["chtab", "node=compute", "nodetype.os=rhels8.6"]);
    assert_eq!(
        bh.ok(&["nodels", "node001", "nodetype.os", "hosts.ip"]),
        "node001: nodetype.os: rhels8.6\nnode001: hosts.ip: 10.0.0.1\n"
    );
    assert_eq!(
        bh.ok(&["nodels", "-H", "node001", "hosts.ip"]),
        "node001: hosts.ip: 10.0.0.1\n"
    );
}

#[test]
fn first_group_in_nodelist_order_wins_and_hierarchical_attrs_concatenate() {
    let bh = Bh::new();
    bh.ok(&["nodeadd", "g1", "groups=gpu,compute,all"]);
    bh.ok(&["nodeadd", "c1", "groups=compute,gpu,all"]);
    bh.ok(&["chtab", "node=gpu", "nodetype.os=rhels9-gpu"]);
    bh.ok(&["chtab", "node=compute", "nodetype.os=rhels9"]);
    assert_eq!(
        bh.ok(&["nodels", "g1,c1", "nodetype.os"]),
        "c1: rhels9\ng1: rhels9-gpu\n"
    );
    // Without hierarchicalattrs the first value wins; with it, node then groups are joined.
    bh.ok(&[
        "chtab",
        "node=compute",
        "postscripts.postscripts=setupntp,mounts",
    ]);
    bh.ok(&["chtab", "node=gpu", "postscripts.postscripts=cuda,mounts"]);
    bh.ok(&["chtab", "node=g1", "postscripts.postscripts=ownscript"]);
    assert_eq!(
        bh.ok(&["nodels", "g1", "postscripts.postscripts"]),
        "g1: ownscript\n"
    );
    bh.ok(&["chtab", "key=hierarchicalattrs", "site.value=postscripts"]);
    assert_eq!(
        bh.ok(&["nodels", "g1", "postscripts.postscripts"]),
        "g1: ownscript,cuda,mounts,setupntp\n"
    );
    assert_eq!(
        bh.ok(&["nodels", "c1", "postscripts.postscripts"]),
        "c1: setupntp,mounts,cuda\n"
    );
}

#[test]
fn disabled_rows_are_ignored() {
    let bh = Bh::new();
    bh.ok(&[
        "tabrestore",
        data("xcat-dump/nodelist.csv").to_str().expect("path"),
    ]);
    let nodes = bh.ok(&["nodels"]);
    assert!(
        !nodes.contains("oldnode"),
        "a row with disable=1 is not a node: {nodes}"
    );
    assert!(nodes.contains("node003"));
    bh.ok(&["chtab", "node=compute", "nodetype.os=a"]);
    bh.ok(&[
        "chtab",
        "node=node001",
        "nodetype.os=b",
        "nodetype.disable=yes",
    ]);
    assert_eq!(bh.ok(&["nodels", "node001", "nodetype.os"]), "node001: a\n");
}

#[test]
fn noderange_grammar_through_nodels() {
    let bh = Bh::new();
    bh.ok(&["nodeadd", "node1-node20", "groups=compute,all"]);
    bh.ok(&["nodech", "node1-node10", "groups,=rack1"]);
    bh.ok(&["nodech", "node11-node20", "groups,=rack2"]);
    bh.ok(&["nodech", "/node(1|3|5|7|9|11|13|15|17|19)$", "groups,=odd"]);
    let ls = |r: &str| {
        bh.ok(&["nodels", r])
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(ls("node1-node3"), "node1,node2,node3");
    assert_eq!(ls("rack1,-odd"), "node10,node2,node4,node6,node8");
    assert_eq!(
        ls("compute@rack2,-node12"),
        "node11,node13,node14,node15,node16,node17,node18,node19,node20"
    );
    assert_eq!(ls("node10+3"), "node10,node11,node12,node13");
    assert_eq!(ls("nodelist.groups=~rack2").split(',').count(), 10);
    // Unknown names are reported, the rest listed.
    let o = bh.run(&["nodels", "node1,node99"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "node1\n");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("node99"),
        "missing node reported"
    );
    assert!(!o.status.success());
}

#[test]
fn bad_input_gives_clear_errors_and_changes_nothing() {
    let bh = Bh::new();
    bh.ok(&[
        "tabrestore",
        data("xcat-dump/nodelist.csv").to_str().expect("path"),
    ]);
    bh.ok(&[
        "tabrestore",
        data("xcat-dump/hosts.csv").to_str().expect("path"),
    ]);
    let before = bh.snapshot();

    // Malformed CSV: the error names the line; a good first row is not kept either.
    let f = bh.file(
        "nodelist.csv",
        "#node,groups\n\"n1\",\"all\"\n\"n2,\"all\"\n",
    );
    let e = bh.fail(&["tabrestore", &f]);
    assert!(e.contains("line 3") && e.contains('"'), "{e}");
    let f = bh.file("hosts.csv", "#node,ip,bogus\n\"n1\",\"1.2.3.4\",\"x\"\n");
    let e = bh.fail(&["tabrestore", &f]);
    assert!(e.contains("'bogus'") && e.contains("hosts"), "{e}");
    let f = bh.file("nosuchtable.csv", "#a\n\"b\"\n");
    let e = bh.fail(&["tabrestore", &f]);
    assert!(e.contains("nosuchtable"), "{e}");
    let f = bh.file("site.csv", "#key,value\n,\"x\"\n");
    let e = bh.fail(&["tabrestore", &f]);
    assert!(e.contains("key column 'key'"), "{e}");

    // Unknown tables and columns.
    assert!(
        bh.fail(&["tabdump", "nosuch"])
            .contains("No such table: nosuch")
            || bh
                .fail(&["tabdump", "nosuch"])
                .contains("no such table: nosuch")
    );
    let e = bh.fail(&["nodech", "node001", "nodelist.bogus=1"]);
    assert!(e.contains("nodelist.bogus"), "{e}");
    let e = bh.fail(&["nodels", "node001", "nosuch.col"]);
    assert!(e.contains("nosuch.col"), "{e}");
    let e = bh.fail(&["chtab", "node=node001", "nodetype.nope=1"]);
    assert!(e.contains("nope"), "{e}");

    // Impossible noderanges.
    let e = bh.fail(&["nodech", "node[1-", "groups=x"]);
    assert!(e.contains("node[1-"), "{e}");
    let e = bh.fail(&["nodels", "/node(", "nodelist.groups"]);
    assert!(e.contains("/node("), "{e}");

    assert_eq!(
        bh.snapshot(),
        before,
        "failed commands must leave the store unchanged"
    );

    // A broken regex row: reads say which value is broken, for which node, from which row.
    bh.ok(&["chtab", "node=compute", r"hosts.ip=|node(\d+|10.0.0.($1)|"]);
    let e = bh.fail(&["nodels", "node001", "hosts.ip"]);
    assert!(
        e.contains("hosts.ip") && e.contains("node001") && e.contains("compute"),
        "{e}"
    );
    assert!(
        e.contains(r"|node(\d+|10.0.0.($1)|"),
        "the broken value is quoted: {e}"
    );
}

#[test]
fn tabch_adds_updates_appends_and_deletes() {
    let bh = Bh::new();
    bh.ok(&["tabch", "key=domain", "site.value=example.org"]);
    assert_eq!(
        bh.ok(&["tabdump", "-w", "key==domain", "site"])
            .lines()
            .nth(1),
        Some("\"domain\",\"example.org\",,")
    );
    bh.ok(&[
        "tabch",
        "net=10.0.0.0,mask=255.255.255.0",
        "networks.netname=mgmt",
        "networks.gateway=10.0.0.254",
    ]);
    bh.ok(&[
        "tabch",
        "netname=mgmt",
        "networks.dynamicrange=10.0.0.200-10.0.0.250",
    ]);
    let nets = bh.ok(&["tabdump", "networks"]);
    assert!(
        nets.contains("\"mgmt\",\"10.0.0.0\",\"255.255.255.0\""),
        "{nets}"
    );
    assert!(nets.contains("\"10.0.0.200-10.0.0.250\""), "{nets}");
    bh.ok(&["chtab", "node=n1", "postscripts.postscripts=a,b"]);
    bh.ok(&["chtab", "node=n1", "postscripts.postscripts+=b,c"]);
    assert!(bh
        .ok(&["tabdump", "postscripts"])
        .contains("\"n1\",\"a,b,c\""));
    bh.ok(&["tabch", "-d", "node=n1", "postscripts"]);
    // The header and the xcatdefaults row a new store has.
    assert_eq!(bh.ok(&["tabdump", "postscripts"]).lines().count(), 2);
    let e = bh.fail(&["tabch", "netname=nonesuch", "networks.gateway=1.1.1.1"]);
    assert!(e.contains("net"), "a new networks row needs its keys: {e}");
}

#[test]
fn nodeadd_nodech_noderm_and_the_audit_log() {
    let bh = Bh::new();
    bh.ok(&[
        "nodeadd",
        "cn[01-04]",
        "groups=compute,all",
        "nodehm.mgt=ipmi",
        "mac.mac=52:54:00:00:00:01",
    ]);
    assert_eq!(bh.ok(&["nodels"]), "cn01\ncn02\ncn03\ncn04\n");
    assert_eq!(bh.ok(&["nodels", "cn02", "mgt"]), "cn02: ipmi\n");
    // `,=` puts a new value first, as xCAT's nodech does (its nodech case: groups=rhels5.6,all,rhels5.5).
    bh.ok(&["nodech", "compute", "groups,=gpu"]);
    assert_eq!(
        bh.ok(&["nodels", "cn01", "groups"]),
        "cn01: gpu,compute,all\n"
    );
    bh.ok(&["nodech", "cn01", "groups^=gpu"]);
    assert_eq!(bh.ok(&["nodels", "cn01", "groups"]), "cn01: compute,all\n");
    // Selectors choose which nodes change.
    bh.ok(&[
        "nodech",
        "compute",
        "nodelist.groups=~gpu",
        "nodetype.arch=ppc64le",
    ]);
    assert_eq!(
        bh.ok(&["nodels", "compute", "nodetype.arch"]),
        "cn01: \ncn02: ppc64le\ncn03: ppc64le\ncn04: ppc64le\n"
    );
    bh.ok(&["nodech", "-d", "cn04", "nodehm"]);
    assert_eq!(bh.ok(&["nodels", "cn04", "mgt"]), "cn04: \n");
    bh.ok(&["noderm", "cn03-cn04"]);
    assert_eq!(bh.ok(&["nodels"]), "cn01\ncn02\n");
    assert!(
        !bh.ok(&["tabdump", "mac"]).contains("cn03"),
        "noderm removes every row of the node"
    );
    let audit = bh.ok(&["tabdump", "auditlog"]);
    for cmd in ["nodeadd", "nodech", "noderm"] {
        assert!(
            audit.contains(&format!("\"{cmd}\"")),
            "auditlog lacks {cmd}: {audit}"
        );
    }
    assert!(
        audit.contains("\"cn[01-04]\""),
        "auditlog keeps the noderange: {audit}"
    );
    let e = bh.fail(&["nodeadd", "bad,name!", "groups=all"]);
    assert!(e.contains("name"), "{e}");
    let e = bh.fail(&["nodeadd", "x1"]);
    assert!(e.contains("groups") || e.contains("required"), "{e}");
}

#[test]
fn object_definitions_mkdef_lsdef_chdef_rmdef() {
    let bh = Bh::new();
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n1",
        "groups=compute,all",
        "ip=10.0.0.9",
        "mac=52:54:00:12:34:56",
        "netboot=xnba",
        "mgt=ipmi",
        "bmc=10.1.0.9",
        "os=rhels8.6",
        "arch=x86_64",
    ]);
    assert_eq!(bh.ok(&["nodels", "n1", "hosts.ip"]), "n1: 10.0.0.9\n");
    assert_eq!(bh.ok(&["nodels", "n1", "noderes.netboot"]), "n1: xnba\n");
    assert_eq!(bh.ok(&["nodels", "n1", "ipmi.bmc"]), "n1: 10.1.0.9\n");
    assert_eq!(
        bh.ok(&["lsdef", "n1"]),
        "Object name: n1\n    arch=x86_64\n    bmc=10.1.0.9\n    groups=compute,all\n    ip=10.0.0.9\n    mac=52:54:00:12:34:56\n    mgt=ipmi\n    netboot=xnba\n    objtype=node\n    os=rhels8.6\n    postbootscripts=otherpkgs\n    postscripts=syslog,remoteshell,syncfiles\n"
    );
    assert_eq!(
        bh.ok(&["lsdef", "n1", "-i", "ip,mac"]),
        "Object name: n1\n    ip=10.0.0.9\n    mac=52:54:00:12:34:56\n"
    );
    assert_eq!(bh.ok(&["lsdef"]), "n1  (node)\n");
    // Inherited values show too.
    let e = bh.fail(&["mkdef", "-t", "group", "-o", "compute", "installnic=mac"]);
    assert!(
        e.contains("already exists"),
        "compute exists through n1's groups: {e}"
    );
    bh.ok(&["chdef", "-t", "group", "-o", "compute", "installnic=mac"]);
    assert!(bh.ok(&["lsdef", "n1"]).contains("    installnic=mac\n"));
    let e = bh.fail(&["mkdef", "-t", "node", "-o", "n1", "groups=all"]);
    assert!(e.contains("already exists"), "{e}");
    bh.ok(&["chdef", "n1", "-p", "groups=gpu"]);
    assert_eq!(bh.ok(&["nodels", "n1", "groups"]), "n1: compute,all,gpu\n");
    bh.ok(&["chdef", "-t", "node", "-o", "n1", "-m", "groups=gpu"]);
    assert_eq!(bh.ok(&["nodels", "n1", "groups"]), "n1: compute,all\n");
    let e = bh.fail(&["chdef", "n1", "colour=blue"]);
    assert!(e.contains("'colour' is not a valid attribute name"), "{e}");
    let e = bh.fail(&["chdef", "n9", "ip=1.2.3.4"]);
    assert!(e.contains("n9"), "{e}");
    assert_eq!(bh.ok(&["lsdef", "-w", "ip==10.0.0.9"]), "n1  (node)\n");
    assert_eq!(bh.ok(&["lsdef", "-w", "ip==10.0.0.8"]), "");

    // Networks are named by netname and keyed by net+mask.
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "mgmt",
        "net=10.0.0.0",
        "mask=255.255.255.0",
        "gateway=10.0.0.254",
    ]);
    assert!(bh
        .ok(&["tabdump", "networks"])
        .contains("\"mgmt\",\"10.0.0.0\",\"255.255.255.0\",,\"10.0.0.254\""));
    assert_eq!(
        bh.ok(&["lsdef", "-t", "network", "-l"]),
        "Object name: mgmt\n    gateway=10.0.0.254\n    mask=255.255.255.0\n    net=10.0.0.0\n    objtype=network\n"
    );
    let e = bh.fail(&["mkdef", "-t", "network", "-o", "nomask", "net=10.9.0.0"]);
    assert!(e.contains("mask"), "{e}");

    // Osimages span osimage and linuximage.
    bh.ok(&[
        "mkdef",
        "-t",
        "osimage",
        "-o",
        "img1",
        "imagetype=linux",
        "provmethod=statelite",
        "rootimgdir=/install/netboot/img1",
    ]);
    assert!(bh.ok(&["tabdump", "linuximage"]).contains("\"img1\""));
    assert!(bh
        .ok(&["lsdef", "-t", "osimage", "img1"])
        .contains("    rootimgdir=/install/netboot/img1\n"));

    // The site object.
    bh.ok(&["chdef", "-t", "site", "domain=example.org"]);
    assert_eq!(
        bh.ok(&["lsdef", "-t", "site", "-i", "domain"]),
        "Object name: clustersite\n    domain=example.org\n"
    );

    // Groups: members and dynamic groups.
    bh.ok(&["mkdef", "-t", "node", "-o", "n2", "groups=all", "mgt=ipmi"]);
    bh.ok(&["mkdef", "-t", "group", "-o", "rack9", "members=n1,n2"]);
    assert_eq!(bh.ok(&["nodels", "rack9"]), "n1\nn2\n");
    bh.ok(&[
        "mkdef",
        "-t",
        "group",
        "-o",
        "ipminodes",
        "-d",
        "-w",
        "mgt==ipmi",
    ]);
    assert_eq!(bh.ok(&["nodels", "ipminodes"]), "n1\nn2\n");

    bh.ok(&["rmdef", "-t", "group", "rack9"]);
    assert_eq!(bh.ok(&["nodels", "n2", "groups"]), "n2: all\n");
    bh.ok(&["rmdef", "n1"]);
    assert_eq!(bh.ok(&["nodels"]), "n2\n");
    bh.ok(&["rmdef", "-t", "network", "mgmt"]);
    assert_eq!(bh.ok(&["tabdump", "networks"]).lines().count(), 1);
}

#[test]
fn makehosts_writes_hosts_lines() {
    let bh = Bh::new();
    bh.ok(&["chtab", "key=domain", "site.value=cluster.com"]);
    bh.ok(&["nodeadd", "node001-node003", "groups=compute,all"]);
    bh.ok(&[
        "chtab",
        "node=compute",
        r"hosts.ip=|node(\d+)|10.0.0.($1+0)|",
        r"hosts.otherinterfaces=|node(\d+)|-ib:10.1.0.($1+0)|",
    ]);
    let hosts = bh.path("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n10.0.0.2 stale-entry\n").expect("write");
    let h = hosts.to_str().expect("path");
    bh.ok(&["makehosts", "--file", h]);
    let text = std::fs::read_to_string(&hosts).expect("read");
    assert_eq!(
        text,
        // As xCAT does, a line that has the node's address is replaced where it stands.
        "127.0.0.1 localhost\n10.0.0.2 node002 node002.cluster.com\n10.0.0.1 node001 node001.cluster.com\n10.1.0.1 node001-ib node001-ib.cluster.com\n10.1.0.2 node002-ib node002-ib.cluster.com\n10.0.0.3 node003 node003.cluster.com\n10.1.0.3 node003-ib node003-ib.cluster.com\n"
    );
    bh.ok(&["makehosts", "-n", "-l", "--file", h, "node002"]);
    assert_eq!(
        std::fs::read_to_string(&hosts).expect("read"),
        "127.0.0.1 localhost\n10.0.0.2 node002.cluster.com node002\n10.1.0.2 node002-ib.cluster.com node002-ib\n"
    );
    bh.ok(&["makehosts", "-d", "--file", h, "node002"]);
    assert_eq!(
        std::fs::read_to_string(&hosts).expect("read"),
        "127.0.0.1 localhost\n"
    );
}

#[test]
fn tabedit_applies_the_edit_or_keeps_the_table() {
    let bh = Bh::new();
    bh.ok(&["nodeadd", "n1", "groups=all"]);
    let script = bh.file(
        "ed.sh",
        "#!/bin/sh\nsed -i 's/\"all\"/\"all,edited\"/' \"$1\"\n",
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let o = bh
        .cmd(&["tabedit", "nodelist"])
        .env("EDITOR", &script)
        .env_remove("VISUAL")
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(bh.ok(&["nodels", "n1", "groups"]), "n1: all,edited\n");
    let broken = bh.file("broken.sh", "#!/bin/sh\necho '\"unterminated' >> \"$1\"\n");
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let o = bh
        .cmd(&["tabedit", "nodelist"])
        .env("EDITOR", &broken)
        .env_remove("VISUAL")
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unchanged"));
    assert_eq!(bh.ok(&["nodels", "n1", "groups"]), "n1: all,edited\n");
}

#[test]
fn multi_call_links_act_as_the_command() {
    let bh = Bh::new();
    let dir = bh.path("bin");
    std::fs::create_dir_all(&dir).expect("mkdir");
    bh.ok(&["links", dir.to_str().expect("path")]);
    let o = std::process::Command::new(dir.join("nodeadd"))
        .args(["n1-n2", "groups=all"])
        .env("BOOTHERD_DB", &bh.db)
        .output()
        .expect("run nodeadd link");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = std::process::Command::new(dir.join("nodels"))
        .env("BOOTHERD_DB", &bh.db)
        .output()
        .expect("run nodels link");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "n1\nn2\n");
    let o = std::process::Command::new(dir.join("tabdump"))
        .arg("--help")
        .output()
        .expect("help");
    assert!(o.status.success());
    // xCAT's usage (tabutils.pm), naming the command as invoked.
    assert!(String::from_utf8_lossy(&o.stdout)
        .contains("tabdump [-w attr==val [-w attr=~val] ...] [table]"));
    // A usage error prints the usage and exits 1, as xCAT's commands do.
    let o = std::process::Command::new(dir.join("tabdump"))
        .arg("--bogus")
        .env("BOOTHERD_DB", &bh.db)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("Usage: tabdump"));
}

#[test]
fn db_is_chosen_by_flag_then_env() {
    let bh = Bh::new();
    let other = format!("sqlite:{}", bh.path("other.db").display());
    // The first write creates the store, and says so.
    let o = bh.run(&["--db", &other, "nodeadd", "x1", "groups=all"]);
    assert!(o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains(&format!("Created a new store at {other}")),
        "{e}"
    );
    // A read on a store that does not exist says so, and does not create it.
    let o = bh.run(&["nodels"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains(&format!("Warning: there is no store at {} yet", bh.db)),
        "{e}"
    );
    assert!(o.stdout.is_empty());
    assert!(
        !bh.path("bootherd.db").exists(),
        "the env store is untouched, not created"
    );
    assert_eq!(bh.ok(&["nodels", "--db", &other]), "x1\n");
    let o = bh.run(&["nodels", "--db", &other]);
    assert!(o.stderr.is_empty(), "no notice for an existing store");
    let e = bh.fail(&["--db", "mysql://nope", "nodels"]);
    assert!(e.contains("mysql://nope"), "{e}");
}

/// Settings the services would misread are refused where they are written, naming the value:
/// lease times that are not positive numbers, ports out of range, a site.master that is no
/// address or host name, node addresses that are not addresses.
#[test]
fn bad_settings_are_refused_with_the_value_named() {
    let bh = Bh::new();
    bh.ok(&["nodeadd", "n1", "groups=all"]);
    for bad in ["0", "-5", "abc"] {
        let e = bh.fail(&["chtab", "key=dhcplease", &format!("site.value={bad}")]);
        assert!(
            e.contains(&format!("site.dhcplease '{bad}' is not a lease time")),
            "{e}"
        );
    }
    let e = bh.fail(&["chdef", "-t", "site", "nfsport=0"]);
    assert!(e.contains("site.nfsport '0' is not a port"), "{e}");
    let e = bh.fail(&["chdef", "-t", "site", "master=not..an..ip"]);
    assert!(
        e.contains("site.master 'not..an..ip' is neither an IP address nor a host name"),
        "{e}"
    );
    let e = bh.fail(&["chtab", "node=n1", "hosts.ip=10.99.77.300"]);
    assert!(
        e.contains("hosts.ip '10.99.77.300' of n1 is not an IP address"),
        "{e}"
    );
    let e = bh.fail(&["nodeadd", "n2", "groups=all", "hosts.ip=10.99.77.300"]);
    assert!(e.contains("'10.99.77.300'"), "{e}");
    // Nothing of it was written.
    let site = bh.ok(&["tabdump", "site"]);
    assert!(site.contains("\"dhcplease\",\"43200\""), "{site}");
    assert!(!site.contains("not..an..ip") && !site.contains("\"nfsport\",\"0\""));
    assert_eq!(bh.ok(&["nodels"]), "n1\n");
    // Good values still go in.
    bh.ok(&["chtab", "key=dhcplease", "site.value=600"]);
    bh.ok(&["chdef", "-t", "site", "master=10.0.0.1"]);
    bh.ok(&["chtab", "node=n1", "hosts.ip=10.99.77.30"]);
}

/// tabrestore refuses two rows for one key and node names nodeadd refuses, naming the line;
/// the table is left as it was.
#[test]
fn tabrestore_refuses_duplicate_keys_and_bad_node_names() {
    let bh = Bh::new();
    bh.ok(&["nodeadd", "keep1", "groups=all"]);
    let before = bh.ok(&["tabdump", "nodelist"]);
    let dup = bh.file(
        "nodelist.csv",
        "#node,groups,status,statustime,appstatus,appstatustime,primarysn,hidden,updatestatus,updatestatustime,zonename,comments,disable\n\"n1\",\"all\",,,,,,,,,,,\n\"n2\",\"all\",,,,,,,,,,,\n\"n1\",\"compute\",,,,,,,,,,,\n",
    );
    let e = bh.fail(&["tabrestore", &dup]);
    assert!(
        e.contains("line 4: a second row for node=n1 (the first is on line 2)"),
        "{e}"
    );
    assert_eq!(bh.ok(&["tabdump", "nodelist"]), before);
    for (name, shown) in [
        ("a b", "'a b'"),
        ("n1,n2", "'n1,n2'"),
        ("[1-3]", "'[1-3]'"),
        ("n\u{1}x", "'n\\u{1}x'"),
    ] {
        let f = bh.file(
            "nodelist.csv",
            &format!("#node,groups\n\"ok1\",\"all\"\n\"{name}\",\"all\"\n"),
        );
        let e = bh.fail(&["tabrestore", &f]);
        assert!(
            e.contains("line 3") && e.contains(&format!("{shown} is not a valid node name")),
            "{name:?}: {e}"
        );
        assert_eq!(bh.ok(&["tabdump", "nodelist"]), before);
    }
}
