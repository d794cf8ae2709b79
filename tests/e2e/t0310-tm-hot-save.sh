#!/bin/bash
# e2e: alone (a TCG guest: it needs both cores, and times what it sees)
# t0310-tm-hot-save.sh - the hot disk save-as: TM cpds and cpds.ssh of the
# current state (SNAP_ID -1) of a disk of a RUNNING VM (LCM 26
# HOTPLUG_SAVEAS), against a real libvirt-managed QEMU guest
# (tests/lib/guest.sh: its writer keeps a record stream on the disk that
# build/harness/check-copy judges) started as OpenNebula's KVM driver starts
# one. The save goes as oned drives it: one.vm.disksaveas to the oned
# stand-in (a LOCKED image, the VM in LCM 26), what oned's MKFS callback
# records (the image's SOURCE and FORMAT, the disk's HOTPLUG_SAVE_AS*),
# then the transfer file oned writes (CPDS[.ssh] qcow2c host:disk.N
# NEW_SOURCE -1 VM DS) run by the oned-format runner.
#   - with the guest agent: file systems frozen for the instant only (the
#     guest's own timestamps show a stall far shorter than the copy), the
#     copy holds one instant of the stream, standalone, checked; the image
#     template says filesystem-frozen, the UTC instant, the VM and disk;
#   - a disk with snapshots (disk.0 -> disk.0.snap/2): the current state;
#     the snapshot files and the image below are not touched (the merge
#     goes into the active layer only);
#   - the second disk of a VM with two (and the first one while a second
#     is there): the other disk is left alone;
#   - without an agent, a persistent disk (its chain beside the image, the
#     overlay there): crash-consistent at the overlay's instant, said so;
#     HOT_SAVE_REQUIRE_FREEZE=yes refuses instead, leaving nothing;
#   - ssh mode (cpds.ssh): the system datastore of TM ssh in the layout
#     this machine's one libvirtd can see (as t0231 explains, the private
#     datastore of tm_setup --ssh-system is invisible to it);
#   - failures at each step, each followed by a retry that converges: the
#     agent hangs (degrades, or refuses with HOT_SAVE_REQUIRE_FREEZE),
#     snapshot-create refused, the merge (block job) fails, the image
#     datastore is full, the action killed mid-copy, a merge job left by an
#     action killed in it. After each: the domain on its own disk (the chain
#     of virsh dumpxml as before, no block job, disk.0 pointing where it
#     did), no overlay, no .part, the guest writing. While the domain writes
#     the overlay disk.0 points to it (an action killed then leaves the
#     guest's newest writes under disk.0).
# Needs root.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-tm.sh"

need_tool virsh virtlogd libvirtd qemu-img qemu-system-x86_64 cc cpio mkfs.ext4 awk xmllint \
    nsenter md5sum
if [ "$(id -u)" != 0 ]; then
    echo "t0310-tm-hot-save: needs root (libvirtd, QEMU as libvirt-qemu)" >&2
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
CTL=$TEST_DIR/ctl
mkdir -p "$G" "$LV" "$CTL" "$TEST_DIR/bin"
chmod 0755 "$G"
# Domains started in a case (a subshell): their names go to a file, which
# the script's end reads.
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

# virsh for the hosts (VIRSH in qcow2c.conf), failing on request, as a
# single command (argv) and in an interactive session (its stdin filtered):
#   $CTL/hang.domfsfreeze    domfsfreeze hangs (an agent that never answers)
#   $CTL/fail.snapshot-create-as, $CTL/fail.blockcommit   refused
cat >"$TEST_DIR/bin/virsh" <<EOF
#!/bin/bash
sub=
for a; do
    case \$a in domfsfreeze | snapshot-create-as | blockcommit) sub=\$a; break ;; esac
done
if [ \$# = 2 ]; then
    # -c URI: a session reading its commands
    while IFS= read -r line; do
        case \$line in
            *domfsfreeze*) [ ! -e "$CTL/hang.domfsfreeze" ] || sleep 3600 ;;
            *snapshot-create-as*)
                [ ! -e "$CTL/fail.snapshot-create-as" ] ||
                    line=injected-failure-of-snapshot-create-as ;;
        esac
        printf '%s\n' "\$line"
    done | virsh "\$@"
    exit
fi
if [ -n "\$sub" ] && [ -e "$CTL/fail.\$sub" ]; then
    echo "error: injected failure of \$sub" >&2
    exit 1
