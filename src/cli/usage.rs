//! xCAT's command-line conventions, applied before any command parses its arguments: `-h`,
//! `--help` and `-?` print the command's usage (xCAT's text, naming the command as it was
//! invoked) and exit 0; `-v`, `--version` (and Getopt::Long's `-version`) print the version and
//! exit 0; a command that needs arguments and got none prints its usage with xCAT's exit code.
//! A malformed command line prints the usage too and exits 1, as xCAT's commands do.

use std::ffi::OsString;
use std::process::ExitCode;

/// What a command does when it is given no arguments at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoArgs {
    /// It runs (tabdump lists the tables, nodels lists the nodes, …).
    Run,
    /// It prints its usage and exits with this code.
    Usage(u8),
}

/// One command's usage text. `%CMD%` stands for the name the command was invoked by.
pub struct CmdUsage {
    pub name: &'static str,
    pub text: &'static str,
    pub noargs: NoArgs,
}

const fn u(name: &'static str, noargs: NoArgs, text: &'static str) -> CmdUsage {
    CmdUsage { name, text, noargs }
}

use NoArgs::{Run, Usage};

const DEFS_TYPES: &str = "auditlog boottarget eventlog firmware group kit kitcomponent kitrepo monitoring network node notification osdistro osdistroupdate osimage policy rack route site taskstate zone zvmivp";

