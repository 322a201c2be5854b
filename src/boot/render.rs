//! From a node's boot state and table facts to the bytes of each boot file, and from a path a boot
//! loader asks for to the file that answers it.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::state::{image_files, BootState};
use super::templates::{fill, get};
use crate::store::resolver::Resolver;
use crate::store::StoreError;

/// What rendering needs besides the tables.
#[derive(Debug, Clone)]
pub struct RenderCtx {
    /// The TFTP root (site.tftpdir): where kernels are looked at (EFI stub check).
    pub tftpdir: PathBuf,
    /// This server's address as the node sees it, when known (the TFTP socket's local address).
    pub server_ip: Option<Ipv4Addr>,
}

/// Everything about one node's next boot, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeBoot {
    pub node: String,
    pub state: BootState,
    pub netboot: Option<String>,
    pub arch: String,
    pub ip: Option<Ipv4Addr>,
    /// The node's own MACs (lower case), first = install NIC.
    pub macs: Vec<String>,
    pub kernel: String,
    pub initrd: String,
    pub cmdline: String,
    /// Image/HTTP server as the node reaches it.
    pub server: String,
    pub httpport: String,
}

fn hexip(ip: Ipv4Addr) -> String {
    ip.octets().iter().map(|o| format!("{o:02X}")).collect()
}

/// `!myipfn!`: this server's address facing `node_ip` — the local interface on the node's
/// network, else `site.master`.
pub fn my_ip_for(
    node_ip: Option<Ipv4Addr>,
    known: Option<Ipv4Addr>,
    master: Option<&str>,
) -> String {
    if let Some(k) = known {
        return k.to_string();
    }
    if let (Some(nip), Ok(addrs)) = (node_ip, nix::ifaddrs::getifaddrs()) {
        for ifa in addrs {
            let (Some(a), Some(m)) = (ifa.address, ifa.netmask) else {
                continue;
            };
            let (Some(a), Some(m)) = (a.as_sockaddr_in(), m.as_sockaddr_in()) else {
                continue;
            };
            let (a, m) = (u32::from(a.ip()), u32::from(m.ip()));
            if a & m == u32::from(nip) & m && a != 0 {
                return Ipv4Addr::from(a).to_string();
            }
        }
    }
    master.unwrap_or("!myipfn!").to_string()
}

/// `#NODEATTRIB:tab:col#` and `#TABLE:tab:$NODE:col#` in addkcmdline; `R::` options are for the
/// installed OS and are left out.
fn expand_addkcmdline(r: &Resolver, node: &str, s: &str) -> String {
    let mut out = Vec::new();
    for word in s.split_whitespace() {
        if word.starts_with("R::") {
            continue;
        }
        let mut w = word.to_string();
        for _ in 0..8 {
            let Some(start) = w.find('#') else { break };
            let Some(len) = w[start + 1..].find('#') else {
                break;
            };
            let inner = &w[start + 1..start + 1 + len];
            let parts: Vec<&str> = inner.split(':').collect();
            let value = match parts.as_slice() {
                ["NODEATTRIB", t, c] => r.attr(node, t, c).ok().flatten().unwrap_or_default(),
                ["TABLE", t, "$NODE", c] => r.attr(node, t, c).ok().flatten().unwrap_or_default(),
                _ => break,
            };
            w = format!("{}{}{}", &w[..start], value, &w[start + 2 + len..]);
        }
        out.push(w);
    }
    out.join(" ")
}

