#!/bin/bash
# t0210-tm-clone-ln.sh - TM clone, clone.ssh, ln, ln.ssh (protocol §2.2-2.4):
# the exact layouts on the hosts in shared mode (system datastore 0) and in
# mixed mode (system datastore 100 of TM ssh, private to each host), the
# content of the disks, re-runs after failures at several points (a killed
# copy, .part files, half-built snapshot directories), hostile arguments,
# oned and hosts out of reach, and layouts made by OpenNebula's stock qcow2
# scripts (their exact command sequences, below) taken over by qcow2c and
# matched by qcow2c's byte for byte in names, links and backing names.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-tm.sh"

tm_setup --ssh-system

# ---------------------------------------------------------------- helpers

norm() { printf '%s\n' "$1" | tr -s /; }
DS0=$(norm "$DS_LOCATION/$SYS_DS")
DS100=$(norm "$DS_LOCATION/$SSH_DS")

# expect_layout with the lines in any order (sorted as host_tree sorts).
layout_is() { # HOST PATH <<EOF
    sed -e 's/^[[:space:]]*//' -e '/^$/d' -e 's/ /\t/' | LC_ALL=C sort | sed 's/\t/ /' |
        expect_layout "$1" "$2"
}

fmt_of() { # FILE (front-end view)
    qemu-img info -U --output=json -- "$1" | sed -n 's/^    "format": "\(.*\)",*$/\1/p' | head -n 1
}

vsize_of() { # FILE
    qemu-img info -U --output=json -- "$1" | sed -n 's/^    "virtual-size": \([0-9]*\),*$/\1/p' | head -n 1
}

backing_fmt_of() { # FILE
    qemu-img info -U --output=json -- "$1" |
        sed -n 's/^    "backing-filename-format": "\(.*\)",*$/\1/p' | head -n 1
}

# Same guest-visible content (qemu-img compare; sizes may differ, the extra
# part reading zeros).
same_image() { # A B
    if ! qemu-img compare -U -f "$(fmt_of "$1")" -F "$(fmt_of "$2")" -- "$1" "$2" >"$TEST_DIR/cmp.out" 2>&1; then
        echo "same_image: $1 and $2 differ:"
        cat "$TEST_DIR/cmp.out"
        return 1
    fi
}

# The same on a host (files of a private datastore).
same_image_on() { # HOST A B
    on_host "$1" qemu-img compare -U -- "$2" "$3" >/dev/null
}

check_on() { # HOST FILE
    on_host "$1" qemu-img check -q -U -- "$2"
}

inode_of() {
    stat -c %i -- "$1"
}

