#!/bin/bash
# t0230-tm-snapshots.sh - TM snap_create, snap_revert, snap_delete and their
# .ssh variants on powered-off VMs (protocol §2.2-2.3): create, create,
# revert, create, create, then delete a leaf, a snapshot in the middle of
# the chain and the active one, in shared mode (non-persistent disk: chain in
# disk.N.snap with relative names; persistent disk: chain in SOURCE.snap
# with absolute names) and in mixed mode (system datastore 100 of TM ssh,
# private to each host). Each step runs twice: on a VM with qcow2c, and on
# a twin VM with OpenNebula's stock commands (below, as the stock scripts
# run them on the host); the two layouts must be the same (names, links,
# backing names; the deliberate differences are spelled out in
# same_as_stock), as must the content of every file, checked against the
# qemu-io patterns written between the steps, and `qemu-img check` must
# pass on every file. Then: re-runs after failures injected at each step
# (the action killed before and after its qemu-img command, stale and
# half-made overlays, a snapshot already gone), ids skipped by oned, raw
# disks (and the persistent raw revert that stock gets wrong), layouts made
# by the stock commands handled by qcow2c and the other way round, bad
# arguments and a host out of reach.
# The live variants (snap_create_live, snap_delete on a running VM) need a
# libvirt guest: they are tested elsewhere (tests/lib/guest.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-tm.sh"

need_tool qemu-io jq pgrep

tm_setup --ssh-system

# ---------------------------------------------------------------- helpers

norm() { printf '%s\n' "$1" | tr -s /; }
HOLD=$TEST_DIR/hold
QI_HOLD=$TEST_DIR/bin/qemu-img-hold
mkdir -p "$HOLD" "$TEST_DIR/bin"

# qemu-img for the hosts (QEMU_IMG in qcow2c.conf), held on request: with
# $HOLD/before.SUB the subcommand SUB waits before it runs, with
# $HOLD/after.SUB after it ran; $HOLD/cancel kills a waiting one and the
# shell that ran it, as a crash on the host would (nothing cleans up).
cat >"$QI_HOLD" <<EOF
#!/bin/bash
h=$HOLD
die() {
    kill -KILL "\$PPID"
    exit 1
}
hold() {
    [ -e "\$h/\$1.\$2" ] || return 0
    touch "\$h/waiting"
    while [ -e "\$h/\$1.\$2" ]; do
        [ ! -e "\$h/cancel" ] || die
        sleep 0.05
    done
    [ ! -e "\$h/cancel" ] || die
}
hold before "\$1"
qemu-img "\$@"
rc=\$?
hold after "\$1"
exit \$rc
EOF
chmod 755 "$QI_HOLD"
tm_conf QEMU_IMG "$QI_HOLD"

# The VM's snapshots of disk 0 as oned keeps them (what the actions read:
# ID and ACTIVE), replacing the previous list.
oned_snaps() { # VMID ACTIVE_ID [ID...]
    local vmid=$1 active=$2 doc s="" id
    shift 2
    doc=$(tm_get vm "$vmid" | tr -d '\n')
    doc=$(printf '%s' "$doc" | sed 's:<SNAPSHOTS>.*</SNAPSHOTS>::')
    if [ $# -gt 0 ]; then
        s="<SNAPSHOTS><ALLOW_ORPHANS><![CDATA[NO]]></ALLOW_ORPHANS><CURRENT_BASE><![CDATA[-1]]></CURRENT_BASE><DISK_ID><![CDATA[0]]></DISK_ID><NEXT_SNAPSHOT><![CDATA[99]]></NEXT_SNAPSHOT>"
        for id in "$@"; do
            if [ "$id" = "$active" ]; then
                s+="<SNAPSHOT><ACTIVE><![CDATA[YES]]></ACTIVE><ID><![CDATA[$id]]></ID><NAME><![CDATA[s$id]]></NAME></SNAPSHOT>"
            else
                s+="<SNAPSHOT><ID><![CDATA[$id]]></ID><NAME><![CDATA[s$id]]></NAME></SNAPSHOT>"
            fi
        done
        s+="</SNAPSHOTS>"
    fi
    printf '%s\n' "${doc/<BACKUPS>/$s<BACKUPS>}" >"$TEST_DIR/snaps.xml"
    "$HARNESS/standin-ctl" "$STANDIN_DIR" put vm "$TEST_DIR/snaps.xml" >/dev/null
}

# One snapshot action of disk 0 as oned writes it, with the LCM state oned
# is in meanwhile (POWEROFF around it).
snap_line() { # VMID ACTION SNAP_ID  (ACTION: SNAP_CREATE, SNAP_REVERT, SNAP_DELETE)
    local vmid=$1 sfx="" d
    d=$(tm_sysdir "$vmid")
    [ "$(tm_get vm "$vmid" '/VM/TEMPLATE/DISK[DISK_ID=0]/TM_MAD_SYSTEM' 2>/dev/null)" != ssh ] ||
        sfx=.ssh
    printf '%s%s qcow2c node1:%s/disk.0 %s %s %s\n' "$2" "$sfx" "$d" "$3" "$vmid" "$IMG_DS"
}

lcm_of() {
    case $1 in
        SNAP_CREATE) echo 51 ;;
        SNAP_REVERT) echo 52 ;;
        SNAP_DELETE) echo 53 ;;
    esac
}

snap() { # VMID ACTION SNAP_ID
    tm_vm_state "$1" "$(lcm_of "$2")" 3
    tm_transfer "$1" --op disk_snapshot < <(snap_line "$@") || return 1
    tm_vm_state "$1" 0 8
}

snap_fails() { # VMID ACTION SNAP_ID
    tm_vm_state "$1" "$(lcm_of "$2")" 3
    tm_transfer_fails "$1" --op disk_snapshot < <(snap_line "$@") || return 1
    tm_vm_state "$1" 0 8
}

