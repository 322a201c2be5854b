//! Which boot file a PXE client is sent: pure functions over the client's architecture, whether it
//! already runs iPXE/xNBA, and the node's `noderes.netboot` (xCAT's `dhcp.pm` boot statements and
//! per-subnet `dhcpd.conf` rules, reference §5). No I/O: the server resolves the facts, this decides.

use std::net::Ipv4Addr;

/// Client system architecture (DHCP option 93, RFC 4578 / IANA "Processor Architecture Types").
pub mod arch {
    pub const BIOS_X86: u16 = 0;
    pub const EFI_ITANIUM: u16 = 2;
    pub const EFI_IA32: u16 = 6;
    pub const EFI_BC: u16 = 7;
    pub const EFI_X86_64: u16 = 9;
    pub const EFI_ARM64: u16 = 0x0b;
    pub const OPAL_PPC64LE: u16 = 0x0e;
    pub const EFI_X86_64_HTTP: u16 = 0x10;
    pub const EFI_ARM64_HTTP: u16 = 0x13;
}

/// What the request says about the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientKind {
    /// Option 93 (first value), when sent.
    pub arch: Option<u16>,
    /// Running iPXE or xCAT's xNBA build of it already (user class "iPXE"/"xNBA", or option 175).
    pub ipxe: bool,
    /// Vendor class (option 60), e.g. `PXEClient:Arch:00000:UNDI:002001`, `HTTPClient…`.
    pub vendor_class: Option<String>,
}

impl ClientKind {
    fn is_uefi(&self) -> bool {
        matches!(self.arch, Some(arch::EFI_BC | arch::EFI_X86_64))
    }
    fn is_bios(&self) -> bool {
        self.arch.unwrap_or(arch::BIOS_X86) == arch::BIOS_X86
    }
    /// UEFI HTTP boot: the firmware asks with vendor class `HTTPClient` and expects a URL.
    pub fn http_boot(&self) -> bool {
        self.vendor_class
            .as_deref()
            .is_some_and(|v| v.starts_with("HTTPClient"))
            || matches!(
                self.arch,
                Some(arch::EFI_X86_64_HTTP | arch::EFI_ARM64_HTTP)
            )
    }
    fn scalemp(&self) -> bool {
        self.vendor_class
            .as_deref()
            .is_some_and(|v| v.contains("ScaleMP"))
    }
}

/// `noderes.netboot` values that choose a boot loader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Netboot {
    Xnba,
    Pxe,
    Grub2,
    Grub2Http,
    Grub2Tftp,
    Yaboot,
    Petitboot,
    Elilo,
}

impl Netboot {
    /// Parses a `noderes.netboot` value; `None` for values bootherd does not boot (nimol, onie, …).
    pub fn parse(s: &str) -> Option<Netboot> {
        Some(match s.trim() {
            "xnba" | "ipxe" => Netboot::Xnba,
            "pxe" => Netboot::Pxe,
            "grub2" => Netboot::Grub2,
            "grub2-http" => Netboot::Grub2Http,
            "grub2-tftp" => Netboot::Grub2Tftp,
            "yaboot" => Netboot::Yaboot,
            "petitboot" => Netboot::Petitboot,
            "elilo" => Netboot::Elilo,
            _ => return None,
        })
    }
}

/// What to put in the reply for booting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootReply {
    /// The `file` field (and option 67); `Some("")` means "explicitly nothing" (boot from disk).
    pub filename: Option<String>,
    /// Option 209 (PXELINUX/petitboot configuration file).
    pub conf_file: Option<String>,
    /// Answer UEFI HTTP boot with vendor class `HTTPClient` (option 60), which it requires.
    pub http_client: bool,
}

fn file(s: impl Into<String>) -> BootReply {
    BootReply {
        filename: Some(s.into()),
        ..BootReply::default()
    }
}

