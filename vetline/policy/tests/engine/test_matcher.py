from __future__ import annotations

import time

from vetline.policy.engine import compile_policy
from vetline.policy.engine.matcher import TermMatcher, expand_stems, masked_variants


def _found(matcher: TermMatcher, text: str) -> list[str]:
    return [text[m.start : m.end] for m in matcher.find(text)]


def test_word_boundaries_are_respected() -> None:
    m = TermMatcher()
    m.add("ass", slot=0)
    m.add("class action", slot=0)
    assert _found(m, "a class action about grass and ass.") == ["class action", "ass"]


def test_trailing_and_leading_wildcards_extend_to_the_whole_word() -> None:
    m = TermMatcher()
    m.add("evacuat*", slot=0)
    m.add("*coin", slot=1)
    assert _found(m, "evacuation of dogecoin holders") == ["evacuation", "dogecoin"]
    assert _found(m, "evacuat coin") == ["evacuat", "coin"]


def test_stems_expand_inflections() -> None:
    assert {"guarantee", "guaranteed", "guarantees", "guaranteeing"} <= set(
        expand_stems("guarantee")
    )
    assert "stopped" in expand_stems("stop")
    assert "promises" in expand_stems("promise")


def test_masked_variants() -> None:
    assert {"f*ck", "fu*k", "f**k"} <= set(masked_variants("fuck"))


def test_lexicon_rule_exceptions_and_proximity() -> None:
    policy = compile_policy(
        {
            "name": "t",
            "rules": [
                {
                    "id": "kill",
                    "kind": "lexicon",
                    "severity": "warn",
                    "explanation": "x",
                    "terms": ["kill"],
                    "stems": True,
                    "exceptions": ["killing it"],
                },
                {
                    "id": "insider",
                    "kind": "lexicon",
                    "severity": "block",
                    "explanation": "x",
                    "terms": ["buy"],
                    "near": ["before the announcement"],
                    "within": 4,
                },
            ],
        }
    )
    assert policy.screen("The team is killing it today").verdict is None
    hit = policy.screen("They killed the deal").hits[0]
    assert hit.matched_text == "killed"
    near = policy.screen("buy the stock before the announcement")
    assert [h.rule_id for h in near.hits] == ["insider"]
    assert near.hits[0].matched_text == "buy the stock before the announcement"
    far = policy.screen("buy milk, then later in a long day, well before the announcement")
    assert far.verdict is None


def test_lexicon_time_does_not_grow_with_lexicon_size() -> None:
    def build(n: int) -> TermMatcher:
        m = TermMatcher()
        for i in range(n):
            m.add(f"term{i} phrase{i % 97}", slot=0)
        m.add("needle", slot=1)
        m.build()
        return m

    text = "an ordinary post about a needle in a haystack and the weekend " * 3
    timings = []
    for size in (100, 10_000):
        m = build(size)
        start = time.perf_counter()
        for _ in range(3000):
            m.find(text)
        timings.append(time.perf_counter() - start)
    assert timings[1] < timings[0] * 2.5