# Every qcow2 file of DIR on HOST passes qemu-img check.
check_all() { # HOST DIR
    # shellcheck disable=SC2016 # expanded on the host
    on_host "$1" bash -c 'for f in "$1"/*; do
        [ -f "$f" ] || continue
        case $f in *.current) continue ;; esac
        qemu-img check -q -U -- "$f" || { echo "qemu-img check: $f"; exit 1; }
    done' _ "$2"
}

# A write of PATTERN over the 64 KiB at MB (the guest's writes).
write_at() { # HOST FILE MB PATTERN
    on_host "$1" qemu-io -f qcow2 -c "write -q -P $4 ${3}M 64k" -- "$2" >/dev/null
}

# FILE shows exactly the regions given ("MB:PATTERN"...), zeroes at the
# other ones of 1..6 MB, and the image's pattern at 0.
regions() { # HOST FILE IMAGE_PATTERN MB:PATTERN...
    local host=$1 f=$2 cmds=() mb p want
    cmds=(-c "read -q -P $3 0 64k")
    for mb in 1 2 3 4 5 6; do
        want=0
        for p in "${@:4}"; do
            [ "${p%%:*}" != "$mb" ] || want=${p#*:}
        done
        cmds+=(-c "read -q -P $want ${mb}M 64k")
    done
    if ! on_host "$host" qemu-io -r -U -f qcow2 "${cmds[@]}" -- "$f" >"$TEST_DIR/regions.out" 2>&1 ||
        grep -q 'Pattern verification failed' "$TEST_DIR/regions.out"; then
        echo "regions: $f on $host is not { ${*:4} }:"
        cat "$TEST_DIR/regions.out"
        return 1
    fi
}

# The listing of DIR on HOST with the given replacements (OLD=NEW...).
tree_as() { # HOST DIR [OLD=NEW...]
    local t kv
    t=$(host_tree "$1" "$2")
    for kv in "${@:3}"; do
        t=${t//"${kv%%=*}"/"${kv#*=}"}
    done
    printf '%s\n' "$t"
}

# The running action of a transfer (the child of oned-tm).
action_pid() { # PID_OF_BACKGROUND_TM_TRANSFER
    local p c
    for p in $(pgrep -P "$1"); do
        for c in $(pgrep -P "$p") $p; do
            if ps -o args= -p "$c" | grep -q '/tm/qcow2c/'; then
                echo "$c"
                return 0
            fi
        done
        action_pid "$p" && return 0
    done
    return 1
}

# Runs the snapshot action with qemu-img's SUB held WHEN (before|after),
# kills the action with SIGKILL once the host holds there (a crash of the
# front-end) and lets the held command fail, as with its session gone.
crash_at() { # WHEN SUB VMID ACTION SNAP_ID
    local when=$1 sub=$2 bg pid i
    shift 2
    rm -f "$HOLD"/*
    touch "$HOLD/$when.$sub"
    tm_vm_state "$1" "$(lcm_of "$2")" 3
    snap_line "$@" >"$TEST_DIR/crash.line"
    (trap - ERR; set +e; tm_transfer "$1" --op disk_snapshot "$TEST_DIR/crash.line" >/dev/null 2>&1) &
    bg=$!
    for ((i = 0; i < 400; i++)); do
        [ ! -e "$HOLD/waiting" ] || break
        sleep 0.05
    done
    pid=$(action_pid "$bg") || true
    if [ -n "$pid" ]; then
        kill -KILL "$pid"
    fi
    touch "$HOLD/cancel"
    rm -f "$HOLD/$when.$sub"
    wait "$bg" || true
    sleep 0.3
    rm -f "$HOLD"/*
    tm_vm_state "$1" 0 8
    if [ -z "$pid" ] || [ "$i" = 400 ]; then
        echo "crash_at: the action did not reach qemu-img $sub ($when)"
        return 1
    fi
}

# ---------------------------------------------------------------- stock
# OpenNebula's qcow2 scripts at f847cf2e, as they run on the host, their
# variables filled in: SYSTEM_DS_PATH is dirname(arg_path(SRC)) ("//"
# collapsed); the persistent disk's chain is DISK/SOURCE verbatim ("//"
# kept), as stock uses it.

# qcow2/snap_create and snap_create.ssh, FORMAT qcow2 (L63-108).
stock_create() { # SYSTEM_DS_DISK_PATH SNAP_DIR SNAP_DIR_SHORT SNAP_ID
    local disk=$1 dir=$2 short=$3 next=$(($4 + 1))
    cat <<EOF
set -ex -o pipefail

mkdir -p "$dir"

        PREVIOUS_SNAP=\$(readlink $disk)

        cd "$dir"
        if [ -e "$dir/$next" ]; then
            echo "Snapshot file $dir/$next already exists." >&2
            exit 1
        fi

        qemu-img create -f qcow2 -o backing_fmt=qcow2 -b "\${PREVIOUS_SNAP}" "$dir/$next"
        ln -sf $short/$next $disk
EOF
}

# qcow2/snap_revert and snap_revert.ssh, FORMAT qcow2 (L63-101).
stock_revert() { # DISK_PATH SNAP_DIR SNAP_DIR_SHORT SNAP_ID
    local disk=$1 dir=$2 short=$3 id=$4
    cat <<EOF
        set -e -o pipefail

        if [ -f "$dir/$id.current" ]; then
            CURRENT_PATH=\$(cat "$dir/$id.current")
            CURRENT_ID="\${CURRENT_PATH##*/}"

            SNAP_PATH_SHORT="$short/\${CURRENT_ID}"
        else
            SNAP_PATH_SHORT="$short/$id"
        fi

        cd "$dir"
        qemu-img create -f qcow2 -o backing_fmt=qcow2 \\
            -b "\${SNAP_PATH_SHORT}" "\$(readlink -f $disk)"
EOF
}

# qcow2/snap_delete and snap_delete.ssh (L48-250, L296-318), VM not
# running (do_live finds nothing unless LCM_STATE is 59): the functions
# verbatim (Apache License 2.0, OpenNebula Systems), do_live reduced to
# that case.
stock_delete() { # SYSTEM_DS_PATH DISK_ID SNAP_DIR SNAP_ID ACTIVE
    local sys=$1 disk=$2 dir=$3 id=$4 active=$5
    cat <<'EOF'
    set -e -o pipefail
scan_backing_files() {
    local -n bfs=$1
    local snap_dir=$2

    for i in $(ls "${snap_dir}"); do
        f=$(realpath -s "${snap_dir}/${i}")

        [ ! -f ${f} ] && continue
        [[ "${f}" =~ \.current ]] && continue

        bf=$(qemu-img info -U --output json "${f}" | jq -r '."backing-filename"')
        ky="${f##*/}"

        if [ "${bf:0:1}" = "/" ] ; then
            bfs["${ky}"]="${bf}"
        elif [ "${bf}" = "null" ]; then
            bfs["${ky}"]="null"
        else
            bfs["${ky}"]="${snap_dir}/${bf##*/}"
        fi
    done
}

is_parent() {
    local -n bfs=$1
    local snap=$(echo "$2/$3" | tr -s '/')

    local child=""

    for file in "${!bfs[@]}"; do
        bfile=$(echo "${bfs[$file]}" | tr -s '/')

        if [ "${snap}" = "${bfile}" -o "${snap}" = $(realpath ${bfile}) ]; then
            child="${file}"
            break
        fi
    done

    echo "${child}"
}

do_live() {
    echo ""
}

get_current_path() {
    local snap_dir=$1
    local snap_id=$2

    local current=""

    for i in $(ls ${snap_dir}/*.current); do
        current=$(cat "${i}")

        #This snapshot represent another one (is in a .current file)
        if [ "${current##*/}" = "${snap_id}" ]; then
            echo "${i}"
            return 0
        fi
    done

    echo "${snap_dir}/${snap_id}.current"
}

delete_snapshot() {
    declare -gA backing_files

    local dpath=$1
    local target=$2
    local snap_dir=$3
    local snap_id=$4
    local vm_id=$5
    local vm_st=$6
    local active=$7
    local luri=$8
    local qemu=$9

    scan_backing_files backing_files "${snap_dir}"

    local current=""
    local cmd=""
    local rm_current=""

    if [ -f "${snap_dir}/${snap_id}.current" ]; then
        rm_current="rm ${snap_dir}/${snap_id}.current"

        current=$(cat "${snap_dir}/${snap_id}.current")
        snap_id="${current##*/}"
    fi

    local snap_path="${snap_dir}/${snap_id}"

    local base="${backing_files[$snap_id]}"

    local vbase=""
    local qbase=""

    if [ "${base}" = "null" ]; then
        vbase=""
        qbase='-b ""'
    else
        vbase="--base ${base}"
        qbase="-b ${base}"
    fi

    local child=$(is_parent backing_files "${snap_dir}" "${snap_id}")

    local live=$(do_live "${vm_id}" "${vm_st}" "${snap_id}" "${luri}")

    if [ "${active}" = "YES" ]; then
        if [ -n "${live}" ]; then
            cmd="virsh -c ${luri} blockpull ${vm_id} ${target} ${vbase} --wait"
        else
            cmd="${qemu} rebase -q -U -F qcow2 ${qbase} ${dpath}"
        fi

        cmd="${cmd}; rm ${snap_path}"
    elif [ -n "${child}" ]; then
        if [ -n "${live}" ]; then
            local current_path=$(get_current_path ${snap_dir} ${child})

            cmd="virsh -c ${luri} blockcommit ${vm_id} ${target} --top ${child} \
                   --base ${snap_path} --wait"
            cmd="${cmd}; echo "${snap_path}" > ${current_path}"
            cmd="${cmd}; rm ${snap_dir}/${child}"
        else
            cmd="${qemu} rebase -q -U -F qcow2 ${qbase} ${snap_dir}/${child}"
            cmd="${cmd}; rm ${snap_path}"
        fi
    else
        if [ -f "${snap_path}.current" ]; then
            cmd="rm ${current}"
        else
            cmd="rm ${snap_path}"
        fi
    fi

    cmd="${cmd}; ${rm_current}"

    echo "${cmd}"
}
EOF
    cat <<EOF
    DISK_RDLN="\$(readlink $sys/disk.$disk)"

    if [ "\${DISK_RDLN:0:1}" != "/" ] ; then
        DISK_RDLN="$sys/\${DISK_RDLN}"
    fi

    cmd=\$(delete_snapshot "\${DISK_RDLN}" "sda" "$dir" "$id" \\
            "one-0" "0" "$active" "qemu:///system" "qemu-img")

    eval "\${cmd}"
EOF
}

stock_run() { # HOST SCRIPT
    on_host "$1" bash -c "$2" >"$TEST_DIR/stock.out" 2>&1 || {
        echo "the stock commands failed:"
        cat "$TEST_DIR/stock.out"
        return 1
    }
}

# ---------------------------------------------------------------- the pair
# A pair: VM Q (qcow2c) and its twin S (stock commands), same disks, same
# writes. P_* describe them for the steps below.

# pair_setup MODE QVM SVM: MODE shared (non-persistent, datastore 0), pers
# (persistent, datastore 0), ssh (non-persistent, datastore 100), sshpers.
pair_setup() {
    local mode=$1 ds=$SYS_DS pers=() iq is
    P_Q=$2
    P_S=$3
    P_MODE=$mode
    case $mode in ssh | sshpers) ds=$SSH_DS ;; esac
    case $mode in pers | sshpers) pers=(--persistent) ;; esac
    P_PAT=0x5a
    iq=$(tm_image "q$P_Q" --format qcow2 --size 16 "${pers[@]}" --data "$P_PAT")
    if [ ${#pers[@]} = 0 ]; then
        is=$iq
    else
        is=$(tm_image "s$P_S" --format qcow2 --size 16 "${pers[@]}" --data "$P_PAT")
    fi
    tm_vm "$P_Q" --host node1 --system-ds "$ds" --disk image="$iq"
    tm_vm "$P_S" --host node1 --system-ds "$ds" --disk image="$is"
    tm_prolog "$P_Q"
    tm_prolog "$P_S"
    tm_vm_state "$P_Q" 0 8
    tm_vm_state "$P_S" 0 8
    P_QDIR=$(norm "$(tm_sysdir "$P_Q")")
    P_SDIR=$(norm "$(tm_sysdir "$P_S")")
    P_QSRC=$(tm_image_source "$iq")
    P_SSRC=$(tm_image_source "$is")
    if [ "$mode" = pers ]; then
        P_QCHAIN=$(norm "$P_QSRC").snap
        P_SCHAIN=$(norm "$P_SSRC").snap
        # stock takes the chain from DISK/SOURCE, "//" and all
        P_SSNAPDIR=$P_SSRC.snap
        P_SSHORT=$P_SSRC.snap
    else
        P_QCHAIN=$P_QDIR/disk.0.snap
        P_SCHAIN=$P_SDIR/disk.0.snap
        P_SSNAPDIR=$P_SCHAIN
        P_SSHORT=disk.0.snap
    fi
}

# Both VMs get the write.
pair_write() { # MB PATTERN
    write_at node1 "$P_QDIR/disk.0" "$1" "$2"
    write_at node1 "$P_SDIR/disk.0" "$1" "$2"
}

# The stock commands of a step on the twin.
stock_step() { # ACTION SNAP_ID [ACTIVE]
    case $1 in
        SNAP_CREATE) stock_run node1 "$(stock_create "$P_SDIR/disk.0" "$P_SSNAPDIR" "$P_SSHORT" "$2")" ;;
        SNAP_REVERT) stock_run node1 "$(stock_revert "$P_SDIR/disk.0" "$P_SSNAPDIR" "$P_SSHORT" "$2")" ;;
        SNAP_DELETE) stock_run node1 "$(stock_delete "$P_SDIR" 0 "$P_SSNAPDIR" "$2" "${3:-NO}")" ;;
    esac
}