/// The boot file for a known node. `server` is the next-server (TFTP/HTTP server facing the
/// node); `local_boot` is true when the node's boot state is `boot` (xCAT then drops the UEFI
/// branches, so UEFI firmware falls through to the disk).
pub fn for_node(
    node: &str,
    netboot: &Netboot,
    client: &ClientKind,
    server: Ipv4Addr,
    local_boot: bool,
) -> BootReply {
    if client.http_boot() {
        // UEFI HTTP boot loads an EFI binary by URL; xNBA's EFI build then fetches the node script.
        let url = match netboot {
            Netboot::Grub2 | Netboot::Grub2Http | Netboot::Grub2Tftp => {
                format!("http://{server}/tftpboot/boot/grub2/grub2-{node}")
            }
            _ => format!("http://{server}/tftpboot/xcat/xnba.efi"),
        };
        return BootReply {
            filename: Some(url),
            conf_file: None,
            http_client: true,
        };
    }
    match netboot {
        Netboot::Xnba => {
            if client.ipxe && client.is_bios() {
                file(format!("http://{server}/tftpboot/xcat/xnba/nodes/{node}"))
            } else if client.ipxe && client.is_uefi() {
                if local_boot {
                    file("")
                } else {
                    file(format!(
                        "http://{server}/tftpboot/xcat/xnba/nodes/{node}.uefi"
                    ))
                }
            } else if client.arch == Some(arch::EFI_BC) || client.arch == Some(arch::EFI_X86_64) {
                if local_boot {
                    file("")
                } else {
                    file("xcat/xnba.efi")
                }
            } else if client.is_bios() {
                file("xcat/xnba.kpxe")
            } else {
                file("")
            }
        }
        Netboot::Pxe => file(if client.scalemp() {
            "vsmp/pxelinux.0"
        } else {
            "pxelinux.0"
        }),
        Netboot::Grub2 | Netboot::Grub2Http | Netboot::Grub2Tftp => {
            file(format!("/boot/grub2/grub2-{node}"))
        }
        Netboot::Yaboot => file(format!("/yb/node/yaboot-{node}")),
        Netboot::Petitboot => BootReply {
            filename: None,
            conf_file: Some(format!("http://{server}/tftpboot/petitboot/{node}")),
            http_client: false,
        },
        Netboot::Elilo => file("elilo.efi"),
    }
}

