from __future__ import annotations

import textwrap

import pytest

from vetline.policy.engine import PolicyError, compile_policy, load_pack, pack_path
from vetline.policy.engine.safe_regex import UnsafePatternError, compile_safe

GOOD = textwrap.dedent(
    """\
    name: demo
    version: 2
    rules:
      - id: words
        kind: lexicon
        severity: warn
        explanation: Words we avoid.
        terms: [synergy]
      - id: ticket
        kind: regex
        severity: info
        explanation: Ticket numbers.
        patterns: ['tkt-\\d{5}']
    """
)


def _error(yaml_text: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        compile_policy(yaml_text)
    return info.value


def test_good_yaml_compiles() -> None:
    policy = compile_policy(GOOD)
    assert (policy.name, policy.version, len(policy.rules)) == ("demo", 2, 2)
    hits = policy.screen("More synergy, see TKT-12345").hits
    assert [(h.rule_id, h.matched_text) for h in hits] == [
        ("words", "synergy"),
        ("ticket", "TKT-12345"),
    ]


@pytest.mark.parametrize(
    ("old", "new", "line", "field"),
    [
        ("severity: warn", "severity: critical", 6, "rules[0].severity"),
        ("kind: lexicon", "kind: lexicn", 5, "rules[0].kind"),
        ("terms: [synergy]", "terms: synergy", 8, "rules[0].terms"),
        ("terms: [synergy]", "terms: [synergy]\n    colour: red", 9, "rules[0].colour"),
        ("patterns: ['tkt-\\d{5}']", "patterns: ['(a)\\1']", 13, "rules[1].patterns[0]"),
        ("version: 2", "version: two", 2, "version"),
        ("  - id: ticket", "  - id: words", 9, "rules[1].id"),
        ("explanation: Ticket numbers.", "explanation: ''", 12, "rules[1].explanation"),
    ],
)
def test_errors_name_line_and_field(old: str, new: str, line: int, field: str) -> None:
    assert old in GOOD
    error = _error(GOOD.replace(old, new, 1))
    assert (error.line, error.field) == (line, field), str(error)
    assert str(error).startswith(f"line {line}: {field}: ")


def test_missing_required_field_names_the_mapping_line() -> None:
    error = _error(GOOD.replace("    explanation: Words we avoid.\n", ""))
    assert error.field == "rules[0].explanation"
    assert error.line == 4


def test_broken_yaml_reports_its_line() -> None:
    error = _error("name: x\nrules: [\n  - {id: a\n")
    assert error.line is not None and "not valid YAML" in str(error)


def test_nothing_is_half_built() -> None:
    # A failure in the last rule must not leave a policy behind; compile is all or nothing.
    with pytest.raises(PolicyError):
        compile_policy(GOOD + "  - id: bad\n    kind: regex\n")


def test_dict_specs_get_field_paths_without_lines() -> None:
    with pytest.raises(PolicyError) as info:
        compile_policy(
            {
                "name": "x",
                "rules": [
                    {
                        "id": "a",
                        "kind": "links",
                        "severity": "warn",
                        "explanation": "e",
                        "checks": ["dns"],
                    }
                ],
            }
        )
    assert info.value.field == "rules[0].checks"
    assert info.value.line is None


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(\w+\s?)*$", r"(x|x)*y"])
def test_catastrophic_patterns_run_in_linear_time(pattern: str) -> None:
    import time

    compiled = compile_safe(pattern)
    start = time.perf_counter()
    list(compiled.finditer_spans("a" * 50_000 + "!" + "x" * 50_000))
    assert time.perf_counter() - start < 1.0


def test_backreferences_and_lookaround_are_rejected() -> None:
    for pattern in (r"(a)\1", r"(?<=a)b", r"a(?!b)"):
        with pytest.raises(UnsafePatternError):
            compile_safe(pattern)


def test_packs_compile_and_round_trip() -> None:
    for name in ("general_brand_safety", "financial_services"):
        policy = load_pack(name)
        assert policy.name == name
        assert pack_path(name).exists()
    with pytest.raises(KeyError):
        load_pack("nope")


def test_unknown_sentiment_dependency_is_rejected() -> None:
    with pytest.raises(PolicyError) as info:
        compile_policy(
            {
                "name": "x",
                "rules": [
                    {
                        "id": "s",
                        "kind": "sentiment",
                        "severity": "info",
                        "explanation": "e",
                        "below": -0.5,
                        "requires_any": ["ghost"],
                    }
                ],
            }
        )
    assert "ghost" in str(info.value)
