"""Subprocess of the worker-race test: one publishing worker process.

``setup`` makes a connected sandbox account, a publisher and an approver, and an approved
publication due in an hour; it prints the publication id. ``publish ID`` waits for the start
file, then runs the publish job for that publication as if it were due (the network call is
slowed so the two workers overlap), and prints the outcome."""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path
from typing import Any

CALLBACK = "http://testserver/connectors/oauth/callback/"


def setup() -> int:
    from urllib.parse import parse_qs, urlsplit

    from django.utils import timezone

    from vetline.accounts.models import AccountKind, Assignment, Network, SocialAccount
    from vetline.connectors.actions import complete_connection, start_connection
    from vetline.identity.models import Person, RoleGrant
    from vetline.publishing import actions, approvals
    from vetline.publishing.models import ApprovalRequest, Publication

    def person(email: str, role: str) -> Any:
        p = Person.objects.create_user(email=email, password="x" * 16, full_name=email)
        RoleGrant.objects.create(person=p, role=role)
        return p

    admin = person("admin@example.com", "administrator")
    officer = person("officer@example.com", "compliance_officer")
    publisher = person("publisher@example.com", "publisher")
    approver = person("approver@example.com", "approver")
    account = SocialAccount.objects.create(
        network=Network.SANDBOX, handle="race-training", kind=AccountKind.CORPORATE, owner=officer
    )
    start = start_connection(actor=admin, account=account, redirect_uri=CALLBACK)
    q = parse_qs(urlsplit(start.url).query)
    complete_connection(actor=admin, state=q["state"][0], code=q["code"][0], redirect_uri=CALLBACK)
    Assignment.objects.create(account=account, person=publisher, capability="publish")
    Assignment.objects.create(account=account, person=approver, capability="approve")
    when = (timezone.now() + dt.timedelta(hours=1)).isoformat()
    draft = actions.create_draft(
        actor=publisher,
        data=actions.DraftInput(text="Two processes", account_ids=[account.pk], scheduled_for=when),
    )
    actions.submit_draft(actor=publisher, draft_id=draft.pk)
    req = ApprovalRequest.objects.get(subject_group=f"draft:{draft.pk}")
    approvals.decide(
        actor=approver, request_id=req.pk, decision="approve", subject_sha256=req.subject_sha256
    )
    return Publication.objects.get(draft=draft).pk


def publish(publication_id: int, start_file: Path) -> str:
    from django.utils import timezone

    from vetline.connectors.sandbox.connector import SandboxConnector
    from vetline.publishing import actions

    original = SandboxConnector.publish

    def slow(self: Any, **kw: Any) -> Any:
        time.sleep(0.5)
        return original(self, **kw)

    SandboxConnector.publish = slow  # type: ignore[method-assign]
    deadline = time.monotonic() + 60
    while not start_file.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    due = timezone.now() + dt.timedelta(hours=2)
    return actions.publish_publication(publication_id=publication_id, now=due)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vetline.settings")
    import django

    django.setup()
    if sys.argv[1] == "setup":
        print(setup())
    else:
        print(publish(int(sys.argv[2]), Path(sys.argv[3])))


if __name__ == "__main__":
    main()