# The layouts of the pair are the same. Deliberate differences from stock:
#  - snap_delete rebases the child onto the deleted file's own backing name;
#    stock writes the absolute path "<snap dir>/<base>" even in a chain of
#    relative names (which a move of the VM directory breaks);
#  - links and backing names of a persistent disk's chain are the
#    normalised path (as qcow2c's and stock's ln write them); stock's
#    snap_create and snap_revert write DISK/SOURCE verbatim, with "//".
same_as_stock() {
    local q s
    if [ "$P_MODE" = pers ]; then
        q=$(tree_as node1 "$P_QDIR"; tree_as node1 "$P_QCHAIN")
        s=$(tree_as node1 "$P_SDIR" "$P_SDIR=$P_QDIR" "$(norm "$P_SSRC")=$(norm "$P_QSRC")"
            tree_as node1 "$P_SCHAIN" "$(norm "$P_SSRC")=$(norm "$P_QSRC")")
        q=$(printf '%s\n' "$q" | tr -s / | LC_ALL=C sort)
        s=$(printf '%s\n' "$s" | tr -s / | sed "s#$(basename "$P_SSRC")#$(basename "$P_QSRC")#g" |
            LC_ALL=C sort)
    else
        q=$(tree_as node1 "$P_QDIR")
        s=$(tree_as node1 "$P_SDIR" "$P_SDIR=$P_QDIR" |
            sed "s#^\(disk.0.snap/[0-9]* file qcow2\) $P_QDIR/disk.0.snap/\([0-9]*\)\$#\1 disk.0.snap/\2#")
    fi
    if [ "$q" != "$s" ]; then
        echo "same_as_stock: the layouts differ (- stock, + qcow2c):"
        diff -u <(printf '%s\n' "$s") <(printf '%s\n' "$q") | tail -n +3 | sed 's/^/    /'
        return 1
    fi
}

