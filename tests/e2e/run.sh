#!/bin/bash
# run.sh - runs the end-to-end tests.
#
#   tests/e2e/run.sh               every tests/e2e/tNNNN-*.sh, in order
#   tests/e2e/run.sh t0001 t0042   the scripts given (a number, a name or a
#                                  path)
#
# Each script runs in a fresh temporary directory, with stdin from /dev/null
# and a time limit (E2E_TIMEOUT seconds, default 900). Prints ok/FAIL per
# case and a summary; exits 1 when a case failed, a script failed outside
# its cases, or nothing ran. BUILD: the build directory holding bin/ (the
# Makefile sets it; default build). E2E_KEEP=1 keeps every directory; a
# failed script's directory is always kept.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-$src/build}
case $BUILD in
    /*) ;;
    *) BUILD=$src/$BUILD ;;
esac
export BUILD
timeout_s=${E2E_TIMEOUT:-900}

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
if [ ${#scripts[@]} -eq 0 ]; then
    echo "run.sh: no test script found in $here" >&2
    exit 1
fi

results=$(mktemp "${TMPDIR:-/tmp}/qcow2c-e2e-results.XXXXXX")
trap 'rm -f "$results"' EXIT
export E2E_RESULTS=$results E2E_RUNNER=1

failed_scripts=()
start=$(date +%s)
for t in "${scripts[@]}"; do
    name=$(basename "$t" .sh)
    dir=$(mktemp -d "${TMPDIR:-/tmp}/qcow2c-$name.XXXXXX")
    echo "== $name"
    before=$(wc -l <"$results")
    status=0
    (cd "$dir" && exec timeout -k 10 "$timeout_s" bash "$t" </dev/null) 2>&1 || status=$?
    after=$(wc -l <"$results")
    if [ "$status" = 124 ] || [ "$status" = 137 ]; then
        # What the killed script recorded on its way out is beside the point.
        head -n "$before" "$results" >"$results.tmp"
        mv -f "$results.tmp" "$results"
        echo "FAIL - $name: timed out after ${timeout_s} s"
        echo "FAIL $name: timed out after ${timeout_s} s" >>"$results"
    elif [ "$status" != 0 ] && ! tail -n +"$((before + 1))" "$results" | grep -q '^FAIL '; then
        echo "FAIL - $name: exited with status $status without a failed case"
        echo "FAIL $name: exited with status $status" >>"$results"
    elif [ "$after" = "$before" ]; then
        echo "FAIL - $name: ran no test case"
        echo "FAIL $name: ran no test case" >>"$results"
        status=1
    fi
    if [ "$status" != 0 ]; then
        failed_scripts+=("$name")
        echo "   (kept $dir)"
    elif [ "${E2E_KEEP:-}" = 1 ]; then
        echo "   (kept $dir)"
    else
        rm -rf "$dir"
    fi
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
