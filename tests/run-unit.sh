#!/bin/bash
# run-unit.sh - runs the Criterion unit-test binaries given as arguments,
# with a private sshd on 127.0.0.1 for the tests that reach a host.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-build}
sshd_dir=$(mktemp -d "${TMPDIR:-/tmp}/qcow2c-sshd-XXXXXX")
# Every test makes its own directories under TMPDIR: one per run, removed at
# the end (a test's small tmpfs mounts inside it are unmounted first).
scratch=$(mktemp -d "${TMPDIR:-/tmp}/qcow2c-unit-run-XXXXXX")
cleanup() {
    "$here/lib/sshd.sh" stop "$sshd_dir"
    rm -rf "$sshd_dir"
    grep -o " $scratch/[^ ]*" /proc/mounts | while read -r m; do umount "$m"; done
    rm -rf "$scratch"
}
trap cleanup EXIT
export TMPDIR=$scratch

"$here/lib/sshd.sh" start "$sshd_dir" node1 node2 frontend || exit 1
export QCOW2C_TEST_SSHD=$sshd_dir
export QCOW2C_TEST_BUILD=$build

failed=()
for t in "$@"; do
    echo "== ${t##*/}"
    # Criterion does not fail a test on a sanitizer report: look for them.
    if ! "$t" --jobs 2 2>&1 | tee "$scratch/out"; then
        failed+=("${t##*/}")
    elif grep -qE 'ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:' "$scratch/out"; then
        echo "${t##*/}: sanitizer report (see above)"
        failed+=("${t##*/}")
    fi
done
rm -f /tmp/qcow2c-pwned
if [ ${#failed[@]} -gt 0 ]; then
    echo "unit tests FAILED: ${failed[*]}"
    exit 1
fi
echo "unit tests: all passed ($# suites)"
