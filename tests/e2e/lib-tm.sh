# shellcheck shell=bash
# Each case runs in a subshell on purpose, so variables it sets stay there.
# shellcheck disable=SC2030,SC2031
# Variables below are for the scripts that source this file.
# shellcheck disable=SC2034
# lib-tm.sh - what the transfer-manager (TM) end-to-end tests share: an
# OpenNebula front-end played faithfully without OpenNebula. Sourced after
# lib.sh:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/lib-tm.sh"
#   tm_setup                      # or: tm_setup --ssh-system
#   case_x() {
#       img=$(tm_image os --format qcow2 --size 64)
#       tm_vm 7 --host node1 --system-ds 0 --disk image="$img" --volatile 16:swap
#       tm_prolog 7                                  # CLONE + MKSWAP, as oned writes them
#       expect_layout node1 "$(tm_sysdir 7)" <<EOF
#       .                 dir
#       disk.0            link disk.0.snap/0
#       ...
#       EOF
#       tm_epilog 7
#   }
#
# The pieces (protocol §1-§3):
#   - qcow2c installed by install.sh into $ONE (ONE_LOCATION) and registered
#     in a copy of the stock oned.conf and vmm_execrc with --apply-conf; the
#     TM_MAD -d list of that oned.conf is the driver's allowed list;
#   - the stand-in for OpenNebula's stock "ssh" system TM (tests/harness/
#     tm-ssh) in $REMOTES/tm/ssh;
#   - oned's XML-RPC stand-in (tests/harness/oned-standin) with datastores
#     0 (system, TM qcow2c, shared), 100 (system, TM ssh) and 1 (image, DS and
#     TM qcow2c, with the TM_MAD_SYSTEM=ssh / *_SSH attributes of the captured
#     image datastore); its endpoint and credentials are in qcow2c.conf,
#     because the driver's environment has neither;
#   - hosts node1, node2 and frontend (tests/lib/hosts.sh): one sshd each on
#     127.0.0.1, node1 and node2 in their own mount namespaces. The test
#     process is the front-end (oned's host name "frontend", LOCAL_HOSTS).
#     With --ssh-system the directory of datastore 100 is private: node1,
#     node2 and the front-end each have their own; everything else (the image
#     datastore, datastore 0) is shared, as over NFS;
#   - transfer files written where oned writes them ($VMS/<id>/transfer.<seq>.
#     <op>, seq = the VM's last history record) and run by build/harness/oned-tm
#     exactly as one_tm.rb runs them (cwd $ONE_VAR = "/var/lib/one", the
#     captured driver environment plus what tmrc exports, HOME=$ONE_VAR);
#     TM commands of the VMM driver are run by oned-tm --vmm with what
#     vmm_execrc exports.
#
# Paths keep oned's spelling: DS_LOCATION is "$TEST_DIR/var/lib/one//datastores"
# (the genuine "//"); a VM's system directory is $DS_LOCATION/<ds>/<vmid>.
#
# Variables:
#   ONE REMOTES TM_CONF LOCK_DIR   the installation (TM_CONF: qcow2c.conf)
#   ONE_VAR       $TEST_DIR/var/lib/one: oned's /var/lib/one (cwd, HOME)
#   VMS           $ONE_VAR/vms: transfer files, context.sh
#   DS_LOCATION   $ONE_VAR//datastores, as oned writes it
#   IMG_DS SYS_DS SSH_DS   1, 0, 100
#   FE            frontend: oned's host name in transfer files
#   HOSTS_DIR SSH_CONFIG   tests/lib/hosts.sh's directory and ssh config
#   STANDIN_DIR   the stand-in's state (tm_get/tm_set read and edit it)
# After tm_transfer / tm_vmm (and tm_prolog...):
#   TM_FILE       the transfer file that ran
#   TM_REPLY      file (one per run): every line the driver sent to oned (LOG ..., then
#                 TRANSFER SUCCESS|FAILURE <id> <info>, or SUCCESS|FAILURE
#                 <info> for tm_vmm)
#   TM_OUTCOME    SUCCESS or FAILURE;  TM_INFO: the reply's info
#   LAST_STDOUT LAST_STDERR LAST_STATUS   the last action that ran (its own
#                 stdout, stderr and exit status), for lib.sh's checks
#   TM_TIMEOUT    (set by the test, default 600) seconds an action may run
#                 before oned-tm kills it and the call fails: a safety net
#                 for the tests; oned itself would wait for ever
#
# Functions (each says why and returns non-zero when it fails):
#   tm_setup [--ssh-system]          install, stand-in, hosts (defer'd stop)
#   tm_conf KEY VALUE                set a key of qcow2c.conf
#   tm_image NAME --format qcow2|raw --size MB [--persistent] [--type OS|DATABLOCK|CDROM]
#            [--data PATTERN]        a real image file in datastore 1 with
#                                    PATTERN (e.g. 0x5a; default tm_pattern ID)
#                                    over its first MiB, registered in the
#                                    stand-in; prints the image id
#   tm_pattern ID                    the byte pattern of image ID
#   tm_image_source ID / tm_image_file ID   SOURCE as oned writes it / the
#                                    same path normalised
#   tm_vm VMID --host H --system-ds 0|100 [--disk image=ID]... [--volatile SIZE:swap|SIZE:fs:FORMAT]...
#         [--context] [--lcm N] [--state N]
#                                    the VM document (from a captured one) with
#                                    exactly these disks, DISK_ID in argument
#                                    order, as oned sets them (incl. mixed mode)
#   tm_vm_state VMID LCM [STATE]     set LCM_STATE (and STATE)
#   tm_vm_move VMID HOST [DS_ID]     a new history record (tm_migrate and
#                                    tm_resume make theirs themselves)
#   tm_get KIND ID [XPATH] / tm_set KIND ID XPATH VALUE   standin-ctl get/set
#   tm_sysdir VMID [SEQ]             $DS_LOCATION/<ds>/<vmid> of the last (or SEQ)
#                                    history record
#   tm_transfer VMID [--op OP] [FILE|-]   run these transfer lines (stdin by
#                                    default: a heredoc); 0 on TRANSFER SUCCESS
#   tm_transfer_fails VMID [--op OP] [FILE|-]   expects TRANSFER FAILURE
#   tm_prolog VMID / tm_epilog VMID [--local] / tm_stop VMID / tm_resume VMID HOST /
#   tm_migrate VMID SRC DST / tm_delete_vm VMID [--local]
#                                    generate the file from the VM document as
#                                    TransferManager.cc does, set the LCM
#                                    states oned sets around it, run it.
#                                    --print: only print the file's lines
#   tm_vmm VMID "CMD LINE" [STDIN_FILE]   one TM command as the VMM driver runs
#                                    it (PRE/POST/FAILMIGRATE get the base64 VM
#                                    on stdin when no file is given)
#   tm_context VMID [--print]        context.sh + token.txt in $VMS/VMID and the
#                                    deploy's CONTEXT command through tm_vmm
#   on_host HOST CMD...              run CMD on HOST (ssh, the test config)
#   host_tree HOST PATH              canonical listing of PATH on HOST: one line
#                                    per entry, "REL TYPE [TARGET | FORMAT
#                                    [BACKING]]", REL "." for PATH itself, TYPE
#                                    dir|link|file|other, FORMAT from qemu-img;
#                                    nothing when PATH does not exist
#   expect_layout HOST PATH <<EOF    host_tree equals the lines (leading blanks
#                                    and blank lines ignored, runs of blanks = one)
#   hosts_ctl pause|resume|down|up HOST   tests/lib/hosts.sh on the test's hosts
# Status 2 from tm_transfer, tm_vmm, tm_prolog...: the harness itself failed
# (oned-tm could not run, a sanitizer report, TM_TIMEOUT).
#
# Call tm_setup outside the cases (its stand-in and hosts live until the
# script ends). A script that also uses lib-ds.sh calls ds_setup first: both
# write the same qcow2c.conf, tm_setup's has every key ds_setup's has.
#
# Where this is not oned (on purpose):
#   - remotes live in a self-contained ONE_LOCATION tree ($ONE/var/remotes),
#     but the actions see a packaged install's environment (no ONE_LOCATION,
#     cwd and HOME "/var/lib/one" = $ONE_VAR), as the captures were recorded;
#   - one transfer at a time, unless the test runs several in the background
#     (oned runs up to 15 at once, with no ordering);
#   - no KERNEL/INITRD lines (prolog_os_transfer_commands), no .prolog_attach,
#     .delete_prev/_both, .disk_* files: write those with tm_transfer;
#   - disk TARGETs are assigned like oned's (OS, CD-ROM, context, the rest)
#     but not with its every rule;
#   - oned-tm's --vmm prints only the TM step's LOG lines and its result, not
#     the VMM driver's own "Successfully execute ..." lines nor its reply.

