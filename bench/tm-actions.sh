#!/bin/bash
# tm-actions.sh - what the qcow2c TM actions cost, next to what OpenNebula's
# stock qcow2 TM driver costs for the same work: wall time, child processes
# (front-end and host), peak memory.
#
#   bench/tm-actions.sh [WORKDIR]        (as root: it traces the host's sshd)
#
# The actions, with the argument shapes oned used in the captures
# (tests/fixtures/oned/tm), on VM 6 of the captured running VM document:
#   clone        non-persistent qcow2 image (1 GiB virtual, 512 MiB written)
#                -> disk.0, an overlay in the VM directory
#   ln           persistent 16 MiB qcow2 image -> disk.1
#   delete       disk.0 of the running VM
#   mvds         disk.1 back to its image (shared datastore: nothing to move)
#   snap_create  snapshot 0 of disk.0 (powered off)
#   monitor      a shared system datastore with BENCH_MONITOR_VMS (2,000) VM
#                directories (disk.0 an overlay, half with a volatile disk.1,
#                a quarter with a snapshot), MONITOR_VM_DISKS=1 (sizes sent
#                to monitord)
# The "host" is node1, an sshd on 127.0.0.1 (tests/lib/sshd.sh) that sees the
# same file systems, as in the lab the published figures come from; oned is
# the XML-RPC stand-in (tests/harness/standin.sh) serving the VM document.
#
# Each action runs as oned's drivers run it: directly, in their environment
# (bench/lib.sh bench_env), with stdin as oned gives it. Three variants:
#   qcow2c           the installed action (remotes/tm/qcow2c/<action>)
#   stock (replica)  the stock action's shell sequence, written out here
#                    (stock_*() below) from OpenNebula's src/tm_mad/qcow2/*,
#                    tm_common.sh and scripts_common.sh at f847cf2e: the same
#                    front-end commands and the same ssh sessions running the
#                    same remote scripts (qemu-img, ln, rm, findmnt... on the
#                    host), minus OpenNebula's Ruby CLI, which is not on this
#                    machine: each Ruby process (onevm, onedatastore,
#                    xpath.rb, the `ruby -e` zlib deflate of monitor) is
#                    replaced by `cat` of its answer (counted as "ruby"); the
#                    stock monitor's `nc -u -w1` becomes a bash /dev/udp write
#                    when nc is absent (without nc's 1 s wait)
#   stock (lab)      the published figures of the real stock driver under a
#                    real oned 7.5.80 (shared/stock-costs.md, 2026-11-23, 2
#                    shared cores): each Ruby start there costs 0.3-0.6 s and
#                    ~40 MB, which the replica does not pay
# Columns (bench/lib.sh): wall = median of BENCH_RUNS (5) runs, setup not
# timed; fe execs / fe procs = execve calls / processes of the action's tree
# (strace -f); ssh = ssh clients; host execs = programs the host's sshd ran
# for it (its sshd traced), sshd's own re-execs left out; RSS = peak RSS of
# the largest process (GNU time %M). Ratios are qcow2c / stock (replica).
# For qcow2c, a DEBUG=yes run adds what the action itself reports: its child
# processes (local plus remote commands) and its remote commands.
#
# Environment: BUILD (build directory, default build), BENCH_RUNS (5),
# BENCH_MONITOR_RUNS (3), BENCH_MONITOR_VMS (2000).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src_tree=$(cd "$here/.." && pwd)
build=${BUILD:-$src_tree/build}
case $build in /*) ;; *) build=$src_tree/$build ;; esac
nvms=${BENCH_MONITOR_VMS:-2000}
monitor_runs=${BENCH_MONITOR_RUNS:-3}
work=${1:-$(mktemp -d "${TMPDIR:-/var/tmp}/qcow2c-bench-tm.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd)

BENCH_RES=$work/res
mkdir -p "$BENCH_RES"
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

die() {
    echo "tm-actions.sh: $*" >&2
    exit 1
}

for t in qemu-img qemu-io strace bc awk ssh jq; do
    command -v "$t" >/dev/null || die "$t is missing"
done
[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) is missing"
[ -x "$build/bin/qcow2c-tm" ] || die "build first (make)"
for t in standin-ctl oned-standin ds-msg; do
    [ -x "$build/harness/$t" ] || die "$build/harness/$t is missing (make)"
done
[ "$(id -u)" = 0 ] || echo "# not root: host-side commands are not counted (sshd cannot be traced)"

# ---------------------------------------------------------------- the lab

VAR=$work/var/lib/one
DSL=$VAR//datastores                 # DATASTORE_LOCATION as oned writes it
DSD=$VAR/datastores
VMID=6                               # the captured VM: system ds 104, image ds 105
VMDIR=$DSD/104/$VMID
IMG0=$DSD/105/7e91d9b535115238b613f67efae9b5b3   # disk 0, non-persistent
IMG1=$DSD/105/db9b29b4c5e38529eaccb6cfd2f8b4c0   # disk 1, persistent
IMG0_ARG=$DSL/105/${IMG0##*/}        # their SOURCE as oned writes it
IMG1_ARG=$DSL/105/${IMG1##*/}
MONLOC=$work/mon//datastores         # the monitored datastore: 106
MONDIR=$work/mon/datastores/106
STOCK=$work/stock
R=$work/one/var/remotes/tm/qcow2c

cleanup() {
    "$src_tree/tests/lib/sshd.sh" stop "$work/ssh" 2>/dev/null || true
    BUILD=$build "$src_tree/tests/harness/standin.sh" stop "$work/standin" 2>/dev/null || true
}
trap cleanup EXIT

echo "# qcow2c TM actions against the stock qcow2 shell sequence; median of $BENCH_RUNS runs" \
    "(monitor: $monitor_runs)"
echo "# work dir: $work"

ONE_LOCATION=$work/one "$src_tree/install.sh" --build "$build" >"$work/install.log" 2>&1 ||
    die "install.sh failed (see $work/install.log)"
"$src_tree/tests/lib/sshd.sh" start "$work/ssh" node1 frontend >/dev/null
BENCH_SSHD_PID=$(cat "$work/ssh/sshd.pid")
# Debian's bash reads ~/.bashrc when sshd starts it at shell level 1: keep
# this machine's rc files (root's may start pyenv and the like, dozens of
# processes per login) out of the host's count, as a oneadmin account has
# none. SIGHUP: sshd re-reads its configuration (same pid).
if ! grep -q '^SetEnv SHLVL=' "$work/ssh/sshd_config"; then
    echo 'SetEnv SHLVL=1' >>"$work/ssh/sshd_config"
    kill -HUP "$BENCH_SSHD_PID"
    for ((i = 0; i < 50; i++)); do
        sleep 0.1
        ssh -F "$work/ssh/ssh_config" -o BatchMode=yes node1 true 2>/dev/null && break
    done
fi
[ "$(ssh -F "$work/ssh/ssh_config" -o BatchMode=yes node1 'echo $SHLVL')" = 2 ] ||
    die "the host's login shell still reads its rc files"
[ "$(id -u)" = 0 ] || BENCH_SSHD_PID=
eval "$(BUILD=$build "$src_tree/tests/harness/standin.sh" start "$work/standin")"
ctl() { "$build/harness/standin-ctl" "$work/standin" "$@" >/dev/null; }
ctl put vm "$src_tree/tests/fixtures/oned/xmlrpc/vm.info.running.inner.xml" \
    --subst "/var/lib/one//datastores=$DSL"
ctl set vm "$VMID" '/VM/TEMPLATE/DISK[DISK_ID=0]/SIZE' 1024
ctl set vm "$VMID" '/VM/TEMPLATE/DISK[DISK_ID=0]/ORIGINAL_SIZE' 1024

mkdir -p "$DSD/104" "$DSD/105" "$work/lock" "$work/home"
if [ ! -f "$IMG0" ]; then
    qemu-img create -q -f qcow2 "$IMG0" 1G
    for ((i = 0; i < 8; i++)); do
        qemu-io -f qcow2 -c "write -q -P $((i + 1)) $((i * 128))M 64M" "$IMG0" >/dev/null
    done
fi
[ -f "$IMG1" ] || qemu-img create -q -f qcow2 "$IMG1" 16M

cat >"$work/one/var/remotes/etc/qcow2c/qcow2c.conf" <<EOF
# written by bench/tm-actions.sh
ONE_XMLRPC="$ONE_XMLRPC"
ONE_AUTH="$work/standin/one_auth"
SSH_OPTIONS="-F $work/ssh/ssh_config"
LOCK_DIR="$work/lock"
EOF
{
    cat "$work/one/var/remotes/etc/qcow2c/qcow2c.conf"
    echo 'DEBUG="yes"'
} >"$work/qcow2c-debug.conf"
# monitord: nothing listens on the discard port; a datagram costs the same
mkdir -p "$work/one/etc"
printf 'NETWORK = [\n  ADDRESS = "::",\n  MONITOR_ADDRESS = "auto",\n  PORT = 9,\n  THREADS = 8,\n  PUBKEY = "",\n  PRIKEY = ""\n]\n' \
    >"$work/one/etc/monitord.conf"

# The monitored datastore: $nvms VM directories, each a copy (hard links)
# of one of four, as clone and ln leave them: disk.0 -> disk.0.snap/0 (an
# overlay), in every other one a volatile disk.1, in one of four a snapshot
# (disk.0 -> disk.0.snap/1 over 0).
if [ ! -d "$MONDIR/$((nvms - 1))" ]; then
    rm -rf "$MONDIR" "$work/mon/tmpl"
    for k in 0 1 2 3; do
        d=$work/mon/tmpl/$k
        mkdir -p "$d/disk.0.snap"
        ln -s . "$d/disk.0.snap/disk.0.snap"
        qemu-img create -q -f qcow2 "$d/disk.0.snap/0" 64M
        if [ "$k" = 3 ]; then
            qemu-img create -q -f qcow2 -F qcow2 -b disk.0.snap/0 "$d/disk.0.snap/1"
            ln -s disk.0.snap/1 "$d/disk.0"
        else
            ln -s disk.0.snap/0 "$d/disk.0"
        fi
        if [ $((k % 2)) = 1 ]; then head -c $((k << 20)) /dev/zero >"$d/disk.1"; fi
    done
    mkdir -p "$MONDIR"
    for ((i = 0; i < nvms; i++)); do
        cp -al "$work/mon/tmpl/$((i % 4))" "$MONDIR/$i"
    done
fi
"$build/harness/ds-msg" "$src_tree/tests/fixtures/oned/tm/monitor/2/stdin.decoded.xml" \
    --subst "/var/lib/one//datastores=$MONLOC" >"$work/monitor.msg"

# ---------------------------------------------------------------- stock replica

# Answers of the Ruby CLI calls the stock actions make (xpath.rb prints each
# value followed by a NUL).
mkdir -p "$STOCK/tm/qcow2" "$STOCK/ans" "$STOCK/bin"
ln -sfn "$(command -v cat)" "$STOCK/bin/ruby-stub"
"$build/harness/standin-ctl" "$work/standin" get vm "$VMID" >"$STOCK/ans/vm.xml"
printf '%s\0' 1024 qcow2 1024 "" "" >"$STOCK/ans/clone.xpath"
printf '%s\0' "" "" "" "" >"$STOCK/ans/ds-nfs.xpath"
echo '<DATASTORE><ID>105</ID></DATASTORE>' >"$STOCK/ans/ds.xml"
echo '{"DATASTORE_POOL":{"DATASTORE":[{"ID":"104","TEMPLATE":{}},{"ID":"105","TEMPLATE":{}}]}}' \
    >"$STOCK/ans/ds-list.json"
printf '%s\0' "$IMG0" YES qcow2 >"$STOCK/ans/snap.xpath"
printf '%s\0' "$MONLOC" "" 1 >"$STOCK/ans/monitor.xpath"
if ! command -v nc >/dev/null; then
    # nc -u -w1 ADDRESS PORT: the datagram, without the 1 s wait
    cat >"$STOCK/bin/nc" <<'EOF'
#!/bin/bash
exec 3>"/dev/udp/$3/$4" && cat >&3
EOF
    chmod 755 "$STOCK/bin/nc"
fi

# What the benchmarked actions use of src/tm_mad/tm_common.sh and
# src/mad/sh/scripts_common.sh (f847cf2e), command for command.
cat >"$STOCK/tm/tm_common.sh" <<'EOF'
# replica: the parts of OpenNebula's tm_common.sh + scripts_common.sh used here
export LANG=C
export PATH=/bin:/sbin:/usr/bin:$PATH
AWK=${AWK:-awk}
DU=${DU:-du}
GREP=${GREP:-grep}
QEMU_IMG=${QEMU_IMG:-qemu-img}
SED=${SED:-sed -r}
SSH=${SSH:-ssh}
SCRIPT_NAME=`basename -- $0`
ONE_LOCAL_VAR=$STOCK_VAR
DS_DIR="${DS_DIR:-$ONE_LOCAL_VAR/datastores}"
SUDO_SED_FSTAB='flock -w 5 /etc/fstab sudo sed -i -f /proc/self/fd/0 /etc/fstab'

# one Ruby process of the stock driver (onevm, onedatastore, xpath.rb)
function ruby_stub { ruby-stub "$STOCK_ANS/$1"; }

function fix_dir_slashes { dirname "$1/file" | $SED 's:/+:/:g'; }
function log_function { echo "$1: $SCRIPT_NAME: $2" 1>&2; }
function log_info { log_function "INFO" "$1"; }
function log_error { log_function "ERROR" "$1"; }
function log { log_info "$1"; }
function error_message { echo "$1" 1>&2; }
function arg_host { echo $1 | $SED 's/^([^:]*):.*$/\1/'; }
function arg_path
{
    ARG_PATH=`echo $1 | $SED 's/^[^:]*:(.*)$/\1/'`
    if [ "$2" = "NOFIX" ]; then
        echo "$ARG_PATH"
    else
        fix_dir_slashes "$ARG_PATH"
    fi
}
function is_yes { [[ "$1" =~ ^(yes|YES|true|TRUE)$ ]]; }
function image_format { $QEMU_IMG info $1 2>/dev/null | grep -Po '(?<=^file format: )\w+'; }

function monitor_and_log
{
    EXEC_OUT="$(bash -s 2>/dev/null <<EOT
export LANG=C
export LC_ALL=C
set -xv
$1
EOT
)"
    EXEC_RC=$?
    if [ $EXEC_RC -ne 0 ]; then
        log_error "Command \"$2\" failed: $EXEC_OUT"
        exit $EXEC_RC
    fi
    echo "$EXEC_OUT"
}

