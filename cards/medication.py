"""One MedicationRequest as the rules see it: which drug, oral or intrathecal, its daily dose."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping

from .codes import codings, coded, drug_kind, words
from .dates import parse_when
from .dose import Strength, daily_dose, product_strength
from .knowledge import Knowledge


@dataclass(frozen=True)
class Order:
    resource: dict
    id: str | None
    kind: str | None  # baclofen (oral) | intrathecal | cyclobenzaprine | quinidine | benzodiazepines...
    status: str
    authored: datetime | None
    strength: Strength | None
    daily_mg: float | None
    name: str  # the medication as the prescriber sees it
    links: frozenset[str]  # ids of the orders this one replaces (and its own id)
    unresolved: bool  # references a Medication nobody could read

    @property
    def oral_baclofen(self) -> bool:
        return self.kind == "baclofen"


def read_order(request: dict, medications: Mapping[str, dict], knowledge: Knowledge,
               as_of: datetime | None = None) -> Order:
    """`as_of`: for an order in force, the time its dose is read at (a taper's current
    step); None for a draft (its first step)."""
    concepts, unresolved = medication_concepts(request, medications)
    return _order(request, medications, knowledge, as_of, concepts, unresolved,
                  order_kind(request, concepts, knowledge))


def read_orders_of_kind(requests: Iterable[dict], kind: str, medications: Mapping[str, dict],
                        knowledge: Knowledge, as_of: datetime | None = None) -> list[Order]:
    """read_order of the requests for drugs of `kind`; the others' products and doses are not
    read (a patient's MedicationRequests are mostly other drugs)."""
    orders = []
    for request in requests:
        concepts, unresolved = medication_concepts(request, medications)
        if order_kind(request, concepts, knowledge) == kind:
            orders.append(_order(request, medications, knowledge, as_of, concepts, unresolved, kind))
    return orders


def _order(request: dict, medications: Mapping[str, dict], knowledge: Knowledge,
           as_of: datetime | None, concepts: list[dict], unresolved: bool, kind: str | None) -> Order:
    strength = product_strength(concepts, knowledge, referenced_medication(request, medications))
    daily = daily_dose(request, strength, knowledge, as_of) if kind == "baclofen" else None
    return Order(
        resource=request, id=request.get("id"), kind=kind, status=request.get("status", ""),
        authored=parse_when(request.get("authoredOn")), strength=strength, daily_mg=daily,
        name=_display_name(concepts, kind), links=_links(request), unresolved=unresolved)


def order_kind(request: dict, concepts: list[dict], knowledge: Knowledge) -> str | None:
    """The drug kind of the order (`concepts`: its medication_concepts); oral baclofen given
    by an intrathecal route is intrathecal."""
    kind = drug_kind(concepts, knowledge)
    if kind == "baclofen" and _intrathecal_route(request, knowledge):
        return "intrathecal"
    return kind


def medication_concepts(request: dict, medications: Mapping[str, dict]) -> tuple[list[dict], bool]:
    """The drug's CodeableConcepts: medicationCodeableConcept, or the referenced Medication's
    code, form and ingredients (contained, in the request, or fetched). Second item: True when
    a reference could not be resolved."""
    if isinstance(request.get("medicationCodeableConcept"), dict):
        return [request["medicationCodeableConcept"]], False
    reference = (request.get("medicationReference") or {}).get("reference")
    if not reference:
        return [], False
    medication = _resolve(reference, request, medications)
    if medication is None:
        return [], True
    concepts = [medication.get("code"), medication.get("form")]
    concepts += [i.get("itemCodeableConcept") for i in medication.get("ingredient") or ()]
    return [c for c in concepts if isinstance(c, dict)], False


def referenced_medication(request: dict, medications: Mapping[str, dict]) -> dict | None:
    reference = (request.get("medicationReference") or {}).get("reference")
    return _resolve(reference, request, medications) if reference else None


def _resolve(reference: str, request: dict, medications: Mapping[str, dict]) -> dict | None:
    if reference.startswith("#"):
        return next((c for c in request.get("contained") or ()
                     if c.get("resourceType") == "Medication" and c.get("id") == reference[1:]), None)
    if reference in medications:
        return medications[reference]
    tail = "/".join(reference.rstrip("/").split("/")[-2:])
    return medications.get(tail)


def _intrathecal_route(request: dict, knowledge: Knowledge) -> bool:
    names = knowledge["drugs"]["intrathecal"]["route_names"]
    for instruction in request.get("dosageInstruction") or ():
        route = instruction.get("route")
        if not knowledge.intrathecal_routes.isdisjoint(coded(route)):
            return True
        text = words(route)
        if any(name in text for name in names):
            return True
    return False


def _display_name(concepts: list[dict], kind: str | None) -> str:
    for concept in concepts:
        if concept.get("text"):
            return concept["text"]
        for coding in codings(concept):
            if coding.get("display"):
                return coding["display"]
    return kind or "medication"


def reference_id(reference: dict | None, resource_type: str) -> str | None:
    """'MedicationRequest/123' (or a full URL ending so) -> '123'."""
    text = (reference or {}).get("reference") or ""
    parts = text.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == resource_type:
        return parts[-1]
    return None


def _links(request: dict) -> frozenset[str]:
    references = [request.get("priorPrescription"), *(request.get("basedOn") or ())]
    ids = {reference_id(ref, "MedicationRequest") for ref in references if ref}
    ids.add(request.get("id"))
    return frozenset(i for i in ids if i)
