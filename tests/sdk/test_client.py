"""RestClient against a real HTTP server on 127.0.0.1: exact payloads and endpoints,
retries, timeouts, typed errors, and the token kept out of every message.
"""

import itertools
import json
import logging
import socket
import time

import pytest
from http_recorder import HttpRecorder, Reply
from test_actions import ref_bridge

from piopiy_fast.errors import PiopiyAPIError, PiopiyNetworkError, PiopiyValidationError
from piopiy_fast.sdk.actions import Action, StreamAction
from piopiy_fast.sdk.client import RestClient

APP_ID = 2222222
TOKEN = "tok-9f8e7d6c-SECRET-5b4a"
TO = 919999999999
IND_NO = 918888888888  # 91 then 8: an Indian mobile number
GLOBAL_NO = 4471000000
WS = "wss://example.com/stream"


@pytest.fixture(scope="module")
def shared_server():
    with HttpRecorder() as recorder:
        yield recorder


@pytest.fixture
def server(shared_server):
    # One server for the module (starting and stopping one per test costs seconds);
    # each test starts with no requests and an empty script.
    shared_server.reset()
    return shared_server


def client_for(server, **kwargs):
    kwargs.setdefault("timeout", 2.0)
    kwargs.setdefault("backoff", 0.01)
    return RestClient(APP_ID, TOKEN, base_url=server.url, **kwargs)


@pytest.fixture
def client(server):
    return client_for(server)


def call_payload(to, piopiy_no, pcmo, duration=5400, extra_params=None):
    """The official SDK's call body, in its key order."""
    return json.dumps(
        {
            "appid": APP_ID,
            "secret": TOKEN,
            "extra_params": {} if extra_params is None else extra_params,
            "from": piopiy_no,
            "duration": duration,
            "pcmo": pcmo,
            "to": to,
        }
    ).encode()


def subsets(options):
    keys = list(options)
    for mask in itertools.product((False, True), repeat=len(keys)):
        yield {k: options[k] for k, keep in zip(keys, mask, strict=False) if keep}


CALL_OPTIONS = {
    "duration": 90,
    "timeout": 25,
    "loop": 2,
    "ring_type": "group",
    "extra_params": {"order": "A-17"},
}


# --- placing calls -------------------------------------------------------------------------


def test_call_with_a_pcmo_list(server, client):
    pcmo = Action().stream(WS, {"listen_mode": "both", "voice_quality": 16000}).PCMO()
    server.default = Reply(200, {"code": 200, "request_id": "r1"})
    assert client.voice.call(TO, GLOBAL_NO, pcmo) == {"code": 200, "request_id": "r1"}
    (req,) = server.requests
    assert req.method == "POST"
    assert req.path == "/v2/global_pcmo_make_call"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["User-Agent"].startswith("piopiy-fast")
    assert req.body == call_payload(TO, GLOBAL_NO, pcmo)


@pytest.mark.parametrize(
    "piopiy_no, path",
    [
        (918888888888, "/v2/ind_pcmo_make_call"),
        (916000000000, "/v2/ind_pcmo_make_call"),
        (917999999999, "/v2/ind_pcmo_make_call"),
        (919000000000, "/v2/ind_pcmo_make_call"),
        (915888888888, "/v2/global_pcmo_make_call"),  # 5 after 91: not a mobile
        (91888888888, "/v2/global_pcmo_make_call"),  # one digit short
        (9188888888881, "/v2/global_pcmo_make_call"),  # one digit long
        (4471000000, "/v2/global_pcmo_make_call"),
        (14155550100, "/v2/global_pcmo_make_call"),
    ],
)
def test_endpoint_choice(server, client, piopiy_no, path):
    client.voice.call(TO, piopiy_no, [{"action": "hangup"}])
    assert server.requests[0].path == path


def test_call_with_a_stream_action_json_string(server, client):
    # The product's streaming example, corrected: one object builds and sends the PCMO.
    stream = StreamAction()
    stream.stream(WS, {"listen_mode": "callee", "voice_quality": 8000, "stream_on_answer": True})
    text = stream.PCMO()
    client.voice.call(TO, IND_NO, text, {"loop": 1, "timeout": 40, "duration": 30})
    (req,) = server.requests
    assert req.path == "/v2/ind_pcmo_make_call"
    assert req.body == call_payload(TO, IND_NO, json.loads(text), duration=30)