fi
if [ "\$sub" = domfsfreeze ] && [ -e "$CTL/hang.domfsfreeze" ]; then
    sleep 3600
fi
exec virsh "\$@"
EOF
chmod 755 "$TEST_DIR/bin/virsh"
tm_conf VIRSH "$TEST_DIR/bin/virsh"

# qemu-img for the hosts (QEMU_IMG), slow on request:
#   $CTL/slow.convert        convert waits 3 s first
#   $CTL/stuck.convert       convert writes a little and waits (to be killed)
cat >"$TEST_DIR/bin/qemu-img" <<EOF
#!/bin/bash
if [ "\$1" = convert ] && [ -e "$CTL/stuck.convert" ]; then
    for out; do :; done
    head -c 300000 /dev/urandom >"\$out"
    sleep 60 &
    echo \$! >"$CTL/stuck.pid"
    touch "$CTL/stuck.reached"
    wait
    exit 0
fi
if [ "\$1" = convert ] && [ -e "$CTL/slow.convert" ]; then
    sleep 3
fi
exec qemu-img "\$@"
EOF
chmod 755 "$TEST_DIR/bin/qemu-img"
tm_conf QEMU_IMG "$TEST_DIR/bin/qemu-img"

# ---------------------------------------------------------------- helpers

vsh() {
    timeout -k 5 60 virsh -q -c "$URI" "$@"
}

norm() { printf '%s\n' "$1" | tr -s /; }
DSROOT=$(norm "$DS_LOCATION")
LCM_SAVEAS=26

