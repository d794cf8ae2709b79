# shellcheck shell=bash
# Each case runs in a subshell on purpose, so variables it sets stay there.
# shellcheck disable=SC2030,SC2031
# lib.sh - what every end-to-end test script sources.
#
#   . "$(dirname "$0")/lib.sh"
#   case_install() { expect_success "$SRC/install.sh" --build "$BUILD"; ... }
#   test_case "install into an empty ONE_LOCATION" case_install
#
# A script runs in a fresh temporary directory (its current directory, also
# $TEST_DIR), made by run.sh, or by lib.sh when the script is run by hand.
# Each test_case runs its function in a subshell with `set -e`: the first
# failing command or helper fails the case, whose captured output is then
# printed. Cases share the directory (files carry over from case to case),
# not variables. When the script ends, lib.sh prints its summary and exits 1
# if a case failed or none ran. Do not set an EXIT trap: use `defer`.
#
# Variables: SRC (the source tree), BUILD (the build directory, with bin/;
# run.sh and the Makefile set it), TEST_DIR; after expect_success / must_fail,
# LAST_STATUS, LAST_STDOUT and LAST_STDERR (files) describe the command.
#
# Helpers (each prints why and returns 1 when its check fails):
#   test_case NAME FUNCTION [ARGS...]  run a case
#   expect_success CMD...              CMD exits 0 (stdout/stderr captured)
#   must_fail [--status N] CMD...      CMD exits non-zero; a crash, a signal,
#                                      a sanitizer report, "not found" (126,
#                                      127) or a usage error (2) does not
#                                      count unless --status N asks for it
#   expect_stdout TEXT | -             stdout of the last command is TEXT (or
#                                      this function's stdin), trailing
#                                      newlines aside
#   expect_stderr_line LINE            a line of the last stderr is LINE
#   expect_stderr_line --match ERE     a line of the last stderr matches ERE
#   one_plain_line [STDERRFILE]        exactly one reason line (oned's rule,
#                                      below); prints it
#   qemu_img_check FILE                qemu-img sees a sound image
#   need_tool TOOL...                  fails (never skips) when TOOL is missing
#   defer CMD...                       run CMD when the case (or, outside a
#                                      case, the script) ends

set -uo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$SRC/build}
case $BUILD in
    /*) ;;
    *) BUILD=$SRC/$BUILD ;;
esac
export SRC BUILD

E2E_NAME=$(basename "$0" .sh)
if [ -z "${E2E_RUNNER:-}" ]; then
    # Run by hand: make the fresh directory run.sh would have made.
    TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/qcow2c-$E2E_NAME.XXXXXX")
    cd "$TEST_DIR" || exit 1
    echo "# $E2E_NAME in $TEST_DIR"
else
    TEST_DIR=$PWD
fi
export TEST_DIR

_e2e_log=$TEST_DIR/.e2e
mkdir -p "$_e2e_log"
LAST_STDOUT=$_e2e_log/stdout
LAST_STDERR=$_e2e_log/stderr
LAST_STATUS=
: >"$LAST_STDOUT"
: >"$LAST_STDERR"

_e2e_pass=0
_e2e_fail=0
_e2e_failed=()
_e2e_in_case=0
_e2e_defers=()

# ---------------------------------------------------------------- plumbing

_e2e_say() {
    printf '%s\n' "$*" >&2
}

# _e2e_defers holds the deferred commands back to back, each preceded by its
# word count, so that a command keeps its words without any re-parsing.
_e2e_run_defers() {
    local -a starts=() d=("${_e2e_defers[@]}")
    local i=0 k
    _e2e_defers=()
    while [ "$i" -lt "${#d[@]}" ]; do
        starts+=("$i")
        i=$((i + 1 + d[i]))
    done
    for ((k = ${#starts[@]} - 1; k >= 0; k--)); do
        i=${starts[k]}
        "${d[@]:i+1:d[i]}" >/dev/null 2>&1 || true
    done
}

# Records CMD (a command or a function of the script, with its arguments) to
# be run at the end of the current case, or of the script outside a case;
# last registered, first run.
defer() {
    _e2e_defers+=("$#" "$@")
}

_e2e_record() { # ok|FAIL NAME
    if [ -n "${E2E_RESULTS:-}" ]; then
        printf '%s %s: %s\n' "$1" "$E2E_NAME" "$2" >>"$E2E_RESULTS"
    fi
}

test_case() {
    local name=$1 fn=$2 log status
    shift 2
    if ! declare -F "$fn" >/dev/null; then
        _e2e_say "test_case: '$fn' is not a function"
        _e2e_fail=$((_e2e_fail + 1))
        _e2e_failed+=("$name")
        _e2e_record FAIL "$name"
        echo "FAIL - $name"
        return 0
    fi
    log=$_e2e_log/case.$((_e2e_pass + _e2e_fail + 1)).log
    (
        _e2e_in_case=1
        _e2e_defers=()
        trap _e2e_run_defers EXIT
        # Says where the case stopped; errtrace carries it into functions.
        trap '_e2e_stopped "$BASH_COMMAND" "${BASH_SOURCE[0]##*/}" "$LINENO"' ERR
        set -eE
        "$fn" "$@"
    ) >"$log" 2>&1 </dev/null
    status=$?
    if [ "$status" = 0 ]; then
        _e2e_pass=$((_e2e_pass + 1))
        _e2e_record ok "$name"
        echo "ok - $name"
    else
        _e2e_fail=$((_e2e_fail + 1))
        _e2e_failed+=("$name")
        _e2e_record FAIL "$name"
        echo "FAIL - $name (status $status)"
        sed 's/^/    | /' "$log"
    fi
    return 0
}

