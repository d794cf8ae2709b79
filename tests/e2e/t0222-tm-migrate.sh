#!/bin/bash
# t0222-tm-migrate.sh - TM premigrate, postmigrate, failmigrate (protocol
# §1.4 step 5, §2.3, traps 28, 29), run as the VMM driver runs them (base64
# VM document on stdin, one_vmm_exec's environment): nothing on the hosts
# for qcow2c itself; "migrate other" calls the same hook of every other TM
# of the VM's disks once, with the caller's name as 6th argument and the
# same stdin, and ignores its result; with a 6th argument qcow2c returns at
# once; postmigrate removes the VM's directory of its previous system
# datastore on the source host (the previous history record read from
# oned, since the VMM's document carries the last one only); hostile
# arguments and stdin; oned out of reach; a hung host.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-tm.sh"

# shellcheck disable=SC2119 # no option: system datastore 0 (shared) only
tm_setup

norm() { printf '%s\n' "$1" | tr -s /; }
DSROOT=$(norm "$DS_LOCATION")
CALLS=$TEST_DIR/fake.calls
mkdir -p "$DSROOT/2"

# A fake image-datastore TM whose hooks record their argv and stdin, and
# fail when $TEST_DIR/fake.fail exists.
for hook in premigrate postmigrate failmigrate; do
    mkdir -p "$REMOTES/tm/faketm"
    cat >"$REMOTES/tm/faketm/$hook" <<EOF
#!/bin/bash
{ printf '%s' "\${0##*/}"; printf ' [%s]' "\$@"; echo; } >>"$CALLS"
cat >"$TEST_DIR/fake.stdin.\${0##*/}"
if [ -e "$TEST_DIR/fake.fail" ]; then
    echo "ERROR: faketm: injected" >&2
    echo "fake \${0##*/} failed on purpose" >&2
    exit 3
fi
EOF
    chmod 755 "$REMOTES/tm/faketm/$hook"
done

# A VM on system datastore 0 and node1 with a qcow2c disk and two disks of
# TM faketm.
vm_with_fake_disks() { # VMID
    local a b c
    a=$(tm_image "os-$1" --format qcow2 --size 8)
    b=$(tm_image "d1-$1" --format qcow2 --size 8)
    c=$(tm_image "d2-$1" --format qcow2 --size 8)
    tm_vm "$1" --host node1 --system-ds "$SYS_DS" --disk image="$a" --disk image="$b" \
        --disk image="$c"
    tm_prolog "$1" >/dev/null
    tm_set vm "$1" '/VM/TEMPLATE/DISK[DISK_ID=1]/TM_MAD' faketm
    tm_set vm "$1" '/VM/TEMPLATE/DISK[DISK_ID=2]/TM_MAD' faketm
}

vmm_fails() { # VMID LINE [STDIN]
    local s=0
    tm_vmm "$@" >/dev/null 2>&1 || s=$?
    [ "$s" = 1 ] || { echo "vmm_fails: status $s for $2"; return 1; }
}

case_premigrate() {
    local sysdir
    vm_with_fake_disks 50
    sysdir=$(tm_sysdir 50)
    : >"$CALLS"
    tm_vmm_stdin 50 "$TEST_DIR/vm50.b64"
    tm_vmm 50 "PREMIGRATE qcow2c node1 node2 $sysdir 50 $SYS_DS" "$TEST_DIR/vm50.b64"
    # once for the two faketm disks, with the caller's name and the stdin
    [ "$(cat "$CALLS")" = "premigrate [node1] [node2] [$sysdir] [50] [$SYS_DS] [qcow2c]" ]
    cmp "$TEST_DIR/fake.stdin.premigrate" "$TEST_DIR/vm50.b64"
    grep -q '^LOG I 50 .*calling faketm/premigrate' "$TM_REPLY"
    [ ! -s "$LAST_STDOUT" ]
    # the same host: nothing
    : >"$CALLS"
    tm_vmm 50 "PREMIGRATE qcow2c node1 node1 $sysdir 50 $SYS_DS" "$TEST_DIR/vm50.b64"
    [ ! -s "$CALLS" ]
    # a failing other TM does not fail the migration; its failure is logged
    touch "$TEST_DIR/fake.fail"
    tm_vmm 50 "PREMIGRATE qcow2c node1 node2 $sysdir 50 $SYS_DS" "$TEST_DIR/vm50.b64"
    rm -f "$TEST_DIR/fake.fail"
    grep -q '^LOG W 50 .*faketm/premigrate failed with exit code 3 (ignored)' "$TM_REPLY"
    if grep -v '^\(INFO\|WARN\|DEBUG\|ERROR\): ' "$LAST_STDERR"; then return 1; fi
    # an other TM without the hook: skipped with a warning
    tm_set vm 50 '/VM/TEMPLATE/DISK[DISK_ID=2]/TM_MAD' nosuchtm
    tm_vmm_stdin 50 "$TEST_DIR/vm50.b64"
    tm_vmm 50 "PREMIGRATE qcow2c node1 node2 $sysdir 50 $SYS_DS" "$TEST_DIR/vm50.b64"
    grep -q '^LOG W 50 .*nosuchtm .* is not there' "$TM_REPLY"
}

