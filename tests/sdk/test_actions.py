"""Action and StreamAction: the exact JSON of every action and option combination,
the live control messages, the URL helpers and every refused argument.

JSON is compared as ``json.dumps`` strings, so key order is checked too.
"""

import itertools
import json
import time
from urllib.parse import parse_qsl, urlsplit

import pytest

from piopiy_fast.errors import PiopiyValidationError
from piopiy_fast.sdk.actions import Action, StreamAction, as_pcmo, bridge
from piopiy_fast.signing import SignedURL

WS = "wss://example.com/stream"


def dumps(value):
    return json.dumps(value)


def only(builder):
    """The single action a builder holds, as JSON."""
    assert len(builder) == 1
    return dumps(builder.action[0])


def subsets(options):
    """Every sub-dict of ``options``: each key present or absent."""
    keys = list(options)
    for mask in itertools.product((False, True), repeat=len(keys)):
        yield {k: options[k] for k, keep in zip(keys, mask, strict=False) if keep}


@pytest.fixture(params=[Action, StreamAction])
def builder(request):
    return request.param()


# --- reference shapes ----------------------------------------------------------------------
# What the official SDK builds, as docs/protocol.md describes it
# (stream_on_answer defaults to True).


def ref_bridge(numbers, piopiy_no, options=None):
    out = {
        "action": "bridge",
        "from": piopiy_no,
        "connect": [{"type": "pstn", "number": n} for n in numbers],
        "duration": 5400,
        "timeout": 40,
        "loop": 1,
    }
    if options is not None:
        out["duration"] = options.get("duration", 5400)
        out["timeout"] = options.get("timeout", 40)
        out["loop"] = options.get("loop", 1)
        if options.get("ring_type") == "group":
            out["ring_type"] = "group"
    return out


def ref_stream(url, options=None):
    out = {"action": "stream", "ws_url": url}
    if options is not None:
        out["listen_mode"] = options.get("listen_mode", "caller")
        out["voice_quality"] = options.get("voice_quality", "8000")
        out["stream_on_answer"] = options.get("stream_on_answer", True)
    return out


def ref_input(url, options=None):
    out = {"action": "input", "action_url": url}
    if options is not None:
        out["max_digit"] = options.get("max_digit", 1)
        out["timeout"] = options.get("timeout", 5)
    return out


def ref_play_get_input(url, music, options=None):
    out = {"action": "play_get_input", "action_url": url, "file_name": music}
    if music.startswith(("http://", "https://")):
        out["file_url"] = music
    if options is not None:
        out["max_digit"] = options.get("max_digit", 1)
        out["max_retry"] = options.get("max_retry", 3)
        out["timeout"] = options.get("timeout", 5)
    return out


# --- simple actions ------------------------------------------------------------------------


CDN = "https://cdn.example.com/a.mp3"


@pytest.mark.parametrize(
    "arg, key",
    [
        ("welcome.mp3", "file_name"),
        (CDN, "file_url"),
        ("http://10.0.0.1:8080/a.wav", "file_url"),
        (CDN.upper(), "file_url"),
        ("ftp://files.example.com/a.mp3", "file_name"),
    ],
)
def test_play_music(builder, arg, key):
    builder.playMusic(arg)
    assert only(builder) == f'{{"action": "play", "{key}": "{arg}"}}'


def test_speak_set_value_record_hangup(builder):
    builder.speak("Hello, world").setValue("id=42").record().hangup()
    assert dumps(builder.action) == (
        '[{"action": "speak", "text": "Hello, world"}, '
        '{"action": "param", "text": "id=42"}, '
        '{"action": "record"}, {"action": "hangup"}]'
    )


def test_non_ascii_text_is_escaped_like_json_dumps(builder):
    builder.speak("வணக்கம்")
    assert only(builder) == json.dumps({"action": "speak", "text": "வணக்கம்"})
    assert "\\u" in only(builder)


