#!/bin/bash
# hosts.sh - hypervisor hosts for the TM tests: one private OpenSSH server
# per host on 127.0.0.1, each in its own mount namespace.
#
#   hosts.sh start DIR [--connect-timeout S] NAME[:PATH,PATH...]...
#       start one sshd per NAME on its own port. For every PATH (absolute)
#       the host sees DIR/hosts/NAME/PATH mounted on PATH: a directory given
#       as private (a system datastore of TM ssh) is a different directory on
#       each host and in the test process (the front-end), while everything
#       else (the image datastore, the test tree) is shared, as over NFS. The
#       name "frontend" is special: its sshd runs in the test's own mount
#       namespace (it is the front-end; private paths are refused for it).
#       Writes DIR/ssh_config (a Host block per NAME: its port, the generated
#       client key, ConnectTimeout S, default 5) and DIR/hosts/NAME/{port,pid,
#       mntns}. Fails when a host does not answer within 10 s.
#   hosts.sh stop DIR             stop every host (by its pid files)
#   hosts.sh pause DIR NAME       a hung host: SIGSTOP its sshd and everything
#                                 running there (the processes of its mount
#                                 namespace; for frontend, the sshd's process
#                                 tree). New ssh connections hang in the
#                                 banner exchange until ConnectTimeout.
#   hosts.sh resume DIR NAME      SIGCONT them
#   hosts.sh down DIR NAME        a host that is off: kill its sshd and all
#                                 its processes (connections are refused)
#   hosts.sh up DIR NAME          start it again on the same port
#   hosts.sh port DIR NAME        print its port
#
# Needs root (mount namespaces, as in CI), sshd, ssh, unshare, nsenter.
# Every wait is bounded.
set -euo pipefail

prog=hosts.sh

die() {
    echo "$prog: $*" >&2
    exit 1
}

