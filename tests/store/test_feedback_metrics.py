"""Prometheus metrics at /metrics: hook requests and latency per service, cards per topic
and indicator, FHIR fetch errors, feedback; summed over worker processes."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from service import create_app, metrics
from tests.store.helpers import make_card, make_config, metric_value

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(tmp_path):
    app = create_app(make_config("", tmp_path / "instance"))
    yield app.test_client()
    app.extensions["baclofen_cds"].store.close()


def test_the_three_hook_route_calls_show_up(client):
    before = client.get("/metrics").get_data(as_text=True)
    metrics.observe_hook("baclofen-order-sign", 200, 0.012)
    metrics.observe_hook("baclofen-order-sign", 412, 0.3)
    metrics.count_cards("baclofen-order-sign", [make_card("renal-avoid", "critical"), make_card("renal-avoid", "critical")])
    metrics.count_fetch_error("creatinine", "timeout")
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    after = response.get_data(as_text=True)

    def delta(name, **labels):
        return metric_value(after, name, **labels) - metric_value(before, name, **labels)

    assert delta("cds_hook_requests_total", service="baclofen-order-sign", status="200") == 1
    assert delta("cds_hook_requests_total", service="baclofen-order-sign", status="412") == 1
    assert delta("cds_hook_duration_seconds_count", service="baclofen-order-sign") == 2
    assert delta("cds_hook_duration_seconds_bucket", service="baclofen-order-sign", le="0.025") == 1
    assert delta("cds_cards_total", topic="renal-avoid", indicator="critical") == 2
    assert delta("cds_fhir_fetch_errors_total", data_key="creatinine", reason="timeout") == 1


MULTIPROCESS_SCRIPT = textwrap.dedent("""
    import os, sys
    from service import metrics
    metrics.prepare_multiprocess(sys.argv[1])
    children = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            metrics.observe_hook("baclofen-order-sign", 200, 0.01)
            metrics.count_cards("baclofen-order-sign", [{"indicator": "info", "source": {"topic": {"code": "t"}}}])
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    sys.stdout.write(metrics.render()[0].decode())
""")


def test_worker_processes_are_added_up(tmp_path):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"stale")  # from a previous run: removed
    result = subprocess.run([sys.executable, "-c", MULTIPROCESS_SCRIPT, str(directory)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert metric_value(result.stdout, "cds_hook_requests_total", status="200") == 3
    assert metric_value(result.stdout, "cds_cards_total", topic="t") == 3