# A step on both VMs, then: same layout, sound files, same content of the
# disk and of every snapshot file.
step() { # ACTION SNAP_ID [ACTIVE_ID ID...]  (the snapshots oned has meanwhile)
    local action=$1 id=$2 active=NO f
    shift 2
    if [ $# -gt 0 ]; then
        oned_snaps "$P_Q" "$@"
        [ "$1" != "$id" ] || active=YES
    fi
    snap "$P_Q" "$action" "$id"
    stock_step "$action" "$id" "$active"
    same_as_stock
    check_all node1 "$P_QCHAIN"
    check_all node1 "$P_SCHAIN"
    on_host node1 qemu-img compare -q -U -- "$P_QDIR/disk.0" "$P_SDIR/disk.0"
    for f in $(on_host node1 ls "$P_QCHAIN"); do
        case $f in *[!0-9]*) continue ;; esac
        on_host node1 qemu-img compare -q -U -- "$P_QCHAIN/$f" "$P_SCHAIN/$f"
    done
}

# The scenario: snapshot K's content is what the patterns say.
#   A 1M, snapshot 0 = {A}; B 2M, snapshot 1 = {A,B}; C 3M; revert to 0:
#   {A}; D 4M, snapshot 2 = {A,D}; E 5M, snapshot 3 = {A,D,E}; F 6M; delete
#   1 (a leaf), 2 (middle of the chain), 3 (active); snapshot 4 =
#   {A,D,E,F}.
scenario() {
    local c=$P_QCHAIN p=$P_PAT
    pair_write 1 0xa1
    step SNAP_CREATE 0 0 0
    regions node1 "$c/0" "$p" 1:0xa1
    pair_write 2 0xb2
    step SNAP_CREATE 1 1 0 1
    regions node1 "$c/1" "$p" 1:0xa1 2:0xb2
    pair_write 3 0xc3
    regions node1 "$P_QDIR/disk.0" "$p" 1:0xa1 2:0xb2 3:0xc3
    step SNAP_REVERT 0 0 0 1
    regions node1 "$P_QDIR/disk.0" "$p" 1:0xa1
    regions node1 "$c/1" "$p" 1:0xa1 2:0xb2
    pair_write 4 0xd4
    step SNAP_CREATE 2 2 0 1 2
    pair_write 5 0xe5
    step SNAP_CREATE 3 3 0 1 2 3
    pair_write 6 0xf6
    step SNAP_DELETE 1 3 0 1 2 3
    step SNAP_DELETE 2 3 0 2 3
    regions node1 "$c/3" "$p" 1:0xa1 4:0xd4 5:0xe5
    step SNAP_DELETE 3 3 0 3
    regions node1 "$c/0" "$p" 1:0xa1
    regions node1 "$P_QDIR/disk.0" "$p" 1:0xa1 4:0xd4 5:0xe5 6:0xf6
    step SNAP_CREATE 4 4 0 4
    regions node1 "$c/4" "$p" 1:0xa1 4:0xd4 5:0xe5 6:0xf6
}

