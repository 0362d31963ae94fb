from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

from django.http import HttpRequest
from ninja import Field

from vetline.core.errors import Forbidden

if TYPE_CHECKING:
    from vetline.identity.models import Person

MAX_DB_ID = 2**63 - 1
#: A database primary key as an API field: positive and within a signed 64-bit integer, so an
#: out-of-range number is a 422 rather than an overflow inside the database driver.
DbId = Annotated[int, Field(ge=1, le=MAX_DB_ID)]
#: A count or a size (0 allowed), bounded the same way.
DbCount = Annotated[int, Field(ge=0, le=MAX_DB_ID)]


def api_actor(request: HttpRequest) -> Person:
    """The person an API request is authenticated as (set by the API's auth classes)."""
    person = getattr(request, "auth", None)
    if person is None:
        raise Forbidden("Sign in first.")
    return cast("Person", person)
