"""Fixtures of the importer tests: data directories in tmp, accounts on each network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _dirs(settings: Any, tmp_path: Path) -> None:
    settings.VETLINE_WITNESS_DIR = str(tmp_path / "witness")
    settings.VETLINE_BLOB_DIR = str(tmp_path / "blobs")
    settings.VETLINE_IMPORT_DIR = str(tmp_path / "imports")


@pytest.fixture
def accounts(world: Any) -> dict[str, Any]:
    """One account per network; X is the world's corporate account (@acme)."""
    from vetline.accounts.models import AccountKind, SocialAccount
    from vetline.identity.roles import Role

    owner = world.people[Role.COMPLIANCE_OFFICER]
    made = {"x": world.corporate}
    for network, handle, name in (
        ("facebook", "acme", "Zoë Acme"),
        ("instagram", "acme", "Acme"),
        ("linkedin", "jane", "Jane Advisor"),
        ("mastodon", "@acme@social.example", ""),
        ("bluesky", "acme.bsky.social", ""),
    ):
        made[network] = SocialAccount.objects.create(
            network=network,
            handle=handle,
            display_name=name,
            kind=AccountKind.CORPORATE,
            owner=owner,
        )
    return made
