"""The archive's search language, with no Django in it: parse a query into an AST, compile the
AST for SQLite FTS5 or PostgreSQL ``to_tsquery``, and mark the matches in a text for a snippet.

Syntax (operators in capitals; a lower-case ``and`` is a word):

    rates guaranteed          both words (AND is implicit)
    rates AND guaranteed      the same
    rates OR returns          either
    rates NOT guaranteed      rates, without guaranteed (NOT needs something positive beside it)
    "guaranteed returns"      the phrase
    guarant*                  any word starting with guarant
    (rates OR fees) NOT free  parentheses group

A word is a run of letters and digits; anything else separates words, in the query exactly as
in the index (``e-mail`` is the phrase ``"e mail"``). Matching is case-insensitive. Every
malformed query raises :class:`QueryError` (a ``ValueError``) with a message for the user.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

MAX_QUERY_CHARS: Final = 500
MAX_TERMS: Final = 32
MAX_DEPTH: Final = 8
MIN_PREFIX_CHARS: Final = 2
MAX_HIGHLIGHT_CHARS: Final = 20_000  # a snippet looks for its match this far into a text

# Letters and digits, in any script; everything else (including "_") separates words, as the
# FTS5 unicode61 tokenizer and the PostgreSQL index expression (see search_backends) do.
WORD_RE: Final = re.compile(r"[^\W_]+")
_TOKEN_RE: Final = re.compile(
    r'\s*(?:(?P<lp>\()|(?P<rp>\))|"(?P<phrase>[^"]*)"(?P<pstar>\*)?|'
    r'(?P<quote>")|(?P<bare>[^\s()"]+))'
)
OPERATORS: Final = frozenset({"AND", "OR", "NOT"})


class QueryError(ValueError):
    """The query cannot be parsed; the message says why, in the user's terms."""


@dataclass(frozen=True, slots=True)
class Term:
    """One word, or (``prefix``) any word starting with it. Always lower-case."""

    word: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Phrase:
    """Consecutive words; ``prefix`` applies to the last one."""

    words: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class And:
    """All of ``include``, none of ``exclude``. ``include`` is never empty."""

    include: tuple[Node, ...]
    exclude: tuple[Node, ...] = ()


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


Node = Term | Phrase | And | Or


@dataclass(frozen=True, slots=True)
class _Not:
    """Only during parsing: a NOT must end up in the ``exclude`` of an And."""

    item: Node


_Parsed = Node | _Not


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # "(", ")", "op", "word"
    value: str = ""
    node: Node | None = None


def _words(raw: str) -> list[str]:
    return [w.lower() for w in WORD_RE.findall(raw)]


def _leaf(words: list[str], prefix: bool) -> Node | None:
    if not words:
        return None
    if prefix and len(words[-1]) < MIN_PREFIX_CHARS:
        raise QueryError(f"A prefix search needs at least {MIN_PREFIX_CHARS} characters.")
    if len(words) == 1:
        return Term(words[0], prefix)
    return Phrase(tuple(words), prefix)


def _tokens(query: str) -> Iterator[_Tok]:
    pos = 0
    while pos < len(query):
        m = _TOKEN_RE.match(query, pos)
        if m is None or m.end() == pos:  # only trailing whitespace is left
            if query[pos:].strip():
                raise QueryError("The query could not be read.")
            return
        pos = m.end()
        if m.group("lp"):
            yield _Tok("(")
        elif m.group("rp"):
            yield _Tok(")")
        elif m.group("quote"):
            raise QueryError("A quotation mark is not closed.")
        elif m.group("phrase") is not None:
            node = _leaf(_words(m.group("phrase")), bool(m.group("pstar")))
            if node is None:
                raise QueryError("A quoted phrase has no words in it.")
            yield _Tok("word", node=node)
        else:
            bare = m.group("bare")
            if bare in OPERATORS:
                yield _Tok("op", bare)
                continue
            star = bare.endswith("*")
            if "*" in bare.rstrip("*") or bare.count("*") > 1:
                raise QueryError("“*” may only end a word, for a prefix search.")
            node = _leaf(_words(bare), star)
            if node is None:
                if star:
                    raise QueryError("“*” must follow at least two letters, as in “guarant*”.")
                continue  # punctuation alone: nothing to search for, as in the index
            yield _Tok("word", node=node)


