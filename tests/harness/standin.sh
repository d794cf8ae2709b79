#!/bin/bash
# standin.sh - starts and stops the oned stand-in for shell tests.
#
#   tests/harness/standin.sh start DIR   start oned-standin on a free port with
#                                        its state in DIR, wait until it answers
#                                        (10 s at most), write DIR/one_auth and
#                                        print: export ONE_XMLRPC=http://...
#   tests/harness/standin.sh stop DIR    stop it (SIGTERM, then SIGKILL)
#
# DIR/users gets a oneadmin line with a random password when it has none;
# DIR/one_auth holds oneadmin:<that password>, for ONE_AUTH. The binaries are
# taken from $BUILD/harness (default: build/harness next to this script's
# tests/ directory). The server's own messages go to DIR/standin.log.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../../build}
prog=standin.sh

die() {
    echo "$prog: $*" >&2
    exit 1
}

# The oneadmin password of DIR/users, added when missing.
oneadmin_password() {
    local dir=$1 name password rest
    if [ -f "$dir/users" ]; then
        while IFS=: read -r name password rest; do
            if [ "$name" = oneadmin ]; then
                printf '%s\n' "$password"
                return
            fi
        done <"$dir/users"
    fi
    password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    printf 'oneadmin:%s:0:0\n' "$password" >>"$dir/users"
    printf '%s\n' "$password"
}

# Whether the server answers one.user.info(-1) (any answer will do), through
# bash's /dev/tcp: no curl needed, 2 s at most.
answers() {
    local port=$1 body len
    body='<?xml version="1.0"?><methodCall><methodName>one.user.info</methodName><params><param><value><string>-:-</string></value></param><param><value><i4>-1</i4></value></param></params></methodCall>'
    len=${#body}
    # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
    timeout 2 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "POST /RPC2 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\nContent-Length: %s\r\n\r\n%s" "$2" "$3" >&3
        grep -q methodResponse <&3' _ "$port" "$len" "$body" 2>/dev/null
}

start() {
    local dir=$1 pid port i
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ -f "$dir/standin.pid" ] && kill -0 "$(cat "$dir/standin.pid")" 2>/dev/null; then
        die "a stand-in already runs for $dir (pid $(cat "$dir/standin.pid"))"
    fi
    printf 'oneadmin:%s\n' "$(oneadmin_password "$dir")" >"$dir/one_auth"
    chmod 600 "$dir/one_auth"
    rm -f "$dir/standin.port"
    "$build/harness/oned-standin" --state "$dir" --port 0 --pidfile "$dir/standin.pid" \
        --portfile "$dir/standin.port" </dev/null >>"$dir/standin.log" 2>&1 &
    pid=$!
    for i in $(seq 100); do
        if [ -s "$dir/standin.port" ] && answers "$(cat "$dir/standin.port")"; then
            port=$(cat "$dir/standin.port")
            echo "export ONE_XMLRPC=http://127.0.0.1:$port/RPC2"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || die "oned-standin exited; see $dir/standin.log"
        sleep 0.1
        : "$i"
    done
    kill "$pid" 2>/dev/null || true
    die "oned-standin did not answer within 10 s; see $dir/standin.log"
}

stop() {
    local dir=$1 pid i
    [ -f "$dir/standin.pid" ] || return 0
    pid=$(cat "$dir/standin.pid")
    kill "$pid" 2>/dev/null || { rm -f "$dir/standin.pid"; return 0; }
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$dir/standin.pid"; return 0; }
        sleep 0.1
        : "$i"
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/standin.pid"
}

case "${1:-}:${2:-}" in
    start:?*) start "$2" ;;
    stop:?*) stop "$2" ;;
    *) echo "usage: $prog start DIR | stop DIR" >&2; exit 2 ;;
esac
