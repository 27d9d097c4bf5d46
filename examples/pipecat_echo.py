"""A Pipecat bot on a Piopiy stream that plays the caller back to them.

    pip install "piopiy-fast[pipecat]"
    python examples/pipecat_echo.py --port 8765 --rate 8000

Point a call's stream action at it (a public wss:// URL in front of this port):

    StreamAction().stream("wss://bot.example.com/", {"listen_mode": "caller",
                                                      "voice_quality": 8000})

or try it locally, from another terminal, with the simulator playing Piopiy:

    piopiy-fast simulate ws://127.0.0.1:8765 --seconds 5

The rate and the listen mode given here are hints: the serializer reads the stream's
format from the stream (a two-party stream is two parties, stereo or mixed, whatever
the hint says) and plays back the caller, or the mix of a mixed stream.

One call at a time (Pipecat's single-client server transport); each call gets a new
pipeline, and one line when it ends. Ctrl-C stops the bot. A real bot puts
speech-to-text, an LLM and text-to-speech where ``Echo`` is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from pipecat.frames.frames import EndFrame, Frame, InputAudioRawFrame, OutputAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.websocket.server import (
    SingleClientWebsocketServerParams,
    SingleClientWebsocketServerTransport,
)
from pipecat.workers.runner import WorkerRunner

from piopiy_fast.integrations.pipecat import PiopiyFrameSerializer


class Echo(FrameProcessor):
    """Turns what the caller says into what the bot says."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            await self.push_frame(OutputAudioRawFrame(
                frame.audio, sample_rate=frame.sample_rate, num_channels=frame.num_channels))
        else:
            await self.push_frame(frame, direction)


async def serve_one_call(host: str, port: int, rate: int, listen_mode: str,
                         stop: asyncio.Event) -> None:
    """Wait for Piopiy to connect, echo the call until it hangs up (or ``stop`` is set)."""
    serializer = PiopiyFrameSerializer(params=PiopiyFrameSerializer.InputParams(
        piopiy_sample_rate=rate, listen_mode=listen_mode))
    transport = SingleClientWebsocketServerTransport(
        SingleClientWebsocketServerParams(
            serializer=serializer,
            audio_in_enabled=True,
            audio_out_enabled=True,
            # Each output chunk becomes one streamAudio message of 300 ms, so the
            # end of what the bot says is never held back waiting for more.
            audio_out_10ms_chunks=serializer.audio_out_10ms_chunks,
        ),
        host=host, port=port)
    worker = PipelineWorker(
        Pipeline([transport.input(), Echo(), transport.output()]),
        # 16 kHz in, as speech-to-text engines like it; out at the rate the replies
        # go out at, so nothing is resampled twice.
        params=PipelineParams(audio_in_sample_rate=16000,
                              audio_out_sample_rate=serializer.reply_rate),
        enable_rtvi=False, idle_timeout_secs=None)

    @transport.event_handler("on_websocket_ready")
    async def on_ready(_transport: object) -> None:
        print(f"listening on ws://{host}:{port}", flush=True)

    @transport.event_handler("on_client_disconnected")
    async def on_hang_up(_transport: object, _websocket: object) -> None:
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)  # Ctrl-C is handled in main()
    await runner.add_workers(worker)
    stopper = asyncio.create_task(cancel_when(stop, worker))
    await runner.run()
    stopper.cancel()
    if not stop.is_set():
        print(f"call {serializer.call_id or '(no id)'} ended: {serializer.frames} frames",
              flush=True)


async def cancel_when(stop: asyncio.Event, worker: PipelineWorker) -> None:
    await stop.wait()
    await worker.cancel()


async def main(host: str, port: int, rate: int, listen_mode: str) -> None:
    # The runner ends quietly when its pipeline is cancelled, so Ctrl-C sets a flag
    # that cancels the pipeline and ends the loop, rather than interrupting the task.
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    while not stop.is_set():
        await serve_one_call(host, port, rate, listen_mode, stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--rate", type=int, default=8000,
                        help="the stream's voice_quality (a hint)")
    parser.add_argument("--listen-mode", default="caller", choices=["caller", "callee", "both"],
                        help="the stream's listen_mode (a hint)")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.host, args.port, args.rate, args.listen_mode))
