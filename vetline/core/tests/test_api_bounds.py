"""Every integer the API accepts is bounded in the schema, so an out-of-range number is a 422
and never an overflow inside the database driver (a 500). Schemathesis finds such inputs only
by chance; this walks the whole OpenAPI document deterministically and then probes each
operation that takes an integer with 2**64."""

from __future__ import annotations

import re
from typing import Any

import pytest

from vetline.api import api
from vetline.core.http import MAX_DB_ID
from vetline.identity.roles import Role

SPEC = api.get_openapi_schema()
METHODS = {"get", "post", "put", "patch", "delete"}


def _unbounded_integers(node: Any, where: str) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            return _unbounded_integers(SPEC["components"]["schemas"][name], f"{where}->{name}")
        if node.get("type") == "integer" and "maximum" not in node:
            found.append(where)
        for key, value in node.items():
            found += _unbounded_integers(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _unbounded_integers(value, f"{where}[{i}]")
    return found


def _inputs() -> list[tuple[str, str, Any]]:
    out = []
    for path, ops in SPEC["paths"].items():
        for method, op in ops.items():
            if method not in METHODS:
                continue
            for param in op.get("parameters", []):
                out.append((f"{method.upper()} {path}", f"param {param['name']}", param["schema"]))
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                out.append((f"{method.upper()} {path}", "body", body["schema"]))
    return out


def test_every_integer_input_has_a_maximum() -> None:
    unbounded = [
        f"{op} {part}: {where}"
        for op, part, schema in _inputs()
        for where in _unbounded_integers(schema, "")
    ]
    assert unbounded == []


def test_maximums_fit_a_signed_64_bit_column() -> None:
    for op, part, schema in _inputs():
        for value in re.findall(r"'maximum': (\d+)", repr(schema)):
            assert int(value) <= MAX_DB_ID, f"{op} {part}"


PATH_INT_OPS = sorted(
    {
        (method.upper(), path)
        for path, ops in SPEC["paths"].items()
        for method, op in ops.items()
        if method in METHODS
        and any(
            p["in"] == "path" and p["schema"].get("type") == "integer"
            for p in op.get("parameters", [])
        )
    }
)


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), PATH_INT_OPS, ids=lambda v: str(v))
def test_huge_path_ids_are_refused_cleanly(
    method: str, path: str, client, world, api_token
) -> None:  # type: ignore[no-untyped-def]
    token = api_token(world.people[Role.ADMINISTRATOR])
    url = re.sub(r"\{[^}]+\}", str(2**64), path)
    response = client.generic(
        method,
        url,
        data="{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code in {404, 405, 422}, (url, response.status_code)


@pytest.mark.django_db
def test_huge_export_record_ids_are_a_validation_error(client, world, api_token) -> None:  # type: ignore[no-untyped-def]
    token = api_token(world.people[Role.AUDITOR])
    response = client.post(
        "/api/archive/export",
        data={"record_ids": [2**64]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 422
    assert "record_ids" in response.content.decode()
