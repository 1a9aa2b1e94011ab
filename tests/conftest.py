"""Fixtures shared by all tests: an app on a temporary instance folder, a local FHIR server."""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
from hypothesis import settings
from pytest_httpserver import HTTPServer

from service import create_app

# In CI the fuzzers replay the same examples every run, so whether a submission lands does not
# depend on the draw; locally each run draws new ones (and keeps failures in .hypothesis/).
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO_ROOT = Path(__file__).resolve().parents[1]
# Copies of the bodies the CDS Hooks Sandbox sent (shared/cds-hooks/sandbox-requests).
SANDBOX_REQUESTS = REPO_ROOT / "tests" / "data" / "sandbox-requests"


def merged(base: dict, extra: dict) -> dict:
    result = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


@pytest.fixture
def make_app(tmp_path, request):
    """create_app with a private instance folder (SQLite store) plus the given overrides;
    when the test uses the `fhir_server` fixture, its /fhir base is an allowed FHIR server."""
    defaults = {"server": {"instance_path": str(tmp_path / "instance")}}
    if "fhir_server" in request.fixturenames:
        defaults["fhir"] = {"allowed_servers": [request.getfixturevalue("fhir_server").url_for("/fhir")]}

    def build(**overrides):
        config = merged(defaults, overrides)
        app = create_app(config)
        app.testing = True
        return app
    return build


@pytest.fixture
def client(make_app):
    return make_app().test_client()


@pytest.fixture
def fhir_server():
    """A real, threaded HTTP server on loopback; tests register FHIR responses on it."""
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def sandbox_request(name: str) -> dict:
    return json.loads((SANDBOX_REQUESTS / f"{name}.json").read_text())
