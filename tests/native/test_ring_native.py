"""The ring buffer's C code under ThreadSanitizer: tests/native/ring_stress.c, a
native producer and consumer with no GIL anywhere, for each overflow policy.
It fails on a data race, a sample out of sequence, or a loss count that does
not add up."""
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HEADERS = ROOT / "src_cy" / "include"
SOURCE = pathlib.Path(__file__).resolve().parent / "ring_stress.c"
SAMPLES = 2_000_000


@pytest.fixture(scope="module")
def stress_binary(tmp_path_factory):
    if not HEADERS.is_dir():
        pytest.skip("needs the source tree (src_cy/include)")
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    binary = tmp_path_factory.mktemp("native") / "ring_stress"
    build = subprocess.run(
        [cc, "-std=c11", "-O1", "-g", "-fsanitize=thread", "-pthread", "-Wall", "-Wextra",
         "-Wno-tsan", f"-I{HEADERS}", str(SOURCE), "-o", str(binary)],
        capture_output=True, text=True)
    if build.returncode != 0 and "sanitize" in build.stderr:
        pytest.skip(f"no ThreadSanitizer here: {build.stderr.strip()[:200]}")
    assert build.returncode == 0, build.stderr
    return binary


@pytest.mark.parametrize("policy,mode", [("oldest", "lossy"), ("newest", "lossy"),
                                         ("newest", "lossless")])
def test_ring_under_thread_sanitizer(stress_binary, policy, mode):
    run = subprocess.run([str(stress_binary), policy, mode, str(SAMPLES)],
                         capture_output=True, text=True, timeout=300)
    if "unexpected memory mapping" in run.stderr:
        pytest.skip("ThreadSanitizer cannot run under this kernel's memory layout")
    assert "ThreadSanitizer" not in run.stderr, run.stderr[:4000]
    assert run.returncode == 0, run.stdout + run.stderr[:2000]
    assert f"total {SAMPLES}, read retries " in run.stdout
