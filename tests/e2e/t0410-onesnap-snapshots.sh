#!/bin/bash
# t0410-onesnap-snapshots.sh - onesnap list, show, delete and boot: the
# images a disk save made, for the user who owns them, against the oned
# stand-in. One snapshot of each kind: a deferred save carried out by the
# TM epilog (the oned-format runner), and oned's disk-saveas (onesnap
# create --hot) left as oned and the hot save leave their images. An image
# no save made is never listed, shown, deleted nor booted.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-tm.sh"

# shellcheck disable=SC2119 # no --ssh-system: datastore 100 is not used
tm_setup

. "$(dirname "$0")/lib-onesnap.sh"

# The snapshots every case uses, made once: VM 50's disk 0 saved deferred
# at its terminate (DEF), VM 51's disk 0 by a hot save (HOT) and by oned's
# disk-saveas of the powered-off VM (SAVEAS), and alice's plain image
# (PLAIN).
make_snapshots() {
    local img sysdir
    img=$(tm_image os50 --format qcow2 --size 16)
    user_vm 50 --host node1 --system-ds "$SYS_DS" --disk image="$img"
    # the origin's networks: oned keeps NETWORK_ID and computed addresses
    tm_set vm 50 /VM/TEMPLATE/NIC ""
    tm_set vm 50 /VM/TEMPLATE/NIC/NETWORK_ID 3
    tm_set vm 50 /VM/TEMPLATE/NIC/IP 10.0.0.50
    tm_set vm 50 /VM/TEMPLATE/NIC/MODEL virtio
    tm_set vm 50 /VM/TEMPLATE/CONTEXT ""
    tm_set vm 50 /VM/TEMPLATE/CONTEXT/NETWORK YES
    tm_set vm 50 /VM/TEMPLATE/CONTEXT/ETH0_IP 10.0.0.50
    tm_set vm 50 /VM/TEMPLATE/CONTEXT/SSH_PUBLIC_KEY "ssh-ed25519 AAAAlab lab@frontend"
    tm_prolog 50
    sysdir=$(printf '%s\n' "$(tm_sysdir 50)" | tr -s /)
    on_host node1 qemu-io -f qcow2 -c "write -q -P 0x50 1M 1M" "$sysdir/disk.0" >/dev/null
    expect_success snap create 50 0 "web before upgrade" --deferred
    tm_set vm 50 "/VM/HISTORY_RECORDS/HISTORY[last()]/ACTION" 27
    tm_epilog 50
    DEF=$(tm_get vm 50 /VM/USER_TEMPLATE/QCOW2C_DEFERRED_SAVE_0/IMAGE_ID)
    [ -n "$DEF" ]

    img=$(tm_image os51 --format qcow2 --size 16)
    user_vm 51 --host node1 --system-ds "$SYS_DS" --disk image="$img"
    tm_vm_state 51 3 8
    # oned's disk-saveas as oneadmin; the image as the copy leaves it
    expect_success "$ONESNAP" create 51 0 db-hot --hot
    HOT=$(cat "$LAST_STDOUT")
    tm_set image "$HOT" /IMAGE/STATE 1
    tm_set image "$HOT" /IMAGE/UID 5
    tm_set image "$HOT" /IMAGE/UNAME alice
    tm_set image "$HOT" /IMAGE/TEMPLATE/HOT_SAVE_INSTANT 2026-12-07T18:00:01.250Z
    tm_set image "$HOT" /IMAGE/TEMPLATE/HOT_SAVE_CONSISTENCY filesystem-frozen
    tm_set image "$HOT" /IMAGE/TEMPLATE/HOT_SAVE_NOTE "file systems frozen by the guest agent"
    tm_vm_state 51 3 8
    expect_success "$ONESNAP" create 51 0 db-saveas --hot
    SAVEAS=$(cat "$LAST_STDOUT")
    tm_set image "$SAVEAS" /IMAGE/STATE 1
    # oneadmin's, shared with alice's group
    tm_set image "$SAVEAS" /IMAGE/GID 100
    tm_set image "$SAVEAS" /IMAGE/PERMISSIONS/GROUP_U 1

    PLAIN=$(tm_image plain50 --format qcow2 --size 1)
    tm_set image "$PLAIN" /IMAGE/UID 5
    # each case runs in a subshell of its own
    printf 'DEF=%s HOT=%s SAVEAS=%s PLAIN=%s\n' "$DEF" "$HOT" "$SAVEAS" "$PLAIN" >"$TEST_DIR/ids"
}

load_ids() {
    # shellcheck source=/dev/null
    . "$TEST_DIR/ids"
}

ids_listed() { # the ID column of onesnap list's table
    awk 'NR > 1 && $1 ~ /^[0-9]+$/ { print $1 }' "$LAST_STDOUT" | tr '\n' ' '
}

