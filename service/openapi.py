"""GET /openapi.json: an OpenAPI 3.1 description of this service's own HTTP API.

Built from Python dicts and the service declarations, so the service ids, the hooks and
the limits it states are the ones the running app enforces.
"""
from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify

from .config import Config
from .declarations import SERVICES

blueprint = Blueprint("openapi", __name__)

JSON = "application/json"
ERROR_STATUSES = {
    "400": "The request is malformed; `field` names the offending field.",
    "401": "No valid client JWT (Authorization: Bearer). The body carries no detail.",
    "404": "No CDS service with this id.",
    "405": "Method not allowed on this path.",
    "412": "Data the service needs is neither in prefetch nor fetchable (no fhirServer, "
           "no fhirAuthorization, or a FHIR server not allowed by configuration).",
    "413": "The body is larger than the configured limit.",
    "415": "Content-Type must be application/json.",
}


def install(app: Flask) -> None:
    """Serve the document at GET /openapi.json (no authentication: it holds no data)."""
    app.register_blueprint(blueprint)


@blueprint.get("/openapi.json")
def openapi_document():
    state = current_app.extensions["baclofen_cds"]
    return jsonify(build_document(state.config))


def build_document(config: Config) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "baclofen-cds",
            "version": "0.1.0",
            "description": "CDS Hooks 2.0 service checking oral baclofen orders. "
                           "CDS endpoints need a client JWT when issuers are configured "
                           "(see docs/security.md).",
        },
        "servers": [{"url": url} for url in config.server.public_urls] or [{"url": "/"}],
        "paths": _paths(config),
        "components": {
            "schemas": _schemas(config),
            "responses": _error_responses(),
            "securitySchemes": {
                "cdsClientJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
        },
    }


# --- paths ------------------------------------------------------------------------------

def _paths(config: Config) -> dict:
    secured = [{"cdsClientJwt": []}] if config.auth.issuers else [{}]
    return {
        "/cds-services": {"get": _discovery_operation(secured)},
        "/cds-services/{service_id}": {
            "parameters": [_service_id_parameter()],
            "post": _hook_operation(secured),
        },
        "/cds-services/{service_id}/feedback": {
            "parameters": [_service_id_parameter()],
            "post": _feedback_operation(secured),
        },
        "/healthz": {"get": _plain_get("healthz", "Liveness check.", {
            "type": "object", "required": ["status"],
            "properties": {"status": {"const": "ok"}}})},
        "/openapi.json": {"get": _plain_get("openapi", "This document.", {"type": "object"})},
    }


def _service_id_parameter() -> dict:
    return {"name": "service_id", "in": "path", "required": True,
            "schema": {"type": "string", "enum": [service.id for service in SERVICES]}}


def _discovery_operation(secured: list) -> dict:
    return {
        "operationId": "discovery",
        "summary": "CDS Hooks discovery: the services offered.",
        "security": secured,
        "responses": {
            "200": _json_response("The services.", _ref("Discovery")),
            **_errors("401", "405"),
        },
    }


def _hook_operation(secured: list) -> dict:
    return _post_operation(
        "callService", "Call a CDS service with a hook request; answers cards.", secured,
        request_schema=_ref("HookRequest"),
        ok=_json_response("The cards (maybe none).", _ref("HookResponse")),
        errors=("400", "401", "404", "405", "412", "413", "415"))


def _feedback_operation(secured: list) -> dict:
    return _post_operation(
        "feedback", "What the clinician did with the cards.", secured,
        request_schema=_ref("FeedbackRequest"),
        ok=_json_response("Stored.", {"type": "object", "maxProperties": 0}),
        errors=("400", "401", "404", "405", "413", "415"))


def _post_operation(operation_id: str, summary: str, secured: list, *, request_schema: dict,
                    ok: dict, errors: tuple[str, ...]) -> dict:
    return {
        "operationId": operation_id,
        "summary": summary,
        "security": secured,
        "requestBody": {"required": True, "content": {JSON: {"schema": request_schema}}},
        "responses": {"200": ok, **_errors(*errors)},
    }


def _plain_get(operation_id: str, summary: str, schema: dict) -> dict:
    return {"operationId": operation_id, "summary": summary, "security": [{}],
            "responses": {"200": _json_response(summary, schema), **_errors("405")}}


def _json_response(description: str, schema: dict) -> dict:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*statuses: str) -> dict:
    return {status: {"$ref": f"#/components/responses/Error{status}"} for status in statuses}


def _error_responses() -> dict:
    responses = {}
    for status, description in ERROR_STATUSES.items():
        response = _json_response(description, _ref("Error"))
        if status == "401":
            response["headers"] = {"WWW-Authenticate": {
                "description": "Bearer", "schema": {"type": "string"}}}
        responses[f"Error{status}"] = response
    return responses


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


# --- schemas ----------------------------------------------------------------------------

def _schemas(config: Config) -> dict:
    return {
        "Error": {"type": "object", "required": ["error"], "properties": {
            "error": {"type": "string"}, "field": {"type": "string"}}},
        "Coding": _coding_schema(),
        "Discovery": _discovery_schema(),
        "HookRequest": _hook_request_schema(config),
        "FhirAuthorization": _fhir_authorization_schema(),
        "HookResponse": _hook_response_schema(),
        "Card": _card_schema(),
        "Suggestion": _suggestion_schema(),
        "Link": _link_schema(),
        "FeedbackRequest": _feedback_request_schema(),
    }


