#!/bin/bash
# guest.sh - a real libvirt-managed QEMU guest (software emulation) whose disk
# can be checked for point-in-time copies: the test bed of live disk snapshots
# and of the hot disk save-as of a RUNNING VM.
#
#   guest.sh libvirt-start DIR   start virtlogd + libvirtd (no systemd needed)
#                                unless a libvirtd answers; pid files in DIR;
#                                waits until `virsh version` answers
#   guest.sh libvirt-stop DIR    stop what libvirt-start DIR started (and the
#                                transient domains of that libvirtd), nothing else
#   guest.sh build DIR           build the guest into DIR once (kernel, two
#                                initramfs, base disk); a no-op when up to date
#   guest.sh start DIR NAME DISK [--agent | --channel] [--vm-dir VMDIR]
#                                [--records N] [--period MS] [--timeout S]
#                                `virsh create` a transient domain on DISK,
#                                wait until its writer has written N records
#                                (default 10) in this boot; prints the UUID.
#                                --agent: qemu-ga runs on the agent channel;
#                                --channel: the channel without an agent (a VM
#                                whose template enables the agent, whose image
#                                lacks it)
#   guest.sh stop DIR NAME       destroy it (no-op when it is not running)
#   guest.sh counter DIR NAME    the last counter the guest printed
#   guest.sh stall DIR NAME FROM TO
#                                the largest gap between consecutive records
#                                whose console lines arrived in the host-time
#                                window [FROM, TO] (epoch seconds, as from
#                                `date +%s.%N`): "guest=S host=S after=N
#                                counters=A-B records=R", S in seconds: guest=
#                                by the guest's own clock (the stall the guest
#                                saw; it followed record N), host= by the
#                                lines' arrival on the host; A-B the records
#                                considered. Waits (bounded) for the first
#                                record after TO, which ends a gap spanning TO.
#
# The guest. The host's kernel (/boot/vmlinuz-*; linux-image-amd64 comes from
# tests/deps.sh) and a small initramfs: the dynamic /bin/busybox with its
# libraries, the virtio and ext4 modules (with their dependencies, from
# modprobe --show-depends), and `writer`, a C program compiled here with
# tests/harness/check_copy_logic.c (the record format check-copy reads). The
# disk (DIR/base.qcow2, 64 MiB) holds an ext4 file system made on the host
# (mkfs.ext4 -d) with one file, /records: N = 64 ring slots 64 KiB apart (one
# qcow2 cluster each), then the header, all preallocated. /init mounts it
# (noatime) and runs the writer: every PERIOD ms (default 50) it writes record
# n (counter, N, boot, guest CLOCK_MONOTONIC when made) into slot n mod N,
# then into the header, each with O_DIRECT | O_DSYNC so that one is on the
# disk before the next starts, then prints "counter N UPTIME" on the serial
# console, UPTIME being the guest's CLOCK_MONOTONIC when record n was on the
# disk (so a write held up by a freeze shows). A writer started on a disk
# that holds records resumes after the header's counter with the next boot
# number ("writer: start boot=B counter=N" on the console): a guest booted on
# a saved copy carries on from the copy's instant. `build/harness/check-copy
# IMAGE` says whether an image holds one instant of that stream.
# The agent variant runs the real qemu-ga (Debian's qemu-guest-agent, copied
# with its libraries) on the virtio-serial port org.qemu.guest_agent.0, so
# that `virsh domfsfreeze/domfsthaw` work. The writer writes through the
# mounted ext4 on purpose: qemu-ga freezes mounted block-device file systems
# only (with none, a freeze succeeds and stops nothing), and a write to a
# frozen ext4 blocks, so a freeze shows in the guest's own timestamps.
#
# The domain looks like the one OpenNebula's KVM driver makes
# (shared/oned-captures/hot/vm-a.deployment.0): transient (`virsh create`),
# <domain type='qemu'>, q35 with pcie root ports, 128 MiB, 1 vCPU, ACPI,
# <kernel>/<initrd>/<cmdline>, disk vda on virtio with cache='none'
# discard='unmap', a virtio-scsi controller, the serial console to a file, the
# agent channel when asked, OpenNebula's metadata; its deployment file is
# VMDIR/deployment.0 (VMDIR default: DISK's directory) and it runs under the
# UUID start prints (OpenNebula's DEPLOY_ID). Left out: <cputune><shares>
# (needs a cgroup cpu controller, irrelevant to storage).
#
# State: DIR/domains/NAME/ holds console.log (the serial console: QEMU
# appends to it, ~0.5 KB/s), console.ts (each console line with its host
# arrival time, written by a `tail -F` that ends with the QEMU process or at
# stop), uuid, vm-dir. Every image (DISK, its
# backing files, DIR) must be readable by the libvirt-qemu user: use a
# directory such as /var/tmp/qcow2c-guest-XXXXXX (0755), never one under
# /root; start checks the chain first. Needs root. Every wait is bounded
# (libvirtd: GUEST_LIBVIRT_WAIT, default 300 s; virsh calls:
# GUEST_VIRSH_TIMEOUT, 60 s; start: --timeout, 120 s; stall: GUEST_STALL_WAIT,
# 30 s).
#
# Measured here (Debian 12, libvirt 9.0.0, QEMU 7.2, kernel 6.1, 2 cores,
# TCG, no systemd):
#   - packages (tests/deps.sh): 68 .deb, 75 MB, installed in 57 s from a fast
#     mirror, half of it the kernel's initramfs trigger; allow 2-3 min on a
#     bare machine;
#   - libvirt-start: the first start ever (no /var/cache/libvirt/qemu/
#     capabilities: libvirtd probes qemu-system-i386 and -x86_64 before it
#     answers) 8 s, later starts 0.2 s; no libvirt configuration change is
#     needed as root. libvirtd runs pinned to one CPU: unpinned it read a
#     different host CPUID about every other start ("Outdated capabilities
#     ...: host cpuid changed" in its debug log) and probed again (8 s);
#   - without virtlogd, `virsh create` fails ("Failed to connect socket to
#     '/run/libvirt/virtlogd-sock'"); PID 1 here reaps daemonized processes
#     (the daemons, QEMU) late: their zombies must not count as running;
#   - build: 0.6-1 s (initramfs uncompressed: 5.6 MiB plain, 9.5 MiB with
#     qemu-ga, glib and pcre2; the 64 MiB base disk holds 4.7 MiB);
#   - boot: 7-9 s from `virsh create` to the first record (7.2 plain, 8.4
#     with the agent); 20 records/s at PERIOD 50; QEMU RSS 260-280 MiB;
#   - the guest's clock stops while the domain is paused (TCG): a suspend
#     shows in stall's host= only; a freeze shows in both;
#   - domfsfreeze/domfsthaw with qemu-ga: 0.04-0.1 s per virsh call; freezes
#     /mnt (1 file system), the writer stops until the thaw; without the
#     channel domfsfreeze fails in 0.06 s ("argument unsupported: QEMU guest
#     agent is not configured"), with the channel and no agent in 0.05 s
#     ("Guest agent is not responding: QEMU guest agent is not connected");
#   - copies of the running 64 MiB disk (tests/e2e/t0300-guest.sh):
#     suspend + qemu-img convert -U + resume 0.06-0.14 s, CONSISTENT;
#     `virsh blockcopy --wait --finish` 0.6 s, CONSISTENT at the end of the
#     mirror, no stall beyond the writer's period; qemu-img convert -U at full
#     speed read a consistent state 20 times of 20 (the ring is read in a few
#     ms; shared/libvirt-in-ci.md saw 1 torn copy in ~600), read slowly
#     (-m 1 -r 2M) always TORN;
#   - by hand, on the agent guest, for the hot save-as: `virsh
#     snapshot-create-as DOM --disk-only --atomic --no-metadata --quiesce
#     --diskspec vda,file=NEW` 0.4 s, the guest stalled 0.18 s, the layer
#     left below (now read-only) CONSISTENT; `virsh blockcommit DOM vda
#     --active --pivot` without --base/--shallow commits into the BOTTOM of
#     the chain: it wrote into the shared base image; `virsh domfsfreeze;
#     virsh backup-begin DOM XML (push, qcow2 target); virsh domfsthaw` works
#     (libvirt 9.0, QEMU 7.2): stall 0.15 s (three virsh processes), the
#     64 MiB job done in 38 ms, the copy standalone and CONSISTENT at the
#     freeze; while a domain runs libvirt's DAC model owns its images as
#     libvirt-qemu and gives them back to root when it ends; a blockcopy
#     target is root's again after --finish, a backup target is root's, 0600.
set -euo pipefail

