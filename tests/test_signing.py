"""SignedURL: sign / verify round trips, every way a URL can be refused, and secrecy."""

import base64
import hashlib
import hmac
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piopiy_fast import errors
from piopiy_fast.errors import (
    PiopiyValidationError,
    SignatureError,
    SignatureExpiredError,
    SignatureMismatchError,
    SignatureMissingError,
)
from piopiy_fast.signing import SignedURL, with_query

SECRET = "s3cret-Key-that-must-never-leak-0123456789"
NOW = 1_700_000_000.0


class Clock:
    """A settable clock so expiry is tested without sleeping."""

    def __init__(self, now=NOW):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def signer(clock):
    return SignedURL(SECRET, clock=clock)


def path_of(url):
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def query_of(url):
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def with_raw_query(url, query):
    return f"{urlsplit(url).path}?{query}"


# --- round trips -------------------------------------------------------------------------


def test_sign_then_verify_returns_every_parameter(signer):
    url = signer.sign(
        "wss://example.com/stream", {"listen_mode": "both", "voice_quality": 16000}, 60
    )
    assert url.startswith("wss://example.com/stream?")
    assert signer.verify(path_of(url)) == {
        "listen_mode": "both",
        "voice_quality": "16000",
        "expires": str(int(NOW) + 60),
    }


def test_signature_is_the_last_parameter_and_existing_ones_keep_their_place(signer):
    url = signer.sign("wss://example.com/s?z=1&a=2", {"call_ref": "abc"}, 60)
    names = [k for k, _ in query_of(url)]
    assert names == ["z", "a", "call_ref", "expires", "signature"]
    assert signer.verify(path_of(url))["z"] == "1"


def test_known_answer_pins_the_canonical_form(signer):
    # The receiver side may be written against this exact form: path, '?', then the
    # parameters sorted by name, percent-encoded with nothing left unescaped.
    url = signer.sign("wss://h/stream", {"listen_mode": "both", "call_ref": "a b/c"}, 60)
    canonical = f"/stream?call_ref=a%20b%2Fc&expires={int(NOW) + 60}&listen_mode=both"
    digest = hmac.new(SECRET.encode(), canonical.encode(), hashlib.sha256).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert dict(query_of(url))["signature"] == expected


def test_empty_path_verifies_as_slash(signer):
    url = signer.sign("wss://example.com", {"a": "1"}, 60)
    assert signer.verify("/?" + urlsplit(url).query)["a"] == "1"


def test_full_url_and_other_host_verify(signer):
    url = signer.sign("wss://example.com:8443/stream", {"a": "1"}, 60)
    assert signer.verify(url)["a"] == "1"
    # The host is not covered: a tunnel or proxy in front may rewrite it.
    assert signer.verify(url.replace("example.com:8443", "127.0.0.1:9000"))["a"] == "1"


def test_path_only_input_to_sign(signer):
    url = signer.sign("/stream", {"a": "1"}, 60)
    assert url.startswith("/stream?")
    assert signer.verify(url)["a"] == "1"


def test_reencoding_in_transit_still_verifies(signer):
    url = signer.sign("wss://h/stream", {"name": "a b~c"}, 60)
    query = urlsplit(url).query
    assert "a%20b~c" in query
    assert signer.verify(with_raw_query(url, query.replace("a%20b~c", "a+b%7Ec")))["name"] == (
        "a b~c"
    )


def test_resigning_replaces_old_signature_and_expiry(signer, clock):
    first = signer.sign("wss://h/s", {"a": "1"}, 60)
    clock.now += 1000
    second = signer.sign(first, {"b": "2"}, 60)
    names = [k for k, _ in query_of(second)]
    assert names.count("signature") == 1 and names.count("expires") == 1
    assert signer.verify(second) == {"a": "1", "b": "2", "expires": str(int(NOW) + 1060)}


def test_params_replace_same_named_url_parameters(signer):
    url = signer.sign("wss://h/s?listen_mode=caller", {"listen_mode": "both"}, 60)
    assert signer.verify(url)["listen_mode"] == "both"
    assert [k for k, _ in query_of(url)].count("listen_mode") == 1


def test_default_expiry_is_one_hour(signer):
    assert signer.verify(signer.sign("wss://h/s"))["expires"] == str(int(NOW) + 3600)


