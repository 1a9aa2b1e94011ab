"""One bounded FHIR GET: time, bytes on the wire, decompressed bytes and JSON shape.

A FHIR server can misbehave in ways a per-read timeout does not catch (a body trickled a
byte at a time, a gzip bomb, a body without end, JSON nested a thousand levels deep, a
Bundle of a hundred thousand entries). Every query here is bounded by:
- a deadline that covers connecting, the headers, the body and parsing: the body is read
  in chunks with the deadline checked after each, and a `Cancel` lets the hook call shut
  the socket of a query it has given up on, which ends even a blocked read at once;
- a cap on the body, counted after decompression (urllib3 decodes at most one chunk's
  worth at a time, so a bomb never expands past the cap plus one chunk);
- a cap on Bundle entries and a JSON depth limit, checked before any code recurses into it.
Any breach raises QueryFailed with a short reason, which becomes a data-unavailable card.
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import certifi
import orjson
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError
from urllib3.exceptions import TimeoutError as HTTPTimeout
from urllib3.util.retry import Retry

from .json_depth import nesting_within

CHUNK_BYTES = 64 * 1024
RETRY_STATUSES = (502, 503, 504)
# Compressed bodies welcome (gzip, deflate; br and zstd when their decoders are installed):
# urllib3 decodes them chunk by chunk, within the body cap.
ACCEPT_ENCODING = urllib3.make_headers(accept_encoding=True)
# Bodies above this size are parsed one at a time per process: a parsed 10 MiB body can
# take ~100 MiB of Python objects, and seven of them at once would be too many.
LARGE_BODY_BYTES = 1024 * 1024
_large_parse = threading.Lock()


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    max_entries: int
    max_depth: int
    connect_timeout: float
    retries: int


class QueryFailed(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Cancel:
    """The sockets of one query, so that the caller can end it from another thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.cancelled = False

    def watch(self, sock: socket.socket | None) -> None:
        """The socket of the request now in flight (an earlier one may be back in the pool,
        in use by another call: it must not be shut)."""
        with self._lock:
            self._sockets = [sock] if sock is not None else []
            if self.cancelled:
                self._shut_all()

    def done(self) -> None:
        """The response was read to its end; its connection goes back to the pool."""
        with self._lock:
            self._sockets = []

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            self._shut_all()

    def _shut_all(self) -> None:
        for sock in self._sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a recv blocked in another thread
    except OSError:
        pass


_current = threading.local()


def get_json(pool: urllib3.PoolManager, url: str, headers: dict, deadline: float,
             limits: Limits, cancel: Cancel) -> dict:
    """GET url and return its JSON object, within the deadline and limits; else QueryFailed."""
    _current.cancel = cancel
    try:
        for attempt in range(limits.retries + 1):
            body, status = _get_body(pool, url, headers, deadline, limits)
            if status not in RETRY_STATUSES:
                break
        if status != 200:
            raise QueryFailed(f"HTTP {status}")
        return parse_json(body, deadline, limits)
    finally:
        _current.cancel = None


def _get_body(pool: urllib3.PoolManager, url: str, headers: dict, deadline: float,
              limits: Limits) -> tuple[bytes, int]:
    remaining = _remaining(deadline)
    timeout = urllib3.Timeout(connect=min(limits.connect_timeout, remaining), read=remaining)
    try:
        response = pool.urlopen("GET", url, headers=headers, redirect=False,
                                preload_content=False, timeout=timeout)
    except (ValueError, UnicodeError):  # a URL or header the HTTP stack cannot send
        raise QueryFailed("request not sendable") from None
    except HTTPError as error:
        raise QueryFailed(_connection_failure(error)) from None
    try:
        if response.status != 200:
            return b"", response.status  # not read: an error page may be endless too
        body = read_body(response, deadline, limits.max_body_bytes)
        _current.cancel.done()
        return body, 200
    finally:
        # A body read to its end has already put its connection back in the pool; one not
        # read to its end is closed here, never pooled.
        response.close()
        response.release_conn()


def _connection_failure(error: HTTPError) -> str:
    cause = error.reason if isinstance(error, MaxRetryError) else error
    # NewConnectionError (refused, unknown host) is a ConnectTimeoutError only by lineage.
    if isinstance(cause, HTTPTimeout) and not isinstance(cause, NewConnectionError):
        return "timeout"
    return _cancelled_or("connection failed")


def read_body(response: urllib3.BaseHTTPResponse, deadline: float, max_bytes: int) -> bytes:
    """The decompressed body, at most max_bytes, read before the deadline."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise QueryFailed("too large")
    chunks, size = [], 0
    try:
        while True:
            _remaining(deadline)
            chunk = response.read1(CHUNK_BYTES, decode_content=True)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > max_bytes or response.tell() > max_bytes:
                raise QueryFailed("too large")
            chunks.append(chunk)
    except QueryFailed:
        raise
    except Exception:  # noqa: BLE001 - urllib3/zlib errors mid-body, or our own cancel
        raise QueryFailed(_cancelled_or("unreadable")) from None


def parse_json(body: bytes, deadline: float, limits: Limits) -> dict:
    """The body as a JSON object within the depth and entry limits (orjson stops at 1024
    levels; the depth check of the bytes at `limits.max_depth`, before any recursive code
    sees it)."""
    if len(body) > LARGE_BODY_BYTES:
        if not _large_parse.acquire(timeout=_remaining(deadline)):
            raise QueryFailed("timeout")
        try:
            return _parse(body, deadline, limits)
        finally:
            _large_parse.release()
    return _parse(body, deadline, limits)


def _parse(body: bytes, deadline: float, limits: Limits) -> dict:
    try:
        page = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise QueryFailed("unreadable") from None
    if not isinstance(page, dict):
        raise QueryFailed("unreadable")
    entries = page.get("entry")
    if isinstance(entries, list) and len(entries) > limits.max_entries:
        raise QueryFailed("too many entries")
    if not nesting_within(body, limits.max_depth, lambda: _remaining(deadline)):
        raise QueryFailed("nested too deeply")
    return page


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise QueryFailed("timeout")
    return remaining


def _cancelled_or(reason: str) -> str:
    cancel = getattr(_current, "cancel", None)
    return "timeout" if cancel is not None and cancel.cancelled else reason


# -- the connection pools ------------------------------------------------------------------
class _Watched:
    """Hands the socket to the current query's Cancel before waiting for the response."""

    def getresponse(self, *args, **kwargs):
        cancel = getattr(_current, "cancel", None)
        if cancel is not None:
            cancel.watch(self.sock)
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def new_pool(retries: int, pool_size: int) -> urllib3.PoolManager:
    """Connection pools whose connections a Cancel can shut. Connection errors are retried
    by urllib3, 502/503/504 by get_json (urllib3 would drain an error body without limit).
    Certificates are checked against certifi's CA bundle, as requests did; urllib3 takes
    no proxies or credentials from the environment."""
    pools = urllib3.PoolManager(maxsize=pool_size, ca_certs=certifi.where(), retries=Retry(
        total=retries, connect=retries, status=0, read=False, other=0, redirect=0,
        backoff_factor=0, raise_on_status=False, respect_retry_after_header=False,
    ))
    pools.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
    return pools
