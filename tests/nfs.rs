//! NFS (statelite) against real clients: libnfs's nfs-ls/nfs-cat/nfs-cp and the `nfs3_client`
//! crate, run from a node namespace against `bootherd serve` in a server namespace; plus raw RPC
//! for hostile input and memory bounds.
//!
//! The client namespace holds two node addresses: .2 is n1, .3 is n2. Both nodes keep their
//! state on this appliance (statelite.statemnt = <server>:<tmp>/state).

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use common::{in_netns, need, rss_kib, sh, sha256, Bh, Daemon, Pair};
use nfs3_client::nfs3_types::nfs3::{self, nfsstat3, Nfs3Option, Nfs3Result};
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::TokioIo;
use nfs3_client::{Nfs3Connection, Nfs3ConnectionBuilder};
use tokio::net::{TcpSocket, TcpStream as TokioStream};

const PEERS: &[(&str, &str)] = &[
    ("nfs-ls", "libnfs-utils"),
    ("nfs-cat", "libnfs-utils"),
    ("nfs-cp", "libnfs-utils"),
];

struct Lab {
    bh: Bh,
    pair: Pair,
    daemon: Option<Daemon>,
    server: String,
    n1: Ipv4Addr,
    n2: Ipv4Addr,
    image: PathBuf,
    state: PathBuf,
}

impl Lab {
    /// Store with one statelite image and two nodes, daemon started in the server namespace.
    fn new(tag: &str, net: u8) -> Lab {
        need(PEERS);
        let bh = Bh::new();
        let server = format!("10.99.{net}.1");
        let n1: Ipv4Addr = format!("10.99.{net}.2").parse().unwrap();
        let n2: Ipv4Addr = format!("10.99.{net}.3").parse().unwrap();
        let imgdir = bh.path("netboot/compute");
        let image = imgdir.join("rootimg");
        std::fs::create_dir_all(image.join("etc/sub")).unwrap();
        std::fs::write(image.join("etc/hostname"), "image\n").unwrap();
        std::fs::write(image.join("etc/sub/deep.txt"), "deep\n").unwrap();
        std::os::unix::fs::symlink("hostname", image.join("etc/link")).unwrap();
        sh(&[
            "dd",
            "if=/dev/urandom",
            &format!("of={}", image.join("blob.bin").display()),
            "bs=1M",
            "count=5",
            "status=none",
        ]);
        let state = bh.path("state");
        bh.ok(&[
            "mkdef",
            "-t",
            "osimage",
            "-o",
            "img1",
            "provmethod=statelite",
            &format!("rootimgdir={}", imgdir.display()),
            "osvers=rhels8",
            "osarch=x86_64",
            "profile=compute",
            "imagetype=linux",
        ]);
        for (n, ip) in [("n1", n1), ("n2", n2)] {
            bh.ok(&[
                "mkdef",
                "-t",
                "node",
                "-o",
                n,
                "groups=compute,all",
                &format!("ip={ip}"),
            ]);
        }
        bh.ok(&[
            "chtab",
            "node=compute",
            &format!("statelite.statemnt={server}:{}", state.display()),
        ]);
        let pair = Pair::new(tag, &format!("{server}/24"));
        for ip in [n1, n2] {
            sh(&[
                "ip",
                "-n",
                &pair.cli.0,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                "bhc0",
            ]);
        }
        let mut lab = Lab {
            bh,
            pair,
            daemon: None,
            server,
            n1,
            n2,
            image,
            state,
        };
        lab.start();
        lab
    }

    fn start(&mut self) {
        let d = Daemon::start(
            &self.bh,
            &self.pair.srv,
            &[
                "--no-dhcp",
                "--no-tftp",
                "--no-http",
                "--no-status-port",
                "--no-xcatd",
            ],
        );
        assert!(
            d.wait_for("NFS listening", 5),
            "no NFS service:\n{}",
            d.dump()
        );
        self.daemon = Some(d);
    }

    fn restart(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.stop();
        }
        self.start();
    }

    fn url(&self, path: &str, ports: bool) -> String {
        if ports {
            format!("nfs://{}{path}?nfsport=2049&mountport=2049", self.server)
        } else {
            format!("nfs://{}{path}", self.server)
        }
    }

    /// Runs a libnfs tool in the client namespace.
    fn libnfs(&self, args: &[&str]) -> std::process::Output {
        self.pair
            .cli
            .command("timeout")
            .arg("30")
            .args(args)
            .output()
            .expect("run libnfs tool")
    }

    fn dump(&self) -> String {
        self.daemon.as_ref().map(|d| d.dump()).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.daemon.as_ref().map(|d| d.child.id()).unwrap_or(0)
    }
}

