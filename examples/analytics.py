"""Per-call conversation analytics: talk time, interruptions, silences and loudness of
each two-party call, with a line per turn as it ends and a JSON report beside it.

    python examples/analytics.py --port 8765 --reports reports/

and, to play Piopiy's side (two parties taking turns) from another terminal:

    piopiy-fast simulate ws://127.0.0.1:8765/stream --calls 2 --mode both --seconds 20

The voice activity is decided in the receiver's core as frames arrive; nothing here
touches the audio. Ctrl-C stops the server cleanly.
"""
import argparse
import asyncio
import contextlib
import json
import pathlib

from piopiy_fast import StreamServer
from piopiy_fast.analytics import AnalyticsSettings


def report_line(call_id: str, summary: dict) -> str:
    parties = summary["parties"]
    talk = ", ".join(f"{name} talks {p['talk_seconds']:.2f} s in {p['turns']} turns"
                     for name, p in parties.items())
    cut_ins = ", ".join(f"{i['by']} cut in on {i['of']} at {i['at_seconds']:.2f} s"
                        for i in summary["interruptions"]) or "no interruptions"
    silences = summary["silences"]
    return (f"{call_id}: {talk}; overlap {summary['overlap_seconds']:.2f} s; {cut_ins}; "
            f"{silences['count']} silences over {silences['threshold_seconds']:g} s")


def make_on_call(reports: pathlib.Path | None):
    async def on_call(call) -> None:
        if not await call.wait_audio():
            return
        analytics = call.analytics
        analytics.on_turn(lambda turn: print(
            f"{call.call_id} turn: {turn.segment.party} {turn.seconds:.2f} s", flush=True))
        # The audio itself is not needed: drain the channels so nothing waits on them.
        async def drain(reader):
            async for _ in reader:
                pass
        await asyncio.gather(drain(call.caller), drain(call.callee), drain(call.mix))
        summary = analytics.summary()
        print(report_line(call.call_id, summary), flush=True)
        if reports is not None:
            path = reports / f"{call.call_id}.analytics.json"
            path.write_text(json.dumps({"call_id": call.call_id, **summary}, indent=2))

    return on_call


async def main(host: str, port: int, reports: pathlib.Path | None) -> None:
    settings = AnalyticsSettings(silence_threshold=5.0)
    async with StreamServer(host, port, analytics=settings,
                            on_call=make_on_call(reports)) as server:
        print(f"listening on {server.url}", flush=True)
        await server.serve_forever()  # until Ctrl-C


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--reports", type=pathlib.Path, default=None,
                        help="write CALL_ID.analytics.json here")
    args = parser.parse_args()
    if args.reports is not None:
        args.reports.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the server has closed cleanly
        asyncio.run(main(args.host, args.port, args.reports))
