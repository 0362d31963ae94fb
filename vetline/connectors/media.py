"""Captured media: fetching them size-limited through a connector's own session, with the
shared retry helper (plain Python, no ORM, no Django).

A connector hands over the media of a captured item as :class:`~vetline.connectors.base.MediaRef`
values under :data:`~vetline.connectors.base.MEDIA_KEY`; the framework
(:func:`vetline.connectors.actions.fetch_page_media`) asks the connector for each one's bytes
(:meth:`~vetline.connectors.base.Connector.fetch_media`). Connectors whose media are plain URLs
(Mastodon, X, LinkedIn, Facebook, Instagram) fetch them with :func:`download`:

* through the client library's own :class:`requests.Session` (its adapters, proxies, TLS
  settings and, where the network needs it, the authorization header the connector passes);
* with the framework's retries (:class:`~vetline.connectors.http.HttpClient`: 429 waited out,
  5xx and timeouts retried with backoff on the connector's clock);
* streamed, and stopped as soon as the size limit is passed: a ``Content-Length`` above it is
  refused before the body is read, and a body that grows past it is not kept
  (:class:`~vetline.connectors.base.MediaTooLarge`, never retried).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import requests

from vetline.connectors.base import (
    MEDIA_KEY,
    ConnectorError,
    MediaRef,
    MediaTooLarge,
    PermanentError,
)
from vetline.connectors.http import (
    Clock,
    HttpClient,
    Request,
    Response,
    RetryPolicy,
    error_for,
)

#: the default for ``VETLINE_CAPTURE_MEDIA_MAX_BYTES``: 100 MB
DEFAULT_MAX_BYTES: Final = 100 * 1024 * 1024
_CHUNK: Final = 256 * 1024


#: the networks' stand-ins for an account without a picture of its own (Mastodon's
#: ``/avatars/original/missing.png``, X's ``default_profile_images``): not an avatar, not
#: fetched (vetline.profiles.drift reads them the same way: no photo)
PLACEHOLDER_AVATAR_MARKS: Final = ("/avatars/original/missing.png", "/default_profile_images/")


def avatar_media(url: Any) -> list[MediaRef]:
    """A profile snapshot's media: its avatar at ``url``, or none (no URL, or the network's
    placeholder). Only the avatar: a profile snapshot's ``attachments`` are ``[avatar]`` or
    ``[]`` (banners and headers are not captured)."""
    if not isinstance(url, str) or not url.strip():
        return []
    if any(mark in url for mark in PLACEHOLDER_AVATAR_MARKS):
        return []
    return [MediaRef(ref=url.strip())]


def media_of(item: Mapping[str, Any]) -> list[MediaRef]:
    """The media a connector announced for ``item`` (anything else under the key is ignored)."""
    refs = item.get(MEDIA_KEY)
    if not isinstance(refs, list | tuple):
        return []
    return [r for r in refs if isinstance(r, MediaRef) and r.ref]


def with_media(item: dict[str, Any], refs: Sequence[MediaRef]) -> dict[str, Any]:
    """``item`` with its media announced (no key at all when there are none, so items without
    media are exactly what they were)."""
    if refs:
        item[MEDIA_KEY] = list(refs)
    return item


def without_media(entry: Any) -> Any:
    """An item as the archive takes it, media announcement removed (other entries as they are):
    for callers that archive a connector's items without fetching their media."""
    if isinstance(entry, Mapping) and MEDIA_KEY in entry:
        return {k: v for k, v in entry.items() if k != MEDIA_KEY}
    return entry


def check_declared_size(media: MediaRef, max_bytes: int) -> None:
    """Refuse a medium the network says is larger than the limit, before asking for it."""
    if media.size_bytes is not None and media.size_bytes > max_bytes:
        raise MediaTooLarge(
            f"the medium is {media.size_bytes:,} bytes, over the {max_bytes:,}-byte limit",
            size_bytes=media.size_bytes,
        )


def too_large(size: int, max_bytes: int) -> MediaTooLarge:
    return MediaTooLarge(
        f"the medium is over the {max_bytes:,}-byte limit (at least {size:,} bytes)",
        size_bytes=size,
    )


def media_error_for(response: Response, now: float) -> ConnectorError | None:
    """:func:`~vetline.connectors.http.error_for` for media: a 401 from a media server says
    nothing about the account's access (CDNs answer it for expired signed URLs), so it is a
    refusal of this medium, not an expired token."""
    if response.status == 401:
        return PermanentError("the media server refused the request (HTTP 401)")
    return error_for(response, now)


class _StreamingTransport:
    """One GET through ``session``, read in chunks up to ``max_bytes``."""

    def __init__(self, session: requests.Session, max_bytes: int) -> None:
        self.session = session
        self.max_bytes = max_bytes

    def send(self, request: Request, *, timeout: float) -> Response:
        # The base class's request(): a library session that retries by itself (the framework's
        # RetryingSession) would read the whole body first; here the helper retries.
        resp = requests.Session.request(
            self.session,
            request.method,
            request.url,
            headers=request.headers,
            stream=True,
            timeout=timeout,
            allow_redirects=True,
        )
        try:
            headers = dict(resp.headers.items())
            if resp.status_code >= 400:
                return Response(resp.status_code, headers, b"")
            declared = resp.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise too_large(int(declared), self.max_bytes)
            chunks: list[bytes] = []
            size = 0
            for chunk in resp.iter_content(_CHUNK):
                size += len(chunk)
                if size > self.max_bytes:
                    raise too_large(size, self.max_bytes)
                chunks.append(chunk)
            return Response(resp.status_code, headers, b"".join(chunks))
        finally:
            resp.close()


def download(
    *,
    session: requests.Session,
    url: str,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    policy: RetryPolicy | None = None,
    rng: random.Random | None = None,
    classify: Callable[[Response, float], ConnectorError | None] = media_error_for,
) -> bytes:
    """The bytes at ``url`` (http or https only), fetched with ``session``. Raises
    :class:`MediaTooLarge` past ``max_bytes``, :class:`PermanentError` for a 404 or another
    refusal, and the retry helper's errors when the network keeps failing."""
    if urlsplit(url).scheme not in ("https", "http"):
        raise PermanentError("the medium's address is not an http(s) URL")
    client = HttpClient(
        transport=_StreamingTransport(session, max_bytes),
        clock=clock,
        policy=policy,
        rng=rng,
        classify=classify,
    )
    response = client.send(Request("GET", url, headers=dict(headers or {})))
    return response.body
