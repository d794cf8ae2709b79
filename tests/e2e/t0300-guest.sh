#!/bin/bash
# e2e: alone (a TCG guest: it needs both cores, and times what it sees)
# t0300-guest.sh - the live-disk test bed (tests/lib/guest.sh): a real
# libvirt-managed QEMU guest under software emulation, started as
# OpenNebula's KVM driver starts one (transient, <domain type='qemu'>, disk in
# a VM directory, DEPLOY_ID = the UUID), whose writer keeps a checkable
# record stream on its qcow2 overlay; and what each way of copying a running
# disk gives, judged by build/harness/check-copy:
#   - suspend, qemu-img convert -U, resume: CONSISTENT (the pause is the instant);
#   - qemu-img convert -U while the guest writes: TORN (read sequentially and
#     slowly, always; at full speed almost never, so only counted);
#   - OpenNebula's own hot copy, `touch DST; virsh blockcopy DOM vda DST --wait
#     --finish`: CONSISTENT, standalone: the baseline for the hot save-as;
#   - domfsfreeze/domfsthaw: with qemu-ga the writer's ext4 is frozen (the
#     writer stops, a copy taken meanwhile is CONSISTENT); without an agent
#     channel, or with one nobody answers, it fails at once;
#   - destroying the guest (a power cut) leaves a CONSISTENT disk.
# Figures (libvirtd start, build, boot, records/s, QEMU RSS, copy and freeze
# times, stalls the guest saw) are printed at the end. Needs root.
. "$(dirname "$0")/lib.sh"

need_tool virsh virtlogd libvirtd qemu-img qemu-system-x86_64 cc cpio mkfs.ext4 awk runuser
if [ "$(id -u)" != 0 ]; then
    echo "t0300-guest: needs root (libvirtd, QEMU as libvirt-qemu)" >&2
    exit 1
fi

GUEST=$SRC/tests/lib/guest.sh
CHECK=$BUILD/harness/check-copy
URI=qemu:///system
LV=$TEST_DIR/libvirt      # pid files of the daemons libvirt-start starts
FIG=$TEST_DIR/figures
T_START=$EPOCHREALTIME
# Images live where libvirt-qemu can reach them (TEST_DIR is 0700 under /tmp).
G=$(mktemp -d /var/tmp/qcow2c-guest-XXXXXX)
chmod 0755 "$G"
DS=$G/datastores/0        # a system datastore: one directory per VM
PLAIN=qcow2c-t0300-$$-plain
AGENT=qcow2c-t0300-$$-agent
SILENT=qcow2c-t0300-$$-channel
: >"$FIG"
# Last registered, first run: domains, then daemons, then files.
defer rm -rf "$G"
defer "$GUEST" libvirt-stop "$LV"
defer "$GUEST" stop "$G" "$PLAIN"
defer "$GUEST" stop "$G" "$AGENT"
defer "$GUEST" stop "$G" "$SILENT"

# ---------------------------------------------------------------- helpers

vsh() {
    timeout -k 5 60 virsh -c "$URI" "$@"
}

elapsed() { # FROM [TO]: seconds, 3 decimals
    awk -v a="$1" -v b="${2:-$EPOCHREALTIME}" 'BEGIN { printf "%.3f", b - a }'
}

fig() {
    echo "$*" >>"$FIG"
}

counter() {
    "$GUEST" counter "$G" "$1"
}