prog=guest.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
URI=${GUEST_URI:-qemu:///system}
RING=64                     # ring slots
STRIDE=65536                # bytes between slots: one qcow2 cluster each
DISK_SIZE=64M
MEMORY_KIB=131072

die() {
    echo "$prog: $*" >&2
    exit 1
}

say() {
    echo "$prog: $*" >&2
}

usage() {
    sed -n '2,/^# The guest\./{/^# The guest\./d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
    exit 2
}

# virsh, never waiting forever.
vsh() {
    timeout -k 5 "${GUEST_VIRSH_TIMEOUT:-60}" virsh -q -c "$URI" "$@"
}

# Seconds from $1 to $2 (default: now), both $EPOCHREALTIME-like.
elapsed() {
    awk -v a="$1" -v b="${2:-$EPOCHREALTIME}" 'BEGIN { printf "%.1f", b - a }'
}

need_root() {
    [ "$(id -u)" = 0 ] || die "$1 needs root"
}

# PID is a live process. A zombie is not: a container's PID 1 may reap the
# daemons (and QEMU, which libvirt daemonizes) long after they ended, and
# kill -0 or pgrep would still see them.
alive() { # PID
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

# Some live process is called NAME.
running() { # NAME
    local p
    for p in $(pgrep -x "$1"); do
        alive "$p" && return 0
    done
    return 1
}

# ------------------------------------------------------------------ libvirt

libvirt_answers() {
    timeout -k 2 "${1:-10}" virsh -q -c "$URI" version >/dev/null 2>&1
}

# PID from DIR/NAME.pid if that process is NAME started with that pid file
# (so a recycled pid or someone else's daemon is never taken for ours).
our_daemon() {
    local dir=$1 name=$2 pid
    [ -f "$dir/$name.pid" ] || return 1
    pid=$(cat "$dir/$name.pid" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$dir/$name.pid" || return 1
    echo "$pid"
}

start_daemon() { # DIR NAME
    local dir=$1 name=$2 i cpu
    # libvirtd keeps QEMU's probed capabilities in /var/cache/libvirt/qemu
    # and probes again (8 s) when the host CPUID it reads differs, which it
    # does from one CPU to another here: on one CPU it stays valid. QEMU does
    # not inherit that affinity (libvirt gives it every host CPU).
    cpu=$(awk '/^Cpus_allowed_list:/ { split($2, a, /[,-]/); print a[1] }' /proc/self/status)
    # Own session, no descriptor of ours: a daemon must not keep a test's
    # output pipe open.
    setsid taskset -c "${cpu:-0}" "$name" -d -p "$dir/$name.pid" </dev/null >/dev/null 2>&1 ||
        die "$name -d failed (see its log under /var/log/libvirt)"
    for i in $(seq 1 50); do
        our_daemon "$dir" "$name" >/dev/null && return 0
        sleep 0.1
    done
    die "$name started but wrote no pid file $dir/$name.pid"
}

cmd_libvirt_start() {
    local dir=${1:?usage: guest.sh libvirt-start DIR} t0 wait_s deadline cache=present
    need_root libvirt-start
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    t0=$EPOCHREALTIME
    if libvirt_answers 10; then
        say "libvirtd already answers on $URI"
        return 0
    fi
    if ! our_daemon "$dir" libvirtd >/dev/null; then
        if running libvirtd; then
            die "a libvirtd runs but does not answer on $URI; not touching it"
        fi
        # libvirtd hands QEMU's output and the serial console to virtlogd.
        if ! running virtlogd; then
            start_daemon "$dir" virtlogd
        fi
        [ -n "$(ls -A /var/cache/libvirt/qemu/capabilities 2>/dev/null)" ] || cache=absent
        start_daemon "$dir" libvirtd
        say "started libvirtd $(cat "$dir/libvirtd.pid") (QEMU capability cache $cache)"
    fi
    # The first start probes QEMU's capabilities before answering.
    wait_s=${GUEST_LIBVIRT_WAIT:-300}
    deadline=$((SECONDS + wait_s))
    until libvirt_answers 30; do
        [ "$SECONDS" -lt "$deadline" ] || die "libvirtd does not answer on $URI after $wait_s s"
        our_daemon "$dir" libvirtd >/dev/null || die "libvirtd exited (see /var/log/libvirt/libvirtd.log)"
        sleep 0.2
    done
    say "libvirtd answers after $(elapsed "$t0") s"
}

stop_pid() { # PID NAME
    local pid=$1 name=$2 i
    kill "$pid" 2>/dev/null || return 0
    for i in $(seq 1 150); do
        alive "$pid" || return 0
        sleep 0.1
    done
    say "$name $pid ignored SIGTERM for 15 s: SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
}

cmd_libvirt_stop() {
    local dir=${1:?usage: guest.sh libvirt-stop DIR} pid dom
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd)
    if pid=$(our_daemon "$dir" libvirtd); then
        # Every domain of a libvirtd we started is one of ours: do not leave
        # QEMU processes running without their daemon.
        while read -r dom; do
            [ -n "$dom" ] || continue
            say "destroying domain $dom left running"
            vsh destroy "$dom" >/dev/null 2>&1 || true
        done < <(vsh list --transient --name 2>/dev/null || true)
        stop_pid "$pid" libvirtd
        say "stopped libvirtd $pid"
    fi
    rm -f "$dir/libvirtd.pid"
    if pid=$(our_daemon "$dir" virtlogd); then
        stop_pid "$pid" virtlogd
        say "stopped virtlogd $pid"
    fi
    rm -f "$dir/virtlogd.pid"
    return 0
}

# ------------------------------------------------------------------ build

# The writer: record n into slot n mod N, then into the header (contract in
# tests/harness/check_copy_logic.h), each on the disk before the next.
writer_source() {
    cat <<'EOF'
/* writer - the record writer of the qcow2c test guest (made by tests/lib/guest.sh).
 *
 *   writer --init FILE RING   make FILE: RING slots STRIDE apart, then the header
 *                             (counter 0); every block holds text, so that it is
 *                             allocated (mkfs.ext4 -d leaves zero blocks as holes)
 *   writer FILE PERIOD_MS     append records forever, resuming after the header */
#include "util.h"

#include <inttypes.h>
#include <time.h>

#include "check_copy_logic.h"

#define STRIDE GUEST_STRIDE

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The record, then readable text (for `strings` on an image) to the end of the block. */
static void fill(unsigned char *blk, const struct ccl_record *r)
{
    char line[128];
    size_t len, off = 0;

    memset(blk, '\n', CCL_BLOCK);
    if (r) {
        ccl_encode(r, blk);
        off = CCL_RECORD_LEN;
        len = (size_t)snprintf(line, sizeof(line),
                               "\nqcow2c writer %s n=%" PRIu64 " boot=%" PRIu32 " t=%" PRIu64 "\n",
                               r->kind == CCL_HEADER ? "header" : "ring", r->counter, r->boot,
                               r->time_ns);
    } else {
        len = (size_t)snprintf(line, sizeof(line), "qcow2c writer: free block\n");
    }
    while (off + len <= CCL_BLOCK) {
        memcpy(blk + off, line, len);
        off += len;
    }
}

static int put(int fd, unsigned char *blk, uint64_t off)
{
    ssize_t n;

    do
        n = pwrite(fd, blk, CCL_BLOCK, (off_t)off);
    while (n < 0 && errno == EINTR);
    return n == CCL_BLOCK ? 0 : -1;
}

static int init_file(const char *path, uint32_t ring)
{
    static unsigned char blk[CCL_BLOCK];
    struct ccl_record hdr = { .kind = CCL_HEADER, .ring_size = ring };
    uint64_t size = (uint64_t)(ring + 1) * STRIDE;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    if (fd < 0)
        return -1;
    fill(blk, NULL);
    for (uint64_t off = 0; off < size; off += CCL_BLOCK)
        if (put(fd, blk, off) < 0)
            return -1;
    fill(blk, &hdr);
    if (put(fd, blk, (uint64_t)ring * STRIDE) < 0 || fsync(fd) < 0)
        return -1;
    return close(fd);
}

int main(int argc, char **argv)
{
    unsigned char *blk;
    struct ccl_record r;
    struct timespec next;
    struct stat st;
    uint64_t period_ns, hdr_off, n;
    uint32_t ring, boot;
    long period_ms;
    int fd;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && strcmp(argv[1], "--init") == 0) {
        long k = strtol(argv[3], NULL, 10);

        if (k < 1 || k > CCL_MAX_RING || init_file(argv[2], (uint32_t)k) < 0) {
            perror("writer --init");
            return 1;
        }
        return 0;
    }
    if (argc != 3 || (period_ms = strtol(argv[2], NULL, 10)) < 1 || period_ms > 60000) {
        fprintf(stderr, "usage: writer FILE PERIOD_MS | writer --init FILE RING\n");
        return 2;
    }
    fd = open(argv[1], O_RDWR | O_DIRECT | O_DSYNC);
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < 2 * STRIDE ||
        posix_memalign((void **)&blk, CCL_BLOCK, CCL_BLOCK) != 0) {
        perror("writer: cannot open the ring file");
        return 1;
    }
    ring = (uint32_t)(st.st_size / STRIDE - 1);
    hdr_off = (uint64_t)ring * STRIDE;
    if (pread(fd, blk, CCL_BLOCK, (off_t)hdr_off) != CCL_BLOCK || ccl_decode(blk, CCL_BLOCK, &r) <= 0 ||
        r.kind != CCL_HEADER || r.ring_size != ring) {
        fprintf(stderr, "writer: %s has no valid header at offset %" PRIu64 "\n", argv[1], hdr_off);
        return 1;
    }
    n = r.counter;
    boot = r.boot + 1;
    period_ns = (uint64_t)period_ms * 1000000u;
    printf("writer: start boot=%" PRIu32 " counter=%" PRIu64 " ring=%" PRIu32 " period=%ld ms\n",
           boot, n, ring, period_ms);
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        uint64_t t = now_ns(), due;
        bool ok;

        n++;
        r = (struct ccl_record){ .kind = CCL_RING, .ring_size = ring, .boot = boot, .counter = n,
                                 .time_ns = t };
        fill(blk, &r);
        ok = put(fd, blk, (n % ring) * STRIDE) == 0;
        if (ok) {
            r.kind = CCL_HEADER;
            fill(blk, &r);
            ok = put(fd, blk, hdr_off) == 0;
        }
        if (!ok) {
            /* Nothing is skipped: the same n is written again. */
            printf("writer: write of record %" PRIu64 " failed: %s\n", n, strerror(errno));
            n--;
            sleep(1);
            continue;
        }
        /* The time record n was on the disk: a write blocked by a freeze shows. */
        t = now_ns();
        printf("counter %" PRIu64 " %" PRIu64 ".%06" PRIu64 "\n", n, t / 1000000000u,
               t % 1000000000u / 1000u);
        /* The next tick; after a stall, start again from now rather than catch up. */
        due = (uint64_t)next.tv_sec * 1000000000u + (uint64_t)next.tv_nsec + period_ns;
        if (due + period_ns < now_ns())
            due = now_ns() + period_ns;
        next.tv_sec = (time_t)(due / 1000000000u);
        next.tv_nsec = (long)(due % 1000000000u);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
    }
}
EOF
}

