#!/bin/bash
# t0250-tm-vm-life.sh - a VM's whole life on a shared system datastore
# (datastore 0, TM qcow2c; image datastore 1, qcow2c), driven by the
# transfer files oned writes (lib-tm.sh generates them from the VM document
# as TransferManager.cc does; each is also checked against the file a real
# oned wrote, tests/fixtures/oned/tm/transfer-files/vm9, and the VMM's
# TM_COMMANDs against tests/fixtures/oned/tm/vmm). Each case is one VM with
# the captured VM's disks: a non-persistent OS image (disk.0, CLONE), a
# persistent datablock (disk.1, LN), a volatile qcow2 fs disk (disk.2,
# MKIMAGE), a volatile swap disk (disk.3, MKSWAP) and the context CD
# (disk.4, CONTEXT from the VMM). At deploy the guest writes a recognisable
# pattern into every disk. Scenarios: deploy and terminate; disk snapshots
# (create, revert, delete in the middle of the chain and the active one) on
# both image disks; cold and live migration (premigrate, postmigrate,
# failmigrate); stop and resume on another host; undeploy, resize and
# save-as while undeployed, resume on another host; resize; hot attach and
# detach of a running VM (the VMM's TM_COMMAND) and of a powered-off one
# (.prolog_attach / .epilog_detach); disk save-as of a powered-off VM and of
# snapshots (cpds); terminate with persistent (mvds) and non-persistent
# (delete) disks and a new VM on the persistent image.
# After every step: the VM directory and the image datastore hold exactly
# the layout OpenNebula's qcow2 driver leaves (protocol §2.2, trap 9:
# disk.N -> disk.N.snap/K, the self link, relative backing names in
# disk.N.snap, absolute ones in SOURCE.snap), `qemu-img check` passes on
# every qcow2 file of every datastore, nothing temporary is left, and the
# guest's data is where it must be (qemu-io patterns, qemu-img compare).
#
# Deliberate difference from stock (README, t0230): snap_delete gives the
# rebased file the deleted file's own backing name; stock writes the
# absolute path "<snap dir>/<k>" even inside a chain of relative names.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-tm.sh"

need_tool qemu-io qemu-img perl od

# shellcheck disable=SC2119 # no --ssh-system: datastore 0 is shared
tm_setup

# The helpers both VM-life scripts use (checks, the VM, snapshots, attach).
LIFE_MODE=shared
. "$(dirname "$0")/lib-life.sh"

# ---------------------------------------------------------------- checks

# Every qcow2 file of every datastore (all shared here: the front-end's
# view is every host's) is sound, and at least one was found.
check_images() {
    local out
    if ! out=$(bash -c "$CHECK_IMAGES" _ "$TEST_DIR/.checked.$FE" "$DSROOT"); then
        echo "check_images:"
        printf '%s\n' "$out"
        return 1
    fi
    [ "${out##*$'\n'}" -gt 0 ] || { echo "check_images: no qcow2 file found"; return 1; }
}

