#!/bin/bash
# t0240-tm-monitor.sh - TM monitor of a shared system datastore (protocol
# §5.6): oned's datastore driver runs tm/<TM_MAD>/monitor DS_ID with the
# base64 DS_DRIVER_ACTION_DATA on stdin (captures tm/monitor/1: 104,
# MONITOR_VM_DISKS=0; tm/monitor/2: 106, MONITOR_VM_DISKS=1) and
# base64-encodes its stdout for oned. Run here by build/harness/oned-ds
# (DS_MAD "../tm/qcow2c" makes it run REMOTES/tm/qcow2c/monitor, as oned's
# driver does for a system datastore) through a recorder that adds
# ONE_LOCATION, as a self-contained oned's environment has it, so that the
# action finds $ONE/etc/monitord.conf. build/harness/udp-listen plays
# monitord's UDP listener and decodes what it gets as monitord does.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ds.sh"

ds_setup
echo 'DEBUG="yes"' >>"$DS_CONF"

LISTEN=$HARNESS/udp-listen
[ -x "$LISTEN" ] || { echo "t0240: $LISTEN is missing: run make" >&2; exit 1; }
need_tool du fallocate truncate base64 df

_tm=$TEST_DIR/.tm
TM_REC=$_tm/remotes
SYS_DIR=$TEST_DIR/var/lib/one/datastores/106     # DATASTORE_LOCATION/106, normalised
IMG_DIR=$TEST_DIR/var/lib/one/datastores/1       # an image datastore (persistent disks)
TMPL=$TEST_DIR/templates                          # VM directories copied 2,000 times
MONITORD_CONF=$ONE/etc/monitord.conf
X_TOP=/DS_DRIVER_ACTION_DATA
NVMS=2000

mkdir -p "$TM_REC/datastore" "$TM_REC/tm/qcow2c" "$ONE/etc"
cat >"$TM_REC/tm/qcow2c/monitor" <<EOF
#!/bin/bash
ONE_LOCATION="$ONE" "$REMOTES/tm/qcow2c/monitor" "\$@" >"$_tm/stdout" 2>"$_tm/stderr"
rc=\$?
echo "\$rc" >"$_tm/rc"
cat "$_tm/stdout"
cat "$_tm/stderr" >&2
exit "\$rc"
EOF
chmod 755 "$TM_REC/tm/qcow2c/monitor"

# ---------------------------------------------------------------- helpers

