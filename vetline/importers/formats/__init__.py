"""The registry of export formats: name (as typed on the command line) → reader."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from vetline.importers.formats import bluesky, linkedin, mastodon, meta, x_archive
from vetline.importers.formats.base import Entry, Owner, ReadReport, Source

StoreMedia = Callable[[str], str | None]


@dataclass(frozen=True)
class Format:
    name: str
    label: str
    network: str  # the SocialAccount.network it imports into
    read: Callable[[Source, Owner, ReadReport, StoreMedia | None], Iterator[Entry]]
    members: Callable[[Source], list[str]]
    passes: int = 1  # how many times the reader reads its members (for progress)


FORMATS: Final[dict[str, Format]] = {
    f.name: f
    for f in (
        Format(
            "x-archive",
            "X archive (zip)",
            "x",
            lambda s, o, r, m: x_archive.read(s, o, r, store_media=m),
            x_archive.members,
        ),
        Format(
            "facebook",
            "Facebook — Download Your Information (JSON)",
            "facebook",
            lambda s, o, r, m: meta.read_facebook(s, o, r),
            lambda s: meta.members(s, "facebook"),
        ),
        Format(
            "instagram",
            "Instagram — Download Your Information (JSON)",
            "instagram",
            lambda s, o, r, m: meta.read_instagram(s, o, r),
            lambda s: meta.members(s, "instagram"),
        ),
        Format(
            "linkedin",
            "LinkedIn data export (CSV)",
            "linkedin",
            lambda s, o, r, m: linkedin.read(s, o, r),
            linkedin.members,
        ),
        Format(
            "mastodon",
            "Mastodon account archive (outbox.json)",
            "mastodon",
            lambda s, o, r, m: mastodon.read(s, o, r, store_media=m),
            mastodon.members,
        ),
        Format(
            "bluesky",
            "Bluesky repository (CAR)",
            "bluesky",
            lambda s, o, r, m: bluesky.read(s, o, r),
            bluesky.members,
            passes=2,
        ),
    )
}
