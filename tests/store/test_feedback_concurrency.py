"""8 client processes post 500 feedback items each to `baclofen-cds serve --workers 2`
(gunicorn): none is lost, on SQLite and on PostgreSQL; /metrics adds up both workers."""
from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor

import pytest
import requests
from sqlalchemy import Integer, cast, func, select

from service.store import open_store
from service.store.schema import feedback
from tests.fhir_server_helpers import serve_cli
from tests.store.helpers import ORDER_SIGN, PATIENT_ID, make_card, make_config

CLIENTS, ITEMS_PER_CLIENT = 8, 500
@pytest.fixture
def served(database_url, tmp_path):
    """`baclofen-cds serve` with 2 gunicorn workers; yields (base URL, config)."""
    config = make_config(database_url, tmp_path / "instance")
    environment = {**os.environ, "BACLOFEN_CDS_STORE__URL": database_url,
                   "BACLOFEN_CDS_SERVER__INSTANCE_PATH": str(config.instance_path)}
    with serve_cli(["--workers", "2"], tmp_path, env=environment) as url:
        yield url, config


def _post_feedback(url: str, card_uuids: list[str]) -> list[int]:
    """One item per request; plain http.client keeps the clients' own CPU use low."""
    host, port = url.removeprefix("http://").split(":")
    statuses = []
    for index, card in enumerate(card_uuids):
        outcome = "accepted" if index % 2 else "overridden"
        body = json.dumps({"feedback": [{"card": card, "outcome": outcome,
                                         "outcomeTimestamp": "2026-11-21T22:33:41Z"}]})
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("POST", f"/cds-services/{ORDER_SIGN}/feedback", body,
                           {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        statuses.append(response.status)
        connection.close()
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
