"""The verdict table: which of our figures is judged against which baseline, and the
target each must meet. Every key comes from keys.py, which the benchmarks write through."""
from __future__ import annotations

from . import keys as k
from .rows import Entry, Limit, Ratio, Section, Spread, Worst

HAND_ROLLED = "hand-rolled"  # websockets + numpy + 2 soxr HQ streams per call
PICOWS_ON_ITS_PORT = "picows"  # StreamServer on its own port, the default transport
WEBSOCKETS_ON_ITS_PORT = "websockets"

LEGEND = [
    "hand-rolled: a plain websockets server doing numpy de-interleave + 2 soxr "
    "ResampleStream (HQ) per frame.",
    "numpy+scipy: scipy.signal.resample_poly per frame. Paced: each call one 20 ms `both` "
    "8 kHz frame every 20 ms. Latency: due -> readable by the application; its limit is "
    "20 ms beyond the delay a server adds on purpose (ours wakes readers every `latency`, "
    "50 ms by default, and may read a socket `coalesce_reads` late, 5 ms by default).",
]


def frame_pairs(ours: str, base: str) -> tuple[tuple[str, str], ...]:
    return tuple((k.frame(case, ours), k.frame(case, base)) for case in k.FRAME_CASES)


def bulk_pairs(ours: str, base: str) -> tuple[tuple[str, str], ...]:
    return tuple((k.bulk(pair, ours), k.bulk(pair, base)) for pair in k.RATE_PAIRS)


def lowest(contender: str, measure: str) -> Worst:
    """The worst rejection over the rate pairs."""
    return Worst(tuple(k.quality(p, contender, measure) for p in k.RATE_PAIRS), min)


def highest(contender: str, measure: str) -> Worst:
    """The worst ripple over the rate pairs."""
    return Worst(tuple(k.quality(p, contender, measure) for p in k.RATE_PAIRS), max)


