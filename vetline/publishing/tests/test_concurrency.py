"""Exactly once, under concurrency and crashes: two approvals at the same moment, two workers
racing to publish, a double click, and a crash (or a timeout) between sending to the network
and recording the result. In every case the post exists once on the network and the state is
right after recovery.

The threaded tests need a database that real concurrent connections share (PostgreSQL, which CI
runs the suite on); on the in-memory SQLite test database they are skipped, and the
deterministic interleavings below cover the same states on both databases. The embedded default
(a SQLite file) gets its own race between two real worker processes."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections
from django.utils import timezone

from vetline.connectors.base import TransientError
from vetline.connectors.sandbox.connector import SandboxConnector
from vetline.connectors.sandbox.models import SandboxPost
from vetline.core.errors import Conflict, DomainError
from vetline.publishing import actions, approvals
from vetline.publishing.models import Approval, ApprovalRequest, Publication
from vetline.publishing.states import DraftState
from vetline.publishing.tests.conftest import draft_input, stuck_publication


class Crash(BaseException):
    """Stands for the process dying at that point (not an Exception: nothing catches it)."""


def _approved_publication(pw: Any, text: str, scheduled_for: str | None = None) -> Publication:
    """A publication approved through the chain, not yet sent (due now in the tests where the
    on-commit send does not run, as if the worker had not picked it up yet)."""
    draft = actions.create_draft(
        actor=pw.publisher, data=draft_input(pw.account, text, scheduled_for=scheduled_for)
    )
    actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
    req = ApprovalRequest.objects.get(subject_group=f"draft:{draft.pk}", state="pending")
    for who in (pw.approver, pw.approver2):
        approvals.decide(
            actor=who, request_id=req.pk, decision="approve", subject_sha256=req.subject_sha256
        )
    pub = Publication.objects.get(draft=draft)
    assert pub.state == "queued"
    return pub


def _posts(text: str) -> int:
    return SandboxPost.objects.filter(text=text).count()


def _concurrent(*calls: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, fn: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = fn()
        except BaseException as exc:
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def _needs_shared_database() -> None:
    name = str(connection.settings_dict["NAME"])
    if connection.vendor == "sqlite" and ("memory" in name or not name):
        pytest.skip("threads need a database they can share with real locking (PostgreSQL)")


# --- Deterministic interleavings (every database) ------------------------------------------------


@pytest.mark.django_db
def test_second_worker_sees_the_intent_and_does_not_send(pw: Any, monkeypatch: Any) -> None:
    pub = _approved_publication(pw, "Race me")
    original = SandboxConnector.publish
    inner: list[str] = []

    def publish_and_race(self: Any, **kw: Any) -> Any:
        # While the first worker is on the network, a second worker and a double click arrive.
        inner.append(actions.publish_publication(publication_id=pub.pk))
        inner.append(actions.publish_publication(publication_id=pub.pk))
        return original(self, **kw)

    monkeypatch.setattr(SandboxConnector, "publish", publish_and_race)
    assert actions.publish_publication(publication_id=pub.pk) == "published"
    assert inner == ["in_flight", "in_flight"]
    assert _posts("Race me") == 1
    assert actions.publish_publication(publication_id=pub.pk) == "published"
    assert _posts("Race me") == 1


@pytest.mark.django_db
def test_crash_between_send_and_record_is_reconciled_without_resending(
    pw: Any, monkeypatch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    pub = _approved_publication(pw, "Sent, then the worker died")

    def crash(**kw: Any) -> str:
        raise Crash

    monkeypatch.setattr(actions, "record_published", crash)
    with pytest.raises(Crash):
        actions.publish_publication(publication_id=pub.pk)
    monkeypatch.undo()
    pub.refresh_from_db()
    assert pub.state == "sending" and pub.intent_at is not None and pub.remote_id == ""
    assert _posts("Sent, then the worker died") == 1
    # A retry right after the crash does not send again: the intent stands.
    assert actions.publish_publication(publication_id=pub.pk) == "in_flight"
    assert actions.reconcile_publication(publication_id=pub.pk) == "in_flight"  # not stale yet
    later = timezone.now() + actions.SEND_STALE + dt.timedelta(seconds=1)
    assert pub.pk in actions.stale_sending_ids(later)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = actions.reconcile_publication(publication_id=pub.pk, now=later)
    assert outcome == "reconciled_published"
    pub.refresh_from_db()
    post = SandboxPost.objects.get(text="Sent, then the worker died")
    assert pub.state == "published" and pub.remote_id == post.remote_id
    assert pub.archived_record_id is not None and pub.approval_record_id is not None
    assert _posts("Sent, then the worker died") == 1
    pub.draft.refresh_from_db()
    assert pub.draft.state == DraftState.PUBLISHED
    # The captured copy is linked, not mistaken for a rogue post.
    actions.follow_archive()
    from vetline.publishing.models import RoguePost

    assert not RoguePost.objects.exists()


@pytest.mark.django_db
def test_crash_before_the_network_call_sends_once_after_recovery(
    pw: Any, monkeypatch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    pub = _approved_publication(pw, "The worker died before sending")

    def crash(self: Any, **kw: Any) -> Any:
        raise Crash

    monkeypatch.setattr(SandboxConnector, "publish", crash)
    with pytest.raises(Crash):
        actions.publish_publication(publication_id=pub.pk)
    monkeypatch.undo()
    assert _posts("The worker died before sending") == 0
    later = timezone.now() + actions.SEND_STALE + dt.timedelta(seconds=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert actions.reconcile_publication(publication_id=pub.pk, now=later) == (
            "reconciled_requeued"
        )
    pub.refresh_from_db()
    assert pub.state == "published"
    assert _posts("The worker died before sending") == 1


@pytest.mark.django_db
def test_timeout_after_the_network_accepted_is_not_sent_twice(
    pw: Any, monkeypatch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    pub = _approved_publication(pw, "Accepted, but the answer was lost")
    original = SandboxConnector.publish

    def accept_then_time_out(self: Any, **kw: Any) -> Any:
        original(self, **kw)
        raise TransientError("read timed out")

    monkeypatch.setattr(SandboxConnector, "publish", accept_then_time_out)
    assert actions.publish_publication(publication_id=pub.pk) == "uncertain"
    monkeypatch.undo()
    assert actions.publish_publication(publication_id=pub.pk) == "in_flight"
    later = timezone.now() + actions.SEND_STALE + dt.timedelta(seconds=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert actions.reconcile_publication(publication_id=pub.pk, now=later) == (
            "reconciled_published"
        )
    assert _posts("Accepted, but the answer was lost") == 1
    assert Publication.objects.get(pk=pub.pk).state == "published"


@pytest.mark.django_db
def test_rate_limit_retries_with_backoff(pw: Any, monkeypatch: Any) -> None:
    from vetline.connectors.base import RateLimited

    pub = _approved_publication(pw, "Slow down")

    def limited(self: Any, **kw: Any) -> Any:
        raise RateLimited("too many requests", retry_after=120)

    monkeypatch.setattr(SandboxConnector, "publish", limited)
    assert actions.publish_publication(publication_id=pub.pk) == "retrying"
    pub.refresh_from_db()
    assert pub.state == "queued" and pub.next_attempt_at is not None
    assert pub.next_attempt_at >= timezone.now() + dt.timedelta(seconds=100)
    assert actions.publish_publication(publication_id=pub.pk) == "backoff"
    monkeypatch.undo()
    assert (
        actions.publish_publication(
            publication_id=pub.pk, now=timezone.now() + dt.timedelta(minutes=3)
        )
        == "published"
    )
    assert _posts("Slow down") == 1


@pytest.mark.django_db
def test_a_concurrent_decision_never_lands_on_the_next_step(pw: Any) -> None:
    draft = actions.create_draft(actor=pw.publisher, data=draft_input(pw.account, "Two clicks"))
    actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
    req = ApprovalRequest.objects.get(subject_group=f"draft:{draft.pk}", state="pending")
    approvals.decide(
        actor=pw.approver,
        request_id=req.pk,
        decision="approve",
        subject_sha256=req.subject_sha256,
        step_position=1,
    )
    # approver2 had step 1 open in the same moment; their click must not approve step 2.
    with pytest.raises(Conflict, match="completed meanwhile"):
        approvals.decide(
            actor=pw.approver2,
            request_id=req.pk,
            decision="approve",
            subject_sha256=req.subject_sha256,
            step_position=1,
        )
    assert Approval.objects.filter(request=req).count() == 1


# --- Real threads (PostgreSQL) --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_publish_once(pw: Any, monkeypatch: Any) -> None:
    _needs_shared_database()
    soon = (timezone.now() + dt.timedelta(hours=1)).isoformat()
    pub = _approved_publication(pw, "Two workers", scheduled_for=soon)
    due = timezone.now() + dt.timedelta(hours=2)
    original = SandboxConnector.publish

    def slow(self: Any, **kw: Any) -> Any:
        import time

        time.sleep(0.3)
        return original(self, **kw)

    monkeypatch.setattr(SandboxConnector, "publish", slow)
    results = _concurrent(
        lambda: actions.publish_publication(publication_id=pub.pk, now=due),
        lambda: actions.publish_publication(publication_id=pub.pk, now=due),
    )
    assert sorted(map(str, results)) == ["in_flight", "published"], results
    assert _posts("Two workers") == 1
    assert Publication.objects.get(pk=pub.pk).state == "published"


@pytest.mark.django_db(transaction=True)
def test_two_approvals_at_the_same_moment(pw: Any) -> None:
    _needs_shared_database()
    from vetline.identity.roles import Role
    from vetline.publishing.approvals import StepInput, save_chain

    save_chain(
        actor=pw.officer,
        name="Two at once",
        subject_kind="post",
        account=pw.account,
        steps=[StepInput("Two principals", 2, role=Role.APPROVER.value)],
    )
    draft = actions.create_draft(actor=pw.publisher, data=draft_input(pw.account, "Both at once"))
    actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
    req = ApprovalRequest.objects.get(subject_group=f"draft:{draft.pk}", state="pending")

    def approve(who: Any) -> Callable[[], Any]:
        return lambda: approvals.decide(
            actor=who,
            request_id=req.pk,
            decision="approve",
            subject_sha256=req.subject_sha256,
            step_position=1,
        )

    results = _concurrent(approve(pw.approver), approve(pw.approver2))
    assert not [r for r in results if isinstance(r, BaseException)], results
    req.refresh_from_db()
    assert req.state == "approved"
    assert Approval.objects.filter(request=req).count() == 2
    assert Publication.objects.filter(draft=draft).count() == 1
    # The same person clicking twice at once is recorded once.
    draft2 = actions.create_draft(actor=pw.publisher, data=draft_input(pw.account, "Double click"))
    actions.submit_draft(actor=pw.publisher, draft_id=draft2.pk)
    req2 = ApprovalRequest.objects.get(subject_group=f"draft:{draft2.pk}", state="pending")
    results = _concurrent(
        lambda: approvals.decide(
            actor=pw.approver,
            request_id=req2.pk,
            decision="approve",
            subject_sha256=req2.subject_sha256,
        ),
        lambda: approvals.decide(
            actor=pw.approver,
            request_id=req2.pk,
            decision="approve",
            subject_sha256=req2.subject_sha256,
        ),
    )
    assert len([r for r in results if isinstance(r, DomainError)]) == 1, results
    assert Approval.objects.filter(request=req2).count() == 1


@pytest.mark.slow
def test_two_worker_processes_on_the_embedded_database_publish_once(tmp_path: Any) -> None:
    """The embedded default (a SQLite file, WAL, IMMEDIATE transactions) with two real worker
    processes racing for the same publication."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(VETLINE_ENV="test", VETLINE_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(root))
    worker = [sys.executable, "-m", "vetline.publishing.tests.race_worker"]

    def run(*args: str) -> str:
        done = subprocess.run(
            [*args], env=env, cwd=root, capture_output=True, check=True, timeout=300
        )
        lines = done.stdout.decode().strip().splitlines()
        return lines[-1] if lines else ""

    run(sys.executable, "-m", "vetline.cli", "migrate", "-v", "0")
    pub_id = run(*worker, "setup")
    start = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [*worker, "publish", pub_id, str(start)],
            env=env,
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    import time

    time.sleep(3)  # both processes are up and waiting
    start.touch()
    outcomes = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()[-2000:]
        outcomes.append(out.decode().strip().splitlines()[-1])
    check = (
        "import os, json, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', "
        "'vetline.settings'); django.setup()\n"
        "from vetline.connectors.sandbox.models import SandboxPost\n"
        "from vetline.publishing.models import Publication\n"
        f"p = Publication.objects.get(pk={pub_id})\n"
        "print(json.dumps({'posts': SandboxPost.objects.filter(text='Two processes').count(),"
        " 'state': p.state, 'attempts': p.attempts}))"
    )
    state = json.loads(run(sys.executable, "-c", check))
    assert sorted(outcomes) == ["in_flight", "published"], outcomes
    assert state == {"posts": 1, "state": "published", "attempts": 1}