/// xCAT's usage texts (tabutils.pm, DBobjectdefs.pm, Usage.pm, the man pages' synopses).
pub static USAGES: &[CmdUsage] = &[
    u("tabdump", Run, "Usage: %CMD% [-d] [table]\n       %CMD%      [table]\n       %CMD% [-f <filename>]  [table]\n       %CMD% [-n <# of records>]  [auditlog | eventlog]\n       %CMD% [-w attr==val [-w attr=~val] ...] [table]\n       %CMD% [-w attr==val [-w attr=~val] ...] [-f <filename>] [table]\n       %CMD% [-?|-h|--help]\n       %CMD% {-v|--version}\n       %CMD% "),
    u("tabrestore", Usage(1), "Usage: %CMD% [-a] <tablename>.csv\n       %CMD% [-?|-h|--help]\n       %CMD% [-v|--version]"),
    u("tabch", Usage(1), "Usage: %CMD%\n       To add or update rows for tables:\n       %CMD% keycolname=keyvalue[,keycolname=keyvalue...] tablename.colname=newvalue [tablename.colname=newvalue...]\n       To delete rows from tables:\n       %CMD% -d|--delete keycolname=keyvalue[,keycolname=keyvalue...] tablename [tablename...]\n         keycolname=keyvalue   a column name-and-value pair \n         that identifies the rows in a table to be changed.\n         tablename.colname=newvalue \n         the new value for the specified row and column of the table.\n       %CMD% [-h|--help]\n       %CMD% [-v|--version]"),
    u("chtab", Usage(1), "Usage: %CMD%\n       To add or update rows for tables:\n       %CMD% keycolname=keyvalue[,keycolname=keyvalue...] tablename.colname=newvalue [tablename.colname=newvalue...]\n       To delete rows from tables:\n       %CMD% -d|--delete keycolname=keyvalue[,keycolname=keyvalue...] tablename [tablename...]\n         keycolname=keyvalue   a column name-and-value pair \n         that identifies the rows in a table to be changed.\n         tablename.colname=newvalue \n         the new value for the specified row and column of the table.\n       %CMD% [-h|--help]\n       %CMD% [-v|--version]"),
    u("tabedit", Usage(1), "Usage: %CMD% <tablename>\n       %CMD% [-?|-h|--help]"),
    u("gettab", Usage(1), "Usage: %CMD% [-H|--with-fieldname] key=value,...  table.attribute ...\n       %CMD% [-?|-h|--help]"),
    u("tabgrep", Usage(1), "Usage: %CMD% nodename\n       %CMD% [-?|-h|--help]"),
    u("tabprune", Run, "Usage: %CMD% <tablename> [-V] -a\n       %CMD% <tablename> [-V] -n <# of records>\n       %CMD% <tablename> [-V] -i <recid>\n       %CMD% <tablename> [-V] -p <percent>\n       %CMD% <tablename> [-V] -d <# of days>\n       %CMD% [-h|--help]\n       %CMD% [-v|--version]\n       tables supported:eventlog,auditlog,unless -a which supports all tables\n       -d option only supported for eventlog,auditlog"),
    u("dumpxCATdb", Run, " %CMD% -h \n %CMD% -v \n %CMD% [-a] [-V] <-p> [path to backup directory] \n %CMD% -b [-V] <-p> [path to backup directory]"),
    u("restorexCATdb", Run, " %CMD%  -h \n %CMD% -v \n %CMD% [-a] [-V] <-p> [path to restore .csv files]\n %CMD% -b [-V] <-t> [timestamp on restore backup file]  <-p> [path to restore backup file]"),
    u("nodels", Run, "Usage:\n  %CMD% [noderange] [-b|--blame] [-H|--with-fieldname] [table.attribute | shortname] [-S][...]\n  %CMD% {-v|--version}\n  %CMD% [-?|-h|--help]"),
    u("nodeadd", Usage(1), "Usage: %CMD% <noderange> groups=<groupnames> [table.column=value] [...]\n       %CMD% {-v | --version}\n       %CMD% [-? | -h | --help]"),
    u("nodech", Usage(1), "Usage: %CMD% <noderange> table.column=value [...]\n       %CMD% {-d | --delete} <noderange> <table> [...]\n       %CMD% {-v | --version}\n       %CMD% [-? | -h | --help]"),
    u("nodegrpch", Usage(1), "Usage: %CMD% <group1,group2,...> [table.column=value] [...]\n       %CMD% {-v | --version}\n       %CMD% [-? | -h | --help]"),
    u("noderm", Usage(1), "Usage:\n  %CMD% noderange\n  %CMD% {-v|--version}\n  %CMD% [-?|-h|--help]"),
    u("nodepurge", Usage(1), "Usage:\n  %CMD% [-h| --help | -v | --version]\n  %CMD% <noderange>"),
    u("mkdef", Usage(0), "\nUsage: %CMD% - Create xCAT data object definitions.\n\n  %CMD% [-h | --help ] [-t object-types]\n\n  %CMD% [-V | --verbose] [-t object-types] [--template template-object-name]\n      [-o object-names] [-z|--stanza ]\n      [-d | --dynamic] [-w attr==val [-w attr=~val] ...]\n      [-f | --force] [noderange] [attr=val [attr=val...]]\n\nThe following data object types are supported by xCAT:\n\n%TYPES%\n\n\nUse the '-h' option together with the '-t <object-types>' option to\n get a list of valid attribute names for each object type.\n"),
    u("chdef", Usage(0), "\nUsage: %CMD% - Change xCAT data object definitions.\n\n  %CMD% [-h | --help ] [-t object-types]\n\n  %CMD% [-t object-types] [-o object-names] [-n new-name] [node]\n\n  %CMD% [-V | --verbose] [-t object-types] [-o object-names] [-d | --dynamic]\n    [-z | --stanza] [-m | --minus] [-p | --plus]\n    [-w attr==val [-w attr=~val] ... ] [noderange] [attr=val [attr=val...]]\n\n\nThe following data object types are supported by xCAT:\n\n%TYPES%\n\n\nUse the '-h' option together with the '-t <object-types>' option to\n get a list of valid attribute names for each object type.\n"),
    u("lsdef", Run, "\nUsage: %CMD% - List xCAT data object definitions.\n\n  %CMD% [-h | --help ] [-t object-types]\n\n  %CMD% [-l|--long] [-a|--all] [-t *object-types*] [-z|--stanza]\n        [-i attr-list] [--template [template-object-name]] \n\n  %CMD% [-V | --verbose] [-t object-types] [-o object-names]\n        [ -l | --long] [-s | --short] [-a | --all] [-z | --stanza ] [-S]\n        [-i attr-list] [-w attr==val [-w attr=~val] ...] [noderange]\n\n\nThe following data object types are supported by xCAT:\n\n%TYPES%\n\n\nUse the '-h' option together with the '-t <object-types>' option to\n get a list of valid attribute names for each object type.\n"),
    u("rmdef", Usage(0), "\nUsage: %CMD% - Remove xCAT data object definitions.\n\n  %CMD% [-h | --help ] [-t object-types]\n\n  %CMD% [-V | --verbose] [-t object-types] [-a | --all] [-f | --force]\n    [-o object-names] [-C | --cleanup] [noderange]\n\n\nThe following data object types are supported by xCAT:\n\n%TYPES%\n\n\nUse the '-h' option together with the '-t <object-types>' option to\n get a list of valid attribute names for each object type.\n"),
    u("makehosts", Run, "Usage: %CMD% [-n] [noderange] [-l|--longnamefirst] [-d] [-m|--mactolinklocal]\n       %CMD% {-h|--help}"),
    u("makenetworks", Run, "Usage:\n  %CMD% [-h | --help ]\n  %CMD% [-v | --version]\n  %CMD% [-V | --verbose] [-d | --display]"),
    u("makedhcp", Usage(1), "Usage: %CMD% -n\n\t%CMD% -a\n\t%CMD% -a -d\n\t%CMD% -d noderange\n\t%CMD% <noderange> [-s statements]\n\t%CMD% -q\n\t%CMD% [-h|--help]"),
    u("makedns", Run, "\n  %CMD% - sets up domain name services (DNS).\n  Usage: \n\t%CMD% [-h|--help ]\n\t%CMD% [-V|--verbose]\n\t%CMD% [-V|--verbose] [-e|--external] [-n|--new ] [noderange]\n\t%CMD% [-V|--verbose] [-e|--external] [-d|--delete noderange]\n"),
    u("xdsh", Usage(1), "Usage: %CMD% <noderange> [-e] [-E environment_file] [-f fanout] [-l userID] [-o node_options] [-Q] [-s] [-t timeout] [-v] command_list\n       %CMD% [-h | -v]"),
    u("xdcp", Usage(1), "Usage: %CMD% <noderange> [-f fanout] [-l userID] [-o node_options] [-p] [-P] [-R] [-t timeout] [-v] source_file... target_path\n       %CMD% <noderange> [-F synclist] [-f fanout] [-l userID] [-o node_options] [-t timeout] [-v]\n       %CMD% [-h | -v]"),
    u("psh", Usage(1), "Usage: %CMD% [-i <interface>] [-l <user>] [-f <fanout>] [--nonodecheck] [-t <timeout value in seconds>] <noderange> <command>"),
    u("pscp", Usage(1), "Usage: %CMD% [ -f fanout] [-i <SUFFIX>] [SCP OPTIONS...] FILE... <NODERANGE>:<DESTINATION>"),
    u("prsync", Usage(1), "Usage: %CMD% filename [filename ...] noderange:destinationdirectory\n       %CMD%  [rsync-opts] [filename filename ...] [directory directory ...]\n       noderange:destinationdirectory\n       %CMD% {-h|--help|-v|--version}"),
    u("pping", Usage(1), "Usage: %CMD% [-i|--interface interfaces][-f|--use_fping] noderange\n       %CMD% -h|--help\n       %CMD% -v|--version"),
    u("xdshbak", Run, "Usage: %CMD%   [-c | -x | -h | -q] \n-c : compresses the output by listing unique output only once.\n-h : help  \n-x : omit extra header output for each node.  Can not be used with -c. \n-q : quiet mode."),
    u("makeknownhosts", Usage(1), "Usage: %CMD% <noderange> [-r|--remove|-d|--delete] [-V|--verbose]\n       %CMD% [-h|--help]"),
    u("reventlog", Usage(1), "Usage: %CMD% <noderange> [all [-s]|n [-s]|clear]\n       %CMD% [-h|--help|-v|--version]"),
    u("rbeacon", Usage(1), "Usage: %CMD% <noderange> [on|off|blink|stat]\n       %CMD% [-h|--help|-v|--version]"),
    u("rspreset", Usage(1), "Usage: %CMD% <noderange>\n       %CMD% [-h|--help|-v|--version]"),
    u("rinstall", Usage(1), "Usage:\n   %CMD% <noderange> [boot | shell | runcmd=<command>] [-c|--console] [-u|--uefimode] [-V|--verbose]\n   %CMD% <noderange> [osimage[=<imagename>]] [--noupdateinitrd] [--ignorekernelchk] [-c|--console] [-u|--uefimode] [-V|--verbose]\n   %CMD% <noderange> runimage=<task>\n   %CMD% [-h|--help|-v|--version]"),
    u("rnetboot", Usage(1), "Usage: %CMD% <noderange> [-V|--verbose] [-u|--uefimode]\n       %CMD% [-h|--help|-v|--version]"),
    u("rcons", Usage(1), "Usage: %CMD% <noderange> [-f] [--log <file>]\n       %CMD% [-h|--help|-v|--version]"),
    u("makeconservercf", Run, "Usage: %CMD% [-V|--verbose] [-d|--delete] [-t|--trust <hosts>] [-C|--cleanup] [noderange]\n       %CMD% [-h|--help|-v|--version]"),
    u("nodeset", Usage(1), "Usage:\n   %CMD% <noderange> [shell|boot|runcmd=bmcsetup|osimage[=<imagename>]|offline|shutdown|stat]\n   %CMD% [-h|--help|-v|--version]"),
    u("updatenode", Usage(1), "Usage:\n    %CMD% [-h|--help|-v|--version | -g|--genmypost]\n    or\n    %CMD% <noderange> [-V|--verbose] [-s|--sn] [-P|--scripts [script1,script2,...]]\n    or\n    %CMD% <noderange> [-V|--verbose] [script1,script2,...]"),
    u("rpower", Usage(1), "Usage:\n    Common:\n       %CMD% <noderange> [--nodeps] [on|onstandby|off|suspend|reset|stat|state|boot] [-V|--verbose] [-m table.colum==expectedstatus][-m table.colum==expectedstatus...] [-r <retrycount>] [-t <timeout>]\n       %CMD% [-h|--help|-v|--version]\n    BMC (using IPMI):\n       %CMD% noderange [on|off|softoff|reset|boot|cycle|stat|state|status|wake|suspend [-w timeout] [-o] [-r]]"),
    u("rsetboot", Usage(1), "Usage: %CMD% <noderange> [net|hd|cd|floppy|def|stat] [-u] [-p]\n       %CMD% [-h|--help|-v|--version]"),
    u("rinv", Usage(1), "Usage:\n    Common:\n       %CMD% <noderange> [all|model|serial] [-V|--verbose]\n       %CMD% [-h|--help|-v|--version]\n    BMC/MPA specific:\n       %CMD% <noderange> [model|serial|asset|vpd|deviceid|guid|firm|dimm|mprom|all]"),
    u("rvitals", Usage(1), "Usage:\n    Common:\n       %CMD% [-h|--help|-v|--version]\n    BMC specific:\n       %CMD% noderange {temp|voltage|wattage|fanspeed|power|leds|all}"),
    u("litefile", Usage(1), "Usage: %CMD% <noderange>\n       %CMD% [-h|--help|-v|--version]"),
    u("litetree", Usage(1), "Usage: %CMD% <noderange>\n       %CMD% [-h|--help|-v|--version]"),
    u("liteimg", Usage(1), "Usage:\n  %CMD% [-h| --help]\n  %CMD% [-v| --version]\n  %CMD% <imagename>"),
    u("lslite", Usage(0), "\n  %CMD% - Display a summary of the statelite information \n\t\tthat has been defined for a noderange or an image.\n  Usage: \n\t%CMD% [-h | --help]\nor\n\t%CMD% [-V | --verbose] [-i imagename] | [noderange]"),
    u("nodediscoverstart", Usage(1), "Usage:\n    %CMD% [-h|--help|-v|--version]\n    %CMD% noderange=<noderange> [hostiprange=<hostiprange>] [bmciprange=<bmciprange>] [groups=<groups>] [rack=<rack>] [chassis=<chassis>] [height=<height>] [unit=<unit>] [osimage=<osimagename>] [-n|--dns] [-s|--skipbmcsetup] [-V|--verbose]"),
    u("nodediscoverstop", Run, "Usage:\n    %CMD% [-h|--help|-v|--version]"),
    u("nodediscoverstatus", Run, "Usage:\n    %CMD% [-h|--help|-v|--version]"),
    u("nodediscoverls", Run, "Usage:\n    %CMD% [-t seq|profile|switch|blade|manual|undef|all] [-l]\n    %CMD% [-u uuid] [-l]\n    %CMD% [-h|--help|-v|--version]"),
    u("nodediscoverdef", Usage(1), "Usage:\n    %CMD% -u uuid -n node\n    %CMD% -r -u uuid\n    %CMD% -r -t {seq|profile|switch|blade|manual|undef|all}\n    %CMD% [-h|--help|-v|--version]"),
    u("mknb", Run, "Usage: %CMD% <arch>\n       %CMD% [-h|--help|-v|--version]"),
    u("regnotif", Usage(0), "Usage:\n  %CMD% filename tablename[,tablename]... [-o|--operation tableop[,tableop][,tableop]]]\n       where tableop can be 'a' for add, 'd' for delete and 'u' for update\n  %CMD% [-h|--help|-v|--version]"),
    u("lsxcatd", Usage(1), "       %CMD% [-v|--version]\n       %CMD% [-h|--help]\n       %CMD% [-d|--database]\n       %CMD% [-t|--nodetype]\n       %CMD% [-a|--all]"),
    u("unregnotif", Usage(0), "Usage:\n  %CMD% filename\n  %CMD% [-h|--help|-v|--version]"),
    u("copycds", Usage(1), "Usage: %CMD% [{-n|--name|--osver} distroname] [{-a|--arch} architecture] [{-p|--path} ospkgpath] [-o|--noosimage] [-w|--nonoverwrite] {iso | device-path} ...\n       %CMD% [-i|--inspection] {iso | device-path}\n       %CMD% [-h|--help]"),
    u("genimage", Run, "Usage:\n  %CMD% [-o osver] [-a arch] [-p profile] [-i nodebootif] [-n nodenetdrivers] [--onlyinitrd] [-r otherifaces] [-k kernelver] [-g krpmver] [-m statelite] [-l rootlimitsize] [--permission permission] [--interactive] [--dryrun] [--ignorekernelchk] [--noupdate] imagename\n  %CMD% [-h | --help | -v | --version]"),
    u("packimage", Usage(1), "Usage:\n  %CMD% [-h| --help]\n  %CMD% [-v| --version]\n  %CMD% [-m|--method cpio|tar|squashfs] [-c|--compress gzip|pigz|xz] [--nosyncfiles] imagename"),
    u("rmimage", Usage(1), "Usage:\n  %CMD% [-h | --help]\n  %CMD% [-V | --verbose] imagename [--xcatdef]"),
    u("imgexport", Usage(1), "Usage:\n  %CMD% [-h| --help]\n  %CMD% image_name [destination] [[-e|--extra file:dir] ... ] [-p|--postscripts node_name] [-R|--remotehost user@host] [-v|--verbose]"),
    u("imgimport", Usage(1), "Usage:\n  %CMD% [-h|--help]\n  %CMD% bundle_file_name [-p|--postscripts nodelist] [-f|--profile new_profile] [-R|--remotehost user@host] [-v|--verbose]"),
    u("imgcapture", Usage(1), "Usage:\n  %CMD% [-h|--help | -v|--version]\n  %CMD% node -t|--type sysclone -o|--osimage osimage [-e|--exlist file] [-V|--verbose]"),
    u("monadd", Usage(1), "Usage:\n  %CMD% name [-n|--nodestatmon] [-s|--settings settings]\n  %CMD% [-h|--help|-v|--version]\n     name is the name of the monitoring plug-in module to be added.\n       Use 'monls -a' command to list all the monitoring plug-in names.\n     settings is used by the monitoring plug-in to customize its behavior.\n       Format: -s key1=value1 -s key2=value2 ... \n       Use 'monls name -d' command to look for the possible settings for a plug-in.\n  Example: monadd xcatmon -n -s ping-interval=10"),
    u("monrm", Usage(1), "Usage:\n  %CMD% name\n  %CMD% [-h|--help|-v|--version]\n      name is the name of the monitoring plug-in module registered in the monitoring table."),
    u("monls", Run, "Usage:\n  %CMD% name [-d|--description]\n  %CMD% [-a|--all] [-d|--description]\n  %CMD% [-h|--help|-v|--version]\n     name is the name of the monitoring plug-in module."),
    u("monstart", Usage(1), "Usage:\n  %CMD% name [noderange] [-r|--remote]\n  %CMD% [-h|--help|-v|--version]\n     name is the name of the monitoring plug-in module to be invoked.\n       Use 'monls -a' command to list all the monitoring plug-in names.\n     noderange is a range of nodes to be monitored. The default is all nodes.\n      -r|--remote indicates that both monservers and the nodes need to be called\n       to start the monitoring. The default is monservers only."),
    u("monstop", Usage(1), "Usage:\n  %CMD% name [noderange] [-r|--remote]\n  %CMD% [-h|--help|-v|--version]\n      name is the name of the monitoring plug-in module registered in the monitoring table."),
    u("startmon", Usage(1), "Usage:\n  %CMD% name [-n|--nodestatmon] [-s|--settings tag=value,tag=value...]\n  %CMD% [-h|--help|-v|--version]"),
    u("stopmon", Usage(1), "Usage:\n  %CMD% name\n  %CMD% [-h|--help|-v|--version]"),
    u("nodestat", Usage(1), "Usage:\n  %CMD% [noderange] [-m|--usemon] [-p|powerstat] [-f|--usefping] [-u|--updatedb]\n  %CMD% [-h|--help|-v|--version]"),
    u("switchprobe", Run, "Usage: %CMD% [<noderange>] [-V|--verbose | -c|--check]"),
];

