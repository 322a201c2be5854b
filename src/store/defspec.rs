//! xCAT object definitions for mkdef/lsdef/chdef/rmdef.
//!
//! Mirrors xCAT's `%defspec` (perl-xCAT/xCAT/Schema.pm) after Schema.pm has finished building it:
//! attribute names, order (lsdef order), `only_if` conditions and the table column each attribute
//! lives in. An attribute may appear several times with different `only_if` (e.g. `bmc` for
//! `mgt=ipmi` → `ipmi.bmc` and for `mgt=openbmc` → `openbmc.bmc`); all entries are kept in xCAT's
//! order. xCAT (DBobjUtils.pm) tests an `only_if` as a whole-word match, not string equality
//! (`nodetype=ppc` holds for `nodetype=ppc,osi`; see [`only_if_matches`]). When reading an object
//! it walks the entries in order and every entry whose condition holds (or that has none) and
//! whose column has a value overwrites the attribute, so the last such entry wins; when writing,
//! every entry whose condition holds is written.
//!
//! How xCAT's entries map onto [`AttrDef`]:
//! - `table`/`column`: the table of `access_tabentry` and the column of `tabentry`. That is what
//!   DBobjUtils.pm actually reads and writes; the two tables agree everywhere except node/group
//!   `hwtype` for `mgt=zvm`, whose `tabentry` says `zvm.nodetype` but whose `access_tabentry` is
//!   `ppc.node`, so xCAT stores it in `ppc.nodetype` — and so do we.
//! - `key_column`: the column of `access_tabentry` (`<table>.<col>=attr:<objkey>`); xCAT always
//!   looks it up with the object's name. Every entry in Schema.pm has an `access_tabentry`
//!   (DBobjUtils.pm would silently skip one that did not, so there is no default to mirror).
//! - `description`: bootherd's own text (the description of the column in [`super::schema`]).
//!
//! Object types:
//! - `group`: the nodegroup attributes (`groupname`, `grouptype`, `members`, `membergroups`,
//!   `wherevals`, `usercomment`) followed by the same shared node attributes as `node` (xCAT's
//!   `@nodeattrs`, pushed onto both lists unchanged). For a group those attributes are stored in
//!   the node-keyed tables with the group name in the key column (`nodehm.node = <group>`), exactly
//!   as for a node.
//! - `node`: the nodelist attributes (`node` … `usercomment`) followed by the shared attributes.
//! - `site` is not in [`OBJECTS`]: every row of the site table is an attribute of the single site
//!   object (xCAT's three static entries `master`, `installdir`, `xcatdport` are keyed by a literal
//!   `site.key=str:…`, not by an object name, and are not representable here).
//! - `zvmivp` is not included (xCAT defines the type with no attributes).
//! - `firmware`: xCAT keys it by `firmware.file`, a column the firmware table does not have, so
//!   xCAT itself never finds any attribute; here it is keyed by `cfgfile`, the column that holds
//!   the object's name (the type's `objkey`).
//!
//! Not mapped (their `access_tabentry` has two conditions: the object name *and* a fixed user
//! name, which [`AttrDef`] cannot express), each for both `node` and `group`:
//! - `passwd.HMC` (only_if `mgt=fsp`, `mgt=bpa`): `ppcdirect.password` where `hcp` is the node and `username` is `HMC`
//! - `passwd.hscroot` (only_if `mgt=fsp`, `mgt=bpa`): `ppcdirect.password` where `hcp` is the node and `username` is `hscroot`
//! - `passwd.admin` (only_if `mgt=fsp`, `mgt=bpa`): `ppcdirect.password` where `hcp` is the node and `username` is `admin`
//! - `passwd.general` (only_if `mgt=fsp`, `mgt=bpa`): `ppcdirect.password` where `hcp` is the node and `username` is `general`
//! - `passwd.celogin` (only_if `mgt=fsp`, `mgt=bpa`): `ppcdirect.password` where `hcp` is the node and `username` is `celogin`

/// One attribute of an object type and the table column that stores it.
#[derive(Debug)]
pub struct AttrDef {
    /// Attribute name as lsdef shows it (`ip`, `mac`, `netboot`, …).
    pub attr: &'static str,
    pub table: &'static str,
    pub column: &'static str,
    /// The column of `table` that holds the object's name (`node`, `imagename`, `netname`, `switch`, …).
    pub key_column: &'static str,
    /// xCAT's `only_if`: this mapping applies only when attribute `.0` of the object matches `.1`
    /// (a whole-word match, see [`only_if_matches`]).
    pub only_if: Option<(&'static str, &'static str)>,
    pub description: &'static str,
}

impl AttrDef {
    /// Whether this mapping applies, given the object's value of the `only_if` attribute (as
    /// resolved from the object, its stored row or its groups). Always true without `only_if`.
    pub fn applies(&self, only_if_attr_value: Option<&str>) -> bool {
        match self.only_if {
            None => true,
            Some((_, want)) => only_if_matches(want, only_if_attr_value.unwrap_or("")),
        }
    }
}

