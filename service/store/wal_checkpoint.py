"""SQLite's write-ahead log checkpointed by a native thread of the process, not by the calls.

A checkpoint copies the log into the database file and syncs both to disk. Left to SQLite,
it runs in whichever connection commits once the log passes 1,000 pages: in `serve`'s gevent
workers that commit is made in the worker's only thread, and every call the worker holds
waits for the disk meanwhile (docs/performance.md, "Issue 10, third session"). Here a native
thread, started in each process that opens the store, checkpoints every second on a
connection of its own; SQLite releases the GIL while it works, so the calls go on. The
connections of the calls keep an automatic checkpoint far above it, should the thread fall
behind. The thread touches nothing gevent patches: the original sleep, lock and thread
start, and its own sqlite3 connection.

Forking while the thread is inside SQLite would leave the child with SQLite's mutexes held
by a thread it does not have (a child of gunicorn's master, or of a process pool, would hang
on its first connection): a fork waits until the thread is out of SQLite. The thread ends
with its store (`stop`, or once the store is gone).
"""
from __future__ import annotations

import os
import sqlite3
import weakref

from gevent import monkey

CHECKPOINT_SECONDS = 1.0
BACKSTOP_PAGES = 10_000  # the calls' own automatic checkpoint: about 40 MB of log

_start_native_thread = monkey.get_original("_thread", "start_new_thread")
_native_lock = monkey.get_original("_thread", "allocate_lock")
_native_sleep = monkey.get_original("time", "sleep")


class WalCheckpointer:
    def __init__(self, database: str, interval: float = CHECKPOINT_SECONDS):
        self._database = database
        self._interval = interval
        self._pid: int | None = None
        self._stopped = False
        self.in_sqlite = _native_lock()  # held by the thread while it is inside SQLite
        self.checkpoints = 0  # done by this process's thread (the tests read it)
        _ALL.add(self)

    def ensure_running(self) -> None:
        """Start the thread in this process, once (a forked worker inherits no thread)."""
        if self._pid != os.getpid() and not self._stopped:
            self._pid = os.getpid()
            _start_native_thread(_run, (weakref.ref(self), self.in_sqlite, self._database, self._interval))

    def stop(self) -> None:
        """The thread ends after its next sleep."""
        self._stopped = True


def _run(reference: weakref.ref, in_sqlite, database: str, interval: float) -> None:
    connection = None
    while True:
        _native_sleep(interval)
        checkpointer = reference()
        if checkpointer is None or checkpointer._stopped:
            break
        with in_sqlite:
            connection = connection or _connect(database)
            if connection is not None:
                checkpointer.checkpoints += _checkpoint(connection)
        del checkpointer  # between checkpoints, only the store keeps it alive
    if connection is not None:
        with in_sqlite:
            connection.close()


def _connect(database: str) -> sqlite3.Connection | None:
    try:
        return sqlite3.connect(database, isolation_level=None)
    except sqlite3.Error:
        return None  # the calls' automatic checkpoint does the work


def _checkpoint(connection: sqlite3.Connection) -> int:
    # PASSIVE waits for no reader or writer: it copies what it can now. A failure leaves
    # the work to the calls' automatic checkpoint; it is not logged from this thread,
    # whose logging locks gevent may have patched.
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        return 1
    except sqlite3.Error:
        return 0


# -- fork: never while a thread is inside SQLite -------------------------------------------
_ALL: weakref.WeakSet = weakref.WeakSet()
_held: list[WalCheckpointer] = []


def _before_fork() -> None:
    _held[:] = list(_ALL)
    for checkpointer in _held:
        checkpointer.in_sqlite.acquire()


def _after_fork_in_parent() -> None:
    for checkpointer in _held:
        checkpointer.in_sqlite.release()
    _held.clear()


def _after_fork_in_child() -> None:
    for checkpointer in _held:  # held by the parent's fork; no thread here to wait for
        checkpointer.in_sqlite = _native_lock()
    _held.clear()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                    after_in_child=_after_fork_in_child)
