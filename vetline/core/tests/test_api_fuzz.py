"""Schemathesis against /api/openapi.json: generated requests (valid and invalid) to every
operation, as an administrator and as an auditor, must never produce a server error, and
responses must match the documented schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from vetline.identity.roles import Role
from vetline.wsgi import application

pytestmark = pytest.mark.django_db

SCHEMA = schemathesis.openapi.from_wsgi("/api/openapi.json", application)
OPERATIONS = [r.ok() for r in SCHEMA.get_all_operations()]


@pytest.fixture(autouse=True)
def _keep_the_test_connection_open():  # type: ignore[no-untyped-def]
    """The WSGI app is called directly (not through Django's test client), so, like the test
    client does, stop request signals from closing the test transaction's connection."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_schema_covers_the_api() -> None:
    assert len(OPERATIONS) >= 20


@pytest.mark.parametrize("role", [Role.ADMINISTRATOR, Role.AUDITOR])
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_no_server_errors(operation, role: Role, world, api_token) -> None:  # type: ignore[no-untyped-def]
    token = api_token(world.people[role])
    headers = {"Authorization": f"Bearer {token}"}

    @settings(
        max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy())
        response = case.call(headers=headers)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        )
        case.validate_response(response, checks=[not_a_server_error])

    run()
