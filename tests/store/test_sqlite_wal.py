"""On SQLite the write-ahead log is checkpointed by a native thread of each process
(service/store/wal_checkpoint.py), not by the commits of the hook calls."""
from __future__ import annotations

import os
import threading
import time

from service.store import open_store
from service.store.store import SQLITE_FILE_NAME
from service.store.wal_checkpoint import BACKSTOP_PAGES

from tests.fhir_server_helpers import wait_until

from .helpers import ORDER_SIGN, PATIENT_ID, make_card, make_config


def test_cards_reach_the_database_file_through_the_thread(tmp_path):
    store = open_store(make_config("", tmp_path))
    database = tmp_path / SQLITE_FILE_NAME
    try:
        size = database.stat().st_size
        for index in range(20):  # far fewer pages than any automatic checkpoint's threshold
            store.record_cards(ORDER_SIGN, "order-sign", f"h{index}", PATIENT_ID,
                               [make_card("renal-dose", suggestions=3) for _ in range(10)])
        wait_until(lambda: database.stat().st_size > size, "the log checkpointed into the file", 15)
        assert store._checkpointer.checkpoints >= 1
    finally:
        store.close()


def test_the_calls_own_checkpoint_is_only_a_backstop(tmp_path):
    store = open_store(make_config("", tmp_path))
    try:
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == BACKSTOP_PAGES
    finally:
        store.close()


def test_the_thread_stops_with_the_store(tmp_path):
    store = open_store(make_config("", tmp_path))
    store.record_cards(ORDER_SIGN, "order-sign", "h", PATIENT_ID, [make_card("age")])
    wait_until(lambda: store._checkpointer.checkpoints >= 1, "a checkpoint", 15)
    store.close()
    time.sleep(1.5)  # one interval for the thread to see it is stopped
    done = store._checkpointer.checkpoints
    time.sleep(1.5)
    assert store._checkpointer.checkpoints == done


def test_a_fork_waits_until_the_thread_is_out_of_sqlite(tmp_path):
    """Forked while the thread is inside SQLite, a child would inherit SQLite's mutexes held
    by a thread it does not have, and hang on its first connection (seen: a process pool's
    child in tests/store/test_jti.py)."""
    store = open_store(make_config("", tmp_path))
    checkpointer = store._checkpointer
    inside, leaving = threading.Event(), threading.Event()

    def in_sqlite_for_a_while():
        with checkpointer.in_sqlite:
            inside.set()
            time.sleep(1.0)
            leaving.set()  # still inside: the fork cannot have happened yet

    try:
        threading.Thread(target=in_sqlite_for_a_while).start()
        inside.wait(10)
        child = os.fork()
        if child == 0:
            os._exit(0)
        forked_after_it_left = leaving.is_set()
        os.waitpid(child, 0)
        assert forked_after_it_left
        assert checkpointer.in_sqlite.acquire(timeout=5)  # released again in the parent
        checkpointer.in_sqlite.release()
    finally:
        store.close()