# A live process; not a zombie (QEMU and the daemons are children of PID 1,
# which may reap them late).
alive() { # PID
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

# Waits (at most S seconds, default 20) until NAME's counter exceeds N.
wait_counter_above() { # NAME N [S]
    local deadline=$((SECONDS + ${3:-20})) c
    while :; do
        c=$(counter "$1" 2>/dev/null || echo 0)
        [ "$c" -le "$2" ] || return 0
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "wait_counter_above: $1 still at $c after ${3:-20} s (wanted > $2)" >&2
            return 1
        fi
        sleep 0.1
    done
}

# check-copy says CONSISTENT; prints the copy's counter.
consistent() { # IMAGE
    expect_success "$CHECK" "$1" || return 1
    grep -q '^CONSISTENT counter=' "$LAST_STDOUT" || {
        echo "consistent: check-copy said: $(cat "$LAST_STDOUT")" >&2
        return 1
    }
    sed -n 's/^CONSISTENT counter=\([0-9]*\) .*/\1/p' "$LAST_STDOUT"
}

between() { # LOW VALUE HIGH WHAT
    if [ "$2" -lt "$1" ] || [ "$2" -gt "$3" ]; then
        echo "$4: $2 is not within $1..$3" >&2
        return 1
    fi
}

# A VM directory of the system datastore with disk.0, a qcow2 overlay on an
# image (OpenNebula's qcow2 TM: the image is the backing file), by default
# the guest's base disk.
new_vm_dir() { # ID [IMAGE]
    mkdir -p "$DS/$1"
    chmod 0755 "$G/datastores" "$DS" "$DS/$1"
    qemu-img create -q -f qcow2 -b "${2:-$G/base.qcow2}" -F qcow2 "$DS/$1/disk.0"
}

qemu_rss_mib() { # NAME
    awk '/^VmRSS:/ { printf "%d", $2 / 1024 }' "/proc/$(cat "/run/libvirt/qemu/$1.pid")/status"
}

# From `guest.sh start` stderr: seconds from virsh create to the first record.
boot_seconds() {
    sed -n 's/.* first record \([0-9.]*\) s after virsh create.*/\1/p' "$LAST_STDERR" | tail -n 1
}

records_per_second() { # NAME
    local c0 c1 t0
    c0=$(counter "$1")
    t0=$EPOCHREALTIME
    sleep 2
    c1=$(counter "$1")
    awk -v n=$((c1 - c0)) -v t="$(elapsed "$t0")" 'BEGIN { printf "%.1f", n / t }'
}

# ---------------------------------------------------------------- cases

case_libvirt() {
    local t0=$EPOCHREALTIME
    expect_success "$GUEST" libvirt-start "$LV"
    fig "libvirt-start: $(elapsed "$t0") s ($(tail -n 1 "$LAST_STDERR" | sed 's/^guest.sh: //'))"
    expect_success vsh version
    grep -q '^Running hypervisor: QEMU' "$LAST_STDOUT"
    # A second start finds it answering and starts nothing.
    expect_success "$GUEST" libvirt-start "$LV"
    expect_stderr_line "guest.sh: libvirtd already answers on $URI"
}

case_build() {
    local t0=$EPOCHREALTIME
    expect_success "$GUEST" build "$G"
    fig "build: $(elapsed "$t0") s; $(paste -sd ';' "$G/build.info" | sed 's/;/; /g')"
    expect_success "$GUEST" build "$G"
    expect_stderr_line --match '^guest.sh: guest in .* is up to date'
    for f in vmlinuz initrd-plain.cpio initrd-agent.cpio base.qcow2; do
        runuser -u libvirt-qemu -- test -r "$G/$f"
    done
    qemu_img_check "$G/base.qcow2"
    expect_success "$CHECK" "$G/base.qcow2"
    expect_stdout "CONSISTENT counter=0 at=0.000000 boot=0 ring=64 records=0"
}

case_boot_plain() {
    local uuid rate
    new_vm_dir 1
    expect_success "$GUEST" start "$G" "$PLAIN" "$DS/1/disk.0" --records 20
    uuid=$(cat "$LAST_STDOUT")
    [[ $uuid =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]]
    fig "boot without agent: first record $(boot_seconds) s after virsh create"
    # As OpenNebula deploys: transient, TCG, the deployment file in the VM
    # directory, addressed by its UUID (DEPLOY_ID).
    expect_success vsh dominfo "$uuid"
    grep -Eq '^Persistent: +no$' "$LAST_STDOUT"
    grep -Eq '^State: +running$' "$LAST_STDOUT"
    grep -q "^<domain type='qemu'" "$DS/1/deployment.0"
    grep -q "<uuid>$uuid</uuid>" "$DS/1/deployment.0"
    expect_success vsh domblklist "$uuid"
    grep -Eq "^ *vda +$DS/1/disk.0$" "$LAST_STDOUT"
    rate=$(records_per_second "$PLAIN")
    awk -v r="$rate" 'BEGIN { exit !(r >= 5) }' || { echo "only $rate records/s" >&2; return 1; }
    fig "writer: $rate records/s (period 50 ms); QEMU RSS $(qemu_rss_mib "$PLAIN") MiB"
    # start again: it runs already, same UUID.
    expect_success "$GUEST" start "$G" "$PLAIN" "$DS/1/disk.0"
    expect_stdout "$uuid"
}

case_freeze_without_agent() {
    local c0 t0
    c0=$(counter "$PLAIN")
    t0=$EPOCHREALTIME
    must_fail vsh domfsfreeze "$PLAIN"
    expect_stderr_line --match 'QEMU guest agent is not configured'
    awk -v t="$(elapsed "$t0")" 'BEGIN { exit !(t < 5) }'
    fig "domfsfreeze without agent channel: fails in $(elapsed "$t0") s:" \
        "$(grep -m 1 'not configured' "$LAST_STDERR")"
    wait_counter_above "$PLAIN" $((c0 + 5))
}

case_paused_copy() {
    local c0 c1 n t0 t1 t2 stall
    c0=$(counter "$PLAIN")
    t0=$EPOCHREALTIME
    expect_success vsh suspend "$PLAIN"
    t1=$EPOCHREALTIME
    expect_success qemu-img convert -U -O qcow2 "$DS/1/disk.0" "$G/paused.qcow2"
    expect_success vsh resume "$PLAIN"
    t2=$EPOCHREALTIME
    wait_counter_above "$PLAIN" "$c0"
    c1=$(counter "$PLAIN")
    n=$(consistent "$G/paused.qcow2")
    between "$c0" "$n" "$c1" "the paused copy's counter"
    stall=$("$GUEST" stall "$G" "$PLAIN" "$t0" "$t2")
    fig "suspend + convert -U + resume: $(elapsed "$t0" "$t2") s (suspend $(elapsed "$t0" "$t1") s);" \
        "copy CONSISTENT at $n; stall $stall (the guest's clock stops while paused)"
}

case_convert_running() {
    local i torn=0 tries=20 out
    # Sequential and slow (one coroutine, 2 MB/s): the ring slots are read
    # long before the header at the end of the ring file.
    expect_success qemu-img convert -U -m 1 -r 2M -O qcow2 "$DS/1/disk.0" "$G/slow.qcow2"
    must_fail --status 1 "$CHECK" "$G/slow.qcow2"
    grep -q '^TORN counter=[0-9]' "$LAST_STDOUT"
    out=$(sed 's/: .*//' "$LAST_STDOUT")
    # At full speed the whole read takes a few ms: a writer record rarely
    # falls inside it.
    for i in $(seq 1 "$tries"); do
        qemu-img convert -U -O qcow2 "$DS/1/disk.0" "$G/fast.qcow2"
        "$CHECK" "$G/fast.qcow2" >/dev/null || torn=$((torn + 1))
    done
    fig "convert -U of the running disk: slow sequential read: $out; full speed: $torn of $tries TORN"
}

case_blockcopy() {
    local c0 c1 n t0 t1 dst=$G/saved/copy.qcow2 stall
    mkdir -p "$G/saved"
    chmod 0755 "$G/saved"
    c0=$(counter "$PLAIN")
    t0=$EPOCHREALTIME
    touch "$dst"
    expect_success vsh blockcopy "$PLAIN" vda "$dst" --wait --finish
    t1=$EPOCHREALTIME
    wait_counter_above "$PLAIN" "$(counter "$PLAIN")"
    c1=$(counter "$PLAIN")
    n=$(consistent "$dst")
    between "$c0" "$n" "$c1" "the blockcopy's counter"
    echo "$n" >"$TEST_DIR/saved.counter"
    qemu_img_check "$dst"
    # A standalone, flattened qcow2; the domain stays on its own disk.
    qemu-img info -U --output=json "$dst" >"$TEST_DIR/info.json"
    grep -q '"format": "qcow2"' "$TEST_DIR/info.json"
    if grep -q '"backing-filename"' "$TEST_DIR/info.json"; then
        echo "the copy has a backing file" >&2
        return 1
    fi
    expect_success vsh domblklist "$PLAIN"
    grep -Eq "^ *vda +$DS/1/disk.0$" "$LAST_STDOUT"
    stall=$("$GUEST" stall "$G" "$PLAIN" "$t0" "$t1")
    fig "blockcopy --wait --finish (64 MiB disk): $(elapsed "$t0" "$t1") s; copy CONSISTENT at $n" \
        "(guest at $c0 before, $c1 after); stall $stall"
    wait_counter_above "$PLAIN" $((c1 + 5))
}

case_stop_plain() {
    local last n qpid
    qpid=$(cat "/run/libvirt/qemu/$PLAIN.pid")
    expect_success "$GUEST" stop "$G" "$PLAIN"
    must_fail vsh domstate "$PLAIN"
    if alive "$qpid"; then
        echo "QEMU $qpid still runs" >&2
        return 1
    fi
    [ ! -e "$G/domains/$PLAIN/follower.pid" ]
    expect_success "$GUEST" stop "$G" "$PLAIN"
    # Destroyed = power cut: the disk holds the last record written, or the
    # one in flight; nothing locks it any more.
    last=$(counter "$PLAIN")
    n=$(consistent "$DS/1/disk.0")
    between "$last" "$n" $((last + 1)) "the destroyed guest's disk counter"
    expect_success qemu-img check -q "$DS/1/disk.0"
}

case_boot_agent() {
    local deadline=$((SECONDS + 30))
    new_vm_dir 2
    expect_success "$GUEST" start "$G" "$AGENT" "$DS/2/disk.0" --agent --records 20
    fig "boot with agent: first record $(boot_seconds) s after virsh create;" \
        "$(records_per_second "$AGENT") records/s; QEMU RSS $(qemu_rss_mib "$AGENT") MiB"
    until vsh qemu-agent-command "$AGENT" '{"execute":"guest-ping"}' --timeout 5 >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "qemu-ga does not answer guest-ping" >&2; return 1; }
        sleep 0.5
    done
    expect_success vsh domfsinfo "$AGENT"
    grep -Eq '^ */mnt +vda +ext4' "$LAST_STDOUT"
}

