"""The names of everything a benchmark run records: each figure's key is built here, by
one function, and the benchmarks that write a figure and the verdict rows that read it
both call that function, so no key is spelled twice.

A key reads ``family/case/contender`` (``frame/both-8k-16k-l16/soxr-hq``); the names
below are the cases and contenders the benchmarks parametrize over, and they are what
saved runs (``.benchmarks/piopiy_fast-*.json``) and pytest-benchmark's test ids show.
"""
from __future__ import annotations

from typing import NamedTuple

# -- contenders ------------------------------------------------------------------------------

OURS = "ours"
OURS_STRICT = "ours-strict"  # the per-frame pipeline with the strict preset
SPEECH = "speech"  # our bulk resampler's presets
STRICT = "strict"
SOXR_HQ = "soxr-hq"
SOXR_MQ = "soxr-mq"
SOXR_QQ = "soxr-qq"
SCIPY = "scipy"
AUDIOOP = "audioop"
NUMPY_LUT = "numpy-lut"
NUMPY_SLICING = "numpy-slicing"
DEQUE = "deque"
QUEUE = "queue"
KEEP_GIL = "keep-gil"  # the ring beside a busy thread: the default GIL handling
RELEASE_EVERY_CALL = "release-every-call"

# Voice activity and call analytics (bench_analytics.py), per headline frame.
VAD = "ours-vad"  # the native detector on both channels
VAD_METRICS = "ours-vad-metrics"  # the detector feeding a call's analytics
WEBRTC = "webrtcvad"
SILERO = "silero-onnx"

# The end-to-end servers (harness/e2e.py starts them).
BASELINE = "baseline"  # the hand-rolled receiver
DEFAULT = "default"  # StreamServer, default transport
PICOWS = "picows"  # StreamServer, picows on uvloop
WEBSOCKETS = "websockets"  # StreamServer, websockets transport
DISCARD_WEBSOCKETS = "discard-websockets"  # the transport libraries alone
DISCARD_PICOWS = "discard-picows"
PUBLISHING = "picows-publish"  # StreamServer on picows, publishing to NATS JetStream
ASGI_UVICORN = "asgi-uvicorn"  # StreamServer inside a Starlette app under uvicorn
AIOHTTP = "aiohttp"  # StreamServer inside an aiohttp application

# -- cases -----------------------------------------------------------------------------------


class FrameCase(NamedTuple):
    """One pipeline Piopiy can send: listen mode, source and target rate, codec."""

    mode: str  # caller, callee or both
    source: int
    target: int
    codec: str  # l16 or pcmu

    @property
    def channels(self) -> int:
        return 2 if self.mode == "both" else 1

    @property
    def id(self) -> str:
        return f"{self.mode}-{self.source // 1000}k-{self.target // 1000}k-{self.codec}"


FRAME_CASES = tuple(FrameCase(mode, source, target, codec)
                    for codec in ("l16", "pcmu")
                    for mode in ("caller", "callee", "both")
                    for source in (8000, 12000, 16000)
                    for target in (16000, 8000))
HEADLINE = FrameCase("both", 8000, 16000, "l16")


class RatePair(NamedTuple):
    source: int
    target: int

    @property
    def id(self) -> str:
        return f"{self.source // 1000}k-{self.target // 1000}k"


RATE_PAIRS = (RatePair(8000, 16000), RatePair(16000, 8000), RatePair(12000, 16000),
              RatePair(48000, 16000))
# Resampling quality, in dB: rejection of a tone 0.52 and 0.56 x the lower rate, and the
# passband ripple.
REJECTION_052 = "rejection_052"
REJECTION_056 = "rejection_056"
RIPPLE = "ripple"
QUALITY_MEASURES = (REJECTION_052, REJECTION_056, RIPPLE)

G711_OPS = ("ulaw-decode", "ulaw-encode", "alaw-decode", "alaw-encode")
DEINTERLEAVE_1S = "deinterleave-1s"
DEINTERLEAVE_20MS = "deinterleave-20ms"

