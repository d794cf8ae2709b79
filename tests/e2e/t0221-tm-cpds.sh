#!/bin/bash
# t0221-tm-cpds.sh - TM cpds and cpds.ssh, the disk save-as (protocol §2.3
# cpds, §3.1, traps 8, 19, 23, 32): the current state and snapshots (with
# K.current) of non-persistent and persistent disks in shared mode and in
# mixed mode, in exactly the disk's FORMAT (qcow2 flattened, raw byte for
# byte), SPARSE=NO, content checked with qemu-img compare; the "same file"
# case; a running VM; a full datastore (one line, nothing left); a re-run
# after kill -9 mid-copy; DS rm of the target waiting for the copy; an
# earlier NEW_SOURCE replaced; hostile arguments; oned out of reach; a hung
# host.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-tm.sh"

tm_setup --ssh-system

# ---------------------------------------------------------------- helpers

norm() { printf '%s\n' "$1" | tr -s /; }
DS1=$(norm "$DS_LOCATION/$IMG_DS")
DSROOT=$(norm "$DS_LOCATION")
LCM_SAVEAS_POWEROFF=27
LCM_SAVEAS=26
LCM_SAVEAS_STOPPED=68

on_host_sh() { # HOST SCRIPT ARGS...
    local h=$1 s=$2
    shift 2
    on_host "$h" bash -c "$s" _ "$@"
}

# As OpenNebula's snap_create: snapshot ID frozen, ID+1 the new active
# file; PATTERN written at OFFSET MiB through the disk.
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

disk_write() { # HOST DISK FMT PATTERN OFFSET [LEN_MB]
    on_host "$1" qemu-io -f "$3" -c "write -q -P $4 $5M ${6:-1}M" "$2" >/dev/null
}

# A flattened copy of FILE (read where it lives, on HOST) into OUT (shared).
flatten() { # HOST FILE FMT OUT
    # shellcheck disable=SC2016 # expanded on the host
    on_host_sh "$1" 'qemu-img convert -U -f "$3" -O qcow2 "$(readlink -f "$2")" "$4"' \
        _ "$2" "$3" "$4"
}

fmt_of() {
    qemu-img info -U --output=json -- "$1" | sed -n 's/^    "format": "\(.*\)",*$/\1/p' | head -n 1
}

backing_of() {
    qemu-img info -U --output=json -- "$1" |
        sed -n 's/^    "backing-filename": "\(.*\)",*$/\1/p' | head -n 1
}

# A new image SOURCE of datastore DS, as DS mkfs (save_as) prints it.
new_source() { # [DS]
    printf '%s/%s/%s\n' "$DS_LOCATION" "${1:-$IMG_DS}" \
        "$(printf '%s:%s' "$(date +%s%N)" "$RANDOM" | md5sum | cut -c1-32)"
}

cpds_line() { # VMID DISK HOST NEW_SOURCE SNAP [SUFFIX] [DS]
    printf 'CPDS%s qcow2c %s:%s/disk.%s %s %s %s %s\n' "${6:-}" "$3" "$(tm_sysdir "$1")" "$2" \
        "$4" "$5" "$1" "${7:-$IMG_DS}"
}

# The save-as transfer as oned writes it, with the VM in LCM (default 27).
saveas() { # VMID DISK HOST NEW_SOURCE SNAP [SUFFIX] [DS] [LCM]
    tm_vm_state "$1" "${8:-$LCM_SAVEAS_POWEROFF}" 3
    tm_transfer "$1" --op disk_saveas - < <(cpds_line "$@")
}

saveas_fails() {
    tm_vm_state "$1" "${8:-$LCM_SAVEAS_POWEROFF}" 3
    tm_transfer_fails "$1" --op disk_saveas - < <(cpds_line "$@")
}

