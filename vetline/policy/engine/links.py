# ruff: noqa: RUF002 - lookalike characters are the point of this module
"""Link extraction and domain checks: allow/deny lists, shorteners and brand lookalikes.

URLs are found in the folded view (so a Cyrillic "а" in "pаypal.com" already reads "a"); the
host as written in the *original* text is compared with its folded form to tell a genuine brand
domain from a homoglyph or punycode imitation of it.
"""

from __future__ import annotations

import codecs
import contextlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .normalize import TextView, fold_term
from .vocab import SHORTENERS

__all__ = [
    "Link",
    "LinkChecker",
    "LinkFinding",
    "damerau_levenshtein",
    "extract_links",
    "load_domain_list",
    "registrable_domain",
]

# Top-level domains accepted for *bare* domains ("acme.com"). URLs with a scheme or "www."
# are accepted whatever their TLD.
_BARE_TLDS = frozenset(
    [
        "com",
        "net",
        "org",
        "edu",
        "gov",
        "mil",
        "int",
        "info",
        "biz",
        "io",
        "co",
        "ai",
        "app",
        "dev",
        "me",
        "tv",
        "us",
        "uk",
        "ca",
        "de",
        "fr",
        "es",
        "it",
        "nl",
        "be",
        "ch",
        "at",
        "se",
        "no",
        "dk",
        "fi",
        "ie",
        "pt",
        "pl",
        "cz",
        "ru",
        "ua",
        "cn",
        "jp",
        "kr",
        "in",
        "au",
        "nz",
        "br",
        "mx",
        "ar",
        "cl",
        "za",
        "ng",
        "ke",
        "eg",
        "ae",
        "sa",
        "tr",
        "gr",
        "il",
        "sg",
        "hk",
        "tw",
        "my",
        "ph",
        "th",
        "vn",
        "id",
        "pk",
        "bd",
        "xyz",
        "online",
        "site",
        "shop",
        "store",
        "tech",
        "club",
        "top",
        "live",
        "news",
        "blog",
        "cloud",
        "link",
        "click",
        "page",
        "today",
        "world",
        "email",
        "money",
        "finance",
        "bank",
        "loan",
        "capital",
        "fund",
        "investments",
        "trade",
        "ly",
        "gl",
        "gd",
        "cc",
        "ws",
        "to",
        "su",
        "pw",
        "tk",
        "ml",
        "ga",
        "cf",
        "gq",
        "cam",
        "icu",
        "buzz",
        "vip",
        "win",
        "bid",
        "loans",
        "cash",
        "gold",
    ]
)
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"'`]+")
_BARE = re.compile(r"(?:[a-z0-9\-]{1,63}\.){1,8}[a-z]{2,24}(?![\w\-@])(?:[/?#][^\s<>\"'`]*)?")
_OPENERS = frozenset("<>\"'`([{")
_TRAILING = ".,;:!?)]}'\""
_CACHE_LIMIT = 50_000
_PATH_START = re.compile(r"[/?#]")
_QUICK = re.compile(r"[a-z0-9\-]\.[a-z]{2}")
_SECOND_LEVEL = frozenset({"co", "com", "net", "org", "gov", "ac", "edu", "or", "ne", "go"})


@dataclass(frozen=True, slots=True)
class Link:
    start: int  # view coordinates
    end: int
    url: str  # as it appears in the folded view
    host: str  # folded host


@dataclass(frozen=True, slots=True)
class LinkFinding:
    check: str  # deny | lookalike | shortener | unlisted
    link: Link
    reason: str


def _host_of(url: str) -> str:
    rest = url.split("://", 1)[1] if "://" in url else url
    authority = _PATH_START.split(rest, maxsplit=1)[0]
    if "@" in authority:
        authority = authority.rsplit("@", 1)[1]
    host = authority.split(":", 1)[0].strip(".")
    return host


