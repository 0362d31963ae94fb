"""`vetline manage supervision …`: follow new records now, run a retroactive screening with a
progress bar, sample due plans."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from vetline.core.context import RequestContext, use_context
from vetline.core.errors import DomainError


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = "Supervision: follow new records, retroactive runs, scheduled samples."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="cmd", required=True)
        sub.add_parser("follow", help="screen and queue every record archived since the cursor")
        retro = sub.add_parser(
            "retro", help="screen archived records of a date range with a policy's current version"
        )
        retro.add_argument("--policy", required=True, help="policy name")
        retro.add_argument("--from", dest="start", required=True, help="first day (YYYY-MM-DD)")
        retro.add_argument("--to", dest="end", required=True, help="last day, inclusive")
        retro.add_argument("--as", dest="email", required=True, help="who runs it (audited)")
        retro.add_argument("--quiet", action="store_true", help="no progress bar")
        sample = sub.add_parser("sample", help="sample every active plan for its last period")
        sample.add_argument("--today", help="pretend today is this day (YYYY-MM-DD)")

    def handle(self, *args: Any, **opts: Any) -> None:
        with use_context(RequestContext(channel="cli")):
            try:
                getattr(self, f"_{opts['cmd']}")(opts)
            except DomainError as exc:
                raise CommandError(exc.message) from exc

    def _follow(self, opts: dict[str, Any]) -> None:
        from vetline.supervision.actions import process_new_records

        self.stdout.write(f"{process_new_records():,} records looked at.")

    def _sample(self, opts: dict[str, Any]) -> None:
        from vetline.supervision.actions import run_due_plans

        today = _date(opts["today"]) if opts.get("today") else None
        for run in run_due_plans(today=today):
            self.stdout.write(
                f"{run.plan}: {run.period_start:%Y-%m-%d} {run.status} "
                f"N={run.population_size} n={run.sample_size} {run.note}"
            )

    def _retro(self, opts: dict[str, Any]) -> None:
        from tqdm import tqdm

        from vetline.identity.models import Person
        from vetline.policy.selectors import get_policy
        from vetline.supervision.actions import run_retro, start_retro_run

        actor = Person.objects.filter(email=opts["email"].lower(), is_active=True).first()
        if actor is None:
            raise CommandError(f"No active person with the e-mail {opts['email']}.")
        start, end = _date(opts["start"]), _date(opts["end"])
        run = start_retro_run(
            actor=actor,
            policy=get_policy(opts["policy"]),
            captured_from=dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC),
            captured_to=dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC),
            run_now=False,
        )
        bar = tqdm(
            total=run.total,
            unit="records",
            disable=opts["quiet"],
            file=self.stderr,
            desc=f"retro run {run.pk}",
        )

        def progress(r: Any) -> None:
            bar.total = max(bar.total or 0, r.total)
            bar.update(r.processed - bar.n)

        run = run_retro(run_id=run.pk, on_progress=progress)
        bar.close()
        self.stdout.write(
            f"Run {run.pk}: {run.processed:,} records screened with {run.policy.name} "
            f"v{run.policy_version.number}; {run.flagged:,} queued, "
            f"{run.already_queued:,} already queued."
        )
