import getpass
import os
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from vetline.audit.actions import record
from vetline.core.context import RequestContext, use_context
from vetline.identity.models import Person, RoleGrant
from vetline.identity.roles import Role


class Command(BaseCommand):
    help = (
        "Create the first Administrator. The password comes from VETLINE_ADMIN_PASSWORD or "
        "an interactive prompt. They must enrol in two-factor authentication at first "
        "sign-in."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--name", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        email = options["email"].strip().lower()
        if Person.objects.filter(email__iexact=email).exists():
            raise CommandError(f"{email} already exists.")
        password = os.environ.get("VETLINE_ADMIN_PASSWORD") or getpass.getpass("Password: ")
        probe = Person(email=email, full_name=options["name"])
        try:
            validate_password(password, probe)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        with use_context(RequestContext(channel="cli")), transaction.atomic():
            person = Person.objects.create_user(
                email=email, password=password, full_name=options["name"], is_staff=True
            )
            RoleGrant.objects.create(person=person, role=Role.ADMINISTRATOR.value)
            record(
                action="identity.person.bootstrap",
                actor=None,
                actor_name="vetline createadmin",
                obj=person,
                after={"email": email, "roles": [Role.ADMINISTRATOR.value]},
            )
        self.stdout.write(self.style.SUCCESS(f"Administrator {email} created."))
