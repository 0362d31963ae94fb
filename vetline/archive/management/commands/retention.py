"""`vetline manage retention …`: the retention report (classes, holds, what disposal would do)
and disposal itself (the same action the daily job runs)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from vetline.core.context import RequestContext, use_context
from vetline.core.errors import DomainError


def _as_of(raw: str | None) -> dt.datetime:
    if not raw:
        return timezone.now()
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError as exc:
        raise CommandError(f"--as-of: not an ISO date or datetime: {raw!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
    help = "Retention: report | dispose [--dry-run]"

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="op", required=True)
        rep = sub.add_parser("report", help="record classes, active holds, what disposal would do")
        rep.add_argument("--json", action="store_true")
        dis = sub.add_parser("dispose", help="dispose of the content of expired, unheld records")
        dis.add_argument("--dry-run", action="store_true", help="report only, change nothing")
        dis.add_argument("--json", action="store_true")
        for p in (rep, dis):
            p.add_argument("--as-of", help="compute expiry at this ISO time (default: now)")

    def handle(self, *args: Any, **options: Any) -> None:
        from vetline.archive.models_retention import LegalHold, RecordClass
        from vetline.archive.retention_actions import dispose_expired

        now = _as_of(options.get("as_of"))
        dry_run = options["op"] == "report" or options.get("dry_run", False)
        with use_context(RequestContext(channel="cli")):
            try:
                report = dispose_expired(now=now, dry_run=dry_run, trigger="cli")
            except DomainError as exc:
                raise CommandError(exc.message) from exc
        if options.get("json"):
            self.stdout.write(report.to_json())
            return
        if options["op"] == "report":
            self.stdout.write("Record classes:")
            for rc in RecordClass.objects.order_by("code"):
                self.stdout.write(
                    f"  {rc.code}: kept {rc.retention_days} days, easily accessible "
                    f"{rc.easily_accessible_days} days ({rc.regulatory_basis})"
                )
            holds = list(LegalHold.objects.filter(released_at__isnull=True).order_by("placed_at"))
            self.stdout.write(f"Active legal holds: {len(holds)}")
            for h in holds:
                self.stdout.write(
                    f"  #{h.pk} {h.matter_name} (placed {h.placed_at:%Y-%m-%d} "
                    f"by {h.placed_by.full_name})"
                )
        self.stdout.write(report.summary() + ".")
        if report.unconfigured_classes:
            self.stdout.write(
                "Never disposed of (no configured period): "
                + json.dumps(report.unconfigured_classes)
            )
        if not dry_run and report.run_id is not None:
            self.stdout.write(f"Disposal run #{report.run_id} stored and audited.")
