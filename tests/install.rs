//! What an installing node fetches over HTTP: its install template, its status callbacks, and the
//! postscript runner's master failover.

mod common;
use common::{Bh, Daemon, Pair};

const IMG: &str = "rhels9.4-x86_64-install-compute";

/// A store with node n1 at 10.99.82.2 (and n2 at .3), an install image, and an install tree.
fn setup() -> (Bh, std::path::PathBuf) {
    let bh = Bh::new();
    let install = bh.path("install");
    let tftp = bh.path("tftpboot");
    let img = tftp.join(format!("xcat/osimage/{IMG}"));
    std::fs::create_dir_all(&img).expect("mkdir");
    std::fs::write(img.join("vmlinuz"), b"k").expect("k");
    std::fs::write(img.join("initrd.img"), b"i").expect("i");
    std::fs::create_dir_all(install.join("postscripts")).expect("mkdir");
    bh.ok(&[
        "chtab",
        "key=installdir",
        &format!("site.value={}", install.display()),
    ]);
    bh.ok(&[
        "chtab",
        "key=tftpdir",
        &format!("site.value={}", tftp.display()),
    ]);
    bh.ok(&["chtab", "key=domain", "site.value=lab.example"]);
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
        "groups=compute,all",
        "mac=52:54:00:99:82:02",
        "ip=10.99.82.2",
        "netboot=xnba",
        "xcatmaster=10.99.82.1",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n2",
        "groups=compute,all",
        "mac=52:54:00:99:82:03",
        "ip=10.99.82.3",
        "netboot=xnba",
    ]);
    bh.ok(&["nodeset", "n1", &format!("osimage={IMG}")]);
    (bh, install)
}

fn lab(bh: &Bh, tag: &str) -> (Pair, Daemon) {
    // Tests in one binary run in parallel: each needs its own namespaces.
    let pair = Pair::new(tag, "10.99.82.1/24");
    for a in ["10.99.82.2/24", "10.99.82.3/24", "10.99.82.9/24"] {
        pair.cli.exec(&["ip", "addr", "add", a, "dev", "bhc0"]);
    }
    let d = Daemon::start(bh, &pair.srv, &["--no-dhcp", "--no-tftp"]);
    assert!(
        d.wait_for("HTTP listening", 5) || d.wait_for("listening", 1),
        "{}",
        d.dump()
    );
    (pair, d)
}

