#!/bin/bash
# t0400-deferred-save.sh - deferred disk saves (issue 5): a user asks with
# onesnap (its own credentials, against the oned stand-in), the TM epilog
# run by the oned-format runner copies the disk and registers the image
# before DELETE / MVDS let the disk go. Shared (system datastore 0) and
# mixed mode (datastore 100, private to each host); non-persistent and
# persistent disks; stop/resume and terminate from the front-end; cancel;
# two disks; hard terminate (and the switch that skips it); recover
# --delete; failures injected at every step (oned unreachable, allocate,
# chown, update refused, the action killed, the datastore full) each
# followed by a retry: exactly one image equal to the disk, or a failure
# with one line and the disk still in place.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-tm.sh"

tm_setup --ssh-system

norm() { printf '%s\n' "$1" | tr -s /; }
DSROOT=$(norm "$DS_LOCATION")
DS1=$(norm "$DS_LOCATION/$IMG_DS")
. "$(dirname "$0")/lib-onesnap.sh"

# The history ACTION oned records for the terminate (27), terminate --hard
# (28), recover --delete (13).
vm_action() { # VMID ACTION
    tm_set vm "$1" "/VM/HISTORY_RECORDS/HISTORY[last()]/ACTION" "$2"
}

req() { # VMID DISK FIELD
    tm_get vm "$1" "/VM/USER_TEMPLATE/QCOW2C_DEFERRED_SAVE_$2/$3"
}

# Writes PATTERN at OFFSET MiB through DISK on HOST.
disk_write() { # HOST DISK FMT PATTERN OFFSET
    on_host "$1" qemu-io -f "$3" -c "write -q -P $4 $5M 1M" "$2" >/dev/null
}

# A flattened copy of DISK on HOST into FILE (the test directory is shared).
flatten() { # HOST DISK FMT FILE
    on_host "$1" qemu-img convert -U -f "$3" -O qcow2 "$2" "$4"
}

image_count() {
    find "$STANDIN_DIR/image" -name '*.xml' | wc -l
}

