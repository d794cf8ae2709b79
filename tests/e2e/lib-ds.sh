# shellcheck shell=bash
# Each case runs in a subshell on purpose, so variables it sets stay there.
# shellcheck disable=SC2030,SC2031
# Variables below are for the scripts that source this file.
# shellcheck disable=SC2034
# lib-ds.sh - what the datastore (DS) end-to-end tests share. Sourced after
# lib.sh:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/lib-ds.sh"
#   ds_setup
#   case_x() {
#       mk_img qcow2 "$IMAGES/a.qcow2" 64M 0:1M:0x11
#       ds_ok cp 30 cp/1 --set "$X_IMG/PATH=$IMAGES/a.qcow2"
#       ds_result_source; same_content "$IMAGES/a.qcow2" "$DS_SOURCE_FILE"
#   }
#
# ds_setup installs the programs with install.sh into $TEST_DIR/one
# (ONE_LOCATION) and writes its qcow2c.conf (LOCK_DIR in $TEST_DIR). Actions
# are run the way oned's one_datastore.rb runs them, by build/harness/oned-ds,
# on a message built by build/harness/ds-msg from a real oned capture
# (tests/fixtures/oned/ds/<action>/<n>/stdin.decoded.xml) whose datastore
# location /var/lib/one//datastores becomes $TEST_DIR/var/lib/one//datastores
# (the genuine "//" is kept) and whose image directory /var/tmp/lab-images
# becomes $IMAGES. Between oned-ds and the installed action sits a recorder
# (like the lab's "rec" driver) that keeps the action's own stdout, stderr
# and exit status, which oned's reply alone does not show (stderr lines are
# glued together there).
#
# Variables:
#   ONE REMOTES DS_CONF LOCK_DIR   the installation
#   DS_LOCATION   $TEST_DIR/var/lib/one//datastores (as oned writes it)
#   DS_BASE       $DS_LOCATION/107: BASE_PATH of the captured datastore, "//" kept
#   DS_DIR        the same directory, normalised
#   IMAGES        where the tests make their images (the capture's SAFE_DIRS)
#   X_IMG X_DS X_DST   XPaths of IMAGE, DATASTORE, DATASTORE/TEMPLATE
# After ds_call: DS_OUTCOME (SUCCESS|FAILURE), DS_RESULT (what follows
# "<ACTION> <OUTCOME> <ID> " in the reply), DS_REPLY (file: every line oned
# would get), and LAST_STDOUT / LAST_STDERR / LAST_STATUS describe the action
# itself, so lib.sh's expect_stdout, expect_stderr_line and one_plain_line
# apply to it.
#
# Helpers (each says why and returns 1 when its check fails):
#   ds_setup                         install, configure (outside the cases)
#   ds_msg CAPTURE [DS-MSG ARGS...]  prints the base64 message
#   ds_call ACTION ID CAPTURE [DS-MSG ARGS...]   runs the action through oned-ds
#   ds_call_stdin ACTION ID FILE     the same with FILE as the message
#   ds_ok ...     ds_call; SUCCESS and exactly one stdout line
#   ds_fails ...  ds_call; FAILURE, one plain stderr line (DS_REASON), the
#                 reply carrying it
#   ds_reason_matches ERE            DS_REASON matches (grep -E)
#   ds_result_source [FORMAT]        DS_RESULT is "<DS_BASE>/<32 hex> FORMAT";
#                                    sets DS_SOURCE, DS_SOURCE_FILE, DS_FORMAT
#   ds_listing [DIR]                 what is in the datastore, one path a line
#   same_listing_as FILE [DIR]       nothing created or removed since FILE
#   mk_img FMT FILE SIZE [OFF:LEN:PATTERN...]  qemu-img create + qemu-io writes
#   img_write FILE PATTERN OFF LEN   qemu-io write -P (format detected)
#   img_fmt / img_vsize / img_backing FILE
#   compress gz|bz2|xz FILE          FILE.gz / .bz2 / .xz beside FILE
#   same_content A B / different_content A B    qemu-img compare
#   allocated_bytes FILE             st_blocks * 512
#   mk_persistent SOURCE_FILE        the qcow2c layout of a persistent image
#                                    with snapshots 0 and 1 (see below)
#   http_start DIR [HTTP-SERVE ARGS...]  serve DIR; sets HTTP_URL; deferred kill
#   ds_tmpfs DIR SIZE                mount a tmpfs (root); deferred umount

