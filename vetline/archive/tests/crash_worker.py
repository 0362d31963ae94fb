"""Subprocess of the crash test: ingests batches forever, printing each acknowledged remote id
after ``ingest_batch`` returns (that is, after the commit). Killed with SIGKILL at random."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vetline.settings")
    import django

    django.setup()
    from vetline.accounts.models import SocialAccount
    from vetline.archive.actions import ingest_batch, sign_tree_head

    run = sys.argv[1]
    account = SocialAccount.objects.get(handle="@crash")
    previous: list[dict[str, object]] = []
    batch_no = 0
    while True:
        items = [
            {
                "remote_id": f"{run}-{batch_no}-{i}",
                "kind": "post",
                "direction": "outbound",
                "text": f"run {run} batch {batch_no} item {i}",
            }
            for i in range(40)
        ]
        # re-send the previous batch too: re-ingest must never duplicate
        report = ingest_batch(
            items=items + previous, account=account, source="crash", actor=None, screen=False
        )
        acked = [r.remote_id for r in report.items if r.status in ("ingested", "duplicate")]
        sys.stdout.write("".join(f"ACK {rid}\n" for rid in acked))
        sys.stdout.flush()
        previous = items[:10]
        batch_no += 1
        if batch_no % 7 == 0:
            sign_tree_head()


if __name__ == "__main__":
    main()
