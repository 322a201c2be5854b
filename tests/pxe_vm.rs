//! End to end: a QEMU VM (software emulation, iPXE NIC ROM) defined as a node with netboot pxe
//! PXE-boots from bootherd — DHCP → pxelinux.0 → its rendered config → kernel and a busybox
//! initramfs over TFTP → a marker on the serial console. After `nodeset <node> boot` the next boot
//! is told LOCALBOOT. The same with xNBA's script over HTTP, and with OVMF's own UEFI PXE chaining
//! xNBA's EFI build. Every boot is checked for waits between its lease and its first file, on the
//! daemon's own log clock.

mod common;
use common::vm::{self, assets, wait_serial};
use common::{Bh, Daemon, Netns};

use std::path::Path;
use std::time::Duration;

const MAC: &str = "52:54:00:99:70:01";
const IMG: &str = "testimg";

/// A newc cpio archive (the initramfs format), written here so the test needs no cpio tool.
fn cpio(entries: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut push = |name: &str, mode: u32, data: &[u8], ino: u32| {
        let namesize = name.len() + 1;
        let hdr = format!(
            "070701{ino:08X}{mode:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{namesize:08X}{:08X}",
            0, 0, 1, 0, data.len(), 0, 0, 0, 0, 0
        );
        out.extend_from_slice(hdr.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    for (i, (name, mode, data)) in entries.iter().enumerate() {
        push(name, *mode, data, i as u32 + 1);
    }
    push("TRAILER!!!", 0, &[], 0);
    out
}

fn initramfs(busybox: &[u8]) -> Vec<u8> {
    let init = "#!/bin/sh\nmount -t proc proc /proc\nmount -t sysfs sys /sys\nmount -t devtmpfs dev /dev\necho \"BOOTHERD-MARKER: /init reached\" > /dev/console\necho \"BOOTHERD-MARKER: cmdline $(cat /proc/cmdline)\" > /dev/console\npoweroff -f\n";
    let mut e: Vec<(&str, u32, Vec<u8>)> = vec![
        ("bin", 0o040755, vec![]),
        ("proc", 0o040755, vec![]),
        ("sys", 0o040755, vec![]),
        ("dev", 0o040755, vec![]),
        ("bin/busybox", 0o100755, busybox.to_vec()),
        ("init", 0o100755, init.as_bytes().to_vec()),
    ];
    for applet in ["sh", "mount", "echo", "cat", "poweroff"] {
        e.push((
            Box::leak(format!("bin/{applet}").into_boxed_str()),
            0o120777,
            b"busybox".to_vec(),
        ));
    }
    cpio(&e)
}

fn qemu(ns: &Netns, serial: &Path) -> std::process::Child {
    vm::qemu(ns, serial, MAC, 512, &[])
}

/// A store whose TFTP root has Debian's boot loaders and an install image made of the test kernel
/// and initramfs, a VM node on `net`.0/24 (its `.<host>` address) with `netboot`, set to install;
/// and a server namespace with a bridge the VM's tap joins, running `bootherd serve`.
fn vm_lab(
    tag: &str,
    net: &str,
    node: &str,
    host: u8,
    netboot: &str,
    dynamic: bool,
) -> (Bh, Netns, Daemon) {
    let a = assets();
    let bh = Bh::new();
    let tftp = vm::tftp_root(&bh);
    let img = tftp.join(format!("xcat/osimage/{IMG}"));
    std::fs::create_dir_all(&img).expect("mkdir");
    std::fs::copy(a.join("vmlinuz"), img.join("vmlinuz")).expect("kernel");
    std::fs::write(
        img.join("initrd.img"),
        initramfs(&std::fs::read(a.join("busybox")).expect("busybox")),
    )
    .expect("initrd");
    bh.ok(&["chtab", "key=dhcpinterfaces", "site.value=br0"]);
    // bench/pxeboot.sh measures the same boot without router advertisements (the wait they remove).
    if std::env::var("BOOTHERD_BENCH_RA").is_ok_and(|v| v == "no") {
        bh.ok(&["chtab", "key=routeradvertisements", "site.value=no"]);
    }
    let (netarg, range) = (
        format!("net={net}.0"),
        format!("dynamicrange={net}.100-{net}.120"),
    );
    let mut netdef = vec![
        "mkdef",
        "-t",
        "network",
        "-o",
        "vmnet",
        netarg.as_str(),
        "mask=255.255.255.0",
    ];
    if dynamic {
        netdef.push(range.as_str());
    }
    bh.ok(&netdef);
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
        node,
        "groups=all",
        &format!("mac={MAC}"),
        &format!("ip={net}.{host}"),
        &format!("netboot={netboot}"),
        "serialport=0",
        "serialspeed=115200",
    ]);
    bh.ok(&["nodeset", node, &format!("osimage={IMG}")]);
    let ns = vm::bridge(tag, net);
    let d = Daemon::start(&bh, &ns, &[]);
    assert!(
        d.wait_for("TFTP listening", 5) && d.wait_for("DHCP listening", 5),
        "{}",
        d.dump()
    );
    (bh, ns, d)
}

