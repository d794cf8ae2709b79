# shellcheck shell=bash
# lib.sh - what the benchmarks share: timing, counting processes, memory,
# the device's speed.
#
#   . "$(dirname "$0")/lib.sh"
#   bench_measure KEY SETUP_FN STDIN_FILE CMD...
#   bench_get KEY FIELD
#   bench_time_it NAME SETUP_FN CMD...     (cold cache, + sync: copies)
#   bench_device FILE SCRATCH; bench_device_row WIDTH
#
# bench_measure runs CMD (argv, no shell) in the environment oned's drivers
# give actions (bench_env), with stdin from STDIN_FILE, after SETUP_FN each
# time (setup is never timed), and records into $BENCH_RES/KEY.<field>:
#   status   "ok", or "FAILED: <first plain stderr line>" (then nothing else)
#   wall     median of BENCH_RUNS runs, seconds
#   execs    successful execve(2) of the command's process tree (the command
#            itself included), from one run under
#            strace -f -e trace=execve,clone,clone3,fork,vfork
#   procs    distinct processes of that tree (subshells that never exec too)
#   ssh      ssh clients started
#   ruby     stand-ins of OpenNebula's Ruby CLI started (ruby-stub)
#   host     programs the host's sshd ran for it (sshd's own re-execs left
#            out), from the same run, with the sshd of BENCH_SSHD_PID traced
#            (strace -f -e trace=execve -p); "-" when not traced
#   rss      peak RSS in MB of the largest single process of the tree (GNU
#            time %M, one more run)
#
# Needs strace and GNU time (/usr/bin/time); ptrace of sshd needs root.

BENCH_RUNS=${BENCH_RUNS:-5}
BENCH_RES=${BENCH_RES:?set BENCH_RES before sourcing bench/lib.sh}
BENCH_TRACE=${BENCH_TRACE:-$BENCH_RES/trace}
BENCH_SSHD_PID=${BENCH_SSHD_PID:-}
# Extra NAME=VALUE words for bench_env (e.g. ONE_LOCATION).
declare -p BENCH_ENV_EXTRA >/dev/null 2>&1 || BENCH_ENV_EXTRA=()

bench_now() { date +%s.%N; }

# Median of the numbers on stdin.
bench_median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }'; }

# The environment of oned's drivers (oned-captures/tm/*/env): a login
# environment, LANG=C.UTF-8, PRIORITY and ONE_MAD_DEBUG from defaultrc.
bench_env() {
    env -i HOME="${BENCH_HOME:-$HOME}" USER="$(id -un)" LOGNAME="$(id -un)" SHELL=/bin/bash \
        PATH="${BENCH_PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}" \
        LANG=C.UTF-8 PRIORITY=19 ONE_MAD_DEBUG= "${BENCH_ENV_EXTRA[@]}" "$@"
}

bench_get() { # KEY FIELD
    cat "$BENCH_RES/$1.$2" 2>/dev/null || echo -
}

_bench_put() { # KEY FIELD VALUE
    printf '%s\n' "$3" >"$BENCH_RES/$1.$2"
}

# Starts tracing the host's sshd into $1; sets _bench_htrace to strace's
# pid (empty when the host is not traced).
_bench_host_trace_start() {
    local out=$1 i
    _bench_htrace=
    [ -n "$BENCH_SSHD_PID" ] || return 0
    strace -f -qq -e trace=execve -e signal=none -o "$out" -p "$BENCH_SSHD_PID" \
        </dev/null >/dev/null 2>&1 &
    _bench_htrace=$!
    # attached once sshd's TracerPid is strace
    for ((i = 0; i < 250; i++)); do
        if [ "$(awk '/^TracerPid:/ { print $2 }' "/proc/$BENCH_SSHD_PID/status" 2>/dev/null)" = "$_bench_htrace" ]; then
            return 0
        fi
        sleep 0.02
    done
    _bench_host_trace_stop
}

_bench_host_trace_stop() {
    [ -n "$_bench_htrace" ] || return 0
    # the last remote commands may still be finishing on the host side
    sleep 0.2
    # SIGTERM: strace detaches (a background job ignores SIGINT)
    kill -TERM "$_bench_htrace" 2>/dev/null || true
    wait "$_bench_htrace" 2>/dev/null || true
    _bench_htrace=
}

