"""A reviewer never sees another population's items, through any route: the queue page, the
item page, the API (list, detail, evidence, writes), metrics, and the admin."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from vetline.supervision.models import ReviewItem

pytestmark = pytest.mark.django_db


def test_reviewer_sees_only_their_queues(desk: Any, client: Client, api: Any) -> None:
    mine = ReviewItem.objects.get(record_id=desk.records["a1"])
    theirs = ReviewItem.objects.get(record_id=desk.records["b1"])

    client.force_login(desk.sup)
    page = client.get("/supervision/?state=")
    assert page.status_code == 200
    body = page.content.decode()
    assert f"/supervision/items/{mine.pk}/" in body
    assert f"/supervision/items/{theirs.pk}/" not in body
    assert "Queue B" not in body  # not even the queue's name
    assert client.get(f"/supervision/items/{theirs.pk}/").status_code == 404
    for action in ("claim", "release", "disposition"):
        response = client.post(
            f"/supervision/items/{theirs.pk}/{action}/",
            {"disposition": "no_issue"},
        )
        assert response.status_code == 404, action
    metrics = client.get("/supervision/metrics/").content.decode()
    assert "Queue A" in metrics and "Queue B" not in metrics

    call = api(desk.sup)
    listed = call("get", "/api/supervision/items?state=any").json()
    assert {i["id"] for i in listed["items"]} == {mine.pk}
    assert {q["name"] for q in call("get", "/api/supervision/queues").json()} == {"Queue A"}
    assert call("get", f"/api/supervision/items/{theirs.pk}").status_code == 404
    assert call("get", f"/api/supervision/items/{theirs.pk}/evidence").status_code == 404
    assert call("post", f"/api/supervision/items/{theirs.pk}/claim").status_code == 404
    response = call(
        "post",
        f"/api/supervision/items/{theirs.pk}/disposition",
        json={"disposition": "no_issue"},
    )
    assert response.status_code == 404
    response = call(
        "post",
        "/api/supervision/bulk-false-positive",
        json={"item_ids": [theirs.pk], "reason": "r"},
    )
    assert response.status_code == 404
    assert ReviewItem.objects.get(pk=theirs.pk).state == "open"

    # The other reviewer sees the other population only; the manager sees both.
    other = api(desk.sup2).__call__("get", "/api/supervision/items?state=any").json()
    assert {i["id"] for i in other["items"]} == {theirs.pk}
    both = api(desk.co)("get", "/api/supervision/items?state=any").json()
    assert {i["id"] for i in both["items"]} == {mine.pk, theirs.pk}


def test_admin_does_not_expose_review_items(desk: Any, client: Client) -> None:
    from django.contrib import admin

    from vetline.supervision.models import ReviewAction

    assert not admin.site.is_registered(ReviewItem)
    assert not admin.site.is_registered(ReviewAction)