X_IMG=/DS_DRIVER_ACTION_DATA/IMAGE
X_DS=/DS_DRIVER_ACTION_DATA/DATASTORE
X_DST=$X_DS/TEMPLATE

ONE=$TEST_DIR/one
REMOTES=$ONE/var/remotes
DS_CONF=$REMOTES/etc/qcow2c/qcow2c.conf
LOCK_DIR=$TEST_DIR/lock
DS_LOCATION=$TEST_DIR/var/lib/one//datastores
DS_BASE=$DS_LOCATION/107
DS_DIR=$TEST_DIR/var/lib/one/datastores/107
IMAGES=$TEST_DIR/images
DS_HOME=$TEST_DIR/home
DS_FIXTURES=$SRC/tests/fixtures/oned/ds
HARNESS=$BUILD/harness

_ds=$TEST_DIR/.ds
_ds_san_re='^==[0-9]+==ERROR: [A-Za-z]+Sanitizer|runtime error:|^SUMMARY: [A-Za-z]+Sanitizer'
DS_REC=$_ds/remotes
DS_MSG=$_ds/msg
DS_REPLY=$_ds/reply
DS_OUTCOME=
DS_RESULT=
DS_REASON=
export ONE REMOTES DS_CONF LOCK_DIR DS_LOCATION DS_BASE DS_DIR IMAGES

ds_setup() {
    need_tool qemu-img qemu-io gzip bzip2 xz md5sum sha1sum stat find sort cmp od df base64
    local t
    for t in ds-msg oned-ds http-serve; do
        if [ ! -x "$HARNESS/$t" ]; then
            _e2e_say "ds_setup: $HARNESS/$t is missing: run make"
            exit 1
        fi
    done
    mkdir -p "$_ds" "$IMAGES" "$DS_HOME" "$DS_DIR" "$DS_REC/datastore/qcow2c"
    if ! ONE_LOCATION=$ONE "$SRC/install.sh" --build "$BUILD" >"$_ds/install.log" 2>&1; then
        _e2e_say "ds_setup: install.sh failed:"
        cat "$_ds/install.log" >&2
        exit 1
    fi
    cat >"$DS_CONF" <<EOF
# written by tests/e2e/lib-ds.sh
LOCK_DIR="$LOCK_DIR"
LOCK_TIMEOUT="30"
HTTP_CONNECT_TIMEOUT="5"
EOF
    # The recorder: one script per action, run by oned-ds in place of the
    # installed link, running it with the same argv, stdin and environment.
    local a
    while IFS= read -r a; do
        [ -n "$a" ] || continue
        cat >"$DS_REC/datastore/qcow2c/$a" <<EOF
#!/bin/bash
"$REMOTES/datastore/qcow2c/$a" "\$@" >"$_ds/stdout" 2>"$_ds/stderr"
rc=\$?
echo "\$rc" >"$_ds/rc"
cat "$_ds/stdout"
cat "$_ds/stderr" >&2
exit "\$rc"
EOF
        chmod 755 "$DS_REC/datastore/qcow2c/$a"
    done < <("$REMOTES/datastore/qcow2c/qcow2c-ds" --list)
    if [ ! -x "$DS_REC/datastore/qcow2c/cp" ]; then
        _e2e_say "ds_setup: qcow2c-ds --list has no cp"
        exit 1
    fi
}

# ---------------------------------------------------------------- messages

ds_msg() {
    local capture=$1
    shift
    "$HARNESS/ds-msg" "$DS_FIXTURES/$capture/stdin.decoded.xml" \
        --subst "/var/lib/one//datastores=$DS_LOCATION" \
        --subst "/var/tmp/lab-images=$IMAGES" "$@"
}

