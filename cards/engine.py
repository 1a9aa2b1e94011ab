"""From HookData to CDS cards: the clinical engine's two entry points."""
from __future__ import annotations

from typing import Iterable, Mapping

from .arbitration import plan
from .cardbuilder import build_cards
from .facts import Facts
from .hookdata import HookData
from .knowledge import Knowledge
from .medication import read_order
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
        order = read_order(draft, medications or {}, knowledge)
        if order.unresolved:
            return True
        if order.status in stop_orders and order.kind == "baclofen":
            return True
        if order.status not in stopping and order.kind in _STARTING_KINDS:
            return True
    return False


def evaluate(data: HookData, knowledge: Knowledge) -> list[dict]:
    facts = Facts(data, knowledge)
    findings = [finding for rule in RULES for finding in rule.findings(facts)]
    return build_cards(plan(findings, facts), knowledge)
