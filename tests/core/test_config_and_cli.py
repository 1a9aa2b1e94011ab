"""Configuration validated once at start-up; the command line: serve, call, rules."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from service.config import ConfigError, load_config
from tests.cds_spec import assert_valid_response
from tests.conftest import SANDBOX_REQUESTS
from tests.core.builders import hook_request
from tests.fhir_server_helpers import serve_cli

CLI = [sys.executable, "-m", "service.cli"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_are_documented_values():
    config = load_config(environ={})
    assert config.server.max_body_bytes == 1024 * 1024
    assert config.fhir.total_timeout < 3
    assert config.store.url == ""


def test_toml_file_and_environment_are_merged(tmp_path):
    path = write(tmp_path, "[fhir]\ntotal_timeout = 2.0\nretries = 0\n")
    config = load_config(path, environ={"BACLOFEN_CDS_FHIR__TOTAL_TIMEOUT": "1.5"})
    assert config.fhir.total_timeout == 1.5  # the environment wins over the file
    assert config.fhir.retries == 0


@pytest.mark.parametrize("text,named", [
    ("[fhir]\ntotal_timout = 2\n", "fhir.total_timout: unknown key"),
    ("[fhir]\ntotal_timeout = 'soon'\n", "fhir.total_timeout"),
    ("[fhir]\ntotal_timeout = -1\n", "fhir.total_timeout"),
    ("[servr]\nport = 1\n", "servr: unknown key"),
    ("[[auth.issuers]]\niss = 'https://x'\n", "auth.issuers.0"),
    ("[auth]\nalgorithms = ['HS256']\n", "HS256"),
    ("[fhir\n", "config.toml"),
])
def test_a_wrong_key_or_value_names_it(tmp_path, text, named):
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, text), environ={})
    assert named in str(raised.value)


def test_a_wrong_environment_variable_names_it():
    with pytest.raises(ConfigError, match="server.max_body_bytes"):
        load_config(environ={"BACLOFEN_CDS_SERVER__MAX_BODY_BYTES": "lots"})


def test_a_bad_knowledge_override_stops_start_up(tmp_path):
    result = subprocess.run(CLI + ["rules", "--config", str(write(tmp_path, "[knowledge]\nno_such_section = 1\n"))],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "knowledge" in result.stderr and "no_such_section" in result.stderr


def test_serve_refuses_a_bad_config_with_its_name(tmp_path):
    result = subprocess.run(CLI + ["serve", "--config", str(write(tmp_path, "[fhir]\nretries = 9\n"))],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "fhir.retries" in result.stderr


def test_call_answers_a_request_file_in_process(tmp_path):
    path = tmp_path / "request.json"
    path.write_text(json.dumps(hook_request()))
    result = subprocess.run(CLI + ["call", str(path)], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert_valid_response(body)
    assert body["cards"]


def test_call_prints_the_error_of_a_bad_request(tmp_path):
    path = tmp_path / "request.json"
    body = hook_request()
    del body["hookInstance"]
    path.write_text(json.dumps(body))
    result = subprocess.run(CLI + ["call", str(path)], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 1 and json.loads(result.stdout)["field"] == "hookInstance"


def test_serve_runs_under_gunicorn_and_answers_the_sandbox(tmp_path):
    env = {**os.environ, "BACLOFEN_CDS_SERVER__INSTANCE_PATH": str(tmp_path / "instance")}
    with serve_cli(["--workers", "2"], tmp_path, env=env) as base:
        assert len(requests.get(f"{base}/cds-services").json()["services"]) == 4
        body = json.loads((SANDBOX_REQUESTS / "order-select-nomed.json").read_text())
        response = requests.post(f"{base}/cds-services/baclofen-order-select", json=body, timeout=10)
        assert response.status_code == 200 and response.json() == {"cards": []}
        response = requests.post(f"{base}/cds-services/baclofen-order-sign", json=hook_request(), timeout=10)
        assert response.status_code == 200 and response.json()["cards"]
        chunks = (b" " * 65536 for _ in range(20))  # 1.25 MiB, chunked: no Content-Length
        response = requests.post(f"{base}/cds-services/baclofen-order-sign", data=chunks, timeout=10,
                                 headers={"Content-Type": "application/json"})
        assert response.status_code == 413 and "error" in response.json()
    log = "".join(path.read_text() for path in tmp_path.glob("serve-*.log"))
    assert log.count("Booting worker") == 2  # gunicorn, not Flask's development server


def test_rules_command_prints_docs_rules_md(tmp_path):
    result = subprocess.run(CLI + ["rules"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (Path(__file__).resolve().parents[2] / "docs" / "rules.md").read_text()


def test_rules_command_shows_a_site_override(tmp_path):
    config = write(tmp_path, "[knowledge.renal]\navoid_below_egfr = 25\n")
    result = subprocess.run(CLI + ["rules", "--config", str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "eGFR < 25" in result.stdout
