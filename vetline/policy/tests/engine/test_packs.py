"""The default packs against the cases they exist for."""

from __future__ import annotations

import datetime as dt

import pytest

from vetline.policy.engine import CompiledPolicy, Scope, Severity

KENNETH_COLE = (
    "Millions are in uproar in #Cairo. Rumor is they heard our new spring collection is now "
    "available online at http://bit.ly/KCairo -KC"
)
GAP = (
    "All impacted by #Sandy, stay safe! We'll be doing lots of Gap.com shopping today. "
    "How about you?"
)


def _rules(result: object) -> set[str]:
    return {hit.rule_id for hit in result.hits}  # type: ignore[attr-defined]


def test_kenneth_cole_cairo_is_blocked_as_newsjacking(general: CompiledPolicy) -> None:
    result = general.screen(KENNETH_COLE, today=dt.date(2011, 2, 3))
    assert result.verdict is Severity.BLOCK
    assert {"newsjacking", "sensitive_event", "links.shortener"} <= _rules(result)
    commercial = [h for h in result.hits if h.details.get("role") == "commercial"]
    assert "spring collection" in [h.matched_text for h in commercial]
    for hit in result.hits:
        assert KENNETH_COLE[hit.start : hit.end] == hit.matched_text
        assert hit.policy_name == "general_brand_safety" and hit.policy_version == 1


def test_kenneth_cole_is_caught_even_outside_the_event_window(general: CompiledPolicy) -> None:
    # "uproar" is crisis vocabulary, so the post is newsjacking even with no listed event.
    result = general.screen(KENNETH_COLE, today=dt.date(2026, 1, 1))
    assert "newsjacking" in _rules(result)
    assert "sensitive_event" not in _rules(result)


def test_gap_sandy_is_blocked(general: CompiledPolicy) -> None:
    result = general.screen(GAP, today=dt.date(2012, 10, 30))
    assert result.verdict is Severity.BLOCK
    assert "newsjacking" in _rules(result)
    assert "shopping" in [h.matched_text for h in result.hits]


def test_condolences_without_commerce_are_only_a_warning(general: CompiledPolicy) -> None:
    result = general.screen("Our thoughts are with everyone affected by the earthquake.")
    assert result.verdict is Severity.WARN
    assert _rules(result) == {"tragedy.mention"}


def test_joking_about_a_disaster_escalates(general: CompiledPolicy) -> None:
    result = general.screen("LOL this hurricane is amazing, best day ever, love it!")
    assert "tragedy.upbeat_tone" in _rules(result)
    assert result.verdict is Severity.ESCALATE
    assert "sentiment" in result.signals


@pytest.mark.parametrize(
    "text",
    [
        "Join us at our booth at the trade show next week.",
        "We're hiring engineers in Berlin and Lisbon. Apply at acme.com/careers",
        "Our team is killing it at the hackathon!",
        "New blog post: five ways to make your supply chain more resilient.",
        "Customer support is open 9-5 on weekdays. Call 1-800-555-0199 or email help@acme.com",
    ],
)
def test_ordinary_posts_pass(general: CompiledPolicy, text: str) -> None:
    result = general.screen(text)
    assert result.verdict is None, result.hits


def test_obfuscated_profanity_is_caught(general: CompiledPolicy) -> None:
    for text in (
        "What the f*ck",
        "this is sh1t",
        "f u c k this",
        "total b\u0456tch move",
        "f\u200buck off",
    ):
        result = general.screen(text)
        assert "offensive.profanity" in _rules(result), text


def test_slurs_block(general: CompiledPolicy) -> None:
    assert general.screen("those f4gg0ts").verdict is Severity.BLOCK


def test_scopes_select_rules(general: CompiledPolicy) -> None:
    text = "My card is 4111 1111 1111 1111 and this service is shit"
    outbound = general.screen(text, Scope.OUTBOUND_POST)
    inbound = general.screen(text, Scope.INBOUND_COMMENT)
    assert _rules(outbound) >= {"personal_data", "offensive.profanity"}
    assert _rules(inbound) >= {"personal_data.inbound", "offensive.inbound_abuse"}
    assert "personal_data" not in _rules(inbound)
    assert inbound.verdict is Severity.ESCALATE


def test_confidential_markers_and_code_names(general: CompiledPolicy) -> None:
    result = general.screen("Internal only: Project Bluebird launches next month")
    assert result.verdict is Severity.BLOCK
    assert {h.details.get("category") for h in result.hits} >= {"marker", "code_name"}


def test_financial_services_pack(finserv: CompiledPolicy) -> None:
    cases = {
        "This fund offers guaranteed returns, it's totally risk-free!": "finprom.promissory",
        "My advisor made me a fortune, best advisor ever": "finprom.testimonial",
        "ACME stock will double by spring, price target $400": "finprom.forward_looking",
        "Text me on WhatsApp and I'll walk you through it": "finprom.off_channel",
        "Let's move this to my personal email": "finprom.off_channel",
        "Your account number 123456789012 is ready": "personal_data",
    }
    for text, rule in cases.items():
        assert rule in _rules(finserv.screen(text)), text
    assert (
        finserv.screen("No investment is risk-free; past performance is no guarantee.").verdict
        is None
    )


def test_draft_rules_report_but_do_not_enforce() -> None:
    from vetline.policy.engine import compile_policy

    policy = compile_policy(
        {
            "name": "d",
            "rules": [
                {
                    "id": "draft",
                    "kind": "lexicon",
                    "severity": "block",
                    "draft": True,
                    "explanation": "x",
                    "terms": ["moon"],
                },
                {
                    "id": "real",
                    "kind": "lexicon",
                    "severity": "info",
                    "explanation": "y",
                    "terms": ["sun"],
                },
            ],
        }
    )
    result = policy.screen("sun and moon")
    assert result.verdict is Severity.INFO
    assert [(h.rule_id, h.draft) for h in result.hits] == [("real", False), ("draft", True)]
    assert result.rule_ids == {"real"}


def test_sensitive_event_window(general: CompiledPolicy) -> None:
    during = general.screen(
        "Thinking of everyone in the path of #HurricaneSandy", today=dt.date(2012, 10, 29)
    )
    after = general.screen(
        "Thinking of everyone in the path of #HurricaneSandy", today=dt.date(2013, 1, 1)
    )
    assert "sensitive_event" in _rules(during)
    assert "sensitive_event" not in _rules(after)


def test_signals_on_request(general: CompiledPolicy) -> None:
    result = general.screen("We love our customers", signals=True)
    assert set(result.signals) == {"sentiment", "offensive_probability"}
    assert result.signals["sentiment"]["compound"] > 0


def test_restrict_to_some_rules(general: CompiledPolicy) -> None:
    result = general.screen(KENNETH_COLE, rule_ids=["links.shortener"])
    assert _rules(result) == {"links.shortener"}
    with pytest.raises(KeyError):
        general.screen("x", rule_ids=["nope"])


def test_result_serialises(general: CompiledPolicy) -> None:
    data = general.screen(GAP, today=dt.date(2012, 10, 30)).as_dict()
    assert data["verdict"] == "block"
    assert data["policy"] == {"name": "general_brand_safety", "version": 1}
    assert {"rule_id", "start", "end", "matched_text", "explanation"} <= set(data["hits"][0])