case_agent_freeze() {
    local c0 c1 n t0 t1 t2 t3 stall gap
    c0=$(counter "$AGENT")
    t0=$EPOCHREALTIME
    expect_success vsh domfsfreeze "$AGENT"
    t1=$EPOCHREALTIME
    grep -q 'Froze 1 filesystem' "$LAST_STDOUT"
    # Frozen: the writer is blocked in a write; the disk stays at the last
    # record it printed.
    sleep 0.2
    c1=$(counter "$AGENT")
    [ "$c1" -ge "$c0" ]
    sleep 1
    [ "$(counter "$AGENT")" = "$c1" ] || { echo "the writer went on while frozen" >&2; return 1; }
    expect_success qemu-img convert -U -O qcow2 "$DS/2/disk.0" "$G/frozen.qcow2"
    [ "$(counter "$AGENT")" = "$c1" ] || { echo "the writer went on while frozen" >&2; return 1; }
    t2=$EPOCHREALTIME
    expect_success vsh domfsthaw "$AGENT"
    t3=$EPOCHREALTIME
    grep -q 'Thawed 1 filesystem' "$LAST_STDOUT"
    wait_counter_above "$AGENT" $((c1 + 5))
    n=$(consistent "$G/frozen.qcow2")
    [ "$n" = "$c1" ] || { echo "frozen copy at $n, the guest printed $c1" >&2; return 1; }
    stall=$("$GUEST" stall "$G" "$AGENT" "$t0" "$t3")
    gap=$(sed -n 's/^guest=\([0-9.]*\) .*/\1/p' <<<"$stall")
    awk -v g="$gap" 'BEGIN { exit !(g >= 1.0) }' || { echo "no stall in guest time: $stall" >&2; return 1; }
    fig "domfsfreeze $(elapsed "$t0" "$t1") s, domfsthaw $(elapsed "$t2" "$t3") s (virsh round trips);" \
        "frozen $(elapsed "$t0" "$t3") s: stall $stall; copy while frozen CONSISTENT at $n"
}

