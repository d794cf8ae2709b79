#!/bin/bash
# t0108-ds-bad-input.sh - every DS action on input oned would never send, or
# that arrived damaged: no stdin, invalid base64, base64 of something that is
# not XML, XML with another root, a non-numeric id, a wrong argument count.
# Each fails with exactly one plain stderr line (oned's failure reason), a
# non-zero status (2 for usage errors, with one usage line), nothing on
# stdout, and changes nothing on disk.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ds.sh"

ds_setup

ACTIONS=()
while IFS= read -r a; do
    ACTIONS+=("$a")
done < <("$REMOTES/datastore/qcow2c/qcow2c-ds" --list)

# A populated datastore: a persistent image with snapshots, a plain image.
H=$(new_hash)
mk_persistent "$DS_DIR/$H"
mk_img qcow2 "$DS_DIR/$(new_hash)" 1M

snapshot() {
    {
        ds_listing "$TEST_DIR/var"
        echo "-- locks"
        ds_listing "$LOCK_DIR"
    } >"$1"
}

unchanged() {
    snapshot "$TEST_DIR/after"
    if ! diff -u "$TEST_DIR/before" "$TEST_DIR/after"; then
        echo "the input changed files"
        return 1
    fi
}

# Runs ACTION directly (as the installed link) with stdin from FILE and the
# given arguments, expecting a failure with status STATUS (default: any
# failure that is not a usage error nor a crash) and one reason line.
run_bad() { # STATUS FILE ACTION ARGS...
    local status=$1 in=$2 action=$3
    shift 3
    if [ -n "$status" ]; then
        must_fail --status "$status" env HOME="$DS_HOME" "$REMOTES/datastore/qcow2c/$action" "$@" <"$in"
    else
        must_fail env HOME="$DS_HOME" "$REMOTES/datastore/qcow2c/$action" "$@" <"$in"
    fi
    if _e2e_sanitizer_report; then
        echo "$action: a sanitizer reported an error"
        cat "$LAST_STDERR"
        return 1
    fi
    REASON=$(one_plain_line) || {
        echo "($action $*)"
        return 1
    }
    if [ -s "$LAST_STDOUT" ]; then
        echo "$action printed on stdout:"
        cat "$LAST_STDOUT"
        return 1
    fi
}

reason_matches() {
    if ! printf '%s\n' "$REASON" | grep -Eq -- "$1"; then
        echo "the reason does not match /$1/: $REASON"
        return 1
    fi
}

# The same input through oned-ds: FAILURE with that reason.
through_oned() { # ACTION ID FILE
    ds_call_stdin "$1" "$2" "$3"
    _ds_expect_failure
}

case_no_stdin() {
    local a
    : >"$TEST_DIR/empty"
    printf '\n' >"$TEST_DIR/newline"
    snapshot "$TEST_DIR/before"
    for a in "${ACTIONS[@]}"; do
        run_bad "" "$TEST_DIR/empty" "$a" 7
        reason_matches "no driver message on stdin"
        run_bad "" "$TEST_DIR/newline" "$a" 7
        reason_matches "no driver message"
        run_bad "" /dev/null "$a" 7
        through_oned "$a" 7 "$TEST_DIR/empty"
    done
    unchanged
}

case_invalid_base64() {
    local a
    printf '%s' 'PERTX0RSSVZFUl9BQ1RJT05fREFUQT4*&^%$' >"$TEST_DIR/bad64"
    # A valid message with a character changed in its middle.
    ds_msg rm/1 --set "$X_IMG/SOURCE=$DS_BASE/$H" >"$TEST_DIR/good64"
    sed 's/^\(.\{40\}\)./\1!/' "$TEST_DIR/good64" >"$TEST_DIR/broken64"
    # Truncated in the middle of a quantum.
    head -c 41 "$TEST_DIR/good64" >"$TEST_DIR/cut64"
    snapshot "$TEST_DIR/before"
    for a in "${ACTIONS[@]}"; do
        run_bad "" "$TEST_DIR/bad64" "$a" 7
        reason_matches "not valid base64"
        run_bad "" "$TEST_DIR/broken64" "$a" 7
        reason_matches "base64"
        run_bad "" "$TEST_DIR/cut64" "$a" 7
        through_oned "$a" 7 "$TEST_DIR/bad64"
    done
    unchanged
}

