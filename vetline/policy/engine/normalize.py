# ruff: noqa: RUF001 - lookalike characters are the point of this module
"""Text normalisation for screening, with an offset map back to the original text.

Every matcher works on a normalised *view* of the text. A view remembers, for each of its
characters, which character of the original text produced it, so a hit found in the view can
always be reported as a span of the original text (what the user typed, and what the UI
highlights).

Two views exist:

* :func:`fold` -- NFKC, invisible characters removed, homoglyphs folded to Latin, case,
  diacritics and width folded, whitespace runs collapsed to one space. Used by almost every rule.
* :func:`deobfuscate` -- the folded view with leetspeak folded ("sh1t" -> "shit"), spaced-out
  letters joined ("f u c k", "s.h.i.t") and long letter runs shortened ("fuuuck"). Used for
  profanity and slurs, where people actively try to evade filters.

Every transformation works character by character or through regex substitutions that record
where each output character came from; nothing is rewritten without a map.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "HOMOGLYPHS",
    "TextView",
    "deobfuscate",
    "fold",
    "fold_term",
    "is_invisible",
]

# Lookalikes that NFKC does not fold. Applied *before* case folding, because uppercase and
# lowercase forms of a Greek or Cyrillic letter can resemble different Latin letters (Greek
# capital eta looks like H, small eta like n).
HOMOGLYPHS: dict[str, str] = {
    # Cyrillic
    "А": "a",
    "а": "a",
    "В": "b",
    "в": "b",
    "Е": "e",
    "е": "e",
    "Ё": "e",
    "ё": "e",
    "К": "k",
    "к": "k",
    "М": "m",
    "м": "m",
    "Н": "h",
    "н": "h",
    "О": "o",
    "о": "o",
    "Р": "p",
    "р": "p",
    "С": "c",
    "с": "c",
    "Т": "t",
    "т": "t",
    "У": "y",
    "у": "y",
    "Х": "x",
    "х": "x",
    "Ѕ": "s",
    "ѕ": "s",
    "І": "i",
    "і": "i",
    "Ї": "i",
    "ї": "i",
    "Ј": "j",
    "ј": "j",
    "Ԁ": "d",
    "ԁ": "d",
    "Ԛ": "q",
    "ԛ": "q",
    "Ԝ": "w",
    "ԝ": "w",
    "Һ": "h",
    "һ": "h",
    "Ӏ": "l",
    "ӏ": "l",
    "Ь": "b",
    "Ү": "y",
    "ү": "y",
    "Ɡ": "g",
    "ɡ": "g",
    "п": "n",
    "г": "r",
    "ш": "w",
    "Ш": "w",
    "ц": "u",
    "и": "u",
    "л": "n",
    # Greek
    "Α": "a",
    "α": "a",
    "Β": "b",
    "β": "b",
    "Ε": "e",
    "ε": "e",
    "Ζ": "z",
    "Η": "h",
    "η": "n",
    "Ι": "i",
    "ι": "i",
    "Κ": "k",
    "κ": "k",
    "Μ": "m",
    "μ": "u",
    "Ν": "n",
    "ν": "v",
    "Ο": "o",
    "ο": "o",
    "Ρ": "p",
    "ρ": "p",
    "Τ": "t",
    "τ": "t",
    "Υ": "y",
    "υ": "u",
    "Χ": "x",
    "χ": "x",
    "ϲ": "c",
    "Ϲ": "c",
    "ω": "w",
    "ς": "s",
    "ϳ": "j",
    # Armenian, Cherokee and Latin letters without a decomposition
    "օ": "o",
    "ս": "u",
    "հ": "h",
    "ո": "n",
    "ց": "g",
    "Ꭺ": "a",
    "Ꮯ": "c",
    "Ꭼ": "e",
    "Ꮋ": "h",
    "Ꭻ": "j",
    "Ꮶ": "k",
    "Ꮇ": "m",
    "Ꮲ": "p",
    "Ꮪ": "s",
    "Ꭲ": "t",
    "Ꮃ": "w",
    "ı": "i",
    "ł": "l",
    "Ł": "l",
    "ø": "o",
    "Ø": "o",
    "đ": "d",
    "Đ": "d",
    "ħ": "h",
    "ŧ": "t",
    "ƀ": "b",
    "ɑ": "a",
    "ɩ": "i",
    "ʟ": "l",
    "ɪ": "i",
    "ʀ": "r",
    "ᴀ": "a",
    "ᴄ": "c",
    "ᴅ": "d",
    "ᴇ": "e",
    "ᴋ": "k",
    "ᴍ": "m",
    "ᴏ": "o",
    "ᴘ": "p",
    "ᴛ": "t",
    "ᴜ": "u",
    "ᴠ": "v",
    "ᴡ": "w",
    "ᴢ": "z",
    "ʙ": "b",
    "ɢ": "g",
    "ʜ": "h",
    "ɴ": "n",
    "ǀ": "l",
    "ꓲ": "i",
    "ꓳ": "o",
    "ꓑ": "p",
    "ꓢ": "s",
    "ꓔ": "t",
    "ꓮ": "a",
    "ꓰ": "e",
    "æ": "ae",
    "Æ": "ae",
    "œ": "oe",
    "Œ": "oe",
    "ß": "ss",
    "ẞ": "ss",
    "þ": "th",
    # Punctuation lookalikes used to break words or fake domain dots
    "\u2024": ".",
    "\u3002": ".",
    "\uff0e": ".",
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u201c": '"',
    "\u201d": '"',
}

_INVISIBLE_EXTRA = frozenset(
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f"
    "\u2060\u2061\u2062\u2063\u2064\u3164\ufeff\uffa0"
)


def is_invisible(ch: str) -> bool:
    """True for characters that render as nothing: format controls, joiners, selectors."""
    if ch in _INVISIBLE_EXTRA:
        return True
    code = ord(ch)
    if 0xFE00 <= code <= 0xFE0F or 0xE0000 <= code <= 0xE0FFF or 0x1F3FB <= code <= 0x1F3FF:
        return True
    return unicodedata.category(ch) == "Cf"


def _fold_char(ch: str) -> str:
    if is_invisible(ch):
        return ""
    category = unicodedata.category(ch)
    if category == "Cs":  # lone surrogate (only reachable through broken input)
        return " "
    if category == "Cc":
        return " " if ch not in "\n" else "\n"
    if category[0] == "M":  # combining mark: diacritic folding drops it
        return ""
    mapped = HOMOGLYPHS.get(ch)
    if mapped is not None:
        return mapped
    out: list[str] = []
    for part in unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", ch)):
        if unicodedata.category(part)[0] == "M" or is_invisible(part):
            continue
        mapped = HOMOGLYPHS.get(part)
        if mapped is not None:
            out.append(mapped)
            continue
        folded = part.casefold()
        for sub in folded:
            out.append(HOMOGLYPHS.get(sub, sub))
    result = "".join(out)
    if result.isspace():
        return " "
    return result


_FOLD_CACHE: dict[str, str] = {}
_FOLD_CACHE_LIMIT = 200_000
_ASCII_CONTROLS = {i: " " for i in range(32) if chr(i) not in "\n"}
_ASCII_CONTROLS[127] = " "
_ASCII_CONTROL_CHAR = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_SPACE_RUN = re.compile(r"\s+")


@dataclass(slots=True)  # not frozen: built for every screened text, and frozen init is slower
class TextView:
    """A normalised view of ``original``.

    ``source`` maps each character of ``text`` to the index of the original character it came
    from; ``None`` means the identity map (the common, fast case for plain ASCII posts).
    """

    original: str
    text: str
    source: tuple[int, ...] | list[int] | None

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map the half-open span ``[start, end)`` of the view to the original text."""
        if self.source is None:
            return start, end
        if end <= start:
            pos = self.source[start] if start < len(self.source) else len(self.original)
            return pos, pos
        orig_start = self.source[start]
        orig_end = self.source[end - 1] + 1
        original = self.original
        # Keep combining marks and joiners attached to the last matched character.
        while orig_end < len(original) and (
            unicodedata.category(original[orig_end])[0] == "M" or is_invisible(original[orig_end])
        ):
            orig_end += 1
        return orig_start, orig_end