function ssh_exec_and_log_no_error
{
    SSH_EXEC_ERR=`$SSH $1 bash -s 2>&1 1>/dev/null <<EOT
export LANG=C
export LC_ALL=C
$2
EOT`
    SSH_EXEC_RC=$?
    if [ $SSH_EXEC_RC -ne 0 ] && [ $SSH_EXEC_RC != "$4" ]; then
        log_error "Command \"$2\" failed: $SSH_EXEC_ERR"
        error_message "$3"
    fi
    return $SSH_EXEC_RC
}

function ssh_exec_and_log
{
    ssh_exec_and_log_no_error "$@"
    EXEC_RC=$?
    if [ "$EXEC_RC" != "0" ]; then
        exit $EXEC_RC
    fi
}

function ssh_make_path
{
    SSH_EXEC_ERR=`$SSH $1 bash -s 2>&1 1>/dev/null <<EOT
set -e -o pipefail

if [ ! -d $2 ]; then
    mkdir -p $2
fi
EOT`
    SSH_EXEC_RC=$?
    if [ $SSH_EXEC_RC -ne 0 ]; then
        error_message "Error creating directory $2 at $1: $SSH_EXEC_ERR"
        exit $SSH_EXEC_RC
    fi
}

function disable_local_monitoring
{
    SSH_EXEC_ERR=`$SSH $1 bash -s 2>&1 1>/dev/null <<EOT
set -e -o pipefail

MONITOR_FN="\$(dirname $2)/.monitor"

# remove .monitor file
rm -f "\\${MONITOR_FN}"

EOT`
    SSH_EXEC_RC=$?
    if [ $SSH_EXEC_RC -ne 0 ]; then
        error_message "Error creating $2/.monitor at $1: $SSH_EXEC_ERR"
        exit $SSH_EXEC_RC
    fi
}

