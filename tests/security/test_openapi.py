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
    assert set(doc["paths"]) == {"/cds-services", "/cds-services/{service_id}/feedback",
                                 "/healthz", "/openapi.json",
                                 *(f"/cds-services/{service.id}" for service in SERVICES)}
    (parameter,) = doc["paths"]["/cds-services/{service_id}/feedback"]["parameters"]
    assert parameter["schema"]["enum"] == [service.id for service in SERVICES]


def test_each_service_path_accepts_only_its_own_hook(secure_app):
    doc = document(secure_app)
    for service in SERVICES:
        operation = doc["paths"][f"/cds-services/{service.id}"]["post"]
        name = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
        schema = doc["components"]["schemas"][name]
        assert schema["properties"]["hook"] == {"const": service.hook}
        required = {field.name for field in service.context if field.required}
        assert set(schema["properties"]["context"]["required"]) == required


def test_cds_operations_require_the_bearer_jwt_when_issuers_are_configured(secure_app):
    doc = document(secure_app)
    assert doc["components"]["securitySchemes"]["cdsClientJwt"]["scheme"] == "bearer"
    hook = doc["paths"]["/cds-services/baclofen-order-sign"]["post"]
    assert hook["security"] == [{"cdsClientJwt": []}]
    assert {"400", "401", "404", "405", "412", "413", "415"} <= set(hook["responses"])
    assert doc["paths"]["/healthz"]["get"]["security"] == [{}]


def test_without_issuers_no_security_is_claimed(tmp_path):
    doc = document(create_app(app_config(tmp_path, None)))
    assert doc["paths"]["/cds-services"]["get"]["security"] == [{}]


def test_limits_in_the_document_are_the_configured_ones(tmp_path, jwks_files):
    app = create_app(app_config(tmp_path, jwks_files, server={"max_bundle_entries": 7}))
    hook_request = document(app)["components"]["schemas"]["HookRequest-baclofen-order-sign"]
    draft_orders = hook_request["properties"]["context"]["properties"]["draftOrders"]
    assert draft_orders["properties"]["entry"]["maxItems"] == 7
