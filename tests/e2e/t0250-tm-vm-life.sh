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

norm() { printf '%s\n' "$1" | tr -s /; }
DSROOT=$(norm "$DS_LOCATION")
CAP=$TM_FIXTURES/transfer-files/vm9
CAP_VMM=$TM_FIXTURES/vmm

# LCM states (include/VirtualMachine.h) and VM states.
LCM_INIT=0 LCM_RUNNING=3 LCM_MIGRATE=4 LCM_SAVE_MIGRATE=7 LCM_HOTPLUG=17
LCM_EPILOG_UNDEPLOY=30 LCM_PROLOG_UNDEPLOY=31 LCM_SAVEAS_POWEROFF=27
LCM_HOTPLUG_PROLOG_POWEROFF=33 LCM_HOTPLUG_EPILOG_POWEROFF=34
LCM_SNAP_CREATE=51 LCM_SNAP_REVERT=52 LCM_SNAP_DELETE=53
LCM_RESIZE_POWEROFF=63 LCM_RESIZE_UNDEPLOYED=64 LCM_SAVEAS_UNDEPLOYED=67
ST_ACTIVE=3 ST_POWEROFF=8 ST_UNDEPLOYED=9

# ---------------------------------------------------------------- checks

# Commands on a host through one ssh connection per host for the whole
# script (ssh's connection sharing: a new connection costs half a second
# on a loaded machine, and the checks below make hundreds). The front-end
# is this process: its commands run here.
MUX=(-o ControlMaster=auto -o "ControlPath=$TEST_DIR/.cm-%n" -o ControlPersist=600)
hx() { # HOST CMD...
    local host=$1 q
    shift
    if [ "$host" = "$FE" ]; then
        "$@"
        return
    fi
    printf -v q '%q ' "$@"
    ssh -F "$SSH_CONFIG" -o BatchMode=yes "${MUX[@]}" "$host" -- "$q"
}
for _h in node1 node2; do
    defer ssh -F "$SSH_CONFIG" -o BatchMode=yes "${MUX[@]}" -O exit "$_h"
done

# host_tree's listing (lib-tm.sh), through hx.
tree_on() { # HOST PATH
    hx "$1" bash -c "$(_tm_tree_script)" _ "$(norm "$2")"
}

# expect_layout with the lines in any order (sorted as tree_on sorts).
layout_is() { # HOST PATH <<EOF
    local want got
    want=$(sed -e 's/^[[:space:]]*//' -e '/^$/d' -e 's/[[:space:]]\{1,\}/ /g' -e 's/ /\t/' |
        LC_ALL=C sort | sed 's/\t/ /')
    got=$(tree_on "$1" "$2") || { echo "layout_is: cannot list $2 on $1"; return 1; }
    if [ "$got" != "$want" ]; then
        echo "layout_is: $2 on $1 differs (- expected, + actual):"
        diff -u <(printf '%s\n' "$want") <(printf '%s\n' "$got") | tail -n +3
        return 1
    fi
}

# Run on a host (or here, the front-end) with a cache file and the
# datastore directories to search: every qcow2 file (by its magic) passes
# `qemu-img check`, and no temporary file of an action is left (NAME.part,
# disk.N.part.PID, SOURCE.snap/K.new, notes .qcow2c-*, the context's
# .isofiles). A file checked before and not changed since (same inode,
# size, mtime and ctime, in the cache) is not checked again: the hundreds
# of checks of this script stay cheap, and every change is checked. Prints
# the number of qcow2 files.
# shellcheck disable=SC2016 # expanded by the inner bash
CHECK_IMAGES='
cache=$1
shift
st=0 n=0
declare -A ok=()
if [ -f "$cache" ]; then
    while IFS= read -r k; do ok[$k]=1; done <"$cache"
fi
while IFS= read -r -d "" f; do
    echo "left behind: $f"
    st=1