case_caller_tm() {
    local sysdir
    vm_with_fake_disks 51
    sysdir=$(tm_sysdir 51)
    : >"$CALLS"
    # called by another TM's migrate_other: exit 0 at once, whatever stdin
    printf 'not base64 at all' >"$TEST_DIR/garbage"
    local h
    for h in PREMIGRATE POSTMIGRATE FAILMIGRATE; do
        tm_vmm 51 "$h qcow2c node1 node2 $sysdir 51 $SYS_DS faketm" "$TEST_DIR/garbage"
    done
    [ ! -s "$CALLS" ]
    # failmigrate: nothing, and no other TM called
    tm_vmm_stdin 51 "$TEST_DIR/vm51.b64"
    tm_vmm 51 "FAILMIGRATE qcow2c node1 node2 $sysdir 51 $SYS_DS" "$TEST_DIR/vm51.b64"
    [ ! -s "$CALLS" ]
}

case_postmigrate() {
    local old new
    vm_with_fake_disks 52
    old=$(norm "$(tm_sysdir 52)")
    # a live migration to node2 and to system datastore 2 (oned's new
    # history record); the VM's directory there made as a migration would
    tm_vm_move 52 node2 2
    new=$(norm "$(tm_sysdir 52)")
    cp -a "$old" "$new"
    tm_vmm_stdin 52 "$TEST_DIR/vm52.b64"
    : >"$CALLS"
    tm_vmm 52 "POSTMIGRATE qcow2c node1 node2 $(tm_sysdir 52) 52 2" "$TEST_DIR/vm52.b64"
    [ ! -e "$old" ]
    [ -d "$new" ]
    grep -q 'left system datastore 0' "$TM_REPLY"
    [ "$(cat "$CALLS")" = "postmigrate [node1] [node2] [$(tm_sysdir 52)] [52] [2] [qcow2c]" ]
    # again: the old directory is gone already
    tm_vmm 52 "POSTMIGRATE qcow2c node1 node2 $(tm_sysdir 52) 52 2" "$TEST_DIR/vm52.b64"
    [ -d "$new" ]
    # the same datastore, another host: nothing removed, the others called
    tm_vm_move 52 node1 2
    tm_vmm_stdin 52 "$TEST_DIR/vm52.b64"
    : >"$CALLS"
    tm_vmm 52 "POSTMIGRATE qcow2c node2 node1 $(tm_sysdir 52) 52 2" "$TEST_DIR/vm52.b64"
    [ -d "$new" ]
    [ -s "$CALLS" ]
    # the same host and datastore: nothing at all
    : >"$CALLS"
    tm_vmm 52 "POSTMIGRATE qcow2c node1 node1 $(tm_sysdir 52) 52 2" "$TEST_DIR/vm52.b64"
    [ ! -s "$CALLS" ]
    [ -d "$new" ]
}

