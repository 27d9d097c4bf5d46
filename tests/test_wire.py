import base64
import json

import pytest

from piopiy_fast.errors import PiopiyValidationError
from piopiy_fast.sdk.webhooks import parse_stream_webhook
from piopiy_fast.stream.events import (
    FormatHint,
    call_id_from_params,
    format_from_params,
    parse_text_frame,
    query_params,
    resolve_format,
)
from piopiy_fast.stream.wire import (
    BREAK,
    PAUSE,
    RESUME,
    STOP,
    StreamFormat,
    control_message,
    start_event,
    stream_audio_message,
)

DEFAULT = StreamFormat("caller", 8000)


class TestTextFrames:
    def test_start_event_fields(self):
        text = json.dumps({"event": "start", "call_id": "c-1", "from": 919000000001,
                           "to": "1800", "sample_rate": 16000, "channels": 2,
                           "listen_mode": "both"})
        event = parse_text_frame(text)
        assert event.kind == "start"
        assert event.call_id == "c-1"
        assert event.from_ == "919000000001"
        assert event.to == "1800"
        assert event.format == FormatHint("both", 16000, 2)
        assert event.data == json.loads(text)
        assert event.recognised

    @pytest.mark.parametrize("key", ["call_id", "callId", "cmiuuid", "uuid"])
    def test_call_id_keys(self, key):
        assert parse_text_frame(json.dumps({key: "abc"})).call_id == "abc"

    def test_call_id_preference_order(self):
        event = parse_text_frame(json.dumps({"uuid": "u", "cmiuuid": "m", "callId": "k"}))
        assert event.call_id == "k"

    def test_numeric_strings_and_camel_case(self):
        event = parse_text_frame('{"type": "START", "sampleRate": "12000", "channels": "1"}')
        assert event.kind == "start"
        assert event.format == FormatHint(None, 12000, 1)

    def test_nested_start_object(self):
        event = parse_text_frame(
            '{"event": "start", "start": {"callId": "n1", "sample_rate": 8000}}')
        assert event.call_id == "n1"
        assert event.format.sample_rate == 8000

    def test_stop_event(self):
        assert parse_text_frame('{"event": "stop"}').kind == "stop"

    def test_plain_string_is_kept_raw(self):
        event = parse_text_frame("metadata: hello")
        assert event.data == "metadata: hello"
        assert not event.recognised

    def test_bytes_text(self):
        assert parse_text_frame(b'{"uuid": "b"}').call_id == "b"

    def test_json_that_is_not_an_object(self):
        assert parse_text_frame("[1, 2]").data == [1, 2]
        assert parse_text_frame("42").data == 42

    def test_unknown_json_kept_as_it_came(self):
        event = parse_text_frame('{"hello": {"x": 1}}')
        assert event.data == {"hello": {"x": 1}}
        assert not event.recognised

    @pytest.mark.parametrize("body", [
        '{"sample_rate": 11025}', '{"sample_rate": "fast"}', '{"channels": 3}',
        '{"listen_mode": "everyone"}', '{"sample_rate": true}', '{"sample_rate": null}'])
    def test_invalid_values_are_not_recognised(self, body):
        assert parse_text_frame(body).format == FormatHint()

    def test_broken_json_is_raw(self):
        assert parse_text_frame('{"event": ').data == '{"event": '


class TestFormat:
    def test_query_params(self):
        params = query_params("/stream?listen_mode=both&voice_quality=16000&call_id=q1")
        assert params == {"listen_mode": "both", "voice_quality": "16000", "call_id": "q1"}
        assert format_from_params(params) == FormatHint("both", 16000)
        assert call_id_from_params(params) == "q1"

    def test_query_without_format(self):
        assert format_from_params(query_params("/stream")) == FormatHint()
        assert call_id_from_params({}) is None

    def test_first_source_wins_per_field(self):
        start = FormatHint(sample_rate=16000)
        query = FormatHint("both", 8000)
        assert resolve_format(start, query, default=DEFAULT) == StreamFormat("both", 16000)

    def test_defaults_fill_the_rest(self):
        assert resolve_format(FormatHint(), default=DEFAULT) == DEFAULT

    def test_two_channels_mean_both(self):
        fmt = resolve_format(FormatHint(channels=2), FormatHint("callee"), default=DEFAULT)
        assert fmt == StreamFormat("both", 8000)
        assert fmt.channels == 2

    def test_one_channel_takes_a_later_mono_mode(self):
        fmt = resolve_format(FormatHint(channels=1), FormatHint("callee"), default=DEFAULT)
        assert fmt == StreamFormat("callee", 8000)

    def test_one_channel_with_a_later_both_is_the_mix(self):
        fmt = resolve_format(FormatHint(channels=1), FormatHint("both"), default=DEFAULT)
        assert fmt == StreamFormat("both", 8000, "mixed")
        assert (fmt.channels, fmt.channel_names) == (1, ("mix",))

    def test_a_named_layout_decides_the_mode(self):
        assert resolve_format(FormatHint(layout="mixed"), FormatHint("caller"),
                              default=DEFAULT) == StreamFormat("both", 8000, "mixed")
        assert resolve_format(FormatHint(layout="mono"), FormatHint("both"),
                              default=DEFAULT) == StreamFormat("caller", 8000)
        assert resolve_format(FormatHint("callee", layout="stereo"),
                              default=DEFAULT).channel_names == ("caller", "callee")

    def test_a_party_mode_is_always_mono(self):
        assert StreamFormat("callee", 16000, "stereo").layout == "mono"
        assert StreamFormat("both", 16000).layout == "stereo"
        assert StreamFormat("both", 16000, "mixed").bytes_per_second == 32000


