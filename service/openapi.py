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
    # One path per service, not /cds-services/{service_id}: the body's `hook` and context
    # fields depend on the service, which a path parameter cannot express.
    hook_paths = {f"/cds-services/{service.id}": {"post": _hook_operation(service, secured)}
                  for service in SERVICES}
    return {
        "/cds-services": {"get": _discovery_operation(secured)},
        **hook_paths,
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


def _hook_operation(service, secured: list) -> dict:
    return _post_operation(
        f"call-{service.id}", f"Call {service.id} with a {service.hook} request; answers cards.",
        secured, request_schema=_ref(f"HookRequest-{service.id}"),
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
        **{f"HookRequest-{service.id}": _hook_request_schema(config, service) for service in SERVICES},
        "FhirAuthorization": _fhir_authorization_schema(),
        "HookResponse": _hook_response_schema(),
        "Card": _card_schema(),
        "Suggestion": _suggestion_schema(),
        "Link": _link_schema(),
        "FeedbackRequest": _feedback_request_schema(),
    }


def _string(**extra) -> dict:
    return {"type": "string", "minLength": 1, **extra}


# Strings the service stores or hashes: no NUL (PostgreSQL cannot hold it).
NO_NUL = "^[^\\u0000]*$"
# Card and suggestion ids as the feedback endpoint checks them (service/feedback.py).
ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
# RFC 6750 b64token, as the hook endpoint checks fhirAuthorization.access_token.
BEARER_TOKEN_PATTERN = "^[A-Za-z0-9\\-._~+/]+=*$"


def _text(max_length: int | None = None, nullable: bool = False) -> dict:
    """A non-blank string without NUL, as the service checks stored strings."""
    limit = {"maxLength": max_length} if max_length else {}
    return {"type": ["string", "null"] if nullable else "string", "minLength": 1, **limit,
            "allOf": [{"pattern": "\\S"}, {"pattern": NO_NUL}]}


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


def _hook_request_schema(config: Config, service) -> dict:
    limits = config.server
    bundle = {"type": "object", "required": ["resourceType"], "properties": {
        "resourceType": {"const": "Bundle"},
        "entry": {"type": "array", "maxItems": limits.max_bundle_entries, "items": {
            "type": "object", "required": ["resource"], "properties": {
                "resource": {"type": "object", "required": ["resourceType"],
                             "properties": {"resourceType": {"type": "string"}}}}}}}}
    kinds = {"string": {"type": "string", "minLength": 1, "pattern": NO_NUL},
             "string-list": {"type": "array", "items": _string()}, "bundle": bundle}
    return {
        "type": "object",
        "required": ["hook", "hookInstance", "context"],
        "description": f"At most {limits.max_body_bytes} bytes, JSON nested at most "
                       f"{limits.max_json_depth} levels, strings at most "
                       f"{limits.max_string_length} characters (else 413/400).",
        "properties": {
            "hook": {"const": service.hook},
            "hookInstance": {"type": "string", "format": "uuid"},
            "fhirServer": {"type": ["string", "null"], "format": "uri",
                           "pattern": "^https?://[^/?#@\\s]+"},
            "fhirAuthorization": {"anyOf": [_ref("FhirAuthorization"), {"type": "null"}]},
            "context": {
                "type": "object",
                "required": [field.name for field in service.context if field.required],
                "properties": {field.name: kinds[field.kind] for field in service.context}},
            # A value that is no readable resource counts as unavailable data (a card says
            # so), not as a bad request; keys the service did not ask for are ignored.
            "prefetch": {"type": ["object", "null"],
                         "additionalProperties": {"type": ["object", "null"]}},
        },
        # fhirAuthorization (not null) needs a fhirServer (not null)
        "if": {"required": ["fhirAuthorization"],
               "properties": {"fhirAuthorization": {"type": "object"}}},
        "then": {"required": ["fhirServer"], "properties": {"fhirServer": {"type": "string"}}},
    }


def _fhir_authorization_schema() -> dict:
    return {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "scope", "subject"],
        "properties": {
            "access_token": _string(pattern=BEARER_TOKEN_PATTERN),
            "token_type": {"type": "string", "pattern": "^[Bb][Ee][Aa][Rr][Ee][Rr]$"},
            "expires_in": {"type": "integer"}, "scope": _string(), "subject": _string(),
            "patient": {"description": "Not read by this service (any value is accepted)."},
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
    """As service/feedback.py checks it: suggestions only with `accepted`, a reason only
    with `overridden` (either may be null), ids as the service writes them."""
    common = {
        "card": {"type": "string", "pattern": ID_PATTERN},
        "outcomeTimestamp": {"type": "string", "format": "date-time"},
    }
    suggestion = {"type": "object", "required": ["id"],
                  "properties": {"id": {"type": "string", "pattern": ID_PATTERN}}}
    coding = {"type": ["object", "null"], "required": ["system", "code"], "properties": {
        "system": _text(256), "code": _text(128), "display": _text(256, nullable=True)}}
    reason = {"type": ["object", "null"], "properties": {
        "reason": coding, "userComment": {"type": ["string", "null"]}}}
    accepted = {"type": "object", "required": ["card", "outcome", "outcomeTimestamp"],
                "properties": {**common, "outcome": {"const": "accepted"},
                               "acceptedSuggestions": {"type": ["array", "null"], "items": suggestion},
                               "overrideReason": {"type": "null"}}}
    overridden = {"type": "object", "required": ["card", "outcome", "outcomeTimestamp"],
                  "properties": {**common, "outcome": {"const": "overridden"},
                                 "acceptedSuggestions": {"type": "null"},
                                 "overrideReason": reason}}
    return {"type": "object", "required": ["feedback"], "properties": {
        "feedback": {"type": "array", "minItems": 1, "items": {"oneOf": [accepted, overridden]}}}}
