"""RSMF 2.0 (Relativity Short Message Format): one ``.rsmf`` file per conversation.

An ``.rsmf`` file is an RFC 5322 message whose ``X-RSMF-*`` headers summarise the conversation
and whose attachment ``rsmf.zip`` holds ``rsmf_manifest.json`` and the attachment files::

    {"version": "2.0.0",
     "participants": [{"id", "display", "account_id", "custom": [...]}],
     "conversations": [{"id", "display", "platform", "type", "participants", "custodian",
                        "custom": [...]}],
     "events": [{"id", "type", "conversation", "participant", "timestamp", "body",
                 "direction", "importance", "parent"?, "edits": [{"participant", "timestamp",
                 "previous", "new"}], "deleted", "attachments": [{"id", "display", "size"}],
                 "custom": [{"name", "value"}]}]}

One event per message: the versions of a message (edits, deletion) fold into its ``edits`` and
``deleted`` fields; the Vetline record ids and log indices of every version are in ``custom``.

The writer streams: events go to a temporary file and attachments straight into the zip, so
memory holds only the participants and the event ids of one conversation.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.header
import email.utils
import json
import os
import secrets
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any, Final

from vetline.archive.export.view import ConversationKey, RecordView, iso

RSMF_VERSION: Final = "2.0.0"
GENERATOR: Final = "Vetline archive export"
MANIFEST_NAME: Final = "rsmf_manifest.json"
ZIP_NAME: Final = "rsmf.zip"
PREVIEW_EVENTS: Final = 50
_B64_CHUNK: Final = 57 * 1024  # multiple of 57 bytes: whole 76-character base64 lines
CRLF: Final = "\r\n"

EVENT_TYPES: Final = {
    "post": "message",
    "reply": "message",
    "comment": "message",
    "share": "message",
    "direct_message": "message",
    "edit": "message",
    "deletion": "message",
    "reaction": "message",
    "profile_snapshot": "unknown",
}


def _custom(**values: Any) -> list[dict[str, str]]:
    return [{"name": k, "value": str(v)} for k, v in values.items() if v not in (None, "")]


def fold_versions(versions: Sequence[RecordView]) -> dict[str, Any]:
    """One RSMF event from the exported versions of one message (ascending version)."""
    first = versions[0]
    body = first.text
    edits: list[dict[str, str]] = []
    deleted = False
    deleted_at = ""
    for later in versions[1:]:
        if later.kind == "deletion":
            deleted = True
            deleted_at = iso(later.when)
            continue
        edits.append(
            {
                "participant": later.author or first.author or first.account_handle,
                "timestamp": iso(later.when),
                "previous": body,
                "new": later.text,
            }
        )
        body = later.text
    attachments: dict[str, None] = {}
    for v in versions:
        for digest in v.attachments:
            attachments.setdefault(digest)
    event: dict[str, Any] = {
        "id": first.remote_id,
        "type": EVENT_TYPES.get(first.kind, "unknown"),
        "conversation": "",
        "participant": first.author or first.account_handle,
        "timestamp": iso(first.when),
        "body": body,
        "direction": "outgoing" if first.direction == "outbound" else "incoming",
        "importance": "normal",
        "edits": edits,
        "deleted": deleted,
        "attachments": [{"id": d, "display": d} for d in attachments],
        "custom": _custom(
            vetline_kind=first.kind,
            vetline_record_ids=",".join(str(v.record_id) for v in versions),
            vetline_leaf_indices=",".join(str(v.log_index) for v in versions),
            vetline_versions=",".join(str(v.version) for v in versions),
            vetline_adopted="true" if first.adopted else "false",
            vetline_deleted_at=deleted_at,
            vetline_thread_id=first.thread_id,
        ),
    }
    if first.parent_remote_id:
        event["parent"] = first.parent_remote_id
    return event


class RsmfWriter:
    """Writes one conversation as an ``.rsmf`` file at ``path``.

    Call :meth:`add_message` with the versions of each message (any order of messages), with
    the attachment bytes, then :meth:`close`. ``attachment`` yields ``(sha256, bytes or None)``.
    """

    def __init__(
        self, path: Path, key: ConversationKey, *, account_handle: str, workdir: Path
    ) -> None:
        self.path = path
        self.key = key
        self.account_handle = account_handle
        self._workdir = workdir
        fd, events_name = tempfile.mkstemp(dir=workdir, suffix=".events")
        self._events_path = Path(events_name)
        self._events: IO[str] = os.fdopen(fd, "w", encoding="utf-8")
        fd, zip_name = tempfile.mkstemp(dir=workdir, suffix=".zip")
        os.close(fd)
        self._zip_path = Path(zip_name)
        self._zip = zipfile.ZipFile(self._zip_path, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
        self._participants: dict[str, dict[str, Any]] = {}
        self._event_ids: set[str] = set()
        self._attachment_names: set[str] = set()
        self._preview: list[str] = []
        self.event_count = 0
        self.attachment_count = 0
        self.begin: dt.datetime | None = None
        self.end: dt.datetime | None = None
        self._direct = True
        self._participant(account_handle, custodian=True)

    def _participant(self, handle: str, *, custodian: bool = False) -> str:
        if handle and handle not in self._participants:
            self._participants[handle] = {
                "id": handle,
                "display": handle,
                "account_id": handle,
                "custom": _custom(network=self.key.network, custodian="true" if custodian else ""),
            }
        return handle

    def add_message(
        self,
        versions: Sequence[RecordView],
        attachments: Iterable[tuple[str, bytes | None]] = (),
    ) -> None:
        event = fold_versions(versions)
        event["conversation"] = self.key.slug
        self._participant(event["participant"])
        for v in versions:
            self._participant(v.author)
            for p in v.participants:
                self._participant(p)
        if versions[0].kind != "direct_message":  # later versions are edits and deletions
            self._direct = False
        sizes: dict[str, int] = {}
        for digest, data in attachments:
            if data is None:
                continue
            sizes[digest] = len(data)
            if digest not in self._attachment_names:
                self._zip.writestr(digest, data)
                self._attachment_names.add(digest)
                self.attachment_count += 1
        for att in event["attachments"]:
            if att["id"] in sizes:
                att["size"] = sizes[att["id"]]
            else:
                att["display"] = f"{att['id']} (not available)"
        for v in versions:
            when = v.when
            self.begin = when if self.begin is None or when < self.begin else self.begin
            self.end = when if self.end is None or when > self.end else self.end
        self._event_ids.add(event["id"])
        self._events.write(json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n")
        self.event_count += 1
        if len(self._preview) < PREVIEW_EVENTS:
            text = event["body"].replace("\r", " ").replace("\n", " ")[:200]
            self._preview.append(f"[{event['timestamp']}] {event['participant']}: {text}")

    def close(self) -> None:
        self._events.close()
        conversation = {
            "id": self.key.slug,
            "display": f"{self.account_handle} · {self.key.label}",
            "platform": self.key.network,
            "type": "direct" if self._direct and self.event_count else "channel",
            "participants": sorted(self._participants),
            "custodian": self.account_handle,
            "custom": _custom(
                vetline_account_id=self.key.account_id,
                vetline_conversation_id=self.key.conversation_id,
            ),
        }
        with self._zip.open(MANIFEST_NAME, "w", force_zip64=True) as raw:
            out = _TextSink(raw)
            out.write('{"version":' + json.dumps(RSMF_VERSION) + ',\n"participants":')
            out.write(
                json.dumps(
                    [self._participants[k] for k in sorted(self._participants)],
                    ensure_ascii=False,
                )
            )
            out.write(',\n"conversations":[' + json.dumps(conversation, ensure_ascii=False))
            out.write('],\n"events":[\n')
            with self._events_path.open(encoding="utf-8") as events:
                for i, line in enumerate(events):
                    event = json.loads(line)
                    parent = event.get("parent")
                    if parent is not None and parent not in self._event_ids:
                        # A parent outside the export stays on record without a dangling link.
                        del event["parent"]
                        event["custom"].append({"name": "parent_remote_id", "value": parent})
                    out.write(("," if i else "") + json.dumps(event, ensure_ascii=False) + "\n")
            out.write("]}\n")
        self._zip.close()
        self._events_path.unlink()
        try:
            self._write_eml()
        finally:
            self._zip_path.unlink()

    def _headers(self) -> list[tuple[str, str]]:
        begin = iso(self.begin) if self.begin else ""
        end = iso(self.end) if self.end else ""
        subject = f"{self.key.network} conversation {self.key.label} ({self.account_handle})"
        date = email.utils.format_datetime(self.end or dt.datetime.now(dt.UTC))
        return [
            ("From", f"{self.account_handle} <custodian@{self.key.network}.invalid>"),
            ("To", f"{self.account_handle} <custodian@{self.key.network}.invalid>"),
            ("Subject", subject),
            ("Date", date),
            ("Message-ID", f"<rsmf-{self.key.slug}@vetline.archive>"),
            ("MIME-Version", "1.0"),
            ("X-RSMF-Version", RSMF_VERSION),
            ("X-RSMF-Generator", GENERATOR),
            ("X-RSMF-BeginDate", begin),
            ("X-RSMF-EndDate", end),
            ("X-RSMF-EventCount", str(self.event_count)),
            ("X-RSMF-AttachmentCount", str(self.attachment_count)),
        ]

    def _write_eml(self) -> None:
        boundary = "vetline-rsmf-" + secrets.token_hex(12)
        with self.path.open("wb") as out:
            for name, value in self._headers():
                clean = value.replace("\r", " ").replace("\n", " ")
                encoded = email.header.Header(clean, "utf-8", header_name=name).encode(CRLF)
                out.write(f"{name}: {encoded}{CRLF}".encode("ascii"))
            out.write(
                f'Content-Type: multipart/mixed; boundary="{boundary}"{CRLF}{CRLF}'.encode("ascii")
            )
            out.write(f"--{boundary}{CRLF}".encode("ascii"))
            out.write(
                f"Content-Type: text/plain; charset=utf-8{CRLF}"
                f"Content-Transfer-Encoding: base64{CRLF}{CRLF}".encode("ascii")
            )
            preview = [
                f"Conversation {self.key.label} on {self.key.network} ({self.account_handle})",
                f"Participants: {', '.join(sorted(self._participants))}",
                f"Events: {self.event_count}",
                "",
                *self._preview,
            ]
            if self.event_count > len(self._preview):
                preview.append(f"... {self.event_count - len(self._preview)} more in {ZIP_NAME}")
            out.write(
                base64.encodebytes("\n".join(preview).encode("utf-8")).replace(b"\n", b"\r\n")
            )
            out.write(f"{CRLF}--{boundary}{CRLF}".encode("ascii"))
            out.write(
                f'Content-Type: application/zip; name="{ZIP_NAME}"{CRLF}'
                f'Content-Disposition: attachment; filename="{ZIP_NAME}"{CRLF}'
                f"Content-Transfer-Encoding: base64{CRLF}{CRLF}".encode("ascii")
            )
            with self._zip_path.open("rb") as data:
                while chunk := data.read(_B64_CHUNK):
                    out.write(base64.encodebytes(chunk).replace(b"\n", b"\r\n"))
            out.write(f"{CRLF}--{boundary}--{CRLF}".encode("ascii"))

    def abort(self) -> None:
        self._events.close()
        self._zip.close()
        for path in (self._events_path, self._zip_path):
            path.unlink(missing_ok=True)


class _TextSink:
    """Writes str to a binary zip member as UTF-8."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw

    def write(self, text: str) -> None:
        self._raw.write(text.encode("utf-8"))