# oned-ds gives the action the environment of a packaged install (PATH,
# HOME, ...; no ONE_LOCATION); HOME is the test's own.
_ds_run() { # ACTION ID
    rm -f "$_ds/stdout" "$_ds/stderr" "$_ds/rc"
    local status=0
    env HOME="$DS_HOME" \
        "$HARNESS/oned-ds" "$DS_REC" "$1" "$2" <"$DS_MSG" >"$DS_REPLY" 2>"$_ds/oned-ds.err" ||
        status=$?
    if [ "$status" = 2 ] || [ ! -f "$_ds/rc" ]; then
        _e2e_say "ds_call: oned-ds could not run $1 (status $status):"
        cat "$_ds/oned-ds.err" "$DS_REPLY" >&2
        return 1
    fi
    cp "$_ds/stdout" "$LAST_STDOUT"
    cp "$_ds/stderr" "$LAST_STDERR"
    LAST_STATUS=$(cat "$_ds/rc")
    if _e2e_sanitizer_report || grep -Eq "$_ds_san_re" "$_ds/oned-ds.err"; then
        _e2e_say "ds_call: $1 $2: a sanitizer reported an error"
        cat "$_ds/oned-ds.err" >&2
        _e2e_show_last
        return 1
    fi
    # The reply: LOG lines, then "<ACTION> <SUCCESS|FAILURE> <ID> <info>".
    local action line rest
    action=$(printf '%s' "$1" | tr '[:lower:]' '[:upper:]')
    line=$(grep -v '^LOG ' "$DS_REPLY" | head -n 1)
    DS_OUTCOME=${line#"$action "}
    DS_OUTCOME=${DS_OUTCOME%% *}
    rest=${line#"$action $DS_OUTCOME $2 "}
    if [ "$rest" = "$line" ] || { [ "$DS_OUTCOME" != SUCCESS ] && [ "$DS_OUTCOME" != FAILURE ]; }; then
        _e2e_say "ds_call: no '$action <SUCCESS|FAILURE> $2 ...' line in the reply:"
        sed 's/^/    /' "$DS_REPLY" >&2
        return 1
    fi
    DS_RESULT=$rest
    return 0
}

ds_call() { # ACTION ID CAPTURE [DS-MSG ARGS...]
    local action=$1 id=$2
    shift 2
    if ! ds_msg "$@" >"$DS_MSG"; then
        _e2e_say "ds_call: ds-msg $* failed"
        return 1
    fi
    _ds_run "$action" "$id"
}

ds_call_stdin() { # ACTION ID FILE
    cp "$3" "$DS_MSG"
    _ds_run "$1" "$2"
}

_ds_show() {
    _e2e_say "  reply:"
    sed 's/^/    /' "$DS_REPLY" >&2
    _e2e_say "  the action's exit status: $LAST_STATUS"
    _e2e_show_last
}

# SUCCESS, and what oned reads: one stdout line ending in a newline for the
# actions oned takes a result from (trap 7); nothing for rm and snap_*
# (oned then gets "-"); MONITOR, whose output the driver base64-encodes, may
# print several lines.
_ds_expect_success() {
    if [ "$DS_OUTCOME" != SUCCESS ] || [ "$LAST_STATUS" != 0 ]; then
        _e2e_say "ds_ok: expected SUCCESS, got $DS_OUTCOME"
        _ds_show
        return 1
    fi
    case $1 in
        monitor) ;;
        rm | snap_*)
            if [ -s "$LAST_STDOUT" ] || [ "$DS_RESULT" != - ]; then
                _e2e_say "ds_ok: $1 must print nothing on stdout:"
                _ds_show
                return 1
            fi
            ;;
        *)
            local lines
            lines=$(wc -l <"$LAST_STDOUT")
            if [ "$lines" != 1 ] || [ "$(tail -c 1 "$LAST_STDOUT" | od -An -c | tr -d ' ')" != '\n' ]; then
                _e2e_say "ds_ok: $1 must print exactly one line on stdout:"
                _ds_show
                return 1
            fi
            if [ "$(grep -vc '^LOG ' "$DS_REPLY")" != 1 ]; then
                _e2e_say "ds_ok: the reply has more than the result line:"
                _ds_show
                return 1
            fi
            ;;
    esac
}

ds_ok() { # ACTION ID CAPTURE [DS-MSG ARGS...]
    ds_call "$@" || return 1
    _ds_expect_success "$1"
}

