from __future__ import annotations

from django.forms import Form

from vetline.core.errors import DomainError


def form_error(form: Form, exc: DomainError) -> None:
    """Show a domain error beside the field it concerns (or at the top of the form)."""
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


def errors_as_text(form: Form) -> str:
    """A form's errors on one line, for a flash message after a redirect."""
    return "; ".join(f"{k}: {' '.join(str(m) for m in v)}" for k, v in form.errors.items())
