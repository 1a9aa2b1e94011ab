"""What a CodeableConcept means: drug kinds (by code first, then by name) and condition concepts."""
from __future__ import annotations

from functools import lru_cache
from typing import Iterable

from .knowledge import DRUG_KINDS, CodeSet, Knowledge, normalize_icd10

CONDITION_CONCEPTS = ("cirrhosis", "dialysis", "cramps", "spasticity", "spinal", "rheumatic", "cerebral")


def codings(concept: dict | None) -> list[dict]:
    if not isinstance(concept, dict):
        return []
    return [coding for coding in concept.get("coding") or () if isinstance(coding, dict)]


def coded(concept: dict | None) -> list[tuple[str, str]]:
    if not isinstance(concept, dict):
        return []
    return [(coding.get("system", ""), str(coding["code"])) for coding in concept.get("coding") or ()
            if isinstance(coding, dict) and coding.get("code")]


def words(concept: dict | None) -> str:
    """Lower-cased text, displays and codes of a concept, for name matching."""
    if not isinstance(concept, dict):
        return ""
    parts = [concept.get("text") or ""]
    for coding in concept.get("coding") or ():
        if isinstance(coding, dict):
            parts.append(coding.get("display") or "")
            parts.append(str(coding.get("code") or ""))
    return " ".join(parts).lower()


def drug_kind(concepts: Iterable[dict], knowledge: Knowledge) -> str | None:
    """'baclofen', 'intrathecal', 'cyclobenzaprine', 'quinidine', 'benzodiazepines',
    'orphenadrine' or None. Codes decide before names; intrathecal wins over baclofen."""
    concepts = [c for c in concepts if isinstance(c, dict)]
    by_code = knowledge.drug_by_code
    kinds = {by_code[pair] for c in concepts for pair in coded(c) if pair in by_code}
    text = None
    if not kinds:
        text = _words_of(concepts)
        kinds = {kind for kind in DRUG_KINDS if _named(text, knowledge.drugs[kind])}
    if "baclofen" in kinds:
        text = _words_of(concepts) if text is None else text
        if _named(text, knowledge.drugs["intrathecal"]):
            return "intrathecal"
    for kind in DRUG_KINDS:
        if kind in kinds:
            return kind
    return None


def _words_of(concepts: list[dict]) -> str:
    return " ".join([words(c) for c in concepts])


def _named(text: str, codes: CodeSet) -> bool:
    for name in codes.names:  # a loop: any() over a generator costs more on these short lists
        if name in text:
            return True
    return False


def concepts_of(concept: dict | None, knowledge: Knowledge) -> frozenset[str]:
    """Condition concepts (cirrhosis, dialysis, cramps, ...) a CodeableConcept stands for:
    by code (exact, or ICD-10 by prefix), else by name."""
    if not isinstance(concept, dict):
        return frozenset()
    by_code, by_icd10_prefix, by_name = _condition_index(knowledge)
    found = set()
    for system, code in coded(concept):
        found.update(by_code.get((system, code), ()))
        if "icd-10" in system:
            icd10 = normalize_icd10(code)
            for prefixes, name in by_icd10_prefix:
                if icd10.startswith(prefixes):
                    found.add(name)
    text = None
    for names, name in by_name:
        if name not in found:
            text = words(concept) if text is None else text
            if _named(text, names):
                found.add(name)
    return frozenset(found)


@lru_cache(maxsize=64)
def _condition_index(knowledge: Knowledge) -> tuple[dict, tuple, tuple]:
    """The condition concepts by code, by ICD-10 prefixes and by names (one look-up per
    code instead of one per concept: a chart holds many Conditions)."""
    by_code: dict[tuple[str, str], set[str]] = {}
    for name in CONDITION_CONCEPTS:
        for pair in knowledge.conditions[name].codes:
            by_code.setdefault(pair, set()).add(name)
    by_icd10_prefix = tuple((knowledge.conditions[name].icd10_prefixes, name) for name in CONDITION_CONCEPTS
                            if knowledge.conditions[name].icd10_prefixes)
    by_name = tuple((knowledge.conditions[name], name) for name in CONDITION_CONCEPTS
                    if knowledge.conditions[name].names)
    return {pair: frozenset(names) for pair, names in by_code.items()}, by_icd10_prefix, by_name
