# bootherd: choose the install disk for anaconda — the first block device that is not removable,
# virtual or optical — and write the partitioning and bootloader commands the kickstart includes.
bootherd_disk=
for bootherd_dev in /sys/block/*; do
    bootherd_name=${bootherd_dev##*/}
    case "$bootherd_name" in
    loop* | ram* | zram* | sr* | fd* | dm-* | md* | nbd*) continue ;;
    esac
    [ "$(cat "$bootherd_dev/removable" 2>/dev/null)" = 1 ] && continue
    [ "$(cat "$bootherd_dev/size" 2>/dev/null || echo 0)" -gt 0 ] 2>/dev/null || continue
    bootherd_disk=$bootherd_name
    break
done
bootherd_kopts="#XCATVAR:PERSKCMDLINE#"
{
    if [ -n "$bootherd_disk" ]; then
        echo "ignoredisk --only-use=$bootherd_disk"
        echo "clearpart --all --initlabel --drives=$bootherd_disk"
    else
        echo "clearpart --all --initlabel"
    fi
    echo "zerombr"
    echo "autopart --type=lvm --nohome"
    echo "bootloader${bootherd_disk:+ --boot-drive=$bootherd_disk}${bootherd_kopts:+ --append=\"$bootherd_kopts\"}"
} >/tmp/bootherd-disk
echo "bootherd: install disk ${bootherd_disk:-(anaconda's choice)}"