def _has_domain_dot(text: str) -> bool:
    """Cheap check for "x.yz" (a dot between a word character and two letters)."""
    size = len(text)
    i = text.find(".")
    while i != -1:
        if 0 < i < size - 2 and text[i + 1].isalpha() and text[i + 2].isalpha():
            before = text[i - 1]
            if before.isalnum() or before == "-":
                return True
        i = text.find(".", i + 1)
    return False


def extract_links(text: str) -> list[Link]:
    """URLs and bare domains in a folded text.

    One regex pass stops only at whitespace-delimited tokens that contain a dot followed by a
    letter; only those tokens are examined further.
    """
    if not _has_domain_dot(text):
        return []
    out = []
    covered = -1
    size = len(text)
    for anchor in _QUICK.finditer(text):
        if anchor.start() < covered:
            continue
        # Folded text has single spaces as its only whitespace: the token is between spaces.
        start = text.rfind(" ", 0, anchor.start()) + 1
        end = text.find(" ", anchor.end())
        if end < 0:
            end = size
        covered = end
        while start < end and text[start] in _OPENERS:
            start += 1
        value = text[start:end]
        if value.startswith(("http://", "https://", "www.")):
            m = _URL.match(value)
        else:
            m = _BARE.match(value)
        if m is None:
            continue
        url = m.group()
        while url and url[-1] in _TRAILING:
            url = url[:-1]
        host = _host_of(url)
        if not host or "." not in host:
            continue
        if (
            not url.startswith(("http://", "https://", "www."))
            and host.rsplit(".", 1)[1] not in _BARE_TLDS
        ):
            continue
        out.append(Link(start, start + len(url), url, host))
    return out


def _userinfo(url: str) -> str:
    if "@" not in url:
        return ""
    rest = url.split("://", 1)[1] if "://" in url else url
    authority = _PATH_START.split(rest, maxsplit=1)[0]
    return authority.rsplit("@", 1)[0] if "@" in authority else ""


def registrable_domain(host: str) -> str:
    labels = host.split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def _domain_matches(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def damerau_levenshtein(a: str, b: str, limit: int = 3) -> int:
    """Optimal string alignment distance, giving up (returning ``limit``) past ``limit``."""
    if abs(len(a) - len(b)) >= limit:
        return limit
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) >= limit:
            return limit
        prev2, prev = prev, cur
    return min(prev[-1], limit)


_CONFUSABLE_SEQUENCES = (
    ("rn", "m"),
    ("vv", "w"),
    ("cl", "d"),
    ("0", "o"),
    ("1", "l"),
    ("l", "i"),
    ("5", "s"),
    ("3", "e"),
    ("4", "a"),
    ("8", "b"),
)


def _skeleton(label: str) -> str:
    out = label.replace("-", "")
    for seq, rep in _CONFUSABLE_SEQUENCES:
        out = out.replace(seq, rep)
    return out


def load_domain_list(text: str) -> list[str]:
    """Parse a known-bad domain file: one domain per line, ``#`` comments, hosts-file lines
    (``0.0.0.0 bad.example``) and full URLs are all accepted."""
    domains: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        candidate = parts[-1] if len(parts) > 1 else parts[0]
        host = _host_of(candidate.lower()).lstrip("*.")
        if "." in host:
            domains.append(fold_term(host))
    return domains


