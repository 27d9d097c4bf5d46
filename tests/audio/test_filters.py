"""The filters shipped in the core are the design, value for value, and running the
core needs neither scipy nor anything of the package above it."""
import subprocess
import sys

import numpy as np
import pytest

from piopiy_fast._core import filter_design
from piopiy_fast._core.resample import filter_taps, ratio
from piopiy_fast.audio import QUALITIES, RATES
from piopiy_fast.audio.filters import filter_for
from piopiy_fast.errors import PiopiyValidationError
from piopiy_fast.stream.wire import SAMPLE_RATES


@pytest.mark.parametrize("in_rate,out_rate,quality", filter_design.every_filter())
def test_the_shipped_taps_are_the_design_value_for_value(in_rate, out_rate, quality):
    shipped = filter_taps(in_rate, out_rate, quality)
    designed = filter_design.design_taps(in_rate, out_rate, quality)
    assert shipped.dtype == designed.dtype == np.float64
    # The resampler runs float32 taps: those are the design's, bit for bit. The double
    # design itself may differ in its last bits where the wheel was built on another
    # machine than this test runs on (another CPU's libm and BLAS).
    assert shipped.astype(np.float32).tobytes() == designed.astype(np.float32).tobytes()
    assert np.max(np.abs(shipped - designed)) <= 4 * np.finfo(np.float64).eps * np.max(
        np.abs(designed))


def test_every_rate_pair_and_preset_is_shipped():
    assert RATES == filter_design.RATES == SAMPLE_RATES
    assert QUALITIES == filter_design.QUALITIES
    assert len(filter_design.every_filter()) == len(RATES) * (len(RATES) - 1) * len(QUALITIES)


def test_a_shipped_filter_is_read_only_and_knows_where_it_runs():
    spec = filter_for(12000, 32000, "strict")
    assert (spec.up, spec.down) == ratio(12000, 32000) == (8, 3)
    assert len(spec.taps) % 2 == 1 and spec.center == (len(spec.taps) - 1) // 2
    with pytest.raises(ValueError):
        spec.taps[0] = 1.0


@pytest.mark.parametrize("args,message", [
    ((8000, 8000), "no filter for 8000 -> 8000"),
    ((8000, 11025), "out_rate must be one of"),
    ((8000, 16000, "best"), "quality must be one of"),
])
def test_asking_for_a_filter_that_does_not_exist_says_so(args, message):
    with pytest.raises(PiopiyValidationError, match=message):
        filter_for(*args)


def _loaded_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_the_audio_layer_and_its_resamplers_run_without_scipy():
    loaded = _loaded_after(
        "import numpy as np\n"
        "import piopiy_fast.audio as audio\n"
        "from piopiy_fast.audio.filters import filter_for\n"
        "filter_for(8000, 16000)\n"
        "r = audio.Resampler(8000, 16000, 2, quality='strict')\n"
        "r.process(np.zeros((320, 2), np.int16)); r.flush()\n"
        "audio.resample(np.zeros(160, np.float32), 48000, 8000)\n"
        "call = audio.CallIngest(8000, 2, 16000, encoding='pcmu')\n"
        "call.ingest(bytes(320)); call.flush()\n")
    assert "piopiy_fast.audio" in loaded and "numpy" in loaded  # the probe can see
    assert not {m for m in loaded if m == "scipy" or m.startswith("scipy.")}


def test_the_compiled_core_imports_nothing_of_the_package_above_it():
    loaded = _loaded_after(
        "import piopiy_fast._core.codec, piopiy_fast._core.resample\n"
        "import piopiy_fast._core.ringbuffer, piopiy_fast._core.ingest\n"
        "import piopiy_fast._core.framesink, piopiy_fast._core.readers\n"
        "from piopiy_fast._core.resample import Resampler\n"
        "try:\n"
        "    Resampler(8000, 11025)\n"
        "except ValueError as exc:\n"
        "    assert type(exc) is ValueError, type(exc)\n")
    assert "piopiy_fast._core.resample" in loaded
    above = {m for m in loaded if m.startswith("piopiy_fast.")
             and not m.startswith("piopiy_fast._core")}
    assert above == set()


def test_through_the_audio_layer_the_core_raises_the_package_errors():
    from piopiy_fast.audio import CallIngest, l16_to_int16
    from piopiy_fast.errors import FrameError
    with pytest.raises(PiopiyValidationError, match="source_rate must be one of"):
        CallIngest(11025, 1, 16000)
    with pytest.raises(FrameError):
        l16_to_int16(b"\x00")
