//! Statelite: litefile/litetree lookups, liteimg on a small image, and the node-side script run
//! against the real daemon (lists over HTTP) in a private mount namespace.

mod common;
use common::{Bh, Daemon, Pair};
use std::fs;
use std::path::Path;

/// An osimage `img` (statelite, image group `rack1`) and node n1 (group compute) using it.
fn define(bh: &Bh, rootimgdir: &Path) {
    bh.ok(&[
        "mkdef",
        "-t",
        "osimage",
        "-o",
        "img",
        "imagetype=linux",
        "provmethod=statelite",
        "osvers=rhels9.4",
        "osarch=x86_64",
        "profile=compute",
        "groups=rack1",
        &format!("rootimgdir={}", rootimgdir.display()),
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n1",
        "groups=compute,all",
        "ip=10.99.120.2",
        "provmethod=img",
    ]);
    bh.ok(&[
        "chdef",
        "-t",
        "group",
        "-o",
        "compute",
        "nfsserver=10.99.120.1",
    ]);
}

#[test]
fn litefile_and_litetree_merge_image_group_and_all_rows() {
    let bh = Bh::new();
    define(&bh, &bh.path("img"));
    bh.ok(&[
        "tabrestore",
        &bh.file(
            "litefile.csv",
            "#image,file,options,comments,disable\n\
             \"ALL\",\"/etc/ssh/\",,,\n\
             \"ALL\",\"/var/log/\",\"tmpfs\",,\n\
             \"img\",\"/var/log/\",\"persistent\",,\n\
             \"rack1\",\"/etc/motd\",\"ro\",,\n\
             \"ALL\",\"/tmp/\",,,\n\
             \"other\",\"/opt/\",\"ro\",,\n",
        ),
    ]);
    bh.ok(&[
        "chtab",
        "priority=2",
        "litetree.image=ALL",
        "litetree.directory=cnfs:/gpfs/dallas/",
        "litetree.mntopts=soft",
    ]);
    bh.ok(&[
        "chtab",
        "priority=1",
        "litetree.image=img",
        "litetree.directory=$noderes.nfsserver:/statelite/$node",
    ]);
    bh.ok(&[
        "chtab",
        "priority=3",
        "litetree.image=other",
        "litetree.directory=x:/y",
    ]);
    // Image rows beat ALL rows for the same file; an empty option means tmpfs,rw; /etc/mtab is
    // always there as link; another image's rows stay out.
    assert_eq!(
        bh.ok(&["litefile", "n1"]),
        "n1: ro            /etc/motd\n\
         n1: link          /etc/mtab\n\
         n1: tmpfs,rw      /etc/ssh/\n\
         n1: tmpfs,rw      /tmp/\n\
         n1: persistent    /var/log/\n"
    );
    assert_eq!(
        bh.ok(&["litefile", "img"]).lines().next(),
        Some("img: ro            /etc/motd")
    );
    assert_eq!(
        bh.ok(&["litetree", "n1"]),
        "n1: 10.99.120.1:/statelite/n1\nn1: cnfs:/gpfs/dallas/ :soft\n"
    );
    // A node with no image is an error for that node.
    bh.ok(&["mkdef", "-t", "node", "-o", "n9", "groups=all"]);
    let o = bh.run(&["litefile", "n1,n9"]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("n1: ro            /etc/motd"), "{out}");
    assert!(
        out.contains("n9: Error: n9 does not have os, arch, or profile defined in nodetype table"),
        "{out}"
    );
}