# /init of the guest (busybox sh).
init_script() {
    cat <<'EOF'
#!/bin/busybox sh
# /init of the qcow2c writer guest (made by tests/lib/guest.sh)
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /run /mnt /tmp
say() { echo "guest: $*"; }
hang() {
    say "$*"
    while :; do sleep 3600; done
}
while read -r m; do
    insmod "/modules/$m" 2>/dev/null || say "insmod $m failed"
done </modules/order
i=0
while [ ! -b /dev/vda ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
[ -b /dev/vda ] || hang "no /dev/vda after 30 s"
mount -t ext4 -o noatime /dev/vda /mnt || hang "cannot mount /dev/vda"
period=50
for a in $(cat /proc/cmdline); do
    case $a in qcow2c.period=*) period=${a#*=} ;; esac
done
if [ -x /bin/qemu-ga ]; then
    port=
    i=0
    while [ -z "$port" ] && [ $i -lt 100 ]; do
        for p in /sys/class/virtio-ports/*; do
            [ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && port=/dev/${p##*/}
        done
        [ -n "$port" ] || sleep 0.1
        i=$((i + 1))
    done
    if [ -n "$port" ]; then
        /bin/qemu-ga -m virtio-serial -p "$port" -t /run -f /run/qemu-ga.pid &
        say "qemu-ga on $port"
    else
        say "no org.qemu.guest_agent.0 port: qemu-ga not started"
    fi
fi
/bin/writer /mnt/records "$period"
hang "writer exited with status $?"
EOF
}