function autonfs_cleanup_command {
    # onedatastore list --json (Ruby) | jq
    ANFS_DATASTORES="$(ruby_stub ds-list.json | jq -r '.DATASTORE_POOL.DATASTORE[] | select(.TEMPLATE.NFS_AUTO_ENABLE // "no" | ascii_downcase == "yes").ID')"

    cat <<EOT
autonfs_remove_fstab() {
    DS_BASE_PATH="\$1"

    FSTAB_LINE_REGEX="\\S\\+ \$DS_BASE_PATH nfs .*"
    echo "\|^\${FSTAB_LINE_REGEX}$|d" | $SUDO_SED_FSTAB
}

# Clean no-longer-existing datastores
NFS_MOUNTED_DSS="\$({ findmnt -nt nfs4; findmnt -nt nfs; } | grep '^$DS_DIR/[0-9]\\+\\s' | cut -f1 -d' ' | awk -F/ '{print \$NF}')" || true
for ds in \$NFS_MOUNTED_DSS; do
    DS_BASE_PATH="$DS_DIR/\$ds"
    if test -f "\$DS_BASE_PATH/.automounted" && ! echo "$ANFS_DATASTORES" | grep -q "^\$ds$"; then
        timeout -s KILL 30s sudo umount "\$DS_BASE_PATH" || continue
        autonfs_remove_fstab \$DS_BASE_PATH
        rmdir "\$DS_BASE_PATH"
    fi
done
EOT
}