# mon_call ID CAPTURE [DS-MSG ARGS...]: runs the action as oned's driver
# does; sets MON_OUTCOME, MON_RESULT (the reply's payload), LAST_*.
mon_call() {
    local id=$1 capture=$2 line
    shift 2
    ds_msg "../tm/$capture" "$@" >"$_tm/msg" || { echo "ds-msg failed"; return 1; }
    rm -f "$_tm/rc"
    "$HARNESS/oned-ds" "$TM_REC" monitor "$id" ../tm/qcow2c <"$_tm/msg" >"$_tm/reply" \
        2>"$_tm/oned-ds.err" || true
    if [ ! -f "$_tm/rc" ]; then
        echo "oned-ds could not run the action:"
        cat "$_tm/oned-ds.err" "$_tm/reply"
        return 1
    fi
    cp "$_tm/stdout" "$LAST_STDOUT"
    cp "$_tm/stderr" "$LAST_STDERR"
    LAST_STATUS=$(cat "$_tm/rc")
    if _e2e_sanitizer_report; then
        echo "a sanitizer reported an error:"
        cat "$LAST_STDERR"
        return 1
    fi
    line=$(grep -v '^LOG ' "$_tm/reply" | head -n 1)
    MON_OUTCOME=$(printf '%s\n' "$line" | cut -d' ' -f2)
    MON_RESULT=${line#MONITOR "$MON_OUTCOME" "$id" }
}

# Success, and the reply decodes to the three lines oned parses, each as df
# -B1M -P of DIR says (SLACK MB apart: other writers share the disk).
mon_ok_space() { # DIR SLACK
    local total used avail
    if [ "$MON_OUTCOME" != SUCCESS ] || [ "$LAST_STATUS" != 0 ]; then
        echo "expected SUCCESS, got $MON_OUTCOME (status $LAST_STATUS):"
        cat "$_tm/reply" "$LAST_STDERR"
        return 1
    fi
    printf '%s' "$MON_RESULT" | base64 -d >"$_tm/space"
    cmp "$_tm/space" "$LAST_STDOUT"
    if ! grep -Eq '^USED_MB=[0-9]+$' <(sed -n 1p "$_tm/space") ||
        ! grep -Eq '^FREE_MB=[0-9]+$' <(sed -n 2p "$_tm/space") ||
        ! grep -Eq '^TOTAL_MB=[0-9]+$' <(sed -n 3p "$_tm/space") ||
        [ "$(wc -l <"$_tm/space")" != 3 ] || [ "$(tail -c 1 "$_tm/space" | od -An -c | tr -d ' ')" != '\n' ]; then
        echo "stdout is not the three lines USED_MB, FREE_MB, TOTAL_MB:"
        cat "$_tm/space"
        return 1
    fi
    read -r _ total used avail _ < <(df -B1M -P "$1" | tail -n 1)
    near USED_MB "$(sed -n 's/^USED_MB=//p' "$_tm/space")" "$used" "$2"
    near FREE_MB "$(sed -n 's/^FREE_MB=//p' "$_tm/space")" "$avail" "$2"
    near TOTAL_MB "$(sed -n 's/^TOTAL_MB=//p' "$_tm/space")" "$total" 0
    # No child process at all (DEBUG=yes counts them).
    expect_stderr_line "DEBUG: monitor: 0 child processes"
}

near() { # WHAT GOT WANT SLACK
    local diff=$(($2 - $3))
    if [ "${diff#-}" -gt "$4" ]; then
        echo "$1: $2, df says $3"
        return 1
    fi
}

# FAILURE with one plain reason line that matches ERE, the reply carrying it.
mon_refused() { # ERE
    local reason
    if [ "$MON_OUTCOME" != FAILURE ] || [ "$LAST_STATUS" != 1 ]; then
        echo "expected FAILURE with status 1, got $MON_OUTCOME (status $LAST_STATUS):"
        cat "$_tm/reply" "$LAST_STDERR"
        return 1
    fi
    reason=$(one_plain_line)
    [ "$MON_RESULT" = "$reason" ] || { echo "reply '$MON_RESULT' is not '$reason'"; return 1; }
    printf '%s\n' "$reason" | grep -Eq -- "$1" || { echo "reason '$reason' does not match /$1/"; return 1; }
}

# listen_start [--prikey KEY] [--timeout S] [--idle-ms MS]: monitord's
# listener, and a monitord.conf naming it (PUBKEY from $PUBKEY when set).
# It stops MS (700) after the last datagram, or after S (60) seconds.
listen_start() {
    local timeout=60 idle=700 args=() i
    while [ $# -gt 0 ]; do
        case $1 in
            --prikey) args+=(--prikey "$2"); shift 2 ;;
            --timeout) timeout=$2; shift 2 ;;
            --idle-ms) idle=$2; shift 2 ;;
            *) echo "listen_start: $1?"; return 1 ;;
        esac
    done
    LISTEN_OUT=$(mktemp -d "$_tm/listen.XXXXXX")
    "$LISTEN" --portfile "$LISTEN_OUT/port" --out "$LISTEN_OUT" --idle-ms "$idle" \
        --timeout "$timeout" "${args[@]}" >"$LISTEN_OUT/log" 2>&1 &
    LISTEN_PID=$!
    defer kill "$LISTEN_PID"
    for ((i = 0; i < 100; i++)); do
        [ -s "$LISTEN_OUT/port" ] && break
        sleep 0.05
    done
    [ -s "$LISTEN_OUT/port" ] || { echo "udp-listen did not start:"; cat "$LISTEN_OUT/log"; return 1; }
    cat >"$MONITORD_CONF" <<EOF
# monitord.conf as OpenNebula ships it, NETWORK pointing at the test listener
DB = [
  CONNECTIONS = 15
]

LOG = [
  system      = "FILE",
  debug_level = 3
]

#   pubkey  : Absolute path to public key (agents). Empty for no encryption.
NETWORK = [
    ADDRESS         = "::",
    MONITOR_ADDRESS = "auto",
    PORT    = $(cat "$LISTEN_OUT/port"),
    THREADS = 8,
    PUBKEY  = "${PUBKEY:-}",
    PRIKEY  = ""
]

PROBES_PERIOD = [
  BEACON_HOST    = 30,
  SYSTEM_HOST    = 600,
  MONITOR_HOST   = 120,
  STATE_VM       = 5,
  MONITOR_VM     = 30,
  SYNC_STATE_VM  = 180
]
EOF
}

listen_wait() {
    wait "$LISTEN_PID" || true
}

