"""The permission matrix: every page and every API operation, for every role (and anonymous),
including object scoping. Expectations are written here independently of roles.py, so a change
to the role mapping or a new endpoint without an entry makes this fail.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from vetline.api import api
from vetline.core.tests.matrix_support import (
    ADMIN,
    ALL,
    ANONYMOUS,
    AUDIT_EXPORTERS,
    AUDIT_READERS,
    PEOPLE_READERS,
    POLICY_MANAGERS,
    POLICY_READERS,
    REGISTRY_WIDE,
    SEES_ASSIGNED,
    Case,
    acc,
    emp,
    other,
)
from vetline.identity.roles import Role
from vetline.profiles.tests import matrix as profiles_matrix
from vetline.publishing.tests import matrix as publishing_matrix
from vetline.supervision.tests import matrix as supervision_matrix

SMALL_POLICY = (
    "name: matrix\nrules:\n  - id: r\n    kind: lexicon\n    severity: warn\n"
    "    explanation: e\n    terms: [x]\n"
)
ARCHIVE_READERS = frozenset({Role.COMPLIANCE_OFFICER, Role.SUPERVISOR, Role.AUDITOR})


def archived_record(w: Any) -> int:
    """An archived record (ingested once through the action, as the system)."""
    from vetline.archive.actions import ingest_batch

    report = ingest_batch(
        items=[{"remote_id": "matrix-1", "kind": "post", "direction": "outbound", "text": "t"}],
        account=w.corporate,
        source="matrix",
        actor=None,
    )
    return report.items[0].record_id  # type: ignore[return-value]


LEGAL_HOLDERS = frozenset({Role.COMPLIANCE_OFFICER})


def legal_hold(w: Any) -> int:
    """An active legal hold on the corporate account, placed through the action."""
    from vetline.archive.retention_actions import place_legal_hold

    return place_legal_hold(
        actor=w.people[Role.COMPLIANCE_OFFICER], matter_name="Matrix", accounts=[w.corporate]
    ).pk


def disposal_run(w: Any) -> int:
    from django.utils import timezone

    from vetline.archive.models_retention import DisposalRun

    return DisposalRun.objects.create(as_of=timezone.now(), trigger="matrix").pk


def quarantined_item(w: Any) -> int:
    from vetline.archive.models import QuarantinedItem

    return QuarantinedItem.objects.create(
        account=w.corporate, reason_code="invalid_json", reason="r", raw=b"{"
    ).pk


# --- Connectors (helpers) ---
def sandbox_corporate(w: Any) -> int:
    """A sandbox (training) corporate account nobody is assigned to."""
    from vetline.accounts.models import AccountKind, Network, SocialAccount

    account, _ = SocialAccount.objects.get_or_create(
        network=Network.SANDBOX,
        handle="matrix-training",
        defaults={"kind": AccountKind.CORPORATE, "owner": w.people[Role.COMPLIANCE_OFFICER]},
    )
    return account.pk


def sandbox_employee(w: Any) -> int:
    """A sandbox personal-for-business account owned by the Employee."""
    from vetline.accounts.models import AccountKind, Network, SocialAccount

    account, _ = SocialAccount.objects.get_or_create(
        network=Network.SANDBOX,
        handle="matrix-jane-training",
        defaults={"kind": AccountKind.EMPLOYEE, "owner": w.people[Role.EMPLOYEE]},
    )
    return account.pk


def _finish_oauth(url: str, actor: Any) -> None:
    from urllib.parse import parse_qs, urlsplit

    from vetline.connectors.actions import complete_connection

    q = parse_qs(urlsplit(url).query)
    complete_connection(
        actor=actor, state=q["state"][0], code=q["code"][0], redirect_uri="http://testserver/"
    )


def sandbox_connected(w: Any) -> int:
    """The sandbox corporate account, connected by the administrator."""
    from vetline.accounts.models import SocialAccount
    from vetline.connectors.actions import start_connection

    admin = w.people[Role.ADMINISTRATOR]
    account = SocialAccount.objects.get(pk=sandbox_corporate(w))
    _finish_oauth(start_connection(actor=admin, account=account, redirect_uri="x").url, admin)
    return account.pk


def pending_callback(w: Any) -> str:
    """The OAuth callback of a flow the administrator started."""
    from urllib.parse import urlsplit

    from vetline.accounts.models import SocialAccount
    from vetline.connectors.actions import start_connection

    account = SocialAccount.objects.get(pk=sandbox_corporate(w))
    url = start_connection(
        actor=w.people[Role.ADMINISTRATOR], account=account, redirect_uri="/cb/"
    ).url
    return "/connectors/oauth/callback/?" + urlsplit(url).query


def consent_path(w: Any) -> str:
    """A consent link sent to the Employee."""
    from vetline.accounts.models import SocialAccount
    from vetline.connectors.actions import create_consent_link

    account = SocialAccount.objects.get(pk=sandbox_employee(w))
    issued = create_consent_link(actor=w.people[Role.ADMINISTRATOR], account=account)
    return f"/connectors/consent/{issued.token}/"


def sandbox_post(w: Any) -> str:
    from vetline.connectors.sandbox import network

    sandbox_corporate(w)
    timeline = network.ensure_account("matrix-training")
    return network.create_post(timeline=timeline, author=timeline, text="t").remote_id


def alert_for_everyone(w: Any) -> int:
    from vetline.connectors.models import Alert, AlertRecipient

    alert = Alert.objects.create(code="matrix", severity="info", title="Matrix")
    AlertRecipient.objects.bulk_create(
        [AlertRecipient(alert=alert, person=p) for p in w.people.values()]
    )
    return alert.pk


EMPLOYEE_ONLY = frozenset({Role.EMPLOYEE})


# --- Archive search (helpers) ---
def conversation_account(w: Any) -> int:
    """An account with an archived conversation "matrix-conv"."""
    from vetline.archive.actions import ingest_batch

    ingest_batch(
        items=[
            {
                "remote_id": "matrix-conv-1",
                "kind": "post",
                "direction": "outbound",
                "text": "t",
                "conversation_id": "matrix-conv",
            }
        ],
        account=w.corporate,
        source="matrix",
        actor=None,
    )
    return w.corporate.pk


def own_saved_search(w: Any) -> int:
    """A saved search owned by the person making the request (found through their token)."""
    from vetline.archive.models_search import SavedSearch
    from vetline.identity.models import ApiToken

    token = ApiToken.objects.filter(pk=w.own_token_id).first()
    owner = token.person if token else w.people[Role.COMPLIANCE_OFFICER]
    return SavedSearch.objects.create(owner=owner, name="matrix", query="x").pk


# --- archive export (owner-scoped: only the person who started an export may see it) ----------
ARCHIVE_EXPORTERS = frozenset({Role.COMPLIANCE_OFFICER, Role.AUDITOR})
EXPORT_OWNER = frozenset({Role.COMPLIANCE_OFFICER})


@pytest.fixture(autouse=True)
def _export_dir(settings: Any, tmp_path: Any) -> None:
    settings.VETLINE_EXPORT_DIR = str(tmp_path / "exports")


def finished_export(w: Any) -> str:
    """An export of the corporate account, started and run by the compliance officer."""
    from vetline.archive.export.actions import run_export, start_export
    from vetline.archive.export.selection import RecordSelection
    from vetline.core.context import RequestContext, use_context

    with use_context(RequestContext(channel="test")):
        job = start_export(
            actor=w.people[Role.COMPLIANCE_OFFICER],
            selection=RecordSelection(account_id=w.corporate.pk),
        )
        run_export(export_id=job.id)
    return job.id


# --- platform export imports (owner-scoped: only the person who started an import sees it) ---
IMPORTERS = frozenset({Role.ADMINISTRATOR})  # accounts.manage: ingest into any account


@pytest.fixture(autouse=True)
def _import_dir(settings: Any, tmp_path: Any) -> None:
    settings.VETLINE_IMPORT_DIR = str(tmp_path / "imports")
    settings.VETLINE_BLOB_DIR = str(tmp_path / "blobs")


def finished_import(w: Any) -> str:
    """An import into the corporate (X) account, started and run by the administrator."""
    from vetline.core.context import RequestContext, use_context
    from vetline.importers.actions import run_import, start_import

    with use_context(RequestContext(channel="test")):
        job = start_import(
            actor=w.people[Role.ADMINISTRATOR],
            account_id=w.corporate.pk,
            fmt="x-archive",
            file_name="matrix.zip",
            chunks=[b"window.YTD.tweets.part0 = []"],
        )
        run_import(import_id=job.id)
    return job.id


def x_archive_upload(w: Any) -> dict[str, Any]:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {
        "format": "x-archive",
        "account": acc(w),
        "file": SimpleUploadedFile("matrix.zip", b"window.YTD.tweets.part0 = []"),
    }


# --- Pages -------------------------------------------------------------------------------------
PAGES: dict[str, list[Case]] = {
    "home": [Case("GET", lambda w: "/", ALL)],
    "healthz": [Case("GET", lambda w: "/healthz", ALL, anonymous_ok=True)],
    "accounts:list": [Case("GET", lambda w: "/accounts/", ALL)],
    "accounts:create": [
        Case("GET", lambda w: "/accounts/new/", ADMIN),
        Case(
            "POST",
            lambda w: "/accounts/new/",
            ADMIN,
            data=lambda w: {
                "network": "x",
                "handle": "@new",
                "kind": "corporate",
                "owner": w.people[Role.ADMINISTRATOR].pk,
            },
        ),
    ],
    "accounts:org_settings": [
        Case("GET", lambda w: "/accounts/settings/", ADMIN),
        Case(
            "POST",
            lambda w: "/accounts/settings/",
            ADMIN,
            data=lambda w: {"default_publisher_cap": 7},
        ),
    ],
    "accounts:detail": [
        Case("GET", lambda w: f"/accounts/{acc(w)}/", SEES_ASSIGNED),
        Case("GET", lambda w: f"/accounts/{other(w)}/", REGISTRY_WIDE, note="scoping"),
        Case(
            "GET",
            lambda w: f"/accounts/{w.employee_account.pk}/",
            REGISTRY_WIDE | {Role.EMPLOYEE},
            note="owner sees own account",
        ),
    ],
    "accounts:edit": [
        Case("GET", lambda w: f"/accounts/{acc(w)}/edit/", ADMIN),
        Case(
            "POST",
            lambda w: f"/accounts/{other(w)}/edit/",
            ADMIN,
            data=lambda w: {
                "display_name": "X",
                "owner": w.people[Role.ADMINISTRATOR].pk,
                "is_active": "on",
            },
        ),
    ],
    "accounts:assignment_add": [
        Case(
            "POST",
            lambda w: f"/accounts/{other(w)}/assignments/",
            ADMIN,
            data=lambda w: {"person": w.people[Role.APPROVER].pk, "capability": "approve"},
        ),
    ],
    "accounts:assignment_remove": [
        Case(
            "POST",
            lambda w: (
                f"/accounts/{acc(w)}/assignments/{w.corporate.assignments.first().pk}/remove/"
            ),
            ADMIN,
        ),
    ],
    "accounts:credential_set": [
        Case(
            "POST",
            lambda w: f"/accounts/{acc(w)}/credentials/",
            ADMIN,
            data=lambda w: {"kind": "access_token", "secret": "s3cret"},
        ),
    ],
    "accounts:credential_revoke": [
        Case("POST", lambda w: f"/accounts/{acc(w)}/credentials/{w.credential.pk}/revoke/", ADMIN),
    ],
    "identity:people": [Case("GET", lambda w: "/people/", PEOPLE_READERS)],
    "identity:create": [
        Case("GET", lambda w: "/people/new/", ADMIN),
        Case(
            "POST",
            lambda w: "/people/new/",
            ADMIN,
            data=lambda w: {"email": "n@example.com", "full_name": "N"},
        ),
    ],
    "identity:person": [Case("GET", lambda w: f"/people/{emp(w)}/", PEOPLE_READERS)],
    "identity:role_grant": [
        Case(
            "POST",
            lambda w: f"/people/{emp(w)}/roles/",
            ADMIN,
            data=lambda w: {"role": "publisher"},
        )
    ],
    "identity:role_revoke": [
        Case("POST", lambda w: f"/people/{emp(w)}/roles/employee/revoke/", ADMIN)
    ],
    "identity:offboard": [
        Case("GET", lambda w: f"/people/{emp(w)}/offboard/", ADMIN),
        Case(
            "POST",
            lambda w: f"/people/{emp(w)}/offboard/",
            ADMIN,
            data=lambda w: {"reason": "left"},
        ),
    ],
    "identity:unlock": [Case("POST", lambda w: f"/people/{emp(w)}/unlock/", ADMIN)],
    "identity:signout": [Case("POST", lambda w: f"/people/{emp(w)}/signout/", ADMIN)],
    "identity:tokens": [
        Case("GET", lambda w: "/people/me/tokens/", ALL),
        Case(
            "POST",
            lambda w: "/people/me/tokens/",
            ALL,
            data=lambda w: {"name": "t", "scope": "read", "expires_in_days": 5},
        ),
    ],
    "identity:token_revoke": [
        Case(
            "POST", lambda w: f"/people/me/tokens/{w.own_token_id}/revoke/", ALL, note="own token"
        ),
    ],
    "identity:signout_everywhere": [Case("POST", lambda w: "/people/me/signout-everywhere/", ALL)],
    "audit:list": [Case("GET", lambda w: "/audit/", AUDIT_READERS)],
    "policy:list": [Case("GET", lambda w: "/policies/", POLICY_READERS)],
    "policy:import": [
        Case("GET", lambda w: "/policies/new/", POLICY_MANAGERS),
        Case(
            "POST",
            lambda w: "/policies/new/",
            POLICY_MANAGERS,
            data=lambda w: {"spec_yaml": SMALL_POLICY},
        ),
    ],
    "policy:detail": [Case("GET", lambda w: "/policies/small/", POLICY_READERS)],
    "policy:edit": [
        Case("GET", lambda w: "/policies/small/edit/", POLICY_MANAGERS),
        Case(
            "POST",
            lambda w: "/policies/small/edit/",
            POLICY_MANAGERS,
            data=lambda w: {
                "spec_yaml": SMALL_POLICY.replace("matrix", "small"),
                "note": "n",
                "based_on": 1,
            },
        ),
    ],
    "policy:test": [
        Case("GET", lambda w: "/policies/small/test/", POLICY_READERS),
        Case(
            "POST",
            lambda w: "/policies/small/test/",
            POLICY_READERS,
            data=lambda w: {"text": "hello x", "scope": "reply"},
        ),
    ],
    "policy:make_default": [Case("POST", lambda w: "/policies/small/default/", POLICY_MANAGERS)],
    "policy:add_event": [
        Case(
            "POST",
            lambda w: "/policies/small/events/",
            POLICY_MANAGERS,
            data=lambda w: {"name": "E", "keywords": "e"},
        )
    ],
    "policy:import_domains": [
        Case(
            "POST",
            lambda w: "/policies/small/bad-domains/",
            POLICY_MANAGERS,
            data=lambda w: {"rule": "r"},
        )
    ],
    "policy:rule_draft": [
        Case(
            "POST",
            lambda w: "/policies/small/rules/r/draft/",
            POLICY_MANAGERS,
            data=lambda w: {"draft": "1"},
        )
    ],
    "policy:version": [Case("GET", lambda w: "/policies/small/versions/1/", POLICY_READERS)],
    "policy:export": [Case("GET", lambda w: "/policies/small/versions/1/export/", POLICY_READERS)],
    "audit:export": [Case("GET", lambda w: "/audit/export/?format=csv", AUDIT_EXPORTERS)],
    "archive:list": [Case("GET", lambda w: "/archive/", ARCHIVE_READERS)],
    "archive:detail": [
        Case("GET", lambda w: f"/archive/records/{archived_record(w)}/", ARCHIVE_READERS)
    ],
    "archive:quarantine": [Case("GET", lambda w: "/archive/quarantine/", ARCHIVE_READERS)],
    "archive:retention:index": [Case("GET", lambda w: "/archive/retention/", ARCHIVE_READERS)],
    "archive:retention:class_edit": [
        Case(
            "POST",
            lambda w: "/archive/retention/classes/internal/",
            LEGAL_HOLDERS,
            data=lambda w: {"retention_days": 1460, "easily_accessible_days": 730},
        )
    ],
    "archive:retention:hold_place": [
        Case(
            "POST",
            lambda w: "/archive/retention/holds/",
            LEGAL_HOLDERS,
            data=lambda w: {"matter_name": "M", "accounts": [acc(w)]},
        )
    ],
    "archive:retention:hold": [
        Case("GET", lambda w: f"/archive/retention/holds/{legal_hold(w)}/", ARCHIVE_READERS)
    ],
    "archive:retention:hold_scope": [
        Case(
            "POST",
            lambda w: f"/archive/retention/holds/{legal_hold(w)}/scope/",
            LEGAL_HOLDERS,
            data=lambda w: {"accounts": [acc(w)], "query": "rates"},
        )
    ],
    "archive:retention:hold_release": [
        Case(
            "POST",
            lambda w: f"/archive/retention/holds/{legal_hold(w)}/release/",
            LEGAL_HOLDERS,
            data=lambda w: {"reason": "closed"},
        )
    ],
    # --- Archive search ---
    "archive:search": [
        Case("GET", lambda w: "/archive/search/", ARCHIVE_READERS),
        Case("GET", lambda w: "/archive/search/?q=ra*&kind=post", ARCHIVE_READERS),
    ],
    "archive:search_save": [
        Case(
            "POST",
            lambda w: "/archive/search/saved/",
            ARCHIVE_READERS,
            data=lambda w: {"name": "mine", "q": "rates"},
        )
    ],
    "archive:search_delete": [
        Case(
            "POST",
            lambda w: f"/archive/search/saved/{own_saved_search(w)}/delete/",
            ARCHIVE_READERS,
        )
    ],
    "archive:search_conversation": [
        Case(
            "GET",
            lambda w: f"/archive/search/conversations/{conversation_account(w)}/?c=matrix-conv",
            ARCHIVE_READERS,
        )
    ],
    "archive:export_new": [
        Case("GET", lambda w: "/archive/export/", ARCHIVE_EXPORTERS),
        Case(
            "POST",
            lambda w: "/archive/export/",
            ARCHIVE_EXPORTERS,
            data=lambda w: {"account": acc(w)},
        ),
    ],
    "archive:export_detail": [
        Case("GET", lambda w: f"/archive/export/{finished_export(w)}/", EXPORT_OWNER, note="owner")
    ],
    "archive:export_download": [
        Case(
            "GET",
            lambda w: f"/archive/export/{finished_export(w)}/download/",
            EXPORT_OWNER,
            note="owner",
        )
    ],
    # --- Connectors ---
    "connectors:oauth_callback": [
        Case("GET", pending_callback, ADMIN, note="only who started the flow"),
    ],
    "connectors:connect_start": [
        Case("POST", lambda w: f"/connectors/accounts/{sandbox_corporate(w)}/connect/", ADMIN),
    ],
    "connectors:connect_app_password": [
        Case("GET", lambda w: f"/connectors/accounts/{sandbox_corporate(w)}/app-password/", ADMIN),
        Case(
            "POST",
            lambda w: f"/connectors/accounts/{sandbox_corporate(w)}/app-password/",
            ADMIN,
            data=lambda w: {"identifier": "matrix-training", "app_password": "abcd-efgh"},
        ),
        Case(
            "GET",
            lambda w: f"/connectors/accounts/{sandbox_employee(w)}/app-password/",
            EMPLOYEE_ONLY,
            note="only the owner connects a personal-for-business account",
        ),
    ],
    "connectors:check_access": [
        Case("POST", lambda w: f"/connectors/accounts/{sandbox_connected(w)}/check-access/", ADMIN),
    ],
    "connectors:consent_link_create": [
        Case(
            "POST",
            lambda w: f"/connectors/accounts/{sandbox_employee(w)}/consent-link/",
            ADMIN,
        ),
    ],
    "connectors:disconnect": [
        Case("POST", lambda w: f"/connectors/accounts/{sandbox_connected(w)}/disconnect/", ADMIN),
    ],
    "connectors:capture_now": [
        Case("POST", lambda w: f"/connectors/accounts/{sandbox_connected(w)}/capture/", ADMIN),
    ],
    "connectors:consent": [
        Case("GET", consent_path, EMPLOYEE_ONLY, note="the person it was sent to"),
        Case("POST", consent_path, EMPLOYEE_ONLY, note="the person it was sent to"),
    ],
    "connectors:alerts": [Case("GET", lambda w: "/connectors/alerts/", ALL)],
    "connectors:alert_read": [
        Case("POST", lambda w: f"/connectors/alerts/{alert_for_everyone(w)}/read/", ALL),
    ],
    "connectors:sandbox_timeline": [
        Case("GET", lambda w: f"/connectors/sandbox/{sandbox_corporate(w)}/", REGISTRY_WIDE),
        Case(
            "GET",
            lambda w: f"/connectors/sandbox/{sandbox_employee(w)}/",
            REGISTRY_WIDE | {Role.EMPLOYEE},
            note="owner sees own sandbox account",
        ),
    ],
    "connectors:sandbox_post": [
        Case("GET", lambda w: f"/connectors/sandbox/posts/{sandbox_post(w)}/", REGISTRY_WIDE),
    ],
    "importers:new": [
        Case("GET", lambda w: "/imports/", IMPORTERS),
        Case("POST", lambda w: "/imports/", IMPORTERS, data=x_archive_upload),
    ],
    "importers:detail": [
        Case("GET", lambda w: f"/imports/{finished_import(w)}/", IMPORTERS, note="owner")
    ],
}

# Routes owned by third-party apps, tested through their own flows: allauth (sign-in, MFA),
# Django admin (staff superusers only), ninja's docs, and the API (matrix below).
PAGE_PREFIXES_ELSEWHERE = ("auth/", "admin/", "api/")

# --- API operations ----------------------------------------------------------------------------
API: dict[str, list[Case]] = {
    "GET /api/me": [Case("GET", lambda w: "/api/me", ALL)],
    "GET /api/people": [Case("GET", lambda w: "/api/people", PEOPLE_READERS)],
    "POST /api/people": [
        Case(
            "POST",
            lambda w: "/api/people",
            ADMIN,
            data=lambda w: {"email": "a@example.com", "full_name": "A"},
        )
    ],
    "GET /api/people/{person_id}": [Case("GET", lambda w: f"/api/people/{emp(w)}", PEOPLE_READERS)],
    "POST /api/people/{person_id}/roles": [
        Case(
            "POST",
            lambda w: f"/api/people/{emp(w)}/roles",
            ADMIN,
            data=lambda w: {"role": "publisher"},
        )
    ],
    "DELETE /api/people/{person_id}/roles/{role}": [
        Case("DELETE", lambda w: f"/api/people/{emp(w)}/roles/employee", ADMIN)
    ],
    "POST /api/people/{person_id}/offboard": [
        Case(
            "POST",
            lambda w: f"/api/people/{emp(w)}/offboard",
            ADMIN,
            data=lambda w: {"reason": "left"},
        )
    ],
    "POST /api/people/{person_id}/unlock": [
        Case("POST", lambda w: f"/api/people/{emp(w)}/unlock", ADMIN)
    ],
    "POST /api/people/{person_id}/signout": [
        Case("POST", lambda w: f"/api/people/{emp(w)}/signout", ADMIN)
    ],
    "GET /api/tokens": [Case("GET", lambda w: "/api/tokens", ALL)],
    "POST /api/tokens": [
        Case("POST", lambda w: "/api/tokens", ALL, data=lambda w: {"name": "t", "scope": "read"})
    ],
    "DELETE /api/tokens/{token_id}": [
        Case("DELETE", lambda w: f"/api/tokens/{w.own_token_id}", ALL, note="own token")
    ],
    "GET /api/accounts": [Case("GET", lambda w: "/api/accounts", ALL)],
    "POST /api/accounts": [
        Case(
            "POST",
            lambda w: "/api/accounts",
            ADMIN,
            data=lambda w: {
                "network": "x",
                "handle": "@n",
                "kind": "corporate",
                "owner_id": w.people[Role.ADMINISTRATOR].pk,
            },
        )
    ],
    "GET /api/accounts/settings": [Case("GET", lambda w: "/api/accounts/settings", ADMIN)],
    "PUT /api/accounts/settings": [
        Case(
            "PUT",
            lambda w: "/api/accounts/settings",
            ADMIN,
            data=lambda w: {"default_publisher_cap": 3},
        )
    ],
    "GET /api/accounts/{account_id}": [
        Case("GET", lambda w: f"/api/accounts/{acc(w)}", SEES_ASSIGNED),
        Case("GET", lambda w: f"/api/accounts/{other(w)}", REGISTRY_WIDE, note="scoping"),
    ],
    "PATCH /api/accounts/{account_id}": [
        Case(
            "PATCH",
            lambda w: f"/api/accounts/{acc(w)}",
            ADMIN,
            data=lambda w: {"display_name": "Y"},
        )
    ],
    "GET /api/accounts/{account_id}/assignments": [
        Case("GET", lambda w: f"/api/accounts/{acc(w)}/assignments", SEES_ASSIGNED),
        Case("GET", lambda w: f"/api/accounts/{other(w)}/assignments", REGISTRY_WIDE),
    ],
    "POST /api/accounts/{account_id}/assignments": [
        Case(
            "POST",
            lambda w: f"/api/accounts/{other(w)}/assignments",
            ADMIN,
            data=lambda w: {"person_id": w.people[Role.APPROVER].pk, "capability": "approve"},
        )
    ],
    "DELETE /api/accounts/{account_id}/assignments/{assignment_id}": [
        Case(
            "DELETE",
            lambda w: f"/api/accounts/{acc(w)}/assignments/{w.corporate.assignments.first().pk}",
            ADMIN,
        )
    ],
    "GET /api/accounts/{account_id}/credentials": [
        Case("GET", lambda w: f"/api/accounts/{acc(w)}/credentials", ADMIN)
    ],
    "POST /api/accounts/{account_id}/credentials": [
        Case(
            "POST",
            lambda w: f"/api/accounts/{acc(w)}/credentials",
            ADMIN,
            data=lambda w: {"kind": "api_key", "secret": "x"},
        )
    ],
    "DELETE /api/accounts/{account_id}/credentials/{credential_id}": [
        Case("DELETE", lambda w: f"/api/accounts/{acc(w)}/credentials/{w.credential.pk}", ADMIN)
    ],
    "POST /api/screen": [
        Case("POST", lambda w: "/api/screen", ALL, data=lambda w: {"text": "hello"})
    ],
    "GET /api/policies": [Case("GET", lambda w: "/api/policies", POLICY_READERS)],
    "POST /api/policies": [
        Case(
            "POST",
            lambda w: "/api/policies",
            POLICY_MANAGERS,
            data=lambda w: {"spec_yaml": SMALL_POLICY},
        )
    ],
    "GET /api/policies/{name}": [Case("GET", lambda w: "/api/policies/small", POLICY_READERS)],
    "GET /api/policies/{name}/versions": [
        Case("GET", lambda w: "/api/policies/small/versions", POLICY_READERS)
    ],
    "POST /api/policies/{name}/versions": [
        Case(
            "POST",
            lambda w: "/api/policies/small/versions",
            POLICY_MANAGERS,
            data=lambda w: {"spec_yaml": SMALL_POLICY.replace("matrix", "small"), "note": "n"},
        )
    ],
    "GET /api/policies/{name}/versions/{number}.yaml": [
        Case("GET", lambda w: "/api/policies/small/versions/1.yaml", POLICY_READERS)
    ],
    "GET /api/audit/events": [Case("GET", lambda w: "/api/audit/events", AUDIT_READERS)],
    "GET /api/audit/export": [Case("GET", lambda w: "/api/audit/export", AUDIT_EXPORTERS)],
    "POST /api/archive/ingest": [
        Case(
            "POST",
            lambda w: "/api/archive/ingest",
            ADMIN,
            data=lambda w: {
                "account_id": acc(w),
                "items": [{"remote_id": "m", "kind": "post", "direction": "outbound"}],
            },
        )
    ],
    "POST /api/archive/blobs": [
        Case(
            "POST",
            lambda w: "/api/archive/blobs",
            ADMIN,
            data=lambda w: {"bytes": "any body is an attachment's bytes"},
        )
    ],
    "GET /api/archive/records": [Case("GET", lambda w: "/api/archive/records", ARCHIVE_READERS)],
    "GET /api/archive/records/{record_id}": [
        Case("GET", lambda w: f"/api/archive/records/{archived_record(w)}", ARCHIVE_READERS)
    ],
    "GET /api/archive/records/{record_id}/proof": [
        Case("GET", lambda w: f"/api/archive/records/{archived_record(w)}/proof", ARCHIVE_READERS)
    ],
    "GET /api/archive/quarantine": [
        Case("GET", lambda w: "/api/archive/quarantine", ARCHIVE_READERS)
    ],
    "POST /api/archive/quarantine/reprocess": [
        Case(
            "POST",
            lambda w: "/api/archive/quarantine/reprocess",
            ADMIN,
            data=lambda w: {"item_ids": [quarantined_item(w)]},
        )
    ],
    "GET /api/archive/tree-heads": [
        Case("GET", lambda w: "/api/archive/tree-heads", ARCHIVE_READERS)
    ],
    "GET /api/archive/consistency": [
        Case("GET", lambda w: "/api/archive/consistency?old_size=0&new_size=0", ARCHIVE_READERS)
    ],
    "GET /api/archive/retention/classes": [
        Case("GET", lambda w: "/api/archive/retention/classes", ARCHIVE_READERS)
    ],
    "PUT /api/archive/retention/classes/{code}": [
        Case(
            "PUT",
            lambda w: "/api/archive/retention/classes/internal",
            LEGAL_HOLDERS,
            data=lambda w: {"retention_days": 1460, "easily_accessible_days": 730},
        )
    ],
    "GET /api/archive/retention/holds": [
        Case("GET", lambda w: "/api/archive/retention/holds", ARCHIVE_READERS)
    ],
    "POST /api/archive/retention/holds": [
        Case(
            "POST",
            lambda w: "/api/archive/retention/holds",
            LEGAL_HOLDERS,
            data=lambda w: {"matter_name": "M", "account_ids": [acc(w)]},
        )
    ],
    "GET /api/archive/retention/holds/{hold_id}": [
        Case("GET", lambda w: f"/api/archive/retention/holds/{legal_hold(w)}", ARCHIVE_READERS)
    ],
    "PUT /api/archive/retention/holds/{hold_id}/scope": [
        Case(
            "PUT",
            lambda w: f"/api/archive/retention/holds/{legal_hold(w)}/scope",
            LEGAL_HOLDERS,
            data=lambda w: {"account_ids": [acc(w)], "query": "rates"},
        )
    ],
    "POST /api/archive/retention/holds/{hold_id}/release": [
        Case(
            "POST",
            lambda w: f"/api/archive/retention/holds/{legal_hold(w)}/release",
            LEGAL_HOLDERS,
            data=lambda w: {"reason": "closed"},
        )
    ],
    "GET /api/archive/retention/disposal-runs": [
        Case("GET", lambda w: "/api/archive/retention/disposal-runs", ARCHIVE_READERS)
    ],
    "GET /api/archive/retention/disposal-runs/{run_id}": [
        Case(
            "GET",
            lambda w: f"/api/archive/retention/disposal-runs/{disposal_run(w)}",
            ARCHIVE_READERS,
        )
    ],
    "GET /api/archive/retention/disposal-preview": [
        Case("GET", lambda w: "/api/archive/retention/disposal-preview", ARCHIVE_READERS)
    ],
    # --- Archive search ---
    "GET /api/archive/search": [
        Case("GET", lambda w: "/api/archive/search?q=t&account=" + str(acc(w)), ARCHIVE_READERS)
    ],
    "GET /api/archive/search/saved": [
        Case("GET", lambda w: "/api/archive/search/saved", ARCHIVE_READERS)
    ],
    "POST /api/archive/search/saved": [
        Case(
            "POST",
            lambda w: "/api/archive/search/saved",
            ARCHIVE_READERS,
            data=lambda w: {"name": "mine", "q": "rates", "filters": {"kind": "post"}},
        )
    ],
    "DELETE /api/archive/search/saved/{saved_id}": [
        Case(
            "DELETE",
            lambda w: f"/api/archive/search/saved/{own_saved_search(w)}",
            ARCHIVE_READERS,
        )
    ],
    "POST /api/archive/export": [
        Case(
            "POST",
            lambda w: "/api/archive/export",
            ARCHIVE_EXPORTERS,
            data=lambda w: {"account_id": acc(w)},
        )
    ],
    "GET /api/archive/export/{export_id}": [
        Case("GET", lambda w: f"/api/archive/export/{finished_export(w)}", EXPORT_OWNER)
    ],
    "GET /api/archive/export/{export_id}/download": [
        Case("GET", lambda w: f"/api/archive/export/{finished_export(w)}/download", EXPORT_OWNER)
    ],
    # --- Connectors ---
    "GET /api/connectors/networks": [Case("GET", lambda w: "/api/connectors/networks", ALL)],
    "GET /api/connectors/connections": [Case("GET", lambda w: "/api/connectors/connections", ALL)],
    "GET /api/connectors/connections/{account_id}": [
        Case("GET", lambda w: f"/api/connectors/connections/{acc(w)}", SEES_ASSIGNED),
        Case(
            "GET",
            lambda w: f"/api/connectors/connections/{sandbox_corporate(w)}",
            REGISTRY_WIDE,
            note="scoping",
        ),
    ],
    "POST /api/connectors/connections/{account_id}/connect": [
        Case("POST", lambda w: f"/api/connectors/connections/{sandbox_corporate(w)}/connect", ADMIN)
    ],
    "POST /api/connectors/connections/{account_id}/app-password": [
        Case(
            "POST",
            lambda w: f"/api/connectors/connections/{sandbox_corporate(w)}/app-password",
            ADMIN,
            data=lambda w: {"identifier": "matrix-training", "app_password": "abcd-efgh"},
        ),
        Case(
            "POST",
            lambda w: f"/api/connectors/connections/{sandbox_employee(w)}/app-password",
            EMPLOYEE_ONLY,
            data=lambda w: {"identifier": "matrix-jane-training", "app_password": "abcd-efgh"},
            note="only the owner connects a personal-for-business account",
        ),
    ],
    "POST /api/connectors/connections/{account_id}/check-access": [
        Case(
            "POST",
            lambda w: f"/api/connectors/connections/{sandbox_connected(w)}/check-access",
            ADMIN,
        )
    ],
    "POST /api/connectors/connections/{account_id}/consent-link": [
        Case(
            "POST",
            lambda w: f"/api/connectors/connections/{sandbox_employee(w)}/consent-link",
            ADMIN,
        )
    ],
    "POST /api/connectors/connections/{account_id}/revoke": [
        Case("POST", lambda w: f"/api/connectors/connections/{sandbox_connected(w)}/revoke", ADMIN)
    ],
    "POST /api/connectors/connections/{account_id}/capture": [
        Case("POST", lambda w: f"/api/connectors/connections/{sandbox_connected(w)}/capture", ADMIN)
    ],
    "GET /api/connectors/alerts": [Case("GET", lambda w: "/api/connectors/alerts", ALL)],
    "POST /api/imports": [
        Case(
            "POST",
            lambda w: f"/api/imports?format=x-archive&account_id={acc(w)}&file_name=m.js",
            IMPORTERS,
            data=lambda w: {"not": "an export"},
        )
    ],
    "GET /api/imports/{import_id}": [
        Case("GET", lambda w: f"/api/imports/{finished_import(w)}", IMPORTERS, note="owner")
    ],
}

# Apps that keep their entries next to their code (``<app>/tests/matrix.py``).
for _app_matrix in (publishing_matrix, profiles_matrix, supervision_matrix):
    for _table, _entries in ((PAGES, _app_matrix.PAGES), (API, _app_matrix.API)):
        _clash = set(_table) & set(_entries)
        assert not _clash, f"matrix entries listed twice: {sorted(_clash)}"
        _table.update(_entries)


def _walk(patterns: list[Any], prefix: str = "", ns: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for p in patterns:
        if isinstance(p, URLResolver):
            sub_ns = f"{ns}{p.namespace}:" if p.namespace else ns
            found += _walk(p.url_patterns, prefix + str(p.pattern), sub_ns)
        elif isinstance(p, URLPattern):
            found.append((prefix + str(p.pattern), f"{ns}{p.name}" if p.name else ""))
    return found


def test_every_page_has_an_entry() -> None:
    routes = [
        (route, name)
        for route, name in _walk(get_resolver().url_patterns)
        if not route.startswith(PAGE_PREFIXES_ELSEWHERE) and "static" not in route
    ]
    missing = sorted({name or route for route, name in routes} - set(PAGES))
    assert not missing, f"pages without a permission-matrix entry: {missing}"


def test_every_api_operation_has_an_entry() -> None:
    schema = api.get_openapi_schema()
    ops = {f"{m.upper()} {path}" for path, item in schema["paths"].items() for m in item}
    assert ops - set(API) == set(), f"API operations without an entry: {sorted(ops - set(API))}"
    assert set(API) - ops == set(), f"stale entries: {sorted(set(API) - ops)}"


def _cases(table: dict[str, list[Case]]) -> list[Any]:
    params = []
    for key, cases in table.items():
        for i in range(len(cases)):
            for who in [*Role, ANONYMOUS]:
                label = f"{key}#{i}-{who if isinstance(who, str) else who.value}"
                params.append(pytest.param(key, i, who, id=re.sub(r"\s+", "_", label)))
    return params


@pytest.fixture
def matrix_world(world):  # type: ignore[no-untyped-def]
    from django.conf import settings

    from vetline.accounts.models import Credential, CredentialKind
    from vetline.accounts.vault import Vault
    from vetline.policy.actions import create_policy

    create_policy(
        actor=world.people[Role.COMPLIANCE_OFFICER],
        spec_yaml=SMALL_POLICY.replace("matrix", "small").replace("[x]", "[y]"),
    )
    world.credential = Credential.objects.create(
        account=world.corporate,
        kind=CredentialKind.ACCESS_TOKEN,
        ciphertext=Vault(settings.VETLINE_VAULT_KEYS).encrypt("s"),
        set_by=world.people[Role.ADMINISTRATOR],
    )
    return world


def _own_token(person: Any) -> int:
    from vetline.core.context import RequestContext, use_context
    from vetline.identity.actions import create_api_token
    from vetline.identity.models import TokenScope

    with use_context(RequestContext()):
        return create_api_token(
            actor=person, name="own", scope=TokenScope.WRITE, expires_in_days=1
        ).token.pk


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "index", "who"), _cases(PAGES))
def test_page_access(matrix_world, client: Client, key: str, index: int, who: Any) -> None:  # type: ignore[no-untyped-def]
    case = PAGES[key][index]
    w = matrix_world
    if who != ANONYMOUS:
        person = w.people[who]
        w.own_token_id = _own_token(person)
        client.force_login(person)
    else:
        w.own_token_id = 0
    url = case.path(w)
    data = case.data(w) if case.data else {}
    response = client.get(url) if case.method == "GET" else client.post(url, data)
    status = response.status_code
    if who == ANONYMOUS:
        if case.anonymous_ok:
            assert status == 200
        else:
            assert status == 302 and response["Location"].startswith("/auth/login/"), status
        return
    if who in case.allowed:
        assert status in (200, 302), f"{who} should reach {case.method} {url}, got {status}"
        if status == 302:
            assert not response["Location"].startswith(("/auth/", "/accounts/login"))
    else:
        assert status in (403, 404), f"{who} must not reach {case.method} {url}, got {status}"


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "index", "who"), _cases(API))
def test_api_access(matrix_world, client: Client, key: str, index: int, who: Any) -> None:  # type: ignore[no-untyped-def]
    import json

    case = API[key][index]
    w = matrix_world
    headers: dict[str, str] = {}
    if who != ANONYMOUS:
        from vetline.core.context import RequestContext, use_context
        from vetline.identity.actions import create_api_token
        from vetline.identity.models import TokenScope

        person = w.people[who]
        w.own_token_id = _own_token(person)
        with use_context(RequestContext()):
            secret = create_api_token(
                actor=person, name="m", scope=TokenScope.WRITE, expires_in_days=1
            ).secret
        headers["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    else:
        w.own_token_id = 0
    url = case.path(w)
    kwargs: dict[str, Any] = dict(headers)
    if case.data:
        kwargs.update(data=json.dumps(case.data(w)), content_type="application/json")
    response = getattr(client, case.method.lower())(url, **kwargs)
    status = response.status_code
    if who == ANONYMOUS:
        assert status == 401, status
    elif who in case.allowed:
        assert 200 <= status < 300, (
            f"{who} should reach {case.method} {url}: {status} {response.content[:200]!r}"
        )
    else:
        assert status in (403, 404), f"{who} must not reach {case.method} {url}, got {status}"
