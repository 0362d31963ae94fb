from __future__ import annotations

import json
from pathlib import Path

import pytest

from vetline.policy.engine import CompiledPolicy
from vetline.policy.engine.evaluate import ExampleError, evaluate, load_examples, main

DATA = Path(__file__).resolve().parents[2] / "engine" / "data" / "evaluation.jsonl"


def test_committed_evaluation_set_is_large_and_mixed() -> None:
    examples = load_examples(DATA.read_text(encoding="utf-8").splitlines())
    assert len(examples) >= 300
    verdicts = {ex.expected_verdict for ex in examples}
    assert verdicts == {"pass", "info", "warn", "escalate", "block"}
    assert sum(ex.expected_verdict == "pass" for ex in examples) >= 100


def test_scores_count_true_and_false_positives(general: CompiledPolicy) -> None:
    lines = [
        json.dumps(
            {
                "text": "Guaranteed fun at our store",
                "expected_verdict": "pass",
                "expected_rules": [],
            }
        ),
        json.dumps(
            {
                "text": "This is sh1t",
                "expected_verdict": "escalate",
                "expected_rules": ["offensive.profanity"],
            }
        ),
        json.dumps(
            {
                "text": "Our hearts go out to the victims, 20% off today",
                "expected_verdict": "block",
                "expected_rules": ["newsjacking"],
            }
        ),
        json.dumps({"text": "nothing wrong here", "expected_verdict": "block"}),
    ]
    report = evaluate(load_examples(lines), general)
    profanity = report.per_rule["offensive.profanity"]
    assert (profanity.tp, profanity.fp, profanity.fn) == (1, 0, 0)
    news = report.per_rule["newsjacking"]
    assert (news.tp, news.fn) == (1, 0)
    assert report.per_rule["tragedy.mention"].fp == 1  # "victims" fires but was not expected
    assert report.per_severity["block"].fn == 1
    assert report.verdict_correct == 3
    assert {miss["text"] for miss in report.misses} == {
        "nothing wrong here",
        "Our hearts go out to the victims, 20% off today",
        "This is sh1t",  # the classifier also fires, and was not in expected_rules
    }


def test_malformed_lines_are_named() -> None:
    with pytest.raises(ExampleError, match=r"x\.jsonl:2: not valid JSON"):
        load_examples(['{"text": "a", "expected_verdict": "pass"}', "{oops"], source="x.jsonl")
    with pytest.raises(ExampleError, match=":1: expected_verdict"):
        load_examples(['{"text": "a", "expected_verdict": "maybe"}'])
    with pytest.raises(ExampleError, match="expected_verdict and/or expected_rules"):
        load_examples(['{"text": "a"}'])


def test_cli_prints_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "ex.jsonl"
    src.write_text(
        json.dumps(
            {
                "text": "f u c k",
                "expected_rules": ["offensive.profanity"],
                "policy": "general_brand_safety",
            }
        )
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.json"
    assert main([str(src), "--policy", "general_brand_safety", "--json", str(out)]) == 0
    assert "offensive.profanity" in capsys.readouterr().out
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["per_rule"]["offensive.profanity"]["recall"] == 1.0
