//! Does a `switch.port` value name this interface? xCAT's `namesmatch` (`MacMap.pm`), as a pure
//! function of the configured value and the name the switch reports (ifName, else ifDescr).
//!
//! Admins write ports the way their switch's CLI prints them, or shorter: `Gi1/0/7`, `1/0/7`,
//! `7`, `Ethernet1/7`. xCAT's rule, followed here:
//!
//! 1. identical strings match;
//! 2. 3Com (`RMON Port 07 on unit 1`) and Dell 6248 (`Unit 1 Port 7`) names match on the port
//!    number alone;
//! 3. otherwise the reported name must *end* with the configured value, preceded by a non-digit
//!    (so `7` matches `Gi1/0/7` but not `Gi1/0/17`), optionally followed by `.0` (Juniper's
//!    `ge-0/0/7.0` unit);
//! 4. and an interface that is not a cabled front port never matches by suffix: VLAN interfaces,
//!    `Nu`ll, consoles, stacking ports, trunks and port-channels (`Po`, `LAG`, HP `Trk`), `CPU`,
//!    `XGE` aggregates and management ports. (An exact match in step 1 still wins: an admin who
//!    writes `Port-channel1` means it.)
//!
//! Abbreviations are not expanded: `Gi1/0/7` does not match `GigabitEthernet1/0/7` (it does not
//! end with it); `1/0/7` matches both. The comparison is case-sensitive, as xCAT's.

/// Whether the configured port `cfg` (a `switch.port` value) names the interface the switch
/// reports as `snmp`.
pub fn namesmatch(cfg: &str, snmp: &str) -> bool {
    if cfg == snmp {
        return true;
    }
    if cfg.is_empty() {
        return false;
    }
    // 3Com: "RMON Port 07 on unit 1". xCAT tests the digits with `=~ $cfg`, a regex search that
    // lets "1" match port 17; the port number itself must equal the value here.
    if let Some(rest) = snmp.strip_prefix("RMON Port ") {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let after = &rest[digits.len()..];
        if !digits.is_empty() && after.starts_with(" on unit ") {
            let unit = &after[" on unit ".len()..];
            if unit.starts_with(|c: char| c.is_ascii_digit()) {
                let n = digits.strip_prefix('0').filter(|d| !d.is_empty());
                if n.unwrap_or(&digits) == cfg {
                    return true;
                }
            }
        }
    }
    // Dell 6248: "Unit 1 Port 7".
    if let Some(rest) = snmp.strip_prefix("Unit ") {
        let mut c = rest.chars();
        if c.next().is_some_and(|d| d.is_ascii_digit()) {
            if let Some(port) = c.as_str().strip_prefix(" Port ") {
                if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port == cfg {
                    return true;
                }
            }
        }
    }
    let stem = snmp.strip_suffix(".0").filter(|s| s.ends_with(cfg));
    let Some(before) = stem.or(Some(snmp)).and_then(|s| s.strip_suffix(cfg)) else {
        return false;
    };
    // The value must not be the tail of a longer number ("7" in "17"), and something must precede
    // it (a bare "7" was handled by the exact match).
    if before.chars().last().is_none_or(|c| c.is_ascii_digit()) {
        return false;
    }
    !not_a_front_port(snmp)
}

/// xCAT's blacklist of interface names that are not cabled front ports.
pub fn not_a_front_port(snmp: &str) -> bool {
    let has = |s: &str| snmp.contains(s);
    if snmp.to_ascii_lowercase().contains("vl")
        || has("Nu")
        || has("onsole")
        || has("Stack")
        || has("Trunk")
    {
        return true;
    }
    // "Po" is a port-channel unless it is the "Port #3" / "Port3" of a plain port.
    let port_digit = snmp
        .match_indices("Port")
        .any(|(i, _)| snmp[i + 4..].starts_with(|c: char| c.is_ascii_digit()));
    let po_digit = snmp
        .match_indices("po")
        .any(|(i, _)| snmp[i + 2..].starts_with(|c: char| c.is_ascii_digit()));
    if (!has("Port #") && !port_digit && has("Po"))
        || po_digit
        || has("XGE")
        || has("LAG")
        || has("CPU")
    {
        return true;
    }
    has("Management") || has("Trk")
}