# Copies PROGRAM and the libraries ldd names into ROOT, at the same paths.
copy_with_libs() { # ROOT PROGRAM DEST
    local root=$1 p=$2 dest=$3 lib
    install -D -m 0755 "$p" "$root$dest"
    for lib in $(ldd "$p" | grep -o '/[^ ]*' || true); do
        [ -e "$root$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
    done
}

# The newest kernel under /boot whose modules hold virtio_blk and ext4.
pick_kernel() {
    local k v
    while read -r k; do
        v=${k#/boot/vmlinuz-}
        [ -f "/lib/modules/$v/modules.dep" ] || continue
        modprobe -S "$v" --show-depends virtio_blk >/dev/null 2>&1 || continue
        modprobe -S "$v" --show-depends ext4 >/dev/null 2>&1 || continue
        echo "$v"
        return 0
    done < <(find /boot -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | sort -rV)
    return 1
}

# The module files MODULE... need, dependencies first, each once.
module_files() { # KVER MODULE...
    local kver=$1 m
    shift
    for m in "$@"; do
        modprobe -S "$kver" --show-depends "$m" || die "module $m not found for kernel $kver"
    done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }'
}

build_key() { # KVER
    {
        echo "kernel $1 ring $RING stride $STRIDE size $DISK_SIZE"
        sha256sum "${BASH_SOURCE[0]}" "$src/tests/harness/check_copy_logic.c" \
            "$src/tests/harness/check_copy_logic.h" | cut -d' ' -f1
        stat -c '%n %s %Y' /bin/busybox /usr/sbin/qemu-ga "/boot/vmlinuz-$1"
    } | sha256sum | cut -d' ' -f1
}

# Fills STAGE with busybox, the writer, /init and the modules MODULE... need.
stage_initramfs() { # STAGE KVER WRITER MODULE...
    local stage=$1 kver=$2 writer=$3 f name files
    shift 3
    files=$(module_files "$kver" "$@") || die "cannot list the modules $* need"
    mkdir -p "$stage"/{bin,dev,proc,sys,run,mnt,tmp,modules}
    copy_with_libs "$stage" /bin/busybox /bin/busybox
    copy_with_libs "$stage" "$writer" /bin/writer
    : >"$stage/modules/order"
    while read -r f; do
        name=$(basename "$f")
        name=${name%.xz}
        name=${name%.zst}
        name=${name%.gz}
        case $f in
            *.ko.xz) xz -dc "$f" >"$stage/modules/$name" ;;
            *.ko.zst) zstd -qdc "$f" >"$stage/modules/$name" ;;
            *.ko.gz) gzip -dc "$f" >"$stage/modules/$name" ;;
            *) cp "$f" "$stage/modules/$name" ;;
        esac
        echo "$name" >>"$stage/modules/order"
    done <<<"$files"
    init_script >"$stage/init"
    chmod 0755 "$stage/init"
}

