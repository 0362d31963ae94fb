"""What archiving captured media costs a capture: one page of Mastodon statuses through the
framework's page path (``archive_page``: fetch media, blob store, ``ingest_batch``, cursor), with
the real ``MastodonConnector.fetch_media`` downloading from a local HTTP server (real sockets,
``http.server`` in a thread), against baselines measured in the same run:

* ``no_media`` (the baseline): the same page shape, statuses without media_attachments;
* ``media``: every status with one image of ``--media-kb`` KB (distinct bytes), downloaded,
  hashed, written to the blob store (local backend: a temporary file, fsync, link) and named in
  the record's attachments;
* ``recapture``: the ``media`` page again (a lost cursor, a re-read window): every item is
  already archived, its archived attachments are reused and nothing is downloaded.

Modes alternate in order every round (whichever runs first meets a cold cache).

    python bench/capture_media_bench.py [--items 200] [--media-kb 200] [--rounds 5]
        [--database-url URL]

Writes bench/results/capture_media[_postgresql].json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).absolute().parents[1]
sys.path.insert(0, str(ROOT))
from bench.archive_search_bench import _pct  # noqa: E402
from bench.stream_latency_bench import _setup  # noqa: E402

HOST = "mastodon.example"


class _Media(BaseHTTPRequestHandler):
    """Serves /media/<n>.png: ``size`` deterministic bytes per n."""

    size = 0
    served = 0

    def do_GET(self) -> None:
        n = self.path.rsplit("/", 1)[-1].split(".")[0]
        seed = hashlib.sha256(n.encode()).digest()
        body = (seed * (self.size // len(seed) + 1))[: self.size]
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        type(self).served += 1

    def log_message(self, *args: Any) -> None:
        return


def _page(base: str, start: int, count: int, *, media: bool) -> Any:
    from vetline.connectors.base import ActivityPage
    from vetline.connectors.mastodon.mapping import status_item
    from vetline.connectors.requests_session import RawElement

    items = []
    for n in range(start, start + count):
        status = {
            "id": str(110_000_000_000_000_000 + n),
            "created_at": "2025-03-01T10:00:00.000Z",
            "visibility": "public",
            "content": f"<p>Quarterly update number {n}</p>",
            "account": {"id": "1", "acct": "acme"},
            "mentions": [],
            "media_attachments": [
                {
                    "id": str(n),
                    "type": "image",
                    "url": f"{base}/media/{n}.png",
                    "description": f"Chart {n}",
                }
            ]
            if media
            else [],
        }
        raw = json.dumps(status, separators=(",", ":")).encode()
        items.append(
            status_item(RawElement(raw, status, True), status, owner="acme@" + HOST, host=HOST)
        )
    return ActivityPage(items=items, cursor=None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--media-kb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="vetline-media-bench-")
    # Jobs queued after ingest (screening follow-ups, drift checks) go to the queue, as in
    # production, instead of running inline: they are the worker's time, not the capture's.
    os.environ["VETLINE_JOBS_IMMEDIATE"] = "0"
    _setup(data_dir, args.database_url)

    from django.db import connection

    from vetline.accounts.models import AccountKind, Network, SocialAccount
    from vetline.archive.models import ArchivedRecord
    from vetline.connectors.actions import CaptureOutcome, archive_page
    from vetline.connectors.base import TokenSet
    from vetline.connectors.mastodon.connector import MastodonConnector
    from vetline.connectors.models import CaptureState
    from vetline.identity.models import Person

    _Media.size = args.media_kb * 1024
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Media)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    connector = MastodonConnector(config={"base_urls": {HOST: base}})
    tokens = TokenSet(access_token="bench-token-" + "x" * 32, remote_account_id=f"1@{HOST}")
    owner = Person.objects.create_user(
        email=f"bench-{time.time_ns()}@example.com", password="x" * 16, full_name="Owner"
    )
    account = SocialAccount.objects.create(
        network=Network.MASTODON, handle=f"@acme@{HOST}", kind=AccountKind.CORPORATE, owner=owner
    )
    state = CaptureState.objects.create(account=account)
    samples: dict[str, list[float]] = {"no_media": [], "media": [], "recapture": []}
    downloads: dict[str, int] = {"media": 0, "recapture": 0}
    next_id = [0]

    def run(name: str, page: Any, with_connector: bool) -> None:
        nonlocal state
        served = _Media.served
        outcome = CaptureOutcome(account_id=account.pk, status="captured")
        started = time.perf_counter()
        archived = archive_page(
            account=account,
            state_id=state.pk,
            expected=state,
            page=page,
            outcome=outcome,
            connector=connector if with_connector else None,
            tokens=tokens if with_connector else None,
        )
        samples[name].append(time.perf_counter() - started)
        assert archived is not None and outcome.media_missing == 0, outcome
        state = archived
        if name in downloads:
            downloads[name] += _Media.served - served

    for r in range(args.rounds):
        start = next_id[0]
        next_id[0] += 2 * args.items
        plain = _page(base, start, args.items, media=False)
        media = _page(base, start + args.items, args.items, media=True)
        order = ["no_media", "media"] if r % 2 == 0 else ["media", "no_media"]
        for name in order:
            run(name, plain if name == "no_media" else media, name == "media")
        run("recapture", media, True)

    with_media = ArchivedRecord.objects.filter(account=account).exclude(attachments=[]).count()
    assert with_media == args.items * args.rounds
    per_item = {name: [s / args.items * 1000 for s in values] for name, values in samples.items()}
    base_ms = statistics.median(per_item["no_media"])
    result: dict[str, Any] = {
        "benchmark": "capture_media",
        "database": connection.vendor,
        "python": platform.python_version(),
        "items_per_page": args.items,
        "media_bytes": _Media.size,
        "rounds": args.rounds,
        "unit": "milliseconds per item, one page through archive_page",
        "modes": {
            name: {
                "p50": round(_pct(values, 50), 3),
                "p95": round(_pct(values, 95), 3),
                "mean": round(statistics.fmean(values), 3),
                "items_per_second": round(1000 / statistics.median(values), 1),
            }
            for name, values in per_item.items()
        },
        "media_overhead_ms_per_item_p50": round(statistics.median(per_item["media"]) - base_ms, 3),
        "media_throughput_mb_per_second": round(
            _Media.size * args.items / statistics.median(samples["media"]) / 1e6, 1
        ),
        "downloads": downloads,
    }
    server.shutdown()
    name = "capture_media" + ("_postgresql" if connection.vendor == "postgresql" else "")
    out = ROOT / "bench" / "results" / f"{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
