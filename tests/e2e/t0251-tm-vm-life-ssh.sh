#!/bin/bash
# t0251-tm-vm-life-ssh.sh - a VM's whole life on a system datastore of TM
# ssh (datastore 100, a different directory on each host and on the
# front-end: tm_setup --ssh-system) fed by the qcow2c image datastore 1:
# mixed mode, so oned writes the .ssh variants for the image disks
# (CLONE.ssh, LN.ssh, SNAP_*.ssh, CPDS.ssh, MV.ssh, MVDS.ssh, DELETE.ssh)
# and the ssh TM's own lines for the volatile disks and the VM directory
# (tests/harness/tm-ssh, OpenNebula's ssh TM played by stand-ins; its live
# migration hooks premigrate/postmigrate/failmigrate are written below).
# The same scenarios as t0250, on the captured VM's disks: a non-persistent
# OS image (disk.0), a persistent datablock (disk.1), a volatile qcow2 fs
# disk (disk.2), a volatile swap disk (disk.3) and the context CD (disk.4),
# the guest writing a recognisable pattern into each at deploy: deploy and
# terminate; disk snapshots (create, delete in the middle of the chain,
# revert, delete the active one); cold migration; live migration
# (premigrate, the VMM's copy of the storage, postmigrate) and a failed one
# (failmigrate); stop and resume on another host; undeploy, resize and
# save-as while undeployed (the files are on the front-end), resume on
# another host; resize; hot attach/detach and attach/detach while powered
# off (.prolog_attach / .epilog_detach, LN.ssh then MVDS.ssh); disk save-as
# of the current state and of snapshots; terminate (MVDS.ssh moves the
# persistent disk's chain back into its image, DELETE.ssh) and a new VM on
# that image.
# After every step, on node1, node2 and the front-end: the VM directory is
# exactly the layout OpenNebula's qcow2 .ssh actions leave (protocol §2.2,
# §2.4, trap 9: disk.N -> disk.N.snap/K, standalone disk.N.snap/0, the self
# link, relative backing names) where the VM is and absent elsewhere; the
# images in datastore 1 are untouched until MVDS.ssh brings a chain back
# (SOURCE -> <name>.snap/<top>, backing names <name>.snap/<k>); `qemu-img
# check` passes on every qcow2 file of every datastore of every host;
# nothing temporary is left; the guest's data is where it must be.
#
# Deliberate differences from stock (README): snap_delete gives the
# rebased file the deleted file's own backing name (stock: the absolute
# "<snap dir>/<k>"); mvds.ssh removes the VM's emptied copy (stock leaves
# a dangling disk.N and disk.N.snap with its self link, which a detach
# then leaves in the VM directory until it is deleted).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-tm.sh"

need_tool qemu-io qemu-img perl od tar

tm_setup --ssh-system

# The helpers both VM-life scripts use (checks, the VM, snapshots, attach).
LIFE_MODE=ssh
. "$(dirname "$0")/lib-life.sh"

# ---------------------------------------------------------------- checks

# What a host holds, in one command there: the listing of DIR (host_tree's
# format, nothing when absent), then "@@", then CHECK_IMAGES over the
# datastore directories given, then "@@ <its status>".
report_script() {
    # shellcheck disable=SC2016 # expanded by the host's bash
    printf 'bash -c %q _ "$2"\necho @@\nbash -c %q _ "$1" "${@:3}"\necho "@@ $?"\n' \
        "$(_tm_tree_script)" "$CHECK_IMAGES"
}

# The report of HOST about DIR into FILE.tree (listing) and FILE.check.
host_report() { # HOST DIR FILE
    local dirs=$DS100
    [ "$1" != "$FE" ] || dirs=$DSROOT
    # stderr apart: a host's shell start-up may say things (pyenv...)
    hx "$1" bash -c "$(report_script)" _ "$TEST_DIR/.checked.$1" "$(norm "$2")" "$dirs" >"$3" \
        2>"$3.err" || true
    sed -n '0,/^@@$/p' "$3" | sed '$d' >"$3.tree"
    sed -n '/^@@$/,$p' "$3" | sed '1d' >"$3.check"
}

