//! End to end: a QEMU VM netboots into statelite — pxelinux, Debian's kernel, the initramfs built
//! by statelite/mkinitrd.sh — mounts its root read-only from bootherd's NFS export, gets a tmpfs
//! and a persistent path from rc.statelite, writes a marker into the persistent one and powers
//! off; the second boot finds the marker, and the root is still read-only.

mod common;
use common::vm;
use common::{Bh, Daemon};
use std::path::Path;
use std::time::Duration;

const MAC: &str = "52:54:00:99:73:05";

/// A tiny root image: busybox with the applets the init needs, and an init that reports.
fn rootimg(root: &Path, busybox: &Path) {
    for d in [
        "bin",
        "sbin",
        "proc",
        "sys",
        "dev",
        "tmp",
        "etc",
        "root",
        "usr",
        "var/lib/state",
    ] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::copy(busybox, root.join("bin/busybox")).expect("busybox");
    for a in [
        "sh", "mount", "echo", "cat", "touch", "poweroff", "sync", "grep", "date", "head", "tr",
        "sed",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).expect("applet");
    }
    let init = r#"#!/bin/sh
mount -t proc proc /proc
echo "BOOTHERD-MARKER: statelite root up"
if touch /usr/written 2>/dev/null; then echo "BOOTHERD-MARKER: root WRITABLE"; else echo "BOOTHERD-MARKER: root read-only"; fi
if echo x > /tmp/scratch; then echo "BOOTHERD-MARKER: tmpfs writable"; fi
if [ -f /var/lib/state/marker ]; then echo "BOOTHERD-MARKER: found $(cat /var/lib/state/marker | tr '\n' ' ')"; fi
echo "boot-$(head -c 8 /proc/sys/kernel/random/uuid)" >> /var/lib/state/marker
grep -c . /.statelite/statelite.log | sed 's/^/BOOTHERD-MARKER: log lines /'
sync
echo "BOOTHERD-MARKER: done"
poweroff -f
"#;
    std::fs::write(root.join("sbin/init"), init).expect("init");
    std::fs::set_permissions(
        root.join("sbin/init"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
}

#[test]
fn a_vm_boots_statelite_from_the_nfs_export_and_keeps_its_persistent_state() {
    let a = vm::assets();
    let bh = Bh::new();
    let tftp = vm::tftp_root(&bh);
    let imgdir = bh.path("netboot/img");
    rootimg(&imgdir.join("rootimg"), &a.join("busybox"));
    let state = bh.path("state");
    std::fs::create_dir_all(&state).expect("state");
    bh.ok(&["chtab", "key=dhcpinterfaces", "site.value=br0"]);
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "vmnet",
        "net=10.99.73.0",
        "mask=255.255.255.0",
    ]);
    bh.ok(&[
        "mkdef",
        "-t",
        "osimage",
        "-o",
        "img",
        "imagetype=linux",
        "provmethod=statelite",
        "osvers=debian12",
        "osarch=x86_64",
        "profile=compute",
        &format!("rootimgdir={}", imgdir.display()),
    ]);
    bh.ok(&[
        "tabrestore",
        &bh.file(
            "litefile.csv",
            "#image,file,options,comments,disable\n\"ALL\",\"/tmp/\",\"tmpfs\",,\n\"ALL\",\"/var/lib/state/\",\"persistent\",,\n",
        ),
    ]);
    bh.ok(&["liteimg", "img"]);
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n1",
        "groups=all",
        &format!("mac={MAC}"),
        "ip=10.99.73.5",
        "netboot=pxe",
        "serialport=0",
        "serialspeed=115200",
    ]);
    bh.ok(&[
        "chtab",
        "node=n1",
        &format!("statelite.statemnt=10.99.73.1:{}", state.display()),
    ]);
    let osdir = tftp.join("xcat/osimage/img");
    std::fs::create_dir_all(&osdir).expect("osimage dir");
    std::fs::copy(a.join("vmlinuz"), osdir.join("kernel")).expect("kernel");
    let mk = std::process::Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("statelite/mkinitrd.sh"))
        .args(["-m", &a.join("modules").display().to_string()])
        .args(["-b", &a.join("busybox").display().to_string()])
        .args([
            "-o",
            &osdir.join("initrd-statelite.gz").display().to_string(),
        ])
        .output()
        .expect("mkinitrd");
    assert!(
        mk.status.success(),
        "{}",
        String::from_utf8_lossy(&mk.stderr)
    );
    bh.ok(&["nodeset", "n1", "osimage=img"]);
    let ns = vm::bridge("vs", "10.99.73");
    let d = Daemon::start(&bh, &ns, &[]);

    let boot = |n: u32| {
        vm::run_until(
            &ns,
            &bh.path(&format!("serial{n}.txt")),
            MAC,
            512,
            &[],
            "BOOTHERD-MARKER: done",
            Duration::from_secs(300),
        )
    };
    let (ok, console) = boot(1);
    assert!(
        ok,
        "first boot did not finish.\nserial:\n{console}\ndaemon:\n{}",
        d.dump()
    );
    assert!(
        console.contains("BOOTHERD-MARKER: root read-only"),
        "{console}"
    );
    assert!(
        console.contains("BOOTHERD-MARKER: tmpfs writable"),
        "{console}"
    );
    assert!(!console.contains("BOOTHERD-MARKER: found"), "{console}");
    let marker = std::fs::read_to_string(state.join("n1/var/lib/state/marker")).unwrap_or_default();
    assert!(
        marker.starts_with("boot-"),
        "the marker reached the node's state directory: {marker:?}"
    );
    assert!(
        !imgdir.join("rootimg/tmp/scratch").exists()
            && !imgdir.join("rootimg/usr/written").exists()
    );

    let (ok, console) = boot(2);
    assert!(
        ok,
        "second boot did not finish.\nserial:\n{console}\ndaemon:\n{}",
        d.dump()
    );
    assert!(
        console.contains(&format!("BOOTHERD-MARKER: found {} ", marker.trim())),
        "the second boot sees the first boot's marker:\n{console}"
    );
    assert!(
        console.contains("BOOTHERD-MARKER: root read-only"),
        "{console}"
    );
}
