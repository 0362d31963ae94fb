"""Any text screens without crashing, within bounded time, with spans into the original."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vetline.policy.engine import CompiledPolicy, Scope, load_pack

GENERAL = load_pack("general_brand_safety")
FINSERV = load_pack("financial_services")

NASTY = st.sampled_from(
    [
        "\u200d",
        "\u200b",
        "\u202e",
        "\u2066",
        "\ufe0f",
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",
        "\U0001f3f3\ufe0f\u200d\U0001f308",
        "e\u0301",
        "\u0915\u094d\u0937",
        "\u05e9\u05dc\u05d5\u05dd",
        "\u0645\u0631\u062d\u0628\u0627",
        "\ud800",
        "\udfff",
        "ﬁ",
        "ß",
        "İ",
        "\x00",
        "\r\n",
        "f*ck",
        "4111 1111 1111 1111",
        "#Sandy",
        "http://xn--cmebank-1fg.com",
        "a@b.co",
        "guaranteed returns",
        "\u0430cme.com",
        " ",
        "$",
        "1",
        "spring collection",
        "uproar",
    ]
)
TEXTS = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(NASTY, st.text(max_size=5)), max_size=60).map("".join),
)


def _check(policy: CompiledPolicy, text: str, scope: Scope) -> None:
    result = policy.screen(text, scope, signals=True)
    for hit in result.hits:
        assert 0 <= hit.start <= hit.end <= len(text)
        assert text[hit.start : hit.end] == hit.matched_text
        if hit.details.get("signal") is None:
            assert hit.end > hit.start


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS, st.sampled_from(list(Scope)))
def test_any_text_screens_and_spans_index_the_original(text: str, scope: Scope) -> None:
    _check(GENERAL, text, scope)
    _check(FINSERV, text, scope)


def test_lone_surrogates_from_the_api_do_not_crash() -> None:
    text = "bad \udcff input \ud83d with f*ck and 4111 1111 1111 1111"
    result = GENERAL.screen(text)
    assert result.verdict is not None
    for hit in result.hits:
        assert text[hit.start : hit.end] == hit.matched_text


def test_100kb_inputs_screen_in_bounded_time() -> None:
    samples = [
        "a" * 100_000,
        "a " * 50_000,
        "f u c k " * 12_500,
        "1" * 100_000,
        "1-" * 50_000,
        ("x." * 50_000),
        "\u200b" * 100_000,
        ("\U0001f468\u200d" * 33_000),
        ("guaranteed returns " * 5_300),
        "@" * 50_000 + "a" * 50_000,
        ("4111 1111 1111 1111 " * 5_000),
        "".join(chr(0x0600 + (i % 200)) for i in range(100_000)),
    ]
    for text in samples:
        start = time.perf_counter()
        _check(GENERAL, text, Scope.OUTBOUND_POST)
        _check(FINSERV, text, Scope.DIRECT_MESSAGE)
        assert time.perf_counter() - start < 5.0, text[:20]
