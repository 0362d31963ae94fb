"""Multi-pattern term matching with word boundaries, wildcards and stems.

All terms of all rules of a policy go into one Aho-Corasick automaton per text view, so a text
is scanned once whatever the size of the lexicon: 100 terms or 100,000 cost about the same.
Each automaton key carries the list of (slot, options) that own it; a *slot* identifies a rule
and a group inside the rule (terms, exceptions, the "near" side of a proximity rule...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import ahocorasick

from .normalize import fold_term

__all__ = ["Match", "TermMatcher", "expand_stems", "masked_variants", "parse_term"]


@dataclass(frozen=True, slots=True)
class Match:
    """A term found in a view: ``[start, end)`` in view coordinates."""

    slot: int
    start: int
    end: int
    term: str
    label: str


@dataclass(frozen=True, slots=True)
class _Entry:
    slot: int
    term: str
    label: str
    extend_left: bool  # leading "*": the match may start inside a word
    extend_right: bool  # trailing "*": the match may end inside a word


_SUFFIXES = ("s", "es", "ed", "ing", "er", "ers", "ly")
_CVC = re.compile(r"[^aeiou][aeiou][bdgklmnprt]$")


def expand_stems(term: str) -> list[str]:
    """Common English inflections of the last word of ``term`` ("guarantee" -> "guaranteed")."""
    head, _, last = term.rpartition(" ")
    prefix = head + " " if head else ""
    forms = {last}
    if last.endswith("e"):
        forms.update({last + "s", last + "d", last[:-1] + "ing", last + "r", last + "rs"})
        if last.endswith(("ee", "ye", "oe")):
            forms.add(last + "ing")
    elif last.endswith("y") and len(last) > 2 and last[-2] not in "aeiou":
        forms.update({last[:-1] + "ies", last[:-1] + "ied", last + "ing"})
    else:
        forms.update(last + suffix for suffix in _SUFFIXES)
        if _CVC.search(last) and len(last) <= 4:
            forms.update({last + last[-1] + "ed", last + last[-1] + "ing"})
    return sorted(prefix + form for form in forms)


def masked_variants(word: str) -> list[str]:
    """``word`` with interior letters masked by ``*``: f*ck, fu*k, f**k."""
    if len(word) < 3 or " " in word:
        return []
    out = []
    for i in range(1, len(word) - 1):
        for j in range(i + 1, len(word)):
            out.append(word[:i] + "*" * (j - i) + word[j:])
    return out


def parse_term(raw: str) -> tuple[str, bool, bool]:
    """Split wildcards off a term: ``(folded_term, extend_left, extend_right)``."""
    term = raw.strip()
    extend_left = term.startswith("*")
    extend_right = term.endswith("*") and len(term) > 1
    term = term.strip("*")
    return fold_term(term), extend_left, extend_right


def _is_word(ch: str) -> bool:
    return ch.isalnum()


class TermMatcher:
    """Collects terms, then finds them all in one pass over a text."""

    def __init__(self) -> None:
        self._entries: dict[str, list[_Entry]] = {}
        self._automaton: ahocorasick.Automaton | None = None
        self._searchable = False

    def __len__(self) -> int:
        return len(self._entries)

    def add(
        self,
        raw_term: str,
        *,
        slot: int,
        label: str = "",
        stems: bool = False,
        masked: bool = False,
    ) -> None:
        term, extend_left, extend_right = parse_term(raw_term)
        if not term:
            return
        keys = expand_stems(term) if stems and not extend_right else [term]
        if masked:
            base = list(keys)
            for key in base:
                keys.extend(masked_variants(key))
                singled = re.sub(r"([a-z])\1", r"\1", key)
                if singled != key and len(singled) >= 4:
                    keys.append(singled)
        display = raw_term.strip()
        for key in keys:
            entry = _Entry(slot, display, label, extend_left, extend_right)
            bucket = self._entries.setdefault(key, [])
            if entry not in bucket:
                bucket.append(entry)
        self._automaton = None

    def add_all(self, terms: Iterable[str], *, slot: int, label: str = "", **kw: bool) -> None:
        for term in terms:
            self.add(term, slot=slot, label=label, **kw)

    def merged_with(self, other: TermMatcher) -> TermMatcher:
        """One matcher holding the terms of both (used when two views are the same text)."""
        union = TermMatcher()
        for source in (self, other):
            for key, entries in source._entries.items():
                bucket = union._entries.setdefault(key, [])
                bucket.extend(e for e in entries if e not in bucket)
        union.build()
        return union

    def build(self) -> None:
        automaton = ahocorasick.Automaton()
        for key, entries in self._entries.items():
            automaton.add_word(key, (len(key), tuple(entries)))
        if len(automaton):
            automaton.make_automaton()
        self._automaton = automaton
        self._searchable = automaton.kind == ahocorasick.AHOCORASICK

    def find(self, text: str) -> list[Match]:
        automaton = self._automaton
        if automaton is None:
            self.build()
            automaton = self._automaton
            assert automaton is not None
        if not self._searchable:
            return []
        out: list[Match] = []
        size = len(text)
        for last, (length, entries) in automaton.iter(text):
            start = last - length + 1
            end = last + 1
            left_is_word = start > 0 and _is_word(text[start - 1]) and _is_word(text[start])
            right_is_word = end < size and _is_word(text[end]) and _is_word(text[last])
            for entry in entries:
                m_start, m_end = start, end
                if left_is_word:
                    if not entry.extend_left:
                        continue
                    while m_start > 0 and _is_word(text[m_start - 1]):
                        m_start -= 1
                if right_is_word:
                    if not entry.extend_right:
                        continue
                    while m_end < size and _is_word(text[m_end]):
                        m_end += 1
                out.append(Match(entry.slot, m_start, m_end, entry.term, entry.label))
        return out