# A persistent image of datastore 1 as mvds.ssh leaves it with chain CHAIN
# ("" for the image as registered: the plain file).
pimage_lines() { # FILE CHAIN
    local name=${1##*/} top kps kp
    if [ -z "$2" ]; then
        echo "$name file qcow2"
        return
    fi
    read -r top kps <<<"$2"
    echo "$name link $name.snap/$top"
    echo "$name.snap dir"
    echo "$name.snap/0 file qcow2"
    for kp in $kps; do
        echo "$name.snap/${kp%%:*} file qcow2 $name.snap/${kp#*:}"
    done
    echo "$name.snap/$name.snap link ."
}

# After every step, on node1, node2 and the front-end (each its own
# datastore 100): the VM directory is vm_lines where the VM is, absent
# elsewhere, every qcow2 file passes qemu-img check (at least one found),
# nothing temporary is left; the images in datastore 1 are as expected.
expect_vm() {
    local h r=$TEST_DIR/report want got n=0 bad=0
    want=$(vm_lines | sed -e 's/ /\t/' | LC_ALL=C sort | sed 's/\t/ /')
    for h in node1 node2 "$FE"; do
        host_report "$h" "$D" "$r"
        got=$(cat "$r.tree")
        if [ "$h" != "$H" ]; then
            if [ -n "$got" ]; then
                echo "expect_vm: $D is on $h too (the VM is on $H):"
                sed 's/^/    /' "$r.tree"
                bad=1
            fi
        elif [ "$got" != "$want" ]; then
            echo "expect_vm: $D on $h differs (- expected, + actual):"
            diff -u <(printf '%s\n' "$want") "$r.tree" | tail -n +3
            bad=1
        fi
        if [ "$(tail -n 1 "$r.check")" != "@@ 0" ]; then
            echo "expect_vm: on $h:"
            sed '$d' "$r.check"
            bad=1
        fi
        n=$((n + $(tail -n 2 "$r.check" | head -n 1)))
    done
    [ "$bad" = 0 ]
    [ "$n" -gt 0 ] || { echo "expect_vm: no qcow2 file found"; return 1; }
    pimage_lines "$F_P" "$PIMG" | expect_image "$F_P"
    echo "${F_OS##*/} file qcow2" | expect_image "$F_OS"
    cmp "$F_OS" "$TEST_DIR/pristine.$IMG_OS"
    [ -n "$PIMG" ] || cmp "$F_P" "$TEST_DIR/pristine.$IMG_P"
}

# Every qcow2 file everywhere (with no VM to look for).
check_images() {
    local h r=$TEST_DIR/report
    for h in node1 node2 "$FE"; do
        host_report "$h" "$DSROOT/none" "$r"
        if [ "$(tail -n 1 "$r.check")" != "@@ 0" ]; then
            echo "check_images: on $h:"
            sed '$d' "$r.check"
            return 1
        fi
    done
}

# terminate: the persistent disk's chain goes back to its image (PIMG).
terminate() {
    tm_epilog "$V"
    no_errors
    PIMG=$C1
    H=none
    expect_vm
}

# ---------------------------------------------------------------- live migration
# OpenNebula's ssh TM hooks (src/tm_mad/ssh/premigrate, postmigrate,
# failmigrate at f847cf2e) as stand-ins, like tests/harness/tm-ssh, with
# tm_common.sh's migrate_other: every other TM of the VM's disks runs the
# same hook with the caller's name as 6th argument and the VM on stdin.
cat >"$REMOTES/tm/ssh/migrate-other.sh" <<'EOF'
# shellcheck shell=bash
# TEST STAND-IN ONLY (t0251): tm_common.sh's migrate_other.
migrate_other() {
    local mad tm n i processed=" " xml
    mad=$(basename "$(dirname "$0")")
    [ -z "${6:-}" ] || return 0
    xml=$(printf '%s' "$TEMPLATE_64" | base64 -d)
    n=$(printf '%s' "$xml" | xmllint --xpath 'count(/VM/TEMPLATE/DISK)' -)
    for ((i = 1; i <= n; i++)); do
        tm=$(printf '%s' "$xml" | xmllint --xpath "string(/VM/TEMPLATE/DISK[$i]/TM_MAD)" -)
        [ "$tm" != "$mad" ] || continue
        case $processed in *" $tm "*) continue ;; esac
        log "Call $tm/${0##*/}"
        echo "$TEMPLATE_64" | "$(dirname "$0")/../$tm/${0##*/}" "$@" "$mad"
        processed+="$tm "
    done
}
EOF
cat >"$REMOTES/tm/ssh/premigrate" <<'EOF'
#!/bin/bash
# TEST STAND-IN ONLY (t0251) for OpenNebula's ssh/premigrate.
SRC_HOST=$1
DST_HOST=$2
DST_PATH=$3
TEMPLATE_64=$(cat)
. "$(dirname "$0")/tm-ssh-common.sh"
. "$(dirname "$0")/migrate-other.sh"
if [ "$SRC_HOST" == "$DST_HOST" ]; then
    log "Not moving $SRC_HOST to $DST_HOST, they are the same host"
    exit 0
