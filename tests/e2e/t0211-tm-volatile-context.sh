#!/bin/bash
# t0211-tm-volatile-context.sh - TM mkimage, mkswap (volatile disks, run with
# the system datastore's TM: datastore 0) and context (the CD the VMM driver
# asks for at deploy, with the empty word of the real line): the files on
# the host, their formats, file systems and content, re-runs over leftovers,
# hostile arguments, oned and hosts out of reach, and the stock commands'
# results (mkfs_command of scripts_common.sh, common/context) side by side.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-tm.sh"

# shellcheck disable=SC2119 # no --ssh-system: datastore 100 is not used
tm_setup
need_tool file

norm() { printf '%s\n' "$1" | tr -s /; }
DS0=$(norm "$DS_LOCATION/$SYS_DS")

layout_is() { # HOST PATH <<EOF
    sed -e 's/^[[:space:]]*//' -e '/^$/d' -e 's/ /\t/' | LC_ALL=C sort | sed 's/\t/ /' |
        expect_layout "$1" "$2"
}

vsize_of() {
    qemu-img info -U --output=json -- "$1" | sed -n 's/^    "virtual-size": \([0-9]*\),*$/\1/p' | head -n 1
}

# What `file` says about the guest-visible content of an image.
content_kind() { # FILE FORMAT
    rm -f "$TEST_DIR/content.raw"
    qemu-img convert -U -f "$2" -O raw -- "$1" "$TEST_DIR/content.raw"
    file -b "$TEST_DIR/content.raw"
}

snapshot() {
    (cd "$TEST_DIR/var/lib/one/datastores" && find . -printf '%p %y %s %l\n' | LC_ALL=C sort)
}

refused() { # SNAPSHOT_FILE
    if [ "$LAST_STATUS" = 0 ] || [ -z "$LAST_STATUS" ]; then
        echo "refused: the action exited with status '$LAST_STATUS'"
        return 1
    fi
    one_plain_line "$LAST_STDERR"
    snapshot | diff -u "$1" - || {
        echo "refused: something changed"
        return 1
    }
}

# The VMM driver's TM step failed (not the harness).
vmm_fails() { # VMID LINE
    local st=0
    tm_vmm "$1" "$2" 2>/dev/null || st=$?
    if [ "$st" != 1 ]; then
        echo "vmm_fails: '$2' ended with status $st"
        return 1
    fi
}

# The files of an ISO, "NAME CONTENT-MD5" sorted, extracted on the front-end.
iso_files() { # ISO
    local x=$TEST_DIR/iso.x
    rm -rf "$x"
    xorriso -osirrox on -indev "$1" -extract / "$x" >/dev/null 2>&1
    (cd "$x" && find . -type f -exec md5sum {} + | awk '{print $2, $1}' | LC_ALL=C sort)
    chmod -R u+w "$x"
    rm -rf "$x"
}

iso_label() { # ISO
    xorriso -indev "$1" -pvd_info 2>/dev/null | sed -n 's/^Volume Id *: *//p'
}

# ---------------------------------------------------------------- volatile

case_volatile_disks() {
    local d
    tm_vm 60 --host node1 --system-ds 0 --volatile 16:fs:qcow2 --volatile 8:swap \
        --volatile 24:fs:raw --volatile 32:fs:qcow2 --volatile 12:fs:raw
    tm_set vm 60 '/VM/TEMPLATE/DISK[DISK_ID=3]/FS' ext4
    tm_set vm 60 '/VM/TEMPLATE/DISK[DISK_ID=4]/FS' ext3
    tm_prolog 60
    grep -q '^MKIMAGE qcow2c 16 qcow2 ' "$TM_FILE"
    grep -q '^MKSWAP qcow2c 8 ' "$TM_FILE"
    d=$DS0/60
    layout_is node1 "$d" <<EOF
        . dir
        disk.0 file qcow2
        disk.1 file raw
        disk.2 file raw
        disk.3 file qcow2
        disk.4 file raw
EOF
    test "$(vsize_of "$d/disk.0")" = $((16 << 20))
    test "$(stat -c %s "$d/disk.1")" = $((8 << 20))
    test "$(stat -c %s "$d/disk.2")" = $((24 << 20))
    test "$(vsize_of "$d/disk.3")" = $((32 << 20))
    qemu_img_check "$d/disk.0"
    qemu_img_check "$d/disk.3"
    [[ $(file -b "$d/disk.1") == *"swap file"*"LABEL=swap"* ]]
    [[ $(content_kind "$d/disk.3" qcow2) == *ext4* ]]
    [[ $(file -b "$d/disk.4") == *ext3* ]]
    # an empty disk reads zeros
    qemu-io -f qcow2 -r -c 'read -q -P 0 0 16M' "$d/disk.0" >/dev/null
    cmp -n $((24 << 20)) "$d/disk.2" /dev/zero
}