/// The discovery boot file for an unknown client on network `net`/`bits` (xCAT's per-subnet
/// `dhcpd.conf` rules): genesis through xNBA on x86, grub2 on arm64, petitboot on OPAL.
pub fn for_unknown(net: Ipv4Addr, bits: u8, client: &ClientKind, server: Ipv4Addr) -> BootReply {
    let netfile = format!("{}_{bits}", net);
    if client.http_boot() {
        return BootReply {
            filename: Some(format!("http://{server}/tftpboot/xcat/xnba.efi")),
            conf_file: None,
            http_client: true,
        };
    }
    match client.arch.unwrap_or(arch::BIOS_X86) {
        arch::BIOS_X86 if client.ipxe => {
            file(format!("http://{server}/tftpboot/xcat/xnba/nets/{netfile}"))
        }
        arch::EFI_BC | arch::EFI_X86_64 if client.ipxe => file(format!(
            "http://{server}/tftpboot/xcat/xnba/nets/{netfile}.uefi"
        )),
        arch::BIOS_X86 => file("xcat/xnba.kpxe"),
        arch::EFI_BC | arch::EFI_X86_64 => file("xcat/xnba.efi"),
        arch::EFI_ITANIUM => file("elilo.efi"),
        arch::EFI_ARM64 => file("boot/grub2/grub2.aarch64"),
        arch::OPAL_PPC64LE => BootReply {
            filename: None,
            conf_file: Some(format!("http://{server}/tftpboot/pxelinux.cfg/p/{netfile}")),
            http_client: false,
        },
        _ => file("/yaboot"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRV: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    fn client(a: u16, ipxe: bool) -> ClientKind {
        ClientKind {
            arch: Some(a),
            ipxe,
            vendor_class: Some(format!("PXEClient:Arch:{a:05}:UNDI:002001")),
        }
    }

    fn name(r: BootReply) -> String {
        r.filename.unwrap_or_else(|| "<none>".into())
    }

    // Expected values below are xCAT's boot statements (reference §5), written out by hand.
    #[test]
    fn xnba_chain_bios_then_ipxe() {
        assert_eq!(
            name(for_node(
                "n1",
                &Netboot::Xnba,
                &client(0, false),
                SRV,
                false
            )),
            "xcat/xnba.kpxe"
        );
        assert_eq!(
            name(for_node("n1", &Netboot::Xnba, &client(0, true), SRV, false)),
            "http://10.0.0.1/tftpboot/xcat/xnba/nodes/n1"
        );
    }

    #[test]
    fn xnba_chain_uefi_then_ipxe() {
        assert_eq!(
            name(for_node(
                "n1",
                &Netboot::Xnba,
                &client(7, false),
                SRV,
                false
            )),
            "xcat/xnba.efi"
        );
        assert_eq!(
            name(for_node(
                "n1",
                &Netboot::Xnba,
                &client(9, false),
                SRV,
                false
            )),
            "xcat/xnba.efi"
        );
        assert_eq!(
            name(for_node("n1", &Netboot::Xnba, &client(7, true), SRV, false)),
            "http://10.0.0.1/tftpboot/xcat/xnba/nodes/n1.uefi"
        );
        assert_eq!(
            name(for_node("n1", &Netboot::Xnba, &client(9, true), SRV, false)),
            "http://10.0.0.1/tftpboot/xcat/xnba/nodes/n1.uefi"
        );
        // Local boot: UEFI gets nothing and falls through to the disk; BIOS still chains xNBA.
        assert_eq!(
            name(for_node("n1", &Netboot::Xnba, &client(7, false), SRV, true)),
            ""
        );
        assert_eq!(
            name(for_node("n1", &Netboot::Xnba, &client(0, false), SRV, true)),
            "xcat/xnba.kpxe"
        );
        // Unknown architectures get an empty file name.
        assert_eq!(
            name(for_node(
                "n1",
                &Netboot::Xnba,
                &client(11, false),
                SRV,
                false
            )),
            ""
        );
    }

    #[test]
    fn pxe_grub2_yaboot_petitboot() {
        for a in [0, 7, 9] {
            assert_eq!(
                name(for_node("n1", &Netboot::Pxe, &client(a, false), SRV, false)),
                "pxelinux.0"
            );
            assert_eq!(
                name(for_node("n1", &Netboot::Pxe, &client(a, true), SRV, false)),
                "pxelinux.0"
            );
        }
        let mut scalemp = client(0, false);
        scalemp.vendor_class = Some("ScaleMP".into());
        assert_eq!(
            name(for_node("n1", &Netboot::Pxe, &scalemp, SRV, false)),
            "vsmp/pxelinux.0"
        );
        for a in [0, 7, 9, 11] {
            assert_eq!(
                name(for_node(
                    "n1",
                    &Netboot::Grub2,
                    &client(a, false),
                    SRV,
                    false
                )),
                "/boot/grub2/grub2-n1"
            );
        }
        assert_eq!(
            name(for_node(
                "n1",
                &Netboot::Yaboot,
                &client(0x0c, false),
                SRV,
                false
            )),
            "/yb/node/yaboot-n1"
        );
        let p = for_node("n1", &Netboot::Petitboot, &client(0x0e, false), SRV, false);
        assert_eq!(p.filename, None);
        assert_eq!(
            p.conf_file.as_deref(),
            Some("http://10.0.0.1/tftpboot/petitboot/n1")
        );
    }

    #[test]
    fn uefi_http_boot_gets_a_url_and_httpclient() {
        let c = ClientKind {
            arch: Some(0x10),
            ipxe: false,
            vendor_class: Some("HTTPClient:Arch:00016:UNDI:003001".into()),
        };
        let r = for_node("n1", &Netboot::Xnba, &c, SRV, false);
        assert_eq!(
            r.filename.as_deref(),
            Some("http://10.0.0.1/tftpboot/xcat/xnba.efi")
        );
        assert!(r.http_client);
    }

    #[test]
    fn unknown_clients_get_the_discovery_files() {
        let net = Ipv4Addr::new(10, 0, 0, 0);
        assert_eq!(
            name(for_unknown(net, 24, &client(0, false), SRV)),
            "xcat/xnba.kpxe"
        );
        assert_eq!(
            name(for_unknown(net, 24, &client(0, true), SRV)),
            "http://10.0.0.1/tftpboot/xcat/xnba/nets/10.0.0.0_24"
        );
        assert_eq!(
            name(for_unknown(net, 24, &client(7, false), SRV)),
            "xcat/xnba.efi"
        );
        assert_eq!(
            name(for_unknown(net, 24, &client(9, true), SRV)),
            "http://10.0.0.1/tftpboot/xcat/xnba/nets/10.0.0.0_24.uefi"
        );
        assert_eq!(
            name(for_unknown(net, 24, &client(2, false), SRV)),
            "elilo.efi"
        );
        assert_eq!(
            name(for_unknown(net, 24, &client(11, false), SRV)),
            "boot/grub2/grub2.aarch64"
        );
        assert_eq!(
            for_unknown(net, 24, &client(0x0e, false), SRV)
                .conf_file
                .as_deref(),
            Some("http://10.0.0.1/tftpboot/pxelinux.cfg/p/10.0.0.0_24")
        );
        assert_eq!(
            name(for_unknown(net, 24, &client(0x0c, false), SRV)),
            "/yaboot"
        );
    }

    #[test]
    fn netboot_values() {
        assert_eq!(Netboot::parse("xnba"), Some(Netboot::Xnba));
        assert_eq!(Netboot::parse("grub2-http"), Some(Netboot::Grub2Http));
        assert_eq!(Netboot::parse("nimol"), None);
    }
}
