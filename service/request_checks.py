"""Checks of an incoming CDS Hooks call: transport, JSON limits, then the hook's own shape.

Every failure is an ApiError naming the field, so an integrator can fix the request.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson
from flask import Request

from .config import ServerConfig
from .declarations import ContextField, ServiceDeclaration
from .errors import ApiError, bad_request
from .json_depth import nesting_within

JSON_TYPES = ("application/json", "application/fhir+json")
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 b64token
_URI_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
FHIR_AUTHORIZATION_FIELDS = {
    "access_token": str, "token_type": str, "expires_in": int, "scope": str, "subject": str,
}


@dataclass(frozen=True)
class HookCall:
    """A checked hook request."""

    service: ServiceDeclaration
    body: dict
    hook_instance: str
    context: dict
    prefetch: dict
    fhir_server: str | None
    access_token: str | None

    @property
    def patient_id(self) -> str:
        return self.context["patientId"]


def read_json_body(request: Request, limits: ServerConfig) -> object:
    """The request's JSON, within the configured size, depth and string limits."""
    if request.mimetype not in JSON_TYPES:
        raise ApiError(415, "Content-Type must be application/json")
    if request.content_length is not None and request.content_length > limits.max_body_bytes:
        raise ApiError(413, f"body larger than {limits.max_body_bytes} bytes")
    # A chunked body has no Content-Length: read one byte past the limit to see it is over.
    raw = request.stream.read(limits.max_body_bytes + 1)
    if len(raw) > limits.max_body_bytes:
        raise ApiError(413, f"body larger than {limits.max_body_bytes} bytes")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):  # orjson stops at 1024 levels
            raise bad_request("body", f"JSON nested deeper than {limits.max_json_depth} levels") from None
        data = _with_lone_surrogates(raw, exc)
    check_json_limits(data, limits, raw)
    return data


def _with_lone_surrogates(raw: bytes, error: orjson.JSONDecodeError) -> object:
    """orjson refuses a lone surrogate escape such as "\\ud800", which JSON's grammar allows:
    parse such a body with the standard library, so that the field checks (is_storable_text)
    name the field that holds it. Any other error is the body's."""
    if "surrogate" in str(error):
        try:
            return json.loads(raw.decode("utf-8"))  # strict: surrogate bytes are not UTF-8
        except (ValueError, RecursionError):
            pass
    raise ApiError(400, f"body is not valid JSON: {error}", "body") from None


def check_json_limits(data: object, limits: ServerConfig, raw: bytes) -> None:
    """Depth and string length limits of `data`, parsed from the JSON text `raw`. Strings
    are looked at only when the body is long enough to hold one over the limit (a typical
    request is far shorter than the string limit)."""
    if not nesting_within(raw, limits.max_json_depth):
        raise bad_request("body", f"JSON nested deeper than {limits.max_json_depth} levels")
    if len(raw) <= limits.max_string_length:
        return
    level = [data]
    while level:  # one nesting level at a time: no recursion to exhaust
        deeper: list = []
        for value in level:
            items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else (value,)
            _check_strings(value.keys() if isinstance(value, dict) else (), limits)
            _check_strings(items, limits)
            deeper += [item for item in items if isinstance(item, (dict, list))]
        level = deeper


def _check_strings(values, limits: ServerConfig) -> None:
    for value in values:
        if isinstance(value, str) and len(value) > limits.max_string_length:
            raise bad_request("body", f"a string is longer than {limits.max_string_length} characters")