# The ids of the images whose SOURCE is the saved copy of VMID's disk.
saved_images() { # VMID DISK
    local f
    for f in "$STANDIN_DIR"/image/*.xml; do
        if grep -q "qcow2c-saved-$1-$2-" "$f"; then
            basename "$f" .xml
        fi
    done
}

# The id of the one image saved from VMID's disk; fails (saying what it
# found) when there is none or more than one.
one_saved_image() { # VMID DISK
    local ids
    ids=$(saved_images "$1" "$2")
    if [ "$(printf '%s\n' "$ids" | grep -c .)" != 1 ]; then
        echo "one_saved_image: VM $1 disk $2: images '$ids', not exactly one" >&2
        return 1
    fi
    echo "$ids"
}

# Exactly one image for VMID's disk, READY, alice's, qcow2, equal to FILE
# (qemu-img compare); its id in SAVED. Called as a command, never inside
# $(...), where set -e is off and a failed check would pass unnoticed.
expect_saved() { # VMID DISK EXPECTED_FILE [SHUTDOWN]
    local id src want_shutdown=${4:-graceful}
    SAVED=
    id=$(one_saved_image "$1" "$2")
    [ "$(req "$1" "$2" STATE)" = SAVED ]
    [ "$(req "$1" "$2" IMAGE_ID)" = "$id" ]
    [ "$(tm_get image "$id" /IMAGE/STATE)" = 1 ]
    [ "$(tm_get image "$id" /IMAGE/UID)" = 5 ]
    [ "$(tm_get image "$id" /IMAGE/GID)" = 100 ]
    [ "$(tm_get image "$id" /IMAGE/FORMAT)" = qcow2 ]
    [ "$(tm_get image "$id" /IMAGE/TEMPLATE/QCOW2C_SAVED_VM_ID)" = "$1" ]
    [ "$(tm_get image "$id" /IMAGE/TEMPLATE/QCOW2C_SAVED_DISK_ID)" = "$2" ]
    [ "$(tm_get image "$id" /IMAGE/TEMPLATE/QCOW2C_SHUTDOWN)" = "$want_shutdown" ]
    src=$(norm "$(tm_get image "$id" /IMAGE/SOURCE)")
    [ "$(dirname "$src")" = "$DS1" ]
    qemu_img_check "$src" >/dev/null
    if qemu-img info -U --output=json "$src" | grep -q backing-filename; then
        echo "expect_saved: image $id is not standalone" >&2
        return 1
    fi
    qemu-img compare -q -f qcow2 -F qcow2 "$3" "$src" || {
        echo "expect_saved: image $id differs from $3" >&2
        return 1
    }
    # nothing half-written left beside it
    if compgen -G "$src.part*" >/dev/null; then
        echo "expect_saved: leftovers beside $src" >&2
        return 1
    fi
    SAVED=$id
}

# ---------------------------------------------------------------- onesnap

case_onesnap_requests() {
    local img vol out taken
    img=$(tm_image os40 --format qcow2 --size 16)
    user_vm 40 --host node1 --system-ds "$SYS_DS" --disk image="$img" --volatile 8:fs:qcow2
    # bad input: one line, status 2
    must_fail --status 2 "$ONESNAP"
    one_plain_line "$LAST_STDERR" >/dev/null
    must_fail --status 2 snap create 40 0 "bad:name" --deferred
    expect_stderr_line --match 'not allowed'
    must_fail --status 2 snap create 40 0 n --deferred --hot
    must_fail --status 2 snap create 40 0 n --hot --persistent
    must_fail --status 2 snap create 40 x n --deferred
    must_fail --status 2 snap create 40 0 n --deferred --type KERNEL
    must_fail --status 2 snap list extra
    must_fail --status 2 snap list --pending --page 2
    expect_success "$ONESNAP" --help
    grep -q -- '--deferred' "$LAST_STDOUT"
    # refusals: one line, status 1
    must_fail snap create 40 7 n --deferred
    expect_stderr_line "onesnap: VM 40 has no disk 7"
    must_fail snap create 40 1 n --deferred
    expect_stderr_line --match 'does not come from an image'
    taken=$(tm_image taken40 --format qcow2 --size 1)
    tm_set image "$taken" /IMAGE/UID 5
    must_fail snap create 40 0 taken40 --deferred # alice has an image of that name
    expect_stderr_line "onesnap: an image named 'taken40' exists already (image $taken)"
    must_fail snap create 999 0 n --deferred
    one_plain_line "$LAST_STDERR" | grep -q '999'
    must_fail snap cancel 40 0
    expect_stderr_line "onesnap: no deferred save is pending for disk 0 of VM 40"
    # a user who may not manage the VM
    tm_set vm 40 /VM/PERMISSIONS/GROUP_M 0
    must_fail snap_bob create 40 0 n --deferred
    one_plain_line "$LAST_STDERR" | grep -q -i 'not authorized'

    # the request: in the user template, one attribute per disk
    expect_success snap create 40 0 "os40 saved" --deferred
    grep -q "will be saved as image 'os40 saved' (type of its image) in datastore 1" "$LAST_STDOUT"
    [ "$(req 40 0 STATE)" = PENDING ]
    [ "$(tm_get vm 40 'string(count(/VM/USER_TEMPLATE/QCOW2C_DEFERRED_SAVE_0/TYPE))')" = 0 ]
    [ "$(req 40 0 PERSISTENT)" = NO ]
    [ "$(req 40 0 DATASTORE_ID)" = 1 ]
    [ "$(req 40 0 REQUESTED_BY)" = alice ]
    must_fail snap create 40 0 other --deferred
    expect_stderr_line --match "pending already \('os40 saved', since 2[0-9-]*T"
    expect_success snap list --pending
    out=$(cat "$LAST_STDOUT")
    [[ $out == *"40     0     "*"PENDING  os40 saved"* ]]
    # an unrelated user attribute survives everything onesnap does
    tm_set vm 40 /VM/USER_TEMPLATE/LABELS keep-me
    expect_success snap cancel 40 0
    [ "$(tm_get vm 40 /VM/USER_TEMPLATE/LABELS)" = keep-me ]
    [ "$(tm_get vm 40 'string(count(/VM/USER_TEMPLATE/QCOW2C_DEFERRED_SAVE_0))')" = 0 ]
    expect_success snap list --pending
    [ "$(wc -l <"$LAST_STDOUT")" = 1 ]
    # --type and --persistent are recorded
    expect_success snap create 40 0 dbk --deferred --type datablock --persistent
    [ "$(req 40 0 TYPE)" = DATABLOCK ]
    [ "$(req 40 0 PERSISTENT)" = YES ]
    expect_success snap cancel 40 0
    # --hot is oned's disk-saveas (the VM must be powered off there)
    tm_vm_state 40 3 8
    # (as oneadmin: alice may not use the image nor the datastore here)
    expect_success "$ONESNAP" create 40 0 hot40 --hot
    vol=$(cat "$LAST_STDOUT")
    [ "$(tm_get image "$vol" /IMAGE/NAME)" = hot40 ]
    [ "$(tm_get image "$vol" /IMAGE/STATE)" = 4 ]
    [ "$(tm_get vm 40 /VM/LCM_STATE)" = 27 ]
}

# ---------------------------------------------------------------- shared

case_shared_terminate() {
    local img pimg sysdir iid
    img=$(tm_image os41 --format qcow2 --size 16)
    pimg=$(tm_image data41 --format qcow2 --size 16 --persistent)
    user_vm 41 --host node1 --system-ds "$SYS_DS" --disk image="$img" --disk image="$pimg"
    tm_prolog 41
    sysdir=$(norm "$(tm_sysdir 41)")
    disk_write node1 "$sysdir/disk.0" qcow2 0x41 2
    disk_write node1 "$sysdir/disk.1" qcow2 0x42 3
    expect_success snap create 41 0 saved41-0 --deferred
    expect_success snap create 41 1 saved41-1 --deferred --type DATABLOCK
    # the second request left the first alone
    [ "$(req 41 0 NAME)" = saved41-0 ]
    [ "$(req 41 1 NAME)" = saved41-1 ]
    flatten node1 "$sysdir/disk.0" qcow2 "$TEST_DIR/want41-0"
    flatten node1 "$sysdir/disk.1" qcow2 "$TEST_DIR/want41-1"
    vm_action 41 27
    tm_epilog 41
    grep -q '^DELETE qcow2c node1:.*/disk.0 ' "$TM_FILE"
    grep -q '^MVDS qcow2c node1:.*/disk.1 ' "$TM_FILE"
    expect_saved 41 0 "$TEST_DIR/want41-0"
    iid=$SAVED
    [ "$(tm_get image "$iid" /IMAGE/NAME)" = saved41-0 ]
    [ "$(tm_get image "$iid" /IMAGE/TYPE)" = 0 ]
    [ "$(tm_get image "$iid" /IMAGE/PERSISTENT)" = 0 ]
    [ "$(tm_get image "$iid" /IMAGE/TEMPLATE/QCOW2C_CONSISTENCY)" = "clean shutdown" ]
    expect_saved 41 1 "$TEST_DIR/want41-1"
    iid=$SAVED
    [ "$(tm_get image "$iid" /IMAGE/TYPE)" = 2 ]
    # the disks went after their copies, the persistent image kept its data
    [ ! -e "$sysdir" ]
    qemu-io -f qcow2 -c "read -q -P 0x42 3M 1M" "$(tm_image_file "$pimg").snap/0" >/dev/null ||
        qemu-io -f qcow2 -c "read -q -P 0x42 3M 1M" "$(tm_image_file "$pimg")" >/dev/null
    # a re-run (recover --retry of a later line) changes nothing
    tm_transfer 41 <<<"DELETE qcow2c node1:$DS_LOCATION/$SYS_DS/41/disk.0 41 $IMG_DS"
    one_saved_image 41 0 >/dev/null
    # nothing pending any more
    expect_success snap list --pending
    if grep -q '^41 ' "$LAST_STDOUT"; then return 1; fi
}

