"""Each export format imported through the archive's ingest path: what lands in the archive,
quarantine reasons, damaged files, re-import without duplicates, the CLI, the upload page with
its background job and progress page, the API, permissions and audit events."""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from vetline.conftest import audit_actions_since, last_audit_id
from vetline.identity.roles import Role
from vetline.importers.tests.conftest import FIXTURES

pytestmark = pytest.mark.django_db


def run(account: Any, fmt: str, name: str, **kw: Any) -> Any:
    from vetline.core.context import RequestContext, use_context
    from vetline.importers.actions import import_file

    with use_context(RequestContext(channel="test")):
        return import_file(actor=None, account=account, fmt=fmt, path=FIXTURES / name, **kw)


def records(account: Any) -> dict[str, Any]:
    from vetline.archive.models import ArchivedRecord

    return {
        f"{r.remote_id}@{r.version}": r
        for r in ArchivedRecord.objects.filter(account=account).order_by("log_index")
    }


def quarantine(account: Any) -> list[Any]:
    from vetline.archive.models import QuarantinedItem

    return list(QuarantinedItem.objects.filter(account=account).order_by("id"))


# --------------------------------------------------------------------------- X


def test_x_archive(accounts: dict[str, Any]) -> None:
    x = accounts["x"]
    result = run(x, "x-archive", "x-archive.zip")
    assert result.stops == []
    assert result.counts["ingested"] == 10 and result.counts["quarantined"] == 3
    got = records(x)
    assert got["100@1"].kind == "post" and got["100@1"].direction == "outbound"
    assert got["100@1"].author_handle == "@acme"
    assert got["100@1"].network_timestamp.isoformat() == "2018-10-10T20:19:24+00:00"
    assert len(got["100@1"].attachments) == 1  # data/tweets_media/100-abc.jpg
    assert got["101@1"].kind == "reply" and got["101@1"].parent_remote_id == "99"
    assert got["101@1"].participants == ["@bob"]
    assert got["102@1"].kind == "share"
    assert got["90@1"].kind == "post" and got["90@2"].kind == "deletion"
    assert got["5000@1"].direction == "inbound" and got["5000@1"].conversation_id == "7-42"
    assert got["5001@1"].direction == "outbound" and got["5001@1"].author_handle == "@acme"
    assert got["6000@1"].kind == "direct_message"
    # hostile text is kept verbatim (rendering escapes it), raw payload is the entry's bytes
    assert got["103@1"].text.startswith('Hello <b onmouseover="alert(1)">Eve</b>\u200b')
    with zipfile.ZipFile(FIXTURES / "x-archive.zip") as z:
        assert bytes(got["103@1"].raw_payload) in z.read("data/tweets-part1.js")
    reasons = {q.reason_code for q in quarantine(x)}
    assert reasons == {"invalid_json", "wrong_type", "missing_field"}
    invalid = next(q for q in quarantine(x) if q.reason_code == "invalid_json")
    assert bytes(invalid.raw) == b'{"tweet": {"id_str": "104", "full_text": tru}}'
    wrong = next(q for q in quarantine(x) if q.reason_code == "wrong_type")
    kept = json.loads(bytes(wrong.raw))
    assert b'"id_str": 105' in base64.b64decode(kept["raw_payload_b64"])
    where = {p["where"]: p for p in result.problems}
    assert where["data/tweets-part1.js #2"]["note"] == "not valid JSON"
    assert result.not_archived["X direct-message conversation events (joins, leaves, renames)"]


def test_reimport_creates_no_duplicates(accounts: dict[str, Any]) -> None:
    from vetline.archive.models import ArchivedRecord, QuarantinedItem

    x = accounts["x"]
    run(x, "x-archive", "x-archive.zip")
    before = (ArchivedRecord.objects.count(), QuarantinedItem.objects.count())
    again = run(x, "x-archive", "x-archive.zip")
    assert again.counts["ingested"] == 0 and again.counts["duplicates"] == 10
    assert again.counts["already_quarantined"] == 3 and again.counts["quarantined"] == 0
    assert (ArchivedRecord.objects.count(), QuarantinedItem.objects.count()) == before


