import time
from typing import Any

from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.core.management.base import BaseCommand

from vetline.core.demo import DEMO_PASSWORD, PEOPLE


def current_code(secret: str) -> str:
    code: str = format_hotp_value(hotp_value(secret, int(time.time()) // 30))
    return code


class Command(BaseCommand):
    help = "Print the demo sign-ins: e-mail, password, TOTP secret and the code valid right now."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"Password for every demo person: {DEMO_PASSWORD}\n")
        self.stdout.write(f"{'e-mail':34} {'role':20} {'TOTP secret':26} code now")
        for p in PEOPLE:
            role = ", ".join(r.label for r in p.roles)
            self.stdout.write(
                f"{p.email:34} {role:20} {p.totp_secret:26} {current_code(p.totp_secret)}"
            )
        self.stdout.write(
            "\nAdd a secret to any authenticator app, or run "
            "`vetline demo-logins` again for fresh codes."
        )