pack_initramfs() { # STAGE OUT
    (cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$2"
}

cmd_build() {
    local dir=${1:?usage: guest.sh build DIR} kver key t0 work
    need_root build
    t0=$EPOCHREALTIME
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    chmod 0755 "$dir"
    exec 9>"$dir/.build.lock"
    flock -w 600 9 || die "another build of $dir holds $dir/.build.lock"
    kver=$(pick_kernel) ||
        die "no kernel under /boot with virtio_blk and ext4 modules (tests/deps.sh installs linux-image-amd64)"
    for f in /bin/busybox /usr/sbin/qemu-ga; do
        [ -x "$f" ] || die "$f missing (tests/deps.sh installs busybox and qemu-guest-agent)"
    done
    key=$(build_key "$kver")
    if [ "$(cat "$dir/build.key" 2>/dev/null)" = "$key" ] && [ -s "$dir/vmlinuz" ] &&
        [ -s "$dir/initrd-plain.cpio" ] && [ -s "$dir/initrd-agent.cpio" ] && [ -s "$dir/base.qcow2" ]; then
        say "guest in $dir is up to date (kernel $kver)"
        return 0
    fi
    rm -f "$dir/build.key"
    work=$(mktemp -d "$dir/.build.XXXXXX")
    # shellcheck disable=SC2064 # expand now: the directory of this build
    trap "rm -rf '$work'" EXIT

    writer_source >"$work/writer.c"
    cc -O2 -std=c11 -D_GNU_SOURCE -DGUEST_STRIDE="$STRIDE" -Wall -Wextra -Werror \
        -I"$src/common" -I"$src/tests/harness" -o "$work/writer" "$work/writer.c" \
        "$src/tests/harness/check_copy_logic.c" || die "cannot compile the guest's writer"

    stage_initramfs "$work/plain" "$kver" "$work/writer" virtio_pci virtio_blk ext4
    pack_initramfs "$work/plain" "$work/initrd-plain.cpio"
    stage_initramfs "$work/agent" "$kver" "$work/writer" virtio_pci virtio_blk ext4 virtio_console
    copy_with_libs "$work/agent" /usr/sbin/qemu-ga /bin/qemu-ga
    pack_initramfs "$work/agent" "$work/initrd-agent.cpio"

    # The disk: ext4 holding the preallocated ring file, header at counter 0.
    mkdir -p "$work/fs"
    "$work/writer" --init "$work/fs/records" "$RING" || die "writer --init failed"
    mkfs.ext4 -q -F -b 4096 -m 0 -L qcow2c-writer -E lazy_itable_init=0,lazy_journal_init=0 \
        -d "$work/fs" "$work/disk.raw" "$DISK_SIZE" >/dev/null || die "mkfs.ext4 failed"
    qemu-img convert -q -f raw -O qcow2 "$work/disk.raw" "$work/base.qcow2"

    cp "/boot/vmlinuz-$kver" "$work/vmlinuz"
    for f in vmlinuz initrd-plain.cpio initrd-agent.cpio base.qcow2; do
        chmod 0644 "$work/$f"
        mv -f "$work/$f" "$dir/$f"
    done
    {
        echo "kernel $kver"
        echo "ring of $RING slots $STRIDE bytes apart, disk $DISK_SIZE ext4"
        echo "initrd-plain.cpio $(($(stat -c %s "$dir/initrd-plain.cpio") / 1024)) KiB"
        echo "initrd-agent.cpio $(($(stat -c %s "$dir/initrd-agent.cpio") / 1024)) KiB"
    } >"$dir/build.info"
    echo "$key" >"$dir/build.key"
    rm -rf "$work"
    trap - EXIT
    if id libvirt-qemu >/dev/null 2>&1 && ! runuser -u libvirt-qemu -- test -r "$dir/base.qcow2"; then
        die "$dir is not reachable by the libvirt-qemu user (a parent directory lacks o+x)"
    fi
    say "built the guest in $dir in $(elapsed "$t0") s: $(paste -sd';' "$dir/build.info" | sed 's/;/; /g')"
}

# ------------------------------------------------------------------ domains

domain_dir() { # DIR NAME
    printf '%s/domains/%s' "$1" "$2"
}

# The domain XML, after OpenNebula's (see the top comment).
domain_xml() { # NAME UUID KERNEL INITRD DISK CONSOLE VMDIR PERIOD CHANNEL
    local name=$1 uuid=$2 kernel=$3 initrd=$4 disk=$5 console=$6 vmdir=$7 period=$8 channel=$9 i
    cat <<EOF
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
	<name>$name</name>
	<title>qcow2c test guest $name</title>
	<uuid>$uuid</uuid>
	<vcpu><![CDATA[1]]></vcpu>
	<memory>$MEMORY_KIB</memory>
	<os>
		<type arch='x86_64' machine='q35'>hvm</type>
		<kernel><![CDATA[$kernel]]></kernel>
		<initrd><![CDATA[$initrd]]></initrd>
		<cmdline><![CDATA[console=ttyS0 panic=-1 loglevel=4 qcow2c.period=$period]]></cmdline>
	</os>
	<devices>
		<emulator><![CDATA[$(command -v qemu-system-x86_64)]]></emulator>
		<disk type='file' device='disk'>
			<source file='$disk'/>
			<target dev='vda' bus='virtio'/>
			<driver name='qemu' type='qcow2' cache='none' discard='unmap'/>
		</disk>
		<controller type='scsi' index='0' model='virtio-scsi'>
			<driver queues='1'/>
		</controller>
		<controller index='0' type='pci' model='pcie-root'/>
EOF
    for i in $(seq 1 16); do
        printf "\t\t<controller type='pci' index='%d' model='pcie-root-port'/>\n" "$i"
    done
    cat <<EOF
		<controller type='pci' index='17' model='pcie-to-pci-bridge'/>
	</devices>
	<features>
		<acpi/>
	</features>
EOF
    if [ "$channel" = 1 ]; then
        cat <<'EOF'
	<devices>
		<channel type='unix'>
			<source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/>
		</channel>
	</devices>
EOF
    fi
    cat <<EOF
	<devices><serial type='file'><source path='$console'/><target port='0'/></serial></devices>
	<metadata>
		<one:vm xmlns:one="http://opennebula.org/xmlns/libvirt/1.0">
			<one:system_datastore><![CDATA[$vmdir]]></one:system_datastore>
			<one:name><![CDATA[$name]]></one:name>
			<one:uname><![CDATA[oneadmin]]></one:uname>
			<one:uid>0</one:uid>
			<one:gname><![CDATA[oneadmin]]></one:gname>
			<one:gid>0</one:gid>
			<one:stime>$(date +%s)</one:stime>
			<one:deployment_time>$(date +%s)</one:deployment_time>
		</one:vm>
	</metadata>
</domain>
EOF
}

# Prints "RECORDS LAST": records written in the current boot (after the last
# "writer: start" line) and the last counter; "0 -" before the first.
console_progress() { # CONSOLE
    [ -f "$1" ] || { echo "0 -"; return 0; }
    tr -d '\r' <"$1" | awk '
        /^writer: start / { n = 0 }
        /^counter [0-9]+ [0-9]+\.[0-9]+$/ { n++; last = $2 }
        END { print n + 0, (last == "" ? "-" : last) }'
}

qemu_pid() { # NAME
    local f=/run/libvirt/qemu/$1.pid
    [ -f "$f" ] && cat "$f"
}

domain_running() { # NAME
    case $(vsh domstate "$1" 2>/dev/null | head -n 1) in
        running | paused) return 0 ;;
        *) return 1 ;;
    esac
}

