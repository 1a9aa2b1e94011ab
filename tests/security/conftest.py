"""Shared pieces of the security tests: test keys, token minting, an app that trusts them."""
from __future__ import annotations

import base64
import copy
import json
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from werkzeug import Response

ISSUER_A = "https://ehr-a.example.org"
ISSUER_B = "https://ehr-b.example.org"
PUBLIC_URL = "https://cds.example.org"
REPO_ROOT = Path(__file__).resolve().parents[2]
SANDBOX_REQUESTS = REPO_ROOT / "tests" / "data" / "sandbox-requests"
ORDER_SIGN = "baclofen-order-sign"
HOOK_PATH = f"/cds-services/{ORDER_SIGN}"
FEEDBACK_PATH = f"{HOOK_PATH}/feedback"
FHIR_TOKEN = "fhir-access-token-6f1d0c2e-secret"
PATIENT_ID = "pat-sec-1"
PATIENT_FAMILY = "Zebulonowski"
PATIENT_GIVEN = "Philippa"
PATIENT_BIRTH_DATE = "1937-04-29"
MEDICATION_ID = "med-baclofen-20"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private: Any

    def jwk(self) -> dict:
        public = self.private.public_key()
        algorithm = jwt.algorithms.ECAlgorithm if self.alg.startswith("ES") \
            else jwt.algorithms.RSAAlgorithm
        jwk = algorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}


def new_key(alg: str) -> SigningKey:
    if alg.startswith("ES"):
        curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1()}[alg]
        private = ec.generate_private_key(curve)
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(kid=f"{alg.lower()}-{uuid.uuid4()}", alg=alg, private=private)


@pytest.fixture(scope="session")
def keys() -> dict[str, SigningKey]:
    return {
        "a_es384": new_key("ES384"),
        "a_rs384": new_key("RS384"),
        "a_es256": new_key("ES256"),
        "b_es384": new_key("ES384"),
        "jku_es384": new_key("ES384"),
    }


def write_jwks(path: Path, *signing_keys: SigningKey) -> Path:
    path.write_text(json.dumps({"keys": [key.jwk() for key in signing_keys]}))
    return path


