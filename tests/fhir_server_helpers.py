"""Serve any WSGI app (the fixture FHIR server, the CDS service) on a free loopback port,
or run `baclofen-cds serve` itself in a subprocess (`serve_cli`).

    with serve_wsgi(create_fhir_app(resources), latency=0.2) as served:
        requests.get(f"{served.url}/metadata")
        served.requests  # [LoggedRequest(method, path, query, authorization), ...]

`latency` (seconds, or a function of the WSGI environ) delays every response and can be
changed while serving; the log never drops a request, so tests can assert on what the
service asked for and with which Authorization header.
"""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Union

import pytest
import requests
from werkzeug.serving import WSGIRequestHandler, make_server

REPO_ROOT = Path(__file__).resolve().parents[1]

Latency = Union[float, Callable[[dict], float]]


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: str
    authorization: str | None
    traceparent: str | None = None  # W3C trace context, sent when tracing is on


class _QuietHandler(WSGIRequestHandler):
    def log(self, *args, **kwargs) -> None:  # the request log above replaces stderr lines
        pass


class ServedApp:
    """A WSGI app on http://127.0.0.1:<free port> in a background thread (threaded server)."""

    def __init__(self, app, latency: Latency = 0.0):
        self.app = app
        self.latency = latency
        self.requests: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._handle, threaded=True,
                                   request_handler=_QuietHandler)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name=f"served-app-{self.port}")
        self._thread.start()

    def _handle(self, environ, start_response):
        with self._lock:
            self.requests.append(LoggedRequest(
                method=environ["REQUEST_METHOD"], path=environ.get("PATH_INFO", ""),
                query=environ.get("QUERY_STRING", ""),
                authorization=environ.get("HTTP_AUTHORIZATION"),
                traceparent=environ.get("HTTP_TRACEPARENT")))
        delay = self.latency(environ) if callable(self.latency) else self.latency
        if delay:
            time.sleep(delay)
        return self.app(environ, start_response)

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "ServedApp":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def serve_wsgi(app, latency: Latency = 0.0) -> ServedApp:
    return ServedApp(app, latency)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServeFailed(AssertionError):
    """`baclofen-cds serve` exited or did not answer /healthz; the message ends with its log."""


@contextmanager
def serve_cli(arguments: list[str], folder: Path, env: dict | None = None,
              startup_seconds: float = 60.0) -> Iterator[str]:
    """`baclofen-cds serve <arguments>` on 127.0.0.1 and a free port, logging to
    folder/serve-<port>.log; yields its base URL, and stops it (by its own pid) on exit."""
    port = free_port()
    log = folder / f"serve-{port}.log"
    command = [sys.executable, "-m", "service.cli", "serve", *arguments,
               "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as log_file:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, process, log, startup_seconds)
        yield base
    finally:
        process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(base: str, process: subprocess.Popen, log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServeFailed(f"serve exited: {log.read_text()[-2000:]}")
        try:
            if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # not listening, or still starting
            time.sleep(0.1)
    raise ServeFailed(f"serve did not answer /healthz in {seconds} s: {log.read_text()[-2000:]}")


def wait_until(condition, what: str, seconds: float = 10.0, step=None) -> None:
    """Poll until `condition()` holds; fail the test naming `what` after a generous bound.
    A bound on waiting, not a timing assertion (how fast is bench/'s business)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        if step:
            step()
        else:
            time.sleep(0.02)