case_volatile_rerun() {
    local d
    tm_vm 61 --host node1 --system-ds 0 --volatile 16:fs:qcow2 --volatile 8:swap
    tm_set vm 61 '/VM/TEMPLATE/DISK[DISK_ID=0]/FS' ext4
    d=$DS0/61
    # a previous attempt's leftovers and a disk.0 that is not what was asked
    mkdir -p "$d"
    echo junk >"$d/disk.0.part"
    echo junk >"$d/disk.0.part.conv"
    qemu-img create -q -f raw "$d/disk.0" 4M
    echo junk >"$d/disk.1.part"
    tm_prolog 61
    layout_is node1 "$d" <<EOF
        . dir
        disk.0 file qcow2
        disk.1 file raw
EOF
    [[ $(content_kind "$d/disk.0" qcow2) == *ext4* ]]
    test "$(vsize_of "$d/disk.0")" = $((16 << 20))
    # and again: same result
    tm_prolog 61
    layout_is node1 "$d" <<EOF
        . dir
        disk.0 file qcow2
        disk.1 file raw
EOF
    [[ $(file -b "$d/disk.1") == *"swap file"* ]]
}

case_volatile_refused() {
    local d=$DS_LOCATION/0/62
    tm_vm 62 --host node1 --system-ds 0 --volatile 16:fs:qcow2 --volatile 8:swap
    snapshot >"$TEST_DIR/before"
    for line in \
        "MKIMAGE qcow2c 0 qcow2 node1:$d/disk.0 62 0" \
        "MKIMAGE qcow2c -16 qcow2 node1:$d/disk.0 62 0" \
        "MKIMAGE qcow2c 16M qcow2 node1:$d/disk.0 62 0" \
        "MKIMAGE qcow2c 99999999999999999999 qcow2 node1:$d/disk.0 62 0" \
        "MKIMAGE qcow2c 16 vmdk node1:$d/disk.0 62 0" \
        "MKIMAGE qcow2c 16 \$(id) node1:$d/disk.0 62 0" \
        "MKIMAGE qcow2c 16 qcow2 node1:$d/disk.0 62" \
        "MKIMAGE qcow2c 16 qcow2 node1:$d/disk.0 62 0x" \
        "MKIMAGE qcow2c 16 qcow2 node1:$DS_LOCATION/0/63/disk.0 62 0" \
        "MKIMAGE qcow2c 16 qcow2 node1:$d/../62/disk.0 62 0" \
        "MKIMAGE qcow2c 16 qcow2 node1:$d/disk.0\$(id) 62 0" \
        "MKIMAGE qcow2c 16 qcow2 node1:$d 62 0" \
        "MKIMAGE qcow2c 16 qcow2 node1:22:$d/disk.0 62 0" \
        "MKIMAGE qcow2c 16 qcow2 [fe80::1]:$d/disk.0 62 0" \
        "MKSWAP qcow2c 8 node1:$d/disk.1 62" \
        "MKSWAP qcow2c 8x node1:$d/disk.1 62 0" \
        "MKSWAP qcow2c 8 node1:$DS_LOCATION/0/1/disk.1 62 0"; do
        echo "# $line"
        tm_transfer_fails 62 <<<"$line"
        refused "$TEST_DIR/before"
    done
    # a file system outside SUPPORTED_FS
    tm_set vm 62 '/VM/TEMPLATE/DISK[DISK_ID=0]/FS' 'ntfs'
    tm_transfer_fails 62 <<<"MKIMAGE qcow2c 16 qcow2 node1:$d/disk.0 62 0"
    reason=$(refused "$TEST_DIR/before")
    [[ $reason == *ntfs* ]]
}

