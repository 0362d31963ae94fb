"""Policy specifications: parsing (dicts or YAML), validation and compilation.

A policy spec is plain data::

    name: general_brand_safety
    version: 3
    events: [{name: Hurricane Sandy, keywords: [sandy], hashtags: [sandy],
              start: 2012-10-22, end: 2012-11-12}]
    rules:
      - id: offensive.profanity
        kind: offensive
        severity: escalate
        scopes: [outbound_post, reply]
        explanation: Profanity is never acceptable on a corporate account.
        lists: [profanity]

:func:`compile_policy` validates the whole spec before building anything, so a bad spec raises
one :class:`PolicyError` naming the field (and, for YAML, the line) and nothing is half-built.
The compiled policy is immutable and thread-safe to share; compile once, screen many times.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from . import vocab
from .core import Hit, PolicyError, Scope, ScreeningResult, Severity
from .links import LinkChecker, load_domain_list
from .matcher import Match, TermMatcher
from .normalize import fold
from .pii import ENTITY_TYPES, NATIONAL_ID_PATTERNS, AccountPattern, PersonalDataScanner
from .rules import (
    GROUP_BITS,
    PROMOTION_CATEGORIES,
    CompiledRule,
    ConfidentialRule,
    Document,
    FinancialPromotionRule,
    LexiconRule,
    LinksRule,
    NewsjackingRule,
    OffensiveRule,
    PersonalDataRule,
    RawHit,
    RegexRule,
    SensitiveEvent,
    SensitiveEventRule,
    SentimentRule,
    TragedyRule,
)
from .safe_regex import UnsafePatternError, compile_safe

__all__ = [
    "PACKS",
    "CompiledPolicy",
    "compile_policy",
    "load_pack",
    "load_policy_yaml",
    "pack_path",
]

PACKS = ("general_brand_safety", "financial_services")
MAX_TEXT_CHARS = 1_000_000
_NO_SIGNALS: Mapping[str, Any] = MappingProxyType({})


# -- YAML with line numbers ------------------------------------------------------------------


class _LineDict(dict[str, Any]):
    """A mapping that remembers the line of each key."""

    line: int
    key_lines: dict[str, int]


class _LineList(list[Any]):
    line: int
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    result = _LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        if key in result:
            raise PolicyError("duplicate key", field=key, line=key_node.start_mark.line + 1)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> _LineList:
    result = _LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_policy_yaml(text: str) -> dict[str, Any]:
    """Parse YAML into a spec whose mappings remember their line numbers."""
    try:
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except PolicyError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise PolicyError(
            f"not valid YAML: {exc.problem}", line=None if mark is None else mark.line + 1
        ) from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError("a policy must be a mapping with name, version and rules", line=1)
    return data


# -- field reader ----------------------------------------------------------------------------


class _Reader:
    """Typed access to one mapping of the spec; errors name the dotted path and the line."""

    def __init__(self, data: Any, path: str, line: int | None) -> None:
        if not isinstance(data, Mapping):
            raise PolicyError("must be a mapping", field=path, line=line)
        self.data = data
        self.path = path
        self.line = getattr(data, "line", line)
        self.used: set[str] = set()

    def field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def line_of(self, key: str) -> int | None:
        lines = getattr(self.data, "key_lines", None)
        if lines and key in lines:
            return int(lines[key])
        return self.line

    def error(self, key: str, message: str) -> PolicyError:
        return PolicyError(message, field=self.field(key), line=self.line_of(key))

    def raw(self, key: str, default: Any = None, *, required: bool = False) -> Any:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                raise PolicyError("is required", field=self.field(key), line=self.line)
            return default
        return self.data[key]

    def string(self, key: str, default: str = "", *, required: bool = False) -> str:
        value = self.raw(key, default, required=required)
        if not isinstance(value, str) or (required and not value.strip()):
            raise self.error(key, "must be a non-empty string" if required else "must be a string")
        return value

    def integer(self, key: str, default: int, *, minimum: int = 0) -> int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"must be an integer >= {minimum}")
        return value

    def number(self, key: str) -> float | None:
        value = self.raw(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, "must be a number")
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise self.error(key, "must be true or false")
        return value

    def strings(
        self, key: str, default: Sequence[str] = (), *, required: bool = False
    ) -> list[str]:
        value = self.raw(key, None, required=required)
        if value is None:
            return list(default)
        if isinstance(value, str) or not isinstance(value, list):
            raise self.error(key, "must be a list of strings")
        item_lines = getattr(value, "item_lines", None)
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                line = item_lines[i] if item_lines else self.line_of(key)
                raise PolicyError(
                    "must be a non-empty string", field=f"{self.field(key)}[{i}]", line=line
                )
        if required and not value:
            raise self.error(key, "must not be empty")
        return [str(v) for v in value]

    def choices(self, key: str, allowed: Iterable[str], default: Sequence[str]) -> list[str]:
        allowed = list(allowed)
        values = self.strings(key, default)
        for value in values:
            if value not in allowed:
                raise self.error(key, f"{value!r} is not one of {', '.join(allowed)}")
        return values

    def date(self, key: str) -> dt.date | None:
        value = self.raw(key)
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                pass
        raise self.error(key, "must be a date (YYYY-MM-DD)")

    def items(self, key: str) -> list[_Reader]:
        value = self.raw(key, [])
        if not isinstance(value, list):
            raise self.error(key, "must be a list")
        item_lines = getattr(value, "item_lines", None)
        return [
            _Reader(item, f"{self.field(key)}[{i}]", item_lines[i] if item_lines else self.line)
            for i, item in enumerate(value)
        ]

    def reject_unknown(self) -> None:
        for key in self.data:
            if key not in self.used:
                raise self.error(str(key), "is not a known field here")


# -- compilation -----------------------------------------------------------------------------

_COMMON = ("id", "kind", "severity", "scopes", "explanation", "draft", "description")
Builder = Callable[[_Reader, dict[str, Any], "_Context"], CompiledRule]


class _Context:
    def __init__(self, events: list[SensitiveEvent], base_dir: Path | None) -> None:
        self.events = events
        self.base_dir = base_dir


def _build_lexicon(r: _Reader, meta: dict[str, Any], ctx: _Context) -> CompiledRule:
    return LexiconRule(
        terms=r.strings("terms", required=True),
        exceptions=r.strings("exceptions"),
        stems=r.boolean("stems", False),
        near=r.strings("near"),
        within=r.integer("within", 5, minimum=1),
        **meta,
    )


def _build_regex(r: _Reader, meta: dict[str, Any], ctx: _Context) -> CompiledRule:
    patterns = []
    case_sensitive = r.boolean("case_sensitive", False)
    for i, pattern in enumerate(r.strings("patterns", required=True)):
        try:
            patterns.append(compile_safe(pattern, ignore_case=not case_sensitive))
        except UnsafePatternError as exc:
            raise PolicyError(
                str(exc), field=f"{r.field('patterns')}[{i}]", line=r.line_of("patterns")
            ) from None
    on = r.string("match_on", "normalized")
    if on not in ("normalized", "original"):
        raise r.error("match_on", "must be 'normalized' or 'original'")
    return RegexRule(
        patterns=patterns,
        exceptions=r.strings("exceptions"),
        on_original=on == "original",
        **meta,
    )


def _build_personal_data(r: _Reader, meta: dict[str, Any], ctx: _Context) -> CompiledRule:
    accounts = []
    for item in r.items("account_patterns"):
        name = item.string("name", required=True)
        try:
            pattern = compile_safe(item.string("pattern", required=True))
        except UnsafePatternError as exc:
            raise item.error("pattern", str(exc)) from None
        checksum = item.string("checksum", "none")
        if checksum not in ("none", "luhn", "mod97"):
            raise item.error("checksum", "must be one of none, luhn, mod97")
        accounts.append(
            AccountPattern(
                name=name,
                pattern=pattern,
                context=tuple(item.strings("context")),
                window=item.integer("window", 40, minimum=1),
                checksum=checksum,
            )
        )
        item.reject_unknown()
    scanner = PersonalDataScanner(
        entities=r.choices("entities", ENTITY_TYPES, ENTITY_TYPES),
        phone_regions=r.strings("phone_regions", ("US",)),
        national_ids=r.choices(
            "national_ids",
            NATIONAL_ID_PATTERNS,
            ("es.dni", "it.codicefiscale", "in_.aadhaar", "in_.pan"),
        ),
        account_patterns=accounts,
        allow=r.strings("allow"),
        aba_requires_context=r.boolean("aba_requires_context", True),
    )
    return PersonalDataRule(scanner=scanner, **meta)


def _build_confidential(r: _Reader, meta: dict[str, Any], ctx: _Context) -> CompiledRule:
    markers = r.strings("markers", vocab.CONFIDENTIAL_MARKERS) + r.strings("extra_markers")
    return ConfidentialRule(
        markers=markers,
        code_names=r.strings("code_names"),
        exceptions=r.strings("exceptions"),
        unreleased_financials=r.boolean("unreleased_financials", False),
        embargo_until=r.date("embargo_until"),
        **meta,
    )


def _build_tragedy(r: _Reader, meta: dict[str, Any], ctx: _Context) -> CompiledRule:
    return TragedyRule(
        categories=r.choices("categories", vocab.TRAGEDY, list(vocab.TRAGEDY)),
        extra_terms=r.strings("extra_terms"),
        exceptions=r.strings("exceptions"),
        **meta,
    )


def _build_sensitive_event(r: _Reader, meta: dict[str, Any], ctx: _Context) -> CompiledRule:
    return SensitiveEventRule(events=ctx.events, **meta)


def _build_newsjacking(r: _Reader, meta: dict[str, Any], ctx: _Context) -> CompiledRule:
    commercial = r.strings("commercial_terms", vocab.COMMERCIAL) + r.strings(
        "extra_commercial_terms"
    )
    return NewsjackingRule(
        commercial_terms=commercial,
        tragedy_categories=r.choices("tragedy_categories", vocab.TRAGEDY, list(vocab.TRAGEDY)),
        events=ctx.events if r.boolean("include_events", True) else (),
        exceptions=r.strings("exceptions"),
        **meta,
    )


def _build_offensive(r: _Reader, meta: dict[str, Any], ctx: _Context) -> CompiledRule:
    threshold = r.number("model_threshold")
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise r.error("model_threshold", "must be between 0 and 1")
    lists = r.choices("lists", ("profanity", "slurs"), ("profanity", "slurs"))
    extra = r.strings("extra_terms")
    if not lists and not extra and threshold is None:
        raise r.error("lists", "give lists, extra_terms or model_threshold")
    return OffensiveRule(
        lists=lists,
        extra_terms=extra,
        exceptions=r.strings("exceptions"),
        model_threshold=threshold,
        **meta,
    )


def _build_financial_promotion(r: _Reader, meta: dict[str, Any], ctx: _Context) -> CompiledRule:
    categories = [*PROMOTION_CATEGORIES, "off_channel"]
    return FinancialPromotionRule(
        categories=r.choices("categories", categories, categories),
        extra_terms=r.strings("extra_terms"),
        exceptions=r.strings("exceptions"),
        within=r.integer("within", 6, minimum=1),
        skip_negated=r.boolean("skip_negated", True),
        **meta,
    )


def _build_links(r: _Reader, meta: dict[str, Any], ctx: _Context) -> CompiledRule:
    deny = r.strings("deny_domains")
    deny_file = r.string("deny_domains_file", "")
    if deny_file:
        path = Path(deny_file)
        if not path.is_absolute() and ctx.base_dir is not None:
            path = ctx.base_dir / path
        try:
            deny += load_domain_list(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise r.error("deny_domains_file", f"cannot read {path}: {exc.strerror}") from None
    checker = LinkChecker(
        checks=r.choices(
            "checks",
            ("deny", "lookalike", "shortener", "unlisted"),
            ("deny", "lookalike", "shortener"),
        ),
        allow_domains=r.strings("allow_domains"),
        deny_domains=deny,
        brand_domains=r.strings("brand_domains"),
        shorteners=list(vocab.SHORTENERS) + r.strings("extra_shorteners"),
    )
    return LinksRule(checker=checker, **meta)


def _build_sentiment(r: _Reader, meta: dict[str, Any], ctx: _Context) -> CompiledRule:
    below, above = r.number("below"), r.number("above")
    if below is None and above is None:
        raise r.error("below", "give below and/or above (VADER compound score, -1 to 1)")
    return SentimentRule(below=below, above=above, requires_any=r.strings("requires_any"), **meta)


_BUILDERS: dict[str, Builder] = {
    "lexicon": _build_lexicon,
    "regex": _build_regex,
    "personal_data": _build_personal_data,
    "confidential": _build_confidential,
    "tragedy": _build_tragedy,
    "sensitive_event": _build_sensitive_event,
    "newsjacking": _build_newsjacking,
    "offensive": _build_offensive,
    "financial_promotion": _build_financial_promotion,
    "links": _build_links,
    "sentiment": _build_sentiment,
}
RULE_KINDS = tuple(_BUILDERS)


def _build_events(root: _Reader) -> list[SensitiveEvent]:
    events = []
    for item in root.items("events"):
        name = item.string("name", required=True)
        keywords = item.strings("keywords")
        hashtags = item.strings("hashtags")
        if not keywords and not hashtags:
            raise item.error("keywords", "an event needs keywords or hashtags")
        start, end = item.date("start"), item.date("end")
        if start and end and end < start:
            raise item.error("end", "ends before it starts")
        item.reject_unknown()
        events.append(SensitiveEvent(name, tuple(keywords), tuple(hashtags), start, end))
    return events


def compile_policy(
    spec: Mapping[str, Any] | str, *, base_dir: Path | None = None
) -> CompiledPolicy:
    """Validate and compile a policy given as a dict or as YAML text."""
    data: Any = load_policy_yaml(spec) if isinstance(spec, str) else spec
    root = _Reader(data, "", getattr(data, "line", None))
    name = root.string("name", required=True)
    version = root.integer("version", 1, minimum=1)
    description = root.string("description", "")
    ctx = _Context(_build_events(root), base_dir)
    rules: list[CompiledRule] = []
    seen: dict[str, str] = {}
    rule_readers = root.items("rules")
    if not rule_readers:
        raise root.error("rules", "a policy needs at least one rule")
    for index, r in enumerate(rule_readers):
        rule_id = r.string("id", required=True).strip()
        if rule_id in seen:
            raise r.error("id", f"duplicate rule id {rule_id!r} (also {seen[rule_id]})")
        seen[rule_id] = r.path
        kind = r.string("kind", required=True)
        if kind not in _BUILDERS:
            raise r.error("kind", f"{kind!r} is not one of {', '.join(_BUILDERS)}")
        try:
            severity = Severity.parse(r.raw("severity", required=True))
        except ValueError as exc:
            raise r.error("severity", str(exc)) from None
        try:
            scopes = frozenset(Scope.parse(s) for s in r.strings("scopes", list(Scope)))
        except ValueError as exc:
            raise r.error("scopes", str(exc)) from None
        meta = {
            "index": index,
            "rule_id": rule_id,
            "severity": severity,
            "scopes": scopes,
            "explanation": r.string("explanation", required=True).strip(),
            "draft": r.boolean("draft", False),
        }
        r.string("description", "")
        try:
            rule = _BUILDERS[kind](r, meta, ctx)
        except ValueError as exc:
            if isinstance(exc, PolicyError):
                raise
            raise PolicyError(str(exc), field=r.path, line=r.line) from None
        r.reject_unknown()
        rules.append(rule)
    for rule in rules:
        for required in getattr(rule, "requires_any", ()):
            if required not in seen:
                raise PolicyError(
                    f"refers to unknown rule {required!r}",
                    field=f"rules[{rule.index}].requires_any",
                    line=rule_readers[rule.index].line_of("requires_any"),
                )
    root.raw("settings")  # free-form notes for deployers
    root.reject_unknown()
    return CompiledPolicy(name=name, version=version, description=description, rules=rules)


class _Plan:
    """The rules that apply to one scope, in evaluation order."""

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        self.rules = sorted(rules, key=lambda rule: (rule.runs_last, rule.index))
        self.indexes = frozenset(rule.index for rule in rules)
        self.uses_deobf = any(rule.uses_deobf for rule in rules)


class CompiledPolicy:
    """An immutable, compiled policy version. Safe to share between threads."""

    def __init__(
        self, *, name: str, version: int, description: str, rules: Sequence[CompiledRule]
    ) -> None:
        self.name = name
        self.version = version
        self.description = description
        self.rules = tuple(rules)
        self.rules_by_id = {rule.id: rule for rule in rules}
        self._folded = TermMatcher()
        self._deobf = TermMatcher()
        for rule in rules:
            rule.register(self._folded, self._deobf)
        self._folded.build()
        self._deobf.build()
        # Most texts have nothing to deobfuscate: then both views are the same string and one
        # pass of the merged automaton serves both matchers.
        self._union = self._folded.merged_with(self._deobf)
        self._deobf_rules = frozenset(rule.index for rule in rules if rule.uses_deobf)
        self._plans = {
            scope: _Plan([rule for rule in rules if scope in rule.scopes]) for scope in Scope
        }

    def __repr__(self) -> str:
        return f"<CompiledPolicy {self.name} v{self.version}: {len(self.rules)} rules>"

    @property
    def term_count(self) -> int:
        return len(self._folded) + len(self._deobf)

    def screen(
        self,
        text: str,
        scope: Scope | str = Scope.OUTBOUND_POST,
        *,
        today: dt.date | None = None,
        signals: bool = False,
        rule_ids: Iterable[str] | None = None,
    ) -> ScreeningResult:
        """Screen ``text`` as it would be used in ``scope``.

        ``today`` decides which sensitive events and embargoes are active (default: today,
        UTC). ``signals=True`` also computes sentiment and the offensive-language probability
        for callers that want them even when no rule needs them. ``rule_ids`` restricts
        screening to some rules (to test one rule against pasted text).
        """
        if not isinstance(text, str):
            raise TypeError("text must be a str")
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"text longer than {MAX_TEXT_CHARS} characters")
        if scope.__class__ is not Scope:
            scope = Scope.parse(scope)
        plan = self._plans[scope]
        rules: Sequence[CompiledRule] = plan.rules
        if rule_ids is not None:
            wanted = set(rule_ids)
            unknown = wanted - self.rules_by_id.keys()
            if unknown:
                raise KeyError(f"unknown rule ids: {', '.join(sorted(unknown))}")
            rules = [rule for rule in rules if rule.id in wanted]
        if today is None:
            today = dt.datetime.now(dt.UTC).date()
        folded = fold(text)
        doc = Document(text, folded, today)
        by_rule: dict[int, list[Match]] = {}
        indexes = plan.indexes
        if plan.uses_deobf and len(self._deobf) and doc.deobf is folded:
            deobf_rules = self._deobf_rules
            for m in self._union.find(folded.text):
                index = m.slot >> GROUP_BITS
                if index in indexes:
                    target = doc.deobf_matches if index in deobf_rules else by_rule
                    target.setdefault(index, []).append(m)
        else:
            for m in self._folded.find(folded.text):
                index = m.slot >> GROUP_BITS
                if index in indexes:
                    by_rule.setdefault(index, []).append(m)
            if plan.uses_deobf and len(self._deobf):
                for m in self._deobf.find(doc.deobf.text):
                    index = m.slot >> GROUP_BITS
                    if index in indexes:
                        doc.deobf_matches.setdefault(index, []).append(m)
        hits: list[Hit] = []
        verdict: Severity | None = None
        empty: list[Match] = []
        for rule in rules:
            matches = by_rule.get(rule.index, empty)
            if rule.needs_matches and not matches:
                continue
            raw_hits = rule.evaluate(doc, matches)
            if not raw_hits:
                continue
            doc.fired.add(rule.id)
            hits.extend(self._rule_hits(rule, raw_hits))
            if not rule.draft and (verdict is None or rule.severity > verdict):
                verdict = rule.severity
        if signals:
            doc.sentiment  # noqa: B018 - computed for the signals map
            doc.offensive_probability  # noqa: B018
        if len(hits) > 1:
            hits.sort(key=lambda h: (h.start, -h.severity, h.rule_id))
        return ScreeningResult(
            policy_name=self.name,
            policy_version=self.version,
            scope=scope,
            verdict=verdict,
            hits=tuple(hits),
            signals=doc.computed_signals() if doc.has_signals else _NO_SIGNALS,
        )

    def _rule_hits(self, rule: CompiledRule, raw_hits: list[RawHit]) -> list[Hit]:
        """Hits of one rule, without duplicates or spans nested inside a longer hit."""
        converted = sorted(
            (self._to_hit(rule, raw) for raw in raw_hits), key=lambda h: (h.start, -h.end)
        )
        kept: list[Hit] = []
        for hit in converted:
            if kept and kept[-1].start <= hit.start and hit.end <= kept[-1].end:
                continue
            kept.append(hit)
        return kept

    def _to_hit(self, rule: CompiledRule, raw: RawHit) -> Hit:
        start, end = raw.view.to_original(raw.start, raw.end)
        return Hit(
            rule_id=rule.id,
            kind=rule.kind,
            severity=rule.severity,
            policy_name=self.name,
            policy_version=self.version,
            start=start,
            end=end,
            matched_text=raw.view.original[start:end],
            explanation=rule.explanation,
            draft=rule.draft,
            details=raw.details,
        )


# -- packs -----------------------------------------------------------------------------------


def pack_path(name: str) -> Path:
    if name not in PACKS:
        raise KeyError(f"unknown pack {name!r}; available: {', '.join(PACKS)}")
    return Path(str(importlib.resources.files(__package__ or "vetline.policy.engine"))) / (
        f"packs/{name}.yaml"
    )


def load_pack(name: str) -> CompiledPolicy:
    """Compile one of the default policy packs shipped with Vetline."""
    path = pack_path(name)
    return compile_policy(path.read_text(encoding="utf-8"), base_dir=path.parent)