function autonfs_mount_command {
    DSID="$1"
    ANFS_ENABLE="$2"
    ANFS_HOST="$3"
    ANFS_PATH="$4"
    ANFS_OPTS="$5"

    DS_BASE_PATH="$DS_DIR/$DSID"
    FSTAB_LINE="$ANFS_HOST:$ANFS_PATH $DS_BASE_PATH nfs ${ANFS_OPTS:-defaults} 0 0"

    cat <<EOT
`autonfs_cleanup_command`

set -e
# Mount the required datastore
if [ "${ANFS_ENABLE,,}" = 'yes' ]; then
    autonfs_remove_fstab $DS_BASE_PATH
    grep -qe "^$FSTAB_LINE$" /etc/fstab || echo "\\\$a\\
    $FSTAB_LINE" | $SUDO_SED_FSTAB
    mkdir -p "$DS_BASE_PATH"
    timeout -s KILL 30s sudo mount "$DS_BASE_PATH"
    touch "$DS_BASE_PATH/.automounted"
fi
set +e
EOT
}

function qcow_dir_cmd
{
    local SRC_PATH="$1"
    local DST_PATH="$2"
    local ACTION="$3"
    local DST_FILE

    DST_FILE=$(basename "$DST_PATH")
    DST_DIR=$(dirname "$DST_PATH")

    echo "set -e -o pipefail"
    echo "pushd ${DST_DIR}"
    echo "rm -rf ${DST_PATH}.snap"
    echo "mkdir -p ${DST_PATH}.snap"
    if [ "$ACTION" = "convert" ]; then
        echo "qemu-img convert -q -O qcow2 $SRC_PATH $DST_PATH.snap/0"
    elif [ "$ACTION" = "create" ]; then
        echo "B_FORMAT=\$($QEMU_IMG info $SRC_PATH | grep '^file format:' | awk '{print \$3}' || :)"
        echo "$QEMU_IMG create -o backing_fmt=\${B_FORMAT:-raw} -b $SRC_PATH -f qcow2 $QCOW2_OPTIONS ${DST_PATH}.snap/0"
    fi
    echo "rm -f $DST_PATH"
    echo "cd ${DST_PATH}.snap"
    echo "ln -sf . ${DST_FILE}.snap"
    echo "ln -sf ${DST_FILE}.snap/0 $DST_PATH"
    echo "popd"
}
EOF

# src/tm_mad/qcow2/clone
cat >"$STOCK/tm/qcow2/clone" <<'EOF'
#!/bin/bash
SRC=$1
DST=$2
VMID=$3
DSID=$4
. "$STOCK/tm/tm_common.sh"
DRIVER_PATH=$(dirname $0)
DST_PATH=$(arg_path $DST)
DST_HOST=$(arg_host $DST)
DST_DIR=$(dirname $DST_PATH)
SRC_ARG_PATH=$(arg_path $SRC)
DST_DS_PATH="$(dirname "$(dirname "$(dirname "$DST_PATH")")")"
SRC_DS_PATH="$(dirname "$(dirname "$SRC_ARG_PATH")")"
SRC_PATH="${DST_DS_PATH}${SRC_ARG_PATH##$SRC_DS_PATH}"
DISK_ID="$(basename "${DST_PATH}" | cut -d. -f2)"
unset i j XPATH_ELEMENTS
while IFS= read -r -d '' element; do
    XPATH_ELEMENTS[i++]="$element"
done < <(ruby_stub vm.xml | ruby_stub clone.xpath)
while IFS= read -r -d '' element; do
    XPATH_ELEMENTS[i++]="$element"
done < <(ruby_stub ds.xml | ruby_stub ds-nfs.xpath)
SIZE="${XPATH_ELEMENTS[j++]}"
FORMAT="${XPATH_ELEMENTS[j++]}"
ORIGINAL_SIZE="${XPATH_ELEMENTS[j++]}"
QCOW2_STANDALONE="${XPATH_ELEMENTS[j++]}"
SPARSE="${XPATH_ELEMENTS[j++]}"
ANFS_ENABLE="${XPATH_ELEMENTS[j++]}"
ANFS_HOST="${XPATH_ELEMENTS[j++]}"
ANFS_PATH="${XPATH_ELEMENTS[j++]}"
ANFS_OPTS="${XPATH_ELEMENTS[j++]}"
DS_SYS_ID="$(dirname "$DST_DIR" | xargs basename)"
while IFS= read -r -d '' element; do
    XPATH_ELEMENTS[i++]="$element"
done < <(ruby_stub ds.xml | ruby_stub ds-nfs.xpath)
SYS_ANFS_ENABLE="${XPATH_ELEMENTS[j++]}"
SYS_ANFS_HOST="${XPATH_ELEMENTS[j++]}"
SYS_ANFS_PATH="${XPATH_ELEMENTS[j++]}"
SYS_ANFS_OPTS="${XPATH_ELEMENTS[j++]}"
if [ -n "$ORIGINAL_SIZE" ] && [ "$SIZE" -gt "$ORIGINAL_SIZE" ]; then
    RESIZE_CMD="qemu-img resize ${DST_PATH} ${SIZE}M"
fi
if [ "$FORMAT" = "qcow2" ] && is_yes "${QCOW2_STANDALONE}"; then
    CLONE_CMD=$(qcow_dir_cmd "$SRC_PATH" "$DST_PATH" "convert")
elif [ "$FORMAT" = "qcow2" ]; then
    CLONE_CMD=$(qcow_dir_cmd $SRC_PATH $DST_PATH "create")
