"""SQLite's write-ahead log checkpointed by a native thread of the process, not by the calls.

A checkpoint copies the log into the database file and syncs both to disk. Left to SQLite,
it runs in whichever connection commits once the log passes 1,000 pages: in `serve`'s gevent
workers that commit is made in the worker's only thread, and every call the worker holds
waits for the disk meanwhile (about 10 ms of p99 under load, docs/performance.md). Here a
native thread, started in each process that opens the store, checkpoints every second on a
connection of its own; SQLite releases the GIL while it works, so the calls go on. The
connections of the calls keep an automatic checkpoint far above it, should the thread fall
behind. The thread touches nothing gevent patches: the original sleep and thread start, and
its own sqlite3 connection.
"""
from __future__ import annotations

import os
import sqlite3

from gevent import monkey

CHECKPOINT_SECONDS = 1.0
BACKSTOP_PAGES = 10_000  # the calls' own automatic checkpoint: about 40 MB of log

_start_native_thread = monkey.get_original("_thread", "start_new_thread")
_native_sleep = monkey.get_original("time", "sleep")


class WalCheckpointer:
    def __init__(self, database: str, interval: float = CHECKPOINT_SECONDS):
        self._database = database
        self._interval = interval
        self._pid: int | None = None
        self._stopped = False
        self.checkpoints = 0  # done by this process's thread (the tests read it)

    def ensure_running(self) -> None:
        """Start the thread in this process, once (a forked worker inherits no thread)."""
        if self._pid != os.getpid() and not self._stopped:
            self._pid = os.getpid()
            _start_native_thread(self._run, ())

    def stop(self) -> None:
        """The thread ends after its next sleep."""
        self._stopped = True

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(self._database, isolation_level=None)
        except sqlite3.Error:
            return  # the calls' automatic checkpoint does the work
        try:
            while not self._stopped:
                _native_sleep(self._interval)
                if not self._stopped:
                    self._checkpoint(connection)
        finally:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        # PASSIVE waits for no reader or writer: it copies what it can now. A failure leaves
        # the work to the calls' automatic checkpoint; it is not logged from this thread,
        # whose logging locks gevent may have patched.
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1
        except sqlite3.Error:
            pass
