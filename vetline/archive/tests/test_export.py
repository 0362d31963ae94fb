"""The eDiscovery export: package contents, independent verification, tamper detection,
streaming memory, permissions and audit events."""

from __future__ import annotations

import csv
import email
import email.policy
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from vetline.archive.tests.conftest import item
from vetline.conftest import audit_actions_since, last_audit_id
from vetline.identity.roles import Role

HOSTILE = "<script>alert('x')</script>\u200b\u202e&amp;\"q\""
PHISH = '=HYPERLINK("http://evil")'


@pytest.fixture(autouse=True)
def _export_dir(settings: Any, tmp_path: Path) -> None:
    settings.VETLINE_EXPORT_DIR = str(tmp_path / "exports")


@pytest.fixture
def fixture_set(ingest: Any, world: Any) -> dict[str, Any]:
    """A small conversation with a reply, an edit, a deletion, an attachment, an inbound
    message with hostile text, and one post on another account."""
    from vetline.archive.blobs import default_store

    blob = default_store().put(b"%PDF-1.4 attachment bytes")
    ingest(
        [
            item(
                "m1",
                kind="direct_message",
                conversation_id="dm-1",
                participants=["@acme", "@bob"],
                text="Hello Bob\r\nline two ",
                attachments=[blob],
            ),
            item(
                "m2",
                kind="direct_message",
                direction="inbound",
                author="@bob",
                conversation_id="dm-1",
                parent_remote_id="m1",
                text=HOSTILE,
                network_timestamp="2025-03-01T10:05:00Z",
            ),
            item(
                "m3",
                kind="direct_message",
                conversation_id="dm-1",
                text=PHISH,
                network_timestamp="2025-03-01T10:06:00Z",
                parent_remote_id="gone",
            ),
            item("p1", text="A public post", network_timestamp="2025-03-02T09:00:00Z"),
        ]
    )
    ingest(
        [
            item(
                "m1",
                kind="edit",
                conversation_id="dm-1",
                text="Hello Bob (edited)",
                network_timestamp="2025-03-01T10:10:00Z",
            )
        ]
    )
    ingest(
        [
            item(
                "m3",
                kind="deletion",
                conversation_id="dm-1",
                text="",
                network_timestamp="2025-03-01T11:00:00Z",
            )
        ]
    )
    ingest([item("o1", text="other account")], account=world.other)
    return {"blob": blob, "account": world.corporate.pk}


def _export(tmp_path: Path, name: str = "pkg", **selection: Any) -> Any:
    from vetline.archive.export.actions import export_to_directory
    from vetline.archive.export.selection import RecordSelection
    from vetline.core.context import RequestContext, use_context

    with use_context(RequestContext(channel="test")):
        return export_to_directory(
            actor=None, selection=RecordSelection.from_dict(selection), out_dir=tmp_path / name
        )


def _verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", str(path / "standalone_verifier.py"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.django_db
def test_package_verifies_with_the_standalone_verifier(fixture_set: Any, tmp_path: Path) -> None:
    result = _export(tmp_path, account_id=fixture_set["account"])
    pkg = result.path
    assert result.records == 6 and result.conversations == 2
    names = set(result.file_names)
    assert {"records.csv", "README.txt", "standalone_verifier.py"} <= names
    assert sum(n.startswith("eml/") for n in names) == 6
    assert sum(n.startswith("rsmf/") for n in names) == 2
    assert sum(n.startswith("transcripts/") for n in names) == 2
    done = _verify(pkg)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "RESULT: VERIFIED" in done.stdout
    manifest = json.loads((pkg / "manifest.json").read_text())
    assert len(manifest["records"]) == 6
    assert all(r["inclusion_proof"] is not None and r["files"] for r in manifest["records"])
    # the verifier shipped is the stdlib-only one, byte for byte
    from vetline.archive import standalone_verifier

    shipped = (pkg / "standalone_verifier.py").read_bytes()
    assert shipped == Path(standalone_verifier.__file__).read_bytes()


@pytest.mark.django_db
@pytest.mark.parametrize("victim", ["records.csv", "eml", "rsmf", "transcripts", "README.txt"])
def test_editing_any_exported_file_fails_and_names_it(
    fixture_set: Any, tmp_path: Path, victim: str
) -> None:
    pkg = _export(tmp_path, account_id=fixture_set["account"]).path
    target = pkg / victim
    if target.is_dir():
        target = sorted(p for p in target.rglob("*") if p.is_file())[0]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    done = _verify(pkg)
    assert done.returncode == 1, done.stdout
    rel = target.relative_to(pkg).as_posix()
    assert f"{rel}: SHA-256 mismatch" in done.stdout
    assert "RESULT: FAILED" in done.stdout