else
    CLONE_CMD="cp $SRC_PATH $DST_PATH"
fi
NFS_MOUNT_CMD=$(cat <<EOT
    `autonfs_mount_command "$DSID" "$ANFS_ENABLE" "$ANFS_HOST" "$ANFS_PATH" "$ANFS_OPTS"`
    `autonfs_mount_command "$DS_SYS_ID" "$SYS_ANFS_ENABLE" "$SYS_ANFS_HOST" "$SYS_ANFS_PATH" "$SYS_ANFS_OPTS"`
EOT
)
ssh_exec_and_log "$DST_HOST" "$NFS_MOUNT_CMD" "Error setting up NFS mounts"
ssh_make_path $DST_HOST $DST_DIR
disable_local_monitoring $DST_HOST $DST_DIR
CLONE_RESIZE_CMD=$(cat <<EOT
    $CLONE_CMD
    $RESIZE_CMD
EOT
)
log "Cloning $SRC_PATH in $DST"
ssh_exec_and_log "$DST_HOST" "$CLONE_RESIZE_CMD" "Error copying $SRC to $DST"
exit 0
EOF

# src/tm_mad/qcow2/ln
cat >"$STOCK/tm/qcow2/ln" <<'EOF'
#!/bin/bash
SRC=$1
DST=$2
_VMID=$3
DSID=$4
DRIVER_PATH=$(dirname $0)
. "$STOCK/tm/tm_common.sh"
DST_PATH=$(arg_path $DST)
DST_HOST=$(arg_host $DST)
DST_DIR=$(dirname $DST_PATH)
SRC_ARG_PATH=$(arg_path $SRC)
DST_DS_PATH="$(dirname "$(dirname "$(dirname "$DST_PATH")")")"
SRC_DS_PATH="$(dirname "$(dirname "$SRC_ARG_PATH")")"
SRC_PATH="${DST_DS_PATH}${SRC_ARG_PATH##$SRC_DS_PATH}"
SNAP_DIR="${SRC_PATH}.snap"
SNAP_NAME="$(basename "$SNAP_DIR")"
SRC_FORMAT="$(image_format "$SRC_PATH")"
unset i j XPATH_ELEMENTS
while IFS= read -r -d '' element; do
    XPATH_ELEMENTS[i++]="$element"
done < <(ruby_stub ds.xml | ruby_stub ds-nfs.xpath)
ANFS_ENABLE="${XPATH_ELEMENTS[j++]}"
ANFS_HOST="${XPATH_ELEMENTS[j++]}"
ANFS_PATH="${XPATH_ELEMENTS[j++]}"
ANFS_OPTS="${XPATH_ELEMENTS[j++]}"
DS_SYS_ID="$(dirname "$DST_DIR" | xargs basename)"
while IFS= read -r -d '' element; do
    XPATH_ELEMENTS[i++]="$element"
done < <(ruby_stub ds.xml | ruby_stub ds-nfs.xpath)
SYS_ANFS_ENABLE="${XPATH_ELEMENTS[j++]}"
SYS_ANFS_HOST="${XPATH_ELEMENTS[j++]}"
SYS_ANFS_PATH="${XPATH_ELEMENTS[j++]}"
SYS_ANFS_OPTS="${XPATH_ELEMENTS[j++]}"
NFS_MOUNT_CMD=$(cat <<EOT
    `autonfs_mount_command "$DSID" "$ANFS_ENABLE" "$ANFS_HOST" "$ANFS_PATH" "$ANFS_OPTS"`
    `autonfs_mount_command "$DS_SYS_ID" "$SYS_ANFS_ENABLE" "$SYS_ANFS_HOST" "$SYS_ANFS_PATH" "$SYS_ANFS_OPTS"`
EOT
)
ssh_exec_and_log "$DST_HOST" "$NFS_MOUNT_CMD" "Error setting up NFS mounts"
ssh_make_path $DST_HOST $DST_DIR
log "Linking $SRC_PATH in $DST"
if [ "$SRC_FORMAT" = "raw" ]; then
    CMD=$(cat <<EOT
ln -sf ${SRC_PATH} ${DST_PATH}
EOT
)
else
    CMD=$(cat <<EOT
set -ex -o pipefail
mkdir -p "${SNAP_DIR}"
if [ ! -L "${SNAP_DIR}/${SNAP_NAME}" ]; then
    ln -s . "${SNAP_DIR}/${SNAP_NAME}"
fi
SNAP="\$(ls ${SNAP_DIR} | grep '^[[:digit:]]*$' | sort -n | tail -n 1 || :)"
if [ -z "\${SNAP}" ]; then
    SNAP=0
    ln -sf "$SRC_PATH" "$SNAP_DIR/0"
fi
rm -f "${DST_PATH}"
ln -sf "$SNAP_DIR/\$SNAP" "$DST_PATH"
rm -rf "${DST_PATH}.snap"
EOT
)
fi
ssh_exec_and_log $DST_HOST "$CMD" "Error linking $SRC to $DST"
exit 0
EOF

# src/tm_mad/qcow2/delete -> ../common/delete
cat >"$STOCK/tm/qcow2/delete" <<'EOF'
#!/bin/bash
DST=$1
VMID=$2
DSID=$3
. "$STOCK/tm/tm_common.sh"
DST_PATH=`arg_path $DST`
DST_HOST=`arg_host $DST`
log "Deleting $DST_PATH"
delete_file=$(cat <<EOT
[ -e "$DST_PATH" ] || exit 0
times=10
function="rm -rf $DST_PATH"
count=1
ret=\$(\$function)
error=\$?
while [ \$count -lt \$times -a "\$error" != "0" ]; do
    sleep 1
    count=\$(( \$count + 1 ))
    ret=\$(\$function)
    error=\$?
done
[ "x\$error" = "x0" ]
EOT
)
ssh_exec_and_log $DST_HOST "$delete_file" "Error deleting $DST_PATH"
exit 0
EOF