_e2e_stopped() { # COMMAND FILE LINE
    if [[ $1 == return* ]]; then
        # A helper returned 1 and has said why.
        echo "--> the case stopped at $2:$3" >&2
    else
        echo "--> the case stopped at $2:$3: $1" >&2
    fi
}

_e2e_finish() {
    local status=$?
    trap - EXIT
    _e2e_run_defers
    if [ "$_e2e_in_case" = 0 ] && [ "$status" != 0 ] && [ "$_e2e_fail" = 0 ]; then
        # The script itself stopped outside any case (need_tool, a typo...).
        _e2e_fail=$((_e2e_fail + 1))
        _e2e_failed+=("(script exited with status $status)")
        _e2e_record FAIL "script exited with status $status"
    fi
    if [ $((_e2e_pass + _e2e_fail)) = 0 ]; then
        _e2e_failed+=("(no test case ran)")
        _e2e_fail=1
        _e2e_record FAIL "no test case ran"
    fi
    echo "# $E2E_NAME: $_e2e_pass passed, $_e2e_fail failed"
    if [ "$_e2e_fail" != 0 ]; then
        exit 1
    fi
    if [ -z "${E2E_RUNNER:-}" ]; then
        rm -rf "$TEST_DIR"
    fi
    exit 0
}
trap _e2e_finish EXIT

# ---------------------------------------------------------------- running

# Runs CMD with stdout and stderr captured into LAST_STDOUT / LAST_STDERR;
# sets LAST_STATUS. Never fails by itself.
_e2e_capture() {
    LAST_STATUS=0
    "$@" >"$LAST_STDOUT" 2>"$LAST_STDERR" || LAST_STATUS=$?
}

_e2e_show_last() {
    local f
    for f in stdout stderr; do
        if [ "$f" = stdout ]; then set -- "$LAST_STDOUT"; else set -- "$LAST_STDERR"; fi
        if [ -s "$1" ]; then
            _e2e_say "  $f:"
            sed 's/^/    /' "$1" | head -n 60 >&2 || true
        else
            _e2e_say "  $f: (empty)"
        fi
    done
}

# A sanitizer (make asan) reports and exits 1 by default, which must not pass
# for an expected failure.
_e2e_sanitizer_report() {
    grep -Eq '^==[0-9]+==ERROR: [A-Za-z]+Sanitizer|runtime error:|^SUMMARY: [A-Za-z]+Sanitizer' "$LAST_STDERR"
}

_e2e_cmdline() {
    local q
    printf -v q '%q ' "$@"
    printf '%s' "${q% }"
}

expect_success() {
    _e2e_capture "$@"
    if [ "$LAST_STATUS" != 0 ]; then
        _e2e_say "expect_success: '$(_e2e_cmdline "$@")' exited with status $LAST_STATUS"
        _e2e_show_last
        return 1
    fi
    if _e2e_sanitizer_report; then
        _e2e_say "expect_success: '$(_e2e_cmdline "$@")' exited 0 but a sanitizer reported an error"
        _e2e_show_last
        return 1
    fi
    return 0
}