def test_call_with_the_builder_itself(server, client):
    action = Action().speak("hello").hangup()
    client.voice.call(TO, GLOBAL_NO, action)
    assert server.requests[0].body == call_payload(TO, GLOBAL_NO, action.PCMO())


@pytest.mark.parametrize("options", [None, *subsets(CALL_OPTIONS)], ids=repr)
def test_call_with_a_pcmo_every_option_combination(server, client, options):
    pcmo = [{"action": "speak", "text": "hi"}]
    client.voice.call(TO, GLOBAL_NO, pcmo, options)
    opts = options or {}
    assert server.requests[0].body == call_payload(
        TO, GLOBAL_NO, pcmo, opts.get("duration", 5400), opts.get("extra_params")
    )


@pytest.mark.parametrize("forward", [917777777777, [917777777777], [911, 912, 913]])
@pytest.mark.parametrize("options", [None, *subsets(CALL_OPTIONS)], ids=repr)
def test_call_with_numbers_every_option_combination(server, client, forward, options):
    client.voice.call(TO, IND_NO, forward, options)
    numbers = forward if isinstance(forward, list) else [forward]
    opts = options or {}
    expected = call_payload(
        TO,
        IND_NO,
        [ref_bridge(numbers, IND_NO, options)],
        opts.get("duration", 5400),
        opts.get("extra_params"),
    )
    (req,) = server.requests
    assert req.path == "/v2/ind_pcmo_make_call"
    assert req.body == expected


def test_extra_params_may_be_a_string(server, client):
    client.voice.call(TO, GLOBAL_NO, [{"action": "hangup"}], {"extra_params": "{ID=7}"})
    assert server.requests[0].json["extra_params"] == "{ID=7}"


# --- call actions --------------------------------------------------------------------------

CALL_ACTIONS = [
    ("hold", "hold"),
    ("unhold", "unhold"),
    ("toggle", "holdToggle"),
    ("hangup", "hangup"),
    ("transfer", "transfer"),
]


@pytest.mark.parametrize("method, action", CALL_ACTIONS)
@pytest.mark.parametrize("on", ["client", "voice"])
def test_call_actions(server, client, method, action, on):
    server.default = Reply(200, {"code": 200, "status": "ok"})
    target = client if on == "client" else client.voice
    assert getattr(target, method)("cmi-uuid-1") == {"code": 200, "status": "ok"}
    (req,) = server.requests
    assert (req.method, req.path) == ("POST", "/v1/call/action")
    assert req.body == json.dumps(
        {"appid": APP_ID, "secret": TOKEN, "cmiuuid": "cmi-uuid-1", "action": action}
    ).encode()


def test_call_actions_can_go_to_their_own_host():
    with HttpRecorder() as calls, HttpRecorder() as actions:
        client = RestClient(APP_ID, TOKEN, base_url=calls.url, action_base_url=actions.url + "/")
        client.hangup("u1")
        client.voice.call(TO, GLOBAL_NO, 917777777777)
        assert [r.path for r in actions.requests] == ["/v1/call/action"]
        assert [r.path for r in calls.requests] == ["/v2/global_pcmo_make_call"]


def test_default_hosts():
    client = RestClient(APP_ID, TOKEN)
    assert client.base_url == "https://rest.telecmi.com"
    assert client.action_base_url == "https://piopiy.telecmi.com"


@pytest.mark.parametrize(
    "body, parsed",
    [
        (b'{"a": [1, 2]}', {"a": [1, 2]}),
        (b"OK", "OK"),
        (b"", None),
        (b"  \n", None),
    ],
)
def test_answers_are_parsed(server, client, body, parsed):
    server.default = Reply(200, body)
    assert client.hold("u") == parsed