case_no_request_no_change() {
    # no request: delete and mvds behave as before, without a copy
    local img sysdir n
    img=$(tm_image os42 --format qcow2 --size 16)
    user_vm 42 --host node1 --system-ds "$SYS_DS" --disk image="$img"
    tm_prolog 42
    sysdir=$(norm "$(tm_sysdir 42)")
    n=$(image_count)
    vm_action 42 27
    tm_epilog 42
    [ ! -e "$sysdir" ]
    [ "$(image_count)" = "$n" ]
    if grep -q 'deferred save' "$TM_REPLY"; then return 1; fi
    # a VM oned does not know has no request: the delete goes on
    mkdir -p "$(norm "$DS_LOCATION/$SYS_DS/43")" "$VMS/43"
    : >"$(norm "$DS_LOCATION/$SYS_DS/43")/disk.0"
    tm_transfer 43 <<<"DELETE qcow2c node1:$DS_LOCATION/$SYS_DS/43/disk.0 43 $IMG_DS"
    [ ! -e "$(norm "$DS_LOCATION/$SYS_DS/43")/disk.0" ]
}

case_cancelled() {
    local img sysdir n
    img=$(tm_image os44 --format qcow2 --size 16)
    user_vm 44 --host node1 --system-ds "$SYS_DS" --disk image="$img"
    tm_prolog 44
    sysdir=$(norm "$(tm_sysdir 44)")
    expect_success snap create 44 0 saved44 --deferred
    expect_success snap cancel 44 0
    n=$(image_count)
    vm_action 44 27
    tm_epilog 44
    [ ! -e "$sysdir" ]
    [ "$(image_count)" = "$n" ]
    [ -z "$(saved_images 44 0)" ]
}

