//! Object definition templates for `lsdef --template` and `mkdef --template`, under the names
//! and with the fixed values xCAT ships (`cec-template`, `hmc-template`, `x86_64-template`,
//! `switch-template`, …) so scripts that name them keep working; the MANDATORY/OPTIONAL
//! explanations are bootherd's own words, except where xCAT's regression cases read them
//! (switch-template's). A value `MANDATORY:<why>` must be
//! given on the mkdef command line; `OPTIONAL:<why>` is dropped unless given.

use super::stanza::{self, Stanza};

/// The templates, as a stanza file.
pub const TEMPLATES: &str = "\
# <bootherd object definition templates>

cec-template:
    objtype=node
    groups=cec,all
    hcp=\"MANDATORY:the HMC that controls this CEC\"
    hwtype=cec
    mgt=hmc
    mtm=\"MANDATORY:machine type and model of the CEC\"
    nodetype=ppc
    serial=\"MANDATORY:serial number of the CEC\"
    usercomment=\"the cec definition template\"

hmc-template:
    objtype=node
    groups=hmc
    hwtype=hmc
    ip=\"MANDATORY:the HMC's IPv4 address\"
    mgt=hmc
    nodetype=hmc
    password=\"MANDATORY:password of the HMC user\"
    username=\"MANDATORY:user name on the HMC\"
    usercomment=\"the template for hmc definition\"

onieswitch:
    objtype=node
    arch=\"OPTIONAL:architecture of the switch's management processor (armv7l, x86_64)\"
    groups=switch
    ip=\"OPTIONAL:the switch's management address\"
    mac=\"OPTIONAL:MAC address of the management interface\"
    mgt=switch
    netboot=onie
    nodetype=switch
    provmethod=\"OPTIONAL:full path of the network OS installer\"
    switchtype=onie
    usercomment=\"the template for cumulus switch definition\"

ppc64le-openbmc-template:
    objtype=node
    arch=ppc64le
    bmc=\"MANDATORY:address or host name of the node's BMC\"
    bmcpassword=\"OPTIONAL:BMC password, if not the openbmc table's default\"
    bmcusername=\"OPTIONAL:BMC user, if not the openbmc table's default\"
    cons=openbmc
    groups=all
    ip=\"MANDATORY:the node's IPv4 address\"
    mac=\"OPTIONAL:MAC address of the install NIC\"
    mgt=openbmc
    netboot=petitboot
    nodetype=mp
    serialport=0
    serialspeed=115200
    usercomment=\"the template for openbmc controlled PowerLE NV node definition\"

ppc64le-template:
    objtype=node
    arch=ppc64le
    bmc=\"MANDATORY:address or host name of the node's BMC\"
    bmcpassword=\"OPTIONAL:BMC password, if not the ipmi table's default\"
    bmcusername=\"OPTIONAL:BMC user, if not the ipmi table's default\"
    cons=ipmi
    groups=all
    ip=\"MANDATORY:the node's IPv4 address\"
    mac=\"OPTIONAL:MAC address of the install NIC\"
    mgt=ipmi
    netboot=petitboot
    nodetype=mp
    serialport=0
    serialspeed=115200
    usercomment=\"the template for ipmi controlled PowerLE NV node definition\"

ppc64lekvmguest-template:
    objtype=node
    arch=ppc64le
    groups=all
    ip=\"MANDATORY:the guest's IPv4 address\"
    mac=\"OPTIONAL:MAC address of the guest's NIC\"
    mgt=kvm
    netboot=grub2
    vmcpus=2
    vmhost=\"MANDATORY:host name or address of the KVM hypervisor\"
    vmmemory=4096
    vmnicnicmodel=virtio
    vmnics=\"MANDATORY:the hypervisor's bridges or networks for the guest's NICs\"
    vmstorage=dir:///var/lib/libvirt/images
    usercomment=\"the power LE kvm node definition template\"

switch-template:
    objtype=node
    groups=switch
    ip=\"OPTIONAL:the ip address of the switch\"
    mac=\"OPTIONAL:the MAC address of the switch\"
    mgt=switch
    nodetype=switch
    switchtype=\"OPTIONAL:The type of switch: Mellanox, Cisco, BNT or Juniper.\"
    usercomment=\"the switch definition template\"

x86_64-template:
    objtype=node
    arch=x86_64
    bmc=\"MANDATORY:address or host name of the node's BMC\"
    bmcpassword=\"OPTIONAL:BMC password, if not the ipmi table's default\"
    bmcusername=\"OPTIONAL:BMC user, if not the ipmi table's default\"
    cons=ipmi
    getmac=ipmi
    groups=all
    ip=\"MANDATORY:the node's IPv4 address\"
    mac=\"OPTIONAL:MAC address of the install NIC\"
    mgt=ipmi
    netboot=xnba
    serialport=0
    serialspeed=115200
    usercomment=\"the system X node definition\"

x86_64kvmguest-template:
    objtype=node
    arch=x86_64
    groups=all
    ip=\"MANDATORY:the guest's IPv4 address\"
    mac=\"OPTIONAL:MAC address of the guest's NIC\"
    mgt=kvm
    netboot=xnba
    serialport=0
    serialspeed=115200
    vmcpus=2
    vmhost=\"MANDATORY:host name or address of the KVM hypervisor\"
    vmmemory=4096
    vmnicnicmodel=virtio
    vmnics=\"MANDATORY:the hypervisor's bridges or networks for the guest's NICs\"
    vmstorage=dir:///var/lib/libvirt/images
    usercomment=\"the system X kvm node definition\"
";

/// Every template, parsed.
pub fn all() -> Vec<Stanza> {
    stanza::parse(TEMPLATES).unwrap_or_default()
}

/// The template named `name`.
pub fn find(name: &str) -> Option<Stanza> {
    all().into_iter().find(|s| s.name == name)
}

/// The attributes a new object gets from template `t` and the command line `given` (which wins).
/// Errors name a MANDATORY attribute that was not given, in xCAT's words.
pub fn fill(t: &Stanza, given: &[(String, String)]) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = given.to_vec();
    for (k, v) in &t.attrs {
        if k == "objtype" || given.iter().any(|(g, gv)| g == k && !gv.is_empty()) {
            continue;
        }
        if v.starts_with("MANDATORY:") {
            return Err(format!("The attribute \"{k}\" must be specified!"));
        }
        if v.starts_with("OPTIONAL:") || v.is_empty() {
            continue;
        }
        out.push((k.clone(), v.clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_fill() {
        assert!(all().len() >= 4);
        let t = find("x86_64-template").expect("template");
        assert_eq!(t.objtype(), Some("node"));
        let e = fill(&t, &[("ip".into(), "10.0.0.1".into())]).unwrap_err();
        assert_eq!(e, "The attribute \"bmc\" must be specified!");
        let a = fill(
            &t,
            &[
                ("ip".into(), "10.0.0.1".into()),
                ("bmc".into(), "10.1.0.1".into()),
            ],
        )
        .expect("filled");
        assert!(a.contains(&("mgt".into(), "ipmi".into())));
        assert!(!a.iter().any(|(k, _)| k == "mac" || k == "bmcpassword"));
    }
}
