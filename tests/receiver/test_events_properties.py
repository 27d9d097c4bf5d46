"""Properties of what a peer's text frames can do to a call, over generated inputs:
the parser never raises, keeps what it cannot use as it came, and what it names is
printable; format discovery always lands on a format the core runs."""
import json
import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from piopiy_fast.stream.events import (
    MAX_JSON_DEPTH,
    FormatHint,
    format_from_params,
    json_depth,
    parse_text_frame,
    resolve_format,
)
from piopiy_fast.stream.wire import LISTEN_MODES, SAMPLE_RATES, StreamFormat

UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=40)

call_fields = st.fixed_dictionaries({}, optional={
    "event": st.sampled_from(["start", "stop", "media", "START"]) | st.text(),
    "call_id": st.text() | st.integers(),
    "cmiuuid": st.text(),
    "from": st.text() | st.integers(),
    "to": st.text() | st.integers(),
    "sample_rate": st.sampled_from([8000, 12000, 16000, "16000", 44100, -1, "x"]),
    "channels": st.sampled_from([1, 2, 3, "2", None]),
    "listen_mode": st.sampled_from(["caller", "BOTH", " callee ", "nobody", 5]),
})


@settings(max_examples=400)
@given(st.text())
def test_any_text_parses_without_raising(text):
    event = parse_text_frame(text)
    try:
        expected = json.loads(text)
    except ValueError:
        expected = text
    if event.too_deep:
        assert event.data == text
    elif isinstance(expected, float) and math.isnan(expected):  # "NaN" is JSON to Python
        assert math.isnan(event.data)
    else:
        assert event.data == expected


@settings(max_examples=300)
@given(json_values)
def test_json_round_trips_and_depth_is_bounded(value):
    text = json.dumps(value)
    event = parse_text_frame(text)
    assert event.too_deep == (json_depth(text) > MAX_JSON_DEPTH)
    if not event.too_deep:
        assert event.data == value


@settings(max_examples=100)
@given(st.integers(min_value=0, max_value=3000), st.booleans())
def test_nesting_of_any_depth_never_raises(depth, lists):
    if lists:
        text = "[" * depth + "1" + "]" * depth
    else:
        text = '{"k": ' * depth + "1" + "}" * depth
    event = parse_text_frame(text)
    assert event.too_deep == (depth > MAX_JSON_DEPTH)
    assert event.data == (text if event.too_deep else json.loads(text))


@settings(max_examples=400)
@given(call_fields, st.sampled_from([None, "start", "data", "metadata"]))
def test_recognised_fields_are_printable_and_valid(fields, nest):
    body = {"event": "start", nest: fields} if nest else fields
    event = parse_text_frame(json.dumps(body))
    for named in (event.call_id, event.from_, event.to):
        assert named is None or not UNPRINTABLE.search(named)
    hint = event.format
    assert hint.sample_rate in (None, *SAMPLE_RATES)
    assert hint.listen_mode in (None, *LISTEN_MODES)
    assert hint.channels in (None, 1, 2)


hints = st.builds(FormatHint, st.sampled_from([None, *LISTEN_MODES]),
                  st.sampled_from([None, *SAMPLE_RATES]), st.sampled_from([None, 1, 2]))


@settings(max_examples=400)
@given(st.lists(hints, max_size=4), st.sampled_from(LISTEN_MODES),
       st.sampled_from(SAMPLE_RATES))
def test_format_discovery_lands_on_a_format_the_core_runs(sources, mode, rate):
    default = StreamFormat(mode, rate)
    found = resolve_format(*sources, default=default)
    assert found.listen_mode in LISTEN_MODES and found.sample_rate in SAMPLE_RATES
    # The rate: the first source naming one wins, else the default.
    named = [h.sample_rate for h in sources if h.sample_rate is not None]
    assert found.sample_rate == (named[0] if named else rate)
    # The first source naming the mode or the channels decides: two channels are
    # both parties interleaved; one channel under `both` is the mix; else its mode.
    for h in sources:
        if h.channels == 2:
            assert (found.listen_mode, found.layout) == ("both", "stereo")
            break
        if h.listen_mode is not None:
            assert found.listen_mode == h.listen_mode
            if h.listen_mode == "both":
                assert found.layout == ("mixed" if h.channels == 1 else "stereo")
            break
        if h.channels is not None:
            assert found.channels == 1
            break


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(["listen_mode", "voice_quality", "sample_rate", "x"]),
                       st.text() | st.lists(st.text(), max_size=2)))
def test_query_parameters_never_raise(params):
    hint = format_from_params(params)
    assert hint.listen_mode in (None, *LISTEN_MODES)
    assert hint.sample_rate in (None, *SAMPLE_RATES)
