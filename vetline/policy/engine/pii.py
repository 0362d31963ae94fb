"""Personal-data detectors with checksum validation.

Detectors run on the folded view (NFKC turns full-width digits into ASCII, zero-width
characters are gone, letters are lowercase). Each one is a cheap regex prefilter followed by a
validator, and nothing runs unless the text contains a digit (or an ``@`` for e-mail).
"""

from __future__ import annotations

import bisect
import importlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn as stdnum_luhn

from .safe_regex import SafePattern

__all__ = [
    "ENTITY_TYPES",
    "NATIONAL_ID_PATTERNS",
    "AccountPattern",
    "PersonalDataFinding",
    "PersonalDataScanner",
    "aba_checksum_ok",
    "luhn_ok",
    "ssn_ok",
]

ENTITY_TYPES = (
    "credit_card",
    "us_ssn",
    "iban",
    "aba_routing",
    "phone",
    "email",
    "national_id",
    "account_number",
)


@dataclass(frozen=True, slots=True)
class PersonalDataFinding:
    entity: str
    start: int
    end: int
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AccountPattern:
    """A firm-specific account number: a safe regex, optional context words and checksum."""

    name: str
    pattern: SafePattern
    context: tuple[str, ...] = ()
    window: int = 40
    checksum: str = "none"  # none | luhn | mod97


_HAS_DIGIT = re.compile(r"\d")
_DIGIT_RUN = re.compile(r"\d(?:[ \-.()/]{0,2}\d){6,}")
_DATE_LIKE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
# Every non-numeric national ID supported starts with five or more letters then a digit.
_ALNUM_ID_START = re.compile(r"[a-z]{5}\d")
_IBAN_START = re.compile(r"[a-z]{2}\d{2}")
_CARD = re.compile(r"(?<![\d\-.,])(?:\d[ \-]?){12,18}\d(?![\d\-]?\d)")
_SSN = re.compile(r"(?<![\d\-])(\d{3})([ \-])(\d{2})\2(\d{4})(?![\d\-]?\d)")
_NINE = re.compile(r"(?<![\d\-.,$])\d{9}(?![\d\-]?\d)")
_IBAN = re.compile(r"(?<![a-z0-9])[a-z]{2}\d{2}(?: ?[a-z0-9]){11,32}")
_EMAIL = re.compile(
    r"(?<![a-z0-9._%+\-/:])[a-z0-9][a-z0-9._%+\-]{0,63}@[a-z0-9](?:[a-z0-9\-]{0,62}\.){1,8}"
    r"[a-z]{2,24}(?![a-z0-9\-])"
)
_PHONE = re.compile(r"(?<![\w+\-./])\+?\(?\d[\d ().\-]{5,20}\d(?![\w\-]|\.\d)")
_SSN_CONTEXT = re.compile(r"ssn|social security|soc sec|tax ?id|tin\b")
_ABA_CONTEXT = re.compile(r"routing|aba|rtn|transit|wire|ach\b|bank")

NATIONAL_ID_PATTERNS: dict[str, str] = {
    "in_.pan": r"(?<![a-z0-9])[a-z]{5}\d{4}[a-z](?![a-z0-9])",
    "es.dni": r"(?<![a-z0-9])\d{8}-?[a-z](?![a-z0-9])",
    "it.codicefiscale": r"(?<![a-z0-9])[a-z]{6}\d{2}[a-z]\d{2}[a-z]\d{3}[a-z](?![a-z0-9])",
    "in_.aadhaar": r"(?<![\d\-])[2-9]\d{3} ?\d{4} ?\d{4}(?![\d\-]?\d)",
    "fr.nir": r"(?<![\d])[12] ?\d{2} ?\d{2} ?\d{2} ?\d{3} ?\d{3} ?\d{2}(?!\d)",
    "de.idnr": r"(?<![\d])[1-9]\d ?\d{3} ?\d{3} ?\d{3}(?!\d)",
    "ca.sin": r"(?<![\d\-])\d{3}[ \-]\d{3}[ \-]\d{3}(?![\d\-]?\d)",
    "br.cpf": r"(?<![\d])\d{3}\.\d{3}\.\d{3}-\d{2}(?!\d)",
    "nl.bsn": r"(?<![\d\-])\d{9}(?![\d\-]?\d)",
}


_NUMERIC_IDS = frozenset(
    {"es.dni", "in_.aadhaar", "fr.nir", "de.idnr", "ca.sin", "br.cpf", "nl.bsn"}
)


