"""A newcomer's first hour: every misuse of the command line ends in one clear line and a
non-zero exit, with no traceback and nothing left behind."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from tests.core.builders import hook_request
from tests.fhir_server_helpers import REPO_ROOT, serve_cli

CLI = [sys.executable, "-m", "service.cli"]


def run_cli(arguments: list[str], cwd, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run(CLI + arguments, capture_output=True, text=True, cwd=cwd, env=environ,
                          timeout=60)


def assert_one_clear_line(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("content,named", [
    (b'{"hook": "order-sign",', "not JSON (Expecting"),
    (b"", "not JSON (empty file)"),
    (b"   \n", "not JSON (empty file)"),
    (b'\xff\xfe{"hook": 1}', "not UTF-8"),
    (b'[{"hook": "order-sign"}]', "JSON object, not an array"),
    (b'"order-sign"', "JSON object, not a string"),
])
def test_call_with_an_unusable_file_says_why_in_one_line(tmp_path, content, named):
    path = tmp_path / "request.json"
    path.write_bytes(content)
    result = run_cli(["call", str(path)], cwd=tmp_path)
    assert_one_clear_line(result, "request.json", named)
    assert result.returncode == 2
    assert not (tmp_path / "instance").exists()


def test_call_with_a_missing_file_says_so(tmp_path):
    result = run_cli(["call", "no-such-request.json"], cwd=tmp_path)
    assert_one_clear_line(result, "no-such-request.json", "cannot read")
    assert not (tmp_path / "instance").exists()


def test_call_answers_without_creating_an_instance_folder(tmp_path):
    path = tmp_path / "request.json"
    path.write_text(json.dumps(hook_request()))
    result = run_cli(["call", str(path)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cards"]
    assert list(tmp_path.iterdir()) == [path]
    assert "authentication is OFF" not in result.stderr  # no client in process


@pytest.mark.parametrize("arguments,named", [
    (["--workers", "0"], "--workers"),
    (["--workers", "-2"], "--workers"),
    (["--threads", "0"], "--threads"),
    (["--server", "gevent", "--threads", "4"], "--threads"),
    (["--port", "70000"], "--port"),
    (["--port", "eighty"], "--port"),
])
def test_serve_refuses_counts_that_cannot_serve(tmp_path, arguments, named):
    result = run_cli(["serve", *arguments], cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert named in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "instance").exists()


def test_serve_on_a_port_in_use_says_so_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["serve", "--port", str(port)], cwd=tmp_path)
    assert_one_clear_line(result, f"port {port}", "already in use")


def test_serve_warns_once_and_leaves_no_metrics_folder(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch),
           "BACLOFEN_CDS_SERVER__INSTANCE_PATH": str(tmp_path / "instance")}
    with serve_cli(["--workers", "2"], tmp_path, env=env):
        assert len(list(scratch.glob("baclofen-cds-metrics-*"))) == 1  # in use while serving
    log = "".join(path.read_text() for path in tmp_path.glob("serve-*.log"))
    assert log.count("Booting worker") == 2
    assert log.count("authentication is OFF") == 1, log
    assert list(scratch.glob("baclofen-cds-metrics-*")) == []
