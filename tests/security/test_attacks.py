"""The attack matrix against the real app: each forged call is a bare 401 and nothing runs.

"Nothing processed" is checked without spies: the store holds no feedback and no cards,
and the local FHIR server named in the hook call was never contacted.
"""
from __future__ import annotations

import time

import pytest

from service.app import create_app

from .conftest import (FEEDBACK_PATH, HOOK_PATH, ISSUER_A, ISSUER_B, PUBLIC_URL, app_config,
                       b64_json, bearer, claims_for, feedback_body, fhir_base, new_key,
                       order_sign_body, sign)
from .test_verifier import hs256_with_public_key

DISCOVERY_PATH = "/cds-services"


def _no_header(keys, path):
    return {}


def _not_bearer(keys, path):
    return {"Authorization": "Basic dXNlcjpwYXNz"}


def _alg_none(keys, path):
    header = {"alg": "none", "typ": "JWT", "kid": keys["a_es384"].kid}
    return bearer(f"{b64_json(header)}.{b64_json(claims_for(PUBLIC_URL + path))}.")


def _hs256_public_key_secret(keys, path):
    return bearer(hs256_with_public_key(keys["a_es384"], claims_for(PUBLIC_URL + path)))


def _unknown_kid(keys, path):
    return bearer(sign(claims_for(PUBLIC_URL + path), new_key("ES384")))


def _tampered_payload(keys, path):
    header, _, signature = sign(claims_for(PUBLIC_URL + path), keys["a_es384"]).split(".")
    return bearer(f"{header}.{b64_json(claims_for(PUBLIC_URL + path))}.{signature}")


def _expired(keys, path):
    past = int(time.time()) - 3600
    return bearer(sign(claims_for(PUBLIC_URL + path, iat=past, exp=past + 300), keys["a_es384"]))


def _iat_in_future(keys, path):
    future = int(time.time()) + 600
    return bearer(sign(claims_for(PUBLIC_URL + path, iat=future, exp=future + 300),
                       keys["a_es384"]))


def _wrong_aud(keys, path):
    return bearer(sign(claims_for("https://other-cds.example" + path), keys["a_es384"]))


def _aud_of_another_endpoint(keys, path):
    return bearer(sign(claims_for(PUBLIC_URL + path + "-x"), keys["a_es384"]))


def _unknown_iss(keys, path):
    return bearer(sign(claims_for(PUBLIC_URL + path, issuer="https://evil.example"),
                       keys["a_es384"]))


def _jku_not_allowed(keys, path):
    return bearer(sign(claims_for(PUBLIC_URL + path), keys["a_es384"],
                       jku="https://evil.example/jwks.json"))


def _issuer_a_signed_by_b(keys, path):
    return bearer(sign(claims_for(PUBLIC_URL + path, issuer=ISSUER_A), keys["b_es384"]))


def _issuer_a_signed_by_b_under_a_kid(keys, path):
    return bearer(sign(claims_for(PUBLIC_URL + path, issuer=ISSUER_A), keys["b_es384"],
                       kid=keys["a_es384"].kid))


def _no_jti(keys, path):
    return bearer(sign(claims_for(PUBLIC_URL + path, jti=None), keys["a_es384"]))


def _lifetime_too_long(keys, path):
    now = int(time.time())
    return bearer(sign(claims_for(PUBLIC_URL + path, exp=now + 30 * 86400), keys["a_es384"]))


ATTACKS = [_no_header, _not_bearer, _alg_none, _hs256_public_key_secret, _unknown_kid,
           _tampered_payload, _expired, _iat_in_future, _wrong_aud, _aud_of_another_endpoint,
           _unknown_iss, _jku_not_allowed, _issuer_a_signed_by_b,
           _issuer_a_signed_by_b_under_a_kid, _no_jti, _lifetime_too_long]
ATTACK_IDS = [attack.__name__.strip("_") for attack in ATTACKS]


def store_counts(app) -> dict:
    return app.extensions["baclofen_cds"].store.counts()


