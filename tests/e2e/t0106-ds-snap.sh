#!/bin/bash
# t0106-ds-snap.sh - DS snap_delete, snap_revert, snap_flatten on a
# persistent image in the qcow2c layout (lib-ds.sh mk_persistent: SOURCE,
# SOURCE.snap/0 -> SOURCE, the self link, 1 an overlay on 0 holding
# snapshot 1, 2 the head on 1). No oned capture has them: the message is the
# captured rm/1 with SOURCE, FORMAT and TARGET_SNAPSHOT set, which is what
# oned's format_message gives every image action. stdout: nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ds.sh"

ds_setup

# A fresh persistent image: H (name), F (file); the content of SOURCE,
# snapshot 1 and the head saved as raw files.
fresh() {
    H=$(new_hash)
    F=$DS_DIR/$H
    mk_persistent "$F"
    qemu-img convert -U -O raw "$F" "$TEST_DIR/s0.raw"
    qemu-img convert -U -O raw "$F.snap/1" "$TEST_DIR/s1.raw"
    qemu-img convert -U -O raw "$F.snap/2" "$TEST_DIR/s2.raw"
    different_content "$TEST_DIR/s0.raw" "$TEST_DIR/s1.raw"
    different_content "$TEST_DIR/s1.raw" "$TEST_DIR/s2.raw"
}

snap_msg() { # SNAP_ID [DS-MSG ARGS...]
    local id=$1
    shift
    SNAP_ARGS=(rm/1 --set "$X_IMG/SOURCE=$DS_BASE/$H" --set "$X_IMG/FORMAT=qcow2"
        --set "$X_IMG/PERSISTENT=1" --set "$X_IMG/TARGET_SNAPSHOT=$id" "$@")
}

snap_ok() { # ACTION SNAP_ID [DS-MSG ARGS...]
    local action=$1
    shift
    snap_msg "$@"
    ds_ok "$action" 22 "${SNAP_ARGS[@]}"
}

snap_fails() {
    local action=$1
    shift
    snap_msg "$@"
    ds_fails "$action" 22 "${SNAP_ARGS[@]}"
}

# No data in the top layer of FILE (an empty overlay).
empty_overlay() {
    if qemu-img map -U --output=json "$1" | grep -E '"depth": 0,' | grep -q '"data": true'; then
        echo "$1 has data of its own:"
        qemu-img map -U --output=json "$1"
        return 1
    fi
}

case_revert() {
    fresh
    snap_ok snap_revert 0
    test "$(img_backing "$F.snap/2")" = "$H.snap/0"
    same_content "$TEST_DIR/s0.raw" "$F.snap/2"
    empty_overlay "$F.snap/2"
    qemu_img_check "$F.snap/2"
    # Snapshot 1 and the base are kept as they were.
    same_content "$TEST_DIR/s1.raw" "$F.snap/1"
    same_content "$TEST_DIR/s0.raw" "$F"
    test ! -e "$F.snap/2.part"
    # Revert to 1 after writing to the head.
    img_write "$F.snap/2" 0x77 8M 1M
    snap_ok snap_revert 1
    test "$(img_backing "$F.snap/2")" = "$H.snap/1"
    same_content "$TEST_DIR/s1.raw" "$F.snap/2"
    empty_overlay "$F.snap/2"
    # Twice is the same.
    snap_ok snap_revert 1
    same_content "$TEST_DIR/s1.raw" "$F.snap/2"
}

case_revert_refused() {
    fresh
    snap_fails snap_revert 7
    ds_reason_matches "7"
    snap_fails snap_revert 2
    same_content "$TEST_DIR/s2.raw" "$F.snap/2"
    snap_fails snap_revert abc
    ds_reason_matches "snapshot id"
    snap_fails snap_revert -1
    same_content "$TEST_DIR/s2.raw" "$F.snap/2"
}

case_delete_middle() {
    fresh
    snap_ok snap_delete 1
    test ! -e "$F.snap/1"
    same_content "$TEST_DIR/s2.raw" "$F.snap/2"
    qemu_img_check "$F.snap/2"
    # The head now rests on snapshot 0, named the same way.
    test "$(img_backing "$F.snap/2")" = "$H.snap/0"
    same_content "$TEST_DIR/s0.raw" "$F"
    # Deleting it again: already gone, success.
    snap_ok snap_delete 1
    same_content "$TEST_DIR/s2.raw" "$F.snap/2"
}

case_delete_base() {
    fresh
    snap_ok snap_delete 0
    test ! -e "$F.snap/0"
    test -f "$F"
    same_content "$TEST_DIR/s1.raw" "$F.snap/1"
    same_content "$TEST_DIR/s2.raw" "$F.snap/2"
    qemu_img_check "$F.snap/2"
}

case_delete_refused() {
    fresh
    snap_fails snap_delete 2
    ds_reason_matches "current"
    test -f "$F.snap/2"
    same_content "$TEST_DIR/s2.raw" "$F.snap/2"
    snap_ok snap_delete 9
    same_content "$TEST_DIR/s2.raw" "$F.snap/2"
    test -e "$F.snap/1"
    # A SOURCE outside the datastore.
    snap_fails snap_delete 1 --set "$X_IMG/SOURCE=$DS_LOCATION/108/$H"
    ds_reason_matches "not a file of datastore"
    snap_fails snap_delete 1 --set "$X_IMG/SOURCE=$DS_BASE/../107/$H"
    test -e "$F.snap/1"
}

