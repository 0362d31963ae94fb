"""A sampling population's record ids, fetched fast: millions of ids as one sorted numpy array,
never millions of Python objects.

The database builds the list as one comma-separated text value (``string_agg`` on PostgreSQL,
``group_concat`` on SQLite) and numpy parses it in C: no Python object per id, no message per
row. (PostgreSQL's binary ``COPY`` was tried first: the server side is as cheap, but psycopg
hands over one message per row, and 10 million of them cost seconds of Python.)

The result is sorted ascending and de-duplicated (a query that joins a multi-valued relation can
return an id twice), ready for :func:`vetline.supervision.draw.draw_sample`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from django.db import connections, transaction
from django.db.models import QuerySet

from vetline.supervision.draw import IdArray

Source = QuerySet[Any] | tuple[str, Sequence[Any]]


def _sql(source: Source) -> tuple[str, Sequence[Any]]:
    if isinstance(source, QuerySet):
        compiled = source.order_by().values_list("pk", flat=True).query.sql_with_params()
        return compiled[0], compiled[1]
    return source[0], source[1]


def fetch_ids(source: Source, *, using: str = "default") -> IdArray:
    """Sorted, distinct int64 ids: a queryset's primary keys, or the single column of ``sql``
    (a ``(sql, params)`` pair with ``%s`` placeholders, from trusted code only)."""
    sql, params = _sql(source)
    connection = connections[using]
    if connection.vendor == "postgresql":
        ids = _fetch_postgresql(connection, sql, params)
    elif connection.vendor == "sqlite":
        ids = _fetch_sqlite(connection, sql, params)
    else:  # pragma: no cover - Vetline runs on PostgreSQL or SQLite
        with connection.cursor() as cur:
            cur.execute(sql, params)
            ids = np.fromiter((row[0] for row in cur.fetchall()), dtype=np.int64)
    return _sorted_distinct(ids)


def _fetch_sqlite(connection: Any, sql: str, params: Sequence[Any]) -> IdArray:
    with connection.cursor() as cur:
        # ``sql`` is compiled by the ORM or written by trusted code; its values are params
        query = f"WITH population(id) AS ({sql}) SELECT group_concat(id) FROM population"  # noqa: S608
        cur.execute(query, params)
        text = cur.fetchone()[0]
    return _parse(text)


def _parse(text: str | None) -> IdArray:
    if not text:
        return np.empty(0, dtype=np.int64)
    ids: IdArray = np.fromstring(text, dtype=np.int64, sep=",")  # C parser, no Python ints
    return ids


def _fetch_postgresql(connection: Any, sql: str, params: Sequence[Any]) -> IdArray:
    # One text value built by the server: COPY would be as cheap there, but it sends a message
    # per row and reading 10M messages in Python costs seconds. No JIT: compiling this
    # one-off aggregate costs more than it saves.
    query = f"WITH population(id) AS ({sql}) SELECT string_agg(id::text, ',') FROM population"  # noqa: S608
    with transaction.atomic(using=connection.alias), connection.cursor() as cur:
        cur.execute("SET LOCAL jit = off")
        cur.execute(query, params)
        text = cur.fetchone()[0]
    return _parse(text)


def _sorted_distinct(ids: IdArray) -> IdArray:
    if ids.size < 2:
        return ids
    if not bool(np.all(ids[1:] >= ids[:-1])):
        ids = np.sort(ids, kind="stable")  # timsort: cheap on the long sorted runs of a scan
    keep = np.empty(ids.size, dtype=bool)
    keep[0] = True
    np.not_equal(ids[1:], ids[:-1], out=keep[1:])
    return ids if bool(keep.all()) else ids[keep]