# ---------------------------------------------------------------- cases

case_shared() {
    pair_setup shared 40 41
    scenario
    layout_is node1 "$P_QDIR" <<EOF
        . dir
        disk.0 link disk.0.snap/5
        disk.0.snap dir
        disk.0.snap/0 file qcow2 $(norm "$P_QSRC")
        disk.0.snap/4 file qcow2 disk.0.snap/0
        disk.0.snap/5 file qcow2 disk.0.snap/4
        disk.0.snap/disk.0.snap link .
EOF
}

case_persistent() {
    local s
    pair_setup pers 42 43
    scenario
    s=$(norm "$P_QSRC")
    layout_is node1 "$P_QDIR" <<EOF
        . dir
        disk.0 link $s.snap/5
EOF
    layout_is node1 "$s.snap" <<EOF
        . dir
        0 link $s
        4 file qcow2 $s.snap/0
        5 file qcow2 $s.snap/4
        $(basename "$s").snap link .
EOF
}

case_ssh() {
    pair_setup ssh 44 45
    scenario
    layout_is node1 "$P_QDIR" <<EOF
        . dir
        disk.0 link disk.0.snap/5
        disk.0.snap dir
        disk.0.snap/0 file qcow2
        disk.0.snap/4 file qcow2 disk.0.snap/0
        disk.0.snap/5 file qcow2 disk.0.snap/4
        disk.0.snap/disk.0.snap link .
EOF
    # the system datastore of TM ssh is private to node1
    test ! -e "$P_QDIR"
}

case_ssh_persistent() {
    pair_setup sshpers 46 47
    scenario
    # the image datastore is untouched
    test ! -e "$(norm "$P_QSRC").snap/1"
}

# layout_is as t0210: lines in any order.
layout_is() { # HOST PATH <<EOF
    sed -e 's/^[[:space:]]*//' -e '/^$/d' -e 's/ /\t/' | LC_ALL=C sort | sed 's/\t/ /' |
        expect_layout "$1" "$2"
}

# ---- re-runs

case_rerun_create() {
    local d c
    pair_setup shared 50 51
    d=$P_QDIR
    c=$P_QCHAIN
    pair_write 1 0xa1
    # killed before qemu-img ran, then after it (a complete .part left):
    # the re-run makes the same layout as stock
    oned_snaps 50 0 0
    crash_at before create 50 SNAP_CREATE 0
    crash_at after create 50 SNAP_CREATE 0
    on_host node1 test -e "$c/1.part"
    test "$(on_host node1 readlink "$d/disk.0")" = disk.0.snap/0
    step SNAP_CREATE 0 0 0
    on_host node1 test ! -e "$c/1.part"
    # a re-run after success changes nothing
    local before
    before=$(host_tree node1 "$d"; on_host node1 stat -c %i "$c/1")
    snap 50 SNAP_CREATE 0
    test "$before" = "$(host_tree node1 "$d"; on_host node1 stat -c %i "$c/1")"

    # a half-made overlay 2 (a crash of stock's qemu-img create): rebuilt
    pair_write 2 0xb2
    # shellcheck disable=SC2016 # expanded on the host
    on_host node1 bash -c 'head -c 100 /dev/urandom >"$1"' _ "$c/2"
    snap 50 SNAP_CREATE 1
    on_host node1 rm -f "$P_SCHAIN/2"
    stock_step SNAP_CREATE 1
    same_as_stock
    regions node1 "$c/1" "$P_PAT" 1:0xa1 2:0xb2

    # a truncated overlay 3 on the current file (a crash of stock's
    # qemu-img create in place): not taken as the current state, rebuilt
    pair_write 3 0xc3
    # shellcheck disable=SC2016 # expanded on the host
    on_host node1 bash -c 'cd "$1" && qemu-img create -q -f qcow2 -F qcow2 -b disk.0.snap/2 3 &&
        truncate -s 1000 3' _ "$c"
    snap 50 SNAP_CREATE 2
    stock_step SNAP_CREATE 2
    same_as_stock
    regions node1 "$c/2" "$P_PAT" 1:0xa1 2:0xb2 3:0xc3

    # overlay 4 complete on the current file but disk.0 not moved (a crash
    # between stock's qemu-img create and ln): taken, disk.0 moved
    pair_write 4 0xd4
    # shellcheck disable=SC2016 # expanded on the host
    on_host node1 bash -c 'cd "$1" && qemu-img create -q -f qcow2 -F qcow2 -b disk.0.snap/3 4' _ "$c"
    before=$(on_host node1 stat -c %i "$c/4")
    snap 50 SNAP_CREATE 3
    test "$before" = "$(on_host node1 stat -c %i "$c/4")"
    stock_step SNAP_CREATE 3
    same_as_stock
    regions node1 "$c/3" "$P_PAT" 1:0xa1 2:0xb2 3:0xc3 4:0xd4

    # disk.0 already on 5 (an overlay on 4) which holds data: not a retry
    # of snapshot 4 but files of another life (issue #4653): refused,
    # nothing changed
    # shellcheck disable=SC2016 # expanded on the host
    on_host node1 bash -c 'cd "$1" && qemu-img create -q -f qcow2 -F qcow2 -b disk.0.snap/4 5 &&
        ln -sfn disk.0.snap/5 "$2"' _ "$c" "$d/disk.0"
    write_at node1 "$d/disk.0" 5 0xe5
    before=$(host_tree node1 "$d")
    snap_fails 50 SNAP_CREATE 4
    one_plain_line "$LAST_STDERR" | grep -q 'holds data written after'
    test "$before" = "$(host_tree node1 "$d")"
    # the same overlay without data: snapshot 4 was taken (a re-run)
    # shellcheck disable=SC2016 # expanded on the host
    on_host node1 bash -c 'cd "$1" && rm 5 && qemu-img create -q -f qcow2 -F qcow2 -b disk.0.snap/4 5' _ "$c"
    before=$(host_tree node1 "$d")
    snap 50 SNAP_CREATE 4
    test "$before" = "$(host_tree node1 "$d")"

    # a complete file 6 that is not an overlay on the current file: not
    # ours, refused, kept
    # shellcheck disable=SC2016 # expanded on the host
    on_host node1 bash -c 'cd "$1" && qemu-img create -q -f qcow2 -F qcow2 -b disk.0.snap/1 6' _ "$c"
    before=$(host_tree node1 "$d")
    snap_fails 50 SNAP_CREATE 5
    one_plain_line "$LAST_STDERR" | grep -q 'already exists and is not an overlay on the current state'
    test "$before" = "$(host_tree node1 "$d")"
    check_all node1 "$c"
}