# Counts in the output of strace -f -o FILE (one file: with -ff a reused pid
# would overwrite a file, and a monitor run starts tens of thousands of
# processes): prints "EXECS PROCS SSH RUBY", i.e. successful execve calls
# (minus programs matching EXCLUDE_ERE), processes (the first one plus every
# fork/vfork/clone that is not a thread), and execs of ssh and ruby-stub.
# A call split by another process's output ("<unfinished ...>", "<...
# resumed>") is joined first.
_bench_strace_counts() { # FILE [EXCLUDE_ERE]
    awk -v excl="${2:-}" '
    {
        pid = $1
        line = substr($0, length($1) + 2)
        if (line ~ / <unfinished \.\.\.>$/) {
            sub(/ <unfinished \.\.\.>$/, "", line)
            pend[pid] = line
            next
        }
        if (line ~ /^<\.\.\. [a-z0-9_]+ resumed>/) {
            sub(/^<\.\.\. [a-z0-9_]+ resumed>/, "", line)
            line = pend[pid] line
            delete pend[pid]
        }
        if (line ~ /^execve\(/ && line ~ / = 0$/) {
            path = line
            sub(/^execve\("/, "", path)
            sub(/".*/, "", path)
            if (excl != "" && path ~ ("^(" excl ")$"))
                next
            execs++
            if (path ~ /\/ssh$/) ssh++
            if (path ~ /\/ruby-stub$/) ruby++
        } else if (line ~ /^(clone|clone3|fork|vfork)\(/ && line ~ / = [1-9][0-9]*$/ &&
                   line !~ /CLONE_THREAD/) {
            procs++
        }
    }
    END { printf "%d %d %d %d\n", execs, procs + 1, ssh, ruby }' "$1"
}

_bench_run() { # STDIN CMD...
    local in=$1
    shift
    bench_env "$@" <"$in"
}

bench_measure() { # KEY SETUP STDIN CMD...
    local key=$1 setup=$2 in=$3 i t0 t1 tr htr hpid line n p s r
    shift 3
    rm -f "$BENCH_RES/$key".*
    mkdir -p "$BENCH_TRACE"
    # a first run, also the warm-up: it must succeed
    "$setup"
    if ! _bench_run "$in" "$@" >"$BENCH_RES/$key.out" 2>"$BENCH_RES/$key.err"; then
        line=$(grep -Ev '^[[:space:]]*((ERROR|INFO|WARN|DEBUG):|$)' "$BENCH_RES/$key.err" | head -n 1)
        _bench_put "$key" status "FAILED: ${line:-exit status not 0, no reason given}"
        return 0
    fi
    _bench_put "$key" status ok
    for ((i = 0; i < BENCH_RUNS; i++)); do
        "$setup"
        t0=$(bench_now)
        _bench_run "$in" "$@" >/dev/null 2>&1 || true
        t1=$(bench_now)
        echo "$t1 - $t0" | bc -l
    done | bench_median >"$BENCH_RES/$key.wall"
    # processes: the front-end tree, and the host's sshd
    "$setup"
    tr=$BENCH_TRACE/$key.fe
    htr=$BENCH_TRACE/$key.host
    rm -f "$tr" "$htr"
    _bench_host_trace_start "$htr"
    hpid=$_bench_htrace
    bench_env strace -f -qq -e trace=execve,clone,clone3,fork,vfork -e signal=none -o "$tr" \
        "$@" <"$in" >/dev/null 2>&1 || true
    if [ -n "$hpid" ]; then
        _bench_host_trace_stop
        # sshd re-executing itself for each connection is not the action's
        read -r n _ < <(_bench_strace_counts "$htr" '.*/sshd(-session|-auth)?')
        _bench_put "$key" host "$n"
    else
        _bench_put "$key" host -
    fi
    # strace's child is the command itself: the tree is the command's
    read -r n p s r < <(_bench_strace_counts "$tr")
    _bench_put "$key" execs "$n"
    _bench_put "$key" procs "$p"
    _bench_put "$key" ssh "$s"
    _bench_put "$key" ruby "$r"
    # memory
    "$setup"
    bench_env /usr/bin/time -f %M -o "$BENCH_RES/$key.rsskb" "$@" <"$in" >/dev/null 2>&1 || true
    awk '/^[0-9]+$/ { printf "%.1f\n", $1 / 1024 }' "$BENCH_RES/$key.rsskb" >"$BENCH_RES/$key.rss"
}

# a / b with 2 decimals, "-" when either is not a number or b is 0.
bench_ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0) { print "-"; exit }
        printf "%.2f\n", a / b }'
}

# ---------------------------------------------------------------- copies
# (ds-copy.sh, deferred-save.sh: what a copy costs against the device)

# sync, then empty the page cache (only root can; others just sync).
bench_drop_caches() {
    sync
    if [ -w /proc/sys/vm/drop_caches ]; then
        echo 3 >/proc/sys/vm/drop_caches
    fi
}

# Prints the median wall time of BENCH_RUNS runs of CMD followed by sync,
# each after SETUP_FN RUN (0, 1, ...; not timed) and a cold page cache;
# keeps it in $BENCH_RES/time.NAME.
bench_time_it() { # NAME SETUP_FN CMD...
    local name=$1 setup=$2 i t0 t1
    shift 2
    for ((i = 0; i < BENCH_RUNS; i++)); do
        "$setup" "$i"
        bench_drop_caches
        t0=$(bench_now)
        "$@" >/dev/null
        sync
        t1=$(bench_now)
        echo "$t1 - $t0" | bc -l
    done | bench_median | tee "$BENCH_RES/time.$name"
}

# The device's floor for a copy that reads then writes FILE's allocated
# bytes: FILE read with iflag=direct from a cold page cache, then as many
# MiB written with oflag=direct (+ sync) into SCRATCH, removed after. Sets
# BENCH_DEV_MB, BENCH_DEV_READ and BENCH_DEV_WRITE (seconds), and
# BENCH_DEV, their sum.
bench_device() { # FILE SCRATCH
    local t0 t1
    BENCH_DEV_MB=$(($(du -B1 "$1" | cut -f1) / 1048576))
    bench_drop_caches
    t0=$(bench_now)
    dd if="$1" of=/dev/null bs=4M iflag=direct status=none
    t1=$(bench_now)
    BENCH_DEV_READ=$(echo "$t1 - $t0" | bc -l)
    t0=$(bench_now)
    dd if=/dev/zero of="$2" bs=4M count=$((BENCH_DEV_MB / 4)) oflag=direct status=none
    sync
    t1=$(bench_now)
    BENCH_DEV_WRITE=$(echo "$t1 - $t0" | bc -l)
    rm -f "$2"
    BENCH_DEV=$(echo "$BENCH_DEV_READ + $BENCH_DEV_WRITE" | bc -l)
}

# bench_device's line of a table whose first column is WIDTH wide.
bench_device_row() { # WIDTH
    printf '%-*s %8.2f s   (read %.2f s + write %.2f s of %d MiB, direct I/O)\n' "$1" \
        "device read+write" "$BENCH_DEV" "$BENCH_DEV_READ" "$BENCH_DEV_WRITE" "$BENCH_DEV_MB"
}