/// curl from `source` inside the client namespace: (HTTP status, body).
fn get(pair: &Pair, source: &str, url: &str) -> (u16, String) {
    let o = pair
        .cli
        .command("curl")
        .args(["-s", "--interface", source, "-w", "\n%{http_code}", url])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn the_kickstart_renders_every_directive_for_its_own_node_only() {
    let (bh, install) = setup();
    bh.ok(&["chtab", "key=omapi,username=xcat_key", "passwd.password=x"]);
    bh.ok(&[
        "chtab",
        "key=system,username=root",
        "passwd.password=$6$salt$alreadycrypted",
    ]);
    bh.ok(&["chtab", "node=compute", "noderes.installnic=eth0"]);
    let custom = install.join("custom/install/rh");
    std::fs::create_dir_all(&custom).expect("mkdir");
    std::fs::write(custom.join("compute.pkglist"), "bash\nvim-minimal\n").expect("pkglist");
    std::fs::write(custom.join("part.inc"), "part / --fstype=xfs --grow\n").expect("include");
    std::fs::write(
        custom.join("compute.rhels9.4.x86_64.tmpl"),
        "# for #TABLE:nodelist:THISNODE:node#\nnetwork --device=#TABLE:noderes:THISNODE:installnic#\nrootpw --iscrypted #CRYPT:passwd:key=system,username=root:password#\n# domain #TABLE:site:key=domain:value#\n#INCLUDE:part.inc#\n%packages\n#INCLUDE_PKGLIST:compute.pkglist#\n%end\n",
    )
    .expect("template");
    let (pair, _d) = lab(&bh, "ik");
    // Written by hand from the rows above.
    let want = "# for n1\nnetwork --device=eth0\nrootpw --iscrypted $6$salt$alreadycrypted\n# domain lab.example\npart / --fstype=xfs --grow\n%packages\n<package>bash</package>\n<package>vim-minimal</package>\n%end\n";
    let (code, body) = get(&pair, "10.99.82.2", "http://10.99.82.1/install/autoinst/n1");
    assert_eq!((code, body.as_str()), (200, want));
    // From another node's address: refused.
    let (code, body) = get(&pair, "10.99.82.3", "http://10.99.82.1/install/autoinst/n1");
    assert_eq!(code, 403, "{body}");
    // A template with an unknown directive: an error naming the file and line.
    std::fs::write(
        custom.join("compute.rhels9.4.x86_64.tmpl"),
        "line one\n#FROBNICATE:x#\n",
    )
    .expect("template");
    let (code, body) = get(&pair, "10.99.82.2", "http://10.99.82.1/install/autoinst/n1");
    assert_eq!(code, 500, "{body}");
    assert!(
        body.contains("compute.rhels9.4.x86_64.tmpl:2") && body.contains("FROBNICATE"),
        "{body}"
    );
}

#[test]
fn the_shipped_kickstart_renders_for_a_node() {
    let (bh, _) = setup();
    bh.ok(&[
        "chtab",
        "key=system,username=root",
        "passwd.password=cluster",
    ]);
    let (pair, _d) = lab(&bh, "is");
    let (code, body) = get(&pair, "10.99.82.2", "http://10.99.82.1/install/autoinst/n1");
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("%post") && body.contains("installstatus") && !body.contains("#TABLE:"),
        "{body}"
    );
    // The plain password from passwd is sent only SHA-512-crypted.
    assert!(
        body.contains("$6$") && !body.contains("cluster\n"),
        "{body}"
    );
}

#[test]
fn http_callbacks_move_the_install_along() {
    let (bh, _) = setup();
    let (pair, d) = lab(&bh, "ic");
    assert_eq!(
        get(
            &pair,
            "10.99.82.2",
            "http://10.99.82.1/xcat/node/installstatus/installing"
        )
        .0,
        200
    );
    assert_eq!(
        bh.ok(&["nodels", "n1", "nodelist.status"]),
        "n1: installing\n"
    );
    let (code, body) = get(
        &pair,
        "10.99.82.2",
        "http://10.99.82.1/xcat/node/installstatus/bogus",
    );
    assert_eq!(code, 400, "{body}");
    let (code, body) = get(&pair, "10.99.82.2", "http://10.99.82.1/xcat/node/next");
    assert_eq!((code, body.as_str()), (200, "boot\n"));
    assert!(
        bh.ok(&["nodeset", "n1", "show"])
            .contains("#!gpxe\n#boot\nexit\n"),
        "the rendered boot file is local boot now"
    );
    let (code, _) = get(&pair, "10.99.82.9", "http://10.99.82.1/xcat/node/next");
    assert_eq!(code, 403);
    assert!(d.wait_for("node callback refused", 2));
}