def _compose(
    outer: list[int] | None, inner: tuple[int, ...] | list[int] | None
) -> list[int] | None:
    """Map of ``outer`` (indices into the intermediate view) composed with ``inner``."""
    if outer is None:
        return None if inner is None else list(inner)
    if inner is None:
        return outer
    return [inner[i] for i in outer]


def _substitute(
    text: str, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], list[tuple[str, int]]]
) -> tuple[str, list[int] | None]:
    """Regex substitution that records a source index for each output character.

    ``replace`` returns ``(string, index_in_text)`` pieces for one match.
    """
    pieces: list[str] = []
    source: list[int] = []
    last = 0
    changed = False
    for match in pattern.finditer(text):
        changed = True
        start, end = match.span()
        pieces.append(text[last:start])
        source.extend(range(last, start))
        for piece, index in replace(match):
            pieces.append(piece)
            source.extend([index] * len(piece))
        last = end
    if not changed:
        return text, None
    pieces.append(text[last:])
    source.extend(range(last, len(text)))
    return "".join(pieces), source


def _collapse_space(match: re.Match[str]) -> list[tuple[str, int]]:
    return [(" ", match.start())]


def fold(text: str) -> TextView:
    """NFKC + invisible removal + homoglyph, case, diacritic and width folding.

    Whitespace runs become a single space so phrases match across line breaks.
    """
    source: list[int] | None
    if text.isascii():
        folded = text.lower()
        if _ASCII_CONTROL_CHAR.search(folded) is not None:
            folded = folded.translate(_ASCII_CONTROLS)
        source = None
    else:
        folded, source = _fold_one_to_one(text)
    if "  " in folded or "\n" in folded:
        collapsed, inner = _substitute(folded, _SPACE_RUN, _collapse_space)
        if inner is not None:
            source = _compose(inner, source)
            folded = collapsed
    return TextView(text, folded, source)


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


_NON_ASCII_CHAR = re.compile(r"[^\x00-\x7f]")