must_fail() {
    local want=""
    if [ "${1:-}" = --status ]; then
        want=$2
        shift 2
    fi
    _e2e_capture "$@"
    local cmd why=""
    cmd=$(_e2e_cmdline "$@")
    if [ -n "$want" ]; then
        [ "$LAST_STATUS" = "$want" ] || why="exited with status $LAST_STATUS, not $want"
    elif [ "$LAST_STATUS" = 0 ]; then
        why="succeeded"
    elif [ "$LAST_STATUS" = 2 ]; then
        why="exited 2: a usage error, not the failure expected (use --status 2 if meant)"
    elif [ "$LAST_STATUS" = 126 ] || [ "$LAST_STATUS" = 127 ]; then
        why="could not be run (status $LAST_STATUS)"
    elif [ "$LAST_STATUS" -gt 128 ]; then
        why="was killed by signal $((LAST_STATUS - 128))"
    fi
    if [ -z "$why" ] && _e2e_sanitizer_report; then
        why="failed with a sanitizer report"
    fi
    if [ -n "$why" ]; then
        _e2e_say "must_fail: '$cmd' $why"
        _e2e_show_last
        return 1
    fi
    return 0
}

# ---------------------------------------------------------------- checking

expect_stdout() {
    local want got
    if [ "${1:-}" = - ]; then
        want=$(cat)
    else
        want=${1?expect_stdout: TEXT or - expected}
    fi
    got=$(cat "$LAST_STDOUT")
    if [ "$got" != "$want" ]; then
        _e2e_say "expect_stdout: stdout differs (- expected, + actual):"
        diff -u <(printf '%s\n' "$want") <(printf '%s\n' "$got") | tail -n +3 | sed 's/^/    /' >&2 || true
        return 1
    fi
}

expect_stderr_line() {
    if [ "${1:-}" = --match ]; then
        if ! grep -Eq -- "$2" "$LAST_STDERR"; then
            _e2e_say "expect_stderr_line: no stderr line matches /$2/"
            _e2e_show_last
            return 1
        fi
        return 0
    fi
    if ! grep -Fxq -- "$1" "$LAST_STDERR"; then
        _e2e_say "expect_stderr_line: no stderr line is exactly: $1"
        _e2e_show_last
        return 1
    fi
}

# oned's rule (DriverExecHelper#get_info_from_execution): each stderr line is
# stripped; one matching ^(ERROR|INFO|WARN|DEBUG):\s+ is a log message, every
# other line is part of the failure reason. A driver must give exactly one
# reason line. Blank lines count: they are sloppy output even though oned
# would drop them.
one_plain_line() {
    local file=${1:-$LAST_STDERR} line stripped n=0 reason=""
    while IFS= read -r line || [ -n "$line" ]; do
        stripped=$(printf '%s' "$line" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//')
        if [[ $stripped =~ ^(ERROR|INFO|WARN|DEBUG):[[:space:]]+ ]]; then
            continue
        fi
        n=$((n + 1))
        reason=$stripped
    done <"$file"
    if [ "$n" != 1 ]; then
        _e2e_say "one_plain_line: $n reason lines on stderr, exactly 1 expected:"
        sed 's/^/    /' "$file" >&2
        return 1
    fi
    printf '%s\n' "$reason"
}

qemu_img_check() {
    local file=$1 fmt
    need_tool qemu-img || return 1
    if ! fmt=$(qemu-img info --output=json -- "$file" 2>&1 | sed -n 's/^ *"format": "\(.*\)",*$/\1/p' | head -n 1) ||
        [ -z "$fmt" ]; then
        _e2e_say "qemu_img_check: qemu-img cannot read $file:"
        qemu-img info -- "$file" 2>&1 | sed 's/^/    /' >&2 || true
        return 1
    fi
    # raw has nothing to check beyond being readable.
    if [ "$fmt" != raw ] && ! qemu-img check -q -f "$fmt" -- "$file" >"$_e2e_log/qemu-img-check" 2>&1; then
        _e2e_say "qemu_img_check: qemu-img check found problems in $file ($fmt):"
        sed 's/^/    /' "$_e2e_log/qemu-img-check" >&2
        return 1
    fi
    return 0
}

# Tools are installed by tests/deps.sh: a missing one is a broken setup, and
# a test that skipped would hide it.
need_tool() {
    local t missing=()
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    [ ${#missing[@]} = 0 ] && return 0
    _e2e_say "need_tool: missing ${missing[*]} (run tests/deps.sh as root)"
    if [ "$_e2e_in_case" = 0 ]; then
        exit 1
    fi
    return 1
}