case_flatten() {
    fresh
    snap_ok snap_flatten 1
    test ! -e "$F.snap"
    test -f "$F"
    test -z "$(img_backing "$F")"
    test "$(img_fmt "$F")" = qcow2
    same_content "$TEST_DIR/s1.raw" "$F"
    qemu_img_check "$F"
    test ! -e "$F.part"
    # Again: already flattened, success, nothing changes.
    snap_ok snap_flatten 1
    same_content "$TEST_DIR/s1.raw" "$F"
    # Flatten to 0 and to the head.
    fresh
    snap_ok snap_flatten 0
    same_content "$TEST_DIR/s0.raw" "$F"
    test ! -e "$F.snap"
    fresh
    snap_ok snap_flatten 2
    same_content "$TEST_DIR/s2.raw" "$F"
    test ! -e "$F.snap"
}

case_flatten_missing() {
    fresh
    snap_fails snap_flatten 5
    test -e "$F.snap/2"
    same_content "$TEST_DIR/s2.raw" "$F.snap/2"
    same_content "$TEST_DIR/s0.raw" "$F"
}

case_raw_image() {
    # raw persistent images keep full copies as snapshots.
    H=$(new_hash)
    F=$DS_DIR/$H
    mk_img raw "$F" 8M 0:1M:0x51
    mkdir -p "$F.snap"
    mk_img raw "$F.snap/0" 8M 0:1M:0x52
    mk_img raw "$F.snap/1" 8M 0:1M:0x53
    snap_ok snap_revert 0 --set "$X_IMG/FORMAT=raw"
    cmp "$F.snap/0" "$F"
    snap_ok snap_delete 0 --set "$X_IMG/FORMAT=raw"
    test ! -e "$F.snap/0"
    snap_ok snap_flatten 1 --set "$X_IMG/FORMAT=raw"
    test ! -e "$F.snap"
    test "$(od -An -tx1 -N1 "$F" | tr -d ' ')" = 53
}

# A raw persistent image whose snapshots are qcow2 overlays, the layout the
# TM leaves when a VM took snapshots of it: 0 -> SOURCE (raw), 1 on 0 (with
# backing format raw), 2 the head on 1.
fresh_raw() {
    H=$(new_hash)
    F=$DS_DIR/$H
    mk_img raw "$F" 16M 0:1M:0x61
    mkdir -p "$F.snap"
    ln -sfn "$F" "$F.snap/0"
    ln -sfn . "$F.snap/$H.snap"
    (cd "$F.snap" && qemu-img create -q -f qcow2 -F raw -b "$H.snap/0" 1)
    img_write "$F.snap/1" 0x62 1M 1M
    (cd "$F.snap" && qemu-img create -q -f qcow2 -F qcow2 -b "$H.snap/1" 2)
    img_write "$F.snap/2" 0x63 2M 1M
    qemu-img convert -U -O raw "$F" "$TEST_DIR/s0.raw"
    qemu-img convert -U -O raw "$F.snap/1" "$TEST_DIR/s1.raw"
    qemu-img convert -U -O raw "$F.snap/2" "$TEST_DIR/s2.raw"
    different_content "$TEST_DIR/s1.raw" "$TEST_DIR/s2.raw"
}

case_raw_overlays() {
    fresh_raw
    # delete: the chain holds.
    snap_ok snap_delete 1 --set "$X_IMG/FORMAT=raw"
    test ! -e "$F.snap/1"
    same_content "$TEST_DIR/s2.raw" "$F.snap/2"
    qemu_img_check "$F.snap/2"
    cmp "$TEST_DIR/s0.raw" "$F"
    # revert: an empty overlay on the raw snapshot 0.
    snap_ok snap_revert 0 --set "$X_IMG/FORMAT=raw"
    test "$(img_backing "$F.snap/2")" = "$H.snap/0"
    same_content "$TEST_DIR/s0.raw" "$F.snap/2"
    empty_overlay "$F.snap/2"
    cmp "$TEST_DIR/s0.raw" "$F"
    # flatten: SOURCE stays raw and gets the snapshot's content.
    fresh_raw
    snap_ok snap_flatten 1 --set "$X_IMG/FORMAT=raw"
    test ! -e "$F.snap"
    test "$(img_fmt "$F")" = raw
    same_content "$TEST_DIR/s1.raw" "$F"
    # Flatten to 0, the link to SOURCE itself.
    fresh_raw
    snap_ok snap_flatten 0 --set "$X_IMG/FORMAT=raw"
    test ! -e "$F.snap"
    test -f "$F"
    test ! -L "$F"
    cmp "$TEST_DIR/s0.raw" "$F"
    # Revert to 1, written in qcow2.
    fresh_raw
    snap_ok snap_revert 1 --set "$X_IMG/FORMAT=raw"
    test "$(img_backing "$F.snap/2")" = "$H.snap/1"
    same_content "$TEST_DIR/s1.raw" "$F.snap/2"
}

test_case "snap_revert: the head becomes an empty overlay on the snapshot" case_revert
test_case "snap_revert to a missing snapshot or the head is refused" case_revert_refused
test_case "snap_delete 1 under the head keeps the head's content" case_delete_middle
test_case "snap_delete 0 (the link to SOURCE)" case_delete_base
test_case "snap_delete of the head refused; of a missing one succeeds" case_delete_refused
test_case "snap_flatten: SOURCE standalone with the snapshot, .snap gone" case_flatten
test_case "snap_flatten of a missing snapshot fails, changes nothing" case_flatten_missing
test_case "raw images: full-copy snapshots" case_raw_image
test_case "raw images with qcow2 overlays: delete, revert, flatten" case_raw_overlays
