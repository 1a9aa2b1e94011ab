"""From a checked hook call to the FHIR data the rules read: prefetch first, then fetching.

Prefetch values are taken as the spec defines them: an omitted key is fetched, `null`
means a read found nothing, a Bundle may be empty or paged, an OperationOutcome is a
failed query. Whatever failed reaches the engine as "unavailable", never as "normal".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from flask import g, request

from cards import hookdata

from . import fhir_access, metrics, runahead
from .declarations import RESOURCE_TYPE
from .errors import ApiError
from .fhir_client import FetchResult, FhirClient, bundle_resources, is_error_outcome, next_link
from .logs import get_logger
from .parsing import Unreadable, parse_resource
from .request_checks import HookCall
from .state import app_state

log = get_logger()
# Resource types each data key may hold; anything else in a Bundle is ignored.
ACCEPTED_TYPES = {key: {resource_type} for key, resource_type in RESOURCE_TYPE.items()}
ACCEPTED_TYPES[hookdata.MEDS] = {"MedicationRequest", "Medication"}
# A paged prefetch whose next page may not (or cannot) be fetched is incomplete data.
UNFETCHABLE_PAGE = "next page not fetchable"


@dataclass
class Gathered:
    resources: dict[str, list[dict]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, result: FetchResult, fhir_version: str) -> None:
        if result.error:
            self.unavailable[key] = result.error
            return
        resources = [r for r in result.resources if r.get("resourceType") in ACCEPTED_TYPES[key]]
        readable = _readable(resources, fhir_version)
        if len(readable) < len(resources):
            self.unavailable[key] = "unreadable"
        self.resources.setdefault(key, []).extend(readable)


def fill_template(template: str, context: dict) -> str:
    """Replace {{context.<field>}} tokens with the (URL-quoted) context values."""
    for name, value in context.items():
        if isinstance(value, str):
            template = template.replace("{{context.%s}}" % name, quote(value, safe=""))
    return template


def fhir_server_for(call: HookCall, reason: str) -> str:
    """The server we may query for this call, or 412: needed data cannot be had."""
    if not call.fhir_server:
        raise ApiError(412, f"{reason}: prefetch incomplete and no fhirServer given", "prefetch")
    if not _server_allowed(call.fhir_server):
        log.warning("fhirServer not allowed by configuration; nothing fetched", extra={
            "event": "fhir_server_refused", "hook_instance": call.hook_instance,
            "fhir_host": _host(call.fhir_server)})
        raise ApiError(412, f"{reason}: fhirServer is not allowed by this service's configuration",
                       "fhirServer")
    return call.fhir_server


def _server_allowed(url: str) -> bool:
    """Allowed for this call's issuer (the JWT's iss; none when unauthenticated)."""
    issuer = (g.get("cds_client") or {}).get("iss")
    bases = fhir_access.allowed_bases(app_state().config, issuer, request.environ)
    return fhir_access.is_allowed(url, bases)


def gather(call: HookCall, templates: dict[str, str], fhir: FhirClient) -> Gathered:
    gathered = Gathered()
    queries: dict[str, str] = {}
    for key, template in templates.items():
        if key in call.prefetch:
            continuation = _take_prefetch(gathered, key, call)
            if continuation:
                queries[key] = continuation
        else:
            queries[key] = fill_template(template, call.context)
    missing = [key for key in queries if key not in call.prefetch]
    if missing:
        server = fhir_server_for(call, f"missing {', '.join(missing)}")
    elif queries:  # only continuations of paged prefetch: follow them where allowed
        server = call.fhir_server if call.fhir_server and _server_allowed(call.fhir_server) else None
        if not server:  # the rest of a paged prefetch cannot be had: say so, never "complete"
            gathered.unavailable.update(dict.fromkeys(queries, UNFETCHABLE_PAGE))
            queries = {}
    if queries:
        for key, result in runahead.fetch(fhir, server, call.access_token, call.patient_id,
                                          queries).items():
            if result.error:
                _log_fetch_error(call, key, result.error)
            gathered.add(key, result, call.service.fhir_version)
    return gathered


def fetch_medications(call: HookCall, fhir: FhirClient, references: list[str]) -> Gathered:
    """Read Medications that drafts reference but the request does not carry."""
    server = fhir_server_for(call, "a draft references a Medication not in the request")
    gathered = Gathered()
    results = fhir.fetch(server, call.access_token, {ref: ref for ref in references})
    for reference, result in results.items():
        if result.error:
            _log_fetch_error(call, hookdata.MEDICATION, result.error)
            gathered.unavailable[hookdata.MEDICATION] = result.error
            continue
        readable = _readable([r for r in result.resources
                              if r.get("resourceType") == "Medication"], call.service.fhir_version)
        gathered.resources.setdefault(hookdata.MEDICATION, []).extend(readable)
    return gathered


def _take_prefetch(gathered: Gathered, key: str, call: HookCall) -> str | None:
    """Record one prefetch value; return a relative query for its next page, if paged."""
    value = call.prefetch[key]
    if value is None:
        gathered.resources.setdefault(key, [])
        return None
    resource_type = value.get("resourceType")
    if resource_type == "OperationOutcome":
        gathered.unavailable[key] = "OperationOutcome" if is_error_outcome(value) else "no data"
        return None
    if resource_type == "Bundle":
        resources, error = bundle_resources(value)
        gathered.add(key, FetchResult(tuple(resources), error), call.service.fhir_version)
        continuation = _continuation(value, call.fhir_server)
        if next_link(value) and not continuation:
            gathered.unavailable[key] = UNFETCHABLE_PAGE
        return continuation
    if resource_type in ACCEPTED_TYPES[key]:
        gathered.add(key, FetchResult((value,)), call.service.fhir_version)
        return None
    gathered.unavailable[key] = "unreadable"
    return None


def _continuation(bundle: dict, fhir_server: str | None) -> str | None:
    url = next_link(bundle)
    base = (fhir_server or "").rstrip("/") + "/"
    if url and fhir_server and url.startswith(base) and fhir_access.is_within(url, fhir_server):
        return url[len(base):]
    return None


def _readable(resources: list[dict], fhir_version: str) -> list[dict]:
    readable = []
    for resource in resources:
        try:
            readable.append(parse_resource(resource, fhir_version).resource)
        except Unreadable:
            continue
    return readable


def _log_fetch_error(call: HookCall, key: str, reason: str) -> None:
    metrics.count_fetch_error(key, reason)
    log.warning("FHIR query failed", extra={
        "event": "fhir_fetch_failed", "hook_instance": call.hook_instance,
        "data_key": key, "reason": reason, "fhir_host": _host(call.fhir_server)})


def _host(url: str | None) -> str | None:
    """host[:port] for the log, never user:password@."""
    try:
        parts = urlsplit(url or "")
        return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
    except ValueError:
        return None
