"""The plain view of an archived record that the pure writers take (no ORM)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from vetline.archive.integrity.canonical import format_timestamp

TIMELINE: Final = "timeline"  # conversation of records that belong to none
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class RecordView:
    record_id: int
    log_index: int
    network: str
    account_id: int
    account_handle: str
    remote_id: str
    version: int
    previous_log_index: int | None
    record_class: str
    kind: str
    direction: str
    author: str
    participants: Sequence[str]
    conversation_id: str
    thread_id: str
    parent_remote_id: str
    text: str
    attachments: Sequence[str]
    network_timestamp: dt.datetime | None
    captured_at: dt.datetime
    raw_payload_sha256: str
    adopted: bool
    approval_ref: str | None
    source: str

    @property
    def when(self) -> dt.datetime:
        """The time a reader would place the record at: the network's, else capture time."""
        return self.network_timestamp or self.captured_at

    @property
    def conversation(self) -> ConversationKey:
        return ConversationKey(self.account_id, self.network, self.conversation_id)

    @classmethod
    def from_row(cls, row: Any) -> RecordView:
        return cls(
            record_id=row.pk,
            log_index=row.log_index,
            network=row.network,
            account_id=row.account_id,
            account_handle=row.account.handle,
            remote_id=row.remote_id,
            version=row.version,
            previous_log_index=row.previous_version_id,
            record_class=row.record_class,
            kind=row.kind,
            direction=row.direction,
            author=row.author_handle,
            participants=tuple(row.participants or ()),
            conversation_id=row.conversation_id,
            thread_id=row.thread_id,
            parent_remote_id=row.parent_remote_id,
            text=row.text,
            attachments=tuple(row.attachments or ()),
            network_timestamp=row.network_timestamp,
            captured_at=row.captured_at,
            raw_payload_sha256=row.raw_payload_sha256,
            adopted=row.adopted,
            approval_ref=row.approval_ref,
            source=row.source,
        )


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """One conversation of one account: records without a conversation id form the account's
    timeline."""

    account_id: int
    network: str
    conversation_id: str

    @property
    def label(self) -> str:
        return self.conversation_id or TIMELINE

    @property
    def slug(self) -> str:
        """A file name stem, unique per conversation (the hash keeps it unique after
        shortening and sanitising)."""
        raw = f"{self.account_id}\x00{self.network}\x00{self.conversation_id}"
        digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:12]
        name = _SLUG_UNSAFE.sub("_", self.label)[:40].strip("._") or "conversation"
        return f"{self.network}-{self.account_id}-{name}-{digest}"


def eml_path(log_index: int) -> str:
    return f"eml/{log_index // 10_000:05d}/{log_index:012d}.eml"


def rsmf_path(key: ConversationKey) -> str:
    return f"rsmf/{key.slug}.rsmf"


def transcript_path(key: ConversationKey) -> str:
    return f"transcripts/{key.slug}.html"


def iso(value: dt.datetime | None) -> str:
    return format_timestamp(value) if value is not None else ""
