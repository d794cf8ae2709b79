#!/bin/bash
# t0107-ds-export.sh - DS export (run by the marketplace driver; $1 is the
# marketplace app id; the message holds IMAGE and DATASTORE, here the
# captured rm/1 with SOURCE set): one line <IMPORT_INFO> telling where to
# read the image. A standalone image is exported in place (DISPOSE NO); a
# persistent image with snapshots is flattened into a temporary file that
# DISPOSE_CMD removes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ds.sh"

ds_setup

# The text of element $1 of the IMPORT_INFO line (CDATA unwrapped).
info() {
    local v
    v=$(printf '%s\n' "$DS_RESULT" | sed -n "s|.*<$1>\(.*\)</$1>.*|\1|p")
    v=${v#<![CDATA[}
    printf '%s\n' "${v%]]>}"
}

has_no() { # ELEMENT
    if printf '%s\n' "$DS_RESULT" | grep -q "<$1>"; then
        echo "unexpected <$1> in $DS_RESULT"
        return 1
    fi
}

export_ok() { # SOURCE [DS-MSG ARGS...]
    local src=$1
    shift
    ds_ok export 5 rm/1 --set "$X_IMG/SOURCE=$src" "$@"
    case $DS_RESULT in
        "<IMPORT_INFO>"*"</IMPORT_INFO>") ;;
        *)
            echo "not an IMPORT_INFO line: $DS_RESULT"
            return 1
            ;;
    esac
    # Well-formed XML, as the marketplace driver parses it.
    printf '%s' "$DS_RESULT" >"$TEST_DIR/info.xml"
    "$HARNESS/ds-msg" "$TEST_DIR/info.xml" --raw >/dev/null
}

case_standalone() {
    local h
    h=$(new_hash)
    mk_img qcow2 "$DS_DIR/$h" 64M 0:1M:0x11
    export_ok "$DS_BASE/$h"
    test "$(info IMPORT_SOURCE)" = "$DS_BASE/$h"
    test "$(info MD5)" = "$(md5sum "$DS_DIR/$h" | cut -d' ' -f1)"
    test "$(info FORMAT)" = qcow2
    test "$(info SIZE)" = 64
    test "$(info DISPOSE)" = NO
    has_no DISPOSE_CMD
    # raw too.
    mk_img raw "$DS_DIR/$h.r" 8M 0:1M:0x12
    export_ok "$DS_BASE/$h.r" --set "$X_IMG/SIZE=8" --set "$X_IMG/FORMAT=raw"
    test "$(info IMPORT_SOURCE)" = "$DS_BASE/$h.r"
    test "$(info MD5)" = "$(md5sum "$DS_DIR/$h.r" | cut -d' ' -f1)"
    test "$(info FORMAT)" = raw
    test "$(info SIZE)" = 8
    test "$(info DISPOSE)" = NO
}

case_chain() {
    local h f out before
    h=$(new_hash)
    f=$DS_DIR/$h
    mk_persistent "$f"
    qemu-img convert -U -O raw "$f.snap/2" "$TEST_DIR/head.raw"
    before=$(md5sum "$f" | cut -d' ' -f1)
    export_ok "$DS_BASE/$h"
    out=$(info IMPORT_SOURCE)
    test "$out" != "$DS_BASE/$h"
    test -f "$out"
    test "$(info DISPOSE)" = YES
    test "$(info FORMAT)" = qcow2
    test "$(info MD5)" = "$(md5sum "$out" | cut -d' ' -f1)"
    test -z "$(img_backing "$out")"
    same_content "$TEST_DIR/head.raw" "$out"
    qemu_img_check "$out"
    # The image itself is untouched.
    test "$(md5sum "$f" | cut -d' ' -f1)" = "$before"
    same_content "$TEST_DIR/head.raw" "$f.snap/2"
    # The marketplace runs DISPOSE_CMD when it is done.
    sh -c "$(info DISPOSE_CMD)"
    test ! -e "$out"
    test -f "$f"
    test -f "$f.snap/2"
    # rm of the image takes a flattened copy a failed upload left.
    export_ok "$DS_BASE/$h"
    out=$(info IMPORT_SOURCE)
    test -f "$out"
    ds_ok rm 22 rm/1 --set "$X_IMG/SOURCE=$DS_BASE/$h"
    test ! -e "$out"
    test ! -e "$f"
}

case_failures() {
    local h
    h=$(new_hash)
    ds_listing >"$TEST_DIR/before"
    ds_fails export 5 rm/1 --set "$X_IMG/SOURCE=$DS_BASE/$h"
    ds_reason_matches "$h"
    ds_fails export 5 rm/1 --set "$X_IMG/SOURCE="
    ds_fails export 5 rm/1 --set "$X_IMG/SOURCE=$TEST_DIR/images/x.qcow2"
    ds_reason_matches "not a file of datastore"
    same_listing_as "$TEST_DIR/before"
}

test_case "a standalone image: in place, MD5, FORMAT, SIZE, DISPOSE NO" case_standalone
test_case "a persistent chain: flattened copy, DISPOSE YES, DISPOSE_CMD" case_chain
test_case "missing or foreign SOURCE: one line, nothing created" case_failures
