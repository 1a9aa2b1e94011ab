"""The JWT verifier on its own: every forged, stale or misdirected token is refused."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from datetime import datetime, timezone

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from service.auth import (AuthFailure, Verifier, bearer_token, claim_token,
                          is_cds_endpoint, parse_jwks)
from service.config import AuthConfig, ConfigError

from .conftest import ISSUER_A, ISSUER_B, auth_config, b64, b64_json, claims_for, new_key, sign

AUDIENCE = "https://cds.example.org/cds-services/baclofen-order-sign"


@pytest.fixture
def verifier(jwks_files) -> Verifier:
    verifier = Verifier(AuthConfig(**auth_config(jwks_files)))
    verifier.load_key_files()
    return verifier


class MemoryJtiStore:
    """The store's claim_jti contract, in memory, for unit tests of the verifier."""

    def __init__(self) -> None:
        self._seen: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def claim_jti(self, jti: str, expires_at: datetime) -> bool:
        now = datetime.now(timezone.utc)
        with self._lock:
            self._seen = {key: until for key, until in self._seen.items() if until > now}
            if jti in self._seen:
                return False
            self._seen[jti] = expires_at
            return True


def refused(verifier: Verifier, token: str, audience: str = AUDIENCE) -> str:
    with pytest.raises(AuthFailure) as failure:
        verifier.verify(token, audience)
    return failure.value.reason


@pytest.mark.parametrize("key", ["a_es384", "a_rs384"])
def test_valid_es384_and_rs384_tokens_pass(verifier, keys, key):
    claims = verifier.verify(sign(claims_for(AUDIENCE), keys[key]), AUDIENCE)
    assert claims["iss"] == ISSUER_A


def test_audience_may_be_a_list_containing_the_url(verifier, keys):
    token = sign(claims_for([AUDIENCE, "https://other.example"]), keys["a_es384"])
    assert verifier.verify(token, AUDIENCE)["aud"][0] == AUDIENCE


def test_alg_none_is_refused(verifier, keys):
    header = {"alg": "none", "typ": "JWT", "kid": keys["a_es384"].kid}
    token = f"{b64_json(header)}.{b64_json(claims_for(AUDIENCE))}."
    assert refused(verifier, token).startswith("algorithm not allowed")


