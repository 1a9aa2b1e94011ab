"""Cards are recorded off the hook call's path (store/batch.py), and none is lost on the way:
each reaches the store within the batch window, feedback right after a card finds it, and
a worker that stops writes what it still holds."""
from __future__ import annotations

import os
import time

import pytest

from sqlalchemy import create_engine, func, select

from service import create_app
from service.store.schema import cards as cards_table
from service.store.schema import feedback as feedback_table
from service.store.store import database_url as store_url
from tests.core.builders import hook_request
from tests.fhir_server_helpers import serve_cli
from tests.store.helpers import make_config

HOOK = "/cds-services/baclofen-order-sign"
WHEN = "2026-11-21T22:33:41.304Z"


def stored_card_uuids(engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.scalars(select(cards_table.c.card_uuid)))


def wait_for(condition, seconds: float = 20) -> bool:
    """Poll for an event (no timing assertion: the bound only stops a broken build hanging)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():
        time.sleep(0.05)
    return condition()


def issued(response) -> set[str]:
    assert response.status_code == 200
    uuids = {card["uuid"] for card in response.get_json()["cards"]}
    assert uuids, "the builders' request is answered with cards"
    return uuids


def test_a_hook_calls_cards_reach_the_store_without_any_read_flushing_them(database_url, tmp_path):
    app = create_app(make_config(database_url, tmp_path / "instance"))
    store = app.extensions["baclofen_cds"].store
    try:
        uuids = issued(app.test_client().post(HOOK, json=hook_request()))
        assert wait_for(lambda: stored_card_uuids(store.engine) == uuids)
    finally:
        store.close()


def test_feedback_right_after_a_card_finds_it_even_within_the_batch_window(database_url, tmp_path):
    app = create_app(make_config(database_url, tmp_path / "instance", store={"record_batch_seconds": 10}))
    store = app.extensions["baclofen_cds"].store
    client = app.test_client()
    try:
        card = sorted(issued(client.post(HOOK, json=hook_request())))[0]
        body = {"feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": WHEN}]}
        assert client.post(f"{HOOK}/feedback", json=body).status_code == 200
        with store.engine.connect() as connection:
            assert connection.scalar(select(feedback_table.c.card_known)) is True
    finally:
        store.close()


@pytest.mark.parametrize("server", ["gevent", "gunicorn", "granian"])
def test_a_stopping_worker_writes_the_cards_it_still_holds(tmp_path, server):
    """With a 10 s batch window the cards are still queued when serve is stopped."""
    env = {**os.environ, "BACLOFEN_CDS_SERVER__INSTANCE_PATH": str(tmp_path / "instance"),
           "BACLOFEN_CDS_STORE__RECORD_BATCH_SECONDS": "10"}
    import requests

    with serve_cli(["--server", server], tmp_path, env=env) as base:
        response = requests.post(f"{base}{HOOK}", json=hook_request(), timeout=60)
        assert response.status_code == 200
        uuids = {card["uuid"] for card in response.json()["cards"]}
    config = make_config("", tmp_path / "instance")
    engine = create_engine(store_url(config))
    assert uuids and stored_card_uuids(engine) == uuids
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(cards_table)) == len(uuids)