# A VM whose disk 0 is the guest's disk (an image of datastore 1 holding the
# guest's file system), deployed as oned does and started by guest.sh with
# FLAGS (--agent or nothing); more disks with --disk IMAGE_ID (vdb, ...),
# which the domain gets by hot attach. Sets GV_DIR GV_UUID GV_NAME GV_SRC.
guest_vm() { # VMID SYSTEM_DS [--persistent] [--disk IMAGE_ID]... [FLAGS...]
    local vmid=$1 sysds=$2 pers=() img extra=() disks=() flags=() i t
    shift 2
    while [ $# -gt 0 ]; do
        case $1 in
            --persistent) pers=(--persistent) ;;
            --disk) extra+=("$2"); shift ;;
            *) flags+=("$1") ;;
        esac
        shift
    done
    img=$(tm_image "hot$vmid" --format qcow2 --size 64 "${pers[@]}")
    cp "$G/base.qcow2" "$(tm_image_file "$img")"
    disks=(--disk image="$img")
    for i in "${extra[@]}"; do disks+=(--disk image="$i"); done
    tm_vm "$vmid" --host node1 --system-ds "$sysds" "${disks[@]}"
    t=(vda vdb vdc vdd)
    for ((i = 0; i <= ${#extra[@]}; i++)); do
        tm_set vm "$vmid" "/VM/TEMPLATE/DISK[DISK_ID=$i]/TARGET" "${t[$i]}"
    done
    tm_prolog "$vmid"
    GV_DIR=$(norm "$(tm_sysdir "$vmid")")
    GV_SRC=$(tm_image_file "$img")
    GV_NAME=qcow2c-t0310-$$-$vmid
    echo "$GV_NAME" >>"$NAMES"
    chmod -R a+rX "$TEST_DIR/var"
    GV_UUID=$("$GUEST" start "$G" "$GV_NAME" "$GV_DIR/disk.0" --vm-dir "$GV_DIR" \
        "${flags[@]}" 2>"$TEST_DIR/guest.err") || {
        cat "$TEST_DIR/guest.err"
        return 1
    }
    for ((i = 1; i <= ${#extra[@]}; i++)); do
        vsh attach-disk "$GV_UUID" "$(readlink -f "$GV_DIR/disk.$i")" "${t[$i]}" \
            --driver qemu --subdriver qcow2 --targetbus virtio --live >/dev/null
    done
    tm_set vm "$vmid" /VM/DEPLOY_ID "$GV_UUID"
    tm_vm_state "$vmid" 3 3
}

# XML-RPC to the oned stand-in, through bash's /dev/tcp (as standin.sh).
rpc() { # METHOD PARAMS_XML
    local body hostport
    body="<?xml version=\"1.0\"?><methodCall><methodName>$1</methodName><params><param><value><string>$(cat "$STANDIN_DIR/one_auth")</string></value></param>$2</params></methodCall>"
    hostport=${ONE_XMLRPC#http://}
    hostport=${hostport%%/*}
    # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
    timeout 20 bash -c '
        exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || exit 1
        printf "POST /RPC2 HTTP/1.1\r\nHost: %s\r\nContent-Type: text/xml\r\nConnection: close\r\nContent-Length: %s\r\n\r\n%s" "$1" "${#2}" "$2" >&3
        cat <&3' _ "$hostport" "$body" | tr -d '\r\n'
}

# A new image SOURCE of datastore DS, as DS mkfs (save_as) prints it.
new_source() { # [DS]
    printf '%s/%s/%s\n' "$DS_LOCATION" "${1:-$IMG_DS}" \
        "$(printf '%s:%s' "$(date +%s%N)" "$RANDOM" | md5sum | cut -c1-32)"
}

# onevm disk-saveas as oned runs it up to the transfer: one.vm.disksaveas
# (the LOCKED image, the VM in LCM 26), then what its MKFS callback records:
# the image's SOURCE and FORMAT and (unless --no-vm-record, the form of the
# captured hot document) the disk's HOTPLUG_SAVE_AS / _SOURCE. Sets SA_IMG
# and SA_SRC.
saveas_begin() { # VMID DISK [DS] [--no-vm-record]
    local vmid=$1 disk=$2 ds=${3:-$IMG_DS} rec=${4:-} resp
    resp=$(rpc one.vm.disksaveas "<param><value><i4>$vmid</i4></value></param><param><value><i4>$disk</i4></value></param><param><value><string>saved-$vmid-$disk-$(date +%s%N)</string></value></param><param><value><string></string></value></param><param><value><i4>-1</i4></value></param>")
    [[ $resp == *'<boolean>1</boolean>'* ]] || {
        echo "one.vm.disksaveas failed: $resp"
        return 1
    }
    SA_IMG=$(grep -o '<i4>[0-9]*</i4>' <<<"$resp" | head -n 1 | sed 's/<i4>\([0-9]*\)<.*/\1/')
    test "$(tm_get vm "$vmid" /VM/LCM_STATE)" = "$LCM_SAVEAS"
    test "$(tm_get image "$SA_IMG" /IMAGE/STATE)" = 4
    SA_SRC=$(new_source "$ds")
    tm_set image "$SA_IMG" /IMAGE/SOURCE "$SA_SRC"
    tm_set image "$SA_IMG" /IMAGE/FORMAT qcow2
    if [ "$rec" != --no-vm-record ]; then
        tm_set vm "$vmid" "/VM/TEMPLATE/DISK[DISK_ID=$disk]/HOTPLUG_SAVE_AS" "$SA_IMG"
        tm_set vm "$vmid" "/VM/TEMPLATE/DISK[DISK_ID=$disk]/HOTPLUG_SAVE_AS_SOURCE" "$SA_SRC"
    else
        tm_set vm "$vmid" "/VM/TEMPLATE/DISK[DISK_ID=$disk]/HOTPLUG_SAVE_AS" ""
        tm_set vm "$vmid" "/VM/TEMPLATE/DISK[DISK_ID=$disk]/HOTPLUG_SAVE_AS_SOURCE" ""
    fi
}

# The transfer oned writes for the save (trigger_saveas_hot), then what
# LifeCycleStates does with the answer: VM back to RUNNING, image READY or
# ERROR.
cpds_line() { # VMID DISK [SUFFIX] [DS]
    printf 'CPDS%s qcow2c node1:%s/disk.%s %s -1 %s %s\n' "${3:-}" "$(norm "$(tm_sysdir "$1")")" \
        "$2" "$SA_SRC" "$1" "${4:-$IMG_DS}"
}

saveas_end() { # VMID STATE
    tm_vm_state "$1" 3 3
    tm_set image "$SA_IMG" /IMAGE/STATE "$2"
}

hot_save() { # VMID DISK [SUFFIX] [DS]
    tm_transfer "$1" --op disk_saveas - < <(cpds_line "$@") || {
        saveas_end "$1" 5
        return 1
    }
    saveas_end "$1" 1
}

hot_save_fails() { # VMID DISK [SUFFIX] [DS]
    tm_transfer_fails "$1" --op disk_saveas - < <(cpds_line "$@") || return 1
    saveas_end "$1" 5
}

# One instant of the writer's stream; prints its counter.
consistent() { # FILE
    "$CHECK" "$1" >"$TEST_DIR/check.out" 2>&1 || true
    grep -q '^CONSISTENT' "$TEST_DIR/check.out" || {
        echo "consistent: $1:" >&2
        cat "$TEST_DIR/check.out" >&2
        return 1
    }
    sed -n 's/^CONSISTENT counter=\([0-9]*\) .*/\1/p' "$TEST_DIR/check.out"
}

# A standalone, sound qcow2 file, published (no .part beside it).
standalone() { # FILE
    local f
    f=$(norm "$1")
    [ -f "$f" ] || { echo "standalone: $f missing"; return 1; }
    [ ! -e "$f.part" ] || { echo "standalone: $f.part left"; return 1; }
    qemu-img info -U --output=json -- "$f" >"$TEST_DIR/info.json"
    grep -q '"format": "qcow2"' "$TEST_DIR/info.json"
    if grep -q '"backing-filename"' "$TEST_DIR/info.json"; then
        echo "standalone: $f has a backing file"
        return 1
    fi
    qemu_img_check "$f"
}

counter() {
    "$GUEST" counter "$G" "$1"
}

# The guest runs and writes (not paused, not frozen): its counter grows.
writes() { # NAME
    local c0 c i
    test "$(vsh domstate "$1")" = running
    c0=$(counter "$1")
    for ((i = 0; i < 100; i++)); do
        c=$(counter "$1")
        [ "$c" -le "$c0" ] || return 0
        sleep 0.1
    done
    echo "writes: the writer of $1 stopped at $c0"
    return 1
}

# The files of disk TARGET's chain as libvirt shows them (a block job's
# mirror would show too), one per line.
chain() { # UUID TARGET
    vsh dumpxml "$1" | xmllint --xpath "//devices/disk[target/@dev='$2']/descendant::source/@file" - |
        tr ' ' '\n' | sed -n 's/^file="\(.*\)"$/\1/p'
}

# The domain is back on its own disk: the chain as before, no block job, no
# temporary overlay, no .part; the guest writes.
back_on_disk() { # UUID TARGET CHAIN_FILE NAME [NEW_SOURCE]
    local got
    got=$(chain "$1" "$2")
    if [ "$got" != "$(cat "$3")" ]; then
        echo "back_on_disk: the chain of $2 differs:"
        diff -u "$3" <(printf '%s\n' "$got") || true
        return 1
    fi
    [ -z "$(vsh blockjob "$1" "$2" --raw)" ] || { echo "back_on_disk: a block job is left"; return 1; }
    if find "$TEST_DIR/var" -name 'hotsave.*' | grep -q .; then
        echo "back_on_disk: overlays left: $(find "$TEST_DIR/var" -name 'hotsave.*')"
        return 1
    fi
    if [ -n "${5:-}" ] && [ -e "$(norm "$5").part" ]; then
        echo "back_on_disk: $5.part left"
        return 1
    fi
    writes "$4"
}

tmpl() { # IMAGE_ID ATTR
    tm_get image "$1" "/IMAGE/TEMPLATE/$2"
}

# The guest's largest gap between records (its own clock) from FROM to TO.
stall() { # NAME FROM TO
    "$GUEST" stall "$G" "$1" "$2" "$3" | sed -n 's/^guest=\([0-9.]*\) .*/\1/p'
}

# The names in DIR, sorted, on one line.
entries() { # DIR
    find "$1" -mindepth 1 -maxdepth 1 -printf '%f\n' | LC_ALL=C sort | tr '\n' ' '
}

lt() { # A B: A < B (decimals)
    awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'
}

# ---------------------------------------------------------------- cases

VM_A=90
case_agent() {
    local data img c0 c1 n t0 t1 g src5 tree0 inst
    data=$(tm_image data90 --format qcow2 --size 16 --data 0x5d)
    guest_vm $VM_A "$SYS_DS" --disk "$data" --agent
    echo "$GV_UUID $GV_NAME $GV_DIR $GV_SRC" >"$TEST_DIR/vm.a"
    chain "$GV_UUID" vda >"$TEST_DIR/chain.a"
    chain "$GV_UUID" vdb >"$TEST_DIR/chain.a.vdb"
    [ "$(wc -l <"$TEST_DIR/chain.a")" = 2 ]
    tree0=$(host_tree node1 "$GV_DIR")
    src5=$(md5sum <"$GV_SRC")
    # a copy slower than the writer's period: the guest must not wait for it
    touch "$CTL/slow.convert"
    defer rm -f "$CTL/slow.convert"
    saveas_begin $VM_A 0
    c0=$(counter "$GV_NAME")
    t0=$(date +%s.%N)
    hot_save $VM_A 0
    t1=$(date +%s.%N)
    rm -f "$CTL/slow.convert"
    c1=$(counter "$GV_NAME")
    expect_stderr_line --match 'hot save of disk vda of domain .*: freeze, overlay .*/disk.0.snap/hotsave\.'
    expect_stderr_line --match 'file systems frozen for [0-9.]+ s .*virsh session'
    standalone "$SA_SRC"
    n=$(consistent "$(norm "$SA_SRC")")
    # the instant is the snapshot's, near the start; not the copy's end
    if [ "$n" -lt "$c0" ] || [ $((2 * (n - c0))) -gt $((c1 - c0)) ]; then
        echo "copy at $n, guest $c0..$c1: not in the first half of the save"
        return 1
    fi
    # frozen for the instant, not for the copy (3 s and more)
    lt 3 "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
    g=$(stall "$GV_NAME" "$t0" "$t1")
    lt "$g" 1.5 || { echo "the guest stalled $g s"; return 1; }
    echo "agent: stall $g s (guest clock), copy at counter $n of $c0..$c1" >>"$TEST_DIR/figures"
    # what was achieved, in the image (found through HOTPLUG_SAVE_AS)
    test "$(tmpl "$SA_IMG" HOT_SAVE_CONSISTENCY)" = filesystem-frozen
    inst=$(tmpl "$SA_IMG" HOT_SAVE_INSTANT)
    [[ $inst =~ ^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$ ]]
    test "$(tmpl "$SA_IMG" HOT_SAVE_VM_ID)" = $VM_A
    test "$(tmpl "$SA_IMG" HOT_SAVE_DISK_ID)" = 0
    test "$(tmpl "$SA_IMG" HOT_SAVE_TARGET)" = vda
    back_on_disk "$GV_UUID" vda "$TEST_DIR/chain.a" "$GV_NAME" "$SA_SRC"
    test "$tree0" = "$(host_tree node1 "$GV_DIR")"
    test "$src5" = "$(md5sum <"$GV_SRC")"
    # the other disk was left alone
    test "$(chain "$GV_UUID" vdb)" = "$(cat "$TEST_DIR/chain.a.vdb")"
}

case_second_disk() {
    local uuid name dir src ref
    read -r uuid name dir src <"$TEST_DIR/vm.a"
    ref=$TEST_DIR/ref.vdb
    qemu-img convert -U -O qcow2 "$(readlink -f "$dir/disk.1")" "$ref"
    saveas_begin $VM_A 1
    tm_conf DEBUG yes
    hot_save $VM_A 1
    tm_conf DEBUG no
    expect_stderr_line --match 'hot save of disk vdb of domain'
    echo "a hot save: $(grep -o '[0-9]* child processes' "$LAST_STDERR" | tail -n 1)" \
        "($(grep -c 'DEBUG: .*: on node1: ' "$LAST_STDERR") commands on node1)" >>"$TEST_DIR/figures"
    standalone "$SA_SRC"
    qemu-img compare -q -U "$(norm "$SA_SRC")" "$ref"
    test "$(tmpl "$SA_IMG" HOT_SAVE_DISK_ID)" = 1
    test "$(tmpl "$SA_IMG" HOT_SAVE_TARGET)" = vdb
    back_on_disk "$uuid" vdb "$TEST_DIR/chain.a.vdb" "$name" "$SA_SRC"
    back_on_disk "$uuid" vda "$TEST_DIR/chain.a" "$name"
}

# Live snapshots first: disk.0 -> disk.0.snap/2 over 1 over 0 over the image.
case_chain() {
    local uuid name dir src c n sums
    read -r uuid name dir src <"$TEST_DIR/vm.a"
    c=$dir/disk.0.snap
    for n in 0 1; do
        tm_vm_state $VM_A 57 3
        tm_vmm $VM_A "SNAP_CREATE_LIVE qcow2c node1:$dir/disk.0 $n $VM_A $IMG_DS"
        tm_vm_state $VM_A 3 3
    done
    test "$(readlink "$dir/disk.0")" = disk.0.snap/2
    chain "$uuid" vda >"$TEST_DIR/chain.a"
    [ "$(wc -l <"$TEST_DIR/chain.a")" = 4 ]
    sums=$(md5sum "$c/0" "$c/1" "$src")
    # the form of the captured hot VM document: no HOTPLUG_SAVE_AS yet, the
    # image is found by its SOURCE
    saveas_begin $VM_A 0 "$IMG_DS" --no-vm-record
    hot_save $VM_A 0
    standalone "$SA_SRC"
    consistent "$(norm "$SA_SRC")" >/dev/null
    test "$(tmpl "$SA_IMG" HOT_SAVE_CONSISTENCY)" = filesystem-frozen
    back_on_disk "$uuid" vda "$TEST_DIR/chain.a" "$name" "$SA_SRC"
    # the merge went into the active layer only
    test "$sums" = "$(md5sum "$c/0" "$c/1" "$src")"
    layout_is_ok "$dir"
    # a snapshot of a running VM is still the cold copy of a frozen file
    saveas_begin $VM_A 0
    tm_transfer $VM_A --op disk_saveas - <<<"CPDS qcow2c node1:$dir/disk.0 $SA_SRC 1 $VM_A $IMG_DS"
    saveas_end $VM_A 1
    standalone "$SA_SRC"
    qemu-img compare -q -U "$(norm "$SA_SRC")" "$c/1"
}

# stock's snapshot layout, nothing else in disk.0.snap
layout_is_ok() { # VM_DIR
    local names
    names=$(entries "$1/disk.0.snap")
    test "$names" = "0 1 2 disk.0.snap " || { echo "disk.0.snap holds: $names"; return 1; }
}

# A persistent disk (shared mode: its chain beside the image, SOURCE.snap)
# of a guest without an agent.
case_no_agent() {
    local before n snaps
    guest_vm 91 "$SYS_DS" --persistent
    chain "$GV_UUID" vda >"$TEST_DIR/chain.b"
    test "$(head -n 1 "$TEST_DIR/chain.b")" = "$GV_SRC"
    snaps=$(entries "$GV_SRC.snap")
    test "$(readlink "$GV_DIR/disk.0")" = "$GV_SRC.snap/0"
    saveas_begin 91 0
    hot_save 91 0
    expect_stderr_line --match 'cannot freeze the file systems of .*not configured.*crash-consistent'
    expect_stderr_line --match "overlay $GV_SRC.snap/hotsave\\."
    test "$snaps" = "$(entries "$GV_SRC.snap")"
    test "$(readlink "$GV_DIR/disk.0")" = "$GV_SRC.snap/0"
    expect_stderr_line --match "points to $GV_SRC.snap/0 again"
    standalone "$SA_SRC"
    n=$(consistent "$(norm "$SA_SRC")")
    test "$(tmpl "$SA_IMG" HOT_SAVE_CONSISTENCY)" = crash-consistent
    tmpl "$SA_IMG" HOT_SAVE_NOTE | grep -q 'no guest agent'
    back_on_disk "$GV_UUID" vda "$TEST_DIR/chain.b" "$GV_NAME" "$SA_SRC"
    echo "no agent: copy CONSISTENT at $n" >>"$TEST_DIR/figures"
    # a freeze required: refused, nothing made
    tm_conf HOT_SAVE_REQUIRE_FREEZE yes
    before=$(host_tree node1 "$GV_DIR")
    saveas_begin 91 0
    hot_save_fails 91 0
    tm_conf HOT_SAVE_REQUIRE_FREEZE no
    one_plain_line "$LAST_STDERR" | grep -q 'HOT_SAVE_REQUIRE_FREEZE=yes refuses a crash-consistent copy'
    [ ! -e "$(norm "$SA_SRC")" ]
    test "$before" = "$(host_tree node1 "$GV_DIR")"
    back_on_disk "$GV_UUID" vda "$TEST_DIR/chain.b" "$GV_NAME" "$SA_SRC"
    "$GUEST" stop "$G" "$GV_NAME" >/dev/null 2>&1
}

# cpds.ssh: the disk of a system datastore of TM ssh (mixed mode), a
# standalone copy in the VM directory (visible to libvirtd here).
case_ssh_mode() {
    guest_vm 92 "$SSH_DS"
    grep -q '^CLONE.ssh qcow2c ' "$TM_FILE"
    chain "$GV_UUID" vda >"$TEST_DIR/chain.c"
    [ "$(wc -l <"$TEST_DIR/chain.c")" = 1 ]
    saveas_begin 92 0
    hot_save 92 0 .ssh
    grep -q '^CPDS.ssh qcow2c node1:' "$TM_FILE"
    expect_stderr_line --match 'overlay .*/100/92/disk.0.snap/hotsave\.'
    standalone "$SA_SRC"
    consistent "$(norm "$SA_SRC")" >/dev/null
    test "$(tmpl "$SA_IMG" HOT_SAVE_CONSISTENCY)" = crash-consistent
    back_on_disk "$GV_UUID" vda "$TEST_DIR/chain.c" "$GV_NAME" "$SA_SRC"
    # no snapshot directory was left behind for this standalone disk
    test "$(entries "$GV_DIR/disk.0.snap")" = "0 disk.0.snap "
    "$GUEST" stop "$G" "$GV_NAME" >/dev/null 2>&1
}

# ---- failures, on the agent VM

after_failure() { # [NEW_SOURCE]
    local uuid name dir src
    read -r uuid name dir src <"$TEST_DIR/vm.a"
    back_on_disk "$uuid" vda "$TEST_DIR/chain.a" "$name" "${1:-}"
    test "$(readlink "$dir/disk.0")" = disk.0.snap/2
    layout_is_ok "$dir"
}

# The retry: a new save of the same disk, which succeeds.
retry_ok() { # [WHAT the stderr must say]
    saveas_begin $VM_A 0
    hot_save $VM_A 0
    [ -z "${1:-}" ] || expect_stderr_line --match "$1"
    standalone "$SA_SRC"
    consistent "$(norm "$SA_SRC")" >/dev/null
    after_failure "$SA_SRC"
}

case_agent_hangs() {
    local uuid name dir src
    read -r uuid name dir src <"$TEST_DIR/vm.a"
    tm_conf TIMEOUT 8
    touch "$CTL/hang.domfsfreeze"
    defer rm -f "$CTL/hang.domfsfreeze"
    # degrades: crash-consistent, thawed anyway, said so
    saveas_begin $VM_A 0
    hot_save $VM_A 0
    expect_stderr_line --match 'cannot freeze the file systems of .*timed out after 8 s'
    # the session stuck in the freeze was stopped: single processes went on
    expect_stderr_line --match 'crash-consistent .*virsh processes'
    standalone "$SA_SRC"
    consistent "$(norm "$SA_SRC")" >/dev/null
    test "$(tmpl "$SA_IMG" HOT_SAVE_CONSISTENCY)" = crash-consistent
    tmpl "$SA_IMG" HOT_SAVE_NOTE | grep -q 'the freeze failed (timed out'
    after_failure "$SA_SRC"
    # refuses with HOT_SAVE_REQUIRE_FREEZE
    tm_conf HOT_SAVE_REQUIRE_FREEZE yes
    saveas_begin $VM_A 0
    hot_save_fails $VM_A 0
    one_plain_line "$LAST_STDERR" | grep -q 'timed out after 8 s.*HOT_SAVE_REQUIRE_FREEZE=yes'
    [ ! -e "$(norm "$SA_SRC")" ]
    after_failure "$SA_SRC"
    rm -f "$CTL/hang.domfsfreeze"
    tm_conf TIMEOUT 120
    retry_ok 'file systems frozen for'
    test "$(tmpl "$SA_IMG" HOT_SAVE_CONSISTENCY)" = filesystem-frozen
    tm_conf HOT_SAVE_REQUIRE_FREEZE no
}

case_snapshot_refused() {
    touch "$CTL/fail.snapshot-create-as"
    defer rm -f "$CTL/fail.snapshot-create-as"
    saveas_begin $VM_A 0
    hot_save_fails $VM_A 0
    rm -f "$CTL/fail.snapshot-create-as"
    one_plain_line "$LAST_STDERR" | grep -q 'snapshot-create-as .* failed: .*injected.failure'
    [ ! -e "$(norm "$SA_SRC")" ]
    after_failure "$SA_SRC"
    retry_ok
}

case_merge_fails() {
    local uuid name dir src
    read -r uuid name dir src <"$TEST_DIR/vm.a"
    touch "$CTL/fail.blockcommit"
    defer rm -f "$CTL/fail.blockcommit"
    saveas_begin $VM_A 0
    hot_save_fails $VM_A 0
    one_plain_line "$LAST_STDERR" |
        grep -q 'was saved as .*but the temporary overlay could not be merged back.*injected failure of blockcommit'
    # the domain still writes the overlay, disk.0 points to it (the writes
    # since the snapshot stay under disk.0): the retry must merge it first
    chain "$uuid" vda | head -n 1 | grep -q '/disk.0.snap/hotsave\.2\.'
    readlink "$dir/disk.0" | grep -q '^disk.0.snap/hotsave\.2\.'
    rm -f "$CTL/fail.blockcommit"
    retry_ok 'removing .*hotsave.*left by an interrupted hot save'
}

case_datastore_full() {
    local pid dst
    pid=$(cat "$HOSTS_DIR/hosts/node1/pid")
    mkdir -p "$DSROOT/5"
    nsenter -t "$pid" -m -- mount -t tmpfs -o size=4m tmpfs "$DSROOT/5"
    defer nsenter -t "$pid" -m -- umount "$DSROOT/5"
    saveas_begin $VM_A 0 5
    dst=$SA_SRC
    hot_save_fails $VM_A 0 "" 5
    one_plain_line "$LAST_STDERR" | grep -qi 'no space left'
    [ -z "$(nsenter -t "$pid" -m -- ls -A "$DSROOT/5")" ]
    after_failure "$dst"
    retry_ok
}

# Killed with kill -9 while copying: the domain still on the overlay, a .part
# left; the next save merges the overlay back first.
kill_mid_copy() {
    local pid bg
    rm -f "$CTL/stuck.reached"
    touch "$CTL/stuck.convert"
    saveas_begin $VM_A 0
    cpds_line $VM_A 0 >"$TEST_DIR/kill.line"
    (tm_transfer $VM_A --op disk_saveas "$TEST_DIR/kill.line" >/dev/null 2>&1) &
    bg=$!
    for _ in $(seq 3000); do
        [ -e "$CTL/stuck.reached" ] && break
        sleep 0.01
    done
    [ -e "$CTL/stuck.reached" ]
    pid=$(pgrep -f "^$REMOTES/tm/qcow2c/cpds" | head -n 1)
    [ -n "$pid" ]
    kill -KILL "$pid"
    wait "$bg" || true
    kill "$(cat "$CTL/stuck.pid")" 2>/dev/null || true
    rm -f "$CTL/stuck.convert"
    saveas_end $VM_A 5
    [ -e "$(norm "$SA_SRC").part" ]
}

case_killed() {
    local uuid name dir src
    read -r uuid name dir src <"$TEST_DIR/vm.a"
    kill_mid_copy
    chain "$uuid" vda | head -n 1 | grep -q '/disk.0.snap/hotsave\.2\.'
    readlink "$dir/disk.0" | grep -q '^disk.0.snap/hotsave\.2\.'
    retry_ok 'merging .*hotsave.* back into'
    expect_stderr_line --match 'points to disk.0.snap/2 again'
    # killed after the merge's pivot, before disk.0 was pointed back
    kill_mid_copy
    vsh blockcommit "$uuid" vda --active --shallow --pivot >/dev/null
    retry_ok 'points to disk.0.snap/hotsave.*, which the domain no longer writes: back to disk.0.snap/2'
    # killed while merging: the job left running (ready, never pivoted)
    kill_mid_copy
    vsh blockcommit "$uuid" vda --active --shallow >/dev/null
    for _ in $(seq 300); do
        vsh dumpxml "$uuid" | grep -q "job='active-commit' ready='yes'" && break
        sleep 0.1
    done
    retry_ok 'pivoting the finished merge of .*hotsave'
}

test_case "agent: frozen for the instant, not the copy; one instant; recorded" case_agent
test_case "the second disk of a VM with two" case_second_disk
test_case "a disk with snapshots: the current state; nothing below the top touched" case_chain
test_case "no agent, a persistent disk: crash-consistent; HOT_SAVE_REQUIRE_FREEZE refuses" case_no_agent
test_case "cpds.ssh: a disk of a TM ssh system datastore" case_ssh_mode
test_case "the agent hangs: degraded (or refused), thawed, retried" case_agent_hangs
test_case "snapshot-create refused: nothing left, retried" case_snapshot_refused
test_case "the merge fails: the next save merges the stale overlay first" case_merge_fails
test_case "the image datastore is full: nothing left, retried" case_datastore_full
test_case "killed mid-copy, after the pivot, mid-merge: the next save converges" case_killed

[ ! -f "$TEST_DIR/figures" ] || sed 's/^/# /' "$TEST_DIR/figures"
