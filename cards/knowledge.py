"""The clinical knowledge file (cards/knowledge.toml), a site's overrides, and fast look-ups.

`load_knowledge(overrides)` deep-merges a site's overrides into the shipped file: a key the
file does not have, or a value of another type, raises `KnowledgeError` naming the key path.
The result is immutable; everything the rules ask for often is precomputed into sets.
"""
from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

KNOWLEDGE_FILE = Path(__file__).with_name("knowledge.toml")
LAB_NAMES = ("creatinine", "egfr", "potassium", "magnesium")
SNOOZE_SCOPES = ("order", "patient-topic")


class KnowledgeError(Exception):
    pass


@lru_cache(maxsize=1024)
def normalize_unit(unit: str) -> str:
    """Unit strings as EHRs vary them: case, spaces, micro sign."""
    return unit.strip().replace(" ", "").replace("µ", "u").replace("μ", "u").lower()


def normalize_icd10(code: str) -> str:
    return code.strip().upper().replace(".", "")


# --- loading and validation --------------------------------------------------------------


def load_knowledge(overrides: dict | None = None) -> Knowledge:
    with KNOWLEDGE_FILE.open("rb") as handle:
        base = tomllib.load(handle)
    merged = _merge(base, overrides or {}, "")
    _check_references(merged)
    return Knowledge(merged)


def _check_references(merged: dict) -> None:
    topics = merged["topics"]
    for key in merged["override_reasons"]:
        if key not in topics and key not in ("source", "default", "notes"):
            raise KnowledgeError(f"override_reasons.{key}: unknown topic")
    for key, snooze in merged["override_snooze"]["reasons"].items():
        if snooze["scope"] not in SNOOZE_SCOPES:
            raise KnowledgeError(f"override_snooze.reasons.{key}.scope: must be one of "
                                 f"{', '.join(SNOOZE_SCOPES)}")
        if snooze["days"] < 0:
            raise KnowledgeError(f"override_snooze.reasons.{key}.days: must be 0 or more")
    for key, topic in topics.items():
        if isinstance(topic, dict) and "source" in topic and topic["source"] not in merged["sources"]:
            raise KnowledgeError(f"topics.{key}.source: unknown source {topic['source']!r}")


def _merge(base: dict, overrides: Mapping, path: str) -> dict:
    if not isinstance(overrides, Mapping):
        raise KnowledgeError(f"{path or '(top)'}: expected a table, got {overrides!r}")
    merged = dict(base)
    for key, value in overrides.items():
        key_path = f"{path}.{key}" if path else str(key)
        template = base.get(key, _open_key_template(path, key, base))
        if template is None:
            raise KnowledgeError(f"{key_path}: unknown key")
        if isinstance(template, dict):
            merged[key] = _merge(template, value, key_path)
        else:
            _check_type(template, value, key_path)
            merged[key] = value
    return merged


def _open_key_template(path: str, key: str, base: dict) -> Any:
    """Keys a site may add: an override-reason list for any known topic, notes on any value."""
    if path == "override_reasons":
        return base["default"]
    if path == "override_snooze.reasons":  # a site's own reason: nothing beyond the order
        return {"scope": "order", "days": 0, "rationale": ""}
    if path.endswith(".notes") or key == "notes":
        return {} if key == "notes" else ""
    return None


_TYPE_NAMES = {bool: "a boolean", str: "a string", list: "a list", dict: "a table"}


def _check_type(template: Any, value: Any, path: str) -> None:
    if isinstance(template, bool) or isinstance(value, bool):
        ok = isinstance(template, bool) and isinstance(value, bool)
        expected = "a boolean"
    elif isinstance(template, (int, float)):
        ok, expected = isinstance(value, (int, float)), "a number"
    else:
        ok, expected = isinstance(value, type(template)), _TYPE_NAMES.get(type(template), "?")
    if not ok:
        raise KnowledgeError(f"{path}: expected {expected}, got {value!r}")
    if isinstance(template, list):
        _check_list(template, value, path)


def _check_list(template: list, value: list, path: str) -> None:
    if not template:
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise KnowledgeError(f"{path}[{index}]: expected a string, got {item!r}")
        return
    sample = template[0]
    for index, item in enumerate(value):
        item_path = f"{path}[{index}]"
        if isinstance(sample, dict):
            _check_table_item(template, item, item_path)
        else:
            _check_type(sample, item, item_path)