class LinkChecker:
    def __init__(
        self,
        *,
        checks: Sequence[str],
        allow_domains: Iterable[str] = (),
        deny_domains: Iterable[str] = (),
        brand_domains: Iterable[str] = (),
        shorteners: Iterable[str] = SHORTENERS,
    ) -> None:
        self.checks = frozenset(checks)
        self.allow = tuple(fold_term(d) for d in allow_domains)
        self.deny = frozenset(fold_term(d) for d in deny_domains)
        self.brands = tuple(fold_term(d) for d in brand_domains)
        self.brand_labels = {registrable_domain(b).split(".")[0]: b for b in self.brands}
        self.shorteners = frozenset(fold_term(d) for d in shorteners)
        self._cache: dict[tuple[str, str, str], tuple[str, str]] = {}

    def _denied(self, host: str) -> str | None:
        labels = host.split(".")
        for i in range(len(labels) - 1):
            candidate = ".".join(labels[i:])
            if candidate in self.deny:
                return candidate
        return None

    def check(self, view: TextView, links: Sequence[Link]) -> list[LinkFinding]:
        findings: list[LinkFinding] = []
        for link in links:
            o_start, o_end = view.to_original(link.start, link.end)
            original_host = _host_of(view.original[o_start:o_end].lower())
            key = (link.host, original_host, _userinfo(link.url))
            verdict = self._cache.get(key)
            if verdict is None:
                verdict = self._check_host(link, original_host)
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache.clear()
                self._cache[key] = verdict
            if verdict[0]:
                findings.append(LinkFinding(verdict[0], link, verdict[1]))
        return findings

    def _check_host(self, link: Link, original_host: str) -> tuple[str, str]:
        """``(check, reason)`` for one link's host as written; ``("", "")`` when it is fine."""
        host = link.host
        if (
            original_host.isascii()
            and "xn--" not in original_host
            and any(_domain_matches(host, d) for d in self.allow)
        ):
            return "", ""
        lookalike = self._lookalike(host, original_host) if self.brands else None
        if lookalike is None and self.brands:
            lookalike = self._disguised_userinfo(link.url)
        if "lookalike" in self.checks and lookalike is not None:
            return "lookalike", lookalike
        if any(_domain_matches(host, b) for b in self.brands):
            return "", ""
        if "deny" in self.checks:
            denied = self._denied(host)
            if denied is not None:
                return "deny", f"{denied} is on the deny list"
        if "shortener" in self.checks and (
            host in self.shorteners or registrable_domain(host) in self.shorteners
        ):
            return "shortener", f"{host} is a URL shortener that hides its destination"
        if "unlisted" in self.checks:
            return "unlisted", f"{host} is not an approved site"
        return "", ""

    def _disguised_userinfo(self, url: str) -> str | None:
        """``https://acmebank.com@evil.example/``: the real host is after the ``@``."""
        rest = url.split("://", 1)[1] if "://" in url else url
        authority = _PATH_START.split(rest, maxsplit=1)[0]
        if "@" not in authority:
            return None
        userinfo = authority.rsplit("@", 1)[0]
        for label, brand in self.brand_labels.items():
            if label in userinfo:
                return f"{brand} placed before '@' to disguise the real host"
        return None

    def _lookalike(self, host: str, original_host: str) -> str | None:
        decoded = original_host
        if "xn--" in original_host:
            labels = []
            for label in original_host.split("."):
                if label.startswith("xn--"):
                    with contextlib.suppress(UnicodeError, ValueError):
                        label = codecs.decode(label[4:].encode("ascii"), "punycode")
                labels.append(label)
            decoded = ".".join(labels)
            host = fold_term(decoded)
        for brand in self.brands:
            if _domain_matches(host, brand):
                if decoded != original_host:
                    return f"punycode imitation of {brand}"
                if not original_host.isascii():
                    return f"homoglyph imitation of {brand}"
                return None
        registrable = registrable_domain(host)
        label = registrable.split(".")[0]
        for brand_label, brand in self.brand_labels.items():
            labels = host.split(".")
            if brand_label in labels[:-2]:
                return f"{brand} used as a subdomain of {registrable}"
            if label == brand_label:
                return f"{registrable} imitates {brand} with another domain ending"
            if len(brand_label) >= 4 and brand_label in label.replace("-", ""):
                return f"{registrable} wraps the brand name {brand_label}"
            limit = 2 if len(brand_label) >= 9 else 1
            if len(brand_label) >= 4 and (
                damerau_levenshtein(label, brand_label, limit + 1) <= limit
                or _skeleton(label) == _skeleton(brand_label)
            ):
                return f"{registrable} is a typosquat of {brand}"
        return None
