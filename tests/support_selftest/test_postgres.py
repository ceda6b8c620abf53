"""The throwaway PostgreSQL cluster (.ci/postgres.sh) starts, accepts connections and goes away."""

from __future__ import annotations

import glob
import re
from pathlib import Path

import psycopg
import pytest

from support.postgres import throwaway_postgres

pytestmark = pytest.mark.skipif(
    not glob.glob("/usr/lib/postgresql/*/bin/initdb"), reason="needs postgresql"
)


def test_throwaway_postgres() -> None:
    with throwaway_postgres() as url:
        match = re.fullmatch(r"postgresql\+psycopg://deskgate@127\.0\.0\.1:(\d+)/deskgate", url)
        assert match, url
        conninfo = url.replace("+psycopg", "")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("CREATE DATABASE deskgate_selftest")  # tests may create databases
            row = conn.execute("SELECT current_user, current_setting('fsync')").fetchone()
            assert row == ("deskgate", "off")
        folders = [
            p
            for p in Path("/tmp").glob("deskgate-pg-*")
            if (p / "port").is_file() and (p / "port").read_text().strip() == match[1]
        ]
        assert len(folders) == 1
    assert not folders[0].exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(conninfo, connect_timeout=2)
