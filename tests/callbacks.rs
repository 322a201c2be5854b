//! Node callbacks on xCAT's status port: an install reports its progress and moves its chain.

mod common;
use common::{Bh, Daemon, Pair};

const IMG: &str = "rhels9.4-x86_64-install-compute";

/// One request on port 3002 from `source` (inside the client namespace); returns what the server said.
fn call(pair: &Pair, bh: &Bh, source: &str, line: &str) -> String {
    let py = bh.file(
        "call.py",
        "import socket,sys\ns=socket.socket()\ns.bind((sys.argv[1],0))\ns.connect(('10.99.81.1',3002))\nf=s.makefile('rwb')\nprint(f.readline().decode().strip())\nf.write((sys.argv[2]+'\\n').encode()); f.flush()\nprint(f.read().decode().strip())\n",
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
fn an_install_reports_its_status_and_moves_to_local_boot() {
    let bh = Bh::new();
    let tftp = bh.path("tftpboot");
    let img = tftp.join(format!("xcat/osimage/{IMG}"));
    std::fs::create_dir_all(&img).expect("mkdir");
    std::fs::write(img.join("vmlinuz"), b"k").expect("k");
    std::fs::write(img.join("initrd.img"), b"i").expect("i");
    bh.ok(&[
        "chtab",
        "key=tftpdir",
        &format!("site.value={}", tftp.display()),
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "osimage",
        "-o",
        IMG,
        "imagetype=linux",
        "provmethod=install",
        "osvers=rhels9.4",
        "osarch=x86_64",
        "profile=compute",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n1",
        "groups=all",
        "mac=52:54:00:99:81:02",
        "ip=10.99.81.2",
        "netboot=xnba",
    ]);
    bh.ok(&["nodeset", "n1", &format!("osimage={IMG}")]);
    let pair = Pair::new("cb", "10.99.81.1/24");
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.81.2/24", "dev", "bhc0"]);
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.81.3/24", "dev", "bhc0"]);
    let d = Daemon::start(&bh, &pair.srv, &["--no-dhcp", "--no-tftp"]);
    assert!(d.wait_for("node status port listening", 5), "{}", d.dump());

    // The kickstart's %pre reports `installing`.
    assert_eq!(
        call(&pair, &bh, "10.99.81.2", "installstatus installing"),
        "ready\ndone\n"
    );
    assert_eq!(
        bh.ok(&["nodels", "n1", "nodelist.status"]),
        "n1: installing\n"
    );
    assert!(bh.ok(&["nodels", "n1", "nodelist.statustime"]).len() > "n1: \n".len());
    // An invalid state is refused and changes nothing.
    let out = call(&pair, &bh, "10.99.81.2", "installstatus exploded");
    assert!(
        out.starts_with("ready\nerror:") && out.contains("'exploded' is not a node status"),
        "{out}"
    );
    assert_eq!(
        bh.ok(&["nodels", "n1", "nodelist.status"]),
        "n1: installing\n"
    );
    // %post says `next`: the install is done, the node boots from disk from now on.
    assert_eq!(
        call(&pair, &bh, "10.99.81.2", "next"),
        "ready\nboot\ndone\n"
    );
    assert_eq!(bh.ok(&["nodels", "n1", "chain.currstate"]), "n1: boot\n");
    assert!(bh
        .ok(&["nodeset", "n1", "show"])
        .contains("#!gpxe\n#boot\nexit\n"));
    // getpostscript: the node's mypostscript, xCAT-framed, with the scripts in xCAT's order.
    bh.ok(&[
        "chtab",
        "node=xcatdefaults",
        "postscripts.postscripts=syslog,remoteshell",
        "postscripts.postbootscripts=otherpkgs",
    ]);
    bh.ok(&[
        "chtab",
        "node=n1",
        "postscripts.postscripts=setupntp arg1,syslog",
    ]);
    let out = call(&pair, &bh, "10.99.81.2", "getpostscript");
    assert!(
        out.starts_with("ready\n") && out.ends_with("#END OF SCRIPT\ndone\n"),
        "{out}"
    );
    assert!(
        out.contains("NODE='n1'") || out.contains("NODE=n1"),
        "{out}"
    );
    let body: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("export") && !l.trim().is_empty())
        .collect();
    let pos = |name: &str| {
        body.iter()
            .position(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} missing: {out}"))
    };
    assert!(
        pos("syslog") < pos("remoteshell") && pos("remoteshell") < pos("setupntp arg1"),
        "xcatdefaults first, node last: {out}"
    );
    assert_eq!(
        body.iter().filter(|l| l.contains("syslog")).count(),
        1,
        "de-duplicated: {out}"
    );
    assert!(pos("otherpkgs") > pos("setupntp arg1"), "{out}");
    // Node requests go through policy as they do with xcatd: with xcatconfig's getpostscript
    // row set to deny, the node is refused; allowed again, it is answered.
    bh.ok(&["chtab", "priority=4.4", "policy.rule=deny"]);
    let out = call(&pair, &bh, "10.99.81.2", "getpostscript");
    assert_eq!(out, "ready\nerror: n1: Permission denied for request\n");
    bh.ok(&["chtab", "priority=4.4", "policy.rule=allow"]);
    let out = call(&pair, &bh, "10.99.81.2", "getpostscript");
    assert!(out.ends_with("#END OF SCRIPT\ndone\n"), "{out}");
    // Someone who is not a node is closed before `ready` (it may not hold one of the slots the
    // nodes share), and logged.
    let py = bh.file(
        "stranger.py",
        "import socket,sys\ns=socket.socket()\ns.settimeout(5)\ns.bind((sys.argv[1],0))\ns.connect(('10.99.81.1',3002))\nprint(repr(s.recv(100)))\n",
    );
    let o = pair
        .cli
        .command("/usr/bin/python3")
        .args([&py, "10.99.81.3"])
        .output()
        .expect("python");
    let said = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        said.trim() == "b''" || String::from_utf8_lossy(&o.stderr).contains("ConnectionResetError"),
        "a stranger is closed without a word: {said}"
    );
    assert!(d.wait_for("10.99.81.3 is not the address of any node", 2));
    assert_eq!(
        bh.ok(&["nodels", "n1", "nodelist.status"]),
        "n1: installing\n"
    );
}