ONE=$TEST_DIR/one
REMOTES=$ONE/var/remotes
TM_CONF=$REMOTES/etc/qcow2c/qcow2c.conf
LOCK_DIR=$TEST_DIR/lock
ONE_VAR=$TEST_DIR/var/lib/one
VMS=$ONE_VAR/vms
DS_LOCATION=$ONE_VAR//datastores
IMG_DS=1
SYS_DS=0
SSH_DS=100
FE=frontend
HOSTS_DIR=$TEST_DIR/hosts
SSH_CONFIG=$HOSTS_DIR/ssh_config
STANDIN_DIR=$TEST_DIR/standin
TM_FIXTURES=$SRC/tests/fixtures/oned/tm
HARNESS=$BUILD/harness
export ONE REMOTES TM_CONF LOCK_DIR ONE_VAR VMS DS_LOCATION SSH_CONFIG STANDIN_DIR

_tm=$TEST_DIR/.tm
TM_REPLY=
TM_FILE=
TM_OUTCOME=
TM_INFO=
_tm_allowed=
_tm_ssh_system=0

_tm_say() {
    printf '%s\n' "$*" >&2
}

_tm_ctl() {
    "$HARNESS/standin-ctl" "$STANDIN_DIR" "$@"
}

# The normalised form of a path (runs of / collapsed, no trailing /).
_tm_norm() {
    local p
    p=$(printf '%s' "$1" | tr -s /)
    [ "$p" = / ] || p=${p%/}
    printf '%s\n' "$p"
}

# ---------------------------------------------------------------- setup

# NAME=VALUE lines for what madcommon's export_rc_vars exports from FILE:
# the file is sourced by bash and every name on a "NAME=" line exported.
_tm_rc_env() { # FILE
    [ -f "$1" ] || return 0
    # shellcheck disable=SC2016 # expanded by the inner bash
    env -i bash -c '
        names=$(grep -E "^[a-zA-Z_0-9-]*=" "$1" | sed "s/=.*$//")
        . "$1" >/dev/null 2>&1
        for v in $names; do printf "%s=%s\n" "$v" "${!v}"; done' _ "$1"
}

_tm_write_conf() {
    local auth endpoint
    endpoint=$(cat "$_tm/endpoint")
    auth=$STANDIN_DIR/one_auth
    mkdir -p "$(dirname "$TM_CONF")"
    cat >"$TM_CONF" <<EOF
# written by tests/e2e/lib-tm.sh
ONE_XMLRPC="$endpoint"
ONE_AUTH="$auth"
XMLRPC_TIMEOUT="20"
SSH_OPTIONS="-F $SSH_CONFIG"
SSH_CONNECT_TIMEOUT="5"
SSH_ALIVE_INTERVAL="2"
SSH_ALIVE_COUNT="3"
LOCAL_HOSTS="$FE"
LOCK_DIR="$LOCK_DIR"
LOCK_TIMEOUT="60"
TIMEOUT="120"
HTTP_CONNECT_TIMEOUT="5"
EOF
}

# tm_conf KEY VALUE: sets KEY in qcow2c.conf (replacing a previous value).
tm_conf() {
    local key=$1 value=$2
    grep -v "^$key=" "$TM_CONF" >"$TM_CONF.tmp" || true
    printf '%s="%s"\n' "$key" "$value" >>"$TM_CONF.tmp"
    mv -f "$TM_CONF.tmp" "$TM_CONF"
}

_tm_put_datastores() {
    local sys=$SRC/tests/fixtures/standin/datastore.info.system.inner.xml
    local img=$SRC/tests/fixtures/standin/datastore.info.image.inner.xml
    _tm_ctl put datastore "$sys" \
        --subst "<DATASTORE><ID>104</ID>=<DATASTORE><ID>$SYS_DS</ID>" \
        --subst "lab-qcow2c-180947-sys=system" \
        --subst "/var/lib/one//datastores/104=$DS_LOCATION/$SYS_DS" >/dev/null || return 1
    _tm_ctl put datastore "$sys" \
        --subst "<DATASTORE><ID>104</ID>=<DATASTORE><ID>$SSH_DS</ID>" \
        --subst "lab-qcow2c-180947-sys=system-ssh" \
        --subst "/var/lib/one//datastores/104=$DS_LOCATION/$SSH_DS" \
        --subst "<TM_MAD><![CDATA[qcow2c]]></TM_MAD>=<TM_MAD><![CDATA[ssh]]></TM_MAD>" \
        --subst "<SHARED><![CDATA[YES]]></SHARED>=<SHARED><![CDATA[NO]]></SHARED>" \
        --subst "<ALLOW_ORPHANS><![CDATA[FORMAT]]></ALLOW_ORPHANS>=<ALLOW_ORPHANS><![CDATA[NO]]></ALLOW_ORPHANS>" \
        >/dev/null || return 1
    _tm_ctl put datastore "$img" \
        --subst "<DATASTORE><ID>105</ID>=<DATASTORE><ID>$IMG_DS</ID>" \
        --subst "lab-qcow2c-180947-img=images" \
        --subst "/var/lib/one//datastores/105=$DS_LOCATION/$IMG_DS" \
        --subst "<IMAGES><ID>8</ID><ID>9</ID><ID>12</ID><ID>13</ID></IMAGES>=<IMAGES></IMAGES>" \
        --subst "/var/tmp/lab-images=$TEST_DIR/images" >/dev/null || return 1
}

_tm_stop_standin() {
    "$SRC/tests/harness/standin.sh" stop "$STANDIN_DIR"
}

_tm_stop_hosts() {
    "$SRC/tests/lib/hosts.sh" stop "$HOSTS_DIR"
}

