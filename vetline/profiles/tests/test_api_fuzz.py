"""Schemathesis over the profiles API as the people who actually use it (the suite-wide fuzz
runs as an administrator and an auditor, who mostly get 404s here): the account's owner and a
compliance officer, with a submitted proposal and an open drift item to aim at. No generated
request may produce a server error or a response outside the documented schema."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from vetline.identity.roles import Role
from vetline.wsgi import application

pytestmark = pytest.mark.django_db

SCHEMA = schemathesis.openapi.from_wsgi("/api/openapi.json", application)
OPERATIONS = [
    r.ok() for r in SCHEMA.get_all_operations() if r.ok().path.startswith("/api/profiles")
]


@pytest.fixture(autouse=True)
def _keep_the_test_connection_open():  # type: ignore[no-untyped-def]
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_every_profiles_operation_is_fuzzed() -> None:
    assert len(OPERATIONS) == 13


@pytest.mark.parametrize("role", [Role.EMPLOYEE, Role.COMPLIANCE_OFFICER])
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_no_server_errors(
    operation: Any, role: Role, world: Any, profile_policy: Any, api_token: Any
) -> None:
    from vetline.profiles.tests.matrix import drift

    drift(world)
    headers = {"Authorization": f"Bearer {api_token(world.people[role])}"}

    @settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy())
        response = case.call(headers=headers)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        )
        case.validate_response(response, checks=[not_a_server_error])

    run()
