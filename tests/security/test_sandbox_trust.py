"""docs/sandbox.toml trusts the CDS Hooks Sandbox: its real token verifies with our verifier."""
from __future__ import annotations

import json

import pytest

from service.auth import AuthFailure, Verifier
from service.config import load_config

from .conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"
SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"
SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"


def sandbox_token_file() -> dict:
    """A real token the Sandbox sent (a copy of shared/cds-hooks/sandbox-token.json)."""
    return json.loads((REPO_ROOT / "tests" / "data" / "sandbox-token.json").read_text())


@pytest.fixture
def sandbox_verifier() -> Verifier:
    return Verifier.from_config(load_config(DOCS / "sandbox.toml", environ={}))


def test_sandbox_config_loads_and_trusts_the_sandbox_key():
    config = load_config(DOCS / "sandbox.toml", environ={})
    (issuer,) = config.auth.issuers
    assert issuer.iss == SANDBOX_ISSUER
    keys = json.loads((DOCS / issuer.jwks_file).read_text())["keys"]
    assert [key["kid"] for key in keys] == [SANDBOX_KID]


def test_real_sandbox_token_verifies(sandbox_verifier):
    recorded = sandbox_token_file()
    token = recorded["authorization"].removeprefix("Bearer ")
    claims = sandbox_verifier.verify(token, recorded["audience"], verify_expiry=False)
    assert claims["iss"] == SANDBOX_ISSUER
    assert claims["aud"] == recorded["audience"]


def test_real_sandbox_token_is_expired_when_expiry_is_checked(sandbox_verifier):
    recorded = sandbox_token_file()
    token = recorded["authorization"].removeprefix("Bearer ")
    with pytest.raises(AuthFailure, match="expired"):
        sandbox_verifier.verify(token, recorded["audience"])


def test_real_sandbox_token_for_another_url_is_refused(sandbox_verifier):
    recorded = sandbox_token_file()
    token = recorded["authorization"].removeprefix("Bearer ")
    with pytest.raises(AuthFailure, match="wrong audience"):
        sandbox_verifier.verify(token, "http://127.0.0.1:3001/cds-services/other",
                                verify_expiry=False)


def test_docs_copy_of_the_sandbox_key_set_matches_the_shared_one():
    shared = REPO_ROOT / "tests" / "data" / "sandbox-jwks.json"  # copy of shared/cds-hooks/
    assert json.loads((DOCS / "sandbox-jwks.json").read_text()) == json.loads(shared.read_text())
