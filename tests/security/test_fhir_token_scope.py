"""The EHR's FHIR access token (and the patient id in queries) go only to allowed FHIR
servers: `[fhir] allowed_servers` and the calling issuer's `fhir_servers`, compared on the
parsed URL; every query and `next` link stays within the server the call named.

The service runs on a real HTTP server (serve_wsgi); the FHIR servers are real local
servers that record every call. The "evil" server listens on 127.0.0.2 (Linux routes all
of 127/8 to loopback), a host no configuration names.
"""
from __future__ import annotations

import json
import re

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Response

from service.app import create_app
from tests.fhir_server_helpers import serve_wsgi

from .conftest import (FHIR_TOKEN, HOOK_PATH, ISSUER_A, ISSUER_B, PUBLIC_URL, app_config, bearer,
                       claims_for, fhir_base, fhir_handler, medication_resource, order_sign_body,
                       sign)


@pytest.fixture
def evil_server():
    server = HTTPServer(host="127.0.0.2", port=0)
    server.expect_request(re.compile("^/")).respond_with_handler(fhir_handler)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def served(tmp_path, jwks_files, *, allowed=(), issuer_a_servers=()):
    config = app_config(tmp_path, jwks_files, fhir={"allowed_servers": list(allowed)})
    if jwks_files is not None:
        config["auth"]["issuers"][0]["fhir_servers"] = list(issuer_a_servers)
    return serve_wsgi(create_app(config))


def call_hook(app, keys, fhir_server: str, issuer: str = ISSUER_A, body: dict | None = None):
    """POST an order-sign call naming `fhir_server` to the served app, as `issuer`."""
    key = keys["a_es384"] if issuer == ISSUER_A else keys["b_es384"]
    token = sign(claims_for(PUBLIC_URL + HOOK_PATH, issuer), key)
    return requests.post(app.url + HOOK_PATH, json=body or order_sign_body(fhir_server),
                         headers=bearer(token), timeout=15)


def paths_called(server) -> list[str]:
    return [request.path for request, _ in server.log]


def test_allowed_server_is_called_with_the_token(tmp_path, jwks_files, keys, fhir_server):
    """Control: with the server allowed for issuer A, the call does reach it, token attached."""
    with served(tmp_path, jwks_files, issuer_a_servers=[fhir_base(fhir_server)]) as app:
        response = call_hook(app, keys, fhir_base(fhir_server))
    assert response.status_code == 200
    assert fhir_server.log
    assert all(request.headers.get("Authorization") == f"Bearer {FHIR_TOKEN}"
               for request, _ in fhir_server.log)


def test_not_allowed_server_gets_no_call_and_the_answer_is_412(tmp_path, jwks_files, keys,
                                                               fhir_server):
    with served(tmp_path, jwks_files, allowed=["https://fhir.hospital.example/r4"]) as app:
        response = call_hook(app, keys, fhir_base(fhir_server))
    assert response.status_code == 412
    assert response.json()["field"] == "fhirServer"
    assert fhir_server.log == []


def test_not_allowed_server_is_logged_by_host_only(tmp_path, jwks_files, keys, fhir_server, caplog):
    with served(tmp_path, jwks_files) as app, caplog.at_level("DEBUG"):
        call_hook(app, keys, fhir_base(fhir_server))
    refused = [r for r in caplog.records if getattr(r, "event", "") == "fhir_server_refused"]
    assert refused and FHIR_TOKEN not in caplog.text


def test_another_issuers_server_is_refused(tmp_path, jwks_files, keys, fhir_server):
    """Issuer B's calls may not name the FHIR server configured for issuer A."""
    with served(tmp_path, jwks_files, issuer_a_servers=[fhir_base(fhir_server)]) as app:
        response = call_hook(app, keys, fhir_base(fhir_server), issuer=ISSUER_B)
    assert response.status_code == 412
    assert fhir_server.log == []


def test_unauthenticated_default_allows_no_loopback_port(tmp_path, evil_server):
    """The old default let any caller send a token of its choosing to any loopback port."""
    with served(tmp_path, None) as app:
        for url in (f"http://127.0.0.2:{evil_server.port}/fhir",
                    f"http://localhost:{evil_server.port}/fhir", f"{app.url}/admin"):
            response = requests.post(app.url + HOOK_PATH, json=order_sign_body(url), timeout=15)
            assert response.status_code == 412, url
        assert [request.path for request in app.requests] == [HOOK_PATH] * 3
    assert evil_server.log == []


@pytest.mark.parametrize("make_url", [
    lambda base: base + "/../admin",                # dot segments, normalised by requests
    lambda base: base + "/%2e%2e/admin",            # the same, percent-encoded
    lambda base: base + "/.%2E/admin",
    lambda base: base + "/./../admin",
    lambda base: base + "%2F..%2Fadmin",            # an encoded slash
    lambda base: base + "?/admin",                  # a query: the queries land in it
    lambda base: base + "#/admin",                  # a fragment: the queries vanish
    lambda base: base + "-admin",                   # a prefix that is not a path segment
    lambda base: base.replace("http://", "http://127.0.0.1:1@"),    # user-info
    lambda base: base.replace("/fhir", "\\@127.0.0.2/fhir"),       # a backslash
    lambda base: base.replace("http://", "ftp://"),
], ids=["dotdot", "encoded-dotdot", "mixed-dotdot", "dot", "encoded-slash", "query",
        "fragment", "segment-prefix", "userinfo", "backslash", "scheme"])
def test_steered_fhir_server_is_refused(tmp_path, jwks_files, keys, fhir_server, make_url):
    base = fhir_base(fhir_server)
    with served(tmp_path, jwks_files, issuer_a_servers=[base]) as app:
        response = call_hook(app, keys, make_url(base))
    # 400 when the request check already refuses the URL (not an http(s) URI), else 412
    assert response.status_code in (400, 412)
    assert fhir_server.log == [], "the FHIR token went to a path or host not allowed"