fi
ssh_exec_and_log "$DST_HOST" "rm -rf '$DST_PATH'" \
    "Error removing target path to prevent overwrite errors"
migrate_other "$@"
EOF
cat >"$REMOTES/tm/ssh/postmigrate" <<'EOF'
#!/bin/bash
# TEST STAND-IN ONLY (t0251) for OpenNebula's ssh/postmigrate.
SRC_HOST=$1
DST_HOST=$2
VM_ID=$4
DS_ID=$5
TEMPLATE_64=$(cat)
. "$(dirname "$0")/tm-ssh-common.sh"
. "$(dirname "$0")/migrate-other.sh"
ORIG_DS_ID=$(vm_xpath "$VM_ID" '/VM/HISTORY_RECORDS/HISTORY[last()-1]/DS_ID')
SRC_PATH="${DS_DIR}/${ORIG_DS_ID}/${VM_ID}"
if [ "$ORIG_DS_ID" == "$DS_ID" ] && [ "$SRC_HOST" == "$DST_HOST" ]; then
    log "Not moving $SRC_HOST to $DST_HOST, they are the same host"
    exit 0
fi
migrate_other "$@"
$SSH "$SRC_HOST" rm -rf "$SRC_PATH" || { error_message "Error removing $SRC_PATH"; exit 1; }
EOF
printf '#!/bin/bash\n# TEST STAND-IN ONLY (t0251) for common/failmigrate.\nexit 0\n' \
    >"$REMOTES/tm/ssh/failmigrate"
chmod 755 "$REMOTES/tm/ssh/premigrate" "$REMOTES/tm/ssh/postmigrate" "$REMOTES/tm/ssh/failmigrate"

# The KVM driver's migrate on a non-shared system datastore
# (vmm/kvm/migrate: the snapshot directories rsync'ed, the disks copied by
# libvirt, the links made again): the VM directory of SRC appears on DST;
# SRC's copy stays until postmigrate removes it.
vmm_copy_storage() { # SRC DST
    # shellcheck disable=SC2016 # expanded on the host
    hx "$1" bash -c 'set -o pipefail
        tar -C "$1" --sparse -cf - "$2" | ssh -F "$3" -o BatchMode=yes "$4" tar -C "$1" --sparse -xf -' \
        _ "$DS100" "$V" "$SSH_CONFIG" "$2"
}

# ---------------------------------------------------------------- cases

case_deploy_terminate() {
    deploy_vm 10
    # the front-end's datastore 100 is its own
    [ ! -e "$D" ]
    # the swap disk is a swap area, the context a CD
    # shellcheck disable=SC2016 # expanded on the host
    hx node1 bash -c 'head -c 4096 "$1" | tail -c 10 | grep -q SWAPSPACE2' _ "$D/disk.3"
    # shellcheck disable=SC2016 # expanded on the host
    hx node1 bash -c 'head -c 32774 "$1" | tail -c 5 | grep -q CD001' _ "$D/disk.4"
    local spec=${DATA[1]}
    terminate
    same_as_capture transfer.8.epilog
    reads "$FE" "$F_P" qcow2 "$spec"
}

