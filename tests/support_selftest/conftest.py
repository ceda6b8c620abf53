"""Fixtures for the self-tests of tests/support (also a template for tests/conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

# Import the support package as `support`, whether or not tests/ is itself a package.
_TESTS_DIR = str(Path(__file__).resolve().parents[1])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from support.browser import browser, new_context, playwright, pytest_runtest_makereport, screenshot  # noqa: F401
