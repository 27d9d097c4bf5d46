"""``piopiy-fast simulate``: play Piopiy's side of N calls against any receiver."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ._console import install_stop_signals, out, redact, show_progress, until_stopped


async def simulate_command(args: argparse.Namespace) -> int:
    from ..simulator.simulator import Simulator, write_sent

    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    sim = Simulator(
        args.url, calls=args.calls, listen_mode=args.mode, sample_rate=args.rate,
        seconds=args.seconds if args.seconds is not None or args.wav else 10.0,
        realtime=not args.fast, frame_ms=args.frame_ms, wav=args.wav, seed=args.seed,
        start_event=args.start_event, headers=headers, call_id_prefix=args.call_id_prefix)
    pace = "as fast as possible" if args.fast else "in real time"
    out(f"simulating {args.calls} {args.mode} call(s) at {args.rate} Hz, {pace}, "
        f"into {redact(args.url)}")
    stop = asyncio.Event()
    install_stop_signals(stop)
    task = asyncio.ensure_future(sim.run())
    progress = asyncio.ensure_future(show_progress(task, lambda: _sim_progress(sim, args.calls)))
    if await until_stopped(task, stop):
        out("stopped: every call closed")
    await progress
    report = sim.report()
    for call in report.calls:
        status = f"error: {call.error}" if call.error else "ok"
        out(f"  {call.call_id}  {call.listen_mode:6} {call.sample_rate} Hz  "
            f"{call.frames:6d} frames  {call.seconds:8.2f} s sent  {status}")
    speed = report.seconds / report.wall_seconds if report.wall_seconds else 0.0
    out(f"sent {report.seconds:,.1f} s of audio in {report.wall_seconds:.2f} s "
        f"({speed:,.1f}x real time), {report.frames:,} frames; {len(report.failed)} failed")
    if args.report:
        args.report.write_text(report.to_json())
        out(f"report written to {args.report}")
    if args.sent_dir:
        paths = write_sent(report, args.sent_dir)
        out(f"{len(paths)} WAV file(s) of the sent audio written to {args.sent_dir}")
    return 1 if report.failed else 0


def _sim_progress(sim: Any, calls: int) -> str:
    finished, seconds = sim.progress
    return f"{finished}/{calls} calls done, {seconds:,.1f} s of audio sent"
