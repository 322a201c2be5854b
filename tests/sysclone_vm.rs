//! sysclone end to end in QEMU. The **golden node** is a VM booting Debian 12 from its own
//! partitioned virtio disk (GPT: BIOS boot partition, EFI system partition on /boot/efi, root
//! ext4, swap): the disk is built by the test from a genimage'd root (kernel, initramfs-tools,
//! grub-pc, grub-efi-amd64-bin, openssh-server, rsync), as an admin would install and tune a
//! node. `imgcapture golden -t sysclone -o goldimg` copies it over ssh/rsync and records its
//! layout; a re-capture copies only what changed. Then **blank VMs** (two by default;
//! `SYSCLONE_CLONES=N` for the benchmark, `SYSCLONE_STREAM_BENCH=1` adds rsync vs tar over HTTP)
//! are set to the image and PXE-boot at the same time into genesis, which partitions their
//! disks, streams the image over HTTP, gives each its
//! identity and boot loader and reboots them; they come up from their own disks with their own
//! host names, addresses and ssh host keys, run their postscript and report `booted`. Another VM
//! whose disk is too small is refused and its disk is not touched. Then the image gets a
//! `linuximage.partitionfile` (an sfdisk script: a smaller root and an extra partition) and a
//! **UEFI VM** (OVMF, EDK2's own PXE) is cloned with it beside the BIOS clones: genesis
//! partitions from the file, grub is installed for UEFI on the ESP, and the clone boots from its
//! disk under OVMF to `booted`. Captures from an unreachable node and without ssh access fail
//! clearly and change nothing.

