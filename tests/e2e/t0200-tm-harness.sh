#!/bin/bash
# t0200-tm-harness.sh - the TM test infrastructure plays oned's part
# faithfully: build/harness/oned-tm runs transfer files as one_tm.rb does
# (checked with a fake TM directory made here, not with qcow2c's actions),
# tests/lib/hosts.sh gives hosts with private system-datastore directories
# that can hang, and lib-tm.sh writes the transfer files oned writes (the
# captured ones of VM 9, tests/fixtures/oned/tm/transfer-files/vm9, and
# the ones derived from TransferManager.cc in tests/fixtures/oned/tm/expected),
# in shared and mixed mode; the stand-ins for the stock ssh system TM move a
# VM between those private directories.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-tm.sh"

need_tool awk sed grep sort diff od base64 dd timeout

tm_setup --ssh-system

FAKE=$TEST_DIR/fake-remotes
CALLS=$TEST_DIR/calls.log
MARKS=$TEST_DIR/marks
REPLY=$TEST_DIR/reply
VMID=5
SSH_DIR=$(_tm_norm "$DS_LOCATION/$SSH_DS")
CONNECT_TIMEOUT=$(cat "$HOSTS_DIR/connect_timeout")

# ---------------------------------------------------------------- the fake TM

# A script of the fake TM: it records its argv ([argv0] [arg1] ...) in
# $CALLS, then runs BODY.
fake_script() { # TM NAME [BODY]
    mkdir -p "$FAKE/tm/$1"
    {
        echo '#!/bin/bash'
        # shellcheck disable=SC2016 # expanded by the script written
        printf 'printf "[%%s] " "$0" "$@" >>%q\n' "$CALLS"
        printf 'echo >>%q\n' "$CALLS"
        printf '%s\n' "${3:-exit 0}"
    } >"$FAKE/tm/$1/$2"
    chmod 755 "$FAKE/tm/$1/$2"
}

make_fake_tm() {
    mkdir -p "$MARKS" "$FAKE/tm/fake" "$FAKE/tm/other"
    fake_script fake clone
    fake_script fake snap_create.ssh
    fake_script fake a.b
    fake_script fake mark "touch $MARKS/\$1"
    fake_script other clone
    fake_script other premigrate "cat >$TEST_DIR/stdin.other"
    fake_script fake ok 'echo "INFO: ok: fine" >&2; echo "plain noise" >&2; echo "stdout is ignored"'
    fake_script fake fail "$(
        cat <<'EOF'
printf '%s\n' 'INFO: fail: a log line without id' 'ERROR: 5 a log line for VM 5' \
    '  WARN:   010 octal id' 'DEBUG: 08 not an octal number' \
    'ERROR:no blank after the colon' 'plain line one' '' '  plain line two   ' >&2
exit 3
EOF
    )"
    fake_script fake env "$(
        cat <<EOF
env | LC_ALL=C sort >$TEST_DIR/env.out
pwd -P >$TEST_DIR/pwd.out
wc -c <&0 | tr -d ' ' >$TEST_DIR/stdin.out
nice >$TEST_DIR/nice.out
ps -o pgid= -p \$\$ | tr -d ' ' >$TEST_DIR/pgid.out
echo \$\$ >$TEST_DIR/pid.out
EOF
    )"
    fake_script fake kill 'kill -9 $$'
    fake_script fake utf8 "printf 'INFO: before\\n\\377 bad byte\\nINFO: after\\n' >&2; exit \$1"
    fake_script fake daemon "$(
        cat <<EOF
echo "INFO: daemon: logged" >&2
echo "a reason nobody will see" >&2
sleep 20 &
echo \$! >$TEST_DIR/daemon.pid
exit 1
EOF
    )"
    fake_script fake stdin "cat >$TEST_DIR/stdin.copy; env | LC_ALL=C sort >$TEST_DIR/env.out"
    fake_script fake vmmfail 'echo "ERROR: 5 went wrong" >&2; echo "the reason" >&2; exit 1'
    # no execute permission / no #! line
    printf '#!/bin/bash\nexit 0\n' >"$FAKE/tm/fake/noexec"
    chmod 644 "$FAKE/tm/fake/noexec"
    printf 'touch %q\n' "$MARKS/noshebang" >"$FAKE/tm/fake/noshebang"
    chmod 755 "$FAKE/tm/fake/noshebang"
}
make_fake_tm