class _Parser:
    def __init__(self, tokens: list[_Tok]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.terms = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def parse_or(self, depth: int) -> _Parsed:
        items = [self.parse_and(depth)]
        while (tok := self.peek()) is not None and tok.kind == "op" and tok.value == "OR":
            self.take()
            items.append(self.parse_and(depth))
        if len(items) == 1:
            return items[0]
        if any(isinstance(i, _Not) for i in items):
            raise QueryError("NOT cannot be an alternative of OR; write “a NOT b”.")
        flat: list[Node] = []
        for i in items:
            assert not isinstance(i, _Not)
            flat.extend(i.items if isinstance(i, Or) else (i,))
        return Or(tuple(flat))

    def parse_and(self, depth: int) -> _Parsed:
        items = [self.parse_unary(depth)]
        while (tok := self.peek()) is not None and not (
            tok.kind == ")" or (tok.kind == "op" and tok.value == "OR")
        ):
            if tok.kind == "op" and tok.value == "AND":
                self.take()
            items.append(self.parse_unary(depth))
        if len(items) == 1:
            return items[0]
        include: list[Node] = []
        exclude: list[Node] = []
        for i in items:
            if isinstance(i, _Not):
                exclude.append(i.item)
            elif isinstance(i, And):
                include.extend(i.include)
                exclude.extend(i.exclude)
            else:
                include.append(i)
        if not include:
            raise QueryError("A query needs at least one word to find, not only NOT.")
        return And(tuple(include), tuple(exclude))

    def parse_unary(self, depth: int) -> _Parsed:
        tok = self.peek()
        if tok is None:
            raise QueryError("The query ends where a word was expected.")
        if tok.kind == "op" and tok.value == "NOT":
            self.take()
            inner = self.parse_unary(depth)
            return inner.item if isinstance(inner, _Not) else _Not(inner)
        if tok.kind == "op":
            raise QueryError(f"{tok.value} must stand between two words.")
        if tok.kind == ")":
            raise QueryError("A closing parenthesis has no opening one.")
        self.take()
        if tok.kind == "(":
            if depth >= MAX_DEPTH:
                raise QueryError(f"Parentheses may nest at most {MAX_DEPTH} deep.")
            if (nxt := self.peek()) is not None and nxt.kind == ")":
                raise QueryError("Empty parentheses.")
            inner = self.parse_or(depth + 1)
            if (close := self.peek()) is None or close.kind != ")":
                raise QueryError("A parenthesis is not closed.")
            self.take()
            return inner
        assert tok.node is not None
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise QueryError(f"A query may have at most {MAX_TERMS} words and phrases.")
        return tok.node


def parse(query: str) -> Node | None:
    """The AST of ``query``, or None when it has nothing to search for (blank). Raises
    QueryError on anything malformed."""
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f"A query may be at most {MAX_QUERY_CHARS} characters long.")
    if "\x00" in query:
        raise QueryError("The query contains a NUL character.")
    tokens = list(_tokens(query))
    if not tokens:
        return None
    parser = _Parser(tokens)
    tree = parser.parse_or(0)
    if parser.peek() is not None:
        raise QueryError("A closing parenthesis has no opening one.")
    if isinstance(tree, _Not):
        raise QueryError("A query needs at least one word to find, not only NOT.")
    return tree


# --- Compilers ---------------------------------------------------------------------------------


