"""Fixtures for the self-tests of tests/support (also a template for tests/conftest.py)."""

from __future__ import annotations


# The browser fixtures (browser, new_context, screenshot) come from tests/conftest.py: one
# Playwright per test process, since a second sync Playwright in the same thread fails.