def test_damaged_x_archive_imports_what_it_can_and_says_where_it_stopped(
    accounts: dict[str, Any],
) -> None:
    x = accounts["x"]
    result = run(x, "x-archive", "x-archive-damaged.zip")
    stops = "\n".join(result.stops)
    assert "data/tweets.js: stopped at byte" in stops and "in entry #3" in stops
    assert "the 2 entries before it were read" in stops
    assert "data/tweets-part1.js: cannot be read further: Bad CRC-32" in stops
    assert {"100@1", "101@1", "5000@1", "5001@1"} <= set(records(x))
    truncated = [q for q in quarantine(x) if q.reason_code == "invalid_json"]
    assert len(truncated) == 1 and bytes(truncated[0].raw).startswith(b'{\n    "tweet"')


def test_format_must_match_the_account_network(accounts: dict[str, Any]) -> None:
    from vetline.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="goes into a x account"):
        run(accounts["linkedin"], "x-archive", "x-archive.zip")


# --------------------------------------------------------------------------- Meta


def test_facebook_fixes_mojibake_and_tells_sent_from_received(accounts: dict[str, Any]) -> None:
    fb = accounts["facebook"]
    result = run(fb, "facebook", "facebook.zip")
    got = list(records(fb).values())
    texts = {r.text for r in got}
    assert "Café opening — join us ☕" in texts and "Très bien, à demain" in texts
    dms = [r for r in got if r.kind == "direct_message"]
    by_text = {r.text: r for r in dms}
    assert by_text["Très bien, à demain"].direction == "outbound"
    assert by_text["Très bien, à demain"].author_handle == "Zoë Acme"
    assert by_text["Hi there"].direction == "inbound"
    assert by_text["Hi there"].conversation_id == "eve_123"
    assert '<b onmouseover="alert(1)">Eve</b>\u200b\u200d' in by_text["Hi there"].participants
    assert {q.reason_code for q in quarantine(fb)} == {"invalid_utf8", "invalid_timestamp"}
    assert result.counts["ingested"] == 6 and result.counts["quarantined"] == 2
    again = run(fb, "facebook", "facebook.zip")
    assert again.counts["ingested"] == 0 and again.counts["duplicates"] == 6


def test_instagram(accounts: dict[str, Any]) -> None:
    ig = accounts["instagram"]
    result = run(ig, "instagram", "instagram.zip")
    assert result.counts["ingested"] == 5 and result.counts["quarantined"] == 0
    got = list(records(ig).values())
    assert {r.kind for r in got} == {"profile_snapshot", "post", "comment", "direct_message"}
    assert any(r.text == "New café 🎉" for r in got)
    hello = next(r for r in got if r.text == "Hello Bob")
    assert hello.direction == "outbound"


# --------------------------------------------------------------------------- LinkedIn


@pytest.mark.parametrize("name", ["linkedin.zip", "linkedin"])
def test_linkedin_from_zip_or_folder(accounts: dict[str, Any], name: str) -> None:
    li = accounts["linkedin"]
    result = run(li, "linkedin", name)
    got = list(records(li).values())
    assert result.counts["ingested"] == 5
    share = next(r for r in got if "the facts" in r.text)
    assert share.text == 'Our new fund:\r\nread "the facts"'
    assert bytes(share.raw_payload).startswith(b"2023-01-05 14:03:12,https://")
    dms = {r.text: r for r in got if r.kind == "direct_message"}
    assert dms["Is the fund safe?"].direction == "inbound"
    assert dms["Let us talk by phone."].direction == "outbound"
    assert {q.reason_code for q in quarantine(li)} == {"invalid_timestamp", "invalid_utf8"}
    latin = next(q for q in quarantine(li) if q.reason_code == "invalid_utf8")
    assert b"Mall\xe9ory" in bytes(latin.raw)


# --------------------------------------------------------------------------- Mastodon


def test_mastodon_outbox(accounts: dict[str, Any]) -> None:
    m = accounts["mastodon"]
    result = run(m, "mastodon", "mastodon.tar.gz")
    got = {r.remote_id: r for r in records(m).values()}
    base = "https://social.example/users/acme/statuses/"
    assert got[base + "1"].text == "Hello fediverse & friends"
    assert len(got[base + "1"].attachments) == 1
    assert got[base + "2"].kind == "reply"
    assert got[base + "2"].parent_remote_id == "https://other.example/notes/9"
    assert got[base + "2"].participants == ["@bob@other.example"]
    assert got[base + "3"].kind == "direct_message"
    assert got[base + "4/activity"].kind == "share"
    assert result.not_archived == {"Mastodon Like activities": 1}
    assert [q.reason_code for q in quarantine(m)] == ["invalid_json"]


# --------------------------------------------------------------------------- Bluesky


