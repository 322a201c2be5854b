# bootherd post-install, run inside the installed system: fetch this node's mypostscript and its
# postscripts, run the postscripts, set up the postboot scripts to run at first boot, and tell the
# management node the install is done so that the node boots from its disk next.
NODE="#XCATVAR:NODE#"
MASTER_IP="#XCATVAR:MASTER_IP#"
INSTALLDIR="#XCATVAR:INSTALLDIR#"
HTTPPORT="#XCATVAR:HTTPPORT#"
case "#TABLEBLANKOKAY:site:key=xcatdebugmode:value#" in
1 | 2) set -x ;;
esac

bootherd_halt() {
    # A node that cannot get its configuration must neither come up half-configured nor reboot
    # into another install: report, and stop here (as xCAT does).
    echo "bootherd: $*" >&2
    bootherd_tell installstatus failed
    while :; do sleep 3600; done
}

mkdir -p /opt/xcat /xcatpost /var/log/xcat
# Where later tools (updatenode, xcatdsklspost) find the management node.
cat >/opt/xcat/xcatinfo <<BOOTHERD_EOF
XCATSERVER=$MASTER_IP
INSTALLDIR=$INSTALLDIR
HTTPPORT=$HTTPPORT
NODE=$NODE
BOOTHERD_EOF

cd /xcatpost || bootherd_halt "cannot create /xcatpost"
bootherd_fetch "http://$BOOTHERD_MASTER:$BOOTHERD_HTTPPORT/xcat/node/getpostscript" mypostscript.raw ||
    bootherd_halt "cannot fetch this node's mypostscript from $BOOTHERD_MASTER"
grep -q '^# *postscripts-start-here' mypostscript.raw ||
    bootherd_halt "the mypostscript from $BOOTHERD_MASTER has no script list"

# The prologue (the exports) is everything outside the two script lists.
awk '/^# *postscripts-start-here/,/^# *postscripts-end-here/ { next }
     /^# *postbootscripts-start-here/,/^# *postbootscripts-end-here/ { next }
     { print }' mypostscript.raw >mypostscript.env
awk '/^# *postscripts-start-here/ { f = 1; next } /^# *postscripts-end-here/ { f = 0 }
     f && NF && $1 !~ /^#/' mypostscript.raw >postscripts.list
awk '/^# *postbootscripts-start-here/ { f = 1; next } /^# *postbootscripts-end-here/ { f = 0 }
     f && NF && $1 !~ /^#/' mypostscript.raw >postbootscripts.list

# bootherd_get NAME: one script from the management node's postscripts directory.
bootherd_get() {
    [ -f "/xcatpost/$1" ] && return 0
    case "$1" in
    /* | *..*) return 1 ;;
    esac
    mkdir -p "/xcatpost/$(dirname "$1")"
    bootherd_fetch "http://$MASTER_IP:$HTTPPORT$INSTALLDIR/postscripts/$1" "/xcatpost/$1" &&
        chmod 0755 "/xcatpost/$1"
}
# Many xCAT postscripts source this library.
bootherd_get xcatlib.sh || echo "bootherd: no xcatlib.sh on $MASTER_IP" >&2
cat postscripts.list postbootscripts.list | while read -r bootherd_script bootherd_args; do
    bootherd_get "$bootherd_script" || echo "bootherd: cannot download postscript $bootherd_script" >&2
done

# bootherd_runner LIST KIND: a script that sets the prologue's environment and runs each entry of
# LIST from /xcatpost with its arguments; a failure is logged and remembered, the rest still run.
bootherd_runner() {
    echo '#!/bin/sh'
    cat /xcatpost/mypostscript.env
    cat <<'BOOTHERD_EOF'
cd /xcatpost || exit 1
PATH=/xcatpost:$PATH
bootherd_rc=0
run_ps() {
    bootherd_kind=$1
    shift
    if [ ! -f "/xcatpost/$1" ]; then
        echo "bootherd: $bootherd_kind $1 does not exist" >&2
        bootherd_rc=1
        return 0
    fi
    echo "bootherd: running $bootherd_kind $*"
    ./"$@"
    bootherd_ret=$?
    echo "bootherd: $bootherd_kind $1 returned $bootherd_ret"
    [ "$bootherd_ret" -eq 0 ] || bootherd_rc=$bootherd_ret
}
BOOTHERD_EOF
    while read -r bootherd_line; do
        echo "run_ps $2 $bootherd_line"
    done <"$1"
    echo 'exit $bootherd_rc'
}
bootherd_runner /xcatpost/postscripts.list postscript >/xcatpost/runpostscripts
bootherd_runner /xcatpost/postbootscripts.list postbootscript >/xcatpost/mypostscript.post
chmod 0700 /xcatpost/runpostscripts /xcatpost/mypostscript.post

# First boot: run the postboot scripts and report, once (every boot when site.runbootscripts is yes).
cat >/opt/xcat/bootherd-postboot <<'BOOTHERD_EOF'
#!/bin/sh
#INCLUDE:scripts/functions.sh#
bootherd_tell installstatus postbooting
if /bin/sh /xcatpost/mypostscript.post >>/var/log/xcat/xcat.log 2>&1; then
    bootherd_tell installstatus booted
else
    bootherd_tell installstatus failed
fi
case "$(. /xcatpost/mypostscript.env >/dev/null 2>&1; echo "$RUNBOOTSCRIPTS")" in
1 | y | Y | yes | YES) ;;
*) systemctl disable bootherd-postboot.service ;;
esac
BOOTHERD_EOF
chmod 0755 /opt/xcat/bootherd-postboot
mkdir -p /etc/systemd/system/multi-user.target.wants
cat >/etc/systemd/system/bootherd-postboot.service <<'BOOTHERD_EOF'
[Unit]
Description=bootherd postboot scripts
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart=/opt/xcat/bootherd-postboot
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
BOOTHERD_EOF
ln -sf ../bootherd-postboot.service /etc/systemd/system/multi-user.target.wants/bootherd-postboot.service

if ! /bin/sh /xcatpost/runpostscripts >>/var/log/xcat/xcat.log 2>&1; then
    echo "POSTSCRIPTS_RC=1" >>/opt/xcat/xcatinfo
    echo "bootherd: a postscript failed; see /var/log/xcat/xcat.log" >&2
fi

# Always, or the node would install again at its next boot.
bootherd_tell next || echo "bootherd: could not tell $BOOTHERD_MASTER the install is done" >&2
