#!/bin/bash
# demo/vm-life.sh - a VM's life through the qcow2c TM driver, without an
# OpenNebula install (the second half of `make demo`; needs root).
#
# Plays oned's part as the end-to-end tests do (tests/e2e/lib-tm.sh): the
# oned XML-RPC stand-in holds the VM and its images, two hosts (node1, node2)
# are sshd instances on 127.0.0.1 with private mount namespaces, and every
# step is a transfer file in oned's format run by the harness exactly as
# oned's TM driver runs it. Each step prints the lines oned would write and
# the files it leaves on the host.
#
#   BUILD=build bash demo/vm-life.sh
set -uo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "vm-life.sh: needs root (hosts in their own mount namespaces); skipped" >&2
    exit 0
fi

demo_src=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$demo_src/tests/e2e/lib.sh"
# shellcheck source=tests/e2e/lib-tm.sh
. "$demo_src/tests/e2e/lib-tm.sh"
# Not a test: stop the stand-in and the hosts at the end, keep no verdict.
demo_end() {
    local status=$?
    _e2e_run_defers
    [ "$status" != 0 ] || rm -rf "$TEST_DIR"
    exit "$status"
}
trap demo_end EXIT

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }
lines() { sed 's/^/   oned writes: /'; }
tree() { host_tree "$1" "$2" | sed "s|^|   $1: |"; }
step() { # TITLE COMMAND... (the command's --print shows the transfer file)
    local title=$1
    shift
    bold "$title"
    "$@" --print | lines
    "$@" || { echo "vm-life.sh: '$title' failed" >&2; exit 1; }
}

# shellcheck disable=SC2119 # a shared system datastore: no argument
tm_setup || exit 1

bold "an OS image (qcow2, persistent=no) and a data image (persistent) in image datastore $IMG_DS"
os=$(tm_image demo-os --size 256)
data=$(tm_image demo-data --size 64 --persistent)
say "image $os: $(tm_image_source "$os")"
say "image $data: $(tm_image_source "$data") (persistent)"

tm_vm 40 --host node1 --system-ds "$SYS_DS" --disk image="$os" --disk image="$data" \
    --volatile 32:swap --context
dir=$(tm_sysdir 40)
step "deploy VM 40 on node1 (PROLOG)" tm_prolog 40
bold "the context disk (run by the VMM driver at deploy)"
tm_context 40 --print | lines
tm_context 40 || exit 1
tree node1 "$dir"

tm_vm_state 40 0 8
bold "disk snapshot 0 of disk 0 while powered off, then a write, then revert"
printf 'SNAP_CREATE qcow2c node1:%s/disk.0 0 40 %s\n' "$dir" "$SYS_DS" | lines
tm_vm_state 40 51 3
tm_transfer 40 --op disk_snapshot < <(printf 'SNAP_CREATE qcow2c node1:%s/disk.0 0 40 %s\n' "$dir" "$SYS_DS") || exit 1
on_host node1 qemu-io -f qcow2 -c 'write -q -P 0x77 0 1M' "$(_tm_norm "$dir")/disk.0" >/dev/null
tm_vm_state 40 52 3
printf 'SNAP_REVERT qcow2c node1:%s/disk.0 0 40 %s\n' "$dir" "$SYS_DS" | lines
tm_transfer 40 --op disk_snapshot < <(printf 'SNAP_REVERT qcow2c node1:%s/disk.0 0 40 %s\n' "$dir" "$SYS_DS") || exit 1
on_host node1 qemu-io -f qcow2 -c 'read -q -P 0x77 0 1M' "$(_tm_norm "$dir")/disk.0" >/dev/null 2>&1 ||
    say "the write after snapshot 0 is gone: disk 0 is back at snapshot 0"
tree node1 "$dir"
tm_vm_state 40 0 8

tm_vm_state 40 3 3
step "cold migration node1 -> node2" tm_migrate 40 node1 node2
dir=$(tm_sysdir 40)
tree node2 "$dir"

step "terminate (EPILOG): non-persistent disks deleted, the persistent one goes back (MVDS)" tm_epilog 40
[ -n "$(host_tree node2 "$dir")" ] || say "node2: the VM directory is gone"
file=$(tm_image_file "$data")
qemu-img check -q "$file" && say "the persistent image $file passes qemu-img check"

bold "done: every transfer above ran through the installed qcow2c actions ($TEST_DIR)"
