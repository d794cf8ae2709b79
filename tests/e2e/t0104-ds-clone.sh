#!/bin/bash
# t0104-ds-clone.sh - DS clone (captured clone/1: IMAGE/PATH is the SOURCE of
# the image cloned, the datastore has DRIVER=qcow2): a new standalone
# BASE_PATH/<hash> with the current content of the source, "<SOURCE>
# <FORMAT>" on one line; a persistent image's current content is the head of
# SOURCE.snap/.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ds.sh"

ds_setup

clone_ok() { # SOURCE [DS-MSG ARGS...]
    local src=$1
    shift
    ds_ok clone 22 clone/1 --set "$X_IMG/PATH=$src" "$@"
}

case_standalone_qcow2() {
    local h
    h=$(new_hash)
    mk_img qcow2 "$DS_DIR/$h" 64M 0:1M:0x11 40M:2M:0x12
    clone_ok "$DS_BASE/$h"
    ds_result_source qcow2
    test "$DS_SOURCE_FILE" != "$DS_DIR/$h"
    same_content "$DS_DIR/$h" "$DS_SOURCE_FILE"
    test -z "$(img_backing "$DS_SOURCE_FILE")"
    test "$(img_vsize "$DS_SOURCE_FILE")" = $((64 << 20))
    # The source is untouched, the copy independent of it.
    img_write "$DS_SOURCE_FILE" 0x99 0 4k
    different_content "$DS_DIR/$h" "$DS_SOURCE_FILE"
    qemu_img_check "$DS_DIR/$h"
}

case_raw_to_qcow2() {
    local h
    h=$(new_hash)
    mk_img raw "$DS_DIR/$h" 32M 0:1M:0x21 31M:1M:0x22
    clone_ok "$DS_BASE/$h"
    ds_result_source qcow2
    same_content "$DS_DIR/$h" "$DS_SOURCE_FILE"
    # Without DRIVER the format is kept, and the copy stays sparse.
    clone_ok "$DS_BASE/$h" --del "$X_DST/DRIVER"
    ds_result_source raw
    cmp "$DS_DIR/$h" "$DS_SOURCE_FILE"
    test "$(allocated_bytes "$DS_SOURCE_FILE")" -lt $((8 << 20))
    # DRIVER=raw from qcow2.
    mk_img qcow2 "$DS_DIR/$h.q" 16M 0:1M:0x23
    clone_ok "$DS_BASE/$h.q" --set "$X_DST/DRIVER=raw"
    ds_result_source raw
    same_content "$DS_DIR/$h.q" "$DS_SOURCE_FILE"
    rm -f "$DS_DIR/$h.q"
}

case_persistent_chain() {
    local h f
    h=$(new_hash)
    f=$DS_DIR/$h
    mk_persistent "$f"
    qemu-img convert -O raw "$f.snap/2" "$TEST_DIR/head.raw"
    clone_ok "$DS_BASE/$h"
    ds_result_source qcow2
    same_content "$TEST_DIR/head.raw" "$DS_SOURCE_FILE"
    # Not the stale SOURCE, and standalone.
    different_content "$f" "$DS_SOURCE_FILE"
    test -z "$(img_backing "$DS_SOURCE_FILE")"
    # The chain is untouched.
    test "$(img_backing "$f.snap/2")" = "$h.snap/1"
    test "$(img_backing "$f.snap/1")" = "$h.snap/0"
    same_content "$TEST_DIR/head.raw" "$f.snap/2"
    # Into a raw datastore as well.
    clone_ok "$DS_BASE/$h" --set "$X_DST/DRIVER=raw"
    ds_result_source raw
    same_content "$TEST_DIR/head.raw" "$DS_SOURCE_FILE"
}

case_sparse_no() {
    local h
    h=$(new_hash)
    mk_img qcow2 "$DS_DIR/$h" 32M 0:1M:0x31
    clone_ok "$DS_BASE/$h" --set "$X_DST/SPARSE=NO" --set "$X_DST/DRIVER=raw"
    ds_result_source raw
    test "$(allocated_bytes "$DS_SOURCE_FILE")" -ge $((32 << 20))
    same_content "$DS_DIR/$h" "$DS_SOURCE_FILE"
}

case_failures() {
    local h
    h=$(new_hash)
    ds_listing >"$TEST_DIR/before"
    ds_fails clone 22 clone/1 --set "$X_IMG/PATH=$DS_BASE/$h"
    ds_reason_matches "$h"
    ds_fails clone 22 clone/1 --set "$X_IMG/PATH="
    ds_fails clone 22 clone/1 --set "$X_IMG/PATH=relative"
    ds_fails clone 22 clone/1 --set "/DS_DRIVER_ACTION_DATA/SOURCE_BRIDGE_LIST=node1"
    ds_reason_matches "BRIDGE_LIST"
    same_listing_as "$TEST_DIR/before"
}

test_case "a standalone qcow2: same content, independent" case_standalone_qcow2
test_case "raw into DRIVER=qcow2, no DRIVER keeps raw, DRIVER=raw" case_raw_to_qcow2
test_case "a persistent image with snapshots: the head, flattened" case_persistent_chain
test_case "SPARSE=NO allocates the clone" case_sparse_no
test_case "missing or unusable source: one line, nothing created" case_failures
