"""Request context carried to audit events without threading the request through every call.

The middleware sets it per request; CLI commands and jobs set their own with ``use_context``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RequestContext:
    ip: str | None = None
    user_agent: str = ""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    channel: str = "system"  # web, api, cli, job, system


_current: ContextVar[RequestContext | None] = ContextVar("vetline_request_context", default=None)


def current_context() -> RequestContext:
    ctx = _current.get()
    return ctx if ctx is not None else RequestContext()


@contextlib.contextmanager
def use_context(ctx: RequestContext) -> Iterator[RequestContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