case_hostile() {
    local sysdir other
    vm_with_fake_disks 53
    sysdir=$(tm_sysdir 53)
    other=$DS_LOCATION/$SYS_DS/54
    tm_vmm_stdin 53 "$TEST_DIR/vm53.b64"
    : >"$CALLS"
    local -a bad=(
        "PREMIGRATE qcow2c node1 node2 $other 53 $SYS_DS"
        "PREMIGRATE qcow2c node1 node2 $sysdir 53 2"
        "PREMIGRATE qcow2c node1 node2 $sysdir/disk.0 53 $SYS_DS"
        "PREMIGRATE qcow2c node1 node2 node1:$sysdir 53 $SYS_DS"
        "PREMIGRATE qcow2c -oProxyCommand=x node2 $sysdir 53 $SYS_DS"
        "PREMIGRATE qcow2c node1 node2 $sysdir/../53 53 $SYS_DS"
        "POSTMIGRATE qcow2c node1 node2 $sysdir 53 zero"
    )
    local l
    for l in "${bad[@]}"; do
        vmm_fails 53 "$l" "$TEST_DIR/vm53.b64" || { echo "accepted: $l"; return 1; }
        one_plain_line "$LAST_STDERR" >/dev/null || { echo "for: $l"; return 1; }
    done
    # stdin that is not the VM's document
    printf 'not base64' >"$TEST_DIR/garbage"
    vmm_fails 53 "PREMIGRATE qcow2c node1 node2 $sysdir 53 $SYS_DS" "$TEST_DIR/garbage"
    one_plain_line "$LAST_STDERR" | grep -q 'VM document on stdin'
    vmm_fails 53 "PREMIGRATE qcow2c node1 node2 $sysdir 53 $SYS_DS" /dev/null
    one_plain_line "$LAST_STDERR" | grep -q 'no VM document'
    vm_with_fake_disks 54
    tm_vmm_stdin 54 "$TEST_DIR/vm54.b64"
    vmm_fails 53 "PREMIGRATE qcow2c node1 node2 $sysdir 53 $SYS_DS" "$TEST_DIR/vm54.b64"
    one_plain_line "$LAST_STDERR" | grep -q 'not the one of VM 53'
    # a disk TM_MAD that is a path: never run
    tm_set vm 53 '/VM/TEMPLATE/DISK[DISK_ID=1]/TM_MAD' '../../../tmp/x'
    tm_vmm_stdin 53 "$TEST_DIR/vm53.b64"
    tm_vmm 53 "PREMIGRATE qcow2c node1 node2 $sysdir 53 $SYS_DS" "$TEST_DIR/vm53.b64"
    grep -q 'is not a driver name' "$TM_REPLY"
    [ "$(grep -c . "$CALLS")" = 1 ] # DISK 2 only (faketm)
}

case_oned_unreachable() {
    local old
    vm_with_fake_disks 55
    old=$(norm "$(tm_sysdir 55)")
    tm_vm_move 55 node2 2
    cp -a "$old" "$(norm "$(tm_sysdir 55)")"
    tm_vmm_stdin 55 "$TEST_DIR/vm55.b64"
    tm_conf ONE_XMLRPC "http://127.0.0.1:9/RPC2"
    defer tm_conf ONE_XMLRPC "$(cat "$_tm/endpoint")"
    # premigrate needs only stdin
    : >"$CALLS"
    tm_vmm 55 "PREMIGRATE qcow2c node1 node2 $(tm_sysdir 55) 55 2" "$TEST_DIR/vm55.b64"
    [ -s "$CALLS" ]
    # postmigrate cannot know the previous datastore: a warning, nothing
    # removed
    tm_vmm 55 "POSTMIGRATE qcow2c node1 node2 $(tm_sysdir 55) 55 2" "$TEST_DIR/vm55.b64"
    grep -q "^LOG W 55 .*previous history record" "$TM_REPLY"
    [ -d "$old" ]
}

case_hung_host() {
    local old start
    vm_with_fake_disks 56
    old=$(norm "$(tm_sysdir 56)")
    tm_vm_move 56 node2 2
    cp -a "$old" "$(norm "$(tm_sysdir 56)")"
    tm_vmm_stdin 56 "$TEST_DIR/vm56.b64"
    defer hosts_ctl resume node1
    hosts_ctl pause node1
    start=$SECONDS
    vmm_fails 56 "POSTMIGRATE qcow2c node1 node2 $(tm_sysdir 56) 56 2" "$TEST_DIR/vm56.b64"
    one_plain_line "$LAST_STDERR" | grep -q 'cannot reach host node1'
    [ $((SECONDS - start)) -lt 60 ]
    [ -d "$old" ]
    hosts_ctl resume node1
    tm_vmm 56 "POSTMIGRATE qcow2c node1 node2 $(tm_sysdir 56) 56 2" "$TEST_DIR/vm56.b64"
    [ ! -e "$old" ]
}

test_case "premigrate: other TMs called once, results ignored" case_premigrate
test_case "called with a 6th argument: exit 0 at once; failmigrate: nothing" case_caller_tm
test_case "postmigrate: the old system datastore's directory goes" case_postmigrate
test_case "hostile arguments and stdin are refused" case_hostile
test_case "oned unreachable: premigrate works, postmigrate warns" case_oned_unreachable
test_case "hung host: one line, bounded" case_hung_host
