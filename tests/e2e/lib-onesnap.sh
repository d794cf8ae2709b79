#!/bin/bash
# lib-onesnap.sh - sourced after tm_setup by the onesnap scripts (t0400,
# t0410): two users of the group users (100) besides oneadmin, alice (uid
# 5, who owns the VMs) and bob (uid 6), and onesnap run as each.

ONESNAP=$BUILD/bin/onesnap

printf 'alice:alicepw:5:100:users\n' >>"$STANDIN_DIR/users"
printf 'alice:alicepw\n' >"$TEST_DIR/alice_auth"
printf 'bob:bobpw:6:100:users\n' >>"$STANDIN_DIR/users"
printf 'bob:bobpw\n' >"$TEST_DIR/bob_auth"

snap() { # onesnap as alice
    ONE_AUTH=$TEST_DIR/alice_auth "$ONESNAP" "$@"
}

snap_bob() { # onesnap as bob
    ONE_AUTH=$TEST_DIR/bob_auth "$ONESNAP" "$@"
}

# A VM owned by alice: tm_vm's arguments.
user_vm() { # VMID tm_vm-ARGS...
    local vmid=$1
    tm_vm "$@"
    tm_set vm "$vmid" /VM/UID 5
    tm_set vm "$vmid" /VM/GID 100
    tm_set vm "$vmid" /VM/UNAME alice
    tm_set vm "$vmid" /VM/GNAME users
}
