"""The typed surface: the package and the stubs of its compiled modules pass
mypy --strict (configured in pyproject.toml)."""
import pathlib
import subprocess
import sys

import pytest

import piopiy_fast

pytest.importorskip("mypy")


def test_package_and_stubs_pass_mypy_strict(tmp_path):
    package = pathlib.Path(piopiy_fast.__file__).parent
    # An installed package is checked by name, as its users' mypy sees it
    # (py.typed); a source tree by path.
    target = ["-p", "piopiy_fast"] if "site-packages" in package.parts else [str(package)]
    # The project's settings (pyproject.toml) when checking the source tree: they
    # skip following optional extras such as pipecat, which is slow.
    pyproject = package.parent / "pyproject.toml"
    config = ["--config-file", str(pyproject)] if pyproject.exists() else []
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports", *config,
         "--cache-dir", str(tmp_path / "cache"), *target],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_compiled_module_ships_a_stub():
    core = pathlib.Path(piopiy_fast.__file__).parent / "_core"
    compiled = {p.name.split(".")[0] for p in core.glob("*.so")} | {
        p.name.split(".")[0] for p in core.glob("*.pyd")}
    stubs = {p.stem for p in core.glob("*.pyi")}
    # picows_listener is built only when picows was importable at build time.
    assert compiled - {"picows_listener"} == {
        "codec", "resample", "ringbuffer", "ingest", "delivery", "framesink", "readers",
        "vad"}
    assert compiled <= stubs
