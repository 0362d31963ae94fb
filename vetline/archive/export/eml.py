"""One RFC 5322 message (.eml) per archived record version, with the record's metadata in
headers. The text travels base64-encoded so it round-trips byte for byte (line endings,
trailing spaces and invisible characters included)."""

from __future__ import annotations

import base64
import email.header
import email.utils
import re
import secrets
from collections.abc import Iterable
from typing import Final

from vetline.archive.export.view import RecordView, iso

GENERATOR: Final = "Vetline archive export"
CRLF: Final = "\r\n"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_LOCAL_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_NETWORK_UNSAFE = re.compile(r"[^a-z0-9-]+")


def header_text(value: str, limit: int = 900) -> str:
    """A header value without line breaks or control characters (no header injection)."""
    return _CONTROL.sub(" ", value)[:limit]


def encode_header(name: str, value: str) -> str:
    """``Name: value`` with CRLF; non-ASCII values as RFC 2047 encoded words, folded."""
    clean = header_text(value)
    if clean.isascii():
        return f"{name}: {clean}{CRLF}"
    encoded = email.header.Header(clean, "utf-8", header_name=name).encode(CRLF)
    return f"{name}: {encoded}{CRLF}"


def _address(handle: str, network: str) -> str:
    local = _LOCAL_UNSAFE.sub("_", handle).strip("._")[:60] or "unknown"
    domain = _NETWORK_UNSAFE.sub("-", network.lower()) or "network"
    display = header_text(handle, 200)
    if display.isascii():
        quoted = display.replace("\\", "\\\\").replace('"', '\\"')
        shown = f'"{quoted}"'
    else:
        shown = email.header.Header(display, "utf-8").encode()
    return f"{shown} <{local}@{domain}.invalid>"


def message_id(view: RecordView) -> str:
    return f"<record-{view.record_id}.leaf-{view.log_index}@vetline.archive>"


def _base64_lines(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def record_eml(view: RecordView, attachments: Iterable[tuple[str, bytes | None]] = ()) -> bytes:
    """The .eml bytes of one record (RFC 5322 + MIME, CRLF line ends). ``attachments`` yields
    ``(blob sha256, bytes)``; bytes are None when the blob is not available (then listed in
    ``X-Vetline-Attachment-Missing``)."""
    available: list[tuple[str, bytes]] = []
    missing: list[str] = []
    for digest, data in attachments:
        if data is None:
            missing.append(digest)
        else:
            available.append((digest, data))
    out: list[str] = []
    out.append(f"From: {_address(view.author or view.account_handle, view.network)}{CRLF}")
    recipients = [p for p in view.participants if p and p != view.author][:50]
    if recipients:
        joined = f",{CRLF} ".join(_address(p, view.network) for p in recipients)
        out.append(f"To: {joined}{CRLF}")
    subject = f"[{view.network}] {view.kind} {view.remote_id} v{view.version}"
    out.append(encode_header("Subject", header_text(subject, 300)))
    out.append(f"Date: {email.utils.format_datetime(view.when)}{CRLF}")
    out.append(f"Message-ID: {message_id(view)}{CRLF}")
    out.append(f"X-Mailer: {GENERATOR}{CRLF}")
    headers = {
        "X-Vetline-Record-Id": str(view.record_id),
        "X-Vetline-Leaf-Index": str(view.log_index),
        "X-Vetline-Network": view.network,
        "X-Vetline-Account-Id": str(view.account_id),
        "X-Vetline-Account": view.account_handle,
        "X-Vetline-Remote-Id": view.remote_id,
        "X-Vetline-Version": str(view.version),
        "X-Vetline-Previous-Leaf-Index": (
            "" if view.previous_log_index is None else str(view.previous_log_index)
        ),
        "X-Vetline-Record-Class": view.record_class,
        "X-Vetline-Kind": view.kind,
        "X-Vetline-Direction": view.direction,
        "X-Vetline-Author": view.author,
        "X-Vetline-Conversation-Id": view.conversation_id,
        "X-Vetline-Thread-Id": view.thread_id,
        "X-Vetline-Parent-Remote-Id": view.parent_remote_id,
        "X-Vetline-Network-Timestamp": iso(view.network_timestamp),
        "X-Vetline-Captured-At": iso(view.captured_at),
        "X-Vetline-Adopted": "true" if view.adopted else "false",
        "X-Vetline-Approval-Ref": view.approval_ref or "",
        "X-Vetline-Source": view.source,
        "X-Vetline-Payload-SHA256": view.raw_payload_sha256,
    }
    for name, value in headers.items():
        if value:
            out.append(encode_header(name, value))
    for digest in missing:
        out.append(encode_header("X-Vetline-Attachment-Missing", digest))
    out.append(f"MIME-Version: 1.0{CRLF}")
    text_part = (
        f"Content-Type: text/plain; charset=utf-8{CRLF}"
        f"Content-Transfer-Encoding: base64{CRLF}{CRLF}"
    )
    body = _base64_lines(view.text.encode("utf-8"))
    if not available:
        return "".join(out).encode("ascii") + text_part.encode("ascii") + body
    boundary = "vetline-" + secrets.token_hex(12)
    out.append(f'Content-Type: multipart/mixed; boundary="{boundary}"{CRLF}{CRLF}')
    out.append(f"--{boundary}{CRLF}{text_part}")
    chunks = ["".join(out).encode("ascii"), body]
    for digest, data in available:
        name = _LOCAL_UNSAFE.sub("_", digest)
        chunks.append(
            (
                f"{CRLF}--{boundary}{CRLF}"
                f'Content-Type: application/octet-stream; name="{name}"{CRLF}'
                f'Content-Disposition: attachment; filename="{name}"{CRLF}'
                f"Content-Transfer-Encoding: base64{CRLF}{CRLF}"
            ).encode("ascii")
        )
        chunks.append(_base64_lines(data))
    chunks.append(f"{CRLF}--{boundary}--{CRLF}".encode("ascii"))
    return b"".join(chunks)