# create 0, 1, 2 (the guest writing between), delete 1 (the middle of the
# chain), revert to 0, revert to 2, delete 2 (the active one), on both
# image disks (both chains in disk.N.snap, relative names) at each step.
case_snapshots() {
    local n s1 s2 c0 c1
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
    reads node1 "$D/disk.0.snap/0" qcow2 "$s1" "$D/disk.1.snap/0" qcow2 "$s2"
    data_write 0 4 0xa2 1 4 0xb2

    for n in 0 1; do SNAPS[$n]="1 0 1"; snap_step SNAP_CREATE "$n" 1; done
    C0="2 1:0 2:1"
    C1="2 1:0 2:1"
    expect_vm
    data_write 0 5 0xa3 1 5 0xb3
    c0=${DATA[0]}
    c1=${DATA[1]}

    for n in 0 1; do SNAPS[$n]="2 0 1 2"; snap_step SNAP_CREATE "$n" 2; done
    C0="3 1:0 2:1 3:2"
    C1="3 1:0 2:1 3:2"
    expect_vm
    data_write 0 6 0xa4 1 6 0xb4
    data_check

    # the middle of the chain: 2 takes what it used of 1 and backs onto 0
    for n in 0 1; do snap_step SNAP_DELETE "$n" 1; done
    [ "$(cat "$TM_FILE")" = "$(from_capture "$CAP/transfer.4.disk_snapshot" 's#/disk.0 #/disk.1 #')" ]
    C0="3 2:0 3:2"
    C1="3 2:0 3:2"
    SNAPS=([0]="2 0 2" [1]="2 0 2")
    expect_vm
    data_check
    reads node1 "$D/disk.0.snap/2" qcow2 "$c0" "$D/disk.1.snap/2" qcow2 "$c1"

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
    reads node1 "$D/disk.0.snap/0" qcow2 "$s1" "$D/disk.1.snap/0" qcow2 "$s2"

    local spec=${DATA[1]}
    boot
    terminate
    # the image got the chain back: 0 and 3, and the guest's data
    reads "$FE" "$F_P" qcow2 "$spec" "$F_P.snap/0" qcow2 "$s2"
}

# A running VM is saved, moved to node2 (.migrate: MV.ssh for the disks,
# the ssh TM's MV copies the directory) and restored there (the VMM's
# restore regenerates the context CD).
case_cold_migration() {
    deploy_vm 12
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
    same_as_capture transfer.7.migrate --sticky \
        's#node1:#nodeX:#g' 's#node2:#node1:#g' 's#nodeX:#node2:#g'
    H=node2
    tm_context "$V"
    expect_vm
    data_check
    tm_migrate "$V" node2 node1
    H=node1
    tm_context "$V"
    expect_vm
    data_check
    terminate
}

# Live migration: the VMM runs the system datastore's PREMIGRATE (ssh: the
# destination cleared, then qcow2c's premigrate with "ssh" as 6th
# argument), migrates the guest and its storage, runs POSTMIGRATE (the
# source's copy goes); a failed one runs FAILMIGRATE after the VMM removed
# its partial copy.
case_live_migration() {
    local cmd in=$TEST_DIR/vm.b64
    deploy_vm 13
    tm_vm_move "$V" node2
    tm_vm_state "$V" "$LCM_MIGRATE" "$ST_ACTIVE"
    cmd="MIGRATE ssh node1 node2 $DS_LOCATION/$SSH_DS/$V $V $SSH_DS"
    [ "$cmd" = "$(vmm_capture 004-MIGRATE-vm12.xml)" ]
    tm_vmm_stdin "$V" "$in"
    tm_vmm "$V" "PRE${cmd}" "$in"
    grep -q "^LOG I -1 premigrate: Call qcow2c/premigrate$" "$TM_REPLY"
    expect_vm
    vmm_copy_storage node1 node2
    tm_vmm "$V" "POST${cmd}" "$in"
    grep -q "^LOG I -1 postmigrate: Call qcow2c/postmigrate$" "$TM_REPLY"
    tm_vm_state "$V" "$LCM_RUNNING" "$ST_ACTIVE"
    H=node2
    expect_vm
    data_check
    data_write 0 3 0xe0 2 3 0xe2

    # node2 -> node1 fails: the VMM removes its copy on node1, FAILMIGRATE
    tm_vm_move "$V" node1
    tm_vm_state "$V" "$LCM_MIGRATE" "$ST_ACTIVE"
    cmd="MIGRATE ssh node2 node1 $DS_LOCATION/$SSH_DS/$V $V $SSH_DS"
    tm_vmm_stdin "$V" "$in"
    tm_vmm "$V" "PRE${cmd}" "$in"
    vmm_copy_storage node2 node1
    hx node1 rm -rf "$D"
    tm_vmm "$V" "FAIL${cmd}" "$in"
    # oned: the VM is back on node2 (a copy of the previous history record)
    tm_vm_move "$V" node2
    tm_vm_state "$V" "$LCM_RUNNING" "$ST_ACTIVE"
    expect_vm
    data_check
    terminate
}

