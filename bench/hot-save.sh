#!/bin/bash
# hot-save.sh - the hot disk save-as of a running VM: qcow2c's cpds against
# OpenNebula's method, on the same VM in the same run.
#
#   sudo bench/hot-save.sh [WORKDIR]
#
# The VM: tests/lib/guest.sh's writer guest (TCG, with the guest agent),
# deployed as OpenNebula's qcow2 TM leaves it: disk.0 -> disk.0.snap/0, an
# overlay on an image of 1 GiB virtual with ~900 MiB written (the guest's
# 64 MiB ext4 with its record stream, then 14 x 64 MiB of data after it),
# the guest writing a record every 50 ms all along. Alternating, BENCH_RUNS
# (3) times each, with a cold page cache:
#   qcow2c  the installed cpds action, as oned runs it for LCM 26
#           HOTPLUG_SAVEAS (CPDS qcow2c localhost:<vm dir>/disk.0 NEW_SOURCE
#           -1 6 105; oned is the XML-RPC stand-in, the host the front-end
#           itself, so no ssh), which freezes, snapshots, thaws, copies,
#           checks, compares, records in oned, publishes and merges back;
#   stock   OpenNebula's qcow2/cpds for a running VM: touch DST; virsh
#           blockcopy DOM vda DST --wait --finish (no flush, no check; the
#           "+sync" column adds a sync of DST).
# For each: the wall time of the save; the longest stall of the guest's
# writer during it, by the guest's own clock (guest.sh stall: the largest
# gap between consecutive records; a freeze shows there) and by the host's
# arrival times of its console lines; and the instant the copy holds: the
# copy's last record (check-copy, which also says the copy is one instant)
# placed on the host's time line, as seconds after the save started (0 is
# the start, the save's wall time its end). Medians, and qcow2c / stock;
# for qcow2c also what its log says of the freeze (freeze to thaw, and the
# snapshot alone, as timed on the host).
#
# Environment: BUILD (build directory, default build), BENCH_RUNS (3).
# Needs root (libvirtd, QEMU as libvirt-qemu, dropping the page cache), a
# libvirtd (guest.sh libvirt-start leaves one that answers alone and stops
# only one it started).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src_tree=$(cd "$here/.." && pwd)
build=${BUILD:-$src_tree/build}
case $build in /*) ;; *) build=$src_tree/$build ;; esac
runs=${BENCH_RUNS:-3}
work=${1:-$(mktemp -d /var/tmp/qcow2c-bench-hot.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
chmod 0755 "$work"

BENCH_RES=$work/res
BENCH_RUNS=$runs
mkdir -p "$BENCH_RES"
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

die() {
    echo "hot-save.sh: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || die "needs root (libvirtd, QEMU as libvirt-qemu, drop_caches)"
for t in virsh qemu-img qemu-io awk bc md5sum; do
    command -v "$t" >/dev/null || die "$t is missing"
done
[ -x "$build/bin/qcow2c-tm" ] || die "build first (make)"
for t in standin-ctl oned-standin check-copy; do
    [ -x "$build/harness/$t" ] || die "$build/harness/$t is missing (make)"
done

GUEST=$src_tree/tests/lib/guest.sh
CHECK=$build/harness/check-copy
G=$work/guest
VAR=$work/var/lib/one
DSL=$VAR//datastores                 # DATASTORE_LOCATION as oned writes it
DSD=$VAR/datastores
VMID=6                               # the captured VM: system ds 104, image ds 105
VMDIR=$DSD/104/$VMID
IMG=$DSD/105/7e91d9b535115238b613f67efae9b5b3   # disk 0's image (non-persistent)
SAVEID=13                            # the captured LOCKED save-as image
NAME=qcow2c-bench-hot-$$
R=$work/one/var/remotes/tm/qcow2c
UUID=

vsh() {
    timeout -k 5 600 virsh -q -c qemu:///system "$@"
}

cleanup() {
    "$GUEST" stop "$G" "$NAME" >/dev/null 2>&1 || true
    "$GUEST" libvirt-stop "$work/libvirt" >/dev/null 2>&1 || true
    BUILD=$build "$src_tree/tests/harness/standin.sh" stop "$work/standin" 2>/dev/null || true
}
trap cleanup EXIT

echo "# hot disk save-as of a running VM: qcow2c cpds against OpenNebula's blockcopy;" \
    "median of $runs runs each"
echo "# work dir: $work"

# ---------------------------------------------------------------- the lab

ONE_LOCATION=$work/one "$src_tree/install.sh" --build "$build" >"$work/install.log" 2>&1 ||
    die "install.sh failed (see $work/install.log)"
eval "$(BUILD=$build "$src_tree/tests/harness/standin.sh" start "$work/standin")"
ctl() { "$build/harness/standin-ctl" "$work/standin" "$@" >/dev/null; }
ctl put vm "$src_tree/tests/fixtures/standin/vm.info.running.inner.xml" \
    --subst "/var/lib/one//datastores=$DSL"
ctl put image "$src_tree/tests/fixtures/standin/image.info.locked-saveas.inner.xml" \
    --subst "/var/lib/one//datastores=$DSL"
ctl set vm $VMID /VM/LCM_STATE 26
ctl set vm $VMID '/VM/HISTORY_RECORDS/HISTORY/VM_MAD' kvm
ctl set vm $VMID '/VM/TEMPLATE/DISK[DISK_ID=0]/TARGET' vda
ctl set vm $VMID '/VM/TEMPLATE/DISK[DISK_ID=0]/SIZE' 1024
ctl set vm $VMID '/VM/TEMPLATE/DISK[DISK_ID=0]/HOTPLUG_SAVE_AS_ACTIVE' YES
ctl set vm $VMID '/VM/TEMPLATE/DISK[DISK_ID=0]/HOTPLUG_SAVE_AS_SNAPSHOT_ID' -1
ctl set vm $VMID '/VM/TEMPLATE/DISK[DISK_ID=0]/HOTPLUG_SAVE_AS' $SAVEID
mkdir -p "$work/lock"
cat >"$work/one/var/remotes/etc/qcow2c/qcow2c.conf" <<EOF
# written by bench/hot-save.sh
ONE_XMLRPC="$ONE_XMLRPC"
ONE_AUTH="$work/standin/one_auth"
LOCK_DIR="$work/lock"
EOF
{
    cat "$work/one/var/remotes/etc/qcow2c/qcow2c.conf"
    echo 'DEBUG="yes"'
} >"$work/qcow2c-debug.conf"

"$GUEST" libvirt-start "$work/libvirt" >"$work/libvirt.log" 2>&1 ||
    die "no libvirtd (see $work/libvirt.log)"
"$GUEST" build "$G" >"$work/build.log" 2>&1 || die "guest.sh build failed (see $work/build.log)"

# The image: the guest's file system, grown to 1 GiB, ~900 MiB written.
mkdir -p "$DSD/104" "$DSD/105"
if [ ! -f "$IMG.done" ]; then
    rm -f "$IMG"
    qemu-img convert -q -O qcow2 "$G/base.qcow2" "$IMG"
    qemu-img resize -q "$IMG" 1G
    for ((i = 0; i < 14; i++)); do
        qemu-io -f qcow2 -c "write -q -P $((0x30 + i)) $((96 + i * 64))M 64M" "$IMG" >/dev/null
    done
    touch "$IMG.done"
fi
rm -rf "$VMDIR"
mkdir -p "$VMDIR/disk.0.snap"
ln -s . "$VMDIR/disk.0.snap/disk.0.snap"
qemu-img create -q -f qcow2 -F qcow2 -b "$IMG" "$VMDIR/disk.0.snap/0"
ln -s disk.0.snap/0 "$VMDIR/disk.0"
chmod -R a+rX "$work/var"
echo "# image: $(qemu-img info -U "$IMG" | sed -n 's/^virtual size: \(.*\) (.*/\1/p') virtual," \
    "$(($(qemu-img info -U --output=json "$IMG" | sed -n 's/^ *"actual-size": \([0-9]*\).*/\1/p') >> 20)) MiB allocated"

