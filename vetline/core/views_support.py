"""What every page does around an action: call it, tell the person how it went.

Two shapes, one rule for errors:

- ``run_and_flash``: a button that posts and redirects. A refused action is flashed as an
  error for the page redirected to; a done one flashes ``success``. Forbidden and NotFound are
  re-raised by default, so the central handler (``core.middleware``) answers 403/404 and a page
  never redirects to something the person may not see.
- ``run_for_form``: a form that re-renders when the action refuses. The error goes beside the
  field it concerns (``form_error``); a done action flashes ``success`` and the view redirects.
  Nothing is re-raised by default: the view fetched and checked what the page shows before
  building the form, so what the action still refuses is about the input.

Both return the action's result, or None when it was refused (an action that itself returns
None tells nothing by its result: the caller then does not need to know).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.contrib import messages
from django.forms import Form
from django.http import HttpRequest

from vetline.core.errors import DomainError, Forbidden, NotFound
from vetline.core.forms import form_error

T = TypeVar("T")

#: What a page answers with its own status rather than a message: not allowed, not visible.
ACCESS_ERRORS: tuple[type[DomainError], ...] = (Forbidden, NotFound)

Success = str | Callable[[T], str] | None


def _run(
    request: HttpRequest,
    call: Callable[[], T],
    *,
    success: Success[T],
    propagate: tuple[type[DomainError], ...],
    refused: Callable[[DomainError], None],
) -> T | None:
    try:
        result = call()
    except DomainError as exc:
        if isinstance(exc, propagate):
            raise
        refused(exc)
        return None
    if success is not None:
        messages.success(request, success if isinstance(success, str) else success(result))
    return result


def run_and_flash(
    request: HttpRequest,
    call: Callable[[], T],
    *,
    success: Success[T] = None,
    propagate: tuple[type[DomainError], ...] = ACCESS_ERRORS,
) -> T | None:
    """Run ``call``; flash ``success`` (a text, or made from the result) or the domain error.

    Errors of the kinds in ``propagate`` are re-raised; pass ``propagate=()`` where a missing
    or refused object is news for the page redirected to, not a page of its own."""

    def flash(exc: DomainError) -> None:
        messages.error(request, exc.message)

    return _run(request, call, success=success, propagate=propagate, refused=flash)


def run_for_form(
    request: HttpRequest,
    call: Callable[[], T],
    *,
    form: Form,
    success: Success[T] = None,
    propagate: tuple[type[DomainError], ...] = (),
) -> T | None:
    """Run ``call`` for a submitted ``form``; on a domain error put it on the form (the view
    re-renders it, typically with status 422), else flash ``success`` if given.

    Errors of the kinds in ``propagate`` are re-raised instead of shown on the form."""

    def show(exc: DomainError) -> None:
        form_error(form, exc)

    return _run(request, call, success=success, propagate=propagate, refused=show)
