#!/bin/bash
# t0220-tm-mv-mvds.sh - TM mv, mv.ssh, mvds, mvds.ssh (protocol §2.3 mv and
# mvds, §3.2, traps 16, 17, 23, 30, 31): stop/undeploy and resume on
# another host and cold migration in shared mode (system datastore 0) and
# mixed mode (system datastore 100 of TM ssh, private to each host), a
# change of system datastore, the VM's copy of a persistent disk with
# snapshots moved back by mvds.ssh (by copies from a host, by hard links on
# the front-end) and found by a later ln and ln.ssh, re-runs from every
# intermediate state an interrupted mvds.ssh can leave (and after a real
# kill -9), hostile arguments, oned out of reach (mv does not ask it, mvds
# does: a deferred save may be pending)
# and hung hosts.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-tm.sh"

tm_setup --ssh-system

# ---------------------------------------------------------------- helpers

norm() { printf '%s\n' "$1" | tr -s /; }
DS100=$(norm "$DS_LOCATION/$SSH_DS")
DS1=$(norm "$DS_LOCATION/$IMG_DS")
DSROOT=$(norm "$DS_LOCATION")

# expect_layout with the lines in any order (sorted as host_tree sorts).
layout_is() { # HOST PATH <<EOF
    sed -e 's/^[[:space:]]*//' -e '/^$/d' -e 's/ /\t/' | LC_ALL=C sort | sed 's/\t/ /' |
        expect_layout "$1" "$2"
}

# A listing of everything the actions may touch: the shared datastores
# from the front-end, datastore 100 on each host and on the front-end.
snapshot() {
    (cd "$DSROOT" && find . -path ./100 -prune -o -printf '%p %y %s %l\n' | LC_ALL=C sort)
    local h
    for h in node1 node2; do
        on_host "$h" find "$DS100" -printf "$h %p %y %s %l\n" | LC_ALL=C sort
    done
    find "$DS100" -printf 'fe %p %y %s %l\n' | LC_ALL=C sort
}

# The action failed with exactly one reason line (printed), and nothing
# changed since snapshot FILE.
refused() { # SNAPSHOT_FILE
    if [ "$LAST_STATUS" = 0 ] || [ -z "$LAST_STATUS" ]; then
        echo "refused: the action exited with status '$LAST_STATUS'"
        return 1
    fi
    one_plain_line "$LAST_STDERR"
    snapshot | diff -u "$1" - || {
        echo "refused: something changed"
        return 1
    }
}

# Runs a bash script on HOST with arguments.
on_host_sh() { # HOST SCRIPT ARGS...
    local h=$1 s=$2
    shift 2
    on_host "$h" bash -c "$s" _ "$@"
}