UUID=$("$GUEST" start "$G" "$NAME" "$VMDIR/disk.0" --agent --vm-dir "$VMDIR" --records 20 \
    2>"$work/guest.err") || {
    cat "$work/guest.err" >&2
    die "the guest did not start"
}
ctl set vm $VMID /VM/DEPLOY_ID "$UUID"
deadline=$((SECONDS + 120))
until vsh qemu-agent-command "$UUID" '{"execute":"guest-ping"}' --timeout 5 >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "the guest agent does not answer"
    sleep 0.5
done
CONSOLE=$G/domains/$NAME/console.ts

# ---------------------------------------------------------------- one save

counter() { "$GUEST" counter "$G" "$NAME"; }

# The host time at which the guest printed record N.
printed_at() { # N
    awk -v n="$1" '$2 == "counter" && $3 == n { print $1; exit }' "$CONSOLE"
}

new_source() { # KIND RUN
    printf '%s/105/%s-%s-%s\n' "$DSL" "$1" "$2" "$(date +%s%N | md5sum | cut -c1-16)"
}

# Runs one save with KIND (qcow2c|stock); appends "wall sync stall_guest
# stall_host instant" to $BENCH_RES/KIND.
one_save() { # KIND RUN
    local kind=$1 run=$2 dst file t0 t1 t2 c0 out n at stall g h
    dst=$(new_source "$kind" "$run")
    file=$(printf '%s\n' "$dst" | tr -s /)
    bench_drop_caches
    c0=$(counter)
    t0=$(bench_now)
    if [ "$kind" = qcow2c ]; then
        ctl set image $SAVEID /IMAGE/SOURCE "$dst"
        ctl set vm $VMID '/VM/TEMPLATE/DISK[DISK_ID=0]/HOTPLUG_SAVE_AS_SOURCE' "$dst"
        t0=$(bench_now)
        bench_env "$R/cpds" "localhost:$DSL/104/$VMID/disk.0" "$dst" -1 $VMID 105 \
            </dev/null >/dev/null 2>"$work/$kind.$run.err" || {
            cat "$work/$kind.$run.err" >&2
            die "qcow2c cpds failed"
        }
        t1=$(bench_now)
        t2=$t1
    else
        touch "$file"
        vsh blockcopy "$UUID" vda "$file" --wait --finish >/dev/null ||
            die "virsh blockcopy failed"
        t1=$(bench_now)
        sync "$file"
        t2=$(bench_now)
    fi
    out=$("$CHECK" "$file" || true)
    case $out in
        CONSISTENT*) ;;
        *) die "the $kind copy is not one instant: $out" ;;
    esac
    n=$(sed -n 's/^CONSISTENT counter=\([0-9]*\) .*/\1/p' <<<"$out")
    at=$(printed_at "$n")
    [ -n "$at" ] || die "record $n of the $kind copy is not in the console (counter $c0 at the start)"
    stall=$("$GUEST" stall "$G" "$NAME" "$t0" "$t1")
    g=$(sed -n 's/^guest=\([0-9.]*\) .*/\1/p' <<<"$stall")
    h=$(sed -n 's/.* host=\([0-9.]*\) .*/\1/p' <<<"$stall")
    printf '%s %s %s %s %s\n' "$(echo "$t1 - $t0" | bc -l)" "$(echo "$t2 - $t0" | bc -l)" \
        "$g" "$h" "$(echo "$at - $t0" | bc -l)" >>"$BENCH_RES/$kind"
    printf '#   %-6s run %s: %6.2f s, stall %s s (guest clock) / %s s (host), copy = record %s' \
        "$kind" "$run" "$(echo "$t1 - $t0" | bc -l)" "$g" "$h" "$n"
    printf ' (printed %+.2f s after the start; guest at %s when it began)\n' \
        "$(echo "$at - $t0" | bc -l)" "$c0"
    rm -f "$file" "$file.part"
}