def hs256_with_public_key(key, claims: dict) -> str:
    """The classic key-confusion forgery: HMAC keyed with the issuer's public key PEM."""
    secret = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{b64_json({'alg': 'HS256', 'typ': 'JWT', 'kid': key.kid})}.{b64_json(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


@pytest.mark.parametrize("key", ["a_es384", "a_rs384"])
def test_hs256_signed_with_the_public_key_is_refused(verifier, keys, key):
    token = hs256_with_public_key(keys[key], claims_for(AUDIENCE))
    assert refused(verifier, token).startswith("algorithm not allowed")


def test_hmac_is_refused_even_when_configured_by_hand(jwks_files, keys):
    # The config model forbids HS*; a hand-built config still never yields an HMAC check.
    auth = AuthConfig.model_construct(**{**AuthConfig(**auth_config(jwks_files)).__dict__,
                                         "algorithms": ["HS256", "none", "ES384"]})
    verifier = Verifier(auth)
    assert verifier.algorithms == ["ES384"]
    assert refused(verifier, hs256_with_public_key(keys["a_es384"], claims_for(AUDIENCE)))


def test_config_rejects_none_and_hmac():
    for algorithms in (["none"], ["HS256"], ["ES384", "HS512"]):
        with pytest.raises(ValueError):
            AuthConfig(algorithms=algorithms)


def test_es256_only_when_configured(jwks_files, keys):
    token = sign(claims_for(AUDIENCE), keys["a_es256"])
    assert refused(Verifier(AuthConfig(**auth_config(jwks_files))), token).startswith("algorithm")
    allowing = Verifier(AuthConfig(**auth_config(jwks_files, algorithms=["ES384", "ES256"])))
    assert allowing.verify(token, AUDIENCE)["iss"] == ISSUER_A


def test_unknown_kid_is_refused(verifier):
    stranger = new_key("ES384")
    assert refused(verifier, sign(claims_for(AUDIENCE), stranger)) == "unknown kid"


def test_missing_kid_is_refused(verifier, keys):
    token = jwt.encode(claims_for(AUDIENCE), keys["a_es384"].private, algorithm="ES384")
    assert refused(verifier, token) == "missing kid"


def test_tampered_payload_is_refused(verifier, keys):
    header, _, signature = sign(claims_for(AUDIENCE), keys["a_es384"]).split(".")
    forged = b64_json(claims_for(AUDIENCE, jti="another", tenant="admin"))
    assert refused(verifier, f"{header}.{forged}.{signature}") == "bad signature"


def test_expired_token_is_refused(verifier, keys):
    past = int(time.time()) - 3600
    token = sign(claims_for(AUDIENCE, iat=past, exp=past + 300), keys["a_es384"])
    assert refused(verifier, token) == "expired"


def test_expiry_within_leeway_is_accepted(verifier, keys):
    now = int(time.time())
    token = sign(claims_for(AUDIENCE, iat=now - 300, exp=now - 10), keys["a_es384"])
    assert verifier.verify(token, AUDIENCE)


def test_iat_in_the_future_is_refused(verifier, keys):
    future = int(time.time()) + 600
    token = sign(claims_for(AUDIENCE, iat=future, exp=future + 300), keys["a_es384"])
    assert refused(verifier, token) == "issued in the future"


@pytest.mark.parametrize("audience", [
    "https://cds.example.org/cds-services/other-service",
    "https://evil.example/cds-services/baclofen-order-sign",
    "https://cds.example.org/cds-services",
])
def test_wrong_audience_is_refused(verifier, keys, audience):
    assert refused(verifier, sign(claims_for(audience), keys["a_es384"])) == "wrong audience"


def test_unknown_issuer_is_refused(verifier, keys):
    token = sign(claims_for(AUDIENCE, issuer="https://evil.example"), keys["a_es384"])
    assert refused(verifier, token) == "unknown issuer"


def test_issuer_a_token_signed_with_issuer_b_key_is_refused(verifier, keys):
    # B's kid is not in A's key set ...
    assert refused(verifier, sign(claims_for(AUDIENCE, issuer=ISSUER_A), keys["b_es384"])) \
        == "unknown kid"
    # ... and B's key under A's kid does not verify.
    token = sign(claims_for(AUDIENCE, issuer=ISSUER_A), keys["b_es384"], kid=keys["a_es384"].kid)
    assert refused(verifier, token) == "bad signature"


def test_issuer_b_token_with_its_own_key_passes(verifier, keys):
    token = sign(claims_for(AUDIENCE, issuer=ISSUER_B), keys["b_es384"])
    assert verifier.verify(token, AUDIENCE)["iss"] == ISSUER_B


@pytest.mark.parametrize("claim", ["iss", "aud", "exp", "iat", "jti"])
def test_every_required_claim_must_be_present(verifier, keys, claim):
    token = sign(claims_for(AUDIENCE, **{claim: None}), keys["a_es384"])
    assert refused(verifier, token)


@pytest.mark.parametrize("jti", ["", "x" * 257, 12345])
def test_jti_must_be_a_reasonable_string(verifier, keys, jti):
    assert refused(verifier, sign(claims_for(AUDIENCE, jti=jti), keys["a_es384"]))


def test_algorithm_must_fit_the_key(verifier, keys):
    # An RSA key's kid in a header that says ES384: never tried as EC.
    token = sign(claims_for(AUDIENCE), keys["a_es384"], kid=keys["a_rs384"].kid)
    assert refused(verifier, token) == "algorithm does not match key"


def test_jku_not_allow_listed_is_refused(verifier, keys):
    token = sign(claims_for(AUDIENCE), keys["a_es384"], jku="https://evil.example/jwks.json")
    assert refused(verifier, token) == "jku not allowed"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "a.b", "." * 3, "x" * 20000,
                                   b64_json({"alg": "ES384"}) + ".bm90anNvbg.sig"])
def test_malformed_tokens_are_refused(verifier, token):
    assert refused(verifier, token)


def test_replayed_jti_is_refused(verifier, keys):
    store = MemoryJtiStore()
    claims = verifier.verify(sign(claims_for(AUDIENCE), keys["a_es384"]), AUDIENCE)
    claim_token(store, claims, verifier.leeway)
    with pytest.raises(AuthFailure, match="replayed jti"):
        claim_token(store, claims, verifier.leeway)


def test_same_jti_from_two_issuers_is_not_a_replay(verifier, keys):
    store = MemoryJtiStore()
    claim_token(store, claims_for(AUDIENCE, issuer=ISSUER_A, jti="same"), 30)
    claim_token(store, claims_for(AUDIENCE, issuer=ISSUER_B, jti="same"), 30)


@pytest.mark.parametrize("header,ok", [
    ("Bearer abc", True), ("bearer abc", True), ("Basic abc", False), ("Bearer", False),
    ("Bearer   ", False), ("", False), (None, False)])
def test_bearer_token_parsing(header, ok):
    if ok:
        assert bearer_token(header) == "abc"
    else:
        with pytest.raises(AuthFailure):
            bearer_token(header)


@pytest.mark.parametrize("path,cds", [
    ("/cds-services", True), ("/cds-services/x", True), ("/cds-services/x/feedback", True),
    ("/cds-servicesX", False), ("/healthz", False), ("/openapi.json", False), ("/demo", False)])
def test_which_paths_are_cds_endpoints(path, cds):
    assert is_cds_endpoint(path) is cds


def test_key_sets_skip_symmetric_and_unusable_keys(keys):
    jwks = {"keys": [
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "EC", "kid": "broken", "crv": "P-384", "x": "AA", "y": "AA"},
        {"kty": "RSA", "kid": "enc", "use": "enc", **{k: v for k, v in keys["a_rs384"].jwk().items()
                                                      if k in ("n", "e")}},
        keys["a_es384"].jwk(),
    ]}
    assert list(parse_jwks(jwks)) == [keys["a_es384"].kid]


