"""Validation of FHIR JSON with fhir.resources (R4 JSON validates with the R4B classes)."""
from __future__ import annotations

from fhir.resources import R4B, STU3


def validate(resource: dict, version: str = "R4") -> None:
    package = STU3 if version == "STU3" else R4B
    package.get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def empty_paths(value, path: str = "") -> list[str]:
    """Paths of null, "", [] or {} anywhere in a JSON value (CDS Hooks forbids them)."""
    if value is None or value == "" or value == [] or value == {}:
        return [path or "(root)"]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in empty_paths(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in empty_paths(item, f"{path}[{index}]")]
    return []