# Every datagram decoded fine, with monitord's header, under 64 KiB.
datagrams_ok() { # [MIN_COUNT]
    local n
    n=$(wc -l <"$LISTEN_OUT/index")
    if [ "$n" -lt "${1:-1}" ]; then
        echo "monitord got $n datagrams, at least ${1:-1} expected"
        return 1
    fi
    if grep -Ev '^[0-9]+ [0-9]+ MONITOR_VM SUCCESS -1 0 ok$' "$LISTEN_OUT/index"; then
        echo "^ datagrams monitord would not take"
        return 1
    fi
    if awk '$2 >= 65536' "$LISTEN_OUT/index" | grep -q .; then
        echo "a datagram of 64 KiB or more"
        return 1
    fi
    # The payload: one VM=[ID=<id>, MONITOR="<base64>"] a line, nothing else.
    if cat "$LISTEN_OUT"/payload.* | grep -Ev '^VM=\[ID=[0-9]+, MONITOR="[A-Za-z0-9+/]*={0,2}"\]$'; then
        echo "^ payload lines of the wrong shape"
        return 1
    fi
}

# What `du -mL` says of every disk.N and numeric disk.N.snap/K of a VM
# directory, as the lines monitord gets in the VM's MONITOR, in order.
du_lines() { # DIR [PREFIX]
    local dir=$1 prefix=${2:-} f n k
    local -a disks snaps
    mapfile -t disks < <(for f in "$dir"/disk.*; do
        n=${f##*/disk.}
        if [[ $n =~ ^(0|[1-9][0-9]*)$ ]]; then echo "$n"; fi
    done | sort -n)
    for n in "${disks[@]}"; do
        if [ ! -e "$dir/disk.$n" ] || [ -d "$dir/disk.$n" ]; then continue; fi
        echo "${prefix}DISK_SIZE=[ID=$n,SIZE=$(du -mL "$dir/disk.$n" | cut -f1)]"
        [ -d "$dir/disk.$n.snap" ] || continue
        mapfile -t snaps < <(for f in "$dir/disk.$n.snap"/*; do
            k=${f##*/}
            if [[ $k =~ ^(0|[1-9][0-9]*)$ ]]; then echo "$k"; fi
        done | sort -n)
        for k in "${snaps[@]}"; do
            if [ ! -e "$dir/disk.$n.snap/$k" ] || [ -d "$dir/disk.$n.snap/$k" ]; then continue; fi
            echo "${prefix}SNAPSHOT_SIZE=[ID=$k,DISK_ID=$n,SIZE=$(du -mL "$dir/disk.$n.snap/$k" | cut -f1)]"
        done
    done
}

# ---------------------------------------------------------------- the datastore

# Eight kinds of VM directory in the qcow2 layout (protocol §2.2), with
# files of known allocated sizes (fallocate: N MiB; truncate: sparse, 0; a
# few bytes: one block, rounded up to 1 MB as du does).
make_templates() {
    local k d
    mkdir -p "$IMG_DIR"
    fallocate -l 5M "$IMG_DIR/aaaa"
    fallocate -l 7M "$IMG_DIR/bbbb"
    for k in 0 1 2 3 4 5 6 7; do
        d=$TMPL/$k
        mkdir -p "$d/disk.0.snap"
        fallocate -l "$((k + 1))M" "$d/disk.0.snap/0"
        ln -s . "$d/disk.0.snap/disk.0.snap"
        if [ "$k" -ge 2 ]; then echo x >"$d/disk.0.snap/1"; fi
        if [ "$k" -ge 4 ]; then truncate -s 64M "$d/disk.0.snap/2"; fi
        ln -s "disk.0.snap/$(cd "$d/disk.0.snap" && find . -maxdepth 1 -name '[0-9]*' -printf '%f\n' | sort -n | tail -n 1)" "$d/disk.0"
        if [ "$k" = 0 ]; then : >"$d/disk.1"; else fallocate -l "${k}M" "$d/disk.1"; fi
        # persistent disk: absolute link into the image datastore
        if [ $((k % 2)) = 1 ]; then ln -s "$IMG_DIR/$([ "$k" -lt 4 ] && echo aaaa || echo bbbb)" "$d/disk.2"; fi
        if [ "$k" = 3 ]; then echo y >"$d/disk.10"; fi
        if [ "$k" = 5 ]; then echo "$IMG_DIR/aaaa" >"$d/disk.0.snap/1.current"; fi
        if [ "$k" = 6 ]; then ln -s "$d/gone" "$d/disk.3"; fi
        if [ "$k" = 7 ]; then mkdir -p "$d/disk.4.snap" && echo z >"$d/disk.4.snap/0"; fi
        echo "context" >"$d/context.sh"
        echo "iso" >"$d/disk.5.iso"
    done
}

