"""The native codec and ingest fed arbitrary bytes, in arbitrary splits, at every rate,
channel count and encoding: nothing crashes, every frame is either used or counted as a
decode error, and what the rings hold equals the reference built from numpy.

Run many more examples, under AddressSanitizer, with PIOPIY_FAST_FUZZ_EXAMPLES (the
command is in SECURITY.md).
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from piopiy_fast.audio import (
    CallIngest,
    alaw_decode,
    deinterleave,
    l16_to_int16,
    resample,
    ulaw_decode,
)
from piopiy_fast.errors import FrameError

EXAMPLES = int(os.environ.get("PIOPIY_FAST_FUZZ_EXAMPLES", "200"))
RATES = (8000, 12000, 16000, 24000, 32000, 48000)
DECODE = {"l16": l16_to_int16, "pcmu": ulaw_decode, "pcma": alaw_decode}
fuzz = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@fuzz
@given(st.binary(max_size=4096))
def test_codec_decoders_take_any_bytes(data):
    for name, decode in DECODE.items():
        if name == "l16" and len(data) % 2:
            with pytest.raises(FrameError):
                decode(data)
            continue
        samples = decode(data)
        assert samples.dtype == np.int16
        assert samples.size == (len(data) // 2 if name == "l16" else len(data))


@fuzz
@given(st.sampled_from(RATES), st.sampled_from(RATES), st.sampled_from((1, 2)),
       st.sampled_from(tuple(DECODE)), st.lists(st.binary(max_size=1500), max_size=12))
def test_ingest_takes_any_frames(source, target, channels, encoding, frames):
    ingest = CallIngest(source, channels, target, encoding=encoding, ring_capacity=1 << 16)
    unit = (2 if encoding == "l16" else 1) * channels
    used = []
    for frame in frames:
        if len(frame) % unit:
            with pytest.raises(FrameError):
                ingest.ingest(frame)
        else:
            ingest.ingest(frame)
            used.append(frame)
    ingest.flush()
    assert ingest.frames + ingest.decode_errors == len(frames)
    assert ingest.decode_errors == len(frames) - len(used)
    assert ingest.bytes == sum(map(len, used))
    decoded = DECODE[encoding](b"".join(used))
    parts = deinterleave(decoded) if channels == 2 else (decoded,)
    for ring, part in zip(ingest.rings, parts, strict=True):
        expected = resample(np.ascontiguousarray(part), source, target)
        got = ring.read()
        assert np.array_equal(got, expected)
    ingest.close()