# NEW_SOURCE is a standalone image in FORMAT with the content of REF.
saved_as() { # NEW_SOURCE FORMAT REF [REF_FMT]
    local f
    f=$(norm "$1")
    [ -f "$f" ] || { echo "saved_as: $f missing"; return 1; }
    [ ! -e "$f.part" ] || { echo "saved_as: $f.part left"; return 1; }
    [ "$(fmt_of "$f")" = "$2" ] || { echo "saved_as: $f is $(fmt_of "$f"), not $2"; return 1; }
    [ -z "$(backing_of "$f")" ] || { echo "saved_as: $f has a backing file"; return 1; }
    qemu_img_check "$f"
    qemu-img compare -q -f "$2" -F "${4:-qcow2}" -- "$f" "$3" || {
        echo "saved_as: $f differs from $3"
        return 1
    }
}

# Nothing below the image datastore changed since listing FILE.
ds1_listing() {
    (cd "$DS1" && find . -printf '%p %y %s\n' | LC_ALL=C sort)
}

# ---------------------------------------------------------------- cases

case_shared_current() {
    local img sysdir ref dst
    img=$(tm_image os --format qcow2 --size 16)
    tm_vm 30 --host node1 --system-ds "$SYS_DS" --disk image="$img"
    tm_prolog 30
    sysdir=$(norm "$(tm_sysdir 30)")
    disk_write node1 "$sysdir/disk.0" qcow2 0x41 2
    snap_create node1 "$sysdir/disk.0" 0 0x42 3
    ref=$TEST_DIR/ref30
    flatten node1 "$sysdir/disk.0" qcow2 "$ref"
    dst=$(new_source)
    saveas 30 0 node1 "$dst" -1
    saved_as "$dst" qcow2 "$ref"
    grep -q "^CPDS qcow2c node1:" "$TM_FILE"
    [ ! -s "$LAST_STDOUT" ]
    # the same again over an existing NEW_SOURCE (an earlier attempt):
    # replaced by a complete copy
    printf 'garbage' >"$(norm "$dst")"
    head -c 5000 /dev/urandom >"$(norm "$dst").part"
    saveas 30 0 node1 "$dst" -1
    saved_as "$dst" qcow2 "$ref"
}

case_snapshots() {
    local img sysdir dst k
    img=$(tm_image os2 --format qcow2 --size 16)
    tm_vm 31 --host node1 --system-ds "$SYS_DS" --disk image="$img"
    tm_prolog 31
    sysdir=$(norm "$(tm_sysdir 31)")
    snap_create node1 "$sysdir/disk.0" 0 0x51 2
    snap_create node1 "$sysdir/disk.0" 1 0x52 3
    for k in 0 1 2; do flatten node1 "$sysdir/disk.0.snap/$k" qcow2 "$TEST_DIR/ref31.$k"; done
    # snapshot 0 (CLONE=YES: disk.0.snap/0, an overlay on the image)
    dst=$(new_source)
    saveas 31 0 node1 "$dst" 0
    saved_as "$dst" qcow2 "$TEST_DIR/ref31.0"
    qemu-io -f qcow2 -c "read -q -P $(tm_pattern "$img") 0 1M" "$(norm "$dst")" >/dev/null
    dst=$(new_source)
    saveas 31 0 node1 "$dst" 1
    saved_as "$dst" qcow2 "$TEST_DIR/ref31.1"
    # 0.current: snapshot 0 lives in file 1 now (a live delete)
    on_host node1 sh -c "echo $sysdir/disk.0.snap/1 >$sysdir/disk.0.snap/0.current"
    dst=$(new_source)
    saveas 31 0 node1 "$dst" 0
    grep -q 'snapshot 0 lives in' "$TM_REPLY"
    saved_as "$dst" qcow2 "$TEST_DIR/ref31.1"
    # a .current naming something else than a snapshot file: refused
    on_host node1 sh -c "echo /etc/passwd >$sysdir/disk.0.snap/0.current"
    dst=$(new_source)
    saveas_fails 31 0 node1 "$dst" 0
    one_plain_line "$LAST_STDERR" | grep -q 'not a snapshot file'
    [ ! -e "$(norm "$dst")" ] && [ ! -e "$(norm "$dst").part" ]
    # a snapshot that does not exist
    saveas_fails 31 0 node1 "$dst" 7
    one_plain_line "$LAST_STDERR" | grep -q 'does not exist'
}

