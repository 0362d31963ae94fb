"""The helper every page uses around an action: what it flashes, what it puts on a form, what it
lets through to the central 403/404 handler. No database: a real request with Django's cookie
message storage, a real form."""

from __future__ import annotations

from typing import NoReturn

import pytest
from django import forms
from django.contrib import messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.http import HttpRequest
from django.test import RequestFactory

from vetline.core.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from vetline.core.views_support import run_and_flash, run_for_form


class _NameForm(forms.Form):
    name = forms.CharField()


def _request() -> HttpRequest:
    request = RequestFactory().post("/")
    request._messages = CookieStorage(request)  # type: ignore[attr-defined]
    return request


def _flashed(request: HttpRequest) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in messages.get_messages(request)]


def _raise(exc: DomainError) -> NoReturn:
    raise exc


# --- run_and_flash --------------------------------------------------------------------------------


def test_success_returns_the_result_and_flashes_the_text() -> None:
    request = _request()
    assert run_and_flash(request, lambda: 42, success="Saved.") == 42
    assert _flashed(request) == [("success", "Saved.")]


def test_success_message_is_made_from_the_result() -> None:
    request = _request()
    result = run_and_flash(request, lambda: "v7", success=lambda v: f"Saved as {v}.")
    assert result == "v7"
    assert _flashed(request) == [("success", "Saved as v7.")]


def test_no_success_text_flashes_nothing() -> None:
    request = _request()
    assert run_and_flash(request, lambda: 1) == 1
    assert _flashed(request) == []


@pytest.mark.parametrize(
    "exc",
    [
        ValidationFailed("The window ends before it starts.", field="end"),
        Conflict("This token is already revoked."),
        DomainError("Re-confirm or withdraw."),
    ],
)
def test_refused_action_is_flashed_as_an_error_and_returns_none(exc: DomainError) -> None:
    request = _request()
    assert run_and_flash(request, lambda: _raise(exc), success="Never shown.") is None
    assert _flashed(request) == [("error", exc.message)]


@pytest.mark.parametrize("exc", [Forbidden("Your roles do not allow this."), NotFound()])
def test_access_errors_reach_the_central_handler(exc: DomainError) -> None:
    request = _request()
    with pytest.raises(type(exc)) as raised:
        run_and_flash(request, lambda: _raise(exc), success="Never shown.")
    assert raised.value is exc
    assert _flashed(request) == []


def test_propagate_none_flashes_a_missing_object_too() -> None:
    request = _request()
    exc = NotFound("Ann does not hold the Publisher role.")
    assert run_and_flash(request, lambda: _raise(exc), propagate=()) is None
    assert _flashed(request) == [("error", "Ann does not hold the Publisher role.")]


def test_propagate_can_name_more_kinds() -> None:
    request = _request()
    with pytest.raises(Conflict):
        run_and_flash(request, lambda: _raise(Conflict("Busy.")), propagate=(Conflict,))
    assert _flashed(request) == []


def test_other_exceptions_are_not_caught() -> None:
    request = _request()

    def broken() -> int:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        run_and_flash(request, broken, success="Never shown.")
    assert _flashed(request) == []


# --- run_for_form ---------------------------------------------------------------------------------


def test_form_success_flashes_and_leaves_the_form_clean() -> None:
    request = _request()
    form = _NameForm({"name": "Ann"})
    assert form.is_valid()
    result = run_for_form(request, lambda: form.cleaned_data["name"], form=form, success="Added.")
    assert result == "Ann"
    assert not form.errors
    assert _flashed(request) == [("success", "Added.")]


def test_form_error_goes_beside_its_field() -> None:
    request = _request()
    form = _NameForm({"name": "Ann"})
    assert form.is_valid()
    exc = ValidationFailed("That name is taken.", field="name")
    assert run_for_form(request, lambda: _raise(exc), form=form, success="Never shown.") is None
    assert form.errors == {"name": ["That name is taken."]}
    assert _flashed(request) == []


def test_form_error_of_an_unknown_field_goes_on_top() -> None:
    request = _request()
    form = _NameForm({"name": "Ann"})
    assert form.is_valid()
    run_for_form(request, lambda: _raise(Conflict("A group of that name exists.")), form=form)
    assert form.non_field_errors() == ["A group of that name exists."]


def test_form_shows_access_errors_unless_told_to_propagate() -> None:
    request = _request()
    form = _NameForm({"name": "Ann"})
    assert form.is_valid()
    assert run_for_form(request, lambda: _raise(NotFound("No such group.")), form=form) is None
    assert form.non_field_errors() == ["No such group."]

    form = _NameForm({"name": "Ann"})
    assert form.is_valid()
    with pytest.raises(Forbidden):
        run_for_form(
            request,
            lambda: _raise(Forbidden("Four-eyes.")),
            form=form,
            propagate=(Forbidden, NotFound),
        )
    assert not form.errors
    assert _flashed(request) == []