done < <(find "$@" \( -name "*.part" -o -name "*.part.*" -o -name "*.new" -o -name ".qcow2c-*" \
    -o -path "*/.isofiles/*" \) -print0 2>/dev/null)
while IFS= read -r -d "" f; do
    [ "$(head -c 4 -- "$f" | od -An -tx1 | tr -d " \n")" = 514649fb ] || continue
    n=$((n + 1))
    k="$(stat -c "%i %s %.9Y %.9Z" -- "$f") $f"
    [ -z "${ok[$k]:-}" ] || continue
    if out=$(qemu-img check -q -U -f qcow2 -- "$f" 2>&1); then
        printf "%s\n" "$k" >>"$cache"
    else
        echo "qemu-img check failed on $f: $out"
        st=1
    fi
done < <(find "$@" -type f -print0 2>/dev/null)
echo "$n"
exit "$st"'

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

# ---------------------------------------------------------------- the VM
# Set by deploy_vm, in the case's subshell:
#   V H D        the VM id, its host, its directory (normalised)
#   IMG_OS IMG_P the non-persistent OS image and the persistent datablock;
#   F_* S_*      their files (normalised) and SOURCEs (as oned writes them)
#   C0 C1        the chains of disk.0 (in disk.0.snap) and disk.1 (in
#                SOURCE.snap): "TOP K:P ..." = disk.N points to file TOP,
#                file K is an overlay on file P (0 is the image's own)
#   EXTRA        more lines of the VM directory (attached disks)
#   DATA[N]      "MB:PATTERN ..." disk N reads PATTERN over the MiB at MB;
#                the other MiBs of 3..7 read zeroes
#   SNAPS[N]     "ACTIVE ID..." disk N's snapshots as oned lists them
declare -A DATA SNAPS FMT
FMT=([0]=qcow2 [1]=qcow2 [2]=qcow2 [3]=raw)

# The lines of a transfer file a real oned wrote (vm9 on datastores 106/107,
# images 7884... and e521...), for this VM: datastore 106 -> 0, 107 -> 1.
from_capture() { # FILE [SED_EXPR...]
    local f=$1 e
    local -a extra=()
    shift
    for e in "$@"; do extra+=(-e "$e"); done
    sed -e "s#/var/lib/one//datastores/107/7884294dec91169f7f22cacffae86121#$S_OS#g" \
        -e "s#/var/lib/one//datastores/107/e5214f0e1cf89c730f911a643be2f4dc#$S_P#g" \
        -e "s#/var/lib/one//datastores/106/9#$DS_LOCATION/$SYS_DS/$V#g" \
        -e "s# 9 107\$# $V $IMG_DS#" -e "s# 9 106\$# $V $SYS_DS#" "${extra[@]}" "$f"
}

# The transfer file that ran is the captured one (after the substitutions).
same_as_capture() { # CAPTURED_NAME [SED_EXPR...]
    local want
    want=$(from_capture "$CAP/$1" "${@:2}")
    if [ "$want" != "$(cat "$TM_FILE")" ]; then
        echo "same_as_capture: $TM_FILE is not oned's $1 (- oned, + this test):"
        diff -u <(printf '%s\n' "$want") "$TM_FILE" | tail -n +3
        return 1
    fi
}

# The TM_COMMAND of a captured VMM message (vm 12 on datastore 108).
vmm_capture() { # MESSAGE_FILE
    grep -o '<TM_COMMAND><!\[CDATA\[[^]]*' "$CAP_VMM/$1" | sed 's/^<TM_COMMAND><!\[CDATA\[//' |
        sed -e "s#/var/lib/one/vms/12/#$VMS/$V/#g" \
            -e "s#/var/lib/one//datastores/108/12#$DS_LOCATION/$SYS_DS/$V#g" \
            -e "s# 12 108 *\$# $V $SYS_DS#"
}

# The transfer succeeded without an error line.
no_errors() {
    if grep -E '^LOG E ' "$TM_REPLY"; then
        echo "no_errors: an action logged an error"
        return 1
    fi
}