def assert_bare_401(response) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json() == {"error": "unauthorized"}


@pytest.mark.parametrize("attack", ATTACKS, ids=ATTACK_IDS)
def test_hook_call_is_refused_and_nothing_runs(client, secure_app, keys, fhir_server, attack):
    body = order_sign_body(fhir_base(fhir_server))
    assert_bare_401(client.post(HOOK_PATH, json=body, headers=attack(keys, HOOK_PATH)))
    assert fhir_server.log == []
    assert store_counts(secure_app)["cards"] == 0


@pytest.mark.parametrize("attack", ATTACKS, ids=ATTACK_IDS)
def test_feedback_is_refused_and_not_stored(client, secure_app, keys, attack):
    response = client.post(FEEDBACK_PATH, json=feedback_body(),
                           headers=attack(keys, FEEDBACK_PATH))
    assert_bare_401(response)
    assert store_counts(secure_app)["feedback"] == 0


@pytest.mark.parametrize("attack", ATTACKS, ids=ATTACK_IDS)
def test_discovery_is_refused(client, keys, attack):
    response = client.get(DISCOVERY_PATH, headers=attack(keys, DISCOVERY_PATH))
    assert_bare_401(response)
    assert "services" not in response.get_data(as_text=True)


def test_replayed_jti_is_refused_and_not_processed_twice(client, secure_app, token_for):
    headers = bearer(token_for(FEEDBACK_PATH))
    assert client.post(FEEDBACK_PATH, json=feedback_body(), headers=headers).status_code == 200
    assert_bare_401(client.post(FEEDBACK_PATH, json=feedback_body(), headers=headers))
    assert store_counts(secure_app)["feedback"] == 1


def test_token_for_discovery_cannot_be_used_on_a_hook(client, token_for):
    token = token_for(DISCOVERY_PATH)
    assert_bare_401(client.post(HOOK_PATH, json=order_sign_body(), headers=bearer(token)))


def test_unknown_service_is_401_before_404(client):
    assert_bare_401(client.post("/cds-services/no-such-service", json={}))


@pytest.mark.parametrize("key", ["a_es384", "a_rs384"])
def test_valid_tokens_pass_on_every_endpoint(client, secure_app, token_for, key):
    assert client.get(DISCOVERY_PATH, headers=bearer(token_for(DISCOVERY_PATH, key))
                      ).status_code == 200
    response = client.post(HOOK_PATH, json=order_sign_body(),
                           headers=bearer(token_for(HOOK_PATH, key)))
    # Authenticated, then processed: no prefetch and no fhirServer, so data is missing.
    assert response.status_code == 412
    response = client.post(FEEDBACK_PATH, json=feedback_body(),
                           headers=bearer(token_for(FEEDBACK_PATH, key)))
    assert response.status_code == 200
    assert store_counts(secure_app)["feedback"] == 1


def test_issuer_b_with_its_own_key_passes(client, keys):
    token = sign(claims_for(PUBLIC_URL + DISCOVERY_PATH, issuer=ISSUER_B), keys["b_es384"])
    assert client.get(DISCOVERY_PATH, headers=bearer(token)).status_code == 200


def test_valid_hook_call_does_reach_the_fhir_server(client, token_for, fhir_server):
    """Control for the matrix: the same call with a good token does fetch from the server."""
    body = order_sign_body(fhir_base(fhir_server))
    response = client.post(HOOK_PATH, json=body, headers=bearer(token_for(HOOK_PATH)))
    assert response.status_code == 200
    assert fhir_server.log, "the hook did not query the FHIR server: the matrix proves nothing"


def test_cors_preflight_is_not_authenticated(client):
    response = client.options(HOOK_PATH, headers={
        "Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert response.status_code in (200, 204)


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json"])
def test_non_cds_endpoints_need_no_token(client, path):
    assert client.get(path).status_code != 401


def test_without_issuers_the_app_runs_unauthenticated(tmp_path):
    client = create_app(app_config(tmp_path, None)).test_client()
    assert client.get(DISCOVERY_PATH).status_code == 200