# --- call (bridge) ---------------------------------------------------------------------------

BRIDGE_OPTIONS = {"duration": 120, "timeout": 20, "loop": 3, "ring_type": "group"}


def test_call_literal(builder):
    builder.call(919999999999, 918888888888)
    assert only(builder) == (
        '{"action": "bridge", "from": 918888888888, '
        '"connect": [{"type": "pstn", "number": 919999999999}], '
        '"duration": 5400, "timeout": 40, "loop": 1}'
    )


def test_call_group_literal(builder):
    builder.call([911111111111, 912222222222], 4471000000, {"ring_type": "group", "loop": 2})
    assert only(builder) == (
        '{"action": "bridge", "from": 4471000000, '
        '"connect": [{"type": "pstn", "number": 911111111111}, '
        '{"type": "pstn", "number": 912222222222}], '
        '"duration": 5400, "timeout": 40, "loop": 2, "ring_type": "group"}'
    )


@pytest.mark.parametrize("to", [919999999999, [919999999999], [911, 912, 913], (911, 912)])
@pytest.mark.parametrize("options", [None, *subsets(BRIDGE_OPTIONS)], ids=repr)
def test_call_every_option_combination(builder, to, options):
    builder.call(to, 4471000000, options)
    numbers = list(to) if isinstance(to, (list, tuple)) else [to]
    assert only(builder) == dumps(ref_bridge(numbers, 4471000000, options))


def test_bridge_function_matches_method():
    assert bridge(1, 2, {"loop": 2}) == Action().call(1, 2, {"loop": 2}).PCMO()[0]


# --- stream ----------------------------------------------------------------------------------

STREAM_VALUES = {
    "listen_mode": ["caller", "callee", "both"],
    "voice_quality": [8000, 12000, 16000, 32000, "8000", "12000", "16000", "32000"],
    "stream_on_answer": [True, False],
}


def stream_option_dicts():
    yield None
    yield {}
    names = list(STREAM_VALUES)
    for mask in itertools.product((False, True), repeat=len(names)):
        present = [n for n, keep in zip(names, mask, strict=False) if keep]
        for values in itertools.product(*(STREAM_VALUES[n] for n in present)):
            yield dict(zip(present, values, strict=False))


STREAM_CASES = list(stream_option_dicts())


def test_stream_cases_cover_everything():
    # 1 + 1 for None and {}, then 1 + 3 + 8 + 2 + 24 + 6 + 16 + 48 subsets of values.
    assert len(STREAM_CASES) == 2 + 1 + 3 + 8 + 2 + 24 + 6 + 16 + 48


@pytest.mark.filterwarnings("ignore:voice_quality 12000")
@pytest.mark.parametrize("options", STREAM_CASES, ids=repr)
def test_stream_every_option_combination(builder, options):
    builder.stream(WS, options)
    assert only(builder) == dumps(ref_stream(WS, options))


def test_stream_literals():
    a = Action()
    a.stream("ws://127.0.0.1:8765/ws")
    a.stream(WS, {})
    a.stream(WS, {"listen_mode": "both", "voice_quality": 16000, "stream_on_answer": False})
    a.stream(WS, {"voice_quality": "16000"})
    assert [dumps(x) for x in a.PCMO()] == [
        '{"action": "stream", "ws_url": "ws://127.0.0.1:8765/ws"}',
        '{"action": "stream", "ws_url": "wss://example.com/stream", "listen_mode": "caller", '
        '"voice_quality": "8000", "stream_on_answer": true}',
        '{"action": "stream", "ws_url": "wss://example.com/stream", "listen_mode": "both", '
        '"voice_quality": 16000, "stream_on_answer": false}',
        '{"action": "stream", "ws_url": "wss://example.com/stream", "listen_mode": "caller", '
        '"voice_quality": "16000", "stream_on_answer": true}',
    ]


def query(url):
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


