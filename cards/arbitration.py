"""One plan per order (rules.md "One plan per order"): run between the rules and the cards.

A clinician must never get two cards that fix the same order in different ways:
- avoid wins: renal-avoid on a draft makes the dose rules about it moot, and no other card
  changes its dose;
- duplicate wins: the delete of a duplicate draft is its fix, no card changes its dose;
- one target per draft: the lowest dose limit of rules 2, 7, 8, 9 (rounded down to a
  multiple of 5, at least 5), stated on every card with the limit that set it;
- deep cuts taper: below D0 / 2 on established therapy the suggestion is the taper plan,
  and rules 1 and 11 offer the taper too;
- one lab order per response: the first card in card order keeps it.
The rules only say what they allow (Finding.draft, dose_limit, taper); the dose and taper
suggestions are written here.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import actions
from .cardbuilder import SEVERITY, Finding
from .dose_writer import fmt
from .facts import Draft, Facts
from .taper import TaperPlan

AVOID, DUPLICATE, ABRUPT_STOP = "renal-avoid", "duplicate-therapy", "abrupt-stop"
# Rules 7, 8, 9, 10, 18 and 19: moot for a draft on which renal-avoid fires.
MOOT_WHEN_AVOIDED = frozenset({"dose-above-max", "start-dose-high", "titration-step",
                               "elderly-start", "cirrhosis-next-steps", "tolerance"})
LAB_RESOURCES = frozenset({"ServiceRequest", "ProcedureRequest"})


@dataclass(frozen=True)
class DosePlan:
    """The one dose change a draft gets: a single new dose, or a taper plan."""
    target: float
    set_by: str  # the name of the limit that set the target
    action: dict | None  # None: no suggestion could be written
    taper: TaperPlan | None = None

    @property
    def label(self) -> str:
        return taper_label(self.taper) if self.taper else f"Change to {fmt(self.target)} mg/day"


def taper_label(taper: TaperPlan) -> str:
    last = taper.steps[-1]
    if last.days:
        return f"Taper off over {taper.total_days} days"
    if not taper.total_days:  # D0 was one step above the target: a plain change
        return f"Change to {fmt(last.daily_mg)} mg/day"
    return f"Taper to {fmt(last.daily_mg)} mg/day over {taper.total_days} days"


def plan(findings: list[Finding], facts: Facts) -> list[Finding]:
    drafts = {draft.key: draft for draft in facts.drafts}
    avoided = {f.draft for f in findings if f.topic == AVOID and f.draft}
    duplicated = {f.draft for f in findings if f.topic == DUPLICATE and f.draft}
    findings = [f for f in findings if not _moot(f, avoided, duplicated, drafts)]
    frozen = avoided | duplicated
    findings = [_without_dose_change(f, frozen) if f.topic != AVOID else f for f in findings]
    dose_plans = {key: _dose_plan(facts, drafts[key], group)
                  for key, group in _limits_by_draft(findings, frozen).items() if key in drafts}
    findings = [_arbitrated(f, facts, drafts, dose_plans, frozen, duplicated) for f in findings]
    return _one_lab_order(findings, facts)


# --- avoid wins, duplicate wins ------------------------------------------------------------


def _moot(finding: Finding, avoided: set, duplicated: set, drafts: dict[str, Draft]) -> bool:
    if finding.topic in MOOT_WHEN_AVOIDED and avoided and (finding.draft is None or finding.draft in avoided):
        return True
    # Rule 11 does not read a duplicate draft's dose as a cut: the other order continues.
    draft = drafts.get(finding.draft)
    return finding.topic == ABRUPT_STOP and finding.draft in duplicated and bool(draft and draft.starting)


def _without_dose_change(finding: Finding, frozen: set) -> Finding:
    """No dose change on a draft that is to be avoided or removed."""
    if finding.draft not in frozen:
        return finding
    return finding.revised(dose_limit=None, taper=False,
                           suggestions=_drop_actions(finding.suggestions, _is_update_of(finding.draft)))


def _is_update_of(key: str):
    return lambda action: action.get("type") == "update" and action.get("resource", {}).get("id") == key


def _drop_actions(suggestions: list[dict], unwanted) -> list[dict]:
    kept = []
    for suggestion in suggestions:
        remaining = [a for a in suggestion["actions"] if not unwanted(a)]
        if remaining:
            unchanged = len(remaining) == len(suggestion["actions"])
            kept.append(suggestion if unchanged else {**suggestion, "actions": remaining})
    return kept


# --- one target per draft, deep cuts taper -------------------------------------------------


def _limits_by_draft(findings: list[Finding], frozen: set) -> dict[str, list[Finding]]:
    groups: dict[str, list[Finding]] = {}
    for finding in findings:
        if finding.dose_limit and finding.draft and finding.draft not in frozen:
            groups.setdefault(finding.draft, []).append(finding)
    return groups


def floor_target(mg: float, facts: Facts) -> float:
    step = facts.knowledge.value("dose_writing", "daily_multiple_mg")
    return max(step, int(mg / step + 1e-9) * step)


def _dose_plan(facts: Facts, draft: Draft, group: list[Finding]) -> DosePlan | None:
    lowest = min(group, key=lambda f: f.dose_limit.mg).dose_limit
    target = floor_target(lowest.mg, facts)
    if draft.d1 is not None and target >= draft.d1:
        return None  # lowering this draft would not help (e.g. other orders fill the ceiling)
    if _deep_cut(facts, draft, target):
        taper = actions.taper_plan_for(facts, draft, target, continuing=True)
        return DosePlan(target, lowest.name, actions.taper_action(taper), taper)
    return DosePlan(target, lowest.name, actions.update_dose(facts, draft, target))


def _deep_cut(facts: Facts, draft: Draft, target: float) -> bool:
    d0, _ = facts.current_dose(draft)
    fraction = facts.knowledge.value("dosing", "abrupt_stop_fraction")
    return d0 is not None and target < d0 * fraction and facts.established_therapy(draft)


def _arbitrated(finding: Finding, facts: Facts, drafts: dict[str, Draft],
                dose_plans: dict[str, DosePlan | None], frozen: set, duplicated: set) -> Finding:
    draft = drafts.get(finding.draft)
    if draft is None:
        return finding
    if finding.topic == AVOID:
        return _avoid_plan(finding, facts, draft, duplicate=finding.draft in duplicated)
    dose_plan = dose_plans.get(finding.draft)
    if finding.dose_limit and dose_plan:
        return _with_target(finding, dose_plan, facts)
    if finding.taper and finding.draft not in frozen:
        return _abrupt_stop_plan(finding, facts, draft, dose_plan)
    return finding


def _with_target(finding: Finding, dose_plan: DosePlan, facts: Facts) -> Finding:
    own = floor_target(finding.dose_limit.mg, facts)
    target = f"{fmt(dose_plan.target)} mg/day"
    if own == dose_plan.target:
        why = f"Suggested dose: {target} ({finding.dose_limit.name})."
    else:
        why = f"Suggested dose: {target}: {dose_plan.set_by} is lower than {finding.dose_limit.name}."
    return _offer(finding, dose_plan, why)


def _offer(finding: Finding, dose_plan: DosePlan, why: str) -> Finding:
    if dose_plan.action is None:
        why += (" No suggestion could be written for this order: change it by hand to"
                f" {fmt(dose_plan.target)} mg/day.")
        return finding.revised(detail=f"{finding.detail}\n\n{why}")
    if dose_plan.taper:
        why += (" This is below half the current dose after established therapy, so the suggestion"
                f" tapers to it:\n\n{dose_plan.taper.table()}")
    suggestion = actions.suggestion(dose_plan.label, dose_plan.action)
    return finding.revised(detail=f"{finding.detail}\n\n{why}",
                           suggestions=[suggestion, *finding.suggestions])


def _abrupt_stop_plan(finding: Finding, facts: Facts, draft: Draft, dose_plan: DosePlan | None) -> Finding:
    """Rule 11: the same taper as the deep cut on this draft, else from D0 to D1 (or off)."""
    if dose_plan and dose_plan.taper:
        return _offer(finding, dose_plan, f"Suggested: taper to {fmt(dose_plan.target)} mg/day.")
    continuing = draft.starting and draft.d1 is not None
    target = floor_target(draft.d1, facts) if continuing else 0
    taper = actions.taper_plan_for(facts, draft, target, continuing)
    if taper is None:
        return finding.revised(detail=f"{finding.detail}\n\nNo taper could be written (the current"
                                      " dose or the product is unknown): write one by hand.")
    suggestion = actions.suggestion(taper_label(taper), actions.taper_action(taper))
    return finding.revised(detail=f"{finding.detail}\n\nSuggested taper:\n\n{taper.table()}",
                           suggestions=[suggestion, *finding.suggestions])


def _avoid_plan(finding: Finding, facts: Facts, draft: Draft, duplicate: bool) -> Finding:
    """Rule 1: established therapy tapers off (recommended), delete as a second choice;
    otherwise, or when the draft duplicates an order that continues, delete only."""
    others = [s for s in finding.suggestions if not any(a.get("type") == "delete" for a in s["actions"])]
    established = facts.established_therapy(draft) and not duplicate
    delete = actions.suggestion(f"Remove the {draft.order.name} order", actions.delete_draft(draft),
                                recommended=not established)
    if duplicate:
        finding = finding.revised(detail=f"{finding.detail}\n\nThis order duplicates another baclofen"
                                         " order: remove it. To stop the other one, taper it.")
    if not established:
        return finding.revised(suggestions=[s for s in [delete, *others] if s])
    taper = actions.taper_plan_for(facts, draft, 0, continuing=False)
    if taper is None:
        return finding.revised(detail=f"{finding.detail}\n\nNo taper could be written (the current"
                                      " dose or the product is unknown): taper by hand.",
                               suggestions=[s for s in [delete, *others] if s])
    taper_suggestion = actions.suggestion(taper_label(taper), actions.taper_action(taper))
    return finding.revised(detail=f"{finding.detail}\n\nSuggested taper:\n\n{taper.table()}",
                           suggestions=[s for s in [taper_suggestion, delete, *others] if s])


# --- one lab order per response ------------------------------------------------------------


def card_order(findings: list[Finding], facts: Facts) -> list[Finding]:
    """The findings in the order build_cards shows their cards."""
    topics = facts.knowledge.topic_order
    severity: dict[str, int] = {}
    for finding in findings:
        severity[finding.topic] = min(severity.get(finding.topic, 9), SEVERITY[finding.indicator])
    return sorted(findings, key=lambda f: (severity[f.topic], topics.get(f.topic, 99),
                                           f.topic, SEVERITY[f.indicator]))


def _one_lab_order(findings: list[Finding], facts: Facts) -> list[Finding]:
    if not _same_lab_offered_twice(findings):
        return findings
    offered: set = set()
    kept: dict[int, Finding] = {}
    for finding in card_order(findings, facts):
        labs_here: set = set()

        def already_offered(action: dict) -> bool:
            code = _lab_code(action)
            if code is None:
                return False
            labs_here.add(code)
            return code in offered
        suggestions = _drop_actions(finding.suggestions, already_offered)
        changed = suggestions != finding.suggestions
        kept[id(finding)] = finding.revised(suggestions=suggestions) if changed else finding
        offered |= labs_here
    return [kept[id(f)] for f in findings]


def _same_lab_offered_twice(findings: list[Finding]) -> bool:
    """Two findings offer the same lab order (else there is nothing to drop)."""
    seen: set = set()
    for finding in findings:
        codes = {_lab_code(a) for s in finding.suggestions for a in s["actions"]} - {None}
        if codes & seen:
            return True
        seen |= codes
    return False


def _lab_code(action: dict) -> str | None:
    resource = action.get("resource") or {}
    if action.get("type") != "create" or resource.get("resourceType") not in LAB_RESOURCES:
        return None
    codings = (resource.get("code") or {}).get("coding") or [{}]
    return codings[0].get("code")