# stop: MV.ssh lines for the disks (nothing), the ssh TM's MV takes the
# directory to the front-end's datastore 100; resume on node2.
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
MV.ssh qcow2c node1:$DS_LOCATION/100/$V/disk.0 $FE:$DS_LOCATION/100/$V/disk.0 $V 1
MV.ssh qcow2c node1:$DS_LOCATION/100/$V/disk.1 $FE:$DS_LOCATION/100/$V/disk.1 $V 1
MV.ssh ssh node1:$DS_LOCATION/100/$V/disk.2 $FE:$DS_LOCATION/100/$V/disk.2 $V 100
MV.ssh ssh node1:$DS_LOCATION/100/$V/disk.3 $FE:$DS_LOCATION/100/$V/disk.3 $V 100
MV ssh node1:$DS_LOCATION/100/$V $FE:$DS_LOCATION/100/$V $V 100
EOF
)" ]
    H=$FE
    expect_vm
    data_check
    tm_resume "$V" node2
    no_errors
    [ "$(tail -n 1 "$TM_FILE")" = "MV ssh $FE:$DS_LOCATION/100/$V node2:$DS_LOCATION/100/$V $V 100" ]
    H=node2
    tm_context "$V"
    expect_vm
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

# undeploy (the same lines, EPILOG_UNDEPLOY): the files are on the
# front-end. Undeployed: a resize (oned names the last host, node1, which
# no longer has the disk) and a save-as (CPDS.ssh on the front-end); then
# resume on node2 (PROLOG_UNDEPLOY) and a deploy there.
case_undeploy_resume() {
    local new saved
    deploy_vm 15
    tm_stop "$V" --print >"$TEST_DIR/undeploy"
    tm_vm_state "$V" "$LCM_EPILOG_UNDEPLOY" "$ST_ACTIVE"
    tm_transfer "$V" --op stop "$TEST_DIR/undeploy"
    tm_vm_state "$V" "$LCM_INIT" "$ST_UNDEPLOYED"
    H=$FE
    expect_vm
    data_check

    tm_set vm "$V" '/VM/TEMPLATE/DISK[DISK_ID=0]/SIZE' 40
    tm_vm_state "$V" "$LCM_RESIZE_UNDEPLOYED" "$ST_ACTIVE"
    tm_transfer "$V" --op disk_resize <<<"RESIZE.ssh qcow2c node1:$DS_LOCATION/100/$V/disk.0 40 $V 1"
    no_errors
    tm_vm_state "$V" "$LCM_INIT" "$ST_UNDEPLOYED"
    [ "$(vsize_of "$FE" "$D/disk.0")" = $((40 << 20)) ]
    expect_vm

    new=$DS_LOCATION/1/$(printf 'undeployed-%s' "$V" | md5sum | cut -c1-32)
    saved=$(norm "$new")
    flatten "$FE" "$D/disk.1" "$TEST_DIR/ref.undeployed"
    tm_vm_state "$V" "$LCM_SAVEAS_UNDEPLOYED" "$ST_ACTIVE"
    tm_transfer "$V" --op disk_saveas <<<"CPDS.ssh qcow2c $FE:$DS_LOCATION/100/$V/disk.1 $new -1 $V 1"
    no_errors
    tm_vm_state "$V" "$LCM_INIT" "$ST_UNDEPLOYED"
    expect_vm
    echo "${saved##*/} file qcow2" | expect_image "$saved"
    same_content "$FE" "$saved" "$TEST_DIR/ref.undeployed"

    tm_resume "$V" node2 --print >"$TEST_DIR/resume"
    tm_vm_move "$V" node2
    tm_vm_state "$V" "$LCM_PROLOG_UNDEPLOY" "$ST_ACTIVE"
    tm_transfer "$V" --op resume "$TEST_DIR/resume"
    no_errors
    [ "$(tail -n 1 "$TM_FILE")" = "MV ssh $FE:$DS_LOCATION/100/$V node2:$DS_LOCATION/100/$V $V 100" ]
    tm_vm_state "$V" "$LCM_RUNNING" "$ST_ACTIVE"
    H=node2
    tm_context "$V"
    expect_vm
    data_check
    [ "$(vsize_of node2 "$D/disk.0")" = $((40 << 20)) ]
    terminate
    same_content "$FE" "$saved" "$TEST_DIR/ref.undeployed"
}