: >"$BENCH_RES/qcow2c"
: >"$BENCH_RES/stock"
for ((run = 1; run <= runs; run++)); do
    one_save qcow2c "$run"
    one_save stock "$run"
done

# What qcow2c's action starts (local commands; the host is the front-end).
dst=$(new_source debug 0)
ctl set image $SAVEID /IMAGE/SOURCE "$dst"
ctl set vm $VMID '/VM/TEMPLATE/DISK[DISK_ID=0]/HOTPLUG_SAVE_AS_SOURCE' "$dst"
bench_env QCOW2C_CONF="$work/qcow2c-debug.conf" "$R/cpds" "localhost:$DSL/104/$VMID/disk.0" \
    "$dst" -1 $VMID 105 </dev/null >/dev/null 2>"$work/debug.err" || die "the DEBUG run failed"
children=$(sed -n 's/.* \([0-9]*\) child processes.*/\1/p' "$work/debug.err" | tail -n 1)
rm -f "$(printf '%s\n' "$dst" | tr -s /)"

# ---------------------------------------------------------------- table

col() { # KIND FIELD
    awk -v f="$2" '{ print $f }' "$BENCH_RES/$1" | bench_median
}

echo
printf '%-34s %10s %10s %8s\n' "" qcow2c stock ratio
row() { # LABEL FIELD_Q FIELD_S
    local q s
    q=$(col qcow2c "$2")
    s=$(col stock "$3")
    printf '%-34s %10.3f %10.3f %8s\n' "$1" "$q" "$s" "$(bench_ratio "$q" "$s")"
}
row "save time, s" 1 1
row "save time (stock + sync), s" 1 2
row "longest stall, guest clock, s" 3 3
row "longest stall, host arrival, s" 4 4
row "copy's instant, s after the start" 5 5
frozen=$(sed -n 's/.*file systems frozen for \([0-9.]*\) s (the snapshot took \([0-9.]*\) s.*/\1/p' \
    "$work"/qcow2c.*.err | bench_median)
snap=$(sed -n 's/.*file systems frozen for \([0-9.]*\) s (the snapshot took \([0-9.]*\) s.*/\2/p' \
    "$work"/qcow2c.*.err | bench_median)
printf '%-34s %10.3f\n' "qcow2c: freeze to thaw, s" "${frozen:-0}"
printf '%-34s %10.3f\n' "qcow2c: the snapshot alone, s" "${snap:-0}"
echo
echo "# qcow2c: flushed, qemu-img check, qemu-img compare against the frozen state, recorded in"
echo "# oned, renamed, merged back; file systems frozen for the snapshot only."
echo "# stock: crash-consistent as of the end of the mirror; nothing flushed or checked."
echo "# qcow2c cpds started $children processes (DEBUG=yes; no ssh: the host is the front-end)."
