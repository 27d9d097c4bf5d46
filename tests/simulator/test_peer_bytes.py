"""The emulation's protocol pieces without sockets: the module's URL and rate checks,
client frames, and reading a server's frames."""

import struct

import pytest

from piopiy_fast.simulator.conversation import default_script, parse_script, scripted
from piopiy_fast.simulator.mod_audio_stream import StreamStart
from piopiy_fast.simulator.ws_uri import (
    InvalidStart,
    parse_sampling,
    split_ws_uri,
    validate_ws_uri,
)
from piopiy_fast.simulator.wsframes import (
    FrameError,
    FrameReader,
    client_frame,
    close_payload,
    parse_close,
)


@pytest.mark.parametrize("url, ok", [
    ("ws://host", True),
    ("wss://host/", True),
    ("wss://my-host.example.com:8443/stream?listen_mode=both", True),
    ("wss://host/?listen_mode=both", True),
    ("ws://10.0.0.7:8765/x", True),
    ("ws://host:/x", True),  # an empty port passes the module's check
    ("wss://host/any thing goes after the slash", True),
    ("wss://host?listen_mode=both", False),  # a query with no path
    ("wss://host:8443?x=1", False),
    ("wss://user@host/x", False),
    ("ws://[::1]:8000/x", False),
    ("ws://host_name/x", False),
    ("wss://hôst/x", False),
    ("ws:///x", False),
    ("http://host/x", False),
    ("WSS://host/x", False),
    ("ws://host:80a/x", False),
])
def test_validate_ws_uri(url, ok):
    assert validate_ws_uri(url) is ok


def test_split_ws_uri():
    assert split_ws_uri("wss://h.example/s?a=1").__dict__ == {
        "secure": True, "host": "h.example", "port": 443, "target": "/s?a=1"}
    assert split_ws_uri("ws://h:9000").__dict__ == {
        "secure": False, "host": "h", "port": 9000, "target": "/"}
    with pytest.raises(InvalidStart, match=r"^invalid websocket uri: wss://h\?a=1$"):
        split_ws_uri("wss://h?a=1")
    with pytest.raises(InvalidStart, match="empty port"):
        split_ws_uri("ws://h:/x")


@pytest.mark.parametrize("arg, rate", [
    (None, 8000), ("8k", 8000), ("16k", 16000), ("8000", 8000), ("16000", 16000),
    ("24000", 24000), ("32000", 32000), ("48000", 48000), ("16000Hz", 16000),
])
def test_rates_the_module_accepts(arg, rate):
    assert parse_sampling(arg) == rate


@pytest.mark.parametrize("arg", ["12000", "11025", "44100", "8", "12k", "0", "abc", "-8000"])
def test_rates_the_module_refuses(arg):
    with pytest.raises(InvalidStart, match=f"^invalid sample rate: {arg}$"):
        parse_sampling(arg)


def test_start_checks_in_the_modules_order():
    with pytest.raises(InvalidStart, match="^invalid mix type: both, must be mono, mixed"):
        StreamStart.parse("wss://h?x", "both", "12000")
    with pytest.raises(InvalidStart, match="^invalid websocket uri"):
        StreamStart.parse("wss://h?x", "stereo", "12000")
    with pytest.raises(InvalidStart, match="^invalid sample rate: 12000$"):
        StreamStart.parse("wss://h/?x", "stereo", "12000")
    start = StreamStart.parse("wss://h/?x", "mixed", "16k", "plain text, not JSON")
    assert (start.layout, start.rate, start.metadata) == ("mixed", 16000, "plain text, not JSON")


def test_client_frames_are_masked_with_the_key():
    key = b"\x01\x02\x03\x04"
    assert client_frame(2, b"\x00\x00\x00\x00\xff", key) == (
        b"\x82\x85" + key + b"\x01\x02\x03\x04\xfe")
    assert client_frame(9, b"ping", key) == b"\x89\x84" + key + bytes(
        c ^ k for c, k in zip(b"ping", key, strict=True))
    long = client_frame(2, bytes(640), key)
    assert long[:4] == b"\x82\xfe\x02\x80" and long[4:8] == key and len(long) == 8 + 640
    huge = client_frame(1, bytes(70000), key)
    assert huge[:2] == b"\x81\xff" and struct.unpack("!Q", huge[2:10])[0] == 70000
    with pytest.raises(ValueError):
        client_frame(8, bytes(126), key)


def test_close_payloads():
    assert close_payload(1000, "Normal closure") == b"\x03\xe8Normal closure"
    assert parse_close(b"\x03\xf3Ping timeout") == (1011, "Ping timeout")
    assert parse_close(b"") == (1005, "")


def test_reading_server_frames_in_pieces():
    reader = FrameReader(max_size=1000)
    data = b"\x89\x04ping" + b"\x81\x02hi" + b"\x88\x02\x03\xe8"
    frames = []
    for i in range(len(data)):
        frames += reader.feed(data[i:i + 1])
    assert [(f.opcode, f.payload) for f in frames] == [(9, b"ping"), (1, b"hi"),
                                                       (8, b"\x03\xe8")]
    with pytest.raises(FrameError, match="masked"):
        FrameReader().feed(b"\x81\x82abcd")
    with pytest.raises(FrameError, match="1001 bytes"):
        reader.feed(b"\x82\x7e\x03\xe9")
    with pytest.raises(FrameError, match="control"):
        FrameReader().feed(b"\x09\x01x")


def test_the_default_script_mostly_takes_turns():
    for seed in range(20):
        conv = scripted(default_script(60.0, seed), 8000, 60.0, seed)
        assert conv.overlap_fraction() < 0.1, seed
        assert {t.party for t in conv.turns} == {"caller", "callee"}
    again = scripted(default_script(60.0, 3), 8000, 60.0, 3)
    assert (again.caller == scripted(default_script(60.0, 3), 8000, 60.0, 3).caller).all()


def test_parse_script():
    assert parse_script("caller:0-2.5, callee:2.8-5") == [("caller", 0.0, 2.5),
                                                          ("callee", 2.8, 5.0)]
    conv = scripted(parse_script("caller:0-1,callee:0.5-1.5"), 8000)
    assert [(t.party, t.start, t.end) for t in conv.turns] == [("caller", 0, 8000),
                                                              ("callee", 4000, 12000)]
    assert conv.overlap_fraction() == 4000 / 12000
    with pytest.raises(Exception, match="PARTY:START-END"):
        parse_script("caller 0-1")
