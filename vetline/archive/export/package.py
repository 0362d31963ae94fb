"""Assemble an export package from a selection, streaming records from the database.

Layout of a package directory::

    README.txt                 what is inside and how to verify it
    records.csv                one row per record version
    eml/NNNNN/IIIIIIIIIIII.eml one message per record version (named by log index)
    rsmf/<conversation>.rsmf   RSMF 2.0, one per conversation
    transcripts/<conversation>.html   printable transcript, one per conversation
    standalone_verifier.py     stdlib-only verifier
    manifest.json, manifest.sig.json  (integrity/manifest.py)

Three passes over the selection, each a server-side iterator (``.iterator()``), so memory stays
flat however many records are exported: messages (EML + CSV) in log order; conversations (RSMF
+ HTML); the manifest with an inclusion proof per record, against a signed tree head that
covers every exported record.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce

from vetline.archive import log
from vetline.archive.blobs import BlobError, default_store
from vetline.archive.export import csvout, eml, html, rsmf
from vetline.archive.export.view import (
    ConversationKey,
    RecordView,
    eml_path,
    iso,
    rsmf_path,
    transcript_path,
)
from vetline.archive.integrity.canonical import TOMBSTONE_PREFIX
from vetline.archive.integrity.manifest import ManifestError, ManifestRecord, write_manifest
from vetline.archive.integrity.merkle import MerkleTree, inclusion_proof_plan, leaf_hash
from vetline.archive.leaves import record_leaf_from_row
from vetline.archive.models import ArchivedRecord, TreeHead

logger = logging.getLogger(__name__)

CHUNK: Final = 500
PROOF_CHUNK: Final = 500
VERIFIER_NAME: Final = "standalone_verifier.py"
PASSES: Final = 3  # each record is visited once per pass; progress totals count visits


class Progress(Protocol):
    def __call__(self, phase: str, advance: int) -> None: ...


def no_progress(phase: str, advance: int) -> None:
    return None


@dataclass
class PackageResult:
    path: Path
    records: int = 0
    conversations: int = 0
    files: int = 0
    attachments_missing: int = 0
    tree_size: int = 0
    manifest_sha256: str = ""
    file_names: list[str] = field(default_factory=list, repr=False)

    def counts(self) -> dict[str, int]:
        return {
            "records": self.records,
            "conversations": self.conversations,
            "files": self.files,
            "attachments_missing": self.attachments_missing,
            "tree_size": self.tree_size,
        }


class _ChunkedHashStore(log.DatabaseHashStore):
    """The log's hash store, emptied before each chunk of proofs, so the cache stays small."""

    def reset(self) -> None:
        self._leaves.clear()
        self._nodes.clear()


def _records(qs: QuerySet[ArchivedRecord]) -> QuerySet[ArchivedRecord]:
    return qs.select_related("account").defer("raw_payload")


def _attachments(view: RecordView, missing: list[int]) -> Iterator[tuple[str, bytes | None]]:
    store = default_store()
    for digest in view.attachments:
        try:
            yield digest, store.get(digest)
        except BlobError:
            missing[0] += 1
            yield digest, None


def covering_head(max_index: int | None) -> TreeHead:
    """The latest signed tree head, after signing a new one if the log grew since the last
    (so the head covers every exported record, and the export's own audit event)."""
    from vetline.archive.actions import sign_tree_head

    head = TreeHead.objects.order_by("-tree_size", "-id").first()
    if (
        head is None
        or head.tree_size < log.current_size()
        or (max_index is not None and head.tree_size <= max_index)
    ):
        head = sign_tree_head()
    return head


