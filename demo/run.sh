#!/bin/bash
# demo/run.sh - qcow2c at work without an OpenNebula install (`make demo`).
#
# Installs the driver into a scratch ONE_LOCATION, makes a scratch image
# datastore, and plays oned's part: every step sends the base64
# DS_DRIVER_ACTION_DATA message a real oned sends (built from messages
# captured from oned 7.5, tests/fixtures/oned/ds) to the installed action,
# exactly as oned's datastore driver runs it, and shows the reply oned would
# read. Then it checks the result with qemu-img.
#
#   BUILD=build bash demo/run.sh [WORKDIR]
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$src/build}
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/qcow2c-demo.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd)
fx=$src/tests/fixtures/oned/ds
dslocation=$work/var/lib/one//datastores
ds=$work/var/lib/one/datastores/107
one=$work/one
remotes=$one/var/remotes

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }

# msg CAPTURE [--set XPATH=VALUE]...: the message oned would send
msg() {
    local capture=$1
    shift
    "$build/harness/ds-msg" "$fx/$capture/stdin.decoded.xml" \
        --subst "/var/lib/one//datastores=$dslocation" \
        --subst "/var/tmp/lab-images=$work/images" "$@"
}

# oned ACTION ID MESSAGE: run the action as oned does; print oned's view
oned() {
    local reply
    reply=$(printf '%s' "$3" | "$build/harness/oned-ds" "$remotes" "$1" "$2") || true
    printf '%s\n' "$reply" | sed 's/^/   oned <- /'
    REPLY_LINE=$(printf '%s\n' "$reply" | grep -E "^${1^^} (SUCCESS|FAILURE) " | tail -n1)
    case $REPLY_LINE in
        *" SUCCESS "*) return 0 ;;
        *) return 1 ;;
    esac
}

payload() { cut -d' ' -f4- <<<"$REPLY_LINE"; }

bold "install qcow2c into a scratch OpenNebula tree ($one)"
ONE_LOCATION=$one "$src/install.sh" --build "$build" >"$work/install.log"
grep -E 'installed|links' "$work/install.log" | sed 's/^/   /'
printf 'LOCK_DIR="%s/locks"\n' "$work" >"$remotes/etc/qcow2c/qcow2c.conf"
mkdir -p "$ds" "$work/images"

bold "make two images the way a user would bring them"
qemu-img create -q -f qcow2 "$work/images/os.qcow2" 1G
qemu-io -f qcow2 -c 'write -P 0x5a 0 64M' -c 'write -P 0xa5 512M 32M' "$work/images/os.qcow2" >/dev/null
say "os.qcow2: qcow2, 1 GiB virtual, 96 MiB written ($(du -h "$work/images/os.qcow2" | cut -f1) on disk)"
qemu-img create -q -f raw "$work/images/data.raw" 256M
qemu-io -f raw -c 'write -P 0x42 0 16M' "$work/images/data.raw" >/dev/null
xz -T0 -1 -k "$work/images/data.raw"
say "data.raw.xz: raw, 256 MiB, xz-compressed to $(du -h "$work/images/data.raw.xz" | cut -f1)"

bold "oneimage create --path os.qcow2: STAT (size for the quota), then CP"
oned STAT 3 "$(msg stat/1 --set "/DS_DRIVER_ACTION_DATA/IMAGE/PATH=$work/images/os.qcow2")"
oned CP 19 "$(msg cp/1 --set "/DS_DRIVER_ACTION_DATA/IMAGE/PATH=$work/images/os.qcow2")"
os_src=$(payload | cut -d' ' -f1)
qemu-img compare -q "$work/images/os.qcow2" "$os_src" && say "registered copy equals the original (qemu-img compare)"

bold "oneimage create --path data.raw.xz into a datastore with DRIVER=qcow2"
oned STAT 4 "$(msg stat/1 --set "/DS_DRIVER_ACTION_DATA/IMAGE/PATH=$work/images/data.raw.xz")"
oned CP 20 "$(msg cp/1 --set "/DS_DRIVER_ACTION_DATA/IMAGE/PATH=$work/images/data.raw.xz" \
    --set /DS_DRIVER_ACTION_DATA/IMAGE/ID=20)"
data_src=$(payload | cut -d' ' -f1)
qemu-img compare -q -f raw -F qcow2 "$work/images/data.raw" "$data_src" &&
    say "decompressed, converted to qcow2, and equal to data.raw"

