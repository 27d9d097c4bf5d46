"""``piopiy-fast demo``: a receiver fed by simulated calls, checked sample for sample.

One process runs a :class:`StreamServer` on 127.0.0.1 that records every call, and the
simulator playing Piopiy's side as its media server does (FreeSWITCH
``mod_audio_stream``'s current client, the format in the URL only). Afterwards each
recording is read back and compared with the core's offline resampling of exactly what
the simulator sent.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import resample
from ..receiver.call import CallStream
from ..receiver.recorder import Recorder
from ..receiver.server import StreamServer
from ..simulator.peer_simulator import PeerSimulator
from ..simulator.simulator import SentCall
from ._console import install_stop_signals, out, show_progress, until_stopped


@dataclass
class CallCheck:
    """One row of the demo's table."""

    call_id: str
    listen_mode: str
    sent_seconds: float
    received_seconds: float
    frames: int
    drops: int
    overruns: int
    late_frames: int
    recorded_seconds: float
    files: int
    exact: bool
    problem: str | None = None


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """(rate, int16 samples) of a mono 16-bit WAV."""
    with wave.open(str(path), "rb") as wav:
        return wav.getframerate(), np.frombuffer(wav.readframes(wav.getnframes()), "<i2")


def check_call(sent: SentCall, received: tuple[CallStream, list[Path]] | None,
               target_rate: int) -> CallCheck:
    if received is None:
        return CallCheck(sent.call_id, sent.listen_mode, sent.seconds, 0.0, 0, sent.frames, 0,
                         0, 0.0, 0, False, sent.error or "never reached the receiver")
    call, paths = received
    s = call.stats
    mode = call.listen_mode
    exact = True
    recorded = 0.0
    problem = sent.error or call.error
    for name in sent.audio:
        path = next((p for p in paths if p.name.endswith(f".{name}.wav")), None)
        if path is None:
            exact, problem = False, problem or f"no {name} recording"
            continue
        rate, samples = read_wav(path)
        recorded = max(recorded, samples.size / rate)
        expected = resample(sent.sent(name), sent.sample_rate, target_rate)
        if rate != target_rate or not np.array_equal(samples, expected):
            exact, problem = False, problem or f"{name} recording differs from the oracle"
    return CallCheck(
        call_id=sent.call_id, listen_mode=mode, sent_seconds=sent.seconds,
        received_seconds=s.received_seconds, frames=s.frames,
        # Unusable frames are not in s.frames: they count as dropped.
        drops=sent.frames - s.frames, overruns=s.overruns,
        late_frames=s.late_frames, recorded_seconds=recorded, files=len(paths), exact=exact,
        problem=problem)


async def demo_command(args: argparse.Namespace) -> int:
    if args.record:
        return await run_demo(args, args.record)
    # Without --record the recordings are only there to be checked: removed afterwards.
    with tempfile.TemporaryDirectory(prefix="piopiy-fast-demo-") as directory:
        return await run_demo(args, Path(directory))


async def run_demo(args: argparse.Namespace, directory: Path) -> int:
    recorder = Recorder(directory)
    finished: dict[str, tuple[CallStream, list[Path]]] = {}

    async def on_call(call: CallStream) -> None:
        paths = await recorder.record(call)
        finished[call.call_id] = (call, paths)

    pace = "as fast as possible" if args.fast else "in real time"
    out(f"demo: {args.calls} concurrent '{args.mode}' calls at {args.rate} Hz, "
        f"{args.seconds:g} s each, sent {pace}; received at {args.target_rate} Hz and recorded")
    server = StreamServer("127.0.0.1", 0, target_rate=args.target_rate, listen_mode=args.mode,
                          source_rate=args.rate, on_call=on_call)
    async with server:
        out(f"receiver listening on {server.url}, recording to {directory}")
        url = f"{server.url}/stream?listen_mode={args.mode}&voice_quality={args.rate}"
        sim = PeerSimulator(url, calls=args.calls,
                            layout="stereo" if args.mode == "both" else "mono",
                            party="caller" if args.mode == "both" else args.mode,
                            rate=str(args.rate), seconds=args.seconds,
                            realtime=not args.fast, seed=args.seed)
        sim.prepare()  # the synthetic audio is made before the clocks start
        cpu_start = time.process_time()
        wall_start = time.perf_counter()
        stop = asyncio.Event()
        install_stop_signals(stop)
        task = asyncio.ensure_future(sim.run())
        progress = asyncio.ensure_future(show_progress(task, lambda: _progress(server)))
        if await until_stopped(task, stop):
            out("stopped early: checking what was sent so far")
        await progress
        report = sim.report()
        # The simulator has closed every connection; let the receiver finish the calls.
        expected = sum(1 for c in report.calls if c.error is None)
        deadline = time.monotonic() + 10.0
        while (len(finished) < expected or server.active_calls) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        wall = time.perf_counter() - wall_start
        cpu = time.process_time() - cpu_start
        stats = server.stats

    rows = [check_call(sent, finished.get(sent.call_id), args.target_rate)
            for sent in report.calls]
    print_table(rows)
    audio = sum(r.received_seconds for r in rows)
    frames = stats.frames
    out(f"received {audio:,.1f} s of call audio from {len(rows)} calls in {wall:.2f} s: "
        f"{audio / wall:,.1f}x real time; {frames:,} frames ({frames / wall:,.0f}/s), "
        f"{stats.bytes / 1e6:,.2f} MB ({stats.bytes / 1e6 / wall:,.2f} MB/s)")
    out(f"process CPU {cpu:.2f} s for receiver, recorder and simulator together "
        f"({cpu / max(frames, 1) * 1e6:,.0f} us per frame)")
    files = sum(r.files for r in rows)
    kept = f"in {directory}" if args.record else "checked, then removed (--record DIR keeps them)"
    out(f"recordings: {files} WAV files (mono, 16-bit, {args.target_rate} Hz) {kept}")
    bad = [r for r in rows if r.problem or not r.exact or r.drops or r.overruns]
    if bad:
        for r in bad:
            out(f"PROBLEM {r.call_id}: {r.problem or 'drops or overruns'}")
        return 1
    out(f"all {len(rows)} calls received complete, and every recording equals the offline "
        f"resampling of what was sent, sample for sample")
    return 0


def _progress(server: StreamServer) -> str:
    s = server.stats
    return (f"{s.active_calls} calls live, {s.received_seconds:,.1f} s of audio received, "
            f"{s.frames:,} frames, {s.overruns} overruns")


def print_table(rows: list[CallCheck]) -> None:
    header = (f"{'call':<12} {'mode':<6} {'sent s':>7} {'recv s':>7} {'frames':>7} "
              f"{'drops':>6} {'overruns':>8} {'late':>5} {'recorded':>13} {'exact':>6}")
    out(header)
    out("-" * len(header))
    for r in rows:
        recorded = f"{r.files} x {r.recorded_seconds:.2f} s"
        out(f"{r.call_id:<12} {r.listen_mode:<6} {r.sent_seconds:7.2f} {r.received_seconds:7.2f} "
            f"{r.frames:7d} {r.drops:6d} {r.overruns:8d} {r.late_frames:5d} {recorded:>13} "
            f"{'yes' if r.exact else 'NO':>6}")

