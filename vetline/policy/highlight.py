"""Split a text into segments for highlighting hits. Pure: no Django, no ORM.

Hits may overlap; every character boundary where a hit starts or ends opens a new segment, and
each segment lists the hits that cover it. The template escapes the text of each segment.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class Span(Protocol):
    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...


@dataclass(frozen=True)
class Segment:
    text: str
    hits: tuple[int, ...]  # indexes into the hit list

    @property
    def marked(self) -> bool:
        return bool(self.hits)


def segments(text: str, hits: Sequence[Span]) -> list[Segment]:
    bounds = {0, len(text)}
    for hit in hits:
        bounds.add(max(0, min(hit.start, len(text))))
        bounds.add(max(0, min(hit.end, len(text))))
    ordered = sorted(bounds)
    out: list[Segment] = []
    for left, right in itertools.pairwise(ordered):
        if left == right:
            continue
        covering = tuple(i for i, h in enumerate(hits) if h.start <= left and right <= h.end)
        out.append(Segment(text[left:right], covering))
    return out
