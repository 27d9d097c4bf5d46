#!/usr/bin/env bash
# Test the aarch64 wheel on an x86-64 machine: install it with its test extra in a
# venv inside an arm64 Debian root (tools/arm64_root.sh makes it; qemu user
# emulation runs it), copy tests/ in, and run pytest there from outside any source
# tree, first with the kernel the CPU gets (NEON), then with PIOPIY_FAST_SIMD=generic.
#
#   tools/test_wheel_arm64.sh [WHEEL] [-- PYTEST ARGS]     (run as root)
#
# WHEEL defaults to wheelhouse/piopiy_fast-*aarch64.whl; PYTEST ARGS default to the
# whole suite (tests). The root is $PIOPIY_FAST_ARM64_ROOT, default /work/arm64-root.
# Timings and pytest's summaries go to stdout.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
root=${PIOPIY_FAST_ARM64_ROOT:-/work/arm64-root}
wheel=""
if [ $# -gt 0 ] && [ "$1" != "--" ]; then wheel=$1; shift; fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
if [ $# -eq 0 ]; then set -- tests; fi
if [ -z "$wheel" ]; then wheel=$(ls "$repo"/wheelhouse/piopiy_fast-*aarch64.whl | head -n 1); fi
wheel=$(readlink -f "$wheel")

start=$SECONDS
"$repo/tools/arm64_root.sh" "$root"
echo "root ready: $((SECONDS - start)) s"

# What the tests need from the kernel: processes, devices, shared memory.
mounted=()
cleanup() {
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" || true; done
}
trap cleanup EXIT
mnt() {   # mnt TARGET ARGS...: mount unless something already is
    local target=$root$1; shift
    if ! mountpoint -q "$target"; then
        mkdir -p "$target"
        mount "$@" "$target"
        mounted+=("$target")
    fi
}
mnt /proc -t proc proc
mnt /sys -t sysfs sysfs
mnt /dev --bind /dev
mnt /dev/pts --bind /dev/pts
mnt /dev/shm -t tmpfs tmpfs

# pip inside the root trusts what pip here trusts.
if [ -n "${PIP_CERT:-}" ] && [ -f "$PIP_CERT" ]; then cert=$PIP_CERT
else cert=/etc/ssl/certs/ca-certificates.crt; fi
cp "$cert" "$root/etc/ssl/certs/host-bundle.crt"
cp /etc/resolv.conf "$root/etc/resolv.conf"

work=/tmp/piopiy-fast-test
rm -rf "${root:?}$work"
mkdir -p "$root$work"
cp "$wheel" "$root$work/"
cp -r "$repo/tests" "$root$work/tests"
in_root() {
    chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
        PIP_CERT=/etc/ssl/certs/host-bundle.crt PIP_DISABLE_PIP_VERSION_CHECK=1 \
        PIP_DEFAULT_TIMEOUT=180 "$@"
}

start=$SECONDS
rm -rf "$root/opt/venv"
in_root /usr/bin/python3 -m venv /opt/venv
in_root /opt/venv/bin/pip install -q "$work/$(basename "$wheel")[test]"
echo "venv with the wheel and its test extra: $((SECONDS - start)) s"
in_root /opt/venv/bin/python -c \
    'import platform; from piopiy_fast._core import resample; print(platform.machine(), resample.__file__, resample.simd_kernel())'

status=0
for simd in "" generic; do
    start=$SECONDS
    echo "== pytest $* (PIOPIY_FAST_SIMD=${simd:-unset})"
    in_root /bin/sh -c "cd $work && ${simd:+PIOPIY_FAST_SIMD=$simd} exec /opt/venv/bin/python -m pytest -p no:cacheprovider -q $*" \
        || status=$?
    echo "== $((SECONDS - start)) s (PIOPIY_FAST_SIMD=${simd:-unset})"
done
exit $status