case_stop_agent() {
    expect_success "$GUEST" stop "$G" "$AGENT"
    must_fail vsh domstate "$AGENT"
}

# On the saved copy: the copy boots, and its writer carries on from the
# copy's counter.
case_channel_without_agent() {
    local t0 n
    n=$(cat "$TEST_DIR/saved.counter")
    new_vm_dir 3 "$G/saved/copy.qcow2"
    expect_success "$GUEST" start "$G" "$SILENT" "$DS/3/disk.0" --channel --records 5
    grep -q "org.qemu.guest_agent.0" "$DS/3/deployment.0"
    tr -d '\r' <"$G/domains/$SILENT/console.log" | grep -qx "writer: start boot=2 counter=$n ring=64 period=50 ms"
    t0=$EPOCHREALTIME
    must_fail vsh domfsfreeze "$SILENT"
    expect_stderr_line --match 'agent is not (connected|responding)'
    awk -v t="$(elapsed "$t0")" 'BEGIN { exit !(t < 10) }'
    fig "domfsfreeze with the channel but no agent in the guest: fails in $(elapsed "$t0") s:" \
        "$(grep -m 1 -E 'agent is not' "$LAST_STDERR")"
    wait_counter_above "$SILENT" "$(counter "$SILENT")"
    expect_success "$GUEST" stop "$G" "$SILENT"
}

