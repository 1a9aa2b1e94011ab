"""A key published for one algorithm verifies no token signed with another, even one the
configuration allows and the key type fits (RS256 with a key published for RS384)."""
from __future__ import annotations

import jwt
import pytest

from service.auth import AuthFailure, Verifier
from service.config import AuthConfig

from .conftest import ISSUER_A, auth_config, claims_for

AUDIENCE = "https://cds.example.org/cds-services/baclofen-order-sign"


def test_a_key_published_for_rs384_does_not_verify_rs256(jwks_files, keys):
    verifier = Verifier(AuthConfig(**auth_config(jwks_files, algorithms=["ES384", "RS384", "RS256"])))
    verifier.load_key_files()
    key = keys["a_rs384"]
    assert key.jwk()["alg"] == "RS384"
    claims = claims_for(AUDIENCE)
    assert verifier.verify(jwt.encode(claims, key.private, algorithm="RS384",
                                      headers={"kid": key.kid}), AUDIENCE)["iss"] == ISSUER_A
    other = jwt.encode(claims_for(AUDIENCE), key.private, algorithm="RS256", headers={"kid": key.kid})
    with pytest.raises(AuthFailure) as failure:
        verifier.verify(other, AUDIENCE)
    assert failure.value.reason == "algorithm does not match key"
