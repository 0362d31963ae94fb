"""The DAG-CBOR/CAR reader on the committed Bluesky fixture."""

from __future__ import annotations

import pytest

from vetline.importers.car import CborError, decode_dag_cbor, iter_blocks, read_header
from vetline.importers.tests.conftest import FIXTURES


def test_reads_every_block_and_checks_cids() -> None:
    with (FIXTURES / "bluesky.car").open("rb") as fh:
        roots, offset = read_header(fh)
        blocks = list(iter_blocks(fh, offset))
    assert len(roots) == 1 and len(blocks) == 9
    assert [b.cid.digest_matches(b.data) for b in blocks].count(False) == 1
    assert str(roots[0]).startswith("bafyrei")


@pytest.mark.parametrize(
    "data", [b"\x5f", b"\xa1\x01\x02", b"\x63ab", b"\xd9\x01\x00\x40", b"\x81" * 100 + b"\x00"]
)
def test_bad_cbor_is_an_error_not_a_crash(data: bytes) -> None:
    with pytest.raises(CborError):
        decode_dag_cbor(data)
