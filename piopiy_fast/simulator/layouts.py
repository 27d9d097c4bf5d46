"""How ``mod_audio_stream`` lays out a call's audio in each binary message.

The module's media bug reads the leg's READ stream (what the bugged party, the
caller, says) and, for ``mixed`` and ``stereo``, its WRITE stream (what that party
hears: the callee). FreeSWITCH's ``switch_core_media_bug_read`` then gives:

- ``mono``: the READ stream alone;
- ``mixed``: READ + WRITE summed sample by sample and clamped to int16;
- ``stereo``: two channels interleaved sample by sample, READ on channel 0.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LAYOUTS", "channel_names", "frame_bytes"]

LAYOUTS = ("mono", "mixed", "stereo")


def channel_names(layout: str, party: str = "caller") -> tuple[str, ...]:
    """What the channels of ``layout`` hold, in order (``party``: whose leg ``mono``
    reads)."""
    if layout == "mono":
        return (party,)
    if layout == "mixed":
        return ("mixed",)
    if layout == "stereo":
        return ("caller", "callee")
    raise ValueError(f"invalid mix type: {layout}, must be mono, mixed, or stereo")


def frame_bytes(layout: str, read: np.ndarray, write: np.ndarray | None = None) -> bytes:
    """One message of L16: ``read`` (and ``write``, same length) in ``layout``."""
    if layout == "mono":
        return np.asarray(read, dtype="<i2").tobytes()
    assert write is not None and len(write) == len(read)
    if layout == "mixed":
        total = read.astype(np.int32) + write.astype(np.int32)
        return np.clip(total, -32768, 32767).astype("<i2").tobytes()
    pairs = np.empty((len(read), 2), dtype="<i2")
    pairs[:, 0] = read
    pairs[:, 1] = write
    return pairs.tobytes()