fn major_version(os: &str) -> u32 {
    os.chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

/// Resolves `node`'s next boot. Errors only for store failures.
pub fn node_boot(r: &Resolver, node: &str, ctx: &RenderCtx) -> Result<NodeBoot, StoreError> {
    let a = |t: &str, c: &str| r.attr(node, t, c);
    let state = BootState::from_tables(
        a("chain", "currstate")?.as_deref(),
        a("nodetype", "provmethod")?.as_deref(),
    );
    let ip = a("hosts", "ip")?.and_then(|s| s.parse().ok());
    let macs: Vec<String> = a("mac", "mac")?
        .unwrap_or_default()
        .split('|')
        .filter(|e| !e.contains('!'))
        .filter_map(|m| crate::dhcp::config::normalize_mac(m.trim()))
        .collect();
    let master = r.site_master()?;
    let me = my_ip_for(ip, ctx.server_ip, master.as_deref());
    let xcatmaster = a("noderes", "xcatmaster")?.unwrap_or_else(|| me.clone());
    let server = a("noderes", "nfsserver")?
        .or(a("noderes", "tftpserver")?)
        .unwrap_or_else(|| xcatmaster.clone());
    let httpport = r.site("httpport")?.unwrap_or_else(|| "80".into());
    let xcatdport = r.site("xcatdport")?.unwrap_or_else(|| "3001".into());
    let console = match (a("nodehm", "serialport")?, a("nodehm", "serialspeed")?) {
        (Some(p), Some(s)) => format!("console=tty0 console=ttyS{p},{s}"),
        (Some(p), None) => format!("console=tty0 console=ttyS{p}"),
        _ => String::new(),
    };
    let mut arch = a("nodetype", "arch")?.unwrap_or_else(|| "x86_64".into());
    let (mut kernel, mut initrd) = (
        format!("xcat/genesis.kernel.{arch}"),
        format!("xcat/genesis.fs.{arch}.gz"),
    );
    let mut parts: Vec<String> = Vec::new();
    match &state {
        BootState::Image { method, image, .. } => {
            let img = super::state::osimage(r, image)?.unwrap_or_default();
            if !img.arch.is_empty() {
                arch = img.arch.clone();
            }
            let os = if img.os.is_empty() {
                a("nodetype", "os")?.unwrap_or_default()
            } else {
                img.os.clone()
            };
            let li = r.table("linuximage")?;
            let lget = |c: &str| {
                li.spec.col_index(c).and_then(|i| {
                    li.rows_for(image)
                        .next()
                        .and_then(|row| row.get(i).cloned().flatten())
                })
            };
            let rootimgdir = lget("rootimgdir")
                .unwrap_or_else(|| format!("/install/netboot/{os}/{arch}/{}", img.profile));
            let rootimgdir = if rootimgdir.starts_with('/') {
                rootimgdir
            } else {
                format!("/{rootimgdir}")
            };
            match method.as_str() {
                "install" => {
                    (kernel, initrd) = image_files("install", image);
                    let base = format!("http://{server}:{httpport}/install");
                    if os.starts_with("sle") {
                        parts.push(format!("autoyast={base}/autoinst/{node}"));
                        parts.push(format!("install={base}/{os}/{arch}/1"));
                    } else if os.starts_with("ubuntu") || os.starts_with("debian") {
                        parts.push(format!("url={base}/autoinst/{node}"));
                        parts.push("auto=true priority=critical".into());
                    } else if major_version(&os) >= 7 || !os.starts_with("rhel") {
                        parts.push(format!("inst.repo={base}/{os}/{arch}"));
                        parts.push(format!("inst.ks={base}/autoinst/{node}"));
                    } else {
                        parts.push(format!("repo={base}/{os}/{arch}"));
                        parts.push(format!("ks={base}/autoinst/{node}"));
                        if let Some(m) = macs.first() {
                            parts.push(format!("ksdevice={m}"));
                        }
                    }
                }
                "netboot" => {
                    (kernel, initrd) = image_files("netboot", image);
                    // The URL the HTTP service really serves: rootimgdir under site.installdir
                    // is /install/…; the packed file is whichever packimage last wrote.
                    let installdir = r.site("installdir")?.unwrap_or_else(|| "/install".into());
                    let installdir = installdir.trim_end_matches('/');
                    let urlpath = match rootimgdir.strip_prefix(installdir) {
                        Some(rest) if !installdir.is_empty() && rest.starts_with('/') => {
                            format!("/install{rest}")
                        }
                        _ => rootimgdir.clone(),
                    };
                    let packed =
                        crate::image::spec::packed_image(std::path::Path::new(&rootimgdir))
                            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                            .unwrap_or_else(|| "rootimg.cpio.gz".into());
                    parts.push(format!(
                        "imgurl=http://{server}:{httpport}{urlpath}/{packed}"
                    ));
                    parts.push(format!("XCAT={xcatmaster}:{xcatdport}"));
                    parts.push(format!("NODE={node}"));
                    parts.push("FC=0".into());
                    parts.push(format!("XCATHTTPPORT={httpport}"));
                }
                "statelite" => {
                    (kernel, initrd) = image_files("statelite", image);
                    let oget = r.table("osimage")?;
                    let nfsopts = oget.spec.col_index("nfsrootopts").and_then(|i| {
                        oget.rows_for(image)
                            .next()
                            .and_then(|row| row.get(i).cloned().flatten())
                    });
                    // Never rw: options a store written before the check holds are dropped
                    // (the write path refuses them with the reason).
                    let ro = match nfsopts {
                        Some(o)
                            if !o.is_empty()
                                && crate::store::validate::nfsroot_options(&o).is_ok() =>
                        {
                            let extra: Vec<&str> = o
                                .split(',')
                                .filter(|x| !x.eq_ignore_ascii_case("ro"))
                                .collect();
                            if extra.is_empty() {
                                "ro".into()
                            } else {
                                format!("ro,{}", extra.join(","))
                            }
                        }
                        _ => "ro".into(),
                    };
                    parts.push(format!("root=nfs:{server}:{rootimgdir}/rootimg:{ro}"));
                    if let Some(st) = a("statelite", "statemnt")? {
                        parts.push(format!("STATEMNT={}", r.substitute_vars(node, &st)));
                    }
                    parts.push(format!("XCAT={xcatmaster}:{xcatdport}"));
                    parts.push(format!("NODE={node}"));
                    parts.push(format!("XCATHTTPPORT={httpport}"));
                    if let Some(m) = a("statelite", "mntopts")? {
                        parts.push(format!("MNTOPTS={m}"));
                    }
                }
                _ => {
                    // sysclone: genesis runs SystemImager's script for the image.
                    (kernel, initrd) = (
                        format!("xcat/genesis.kernel.{arch}"),
                        format!("xcat/genesis.fs.{arch}.gz"),
                    );
                    parts.push("ramdisk_size=200000".into());
                    if let Some(m) = macs.first() {
                        parts.push(format!("ksdevice={m}"));
                    }
                    if !console.is_empty() {
                        parts.push(console.clone());
                    }
                    parts.push(format!(
                        "XCAT={xcatmaster}:{xcatdport} xcatd={xcatmaster}:{xcatdport}"
                    ));
                    parts.push(format!("SCRIPTNAME={image}"));
                    // Genesis's deploy names the clone (xCAT passes every key=value on).
                    parts.push(format!("NODE={node} XCATHTTPPORT={httpport}"));
                }
            }
            if method != "sysclone" && !console.is_empty() {
                parts.push(console.clone());
            }
            if let Some(add) = lget("addkcmdline") {
                parts.push(expand_addkcmdline(r, node, &add));
            }
        }
        BootState::Genesis(destiny) => {
            parts.push("quiet".into());
            if !console.is_empty() {
                parts.push(console.clone());
            }
            parts.push(format!("xcatd={xcatmaster}:{xcatdport}"));
            parts.push(format!("destiny={destiny}"));
        }
        BootState::Boot | BootState::Offline | BootState::None => {}
    }
    if matches!(state, BootState::Image { .. } | BootState::Genesis(_)) {
        if let Some(add) = a("bootparams", "addkcmdline")? {
            parts.push(expand_addkcmdline(r, node, &add));
        }
    }
    parts.retain(|p| !p.is_empty());
    Ok(NodeBoot {
        node: node.to_string(),
        state,
        netboot: a("noderes", "netboot")?,
        arch,
        ip,
        macs,
        kernel,
        initrd,
        cmdline: parts.join(" "),
        server,
        httpport,
    })
}

/// Whether a kernel image carries an EFI stub (the PE header of an x86-64 image in its first 512 bytes).
fn has_efi_stub(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 512];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    head[..n]
        .windows(6)
        .any(|w| w == [0x50, 0x45, 0x00, 0x00, 0x64, 0x86])
}

