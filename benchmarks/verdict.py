"""The verdict table: which of our figures is judged against which baseline, and the
target each must meet. Keys are the ones the benchmarks put into ``results``."""
from __future__ import annotations

from results import Limit, Ratio, Results, Row, Section, Spread

PAIRS = ("8k-16k", "16k-8k", "12k-16k", "48k-16k")
HEADLINE = "frame/both-8k-16k-l16"
HAND_ROLLED = "hand-rolled"  # websockets + numpy + 2 soxr HQ streams per call

LEGEND = [
    "hand-rolled: a plain websockets server doing numpy de-interleave + 2 soxr "
    "ResampleStream (HQ) per frame.",
    "numpy+scipy: scipy.signal.resample_poly per frame. Paced: each call one 20 ms `both` "
    "8 kHz frame every 20 ms. Latency: due -> readable by the application; its limit is "
    "20 ms beyond the delay a server adds on purpose (ours wakes readers every `latency`, "
    "50 ms by default, and may read a socket `coalesce_reads` late, 5 ms by default).",
]


def derive(results: Results) -> None:
    """Figures computed from others: the worst quality over the rate pairs."""
    for contender in ("speech", "strict", "soxr-mq", "soxr-hq", "scipy"):
        for name, worst in (("rejection_052", min), ("rejection_056", min), ("ripple", max)):
            values = [v for pair in PAIRS
                      if (v := results.value(f"quality/{pair}/{contender}/{name}")) is not None]
            if values:
                results.put(f"quality/worst/{contender}/{name}", worst(values), "dB")


