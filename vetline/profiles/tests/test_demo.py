from __future__ import annotations

from typing import Any

import pytest

from vetline.profiles.models import ProfileDrift, ProfileProposal

pytestmark = pytest.mark.django_db


def test_demo_shows_every_stage_of_vetting_and_a_drift(settings: Any) -> None:
    from vetline.core.demo import load_demo

    load_demo()
    statuses = dict(ProfileProposal.objects.values_list("account__handle", "status"))
    assert statuses == {
        "jordan-blake-cfp": "approved",
        "@JordanBlakeCFP": "submitted",
        "elena-petrova-advisor": "rejected",
        "jordan-blake-training": "approved",
    }
    drift = ProfileDrift.objects.get()
    assert drift.account.handle == "jordan-blake-training" and drift.status == "open"
    assert [d["field"] for d in drift.differences] == ["bio"]
    proposals = ProfileProposal.objects.count()
    load_demo()
    assert ProfileProposal.objects.count() == proposals and ProfileDrift.objects.count() == 1
