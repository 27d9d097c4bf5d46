"""The emulated mod_audio_stream client into today's receiver, end to end over
127.0.0.1: a stereo stream whose URL names listen_mode=both arrives sample for sample."""

import numpy as np
from stream_testing import Collector, offline, run

from piopiy_fast.receiver.server import StreamServer
from piopiy_fast.simulator.conversation import default_script, scripted
from piopiy_fast.simulator.mod_audio_stream import AudioStream, StreamStart


def test_stereo_with_the_format_in_the_url(transport):
    conv = scripted(default_script(1.0, 5), 8000, 1.0, seed=5)
    results = {}
    for client in ("current", "ixwebsocket"):
        async def main(client=client):
            collector = Collector()
            async with StreamServer("127.0.0.1", 0, transport=transport,
                                    on_call=collector) as server:
                url = (f"{server.url}/stream?listen_mode=both&voice_quality=8000"
                       f"&call_id=peer-{client}")
                start = StreamStart.parse(url, "stereo", "8k", '{"call_id": "c-1"}')
                s = AudioStream(start, conv, client=client, realtime=False, heartbeat=1,
                                stop_text="bye")
                await s.run()
                await collector.wait_for(1)
            return s, collector
        results[client] = run(main(), transport=transport)

    for client, (s, collector) in results.items():
        [call] = collector.done.values()
        assert (call.listen_mode, call.source_rate) == ("both", 8000), client
        received = collector.audio[call.call_id]
        for name in ("caller", "callee"):
            assert np.array_equal(received[name], offline(conv.party(name), 8000, 16000)), name
        assert call.stats.frames == 50 and call.stats.decode_errors == 0
        assert call.close_info.code == 1000
        assert s.events.closed_by == [(1000, "Normal closure", "answer")], client