case_not_xml() {
    local a
    printf 'this is not XML at all\n' | base64 -w0 >"$TEST_DIR/text64"
    printf '<DS_DRIVER_ACTION_DATA><IMAGE>' | base64 -w0 >"$TEST_DIR/halfxml64"
    head -c 300 /dev/urandom | base64 -w0 >"$TEST_DIR/binary64"
    snapshot "$TEST_DIR/before"
    for a in "${ACTIONS[@]}"; do
        run_bad "" "$TEST_DIR/text64" "$a" 7
        reason_matches "not a DS_DRIVER_ACTION_DATA document"
        run_bad "" "$TEST_DIR/halfxml64" "$a" 7
        run_bad "" "$TEST_DIR/binary64" "$a" 7
        through_oned "$a" 7 "$TEST_DIR/text64"
    done
    unchanged
}

case_wrong_root() {
    local a
    # The VM document of a TM message, and a DS message under another name.
    printf '<VM><ID>7</ID></VM>' | base64 -w0 >"$TEST_DIR/vm64"
    "$HARNESS/ds-msg" "$DS_FIXTURES/rm/1/stdin.decoded.xml" --raw \
        --subst "/var/lib/one//datastores=$DS_LOCATION" |
        sed 's/DS_DRIVER_ACTION_DATA>/DS_DRIVER_ACTION>/g' | base64 -w0 >"$TEST_DIR/renamed64"
    # A DTD is refused (no entity expansion).
    printf '<?xml version="1.0"?><!DOCTYPE DS_DRIVER_ACTION_DATA [<!ENTITY x "y">]><DS_DRIVER_ACTION_DATA/>' |
        base64 -w0 >"$TEST_DIR/dtd64"
    snapshot "$TEST_DIR/before"
    for a in "${ACTIONS[@]}"; do
        run_bad "" "$TEST_DIR/vm64" "$a" 7
        reason_matches "DS_DRIVER_ACTION_DATA"
        run_bad "" "$TEST_DIR/renamed64" "$a" 22
        reason_matches "DS_DRIVER_ACTION_DATA"
        run_bad "" "$TEST_DIR/dtd64" "$a" 7
        through_oned "$a" 7 "$TEST_DIR/vm64"
    done
    unchanged
}

case_empty_document() {
    # The right root and nothing in it: every action says what is missing.
    local a
    printf '<DS_DRIVER_ACTION_DATA></DS_DRIVER_ACTION_DATA>' | base64 -w0 >"$TEST_DIR/hollow64"
    snapshot "$TEST_DIR/before"
    for a in "${ACTIONS[@]}"; do
        run_bad "" "$TEST_DIR/hollow64" "$a" 7
        through_oned "$a" 7 "$TEST_DIR/hollow64"
    done
    unchanged
}

case_bad_id() {
    local a id
    ds_msg rm/1 --set "$X_IMG/SOURCE=$DS_BASE/$H" --set "$X_IMG/TARGET_SNAPSHOT=1" \
        --set "$X_IMG/FORMAT=qcow2" >"$TEST_DIR/good64"
    snapshot "$TEST_DIR/before"
    for a in "${ACTIONS[@]}"; do
        for id in abc -1 "" 1x 99999999999999999999 " 7"; do
            run_bad 2 "$TEST_DIR/good64" "$a" "$id"
            reason_matches "not a valid id"
            reason_matches "usage"
        done
    done
    unchanged
}

case_arg_count() {
    local a
    ds_msg rm/1 --set "$X_IMG/SOURCE=$DS_BASE/$H" --set "$X_IMG/TARGET_SNAPSHOT=1" \
        --set "$X_IMG/FORMAT=qcow2" >"$TEST_DIR/good64"
    snapshot "$TEST_DIR/before"
    for a in "${ACTIONS[@]}"; do
        run_bad 2 "$TEST_DIR/good64" "$a"
        reason_matches "wrong number of arguments \(0\)"
        reason_matches "usage: $a "
        run_bad 2 "$TEST_DIR/good64" "$a" 7 8
        reason_matches "wrong number of arguments \(2\)"
        run_bad 2 "$TEST_DIR/good64" "$a" 7 8 9 10
    done
    unchanged
}

case_good_input_still_works() {
    # The same populated datastore takes a valid message (the assertions
    # above are not passing for a datastore nothing can touch).
    ds_ok snap_delete 22 rm/1 --set "$X_IMG/SOURCE=$DS_BASE/$H" \
        --set "$X_IMG/TARGET_SNAPSHOT=1" --set "$X_IMG/FORMAT=qcow2"
    test ! -e "$DS_DIR/$H.snap/1"
}

test_case "no stdin" case_no_stdin
test_case "invalid base64" case_invalid_base64
test_case "base64 of something that is not XML" case_not_xml
test_case "XML with the wrong root, or a DTD" case_wrong_root
test_case "an empty DS_DRIVER_ACTION_DATA" case_empty_document
test_case "non-numeric id: status 2, one usage line" case_bad_id
test_case "wrong argument count: status 2, one usage line" case_arg_count
test_case "a valid message still works" case_good_input_still_works