case_hard_terminate() {
    local img sysdir iid
    img=$(tm_image os45 --format qcow2 --size 16)
    user_vm 45 --host node1 --system-ds "$SYS_DS" --disk image="$img"
    tm_prolog 45
    sysdir=$(norm "$(tm_sysdir 45)")
    disk_write node1 "$sysdir/disk.0" qcow2 0x45 1
    flatten node1 "$sysdir/disk.0" qcow2 "$TEST_DIR/want45"
    expect_success snap create 45 0 saved45 --deferred
    vm_action 45 28
    tm_epilog 45
    expect_saved 45 0 "$TEST_DIR/want45" hard
    iid=$SAVED
    [ "$(tm_get image "$iid" /IMAGE/TEMPLATE/QCOW2C_CONSISTENCY)" = crash-consistent ]
    grep -q 'crash-consistent' "$TM_REPLY"

    # the switch off: the request is skipped and the disk goes
    img=$(tm_image os46 --format qcow2 --size 16)
    user_vm 46 --host node1 --system-ds "$SYS_DS" --disk image="$img"
    tm_prolog 46
    sysdir=$(norm "$(tm_sysdir 46)")
    expect_success snap create 46 0 saved46 --deferred
    tm_conf DEFERRED_SAVE_ON_HARD_TERMINATE no
    defer tm_conf DEFERRED_SAVE_ON_HARD_TERMINATE yes
    vm_action 46 28
    tm_epilog 46
    [ ! -e "$sysdir" ]
    [ -z "$(saved_images 46 0)" ]
    [ "$(req 46 0 STATE)" = SKIPPED ]
    grep -q 'skipped' "$TM_REPLY"
}

case_recover_delete() {
    # recover --delete: DELETE lines for every disk, persistent ones too
    local pimg sysdir
    pimg=$(tm_image data47 --format qcow2 --size 16 --persistent)
    user_vm 47 --host node1 --system-ds "$SYS_DS" --disk image="$pimg"
    tm_prolog 47
    sysdir=$(norm "$(tm_sysdir 47)")
    disk_write node1 "$sysdir/disk.0" qcow2 0x47 4
    flatten node1 "$sysdir/disk.0" qcow2 "$TEST_DIR/want47"
    expect_success snap create 47 0 saved47 --deferred
    vm_action 47 13
    tm_delete_vm 47
    grep -q '^DELETE qcow2c node1:.*/disk.0 ' "$TM_FILE"
    expect_saved 47 0 "$TEST_DIR/want47" hard
}

# ---------------------------------------------------------------- failures

# The epilog of VMID fails with one line matching ERE, disk.0 of SYSDIR
# still in place on HOST.
epilog_fails() { # VMID HOST SYSDIR ERE
    local status=0
    tm_epilog "$1" || status=$?
    [ "$status" = 1 ] || {
        echo "epilog_fails: status $status"
        return 1
    }
    [[ $TM_INFO =~ $4 ]] || {
        echo "epilog_fails: '$TM_INFO' does not match '$4'"
        return 1
    }
    on_host "$2" test -e "$3/disk.0"
}