# Takes a disk snapshot the way OpenNebula's qcow2/snap_create(.ssh) does:
# snapshot ID freezes the current file, ID+1 becomes the active overlay;
# then writes PATTERN at OFFSET MiB into the new active file.
snap_create() { # HOST DISK ID PATTERN OFFSET
    # shellcheck disable=SC2016 # expanded on the host
    on_host_sh "$1" '
        set -e
        d=$1 id=$2 n=${1##*/}
        prev=$(readlink "$d")
        cd "$d.snap"
        qemu-img create -q -f qcow2 -o backing_fmt=qcow2 -b "$prev" "$d.snap/$((id + 1))"
        ln -sf "$n.snap/$((id + 1))" "$d"
        qemu-io -f qcow2 -c "write -q -P $3 $4M 1M" "$d" >/dev/null' "$2" "$3" "$4" "$5"
}

# Writes PATTERN at OFFSET MiB through DISK (its active file) on HOST.
disk_write() { # HOST DISK FMT PATTERN OFFSET
    on_host "$1" qemu-io -f "$3" -c "write -q -P $4 $5M 1M" "$2" >/dev/null
}

# A flattened copy of DISK on HOST into FILE (a path of the shared tree).
flatten() { # HOST DISK FMT FILE
    on_host "$1" qemu-img convert -U -f "$3" -O qcow2 "$2" "$4"
}

# Same guest-visible content, read on HOST.
same_on() { # HOST A FMT_A B FMT_B
    if ! on_host "$1" qemu-img compare -U -f "$3" -F "$5" "$2" "$4" >"$TEST_DIR/cmp.out" 2>&1; then
        echo "same_on $1: $2 and $4 differ:"
        cat "$TEST_DIR/cmp.out"
        return 1
    fi
}

backing_of() { # FILE (front-end view)
    qemu-img info -U --output=json -- "$1" |
        sed -n 's/^    "backing-filename": "\(.*\)",*$/\1/p' | head -n 1
}

# "MVDS[.ssh] qcow2c HOST:<sysdir>/disk.N SOURCE VMID DS" for disk N of VMID.
mvds_line() { # VMID N HOST [SUFFIX]
    printf 'MVDS%s qcow2c %s:%s/disk.%s %s %s %s\n' "${4:-}" "$3" "$(tm_sysdir "$1")" "$2" \
        "$(tm_get vm "$1" "/VM/TEMPLATE/DISK[DISK_ID=$2]/SOURCE")" "$1" "$IMG_DS"
}

# What a persistent image looks like in datastore 1 after mvds.ssh brought
# back a chain 0..TOP, every file's backing the one before.
image_layout() { # IMAGE_ID TOP
    local f h k
    f=$(tm_image_file "$1")
    h=${f##*/}
    echo "$h link $h.snap/$2"
    echo "$h.snap dir"
    echo "$h.snap/$h.snap link ."
    echo "$h.snap/0 file qcow2"
    for ((k = 1; k <= $2; k++)); do
        echo "$h.snap/$k file qcow2 $h.snap/$((k - 1))"
    done
}

# The lines of the image datastore that concern image ID (its file and
# snapshot directory), for layout_is.
image_tree() { # IMAGE_ID
    local f
    f=$(tm_image_file "$1")
    host_tree "$FE" "$DS1" | grep -E "^${f##*/}(\.snap)?[ /]" || true
}

expect_image() { # IMAGE_ID TOP
    local want got
    want=$(image_layout "$1" "$2" | LC_ALL=C sort)
    got=$(image_tree "$1" | LC_ALL=C sort)
    if [ "$want" != "$got" ]; then
        echo "expect_image: image $1 differs (- expected, + actual):"
        diff -u <(printf '%s\n' "$want") <(printf '%s\n' "$got") | tail -n +3
        return 1
    fi
}

# A persistent qcow2 image deployed in mixed mode on node1 (ln.ssh), with
# snapshots 0 and 1 taken and data written at 2, 3 and 4 MiB: disk.0 ->
# disk.0.snap/2. Prints the image id.
mixed_vm_with_snapshots() { # VMID [HOST]
    local vmid=$1 host=${2:-node1} img disk
    img=$(tm_image "pers-$vmid" --format qcow2 --size 16 --persistent)
    tm_vm "$vmid" --host "$host" --system-ds "$SSH_DS" --disk image="$img" >/dev/null
    tm_prolog "$vmid" >&2 || return 1
    disk=$(tm_sysdir "$vmid")/disk.0
    snap_create "$host" "$disk" 0 0x21 2 >&2
    snap_create "$host" "$disk" 1 0x22 3 >&2
    disk_write "$host" "$disk" qcow2 0x23 4 >&2
    echo "$img"
}

# ---------------------------------------------------------------- shared mode

case_shared_stop_resume() {
    local img pimg sysdir before
    img=$(tm_image os --format qcow2 --size 16)
    pimg=$(tm_image data --format qcow2 --size 16 --persistent)
    tm_vm 10 --host node1 --system-ds "$SYS_DS" --disk image="$img" --disk image="$pimg" \
        --volatile 8:fs:qcow2
    tm_prolog 10
    sysdir=$(norm "$(tm_sysdir 10)")
    disk_write node1 "$sysdir/disk.0" qcow2 0x41 1
    disk_write node1 "$sysdir/disk.1" qcow2 0x42 1
    before=$(host_tree node1 "$sysdir")

    # stop (and undeploy: the same file): MV to the front-end, same path
    tm_stop 10
    grep -q "^MV qcow2c node1:.*/disk.0 $FE:" "$TM_FILE"
    [ "$(host_tree node1 "$sysdir")" = "$before" ]
    grep -q 'shared storage' "$TM_REPLY"

    # resume on another host
    tm_resume 10 node2
    [ "$(host_tree node2 "$sysdir")" = "$before" ]
    on_host node2 qemu-io -f qcow2 -c "read -q -P 0x41 1M 1M" "$sysdir/disk.0" >/dev/null
    on_host node2 qemu-io -f qcow2 -c "read -q -P 0x42 1M 1M" "$sysdir/disk.1" >/dev/null

    # cold migration back
    tm_migrate 10 node2 node1
    [ "$(host_tree node1 "$sysdir")" = "$before" ]

    # every line printed nothing on stdout and no plain stderr line
    [ ! -s "$LAST_STDOUT" ]
    if grep -v '^INFO: ' "$LAST_STDERR"; then return 1; fi
    tm_epilog 10
}

case_missing_source_disk() {
    # trap 31: the resume's MV of a FILESYSTEM disk that never existed, and
    # MV of a disk whose directory was moved already
    local sysdir
    tm_vm 11 --host node1 --system-ds "$SYS_DS"
    sysdir=$(tm_sysdir 11)
    tm_transfer 11 - <<EOF
MV qcow2c $FE:$sysdir/disk.7 node2:$sysdir/disk.7 11 $SYS_DS
MV.ssh qcow2c $FE:$sysdir/disk.7 node2:$sysdir/disk.7 11 $SYS_DS
EOF
    [ ! -e "$(norm "$sysdir")" ]
}

case_system_ds_change() {
    local img pimg old new oldn newn before
    img=$(tm_image os2 --format qcow2 --size 16)
    pimg=$(tm_image data2 --format qcow2 --size 16 --persistent)
    tm_vm 12 --host node1 --system-ds "$SYS_DS" --disk image="$img" --disk image="$pimg"
    tm_prolog 12
    old=$DS_LOCATION/$SYS_DS/12
    new=$DS_LOCATION/2/12
    oldn=$(norm "$old")
    newn=$(norm "$new")
    disk_write node1 "$oldn/disk.0" qcow2 0x51 1
    before=$(host_tree node1 "$oldn")

    # the same file system: a rename
    tm_transfer 12 - <<EOF
MV qcow2c node1:$old/disk.0 node2:$new/disk.0 12 $IMG_DS
MV qcow2c node1:$old/disk.1 node2:$new/disk.1 12 $IMG_DS
MV qcow2c node1:$old node2:$new 12 2
EOF
    grep -q 'moving the VM directory' "$TM_REPLY"
    [ ! -e "$oldn" ]
    [ "$(host_tree node2 "$newn")" = "$before" ]
    on_host node2 qemu-io -f qcow2 -c "read -q -P 0x51 1M 1M" "$newn/disk.0" >/dev/null

    # a re-run after the move: nothing to do
    tm_transfer 12 - <<EOF
MV qcow2c node1:$old node2:$new 12 2
EOF
    grep -q 'already in place' "$TM_REPLY"

    # an interrupted move back that published the directory (complete) but
    # did not finish removing the source: the removal is finished
    cp -a "$newn" "$oldn"
    rm -f "$newn/disk.1"
    tm_transfer 12 - <<EOF
MV qcow2c node1:$new node2:$old 12 $SYS_DS
EOF
    grep -q 'removed the old copy' "$TM_REPLY"
    [ ! -e "$newn" ]
    [ "$(host_tree node2 "$oldn")" = "$before" ]

    # both present and the destination lacks something of the source:
    # refused, nothing touched
    cp -a "$oldn" "$newn"
    rm -f "$oldn/disk.1"
    snapshot >"$TEST_DIR/snap.before"
    tm_transfer_fails 12 - <<EOF
MV qcow2c node1:$new node2:$old 12 $SYS_DS
EOF
    refused "$TEST_DIR/snap.before" | grep -q 'refusing to choose'
    rm -rf "$newn"
    ln -s "$(tm_image_file "$pimg").snap/0" "$oldn/disk.1"

    # a destination on another file system: copied (sparse), then the old
    # directory removed
    mkdir -p "$DSROOT/3"
    mount -t tmpfs -o size=64m tmpfs "$DSROOT/3"
    defer umount "$DSROOT/3"
    tm_transfer 12 - <<EOF
MV qcow2c $FE:$old $FE:$DS_LOCATION/3/12 12 3
EOF
    grep -q 'moving the VM directory' "$TM_REPLY"
    [ ! -e "$oldn" ]
    [ ! -e "$DSROOT/3/12.part" ]
    [ "$(host_tree "$FE" "$DSROOT/3/12")" = "$before" ]
    qemu-io -f qcow2 -c "read -q -P 0x51 1M 1M" "$DSROOT/3/12/disk.0" >/dev/null
    # sparse: a 16 MiB overlay with 1 MiB written holds far less than 16 MiB
    [ "$(du -k "$DSROOT/3/12/disk.0.snap/0" | cut -f1)" -lt 4096 ]
    # and back
    tm_transfer 12 - <<EOF
MV qcow2c $FE:$DS_LOCATION/3/12 $FE:$old 12 $SYS_DS
EOF
    [ "$(host_tree "$FE" "$oldn")" = "$before" ]
    [ ! -e "$DSROOT/3/12" ]
}

case_mvds_shared() {
    local pimg sysdir rimg
    pimg=$(tm_image data3 --format qcow2 --size 16 --persistent)
    rimg=$(tm_image raw3 --format raw --size 8 --persistent)
    tm_vm 13 --host node1 --system-ds "$SYS_DS" --disk image="$pimg" --disk image="$rimg"
    tm_prolog 13
    sysdir=$(norm "$(tm_sysdir 13)")
    disk_write node1 "$sysdir/disk.0" qcow2 0x61 1
    snapshot >"$TEST_DIR/snap.before"
    # the disks live in the image datastore: nothing moves
    tm_transfer 13 - <<EOF
$(mvds_line 13 0 node1)
$(mvds_line 13 1 node1)
EOF
    snapshot | diff -u "$TEST_DIR/snap.before" -
    [ "$(grep -c 'in image .* already: nothing to move' "$TM_REPLY")" = 2 ]
    if grep '^LOG W' "$TM_REPLY"; then return 1; fi
    qemu-io -f qcow2 -c "read -q -P 0x61 1M 1M" "$(tm_image_file "$pimg").snap/0" >/dev/null

    # a disk.N that is not a link into the image: a warning, not a failure
    rm "$sysdir/disk.0"
    qemu-img create -q -f qcow2 "$sysdir/disk.0" 16M
    tm_transfer 13 - <<EOF
$(mvds_line 13 0 node1)
EOF
    grep -q '^LOG W 13 .*its changes are not in the image' "$TM_REPLY"
    # a re-run after the directory went: nothing
    rm -rf "$sysdir"
    tm_transfer 13 - <<EOF
$(mvds_line 13 0 node1)
EOF
    grep -q 'removed already' "$TM_REPLY"
}

# ---------------------------------------------------------------- mixed mode

case_mixed_stop_resume() {
    local img pimg sysdir
    img=$(tm_image os4 --format qcow2 --size 16)
    pimg=$(tm_image data4 --format qcow2 --size 16 --persistent)
    tm_vm 14 --host node1 --system-ds "$SSH_DS" --disk image="$img" --disk image="$pimg"
    tm_prolog 14
    sysdir=$(norm "$(tm_sysdir 14)")
    disk_write node1 "$sysdir/disk.0" qcow2 0x71 1
    snap_create node1 "$sysdir/disk.1" 0 0x72 2
    host_tree node1 "$sysdir" >"$TEST_DIR/tree.node1"

    # stop: the disks' MV.ssh lines do nothing, the ssh TM moves the directory
    tm_stop 14
    grep -q "^MV.ssh qcow2c node1:.*/disk.0 $FE:" "$TM_FILE"
    [ "$(grep -c 'moves with its VM directory' "$TM_REPLY")" = 2 ]
    [ -z "$(host_tree node1 "$sysdir")" ]
    host_tree "$FE" "$sysdir" | diff -u "$TEST_DIR/tree.node1" -

    # resume on node2
    tm_resume 14 node2
    [ -z "$(host_tree "$FE" "$sysdir")" ]
    host_tree node2 "$sysdir" | diff -u "$TEST_DIR/tree.node1" -
    on_host node2 qemu-io -f qcow2 -c "read -q -P 0x71 1M 1M" "$sysdir/disk.0" >/dev/null
    on_host node2 qemu-io -f qcow2 -c "read -q -P 0x72 2M 1M" "$sysdir/disk.1" >/dev/null

    # a mv.ssh line for a directory is not ours to move
    snapshot >"$TEST_DIR/snap.before"
    tm_transfer_fails 14 - <<EOF
MV.ssh qcow2c node2:$sysdir node1:$sysdir 14 $SSH_DS
EOF
    refused "$TEST_DIR/snap.before" | grep -q 'system datastore'
    tm_epilog 14
}

# mvds.ssh from node1: datastore 100 is private there, so the chain is
# copied into the image datastore; then a later ln (shared) and ln.ssh of
# the image find it.
case_mvds_ssh_chain() {
    local img sysdir src h ref
    img=$(mixed_vm_with_snapshots 15)
    sysdir=$(norm "$(tm_sysdir 15)")
    src=$(tm_image_file "$img")
    h=${src##*/}
    ref=$TEST_DIR/ref15.qcow2
    flatten node1 "$sysdir/disk.0" qcow2 "$ref"
    for k in 0 1; do flatten node1 "$sysdir/disk.0.snap/$k" qcow2 "$TEST_DIR/ref15.$k"; done

    tm_epilog 15
    grep -q "^MVDS.ssh qcow2c node1:" "$TM_FILE"
    grep -q 'copied' "$TM_REPLY"
    expect_image "$img" 2
    [ "$(readlink "$src")" = "$h.snap/2" ]
    [ "$(backing_of "$src.snap/2")" = "$h.snap/1" ]
    [ "$(backing_of "$src.snap/1")" = "$h.snap/0" ]
    qemu-img check -q "$src.snap/2"
    qemu-img compare -q "$ref" "$src"
    qemu-img compare -q "$TEST_DIR/ref15.0" "$src.snap/0"
    qemu-img compare -q "$TEST_DIR/ref15.1" "$src.snap/1"
    [ -z "$(host_tree node1 "$sysdir")" ]

    # the image with its snapshots, deployed again by ln (shared) ...
    tm_vm 16 --host node2 --system-ds "$SYS_DS" --disk image="$img"
    tm_prolog 16
    [ "$(readlink "$(norm "$(tm_sysdir 16)")/disk.0")" = "$src.snap/2" ]
    # (the VMM hands qemu the resolved path: backing names are relative)
    # shellcheck disable=SC2016 # expanded on the host
    on_host_sh node2 'qemu-img compare -q "$1" "$(readlink -f "$2")"' "$ref" \
        "$(norm "$(tm_sysdir 16)")/disk.0"
    tm_epilog 16
    expect_image "$img" 2

    # ... and by ln.ssh, on node2: the same chain, rebased into disk.0.snap
    tm_vm 17 --host node2 --system-ds "$SSH_DS" --disk image="$img"
    tm_prolog 17
    layout_is node2 "$(tm_sysdir 17)" <<EOF
. dir
disk.0 link disk.0.snap/2
disk.0.snap dir
disk.0.snap/0 file qcow2
disk.0.snap/1 file qcow2 disk.0.snap/0
disk.0.snap/2 file qcow2 disk.0.snap/1
disk.0.snap/disk.0.snap link .
EOF
    same_on node2 "$ref" qcow2 "$(norm "$(tm_sysdir 17)")/disk.0" qcow2
    # a snapshot deleted while the VM ran: its file leaves the image too
    # (oned lists the VM's snapshots for the image; ln links the highest)
    # shellcheck disable=SC2016 # expanded on the host
    on_host_sh node2 'set -e; cd "$1.snap"; qemu-img rebase -q -f qcow2 -F qcow2 -b disk.0.snap/0 2; rm 1' \
        "$(norm "$(tm_sysdir 17)")/disk.0"
    tm_epilog 17
    grep -q 'no longer snapshots' "$TM_REPLY"
    [ ! -e "$src.snap/1" ]
    [ "$(backing_of "$src.snap/2")" = "$h.snap/0" ]
    qemu-img compare -q "$ref" "$src"
}

# mvds.ssh on the front-end (terminate of an undeployed VM: the VM's
# directory is on the front-end, beside the image datastore): hard links,
# no data copied.
case_mvds_ssh_frontend() {
    local img sysdir src h ref ino
    img=$(mixed_vm_with_snapshots 18)
    sysdir=$(norm "$(tm_sysdir 18)")
    src=$(tm_image_file "$img")
    h=${src##*/}
    ref=$TEST_DIR/ref18.qcow2
    flatten node1 "$sysdir/disk.0" qcow2 "$ref"
    tm_stop 18 # undeploy: the ssh TM brings the directory to the front-end
    ino=$(stat -c %i "$sysdir/disk.0.snap/0")
    tm_epilog 18 --local
    grep -q "^MVDS.ssh qcow2c $FE:" "$TM_FILE"
    grep -q 'same file system: linked' "$TM_REPLY"
    expect_image "$img" 2
    [ "$(stat -c %i "$src.snap/0")" = "$ino" ]
    qemu-img compare -q "$ref" "$src"
    [ ! -e "$sysdir" ]
    # the mixed chain keeps no trace of the VM's names
    [ "$(backing_of "$src.snap/1")" = "$h.snap/0" ]
}

# recover --retry of that epilog names the VM's last host (trap 18) while
# the files are on the front-end: mvds.ssh takes them from there.
case_mvds_ssh_retry_last_host() {
    local img sysdir src ref
    img=$(mixed_vm_with_snapshots 26)
    sysdir=$(norm "$(tm_sysdir 26)")
    src=$(tm_image_file "$img")
    ref=$TEST_DIR/ref26.qcow2
    flatten node1 "$sysdir/disk.0" qcow2 "$ref"
    tm_stop 26
    [ -z "$(host_tree node1 "$sysdir")" ]
    tm_transfer 26 - < <(mvds_line 26 0 node1 .ssh)
    grep -q 'not on node1 but on the front-end' "$TM_REPLY"
    expect_image "$img" 2
    qemu-img compare -q "$ref" "$src"
    [ -z "$(ls -A "$sysdir")" ]
}

case_mvds_ssh_raw() {
    local img sysdir src
    img=$(tm_image raw5 --format raw --size 8 --persistent)
    tm_vm 19 --host node1 --system-ds "$SSH_DS" --disk image="$img"
    tm_prolog 19
    sysdir=$(norm "$(tm_sysdir 19)")
    src=$(tm_image_file "$img")
    disk_write node1 "$sysdir/disk.0" raw 0x31 2
    tm_epilog 19
    [ -f "$src" ] && [ ! -L "$src" ]
    qemu-io -f raw -c "read -q -P 0x31 2M 1M" "$src" >/dev/null
    qemu-io -f raw -c "read -q -P $(tm_pattern "$img") 0 1M" "$src" >/dev/null
    [ -z "$(host_tree node1 "$sysdir")" ]
    [ ! -e "$src.part" ]
}

# Every state an interrupted mvds.ssh can leave, built by hand from a run
# stopped at each step, then the re-run converges to the same image.
case_mvds_ssh_rerun() {
    local img sysdir src h ref vmid=20 line
    img=$(mixed_vm_with_snapshots $vmid)
    sysdir=$(norm "$(tm_sysdir $vmid)")
    src=$(tm_image_file "$img")
    h=${src##*/}
    ref=$TEST_DIR/ref20.qcow2
    flatten node1 "$sysdir/disk.0" qcow2 "$ref"
    line=$(mvds_line $vmid 0 node1 .ssh)
    # keep the VM's copy to rebuild states from
    on_host node1 cp -a "$sysdir" "$sysdir.keep"

    restore_vm() {
        on_host node1 rm -rf "$sysdir"
        on_host node1 cp -a "$sysdir.keep" "$sysdir"
    }
    check_image() {
        expect_image "$img" 2
        qemu-img compare -q "$ref" "$src"
        qemu-img check -q "$src.snap/2"
        [ -z "$(find "$src.snap" -name '*.new' -o -name '*.part' -o -name '*.lnk')" ]
        local left
        # shellcheck disable=SC2016 # expanded on the host
        left=$(on_host_sh node1 'ls -A "$1" 2>/dev/null' "$sysdir")
        [ -z "$left" ] || { echo "left in $sysdir: $left"; cat "$TM_REPLY"; return 1; }
    }

    # 1. staged halfway: 0 copied as 0.new, 1 half-copied as 1.new.part
    mkdir -p "$src.snap"
    on_host node1 cp "$sysdir/disk.0.snap/0" "$src.snap/0.new"
    on_host node1 touch -r "$sysdir/disk.0.snap/0" "$src.snap/0.new"
    head -c 100000 "$src" >"$src.snap/1.new.part"
    tm_transfer $vmid - <<<"$line"
    check_image

    # 2. everything renamed into place and SOURCE switched, but the VM's
    #    copy still there (the clean-up did not run)
    restore_vm
    tm_transfer $vmid - <<<"$line"
    check_image

    # 3. disk.0 removed, disk.0.snap not yet
    restore_vm
    on_host node1 rm -f "$sysdir/disk.0"
    tm_transfer $vmid - <<<"$line"
    grep -q 'removing the rest' "$TM_REPLY"
    check_image

    # 4. all done (the directory may be gone too)
    tm_transfer $vmid - <<<"$line"
    grep -q 'in image .* already' "$TM_REPLY"
    check_image

    # 5. what OpenNebula's mvds.ssh leaves: disk.0 dangling, disk.0.snap
    #    with its self link only
    on_host node1 mkdir -p "$sysdir/disk.0.snap"
    on_host node1 ln -sfn . "$sysdir/disk.0.snap/disk.0.snap"
    on_host node1 ln -sfn disk.0.snap/2 "$sysdir/disk.0"
    tm_transfer $vmid - <<<"$line"
    check_image

    # 6. a VM copy whose files are not in the image, disk.0 missing:
    #    refused, nothing removed
    restore_vm
    disk_write node1 "$sysdir/disk.0" qcow2 0x24 5
    on_host node1 rm -f "$sysdir/disk.0"
    snapshot >"$TEST_DIR/snap.before"
    tm_transfer_fails $vmid - <<<"$line"
    refused "$TEST_DIR/snap.before" | grep -q 'refusing to guess'
    on_host node1 rm -rf "$sysdir" "$sysdir.keep"
}

# A real crash: mvds.ssh killed with SIGKILL while it rewrites a backing
# name (qemu-img made slow), then the re-run converges.
case_mvds_ssh_kill() {
    local img sysdir src ref vmid=21 wrapper pid bg
    img=$(mixed_vm_with_snapshots $vmid)
    sysdir=$(norm "$(tm_sysdir $vmid)")
    src=$(tm_image_file "$img")
    ref=$TEST_DIR/ref21.qcow2
    flatten node1 "$sysdir/disk.0" qcow2 "$ref"
    wrapper=$TEST_DIR/slow-qemu-img
    # stuck in a rebase until its sleep is killed, then failing
    cat >"$wrapper" <<EOF
#!/bin/bash
if [ "\$1" = rebase ] && [ -e "$TEST_DIR/slow" ]; then
    echo \$\$ >"$TEST_DIR/slow.wrapper"
    sleep 60 &
    echo \$! >"$TEST_DIR/slow.pid"
    touch "$TEST_DIR/slow.reached"
    wait
    exit 1
fi
exec qemu-img "\$@"
EOF
    chmod 755 "$wrapper"
    tm_conf QEMU_IMG "$wrapper"
    touch "$TEST_DIR/slow"
    mvds_line $vmid 0 node1 .ssh >"$TEST_DIR/kill.line"
    (tm_transfer $vmid "$TEST_DIR/kill.line" >/dev/null 2>&1) &
    bg=$!
    for _ in $(seq 1000); do
        [ -e "$TEST_DIR/slow.reached" ] && break
        sleep 0.01
    done
    [ -e "$TEST_DIR/slow.reached" ]
    pid=$(pgrep -f "^$REMOTES/tm/qcow2c/mvds" | head -n 1)
    [ -n "$pid" ]
    kill -KILL "$pid"
    wait "$bg" || true
    # the orphaned command on the host: its sleep stopped by pid, then the
    # wrapper fails and the copy script removes its .part; wait for it
    kill "$(cat "$TEST_DIR/slow.pid")" 2>/dev/null || true
    for _ in $(seq 500); do
        kill -0 "$(cat "$TEST_DIR/slow.wrapper")" 2>/dev/null || break
        sleep 0.01
    done
    rm -f "$TEST_DIR/slow"
    tm_conf QEMU_IMG qemu-img
    # the image is still the old one: SOURCE not switched
    [ ! -L "$src" ]
    tm_transfer $vmid "$TEST_DIR/kill.line"
    expect_image "$img" 2
    qemu-img compare -q "$ref" "$src"
    [ -z "$(find "$src.snap" -name '*.new' -o -name '*.part' -o -name '*.lnk')" ]
}

# ---------------------------------------------------------------- refusals

case_hostile() {
    local img sysdir other src
    img=$(tm_image data6 --format qcow2 --size 16 --persistent)
    tm_vm 22 --host node1 --system-ds "$SSH_DS" --disk image="$img"
    tm_prolog 22
    sysdir=$(tm_sysdir 22)
    other=$DS_LOCATION/$SSH_DS/23
    src=$(tm_image_source "$img")
    snapshot >"$TEST_DIR/snap.before"
    local -a bad=(
        "MV qcow2c node1:$other node2:$other 22 $SSH_DS"
        "MV qcow2c node1:$sysdir/disk.0 node2:$sysdir/disk.1 22 $IMG_DS"
        "MV qcow2c node1:$sysdir node2:$sysdir/disk.0 22 $SSH_DS"
        "MV qcow2c node1:$sysdir/../23 node2:$DS_LOCATION/0/22 22 0"
        "MV qcow2c node1:$sysdir node2:$DS_LOCATION/0/22 22 7"
        "MV qcow2c node1:$sysdir -oProxyCommand=x:$DS_LOCATION/0/22 22 0"
        "MV qcow2c node1:$sysdir node2:2222:$DS_LOCATION/0/22 22 0"
        "MV qcow2c node1:$sysdir relative/22 22 0"
        "MV qcow2c node1:$sysdir node2:$DS_LOCATION/0/22 22 zero"
        "MV qcow2c node1:$sysdir/kernel node2:$DS_LOCATION/0/22/kernel 22 0"
        "MVDS.ssh qcow2c node1:$sysdir/disk.0 $DS_LOCATION/2/${src##*/} 22 $IMG_DS"
        "MVDS.ssh qcow2c node1:$sysdir/disk.0 $FE:$src 22 $IMG_DS"
        "MVDS.ssh qcow2c node1:$sysdir/disk.0 $DS_LOCATION/1/../0/22 22 $IMG_DS"
        "MVDS.ssh qcow2c node1:$sysdir/disk.0 - 22 $IMG_DS"
        "MVDS.ssh qcow2c node1:$other/disk.0 $src 22 $IMG_DS"
        "MVDS.ssh qcow2c $sysdir/disk.0 $src 22 $IMG_DS"
        "MVDS.ssh qcow2c node1:$sysdir $src 22 $IMG_DS"
        "MVDS qcow2c node1:$sysdir/disk.0 $src 22 -1"
    )
    local l
    for l in "${bad[@]}"; do
        tm_transfer_fails 22 - <<<"$l" || { echo "accepted: $l"; return 1; }
        refused "$TEST_DIR/snap.before" || { echo "for: $l"; return 1; }
    done
    # a quote or a $() in a path is data, never shell
    tm_transfer_fails 22 - <<<"MV qcow2c node1:$sysdir node2:$DS_LOCATION/0/22\$(touch\${IFS}$TEST_DIR/pwned) 22 0"
    [ ! -e "$TEST_DIR/pwned" ]
    # mvds.ssh: a disk.N pointing outside its directory
    on_host node1 ln -sfn /etc/passwd "$(norm "$sysdir")/disk.0"
    snapshot >"$TEST_DIR/snap.before"
    tm_transfer_fails 22 - < <(mvds_line 22 0 node1 .ssh)
    refused "$TEST_DIR/snap.before" | grep -q 'outside'
}

case_oned_unreachable() {
    local img sysdir
    img=$(tm_image data7 --format qcow2 --size 16 --persistent)
    tm_vm 24 --host node1 --system-ds "$SSH_DS" --disk image="$img"
    tm_prolog 24
    sysdir=$(norm "$(tm_sysdir 24)")
    disk_write node1 "$sysdir/disk.0" qcow2 0x37 1
    # mv does not ask oned; mvds does (a deferred save may be pending for
    # the disk, issue 5): it fails with one line and moves nothing
    tm_conf ONE_XMLRPC "http://127.0.0.1:9/RPC2"
    defer tm_conf ONE_XMLRPC "$(cat "$_tm/endpoint")"
    tm_transfer 24 - <<EOF
MV.ssh qcow2c node1:$sysdir/disk.0 $FE:$sysdir/disk.0 24 $IMG_DS
EOF
    snapshot >"$TEST_DIR/snap.before"
    tm_transfer_fails 24 - < <(mvds_line 24 0 node1 .ssh)
    refused "$TEST_DIR/snap.before" | grep -q 'deferred save pending.*oned'
    tm_conf ONE_XMLRPC "$(cat "$_tm/endpoint")"
    tm_transfer 24 - < <(mvds_line 24 0 node1 .ssh)
    qemu-io -f qcow2 -c "read -q -P 0x37 1M 1M" "$(tm_image_file "$img")" >/dev/null
}

case_hung_host() {
    local img sysdir start
    img=$(tm_image data8 --format qcow2 --size 16 --persistent)
    tm_vm 25 --host node1 --system-ds "$SSH_DS" --disk image="$img"
    tm_prolog 25
    sysdir=$(tm_sysdir 25)
    defer hosts_ctl resume node1
    hosts_ctl pause node1
    start=$SECONDS
    tm_transfer_fails 25 - < <(mvds_line 25 0 node1 .ssh)
    one_plain_line "$LAST_STDERR" | grep -q 'cannot reach host node1'
    [ $((SECONDS - start)) -lt 60 ]
    # shared mvds only checks, and a host that does not answer is a warning
    tm_transfer 25 - < <(mvds_line 25 0 node1)
    grep -q '^LOG W 25 .*cannot check' "$TM_REPLY"
    # mv to another system datastore through a hung host fails, bounded
    tm_transfer_fails 25 - < <(printf 'MV qcow2c node2:%s node1:%s 25 2\n' "$sysdir" "$DS_LOCATION/2/25")
    one_plain_line "$LAST_STDERR" | grep -q 'cannot reach host node1'
    hosts_ctl resume node1
    tm_transfer 25 - < <(mvds_line 25 0 node1 .ssh)
}

test_case "shared: stop, resume on another host, cold migrate move nothing" case_shared_stop_resume
test_case "mv of a disk that does not exist succeeds (trap 31)" case_missing_source_disk
test_case "system datastore change: rename, re-runs, copy to another file system" case_system_ds_change
test_case "mvds (shared): nothing moves, the link is checked" case_mvds_shared
test_case "mixed: stop and resume on another host (ssh TM moves the directory)" case_mixed_stop_resume
test_case "mvds.ssh: a chain with snapshots back from a host; later ln and ln.ssh" case_mvds_ssh_chain
test_case "mvds.ssh on the front-end: hard links" case_mvds_ssh_frontend
test_case "mvds.ssh named the last host, files on the front-end (trap 18)" case_mvds_ssh_retry_last_host
test_case "mvds.ssh: a raw disk" case_mvds_ssh_raw
test_case "mvds.ssh: re-runs from every interrupted state" case_mvds_ssh_rerun
test_case "mvds.ssh: re-run after kill -9" case_mvds_ssh_kill
test_case "hostile arguments are refused, nothing touched" case_hostile
test_case "oned unreachable: mv does not need it, mvds keeps the disk" case_oned_unreachable
test_case "hung host: one line, bounded" case_hung_host