@pytest.mark.parametrize(
    "options, expected_query",
    [
        (None, [("listen_mode", "caller"), ("voice_quality", "8000")]),
        ({}, [("listen_mode", "caller"), ("voice_quality", "8000")]),
        (
            {"listen_mode": "both", "voice_quality": "16000"},
            [("listen_mode", "both"), ("voice_quality", "16000")],
        ),
        ({"voice_quality": 32000}, [("listen_mode", "caller"), ("voice_quality", "32000")]),
    ],
    ids=repr,
)
def test_format_in_url(options, expected_query):
    action = Action().stream(WS, options, format_in_url=True).PCMO()[0]
    assert action["ws_url"] == WS + "?" + "&".join(f"{k}={v}" for k, v in expected_query)
    # Everything but the URL is what the official SDK emits.
    assert dumps({**action, "ws_url": WS}) == dumps(ref_stream(WS, options))


def test_format_in_url_keeps_existing_query_and_replaces_stale_format():
    url = "wss://example.com/s?token=abc&listen_mode=callee"
    action = Action().stream(url, {"listen_mode": "both"}, format_in_url=True).PCMO()[0]
    assert query(action["ws_url"]) == [
        ("token", "abc"),
        ("listen_mode", "both"),
        ("voice_quality", "8000"),
    ]


def test_format_in_url_is_off_by_default():
    assert Action().stream(WS, {"listen_mode": "both"}).PCMO()[0]["ws_url"] == WS


def test_call_ref_without_signing_adds_format_and_ref():
    action = Action().stream(WS, None, call_ref="order-7").PCMO()[0]
    assert query(action["ws_url"]) == [
        ("listen_mode", "caller"),
        ("voice_quality", "8000"),
        ("call_ref", "order-7"),
    ]


@pytest.mark.parametrize(
    "ws_url, written",
    [
        ("wss://example.com", "wss://example.com/?listen_mode=both&voice_quality=16000"),
        ("wss://example.com?token=a", "wss://example.com/?token=a&listen_mode=both&voice_quality=16000"),
        ("ws://10.0.0.7:8765?token=a",
         "ws://10.0.0.7:8765/?token=a&listen_mode=both&voice_quality=16000"),
        ("wss://example.com/?token=a", "wss://example.com/?token=a&listen_mode=both&voice_quality=16000"),
        ("wss://example.com/s", "wss://example.com/s?listen_mode=both&voice_quality=16000"),
    ],
)
def test_a_url_without_a_path_gets_one_before_the_query(ws_url, written):
    from piopiy_fast.simulator.ws_uri import validate_ws_uri

    opts = {"listen_mode": "both", "voice_quality": 16000}
    url = Action().stream(ws_url, opts, format_in_url=True).PCMO()[0]["ws_url"]
    assert url == written
    # What FreeSWITCH's mod_audio_stream checks before it starts a stream.
    assert validate_ws_uri(url)
    signed = Action().stream(ws_url, opts, sign=SECRET).PCMO()[0]["ws_url"]
    assert validate_ws_uri(signed)
    assert SignedURL(SECRET).verify(signed)["listen_mode"] == "both"


def test_the_old_url_form_is_what_the_module_refuses():
    from piopiy_fast.simulator.ws_uri import validate_ws_uri

    assert not validate_ws_uri("wss://example.com?listen_mode=both&voice_quality=16000")


@pytest.mark.parametrize("quality", [12000, "12000"])
def test_voice_quality_12000_is_written_but_warns(quality):
    with pytest.warns(UserWarning, match=r"mod_audio_stream.*'invalid sample rate'"):
        action = Action().stream(WS, {"voice_quality": quality}).PCMO()[0]
    assert action["voice_quality"] == quality


def test_other_rates_do_not_warn():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for quality in (8000, 16000, 32000, "8000"):
            Action().stream(WS, {"voice_quality": quality})


SECRET = "stream-secret-0123456789abcdef"