/// A tiny image root with a few files.
fn image(root: &Path) {
    for d in ["etc/ssh", "var/lib", "tmp", "usr/bin", "root"] {
        fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    fs::write(root.join("etc/ntp.conf"), "server 10.99.120.1\n").expect("w");
    fs::write(root.join("etc/motd"), "welcome\n").expect("w");
    fs::write(root.join("etc/issue"), "Debian\n").expect("w");
    fs::write(root.join("etc/mtab"), "").expect("w");
    fs::write(root.join("etc/ssh/sshd_config"), "PermitRootLogin yes\n").expect("w");
    fs::write(root.join("root/.profile"), "PS1=x\n").expect("w");
    fs::write(root.join("usr/bin/tool"), "#!/bin/sh\n").expect("w");
}

/// Adds `ALL` litefile rows, as an admin would with tabedit.
fn litefile_rows(bh: &Bh, rows: &[(&str, &str)]) {
    let mut csv = String::from("#image,file,options,comments,disable\n");
    for (file, opts) in rows {
        let o = if opts.is_empty() {
            String::new()
        } else {
            format!("\"{opts}\"")
        };
        csv.push_str(&format!("\"ALL\",\"{file}\",{o},,\n"));
    }
    bh.ok(&["tabrestore", "-a", &bh.file("litefile.csv", &csv)]);
}

#[test]
fn liteimg_builds_the_statelite_structure_and_refuses_bad_rows() {
    let bh = Bh::new();
    let dir = bh.path("img");
    let root = dir.join("rootimg");
    image(&root);
    define(&bh, &dir);
    // Bad rows first: every problem is named, and the image is not touched.
    litefile_rows(
        &bh,
        &[
            ("/var/", "persistent"),
            ("/var/tmp/", "tmpfs"),
            ("/etc/x", "bind"),
        ],
    );
    let o = bh.run(&["liteimg", "img"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("/var/tmp/: inside the persistent directory /var/ it must be persistent too"),
        "{err}"
    );
    assert!(
        err.contains("/etc/x: 'bind' is not a statelite option"),
        "{err}"
    );
    assert!(!root.join(".statelite").exists() && !root.join(".default").exists());

    // Fixed rows replace the bad ones (tabrestore takes the table name from the file name).
    bh.ok(&[
        "tabrestore",
        &bh.file(
            "litefile.csv",
            "#image,file,options,comments,disable\n\"ALL\",\"/etc/ntp.conf\",,,\n\"ALL\",\"/etc/ssh/\",\"tmpfs\",,\n\"ALL\",\"/var/lib/state/\",\"persistent\",,\n",
        ),
    ]);
    let out = bh.ok(&["liteimg", "img"]);
    assert!(
        out.starts_with(&format!("Modifying {} ...", root.display())),
        "{out}"
    );
    // ntp.conf: the two levels of links, the original in .default.
    let link = |p: &str| {
        fs::read_link(root.join(p))
            .map(|t| t.display().to_string())
            .unwrap_or_default()
    };
    assert_eq!(link("etc/ntp.conf"), "../.statelite/tmpfs/etc/ntp.conf");
    assert_eq!(
        link(".statelite/tmpfs/etc/ntp.conf"),
        "../../../.default/etc/ntp.conf"
    );
    assert_eq!(
        fs::read_to_string(root.join(".default/etc/ntp.conf")).unwrap_or_default(),
        "server 10.99.120.1\n"
    );
    // tmpfs and persistent entries: copied to .default, the original stays (the node binds over it).
    assert_eq!(
        fs::read_to_string(root.join(".default/etc/ssh/sshd_config")).unwrap_or_default(),
        "PermitRootLogin yes\n"
    );
    assert!(root.join("etc/ssh/sshd_config").is_file());
    assert!(root.join("var/lib/state").is_dir() && root.join(".default/var/lib/state").is_dir());
    // /etc/mtab is a link too; the statelite script is installed.
    assert_eq!(link("etc/mtab"), "../.statelite/tmpfs/etc/mtab");
    let init = fs::read_to_string(root.join("etc/init.d/statelite")).unwrap_or_default();
    assert!(init.starts_with("#!/bin/sh") && init.contains("litefile"));
}

#[test]
fn the_node_script_sets_up_every_option_from_the_appliance() {
    common::need(&[("unshare", "util-linux"), ("wget", "wget")]);
    let bh = Bh::new();
    let dir = bh.path("img");
    let root = dir.join("rootimg");
    image(&root);
    define(&bh, &dir);
    litefile_rows(
        &bh,
        &[
            ("/etc/ntp.conf", ""),
            ("/tmp/", "tmpfs"),
            ("/var/lib/state/", "persistent"),
            ("/etc/motd", "ro"),
            ("/etc/issue", "con"),
            ("/root/", "link"),
            ("/root/.hist", "link,persistent"),
        ],
    );
    bh.ok(&["liteimg", "img"]);
    let pair = Pair::new("slt", "10.99.120.1/24");
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.120.2/24", "dev", "bhc0"]);
    let _d = Daemon::start(&bh, &pair.srv, &["--no-dhcp", "--no-tftp"]);
    let state = bh.path("state-n1");
    fs::create_dir_all(&state).expect("state");
    let mnt = bh.path("sysroot");
    fs::create_dir_all(&mnt).expect("mnt");
    let cmdline = bh.file(
        "cmdline",
        "root=nfs:10.99.120.1:/x:ro XCAT=10.99.120.1:3001 XCATHTTPPORT=80 NODE=n1 quiet\n",
    );
    // One "boot": the image read-only at $MNT, the script, then what a user on the node would try.
    let boot = format!(
        r#"set -u
mount --bind {root} {mnt} && mount -o remount,bind,ro {mnt}
MNTDIR={mnt} CMDLINE={cmdline} STATELITE_PERSISTENT={state} sh {mnt}/etc/init.d/statelite || echo "script failed"
try() {{ if sh -c "$2" 2>/dev/null; then echo "$1: ok"; else echo "$1: refused"; fi; }}
try ntp "echo 'server 1' > {mnt}/etc/ntp.conf"
try tmp "touch {mnt}/tmp/scratch"
try state "echo boot >> {mnt}/var/lib/state/marker"
try usr "touch {mnt}/usr/bin/new"
try motd "echo x > {mnt}/etc/motd"
try hist "echo cmd >> {mnt}/root/.hist"
try profile "echo y >> {mnt}/root/.profile"
echo "marker: $(cat {mnt}/var/lib/state/marker | tr '\n' ' ')"
echo "issue: $(cat {mnt}/etc/issue)"
echo "mtab: $(readlink {mnt}/.statelite/tmpfs/etc/mtab)"
grep -c 'mount -o bind' {mnt}/.statelite/statelite.log | sed 's/^/binds: /'
"#,
        root = root.display(),
        mnt = mnt.display(),
        cmdline = cmdline,
        state = state.display()
    );
    let run = || {
        let o = pair
            .cli
            .command("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &boot])
            .output()
            .expect("unshare");
        (
            String::from_utf8_lossy(&o.stdout).to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let (out, err) = run();
    println!("{out}\n{err}");
    for want in [
        "ntp: ok",
        "tmp: ok",
        "state: ok",
        "usr: refused",
        "motd: refused",
        "hist: ok",
        "profile: ok",
        "marker: boot ",
        "issue: Debian",
        "mtab: /proc/mounts",
    ] {
        assert!(
            out.lines().any(|l| l == want),
            "missing {want:?} in\n{out}\n{err}"
        );
    }
    assert!(!out.contains("script failed"), "{out}\n{err}");
    // The image itself is unchanged; the persistent writes are in the node's state directory.
    assert_eq!(
        fs::read_to_string(root.join(".default/etc/ntp.conf")).unwrap_or_default(),
        "server 10.99.120.1\n"
    );
    assert!(!root.join("tmp/scratch").exists() && !root.join("usr/bin/new").exists());
    assert_eq!(
        fs::read_to_string(state.join("var/lib/state/marker")).unwrap_or_default(),
        "boot\n"
    );
    assert_eq!(
        fs::read_to_string(state.join("root/.hist")).unwrap_or_default(),
        "cmd\n"
    );
    // Second boot: persistent state is back, tmpfs state is gone.
    let (out, err) = run();
    assert!(
        out.lines().any(|l| l == "marker: boot boot "),
        "{out}\n{err}"
    );
    assert!(!state.join("tmp").exists());
}