case_failures_and_retries() {
    local img sysdir want iid
    img=$(tm_image os48 --format qcow2 --size 16)
    user_vm 48 --host node1 --system-ds "$SYS_DS" --disk image="$img"
    tm_prolog 48
    sysdir=$(norm "$(tm_sysdir 48)")
    disk_write node1 "$sysdir/disk.0" qcow2 0x48 5
    want=$TEST_DIR/want48
    flatten node1 "$sysdir/disk.0" qcow2 "$want"
    expect_success snap create 48 0 saved48 --deferred
    vm_action 48 27

    # oned unreachable: the VM cannot be read, the disk stays
    "$HARNESS/standin-ctl" "$STANDIN_DIR" fail one.vm.info 1 drop x
    epilog_fails 48 node1 "$sysdir" 'cannot tell whether disk 0 has a deferred save pending'
    [ "$(req 48 0 STATE)" = PENDING ]
    # oned refuses the registration: the copy is in place, no image
    "$HARNESS/standin-ctl" "$STANDIN_DIR" fail one.image.allocate 1 0x2000 'Error allocating a new image.'
    epilog_fails 48 node1 "$sysdir" 'cannot be registered.*Error allocating'
    [ -z "$(saved_images 48 0)" ]
    [ "$(req 48 0 STATE)" = SAVING ]
    [ "$(req 48 0 SHUTDOWN)" = graceful ]
    ls "$DS1"/qcow2c-saved-48-0-* >/dev/null
    # the owner's quota refuses the chown: the image stays oneadmin's
    "$HARNESS/standin-ctl" "$STANDIN_DIR" fail one.image.chown 1 0x2000 'User [5] : Quota exceeded.'
    epilog_fails 48 node1 "$sysdir" 'cannot be given to user 5.*Quota exceeded'
    not_copied_again
    iid=$(one_saved_image 48 0)
    [ "$(tm_get image "$iid" /IMAGE/UID)" = 0 ]
    # the origin cannot be recorded
    "$HARNESS/standin-ctl" "$STANDIN_DIR" fail one.image.update 1 0x2000 'Error updating.'
    epilog_fails 48 node1 "$sysdir" 'origin of image'
    not_copied_again
    # the request cannot be marked done (the first update marks SAVING: let it through)
    "$HARNESS/standin-ctl" "$STANDIN_DIR" fail one.vm.update 1 0x2000 'Error updating VM.'
    epilog_fails 48 node1 "$sysdir" 'cannot record the state of the deferred save'
    not_copied_again
    one_saved_image 48 0 >/dev/null
    # recover --retry: the same image, completed; the epilog goes on
    tm_epilog 48
    not_copied_again
    [ ! -e "$sysdir" ]
    expect_saved 48 0 "$want"
}

# The last run found its earlier copy or image instead of copying again.
not_copied_again() {
    if grep -q 'saving disk' "$TM_REPLY"; then
        echo "the disk was copied again"
        return 1
    fi
    grep -Eq 'is in place already|was registered as image [0-9]+ already' "$TM_REPLY"
}

case_killed_and_leftovers() {
    local img sysdir want pid i n
    img=$(tm_image os49 --format qcow2 --size 64)
    user_vm 49 --host node1 --system-ds "$SYS_DS" --disk image="$img"
    tm_prolog 49
    sysdir=$(norm "$(tm_sysdir 49)")
    on_host node1 qemu-io -f qcow2 -c "write -q -P 0x49 0 48M" "$sysdir/disk.0" >/dev/null
    want=$TEST_DIR/want49
    flatten node1 "$sysdir/disk.0" qcow2 "$want"
    expect_success snap create 49 0 saved49 --deferred
    vm_action 49 27
    # killed while oned does not answer the registration (the copy is done)
    n=$("$HARNESS/standin-ctl" "$STANDIN_DIR" calls one.image.allocate | wc -l)
    "$HARNESS/standin-ctl" "$STANDIN_DIR" fail one.image.allocate 1 hang x
    (tm_epilog 49 >/dev/null 2>&1) &
    pid=$!
    for ((i = 0; i < 150; i++)); do
        [ "$("$HARNESS/standin-ctl" "$STANDIN_DIR" calls one.image.allocate | wc -l)" -gt "$n" ] &&
            break
        sleep 0.2
    done
    [ "$i" -lt 100 ]
    # kill -9 the action (its argv names this test's disk) and the runner
    pkill -KILL -f "node1:$TEST_DIR/var/lib/one//datastores/$SYS_DS/49/disk.0 49" || true
    pkill -KILL -P "$pid" || true
    wait "$pid" || true
    if pgrep -f "node1:$TEST_DIR/var/lib/one//datastores/$SYS_DS/49/disk.0" >/dev/null; then
        echo "the action survived"
        return 1
    fi
    on_host node1 test -e "$sysdir/disk.0"
    [ -z "$(saved_images 49 0)" ]
    [ "$(req 49 0 STATE)" = SAVING ]
    # and a copy killed halfway leaves a .part behind: the retry removes it
    local saved=("$DS1"/qcow2c-saved-49-0-*)
    : >"${saved[0]}.part.99999"
    tm_vm_state 49 40
    tm_epilog 49
    grep -q 'is in place already' "$TM_REPLY"
    expect_saved 49 0 "$want"
}