ROWS: list[Row] = [
    Section("per-frame ingest: one 20 ms frame to readable channels"),
    Ratio("both 8k -> 2x16k L16", f"{HEADLINE}/ours", f"{HEADLINE}/soxr-hq",
          "numpy+2 soxr HQ", "<=", 0.25),
    Ratio("the same, strict preset", f"{HEADLINE}/ours-strict", f"{HEADLINE}/soxr-hq",
          "numpy+2 soxr HQ"),
    Ratio("both 8k -> 2x16k L16 vs soxr QQ", f"{HEADLINE}/ours", f"{HEADLINE}/soxr-qq",
          "numpy+2 soxr QQ"),
    Ratio("both 8k -> 2x16k L16 vs scipy", f"{HEADLINE}/ours", f"{HEADLINE}/scipy",
          "numpy+scipy"),
    Ratio("the same, beside a busy Python thread", "frame-busy/ours", "frame-busy/soxr-hq",
          "numpy+2 soxr HQ"),
    Spread("all pipelines vs soxr HQ (geomean)", "frame/", "/ours", "/soxr-hq",
           "numpy+soxr HQ"),
    Spread("all pipelines vs soxr QQ (geomean)", "frame/", "/ours", "/soxr-qq",
           "numpy+soxr QQ"),
    Spread("all pipelines vs scipy (geomean)", "frame/", "/ours", "/scipy",
           "numpy+scipy"),

    Section("bulk resampling, mono float32 (speed)"),
    *(Ratio(f"{pair}, speech", f"bulk/{pair}/speech", f"bulk/{pair}/soxr-mq", "soxr MQ",
            "<=", 1.0) for pair in PAIRS),
    Spread("strict vs soxr HQ (geomean)", "bulk/", "/strict", "/soxr-hq", "soxr HQ"),
    Spread("speech vs scipy (geomean)", "bulk/", "/speech", "/scipy", "scipy"),

    Section("resampling quality, worst rate pair"),
    Limit("speech: rejection, 0.56 x low rate", "quality/worst/speech/rejection_056",
          ">=", 90.0, "quality/worst/soxr-mq/rejection_056", "soxr MQ", show_ratio=False),
    Limit("speech: passband ripple to 0.45", "quality/worst/speech/ripple", "<=", 0.1,
          "quality/worst/soxr-mq/ripple", "soxr MQ", show_ratio=False),
    Limit("speech: 0.52 x low rate (transition)", "quality/worst/speech/rejection_052",
          None, None, "quality/worst/soxr-mq/rejection_052", "soxr MQ", show_ratio=False),
    Limit("strict: rejection, 0.52 x low rate", "quality/worst/strict/rejection_052",
          ">=", 90.0, "quality/worst/soxr-hq/rejection_052", "soxr HQ", show_ratio=False),
    Limit("strict: passband ripple to 0.45", "quality/worst/strict/ripple", "<=", 0.1,
          "quality/worst/soxr-hq/ripple", "soxr HQ", show_ratio=False),

    Section("codecs"),
    *(Ratio(f"G.711 {op.replace('-', ' ')}, 1 s", f"codec/{op}/ours", f"codec/{op}/numpy-lut",
            "numpy LUT") for op in ("ulaw-decode", "ulaw-encode", "alaw-decode", "alaw-encode")),
    Spread("G.711 vs audioop (geomean)", "codec/", "/ours", "/audioop", "audioop"),
    Ratio("L16 de-interleave, both, 1 s", "codec/deinterleave-1s/ours",
          "codec/deinterleave-1s/numpy-slicing", "numpy slicing"),
    Ratio("L16 de-interleave, both, 20 ms", "codec/deinterleave-20ms/ours",
          "codec/deinterleave-20ms/numpy-slicing", "numpy slicing"),

    Section("ring buffer, 20 ms frames"),
    Ratio("write + read, one thread", "ring/one-thread/ours", "ring/one-thread/deque",
          "deque"),
    Ratio("write + read, one thread", "ring/one-thread/ours", "ring/one-thread/queue",
          "queue.Queue"),
    Ratio("producer -> consumer thread, per frame", "ring/pair/ours", "ring/pair/deque",
          "deque"),
    Ratio("producer -> consumer thread, per frame", "ring/pair/ours", "ring/pair/queue",
          "queue.Queue"),
    Ratio("write + read beside a busy thread", "ring/busy/keep-gil",
          "ring/busy/release-every-call", "GIL freed/call"),

    Section("memory per live call, both 8k -> 16k, rings excluded"),
    Limit("native state (CallIngest)", "memory/native/ours", "<=", 64.0,
          "memory/native/soxr-hq", "2 soxr HQ"),
    Limit("server process, picows (the default)", "memory/server/picows", "<=", 64.0,
          "memory/server/baseline", HAND_ROLLED),
    Limit("server process, websockets transport", "memory/server/websockets", "<=", 64.0,
          "memory/server/baseline", HAND_ROLLED),

    Section("end to end: server CPU per received frame (one core)"),
    Ratio("paced, 200 calls, picows on uvloop", "paced/picows", "paced/baseline", HAND_ROLLED,
          "<=", 0.33, moonshot=0.25),
    Ratio("paced, 200 calls, default transport", "paced/default", "paced/baseline",
          HAND_ROLLED, "<=", 0.5),
    Limit("p99 latency, 200 calls, picows", "paced-p99/picows", "<=",
          "paced-p99-limit/picows", "paced-p99/baseline", HAND_ROLLED),
    Limit("p99 latency, 200 calls, default", "paced-p99/default", "<=",
          "paced-p99-limit/default", "paced-p99/baseline", HAND_ROLLED),
    Ratio("paced, 200 calls, websockets transport", "paced/websockets", "paced/baseline",
          HAND_ROLLED),
    Ratio("floor: picows on uvloop, discard", "paced/discard-picows", "paced/baseline",
          HAND_ROLLED),
    Ratio("floor: websockets, discard", "paced/discard-websockets", "paced/baseline",
          HAND_ROLLED),
    Ratio("bursts, picows on uvloop", "burst/picows", "burst/baseline", HAND_ROLLED),
    Ratio("bursts, default transport", "burst/default", "burst/baseline", HAND_ROLLED),
    Ratio("bursts, websockets transport", "burst/websockets", "burst/baseline", HAND_ROLLED),

    Section("capacity: real-time calls one core holds (0 lost, p99 < 20 ms + delivery)"),
    Ratio("picows on uvloop", "capacity/picows", "capacity/baseline", HAND_ROLLED,
          ">=", 3.0, moonshot=4.0),
    Ratio("default transport", "capacity/default", "capacity/baseline", HAND_ROLLED,
          ">=", 2.0),
    Section("capacity past one core: workers sharing a port, client unpinned"),
    Ratio("2 workers (serve --workers 2)", "capacity-workers/2", "capacity-workers/1",
          "1 worker", ">=", 1.8),
]