/// A connector that binds the node's own address, so the server sees which node is calling.
struct From(Ipv4Addr);

impl nfs3_client::net::Connector for From {
    type Connection = TokioIo<TokioStream>;

    async fn connect(&self, addr: SocketAddr) -> std::io::Result<Self::Connection> {
        self.connect_with_port(addr, 0).await
    }

    async fn connect_with_port(
        &self,
        addr: SocketAddr,
        port: u16,
    ) -> std::io::Result<Self::Connection> {
        let s = TcpSocket::new_v4()?;
        s.bind(SocketAddr::new(self.0.into(), port))?;
        Ok(TokioIo::new(s.connect(addr).await?))
    }
}

type Conn = Nfs3Connection<TokioIo<TokioStream>>;

fn root_cred() -> opaque_auth<'static> {
    opaque_auth::auth_unix(&auth_unix::default())
}

async fn mount_as(
    server: &str,
    from: Ipv4Addr,
    path: &str,
    portmapper: bool,
) -> Result<Conn, nfs3_client::ConnectError> {
    let b = Nfs3ConnectionBuilder::new(From(from), server, path)
        .credential(root_cred())
        .connect_from_privileged_port(false);
    let b = if portmapper {
        b.portmapper_port(111)
    } else {
        b.mount_port(2049).nfs3_port(2049)
    };
    b.mount().await
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn st<T, E>(r: Nfs3Result<T, E>) -> nfsstat3 {
    match r {
        Nfs3Result::Ok(_) => nfsstat3::NFS3_OK,
        Nfs3Result::Err((s, _)) => s,
    }
}

fn dirop<'a>(dir: &nfs3::nfs_fh3, name: &'a str) -> nfs3::diropargs3<'a> {
    nfs3::diropargs3 {
        dir: dir.clone(),
        name: nfs3::filename3(Opaque::borrowed(name.as_bytes())),
    }
}

async fn lookup(
    c: &mut Conn,
    dir: &nfs3::nfs_fh3,
    name: &str,
) -> Result<nfs3::LOOKUP3resok, nfsstat3> {
    match c
        .lookup(&nfs3::LOOKUP3args {
            what: dirop(dir, name),
        })
        .await
        .expect("LOOKUP rpc")
    {
        Nfs3Result::Ok(ok) => Ok(ok),
        Nfs3Result::Err((s, _)) => Err(s),
    }
}

fn fileid(a: &nfs3::post_op_attr) -> u64 {
    match a {
        Nfs3Option::Some(f) => f.fileid,
        Nfs3Option::None => panic!("no attributes"),
    }
}