def test_signed_stream_url_verifies_and_carries_the_format():
    now = 1_700_000_000
    signer = SignedURL(SECRET, clock=lambda: now)
    action = (
        Action()
        .stream(WS, {"listen_mode": "both", "voice_quality": "16000"}, sign=signer,
                expires_in=120, call_ref=42)
        .PCMO()[0]
    )
    url = action["ws_url"]
    assert url.startswith(WS + "?")
    verified = SignedURL(SECRET, clock=lambda: now + 119).verify(url[len("wss://example.com"):])
    assert verified == {
        "listen_mode": "both",
        "voice_quality": "16000",
        "call_ref": "42",
        "expires": str(now + 120),
    }
    assert dumps({**action, "ws_url": WS}) == dumps(
        ref_stream(WS, {"listen_mode": "both", "voice_quality": "16000"})
    )


def test_signed_with_a_plain_secret_defaults_to_one_hour():
    before = int(time.time())
    url = Action().stream(WS, sign=SECRET).PCMO()[0]["ws_url"]
    after = int(time.time())
    assert before + 3600 <= int(dict(query(url))["expires"]) <= after + 3600
    assert SignedURL(SECRET).verify(url)["listen_mode"] == "caller"
    assert SECRET not in url


# --- input and playGetInput ---------------------------------------------------------------------

ACTION_URL = "https://app.example.com/dtmf"


def test_input_literals(builder):
    builder.input(ACTION_URL).input(ACTION_URL, {})
    builder.input(ACTION_URL, {"max_digit": 4, "timeout": 0})
    head = '{"action": "input", "action_url": "https://app.example.com/dtmf"'
    assert dumps(builder.action) == (
        f'[{head}}}, '
        f'{head}, "max_digit": 1, "timeout": 5}}, '
        f'{head}, "max_digit": 4, "timeout": 0}}]'
    )


@pytest.mark.parametrize("options", [None, *subsets({"max_digit": 3, "timeout": 9})], ids=repr)
def test_input_every_option_combination(builder, options):
    builder.input(ACTION_URL, options)
    assert only(builder) == dumps(ref_input(ACTION_URL, options))


def test_play_get_input_literals(builder):
    builder.playGetInput(ACTION_URL, "menu.mp3")
    builder.playGetInput(ACTION_URL, "https://cdn.example.com/menu.mp3", {"max_retry": 0})
    assert dumps(builder.action) == (
        '[{"action": "play_get_input", "action_url": "https://app.example.com/dtmf", '
        '"file_name": "menu.mp3"}, '
        '{"action": "play_get_input", "action_url": "https://app.example.com/dtmf", '
        '"file_name": "https://cdn.example.com/menu.mp3", '
        '"file_url": "https://cdn.example.com/menu.mp3", '
        '"max_digit": 1, "max_retry": 0, "timeout": 5}]'
    )


@pytest.mark.parametrize("music", ["menu.mp3", "https://cdn.example.com/menu.mp3"])
@pytest.mark.parametrize(
    "options", [None, *subsets({"max_digit": 2, "max_retry": 1, "timeout": 7})], ids=repr
)
def test_play_get_input_every_option_combination(builder, music, options):
    builder.playGetInput(ACTION_URL, music, options)
    assert only(builder) == dumps(ref_play_get_input(ACTION_URL, music, options))


# --- PCMO, clear, chaining, aliases --------------------------------------------------------------


def test_action_pcmo_returns_a_list_and_keeps_the_actions():
    action = Action().speak("a").hangup()
    first = action.PCMO()
    assert first == [{"action": "speak", "text": "a"}, {"action": "hangup"}]
    first.append({"action": "record"})  # the caller's list, not the builder's
    assert action.PCMO() == first[:2]
    assert len(action) == 2