# src/tm_mad/qcow2/mvds (shared datastore: the disk is already in place)
cat >"$STOCK/tm/qcow2/mvds" <<'EOF'
#!/bin/bash
exit 0
EOF

# src/tm_mad/qcow2/snap_create
cat >"$STOCK/tm/qcow2/snap_create" <<'EOF'
#!/bin/bash
SRC=$1
SNAP_ID=$2
VMID=$3
DRIVER_PATH=$(dirname $0)
. "$STOCK/tm/tm_common.sh"
SRC_PATH=$(arg_path $SRC)
SRC_HOST=$(arg_host $SRC)
DISK_ID=$(basename ${SRC} | cut -d. -f2)
unset i j XPATH_ELEMENTS
while IFS= read -r -d '' element; do
    XPATH_ELEMENTS[i++]="$element"
done < <(ruby_stub vm.xml | ruby_stub snap.xpath)
DISK_SRC="${XPATH_ELEMENTS[j++]}"
CLONE="${XPATH_ELEMENTS[j++]}"
FORMAT="${XPATH_ELEMENTS[j++]}"
SYSTEM_DS_PATH=$(dirname ${SRC_PATH})
SYSTEM_DS_DISK_PATH="${SYSTEM_DS_PATH}/disk.${DISK_ID}"
if [ "$CLONE" = "YES" ]; then
    DISK_PATH="${SYSTEM_DS_DISK_PATH}"
    DISK_PATH_SHORT="$(basename ${SYSTEM_DS_DISK_PATH})"
else
    DISK_PATH=$DISK_SRC
    DISK_PATH_SHORT=$DISK_PATH
fi
SNAP_DIR="${DISK_PATH}.snap"
SNAP_DIR_SHORT="${DISK_PATH_SHORT}.snap"
if [ "$FORMAT" = "qcow2" ]; then
    NEXT_SNAP_ID=$((SNAP_ID+1))
    SNAP_PATH="${SNAP_DIR}/${NEXT_SNAP_ID}"
    SNAP_PATH_SHORT="${SNAP_DIR_SHORT}/${NEXT_SNAP_ID}"
    CREATE_CMD=$(cat <<EOT
        PREVIOUS_SNAP=\$(readlink $SYSTEM_DS_DISK_PATH)
        cd "${SNAP_DIR}"
        if [ -e "${SNAP_PATH}" ]; then
            echo "Snapshot file ${SNAP_PATH} already exists." >&2
            exit 1
        fi
        qemu-img create -f qcow2 -o backing_fmt=qcow2 -b "\${PREVIOUS_SNAP}" "${SNAP_PATH}"
        ln -sf $SNAP_PATH_SHORT $SYSTEM_DS_DISK_PATH
EOT
)
else
    SNAP_PATH="${SNAP_DIR}/${SNAP_ID}"
    CREATE_CMD="cp \"${DISK_PATH}\" \"${SNAP_PATH}\""
fi
SNAP_CMD=$(cat <<EOT
set -ex -o pipefail
mkdir -p "${SNAP_DIR}"
${CREATE_CMD}
EOT
)
ssh_exec_and_log "${SRC_HOST}" "${SNAP_CMD}" \
                 "Error creating snapshot ${SNAP_PATH}"
EOF

# src/tm_mad/qcow2/monitor, with send_to_monitor (scripts_common.sh)
cat >"$STOCK/tm/qcow2/monitor" <<'EOF'
#!/bin/bash
. "$STOCK/tm/tm_common.sh"
DRIVER_PATH=$(dirname $0)
DRV_ACTION=`cat -`
DS_ID=$1
unset i XPATH_ELEMENTS
while IFS= read -r -d '' ELEMENT; do
    XPATH_ELEMENTS[i++]="$ELEMENT"
done < <(ruby_stub monitor.xpath)
unset i
BASE_PATH="${XPATH_ELEMENTS[i++]}/$DS_ID"
BRIDGE_LIST="${XPATH_ELEMENTS[i++]}"
MONITOR_VM_DISKS="${XPATH_ELEMENTS[i++]}"
MONITOR_SCRIPT=$(cat <<EOT
if [ ! -d $BASE_PATH ]; then
    mkdir -p $BASE_PATH
fi

USED_MB=\$(df -B1M -P $BASE_PATH 2>/dev/null | tail -n 1 | awk '{print \$3}')
TOTAL_MB=\$(df -B1M -P $BASE_PATH 2>/dev/null | tail -n 1 | awk '{print \$2}')
FREE_MB=\$(df -B1M -P $BASE_PATH 2>/dev/null | tail -n 1 | awk '{print \$4}')

if [ -z "\$USED_MB" -o -z "\$TOTAL_MB" -o -z "\$FREE_MB" ]; then
    MSG="Empty value found"
    echo "\$MSG: USED_MB=\$USED_MB, TOTAL_MB=\$TOTAL_MB, FREE_MB=\$FREE_MB"
    exit 1
fi

echo "USED_MB=\$USED_MB"
echo "FREE_MB=\$FREE_MB"
echo "TOTAL_MB=\$TOTAL_MB"

EOT
)
MONITOR_VM_SCRIPT=$(cat <<EOT

VMS=\$(ls "$BASE_PATH" | grep '^[0-9]\+$')

for VM in \$VMS; do
    VMDIR="${BASE_PATH}/\${VM}"
    DISKS=\$(ls "\$VMDIR" 2>/dev/null | grep '^disk\.[0-9]\+$')

    [ -z \$DISKS ] && continue

    VM_MONITOR=""

    for DISK in \$DISKS; do
        DISK_ID="\$(echo "\$DISK" | cut -d. -f2)"
        DISK_SIZE="\$(du -mL "\${VMDIR}/\${DISK}" 2>/dev/null | awk '{print \$1}')"
        SNAP_DIR="\${VMDIR}/\${DISK}.snap"

        [ -z "\$DISK_SIZE" ] && continue

        VM_MONITOR="\${VM_MONITOR} DISK_SIZE = [ ID=\${DISK_ID}, SIZE=\${DISK_SIZE}]"

        if [ -e "\$SNAP_DIR" ]; then
            SNAPS="\$(ls "\$SNAP_DIR" 2>/dev/null | grep '^[0-9]$')"

            for SNAP in \$SNAPS; do
                SNAP_SIZE="\$(du -mL "\${SNAP_DIR}/\${SNAP}" 2>/dev/null | awk '{print \$1}')"
                [ -z "\$SNAP_SIZE" ] && continue

                VM_MONITOR="\${VM_MONITOR}\nSNAPSHOT_SIZE = "\
                    "[ ID=\${SNAP}, DISK_ID=\${DISK_ID}, SIZE=\${SNAP_SIZE}]"
            done
        fi
    done

    VM_MONITOR_B64="\$(echo \$VM_MONITOR | base64 -w 0)"
    echo "VM=[ID=\$VM, MONITOR=\"\$VM_MONITOR_B64\"] "
done

EOT
)
MONITOR_DATA=$(monitor_and_log "$MONITOR_SCRIPT" "Monitor script" 2>&1)
MONITOR_STATUS=$?
if [ $MONITOR_VM_DISKS -eq 1 ]; then
    MONITOR_DATA_VMS=$(monitor_and_log "$MONITOR_VM_SCRIPT" "VM disks monitor script" 2>&1)
    MONITOR_VMS_STATUS=$?