RING_ONE_THREAD = "one-thread"
RING_PAIR = "pair"  # producer thread -> consumer thread
RING_BUSY = "busy"  # beside a busy Python thread

# -- figures ---------------------------------------------------------------------------------


def frame(case: FrameCase, contender: str) -> str:
    """Seconds per 20 ms frame, received to readable."""
    return f"frame/{case.id}/{contender}"


def frame_busy(contender: str) -> str:
    """Seconds per headline frame beside a busy Python thread."""
    return f"frame-busy/{contender}"


def bulk(pair: RatePair, contender: str) -> str:
    """Seconds to resample the bulk signal."""
    return f"bulk/{pair.id}/{contender}"


def quality(pair: RatePair, contender: str, measure: str) -> str:
    """One of QUALITY_MEASURES, in dB."""
    return f"quality/{pair.id}/{contender}/{measure}"


def codec(op: str, contender: str) -> str:
    """Seconds per call of a G.711 op or a de-interleave."""
    return f"codec/{op}/{contender}"


def ring(setting: str, contender: str) -> str:
    """Seconds per 20 ms frame through a ring (or its stand-in)."""
    return f"ring/{setting}/{contender}"


def memory_native(contender: str) -> str:
    """KiB of native state per call."""
    return f"memory/native/{contender}"


def memory_server(server: str) -> str:
    """KiB a server process grows per live call."""
    return f"memory/server/{server}"


def paced(server: str) -> str:
    """Server CPU seconds per received frame, 200 paced calls."""
    return f"paced/{server}"


def paced_p99(server: str) -> str:
    """p99 frame latency in ms, 200 paced calls."""
    return f"paced-p99/{server}"


def paced_p99_limit(server: str) -> str:
    """The latency limit in ms that server is held to."""
    return f"paced-p99-limit/{server}"


def web_app(server: str) -> str:
    """Server CPU seconds per received frame, 200 paced calls, in the web-app
    benchmark's own rounds (the adapters and the native transports side by side)."""
    return f"web-app/{server}"


def burst(server: str) -> str:
    """Server CPU seconds per received frame in bursts."""
    return f"burst/{server}"


def capacity(server: str) -> str:
    """Real-time calls one core holds."""
    return f"capacity/{server}"


def capacity_p99(server: str) -> str:
    """p99 frame latency in ms at the capacity found."""
    return f"capacity-p99/{server}"


def bus_paced(server: str) -> str:
    """Server CPU µs per received frame, paced, publishing to the bus (PUBLISHING) or
    reading the calls itself (PICOWS), at the bus benchmark's call count."""
    return f"bus-paced/{server}"


def bus_capacity() -> str:
    """Real-time calls one core holds while publishing every call."""
    return f"bus-capacity/{PUBLISHING}"


def bus_p99() -> str:
    """p99 ms from the arrival of the frame that completes a chunk to a bus worker's
    reader returning the chunk."""
    return f"bus-p99/{PUBLISHING}"


def bus_p99_limit() -> str:
    return f"bus-p99-limit/{PUBLISHING}"


def capacity_workers(count: int) -> str:
    """Real-time calls ``count`` workers sharing a port hold."""
    return f"capacity-workers/{count}"


def analytics(contender: str) -> str:
    """Seconds per headline frame (20 ms, both channels, 8 kHz): the fused ingest
    (``OURS``), the native detector, the detector with the metrics, the references."""
    return f"analytics/{HEADLINE.id}/{contender}"


# -- series (for the plots and the noise line) -----------------------------------------------

SERIES_PER_FRAME = "per_frame"
SERIES_BULK = "bulk"
SERIES_PACED = "paced"  # every paced hold, as e2e.Hold.as_dict()
SERIES_CAPACITY = "capacity"  # every hold of the capacity searches
SERIES_CAPACITY_WORKERS = "capacity-workers"