_tm_setup() {
    local ssh_system=0 t line
    if [ "${1:-}" = --ssh-system ]; then
        ssh_system=1
    fi
    need_tool qemu-img qemu-io ssh sshd ssh-keygen unshare xmllint base64 md5sum tar xorriso
    for t in oned-tm oned-standin standin-ctl; do
        if [ ! -x "$HARNESS/$t" ]; then
            _tm_say "tm_setup: $HARNESS/$t is missing: run make"
            return 1
        fi
    done
    mkdir -p "$_tm" "$VMS" "$LOCK_DIR" "$TEST_DIR/images" "$ONE/etc/vmm_exec" \
        "$(_tm_norm "$DS_LOCATION/$SYS_DS")" "$(_tm_norm "$DS_LOCATION/$SSH_DS")" \
        "$(_tm_norm "$DS_LOCATION/$IMG_DS")"

    # qcow2c into ONE_LOCATION, registered in copies of the stock oned.conf
    # and vmm_execrc (what an administrator does, install.sh --apply-conf).
    cp "$SRC/tests/fixtures/oned.conf.stock" "$ONE/etc/oned.conf"
    cp "$SRC/tests/fixtures/vmm_execrc.stock" "$ONE/etc/vmm_exec/vmm_execrc"
    cp "$TM_FIXTURES/tmrc.stock" "$ONE/etc/tmrc"
    if ! ONE_LOCATION=$ONE "$SRC/install.sh" --build "$BUILD" --apply-conf \
        >"$_tm/install.log" 2>&1; then
        _tm_say "tm_setup: install.sh failed:"
        cat "$_tm/install.log" >&2
        return 1
    fi
    # The driver's -d list: TM_MAD's ARGUMENTS in oned.conf.
    line=$(sed -n '/^TM_MAD[[:space:]]*=[[:space:]]*\[/,/\]/p' "$ONE/etc/oned.conf" | grep ARGUMENTS)
    _tm_allowed=$(printf '%s\n' "$line" | sed -n 's/.*-d[[:space:]]\{1,\}\([^"[:space:]]*\).*/\1/p')
    if [[ ,$_tm_allowed, != *,qcow2c,* ]] || [[ ,$_tm_allowed, != *,ssh,* ]]; then
        _tm_say "tm_setup: oned.conf's TM_MAD -d list lacks qcow2c or ssh: $line"
        return 1
    fi
    printf '%s\n' "$_tm_allowed" >"$_tm/allowed"
    _tm_rc_env "$ONE/etc/tmrc" >"$_tm/tmrc.env"
    _tm_rc_env "$ONE/etc/vmm_exec/vmm_execrc" >"$_tm/vmm_execrc.env"

    # The stock ssh TM's stand-ins.
    mkdir -p "$REMOTES/tm/ssh" "$REMOTES/etc/tm/ssh"
    cp "$SRC"/tests/harness/tm-ssh/* "$REMOTES/tm/ssh/"
    chmod 755 "$REMOTES"/tm/ssh/*
    chmod 644 "$REMOTES/tm/ssh/tm-ssh-common.sh"
    cat >"$REMOTES/etc/tm/ssh/tm-ssh.conf" <<EOF
# written by tests/e2e/lib-tm.sh for the ssh TM stand-ins
SSH="ssh -F $SSH_CONFIG -o BatchMode=yes"
STANDIN_CTL="$HARNESS/standin-ctl"
STANDIN_DIR="$STANDIN_DIR"
DS_DIR="$ONE_VAR/datastores"
EOF

    # oned.
    if ! "$SRC/tests/harness/standin.sh" start "$STANDIN_DIR" >"$_tm/standin.out" 2>&1; then
        _tm_say "tm_setup: the oned stand-in did not start:"
        cat "$_tm/standin.out" >&2
        return 1
    fi
    defer _tm_stop_standin
    sed -n 's/^export ONE_XMLRPC=//p' "$_tm/standin.out" >"$_tm/endpoint"
    ONE_XMLRPC=$(cat "$_tm/endpoint")
    ONE_AUTH=$STANDIN_DIR/one_auth
    export ONE_XMLRPC ONE_AUTH
    _tm_put_datastores || {
        _tm_say "tm_setup: cannot store the datastores in the stand-in"
        return 1
    }
    _tm_write_conf

    # The hosts.
    local private=""
    if [ "$ssh_system" = 1 ]; then
        private=:$(_tm_norm "$DS_LOCATION/$SSH_DS")
    fi
    if ! "$SRC/tests/lib/hosts.sh" start "$HOSTS_DIR" "node1$private" "node2$private" "$FE" \
        >"$_tm/hosts.log" 2>&1; then
        _tm_say "tm_setup: the hosts did not start:"
        cat "$_tm/hosts.log" >&2
        _tm_stop_hosts
        return 1
    fi
    defer _tm_stop_hosts
    _tm_ssh_system=$ssh_system
    echo "$ssh_system" >"$_tm/ssh_system"
    return 0
}

# tm_setup: outside a case a failure ends the script (as need_tool does).
tm_setup() {
    if _tm_setup "$@"; then
        return 0
    fi
    if [ "${_e2e_in_case:-0}" = 0 ]; then
        exit 1
    fi
    return 1
}

hosts_ctl() { # pause|resume|down|up HOST
    "$SRC/tests/lib/hosts.sh" "$1" "$HOSTS_DIR" "$2"
}

# ---------------------------------------------------------------- stand-in

tm_get() { # KIND ID [XPATH]
    _tm_ctl get "$@"
}

tm_set() { # KIND ID XPATH VALUE
    _tm_ctl set "$@" >/dev/null
}

# The value of XPATH in the XML file FILE ("" when absent).
_tm_xp() { # FILE XPATH
    xmllint --xpath "string($2)" "$1" 2>/dev/null || true
}

_tm_next_id() { # KIND
    local dir=$STANDIN_DIR/$1 max=-1 f id
    if [ -f "$STANDIN_DIR/$1.lastoid" ]; then
        max=$(cat "$STANDIN_DIR/$1.lastoid")
    fi
    for f in "$dir"/*.xml; do
        [ -e "$f" ] || continue
        id=${f##*/}
        id=${id%.xml}
        [ "$id" -gt "$max" ] && max=$id
    done
    echo $((max + 1))
}

# ---------------------------------------------------------------- images

tm_pattern() { # ID
    if [ -f "$_tm/image.$1.pattern" ]; then
        cat "$_tm/image.$1.pattern"
    else
        printf '0x%02x\n' $((($1 * 29 + 0x21) % 250 + 1))
    fi
}

tm_image_source() { # ID
    tm_get image "$1" /IMAGE/SOURCE
}

tm_image_file() { # ID
    _tm_norm "$(tm_image_source "$1")"
}

tm_image() {
    local name=${1:?tm_image: NAME expected} fmt=qcow2 size=64 pers=0 pattern="" type=0
    local id hash source file
    shift
    while [ $# -gt 0 ]; do
        case $1 in
            --format) fmt=$2; shift 2 ;;
            --size) size=$2; shift 2 ;;
            --persistent) pers=1; shift ;;
            --data) pattern=$2; shift 2 ;;
            --type)
                case $2 in
                    OS) type=0 ;;
                    CDROM) type=1 ;;
                    DATABLOCK) type=2 ;;
                    *) _tm_say "tm_image: unknown --type $2"; return 1 ;;
                esac
                shift 2
                ;;
            *) _tm_say "tm_image: unknown argument $1"; return 1 ;;
        esac
    done
    case $fmt in qcow2 | raw) ;; *) _tm_say "tm_image: --format qcow2|raw"; return 1 ;; esac
    id=$(_tm_next_id image)
    [ -n "$pattern" ] || pattern=$(tm_pattern "$id")
    echo "$pattern" >"$_tm/image.$id.pattern"
    hash=$(printf '%s:%s\n' "$(date +%s%N)" "$id" | md5sum | cut -c1-32)
    source=$DS_LOCATION/$IMG_DS/$hash
    file=$(_tm_norm "$source")
    qemu-img create -q -f "$fmt" -- "$file" "${size}M" || return 1
    qemu-io -f "$fmt" -c "write -q -P $pattern 0 $((size < 1 ? 0 : 1))M" -- "$file" >/dev/null || return 1
    _tm_ctl put image "$SRC/tests/fixtures/standin/image.info.ready.inner.xml" \
        --subst "<IMAGE><ID>8</ID>=<IMAGE><ID>$id</ID>" \
        --subst "<NAME>lab-qcow2c-180947-os</NAME>=<NAME>$name</NAME>" \
        --subst "<TYPE>0</TYPE>=<TYPE>$type</TYPE>" \
        --subst "<PERSISTENT>0</PERSISTENT>=<PERSISTENT>$pers</PERSISTENT>" \
        --subst "/var/lib/one//datastores/105/7e91d9b535115238b613f67efae9b5b3=$source" \
        --subst "<PATH><![CDATA[/var/tmp/lab-images/lab-os.qcow2]]></PATH>=<PATH><![CDATA[]]></PATH>" \
        --subst "<FORMAT><![CDATA[qcow2]]></FORMAT>=<FORMAT><![CDATA[$fmt]]></FORMAT>" \
        --subst "<SIZE>64</SIZE>=<SIZE>$size</SIZE>" \
        --subst "<STATE>2</STATE><PREV_STATE>2</PREV_STATE><RUNNING_VMS>1</RUNNING_VMS>=<STATE>1</STATE><PREV_STATE>1</PREV_STATE><RUNNING_VMS>0</RUNNING_VMS>" \
        --subst "<DATASTORE_ID>105</DATASTORE_ID><DATASTORE>lab-qcow2c-180947-img</DATASTORE>=<DATASTORE_ID>$IMG_DS</DATASTORE_ID><DATASTORE>images</DATASTORE>" \
        --subst "<VMS><ID>6</ID></VMS>=<VMS></VMS>" >/dev/null || return 1
    echo "$id"
}

