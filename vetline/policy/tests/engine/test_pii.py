# ruff: noqa: RUF001 - lookalike characters are the point of this module
from __future__ import annotations

import pytest

from vetline.policy.engine.normalize import fold
from vetline.policy.engine.pii import (
    AccountPattern,
    PersonalDataScanner,
    aba_checksum_ok,
    luhn_ok,
    luhn_ok_stdnum,
)
from vetline.policy.engine.safe_regex import compile_safe

SCANNER = PersonalDataScanner(
    phone_regions=("US", "GB"),
    national_ids=("es.dni", "it.codicefiscale", "in_.aadhaar", "in_.pan", "fr.nir", "ca.sin"),
    account_patterns=(AccountPattern("acme", compile_safe(r"acm-\d{8}"), context=("account",)),),
)


def _entities(text: str) -> list[tuple[str, str]]:
    view = fold(text)
    out = []
    for f in SCANNER.scan(view.text):
        s, e = view.to_original(f.start, f.end)
        out.append((f.entity, text[s:e]))
    return out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card 4111 1111 1111 1111 thanks", [("credit_card", "4111 1111 1111 1111")]),
        ("amex 3782-822463-10005", [("credit_card", "3782-822463-10005")]),
        ("number 4111 1111 1111 1112 fails luhn", []),
        ("ssn 536-22-8741", [("us_ssn", "536-22-8741")]),
        ("ssn 666-22-8741 is invalid", []),
        ("my ssn is 536228741", [("us_ssn", "536228741")]),
        ("order 536228741 shipped", []),
        ("wire to routing 021000021", [("aba_routing", "021000021")]),
        ("iban GB82 WEST 1234 5698 7654 32 please", [("iban", "GB82 WEST 1234 5698 7654 32")]),
        ("iban DE89370400440532013000.", [("iban", "DE89370400440532013000")]),
        ("iban GB82 WEST 1234 5698 7654 33", []),
        ("mail jane.doe@example.org now", [("email", "jane.doe@example.org")]),
        ("call (415) 555-2671 today", [("phone", "(415) 555-2671")]),
        ("call +44 20 7946 0958", [("phone", "+44 20 7946 0958")]),
        ("call 555-0000 today", []),
        ("dni 12345678Z", [("national_id", "12345678Z")]),
        ("aadhaar 2345 6789 0124", [("national_id", "2345 6789 0124")]),
        ("account ACM-12345678 frozen", [("account_number", "ACM-12345678")]),
        ("ticket ACM-12345678 frozen", []),
        (
            "full-width ４１１１ １１１１ １１１１ １１１１",
            [("credit_card", "４１１１ １１１１ １１１１ １１１１")],
        ),
        (
            "zero width 4111\u200b1111\u200b1111\u200b1111",
            [("credit_card", "4111\u200b1111\u200b1111\u200b1111")],
        ),
        ("In 2024 we grew 12% and hired 1,500 people", []),
    ],
)
def test_entities(text: str, expected: list[tuple[str, str]]) -> None:
    assert _entities(text) == expected


def test_aadhaar_verhoeff_check_rejects_typos() -> None:
    assert _entities("aadhaar 2345 6789 0125") == []


def test_checksums_agree_with_stdnum() -> None:
    for number in ("4111111111111111", "378282246310005", "4111111111111112", "79927398713"):
        assert luhn_ok(number) == luhn_ok_stdnum(number)
    assert aba_checksum_ok("021000021")
    assert not aba_checksum_ok("021000022")


def test_allow_list_skips_corporate_contacts() -> None:
    scanner = PersonalDataScanner(allow=["@acme.com", "+1 800 555 0199"])
    assert scanner.scan(fold("mail help@acme.com or call 1-800-555-0199").text) == []