# --- API errors and retries ----------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 404, 420, 422])
def test_client_errors_are_not_retried(server, client, status):
    server.default = Reply(status, {"code": status, "msg": "Invalid app id or secret"})
    with pytest.raises(PiopiyAPIError) as info:
        client.voice.call(TO, GLOBAL_NO, 917777777777)
    assert info.value.status == status
    assert info.value.body == {"code": status, "msg": "Invalid app id or secret"}
    assert f"HTTP {status}" in str(info.value) and "Invalid app id" in str(info.value)
    assert len(server.requests) == 1


def test_503_then_200_is_retried(server):
    server.script = [Reply(503, "busy")]
    server.default = Reply(200, {"code": 200})
    client = client_for(server, retries=2)
    assert client.voice.call(TO, GLOBAL_NO, 917777777777) == {"code": 200}
    assert len(server.requests) == 2
    assert server.requests[0].body == server.requests[1].body


def test_429_then_200_is_retried_honouring_retry_after(server):
    server.script = [Reply(429, {"msg": "slow down"}, headers={"Retry-After": "1"})]
    client = client_for(server, backoff=0.001, max_backoff=0.3)
    start = time.monotonic()
    client.hangup("u")
    elapsed = time.monotonic() - start
    assert len(server.requests) == 2
    assert 0.3 <= elapsed < 1.0  # Retry-After 1 s, capped by max_backoff


def test_5xx_retries_are_bounded_with_backoff(server):
    server.default = Reply(500, {"error": "boom"})
    client = client_for(server, retries=3, backoff=0.02, max_backoff=1.0)
    start = time.monotonic()
    with pytest.raises(PiopiyAPIError) as info:
        client.hold("u")
    elapsed = time.monotonic() - start
    assert info.value.status == 500 and info.value.body == {"error": "boom"}
    assert "after 4 attempt(s)" in str(info.value)
    assert len(server.requests) == 4
    assert elapsed >= 0.02 + 0.04 + 0.08


def test_retries_zero_means_one_attempt(server):
    server.default = Reply(502, "bad gateway")
    with pytest.raises(PiopiyAPIError) as info:
        client_for(server, retries=0).hold("u")
    assert info.value.status == 502 and info.value.body == "bad gateway"
    assert len(server.requests) == 1


def test_redirects_are_reported_not_followed(server, client):
    server.default = Reply(302, "", headers={"Location": server.url + "/elsewhere"})
    with pytest.raises(PiopiyAPIError) as info:
        client.hold("u")
    assert info.value.status == 302 and info.value.body is None
    assert str(info.value).endswith("/v1/call/action answered HTTP 302 after 1 attempt(s)")
    assert len(server.requests) == 1


def test_long_error_bodies_are_shortened_in_the_message(server, client):
    server.default = Reply(400, "x" * 5000)
    with pytest.raises(PiopiyAPIError) as info:
        client.hold("u")
    assert len(str(info.value)) < 400
    assert info.value.body == "x" * 5000


# --- network errors and timeouts -----------------------------------------------------------


def test_a_stalled_server_times_out_and_is_not_retried(server):
    server.default = Reply(200, {}, delay=30)
    client = client_for(server, timeout=0.2, retries=3)
    start = time.monotonic()
    with pytest.raises(PiopiyNetworkError) as info:
        client.voice.call(TO, GLOBAL_NO, 917777777777)
    elapsed = time.monotonic() - start
    assert 0.2 <= elapsed < 1.5
    assert "no answer within 0.2 s" in str(info.value)
    assert len(server.requests) == 1  # the call may have been placed: never sent twice


def test_a_dropped_connection_is_a_network_error(server, client):
    server.default = Reply(drop=True)
    with pytest.raises(PiopiyNetworkError, match="connection lost"):
        client.hangup("u")
    assert len(server.requests) == 1


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_retried_then_reported(caplog):
    url = f"http://127.0.0.1:{closed_port()}"
    client = RestClient(APP_ID, TOKEN, base_url=url, retries=2, backoff=0.02, timeout=1)
    start = time.monotonic()
    with caplog.at_level(logging.DEBUG, logger="piopiy_fast"):
        with pytest.raises(PiopiyNetworkError) as info:
            client.voice.call(TO, GLOBAL_NO, 917777777777)
    elapsed = time.monotonic() - start
    assert "cannot connect" in str(info.value) and "after 3 attempt(s)" in str(info.value)
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == 2
    assert elapsed >= 0.02 + 0.04


