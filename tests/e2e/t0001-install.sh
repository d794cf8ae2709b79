#!/bin/bash
# t0001-install.sh - install.sh: the remotes layout follows `--list`, a
# re-run changes nothing, --uninstall removes exactly what install made, an
# admin's qcow2c.conf survives, and --apply-conf edits a stock oned.conf and
# vmm_execrc once (fixtures copied from OpenNebula f847cf2:
# share/etc/oned.conf and src/vmm_mad/exec/vmm_execrc).
. "$(dirname "$0")/lib.sh"

need_tool find cmp diff stat readlink awk

DEST=$TEST_DIR/dest    # DESTDIR
ONE=/one               # ONE_LOCATION, inside DESTDIR
R=$DEST$ONE/var/remotes
STOCK_ONED=$SRC/tests/fixtures/oned.conf.stock
STOCK_VMM=$SRC/tests/fixtures/vmm_execrc.stock

# install.sh into $DEST with ONE_LOCATION=$ONE; extra arguments (and
# BUILD_DIR, default $BUILD) passed on.
inst() {
    expect_success env DESTDIR="$DEST" ONE_LOCATION="$ONE" \
        "$SRC/install.sh" --build "${BUILD_DIR:-$BUILD}" "$@"
}

inst_fails() {
    must_fail env DESTDIR="$DEST" ONE_LOCATION="$ONE" \
        "$SRC/install.sh" --build "${BUILD_DIR:-$BUILD}" "$@"
}

# Everything about a tree that an install could change, one line a path.
listing() {
    if [ -d "$1" ]; then
        (cd "$1" && find . -printf '%p %y %m %u:%g %s %l %T@\n' | LC_ALL=C sort)
    fi
}

# The same without times: what is there, not when it was touched.
shape() {
    if [ -d "$1" ]; then
        (cd "$1" && find . -printf '%p %y %m %u:%g %s %l\n' | LC_ALL=C sort)
    fi
}

same_listing() { # WHAT A B
    if ! diff -u "$2" "$3" >"$TEST_DIR/listing.diff"; then
        echo "$1: the tree changed:"
        cat "$TEST_DIR/listing.diff"
        return 1
    fi
}

# Who owns what install.sh makes: oneadmin when it can, else the installer.
expected_owner() {
    if [ "$(id -u)" = 0 ] && id -u oneadmin >/dev/null 2>&1 && getent group oneadmin >/dev/null; then
        echo oneadmin:oneadmin
    else
        echo "$(id -un):$(id -gn)"
    fi
}

# Checks DIR against `PROGRAM --list`: DIR/NAME -> TARGET for every name,
# and no other link to TARGET.
check_links() {
    local dir=$1 target=$2 program=$3 n link
    local -A want=()
    while IFS= read -r n; do
        [ -n "$n" ] || continue
        want[$n]=1
        if [ ! -L "$dir/$n" ]; then
            echo "$dir/$n: missing, or not a symbolic link"
            return 1
        fi
        if [ "$(readlink "$dir/$n")" != "$target" ]; then
            echo "$dir/$n -> $(readlink "$dir/$n"), expected -> $target"
            return 1
        fi
    done < <("$program" --list)
    for link in "$dir"/*; do
        if [ -L "$link" ] && [ "$(readlink "$link")" = "$target" ] && [ -z "${want[${link##*/}]:-}" ]; then
            echo "$link -> $target is not in '$program --list'"
            return 1
        fi
    done
}

# A build directory whose programs print the action lists in $TEST_DIR/tm.list
# and ds.list: lets the cases change --list at will.
make_fake_build() {
    local dir=$TEST_DIR/fake-build p
    mkdir -p "$dir/bin"
    for p in tm ds; do
        # shellcheck disable=SC2016 # $1 and $* belong to the fake program
        printf '#!/bin/sh\n[ "$1" = --list ] && exec cat %q\necho "fake qcow2c-%s $*"\n' \
            "$TEST_DIR/$p.list" "$p" >"$dir/bin/qcow2c-$p"
        chmod 755 "$dir/bin/qcow2c-$p"
        touch "$TEST_DIR/$p.list"
    done
    echo "$dir"
}

