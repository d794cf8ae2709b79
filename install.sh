#!/bin/bash
# install.sh - install the qcow2c driver into an OpenNebula front-end.
# Run `install.sh -h` for the options; oned-conf/README.md says what to do
# after it.
set -euo pipefail

prog=install.sh
driver=qcow2c
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
confdir=$here/oned-conf

usage() {
    cat <<EOF
usage: $prog [--build DIR] [--owner USER:GROUP] [--apply-conf [ONED_CONF [VMM_EXECRC]]]
       $prog --uninstall [--apply-conf [ONED_CONF [VMM_EXECRC]]]
       $prog --print-conf

Installs the qcow2c driver into OpenNebula's remotes:
  REMOTES/tm/$driver/qcow2c-tm         the TM program, and one link to it per
                                      line of \`qcow2c-tm --list\` (clone -> qcow2c-tm)
  REMOTES/datastore/$driver/qcow2c-ds  the DS program, and one link to it per
                                      line of \`qcow2c-ds --list\`
  REMOTES/etc/$driver/qcow2c.conf      the settings; an existing one is never
                                      replaced: the new one goes to qcow2c.conf.new
  PREFIX/bin/onesnap                  when the build has it
REMOTES is \$DESTDIR\$ONE_LOCATION/var/remotes when ONE_LOCATION is set, else
\$DESTDIR/var/lib/one/remotes; PREFIX is \$DESTDIR plus \$PREFIX, or \$ONE_LOCATION,
or /usr. Running it again brings the tree up to date and changes nothing else.

  --build DIR      where the built programs are (DIR/bin; default: build)
  --owner U:G      owner of the installed remotes (default: oneadmin:oneadmin
                   when run as root and that user exists, else unchanged)
  --apply-conf     also edit oned.conf and vmm_execrc (default
                   /etc/one/oned.conf and /etc/one/vmm_exec/vmm_execrc, or
                   under \$ONE_LOCATION/etc), keeping a timestamped backup of
                   each file changed; with --uninstall, take the edits out
  --print-conf     print the oned.conf and vmm_execrc snippets and exit
  --uninstall      remove what install made; a qcow2c.conf that differs from
                   the shipped one is kept
  -h, --help       this text
EOF
}

die() {
    echo "$prog: $*" >&2
    exit 1
}

usage_error() {
    echo "$prog: $*" >&2
    echo "Try '$prog -h'." >&2
    exit 2
}

note() {
    echo "  $*"
}

# One line of the report: what, and what happened to it.
item() {
    printf '  %-36s %s\n' "$1" "$2"
}

# ---------------------------------------------------------------- arguments

build=$here/build
mode=install
apply_conf=0
oned_conf=
vmm_execrc=
owner=
owner_given=0

while [ $# -gt 0 ]; do
    case $1 in
        --build)
            [ $# -ge 2 ] || usage_error "--build needs a directory"
            build=$2
            shift 2
            ;;
        --build=*)
            build=${1#*=}
            shift
            ;;
        --owner)
            [ $# -ge 2 ] || usage_error "--owner needs USER:GROUP"
            owner=$2
            owner_given=1
            shift 2
            ;;
        --owner=*)
            owner=${1#*=}
            owner_given=1
            shift
            ;;
        --uninstall)
            mode=uninstall
            shift
            ;;
        --print-conf)
            mode=print-conf
            shift
            ;;
        --apply-conf)
            apply_conf=1
            shift
            # Up to two optional file names follow; an option ends them.
            if [ $# -gt 0 ] && [[ $1 != -* ]]; then
                oned_conf=$1
                shift
                if [ $# -gt 0 ] && [[ $1 != -* ]]; then
                    vmm_execrc=$1
                    shift
                fi
            fi
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage_error "unknown argument '$1'"
            ;;
    esac
done

if [ "$mode" = print-conf ] && { [ "$apply_conf" = 1 ] || [ "$owner_given" = 1 ]; }; then
    usage_error "--print-conf takes no other option"
fi

# ---------------------------------------------------------------- locations

destdir=${DESTDIR:-}
destdir=${destdir%/}
if [ -n "${ONE_LOCATION:-}" ]; then
    [[ $ONE_LOCATION == /* ]] || die "ONE_LOCATION must be an absolute path, not '$ONE_LOCATION'"
    one_location=${ONE_LOCATION%/}
    remotes=$one_location/var/remotes
    etc_one=$one_location/etc
    prefix=${PREFIX:-$one_location}
else
    remotes=/var/lib/one/remotes
    etc_one=/etc/one
    prefix=${PREFIX:-/usr}
fi
[[ $prefix == /* ]] || die "PREFIX must be an absolute path, not '$prefix'"
prefix=${prefix%/}

R=$destdir$remotes
tm_dir=$R/tm/$driver
ds_dir=$R/datastore/$driver
etc_dir=$R/etc/$driver
bin_dir=$destdir$prefix/bin
conf=$etc_dir/qcow2c.conf
shipped_conf=$confdir/qcow2c.conf
# What this script created besides the driver's own files, so that
# --uninstall removes exactly that: directories it had to make (a fresh
# ONE_LOCATION) and onesnap, whose place depends on PREFIX. Paths are stored
# without DESTDIR.
manifest=$etc_dir/install.manifest

[ -n "$oned_conf" ] || oned_conf=$destdir$etc_one/oned.conf
[ -n "$vmm_execrc" ] || vmm_execrc=$destdir$etc_one/vmm_exec/vmm_execrc

# Files removed when the script stops half-way (temporaries beside their
# final names).
temps=()
cleanup() {
    local t
    for t in "${temps[@]}"; do
        rm -f -- "$t"
    done
}
trap cleanup EXIT

# ---------------------------------------------------------------- snippets

print_conf() {
    local f
    for f in oned.conf.snippet vmm_execrc.snippet; do
        [ -r "$confdir/$f" ] || die "$confdir/$f is missing"
    done
    echo "#==== add to $etc_one/oned.conf ($confdir/oned.conf.snippet)"
    cat "$confdir/oned.conf.snippet"
    echo
    echo "#==== add to $etc_one/vmm_exec/vmm_execrc ($confdir/vmm_execrc.snippet)"
    cat "$confdir/vmm_execrc.snippet"
}

if [ "$mode" = print-conf ]; then
    print_conf
    exit 0
fi

# ---------------------------------------------------------------- ownership

if [ "$owner_given" = 1 ]; then
    [[ $owner =~ ^[^:]+:[^:]+$ ]] || usage_error "--owner wants USER:GROUP, not '$owner'"
    id -u "${owner%%:*}" >/dev/null 2>&1 || die "--owner: no user '${owner%%:*}'"
    getent group "${owner#*:}" >/dev/null 2>&1 || die "--owner: no group '${owner#*:}'"
    if [ "$(id -u)" != 0 ] && [ "${owner%%:*}" != "$(id -un)" ]; then
        die "--owner ${owner%%:*}: only root can give files to another user"
    fi
elif [ "$(id -u)" = 0 ] && id -u oneadmin >/dev/null 2>&1 && getent group oneadmin >/dev/null 2>&1; then
    # oned and `onehost sync` run as oneadmin and own the stock remotes.
    owner=oneadmin:oneadmin
fi

# Gives a path the chosen owner (not following links), when one was chosen
# and it differs, so that a re-run does not even touch the inode.
own() {
    local p
    [ -n "$owner" ] || return 0
    for p in "$@"; do
        if [ "$(stat -c %U:%G -- "$p")" != "$owner" ]; then
            chown -h -- "$owner" "$p"
        fi
    done
}

# ---------------------------------------------------------------- manifest

declare -A made_dirs=()
declare -A made_files=()

# Reads the manifest of an earlier run; entries whose path no longer exists
# are dropped.
read_manifest() {
    local kind path
    [ -f "$manifest" ] || return 0
    while read -r kind path; do
        if [ "$kind" = dir ] && [ -d "$destdir$path" ]; then
            made_dirs[$path]=1
        elif [ "$kind" = file ] && [ -e "$destdir$path" ]; then
            made_files[$path]=1
        fi
    done <"$manifest"
}

write_manifest() {
    local tmp p content
    content=$(
        echo "# Written by qcow2c's install.sh: what --uninstall removes besides the"
        echo "# driver's own files (paths without DESTDIR). Do not edit."
        for p in "${!made_dirs[@]}"; do
            echo "dir $p"
        done | LC_ALL=C sort
        for p in "${!made_files[@]}"; do
            echo "file $p"
        done | LC_ALL=C sort
    )
    # Compared before anything is written: even a temporary file created and
    # removed would change the directory's time, and a re-run must not.
    if [ -f "$manifest" ] && [ "$(cat "$manifest")" = "$content" ]; then
        return 0
    fi
    tmp=$(mktemp "$etc_dir/.install.manifest.XXXXXX")
    temps+=("$tmp")
    printf '%s\n' "$content" >"$tmp"
    chmod 644 "$tmp"
    own "$tmp"
    mv -fT -- "$tmp" "$manifest"
}

# mkdir -p that remembers the directories it made. $2 = "own": give the made
# directories the owner (remotes), not for PREFIX/bin.
make_dir() {
    local dir=$1 how=${2:-} d
    local -a missing=()
    # DESTDIR itself is the caller's; it is made but not recorded.
    if [ -n "$destdir" ]; then
        mkdir -p -- "$destdir"
    fi
    d=$dir
    while [ ! -d "$d" ]; do
        [ ! -e "$d" ] || die "$d exists and is not a directory"
        missing=("$d" "${missing[@]}")
        d=$(dirname "$d")
    done
    for d in "${missing[@]}"; do
        mkdir -m 755 -- "$d"
        made_dirs[${d#"$destdir"}]=1
        # Only the remotes belong to oneadmin, not a parent of ONE_LOCATION.
        if [ "$how" = own ] && [[ $d == "$R" || $d == "$R"/* ]]; then
            own "$d"
        fi
    done
}

# ---------------------------------------------------------------- install

# Installs a program under its final name without ever leaving a partial
# file there: copy beside it, then rename over it. An identical file is left
# alone, so a re-run changes nothing. Sets `result`. (Called as a plain
# command: inside an `if` condition set -e would not stop a failed cp.)
install_program() {
    local src=$1 dst=$2 how=${3:-} tmp
    [ ! -d "$dst" ] || die "$dst is a directory"
    if [ -f "$dst" ] && [ ! -L "$dst" ] && cmp -s "$src" "$dst" &&
        [ "$(stat -c %a "$dst")" = 755 ]; then
        [ "$how" != own ] || own "$dst"
        result=unchanged
        return 0
    fi
    tmp=$(mktemp "$(dirname "$dst")/.$(basename "$dst").XXXXXX")
    temps+=("$tmp")
    cp -- "$src" "$tmp"
    chmod 755 "$tmp"
    [ "$how" != own ] || own "$tmp"
    mv -fT -- "$tmp" "$dst"
    result=installed
}

# Prints the action names of a program, one a line, checking each: a name
# becomes a file name next to the program.
action_names() {
    local program=$1 out name
    out=$("$program" --list) || die "'$program --list' failed"
    while IFS= read -r name; do
        [ -n "$name" ] || continue
        if ! [[ $name =~ ^[A-Za-z0-9_][A-Za-z0-9_.+-]*$ ]] || [ "$name" = "$(basename "$program")" ]; then
            die "'$program --list' printed '$name', which cannot be an action name"
        fi
        echo "$name"
    done <<<"$out"
}

# Makes DIR/NAME -> TARGET for every name, replaces other symbolic links of
# those names, and removes the links to TARGET whose action is gone. Other
# files in DIR are the admin's and are left alone.
sync_links() {
    local dir=$1 target=$2
    shift 2
    local -A want=()
    local name link tmp added=0 removed=0
    for name in "$@"; do
        want[$name]=1
        link=$dir/$name
        if [ -L "$link" ]; then
            [ "$(readlink -- "$link")" != "$target" ] || { own "$link"; continue; }
        elif [ -e "$link" ]; then
            die "$link exists and is not a symbolic link; move it away to install the '$name' action"
        fi
        # A link is renamed into place like the programs, so that oned never
        # finds the name missing during a re-install.
        tmp=$dir/.$name.link.$$
        rm -f -- "$tmp"
        temps+=("$tmp")
        ln -s -- "$target" "$tmp"
        own "$tmp"
        mv -fT -- "$tmp" "$link"
        added=$((added + 1))
    done
    for link in "$dir"/* "$dir"/.[!.]*; do
        [ -L "$link" ] || continue
        name=$(basename "$link")
        [ -z "${want[$name]:-}" ] || continue
        if [ "$(readlink -- "$link")" = "$target" ]; then
            rm -f -- "$link"
            removed=$((removed + 1))
        fi
    done
    item "${dir#"$R"/}/" "$# action links$(
        [ "$added" = 0 ] || printf ', %d new' "$added")$(
        [ "$removed" = 0 ] || printf ', %d removed (no longer in --list)' "$removed")"
}

# Refuses, before anything is installed, a name in DIR that is taken by
# something other than a symbolic link.
check_link_slots() {
    local dir=$1 name
    shift
    for name in "$@"; do
        if [ -e "$dir/$name" ] && [ ! -L "$dir/$name" ]; then
            die "$dir/$name exists and is not a symbolic link; move it away to install the '$name' action"
        fi
    done
}

install_conf() {
    local tmp
    if [ ! -e "$conf" ]; then
        tmp=$(mktemp "$etc_dir/.qcow2c.conf.XXXXXX")
        temps+=("$tmp")
        cp -- "$shipped_conf" "$tmp"
        chmod 644 "$tmp"
        own "$tmp"
        mv -fT -- "$tmp" "$conf"
        item "etc/$driver/qcow2c.conf" "installed (every setting at its default)"
    elif cmp -s "$shipped_conf" "$conf"; then
        own "$conf"
        item "etc/$driver/qcow2c.conf" unchanged
    else
        # The admin's settings win, always; the shipped file is put beside it
        # to compare with (new settings, changed comments).
        if [ ! -e "$conf.new" ] || ! cmp -s "$shipped_conf" "$conf.new"; then
            tmp=$(mktemp "$etc_dir/.qcow2c.conf.new.XXXXXX")
            temps+=("$tmp")
            cp -- "$shipped_conf" "$tmp"
            chmod 644 "$tmp"
            own "$tmp"
            mv -fT -- "$tmp" "$conf.new"
        fi
        item "etc/$driver/qcow2c.conf" "KEPT: yours differs from the shipped one,"
        item "" "which is in etc/$driver/qcow2c.conf.new"
    fi
}

do_install() {
    local tm_prog=$build/bin/qcow2c-tm ds_prog=$build/bin/qcow2c-ds
    local -a tm_names=() ds_names=()
    local p out result

    for p in "$tm_prog" "$ds_prog"; do
        if ! [ -f "$p" ] || ! [ -x "$p" ]; then
            die "$p not found: run make first (or give --build DIR)"
        fi
    done
    [ -r "$shipped_conf" ] || die "$shipped_conf is missing (make conf makes it)"
    # Everything that can refuse is checked before the tree is touched.
    out=$(action_names "$tm_prog")
    [ -z "$out" ] || mapfile -t tm_names <<<"$out"
    out=$(action_names "$ds_prog")
    [ -z "$out" ] || mapfile -t ds_names <<<"$out"
    check_link_slots "$tm_dir" "${tm_names[@]}"
    check_link_slots "$ds_dir" "${ds_names[@]}"
    if [ "$apply_conf" = 1 ]; then
        check_conf_files add
    fi

    read_manifest
    make_dir "$tm_dir" own
    make_dir "$ds_dir" own
    make_dir "$etc_dir" own
    own "$tm_dir" "$ds_dir" "$etc_dir"

    echo "$prog: installing $driver into $R${destdir:+ (DESTDIR=$destdir)}"
    install_program "$tm_prog" "$tm_dir/qcow2c-tm" own
    item "tm/$driver/qcow2c-tm" "$result"
    sync_links "$tm_dir" qcow2c-tm "${tm_names[@]}"
    install_program "$ds_prog" "$ds_dir/qcow2c-ds" own
    item "datastore/$driver/qcow2c-ds" "$result"
    sync_links "$ds_dir" qcow2c-ds "${ds_names[@]}"
    install_conf

    if [ -f "$build/bin/onesnap" ]; then
        make_dir "$bin_dir"
        install_program "$build/bin/onesnap" "$bin_dir/onesnap"
        made_files[$prefix/bin/onesnap]=1
        item "$bin_dir/onesnap" "$result"
    fi
    write_manifest
}

# ---------------------------------------------------------------- uninstall

# Removes the links to TARGET in DIR, then TARGET itself.
remove_program_dir() {
    local dir=$1 target=$2 link n=0
    [ -d "$dir" ] || return 0
    for link in "$dir"/* "$dir"/.[!.]*; do
        if [ -L "$link" ] && [ "$(readlink -- "$link")" = "$target" ]; then
            rm -f -- "$link"
            n=$((n + 1))
        fi
    done
    rm -f -- "$dir/$target"
    item "${dir#"$R"/}/$target" "removed, with $n action links"
}

do_uninstall() {
    local p d
    local -a dirs

    read_manifest
    echo "$prog: removing $driver from $R${destdir:+ (DESTDIR=$destdir)}"
    remove_program_dir "$tm_dir" qcow2c-tm
    remove_program_dir "$ds_dir" qcow2c-ds
    if [ -e "$conf" ]; then
        if [ -r "$shipped_conf" ] && cmp -s "$shipped_conf" "$conf"; then
            rm -f -- "$conf"
            item "etc/$driver/qcow2c.conf" removed
        else
            item "etc/$driver/qcow2c.conf" "KEPT: it differs from the shipped one (your settings)"
        fi
    fi
    if [ -e "$conf.new" ] && [ -r "$shipped_conf" ] && cmp -s "$shipped_conf" "$conf.new"; then
        rm -f -- "$conf.new"
    fi
    for p in "${!made_files[@]}"; do
        rm -f -- "$destdir$p"
        item "$destdir$p" removed
    done
    rm -f -- "$manifest"
    # The driver's own directories, then the ones an earlier install made,
    # deepest first; a directory that still holds something stays.
    mapfile -t dirs < <(
        printf '%s\n' "$tm_dir" "$ds_dir" "$etc_dir"
        for d in "${!made_dirs[@]}"; do
            echo "$destdir$d"
        done | awk '{ print length($0) " " $0 }' | LC_ALL=C sort -rn | cut -d' ' -f2-
    )
    for d in "${dirs[@]}"; do
        [ -d "$d" ] || continue
        if ! rmdir -- "$d" 2>/dev/null; then
            item "$d" "kept: not empty"
        fi
    done
}

# ---------------------------------------------------------------- oned.conf

begin_marker="#---- $driver BEGIN (added by qcow2c's install.sh --apply-conf; remove through the END line to undo)"
begin_re="^#---- $driver BEGIN"
end_marker="#---- $driver END"
live_marker="# $driver: the $driver names below were added by qcow2c's install.sh --apply-conf"

# The configuration files are not as expected: say why and stop. They are
# all checked before anything is written, so nothing has changed yet.
refuse() {
    die "$*; nothing was changed"
}

# Sets `list_out` to the comma-separated LIST with NAME added (add) or
# removed (remove). Appending ",NAME" and taking it out again gives back the
# list as it was.
edit_list() {
    local how=$1 list=$2 name=$3 padded=",$2,"
    if [ "$how" = add ]; then
        list_out=$list
        [[ $padded == *",$name,"* ]] || list_out=$list,$name
    else
        while [[ $padded == *",$name,"* ]]; do
            padded=${padded/",$name,"/,}
        done
        padded=${padded#,}
        list_out=${padded%,}
    fi
}

# Sets `args_out` to the driver ARGUMENTS string ARGS with NAME added to or
# removed from the list after FLAG. DEFAULT is the list that a missing FLAG
# stands for; empty means "every driver", where nothing needs adding.
edit_args() {
    local how=$1 args=$2 flag=$3 name=$4 default=$5 what=$6
    local re="(^|[[:space:]])(${flag}[[:space:]]+)([^[:space:]]+)"
    args_out=$args
    if [[ $args =~ $re ]]; then
        edit_list "$how" "${BASH_REMATCH[3]}" "$name"
        if [ "$list_out" != "${BASH_REMATCH[3]}" ]; then
            [ -n "$list_out" ] || refuse "$what $flag would be left empty; edit it by hand"
            args_out=${args/"${BASH_REMATCH[0]}"/"${BASH_REMATCH[1]}${BASH_REMATCH[2]}$list_out"}
            if [ "$how" = add ]; then
                conf_changes+=("$what $flag: added $name")
            else
                conf_changes+=("$what $flag: removed $name")
            fi
        fi
    elif [ "$how" = add ] && [ -n "$default" ]; then
        args_out="$args $flag $default,$name"
        conf_changes+=("$what: added $flag $default,$name")
    fi
}

# Sets `line_out` to the ARGUMENTS line LINE of the TM_MAD or DATASTORE_MAD
# block with the driver added or removed.
edit_arguments_line() {
    local how=$1 block=$2 line=$3 file=$4
    local re='^(.*ARGUMENTS[[:space:]]*=[[:space:]]*")([^"]*)(".*)$'
    local head args tail
    [[ $line =~ $re ]] || refuse "$file: cannot read the ARGUMENTS of $block (ARGUMENTS = \"...\" on one line expected)"
    head=${BASH_REMATCH[1]} args=${BASH_REMATCH[2]} tail=${BASH_REMATCH[3]}
    if [[ $args =~ (^|[[:space:]])--(tm-types|ds-types|system-ds-types) ]]; then
        refuse "$file: the ARGUMENTS of $block use long options; add $driver by hand"
    fi
    if [[ $args =~ (^|[[:space:]])-d[[:space:]].*[[:space:]]-d[[:space:]] ]] ||
        [[ $args =~ (^|[[:space:]])-s[[:space:]].*[[:space:]]-s[[:space:]] ]]; then
        refuse "$file: the ARGUMENTS of $block give a flag twice; edit them by hand"
    fi
    # -d: the drivers one_tm / one_datastore run; none means all of them.
    edit_args "$how" "$args" -d "$driver" "" "$block"
    if [ "$block" = DATASTORE_MAD ]; then
        # -s: the TMs whose shared system datastores are monitored; none
        # means one_datastore's built-in shared,ssh,ceph, which must stay.
        args=$args_out
        edit_args "$how" "$args" -s "$driver" "shared,ssh,ceph" "$block"
    fi
    line_out=$head$args_out$tail
}

# Writes to OUT the oned.conf IN with the qcow2c registration added (add) or
# taken out (remove): the driver in the TM_MAD -d and DATASTORE_MAD -d and -s
# lists, and the snippet's blocks between marker lines (where an earlier run
# put them, else at the end). Refuses a file that is not as expected.
edit_oned_conf() {
    local how=$1 in=$2 out=$3
    local -a lines result=() snippet
    local line block="" in_marker=0 marker_at=-1 has_block=0 foreign=0
    local tm_n=0 ds_n=0 tm_args=0 ds_args=0
    mapfile -t lines <"$in"
    # Removing touches the lists only when our block shows we edited them.
    if grep -q -- "$begin_re" "$in"; then
        has_block=1
    fi
    for line in "${lines[@]}"; do
        if [ "$in_marker" = 1 ]; then
            if [ "$line" = "$end_marker" ]; then
                in_marker=0
            elif [[ $line =~ $begin_re ]]; then
                refuse "$in: the $driver block has no '$end_marker' line"
            fi
            continue
        fi
        if [[ $line =~ $begin_re ]]; then
            [ "$marker_at" -lt 0 ] || refuse "$in has two $driver blocks; delete one"
            in_marker=1
            marker_at=${#result[@]}
            continue
        fi
        [ "$line" != "$end_marker" ] || refuse "$in: '$end_marker' without its BEGIN line"
        if [[ $line =~ ^[[:space:]]*# ]]; then
            result+=("$line")
            continue
        fi
        if [ -z "$block" ] &&
            [[ $line =~ ^[[:space:]]*(TM_MAD|DATASTORE_MAD|TM_MAD_CONF|DS_MAD_CONF)[[:space:]]*=[[:space:]]*\[ ]]; then
            block=${BASH_REMATCH[1]}
            [ "$block" != TM_MAD ] || tm_n=$((tm_n + 1))
            [ "$block" != DATASTORE_MAD ] || ds_n=$((ds_n + 1))
        fi
        case $block in
            TM_MAD | DATASTORE_MAD)
                if [[ $line =~ ARGUMENTS[[:space:]]*= ]]; then
                    if [ "$how" = add ] || [ "$has_block" = 1 ]; then
                        edit_arguments_line "$how" "$block" "$line" "$in"
                        line=$line_out
                    fi
                    [ "$block" != TM_MAD ] || tm_args=$((tm_args + 1))
                    [ "$block" != DATASTORE_MAD ] || ds_args=$((ds_args + 1))
                fi
                ;;
            TM_MAD_CONF | DS_MAD_CONF)
                if [[ $line =~ (^|[^A-Za-z_])[Nn][Aa][Mm][Ee][[:space:]]*=[[:space:]]*\"$driver\" ]]; then
                    foreign=1
                fi
                ;;
        esac
        if [ -n "$block" ] && [[ $line == *"]"* ]]; then
            block=""
        fi
        result+=("$line")
    done
    [ "$in_marker" = 0 ] || refuse "$in: the $driver block has no '$end_marker' line"
    if [ "$tm_n" != 1 ] || [ "$ds_n" != 1 ]; then
        refuse "$in does not look like oned.conf: it has $tm_n TM_MAD and $ds_n DATASTORE_MAD blocks, one of each expected"
    fi
    if [ "$tm_args" != 1 ] || [ "$ds_args" != 1 ]; then
        refuse "$in: the TM_MAD and DATASTORE_MAD blocks need one ARGUMENTS line each"
    fi
    if [ "$foreign" = 1 ] && [ "$how" = add ]; then
        refuse "$in already has a TM_MAD_CONF or DS_MAD_CONF named \"$driver\" outside the '#---- $driver' markers: remove it, or keep yours and edit the lists by hand"
    fi
    if [ "$how" = add ]; then
        mapfile -t snippet <"$confdir/oned.conf.snippet"
        [ "$marker_at" -ge 0 ] || marker_at=${#result[@]}
        [ "$has_block" = 1 ] || conf_changes+=("added the TM_MAD_CONF and DS_MAD_CONF blocks")
        result=("${result[@]:0:marker_at}" "$begin_marker" "${snippet[@]}" "$end_marker"
            "${result[@]:marker_at}")
    elif [ "$has_block" = 1 ]; then
        conf_changes+=("removed the TM_MAD_CONF and DS_MAD_CONF blocks")
    fi
    printf '%s\n' "${result[@]}" >"$out"
}

# The names the vmm_execrc snippet adds to LIVE_DISK_SNAPSHOTS: those that
# end in -qcow2c, so that the snippet stays the only list of them.
live_names() {
    local line w
    line=$(grep -m1 '^LIVE_DISK_SNAPSHOTS=' "$confdir/vmm_execrc.snippet") ||
        die "no LIVE_DISK_SNAPSHOTS line in $confdir/vmm_execrc.snippet"
    line=${line#*=}
    for w in ${line//\"/}; do
        [[ $w != *-"$driver" ]] || echo "$w"
    done
}

# Writes to OUT the vmm_execrc IN with the names added to (add) or taken out
# of (remove) LIVE_DISK_SNAPSHOTS. A comment line above it marks that we
# added them; without it, remove leaves the file alone.
edit_vmm_execrc() {
    local how=$1 in=$2 out=$3
    local -a lines names
    local i n=0 at=-1 re head q value tail padded w marked=0 before=${#conf_changes[@]}
    re='^([[:space:]]*(export[[:space:]]+)?LIVE_DISK_SNAPSHOTS=)(["'"'"']?)([^"'"'"']*)(["'"'"']?)[[:space:]]*$'
    read -r -a names <<<"$live_list"
    mapfile -t lines <"$in"
    for i in "${!lines[@]}"; do
        if [[ ${lines[i]} =~ ^[[:space:]]*(export[[:space:]]+)?LIVE_DISK_SNAPSHOTS= ]]; then
            n=$((n + 1))
            at=$i
        fi
    done
    [ "$n" = 1 ] || refuse "$in has $n LIVE_DISK_SNAPSHOTS lines, one expected; add ${names[*]} by hand"
    if ! [[ ${lines[at]} =~ $re ]] || [ "${BASH_REMATCH[3]}" != "${BASH_REMATCH[5]}" ]; then
        refuse "$in: cannot read its LIVE_DISK_SNAPSHOTS line; add ${names[*]} by hand"
    fi
    head=${BASH_REMATCH[1]} q=${BASH_REMATCH[3]} value=${BASH_REMATCH[4]} tail=${BASH_REMATCH[5]}
    if [ "$at" -gt 0 ] && [ "${lines[at - 1]}" = "$live_marker" ]; then
        marked=1
    fi
    if [ "$how" = add ]; then
        for w in "${names[@]}"; do
            if [[ " $value " != *" $w "* ]]; then
                value=${value:+$value }$w
                conf_changes+=("LIVE_DISK_SNAPSHOTS: added $w")
            fi
        done
        if [ "${#conf_changes[@]}" != "$before" ]; then
            [ -n "$q" ] || { q='"'; tail='"'; }
            lines[at]=$head$q$value$tail
            if [ "$marked" = 0 ]; then
                lines=("${lines[@]:0:at}" "$live_marker" "${lines[@]:at}")
            fi
        fi
    elif [ "$marked" = 1 ]; then
        padded=" $value "
        for w in "${names[@]}"; do
            while [[ $padded == *" $w "* ]]; do
                padded=${padded/" $w "/ }
                conf_changes+=("LIVE_DISK_SNAPSHOTS: removed $w")
            done
        done
        padded=${padded# }
        value=${padded% }
        lines[at]=$head$q$value$tail
        unset 'lines[at - 1]'
    fi
    printf '%s\n' "${lines[@]}" >"$out"
}

# Checks both files and computes their new contents into temporaries beside
# them; nothing is written before both are known to be fine.
check_conf_files() {
    local how=$1 f real
    for f in "$oned_conf" "$vmm_execrc"; do
        [ -e "$f" ] || die "$f does not exist; name the files: --apply-conf ONED_CONF VMM_EXECRC"
        real=$(readlink -f -- "$f")
        [ -f "$real" ] || die "$f is not a regular file"
        if ! [ -r "$real" ] || ! [ -w "$real" ]; then
            die "$f: cannot read and write it (run as root?)"
        fi
        [ -w "$(dirname "$real")" ] || die "$(dirname "$real"): cannot write there (run as root?)"
    done
    live_list=$(live_names | tr '\n' ' ')
    # A link (/etc/one/oned.conf -> ...) is followed: the file it names is
    # edited, the link stays.
    real_oned=$(readlink -f -- "$oned_conf")
    real_vmm=$(readlink -f -- "$vmm_execrc")
    new_oned=$(mktemp "$real_oned.$driver-tmp.XXXXXX")
    temps+=("$new_oned")
    conf_changes=()
    edit_oned_conf "$how" "$real_oned" "$new_oned"
    changes_oned=("${conf_changes[@]}")
    new_vmm=$(mktemp "$real_vmm.$driver-tmp.XXXXXX")
    temps+=("$new_vmm")
    conf_changes=()
    edit_vmm_execrc "$how" "$real_vmm" "$new_vmm"
    changes_vmm=("${conf_changes[@]}")
}

# Replaces FILE by NEW when they differ: first a timestamped copy of FILE
# (mode and owner kept: oned.conf may hold the database password), then NEW
# renamed over it with FILE's mode and owner.
replace_conf_file() {
    local shown=$1 file=$2 new=$3 stamp backup i=1 c
    shift 3
    if cmp -s "$file" "$new"; then
        rm -f -- "$new"
        item "$shown" "unchanged (nothing to do)"
        return 0
    fi
    stamp=$(date +%Y%m%d-%H%M%S)
    backup=$file.$driver-$stamp
    while [ -e "$backup" ]; do
        backup=$file.$driver-$stamp.$i
        i=$((i + 1))
    done
    cp -p -- "$file" "$backup"
    chmod --reference="$file" -- "$new"
    if [ "$(id -u)" = 0 ]; then
        chown --reference="$file" -- "$new"
    fi
    mv -fT -- "$new" "$file"
    item "$shown" "changed; backup: $backup"
    for c in "$@"; do
        item "" "$c"
    done
}

write_conf_files() {
    local how=$1
    if [ "$how" = add ]; then
        echo "$prog: registering $driver in oned's configuration"
    else
        echo "$prog: taking $driver out of oned's configuration"
    fi
    replace_conf_file "$oned_conf" "$real_oned" "$new_oned" "${changes_oned[@]}"
    replace_conf_file "$vmm_execrc" "$real_vmm" "$new_vmm" "${changes_vmm[@]}"
}

# ---------------------------------------------------------------- main

if [ "$mode" = uninstall ]; then
    if [ "$apply_conf" = 1 ]; then
        check_conf_files remove
    fi
    do_uninstall
    if [ "$apply_conf" = 1 ]; then
        write_conf_files remove
        echo
        echo "Restart oned for the change to take effect."
    fi
    exit 0
fi

do_install
if [ "$apply_conf" = 1 ]; then
    write_conf_files add
    echo
    echo "Next: restart oned (systemctl restart opennebula), then create the datastores"
    echo "(see $confdir/README.md)."
else
    echo
    echo "Next: add these to oned's configuration (or re-run with --apply-conf), restart"
    echo "oned, and create the datastores (see $confdir/README.md):"
    echo
    print_conf
fi
