#!/bin/bash
# run.sh - runs the end-to-end tests.
#
#   tests/e2e/run.sh               every tests/e2e/tNNNN-*.sh, in order
#   tests/e2e/run.sh t0001 t0042   the scripts given (a number, a name or a
#                                  path)
#
# Each script runs in a fresh temporary directory, with stdin from /dev/null
# and a time limit (E2E_TIMEOUT seconds, default 1500); E2E_JOBS scripts
# run at a time (default 1; one with a line "# e2e: alone" runs by itself).
# Prints ok/FAIL per case and a summary; exits 1 when a case failed, a
# script failed outside its cases, or nothing ran. BUILD: the build
# directory holding bin/ (the Makefile sets it; default build). E2E_KEEP=1
# keeps every directory; a failed script's directory is always kept.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$src/build}
case $BUILD in
    /*) ;;
    *) BUILD=$src/$BUILD ;;
esac
export BUILD
timeout_s=${E2E_TIMEOUT:-1500}

if [ ! -d "$BUILD/bin" ]; then
    echo "run.sh: $BUILD/bin does not exist: run make first (or set BUILD)" >&2
    exit 1
fi

scripts=()
if [ $# -eq 0 ]; then
    for t in "$here"/t[0-9][0-9][0-9][0-9]-*.sh; do
        [ -e "$t" ] && scripts+=("$t")
    done
else
    for a in "$@"; do
        found=()
        case $a in
            */*) [ -f "$a" ] && found=("$(cd "$(dirname "$a")" && pwd)/$(basename "$a")") ;;
            *)
                for t in "$here/${a%.sh}".sh "$here/${a%.sh}"-*.sh; do
                    [ -f "$t" ] && found+=("$t")
                done
                ;;
        esac
        if [ ${#found[@]} -eq 0 ]; then
            echo "run.sh: no test script matches '$a'" >&2
            exit 1
        fi
        scripts+=("${found[@]}")
    done
fi
# E2E_EXCLUDE: names (t0250 ...) of scripts not to run here, said aloud
# (make asan leaves out the long scenario scripts whose actions the other
# scripts run under the sanitizers too).
if [ -n "${E2E_EXCLUDE:-}" ]; then
    kept=()
    for t in "${scripts[@]}"; do
        name=$(basename "$t" .sh)
        case " $E2E_EXCLUDE " in
            *" ${name%%-*} "*) echo "e2e: not run here (E2E_EXCLUDE): $name" ;;
            *) kept+=("$t") ;;
        esac
    done
    scripts=("${kept[@]}")