# FAILURE with exactly one reason line on stderr (oned's rule), which is the
# reply's info; the action failed (status 1), it did not crash nor complain
# about its usage.
_ds_expect_failure() {
    if [ "$DS_OUTCOME" != FAILURE ]; then
        _e2e_say "ds_fails: expected FAILURE, got $DS_OUTCOME"
        _ds_show
        return 1
    fi
    if [ "$LAST_STATUS" != 1 ]; then
        _e2e_say "ds_fails: the action exited with status $LAST_STATUS, not 1"
        _ds_show
        return 1
    fi
    DS_REASON=$(one_plain_line "$LAST_STDERR") || return 1
    if [ "$DS_RESULT" != "$DS_REASON" ]; then
        _e2e_say "ds_fails: the reply's reason differs from the stderr line"
        _ds_show
        return 1
    fi
}

ds_fails() { # ACTION ID CAPTURE [DS-MSG ARGS...]
    ds_call "$@" || return 1
    _ds_expect_failure
}

ds_reason_matches() { # ERE
    if ! printf '%s\n' "$DS_REASON" | grep -Eq -- "$1"; then
        _e2e_say "ds_reason_matches: the reason does not match /$1/: $DS_REASON"
        return 1
    fi
}

# DS_RESULT is "<SOURCE> <FORMAT>" with SOURCE a new file of the datastore
# named like OpenNebula names them, printed with BASE_PATH verbatim.
ds_result_source() { # [FORMAT]
    local re
    re="^$(printf '%s' "$DS_BASE" | sed 's/[][\.*^$/]/\\&/g')/[0-9a-f]{32} [a-z0-9]+$"
    if ! printf '%s\n' "$DS_RESULT" | grep -Eq -- "$re"; then
        _e2e_say "ds_result_source: '$DS_RESULT' is not '$DS_BASE/<32 hex> <format>'"
        return 1
    fi
    DS_SOURCE=${DS_RESULT% *}
    DS_FORMAT=${DS_RESULT##* }
    DS_SOURCE_FILE=$DS_DIR/${DS_SOURCE##*/}
    if [ -n "${1:-}" ] && [ "$DS_FORMAT" != "$1" ]; then
        _e2e_say "ds_result_source: format $DS_FORMAT, expected $1"
        return 1
    fi
    if [ ! -f "$DS_SOURCE_FILE" ]; then
        _e2e_say "ds_result_source: $DS_SOURCE_FILE does not exist"
        return 1
    fi
    if [ -e "$DS_SOURCE_FILE.part" ] || [ -e "$DS_SOURCE_FILE.part.conv" ]; then
        _e2e_say "ds_result_source: a temporary file is left beside $DS_SOURCE_FILE"
        return 1
    fi
    if [ "$(img_fmt "$DS_SOURCE_FILE")" != "$DS_FORMAT" ]; then
        _e2e_say "ds_result_source: $DS_SOURCE_FILE is $(img_fmt "$DS_SOURCE_FILE"), not $DS_FORMAT"
        return 1
    fi
    qemu_img_check "$DS_SOURCE_FILE"
}

ds_listing() { # [DIR]
    local d=${1:-$DS_DIR}
    if [ -d "$d" ]; then
        (cd "$d" && find . -mindepth 1 -printf '%p %y %s %l\n' | LC_ALL=C sort)
    fi
}

same_listing_as() { # FILE [DIR]
    if ! ds_listing "${2:-$DS_DIR}" | diff -u "$1" - >"$_ds/listing.diff"; then
        _e2e_say "same_listing_as: the datastore changed:"
        sed 's/^/    /' "$_ds/listing.diff" >&2
        return 1
    fi
}

# ---------------------------------------------------------------- images

img_fmt() {
    qemu-img info -U --output=json -- "$1" | sed -n 's/^    "format": "\(.*\)",*$/\1/p' | head -n 1
}

img_vsize() {
    qemu-img info -U --output=json -- "$1" | sed -n 's/^    "virtual-size": \([0-9]*\),*$/\1/p' | head -n 1
}

img_backing() {
    qemu-img info -U --output=json -- "$1" | sed -n 's/^    "backing-filename": "\(.*\)",*$/\1/p' | head -n 1
}

img_write() { # FILE PATTERN OFF LEN
    local f
    f=$(img_fmt "$1")
    qemu-io -f "$f" -c "write -q -P $2 $3 $4" -- "$1" >/dev/null
}

mk_img() { # FMT FILE SIZE [OFF:LEN:PATTERN...]
    local fmt=$1 file=$2 size=$3 w off len pat
    shift 3
    mkdir -p "$(dirname "$file")"
    rm -f "$file"
    qemu-img create -q -f "$fmt" -- "$file" "$size"
    for w in "$@"; do
        IFS=: read -r off len pat <<<"$w"
        qemu-io -f "$fmt" -c "write -q -P $pat $off $len" -- "$file" >/dev/null
    done
}

compress() { # gz|bz2|xz FILE
    case $1 in
        gz) gzip -kf -- "$2" ;;
        bz2) bzip2 -kf -- "$2" ;;
        xz) xz -kf -T1 -- "$2" ;;
        *)
            _e2e_say "compress: unknown kind $1"
            return 1
            ;;
    esac
}

