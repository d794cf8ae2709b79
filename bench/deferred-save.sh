#!/bin/bash
# deferred-save.sh - what a deferred disk save (issue 5) adds to a VM's
# epilog: the TM `delete` of disk.0 with a pending request (flatten with
# qemu-img convert, qemu-img check, qemu-img compare with the disk, flush,
# rename, then one.image.allocate/chown/update and the request marked done)
# against the same `delete` without a request, and against a bare
# `qemu-img convert -O qcow2` of the same disk (+ sync). Every figure is also
# given as a multiple of the device's time to read and then write the bytes
# written in the disk (dd, direct I/O): 1.00 is the device limit for a copy.
#
#   bench/deferred-save.sh [WORKDIR]     (root: to drop the page cache)
#
# The disk: disk.0 -> disk.0.snap/0, a standalone qcow2 of BENCH_VIRT_GIB (4)
# GiB virtual with BENCH_DATA_GIB (1) GiB written in 128 MiB extents, on the
# VM directory of the captured powered-off VM 6 (system datastore 104, image
# datastore 105). oned is the XML-RPC stand-in (tests/harness/standin.sh),
# the request is recorded with onesnap, the action runs on the front-end
# (its host is in LOCAL_HOSTS: no ssh), as installed by install.sh. Each
# variant: BENCH_RUNS (3) runs after an untimed setup (the disk copied in
# place, the request recorded, the page cache dropped), median reported.
#
# Environment: BUILD (build directory, default build), BENCH_RUNS,
# BENCH_VIRT_GIB, BENCH_DATA_GIB.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src_tree=$(cd "$here/.." && pwd)
build=${BUILD:-$src_tree/build}
case $build in /*) ;; *) build=$src_tree/$build ;; esac
runs=${BENCH_RUNS:-3}
virt=${BENCH_VIRT_GIB:-4}
data=${BENCH_DATA_GIB:-1}
work=${1:-$(mktemp -d "${TMPDIR:-/var/tmp}/qcow2c-bench-dsave.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd)

# bench_time_it keeps its figures (time.NAME) in the work directory.
BENCH_RES=$work
BENCH_RUNS=$runs
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

for t in qemu-img qemu-io dd cp bc; do
    command -v "$t" >/dev/null || { echo "deferred-save.sh: $t is missing" >&2; exit 1; }
done
for p in bin/qcow2c-tm bin/onesnap harness/oned-standin harness/standin-ctl; do
    [ -x "$build/$p" ] || { echo "deferred-save.sh: $build/$p is missing: make" >&2; exit 1; }
done

echo "# qcow2c deferred save benchmark: ${virt} GiB virtual, ${data} GiB written, median of $runs"
echo "# work dir: $work ($(df -T "$work" | awk 'NR==2 {print $2}'))"

# ---- the disk's content, made once
src=$work/src.qcow2
if [ ! -f "$src" ]; then
    qemu-img create -q -f qcow2 "$src" "${virt}G"
    n=$((data * 8))
    step=$((virt * 1024 / n))
    for ((i = 0; i < n; i++)); do
        qemu-io -f qcow2 -c "write -P $((i % 200 + 1)) $((i * step))M 128M" "$src" >/dev/null
    done
fi
echo "# disk: $(du -h "$src" | cut -f1) allocated"

# ---- remotes, configuration, oned
one=$work/one
if [ ! -x "$one/var/remotes/tm/qcow2c/delete" ]; then
    ONE_LOCATION=$one "$src_tree/install.sh" --build "$build" >/dev/null
fi
standin=$work/standin
rm -rf "$standin"
mkdir -p "$standin"
BUILD=$build "$src_tree/tests/harness/standin.sh" start "$standin" >"$work/standin.out"
trap 'BUILD=$build "$src_tree/tests/harness/standin.sh" stop "$standin" >/dev/null 2>&1 || true' EXIT
endpoint=$(sed -n 's/^export ONE_XMLRPC=//p' "$work/standin.out")
mkdir -p "$one/var/remotes/etc/qcow2c" "$work/locks"
cat >"$one/var/remotes/etc/qcow2c/qcow2c.conf" <<EOF
ONE_XMLRPC="$endpoint"
ONE_AUTH="$standin/one_auth"
LOCK_DIR="$work/locks"
LOCAL_HOSTS="node1"
EOF
fixtures=$src_tree/tests/fixtures/standin
ctl() { "$build/harness/standin-ctl" "$standin" "$@" >/dev/null; }
ctl put vm "$fixtures/vm.info.poweroff.inner.xml" \
    --subst "/var/lib/one//datastores=$work/datastores//"
ctl set vm 6 "/VM/HISTORY_RECORDS/HISTORY[last()]/ACTION" 27
ctl put datastore "$fixtures/datastore.info.image.inner.xml" \
    --subst "/var/lib/one//datastores=$work/datastores/"
vmdir=$work/datastores/104/6
img_ds=$work/datastores/105
mkdir -p "$vmdir" "$img_ds"

place_disk() {
    rm -rf "$vmdir/disk.0" "$vmdir/disk.0.snap" "$img_ds"/qcow2c-saved-*
    mkdir -p "$vmdir/disk.0.snap"
    cp --sparse=always "$src" "$vmdir/disk.0.snap/0"
    ln -s disk.0.snap/0 "$vmdir/disk.0"
    ln -s . "$vmdir/disk.0.snap/disk.0.snap"
}
with_request() { # RUN
    place_disk
    ONE_XMLRPC=$endpoint ONE_AUTH=$standin/one_auth "$build/bin/onesnap" create 6 0 \
        "bench-$(date +%s%N)-$1" --deferred --type DATABLOCK >/dev/null
}
clean_dst() { rm -f "$work/dst"; place_disk; }
delete_disk() {
    "$one/var/remotes/tm/qcow2c/delete" "node1:$vmdir/disk.0" 6 105 2>"$work/delete.err" || {
        cat "$work/delete.err" >&2
        return 1
    }
}

# ---- device limit: read then write the allocated bytes, direct I/O
bench_device "$src" "$work/ddw"
device=$BENCH_DEV

t_plain=$(bench_time_it delete place_disk delete_disk)
t_saved=$(bench_time_it delete-deferred with_request delete_disk)
ls "$img_ds"/qcow2c-saved-* >/dev/null
t_conv=$(bench_time_it qemu-img clean_dst qemu-img convert -f qcow2 -O qcow2 "$vmdir/disk.0" "$work/dst")
rm -f "$work/dst"
added=$(echo "$t_saved - $t_plain" | bc -l)

row() { # NAME SECONDS
    printf '%-42s %8.2f s   %5.2f x device   %5.2f x qemu-img convert\n' "$1" "$2" \
        "$(echo "$2 / $device" | bc -l)" "$(echo "$2 / $t_conv" | bc -l)"
}
echo
bench_device_row 42
row "TM delete, no request" "$t_plain"
row "TM delete with a deferred save" "$t_saved"
row "  added to the epilog by the save" "$added"
row "qemu-img convert -O qcow2 (+ sync)" "$t_conv"
echo