stop_follower() { # DOMDIR
    local f=$1/follower.pid pid
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    # The follower is the leader of its own session: end the whole group.
    if [[ $pid =~ ^[0-9]+$ ]] && [ "$(ps -o sid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$pid" ]; then
        kill -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}

# Timestamps each console line with the host's arrival time; ends when QEMU
# ends (tail --pid) or when stopped.
start_follower() { # DOMDIR QEMU_PID
    local d=$1 qpid=$2
    # shellcheck disable=SC2016 # the script is for the child bash
    setsid bash -c '
        tail --pid="$1" -n +1 -F "$2" 2>/dev/null | while IFS= read -r line; do
            printf "%s %s\n" "$EPOCHREALTIME" "${line%$'"'\r'"'}"
        done >>"$3"' follower "$qpid" "$d/console.log" "$d/console.ts" </dev/null >/dev/null 2>&1 &
    echo $! >"$d/follower.pid"
}

# Refuses an image libvirt-qemu could not open (QEMU would fail with
# "Cannot access storage file ... Permission denied").
check_reachable() { # DISK
    local f
    id libvirt-qemu >/dev/null 2>&1 || return 0
    while read -r f; do
        runuser -u libvirt-qemu -- test -r "$f" ||
            die "$f is not readable by libvirt-qemu (every parent directory needs o+x; not under /root)"
    done < <(qemu-img info -U --backing-chain --output=json "$1" |
        sed -n 's/^ *"filename": "\(.*\)",*$/\1/p')
}