def build_package(
    qs: QuerySet[ArchivedRecord], out_dir: Path, *, progress: Progress = no_progress
) -> PackageResult:
    """Write the package for the records of ``qs`` into ``out_dir`` (created; must be empty)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty")
    result = PackageResult(path=out_dir)
    missing = [0]
    exported_at = iso(_now())

    # Pass 1: one EML per record version, and the CSV, in log order.
    with (out_dir / "records.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csvout.CsvWriter(fh)
        for row in _records(qs).order_by("log_index").iterator(chunk_size=CHUNK):
            view = RecordView.from_row(row)
            writer.write(view)
            path = out_dir / eml_path(view.log_index)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(eml.record_eml(view, _attachments(view, missing)))
            result.records += 1
            progress("messages", 1)

    # Pass 2: per conversation, RSMF (messages with their versions) and the HTML transcript.
    keys = (
        qs.order_by("account_id", "network", "conversation_id")
        .values_list("account_id", "network", "conversation_id")
        .distinct()
    )
    (out_dir / "rsmf").mkdir()
    (out_dir / "transcripts").mkdir()
    with tempfile.TemporaryDirectory(prefix="vetline-export-") as work:
        for account_id, network, conversation_id in keys.iterator(chunk_size=CHUNK):
            key = ConversationKey(account_id, network, conversation_id)
            _write_conversation(qs, key, out_dir, Path(work), exported_at, missing, progress)
            result.conversations += 1

    shutil.copyfile(Path(__file__).resolve().parent.parent / VERIFIER_NAME, out_dir / VERIFIER_NAME)
    (out_dir / "README.txt").write_text(_readme(exported_at), encoding="utf-8")

    # Pass 3: the signed manifest with an inclusion proof for every record.
    max_index = qs.order_by("-log_index").values_list("log_index", flat=True).first()
    head_row = covering_head(max_index)
    head = log.head_from_row(head_row)
    store = _ChunkedHashStore(head.tree_size)
    summary = write_manifest(
        out_dir,
        tree=MerkleTree(store),
        tree_head=head,
        signer=log.signer(),
        records=_manifest_records(qs, store, head.tree_size, progress),
        public_keys=list(log.keyring()),
    )
    result.files = summary.files
    result.file_names = summary.file_paths
    result.tree_size = head.tree_size
    result.manifest_sha256 = summary.manifest_sha256.hex()
    result.attachments_missing = missing[0]
    logger.info("archive.export.package", extra={"path": str(out_dir), **result.counts()})
    return result


def _write_conversation(
    qs: QuerySet[ArchivedRecord],
    key: ConversationKey,
    out_dir: Path,
    work: Path,
    exported_at: str,
    missing: list[int],
    progress: Progress,
) -> None:
    conv = _records(qs).filter(
        account_id=key.account_id, network=key.network, conversation_id=key.conversation_id
    )
    handle = ""
    writer: rsmf.RsmfWriter | None = None
    try:
        group: list[RecordView] = []
        for row in conv.order_by("remote_id", "version", "log_index").iterator(chunk_size=CHUNK):
            view = RecordView.from_row(row)
            if writer is None:
                handle = view.account_handle
                writer = rsmf.RsmfWriter(
                    out_dir / rsmf_path(key), key, account_handle=handle, workdir=work
                )
            if group and group[0].remote_id != view.remote_id:
                _add_message(writer, group, missing)
                group = []
            group.append(view)
            progress("conversations", 1)
        if writer is None:
            return
        if group:
            _add_message(writer, group, missing)
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise

    ordered = conv.annotate(_when=Coalesce(F("network_timestamp"), F("captured_at"))).order_by(
        "_when", "log_index"
    )
    with (out_dir / transcript_path(key)).open("w", encoding="utf-8") as fh:
        transcript = html.TranscriptWriter(fh, key, handle)
        transcript.begin(exported_at=exported_at)
        for row in ordered.iterator(chunk_size=CHUNK):
            transcript.event(RecordView.from_row(row))
        transcript.end()


def _add_message(
    writer: rsmf.RsmfWriter, versions: Sequence[RecordView], missing: list[int]
) -> None:
    seen: set[str] = set()
    blobs: list[tuple[str, bytes | None]] = []
    for v in versions:
        for item in _attachments(v, missing):
            if item[0] not in seen:
                seen.add(item[0])
                blobs.append(item)
    writer.add_message(versions, blobs)


def _manifest_records(
    qs: QuerySet[ArchivedRecord],
    store: _ChunkedHashStore,
    tree_size: int,
    progress: Progress,
) -> Iterator[ManifestRecord]:
    chunk: list[ManifestRecord] = []

    def flush() -> Iterator[ManifestRecord]:
        store.reset()
        refs: list[tuple[int, int]] = []
        for record in chunk:
            for element in inclusion_proof_plan(record.index, tree_size):
                refs.extend(element)
            refs.append((0, record.index))
        store.prefetch(refs)
        for i, record in enumerate(chunk):
            if record.leaf_bytes is not None and leaf_hash(record.leaf_bytes) != store.leaf_hash(
                record.index
            ):
                chunk[i] = _disposed_or_refuse(record)
        yield from chunk
        progress("manifest", len(chunk))
        chunk.clear()

    for row in _records(qs).order_by("log_index").iterator(chunk_size=CHUNK):
        view = RecordView.from_row(row)
        key = view.conversation
        chunk.append(
            ManifestRecord(
                index=row.log_index,
                leaf_bytes=record_leaf_from_row(row),
                files=(eml_path(row.log_index), rsmf_path(key), transcript_path(key)),
            )
        )
        if len(chunk) >= PROOF_CHUNK:
            yield from flush()
    if chunk:
        yield from flush()


def _disposed_or_refuse(record: ManifestRecord) -> ManifestRecord:
    """A record whose content retention disposed of keeps only its leaf hash (and a tombstone
    in place of its payload): it is exported hash-only. Any other mismatch is tampering, and
    the export stops rather than certify altered content."""
    payload = (
        ArchivedRecord.objects.filter(log_index=record.index)
        .values_list("raw_payload", flat=True)
        .first()
    )
    if payload is not None and bytes(payload).startswith(TOMBSTONE_PREFIX):
        return ManifestRecord(index=record.index, leaf_bytes=None, files=record.files)
    raise ManifestError(
        f"the record at log index {record.index} no longer matches its leaf in the log; "
        "run `vetline archive verify`"
    )


def zip_package(package_dir: Path, zip_path: Path) -> Path:
    """Zip a package directory file by file (each file is streamed from disk)."""
    package_dir = Path(package_dir)
    root = zip_path.stem
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for path in sorted(p for p in package_dir.rglob("*") if p.is_file()):
            zf.write(path, f"{root}/{path.relative_to(package_dir).as_posix()}")
    return zip_path


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()


def _readme(exported_at: str) -> str:
    return (
        "Vetline archive export\n"
        "======================\n\n"
        f"Exported {exported_at} (UTC).\n\n"
        "  records.csv           one row per record version\n"
        "  eml/                  one RFC 5322 message per record version, named by log index\n"
        "  rsmf/                 Relativity Short Message Format 2.0, one file per conversation\n"
        "  transcripts/          printable HTML transcript per conversation\n"
        "  manifest.json         SHA-256 of every file, the signed tree head, and an RFC 6962\n"
        "                        inclusion proof for every record\n"
        "  manifest.sig.json     Ed25519 signature over manifest.json\n"
        "  standalone_verifier.py  checks all of the above with Python 3.9+ alone\n\n"
        "To verify:  python3 standalone_verifier.py .\n"
        "Compare the key id it prints with the one the firm published, or pass\n"
        "--trusted-key-id KEY_ID.\n"
    )
