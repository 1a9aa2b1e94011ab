"""Cards recorded off the hook call's path: queued in memory, written in batches.

A hook call only builds its rows (cards shown and suppressed, its baclofen orders: the
patient's keyed hash, the time issued) and queues them; a background thread of the process
writes everything queued, one INSERT per table in one transaction, every `interval` seconds. Queued rows are also written on `flush()` (before the store reads or
writes anything that depends on them: feedback, the report, purge), at interpreter exit
and when the worker stops. A process killed with SIGKILL loses at most the rows of the last
batch window; feedback is never queued (docs/store.md, "Durability").
"""
from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import threading
import time

from .. import tracing

# Seconds between two writes: a short window keeps each write short, and a gevent worker's
# calls wait for it (bench/store_stalls.py; docs/performance.md, "Issue 10, third session").
DEFAULT_INTERVAL = 0.02
MAX_QUEUED_ROWS = 50_000  # a store that is down must not grow the worker without bound

log = logging.getLogger("baclofen_cds")


class CardBatcher:
    def __init__(self, write, interval: float = DEFAULT_INTERVAL):
        self._write = write  # one atomic write of a list of (table, rows)
        self._interval = interval
        self._statements: list = []  # (table, rows) in the order queued
        self._queued_rows = 0
        self._lock = threading.Lock()  # guards _statements and _queued_rows
        self._write_lock = threading.Lock()  # one write at a time, in order
        self._pid: int | None = None
        self.dropped = 0

    def add(self, statements: list) -> None:
        count = sum(len(rows) for _, rows in statements)
        with self._lock:
            if self._queued_rows + count > MAX_QUEUED_ROWS:
                self.dropped += count
                log.error("card record queue full: cards not recorded", extra={"event": "store_failed"})
                return
            self._statements.extend(statements)
            self._queued_rows += count
        self._ensure_thread()

    def flush(self) -> None:
        """Write everything queued so far, now, in this thread."""
        with self._write_lock:
            with self._lock:
                statements, self._statements, self._queued_rows = self._statements, [], 0
            if not statements:
                return
            try:
                self._write(statements)
            except Exception:  # noqa: BLE001 - logged; the cards were shown all the same
                log.exception("could not record cards", extra={"event": "store_failed"})

    def _ensure_thread(self) -> None:
        # One writer per process, started after gunicorn forks the worker.
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
        # Registered in the process that writes: a forked worker inherits neither.
        atexit.register(self.flush)
        # Workers that multiprocessing starts (granian's) end with os._exit, skipping
        # atexit; multiprocessing runs its own finalizers first.
        multiprocessing.util.Finalize(None, self.flush, exitpriority=10)
        # Started during a hook call: without this, every later batch would be traced as
        # part of that one call.
        with tracing.outside_any_trace():
            threading.Thread(target=self._run, daemon=True, name="card-batcher").start()

    def _run(self) -> None:
        while True:
            time.sleep(self._interval)
            self.flush()
