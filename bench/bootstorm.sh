#!/usr/bin/env bash
# Boot storm: N simulated PXE nodes (bench/bootstorm), each with its own MAC and address, started within
# SPREAD seconds, against bootherd and against the classic stacks, in one run on one machine:
#
#   bootherd   bootherd serve (DHCP, TFTP, HTTP; boot files rendered from its store)
#   dnsmasq    dnsmasq 2.90 (DHCP + TFTP) + nginx (HTTP), per-node files on disk
#   dhcpd      ISC dhcpd 4.4 + tftpd-hpa + nginx, as xCAT deploys them (xCAT's per-host filename rules)
#
#   sudo bench/bootstorm.sh [STACKS...]     STACKS ⊂ {bootherd, dnsmasq, dhcpd}, default all three
#   environment: NODES ("100 500 1000")        storm sizes for the xNBA flavour (iPXE: kernel+initrd by HTTP)
#                PXELINUX_NODES ("100")         storm sizes for the pxelinux flavour (everything by TFTP,
#                                               lockstep: 48 MB × N in 1408-byte blocks; "" to skip)
#                STATELITE_NODES ("100 500 1000") storm sizes for the statelite variant ("" to skip): each node
#                                               mounts the image root over NFS from its own address and reads the
#                                               files a boot reads (STATELITE_FILES files, STATELITE_MB in all),
#                                               against bootherd's NFS and nfs-ganesha 4 (FSAL_VFS), the same tree
#                STATELITE_FILES (400) STATELITE_MB (32)
#                SPREAD (10)                    seconds over which the N nodes power on
#                KERNEL_MB (8) INITRD_MB (40)   the synthetic kernel and initrd
#                ROUNDS (1)                     storms per stack and size (interleaved)
#                BOOTHERD_BIN                   a bootherd binary to measure (default: cargo build --release)
#                BOOTHERD_SITE                  extra site settings for bootherd, "key=value …" (e.g. httpbulksends=16)
#
# What each node does (bench/bootstorm/src/main.rs): the PXE ROM's DHCP (retries at 4, 8, 16, 32 s), its TFTP
# of the boot file (tsize probe, then blksize 1456), then either iPXE's DHCP (user class xNBA) + HTTP script,
# kernel, initrd on one keep-alive connection, or pxelinux's TFTP (tsize + blksize 1408, pxelinux's own
# retransmission table) of ldlinux.c32, its config search (UUID, 01-MAC, hex IP…), kernel and initrd.
# Every stack gets the same nodes (static MAC → address), the same files and the same boot files: the classic
# stacks' per-node xNBA scripts and pxelinux configs are what `bootherd nodeset … show` renders, written to disk.
#
# Server CPU: every process of a stack runs in a cpuacct cgroup of its own (forks of tftpd-hpa and nginx's
# workers included); CPU seconds = the cgroup's usage from just before the first node powers on to the end of
# the storm. Topology: namespaces bhb-srv (bhb0 10.98.0.1/16) and bhb-cli (bhb1, every node's address).
# Outputs: bench/out/bootstorm/results.md (the tables), runs.csv, one timeline CSV per storm, server logs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

STACKS=("$@")
[ ${#STACKS[@]} -gt 0 ] || STACKS=(bootherd dnsmasq dhcpd)
for s in "${STACKS[@]}"; do
    case $s in bootherd | dnsmasq | dhcpd) ;; *) echo "unknown stack '$s' (bootherd, dnsmasq, dhcpd)" >&2; exit 2 ;; esac
done
[ "$(id -u)" = 0 ] || { echo "$0: run as root (network namespaces, ports 67, 69, 80)" >&2; exit 1; }
NODES=${NODES-100 500 1000}
PXELINUX_NODES=${PXELINUX_NODES-100}
STATELITE_NODES=${STATELITE_NODES-100 500 1000}
STATELITE_FILES=${STATELITE_FILES:-400}
STATELITE_MB=${STATELITE_MB:-32}
SPREAD=${SPREAD:-10}
KERNEL_MB=${KERNEL_MB:-8}
INITRD_MB=${INITRD_MB:-40}
ROUNDS=${ROUNDS:-1}
MAXN=0
for n in $NODES $PXELINUX_NODES $STATELITE_NODES; do
    [[ $n =~ ^[0-9]+$ ]] && [ "$n" -le 2500 ] || { echo "node counts: numbers up to 2500" >&2; exit 2; }
    [ "$n" -gt $MAXN ] && MAXN=$n