def test_tls_failures_are_not_retried(server, caplog):
    # https:// to a plain HTTP server: the handshake fails, and asking again won't help.
    client = RestClient(
        APP_ID, TOKEN, base_url=server.url.replace("http:", "https:"), retries=3, backoff=0.01
    )
    with caplog.at_level(logging.DEBUG, logger="piopiy_fast"):
        with pytest.raises(PiopiyNetworkError, match="after 1 attempt"):
            client.hold("u")
    assert not [r for r in caplog.records if "retry" in r.getMessage()]


def test_connection_refused_then_a_server_appears():
    # The port is closed for the first attempt; the server opens while the client
    # waits to retry (started from the retry's log record, so no race).
    port = closed_port()
    servers = []

    class StartServer(logging.Handler):
        def emit(self, record):
            if not servers:
                servers.append(HttpRecorder(default=Reply(200, {"code": 200}), port=port))
                servers[0].__enter__()

    handler = StartServer()
    logger = logging.getLogger("piopiy_fast.sdk")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    client = RestClient(
        APP_ID, TOKEN, base_url=f"http://127.0.0.1:{port}", retries=2, backoff=0.01, timeout=1
    )
    try:
        assert client.hangup("u") == {"code": 200}
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        for server in servers:
            server.__exit__(None, None, None)
    assert len(servers) == 1 and len(servers[0].requests) == 1


# --- validation: nothing is sent -----------------------------------------------------------


def bad(fn, name):
    return pytest.param(fn, name, id=name)


def call(client, *args):
    return client.voice.call(*args)


INVALID_CALLS = [
    bad(lambda c: call(c, "+919999999999", GLOBAL_NO, [{"action": "hangup"}]), "to"),
    bad(lambda c: call(c, "91 9999", GLOBAL_NO, [{"action": "hangup"}]), "to"),
    bad(lambda c: call(c, True, GLOBAL_NO, [{"action": "hangup"}]), "to"),
    bad(lambda c: call(c, TO, None, [{"action": "hangup"}]), "piopiy_no"),
    bad(lambda c: call(c, TO, 0, [{"action": "hangup"}]), "piopiy_no"),
    bad(lambda c: call(c, TO, GLOBAL_NO, None), "pcmo_or_number"),
    bad(lambda c: call(c, TO, GLOBAL_NO, 9.1e11), "pcmo_or_number"),
    bad(lambda c: call(c, TO, GLOBAL_NO, True), "pcmo_or_number"),
    bad(lambda c: call(c, TO, GLOBAL_NO, {"action": "hangup"}), "pcmo_or_number"),
    bad(lambda c: call(c, TO, GLOBAL_NO, "not json"), "pcmo"),
    bad(lambda c: call(c, TO, GLOBAL_NO, [917777777777, "x"]), "pcmo[0]"),
    bad(lambda c: call(c, TO, GLOBAL_NO, 917777777777, {"ring_type": "x"}), "ring_type"),
    bad(lambda c: call(c, TO, GLOBAL_NO, 917777777777, {"loop": 0}), "loop"),
    bad(lambda c: call(c, TO, GLOBAL_NO, [{"action": "hangup"}], {"ring_type": "x"}), "ring_type"),
    bad(lambda c: call(c, TO, GLOBAL_NO, [{"action": "hangup"}], {"timeout": 0}), "timeout"),
    bad(lambda c: call(c, TO, GLOBAL_NO, [{"action": "hangup"}], {"duration": 0}), "duration"),
    bad(lambda c: call(c, TO, GLOBAL_NO, [{"action": "hangup"}], {"duration": "9"}), "duration"),
    bad(lambda c: call(c, TO, GLOBAL_NO, [{"action": "hangup"}], {"extra_params": [1]}),
        "extra_params"),
    bad(lambda c: call(c, TO, GLOBAL_NO, [{"action": "hangup"}], {"durations": 9}), "'durations'"),
    bad(lambda c: call(c, TO, GLOBAL_NO, [{"action": "speak", "text": {1}}]), "pcmo_or_number"),
    bad(lambda c: call(c, TO, GLOBAL_NO, [{"action": "x", "n": float("nan")}]), "pcmo_or_number"),
    bad(lambda c: call(c, TO, GLOBAL_NO, [{"action": "hangup"}], {"extra_params": {"a": {1}}}),
        "extra_params"),
    bad(lambda c: call(c, TO, GLOBAL_NO, [{"action": "hangup"}], "none"), "options"),
    bad(lambda c: c.hold(123), "cmiuuid"),
    bad(lambda c: c.unhold(""), "cmiuuid"),
    bad(lambda c: c.voice.toggle(None), "cmiuuid"),
    bad(lambda c: c.hangup(b"u"), "cmiuuid"),
    bad(lambda c: c.transfer(""), "cmiuuid"),
]