@pytest.mark.django_db
def test_an_added_file_or_an_edited_manifest_fails(fixture_set: Any, tmp_path: Path) -> None:
    pkg = _export(tmp_path, account_id=fixture_set["account"]).path
    (pkg / "eml" / "extra.eml").write_text("planted")
    done = _verify(pkg)
    assert done.returncode == 1 and "eml/extra.eml: present in the export but not listed" in (
        done.stdout
    )
    (pkg / "eml" / "extra.eml").unlink()
    manifest = pkg / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"records":[', '"records":[ '))
    done = _verify(pkg)
    assert done.returncode == 1 and "manifest" in done.stdout.lower()


@pytest.mark.django_db
def test_rsmf_structure(fixture_set: Any, tmp_path: Path) -> None:
    from vetline.archive.export.view import ConversationKey, rsmf_path

    pkg = _export(tmp_path, account_id=fixture_set["account"]).path
    key = ConversationKey(fixture_set["account"], "x", "dm-1")
    raw = (pkg / rsmf_path(key)).read_bytes()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["X-RSMF-Version"] == "2.0.0"
    assert msg["X-RSMF-Generator"] == "Vetline archive export"
    assert msg["X-RSMF-EventCount"] == "3"
    assert msg["X-RSMF-BeginDate"] == "2025-03-01T10:00:00.000000Z"
    assert msg["X-RSMF-EndDate"] == "2025-03-01T11:00:00.000000Z"
    parts = [p for p in msg.iter_attachments() if p.get_filename() == "rsmf.zip"]
    assert len(parts) == 1
    archive = zipfile.ZipFile(io.BytesIO(parts[0].get_content()))
    assert archive.testzip() is None
    assert set(archive.namelist()) == {"rsmf_manifest.json", fixture_set["blob"]}
    assert archive.read(fixture_set["blob"]) == b"%PDF-1.4 attachment bytes"
    manifest = json.loads(archive.read("rsmf_manifest.json"))
    assert manifest["version"] == "2.0.0"
    assert {p["id"] for p in manifest["participants"]} == {"@acme", "@bob"}
    (conv,) = manifest["conversations"]
    assert conv["platform"] == "x" and conv["type"] == "direct" and conv["custodian"] == "@acme"
    events = {e["id"]: e for e in manifest["events"]}
    assert set(events) == {"m1", "m2", "m3"}
    assert all(e["conversation"] == conv["id"] and e["type"] == "message" for e in events.values())
    m1 = events["m1"]
    assert m1["body"] == "Hello Bob (edited)" and m1["deleted"] is False
    assert m1["edits"] == [
        {
            "participant": "@acme",
            "timestamp": "2025-03-01T10:10:00.000000Z",
            "previous": "Hello Bob\r\nline two ",
            "new": "Hello Bob (edited)",
        }
    ]
    assert m1["attachments"] == [
        {"id": fixture_set["blob"], "display": fixture_set["blob"], "size": 25}
    ]
    assert events["m2"]["parent"] == "m1" and events["m2"]["direction"] == "incoming"
    assert events["m2"]["participant"] == "@bob" and events["m2"]["body"] == HOSTILE
    assert events["m3"]["deleted"] is True and "parent" not in events["m3"]
    custom = {c["name"]: c["value"] for c in events["m3"]["custom"]}
    assert custom["parent_remote_id"] == "gone" and custom["vetline_versions"] == "1,2"


@pytest.mark.django_db
def test_eml_round_trip(fixture_set: Any, tmp_path: Path) -> None:
    from vetline.archive.export.view import eml_path
    from vetline.archive.models import ArchivedRecord

    pkg = _export(tmp_path, account_id=fixture_set["account"]).path
    for record in ArchivedRecord.objects.filter(account_id=fixture_set["account"]):
        msg = email.message_from_bytes(
            (pkg / eml_path(record.log_index)).read_bytes(), policy=email.policy.default
        )
        assert msg["X-Vetline-Record-Id"] == str(record.pk)
        assert msg["X-Vetline-Leaf-Index"] == str(record.log_index)
        assert msg["X-Vetline-Network"] == "x" and msg["X-Vetline-Account"] == "@acme"
        assert msg["X-Vetline-Remote-Id"] == record.remote_id
        assert msg["X-Vetline-Version"] == str(record.version)
        body = msg.get_body(("plain",))
        assert body is not None and body.get_content() == record.text  # byte for byte
        attachments = list(msg.iter_attachments())
        assert [a.get_content() for a in attachments] == (
            [b"%PDF-1.4 attachment bytes"] if record.attachments else []
        )


@pytest.mark.django_db
def test_csv_rows_and_formula_escaping(fixture_set: Any, tmp_path: Path) -> None:
    pkg = _export(tmp_path, account_id=fixture_set["account"]).path
    with (pkg / "records.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6
    by_text = {r["text"]: r for r in rows}
    assert "'" + PHISH in by_text  # formula neutralised
    assert HOSTILE in by_text  # quoted, intact
    assert "Hello Bob\r\nline two " in by_text
    edit = next(r for r in rows if r["remote_id"] == "m1" and r["version"] == "2")
    assert edit["kind"] == "edit" and edit["previous_log_index"]


def test_csv_safe_cell() -> None:
    from vetline.archive.export.csvout import safe_cell

    for bad in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert safe_cell(bad).startswith("'")
    assert safe_cell("plain") == "plain" and safe_cell("") == ""


@pytest.mark.django_db
def test_html_transcript_escapes_hostile_text(fixture_set: Any, tmp_path: Path) -> None:
    from vetline.archive.export.view import ConversationKey, transcript_path

    pkg = _export(tmp_path, account_id=fixture_set["account"]).path
    page = (pkg / transcript_path(ConversationKey(fixture_set["account"], "x", "dm-1"))).read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "\u200b" not in page and "\u202e" not in page
    assert "[U+200B]" in page and "[U+202E]" in page
    assert "&amp;amp;" in page
    assert "@media print" in page
    # time order: the original, the reply, then the edit and the deletion
    order = [page.index(f"id <code>{rid}</code>") for rid in ("m1", "m2", "m3")]
    assert order == sorted(order)


def test_escape_text_makes_every_invisible_character_visible() -> None:
    from vetline.archive.export.html import escape_text

    assert (
        escape_text("a\u200bb") == 'a<span class="mark" title="invisible character U+200B">'
        "[U+200B]</span>b"
    )
    assert escape_text("<b>\x00").startswith("&lt;b&gt;<span")
    assert escape_text("line\nnext") == "line\nnext"


@pytest.mark.django_db
def test_selection_by_conversation_and_by_ids_and_dates(fixture_set: Any, tmp_path: Path) -> None:
    from vetline.archive.models import ArchivedRecord

    assert _export(tmp_path, "c", conversation_id="dm-1").records == 5
    p1 = ArchivedRecord.objects.get(remote_id="p1")
    assert _export(tmp_path, "i", record_ids=[p1.pk]).records == 1
    by_date = _export(
        tmp_path,
        "d",
        account_id=fixture_set["account"],
        date_from="2025-03-02",
        date_to="2025-03-02",
    )
    assert by_date.records == 1
    assert _verify(by_date.path).returncode == 0


def test_selection_validation() -> None:
    from vetline.archive.export.selection import RecordSelection, selection_from_dict
    from vetline.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        RecordSelection.from_dict({})
    with pytest.raises(ValidationFailed):
        RecordSelection.from_dict(
            {"account_id": 1, "date_from": "2025-02-01", "date_to": "2025-01-01"}
        )
    with pytest.raises(ValidationFailed):
        RecordSelection.from_dict({"account_id": 1, "date_from": "yesterday"})
    with pytest.raises(ValidationFailed):
        selection_from_dict({"kind": "nope"})


@pytest.mark.django_db
def test_export_signs_a_head_covering_the_records(
    fixture_set: Any, ingest: Any, tmp_path: Path
) -> None:
    from vetline.archive import log
    from vetline.archive.models import TreeHead

    assert not TreeHead.objects.exists()
    result = _export(tmp_path, account_id=fixture_set["account"])
    head = TreeHead.objects.get()
    assert result.tree_size == head.tree_size == log.current_size()
    # the log has not grown: the head is reused
    _export(tmp_path, "again", account_id=fixture_set["account"])
    assert TreeHead.objects.count() == 1
    # it grew: a new head is signed first, and covers the new record
    ingest([item("late")])
    late = _export(tmp_path, "late", account_id=fixture_set["account"])
    assert TreeHead.objects.count() == 2 and late.tree_size == log.current_size()
    assert late.records == 7 and _verify(late.path).returncode == 0


@pytest.mark.django_db
def test_audit_events_of_a_cli_export(fixture_set: Any, tmp_path: Path) -> None:
    from vetline.audit.models import AuditEvent

    start = last_audit_id()
    result = _export(tmp_path, account_id=fixture_set["account"], date_from="2025-01-01")
    assert audit_actions_since(start) == ["archive.export.start", "archive.export.done"]
    begin, done = AuditEvent.objects.filter(id__gt=start).order_by("id")
    assert begin.object_id == done.object_id and begin.actor_name == "system"
    assert begin.after == {
        "export_id": begin.object_id,
        "records": 6,
        "selection": {
            "kind": "records",
            "account_id": fixture_set["account"],
            "date_from": "2025-01-01",
            "date_to": None,
            "conversation_id": None,
            "record_ids": [],
        },
    }
    assert done.after == {
        "export_id": begin.object_id,
        "records": 6,
        "conversations": 2,
        "files": len(result.file_names),
        "attachments_missing": 0,
        "tree_size": result.tree_size,
        "manifest_sha256": result.manifest_sha256,
    }
    assert hashlib.sha256((result.path / "manifest.json").read_bytes()).hexdigest() == (
        result.manifest_sha256
    )


@pytest.mark.django_db
def test_export_never_materialises_a_record_queryset(
    fixture_set: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every pass over records goes through ``.iterator()``: fetching a whole queryset of
    records (a list in memory) fails the test; single-row lookups are allowed."""
    from django.db.models.query import QuerySet

    from vetline.archive.models import ArchivedRecord

    original = QuerySet._fetch_all

    def guarded(self: QuerySet[Any]) -> None:
        if self.model is ArchivedRecord and self._result_cache is None:
            high = self.query.high_mark
            assert high is not None and high - self.query.low_mark <= 1, "materialised records"
        original(self)

    monkeypatch.setattr(QuerySet, "_fetch_all", guarded)
    assert _export(tmp_path, account_id=fixture_set["account"]).records == 6


# --------------------------------------------------------------------------- UI, API, jobs


def _officer(world: Any) -> Any:
    return world.people[Role.COMPLIANCE_OFFICER]


@pytest.mark.django_db
def test_ui_export_runs_as_a_job_with_progress_and_download(
    fixture_set: Any,
    world: Any,
    client: Any,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from vetline.audit.models import AuditEvent

    officer = _officer(world)
    client.force_login(officer)
    start = last_audit_id()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            "/archive/export/", {"account": fixture_set["account"], "conversation_id": "dm-1"}
        )
    assert response.status_code == 302 and callbacks  # the job ran after commit
    url = response["Location"]
    export_id = url.rstrip("/").rsplit("/", 1)[-1]
    page = client.get(url)
    assert page.status_code == 200 and b"Download package" in page.content
    partial = client.get(url, HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content and b'id="export-progress"' in partial.content
    assert b"hx-trigger" not in partial.content  # finished: polling stops
    download = client.get(f"{url}download/")
    assert download.status_code == 200
    data = b"".join(download.streaming_content)
    target = tmp_path / "unzipped"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(target)
    (root,) = list(target.iterdir())
    assert _verify(root).returncode == 0
    assert audit_actions_since(start) == [
        "archive.export.start",
        "archive.export.done",
        "archive.export.download",
    ]
    begin, done, _ = AuditEvent.objects.filter(id__gt=start).order_by("id")
    assert begin.actor_id == done.actor_id == officer.pk
    assert begin.object_id == done.object_id == export_id
    assert begin.after is not None and done.after is not None
    assert begin.after["selection"]["conversation_id"] == "dm-1"
    assert done.after["records"] == 5 and len(done.after["manifest_sha256"]) == 64
    assert done.after["zip_sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.django_db
def test_progress_page_polls_while_running(world: Any, client: Any, fixture_set: Any) -> None:
    from vetline.archive.export.actions import start_export
    from vetline.archive.export.selection import RecordSelection

    officer = _officer(world)
    job = start_export(actor=officer, selection=RecordSelection(account_id=fixture_set["account"]))
    client.force_login(officer)
    partial = client.get(f"/archive/export/{job.id}/", HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 1s"' in partial.content and b"Queued" in partial.content
    assert client.get(f"/archive/export/{job.id}/download/").status_code == 409


@pytest.mark.django_db
def test_only_the_starter_may_see_or_download_and_permission_is_rechecked(
    fixture_set: Any, world: Any, client: Any
) -> None:
    from vetline.archive.export.actions import run_export, start_export
    from vetline.archive.export.selection import RecordSelection
    from vetline.identity.models import RoleGrant

    officer = _officer(world)
    job = start_export(actor=officer, selection=RecordSelection(account_id=fixture_set["account"]))
    assert run_export(export_id=job.id).state == "done"
    assert run_export(export_id=job.id).state == "done"  # idempotent
    client.force_login(world.people[Role.AUDITOR])  # may export, but did not start this one
    assert client.get(f"/archive/export/{job.id}/").status_code == 404
    assert client.get(f"/archive/export/{job.id}/download/").status_code == 404
    assert client.get("/archive/export/../../etc/").status_code == 404
    client.force_login(officer)
    assert client.get(f"/archive/export/{job.id}/download/").status_code == 200
    RoleGrant.objects.filter(person=officer).delete()
    officer.refresh_from_db()
    assert client.get(f"/archive/export/{job.id}/download/").status_code == 403


@pytest.mark.django_db
def test_api_export(fixture_set: Any, world: Any, api: Any) -> None:
    from vetline.archive.export.actions import run_export

    call = api(_officer(world))
    from vetline.archive.models import ArchivedRecord

    ids = list(ArchivedRecord.objects.order_by("id").values_list("id", flat=True)[:2])
    response = call("POST", "/api/archive/export", json={"record_ids": ids})
    assert response.status_code == 202
    body = response.json()
    assert body["state"] == "queued" and body["download_url"] is None
    run_export(export_id=body["id"])
    status = call("GET", f"/api/archive/export/{body['id']}").json()
    assert status["state"] == "done" and status["percent"] == 100
    assert status["counts"]["records"] == 2
    download = call("GET", status["download_url"])
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment")
    bad = call("POST", "/api/archive/export", json={"date_from": "2025-01-01"})
    assert bad.status_code == 422
    other = api(world.people[Role.AUDITOR])
    assert other("GET", f"/api/archive/export/{body['id']}").status_code == 404
    assert (
        api(world.people[Role.SUPERVISOR])(
            "POST", "/api/archive/export", json={"account_id": fixture_set["account"]}
        ).status_code
        == 403
    )


@pytest.mark.django_db
def test_a_failing_job_is_recorded_and_audited(
    fixture_set: Any, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vetline.archive.export import actions
    from vetline.archive.export.selection import RecordSelection

    job = actions.start_export(
        actor=_officer(world), selection=RecordSelection(account_id=fixture_set["account"])
    )

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk full")

    monkeypatch.setattr(actions, "build_package", broken)
    start = last_audit_id()
    assert actions.run_export(export_id=job.id).state == "failed"
    assert audit_actions_since(start) == ["archive.export.fail"]
    with pytest.raises(actions.TransitionError):
        loaded = actions.load_job(job.id)
        assert loaded is not None
        loaded.move_to(actions.ExportState.RUNNING)


@pytest.mark.django_db
def test_cli_command(fixture_set: Any, tmp_path: Path) -> None:
    from django.core.management import call_command

    out = io.StringIO()
    call_command(
        "archive_export",
        "--account",
        str(fixture_set["account"]),
        "--from",
        "2025-03-01",
        "--to",
        "2025-03-01",
        "--quiet",
        "--zip",
        str(tmp_path / "cli"),
        stdout=out,
    )
    assert "Exported 5 record version(s) in 1 conversation(s)" in out.getvalue()
    assert (tmp_path / "cli.zip").is_file()
    assert _verify(tmp_path / "cli").returncode == 0


@pytest.mark.django_db
def test_a_record_that_no_longer_matches_its_leaf_stops_the_export(
    fixture_set: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vetline.archive.export import package
    from vetline.archive.integrity.manifest import ManifestError
    from vetline.archive.leaves import record_leaf_from_row

    def altered(row: Any, **kwargs: Any) -> bytes:
        data = record_leaf_from_row(row, **kwargs)
        return data.replace(b"Hello", b"Hallo") if row.remote_id == "m1" else data

    monkeypatch.setattr(package, "record_leaf_from_row", altered)
    with pytest.raises(ManifestError, match="no longer matches its leaf"):
        _export(tmp_path, account_id=fixture_set["account"])
