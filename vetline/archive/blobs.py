"""Content-addressed blob storage for attachments: a blob is named by the SHA-256 of its bytes.

The embedded default keeps blobs on the local filesystem under ``VETLINE_BLOB_DIR`` (default
``DATA_DIR/blobs``), fanned out as ``ab/cd/abcdef…`` so no directory grows too large. Blobs are
write-once (an existing blob is never rewritten; writing the same bytes again is a no-op) and
every read re-hashes the bytes, so a damaged or altered file is refused, not served.

An S3 Object Lock backend (compliance mode, retention from the record class) is future work; it
will implement the same :class:`BlobStore` protocol.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

_HEX64 = re.compile(r"[0-9a-f]{64}")


class BlobError(Exception):
    """A blob is missing, or its bytes no longer match its name."""


class BlobStore(Protocol):
    def put(self, data: bytes) -> str: ...

    def get(self, sha256_hex: str) -> bytes: ...

    def exists(self, sha256_hex: str) -> bool: ...


def check_name(sha256_hex: str) -> str:
    if not isinstance(sha256_hex, str) or not _HEX64.fullmatch(sha256_hex):
        raise BlobError(f"{sha256_hex!r} is not a lowercase SHA-256 hex digest")
    return sha256_hex


class LocalBlobStore:
    """Blobs on the local filesystem (write-once, verified on read)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path_for(self, sha256_hex: str) -> Path:
        name = check_name(sha256_hex)
        return self.root / name[:2] / name[2:4] / name

    def put(self, data: bytes) -> str:
        name = hashlib.sha256(data).hexdigest()
        path = self.path_for(name)
        if path.exists():
            return name
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary file and link it into place: readers never see a partial blob,
        # and a concurrent writer of the same bytes cannot clobber the first one.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o444)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
        return name

    def get(self, sha256_hex: str) -> bytes:
        path = self.path_for(sha256_hex)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise BlobError(f"blob {sha256_hex} is missing") from exc
        if hashlib.sha256(data).hexdigest() != sha256_hex:
            raise BlobError(f"blob {sha256_hex} is damaged: its bytes no longer match its hash")
        return data

    def exists(self, sha256_hex: str) -> bool:
        return self.path_for(sha256_hex).exists()


def default_store() -> LocalBlobStore:
    from django.conf import settings

    return LocalBlobStore(settings.VETLINE_BLOB_DIR)