@pytest.mark.parametrize("fn, name", INVALID_CALLS)
def test_invalid_call_arguments(server, client, fn, name):
    with pytest.raises(PiopiyValidationError) as info:
        fn(client)
    assert name in str(info.value)
    assert TOKEN not in str(info.value)
    assert server.requests == []


@pytest.mark.parametrize("empty", [[], "[]", (), Action(), StreamAction()], ids=repr)
def test_an_empty_pcmo_is_refused(server, client, empty):
    with pytest.raises(PiopiyValidationError, match="the PCMO has no actions"):
        client.voice.call(TO, GLOBAL_NO, empty)
    assert server.requests == []


def test_the_product_streaming_example_mistake_is_refused(server, client):
    # The example adds the stream to an Action and sends an empty StreamAction's PCMO.
    action = Action()
    stream = StreamAction()
    with pytest.warns(UserWarning, match="12000"):
        action.stream(WS, {"listen_mode": "callee", "voice_quality": 12000,
                           "stream_on_answer": True})
    options = {"timeout": 40, "loop": 2, "duration": 80, "ring_type": "group"}
    with pytest.raises(PiopiyValidationError, match="the PCMO has no actions"):
        client.voice.call(9198333333, 91898989, stream.PCMO(), options)
    assert server.requests == []


def test_the_readme_example_places_the_stream(server, client):
    stream = StreamAction()
    with pytest.warns(UserWarning, match="12000"):
        stream.stream(WS, {"listen_mode": "callee", "voice_quality": 12000,
                           "stream_on_answer": True})
    client.voice.call(919999999999, 918888888888, stream.PCMO(), {"duration": 80})
    (req,) = server.requests
    assert req.path == "/v2/ind_pcmo_make_call"
    assert req.json["pcmo"] == [
        {
            "action": "stream",
            "ws_url": WS,
            "listen_mode": "callee",
            "voice_quality": 12000,
            "stream_on_answer": True,
        }
    ]
    assert req.json["duration"] == 80


@pytest.mark.parametrize(
    "args, kwargs, name",
    [
        (("your_app_id", TOKEN), {}, "app_id"),
        (("22x", TOKEN), {}, "app_id"),
        (("-5", TOKEN), {}, "app_id"),
        ((True, TOKEN), {}, "app_id"),
        ((0, TOKEN), {}, "app_id"),
        ((APP_ID, ""), {}, "app_token"),
        ((APP_ID, None), {}, "app_token"),
        ((APP_ID, TOKEN), {"base_url": "ftp://x"}, "base_url"),
        ((APP_ID, TOKEN), {"base_url": "rest.telecmi.com"}, "base_url"),
        ((APP_ID, TOKEN), {"action_base_url": "http://"}, "action_base_url"),
        ((APP_ID, TOKEN), {"timeout": 0}, "timeout"),
        ((APP_ID, TOKEN), {"timeout": "10"}, "timeout"),
        ((APP_ID, TOKEN), {"timeout": None}, "timeout"),
        ((APP_ID, TOKEN), {"retries": -1}, "retries"),
        ((APP_ID, TOKEN), {"retries": 1.5}, "retries"),
        ((APP_ID, TOKEN), {"retries": True}, "retries"),
        ((APP_ID, TOKEN), {"backoff": -0.1}, "backoff"),
        ((APP_ID, TOKEN), {"max_backoff": float("nan")}, "max_backoff"),
    ],
)
def test_invalid_constructor_arguments(args, kwargs, name):
    with pytest.raises(PiopiyValidationError) as info:
        RestClient(*args, **kwargs)
    assert name in str(info.value)
    assert TOKEN not in str(info.value)


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        RestClient(APP_ID, TOKEN, "http://127.0.0.1:1")


