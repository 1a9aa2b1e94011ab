"""From HookData to CDS cards: the clinical engine's two entry points."""
from __future__ import annotations

from typing import Iterable, Mapping

from .arbitration import plan
from .cardbuilder import build_cards
from .facts import Facts
from .hookdata import HookData
from .knowledge import Knowledge
from .medication import medication_concepts, order_kind
from .rules import RULES

# Drugs a starting draft can be about for some rule; a stopped draft matters only for baclofen.
_STARTING_KINDS = frozenset({"baclofen", "cyclobenzaprine", "quinidine", "benzodiazepines"})


def is_relevant(drafts: Iterable[dict], knowledge: Knowledge,
                medications: Mapping[str, dict] | None = None) -> bool:
    """True when any draft is an order some rule looks at. A draft whose Medication reference
    cannot be resolved here counts as relevant: the service must fetch it to know."""
    stop_orders = knowledge["request_status"]["stop_orders"]
    stopping = knowledge["request_status"]["stopping"]
    for draft in drafts:
        concepts, unresolved = medication_concepts(draft, medications or {})
        if unresolved:
            return True
        kind, status = order_kind(draft, concepts, knowledge), draft.get("status", "")
        if status in stop_orders and kind == "baclofen":
            return True
        if status not in stopping and kind in _STARTING_KINDS:
            return True
    return False


def evaluate(data: HookData, knowledge: Knowledge) -> list[dict]:
    facts = Facts(data, knowledge)
    findings = [finding for rule in RULES for finding in rule.findings(facts)]
    return build_cards(plan(findings, facts), knowledge)