bold "a registration that must fail: wrong MD5 (nothing is left behind)"
before=$(find "$ds" | wc -l)
oned CP 21 "$(msg cp/1 --set "/DS_DRIVER_ACTION_DATA/IMAGE/PATH=$work/images/os.qcow2" \
    --set /DS_DRIVER_ACTION_DATA/IMAGE/TEMPLATE/MD5=00000000000000000000000000000000)" || true
[ "$(find "$ds" | wc -l)" = "$before" ] && say "datastore unchanged"

bold "oneimage clone"
oned CLONE 22 "$(msg clone/1 --set "/DS_DRIVER_ACTION_DATA/IMAGE/PATH=$os_src")"
clone_src=$(payload | cut -d' ' -f1)
qemu-img compare -q "$os_src" "$clone_src" && say "clone equals the image"

bold "oneimage create --type datablock --size 64 --fs ext4 (MKFS)"
oned MKFS 23 "$(msg mkfs/1 --set /DS_DRIVER_ACTION_DATA/IMAGE/FS=ext4 --set /DS_DRIVER_ACTION_DATA/IMAGE/SIZE=64)"
say "$(qemu-img info "$(payload)" | grep -E '^(file format|virtual size)' | tr '\n' ' ')"

bold "onevm disk-saveas: oned asks MKFS for the target's name (FORMAT=save_as)"
oned MKFS 24 "$(msg mkfs/2)"
[ ! -e "$(payload)" ] && say "a path is named, nothing is created: the TM's cpds writes it"

bold "snapshots of a persistent image (the layout the qcow2 TM leaves in the datastore)"
snap=$os_src.snap
mkdir -p "$snap"
ln -s "$os_src" "$snap/0"
ln -s . "$snap/$(basename "$os_src").snap"
qemu-img create -q -f qcow2 -F qcow2 -b "$snap/0" "$snap/1"
qemu-io -f qcow2 -c 'write -P 0x11 0 1M' "$snap/1" >/dev/null
qemu-img create -q -f qcow2 -F qcow2 -b "$snap/1" "$snap/2"
qemu-io -f qcow2 -c 'write -P 0x22 1M 1M' "$snap/2" >/dev/null
say "SOURCE.snap: 0 -> SOURCE, 1 (snapshot 1) on 0, 2 (current) on 1"
snapmsg() { msg cp/1 --set "/DS_DRIVER_ACTION_DATA/IMAGE/SOURCE=$os_src" \
    --set /DS_DRIVER_ACTION_DATA/IMAGE/FORMAT=qcow2 \
    --set "/DS_DRIVER_ACTION_DATA/IMAGE/TARGET_SNAPSHOT=$1"; }
qemu-img convert -O qcow2 "$snap/2" "$work/current-before.qcow2"
bold "oneimage snapshot-delete 1: file 2 is backed by 1, so 1 is merged into it first"
oned SNAP_DELETE 19 "$(snapmsg 1)"
qemu-img compare -q "$work/current-before.qcow2" "$snap/2" && say "current state unchanged, chain intact: $(qemu-img info "$snap/2" | grep '^backing file:')"
bold "oneimage snapshot-revert 0"
oned SNAP_REVERT 19 "$(snapmsg 0)"
qemu-img compare -q "$os_src" "$snap/2" && say "current state equals snapshot 0 again"
bold "oneimage snapshot-flatten 0"
oned SNAP_FLATTEN 19 "$(snapmsg 0)"
[ ! -e "$snap" ] && qemu-img compare -q "$work/images/os.qcow2" "$os_src" && say "SOURCE.snap gone, image standalone and equal to snapshot 0"

bold "marketplace export"
oned EXPORT 7 "$(msg cp/1 --set "/DS_DRIVER_ACTION_DATA/IMAGE/SOURCE=$os_src" --set /DS_DRIVER_ACTION_DATA/IMAGE/SIZE=1024)"

bold "datastore monitor (oned base64-encodes this one)"
oned MONITOR 107 "$(msg monitor/1)"
payload | base64 -d | sed 's/^/   decoded: /'

bold "oneimage delete, twice (the second run finds nothing and still succeeds)"
for s in "$os_src" "$data_src" "$clone_src"; do
    oned RM 19 "$(msg cp/1 --set "/DS_DRIVER_ACTION_DATA/IMAGE/SOURCE=$s")"
done
oned RM 19 "$(msg cp/1 --set "/DS_DRIVER_ACTION_DATA/IMAGE/SOURCE=$os_src")"

bold "done: every reply above is what oned would have received ($work)"
