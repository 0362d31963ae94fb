"""Compiled rules, one class per rule kind.

A compiled rule registers its terms in the policy's shared matchers at compile time, and at
screening time turns the matches that belong to it (plus whatever else it computes from the
:class:`Document`) into raw hits in view coordinates.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from . import vocab
from .core import Scope, Severity
from .links import Link, LinkChecker, extract_links
from .matcher import Match, TermMatcher
from .normalize import TextView, deobfuscate
from .pii import PersonalDataScanner
from .safe_regex import SafePattern

__all__ = ["CompiledRule", "Document", "RawHit", "SensitiveEvent"]

GROUP_BITS = 4
_WORD = re.compile(r"\w+")
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True, slots=True)
class SensitiveEvent:
    """A named event (a hurricane, an attack, an election) to be careful around."""

    name: str
    keywords: tuple[str, ...]
    hashtags: tuple[str, ...]
    start: dt.date | None = None
    end: dt.date | None = None

    def active(self, today: dt.date) -> bool:
        return (self.start is None or self.start <= today) and (
            self.end is None or today <= self.end
        )


@dataclass(slots=True)
class RawHit:
    view: TextView
    start: int
    end: int
    details: dict[str, Any] = field(default_factory=dict)


class Document:
    """One text being screened, with lazily computed views and signals shared by all rules."""

    __slots__ = (
        "_deobf",
        "_links",
        "_offensive",
        "_sentiment",
        "_words",
        "deobf_matches",
        "fired",
        "folded",
        "original",
        "today",
    )

    def __init__(self, original: str, folded: TextView, today: dt.date) -> None:
        self.original = original
        self.folded = folded
        self.today = today
        self._deobf: TextView | None = None
        self._words: list[int] | None = None
        self._links: list[Link] | None = None
        self._sentiment: dict[str, float] | None = None
        self._offensive: float | None = None
        self.deobf_matches: dict[int, list[Match]] = {}
        self.fired: set[str] = set()

    @property
    def deobf(self) -> TextView:
        if self._deobf is None:
            self._deobf = deobfuscate(self.folded)
        return self._deobf

    def word_index(self, pos: int) -> int:
        if self._words is None:
            self._words = [m.start() for m in _WORD.finditer(self.folded.text)]
        return bisect.bisect_right(self._words, pos)

    @property
    def links(self) -> list[Link]:
        if self._links is None:
            self._links = extract_links(self.folded.text)
        return self._links

    @property
    def sentiment(self) -> dict[str, float]:
        if self._sentiment is None:
            self._sentiment = _vader().polarity_scores(self.original)
        return self._sentiment

    @property
    def offensive_probability(self) -> float:
        if self._offensive is None:
            from .offensive_model import get_model

            # The deobfuscated view, so "f4gg0t" reaches the model as the word it spells.
            self._offensive = get_model().probability(self.deobf.text)
        return self._offensive

    @property
    def has_signals(self) -> bool:
        return self._sentiment is not None or self._offensive is not None

    def computed_signals(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self._sentiment is not None:
            out["sentiment"] = dict(self._sentiment)
        if self._offensive is not None:
            out["offensive_probability"] = round(self._offensive, 4)
        return out


_VADER: Any = None


def _vader() -> Any:
    global _VADER
    if _VADER is None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        _VADER = SentimentIntensityAnalyzer()
    return _VADER


def _overlaps(a: Match | RawHit, spans: Iterable[Match]) -> bool:
    return any(a.start < b.end and b.start < a.end for b in spans)


def _split(matches: Sequence[Match], base: int) -> dict[int, list[Match]]:
    groups: dict[int, list[Match]] = {}
    for m in matches:
        groups.setdefault(m.slot - base, []).append(m)
    return groups


class CompiledRule:
    """Common metadata. Subclasses implement :meth:`register` and :meth:`evaluate`."""

    kind: ClassVar[str] = ""
    # True when the rule can only fire on its own term matches: skipped when it has none.
    needs_matches: ClassVar[bool] = False
    uses_deobf: ClassVar[bool] = False
    runs_last: ClassVar[bool] = False

    def __init__(
        self,
        *,
        index: int,
        rule_id: str,
        severity: Severity,
        scopes: frozenset[Scope],
        explanation: str,
        draft: bool,
    ) -> None:
        self.index = index
        self.id = rule_id
        self.severity = severity
        self.scopes = scopes
        self.explanation = explanation
        self.draft = draft
        self.base_slot = index << GROUP_BITS

    def slot(self, group: int) -> int:
        return self.base_slot + group

    def register(self, folded: TermMatcher, deobf: TermMatcher) -> None:
        return None

    def evaluate(self, doc: Document, matches: Sequence[Match]) -> list[RawHit]:
        raise NotImplementedError


# -- lexicon ---------------------------------------------------------------------------------

_TERMS, _EXCEPTIONS, _NEAR, _EXTRA = 0, 1, 2, 3


class LexiconRule(CompiledRule):
    needs_matches = True
    kind = "lexicon"

    def __init__(
        self,
        *,
        terms: Sequence[str],
        exceptions: Sequence[str] = (),
        stems: bool = False,
        near: Sequence[str] = (),
        within: int = 5,
        **meta: Any,
    ) -> None:
        super().__init__(**meta)
        self.terms = tuple(terms)
        self.exceptions = tuple(exceptions)
        self.stems = stems
        self.near = tuple(near)
        self.within = within

    def register(self, folded: TermMatcher, deobf: TermMatcher) -> None:
        folded.add_all(self.terms, slot=self.slot(_TERMS), stems=self.stems)
        folded.add_all(self.exceptions, slot=self.slot(_EXCEPTIONS))
        folded.add_all(self.near, slot=self.slot(_NEAR), stems=self.stems)

    def evaluate(self, doc: Document, matches: Sequence[Match]) -> list[RawHit]:
        groups = _split(matches, self.base_slot)
        exceptions = groups.get(_EXCEPTIONS, [])
        found = [m for m in groups.get(_TERMS, []) if not _overlaps(m, exceptions)]
        if not self.near:
            return [RawHit(doc.folded, m.start, m.end, {"term": m.term}) for m in found]
        others = [m for m in groups.get(_NEAR, []) if not _overlaps(m, exceptions)]
        return _proximity(doc, found, others, self.within)


def _proximity(
    doc: Document, first: Sequence[Match], second: Sequence[Match], within: int
) -> list[RawHit]:
    hits = []
    for a in first:
        wa = doc.word_index(a.start)
        for b in second:
            if a.start < b.end and b.start < a.end:
                continue
            if abs(doc.word_index(b.start) - wa) <= within:
                hits.append(
                    RawHit(
                        doc.folded,
                        min(a.start, b.start),
                        max(a.end, b.end),
                        {"term": a.term, "near": b.term},
                    )
                )
                break
    return hits


# -- regex -----------------------------------------------------------------------------------


class RegexRule(CompiledRule):
    kind = "regex"

    def __init__(
        self,
        *,
        patterns: Sequence[SafePattern],
        exceptions: Sequence[str] = (),
        on_original: bool = False,
        **meta: Any,
    ) -> None:
        super().__init__(**meta)
        self.patterns = tuple(patterns)
        self.exceptions = tuple(exceptions)
        self.on_original = on_original

    def register(self, folded: TermMatcher, deobf: TermMatcher) -> None:
        folded.add_all(self.exceptions, slot=self.slot(_EXCEPTIONS))

    def evaluate(self, doc: Document, matches: Sequence[Match]) -> list[RawHit]:
        view = TextView(doc.original, doc.original, None) if self.on_original else doc.folded
        hits = []
        for pattern in self.patterns:
            for start, end in pattern.finditer_spans(view.text):
                hits.append(RawHit(view, start, end, {"pattern": pattern.pattern}))
        if self.exceptions and matches and not self.on_original:
            hits = [h for h in hits if not _overlaps(h, matches)]
        return hits


# -- personal data ---------------------------------------------------------------------------


class PersonalDataRule(CompiledRule):
    kind = "personal_data"

    def __init__(self, *, scanner: PersonalDataScanner, **meta: Any) -> None:
        super().__init__(**meta)
        self.scanner = scanner

    def evaluate(self, doc: Document, matches: Sequence[Match]) -> list[RawHit]:
        return [
            RawHit(doc.folded, f.start, f.end, {"entity": f.entity, **f.details})
            for f in self.scanner.scan(doc.folded.text)
        ]


# -- confidential ----------------------------------------------------------------------------

_METRIC = (
    r"(?:revenues?|earnings|eps|ebitda|net income|operating income|operating profit|"
    r"gross margin|operating margin|net (?:sales|loss|profit)|profits?|guidance|"
    r"same[- ]store sales|comparable sales|quarterly sales|free cash flow|bookings|arr)"
)
_FIGURE = (
    r"(?:[$€£¥]\s?\d[\d,]{0,15}(?:\.\d{1,4})?"
    r"(?:\s?(?:million|billion|thousand|per share|bn|[mbk]\b))?|"
    r"(?<![\d,.])\d[\d,]{0,15}(?:\.\d{1,4})?\s?(?:%|percent|million|billion|bn|cents))"
)
_FINANCIALS = re.compile(
    rf"\b{_METRIC}\b[^.!?\n]{{0,40}}?{_FIGURE}|{_FIGURE}[^.!?\n]{{0,25}}?\b{_METRIC}\b"
)
_CODE_NAMES = 2
_METRIC_GATE = 3
_METRIC_TERMS = (
    "revenue",
    "revenues",
    "earnings",
    "eps",
    "ebitda",
    "net income",
    "operating income",
    "operating profit",
    "gross margin",
    "operating margin",
    "net sales",
    "net loss",
    "net profit",
    "profit",
    "profits",
    "guidance",
    "same-store sales",
    "same store sales",
    "comparable sales",
    "quarterly sales",
    "free cash flow",
    "bookings",
    "arr",
)


class ConfidentialRule(CompiledRule):
    needs_matches = True
    kind = "confidential"

    def __init__(
        self,
        *,
        markers: Sequence[str],
        code_names: Sequence[str] = (),
        exceptions: Sequence[str] = (),
        unreleased_financials: bool = False,
        embargo_until: dt.date | None = None,
        **meta: Any,
    ) -> None:
        super().__init__(**meta)
        self.markers = tuple(markers)
        self.code_names = tuple(code_names)
        self.exceptions = tuple(exceptions)
        self.unreleased_financials = unreleased_financials
        self.embargo_until = embargo_until

    def register(self, folded: TermMatcher, deobf: TermMatcher) -> None:
        folded.add_all(self.markers, slot=self.slot(_TERMS), label="marker")
        folded.add_all(self.code_names, slot=self.slot(_CODE_NAMES), label="code_name")
        folded.add_all(self.exceptions, slot=self.slot(_EXCEPTIONS))
        if self.unreleased_financials:
            # The financial-figures regex only runs when a metric word is present.
            folded.add_all(_METRIC_TERMS, slot=self.slot(_METRIC_GATE))

    def evaluate(self, doc: Document, matches: Sequence[Match]) -> list[RawHit]:
        groups = _split(matches, self.base_slot)
        exceptions = groups.get(_EXCEPTIONS, [])
        hits = [
            RawHit(doc.folded, m.start, m.end, {"category": m.label, "term": m.term})
            for m in groups.get(_TERMS, []) + groups.get(_CODE_NAMES, [])
            if not _overlaps(m, exceptions)
        ]
        if (
            self.unreleased_financials
            and _METRIC_GATE in groups
            and (self.embargo_until is None or doc.today < self.embargo_until)
        ):
            text = doc.folded.text
            if _DIGIT.search(text) is not None:
                for m in _FINANCIALS.finditer(text):
                    details: dict[str, Any] = {"category": "unreleased_financials"}
                    if self.embargo_until is not None:
                        details["embargo_until"] = self.embargo_until.isoformat()
                    hits.append(RawHit(doc.folded, m.start(), m.end(), details))
        return hits


# -- tragedy, sensitive events, newsjacking --------------------------------------------------


def tragedy_terms(categories: Iterable[str]) -> list[tuple[str, str]]:
    return [(term, cat) for cat in categories for term in vocab.TRAGEDY[cat]]


class TragedyRule(CompiledRule):
    needs_matches = True
    kind = "tragedy"

    def __init__(
        self,
        *,
        categories: Sequence[str],
        extra_terms: Sequence[str] = (),
        exceptions: Sequence[str] = (),
        **meta: Any,
    ) -> None:
        super().__init__(**meta)
        self.categories = tuple(categories)
        self.extra_terms = tuple(extra_terms)
        self.exceptions = tuple(exceptions)

    def register(self, folded: TermMatcher, deobf: TermMatcher) -> None:
        for term, category in tragedy_terms(self.categories):
            folded.add(term, slot=self.slot(_TERMS), label=category)
        folded.add_all(self.extra_terms, slot=self.slot(_TERMS), label="custom")
        folded.add_all(self.exceptions, slot=self.slot(_EXCEPTIONS))

    def evaluate(self, doc: Document, matches: Sequence[Match]) -> list[RawHit]:
        groups = _split(matches, self.base_slot)
        exceptions = groups.get(_EXCEPTIONS, [])
        return [
            RawHit(doc.folded, m.start, m.end, {"category": m.label, "term": m.term})
            for m in groups.get(_TERMS, [])
            if not _overlaps(m, exceptions)
        ]


def _event_terms(event: SensitiveEvent) -> list[str]:
    tags = ["#" + tag.lstrip("#") for tag in event.hashtags]
    return list(event.keywords) + tags


class SensitiveEventRule(CompiledRule):
    needs_matches = True
    kind = "sensitive_event"

    def __init__(self, *, events: Sequence[SensitiveEvent], **meta: Any) -> None:
        super().__init__(**meta)
        self.events = tuple(events)

    def register(self, folded: TermMatcher, deobf: TermMatcher) -> None:
        for i, event in enumerate(self.events):
            folded.add_all(_event_terms(event), slot=self.slot(_TERMS), label=str(i))

    def evaluate(self, doc: Document, matches: Sequence[Match]) -> list[RawHit]:
        hits = []
        for m in matches:
            event = self.events[int(m.label)]
            if event.active(doc.today):
                hits.append(RawHit(doc.folded, m.start, m.end, {"event": event.name}))
        return hits


_COMMERCIAL, _CRISIS, _EVENT = 0, 2, 3


class NewsjackingRule(CompiledRule):
    needs_matches = True
    kind = "newsjacking"

    def __init__(
        self,
        *,
        commercial_terms: Sequence[str],
        tragedy_categories: Sequence[str],
        events: Sequence[SensitiveEvent] = (),
        exceptions: Sequence[str] = (),
        **meta: Any,
    ) -> None:
        super().__init__(**meta)
        self.commercial_terms = tuple(commercial_terms)
        self.tragedy_categories = tuple(tragedy_categories)
        self.events = tuple(events)
        self.exceptions = tuple(exceptions)

    def register(self, folded: TermMatcher, deobf: TermMatcher) -> None:
        folded.add_all(self.commercial_terms, slot=self.slot(_COMMERCIAL))
        for term, category in tragedy_terms(self.tragedy_categories):
            folded.add(term, slot=self.slot(_CRISIS), label=category)
        for i, event in enumerate(self.events):
            folded.add_all(_event_terms(event), slot=self.slot(_EVENT), label=str(i))
        folded.add_all(self.exceptions, slot=self.slot(_EXCEPTIONS))

    def evaluate(self, doc: Document, matches: Sequence[Match]) -> list[RawHit]:
        groups = _split(matches, self.base_slot)
        commercial = groups.get(_COMMERCIAL)
        if not commercial:
            return []
        exceptions = groups.get(_EXCEPTIONS, [])
        crisis: list[tuple[Match, str]] = [
            (m, m.label) for m in groups.get(_CRISIS, []) if not _overlaps(m, exceptions)
        ]
        for m in groups.get(_EVENT, []):
            event = self.events[int(m.label)]
            if event.active(doc.today):
                crisis.append((m, f"event:{event.name}"))
        commercial = [m for m in commercial if not _overlaps(m, exceptions)]
        if not crisis or not commercial:
            return []
        crisis_terms = sorted({doc.folded.text[m.start : m.end] for m, _ in crisis})
        hits = [
            RawHit(
                doc.folded,
                m.start,
                m.end,
                {"role": "commercial", "term": m.term, "crisis_terms": crisis_terms},
            )
            for m in commercial
        ]
        hits.extend(
            RawHit(doc.folded, m.start, m.end, {"role": "crisis", "category": label})
            for m, label in crisis
            if not _overlaps(m, commercial)
        )
        return hits


# -- offensive language ----------------------------------------------------------------------


class OffensiveRule(CompiledRule):
    kind = "offensive"
    uses_deobf = True

    def __init__(
        self,
        *,
        lists: Sequence[str],
        extra_terms: Sequence[str] = (),
        exceptions: Sequence[str] = (),
        model_threshold: float | None = None,
        **meta: Any,
    ) -> None:
        super().__init__(**meta)
        self.lists = tuple(lists)
        self.extra_terms = tuple(extra_terms)
        self.exceptions = tuple(exceptions)
        self.model_threshold = model_threshold

    def register(self, folded: TermMatcher, deobf: TermMatcher) -> None:
        for name in self.lists:
            terms = vocab.PROFANITY if name == "profanity" else vocab.SLURS
            deobf.add_all(terms, slot=self.slot(_TERMS), label=name, masked=True)
        deobf.add_all(self.extra_terms, slot=self.slot(_TERMS), label="custom", masked=True)
        deobf.add_all(self.exceptions, slot=self.slot(_EXCEPTIONS))

    def evaluate(self, doc: Document, matches: Sequence[Match]) -> list[RawHit]:
        hits: list[RawHit] = []
        deobf_matches = doc.deobf_matches.get(self.index)
        if deobf_matches:
            groups = _split(deobf_matches, self.base_slot)
            exceptions = groups.get(_EXCEPTIONS, [])
            view = doc.deobf
            for m in groups.get(_TERMS, []):
                if not _overlaps(m, exceptions):
                    hits.append(RawHit(view, m.start, m.end, {"list": m.label, "term": m.term}))
        if self.model_threshold is not None:
            probability = doc.offensive_probability
            if probability >= self.model_threshold:
                text = doc.folded.text
                start = len(text) - len(text.lstrip())
                end = len(text.rstrip())
                hits.append(
                    RawHit(
                        doc.folded,
                        start,
                        max(start, end),
                        {"signal": "offensive_model", "probability": round(probability, 4)},
                    )
                )
        return hits


# -- financial promotions --------------------------------------------------------------------

PROMOTION_CATEGORIES: Mapping[str, tuple[str, ...]] = {
    "promissory": vocab.PROMISSORY,
    "testimonial": vocab.TESTIMONIAL,
    "forward_looking": vocab.FORWARD_LOOKING,
}
_VERBS, _CHANNELS = 4, 5
# A claim right after one of these is being denied, not made: "no such thing as a guaranteed
# return", "this is not risk-free".
_NEGATION = re.compile(
    r"\b(?:no|not|never|nothing|nobody|isn't|aren't|wasn't|don't|doesn't|won't|cannot|can't|"
    r"neither|nor|without)\b(?: +[\w'-]+){0,4} *$"
)


def _negated(text: str, start: int) -> bool:
    return _NEGATION.search(text, max(0, start - 48), start) is not None


class FinancialPromotionRule(CompiledRule):
    needs_matches = True
    kind = "financial_promotion"

    def __init__(
        self,
        *,
        categories: Sequence[str],
        extra_terms: Sequence[str] = (),
        exceptions: Sequence[str] = (),
        within: int = 6,
        skip_negated: bool = True,
        **meta: Any,
    ) -> None:
        super().__init__(**meta)
        self.skip_negated = skip_negated
        self.categories = tuple(categories)
        self.extra_terms = tuple(extra_terms)
        self.exceptions = tuple(exceptions)
        self.within = within

    def register(self, folded: TermMatcher, deobf: TermMatcher) -> None:
        for category in self.categories:
            if category == "off_channel":
                folded.add_all(vocab.OFF_CHANNEL_VERBS, slot=self.slot(_VERBS))
                folded.add_all(vocab.OFF_CHANNEL_CHANNELS, slot=self.slot(_CHANNELS))
            else:
                terms = PROMOTION_CATEGORIES[category]
                folded.add_all(terms, slot=self.slot(_TERMS), label=category)
        folded.add_all(self.extra_terms, slot=self.slot(_TERMS), label="custom")
        folded.add_all(self.exceptions, slot=self.slot(_EXCEPTIONS))

    def evaluate(self, doc: Document, matches: Sequence[Match]) -> list[RawHit]:
        groups = _split(matches, self.base_slot)
        exceptions = groups.get(_EXCEPTIONS, [])
        hits = [
            RawHit(doc.folded, m.start, m.end, {"category": m.label, "term": m.term})
            for m in groups.get(_TERMS, [])
            if not _overlaps(m, exceptions)
            and not (self.skip_negated and _negated(doc.folded.text, m.start))
        ]
        verbs, channels = groups.get(_VERBS), groups.get(_CHANNELS)
        if verbs and channels:
            for hit in _proximity(doc, verbs, channels, self.within):
                if not _overlaps(hit, exceptions):
                    hit.details["category"] = "off_channel"
                    hits.append(hit)
        return hits


# -- links -----------------------------------------------------------------------------------


class LinksRule(CompiledRule):
    kind = "links"

    def __init__(self, *, checker: LinkChecker, **meta: Any) -> None:
        super().__init__(**meta)
        self.checker = checker

    def evaluate(self, doc: Document, matches: Sequence[Match]) -> list[RawHit]:
        links = doc.links
        if not links:
            return []
        return [
            RawHit(
                doc.folded,
                f.link.start,
                f.link.end,
                {"check": f.check, "host": f.link.host, "reason": f.reason},
            )
            for f in self.checker.check(doc.folded, links)
        ]


# -- sentiment -------------------------------------------------------------------------------


class SentimentRule(CompiledRule):
    kind = "sentiment"
    runs_last = True

    def __init__(
        self,
        *,
        below: float | None = None,
        above: float | None = None,
        requires_any: Sequence[str] = (),
        **meta: Any,
    ) -> None:
        super().__init__(**meta)
        self.below = below
        self.above = above
        self.requires_any = tuple(requires_any)

    def evaluate(self, doc: Document, matches: Sequence[Match]) -> list[RawHit]:
        if self.requires_any and not doc.fired.intersection(self.requires_any):
            return []
        compound = doc.sentiment["compound"]
        if (self.below is not None and compound <= self.below) or (
            self.above is not None and compound >= self.above
        ):
            text = doc.folded.text
            start = len(text) - len(text.lstrip())
            return [
                RawHit(
                    doc.folded,
                    start,
                    max(start, len(text.rstrip())),
                    {"signal": "sentiment", "compound": compound},
                )
            ]
        return []


RULE_CLASSES: dict[str, type[CompiledRule]] = {
    cls.kind: cls
    for cls in (
        LexiconRule,
        RegexRule,
        PersonalDataRule,
        ConfidentialRule,
        TragedyRule,
        SensitiveEventRule,
        NewsjackingRule,
        OffensiveRule,
        FinancialPromotionRule,
        LinksRule,
        SentimentRule,
    )
}
