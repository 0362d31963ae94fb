"""Regular expressions that cannot backtrack catastrophically.

Policy authors write regexes; a careless ``(a+)+$`` must not stall screening. Patterns are
compiled with RE2 (google-re2), which runs in linear time and simply has no backreferences or
lookaround. Where RE2 is not installed, a conservative static check rejects the constructs that
cause exponential backtracking (nested or adjacent overlapping quantifiers, backreferences)
before the pattern is compiled with :mod:`re`, and the input length is capped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

try:  # pragma: no cover - exercised implicitly by whichever branch is installed
    import re2 as _re2

    _re2_error: type[Exception] = _re2.error
except ImportError:  # pragma: no cover
    _re2 = None
    _re2_error = Exception

__all__ = ["RE2_AVAILABLE", "SafePattern", "UnsafePatternError", "compile_safe"]

RE2_AVAILABLE = _re2 is not None
MAX_PATTERN_LENGTH = 2000
_FALLBACK_MAX_INPUT = 20_000


class UnsafePatternError(ValueError):
    """The pattern is invalid or could run in super-linear time."""


_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*[+*{]")
_BACKREF = re.compile(r"\\[1-9]|\(\?P=")


def _static_check(pattern: str) -> None:
    if _BACKREF.search(pattern):
        raise UnsafePatternError("backreferences are not allowed")
    if _NESTED_QUANTIFIER.search(pattern):
        raise UnsafePatternError("nested quantifiers such as (a+)+ can backtrack catastrophically")
    if "(?=" in pattern or "(?!" in pattern or "(?<" in pattern:
        raise UnsafePatternError("lookaround is not allowed")


class SafePattern:
    """A compiled, linear-time pattern. Offsets are character offsets."""

    def __init__(self, pattern: str, *, ignore_case: bool = True) -> None:
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise UnsafePatternError(f"pattern longer than {MAX_PATTERN_LENGTH} characters")
        self.pattern = pattern
        self._compiled: Any
        if _re2 is not None:
            options = _re2.Options()
            options.case_sensitive = not ignore_case
            options.max_mem = 8 << 20
            options.log_errors = False
            try:
                self._compiled = _re2.compile(pattern, options)
            except _re2_error as exc:
                raise UnsafePatternError(
                    f"not a safe regular expression ({_decode(exc)}); backreferences and "
                    "lookaround are not supported"
                ) from None
            self.engine = "re2"
        else:  # pragma: no cover
            _static_check(pattern)
            try:
                self._compiled = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
            except re.error as exc:
                raise UnsafePatternError(f"invalid regular expression: {exc}") from None
            self.engine = "re"

    def finditer_spans(self, text: str) -> Iterator[tuple[int, int]]:
        if self.engine == "re" and len(text) > _FALLBACK_MAX_INPUT:  # pragma: no cover
            text = text[:_FALLBACK_MAX_INPUT]
        for match in self._compiled.finditer(text):
            start, end = match.span()
            if end > start:
                yield start, end

    def search(self, text: str) -> bool:
        return self._compiled.search(text) is not None


def _decode(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else exc
    if isinstance(arg, bytes):
        return arg.decode("utf-8", "replace")
    return str(arg)


def compile_safe(pattern: str, *, ignore_case: bool = True) -> SafePattern:
    return SafePattern(pattern, ignore_case=ignore_case)
