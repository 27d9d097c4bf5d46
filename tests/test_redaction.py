"""printable(): what a peer sends (a call id, a request path) can never fake a log line,
repaint a terminal or show its text in another order than it has."""

import pytest

from piopiy_fast.redaction import printable

BIDI = ["\u061c", "\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
        "\u2066", "\u2067", "\u2068", "\u2069"]


@pytest.mark.parametrize(("text", "shown"), [
    ("sim-001", "sim-001"),
    ("a\nb", "a\\nb"),
    ("a\r\nb", "a\\r\\nb"),
    ("\t", "\\t"),
    ("\x00\x01\x1b[31m", "\\x00\\x01\\x1b[31m"),
    ("\x7f", "\\x7f"),
    ("\x80\x85\x9b\x9f", "\\x80\\x85\\x9b\\x9f"),
    ("\u2028\u2029", "\\u2028\\u2029"),
    # An override that would show "/stream?evil" as "/stream?live" read backwards.
    ("/stream\u202elive", "/stream\\u202elive"),
    ("\u2066x\u2069", "\\u2066x\\u2069"),
    ("\u061c\u200e\u200f", "\\u061c\\u200e\\u200f"),
    ("caf\u00e9 \u0928\u092e\u0938\u094d\u0924\u0947",
     "caf\u00e9 \u0928\u092e\u0938\u094d\u0924\u0947"),
])
def test_exact_escapes(text, shown):
    assert printable(text) == shown


def test_every_control_is_escaped_and_nothing_else_changes():
    for code in range(0x3000):
        char = chr(code)
        control = code < 0x20 or 0x7f <= code <= 0x9f or char in BIDI or char in "\u2028\u2029"
        result = printable(char)
        if control:
            assert result.startswith("\\") and result.isascii() and result.isprintable(), code
        else:
            assert result == char, code


def test_a_forged_log_line_stays_on_one_line():
    forged = "call-1 ended\n2026-01-01 00:00:00 WARNING piopiy_fast: admin logged in"
    assert "\n" not in printable(forged)
    assert printable(forged).count("\\n") == 1


def test_limit():
    assert printable("x" * 200) == "x" * 128 + "..."
    assert printable("ab\ncd", limit=3) == "ab\\n..."