def to_fts5(node: Node) -> str:
    """An FTS5 MATCH expression. Every word is quoted, so no FTS5 syntax can come from the user;
    words are letters and digits only, so they contain no quote."""
    if isinstance(node, Term):
        return f'"{node.word}"' + ("*" if node.prefix else "")
    if isinstance(node, Phrase):
        return '"' + " ".join(node.words) + '"' + ("*" if node.prefix else "")
    if isinstance(node, Or):
        return "(" + " OR ".join(to_fts5(i) for i in node.items) + ")"
    expr = "(" + " AND ".join(to_fts5(i) for i in node.include) + ")"
    for ex in node.exclude:
        expr = f"({expr} NOT {to_fts5(ex)})"
    return expr


def to_tsquery(node: Node) -> str:
    """A PostgreSQL ``to_tsquery('simple', …)`` expression. Words are letters and digits only,
    and each is single-quoted, so no tsquery syntax can come from the user."""
    if isinstance(node, Term):
        return f"'{node.word}'" + (":*" if node.prefix else "")
    if isinstance(node, Phrase):
        parts = [f"'{w}'" for w in node.words]
        if node.prefix:
            parts[-1] += ":*"
        return "(" + " <-> ".join(parts) + ")"
    if isinstance(node, Or):
        return "(" + " | ".join(to_tsquery(i) for i in node.items) + ")"
    parts = [to_tsquery(i) for i in node.include] + [f"!{to_tsquery(e)}" for e in node.exclude]
    return "(" + " & ".join(parts) + ")"


def to_text(node: Node) -> str:
    """The query written back canonically (for audit events and saved searches)."""
    if isinstance(node, Term):
        return node.word + ("*" if node.prefix else "")
    if isinstance(node, Phrase):
        return '"' + " ".join(node.words) + '"' + ("*" if node.prefix else "")
    if isinstance(node, Or):
        return "(" + " OR ".join(to_text(i) for i in node.items) + ")"
    expr = " AND ".join(to_text(i) for i in node.include)
    for ex in node.exclude:
        expr += f" NOT {to_text(ex)}"
    return "(" + expr + ")"


# --- Highlighting ------------------------------------------------------------------------------


def positive_leaves(node: Node) -> list[Term | Phrase]:
    """The words and phrases a match may contain (not the excluded ones)."""
    if isinstance(node, Term | Phrase):
        return [node]
    if isinstance(node, Or):
        return [leaf for i in node.items for leaf in positive_leaves(i)]
    return [leaf for i in node.include for leaf in positive_leaves(i)]


def _word_matches(word: str, term_word: str, prefix: bool) -> bool:
    return word.startswith(term_word) if prefix else word == term_word


def highlight(text: str, node: Node | None, *, width: int = 240) -> list[tuple[str, bool]]:
    """A snippet of ``text`` around the first match, as (segment, is_match) pairs. The caller
    escapes every segment (templates do); nothing here produces markup."""
    words = [
        (m.start(), m.end(), m.group().lower())
        for m in WORD_RE.finditer(text, 0, MAX_HIGHLIGHT_CHARS)
    ]
    marked: list[tuple[int, int]] = []
    for leaf in positive_leaves(node) if node is not None else []:
        seq = (leaf.word,) if isinstance(leaf, Term) else leaf.words
        n = len(seq)
        for i in range(len(words) - n + 1):
            if all(
                _word_matches(words[i + k][2], seq[k], leaf.prefix and k == n - 1) for k in range(n)
            ):
                marked.append((words[i][0], words[i + n - 1][1]))
    marked.sort()
    start = max(0, marked[0][0] - width // 3) if marked else 0
    end = min(len(text), start + width)
    segments: list[tuple[str, bool]] = []
    if start > 0:
        segments.append(("…", False))
    pos = start
    for a, b in marked:
        if b <= pos or a >= end:
            continue
        a = max(a, pos)
        b = min(b, end)
        if a > pos:
            segments.append((text[pos:a], False))
        segments.append((text[a:b], True))
        pos = b
    if pos < end:
        segments.append((text[pos:end], False))
    if end < len(text):
        segments.append(("…", False))
    return segments
