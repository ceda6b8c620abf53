"""Fixtures for the SAML core tests, and the corpus verdict table printed at the end.

The public corpus lives outside the repository (never copied in): it is
found through ``DESKGATE_SAML_CORPUS``, default ``<repo root>/../shared/saml-corpus``;
tests that need it are skipped with the path they looked at.

``tests/saml`` is not a package; pytest's rootdir-based import puts this
directory on ``sys.path``, so ``samlfactory`` is importable by name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from deskgate.saml.config import IdPConfig, SPConfig

import samlfactory

CORPUS_ENV = "DESKGATE_SAML_CORPUS"
REPO_ROOT = Path(__file__).resolve().parents[2]
VERDICT_PROPERTY = "saml_corpus_verdict"

# Filled from test reports (works under pytest-xdist too: user_properties travel
# with the reports to the controlling process), printed by pytest_terminal_summary.
_VERDICTS: list[dict[str, str]] = []


def corpus_path() -> Path:
    """Where the corpus is expected (it may be absent)."""
    configured = os.environ.get(CORPUS_ENV)
    return (
        Path(configured) if configured else (REPO_ROOT / ".." / "shared" / "saml-corpus").resolve()
    )


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The corpus root; skips the test when it is not there."""
    path = corpus_path()
    if not (path / "index.md").is_file():
        pytest.skip(f"SAML corpus not found at {path} (set {CORPUS_ENV} to its directory)")
    return path


@pytest.fixture(scope="session")
def factory() -> Any:
    """The :mod:`samlfactory` module (signed test responses, keys)."""
    return samlfactory


@pytest.fixture(scope="session")
def idp_key() -> samlfactory.KeyPair:
    return samlfactory.keypair("idp")


@pytest.fixture(scope="session")
def sp_key() -> samlfactory.KeyPair:
    return samlfactory.keypair("sp")


@pytest.fixture
def spec() -> samlfactory.ResponseSpec:
    """A fresh default response spec (valid, SP-initiated, at samlfactory.NOW)."""
    return samlfactory.ResponseSpec()


@pytest.fixture
def sp_config(spec: samlfactory.ResponseSpec, sp_key: samlfactory.KeyPair) -> SPConfig:
    return SPConfig(
        entity_id=spec.sp_entity_id,
        acs_url=spec.acs_url,
        private_key_pem=sp_key.private_key_pem,
        certificate_pem=sp_key.certificate_pem,
    )


@pytest.fixture
def idp_config(spec: samlfactory.ResponseSpec, idp_key: samlfactory.KeyPair) -> IdPConfig:
    return IdPConfig(
        entity_id=spec.idp_entity_id,
        sso_url="https://idp.example.test/sso",
        signing_certificates=(idp_key.certificate_pem,),
    )


@pytest.fixture
def record_verdict(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Attach one corpus verdict row to the running test's report."""

    def record(**row: str) -> None:
        request.node.user_properties.append((VERDICT_PROPERTY, json.dumps(row)))

    return record


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == VERDICT_PROPERTY:
            row = json.loads(value)
            row["result"] = report.outcome
            _VERDICTS.append(row)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not _VERDICTS:
        return
    rows = sorted(_VERDICTS, key=lambda r: r["case"])
    write = terminalreporter.write_line
    terminalreporter.section("SAML corpus verdicts")
    write("case | corpus index | expected (ours) | got | reason")
    for row in rows:
        mark = "" if row["result"] == "passed" else "  <-- MISMATCH"
        reason = " ".join(row["reason"].split())
        reason = reason if len(reason) <= 160 else reason[:157] + "..."
        write(f"{row['case']} | {row['index']} | {row['expected']} | {row['got']} | {reason}{mark}")
    accepted = sum(1 for r in rows if r["got"] == "ACCEPT")
    differs = sum(
        1
        for r in rows
        if r["index"] in ("ACCEPT", "REJECT") and (r["index"] == "ACCEPT") != (r["got"] == "ACCEPT")
    )
    failed = sum(1 for r in rows if r["result"] != "passed")
    write(
        f"{len(rows)} cases: {accepted} accepted, {len(rows) - accepted} refused; "
        f"{differs} differ from the corpus index by a stated policy; {failed} not as expected"
    )