done

SRV_NS=bhb-srv CLI_NS=bhb-cli SRV_IF=bhb0 CLI_IF=bhb1
SRV_IP=10.98.0.1 CLI_IP=10.98.255.254
OUT=$ROOT/bench/out/bootstorm
CG=/sys/fs/cgroup/cpuacct/bootherd-bootstorm

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

PIDS=()
W=
cleanup() {
    local p n
    for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
    sleep 0.3
    for p in "${PIDS[@]}"; do kill -9 "$p" 2> /dev/null || true; done
    for n in $SRV_NS $CLI_NS; do
        for p in $(ip netns pids "$n" 2> /dev/null); do kill -9 "$p" 2> /dev/null || true; done
        ip netns del "$n" 2> /dev/null || true
    done
    for n in "$CG"/*/; do [ -d "$n" ] && rmdir "$n" 2> /dev/null; done
    [ -d "$CG" ] && rmdir "$CG" 2> /dev/null
    [ -n "$W" ] && rm -rf "$W"
    return 0
}
exec 9> /run/lock/bootherd-bench-bootstorm.lock
flock -n 9 || { echo "$0: another bench/bootstorm.sh run holds /run/lock/bootherd-bench-bootstorm.lock" >&2; exit 1; }
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -d /sys/fs/cgroup/cpuacct ] || { echo "$0: needs the cgroup v1 cpuacct controller at /sys/fs/cgroup/cpuacct" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------------
# peers: installed with apt when missing (their services are never started by us outside the namespace)
need=()
for s in "${STACKS[@]}"; do
    case $s in
    dnsmasq) command -v dnsmasq > /dev/null || need+=(dnsmasq) ;;
    dhcpd) command -v dhcpd > /dev/null || need+=(isc-dhcp-server) ;;
    esac
    [ "$s" != bootherd ] && ! command -v nginx > /dev/null && [ ! -x /usr/sbin/nginx ] && need+=(nginx)
done
if [ -n "$STATELITE_NODES" ]; then
    command -v ganesha.nfsd > /dev/null || need+=(nfs-ganesha nfs-ganesha-vfs)
    command -v rpcbind > /dev/null || need+=(rpcbind)
fi
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) > /dev/null
    if [ -d /run/systemd/system ]; then
        for svc in dnsmasq isc-dhcp-server nginx nfs-ganesha rpcbind rpcbind.socket; do systemctl disable --now "$svc" > /dev/null 2>&1 || true; done
    fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

W=$(mktemp -d /tmp/bootherd-bench-bootstorm.XXXXXX)
chmod 755 "$W"
rm -rf "$OUT"
mkdir -p "$OUT" "$W/ngx/tmp"

# tftpd-hpa from its .deb, unpacked (never installed: an installed tftpd-hpa starts a service on port 69)
TFTPD_HPA=
if [[ " ${STACKS[*]} " == *" dhcpd "* ]]; then
    if command -v in.tftpd > /dev/null && in.tftpd -V 2>&1 | grep -q tftp-hpa; then
        TFTPD_HPA=$(command -v in.tftpd)
    else
        log "unpacking tftpd-hpa into the scratch directory"
        mkdir -p "$W/debs"
        (cd "$W/debs" && apt-get download tftpd-hpa > /dev/null 2>&1) || { echo "$0: apt-get download tftpd-hpa failed" >&2; exit 1; }
        dpkg -x "$W"/debs/tftpd-hpa_*.deb "$W/tree"
        if ldd "$W/tree/usr/sbin/in.tftpd" | grep -q 'not found'; then
            (cd "$W/debs" && apt-get download libwrap0 > /dev/null 2>&1) && dpkg -x "$W"/debs/libwrap0_*.deb "$W/tree"
        fi
        TFTPD_HPA=$W/tree/usr/sbin/in.tftpd
    fi
fi

B=${BOOTHERD_BIN:-$ROOT/target/release/bootherd}
if [ -z "${BOOTHERD_BIN:-}" ]; then
    log "building bootherd (release)"
    cargo build --release --quiet
fi
log "building the simulator (bench/bootstorm)"
(cd bench/bootstorm && cargo build --release --quiet)
SIM=$ROOT/bench/bootstorm/target/release/bootstorm

# ---------------------------------------------------------------------------------------------------------
# namespaces; the client side holds every node's address (/32), so each node talks from its own
for n in $SRV_NS $CLI_NS; do
    for p in $(ip netns pids "$n" 2> /dev/null); do kill -9 "$p" 2> /dev/null || true; done
    ip netns del "$n" 2> /dev/null || true
    ip netns add "$n"
    ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    # (the neighbour table's limits, gc_thresh1-3, are the host's and are left alone: its default hard limit
    # of 1,024 entries — Warewulf's documented ARP-cache overflow — is just above the 1,000-node storm)
    ip netns exec "$n" sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
    ip -n "$n" link set lo up
done
ip -n $SRV_NS link add $SRV_IF type veth peer name $CLI_IF netns $CLI_NS
ip -n $SRV_NS addr add $SRV_IP/16 dev $SRV_IF
ip -n $CLI_NS addr add $CLI_IP/16 dev $CLI_IF
ip -n $SRV_NS link set $SRV_IF up
ip -n $CLI_NS link set $CLI_IF up

# the nodes: rRRnNN, MAC 02:00:00:00:RR:NN, address 10.98.(RR+1).(NN+1)
node_name() { printf 'r%02dn%02d' $(($1 / 100)) $(($1 % 100)); }
: > "$W/nodes.all"
for ((i = 0; i < MAXN; i++)); do
    r=$((i / 100)) k=$((i % 100))
    printf 'r%02dn%02d 02:00:00:00:%02d:%02d 10.98.%d.%d\n' $r $k $r $k $((r + 1)) $((k + 1)) >> "$W/nodes.all"
done
awk '{ print "addr add " $3 "/32 dev '$CLI_IF'" }' "$W/nodes.all" | ip -n $CLI_NS -batch -

# the files: random, world-readable; sizes of xCAT's xnba.kpxe and syslinux 6's pxelinux.0 / ldlinux.c32
T=$W/tftpboot
mkdir -p "$T/xcat/osimage/img" "$T/pxelinux.cfg" "$T/xcat/xnba/nodes"
log "writing the boot files (${KERNEL_MB} MB kernel, ${INITRD_MB} MB initrd)"
head -c 93184 /dev/urandom > "$T/xcat/xnba.kpxe"
head -c 46909 /dev/urandom > "$T/pxelinux.0"
head -c 122308 /dev/urandom > "$T/ldlinux.c32"
head -c $((KERNEL_MB * 1024 * 1024)) /dev/urandom > "$T/xcat/osimage/img/vmlinuz"
head -c $((INITRD_MB * 1024 * 1024)) /dev/urandom > "$T/xcat/osimage/img/initrd.img"
chmod -R a+rX "$T"

# bootherd's store: the network, the image, the nodes (regex rows, as a site would write them)
export BOOTHERD_DB=sqlite:$W/bootherd.db
{
    "$B" chtab key=tftpdir site.value="$T"
    "$B" chtab key=master site.value=$SRV_IP
    "$B" chtab key=dhcpinterfaces site.value=$SRV_IF
    for kv in ${BOOTHERD_SITE:-}; do "$B" chtab "key=${kv%%=*}" "site.value=${kv#*=}"; done
    "$B" mkdef -t network -o stormnet net=10.98.0.0 mask=255.255.0.0 mgtifname=$SRV_IF
    "$B" mkdef -t osimage -o img imagetype=linux provmethod=install osvers=rhels8.6 osarch=x86_64 profile=compute
    for ((r = 0; r * 100 < MAXN; r++)); do # a rack at a time: rNNn00-rNNn99 is a noderange, r00n00-r09n99 is not
        last=$((MAXN - 1 < r * 100 + 99 ? MAXN - 1 : r * 100 + 99))
        "$B" nodeadd "$(node_name $((r * 100)))-$(node_name $last)" groups=compute,all noderes.netboot=xnba
    done
    "$B" chtab node=compute 'hosts.ip=|r(\d+)n(\d+)|10.98.($1+1).($2+1)|' 'mac.mac=|r(\d+)n(\d+)|02:00:00:00:($1):($2)|'
} > "$W/bootherd-setup.log" 2>&1 || { cat "$W/bootherd-setup.log" >&2; exit 1; }
# the statelite image root: directories and files of the sizes a boot reads (a few large binaries and
# libraries, many small configuration and unit files), the same tree for both NFS servers
EXP=$W/netboot/compute/rootimg
if [ -n "$STATELITE_NODES" ]; then
    mkdir -p "$EXP"
    awk -v n="$STATELITE_FILES" -v mb="$STATELITE_MB" 'BEGIN {
        srand(14); dirs[0] = "usr/bin"; dirs[1] = "usr/lib/x86_64-linux-gnu"; dirs[2] = "usr/lib/systemd/system"
        dirs[3] = "etc"; dirs[4] = "etc/systemd/system"; dirs[5] = "usr/sbin"; dirs[6] = "usr/lib/modules/6.1/kernel/drivers/net"
        dirs[7] = "usr/share/locale"; total = 0
        for (i = 0; i < n; i++) { r = rand(); w[i] = (r < 0.6) ? 1 : (r < 0.9 ? 16 : 256); total += w[i] }
        for (i = 0; i < n; i++) printf "%s/f%04d %d\n", dirs[i % 8], i, int(w[i] / total * mb * 1048576)
    }' > "$W/bootfiles"
    while read -r f size; do
        mkdir -p "$EXP/$(dirname "$f")"
        head -c "$size" /dev/urandom > "$EXP/$f"
    done < "$W/bootfiles"
    chmod -R a+rX "$W/netboot"
    "$B" mkdef -t osimage -o lite provmethod=statelite rootimgdir="$W/netboot/compute" osvers=rhels8.6 osarch=x86_64 \
        profile=compute imagetype=linux > /dev/null
fi
defined=$("$B" nodels compute | wc -l)
[ "$defined" = "$MAXN" ] || { echo "$0: $defined nodes defined in bootherd's store, not $MAXN" >&2; exit 1; }

# the classic stacks' files for one flavour: what bootherd renders, written where xCAT would write it
write_classic_files() { # FLAVOUR(xnba|pxe)
    rm -rf "$T/xcat/xnba/nodes" "$T/pxelinux.cfg"
    mkdir -p "$T/xcat/xnba/nodes" "$T/pxelinux.cfg"
    "$B" nodeset compute show | awk -v root="$T/" '
        /^# [^ ]+: / { if (f != "") close(f); f = ""; p = $3; if (index(p, root) == 1 && $0 !~ / -> /) f = p; next }
        f != "" { print > f }'
    chmod -R a+rX "$T"
}

set_flavour() { # FLAVOUR: nodeset in bootherd's store + the classic stacks' files
    "$B" chdef -t node compute netboot="$1" > /dev/null
    "$B" nodeset compute osimage=img > /dev/null
    write_classic_files "$1"
}

# ---------------------------------------------------------------------------------------------------------
# stacks: every process in one cpuacct cgroup per stack
mkdir -p "$CG"
in_cg() { # CGROUP CMD...: run CMD in the server namespace inside cgroup CGROUP
    local g=$CG/$1
    shift
    mkdir -p "$g"
    # joined before entering the namespace: `ip netns exec` mounts a sysfs of its own, without the cgroups
    sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$g" ip netns exec $SRV_NS "$@"
}
cg_ns() { cat "$CG/$1/cpuacct.usage"; }
threads_cpu() { # CPU seconds by thread name of every process in the server namespace (living threads only)
    local p
    for p in $(ip netns pids $SRV_NS); do
        for t in /proc/$p/task/*; do
            printf '%s %s\n' "$(tr ' ' _ < "$t/comm" 2> /dev/null)" "$(sed 's/.*) //' "$t/stat" 2> /dev/null | awk '{ print $12 + $13 }')"
        done
    done | awk -v hz="$(getconf CLK_TCK)" '$2 != "" { sub(/-[0-9]+$/, "", $1); c[$1] += $2 }
        END { for (k in c) if (c[k] > 0) printf "%s=%.2f ", k, c[k] / hz }'
}
rcvbuf_errors() { # NS: UDP datagrams the namespace's kernel dropped on a full socket receive buffer
    ip netns exec "$1" awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 } else print $c }' /proc/net/snmp
}

start_nginx() {
    cat > "$W/ngx/nginx.conf" << EOF
worker_processes auto;
daemon off;
pid $W/ngx/nginx.pid;
error_log $OUT/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 30s;
    default_type application/octet-stream;
    client_body_temp_path $W/ngx/tmp/body;
    proxy_temp_path $W/ngx/tmp/proxy;
    fastcgi_temp_path $W/ngx/tmp/fastcgi;
    uwsgi_temp_path $W/ngx/tmp/uwsgi;
    scgi_temp_path $W/ngx/tmp/scgi;
    server {
        listen $SRV_IP:80 backlog=4096;
        location /tftpboot/ { alias $T/; }
    }
}
EOF
    in_cg "$1" "$NGINX" -p "$W/ngx" -e "$OUT/nginx-error.log" -c "$W/ngx/nginx.conf" > "$OUT/nginx.log" 2>&1 &
    PIDS+=($!)
}

start_bootherd() { # FLAVOUR
    (cd "$W" && in_cg bootherd env "RUST_LOG=${BOOTHERD_BENCH_LOG:-warn}" "$B" serve --no-nfs \
        > "$OUT/bootherd.log" 2>&1) &
    PIDS+=($!)
}

start_dnsmasq() { # FLAVOUR
    local boot=xcat/xnba.kpxe
    [ "$1" = pxe ] && boot=pxelinux.0
    awk '{ print $2 ",set:" $1 "," $3 "," $1 }' "$W/nodes.all" > "$W/dnsmasq.hosts"
    {
        echo "dhcp-userclass=set:ipxe,xNBA"
        echo "dhcp-boot=tag:!ipxe,$boot,,$SRV_IP"
        awk -v s=$SRV_IP '{ print "dhcp-boot=tag:ipxe,tag:" $1 ",http://" s "/tftpboot/xcat/xnba/nodes/" $1 ",," s }' "$W/nodes.all"
    } > "$W/dnsmasq.conf"
    rm -f "$W/dnsmasq.leases"
    in_cg dnsmasq dnsmasq --keep-in-foreground --conf-file="$W/dnsmasq.conf" --port=0 --no-hosts --no-resolv \
        --user=root --interface=$SRV_IF --bind-interfaces --dhcp-authoritative --no-ping --quiet-dhcp \
        --dhcp-range=10.98.0.0,static,255.255.0.0,12h --dhcp-hostsfile="$W/dnsmasq.hosts" --dhcp-lease-max=100000 \
        --dhcp-leasefile="$W/dnsmasq.leases" --enable-tftp --tftp-root="$T" --tftp-max=1024 \
        --pid-file="$W/dnsmasq.pid" --log-facility="$OUT/dnsmasq.log" > "$OUT/dnsmasq.out" 2>&1 &
    PIDS+=($!)
    start_nginx dnsmasq
}

start_dhcpd() { # FLAVOUR: dhcpd.conf as xCAT's makedhcp writes it (per-host filename by client architecture)
    local nbp='filename = "xcat/xnba.kpxe";'
    [ "$1" = pxe ] && nbp='filename = "pxelinux.0";'
    {
        echo 'option client-architecture code 93 = unsigned integer 16;'
        echo 'option user-class-identifier code 77 = string;'
        echo 'ddns-update-style none; authoritative; default-lease-time 43200; max-lease-time 43200;'
        echo "subnet 10.98.0.0 netmask 255.255.0.0 { next-server $SRV_IP; option routers $SRV_IP; }"
        awk -v s=$SRV_IP -v nbp="$nbp" -v fl="$1" '{
            printf "host %s { hardware ethernet %s; fixed-address %s; supersede host-name = \"%s\";\n", $1, $2, $3, $1
            if (fl == "xnba")
                printf "  if option user-class-identifier = \"xNBA\" and option client-architecture = 00:00 { always-broadcast on; filename = \"http://%s/tftpboot/xcat/xnba/nodes/%s\"; } else if option client-architecture = 00:00 { %s } }\n", s, $1, nbp
            else
                printf "  if option client-architecture = 00:00 { %s } }\n", nbp
        }' "$W/nodes.all"
    } > "$W/dhcpd.conf"
    : > "$W/dhcpd.leases"
    in_cg dhcpd dhcpd -4 -f -q -cf "$W/dhcpd.conf" -lf "$W/dhcpd.leases" -pf "$W/dhcpd.pid" $SRV_IF \
        > "$OUT/dhcpd.out" 2>&1 &
    PIDS+=($!)
 in_cg dhcpd env LD_LIBRARY_PATH="$W/tree/lib/x86_64-linux-gnu:$W/tree/usr/lib/x86_64-linux-gnu" "$TFTPD_HPA" -L -a $SRV_IP:69 -s -u nobody "$T" > "$OUT/tftpd-hpa.log" 2>&1 &
    PIDS+=($!)
    start_nginx dhcpd
}

start_bootherd-nfs() {
    (cd "$W" && in_cg bootherd-nfs env "RUST_LOG=${BOOTHERD_BENCH_LOG:-warn}" "$B" serve --no-dhcp --no-tftp --no-http \
        --no-status-port --no-portmapper > "$OUT/bootherd-nfs.log" 2>&1) &
    PIDS+=($!)
}

start_ganesha() { # rpcbind and ganesha in a private mount namespace (their /run), as bench/nfs.sh
    mkdir -p "$W/ganesha/recov"
    cat > "$W/ganesha/ganesha.conf" << CONF
NFS_CORE_PARAM { NFS_Port = 12049; MNT_Port = 12048; NLM_Port = 12047; Rquota_Port = 12046;
                 Enable_NLM = false; Enable_RQUOTA = false; Protocols = 3; }
NFSv4 { Graceless = true; RecoveryRoot = "$W/ganesha/recov"; }
EXPORT { Export_Id = 1; Path = "$EXP"; Pseudo = "$EXP"; Access_Type = RO;
         Squash = No_Root_Squash; SecType = sys; Protocols = 3; Transports = TCP; FSAL { Name = VFS; } }
LOG { Default_Log_Level = EVENT; }
CONF
    in_cg ganesha unshare -m --propagation private sh -c "
        mount -t tmpfs bhb-run /run && mkdir -p /run/rpcbind && (rpcbind -f &) && sleep 0.5
        exec ganesha.nfsd -F -L '$OUT/ganesha.log' -f '$W/ganesha/ganesha.conf' -p '$W/ganesha/pid' -N NIV_EVENT" &
    PIDS+=($!)
}

listening() { # PROTO PORT
    ip netns exec $SRV_NS ss -Hln -A "$1" "sport = :$2" | grep -q .
}

start_stack() { # STACK FLAVOUR
    local i
    "start_$1" "$2"
    for i in $(seq 100); do
        case $1 in
        bootherd-nfs) listening tcp 2049 && return 0 ;;
        ganesha) listening tcp 12049 && listening tcp 12048 && return 0 ;;
        *) listening udp 67 && listening udp 69 && listening tcp 80 && return 0 ;;
        esac
        sleep 0.2
    done
    log "$1 did not open its ports (see $OUT)"
    return 1
}

stop_stack() {
    local p
    for p in $(ip netns pids $SRV_NS); do kill -TERM "$p" 2> /dev/null || true; done
    for _ in $(seq 50); do [ -z "$(ip netns pids $SRV_NS)" ] && break; sleep 0.1; done
    for p in $(ip netns pids $SRV_NS); do kill -9 "$p" 2> /dev/null || true; done
    PIDS=()
    ip -n $SRV_NS neigh flush all 2> /dev/null || true
    ip -n $CLI_NS neigh flush all 2> /dev/null || true
}

CSV=$OUT/runs.csv
echo "flavour,nodes,stack,round,booted,failed,all_booted_s,p50_s,p99_s,max_s,lease_max,nbp_max,config_max,files_max,nodes_with_retransmissions,server_cpu_s,client_cpu_s,server_udp_drops,client_udp_drops,failures" > "$CSV"

NFS_ARGS=()
storm() { # STACK FLAVOUR N ROUND
    local stack=$1 fl=$2 n=$3 round=$4 c0 c1 k0 k1 x0 x1 y0 y1 line tag=$1-$2-$3-$4
    stop_stack
    start_stack "$stack" "$fl" || { echo "$fl,$n,$stack,$round,,,,,,,,,,,,,,did not start" >> "$CSV"; return; }
    sleep 1
    head -n "$n" "$W/nodes.all" > "$W/nodes"
    mkdir -p "$CG/client"
    c0=$(cg_ns "$stack") k0=$(cg_ns client) x0=$(rcvbuf_errors $SRV_NS) y0=$(rcvbuf_errors $CLI_NS)
    line=$(sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG/client" ip netns exec $CLI_NS \
        timeout 900 "$SIM" --iface $CLI_IF --nodes "$W/nodes" --spread "$SPREAD" --out "$OUT/timeline-$tag.csv" "${NFS_ARGS[@]}") || true
    c1=$(cg_ns "$stack") k1=$(cg_ns client) x1=$(rcvbuf_errors $SRV_NS) y1=$(rcvbuf_errors $CLI_NS)
    [[ $stack == bootherd* ]] && echo "$tag: $(threads_cpu)" >> "$OUT/bootherd-threads.txt"
    stop_stack
    cp "$OUT/$stack.log" "$OUT/$tag.log" 2> /dev/null || true
    local kv
    kv=$(echo "$line" | sed 's/failures="\(.*\)"$/failures=\1/')
    local nodes booted failed all_booted_s p50_s p99_s max_s lease_max nbp_max config_max files_max nodes_with_retransmissions failures
    nodes= booted= failed= all_booted_s= p50_s= p99_s= max_s= lease_max= nbp_max= config_max= files_max= nodes_with_retransmissions=
    for w in ${kv%% failures=*}; do
        case ${w%%=*} in
        nodes | booted | failed | all_booted_s | p50_s | p99_s | max_s | lease_max | nbp_max | config_max | files_max | nodes_with_retransmissions) printf -v "${w%%=*}" '%s' "${w#*=}" ;;
        esac
    done
    failures=${kv#*failures=}
    [ "$failures" = "$kv" ] && failures="simulator: ${line:-no output}"
    echo "$fl,$n,$stack,$round,$booted,$failed,$all_booted_s,$p50_s,$p99_s,$max_s,$lease_max,$nbp_max,$config_max,$files_max,$nodes_with_retransmissions,$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'),$(awk -v a="$k0" -v b="$k1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'),$((x1 - x0)),$((y1 - y0)),\"${failures//\"/}\"" >> "$CSV"
    log "$(tail -1 "$CSV")"
}

START=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for fl in xnba pxe; do
    sizes=$NODES
    [ $fl = pxe ] && sizes=$PXELINUX_NODES
    [ -n "$sizes" ] || continue
    log "== flavour $fl"
    set_flavour $fl
    for n in $sizes; do
        for ((round = 1; round <= ROUNDS; round++)); do
            for s in "${STACKS[@]}"; do storm "$s" $fl "$n" "$round"; done
        done
    done
done
for n in $STATELITE_NODES; do
    for ((round = 1; round <= ROUNDS; round++)); do
        for s in bootherd-nfs ganesha; do
            if [ $s = ganesha ]; then NFS_ARGS=(--nfs "$SRV_IP:12048:12049:$EXP" --files "$W/bootfiles")
            else NFS_ARGS=(--nfs "$SRV_IP:2049:2049:$EXP" --files "$W/bootfiles"); fi
            storm $s statelite "$n" "$round"
        done
    done
done
NFS_ARGS=()
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------------------
label() { case $1 in bootherd) echo "bootherd" ;; dnsmasq) echo "dnsmasq + nginx" ;; dhcpd) echo "ISC dhcpd + tftpd-hpa + nginx" ;; esac; }
{
    echo "# Boot storm: bootherd vs the classic stacks"
    echo
    echo "$START, $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), kernel $(uname -r), load average $LOAD0 before, $LOAD1 after."
    echo "bootherd $(git -C "$ROOT" rev-parse --short HEAD 2> /dev/null || echo '?'); dnsmasq $(dnsmasq --version 2> /dev/null | head -1 | awk '{ print $3 }'); ISC dhcpd $(dhcpd --version 2>&1 | awk '{ print $NF }'); $([ -x "$NGINX" ] && "$NGINX" -v 2>&1 | sed 's|.*: ||'); tftpd-hpa $([ -n "$TFTPD_HPA" ] && "$TFTPD_HPA" -V 2>&1 | awk '{ sub(/,$/, "", $2); print $2 }')."
    echo "Nodes power on evenly over ${SPREAD} s; kernel ${KERNEL_MB} MiB, initrd ${INITRD_MB} MiB; clients and servers share the machine's CPUs."
    echo
    echo "| boot | nodes | stack | booted | failed | all booted (s) | per node p50 / p99 / max (s) | slowest lease / boot file / config / kernel+initrd (s) | nodes that retransmitted | server CPU (s) | clients' CPU (s) | UDP drops server / clients |"
    echo "|---|---:|---|---:|---:|---:|---|---|---:|---:|---:|---|"
    awk -F, 'NR > 1 {
        fl = ($1 == "xnba") ? "xNBA: TFTP + HTTP" : ($1 == "pxe" ? "pxelinux: TFTP" : "statelite: NFS root")
        printf "| %s | %s | %s | %s | %s | %s | %s / %s / %s | %s / %s / %s / %s | %s | %s | %s | %s / %s |\n", fl, $2, $3, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19
    }' "$CSV" | sed "s/NaN/–/g; s/| bootherd-nfs |/| bootherd (NFS) |/; s/| ganesha |/| nfs-ganesha $(dpkg-query -W -f '${Version}' nfs-ganesha 2> /dev/null) |/; s/| dnsmasq |/| $(label dnsmasq) |/; s/| dhcpd |/| $(label dhcpd) |/"
    echo
    echo "Per node: from power-on to the initrd's last byte. Slowest phases: the longest lease (power-on → ROM's ACK),"
    echo "boot file (→ NBP received), config (→ xNBA script or pxelinux config), kernel+initrd (config → done)."
    [ -n "$STATELITE_NODES" ] && echo "Statelite: power-on → export mounted (config column) → every file read (${STATELITE_FILES} files, ${STATELITE_MB} MiB: LOOKUP per new directory, GETATTR and 64 KiB READs per file)."
    echo "Failures by reason, every storm's timeline: bench/out/bootstorm/runs.csv, timeline-*.csv."
} > "$OUT/results.md"
echo
cat "$OUT/results.md"