deploy_vm() { # VMID [HOST]
    V=$1
    H=${2:-node1}
    IMG_OS=$(tm_image "os-$V" --format qcow2 --size 16 --type OS)
    IMG_P=$(tm_image "data-$V" --format qcow2 --size 16 --persistent --type DATABLOCK)
    F_OS=$(tm_image_file "$IMG_OS")
    F_P=$(tm_image_file "$IMG_P")
    S_OS=$(tm_image_source "$IMG_OS")
    S_P=$(tm_image_source "$IMG_P")
    cp --sparse=always "$F_OS" "$TEST_DIR/pristine.$IMG_OS"
    tm_vm "$V" --host "$H" --system-ds "$SYS_DS" --disk image="$IMG_OS" --disk image="$IMG_P" \
        --volatile 16:fs:qcow2 --volatile 8:swap --context
    D=$(norm "$(tm_sysdir "$V")")
    C0=0
    C1=0
    EXTRA=""
    SNAPS=()
    tm_prolog "$V"
    no_errors
    if [ "$H" = node1 ]; then
        same_as_capture transfer.0.prolog
    fi
    tm_context "$V"
    if [ "$H" = node1 ]; then
        [ "$(tm_context "$V" --print)" = "$(vmm_capture 001-DEPLOY-vm12.xml)" ]
    fi
    DATA=([0]="0:$(tm_pattern "$IMG_OS")" [1]="0:$(tm_pattern "$IMG_P")" [2]="" [3]="")
    # the guest writes its recognisable data
    data_write 0 2 0xd0 1 2 0xd1 2 2 0xd2 3 2 0xd3
    expect_vm
    host_view
    data_check
}

