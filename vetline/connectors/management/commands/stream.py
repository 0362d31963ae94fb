"""`vetline stream [--shard INDEX/COUNT]`: continuous capture of every connected account whose
network streams (the Bluesky firehose), until SIGTERM or Ctrl-C. See docs/operations.md."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


def _shard(value: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in value.split("/", 1))
    except ValueError as exc:
        raise CommandError("--shard is INDEX/COUNT, e.g. 0/2") from exc
    if count < 1 or not 0 <= index < count:
        raise CommandError("--shard is INDEX/COUNT with 0 <= INDEX < COUNT, e.g. 0/2")
    return index, count


class Command(BaseCommand):
    help = "Stream capture of every connected account whose network streams (until SIGTERM)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--shard",
            default="0/1",
            help="INDEX/COUNT: stream only accounts whose id %% COUNT == INDEX (run COUNT "
            "processes to spread the accounts)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        from vetline.connectors.stream import StreamSettings, StreamSupervisor

        shard = _shard(str(opts["shard"]))
        configured = getattr(settings, "VETLINE_STREAM", None)
        if configured is None:
            try:
                configured = json.loads(os.environ.get("VETLINE_STREAM") or "{}")
            except ValueError as exc:
                raise CommandError("VETLINE_STREAM must be a JSON object") from exc
        if not isinstance(configured, dict):
            raise CommandError("VETLINE_STREAM must be a JSON object")
        known = set(StreamSettings.__dataclass_fields__)
        unknown = sorted(set(configured) - known)
        if unknown:
            raise CommandError(f"Unknown VETLINE_STREAM settings: {', '.join(unknown)}")
        supervisor = StreamSupervisor(settings=StreamSettings(**configured), shard=shard)

        def _stop(signum: int, _frame: Any) -> None:
            self.stdout.write(f"Signal {signum}: stopping the streams…")
            supervisor.stop()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        self.stdout.write(f"Streaming capture running (shard {shard[0]}/{shard[1]}).")
        supervisor.run()
        self.stdout.write("Streaming capture stopped.")
