#!/bin/bash
# t0103-ds-stat.sh - DS stat (captured stat/1: IMAGE holds only PATH): one
# line, the size in MB rounded up: the virtual size of a disk format, the
# length of a raw file, decompressed, of a directory the bytes of its files,
# of a URL its Content-Length; a missing or empty file fails.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ds.sh"

ds_setup
need_tool truncate

stat_is() { # PATH MB [DS-MSG ARGS...]
    local path=$1 mb=$2
    shift 2
    ds_ok stat 3 stat/1 --set "$X_IMG/PATH=$path" "$@"
    if [ "$DS_RESULT" != "$mb" ]; then
        echo "stat $path: $DS_RESULT, expected $mb"
        return 1
    fi
    expect_stdout "$mb"
}

stat_fails() { # PATH [DS-MSG ARGS...]
    local path=$1
    shift
    ds_fails stat 3 stat/1 --set "$X_IMG/PATH=$path" "$@"
}

case_qcow2() {
    mk_img qcow2 "$IMAGES/a.qcow2" 64M 0:1M:0x11
    stat_is "$IMAGES/a.qcow2" 64
    # 10 MiB + 512 bytes: 11 MB, rounded up; the allocated size is beside
    # the point.
    qemu-img create -q -f qcow2 "$IMAGES/b.qcow2" 10486272
    stat_is "$IMAGES/b.qcow2" 11
    # A big virtual size, nothing allocated.
    qemu-img create -q -f qcow2 "$IMAGES/c.qcow2" 100G
    stat_is "$IMAGES/c.qcow2" 102400
    # A format only qemu-img sizes.
    qemu-img create -q -f vmdk "$IMAGES/d.vmdk" 20M
    stat_is "$IMAGES/d.vmdk" 20
}

case_raw() {
    mk_img raw "$IMAGES/r.raw" 5M 0:1M:0x22
    stat_is "$IMAGES/r.raw" 5
    truncate -s $(((5 << 20) + 1)) "$IMAGES/r1.raw"
    stat_is "$IMAGES/r1.raw" 6
    head -c 100 /dev/urandom >"$IMAGES/tiny.raw"
    stat_is "$IMAGES/tiny.raw" 1
}

case_compressed() {
    local k
    mk_img raw "$IMAGES/z.raw" 9M 0:1M:0x33 8M:1M:0x34
    for k in gz bz2 xz; do
        compress "$k" "$IMAGES/z.raw"
        stat_is "$IMAGES/z.raw.$k" 9
    done
    # NO_DECOMPRESS: the file as it is.
    stat_is "$IMAGES/z.raw.gz" 1 --set "$X_DST/NO_DECOMPRESS=YES"
    # Compressed qcow2: its virtual size.
    mk_img qcow2 "$IMAGES/zq.qcow2" 300M 0:1M:0x35
    compress xz "$IMAGES/zq.qcow2"
    stat_is "$IMAGES/zq.qcow2.xz" 300
    compress gz "$IMAGES/zq.qcow2"
    stat_is "$IMAGES/zq.qcow2.gz" 300
    # Truncated compressed data: a raw cannot be sized.
    head -c $(($(stat -c %s "$IMAGES/z.raw.xz") / 2)) "$IMAGES/z.raw.xz" >"$IMAGES/cut.raw.xz"
    stat_fails "$IMAGES/cut.raw.xz"
    ds_reason_matches "xz"
}

case_directory() {
    local dir=$IMAGES/dir
    mkdir -p "$dir/sub"
    head -c $((1 << 20)) /dev/zero >"$dir/a"
    head -c $((1 << 20)) /dev/zero >"$dir/b"
    head -c $((512 << 10)) /dev/zero >"$dir/sub/c"
    # A link is not followed.
    ln -sfn "$IMAGES/a.qcow2" "$dir/link"
    stat_is "$dir" 3
}