#[test]
fn a_vm_pxe_boots_its_rendered_config_then_is_told_to_boot_locally() {
    let (bh, ns, d) = vm_lab("vm", "10.99.70", "vm70", 70, "pxe", true);

    let serial = bh.path("serial1.txt");
    let mut vm = qemu(&ns, &serial);
    let booted = wait_serial(
        &serial,
        "BOOTHERD-MARKER: /init reached",
        Duration::from_secs(240),
    );
    let _ = vm.kill();
    let _ = vm.wait();
    let console = std::fs::read_to_string(&serial).unwrap_or_default();
    assert!(
        booted,
        "the VM did not reach its initramfs.\nserial:\n{console}\ndaemon:\n{}",
        d.dump()
    );
    assert!(
        console.contains("inst.ks=http://10.99.70.1:80/install/autoinst/vm70"),
        "the rendered command line reached the kernel:\n{console}"
    );
    assert!(
        d.wait_for("pxelinux.cfg/01-52-54-00-99-70-01", 1),
        "pxelinux fetched its rendered config by MAC:\n{}",
        d.dump()
    );
    no_wait_after_lease(&d, "10.99.70.70", "SeaBIOS + iPXE ROM, pxelinux", 1);
    // The boot's timeline: every step, in order.
    assert_timeline(
        &bh,
        "vm70",
        &[
            ("dhcp-offer", "10.99.70.70 to 52:54:00:99:70:01"),
            ("dhcp-ack", "10.99.70.70 to 52:54:00:99:70:01, boot file "),
            ("tftp", "  pxelinux.0 ("),
            ("tftp", "pxelinux.cfg/01-52-54-00-99-70-01 ("),
            ("tftp", &format!("xcat/osimage/{IMG}/vmlinuz (")),
            ("tftp", &format!("xcat/osimage/{IMG}/initrd.img (")),
        ],
    );

    // Local boot next time: pxelinux is told LOCALBOOT and hands back to the BIOS (no disk here).
    bh.ok(&["nodeset", "vm70", "boot"]);
    std::thread::sleep(Duration::from_millis(600));
    let served_before = d
        .log
        .lock()
        .map(|l| {
            l.iter()
                .filter(|x| {
                    x.contains("TFTP sent") && x.contains("pxelinux.cfg/01-52-54-00-99-70-01")
                })
                .count()
        })
        .unwrap_or(0);
    let serial2 = bh.path("serial2.txt");
    let mut vm = qemu(&ns, &serial2);
    let handed_back = wait_serial(&serial2, "No bootable device", Duration::from_secs(240));
    let _ = vm.kill();
    let _ = vm.wait();
    let console = std::fs::read_to_string(&serial2).unwrap_or_default();
    assert!(
        !console.contains("BOOTHERD-MARKER"),
        "after nodeset boot the VM must not boot the image again:\n{console}"
    );
    let served_after = d
        .log
        .lock()
        .map(|l| {
            l.iter()
                .filter(|x| {
                    x.contains("TFTP sent") && x.contains("pxelinux.cfg/01-52-54-00-99-70-01")
                })
                .count()
        })
        .unwrap_or(0);
    assert!(
        served_after > served_before,
        "the second boot fetched its config again:\n{}",
        d.dump()
    );
    assert!(
        handed_back,
        "pxelinux's LOCALBOOT returned to the BIOS:\n{console}"
    );
}