def test_stream_action_pcmo_returns_json_and_clears():
    stream = StreamAction().stream(WS, {"listen_mode": "both"}).hangup()
    text = stream.PCMO()
    assert isinstance(text, str)
    assert text == dumps([ref_stream(WS, {"listen_mode": "both"}), {"action": "hangup"}])
    assert stream.PCMO() == "[]"
    assert len(stream) == 0


def test_clear(builder):
    builder.speak("a").record()
    assert builder.clear() is None
    assert len(builder) == 0 and builder.action == []


def test_builder_methods_chain(builder):
    same = (
        builder.playMusic("a.mp3")
        .speak("b")
        .setValue("c")
        .record()
        .call(1, 2)
        .stream(WS)
        .input(ACTION_URL)
        .playGetInput(ACTION_URL, "m.mp3")
        .hangup()
    )
    assert same is builder and len(builder) == 9


def test_snake_case_aliases():
    a = Action()
    a.play_music("x.mp3").set_value("v").play_get_input(ACTION_URL, "m.mp3")
    assert [x["action"] for x in a.pcmo()] == ["play", "param", "play_get_input"]
    s = StreamAction()
    assert s.play_stream(audio_base64="AAAA", audio_type="raw", sample_rate=8000) == s.playStream(
        audio_base64="AAAA", audio_type="raw", sample_rate=8000
    )
    s.speak("x")
    assert s.pcmo() == '[{"action": "speak", "text": "x"}]'


def test_repr_shows_the_actions():
    assert repr(Action().record()) == "Action([{'action': 'record'}])"


# --- live control messages -------------------------------------------------------------------


def test_control_messages():
    s = StreamAction()
    assert s.pause() == '{"action": "pause"}'
    assert s.resume() == '{"action": "resume"}'
    assert s.stop() == '{"action": "stop"}'
    assert s.interrupt() == '{"action": "break"}'
    assert len(s) == 0  # control messages are not PCMO actions


@pytest.mark.parametrize("audio_type", ["raw", "mp3", "wav", "ogg"])
@pytest.mark.parametrize("rate", [8000, 16000])
def test_play_stream(audio_type, rate):
    b64 = "UklGRhQAAABXQVZFZm10IBAAAAABAAEAgD4AAAB9AAACABAAZGF0YQAAAAA="
    text = StreamAction().playStream(audio_base64=b64, audio_type=audio_type, sample_rate=rate)
    assert text == (
        f'{{"type": "streamAudio", "data": {{"audioDataType": "{audio_type}", '
        f'"sampleRate": {rate}, "audioData": "{b64}"}}}}'
    )


def test_play_stream_is_keyword_only():
    with pytest.raises(TypeError):
        StreamAction().playStream("AAAA", "raw", 8000)


# --- refused arguments --------------------------------------------------------------------------


def bad(fn, *args, **kwargs):
    return pytest.param(fn, args, kwargs, id=f"{fn.__name__}{args}{kwargs}"[:90])


def play_stream(**kw):
    args = {"audio_base64": "AAAA", "audio_type": "raw", "sample_rate": 8000, **kw}
    return StreamAction().playStream(**args)


