from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from vetline.identity.roles import Role

CALLBACK = "http://testserver/connectors/oauth/callback/"


def finish(start: Any, actor: Any) -> Any:
    """Play the network's side of OAuth: follow the authorize URL back to the callback."""
    from vetline.connectors.actions import complete_connection

    query = parse_qs(urlsplit(start.url).query)
    return complete_connection(
        actor=actor, state=query["state"][0], code=query["code"][0], redirect_uri=CALLBACK
    )


@pytest.fixture
def sandbox_account(world: Any) -> Any:
    from vetline.accounts.models import AccountKind, Network, SocialAccount

    return SocialAccount.objects.create(
        network=Network.SANDBOX,
        handle="acme-training",
        kind=AccountKind.CORPORATE,
        owner=world.people[Role.COMPLIANCE_OFFICER],
        display_name="Acme (training)",
    )


@pytest.fixture
def employee_sandbox(world: Any) -> Any:
    from vetline.accounts.models import AccountKind, Network, SocialAccount

    return SocialAccount.objects.create(
        network=Network.SANDBOX,
        handle="jane-training",
        kind=AccountKind.EMPLOYEE,
        owner=world.people[Role.EMPLOYEE],
    )


@pytest.fixture
def connected(world: Any, sandbox_account: Any) -> Any:
    """The sandbox corporate account, connected by the administrator."""
    from vetline.connectors.actions import start_connection

    admin = world.people[Role.ADMINISTRATOR]
    finish(start_connection(actor=admin, account=sandbox_account, redirect_uri=CALLBACK), admin)
    sandbox_account.refresh_from_db()
    return sandbox_account
