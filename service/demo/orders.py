"""What the demo page can order, and the draft R4 MedicationRequest it composes."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
GTS_ABBREVIATION = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
DEMO_PRESCRIBER = "Practitioner/demo-prescriber"


@dataclass(frozen=True)
class Product:
    code: str  # RxNorm
    display: str
    default_dose_mg: int
    group: str  # the heading in the drug picker


@dataclass(frozen=True)
class Frequency:
    code: str
    text: str
    per_day: int
    when: str | None = None  # timing.repeat.when (HS: at bedtime)


PRODUCTS = (
    Product("430902", "Baclofen 5 MG Oral Tablet", 5, "Baclofen"),
    Product("197391", "Baclofen 10 MG Oral Tablet", 10, "Baclofen"),
    Product("197392", "Baclofen 20 MG Oral Tablet", 20, "Baclofen"),
    Product("2667941", "Baclofen 2 MG/ML Oral Solution", 10, "Baclofen"),
    # Ingredient-level RxNorm codes, with the product in the text (as many EHRs send them).
    Product("21949", "Cyclobenzaprine 10 MG Oral Tablet", 10, "Other drugs"),
    Product("9068", "Quinidine Sulfate 200 MG Oral Tablet", 200, "Other drugs"),
    Product("6470", "Lorazepam 1 MG Oral Tablet", 1, "Other drugs"),
)
PRODUCTS_BY_CODE = {product.code: product for product in PRODUCTS}

FREQUENCIES = (
    Frequency("QD", "once daily", 1),
    Frequency("BID", "twice daily", 2),
    Frequency("TID", "three times daily", 3),
    Frequency("QID", "four times daily", 4),
    Frequency("QHS", "at bedtime", 1, when="HS"),
)
FREQUENCIES_BY_CODE = {frequency.code: frequency for frequency in FREQUENCIES}

# Indication (reasonCode) choices: key -> SNOMED CT (code, display).
REASONS = {
    "": None,
    "cramps": ("55300003", "Muscle cramp"),
    "spasticity": ("221360009", "Spasticity"),
}


class OrderError(ValueError):
    """The composed order names an unknown product, frequency or reason, or a bad dose."""


@dataclass(frozen=True)
class OrderForm:
    product: Product
    dose_mg: float
    frequency: Frequency
    reason: tuple[str, str] | None

    @classmethod
    def from_json(cls, data: dict) -> "OrderForm":
        if not isinstance(data, dict):
            raise OrderError("order: an object with product, dose, frequency and reason")
        try:
            product = PRODUCTS_BY_CODE[str(data.get("product"))]
            frequency = FREQUENCIES_BY_CODE[str(data.get("frequency"))]
            reason = REASONS[str(data.get("reason") or "")]
            dose = float(data.get("dose"))
        except (KeyError, TypeError, ValueError):
            raise OrderError("choose a drug, a dose in mg, a frequency and an indication") from None
        if not 0 < dose <= 10_000:
            raise OrderError("the dose must be a positive number of mg")
        return cls(product, dose, frequency, reason)


def draft_medication_request(order: OrderForm, patient_id: str, today: date | None = None) -> dict:
    """The order as an EHR's draft R4 MedicationRequest."""
    draft = {
        "resourceType": "MedicationRequest",
        "id": f"demo-draft-{uuid.uuid4().hex[:12]}",
        "status": "draft",
        "intent": "order",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
            "code": "community", "display": "Community"}]}],
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": order.product.code,
                        "display": order.product.display}],
            "text": order.product.display,
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": (today or date.today()).isoformat(),
        "requester": {"reference": DEMO_PRESCRIBER},
        "dosageInstruction": [dosage(order)],
        "dispenseRequest": {"expectedSupplyDuration": {
            "value": 30, "unit": "days", "system": UCUM, "code": "d"}},
    }
    if order.reason:
        code, display = order.reason
        draft["reasonCode"] = [{"coding": [{"system": SNOMED, "code": code, "display": display}],
                                "text": display}]
    return draft


def dosage(order: OrderForm) -> dict:
    frequency = order.frequency
    repeat = {"frequency": frequency.per_day, "period": 1, "periodUnit": "d"}
    if frequency.when:
        repeat["when"] = [frequency.when]
    dose = int(order.dose_mg) if order.dose_mg.is_integer() else order.dose_mg
    return {
        "text": f"{dose} mg by mouth {frequency.text}",
        "timing": {"repeat": repeat, "code": {
            "coding": [{"system": GTS_ABBREVIATION, "code": frequency.code}],
            "text": frequency.text}},
        "route": {"coding": [{"system": SNOMED, "code": "26643006", "display": "Oral route"}]},
        "doseAndRate": [{"doseQuantity": {"value": dose, "unit": "mg", "system": UCUM,
                                          "code": "mg"}}],
    }
