"""`deskgate serve --workers 2` as operators run it: JSON lines on stderr (no uvicorn access log),
/metrics adding up both workers (on the metrics listener and, with the token, on the app port),
and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "serve-test-metrics-token-0123456789"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ops_requests(exposition: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "deskgate_http_requests_total"
        and sample.labels == {"group": "ops", "method": "GET", "status": "200"}
    )


def test_two_workers_log_json_and_share_their_metrics(tmp_path):
    port, metrics_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "DESKGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "DESKGATE_METRICS_BIND": f"127.0.0.1:{metrics_port}",
        "DESKGATE_METRICS_TOKEN": TOKEN,
        "DESKGATE_LOG_LEVEL": "info",
    }
    env.pop("DESKGATE_BASE_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "deskgate", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    answered = 0
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    answered += 1
                    break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        for _ in range(30):  # a new connection each time: both workers take some
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
            answered += 1
        time.sleep(0.5)  # both workers started their lifespans
        separate = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
        on_app_port = httpx.get(
            f"http://127.0.0.1:{port}/metrics",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert separate.status_code == 200
    assert _ops_requests(separate.text) == answered
    assert on_app_port.status_code == 200
    assert _ops_requests(on_app_port.text) == answered
    assert "deskgate_db_pool_size " in separate.text or "deskgate_db_pool_size{" in separate.text

    lines = [json.loads(line) for line in err.splitlines()]  # every line on stderr is JSON
    requests = [line for line in lines if line["logger"] == "deskgate.request"]
    assert len(requests) >= answered + 1
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]
    assert {line["route"] for line in requests} == {"/healthz", "/metrics"}
    # Both workers ran their lifespan shutdown (background loops cancelled and awaited).
    assert sum(line["msg"] == "Application shutdown complete." for line in lines) == 2