# IBAN length by country (SWIFT IBAN registry); other countries fall back to trying lengths.
_IBAN_LENGTHS = {
    code: int(length)
    for code, length in (
        item.split(":")
        for item in [
            "ad:24",
            "ae:23",
            "al:28",
            "at:20",
            "az:28",
            "ba:20",
            "be:16",
            "bg:22",
            "bh:22",
            "br:29",
            "by:28",
            "ch:21",
            "cr:22",
            "cy:28",
            "cz:24",
            "de:22",
            "dk:18",
            "do:28",
            "ee:20",
            "eg:29",
            "es:24",
            "fi:18",
            "fo:18",
            "fr:27",
            "gb:22",
            "ge:22",
            "gi:23",
            "gl:18",
            "gr:27",
            "gt:28",
            "hr:21",
            "hu:28",
            "ie:22",
            "il:23",
            "iq:23",
            "is:26",
            "it:27",
            "jo:30",
            "kw:30",
            "kz:20",
            "lb:28",
            "lc:32",
            "li:21",
            "lt:20",
            "lu:20",
            "lv:21",
            "mc:27",
            "md:24",
            "me:22",
            "mk:19",
            "mr:27",
            "mt:31",
            "mu:30",
            "nl:18",
            "no:15",
            "pk:24",
            "pl:28",
            "ps:29",
            "pt:25",
            "qa:29",
            "ro:24",
            "rs:22",
            "sa:24",
            "sc:31",
            "se:24",
            "si:19",
            "sk:24",
            "sm:27",
            "st:25",
            "sv:28",
            "tl:23",
            "tn:24",
            "tr:26",
            "ua:29",
            "va:22",
            "vg:24",
            "xk:20",
        ]
    )
}


def _digit_windows(text: str) -> list[tuple[int, int, int]]:
    """Merged stretches around runs of 7+ digits: the only places numeric entities can be.

    Each window is ``(start, end, longest_run_digits)``. Numeric detectors scan these windows
    instead of the whole text (their lookbehinds still see the characters before a window), and
    skip windows whose runs are too short for them. The margins cover an IBAN's country code and
    check digits before the run, and the lookaheads after it."""
    if _DIGIT_RUN.search(text) is None:
        return []
    windows: list[tuple[int, int, int]] = []
    size = len(text)
    for m in _DIGIT_RUN.finditer(text):
        start, end = max(0, m.start() - 12), min(size, m.end() + 3)
        digits = len(_digits(m.group()))
        if windows and start <= windows[-1][1]:
            last = windows[-1]
            windows[-1] = (last[0], end, max(last[2], digits))
        else:
            windows.append((start, end, digits))
    return windows


def _finditer(
    pattern: re.Pattern[str], text: str, windows: list[tuple[int, int, int]], min_digits: int
) -> Iterator[re.Match[str]]:
    for start, end, digits in windows:
        if digits >= min_digits:
            yield from pattern.finditer(text, start, end)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def ssn_ok(area: str, group: str, serial: str) -> bool:
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return f"{area}{group}{serial}" not in {"078051120", "219099999", "123456789"}


_ABA_PREFIXES = frozenset(
    [f"{n:02d}" for n in range(0, 13)]
    + [f"{n:02d}" for n in range(21, 33)]
    + [f"{n:02d}" for n in range(61, 73)]
    + ["80"]
)


def aba_checksum_ok(digits: str) -> bool:
    if len(digits) != 9 or digits[:2] not in _ABA_PREFIXES or digits == "000000000":
        return False
    d = [ord(c) - 48 for c in digits]
    total = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])
    return total % 10 == 0


