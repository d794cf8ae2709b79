# shellcheck shell=bash
# tm-ssh-common.sh - TEST STAND-IN ONLY: the parts of OpenNebula's
# tm_common.sh / scripts_common.sh that the stand-ins for the stock "ssh"
# system TM (tests/harness/tm-ssh) use. Not OpenNebula's code, not for
# production: tests/e2e/lib-tm.sh installs it in REMOTES/tm/ssh of a test.
#
# Settings come from REMOTES/etc/tm/ssh/tm-ssh.conf (written by lib-tm.sh):
# SSH (the ssh command with the test's -F config), STANDIN_CTL and
# STANDIN_DIR (oned's stand-in, in place of `onevm show -x`), DS_DIR.

export LANG=C

_tmssh_conf="$(dirname "$0")/../../etc/tm/ssh/tm-ssh.conf"
if [ -f "$_tmssh_conf" ]; then
    # shellcheck disable=SC1090
    . "$_tmssh_conf"
fi
SSH=${SSH:-ssh}
TAR=${TAR:-tar}
QEMU_IMG=${QEMU_IMG:-qemu-img}
MKFS=${MKFS:-mkfs}
MKSWAP=${MKSWAP:-mkswap}
SUPPORTED_FS=${SUPPORTED_FS:-ext2,ext3,ext4,xfs}
SCRIPT_NAME=$(basename "$0")

log() {
    echo "INFO: $SCRIPT_NAME: $1" >&2
}

log_error() {
    echo "ERROR: $SCRIPT_NAME: $1" >&2
}

error_message() {
    echo "$1" >&2
}

fix_dir_slashes() {
    dirname "$1/file" | sed -r 's:/+:/:g'
}

arg_host() {
    echo "$1" | sed -r 's/^([^:]*):.*$/\1/'
}

arg_path() {
    fix_dir_slashes "$(echo "$1" | sed -r 's/^[^:]*:(.*)$/\1/')"
}

is_disk() {
    if echo "$1" | grep -q '/disk\.[0-9]\+'; then
        echo 1
    else
        echo 0
    fi
}

# The VM's LCM_STATE (stock: onevm show -x | xpath.rb).
lcm_state() {
    if [ -n "${STANDIN_CTL:-}" ]; then
        "$STANDIN_CTL" "$STANDIN_DIR" get vm "$1" /VM/LCM_STATE 2>/dev/null || true
    fi
}

# A value of the VM document ("" when absent).
vm_xpath() { # VMID XPATH
    if [ -n "${STANDIN_CTL:-}" ]; then
        "$STANDIN_CTL" "$STANDIN_DIR" get vm "$1" "$2" 2>/dev/null || true
    fi
}

# Runs SCRIPT with bash on HOST; on failure one ERROR line, then MSG as the
# reason (stock: ssh_exec_and_log, which logs a multi-line text instead).
ssh_exec_and_log() { # HOST SCRIPT [MSG]
    local err rc
    err=$($SSH "$1" bash -s 2>&1 1>/dev/null <<EOF
export LANG=C
export LC_ALL=C
$2
EOF
    )
    rc=$?
    if [ "$rc" != 0 ]; then
        log_error "Command failed on $1: $(printf '%s' "$err" | tr '\n' ' ')"
        error_message "${3:-Error executing on $1}"
        exit "$rc"
    fi
}

ssh_monitor_and_log() { # HOST SCRIPT [MSG]
    local out rc
    out=$($SSH "$1" bash -s 2>/dev/null <<EOF
$2
EOF
    )
    rc=$?
    if [ "$rc" != 0 ]; then
        error_message "${3:-Error executing on $1}"
        exit "$rc"
    fi
    printf '%s\n' "$out"
}

ssh_make_path() { # HOST DIR
    local err rc
    err=$($SSH "$1" bash -s 2>&1 1>/dev/null <<EOF
set -e -o pipefail
if [ ! -d $2 ]; then
    mkdir -p $2
fi
EOF
    )
    rc=$?
    if [ "$rc" != 0 ]; then
        error_message "Error creating directory $2 at $1: $(printf '%s' "$err" | tr '\n' ' ')"
        exit "$rc"
    fi
}

# $(dirname DIR)/.monitor gets TEXT (when different), as the stock helper.
enable_local_monitoring() { # HOST DIR TEXT
    local err rc
    err=$($SSH "$1" bash -s 2>&1 1>/dev/null <<EOF
set -e -o pipefail
MONITOR_FN="\$(dirname $2)/.monitor"
MONITOR=''
if [ -f "\${MONITOR_FN}" ]; then
    MONITOR="\$(cat "\${MONITOR_FN}" 2>/dev/null)"
fi
if [ "x\${MONITOR}" != "x$3" ]; then
    echo "$3" > "\${MONITOR_FN}"
fi
EOF
    )
    rc=$?
    if [ "$rc" != 0 ]; then
        error_message "Error creating $2/.monitor at $1: $(printf '%s' "$err" | tr '\n' ' ')"
        exit "$rc"
    fi
}