same_content() { # A B
    local fa fb
    fa=$(img_fmt "$1")
    fb=$(img_fmt "$2")
    if ! qemu-img compare -U -f "$fa" -F "$fb" -- "$1" "$2" >"$_ds/compare" 2>&1; then
        _e2e_say "same_content: $1 ($fa) and $2 ($fb) differ:"
        sed 's/^/    /' "$_ds/compare" >&2
        return 1
    fi
}

different_content() { # A B
    local fa fb status=0
    fa=$(img_fmt "$1")
    fb=$(img_fmt "$2")
    qemu-img compare -U -f "$fa" -F "$fb" -- "$1" "$2" >"$_ds/compare" 2>&1 || status=$?
    if [ "$status" != 1 ]; then
        _e2e_say "different_content: compare $1 $2 gave status $status (1 expected):"
        sed 's/^/    /' "$_ds/compare" >&2
        return 1
    fi
}

allocated_bytes() {
    echo $(($(stat -c '%b * %B' -- "$1")))
}

# The qcow2c layout of a persistent image with two snapshots (protocol
# §2.2), in the image datastore:
#   FILE               qcow2 64 MiB, 0x11 in [0, 1M)
#   FILE.snap/0 -> FILE
#   FILE.snap/<name>.snap -> .           (self link for relative backing names)
#   FILE.snap/1        overlay on <name>.snap/0, 0x22 in [1M, 2M): snapshot 1
#   FILE.snap/2        overlay on <name>.snap/1, 0x33 in [2M, 3M): the head
mk_persistent() { # FILE
    local f=$1 name
    name=$(basename "$f")
    mk_img qcow2 "$f" 64M 0:1M:0x11
    mkdir -p "$f.snap"
    ln -sfn "$f" "$f.snap/0"
    ln -sfn . "$f.snap/$name.snap"
    (cd "$f.snap" && qemu-img create -q -f qcow2 -F qcow2 -b "$name.snap/0" 1)
    img_write "$f.snap/1" 0x22 1M 1M
    (cd "$f.snap" && qemu-img create -q -f qcow2 -F qcow2 -b "$name.snap/1" 2)
    img_write "$f.snap/2" 0x33 2M 1M
}

# A new name for an image file of the datastore: 32 hex digits, as cp makes.
new_hash() {
    printf '%s:%s\n' "$RANDOM$RANDOM" "$(date +%s%N)" | md5sum | cut -c1-32
}

# ---------------------------------------------------------------- services

_ds_kill() { # PID
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

http_start() { # DIR [HTTP-SERVE ARGS...]
    local dir=$1 pf i
    shift
    pf=$(mktemp "$_ds/http-port.XXXXXX")
    rm -f "$pf"
    "$HARNESS/http-serve" --portfile "$pf" "$@" "$dir" >>"$_ds/http-serve.log" 2>&1 &
    HTTP_PID=$!
    defer _ds_kill "$HTTP_PID"
    for ((i = 0; i < 100; i++)); do
        [ -s "$pf" ] && break
        sleep 0.05
    done
    if [ ! -s "$pf" ]; then
        _e2e_say "http_start: http-serve did not start:"
        cat "$_ds/http-serve.log" >&2
        return 1
    fi
    HTTP_URL=http://127.0.0.1:$(cat "$pf")
}

_ds_umount() { # DIR
    umount "$1" 2>/dev/null || umount -l "$1"
}

ds_tmpfs() { # DIR SIZE
    if [ "$(id -u)" != 0 ]; then
        _e2e_say "ds_tmpfs: mounting a tmpfs needs root"
        return 1
    fi
    mkdir -p "$1"
    mount -t tmpfs -o "size=$2" qcow2c-test "$1"
    defer _ds_umount "$1"
}
