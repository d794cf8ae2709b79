#!/bin/bash
# sshd.sh - a private OpenSSH server on 127.0.0.1 for the tests.
#
#   tests/lib/sshd.sh start DIR [HOST...]   start sshd, write DIR/ssh_config
#   tests/lib/sshd.sh stop DIR              stop it (by its pid file)
#
# DIR receives a host key, a client key, sshd_config and an ssh_config in
# which every HOST (default: node1 node2 frontend) reaches this sshd. The
# driver is pointed at it with SSH_OPTIONS="-F DIR/ssh_config". Runs as the
# current user: as root (CI) a real login as root, otherwise as that user.
set -euo pipefail

cmd=${1:?usage: sshd.sh start|stop DIR [HOST...]}
dir=${2:?usage: sshd.sh start|stop DIR [HOST...]}
shift 2

stop() {
    if [ -f "$dir/sshd.pid" ]; then
        kill "$(cat "$dir/sshd.pid")" 2>/dev/null || true
        rm -f "$dir/sshd.pid"
    fi
}

free_port() {
    # each e2e slot (tests/e2e/run.sh) has its own 100 ports, below
    # hosts.sh's
    local p base=$((21000 + ${E2E_SLOT:-0} * 100))
    for p in $(seq "$base" $((base + 99))); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    echo "sshd.sh: no free port in $base-$((base + 99))" >&2
    return 1
}

start() {
    local sshd port hosts
    sshd=$(command -v sshd || echo /usr/sbin/sshd)
    [ -x "$sshd" ] || { echo "sshd.sh: sshd not found (install openssh-server)" >&2; exit 1; }
    mkdir -p "$dir"
    chmod 700 "$dir"
    [ -f "$dir/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
    [ -f "$dir/client_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/client_key"
    cp "$dir/client_key.pub" "$dir/authorized_keys"
    chmod 600 "$dir/authorized_keys"
    port=$(free_port)
    # sshd refuses to start without its privilege separation directory.
    [ "$(id -u)" != 0 ] || mkdir -p /run/sshd
    cat > "$dir/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PrintMotd no
AcceptEnv LANG LC_*
MaxStartups 100:30:200
MaxSessions 100
LogLevel ERROR
# Debian's bash reads ~/.bashrc when sshd starts it at shell level 1:
# the tests must not depend on (nor pay for) the profile of whoever runs
# them; a oneadmin account on a host has none.
SetEnv SHLVL=1
EOF
    stop
    "$sshd" -f "$dir/sshd_config" -E "$dir/sshd.log"
    hosts=${*:-node1 node2 frontend}
    {
        for h in $hosts; do
            cat <<EOF
Host $h
    HostName 127.0.0.1
    Port $port
    User $(id -un)
    IdentityFile $dir/client_key
    IdentitiesOnly yes
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    LogLevel ERROR

EOF
        done
    } > "$dir/ssh_config"
    # Wait until it answers (bounded).
    for _ in $(seq 1 50); do
        if ssh -F "$dir/ssh_config" -o BatchMode=yes -o ConnectTimeout=2 "${hosts%% *}" true 2>/dev/null; then
            echo "$port" > "$dir/port"
            return 0
        fi
        sleep 0.1
    done
    echo "sshd.sh: sshd on 127.0.0.1:$port does not answer (see $dir/sshd.log)" >&2
    exit 1
}

case "$cmd" in
start) start "$@" ;;
stop) stop ;;
*) echo "usage: sshd.sh start|stop DIR [HOST...]" >&2; exit 2 ;;
esac