#[cfg(test)]
mod tests {
    use super::namesmatch;

    /// (switch.port, name the switch reports, xCAT's verdict)
    const CASES: &[(&str, &str, bool)] = &[
        // Cisco IOS style short names.
        ("Gi1/0/7", "Gi1/0/7", true),
        ("1/0/7", "Gi1/0/7", true),
        ("0/7", "Gi1/0/7", true),
        ("7", "Gi1/0/7", true),
        ("17", "Gi1/0/7", false),
        ("7", "Gi1/0/17", false),
        ("1/0/7", "Gi1/0/17", false),
        ("1/0/17", "Gi1/0/7", false),
        ("Gi1/0/17", "Gi1/0/7", false),
        // Long names: abbreviations are not expanded.
        ("GigabitEthernet1/0/7", "GigabitEthernet1/0/7", true),
        ("Gi1/0/7", "GigabitEthernet1/0/7", false),
        ("GigabitEthernet1/0/7", "Gi1/0/7", false),
        ("1/0/7", "GigabitEthernet1/0/7", true),
        ("7", "GigabitEthernet1/0/7", true),
        ("7", "TenGigabitEthernet1/0/17", false),
        // Plain numbers.
        ("7", "7", true),
        ("7", "17", false),
        ("17", "7", false),
        ("07", "7", false),
        // Nexus / Arista / Mellanox style.
        ("Ethernet1/7", "Ethernet1/7", true),
        ("1/7", "Ethernet1/7", true),
        ("7", "Ethernet1/7", true),
        ("7", "Ethernet1/17", false),
        ("Ethernet1/7", "Ethernet1/17", false),
        ("Ethernet1/7", "Eth1/7", false),
        // Juniper logical unit .0. The whole name does not match: xCAT's pattern needs a
        // character before the value.
        ("ge-0/0/7", "ge-0/0/7.0", false),
        ("0/0/7", "ge-0/0/7.0", true),
        ("7", "ge-0/0/7.0", true),
        ("7", "ge-0/0/17.0", false),
        ("7", "ge-0/0/7.1", false),
        // Not front ports: matched only exactly.
        ("1", "Vlan1", false),
        ("1", "vlan1", false),
        ("Vlan1", "Vlan1", true),
        ("1", "Port-channel1", false),
        ("1", "Po1", false),
        ("1", "po1", false),
        ("1", "StackPort1", false),
        ("1", "Stack1", false),
        ("1", "Trunk1", false),
        ("1", "Trk1", false),
        ("1", "CPU1", false),
        ("0", "Null0", false),
        ("1", "console1", false),
        ("1", "LAG 1", false),
        ("1", "XGE1", false),
        ("0", "ManagementEthernet0", false),
        ("1", "mgmt1", true),
        // "Port" followed by a number or '#' is a plain port; "Port 7" is treated as a channel.
        ("7", "Port7", true),
        ("7", "Port #7", true),
        ("7", "Port 7", false),
        // 3Com and Dell 6248 conventions.
        ("7", "RMON Port 07 on unit 1", true),
        ("17", "RMON Port 17 on unit 1", true),
        ("7", "RMON Port 17 on unit 1", false),
        ("1", "RMON Port 17 on unit 1", false),
        ("7", "Unit 1 Port 7", true),
        ("7", "Unit 1 Port 17", false),
        // Case matters; an empty value matches nothing.
        ("gi1/0/7", "Gi1/0/7", false),
        ("", "Gi1/0/7", false),
    ];

    #[test]
    fn xcat_namesmatch_cases() {
        for (cfg, snmp, want) in CASES {
            assert_eq!(
                namesmatch(cfg, snmp),
                *want,
                "namesmatch({cfg:?}, {snmp:?})"
            );
        }
    }
}
