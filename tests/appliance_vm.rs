//! The appliance VM: `tools/appliance-image.sh` builds the Debian 12 disk with the package, seeded
//! with a small cluster (a network, a node with the second VM's MAC, an osimage of the test kernel
//! and a busybox initramfs, `nodeset`); the image boots in QEMU on a bridge in a namespace, its
//! systemd starts bootherd on eth0, and a second VM PXE-boots from it to the image's /init, with
//! the command line the appliance rendered.

mod common;
use common::{need, vm};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const MAC: &str = "52:54:00:d4:00:11";
const IMG: &str = "rhels9.4-x86_64-install-compute";

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The seed directory: the test kernel, an initramfs whose /init prints a marker and the command
/// line, and seed.sh defining the cluster inside the image.
fn seed(dir: &Path) {
    let a = vm::assets();
    let init = dir.join("initrd");
    for d in ["bin", "proc", "sys", "dev"] {
        std::fs::create_dir_all(init.join(d)).expect("mkdir");
    }
    std::fs::copy(a.join("busybox"), init.join("bin/busybox")).expect("busybox");
    for applet in ["sh", "mount", "echo", "cat", "poweroff"] {
        std::os::unix::fs::symlink("busybox", init.join("bin").join(applet)).expect("applet");
    }
    std::fs::write(
        init.join("init"),
        "#!/bin/sh\nmount -t proc proc /proc\nmount -t devtmpfs dev /dev\necho \"BOOTHERD-MARKER: /init reached\" > /dev/console\necho \"BOOTHERD-MARKER: cmdline $(cat /proc/cmdline)\" > /dev/console\npoweroff -f\n",
    )
    .expect("init");
    let st = Command::new("sh")
        .arg("-c")
        .arg("cd initrd && chmod +x init && find . | cpio -o -H newc --quiet | gzip -1 > ../initrd.img && cd .. && rm -rf initrd")
        .current_dir(dir)
        .status()
        .expect("cpio");
    assert!(st.success(), "building the initramfs failed");
    std::fs::copy(a.join("vmlinuz"), dir.join("vmlinuz")).expect("kernel");
    std::fs::write(
        dir.join("seed.sh"),
        format!(
            "set -e\n\
             mkdir -p /tftpboot/xcat/osimage/{IMG}\n\
             cp vmlinuz initrd.img /tftpboot/xcat/osimage/{IMG}/\n\
             mkdef -t network -o mgmt net=10.214.0.0 mask=255.255.255.0\n\
             mkdef -t osimage -o {IMG} imagetype=linux provmethod=install osvers=rhels9.4 osarch=x86_64 profile=compute\n\
             mkdef -t node -o node01 groups=all mac={MAC} ip=10.214.0.11 netboot=pxe serialport=0 serialspeed=115200\n\
             nodeset node01 osimage={IMG}\n"
        ),
    )
    .expect("seed.sh");
}

#[test]
fn the_appliance_image_boots_and_serves_a_second_vm() {
    need(&[
        ("mmdebstrap", "mmdebstrap"),
        ("mkfs.ext4", "e2fsprogs"),
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("cpio", "cpio"),
    ]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out: PathBuf = root.join(format!("target/appliance-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("out dir");
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rm = Rm(out.clone());
    let seed_dir = out.join("seed");
    std::fs::create_dir_all(&seed_dir).expect("seed dir");
    seed(&seed_dir);

    let deb = common::build_test_deb(&out.join("deb"));
    let t0 = std::time::Instant::now();
    let o = Command::new("bash")
        .arg(root.join("tools/appliance-image.sh"))
        .arg(&out)
        .arg("--seed")
        .arg(&seed_dir)
        .arg("--deb")
        .arg(&deb)
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .expect("tools/appliance-image.sh");
    assert!(
        o.status.success(),
        "tools/appliance-image.sh failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    eprintln!("appliance image built in {:.0?}", t0.elapsed());
    for f in ["disk.img", "vmlinuz", "initrd.img", "run.sh"] {
        assert!(out.join(f).is_file(), "the image build made no {f}");
    }

    // The management network: a bridge (host side 10.215.0.1, another subnet) with two taps.
    let ns = vm::bridge("appl", "10.215.0");
    vm::add_tap(&ns, "tap1");
    let aserial = out.join("appliance-console.txt");
    let _appliance = Kill(
        ns.command("qemu-system-x86_64")
            .args([
                "-machine", "q35", "-accel", "tcg", "-m", "1024", "-smp", "1",
            ])
            .args(["-nographic", "-no-reboot", "-monitor", "none"])
            .arg("-serial")
            .arg(format!("file:{}", aserial.display()))
            .arg("-kernel")
            .arg(out.join("vmlinuz"))
            .arg("-initrd")
            .arg(out.join("initrd.img"))
            .args([
                "-append",
                "root=LABEL=bootherd rw console=ttyS0 net.ifnames=0",
            ])
            .arg("-drive")
            .arg(format!(
                "file={},if=virtio,format=raw,snapshot=on",
                out.join("disk.img").display()
            ))
            .args([
                "-netdev",
                "tap,id=m0,ifname=tap0,script=no,downscript=no",
                "-device",
                "virtio-net-pci,netdev=m0,mac=52:54:00:d4:00:01",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("qemu (appliance)"),
    );
    let up = vm::wait_serial(&aserial, "bootherd.service", Duration::from_secs(300))
        && vm::wait_serial(&aserial, "login:", Duration::from_secs(120));
    let console =
        String::from_utf8_lossy(&std::fs::read(&aserial).unwrap_or_default()).into_owned();
    assert!(
        up,
        "the appliance VM did not boot to bootherd and a login prompt:\n{console}"
    );
    assert!(
        common::plain(&console).contains("Started bootherd.service"),
        "systemd did not start bootherd on the appliance:\n{console}"
    );

    eprintln!(
        "appliance VM up (bootherd started, login prompt) after {:.0?}",
        t0.elapsed()
    );

    // The second VM PXE-boots from the appliance.
    let nserial = out.join("node-console.txt");
    let mut node = vm::qemu_tap(&ns, "tap1", &nserial, MAC, 512, "", &[]);
    let booted = vm::wait_serial(
        &nserial,
        "BOOTHERD-MARKER: /init reached",
        Duration::from_secs(300),
    );
    eprintln!("second VM reached /init after {:.0?}", t0.elapsed());
    let _ = node.kill();
    let _ = node.wait();
    let nconsole =
        String::from_utf8_lossy(&std::fs::read(&nserial).unwrap_or_default()).into_owned();
    assert!(
        booted,
        "the second VM did not boot from the appliance:\n{nconsole}\nappliance:\n{}",
        String::from_utf8_lossy(&std::fs::read(&aserial).unwrap_or_default())
    );
    assert!(
        nconsole.contains("inst.ks=http://10.214.0.1:80/install/autoinst/node01"),
        "the node's command line was not the appliance's rendering:\n{nconsole}"
    );
}