case_volatile_oned_and_hosts() {
    local d=$DS_LOCATION/0/63 reason
    tm_vm 63 --host node2 --system-ds 0 --volatile 16:fs:qcow2 --volatile 8:swap
    snapshot >"$TEST_DIR/before"
    # mkimage reads DISK/FS from oned; mkswap needs nothing from it
    "$HARNESS/standin-ctl" "$STANDIN_DIR" fail one.vm.info 1 drop x
    tm_transfer_fails 63 <<<"MKIMAGE qcow2c 16 qcow2 node2:$d/disk.0 63 0"
    reason=$(refused "$TEST_DIR/before")
    [[ $reason == *oned* ]]
    tm_transfer 63 <<<"MKSWAP qcow2c 8 node2:$d/disk.1 63 0"
    rm -rf "$DS0/63"
    snapshot >"$TEST_DIR/before"
    hosts_ctl pause node2
    defer hosts_ctl resume node2
    SECONDS=0
    tm_transfer_fails 63 <<<"MKIMAGE qcow2c 16 qcow2 node2:$d/disk.0 63 0"
    test "$SECONDS" -lt 60
    reason=$(refused "$TEST_DIR/before")
    [[ $reason == *node2* ]]
    hosts_ctl resume node2
    tm_prolog 63
    layout_is node2 "$DS0/63" <<EOF
        . dir
        disk.0 file qcow2
        disk.1 file raw
EOF
}

# scripts_common.sh mkfs_command + common/mkimage, as the host runs them.
stock_mkimage() { # DST FORMAT SIZE [FS]
    local dst=$1 format=$2 size=$3 fs=${4:-}
    echo "mkdir -p $(dirname "$dst")"
    echo "export PATH=/usr/sbin:/sbin:\$PATH"
    if [ -n "$fs" ]; then
        echo "qemu-img create -f raw ${dst} ${size}M"
        echo "mkfs -F -t ${fs}  ${dst}"
        if [ "$format" = qcow2 ]; then
            echo "qemu-img convert -f raw -O qcow2 ${dst} ${dst}.qcow2"
            echo "mv ${dst}.qcow2 ${dst}"
        fi
    else
        if [ "$format" = qcow2 ]; then
            echo "qemu-img create -f qcow2 ${dst} ${size}M"
        else
            echo "qemu-img create -f raw ${dst} ${size}M"
        fi
    fi
    if [ "$format" = swap ]; then
        echo "mkswap -L swap $dst"
    fi
}

case_volatile_stock() {
    local stock=$DS0/64 ours=$DS0/65 script
    tm_vm 64 --host node1 --system-ds 0 --volatile 16:fs:qcow2 --volatile 8:swap --volatile 12:fs:raw
    tm_vm 65 --host node1 --system-ds 0 --volatile 16:fs:qcow2 --volatile 8:swap --volatile 12:fs:raw
    tm_set vm 65 '/VM/TEMPLATE/DISK[DISK_ID=2]/FS' ext4
    tm_set vm 64 '/VM/TEMPLATE/DISK[DISK_ID=2]/FS' ext4
    script=$(stock_mkimage "$stock/disk.0" qcow2 16
        stock_mkimage "$stock/disk.1" swap 8
        stock_mkimage "$stock/disk.2" raw 12 ext4)
    on_host node1 bash -c "set -e; $script" >/dev/null 2>&1
    tm_prolog 65
    test "$(host_tree node1 "$stock")" = "$(host_tree node1 "$ours")"
    [[ $(file -b "$stock/disk.2") == *ext4* ]] && [[ $(file -b "$ours/disk.2") == *ext4* ]]
    # qcow2c's re-run over the stock files, and its delete
    tm_prolog 64
    test "$(host_tree node1 "$stock")" = "$(host_tree node1 "$ours")"
    tm_epilog 64
    test ! -e "$stock"
}

# ---------------------------------------------------------------- context

case_context_deploy() {
    local img d want
    img=$(tm_image os --format qcow2 --size 16)
    tm_vm 70 --host node1 --system-ds 0 --disk image="$img" --context
    tm_prolog 70
    tm_context 70
    d=$DS0/70
    layout_is node1 "$d" <<EOF
        . dir
        disk.0 link disk.0.snap/0
        disk.0.snap dir
        disk.0.snap/0 file qcow2 $(tm_image_file "$img")
        disk.0.snap/disk.0.snap link .
        disk.1 file raw
EOF
    test "$(iso_label "$d/disk.1")" = CONTEXT
    want=$(cd "$VMS/70" && md5sum context.sh token.txt | awk '{print "./" $2, $1}')
    test "$(iso_files "$d/disk.1")" = "$want"
    test ! -e "$(norm "$DS_LOCATION")/.isofiles/70"
    # the VM log gets the INFO line (VM id after the prefix)
    grep -q '^LOG I 70 context: ' "$TM_REPLY"
    # a new context (e.g. after a NIC attach) replaces the CD
    echo "NEW='1'" >>"$VMS/70/context.sh"
    tm_vmm 70 "CONTEXT qcow2c $VMS/70/context.sh node1:$DS_LOCATION/0/70/disk.1 70 0"
    test "$(iso_files "$d/disk.1")" = "./context.sh $(md5sum <"$VMS/70/context.sh" | cut -d' ' -f1)"
}

