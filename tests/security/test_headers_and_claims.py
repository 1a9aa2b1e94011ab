"""On the served app: every HTML page carries the browser hardening headers, and the JWT time
claims must be JSON numbers (RFC 7519 NumericDate), not numeric strings."""
from __future__ import annotations

import time

import pytest
import requests

from service.app import create_app
from tests.fhir_server_helpers import serve_wsgi

from .conftest import PUBLIC_URL, app_config, bearer, claims_for, sign

DISCOVERY_PATH = "/cds-services"


@pytest.mark.parametrize("path", ["/demo", "/demo/", "/demo/rules"])
def test_html_pages_carry_the_security_headers(served_demo, path):
    response = requests.get(served_demo.url + path, timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json", "/demo/static/demo.js"])
def test_other_responses_say_nosniff(served_demo, path):
    response = requests.get(served_demo.url + path, timeout=10)
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.fixture(scope="module")
def served_secure(tmp_path_factory, jwks_files):
    app = create_app(app_config(tmp_path_factory.mktemp("claims"), jwks_files))
    with serve_wsgi(app) as http:
        yield http


def discovery_status(served, keys, **claims) -> int:
    token = sign(claims_for(PUBLIC_URL + DISCOVERY_PATH, **claims), keys["a_es384"])
    return requests.get(served.url + DISCOVERY_PATH, headers=bearer(token), timeout=10).status_code


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
def test_time_claim_as_a_numeric_string_is_refused(served_secure, keys, claim):
    now = int(time.time())
    value = {"exp": now + 300, "iat": now, "nbf": now - 5}[claim]
    assert discovery_status(served_secure, keys, **{claim: str(value)}) == 401


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
def test_time_claim_as_a_boolean_is_refused(served_secure, keys, claim):
    assert discovery_status(served_secure, keys, **{claim: True}) == 401


def test_numeric_time_claims_pass(served_secure, keys):
    """Control: the same tokens with numbers (nbf included, exp fractional) are accepted."""
    now = time.time()
    assert discovery_status(served_secure, keys, exp=now + 300.5, iat=int(now),
                            nbf=int(now) - 5) == 200