#[test]
fn a_vm_with_netboot_xnba_boots_its_ipxe_script_and_kernel_over_http() {
    let (bh, ns, d) = vm_lab("vx", "10.99.71", "vm71", 71, "xnba", false);
    let serial = bh.path("serial.txt");
    let poweron = vm::utc_secs_now();
    let mut vm = qemu(&ns, &serial);
    let booted = wait_serial(
        &serial,
        "BOOTHERD-MARKER: /init reached",
        Duration::from_secs(240),
    );
    let init = vm::utc_secs_now() - poweron;
    let _ = vm.kill();
    let _ = vm.wait();
    let ra = std::env::var("BOOTHERD_BENCH_RA").unwrap_or_else(|_| "yes".into());
    eprintln!(
        "{} initramfs={init:.2}",
        vm::boot_times(
            &d.log.lock().map(|l| l.clone()).unwrap_or_default(),
            "10.99.71.71",
            poweron,
            &format!("seabios-ipxe-xnba-ra={ra}"),
            "vmlinuz"
        )
    );
    let console = std::fs::read_to_string(&serial).unwrap_or_default();
    assert!(
        booted,
        "the VM did not reach its initramfs.\nserial:\n{console}\ndaemon:\n{}",
        d.dump()
    );
    // The iPXE ROM was sent straight to its rendered script by HTTP, and fetched the kernel by HTTP.
    assert!(
        console.contains("http://10.99.71.1/tftpboot/xcat/xnba/nodes/vm71"),
        "{console}"
    );
    assert!(
        console.contains("BOOTIF=01-52-54-00-99-70-01"),
        "iPXE filled in BOOTIF: {console}"
    );
    no_wait_after_lease(&d, "10.99.71.71", "SeaBIOS + iPXE ROM, xNBA script", 1);
    assert_timeline(
        &bh,
        "vm71",
        &[
            ("dhcp-offer", "10.99.71.71 to 52:54:00:99:70:01"),
            (
                "dhcp-ack",
                "boot file http://10.99.71.1/tftpboot/xcat/xnba/nodes/vm71",
            ),
            ("http", "GET /tftpboot/xcat/xnba/nodes/vm71 ("),
            (
                "http",
                &format!("GET /tftpboot/xcat/osimage/{IMG}/vmlinuz ("),
            ),
            (
                "http",
                &format!("GET /tftpboot/xcat/osimage/{IMG}/initrd.img ("),
            ),
        ],
    );
}

/// `bootherd timeline <node>` lists these (event, text) steps in this order (other events may
/// come between them: retries, the loader's own files).
fn assert_timeline(bh: &Bh, node: &str, steps: &[(&str, &str)]) {
    // The recorder writes every quarter second.
    std::thread::sleep(Duration::from_millis(800));
    let text = bh.ok(&["timeline", node]);
    eprintln!("timeline of {node}:\n{text}");
    let lines: Vec<&str> = text.lines().collect();
    let mut at = 0;
    for (event, what) in steps {
        match lines[at..]
            .iter()
            .position(|l| l.split_whitespace().nth(2) == Some(*event) && l.contains(what))
        {
            Some(i) => at += i + 1,
            None => {
                panic!("the timeline of {node} lacks '{event} … {what}' after line {at}:\n{text}")
            }
        }
    }
}

/// Most the firmware may take, by the daemon's clock, between a lease and the first file it asks
/// for: with nothing to wait for it is well under a second even in software emulation. iPXE took
/// 13 s here, waiting for an IPv6 router advertisement (and for ProxyDHCP offers) before booting.
const MAX_LEASE_TO_FILE_SECS: f64 = 3.0;

