//! nodeset: boot intent in the store, boot files rendered from it.

mod common;
use common::Bh;

const IMG: &str = "rhels8.6-x86_64-install-compute";

/// A store with an install image whose kernel and initrd exist, and nodes n1-n3.
fn setup() -> (Bh, String) {
    let bh = Bh::new();
    let tftp = bh.path("tftpboot");
    let dir = tftp.join(format!("xcat/osimage/{IMG}"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("vmlinuz"), b"kernel").expect("kernel");
    std::fs::write(dir.join("initrd.img"), b"initrd").expect("initrd");
    let t = tftp.display().to_string();
    bh.ok(&["chtab", "key=tftpdir", &format!("site.value={t}")]);
    bh.ok(&["chtab", "key=master", "site.value=10.0.0.1"]);
    bh.ok(&[
        "mkdef",
        "-t",
        "osimage",
        "-o",
        IMG,
        "imagetype=linux",
        "provmethod=install",
        "osvers=rhels8.6",
        "osarch=x86_64",
        "profile=compute",
    ]);
    bh.ok(&[
        "nodeadd",
        "n1-n3",
        "groups=compute,all",
        "noderes.netboot=pxe",
        "noderes.xcatmaster=10.0.0.1",
    ]);
    bh.ok(&[
        "chtab",
        "node=compute",
        r"hosts.ip=|n(\d+)|10.0.1.($1+4)|",
        r"mac.mac=|n(\d+)|52:54:00:aa:00:0($1)|",
    ]);
    (bh, t)
}

#[test]
fn nodeset_osimage_records_the_intent_and_show_prints_the_files() {
    let (bh, tftp) = setup();
    assert_eq!(bh.ok(&["nodeset", "n1-n3", &format!("osimage={IMG}")]), "n1: install rhels8.6-x86_64-compute\nn2: install rhels8.6-x86_64-compute\nn3: install rhels8.6-x86_64-compute\n");
    assert_eq!(bh.ok(&["nodels", "n1", "chain.currstate", "chain.currchain", "nodetype.provmethod", "nodetype.os"]),
        format!("n1: chain.currstate: install rhels8.6-x86_64-compute\nn1: chain.currchain: boot\nn1: nodetype.provmethod: {IMG}\nn1: nodetype.os: rhels8.6\n"));
    assert_eq!(
        bh.ok(&["nodeset", "n2", "stat"]),
        "n2: install rhels8.6-x86_64-compute\n"
    );
    // What n1 would be served, byte for byte (reference §4's pxelinux install file, written by hand).
    let want = format!("#install rhels8.6-x86_64-compute\nDEFAULT xCAT\nLABEL xCAT\n KERNEL xcat/osimage/{IMG}/vmlinuz\n APPEND initrd=xcat/osimage/{IMG}/initrd.img inst.repo=http://10.0.0.1:80/install/rhels8.6/x86_64 inst.ks=http://10.0.0.1:80/install/autoinst/n1\n  IPAPPEND 2\n");
    let show = bh.ok(&["nodeset", "n1", "show"]);
    assert!(
        show.contains(&format!("# n1: {tftp}/pxelinux.cfg/n1\n{want}")),
        "{show}"
    );
    assert!(
        show.contains(&format!(
            "# n1: {tftp}/pxelinux.cfg/01-52-54-00-aa-00-01\n{want}"
        )),
        "{show}"
    );
    assert!(
        show.contains(&format!("# n1: {tftp}/pxelinux.cfg/0A000105\n{want}")),
        "{show}"
    );
    // next: the install finished, the node boots from disk.
    assert_eq!(bh.ok(&["nodeset", "n1", "next"]), "n1: boot\n");
    let show = bh.ok(&["nodeset", "n1", "show"]);
    assert!(
        show.contains("#boot\nDEFAULT xCAT\nLABEL xCAT\nLOCALBOOT 0\n"),
        "{show}"
    );
    // Other netboot methods render their own formats.
    bh.ok(&["chdef", "n2", "netboot=xnba"]);
    let show = bh.ok(&["nodeset", "n2", "show"]);
    assert!(show.contains(&format!("{tftp}/xcat/xnba/nodes/n2\n#!gpxe\n#install rhels8.6-x86_64-compute\nimgfetch -n kernel http://${{next-server}}/tftpboot/xcat/osimage/{IMG}/vmlinuz\n")), "{show}");
    bh.ok(&["chdef", "n3", "netboot=grub2"]);
    let show = bh.ok(&["nodeset", "n3", "show"]);
    assert!(
        show.contains(&format!(
            "{tftp}/boot/grub2/grub.cfg-01-52-54-00-aa-00-03\n#install"
        )),
        "{show}"
    );
    assert!(
        show.contains("boot/grub2/grub2-n3 -> boot/grub2/grub2.x86_64"),
        "{show}"
    );
}

#[test]
fn nodeset_refuses_nodes_it_cannot_boot_and_changes_nothing() {
    let (bh, tftp) = setup();
    bh.ok(&["nodeadd", "nomac", "groups=all", "noderes.netboot=pxe"]);
    let before = bh.snapshot();
    let e = bh.fail(&["nodeset", "n1,nomac", &format!("osimage={IMG}")]);
    assert!(e.contains("nomac: Error: no MAC address"), "{e}");
    assert!(e.contains("changed nothing"), "{e}");
    let e = bh.fail(&["nodeset", "n1", "osimage=nosuchimage"]);
    assert!(
        e.contains("n1: Error: osimage 'nosuchimage' is not defined"),
        "{e}"
    );
    std::fs::remove_file(format!("{tftp}/xcat/osimage/{IMG}/initrd.img")).expect("rm");
    let e = bh.fail(&["nodeset", "n1", &format!("osimage={IMG}")]);
    assert!(e.contains("initrd.img is missing"), "{e}");
    let e = bh.fail(&["nodeset", "n1", "frobnicate"]);
    assert!(e.contains("'frobnicate' is not a boot state"), "{e}");
    assert_eq!(bh.snapshot(), before, "nothing was written");
}

#[test]
fn chains_and_genesis_states() {
    let (bh, _) = setup();
    assert_eq!(
        bh.ok(&["nodeset", "n1", &format!("runcmd=bmcsetup,osimage={IMG}")]),
        "n1: runcmd=bmcsetup\n"
    );
    assert_eq!(
        bh.ok(&["nodels", "n1", "chain.currchain"]),
        format!("n1: osimage={IMG}\n")
    );
    let show = bh.ok(&["nodeset", "n1", "show"]);
    assert!(show.contains(" KERNEL xcat/genesis.kernel.x86_64\n APPEND initrd=xcat/genesis.fs.x86_64.gz quiet xcatd=10.0.0.1:3001 destiny=runcmd=bmcsetup\n"), "{show}");
    assert_eq!(
        bh.ok(&["nodeset", "n1", "next"]),
        "n1: install rhels8.6-x86_64-compute\n"
    );
    assert_eq!(bh.ok(&["nodeset", "n1", "next"]), "n1: boot\n");
    assert_eq!(
        bh.ok(&["nodeset", "n1", "next"]),
        "n1: boot\n",
        "boot stays boot"
    );
    bh.ok(&["nodeset", "n2", "shell"]);
    assert_eq!(bh.ok(&["nodeset", "n2", "stat"]), "n2: shell\n");
    assert_eq!(bh.ok(&["nodeset", "n2", "next"]), "n2: standby\n");
    bh.ok(&["nodeset", "n3", "offline"]);
    assert!(bh
        .ok(&["nodeset", "n3", "show"])
        .contains("nothing is served"));
}

/// Fetches `path` with tftp-hpa from the client namespace; `None` when the server refused.
fn tftp_get(pair: &common::Pair, bh: &Bh, path: &str) -> Option<Vec<u8>> {
    let out = bh.path("fetched");
    let _ = std::fs::remove_file(&out);
    let o = pair
        .cli
        .command("tftp")
        .args([
            "10.99.60.1",
            "-m",
            "binary",
            "-c",
            "get",
            path,
            out.to_str().expect("path"),
        ])
        .output()
        .expect("tftp");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if text.contains("Error code") {
        return None;
    }
    std::fs::read(&out).ok()
}

#[test]
fn rendered_boot_files_are_served_over_tftp() {
    let (bh, tftp) = setup();
    std::fs::create_dir_all(format!("{tftp}/boot/grub2")).expect("mkdir");
    std::fs::write(format!("{tftp}/boot/grub2/grub2.x86_64"), b"GRUB-BINARY").expect("grub");
    std::fs::write(format!("{tftp}/pxelinux.0"), b"PXELINUX").expect("pxelinux");
    bh.ok(&[
        "chtab",
        "node=compute",
        r"hosts.ip=|n(\d+)|10.99.60.($1+10)|",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "lab",
        "net=10.99.60.0",
        "mask=255.255.255.0",
    ]);
    bh.ok(&["chdef", "n1", "xcatmaster=10.99.60.1"]);
    bh.ok(&["chdef", "n2", "netboot=grub2"]);
    bh.ok(&["nodeset", "n1,n2", &format!("osimage={IMG}")]);
    let pair = common::Pair::new("nt", "10.99.60.1/24");
    pair.cli
        .exec(&["ip", "addr", "add", "10.99.60.2/24", "dev", "bhc0"]);
    let d = common::Daemon::start(&bh, &pair.srv, &[]);
    assert!(d.wait_for("TFTP listening", 5), "{}", d.dump());
    let want = format!("#install rhels8.6-x86_64-compute\nDEFAULT xCAT\nLABEL xCAT\n KERNEL xcat/osimage/{IMG}/vmlinuz\n APPEND initrd=xcat/osimage/{IMG}/initrd.img inst.repo=http://10.99.60.1:80/install/rhels8.6/x86_64 inst.ks=http://10.99.60.1:80/install/autoinst/n1\n  IPAPPEND 2\n");
    // By MAC (what pxelinux asks first), by hex IP, by name.
    for path in [
        "pxelinux.cfg/01-52-54-00-aa-00-01",
        "pxelinux.cfg/0A633C0B",
        "pxelinux.cfg/n1",
        "/pxelinux.cfg/n1",
    ] {
        let got =
            tftp_get(&pair, &bh, path).unwrap_or_else(|| panic!("{path} refused:\n{}", d.dump()));
        assert_eq!(String::from_utf8_lossy(&got), want, "{path}");
    }
    // Files on disk are still there, and the grub2 alias serves the boot loader binary.
    assert_eq!(
        tftp_get(&pair, &bh, "pxelinux.0").as_deref(),
        Some(&b"PXELINUX"[..])
    );
    assert_eq!(
        tftp_get(&pair, &bh, "boot/grub2/grub2-n2").as_deref(),
        Some(&b"GRUB-BINARY"[..])
    );
    assert!(String::from_utf8_lossy(
        &tftp_get(&pair, &bh, "boot/grub2/grub.cfg-01-52-54-00-aa-00-02").expect("grub.cfg")
    )
    .contains("linuxefi /xcat/osimage/"));
    // A node that boots from pxelinux has no xNBA file; unknown nodes get the network's discovery file.
    assert!(tftp_get(&pair, &bh, "xcat/xnba/nodes/n1").is_none());
    let disc = tftp_get(&pair, &bh, "xcat/xnba/nets/10.99.60.0_24").expect("discovery file");
    assert!(
        String::from_utf8_lossy(&disc).contains("xcatd=10.99.60.1:3001"),
        "{}",
        String::from_utf8_lossy(&disc)
    );
    // A change of state is served at once.
    bh.ok(&["nodeset", "n1", "boot"]);
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(
        String::from_utf8_lossy(&tftp_get(&pair, &bh, "pxelinux.cfg/n1").expect("boot file")),
        "#boot\nDEFAULT xCAT\nLABEL xCAT\nLOCALBOOT 0\n"
    );
}
