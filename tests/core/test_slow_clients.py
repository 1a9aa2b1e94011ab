"""Slow clients never hold the service's workers: `baclofen-cds serve` on its own (gevent
workers) and behind nginx with the shipped config (deploy/nginx/baclofen-cds.conf), 64
connections trickling their headers or body one byte a second, and every ordinary hook
call meanwhile gets its full cards. Its HTTP client waits 10 s: far more than a call
takes, far less than slow clients would hold a worker (they never finish)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.cds_spec import topics
from tests.core.builders import hook_request
from tests.fhir_server_helpers import REPO_ROOT, free_port, serve_cli

SITE_CONFIG = REPO_ROOT / "deploy" / "nginx" / "baclofen-cds.conf"
HOOK = "/cds-services/baclofen-order-sign"
SLOW_CLIENTS = 64
CALL_TIMEOUT = 10


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx)")
    return found


@contextmanager
def nginx_in_front(upstream: str, folder: Path):
    """nginx on a free port with the shipped site config, passing to `upstream`."""
    port = free_port()
    site = SITE_CONFIG.read_text()
    assert "server 127.0.0.1:8080;" in site and "listen 127.0.0.1:8443;" in site
    site = site.replace("server 127.0.0.1:8080;", f"server {upstream};")
    site = site.replace("listen 127.0.0.1:8443;", f"listen 127.0.0.1:{port};")
    (folder / "site.conf").write_text(site)
    temp = "".join(f"{kind}_temp_path {folder / kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (folder / "nginx.conf").write_text(
        f"daemon off;\nworker_processes 1;\nuser root;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} warn;\nevents {{ worker_connections 1024; }}\n"
        f"http {{\naccess_log off;\n{temp}include {folder / 'site.conf'};\n}}\n")
    process = subprocess.Popen([nginx_binary(), "-p", str(folder), "-c", str(folder / "nginx.conf"),
                                "-e", str(folder / "error.log")], stderr=subprocess.PIPE)
    try:
        _wait_listening(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=15)


def _wait_listening(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nginx did not start listening")


def trickle(base: str, headers: bool, stop: threading.Event) -> None:
    """One slow client: its headers, or its body, one byte a second, until stopped or cut."""
    port = int(base.rsplit(":", 1)[1])
    try:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(f"POST {HOOK} HTTP/1.1\r\nHost: x\r\n".encode())
            if not headers:
                sock.sendall(b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            while not stop.wait(1.0):
                sock.sendall(b"X-a: b\r\n" if headers else b" ")
    except OSError:
        pass  # cut off (nginx, or serve's header timeout): what they are there for


def test_slow_clients_do_not_hold_the_service_behind_the_shipped_nginx(tmp_path):
    env = {**os.environ, "BACLOFEN_CDS_SERVER__INSTANCE_PATH": str(tmp_path / "instance")}
    with serve_cli([], tmp_path, env=env) as service, nginx_in_front(service.split("//")[1], tmp_path) as front:
        assert_calls_answered_amid_slow_clients(service, front)


def test_slow_clients_do_not_hold_serve_without_a_proxy(tmp_path):
    """serve's gevent workers: a connection trickling its request holds a greenlet, not a
    worker (gunicorn's thread workers fail this: every thread waits on a slow client)."""
    env = {**os.environ, "BACLOFEN_CDS_SERVER__INSTANCE_PATH": str(tmp_path / "instance")}
    with serve_cli([], tmp_path, env=env) as service:
        assert_calls_answered_amid_slow_clients(service, service)


def assert_calls_answered_amid_slow_clients(service: str, front: str) -> None:
    """With SLOW_CLIENTS trickling to `front`, 20 calls to `front` get the full cards."""
    expected = topics(requests.post(f"{service}{HOOK}", json=hook_request(), timeout=CALL_TIMEOUT).json())
    stop = threading.Event()
    slow = [threading.Thread(target=trickle, args=(front, index % 2 == 0, stop), daemon=True)
            for index in range(SLOW_CLIENTS)]
    for thread in slow:
        thread.start()
    try:
        time.sleep(2)  # every slow client connected and trickling
        for _ in range(20):
            response = requests.post(f"{front}{HOOK}", json=hook_request(), timeout=CALL_TIMEOUT)
            assert response.status_code == 200
            assert topics(response.json()) == expected and expected
    finally:
        stop.set()