def test_a_missing_key_file_fails_at_start_up(tmp_path):
    auth = AuthConfig(issuers=[{"iss": ISSUER_A, "jwks_file": str(tmp_path / "missing.json")}])
    with pytest.raises(ConfigError, match="missing.json"):
        Verifier(auth).load_key_files()


def test_unknown_kid_reloads_the_key_file_at_most_once_per_interval(tmp_path, keys):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [keys["a_es384"].jwk()]}))
    verifier = Verifier(AuthConfig(issuers=[{"iss": ISSUER_A, "jwks_file": str(path)}],
                                   jwks_refetch_interval=3600))
    verifier.load_key_files()
    rotated = new_key("ES384")
    path.write_text(json.dumps({"keys": [keys["a_es384"].jwk(), rotated.jwk()]}))
    # Loaded just now at start-up: within the interval, the new kid is not looked for.
    assert refused(verifier, sign(claims_for(AUDIENCE), rotated)) == "unknown kid"
    fresh = Verifier(AuthConfig(issuers=[{"iss": ISSUER_A, "jwks_file": str(path)}],
                                jwks_refetch_interval=0))
    fresh.load_key_files()
    newer = new_key("ES384")
    path.write_text(json.dumps({"keys": [newer.jwk()]}))
    assert fresh.verify(sign(claims_for(AUDIENCE), newer), AUDIENCE)


# --- key sets fetched over HTTP (jwks_url, allow-listed jku) -------------------------------

def serve_jwks(httpserver, path: str, *signing_keys) -> str:
    httpserver.expect_request(path).respond_with_json({"keys": [k.jwk() for k in signing_keys]})
    return httpserver.url_for(path)


def test_jwks_url_is_fetched_when_needed_and_cached(httpserver, keys):
    url = serve_jwks(httpserver, "/jwks.json", keys["a_es384"])
    verifier = Verifier(AuthConfig(issuers=[{"iss": ISSUER_A, "jwks_url": url}],
                                   jwks_refetch_interval=3600))
    verifier.load_key_files()  # a URL is not fetched at start-up
    assert httpserver.log == []
    for _ in range(3):
        assert verifier.verify(sign(claims_for(AUDIENCE), keys["a_es384"]), AUDIENCE)
    assert len(httpserver.log) == 1
    # unknown kids do not make it refetch within the interval
    for _ in range(3):
        assert refused(verifier, sign(claims_for(AUDIENCE), new_key("ES384"))) == "unknown kid"
    assert len(httpserver.log) == 1


def test_allow_listed_jku_supplies_a_key_the_configured_set_lacks(httpserver, jwks_files, keys):
    jku = serve_jwks(httpserver, "/jku.json", keys["jku_es384"])
    auth = auth_config(jwks_files)
    auth["issuers"][0]["jku"] = [jku]
    verifier = Verifier(AuthConfig(**auth))
    verifier.load_key_files()
    token = sign(claims_for(AUDIENCE), keys["jku_es384"], jku=jku)
    assert verifier.verify(token, AUDIENCE)["iss"] == ISSUER_A
    # a key of the configured set needs no fetch, even with the jku header
    assert verifier.verify(sign(claims_for(AUDIENCE), keys["a_es384"], jku=jku), AUDIENCE)
    assert len(httpserver.log) == 1
    # the same jku is not allowed for issuer B
    token_b = sign(claims_for(AUDIENCE, issuer=ISSUER_B), keys["jku_es384"], jku=jku)
    assert refused(verifier, token_b) == "jku not allowed"


def test_jku_key_set_behind_a_redirect_is_not_followed(httpserver, jwks_files, keys):
    target = serve_jwks(httpserver, "/real.json", keys["jku_es384"])
    httpserver.expect_request("/moved.json").respond_with_data(
        "", status=302, headers={"Location": target})
    jku = httpserver.url_for("/moved.json")
    auth = auth_config(jwks_files)
    auth["issuers"][0]["jku"] = [jku]
    verifier = Verifier(AuthConfig(**auth))
    token = sign(claims_for(AUDIENCE), keys["jku_es384"], jku=jku)
    assert refused(verifier, token) == "unknown kid"
    assert [request.path for request, _ in httpserver.log] == ["/moved.json"]


def test_unreachable_key_set_refuses_without_error():
    verifier = Verifier(AuthConfig(issuers=[{"iss": ISSUER_A,
                                             "jwks_url": "http://127.0.0.1:9/jwks.json"}]))
    assert refused(verifier, sign(claims_for(AUDIENCE), new_key("ES384"))) == "unknown kid"


def test_token_lifetime_is_bounded(verifier, keys):
    now = int(time.time())
    token = sign(claims_for(AUDIENCE, iat=now, exp=now + 7200), keys["a_es384"])
    assert refused(verifier, token) == "lifetime too long"
