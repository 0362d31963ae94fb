"""Exporting a legal hold or a search (not only records by account, conversation or id):
through the selection objects, the CLI (`vetline archive export`), the API and the page."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vetline.archive.tests.conftest import item
from vetline.identity.roles import Role

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _export_dir(settings: Any, tmp_path: Path) -> None:
    settings.VETLINE_EXPORT_DIR = str(tmp_path / "exports")


@pytest.fixture
def archive(ingest: Any, world: Any) -> dict[str, Any]:
    """Three posts on the corporate account (one about a fund), one on another account."""
    ingest(
        [
            item("c1", text="Our new fund launches today", network_timestamp="2025-03-01T09:00Z"),
            item("c2", text="Office closed on Friday", network_timestamp="2025-03-02T09:00Z"),
            item("c3", text="Fund update: quarterly letter", network_timestamp="2025-04-01T09:00Z"),
        ]
    )
    ingest([item("o1", text="The fund is great")], account=world.other)
    return {"corporate": world.corporate, "other": world.other}


def _officer(world: Any) -> Any:
    return world.people[Role.COMPLIANCE_OFFICER]


def _hold(world: Any, **kw: Any) -> Any:
    from vetline.archive.retention_actions import place_legal_hold

    return place_legal_hold(actor=_officer(world), matter_name="SEC v. Harbor", **kw)


def _remote_ids(selection: Any) -> set[str]:
    return set(selection.queryset().values_list("remote_id", flat=True))


def test_a_hold_selection_is_what_the_hold_covers(archive: Any, world: Any) -> None:
    import datetime as dt

    from vetline.archive.export.selection import HoldSelection

    hold = _hold(world, accounts=[archive["corporate"]], date_to=dt.date(2025, 3, 31))
    assert _remote_ids(HoldSelection(hold_id=hold.pk)) == {"c1", "c2"}
    with_query = _hold(world, accounts=[archive["corporate"], archive["other"]], query="fund")
    assert _remote_ids(HoldSelection(hold_id=with_query.pk)) == {"c1", "c3", "o1"}


def test_a_released_hold_can_still_be_produced(archive: Any, world: Any) -> None:
    from vetline.archive.export.selection import HoldSelection
    from vetline.archive.retention_actions import release_legal_hold

    hold = _hold(world, accounts=[archive["other"]])
    release_legal_hold(actor=_officer(world), hold=hold, reason="Matter settled")
    assert _remote_ids(HoldSelection(hold_id=hold.pk)) == {"o1"}


def test_a_search_selection_is_what_the_search_finds(archive: Any) -> None:
    from vetline.archive.export.selection import SearchSelection

    assert _remote_ids(SearchSelection(query="fund")) == {"c1", "c3", "o1"}
    corporate = SearchSelection(query="fund", filters={"account": archive["corporate"].pk})
    assert _remote_ids(corporate) == {"c1", "c3"}
    assert _remote_ids(SearchSelection(query='"quarterly letter"')) == {"c3"}
    assert _remote_ids(SearchSelection(filters={"account": archive["other"].pk})) == {"o1"}


def test_bad_selections_are_clear_validation_errors(archive: Any) -> None:
    from vetline.archive.export.selection import (
        HoldSelection,
        SearchSelection,
        selection_from_dict,
        selection_from_input,
    )
    from vetline.core.errors import ValidationFailed

    cases: list[tuple[Any, str]] = [
        (lambda: HoldSelection(hold_id=987654), "no such legal hold"),
        (lambda: HoldSelection(hold_id=2**64), "no such legal hold"),
        (lambda: SearchSelection(), "needs a query or a filter"),
        (lambda: SearchSelection(query='"unclosed'), ""),
        (lambda: SearchSelection(query="x", filters={"since": "not a date"}), ""),
        (lambda: selection_from_dict({"kind": "hold", "hold_id": "abc"}), "number"),
        (lambda: selection_from_dict({"kind": "search", "filters": ["x"]}), "mapping"),
        (
            lambda: selection_from_input({"hold_id": 1, "query": "fund"}),
            "a legal hold and a search",
        ),
        (
            lambda: selection_from_input({"query": "fund", "account_id": 1}),
            "a search and records",
        ),
        (lambda: selection_from_input({"record_ids": [2**64]}), "not a record"),
    ]
    for make, message in cases:
        with pytest.raises(ValidationFailed) as caught:
            make()
        assert message in caught.value.message


def test_selections_round_trip_through_their_stored_form(archive: Any, world: Any) -> None:
    from vetline.archive.export.selection import (
        HoldSelection,
        SearchSelection,
        selection_from_dict,
    )

    hold = _hold(world, accounts=[archive["corporate"]])
    for selection in (
        HoldSelection(hold_id=hold.pk),
        SearchSelection(query="fund", filters={"account": str(archive["corporate"].pk)}),
    ):
        again = selection_from_dict(selection.as_dict())
        assert again == selection
        assert _remote_ids(again) == _remote_ids(selection)


def _verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", str(path / "standalone_verifier.py"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_exports_a_hold_and_a_search(archive: Any, world: Any, tmp_path: Path) -> None:
    from django.core.management import call_command

    hold = _hold(world, accounts=[archive["corporate"]])
    out = io.StringIO()
    call_command(
        "archive", "export", "--hold", str(hold.pk), "--quiet", str(tmp_path / "h"), stdout=out
    )
    assert "Exported 3 record version(s)" in out.getvalue()
    assert _verify(tmp_path / "h").returncode == 0

    out = io.StringIO()
    call_command(
        "archive",
        "export",
        "--query",
        "fund",
        "--filter",
        f"account={archive['other'].pk}",
        "--quiet",
        str(tmp_path / "s"),
        stdout=out,
    )
    assert "Exported 1 record version(s)" in out.getvalue()
    assert _verify(tmp_path / "s").returncode == 0


def test_cli_refuses_a_malformed_filter_and_a_mixed_selection(archive: Any, tmp_path: Path) -> None:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="NAME=VALUE"):
        call_command("archive", "export", "--filter", "account", "--quiet", str(tmp_path / "a"))
    with pytest.raises(CommandError, match="one thing at a time"):
        call_command("archive", "export", "--query", "fund", "--account", "1", str(tmp_path / "b"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_api_exports_a_hold(archive: Any, world: Any, api: Any) -> None:
    from vetline.archive.export.actions import run_export

    hold = _hold(world, accounts=[archive["other"]])
    call = api(_officer(world))
    response = call("POST", "/api/archive/export", json={"hold_id": hold.pk})
    assert response.status_code == 202, response.content
    assert response.json()["selection"] == {"kind": "hold", "hold_id": hold.pk}
    run_export(export_id=response.json()["id"])
    status = call("GET", f"/api/archive/export/{response.json()['id']}").json()
    assert status["state"] == "done" and status["counts"]["records"] == 1

    search = call(
        "POST", "/api/archive/export", json={"query": "fund", "search_filters": {"kind": "post"}}
    )
    assert search.status_code == 202
    assert search.json()["selection"]["kind"] == "search"
    assert call("POST", "/api/archive/export", json={"hold_id": 424242}).status_code == 422
    mixed = call("POST", "/api/archive/export", json={"hold_id": hold.pk, "query": "x"})
    assert mixed.status_code == 422


def test_the_page_is_prefilled_from_a_hold_and_from_a_search(
    archive: Any, world: Any, login: Any
) -> None:
    hold = _hold(world, accounts=[archive["corporate"]])
    client = login(_officer(world))
    detail = client.get(f"/archive/retention/holds/{hold.pk}/").content.decode()
    assert f"/archive/export/?hold={hold.pk}" in detail

    page = client.get(f"/archive/export/?hold={hold.pk}").content.decode()
    assert f'<option value="{hold.pk}" selected>' in page
    page = client.get(
        f"/archive/export/?q=fund&account={archive['corporate'].pk}&kind=post"
    ).content.decode()
    assert 'value="fund"' in page
    assert "kind: post" in page

    response = client.post(
        "/archive/export/",
        {"query": "fund", "search_filters": f'{{"account": "{archive["corporate"].pk}"}}'},
    )
    assert response.status_code == 302
    from vetline.archive.export.actions import load_job

    job = load_job(response["Location"].rstrip("/").rsplit("/", 1)[-1])
    assert job is not None and job.selection["kind"] == "search"

    bad = client.post("/archive/export/", {"hold": str(hold.pk), "query": "fund"})
    assert bad.status_code == 200 and "one thing at a time" in bad.content.decode()
    hostile = client.post("/archive/export/", {"search_filters": '{"evil": 1}'})
    assert hostile.status_code == 200 and "not search filters" in hostile.content.decode()


def test_the_search_page_links_its_results_to_the_export(
    archive: Any, world: Any, login: Any
) -> None:
    page = login(_officer(world)).get("/archive/search/?q=fund&kind=post").content.decode()
    assert 'id="export-results"' in page and "/archive/export/?" in page and "q=fund" in page
    supervisor = login(world.people[Role.SUPERVISOR]).get("/archive/search/?q=fund")
    assert 'id="export-results"' not in supervisor.content.decode()
