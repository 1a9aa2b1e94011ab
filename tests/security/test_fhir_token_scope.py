"""The EHR's FHIR access token (and the patient id in queries) go only where configuration
allows: `[fhir] allowed_servers`. Local servers record every call they get.

The "evil" server listens on 127.0.0.2 (Linux routes all of 127/8 to loopback), a host
that the allowed patterns do not name.
"""
from __future__ import annotations

import re

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from service.app import create_app

from .conftest import (FHIR_TOKEN, HOOK_PATH, app_config, bearer, fhir_handler,
                       order_sign_body)


@pytest.fixture
def evil_server():
    server = HTTPServer(host="127.0.0.2", port=0)
    server.expect_request(re.compile("^/")).respond_with_handler(fhir_handler)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def app_allowing(tmp_path, jwks_files, patterns: list[str]):
    config = app_config(tmp_path, jwks_files, fhir={"allowed_servers": patterns})
    return create_app(config)


def call_hook(app, token_for, fhir_server: str):
    return app.test_client().post(HOOK_PATH, json=order_sign_body(fhir_server),
                                  headers=bearer(token_for(HOOK_PATH)))


def test_not_allowed_server_gets_no_call_and_the_answer_is_412(
        tmp_path, jwks_files, token_for, fhir_server):
    app = app_allowing(tmp_path, jwks_files, ["https://fhir.hospital.example/*"])
    response = call_hook(app, token_for, f"http://127.0.0.1:{fhir_server.port}/fhir")
    assert response.status_code == 412
    assert fhir_server.log == []


def test_not_allowed_server_is_logged_by_host_only(
        tmp_path, jwks_files, token_for, fhir_server, caplog):
    app = app_allowing(tmp_path, jwks_files, ["https://fhir.hospital.example/*"])
    with caplog.at_level("DEBUG"):
        call_hook(app, token_for, f"http://127.0.0.1:{fhir_server.port}/fhir")
    refused = [r for r in caplog.records if getattr(r, "event", "") == "fhir_server_refused"]
    assert refused and FHIR_TOKEN not in caplog.text


def test_allowed_server_is_called_with_the_token(tmp_path, jwks_files, token_for, fhir_server):
    """Control: with the server allowed, the same call does reach it, token attached."""
    app = app_allowing(tmp_path, jwks_files, [f"http://127.0.0.1:{fhir_server.port}/*"])
    call_hook(app, token_for, f"http://127.0.0.1:{fhir_server.port}/fhir")
    assert fhir_server.log
    assert all(request.headers.get("Authorization") == f"Bearer {FHIR_TOKEN}"
               for request, _ in fhir_server.log)


@pytest.mark.parametrize("make_url", [
    # user-info: the allowed host is only a user name, the real host is the evil one
    lambda evil: f"http://127.0.0.1:80@127.0.0.2:{evil.port}/fhir",
    # a wildcard host pattern must not match across the path
    lambda evil: f"http://127.0.0.2:{evil.port}/x.hospital.example:1/fhir",
], ids=["userinfo", "wildcard-across-path"])
def test_pattern_tricks_do_not_reach_another_host(tmp_path, jwks_files, token_for,
                                                    evil_server, make_url):
    app = app_allowing(tmp_path, jwks_files,
                       ["http://127.0.0.1:*", "http://*.hospital.example:*/*"])
    call_hook(app, token_for, make_url(evil_server))
    assert evil_server.log == [], "the FHIR token went to a host the patterns do not allow"


def redirect_to(target: str):
    def handler(request):
        return Response(status=302, headers={"Location": target + request.path})
    return handler


def test_redirect_from_an_allowed_server_does_not_carry_the_token(
        tmp_path, jwks_files, token_for, httpserver, evil_server):
    httpserver.expect_request(re.compile("^/")).respond_with_handler(
        redirect_to(f"http://127.0.0.2:{evil_server.port}"))
    app = app_allowing(tmp_path, jwks_files, [f"http://127.0.0.1:{httpserver.port}/*"])
    call_hook(app, token_for, f"http://127.0.0.1:{httpserver.port}/fhir")
    assert httpserver.log, "the allowed server was not called: the test proves nothing"
    assert evil_server.log == []


def test_next_page_link_to_another_host_is_not_followed(
        tmp_path, jwks_files, token_for, httpserver, evil_server):
    evil_page = f"http://127.0.0.2:{evil_server.port}/fhir/Medication?page=2"

    def paged(request):
        bundle = {"resourceType": "Bundle", "type": "searchset",
                  "link": [{"relation": "next", "url": evil_page}], "entry": []}
        return Response(__import__("json").dumps(bundle), content_type="application/fhir+json")

    httpserver.expect_request(re.compile("^/")).respond_with_handler(paged)
    app = app_allowing(tmp_path, jwks_files, [f"http://127.0.0.1:{httpserver.port}/*"])
    call_hook(app, token_for, f"http://127.0.0.1:{httpserver.port}/fhir")
    assert httpserver.log
    assert evil_server.log == []