# ---------------------------------------------------------------- VMs

# The captured VM document (vm 12 at deploy: OS, persistent datablock,
# volatile fs and swap disks, context), one line.
_tm_vm_fixture() {
    tr '\n' '\r' <"$TM_FIXTURES/vmm/001-DEPLOY-vm12.xml" | grep -o '<VM><ID>.*</VM>' | tr '\r' '\n'
}

_tm_cdata() { # NAME VALUE
    printf '<%s><![CDATA[%s]]></%s>' "$1" "$2" "$1"
}

# A DISK element from NAME=VALUE words, attributes sorted as oned does.
_tm_disk_xml() {
    local kv
    printf '<DISK>'
    while IFS= read -r kv; do
        _tm_cdata "${kv%%=*}" "${kv#*=}"
    done < <(printf '%s\n' "$@" | LC_ALL=C sort -t= -k1,1)
    printf '</DISK>'
}

_tm_target() { # INDEX -> sda, sdb, ...
    local letters=abcdefghijklmnopqrstuvwxyz
    printf 'sd%s\n' "${letters:$1:1}"
}

_tm_history_xml() { # VMID SEQ HOST DS_ID TM_MAD
    local hid=0
    case $3 in node2) hid=1 ;; "$FE") hid=2 ;; esac
    printf '<HISTORY><OID>%s</OID><SEQ>%s</SEQ><HOSTNAME>%s</HOSTNAME><HID>%s</HID><CID>0</CID><STIME>1795458253</STIME><ETIME>0</ETIME><VM_MAD><![CDATA[kvm]]></VM_MAD><TM_MAD><![CDATA[%s]]></TM_MAD><DS_ID>%s</DS_ID><PLAN_ID>-2</PLAN_ID><ACTION_ID>-1</ACTION_ID><PSTIME>1795458253</PSTIME><PETIME>0</PETIME><RSTIME>0</RSTIME><RETIME>0</RETIME><ESTIME>0</ESTIME><EETIME>0</EETIME><ACTION>0</ACTION><UID>-1</UID><GID>-1</GID><REQUEST_ID>-1</REQUEST_ID></HISTORY>' \
        "$1" "$2" "$3" "$hid" "$5" "$4"
}

_tm_ds_tm() { # DS_ID
    case $1 in
        "$SSH_DS") echo ssh ;;
        *) echo qcow2c ;;
    esac
}

_tm_ds_name() { # DS_ID
    case $1 in
        "$SSH_DS") echo system-ssh ;;
        "$SYS_DS") echo system ;;
        "$IMG_DS") echo images ;;
        *) echo "ds$1" ;;
    esac
}

