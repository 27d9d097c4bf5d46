"""The resampler's per-CPU inner loops (src_cy/kernels): which one runs on this CPU,
that PIOPIY_FAST_SIMD=generic forces the portable one, and that the AVX2 and NEON
loops give the portable loop's bits exactly, float32 and int16, for every rate pair,
both presets, one and two channels, fed in pieces of seeded random sizes.

The kernel is chosen once, at import, so each choice runs in its own interpreter.
On x86-64 the NEON test skips; it runs on aarch64 (under qemu, see
tools/test_wheel_arm64.sh)."""
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

RATES = (8000, 12000, 16000, 24000, 32000, 48000)
# Kernels that must reproduce the portable loop bit for bit: every one.
BIT_EXACT = ("avx2", "neon")

RUN = """
import sys
import numpy as np
from piopiy_fast._core.resample import Resampler, simd_kernel
RATES = (8000, 12000, 16000, 24000, 32000, 48000)
rng = np.random.default_rng(20240611)
# Speech-like level with bursts past full scale, so int16 output also saturates.
base = rng.standard_normal((4000, 2)) * 6000
base[1000:1200] *= 8
out = sys.stdout.buffer
out.write(simd_kernel().encode() + b"\\n")
for quality in ("speech", "strict"):
    for a in RATES:
        for b in RATES:
            if a == b or (quality == "strict" and a != 8000 and b != 8000):
                continue
            for channels in (1, 2):
                for dtype in ("int16", "float32"):
                    x = base[:, :channels] if channels == 2 else base[:, 0]
                    x = np.clip(x, -32768, 32767).astype(dtype) if dtype == "int16" \\
                        else (x / 32768).astype(dtype)
                    r = Resampler(a, b, channels, dtype, quality)
                    at = 0
                    while at < len(x):
                        n = int(rng.integers(1, 700))
                        out.write(np.ascontiguousarray(r.process(x[at:at + n])).tobytes())
                        at += n
                    out.write(np.ascontiguousarray(r.flush()).tobytes())
"""


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "PIOPIY_FAST_SIMD"}
    env.update(extra)
    return env


def kernel_with(env):
    code = "from piopiy_fast._core.resample import simd_kernel; print(simd_kernel())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def expected_kernel():
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return "neon"   # Advanced SIMD is part of every AArch64 Linux CPU
    if machine in ("x86_64", "amd64") and {"avx2", "fma"} <= cpu_flags():
        return "avx2"
    return "generic"


def test_the_kernel_for_this_cpu_is_picked():
    assert kernel_with(clean_env()) == expected_kernel()


def test_generic_can_be_forced_and_an_unknown_name_is_ignored():
    assert kernel_with(clean_env(PIOPIY_FAST_SIMD="generic")) == "generic"
    assert kernel_with(clean_env(PIOPIY_FAST_SIMD="no-such-kernel")) == expected_kernel()


@pytest.mark.parametrize("kernel", BIT_EXACT)
def test_kernel_gives_the_portable_loops_bits(kernel):
    if kernel_with(clean_env()) != kernel:
        pytest.skip(f"this CPU does not run the {kernel} kernel")
    runs = {}
    for name in (kernel, "generic"):
        out = subprocess.run([sys.executable, "-c", RUN],
                             env=clean_env(PIOPIY_FAST_SIMD=name),
                             capture_output=True, check=True, timeout=1200).stdout
        used, _, data = out.partition(b"\n")
        assert used.decode() == name
        runs[name] = data
    fast, portable = runs[kernel], runs["generic"]
    # int16 and float32 pieces are both in there: compare bytes, then say where.
    assert len(fast) == len(portable) > 1_000_000
    if fast != portable:
        a, b = np.frombuffer(fast, np.uint8), np.frombuffer(portable, np.uint8)
        first = int(np.flatnonzero(a != b)[0])
        pytest.fail(f"{kernel} differs from generic: first at byte {first} of {len(fast)}, "
                    f"{int((a != b).sum())} bytes differ")
