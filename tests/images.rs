//! The image commands through the real binary: copycds of ISO images made with xorriso (a
//! Debian-style and a RHEL-style medium, and one nobody can identify), the osimage definitions it
//! creates, and genimage/packimage refusing bad input without touching the previous image.

mod common;
use common::Bh;
use std::path::Path;
use std::process::Command;

/// An ISO 9660 image (Rock Ridge + Joliet) of `files` (path, text), made with xorriso.
fn make_iso(bh: &Bh, name: &str, files: &[(&str, &str)]) -> String {
    let src = bh.path(&format!("{name}.src"));
    for (p, t) in files {
        let f = src.join(p);
        std::fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
        std::fs::write(f, t).expect("write");
    }
    let out = bh.path(&format!("{name}.iso"));
    let o = Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-R", "-J", "-V", "TEST", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .expect("xorriso (Debian package xorriso)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out.display().to_string()
}

fn installdir(bh: &Bh) -> std::path::PathBuf {
    let d = bh.path("install");
    std::fs::create_dir_all(&d).expect("mkdir");
    bh.ok(&[
        "chtab",
        "key=installdir",
        &format!("site.value={}", d.display()),
    ]);
    d
}

fn attr(lsdef: &str, name: &str) -> Option<String> {
    lsdef.lines().find_map(|l| {
        l.trim()
            .strip_prefix(&format!("{name}="))
            .map(str::to_string)
    })
}

