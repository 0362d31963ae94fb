from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.http import HttpRequest

from vetline.core.errors import Forbidden

if TYPE_CHECKING:
    from vetline.identity.models import Person


def api_actor(request: HttpRequest) -> Person:
    """The person an API request is authenticated as (set by the API's auth classes)."""
    person = getattr(request, "auth", None)
    if person is None:
        raise Forbidden("Sign in first.")
    return cast("Person", person)