/// Commands whose `-v` means `--verbose`.
const VERBOSE_V: &[&str] = &["imgexport", "imgimport", "xdsh", "xdcp"];

/// Commands whose trailing words are a remote command or copy arguments: only the words before
/// them are looked at here (`psh n1 ls -h` runs `ls -h`). The number is how many plain words
/// (the noderange) may come before that tail.
const COMMAND_TAIL: &[(&str, usize)] = &[
    ("xdsh", 1),
    ("xdcp", 1),
    ("psh", 1),
    ("pscp", 0),
    ("prsync", 0),
];

/// The usage entry for a command name.
pub fn find(cmd: &str) -> Option<&'static CmdUsage> {
    USAGES.iter().find(|u| u.name == cmd)
}

/// The usage text with the invoked name filled in.
pub fn text(u: &CmdUsage, invoked: &str) -> String {
    u.text
        .replace("%CMD%", invoked)
        .replace("%TYPES%", DEFS_TYPES)
}

/// xCAT's version line (`xCAT::Version->Version()` gives "Version 2.16.5 (git commit …)").
pub fn version() -> String {
    format!("Version {} (bootherd)", env!("CARGO_PKG_VERSION"))
}

/// Handles `-h`/`--help`/`-?`, `-v`/`--version`/`-version` and the no-argument usage for an
/// xCAT command given the arguments after the command name. Returns the exit code when the
/// command line was handled here.
pub fn early(u: &CmdUsage, invoked: &str, rest: &[OsString]) -> Option<ExitCode> {
    let args: Vec<String> = rest
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .take_while(|a| a != "--")
        .collect();
    let none_given = args.is_empty();
    let args: Vec<String> = match COMMAND_TAIL.iter().find(|(n, _)| *n == u.name) {
        Some((_, words)) => {
            let mut seen = 0;
            args.into_iter()
                .take_while(|a| {
                    if a.starts_with('-') {
                        return true;
                    }
                    seen += 1;
                    seen <= *words
                })
                .collect()
        }
        None => args,
    };
    if args.iter().any(|a| a == "-h" || a == "--help" || a == "-?") {
        // The definition commands with -t list the type's attributes instead (xCAT's
        // processArgs: `lsdef -t node -h [-i attrs]`).
        if ["lsdef", "mkdef", "chdef", "rmdef"].contains(&u.name) {
            let value_of = |flag: &str| {
                args.iter()
                    .position(|a| a == flag)
                    .and_then(|i| args.get(i + 1))
                    .cloned()
            };
            if let Some(types) = value_of("-t") {
                crate::out!(
                    "{}",
                    super::defs::attribute_help(&types, value_of("-i").as_deref())
                );
                return Some(ExitCode::SUCCESS);
            }
        }
        crate::outln!("{}", text(u, invoked));
        return Some(ExitCode::SUCCESS);
    }
    // imgexport and imgimport use -v for --verbose, as xCAT's do.
    let v_is_version = !VERBOSE_V.contains(&u.name);
    if args
        .iter()
        .any(|a| (a == "-v" && v_is_version) || a == "--version" || a == "-version")
    {
        if u.name == "tabch" || u.name == "chtab" {
            crate::outln!("{invoked} :{}", version());
        } else {
            crate::outln!("{}", version());
        }
        return Some(ExitCode::SUCCESS);
    }
    // tabch takes key=value arguments that may start with anything but '-': an option it does
    // not know is a malformed command line (xCAT's GetOptions fails and prints the usage).
    if (u.name == "tabch" || u.name == "chtab")
        && args
            .first()
            .is_some_and(|a| a.starts_with('-') && a != "-d" && a != "--delete")
    {
        return Some(bad_command_line(u, invoked));
    }
    if none_given {
        if let Usage(code) = u.noargs {
            crate::outln!("{}", text(u, invoked));
            return Some(ExitCode::from(code));
        }
    }
    None
}

/// After a malformed command line: xCAT prints the usage and exits 1.
pub fn bad_command_line(u: &CmdUsage, invoked: &str) -> ExitCode {
    crate::outln!("{}", text(u, invoked));
    ExitCode::from(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_xcat_usage_naming_it() {
        for c in super::super::COMMANDS {
            let u = find(c).unwrap_or_else(|| {
                panic!("no usage for {c}: add xCAT's usage text to usage::USAGES")
            });
            let t = text(u, "INVOKED");
            assert!(t.contains("INVOKED"), "{c}: {t}");
            assert!(
                t.contains("Usage") || t.contains(" -h") || t.contains("[-h"),
                "{c}: {t}"
            );
        }
    }
}
