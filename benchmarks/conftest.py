"""Benchmarks run on request only: `pytest benchmarks` (needs the bench extra).

Each benchmark names its baseline and runs it in the same session, so the
figures to quote are the ratios within one run.
"""
import platform

import numpy as np
import pytest


def pytest_report_header(config):
    from piopiy_fast._core.resample import simd_kernel

    versions = [f"python {platform.python_version()}", f"numpy {np.__version__}"]
    for name in ("scipy", "soxr", "websockets"):
        try:
            versions.append(f"{name} {__import__(name).__version__}")
        except ImportError:
            versions.append(f"{name} missing")
    return [", ".join(versions), f"piopiy_fast resampler kernel: {simd_kernel()}"]


@pytest.fixture
def both_frame_8k():
    """One 20 ms `both` frame at 8 kHz: 160 interleaved sample pairs of L16."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal(320) * 3000).astype("<i2").tobytes()
