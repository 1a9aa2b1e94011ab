"""8 client processes post 500 feedback items each to the real gunicorn with 2 workers:
none is lost, on SQLite and on PostgreSQL; /metrics adds up both workers."""
from __future__ import annotations

import multiprocessing
import os
import re
import socket
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import Integer, cast, func, select

from service.store import open_store
from service.store.schema import feedback
from tests.store.helpers import ORDER_SIGN, PATIENT_ID, make_card, make_config
from tests.store.helpers import database_url  # noqa: F401 - fixture

CLIENTS, ITEMS_PER_CLIENT = 8, 500
REPO_ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).with_name("gunicorn")
GUNICORN_HOOKS = """
from service import metrics

def on_starting(server):
    metrics.prepare_multiprocess({directory!r})

def child_exit(server, worker):
    metrics.mark_worker_dead(worker.pid)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {process.returncode}")
        try:
            if requests.get(f"{url}/metrics", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError("gunicorn did not come up")


@pytest.fixture
def served(database_url, tmp_path):
    """The service under gunicorn with 2 workers; yields (base URL, config)."""
    config = make_config(database_url, tmp_path / "instance")
    hooks = tmp_path / "gunicorn_hooks.py"
    hooks.write_text(GUNICORN_HOOKS.format(directory=str(tmp_path / "prometheus")))
    port = _free_port()
    environment = {**os.environ, "BACLOFEN_CDS_STORE__URL": database_url,
                   "BACLOFEN_CDS_SERVER__INSTANCE_PATH": str(config.instance_path),
                   "BACLOFEN_CDS_AUTH__ALLOW_UNAUTHENTICATED": "true"}
    log = (tmp_path / "gunicorn.log").open("wb")  # a pipe nobody reads would fill and block
    process = subprocess.Popen(
        [str(GUNICORN), "--workers", "2", "--bind", f"127.0.0.1:{port}", "--config", str(hooks),
         "--log-level", "warning", "service:create_app()"],
        cwd=REPO_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process)
        yield url, config
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def _post_feedback(url: str, card_uuids: list[str]) -> list[int]:
    statuses = []
    with requests.Session() as session:
        for index, card in enumerate(card_uuids):
            outcome = "accepted" if index % 2 else "overridden"
            body = {"feedback": [{"card": card, "outcome": outcome,
                                  "outcomeTimestamp": "2026-11-21T22:33:41Z"}]}
            statuses.append(session.post(f"{url}/cds-services/{ORDER_SIGN}/feedback",
                                         json=body, timeout=30).status_code)
    return statuses


def _issue_cards(config, count: int) -> list[str]:
    store = open_store(config)
    issued = [make_card("renal-dose") for _ in range(count)]
    for start in range(0, count, 100):
        store.record_cards(ORDER_SIGN, "order-sign", f"hi-{start}", PATIENT_ID, issued[start:start + 100])
    store.close()
    return [card["uuid"] for card in issued]


def _metric_total(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.MULTILINE))


def test_no_feedback_is_lost_under_concurrent_clients(served):
    url, config = served
    uuids = _issue_cards(config, CLIENTS * ITEMS_PER_CLIENT)
    batches = [uuids[i::CLIENTS] for i in range(CLIENTS)]
    started = time.monotonic()
    with ProcessPoolExecutor(CLIENTS, mp_context=multiprocessing.get_context("fork")) as pool:
        statuses = [s for batch in pool.map(_post_feedback, [url] * CLIENTS, batches) for s in batch]
    elapsed = time.monotonic() - started
    assert statuses == [200] * len(uuids), f"non-200 answers: {set(statuses)}"

    store = open_store(config)
    with store.engine.connect() as connection:
        stored = connection.execute(select(
            func.count(), func.count(func.distinct(feedback.c.card_uuid)),
            func.sum(cast(feedback.c.card_known, Integer))).select_from(feedback)).one()
    store.close()
    assert tuple(stored) == (len(uuids), len(uuids), len(uuids))

    for _ in range(4):  # whichever worker answers, it reports both workers' counts
        text = requests.get(f"{url}/metrics", timeout=5).text
        assert _metric_total(text, "cds_feedback_total") == len(uuids)
    print(f"{len(uuids)} feedback posts in {elapsed:.1f} s ({len(uuids) / elapsed:.0f}/s)")