@settings(derandomize=True, max_examples=150, deadline=None)
@given(
    path=st.text(min_size=0, max_size=20).map(lambda s: "/" + s.replace("?", "").replace("#", "")),
    params=st.dictionaries(
        st.text(min_size=1, max_size=10).filter(lambda k: k not in ("signature", "expires")),
        st.one_of(st.text(max_size=20), st.integers(min_value=-(10**12), max_value=10**12)),
        max_size=6,
    ),
)
def test_any_path_and_parameters_round_trip(path, params):
    signer = SignedURL(SECRET, clock=Clock())
    url = signer.sign("wss://example.com" + path.replace("%", "%25"), params, 60)
    got = signer.verify(url)
    assert got.pop("expires") == str(int(NOW) + 60)
    assert got == {k: str(v) for k, v in params.items()}


# --- refusals ----------------------------------------------------------------------------


def test_missing_signature(signer):
    with pytest.raises(SignatureMissingError):
        signer.verify("/stream?listen_mode=both&expires=99999999999")
    with pytest.raises(SignatureMissingError):
        signer.verify("/stream")


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda q: q.replace("listen_mode=both", "listen_mode=caller"), id="value"),
        pytest.param(lambda q: q.replace("voice_quality=8000&", ""), id="removed"),
        pytest.param(lambda q: "extra=1&" + q, id="added"),
        pytest.param(lambda q: "listen_mode=both&" + q, id="repeated"),
        pytest.param(lambda q: q + "&signature=x", id="second-signature"),
        pytest.param(lambda q: q.replace("expires=", "expires=9"), id="expiry-extended"),
        pytest.param(lambda q: q[:-2] + ("AA" if not q.endswith("AA") else "BB"), id="sig-bytes"),
        pytest.param(lambda q: q.rsplit("=", 1)[0] + "=%C3%A9t%C3%A9", id="non-ascii-sig"),
        pytest.param(lambda q: q.rsplit("=", 1)[0] + "=", id="empty-sig"),
    ],
)
def test_altered_query_is_a_mismatch(signer, tamper):
    url = signer.sign("wss://h/stream", {"listen_mode": "both", "voice_quality": 8000}, 60)
    with pytest.raises(SignatureMismatchError):
        signer.verify(with_raw_query(url, tamper(urlsplit(url).query)))


def test_altered_path_is_a_mismatch(signer):
    url = signer.sign("wss://h/stream", {"a": "1"}, 60)
    with pytest.raises(SignatureMismatchError):
        signer.verify(url.replace("/stream", "/other"))


def test_other_secret_is_a_mismatch(clock):
    url = SignedURL(SECRET, clock=clock).sign("wss://h/s", {"a": "1"}, 60)
    with pytest.raises(SignatureMismatchError):
        SignedURL(SECRET + "x", clock=clock).verify(url)
    assert SignedURL(SECRET.encode(), clock=clock).verify(url)["a"] == "1"


def test_expiry(signer, clock):
    url = signer.sign("wss://h/s", {"a": "1"}, 60)
    clock.now = NOW + 60  # the last valid second
    assert signer.verify(url)["a"] == "1"
    clock.now = NOW + 61
    with pytest.raises(SignatureExpiredError, match="expired 1 s ago"):
        signer.verify(url)


def test_correctly_signed_url_without_expiry_is_refused(signer):
    # Only possible when something other than sign() produced the URL.
    canonical = b"/s?a=1"
    mac = hmac.new(SECRET.encode(), canonical, hashlib.sha256).digest()
    sig = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    with pytest.raises(SignatureMismatchError, match="expires"):
        signer.verify(f"/s?a=1&signature={sig}")


