#!/bin/bash
# e2e: alone (a TCG guest: it needs both cores, and times what it sees)
# t0231-tm-snapshots-live.sh - disk snapshots of a RUNNING VM: TM
# snap_create_live (run by the VMM driver, LCM 57) and snap_delete in LCM 59
# (DISK_SNAPSHOT_DELETE), against a real libvirt-managed QEMU guest
# (tests/lib/guest.sh: its writer keeps a record stream on the disk that
# build/harness/check-copy judges) started as OpenNebula's KVM driver
# starts one (transient, disk in the VM directory, DEPLOY_ID = the UUID).
#   - with the guest agent: freeze, snapshot-create --reuse-external, thaw;
#     every snapshot file holds one instant of the stream; the layout is
#     stock's; live deletes: blockcommit of a middle snapshot (N.current),
#     blockpull of the active one (through N.current) and of the bottom
#     one; the writer never stops for good;
#   - without an agent (no channel; a channel nobody answers): suspend and
#     resume instead;
#   - failures: snapshot-create refused (the guest is thawed, the overlay
#     removed, disk.0 unchanged), a freeze that "timed out" after freezing
#     (thawed anyway), the domain switched by an earlier run that did not
#     move disk.0 (finished without a freeze), a commit interrupted after
#     its job (finished from the note it left);
#   - a persistent disk (the chain beside the image, absolute names).
# Not here: the .ssh variants (their private system datastore is invisible
# to the one libvirtd of this machine); they differ from the shared ones
# only in where the chain lives, which t0230 covers. Needs root.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-tm.sh"

need_tool virsh virtlogd libvirtd qemu-img qemu-system-x86_64 cc cpio mkfs.ext4 awk
if [ "$(id -u)" != 0 ]; then
    echo "t0231-tm-snapshots-live: needs root (libvirtd, QEMU as libvirt-qemu)" >&2
    exit 1
fi

# QEMU runs as libvirt-qemu: the datastores under TEST_DIR must be reachable.
chmod 0755 "$TEST_DIR"
# shellcheck disable=SC2119 # no --ssh-system: libvirtd would not see its private datastore
tm_setup

GUEST=$SRC/tests/lib/guest.sh
CHECK=$BUILD/harness/check-copy
URI=qemu:///system
G=$TEST_DIR/guest
LV=$TEST_DIR/libvirt
CTL=$TEST_DIR/virsh-ctl
mkdir -p "$G" "$LV" "$CTL" "$TEST_DIR/bin"
chmod 0755 "$G"
# Every case runs in a subshell of its own: the names of the guests it
# started go to a file, so that the clean-up sees all of them.
NAMES=$TEST_DIR/domains
: >"$NAMES"
stop_guests() {
    local n
    while read -r n; do
        "$GUEST" stop "$G" "$n" >/dev/null 2>&1 || true
    done <"$NAMES"
}
defer "$GUEST" libvirt-stop "$LV"
defer stop_guests
"$GUEST" libvirt-start "$LV" >"$TEST_DIR/libvirt.log" 2>&1 || {
    cat "$TEST_DIR/libvirt.log" >&2
    exit 1
}
"$GUEST" build "$G" >"$TEST_DIR/build.log" 2>&1 || {
    cat "$TEST_DIR/build.log" >&2
    exit 1
}

# virsh for the hosts (VIRSH in qcow2c.conf), with failures on request:
# $CTL/fail.snapshot-create makes snapshot-create fail; $CTL/late.domfsfreeze
# makes domfsfreeze freeze, then answer as timeout(1) does when it kills.
cat >"$TEST_DIR/bin/virsh" <<EOF
#!/bin/bash
sub=
for a; do
    case \$a in snapshot-create | domfsfreeze) sub=\$a; break ;; esac
done
if [ "\$sub" = snapshot-create ] && [ -e "$CTL/fail.snapshot-create" ]; then
    echo "error: injected failure of snapshot-create" >&2
    exit 1
