//! End to end with a real distribution: genimage builds a Debian 12 root from Debian's archive
//! (mmdebstrap; packages cached under target/image-cache so only the first run downloads),
//! packimage packs it, and a QEMU VM boots it **stateless** through bootherd — DHCP, pxelinux,
//! the image's kernel and genimage's initramfs over TFTP, the packed root over HTTP into RAM —
//! reaches systemd's multi-user target, runs its postscript through the shipped runner and
//! reports `booted`. Then the same root, prepared with liteimg, boots **statelite** twice: root
//! read-only over bootherd's NFS, a persistent file kept across the boots.
//!
//! Bad input against the real build: a package that does not exist and a failing postinstall
//! script each fail naming the step and the culprit, and leave the built image as it was.

mod common;
use common::vm;
use common::{Bh, Daemon};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MAC: &str = "52:54:00:99:74:05";

/// The Debian mirror this machine's apt uses (deb822 or one-line sources), else Debian's CDN.
fn mirror() -> String {
    let mut texts = Vec::new();
    for f in [
        "/etc/apt/sources.list.d/debian.sources",
        "/etc/apt/sources.list",
    ] {
        if let Ok(t) = std::fs::read_to_string(f) {
            texts.push(t);
        }
    }
    for t in &texts {
        for l in t.lines() {
            let l = l.trim();
            if let Some(u) = l.strip_prefix("URIs:") {
                if let Some(u) = u.split_whitespace().find(|u| !u.contains("security")) {
                    return u.to_string();
                }
            }
            if let Some(rest) = l.strip_prefix("deb ") {
                if let Some(u) = rest
                    .split_whitespace()
                    .find(|w| w.starts_with("http") && !w.contains("security"))
                {
                    return u.to_string();
                }
            }
        }
    }
    "http://deb.debian.org/debian".into()
}