INVALID = [
    # (callable, args, kwargs) -> the argument name the message must contain
    (bad(lambda *a: Action().playMusic(*a), ""), "file_name_or_url"),
    (bad(lambda *a: Action().playMusic(*a), None), "file_name_or_url"),
    (bad(lambda *a: Action().speak(*a), 5), "text"),
    (bad(lambda *a: Action().speak(*a), ""), "text"),
    (bad(lambda *a: Action().setValue(*a), None), "text"),
    (bad(lambda *a: Action().call(*a), "+919999999999", 4471), "to_or_list"),
    (bad(lambda *a: Action().call(*a), [], 4471), "to_or_list"),
    (bad(lambda *a: Action().call(*a), [1, "2a"], 4471), "to_or_list[1]"),
    (bad(lambda *a: Action().call(*a), True, 4471), "to_or_list"),
    (bad(lambda *a: Action().call(*a), -5, 4471), "to_or_list"),
    (bad(lambda *a: Action().call(*a), 1, 44.71), "piopiy_no"),
    (bad(lambda *a: Action().call(*a), 1, None), "piopiy_no"),
    (bad(lambda *a: Action().call(*a), 1, 2, {"duration": 0}), "duration"),
    (bad(lambda *a: Action().call(*a), 1, 2, {"timeout": "40"}), "timeout"),
    (bad(lambda *a: Action().call(*a), 1, 2, {"loop": True}), "loop"),
    (bad(lambda *a: Action().call(*a), 1, 2, {"ring_type": "serial"}), "ring_type"),
    (bad(lambda *a: Action().call(*a), 1, 2, {"extra": 1}), "'extra'"),
    (bad(lambda *a: Action().call(*a), 1, 2, "none"), "options"),
    (bad(lambda *a: Action().stream(*a), "https://example.com/ws"), "ws_url"),
    (bad(lambda *a: Action().stream(*a), "example.com/ws"), "ws_url"),
    (bad(lambda *a: Action().stream(*a), "wss://"), "ws_url"),
    (bad(lambda *a: Action().stream(*a), None), "ws_url"),
    (bad(lambda *a: Action().stream(*a), WS, {"listen_mode": "all"}), "listen_mode"),
    (bad(lambda *a: Action().stream(*a), WS, {"listen_mode": None}), "listen_mode"),
    (bad(lambda *a: Action().stream(*a), WS, {"voice_quality": 44100}), "voice_quality"),
    (bad(lambda *a: Action().stream(*a), WS, {"voice_quality": "16k"}), "voice_quality"),
    (bad(lambda *a: Action().stream(*a), WS, {"voice_quality": "016000"}), "voice_quality"),
    (bad(lambda *a: Action().stream(*a), WS, {"voice_quality": 16000.0}), "voice_quality"),
    (bad(lambda *a: Action().stream(*a), WS, {"voice_quality": True}), "voice_quality"),
    (bad(lambda *a: Action().stream(*a), WS, {"stream_on_answer": 1}), "stream_on_answer"),
    (bad(lambda *a: Action().stream(*a), WS, {"stream_on_answer": "true"}), "stream_on_answer"),
    (bad(lambda *a: Action().stream(*a), WS, {"voice": 8000}), "'voice'"),
    (bad(lambda *a: Action().stream(*a), WS, ["caller"]), "options"),
    (bad(lambda **k: Action().stream(WS, **k), format_in_url="yes"), "format_in_url"),
    (bad(lambda **k: Action().stream(WS, **k), expires_in=60), "expires_in"),
    (bad(lambda **k: Action().stream(WS, **k), sign=""), "sign"),
    (bad(lambda **k: Action().stream(WS, **k), sign=123), "sign"),
    (bad(lambda **k: Action().stream(WS, **k), sign="k", expires_in=0), "expires_in"),
    (bad(lambda **k: Action().stream(WS, **k), call_ref=""), "call_ref"),
    (bad(lambda **k: Action().stream(WS, **k), call_ref=1.5), "call_ref"),
    (bad(lambda *a: Action().input(*a), "app.example.com/dtmf"), "action_url"),
    (bad(lambda *a: Action().input(*a), ACTION_URL, {"max_digits": 1}), "'max_digits'"),
    (bad(lambda *a: Action().input(*a), ACTION_URL, {"max_digit": 0}), "max_digit"),
    (bad(lambda *a: Action().input(*a), ACTION_URL, {"timeout": -1}), "timeout"),
    (bad(lambda *a: Action().playGetInput(*a), "ftp://x.com/a", "m.mp3"), "action_url"),
    (bad(lambda *a: Action().playGetInput(*a), ACTION_URL, ""), "music_file"),
    (bad(lambda *a: Action().playGetInput(*a), ACTION_URL, "m", {"max_retry": -1}), "max_retry"),
    (bad(lambda *a: Action().playGetInput(*a), ACTION_URL, "m", {"retries": 1}), "'retries'"),
    (bad(play_stream, audio_type="flac"), "audio_type"),
    (bad(play_stream, sample_rate=44100), "sample_rate"),
    (bad(play_stream, sample_rate="8000"), "sample_rate"),
    (bad(play_stream, sample_rate=8000.0), "sample_rate"),
    (bad(play_stream, audio_base64=""), "audio_base64"),
    (bad(play_stream, audio_base64="not base64!"), "audio_base64"),
    (bad(play_stream, audio_base64="AAA"), "audio_base64"),
    (bad(play_stream, audio_base64=b"AAAA"), "audio_base64"),
]