case_persistent_shared() {
    local img sysdir src dst
    img=$(tm_image data --format qcow2 --size 16 --persistent)
    tm_vm 32 --host node1 --system-ds "$SYS_DS" --disk image="$img"
    tm_prolog 32
    sysdir=$(norm "$(tm_sysdir 32)")
    src=$(tm_image_file "$img")
    # a snapshot in the image datastore, as OpenNebula's snap_create makes
    # it for a persistent disk: SOURCE.snap/1 on SOURCE.snap/0 -> SOURCE
    # shellcheck disable=SC2016 # expanded on the host
    on_host_sh node1 'set -e; cd "$2.snap"; qemu-img create -q -f qcow2 -F qcow2 -b "$(readlink "$1")" "$2.snap/1"; ln -sfn "$2.snap/1" "$1"' \
        "$sysdir/disk.0" "$src"
    disk_write node1 "$sysdir/disk.0" qcow2 0x61 4
    flatten node1 "$src.snap/1" qcow2 "$TEST_DIR/ref32.1"
    # snapshot 0 of a persistent disk: SOURCE.snap/0, i.e. SOURCE
    dst=$(new_source)
    saveas 32 0 node1 "$dst" 0
    saved_as "$dst" qcow2 "$src"
    # the current state: the chain behind disk.0, in the image datastore
    dst=$(new_source)
    saveas 32 0 node1 "$dst" -1
    saved_as "$dst" qcow2 "$TEST_DIR/ref32.1"
    # the source link resolves to NEW_SOURCE itself: nothing to copy (as
    # OpenNebula's cpds)
    ds1_listing >"$TEST_DIR/ds1.before"
    saveas 32 0 node1 "$(tm_image_source "$img")" 0
    grep -q 'nothing to copy' "$TM_REPLY"
    ds1_listing | diff -u "$TEST_DIR/ds1.before" -
}

case_ssh_mode() {
    local img pimg sysdir dst
    img=$(tm_image os3 --format qcow2 --size 16)
    pimg=$(tm_image data3 --format qcow2 --size 16 --persistent)
    tm_vm 33 --host node1 --system-ds "$SSH_DS" --disk image="$img" --disk image="$pimg"
    tm_prolog 33
    sysdir=$(norm "$(tm_sysdir 33)")
    snap_create node1 "$sysdir/disk.0" 0 0x71 2
    snap_create node1 "$sysdir/disk.1" 0 0x72 2
    disk_write node1 "$sysdir/disk.1" qcow2 0x73 5
    flatten node1 "$sysdir/disk.0" qcow2 "$TEST_DIR/ref33.0"
    flatten node1 "$sysdir/disk.1" qcow2 "$TEST_DIR/ref33.1"
    flatten node1 "$sysdir/disk.1.snap/0" qcow2 "$TEST_DIR/ref33.1.0"
    dst=$(new_source)
    saveas 33 0 node1 "$dst" -1 .ssh
    saved_as "$dst" qcow2 "$TEST_DIR/ref33.0"
    # a persistent disk in mixed mode: its snapshots are in the system
    # datastore, not in SOURCE.snap
    dst=$(new_source)
    saveas 33 1 node1 "$dst" 0 .ssh
    saved_as "$dst" qcow2 "$TEST_DIR/ref33.1.0"
    dst=$(new_source)
    saveas 33 1 node1 "$dst" -1 .ssh
    saved_as "$dst" qcow2 "$TEST_DIR/ref33.1"
    # undeployed (LCM 67/68: the files are on the front-end, HOST is it)
    tm_stop 33
    dst=$(new_source)
    saveas 33 1 "$FE" "$dst" -1 .ssh "$IMG_DS" "$LCM_SAVEAS_STOPPED"
    saved_as "$dst" qcow2 "$TEST_DIR/ref33.1"
}