# --- the token stays secret ----------------------------------------------------------------


def test_token_not_in_repr(client):
    for text in (repr(client), str(client), repr(client.voice), repr(client._token)):
        assert TOKEN not in text
    assert repr(client).startswith(f"RestClient(app_id={APP_ID}, base_url='http://127.0.0.1:")


def test_token_not_in_any_error_or_log_line(server, caplog):
    texts = []

    def collect(exc):
        texts.extend([str(exc), repr(exc), repr(exc.args)])
        if exc.__cause__ is not None:
            texts.append(repr(exc.__cause__))
        if isinstance(exc, PiopiyAPIError):
            texts.append(json.dumps(exc.body))

    # An API error whose body echoes the request, secret included.
    server.script = [
        Reply(503, {"echo": {"secret": TOKEN}}),
        Reply(401, {"msg": f"bad secret {TOKEN}", TOKEN: [TOKEN]}),
        Reply(500, f"secret={TOKEN}"),
        Reply(200, {}, delay=30),
    ]
    client = client_for(server, retries=1, timeout=0.2)
    with caplog.at_level(logging.DEBUG, logger="piopiy_fast"):
        with pytest.raises(PiopiyAPIError) as info:
            client.voice.call(TO, GLOBAL_NO, 917777777777)
        collect(info.value)
        assert info.value.body == {"msg": "bad secret <hidden>", "<hidden>": ["<hidden>"]}
        with pytest.raises(PiopiyAPIError) as info:
            client_for(server, retries=0).hold("u")
        collect(info.value)
        assert info.value.body == "secret=<hidden>"
        with pytest.raises(PiopiyNetworkError) as info:
            client.hangup("u")
        collect(info.value)
        refused = RestClient(
            APP_ID, TOKEN, base_url=f"http://127.0.0.1:{closed_port()}", retries=1, backoff=0.01
        )
        with pytest.raises(PiopiyNetworkError) as info:
            refused.toggle("u")
        collect(info.value)
    assert len(texts) >= 12
    assert caplog.records, "retries are logged"
    texts.extend(r.getMessage() for r in caplog.records)
    for text in texts:
        assert TOKEN not in text
    # The token did travel where it belongs: in the request bodies.
    assert all(TOKEN in r.json["secret"] for r in server.requests)


def test_ids_and_numbers_as_strings_of_digits_are_sent_as_ints():
    # As they come from an environment variable, a form or a CSV file.
    with HttpRecorder(default=Reply(200, {"code": 200})) as server:
        client = RestClient(str(APP_ID), TOKEN, base_url=server.url)
        assert client.app_id == APP_ID
        client.voice.call(f" {TO} ", str(GLOBAL_NO), [{"action": "hangup"}])
        body = server.requests[0].json
    assert (body["appid"], body["to"], body["from"]) == (APP_ID, TO, GLOBAL_NO)


def test_credentials_from_the_environment(monkeypatch):
    monkeypatch.setenv("PIOPIY_APP_ID", str(APP_ID))
    monkeypatch.setenv("PIOPIY_APP_TOKEN", TOKEN)
    with HttpRecorder(default=Reply(200, {"code": 200})) as server:
        client = RestClient(base_url=server.url)
        client.hangup("u-1")
        assert server.requests[0].json["appid"] == APP_ID
        assert server.requests[0].json["secret"] == TOKEN
    monkeypatch.delenv("PIOPIY_APP_TOKEN")
    with pytest.raises(PiopiyValidationError,
                       match="^app_token was not given and PIOPIY_APP_TOKEN is not set$"):
        RestClient()
    monkeypatch.delenv("PIOPIY_APP_ID")
    with pytest.raises(PiopiyValidationError,
                       match="^app_id was not given and PIOPIY_APP_ID is not set$"):
        RestClient(app_token=TOKEN)
