"""Permission checks used by every action, view and API endpoint."""

from __future__ import annotations

from vetline.core.errors import Forbidden
from vetline.identity.models import Person
from vetline.identity.roles import Perm


def require(actor: Person | None, perm: Perm) -> Person:
    """Return the actor if they hold ``perm``; raise Forbidden otherwise."""
    if actor is None or not actor.is_authenticated or not actor.is_active:
        raise Forbidden("Sign in first.")
    if not actor.can(perm):
        raise Forbidden(f"Your roles do not allow this (needs “{perm.value}”).")
    return actor


def require_any(actor: Person | None, *perms: Perm) -> Person:
    if actor is None or not actor.is_authenticated or not actor.is_active:
        raise Forbidden("Sign in first.")
    if not any(actor.can(p) for p in perms):
        raise Forbidden("Your roles do not allow this.")
    return actor