fi
if [ ${#scripts[@]} -eq 0 ]; then
    echo "run.sh: no test script found in $here" >&2
    exit 1
fi

results=$(mktemp "${TMPDIR:-/tmp}/qcow2c-e2e-results.XXXXXX")
trap 'rm -f "$results"' EXIT
export E2E_RUNNER=1

# One script in DIR, its output in DIR.out and its verdicts in DIR.results;
# its exit status in DIR.status.
# With "live", the output also goes to stdout as it comes (one job at a time).
run_one() { # SCRIPT DIR [live]
    local t=$1 dir=$2 live=${3:-} name status=0 n why=""
    name=$(basename "$t" .sh)
    : >"$dir.results"
    if [ -n "$live" ]; then
        (cd "$dir" && E2E_RESULTS=$dir.results exec timeout -k 10 "$timeout_s" bash "$t" \
            </dev/null) 2>&1 | tee "$dir.out"
        status=${PIPESTATUS[0]}
    else
        (cd "$dir" && E2E_RESULTS=$dir.results exec timeout -k 10 "$timeout_s" bash "$t" \
            </dev/null) >"$dir.out" 2>&1 || status=$?
    fi
    n=$(wc -l <"$dir.results")
    if [ "$status" = 124 ] || [ "$status" = 137 ]; then
        # What the killed script recorded on its way out is beside the point.
        : >"$dir.results"
        why="timed out after ${timeout_s} s"
    elif [ "$status" != 0 ] && ! grep -q '^FAIL ' "$dir.results"; then
        why="exited with status $status without a failed case"
    elif [ "$n" = 0 ]; then
        why="ran no test case"
        status=1
    fi
    if [ -n "$why" ]; then
        echo "FAIL - $name: $why" >>"$dir.out"
        [ -z "$live" ] || echo "FAIL - $name: $why"
        echo "FAIL $name: $why" >>"$dir.results"
    fi
    echo "$status" >"$dir.status"
}

# Prints what a finished script said, adds its verdicts, removes its
# directory unless it failed (or E2E_KEEP=1).
report_one() { # SCRIPT DIR [live]
    local name status
    name=$(basename "$1" .sh)
    if [ -z "${3:-}" ]; then
        echo "== $name"
        cat "$2.out"
    fi
    cat "$2.results" >>"$results"
    status=$(cat "$2.status" 2>/dev/null || echo 1)
    if [ "$status" != 0 ]; then
        failed_scripts+=("$name")
        echo "   (kept $2)"
    elif [ "${E2E_KEEP:-}" = 1 ]; then
        echo "   (kept $2)"
    else
        rm -rf "$2"
    fi
    rm -f "$2.out" "$2.results" "$2.status"
}

# E2E_JOBS scripts at a time (default 1). A script that says
# "# e2e: alone" (a TCG guest, timing it measures) runs with nothing beside
# it. Output comes whole, per script, in the order the scripts end.
jobs_max=${E2E_JOBS:-1}
case $jobs_max in '' | *[!0-9]* | 0) jobs_max=1 ;; esac
failed_scripts=()
start=$(date +%s)
declare -A running=() # pid -> "script dir"
# Each running script has a slot, 0 to E2E_JOBS-1, in E2E_SLOT: the ports
# its sshds take come from the slot's own range (tests/lib/hosts.sh,
# sshd.sh), so that a host a script takes down and up again cannot lose its
# port to the script beside it.
declare -A slot_of=() # pid -> slot
free_slot() {
    local s p used
    for ((s = 0; s < jobs_max; s++)); do
        used=0
        for p in "${!slot_of[@]}"; do
            [ "${slot_of[$p]}" != "$s" ] || used=1
        done
        [ "$used" = 1 ] || { echo "$s"; return; }
    done
    echo 0
}
reap() { # wait for one job to end and report it
    local pid
    wait -n -p pid "${!running[@]}" 2>/dev/null || true
    if [ -z "${pid:-}" ] || [ -z "${running[$pid]:-}" ]; then
        # wait -n lost track of it: find one that is gone
        for pid in "${!running[@]}"; do
            kill -0 "$pid" 2>/dev/null || break
        done
    fi
    # shellcheck disable=SC2086 # two words: the script and its directory
    report_one ${running[$pid]}
    unset "running[$pid]" "slot_of[$pid]"
}
for t in "${scripts[@]}"; do
    name=$(basename "$t" .sh)
    dir=$(mktemp -d "${TMPDIR:-/tmp}/qcow2c-$name.XXXXXX")
    alone=0
    grep -q '^# e2e: alone' "$t" && alone=1
    if [ "$jobs_max" = 1 ]; then
        echo "== $name"
        run_one "$t" "$dir" live
        report_one "$t" "$dir" live
        continue
    fi
    while [ ${#running[@]} -gt 0 ] && { [ "$alone" = 1 ] || [ ${#running[@]} -ge "$jobs_max" ]; }; do
        reap
    done
    slot=$(free_slot)
    E2E_SLOT=$slot run_one "$t" "$dir" &
    running[$!]="$t $dir"
    slot_of[$!]=$slot
    if [ "$alone" = 1 ]; then
        reap
    fi
done
while [ ${#running[@]} -gt 0 ]; do
    reap
done

passed=$(grep -c '^ok ' "$results")
failed=$(grep -c '^FAIL ' "$results")
echo
if [ "$failed" != 0 ]; then
    echo "failed:"
    grep '^FAIL ' "$results" | sed 's/^FAIL /  /'
fi
echo "e2e: ${#scripts[@]} scripts in $(($(date +%s) - start)) s"
echo "e2e: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ ${#failed_scripts[@]} = 0 ]
