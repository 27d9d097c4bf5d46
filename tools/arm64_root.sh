#!/usr/bin/env bash
# An arm64 Debian root to test the aarch64 wheel in, under qemu user emulation:
# debootstrap's first stage here, its second stage inside the root (run by
# qemu-aarch64-static through binfmt_misc), then Debian's python3 and python3-venv.
#
#   tools/arm64_root.sh [ROOT]        (default /work/arm64-root; run as root)
#
# The root lives outside the repository. Running it again over a finished root only
# checks that it works. Needs Debian's qemu-user-static, binfmt-support and debootstrap
# (installed here with apt-get when missing).
set -euo pipefail
root=${1:-/work/arm64-root}
suite=${PIOPIY_FAST_ARM64_SUITE:-bookworm}          # its python3 is 3.11, the wheel's
mirror=${PIOPIY_FAST_ARM64_MIRROR:-http://deb.debian.org/debian}

if ! command -v qemu-aarch64-static >/dev/null || ! command -v debootstrap >/dev/null \
        || ! command -v update-binfmts >/dev/null; then
    apt-get update && apt-get install -y qemu-user-static binfmt-support debootstrap
fi
# The kernel runs aarch64 programs through qemu only once binfmt_misc knows it.
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
if ! grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
    echo "binfmt_misc has no enabled qemu-aarch64 entry" >&2
    exit 1
fi

if [ ! -x "$root/usr/bin/python3" ] || [ ! -e "$root/usr/lib/python3.11/venv" ]; then
    # Never delete through a mount (a test run's /dev or /proc left bound in there).
    if awk -v r="$(readlink -m "$root")/" 'index($2 "/", r) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
        echo "$root is unfinished but has something mounted in it: unmount it first" >&2
        exit 1
    fi
    rm -rf "$root"
    debootstrap --arch=arm64 --foreign --variant=minbase \
        --include=python3,python3-venv,ca-certificates "$suite" "$root" "$mirror"
    chroot "$root" /debootstrap/debootstrap --second-stage
fi
# Name resolution for pip inside the root.
cp /etc/resolv.conf "$root/etc/resolv.conf"
chroot "$root" /usr/bin/python3 -c \
    'import platform, sys, venv; print(platform.machine(), sys.version.split()[0])'
