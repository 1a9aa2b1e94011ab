"""POST /cds-services/{id}: request -> gathered FHIR data -> facts -> findings -> cards."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import orjson
from flask import Blueprint, Response, request

from cards import engine, hookdata
from cards.hookdata import HookData

from . import metrics
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
    cards = answer(call, state)
    _record(call, cards, state)
    log.info("hook answered", extra={
        "event": "hook_answered", "hook_instance": call.hook_instance, "service": service.id,
        "status": 200, "cards": len(cards), "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "topics": [card["source"]["topic"]["code"] for card in cards if "topic" in card.get("source", {})],
    })
    return Response(orjson.dumps({"cards": cards}), mimetype="application/json")


def answer(call: HookCall, state) -> list[dict]:
    """The cards for one checked hook call."""
    drafts, medications = read_drafts(call)
    unavailable: dict[str, str] = {}
    missing = unresolved_medications(drafts, medications)
    if missing:
        fetched = fetch_medications(call, state.fhir, missing)
        medications.update(_by_reference(fetched.resources.get(hookdata.MEDICATION, [])))
        unavailable.update(fetched.unavailable)
    if not engine.is_relevant(drafts, state.knowledge, medications):
        return []
    gathered = gather(call, state.prefetch_templates, state.fhir)
    unavailable.update(gathered.unavailable)
    data = hook_data(call, drafts, medications, gathered, unavailable)
    return engine.evaluate(data, state.knowledge)


def read_drafts(call: HookCall) -> tuple[list[dict], dict[str, dict]]:
    """The MedicationRequests being decided, and the Medications the request carries."""
    field = call.service.drafts_field
    entries = call.context[field].get("entry", [])
    selections = set(call.context.get("selections") or []) if call.service.hook == "order-select" else None
    drafts, medications = [], {}
    for index, entry in enumerate(entries):
        resource = entry["resource"]
        kind = resource["resourceType"]
        if kind not in ("MedicationRequest", "Medication"):
            continue
        if kind == "MedicationRequest" and selections is not None and \
                f"MedicationRequest/{resource.get('id')}" not in selections:
            continue
        parsed = _parse_draft(resource, f"context.{field}.entry[{index}].resource", call)
        if kind == "Medication":
            medications[f"Medication/{parsed.get('id')}"] = parsed
        else:
            drafts.append(parsed)
    return drafts, medications


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
    draft_ids = {draft.get("id") for draft in drafts}
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
        medication_requests=tuple(
            r for r in meds if r["resourceType"] == "MedicationRequest" and r.get("id") not in draft_ids),
        medications=medications,
        conditions=tuple(resources.get(hookdata.CONDITIONS, [])),
        observations=tuple(_unique(r for key in LAB_KEYS for r in resources.get(key, []))),
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


def _record(call: HookCall, cards: list[dict], state) -> None:
    """Audit the cards issued; a store failure must not withhold them from the clinician."""
    metrics.count_cards(call.service.id, cards)
    if state.store is None or not cards:
        return
    try:
        state.store.record_cards_later(call.service.id, call.service.hook, call.hook_instance,
                                       call.patient_id, cards)
    except Exception:  # noqa: BLE001 - logged, and the clinician still gets the cards
        log.exception("could not record cards", extra={
            "event": "store_failed", "hook_instance": call.hook_instance})
