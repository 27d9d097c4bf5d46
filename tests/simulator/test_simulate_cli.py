"""``piopiy-fast simulate`` playing mod_audio_stream: into a real receiver, refused
starts, and calls that did not end well reported as such (non-zero status)."""

import asyncio
import json
import os
import signal
import subprocess

import numpy as np
from raw_peer_server import RawPeerServer
from running import COMMAND, Running, read_wav, run_command
from stream_testing import UNIT, offline, run

from piopiy_fast.cli import build_parser
from piopiy_fast.cli._console import close_console
from piopiy_fast.cli.simulate import simulate_command

NO_TOKEN = dict(os.environ, PIOPIY_FAST_TOKEN="")


def test_stereo_into_the_receiver_with_report_and_sent_files(tmp_path):
    server = Running("serve", "--port", "0", "--record", str(tmp_path / "rec"),
                     "--stats-interval", "0", env=NO_TOKEN)
    try:
        url = server.wait_for(r"listening on (ws://\S+)").group(1)
        result = run_command(
            "simulate", f"{url}/s?listen_mode=both&voice_quality=8000", "--mode", "both",
            "--seconds", "0.5", "--fast", "--report", str(tmp_path / "report.json"),
            "--sent-dir", str(tmp_path / "sent"), env=NO_TOKEN)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 stereo mod_audio_stream (current client) call(s)" in result.stdout
        assert "sent 0.5 s of audio" in result.stdout and "0 failed" in result.stdout
        server.wait_for(r"- call sim-001 0.50 s, 25 frames, 0 decode errors")
    finally:
        assert server.finish(signal.SIGINT) == 0
    [call] = json.loads((tmp_path / "report.json").read_text())["calls"]
    assert (call["call_id"], call["listen_mode"], call["frames"], call["error"]) == (
        "sim-001", "stereo", 25, None)
    for name in ("caller", "callee"):
        rate, sent = read_wav(tmp_path / "sent" / f"sim-001.{name}.wav")
        assert rate == 8000 and sent.size == 4000
        _, recorded = read_wav(tmp_path / "rec" / f"sim-001.{name}.wav")
        assert np.array_equal(recorded, offline(sent, 8000, 16000))


def test_mixed_sent_file(tmp_path):
    async def main():
        async with RawPeerServer() as server:
            args = build_parser().parse_args([
                "simulate", server.url + "/x", "--layout", "mixed", "--seconds", "0.2",
                "--fast", "--sent-dir", str(tmp_path), "--metadata", "call {call_id}"])
            code = await simulate_command(args)
            return code, server.connections[0]

    code, conn = run(main())
    assert code == 0 and conn.texts() == ["call sim-001"]
    rate, mixed = read_wav(tmp_path / "sim-001.mixed.wav")
    assert rate == 8000
    assert np.array_equal(mixed, np.frombuffer(b"".join(conn.binaries()), "<i2"))


def test_ctrl_c_reports_the_calls_as_stopped_and_fails(tmp_path):
    server = Running("serve", "--port", "0", "--stats-interval", "0", env=NO_TOKEN)
    sim = None
    try:
        url = server.wait_for(r"listening on (ws://\S+)").group(1)
        sim = Running("simulate", url + "/s?listen_mode=both&voice_quality=8000", "--mode",
                      "both", "--seconds", "20", env=NO_TOKEN)
        server.wait_for(r"\+ call ")
        sim.wait_for(r"simulating 1 ")
        sim.proc.send_signal(signal.SIGINT)
        assert sim.proc.wait(15 * UNIT) == 1
        sim.wait_for(r"stopped before the end")
        line = sim.wait_for(r"sim-001 .*").group(0)
        assert "stopped after" in line and " ok" not in line
    finally:
        if sim is not None and sim.proc.poll() is None:
            sim.proc.kill()
        server.finish(signal.SIGINT)


def test_a_ping_timeout_is_reported_not_ok(capsys):
    async def main():
        async with RawPeerServer(answer_pings=False) as server:
            args = build_parser().parse_args([
                "simulate", server.url + "/x", "--client", "ixwebsocket", "--heartbeat", "1",
                "--no-reconnect", "--seconds", "1.6"])
            return await simulate_command(args)

    assert run(main()) == 1
    close_console()  # the command's lines are written by the console's thread: all of them
    line = [x for x in capsys.readouterr().out.splitlines() if "sim-001" in x][0]
    assert "error: closed 1011 Ping timeout" in line


def test_the_module_refuses_what_it_refuses():
    for args, message in [
        (["ws://127.0.0.1:9/x", "--rate", "12000"], "invalid sample rate: 12000"),
        (["wss://example.com?listen_mode=both"],
         "invalid websocket uri: wss://example.com?listen_mode=both"),
        (["ws://127.0.0.1:9/x", "--frame-ms", "30"],
         "mod_audio_stream sends multiples of 20 ms: --frame-ms 30"),
    ]:
        result = subprocess.run([*COMMAND, "simulate", *args], capture_output=True, text=True,
                                timeout=30 * UNIT)
        assert (result.returncode, result.stderr) == (2, f"piopiy-fast: error: {message}\n")


def test_a_cancelled_plain_simulation_reports_stopped_calls():
    from piopiy_fast.simulator.simulator import Simulator

    async def main():
        async with RawPeerServer() as server:
            sim = Simulator(server.url + "/x", seconds=5.0, realtime=True)
            task = asyncio.ensure_future(sim.run())
            await asyncio.sleep(0.2)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            return sim.report()

    [call] = run(main()).calls
    assert call.stopped and call.error is None and 0 < call.seconds < 1