def _check_table_item(template: list[dict], item: Any, path: str) -> None:
    if not isinstance(item, dict):
        raise KnowledgeError(f"{path}: expected a table, got {item!r}")
    fields = {key: value for entry in template for key, value in entry.items()}
    for key, value in item.items():
        if key not in fields:
            raise KnowledgeError(f"{path}.{key}: unknown key")
        _check_type(fields[key], value, f"{path}.{key}")
    missing = sorted(set(template[0]) - set(item))
    if missing:
        raise KnowledgeError(f"{path}: missing {', '.join(missing)}")


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(item) for item in value)
    return value


# --- the immutable knowledge object -------------------------------------------------------


class CodeSet:
    """A concept's codes, ready for membership tests (RxNorm/SNOMED exact, ICD-10 by prefix)."""

    __slots__ = ("codes", "icd10_prefixes", "names")

    def __init__(self, section: Mapping, systems: Mapping):
        codes = {(systems["rxnorm"], code) for code in section.get("rxnorm", ())}
        codes |= {(systems["snomed"], code) for code in section.get("snomed", ())}
        self.codes = frozenset(codes)
        self.icd10_prefixes = tuple(normalize_icd10(p) for p in section.get("icd10_prefixes", ()))
        self.names = tuple(name.lower() for name in section.get("names", ()))


# Checked in this order: an intrathecal code wins over the generic baclofen list.
DRUG_KINDS = ("intrathecal", "baclofen", "cyclobenzaprine", "quinidine", "benzodiazepines",
              "orphenadrine")


def _drug_by_code(drugs: Mapping[str, CodeSet]) -> Mapping[tuple[str, str], str]:
    by_code: dict[tuple[str, str], str] = {}
    for kind in reversed(DRUG_KINDS):
        by_code.update(dict.fromkeys(drugs[kind].codes, kind))
    return MappingProxyType(by_code)


class Knowledge:
    """Read-only view of the merged knowledge with precomputed look-ups."""

    def __init__(self, raw: dict):
        data = _freeze(raw)
        systems = data["systems"]
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        put("raw", data)
        put("systems", systems)
        put("drugs", MappingProxyType({k: CodeSet(v, systems) for k, v in data["drugs"].items()}))
        put("conditions", MappingProxyType(
            {k: CodeSet(v, systems) for k, v in data["conditions"].items()}))
        put("drug_by_code", _drug_by_code(self.drugs))
        put("intrathecal_routes", frozenset(
            (systems["snomed"], code) for code in data["drugs"]["intrathecal"]["route_snomed"]))
        put("products", MappingProxyType({
            (systems["rxnorm"], item["rxnorm"]): (float(item["mg"]), bool(item["per_ml"]))
            for item in data["products"]["items"]}))
        put("lab_loinc", MappingProxyType({
            name: frozenset(lab["loinc"]) for name, lab in data["labs"].items()}))
        put("lab_by_loinc", MappingProxyType({
            code: name for name, lab in data["labs"].items() for code in lab["loinc"]}))
        put("lab_units", MappingProxyType({
            name: MappingProxyType({normalize_unit(u["unit"]): float(u["factor"]) for u in lab["units"]})
            for name, lab in data["labs"].items()}))
        units = data["dose_units"]
        put("mass_units", MappingProxyType(
            {normalize_unit(u["unit"]): float(u["factor"]) for u in units["mass_mg"]}))
        put("count_units", frozenset(normalize_unit(u) for u in units["count"]))
        put("volume_units", frozenset(normalize_unit(u) for u in units["volume_ml"]))
        put("dose_units", frozenset(self.mass_units) | self.count_units | self.volume_units)
        put("period_hours", MappingProxyType(
            {u["unit"]: float(u["factor"]) for u in units["period_hours"]}))
        put("timing_codes", MappingProxyType(
            {t["code"].upper(): float(t["times"]) for t in data["timing_codes"]["per_day"]}))
        put("topics", tuple(key for key in data["topics"] if key not in ("source", "notes")))
        put("topic_order", MappingProxyType({topic: index for index, topic in enumerate(self.topics)}))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Knowledge is immutable")

    def __getitem__(self, section: str) -> Mapping:
        return self.raw[section]

    def value(self, section: str, key: str) -> Any:
        return self.raw[section][key]

    def lab_codes(self, name: str) -> list[tuple[str, str]]:
        """(system, code) of every LOINC code that reports this lab, for FHIR queries."""
        loinc = self.systems["loinc"]
        return [(loinc, code) for code in self.raw["labs"][name]["loinc"]]

    def topic(self, topic: str) -> Mapping:
        return self.raw["topics"][topic]

    def source_for(self, topic: str) -> Mapping:
        return self.raw["sources"][self.topic(topic)["source"]]

    def override_reasons(self, topic: str) -> tuple:
        reasons = self.raw["override_reasons"]
        return reasons.get(topic, reasons["default"])
