#!/bin/bash
# t0102-ds-rm.sh - DS rm (captured rm/1): removes SOURCE, SOURCE.snap/,
# SOURCE.md5sum and what a failed copy left (SOURCE.part...); a SOURCE
# already gone, or empty, is success (trap 20, 32); a SOURCE outside
# BASE_PATH is refused and nothing is removed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ds.sh"

ds_setup

rm_ok() { # SOURCE [DS-MSG ARGS...]
    local src=$1
    shift
    ds_ok rm 22 rm/1 --set "$X_IMG/SOURCE=$src" "$@"
}

rm_fails() {
    local src=$1
    shift
    ds_fails rm 22 rm/1 --set "$X_IMG/SOURCE=$src" "$@"
}

case_everything() {
    local h f other
    h=$(new_hash)
    f=$DS_DIR/$h
    mk_persistent "$f"
    echo "d41d8cd98f00b204e9800998ecf8427e" >"$f.md5sum"
    : >"$f.part"
    : >"$f.part.conv"
    # Flattened copies export made for the marketplace, never disposed of.
    : >"$f.export-5"
    : >"$f.export-12.part"
    # A neighbour whose name starts the same must stay.
    other=$DS_DIR/${h}0
    mk_img qcow2 "$other" 1M
    : >"$other.export-5"
    mk_img qcow2 "$DS_DIR/keep" 1M
    mkdir -p "$DS_DIR/keep.snap"
    ds_listing | grep -v "^\./${h}[ .]" | grep -v "^\./${h}\.snap/" >"$TEST_DIR/rest"
    rm_ok "$DS_BASE/$h"
    test ! -e "$f"
    test ! -e "$f.snap"
    test ! -e "$f.md5sum"
    test ! -e "$f.part"
    test ! -e "$f.part.conv"
    test ! -e "$f.export-5"
    test ! -e "$f.export-12.part"
    same_listing_as "$TEST_DIR/rest"
    test -f "$other"
    test -f "$other.export-5"
    # The self link and SOURCE.snap/0 -> SOURCE did not lead rm outside.
    test -f "$DS_DIR/keep"
}

case_source_only_parts() {
    # Only the temporary of a failed save-as or cp is there.
    local h
    h=$(new_hash)
    head -c 4096 /dev/urandom >"$DS_DIR/$h.part"
    rm_ok "$DS_BASE/$h"
    test ! -e "$DS_DIR/$h.part"
    # A snapshot directory without its image.
    mkdir -p "$DS_DIR/$h.snap"
    ln -s . "$DS_DIR/$h.snap/$h.snap"
    rm_ok "$DS_BASE/$h"
    test ! -e "$DS_DIR/$h.snap"
}

case_missing() {
    local h
    h=$(new_hash)
    ds_listing >"$TEST_DIR/before"
    rm_ok "$DS_BASE/$h"
    rm_ok "$DS_BASE/$h"
    # The capture itself: its SOURCE was never made here.
    ds_ok rm 21 rm/2
    ds_ok rm 22 rm/1
    same_listing_as "$TEST_DIR/before"
}

case_empty_source() {
    ds_listing >"$TEST_DIR/before"
    rm_ok ""
    ds_ok rm 22 rm/1 --del "$X_IMG/SOURCE"
    same_listing_as "$TEST_DIR/before"
}

case_single_slash_and_symlinked_base() {
    # BASE_PATH's "//" need not be in SOURCE: paths are compared normalised.
    local h
    h=$(new_hash)
    mk_img qcow2 "$DS_DIR/$h" 1M
    rm_ok "$TEST_DIR/var/lib/one/datastores/107/$h"
    test ! -e "$DS_DIR/$h"
}

case_outside() {
    local h victim
    h=$(new_hash)
    victim=$TEST_DIR/var/lib/one/datastores/108/$h
    mk_img qcow2 "$victim" 1M
    mk_img qcow2 "$DS_DIR/$h" 1M
    mkdir -p "$DS_DIR/sub"
    mk_img qcow2 "$DS_DIR/sub/$h" 1M
    mk_img qcow2 "$TEST_DIR/outside.qcow2" 1M
    ds_listing "$TEST_DIR/var" >"$TEST_DIR/before"
    rm_fails "$DS_LOCATION/108/$h"
    ds_reason_matches "not a file of datastore 107"
    rm_fails "$DS_BASE/../108/$h"
    rm_fails "$DS_BASE/./$h"
    rm_fails "$DS_BASE/sub/$h"
    rm_fails "$TEST_DIR/outside.qcow2"
    rm_fails "$DS_BASE"
    rm_fails "$DS_BASE/"
    rm_fails "$DS_LOCATION"
    rm_fails "/"
    rm_fails "relative/$h"
    rm_fails "$h"
    same_listing_as "$TEST_DIR/before" "$TEST_DIR/var"
    test -f "$TEST_DIR/outside.qcow2"
    test -f "$victim"
    test -f "$DS_DIR/$h"
}

case_bad_base_path() {
    local h
    h=$(new_hash)
    mk_img qcow2 "$DS_DIR/$h" 1M
    ds_fails rm 22 rm/1 --set "$X_IMG/SOURCE=$DS_BASE/$h" --set "$X_DS/BASE_PATH="
    ds_reason_matches "BASE_PATH"
    ds_fails rm 22 rm/1 --set "$X_IMG/SOURCE=$DS_BASE/$h" --set "$X_DS/BASE_PATH=$DS_BASE/../107"
    test -f "$DS_DIR/$h"
    # A BRIDGE_LIST is not supported: refused, not ignored.
    ds_fails rm 22 rm/1 --set "$X_IMG/SOURCE=$DS_BASE/$h" --set "$X_DST/BRIDGE_LIST=node1"
    ds_reason_matches "BRIDGE_LIST"
    test -f "$DS_DIR/$h"
}

test_case "removes SOURCE, .snap/, .md5sum, .part, .part.conv, .export-* only" case_everything
test_case "removes the leftovers of a SOURCE never published" case_source_only_parts
test_case "a missing SOURCE is success, twice in a row" case_missing
test_case "an empty SOURCE is success" case_empty_source
test_case "SOURCE with a single slash where BASE_PATH has two" case_single_slash_and_symlinked_base
test_case "SOURCE outside BASE_PATH (.., ., subdir, other DS) is refused" case_outside
test_case "bad BASE_PATH and BRIDGE_LIST are refused" case_bad_base_path