# Runs the lines (stdin) with oned-tm on the fake TM directory; the reply
# goes to $REPLY; the status is oned-tm's.
run_fake() { # [--allowed LIST|--all]
    local allowed=(--allowed fake)
    if [ "${1:-}" = --allowed ]; then
        allowed=(--allowed "$2")
    elif [ "${1:-}" = --all ]; then
        allowed=()
    fi
    cat >"$TEST_DIR/xfr"
    : >"$CALLS"
    local status=0
    "$HARNESS/oned-tm" "$FAKE" "$VMID" "$TEST_DIR/xfr" "${allowed[@]}" --cwd "$ONE_VAR" \
        --env "HOME=$ONE_VAR" --timeout 60 >"$REPLY" 2>"$TEST_DIR/oned-tm.err" || status=$?
    if [ "$status" -ge 2 ]; then
        echo "oned-tm failed (status $status):"
        cat "$TEST_DIR/oned-tm.err"
        return 2
    fi
    return "$status"
}

expect_reply() { # < expected lines
    if ! diff -u - "$REPLY" >"$TEST_DIR/reply.diff"; then
        echo "the driver's reply differs (- expected, + actual):"
        cat "$TEST_DIR/reply.diff"
        echo "oned-tm's stderr:"
        cat "$TEST_DIR/oned-tm.err"
        return 1
    fi
}

expect_calls() { # < expected lines
    if ! diff -u - "$CALLS" >"$TEST_DIR/calls.diff"; then
        echo "the actions run differ (- expected, + actual):"
        cat "$TEST_DIR/calls.diff"
        return 1
    fi
}

T=$FAKE/tm/fake

# ---------------------------------------------------------------- oned-tm

