"""Evaluate policies against labelled examples: precision, recall and F1 per rule and severity.

Input is JSONL, one example per line::

    {"id": "kc-cairo", "text": "...", "scope": "outbound_post", "policy": "general_brand_safety",
     "today": "2011-02-03", "expected_verdict": "block", "expected_rules": ["newsjacking"]}

``expected_verdict`` and/or ``expected_rules`` must be given. ``expected_rules`` lists every
rule that should fire (an empty list means none should); rules are scored only on examples that
carry it. ``policy`` and ``today`` are optional.

Command line (``vetline policy evaluate`` offers the same, and also accepts stored policies)::

    python -m vetline.policy.engine.evaluate FILE.jsonl [--policy PACK_OR_YAML] [--json OUT]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core import VERDICT_PASS, Scope, Severity
from .policy import PACKS, CompiledPolicy, compile_policy, load_pack

__all__ = [
    "EvaluationReport",
    "Example",
    "ExampleError",
    "Score",
    "evaluate",
    "load_examples",
    "main",
]

VERDICTS = (VERDICT_PASS, *(s.label for s in Severity))


class ExampleError(ValueError):
    """A malformed line in an evaluation file."""


@dataclass(frozen=True, slots=True)
class Example:
    id: str
    text: str
    scope: Scope
    expected_verdict: str | None
    expected_rules: frozenset[str] | None
    policy: str | None = None
    today: dt.date | None = None


@dataclass(slots=True)
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None if p is None or r is None else 0.0
        return 2 * p * r / (p + r)

    def as_dict(self) -> dict[str, Any]:
        def rnd(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": rnd(self.precision),
            "recall": rnd(self.recall),
            "f1": rnd(self.f1),
        }


@dataclass(slots=True)
class EvaluationReport:
    examples: int = 0
    verdict_examples: int = 0
    verdict_correct: int = 0
    flagged: Score = field(default_factory=Score)
    per_rule: dict[str, Score] = field(default_factory=lambda: defaultdict(Score))
    per_severity: dict[str, Score] = field(default_factory=lambda: defaultdict(Score))
    misses: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verdict_accuracy(self) -> float | None:
        return self.verdict_correct / self.verdict_examples if self.verdict_examples else None

    def as_dict(self) -> dict[str, Any]:
        accuracy = self.verdict_accuracy
        return {
            "examples": self.examples,
            "verdict_accuracy": None if accuracy is None else round(accuracy, 4),
            "flagged_vs_pass": self.flagged.as_dict(),
            "per_severity": {
                k: self.per_severity[k].as_dict() for k in VERDICTS if k in self.per_severity
            },
            "per_rule": {k: v.as_dict() for k, v in sorted(self.per_rule.items())},
            "misses": self.misses,
        }

    def format_text(self, *, max_misses: int = 50) -> str:
        def pct(x: float | None) -> str:
            return "   -  " if x is None else f"{100 * x:5.1f}%"

        lines = [
            f"{self.examples} examples, verdict accuracy {pct(self.verdict_accuracy)}",
            "",
            f"{'severity':<28} {'prec':>6} {'recall':>6} {'F1':>6}   tp  fp  fn",
        ]
        rows = [(k, self.per_severity[k]) for k in VERDICTS if k in self.per_severity]
        rows.append(("(flagged vs pass)", self.flagged))
        for name, s in rows:
            lines.append(
                f"{name:<28} {pct(s.precision)} {pct(s.recall)} {pct(s.f1)} "
                f"{s.tp:4d}{s.fp:4d}{s.fn:4d}"
            )
        lines += ["", f"{'rule':<28} {'prec':>6} {'recall':>6} {'F1':>6}   tp  fp  fn"]
        for name, s in sorted(self.per_rule.items()):
            lines.append(
                f"{name:<28} {pct(s.precision)} {pct(s.recall)} {pct(s.f1)} "
                f"{s.tp:4d}{s.fp:4d}{s.fn:4d}"
            )
        lines += ["", f"{len(self.misses)} misses"]
        for miss in self.misses[:max_misses]:
            lines.append(f"- [{miss['id']}] {miss['text'][:100]!r}")
            for key in ("expected_verdict", "verdict", "missing_rules", "unexpected_rules"):
                if miss.get(key):
                    lines.append(f"    {key}: {miss[key]}")
        return "\n".join(lines)


def load_examples(lines: Iterable[str], *, source: str = "<input>") -> list[Example]:
    examples = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        where = f"{source}:{number}"
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ExampleError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise ExampleError(f"{where}: text: a string is required")
        verdict = data.get("expected_verdict")
        if verdict is not None and verdict not in VERDICTS:
            raise ExampleError(f"{where}: expected_verdict: use one of {', '.join(VERDICTS)}")
        rules = data.get("expected_rules")
        if rules is not None and (
            not isinstance(rules, list) or not all(isinstance(r, str) for r in rules)
        ):
            raise ExampleError(f"{where}: expected_rules: a list of rule ids is required")
        if verdict is None and rules is None:
            raise ExampleError(f"{where}: give expected_verdict and/or expected_rules")
        try:
            scope = Scope.parse(data.get("scope", Scope.OUTBOUND_POST.value))
            today = dt.date.fromisoformat(data["today"]) if data.get("today") else None
        except ValueError as exc:
            raise ExampleError(f"{where}: {exc}") from None
        examples.append(
            Example(
                id=str(data.get("id", number)),
                text=data["text"],
                scope=scope,
                expected_verdict=verdict,
                expected_rules=None if rules is None else frozenset(rules),
                policy=data.get("policy"),
                today=today,
            )
        )
    return examples


def evaluate(
    examples: Sequence[Example],
    policies: CompiledPolicy | Mapping[str, CompiledPolicy],
    *,
    default_today: dt.date | None = None,
) -> EvaluationReport:
    """Screen every example and score the outcome.

    ``policies`` is one policy, or a mapping from the names used in the examples' ``policy``
    field (examples without one use the first policy of the mapping).
    """
    if isinstance(policies, CompiledPolicy):
        policies = {policies.name: policies}
    default = next(iter(policies.values()))
    report = EvaluationReport()
    for ex in examples:
        policy = policies.get(ex.policy, default) if ex.policy else default
        if ex.policy and ex.policy not in policies:
            raise ExampleError(f"example {ex.id}: unknown policy {ex.policy!r}")
        result = policy.screen(ex.text, ex.scope, today=ex.today or default_today)
        fired = {hit.rule_id for hit in result.hits}
        report.examples += 1
        miss: dict[str, Any] = {}
        if ex.expected_verdict is not None:
            got = result.verdict_label
            report.verdict_examples += 1
            report.verdict_correct += got == ex.expected_verdict
            for label in VERDICTS:
                score = report.per_severity[label]
                if got == label and ex.expected_verdict == label:
                    score.tp += 1
                elif got == label:
                    score.fp += 1
                elif ex.expected_verdict == label:
                    score.fn += 1
            expected_flag = ex.expected_verdict != VERDICT_PASS
            got_flag = got != VERDICT_PASS
            if expected_flag and got_flag:
                report.flagged.tp += 1
            elif got_flag:
                report.flagged.fp += 1
            elif expected_flag:
                report.flagged.fn += 1
            if got != ex.expected_verdict:
                miss.update(expected_verdict=ex.expected_verdict, verdict=got)
        if ex.expected_rules is not None:
            for rule in policy.rules:
                score = report.per_rule[rule.id]
                expected, got_rule = rule.id in ex.expected_rules, rule.id in fired
                if expected and got_rule:
                    score.tp += 1
                elif got_rule:
                    score.fp += 1
                elif expected:
                    score.fn += 1
            missing = sorted(ex.expected_rules - fired)
            unexpected = sorted(fired - ex.expected_rules)
            if missing or unexpected:
                miss.update(missing_rules=missing, unexpected_rules=unexpected)
        if miss:
            miss = {"id": ex.id, "text": ex.text, "policy": policy.name, **miss}
            miss["hits"] = [
                {"rule_id": h.rule_id, "matched_text": h.matched_text} for h in result.hits
            ]
            report.misses.append(miss)
    return report


def _load_policy(spec: str) -> CompiledPolicy:
    if spec in PACKS:
        return load_pack(spec)
    path = Path(spec)
    return compile_policy(path.read_text(encoding="utf-8"), base_dir=path.parent)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vetline policy evaluate",
        description="Precision, recall and F1 of policies against labelled JSONL examples.",
    )
    parser.add_argument("file", help="JSONL examples")
    parser.add_argument(
        "--policy",
        action="append",
        default=[],
        help="pack name or YAML file; repeatable (default: both default packs)",
    )
    parser.add_argument("--json", help="also write the figures as JSON to this path")
    parser.add_argument("--today", help="date for event windows and embargoes (YYYY-MM-DD)")
    args = parser.parse_args(argv)
    path = Path(args.file)
    try:
        examples = load_examples(path.read_text(encoding="utf-8").splitlines(), source=str(path))
    except (OSError, ExampleError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    policies = {p.name: p for p in map(_load_policy, args.policy or PACKS)}
    today = dt.date.fromisoformat(args.today) if args.today else None
    report = evaluate(examples, policies, default_today=today)
    print(report.format_text())
    if args.json:
        Path(args.json).write_text(
            json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