fi
echo $MONITOR_DATA

function send_to_monitor {
    msg_type="$1"
    msg_result="$2"
    msg_oid="$3"
    msg_payload="$4"
    if [ "$msg_result" = "0" -o "$msg_result" = "SUCCESS" ]; then
        msg_result="SUCCESS"
    else
        msg_result="FAILURE"
    fi
    if [ $msg_oid = "-1" ]; then
        msg_ts=0
    else
        msg_ts=$(date +%s)
    fi
    if [ -f "/var/tmp/one_db/etc/monitord.conf" ]; then
        mon_conf="/var/tmp/one_db/etc/monitord.conf"
    elif [ -f "/etc/one/monitord.conf" ]; then
        mon_conf="/etc/one/monitord.conf"
    elif [ -n "$ONE_LOCATION" ] && [ -f "$ONE_LOCATION/etc/monitord.conf" ]; then
        mon_conf="$ONE_LOCATION/etc/monitord.conf"
    else
        return 0
    fi
    mon_address=$(cat $mon_conf | grep MONITOR_ADDRESS | cut -d , -f1 | \
        awk '{print $3}' | sed 's/^"\(.*\)"$/\1/')
    mon_port=$(cat $mon_conf | grep PORT | cut -d , -f1 | awk '{print $3}')
    mon_key=$(cat $mon_conf | grep PUBKEY | cut -d , -f1 | awk '{print $3}' | \
         sed 's/^"\(.*\)"$/\1/')
    if [[ $mon_address == *"auto"* ]]; then
        mon_address="127.0.0.1"
    fi
    # ruby -e "require 'zlib'; puts Zlib::Deflate.deflate(STDIN.read)"
    payload_b64="$(echo $msg_payload | ruby-stub | base64 -w 0)"
    echo "$msg_type $msg_result $msg_oid $msg_ts $payload_b64" |
        nc -u -w1 $mon_address $mon_port
}

if [ $MONITOR_VM_DISKS -eq 1 ]; then
    send_to_monitor MONITOR_VM $MONITOR_VMS_STATUS -1 "$MONITOR_DATA_VMS"
fi
exit $MONITOR_STATUS
EOF
chmod 755 "$STOCK"/tm/qcow2/*

# ---------------------------------------------------------------- setups

rm_disk0() { rm -rf "$VMDIR/disk.0" "$VMDIR/disk.0.snap"; }
rm_disk1() { rm -rf "$VMDIR/disk.1" "$VMDIR/disk.1.snap" "$IMG1.snap"; }
# disk.0 as clone leaves it
clone_layout() {
    rm_disk0
    mkdir -p "$VMDIR/disk.0.snap"
    qemu-img create -q -f qcow2 -F qcow2 -b "$IMG0" "$VMDIR/disk.0.snap/0"
    ln -s . "$VMDIR/disk.0.snap/disk.0.snap"
    ln -s disk.0.snap/0 "$VMDIR/disk.0"
}
# disk.1 as ln leaves it
ln_layout() {
    rm_disk1
    mkdir -p "$IMG1.snap"
    ln -s . "$IMG1.snap/${IMG1##*/}.snap"
    ln -s "$IMG1" "$IMG1.snap/0"
    ln -s "$IMG1.snap/0" "$VMDIR/disk.1"
}
no_setup() { :; }

# ---------------------------------------------------------------- runs

stock_env=(ONE_LOCATION="$work/one" STOCK="$STOCK" STOCK_VAR="$VAR" STOCK_ANS="$STOCK/ans"
    SSH="ssh -F $work/ssh/ssh_config")
stock_path=$STOCK/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# run_pair ACTION SETUP STDIN ARGS...: both variants, then the DEBUG run.
run_pair() {
    local action=$1 setup=$2 in=$3 dbg
    shift 3
    echo "# $action" >&2
    BENCH_ENV_EXTRA=(ONE_LOCATION="$work/one")
    BENCH_PATH=
    bench_measure "$action.qcow2c" "$setup" "$in" "$R/$action" "$@"
    BENCH_ENV_EXTRA=("${stock_env[@]}")
    BENCH_PATH=$stock_path
    bench_measure "$action.stock" "$setup" "$in" "$STOCK/tm/qcow2/$action" "$@"
    # what the action says of itself with DEBUG=yes
    dbg=$BENCH_RES/$action.qcow2c.debug
    "$setup"
    BENCH_ENV_EXTRA=(ONE_LOCATION="$work/one" QCOW2C_CONF="$work/qcow2c-debug.conf")
    BENCH_PATH=
    bench_env "$R/$action" "$@" <"$in" >/dev/null 2>"$dbg" || true
    sed -n 's/^DEBUG: .* \([0-9][0-9]*\) child processes$/\1/p' "$dbg" >"$BENCH_RES/$action.qcow2c.selfchildren"
    grep -c '^DEBUG: .*: on [^ ]*: ' "$dbg" >"$BENCH_RES/$action.qcow2c.remote" || true
}