/// One file a node can be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootFile {
    /// Rendered text.
    Text(String),
    /// A file under the TFTP root served in place of this name (grub2-<node> → grub2.<arch>).
    Alias(String),
}

/// Every path (relative to the TFTP root) xCAT would have written for this node, with its content.
/// Empty for `offline` and for nodes with no boot state or no netboot method.
pub fn files_for(b: &NodeBoot, ctx: &RenderCtx) -> Vec<(String, BootFile)> {
    let mut out = Vec::new();
    if matches!(b.state, BootState::Offline | BootState::None) {
        return out;
    }
    let local = b.state == BootState::Boot;
    let label = b.state.label();
    let vars = |uefi: &str| -> Vec<(&'static str, String)> {
        vec![
            ("state", label.clone()),
            ("kernel", b.kernel.clone()),
            ("initrd", b.initrd.clone()),
            ("cmdline", b.cmdline.clone()),
            ("node", b.node.clone()),
            ("server", b.server.clone()),
            ("httpport", b.httpport.clone()),
            ("uefi_initrd", uefi.to_string()),
        ]
    };
    let render = |name: &str, v: &[(&'static str, String)]| -> String {
        let pairs: Vec<(&str, &str)> = v.iter().map(|(k, s)| (*k, s.as_str())).collect();
        fill(get(name).unwrap_or(""), &pairs)
    };
    let hex = b.ip.map(hexip);
    let macs_hyphen: Vec<String> = b.macs.iter().map(|m| m.replace(':', "-")).collect();
    match b.netboot.as_deref().unwrap_or("") {
        "pxe" => {
            let text = if local {
                render("pxelinux-localboot", &[])
            } else {
                render("pxelinux", &vars(""))
            };
            let main = format!("pxelinux.cfg/{}", b.node);
            out.push((main, BootFile::Text(text.clone())));
            for m in &macs_hyphen {
                out.push((format!("pxelinux.cfg/01-{m}"), BootFile::Text(text.clone())));
            }
            if let Some(h) = &hex {
                out.push((format!("pxelinux.cfg/{h}"), BootFile::Text(text)));
            }
        }
        "xnba" | "ipxe" => {
            let base = format!("xcat/xnba/nodes/{}", b.node);
            if local {
                let t = render("xnba-localboot", &[]);
                out.push((base.clone(), BootFile::Text(t.clone())));
                out.push((format!("{base}.uefi"), BootFile::Text(t)));
            } else {
                out.push((base.clone(), BootFile::Text(render("xnba", &vars("")))));
                let uefi = if has_efi_stub(&ctx.tftpdir.join(&b.kernel)) {
                    render("xnba", &vars(" initrd=initrd"))
                } else {
                    render("xnba-elilo", &vars(""))
                };
                out.push((format!("{base}.uefi"), BootFile::Text(uefi)));
                out.push((
                    format!("{base}.elilo"),
                    BootFile::Text(render("elilo", &vars(""))),
                ));
            }
        }
        nb @ ("grub2" | "grub2-http" | "grub2-tftp") => {
            let x86 = b.arch.starts_with("x86");
            let mut v = vars("");
            v.push((
                "grub_proto",
                if nb == "grub2-http" {
                    "http".into()
                } else {
                    "tftp".into()
                },
            ));
            v.push((
                "linux",
                if x86 {
                    "linuxefi".into()
                } else {
                    "linux".into()
                },
            ));
            v.push((
                "initrd_cmd",
                if x86 {
                    "initrdefi".into()
                } else {
                    "initrd".into()
                },
            ));
            let text = if local {
                render("grub2-localboot", &[])
            } else {
                render("grub2", &v)
            };
            out.push((
                format!("boot/grub2/{}", b.node),
                BootFile::Text(text.clone()),
            ));
            if let Some(h) = &hex {
                out.push((
                    format!("boot/grub2/grub.cfg-{h}"),
                    BootFile::Text(text.clone()),
                ));
            }
            for m in &macs_hyphen {
                out.push((
                    format!("boot/grub2/grub.cfg-01-{m}"),
                    BootFile::Text(text.clone()),
                ));
            }
            if !local {
                let bin = if b.arch.starts_with("ppc") {
                    "ppc".to_string()
                } else {
                    b.arch.clone()
                };
                out.push((
                    format!("boot/grub2/grub2-{}", b.node),
                    BootFile::Alias(format!("boot/grub2/grub2.{bin}")),
                ));
            }
        }
        "yaboot" => {
            let text = if local {
                render("yaboot-localboot", &[])
            } else {
                render("yaboot", &vars(""))
            };
            out.push((format!("etc/{}", b.node), BootFile::Text(text.clone())));
            if let Some(h) = &hex {
                out.push((
                    format!("etc/{}", h.to_ascii_lowercase()),
                    BootFile::Text(text.clone()),
                ));
            }
            for m in &macs_hyphen {
                out.push((format!("yaboot.conf-{m}"), BootFile::Text(text.clone())));
            }
            if !local {
                out.push((
                    format!("yb/node/yaboot-{}", b.node),
                    BootFile::Alias("yaboot".into()),
                ));
            }
        }
        "petitboot" => {
            let text = if local {
                render("petitboot-localboot", &[])
            } else {
                render("petitboot", &vars(""))
            };
            out.push((
                format!("petitboot/{}", b.node),
                BootFile::Text(text.clone()),
            ));
            if let Some(h) = &hex {
                out.push((format!("petitboot/{h}"), BootFile::Text(text)));
            }
        }
        _ => {}
    }
    out
}

/// Problems that make `nodeset` refuse a node: no MAC, an image whose kernel or initrd is missing.
pub fn check(b: &NodeBoot, ctx: &RenderCtx) -> Vec<String> {
    let mut p = Vec::new();
    if b.macs.is_empty() {
        p.push("no MAC address in mac.mac".to_string());
    }
    if b.netboot.is_none() && !matches!(b.state, BootState::Offline) {
        p.push("no noderes.netboot (xnba, pxe, grub2, yaboot or petitboot)".to_string());
    }
    if let BootState::Image { method, .. } = &b.state {
        if method != "sysclone" {
            for f in [&b.kernel, &b.initrd] {
                if !ctx.tftpdir.join(f).is_file() {
                    p.push(format!(
                        "{} is missing under the TFTP root {}",
                        f,
                        ctx.tftpdir.display()
                    ));
                }
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn resolver(rows: &[(&str, &str, &str, &str)]) -> Resolver {
        let s = Arc::new(crate::store::Store::open_in_memory().expect("store"));
        s.write(None, |tx| {
            for (t, k, c, v) in rows {
                tx.set(t, &[k], &[(c, Some(v))])?;
            }
            Ok(())
        })
        .expect("seed");
        Resolver::new(s)
    }

    fn ctx() -> RenderCtx {
        RenderCtx {
            tftpdir: PathBuf::from("/nonexistent"),
            server_ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
        }
    }

    fn base() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
        vec![
            ("nodelist", "n1", "groups", "compute,all"),
            ("hosts", "n1", "ip", "10.0.1.5"),
            ("mac", "n1", "mac", "52:54:00:AA:00:01"),
            (
                "osimage",
                "rhels8.6-x86_64-install-compute",
                "provmethod",
                "install",
            ),
            (
                "osimage",
                "rhels8.6-x86_64-install-compute",
                "osvers",
                "rhels8.6",
            ),
            (
                "osimage",
                "rhels8.6-x86_64-install-compute",
                "osarch",
                "x86_64",
            ),
            (
                "osimage",
                "rhels8.6-x86_64-install-compute",
                "profile",
                "compute",
            ),
            (
                "nodetype",
                "n1",
                "provmethod",
                "rhels8.6-x86_64-install-compute",
            ),
            (
                "chain",
                "n1",
                "currstate",
                "install rhels8.6-x86_64-compute",
            ),
        ]
    }

    fn text(files: &[(String, BootFile)], path: &str) -> String {
        match files.iter().find(|(p, _)| p == path).map(|(_, f)| f) {
            Some(BootFile::Text(t)) => t.clone(),
            other => panic!(
                "{path}: {other:?} in {:?}",
                files.iter().map(|(p, _)| p).collect::<Vec<_>>()
            ),
        }
    }

    // Expected texts below are reference §4's formats, written out by hand.
    #[test]
    fn pxelinux_install_and_localboot() {
        let mut rows = base();
        rows.push(("noderes", "n1", "netboot", "pxe"));
        let r = resolver(&rows);
        let b = node_boot(&r, "n1", &ctx()).expect("boot");
        let f = files_for(&b, &ctx());
        assert_eq!(
            text(&f, "pxelinux.cfg/n1"),
            "#install rhels8.6-x86_64-compute\nDEFAULT xCAT\nLABEL xCAT\n KERNEL xcat/osimage/rhels8.6-x86_64-install-compute/vmlinuz\n APPEND initrd=xcat/osimage/rhels8.6-x86_64-install-compute/initrd.img inst.repo=http://10.0.0.1:80/install/rhels8.6/x86_64 inst.ks=http://10.0.0.1:80/install/autoinst/n1\n  IPAPPEND 2\n"
        );
        assert_eq!(
            text(&f, "pxelinux.cfg/0A000105"),
            text(&f, "pxelinux.cfg/n1")
        );
        assert_eq!(
            text(&f, "pxelinux.cfg/01-52-54-00-aa-00-01"),
            text(&f, "pxelinux.cfg/n1")
        );
        let mut rows = base();
        rows.push(("noderes", "n1", "netboot", "pxe"));
        rows.push(("chain", "n1", "currstate", "boot"));
        let r = resolver(&rows);
        let f = files_for(&node_boot(&r, "n1", &ctx()).expect("boot"), &ctx());
        assert_eq!(
            text(&f, "pxelinux.cfg/n1"),
            "#boot\nDEFAULT xCAT\nLABEL xCAT\nLOCALBOOT 0\n"
        );
    }

    #[test]
    fn xnba_install_uefi_fallback_and_localboot() {
        let mut rows = base();
        rows.push(("noderes", "n1", "netboot", "xnba"));
        rows.push(("nodehm", "n1", "serialport", "0"));
        rows.push(("nodehm", "n1", "serialspeed", "115200"));
        let r = resolver(&rows);
        let f = files_for(&node_boot(&r, "n1", &ctx()).expect("boot"), &ctx());
        assert_eq!(
            text(&f, "xcat/xnba/nodes/n1"),
            "#!gpxe\n#install rhels8.6-x86_64-compute\nimgfetch -n kernel http://${next-server}/tftpboot/xcat/osimage/rhels8.6-x86_64-install-compute/vmlinuz\nimgload kernel\nimgargs kernel inst.repo=http://10.0.0.1:80/install/rhels8.6/x86_64 inst.ks=http://10.0.0.1:80/install/autoinst/n1 console=tty0 console=ttyS0,115200 BOOTIF=01-${netX/mac:hexhyp}\nimgfetch -n initrd http://${next-server}/tftpboot/xcat/osimage/rhels8.6-x86_64-install-compute/initrd.img\nimgexec kernel\n"
        );
        // Without a kernel to inspect (no EFI stub found), UEFI chains elilo with the .elilo config.
        assert_eq!(
            text(&f, "xcat/xnba/nodes/n1.uefi"),
            "#!gpxe\n#install rhels8.6-x86_64-compute\nchain http://${next-server}/tftpboot/xcat/elilo-x64.efi -C /tftpboot/xcat/xnba/nodes/n1.elilo\n"
        );
        assert!(text(&f, "xcat/xnba/nodes/n1.elilo").contains("append=\"inst.repo=http://10.0.0.1:80/install/rhels8.6/x86_64 inst.ks=http://10.0.0.1:80/install/autoinst/n1 console=tty0 console=ttyS0,115200 BOOTIF=%B\""));
        let mut rows = base();
        rows.push(("noderes", "n1", "netboot", "xnba"));
        rows.push(("chain", "n1", "currstate", "boot"));
        let f = files_for(
            &node_boot(&resolver(&rows), "n1", &ctx()).expect("boot"),
            &ctx(),
        );
        assert_eq!(text(&f, "xcat/xnba/nodes/n1"), "#!gpxe\n#boot\nexit\n");
        assert_eq!(text(&f, "xcat/xnba/nodes/n1.uefi"), "#!gpxe\n#boot\nexit\n");
    }

    #[test]
    fn grub2_install_and_localboot() {
        let mut rows = base();
        rows.push(("noderes", "n1", "netboot", "grub2"));
        let f = files_for(
            &node_boot(&resolver(&rows), "n1", &ctx()).expect("boot"),
            &ctx(),
        );
        // xCAT's layout, except timeout=0 where xCAT waits 5 s at a one-entry menu.
        assert_eq!(
            text(&f, "boot/grub2/n1"),
            "#install rhels8.6-x86_64-compute\nset timeout=0\nset default=\"xCAT OS Deployment\"\nmenuentry \"xCAT OS Deployment\" {\n    insmod http\n    insmod tftp\n    set root=tftp,10.0.0.1\n    linuxefi /xcat/osimage/rhels8.6-x86_64-install-compute/vmlinuz inst.repo=http://10.0.0.1:80/install/rhels8.6/x86_64 inst.ks=http://10.0.0.1:80/install/autoinst/n1 BOOTIF=$net_default_mac\n    initrdefi /xcat/osimage/rhels8.6-x86_64-install-compute/initrd.img\n}\n"
        );
        assert_eq!(
            text(&f, "boot/grub2/grub.cfg-0A000105"),
            text(&f, "boot/grub2/n1")
        );
        assert_eq!(
            text(&f, "boot/grub2/grub.cfg-01-52-54-00-aa-00-01"),
            text(&f, "boot/grub2/n1")
        );
        assert!(f.iter().any(|(p, x)| p == "boot/grub2/grub2-n1"
            && *x == BootFile::Alias("boot/grub2/grub2.x86_64".into())));
        let mut rows = base();
        rows.push(("noderes", "n1", "netboot", "grub2"));
        rows.push(("chain", "n1", "currstate", "boot"));
        let f = files_for(
            &node_boot(&resolver(&rows), "n1", &ctx()).expect("boot"),
            &ctx(),
        );
        assert_eq!(text(&f, "boot/grub2/n1"), "#boot\nset timeout=5\n");
        assert!(
            !f.iter().any(|(p, _)| p == "boot/grub2/grub2-n1"),
            "local boot: no grub2 binary, firmware falls through"
        );
    }

    #[test]
    fn yaboot_and_petitboot() {
        let mut rows = base();
        rows.push(("noderes", "n1", "netboot", "yaboot"));
        let f = files_for(
            &node_boot(&resolver(&rows), "n1", &ctx()).expect("boot"),
            &ctx(),
        );
        // Reference §4: `#install …`, `timeout=5`, `image=…`, tab-indented label/initrd/append.
        assert_eq!(
            text(&f, "etc/n1"),
            "#install rhels8.6-x86_64-compute\ntimeout=5\nimage=xcat/osimage/rhels8.6-x86_64-install-compute/vmlinuz\n\tlabel=xcat\n\tinitrd=xcat/osimage/rhels8.6-x86_64-install-compute/initrd.img\n\tappend=\"inst.repo=http://10.0.0.1:80/install/rhels8.6/x86_64 inst.ks=http://10.0.0.1:80/install/autoinst/n1\"\n"
        );
        assert_eq!(text(&f, "etc/0a000105"), text(&f, "etc/n1"));
        assert_eq!(
            text(&f, "yaboot.conf-52-54-00-aa-00-01"),
            text(&f, "etc/n1")
        );
        assert!(f
            .iter()
            .any(|(p, x)| p == "yb/node/yaboot-n1" && *x == BootFile::Alias("yaboot".into())));
        let mut rows = base();
        rows.push(("noderes", "n1", "netboot", "petitboot"));
        let f = files_for(
            &node_boot(&resolver(&rows), "n1", &ctx()).expect("boot"),
            &ctx(),
        );
        assert_eq!(
            text(&f, "petitboot/n1"),
            "#install rhels8.6-x86_64-compute\ndefault xCAT\nlabel xCAT\n\tkernel http://10.0.0.1:80/tftpboot/xcat/osimage/rhels8.6-x86_64-install-compute/vmlinuz\n\tinitrd http://10.0.0.1:80/tftpboot/xcat/osimage/rhels8.6-x86_64-install-compute/initrd.img\n\tappend \"inst.repo=http://10.0.0.1:80/install/rhels8.6/x86_64 inst.ks=http://10.0.0.1:80/install/autoinst/n1\"\n"
        );
        rows.push(("chain", "n1", "currstate", "boot"));
        let f = files_for(
            &node_boot(&resolver(&rows), "n1", &ctx()).expect("boot"),
            &ctx(),
        );
        assert_eq!(text(&f, "petitboot/n1"), "#boot\n");
    }

    #[test]
    fn netboot_and_statelite_command_lines() {
        let mut rows = base();
        rows.push(("noderes", "n1", "netboot", "pxe"));
        rows.push(("osimage", "img-nb", "provmethod", "netboot"));
        rows.push(("osimage", "img-nb", "osvers", "rhels8.6"));
        rows.push(("osimage", "img-nb", "osarch", "x86_64"));
        rows.push(("osimage", "img-nb", "profile", "compute"));
        rows.push((
            "linuximage",
            "img-nb",
            "rootimgdir",
            "/install/netboot/rhels8.6/x86_64/compute",
        ));
        rows.push(("nodetype", "n1", "provmethod", "img-nb"));
        rows.push((
            "chain",
            "n1",
            "currstate",
            "netboot rhels8.6-x86_64-compute",
        ));
        let b = node_boot(&resolver(&rows), "n1", &ctx()).expect("boot");
        assert_eq!(b.kernel, "xcat/osimage/img-nb/kernel");
        assert_eq!(b.initrd, "xcat/osimage/img-nb/initrd-stateless.gz");
        assert_eq!(b.cmdline, "imgurl=http://10.0.0.1:80/install/netboot/rhels8.6/x86_64/compute/rootimg.cpio.gz XCAT=10.0.0.1:3001 NODE=n1 FC=0 XCATHTTPPORT=80");
        rows.push(("osimage", "img-nb", "provmethod", "statelite"));
        rows.push((
            "chain",
            "n1",
            "currstate",
            "statelite rhels8.6-x86_64-compute",
        ));
        rows.push(("statelite", "n1", "statemnt", "10.0.0.1:/lite/state"));
        rows.push(("statelite", "n1", "mntopts", "soft"));
        rows.push((
            "bootparams",
            "n1",
            "addkcmdline",
            "rd.debug R::quiet node=#TABLE:nodelist:$NODE:groups#",
        ));
        let b = node_boot(&resolver(&rows), "n1", &ctx()).expect("boot");
        assert_eq!(b.initrd, "xcat/osimage/img-nb/initrd-statelite.gz");
        assert_eq!(
            b.cmdline,
            "root=nfs:10.0.0.1:/install/netboot/rhels8.6/x86_64/compute/rootimg:ro STATEMNT=10.0.0.1:/lite/state XCAT=10.0.0.1:3001 NODE=n1 XCATHTTPPORT=80 MNTOPTS=soft rd.debug node=compute,all"
        );
    }

    #[test]
    fn genesis_states_and_missing_facts() {
        let rows = vec![
            ("nodelist", "n2", "groups", "all"),
            ("noderes", "n2", "netboot", "xnba"),
            ("chain", "n2", "currstate", "runcmd=bmcsetup"),
        ];
        let b = node_boot(&resolver(&rows), "n2", &ctx()).expect("boot");
        assert_eq!(b.kernel, "xcat/genesis.kernel.x86_64");
        assert_eq!(
            b.cmdline,
            "quiet xcatd=10.0.0.1:3001 destiny=runcmd=bmcsetup"
        );
        assert_eq!(
            check(&b, &ctx()),
            vec!["no MAC address in mac.mac".to_string()]
        );
    }
}

/// Which node a boot-file path is about: the name, a MAC, or a hex IP, as boot loaders ask.
#[derive(Debug, Default)]
pub struct BootIndex {
    by_mac: std::collections::HashMap<String, String>,
    by_hexip: std::collections::HashMap<String, String>,
    nodes: std::collections::HashSet<String>,
}

impl BootIndex {
    /// Indexes every node's MACs and IP.
    pub fn build(r: &Resolver) -> Result<BootIndex, StoreError> {
        let m = r.membership()?;
        let macs = r.column("mac", "mac")?;
        let ips = r.column("hosts", "ip")?;
        let mut idx = BootIndex::default();
        for n in &m.nodes {
            idx.nodes.insert(n.clone());
            if let Ok(Some(ms)) = macs.get(n) {
                for e in ms.split('|').filter(|e| !e.contains('!')) {
                    if let Some(mac) = crate::dhcp::config::normalize_mac(e.trim()) {
                        idx.by_mac.insert(mac.replace(':', "-"), n.clone());
                    }
                }
            }
            if let Ok(Some(ip)) = ips.get(n) {
                if let Ok(a) = ip.parse::<Ipv4Addr>() {
                    idx.by_hexip.insert(hexip(a), n.clone());
                }
            }
        }
        Ok(idx)
    }

    /// The node whose `hosts.ip` is `ip` (node callbacks identify the caller by source address).
    pub fn node_by_ip(&self, ip: Ipv4Addr) -> Option<&str> {
        self.by_hexip.get(&hexip(ip)).map(String::as_str)
    }

    /// The node a path names, if any.
    pub fn node_for(&self, path: &str) -> Option<&str> {
        let file = path.rsplit('/').next().unwrap_or(path);
        let stem = file
            .strip_suffix(".uefi")
            .or_else(|| file.strip_suffix(".elilo"))
            .unwrap_or(file);
        let candidates = [
            stem.strip_prefix("grub2-"),
            stem.strip_prefix("yaboot-"),
            stem.strip_prefix("grub.cfg-01-")
                .and_then(|m| self.by_mac.get(&m.to_ascii_lowercase()).map(String::as_str)),
            stem.strip_prefix("grub.cfg-").and_then(|h| {
                self.by_hexip
                    .get(&h.to_ascii_uppercase())
                    .map(String::as_str)
            }),
            stem.strip_prefix("yaboot.conf-")
                .and_then(|m| self.by_mac.get(&m.to_ascii_lowercase()).map(String::as_str)),
            stem.strip_prefix("01-")
                .and_then(|m| self.by_mac.get(&m.to_ascii_lowercase()).map(String::as_str)),
            self.by_hexip
                .get(&stem.to_ascii_uppercase())
                .map(String::as_str),
            Some(stem),
        ];
        candidates
            .into_iter()
            .flatten()
            .find(|n| self.nodes.contains(*n))
            .and_then(|n| self.nodes.get(n).map(String::as_str))
    }
}

/// The rendered file (or alias) for `path` (relative to the TFTP root, no leading `/`), if a node's
/// boot state makes one.
pub fn lookup(
    r: &Resolver,
    idx: &BootIndex,
    path: &str,
    ctx: &RenderCtx,
) -> Result<Option<BootFile>, StoreError> {
    let Some(node) = idx.node_for(path) else {
        return Ok(None);
    };
    let b = node_boot(r, node, ctx)?;
    Ok(files_for(&b, ctx)
        .into_iter()
        .find(|(p, _)| p == path)
        .map(|(_, f)| f))
}

#[cfg(test)]
mod lookup_tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn paths_find_their_node_by_name_mac_and_hex_ip() {
        let s = Arc::new(crate::store::Store::open_in_memory().expect("store"));
        s.write(None, |tx| {
            tx.set("nodelist", &["n1"], &[("groups", Some("all"))])?;
            tx.set("hosts", &["n1"], &[("ip", Some("10.0.1.5"))])?;
            tx.set("mac", &["n1"], &[("mac", Some("52:54:00:AA:00:01"))])?;
            tx.set("noderes", &["n1"], &[("netboot", Some("pxe"))])?;
            tx.set("chain", &["n1"], &[("currstate", Some("boot"))])
        })
        .expect("seed");
        let r = Resolver::new(s);
        let idx = BootIndex::build(&r).expect("index");
        let ctx = RenderCtx {
            tftpdir: PathBuf::from("/nonexistent"),
            server_ip: None,
        };
        for p in [
            "pxelinux.cfg/n1",
            "pxelinux.cfg/01-52-54-00-aa-00-01",
            "pxelinux.cfg/0A000105",
        ] {
            assert_eq!(idx.node_for(p), Some("n1"), "{p}");
            assert!(
                matches!(lookup(&r, &idx, p, &ctx).expect("lookup"), Some(BootFile::Text(t)) if t.contains("LOCALBOOT 0")),
                "{p}"
            );
        }
        assert_eq!(idx.node_for("pxelinux.cfg/n2"), None);
        assert!(
            lookup(&r, &idx, "xcat/xnba/nodes/n1", &ctx)
                .expect("lookup")
                .is_none(),
            "n1 boots by pxelinux, not xNBA"
        );
        assert!(lookup(&r, &idx, "pxelinux.0", &ctx)
            .expect("lookup")
            .is_none());
    }
}

/// `grub/grub.cfg`: Debian's and Ubuntu's signed network GRUB (`grubnetx64.efi`, the grub2 boot
/// loader `boot-assets/install.sh` installs) has its prefix at `/grub` and reads only
/// `<prefix>/grub.cfg`; it does not look for a MAC-named file as xCAT's own GRUB build does. This
/// chain turns the MAC GRUB booted from into xCAT's file name and loads the configuration
/// `nodeset` made for the node (`boot/grub2/grub.cfg-01-<mac>`).
pub const GRUB_NET_CHAIN_PATH: &str = "grub/grub.cfg";

pub const GRUB_NET_CHAIN: &str = "\
# bootherd: load this node's own configuration, named after the MAC it booted from.
regexp --set=1:m1 --set=2:m2 --set=3:m3 --set=4:m4 --set=5:m5 --set=6:m6 '^(..):(..):(..):(..):(..):(..)$' \"$net_default_mac\"
configfile /boot/grub2/grub.cfg-01-$m1-$m2-$m3-$m4-$m5-$m6
echo \"bootherd: no boot configuration for $net_default_mac (is the node's netboot grub2 and nodeset done?)\"
sleep 10
";

/// The discovery files for unknown nodes on each `networks` row (xCAT's mknb): genesis through
/// xNBA (`xcat/xnba/nets/<net>_<bits>`, `.uefi`, `.elilo`) or pxelinux (`pxelinux.cfg/<HEXNET>`,
/// the hex prefix of the network, which pxelinux reaches by shortening the client's hex IP).
pub fn discovery_files(
    r: &Resolver,
    ctx: &RenderCtx,
) -> Result<Vec<(String, BootFile)>, StoreError> {
    let nets = r.table("networks")?;
    let (nc, mc) = (nets.spec.col_index("net"), nets.spec.col_index("mask"));
    let master = r.site_master()?;
    let xcatdport = r.site("xcatdport")?.unwrap_or_else(|| "3001".into());
    // xCAT's mknb: genesis gets a serial console when site.defserialport/defserialspeed are set.
    let console = match (r.site("defserialport")?, r.site("defserialspeed")?) {
        (Some(p), Some(s)) if !p.trim().is_empty() && !s.trim().is_empty() => {
            let flow = r.site("defserialflow")?.unwrap_or_default();
            let hard = if flow.contains("cts") || flow.contains("hard") {
                "n8r"
            } else {
                ""
            };
            format!(" console=tty0 console=ttyS{},{}{hard}", p.trim(), s.trim())
        }
        _ => String::new(),
    };
    let mut out = Vec::new();
    for row in &nets.rows {
        let cell = |i: Option<usize>| {
            i.and_then(|i| row.get(i))
                .cloned()
                .flatten()
                .and_then(|v| v.trim().parse::<Ipv4Addr>().ok())
        };
        let (Some(net), Some(mask)) = (cell(nc), cell(mc)) else {
            continue;
        };
        let bits = u32::from(mask).leading_ones();
        let server = my_ip_for(Some(net), ctx.server_ip, master.as_deref());
        let base = format!("xcat/xnba/nets/{net}_{bits}");
        let v = |destiny: &str| {
            fill(
                get("xnba-discovery").unwrap_or(""),
                &[
                    ("server", server.as_str()),
                    ("xcatdport", xcatdport.as_str()),
                    ("console", console.as_str()),
                    ("destiny", destiny),
                ],
            )
        };
        out.push((base.clone(), BootFile::Text(v(""))));
        out.push((
            format!("{base}.uefi"),
            BootFile::Text(v(" destiny=discover")),
        ));
        out.push((
            format!("{base}.elilo"),
            BootFile::Text(fill(
                get("elilo").unwrap_or(""),
                &[
                    ("kernel", "xcat/genesis.kernel.x86_64"),
                    ("initrd", "xcat/genesis.fs.x86_64.gz"),
                    (
                        "cmdline",
                        &format!("quiet xcatd={server}:{xcatdport}{console} destiny=discover"),
                    ),
                ],
            )),
        ));
        let digits = (bits / 4) as usize;
        let hex: String = hexip(net).chars().take(digits).collect();
        if !hex.is_empty() {
            out.push((
                format!("pxelinux.cfg/{hex}"),
                BootFile::Text(fill(
                    get("pxelinux-discovery").unwrap_or(""),
                    &[
                        ("server", server.as_str()),
                        ("xcatdport", xcatdport.as_str()),
                        ("console", console.as_str()),
                    ],
                )),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod discovery_tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn discovery_files_per_network() {
        let s = Arc::new(crate::store::Store::open_in_memory().expect("store"));
        s.write(None, |tx| {
            tx.set(
                "networks",
                &["10.0.0.0", "255.255.255.0"],
                &[("netname", Some("mgmt"))],
            )
        })
        .expect("seed");
        let r = Resolver::new(s);
        let ctx = RenderCtx {
            tftpdir: PathBuf::from("/nonexistent"),
            server_ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
        };
        let f = discovery_files(&r, &ctx).expect("files");
        let text = |p: &str| match f.iter().find(|(x, _)| x == p) {
            Some((_, BootFile::Text(t))) => t.clone(),
            _ => panic!("{p} missing"),
        };
        // Reference §4 (mknb), written out by hand.
        assert_eq!(
            text("xcat/xnba/nets/10.0.0.0_24"),
            "#!gpxe\nimgfetch -n kernel http://${next-server}/tftpboot/xcat/genesis.kernel.x86_64 xcatd=10.0.0.1:3001 BOOTIF=01-${netX/machyp}\nimgfetch -n initrd http://${next-server}/tftpboot/xcat/genesis.fs.x86_64.gz\nimgload kernel\nimgexec kernel\n"
        );
        assert!(text("xcat/xnba/nets/10.0.0.0_24.uefi")
            .contains("BOOTIF=01-${netX/machyp} destiny=discover\n"));
        assert!(text("pxelinux.cfg/0A0000").contains("destiny=discover"));
    }

    #[test]
    fn discovery_files_carry_the_default_serial_console() {
        let s = Arc::new(crate::store::Store::open_in_memory().expect("store"));
        s.write(None, |tx| {
            tx.set(
                "networks",
                &["10.0.0.0", "255.255.255.0"],
                &[("netname", Some("mgmt"))],
            )?;
            tx.set("site", &["defserialport"], &[("value", Some("0"))])?;
            tx.set("site", &["defserialspeed"], &[("value", Some("115200"))])
        })
        .expect("seed");
        let ctx = RenderCtx {
            tftpdir: PathBuf::from("/nonexistent"),
            server_ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
        };
        let f = discovery_files(&Resolver::new(s), &ctx).expect("files");
        for (p, want) in [
            (
                "xcat/xnba/nets/10.0.0.0_24",
                "xcatd=10.0.0.1:3001 console=tty0 console=ttyS0,115200 BOOTIF=",
            ),
            (
                "pxelinux.cfg/0A0000",
                "xcatd=10.0.0.1:3001 console=tty0 console=ttyS0,115200 destiny=discover",
            ),
        ] {
            let t = match f.iter().find(|(x, _)| x == p) {
                Some((_, BootFile::Text(t))) => t.clone(),
                _ => String::new(),
            };
            assert!(t.contains(want), "{p}: {t}");
        }
    }
}
