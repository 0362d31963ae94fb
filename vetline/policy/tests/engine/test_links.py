from __future__ import annotations

import pytest

from vetline.policy.engine.links import (
    LinkChecker,
    damerau_levenshtein,
    extract_links,
    load_domain_list,
    registrable_domain,
)
from vetline.policy.engine.normalize import fold

CHECKER = LinkChecker(
    checks=("deny", "lookalike", "shortener"),
    allow_domains=["acmebank.net"],
    deny_domains=["evil.example", "phish.io"],
    brand_domains=["acmebank.com"],
)


def _findings(text: str) -> list[tuple[str, str]]:
    view = fold(text)
    out = []
    for f in CHECKER.check(view, extract_links(view.text)):
        s, e = view.to_original(f.link.start, f.link.end)
        out.append((f.check, text[s:e]))
    return out


def test_extracts_urls_www_and_bare_domains() -> None:
    text = "See https://a.example/x?y=1, www.foo.org/path and bar.com. Not e.g. or v2.1"
    assert [link.url for link in extract_links(fold(text).text)] == [
        "https://a.example/x?y=1",
        "www.foo.org/path",
        "bar.com",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("visit https://acmebank.com/login", []),
        ("visit login.acmebank.com", []),
        ("visit acmebank.net", []),  # explicitly allowed
        (
            "visit https://\u0430cmebank.com/login",
            [("lookalike", "https://\u0430cmebank.com/login")],
        ),
        ("visit https://xn--cmebank-1fg.com", [("lookalike", "https://xn--cmebank-1fg.com")]),
        ("visit acmebenk.com", [("lookalike", "acmebenk.com")]),
        ("visit acrnebank.com", [("lookalike", "acrnebank.com")]),
        ("visit acmebank-secure.com", [("lookalike", "acmebank-secure.com")]),
        ("visit acmebank.com.verify.io/x", [("lookalike", "acmebank.com.verify.io/x")]),
        ("visit acmebank.org", [("lookalike", "acmebank.org")]),
        (
            "visit http://acmebank.com@evil.example/",
            [("lookalike", "http://acmebank.com@evil.example/")],
        ),
        ("visit https://www.evil.example/x", [("deny", "https://www.evil.example/x")]),
        ("visit sub.phish.io", [("deny", "sub.phish.io")]),
        ("see bit.ly/3xYz", [("shortener", "bit.ly/3xYz")]),
        ("see https://www.reuters.com/markets", []),
    ],
)
def test_link_checks(text: str, expected: list[tuple[str, str]]) -> None:
    assert _findings(text) == expected


def test_punycode_fixture_is_really_a_lookalike() -> None:
    import codecs

    assert codecs.decode(b"cmebank-1fg", "punycode") == "\u0430cmebank"


def test_damerau_levenshtein() -> None:
    assert damerau_levenshtein("acmebank", "acmebnak") == 1
    assert damerau_levenshtein("acmebank", "acmebank") == 0
    assert damerau_levenshtein("acmebank", "zzzzzzzz") == 3


def test_registrable_domain() -> None:
    assert registrable_domain("a.b.example.co.uk") == "example.co.uk"
    assert registrable_domain("a.b.example.com") == "example.com"


def test_known_bad_domain_file_formats() -> None:
    text = (
        "# feed\nbad.example\n0.0.0.0 worse.example  # hosts\nhttps://evil.io/path\n\n*.wild.net\n"
    )
    assert load_domain_list(text) == ["bad.example", "worse.example", "evil.io", "wild.net"]