tm_vm() {
    local vmid=${1:?tm_vm: VMID expected} host=node1 sysds=$SYS_DS context=0 lcm=3 state=3
    local -a specs=()
    shift
    while [ $# -gt 0 ]; do
        case $1 in
            --host) host=$2; shift 2 ;;
            --system-ds) sysds=$2; shift 2 ;;
            --disk) specs+=("disk:${2#image=}"); shift 2 ;;
            --volatile) specs+=("vol:$2"); shift 2 ;;
            --context) context=1; shift ;;
            --lcm) lcm=$2; shift 2 ;;
            --state) state=$2; shift 2 ;;
            *) _tm_say "tm_vm: unknown argument $1"; return 1 ;;
        esac
    done
    local systm imgdoc vm head tail disks="" spec i=0 n
    local -a kind=() itype=() targets=()
    systm=$(_tm_ds_tm "$sysds")
    imgdoc=$(mktemp "$_tm/img.XXXXXX")
    n=${#specs[@]}

    # Targets as oned assigns them: OS disks, CDROMs, the context, the rest.
    local order=() t=0
    for ((i = 0; i < n; i++)); do
        spec=${specs[i]}
        kind[i]=${spec%%:*}
        itype[i]=2
        if [ "${kind[i]}" = disk ]; then
            tm_get image "${spec#disk:}" >"$imgdoc" || {
                _tm_say "tm_vm: no image ${spec#disk:} in the stand-in"
                return 1
            }
            itype[i]=$(_tm_xp "$imgdoc" /IMAGE/TYPE)
        fi
    done
    for ((i = 0; i < n; i++)); do [ "${itype[i]}" = 0 ] && order+=("$i"); done
    for ((i = 0; i < n; i++)); do [ "${itype[i]}" = 1 ] && order+=("$i"); done
    [ "$context" = 0 ] || order+=(ctx)
    for ((i = 0; i < n; i++)); do [ "${itype[i]}" = 2 ] && order+=("$i"); done
    local ctx_target=""
    for i in "${order[@]}"; do
        if [ "$i" = ctx ]; then
            ctx_target=$(_tm_target "$t")
        else
            targets[i]=$(_tm_target "$t")
        fi
        t=$((t + 1))
    done

    for ((i = 0; i < n; i++)); do
        spec=${specs[i]}
        local -a a=(ALLOW_ORPHANS=FORMAT CLUSTER_ID=0 DEV_PREFIX=sd "DISK_ID=$i" "TARGET=${targets[i]}"
            PERSISTENT_SNAPSHOTS=YES)
        if [ "${kind[i]}" = disk ]; then
            local img=${spec#disk:} fmt size pers
            tm_get image "$img" >"$imgdoc"
            fmt=$(_tm_xp "$imgdoc" /IMAGE/FORMAT)
            size=$(_tm_xp "$imgdoc" /IMAGE/SIZE)
            pers=$(_tm_xp "$imgdoc" /IMAGE/PERSISTENT)
            a+=("DATASTORE=$(_tm_xp "$imgdoc" /IMAGE/DATASTORE)"
                "DATASTORE_ID=$(_tm_xp "$imgdoc" /IMAGE/DATASTORE_ID)"
                DISK_SNAPSHOT_TOTAL_SIZE=0 "DRIVER=$fmt" "FORMAT=$fmt"
                "IMAGE=$(_tm_xp "$imgdoc" /IMAGE/NAME)" "IMAGE_ID=$img"
                "ORIGINAL_SIZE=$size" "SIZE=$size"
                "SOURCE=$(_tm_xp "$imgdoc" /IMAGE/SOURCE)" TM_MAD=qcow2c)
            # Image::disk_attribute: persistent CLONE=NO SAVE=YES; CDROM
            # CLONE=NO SAVE=NO READONLY=YES; else CLONE=YES SAVE=NO.
            if [ "${itype[i]}" = 1 ]; then
                a+=(CLONE=NO SAVE=NO READONLY=YES IMAGE_STATE=2 TYPE=CDROM)
            elif [ "$pers" = 1 ]; then
                a+=(CLONE=NO SAVE=YES PERSISTENT=YES READONLY=NO IMAGE_STATE=8 TYPE=FILE)
                tm_set image "$img" /IMAGE/STATE 8
            else
                a+=(CLONE=YES SAVE=NO READONLY=NO IMAGE_STATE=2 TYPE=FILE)
                tm_set image "$img" /IMAGE/STATE 2
            fi
            # check_tm_mad: in mixed mode the *_SSH targets and TM_MAD_SYSTEM.
            if [ "$systm" = ssh ]; then
                a+=(TM_MAD_SYSTEM=ssh CLONE_TARGET=SYSTEM LN_TARGET=SYSTEM DISK_TYPE=FILE)
            else
                a+=(CLONE_TARGET=SYSTEM LN_TARGET=NONE DISK_TYPE=FILE)
            fi
        else
            local v=${spec#vol:} vsize vtype vfmt
            vsize=${v%%:*}
            vtype=${v#*:}
            vfmt=raw
            if [[ $vtype == fs:* ]]; then
                vfmt=${vtype#fs:}
                vtype=fs
            elif [ "$vtype" = fs ]; then
                vfmt=raw
            elif [ "$vtype" != swap ]; then
                _tm_say "tm_vm: --volatile SIZE:swap or SIZE:fs:FORMAT, not $v"
                return 1
            fi
            a+=("DATASTORE=$(_tm_ds_name "$sysds")" "DATASTORE_ID=$sysds" DISK_TYPE=FILE
                "DRIVER=$vfmt" "FORMAT=$vfmt" "SIZE=$vsize" "TM_MAD=$systm" "TYPE=$vtype")
        fi
        disks+=$(_tm_disk_xml "${a[@]}")
    done

    vm=$(_tm_vm_fixture)
    head=${vm%%<DISK>*}
    tail=${vm##*</DISK>}
    head=${head/<VM><ID>12<\/ID>/<VM><ID>$vmid</ID>}
    head=${head/<NAME>lab-qcow2c-182404-vm1<\/NAME>/<NAME>vm-$vmid</NAME>}
    head=${head/<STATE>3<\/STATE><LCM_STATE>2<\/LCM_STATE>/<STATE>$state</STATE><LCM_STATE>$lcm</LCM_STATE>}
    head=${head/<DEPLOY_ID><\/DEPLOY_ID>/<DEPLOY_ID>one-$vmid</DEPLOY_ID>}
    local ctx_xml=""
    if [ "$context" = 1 ]; then
        ctx_xml="<CONTEXT>$(_tm_cdata DISK_ID "$n")$(_tm_cdata ONEGATE_ENDPOINT http://127.0.0.1:5030)$(_tm_cdata TARGET "$ctx_target")$(_tm_cdata TOKEN YES)$(_tm_cdata VMID "$vmid")</CONTEXT>"
    fi
    head=${head/<CONTEXT>*<\/CONTEXT>/$ctx_xml}
    tail=${tail/<TM_MAD_SYSTEM><![CDATA[qcow2c]]><\/TM_MAD_SYSTEM>/<TM_MAD_SYSTEM><![CDATA[$systm]]></TM_MAD_SYSTEM>}
    tail=${tail/<VMID><![CDATA[12]]><\/VMID>/<VMID><![CDATA[$vmid]]></VMID>}
    tail=${tail/<HISTORY_RECORDS>*<\/HISTORY_RECORDS>/<HISTORY_RECORDS>$(_tm_history_xml "$vmid" 0 "$host" "$sysds" "$systm")</HISTORY_RECORDS>}
    if [ "$n" = 0 ]; then
        # no DISK at all: the fixture's template without its disks
        vm=$head$tail
    else
        vm=$head$disks$tail
    fi
    printf '%s\n' "$vm" >"$imgdoc"
    _tm_ctl put vm "$imgdoc" >/dev/null || return 1
    mkdir -p "$VMS/$vmid"
}

tm_vm_state() { # VMID LCM [STATE]
    tm_set vm "$1" /VM/LCM_STATE "$2"
    if [ -n "${3:-}" ]; then
        tm_set vm "$1" /VM/STATE "$3"
    fi
}

# The VM document into a file; prints its name.
_tm_vm_doc() { # VMID
    local f
    f=$(mktemp "$_tm/vm.$1.XXXXXX")
    tm_get vm "$1" >"$f" || {
        _tm_say "no VM $1 in the stand-in"
        return 1
    }
    echo "$f"
}

# "SEQ HOST DS_ID TM_MAD" of history record N (1-based; default: the last).
_tm_history() { # DOC [N]
    local doc=$1 n=${2:-} h
    [ -n "$n" ] || n=$(_tm_xp "$doc" 'count(/VM/HISTORY_RECORDS/HISTORY)')
    [ "$n" -ge 1 ] 2>/dev/null || return 1
    h="/VM/HISTORY_RECORDS/HISTORY[$n]"
    printf '%s %s %s %s\n' "$(_tm_xp "$doc" "$h/SEQ")" "$(_tm_xp "$doc" "$h/HOSTNAME")" \
        "$(_tm_xp "$doc" "$h/DS_ID")" "$(_tm_xp "$doc" "$h/TM_MAD")"
}

tm_sysdir() { # VMID [SEQ]
    local doc seq host ds tm
    doc=$(_tm_vm_doc "$1") || return 1
    if [ -n "${2:-}" ]; then
        read -r seq host ds tm < <(_tm_history "$doc" $(($2 + 1)))
    else
        read -r seq host ds tm < <(_tm_history "$doc")
    fi
    echo "$DS_LOCATION/$ds/$1"
}

# Appends a history record (a new host and/or system datastore) to the VM
# document in FILE, as oned does before a migration or a resume.
_tm_doc_add_history() { # FILE VMID HOST [DS_ID]
    local doc=$1 vmid=$2 host=$3 seq h ds tm text
    read -r seq h ds tm < <(_tm_history "$doc")
    ds=${4:-$ds}
    tm=$(_tm_ds_tm "$ds")
    text=$(cat "$doc")
    text=${text/<\/HISTORY_RECORDS>/$(_tm_history_xml "$vmid" $((seq + 1)) "$host" "$ds" "$tm")</HISTORY_RECORDS>}
    printf '%s\n' "$text" >"$doc"
}

# tm_vm_move VMID HOST [DS_ID]: a new history record (the VM now goes to
# HOST, and to system datastore DS_ID); tm_migrate and tm_resume make it.
tm_vm_move() {
    local doc
    doc=$(_tm_vm_doc "$1") || return 1
    _tm_doc_add_history "$doc" "$@"
    _tm_ctl put vm "$doc" >/dev/null
}

# ---------------------------------------------------------------- running

# The last action that ran (oned-tm --record) becomes LAST_*.
_tm_last_action() { # RECORD_DIR
    local last
    last=$(find "$1" -name '*.rc' 2>/dev/null | sed 's:.*/::; s:\.rc$::' | sort -n | tail -n 1)
    if [ -z "$last" ]; then
        : >"$LAST_STDOUT"
        : >"$LAST_STDERR"
        LAST_STATUS=
        return 0
    fi
    cp "$1/$last.stdout" "$LAST_STDOUT"
    cp "$1/$last.stderr" "$LAST_STDERR"
    LAST_STATUS=$(cat "$1/$last.rc")
}

_tm_env_args() { # FILE -> --env NAME=VALUE...
    local kv
    _tm_env=(--env "HOME=$ONE_VAR")
    while IFS= read -r kv; do
        [ -n "$kv" ] && _tm_env+=(--env "$kv")
    done <"$1"
    return 0
}

# A sanitizer report (make asan) in any action's stderr or in oned-tm's own
# fails the call, whatever the reply says.
_tm_sanitizer_check() { # RECORD_DIR
    local re='^==[0-9]+==ERROR: [A-Za-z]+Sanitizer|runtime error:|^SUMMARY: [A-Za-z]+Sanitizer' f
    for f in "$1"/*.stderr "$1/oned-tm.err"; do
        [ -f "$f" ] || continue
        if grep -Eq "$re" "$f"; then
            _tm_say "a sanitizer reported an error in $f:"
            cat "$f" >&2
            return 1
        fi
    done
}

_tm_show_reply() {
    _tm_say "  reply:"
    sed 's/^/    /' "$TM_REPLY" >&2
    _tm_say "  the last action's exit status: ${LAST_STATUS:-(none ran)}"
    _e2e_show_last
}

# Runs a transfer file with oned-tm; sets TM_* and LAST_*. Returns 0 on
# SUCCESS, 1 on FAILURE, 2 when the harness itself failed.
_tm_run_file() { # VMID FILE
    local vmid=$1 file=$2 rec status=0 last
    rec=$(mktemp -d "$_tm/run.XXXXXX")
    local -a _tm_env
    _tm_env_args "$_tm/tmrc.env"
    TM_FILE=$file
    TM_REPLY=$rec/reply
    "$HARNESS/oned-tm" "$REMOTES" "$vmid" "$file" --allowed "$(cat "$_tm/allowed")" \
        --cwd "$ONE_VAR" "${_tm_env[@]}" --record "$rec" --timeout "${TM_TIMEOUT:-600}" \
        >"$TM_REPLY" 2>"$rec/oned-tm.err" || status=$?
    _tm_last_action "$rec"
    _tm_sanitizer_check "$rec" || return 2
    if [ "$status" -ge 2 ]; then
        _tm_say "tm_transfer: oned-tm failed (status $status):"
        cat "$rec/oned-tm.err" "$TM_REPLY" >&2
        return 2
    fi
    if [ -s "$rec/oned-tm.err" ]; then
        sed 's/^/  (oned-tm) /' "$rec/oned-tm.err" >&2
    fi
    last=$(grep '^TRANSFER ' "$TM_REPLY" | tail -n 1)
    TM_OUTCOME=$(printf '%s\n' "$last" | cut -d' ' -f2)
    TM_INFO=${last#"TRANSFER $TM_OUTCOME $vmid "}
    [ "$TM_OUTCOME" = SUCCESS ]
}

_tm_seq() { # VMID
    local doc seq rest
    if doc=$(_tm_vm_doc "$1" 2>/dev/null); then
        read -r seq rest < <(_tm_history "$doc") || seq=0
        echo "${seq:-0}"
    else
        echo 0
    fi
}

# Writes the lines (FILE, or stdin) as oned writes a transfer file; prints
# its path.
_tm_write_file() { # VMID OP [FILE|-]
    local vmid=$1 op=$2 src=${3:--} seq f
    seq=$(_tm_seq "$vmid")
    mkdir -p "$VMS/$vmid"
    f=$VMS/$vmid/transfer.$seq.$op
    if [ "$src" = - ]; then
        cat >"$f"
    else
        cp "$src" "$f"
    fi
    echo "$f"
}

_tm_transfer_args() { # VMID [--op OP] [FILE|-] -> _tm_vmid _tm_op _tm_src
    _tm_vmid=${1:?VMID expected}
    shift
    _tm_op=transfer
    if [ "${1:-}" = --op ]; then
        _tm_op=$2
        shift 2
    fi
    _tm_src=${1:--}
}

tm_transfer() {
    local _tm_vmid _tm_op _tm_src f status=0
    _tm_transfer_args "$@"
    f=$(_tm_write_file "$_tm_vmid" "$_tm_op" "$_tm_src") || return 2
    _tm_run_file "$_tm_vmid" "$f" || status=$?
    if [ "$status" = 1 ]; then
        _tm_say "tm_transfer: TRANSFER FAILURE for VM $_tm_vmid ($f):"
        sed 's/^/    /' "$f" >&2
        _tm_show_reply
    fi
    return "$status"
}

tm_transfer_fails() {
    local _tm_vmid _tm_op _tm_src f status=0
    _tm_transfer_args "$@"
    f=$(_tm_write_file "$_tm_vmid" "$_tm_op" "$_tm_src") || return 2
    _tm_run_file "$_tm_vmid" "$f" || status=$?
    case $status in
        1) return 0 ;;
        0)
            _tm_say "tm_transfer_fails: the transfer of VM $_tm_vmid succeeded ($f):"
            sed 's/^/    /' "$f" >&2
            _tm_show_reply
            return 1
            ;;
        *) return "$status" ;;
    esac
}

# The VM document as the VMM driver sends it: its last history record only
# (VirtualMachine::to_xml), base64 on one line; tm_vmm's STDIN_FILE.
tm_vmm_stdin() { # VMID FILE
    local doc last
    doc=$(tm_get vm "$1" | tr -d '\n')
    last=${doc##*<HISTORY>}
    last=${last%%</HISTORY_RECORDS>*}
    doc="${doc%%<HISTORY_RECORDS>*}<HISTORY_RECORDS><HISTORY>$last</HISTORY_RECORDS>${doc##*</HISTORY_RECORDS>}"
    printf '%s' "$doc" | base64 -w0 >"$2"
}

tm_vmm() { # VMID "CMD LINE" [STDIN_FILE]
    local vmid=$1 line=$2 in=${3:-} status=0 rec last
    local -a _tm_env stdin_args=()
    rec=$(mktemp -d "$_tm/vmm.XXXXXX")
    if [ -z "$in" ]; then
        case ${line%% *} in
            PREMIGRATE* | POSTMIGRATE* | FAILMIGRATE*)
                # one_vmm_exec.rb: Base64.encode64(VM xml) without newlines
                in=$rec/stdin
                tm_get vm "$vmid" | tr -d '\n' | base64 -w0 >"$in"
                ;;
        esac
    fi
    [ -z "$in" ] || stdin_args=(--stdin "$in")
    _tm_env_args "$_tm/vmm_execrc.env"
    TM_FILE=
    TM_REPLY=$rec/reply
    "$HARNESS/oned-tm" "$REMOTES" "$vmid" --vmm "$line" "${stdin_args[@]}" --cwd "$ONE_VAR" \
        "${_tm_env[@]}" --record "$rec" --timeout "${TM_TIMEOUT:-600}" \
        >"$TM_REPLY" 2>"$rec/oned-tm.err" || status=$?
    _tm_last_action "$rec"
    _tm_sanitizer_check "$rec" || return 2
    if [ "$status" -ge 2 ]; then
        _tm_say "tm_vmm: oned-tm failed (status $status):"
        cat "$rec/oned-tm.err" "$TM_REPLY" >&2
        return 2
    fi
    last=$(grep -E '^(SUCCESS|FAILURE)( |$)' "$TM_REPLY" | tail -n 1)
    TM_OUTCOME=${last%% *}
    TM_INFO=${last#"$TM_OUTCOME "}
    if [ "$TM_OUTCOME" != SUCCESS ]; then
        _tm_say "tm_vmm: $line: FAILURE"
        _tm_show_reply
        return 1
    fi
}

# ---------------------------------------------------------------- oned's files

# One line per disk, in DISK_ID order (the disks are a std::map):
# DISK_ID|TYPE|TM_MAD|DATASTORE_ID|SOURCE|CLONE|SAVE|TM_MAD_SYSTEM|SIZE|FORMAT
_tm_disks() { # DOC
    local doc=$1 n i d
    n=$(_tm_xp "$doc" 'count(/VM/TEMPLATE/DISK)')
    for ((i = 1; i <= n; i++)); do
        d="/VM/TEMPLATE/DISK[$i]"
        printf '%s\n' "$(_tm_xp "$doc" "concat($d/DISK_ID,'|',$d/TYPE,'|',$d/TM_MAD,'|',$d/DATASTORE_ID,'|',$d/SOURCE,'|',$d/CLONE,'|',$d/SAVE,'|',$d/TM_MAD_SYSTEM,'|',$d/SIZE,'|',$d/FORMAT)")"
    done | sort -t'|' -k1,1n
}

_tm_upper() {
    printf '%s' "$1" | tr '[:lower:]' '[:upper:]'
}

# The file's lines for OP (prolog, epilog, epilog-local, stop, resume,
# migrate, delete, delete-local), from the VM document, as
# src/tm/TransferManager.cc writes them.
_tm_generate() { # VMID OP [DOC]
    local vmid=$1 op=$2 doc=${3:-} seq host ds vmtm pseq phost pds ptm nh
    local id type tm dsid source clone save tsys size format sysdir psysdir
    local sticky="" T suffix h
    if [ -z "$doc" ]; then
        doc=$(_tm_vm_doc "$vmid") || return 1
    fi
    nh=$(_tm_xp "$doc" 'count(/VM/HISTORY_RECORDS/HISTORY)')
    read -r seq host ds vmtm < <(_tm_history "$doc")
    sysdir=$DS_LOCATION/$ds/$vmid
    if [ "$nh" -ge 2 ]; then
        read -r pseq phost pds ptm < <(_tm_history "$doc" $((nh - 1)))
        psysdir=$DS_LOCATION/$pds/$vmid
    fi
    case $op in
        resume | migrate)
            if [ "$nh" -lt 2 ]; then
                _tm_say "$op: VM $vmid has no previous history record"
                return 1
            fi
            ;;
    esac
    while IFS='|' read -r id type tm dsid source clone save tsys size format; do
        T=$(_tm_upper "$type")
        case $op in
            prolog)
                # prolog_transfer_command: the suffix is per disk
                suffix=""
                case $T in
                    SWAP)
                        [ -n "$size" ] || continue
                        echo "MKSWAP $vmtm $size $host:$sysdir/disk.$id $vmid $ds"
                        ;;
                    FS)
                        if [ -z "$size" ] || [ -z "$format" ]; then continue; fi
                        echo "MKIMAGE $vmtm $size $format $host:$sysdir/disk.$id $vmid $ds"
                        ;;
                    FILESYSTEM) ;;
                    *)
                        if [ -z "$source" ] || [ -z "$tm" ] || [ -z "$dsid" ] || [ -z "$clone" ]; then
                            _tm_say "prolog: missing DISK mandatory attributes (SOURCE, TM_MAD, CLONE, DATASTORE_ID) for VM $vmid, DISK $id"
                            return 1
                        fi
                        [ -z "$tsys" ] || suffix=.$tsys
                        if [ "$(_tm_upper "$clone")" = YES ]; then h=CLONE; else h=LN; fi
                        [[ $source == *:* ]] || source=$FE:$source
                        echo "$h$suffix $tm $source $host:$sysdir/disk.$id $vmid $dsid"
                        ;;
                esac
                ;;
            epilog | epilog-local)
                # epilog_transfer_command: the suffix is per disk
                suffix=""
                h=$host
                [ "$op" = epilog ] || h=$FE
                [ "$T" != FILESYSTEM ] || continue
                [ -z "$tsys" ] || suffix=.$tsys
                if [ "$(_tm_upper "$save")" = YES ]; then
                    if [ -z "$dsid" ] || [ -z "$tm" ] || [ -z "$source" ]; then continue; fi
                    echo "MVDS$suffix $tm $h:$sysdir/disk.$id $source $vmid $dsid"
                else
                    if [ "$T" = SWAP ] || [ "$T" = FS ]; then
                        tm=$vmtm
                        dsid=$ds
                    fi
                    if [ -z "$tm" ] || [ -z "$dsid" ]; then continue; fi
                    echo "DELETE$suffix $tm $h:$sysdir/disk.$id $vmid $dsid"
                fi
                ;;
            stop | migrate | resume | delete | delete-local)
                # trap 16: the suffix sticks once a disk had one
                if [ "$T" = FILESYSTEM ] && [ "$op" != resume ]; then
                    continue
                fi
                if [ "$T" = SWAP ] || [ "$T" = FS ] || [ "$T" = FILESYSTEM ]; then
                    tm=$vmtm
                    dsid=$ds
                else
                    if [ -z "$tm" ] || [ -z "$dsid" ]; then continue; fi
                fi
                [ -z "$tsys" ] || sticky=.$tsys
                case $op in
                    stop) echo "MV$sticky $tm $host:$sysdir/disk.$id $FE:$sysdir/disk.$id $vmid $dsid" ;;
                    migrate) echo "MV$sticky $tm $phost:$psysdir/disk.$id $host:$sysdir/disk.$id $vmid $dsid" ;;
                    resume) echo "MV$sticky $tm $FE:$psysdir/disk.$id $host:$sysdir/disk.$id $vmid $dsid" ;;
                    delete) echo "DELETE$sticky $tm $host:$sysdir/disk.$id $vmid $dsid" ;;
                    delete-local) echo "DELETE$sticky $tm $FE:$sysdir/disk.$id $vmid $dsid" ;;
                esac
                ;;
        esac
    done < <(_tm_disks "$doc")
    case $op in
        epilog) echo "DELETE $vmtm $host:$sysdir $vmid $ds" ;;
        epilog-local | delete-local) echo "DELETE $vmtm $FE:$sysdir $vmid $ds" ;;
        delete) echo "DELETE $vmtm $host:$sysdir $vmid $ds" ;;
        stop) echo "MV $vmtm $host:$sysdir $FE:$sysdir $vmid $ds" ;;
        migrate) echo "MV $vmtm $phost:$psysdir $host:$sysdir $vmid $ds" ;;
        resume) echo "MV $vmtm $FE:$psysdir $host:$sysdir $vmid $ds" ;;
    esac
}

# Generates OP's file, sets the LCM state oned is in while it runs, runs it
# and sets the state that follows success or failure. With --print, only
# prints the file. With HOST, a history record for HOST comes first (on a
# copy of the document for --print).
_tm_lifecycle() { # VMID OP SUFFIX LCM OK_STATE OK_LCM FAIL_LCM [--print] [HOST]
    local vmid=$1 op=$2 suffix=$3 lcm=$4 ok_state=$5 ok_lcm=$6 fail_lcm=$7 print=${8:-}
    local host=${9:-} f status=0 doc gen
    if [ "$print" = --print ]; then
        doc=$(_tm_vm_doc "$vmid") || return 2
        if [ -n "$host" ]; then
            cp "$doc" "$doc.print"
            doc=$doc.print
            _tm_doc_add_history "$doc" "$vmid" "$host"
        fi
        _tm_generate "$vmid" "$op" "$doc"
        return
    fi
    if [ -n "$host" ]; then
        tm_vm_move "$vmid" "$host" || return 2
    fi
    gen=$(mktemp "$_tm/gen.XXXXXX")
    _tm_generate "$vmid" "$op" >"$gen" || return 2
    tm_vm_state "$vmid" "$lcm" 3
    f=$(_tm_write_file "$vmid" "$suffix" "$gen") || return 2
    _tm_run_file "$vmid" "$f" || status=$?
    case $status in
        0)
            tm_vm_state "$vmid" "$ok_lcm" "$ok_state"
            ;;
        1)
            tm_vm_state "$vmid" "$fail_lcm"
            _tm_say "tm_$op: TRANSFER FAILURE for VM $vmid ($f):"
            sed 's/^/    /' "$f" >&2
            _tm_show_reply
            ;;
    esac
    return "$status"
}

# The --print / --local flags, in any order after the fixed arguments.
_tm_flags() {
    _tm_print=""
    _tm_local=0
    while [ $# -gt 0 ]; do
        case $1 in
            --print) _tm_print=--print ;;
            --local) _tm_local=1 ;;
            *)
                _tm_say "unknown argument $1"
                return 2
                ;;
        esac
        shift
    done
}

tm_prolog() { # VMID [--print]
    local _tm_print _tm_local
    _tm_flags "${@:2}" || return 2
    _tm_lifecycle "$1" prolog prolog 1 3 3 39 "$_tm_print"
}

# terminate (from STOPPED/UNDEPLOYED: --local, the front-end's copy)
tm_epilog() { # VMID [--local] [--print]
    local _tm_print _tm_local op=epilog
    _tm_flags "${@:2}" || return 2
    [ "$_tm_local" = 0 ] || op=epilog-local
    _tm_lifecycle "$1" "$op" epilog 11 6 0 40 "$_tm_print"
}

# stop (undeploy writes the same lines)
tm_stop() { # VMID [--print]
    local _tm_print _tm_local
    _tm_flags "${@:2}" || return 2
    _tm_lifecycle "$1" stop stop 10 4 0 41 "$_tm_print"
}

tm_resume() { # VMID HOST [--print]
    local _tm_print _tm_local
    _tm_flags "${@:3}" || return 2
    _tm_lifecycle "$1" resume resume 9 3 3 49 "$_tm_print" "${2:?tm_resume: HOST expected}"
}

# cold migration (the live one is the VMM's PRE/POSTMIGRATE: tm_vmm)
tm_migrate() { # VMID SRC DST [--print]
    local _tm_print _tm_local doc seq host rest
    _tm_flags "${@:4}" || return 2
    doc=$(_tm_vm_doc "$1") || return 2
    read -r seq host rest < <(_tm_history "$doc")
    if [ "$host" != "$2" ]; then
        _tm_say "tm_migrate: VM $1 is on $host, not on $2"
        return 2
    fi
    _tm_lifecycle "$1" migrate migrate 8 3 3 38 "$_tm_print" "${3:?tm_migrate: DST expected}"
}

# recover --delete (--local: the front-end, the STOPPED/UNDEPLOYED case of
# trigger_epilog_delete(true)); the VM is DONE whatever the outcome, as oned
# does not wait for this reply.
tm_delete_vm() { # VMID [--local] [--print]
    local _tm_print _tm_local op=delete status=0
    _tm_flags "${@:2}" || return 2
    [ "$_tm_local" = 0 ] || op=delete-local
    _tm_lifecycle "$1" "$op" delete 23 6 0 0 "$_tm_print" || status=$?
    [ -n "$_tm_print" ] || tm_vm_state "$1" 0 6
    return "$status"
}

# context.sh and token.txt, then the deploy's CONTEXT command (VMM driver);
# --print: only print the command line.
tm_context() { # VMID [--print]
    local vmid=$1 doc seq host ds vmtm ctx line
    doc=$(_tm_vm_doc "$vmid") || return 2
    read -r seq host ds vmtm < <(_tm_history "$doc")
    ctx=$(_tm_xp "$doc" /VM/TEMPLATE/CONTEXT/DISK_ID)
    if [ -z "$ctx" ]; then
        _tm_say "tm_context: VM $vmid has no CONTEXT (tm_vm --context)"
        return 2
    fi
    mkdir -p "$VMS/$vmid"
    cat >"$VMS/$vmid/context.sh" <<EOF
# Context variables generated by OpenNebula
DISK_ID='$ctx'
ONEGATE_ENDPOINT='http://127.0.0.1:5030'
TARGET='$(_tm_xp "$doc" /VM/TEMPLATE/CONTEXT/TARGET)'
VMID='$vmid'
EOF
    printf 'token-of-vm-%s' "$vmid" >"$VMS/$vmid/token.txt"
    # prolog_context_command: "<context.sh> " + files (" <token.txt>") + " "
    line="CONTEXT $vmtm $VMS/$vmid/context.sh  $VMS/$vmid/token.txt $host:$DS_LOCATION/$ds/$vmid/disk.$ctx $vmid $ds"
    if [ "${2:-}" = --print ]; then
        printf '%s\n' "$line"
        return 0
    fi
    tm_vmm "$vmid" "$line"
}

# ---------------------------------------------------------------- hosts

on_host() { # HOST CMD...
    local host=$1 q
    shift
    printf -v q '%q ' "$@"
    ssh -F "$SSH_CONFIG" -o BatchMode=yes "$host" -- "$q"
}

# The listing script, run on the host (bash, its argument: the path).
_tm_tree_script() {
    # shellcheck disable=SC2016 # expanded on the host
    printf '%s\n' 'set -u
root=$1
[ -e "$root" ] || [ -L "$root" ] || exit 0
cd / || exit 1
info() {
    local json fmt back
    json=$(qemu-img info -U --output=json -- "$1" 2>/dev/null) || { printf "unreadable"; return; }
    fmt=$(printf "%s\n" "$json" | sed -n "s/^    \"format\": \"\(.*\)\",*$/\1/p" | head -n 1)
    back=$(printf "%s\n" "$json" | sed -n "s/^    \"backing-filename\": \"\(.*\)\",*$/\1/p" | head -n 1)
    printf "%s" "$fmt"
    [ -z "$back" ] || printf " %s" "$back"
}
sep=$(printf "\037")
find "$root" -printf "%P\037%y\037%l\n" | LC_ALL=C sort | while IFS=$sep read -r rel type target; do
    [ -n "$rel" ] || rel=.
    p=$root/$rel
    [ "$rel" != . ] || p=$root
    case $type in
        d) printf "%s dir\n" "$rel" ;;
        l) printf "%s link %s\n" "$rel" "$target" ;;
        f) printf "%s file %s\n" "$rel" "$(info "$p")" ;;
        *) printf "%s other\n" "$rel" ;;
    esac
done'
}

host_tree() { # HOST PATH
    local q
    printf -v q '%q' "$(_tm_norm "$2")"
    _tm_tree_script | ssh -F "$SSH_CONFIG" -o BatchMode=yes "$1" -- bash -s -- "$q"
}

expect_layout() { # HOST PATH <<EOF
    local want got
    want=$(sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e 's/[[:space:]]\{1,\}/ /g' | grep -v '^$' || true)
    got=$(host_tree "$1" "$2") || {
        _tm_say "expect_layout: cannot list $2 on $1"
        return 1
    }
    if [ "$got" != "$want" ]; then
        _tm_say "expect_layout: $2 on $1 differs (- expected, + actual):"
        diff -u <(printf '%s\n' "$want") <(printf '%s\n' "$got") | tail -n +3 | sed 's/^/    /' >&2 || true
        return 1
    fi
}