case_rerun_revert() {
    local c
    pair_setup shared 52 53
    c=$P_QCHAIN
    pair_write 1 0xa1
    step SNAP_CREATE 0 0 0
    pair_write 2 0xb2
    step SNAP_CREATE 1 1 0 1
    pair_write 3 0xc3
    oned_snaps 52 1 0 1
    # killed before, then after qemu-img made the new current file beside:
    # the current state is whole each time
    crash_at before create 52 SNAP_REVERT 0
    regions node1 "$P_QDIR/disk.0" "$P_PAT" 1:0xa1 2:0xb2 3:0xc3
    crash_at after create 52 SNAP_REVERT 0
    regions node1 "$P_QDIR/disk.0" "$P_PAT" 1:0xa1 2:0xb2 3:0xc3
    on_host node1 test -e "$c/2.part"
    step SNAP_REVERT 0 1 0 1
    regions node1 "$P_QDIR/disk.0" "$P_PAT" 1:0xa1
    on_host node1 test ! -e "$c/2.part"
    # again (a re-run): the same
    step SNAP_REVERT 0 0 0 1
    # a snapshot that is missing: refused, nothing changed
    local before
    before=$(host_tree node1 "$P_QDIR")
    snap_fails 52 SNAP_REVERT 7
    one_plain_line "$LAST_STDERR" | grep -q 'snapshot 7 of disk.0 is missing'
    test "$before" = "$(host_tree node1 "$P_QDIR")"
}

case_rerun_delete() {
    local c before
    pair_setup shared 54 55
    c=$P_QCHAIN
    pair_write 1 0xa1
    step SNAP_CREATE 0 0 0
    pair_write 2 0xb2
    step SNAP_CREATE 1 1 0 1
    pair_write 3 0xc3
    step SNAP_CREATE 2 2 0 1 2
    pair_write 4 0xd4
    # snapshot 1, middle of the chain: killed before the rebase, then after
    # it (file 1 no longer used, still there)
    oned_snaps 54 2 0 1 2
    crash_at before rebase 54 SNAP_DELETE 1
    regions node1 "$c/2" "$P_PAT" 1:0xa1 2:0xb2 3:0xc3
    crash_at after rebase 54 SNAP_DELETE 1
    on_host node1 test -e "$c/1"
    regions node1 "$c/2" "$P_PAT" 1:0xa1 2:0xb2 3:0xc3
    step SNAP_DELETE 1 2 0 1 2
    regions node1 "$c/2" "$P_PAT" 1:0xa1 2:0xb2 3:0xc3
    regions node1 "$P_QDIR/disk.0" "$P_PAT" 1:0xa1 2:0xb2 3:0xc3 4:0xd4
    # deleted twice: gone once
    before=$(host_tree node1 "$P_QDIR")
    snap 54 SNAP_DELETE 1
    test "$before" = "$(host_tree node1 "$P_QDIR")"
    # the active one, killed after its rebase
    oned_snaps 54 2 0 2
    crash_at after rebase 54 SNAP_DELETE 2
    regions node1 "$P_QDIR/disk.0" "$P_PAT" 1:0xa1 2:0xb2 3:0xc3 4:0xd4
    step SNAP_DELETE 2 2 0 2
    regions node1 "$P_QDIR/disk.0" "$P_PAT" 1:0xa1 2:0xb2 3:0xc3 4:0xd4
    # the current file is no snapshot: refused
    before=$(host_tree node1 "$P_QDIR")
    snap_fails 54 SNAP_DELETE 3
    one_plain_line "$LAST_STDERR" | grep -q "is the disk's current state"
    test "$before" = "$(host_tree node1 "$P_QDIR")"
    # a snapshot with two overlays on it (a hand-made branch): refused
    # shellcheck disable=SC2016 # expanded on the host
    on_host node1 bash -c 'cd "$1" && qemu-img create -q -f qcow2 -F qcow2 -b disk.0.snap/0 9' _ "$c"
    before=$(host_tree node1 "$P_QDIR")
    snap_fails 54 SNAP_DELETE 0
    one_plain_line "$LAST_STDERR" | grep -q 'is the backing file of 2 files'
    test "$before" = "$(host_tree node1 "$P_QDIR")"
}