/// xCAT's `only_if` test (`$value =~ /\b\Q$want\E\b/`): `want` occurs in `value` with no word
/// character (ASCII letter, digit, `_`) right before or after it. So `ppc` matches `ppc,osi` but
/// neither `ppc64` nor `lpar`; `ipmi` does not match `openbmc`.
pub fn only_if_matches(want: &str, value: &str) -> bool {
    fn word(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b == b'_'
    }
    if want.is_empty() {
        return false;
    }
    let (v, w) = (value.as_bytes(), want.as_bytes());
    // A \b boundary sits between `inside` and `outside` when exactly one of them is a word char.
    let boundary = |inside: u8, outside: Option<u8>| word(inside) != outside.is_some_and(word);
    let mut start = 0;
    while let Some(pos) = value[start..].find(want) {
        let i = start + pos;
        let j = i + w.len();
        let before = if i == 0 { None } else { Some(v[i - 1]) };
        let after = v.get(j).copied();
        if boundary(w[0], before) && boundary(w[w.len() - 1], after) {
            return true;
        }
        start = i + value[i..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// An object type (`node`, `group`, `osimage`, `network`, …).
#[derive(Debug)]
pub struct ObjDef {
    pub objtype: &'static str,
    /// The attribute that names the object (`node`, `groupname`, `imagename`, `netname`).
    pub objkey: &'static str,
    pub attrs: &'static [AttrDef],
}

impl ObjDef {
    /// Every mapping of attribute `attr`, in xCAT's order (several when they differ by `only_if`).
    pub fn attrs_named<'a>(&'a self, attr: &'a str) -> impl Iterator<Item = &'static AttrDef> + 'a {
        self.attrs.iter().filter(move |a| a.attr == attr)
    }

    /// Attribute names in lsdef order, each once.
    pub fn attr_names(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for a in self.attrs {
            if !out.contains(&a.attr) {
                out.push(a.attr);
            }
        }
        out
    }
}

const fn ad(
    attr: &'static str,
    table: &'static str,
    column: &'static str,
    key_column: &'static str,
    only_if: Option<(&'static str, &'static str)>,
    description: &'static str,
) -> AttrDef {
    AttrDef {
        attr,
        table,
        column,
        key_column,
        only_if,
        description,
    }
}

/// The attribute list `[$pre…, xCAT's @nodeattrs…]`: the attributes node and group share.
macro_rules! with_nodeattrs {
    ($($pre:expr),* $(,)?) => {
        &[
            $($pre,)*
            ad("nodetype", "nodetype", "nodetype", "node", None, "Comma-separated node characteristics, e.g. ppc, blade, vm, osi, mm, mn, rsa, switch, pdu."),
            ad("postscripts", "postscripts", "postscripts", "node", None, "Comma-separated scripts (with optional arguments, e.g. \"s1 a b,s2\") run after install or diskless boot; xcatdefaults' list runs first."),
            ad("postbootscripts", "postscripts", "postbootscripts", "node", None, "Comma-separated scripts (with optional arguments) run at init time after install or diskless boot, and on every reboot when site runbootscripts=yes; xcatdefaults' list runs first."),
            ad("xcatmaster", "noderes", "xcatmaster", "node", None, "This node's master (service or management node) as seen from the node; default for tftpserver and nfsserver."),
            ad("servicenode", "noderes", "servicenode", "node", None, "Comma-separated service nodes (as the management node knows them) that serve this node; first reachable wins, the second is the usual backup."),
            ad("tftpserver", "noderes", "tftpserver", "node", None, "TFTP server as seen from the node; defaults to networks.tftpserver, then xcatmaster."),
            ad("tftpdir", "noderes", "tftpdir", "node", None, "TFTP root directory for this node's boot files (default /tftpboot)."),
            ad("nfsserver", "noderes", "nfsserver", "node", None, "NFS/HTTP server holding install files, as seen from the node; defaults to xcatmaster."),
            ad("nimserver", "noderes", "nimserver", "node", None, "Unused: NIM server as seen from the node."),
            ad("nfsdir", "noderes", "nfsdir", "node", None, "Path to mount from nfsserver."),
            ad("monserver", "noderes", "monserver", "node", None, "Monitoring aggregation point as \"x,y\": address known to the management node, address known to the node."),
            ad("supportproxydhcp", "noderes", "proxydhcp", "node", None, "yes/1 or no/0: whether the node can use proxy DHCP (default yes)."),
            ad("syslog", "noderes", "syslog", "node", None, "Empty runs the syslog postscript; ignore skips it."),
            ad("kernel", "bootparams", "kernel", "node", None, "Kernel (or chained loader such as memdisk) the node boots next."),
            ad("initrd", "bootparams", "initrd", "node", None, "Initial ramdisk (or disk image when kernel is memdisk) the node boots next."),
            ad("kcmdline", "bootparams", "kcmdline", "node", None, "Kernel arguments written by xCAT (deprecated for users; use addkcmdline)."),
            ad("addkcmdline", "bootparams", "addkcmdline", "node", None, "Extra kernel options, space-separated; prefix R:: applies one to the installed OS rather than the installer."),
            ad("primarynic", "noderes", "primarynic", "node", None, "Deprecated management NIC (interface name, MAC or mac); use installnic."),
            ad("installnic", "noderes", "installnic", "node", None, "Node NIC used for deployment: an interface name, a MAC, or the word mac (the NIC whose MAC is in the mac table). Defaults to primarynic, then mac."),
            ad("netboot", "noderes", "netboot", "node", None, "Network boot loader: pxe, xnba, grub2, grub2-http, grub2-tftp, petitboot, yaboot (depends on arch and OS)."),
            ad("nameservers", "noderes", "nameservers", "node", None, "Per-node/group override of the DNS server list from site or networks."),
            ad("routenames", "noderes", "routenames", "node", None, "Comma-separated names of routes (routes table) to configure on the node."),
            ad("setupnameserver", "servicenode", "nameserver", "node", None, "DNS: 1 forwarding server, 2 slave of the management node, 0 leave as is."),
            ad("setupdhcp", "servicenode", "dhcpserver", "node", None, "DHCP: 1 set up (makedhcp -n), 0 leave as is."),
            ad("setuptftp", "servicenode", "tftpserver", "node", None, "TFTP: 1 set up, 0 leave as is."),
            ad("setupnfs", "servicenode", "nfsserver", "node", None, "File serving (HTTP/FTP/NFS): 1 set up, 0 leave as is."),
            ad("setupconserver", "servicenode", "conserver", "node", None, "Console: 1 conserver, 2 goconserver, 0 leave as is."),
            ad("setupipforward", "servicenode", "ipforward", "node", None, "IP forwarding: 1 enable, 0 leave as is."),
            ad("setupproxydhcp", "servicenode", "proxydhcp", "node", None, "Proxy DHCP daemon: 1 enable, 0 leave as is."),
            ad("setupldap", "servicenode", "ldapserver", "node", None, "LDAP caching proxy: 1 set up, 0 leave as is."),
            ad("setupntp", "servicenode", "ntpserver", "node", None, "Unused (use the setupntp postscript)."),
            ad("setupftp", "servicenode", "ftpserver", "node", None, "vsftpd: 1 set up, 0 leave as is."),
            ad("setupnim", "servicenode", "nimserver", "node", None, "Unused: NIM server."),
            ad("dhcpinterfaces", "servicenode", "dhcpinterfaces", "node", None, "Comma-separated interfaces DHCP listens on (overrides site dhcpinterfaces); !remote! for relayed networks."),
            ad("arch", "nodetype", "arch", "node", None, "Hardware architecture: x86_64, ppc64, ppc64le, aarch64, x86, ia64."),
            ad("supportedarchs", "nodetype", "supportedarchs", "node", None, "Comma-separated architectures the node can run."),
            ad("os", "nodetype", "os", "node", None, "Operating system, e.g. rhels8.6, sles15.4, ubuntu22.04, AIX; boottarget means boot what the boottarget row named by profile specifies."),
            ad("profile", "nodetype", "profile", "node", None, "Profile name used to find templates and package lists when provmethod is not an osimage name."),
            ad("provmethod", "nodetype", "provmethod", "node", None, "install, netboot, statelite, or the name of an osimage to deploy."),
            ad("iscsiserver", "iscsi", "server", "node", None, "Server holding the node's iSCSI boot device."),
            ad("iscsitarget", "iscsi", "target", "node", None, "iSCSI target used as the boot device (filled in by xCAT)."),
            ad("iscsiuserid", "iscsi", "userid", "node", None, "User name on the iSCSI server."),
            ad("iscsipassword", "iscsi", "passwd", "node", None, "Password on the iSCSI server."),
            ad("mgt", "nodehm", "mgt", "node", None, "Default hardware-management method (also the fallback for power and getmac): openbmc, ipmi, blade, hmc, ivm, fsp, bpa, kvm, esx, rhevm, ..."),
            ad("power", "nodehm", "power", "node", None, "Power-control method; empty means use mgt. Values as for mgt, e.g. ipmi, openbmc, blade, hmc, ivm, fsp, kvm, esx, rhevm."),
            ad("cons", "nodehm", "cons", "node", None, "Console method: cyclades, mrv or any mgt value. Defaults to mgt when serialport is set, otherwise no console."),
            ad("termserver", "nodehm", "termserver", "node", None, "Hostname of the terminal server the node's console is wired to."),
            ad("termport", "nodehm", "termport", "node", None, "Port on termserver that the node's console uses."),
            ad("conserver", "nodehm", "conserver", "node", None, "Host running the console server for this node; empty means the management node."),
            ad("getmac", "nodehm", "getmac", "node", None, "Method used by getmacs to collect the MAC address; empty means use mgt."),
            ad("cmdmapping", "nodehm", "cmdmapping", "node", None, "Path of a file mapping PCM hardware commands to xCAT ones (PCM only)."),
            ad("serialport", "nodehm", "serialport", "node", None, "Serial port number, Linux numbering (0 = ttyS0/COM1, 1 = ttyS1/COM2)."),
            ad("serialspeed", "nodehm", "serialspeed", "node", None, "Serial port baud rate, e.g. 115200 (19200 is common for SOL)."),
            ad("serialflow", "nodehm", "serialflow", "node", None, "Serial flow control, e.g. hard, soft or none."),
            ad("consoleondemand", "nodehm", "consoleondemand", "node", None, "yes/1 or no/0: open the console connection only when someone attaches; overrides site consoleondemand."),
            ad("consoleenabled", "nodehm", "consoleenabled", "node", None, "Set to 1 by xCAT when the node is registered with the console server."),
            ad("serial", "vpd", "serial", "node", None, "Serial number."),
            ad("mtm", "vpd", "mtm", "node", None, "Machine type and model, e.g. 7984-6BU."),
            ad("side", "vpd", "side", "node", None, "For BPAs/FSPs, <side>-<port> (A or B side, physical port) as found by lsslp; used internally."),
            ad("interface", "mac", "interface", "node", None, "Install/management interface name on the node, e.g. eth0 or en0."),
            ad("mac", "mac", "mac", "node", None, "MAC address(es) xCAT binds statically to this node: one MAC, or mac[!host] entries joined by |, e.g. 00:11:22:33:44:55|00:11:22:33:44:56!node1-eth1. A first entry without !host uses the node name; host *NOIP* means no IP is bound to that MAC."),
            ad("chain", "chain", "chain", "node", None, "Comma-separated actions to run after first discovery: boot, runcmd=<cmd>, runimage=<url>, shell, standby, osimage=<name>."),
            ad("ondiscover", "chain", "ondiscover", "node", None, "Unused; nodediscover always runs during discovery."),
            ad("currstate", "chain", "currstate", "node", None, "Chain step now being (or next to be) run by genesis; set by discovery or nodeset."),
            ad("currchain", "chain", "currchain", "node", None, "Chain steps still to run; updated by xCAT while genesis works through them."),
            ad("username", "ppchcp", "username", "hcp", Some(("nodetype", "ivm")), "Login user; falls back to passwd key=hmc/ivm, then hscroot (HMC) or padmin (IVM)."),
            ad("password", "ppchcp", "password", "hcp", Some(("nodetype", "ivm")), "Login password; falls back to passwd key=hmc/ivm, then the vendor default."),
            ad("username", "ppchcp", "username", "hcp", Some(("nodetype", "hmc")), "Login user; falls back to passwd key=hmc/ivm, then hscroot (HMC) or padmin (IVM)."),
            ad("password", "ppchcp", "password", "hcp", Some(("nodetype", "hmc")), "Login password; falls back to passwd key=hmc/ivm, then the vendor default."),
            ad("username", "ppchcp", "username", "hcp", Some(("nodetype", "ppc")), "Login user; falls back to passwd key=hmc/ivm, then hscroot (HMC) or padmin (IVM)."),
            ad("password", "ppchcp", "password", "hcp", Some(("nodetype", "ppc")), "Login password; falls back to passwd key=hmc/ivm, then the vendor default."),
            ad("hcp", "ppc", "hcp", "node", None, "Hardware control point (HMC, IVM, frame or CEC); not needed for FSPs/BPAs."),
            ad("id", "ppc", "id", "node", None, "LPAR id, CEC cage number or frame number."),
            ad("pprofile", "ppc", "pprofile", "node", Some(("mgt", "hmc")), "LPAR profile used at the next power-on (empty for DFM)."),
            ad("pprofile", "ppc", "pprofile", "node", Some(("mgt", "ivm")), "LPAR profile used at the next power-on (empty for DFM)."),
            ad("pprofile", "ppc", "pprofile", "node", Some(("mgt", "fsp")), "LPAR profile used at the next power-on (empty for DFM)."),
            ad("parent", "ppc", "parent", "node", Some(("mgt", "hmc")), "Parent object: the CEC for LPARs/FSPs, the frame for CECs/BPAs, the building block for frames."),
            ad("parent", "ppc", "parent", "node", Some(("mgt", "ivm")), "Parent object: the CEC for LPARs/FSPs, the frame for CECs/BPAs, the building block for frames."),
            ad("parent", "ppc", "parent", "node", Some(("mgt", "bpa")), "Parent object: the CEC for LPARs/FSPs, the frame for CECs/BPAs, the building block for frames."),
            ad("parent", "ppc", "parent", "node", Some(("mgt", "fsp")), "Parent object: the CEC for LPARs/FSPs, the frame for CECs/BPAs, the building block for frames."),
            ad("hwtype", "ppc", "nodetype", "node", Some(("mgt", "fsp")), "Hardware type: fsp, bpa, cec, frame, ivm, hmc or lpar."),
            ad("hwtype", "ppc", "nodetype", "node", Some(("mgt", "bpa")), "Hardware type: fsp, bpa, cec, frame, ivm, hmc or lpar."),
            ad("hwtype", "ppc", "nodetype", "node", Some(("mgt", "ivm")), "Hardware type: fsp, bpa, cec, frame, ivm, hmc or lpar."),
            ad("hwtype", "ppc", "nodetype", "node", Some(("mgt", "hmc")), "Hardware type: fsp, bpa, cec, frame, ivm, hmc or lpar."),
            ad("hwtype", "ppc", "nodetype", "node", Some(("mgt", "zvm")), "Hardware type: fsp, bpa, cec, frame, ivm, hmc or lpar."),
            ad("hwtype", "mp", "nodetype", "node", Some(("mgt", "blade")), "Hardware type: mm, cmm or blade."),
            ad("hwtype", "mp", "nodetype", "node", Some(("mgt", "ipmi")), "Hardware type: mm, cmm or blade."),
            ad("hwtype", "mp", "nodetype", "node", Some(("mgt", "openbmc")), "Hardware type: mm, cmm or blade."),
            ad("supernode", "ppc", "supernode", "node", None, "HFI supernode placement of a CEC as supernode-number,position(0-3)."),
            ad("sfp", "ppc", "sfp", "node", None, "HMC acting as service focal point of a frame."),
            ad("hcp", "zvm", "hcp", "node", Some(("mgt", "zvm")), "Hardware control point."),
            ad("userid", "zvm", "userid", "node", Some(("mgt", "zvm")), "z/VM user ID."),
            ad("bmc", "ipmi", "bmc", "node", Some(("mgt", "ipmi")), "Host name or IP address of the node's BMC."),
            ad("bmcport", "ipmi", "bmcport", "node", Some(("mgt", "ipmi")), "Shared/dedicated BMC port selection: 0 shared, 1 dedicated, empty leave as is; some vendors take extra space-separated values."),
            ad("bmcusername", "ipmi", "username", "node", Some(("mgt", "ipmi")), "BMC user name; empty means use the passwd row key=ipmi."),
            ad("bmcpassword", "ipmi", "password", "node", Some(("mgt", "ipmi")), "BMC password; empty means use the passwd row key=ipmi."),
            ad("bmcvlantag", "ipmi", "taggedvlan", "node", Some(("mgt", "ipmi")), "VLAN ID that bmcsetup tags the BMC network interface with."),
            ad("mpa", "mp", "mpa", "node", None, "Management module controlling the blade."),
            ad("slotid", "mp", "id", "node", Some(("mgt", "fsp")), "Slot number of the blade in the chassis."),
            ad("id", "mp", "id", "node", Some(("mgt", "blade")), "Slot number of the blade in the chassis."),
            ad("slotid", "mp", "id", "node", Some(("mgt", "ipmi")), "Slot number of the blade in the chassis."),
            ad("username", "mpa", "username", "mpa", Some(("nodetype", "mm")), "Login user."),
            ad("password", "mpa", "password", "mpa", Some(("nodetype", "mm")), "Login password; empty means use the passwd row key=blade."),
            ad("displayname", "mpa", "displayname", "mpa", Some(("nodetype", "mm")), "Alternative chassis name (PCM only)."),
            ad("slots", "mpa", "slots", "mpa", Some(("nodetype", "mm")), "Slot count; PCM stores rows,columns,orientation (0 vertical, 1 horizontal)."),
            ad("urlpath", "mpa", "urlpath", "mpa", Some(("nodetype", "mm")), "Path of the chassis web interface, appended to the host name."),
            ad("bmc", "openbmc", "bmc", "node", Some(("mgt", "openbmc")), "Host name or IP address of the node's BMC."),
            ad("bmcusername", "openbmc", "username", "node", Some(("mgt", "openbmc")), "BMC user name; empty means use the passwd row key=openbmc."),
            ad("bmcpassword", "openbmc", "password", "node", Some(("mgt", "openbmc")), "BMC password; empty means use the passwd row key=openbmc."),
            ad("consport", "openbmc", "consport", "node", Some(("mgt", "openbmc")), "Console port of the BMC."),
            ad("bmcvlantag", "openbmc", "taggedvlan", "node", Some(("mgt", "openbmc")), "VLAN ID that bmcsetup tags the BMC network interface with."),
            ad("rack", "nodepos", "rack", "node", None, "Rack/frame containing the node."),
            ad("unit", "nodepos", "u", "node", None, "Vertical position (unit) in the rack."),
            ad("chassis", "nodepos", "chassis", "node", None, "Chassis containing the node (blades)."),
            ad("slot", "nodepos", "slot", "node", None, "Slot in the chassis (PCM: comma-separated list)."),
            ad("room", "nodepos", "room", "node", None, "Room where the node is."),
            ad("height", "nodepos", "height", "node", None, "Height in rack units."),
            ad("nicips", "nics", "nicips", "node", None, "IP addresses per NIC, e.g. eth0!10.0.0.100,ib0!11.0.0.100|fd55::1; the primary IP also belongs in hosts.ip."),
            ad("nichostnamesuffixes", "nics", "nichostnamesuffixes", "node", None, "Host name suffixes per NIC address, e.g. eth0!-eth0,ib0!-ib0."),
            ad("nichostnameprefixes", "nics", "nichostnameprefixes", "node", None, "Host name prefixes per NIC address, e.g. eth0!eth0-,ib0!ib-."),
            ad("nictypes", "nics", "nictypes", "node", None, "NIC types, e.g. eth0!Ethernet,ib0!Infiniband."),
            ad("niccustomscripts", "nics", "niccustomscripts", "node", None, "Custom configuration script per NIC, e.g. eth0!configeth eth0."),
            ad("nicnetworks", "nics", "nicnetworks", "node", None, "Network (networks.netname) per NIC address."),
            ad("nicaliases", "nics", "nicaliases", "node", None, "Space-separated host aliases per NIC address."),
            ad("nicextraparams", "nics", "nicextraparams", "node", None, "Extra settings per NIC address, e.g. eth0!MTU=1500; ; separates multi-valued options."),
            ad("nicdevices", "nics", "nicdevices", "node", None, "Member devices of bonds/bridges, e.g. bond0!eth0|eth2,br0!bond0."),
            ad("nicsadapter", "nics", "nicsadapter", "node", None, "Adapter details collected by getadapter, e.g. eth0!mac=... linkstate=UP."),
            ad("productkey", "prodkey", "key", "node", None, "Product key for this node/group and product."),
            ad("ou", "domain", "ou", "node", None, "Organizational unit for the machine account (default cn=Computers under the domain)."),
            ad("domainadminuser", "domain", "adminuser", "node", None, "Per-node domain administrator account (normally taken from passwd)."),
            ad("domainadminpassword", "domain", "adminpassword", "node", None, "Per-node domain administrator password (normally taken from passwd)."),
            ad("authdomain", "domain", "authdomain", "node", None, "AD domain or Kerberos realm to join when different from site domain."),
            ad("domaintype", "domain", "type", "node", None, "Kind of domain; only activedirectory is recognized."),
            ad("osvolume", "storage", "osvolume", "node", None, "Where to install the OS: localdisk, usbdisk or wwn=<id>."),
            ad("storagcontroller", "storage", "controller", "node", None, "Management address used to attach/detach volumes."),
            ad("storagetype", "storage", "type", "node", None, "Storage plugin, e.g. svc."),
            ad("vmmanager", "vm", "mgr", "node", None, "Manager (plugin) for the VM."),
            ad("vmhost", "vm", "host", "node", None, "Hypervisor currently running the VM."),
            ad("migrationdest", "vm", "migrationdest", "node", None, "Noderange of allowed migration targets."),
            ad("vmstorage", "vm", "storage", "node", None, "Comma-separated disks, e.g. dir:///cluster/vm/<node> or nfs://server/path."),
            ad("vmphyslots", "vm", "physlots", "node", None, "Comma-separated DRC indexes (0x...) of physical slots given to the partition."),
            ad("vmothersetting", "vm", "othersettings", "node", None, "Semicolon-separated extra settings, e.g. hugepage:1;cpumode:host-passthrough;vcpupin:...;devpassthrough:...;machine:q35."),
            ad("vmstoragemodel", "vm", "storagemodel", "node", None, "Guest disk model."),
            ad("vmstoragecache", "vm", "storagecache", "node", None, "Disk caching mode, e.g. none, writethrough, writeback."),
            ad("vmstorageformat", "vm", "storageformat", "node", None, "Default disk format, e.g. raw or qcow2."),
            ad("vmcfgstore", "vm", "cfgstore", "node", None, "Separate location for persistent VM configuration."),
            ad("vmmemory", "vm", "memory", "node", None, "Memory in MB."),
            ad("vmcpus", "vm", "cpus", "node", None, "Number of virtual CPUs."),
            ad("vmnics", "vm", "nics", "node", None, "Network attachments as [physnet:]interface,...; |direct suffix makes a macvtap device."),
            ad("vmnicnicmodel", "vm", "nicmodel", "node", None, "NIC model, e.g. virtio, e1000."),
            ad("vmbootorder", "vm", "bootorder", "node", None, "Boot order, e.g. net,hd."),
            ad("vmvirtflags", "vm", "virtflags", "node", None, "Hypervisor-specific flags, e.g. imageformat=qcow2, clonemethod=reflink, placement_affinity=migratable."),
            ad("vmmaster", "vm", "master", "node", None, "Clone master this VM's storage depends on (set by clonevm)."),
            ad("vmvncport", "vm", "vncport", "node", None, "Current VNC display (tracked by xCAT)."),
            ad("vmtextconsole", "vm", "textconsole", "node", None, "PTY of the VM's serial console (tracked by xCAT)."),
            ad("vmbeacon", "vm", "beacon", "node", None, "Identify-LED state (tracked by xCAT)."),
            ad("vmcluster", "vm", "cluster", "node", None, "Cluster of the VM in the virtualization stack."),
            ad("hosttype", "hypervisor", "type", "node", None, "Hypervisor plugin used for host-level commands (e.g. revacuate)."),
            ad("hostinterface", "hypervisor", "interface", "node", None, "Interfaces as networkname:ifname:bootproto:IP:netmask:gateway entries joined by |."),
            ad("hostmanager", "hypervisor", "mgr", "node", None, "Virtualization manager in charge of this hypervisor, if any."),
            ad("hostcluster", "hypervisor", "cluster", "node", None, "Cluster the hypervisor belongs to in the virtualization stack."),
            ad("webport", "websrv", "port", "node", Some(("nodetype", "websrv")), "Service port."),
            ad("username", "websrv", "username", "node", Some(("nodetype", "websrv")), "Login user."),
            ad("password", "websrv", "password", "node", Some(("nodetype", "websrv")), "Login password."),
            ad("pdu", "pduoutlet", "pdu", "node", None, "Comma-separated pdu:outlet pairs, e.g. pdu1:3,pdu2:3."),
            ad("switch", "switch", "switch", "node", None, "Switch host name."),
            ad("switchport", "switch", "port", "node", None, "Switch port number or CLI name (e.g. 5, 2/0/1) the node is cabled to."),
            ad("switchvlan", "switch", "vlan", "node", None, "Tagged VLAN ID created on this port by mkvlan/chvlan."),
            ad("switchinterface", "switch", "interface", "node", None, "Node-side interface on this port, e.g. eth0; empty, primary or primary:<nic> for the primary NIC."),
            ad("ip", "hosts", "ip", "node", None, "Node's primary IP address."),
            ad("hostnames", "hosts", "hostnames", "node", None, "Extra host name aliases for the node, comma- or space-separated."),
            ad("otherinterfaces", "hosts", "otherinterfaces", "node", None, "Additional name:ip pairs, comma-separated; a name starting with - is a suffix appended to the node name, e.g. -bmc:10.0.0.5,n1-ib:11.0.0.1."),
            ad("prescripts-begin", "prescripts", "begin", "node", None, "Scripts run before: [action:]s1,s2[|action2:s3,...]; no action means all actions. Scripts live in /install/prescripts."),
            ad("prescripts-end", "prescripts", "end", "node", None, "Scripts run afterwards; same format as begin."),
            ad("cfgmgr", "cfgmgt", "cfgmgr", "node", None, "Configuration manager: chef or puppet."),
            ad("cfgserver", "cfgmgt", "cfgserver", "node", None, "xCAT node name of the Chef server or Puppet master."),
            ad("cfgmgtroles", "cfgmgt", "roles", "node", None, "Comma-separated roles (Chef roles/recipes or Puppet classes) to apply."),
            ad("michost", "mic", "host", "node", Some(("mgt", "mic")), "Host node the card is installed in."),
            ad("micid", "mic", "id", "node", Some(("mgt", "mic")), "Device id of the card."),
            ad("hwtype", "mic", "nodetype", "node", Some(("mgt", "mic")), "Hardware type (normally mic)."),
            ad("micbridge", "mic", "bridge", "node", Some(("mgt", "mic")), "Host bridge the card connects to."),
            ad("miconboot", "mic", "onboot", "node", Some(("mgt", "mic")), "yes/no: boot the card when mpss starts (default yes)."),
            ad("micvlog", "mic", "vlog", "node", Some(("mgt", "mic")), "yes/no: verbose console log (default no)."),
            ad("micpowermgt", "mic", "powermgt", "node", Some(("mgt", "mic")), "Idle power states as cpufreq=on|off!corec6=on|off!pc3=on|off!pc6=on|off."),
            ad("cputype", "hwinv", "cputype", "node", None, "CPU model."),
            ad("cpucount", "hwinv", "cpucount", "node", None, "Number of CPUs."),
            ad("memory", "hwinv", "memory", "node", None, "Memory size in MB."),
            ad("disksize", "hwinv", "disksize", "node", None, "Disk size(s) in GB."),
            ad("nodetype", "pdu", "nodetype", "node", Some(("nodetype", "pdu")), "Node type (pdu)."),
            ad("pdutype", "pdu", "pdutype", "node", Some(("nodetype", "pdu")), "PDU model/type."),
            ad("outlet", "pdu", "outlet", "node", Some(("nodetype", "pdu")), "Number of outlets."),
            ad("username", "pdu", "username", "node", Some(("nodetype", "pdu")), "Remote login user."),
            ad("password", "pdu", "password", "node", Some(("nodetype", "pdu")), "Remote login password."),
            ad("snmpversion", "pdu", "snmpversion", "node", Some(("nodetype", "pdu")), "SNMP version; 1 if unset."),
            ad("community", "pdu", "community", "node", Some(("nodetype", "pdu")), "SNMPv1/v2c community string."),
            ad("snmpuser", "pdu", "snmpuser", "node", Some(("nodetype", "pdu")), "SNMPv3 user name."),
            ad("authtype", "pdu", "authtype", "node", Some(("nodetype", "pdu")), "SNMPv3 authentication protocol: MD5 or SHA."),
            ad("authkey", "pdu", "authkey", "node", Some(("nodetype", "pdu")), "SNMPv3 authentication passphrase."),
            ad("privtype", "pdu", "privtype", "node", Some(("nodetype", "pdu")), "SNMPv3 privacy protocol: AES or DES."),
            ad("privkey", "pdu", "privkey", "node", Some(("nodetype", "pdu")), "SNMPv3 privacy passphrase."),
            ad("seclevel", "pdu", "seclevel", "node", Some(("nodetype", "pdu")), "SNMPv3 security level: noAuthNoPriv, authNoPriv or authPriv."),
            ad("snmpusername", "switches", "username", "switch", Some(("nodetype", "switch")), "SNMPv3 user name (unused for v1/v2c)."),
            ad("snmppassword", "switches", "password", "switch", Some(("nodetype", "switch")), "SNMPv3 password, or community string for v1/v2c; falls back to passwd table and site snmpc."),
            ad("snmpversion", "switches", "snmpversion", "switch", Some(("nodetype", "switch")), "SNMP version to use; 1 if unset."),
            ad("snmpprivacy", "switches", "privacy", "switch", Some(("nodetype", "switch")), "SNMPv3 privacy protocol, e.g. DES or AES; empty means authNoPriv."),
            ad("snmpauth", "switches", "auth", "switch", Some(("nodetype", "switch")), "SNMPv3 authentication protocol, e.g. SHA (default) or MD5."),
            ad("linkports", "switches", "linkports", "switch", Some(("nodetype", "switch")), "Ports linking to other switches, as port:switch,port:switch,... (used for VLAN setup)."),
            ad("username", "switches", "sshusername", "switch", Some(("nodetype", "switch")), "SSH/telnet login user; if empty, login details come from the passwd row key=switch."),
            ad("password", "switches", "sshpassword", "switch", Some(("nodetype", "switch")), "SSH/telnet login password; if empty, login details come from the passwd row key=switch."),
            ad("protocol", "switches", "protocol", "switch", Some(("nodetype", "switch")), "Remote command protocol: ssh (default) or telnet."),
            ad("switchtype", "switches", "switchtype", "switch", Some(("nodetype", "switch")), "Switch vendor/type selecting the driver, e.g. Mellanox, Cisco, BNT, Juniper."),
        ]
    };
}

/// The object types, in the order of xCAT's `%defspec` (one attribute per line, hence no rustfmt).
#[rustfmt::skip]
pub static OBJECTS: &[ObjDef] = &[
    ObjDef {
        objtype: "node",
        objkey: "node",
        attrs: with_nodeattrs![
            ad("node", "nodelist", "node", "node", None, "Node name (normally its hostname); every node must have a row here."),
            ad("groups", "nodelist", "groups", "node", None, "Comma-separated list of groups the node belongs to; every node should be in all. Names starting with __ are reserved for internal groups."),
            ad("status", "nodelist", "status", "node", None, "Deployment state maintained by xCAT: defined, discovering, configuring, standingby, installing, netbooting, booting, postbooting, booted, alive, powering-off, unreachable. Empty means defined."),
            ad("statustime", "nodelist", "statustime", "node", None, "Date and time status was last changed."),
            ad("appstatus", "nodelist", "appstatus", "node", None, "Comma-separated app=state pairs, e.g. sshd=up,ftp=down."),
            ad("appstatustime", "nodelist", "appstatustime", "node", None, "Date and time appstatus was last changed."),
            ad("primarysn", "nodelist", "primarysn", "node", None, "Primary service node of this node (currently unused)."),
            ad("hidden", "nodelist", "hidden", "node", None, "Set to 1 to hide the node (typically an FSP or BPA) from nodels and lsdef."),
            ad("updatestatus", "nodelist", "updatestatus", "node", None, "Software update state: synced, out-of-sync, syncing or failed."),
            ad("updatestatustime", "nodelist", "updatestatustime", "node", None, "Date and time updatestatus was last changed."),
            ad("zonename", "nodelist", "zonename", "node", None, "Zone the node is assigned to; empty means the default zone."),
            ad("usercomment", "nodelist", "comments", "node", None, "Free-form notes (shown by lsdef as usercomment)."),
        ],
    },
    ObjDef {
        objtype: "group",
        objkey: "groupname",
        attrs: with_nodeattrs![
            ad("groupname", "nodegroup", "groupname", "groupname", None, "Group name."),
            ad("grouptype", "nodegroup", "grouptype", "groupname", None, "static (members listed in nodelist.groups) or dynamic (members chosen by wherevals)."),
            ad("members", "nodegroup", "members", "groupname", None, "Placeholder for the *def commands; static membership lives in nodelist.groups."),
            ad("membergroups", "nodegroup", "membergroups", "groupname", None, "Comma-separated groups this group refers to (PCM only)."),
            ad("wherevals", "nodegroup", "wherevals", "groupname", None, "Selection for dynamic groups: attr<op>value terms joined by ::, op one of ==, =~, !=, !~."),
            ad("usercomment", "nodegroup", "comments", "groupname", None, "Free-form notes."),
        ],
    },
    ObjDef {
        objtype: "osimage",
        objkey: "imagename",
        attrs: &[
            ad("imagename", "osimage", "imagename", "imagename", None, "Osimage name."),
            ad("groups", "osimage", "groups", "imagename", None, "Comma-separated image groups this image belongs to (usable in litefile/litetree)."),
            ad("imagetype", "osimage", "imagetype", "imagename", None, "Image type: linux, windows or NIM (AIX)."),
            ad("description", "osimage", "description", "imagename", None, "Free-text description of the image."),
            ad("provmethod", "osimage", "provmethod", "imagename", None, "install, netboot, statelite, boottarget, dualboot or sysclone (unused on AIX)."),
            ad("osdistroname", "osimage", "osdistroname", "imagename", None, "Osdistro to use; when set it overrides osname, osvers and osarch."),
            ad("osupdatename", "osimage", "osupdatename", "imagename", None, "Comma-separated osdistroupdate names applied to this image."),
            ad("cfmdir", "osimage", "cfmdir", "imagename", None, "CFM directory (PCM only)."),
            ad("rootfstype", "osimage", "rootfstype", "imagename", Some(("imagetype", "linux")), "Root filesystem type of statelite images: nfs (default) or ramdisk."),
            ad("nfsrootopts", "osimage", "nfsrootopts", "imagename", Some(("imagetype", "linux")), "Extra NFS mount options for a dracut statelite root (always read-only; rw/defaults not allowed)."),
            ad("profile", "osimage", "profile", "imagename", None, "Usage profile, e.g. compute or service."),
            ad("osname", "osimage", "osname", "imagename", None, "OS family: Linux or AIX."),
            ad("osvers", "osimage", "osvers", "imagename", None, "OS release, e.g. rhels8.6, sles15.4, ubuntu22.04."),
            ad("osarch", "osimage", "osarch", "imagename", None, "Architecture, e.g. x86_64, ppc64le, aarch64."),
            ad("synclists", "osimage", "synclists", "imagename", None, "Comma-separated synclist files naming files to sync to nodes."),
            ad("postscripts", "osimage", "postscripts", "imagename", None, "Comma-separated scripts run on nodes with this image after install or diskless boot."),
            ad("postbootscripts", "osimage", "postbootscripts", "imagename", None, "Comma-separated scripts run at init time on nodes with this image (every reboot if site runbootscripts=yes)."),
            ad("serverrole", "osimage", "serverrole", "imagename", None, "Role of servers built from this image: mgtnode, servicenode, compute, login, storage, utility."),
            ad("isdeletable", "osimage", "isdeletable", "imagename", None, "Whether the image may be deleted (PCM only)."),
            ad("kitcomponents", "osimage", "kitcomponents", "imagename", None, "Kit components added to this image."),
            ad("template", "linuximage", "template", "imagename", Some(("imagetype", "linux")), "Full path of the kickstart/autoyast/preseed template for diskful installs."),
            ad("boottarget", "linuximage", "boottarget", "imagename", Some(("imagetype", "linux")), "Boottarget whose kernel, initrd and arguments replace the defaults."),
            ad("addkcmdline", "linuximage", "addkcmdline", "imagename", Some(("imagetype", "linux")), "Extra kernel options, space-separated; prefix R:: applies one to the installed OS rather than the installer. Ignored when boottarget is set."),
            ad("pkglist", "linuximage", "pkglist", "imagename", Some(("imagetype", "linux")), "Comma-separated files listing distro packages to include."),
            ad("pkgdir", "linuximage", "pkgdir", "imagename", Some(("imagetype", "linux")), "Comma-separated package directories (first must be the OS base); Ubuntu also accepts http/ssh mirrors."),
            ad("otherpkglist", "linuximage", "otherpkglist", "imagename", Some(("imagetype", "linux")), "Comma-separated files listing non-distro packages to include."),
            ad("otherpkgdir", "linuximage", "otherpkgdir", "imagename", Some(("imagetype", "linux")), "Comma-separated directory and URL repositories for non-distro packages."),
            ad("exlist", "linuximage", "exlist", "imagename", Some(("imagetype", "linux")), "Comma-separated files listing paths packimage leaves out (diskless only)."),
            ad("postinstall", "linuximage", "postinstall", "imagename", Some(("imagetype", "linux")), "Comma-separated scripts (with arguments) genimage runs outside the chroot after package install (diskless only)."),
            ad("rootimgdir", "linuximage", "rootimgdir", "imagename", Some(("imagetype", "linux")), "Directory holding the generated image (diskless, sysclone); its last component must be the image name."),
            ad("kerneldir", "linuximage", "kerneldir", "imagename", Some(("imagetype", "linux")), "Directory of a third-party kernel (diskless only)."),
            ad("nodebootif", "linuximage", "nodebootif", "imagename", Some(("imagetype", "linux")), "Interface stateless/statelite nodes boot over, e.g. eth0."),
            ad("otherifce", "linuximage", "otherifce", "imagename", Some(("imagetype", "linux")), "Other interfaces in the image to configure with DHCP."),
            ad("netdrivers", "linuximage", "netdrivers", "imagename", Some(("imagetype", "linux")), "Network drivers to put in the initrd, at least the one for installnic."),
            ad("kernelver", "linuximage", "kernelver", "imagename", Some(("imagetype", "linux")), "Kernel version to use; empty means the default kernel in rootimgdir."),
            ad("krpmver", "linuximage", "krpmver", "imagename", Some(("imagetype", "linux")), "Kernel RPM version (SLES only); empty means the default."),
            ad("permission", "linuximage", "permission", "imagename", Some(("imagetype", "linux")), "Mode of the /.statelite directory (default 755)."),
            ad("dump", "linuximage", "dump", "imagename", Some(("imagetype", "linux")), "Kdump target as nfs://<server>/<path>; an empty server means the node's xcatmaster."),
            ad("crashkernelsize", "linuximage", "crashkernelsize", "imagename", Some(("imagetype", "linux")), "Memory reserved for the kdump kernel (default 256M)."),
            ad("partitionfile", "linuximage", "partitionfile", "imagename", Some(("imagetype", "linux")), "Partition layout file, or prefixed s: (script), d: / s:d: (Ubuntu disk list), c: / s:c: (Ubuntu preseed); comma-separated."),
            ad("driverupdatesrc", "linuximage", "driverupdatesrc", "imagename", Some(("imagetype", "linux")), "Comma-separated driver sources as dud:<path> or rpm:<path> (rpm is the default)."),
            ad("usercomment", "linuximage", "comments", "imagename", Some(("imagetype", "linux")), "Free-form notes."),
            ad("template", "winimage", "template", "imagename", Some(("imagetype", "windows")), "Template used to build unattend.xml for installs."),
            ad("installto", "winimage", "installto", "imagename", Some(("imagetype", "windows")), "Target disk:partition (default 0:1 BIOS, 0:3 UEFI; a bare number is the disk)."),
            ad("partitionfile", "winimage", "partitionfile", "imagename", Some(("imagetype", "windows")), "Partition layout file with [BIOS]/[UEFI] sections (and optional [INSTALLTO])."),
            ad("winpepath", "winimage", "winpepath", "imagename", Some(("imagetype", "windows")), "WinPE path under the TFTP root, e.g. winboot/winpe1."),
            ad("nimtype", "nimimage", "nimtype", "imagename", Some(("imagetype", "NIM")), "NIM client type: standalone, diskless or dataless."),
            ad("nimmethod", "nimimage", "nimmethod", "imagename", Some(("imagetype", "NIM")), "NIM install method, e.g. rte or mksysb."),
            ad("lpp_source", "nimimage", "lpp_source", "imagename", Some(("imagetype", "NIM")), "NIM lpp_source resource."),
            ad("spot", "nimimage", "spot", "imagename", Some(("imagetype", "NIM")), "NIM SPOT resource."),
            ad("root", "nimimage", "root", "imagename", Some(("imagetype", "NIM")), "NIM root resource."),
            ad("dump", "nimimage", "dump", "imagename", Some(("imagetype", "NIM")), "NIM dump resource."),
            ad("configdump", "nimimage", "configdump", "imagename", Some(("imagetype", "NIM")), "System dump type: selective (default), full or none."),
            ad("paging", "nimimage", "paging", "imagename", Some(("imagetype", "NIM")), "NIM paging resource."),
            ad("resolv_conf", "nimimage", "resolv_conf", "imagename", Some(("imagetype", "NIM")), "NIM resolv_conf resource."),
            ad("image_data", "nimimage", "image_data", "imagename", Some(("imagetype", "NIM")), "NIM image_data resource."),
            ad("tmp", "nimimage", "tmp", "imagename", Some(("imagetype", "NIM")), "NIM tmp resource."),
            ad("home", "nimimage", "home", "imagename", Some(("imagetype", "NIM")), "NIM home resource."),
            ad("shared_home", "nimimage", "shared_home", "imagename", Some(("imagetype", "NIM")), "NIM shared_home resource."),
            ad("shared_root", "nimimage", "shared_root", "imagename", Some(("imagetype", "NIM")), "NIM shared_root resource for diskless clients."),
            ad("script", "nimimage", "script", "imagename", Some(("imagetype", "NIM")), "NIM script resource."),
            ad("fb_script", "nimimage", "fb_script", "imagename", Some(("imagetype", "NIM")), "NIM fb_script resource."),
            ad("bosinst_data", "nimimage", "bosinst_data", "imagename", Some(("imagetype", "NIM")), "NIM bosinst_data resource."),
            ad("installp_bundle", "nimimage", "installp_bundle", "imagename", Some(("imagetype", "NIM")), "Comma-separated NIM installp_bundle resources."),
            ad("otherpkgs", "nimimage", "otherpkgs", "imagename", Some(("imagetype", "NIM")), "Comma-separated installp or rpm packages (rpms prefixed R:)."),
            ad("mksysb", "nimimage", "mksysb", "imagename", Some(("imagetype", "NIM")), "NIM mksysb resource."),
            ad("usercomment", "nimimage", "comments", "imagename", Some(("imagetype", "NIM")), "Free-form notes."),
            ad("environvar", "osimage", "environvar", "imagename", None, "Comma-separated NAME=value environment variables for image scripts."),
        ],
    },
    ObjDef {
        objtype: "network",
        objkey: "netname",
        attrs: &[
            ad("netname", "networks", "netname", "netname", None, "Name of the network definition, e.g. 10_0_0_0-255_255_0_0."),
            ad("net", "networks", "net", "netname", None, "Network address, e.g. 10.0.0.0 (IPv6 prefixes allowed)."),
            ad("mask", "networks", "mask", "netname", None, "Netmask, e.g. 255.255.0.0 (or /prefix for IPv6)."),
            ad("mgtifname", "networks", "mgtifname", "netname", None, "Interface of the management/service node on this network; !remote!<nic> marks a remote network reached via DHCP relay."),
            ad("gateway", "networks", "gateway", "netname", None, "Default gateway for nodes: an IP or <xcatmaster> (the serving node's address on this net); empty means no gateway."),
            ad("dhcpserver", "networks", "dhcpserver", "netname", None, "DHCP server for this network; only set for pooled service nodes (<xcatmaster> not allowed)."),
            ad("tftpserver", "networks", "tftpserver", "netname", None, "TFTP server for this network; defaults to the DHCP server."),
            ad("nameservers", "networks", "nameservers", "netname", None, "Comma-separated DNS servers for nodes on this network; <xcatmaster> means the node's own master."),
            ad("ntpservers", "networks", "ntpservers", "netname", None, "NTP servers handed out by DHCP; defaults to the DHCP server."),
            ad("logservers", "networks", "logservers", "netname", None, "Log servers handed out by DHCP; defaults to the DHCP server."),
            ad("dynamicrange", "networks", "dynamicrange", "netname", None, "Address range (start-end) DHCP leases to unknown clients; must not overlap static node addresses."),
            ad("nodehostname", "networks", "nodehostname", "netname", None, "Regex substitution turning a node name into its host name on this network, e.g. /\\z/-secondary/."),
            ad("ddnsdomain", "networks", "ddnsdomain", "netname", None, "Domain appended to node names for dynamic DNS updates made by DHCP."),
            ad("vlanid", "networks", "vlanid", "netname", None, "VLAN ID of this network, if any."),
            ad("domain", "networks", "domain", "netname", None, "DNS domain of this network, e.g. cluster.com."),
            ad("staticrange", "networks", "staticrange", "netname", None, "Range (start-end) from which discovery assigns static IPs to new nodes; must not overlap dynamicrange."),
            ad("staticrangeincrement", "networks", "staticrangeincrement", "netname", None, "Step between addresses taken from staticrange."),
            ad("mtu", "networks", "mtu", "netname", None, "MTU for the network; networks sharing a NIC need the same MTU."),
            ad("usercomment", "networks", "comments", "netname", None, "Free-form notes."),
        ],
    },
    ObjDef {
        objtype: "route",
        objkey: "routename",
        attrs: &[
            ad("routename", "routes", "routename", "routename", None, "Route name."),
            ad("net", "routes", "net", "routename", None, "Destination network address."),
            ad("mask", "routes", "mask", "routename", None, "Destination netmask (or prefix length for IPv6)."),
            ad("gateway", "routes", "gateway", "routename", None, "Gateway, usually a service node."),
            ad("ifname", "routes", "ifname", "routename", None, "Interface towards the gateway (required for IPv6)."),
            ad("usercomment", "routes", "comments", "routename", None, "Free-form notes."),
        ],
    },
    ObjDef {
        objtype: "policy",
        objkey: "priority",
        attrs: &[
            ad("priority", "policy", "priority", "priority", None, "Rule priority and identifier; lower numbers are evaluated first (1.0 before 4.1 before 4.9)."),
            ad("name", "policy", "name", "priority", None, "User the rule applies to; * (default) means every user."),
            ad("host", "policy", "host", "priority", None, "Client host the rule applies to; * (default) means any host."),
            ad("commands", "policy", "commands", "priority", None, "Commands the rule applies to; * (default) means all."),
            ad("noderange", "policy", "noderange", "priority", None, "Noderange the rule applies to; * means all nodes (ignored by the *def commands)."),
            ad("parameters", "policy", "parameters", "priority", None, "Regex matched against command arguments; * means any (ignored by the *def commands)."),
            ad("time", "policy", "time", "priority", None, "Allowed time ranges (not implemented)."),
            ad("rule", "policy", "rule", "priority", None, "allow (permit), trusted (permit and trust identity claims; for xcatd peers), anything else denies."),
            ad("usercomment", "policy", "comments", "priority", None, "Free-form notes."),
        ],
    },
    ObjDef {
        objtype: "notification",
        objkey: "filename",
        attrs: &[
            ad("filename", "notification", "filename", "filename", None, "Perl module or command invoked on a change."),
            ad("tables", "notification", "tables", "filename", None, "Comma-separated tables to watch."),
            ad("tableops", "notification", "tableops", "filename", None, "Operations to watch: a (add), d (delete), u (update)."),
            ad("comments", "notification", "comments", "filename", None, "Free-form notes."),
        ],
    },
    ObjDef {
        objtype: "monitoring",
        objkey: "name",
        attrs: &[
            ad("name", "monitoring", "name", "name", None, "Monitoring plug-in name (module under lib/perl/xCAT_monitoring)."),
            ad("nodestatmon", "monitoring", "nodestatmon", "name", None, "y/yes/1 if the plug-in feeds node status into xCAT; anything else means no."),
            ad("comments", "monitoring", "comments", "name", None, "Free-form notes."),
            ad("disable", "monitoring", "disable", "name", None, "Set to yes or 1 to disable (comment out) this row."),
        ],
    },
    ObjDef {
        objtype: "eventlog",
        objkey: "recid",
        attrs: &[
            ad("recid", "eventlog", "recid", "recid", None, "Record number, assigned automatically."),
            ad("eventtime", "eventlog", "eventtime", "recid", None, "When the event happened."),
            ad("eventtype", "eventlog", "eventtype", "recid", None, "Event type."),
            ad("monitor", "eventlog", "monitor", "recid", None, "Monitoring plug-in that saw the event."),
            ad("monnode", "eventlog", "monnode", "recid", None, "Node that was monitoring."),
            ad("node", "eventlog", "node", "recid", None, "Node where the event happened."),
            ad("application", "eventlog", "application", "recid", None, "Application that reported the event."),
            ad("component", "eventlog", "component", "recid", None, "Component where the event happened."),
            ad("id", "eventlog", "id", "recid", None, "Resource or location the event concerns."),
            ad("severity", "eventlog", "severity", "recid", None, "informational, warning or critical."),
            ad("message", "eventlog", "message", "recid", None, "Full event text."),
            ad("rawdata", "eventlog", "rawdata", "recid", None, "Raw data attached to the event."),
            ad("comments", "eventlog", "comments", "recid", None, "Free-form notes."),
            ad("disable", "eventlog", "disable", "recid", None, "Not used for log rows; tabprune cannot prune rows set to yes or 1."),
        ],
    },
    ObjDef {
        objtype: "auditlog",
        objkey: "recid",
        attrs: &[
            ad("recid", "auditlog", "recid", "recid", None, "Record number, assigned automatically."),
            ad("audittime", "auditlog", "audittime", "recid", None, "When the command was run."),
            ad("userid", "auditlog", "userid", "recid", None, "User who ran the command."),
            ad("clientname", "auditlog", "clientname", "recid", None, "Host the command came from."),
            ad("clienttype", "auditlog", "clienttype", "recid", None, "Client kind: cli, java, webui or other."),
            ad("command", "auditlog", "command", "recid", None, "Command name (site auditskipcmds controls which are logged)."),
            ad("noderange", "auditlog", "noderange", "recid", None, "Noderange the command was run against."),
            ad("args", "auditlog", "args", "recid", None, "Command arguments."),
            ad("status", "auditlog", "status", "recid", None, "Allowed or Denied."),
            ad("comments", "auditlog", "comments", "recid", None, "Free-form notes."),
            ad("disable", "auditlog", "disable", "recid", None, "Not used for log rows; tabprune cannot prune rows set to yes or 1."),
        ],
    },
    ObjDef {
        objtype: "boottarget",
        objkey: "bprofile",
        attrs: &[
            ad("bprofile", "boottarget", "bprofile", "bprofile", None, "Profile name; nodes with nodetype.os=boottarget and this nodetype.profile use this row."),
            ad("kernel", "boottarget", "kernel", "bprofile", None, "Kernel (or chained loader such as memdisk) to boot."),
            ad("initrd", "boottarget", "initrd", "bprofile", None, "Initial ramdisk (or disk image when kernel is memdisk) to boot."),
            ad("kcmdline", "boottarget", "kcmdline", "bprofile", None, "Kernel arguments."),
            ad("comments", "boottarget", "comments", "bprofile", None, "Free-form notes."),
        ],
    },
    ObjDef {
        objtype: "zone",
        objkey: "zonename",
        attrs: &[
            ad("zonename", "zone", "zonename", "zonename", None, "Zone name."),
            ad("sshkeydir", "zone", "sshkeydir", "zonename", None, "Directory with the zone's root SSH keys."),
            ad("sshbetweennodes", "zone", "sshbetweennodes", "zonename", None, "yes/1 (default) or no/0: passwordless SSH between nodes of the zone."),
            ad("defaultzone", "zone", "defaultzone", "zonename", None, "yes/1 if nodes without a zone belong to this one."),
            ad("usercomment", "zone", "comments", "zonename", None, "Free-form notes."),
        ],
    },
    ObjDef {
        objtype: "rack",
        objkey: "rackname",
        attrs: &[
            ad("rackname", "rack", "rackname", "rackname", None, "Rack name."),
            ad("displayname", "rack", "displayname", "rackname", None, "Alternative name (PCM only)."),
            ad("num", "rack", "num", "rackname", None, "Rack number."),
            ad("height", "rack", "height", "rackname", None, "Capacity in rack units."),
            ad("room", "rack", "room", "rackname", None, "Room the rack is in."),
            ad("usercomment", "rack", "comments", "rackname", None, "Free-form notes."),
        ],
    },
    ObjDef {
        objtype: "osdistro",
        objkey: "osdistroname",
        attrs: &[
            ad("osdistroname", "osdistro", "osdistroname", "osdistroname", None, "Unique name, e.g. rhels8.6-x86_64."),
            ad("basename", "osdistro", "basename", "osdistroname", None, "OS base name, e.g. rhels."),
            ad("majorversion", "osdistro", "majorversion", "osdistroname", None, "Major version, e.g. 8."),
            ad("minorversion", "osdistro", "minorversion", "osdistroname", None, "Minor version, e.g. 6."),
            ad("arch", "osdistro", "arch", "osdistroname", None, "Architecture, e.g. x86_64."),
            ad("type", "osdistro", "type", "osdistroname", None, "Linux or AIX."),
            ad("dirpaths", "osdistro", "dirpaths", "osdistroname", None, "Comma-separated directories holding the distro media."),
        ],
    },
    ObjDef {
        objtype: "osdistroupdate",
        objkey: "osupdatename",
        attrs: &[
            ad("osupdatename", "osdistroupdate", "osupdatename", "osupdatename", None, "Update name."),
            ad("osdistroname", "osdistroupdate", "osdistroname", "osupdatename", None, "Distro the update applies to."),
            ad("dirpath", "osdistroupdate", "dirpath", "osupdatename", None, "Directory holding the update."),
            ad("downloadtime", "osdistroupdate", "downloadtime", "osupdatename", None, "When the update was downloaded."),
            ad("usercomment", "osdistroupdate", "comments", "osupdatename", None, "Free-form notes."),
        ],
    },
    ObjDef {
        objtype: "kit",
        objkey: "kitname",
        attrs: &[
            ad("kitname", "kit", "kitname", "kitname", None, "Unique kit name generated when the kit is added."),
            ad("basename", "kit", "basename", "kitname", None, "Kit base name."),
            ad("description", "kit", "description", "kitname", None, "Kit description."),
            ad("version", "kit", "version", "kitname", None, "Kit version."),
            ad("release", "kit", "release", "kitname", None, "Kit release."),
            ad("ostype", "kit", "ostype", "kitname", None, "OS type: Linux or AIX."),
            ad("isinternal", "kit", "isinternal", "kitname", None, "1 if the kit is for internal use."),
            ad("kitdeployparams", "kit", "kitdeployparams", "kitname", None, "File of default deployment parameters added to osimages using this kit."),
            ad("kitdir", "kit", "kitdir", "kitname", None, "Kit install directory on the management node."),
        ],
    },
    ObjDef {
        objtype: "kitrepo",
        objkey: "kitreponame",
        attrs: &[
            ad("kitreponame", "kitrepo", "kitreponame", "kitreponame", None, "Unique repository name generated when the kit is added."),
            ad("kitname", "kitrepo", "kitname", "kitreponame", None, "Kit the repository belongs to."),
            ad("osbasename", "kitrepo", "osbasename", "kitreponame", None, "OS distro base name it targets."),
            ad("osmajorversion", "kitrepo", "osmajorversion", "kitreponame", None, "OS major version it targets."),
            ad("osminorversion", "kitrepo", "osminorversion", "kitreponame", None, "OS minor version it targets; empty means all."),
            ad("osarch", "kitrepo", "osarch", "kitreponame", None, "OS architecture it targets."),
            ad("compat_osbasenames", "kitrepo", "compat_osbasenames", "kitreponame", None, "Other compatible OS base names."),
            ad("kitrepodir", "kitrepo", "kitrepodir", "kitreponame", None, "Repository directory on the management node."),
        ],
    },
    ObjDef {
        objtype: "kitcomponent",
        objkey: "kitcompname",
        attrs: &[
            ad("kitcompname", "kitcomponent", "kitcompname", "kitcompname", None, "Unique component name, generated when its kit is added."),
            ad("description", "kitcomponent", "description", "kitcompname", None, "Component description."),
            ad("kitname", "kitcomponent", "kitname", "kitcompname", None, "Kit the component belongs to."),
            ad("kitreponame", "kitcomponent", "kitreponame", "kitcompname", None, "Kit repository the component belongs to."),
            ad("basename", "kitcomponent", "basename", "kitcompname", None, "Component base name."),
            ad("version", "kitcomponent", "version", "kitcompname", None, "Component version."),
            ad("release", "kitcomponent", "release", "kitcompname", None, "Component release."),
            ad("serverroles", "kitcomponent", "serverroles", "kitcompname", None, "Server roles it can be installed on: mgtnode, servicenode, compute."),
            ad("kitpkgdeps", "kitcomponent", "kitpkgdeps", "kitcompname", None, "Comma-separated packages the component depends on."),
            ad("prerequisite", "kitcomponent", "prerequisite", "kitcompname", None, "Prerequisite packages/scripts (ospkgdeps, preinstall, preupgrade, preuninstall)."),
            ad("driverpacks", "kitcomponent", "driverpacks", "kitcompname", None, "Comma-separated full driver package file names."),
            ad("kitcompdeps", "kitcomponent", "kitcompdeps", "kitcompname", None, "Comma-separated kit components it depends on."),
            ad("postbootscripts", "kitcomponent", "postbootscripts", "kitcompname", None, "Comma-separated postbootscripts it adds."),
            ad("genimage_postinstall", "kitcomponent", "genimage_postinstall", "kitcompname", None, "Comma-separated genimage postinstall scripts it adds."),
            ad("exlist", "kitcomponent", "exlist", "kitcompname", None, "Exclude-list file for diskless images."),
        ],
    },
    ObjDef {
        objtype: "firmware",
        objkey: "cfgfile",
        attrs: &[
            ad("cfgfile", "firmware", "cfgfile", "cfgfile", None, "Firmware configuration file to use."),
            ad("comments", "firmware", "comments", "cfgfile", None, "Free-form notes."),
            ad("disable", "firmware", "disable", "cfgfile", None, "Set to yes or 1 to disable (comment out) this row."),
        ],
    },
    ObjDef {
        objtype: "pdu",
        objkey: "node",
        attrs: &[
            ad("node", "pdu", "node", "node", Some(("nodetype", "pdu")), "PDU node name or address the settings apply to."),
            ad("nodetype", "pdu", "nodetype", "node", Some(("nodetype", "pdu")), "Node type (pdu)."),
            ad("outlet", "pdu", "outlet", "node", Some(("nodetype", "pdu")), "Number of outlets."),
        ],
    },
    ObjDef {
        objtype: "taskstate",
        objkey: "node",
        attrs: &[
            ad("node", "taskstate", "node", "node", None, "Node name."),
            ad("command", "taskstate", "command", "node", None, "Command being run."),
            ad("state", "taskstate", "state", "node", None, "Task state, e.g. callback or running."),
            ad("pid", "taskstate", "pid", "node", None, "Process id handling the request."),
            ad("reserve", "taskstate", "reserve", "node", None, "Lock marker for the node."),
            ad("disable", "taskstate", "disable", "node", None, "Set to yes or 1 to disable (comment out) this row."),
        ],
    },
];

/// The object type named `objtype`.
pub fn object(objtype: &str) -> Option<&'static ObjDef> {
    OBJECTS.iter().find(|o| o.objtype == objtype)
}

#[cfg(test)]
mod tests {
    use super::super::schema;
    use super::*;
    use std::collections::HashSet;

    fn one<'a>(objtype: &str, attr: &str, only_if: Option<(&str, &str)>) -> &'a AttrDef {
        let o = object(objtype).unwrap_or_else(|| panic!("no object type {objtype}"));
        let found: Vec<_> = o
            .attrs_named(attr)
            .filter(|a| a.only_if == only_if)
            .collect();
        assert_eq!(found.len(), 1, "{objtype}.{attr} {only_if:?}");
        found[0]
    }

    fn check(a: &AttrDef, table: &str, column: &str, key: &str) {
        assert_eq!(
            (a.table, a.column, a.key_column),
            (table, column, key),
            "attr {}",
            a.attr
        );
    }

    #[test]
    fn every_mapping_names_real_columns() {
        let mut types = HashSet::new();
        for o in OBJECTS {
            assert!(
                types.insert(o.objtype),
                "duplicate object type {}",
                o.objtype
            );
            assert!(!o.attrs.is_empty(), "{} has no attributes", o.objtype);
            let mut seen = HashSet::new();
            for a in o.attrs {
                let t = schema::table(a.table)
                    .unwrap_or_else(|| panic!("{}.{}: no table {}", o.objtype, a.attr, a.table));
                assert!(
                    t.col_index(a.column).is_some(),
                    "{}.{}: no column {}.{}",
                    o.objtype,
                    a.attr,
                    a.table,
                    a.column
                );
                assert!(
                    t.col_index(a.key_column).is_some(),
                    "{}.{}: no key {}.{}",
                    o.objtype,
                    a.attr,
                    a.table,
                    a.key_column
                );
                assert!(!a.description.is_empty(), "{}.{}", o.objtype, a.attr);
                assert!(
                    seen.insert((a.attr, a.only_if)),
                    "{}.{} {:?} twice",
                    o.objtype,
                    a.attr,
                    a.only_if
                );
                if let Some((k, v)) = a.only_if {
                    assert!(!k.is_empty() && !v.is_empty());
                    assert!(
                        o.attrs.iter().any(|b| b.attr == k),
                        "{}.{}: only_if on unknown {k}",
                        o.objtype,
                        a.attr
                    );
                }
            }
        }
        for t in [
            "node",
            "group",
            "osimage",
            "network",
            "route",
            "policy",
            "notification",
            "monitoring",
            "boottarget",
            "zone",
            "rack",
            "osdistro",
            "osdistroupdate",
            "kit",
            "kitrepo",
            "kitcomponent",
            "firmware",
            "pdu",
            "taskstate",
        ] {
            assert!(object(t).is_some(), "missing object type {t}");
        }
        assert!(object("site").is_none());
    }

    #[test]
    fn objkeys() {
        let keys: Vec<_> = [
            "node", "group", "osimage", "network", "route", "policy", "firmware",
        ]
        .iter()
        .map(|t| object(t).unwrap().objkey)
        .collect();
        assert_eq!(
            keys,
            [
                "node",
                "groupname",
                "imagename",
                "netname",
                "routename",
                "priority",
                "cfgfile"
            ]
        );
    }

    #[test]
    fn counts_match_schema_pm() {
        // Schema.pm: node 233 entries, group 227 (6 nodegroup + 221 shared), less the 10 unmapped
        // ppcdirect passwd.* entries each.
        assert_eq!(object("node").unwrap().attrs.len(), 223);
        assert_eq!(object("group").unwrap().attrs.len(), 217);
        assert_eq!(object("osimage").unwrap().attrs.len(), 68);
        assert_eq!(object("network").unwrap().attrs.len(), 19);
        let node = object("node").unwrap();
        let group = object("group").unwrap();
        // The shared tail is identical.
        let shared = 211;
        for (n, g) in node.attrs[node.attrs.len() - shared..]
            .iter()
            .zip(&group.attrs[group.attrs.len() - shared..])
        {
            assert_eq!(
                (n.attr, n.table, n.column, n.key_column, n.only_if),
                (g.attr, g.table, g.column, g.key_column, g.only_if)
            );
        }
        assert_eq!(node.attrs[0].attr, "node");
        assert_eq!(node.attrs[11].attr, "usercomment");
        assert_eq!(node.attrs[12].attr, "nodetype");
        assert_eq!(group.attrs[6].attr, "nodetype");
    }

    #[test]
    fn node_spot_checks() {
        check(one("node", "ip", None), "hosts", "ip", "node");
        check(one("node", "mac", None), "mac", "mac", "node");
        check(one("node", "netboot", None), "noderes", "netboot", "node");
        check(one("node", "groups", None), "nodelist", "groups", "node");
        check(
            one("node", "usercomment", None),
            "nodelist",
            "comments",
            "node",
        );
        check(
            one("node", "bmc", Some(("mgt", "ipmi"))),
            "ipmi",
            "bmc",
            "node",
        );
        check(
            one("node", "bmc", Some(("mgt", "openbmc"))),
            "openbmc",
            "bmc",
            "node",
        );
        check(
            one("node", "bmcusername", Some(("mgt", "ipmi"))),
            "ipmi",
            "username",
            "node",
        );
        check(
            one("node", "supportproxydhcp", None),
            "noderes",
            "proxydhcp",
            "node",
        );
        check(
            one("node", "setupdhcp", None),
            "servicenode",
            "dhcpserver",
            "node",
        );
        check(one("node", "unit", None), "nodepos", "u", "node");
        check(
            one("node", "switchtype", Some(("nodetype", "switch"))),
            "switches",
            "switchtype",
            "switch",
        );
        check(
            one("node", "username", Some(("nodetype", "hmc"))),
            "ppchcp",
            "username",
            "hcp",
        );
        check(
            one("node", "username", Some(("nodetype", "mm"))),
            "mpa",
            "username",
            "mpa",
        );
        check(
            one("node", "hwtype", Some(("mgt", "zvm"))),
            "ppc",
            "nodetype",
            "node",
        );
        check(
            one("node", "nodetype", None),
            "nodetype",
            "nodetype",
            "node",
        );
        check(
            one("node", "nodetype", Some(("nodetype", "pdu"))),
            "pdu",
            "nodetype",
            "node",
        );
        let bmc: Vec<_> = object("node")
            .unwrap()
            .attrs_named("bmc")
            .map(|a| a.only_if.unwrap().1)
            .collect();
        assert_eq!(bmc, ["ipmi", "openbmc"]);
        assert_eq!(object("node").unwrap().attrs_named("passwd.HMC").count(), 0);
        let names = object("node").unwrap().attr_names();
        assert_eq!(names.iter().filter(|n| **n == "hwtype").count(), 1);
    }

    #[test]
    fn group_spot_checks() {
        check(
            one("group", "members", None),
            "nodegroup",
            "members",
            "groupname",
        );
        check(
            one("group", "groupname", None),
            "nodegroup",
            "groupname",
            "groupname",
        );
        check(
            one("group", "wherevals", None),
            "nodegroup",
            "wherevals",
            "groupname",
        );
        check(
            one("group", "usercomment", None),
            "nodegroup",
            "comments",
            "groupname",
        );
        check(one("group", "mgt", None), "nodehm", "mgt", "node");
        check(one("group", "ip", None), "hosts", "ip", "node");
        check(
            one("group", "bmc", Some(("mgt", "ipmi"))),
            "ipmi",
            "bmc",
            "node",
        );
        assert_eq!(object("group").unwrap().attrs_named("groups").count(), 0);
    }

    #[test]
    fn other_spot_checks() {
        check(
            one("osimage", "template", Some(("imagetype", "linux"))),
            "linuximage",
            "template",
            "imagename",
        );
        check(
            one("osimage", "template", Some(("imagetype", "windows"))),
            "winimage",
            "template",
            "imagename",
        );
        check(
            one("osimage", "osvers", None),
            "osimage",
            "osvers",
            "imagename",
        );
        check(
            one("osimage", "dump", Some(("imagetype", "NIM"))),
            "nimimage",
            "dump",
            "imagename",
        );
        check(one("network", "net", None), "networks", "net", "netname");
        check(
            one("network", "usercomment", None),
            "networks",
            "comments",
            "netname",
        );
        check(
            one("route", "gateway", None),
            "routes",
            "gateway",
            "routename",
        );
        check(one("policy", "rule", None), "policy", "rule", "priority");
        check(
            one("firmware", "cfgfile", None),
            "firmware",
            "cfgfile",
            "cfgfile",
        );
        check(
            one("pdu", "outlet", Some(("nodetype", "pdu"))),
            "pdu",
            "outlet",
            "node",
        );
        check(
            one("taskstate", "reserve", None),
            "taskstate",
            "reserve",
            "node",
        );
        check(
            one("boottarget", "kcmdline", None),
            "boottarget",
            "kcmdline",
            "bprofile",
        );
        let net: Vec<_> = object("network")
            .unwrap()
            .attrs
            .iter()
            .map(|a| a.attr)
            .collect();
        assert_eq!(
            net,
            [
                "netname",
                "net",
                "mask",
                "mgtifname",
                "gateway",
                "dhcpserver",
                "tftpserver",
                "nameservers",
                "ntpservers",
                "logservers",
                "dynamicrange",
                "nodehostname",
                "ddnsdomain",
                "vlanid",
                "domain",
                "staticrange",
                "staticrangeincrement",
                "mtu",
                "usercomment"
            ]
        );
    }

    #[test]
    fn only_if_is_a_whole_word_match() {
        assert!(only_if_matches("ppc", "ppc"));
        assert!(only_if_matches("ppc", "ppc,osi"));
        assert!(only_if_matches("osi", "ppc,osi"));
        assert!(!only_if_matches("ppc", "ppc64"));
        assert!(!only_if_matches("ppc", "lpar"));
        assert!(!only_if_matches("ipmi", "openbmc"));
        assert!(!only_if_matches("ipmi", ""));
        assert!(only_if_matches("NIM", "NIM"));
        assert!(!only_if_matches("NIM", "nim"));
        assert!(only_if_matches("hmc", "x_hmc hmc"));
        let bmc = one("node", "bmc", Some(("mgt", "ipmi")));
        assert!(bmc.applies(Some("ipmi")));
        assert!(!bmc.applies(Some("openbmc")));
        assert!(!bmc.applies(None));
        assert!(one("node", "ip", None).applies(None));
    }

    #[test]
    fn descriptions_come_from_the_schema() {
        let a = one("node", "mac", None);
        assert_eq!(
            Some(a.description),
            schema::table("mac").unwrap().description("mac")
        );
    }
}