mod common;
use common::vm;
use common::{Bh, Daemon, Netns};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const NET: &str = "10.99.75";
const GOLD_MAC: &str = "52:54:00:99:75:10";
/// The clones: `c1`…`cN` at `10.99.75.2N`; N from `SYSCLONE_CLONES` (1-8, default 2: the
/// benchmark runs 1 and 4).
fn clones() -> Vec<(String, String, String)> {
    let n: u8 = std::env::var("SYSCLONE_CLONES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=8).contains(n))
        .unwrap_or(2);
    (1..=n)
        .map(|k| {
            (
                format!("c{k}"),
                format!("52:54:00:99:75:{:02x}", 0x20 + k),
                format!("{NET}.{}", 20 + k),
            )
        })
        .collect()
}
const SMALL_MAC: &str = "52:54:00:99:75:13";
/// The UEFI clone.
const UEFI_MAC: &str = "52:54:00:99:75:30";
const UEFI_IP: &str = "10.99.75.30";
const ESP_ID: &str = "ABCD-1234";
const ESP_MIB: u64 = 64;
const ROOT_UUID: &str = "5a1c10ae-0000-4000-8000-00000000600d";
const SWAP_UUID: &str = "5a1c10ae-0000-4000-8000-00000000face";
const MIB: u64 = 1024 * 1024;
const ROOT_MIB: u64 = 1800;
const SWAP_MIB: u64 = 128;

/// The Debian mirror this machine's apt uses, else Debian's CDN (as tests/image_vm.rs).
fn mirror() -> String {
    for f in [
        "/etc/apt/sources.list.d/debian.sources",
        "/etc/apt/sources.list",
    ] {
        let Ok(t) = std::fs::read_to_string(f) else {
            continue;
        };
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

fn status(bh: &Bh, node: &str) -> String {
    let out = bh.ok(&["nodels", node, "nodelist.status"]);
    out.split_once(':')
        .map(|x| x.1)
        .unwrap_or("")
        .trim()
        .to_string()
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().expect("run");
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// bootherd run inside the lab namespace (imgcapture's ssh must reach the VMs).
fn bh_in(bh: &Bh, ns: &Netns, args: &[&str]) -> std::process::Output {
    ns.command(common::bin())
        .args(args)
        .env("BOOTHERD_DB", &bh.db)
        .env_remove("RUST_LOG")
        .output()
        .expect("bootherd in the namespace")
}

/// A raw disk image, GPT as a distribution installer makes it for BIOS and UEFI: a BIOS boot
/// partition (1 MiB at 1 MiB), the EFI system partition (vfat, empty), the root filesystem (made
/// by mke2fs -d from `root`, no mounting needed), then swap; partitioned with sfdisk.
fn golden_disk(bh: &Bh, root: &Path) -> PathBuf {
    let fs = bh.path("root.ext4");
    run(Command::new("mke2fs")
        .args([
            "-F", "-q", "-t", "ext4", "-L", "goldroot", "-U", ROOT_UUID, "-d",
        ])
        .arg(root)
        .arg(&fs)
        .arg(format!("{ROOT_MIB}M")));
    let esp = bh.path("esp.img");
    run(Command::new("mkfs.vfat")
        .args(["-i", &ESP_ID.replace('-', ""), "-n", "ESP", "-C"])
        .arg(&esp)
        .arg((ESP_MIB * 1024).to_string()));
    let swap = bh.path("swap.img");
    run(Command::new("truncate")
        .args(["-s", &format!("{SWAP_MIB}M")])
        .arg(&swap));
    run(Command::new("mkswap")
        .args(["-q", "-L", "goldswap", "-U", SWAP_UUID])
        .arg(&swap));
    let disk = bh.path("golden.img");
    let root_at = 2 + ESP_MIB;
    run(Command::new("truncate")
        .args(["-s", &format!("{}M", root_at + ROOT_MIB + SWAP_MIB + 1)])
        .arg(&disk));
    for (src, at) in [(&esp, 2), (&fs, root_at), (&swap, root_at + ROOT_MIB)] {
        run(Command::new("dd")
            .arg(format!("if={}", src.display()))
            .arg(format!("of={}", disk.display()))
            .args([
                "bs=1M",
                &format!("seek={at}"),
                "conv=notrunc,sparse",
                "status=none",
            ]));
    }
    let _ = std::fs::remove_file(&fs);
    let _ = std::fs::remove_file(&esp);
    let s = |mib: u64| mib * MIB / 512;
    let table = format!(
        "label: gpt\nunit: sectors\nstart=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, name=\"biosgrub\"\nstart=4096, size={}, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"EFI\"\nstart={}, size={}, type=0FC63DAF-8483-4772-8E79-3D69ED477DE4, name=\"root\"\nstart={}, size={}, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name=\"swap\"\n",
        s(ESP_MIB),
        s(root_at),
        s(ROOT_MIB),
        s(root_at + ROOT_MIB),
        s(SWAP_MIB)
    );
    let mut c = Command::new("sfdisk");
    c.args(["-q"])
        .arg(&disk)
        .stdin(std::process::Stdio::piped());
    let mut child = c.spawn().expect("sfdisk (package fdisk)");
    {
        use std::io::Write;
        let mut i = child.stdin.take().expect("stdin");
        i.write_all(table.as_bytes()).expect("table");
    }
    assert!(child.wait().expect("sfdisk").success(), "sfdisk failed");
    disk
}

/// A VM killed when the test ends, failed or not.
struct Vm(std::process::Child);

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn blank_disk(bh: &Bh, name: &str, mib: u64) -> PathBuf {
    let d = bh.path(name);
    run(Command::new("truncate")
        .args(["-s", &format!("{mib}M")])
        .arg(&d));
    d
}

fn disk_arg(p: &Path) -> String {
    format!("file={},format=raw,if=virtio,cache=unsafe", p.display())
}

fn ssh(ns: &Netns, key: &Path, ip: &str, remote: &str) -> std::process::Output {
    ns.command("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
            "-i",
        ])
        .arg(key)
        .arg(format!("root@{ip}"))
        .arg(remote)
        .output()
        .expect("ssh (openssh-client)")
}

fn keyscan(ns: &Netns, ip: &str) -> String {
    let o = ns
        .command("ssh-keyscan")
        .args(["-T", "20", "-t", "ed25519", ip])
        .output()
        .expect("ssh-keyscan");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find(|l| l.contains("ssh-ed25519"))
        .unwrap_or("")
        .to_string()
}

/// The benchmark `SYSCLONE_STREAM_BENCH=1` runs (not in CI): the captured image streamed into
/// blank directories, outside QEMU, one and two at once, by the deploy's way (`wget | tar -x` from
/// bootherd's HTTP service) and by xCAT's (`rsync` from an `rsync --daemon` serving the tree),
/// plus rsync onto a copy that already holds the image (re-imaging) and onto one with 1 file
/// changed. Prints wall times.
fn stream_bench(bh: &Bh, ns: &Netns, tree: &Path) {
    let conf = bh.file(
        "rsyncd.conf",
        &format!(
            "pid file = {}\nuse chroot = no\nnumeric ids = yes\nmax connections = 16\n[goldimg]\n    path = {}\n    read only = yes\n    uid = root\n    gid = root\n",
            bh.path("rsyncd.pid").display(),
            tree.display()
        ),
    );
    let mut rsyncd = Vm(ns
        .command("rsync")
        .args(["--daemon", "--no-detach", "--port", "8873", "--config"])
        .arg(&conf)
        .spawn()
        .expect("rsync --daemon"));
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        rsyncd.0.try_wait().ok().flatten().is_none(),
        "rsync --daemon runs"
    );
    // Over the namespace's loopback (the HTTP service serves images to nodes and this machine).
    let http = "http://127.0.0.1/install/sysclone/images/goldimg.tar";
    let rsync_url = "rsync://127.0.0.1:8873/goldimg/";
    let dest = |k: usize| bh.path(&format!("stream{k}"));
    let cmd = |way: &str, k: usize| -> Command {
        let d = dest(k);
        let mut c = ns.command("sh");
        c.arg("-c");
        if way == "http" {
            c.arg(format!(
                "mkdir -p {d} && wget -q -O - {http} | tar -C {d} --numeric-owner --xattrs --xattrs-include='*' -xpf -",
                d = d.display()
            ));
        } else {
            c.arg(format!(
                "mkdir -p {d} && rsync -aHAX --numeric-ids --delete {rsync_url} {d}/",
                d = d.display()
            ));
        }
        c
    };
    let timed = |way: &str, n: usize| -> f64 {
        let t = Instant::now();
        let kids: Vec<_> = (0..n)
            .map(|k| {
                cmd(way, k)
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("stream")
            })
            .collect();
        for c in kids {
            let o = c.wait_with_output().expect("wait");
            assert!(
                o.status.success(),
                "{way} stream failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        t.elapsed().as_secs_f64()
    };
    let clear = |n: usize| {
        for k in 0..n {
            let _ = std::fs::remove_dir_all(dest(k));
        }
        run(&mut Command::new("sync"));
    };
    for n in [1usize, 2] {
        for way in ["http", "rsync"] {
            clear(n);
            let secs = timed(way, n);
            eprintln!("STREAM {way} x{n} into empty directories: {secs:.1} s");
        }
        // rsync onto copies that already hold the image: re-imaging.
        let secs = timed("rsync", n);
        eprintln!("STREAM rsync x{n} onto an identical copy: {secs:.1} s");
        std::fs::write(dest(0).join("root/golden-marker2"), "changed\n").expect("change");
        let secs = timed("rsync", 1);
        eprintln!("STREAM rsync x1 onto a copy with one file changed: {secs:.1} s");
    }
    clear(2);
    drop(rsyncd);
}

#[test]
fn a_golden_vm_is_captured_and_cloned_onto_two_blank_vms() {
    common::need(&[
        ("sfdisk", "fdisk"),
        ("rsync", "rsync"),
        ("mkfs.vfat", "dosfstools"),
        ("mke2fs", "e2fsprogs"),
        ("ssh", "openssh-client"),
    ]);
    let a = vm::assets();
    let clones = clones();
    let names: Vec<&str> = clones.iter().map(|c| c.0.as_str()).collect();
    let bh = Bh::new();
    let tftp = vm::tftp_root(&bh);
    let install = bh.path("install");
    std::fs::create_dir_all(install.join("postscripts")).expect("mkdir");
    let cache: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/image-cache");
    for (k, v) in [
        ("installdir", install.display().to_string()),
        ("imagepkgcache", cache.display().to_string()),
        ("dhcpinterfaces", "br0".into()),
    ] {
        bh.ok(&["chtab", &format!("key={k}"), &format!("site.value={v}")]);
    }
    bh.ok(&[
        "mkdef",
        "-t",
        "network",
        "-o",
        "vmnet",
        &format!("net={NET}.0"),
        "mask=255.255.255.0",
    ]);

    // --- The golden node's root: Debian with a kernel, its initramfs, grub and ssh.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("netboot-templates/netboot/debian");
    let pkglist = bh.file(
        "golden.pkglist",
        "systemd\nsystemd-sysv\nudev\nkmod\niproute2\nnetbase\nprocps\nopenssh-server\nwget\nrsync\nfdisk\ne2fsprogs\ninitramfs-tools\nlinux-image-amd64\ngrub-pc\ngrub-efi-amd64-bin\n",
    );
    let rootimgdir = install.join("netboot/golden");
    bh.ok(&[
        "mkdef",
        "-t",
        "osimage",
        "-o",
        "golden-build",
        "imagetype=linux",
        "provmethod=netboot",
        "osvers=debian12",
        "osarch=x86_64",
        "profile=compute",
        &format!("pkglist={pkglist}"),
        &format!(
            "postinstall={}",
            shipped.join("compute.postinstall").display()
        ),
        &format!("pkgdir={} bookworm main", mirror()),
        &format!("rootimgdir={}", rootimgdir.display()),
    ]);
    let t = Instant::now();
    bh.ok(&["genimage", "golden-build"]);
    eprintln!("genimage (golden root): {:.1} s", t.elapsed().as_secs_f64());
    let root = rootimgdir.join("rootimg");
    let kver = std::fs::read_dir(root.join("usr/lib/modules"))
        .expect("modules")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .expect("a kernel version");
    // What installing the node would have done: Debian's own initramfs for booting from disk.
    let t = Instant::now();
    run(Command::new("unshare").args(["-m", "sh", "-c"]).arg(format!(
        "mount -t proc proc {r}/proc && mount --rbind /dev {r}/dev && mount --rbind /sys {r}/sys && chroot {r} update-initramfs -c -k {kver} >/dev/null",
        r = root.display()
    )));
    eprintln!("update-initramfs: {:.1} s", t.elapsed().as_secs_f64());
    // The admin's tuning of the golden node.
    let w = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write");
    };
    w(
        "etc/fstab",
        &format!(
            "UUID={ROOT_UUID} / ext4 errors=remount-ro 0 1\nUUID={ESP_ID} /boot/efi vfat defaults 0 0\nUUID={SWAP_UUID} none swap sw 0 0\n"
        ),
    );
    w("etc/hostname", "golden\n");
    // Provisioned by this appliance before, as a golden node usually is: its runner knows us.
    w(
        "opt/xcat/xcatinfo",
        &format!("XCATSERVER={NET}.1\nHTTPPORT=80\n"),
    );
    w("etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tgolden\n");
    w(
        "etc/default/grub",
        "GRUB_DEFAULT=0\nGRUB_TIMEOUT=0\nGRUB_DISTRIBUTOR=Debian\nGRUB_CMDLINE_LINUX_DEFAULT=\"\"\nGRUB_CMDLINE_LINUX=\"console=ttyS0,115200 no_timer_check\"\nGRUB_TERMINAL=serial\nGRUB_SERIAL_COMMAND=\"serial --unit=0 --speed=115200\"\n",
    );
    w(
        "etc/systemd/network/20-wired.network",
        "[Match]\nName=en*\n\n[Network]\nDHCP=ipv4\n",
    );
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    std::fs::create_dir_all(&wants).expect("wants");
    let _ = std::os::unix::fs::symlink(
        "/lib/systemd/system/systemd-networkd.service",
        wants.join("systemd-networkd.service"),
    );
    let online = root.join("etc/systemd/system/network-online.target.wants");
    std::fs::create_dir_all(&online).expect("wants");
    let _ = std::os::unix::fs::symlink(
        "/lib/systemd/system/systemd-networkd-wait-online.service",
        online.join("systemd-networkd-wait-online.service"),
    );
    // The journal on disk, as on an installed node (the stateless profile keeps it in RAM).
    let _ = std::fs::remove_file(root.join("etc/systemd/journald.conf.d/bootherd.conf"));
    w("root/golden-marker", "tuned by hand on the golden node\n");
    w(
        "etc/udev/rules.d/70-persistent-net.rules",
        &format!("SUBSYSTEM==\"net\", ATTR{{address}}==\"{GOLD_MAC}\", NAME=\"eth0\"\n"),
    );
    w(
        "var/lib/dhcp/dhclient.eth0.leases",
        "lease { fixed-address 10.99.75.10; }\n",
    );
    w("srv/scratch/big.bin", &"x".repeat(1 << 20));
    let keydir = bh.path("keys");
    std::fs::create_dir_all(&keydir).expect("keys");
    let key = keydir.join("id");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key));
    let wrong = keydir.join("wrong");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&wrong));
    let pubkey = std::fs::read_to_string(keydir.join("id.pub")).expect("pub");
    w("root/.ssh/authorized_keys", &pubkey);
    std::fs::set_permissions(
        root.join("root/.ssh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod");
    let t = Instant::now();
    let golden = golden_disk(&bh, &root);
    eprintln!("golden disk built: {:.1} s", t.elapsed().as_secs_f64());

    // --- The lab: bootherd serving the bridge, the golden VM on its disk.
    for (n, mac, ip) in [("golden", GOLD_MAC, format!("{NET}.10"))]
        .into_iter()
        .chain(
            clones
                .iter()
                .map(|(n, m, i)| (n.as_str(), m.as_str(), i.clone())),
        )
        .chain([
            ("small", SMALL_MAC, format!("{NET}.13")),
            ("u1", UEFI_MAC, UEFI_IP.to_string()),
        ])
    {
        bh.ok(&[
            "mkdef",
            "-t",
            "node",
            "-o",
            n,
            "groups=all",
            &format!("mac={mac}"),
            &format!("ip={ip}"),
            // UEFI firmware boots xNBA's EFI build; pxelinux is BIOS only.
            if n == "u1" {
                "netboot=xnba"
            } else {
                "netboot=pxe"
            },
            "serialport=0",
            "serialspeed=115200",
        ]);
    }
    bh.ok(&[
        "mkdef",
        "-t",
        "node",
        "-o",
        "ghost",
        "groups=all",
        &format!("ip={NET}.99"),
    ]);
    let ns = vm::bridge("sc", NET);
    let d = Daemon::start(&bh, &ns, &[]);
    let gserial = bh.path("serial-golden.txt");
    let t = Instant::now();
    let append = format!("root=UUID={ROOT_UUID} ro console=ttyS0,115200 no_timer_check");
    let kernel = root.join(format!("boot/vmlinuz-{kver}"));
    let initrd = root.join(format!("boot/initrd.img-{kver}"));
    let mut goldvm = vm::qemu(
        &ns,
        &gserial,
        GOLD_MAC,
        1024,
        &[
            "-kernel",
            &kernel.display().to_string(),
            "-initrd",
            &initrd.display().to_string(),
            "-append",
            &append,
            "-drive",
            &disk_arg(&golden),
            "-device",
            "virtio-rng-pci",
        ],
    );
    // Up when its sshd answers (the console is slow to show it on a loaded machine).
    let mut gkey = String::new();
    while gkey.is_empty() && t.elapsed() < Duration::from_secs(300) {
        if vm::wait_serial(&gserial, "Secure Shell server", Duration::from_secs(2)) {
            gkey = keyscan(&ns, &format!("{NET}.10"));
            if gkey.is_empty() {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    let up = !gkey.is_empty();
    if !up || gkey.is_empty() {
        let _ = goldvm.kill();
        panic!(
            "the golden VM did not come up with ssh ({:?}):\n{}\ndaemon:\n{}",
            gkey,
            std::fs::read_to_string(&gserial).unwrap_or_default(),
            d.dump()
        );
    }
    eprintln!("golden VM up with ssh: {:.1} s", t.elapsed().as_secs_f64());

    let ssh_opts = |k: &Path| {
        vec![
            "--ssh-option".to_string(),
            format!("IdentityFile={}", k.display()),
            "--ssh-option".into(),
            "UserKnownHostsFile=/dev/null".into(),
            "--ssh-option".into(),
            "StrictHostKeyChecking=no".into(),
            "--ssh-option".into(),
            "LogLevel=ERROR".into(),
        ]
    };
    let capture = |node: &str, k: &Path, extra: &[&str]| {
        let mut args: Vec<String> = vec![
            "imgcapture".into(),
            node.into(),
            "-t".into(),
            "sysclone".into(),
            "-o".into(),
            "goldimg".into(),
        ];
        args.extend(ssh_opts(k));
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        bh_in(&bh, &ns, &refs)
    };
    let images_dir = install.join("sysclone/images");

    // --- Captures that cannot work change nothing.
    let o = capture("ghost", &key, &[]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "capture from an unreachable node failed"
    );
    assert!(e.contains("cannot reach ghost over ssh"), "{e}");
    assert!(e.contains("nothing was changed"), "{e}");
    let o = capture("golden", &wrong, &[]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(e.contains("cannot reach golden over ssh as root"), "{e}");
    assert!(
        e.contains("Permission denied"),
        "ssh's own reason is shown: {e}"
    );
    assert!(
        !bh.ok(&["lsdef", "-t", "osimage"]).contains("goldimg"),
        "no osimage from failed captures"
    );
    assert!(!images_dir.join("goldimg").exists());
    let e = bh.fail(&["imgcapture", "golden", "-t", "diskless", "-o", "x"]);
    assert!(e.contains("only sysclone"), "{e}");

    // --- The capture.
    // The site's exclude list: scratch space, and kernel modules no compute node here loads
    // (graphics, sound, media, wireless, InfiniBand, industrial I/O, staging): 170 MB less.
    let exlist = bh.file(
        "gold.exlist",
        "# site scratch space\n/srv/scratch/*\n# hardware the nodes do not have\n/usr/lib/modules/*/kernel/drivers/gpu\n/usr/lib/modules/*/kernel/drivers/media\n/usr/lib/modules/*/kernel/sound\n/usr/lib/modules/*/kernel/drivers/net/wireless\n/usr/lib/modules/*/kernel/drivers/infiniband\n/usr/lib/modules/*/kernel/drivers/iio\n/usr/lib/modules/*/kernel/drivers/staging\n",
    );
    let t = Instant::now();
    let o = capture("golden", &key, &["-e", &exlist]);
    let capture_secs = t.elapsed().as_secs_f64();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "imgcapture failed:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    eprintln!("imgcapture: {capture_secs:.1} s\n{out}");
    let tree = images_dir.join("goldimg");
    assert_eq!(
        std::fs::read_to_string(tree.join("root/golden-marker")).expect("the marker was captured"),
        "tuned by hand on the golden node\n"
    );
    assert!(tree.join(format!("boot/vmlinuz-{kver}")).is_file());
    assert!(tree.join("usr/sbin/grub-install").is_file());
    let hostkeys: Vec<_> = std::fs::read_dir(tree.join("etc/ssh"))
        .expect("etc/ssh")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("ssh_host_"))
        .collect();
    assert!(hostkeys.is_empty(), "ssh host keys left out: {hostkeys:?}");
    for gone in [
        "etc/machine-id",
        "etc/udev/rules.d/70-persistent-net.rules",
        "var/lib/dhcp/dhclient.eth0.leases",
        "srv/scratch/big.bin",
        &format!("usr/lib/modules/{kver}/kernel/drivers/gpu"),
    ] {
        assert!(!tree.join(gone).exists(), "{gone} was left out");
    }
    assert!(
        tree.join("srv/scratch").is_dir(),
        "the directory itself stays"
    );
    assert!(
        tree.join("proc").is_dir()
            && std::fs::read_dir(tree.join("proc"))
                .expect("proc")
                .next()
                .is_none()
    );
    let def = bh.ok(&["lsdef", "-t", "osimage", "-o", "goldimg", "-l"]);
    for want in [
        "provmethod=sysclone",
        "osvers=debian12",
        "osarch=x86_64",
        "imagetype=linux",
        &format!("rootimgdir={}", tree.display()),
        &format!("exlist={exlist}"),
    ] {
        assert!(def.contains(want), "{want} in:\n{def}");
    }
    let layout =
        std::fs::read_to_string(install.join("sysclone/scripts/goldimg.layout")).expect("layout");
    assert!(
        layout.contains(&format!(
            "3 {} {} 0FC63DAF-8483-4772-8E79-3D69ED477DE4 ext4 {ROOT_UUID} goldroot /",
            (2 + ESP_MIB) * 2048,
            ROOT_MIB * 2048
        )),
        "{layout}"
    );
    assert!(
        layout.contains(&format!(
            "2 4096 {} C12A7328-F81F-11D2-BA4B-00A0C93EC93B vfat {ESP_ID} ESP /boot/efi",
            ESP_MIB * 2048
        )),
        "{layout}"
    );
    assert!(
        layout.contains(&format!(
            "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F swap {SWAP_UUID} goldswap swap"
        )),
        "{layout}"
    );

    // A re-capture copies only what changed.
    let o = ssh(
        &ns,
        &key,
        &format!("{NET}.10"),
        "echo second > /root/golden-marker2",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = Instant::now();
    let o = capture("golden", &key, &[]);
    let recapture_secs = t.elapsed().as_secs_f64();
    let out2 = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out2}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    eprintln!("re-capture: {recapture_secs:.1} s\n{out2}");
    assert_eq!(
        std::fs::read_to_string(tree.join("root/golden-marker2")).expect("marker2"),
        "second\n"
    );
    assert!(
        bh.ok(&["lsdef", "-t", "osimage", "-o", "goldimg", "-l"])
            .contains(&format!("exlist={exlist}")),
        "the recorded exlist is kept"
    );
    assert!(
        !tree.join("srv/scratch/big.bin").exists(),
        "and still applied"
    );
    let _ = goldvm.kill();
    let _ = goldvm.wait();
    if std::env::var("SYSCLONE_STREAM_BENCH").is_ok_and(|v| v == "1") {
        stream_bench(&bh, &ns, &tree);
    }

    // --- Genesis and the clones.
    let s = |p: &str| a.join(p).display().to_string();
    bh.ok(&[
        "mknb",
        "x86_64",
        "-k",
        &s("vmlinuz"),
        "-m",
        &s("modules"),
        "-b",
        &s("busybox"),
    ]);
    assert!(tftp.join("xcat/genesis.fs.x86_64.gz").is_file());
    std::fs::write(
        install.join("postscripts/clonecheck"),
        "#!/bin/sh\n\
         echo \"CLONE-CHECK node=$NODE host=$(hostname) addr=$(ip -4 -o addr show scope global | awk '{print $4}' | head -n 1) root=$(findmnt -n -o SOURCE /) marker=[$(cat /root/golden-marker2)] machineid=$(cat /etc/machine-id) efi=$([ -d /sys/firmware/efi ] && echo yes || echo no) esp=$(findmnt -n -o SOURCE /boot/efi) p3=$(cat /sys/class/block/vda3/size) p5=$(cat /sys/class/block/vda5/size 2>/dev/null || echo none)\" > /dev/console\n\
         exit 0\n",
    )
    .expect("postscript");
    bh.ok(&["chtab", "-d", "node=xcatdefaults", "postscripts"]);
    // A loaded TCG host can starve a guest's timer check into a panic ("IO-APIC + timer doesn't
    // work"); real nodes never need this.
    bh.ok(&[
        "chdef",
        &format!("{},small,u1", names.join(",")),
        "postscripts=clonecheck",
        "addkcmdline=no_timer_check",
    ]);
    bh.ok(&[
        "nodeset",
        &format!("{},small", names.join(",")),
        "osimage=goldimg",
    ]);
    let shown = bh.ok(&["nodeset", "c1", "show"]);
    assert!(shown.contains("SCRIPTNAME=goldimg"), "{shown}");
    assert!(shown.contains("xcat/genesis.kernel.x86_64"), "{shown}");
    for i in 1..=clones.len() {
        vm::add_tap(&ns, &format!("tap{i}"));
    }
    let disks: Vec<PathBuf> = clones
        .iter()
        .map(|(n, _, _)| blank_disk(&bh, &format!("{n}.img"), 2048))
        .collect();
    let small = blank_disk(&bh, "small.img", 1024);
    let start_vm = |i: usize, mac: &str, disk: &Path, serial: &Path| {
        vm::qemu_tap(
            &ns,
            &format!("tap{i}"),
            serial,
            mac,
            768,
            "",
            &["-drive", &disk_arg(disk), "-device", "virtio-rng-pci"],
        )
    };
    // --- A UEFI node with its own layout: linuximage.partitionfile, an sfdisk script (a smaller
    // root, a smaller swap, the rest of the disk a scratch partition the image knows nothing of).
    // It is started once the BIOS clones have read the image's partitioning (the golden
    // node's) and the small disk was refused, so it deploys beside them and boots while they do.
    let pfile = bh.file(
        "uefi.sfdisk",
        "label: gpt\n\
         size=1MiB, type=21686148-6449-6E6F-744E-656564454649\n\
         size=100MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"EFI system\"\n\
         size=1400MiB, type=0FC63DAF-8483-4772-8E79-3D69ED477DE4, name=\"root\"\n\
         size=64MiB, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F\n\
         type=0FC63DAF-8483-4772-8E79-3D69ED477DE4, name=\"scratch\"\n",
    );
    vm::add_tap(&ns, "tapu");
    let fw = vm::ovmf(&bh);
    let udisk = blank_disk(&bh, "u1.img", 2048);
    let start_uefi = |serial: &Path| {
        let mut args: Vec<String> = fw.clone();
        args.extend([
            "-drive".to_string(),
            disk_arg(&udisk),
            "-device".into(),
            "virtio-rng-pci".into(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // Without the NIC's iPXE ROM: EDK2's own UEFI PXE, as on a real UEFI node.
        vm::qemu_tap(&ns, "tapu", serial, UEFI_MAC, 768, ",romfile=", &args)
    };
    let userial = bh.path("serial-deploy-u1.txt");
    let launch_u1 = || {
        bh.ok(&[
            "chdef",
            "-t",
            "osimage",
            "-o",
            "goldimg",
            &format!("partitionfile={pfile}"),
        ]);
        bh.ok(&["nodeset", "u1", "osimage=goldimg"]);
        let staged = std::fs::read_to_string(install.join("sysclone/scripts/goldimg.partitions"))
            .expect("nodeset staged the partition file");
        assert!(
            staged.starts_with("#bootherd-partitions sfdisk\nlabel: gpt\n"),
            "{staged}"
        );
        (Instant::now(), Vm(start_uefi(&userial)))
    };
    let mut uefi: Option<(Instant, Vm)> = None;

    let t = Instant::now();
    let mut deploys: Vec<std::process::Child> = Vec::new();
    for (i, ((_, mac, _), disk)) in clones.iter().zip(&disks).enumerate() {
        deploys.push(start_vm(
            i,
            mac,
            disk,
            &bh.path(&format!("serial-deploy{i}.txt")),
        ));
    }
    let small_serial = bh.path("serial-small.txt");
    let mut smallvm = Some(start_vm(clones.len(), SMALL_MAC, &small, &small_serial));
    let refused = |p: &Path| {
        std::fs::read_to_string(p)
            .map(|t| t.contains("the disk was not touched"))
            .unwrap_or(false)
    };
    // The clones reboot when done (QEMU runs with -no-reboot, so the process ends).
    let mut done: Vec<Option<f64>> = vec![None; clones.len()];
    let mut refused_at: Option<Instant> = None;
    while done.iter().any(Option::is_none) && t.elapsed() < Duration::from_secs(900) {
        for (i, c) in deploys.iter_mut().enumerate() {
            if done[i].is_none() && c.try_wait().ok().flatten().is_some() {
                done[i] = Some(t.elapsed().as_secs_f64());
            }
        }
        // The deploy prints its refusal, then reports `failed` by HTTP: on a loaded machine
        // killing the VM at the first sight of the message could cut the report off.
        if refused(&small_serial) {
            let since = *refused_at.get_or_insert_with(Instant::now);
            if smallvm.is_some()
                && (status(&bh, "small") == "failed" || since.elapsed() > Duration::from_secs(60))
            {
                if let Some(mut v) = smallvm.take() {
                    let _ = v.kill();
                    let _ = v.wait();
                }
            }
        }
        if uefi.is_none()
            && smallvm.is_none()
            && (0..clones.len()).all(|i| {
                std::fs::read_to_string(bh.path(&format!("serial-deploy{i}.txt")))
                    .is_ok_and(|c| c.contains("partitioning /dev/vda"))
            })
        {
            uefi = Some(launch_u1());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let (tu, mut uvm) = uefi.unwrap_or_else(launch_u1);
    let small_refused = vm::wait_serial(
        &small_serial,
        "the disk was not touched",
        Duration::from_secs(60),
    );
    let t_status = Instant::now();
    while smallvm.is_some()
        && status(&bh, "small") != "failed"
        && t_status.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(500));
    }
    if let Some(mut v) = smallvm.take() {
        let _ = v.kill();
        let _ = v.wait();
    }
    for c in deploys.iter_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
    let serial_of = |i: usize| {
        std::fs::read_to_string(bh.path(&format!("serial-deploy{i}.txt"))).unwrap_or_default()
    };
    for (i, (n, _, _)) in clones.iter().enumerate() {
        assert!(
            done[i].is_some() && serial_of(i).contains("rebooting from"),
            "{n} was not cloned:\n{}\ndaemon:\n{}",
            serial_of(i),
            d.dump()
        );
        let copied = serial_of(i)
            .lines()
            .find(|l| l.contains("image copied in"))
            .unwrap_or("")
            .to_string();
        eprintln!(
            "{n}: PXE to cloned and rebooting: {:.1} s ({copied})",
            done[i].unwrap_or(0.0)
        );
        let cs = bh.ok(&["nodels", n, "chain.currstate"]);
        assert!(cs.contains("boot"), "{n} moved on to boot from disk: {cs}");
    }
    let sconsole = std::fs::read_to_string(&small_serial).unwrap_or_default();
    assert!(small_refused, "the small disk was refused:\n{sconsole}");
    assert!(sconsole.contains("needs"), "{sconsole}");
    assert_eq!(status(&bh, "small"), "failed");
    let head = {
        use std::io::Read;
        let mut b = vec![0u8; 1 << 20];
        std::fs::File::open(&small)
            .expect("small")
            .read_exact(&mut b)
            .expect("read");
        b
    };
    assert!(
        head.iter().all(|&b| b == 0),
        "the small disk was not written"
    );

    // --- First boot from their own disks, both at once.
    let t = Instant::now();
    let mut boots: Vec<std::process::Child> = Vec::new();
    for (i, ((_, mac, _), disk)) in clones.iter().zip(&disks).enumerate() {
        boots.push(start_vm(
            i,
            mac,
            disk,
            &bh.path(&format!("serial-boot{i}.txt")),
        ));
    }
    let boot_of = |i: usize| {
        std::fs::read_to_string(bh.path(&format!("serial-boot{i}.txt"))).unwrap_or_default()
    };
    let mut booted: Vec<Option<f64>> = vec![None; clones.len()];
    while booted.iter().any(Option::is_none) && t.elapsed() < Duration::from_secs(600) {
        for (i, (n, _, _)) in clones.iter().enumerate() {
            if booted[i].is_none() && status(&bh, n) == "booted" {
                booted[i] = Some(t.elapsed().as_secs_f64());
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut keys = Vec::new();
    for (i, (_, _, ip)) in clones.iter().enumerate() {
        let k = if booted[i].is_some() {
            keyscan(&ns, ip)
        } else {
            String::new()
        };
        keys.push(k);
    }
    for c in boots.iter_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
    for (i, (n, _, ip)) in clones.iter().enumerate() {
        let console = boot_of(i);
        assert!(
            booted[i].is_some(),
            "{n} did not report booted from its disk:\n{console}\ndaemon:\n{}",
            d.dump()
        );
        eprintln!(
            "{n}: disk boot to booted: {:.1} s",
            booted[i].unwrap_or(0.0)
        );
        let line = console
            .lines()
            .find(|l| l.contains("CLONE-CHECK"))
            .unwrap_or_else(|| panic!("{n}'s postscript ran:\n{console}"));
        assert!(
            line.contains(&format!("node={n} host={n} addr={ip}/24")),
            "{line}"
        );
        assert!(line.contains("root=/dev/vda3"), "{line}");
        assert!(line.contains("efi=no esp=/dev/vda2"), "{line}");
        assert!(
            line.contains(&format!("p3={} p5=none", ROOT_MIB * 2048)),
            "the golden node's layout: {line}"
        );
        assert!(line.contains("marker=[second]"), "{line}");
        assert!(
            !line.contains("machineid= "),
            "a machine-id was made: {line}"
        );
        assert!(
            keys[i].starts_with(&format!("{ip} ssh-ed25519 ")),
            "{n}'s sshd answers: {:?}",
            keys[i]
        );
    }
    let key_of = |k: &str| k.split_whitespace().nth(2).unwrap_or("").to_string();
    let mut all: Vec<String> = keys.iter().map(|k| key_of(k)).collect();
    all.push(key_of(&gkey));
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        clones.len() + 1,
        "each clone has its own host key, not the golden node's: {keys:?} {gkey}"
    );
    for (i, (n, _, _)) in clones.iter().enumerate() {
        eprintln!(
            "{n}: PXE to booted: {:.1} s (clone {:.1} s + disk boot {:.1} s)",
            done[i].unwrap_or(0.0) + booted[i].unwrap_or(0.0),
            done[i].unwrap_or(0.0),
            booted[i].unwrap_or(0.0)
        );
    }

    // --- The UEFI clone: deployed from the partition file, then its first boot under OVMF.
    let mut udone = None;
    while udone.is_none() && tu.elapsed() < Duration::from_secs(900) {
        if uvm.0.try_wait().ok().flatten().is_some() {
            udone = Some(tu.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(uvm);
    let uconsole =
        String::from_utf8_lossy(&std::fs::read(&userial).unwrap_or_default()).into_owned();
    assert!(
        udone.is_some() && uconsole.contains("rebooting from"),
        "u1 (UEFI) was not cloned:\n{uconsole}\ndaemon:\n{}",
        d.dump()
    );
    assert!(
        uconsole.contains("Start PXE over IPv4"),
        "EDK2's PXE: {uconsole}"
    );
    assert!(
        uconsole.contains("partitioning /dev/vda (2147483648 bytes) from the partition file"),
        "{uconsole}"
    );
    let ucopied = uconsole
        .lines()
        .find(|l| l.contains("image copied in"))
        .unwrap_or("")
        .to_string();
    eprintln!(
        "u1 (UEFI, partition file): PXE to cloned and rebooting: {:.1} s ({ucopied})",
        udone.unwrap_or(0.0)
    );
    let uboot_serial = bh.path("serial-boot-u1.txt");
    let tb = Instant::now();
    let uvm = Vm(start_uefi(&uboot_serial));
    let mut ubooted = None;
    while ubooted.is_none() && tb.elapsed() < Duration::from_secs(600) {
        if status(&bh, "u1") == "booted" {
            ubooted = Some(tb.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(uvm);
    let uconsole =
        String::from_utf8_lossy(&std::fs::read(&uboot_serial).unwrap_or_default()).into_owned();
    assert!(
        ubooted.is_some(),
        "u1 did not report booted from its disk under OVMF:\n{uconsole}\ndaemon:\n{}",
        d.dump()
    );
    let line = uconsole
        .lines()
        .find(|l| l.contains("CLONE-CHECK"))
        .unwrap_or_else(|| panic!("u1's postscript ran:\n{uconsole}"));
    assert!(
        line.contains(&format!("node=u1 host=u1 addr={UEFI_IP}/24 root=/dev/vda3")),
        "{line}"
    );
    assert!(line.contains("marker=[second]"), "{line}");
    assert!(
        line.contains("efi=yes esp=/dev/vda2"),
        "booted by UEFI, its ESP mounted: {line}"
    );
    assert!(
        line.contains(&format!("p3={} p5=", 1400 * 2048)) && !line.contains("p5=none"),
        "the partition file's layout, not the golden node's: {line}"
    );
    eprintln!(
        "u1: disk boot (OVMF) to booted: {:.1} s; PXE to booted: {:.1} s",
        ubooted.unwrap_or(0.0),
        udone.unwrap_or(0.0) + ubooted.unwrap_or(0.0)
    );

    // rmimage removes the captured image.
    let out = bh.ok(&["rmimage", "goldimg", "--xcatdef"]);
    assert!(out.contains("Removing directory"), "{out}");
    assert!(!tree.exists() && !images_dir.join("goldimg.tar").exists());
    assert!(!install.join("sysclone/scripts/goldimg.partitions").exists());
    assert!(!bh.ok(&["lsdef", "-t", "osimage"]).contains("goldimg"));
}