# $NVMS VM directories (0..NVMS-1, copies of the templates sharing their
# files), special ones, and what is not a VM directory; the expected lines
# "<vm> <line>" into $_tm/expected (sorted).
make_datastore() {
    local i k f
    make_templates
    mkdir -p "$SYS_DIR"
    for k in 0 1 2 3 4 5 6 7; do
        du_lines "$TMPL/$k" >"$_tm/tmpl.$k"
    done
    for ((i = 0; i < NVMS; i++)); do
        cp -al "$TMPL/$((i % 8))" "$SYS_DIR/$i"
    done
    # 3000: snapshot ids of two digits (stock reports one digit only)
    mkdir -p "$SYS_DIR/3000/disk.0.snap"
    for ((i = 0; i <= 12; i++)); do echo "$i" >"$SYS_DIR/3000/disk.0.snap/$i"; done
    fallocate -l 3M "$SYS_DIR/3000/disk.0.snap/11"
    ln -s disk.0.snap/12 "$SYS_DIR/3000/disk.0"
    # 3001: no disk at all; 3002: only a dangling disk
    mkdir -p "$SYS_DIR/3001" "$SYS_DIR/3002"
    echo context >"$SYS_DIR/3001/context.sh"
    ln -s /nonexistent "$SYS_DIR/3002/disk.0"
    # not VM directories (a size no VM has: reported, they would show)
    for f in 007 lost+found 12a; do
        mkdir -p "$SYS_DIR/$f"
        fallocate -l 9M "$SYS_DIR/$f/disk.0"
    done
    echo ssh >"$SYS_DIR/.monitor"
    echo 1 >"$SYS_DIR/4000"
    {
        for ((i = 0; i < NVMS; i++)); do
            while IFS= read -r f; do
                printf '%s %s\n' "$i" "$f"
            done <"$_tm/tmpl.$((i % 8))"
        done
        du_lines "$SYS_DIR/3000" "3000 "
    } | LC_ALL=C sort >"$_tm/expected"
    # the templates are what they should be
    grep -Fxq 'SNAPSHOT_SIZE=[ID=2,DISK_ID=0,SIZE=0]' "$_tm/tmpl.4"
    grep -Fxq 'DISK_SIZE=[ID=2,SIZE=7]' "$_tm/tmpl.5"
    grep -Fxq 'DISK_SIZE=[ID=10,SIZE=1]' "$_tm/tmpl.3"
    grep -q 'SNAPSHOT_SIZE=\[ID=11,DISK_ID=0,SIZE=3\]' "$_tm/expected"
}

same_vms() {
    LC_ALL=C sort "$LISTEN_OUT/vms" >"$_tm/got"
    if ! diff -u "$_tm/expected" "$_tm/got" >"$_tm/vms.diff"; then
        echo "monitord got other sizes (- expected, + got):"
        head -n 40 "$_tm/vms.diff"
        return 1
    fi
}

# ---------------------------------------------------------------- cases

case_space_only() {
    listen_start --timeout 2
    mon_call 104 monitor/1
    mon_ok_space "$DS_LOCATION/104" 16
    test -d "$DS_LOCATION/104"
    listen_wait
    test ! -s "$LISTEN_OUT/index" || { echo "MONITOR_VM_DISKS=0, yet monitord got:"; cat "$LISTEN_OUT/index"; return 1; }
}

case_2000_vms() {
    make_datastore
    test "$(find "$SYS_DIR" -mindepth 1 -maxdepth 1 | wc -l)" -ge "$NVMS"
    listen_start
    mon_call 106 monitor/2
    mon_ok_space "$SYS_DIR" 64
    listen_wait
    datagrams_ok 1
    same_vms
    # every VM directory with a disk, once (3001, 3002 and the non-VM
    # entries have none)
    test "$(cut -d' ' -f1 "$LISTEN_OUT/vms" | sort -u | wc -l)" = $((NVMS + 1))
    if grep -Eq '^(3001|3002) ' "$LISTEN_OUT/vms"; then
        echo "a directory without disks was reported"
        return 1
    fi
    echo "datagrams: $(wc -l <"$LISTEN_OUT/index"), bytes: $(awk '{s += $2} END {print s}' "$LISTEN_OUT/index")"
}

