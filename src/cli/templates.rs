//! Object definition templates for `lsdef --template` and `mkdef --template`, under the names
//! xCAT ships (`x86_64-template`, `ppc64le-template`, `switch-template`, …) so scripts that name
//! them keep working. The data is written here for bootherd. A value `MANDATORY:<why>` must be
//! given on the mkdef command line; `OPTIONAL:<why>` is dropped unless given.

use super::stanza::{self, Stanza};

/// The templates, as a stanza file.
pub const TEMPLATES: &str = "\
# <bootherd object definition templates>

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
    usercomment=\"x86_64 node managed over IPMI\"

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
    usercomment=\"ppc64le node managed over IPMI\"

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
    usercomment=\"x86_64 KVM guest\"

switch-template:
    objtype=node
    groups=switch
    ip=\"OPTIONAL:the switch's management address\"
    mac=\"OPTIONAL:the switch's MAC address\"
    mgt=switch
    nodetype=switch
    switchtype=\"OPTIONAL:vendor family (Mellanox, Cisco, BNT, Juniper)\"
    usercomment=\"Ethernet switch\"
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