def test_bluesky_car(accounts: dict[str, Any]) -> None:
    bs = accounts["bluesky"]
    result = run(bs, "bluesky", "bluesky.car")
    got = {r.remote_id: r for r in records(bs).values()}
    prefix = "at://did:plc:acmeacmeacmeacmeacme/"
    assert got[prefix + "app.bsky.feed.post/3kaaa"].text == "Hello Bluesky"
    reply = got[prefix + "app.bsky.feed.post/3kbbb"]
    assert reply.kind == "reply"
    assert reply.parent_remote_id == "at://did:plc:bob/app.bsky.feed.post/2"
    assert reply.thread_id == "at://did:plc:bob/app.bsky.feed.post/1"
    assert got[prefix + "app.bsky.feed.repost/3kccc"].kind == "share"
    assert any(r.kind == "profile_snapshot" for r in got.values())
    assert result.not_archived == {"Bluesky app.bsky.graph.follow records": 1}
    codes = sorted(q.reason_code for q in quarantine(bs))
    assert codes == ["invalid_utf8", "wrong_type"]  # the corrupt block, and text: 42
    problems = {p["reason_code"]: p for p in result.problems}
    assert problems["invalid_utf8"]["note"] == "the block's bytes do not match its CID"
    assert run(bs, "bluesky", "bluesky.car").counts["duplicates"] == 4


def test_truncated_car(accounts: dict[str, Any]) -> None:
    result = run(accounts["bluesky"], "bluesky", "bluesky-truncated.car")
    assert len(result.stops) == 1 and "the file ends inside a section" in result.stops[0]
    assert result.counts["ingested"] == 4


# --------------------------------------------------------------------------- audit, CLI


def test_every_import_is_audited(accounts: dict[str, Any]) -> None:
    from vetline.audit.models import AuditEvent

    start = last_audit_id()
    run(accounts["mastodon"], "mastodon", "mastodon.tar.gz")
    actions = audit_actions_since(start)
    assert actions[0] == "importers.import.start" and actions[-1] == "importers.import.done"
    assert "archive.ingest.batch" in actions
    done = AuditEvent.objects.filter(action="importers.import.done").get()
    assert done.after["ingested"] == 5 and done.after["format"] == "mastodon"


def test_cli_progress_and_stop_report(accounts: dict[str, Any], capsys: Any) -> None:
    with pytest.raises(CommandError, match="could not be read"):
        call_command(
            "platform_import",
            "x-archive",
            str(FIXTURES / "x-archive-damaged.zip"),
            "--account",
            str(accounts["x"].pk),
        )
    out, err = capsys.readouterr()
    assert "x-archive x-archive-damaged.zip:" in err and "100%|" in err  # the tqdm bar
    assert "STOPPED: data/tweets.js: stopped at byte" in err
    assert "entries:" in out and "archived" in out