@pytest.fixture(scope="session")
def jwks_files(keys, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("jwks")
    return {
        "a": write_jwks(folder / "a.json", keys["a_es384"], keys["a_rs384"], keys["a_es256"]),
        "b": write_jwks(folder / "b.json", keys["b_es384"]),
    }


def claims_for(audience: str, issuer: str = ISSUER_A, **overrides) -> dict:
    now = int(time.time())
    claims = {"iss": issuer, "aud": audience, "iat": now, "exp": now + 300,
              "jti": str(uuid.uuid4())}
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def sign(claims: dict, key: SigningKey, **headers) -> str:
    header = {"kid": key.kid, "typ": "JWT", **headers}
    return jwt.encode(claims, key.private, algorithm=key.alg, headers=header)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64_json(value: dict) -> str:
    return b64(json.dumps(value).encode())


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def auth_config(jwks_files: dict[str, Path], **auth_overrides) -> dict:
    auth = {
        "issuers": [
            {"iss": ISSUER_A, "jwks_file": str(jwks_files["a"])},
            {"iss": ISSUER_B, "jwks_file": str(jwks_files["b"])},
        ],
        "algorithms": ["ES384", "RS384"],
        "leeway_seconds": 30,
    }
    auth.update(auth_overrides)
    return auth


def app_config(tmp_path: Path, jwks_files: dict[str, Path] | None, **sections) -> dict:
    config = {"server": {"public_url": PUBLIC_URL, "instance_path": str(tmp_path / "instance")}}
    if jwks_files is not None:
        config["auth"] = auth_config(jwks_files)
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


@pytest.fixture
def secure_app(tmp_path, jwks_files, request):
    """The app trusting issuers A and B; the test's `fhir_server`, if it uses one, is
    issuer A's FHIR server."""
    from service.app import create_app

    config = app_config(tmp_path, jwks_files)
    if "fhir_server" in request.fixturenames:
        config["auth"]["issuers"][0]["fhir_servers"] = [fhir_base(request.getfixturevalue("fhir_server"))]
    return create_app(config)


@pytest.fixture
def client(secure_app):
    return secure_app.test_client()


@pytest.fixture(scope="module")
def served_demo(tmp_path_factory):
    """The app with its demo (no client authentication) on a real local HTTP server."""
    from service.app import create_app
    from tests.fhir_server_helpers import serve_wsgi

    app = create_app(app_config(tmp_path_factory.mktemp("demo"), None, demo={"enabled": True}))
    with serve_wsgi(app) as http:
        yield http


@pytest.fixture
def token_for(keys):
    """A valid token of issuer A for a path of the app (aud = PUBLIC_URL + path)."""

    def make(path: str, key: str = "a_es384", issuer: str = ISSUER_A, headers=None, **claims):
        return sign(claims_for(PUBLIC_URL + path, issuer, **claims), keys[key], **(headers or {}))

    return make


# --- request bodies ------------------------------------------------------------------

def load_shared_request(name: str) -> dict:
    """A captured Sandbox request body (tests/data/sandbox-requests)."""
    return json.loads((SANDBOX_REQUESTS / name).read_text())


def order_sign_body(fhir_server: str | None = None) -> dict:
    """An order-sign call for baclofen 20 mg x3/day, no prefetch.

    With fhirServer the draft names its drug by reference (Medication/med-baclofen-20), so
    the service must query the server whatever the rules decide.
    """
    body = copy.deepcopy(load_shared_request("order-sign-baclofen.json"))
    body["hookInstance"] = str(uuid.uuid4())
    body["context"]["patientId"] = PATIENT_ID
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["subject"] = {"reference": f"Patient/{PATIENT_ID}"}
    body.pop("prefetch", None)
    body.pop("fhirServer", None)
    if fhir_server:
        draft.pop("medicationCodeableConcept", None)
        draft["medicationReference"] = {"reference": f"Medication/{MEDICATION_ID}"}
        body["fhirServer"] = fhir_server
        body["fhirAuthorization"] = {
            "access_token": FHIR_TOKEN, "token_type": "Bearer", "expires_in": 300,
            "scope": "patient/*.read", "subject": "cds-service"}
    return body


def feedback_body(card: str | None = None) -> dict:
    return {"feedback": [{
        "card": card or str(uuid.uuid4()), "outcome": "overridden",
        "outcomeTimestamp": "2026-11-21T22:33:41Z"}]}


# --- a local FHIR server with one identifiable patient ---------------------------------

def patient_resource() -> dict:
    return {"resourceType": "Patient", "id": PATIENT_ID, "gender": "female",
            "birthDate": PATIENT_BIRTH_DATE,
            "name": [{"family": PATIENT_FAMILY, "given": [PATIENT_GIVEN]}]}


def medication_resource() -> dict:
    return {"resourceType": "Medication", "id": MEDICATION_ID, "code": {"coding": [{
        "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197392",
        "display": "Baclofen 20 MG Oral Tablet"}]}}


def fhir_handler(request) -> Response:
    """Patient and Medication reads give ours; every search an empty Bundle; /metadata R4."""
    path = request.path.rstrip("/")
    if path.endswith(f"/Patient/{PATIENT_ID}"):
        body = patient_resource()
    elif path.endswith(f"/Medication/{MEDICATION_ID}"):
        body = medication_resource()
    elif path.endswith("/metadata"):
        body = {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1"}
    else:
        body = {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}
    return Response(json.dumps(body), status=200, content_type="application/fhir+json")


@pytest.fixture
def fhir_server(httpserver):
    """pytest-httpserver answering as a FHIR server; `httpserver.log` records every call."""
    httpserver.expect_request(re.compile("^/")).respond_with_handler(fhir_handler)
    return httpserver


def fhir_base(httpserver, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{httpserver.port}/fhir"