case_libvirt_stop() {
    local pid=""
    [ ! -f "$LV/libvirtd.pid" ] || pid=$(cat "$LV/libvirtd.pid")
    expect_success "$GUEST" libvirt-stop "$LV"
    if [ -n "$pid" ]; then
        # It started libvirtd: that one is gone.
        if alive "$pid"; then
            echo "libvirtd $pid still runs" >&2
            return 1
        fi
    else
        # A libvirtd was there before: untouched.
        expect_success vsh version
    fi
    [ ! -e "$LV/libvirtd.pid" ] && [ ! -e "$LV/virtlogd.pid" ]
    expect_success "$GUEST" libvirt-stop "$LV"
}

test_case "libvirt-start starts virtlogd + libvirtd without systemd" case_libvirt
test_case "guest.sh build makes the guest once" case_build
test_case "a guest without agent boots on a qcow2 overlay, as OpenNebula deploys, and writes" case_boot_plain
test_case "without an agent channel domfsfreeze fails at once, the guest keeps writing" case_freeze_without_agent
test_case "a copy made while paused (suspend, convert -U, resume) is CONSISTENT" case_paused_copy
test_case "qemu-img convert -U of the running disk is not point-in-time: TORN" case_convert_running
test_case "OpenNebula's hot copy (virsh blockcopy --wait --finish) is CONSISTENT and standalone" case_blockcopy
test_case "guest.sh stop destroys it; its disk is then CONSISTENT (a power cut)" case_stop_plain
test_case "a guest with qemu-ga boots; the agent answers" case_boot_agent
test_case "domfsfreeze stops the writer, a copy meanwhile is CONSISTENT, domfsthaw resumes it" case_agent_freeze
test_case "guest.sh stop destroys the agent guest" case_stop_agent
test_case "a guest on the saved copy resumes its stream; with the channel but no agent domfsfreeze fails at once" case_channel_without_agent
test_case "libvirt-stop stops only what libvirt-start started" case_libvirt_stop

sed 's/^/# /' "$FIG"
echo "# t0300-guest: $(elapsed "$T_START") s in all"