case_datastore_full() {
    # a stopped VM's disks are on the front-end, and so is the full datastore
    local img sysdir want ds3
    ds3=$DSROOT/3
    mkdir -p "$ds3"
    mount -t tmpfs -o size=8m tmpfs "$ds3"
    defer umount -l "$ds3"
    "$HARNESS/standin-ctl" "$STANDIN_DIR" put datastore \
        "$SRC/tests/fixtures/standin/datastore.info.image.inner.xml" \
        --subst "<DATASTORE><ID>105</ID>=<DATASTORE><ID>3</ID>" \
        --subst "lab-qcow2c-180947-img=small" \
        --subst "/var/lib/one//datastores/105=$DS_LOCATION/3" \
        --subst "<IMAGES><ID>8</ID><ID>9</ID><ID>12</ID><ID>13</ID></IMAGES>=<IMAGES></IMAGES>" >/dev/null
    img=$(tm_image os50 --format qcow2 --size 32)
    user_vm 50 --host node1 --system-ds "$SSH_DS" --disk image="$img"
    tm_prolog 50
    sysdir=$(norm "$(tm_sysdir 50)")
    on_host node1 qemu-io -f qcow2 -c "write -q -P 0x50 0 16M" "$sysdir/disk.0" >/dev/null
    expect_success snap create 50 0 saved50 --deferred
    tm_set vm 50 /VM/USER_TEMPLATE/QCOW2C_DEFERRED_SAVE_0/DATASTORE_ID 3
    tm_stop 50
    flatten "$FE" "$sysdir/disk.0" qcow2 "$TEST_DIR/want50"
    [ "$(req 50 0 STATE)" = PENDING ]
    vm_action 50 27
    local status=0
    tm_epilog 50 --local || status=$?
    [ "$status" = 1 ]
    [[ $TM_INFO == *"No space left"* ]] || [[ $TM_INFO == *"space"* ]]
    test -e "$sysdir/disk.0"
    [ -z "$(ls -A "$ds3")" ]
    [ -z "$(saved_images 50 0)" ]
    # room again: the retry saves it
    umount "$ds3"
    tm_epilog 50 --local
    [ ! -e "$sysdir" ]
    local iid
    iid=$(one_saved_image 50 0)
    [ "$(tm_get image "$iid" /IMAGE/DATASTORE_ID)" = 3 ]
    qemu-img compare -q "$TEST_DIR/want50" "$(norm "$(tm_get image "$iid" /IMAGE/SOURCE)")"
}

# ---------------------------------------------------------------- mixed mode

