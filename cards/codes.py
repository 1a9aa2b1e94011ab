"""What a CodeableConcept means: drug kinds (by code first, then by name) and condition concepts."""
from __future__ import annotations

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
        text = " ".join(words(c) for c in concepts)
        kinds = {kind for kind in DRUG_KINDS if _named(text, knowledge.drugs[kind])}
    if "baclofen" in kinds:
        text = " ".join([words(c) for c in concepts]) if text is None else text
        if _named(text, knowledge.drugs["intrathecal"]):
            return "intrathecal"
    for kind in DRUG_KINDS:
        if kind in kinds:
            return kind
    return None


def _named(text: str, codes: CodeSet) -> bool:
    for name in codes.names:  # a loop: any() over a generator costs more on these short lists
        if name in text:
            return True
    return False


def concepts_of(concept: dict | None, knowledge: Knowledge) -> frozenset[str]:
    """Condition concepts (cirrhosis, dialysis, cramps, ...) a CodeableConcept stands for."""
    if not isinstance(concept, dict):
        return frozenset()
    found = set()
    pairs = coded(concept)
    icd10 = [normalize_icd10(code) for system, code in pairs if "icd-10" in system]
    text = None
    for name in CONDITION_CONCEPTS:
        codes = knowledge.conditions[name]
        if _has_code(pairs, icd10, codes):
            found.add(name)
        elif codes.names:
            text = words(concept) if text is None else text
            if _named(text, codes):
                found.add(name)
    return frozenset(found)


def _has_code(pairs: list[tuple[str, str]], icd10: list[str], codes: CodeSet) -> bool:
    """`icd10`: the ICD-10 codes among `pairs`, normalized."""
    if not codes.codes.isdisjoint(pairs):
        return True
    for code in icd10:
        if code.startswith(codes.icd10_prefixes):
            return True
    return False