#[test]
fn the_runner_falls_back_from_a_dead_master_runs_the_postscripts_and_reports_booted() {
    let (bh, install) = setup();
    // The "node" here shares this machine's filesystem: xCAT's default scripts (syslog,
    // remoteshell, …; the xcatdefaults row a new store has) would configure the test machine.
    bh.ok(&["chtab", "-d", "node=xcatdefaults", "postscripts"]);
    let marker = bh.path("marker");
    std::fs::write(
        install.join("postscripts/leavemark"),
        format!("#!/bin/sh\necho \"$NODE $1\" > {}\n", marker.display()),
    )
    .expect("postscript");
    bh.ok(&[
        "chtab",
        "node=n1",
        "postscripts.postscripts=leavemark hello",
    ]);
    let (pair, _d) = lab(&bh, "ir");
    // The node remembers a master that is gone; its kernel command line names the real one.
    let info = bh.path("xcatinfo");
    std::fs::write(&info, "XCATSERVER=10.99.82.77\nHTTPPORT=80\n").expect("xcatinfo");
    let cmdline = bh.file(
        "cmdline",
        "quiet XCAT=10.99.82.1:3001 XCATHTTPPORT=80 NODE=n1\n",
    );
    let post = bh.path("xcatpost");
    let runner = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("statelite/xcatdsklspost");
    // The runner must reach us from the node's address: n1 is 10.99.82.2 (the first address).
    pair.cli
        .exec(&["ip", "addr", "del", "10.99.82.3/24", "dev", "bhc0"]);
    pair.cli
        .exec(&["ip", "addr", "del", "10.99.82.9/24", "dev", "bhc0"]);
    let o = pair
        .cli
        .command("sh")
        .arg(&runner)
        .env("XCATINFO", &info)
        .env("BOOTHERD_CMDLINE", &cmdline)
        .env("POSTDIR", &post)
        .env("LEASEDIRS", "/nonexistent")
        .env("TRIES", "1")
        .env("TIMEOUT", "2")
        .output()
        .expect("runner");
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "runner failed:\n{log}");
    assert!(
        log.contains("master 10.99.82.77:80 did not answer"),
        "{log}"
    );
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap_or_default(),
        "n1 hello\n",
        "{log}"
    );
    let recorded = std::fs::read_to_string(&info).expect("xcatinfo");
    assert!(
        recorded.contains("XCATSERVER=10.99.82.1\n") && recorded.contains("NODE=n1\n"),
        "{recorded}"
    );
    assert_eq!(bh.ok(&["nodels", "n1", "nodelist.status"]), "n1: booted\n");
}

#[test]
fn the_runner_waits_for_a_network_that_comes_up_late() {
    // A cloned or rebooted node whose network is configured only after its runner started (seen
    // with systemd-networkd-wait-online giving up first): the runner keeps asking until the
    // master answers, then runs the postscripts and reports booted.
    let (bh, install) = setup();
    bh.ok(&["chtab", "-d", "node=xcatdefaults", "postscripts"]);
    let marker = bh.path("marker");
    std::fs::write(
        install.join("postscripts/leavemark"),
        format!("#!/bin/sh\necho \"$NODE late\" > {}\n", marker.display()),
    )
    .expect("postscript");
    bh.ok(&["chtab", "node=n1", "postscripts.postscripts=leavemark"]);
    let (pair, _d) = lab(&bh, "il");
    // Secondaries first: removing the primary address takes them along.
    for a in ["10.99.82.9/24", "10.99.82.3/24", "10.99.82.2/24"] {
        pair.cli.exec(&["ip", "addr", "del", a, "dev", "bhc0"]);
    }
    let cmdline = bh.file("cmdline", "quiet XCAT=10.99.82.1:3001 XCATHTTPPORT=80\n");
    let runner = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("statelite/xcatdsklspost");
    let child = pair
        .cli
        .command("sh")
        .arg(&runner)
        .env("XCATINFO", bh.path("xcatinfo"))
        .env("BOOTHERD_CMDLINE", &cmdline)
        .env("POSTDIR", bh.path("xcatpost"))
        .env("LEASEDIRS", "/nonexistent")
        .env("TRIES", "1")
        .env("TIMEOUT", "1")
        .env("WAIT", "60")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runner");
    // The network comes up 4 s later.
    std::thread::sleep(std::time::Duration::from_secs(4));
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.82.2/24", "dev", "bhc0"]);
    let o = child.wait_with_output().expect("runner");
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "runner failed:\n{log}");
    assert!(log.contains("no master answered yet"), "{log}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap_or_default(),
        "n1 late\n",
        "{log}"
    );
    assert_eq!(bh.ok(&["nodels", "n1", "nodelist.status"]), "n1: booted\n");
}