ROWS: list[Entry] = [
    Section("per-frame ingest: one 20 ms frame to readable channels"),
    Ratio("both 8k -> 2x16k L16", k.frame(k.HEADLINE, k.OURS), k.frame(k.HEADLINE, k.SOXR_HQ),
          "numpy+2 soxr HQ", "<=", 0.25),
    Ratio("the same, strict preset", k.frame(k.HEADLINE, k.OURS_STRICT),
          k.frame(k.HEADLINE, k.SOXR_HQ), "numpy+2 soxr HQ"),
    Ratio("both 8k -> 2x16k L16 vs soxr QQ", k.frame(k.HEADLINE, k.OURS),
          k.frame(k.HEADLINE, k.SOXR_QQ), "numpy+2 soxr QQ"),
    Ratio("both 8k -> 2x16k L16 vs scipy", k.frame(k.HEADLINE, k.OURS),
          k.frame(k.HEADLINE, k.SCIPY), "numpy+scipy"),
    Ratio("the same, beside a busy Python thread", k.frame_busy(k.OURS),
          k.frame_busy(k.SOXR_HQ), "numpy+2 soxr HQ"),
    Spread("all pipelines vs soxr HQ (geomean)", frame_pairs(k.OURS, k.SOXR_HQ),
           "numpy+soxr HQ"),
    Spread("all pipelines vs soxr QQ (geomean)", frame_pairs(k.OURS, k.SOXR_QQ),
           "numpy+soxr QQ"),
    Spread("all pipelines vs scipy (geomean)", frame_pairs(k.OURS, k.SCIPY), "numpy+scipy"),

    Section("voice activity and call analytics, per 20 ms frame, both 8k"),
    Ratio("native VAD, both channels", k.analytics(k.VAD), k.analytics(k.OURS),
          "fused ingest", "<=", 0.25),
    Ratio("native VAD + metrics", k.analytics(k.VAD_METRICS), k.analytics(k.OURS),
          "fused ingest", "<=", 0.25),
    Ratio("native VAD vs webrtcvad", k.analytics(k.VAD), k.analytics(k.WEBRTC), "webrtcvad"),
    Ratio("native VAD vs Silero (onnxruntime)", k.analytics(k.VAD), k.analytics(k.SILERO),
          "Silero"),

    Section("bulk resampling, mono float32 (speed)"),
    *(Ratio(f"{pair.id}, speech", k.bulk(pair, k.SPEECH), k.bulk(pair, k.SOXR_MQ), "soxr MQ",
            "<=", 1.0) for pair in k.RATE_PAIRS),
    Spread("strict vs soxr HQ (geomean)", bulk_pairs(k.STRICT, k.SOXR_HQ), "soxr HQ"),
    Spread("speech vs scipy (geomean)", bulk_pairs(k.SPEECH, k.SCIPY), "scipy"),

    Section("resampling quality, worst rate pair"),
    Limit("speech: rejection, 0.56 x low rate", lowest(k.SPEECH, k.REJECTION_056), ">=", 90.0,
          lowest(k.SOXR_MQ, k.REJECTION_056), "soxr MQ", show_ratio=False),
    Limit("speech: passband ripple to 0.45", highest(k.SPEECH, k.RIPPLE), "<=", 0.1,
          highest(k.SOXR_MQ, k.RIPPLE), "soxr MQ", show_ratio=False),
    Limit("speech: 0.52 x low rate (transition)", lowest(k.SPEECH, k.REJECTION_052), None, None,
          lowest(k.SOXR_MQ, k.REJECTION_052), "soxr MQ", show_ratio=False),
    Limit("strict: rejection, 0.52 x low rate", lowest(k.STRICT, k.REJECTION_052), ">=", 90.0,
          lowest(k.SOXR_HQ, k.REJECTION_052), "soxr HQ", show_ratio=False),
    Limit("strict: passband ripple to 0.45", highest(k.STRICT, k.RIPPLE), "<=", 0.1,
          highest(k.SOXR_HQ, k.RIPPLE), "soxr HQ", show_ratio=False),

    Section("codecs"),
    *(Ratio(f"G.711 {op.replace('-', ' ')}, 1 s", k.codec(op, k.OURS), k.codec(op, k.NUMPY_LUT),
            "numpy LUT") for op in k.G711_OPS),
    Spread("G.711 vs audioop (geomean)",
           tuple((k.codec(op, k.OURS), k.codec(op, k.AUDIOOP)) for op in k.G711_OPS),
           "audioop"),
    Ratio("L16 de-interleave, both, 1 s", k.codec(k.DEINTERLEAVE_1S, k.OURS),
          k.codec(k.DEINTERLEAVE_1S, k.NUMPY_SLICING), "numpy slicing"),
    Ratio("L16 de-interleave, both, 20 ms", k.codec(k.DEINTERLEAVE_20MS, k.OURS),
          k.codec(k.DEINTERLEAVE_20MS, k.NUMPY_SLICING), "numpy slicing"),

    Section("ring buffer, 20 ms frames"),
    Ratio("write + read, one thread", k.ring(k.RING_ONE_THREAD, k.OURS),
          k.ring(k.RING_ONE_THREAD, k.DEQUE), "deque"),
    Ratio("write + read, one thread", k.ring(k.RING_ONE_THREAD, k.OURS),
          k.ring(k.RING_ONE_THREAD, k.QUEUE), "queue.Queue"),
    Ratio("producer -> consumer thread, per frame", k.ring(k.RING_PAIR, k.OURS),
          k.ring(k.RING_PAIR, k.DEQUE), "deque"),
    Ratio("producer -> consumer thread, per frame", k.ring(k.RING_PAIR, k.OURS),
          k.ring(k.RING_PAIR, k.QUEUE), "queue.Queue"),
    Ratio("write + read beside a busy thread", k.ring(k.RING_BUSY, k.KEEP_GIL),
          k.ring(k.RING_BUSY, k.RELEASE_EVERY_CALL), "GIL freed/call"),

    Section("memory per live call, both 8k -> 16k, rings excluded"),
    Limit("native state (CallIngest)", k.memory_native(k.OURS), "<=", 64.0,
          k.memory_native(k.SOXR_HQ), "2 soxr HQ"),
    Limit("server process, picows (the default)", k.memory_server(k.PICOWS), "<=", 64.0,
          k.memory_server(k.BASELINE), HAND_ROLLED),
    Limit("server process, websockets transport", k.memory_server(k.WEBSOCKETS), "<=", 64.0,
          k.memory_server(k.BASELINE), HAND_ROLLED),

    Section("end to end: server CPU per received frame (one core)"),
    Ratio("paced, 200 calls, picows on uvloop", k.paced(k.PICOWS), k.paced(k.BASELINE),
          HAND_ROLLED, "<=", 0.33, moonshot=0.25),
    Ratio("paced, 200 calls, default transport", k.paced(k.DEFAULT), k.paced(k.BASELINE),
          HAND_ROLLED, "<=", 0.5),
    Limit("p99 latency, 200 calls, picows", k.paced_p99(k.PICOWS), "<=",
          k.paced_p99_limit(k.PICOWS), k.paced_p99(k.BASELINE), HAND_ROLLED),
    Limit("p99 latency, 200 calls, default", k.paced_p99(k.DEFAULT), "<=",
          k.paced_p99_limit(k.DEFAULT), k.paced_p99(k.BASELINE), HAND_ROLLED),
    Ratio("paced, 200 calls, websockets transport", k.paced(k.WEBSOCKETS), k.paced(k.BASELINE),
          HAND_ROLLED),
    Ratio("floor: picows on uvloop, discard", k.paced(k.DISCARD_PICOWS), k.paced(k.BASELINE),
          HAND_ROLLED),
    Ratio("floor: websockets, discard", k.paced(k.DISCARD_WEBSOCKETS), k.paced(k.BASELINE),
          HAND_ROLLED),
    Ratio("bursts, picows on uvloop", k.burst(k.PICOWS), k.burst(k.BASELINE), HAND_ROLLED),
    Ratio("bursts, default transport", k.burst(k.DEFAULT), k.burst(k.BASELINE), HAND_ROLLED),
    Ratio("bursts, websockets transport", k.burst(k.WEBSOCKETS), k.burst(k.BASELINE),
          HAND_ROLLED),

    Section("inside a web app: server CPU per received frame, 200 paced calls, one run"),
    Ratio("ASGI adapter, Starlette on uvicorn", k.web_app(k.ASGI_UVICORN), k.web_app(k.PICOWS),
          PICOWS_ON_ITS_PORT),
    Ratio("ASGI adapter, Starlette on uvicorn", k.web_app(k.ASGI_UVICORN),
          k.web_app(k.WEBSOCKETS), WEBSOCKETS_ON_ITS_PORT),
    Ratio("aiohttp adapter", k.web_app(k.AIOHTTP), k.web_app(k.PICOWS), PICOWS_ON_ITS_PORT),
    Ratio("aiohttp adapter", k.web_app(k.AIOHTTP), k.web_app(k.WEBSOCKETS),
          WEBSOCKETS_ON_ITS_PORT),

    Section("capacity: real-time calls one core holds (0 lost, p99 < 20 ms + delivery)"),
    Ratio("picows on uvloop", k.capacity(k.PICOWS), k.capacity(k.BASELINE), HAND_ROLLED,
          ">=", 3.0, moonshot=4.0),
    Section("message bus: publishing every call to NATS JetStream (one core)"),
    Ratio("CPU per frame, publishing", k.bus_paced(k.PUBLISHING), k.bus_paced(k.PICOWS),
          "reading locally", "<=", 1.5),
    Limit("calls one core holds, publishing", k.bus_capacity(), None, None),
    Limit("p99 frame arrival -> worker's reader", k.bus_p99(), "<=", k.bus_p99_limit()),
    Section("capacity past one core: workers sharing a port, client unpinned"),
    Ratio("2 workers (serve --workers 2)", k.capacity_workers(2), k.capacity_workers(1),
          "1 worker", ">=", 1.8),
]