# bench_env reads BENCH_ENV_EXTRA, BENCH_PATH and BENCH_HOME
BENCH_HOME=$work/home

run_pair clone rm_disk0 /dev/null "frontend:$IMG0_ARG" "node1:$DSL/104/$VMID/disk.0" "$VMID" 105
run_pair ln rm_disk1 /dev/null "frontend:$IMG1_ARG" "node1:$DSL/104/$VMID/disk.1" "$VMID" 105
run_pair delete clone_layout /dev/null "node1:$DSL/104/$VMID/disk.0" "$VMID" 105
run_pair mvds ln_layout /dev/null "node1:$DSL/104/$VMID/disk.1" "$IMG1_ARG" "$VMID" 105
ctl set vm "$VMID" /VM/LCM_STATE 51       # DISK_SNAPSHOT_POWEROFF
run_pair snap_create clone_layout /dev/null "node1:$DSL/104/$VMID/disk.0" 0 "$VMID" 105
ctl set vm "$VMID" /VM/LCM_STATE 3
saved_runs=$BENCH_RUNS
BENCH_RUNS=$monitor_runs
run_pair monitor no_setup "$work/monitor.msg" 106
BENCH_RUNS=$saved_runs

# ---------------------------------------------------------------- the table

# Published figures of the real stock driver under oned (stock-costs.md):
# wall s, fe execs, fe procs, Ruby, ssh, host execs, peak RSS MB.
lab() {
    case $1 in
        clone) echo "7.68 48 64 8 4 17 39" ;;
        ln) echo "3.31 41 59 6 3 22 39" ;;
        delete) echo "0.32 10 13 0 1 3 7.6" ;;
        mvds) echo "0.01 3 1 0 0 0 2.9" ;;
        monitor) echo "3.86 1191 2083 2 0 0 16" ;;
        *) echo "- - - - - - -" ;;
    esac
}

fmt_row() { # LABEL WALL EXECS PROCS RUBY SSH HOST RSS [NOTE]
    printf '  %-22s %8s %9s %9s %5s %5s %10s %9s  %s\n' "$@"
}

echo
echo "# wall: seconds, median; execs/procs: front-end process tree; host: programs sshd ran;"
echo "# RSS: MB, largest process. ratio = qcow2c / stock (replica). monitor: $nvms VM directories."
fmt_row "" "wall s" "fe execs" "fe procs" "ruby" "ssh" "host execs" "RSS MB" ""
for a in clone ln delete mvds snap_create monitor; do
    echo "$a"
    for v in qcow2c stock; do
        label=$([ "$v" = qcow2c ] && echo "qcow2c" || echo "stock (replica)")
        st=$(bench_get "$a.$v" status)
        if [ "$st" != ok ]; then
            fmt_row "$label" - - - - - - - "$st"
            continue
        fi
        note=""
        if [ "$v" = qcow2c ]; then
            note="reports $(bench_get "$a.qcow2c" selfchildren) child processes, $(bench_get "$a.qcow2c" remote) remote commands"
        elif [ "$(bench_get "$a.stock" ruby)" != 0 ]; then
            note="each ruby = one Ruby CLI process of the real driver, here a cat"
        fi
        fmt_row "$label" "$(printf '%.3f' "$(bench_get "$a.$v" wall)")" "$(bench_get "$a.$v" execs)" \
            "$(bench_get "$a.$v" procs)" "$(bench_get "$a.$v" ruby)" "$(bench_get "$a.$v" ssh)" \
            "$(bench_get "$a.$v" host)" "$(bench_get "$a.$v" rss)" "$note"
    done
    if [ "$(bench_get "$a.qcow2c" status)" = ok ] && [ "$(bench_get "$a.stock" status)" = ok ]; then
        r() { bench_ratio "$(bench_get "$a.qcow2c" "$1")" "$(bench_get "$a.stock" "$1")"; }
        fmt_row "ratio" "$(r wall)" "$(r execs)" "$(r procs)" "" "$(r ssh)" "$(r host)" "$(r rss)" ""
    fi
    read -r lw le lp lr ls lh lm < <(lab "$a")
    if [ "$lw" != - ]; then
        fmt_row "stock (lab, real oned)" "$lw" "$le" "$lp" "$lr" "$ls" "$lh" "$lm" \
            "$([ "$a" = monitor ] && echo "published for 201 VM directories, not $nvms")"
        if [ "$(bench_get "$a.qcow2c" status)" = ok ] && [ "$a" != monitor ]; then
            fmt_row "ratio to lab" "$(bench_ratio "$(bench_get "$a.qcow2c" wall)" "$lw")" \
                "$(bench_ratio "$(bench_get "$a.qcow2c" execs)" "$le")" \
                "$(bench_ratio "$(bench_get "$a.qcow2c" procs)" "$lp")" "" "" "" \
                "$(bench_ratio "$(bench_get "$a.qcow2c" rss)" "$lm")" ""
        fi
    else
        fmt_row "stock (lab, real oned)" - - - - - - - "not in the published figures"
    fi
done
echo
echo "# stock (replica): the stock shell sequence without OpenNebula's Ruby CLI (absent here);"
echo "# the real driver also pays one Ruby start (0.3-0.6 s, ~40 MB) per ruby count: see the lab rows."
echo "# lab: shared/stock-costs.md (oned 7.5.80, stock qcow2 TM, 2 shared cores); ratios only."