case_context_files() {
    local d=$DS_LOCATION/0/71 files=$TEST_DIR/ctxfiles url want
    tm_vm 71 --host node1 --system-ds 0 --context
    mkdir -p "$files/dir/sub" "$TEST_DIR/web"
    echo 'A=1' >"$files/context.sh"
    echo 'init' >"$files/init.sh"
    echo 'deep' >"$files/dir/sub/f"
    ln -s "$files/init.sh" "$files/link.sh"
    echo 'ctx image' >"$DS0/../1/ctximage"
    echo 'from the web' >"$TEST_DIR/web/web.txt"
    "$HARNESS/http-serve" --portfile "$TEST_DIR/http.port" "$TEST_DIR/web" 2>/dev/null &
    defer kill $!
    for _ in $(seq 100); do [ -s "$TEST_DIR/http.port" ] && break; sleep 0.05; done
    url=http://127.0.0.1:$(cat "$TEST_DIR/http.port")/web.txt
    tm_vmm 71 "CONTEXT qcow2c $files/context.sh  $files/init.sh $files/link.sh $files/dir $DS_LOCATION/1/ctximage:'my-file' $url node1:$d/disk.0 71 0"
    want=$(printf '%s\n' \
        "./context.sh $(md5sum <"$files/context.sh" | cut -d' ' -f1)" \
        "./dir/sub/f $(md5sum <"$files/dir/sub/f" | cut -d' ' -f1)" \
        "./init.sh $(md5sum <"$files/init.sh" | cut -d' ' -f1)" \
        "./link.sh $(md5sum <"$files/init.sh" | cut -d' ' -f1)" \
        "./my-file $(md5sum <"$DS0/../1/ctximage" | cut -d' ' -f1)" \
        "./web.txt $(md5sum <"$TEST_DIR/web/web.txt" | cut -d' ' -f1)" | LC_ALL=C sort)
    test "$(iso_files "$DS0/71/disk.0")" = "$want"
    layout_is node1 "$DS0/71" <<EOF
        . dir
        disk.0 file raw
EOF
    # re-run over a leftover of a killed copy and an old CD
    echo junk >"$DS0/71/disk.0.part"
    echo old >"$DS0/71/disk.0"
    tm_vmm 71 "CONTEXT qcow2c $files/context.sh node1:$d/disk.0 71 0"
    layout_is node1 "$DS0/71" <<EOF
        . dir
        disk.0 file raw
EOF
    test "$(iso_files "$DS0/71/disk.0")" = "./context.sh $(md5sum <"$files/context.sh" | cut -d' ' -f1)"
}