#[test]
fn image_reads_are_exact_and_every_write_is_refused() {
    let lab = Lab::new("nfr", 71);
    // Whole tree, with and without explicit ports (the latter through our portmapper on 111).
    for ports in [true, false] {
        let o = lab.libnfs(&["nfs-ls", "-R", &lab.url(lab.image.to_str().unwrap(), ports)]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "nfs-ls -R (ports named: {ports}): {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            lab.dump()
        );
        for f in ["etc/hostname", "etc/sub/deep.txt", "etc/link", "blob.bin"] {
            assert!(out.contains(f), "{f} missing from nfs-ls -R:\n{out}");
        }
    }
    let o = lab.libnfs(&[
        "nfs-cat",
        &lab.url(&format!("{}/etc/sub/deep.txt", lab.image.display()), true),
    ]);
    assert!(
        o.status.success(),
        "nfs-cat: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.stdout, b"deep\n");
    let copy = lab.bh.path("blob.copy");
    let o = lab.libnfs(&[
        "nfs-cp",
        &lab.url(&format!("{}/blob.bin", lab.image.display()), false),
        copy.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "nfs-cp: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        sha256(&copy),
        sha256(&lab.image.join("blob.bin")),
        "image file differs after NFS read"
    );
    // Upload into the image: refused.
    let o = lab.libnfs(&[
        "nfs-cp",
        copy.to_str().unwrap(),
        &lab.url(&format!("{}/up.bin", lab.image.display()), true),
    ]);
    assert!(
        !o.status.success(),
        "nfs-cp upload into the read-only image succeeded"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ROFS"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!lab.image.join("up.bin").exists());

    let before = sh(&[
        "find",
        lab.image.to_str().unwrap(),
        "-printf",
        "%p %s %m %U %T@\n",
    ]);
    let (server, n1, image) = (lab.server.clone(), lab.n1, lab.image.display().to_string());
    let blob_tail = std::fs::read(lab.image.join("blob.bin")).unwrap()[(5 << 20) - 10..].to_vec();
    in_netns(&lab.pair.cli, move || {
        rt().block_on(async move {
            let mut c = mount_as(&server, n1, &image, true)
                .await
                .expect("mount image via portmapper");
            let root = c.root_nfs_fh3();
            let etc = lookup(&mut c, &root, "etc").await.expect("etc").object;
            let host = lookup(&mut c, &etc, "hostname")
                .await
                .expect("hostname")
                .object;
            let rofs = nfsstat3::NFS3ERR_ROFS;
            let w = c
                .write(&nfs3::WRITE3args {
                    file: host.clone(),
                    offset: 0,
                    count: 3,
                    stable: nfs3::stable_how::FILE_SYNC,
                    data: Opaque::borrowed(b"bad"),
                })
                .await
                .unwrap();
            assert_eq!(st(w), rofs, "WRITE");
            let cr = c
                .create(&nfs3::CREATE3args {
                    where_: dirop(&etc, "new"),
                    how: nfs3::createhow3::UNCHECKED(nfs3::sattr3::default()),
                })
                .await
                .unwrap();
            assert_eq!(st(cr), rofs, "CREATE");
            let md = c
                .mkdir(&nfs3::MKDIR3args {
                    where_: dirop(&etc, "d"),
                    attributes: nfs3::sattr3::default(),
                })
                .await
                .unwrap();
            assert_eq!(st(md), rofs, "MKDIR");
            let sl = c
                .symlink(&nfs3::SYMLINK3args {
                    where_: dirop(&etc, "s"),
                    symlink: nfs3::symlinkdata3 {
                        symlink_attributes: nfs3::sattr3::default(),
                        symlink_data: nfs3::nfspath3(Opaque::borrowed(b"/etc/shadow")),
                    },
                })
                .await
                .unwrap();
            assert_eq!(st(sl), rofs, "SYMLINK");
            let mk = c
                .mknod(&nfs3::MKNOD3args {
                    where_: dirop(&etc, "f"),
                    what: nfs3::mknoddata3::NF3FIFO(nfs3::sattr3::default()),
                })
                .await
                .unwrap();
            assert_eq!(st(mk), rofs, "MKNOD");
            let rm = c
                .remove(&nfs3::REMOVE3args {
                    object: dirop(&etc, "hostname"),
                })
                .await
                .unwrap();
            assert_eq!(st(rm), rofs, "REMOVE");
            let rd = c
                .rmdir(&nfs3::RMDIR3args {
                    object: dirop(&etc, "sub"),
                })
                .await
                .unwrap();
            assert_eq!(st(rd), rofs, "RMDIR");
            let rn = c
                .rename(&nfs3::RENAME3args {
                    from: dirop(&etc, "hostname"),
                    to: dirop(&etc, "h2"),
                })
                .await
                .unwrap();
            assert_eq!(st(rn), rofs, "RENAME");
            let ln = c
                .link(&nfs3::LINK3args {
                    file: host.clone(),
                    link: dirop(&etc, "h3"),
                })
                .await
                .unwrap();
            assert_eq!(st(ln), rofs, "LINK");
            for attrs in [
                nfs3::sattr3 {
                    mode: Nfs3Option::Some(0o777),
                    ..Default::default()
                },
                nfs3::sattr3 {
                    size: Nfs3Option::Some(0),
                    ..Default::default()
                },
                nfs3::sattr3 {
                    uid: Nfs3Option::Some(1000),
                    ..Default::default()
                },
                nfs3::sattr3 {
                    mtime: nfs3::set_mtime::SET_TO_SERVER_TIME,
                    ..Default::default()
                },
            ] {
                let sa = c
                    .setattr(&nfs3::SETATTR3args {
                        object: host.clone(),
                        new_attributes: attrs,
                        guard: Nfs3Option::None,
                    })
                    .await
                    .unwrap();
                assert_eq!(st(sa), rofs, "SETATTR");
            }
            let cm = c
                .commit(&nfs3::COMMIT3args {
                    file: host.clone(),
                    offset: 0,
                    count: 0,
                })
                .await
                .unwrap();
            assert_eq!(st(cm), rofs, "COMMIT");
            // ACCESS grants reading but no kind of change.
            match c
                .access(&nfs3::ACCESS3args {
                    object: etc.clone(),
                    access: 0x3f,
                })
                .await
                .unwrap()
            {
                Nfs3Result::Ok(ok) => {
                    assert_eq!(ok.access & (0x04 | 0x08 | 0x10), 0, "ACCESS offers changes")
                }
                Nfs3Result::Err((s, _)) => panic!("ACCESS: {s:?}"),
            }
            // Reads work through the same connection.
            match c
                .read(&nfs3::READ3args {
                    file: host,
                    offset: 0,
                    count: 100,
                })
                .await
                .unwrap()
            {
                Nfs3Result::Ok(ok) => {
                    assert_eq!(ok.data.as_ref(), b"image\n");
                    assert!(ok.eof);
                }
                Nfs3Result::Err((s, _)) => panic!("READ: {s:?}"),
            }
            // Asking for more than is left, as kernel clients do (rsize at a time): what there is,
            // and eof.
            let blob = lookup(&mut c, &root, "blob.bin")
                .await
                .expect("blob")
                .object;
            match c
                .read(&nfs3::READ3args {
                    file: blob,
                    offset: (5 << 20) - 10,
                    count: 1 << 20,
                })
                .await
                .unwrap()
            {
                Nfs3Result::Ok(ok) => {
                    assert_eq!(ok.data.as_ref(), &blob_tail[..]);
                    assert!(ok.eof);
                }
                Nfs3Result::Err((s, _)) => panic!("READ past the end: {s:?}"),
            }
            // `..` of the export root is the root.
            let up = lookup(&mut c, &root, "..").await.expect("..");
            let me = lookup(&mut c, &root, ".").await.expect(".");
            assert_eq!(fileid(&up.obj_attributes), fileid(&me.obj_attributes));
        })
    });
    let after = sh(&[
        "find",
        lab.image.to_str().unwrap(),
        "-printf",
        "%p %s %m %U %T@\n",
    ]);
    assert_eq!(before, after, "the read-only image changed");
}

/// The line `nfs-ls` prints for `name` (`-rw-r--r--  1     0     0            6 /hostname`).
fn ls_line(lab: &Lab, dir: &str, name: &str) -> String {
    let o = lab.libnfs(&["nfs-ls", &lab.url(dir, true)]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "nfs-ls {dir}: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        lab.dump()
    );
    out.lines()
        .find(|l| l.ends_with(&format!("/{name}")) || l.ends_with(&format!(" {name}")))
        .unwrap_or_else(|| panic!("{name} missing from nfs-ls {dir}:\n{out}"))
        .to_string()
}

/// Mode and size as `nfs-ls` shows them (first and fifth column).
fn mode_size(line: &str) -> (String, u64) {
    let f: Vec<&str> = line.split_whitespace().collect();
    assert!(f.len() >= 6, "unexpected nfs-ls line: {line}");
    (f[0].to_string(), f[4].parse().expect("size column"))
}

/// An administrator changing an image (chmod, write, truncate, rename) while nodes list it:
/// the next listing by a real client (libnfs, READDIRPLUS) shows the change at once, although
/// the server keeps the listing and its files' attributes between listings.
#[test]
fn image_changes_are_in_the_very_next_listing() {
    let lab = Lab::new("nfat", 76);
    let etc = lab.image.join("etc");
    let dir = etc.display().to_string();
    // Kept listings are for directories whose last change is over 2 s old.
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(
        mode_size(&ls_line(&lab, &dir, "hostname")),
        ("-rw-r--r--".to_string(), 6)
    );
    // Listed again: now from the kept listing and attributes.
    assert_eq!(mode_size(&ls_line(&lab, &dir, "hostname")).1, 6);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(etc.join("hostname"), PermissionsExt::from_mode(0o600)).unwrap();
    assert_eq!(
        mode_size(&ls_line(&lab, &dir, "hostname")).0,
        "-rw-------",
        "chmod not in the next listing"
    );
    std::fs::write(etc.join("hostname"), "image-renamed\n").unwrap();
    assert_eq!(
        mode_size(&ls_line(&lab, &dir, "hostname")).1,
        14,
        "write not in the next listing"
    );
    std::fs::OpenOptions::new()
        .write(true)
        .open(etc.join("hostname"))
        .unwrap()
        .set_len(3)
        .unwrap();
    assert_eq!(
        mode_size(&ls_line(&lab, &dir, "hostname")).1,
        3,
        "truncate not in the next listing"
    );
    std::fs::rename(etc.join("hostname"), etc.join("hostname.old")).unwrap();
    std::fs::write(etc.join("hostname"), "new\n").unwrap();
    assert_eq!(mode_size(&ls_line(&lab, &dir, "hostname")).1, 4);
    assert_eq!(mode_size(&ls_line(&lab, &dir, "hostname.old")).1, 3);
}

#[test]
fn node_state_is_private_and_survives_a_restart() {
    let mut lab = Lab::new("nfw", 72);
    let n1_dir = lab.state.join("n1");
    let n2_dir = lab.state.join("n2");
    assert!(
        n1_dir.is_dir() && n2_dir.is_dir(),
        "node directories not created:\n{}",
        lab.dump()
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&n1_dir).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    assert!(
        lab.daemon
            .as_ref()
            .unwrap()
            .wait_for(&format!("read-write to n1 ({})", lab.n1), 1),
        "{}",
        lab.dump()
    );

    // n1 writes through libnfs from its own address … (libnfs binds no address: the kernel picks
    // the first one, n1's)
    let local = lab.bh.file("local.txt", "persistent\n");
    let o = lab.libnfs(&[
        "nfs-cp",
        &local,
        &lab.url(&format!("{}/etc.conf", n1_dir.display()), true),
    ]);
    assert!(
        o.status.success(),
        "nfs-cp into n1's state: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        lab.dump()
    );
    assert_eq!(
        std::fs::read_to_string(n1_dir.join("etc.conf")).unwrap(),
        "persistent\n"
    );
    // The parent holds every node's state: refused.
    let o = lab.libnfs(&["nfs-ls", &lab.url(lab.state.to_str().unwrap(), true)]);
    assert!(!o.status.success(), "mounting the state parent succeeded");
    // … and through the Rust client: create, write, commit; keep the handle.
    let (server, n1, n2) = (lab.server.clone(), lab.n1, lab.n2);
    let (d1, d2) = (n1_dir.display().to_string(), n2_dir.display().to_string());
    let (fh, dirfh) = in_netns(&lab.pair.cli, || {
        rt().block_on(async {
            let mut c = mount_as(&server, n1, &d1, false)
                .await
                .expect("n1 mounts its state");
            let root = c.root_nfs_fh3();
            let made = c
                .create(&nfs3::CREATE3args {
                    where_: dirop(&root, "kept"),
                    how: nfs3::createhow3::GUARDED(nfs3::sattr3 {
                        mode: Nfs3Option::Some(0o600),
                        ..Default::default()
                    }),
                })
                .await
                .unwrap();
            let fh = match made {
                Nfs3Result::Ok(ok) => match ok.obj {
                    Nfs3Option::Some(h) => h,
                    Nfs3Option::None => panic!("no handle"),
                },
                Nfs3Result::Err((s, _)) => panic!("CREATE: {s:?}"),
            };
            let w = c
                .write(&nfs3::WRITE3args {
                    file: fh.clone(),
                    offset: 0,
                    count: 6,
                    stable: nfs3::stable_how::UNSTABLE,
                    data: Opaque::borrowed(b"state\n"),
                })
                .await
                .unwrap();
            assert_eq!(st(w), nfsstat3::NFS3_OK);
            let cm = c
                .commit(&nfs3::COMMIT3args {
                    file: fh.clone(),
                    offset: 0,
                    count: 0,
                })
                .await
                .unwrap();
            assert_eq!(st(cm), nfsstat3::NFS3_OK);
            let md = c
                .mkdir(&nfs3::MKDIR3args {
                    where_: dirop(&root, "var"),
                    attributes: nfs3::sattr3::default(),
                })
                .await
                .unwrap();
            assert_eq!(st(md), nfsstat3::NFS3_OK);
            // `..` at the node's root leads nowhere.
            let up = lookup(&mut c, &root, "..").await.expect("..");
            let me = lookup(&mut c, &root, ".").await.expect(".");
            assert_eq!(
                fileid(&up.obj_attributes),
                fileid(&me.obj_attributes),
                "`..` left the node's root"
            );
            // Renaming out of the export is impossible: another export is another device id
            // here, and XDEV anyway.
            (fh, root)
        })
    });
    let m = std::fs::metadata(n1_dir.join("kept")).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read(n1_dir.join("kept")).unwrap(), b"state\n");

    lab.restart();

    let fh2 = fh.clone();
    in_netns(&lab.pair.cli, || {
        rt().block_on(async {
            // A handle from before the restart still works, on a fresh connection.
            let mut c = mount_as(&server, n1, &d1, false)
                .await
                .expect("n1 mounts again");
            match c
                .read(&nfs3::READ3args {
                    file: fh2.clone(),
                    offset: 0,
                    count: 100,
                })
                .await
                .unwrap()
            {
                Nfs3Result::Ok(ok) => assert_eq!(ok.data.as_ref(), b"state\n"),
                Nfs3Result::Err((s, _)) => panic!("READ with a pre-restart handle: {s:?}"),
            }
            assert!(
                lookup(&mut c, &dirfh, "var").await.is_ok(),
                "pre-restart directory handle"
            );
            // n2 may not mount n1's directory …
            match mount_as(&server, n2, &d1, false).await {
                Err(nfs3_client::ConnectError::Mount(nfs3_client::MountError::Denied(s))) => {
                    assert!(
                        matches!(s, nfs3_client::nfs3_types::mount::mountstat3::MNT3ERR_ACCES),
                        "{s:?}"
                    )
                }
                Err(e) => panic!("n2 mounting n1's state: unexpected {e}"),
                Ok(_) => panic!("n2 mounted n1's state"),
            }
            // … but its own; and n1's handles are refused on n2's connection.
            let mut c2 = mount_as(&server, n2, &d2, false)
                .await
                .expect("n2 mounts its own state");
            let g = st(c2
                .getattr(&nfs3::GETATTR3args {
                    object: fh2.clone(),
                })
                .await
                .unwrap());
            assert!(
                matches!(g, nfsstat3::NFS3ERR_ACCES | nfsstat3::NFS3ERR_STALE),
                "n1's handle from n2: {g:?}"
            );
            let r = c2
                .read(&nfs3::READ3args {
                    file: fh2.clone(),
                    offset: 0,
                    count: 100,
                })
                .await
                .unwrap();
            assert!(matches!(
                st(r),
                nfsstat3::NFS3ERR_ACCES | nfsstat3::NFS3ERR_STALE
            ));
            let w = c2
                .write(&nfs3::WRITE3args {
                    file: fh2.clone(),
                    offset: 0,
                    count: 3,
                    stable: nfs3::stable_how::FILE_SYNC,
                    data: Opaque::borrowed(b"n2!"),
                })
                .await
                .unwrap();
            assert!(matches!(
                st(w),
                nfsstat3::NFS3ERR_ACCES | nfsstat3::NFS3ERR_STALE
            ));
            // A forged handle (one byte changed) is refused too.
            let mut forged = fh2.data.as_ref().to_vec();
            let last = forged.len() - 1;
            forged[last] ^= 1;
            let g = c
                .getattr(&nfs3::GETATTR3args {
                    object: nfs3::nfs_fh3 {
                        data: Opaque::owned(forged),
                    },
                })
                .await
                .unwrap();
            assert_eq!(st(g), nfsstat3::NFS3ERR_STALE);
        })
    });
    assert_eq!(std::fs::read(n1_dir.join("kept")).unwrap(), b"state\n");
}

/// Raw RPC over TCP: a call record, and the reply record.
fn call(
    s: &mut TcpStream,
    xid: u32,
    prog: u32,
    vers: u32,
    proc_: u32,
    cred: &[u8],
    args: &[u8],
) -> Option<Vec<u8>> {
    let mut m = Vec::new();
    for v in [xid, 0, 2, prog, vers, proc_] {
        m.extend_from_slice(&v.to_be_bytes());
    }
    m.extend_from_slice(cred);
    m.extend_from_slice(&[0; 8]); // verifier AUTH_NONE
    m.extend_from_slice(args);
    let mut rec = (0x8000_0000u32 | m.len() as u32).to_be_bytes().to_vec();
    rec.extend_from_slice(&m);
    s.write_all(&rec).ok()?;
    read_reply(s)
}

fn read_reply(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).ok()?;
    let len = (u32::from_be_bytes(h) & 0x7fff_ffff) as usize;
    let mut b = vec![0; len];
    s.read_exact(&mut b).ok()?;
    Some(b)
}

fn word(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

const NONE: [u8; 8] = [0; 8];

fn connect(server: &str) -> TcpStream {
    let s = TcpStream::connect((server, 2049)).expect("connect to NFS");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

#[test]
fn hostile_rpc_gets_errors_and_the_daemon_keeps_serving() {
    let lab = Lab::new("nbad", 73);
    let server = lab.server.clone();
    in_netns(&lab.pair.cli, || {
        let mut s = connect(&server);
        // rpcvers 3 → MSG_DENIED / RPC_MISMATCH
        let mut m = Vec::new();
        for v in [1u32, 0, 3, 100003, 3, 0, 0, 0, 0, 0] {
            m.extend_from_slice(&v.to_be_bytes());
        }
        let mut rec = (0x8000_0000u32 | m.len() as u32).to_be_bytes().to_vec();
        rec.extend_from_slice(&m);
        s.write_all(&rec).unwrap();
        let r = read_reply(&mut s).expect("reply to rpcvers 3");
        assert_eq!(
            (word(&r, 1), word(&r, 2), word(&r, 3)),
            (1, 1, 0),
            "RPC_MISMATCH"
        );
        // Unknown program, wrong version, unknown procedure.
        let r = call(&mut s, 2, 100099, 1, 0, &NONE, &[]).expect("reply");
        assert_eq!(word(&r, 5), 1, "PROG_UNAVAIL");
        let r = call(&mut s, 3, 100003, 4, 0, &NONE, &[]).expect("reply");
        assert_eq!(
            (word(&r, 5), word(&r, 6), word(&r, 7)),
            (2, 3, 3),
            "PROG_MISMATCH"
        );
        let r = call(&mut s, 4, 100003, 3, 99, &NONE, &[]).expect("reply");
        assert_eq!(word(&r, 5), 3, "PROC_UNAVAIL");
        let r = call(&mut s, 5, 100005, 3, 42, &NONE, &[]).expect("reply");
        assert_eq!(word(&r, 5), 3, "MOUNT PROC_UNAVAIL");
        // Truncated arguments, a huge handle length, a huge name length.
        let r = call(&mut s, 6, 100003, 3, 1, &NONE, &[0, 0]).expect("reply");
        assert_eq!(word(&r, 5), 4, "GARBAGE_ARGS for truncated XDR");
        let r = call(
            &mut s,
            7,
            100003,
            3,
            1,
            &NONE,
            &0x7fff_ffffu32.to_be_bytes(),
        )
        .expect("reply");
        assert_eq!(word(&r, 5), 4, "GARBAGE_ARGS for a 2 GB handle");
        let mut a = 8u32.to_be_bytes().to_vec();
        a.extend_from_slice(&[1; 8]);
        a.extend_from_slice(&0xffff_fff0u32.to_be_bytes());
        let r = call(&mut s, 8, 100003, 3, 3, &NONE, &a).expect("reply");
        assert_eq!(word(&r, 5), 4, "GARBAGE_ARGS for a 4 GB name");
        let r = call(
            &mut s,
            9,
            100005,
            3,
            1,
            &NONE,
            &0x7fff_ffffu32.to_be_bytes(),
        )
        .expect("reply");
        assert_eq!(word(&r, 5), 4, "GARBAGE_ARGS for a 2 GB mount path");
        // AUTH_SYS with 100,000 groups, and an unknown flavour: AUTH_ERROR.
        let mut cred = 1u32.to_be_bytes().to_vec();
        let mut body = Vec::new();
        for v in [0u32, 0, 0, 0, 100_000] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        cred.extend_from_slice(&(body.len() as u32).to_be_bytes());
        cred.extend_from_slice(&body);
        let r = call(&mut s, 10, 100003, 3, 0, &cred, &[]).expect("reply");
        assert_eq!(
            (word(&r, 2), word(&r, 3)),
            (1, 1),
            "AUTH_ERROR for 100k groups"
        );
        let mut cred = 6u32.to_be_bytes().to_vec();
        cred.extend_from_slice(&[0; 4]);
        let r = call(&mut s, 11, 100003, 3, 0, &cred, &[]).expect("reply");
        assert_eq!(
            (word(&r, 2), word(&r, 3), word(&r, 4)),
            (1, 1, 5),
            "AUTH_TOOWEAK for RPCSEC_GSS"
        );
        // Forged handles: status BADHANDLE / STALE in an ordinary reply.
        let mut a = 20u32.to_be_bytes().to_vec();
        a.extend_from_slice(&[1; 20]);
        let r = call(&mut s, 12, 100003, 3, 1, &NONE, &a).expect("reply");
        assert_eq!((word(&r, 5), word(&r, 6)), (0, 10001), "BADHANDLE");
        let mut a = 30u32.to_be_bytes().to_vec();
        let mut h = vec![1u8, 0, 0, 0, 1, 0, 0, 0, 1, 4, 1, 2, 3, 4];
        h.extend_from_slice(&[7; 16]);
        a.extend_from_slice(&h);
        a.extend_from_slice(&[0, 0]);
        let r = call(&mut s, 13, 100003, 3, 1, &NONE, &a).expect("reply");
        assert_eq!(
            (word(&r, 5), word(&r, 6)),
            (0, 70),
            "STALE for a forged MAC"
        );
        // The connection still works.
        let r = call(&mut s, 14, 100003, 3, 0, &NONE, &[]).expect("NULL after all that");
        assert_eq!(word(&r, 5), 0);
        // A reply where a call should be, and bytes that are no record: disconnected.
        let mut s2 = connect(&server);
        s2.write_all(&[0x80, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 1])
            .unwrap();
        assert!(read_reply(&mut s2).is_none(), "a REPLY message got a reply");
        let mut s3 = connect(&server);
        s3.write_all(&[0x80, 0, 0, 2, 0xff, 0xff]).unwrap();
        assert!(read_reply(&mut s3).is_none(), "garbage got a reply");
        // Random garbage records in many shapes: the daemon answers or hangs up, and lives.
        let mut seed = 0x1234_5678u32;
        for _ in 0..300 {
            let mut s4 = connect(&server);
            let mut b = Vec::new();
            for _ in 0..(seed % 64) {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                b.extend_from_slice(&seed.to_be_bytes());
            }
            let mut rec = (0x8000_0000u32 | b.len() as u32).to_be_bytes().to_vec();
            rec.extend_from_slice(&b);
            let _ = s4.write_all(&rec);
            s4.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let _ = read_reply(&mut s4);
        }
    });
    let o = lab.libnfs(&[
        "nfs-cat",
        &lab.url(&format!("{}/etc/hostname", lab.image.display()), true),
    ]);
    assert!(
        o.status.success() && o.stdout == b"image\n",
        "daemon stopped serving:\n{}",
        lab.dump()
    );
    assert!(!lab.dump().contains("panicked"), "{}", lab.dump());
}

#[test]
fn oversized_records_and_many_connections_keep_memory_bounded() {
    let lab = Lab::new("nmem", 74);
    let server = lab.server.clone();
    let pid = lab.pid();
    // Warm up (first mount, thread pools).
    let o = lab.libnfs(&[
        "nfs-cat",
        &lab.url(&format!("{}/etc/hostname", lab.image.display()), true),
    ]);
    assert!(o.status.success());
    let before = rss_kib(pid);
    let during = in_netns(&lab.pair.cli, || {
        // 2,000 connections each claiming a 2 GB record: each is closed at its record mark.
        for _ in 0..2000 {
            let mut s = connect(&server);
            s.write_all(&[0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4]).unwrap();
            let mut b = [0u8; 16];
            assert!(
                matches!(s.read(&mut b), Ok(0) | Err(_)),
                "a 2 GB record mark did not end the connection"
            );
        }
        // 600 connections at once, each announcing a 1 MiB record and sending only part of it,
        // plus 600 announcing a 2 GB one in a non-last fragment.
        let mut held = Vec::new();
        for i in 0..1200 {
            let mut s = connect(&server);
            if i % 2 == 0 {
                let _ = s.write_all(&(0x8000_0000u32 | (1 << 20)).to_be_bytes());
                let _ = s.write_all(&[0u8; 1000]);
            } else {
                let _ = s.write_all(&[0, 0, 0, 16]);
                let _ = s.write_all(&[0u8; 16]);
                let _ = s.write_all(&[0xff, 0xff, 0xff, 0xff]);
            }
            held.push(s);
        }
        std::thread::sleep(Duration::from_millis(500));
        let during = rss_kib(pid);
        drop(held);
        during
    });
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(pid);
    eprintln!("daemon VmRSS: before {before} KiB, with 1,200 hostile connections {during} KiB, after {after} KiB");
    assert!(
        during < before + 128 * 1024,
        "RSS grew from {before} KiB to {during} KiB"
    );
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    let o = lab.libnfs(&[
        "nfs-cat",
        &lab.url(&format!("{}/etc/hostname", lab.image.display()), true),
    ]);
    assert!(
        o.status.success() && o.stdout == b"image\n",
        "daemon stopped serving:\n{}",
        lab.dump()
    );
}

/// Read your writes: a node whose address changed a moment ago mounts its state directory from
/// the new address at once, and no longer from the old one (200 rounds, each mount right after
/// the `chdef` returned).
#[test]
fn an_address_change_is_in_the_very_next_mount() {
    let lab = Lab::new("nfr", 73);
    let other: Ipv4Addr = "10.99.73.4".parse().unwrap();
    sh(&[
        "ip",
        "-n",
        &lab.pair.cli.0,
        "addr",
        "add",
        "10.99.73.4/24",
        "dev",
        "bhc0",
    ]);
    let path = lab.state.join("n1").display().to_string();
    let (server, n1, bh) = (lab.server.clone(), lab.n1, &lab.bh);
    let failed = in_netns(&lab.pair.cli, || {
        let rt = rt();
        for i in 0..200u32 {
            let (now, before) = if i.is_multiple_of(2) {
                (other, n1)
            } else {
                (n1, other)
            };
            bh.ok(&["chdef", "n1", &format!("ip={now}")]);
            if let Err(e) = rt.block_on(mount_as(&server, now, &path, false)) {
                return Some(format!("round {i}: {now} (n1's now) refused: {e:?}"));
            }
            if rt.block_on(mount_as(&server, before, &path, false)).is_ok() {
                return Some(format!("round {i}: {before} (no longer n1's) mounted"));
            }
        }
        None
    });
    assert!(
        failed.is_none(),
        "stale export: {}\n{}",
        failed.unwrap_or_default(),
        lab.dump()
    );
}