#[test]
fn copycds_of_a_debian_iso_lands_in_place_with_its_osimages() {
    let bh = Bh::new();
    let inst = installdir(&bh);
    let iso = make_iso(
        &bh,
        "deb",
        &[
            (
                ".disk/info",
                "Debian GNU/Linux 12.5.0 \"Bookworm\" - Official amd64 DVD Binary-1 with firmware 20240210-11:28",
            ),
            ("dists/bookworm/Release", "Suite: stable\nCodename: bookworm\n"),
            ("pool/main/h/hello/hello_2.10-3_amd64.deb", "not really a deb\n"),
        ],
    );
    // -i only identifies.
    let out = bh.ok(&["copycds", "-i", &iso]);
    assert!(out.contains("DISTNAME:debian12.5.0"), "{out}");
    assert!(out.contains("ARCH:amd64"), "{out}");
    assert!(out.contains("DISCNO:Binary-1"), "{out}");
    assert!(!inst.join("debian12.5.0").exists());

    let out = bh.ok(&["copycds", &iso]);
    let target = inst.join("debian12.5.0/x86_64");
    assert!(
        out.contains(&format!("Copying media to {}", target.display())),
        "{out}"
    );
    assert!(out.contains("Media copy operation successful"), "{out}");
    assert_eq!(
        std::fs::read_to_string(target.join("pool/main/h/hello/hello_2.10-3_amd64.deb"))
            .expect("copied file"),
        "not really a deb\n"
    );
    assert!(target.join(".disk/info").is_file());
    let fp = std::fs::read_to_string(target.join(".fingerprint")).expect("fingerprint");
    assert_eq!(fp.trim().len(), 32, "an md5 per copied medium: {fp}");
    // No temporary directory left beside it.
    let left: Vec<_> = std::fs::read_dir(inst.join("debian12.5.0"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec!["x86_64"]);

    let list = bh.ok(&["lsdef", "-t", "osimage"]);
    for img in [
        "debian12.5.0-x86_64-install-compute",
        "debian12.5.0-x86_64-netboot-compute",
        "debian12.5.0-x86_64-statelite-compute",
    ] {
        assert!(list.contains(img), "{img} missing from:\n{list}");
    }
    let nb = bh.ok(&[
        "lsdef",
        "-t",
        "osimage",
        "-o",
        "debian12.5.0-x86_64-netboot-compute",
        "-l",
    ]);
    assert_eq!(attr(&nb, "imagetype").as_deref(), Some("linux"));
    assert_eq!(attr(&nb, "provmethod").as_deref(), Some("netboot"));
    assert_eq!(attr(&nb, "osvers").as_deref(), Some("debian12.5.0"));
    assert_eq!(attr(&nb, "osarch").as_deref(), Some("x86_64"));
    assert_eq!(attr(&nb, "profile").as_deref(), Some("compute"));
    assert_eq!(attr(&nb, "osname").as_deref(), Some("Linux"));
    assert_eq!(
        attr(&nb, "osdistroname").as_deref(),
        Some("debian12.5.0-x86_64")
    );
    assert_eq!(attr(&nb, "pkgdir"), Some(target.display().to_string()));
    assert_eq!(
        attr(&nb, "rootimgdir"),
        Some(format!(
            "{}/netboot/debian12.5.0/x86_64/compute",
            inst.display()
        ))
    );
    assert_eq!(
        attr(&nb, "otherpkgdir"),
        Some(format!(
            "{}/post/otherpkgs/debian12.5.0/x86_64",
            inst.display()
        ))
    );
    for f in ["pkglist", "exlist", "postinstall"] {
        let p = attr(&nb, f).unwrap_or_else(|| panic!("no {f} in\n{nb}"));
        assert!(Path::new(&p).is_file(), "{f}={p} is not a file");
    }
    assert_eq!(attr(&nb, "addkcmdline").as_deref(), Some("quiet"));
    let ins = bh.ok(&[
        "lsdef",
        "-t",
        "osimage",
        "-o",
        "debian12.5.0-x86_64-install-compute",
        "-l",
    ]);
    assert_eq!(attr(&ins, "provmethod").as_deref(), Some("install"));
    let t = attr(&ins, "template").expect("template");
    assert!(Path::new(&t).is_file(), "template {t}");
    let od = bh.ok(&["tabdump", "osdistro"]);
    assert!(
        od.contains(&format!(
            "\"debian12.5.0-x86_64\",\"debian\",\"12\",\"5.0\",\"x86_64\",\"Linux\",\"{}\"",
            target.display()
        )),
        "{od}"
    );

    // -w on Debian media is refused as xCAT refuses it; -o makes no osimages.
    let e = bh.fail(&["copycds", "-w", &iso]);
    assert!(
        e.contains("copycds on Ubuntu/Debian does not support -p or -w option."),
        "{e}"
    );
}

#[test]
fn copycds_of_a_rhel_iso_and_of_media_nobody_knows() {
    let bh = Bh::new();
    let inst = installdir(&bh);
    let iso = make_iso(
        &bh,
        "rhel",
        &[
            (
                ".discinfo",
                "1713373534.419286\nRed Hat Enterprise Linux 9.4\nx86_64\n1\n",
            ),
            (
                ".treeinfo",
                "[general]\nfamily = Red Hat Enterprise Linux\nversion = 9.4\narch = x86_64\n[tree]\narch = x86_64\n",
            ),
            ("BaseOS/repodata/repomd.xml", "<repomd/>\n"),
        ],
    );
    let out = bh.ok(&["copycds", &iso]);
    assert!(out.contains("Media copy operation successful"), "{out}");
    let target = inst.join("rhels9.4/x86_64");
    assert!(target.join("BaseOS/repodata/repomd.xml").is_file());
    let list = bh.ok(&["lsdef", "-t", "osimage"]);
    for img in [
        "rhels9.4-x86_64-install-compute",
        "rhels9.4-x86_64-netboot-compute",
        "rhels9.4-x86_64-statelite-compute",
    ] {
        assert!(list.contains(img), "{img} missing from:\n{list}");
    }
    let ins = bh.ok(&[
        "lsdef",
        "-t",
        "osimage",
        "-o",
        "rhels9.4-x86_64-install-compute",
        "-l",
    ]);
    assert_eq!(attr(&ins, "pkgdir"), Some(target.display().to_string()));
    assert!(attr(&ins, "template").is_some_and(|t| t.ends_with("compute.rhels.tmpl")));
    // -n and -a name what the media do not say; -p puts it elsewhere; -o defines no osimage.
    let plain = bh.path("plain");
    std::fs::create_dir_all(plain.join("Packages")).expect("mkdir");
    std::fs::write(plain.join("Packages/a.rpm"), "x").expect("write");
    let other = bh.path("elsewhere");
    let out = bh.ok(&[
        "copycds",
        "-n",
        "rocky9.3",
        "-a",
        "x86_64",
        "-o",
        "-p",
        &other.display().to_string(),
        &plain.display().to_string(),
    ]);
    assert!(out.contains("Media copy operation successful"), "{out}");
    assert!(other.join("Packages/a.rpm").is_file());
    assert!(!bh
        .ok(&["lsdef", "-t", "osimage"])
        .contains("rocky9.3-x86_64"));

    // Media nobody can identify: xCAT's message, what was looked for, exit 1, nothing left.
    let before: Vec<_> = std::fs::read_dir(&inst)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    let junk = make_iso(&bh, "junk", &[("README.txt", "just some files\n")]);
    let o = bh.run(&["copycds", &junk]);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("copycds could not identify the ISO supplied, you may wish to try -n <osver>"),
        "{e}"
    );
    assert!(e.contains(".discinfo") && e.contains(".disk/info"), "{e}");
    let after: Vec<_> = std::fs::read_dir(&inst)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(before, after, "copycds left something behind");
    // A file that is no medium at all.
    let e = bh.fail(&["copycds", "/nonexistent/x.iso"]);
    assert!(e.contains("unable to find/read /nonexistent/x.iso"), "{e}");
}