fn wait_status(bh: &Bh, node: &str, want: &str, within: Duration) -> String {
    let start = Instant::now();
    loop {
        let out = bh.ok(&["nodels", node, "nodelist.status"]);
        let st = out
            .split_once(':')
            .map(|x| x.1)
            .unwrap_or("")
            .trim()
            .to_string();
        if st == want || start.elapsed() > within {
            return st;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_genimaged_debian_boots_stateless_and_statelite_through_bootherd() {
    let bh = Bh::new();
    let tftp = vm::tftp_root(&bh);
    let install = bh.path("install");
    std::fs::create_dir_all(install.join("postscripts")).expect("mkdir");
    let cache: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/image-cache");
    bh.ok(&[
        "chtab",
        "key=installdir",
        &format!("site.value={}", install.display()),
    ]);
    bh.ok(&[
        "chtab",
        "key=imagepkgcache",
        &format!("site.value={}", cache.display()),
    ]);
    bh.ok(&["chtab", "key=dhcpinterfaces", "site.value=br0"]);
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "vmnet",
        "net=10.99.74.0",
        "mask=255.255.255.0",
    ]);

    // The shipped Debian profile, plus a test exlist that leaves the kernel modules out of the
    // RAM image (the initramfs already loaded what the VM needs), so it boots faster under TCG.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("netboot-templates/netboot/debian");
    let exlist = bh.file(
        "test.exlist",
        "./lib/modules/*/kernel*\n./usr/lib/modules/*/kernel*\n",
    );
    let rootimgdir = install.join("netboot/debian12/x86_64/compute");
    bh.ok(&[
        "mkdef",
        "-t",
        "osimage",
        "-o",
        "deb12",
        "imagetype=linux",
        "provmethod=netboot",
        "osvers=debian12",
        "osarch=x86_64",
        "profile=compute",
        &format!("pkglist={}", shipped.join("compute.pkglist").display()),
        &format!(
            "exlist={},{exlist}",
            shipped.join("compute.exlist").display()
        ),
        &format!(
            "postinstall={}",
            shipped.join("compute.postinstall").display()
        ),
        &format!("pkgdir={} bookworm main", mirror()),
        &format!("rootimgdir={}", rootimgdir.display()),
    ]);
    let t = Instant::now();
    let out = bh.ok(&["genimage", "deb12"]);
    eprintln!("genimage took {:?}:\n{out}", t.elapsed());
    let root = rootimgdir.join("rootimg");
    assert!(root.join("etc/debian_version").is_file());
    assert!(root.join("opt/xcat/xcatdsklspost").is_file());
    assert!(root
        .join("etc/systemd/system/multi-user.target.wants/xcatpostinit1.service")
        .symlink_metadata()
        .is_ok());
    assert!(root.join("etc/init.d/statelite").is_file());
    assert!(
        root.join("usr/sbin/sshd").is_file(),
        "openssh-server from the pkglist"
    );
    assert!(
        root.join("sbin/mount.nfs").is_file(),
        "nfs-common from the pkglist"
    );
    assert!(tftp.join("xcat/osimage/deb12/kernel").is_file());
    assert!(tftp
        .join("xcat/osimage/deb12/initrd-stateless.gz")
        .is_file());
    // The postinstall ran with the root as $1.
    assert!(root
        .join("etc/systemd/journald.conf.d/bootherd.conf")
        .is_file());

    let out = bh.ok(&["packimage", "deb12"]);
    assert!(out.contains("rootimg.cpio.gz written"), "{out}");
    assert!(rootimgdir.join("rootimg.cpio.gz").is_file());

    // --- Bad input against the built image: it must stay as it is.
    std::fs::write(root.join("etc/bootherd-previous"), "kept\n").expect("marker");
    let bad = bh.file("bad.pkglist", "systemd\nno-such-package-bootherd\n");
    bh.ok(&[
        "mkdef",
        "-t",
        "osimage",
        "-o",
        "badpkg",
        "imagetype=linux",
        "provmethod=netboot",
        "osvers=debian12",
        "osarch=x86_64",
        "profile=compute",
        &format!("pkglist={bad}"),
        &format!("pkgdir={} bookworm main", mirror()),
        &format!("rootimgdir={}", rootimgdir.display()),
    ]);
    let e = bh.fail(&["genimage", "badpkg"]);
    assert!(e.contains("step 'install' failed"), "{e}");
    assert!(
        e.contains("no-such-package-bootherd"),
        "the missing package is named: {e}"
    );
    let failing = bh.file(
        "fail.postinstall",
        "#!/bin/sh\necho 'about to fail' >&2\nexit 3\n",
    );
    std::fs::set_permissions(
        &failing,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    bh.ok(&[
        "chdef",
        "-t",
        "osimage",
        "-o",
        "badpkg",
        &format!("pkglist={}", shipped.join("compute.pkglist").display()),
        &format!("postinstall={failing}"),
    ]);
    let e = bh.fail(&["genimage", "badpkg", "--noupdate"]);
    assert!(e.contains("step 'postinstall' failed"), "{e}");
    assert!(e.contains(&format!("postinstall script {failing}")), "{e}");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/bootherd-previous")).expect("previous image intact"),
        "kept\n"
    );
    assert!(
        !rootimgdir.join(".rootimg.new").exists(),
        "the failed build was cleaned up"
    );

    // --- Stateless boot.
    // xCAT's default postscripts run first (the xcatdefaults row; bootherd serve installs its
    // own syslog, remoteshell, syncfiles, otherpkgs): remoteshell lets the management node's
    // key in as root, which the test proves by logging in with it.
    let key = bh.path("id_ed25519");
    let o = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen (openssh-client)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::create_dir_all(install.join("postscripts/_ssh")).expect("mkdir _ssh");
    std::fs::copy(
        bh.path("id_ed25519.pub"),
        install.join("postscripts/_ssh/authorized_keys"),
    )
    .expect("publish the key");
    std::fs::write(
        install.join("postscripts/bootmark"),
        "#!/bin/sh\n\
         state=$(systemctl is-system-running 2>/dev/null)\n\
         root=$(findmnt -n -o FSTYPE / 2>/dev/null || awk '$2==\"/\"{print $3}' /proc/mounts | tail -n 1)\n\
         echo \"BOOTHERD-MARKER: postscript ran on $NODE, root $root, systemd $state\" > /dev/console\n\
         if [ -d /persist ]; then\n\
           echo \"BOOTHERD-MARKER: persist holds [$(tr '\\n' ' ' < /persist/marker 2>/dev/null)]\" > /dev/console\n\
           echo \"boot-$(cat /proc/sys/kernel/random/uuid | cut -c1-8)\" >> /persist/marker\n\
           sync\n\
           if touch /usr/rootwritable 2>/dev/null; then echo 'BOOTHERD-MARKER: root WRITABLE'; else echo 'BOOTHERD-MARKER: root read-only'; fi > /dev/console\n\
         fi\n\
         exit 0\n",
    )
    .expect("postscript");
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "n1",
        "groups=all",
        &format!("mac={MAC}"),
        "ip=10.99.74.5",
        "netboot=pxe",
        "serialport=0",
        "serialspeed=115200",
        "postscripts=bootmark",
    ]);
    bh.ok(&["nodeset", "n1", "osimage=deb12"]);
    let shown = bh.ok(&["nodeset", "n1", "show"]);
    assert!(
        shown.contains(":80/install/netboot/debian12/x86_64/compute/rootimg.cpio.gz XCAT="),
        "the image URL is under /install, where HTTP serves it:\n{shown}"
    );
    let ns = vm::bridge("iv", "10.99.74");
    let d = Daemon::start(&bh, &ns, &[]);
    let serial = bh.path("serial-netboot.txt");
    // A hardware RNG, as real nodes have: the image makes its ssh host keys at boot.
    let mut vmproc = vm::qemu(&ns, &serial, MAC, 1536, &["-device", "virtio-rng-pci"]);
    // Until the postscripts have run and reported (systemd's own "Multi-User System" line may
    // never reach the console once the serial getty has taken it).
    let ok = vm::wait_serial(&serial, "xcatdsklspost: done:", Duration::from_secs(420));
    // The image's own sshd answers (host keys made at boot): OpenSSH's ssh-keyscan asks it.
    let keys = if ok {
        let o = ns
            .command("ssh-keyscan")
            .args(["-T", "20", "-t", "ed25519", "10.99.74.5"])
            .output()
            .expect("ssh-keyscan (openssh-client)");
        String::from_utf8_lossy(&o.stdout).into_owned()
    } else {
        String::new()
    };
    // Root login with the management node's key, which only remoteshell put there.
    let login = if ok {
        let k = key.display().to_string();
        let o = ns
            .command("ssh")
            .args([
                "-i",
                k.as_str(),
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "ConnectTimeout=20",
                "root@10.99.74.5",
                "cat /etc/hostname; id -u",
            ])
            .output()
            .expect("ssh (openssh-client)");
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    } else {
        String::new()
    };
    let _ = vmproc.kill();
    let _ = vmproc.wait();
    let console = std::fs::read_to_string(&serial).unwrap_or_default();
    assert!(
        ok,
        "the stateless boot did not reach its postscript.\nserial:\n{console}\ndaemon:\n{}",
        d.dump()
    );
    assert!(
        console.contains("root image unpacked into RAM"),
        "{console}"
    );
    assert!(
        keys.contains("10.99.74.5 ssh-ed25519 "),
        "the node's sshd did not answer: {keys:?}\n{console}"
    );
    assert!(
        login.lines().any(|l| l == "0"),
        "root login with the management node's key (remoteshell) failed: {login}\n{console}"
    );
    assert!(
        console.contains("BOOTHERD-MARKER: postscript ran on n1, root tmpfs"),
        "{console}"
    );
    assert_eq!(
        wait_status(&bh, "n1", "booted", Duration::from_secs(30)),
        "booted",
        "{}",
        d.dump()
    );

    // --- Statelite: the same root, read-only over NFS, a persistent path.
    std::fs::create_dir_all(root.join("persist")).expect("persist dir");
    let state = bh.path("state");
    std::fs::create_dir_all(&state).expect("state");
    bh.ok(&[
        "mkdef",
        "-t",
        "osimage",
        "-o",
        "deb12-lite",
        "imagetype=linux",
        "provmethod=statelite",
        "osvers=debian12",
        "osarch=x86_64",
        "profile=compute",
        &format!("rootimgdir={}", rootimgdir.display()),
    ]);
    bh.ok(&[
        "tabrestore",
        &bh.file(
            "litefile.csv",
            "#image,file,options,comments,disable\n\"ALL\",\"/etc/\",\"tmpfs\",,\n\"ALL\",\"/var/\",\"tmpfs\",,\n\"ALL\",\"/tmp/\",\"tmpfs\",,\n\"ALL\",\"/root/\",\"tmpfs\",,\n\"ALL\",\"/persist/\",\"persistent\",,\n",
        ),
    ]);
    bh.ok(&["liteimg", "deb12-lite"]);
    bh.ok(&["genimage", "deb12-lite", "--onlyinitrd"]);
    assert!(tftp
        .join("xcat/osimage/deb12-lite/initrd-statelite.gz")
        .is_file());
    bh.ok(&[
        "chtab",
        "node=n1",
        &format!("statelite.statemnt=10.99.74.1:{}", state.display()),
    ]);
    bh.ok(&["nodeset", "n1", "osimage=deb12-lite"]);
    let boot = |n: u32| {
        vm::run_until(
            &ns,
            &bh.path(&format!("serial-lite{n}.txt")),
            MAC,
            1024,
            &["-device", "virtio-rng-pci"],
            "BOOTHERD-MARKER: root ",
            Duration::from_secs(420),
        )
    };
    let (ok, console) = boot(1);
    assert!(
        ok,
        "the first statelite boot did not reach its postscript.\nserial:\n{console}\ndaemon:\n{}",
        d.dump()
    );
    assert!(
        console.contains("BOOTHERD-MARKER: postscript ran on n1, root nfs"),
        "{console}"
    );
    assert!(
        console.contains("BOOTHERD-MARKER: persist holds []"),
        "{console}"
    );
    assert!(
        console.contains("BOOTHERD-MARKER: root read-only"),
        "{console}"
    );
    let marker = std::fs::read_to_string(state.join("n1/persist/marker")).unwrap_or_default();
    assert!(
        marker.starts_with("boot-"),
        "the marker reached the node's state directory: {marker:?}"
    );
    assert_eq!(
        wait_status(&bh, "n1", "booted", Duration::from_secs(30)),
        "booted"
    );
    let (ok, console) = boot(2);
    assert!(
        ok,
        "the second statelite boot did not reach its postscript.\nserial:\n{console}\ndaemon:\n{}",
        d.dump()
    );
    assert!(
        console.contains(&format!(
            "BOOTHERD-MARKER: persist holds [{} ]",
            marker.trim()
        )),
        "the second boot sees the first boot's marker:\n{console}"
    );
    assert!(!root.join("usr/rootwritable").exists());
}