def is_storable_text(value: str) -> bool:
    """Text both databases keep: valid Unicode (no lone surrogate such as \ud800, which
    JSON escapes can carry) and no NUL (PostgreSQL text cannot hold it)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_hook_call(body: object, service: ServiceDeclaration, limits: ServerConfig) -> HookCall:
    if not isinstance(body, dict):
        raise bad_request("body", "must be a JSON object")
    hook = _required(body, "hook", str)
    if hook != service.hook:
        raise bad_request("hook", f"this service answers {service.hook!r}, not {hook!r}")
    hook_instance = _required(body, "hookInstance", str)
    if not _is_uuid(hook_instance):
        raise bad_request("hookInstance", "must be a UUID")
    context = _required(body, "context", dict)
    for spec in service.context:
        _check_context_field(context, spec, limits)
    fhir_server = _optional(body, "fhirServer", str)
    if fhir_server is not None and not _is_http_url(fhir_server):
        raise bad_request("fhirServer", "must be an absolute http(s) URL")
    access_token = _check_fhir_authorization(body, fhir_server)
    prefetch = _optional(body, "prefetch", dict) or {}
    for key, value in prefetch.items():
        if value is not None and not isinstance(value, dict):
            raise bad_request(f"prefetch.{key}", "must be a FHIR resource or null")
    return HookCall(service, body, hook_instance, context, prefetch, fhir_server, access_token)


def _check_context_field(context: dict, spec: ContextField, limits: ServerConfig) -> None:
    where = f"context.{spec.name}"
    if spec.name not in context:
        if spec.required:
            raise bad_request(where, "is required")
        return
    value = context[spec.name]
    if spec.kind == "string" and not (isinstance(value, str) and value):
        raise bad_request(where, "must be a non-empty string")
    if spec.kind == "string" and not is_storable_text(value):
        raise bad_request(where, "must be valid Unicode text without NUL characters")
    if spec.kind == "string-list" and not (
        isinstance(value, list) and all(isinstance(item, str) and item for item in value)
    ):
        raise bad_request(where, "must be a list of references such as MedicationRequest/123")
    if spec.kind == "bundle":
        check_bundle(value, where, limits)


def check_bundle(value: object, where: str, limits: ServerConfig) -> None:
    if not isinstance(value, dict) or value.get("resourceType") != "Bundle":
        raise bad_request(where, "must be a FHIR Bundle")
    entries = value.get("entry", [])
    if not isinstance(entries, list):
        raise bad_request(f"{where}.entry", "must be a list")
    if len(entries) > limits.max_bundle_entries:
        raise bad_request(f"{where}.entry", f"more than {limits.max_bundle_entries} entries")
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise bad_request(f"{where}.entry[{index}].resource", "must be a FHIR resource")


def _is_a(value, kind: type) -> bool:
    """JSON's sense of the type: an integer may be written 300.0 (JSON Schema agrees)."""
    if isinstance(value, bool):
        return False
    if kind is int:
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    return isinstance(value, kind) and value != ""


def _check_fhir_authorization(body: dict, fhir_server: str | None) -> str | None:
    auth = _optional(body, "fhirAuthorization", dict)
    if auth is None:
        return None
    if fhir_server is None:
        raise bad_request("fhirServer", "is required when fhirAuthorization is present")
    for name, kind in FHIR_AUTHORIZATION_FIELDS.items():
        if not _is_a(auth.get(name), kind):
            raise bad_request(f"fhirAuthorization.{name}",
                              "must be an integer" if kind is int else "must be a non-empty string")
    if auth["token_type"].lower() != "bearer":
        raise bad_request("fhirAuthorization.token_type", "must be Bearer")
    if not _BEARER_TOKEN.fullmatch(auth["access_token"]):
        raise bad_request("fhirAuthorization.access_token", "must be a bearer token (RFC 6750 characters)")
    return auth["access_token"]


def _required(body: dict, name: str, kind: type):
    if body.get(name) is None:
        raise bad_request(name, "is required")
    return _optional(body, name, kind)


def _optional(body: dict, name: str, kind: type):
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        raise bad_request(name, f"must be a JSON {_JSON_NAMES[kind]}")
    return value


_JSON_NAMES = {str: "string", dict: "object", list: "array"}


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_http_url(value: str) -> bool:
    if not _URI_CHARACTERS.fullmatch(value):  # RFC 3986: ASCII, no space, backslash or quote
        return False
    try:
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