# --- Settling by hand against the reconcile job ---------------------------------------------------

SETTLE_REASON = "Looked at the account's timeline on the network."


def _capture_works_again(pw: Any) -> None:
    from vetline.connectors.models import CaptureState

    CaptureState.objects.filter(account=pw.account).update(retry_not_before=None)


@pytest.mark.django_db
def test_a_person_settling_while_the_job_reconciles_wins_and_the_job_stands_back(
    pw: Any, monkeypatch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from vetline.connectors import actions as connector_actions

    pub = stuck_publication(pw, monkeypatch, "Settled mid-reconcile", sent=False)
    _capture_works_again(pw)
    real_capture = connector_actions.capture_account

    def capture_while_a_person_settles(**kw: Any) -> Any:
        outcome = real_capture(**kw)
        actions.settle_publication(
            actor=pw.officer, publication_id=pub.pk, outcome="not_published", reason=SETTLE_REASON
        )
        return outcome

    monkeypatch.setattr(connector_actions, "capture_account", capture_while_a_person_settles)
    with django_capture_on_commit_callbacks(execute=True):
        # Alone, the job would requeue it (not on the network) and send it at once.
        assert actions.reconcile_publication(publication_id=pub.pk) == "failed"
    assert Publication.objects.get(pk=pub.pk).state == "failed"
    assert _posts("Settled mid-reconcile") == 0


@pytest.mark.django_db
def test_once_the_job_has_reconciled_there_is_nothing_left_to_settle(
    pw: Any, monkeypatch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    pub = stuck_publication(pw, monkeypatch, "Reconciled first", sent=True)
    _capture_works_again(pw)
    with django_capture_on_commit_callbacks(execute=True):
        assert actions.reconcile_publication(publication_id=pub.pk) == "reconciled_published"
    with pytest.raises(Conflict) as refused:
        actions.settle_publication(
            actor=pw.officer, publication_id=pub.pk, outcome="not_published", reason=SETTLE_REASON
        )
    assert refused.value.code == "not_settleable"
    assert Publication.objects.get(pk=pub.pk).state == "published"
    assert _posts("Reconciled first") == 1


@pytest.mark.django_db(transaction=True)
def test_settle_racing_the_reconcile_job_exactly_one_wins(pw: Any, monkeypatch: Any) -> None:
    _needs_shared_database()
    from vetline.audit.models import AuditEvent

    pub = stuck_publication(pw, monkeypatch, "Race to settle", sent=True)
    post = SandboxPost.objects.get(text="Race to settle")
    _capture_works_again(pw)
    settled, reconciled = _concurrent(
        lambda: actions.settle_publication(
            actor=pw.officer,
            publication_id=pub.pk,
            outcome="published",
            remote_id=post.remote_id,
            reason=SETTLE_REASON,
        ),
        lambda: actions.reconcile_publication(publication_id=pub.pk),
    )
    if isinstance(settled, Publication):
        assert reconciled == "published", reconciled
    else:
        assert isinstance(settled, Conflict), settled
        assert reconciled == "reconciled_published", reconciled
    final = Publication.objects.get(pk=pub.pk)
    assert final.state == "published" and final.remote_id == post.remote_id
    assert _posts("Race to settle") == 1
    events = AuditEvent.objects.filter(object_type="publishing.publication", object_id=str(pub.pk))
    assert events.filter(action="publishing.publication.published").count() == 1
    assert (
        events.filter(
            action__in=["publishing.publication.settle", "publishing.publication.reconcile"]
        ).count()
        == 1
    )
