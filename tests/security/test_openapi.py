"""GET /openapi.json describes the service as it runs: paths, ids, errors, security."""
from __future__ import annotations

from service.app import create_app
from service.declarations import SERVICES

from .conftest import app_config


def document(app) -> dict:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_served_without_a_token_and_lists_every_route(secure_app):
    doc = document(secure_app)
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {"/cds-services", "/cds-services/{service_id}",
                                 "/cds-services/{service_id}/feedback", "/healthz",
                                 "/openapi.json"}
    (parameter,) = doc["paths"]["/cds-services/{service_id}"]["parameters"]
    assert parameter["schema"]["enum"] == [service.id for service in SERVICES]


def test_cds_operations_require_the_bearer_jwt_when_issuers_are_configured(secure_app):
    doc = document(secure_app)
    assert doc["components"]["securitySchemes"]["cdsClientJwt"]["scheme"] == "bearer"
    hook = doc["paths"]["/cds-services/{service_id}"]["post"]
    assert hook["security"] == [{"cdsClientJwt": []}]
    assert {"400", "401", "404", "405", "412", "413", "415"} <= set(hook["responses"])
    assert doc["paths"]["/healthz"]["get"]["security"] == [{}]


def test_without_issuers_no_security_is_claimed(tmp_path):
    doc = document(create_app(app_config(tmp_path, None)))
    assert doc["paths"]["/cds-services"]["get"]["security"] == [{}]


def test_limits_in_the_document_are_the_configured_ones(tmp_path, jwks_files):
    app = create_app(app_config(tmp_path, jwks_files, server={"max_bundle_entries": 7}))
    hook_request = document(app)["components"]["schemas"]["HookRequest"]
    draft_orders = hook_request["properties"]["context"]["properties"]["draftOrders"]
    assert draft_orders["properties"]["entry"]["maxItems"] == 7
