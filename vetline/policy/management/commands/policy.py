"""`vetline policy …`: evaluate, install the built-in packs, import and export YAML."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from vetline.core.context import RequestContext, use_context
from vetline.core.errors import DomainError


class Command(BaseCommand):
    help = "Policies: evaluate | install-packs | import | export"

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="op", required=True)
        ev = sub.add_parser("evaluate", help="precision/recall/F1 on labelled JSONL examples")
        ev.add_argument("file")
        ev.add_argument(
            "--policy",
            action="append",
            default=[],
            help="stored policy name, built-in pack name or YAML file (repeatable)",
        )
        ev.add_argument("--json", help="also write the figures as JSON here")
        ev.add_argument("--today", help="YYYY-MM-DD for event windows and embargoes")
        sub.add_parser("install-packs", help="install the built-in packs (idempotent)")
        imp = sub.add_parser("import", help="create a policy, or a new version, from YAML")
        imp.add_argument("file")
        imp.add_argument(
            "--as",
            dest="email",
            required=True,
            help="e-mail of the compliance officer making the change",
        )
        imp.add_argument("--note", default="Imported from the command line")
        exp = sub.add_parser("export", help="print a stored version as YAML")
        exp.add_argument("name")
        exp.add_argument("--version", type=int)

    def handle(self, *args: Any, **opts: Any) -> None:
        with use_context(RequestContext(channel="cli")):
            try:
                getattr(self, "_" + opts["op"].replace("-", "_"))(opts)
            except DomainError as exc:
                raise CommandError(exc.message) from exc

    def _evaluate(self, opts: dict[str, Any]) -> None:
        from vetline.policy.engine import PACKS, compile_policy, load_pack
        from vetline.policy.engine.evaluate import ExampleError, evaluate, load_examples
        from vetline.policy.models import Policy
        from vetline.policy.selectors import compiled

        path = Path(opts["file"])
        try:
            examples = load_examples(
                path.read_text(encoding="utf-8").splitlines(), source=str(path)
            )
        except (OSError, ExampleError) as exc:
            raise CommandError(str(exc)) from exc
        policies = {}
        for spec in opts["policy"] or list(PACKS):
            stored = Policy.objects.filter(name=spec).first()
            if stored is not None:
                engine = compiled(stored.current_version())
            elif spec in PACKS:
                engine = load_pack(spec)
            else:
                try:
                    engine = compile_policy(
                        Path(spec).read_text(encoding="utf-8"), base_dir=Path(spec).parent
                    )
                except (OSError, ValueError) as exc:
                    raise CommandError(f"{spec}: {exc}") from exc
            policies[engine.name] = engine
        today = dt.date.fromisoformat(opts["today"]) if opts["today"] else None
        try:
            report = evaluate(examples, policies, default_today=today)
        except ExampleError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(report.format_text())
        if opts["json"]:
            Path(opts["json"]).write_text(
                json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )

    def _install_packs(self, opts: dict[str, Any]) -> None:
        from vetline.policy.actions import install_pack
        from vetline.policy.engine import PACKS

        for pack in PACKS:
            policy = install_pack(actor=None, pack=pack)
            self.stdout.write(
                f"{policy.name}: v{policy.current_version().number}"
                f"{' (default)' if policy.is_default else ''}"
            )

    def _import(self, opts: dict[str, Any]) -> None:
        from vetline.identity.models import Person
        from vetline.policy.actions import create_policy, save_policy_version
        from vetline.policy.engine import load_policy_yaml
        from vetline.policy.models import Policy

        actor = Person.objects.filter(email__iexact=opts["email"], is_active=True).first()
        if actor is None:
            raise CommandError(f"No active person {opts['email']}.")
        try:
            text = Path(opts["file"]).read_text(encoding="utf-8")
            name = str(load_policy_yaml(text).get("name", ""))
        except (OSError, ValueError) as exc:
            raise CommandError(f"{opts['file']}: {exc}") from exc
        existing = Policy.objects.filter(name=name).first()
        if existing:
            v = save_policy_version(actor=actor, policy=existing, spec_yaml=text, note=opts["note"])
            self.stdout.write(f"{name}: saved version {v.number}")
        else:
            create_policy(actor=actor, spec_yaml=text, note=opts["note"])
            self.stdout.write(f"{name}: created (version 1)")

    def _export(self, opts: dict[str, Any]) -> None:
        from vetline.policy.selectors import get_policy, get_version

        policy = get_policy(opts["name"])
        number = opts["version"] or policy.current_version().number
        sys.stdout.write(get_version(policy.name, number).spec_yaml)