case_bad_input() {
    must_fail --status 2 snap show
    one_plain_line "$LAST_STDERR" >/dev/null
    must_fail --status 2 snap show x
    expect_stderr_line --match "'x' is not a snapshot id"
    must_fail --status 2 snap list --how warm
    expect_stderr_line --match 'hot, saveas or deferred'
    must_fail --status 2 snap list --pending --page 2
    must_fail --status 2 snap list --page 0
    must_fail --status 2 snap list --per-page many
    must_fail --status 2 snap boot 3 --cpu 0
    must_fail --status 2 snap boot 3 --memory -5
    must_fail --status 2 snap boot 3 --name "a:b"
    must_fail --status 2 snap create 50 0 n --deferred --hold
    expect_stderr_line --match 'create does not take --hold'
    must_fail --status 2 snap delete 3 4
    must_fail --status 2 snap frobnicate
    expect_success "$ONESNAP" --help
    grep -q -- 'onesnap boot SNAPSHOT_ID' "$LAST_STDOUT"
}

case_list() {
    load_ids
    expect_success snap list
    # newest first; the plain image is no snapshot
    [ "$(ids_listed)" = "$SAVEAS $HOT $DEF " ]
    grep -q "^$DEF  *50  *0  *deferred .* READY .* alice  *web before upgrade\$" "$LAST_STDOUT"
    grep -q "^$HOT  *51  *0  *hot  *2026-12-07T18:00:01Z READY .*db-hot\$" "$LAST_STDOUT"
    grep -q "^$SAVEAS  *51  *0  *saveas " "$LAST_STDOUT"
    # filters
    expect_success snap list --vm 51
    [ "$(ids_listed)" = "$SAVEAS $HOT " ]
    expect_success snap list --how deferred
    [ "$(ids_listed)" = "$DEF " ]
    expect_success snap list --name before
    [ "$(ids_listed)" = "$DEF " ]
    expect_success snap list --vm 51 --how deferred
    [ "$(ids_listed)" = "" ]
    # --mine: the saveas image is oneadmin's
    expect_success snap list --mine
    [ "$(ids_listed)" = "$HOT $DEF " ]
    # pages
    expect_success snap list --per-page 2
    [ "$(ids_listed)" = "$SAVEAS $HOT " ]
    grep -q '^page 1 of 2 (3 snapshots)' "$LAST_STDOUT"
    expect_success snap list --per-page 2 --page 2
    [ "$(ids_listed)" = "$DEF " ]
    must_fail snap list --per-page 2 --page 3
    expect_stderr_line "onesnap: there is no page 3: 3 snapshots make 2 pages of 2"
    # another user of the group sees the shared one only
    expect_success snap_bob list
    [ "$(ids_listed)" = "$SAVEAS " ]
}

case_show() {
    load_ids
    expect_success snap show "$DEF"
    grep -q "^FROM  *VM 50, disk 0\$" "$LAST_STDOUT"
    grep -q "^HOW  *deferred save" "$LAST_STDOUT"
    grep -q "^SHUTDOWN  *graceful\$" "$LAST_STDOUT"
    grep -q "^CONSISTENCY  *clean shutdown\$" "$LAST_STDOUT"
    grep -q "^OWNER  *alice:users\$" "$LAST_STDOUT"
    grep -q "^SAVED  *20[0-9-]*T[0-9:]*Z\$" "$LAST_STDOUT"
    expect_success snap show "$HOT"
    grep -q "^HOW  *hot save of the running VM\$" "$LAST_STDOUT"
    grep -q "^SAVED  *2026-12-07T18:00:01.250Z\$" "$LAST_STDOUT"
    grep -q "^CONSISTENCY  *filesystem-frozen\$" "$LAST_STDOUT"
    grep -q "^NOTE  *file systems frozen by the guest agent\$" "$LAST_STDOUT"
    must_fail snap show "$PLAIN"
    expect_stderr_line "onesnap: image $PLAIN is not a disk snapshot (no disk save made it)"
    must_fail snap show 999
    one_plain_line "$LAST_STDERR" | grep -q 999
}