fresh() {
    rm -rf "$DEST"
}

# Fails when a line of FILE matches ERE. (`! grep` would not: set -e
# ignores a negated command.)
refute_grep() {
    if grep -Eq -- "$1" "$2"; then
        echo "unexpected line matching /$1/ in $2:"
        grep -E -- "$1" "$2"
        return 1
    fi
}

# ---------------------------------------------------------------- cases

case_layout() {
    fresh
    inst
    grep -q '^TM_MAD_CONF = \[' "$LAST_STDOUT" # the snippets to add are printed
    check_links "$R/tm/qcow2c" qcow2c-tm "$BUILD/bin/qcow2c-tm"
    check_links "$R/datastore/qcow2c" qcow2c-ds "$BUILD/bin/qcow2c-ds"
    cmp "$BUILD/bin/qcow2c-tm" "$R/tm/qcow2c/qcow2c-tm"
    cmp "$BUILD/bin/qcow2c-ds" "$R/datastore/qcow2c/qcow2c-ds"
    test -x "$R/tm/qcow2c/qcow2c-tm"
    test -x "$R/datastore/qcow2c/qcow2c-ds"
    cmp "$SRC/oned-conf/qcow2c.conf" "$R/etc/qcow2c/qcow2c.conf"
    # The installed program finds the installed configuration file
    # (<dir of argv[0]>/../../etc/qcow2c/qcow2c.conf).
    expect_success env -u QCOW2C_CONF "$R/tm/qcow2c/qcow2c-tm" --config
    local used
    used=$(head -n 1 "$LAST_STDOUT")
    used=${used#\# }
    test "$(realpath -m "$used")" = "$(realpath "$R/etc/qcow2c/qcow2c.conf")"
    # Nothing half-done left behind (temporaries are dot files).
    test -z "$(find "$DEST" -name '.*' ! -name . -print)"
    local owner bad
    owner=$(expected_owner)
    bad=$(find "$R/tm/qcow2c" "$R/datastore/qcow2c" "$R/etc/qcow2c" ! -user "${owner%%:*}" -print)
    if [ -n "$bad" ]; then
        echo "not owned by $owner:"
        echo "$bad"
        return 1
    fi
}

case_rerun() {
    fresh
    inst
    listing "$DEST" >"$TEST_DIR/first"
    sleep 1.1 # a rewritten file would get another mtime
    inst
    listing "$DEST" >"$TEST_DIR/second"
    same_listing "second install" "$TEST_DIR/first" "$TEST_DIR/second"
    grep -q 'qcow2c-tm *unchanged' "$LAST_STDOUT"
}

case_uninstall_empty() {
    fresh
    inst
    expect_success env DESTDIR="$DEST" ONE_LOCATION="$ONE" "$SRC/install.sh" --uninstall
    local left
    left=$(find "$DEST" -mindepth 1 -print)
    if [ -n "$left" ]; then
        echo "left behind:"
        echo "$left"
        return 1
    fi
    # Uninstalling again finds nothing to do, and says nothing went wrong.
    expect_success env DESTDIR="$DEST" ONE_LOCATION="$ONE" "$SRC/install.sh" --uninstall
}

case_uninstall_keeps_others() {
    fresh
    # A front-end that already has remotes: none of it is install.sh's.
    mkdir -p "$R/tm/ssh" "$R/datastore/fs" "$R/etc/tm" "$DEST$ONE/bin"
    echo stock >"$R/tm/ssh/clone"
    echo stock >"$R/datastore/fs/cp"
    echo stock >"$R/etc/tm/tmrc"
    echo stock >"$DEST$ONE/bin/oned"
    shape "$DEST" >"$TEST_DIR/before"
    inst
    expect_success env DESTDIR="$DEST" ONE_LOCATION="$ONE" "$SRC/install.sh" --uninstall
    shape "$DEST" >"$TEST_DIR/after"
    same_listing "install + uninstall" "$TEST_DIR/before" "$TEST_DIR/after"
}

case_conf_kept() {
    fresh
    inst
    local conf=$R/etc/qcow2c/qcow2c.conf
    echo 'DEBUG="yes"' >>"$conf"
    cp "$conf" "$TEST_DIR/mine.conf"
    inst
    cmp "$TEST_DIR/mine.conf" "$conf"
    cmp "$SRC/oned-conf/qcow2c.conf" "$conf.new"
    grep -q 'qcow2c.conf.new' "$LAST_STDOUT"
    # and a third run changes nothing more
    listing "$DEST" >"$TEST_DIR/second"
    inst
    listing "$DEST" >"$TEST_DIR/third"
    same_listing "third install" "$TEST_DIR/second" "$TEST_DIR/third"
    expect_success env DESTDIR="$DEST" ONE_LOCATION="$ONE" "$SRC/install.sh" --uninstall
    grep -q 'qcow2c.conf *KEPT' "$LAST_STDOUT"
    cmp "$TEST_DIR/mine.conf" "$conf"
    # The admin's file, and the directories down to it, are all that is left.
    local left
    left=$(cd "$DEST" && find . -type f)
    test "$left" = "./one/var/remotes/etc/qcow2c/qcow2c.conf"
}

case_links_follow_list() {
    fresh
    local BUILD_DIR tm=$R/tm/qcow2c
    BUILD_DIR=$(make_fake_build)
    printf '%s\n' clone clone.ssh mv snap_create_live >"$TEST_DIR/tm.list"
    printf '%s\n' cp rm monitor >"$TEST_DIR/ds.list"
    inst
    check_links "$tm" qcow2c-tm "$BUILD_DIR/bin/qcow2c-tm"
    check_links "$R/datastore/qcow2c" qcow2c-ds "$BUILD_DIR/bin/qcow2c-ds"
    # oned runs the link: the program sees its action name.
    expect_success "$tm/clone.ssh" a b
    expect_stdout "fake qcow2c-tm a b"
    # Things in the driver's directory that are not install.sh's links.
    ln -s /bin/true "$tm/custom"
    ln -s qcow2c-ds "$tm/other"
    echo notes >"$tm/NOTES"
    # clone.ssh leaves the table, snap_delete joins it.
    printf '%s\n' clone mv snap_create_live snap_delete >"$TEST_DIR/tm.list"
    inst
    check_links "$tm" qcow2c-tm "$BUILD_DIR/bin/qcow2c-tm"
    test ! -L "$tm/clone.ssh"
    test "$(readlink "$tm/custom")" = /bin/true
    test "$(readlink "$tm/other")" = qcow2c-ds
    test -f "$tm/NOTES"
    grep -q '1 new, 1 removed' "$LAST_STDOUT"
    # An empty table leaves no link.
    : >"$TEST_DIR/tm.list"
    inst
    test -z "$(find "$tm" -lname qcow2c-tm -print)"
    expect_success env DESTDIR="$DEST" ONE_LOCATION="$ONE" "$SRC/install.sh" --uninstall
    # The admin's files stay, and so does their directory.
    test -L "$tm/custom"
    test -L "$tm/other"
    test -f "$tm/NOTES"
    test ! -e "$tm/qcow2c-tm"
}

case_bad_names() {
    fresh
    local BUILD_DIR
    BUILD_DIR=$(make_fake_build)
    printf '%s\n' clone ../evil >"$TEST_DIR/tm.list"
    inst_fails
    expect_stderr_line --match "cannot be an action name"
    test ! -e "$DEST" # refused before touching anything
    printf '%s\n' clone >"$TEST_DIR/tm.list"
    mkdir -p "$R/tm/qcow2c"
    echo mine >"$R/tm/qcow2c/clone"
    inst_fails
    expect_stderr_line --match "clone exists and is not a symbolic link"
    test "$(cat "$R/tm/qcow2c/clone")" = mine
    test ! -e "$R/tm/qcow2c/qcow2c-tm" # refused before installing anything
}

case_onesnap() {
    fresh
    local BUILD_DIR
    BUILD_DIR=$(make_fake_build)
    printf '#!/bin/sh\necho onesnap\n' >"$BUILD_DIR/bin/onesnap"
    chmod 755 "$BUILD_DIR/bin/onesnap"
    inst
    cmp "$BUILD_DIR/bin/onesnap" "$DEST$ONE/bin/onesnap"
    # Without ONE_LOCATION it goes to $PREFIX/bin (default /usr/bin).
    expect_success env -u ONE_LOCATION DESTDIR="$DEST/sys" PREFIX=/usr/local \
        "$SRC/install.sh" --build "$BUILD_DIR"
    cmp "$BUILD_DIR/bin/onesnap" "$DEST/sys/usr/local/bin/onesnap"
    test -x "$DEST/sys/var/lib/one/remotes/tm/qcow2c/qcow2c-tm"
    # --uninstall finds it even without PREFIX (the manifest has it).
    expect_success env -u ONE_LOCATION DESTDIR="$DEST/sys" "$SRC/install.sh" --uninstall
    test -z "$(find "$DEST/sys" -mindepth 1 -print)"
    expect_success env DESTDIR="$DEST" ONE_LOCATION="$ONE" "$SRC/install.sh" --uninstall
    test -z "$(find "$DEST" -mindepth 1 ! -path "$DEST/sys" -print)"
}

case_usage() {
    expect_success "$SRC/install.sh" -h
    grep -q '^usage: install.sh' "$LAST_STDOUT"
    must_fail --status 2 "$SRC/install.sh" --no-such-option
    expect_stderr_line --match "unknown argument '--no-such-option'"
    must_fail --status 2 "$SRC/install.sh" --print-conf --apply-conf
    fresh
    expect_success env DESTDIR="$DEST" ONE_LOCATION="$ONE" "$SRC/install.sh" --print-conf
    grep -q '^    NAME = "qcow2c", LN_TARGET = "NONE"' "$LAST_STDOUT"
    grep -q '^LIVE_DISK_SNAPSHOTS=".* kvm-qcow2c qemu-qcow2c"$' "$LAST_STDOUT"
    test ! -e "$DEST" # --print-conf installs nothing
}

# The ARGUMENTS string of the TM_MAD or DATASTORE_MAD block of FILE.
arguments_of() {
    awk -v b="$1" '
        $0 ~ "^" b "[ \t]*=[ \t]*\\[" { inb = 1 }
        inb && /ARGUMENTS/ { sub(/^[^"]*"/, ""); sub(/".*$/, ""); print; exit }' "$2"
}

# The words after FLAG in an ARGUMENTS string, split at commas.
list_of() { # FLAG ARGS
    local a
    read -r -a a <<<"$2"
    local i
    for ((i = 0; i < ${#a[@]} - 1; i++)); do
        if [ "${a[i]}" = "$1" ]; then
            tr ',' '\n' <<<"${a[i + 1]}"
            return 0
        fi
    done
    return 1
}

count_of() { # WORD (stdin: one word a line)
    grep -cx -- "$1" || true
}

check_applied() {
    local oned=$1 vmm=$2 tm ds
    tm=$(arguments_of TM_MAD "$oned")
    ds=$(arguments_of DATASTORE_MAD "$oned")
    test "$(list_of -d "$tm" | count_of qcow2c)" = 1
    test "$(list_of -d "$ds" | count_of qcow2c)" = 1
    test "$(list_of -s "$ds" | count_of qcow2c)" = 1
    # qcow2c is appended; the stock lists are otherwise untouched.
    test "$tm" = "$(arguments_of TM_MAD "$STOCK_ONED" | sed 's/\(-d [^ ]*\)/\1,qcow2c/')"
    test "$ds" = "$(arguments_of DATASTORE_MAD "$STOCK_ONED" | sed 's/\(-[ds] [^ ]*\)/\1,qcow2c/g')"
    test "$(grep -c '^#---- qcow2c BEGIN' "$oned")" = 1
    test "$(grep -cx '#---- qcow2c END' "$oned")" = 1
    # Between the markers: the snippet, as shipped.
    sed -n '/^#---- qcow2c BEGIN/,/^#---- qcow2c END$/p' "$oned" | sed '1d;$d' >"$TEST_DIR/block"
    cmp "$SRC/oned-conf/oned.conf.snippet" "$TEST_DIR/block"
    # Only the two ARGUMENTS lines of the stock file changed.
    test "$(diff "$STOCK_ONED" "$oned" | grep -c '^<')" = 2
    local live
    live=$(sed -n 's/^LIVE_DISK_SNAPSHOTS="\(.*\)"$/\1/p' "$vmm")
    test "$live" = "$(sed -n 's/^LIVE_DISK_SNAPSHOTS="\(.*\)"$/\1/p' "$STOCK_VMM") kvm-qcow2c qemu-qcow2c"
    test "$(diff "$STOCK_VMM" "$vmm" | grep -c '^<')" = 1
}

case_apply_conf() {
    fresh
    local etc=$DEST$ONE/etc
    mkdir -p "$etc/vmm_exec"
    cp "$STOCK_ONED" "$etc/oned.conf"
    cp "$STOCK_VMM" "$etc/vmm_exec/vmm_execrc"
    chmod 640 "$etc/oned.conf" "$etc/vmm_exec/vmm_execrc"
    inst --apply-conf
    check_applied "$etc/oned.conf" "$etc/vmm_exec/vmm_execrc"
    test -x "$R/tm/qcow2c/qcow2c-tm" # it installed too
    refute_grep '^#==== add to' "$LAST_STDOUT" # no snippets to add by hand
    test "$(stat -c %a "$etc/oned.conf")" = 640
    local b
    b=$(find "$etc" -name 'oned.conf.qcow2c-*' -print)
    test "$(echo "$b" | wc -l)" = 1
    cmp "$STOCK_ONED" "$b"
    test "$(stat -c %a "$b")" = 640
    b=$(find "$etc/vmm_exec" -name 'vmm_execrc.qcow2c-*' -print)
    test "$(echo "$b" | wc -l)" = 1
    cmp "$STOCK_VMM" "$b"
    test -z "$(find "$etc" -name '*-tmp.*' -print)"
    # Twice: nothing changes, no second backup.
    cp "$etc/oned.conf" "$TEST_DIR/oned.once"
    cp "$etc/vmm_exec/vmm_execrc" "$TEST_DIR/vmm.once"
    inst --apply-conf
    cmp "$TEST_DIR/oned.once" "$etc/oned.conf"
    cmp "$TEST_DIR/vmm.once" "$etc/vmm_exec/vmm_execrc"
    test "$(find "$etc" -name '*.qcow2c-*' | wc -l)" = 2
    grep -q 'unchanged (nothing to do)' "$LAST_STDOUT"
    # --uninstall --apply-conf gives the stock files back, byte for byte.
    expect_success env DESTDIR="$DEST" ONE_LOCATION="$ONE" "$SRC/install.sh" --uninstall --apply-conf
    cmp "$STOCK_ONED" "$etc/oned.conf"
    cmp "$STOCK_VMM" "$etc/vmm_exec/vmm_execrc"
    test ! -e "$R/tm/qcow2c"
}

case_apply_conf_named_files() {
    fresh
    local T=$TEST_DIR/named
    mkdir "$T"
    cp "$STOCK_ONED" "$T/my-oned.conf"
    cp "$STOCK_VMM" "$T/my-vmm_execrc"
    # A link is followed: the file it names is edited, the link stays.
    ln -sf my-oned.conf "$T/oned-link.conf"
    inst --apply-conf "$T/oned-link.conf" "$T/my-vmm_execrc"
    test -L "$T/oned-link.conf"
    check_applied "$T/my-oned.conf" "$T/my-vmm_execrc"
}

case_apply_conf_refuses() {
    fresh
    local T=$TEST_DIR/refuse
    mkdir "$T"
    cp "$STOCK_VMM" "$T/vmm_execrc"
    # Not an oned.conf at all.
    printf 'LOG = [ SYSTEM = "file" ]\n' >"$T/not-oned.conf"
    cp "$T/not-oned.conf" "$T/not-oned.orig"
    inst_fails --apply-conf "$T/not-oned.conf" "$T/vmm_execrc"
    expect_stderr_line --match "does not look like oned.conf.*nothing was changed"
    one_plain_line "$LAST_STDERR" >/dev/null
    cmp "$T/not-oned.orig" "$T/not-oned.conf"
    cmp "$STOCK_VMM" "$T/vmm_execrc"
    test -z "$(find "$T" -maxdepth 1 -name '*.qcow2c-*' -print)"
    test ! -e "$DEST" # refused before installing anything
    # A qcow2c block written by hand, outside the markers.
    cp "$STOCK_ONED" "$T/hand.conf"
    printf 'TM_MAD_CONF = [\n    NAME = "qcow2c", LN_TARGET = "NONE", CLONE_TARGET = "SYSTEM", SHARED = "YES"\n]\n' \
        >>"$T/hand.conf"
    cp "$T/hand.conf" "$T/hand.orig"
    inst_fails --apply-conf "$T/hand.conf" "$T/vmm_execrc"
    expect_stderr_line --match 'already has a TM_MAD_CONF or DS_MAD_CONF named "qcow2c"'
    cmp "$T/hand.orig" "$T/hand.conf"
    # A vmm_execrc without LIVE_DISK_SNAPSHOTS: oned.conf is left alone too.
    cp "$STOCK_ONED" "$T/oned.conf"
    grep -v '^LIVE_DISK_SNAPSHOTS=' "$STOCK_VMM" >"$T/vmm_execrc"
    inst_fails --apply-conf "$T/oned.conf" "$T/vmm_execrc"
    expect_stderr_line --match "0 LIVE_DISK_SNAPSHOTS lines"
    cmp "$STOCK_ONED" "$T/oned.conf"
    # A file that does not exist.
    inst_fails --apply-conf "$T/nowhere.conf" "$T/vmm_execrc"
    expect_stderr_line --match "nowhere.conf does not exist"
    # No backup and no temporary file was left by any refusal.
    test -z "$(find "$T" -name '*.qcow2c-*' -print)"
}

case_conf_generated() {
    # oned-conf/qcow2c.conf is `make conf`'s output for today's table.
    expect_success env QCOW2C_CONF="$TEST_DIR/no-such-file" "$BUILD/bin/qcow2c-tm" --config
    sed 1d "$LAST_STDOUT" >"$TEST_DIR/generated.conf"
    if ! cmp -s "$TEST_DIR/generated.conf" "$SRC/oned-conf/qcow2c.conf"; then
        echo "oned-conf/qcow2c.conf is out of date with common/config.c: run make conf"
        diff -u "$SRC/oned-conf/qcow2c.conf" "$TEST_DIR/generated.conf" | head -n 40
        return 1
    fi
}

test_case "install lays out one link per --list name" case_layout
test_case "a second install changes nothing" case_rerun
test_case "--uninstall removes everything it made" case_uninstall_empty
test_case "--uninstall leaves what was there before" case_uninstall_keeps_others
test_case "a modified qcow2c.conf is kept" case_conf_kept
test_case "links follow --list; stale ones go, foreign ones stay" case_links_follow_list
test_case "bad action names and foreign files are refused" case_bad_names
test_case "onesnap goes to PREFIX/bin" case_onesnap
test_case "-h, bad options, --print-conf" case_usage
test_case "--apply-conf registers once, backs up, and undoes" case_apply_conf
test_case "--apply-conf on files named on the command line" case_apply_conf_named_files
test_case "--apply-conf refuses unexpected files" case_apply_conf_refuses
test_case "oned-conf/qcow2c.conf is up to date" case_conf_generated