fi
if [ "\$sub" = domfsfreeze ] && [ -e "$CTL/late.domfsfreeze" ]; then
    virsh "\$@" >/dev/null 2>&1
    exit 124
fi
exec virsh "\$@"
EOF
chmod 755 "$TEST_DIR/bin/virsh"
tm_conf VIRSH "$TEST_DIR/bin/virsh"

# ---------------------------------------------------------------- helpers

vsh() {
    timeout -k 5 60 virsh -q -c "$URI" "$@"
}

norm() { printf '%s\n' "$1" | tr -s /; }

layout_is() { # HOST PATH <<EOF (lines in any order)
    sed -e 's/^[[:space:]]*//' -e '/^$/d' -e 's/ /\t/' | LC_ALL=C sort | sed 's/\t/ /' |
        expect_layout "$1" "$2"
}

# A VM whose disk 0 is the guest's disk (an image of datastore 1 with the
# guest's file system), deployed as oned does and started by guest.sh with
# FLAGS (--agent, --channel or nothing). Sets GV_DIR GV_UUID GV_NAME GV_SRC.
guest_vm() { # VMID [--persistent] [FLAGS...]
    local vmid=$1 pers=() img
    shift
    if [ "${1:-}" = --persistent ]; then
        pers=(--persistent)
        shift
    fi
    img=$(tm_image "live$vmid" --format qcow2 --size 64 "${pers[@]}")
    cp "$G/base.qcow2" "$(tm_image_file "$img")"
    tm_vm "$vmid" --host node1 --system-ds 0 --disk image="$img"
    tm_set vm "$vmid" '/VM/TEMPLATE/DISK[DISK_ID=0]/TARGET' vda
    tm_prolog "$vmid"
    GV_DIR=$(norm "$(tm_sysdir "$vmid")")
    GV_SRC=$(tm_image_file "$img")
    GV_NAME=qcow2c-t0231-$$-$vmid
    echo "$GV_NAME" >>"$NAMES"
    chmod -R a+rX "$TEST_DIR/var"
    GV_UUID=$("$GUEST" start "$G" "$GV_NAME" "$GV_DIR/disk.0" --vm-dir "$GV_DIR" "$@" \
        2>"$TEST_DIR/guest.err") || {
        cat "$TEST_DIR/guest.err"
        return 1
    }
    tm_set vm "$vmid" /VM/DEPLOY_ID "$GV_UUID"
    tm_vm_state "$vmid" 3 3
}

# The VMM driver's SNAP_CREATE_LIVE (one_vmm_exec.rb), LCM DISK_SNAPSHOT.
live_snap() { # VMID SNAP_ID
    tm_vm_state "$1" 57 3
    tm_vmm "$1" "SNAP_CREATE_LIVE qcow2c node1:$GV_DIR/disk.0 $2 $1 $IMG_DS" || return 1
    tm_vm_state "$1" 3 3
}

live_snap_fails() { # VMID SNAP_ID
    tm_vm_state "$1" 57 3
    if tm_vmm "$1" "SNAP_CREATE_LIVE qcow2c node1:$GV_DIR/disk.0 $2 $1 $IMG_DS" 2>/dev/null; then
        echo "live_snap_fails: snapshot $2 of VM $1 succeeded"
        return 1
    fi
    tm_vm_state "$1" 3 3
}

# oned's DISK_SNAPSHOT_DELETE of a running VM: a TRANSFER.
live_del() { # VMID SNAP_ID
    tm_vm_state "$1" 59 3
    tm_transfer "$1" --op disk_snapshot <<<"SNAP_DELETE qcow2c node1:$GV_DIR/disk.0 $2 $1 $IMG_DS" ||
        return 1
    tm_vm_state "$1" 3 3
}

# One instant of the writer's stream.
consistent() { # FILE
    "$CHECK" "$1" >"$TEST_DIR/check.out" 2>&1 || true
    grep -q '^CONSISTENT' "$TEST_DIR/check.out" || {
        echo "consistent: $1:"
        cat "$TEST_DIR/check.out"
        return 1
    }
}