case_raw_sparse() {
    local img sysdir dst
    img=$(tm_image raw --format raw --size 16 --persistent)
    tm_vm 34 --host node1 --system-ds "$SSH_DS" --disk image="$img"
    tm_prolog 34
    sysdir=$(norm "$(tm_sysdir 34)")
    disk_write node1 "$sysdir/disk.0" raw 0x31 6
    dst=$(new_source)
    saveas 34 0 node1 "$dst" -1 .ssh
    # raw, byte for byte, sparse
    [ "$(fmt_of "$(norm "$dst")")" = raw ]
    [ ! -e "$(norm "$dst").part" ]
    [ "$(stat -c %s "$(norm "$dst")")" = $((16 << 20)) ]
    [ "$(du -k "$(norm "$dst")" | cut -f1)" -lt 8192 ]
    on_host node1 cmp "$(norm "$dst")" "$sysdir/disk.0"
    # SPARSE=NO: every byte allocated
    tm_set vm 34 '/VM/TEMPLATE/DISK[DISK_ID=0]/SPARSE' NO
    dst=$(new_source)
    saveas 34 0 node1 "$dst" -1 .ssh
    [ "$(du -k "$(norm "$dst")" | cut -f1)" -ge 16384 ]
    on_host node1 cmp "$(norm "$dst")" "$sysdir/disk.0"
    # and a qcow2 disk with SPARSE=NO: preallocated
    local q
    q=$(tm_image q --format qcow2 --size 16)
    tm_vm 35 --host node1 --system-ds "$SYS_DS" --disk image="$q"
    tm_prolog 35
    tm_set vm 35 '/VM/TEMPLATE/DISK[DISK_ID=0]/SPARSE' NO
    dst=$(new_source)
    saveas 35 0 node1 "$dst" -1
    [ "$(fmt_of "$(norm "$dst")")" = qcow2 ]
    [ "$(du -k "$(norm "$dst")" | cut -f1)" -ge 16384 ]
    qemu-img compare -q "$(norm "$dst")" "$(tm_image_file "$q")"
}

# The new image's FORMAT is the disk's FORMAT (oned records it for the
# image): a raw disk of a shared system datastore (a plain copy of its
# image) is saved raw; without FORMAT and DRIVER in oned, the file's format.
case_exact_format() {
    local img sysdir dst
    img=$(tm_image rawos --format raw --size 8)
    tm_vm 36 --host node1 --system-ds "$SYS_DS" --disk image="$img"
    tm_prolog 36
    sysdir=$(norm "$(tm_sysdir 36)")
    [ "$(tm_get vm 36 '/VM/TEMPLATE/DISK[DISK_ID=0]/FORMAT')" = raw ]
    disk_write node1 "$sysdir/disk.0" raw 0x3c 5
    dst=$(new_source)
    saveas 36 0 node1 "$dst" -1
    [ "$(fmt_of "$(norm "$dst")")" = raw ]
    cmp "$(norm "$dst")" "$(readlink -f "$sysdir/disk.0")"
    tm_set vm 36 '/VM/TEMPLATE/DISK[DISK_ID=0]/FORMAT' ''
    tm_set vm 36 '/VM/TEMPLATE/DISK[DISK_ID=0]/DRIVER' ''
    dst=$(new_source)
    saveas 36 0 node1 "$dst" -1
    grep -q 'has no FORMAT' "$TM_REPLY"
    [ "$(fmt_of "$(norm "$dst")")" = raw ]
    cmp "$(norm "$dst")" "$(readlink -f "$sysdir/disk.0")"
}

case_running() {
    local img sysdir dst
    img=$(tm_image os4 --format qcow2 --size 16)
    tm_vm 37 --host node1 --system-ds "$SYS_DS" --disk image="$img"
    tm_prolog 37
    sysdir=$(norm "$(tm_sysdir 37)")
    snap_create node1 "$sysdir/disk.0" 0 0x44 2
    flatten node1 "$sysdir/disk.0.snap/0" qcow2 "$TEST_DIR/ref37.0"
    dst=$(new_source)
    ds1_listing >"$TEST_DIR/ds1.before"
    saveas_fails 37 0 node1 "$dst" -1 "" "$IMG_DS" "$LCM_SAVEAS"
    one_plain_line "$LAST_STDERR" | grep -q 'reading domain one-37 failed'
    ds1_listing | diff -u "$TEST_DIR/ds1.before" -
    # a snapshot is a frozen file: copied
    saveas 37 0 node1 "$dst" 0 "" "$IMG_DS" "$LCM_SAVEAS"
    saved_as "$dst" qcow2 "$TEST_DIR/ref37.0"
}

