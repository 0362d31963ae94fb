"""Engine tests are plain functions: no database, no Django settings needed."""

from __future__ import annotations

import datetime as dt

import pytest

from vetline.policy.engine import CompiledPolicy, load_pack


@pytest.fixture(scope="session")
def general() -> CompiledPolicy:
    return load_pack("general_brand_safety")


@pytest.fixture(scope="session")
def finserv() -> CompiledPolicy:
    return load_pack("financial_services")


TODAY = dt.date(2026, 6, 1)