# oned skipped ids 1 and 2 (failed attempts: its ids only grow): snapshot 3
# is kept in file 1, named by 3.current, which stock's revert and delete
# (and cpds) read.
case_skipped_ids() {
    local c
    pair_setup shared 56 57
    c=$P_QCHAIN
    pair_write 1 0xa1
    step SNAP_CREATE 0 0 0
    pair_write 2 0xb2
    oned_snaps 56 3 0 3
    snap 56 SNAP_CREATE 3
    layout_is node1 "$P_QDIR" <<EOF
        . dir
        disk.0 link disk.0.snap/4
        disk.0.snap dir
        disk.0.snap/0 file qcow2 $(norm "$P_QSRC")
        disk.0.snap/1 file qcow2 disk.0.snap/0
        disk.0.snap/3.current file raw
        disk.0.snap/4 file qcow2 disk.0.snap/1
        disk.0.snap/disk.0.snap link .
EOF
    test "$(on_host node1 cat "$c/3.current")" = "$c/1"
    pair_write 3 0xc3
    # qcow2c's revert to 3: the state of file 1
    snap 56 SNAP_REVERT 3
    regions node1 "$P_QDIR/disk.0" "$P_PAT" 1:0xa1 2:0xb2
    # stock's revert reads it the same way
    write_at node1 "$P_QDIR/disk.0" 3 0xc3
    stock_run node1 "$(stock_revert "$P_QDIR/disk.0" "$c" disk.0.snap 3)"
    regions node1 "$P_QDIR/disk.0" "$P_PAT" 1:0xa1 2:0xb2
    # a re-run of the create: taken
    oned_snaps 56 3 0 3
    local before
    before=$(host_tree node1 "$P_QDIR")
    snap 56 SNAP_CREATE 3
    test "$before" = "$(host_tree node1 "$P_QDIR")"
    # delete 3 (the active one): file 1 goes with 3.current
    snap 56 SNAP_DELETE 3
    layout_is node1 "$P_QDIR" <<EOF
        . dir
        disk.0 link disk.0.snap/4
        disk.0.snap dir
        disk.0.snap/0 file qcow2 $(norm "$P_QSRC")
        disk.0.snap/4 file qcow2 disk.0.snap/0
        disk.0.snap/disk.0.snap link .
EOF
    regions node1 "$P_QDIR/disk.0" "$P_PAT" 1:0xa1 2:0xb2
    check_all node1 "$c"
}

# Stock's layouts (its "//" names for a persistent disk) taken over by
# qcow2c, and qcow2c's by stock.
case_stock_layouts() {
    local s
    pair_setup pers 58 59
    s=$(norm "$P_SSRC")
    # the twin gets three snapshots from stock ("//" in its names)...
    write_at node1 "$P_SDIR/disk.0" 1 0xa1
    stock_step SNAP_CREATE 0
    write_at node1 "$P_SDIR/disk.0" 2 0xb2
    stock_step SNAP_CREATE 1
    write_at node1 "$P_SDIR/disk.0" 3 0xc3
    stock_step SNAP_CREATE 2
    on_host node1 readlink "$P_SDIR/disk.0" | grep -q '//'
    # ... then qcow2c goes on: delete the middle one, revert, create
    oned_snaps 59 2 0 1 2
    snap 59 SNAP_DELETE 1
    regions node1 "$s.snap/2" "$P_PAT" 1:0xa1 2:0xb2 3:0xc3
    snap 59 SNAP_REVERT 0
    regions node1 "$P_SDIR/disk.0" "$P_PAT" 1:0xa1
    write_at node1 "$P_SDIR/disk.0" 4 0xd4
    oned_snaps 59 3 0 2 3
    snap 59 SNAP_CREATE 3
    regions node1 "$s.snap/3" "$P_PAT" 1:0xa1 4:0xd4
    check_all node1 "$s.snap"
    # and stock goes on after qcow2c on the other VM: qcow2c's snapshot 0,
    # stock's 1, stock deletes 0 (the middle), reverts to 1
    write_at node1 "$P_QDIR/disk.0" 1 0xa1
    oned_snaps 58 0 0
    snap 58 SNAP_CREATE 0
    write_at node1 "$P_QDIR/disk.0" 2 0xb2
    stock_run node1 "$(stock_create "$P_QDIR/disk.0" "$P_QSRC.snap" "$P_QSRC.snap" 1)"
    write_at node1 "$P_QDIR/disk.0" 3 0xc3
    stock_run node1 "$(stock_delete "$P_QDIR" 0 "$P_QSRC.snap" 0 NO)"
    regions node1 "$(norm "$P_QSRC").snap/1" $P_PAT 1:0xa1 2:0xb2
    stock_run node1 "$(stock_revert "$P_QDIR/disk.0" "$P_QSRC.snap" "$P_QSRC.snap" 1)"
    regions node1 "$P_QDIR/disk.0" "$P_PAT" 1:0xa1 2:0xb2
    check_all node1 "$(norm "$P_QSRC").snap"
}

# raw disks: full copies (stock: cp), revert by copy, delete by rm.
case_raw() {
    local img d before
    img=$(tm_image raw60 --format raw --size 8 --data 0x5a)
    tm_vm 60 --host node1 --system-ds 0 --disk image="$img"
    tm_prolog 60
    tm_vm_state 60 0 8
    d=$(norm "$(tm_sysdir 60)")
    qemu-io -f raw -c 'write -q -P 0xa1 1M 64k' "$d/disk.0" >/dev/null
    snap 60 SNAP_CREATE 0
    qemu-io -f raw -c 'write -q -P 0xb2 2M 64k' "$d/disk.0" >/dev/null
    snap 60 SNAP_CREATE 1
    snap 60 SNAP_CREATE 1 # a re-run keeps the complete copy
    cmp "$d/disk.0" "$d/disk.0.snap/1"
    qemu-io -f raw -c 'write -q -P 0xc3 3M 64k' "$d/disk.0" >/dev/null
    snap 60 SNAP_REVERT 0
    cmp "$d/disk.0" "$d/disk.0.snap/0"
    snap 60 SNAP_DELETE 1
    snap 60 SNAP_DELETE 1
    layout_is node1 "$d" <<EOF
        . dir
        disk.0 file raw
        disk.0.snap dir
        disk.0.snap/0 file raw
EOF
    # a partial copy left by a crash is replaced
    head -c 4096 /dev/zero >"$d/disk.0.snap/2.part"
    before=$(stat -c %s "$d/disk.0")
    snap 60 SNAP_CREATE 2
    cmp "$d/disk.0" "$d/disk.0.snap/2"
    test ! -e "$d/disk.0.snap/2.part"
    test "$(stat -c %s "$d/disk.0.snap/2")" = "$before"
}

