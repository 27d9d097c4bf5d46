"""The native detector's two ways through a frame: a stereo frame read in one pass over
its pairs must decide exactly as each channel read on its own does."""
from __future__ import annotations

import numpy as np
import pytest

from piopiy_fast.audio import VoiceActivity
from piopiy_fast.simulator.conversation import default_script, scripted


@pytest.mark.parametrize("frame_samples", [160, 7, 333])
def test_stereo_in_one_pass_equals_each_channel_alone(frame_samples):
    conv = scripted(default_script(6.0, 9), 8000, 6.0, seed=9)
    caller, callee = conv.party("caller"), conv.party("callee")
    caller = caller.copy()
    caller[4000:4010] = 32767  # a few samples at full scale
    pairs = np.stack([caller, callee], axis=1).ravel().astype("<i2").tobytes()
    both_events, alone_events = [], []
    both = VoiceActivity(8000, 2, 16000, lambda *e: both_events.append(e))
    alone = [VoiceActivity(8000, 1, 16000, lambda c, s, at, ch=ch: alone_events.append((ch, s, at)))
             for ch in (0, 1)]
    step = frame_samples * 4
    for i in range(0, len(pairs), step):
        both.feed(pairs[i:i + step])
    for ch, party in enumerate((caller, callee)):
        data = party.astype("<i2").tobytes()
        for i in range(0, len(data), step // 2):
            alone[ch].feed(data[i:i + step // 2])
    assert sorted(both_events) == sorted(alone_events)
    assert len(both_events) >= 4  # speech starts and ends on both parties
    for ch in (0, 1):
        assert both.levels(ch) == alone[ch].levels(0)
    assert both.levels(0)["clipped"] == 10
