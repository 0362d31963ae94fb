"""The archive through its stable interfaces: the REST API, the pages and the CLI."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from vetline.archive.integrity.merkle import leaf_hash, verify_inclusion
from vetline.archive.models import ArchivedRecord, QuarantinedItem
from vetline.archive.tests.conftest import item
from vetline.identity.roles import Role

pytestmark = pytest.mark.django_db


def test_ingest_api(api: Any, world: Any) -> None:
    call = api(world.people[Role.ADMINISTRATOR])
    body = {"account_id": world.corporate.pk, "items": [item("a1"), {"remote_id": "bad"}]}
    response = call("POST", "/api/archive/ingest", json=body)
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["ingested"], data["quarantined"]) == (1, 1)
    assert data["items"][1]["reason_code"] == "missing_field"
    again = call("POST", "/api/archive/ingest", json=body).json()
    assert (again["ingested"], again["duplicates"], again["quarantined"]) == (0, 1, 1)
    # only administrators (accounts.manage) may ingest
    denied = api(world.people[Role.COMPLIANCE_OFFICER])("POST", "/api/archive/ingest", json=body)
    assert denied.status_code == 403
    missing = call("POST", "/api/archive/ingest", json={**body, "account_id": 99999})
    assert missing.status_code == 404


def test_blob_upload_api_then_ingest_naming_it(api: Any, world: Any, settings: Any) -> None:
    import hashlib

    from vetline.archive.blobs import default_store
    from vetline.audit.models import AuditEvent

    call = api(world.people[Role.ADMINISTRATOR])
    data = b"\x89PNG\r\n\x1a\n an image's bytes"
    response = call(
        "POST",
        "/api/archive/blobs?record_class=business_communication",
        data=data,
        content_type="application/octet-stream",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    digest = hashlib.sha256(data).hexdigest()
    assert body["sha256"] == digest and body["size_bytes"] == len(data)
    assert body["already_stored"] is False and body["retain_until"]
    assert default_store().get(digest) == data
    event = AuditEvent.objects.filter(action="archive.attachment.stored").latest("id")
    assert event.object_id == digest and event.after["size_bytes"] == len(data)
    again = call("POST", "/api/archive/blobs", data=data, content_type="application/octet-stream")
    assert again.json()["already_stored"] is True
    ingest = call(
        "POST",
        "/api/archive/ingest",
        json={
            "account_id": world.corporate.pk,
            "items": [item("with-image", attachments=[digest])],
        },
    )
    assert ingest.json()["ingested"] == 1
    # bad input: empty, too large, unknown record class, a reader
    empty = call("POST", "/api/archive/blobs", data=b"", content_type="application/octet-stream")
    assert empty.status_code == 422, empty.content
    assert "empty" in empty.json()["detail"]
    settings.VETLINE_MAX_ATTACHMENT_BYTES = 10
    large = call("POST", "/api/archive/blobs", data=data, content_type="application/octet-stream")
    assert large.status_code == 422 and "larger than 10 bytes" in large.json()["detail"]
    settings.VETLINE_MAX_ATTACHMENT_BYTES = 10_000
    unknown = call(
        "POST",
        "/api/archive/blobs?record_class=nope",
        data=data,
        content_type="application/octet-stream",
    )
    assert unknown.status_code == 422 and "record class" in unknown.json()["detail"]
    reader = api(world.people[Role.COMPLIANCE_OFFICER])
    octet = "application/octet-stream"
    denied = reader("POST", "/api/archive/blobs", data=data, content_type=octet)
    assert denied.status_code == 403


def test_records_and_proof_api(api: Any, world: Any, ingest: Any) -> None:
    from vetline.archive.actions import sign_tree_head

    ingest([item(f"p{i}") for i in range(9)])
    sign_tree_head()
    ingest([item("after-head")])
    call = api(world.people[Role.AUDITOR])
    listing = call("GET", f"/api/archive/records?account_id={world.corporate.pk}").json()
    assert listing["count"] == 10
    record = ArchivedRecord.objects.get(remote_id="p4")
    got = call("GET", f"/api/archive/records/{record.pk}").json()
    assert got["remote_id"] == "p4" and got["log_index"] == record.log_index
    proof = call("GET", f"/api/archive/records/{record.pk}/proof").json()
    assert proof["verified"] and proof["tree_head"] is not None
    data = base64.b64decode(proof["leaf_bytes_b64"])
    assert leaf_hash(data).hex() == proof["leaf_hash"]
    assert verify_inclusion(
        leaf_hash(data),
        proof["index"],
        proof["tree_size"],
        [bytes.fromhex(p) for p in proof["inclusion_proof"]],
        bytes.fromhex(proof["tree_head"]["root_hash"]),
    )
    unsigned = ArchivedRecord.objects.get(remote_id="after-head")
    later = call("GET", f"/api/archive/records/{unsigned.pk}/proof").json()
    assert later["verified"] and later["tree_head"] is None
    heads = call("GET", "/api/archive/tree-heads").json()
    assert heads["count"] == 1
    size = heads["items"][0]["tree_size"]
    cons = call("GET", f"/api/archive/consistency?old_size={size}&new_size={size + 1}")
    assert cons.status_code == 200 and cons.json()["proof"]
    assert call("GET", "/api/archive/records/999999").status_code == 404
    assert api(world.people[Role.PUBLISHER])("GET", "/api/archive/records").status_code == 403


def test_quarantine_api(api: Any, world: Any, ingest: Any) -> None:
    ingest([b"\xff"])
    q = QuarantinedItem.objects.get()
    listing = api(world.people[Role.AUDITOR])("GET", "/api/archive/quarantine").json()
    assert listing["items"][0]["reason_code"] == "invalid_utf8"
    admin = api(world.people[Role.ADMINISTRATOR])
    again = admin("POST", "/api/archive/quarantine/reprocess", json={"item_ids": [q.pk]}).json()
    assert again["quarantined"] == 1


def test_pages(login: Any, world: Any, ingest: Any) -> None:
    from vetline.archive.actions import sign_tree_head

    ingest([item("page-1", text="first"), b"\xff"])
    ingest([item("page-1", kind="edit", text="second")])
    sign_tree_head()
    client = login(world.people[Role.COMPLIANCE_OFFICER])
    page = client.get("/archive/")
    assert page.status_code == 200 and b"first" in page.content
    assert b'href="/archive/"' in page.content  # the nav item
    filtered = client.get(f"/archive/?account={world.other.pk}")
    assert b"first" not in filtered.content
    v2 = ArchivedRecord.objects.get(remote_id="page-1", version=2)
    detail = client.get(f"/archive/records/{v2.pk}/")
    assert detail.status_code == 200
    assert b"inclusion proof verifies" in detail.content and b"v1" in detail.content
    assert client.get("/archive/quarantine/").status_code == 200
    assert client.get("/archive/records/999999/").status_code == 404
    assert login(world.people[Role.PUBLISHER]).get("/archive/").status_code == 403


def test_import_command_jsonl_and_csv(world: Any, tmp_path: Path, capsys: Any) -> None:
    jsonl = tmp_path / "export.jsonl"
    jsonl.write_bytes(
        b"\n".join(
            [json.dumps(item(f"j{i}")).encode() for i in range(25)]
            + [b"\xff\xfe not utf-8", b"", json.dumps(item("j3")).encode()]
        )
        + b"\n"
    )
    call_command(
        "archive",
        "import",
        str(jsonl),
        "--account",
        str(world.corporate.pk),
        "--quiet",
        "--batch-size",
        "10",
    )
    out = capsys.readouterr().out
    assert "27 items: 25 archived, 1 duplicates, 1 quarantined" in out
    record = ArchivedRecord.objects.get(remote_id="j0")
    assert record.source == "import:export.jsonl"
    assert bytes(record.raw_payload) == json.dumps(item("j0")).encode()  # the line as received
    csv_file = tmp_path / "export.csv"
    csv_file.write_text(
        "remote_id,kind,direction,text,participants,version,adopted,network_timestamp\n"
        'c1,post,outbound,"Hello, world",a|b,,,2025-01-01T00:00:00Z\n'
        "c2,comment,inbound,Nice,,,false,\n"
        "c3,post,outbound,Bad version,,two,,\n",
        encoding="utf-8",
    )
    call_command("archive", "import", str(csv_file), "--account", str(world.other.pk), "--quiet")
    assert "3 items: 2 archived, 0 duplicates, 1 quarantined" in capsys.readouterr().out
    c1 = ArchivedRecord.objects.get(remote_id="c1")
    assert c1.participants == ["a", "b"] and c1.text == "Hello, world"
    call_command("archive", "verify")
    assert "OK:" in capsys.readouterr().out


def test_sign_command_and_witness_file(world: Any, ingest: Any, tmp_path: Path) -> None:
    from django.conf import settings

    ingest([item("w1")])
    call_command("archive", "sign")
    target = tmp_path / "heads.jsonl"
    call_command("archive", "export-witness", str(target))
    head = json.loads(target.read_text().splitlines()[0])
    assert head["tree_size"] >= 1 and len(head["signature"]) == 128
    assert Path(settings.VETLINE_WITNESS_DIR).as_posix()  # on-commit copy: see tests of actions


def test_blob_store(tmp_path: Path) -> None:
    from vetline.archive.blobs import BlobError, LocalBlobStore

    store = LocalBlobStore(tmp_path)
    digest = store.put(b"attachment")
    assert store.put(b"attachment") == digest  # write-once, idempotent
    path = store.path_for(digest)
    assert path.parent.name == digest[2:4] and path.parent.parent.name == digest[:2]
    assert store.get(digest) == b"attachment"
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    with pytest.raises(BlobError, match="damaged"):
        store.get(digest)
    with pytest.raises(BlobError, match="missing"):
        store.get("0" * 64)
    with pytest.raises(BlobError):
        store.get("../etc/passwd")


def test_periodic_jobs(world: Any, ingest: Any, mailoutbox: Any) -> None:
    from vetline.archive.models import TreeHead, VerificationRun
    from vetline.archive.tasks import sign_tree_head_job, verify_archive_job

    ingest([item("job")])
    sign_tree_head_job.call_local()
    assert TreeHead.objects.count() == 1
    assert verify_archive_job.call_local() is True
    assert VerificationRun.objects.get().ok
    assert mailoutbox == []