@pytest.mark.parametrize("case, name", INVALID)
def test_invalid_argument_names_it(case, name):
    fn, args, kwargs = case.values
    with pytest.raises(PiopiyValidationError) as info:
        fn(*args, **kwargs)
    assert name in str(info.value)
    assert isinstance(info.value, ValueError)


def test_messages_name_the_allowed_values():
    cases = [
        (lambda: Action().stream(WS, {"listen_mode": "x"}), ["'caller'", "'callee'", "'both'"]),
        (lambda: Action().stream(WS, {"voice_quality": 1}), ["8000", "12000", "16000", "32000"]),
        (lambda: play_stream(audio_type="x"), ["'raw'", "'mp3'", "'wav'", "'ogg'"]),
        (lambda: play_stream(sample_rate=1), ["8000", "16000"]),
        (lambda: Action().input(ACTION_URL, {"x": 1}), ["max_digit", "timeout"]),
    ]
    for fn, allowed in cases:
        with pytest.raises(PiopiyValidationError) as info:
            fn()
        for value in allowed:
            assert value in str(info.value)


def test_a_refused_action_is_not_added(builder):
    with pytest.raises(PiopiyValidationError):
        builder.stream(WS, {"listen_mode": "all"})
    with pytest.raises(PiopiyValidationError):
        builder.call(1, 2, {"ring_type": "x"})
    assert len(builder) == 0


# --- as_pcmo ------------------------------------------------------------------------------------


def test_as_pcmo_accepts_a_list_a_json_string_and_a_builder():
    actions = [{"action": "speak", "text": "hi"}]
    assert as_pcmo(actions) == actions
    assert as_pcmo(json.dumps(actions)) == actions
    assert as_pcmo(json.dumps(actions).encode()) == actions
    assert as_pcmo(Action().speak("hi")) == actions
    stream = StreamAction().speak("hi")
    assert as_pcmo(stream) == actions
    assert len(stream) == 1  # passing the builder does not clear it


@pytest.mark.parametrize("empty", [[], "[]", (), Action(), StreamAction()], ids=repr)
def test_empty_pcmo_says_it_has_no_actions(empty):
    with pytest.raises(PiopiyValidationError, match="the PCMO has no actions"):
        as_pcmo(empty)


def test_the_product_example_mistake_is_caught():
    # The stream is added to one object and another, empty one's PCMO() is sent.
    action = Action()
    stream = StreamAction()
    action.stream(WS, {"listen_mode": "callee", "voice_quality": 8000, "stream_on_answer": True})
    with pytest.raises(PiopiyValidationError, match="the PCMO has no actions"):
        as_pcmo(stream.PCMO())


@pytest.mark.parametrize(
    "pcmo, text",
    [
        ("[{", "not valid JSON"),
        ('{"action": "hangup"}', "list"),
        (None, "list"),
        (42, "list"),
        ([{"text": "no action key"}], "pcmo[0]"),
        ([{"action": "hangup"}, "hangup"], "pcmo[1]"),
    ],
)
def test_as_pcmo_refusals(pcmo, text):
    with pytest.raises(PiopiyValidationError, match="pcmo") as info:
        as_pcmo(pcmo)
    assert text in str(info.value)