def test_cli_entry_point(accounts: dict[str, Any], capsys: Any) -> None:
    from vetline.cli import main

    main(
        [
            "import",
            "linkedin",
            str(FIXTURES / "linkedin.zip"),
            "--account",
            str(accounts["linkedin"].pk),
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert "7 entries: 5 archived, 0 duplicates, 2 quarantined" in out
    assert "quarantined Basic_LinkedInDataExport_01-01-2024/messages.csv row 3: invalid_utf8" in out


# --------------------------------------------------------------------------- UI, API, permissions


def upload(name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, (FIXTURES / name).read_bytes(), "application/octet-stream")


def test_upload_page_runs_the_job_and_shows_progress(
    world: Any, accounts: dict[str, Any], client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    admin = world.people[Role.ADMINISTRATOR]
    client.force_login(admin)
    assert client.get("/imports/").status_code == 200
    start = last_audit_id()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/imports/",
            {"format": "x-archive", "account": accounts["x"].pk, "file": upload("x-archive.zip")},
        )
    assert response.status_code == 302
    url = response["Location"]
    import_id = url.rstrip("/").rsplit("/", 1)[1]
    page = client.get(url)
    assert page.status_code == 200 and b"Done" in page.content
    assert b"<b onmouseover" not in page.content  # names are escaped
    partial = client.get(url, HTTP_HX_REQUEST="true")
    assert b'id="import-progress"' in partial.content and b"<html" not in partial.content
    assert b"data/tweets-part1.js #2" in partial.content and b"invalid_json" in partial.content
    # Modules that follow new records (supervision, publishing, profiles) may write their own
    # events after the import's, so only the importer's events are checked for their order.
    actions = [a for a in audit_actions_since(start) if a.startswith("importers.")]
    assert actions[0] == "importers.import.queue"
    assert "importers.import.start" in actions and actions[-1] == "importers.import.done"
    from vetline.importers.actions import job_dir, load_job

    job = load_job(import_id)
    assert job is not None and job.state == "done" and job.counts["ingested"] == 10
    assert not any(p.name.startswith("upload-") for p in job_dir(import_id).iterdir())


def test_progress_page_polls_while_running(
    world: Any, client: Any, accounts: dict[str, Any]
) -> None:
    from vetline.importers.actions import start_import

    admin = world.people[Role.ADMINISTRATOR]
    job = start_import(  # not committed in this test, so the job stays queued
        actor=admin, account_id=accounts["x"].pk, fmt="x-archive", file_name="a.zip", chunks=[b"x"]
    )
    client.force_login(admin)
    page = client.get(f"/imports/{job.id}/")
    assert b'hx-trigger="every 1s"' in page.content and b"Queued" in page.content


def test_unreadable_upload_is_reported(
    world: Any, accounts: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    from vetline.importers.actions import load_job, start_import

    with django_capture_on_commit_callbacks(execute=True):
        job = start_import(
            actor=world.people[Role.ADMINISTRATOR],
            account_id=accounts["bluesky"].pk,
            fmt="bluesky",
            file_name="not-a.car",
            chunks=[b"{}"],
        )
    done = load_job(job.id)
    assert done is not None and done.state == "done"
    assert done.stops and "the file ends inside the header" in done.stops[0]


def test_a_file_that_is_not_the_export_fails_the_job(
    world: Any, accounts: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    from vetline.importers.actions import load_job, start_import

    zipped = (FIXTURES / "x-archive.zip").read_bytes()
    start = last_audit_id()
    with django_capture_on_commit_callbacks(execute=True):
        job = start_import(
            actor=world.people[Role.ADMINISTRATOR],
            account_id=accounts["x"].pk,
            fmt="x-archive",
            file_name="cut.zip",
            chunks=[zipped[: len(zipped) // 2]],  # no central directory
        )
    done = load_job(job.id)
    assert done is not None and done.state == "failed"
    assert "holds none of the files of a X archive" in done.error
    assert audit_actions_since(start)[-1] == "importers.import.fail"


def test_api_upload_and_status(
    world: Any,
    accounts: dict[str, Any],
    api: Any,
    client: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    call = api(world.people[Role.ADMINISTRATOR])
    body = (FIXTURES / "mastodon.tar.gz").read_bytes()
    with django_capture_on_commit_callbacks(execute=True):
        response = call(
            "POST",
            f"/api/imports?format=mastodon&account_id={accounts['mastodon'].pk}&file_name=m.tgz",
            data=body,
            content_type="application/gzip",
        )
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    status = call("GET", f"/api/imports/{job_id}").json()
    assert status["state"] == "done" and status["counts"]["ingested"] == 5
    other = api(world.people[Role.COMPLIANCE_OFFICER])
    assert other("GET", f"/api/imports/{job_id}").status_code == 403


@pytest.mark.parametrize("role", [r for r in Role if r != Role.ADMINISTRATOR])
def test_only_account_managers_may_import(world: Any, client: Any, role: Role) -> None:
    client.force_login(world.people[role])
    assert client.get("/imports/").status_code == 403


def test_someone_elses_import_is_not_found(
    world: Any, accounts: dict[str, Any], client: Any, make_person: Any
) -> None:
    from vetline.importers.actions import start_import

    job = start_import(
        actor=world.people[Role.ADMINISTRATOR],
        account_id=accounts["x"].pk,
        fmt="x-archive",
        file_name="a.zip",
        chunks=[b"x"],
    )
    second_admin = make_person(Role.ADMINISTRATOR, "admin2@example.com")
    client.force_login(second_admin)
    assert client.get(f"/imports/{job.id}/").status_code == 404
    assert client.get("/imports/" + "0" * 32 + "/").status_code == 404
    assert client.get("/imports/..%2f..%2fetc/").status_code == 404


def test_upload_path_stays_inside_the_job_folder(world: Any, accounts: dict[str, Any]) -> None:
    from vetline.importers.actions import _upload_path, job_dir, start_import

    job = start_import(
        actor=world.people[Role.ADMINISTRATOR],
        account_id=accounts["x"].pk,
        fmt="x-archive",
        file_name="../../../etc/passwd",
        chunks=[b"x"],
    )
    assert _upload_path(job).parent == job_dir(job.id)
    assert Path(_upload_path(job)).name == "upload-passwd"