# A persistent raw disk in shared mode: the revert writes the image (disk.0
# stays its link); stock removes the link and copies the snapshot into the
# system datastore, where the VM's later writes are lost at terminate
# (issue #6663).
case_raw_persistent() {
    local img d f
    img=$(tm_image raw61 --format raw --size 8 --persistent --data 0x5a)
    f=$(tm_image_file "$img")
    tm_vm 61 --host node1 --system-ds 0 --disk image="$img"
    tm_prolog 61
    tm_vm_state 61 0 8
    d=$(norm "$(tm_sysdir 61)")
    qemu-io -f raw -c 'write -q -P 0xa1 1M 64k' "$d/disk.0" >/dev/null
    snap 61 SNAP_CREATE 0
    test -f "$f.snap/0"
    qemu-io -f raw -c 'write -q -P 0xb2 2M 64k' "$d/disk.0" >/dev/null
    snap 61 SNAP_REVERT 0
    test "$(readlink "$d/disk.0")" = "$f"
    cmp "$f" "$f.snap/0"
    snap 61 SNAP_DELETE 0
    test ! -e "$f.snap/0"
}

case_bad_input() {
    local d before
    pair_setup shared 62 63
    d=$P_QDIR
    before=$(host_tree node1 "$d")
    # another VM's disk, a snapshot id that is no id, a disk that is not
    # disk.N, a host name ssh would take for an option
    tm_transfer_fails 62 < <(printf 'SNAP_CREATE qcow2c node1:%s/disk.0 0 62 1\n' "$P_SDIR")
    one_plain_line "$LAST_STDERR" | grep -q 'is not inside the directory of VM 62'
    tm_transfer_fails 62 < <(printf 'SNAP_CREATE qcow2c node1:%s/disk.0 -1 62 1\n' "$d")
    one_plain_line "$LAST_STDERR" | grep -q "'-1' is not a valid snapshot id"
    tm_transfer_fails 62 < <(printf 'SNAP_REVERT qcow2c node1:%s/disk.0 x1 62 1\n' "$d")
    tm_transfer_fails 62 < <(printf 'SNAP_DELETE qcow2c node1:%s 0 62 1\n' "$d")
    one_plain_line "$LAST_STDERR" | grep -q 'is not of the form host:'
    tm_transfer_fails 62 < <(printf 'SNAP_CREATE qcow2c -oProxyCommand=x:%s/disk.0 0 62 1\n' "$d")
    tm_transfer_fails 62 < <(printf 'SNAP_CREATE qcow2c node1:%s/disk.7 0 62 1\n' "$d")
    one_plain_line "$LAST_STDERR" | grep -q 'VM 62 has no disk 7'
    test "$before" = "$(host_tree node1 "$d")"
}

case_host_down() {
    local d
    pair_setup shared 64 65
    d=$P_QDIR
    defer hosts_ctl resume node1
    hosts_ctl pause node1
    snap_fails 64 SNAP_CREATE 0
    one_plain_line "$LAST_STDERR" | grep -q 'cannot reach host node1'
    hosts_ctl resume node1
    test "$(on_host node1 readlink "$d/disk.0")" = disk.0.snap/0
    snap 64 SNAP_CREATE 0
    test "$(on_host node1 readlink "$d/disk.0")" = disk.0.snap/1
}

# The child processes each action starts (DEBUG=yes): the ssh session and
# its commands on the host.
case_children() {
    pair_setup shared 66 67
    tm_conf DEBUG yes
    defer tm_conf DEBUG no
    snap 66 SNAP_CREATE 0
    expect_stderr_line --match 'DEBUG: 66 snap_create: 3 child processes'
    snap 66 SNAP_CREATE 1
    snap 66 SNAP_REVERT 0
    expect_stderr_line --match 'DEBUG: 66 snap_revert: 3 child processes'
    oned_snaps 66 0 0 1
    snap 66 SNAP_DELETE 1
    expect_stderr_line --match 'DEBUG: 66 snap_delete: 3 child processes'
    oned_snaps 66 0 0
    snap 66 SNAP_DELETE 0
    expect_stderr_line --match 'DEBUG: 66 snap_delete: 3 child processes'
}

# T0230_ONLY=REGEX runs only the cases whose function matches (development).
case_if() { # NAME FUNCTION
    if [ -n "${T0230_ONLY:-}" ] && ! [[ $2 =~ $T0230_ONLY ]]; then
        return 0
    fi
    test_case "$@"
}

case_if "shared, non-persistent: create, revert, delete leaf/middle/active as stock" case_shared
case_if "shared, persistent (SOURCE.snap): the same as stock" case_persistent
case_if "ssh system datastore (.ssh): the same as stock" case_ssh
case_if "ssh system datastore, persistent disk: the same as stock" case_ssh_persistent
case_if "snap_create re-runs: killed, half-made, not linked, taken, foreign files" case_rerun_create
case_if "snap_revert re-runs: killed before and after its overlay, missing snapshot" case_rerun_revert
case_if "snap_delete re-runs: killed before and after the rebase, twice, refusals" case_rerun_delete
case_if "ids skipped by oned: N.current, read by qcow2c and stock" case_skipped_ids
case_if "stock layouts taken over by qcow2c and back" case_stock_layouts
case_if "raw disks: copies, revert by copy, re-runs" case_raw
case_if "raw persistent disk: the revert writes the image (stock bug #6663)" case_raw_persistent
case_if "bad arguments are refused, nothing touched" case_bad_input
case_if "host out of reach: one reason, then the re-run works" case_host_down
case_if "child processes per action" case_children