# A datastore that fills up: one line, nothing left behind. The copy runs
# on the front-end (a stopped VM), where the small tmpfs is mounted.
case_full_datastore() {
    local img sysdir dst before
    img=$(tm_image big --format qcow2 --size 32)
    tm_vm 38 --host node1 --system-ds "$SYS_DS" --disk image="$img"
    tm_prolog 38
    sysdir=$(norm "$(tm_sysdir 38)")
    disk_write node1 "$sysdir/disk.0" qcow2 0x5a 2 12
    tm_stop 38
    mkdir -p "$DSROOT/5"
    mount -t tmpfs -o size=4m tmpfs "$DSROOT/5"
    defer umount "$DSROOT/5"
    dst=$(new_source 5)
    saveas_fails 38 0 "$FE" "$dst" -1 "" 5 "$LCM_SAVEAS_STOPPED"
    one_plain_line "$LAST_STDERR" | grep -qi 'no space left'
    before=$(ls -A "$DSROOT/5")
    [ -z "$before" ] || { echo "left in the datastore: $before"; return 1; }
}

# The copy killed with SIGKILL mid-way (qemu-img made slow and left
# writing a partial .part), then the re-run converges.
case_kill_rerun() {
    local img sysdir dst wrapper pid bg ref
    img=$(tm_image os5 --format qcow2 --size 16)
    tm_vm 39 --host node1 --system-ds "$SYS_DS" --disk image="$img"
    tm_prolog 39
    sysdir=$(norm "$(tm_sysdir 39)")
    disk_write node1 "$sysdir/disk.0" qcow2 0x66 3
    ref=$TEST_DIR/ref39
    flatten node1 "$sysdir/disk.0" qcow2 "$ref"
    wrapper=$TEST_DIR/slow-qemu-img
    cat >"$wrapper" <<EOF
#!/bin/bash
if [ "\$1" = convert ] && [ -e "$TEST_DIR/slow" ]; then
    for out; do :; done
    head -c 300000 /dev/urandom >"\$out"
    echo \$\$ >"$TEST_DIR/slow.wrapper"
    sleep 60 &
    echo \$! >"$TEST_DIR/slow.pid"
    touch "$TEST_DIR/slow.reached"
    wait
    exit 0
fi
exec qemu-img "\$@"
EOF
    chmod 755 "$wrapper"
    tm_conf QEMU_IMG "$wrapper"
    touch "$TEST_DIR/slow"
    dst=$(new_source)
    tm_vm_state 39 "$LCM_SAVEAS_POWEROFF" 3
    cpds_line 39 0 node1 "$dst" -1 >"$TEST_DIR/kill.line"
    (tm_transfer 39 --op disk_saveas "$TEST_DIR/kill.line" >/dev/null 2>&1) &
    bg=$!
    for _ in $(seq 1000); do
        [ -e "$TEST_DIR/slow.reached" ] && break
        sleep 0.01
    done
    [ -e "$TEST_DIR/slow.reached" ]
    pid=$(pgrep -f "^$REMOTES/tm/qcow2c/cpds" | head -n 1)
    [ -n "$pid" ]
    kill -KILL "$pid"
    wait "$bg" || true
    kill "$(cat "$TEST_DIR/slow.pid")" 2>/dev/null || true
    for _ in $(seq 500); do
        kill -0 "$(cat "$TEST_DIR/slow.wrapper")" 2>/dev/null || break
        sleep 0.01
    done
    rm -f "$TEST_DIR/slow"
    # the crash left a partial .part and no NEW_SOURCE
    [ -e "$(norm "$dst").part" ]
    [ ! -e "$(norm "$dst")" ]
    tm_conf QEMU_IMG qemu-img
    tm_transfer 39 --op disk_saveas "$TEST_DIR/kill.line"
    saved_as "$dst" qcow2 "$ref"
}

