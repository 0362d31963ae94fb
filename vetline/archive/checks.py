"""System checks of the archive, run by `vetline check` (and at start-up): a blob store that
cannot keep attachments write-once fails here, not at the first upload."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

_DOCS = "docs/operations.md, Blob storage"


@register()
def blob_store_configured(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """With ``VETLINE_BLOB_BACKEND=s3``, the bucket must exist, be reachable with the
    configured credentials, and have Object Lock enabled."""
    from vetline.archive.blobs import BACKEND_LOCAL, BACKEND_S3, BACKENDS, BlobError, default_store

    backend = settings.VETLINE_BLOB_BACKEND
    if backend == BACKEND_LOCAL:
        return []
    if backend != BACKEND_S3:
        return [
            Error(
                f"VETLINE_BLOB_BACKEND is {backend!r}; it must be one of: {', '.join(BACKENDS)}.",
                id="archive.E001",
            )
        ]
    if not settings.VETLINE_S3_BUCKET:
        return [
            Error(
                "VETLINE_BLOB_BACKEND is s3 but no bucket is configured.",
                hint=f"Set VETLINE_S3_BUCKET to a bucket with Object Lock enabled ({_DOCS}).",
                id="archive.E002",
            )
        ]
    from botocore.exceptions import BotoCoreError

    from vetline.archive.blobs_s3 import ObjectLockNotEnabled, S3BlobStore

    try:
        store = default_store()
        if isinstance(store, S3BlobStore):
            store.verify_bucket()
    except ObjectLockNotEnabled as exc:
        return [
            Error(
                str(exc),
                hint="Create the bucket with Object Lock enabled "
                "(`aws s3api create-bucket --bucket NAME --object-lock-enabled-for-bucket`) "
                f"or enable it on the versioned bucket ({_DOCS}).",
                id="archive.E004",
            )
        ]
    except (BlobError, BotoCoreError) as exc:
        return [
            Error(
                str(exc),
                hint="Check VETLINE_S3_BUCKET, VETLINE_S3_ENDPOINT_URL, VETLINE_S3_REGION and "
                f"the AWS credentials ({_DOCS}).",
                id="archive.E003",
            )
        ]
    return []