def _fold_one_to_one(text: str) -> tuple[str, list[int] | None]:
    """Fast path when every non-ASCII character folds to exactly one character (emoji, curly
    quotes, accented letters): translate them, lowercase the rest, keep the identity map."""
    cache = _FOLD_CACHE
    table: dict[int, str] = {}
    for ch in set(_NON_ASCII_CHAR.findall(text)):
        out = cache.get(ch)
        if out is None:
            out = _fold_char(ch)
            if len(cache) < _FOLD_CACHE_LIMIT:
                cache[ch] = out
        if len(out) != 1 or out.lower() != out:  # e.g. Cherokee, whose casefold is uppercase
            return _fold_mixed(text)
        if out != ch:
            table[ord(ch)] = out
    folded = (text.translate(table) if table else text).lower()
    if len(folded) != len(text):  # a character whose lowercase is longer: take the slow path
        return _fold_mixed(text)
    if _ASCII_CONTROL_CHAR.search(folded) is not None:
        folded = folded.translate(_ASCII_CONTROLS)
    return folded, None


def _fold_mixed(text: str) -> tuple[str, list[int] | None]:
    """Fold text with some non-ASCII characters: ASCII stretches go through the fast path."""
    cache = _FOLD_CACHE
    pieces: list[str] = []
    source: list[int] = []
    identity = True
    pos = 0
    for match in _NON_ASCII.finditer(text):
        start, end = match.span()
        if start > pos:
            pieces.append(text[pos:start].lower().translate(_ASCII_CONTROLS))
            source.extend(range(pos, start))
        for index in range(start, end):
            ch = text[index]
            out = cache.get(ch)
            if out is None:
                out = _fold_char(ch)
                if len(cache) < _FOLD_CACHE_LIMIT:
                    cache[ch] = out
            pieces.append(out)
            if len(out) == 1:
                source.append(index)
            else:
                identity = False
                source.extend([index] * len(out))
        pos = end
    if pos < len(text):
        pieces.append(text[pos:].lower().translate(_ASCII_CONTROLS))
        source.extend(range(pos, len(text)))
    return "".join(pieces), None if identity else source


def fold_term(term: str) -> str:
    """Fold a lexicon term exactly as :func:`fold` folds text."""
    return fold(term).text.strip()


# -- deobfuscation ---------------------------------------------------------------------------

_LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "@": "a",
        "$": "s",
        "|": "l",
        "+": "t",
        "!": "i",
        "8": "b",
        "9": "g",
    }
)
# A run of leet characters touching a letter. "!" only counts inside a word, never at its end,
# so "shit!" stays "shit!" rather than becoming "shiti".
_LEET_RUN = re.compile(
    r"(?<=[a-z])[013457@$|+89]{1,8}|[013457@$|+89!]{1,8}(?=[a-z])|(?<=[a-z])!{1,8}(?=[a-z])"
)
# Single letters separated by one to three separators: "f u c k", "s.h.i.t", "f-u-c-k".
_SPACED = re.compile(r"(?<![a-z0-9*])(?:[a-z*][ ._\-~]{1,3}){2,}[a-z*](?![a-z0-9*])")
_SPACED_SEP = re.compile(r"[ ._\-~\s]+")
_LETTER_RUN = re.compile(r"([a-z])\1{2,}(?!\.)")  # not "www."
_QUICK_SPACED = re.compile(r"(?<![a-z])[a-z*][ ._\-~]{1,3}[a-z*][ ._\-~]{1,3}[a-z*](?![a-z])")


def _leet_replace(match: re.Match[str]) -> list[tuple[str, int]]:
    start = match.start()
    return [(ch.translate(_LEET), start + i) for i, ch in enumerate(match.group())]


def _leet_sub(match: re.Match[str]) -> str:
    return match.group().translate(_LEET)


def _spaced_replace(match: re.Match[str]) -> list[tuple[str, int]]:
    start = match.start()
    return [(ch, start + i) for i, ch in enumerate(match.group()) if ch.isalpha() or ch == "*"]


def _run_replace(match: re.Match[str]) -> list[tuple[str, int]]:
    return [(match.group(1), match.start())]


def deobfuscate(view: TextView) -> TextView:
    """Fold leetspeak, join spaced-out letters and shorten letter runs, keeping the offset map."""
    text = view.text
    source: list[int] | None = None if view.source is None else list(view.source)
    steps: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], list[tuple[str, int]]]], ...]
    steps = ((_LEET_RUN, _leet_replace), (_SPACED, _spaced_replace), (_LETTER_RUN, _run_replace))
    for pattern, replace in steps:
        if pattern is _LEET_RUN:
            # 1:1 replacement: offsets are unchanged, no map needed.
            if pattern.search(text) is not None:
                text = pattern.sub(_leet_sub, text)
            continue
        if pattern is _SPACED and not _QUICK_SPACED.search(text):
            continue
        new_text, inner = _substitute(text, pattern, replace)
        if inner is None:
            continue
        source = inner if source is None else [source[i] for i in inner]
        text = new_text
    if text is view.text:
        return view
    return TextView(view.original, text, source)
