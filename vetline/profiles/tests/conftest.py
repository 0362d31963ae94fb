from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from vetline.identity.roles import Role

CALLBACK = "http://testserver/connectors/oauth/callback/"

PROFILE_POLICY = """\
name: profile-test
rules:
  - id: promissory
    kind: lexicon
    severity: block
    scopes: [profile, outbound_post]
    explanation: Promissory language is not allowed in a regulated profile.
    terms: ["guaranteed returns"]
  - id: crypto-tips
    kind: lexicon
    severity: escalate
    scopes: [profile]
    explanation: Crypto advice needs a compliance look.
    terms: ["crypto tips"]
  - id: rockstar
    kind: lexicon
    severity: warn
    scopes: [profile]
    explanation: Hype words in a title.
    terms: ["rockstar"]
"""


@pytest.fixture
def profile_policy(world: Any) -> Any:
    from vetline.policy.actions import create_policy

    return create_policy(actor=world.people[Role.COMPLIANCE_OFFICER], spec_yaml=PROFILE_POLICY)


@pytest.fixture(autouse=True)
def _blob_dir(settings: Any, tmp_path: Any) -> None:
    settings.VETLINE_BLOB_BACKEND = "local"
    settings.VETLINE_BLOB_DIR = str(tmp_path / "blobs")


@pytest.fixture
def employee(world: Any) -> Any:
    return world.people[Role.EMPLOYEE]


@pytest.fixture
def officer(world: Any) -> Any:
    return world.people[Role.COMPLIANCE_OFFICER]


@pytest.fixture
def second_officer(make_person: Any) -> Any:
    return make_person(Role.COMPLIANCE_OFFICER, "officer2@example.com", full_name="Oscar Officer")


@pytest.fixture
def sandbox_employee_account(world: Any) -> Any:
    """A sandbox (training) personal-for-business account of the Employee, connected by the
    employee through a consent link, as in real use."""
    from vetline.accounts.models import AccountKind, Network, SocialAccount
    from vetline.connectors.actions import (
        complete_connection,
        create_consent_link,
        redeem_consent_link,
    )

    account = SocialAccount.objects.create(
        network=Network.SANDBOX,
        handle="jane-advisor-training",
        kind=AccountKind.EMPLOYEE,
        owner=world.people[Role.EMPLOYEE],
    )
    issued = create_consent_link(actor=world.people[Role.ADMINISTRATOR], account=account)
    start = redeem_consent_link(
        actor=world.people[Role.EMPLOYEE], token=issued.token, redirect_uri=CALLBACK
    )
    query = parse_qs(urlsplit(start.url).query)
    complete_connection(
        actor=world.people[Role.EMPLOYEE],
        state=query["state"][0],
        code=query["code"][0],
        redirect_uri=CALLBACK,
    )
    return account