cmd_start() {
    local dir=${1:-} name=${2:-} disk=${3:-} agent=0 channel=0 vmdir="" records=10 period=50 timeout_s=120
    local d uuid t0 t_first="" progress n last qpid deadline initrd
    [ $# -ge 3 ] || die "usage: guest.sh start DIR NAME DISK [--agent | --channel] [--vm-dir VMDIR] [--records N] [--period MS] [--timeout S]"
    shift 3
    while [ $# -gt 0 ]; do
        case $1 in
            --agent) agent=1 channel=1 ;;
            --channel) channel=1 ;;
            --vm-dir) vmdir=${2:?--vm-dir needs a directory}; shift ;;
            --records) records=${2:?}; shift ;;
            --period) period=${2:?}; shift ;;
            --timeout) timeout_s=${2:?}; shift ;;
            *) die "start: unknown option '$1'" ;;
        esac
        shift
    done
    [[ $records =~ ^[0-9]+$ && $period =~ ^[0-9]+$ && $timeout_s =~ ^[0-9]+$ ]] ||
        die "start: --records, --period and --timeout take whole numbers"
    need_root start
    [ -d "$dir" ] || die "no directory $dir"
    dir=$(cd "$dir" && pwd)
    [ -s "$dir/build.key" ] || die "no guest built in $dir: run guest.sh build $dir first"
    [ -f "$disk" ] || die "no disk $disk"
    disk=$(readlink -f "$disk")
    vmdir=${vmdir:-$(dirname "$disk")}
    mkdir -p "$vmdir"
    vmdir=$(cd "$vmdir" && pwd)
    initrd=$dir/initrd-plain.cpio
    [ "$agent" = 0 ] || initrd=$dir/initrd-agent.cpio
    d=$(domain_dir "$dir" "$name")

    if domain_running "$name"; then
        if [ "$(vsh domuuid "$name" 2>/dev/null)" = "$(cat "$d/uuid" 2>/dev/null)" ]; then
            say "$name already runs"
            cat "$d/uuid"
            return 0
        fi
        die "a domain $name runs that guest.sh did not start from $dir"
    fi
    check_reachable "$disk"
    stop_follower "$d"
    mkdir -p "$d"
    chmod 0755 "$dir/domains" "$d"
    rm -f "$d/console.log" "$d/console.ts" "$d/uuid"
    uuid=$(cat /proc/sys/kernel/random/uuid)
    domain_xml "$name" "$uuid" "$dir/vmlinuz" "$initrd" "$disk" "$d/console.log" "$vmdir" \
        "$period" "$channel" >"$vmdir/deployment.0"
    echo "$vmdir" >"$d/vm-dir"
    t0=$EPOCHREALTIME
    vsh create "$vmdir/deployment.0" >/dev/null || die "virsh create $vmdir/deployment.0 failed"
    echo "$uuid" >"$d/uuid"
    qpid=$(qemu_pid "$name") || die "no pid file for $name under /run/libvirt/qemu"
    start_follower "$d" "$qpid"

    deadline=$((SECONDS + timeout_s))
    while :; do
        progress=$(console_progress "$d/console.log")
        n=${progress% *}
        last=${progress#* }
        if [ -z "$t_first" ] && [ "$n" -gt 0 ]; then
            t_first=$(elapsed "$t0")
        fi
        [ "$n" -lt "$records" ] || break
        if [ "$SECONDS" -ge "$deadline" ] || ! alive "$qpid"; then
            say "$name: $n of $records records after $timeout_s s; the console ends with:"
            tr -d '\r' <"$d/console.log" 2>/dev/null | tail -n 15 | sed 's/^/    /' >&2
            cmd_stop "$dir" "$name" 2>/dev/null || true
            die "$name did not come up"
        fi
        sleep 0.1
    done
    say "$name up: uuid $uuid, first record ${t_first} s after virsh create, $n records" \
        "(counter $last) after $(elapsed "$t0") s, QEMU pid $qpid," \
        "RSS $(($(awk '/^VmRSS:/ { print $2 }' "/proc/$qpid/status") / 1024)) MiB"
    echo "$uuid"
}