def test_userinfo_does_not_reach_another_host(tmp_path, jwks_files, keys, fhir_server, evil_server):
    allowed = f"http://127.0.0.1:{fhir_server.port}/fhir"
    with served(tmp_path, jwks_files, issuer_a_servers=[allowed]) as app:
        call_hook(app, keys, f"http://127.0.0.1:{fhir_server.port}@127.0.0.2:{evil_server.port}/fhir")
    assert evil_server.log == []


def test_medication_reference_cannot_leave_the_fhir_server(tmp_path, jwks_files, keys, fhir_server):
    """A draft naming `Medication/../../admin` would send the token to /admin."""
    base = fhir_base(fhir_server)
    body = order_sign_body(base)
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["medicationReference"] = {"reference": "Medication/../../admin"}
    with served(tmp_path, jwks_files, issuer_a_servers=[base]) as app:
        call_hook(app, keys, base, body=body)
    assert all(path.startswith("/fhir/") for path in paths_called(fhir_server)), \
        paths_called(fhir_server)


def redirect_to(target: str):
    def handler(request):
        return Response(status=302, headers={"Location": target + request.path})
    return handler


def test_redirect_from_an_allowed_server_does_not_carry_the_token(
        tmp_path, jwks_files, keys, httpserver, evil_server):
    httpserver.expect_request(re.compile("^/")).respond_with_handler(
        redirect_to(f"http://127.0.0.2:{evil_server.port}"))
    with served(tmp_path, jwks_files, issuer_a_servers=[fhir_base(httpserver)]) as app:
        call_hook(app, keys, fhir_base(httpserver))
    assert httpserver.log, "the allowed server was not called: the test proves nothing"
    assert evil_server.log == []


def paged_to(next_url):
    """Searches answer one page whose `next` link is next_url(request); reads as usual."""
    def handler(request):
        if "/Medication/" in request.path or request.path.endswith("/metadata"):
            return fhir_handler(request)
        bundle = {"resourceType": "Bundle", "type": "searchset",
                  "link": [{"relation": "next", "url": next_url(request)}], "entry": []}
        return Response(json.dumps(bundle), content_type="application/fhir+json")
    return handler


def unavailable_topics(response) -> set[str]:
    return {card["source"]["topic"]["code"] for card in response.json()["cards"]
            if card["source"]["topic"]["code"] == "data-unavailable"}


def test_next_page_link_to_another_host_is_not_followed(
        tmp_path, jwks_files, keys, httpserver, evil_server):
    evil_page = f"http://127.0.0.2:{evil_server.port}/fhir/Medication?page=2"
    httpserver.expect_request(re.compile("^/")).respond_with_handler(paged_to(lambda _: evil_page))
    with served(tmp_path, jwks_files, issuer_a_servers=[fhir_base(httpserver)]) as app:
        response = call_hook(app, keys, fhir_base(httpserver))
    assert httpserver.log
    assert evil_server.log == []
    assert unavailable_topics(response), "a refused next page must make the data unavailable"


@pytest.mark.parametrize("escape", ["/../admin/secret", "/%2E%2E/admin/secret"])
def test_next_page_link_escaping_the_base_path_is_not_followed(
        tmp_path, jwks_files, keys, httpserver, escape):
    base = fhir_base(httpserver)
    httpserver.expect_request(re.compile("^/")).respond_with_handler(
        paged_to(lambda _: base + escape))
    with served(tmp_path, jwks_files, issuer_a_servers=[base]) as app:
        response = call_hook(app, keys, base)
    assert response.status_code == 200
    assert paths_called(httpserver)
    assert all(path.startswith("/fhir/") for path in paths_called(httpserver)), \
        paths_called(httpserver)
    assert unavailable_topics(response)


def test_next_page_link_on_the_base_itself_is_followed(tmp_path, jwks_files, keys, httpserver):
    """Control: HAPI's `<base>?_getpages=...` links stay on the server and are followed."""
    base = fhir_base(httpserver)
    pages = []

    def next_url(request):
        pages.append(request.full_path)
        return f"{base}?_getpages=x{len(pages)}"

    httpserver.expect_request(re.compile("^/")).respond_with_handler(paged_to(next_url))
    with served(tmp_path, jwks_files, issuer_a_servers=[base]) as app:
        call_hook(app, keys, base)
    followed = [request for request, _ in httpserver.log if "_getpages" in request.full_path]
    assert followed and all(r.headers.get("Authorization") == f"Bearer {FHIR_TOKEN}"
                            for r in followed)


@pytest.mark.parametrize("escape", ["/../admin/page-2", "/%2e%2e/admin/page-2"])
def test_paged_prefetch_escaping_the_base_is_not_followed_and_is_unavailable(
        tmp_path, jwks_files, keys, fhir_server, escape):
    """A prefetch Bundle's `next` link is checked like a fetched one; the data it would
    have completed counts as unavailable, not as complete."""
    base = fhir_base(fhir_server)
    body = order_sign_body(base)
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft.pop("medicationReference")
    draft["medicationCodeableConcept"] = {"coding": [medication_resource()["code"]["coding"][0]]}
    body["prefetch"] = {"meds": {"resourceType": "Bundle", "type": "searchset", "entry": [],
                                        "link": [{"relation": "next", "url": base + escape}]}}
    with served(tmp_path, jwks_files, issuer_a_servers=[base]) as app:
        response = call_hook(app, keys, base, body=body)
    assert response.status_code == 200
    assert all(path.startswith("/fhir/") for path in paths_called(fhir_server)), \
        paths_called(fhir_server)
    assert unavailable_topics(response)