/// Every lease of `ip` in the daemon's log (at least `leases`) was followed by a file request
/// within [`MAX_LEASE_TO_FILE_SECS`].
fn no_wait_after_lease(d: &Daemon, ip: &str, firmware: &str, leases: usize) {
    let log = d.log.lock().map(|l| l.clone()).unwrap_or_default();
    let waits = vm::lease_to_first_file(&log, ip);
    eprintln!(
        "{firmware}: lease → first file {waits:.3?} s; first offer → first file {:.3?} s",
        vm::offer_to_first_file(&log, ip)
    );
    assert!(
        waits.len() >= leases,
        "{firmware}: expected {leases} lease(s) of {ip} each followed by a file request, found {waits:?}:\n{}",
        d.dump()
    );
    for w in &waits {
        assert!(
            *w < MAX_LEASE_TO_FILE_SECS,
            "{firmware}: {w:.1} s between a lease of {ip} and the first file it asked for ({waits:.3?}):\n{}",
            d.dump()
        );
    }
}

/// EDK2's own UEFI PXE (OVMF, the NIC without its iPXE ROM) with netboot xnba: DHCP → xNBA's EFI
/// build (iPXE) over TFTP → iPXE's own DHCP → its rendered script and the kernel over HTTP. Neither
/// firmware sits between its lease and its first file.
#[test]
fn a_uefi_vm_pxe_boots_xnba_without_waiting_after_its_leases() {
    let (bh, ns, d) = vm_lab("vu", "10.99.72", "vm72", 72, "xnba", false);
    let serial = bh.path("serial.txt");
    let fw = vm::ovmf(&bh);
    let fw: Vec<&str> = fw.iter().map(String::as_str).collect();
    let mut vm = vm::qemu_nic(&ns, &serial, MAC, 512, ",romfile=", &fw);
    let booted = wait_serial(
        &serial,
        "BOOTHERD-MARKER: /init reached",
        Duration::from_secs(300),
    );
    let _ = vm.kill();
    let _ = vm.wait();
    let console = std::fs::read_to_string(&serial).unwrap_or_default();
    assert!(
        booted,
        "the UEFI VM did not reach its initramfs.\nserial:\n{console}\ndaemon:\n{}",
        d.dump()
    );
    assert!(
        console.contains("Start PXE over IPv4"),
        "EDK2's own PXE booted (not an iPXE ROM): {console}"
    );
    assert!(
        console.contains("http://10.99.72.1/tftpboot/xcat/xnba/nodes/vm72.uefi"),
        "{console}"
    );
    // EDK2's lease → xnba.efi by TFTP; iPXE's lease → its script by HTTP.
    no_wait_after_lease(&d, "10.99.72.72", "OVMF UEFI PXE, then iPXE EFI", 2);
}

/// EDK2's UEFI PXE with netboot grub2: the answer names the grub2 boot loader (Debian's signed
/// network GRUB, which reads only `/grub/grub.cfg`); bootherd's chain there turns the MAC into
/// xCAT's `boot/grub2/grub.cfg-01-<mac>`, and GRUB boots the node's kernel and initramfs from it.
#[test]
fn a_uefi_vm_boots_grub2_through_the_mac_chain() {
    let (bh, ns, d) = vm_lab("vg", "10.99.73", "vm73", 73, "grub2", false);
    let serial = bh.path("serial.txt");
    let fw = vm::ovmf(&bh);
    let fw: Vec<&str> = fw.iter().map(String::as_str).collect();
    let mut vm = vm::qemu_nic(&ns, &serial, MAC, 512, ",romfile=", &fw);
    let booted = wait_serial(
        &serial,
        "BOOTHERD-MARKER: /init reached",
        Duration::from_secs(300),
    );
    let _ = vm.kill();
    let _ = vm.wait();
    let console = String::from_utf8_lossy(&std::fs::read(&serial).unwrap_or_default()).into_owned();
    assert!(
        booted,
        "the grub2 UEFI VM did not reach its initramfs.\nserial:\n{console}\ndaemon:\n{}",
        d.dump()
    );
    let log = d.dump();
    let mac = MAC.replace(':', "-").to_ascii_lowercase();
    for f in [
        "boot/grub2/grub2-vm73".to_string(),
        "grub/grub.cfg".to_string(),
        format!("boot/grub2/grub.cfg-01-{mac}"),
    ] {
        assert!(log.contains(&f), "{f} was not asked for:\n{log}");
    }
    no_wait_after_lease(&d, "10.99.73.73", "OVMF UEFI PXE, then GRUB", 1);
}
