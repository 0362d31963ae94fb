"""Policies in Django: versions, screening through the API and pages, import/export."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from vetline.audit.models import AuditEvent
from vetline.conftest import audit_actions_since, last_audit_id
from vetline.identity.roles import Role
from vetline.policy.actions import install_pack
from vetline.policy.highlight import segments
from vetline.policy.models import Policy, PolicyVersion
from vetline.policy.selectors import screen_text

pytestmark = pytest.mark.django_db

SMALL = """name: small
version: 1
rules:
  - id: words.banned
    kind: lexicon
    severity: block
    explanation: Never say this.
    terms: [forbidden phrase]
"""


@pytest.fixture
def packs(world):  # type: ignore[no-untyped-def]
    install_pack(actor=None, pack="general_brand_safety")
    return install_pack(actor=None, pack="financial_services", default=True)


def test_screen_api_names_rule_version_words_and_span(world, packs, api) -> None:  # type: ignore[no-untyped-def]
    call = api(world.people[Role.PUBLISHER])
    text = "Guaranteed returns of 12%, risk-free! Text me on WhatsApp."
    r = call("POST", "/api/screen", {"text": text, "scope": "outbound_post"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["policy"] == {"name": "financial_services", "version": 1}
    assert body["verdict"] in ("escalate", "block")
    assert body["hits"]
    for hit in body["hits"]:
        assert text[hit["start"] : hit["end"]] == hit["matched_text"]
        assert hit["policy"] == {"name": "financial_services", "version": 1}
        assert hit["explanation"]
    clean = call(
        "POST",
        "/api/screen",
        {"text": "Join us at our open house on Saturday.", "policy": "general_brand_safety"},
    )
    assert clean.json()["verdict"] == "pass"


def test_screen_api_bad_input(world, packs, api) -> None:  # type: ignore[no-untyped-def]
    call = api(world.people[Role.PUBLISHER])
    assert call("POST", "/api/screen", {"text": "x", "scope": "telepathy"}).status_code == 422
    assert call("POST", "/api/screen", {"text": "x", "policy": "nope"}).status_code == 404
    r = call("POST", "/api/screen", {"text": "x", "rules": ["no.such.rule"]})
    assert r.status_code == 422 and r.json()["field"] == "rule"
    assert call("POST", "/api/screen", {"text": "x" * 200_001}).status_code == 422
    assert call("POST", "/api/screen", {"scope": "reply"}).status_code == 422


def test_every_edit_is_a_new_immutable_version(world, api) -> None:  # type: ignore[no-untyped-def]
    call = api(world.people[Role.COMPLIANCE_OFFICER])
    start = last_audit_id()
    assert call("POST", "/api/policies", {"spec_yaml": SMALL}).status_code == 201
    edited = SMALL.replace("[forbidden phrase]", "[forbidden phrase, other phrase]")
    r = call(
        "POST",
        "/api/policies/small/versions",
        {"spec_yaml": edited, "note": "add a phrase", "based_on": 1},
    )
    assert r.status_code == 201 and r.json()["number"] == 2
    # Stale editor: based on version 1 while 2 exists.
    r = call(
        "POST",
        "/api/policies/small/versions",
        {"spec_yaml": SMALL, "note": "revert", "based_on": 1},
    )
    assert r.status_code == 409
    v1 = PolicyVersion.objects.get(policy__name="small", number=1)
    assert v1.spec_yaml == SMALL
    with pytest.raises(RuntimeError):
        v1.save()
    with pytest.raises(RuntimeError):
        v1.delete()
    result = screen_text(text="that other phrase", policy="small")
    assert result.policy_version == 2 and result.verdict_label == "block"
    assert audit_actions_since(start) == ["policy.policy.create", "policy.version.create"]
    ev = AuditEvent.objects.get(action="policy.version.create")
    assert ev.before["version"] == 1 and ev.after["version"] == 2
    assert ev.after["note"] == "add a phrase"
    export = call("GET", "/api/policies/small/versions/1.yaml")
    assert export.status_code == 200 and export.content.decode() == SMALL


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("name: [unclosed", "does not parse"),
        ("name: x\nrules: []\n", "at least one rule"),
        (
            "name: x\nrules:\n  - id: a\n    kind: telepathy\n    severity: block\n"
            "    explanation: e\n",
            "not one of",
        ),
        (
            "name: x\nrules:\n  - id: a\n    kind: regex\n    severity: block\n    explanation: e\n"
            "    pattern: '(a+)+$'\n",
            "line",
        ),
        (
            "name: x\nrules:\n  - id: l\n    kind: links\n    severity: block\n    explanation: e\n"
            "    deny_domains_file: /etc/passwd\n",
            "not allowed in a stored policy",
        ),
    ],
)
def test_invalid_policies_are_refused_with_a_clear_reason(
    world,
    api,
    spec: str,  # type: ignore[no-untyped-def]
    message: str,
) -> None:
    r = api(world.people[Role.COMPLIANCE_OFFICER])("POST", "/api/policies", {"spec_yaml": spec})
    assert r.status_code == 422, r.content
    assert message in r.json()["detail"]
    assert not Policy.objects.exists()


def test_only_compliance_manages_policies(world, packs, api) -> None:  # type: ignore[no-untyped-def]
    for role in (Role.PUBLISHER, Role.ADMINISTRATOR, Role.AUDITOR, Role.APPROVER):
        r = api(world.people[role])("POST", "/api/policies", {"spec_yaml": SMALL})
        assert r.status_code == 403, role


def test_draft_rule_is_evaluated_but_does_not_enforce(world, login) -> None:  # type: ignore[no-untyped-def]
    from vetline.policy.actions import create_policy

    officer = world.people[Role.COMPLIANCE_OFFICER]
    create_policy(actor=officer, spec_yaml=SMALL)
    client = login(officer)
    r = client.post("/policies/small/rules/words.banned/draft/", {"draft": "1"})
    assert r.status_code == 302
    result = screen_text(text="a forbidden phrase", policy="small")
    assert result.verdict_label == "pass" and result.hits and result.hits[0].draft
    client.post("/policies/small/rules/words.banned/draft/", {"draft": "0"})
    assert screen_text(text="a forbidden phrase", policy="small").verdict_label == "block"
    assert Policy.objects.get(name="small").current_version().number == 3


def test_sensitive_event_and_bad_domains_make_new_versions(world, packs, login) -> None:  # type: ignore[no-untyped-def]
    client = login(world.people[Role.COMPLIANCE_OFFICER])
    r = client.post(
        "/policies/general_brand_safety/events/",
        {
            "name": "Hurricane Zelda",
            "keywords": "hurricane zelda",
            "hashtags": "#zelda",
            "start": "2026-01-01",
            "end": "2099-12-31",
        },
    )
    assert r.status_code == 302
    result = screen_text(
        text="Shop our #Zelda sale, 20% off everything!", policy="general_brand_safety"
    )
    assert result.policy_version == 2
    assert {"sensitive_event", "newsjacking"} & {h.kind for h in result.hits}
    links_rule = next(
        r.id
        for r in __import__("vetline.policy.selectors", fromlist=["x"])
        .compiled(Policy.objects.get(name="general_brand_safety").current_version())
        .rules
        if r.kind == "links"
    )
    upload = SimpleUploadedFile("bad.txt", b"# feed\n0.0.0.0 evil-phish.example\n")
    r = client.post(
        "/policies/general_brand_safety/bad-domains/", {"rule": links_rule, "file": upload}
    )
    assert r.status_code == 302
    result = screen_text(
        text="Log in at https://evil-phish.example/login", policy="general_brand_safety"
    )
    assert any(h.kind == "links" for h in result.hits)
    assert result.policy_version == 3


def test_live_test_page_highlights_safely(world, packs, login) -> None:  # type: ignore[no-untyped-def]
    client = login(world.people[Role.COMPLIANCE_OFFICER])
    text = "<script>alert(1)</script> card 4111 1111 1111 1111"
    r = client.post(
        "/policies/financial_services/test/",
        {"text": text, "scope": "outbound_post", "rule": ""},
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 200
    html = r.content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert '<mark class="sev-block"' in html and "4111 1111 1111 1111" in html
    assert "<html" not in html  # a partial for htmx


def test_version_page_shows_a_diff(world, login) -> None:  # type: ignore[no-untyped-def]
    from vetline.policy.actions import create_policy, save_policy_version

    officer = world.people[Role.COMPLIANCE_OFFICER]
    policy = create_policy(actor=officer, spec_yaml=SMALL)
    save_policy_version(
        actor=officer,
        policy=policy,
        note="more",
        spec_yaml=SMALL.replace("Never say this.", "Never, ever say this."),
    )
    html = login(officer).get("/policies/small/versions/2/").content.decode()
    assert '<span class="d-del">-    explanation: Never say this.</span>' in html
    assert '<span class="d-add">+    explanation: Never, ever say this.</span>' in html


def test_edit_form_reports_errors_with_line_numbers(world, login) -> None:  # type: ignore[no-untyped-def]
    from vetline.policy.actions import create_policy

    officer = world.people[Role.COMPLIANCE_OFFICER]
    create_policy(actor=officer, spec_yaml=SMALL)
    bad = SMALL.replace("severity: block", "severity: apocalyptic")
    r = login(officer).post(
        "/policies/small/edit/", {"spec_yaml": bad, "note": "oops", "based_on": 1}
    )
    assert r.status_code == 422 and "line 6: rules[0].severity" in r.content.decode()


def test_highlight_segments_cover_overlaps() -> None:
    class H:
        def __init__(self, s: int, e: int) -> None:
            self.start, self.end = s, e

    segs = segments("abcdefgh", [H(1, 5), H(3, 7)])
    assert "".join(s.text for s in segs) == "abcdefgh"
    assert [(s.text, s.hits) for s in segs] == [
        ("a", ()),
        ("bc", (0,)),
        ("de", (0, 1)),
        ("fg", (1,)),
        ("h", ()),
    ]


def test_policy_command_installs_imports_exports_and_evaluates(world, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from django.core.management import call_command

    call_command("policy", "install-packs")
    assert set(Policy.objects.values_list("name", flat=True)) == {
        "general_brand_safety",
        "financial_services",
    }
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL)
    officer = world.people[Role.COMPLIANCE_OFFICER].email
    call_command("policy", "import", str(spec), "--as", officer)
    spec.write_text(SMALL.replace("[forbidden phrase]", "[forbidden phrase, hush]"))
    call_command("policy", "import", str(spec), "--as", officer)
    assert Policy.objects.get(name="small").current_version().number == 2
    capsys.readouterr()
    call_command("policy", "export", "small", "--version", "1")
    assert capsys.readouterr().out == SMALL
    examples = tmp_path / "ex.jsonl"
    examples.write_text(
        "\n".join(
            json.dumps(e)
            for e in [
                {"id": "1", "text": "say hush now", "expected_rules": ["words.banned"]},
                {"id": "2", "text": "all fine", "expected_verdict": "pass"},
                {"id": "3", "text": "nothing here", "expected_verdict": "block"},
            ]
        )
        + "\n"
    )
    out_json = tmp_path / "figures.json"
    call_command("policy", "evaluate", str(examples), "--policy", "small", "--json", str(out_json))
    text = capsys.readouterr().out
    assert "words.banned" in text and "[3]" in text
    figures = json.loads(out_json.read_text())
    assert figures


def test_hostile_text_through_the_api_screens_cleanly(world, packs, client, api_token) -> None:  # type: ignore[no-untyped-def]
    token = api_token(world.people[Role.PUBLISHER])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    # A lone surrogate can only arrive JSON-escaped; it must not crash anything.
    body = (
        '{"text": "risk-free \\ud800 returns \\u202eevil\\u202c '
        '\\ud83d\\udc68\\u200d\\ud83d\\udc69 e\\u0301"}'
    )
    r = client.post("/api/screen", data=body, content_type="application/json", **auth)
    assert r.status_code == 200, r.content
    big = ("Guaranteed returns! " + "lorem ipsum dolor sit amet " * 4000)[:100_000]
    r = client.post("/api/screen", data={"text": big}, content_type="application/json", **auth)
    assert r.status_code == 200 and r.json()["verdict"] != "pass"
    hits = r.json()["hits"]
    assert all(big[h["start"] : h["end"]] == h["matched_text"] for h in hits)


def test_malformed_json_is_a_clear_client_error(world, packs, client, api_token) -> None:  # type: ignore[no-untyped-def]
    token = api_token(world.people[Role.PUBLISHER])
    r = client.post(
        "/api/screen",
        data="{bad",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert r.status_code in (400, 422) and r.json()["detail"]