# The guest runs and writes (not paused, not frozen): its counter grows.
writes() { # NAME
    local c0 c i
    test "$(vsh domstate "$1")" = running
    c0=$("$GUEST" counter "$G" "$1")
    for ((i = 0; i < 100; i++)); do
        c=$("$GUEST" counter "$G" "$1")
        [ "$c" -le "$c0" ] || return 0
        sleep 0.1
    done
    echo "writes: the writer of $1 stopped at $c0"
    return 1
}

# The domain's active layer.
top_of() { # UUID
    vsh domblklist "$1" | awk '$1 == "vda" { print $2 }'
}

# qemu-img check on every layer in DIR but the running guest's active one:
# QEMU writes that one's metadata lazily, so that a check from outside may
# see a cluster allocated beyond the end of the file (a false alarm).
check_all() { # DIR UUID
    local f top
    top=$(top_of "$2")
    for f in "$1"/*; do
        [ -f "$f" ] || continue
        [ "$f" != "$top" ] || continue
        case $f in *.current) continue ;; esac
        qemu-img check -q -U -- "$f" || { echo "qemu-img check: $f"; return 1; }
    done
}

# ---------------------------------------------------------------- cases

case_agent() {
    local d c
    guest_vm 80 --agent
    d=$GV_DIR
    c=$d/disk.0.snap
    live_snap 80 0
    expect_stderr_line --match 'snapshot 0 of disk.0: .*disk.0.snap/1 on .*disk.0.snap/0'
    if grep -q 'suspending' "$LAST_STDERR"; then
        echo "the agent should have frozen the guest"
        return 1
    fi
    writes "$GV_NAME"
    live_snap 80 1
    writes "$GV_NAME"
    live_snap 80 2
    test "$(top_of "$GV_UUID")" = "$c/3"
    # stock's layout: relative names in disk.0.snap
    layout_is node1 "$d" <<EOF
        . dir
        deployment.0 file raw
        disk.0 link disk.0.snap/3
        disk.0.snap dir
        disk.0.snap/0 file qcow2 $GV_SRC
        disk.0.snap/1 file qcow2 disk.0.snap/0
        disk.0.snap/2 file qcow2 disk.0.snap/1
        disk.0.snap/3 file qcow2 disk.0.snap/2
        disk.0.snap/disk.0.snap link .
EOF
    consistent "$c/0"
    consistent "$c/1"
    consistent "$c/2"
    # snapshot 1, in the middle: 2 committed into 1, which holds snapshot 2
    # from then on (2.current)
    live_del 80 1
    expect_stderr_line --match 'virsh blockcommit of .*disk.0.snap/2 into .*disk.0.snap/1'
    test "$(cat "$c/2.current")" = "$c/1"
    test ! -e "$c/2"
    consistent "$c/1"
    writes "$GV_NAME"
    # snapshot 2 (the active one, through 2.current): pulled into the top
    live_del 80 2
    expect_stderr_line --match 'virsh blockpull of .*disk.0.snap/1 into the active layer'
    test ! -e "$c/1"
    test ! -e "$c/2.current"
    # snapshot 0, at the bottom: pulled too, the top is then on the image
    live_del 80 0
    layout_is node1 "$d" <<EOF
        . dir
        deployment.0 file raw
        disk.0 link disk.0.snap/3
        disk.0.snap dir
        disk.0.snap/3 file qcow2 $GV_SRC
        disk.0.snap/disk.0.snap link .
EOF
    writes "$GV_NAME"
    live_snap 80 3
    consistent "$c/3"
    check_all "$c" "$GV_UUID"
    # a snapshot already gone: success
    live_del 80 1
}

case_failures() {
    local d c before
    guest_vm 84 --agent
    d=$GV_DIR
    c=$d/disk.0.snap
    live_snap 84 0
    # snapshot-create refused: thawed, overlay 2 gone, disk.0 unchanged
    touch "$CTL/fail.snapshot-create"
    before=$(host_tree node1 "$d")
    live_snap_fails 84 1
    rm -f "$CTL/fail.snapshot-create"
    one_plain_line "$LAST_STDERR" | grep -q 'injected failure of snapshot-create'
    test "$before" = "$(host_tree node1 "$d")"
    writes "$GV_NAME"
    # oned skipped id 1; a freeze that timed out after freezing: thawed,
    # then the domain suspended; snapshot 2 is kept in file 1 (2.current)
    touch "$CTL/late.domfsfreeze"
    live_snap 84 2
    rm -f "$CTL/late.domfsfreeze"
    expect_stderr_line --match 'cannot freeze .*exit status 124.*suspending it'
    writes "$GV_NAME"
    test "$(cat "$c/2.current")" = "$c/1"
    test "$(top_of "$GV_UUID")" = "$c/3"
    consistent "$c/1"
    # switched by an earlier run that did not move disk.0: finished, no
    # freeze, no new file
    live_snap 84 3
    ln -sfn disk.0.snap/3 "$d/disk.0"
    before=$(host_tree node1 "$c")
    live_snap 84 3
    expect_stderr_line --match 'already writes .*disk.0.snap/4: snapshot 3 was taken'
    test "$(readlink "$d/disk.0")" = disk.0.snap/4
    test "$before" = "$(host_tree node1 "$c")"
    # chain 4 -> 3 -> 1 -> 0: deleting snapshot 2 (file 1) commits 3 into
    # 1. An action that died right after the job: its note is there, the
    # job done, 3 out of the chain. The re-run finishes: 3.current names 1,
    # 3 and 2.current go.
    printf '3 1\n' >"$c/.qcow2c-commit-2"
    vsh blockcommit "$GV_UUID" vda --top "$c/3" --base "$c/1" --wait >/dev/null
    live_del 84 2
    expect_stderr_line --match 'had finished: completing the deletion'
    test "$(cat "$c/3.current")" = "$c/1"
    test ! -e "$c/3"
    test ! -e "$c/2.current"
    test ! -e "$c/.qcow2c-commit-2"
    consistent "$c/1"
    writes "$GV_NAME"
    check_all "$c" "$GV_UUID"
}

case_no_agent() {
    guest_vm 81
    live_snap 81 0
    expect_stderr_line --match 'cannot freeze .*not configured.*suspending it'
    test "$(vsh domstate "$GV_UUID")" = running
    writes "$GV_NAME"
    consistent "$GV_DIR/disk.0.snap/0"
}

case_silent_channel() {
    guest_vm 82 --channel
    live_snap 82 0
    expect_stderr_line --match 'cannot freeze .*not connected.*suspending it'
    writes "$GV_NAME"
    consistent "$GV_DIR/disk.0.snap/0"
}

case_persistent() {
    local s
    guest_vm 83 --persistent --agent
    s=$GV_SRC
    live_snap 83 0
    live_snap 83 1
    test "$(readlink "$GV_DIR/disk.0")" = "$s.snap/2"
    test "$(top_of "$GV_UUID")" = "$s.snap/2"
    layout_is node1 "$s.snap" <<EOF
        . dir
        0 link $s
        1 file qcow2 $s.snap/0
        2 file qcow2 $s.snap/1
        $(basename "$s").snap link .
EOF
    consistent "$s.snap/1"
    # the active one: pulled into the top
    live_del 83 1
    expect_stderr_line --match 'virsh blockpull of .*\.snap/1 into the active layer'
    test ! -e "$s.snap/1"
    writes "$GV_NAME"
    check_all "$s.snap" "$GV_UUID"
}

test_case "agent: freeze, snapshot, thaw; live deletes (commit, pull, .current)" case_agent
test_case "no agent: suspend and resume" case_no_agent
test_case "an agent channel nobody answers: suspend and resume" case_silent_channel
test_case "a persistent disk: the chain beside the image" case_persistent
test_case "failures: refused switch, late freeze, unlinked switch, interrupted commit" case_failures