# undeploy, then terminate from there: the epilog names the front-end
# (trigger_epilog(true)), where the ssh TM left the files: MVDS.ssh runs
# there and brings the chain back.
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
    PIMG=$C1
    H=none
    expect_vm
    reads "$FE" "$F_P" qcow2 "$spec" "$F_P.snap/0" qcow2 "0:$(tm_pattern "$IMG_P") 2:0xd1"
}

# resize of a powered-off VM: the non-persistent disk with a snapshot (only
# its current file grows) and the persistent one (the VM's copy; the image
# stays as it was until terminate brings the copy back).
case_resize() {
    local spec
    deploy_vm 16
    poweroff
    SNAPS=([0]="0 0")
    snap_step SNAP_CREATE 0 0
    C0="1 1:0"
    tm_set vm "$V" '/VM/TEMPLATE/DISK[DISK_ID=0]/SIZE' 128
    tm_vm_state "$V" "$LCM_RESIZE_POWEROFF" "$ST_ACTIVE"
    tm_transfer "$V" --op disk_resize <<<"RESIZE.ssh qcow2c node1:$DS_LOCATION/100/$V/disk.0 128 $V 1"
    no_errors
    same_as_capture transfer.8.disk_resize
    tm_set vm "$V" '/VM/TEMPLATE/DISK[DISK_ID=1]/SIZE' 24
    tm_transfer "$V" --op disk_resize <<<"RESIZE.ssh qcow2c node1:$DS_LOCATION/100/$V/disk.1 24 $V 1"
    no_errors
    poweroff
    [ "$(vsize_of node1 "$D/disk.0")" = $((128 << 20)) ]
    [ "$(vsize_of node1 "$D/disk.0.snap/0")" = $((16 << 20)) ]
    [ "$(vsize_of node1 "$D/disk.1")" = $((24 << 20)) ]
    [ "$(vsize_of "$FE" "$F_P")" = $((16 << 20)) ]
    expect_vm
    data_check
    hx node1 qemu-io -f qcow2 -c "write -q -P 0x12 100M 1M" "$D/disk.0" >/dev/null
    hx node1 qemu-io -f qcow2 -c "write -q -P 0x13 20M 1M" "$D/disk.1" >/dev/null
    spec="${DATA[1]} 20:0x13"
    boot
    terminate
    [ "$(vsize_of "$FE" "$F_P")" = $((24 << 20)) ]
    reads "$FE" "$F_P" qcow2 "$spec"
}

