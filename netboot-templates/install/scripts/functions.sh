# bootherd: how an installing node talks to its management node. HTTP first (curl, else wget);
# when neither gets through and bash is running, xCAT's line protocol on port 3002.
BOOTHERD_MASTER="#XCATVAR:MASTER_IP#"
BOOTHERD_HTTPPORT="#XCATVAR:HTTPPORT#"
BOOTHERD_IPORT="#XCATVAR:XCATIPORT#"

# bootherd_fetch URL FILE: downloads with retries; non-zero when it could not.
bootherd_fetch() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsS --retry 5 --retry-connrefused --retry-delay 3 --connect-timeout 10 --max-time 300 -o "$2" "$1"
        return
    fi
    command -v wget >/dev/null 2>&1 || return 127
    bootherd_try=0
    while [ "$bootherd_try" -lt 5 ]; do
        wget -q -O "$2" "$1" && return 0
        bootherd_try=$((bootherd_try + 1))
        sleep 3
    done
    return 1
}

# bootherd_tell next | bootherd_tell installstatus STATE: reports to the management node.
bootherd_tell() {
    case "$1" in
    next) bootherd_path=/xcat/node/next ;;
    installstatus) bootherd_path="/xcat/node/installstatus/$2" ;;
    *) return 2 ;;
    esac
    bootherd_fetch "http://$BOOTHERD_MASTER:$BOOTHERD_HTTPPORT$bootherd_path" /dev/null && return 0
    command -v bash >/dev/null 2>&1 || return 1
    # Port 3002: the server says "ready", takes one line, answers "done".
    bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 1
        read -r -t 30 reply <&3 || exit 1
        echo "$2" >&3
        read -r -t 30 reply <&3' "$BOOTHERD_MASTER" "$BOOTHERD_IPORT" "$*"
}