case_context_refused() {
    local d=$DS_LOCATION/0/72 f=$VMS/72/context.sh reason
    tm_vm 72 --host node1 --system-ds 0 --context
    mkdir -p "$VMS/72"
    echo 'A=1' >"$f"
    snapshot >"$TEST_DIR/before"
    for line in \
        "CONTEXT qcow2c $f node1:$d/disk.0 72" \
        "CONTEXT qcow2c $f node1:$d/disk.0 72x 0" \
        "CONTEXT qcow2c $VMS/72/../72/context.sh node1:$d/disk.0 72 0" \
        "CONTEXT qcow2c vms/72/context.sh node1:$d/disk.0 72 0" \
        "CONTEXT qcow2c $f:'a'b' node1:$d/disk.0 72 0" \
        "CONTEXT qcow2c $f:\$(touch\${IFS}$TEST_DIR/pwned) node1:$d/disk.0 72 0" \
        "CONTEXT qcow2c $f:\`id\` node1:$d/disk.0 72 0" \
        "CONTEXT qcow2c $f:../x node1:$d/disk.0 72 0" \
        "CONTEXT qcow2c $f:.. node1:$d/disk.0 72 0" \
        "CONTEXT qcow2c $f $VMS/72/missing node1:$d/disk.0 72 0" \
        "CONTEXT qcow2c $f node1:$DS_LOCATION/0/73/disk.0 72 0" \
        "CONTEXT qcow2c $f node1:$d/../73/disk.0 72 0" \
        "CONTEXT qcow2c $f node1:$d 72 0" \
        "CONTEXT qcow2c $f $d/disk.0 72 0" \
        "CONTEXT qcow2c $f node1:2222:$d/disk.0 72 0"; do
        echo "# $line"
        vmm_fails 72 "$line"
        refused "$TEST_DIR/before"
        test ! -e "$(norm "$DS_LOCATION")/.isofiles/72"
    done
    test ! -e "$TEST_DIR/pwned"
    # an unreachable URL: one line, nothing on the host
    vmm_fails 72 "CONTEXT qcow2c $f http://127.0.0.1:9/none node1:$d/disk.0 72 0"
    refused "$TEST_DIR/before"
    # a hung host: bounded
    hosts_ctl pause node1
    defer hosts_ctl resume node1
    SECONDS=0
    vmm_fails 72 "CONTEXT qcow2c $f node1:$d/disk.0 72 0"
    test "$SECONDS" -lt 60
    reason=$(refused "$TEST_DIR/before")
    [[ $reason == *node1* ]]
    test ! -e "$(norm "$DS_LOCATION")/.isofiles/72"
    hosts_ctl resume node1
    tm_vmm 72 "CONTEXT qcow2c $f node1:$d/disk.0 72 0"
}

# common/context at f847cf2e: the ISO in $DS_DIR/.isofiles/<vmid>, tar to
# the host renamed to disk.N.
stock_context() { # DST_PATH FILE...
    local dst=$1 iso=$TEST_DIR/stock-iso
    shift
    rm -rf "$iso" && mkdir -p "$iso"
    for f in "$@"; do cp -R "$f" "$iso/"; done
    xorriso -as mkisofs -o "$iso/1.iso.tmp" -V CONTEXT -J -R "$iso" >/dev/null 2>&1
    mv "$iso/1.iso.tmp" "$iso/1.iso"
    on_host node1 mkdir -p "$(dirname "$dst")"
    tar -C "$iso" --transform="flags=r;s|1.iso|$(basename "$dst")|" -cSf - 1.iso |
        ssh -F "$SSH_CONFIG" -o BatchMode=yes node1 "tar -xSf - -C $(dirname "$dst")"
    rm -rf "$iso"
}

case_context_stock() {
    local f=$TEST_DIR/stockctx/context.sh
    mkdir -p "$(dirname "$f")"
    echo 'A=2' >"$f"
    tm_vm 74 --host node1 --system-ds 0 --context
    tm_vm 75 --host node1 --system-ds 0 --context
    stock_context "$DS0/74/disk.0" "$f"
    tm_vmm 75 "CONTEXT qcow2c $f node1:$DS_LOCATION/0/75/disk.0 75 0"
    test "$(host_tree node1 "$DS0/74")" = "$(host_tree node1 "$DS0/75")"
    test "$(iso_files "$DS0/74/disk.0")" = "$(iso_files "$DS0/75/disk.0")"
    test "$(iso_label "$DS0/74/disk.0")" = "$(iso_label "$DS0/75/disk.0")"
    # qcow2c replaces a stock CD, and deletes it
    tm_vmm 74 "CONTEXT qcow2c $f node1:$DS_LOCATION/0/74/disk.0 74 0"
    tm_transfer 74 <<<"DELETE qcow2c node1:$DS_LOCATION/0/74/disk.0 74 0"
    layout_is node1 "$DS0/74" <<EOF
        . dir
EOF
}

test_case "mkimage/mkswap: qcow2, raw, swap, ext4/ext3, sizes and content" case_volatile_disks
test_case "mkimage/mkswap: re-run over leftovers rebuilds" case_volatile_rerun
test_case "mkimage/mkswap: hostile arguments refused, nothing changed" case_volatile_refused
test_case "mkimage/mkswap: oned or host out of reach" case_volatile_oned_and_hosts
test_case "mkimage/mkswap: same files as the stock commands, stock files taken over" case_volatile_stock
test_case "context: deploy CD with context.sh and token, replaced on update" case_context_deploy
test_case "context: FILE forms (path, dir, symlink, path:'name', URL), re-run" case_context_files
test_case "context: hostile arguments, unreachable URL, hung host" case_context_refused
test_case "context: same CD as the stock script, stock CD taken over" case_context_stock
