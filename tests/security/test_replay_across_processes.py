"""A jti is accepted once across processes: the real served app (gunicorn), one SQLite store.

Two separate `baclofen-cds serve` processes sharing one store file show it
deterministically; one server with 2 workers hit concurrently shows the claim is atomic.
"""
from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.fhir_server_helpers import serve_cli

from .conftest import FEEDBACK_PATH, ISSUER_A, PUBLIC_URL, bearer, feedback_body

STARTUP_SECONDS = 30


def write_config(folder: Path, jwks_file: Path) -> Path:
    store = folder / "shared-store.sqlite3"
    path = folder / "config.toml"
    path.write_text(f"""
[server]
public_url = "{PUBLIC_URL}"
instance_path = "{folder / 'instance'}"

[store]
url = "sqlite:///{store}"

[[auth.issuers]]
iss = "{ISSUER_A}"
jwks_file = "{jwks_file}"
""")
    return path


def served(config: Path, workers: int):
    """`baclofen-cds serve` in a subprocess with a minimal environment; yields its base URL."""
    return serve_cli(["--config", str(config), "--workers", str(workers), "--threads", "1"],
                     config.parent, env={"PATH": "/usr/bin:/bin", "HOME": str(config.parent)},
                     startup_seconds=STARTUP_SECONDS)


def post_feedback(base: str, token: str) -> int:
    response = requests.post(base + FEEDBACK_PATH, json=feedback_body(), headers={
        **bearer(token), "Connection": "close"}, timeout=10)
    return response.status_code


def post_chunked(base: str, token: str, size: int) -> int:
    """A body with no Content-Length (Transfer-Encoding: chunked) of `size` bytes."""
    def chunks():
        yield b'{"feedback": "'
        for _ in range(size // 65536):
            yield b"x" * 65536
        yield b'"}'
    try:
        response = requests.post(base + FEEDBACK_PATH, data=chunks(), timeout=10, headers={
            **bearer(token), "Content-Type": "application/json", "Connection": "close"})
    except requests.ConnectionError:  # the server may close before reading it all
        return 413
    return response.status_code


def stored_feedback(folder: Path) -> int:
    with sqlite3.connect(folder / "shared-store.sqlite3") as connection:
        return connection.execute("select count(*) from feedback").fetchone()[0]


def test_replay_to_another_process_is_refused(tmp_path, jwks_files, token_for):
    config = write_config(tmp_path, jwks_files["a"])
    with served(config, workers=1) as first, served(config, workers=1) as second:
        token = token_for(FEEDBACK_PATH)
        assert post_feedback(first, token) == 200
        assert post_feedback(second, token) == 401
        assert post_feedback(first, token) == 401
        assert post_feedback(second, token_for(FEEDBACK_PATH)) == 200
        # gunicorn de-chunks bodies: the size limit still holds without a Content-Length
        assert post_chunked(first, token_for(FEEDBACK_PATH), 2 * 1024 * 1024) == 413
    assert stored_feedback(tmp_path) == 2


def test_concurrent_replays_on_two_workers_succeed_once(tmp_path, jwks_files, token_for):
    config = write_config(tmp_path, jwks_files["a"])
    with served(config, workers=2) as base:
        token = token_for(FEEDBACK_PATH)
        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = list(pool.map(lambda _: post_feedback(base, token), range(24)))
    assert sorted(statuses) == [200] + [401] * 23, json.dumps(statuses)
    assert stored_feedback(tmp_path) == 1