#[test]
fn genimage_and_packimage_refuse_bad_input_and_keep_the_previous_image() {
    let bh = Bh::new();
    let inst = installdir(&bh);
    let rootimgdir = inst.join("netboot/debian12/x86_64/compute");
    bh.ok(&[
        "mkdef",
        "-t",
        "osimage",
        "-o",
        "bare",
        "imagetype=linux",
        "provmethod=netboot",
        "osvers=debian12",
        "osarch=x86_64",
        "profile=compute",
        &format!("rootimgdir={}", rootimgdir.display()),
    ]);
    // No pkglist: the step and the column are named.
    let e = bh.fail(&["genimage", "bare"]);
    assert!(e.contains("step 'check'"), "{e}");
    assert!(e.contains("no pkglist (linuximage.pkglist)"), "{e}");
    // A pkglist including a missing file.
    let pl = bh.file("bad.pkglist", "bash\n#INCLUDE:/nonexistent/more.pkglist#\n");
    bh.ok(&[
        "chdef",
        "-t",
        "osimage",
        "-o",
        "bare",
        &format!("pkglist={pl}"),
    ]);
    let e = bh.fail(&["genimage", "bare"]);
    assert!(
        e.contains("cannot read /nonexistent/more.pkglist (included from"),
        "{e}"
    );
    // Unknown image.
    let e = bh.fail(&["genimage", "nosuchimage"]);
    assert!(e.contains("Cannot find image 'nosuchimage'"), "{e}");
    // packimage without a root, and of a statelite image.
    let e = bh.fail(&["packimage", "bare"]);
    assert!(e.contains("run genimage bare first"), "{e}");
    bh.ok(&[
        "mkdef",
        "-t",
        "osimage",
        "-o",
        "lite",
        "provmethod=statelite",
        "osvers=debian12",
        "osarch=x86_64",
        "profile=compute",
    ]);
    let e = bh.fail(&["packimage", "lite"]);
    assert!(e.contains("packimage packs netboot images"), "{e}");
    let e = bh.fail(&["packimage", "-m", "zip", "bare"]);
    assert!(e.contains("'zip' is not one of cpio, tar, squashfs"), "{e}");

    // A full disk while packing: the previous packed image stays, byte for byte. The image
    // directory is a 4 MiB tmpfs in a private mount namespace, the root holds 3 MiB of random
    // bytes, so the second, incompressible archive cannot fit beside the first.
    let script = format!(
        r#"set -e
d={dir}
mkdir -p "$d"
mount -t tmpfs -o size=4m tmpfs "$d"
mkdir -p "$d/rootimg/etc" "$d/rootimg/var"
echo 'root:x:19000:0:99999:7:::' > "$d/rootimg/etc/shadow"
echo small > "$d/rootimg/var/data"
{bin} packimage bare >/dev/null
sha256sum "$d/rootimg.cpio.gz" > "$d/../before.sha"
head -c 3000000 /dev/urandom > "$d/rootimg/var/data"
set +e
{bin} packimage bare > "$d/../out.txt" 2> "$d/../err.txt"
echo $? > "$d/../rc.txt"
sha256sum "$d/rootimg.cpio.gz" > "$d/../after.sha"
ls -a "$d" > "$d/../ls.txt"
"#,
        dir = rootimgdir.display(),
        bin = common::bin(),
    );
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("BOOTHERD_DB", &bh.db)
        .output()
        .expect("unshare");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let up = rootimgdir.parent().expect("parent");
    let rc = std::fs::read_to_string(up.join("rc.txt")).expect("rc");
    assert_eq!(rc.trim(), "1", "packimage on a full disk must fail");
    let err = std::fs::read_to_string(up.join("err.txt")).expect("err");
    assert!(err.contains("step 'pack' failed"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("the previous image is unchanged"), "{err}");
    let before = std::fs::read_to_string(up.join("before.sha")).expect("before");
    let after = std::fs::read_to_string(up.join("after.sha")).expect("after");
    assert_eq!(before, after, "the previous image changed");
    let ls = std::fs::read_to_string(up.join("ls.txt")).expect("ls");
    assert!(!ls.contains(".new"), "a partial archive was left: {ls}");
}

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

#[test]
fn imgexport_bundles_and_imgimport_restores_netboot_and_statelite_images() {
    let a = Bh::new();
    let inst_a = installdir(&a);
    let dir = inst_a.join("netboot/debian12/x86_64/compute");
    write(&dir.join("kernel"), "KERNEL");
    write(&dir.join("initrd-stateless.gz"), "STATELESS");
    write(&dir.join("initrd-statelite.gz"), "STATELITE");
    write(&dir.join("rootimg.cpio.gz"), "PACKED");
    write(&dir.join("rootimg/etc/hostname.d/x"), "in the tree\n");
    std::os::unix::fs::symlink("hostname.d/x", dir.join("rootimg/etc/link")).expect("symlink");
    let pkglist = a.path("lists/compute.pkglist");
    write(&pkglist, "bash\n");
    let motd = a.path("motd");
    write(&motd, "hello\n");
    for (name, pm) in [("nb", "netboot"), ("sl", "statelite")] {
        a.ok(&[
            "mkdef",
            "-t",
            "osimage",
            "-o",
            name,
            "imagetype=linux",
            &format!("provmethod={pm}"),
            "osvers=debian12",
            "osarch=x86_64",
            "profile=compute",
            &format!("pkglist={}", pkglist.display()),
            &format!("rootimgdir={}", dir.display()),
        ]);
    }
    a.ok(&[
        "chtab",
        "image=sl,file=/var/log/",
        "litefile.options=persistent",
    ]);
    let out_dir = a.path("bundles");
    std::fs::create_dir_all(&out_dir).expect("mkdir");
    let out = a.ok(&[
        "imgexport",
        "nb",
        &out_dir.display().to_string(),
        "-e",
        &format!("{}:/etc", motd.display()),
    ]);
    assert!(out.contains("Exporting nb to"), "{out}");
    let bundle = out_dir.join("nb.tgz");
    let list = common::sh(&["tar", "-tzf", &bundle.display().to_string()]);
    for f in [
        "nb/manifest.xml",
        "nb/kernel",
        "nb/initrd-stateless.gz",
        "nb/rootimg.cpio.gz",
        "nb/compute.pkglist",
        "nb/extra/motd",
    ] {
        assert!(
            list.lines().any(|l| l.trim_end_matches('/') == f),
            "{f} not in the bundle:\n{list}"
        );
    }
    let manifest = common::sh(&[
        "tar",
        "-xzOf",
        &bundle.display().to_string(),
        "nb/manifest.xml",
    ]);
    assert!(
        manifest.starts_with("<?xml version=\"1.0\"?>\n<xcatimage>"),
        "{manifest}"
    );
    assert!(
        manifest.contains(&format!(
            "<rootimg>{}</rootimg>",
            dir.join("rootimg.cpio.gz").display()
        )),
        "{manifest}"
    );
    assert!(
        manifest.contains("<provmethod>netboot</provmethod>"),
        "{manifest}"
    );
    a.ok(&["imgexport", "sl", &out_dir.display().to_string()]);

    // Another appliance, under a new profile: files under its own installdir, boot files in its TFTP root.
    let b = Bh::new();
    let inst_b = installdir(&b);
    let tftp_b = b.path("tftpboot");
    b.ok(&[
        "chtab",
        "key=tftpdir",
        &format!("site.value={}", tftp_b.display()),
    ]);
    let out = b.ok(&["imgimport", &bundle.display().to_string(), "-f", "gpu"]);
    assert!(
        out.contains("Successfully imported the image debian12-x86_64-netboot-gpu."),
        "{out}"
    );
    let newdir = inst_b.join("netboot/debian12/x86_64/gpu");
    assert_eq!(
        std::fs::read_to_string(newdir.join("rootimg.cpio.gz")).expect("packed"),
        "PACKED"
    );
    assert_eq!(
        std::fs::read_to_string(newdir.join("kernel")).expect("kernel"),
        "KERNEL"
    );
    assert_eq!(
        std::fs::read_to_string(tftp_b.join("xcat/osimage/debian12-x86_64-netboot-gpu/kernel"))
            .expect("tftp kernel"),
        "KERNEL"
    );
    let def = b.ok(&[
        "lsdef",
        "-t",
        "osimage",
        "-o",
        "debian12-x86_64-netboot-gpu",
        "-l",
    ]);
    assert_eq!(attr(&def, "profile").as_deref(), Some("gpu"));
    assert_eq!(attr(&def, "rootimgdir"), Some(newdir.display().to_string()));
    assert_eq!(attr(&def, "pkglist"), Some(pkglist.display().to_string()));

    let c = Bh::new();
    let inst_c = installdir(&c);
    let out = c.ok(&[
        "imgimport",
        &out_dir.join("sl.tgz").display().to_string(),
        "-f",
        "lite2",
    ]);
    assert!(
        out.contains("Successfully imported the image debian12-x86_64-statelite-lite2."),
        "{out}"
    );
    let tree = inst_c.join("netboot/debian12/x86_64/lite2/rootimg");
    assert_eq!(
        std::fs::read_to_string(tree.join("etc/hostname.d/x")).expect("tree"),
        "in the tree\n"
    );
    assert_eq!(
        std::fs::read_link(tree.join("etc/link")).expect("link"),
        Path::new("hostname.d/x")
    );
    let lf = c.ok(&["tabdump", "litefile"]);
    assert!(
        lf.contains("\"debian12-x86_64-statelite-lite2\",\"/var/log/\",\"persistent\""),
        "{lf}"
    );

    // Not a bundle.
    let junk = c.path("junk.tgz");
    common::sh(&[
        "tar",
        "-czf",
        &junk.display().to_string(),
        "-C",
        &c.path("").display().to_string(),
        "bootherd.db",
    ]);
    let e = c.fail(&["imgimport", &junk.display().to_string()]);
    assert!(
        e.contains("Failed to find manifest.xml file in image bundle"),
        "{e}"
    );
}

/// The RHEL-family path without a RHEL repository: a copycds'd RHEL-style ISO whose BaseOS
/// repository (createrepo_c) holds one RPM (rpmbuild) named `kernel`, carrying Debian's kernel
/// under another version, its NIC modules xz-compressed as RHEL ships them, and a static busybox.
/// genimage installs it with `dnf --installroot` from the copied media, finds the kernel, builds
/// the initramfs with the modules uncompressed, and packimage packs the root.
#[test]
fn genimage_builds_a_rhel_family_image_with_dnf_from_copied_media() {
    let assets = common::vm::assets();
    common::need(&[
        ("rpmbuild", "rpm"),
        ("createrepo_c", "createrepo-c"),
        ("dnf", "dnf"),
    ]);
    let bh = Bh::new();
    let inst = installdir(&bh);
    let tftp = bh.path("tftpboot");
    bh.ok(&[
        "chtab",
        "key=tftpdir",
        &format!("site.value={}", tftp.display()),
    ]);
    bh.ok(&[
        "chtab",
        "key=imagepkgcache",
        &format!("site.value={}", bh.path("cache").display()),
    ]);
    // The RPM's payload.
    let kver = "5.14.0-bootherd.x86_64";
    let src = bh.path("rpmsrc");
    std::fs::create_dir_all(src.join("boot")).expect("mkdir");
    std::fs::copy(
        assets.join("vmlinuz"),
        src.join(format!("boot/vmlinuz-{kver}")),
    )
    .expect("kernel");
    let mods = assets.join("modules/kernel");
    for m in [
        "drivers/net/virtio_net.ko",
        "drivers/net/net_failover.ko",
        "net/core/failover.ko",
    ] {
        let to = src.join(format!("lib/modules/{kver}/kernel/{m}.xz"));
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        let xz = Command::new("xz")
            .arg("-c")
            .arg(mods.join(m))
            .output()
            .expect("xz");
        assert!(xz.status.success(), "xz {m}");
        std::fs::write(&to, xz.stdout).expect("write module");
    }
    std::fs::create_dir_all(src.join("usr/bin")).expect("mkdir");
    std::fs::copy(assets.join("busybox"), src.join("usr/bin/busybox")).expect("busybox");
    let spec = bh.file(
        "kernel.spec",
        "%global debug_package %{nil}\nName: kernel\nVersion: 5.14.0\nRelease: 1\nSummary: test kernel\nLicense: GPL\nBuildArch: x86_64\nAutoReqProv: no\n%description\ntest\n%install\ncp -a %{_sourcedir}/. %{buildroot}/\n%files\n/boot\n/lib/modules\n/usr/bin/busybox\n",
    );
    let top = bh.path("rpmtop");
    let o = Command::new("rpmbuild")
        .args(["--quiet", "--define", &format!("_topdir {}", top.display())])
        .args(["--define", &format!("_sourcedir {}", src.display())])
        .args(["--define", "__os_install_post %{nil}", "-bb", &spec])
        .output()
        .expect("rpmbuild");
    assert!(
        o.status.success(),
        "rpmbuild: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let media = bh.path("rhel.src");
    std::fs::create_dir_all(media.join("BaseOS/Packages")).expect("mkdir");
    std::fs::copy(
        top.join("RPMS/x86_64/kernel-5.14.0-1.x86_64.rpm"),
        media.join("BaseOS/Packages/kernel-5.14.0-1.x86_64.rpm"),
    )
    .expect("rpm");
    common::sh(&[
        "createrepo_c",
        "-q",
        &media.join("BaseOS").display().to_string(),
    ]);
    let iso = make_iso(
        &bh,
        "rhel",
        &[(
            ".discinfo",
            "1713373534.419286\nRed Hat Enterprise Linux 9.4\nx86_64\n1\n",
        )],
    );
    bh.ok(&["copycds", &iso]);
    let img = "rhels9.4-x86_64-netboot-compute";
    let def = bh.ok(&["lsdef", "-t", "osimage", "-o", img, "-l"]);
    assert!(
        attr(&def, "pkglist").is_some_and(|p| p.ends_with("netboot/rh/compute.pkglist")),
        "{def}"
    );
    // The shipped profile names packages this repository does not have: dnf says which.
    let e = bh.fail(&["genimage", img, "--noupdate"]);
    assert!(e.contains("step 'install' failed"), "{e}");
    assert!(e.contains("was not found in"), "{e}");
    let pl = bh.file("kernel-only.pkglist", "kernel\n");
    bh.ok(&[
        "chdef",
        "-t",
        "osimage",
        "-o",
        img,
        &format!("pkglist={pl}"),
        "postinstall=",
    ]);
    let out = bh.ok(&["genimage", img, "-n", "virtio_net"]);
    assert!(out.contains(&format!("kernel {kver}")), "{out}");
    let root = inst.join("netboot/rhels9.4/x86_64/compute/rootimg");
    assert!(root.join(format!("boot/vmlinuz-{kver}")).is_file());
    assert!(root.join("opt/xcat/xcatdsklspost").is_file());
    assert!(
        !root
            .join(bh.path("cache").strip_prefix("/").expect("abs"))
            .exists(),
        "dnf's cache left in the image"
    );
    // The initramfs holds the module uncompressed, in load order after its dependencies.
    let initrd = tftp.join(format!("xcat/osimage/{img}/initrd-stateless.gz"));
    let x = bh.path("initrd");
    std::fs::create_dir_all(&x).expect("mkdir");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -dc {} | cpio -idm --quiet", initrd.display()))
        .current_dir(&x)
        .status()
        .expect("cpio");
    assert!(st.success());
    let order = std::fs::read_to_string(x.join("modules.order")).expect("modules.order");
    let pos = |m: &str| order.lines().position(|l| l == m);
    assert!(
        pos("failover.ko") < pos("net_failover.ko")
            && pos("net_failover.ko") < pos("virtio_net.ko")
            && pos("failover.ko").is_some(),
        "{order}"
    );
    let head = std::fs::read(x.join("lib/modules/virtio_net.ko")).expect("module");
    assert!(
        head.starts_with(b"\x7fELF"),
        "the module is stored uncompressed"
    );
    assert_eq!(
        attr(
            &bh.ok(&["lsdef", "-t", "osimage", "-o", img, "-l"]),
            "netdrivers"
        )
        .as_deref(),
        Some("virtio_net")
    );
    let out = bh.ok(&["packimage", img, "-c", "xz"]);
    assert!(out.contains("rootimg.cpio.xz written"), "{out}");
    // rmimage removes the files and, with --xcatdef, the definition.
    let out = bh.ok(&["rmimage", img, "--xcatdef"]);
    assert!(
        out.contains("Image files have been removed successfully"),
        "{out}"
    );
    assert!(!root.exists());
    assert!(!tftp.join(format!("xcat/osimage/{img}")).exists());
    assert!(!bh.ok(&["lsdef", "-t", "osimage"]).contains(img));
}