case_boot() {
    load_ids
    local vm vm2
    expect_success snap boot "$DEF"
    vm=$(cat "$LAST_STDOUT")
    # the snapshot is its disk, and it is shaped like VM 50
    [ "$(tm_get vm "$vm" /VM/UNAME)" = alice ]
    [ "$(tm_get vm "$vm" /VM/NAME)" = "web before upgrade" ]
    [ "$(tm_get vm "$vm" 'string(count(/VM/TEMPLATE/DISK))')" = 1 ]
    [ "$(tm_get vm "$vm" /VM/TEMPLATE/DISK/IMAGE_ID)" = "$DEF" ]
    [ "$(tm_get vm "$vm" /VM/TEMPLATE/CPU)" = "$(tm_get vm 50 /VM/TEMPLATE/CPU)" ]
    [ "$(tm_get vm "$vm" /VM/TEMPLATE/MEMORY)" = "$(tm_get vm 50 /VM/TEMPLATE/MEMORY)" ]
    [ "$(tm_get vm "$vm" /VM/TEMPLATE/OS/MACHINE)" = q35 ]
    [ "$(tm_get vm "$vm" 'string(count(/VM/TEMPLATE/OS/UUID))')" = 0 ]
    [ "$(tm_get vm "$vm" /VM/TEMPLATE/GRAPHICS/TYPE)" = vnc ]
    [ "$(tm_get vm "$vm" /VM/TEMPLATE/NIC/NETWORK_ID)" = 3 ]
    [ "$(tm_get vm "$vm" /VM/TEMPLATE/NIC/MODEL)" = virtio ]
    [ "$(tm_get vm "$vm" 'string(count(/VM/TEMPLATE/NIC/IP))')" = 0 ]
    [ "$(tm_get vm "$vm" /VM/TEMPLATE/CONTEXT/SSH_PUBLIC_KEY)" = "ssh-ed25519 AAAAlab lab@frontend" ]
    [ "$(tm_get vm "$vm" /VM/TEMPLATE/CONTEXT/NETWORK)" = YES ]
    [ "$(tm_get vm "$vm" 'string(count(/VM/TEMPLATE/CONTEXT/ETH0_IP))')" = 0 ]
    [ "$(tm_get vm "$vm" /VM/USER_TEMPLATE/QCOW2C_BOOTED_FROM)" = "$DEF" ]
    # oned took the image for it
    [ "$(tm_get image "$DEF" /IMAGE/RUNNING_VMS)" = 1 ]
    [ "$(tm_get image "$DEF" /IMAGE/VMS/ID)" = "$vm" ]
    expect_success snap show "$DEF"
    grep -q "^USED BY  *$vm\$" "$LAST_STDOUT"
    # what the command line says wins; --hold
    expect_success snap boot "$HOT" --name db-test --memory 128 --cpu 0.5 --vcpu 2 --hold
    vm2=$(cat "$LAST_STDOUT")
    [ "$(tm_get vm "$vm2" /VM/NAME)" = db-test ]
    [ "$(tm_get vm "$vm2" /VM/TEMPLATE/MEMORY)" = 128 ]
    [ "$(tm_get vm "$vm2" /VM/TEMPLATE/CPU)" = 0.5 ]
    [ "$(tm_get vm "$vm2" /VM/TEMPLATE/VCPU)" = 2 ]
    [ "$(tm_get vm "$vm2" /VM/STATE)" = 2 ]
    # a plain image is not booted; nor a snapshot bob may not use
    must_fail snap boot "$PLAIN"
    expect_stderr_line --match "is not a disk snapshot"
    must_fail snap_bob boot "$DEF"
    one_plain_line "$LAST_STDERR" | grep -q -i 'not authorized'
    # the origin gone (purged): the size must be given
    rm "$STANDIN_DIR/vm/51.xml"
    must_fail snap boot "$SAVEAS"
    expect_stderr_line --match "^onesnap: cannot read VM 51, where snapshot $SAVEAS was saved \(or give --memory and --cpu\): "
}

case_delete() {
    load_ids
    local n
    # in use by the VM booted from it
    must_fail snap delete "$DEF"
    expect_stderr_line --match "^onesnap: snapshot $DEF is the disk of 1 VM: terminate it first\$"
    [ -e "$STANDIN_DIR/image/$DEF.xml" ]
    must_fail snap delete "$PLAIN"
    expect_stderr_line --match "is not a disk snapshot"
    [ -e "$STANDIN_DIR/image/$PLAIN.xml" ]
    # bob may not delete alice's
    must_fail snap_bob delete "$HOT"
    [ -e "$STANDIN_DIR/image/$HOT.xml" ]
    # the VM booted from it left (hold VM: nothing took the image); HOT goes
    tm_set image "$HOT" /IMAGE/RUNNING_VMS 0
    tm_set image "$HOT" /IMAGE/STATE 1
    n=$(find "$STANDIN_DIR/image" -name '*.xml' | wc -l)
    expect_success snap delete "$HOT"
    grep -q "^deleted: snapshot $HOT 'db-hot' (VM 51, disk 0)\$" "$LAST_STDOUT"
    [ ! -e "$STANDIN_DIR/image/$HOT.xml" ]
    [ "$(find "$STANDIN_DIR/image" -name '*.xml' | wc -l)" = $((n - 1)) ]
    expect_success snap list
    [ "$(ids_listed)" = "$SAVEAS $DEF " ]
}

test_case "snapshots of each kind: deferred (terminate), hot, saveas" make_snapshots
test_case "onesnap: bad input gets one line and status 2" case_bad_input
test_case "list: snapshots only, newest first; --vm, --how, --name, --mine, pages" case_list
test_case "show: where, when, how, how consistent" case_show
test_case "boot: a VM shaped like the origin, on the snapshot; overrides; refusals" case_boot
test_case "delete: snapshots only, not while in use, not another user's" case_delete