cmd_stop() {
    local dir=${1:?usage: guest.sh stop DIR NAME} name=${2:?usage: guest.sh stop DIR NAME} d i
    d=$(domain_dir "$dir" "$name")
    if vsh domstate "$name" >/dev/null 2>&1; then
        vsh destroy "$name" >/dev/null 2>&1 || true
        for i in $(seq 1 100); do
            vsh domstate "$name" >/dev/null 2>&1 || break
            sleep 0.1
        done
        ! vsh domstate "$name" >/dev/null 2>&1 || die "$name is still there after virsh destroy"
        say "$name destroyed"
    fi
    stop_follower "$d"
}

cmd_counter() {
    local dir=${1:?usage: guest.sh counter DIR NAME} name=${2:?usage: guest.sh counter DIR NAME} p
    p=$(console_progress "$(domain_dir "$dir" "$name")/console.log")
    [ "${p#* }" != - ] || die "$name has printed no record yet"
    echo "${p#* }"
}

cmd_stall() {
    local dir=${1:-} name=${2:-} from=${3:-} to=${4:-} d deadline
    [ $# -eq 4 ] || die "usage: guest.sh stall DIR NAME FROM TO"
    [[ $from =~ ^[0-9]+(\.[0-9]+)?$ && $to =~ ^[0-9]+(\.[0-9]+)?$ ]] ||
        die "stall: FROM and TO are epoch seconds (date +%s.%N)"
    d=$(domain_dir "$dir" "$name")
    [ -f "$d/console.ts" ] || die "no console of $name in $dir"
    # The gap that spans TO ends with the first record after TO: wait for it
    # while the guest runs (bounded).
    deadline=$((SECONDS + ${GUEST_STALL_WAIT:-30}))
    while domain_running "$name" && [ "$SECONDS" -lt "$deadline" ] &&
        ! awk -v to="$to" '$2 == "counter" && $1 > to { found = 1; exit } END { exit !found }' \
            "$d/console.ts"; do
        sleep 0.1
    done
    awk -v from="$from" -v to="$to" '
        $2 == "writer:" && $3 == "start" { have = 0; next }
        $2 != "counter" || NF != 4 { next }
        {
            host = $1; n = $3; guest = $4
            if (have && host >= from && phost <= to) {
                pairs++
                if (first == "") first = pn
                lastn = n
                if (guest - pguest > gmax) { gmax = guest - pguest; after = pn }
                if (host - phost > hmax) hmax = host - phost
            }
            have = 1; phost = host; pguest = guest; pn = n
        }
        END {
            if (!pairs) { print "no two consecutive records in the window" > "/dev/stderr"; exit 1 }
            printf "guest=%.3f host=%.3f after=%d counters=%d-%d records=%d\n",
                gmax, hmax, after, first, lastn, pairs + 1
        }' "$d/console.ts" || die "stall: $name printed no records between $from and $to"
}

# ------------------------------------------------------------------ main

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
case $cmd in
    libvirt-start) cmd_libvirt_start "$@" ;;
    libvirt-stop) cmd_libvirt_stop "$@" ;;
    build) cmd_build "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    counter) cmd_counter "$@" ;;
    stall) cmd_stall "$@" ;;
    -h | --help | help) usage ;;
    *) echo "$prog: unknown command '$cmd'" >&2; usage ;;
esac
