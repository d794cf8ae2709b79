# shellcheck shell=bash
# Each case runs in a subshell on purpose, so variables it sets stay there.
# shellcheck disable=SC2030,SC2031
# Variables below are for the scripts that source this file.
# shellcheck disable=SC2034
# lib-life.sh - what the VM-life scenario scripts share: t0250 (a shared
# system datastore 0, TM qcow2c) and t0251 (mixed mode: system datastore
# 100 of TM ssh, a directory of its own on each host). The checks (hx,
# layout_is, CHECK_IMAGES...), the VM the cases drive (deploy_vm, the
# guest's data), oned's captured transfer files, snapshots, save-as and
# attach. Sourced after lib.sh, lib-tm.sh and tm_setup, with LIFE_MODE set:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/lib-tm.sh"
#   tm_setup                          # ssh: tm_setup --ssh-system
#   LIFE_MODE=shared                  # or ssh
#   . "$(dirname "$0")/lib-life.sh"
#
# The script defines what is its own: expect_vm (the checks after every
# step; deploy_vm calls it), check_images, pimage_lines (the persistent
# image in datastore 1) and terminate, then its cases.
#
# What LIFE_MODE decides:
#   LIFE_DS     the VM's system datastore: $SYS_DS (shared), $SSH_DS (ssh)
#   LIFE_SFX    the suffix of the image disks' actions: "", ".ssh" (ssh)
#   disk_host   where the guest's disks are written and read: the
#               front-end (its view is every host's); ssh: the VM's host H
#   from_capture, vmm_capture   ssh: oned's lines as in mixed mode
#   deploy_vm   shared: host_view; ssh: the pristine persistent image kept,
#               the ssh TM's monitor file on the host
#   vm_lines    shared: disk.1 links the image's chain (in SOURCE.snap,
#               absolute names); ssh: disk.1 has a chain of its own
#   attach_disk ssh: LN_TARGET=SYSTEM and TM_MAD_SYSTEM=ssh
#
# Also set here: DSROOT (DS_LOCATION normalised), DS100 (its datastore
# 100), CAP CAP_VMM (oned's captures), the LCM_* and ST_* states, MUX and
# CHECK_IMAGES; deploy_vm sets the VM's variables (below, "the VM").
case ${LIFE_MODE:-} in
    shared)
        LIFE_DS=$SYS_DS
        LIFE_SFX=
        ;;
    ssh)
        LIFE_DS=$SSH_DS
        LIFE_SFX=.ssh
        ;;
    *)
        echo "lib-life.sh: LIFE_MODE must be shared or ssh, not '${LIFE_MODE:-}'" >&2
        exit 1
        ;;
esac

norm() { printf '%s\n' "$1" | tr -s /; }
DSROOT=$(norm "$DS_LOCATION")
DS100=$DSROOT/$SSH_DS
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

# ---------------------------------------------------------------- the VM
# Set by deploy_vm, in the case's subshell:
#   V H D        the VM id, its host, its directory (normalised); ssh: H is
#                $FE when stopped or undeployed, D is in datastore 100 of H
#   IMG_OS IMG_P the non-persistent OS image and the persistent datablock;
#   F_* S_*      their files (normalised) and SOURCEs (as oned writes them)
#   C0 C1        the chains of disk.0 (in disk.0.snap) and disk.1 (shared:
#                in SOURCE.snap; ssh: in disk.1.snap): "TOP K:P ..." =
#                disk.N points to file TOP, file K is an overlay on file P
#                (shared: 0 is the image's own; ssh: file 0 is standalone)
#   PIMG         ssh: the persistent image's chain in datastore 1 ("" while
#                it is a plain file; after MVDS.ssh, the chain it got back)
#   EXTRA        more lines of the VM directory (attached disks)
#   DATA[N]      "MB:PATTERN ..." disk N reads PATTERN over the MiB at MB;
#                the other MiBs of 3..7 read zeroes
#   SNAPS[N]     "ACTIVE ID..." disk N's snapshots as oned lists them
declare -A DATA SNAPS FMT
FMT=([0]=qcow2 [1]=qcow2 [2]=qcow2 [3]=raw)

