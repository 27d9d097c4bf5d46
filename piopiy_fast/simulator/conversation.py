"""A two-party call with known turns: who speaks when, in samples, and the audio.

A script is a list of turns ``(party, start, end)`` in seconds; each turn is filled
with speech-like audio of that party's voice, and the rest of each party's line with
faint line noise. :func:`default_script` makes a natural exchange: turns of 1-3.5 s
taking turns, short gaps, and now and then a brief overlap (a reply that starts
before the other finishes), so the parties talk over each other a few percent of the
time, not most of it. The turns are the ground truth tests check a receiver against.

Real speech instead: :func:`from_wav` takes a stereo WAV (left the caller, right the
callee; a mono file is the caller with a silent callee); its turns are not known.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import PiopiyValidationError
from .synthetic import speech_like
from .wavfile import load_wav

__all__ = ["PARTIES", "Conversation", "Turn", "default_script", "from_wav", "parse_script",
           "scripted"]

PARTIES = ("caller", "callee")
NOISE_RMS = 6.0  # int16 units: about -75 dBFS, a quiet line


@dataclass(frozen=True)
class Turn:
    """``party`` speaks from sample ``start`` to ``end`` (exclusive)."""

    party: str
    start: int
    end: int


@dataclass(frozen=True)
class Conversation:
    """Both parties' audio at ``rate`` (equal lengths) and the turns, when known."""

    rate: int
    caller: np.ndarray
    callee: np.ndarray
    turns: tuple[Turn, ...] = ()
    turns_known: bool = True

    def __post_init__(self) -> None:
        if len(self.caller) != len(self.callee):
            raise ValueError("both parties need the same number of samples")

    @property
    def samples(self) -> int:
        return len(self.caller)

    def party(self, name: str) -> np.ndarray:
        """The audio of ``caller`` or ``callee``."""
        if name not in PARTIES:
            raise PiopiyValidationError(f"party must be caller or callee, not {name!r}")
        return self.caller if name == "caller" else self.callee

    def speaking(self, party: str) -> np.ndarray:
        """A bool per sample: ``party`` is in one of its turns."""
        mask = np.zeros(self.samples, dtype=bool)
        for turn in self.turns:
            if turn.party == party:
                mask[turn.start:turn.end] = True
        return mask

    def overlap_fraction(self) -> float:
        """Of the time anyone speaks, the part both do."""
        a, b = self.speaking("caller"), self.speaking("callee")
        anyone = int(np.count_nonzero(a | b))
        return int(np.count_nonzero(a & b)) / anyone if anyone else 0.0


def default_script(seconds: float, seed: int | tuple[int, ...] = 0,
                   first: str = "caller") -> list[tuple[str, float, float]]:
    """A natural exchange filling ``seconds``: alternating turns with gaps, ~15 % of
    replies starting up to 0.4 s early (an overlap), and a pause now and then."""
    rng = np.random.default_rng(seed)
    script: list[tuple[str, float, float]] = []
    party = first
    t = float(rng.uniform(0.1, 0.4))
    while t < seconds - 0.3:
        end = min(seconds, t + float(rng.uniform(1.0, 3.5)))
        script.append((party, round(t, 3), round(end, 3)))
        party = "callee" if party == "caller" else "caller"
        if rng.random() < 0.15:
            t = end - float(rng.uniform(0.15, 0.4))  # a reply over the last words
        elif rng.random() < 0.1:
            t = end + float(rng.uniform(1.0, 2.0))  # a pause: nobody speaks
        else:
            t = end + float(rng.uniform(0.2, 0.7))
    return script


def parse_script(text: str) -> list[tuple[str, float, float]]:
    """``"caller:0-2.5,callee:2.8-5"`` as turns.

    Raises:
        PiopiyValidationError: a malformed turn, an unknown party or an empty turn.
    """
    turns = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        party, sep, span = item.partition(":")
        start, dash, end = span.partition("-")
        try:
            if not sep or not dash:
                raise ValueError
            turns.append((party.strip(), float(start), float(end)))
        except ValueError:
            raise PiopiyValidationError(
                f"a turn is PARTY:START-END in seconds (caller:0-2.5), not {item!r}") from None
    return turns


def scripted(script: Iterable[tuple[str, float, float]], rate: int, seconds: float | None = None,
             seed: int | tuple[int, ...] = 0) -> Conversation:
    """The conversation ``script`` describes, ``seconds`` long (the last turn's end when
    None), each turn in its party's own voice.

    Raises:
        PiopiyValidationError: an unknown party, or a turn that ends before it starts.
    """
    turns_s = list(script)
    for party, start, end in turns_s:
        if party not in PARTIES:
            raise PiopiyValidationError(f"a turn's party must be caller or callee, not {party!r}")
        if not 0 <= start < end:
            raise PiopiyValidationError(f"a turn must end after it starts: {start}-{end}")
    length = seconds if seconds is not None else max((e for _, _, e in turns_s), default=0.0)
    n = int(round(length * rate))
    base = seed if isinstance(seed, tuple) else (seed,)
    noise = np.random.default_rng((*base, 7))
    lines = {p: noise.normal(0.0, NOISE_RMS, n) for p in PARTIES}
    turns = []
    for index, (party, start, end) in enumerate(turns_s):
        a, b = int(round(start * rate)), min(n, int(round(end * rate)))
        if a >= b:
            continue
        # Seeded by party and turn: the same script gives the same audio.
        voice = speech_like((b - a) / rate, rate, (*base, PARTIES.index(party), index))
        lines[party][a:b] += voice[: b - a]
        turns.append(Turn(party, a, b))
    caller, callee = (np.clip(np.rint(lines[p]), -32768, 32767).astype(np.int16)
                      for p in PARTIES)
    return Conversation(rate, caller, callee, tuple(turns))


def from_wav(path: str | Path, rate: int, seconds: float | None = None) -> Conversation:
    """Real speech: a stereo WAV's left channel as the caller, right as the callee (a
    mono WAV: the caller, with a silent callee), at ``rate``; turns unknown."""
    channels: Sequence[np.ndarray] = load_wav(path, rate, seconds)
    caller = channels[0]
    callee = channels[1] if len(channels) > 1 else np.zeros_like(caller)
    return Conversation(rate, caller, callee, (), turns_known=False)
