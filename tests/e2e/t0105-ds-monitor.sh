#!/bin/bash
# t0105-ds-monitor.sh - DS monitor (captured monitor/1 and /2: DATASTORE only,
# the datastore id as argument): the driver base64-encodes the output, three
# lines USED_MB / FREE_MB / TOTAL_MB matching `df -B1M -P` of BASE_PATH.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ds.sh"

ds_setup

# The three values of the last reply, decoded, into USED FREE TOTAL.
decode_monitor() {
    printf '%s' "$DS_RESULT" | base64 -d >"$TEST_DIR/monitor.txt"
    if ! grep -Eqx 'USED_MB=[0-9]+' <(sed -n 1p "$TEST_DIR/monitor.txt") ||
        ! grep -Eqx 'FREE_MB=[0-9]+' <(sed -n 2p "$TEST_DIR/monitor.txt") ||
        ! grep -Eqx 'TOTAL_MB=[0-9]+' <(sed -n 3p "$TEST_DIR/monitor.txt") ||
        [ "$(wc -l <"$TEST_DIR/monitor.txt")" != 3 ]; then
        echo "the monitor output is not three lines USED_MB, FREE_MB, TOTAL_MB:"
        cat "$TEST_DIR/monitor.txt"
        return 1
    fi
    USED=$(sed -n 's/^USED_MB=//p' "$TEST_DIR/monitor.txt")
    FREE=$(sed -n 's/^FREE_MB=//p' "$TEST_DIR/monitor.txt")
    TOTAL=$(sed -n 's/^TOTAL_MB=//p' "$TEST_DIR/monitor.txt")
}

# df's columns (total used available, MB) for DIR.
df_of() { # DIR
    df -B1M -P "$1" | tail -n 1 | awk '{ print $2, $3, $4 }'
}

# GOT lies within SLACK MB of the range A..B (df before and after: other
# processes may write to the same file system meanwhile).
within() { # WHAT GOT A B SLACK
    local lo=$3 hi=$4
    if [ "$lo" -gt "$hi" ]; then
        lo=$4 hi=$3
    fi
    if [ "$2" -lt $((lo - $5)) ] || [ "$2" -gt $((hi + $5)) ]; then
        echo "$1: $2, df says $3 before and $4 after"
        return 1
    fi
}

# Runs monitor (ds_ok ARGS) between two df of DIR and compares.
monitor_like_df() { # DIR SLACK DS_OK-ARGS...
    local dir=$1 slack=$2 t1 u1 a1 t2 u2 a2
    shift 2
    read -r t1 u1 a1 < <(df_of "$dir")
    ds_ok "$@"
    read -r t2 u2 a2 < <(df_of "$dir")
    decode_monitor
    within TOTAL_MB "$TOTAL" "$t1" "$t2" "$slack"
    within USED_MB "$USED" "$u1" "$u2" "$slack"
    within FREE_MB "$FREE" "$a1" "$a2" "$slack"
}

case_captured() {
    monitor_like_df "$DS_DIR" 2 monitor 107 monitor/2
    test "$TOTAL" -gt 0
    # The captured datastore 105 (monitor/1): its directory is made.
    test ! -e "$DS_LOCATION/105"
    ds_ok monitor 105 monitor/1
    test -d "$DS_LOCATION/105"
    monitor_like_df "$DS_LOCATION/105" 2 monitor 105 monitor/1
}

case_tmpfs() {
    local dir=$TEST_DIR/var/lib/one/datastores/301
    ds_tmpfs "$dir" 64m
    ds_ok monitor 301 monitor/2 --set "$X_DS/ID=301" --set "$X_DS/BASE_PATH=$DS_LOCATION/301"
    decode_monitor
    test "$TOTAL" = 64
    test "$USED" = 0
    test "$FREE" = 64
    head -c $((10 << 20)) /dev/urandom >"$dir/fill"
    monitor_like_df "$dir" 0 monitor 301 monitor/2 --set "$X_DS/ID=301" \
        --set "$X_DS/BASE_PATH=$DS_LOCATION/301"
    test "$USED" = 10
    test "$FREE" = 54
}

case_failures() {
    ds_fails monitor 107 monitor/2 --set "$X_DS/BASE_PATH="
    ds_reason_matches "BASE_PATH"
    ds_fails monitor 107 monitor/2 --set "$X_DST/BRIDGE_LIST=node1 node2"
    ds_reason_matches "BRIDGE_LIST"
    : >"$TEST_DIR/not-a-dir"
    ds_fails monitor 107 monitor/2 --set "$X_DS/BASE_PATH=$TEST_DIR/not-a-dir"
}

test_case "captured messages: USED/FREE/TOTAL as df says" case_captured
test_case "a 64 MiB tmpfs, empty then with 10 MiB" case_tmpfs
test_case "no BASE_PATH, BRIDGE_LIST, BASE_PATH not a directory" case_failures
