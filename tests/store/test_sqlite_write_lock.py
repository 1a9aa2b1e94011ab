"""On SQLite a writer waits for another connection's write lock (another worker's batch of
cards, a purge) inside the SQLite library only for its first few milliseconds, then in
service/store/store.py's begin_immediate, with time.sleep: under serve's gevent workers a
wait in the library stalls every call the worker holds, not only the one that writes."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.store import open_store
from service.store.store import SQLITE_FILE_NAME, begin_immediate

from .helpers import ORDER_SIGN, PATIENT_ID, make_card, make_config

ROOT = Path(__file__).resolve().parents[2]
HOLD_SECONDS = 1.5

# A gevent-patched process, as a serve worker is: one greenlet records a card while the
# database's write lock is held elsewhere, another ticks every 10 ms. It prints how long
# the write waited and the longest gap between two ticks.
WRITER = """
from gevent import monkey; monkey.patch_all()
import json, sys, time
import gevent
from service.config import validate_config
from service.store import open_store
store = open_store(validate_config({"server": {"instance_path": sys.argv[1]}}))
print("ready", flush=True)
sys.stdin.readline()  # the write lock is now held elsewhere
gaps, done = [], []
def tick():
    last = time.monotonic()
    while not done:
        gevent.sleep(0.01)
        now = time.monotonic()
        gaps.append(now - last)
        last = now
def write():
    print("writing", flush=True)
    started = time.monotonic()
    try:
        store.record_cards("baclofen-order-sign", "order-sign", "h", "p",
                           [{"uuid": "c1", "indicator": "warning", "summary": "s",
                             "source": {"label": "l", "topic": {"code": "age"}}}])
    finally:
        done.append(time.monotonic() - started)
ticker = gevent.spawn(tick)
gevent.sleep(0.05)
gevent.spawn(write).join()
ticker.join()
print(json.dumps({"waited": done[0], "longest_gap": max(gaps), "cards": store.counts()["cards"]}))
"""


@pytest.fixture
def instance(tmp_path) -> Path:
    open_store(make_config("", tmp_path)).close()  # the schema, before anyone holds the lock
    return tmp_path


def hold_write_lock(instance: Path) -> sqlite3.Connection:
    holder = sqlite3.connect(instance / SQLITE_FILE_NAME, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_a_gevent_worker_goes_on_while_its_write_waits_for_the_lock(instance):
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(instance)], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    assert writer.stdout.readline().strip() == "ready"
    holder = hold_write_lock(instance)
    try:
        writer.stdin.write("go\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "writing"
        time.sleep(HOLD_SECONDS)
    finally:
        holder.rollback()
        holder.close()
    result = json.loads(writer.communicate(timeout=60)[0].splitlines()[-1])
    assert writer.returncode == 0
    assert result["cards"] == 1
    assert result["waited"] >= HOLD_SECONDS / 2  # it did wait for the lock...
    assert result["longest_gap"] < HOLD_SECONDS / 3  # ...and the other greenlet went on


def test_a_writer_gets_the_lock_once_released(instance):
    store = open_store(make_config("", instance))
    holder = hold_write_lock(instance)
    try:
        time.sleep(0.1)
        holder.rollback()
        store.record_cards(ORDER_SIGN, "order-sign", "h", PATIENT_ID, [make_card("age")])
        assert store.counts()["cards"] == 1
    finally:
        holder.close()
        store.close()


def test_the_wait_for_the_lock_ends_at_its_timeout(instance):
    holder = hold_write_lock(instance)
    waiter = sqlite3.connect(instance / SQLITE_FILE_NAME, isolation_level=None)
    waiter.execute("PRAGMA busy_timeout=0")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            begin_immediate(waiter, timeout=0.3)
    finally:
        holder.close()
        waiter.close()
