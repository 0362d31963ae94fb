from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from vetline.supervision.models import RetroRun

pytestmark = pytest.mark.django_db


def test_retro_from_the_command_line(desk: Any) -> None:
    out, err = io.StringIO(), io.StringIO()
    today = timezone.now().date().isoformat()
    call_command(
        "supervision",
        "retro",
        "--policy",
        desk.policy.name,
        "--from",
        today,
        "--to",
        today,
        "--as",
        desk.co.email,
        stdout=out,
        stderr=err,
    )
    run = RetroRun.objects.get()
    assert run.state == "done" and run.processed == 4 and run.started_by == desk.co
    assert "4 records screened" in out.getvalue()
    assert "records" in err.getvalue()  # the progress bar
    with pytest.raises(CommandError):
        call_command(
            "supervision",
            "retro",
            "--policy",
            desk.policy.name,
            "--from",
            today,
            "--to",
            today,
            "--as",
            desk.sup.email,
            stdout=out,
            stderr=err,
        )


def test_follow_and_sample(desk: Any) -> None:
    out = io.StringIO()
    call_command("supervision", "follow", stdout=out)
    assert "0 records" in out.getvalue()
    call_command("supervision", "sample", stdout=out)