# Hot attach and detach of a running VM (the VMM runs CLONE.ssh, then
# DELETE.ssh), the same disk id again (the stale disk.5.snap that DELETE
# leaves), then, powered off, a persistent image (.prolog_attach LN.ssh:
# a copy; .epilog_detach MVDS.ssh: the copy goes back into the image).
case_attach_detach() {
    local ia ib ic fa fb fc line spec
    deploy_vm 17
    ia=$(tm_image "hot-a-$V" --format qcow2 --size 8 --type DATABLOCK)
    ib=$(tm_image "hot-b-$V" --format qcow2 --size 8 --type DATABLOCK)
    ic=$(tm_image "cold-p-$V" --format qcow2 --size 8 --type DATABLOCK --persistent)
    fa=$(tm_image_file "$ia")
    fb=$(tm_image_file "$ib")
    fc=$(tm_image_file "$ic")
    FMT[5]=qcow2

    attach_disk "$ia" 5 sdf
    tm_vm_state "$V" "$LCM_HOTPLUG" "$ST_ACTIVE"
    line=$(attach_line 5)
    [ "$line" = "CLONE.ssh qcow2c $FE:$(tm_image_source "$ia") node1:$DS_LOCATION/100/$V/disk.5 $V 1" ]
    tm_vmm "$V" "$line"
    attach_done
    tm_vm_state "$V" "$LCM_RUNNING" "$ST_ACTIVE"
    EXTRA=$(chain_lines 5 "file qcow2" 0)
    DATA[5]="0:$(tm_pattern "$ia")"
    data_write 5 3 0x55
    expect_vm
    data_check

    detach_start 5
    tm_vm_state "$V" "$LCM_HOTPLUG" "$ST_ACTIVE"
    line=$(detach_line 5)
    [ "$line" = "DELETE.ssh qcow2c node1:$DS_LOCATION/100/$V/disk.5 $V 1" ]
    tm_vmm "$V" "$line"
    detach_done 5
    tm_vm_state "$V" "$LCM_RUNNING" "$ST_ACTIVE"
    EXTRA=$(chain_lines 5 "file qcow2" 0 | grep -v '^disk.5 ')
    unset 'DATA[5]'
    expect_vm

    attach_disk "$ib" 5 sdf
    tm_vm_state "$V" "$LCM_HOTPLUG" "$ST_ACTIVE"
    tm_vmm "$V" "$(attach_line 5)"
    attach_done
    tm_vm_state "$V" "$LCM_RUNNING" "$ST_ACTIVE"
    EXTRA=$(chain_lines 5 "file qcow2" 0)
    DATA[5]="0:$(tm_pattern "$ib")"
    expect_vm
    data_check
    detach_start 5
    tm_vm_state "$V" "$LCM_HOTPLUG" "$ST_ACTIVE"
    tm_vmm "$V" "$(detach_line 5)"
    detach_done 5
    unset 'DATA[5]'
    EXTRA=$(chain_lines 5 "file qcow2" 0 | grep -v '^disk.5 ')

    poweroff
    attach_disk "$ic" 5 sdf
    tm_vm_state "$V" "$LCM_HOTPLUG_PROLOG_POWEROFF" "$ST_ACTIVE"
    tm_transfer "$V" --op prolog_attach <<<"$(attach_line 5)"
    no_errors
    [ "$(cat "$TM_FILE")" = "LN.ssh qcow2c $FE:$(tm_image_source "$ic") node1:$DS_LOCATION/100/$V/disk.5 $V 1" ]
    attach_done
    poweroff
    EXTRA=$(chain_lines 5 "file qcow2" 0)
    DATA[5]="0:$(tm_pattern "$ic")"
    data_write 5 4 0x5c
    expect_vm
    echo "${fc##*/} file qcow2" | expect_image "$fc"
    data_check

    detach_start 5
    tm_vm_state "$V" "$LCM_HOTPLUG_EPILOG_POWEROFF" "$ST_ACTIVE"
    tm_transfer "$V" --op epilog_detach <<<"$(detach_line 5)"
    no_errors
    [ "$(cat "$TM_FILE")" = "MVDS.ssh qcow2c node1:$DS_LOCATION/100/$V/disk.5 $(tm_image_source "$ic") $V 1" ]
    detach_done 5
    poweroff
    # the VM's copy went back into the image
    EXTRA=""
    spec=${DATA[5]}
    unset 'DATA[5]'
    expect_vm
    pimage_lines "$fc" 0 | expect_image "$fc"
    reads "$FE" "$fc" qcow2 "$spec" "$fa" qcow2 "0:$(tm_pattern "$ia")" \
        "$fb" qcow2 "0:$(tm_pattern "$ib")"
    boot
    terminate
}

