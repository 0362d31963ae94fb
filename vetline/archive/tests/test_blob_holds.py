"""The pure planning of blob legal holds: what the table must change, what the store is asked."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vetline.archive.blob_holds import (
    OFF,
    ON,
    PENDING,
    Recorded,
    blob_names,
    plan,
    wanted_change,
)

A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_blob_names_keeps_only_content_addresses() -> None:
    assert list(blob_names([A, "x", 3, B.upper(), B])) == [A, B]
    assert list(blob_names(None)) == []


@pytest.mark.parametrize(
    ("wanted", "state", "row_store", "answer"),
    [
        (True, OFF, "", True),  # new hold
        (True, ON, "s3://b", None),  # already held there
        (True, ON, "s3://old", True),  # held in another store: hold it in this one
        (False, ON, "s3://b", False),  # released
        (False, OFF, "s3://b", None),
        (True, PENDING, "s3://b", True),  # a crash or failure: assert again
        (False, PENDING, "s3://b", False),
    ],
)
def test_wanted_change(wanted: bool, state: str, row_store: str, answer: bool | None) -> None:
    assert wanted_change(wanted=wanted, state=state, row_store=row_store, store="s3://b") is (
        answer
    )


def test_plan_creates_rewants_unwants_and_moves_links() -> None:
    recorded = {
        A: Recorded(True, frozenset({1, 2})),  # hold 1 released: keeps hold 2
        B: Recorded(False, frozenset()),  # held before, wanted again
        C: Recorded(True, frozenset({1})),  # no longer wanted
    }
    out = plan({A: {2}, B: {3}, "d" * 64: {2, 3}}, recorded)
    assert out.create == {"d" * 64: frozenset({2, 3})}
    assert out.rewant == [B] and out.unwant == [C]
    assert out.links_add == {(B, 3), ("d" * 64, 2), ("d" * 64, 3)}
    assert out.links_remove == {(A, 1), (C, 1)}
    assert plan({A: {2}}, {A: Recorded(True, frozenset({2}))}).empty


names = st.sampled_from([A, B, C, "d" * 64, "e" * 64])
holds = st.frozensets(st.integers(1, 4), min_size=1, max_size=3)


@given(
    st.dictionaries(names, holds),
    st.dictionaries(names, st.tuples(st.booleans(), st.frozensets(st.integers(1, 4)))),
)
def test_applying_the_plan_gives_the_wanted_set(
    wanted: dict[str, frozenset[int]], table: dict[str, tuple[bool, frozenset[int]]]
) -> None:
    # rows not wanted have no links (the reconciliation removes them together)
    recorded = {n: Recorded(w, h if w else frozenset()) for n, (w, h) in table.items()}
    out = plan(wanted, recorded)
    flags = {n: r.wanted for n, r in recorded.items()}
    links = {n: set(r.holds) for n, r in recorded.items()}
    for n in out.create:
        assert n not in flags
        flags[n], links[n] = True, set()
    for n in out.rewant:
        flags[n] = True
    for n in out.unwant:
        flags[n] = False
    for n, h in out.links_remove:
        links[n].remove(h)
    for n, h in out.links_add:
        assert h not in links[n]
        links[n].add(h)
    assert {n for n, w in flags.items() if w} == set(wanted)
    assert {n: frozenset(h) for n, h in links.items() if h} == {
        n: frozenset(h) for n, h in wanted.items()
    }