usage() {
    sed -n '2,32s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

# --------------------------------------------------------------- helpers

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The first free port in [$1, $2).
free_port_from() { # FROM END
    local p
    for ((p = $1; p < $2; p++)); do
        if port_free "$p"; then
            echo "$p"
            return 0
        fi
    done
    die "no free port in $1-$(($2 - 1))"
}

host_dir() { # DIR NAME
    printf '%s/hosts/%s\n' "$1" "$2"
}

# The pids in mount namespace NS (an inode string like mnt:[4026532...]).
ns_pids() {
    local ns=$1 p link
    for p in /proc/[0-9]*; do
        link=$(readlink "$p/ns/mnt" 2>/dev/null) || continue
        [ "$link" = "$ns" ] && echo "${p#/proc/}"
    done
    return 0
}

# PID and its descendants.
tree_pids() {
    local todo=("$1") p kids=()
    while [ ${#todo[@]} -gt 0 ]; do
        p=${todo[0]}
        todo=("${todo[@]:1}")
        [ -d "/proc/$p" ] || continue
        echo "$p"
        read -r -a kids < <(cat "/proc/$p/task/"*/children 2>/dev/null) || true
        todo+=("${kids[@]}")
    done
    return 0
}

# The processes that make up host NAME: everything in its mount namespace,
# or, for the front-end, its sshd's tree.
host_pids() { # DIR NAME
    local hd pid
    hd=$(host_dir "$1" "$2")
    [ -f "$hd/pid" ] || return 0
    pid=$(cat "$hd/pid")
    if [ -s "$hd/mntns" ]; then
        ns_pids "$(cat "$hd/mntns")"
    else
        tree_pids "$pid"
    fi
}

alive() {
    kill -0 "$1" 2>/dev/null
}

# --------------------------------------------------------------- start

write_keys() { # DIR
    local dir=$1
    mkdir -p "$dir"
    chmod 700 "$dir"
    [ -f "$dir/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key" -C qcow2c-test-host
    [ -f "$dir/client_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/client_key" -C qcow2c-test
    cp "$dir/client_key.pub" "$dir/authorized_keys"
    chmod 600 "$dir/authorized_keys"
}

write_sshd_config() { # DIR NAME PORT
    local hd
    hd=$(host_dir "$1" "$2")
    cat >"$hd/sshd_config" <<EOF
# written by tests/lib/hosts.sh for host $2
Port $3
ListenAddress 127.0.0.1
HostKey $1/host_key
PidFile $hd/sshd.pid
AuthorizedKeysFile $1/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PrintMotd no
PrintLastLog no
AcceptEnv LANG LC_*
MaxStartups 200:30:400
MaxSessions 200
LogLevel ERROR
# Debian's bash reads ~/.bashrc when sshd starts it at shell level 1:
# the tests must not depend on (nor pay for) the profile of whoever runs
# them; a oneadmin account on a host has none.
SetEnv SHLVL=1
EOF
}

# Starts the sshd of host NAME (config and mounts already described in its
# directory); records its pid and mount namespace.
launch() { # DIR NAME
    local dir=$1 name=$2 hd sshd pid i path mounts=""
    hd=$(host_dir "$dir" "$name")
    sshd=$(command -v sshd || echo /usr/sbin/sshd)
    rm -f "$hd/pid" "$hd/mntns" "$hd/sshd.pid"
    if [ "$name" = frontend ]; then
        "$sshd" -D -f "$hd/sshd_config" -E "$hd/sshd.log" </dev/null >/dev/null 2>&1 &
        pid=$!
    else
        # In the new namespace: bind every private path, then become sshd.
        while IFS= read -r path; do
            [ -n "$path" ] || continue
            mounts+="mount --bind $(printf '%q' "$hd$path") $(printf '%q' "$path") && "
        done <"$hd/private"
        unshare -m --propagation private \
            bash -c "${mounts}exec $(printf '%q ' "$sshd" -D -f "$hd/sshd_config" -E "$hd/sshd.log")" \
            </dev/null >>"$hd/start.log" 2>&1 &
        pid=$!
    fi
    echo "$pid" >"$hd/pid"
    # Wait until it answers with our key (bounded: 10 s); an sshd that dies
    # at once lost its port to someone else.
    for ((i = 0; i < 100; i++)); do
        alive "$pid" || break
        if ssh -F /dev/null -p "$(cat "$hd/port")" -i "$dir/client_key" -o IdentitiesOnly=yes \
            -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
            -o BatchMode=yes -o ConnectTimeout=2 "$(id -un)@127.0.0.1" true 2>/dev/null; then
            if [ "$name" != frontend ]; then
                readlink "/proc/$pid/ns/mnt" >"$hd/mntns"
                if [ "$(cat "$hd/mntns")" = "$(readlink /proc/self/ns/mnt)" ]; then
                    die "$name: sshd did not get its own mount namespace"
                fi
            fi
            return 0
        fi
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    rm -f "$hd/pid"
    echo "$prog: the sshd of $name (127.0.0.1:$(cat "$hd/port")) does not answer; see $hd/sshd.log $hd/start.log" >&2
    return 1
}

write_ssh_config() { # DIR TIMEOUT NAME...
    local dir=$1 timeout=$2 name
    shift 2
    {
        for name in "$@"; do
            cat <<EOF
Host $name
    HostName 127.0.0.1
    Port $(cat "$(host_dir "$dir" "$name")/port")
    User $(id -un)
    IdentityFile $dir/client_key
    IdentitiesOnly yes
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    GlobalKnownHostsFile /dev/null
    ConnectTimeout $timeout
    LogLevel ERROR

EOF
        done
    } >"$dir/ssh_config.tmp"
    mv -f "$dir/ssh_config.tmp" "$dir/ssh_config"
}

start() {
    # each e2e slot (tests/e2e/run.sh) has its own 400 ports
    local dir=$1 timeout=5 spec name paths path hd port=$((22400 + ${E2E_SLOT:-0} * 400))
    local end=$((port + 400)) names=() p attempt
    shift
    if [ "${1:-}" = --connect-timeout ]; then
        timeout=${2:?--connect-timeout needs a number}
        shift 2
    fi
    [ $# -gt 0 ] || usage
    [ "$(id -u)" = 0 ] || die "needs root (mount namespaces)"
    for p in sshd ssh ssh-keygen unshare; do
        command -v "$p" >/dev/null 2>&1 || [ -x "/usr/sbin/$p" ] || die "$p not found"
    done
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    write_keys "$dir"
    mkdir -p /run/sshd
    for spec in "$@"; do
        name=${spec%%:*}
        paths=
        [ "$name" = "$spec" ] || paths=${spec#*:}
        [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "bad host name '$name'"
        hd=$(host_dir "$dir" "$name")
        mkdir -p "$hd"
        : >"$hd/private"
        if [ -n "$paths" ]; then
            [ "$name" != frontend ] || die "frontend is the test's own namespace: it has no private paths"
            IFS=, read -r -a plist <<<"$paths"
            for path in "${plist[@]}"; do
                [[ $path == /* ]] || die "$name: private path '$path' is not absolute"
                # the mount point (as everyone else sees it) and the host's own copy
                mkdir -p "$path" "$hd$path"
                echo "$path" >>"$hd/private"
            done
        fi
        names+=("$name")
    done
    printf '%s\n' "${names[@]}" >"$dir/names"
    echo "$timeout" >"$dir/connect_timeout"
    for name in "${names[@]}"; do
        hd=$(host_dir "$dir" "$name")
        # A free port, taken by another test between the probe and the bind
        # now and then: try again elsewhere (bounded).
        for ((attempt = 1; ; attempt++)); do
            port=$(free_port_from "$port" "$end")
            echo "$port" >"$hd/port"
            port=$((port + 1))
            write_sshd_config "$dir" "$name" "$(cat "$hd/port")"
            if launch "$dir" "$name"; then
                break
            fi
            if [ "$attempt" -ge 5 ]; then
                cat "$hd/sshd.log" "$hd/start.log" >&2 2>/dev/null || true
                stop "$dir"
                exit 1
            fi
        done
    done
    write_ssh_config "$dir" "$timeout" "${names[@]}"
}

# --------------------------------------------------------------- stop etc.

kill_host() { # DIR NAME
    local hd pids p i ns="" nsfd=""
    hd=$(host_dir "$1" "$2")
    [ -f "$hd/pid" ] || return 0
    # The host's mount namespace is held open while its processes are
    # killed: a namespace whose last process is gone frees its inode number,
    # and the kernel gives that number to the next namespace made, often
    # another script's host a moment later; its processes must not be taken
    # for this host's.
    [ ! -s "$hd/mntns" ] || ns=$(cat "$hd/mntns")
    if [ -n "$ns" ]; then
        for p in $(cat "$hd/pid") $(ns_pids "$ns"); do
            { exec {nsfd}<"/proc/$p/ns/mnt"; } 2>/dev/null || { nsfd=""; continue; }
            [ "$(readlink "/proc/$$/fd/$nsfd")" = "$ns" ] && break
            exec {nsfd}<&-
            nsfd=""
        done
    fi
    for i in 1 2 3 4 5; do
        pids=()
        [ -z "$nsfd" ] || mapfile -t pids < <(ns_pids "$ns")
        [ -n "$ns" ] || mapfile -t pids < <(host_pids "$1" "$2")
        if [ "$i" = 1 ] && alive "$(cat "$hd/pid")"; then
            pids+=("$(cat "$hd/pid")")
        fi
        [ ${#pids[@]} -gt 0 ] || break
        for p in "${pids[@]}"; do
            [ "$p" != "$$" ] || continue
            kill -CONT "$p" 2>/dev/null || true
            if [ "$i" -lt 3 ]; then
                kill -TERM "$p" 2>/dev/null || true
            else
                kill -KILL "$p" 2>/dev/null || true
            fi
        done
        sleep 0.2
    done
    [ -z "$nsfd" ] || exec {nsfd}<&-
    rm -f "$hd/pid" "$hd/mntns" "$hd/stopped"
}

stop() {
    local dir=$1 name
    [ -d "$dir" ] || return 0
    [ -f "$dir/names" ] || return 0
    while IFS= read -r name; do
        [ -n "$name" ] || continue
        kill_host "$dir" "$name"
    done <"$dir/names"
}

pause() { # DIR NAME
    local dir=$1 name=$2 hd pid p round
    hd=$(host_dir "$dir" "$name")
    [ -f "$hd/pid" ] || die "$name is not running"
    pid=$(cat "$hd/pid")
    # The listener first, so that nothing new starts; then, until no new
    # process shows up, everything else (bounded).
    kill -STOP "$pid"
    echo "$pid" >"$hd/stopped"
    for round in 1 2 3 4 5; do
        local new=0
        while IFS= read -r p; do
            [ "$p" = "$$" ] && continue
            if ! grep -qx "$p" "$hd/stopped"; then
                kill -STOP "$p" 2>/dev/null || true
                echo "$p" >>"$hd/stopped"
                new=1
            fi
        done < <(host_pids "$dir" "$name")
        [ "$new" = 1 ] || break
        : "$round"
    done
}

resume() { # DIR NAME
    local dir=$1 name=$2 hd p
    hd=$(host_dir "$dir" "$name")
    [ -f "$hd/stopped" ] || return 0
    while IFS= read -r p; do
        kill -CONT "$p" 2>/dev/null || true
    done <"$hd/stopped"
    while IFS= read -r p; do
        kill -CONT "$p" 2>/dev/null || true
    done < <(host_pids "$dir" "$name")
    rm -f "$hd/stopped"
}

down() { # DIR NAME
    kill_host "$1" "$2"
}

up() { # DIR NAME
    local dir=$1 name=$2 hd i
    hd=$(host_dir "$dir" "$name")
    [ -f "$hd/port" ] || die "$name was never started"
    if [ -f "$hd/pid" ] && alive "$(cat "$hd/pid")"; then
        return 0
    fi
    # The port was released when it went down; wait for it (bounded).
    for ((i = 0; i < 50; i++)); do
        port_free "$(cat "$hd/port")" && break
        sleep 0.1
    done
    launch "$dir" "$name"
}

cmd=${1:-}
[ $# -ge 2 ] || usage
dir=$2
shift 2
case $cmd in
    start) start "$dir" "$@" ;;
    stop) stop "$dir" ;;
    pause) pause "$dir" "${1:?NAME}" ;;
    resume) resume "$dir" "${1:?NAME}" ;;
    down) down "$dir" "${1:?NAME}" ;;
    up) up "$dir" "${1:?NAME}" ;;
    port) cat "$(host_dir "$dir" "${1:?NAME}")/port" ;;
    *) usage ;;
esac