# The lines of a transfer file a real oned wrote (vm9 on datastores 106/107,
# images 7884... and e521..., shared mode), for this VM: datastore 106 ->
# LIFE_DS, 107 -> 1. ssh: then as oned writes them in mixed mode
# (TransferManager.cc): per-disk lines of image disks get ".ssh", lines of
# the system datastore name its TM, ssh; with --sticky (stop, migrate,
# resume: trap 16) the volatile disks' lines keep the suffix too.
# shellcheck disable=SC2153 # IMG_DS is lib-tm.sh's
from_capture() { # FILE [--sticky] [SED_EXPR...]
    local f=$1 e sticky="s#^##"
    local -a extra=()
    shift
    if [ "${1:-}" = --sticky ]; then
        sticky="s#^\([A-Z]*\) ssh \([^ ]*/disk\.[0-9]* \)#\1.ssh ssh \2#"
        shift
    fi
    for e in "$@"; do extra+=(-e "$e"); done
    sed -e "s#/var/lib/one//datastores/107/7884294dec91169f7f22cacffae86121#$S_OS#g" \
        -e "s#/var/lib/one//datastores/107/e5214f0e1cf89c730f911a643be2f4dc#$S_P#g" \
        -e "s#/var/lib/one//datastores/106/9#$DS_LOCATION/$LIFE_DS/$V#g" \
        -e "s# 9 107\$# $V $IMG_DS#" -e "s# 9 106\$# $V $LIFE_DS#" "${extra[@]}" "$f" |
        if [ "$LIFE_MODE" = ssh ]; then
            sed -e "s#^\([A-Z_]*\) qcow2c \(.* $V $IMG_DS\)\$#\1.ssh qcow2c \2#" \
                -e "s#^\([A-Z_]*\) qcow2c \(.* $V $LIFE_DS\)\$#\1 ssh \2#" -e "$sticky"
        else
            cat
        fi
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

# The TM_COMMAND of a captured VMM message (vm 12 on datastore 108), for
# this VM (ssh: on the ssh datastore, the system datastore's TM writes it).
vmm_capture() { # MESSAGE_FILE
    local -a mixed=()
    if [ "$LIFE_MODE" = ssh ]; then
        mixed=(-e "s#^\([A-Z]*\) qcow2c #\1 ssh #")
    fi
    grep -o '<TM_COMMAND><!\[CDATA\[[^]]*' "$CAP_VMM/$1" | sed 's/^<TM_COMMAND><!\[CDATA\[//' |
        sed -e "s#/var/lib/one/vms/12/#$VMS/$V/#g" \
            -e "s#/var/lib/one//datastores/108/12#$DS_LOCATION/$LIFE_DS/$V#g" \
            -e "s# 12 108 *\$# $V $LIFE_DS#" "${mixed[@]}"
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
    if [ "$LIFE_MODE" = ssh ]; then
        cp --sparse=always "$F_P" "$TEST_DIR/pristine.$IMG_P"
    fi
    tm_vm "$V" --host "$H" --system-ds "$LIFE_DS" --disk image="$IMG_OS" --disk image="$IMG_P" \
        --volatile 16:fs:qcow2 --volatile 8:swap --context
    D=$(norm "$(tm_sysdir "$V")")
    C0=0
    C1=0
    PIMG=""
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
    if [ "$LIFE_MODE" = ssh ]; then
        [ "$(hx "$H" cat "$DS100/.monitor")" = ssh ]
    fi
    DATA=([0]="0:$(tm_pattern "$IMG_OS")" [1]="0:$(tm_pattern "$IMG_P")" [2]="" [3]="")
    # the guest writes its recognisable data
    data_write 0 2 0xd0 1 2 0xd1 2 2 0xd2 3 2 0xd3
    expect_vm
    if [ "$LIFE_MODE" = shared ]; then
        host_view
    fi
    data_check
}

# Where the guest's disks are written and read: the front-end, whose view
# of the shared datastores is every host's; ssh: the VM's host.
disk_host() {
    if [ "$LIFE_MODE" = ssh ]; then
        echo "$H"
    else
        echo "$FE"
    fi
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
    hx "$(disk_host)" bash -c "$script"
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
    reads "$(disk_host)" "${args[@]}"
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

# The VM directory as OpenNebula's qcow2 driver leaves it (ssh: its .ssh
# actions).
vm_lines() {
    local top
    echo ". dir"
    if [ "$LIFE_MODE" = ssh ]; then
        chain_lines 0 "file qcow2" "$C0"
        chain_lines 1 "file qcow2" "$C1"
    else
        chain_lines 0 "file qcow2 $F_OS" "$C0"
        read -r top _ <<<"$C1"
        echo "disk.1 link $F_P.snap/$top"
    fi
    echo "disk.2 file qcow2"
    echo "disk.3 file raw"
    echo "disk.4 file raw"
    [ -z "$EXTRA" ] || printf '%s\n' "$EXTRA"
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
    tm_transfer "$V" --op disk_snapshot <<<"$1$LIFE_SFX qcow2c $H:$DS_LOCATION/$LIFE_DS/$V/disk.$2 $3 $V $ds"
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
# attributes Image::disk_attribute gives it (ssh: and the mixed mode's,
# check_tm_mad: TM_MAD_SYSTEM, the *_SSH targets) and ATTACH=YES.
attach_disk() { # IMG N TARGET
    local img=$1 n=$2 x=$TEST_DIR/img.xml fmt size pers kv disk doc ln=NONE
    local -a a mixed=()
    if [ "$LIFE_MODE" = ssh ]; then
        ln=SYSTEM
        mixed=(TM_MAD_SYSTEM=ssh)
    fi
    tm_get image "$img" >"$x"
    fmt=$(xmllint --xpath 'string(/IMAGE/FORMAT)' "$x")
    size=$(xmllint --xpath 'string(/IMAGE/SIZE)' "$x")
    pers=$(xmllint --xpath 'string(/IMAGE/PERSISTENT)' "$x")
    a=(ALLOW_ORPHANS=FORMAT ATTACH=YES CLONE_TARGET=SYSTEM CLUSTER_ID=0
        "DATASTORE=$(xmllint --xpath 'string(/IMAGE/DATASTORE)' "$x")" "DATASTORE_ID=$IMG_DS"
        DEV_PREFIX=sd "DISK_ID=$n" DISK_SNAPSHOT_TOTAL_SIZE=0 DISK_TYPE=FILE "DRIVER=$fmt"
        "FORMAT=$fmt" "IMAGE=$(xmllint --xpath 'string(/IMAGE/NAME)' "$x")" "IMAGE_ID=$img"
        "LN_TARGET=$ln" "ORIGINAL_SIZE=$size" PERSISTENT_SNAPSHOTS=YES "SIZE=$size"
        "SOURCE=$(xmllint --xpath 'string(/IMAGE/SOURCE)' "$x")" "TARGET=$3" TM_MAD=qcow2c
        "${mixed[@]}" TYPE=FILE)
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