# Save-as of a powered-off VM: the current state and snapshot 0 of both
# disks (CPDS.ssh -1 / 0, run on the host into new SOURCEs of datastore 1);
# standalone qcow2 files with the content they had, kept after terminate.
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
                flatten node1 "$D/disk.$n" "$TEST_DIR/ref.$i"
            else
                flatten node1 "$D/disk.$n.snap/0" "$TEST_DIR/ref.$i"
            fi
            tm_get vm "$V" >"$TEST_DIR/before-saveas.xml"
            tm_set vm "$V" "/VM/TEMPLATE/DISK[DISK_ID=$n]/HOTPLUG_SAVE_AS_ACTIVE" YES
            tm_set vm "$V" "/VM/TEMPLATE/DISK[DISK_ID=$n]/HOTPLUG_SAVE_AS" $((900 + i))
            tm_set vm "$V" "/VM/TEMPLATE/DISK[DISK_ID=$n]/HOTPLUG_SAVE_AS_SOURCE" "$new"
            tm_set vm "$V" "/VM/TEMPLATE/DISK[DISK_ID=$n]/HOTPLUG_SAVE_AS_SNAPSHOT_ID" "$snap"
            tm_vm_state "$V" "$LCM_SAVEAS_POWEROFF" "$ST_ACTIVE"
            line="CPDS.ssh qcow2c node1:$DS_LOCATION/100/$V/disk.$n $new $snap $V 1"
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
}

# Terminate: DELETE.ssh for the non-persistent disk, MVDS.ssh brings the
# persistent disk's chain back into its image (SOURCE -> <name>.snap/2),
# the ssh TM deletes the volatile disks and the directory; a new VM on
# node2 gets that chain (LN.ssh) with the guest's data; its terminate
# brings it back again.
case_terminate() {
    local ref=$TEST_DIR/ref.terminate spec p fp d20
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
    flatten node1 "$D/disk.1" "$ref"
    spec=${DATA[1]}
    boot
    terminate
    same_as_capture transfer.8.epilog
    same_content "$FE" "$F_P" "$ref"
    # and its snapshots
    reads "$FE" "$F_P.snap/0" qcow2 "0:$(tm_pattern "$IMG_P") 2:0xd1" \
        "$F_P.snap/1" qcow2 "0:$(tm_pattern "$IMG_P") 2:0xd1 3:0x19"

    p=$IMG_P
    fp=$F_P
    tm_vm 20 --host node2 --system-ds "$SSH_DS" --disk image="$p"
    tm_prolog 20
    no_errors
    d20=$(norm "$(tm_sysdir 20)")
    V=20 H=node2 D=$d20 C0="2 1:0 2:1"
    chain_lines 0 "file qcow2" "$C0" | { echo ". dir"; cat; } | layout_is node2 "$d20"
    reads node2 "$d20/disk.0" qcow2 "$spec"
    same_content node2 "$d20/disk.0" "$ref"
    tm_epilog 20
    no_errors
    [ -z "$(tree_on node2 "$d20")" ]
    pimage_lines "$fp" "2 1:0 2:1" | expect_image "$fp"
    same_content "$FE" "$fp" "$ref"
    check_images
}

test_case "deploy (clone.ssh, ln.ssh, mkimage, mkswap, context) and terminate" case_deploy_terminate
test_case "disk snapshots: create, delete the middle, revert, delete the active" case_snapshots
test_case "cold migration to node2 and back" case_cold_migration
test_case "live migration (pre/postmigrate) and a failed one (failmigrate)" case_live_migration
test_case "stop, then resume on another host (snapshots before and after)" case_stop_resume
test_case "undeploy, resize and save-as while undeployed, resume on another host" case_undeploy_resume
test_case "undeploy, then terminate (the epilog on the front-end)" case_undeploy_terminate
test_case "resize of a powered-off VM" case_resize
test_case "attach and detach: hot (VMM TM command) and powered off" case_attach_detach
test_case "disk save-as of the current state and of snapshots (cpds.ssh)" case_saveas
test_case "terminate: mvds.ssh brings the chain back; a new VM finds it" case_terminate
