"""Serve any WSGI app (the fixture FHIR server, the CDS service) on a free loopback port.

    with serve_wsgi(create_fhir_app(resources), latency=0.2) as served:
        requests.get(f"{served.url}/metadata")
        served.requests  # [LoggedRequest(method, path, query, authorization), ...]

`latency` (seconds, or a function of the WSGI environ) delays every response and can be
changed while serving; the log never drops a request, so tests can assert on what the
service asked for and with which Authorization header.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Union

from werkzeug.serving import WSGIRequestHandler, make_server

Latency = Union[float, Callable[[dict], float]]


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: str
    authorization: str | None


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
                authorization=environ.get("HTTP_AUTHORIZATION")))
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