case_fallback() {
    run_fake <<'EOF'
# a comment
	   # an indented comment

CLONE.ssh fake frontend:/var/lib/one//datastores/1/abc node1:/d/5/disk.0 5 1
Snap_Create.SSH   fake	node1:/d/5/disk.0 -1 5 1
A.B.C fake /var/lib/one/vms/5/context.sh x:'n' a=b 100% $HOME - "q"
EOF
    expect_reply <<<"TRANSFER SUCCESS 5 -"
    expect_calls <<EOF
[$T/clone] [frontend:/var/lib/one//datastores/1/abc] [node1:/d/5/disk.0] [5] [1] 
[$T/snap_create.ssh] [node1:/d/5/disk.0] [-1] [5] [1] 
[$T/a.b] [/var/lib/one/vms/5/context.sh] [x:'n'] [a=b] [100%] [\$HOME] [-] ["q"] 
EOF
}

case_missing_script() {
    must_fail run_fake <<<"FOO fake x 5 1"
    expect_reply <<<"TRANSFER FAILURE 5 Driver path '$T/foo' does not exists"
    must_fail run_fake <<<"FOO.SSH fake x 5 1"
    expect_reply <<<"TRANSFER FAILURE 5 Driver path '$T/foo.ssh' nor '$T/foo' exists"
    # the name up to the LAST dot
    must_fail run_fake <<<"MKIMAGE.ssh.x fake 1 2 3"
    expect_reply <<<"TRANSFER FAILURE 5 Driver path '$T/mkimage.ssh.x' nor '$T/mkimage.ssh' exists"
    expect_calls </dev/null
}

case_not_allowed() {
    must_fail run_fake <<<"CLONE other a b 5 1"
    expect_reply <<<"TRANSFER FAILURE 5 Transfer Driver 'other' not available"
    expect_calls </dev/null
    # without -d every directory of remotes/tm is allowed
    run_fake --all <<<"CLONE other a b 5 1"
    expect_reply <<<"TRANSFER SUCCESS 5 -"
    expect_calls <<<"[$FAKE/tm/other/clone] [a] [b] [5] [1] "
    # the installation's list is oned.conf's TM_MAD -d (qcow2c added by
    # install.sh --apply-conf): a directory alone is not enough...
    mkdir -p "$REMOTES/tm/notlisted"
    cp "$FAKE/tm/other/clone" "$REMOTES/tm/notlisted/clone"
    defer rm -rf "$REMOTES/tm/notlisted"
    tm_transfer_fails "$VMID" <<<"CLONE notlisted a b 5 1"
    [ "$TM_INFO" = "Transfer Driver 'notlisted' not available" ]
    # ...and a listed name without a directory has no script
    tm_transfer_fails "$VMID" <<<"CLONE qcow2 a b 5 1"
    [ "$TM_INFO" = "Driver path '$REMOTES/tm/qcow2/clone' does not exists" ]
    [ "$TM_FILE" = "$VMS/$VMID/transfer.0.transfer" ]
}

case_first_failure_stops() {
    must_fail run_fake <<'EOF'
MARK fake one 5 1
FAIL fake a 5 1
MARK fake three 5 1
EOF
    [ -e "$MARKS/one" ]
    [ ! -e "$MARKS/three" ]
    tail -n 1 "$REPLY" | grep -q '^TRANSFER FAILURE 5 '
    [ "$(wc -l <"$CALLS")" = 2 ]
}

case_stderr() {
    must_fail run_fake <<<"FAIL fake a 5 1"
    expect_reply <<EOF
LOG I 5 Command execution failed (exit code: 3): $T/fail a 5 1
LOG I 5 fail: a log line without id
LOG E 5 5 a log line for VM 5
LOG I 5 WARN:   010 octal id
LOG D 5 08 not an octal number
LOG E 5 no blank after the colon
LOG I 5 plain line one
LOG I 5 
LOG I 5 plain line two
LOG I -1 fail: a log line without id
LOG E 5 a log line for VM 5
LOG W 8 octal id
LOG D -1 not an octal number
TRANSFER FAILURE 5 ERROR:no blank after the colonplain line oneplain line two
EOF
    # on success plain lines go nowhere and stdout is ignored
    run_fake <<<"OK fake a 5 1"
    expect_reply <<EOF
LOG I -1 ok: fine
TRANSFER SUCCESS 5 -
EOF
}

case_environment() {
    local f
    run_fake <<<"ENV fake node1:/x 5 1"
    # the names oned's driver gives (the capture), and the values that do
    # not depend on the installation
    f=$TM_FIXTURES/clone/1/env
    diff -u <(cut -d= -f1 "$f") <(cut -d= -f1 "$TEST_DIR/env.out")
    for v in LANG ONE_MAD_DEBUG PATH PRIORITY RUBYLIB SHELL SHLVL; do
        grep -Fx "$(grep "^$v=" "$f")" "$TEST_DIR/env.out"
    done
    grep -qx "HOME=$ONE_VAR" "$TEST_DIR/env.out"
    [ "$(cat "$TEST_DIR/pwd.out")" = "$(cd "$ONE_VAR" && pwd -P)" ]
    grep -qx "PWD=$(cd "$ONE_VAR" && pwd -P)" "$TEST_DIR/env.out"
    [ "$(cat "$TEST_DIR/stdin.out")" = 0 ]
    [ "$(cat "$TEST_DIR/nice.out")" = 19 ]
    [ "$(cat "$TEST_DIR/pgid.out")" = "$(cat "$TEST_DIR/pid.out")" ]
}

case_ruby_failures() {
    # killed by a signal: exit code 255, no stderr: info "-"
    must_fail run_fake <<<"KILL fake a 5 1"
    expect_reply <<EOF
LOG I 5 Command execution failed (exit code: 255): $T/kill a 5 1
TRANSFER FAILURE 5 -
EOF
    # cannot be executed: Ruby's exception text
    must_fail run_fake <<<"NOEXEC fake a 5 1"
    expect_reply <<EOF
LOG I 5 Internal error Permission denied - $T/noexec
TRANSFER FAILURE 5 Internal error Permission denied - $T/noexec
EOF
    # no #! line: run by /bin/sh
    run_fake <<<"NOSHEBANG fake a 5 1"
    [ -e "$MARKS/noshebang" ]
    # stderr that is not UTF-8: String#strip raises
    must_fail run_fake <<'EOF'
UTF8 fake 0
MARK fake never 5 1
EOF
    expect_reply <<EOF
LOG I -1 before
TRANSFER FAILURE 5 invalid byte sequence in UTF-8
EOF
    [ ! -e "$MARKS/never" ]
    must_fail run_fake <<<"UTF8 fake 1"
    expect_reply <<EOF
LOG I 5 Command execution failed (exit code: 1): $T/utf8 1
LOG I 5 Internal error invalid byte sequence in UTF-8
TRANSFER FAILURE 5 Internal error invalid byte sequence in UTF-8
EOF
    # a descendant still holds stderr 0.1 s after the exit: Ruby's reader
    # is killed and the whole stderr is lost
    defer kill_daemon
    must_fail run_fake <<<"DAEMON fake a 5 1"
    expect_reply <<EOF
LOG I 5 Command execution failed (exit code: 1): $T/daemon a 5 1
TRANSFER FAILURE 5 -
EOF
    grep -q 'still open' "$TEST_DIR/oned-tm.err"
}

kill_daemon() {
    [ ! -f "$TEST_DIR/daemon.pid" ] || kill "$(cat "$TEST_DIR/daemon.pid")" 2>/dev/null || true
}

case_vmm() {
    local img
    # oned-tm --vmm: stdin given, every TM directory allowed, no TRANSFER
    printf 'Zm9v' >"$TEST_DIR/in"
    : >"$CALLS"
    expect_success "$HARNESS/oned-tm" "$FAKE" 5 --vmm "PREMIGRATE.ssh other node1 node2 /d 5 0" \
        --stdin "$TEST_DIR/in" --cwd "$ONE_VAR"
    expect_stdout "SUCCESS -"
    expect_calls <<<"[$FAKE/tm/other/premigrate] [node1] [node2] [/d] [5] [0] "
    [ "$(cat "$TEST_DIR/stdin.other")" = Zm9v ]
    must_fail "$HARNESS/oned-tm" "$FAKE" 5 --vmm "VMMFAIL fake a 5 0" --cwd "$ONE_VAR"
    expect_stdout - <<EOF
LOG I 5 Command execution failed (exit code: 1): $T/vmmfail a 5 0
LOG E 5 5 went wrong
LOG I 5 the reason
LOG E 5 went wrong
FAILURE the reason
EOF
    # tm_vmm: the migrate hooks get the base64 VM on stdin, and the VMM
    # driver's environment (what vmm_execrc exports)
    img=$(tm_image vmm --format qcow2 --size 1)
    tm_vm 6 --host node1 --system-ds 0 --disk image="$img"
    mkdir -p "$REMOTES/tm/fakevmm"
    cp "$T/stdin" "$REMOTES/tm/fakevmm/premigrate"
    defer rm -rf "$REMOTES/tm/fakevmm"
    tm_vmm 6 "PREMIGRATE fakevmm node1 node2 $(tm_sysdir 6) 6 0"
    base64 -d "$TEST_DIR/stdin.copy" | grep -q '^<VM><ID>6</ID>'
    grep -q '^LIVE_DISK_SNAPSHOTS=.*kvm-qcow2c' "$TEST_DIR/env.out"
    grep -q '^VNMAD_LOCAL_ACTIONS=' "$TEST_DIR/env.out"
    [ "$TM_OUTCOME" = SUCCESS ]
}

# ---------------------------------------------------------------- hosts

case_private_dirs() {
    local h img_dir
    for h in node1 node2; do
        on_host "$h" sh -c "echo $h >$SSH_DIR/who"
    done
    echo frontend >"$SSH_DIR/who"
    for h in node1 node2; do
        [ "$(on_host "$h" cat "$SSH_DIR/who")" = "$h" ]
        [ "$(cat "$HOSTS_DIR/hosts/$h$SSH_DIR/who")" = "$h" ]
    done
    [ "$(cat "$SSH_DIR/who")" = frontend ]
    [ "$(on_host frontend cat "$SSH_DIR/who")" = frontend ]
    # the rest is shared: the image datastore, datastore 0, the test tree
    img_dir=$(_tm_norm "$DS_LOCATION/$IMG_DS")
    on_host node1 touch "$img_dir/from-node1" "$(_tm_norm "$DS_LOCATION/$SYS_DS")/from-node1"
    on_host node2 test -e "$img_dir/from-node1"
    on_host node2 test -e "$(_tm_norm "$DS_LOCATION/$SYS_DS")/from-node1"
    [ -e "$img_dir/from-node1" ]
    rm -f "$img_dir/from-node1" "$(_tm_norm "$DS_LOCATION/$SYS_DS")/from-node1" "$SSH_DIR/who"
}

elapsed_since() { # START_NS -> whole seconds
    echo $((($(date +%s%N) - $1) / 1000000000))
}

case_paused_host() {
    local start s
    defer hosts_ctl resume node1
    hosts_ctl pause node1
    start=$(date +%s%N)
    must_fail --status 255 on_host node1 true
    s=$(elapsed_since "$start")
    expect_stderr_line --match 'timed out'
    if [ "$s" -lt $((CONNECT_TIMEOUT - 1)) ] || [ "$s" -gt $((CONNECT_TIMEOUT + 3)) ]; then
        echo "ssh to the paused host gave up after $s s, ConnectTimeout is $CONNECT_TIMEOUT s"
        return 1
    fi
    on_host node2 true
    # through the driver too: an action on the hung host fails in time
    start=$(date +%s%N)
    tm_transfer_fails "$VMID" <<<"DELETE ssh node1:$SSH_DIR/$VMID $VMID $SSH_DS"
    s=$(elapsed_since "$start")
    [ "$s" -le $((CONNECT_TIMEOUT + 5)) ]
    [ "$TM_INFO" = "Error deleting $SSH_DIR/$VMID" ]
    hosts_ctl resume node1
    on_host node1 true
    # down: refused at once; up: the same port again
    hosts_ctl down node2
    start=$(date +%s%N)
    must_fail --status 255 on_host node2 true
    expect_stderr_line --match 'refused'
    [ "$(elapsed_since "$start")" -le 2 ]
    hosts_ctl up node2
    on_host node2 true
}

# ---------------------------------------------------------------- oned's files

# VM 9 as in the lab: a non-persistent qcow2 OS image, a persistent qcow2
# datablock, a volatile 16 MB qcow2 disk, 8 MB of swap, a context disk.
make_vm9() { # SYSTEM_DS
    local a b
    a=$(tm_image os --format qcow2 --size 64)
    b=$(tm_image data --format qcow2 --size 16 --persistent --type DATABLOCK)
    tm_vm 9 --host node1 --system-ds "$1" --disk image="$a" --disk image="$b" \
        --volatile 16:fs:qcow2 --volatile 8:swap --context
    HASH_A=$(basename "$(tm_image_source "$a")")
    HASH_B=$(basename "$(tm_image_source "$b")")
}

# The captured (or derived) file in this test's paths: system datastore 106
# -> SYS, image datastore 107 -> 1, the lab's image names -> ours.
rewrite() { # FILE SYS
    sed -e "s#/var/lib/one//datastores/106/#$DS_LOCATION/$2/#g" \
        -e "s#/var/lib/one//datastores/107/#$DS_LOCATION/$IMG_DS/#g" \
        -e "s# 9 106\$# 9 $2#" -e "s# 9 107\$# 9 $IMG_DS#" \
        -e "s#7884294dec91169f7f22cacffae86121#$HASH_A#g" \
        -e "s#e5214f0e1cf89c730f911a643be2f4dc#$HASH_B#g" "$1"
}

same_file() { # WHAT EXPECTED-FILE SYS < generated
    if ! diff -u <(rewrite "$2" "$3") - >"$TEST_DIR/gen.diff"; then
        echo "$1: the generated transfer file differs from $2 (- oned, + lib-tm.sh):"
        cat "$TEST_DIR/gen.diff"
        return 1
    fi
}

case_files_shared() {
    local X=$TM_FIXTURES/transfer-files/vm9 E=$TM_FIXTURES/expected/vm9 want
    make_vm9 "$SYS_DS"
    tm_prolog 9 --print | same_file prolog "$X/transfer.0.prolog" "$SYS_DS"
    tm_epilog 9 --print | same_file epilog "$X/transfer.8.epilog" "$SYS_DS"
    tm_stop 9 --print | same_file stop "$E/stop" "$SYS_DS"
    tm_resume 9 node2 --print | same_file resume "$E/resume" "$SYS_DS"
    tm_delete_vm 9 --print | same_file delete "$E/delete" "$SYS_DS"
    # the VMM's CONTEXT command at deploy (captured for VM 12, same disks)
    want=$(sed -n 's/.*<TM_COMMAND><!\[CDATA\[\(CONTEXT[^]]*\)$/\1/p' "$TM_FIXTURES/vmm/001-DEPLOY-vm12.xml" |
        sed -e "s#/var/lib/one/vms/12/#$VMS/9/#g" \
            -e "s#/var/lib/one//datastores/108/12/#$DS_LOCATION/$SYS_DS/9/#" -e "s# 12 108\$# 9 $SYS_DS#")
    [ -n "$want" ]
    [ "$(tm_context 9 --print)" = "$want" ]
    # cold migration node2 -> node1 (captured)
    tm_vm_move 9 node2
    tm_migrate 9 node2 node1 --print | same_file migrate "$X/transfer.7.migrate" "$SYS_DS"
}

case_files_mixed() {
    local E=$TM_FIXTURES/expected/vm9-ssh
    make_vm9 "$SSH_DS"
    [ "$(tm_get vm 9 '/VM/TEMPLATE/DISK[DISK_ID=0]/TM_MAD_SYSTEM')" = ssh ]
    [ "$(tm_get vm 9 '/VM/TEMPLATE/DISK[DISK_ID=1]/LN_TARGET')" = SYSTEM ]
    tm_prolog 9 --print | same_file prolog "$E/prolog" "$SSH_DS"
    tm_epilog 9 --print | same_file epilog "$E/epilog" "$SSH_DS"
    tm_stop 9 --print | same_file stop "$E/stop" "$SSH_DS"
    tm_resume 9 node2 --print | same_file resume "$E/resume" "$SSH_DS"
    tm_delete_vm 9 --print | same_file delete "$E/delete" "$SSH_DS"
    tm_vm_move 9 node2
    tm_migrate 9 node2 node1 --print | same_file migrate "$E/migrate" "$SSH_DS"
}

# The ssh system TM's stand-ins on their own: a VM with volatile disks only
# on datastore 100 goes node1 -> front-end -> node2 -> node1 -> gone, each
# time in that host's private directory only.
swap_label() { # HOST FILE
    on_host "$1" dd if="$2" bs=4096 count=1 status=none | od -An -c | tr -d ' \n' | grep -q 'SWAPSPACE2'
}

only_on() { # HOST DIR: DIR exists on HOST and nowhere else
    local h
    for h in node1 node2 "$FE"; do
        if [ "$h" = "$1" ]; then
            on_host "$h" test -d "$2"
        else
            on_host "$h" test ! -e "$2"
        fi
    done
}

case_ssh_system_tm() {
    local dir
    tm_vm 30 --host node1 --system-ds "$SSH_DS" --volatile 16:fs:qcow2 --volatile 8:swap --context
    dir=$(tm_sysdir 30)
    tm_prolog 30
    grep -q "^MKIMAGE ssh 16 qcow2 node1:$dir/disk.0 30 $SSH_DS\$" "$TM_FILE"
    tm_context 30
    expect_layout node1 "$dir" <<EOF
        .      dir
        disk.0 file qcow2
        disk.1 file raw
        disk.2 file raw
EOF
    swap_label node1 "$(_tm_norm "$dir")/disk.1"
    only_on node1 "$(_tm_norm "$dir")"
    tm_stop 30
    [ "$(tm_get vm 30 /VM/STATE)" = 4 ]
    only_on "$FE" "$(_tm_norm "$dir")"
    swap_label "$FE" "$(_tm_norm "$dir")/disk.1"
    tm_resume 30 node2
    only_on node2 "$(_tm_norm "$dir")"
    tm_migrate 30 node2 node1
    only_on node1 "$(_tm_norm "$dir")"
    expect_layout node1 "$dir" <<EOF
        .      dir
        disk.0 file qcow2
        disk.1 file raw
        disk.2 file raw
EOF
    tm_epilog 30
    [ "$(tm_get vm 30 /VM/STATE)" = 6 ]
    on_host node1 test ! -e "$(_tm_norm "$dir")"
    # idempotent as the stock script: deleting again succeeds
    tm_delete_vm 30
}

test_case "oned-tm: lower-cased actions, .ssh fallback to the last dot, exact argv" case_fallback
test_case "oned-tm: missing scripts give oned's two error texts" case_missing_script
test_case "oned-tm: a TM not in the driver's -d list" case_not_allowed
test_case "oned-tm: the first failing line stops the file" case_first_failure_stops
test_case "oned-tm: stderr as LOG lines (with and without VM id) and the glued reason" case_stderr
test_case "oned-tm: cwd, environment, empty stdin, nice 19, own process group" case_environment
test_case "oned-tm: signals, exec errors, no #!, invalid UTF-8, stderr held open" case_ruby_failures
test_case "oned-tm --vmm and tm_vmm: stdin, vmm_execrc, SUCCESS/FAILURE" case_vmm
test_case "hosts: a private system datastore per host and front-end, the rest shared" case_private_dirs
test_case "hosts: a paused host times out within ConnectTimeout; down and up" case_paused_host
test_case "lib-tm: generated files equal oned's for VM 9 (shared system datastore)" case_files_shared
test_case "lib-tm: generated files equal oned's for VM 9 (mixed mode, system TM ssh)" case_files_mixed
test_case "tm-ssh: the ssh system TM stand-ins move a VM between private directories" case_ssh_system_tm