class TestOutgoing:
    def test_control_messages(self):
        assert PAUSE == '{"action": "pause"}'
        assert RESUME == '{"action": "resume"}'
        assert STOP == '{"action": "stop"}'
        assert BREAK == '{"action": "break"}'

    def test_unknown_control_action(self):
        with pytest.raises(PiopiyValidationError, match="pause, resume, stop, break"):
            control_message("hangup")

    def test_stream_audio_from_bytes(self):
        pcm = b"\x01\x00\xff\x7f\x00\x80"
        message = json.loads(stream_audio_message(pcm, 8000))
        assert message == {"type": "streamAudio", "data": {
            "audioDataType": "raw", "sampleRate": 8000,
            "audioData": base64.b64encode(pcm).decode()}}

    def test_stream_audio_from_base64_text(self):
        message = json.loads(stream_audio_message("AAAA", "16000", "wav"))
        assert message["data"] == {"audioDataType": "wav", "sampleRate": 16000,
                                   "audioData": "AAAA"}

    def test_stream_audio_validation(self):
        with pytest.raises(PiopiyValidationError, match="raw, mp3, wav, ogg"):
            stream_audio_message(b"", 8000, "flac")
        with pytest.raises(PiopiyValidationError, match="8000, 12000, 16000"):
            stream_audio_message(b"", 44100)

    def test_start_event(self):
        assert json.loads(start_event("s-1", StreamFormat("both", 12000), to="99")) == {
            "event": "start", "call_id": "s-1", "listen_mode": "both", "sample_rate": 12000,
            "channels": 2, "to": "99"}


class TestWebhooks:
    CONNECTED = {"appid": 2222224, "direction": "inbound", "from": 440000000000, "leg": "b",
                 "status": "stream_connected", "time": 1725975496000,
                 "cmiuuid": "c4ec9bd2-efad-4296-aa5b-eeafa6aeeea0",
                 "ws_status": '{"status":"connected"}'}
    DISCONNECTED = dict(CONNECTED, status="STREAM_DISCONNECTED", ws_status=(
        '{"status":"disconnected","message":{"code":1006,"reason":"Abnormal closure"}}'))

    def test_connected(self):
        hook = parse_stream_webhook(self.CONNECTED)
        assert (hook.event, hook.call_id, hook.leg, hook.ws_status, hook.code, hook.reason) == (
            "connected", "c4ec9bd2-efad-4296-aa5b-eeafa6aeeea0", "b", "connected", None, None)
        assert hook.connected
        assert hook.raw == self.CONNECTED

    def test_disconnected_from_json_text(self):
        hook = parse_stream_webhook(json.dumps(self.DISCONNECTED).encode())
        assert (hook.event, hook.ws_status, hook.code, hook.reason) == (
            "disconnected", "disconnected", 1006, "Abnormal closure")
        assert not hook.connected

    def test_ws_status_already_an_object(self):
        body = dict(self.DISCONNECTED, ws_status={"status": "disconnected",
                                                  "message": {"code": "1000", "reason": ""}})
        hook = parse_stream_webhook(body)
        assert (hook.code, hook.reason) == (1000, None)

    def test_form_encoded(self):
        hook = parse_stream_webhook("status=stream_connected&cmiuuid=abc&leg=a")
        assert (hook.event, hook.call_id, hook.leg, hook.ws_status) == (
            "connected", "abc", "a", None)

    def test_not_a_webhook(self):
        with pytest.raises(PiopiyValidationError):
            parse_stream_webhook("")
        with pytest.raises(PiopiyValidationError):
            parse_stream_webhook("[1]")