# A listing of everything the actions may touch: datastores 0 and 1 from
# the front-end, datastore 100 on node1 (private there).
snapshot() {
    (cd "$TEST_DIR/var/lib/one/datastores" &&
        find . -path ./100 -prune -o -printf '%p %y %s %l\n' | LC_ALL=C sort)
    on_host node1 find "$DS100" -printf '%p %y %s %l\n' | LC_ALL=C sort
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

# The running action of a transfer (the child of oned-tm).
action_pid() { # PID_OF_BACKGROUND_TM_TRANSFER
    local p c
    for p in $(pgrep -P "$1"); do
        for c in $(pgrep -P "$p") $p; do
            if [[ $(ps -o args= -p "$c") == */tm/qcow2c/* ]]; then
                echo "$c"
                return 0
            fi
        done
        action_pid "$p" && return 0
    done
    return 1
}

# A copy of an attempt under way beside FILE (FILE.part.<pid>), with data.
part_written() { # FILE
    local p
    for p in "$1".part.*; do
        [ -s "$p" ] && return 0
    done
    return 1
}

# Runs LINE for VMID in the background and, once COND... succeeds (or after
# 10 s), kills the action with SIGKILL as a crash of the front-end would: the
# ssh session it started and the commands on the host are left to
# themselves.
kill_action_when() { # VMID LINE COND...
    local vmid=$1 line=$2 bg pid i
    shift 2
    printf '%s\n' "$line" >"$TEST_DIR/kill.line"
    (tm_transfer "$vmid" "$TEST_DIR/kill.line") >/dev/null 2>&1 &
    bg=$!
    for ((i = 0; i < 1000; i++)); do
        if "$@" 2>/dev/null; then
            break
        fi
        sleep 0.01
    done
    pid=$(action_pid "$bg") || true
    if [ -n "$pid" ]; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$bg" || true
    [ -n "$pid" ] || echo "kill_action_when: the action had ended before the kill"
}

# ---------------------------------------------------------------- stock
# OpenNebula's qcow2 scripts at f847cf2e, as they run on the host, with
# their variables filled in (paths through arg_path: "//" collapsed).

# qcow2/clone, FORMAT=qcow2: ssh_make_path, disable_local_monitoring, then
# qcow_dir_cmd SRC DST create (tm_common.sh L209-238).
stock_clone() { # SRC_PATH DST_PATH
    local src=$1 dst=$2 file dir
    file=$(basename "$dst")
    dir=$(dirname "$dst")
    cat <<EOF
mkdir -p $dir
rm -f "$(dirname "$dir")/.monitor"
set -e -o pipefail
pushd $dir
rm -rf $dst.snap
mkdir -p $dst.snap
B_FORMAT=\$(qemu-img info $src | grep '^file format:' | awk '{print \$3}' || :)
qemu-img create -o backing_fmt=\${B_FORMAT:-raw} -b $src -f qcow2  $dst.snap/0
rm -f $dst
cd $dst.snap
ln -sf . $file.snap
ln -sf $file.snap/0 $dst
popd
EOF
}

# qcow2/ln, qcow2 image (L115-149).
stock_ln() { # SRC_PATH DST_PATH
    local src=$1 dst=$2
    cat <<EOF
mkdir -p $(dirname "$dst")
set -ex -o pipefail

mkdir -p "$src.snap"

if [ ! -L "$src.snap/$(basename "$src").snap" ]; then
    # backing file traversar link
    ln -s . "$src.snap/$(basename "$src").snap"
fi

SNAP="\$(ls $src.snap | grep '^[[:digit:]]*\$' | sort -n | tail -n 1 || :)"

if [ -z "\${SNAP}" ]; then
    SNAP=0
    # image is file, symlink back disk.x.snap/0 -> disk.x to mimic snaps struct
    ln -sf "$src" "$src.snap/0"
fi

rm -f "$dst"

# VM disk symlink to the image
ln -sf "$src.snap/\$SNAP" "$dst"

rm -rf "$dst.snap"
EOF
}

# qcow2/ln.ssh, qcow2 image (L92-134), with tm_common.sh's
# rebase_backing_files.
stock_ln_ssh() { # SRC_PATH DST_PATH
    local src=$1 dst=$2 file
    file=$(basename "$dst")
    cat <<EOF
mkdir -p $(dirname "$dst")
MONITOR_FN="$(dirname "$(dirname "$dst")")/.monitor"
echo ssh > "\$MONITOR_FN"
set -ex -o pipefail
rebase_backing_files ()
{
    local DST_FILE=\$1;
    for SNAP_ID in \$(find * -maxdepth 0 -type f -print);
    do
        INFO=\$(qemu-img info --output=json \$SNAP_ID);
        if [[ \$INFO =~ "backing-filename" ]]; then
            BACKING_FILE=\${INFO/*backing-filename\\": \\"/};
            BACKING_FILE=\${BACKING_FILE/\\"*/};
            BACKING_FILE=\$(basename \${BACKING_FILE});
            qemu-img rebase -f qcow2 -F qcow2 -u -b "\${DST_FILE}.snap/\$BACKING_FILE" \$SNAP_ID;
        fi;
    done
}
        mkdir -p "$dst.snap"
        for F in \$(ls $src.snap); do
            if [ -f $src.snap/\$F ]; then
                cp $src.snap/\$F $dst.snap
            fi
        done
        mkdir -p "$dst.snap"
        cd $dst.snap
        rm -f "$file.snap"
        ln -sf "." "$file.snap"
        rebase_backing_files "$file"
        SNAP="\$(ls | grep '^[[:digit:]]*\$' | sort -n | tail -n 1 || :)"
        if [ -z "\${SNAP}" ]; then
            SNAP=0
            cp "$src" "$dst.snap/0"
        fi

        cd ..
        rm -f "$file"
        ln -sf "$file.snap/\$SNAP" "$file"
EOF
}

stock_run() { # HOST SCRIPT
    on_host "$1" bash -c "$2" >"$TEST_DIR/stock.out" 2>&1 || {
        echo "the stock commands failed:"
        cat "$TEST_DIR/stock.out"
        return 1
    }
}

# A persistent image with two snapshots, as snap_create makes them in the
# image datastore (SOURCE.snap/K+1 on the previous one); absolute backing
# names with "abs", relative (<name>.snap/K, as after mvds.ssh) otherwise.
with_snapshots() { # IMAGE_ID abs|rel
    local f name b
    f=$(tm_image_file "$1")
    name=$(basename "$f")
    mkdir -p "$f.snap"
    ln -sfn "$f" "$f.snap/0"
    ln -sfn . "$f.snap/$name.snap"
    for k in 1 2; do
        if [ "$2" = abs ]; then b=$f.snap/$((k - 1)); else b=$name.snap/$((k - 1)); fi
        (cd "$f.snap" && qemu-img create -q -f qcow2 -F qcow2 -b "$b" "$k")
        qemu-io -f qcow2 -c "write -q -P 0x$((k + 4))$((k + 4)) ${k}M 1M" "$f.snap/$k" >/dev/null
    done
}

# ---------------------------------------------------------------- shared mode

case_clone_overlay() {
    local img f d
    img=$(tm_image os --format qcow2 --size 64)
    f=$(tm_image_file "$img")
    tm_vm 10 --host node1 --system-ds 0 --disk image="$img"
    echo ssh >"$DS0/.monitor"
    tm_prolog 10
    d=$(norm "$(tm_sysdir 10)")
    layout_is node1 "$d" <<EOF
        . dir
        disk.0 link disk.0.snap/0
        disk.0.snap dir
        disk.0.snap/0 file qcow2 $f
        disk.0.snap/disk.0.snap link .
EOF
    test "$(backing_fmt_of "$d/disk.0.snap/0")" = qcow2
    test ! -e "$DS0/.monitor"
    qemu_img_check "$d/disk.0"
    same_image "$f" "$d/disk.0"
    test "$(vsize_of "$d/disk.0")" = $((64 << 20))
    # A re-run (recover --retry) leaves the complete layout alone.
    local ino
    ino=$(inode_of "$d/disk.0.snap/0")
    tm_prolog 10
    test "$(inode_of "$d/disk.0.snap/0")" = "$ino"
    # The guest's writes go to the overlay, never to the image.
    qemu-io -f qcow2 -c 'write -q -P 0x99 0 64k' "$d/disk.0" >/dev/null
    test "$(tm_pattern "$img")" != 0x99
    qemu-io -f qcow2 -r -c "read -q -P $(tm_pattern "$img") 0 64k" "$f" >/dev/null
}

case_clone_grow_raw_backing() {
    local img f d
    img=$(tm_image rawos --format raw --size 32)
    f=$(tm_image_file "$img")
    tm_vm 11 --host node1 --system-ds 0 --disk image="$img"
    # an image used as qcow2 (FORMAT) whose file is raw: the backing format
    # is the file's, and SIZE > ORIGINAL_SIZE grows the disk (SPARSE=NO:
    # preallocated)
    tm_set vm 11 '/VM/TEMPLATE/DISK[DISK_ID=0]/FORMAT' qcow2
    tm_set vm 11 '/VM/TEMPLATE/DISK[DISK_ID=0]/SIZE' 96
    tm_set vm 11 '/VM/TEMPLATE/DISK[DISK_ID=0]/SPARSE' NO
    tm_prolog 11
    d=$(norm "$(tm_sysdir 11)")
    layout_is node1 "$d" <<EOF
        . dir
        disk.0 link disk.0.snap/0
        disk.0.snap dir
        disk.0.snap/0 file qcow2 $f
        disk.0.snap/disk.0.snap link .
EOF
    test "$(backing_fmt_of "$d/disk.0.snap/0")" = raw
    test "$(vsize_of "$d/disk.0")" = $((96 << 20))
    same_image "$f" "$d/disk.0"
    # re-run: already grown, nothing to do (qemu-img would refuse to
    # preallocate to the same size)
    tm_prolog 11
    test "$(vsize_of "$d/disk.0")" = $((96 << 20))
}

case_clone_standalone() {
    local img f d
    img=$(tm_image os2 --format qcow2 --size 64)
    f=$(tm_image_file "$img")
    tm_vm 12 --host node1 --system-ds 0 --disk image="$img"
    tm_set vm 12 '/VM/TEMPLATE/DISK[DISK_ID=0]/QCOW2_STANDALONE' YES
    tm_prolog 12
    d=$(norm "$(tm_sysdir 12)")
    layout_is node1 "$d" <<EOF
        . dir
        disk.0 link disk.0.snap/0
        disk.0.snap dir
        disk.0.snap/0 file qcow2
        disk.0.snap/disk.0.snap link .
EOF
    qemu_img_check "$d/disk.0"
    same_image "$f" "$d/disk.0"
}

case_clone_raw() {
    local img f d
    img=$(tm_image data --format raw --size 16 --type DATABLOCK)
    f=$(tm_image_file "$img")
    tm_vm 13 --host node1 --system-ds 0 --disk image="$img"
    # a snapshot directory left by an earlier disk 0 is not this disk's
    mkdir -p "$DS0/13/disk.0.snap" && touch "$DS0/13/disk.0.snap/0"
    tm_prolog 13
    d=$(norm "$(tm_sysdir 13)")
    layout_is node1 "$d" <<EOF
        . dir
        disk.0 file raw
EOF
    cmp "$f" "$d/disk.0"
    # grown (SIZE > ORIGINAL_SIZE) and a re-run keeps the grown copy
    tm_set vm 13 '/VM/TEMPLATE/DISK[DISK_ID=0]/SIZE' 24
    tm_prolog 13
    test "$(stat -c %s "$d/disk.0")" = $((24 << 20))
    local ino
    ino=$(inode_of "$d/disk.0")
    tm_prolog 13
    test "$(inode_of "$d/disk.0")" = "$ino"
    same_image "$f" "$d/disk.0"
}

case_clone_kernel() {
    local img f
    img=$(tm_image kernel --format raw --size 2)
    f=$(tm_image_file "$img")
    tm_vm 16 --host node1 --system-ds 0
    echo ssh >"$DS0/.monitor"
    # prolog_os_transfer_commands: never a mixed-mode suffix, so .monitor
    # (whatever the system datastore is) stays
    tm_transfer 16 <<<"CLONE qcow2c $FE:$(tm_image_source "$img") node1:$DS_LOCATION/0/16/kernel 16 1"
    layout_is node1 "$DS0/16" <<EOF
        . dir
        kernel file raw
EOF
    cmp "$f" "$DS0/16/kernel"
    test "$(cat "$DS0/.monitor")" = ssh
    rm -f "$DS0/.monitor"
}

case_ln_persistent() {
    local img f d name
    img=$(tm_image pdata --format qcow2 --size 32 --persistent --type DATABLOCK)
    f=$(tm_image_file "$img")
    name=$(basename "$f")
    tm_vm 14 --host node1 --system-ds 0 --disk image="$img"
    mkdir -p "$DS0/14/disk.0.snap"   # stale: removed, as stock does
    tm_prolog 14
    d=$(norm "$(tm_sysdir 14)")
    layout_is node1 "$d" <<EOF
        . dir
        disk.0 link $f.snap/0
EOF
    layout_is node1 "$f.snap" <<EOF
        . dir
        0 link $f
        $name.snap link .
EOF
    # with snapshots the disk is the head of the chain; .monitor untouched
    echo ssh >"$DS0/.monitor"
    rm -rf "$f.snap"
    with_snapshots "$img" abs
    tm_prolog 14
    layout_is node1 "$d" <<EOF
        . dir
        disk.0 link $f.snap/2
EOF
    test "$(cat "$DS0/.monitor")" = ssh
    rm -f "$DS0/.monitor"
    qemu_img_check "$d/disk.0"
    same_image "$f.snap/2" "$d/disk.0"
}

case_ln_raw_cdrom() {
    local img f d
    img=$(tm_image cd --format raw --size 4 --type CDROM)
    f=$(tm_image_file "$img")
    tm_vm 15 --host node1 --system-ds 0 --disk image="$img"
    tm_prolog 15
    d=$(norm "$(tm_sysdir 15)")
    layout_is node1 "$d" <<EOF
        . dir
        disk.0 link $f
EOF
    test ! -e "$f.snap"
}

# ---------------------------------------------------------------- mixed mode

case_clone_ssh() {
    local img f d
    img=$(tm_image os3 --format qcow2 --size 64)
    f=$(tm_image_file "$img")
    tm_vm 20 --host node1 --system-ds 100 --disk image="$img"
    tm_set vm 20 '/VM/TEMPLATE/DISK[DISK_ID=0]/SIZE' 80
    tm_prolog 20
    grep -q "^CLONE.ssh qcow2c " "$TM_FILE"
    d=$(norm "$(tm_sysdir 20)")
    layout_is node1 "$d" <<EOF
        . dir
        disk.0 link disk.0.snap/0
        disk.0.snap dir
        disk.0.snap/0 file qcow2
        disk.0.snap/disk.0.snap link .
EOF
    test "$(on_host node1 cat "$DS100/.monitor")" = ssh
    # datastore 100 is the host's own: the front-end's copy is untouched
    test ! -e "$DS100/20"
    check_on node1 "$d/disk.0"
    same_image_on node1 "$f" "$d/disk.0"
    test "$(on_host node1 qemu-img info -U --output=json "$d/disk.0" | grep -c '"virtual-size": 83886080')" -ge 1
}

case_clone_ssh_raw() {
    local img f d
    img=$(tm_image data2 --format raw --size 8 --type DATABLOCK)
    f=$(tm_image_file "$img")
    tm_vm 21 --host node1 --system-ds 100 --disk image="$img"
    tm_prolog 21
    d=$(norm "$(tm_sysdir 21)")
    layout_is node1 "$d" <<EOF
        . dir
        disk.0 file raw
EOF
    on_host node1 cmp "$f" "$d/disk.0"
}

case_ln_ssh_chain() {
    local img f d
    for kind in rel abs; do
        img=$(tm_image "p-$kind" --format qcow2 --size 32 --persistent --type DATABLOCK)
        f=$(tm_image_file "$img")
        with_snapshots "$img" "$kind"
        tm_vm 22 --host node1 --system-ds 100 --disk image="$img"
        tm_prolog 22
        grep -q "^LN.ssh qcow2c " "$TM_FILE"
        d=$(norm "$(tm_sysdir 22)")
        layout_is node1 "$d" <<EOF
            . dir
            disk.0 link disk.0.snap/2
            disk.0.snap dir
            disk.0.snap/0 file qcow2
            disk.0.snap/1 file qcow2 disk.0.snap/0
            disk.0.snap/2 file qcow2 disk.0.snap/1
            disk.0.snap/disk.0.snap link .
EOF
        test "$(on_host node1 cat "$DS100/.monitor")" = ssh
        check_on node1 "$d/disk.0"
        same_image_on node1 "$f.snap/2" "$d/disk.0"
        same_image_on node1 "$f" "$d/disk.0.snap/0"
        on_host node1 rm -rf "$d"
    done
}

case_ln_ssh_no_snapshots() {
    local img f d
    img=$(tm_image p2 --format qcow2 --size 16 --persistent --type DATABLOCK)
    f=$(tm_image_file "$img")
    tm_vm 23 --host node1 --system-ds 100 --disk image="$img"
    tm_prolog 23
    d=$(norm "$(tm_sysdir 23)")
    layout_is node1 "$d" <<EOF
        . dir
        disk.0 link disk.0.snap/0
        disk.0.snap dir
        disk.0.snap/0 file qcow2
        disk.0.snap/disk.0.snap link .
EOF
    same_image_on node1 "$f" "$d/disk.0"
    test ! -e "$f.snap"
    # a raw persistent image is a plain copy
    img=$(tm_image p3 --format raw --size 8 --persistent --type DATABLOCK)
    tm_vm 24 --host node1 --system-ds 100 --disk image="$img"
    tm_prolog 24
    layout_is node1 "$(norm "$(tm_sysdir 24)")" <<EOF
        . dir
        disk.0 file raw
EOF
}

# ---------------------------------------------------------------- re-runs

case_rerun_half_built_clone() {
    local img f d
    img=$(tm_image os4 --format qcow2 --size 64)
    f=$(tm_image_file "$img")
    tm_vm 30 --host node1 --system-ds 0 --disk image="$img"
    d=$DS0/30
    # a previous attempt stopped after qemu-img create, before the rename
    mkdir -p "$d/disk.0.snap"
    echo junk >"$d/disk.0.snap/0.part"
    tm_prolog 30
    # ... after the rename, before the links
    rm -f "$d/disk.0" "$d/disk.0.snap/disk.0.snap"
    tm_prolog 30
    # ... a disk.0.snap/0 that is not the overlay of this image
    qemu-img create -q -f qcow2 "$d/disk.0.snap/0" 64M
    tm_prolog 30
    layout_is node1 "$d" <<EOF
        . dir
        disk.0 link disk.0.snap/0
        disk.0.snap dir
        disk.0.snap/0 file qcow2 $f
        disk.0.snap/disk.0.snap link .
EOF
    same_image "$f" "$d/disk.0"
}

case_rerun_killed_copy() {
    local img f d line n
    img=$(tm_image big --format qcow2 --size 400)
    f=$(tm_image_file "$img")
    qemu-io -f qcow2 -c 'write -q -P 0x3c 1M 380M' "$f" >/dev/null
    tm_vm 31 --host node1 --system-ds 0 --disk image="$img"
    tm_set vm 31 '/VM/TEMPLATE/DISK[DISK_ID=0]/QCOW2_STANDALONE' YES
    d=$DS0/31
    line="CLONE qcow2c $FE:$(tm_image_source "$img") node1:$DS_LOCATION/0/31/disk.0 31 1"
    # killed while qemu-img convert writes disk.0.snap/0.part
    kill_action_when 31 "$line" test -s "$d/disk.0.snap/0.part"
    tm_transfer 31 <<<"$line"
    layout_is node1 "$d" <<EOF
        . dir
        disk.0 link disk.0.snap/0
        disk.0.snap dir
        disk.0.snap/0 file qcow2
        disk.0.snap/disk.0.snap link .
EOF
    qemu_img_check "$d/disk.0"
    same_image "$f" "$d/disk.0"
    # killed right after the copy, and a raw byte copy killed half-way
    rm -rf "$d"
    kill_action_when 31 "$line" test -e "$d/disk.0.snap/0"
    tm_transfer 31 <<<"$line"
    same_image "$f" "$d/disk.0"
    n=$(tm_image bigraw --format raw --size 400)
    qemu-io -f raw -c 'write -q -P 0x3d 1M 380M' "$(tm_image_file "$n")" >/dev/null
    tm_vm 32 --host node1 --system-ds 0 --disk image="$n"
    line="CLONE qcow2c $FE:$(tm_image_source "$n") node1:$DS_LOCATION/0/32/disk.0 32 1"
    kill_action_when 32 "$line" part_written "$DS0/32/disk.0"
    tm_transfer 32 <<<"$line"
    layout_is node1 "$DS0/32" <<EOF
        . dir
        disk.0 file raw
EOF
    cmp "$(tm_image_file "$n")" "$DS0/32/disk.0"
    rm -rf "$d" "$DS0/32"
}

case_rerun_ln_ssh() {
    local img f d
    img=$(tm_image p4 --format qcow2 --size 32 --persistent --type DATABLOCK)
    f=$(tm_image_file "$img")
    with_snapshots "$img" rel
    tm_vm 33 --host node1 --system-ds 100 --disk image="$img"
    d=$DS100/33
    # a half-built copy: a .part, a stale snapshot, a copy of 1 that a
    # plain cp made (its source's backing name, not yet rebased), a stale
    # self link pointing elsewhere
    on_host node1 bash -c "mkdir -p $d/disk.0.snap && cd $d/disk.0.snap &&
        echo junk >2.part && echo junk >7 && cp $f.snap/1 1 && ln -s /tmp disk.0.snap"
    tm_prolog 33
    layout_is node1 "$d" <<EOF
        . dir
        disk.0 link disk.0.snap/2
        disk.0.snap dir
        disk.0.snap/0 file qcow2
        disk.0.snap/1 file qcow2 disk.0.snap/0
        disk.0.snap/2 file qcow2 disk.0.snap/1
        disk.0.snap/disk.0.snap link .
EOF
    same_image_on node1 "$f.snap/2" "$d/disk.0"
    # a re-run copies nothing again
    local before after
    before=$(on_host node1 stat -c '%n %i' "$d/disk.0.snap/0" "$d/disk.0.snap/1" "$d/disk.0.snap/2")
    tm_prolog 33
    after=$(on_host node1 stat -c '%n %i' "$d/disk.0.snap/0" "$d/disk.0.snap/1" "$d/disk.0.snap/2")
    test "$before" = "$after"
    # killed mid-chain: 1 published, 2 not
    on_host node1 rm -f "$d/disk.0" "$d/disk.0.snap/2"
    tm_prolog 33
    same_image_on node1 "$f.snap/2" "$d/disk.0"
}

# ---------------------------------------------------------------- refusals

case_hostile_argv() {
    local img src d before
    img=$(tm_image os5 --format qcow2 --size 16)
    src=$(tm_image_source "$img")
    tm_vm 40 --host node1 --system-ds 0 --disk image="$img"
    d=$DS_LOCATION/0/40
    snapshot >"$TEST_DIR/before"
    for line in \
        "CLONE qcow2c $FE:$src node1:$d/disk.0 40" \
        "CLONE qcow2c $FE:$src node1:$d/disk.0 40 1 1" \
        "CLONE qcow2c $FE:$src node1:$d/disk.0 40x 1" \
        "CLONE qcow2c $FE:$src node1:$d/disk.0 40 1x" \
        "CLONE qcow2c $FE:$src node1:$DS_LOCATION/0/40/../41/disk.0 40 1" \
        "CLONE qcow2c $FE:$src node1:$DS_LOCATION/0/41/disk.0 40 1" \
        "CLONE qcow2c $FE:$src node1:$d/disk.0\$(touch\${IFS}$TEST_DIR/pwned) 40 1" \
        "CLONE qcow2c $FE:$src node1:$d/\$(id) 40 1" \
        "CLONE qcow2c $FE:$src node1:$d 40 1" \
        "CLONE qcow2c $FE:$src $d/disk.0 40 1" \
        "CLONE qcow2c $FE:$src [::1]:$d/disk.0 40 1" \
        "CLONE qcow2c $FE:$src ::1:$d/disk.0 40 1" \
        "CLONE qcow2c $FE:$src node1:2222:$d/disk.0 40 1" \
        "CLONE qcow2c $FE:$src -oProxyCommand=x:$d/disk.0 40 1" \
        "CLONE qcow2c $FE:/etc/passwd node1:$d/disk.0 40 1" \
        "CLONE qcow2c $FE:$DS_LOCATION/1/../0/40/disk.0 node1:$d/disk.1 40 1" \
        "CLONE qcow2c $FE:$DS_LOCATION/0/41/disk.0 node1:$d/disk.0 40 1" \
        "CLONE qcow2c $FE:relative/1/x node1:$d/disk.0 40 1" \
        "CLONE qcow2c $FE:$src node1:$d/disk.7 40 1" \
        "LN qcow2c $FE:$src node1:$DS_LOCATION/0/41/disk.0 40 1" \
        "LN qcow2c $FE:$src node1:$d/disk.0\$(id) 40 1" \
        "LN qcow2c $FE:$DS_LOCATION/1/nothere node1:$d/disk.0 40 1" \
        "LN.ssh qcow2c $FE:$src node1:$DS_LOCATION/100/40/../40/disk.0 40 1" \
        "CLONE.ssh qcow2c $FE:$src node1:$DS_LOCATION/100/39/disk.0 40 1"; do
        echo "# $line"
        tm_transfer_fails 40 <<<"$line"
        refused "$TEST_DIR/before"
    done
    test ! -e "$TEST_DIR/pwned"
}

case_oned_unreachable() {
    local img src reason
    img=$(tm_image os6 --format qcow2 --size 16)
    src=$(tm_image_source "$img")
    tm_vm 41 --host node1 --system-ds 0 --disk image="$img"
    snapshot >"$TEST_DIR/before"
    "$HARNESS/standin-ctl" "$STANDIN_DIR" fail one.vm.info 2 drop x
    tm_transfer_fails 41 <<<"CLONE qcow2c $FE:$src node1:$DS_LOCATION/0/41/disk.0 41 1"
    reason=$(refused "$TEST_DIR/before")
    [[ $reason == *oned* ]]
    tm_transfer_fails 41 <<<"LN qcow2c $FE:$src node1:$DS_LOCATION/0/41/disk.1 41 1"
    reason=$(refused "$TEST_DIR/before")
    [[ $reason == *oned* ]]
    "$HARNESS/standin-ctl" "$STANDIN_DIR" fail one.vm.info 1 0x400 'Error getting virtual machine [41].'
    tm_transfer_fails 41 <<<"CLONE qcow2c $FE:$src node1:$DS_LOCATION/0/41/disk.0 41 1"
    reason=$(refused "$TEST_DIR/before")
    [[ $reason == *"Error getting virtual machine [41]"* ]]
    # a hung oned: bounded by XMLRPC_TIMEOUT
    tm_conf XMLRPC_TIMEOUT 3
    "$HARNESS/standin-ctl" "$STANDIN_DIR" fail one.vm.info 1 hang x
    SECONDS=0
    tm_transfer_fails 41 <<<"CLONE qcow2c $FE:$src node1:$DS_LOCATION/0/41/disk.0 41 1"
    test "$SECONDS" -lt 20
    refused "$TEST_DIR/before"
    tm_conf XMLRPC_TIMEOUT 20
}

case_hung_host() {
    local img src reason
    img=$(tm_image os7 --format qcow2 --size 16)
    src=$(tm_image_source "$img")
    tm_vm 42 --host node2 --system-ds 0 --disk image="$img"
    snapshot >"$TEST_DIR/before"
    hosts_ctl pause node2
    defer hosts_ctl resume node2
    SECONDS=0
    tm_transfer_fails 42 <<<"CLONE qcow2c $FE:$src node2:$DS_LOCATION/0/42/disk.0 42 1"
    test "$SECONDS" -lt 60
    reason=$(refused "$TEST_DIR/before")
    [[ $reason == *node2* ]]
    hosts_ctl resume node2
    tm_prolog 42
    same_image "$(tm_image_file "$img")" "$DS0/42/disk.0"
}

# ---------------------------------------------------------------- stock

# The stock layouts and qcow2c's, side by side, in VM directories 50 (stock)
# and 51 (qcow2c): identical once the VM id is swapped.
same_tree() { # HOST STOCK_DIR QCOW2C_DIR
    local a b
    a=$(host_tree "$1" "$2" | sed "s:/50/:/51/:g")
    b=$(host_tree "$1" "$3")
    if [ "$a" != "$b" ]; then
        echo "same_tree: stock (-) and qcow2c (+) layouts differ:"
        diff -u <(printf '%s\n' "$a") <(printf '%s\n' "$b") || true
        return 1
    fi
}

case_stock_clone() {
    local img f
    img=$(tm_image os8 --format qcow2 --size 64)
    f=$(tm_image_file "$img")
    tm_vm 50 --host node1 --system-ds 0 --disk image="$img"
    tm_vm 51 --host node1 --system-ds 0 --disk image="$img"
    stock_run node1 "$(stock_clone "$f" "$DS0/50/disk.0")"
    tm_prolog 51
    same_tree node1 "$DS0/50" "$DS0/51"
    test "$(backing_fmt_of "$DS0/50/disk.0")" = "$(backing_fmt_of "$DS0/51/disk.0")"
    # qcow2c takes the stock layout over: a CLONE re-run keeps it, RESIZE
    # grows it, DELETE removes it
    local ino
    ino=$(inode_of "$DS0/50/disk.0.snap/0")
    tm_prolog 50
    test "$(inode_of "$DS0/50/disk.0.snap/0")" = "$ino"
    tm_vm_state 50 63 8
    tm_transfer 50 <<<"RESIZE qcow2c node1:$DS_LOCATION/0/50/disk.0 128 50 1"
    test "$(vsize_of "$DS0/50/disk.0")" = $((128 << 20))
    same_image "$f" "$DS0/50/disk.0"
    tm_epilog 50
    test ! -e "$DS0/50"
    test -f "$f"
}

case_stock_ln() {
    local img f
    img=$(tm_image p5 --format qcow2 --size 32 --persistent --type DATABLOCK)
    f=$(tm_image_file "$img")
    with_snapshots "$img" abs
    tm_vm 50 --host node1 --system-ds 0 --disk image="$img"
    stock_run node1 "$(stock_ln "$f" "$DS0/50/disk.0")"
    stock=$(host_tree node1 "$f.snap")
    host_tree node1 "$DS0/50" | sed "s:/50/:/51/:g" >"$TEST_DIR/stock.tree"
    tm_vm 51 --host node1 --system-ds 0 --disk image="$img"
    tm_prolog 51
    host_tree node1 "$DS0/51" | diff -u "$TEST_DIR/stock.tree" -
    test "$(host_tree node1 "$f.snap")" = "$stock"
    # and a fresh image (no SOURCE.snap yet), both ways
    img=$(tm_image p6 --format qcow2 --size 32 --persistent --type DATABLOCK)
    f=$(tm_image_file "$img")
    tm_vm 52 --host node1 --system-ds 0 --disk image="$img"
    stock_run node1 "$(stock_ln "$f" "$DS0/52/disk.0")"
    stock=$(host_tree node1 "$f.snap")
    tm_prolog 52
    test "$(host_tree node1 "$f.snap")" = "$stock"
    rm -rf "$f.snap"
    tm_prolog 52
    test "$(host_tree node1 "$f.snap")" = "$stock"
    layout_is node1 "$DS0/52" <<EOF
        . dir
        disk.0 link $f.snap/0
EOF
    rm -rf "$DS0/50" "$DS0/51" "$DS0/52"
}

case_stock_ln_ssh() {
    local img f
    img=$(tm_image p7 --format qcow2 --size 32 --persistent --type DATABLOCK)
    f=$(tm_image_file "$img")
    with_snapshots "$img" rel
    tm_vm 50 --host node1 --system-ds 100 --disk image="$img"
    tm_vm 51 --host node1 --system-ds 100 --disk image="$img"
    stock_run node1 "$(stock_ln_ssh "$f" "$DS100/50/disk.0")"
    tm_prolog 51
    same_tree node1 "$DS100/50" "$DS100/51"
    # qcow2c's LN.ssh over the stock copy converges to the same layout
    tm_prolog 50
    same_tree node1 "$DS100/50" "$DS100/51"
    same_image_on node1 "$f.snap/2" "$DS100/50/disk.0"
    on_host node1 rm -rf "$DS100/50" "$DS100/51"
}

test_case "clone: overlay on the image, .monitor removed, re-run keeps it" case_clone_overlay
test_case "clone: raw backing file, grown to SIZE, preallocated" case_clone_grow_raw_backing
test_case "clone: QCOW2_STANDALONE=YES gives a standalone copy" case_clone_standalone
test_case "clone: raw image, a byte copy, grown, stale snap dir removed" case_clone_raw
test_case "clone: an OS kernel file is a byte copy" case_clone_kernel
test_case "ln: the chain stays in the image datastore" case_ln_persistent
test_case "ln: raw CD-ROM is a link to the image" case_ln_raw_cdrom
test_case "clone.ssh: standalone copy in the host's datastore, .monitor ssh" case_clone_ssh
test_case "clone.ssh: raw byte copy" case_clone_ssh_raw
test_case "ln.ssh: snapshot chain copied and rebased (absolute and relative names)" case_ln_ssh_chain
test_case "ln.ssh: without snapshots, and raw" case_ln_ssh_no_snapshots
test_case "re-run: half-built clone layouts are rebuilt" case_rerun_half_built_clone
test_case "re-run: copies killed mid-way converge" case_rerun_killed_copy
test_case "re-run: half-built ln.ssh copy converges, nothing copied twice" case_rerun_ln_ssh
test_case "hostile arguments: refused with one line, nothing changed" case_hostile_argv
test_case "oned unreachable or failing: one clear line, nothing changed" case_oned_unreachable
test_case "hung host: bounded failure, then the retry works" case_hung_host
test_case "stock clone layout: identical, and taken over by qcow2c" case_stock_clone
test_case "stock ln layout: identical both ways" case_stock_ln
test_case "stock ln.ssh layout: identical, and converged by qcow2c" case_stock_ln_ssh