def test_verify_compares_in_constant_time(signer, monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((type(a), type(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    signer.verify(signer.sign("wss://h/s", {"a": "1"}, 60))
    assert calls == [(bytes, bytes)]


def test_error_tree():
    for cls in (SignatureMissingError, SignatureMismatchError, SignatureExpiredError):
        assert issubclass(cls, SignatureError)
        assert issubclass(cls, errors.PiopiyError)
        assert not issubclass(cls, ValueError)


# --- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["", b"", None, 123, ["k"]])
def test_bad_secret(secret):
    with pytest.raises(PiopiyValidationError, match="secret"):
        SignedURL(secret)


@pytest.mark.parametrize("expires_in", [0, -1, True, "60", None, float("nan")])
def test_bad_expires_in(signer, expires_in):
    with pytest.raises(PiopiyValidationError, match="expires_in"):
        signer.sign("wss://h/s", {}, expires_in)


@pytest.mark.parametrize("name", ["signature", "expires"])
def test_reserved_parameter_names(signer, name):
    with pytest.raises(PiopiyValidationError, match=name):
        signer.sign("wss://h/s", {name: "1"}, 60)


@pytest.mark.parametrize("value", [None, 1.5, True, b"x", ["x"]])
def test_bad_parameter_value(signer, value):
    with pytest.raises(PiopiyValidationError, match="'p'"):
        signer.sign("wss://h/s", {"p": value}, 60)


def test_repeated_parameter_in_url(signer):
    with pytest.raises(PiopiyValidationError, match="'a'"):
        signer.sign("wss://h/s?a=1&a=2", {}, 60)


def test_fragment_refused(signer):
    with pytest.raises(PiopiyValidationError, match="fragment"):
        signer.sign("wss://h/s#x", {}, 60)


# --- secrecy -----------------------------------------------------------------------------


def test_secret_never_in_repr_or_messages(signer, clock):
    assert SECRET not in repr(signer) and SECRET not in str(signer)
    url = signer.sign("wss://h/s", {"a": "1"}, 60)
    texts = []
    for bad in ("/s?a=1", url.replace("a=1", "a=2"), url):
        if bad == url:
            clock.now += 3600
        try:
            signer.verify(bad)
        except SignatureError as exc:
            texts.append(str(exc) + repr(exc))
    assert len(texts) == 3
    expected_sig = dict(query_of(url))["signature"]
    for text in texts:
        assert SECRET not in text and expected_sig not in text


# --- with_query --------------------------------------------------------------------------


def test_with_query_sets_and_replaces():
    url = with_query("wss://h:1/p?x=1&listen_mode=caller", {"listen_mode": "both", "q": 8000})
    assert url == "wss://h:1/p?x=1&listen_mode=both&q=8000"
    assert with_query("wss://h/p", {"a": "b c/d"}) == "wss://h/p?a=b%20c%2Fd"


# --- lifetime cap ------------------------------------------------------------------------


def forged_far_ahead(seconds):
    """A URL signed with SECRET by a signer with no cap, valid ``seconds`` from NOW."""
    return SignedURL(SECRET, clock=Clock(), max_lifetime=None).sign("wss://h/s", {"a": "1"},
                                                                   seconds)


def test_default_max_lifetime_is_a_day(signer):
    assert signer.max_lifetime == 24 * 3600
    assert signer.verify(signer.sign("wss://h/s", {}, 24 * 3600))["expires"] == str(
        int(NOW) + 24 * 3600)


def test_a_url_signed_thirty_years_ahead_is_refused(signer):
    url = forged_far_ahead(30 * 365 * 24 * 3600)
    with pytest.raises(SignatureExpiredError,
                       match=r"valid for 946080000 s more, beyond the 86400 s this verifier "
                             r"accepts \(max_lifetime\)"):
        signer.verify(url)


def test_the_cap_allows_a_minute_of_clock_difference(signer):
    assert signer.verify(forged_far_ahead(24 * 3600 + 60))["a"] == "1"
    with pytest.raises(SignatureExpiredError, match="beyond the 86400 s"):
        signer.verify(forged_far_ahead(24 * 3600 + 61))


def test_the_cap_counts_from_the_time_of_verifying(clock):
    verifier = SignedURL(SECRET, clock=clock, max_lifetime=600)
    url = forged_far_ahead(3600)
    with pytest.raises(SignatureExpiredError):
        verifier.verify(url)
    clock.now = NOW + 3000  # 600 s left: within the cap now
    assert verifier.verify(url)["a"] == "1"


def test_sign_refuses_a_lifetime_beyond_the_cap(clock):
    signer = SignedURL(SECRET, clock=clock, max_lifetime=600)
    assert signer.sign("wss://h/s", {}, 600)
    with pytest.raises(PiopiyValidationError, match="expires_in 601 s is beyond max_lifetime"):
        signer.sign("wss://h/s", {}, 601)


def test_no_cap(clock):
    uncapped = SignedURL(SECRET, clock=clock, max_lifetime=None)
    assert uncapped.verify(forged_far_ahead(30 * 365 * 24 * 3600))["a"] == "1"


@pytest.mark.parametrize("max_lifetime", [0, -1, True, "60", float("nan"), float("inf")])
def test_bad_max_lifetime(max_lifetime):
    with pytest.raises(PiopiyValidationError, match="max_lifetime"):
        SignedURL(SECRET, max_lifetime=max_lifetime)
