"""`deskgate serve`'s defaults: a worker per CPU this process may use."""

from __future__ import annotations

import os

from click.testing import CliRunner

from deskgate import cli
from deskgate.web import server


def test_default_workers_is_one_per_usable_cpu() -> None:
    assert server.default_workers() == len(os.sched_getaffinity(0))


def test_serve_runs_the_default_workers_unless_told(monkeypatch, tmp_path) -> None:
    seen: list[int] = []
    monkeypatch.setattr(server, "serve", lambda *_args, workers, **_kw: seen.append(workers))
    monkeypatch.setenv("DESKGATE_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    runner = CliRunner()
    assert runner.invoke(cli.main, ["serve"]).exit_code == 0
    assert runner.invoke(cli.main, ["serve", "--workers", "3"]).exit_code == 0
    monkeypatch.setenv("DESKGATE_WORKERS", "5")
    assert runner.invoke(cli.main, ["serve"]).exit_code == 0
    assert seen == [server.default_workers(), 3, 5]