def _mod97_ok(value: str) -> bool:
    compact = "".join(ch for ch in value.upper() if ch.isalnum())
    if len(compact) < 5:
        return False
    rearranged = compact[4:] + compact[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


_NON_DIGIT = re.compile(r"\D+")


def _digits(value: str) -> str:
    return _NON_DIGIT.sub("", value)


def _context_near(text: str, start: int, end: int, pattern: re.Pattern[str], window: int) -> bool:
    return pattern.search(text, max(0, start - window), min(len(text), end + window)) is not None


class PersonalDataScanner:
    """Finds the configured entity types in a folded text."""

    def __init__(
        self,
        *,
        entities: Sequence[str] = ENTITY_TYPES,
        phone_regions: Sequence[str] = ("US",),
        national_ids: Sequence[str] = ("es.dni", "it.codicefiscale", "in_.aadhaar", "in_.pan"),
        account_patterns: Sequence[AccountPattern] = (),
        allow: Iterable[str] = (),
        aba_requires_context: bool = True,
    ) -> None:
        unknown = [e for e in entities if e not in ENTITY_TYPES]
        if unknown:
            raise ValueError(f"unknown entity types {unknown}; use {', '.join(ENTITY_TYPES)}")
        self.entities = frozenset(entities)
        self.phone_regions = tuple(region.upper() for region in phone_regions)
        self.aba_requires_context = aba_requires_context
        self._phone_cache: dict[str, bool] = {}
        self._national_lengths: set[int] = set()
        for region in self.phone_regions:
            metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
            if metadata is None:
                raise ValueError(f"unknown phone region {region!r}")
            prefix = len(metadata.national_prefix or "")
            general = metadata.general_desc
            for length in (general.possible_length if general is not None else None) or ():
                self._national_lengths.update({length, length + prefix})
        self.national_ids: list[tuple[str, re.Pattern[str], Callable[[str], bool]]] = []
        for name in national_ids:
            if name not in NATIONAL_ID_PATTERNS:
                raise ValueError(
                    f"unsupported national id {name!r}; use {', '.join(NATIONAL_ID_PATTERNS)}"
                )
            module: ModuleType = importlib.import_module(f"stdnum.{name}")
            validator: Callable[[str], bool] = module.is_valid
            self.national_ids.append((name, re.compile(NATIONAL_ID_PATTERNS[name]), validator))
        self.account_patterns = tuple(account_patterns)
        self._account_context = [
            re.compile("|".join(re.escape(w.lower()) for w in p.context)) if p.context else None
            for p in self.account_patterns
        ]
        allow_values = [value.strip().lower() for value in allow if value.strip()]
        self._allow_suffixes = tuple(v for v in allow_values if v.startswith("@"))
        self._allow_exact = frozenset(
            v if "@" in v else (_digits(v) or v) for v in allow_values if not v.startswith("@")
        )
        self._needs_digits = bool(self.entities - {"email"})
        self._numeric_entities = bool(self.entities - {"email", "account_number"})
        self._alnum_ids = "national_id" in self.entities and any(
            name not in _NUMERIC_IDS for name, _, _ in self.national_ids
        )

    def _allowed(self, entity: str, value: str) -> bool:
        if entity == "email":
            return value in self._allow_exact or value.endswith(self._allow_suffixes)
        return (_digits(value) or value) in self._allow_exact

    def scan(self, text: str) -> list[PersonalDataFinding]:
        entities = self.entities
        has_email = "email" in entities and "@" in text
        windows = _digit_windows(text) if self._numeric_entities else []
        if (
            not has_email
            and not windows
            and not self.account_patterns
            and not (self._alnum_ids and _ALNUM_ID_START.search(text))
        ):
            return []  # the common case: nothing any detector could match
        found: list[PersonalDataFinding] = []
        claimed: list[tuple[int, int]] = []

        def free(start: int, end: int) -> bool:
            # ``claimed`` is kept sorted and non-overlapping: only the neighbours can overlap.
            i = bisect.bisect_left(claimed, (start, end))
            if i < len(claimed) and claimed[i][0] < end:
                return False
            return not (i > 0 and claimed[i - 1][1] > start)

        def add(entity: str, start: int, end: int, **details: Any) -> None:
            bisect.insort(claimed, (start, end))
            if not self._allowed(entity, text[start:end]):
                found.append(PersonalDataFinding(entity, start, end, details))

        if has_email:
            for m in _EMAIL.finditer(text):
                add("email", m.start(), m.end())
        if not self._needs_digits or _HAS_DIGIT.search(text) is None:
            return found
        # Every numeric entity has a run of at least 7 digits (separators allowed); most posts
        # with digits ("$49", "2024", "9 to 5") have none, and skip the validators entirely.
        numeric = bool(windows)

        if "credit_card" in entities and numeric:
            for m in _finditer(_CARD, text, windows, 13):
                digits = _digits(m.group())
                if (
                    13 <= len(digits) <= 19
                    and digits[0] in "23456"
                    and luhn_ok(digits)
                    and len(set(digits)) > 1
                    and free(*m.span())
                ):
                    add("credit_card", m.start(), m.end(), network=_card_network(digits))
        if "iban" in entities and numeric and _IBAN_START.search(text):
            for m in _finditer(_IBAN, text, windows, 7):
                self._scan_iban(text, m, free, add)
        if "us_ssn" in entities and numeric:
            for m in _finditer(_SSN, text, windows, 9):
                if free(*m.span()) and ssn_ok(m.group(1), m.group(3), m.group(4)):
                    add("us_ssn", m.start(), m.end())
        if numeric and ("aba_routing" in entities or "us_ssn" in entities):
            for m in _finditer(_NINE, text, windows, 9):
                if not free(*m.span()):
                    continue
                digits = m.group()
                start, end = m.span()
                if (
                    "aba_routing" in entities
                    and aba_checksum_ok(digits)
                    and (
                        not self.aba_requires_context
                        or _context_near(text, start, end, _ABA_CONTEXT, 40)
                    )
                ):
                    add("aba_routing", start, end)
                    continue
                if (
                    "us_ssn" in entities
                    and ssn_ok(digits[:3], digits[3:5], digits[5:])
                    and _context_near(text, start, end, _SSN_CONTEXT, 30)
                ):
                    add("us_ssn", start, end)
        if "national_id" in entities:
            alnum_ids: bool | None = None  # letters-then-digits IDs (PAN, codice fiscale)
            for name, pattern, validator in self.national_ids:
                if name in _NUMERIC_IDS:
                    if not numeric:
                        continue
                else:
                    if alnum_ids is None:
                        alnum_ids = _ALNUM_ID_START.search(text) is not None
                    if not alnum_ids:
                        continue
                found_ids = (
                    _finditer(pattern, text, windows, 8)
                    if name in _NUMERIC_IDS
                    else pattern.finditer(text)
                )
                for m in found_ids:
                    if free(*m.span()) and validator(m.group().upper()):
                        add("national_id", m.start(), m.end(), id_type=name)
        if "account_number" in entities:
            for account, context in zip(self.account_patterns, self._account_context, strict=False):
                for start, end in account.pattern.finditer_spans(text):
                    if not free(start, end):
                        continue
                    if context is not None and not _context_near(
                        text, start, end, context, account.window
                    ):
                        continue
                    value = text[start:end]
                    if account.checksum == "luhn" and not luhn_ok(_digits(value)):
                        continue
                    if account.checksum == "mod97" and not _mod97_ok(value):
                        continue
                    add("account_number", start, end, pattern=account.name)
        if "phone" in entities and numeric:
            for m in _finditer(_PHONE, text, windows, 7):
                start, end = m.span()
                candidate = m.group()
                # Trim unbalanced trailing/leading brackets the candidate regex swallowed.
                while candidate and candidate[-1] in "(-. ":
                    candidate = candidate[:-1]
                    end -= 1
                digits = _digits(candidate)
                if not 7 <= len(digits) <= 15 or not free(start, end):
                    continue
                if not candidate.startswith("+") and len(digits) not in self._national_lengths:
                    continue  # cheap rejection of dates, order numbers... before phonenumbers
                if _DATE_LIKE.fullmatch(candidate):
                    continue
                if self._valid_phone(candidate):
                    add("phone", start, end)
        found.sort(key=lambda f: f.start)
        return found

    def _valid_phone(self, candidate: str) -> bool:
        cached = self._phone_cache.get(candidate)
        if cached is None:
            cached = self._parse_phone(candidate)
            if len(self._phone_cache) >= 10_000:
                self._phone_cache.clear()
            self._phone_cache[candidate] = cached
        return cached

    def _parse_phone(self, candidate: str) -> bool:
        for region in self.phone_regions:
            try:
                number = phonenumbers.parse(candidate, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                return True
        return False

    def _scan_iban(
        self,
        text: str,
        match: re.Match[str],
        free: Callable[[int, int], bool],
        add: Callable[..., None],
    ) -> None:
        positions = [match.start() + i for i, ch in enumerate(match.group()) if ch != " "]
        compact = match.group().replace(" ", "")
        known = _IBAN_LENGTHS.get(compact[:2])
        lengths = (known,) if known else range(min(len(compact), 34), 14, -1)
        for length in lengths:
            if length > len(compact):
                return
            candidate = compact[:length].upper()
            # Known country and length: the ISO 13616 mod-97 check is enough, and far cheaper
            # than python-stdnum's per-country BBAN lookup, which handles the rest.
            valid = _mod97_ok(candidate) if known else stdnum_iban.is_valid(candidate)
            if valid:
                start, end = positions[0], positions[length - 1] + 1
                if end < len(text) and text[end].isalnum():
                    continue
                if free(start, end):
                    add("iban", start, end, country=candidate[:2])
                return


def _card_network(digits: str) -> str:
    if digits[0] == "4":
        return "visa"
    if digits[:2] in {"34", "37"}:
        return "amex"
    if digits[0] == "5" or digits[:2] == "22":
        return "mastercard"
    if digits[0] == "6":
        return "discover"
    return "other"


def luhn_ok_stdnum(digits: str) -> bool:
    """Cross-check used by the tests: python-stdnum's Luhn agrees with ours."""
    return bool(stdnum_luhn.is_valid(digits))
