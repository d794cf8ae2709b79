#!/bin/bash
# ds-copy.sh - what registering (DS cp) and cloning (DS clone) an image costs
# with qcow2c, against the stock ways and against the device.
#
#   bench/ds-copy.sh [WORKDIR]      (root: drops the page cache between runs)
#
# The image: qcow2, 8 GiB virtual, 2 GiB written (BENCH_VIRT_GIB, BENCH_DATA_GIB
# change that). Every variant starts with a cold page cache and ends with its
# data on disk (qcow2c fsyncs before it publishes; the stock commands are
# followed by `sync`, which they lack), and the median of BENCH_RUNS (3) runs
# is reported:
#   qcow2c cp      oned-ds ... cp     the DS action, run as oned's driver runs it
#   qcow2c clone   oned-ds ... clone
#   qemu-img       qemu-img convert -O qcow2 SRC DST   (OpenNebula's fs/clone, and
#                                                      its cp conversion step)
#   cp             cp --sparse=auto SRC DST
#   device         dd of the allocated bytes: read (iflag=direct) + write
#                  (oflag=direct): the floor for a copy that reads then writes
# Ratios are time / device time (1.00 = the device limit) and qemu-img / qcow2c.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src_tree=$(cd "$here/.." && pwd)
build=${BUILD:-$src_tree/build}
runs=${BENCH_RUNS:-3}
virt=${BENCH_VIRT_GIB:-8}
data=${BENCH_DATA_GIB:-2}
work=${1:-$(mktemp -d "${TMPDIR:-/var/tmp}/qcow2c-bench.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd)

# bench_time_it keeps its figures (time.NAME) in the work directory.
BENCH_RES=$work
BENCH_RUNS=$runs
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

for t in qemu-img qemu-io dd cp bc; do
    command -v "$t" >/dev/null || { echo "ds-copy.sh: $t is missing" >&2; exit 1; }
done
[ -x "$build/bin/qcow2c-ds" ] || { echo "ds-copy.sh: build first (make)" >&2; exit 1; }

echo "# qcow2c DS copy benchmark: ${virt} GiB virtual, ${data} GiB written, median of $runs"
echo "# work dir: $work ($(df -T "$work" | awk 'NR==2 {print $2}'))"

# ---- the image
img=$work/src.qcow2
if [ ! -f "$img" ]; then
    qemu-img create -q -f qcow2 "$img" "${virt}G"
    # data spread over the disk in 256 MiB extents, as a used guest disk has
    step=$((virt * 1024 / (data * 4)))
    for ((i = 0; i < data * 4; i++)); do
        qemu-io -f qcow2 -c "write -P $((i % 200 + 1)) $((i * step))M 256M" "$img" >/dev/null
    done
fi
echo "# source: $(du -h "$img" | cut -f1) allocated"

# ---- a remotes tree and a datastore for the DS actions
one=$work/one
if [ ! -x "$one/var/remotes/datastore/qcow2c/cp" ]; then
    ONE_LOCATION=$one "$src_tree/install.sh" --build "$build" >/dev/null
fi
mkdir -p "$one/var/remotes/etc/qcow2c"
printf 'LOCK_DIR="%s/locks"\n' "$work" >"$one/var/remotes/etc/qcow2c/qcow2c.conf"
ds=$work/datastores/107
mkdir -p "$ds"
fixtures=$src_tree/tests/fixtures/oned/ds
cp_msg=$("$build/harness/ds-msg" "$fixtures/cp/1/stdin.decoded.xml" \
    --subst "/var/lib/one//datastores=$work/datastores" \
    --set "/DS_DRIVER_ACTION_DATA/IMAGE/PATH=$img" \
    --set "/DS_DRIVER_ACTION_DATA/DATASTORE/TEMPLATE/SAFE_DIRS=$work")
clone_msg=$("$build/harness/ds-msg" "$fixtures/clone/1/stdin.decoded.xml" \
    --subst "/var/lib/one//datastores=$work/datastores" \
    --set "/DS_DRIVER_ACTION_DATA/IMAGE/PATH=$img")

clean_ds() { rm -rf "${ds:?}"/*; }
clean_dst() { rm -f "$work/dst"; }

ds_action() { # ACTION MSG
    printf '%s' "$2" | "$build/harness/oned-ds" "$one/var/remotes" "$1" 19 >"$work/reply"
    grep -q ' SUCCESS ' "$work/reply" || { cat "$work/reply" >&2; return 1; }
}

# ---- device limit: read then write the allocated bytes, direct I/O
# (dd reads the whole qcow2 file: its size is the allocated size)
bench_device "$img" "$work/ddw"
device=$BENCH_DEV

t_cp=$(bench_time_it qcow2c-cp clean_ds ds_action cp "$cp_msg")
t_clone=$(bench_time_it qcow2c-clone clean_ds ds_action clone "$clone_msg")
t_qemu=$(bench_time_it qemu-img clean_dst qemu-img convert -O qcow2 "$img" "$work/dst")
t_cps=$(bench_time_it cp clean_dst cp --sparse=auto "$img" "$work/dst")
clean_ds
clean_dst

row() { # NAME SECONDS
    printf '%-34s %8.2f s   %5.2f x device   %5.2f x qcow2c-cp\n' "$1" "$2" \
        "$(echo "$2 / $device" | bc -l)" "$(echo "$2 / $t_cp" | bc -l)"
}
echo
bench_device_row 34
row "qcow2c DS cp (oned-ds)" "$t_cp"
row "qcow2c DS clone (oned-ds)" "$t_clone"
row "qemu-img convert -O qcow2" "$t_qemu"
row "cp --sparse=auto" "$t_cps"
echo
printf 'qemu-img convert / qcow2c cp    = %.2f\n' "$(echo "$t_qemu / $t_cp" | bc -l)"
printf 'qemu-img convert / qcow2c clone = %.2f\n' "$(echo "$t_qemu / $t_clone" | bc -l)"
printf 'cp --sparse=auto / qcow2c cp    = %.2f\n' "$(echo "$t_cps / $t_cp" | bc -l)"
