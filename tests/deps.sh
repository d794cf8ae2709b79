#!/bin/bash
# deps.sh - the Debian packages qcow2c needs to build and test, installed
# when missing.
#
#   tests/deps.sh           install what is missing (root), or print the
#                           apt-get command to run and fail (non-root)
#   tests/deps.sh --check   only tell: exit 0 when all are installed, else 1
#   tests/deps.sh --list    print the package names, one a line
#
# `make check`, `make asan`, `make demo` and `make lint` run it first. It asks
# dpkg once, so when nothing is missing it costs a few milliseconds and never
# touches the network. QCOW2C_NO_DEPS=1 skips it (a non-Debian machine that
# has the tools by other means).
set -euo pipefail

# The one list. Add a package to the group that needs it; nothing else has
# to change.
PACKAGES=(
    # build
    build-essential pkg-config
    libxml2-dev libxmlrpc-core-c3-dev libcurl4-openssl-dev libssl-dev
    zlib1g-dev liblzma-dev libbz2-dev
    # unit tests
    libcriterion-dev
    # what the actions run, and the tests' hosts (a private sshd)
    qemu-utils openssh-server openssh-client
    gzip bzip2 xz-utils xorriso
    # make lint
    shellcheck cppcheck clang-format
    # tools the test scripts use
    iproute2 util-linux procps file ca-certificates libxml2-utils
    # a real libvirt-managed QEMU guest for the live-disk tests (tests/lib/guest.sh):
    # libvirtd + virtlogd and virsh; QEMU with software emulation (no /dev/kvm)
    libvirt-daemon-system libvirt-clients qemu-system-x86
    # the guest's kernel and its virtio/ext4 modules (/boot, /lib/modules; its
    # install also builds the host's initramfs; this whole list, 75 MB, took a
    # minute to install); kmod resolves the module dependencies; the
    # dynamic busybox and its libraries are the guest's userland (not
    # busybox-static: it replaces busybox and rebuilds the host's initramfs);
    # cpio packs the guest's initramfs; mkfs.ext4 -d makes its disk
    linux-image-amd64 kmod busybox cpio e2fsprogs
    # qemu-ga, copied into the guest's initramfs, so that virsh domfsfreeze works
    qemu-guest-agent
)

prog=tests/deps.sh
mode=install
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    --list) printf '%s\n' "${PACKAGES[@]}"; exit 0 ;;
    -h | --help) sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "$prog: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac

if [ "${QCOW2C_NO_DEPS:-}" = 1 ]; then
    exit 0
fi
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "$prog: not a Debian system (no dpkg-query); install the equivalents of:" >&2
    echo "    ${PACKAGES[*]}" >&2
    echo "$prog: then run with QCOW2C_NO_DEPS=1" >&2
    exit 1
fi

# Names dpkg reports as fully installed ("install ok installed"); anything
# else (absent, removed with its config files left, half-configured) is
# missing. One dpkg-query call for the whole list keeps a no-op run cheap.
missing() {
    local -A ok=()
    local name status p
    while read -r name status; do
        [ "$status" = installed ] && ok[$name]=1
    done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)
    for p in "${PACKAGES[@]}"; do
        [ -n "${ok[$p]:-}" ] || echo "$p"
    done
}

mapfile -t need < <(missing)
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi

cmd=(apt-get install -y --no-install-recommends "${need[@]}")
if [ "$mode" = check ]; then
    echo "$prog: missing Debian packages: ${need[*]}" >&2
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "$prog: missing Debian packages: ${need[*]}" >&2
    echo "$prog: as root, run:" >&2
    echo "    apt-get update && ${cmd[*]}" >&2
    exit 1
fi

echo "$prog: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt/dpkg (unattended-upgrades...) instead of failing, and
# never stop at a configuration file question.
apt_opts=(-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef
          -o Dpkg::Options::=--force-confold)

# Without systemd (containers, chroots, CI) a package's maintainer script may
# try to start its service (openssh-server starts sshd) and fail, which leaves
# the package half-installed. The tests start their own daemons, so deny
# service starts for the duration, the way Debian's chroot builders do, unless
# the admin already has a policy.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -d /run/systemd/system ] && [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# written by qcow2c tests/deps.sh during apt-get install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
fi
cleanup() {
    if [ "$made_policy" = 1 ]; then
        rm -f "$policy"
    fi
}
trap cleanup EXIT

# The package lists of a fresh machine are empty or stale; one retry covers a
# mirror hiccup.
apt_get() {
    "$@" || { echo "$prog: '$*' failed; retrying in 10 s" >&2; sleep 10; "$@"; }
}
apt_get apt-get "${apt_opts[@]}" update -q
apt_get "${cmd[0]}" "${apt_opts[@]}" "${cmd[@]:1}"

mapfile -t need < <(missing)
if [ ${#need[@]} -gt 0 ]; then
    echo "$prog: still missing after apt-get install: ${need[*]}" >&2
    exit 1
fi
echo "$prog: all ${#PACKAGES[@]} packages installed"
