#!/bin/bash
# t0101-ds-mkfs.sh - DS mkfs: the captured save-as message (mkfs/2) only
# names a path; datablocks (mkfs/1) of SIZE MB in raw or qcow2, with a file
# system inside, swap, SPARSE=NO; bad SIZE, FORMAT and FS fail with one line
# and create nothing. oned takes the whole stdout line as SOURCE.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ds.sh"

ds_setup
need_tool mkfs.ext4 mkswap

# The SOURCE printed by mkfs: BASE_PATH verbatim, a 32-hex name, nothing
# else on the line (no trailing blank: oned keeps it).
mkfs_source() {
    local re
    re="^$(printf '%s' "$DS_BASE" | sed 's/[][\.*^$/]/\\&/g')/[0-9a-f]{32}$"
    if ! printf '%s\n' "$DS_RESULT" | grep -Eq -- "$re"; then
        echo "mkfs printed '$DS_RESULT', not '$DS_BASE/<32 hex>'"
        return 1
    fi
    DS_SOURCE=$DS_RESULT
    DS_SOURCE_FILE=$DS_DIR/${DS_SOURCE##*/}
}

# The bytes at OFFSET (decimal) of the image's content, hex.
content_bytes() { # FILE OFFSET COUNT
    local f=$1
    if [ "$(img_fmt "$f")" != raw ]; then
        qemu-img convert -U -O raw "$f" "$TEST_DIR/flat.raw"
        f=$TEST_DIR/flat.raw
    fi
    od -An -tx1 -j "$2" -N "$3" "$f" | tr -d ' \n'
}

# ext2/3/4 superblock magic 0xEF53 at byte 1080.
has_ext_magic() {
    test "$(content_bytes "$1" 1080 2)" = 53ef
}

mkfs_ok() { # ID [DS-MSG ARGS...]
    local id=$1
    shift
    ds_ok mkfs "$id" mkfs/1 --set "$X_IMG/ID=$id" "$@"
    mkfs_source
    test -f "$DS_SOURCE_FILE"
    test ! -e "$DS_SOURCE_FILE.part"
    test ! -e "$DS_SOURCE_FILE.part.conv"
    qemu_img_check "$DS_SOURCE_FILE"
}

case_save_as() {
    ds_listing >"$TEST_DIR/before"
    ds_ok mkfs 21 mkfs/2
    mkfs_source
    test ! -e "$DS_SOURCE_FILE"
    same_listing_as "$TEST_DIR/before"
    # Nothing on stderr but log lines.
    if grep -Ev '^(INFO|DEBUG|WARN): ' "$LAST_STDERR"; then
        echo "save-as mkfs printed plain stderr lines"
        return 1
    fi
}

case_datablocks() {
    mkfs_ok 30 --set "$X_IMG/FORMAT=raw"
    test "$(img_fmt "$DS_SOURCE_FILE")" = raw
    test "$(img_vsize "$DS_SOURCE_FILE")" = $((16 << 20))
    test "$(stat -c %s "$DS_SOURCE_FILE")" = $((16 << 20))
    # sparse by default
    test "$(allocated_bytes "$DS_SOURCE_FILE")" -lt $((1 << 20))
    mkfs_ok 31 # the capture: qcow2, 16 MB
    test "$(img_fmt "$DS_SOURCE_FILE")" = qcow2
    test "$(img_vsize "$DS_SOURCE_FILE")" = $((16 << 20))
    test -z "$(img_backing "$DS_SOURCE_FILE")"
    mkfs_ok 32 --set "$X_IMG/SIZE=2048"
    test "$(img_vsize "$DS_SOURCE_FILE")" = $((2048 << 20))
}

case_filesystems() {
    mkfs_ok 40 --set "$X_IMG/FORMAT=raw" --set "$X_IMG/FS=ext4"
    test "$(img_fmt "$DS_SOURCE_FILE")" = raw
    test "$(img_vsize "$DS_SOURCE_FILE")" = $((16 << 20))
    has_ext_magic "$DS_SOURCE_FILE"
    mkfs_ok 41 --set "$X_IMG/FS=ext4"
    test "$(img_fmt "$DS_SOURCE_FILE")" = qcow2
    test "$(img_vsize "$DS_SOURCE_FILE")" = $((16 << 20))
    has_ext_magic "$DS_SOURCE_FILE"
    mkfs_ok 42 --set "$X_IMG/FS=ext2"
    has_ext_magic "$DS_SOURCE_FILE"
    # An empty datablock has no file system.
    mkfs_ok 43 --set "$X_IMG/FORMAT=raw"
    test "$(content_bytes "$DS_SOURCE_FILE" 1080 2)" = 0000
}

case_swap() {
    local page
    page=$(getconf PAGESIZE)
    mkfs_ok 50 --set "$X_IMG/FORMAT=swap" --set "$X_IMG/SIZE=8"
    test "$(img_fmt "$DS_SOURCE_FILE")" = raw
    test "$(img_vsize "$DS_SOURCE_FILE")" = $((8 << 20))
    test "$(content_bytes "$DS_SOURCE_FILE" $((page - 10)) 10)" = "$(printf SWAPSPACE2 | od -An -tx1 | tr -d ' \n')"
}

case_not_sparse() {
    mkfs_ok 60 --set "$X_IMG/FORMAT=raw" --set "$X_DST/SPARSE=NO"
    test "$(allocated_bytes "$DS_SOURCE_FILE")" -ge $((16 << 20))
    mkfs_ok 61 --set "$X_DST/SPARSE=NO"
    test "$(img_fmt "$DS_SOURCE_FILE")" = qcow2
    test "$(allocated_bytes "$DS_SOURCE_FILE")" -ge $((16 << 20))
    # With a file system inside qcow2 too.
    mkfs_ok 62 --set "$X_DST/SPARSE=NO" --set "$X_IMG/FS=ext4"
    has_ext_magic "$DS_SOURCE_FILE"
    test "$(allocated_bytes "$DS_SOURCE_FILE")" -ge $((16 << 20))
    mkfs_ok 63 --set "$X_DST/SPARSE=NO" --set "$X_IMG/FORMAT=raw" --set "$X_IMG/FS=ext4"
    has_ext_magic "$DS_SOURCE_FILE"
    test "$(allocated_bytes "$DS_SOURCE_FILE")" -ge $((16 << 20))
}

case_bad() {
    local v
    ds_listing >"$TEST_DIR/before"
    for v in abc 0 -16 16.5 "" 16M 99999999999999999999; do
        ds_fails mkfs 70 mkfs/1 --set "$X_IMG/SIZE=$v"
        ds_reason_matches "SIZE"
    done
    ds_fails mkfs 71 mkfs/1 --del "$X_IMG/SIZE"
    ds_reason_matches "SIZE"
    for v in vmdk "" QCOW2 iso; do
        ds_fails mkfs 72 mkfs/1 --set "$X_IMG/FORMAT=$v"
        ds_reason_matches "format"
    done
    for v in ntfs "ext4 -E x" ../ext4 swap; do
        ds_fails mkfs 73 mkfs/1 --set "$X_IMG/FS=$v"
        ds_reason_matches "file system"
    done
    same_listing_as "$TEST_DIR/before"
    test -z "$(find "$DS_DIR" -name '*.part*' -print)"
}

case_supported_fs_conf() {
    # SUPPORTED_FS in qcow2c.conf decides.
    cp "$DS_CONF" "$TEST_DIR/conf.saved"
    defer cp "$TEST_DIR/conf.saved" "$DS_CONF"
    echo 'SUPPORTED_FS="ext2"' >>"$DS_CONF"
    ds_fails mkfs 80 mkfs/1 --set "$X_IMG/FS=ext4"
    ds_reason_matches "ext4"
    mkfs_ok 81 --set "$X_IMG/FS=ext2"
    has_ext_magic "$DS_SOURCE_FILE"
}

test_case "save-as (captured mkfs/2): prints the path, creates nothing" case_save_as
test_case "raw and qcow2 datablocks of SIZE MB" case_datablocks
test_case "FS=ext4 inside raw and inside qcow2" case_filesystems
test_case "FORMAT=swap has a swap signature" case_swap
test_case "SPARSE=NO allocates" case_not_sparse
test_case "bad SIZE, FORMAT and FS: one line, nothing created" case_bad
test_case "SUPPORTED_FS from qcow2c.conf" case_supported_fs_conf
