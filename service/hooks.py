"""POST /cds-services/{id}: request -> gathered FHIR data -> facts -> findings -> cards."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import orjson
from flask import Blueprint, Response, request

from cards import engine, hookdata
from cards.hookdata import HookData

from . import metrics, suppression
from .declarations import LAB_KEYS, SERVICES_BY_ID
from .errors import ApiError, bad_request
from .gather import Gathered, fetch_medications, gather
from .logs import get_logger
from .parsing import Unreadable, parse_resource
from .request_checks import HookCall, check_hook_call, read_json_body
from .state import app_state

blueprint = Blueprint("hooks", __name__)
log = get_logger()


@blueprint.post("/cds-services/<service_id>")
def call_service(service_id: str):
    state = app_state()
    service = SERVICES_BY_ID.get(service_id)
    if service is None:
        raise ApiError(404, f"no CDS service with id {service_id!r}")
    started = time.perf_counter()
    status = 500
    try:
        response = _respond(service, state, started)
        status = 200
        return response
    except ApiError as error:
        status = error.status
        raise
    finally:
        metrics.observe_hook(service_id, status, time.perf_counter() - started)


def _respond(service, state, started: float):
    call = check_hook_call(read_json_body(request, state.config.server), service, state.config.server)
    drafts, medications = read_drafts(call)
    cards = _record(call, answer(call, state, drafts, medications), drafts, medications, state)
    log.info("hook answered", extra={
        "event": "hook_answered", "hook_instance": call.hook_instance, "service": service.id,
        "status": 200, "cards": len(cards), "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "topics": [card["source"]["topic"]["code"] for card in cards if "topic" in card.get("source", {})],
    })
    return Response(orjson.dumps({"cards": cards}), mimetype="application/json")


def answer(call: HookCall, state, drafts: list[dict] | None = None,
           medications: dict[str, dict] | None = None) -> list[dict]:
    """The cards for one checked hook call (`drafts, medications`: its read_drafts)."""
    if drafts is None or medications is None:
        drafts, medications = read_drafts(call)
    unavailable: dict[str, str] = {}
    missing = unresolved_medications(drafts, medications)
    if missing:
        fetched = fetch_medications(call, state.fhir, missing)
        medications.update(_by_reference(fetched.resources.get(hookdata.MEDICATION, [])))
        unavailable.update(fetched.unavailable)
    about_orders = call.service.drafts_field is not None
    if about_orders and not engine.is_relevant(drafts, state.knowledge, medications):
        return []
    gathered = gather(call, state.prefetch_templates, state.fhir)
    unavailable.update(gathered.unavailable)
    data = hook_data(call, drafts, medications, gathered, unavailable)
    return engine.evaluate(data, state.knowledge)


def read_drafts(call: HookCall) -> tuple[list[dict], dict[str, dict]]:
    """The MedicationRequests being decided, and the Medications the request carries."""
    field = call.service.drafts_field
    if field is None:  # patient-view: nothing is being ordered
        return [], {}
    entries = call.context[field].get("entry", [])
    selections = set(call.context.get("selections") or []) if call.service.hook == "order-select" else None
    drafts, medications = [], {}
    for index, entry in enumerate(entries):
        resource = entry["resource"]
        kind = resource["resourceType"]
        if kind not in ("MedicationRequest", "Medication"):
            continue
        if kind == "MedicationRequest" and not _selected(resource, selections):
            continue
        parsed = _parse_draft(resource, f"context.{field}.entry[{index}].resource", call)
        if kind == "Medication":
            medications[f"Medication/{parsed.get('id')}"] = parsed
        else:
            drafts.append(parsed)
    return drafts, medications


def _selected(resource: dict, selections: set[str] | None) -> bool:
    return selections is None or f"MedicationRequest/{resource.get('id')}" in selections


def other_drafts(call: HookCall) -> list[dict]:
    """order-select: the draftOrders not selected (they count for duplicates, the combined
    dose and cramp context, but are not judged)."""
    if call.service.hook != "order-select":
        return []
    field = call.service.drafts_field
    selections = set(call.context.get("selections") or [])
    return [_parse_draft(entry["resource"], f"context.{field}.entry[{index}].resource", call)
            for index, entry in enumerate(call.context[field].get("entry", []))
            if entry["resource"]["resourceType"] == "MedicationRequest"
            and not _selected(entry["resource"], selections)]


def unresolved_medications(drafts: list[dict], medications: dict[str, dict]) -> list[str]:
    """References to Medications neither contained in the draft nor carried by the request."""
    missing = []
    for draft in drafts:
        reference = (draft.get("medicationReference") or {}).get("reference")
        if not isinstance(reference, str) or reference.startswith("#"):
            continue
        reference = _relative(reference)
        if reference.startswith("Medication/") and reference not in medications:
            missing.append(reference)
    return sorted(set(missing))


def _parse_draft(resource: dict, where: str, call: HookCall) -> dict:
    try:
        return parse_resource(resource, call.service.fhir_version).resource
    except Unreadable as problem:
        raise bad_request(f"{where}.{problem.field}", problem.message) from None


def hook_data(call: HookCall, drafts, medications, gathered: Gathered, unavailable) -> HookData:
    resources = gathered.resources
    meds = resources.get(hookdata.MEDS, [])
    medications = {**_by_reference(r for r in meds if r["resourceType"] == "Medication"), **medications}
    patients = resources.get(hookdata.PATIENT, [])
    return HookData(
        hook=call.service.hook,
        fhir_version=call.service.fhir_version,
        now=datetime.now(timezone.utc),
        patient_id=call.patient_id,
        drafts=tuple(drafts),
        patient=patients[0] if patients else None,
        # An active order with a draft's id stays: the draft is a change of it (its D0).
        medication_requests=tuple(r for r in meds if r["resourceType"] == "MedicationRequest"),
        other_drafts=tuple(other_drafts(call)),
        medications=medications,
        conditions=tuple(resources.get(hookdata.CONDITIONS, [])),
        observations=tuple(_unique(r for key in LAB_KEYS for r in resources.get(key, []))),
        procedures=tuple(resources.get(hookdata.PROCEDURES, [])),
        unavailable=dict(unavailable),
    )


def _by_reference(resources) -> dict[str, dict]:
    return {f"Medication/{r.get('id')}": r for r in resources}


def _relative(reference: str) -> str:
    """'https://ehr/fhir/Medication/5' -> 'Medication/5'."""
    parts = reference.rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else reference


def _unique(resources):
    seen = set()
    for resource in resources:
        identity = (resource.get("resourceType"), resource.get("id"))
        if identity[1] is None or identity not in seen:
            seen.add(identity)
            yield resource


def _record(call: HookCall, cards: list[dict], drafts: list[dict], medications: dict,
            state) -> list[dict]:
    """Hide cards already overridden (service/suppression.py) and audit the rest; a store
    failure must not withhold a card from the clinician. Returns the cards to show."""
    if state.store is not None:
        keys = [suppression.draft_key(draft) for draft in drafts]
        outcome = suppression.apply(call, cards, keys, state.suppression, state.store)
        orders = suppression.baclofen_draft_keys(drafts, keys, medications, state.knowledge)
        cards = suppression.record(call, outcome, orders, state.store)
    metrics.count_cards(call.service.id, cards)
    return cards
