"""``piopiy-fast simulate``: play Piopiy's side of N calls against any receiver.

By default each call is streamed as FreeSWITCH's ``mod_audio_stream`` streams it
(the current libwsc client; ``--client ixwebsocket`` for releases up to mid-2025):
its opening request, its layout (``--layout``, else ``mono`` for ``--mode caller``
or ``callee`` and ``stereo`` for ``both``), its rate check (12000 is refused as the
module refuses it), a metadata text, pauses and a close 1000. ``--client plain``
is the simple client: a JSON start event, then the audio.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ._console import install_stop_signals, out, redact, show_progress, until_stopped

CLIENT_CHOICES = ("current", "ixwebsocket", "plain")
LAYOUT_FOR_MODE = {"caller": "mono", "callee": "mono", "both": "stereo"}


def add_peer_options(sim: argparse.ArgumentParser) -> None:
    """The options that shape the emulated mod_audio_stream stream."""
    sim.add_argument("--client", choices=CLIENT_CHOICES, default="current",
                     help="mod_audio_stream's client: current (libwsc, default), ixwebsocket "
                          "(releases up to mid-2025), or plain (a JSON start event, no "
                          "emulation)")
    sim.add_argument("--layout", choices=("mono", "mixed", "stereo"),
                     help="mod_audio_stream's mix: mono (one leg), mixed (both legs summed), "
                          "stereo (interleaved, caller first); default from --mode")
    sim.add_argument("--metadata", metavar="TEXT",
                     help="the text sent when the stream opens ({call_id} is replaced; "
                          "default {\"call_id\": \"<id>\"}; '' sends none)")
    sim.add_argument("--script", metavar="TURNS",
                     help="who speaks when: 'caller:0-2.5,callee:2.8-6' (seconds); default "
                          "a natural exchange")
    sim.add_argument("--pause", action="append", default=[], metavar="START-END",
                     help="pause the stream from START to END seconds (nothing is sent); "
                          "repeatable")
    sim.add_argument("--heartbeat", type=float, default=0.0, metavar="SECONDS",
                     help="send a ping every SECONDS (STREAM_HEART_BEAT; default none)")
    sim.add_argument("--deflate-offer", action="store_true",
                     help="the current client offers permessage-deflate")
    sim.add_argument("--no-reconnect", action="store_true",
                     help="ixwebsocket: no automatic reconnection (STREAM_NO_RECONNECT)")
    sim.add_argument("--stop-text", metavar="TEXT",
                     help="a final text sent before the close")


def _pauses(specs: list[str]) -> list[tuple[float, float]]:
    from ..errors import PiopiyValidationError
    pauses = []
    for spec in specs:
        start, _, end = spec.partition("-")
        try:
            pauses.append((float(start), float(end)))
        except ValueError:
            raise PiopiyValidationError(f"a pause is START-END in seconds, not {spec!r}") from None
    return pauses


def make_simulator(args: argparse.Namespace) -> Any:
    """The simulator the arguments describe (raises PiopiyValidationError, or the
    module's own refusal of the start command)."""
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    seconds = args.seconds if args.seconds is not None or args.wav else 10.0
    if args.client == "plain":
        from ..simulator.simulator import Simulator
        return Simulator(
            args.url, calls=args.calls, listen_mode=args.mode, sample_rate=args.rate,
            seconds=seconds, realtime=not args.fast, frame_ms=args.frame_ms, wav=args.wav,
            seed=args.seed, start_event=args.start_event, headers=headers,
            call_id_prefix=args.call_id_prefix)
    from ..errors import PiopiyValidationError
    from ..simulator.conversation import parse_script
    from ..simulator.peer_simulator import PeerSimulator
    buffer_ms = int(args.frame_ms)
    if buffer_ms != args.frame_ms or buffer_ms % 20:
        raise PiopiyValidationError(
            f"mod_audio_stream sends multiples of 20 ms: --frame-ms {args.frame_ms:g}")
    return PeerSimulator(
        args.url, calls=args.calls, client=args.client,
        layout=args.layout or LAYOUT_FOR_MODE[args.mode], rate=str(args.rate),
        party="callee" if args.mode == "callee" else "caller", seconds=seconds,
        realtime=not args.fast, script=parse_script(args.script) if args.script else None,
        wav=args.wav, seed=args.seed, metadata=args.metadata,
        call_id_prefix=args.call_id_prefix, headers=headers, pauses=_pauses(args.pause),
        heartbeat=args.heartbeat, deflate=args.deflate_offer,
        reconnect=not args.no_reconnect, stop_text=args.stop_text, buffer_ms=buffer_ms)


async def simulate_command(args: argparse.Namespace) -> int:
    from ..simulator.simulator import write_sent

    sim = make_simulator(args)
    pace = "as fast as possible" if args.fast else "in real time"
    shape = (f"{args.mode}" if args.client == "plain" else
             f"{sim.start.layout} mod_audio_stream ({args.client} client)")
    out(f"simulating {args.calls} {shape} call(s) at {args.rate} Hz, {pace}, "
        f"into {redact(args.url)}")
    stop = asyncio.Event()
    install_stop_signals(stop)
    task = asyncio.ensure_future(sim.run())
    progress = asyncio.ensure_future(show_progress(task, lambda: _sim_progress(sim, args.calls)))
    stopped = await until_stopped(task, stop)
    if stopped:
        out("stopped before the end: every call closed")
    await progress
    report = sim.report()
    for call in report.calls:
        status = "ok"
        if call.error:
            status = f"error: {call.error}"
        elif call.stopped:
            status = (f"stopped after {call.seconds:.2f} s: "
                      f"{call.total_samples / call.sample_rate:.2f} s were planned")
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
    # A stopped run did not do what it was asked: its calls are not "ok".
    return 1 if report.failed or stopped else 0


def _sim_progress(sim: Any, calls: int) -> str:
    finished, seconds = sim.progress
    return f"{finished}/{calls} calls done, {seconds:,.1f} s of audio sent"