case_url() {
    local web=$TEST_DIR/web
    mkdir -p "$web"
    mk_img qcow2 "$web/u.qcow2" 200M 0:1M:0x44
    mk_img raw "$web/u.raw" 7M 0:1M:0x45
    compress xz "$web/u.qcow2"
    compress gz "$web/u.raw"
    http_start "$web" --redirect /r.raw=/u.raw
    stat_is "$HTTP_URL/u.qcow2" 200
    stat_is "$HTTP_URL/u.raw" 7
    stat_is "$HTTP_URL/u.qcow2.xz" 200
    stat_is "$HTTP_URL/r.raw" 7
    # A compressed raw URL cannot be sized without downloading it.
    stat_fails "$HTTP_URL/u.raw.gz"
    ds_reason_matches "compressed"
    stat_fails "$HTTP_URL/missing.raw"
    ds_reason_matches "HTTP 404"
    # Credentials stay out of the reason and of the log lines.
    stat_fails "http://user:s3cret@${HTTP_URL#http://}/missing.raw"
    if grep -F s3cret "$DS_REPLY"; then
        echo "the password reached oned"
        return 1
    fi
    # A raw URL from a server that sends no Content-Length.
    http_start "$web" --no-length
    stat_fails "$HTTP_URL/u.raw"
    ds_reason_matches "Content-Length"
    stat_is "$HTTP_URL/u.qcow2" 200
}

case_failures() {
    stat_fails "$IMAGES/no-such-file"
    ds_reason_matches "no-such-file"
    : >"$IMAGES/empty"
    stat_fails "$IMAGES/empty"
    ds_reason_matches "empty"
    stat_fails ""
    stat_fails "relative.qcow2"
    stat_fails "ftp://host/x.qcow2"
    mkdir -p "$IMAGES/emptydir"
    stat_fails "$IMAGES/emptydir"
    # Restricted directories apply as for cp.
    mk_img qcow2 "$DS_HOME/h.qcow2" 16M
    stat_fails "$DS_HOME/h.qcow2"
    ds_reason_matches "not allowed"
    stat_is "$DS_HOME/h.qcow2" 16 --set "$X_DST/SAFE_DIRS=$DS_HOME"
}

case_big_compressed() {
    # More compressed bytes than stat reads to find the header.
    local k web=$TEST_DIR/web3
    mkdir -p "$web"
    qemu-img create -q -f qcow2 "$web/big.qcow2" 500M
    head -c $((6 << 20)) /dev/urandom >"$TEST_DIR/rand"
    qemu-io -f qcow2 -c "write -q -s $TEST_DIR/rand 0 6M" "$web/big.qcow2" >/dev/null
    head -c $((6 << 20)) /dev/urandom >"$web/big.raw"
    qemu-img create -q -f vmdk "$web/v.vmdk" 40M
    qemu-io -f vmdk -c "write -q -s $TEST_DIR/rand 0 6M" "$web/v.vmdk" >/dev/null
    for k in gz bz2 xz; do
        compress "$k" "$web/big.qcow2"
        compress "$k" "$web/big.raw"
        compress "$k" "$web/v.vmdk"
        test "$(stat -c %s "$web/big.qcow2.$k")" -gt $((5 << 20))
        stat_is "$web/big.qcow2.$k" 500 --set "$X_DST/SAFE_DIRS=$web"
        stat_is "$web/big.raw.$k" 6 --set "$X_DST/SAFE_DIRS=$web"
        stat_is "$web/v.vmdk.$k" 40 --set "$X_DST/SAFE_DIRS=$web"
    done
    http_start "$web"
    for k in gz bz2 xz; do
        stat_is "$HTTP_URL/big.qcow2.$k" 500
        stat_is "$HTTP_URL/v.vmdk.$k" 40
    done
    stat_is "$HTTP_URL/v.vmdk" 40
}

test_case "qcow2 and vmdk: virtual size, rounded up" case_qcow2
test_case "raw: file length, rounded up" case_raw
test_case "gz/bz2/xz raw: decompressed size; xz/gz qcow2: virtual size" case_compressed
test_case "a directory: the bytes of its files" case_directory
test_case "URL qcow2, raw (Content-Length), redirect, 404" case_url
test_case "missing, empty, relative, restricted PATH" case_failures
test_case "compressed files bigger than the header read; vmdk by URL" case_big_compressed