# The guest writes PATTERN over the MiB at MB of disk N (on the VM's
# host), for each triple, in one command on the host.
data_write() { # N MB PATTERN [N MB PATTERN]...
    local script="set -e" p spec
    while [ $# -ge 3 ]; do
        script+=$(printf '\nqemu-io -f %q -c %q -- %q >/dev/null' "${FMT[$1]}" \
            "write -q -P $3 ${2}M 1M" "$D/disk.$1")
        spec=""
        for p in ${DATA[$1]}; do
            [ "${p%%:*}" = "$2" ] || spec+="$p "
        done
        DATA[$1]="$spec$2:$3"
        shift 3
    done
    hx "$FE" bash -c "$script"
}

# Each FILE (on HOST, format FMT) reads what its SPEC says: "MB:PATTERN
# ...", and zeroes at the other MiBs of 3..7; one command on the host.
reads() { # HOST FILE FMT SPEC [FILE FMT SPEC]...
    local host=$1 script="" mb p want
    local -a cmds
    shift
    while [ $# -ge 3 ]; do
        cmds=()
        for p in $3; do
            cmds+=(-c "read -q -P ${p#*:} ${p%%:*}M 1M")
        done
        for mb in 3 4 5 6 7; do
            want=0
            for p in $3; do
                [ "${p%%:*}" != "$mb" ] || want=
            done
            [ -z "$want" ] || cmds+=(-c "read -q -P 0 ${mb}M 1M")
        done
        script+=$(printf 'echo %q; qemu-io -r -U -f %q' "== $1 { $3 }" "$2")
        script+=$(printf ' %q' "${cmds[@]}" -- "$1")
        script+=$' 2>&1 || echo "qemu-io failed"\n'
        shift 3
    done
    hx "$host" bash -c "$script" >"$TEST_DIR/reads.out" 2>&1 || true
    if grep -q -e 'Pattern verification failed' -e 'qemu-io failed' "$TEST_DIR/reads.out" ||
        ! grep -q '^== ' "$TEST_DIR/reads.out"; then
        echo "reads on $host: wrong data:"
        cat "$TEST_DIR/reads.out"
        return 1
    fi
}

# Every disk of the VM holds the guest's data (through disk.N on its host).
data_check() {
    local n
    local -a args=()
    for n in "${!DATA[@]}"; do
        args+=("$D/disk.$n" "${FMT[$n]}" "${DATA[$n]}")
    done
    reads "$FE" "${args[@]}"
}

# The lines of disk N's directory chain for CHAIN "TOP K:P..."; BASE is
# what file 0 is (its listing after "disk.N.snap/0 ").
chain_lines() { # N BASE CHAIN
    local n=$1 top kp kps
    read -r top kps <<<"$3"
    echo "disk.$n link disk.$n.snap/$top"
    echo "disk.$n.snap dir"
    echo "disk.$n.snap/0 $2"
    for kp in $kps; do
        echo "disk.$n.snap/${kp%%:*} file qcow2 disk.$n.snap/${kp#*:}"
    done
    echo "disk.$n.snap/disk.$n.snap link ."
}

# The VM directory as OpenNebula's qcow2 driver leaves it.
vm_lines() {
    local top
    echo ". dir"
    chain_lines 0 "file qcow2 $F_OS" "$C0"
    read -r top _ <<<"$C1"
    echo "disk.1 link $F_P.snap/$top"
    echo "disk.2 file qcow2"
    echo "disk.3 file raw"
    echo "disk.4 file raw"
    [ -z "$EXTRA" ] || printf '%s\n' "$EXTRA"
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

# The entries of datastore 1 that belong to image file FILE (its file and
# its snapshot directory), as a listing of datastore 1 would show them.
image_tree() { # FILE
    local name=${1##*/}
    {
        tree_on "$FE" "$1" | sed "s#^\.#$name#"
        tree_on "$FE" "$1.snap" | sed -e "s#^\. #$name.snap #" -e "s#^#$name.snap/#" \
            -e "s#^$name.snap/$name.snap dir\$#$name.snap dir#"
    } | LC_ALL=C sort
}

expect_image() { # FILE <<EOF (lines in any order)
    local want got
    want=$(sed -e 's/^[[:space:]]*//' -e '/^$/d' | LC_ALL=C sort)
    got=$(image_tree "$1")
    if [ "$want" != "$got" ]; then
        echo "expect_image: $1 differs (- expected, + actual):"
        diff -u <(printf '%s\n' "$want") <(printf '%s\n' "$got") | tail -n +3
        return 1
    fi
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

# The VM's host sees the VM directory as the front-end does (through ssh:
# the hosts' mount namespaces).
host_view() {
    local here there
    here=$(tree_on "$FE" "$D")
    there=$(tree_on "$H" "$D")
    if [ "$here" != "$there" ]; then
        echo "host_view: $H sees $D otherwise (- front-end, + $H):"
        diff -u <(printf '%s\n' "$here") <(printf '%s\n' "$there") | tail -n +3
        return 1
    fi
}

# oned's SNAPSHOTS of the VM from SNAPS (what snap_delete reads).
put_snaps() {
    local doc s="" n active ids id
    doc=$(tm_get vm "$V" | tr -d '\n' | perl -pe 's#<SNAPSHOTS>.*?</SNAPSHOTS>##g')
    for n in "${!SNAPS[@]}"; do
        read -r active ids <<<"${SNAPS[$n]}"
        [ -n "$ids" ] || continue
        s+="<SNAPSHOTS><ALLOW_ORPHANS><![CDATA[NO]]></ALLOW_ORPHANS><CURRENT_BASE><![CDATA[-1]]></CURRENT_BASE><DISK_ID><![CDATA[$n]]></DISK_ID><NEXT_SNAPSHOT><![CDATA[99]]></NEXT_SNAPSHOT>"
        for id in $ids; do
            s+="<SNAPSHOT>"
            [ "$id" != "$active" ] || s+="<ACTIVE><![CDATA[YES]]></ACTIVE>"
            s+="<ID><![CDATA[$id]]></ID><NAME><![CDATA[s$id]]></NAME></SNAPSHOT>"
        done
        s+="</SNAPSHOTS>"
    done
    printf '%s\n' "${doc/<BACKUPS>/$s<BACKUPS>}" >"$TEST_DIR/vm.xml"
    "$HARNESS/standin-ctl" "$STANDIN_DIR" put vm "$TEST_DIR/vm.xml" >/dev/null
}

# One disk snapshot action of a powered-off VM, as oned writes it
# (.disk_snapshot, DISK_SNAPSHOT_*_POWEROFF meanwhile). SNAPS[N] must say
# what oned has while it runs.
snap_step() { # ACTION N SNAP_ID
    local lcm ds=$IMG_DS
    case $1 in
        SNAP_CREATE) lcm=$LCM_SNAP_CREATE ;;
        SNAP_REVERT) lcm=$LCM_SNAP_REVERT ;;
        SNAP_DELETE) lcm=$LCM_SNAP_DELETE ;;
    esac
    put_snaps
    tm_vm_state "$V" "$lcm" "$ST_ACTIVE"
    tm_transfer "$V" --op disk_snapshot <<<"$1 qcow2c $H:$DS_LOCATION/$SYS_DS/$V/disk.$2 $3 $V $ds"
    no_errors
    tm_vm_state "$V" "$LCM_INIT" "$ST_POWEROFF"
}

poweroff() {
    tm_vm_state "$V" "$LCM_INIT" "$ST_POWEROFF"
}

# Boot from poweroff: the VMM's deploy regenerates the context CD.
boot() {
    tm_vm_state "$V" "$LCM_RUNNING" "$ST_ACTIVE"
    tm_context "$V"
}

terminate() {
    tm_epilog "$V"
    no_errors
    [ -z "$(tree_on "$FE" "$D")" ] || { echo "terminate: $D is still there"; return 1; }
}

# The VM document as the VMM driver sends it (its last history record
# only, VirtualMachine::to_xml), base64 on one line.
vmm_stdin() { # FILE
    local doc last
    doc=$(tm_get vm "$V" | tr -d '\n')
    last=${doc##*<HISTORY>}
    last=${last%%</HISTORY_RECORDS>*}
    doc="${doc%%<HISTORY_RECORDS>*}<HISTORY_RECORDS><HISTORY>$last</HISTORY_RECORDS>${doc##*</HISTORY_RECORDS>}"
    printf '%s' "$doc" | base64 -w0 >"$1"
}

# A qcow2 flattened copy of FILE (read on HOST) in OUT (the shared tree).
flatten() { # HOST FILE OUT
    # shellcheck disable=SC2016 # expanded on the host
    hx "$1" bash -c 'qemu-img convert -U -O qcow2 "$(readlink -f "$1")" "$2"' _ "$2" "$3"
}

same_content() { # HOST A B
    if ! hx "$1" qemu-img compare -q -U -- "$2" "$3"; then
        echo "same_content: $2 and $3 differ (on $1)"
        return 1
    fi
}

vsize_of() { # HOST FILE
    hx "$1" qemu-img info -U --output=json -- "$2" |
        sed -n 's/^    "virtual-size": \([0-9]*\),*$/\1/p' | head -n 1
}

# ---------------------------------------------------------------- attach

_cdata() { printf '<%s><![CDATA[%s]]></%s>' "$1" "$2" "$1"; }

# oned's attach (VirtualMachine::set_up_attach_disk): image IMG becomes
# disk N (the highest disk id, the context's included, plus one) with the
# attributes Image::disk_attribute gives it and ATTACH=YES.
attach_disk() { # IMG N TARGET
    local img=$1 n=$2 x=$TEST_DIR/img.xml fmt size pers kv disk doc
    local -a a
    tm_get image "$img" >"$x"
    fmt=$(xmllint --xpath 'string(/IMAGE/FORMAT)' "$x")
    size=$(xmllint --xpath 'string(/IMAGE/SIZE)' "$x")
    pers=$(xmllint --xpath 'string(/IMAGE/PERSISTENT)' "$x")
    a=(ALLOW_ORPHANS=FORMAT ATTACH=YES CLONE_TARGET=SYSTEM CLUSTER_ID=0
        "DATASTORE=$(xmllint --xpath 'string(/IMAGE/DATASTORE)' "$x")" "DATASTORE_ID=$IMG_DS"
        DEV_PREFIX=sd "DISK_ID=$n" DISK_SNAPSHOT_TOTAL_SIZE=0 DISK_TYPE=FILE "DRIVER=$fmt"
        "FORMAT=$fmt" "IMAGE=$(xmllint --xpath 'string(/IMAGE/NAME)' "$x")" "IMAGE_ID=$img"
        LN_TARGET=NONE "ORIGINAL_SIZE=$size" PERSISTENT_SNAPSHOTS=YES "SIZE=$size"
        "SOURCE=$(xmllint --xpath 'string(/IMAGE/SOURCE)' "$x")" "TARGET=$3" TM_MAD=qcow2c TYPE=FILE)
    if [ "$pers" = 1 ]; then
        a+=(CLONE=NO SAVE=YES PERSISTENT=YES READONLY=NO IMAGE_STATE=8)
        tm_set image "$img" /IMAGE/STATE 8
    else
        a+=(CLONE=YES SAVE=NO READONLY=NO IMAGE_STATE=2)
        tm_set image "$img" /IMAGE/STATE 2
    fi
    disk="<DISK>"
    while IFS= read -r kv; do
        disk+=$(_cdata "${kv%%=*}" "${kv#*=}")
    done < <(printf '%s\n' "${a[@]}" | LC_ALL=C sort -t= -k1,1)
    disk+="</DISK>"
    doc=$(tm_get vm "$V" | tr -d '\n')
    printf '%s\n' "${doc%</DISK>*}</DISK>$disk${doc##*</DISK>}" >"$TEST_DIR/vm.xml"
    "$HARNESS/standin-ctl" "$STANDIN_DIR" put vm "$TEST_DIR/vm.xml" >/dev/null
}

# After the attach: oned clears ATTACH.
attach_done() {
    tm_get vm "$V" | tr -d '\n' | sed 's#<ATTACH><!\[CDATA\[YES\]\]></ATTACH>##' >"$TEST_DIR/vm.xml"
    "$HARNESS/standin-ctl" "$STANDIN_DIR" put vm "$TEST_DIR/vm.xml" >/dev/null
}

# Before a detach: the disk gets ATTACH=YES again; after it, oned removes it.
detach_start() { # N
    tm_get vm "$V" | tr -d '\n' |
        perl -pe 's#(<DISK>(?:(?!</DISK>).)*<DISK_ID><!\[CDATA\['"$1"'\]\]></DISK_ID>)#$1<ATTACH><![CDATA[YES]]></ATTACH>#' \
            >"$TEST_DIR/vm.xml"
    "$HARNESS/standin-ctl" "$STANDIN_DIR" put vm "$TEST_DIR/vm.xml" >/dev/null
}

detach_done() { # N
    tm_get vm "$V" | tr -d '\n' |
        perl -pe 's#<DISK>(?:(?!</DISK>).)*<DISK_ID><!\[CDATA\['"$1"'\]\]></DISK_ID>(?:(?!</DISK>).)*</DISK>##' \
            >"$TEST_DIR/vm.xml"
    "$HARNESS/standin-ctl" "$STANDIN_DIR" put vm "$TEST_DIR/vm.xml" >/dev/null
}

# The attach's TM command (TransferManager::prolog_transfer_command for the
# attached disk) and the detach's (epilog_transfer_command): the VM's
# prolog / epilog line of that disk.
attach_line() { # N
    tm_prolog "$V" --print | grep " [^ ]*:[^ ]*/disk\.$1 "
}

detach_line() { # N
    tm_epilog "$V" --print | grep " [^ ]*:[^ ]*/disk\.$1 "
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
    vmm_stdin "$in"
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
    vmm_stdin "$in"
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