# A persistent image in datastore 1 whose chain is CHAIN (absolute names):
# SOURCE, SOURCE.snap/0 -> SOURCE, the self link.
pimage_lines() { # FILE CHAIN
    local f=$1 name=${1##*/} kps kp
    read -r _ kps <<<"$2"
    echo "$name file qcow2"
    echo "$name.snap dir"
    echo "$name.snap/0 link $f"
    for kp in $kps; do
        echo "$name.snap/${kp%%:*} file qcow2 $f.snap/${kp#*:}"
    done
    echo "$name.snap/$name.snap link ."
}

# After every step: the VM directory, both images, every qcow2 file. The
# datastores are shared: the front-end's view is the hosts' (host_view
# checks that where the VM moved).
expect_vm() {
    vm_lines | layout_is "$FE" "$D"
    pimage_lines "$F_P" "$C1" | expect_image "$F_P"
    echo "${F_OS##*/} file qcow2" | expect_image "$F_OS"
    cmp "$F_OS" "$TEST_DIR/pristine.$IMG_OS"
    check_images
}

terminate() {
    tm_epilog "$V"
    no_errors
    [ -z "$(tree_on "$FE" "$D")" ] || { echo "terminate: $D is still there"; return 1; }
}

# ---------------------------------------------------------------- cases

case_deploy_terminate() {
    deploy_vm 10
    # the persistent image is linked, the OS image is the overlay's backing
    [ "$(hx "$FE" readlink -f "$D/disk.1")" = "$F_P" ]
    hx "$FE" qemu-img info -U "$D/disk.0.snap/0" | grep -q "^backing file format: qcow2"
    [ ! -e "$DSROOT/$SYS_DS/.monitor" ]
    # the swap disk is a swap area, the context a CD
    # shellcheck disable=SC2016 # expanded on the host
    hx "$FE" bash -c 'head -c 4096 "$1" | tail -c 10 | grep -q SWAPSPACE2' _ "$D/disk.3"
    # shellcheck disable=SC2016 # expanded on the host
    hx "$FE" bash -c 'head -c 32774 "$1" | tail -c 5 | grep -q CD001' _ "$D/disk.4"
    terminate
    same_as_capture transfer.8.epilog
    [ ! -e "$D" ]
    pimage_lines "$F_P" "$C1" | expect_image "$F_P"
    reads "$FE" "$F_P" qcow2 "${DATA[1]}"
    check_images
}

# create 0, 1, 2 (the guest writing between), delete 1 (the middle of the
# chain), revert to 0, revert to 2, delete 2 (the active one), on the
# non-persistent disk (chain in disk.0.snap, relative names) and on the
# persistent one (chain in SOURCE.snap, absolute names) at each step.
case_snapshots() {
    local n s1 s2
    deploy_vm 11
    poweroff
    data_write 0 3 0xa1 1 3 0xb1
    s1=${DATA[0]}
    s2=${DATA[1]}

    for n in 0 1; do SNAPS[$n]="0 0"; snap_step SNAP_CREATE "$n" 0; done
    [ "$(cat "$TM_FILE")" = "$(from_capture "$CAP/transfer.1.disk_snapshot" 's#/disk.0 #/disk.1 #')" ]
    C0="1 1:0"
    C1="1 1:0"
    expect_vm
    reads "$FE" "$D/disk.0.snap/0" qcow2 "$s1" "$F_P.snap/0" qcow2 "$s2"
    data_write 0 4 0xa2 1 4 0xb2

    for n in 0 1; do SNAPS[$n]="1 0 1"; snap_step SNAP_CREATE "$n" 1; done
    C0="2 1:0 2:1"
    C1="2 1:0 2:1"
    expect_vm
    data_write 0 5 0xa3 1 5 0xb3
    local c0=${DATA[0]} c1=${DATA[1]}

    for n in 0 1; do SNAPS[$n]="2 0 1 2"; snap_step SNAP_CREATE "$n" 2; done
    C0="3 1:0 2:1 3:2"
    C1="3 1:0 2:1 3:2"
    expect_vm
    data_write 0 6 0xa4 1 6 0xb4
    data_check

    # the middle of the chain: 2 takes what it used of 1 and backs onto 0
    for n in 0 1; do SNAPS[$n]="2 0 1 2"; snap_step SNAP_DELETE "$n" 1; done
    C0="3 2:0 3:2"
    C1="3 2:0 3:2"
    SNAPS=([0]="2 0 2" [1]="2 0 2")
    expect_vm
    data_check
    reads "$FE" "$D/disk.0.snap/2" qcow2 "$c0" "$F_P.snap/2" qcow2 "$c1"

    # revert to 0: the current file is a new, empty overlay on 0
    for n in 0 1; do snap_step SNAP_REVERT "$n" 0; done
    [ "$(cat "$TM_FILE")" = "$(from_capture "$CAP/transfer.3.disk_snapshot" 's#/disk.0 #/disk.1 #')" ]
    C0="3 2:0 3:0"
    C1="3 2:0 3:0"
    SNAPS=([0]="0 0 2" [1]="0 0 2")
    DATA[0]=$s1
    DATA[1]=$s2
    expect_vm
    data_check

    # revert to 2
    for n in 0 1; do snap_step SNAP_REVERT "$n" 2; done
    C0="3 2:0 3:2"
    C1="3 2:0 3:2"
    SNAPS=([0]="2 0 2" [1]="2 0 2")
    DATA[0]=$c0
    DATA[1]=$c1
    expect_vm
    data_check
    data_write 0 7 0xa5 1 7 0xb5

    # the active snapshot (no children): the current file backs onto 0
    for n in 0 1; do snap_step SNAP_DELETE "$n" 2; done
    C0="3 3:0"
    C1="3 3:0"
    SNAPS=([0]="- 0" [1]="- 0")
    expect_vm
    data_check
    reads "$FE" "$D/disk.0.snap/0" qcow2 "$s1"

    terminate
    pimage_lines "$F_P" "$C1" | expect_image "$F_P"
    reads "$FE" "$F_P.snap/3" qcow2 "${DATA[1]}"
    check_images
}

# A running VM is saved, moved to node2 (.migrate MV lines) and restored
# there (the VMM's restore regenerates the context CD).
case_cold_migration() {
    deploy_vm 12
    # with a snapshot, so that a chain moves
    poweroff
    SNAPS=([0]="0 0" [1]="0 0")
    snap_step SNAP_CREATE 0 0
    snap_step SNAP_CREATE 1 0
    C0="1 1:0"
    C1="1 1:0"
    boot
    data_write 0 3 0xc0 1 3 0xc1
    tm_vm_state "$V" "$LCM_SAVE_MIGRATE" "$ST_ACTIVE"
    tm_migrate "$V" node1 node2
    no_errors
    same_as_capture transfer.7.migrate 's#node1:#nodeX:#g' 's#node2:#node1:#g' 's#nodeX:#node2:#g'
    H=node2
    tm_context "$V"
    expect_vm
    host_view
    data_check
    # and back
    tm_migrate "$V" node2 node1
    H=node1
    tm_context "$V"
    expect_vm
    data_check
    terminate
}

# Live migration: the VMM runs PREMIGRATE, migrates, runs POSTMIGRATE (the
# system datastore's TM, stdin the VM); a failed one runs FAILMIGRATE.
case_live_migration() {
    local cmd in=$TEST_DIR/vm.b64
    deploy_vm 13
    tm_vm_move "$V" node2
    tm_vm_state "$V" "$LCM_MIGRATE" "$ST_ACTIVE"
    cmd="MIGRATE qcow2c node1 node2 $DS_LOCATION/$SYS_DS/$V $V $SYS_DS"
    [ "$cmd" = "$(vmm_capture 004-MIGRATE-vm12.xml)" ]
    tm_vmm_stdin "$V" "$in"
    tm_vmm "$V" "PRE${cmd}" "$in"
    expect_vm
    # the hypervisors move the guest; the storage is shared
    tm_vmm "$V" "POST${cmd}" "$in"
    tm_vm_state "$V" "$LCM_RUNNING" "$ST_ACTIVE"
    H=node2
    expect_vm
    host_view
    data_check
    data_write 0 3 0xe0

    # node2 -> node1 fails after PREMIGRATE: FAILMIGRATE, the VM stays
    tm_vm_move "$V" node1
    tm_vm_state "$V" "$LCM_MIGRATE" "$ST_ACTIVE"
    cmd="MIGRATE qcow2c node2 node1 $DS_LOCATION/$SYS_DS/$V $V $SYS_DS"
    tm_vmm_stdin "$V" "$in"
    tm_vmm "$V" "PRE${cmd}" "$in"
    tm_vmm "$V" "FAIL${cmd}" "$in"
    # oned: the VM is back on node2 (a copy of the previous history record)
    tm_vm_move "$V" node2
    tm_vm_state "$V" "$LCM_RUNNING" "$ST_ACTIVE"
    expect_vm
    data_check
    terminate
}

# stop: MV every disk and the directory to the front-end (shared: nothing
# moves); resume on node2.
case_stop_resume() {
    local s0 s1
    deploy_vm 14
    # with snapshots, so that chains move and work on the other host
    poweroff
    SNAPS=([0]="0 0" [1]="0 0")
    snap_step SNAP_CREATE 0 0
    snap_step SNAP_CREATE 1 0
    C0="1 1:0"
    C1="1 1:0"
    s0=${DATA[0]}
    s1=${DATA[1]}
    boot
    data_write 0 3 0x31 1 3 0x32
    tm_stop "$V"
    no_errors
    [ "$(cat "$TM_FILE")" = "$(cat <<EOF
MV qcow2c node1:$DS_LOCATION/0/$V/disk.0 $FE:$DS_LOCATION/0/$V/disk.0 $V 1
MV qcow2c node1:$DS_LOCATION/0/$V/disk.1 $FE:$DS_LOCATION/0/$V/disk.1 $V 1
MV qcow2c node1:$DS_LOCATION/0/$V/disk.2 $FE:$DS_LOCATION/0/$V/disk.2 $V 0
MV qcow2c node1:$DS_LOCATION/0/$V/disk.3 $FE:$DS_LOCATION/0/$V/disk.3 $V 0
MV qcow2c node1:$DS_LOCATION/0/$V $FE:$DS_LOCATION/0/$V $V 0
EOF
)" ]
    H=$FE
    expect_vm
    data_check
    tm_resume "$V" node2
    no_errors
    [ "$(tail -n 1 "$TM_FILE")" = "MV qcow2c $FE:$DS_LOCATION/0/$V node2:$DS_LOCATION/0/$V $V 0" ]
    H=node2
    tm_context "$V"
    expect_vm
    host_view
    data_check
    # on node2: snapshot 1, revert to 0, delete 1 (a leaf now)
    poweroff
    SNAPS=([0]="1 0 1" [1]="1 0 1")
    snap_step SNAP_CREATE 0 1
    snap_step SNAP_CREATE 1 1
    C0="2 1:0 2:1"
    C1="2 1:0 2:1"
    expect_vm
    snap_step SNAP_REVERT 0 0
    snap_step SNAP_REVERT 1 0
    C0="2 1:0 2:0"
    C1="2 1:0 2:0"
    SNAPS=([0]="0 0 1" [1]="0 0 1")
    DATA[0]=$s0
    DATA[1]=$s1
    expect_vm
    data_check
    snap_step SNAP_DELETE 0 1
    snap_step SNAP_DELETE 1 1
    C0="2 2:0"
    C1="2 2:0"
    SNAPS=([0]="0 0" [1]="0 0")
    expect_vm
    data_check
    boot
    terminate
}

# undeploy (the same MV lines, EPILOG_UNDEPLOY), then, undeployed: a
# resize (oned names the last host) and a save-as (on the front-end), then
# resume on node2 (PROLOG_UNDEPLOY) and a deploy there.
case_undeploy_resume() {
    local f new saved
    deploy_vm 15
    tm_stop "$V" --print >"$TEST_DIR/undeploy"
    tm_vm_state "$V" "$LCM_EPILOG_UNDEPLOY" "$ST_ACTIVE"
    tm_transfer "$V" --op stop "$TEST_DIR/undeploy"
    tm_vm_state "$V" "$LCM_INIT" "$ST_UNDEPLOYED"
    H=$FE
    expect_vm
    data_check

    # resize disk.0 while undeployed (RESIZE names node1, the last host)
    tm_set vm "$V" '/VM/TEMPLATE/DISK[DISK_ID=0]/SIZE' 40
    tm_vm_state "$V" "$LCM_RESIZE_UNDEPLOYED" "$ST_ACTIVE"
    tm_transfer "$V" --op disk_resize <<<"RESIZE qcow2c node1:$DS_LOCATION/0/$V/disk.0 40 $V 1"
    tm_vm_state "$V" "$LCM_INIT" "$ST_UNDEPLOYED"
    [ "$(vsize_of "$FE" "$D/disk.0")" = $((40 << 20)) ]
    expect_vm

    # save-as of disk.1 while undeployed: CPDS on the front-end
    new=$DS_LOCATION/1/$(printf 'undeployed-%s' "$V" | md5sum | cut -c1-32)
    saved=$(norm "$new")
    flatten "$FE" "$D/disk.1" "$TEST_DIR/ref.undeployed"
    tm_vm_state "$V" "$LCM_SAVEAS_UNDEPLOYED" "$ST_ACTIVE"
    tm_transfer "$V" --op disk_saveas <<<"CPDS qcow2c $FE:$DS_LOCATION/0/$V/disk.1 $new -1 $V 1"
    tm_vm_state "$V" "$LCM_INIT" "$ST_UNDEPLOYED"
    expect_vm
    echo "${saved##*/} file qcow2" | expect_image "$saved"
    same_content "$FE" "$saved" "$TEST_DIR/ref.undeployed"

    tm_resume "$V" node2 --print >"$TEST_DIR/resume"
    tm_vm_move "$V" node2
    tm_vm_state "$V" "$LCM_PROLOG_UNDEPLOY" "$ST_ACTIVE"
    tm_transfer "$V" --op resume "$TEST_DIR/resume"
    no_errors
    [ "$(tail -n 1 "$TM_FILE")" = "MV qcow2c $FE:$DS_LOCATION/0/$V node2:$DS_LOCATION/0/$V $V 0" ]
    tm_vm_state "$V" "$LCM_RUNNING" "$ST_ACTIVE"
    H=node2
    tm_context "$V"
    expect_vm
    host_view
    data_check
    [ "$(vsize_of "$FE" "$D/disk.0")" = $((40 << 20)) ]
    terminate
    f=$saved
    same_content "$FE" "$f" "$TEST_DIR/ref.undeployed"
}

# undeploy, then terminate from there: the epilog names the front-end
# (trigger_epilog(true)); the persistent image keeps the chain and data.
case_undeploy_terminate() {
    local spec
    deploy_vm 21
    poweroff
    SNAPS=([1]="0 0")
    snap_step SNAP_CREATE 1 0
    C1="1 1:0"
    data_write 1 3 0x21
    spec=${DATA[1]}
    boot
    tm_stop "$V" --print >"$TEST_DIR/undeploy"
    tm_vm_state "$V" "$LCM_EPILOG_UNDEPLOY" "$ST_ACTIVE"
    tm_transfer "$V" --op stop "$TEST_DIR/undeploy"
    tm_vm_state "$V" "$LCM_INIT" "$ST_UNDEPLOYED"
    H=$FE
    expect_vm
    tm_epilog "$V" --local
    no_errors
    [ "$(cat "$TM_FILE")" = "$(from_capture "$CAP/transfer.8.epilog" 's#node1:#frontend:#')" ]
    [ -z "$(tree_on "$FE" "$D")" ]
    pimage_lines "$F_P" "$C1" | expect_image "$F_P"
    reads "$FE" "$F_P.snap/1" qcow2 "$spec"
    cmp "$F_OS" "$TEST_DIR/pristine.$IMG_OS"
    check_images
}

# resize of a powered-off VM: the non-persistent disk (with a snapshot:
# only its current file grows), the persistent one (its image) and the
# volatile fs disk (the system datastore's TM and id).
case_resize() {
    deploy_vm 16
    poweroff
    SNAPS=([0]="0 0")
    snap_step SNAP_CREATE 0 0
    C0="1 1:0"
    tm_set vm "$V" '/VM/TEMPLATE/DISK[DISK_ID=0]/SIZE' 128
    tm_vm_state "$V" "$LCM_RESIZE_POWEROFF" "$ST_ACTIVE"
    tm_transfer "$V" --op disk_resize <<<"RESIZE qcow2c node1:$DS_LOCATION/0/$V/disk.0 128 $V 1"
    no_errors
    same_as_capture transfer.8.disk_resize
    tm_set vm "$V" '/VM/TEMPLATE/DISK[DISK_ID=1]/SIZE' 24
    tm_transfer "$V" --op disk_resize <<<"RESIZE qcow2c node1:$DS_LOCATION/0/$V/disk.1 24 $V 1"
    tm_set vm "$V" '/VM/TEMPLATE/DISK[DISK_ID=2]/SIZE' 20
    tm_transfer "$V" --op disk_resize <<<"RESIZE qcow2c node1:$DS_LOCATION/0/$V/disk.2 20 $V 0"
    poweroff
    [ "$(vsize_of "$FE" "$D/disk.0")" = $((128 << 20)) ]
    [ "$(vsize_of "$FE" "$D/disk.0.snap/0")" = $((16 << 20)) ]
    [ "$(vsize_of "$FE" "$D/disk.1")" = $((24 << 20)) ]
    [ "$(vsize_of "$FE" "$F_P")" = $((24 << 20)) ]
    [ "$(vsize_of "$FE" "$D/disk.2")" = $((20 << 20)) ]
    expect_vm
    data_check
    # the guest uses the new space
    hx "$FE" qemu-io -f qcow2 -c "write -q -P 0x12 100M 1M" "$D/disk.0" >/dev/null
    hx "$FE" qemu-io -f qcow2 -c "write -q -P 0x13 20M 1M" "$D/disk.1" >/dev/null
    boot
    terminate
    reads "$FE" "$F_P" qcow2 "${DATA[1]} 20:0x13"
}

# Hot attach and detach of a running VM (the VMM runs the TM command of the
# disk: CLONE/LN, then DELETE/MVDS), the same disk id again (a stale
# disk.5.snap: stock's DELETE leaves it), and of a powered-off VM
# (.prolog_attach, .epilog_detach) with a persistent image.
case_attach_detach() {
    local ia ib ic fa fb fc line
    deploy_vm 17
    ia=$(tm_image "hot-a-$V" --format qcow2 --size 8 --type DATABLOCK)
    ib=$(tm_image "hot-b-$V" --format qcow2 --size 8 --type DATABLOCK)
    ic=$(tm_image "cold-p-$V" --format qcow2 --size 8 --type DATABLOCK --persistent)
    fa=$(tm_image_file "$ia")
    fb=$(tm_image_file "$ib")
    fc=$(tm_image_file "$ic")
    FMT[5]=qcow2

    # hot attach of ia as disk 5 (the context is disk 4)
    attach_disk "$ia" 5 sdf
    tm_vm_state "$V" "$LCM_HOTPLUG" "$ST_ACTIVE"
    line=$(attach_line 5)
    [ "$line" = "CLONE qcow2c $FE:$(tm_image_source "$ia") node1:$DS_LOCATION/0/$V/disk.5 $V 1" ]
    tm_vmm "$V" "$line"
    attach_done
    tm_vm_state "$V" "$LCM_RUNNING" "$ST_ACTIVE"
    EXTRA=$(chain_lines 5 "file qcow2 $fa" 0)
    DATA[5]="0:$(tm_pattern "$ia")"
    data_write 5 3 0x55
    expect_vm
    data_check

    # hot detach: DELETE removes disk.5 only; disk.5.snap stays until the
    # VM directory goes (as stock, trap 17)
    detach_start 5
    tm_vm_state "$V" "$LCM_HOTPLUG" "$ST_ACTIVE"
    line=$(detach_line 5)
    [ "$line" = "DELETE qcow2c node1:$DS_LOCATION/0/$V/disk.5 $V 1" ]
    tm_vmm "$V" "$line"
    detach_done 5
    tm_vm_state "$V" "$LCM_RUNNING" "$ST_ACTIVE"
    EXTRA=$(chain_lines 5 "file qcow2 $fa" 0 | grep -v '^disk.5 ')
    unset 'DATA[5]'
    expect_vm

    # ib attached as disk 5 again: a fresh overlay on ib
    attach_disk "$ib" 5 sdf
    tm_vm_state "$V" "$LCM_HOTPLUG" "$ST_ACTIVE"
    tm_vmm "$V" "$(attach_line 5)"
    attach_done
    tm_vm_state "$V" "$LCM_RUNNING" "$ST_ACTIVE"
    EXTRA=$(chain_lines 5 "file qcow2 $fb" 0)
    DATA[5]="0:$(tm_pattern "$ib")"
    expect_vm
    data_check
    detach_start 5
    tm_vm_state "$V" "$LCM_HOTPLUG" "$ST_ACTIVE"
    tm_vmm "$V" "$(detach_line 5)"
    detach_done 5
    unset 'DATA[5]'
    EXTRA=$(chain_lines 5 "file qcow2 $fb" 0 | grep -v '^disk.5 ')

    # powered off: the persistent ic as disk 5 (.prolog_attach, LN)
    poweroff
    attach_disk "$ic" 5 sdf
    tm_vm_state "$V" "$LCM_HOTPLUG_PROLOG_POWEROFF" "$ST_ACTIVE"
    tm_transfer "$V" --op prolog_attach <<<"$(attach_line 5)"
    [ "$(cat "$TM_FILE")" = "LN qcow2c $FE:$(tm_image_source "$ic") node1:$DS_LOCATION/0/$V/disk.5 $V 1" ]
    attach_done
    poweroff
    EXTRA="disk.5 link $fc.snap/0"
    DATA[5]="0:$(tm_pattern "$ic")"
    data_write 5 4 0x5c
    expect_vm
    pimage_lines "$fc" 0 | expect_image "$fc"
    data_check

    # .epilog_detach: MVDS (the disk is in its image already)
    detach_start 5
    tm_vm_state "$V" "$LCM_HOTPLUG_EPILOG_POWEROFF" "$ST_ACTIVE"
    tm_transfer "$V" --op epilog_detach <<<"$(detach_line 5)"
    [ "$(cat "$TM_FILE")" = "MVDS qcow2c node1:$DS_LOCATION/0/$V/disk.5 $(tm_image_source "$ic") $V 1" ]
    detach_done 5
    poweroff
    # as stock's mvds (exit 0): the link stays until the directory goes
    EXTRA="disk.5 link $fc.snap/0"
    local spec=${DATA[5]}
    unset 'DATA[5]'
    expect_vm
    pimage_lines "$fc" 0 | expect_image "$fc"
    # the non-persistent images are untouched
    reads "$FE" "$fc" qcow2 "$spec" "$fa" qcow2 "0:$(tm_pattern "$ia")" \
        "$fb" qcow2 "0:$(tm_pattern "$ib")"
    boot
    terminate
    check_images
}

# Save-as of a powered-off VM: the current state and snapshot 0 of both
# disks (CPDS -1 / 0 into new SOURCEs of datastore 1, as DS mkfs names
# them); the saved images are standalone qcow2 files with the content they
# had, and keep it after the VM is terminated.
case_saveas() {
    local n snap new f line i=0
    local -a saved=()
    deploy_vm 18
    poweroff
    SNAPS=([0]="0 0" [1]="0 0")
    snap_step SNAP_CREATE 0 0
    snap_step SNAP_CREATE 1 0
    C0="1 1:0"
    C1="1 1:0"
    data_write 0 3 0xf0 1 3 0xf1
    for n in 0 1; do
        for snap in -1 0; do
            i=$((i + 1))
            new=$DS_LOCATION/1/$(printf 'saveas-%s-%s-%s' "$V" "$n" "$snap" | md5sum | cut -c1-32)
            f=$(norm "$new")
            if [ "$snap" = -1 ]; then
                flatten "$FE" "$D/disk.$n" "$TEST_DIR/ref.$i"
            elif [ "$n" = 0 ]; then
                flatten "$FE" "$D/disk.0.snap/0" "$TEST_DIR/ref.$i"
            else
                flatten "$FE" "$F_P.snap/0" "$TEST_DIR/ref.$i"
            fi
            # oned: HOTPLUG_SAVEAS_POWEROFF, the disk's HOTPLUG_SAVE_AS_*
            tm_get vm "$V" >"$TEST_DIR/before-saveas.xml"
            tm_set vm "$V" "/VM/TEMPLATE/DISK[DISK_ID=$n]/HOTPLUG_SAVE_AS_ACTIVE" YES
            tm_set vm "$V" "/VM/TEMPLATE/DISK[DISK_ID=$n]/HOTPLUG_SAVE_AS" $((900 + i))
            tm_set vm "$V" "/VM/TEMPLATE/DISK[DISK_ID=$n]/HOTPLUG_SAVE_AS_SOURCE" "$new"
            tm_set vm "$V" "/VM/TEMPLATE/DISK[DISK_ID=$n]/HOTPLUG_SAVE_AS_SNAPSHOT_ID" "$snap"
            tm_vm_state "$V" "$LCM_SAVEAS_POWEROFF" "$ST_ACTIVE"
            line="CPDS qcow2c node1:$DS_LOCATION/0/$V/disk.$n $new $snap $V 1"
            tm_transfer "$V" --op disk_saveas <<<"$line"
            no_errors
            if [ "$n$snap" = 0-1 ]; then
                same_as_capture transfer.4.disk_saveas \
                    "s#/var/lib/one//datastores/107/f76f39ad9e116131f25bc30a7e4514a1#$new#"
            fi
            "$HARNESS/standin-ctl" "$STANDIN_DIR" put vm "$TEST_DIR/before-saveas.xml" >/dev/null
            poweroff
            echo "${f##*/} file qcow2" | expect_image "$f"
            same_content "$FE" "$f" "$TEST_DIR/ref.$i"
            md5sum "$f" >>"$TEST_DIR/saved.md5"
            saved+=("$f")
            expect_vm
        done
    done
    # what each saved: the current states hold 3M, the snapshots do not
    reads "$FE" "${saved[0]}" qcow2 "${DATA[0]}" \
        "${saved[1]}" qcow2 "0:$(tm_pattern "$IMG_OS") 2:0xd0" \
        "${saved[2]}" qcow2 "${DATA[1]}" \
        "${saved[3]}" qcow2 "0:$(tm_pattern "$IMG_P") 2:0xd1"
    boot
    terminate
    md5sum -c --quiet "$TEST_DIR/saved.md5"
    for i in 1 2 3 4; do
        same_content "$FE" "${saved[i - 1]}" "$TEST_DIR/ref.$i"
    done
    check_images
}

# Terminate: DELETE the non-persistent disk, MVDS the persistent one (in
# its image already), DELETE the volatile ones and the directory; the
# persistent image keeps its chain and the guest's data, which a new VM
# finds (LN links the chain's top).
case_terminate() {
    local ref=$TEST_DIR/ref.terminate
    deploy_vm 19
    poweroff
    SNAPS=([1]="0 0")
    snap_step SNAP_CREATE 1 0
    data_write 1 3 0x19
    SNAPS=([1]="1 0 1")
    snap_step SNAP_CREATE 1 1
    C1="2 1:0 2:1"
    data_write 1 4 0x1a
    expect_vm
    flatten "$FE" "$D/disk.1" "$ref"
    boot
    terminate
    same_as_capture transfer.8.epilog
    pimage_lines "$F_P" "$C1" | expect_image "$F_P"
    same_content "$FE" "$F_P.snap/2" "$ref"
    cmp "$F_OS" "$TEST_DIR/pristine.$IMG_OS"
    check_images

    # a new VM on the same persistent image, on node2
    local p=$IMG_P fp=$F_P spec=${DATA[1]}
    tm_vm 20 --host node2 --system-ds "$SYS_DS" --disk image="$p"
    tm_prolog 20
    layout_is "$FE" "$(norm "$(tm_sysdir 20)")" <<EOF
        . dir
        disk.0 link $fp.snap/2
EOF
    reads "$FE" "$(norm "$(tm_sysdir 20)")/disk.0" qcow2 "$spec"
    same_content "$FE" "$(norm "$(tm_sysdir 20)")/disk.0" "$ref"
    tm_epilog 20
    pimage_lines "$fp" "$C1" | expect_image "$fp"
    check_images
}

test_case "deploy (clone, ln, mkimage, mkswap, context) and terminate" case_deploy_terminate
test_case "disk snapshots: create, delete the middle, revert, delete the active" case_snapshots
test_case "cold migration to node2 and back" case_cold_migration
test_case "live migration (pre/postmigrate) and a failed one (failmigrate)" case_live_migration
test_case "stop, then resume on another host (snapshots before and after)" case_stop_resume
test_case "undeploy, resize and save-as while undeployed, resume on another host" case_undeploy_resume
test_case "undeploy, then terminate (the epilog on the front-end)" case_undeploy_terminate
test_case "resize of a powered-off VM" case_resize
test_case "attach and detach: hot (VMM TM command) and powered off" case_attach_detach
test_case "disk save-as of the current state and of snapshots (cpds)" case_saveas
test_case "terminate with persistent (mvds) and non-persistent (delete) disks" case_terminate