def _string(**extra) -> dict:
    return {"type": "string", "minLength": 1, **extra}


def _coding_schema() -> dict:
    return {"type": "object", "required": ["system", "code"], "properties": {
        "system": _string(), "code": _string(), "display": _string()}}


def _discovery_schema() -> dict:
    service = {"type": "object", "required": ["hook", "description", "id"], "properties": {
        "hook": _string(), "title": _string(), "description": _string(), "id": _string(),
        "prefetch": {"type": "object", "additionalProperties": {"type": "string"}},
        "usageRequirements": _string(),
    }}
    return {"type": "object", "required": ["services"], "properties": {
        "services": {"type": "array", "items": service}}}


def _hook_request_schema(config: Config) -> dict:
    limits = config.server
    bundle = {"type": "object", "required": ["resourceType"], "properties": {
        "resourceType": {"const": "Bundle"},
        "entry": {"type": "array", "maxItems": limits.max_bundle_entries, "items": {
            "type": "object", "required": ["resource"], "properties": {
                "resource": {"type": "object", "required": ["resourceType"]}}}}}}
    return {
        "type": "object",
        "required": ["hook", "hookInstance", "context"],
        "description": f"At most {limits.max_body_bytes} bytes, JSON nested at most "
                       f"{limits.max_json_depth} levels, strings at most "
                       f"{limits.max_string_length} characters (else 413/400).",
        "properties": {
            "hook": {"type": "string", "enum": sorted({s.hook for s in SERVICES})},
            "hookInstance": {"type": "string", "format": "uuid"},
            "fhirServer": {"type": "string", "format": "uri", "pattern": "^https?://"},
            "fhirAuthorization": _ref("FhirAuthorization"),
            "context": {"type": "object", "properties": {
                "userId": _string(), "patientId": _string(), "encounterId": _string(),
                "selections": {"type": "array", "items": _string()},
                "draftOrders": bundle, "medications": bundle}},
            "prefetch": {"type": "object", "additionalProperties": {
                "type": ["object", "null"], "required": ["resourceType"]}},
        },
        "dependentRequired": {"fhirAuthorization": ["fhirServer"]},
    }


def _fhir_authorization_schema() -> dict:
    return {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "scope", "subject"],
        "properties": {
            "access_token": _string(), "token_type": {"type": "string", "pattern": "^[Bb]earer$"},
            "expires_in": {"type": "integer"}, "scope": _string(), "subject": _string(),
            "patient": _string(),
        },
    }


def _hook_response_schema() -> dict:
    return {"type": "object", "required": ["cards"], "properties": {
        "cards": {"type": "array", "items": _ref("Card")},
        "systemActions": {"type": "array", "items": {"type": "object"}}}}


def _card_schema() -> dict:
    return {
        "type": "object",
        "required": ["summary", "indicator", "source"],
        "properties": {
            "uuid": _string(),
            "summary": _string(maxLength=140),
            "detail": _string(),
            "indicator": {"enum": ["info", "warning", "critical"]},
            "source": {"type": "object", "required": ["label"], "properties": {
                "label": _string(), "url": _string(), "icon": _string(),
                "topic": _ref("Coding")}},
            "suggestions": {"type": "array", "items": _ref("Suggestion")},
            "selectionBehavior": {"enum": ["at-most-one", "any"]},
            "overrideReasons": {"type": "array", "items": _ref("Coding")},
            "links": {"type": "array", "items": _ref("Link")},
        },
    }


def _suggestion_schema() -> dict:
    action = {"type": "object", "required": ["type", "description"], "properties": {
        "type": {"enum": ["create", "update", "delete"]}, "description": _string(),
        "resource": {"type": "object"}, "resourceId": _string()}}
    return {"type": "object", "required": ["label"], "properties": {
        "label": _string(), "uuid": _string(), "isRecommended": {"type": "boolean"},
        "actions": {"type": "array", "items": action}}}


def _link_schema() -> dict:
    return {"type": "object", "required": ["label", "url", "type"], "properties": {
        "label": _string(), "url": _string(), "type": {"enum": ["absolute", "smart"]},
        "appContext": _string(), "autolaunchable": {"type": "boolean"}}}


def _feedback_request_schema() -> dict:
    item = {
        "type": "object",
        "required": ["card", "outcome", "outcomeTimestamp"],
        "properties": {
            "card": _string(),
            "outcome": {"enum": ["accepted", "overridden"]},
            "acceptedSuggestions": {"type": "array", "items": {
                "type": "object", "required": ["id"], "properties": {"id": _string()}}},
            "overrideReason": {"type": "object", "properties": {
                "reason": _ref("Coding"), "userComment": {"type": "string"}}},
            "outcomeTimestamp": {"type": "string", "format": "date-time"},
        },
    }
    return {"type": "object", "required": ["feedback"], "properties": {
        "feedback": {"type": "array", "minItems": 1, "items": item}}}
