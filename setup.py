"""The compiled core: one extension module per .pyx in piopiy_fast/_core/ (beside its
.pxd declarations and .pyi stub); the C they include is in src_cy/.

Build switches (environment):
  PIOPIY_FAST_DEBUG=1     -O0 -g and Cython bounds/wraparound checks on
  PIOPIY_FAST_ANNOTATE=1  write Cython's HTML annotation next to each .pyx
  PIOPIY_FAST_WERROR=1    turn compiler warnings into errors

Cross-compiling (tools/build_wheels.py sets these; CC, LDSHARED and
SETUPTOOLS_EXT_SUFFIX do the rest):
  PIOPIY_FAST_PYTHON_INCLUDE  the target's CPython headers, searched before this
                              Python's (pyconfig.h differs between architectures)
  PIOPIY_FAST_NUMPY_INCLUDE   the target's numpy C headers, instead of this numpy's

picows_listener, the picows transport's frame path, is compiled against picows'
Cython declarations, so it is built only when picows can be imported here (it is a
build requirement in pyproject.toml, so an isolated build always has it; a build
without isolation may not). What was built is written to piopiy_fast/_core/build.json,
which ships in the wheel; without the module, the transport uses its Python listener.

The resampler's filters are designed here, at build time, by
piopiy_fast/_core/filter_design.py (scipy, a build requirement) and compiled into the
resampler from the generated src_cy/include/pf_filter_taps.h: at run time nothing
designs them and scipy is not needed.
"""
import glob
import importlib.util
import json
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

MODULES = ["codec", "resample", "ringbuffer", "ingest", "delivery", "vad", "framesink", "readers"]
# C kernels linked into the module that calls them.
C_SOURCES = {"resample": ["src_cy/kernels/fir.c", "src_cy/kernels/fir_generic.c",
                           "src_cy/kernels/fir_avx2.c", "src_cy/kernels/fir_neon.c"]}

TAPS_HEADER = "src_cy/include/pf_filter_taps.h"


def write_filter_taps():
    """Design every filter and write TAPS_HEADER, unless it already holds exactly that
    (so an unchanged design does not rebuild the resampler)."""
    try:
        import scipy
    except ImportError:
        if os.path.exists(TAPS_HEADER):
            print(f"scipy is not importable: keeping the existing {TAPS_HEADER}")
            return
        raise SystemExit("designing the resampler's filters needs scipy (a build requirement)")
    spec = importlib.util.spec_from_file_location(
        "filter_design", "piopiy_fast/_core/filter_design.py")
    design = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(design)
    text = design.c_header(f"piopiy_fast/_core/filter_design.py with scipy {scipy.__version__}")
    if os.path.exists(TAPS_HEADER):
        with open(TAPS_HEADER) as old:
            if old.read() == text:
                return
    with open(TAPS_HEADER, "w") as header:
        header.write(text)


write_filter_taps()

# Every module includes some of these: a change to one must rebuild them all,
# which setuptools only knows if it is told.
HEADERS = sorted(glob.glob("src_cy/include/*.h") + glob.glob("src_cy/kernels/*.h"))

debug = os.environ.get("PIOPIY_FAST_DEBUG") == "1"


def picows_version():
    """The picows release whose declarations (picows.pxd) this build can cimport, or None."""
    try:
        import picows
    except ImportError:
        return None
    if not os.path.exists(os.path.join(os.path.dirname(picows.__file__), "picows.pxd")):
        return None
    return picows.__version__


PICOWS = picows_version()
if PICOWS is not None:
    MODULES.append("picows_listener")
with open("piopiy_fast/_core/build.json", "w") as record:
    json.dump({"picows_listener": PICOWS}, record)
    record.write("\n")
# The listener checks at import that it runs with the picows release it was built for.
DEFINES = {"picows_listener": [("PF_PICOWS_VERSION", f'"{PICOWS}"')]}

# Portable flags only: per-CPU fast paths are chosen at run time inside the C
# kernels (target attributes + cpuid on x86, getauxval on AArch64),
# never with -march. -ffp-contract=off: no compiler fuses a multiply and an add
# into one FMA on its own (clang does by default, and AArch64 always has FMA), so
# the portable FIR loop gives the same bits with any compiler, and the NEON one
# the same bits as the portable one.
compile_args = ["-std=c11", "-ffp-contract=off", "-Wall", "-Wextra",
                "-Wno-unused-parameter", "-Wno-unused-function",
                "-Wno-missing-field-initializers"]
compile_args += ["-O0", "-g"] if debug else ["-O3", "-g0", "-DNDEBUG"]
if os.environ.get("PIOPIY_FAST_WERROR") == "1":
    compile_args.append("-Werror")

directives = {
    "language_level": 3,
    "embedsignature": True,
    "boundscheck": debug,
    "wraparound": debug,
    "initializedcheck": debug,
    "cdivision": True,
    "freethreading_compatible": False,
}

# A cross build's target headers come before this Python's own, which build_ext
# adds after these.
python_include = [os.environ["PIOPIY_FAST_PYTHON_INCLUDE"]] \
    if os.environ.get("PIOPIY_FAST_PYTHON_INCLUDE") else []
numpy_include = os.environ.get("PIOPIY_FAST_NUMPY_INCLUDE") or numpy.get_include()

extensions = [
    Extension(
        f"piopiy_fast._core.{name}",
        [f"piopiy_fast/_core/{name}.pyx", *C_SOURCES.get(name, [])],
        include_dirs=["src_cy/include", "src_cy/kernels", *python_include, numpy_include],
        depends=HEADERS,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
                       *DEFINES.get(name, [])],
        extra_compile_args=compile_args,
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["."],
        compiler_directives=directives,
        annotate=os.environ.get("PIOPIY_FAST_ANNOTATE") == "1",
    )
)
