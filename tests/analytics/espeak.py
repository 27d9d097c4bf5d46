"""Two-party conversations of real speech: phrases spoken by espeak-ng, placed on a
scripted timeline (with overlaps and silences), each turn's truth being the extent of
its phrase's sound."""

import subprocess
from pathlib import Path

import numpy as np

from piopiy_fast.simulator.conversation import Conversation, Turn
from piopiy_fast.simulator.wavfile import load_wav
from tests.services import program

VOICES = {"caller": "en-us", "callee": "en-gb"}
# A few phrases of a support call; one per turn.
PHRASES = [
    "Hello, thank you for calling, how can I help you today?",
    "Hi, I would like to check the status of my order, please.",
    "Of course, could you give me the order number?",
    "It is four five seven, two two one.",
    "Thank you, one moment while I look that up.",
    "Sure, no problem.",
    "Your order shipped yesterday and arrives on Friday.",
    "That is great news, thanks a lot.",
]
NOISE_RMS = 6.0


def phrase(text, voice, rate, directory):
    """The phrase as int16 at ``rate``, its silence trimmed, about -20 dBFS RMS."""
    espeak = program("espeak-ng", "apt-get install -y espeak-ng")
    path = Path(directory) / f"{abs(hash((text, voice)))}.wav"
    if not path.exists():
        subprocess.run([espeak, "-v", voice, "-s", "165", "-w", str(path), text], check=True,
                       capture_output=True)
    samples = load_wav(path, rate)[0].astype(np.float64)
    loud = np.nonzero(np.abs(samples) > 200)[0]
    samples = samples[loud[0]:loud[-1] + 1]
    samples *= 3276.8 / np.sqrt(np.mean(samples ** 2))
    return np.clip(samples, -32768, 32767)


def conversation(script, rate, directory, seconds=None, seed=0):
    """``script``: ``(party, start_seconds, phrase_index)`` turns. Each turn lasts as long
    as its phrase; returns the Conversation with those turns as the truth."""
    clips = [(party, int(round(start * rate)),
              phrase(PHRASES[index], VOICES[party], rate, directory))
             for party, start, index in script]
    end = max(a + len(c) for _, a, c in clips)
    n = int(round(seconds * rate)) if seconds else end + rate // 2
    rng = np.random.default_rng(seed)
    lines = {p: rng.normal(0.0, NOISE_RMS, n) for p in VOICES}
    turns = []
    for party, a, clip in clips:
        lines[party][a:a + len(clip)] += clip
        turns.append(Turn(party, a, a + len(clip)))
    caller, callee = (np.clip(np.rint(lines[p]), -32768, 32767).astype(np.int16)
                      for p in ("caller", "callee"))
    return Conversation(rate, caller, callee, tuple(sorted(turns, key=lambda t: t.start)))


# Turns, pauses and overlaps: the callee cuts in twice, the caller once, and one
# silence of 6 s (over the 5 s threshold) and one of 2 s (under it).
SCRIPT = [
    ("callee", 0.5, 0),
    ("caller", 4.2, 1),    # after the greeting
    ("callee", 6.3, 2),    # cuts in on the caller (about 1.5 s of overlap)
    ("caller", 10.0, 3),
    ("callee", 13.0, 4),
    ("caller", 21.5, 5),   # after a 6 s silence
    ("callee", 23.5, 6),
    ("caller", 24.8, 7),   # cuts in on the callee
]