case_ssh_stop_resume_terminate() {
    local img pimg sysdir iid
    img=$(tm_image os51 --format qcow2 --size 16)
    pimg=$(tm_image data51 --format qcow2 --size 16 --persistent)
    user_vm 51 --host node1 --system-ds "$SSH_DS" --disk image="$img" --disk image="$pimg"
    tm_prolog 51
    sysdir=$(norm "$(tm_sysdir 51)")
    disk_write node1 "$sysdir/disk.0" qcow2 0x51 1
    disk_write node1 "$sysdir/disk.1" qcow2 0x52 2
    expect_success snap create 51 0 saved51-0 --deferred
    expect_success snap create 51 1 saved51-1 --deferred --persistent
    # stop and resume elsewhere: nothing saved, the requests stay pending
    tm_stop 51
    [ "$(req 51 0 STATE)" = PENDING ]
    [ -z "$(saved_images 51 0)" ]
    tm_resume 51 node2
    [ "$(req 51 1 STATE)" = PENDING ]
    disk_write node2 "$sysdir/disk.0" qcow2 0x53 3
    flatten node2 "$sysdir/disk.0" qcow2 "$TEST_DIR/want51-0"
    flatten node2 "$sysdir/disk.1" qcow2 "$TEST_DIR/want51-1"
    vm_action 51 27
    tm_epilog 51
    grep -q '^DELETE.ssh qcow2c node2:.*/disk.0 ' "$TM_FILE"
    grep -q '^MVDS.ssh qcow2c node2:.*/disk.1 ' "$TM_FILE"
    expect_saved 51 0 "$TEST_DIR/want51-0"
    expect_saved 51 1 "$TEST_DIR/want51-1"
    iid=$SAVED
    [ "$(tm_get image "$iid" /IMAGE/PERSISTENT)" = 1 ]
    # and the persistent disk went back into its image after its copy
    on_host node2 test ! -e "$sysdir/disk.1"
    qemu-img compare -q -f qcow2 "$TEST_DIR/want51-1" "$(tm_image_file "$pimg")"
}

case_ssh_terminate_stopped() {
    # terminate of a stopped VM: the epilog runs on the front-end
    local img sysdir
    img=$(tm_image os52 --format qcow2 --size 16)
    user_vm 52 --host node1 --system-ds "$SSH_DS" --disk image="$img"
    tm_prolog 52
    sysdir=$(norm "$(tm_sysdir 52)")
    disk_write node1 "$sysdir/disk.0" qcow2 0x54 1
    expect_success snap create 52 0 saved52 --deferred
    tm_stop 52
    flatten "$FE" "$sysdir/disk.0" qcow2 "$TEST_DIR/want52"
    vm_action 52 27
    tm_epilog 52 --local
    grep -q "^DELETE.ssh qcow2c $FE:.*/disk.0 " "$TM_FILE"
    expect_saved 52 0 "$TEST_DIR/want52"
    [ ! -e "$sysdir" ]
}

case_ssh_retry_names_last_host() {
    # trap 18: the retry of a failed terminate of a stopped VM names the
    # last host, while the disk is on the front-end
    local img sysdir
    img=$(tm_image os53 --format qcow2 --size 16)
    user_vm 53 --host node1 --system-ds "$SSH_DS" --disk image="$img"
    tm_prolog 53
    sysdir=$(norm "$(tm_sysdir 53)")
    expect_success snap create 53 0 saved53 --deferred
    tm_stop 53
    flatten "$FE" "$sysdir/disk.0" qcow2 "$TEST_DIR/want53"
    vm_action 53 27
    tm_transfer 53 <<<"DELETE.ssh qcow2c node1:$DS_LOCATION/$SSH_DS/53/disk.0 53 $IMG_DS"
    grep -q 'on the front-end' "$TM_REPLY"
    expect_saved 53 0 "$TEST_DIR/want53"
}

test_case "onesnap: bad input, refusals, request, list, cancel, --hot" case_onesnap_requests
test_case "shared: terminate saves a non-persistent (DELETE) and a persistent (MVDS) disk" case_shared_terminate
test_case "no request: no copy; a VM oned does not know has none" case_no_request_no_change
test_case "a cancelled request makes no image" case_cancelled
test_case "terminate --hard: crash-consistent copy; switched off: skipped" case_hard_terminate
test_case "recover --delete: DELETE of a persistent disk saves it (hard)" case_recover_delete
test_case "failures at each step (oned, allocate, chown, update) then retry: one image" case_failures_and_retries
test_case "the action killed, a .part left: the retry makes one image" case_killed_and_leftovers
test_case "a full datastore: one line, disk kept, nothing left; retry saves" case_datastore_full
test_case "ssh mode: stop, resume on node2, terminate saves both disks" case_ssh_stop_resume_terminate
test_case "ssh mode: terminate of a stopped VM saves from the front-end" case_ssh_terminate_stopped
test_case "ssh mode: a retry naming the last host saves from the front-end" case_ssh_retry_names_last_host