case_encrypted() {
    "$LISTEN" --genkey "$_tm/pub.pem" "$_tm/pri.pem"
    grep -q 'BEGIN RSA PUBLIC KEY' "$_tm/pub.pem"
    PUBKEY=$_tm/pub.pem listen_start --prikey "$_tm/pri.pem"
    mon_call 106 monitor/2
    mon_ok_space "$SYS_DIR" 64
    listen_wait
    # encrypted payloads do not compress: more, smaller-than-64-KiB datagrams
    datagrams_ok 2
    same_vms
}

case_monitord_conf() {
    # no monitord.conf: no message, no complaint (stock: the same)
    rm -f "$MONITORD_CONF"
    mon_call 106 monitor/2
    mon_ok_space "$SYS_DIR" 64
    if grep -q '^WARN' "$LAST_STDERR"; then cat "$LAST_STDERR"; return 1; fi
    # a PUBKEY that is not there: a WARN line, the message unencrypted
    PUBKEY=$_tm/missing.pem listen_start
    mon_call 106 monitor/2
    mon_ok_space "$SYS_DIR" 64
    expect_stderr_line --match "^WARN: monitor: cannot read monitord's PUBKEY .*missing.pem.*unencrypted"
    listen_wait
    datagrams_ok 1
    same_vms
    # a monitord.conf it cannot read: a WARN line, success
    printf 'NETWORK = [ PORT = "x" ]\n' >"$MONITORD_CONF"
    mon_call 106 monitor/2
    mon_ok_space "$SYS_DIR" 64
    expect_stderr_line --match '^WARN: monitor: .*monitord.conf.*PORT.*not sent'
    printf 'NETWORK = [ PORT = 4124\n' >"$MONITORD_CONF"
    mon_call 106 monitor/2
    mon_ok_space "$SYS_DIR" 64
    expect_stderr_line --match '^WARN: monitor: .*monitord.conf.*syntax error'
    rm -f "$MONITORD_CONF"
}

case_concurrent() {
    local i pids=() st=0
    listen_start --idle-ms 5000
    # VM directories and disks come and go while monitors run
    (
        for ((i = 0; i < 200; i++)); do
            rm -rf "${SYS_DIR:?}/$((i % 50 + 100))"
            mkdir -p "$SYS_DIR/$((5000 + i))"
            ln -sfn /nonexistent "$SYS_DIR/$((5000 + i))/disk.0"
            echo x >"$SYS_DIR/$((5000 + i))/disk.1"
        done
    ) &
    pids+=($!)
    for i in 1 2 3 4; do
        "$HARNESS/oned-ds" "$TM_REC" monitor 106 ../tm/qcow2c <"$_tm/msg" >"$_tm/reply.$i" 2>&1 &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || st=1; done
    [ "$st" = 0 ] || { cat "$_tm"/reply.*; return 1; }
    for i in 1 2 3 4; do grep -q '^MONITOR SUCCESS 106 ' "$_tm/reply.$i"; done
    listen_wait
    datagrams_ok 4
}

case_refused() {
    mon_call 106 monitor/2 --set "/DS_DRIVER_ACTION_DATA/DATASTORE/TYPE=0"
    mon_refused '^datastore 106 is not a system datastore'
    mon_call 107 monitor/2
    mon_refused 'for datastore 106, not 107'
    mon_call 106 monitor/2 --set "$X_DST/BRIDGE_LIST=node1 node2"
    mon_refused 'BRIDGE_LIST'
    mon_call 106 monitor/2 --set "$X_TOP/DATASTORE_LOCATION="
    mon_refused 'no DATASTORE_LOCATION'
    mon_call 106 monitor/2 --set "$X_TOP/DATASTORE_LOCATION=var/lib/one/datastores"
    mon_refused 'unusable DATASTORE_LOCATION'
    mon_call 106 monitor/2 --set "$X_TOP/DATASTORE_LOCATION=$TEST_DIR/x/../y"
    mon_refused 'unusable DATASTORE_LOCATION'
    : >"$TEST_DIR/a-file"
    mon_call 106 monitor/2 --set "$X_TOP/DATASTORE_LOCATION=$TEST_DIR/a-file"
    mon_refused 'a-file'
}

test_case "MONITOR_VM_DISKS=0: USED/FREE/TOTAL as df says, no message to monitord" case_space_only
test_case "$NVMS VM directories: every disk and snapshot as du -mL says, to monitord" case_2000_vms
test_case "monitord's PUBKEY: the same sizes, encrypted as its agents do" case_encrypted
test_case "no monitord.conf, a missing PUBKEY, an unusable monitord.conf" case_monitord_conf
test_case "monitors while VM directories come and go" case_concurrent
test_case "refused: image datastore, other id, BRIDGE_LIST, bad DATASTORE_LOCATION" case_refused
