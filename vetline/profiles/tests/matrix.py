"""Permission-matrix entries for the profiles app's pages and API operations.

``vetline/core/tests/test_permission_matrix.py`` merges these into its tables; every page and
every API operation of this app needs an entry (see that module for how a Case is written)."""

from __future__ import annotations

from vetline.core.tests.matrix_support import Case

PAGES: dict[str, list[Case]] = {}
API: dict[str, list[Case]] = {}