# Deleting the LOCKED image during the copy (trap 19): DS rm waits for the
# copy, then removes it; no orphan.
case_rm_waits() {
    local img sysdir dst wrapper bg msg start
    img=$(tm_image os6 --format qcow2 --size 16)
    tm_vm 40 --host node1 --system-ds "$SYS_DS" --disk image="$img"
    tm_prolog 40
    sysdir=$(norm "$(tm_sysdir 40)")
    wrapper=$TEST_DIR/slow-qemu-img2
    cat >"$wrapper" <<EOF
#!/bin/bash
if [ "\$1" = convert ]; then
    qemu-img "\$@" || exit
    touch "$TEST_DIR/copying"
    sleep 3
    exit 0
fi
exec qemu-img "\$@"
EOF
    chmod 755 "$wrapper"
    tm_conf QEMU_IMG "$wrapper"
    dst=$(new_source)
    tm_vm_state 40 "$LCM_SAVEAS_POWEROFF" 3
    cpds_line 40 0 node1 "$dst" -1 >"$TEST_DIR/rm.line"
    (tm_transfer 40 --op disk_saveas "$TEST_DIR/rm.line" >"$TEST_DIR/cpds.out" 2>&1) &
    bg=$!
    for _ in $(seq 1000); do
        [ -e "$TEST_DIR/copying" ] && break
        sleep 0.01
    done
    [ -e "$TEST_DIR/copying" ]
    msg=$TEST_DIR/rm.msg
    "$HARNESS/ds-msg" "$SRC/tests/fixtures/oned/ds/rm/1/stdin.decoded.xml" \
        --subst "/var/lib/one//datastores/107=$DS_LOCATION/$IMG_DS" \
        --set "/DS_DRIVER_ACTION_DATA/IMAGE/SOURCE=$dst" \
        --set "/DS_DRIVER_ACTION_DATA/DATASTORE/ID=$IMG_DS" >"$msg"
    # (its own output files: the transfer in the background writes LAST_*)
    start=$SECONDS
    "$REMOTES/datastore/qcow2c/rm" 77 <"$msg" >"$TEST_DIR/rm.out" 2>"$TEST_DIR/rm.err" || {
        echo "DS rm failed:"
        cat "$TEST_DIR/rm.err"
        return 1
    }
    grep -q 'waiting for another action' "$TEST_DIR/rm.err"
    grep -q 'removed .* from the image repository' "$TEST_DIR/rm.err"
    # it waited for the copy's end: the 3 s the copy still took
    [ $((SECONDS - start)) -ge 2 ]
    wait "$bg"
    tm_conf QEMU_IMG qemu-img
    [ ! -e "$(norm "$dst")" ] && [ ! -e "$(norm "$dst").part" ]
}

case_hostile() {
    local img sysdir other src
    img=$(tm_image os7 --format qcow2 --size 16)
    tm_vm 41 --host node1 --system-ds "$SYS_DS" --disk image="$img"
    tm_prolog 41
    sysdir=$(tm_sysdir 41)
    other=$DS_LOCATION/$SYS_DS/42
    src=$(new_source)
    ds1_listing >"$TEST_DIR/ds1.before"
    local -a bad=(
        "CPDS qcow2c node1:$sysdir/disk.0 $src abc 41 $IMG_DS"
        "CPDS qcow2c node1:$sysdir/disk.0 $src -2 41 $IMG_DS"
        "CPDS qcow2c node1:$sysdir/disk.0 $src 1e3 41 $IMG_DS"
        "CPDS qcow2c node1:$sysdir/disk.0 - -1 41 $IMG_DS"
        "CPDS qcow2c node1:$sysdir/disk.0 relative/x -1 41 $IMG_DS"
        "CPDS qcow2c node1:$sysdir/disk.0 $DS_LOCATION/2/x -1 41 $IMG_DS"
        "CPDS qcow2c node1:$sysdir/disk.0 $DS_LOCATION/1/../0/x -1 41 $IMG_DS"
        "CPDS qcow2c node1:$sysdir/disk.0 $FE:$src -1 41 $IMG_DS"
        "CPDS qcow2c node1:$sysdir/disk.0 /etc/passwd -1 41 $IMG_DS"
        "CPDS qcow2c node1:$other/disk.0 $src -1 41 $IMG_DS"
        "CPDS qcow2c node1:$sysdir $src -1 41 $IMG_DS"
        "CPDS qcow2c $sysdir/disk.0 $src -1 41 $IMG_DS"
        "CPDS qcow2c -oProxyCommand=x:$sysdir/disk.0 $src -1 41 $IMG_DS"
        "CPDS qcow2c node1:$sysdir/disk.0 $src -1 41 one"
    )
    local l
    tm_vm_state 41 "$LCM_SAVEAS_POWEROFF" 3
    for l in "${bad[@]}"; do
        tm_transfer_fails 41 - <<<"$l" || { echo "accepted: $l"; return 1; }
        one_plain_line "$LAST_STDERR" >/dev/null || { echo "for: $l"; return 1; }
        ds1_listing | diff -u "$TEST_DIR/ds1.before" - || { echo "for: $l"; return 1; }
    done
}

case_oned_unreachable() {
    local img dst
    img=$(tm_image os8 --format qcow2 --size 16)
    tm_vm 43 --host node1 --system-ds "$SYS_DS" --disk image="$img"
    tm_prolog 43
    tm_vm_state 43 "$LCM_SAVEAS_POWEROFF" 3
    tm_conf ONE_XMLRPC "http://127.0.0.1:9/RPC2"
    defer tm_conf ONE_XMLRPC "$(cat "$_tm/endpoint")"
    dst=$(new_source)
    ds1_listing >"$TEST_DIR/ds1.before"
    tm_transfer_fails 43 --op disk_saveas - < <(cpds_line 43 0 node1 "$dst" -1)
    one_plain_line "$LAST_STDERR" | grep -q 'cannot reach oned'
    ds1_listing | diff -u "$TEST_DIR/ds1.before" -
}

case_hung_host() {
    local img dst start
    img=$(tm_image os9 --format qcow2 --size 16)
    tm_vm 44 --host node1 --system-ds "$SYS_DS" --disk image="$img"
    tm_prolog 44
    defer hosts_ctl resume node1
    hosts_ctl pause node1
    dst=$(new_source)
    start=$SECONDS
    saveas_fails 44 0 node1 "$dst" -1
    one_plain_line "$LAST_STDERR" | grep -q 'cannot reach host node1'
    [ $((SECONDS - start)) -lt 60 ]
    [ ! -e "$(norm "$dst")" ] && [ ! -e "$(norm "$dst").part" ]
    hosts_ctl resume node1
    saveas 44 0 node1 "$dst" -1
    saved_as "$dst" qcow2 "$(tm_image_file "$img")"
}

test_case "shared: the current state, flattened; an earlier NEW_SOURCE replaced" case_shared_current
test_case "snapshots of a non-persistent disk, K.current" case_snapshots
test_case "persistent disk, shared: SOURCE.snap/K, the current chain, the same file" case_persistent_shared
test_case "cpds.ssh: current state and snapshots from the system datastore, undeployed" case_ssh_mode
test_case "raw byte for byte, sparse; SPARSE=NO preallocates" case_raw_sparse
test_case "exactly the disk's FORMAT" case_exact_format
test_case "running VM, no domain on the host: the hot save fails, nothing written; a snapshot is copied" case_running
test_case "full datastore: one line, nothing left" case_full_datastore
test_case "re-run after kill -9 mid-copy" case_kill_rerun
test_case "DS rm of the target waits for the copy" case_rm_waits
test_case "hostile arguments are refused" case_hostile
test_case "oned unreachable: one line, nothing written" case_oned_unreachable
test_case "hung host: one line, bounded" case_hung_host
