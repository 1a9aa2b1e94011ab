"""Fewer, better interruptions: hide a card the clinician already overrode (docs/store.md).

Decided here, after the engine ran, from the store: the engine stays pure and knows
nothing of earlier calls. Two mechanisms, each switchable in `[suppression]`:

- once per order: a non-critical card overridden earlier for the same order (same patient,
  a draft in common, same topic, same fingerprint of what the card says) is not shown again;
- snooze: an override whose reason carries a `patient-topic` snooze in the knowledge file
  (`override_snooze`) hides that topic for this patient for its days, on any order.

Fail safe: when the store cannot answer (or cannot record what was hidden), every card is
shown and the failure is logged.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable, Mapping

from cards.medication import medication_concepts, order_kind

from . import metrics
from .logs import get_logger
from .store import Override, SuppressedCard

log = get_logger()
SAME_ORDER = "same-order"
SNOOZE = "snooze"
KEY_LENGTH = 32  # hex characters kept of each SHA-256


@dataclass(frozen=True)
class Policy:
    once_per_order: bool
    snooze: bool
    same_order: timedelta
    snooze_critical: bool
    snoozes: Mapping[str, Mapping]  # reason code -> {scope, days, rationale}
    lookback: timedelta  # how far back an override can still matter

    @classmethod
    def of(cls, config, knowledge) -> "Policy":
        snooze = knowledge["override_snooze"]
        snoozes = snooze["reasons"]
        longest = max((_snooze_days(snoozes, code) for code in snoozes), default=0)
        same_order = timedelta(hours=config.suppression.same_order_hours)
        return cls(once_per_order=config.suppression.once_per_order,
                   snooze=config.suppression.snooze, same_order=same_order,
                   snooze_critical=bool(snooze["critical"]), snoozes=snoozes,
                   lookback=max(same_order, timedelta(days=longest if config.suppression.snooze else 0)))

    def snooze_days(self, reason_code: str) -> int:
        return _snooze_days(self.snoozes, reason_code)

    def may_suppress(self, card: dict) -> bool:
        critical = card.get("indicator") == "critical"
        return (self.once_per_order and not critical) or (self.snooze and (self.snooze_critical or not critical))


def _snooze_days(snoozes: Mapping[str, Mapping], reason_code: str) -> int:
    snooze = snoozes.get(reason_code)
    return int(snooze["days"]) if snooze and snooze["scope"] == "patient-topic" else 0


# -- what a card is about ------------------------------------------------------------------
def _digest(value) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


def draft_key(draft: dict) -> str:
    """A draft's identity: its id, or for a draft without id its medication and dose."""
    if draft.get("id"):
        return _digest(["id", draft["id"]])
    medication = draft.get("medicationCodeableConcept") or draft.get("medicationReference")
    return _digest(["draft", medication, draft.get("dosageInstruction")])


def card_fingerprint(card: dict) -> str:
    """What the card says: its topic, severity and summary (which name the trigger values)
    and what each suggestion would do (action type, target and dose)."""
    actions = [[action.get("type"), action.get("resourceId"),
                (action.get("resource") or {}).get("dosageInstruction"),
                (action.get("resource") or {}).get("medicationCodeableConcept")]
               for suggestion in card.get("suggestions") or ()
               for action in suggestion.get("actions") or ()]
    topic = ((card.get("source") or {}).get("topic") or {}).get("code")
    return _digest([topic, card.get("indicator"), card.get("summary"), actions])


def baclofen_draft_keys(drafts: Iterable[dict], keys: Iterable[str], medications: Mapping[str, dict],
                        knowledge) -> tuple[str, ...]:
    """Keys of the baclofen drafts (`keys`: the draft_key of each draft): the orders the
    alert burden is counted per."""
    return tuple(key for draft, key in zip(drafts, keys)
                 if order_kind(draft, medication_concepts(draft, medications)[0], knowledge) == "baclofen")


# -- the decision --------------------------------------------------------------------------
def decide(card: dict, fingerprint: str, draft_keys: frozenset, overrides: list[Override],
           now: datetime, policy: Policy) -> SuppressedCard | None:
    """Why this card is not shown, or None to show it. `now` is naive UTC."""
    topic = ((card.get("source") or {}).get("topic") or {}).get("code")
    critical = card.get("indicator") == "critical"
    earlier = [o for o in overrides if o.topic == topic]
    if policy.once_per_order and not critical:
        for override in earlier:
            if override.fingerprint == fingerprint and override.draft_keys & draft_keys \
                    and now - override.at <= policy.same_order:
                return SuppressedCard(card, SAME_ORDER, override.reason_system, override.reason_code)
    if policy.snooze and (policy.snooze_critical or not critical):
        for override in earlier:
            days = policy.snooze_days(override.reason_code)
            if days and now - override.at <= timedelta(days=days):
                return SuppressedCard(card, SNOOZE, override.reason_system, override.reason_code)
    return None


@dataclass
class Outcome:
    found: list[dict]  # every card the engine made, in its order
    shown: list[dict]
    suppressed: list[SuppressedCard]
    draft_keys: tuple[str, ...]  # of the call's drafts, sorted, once each
    fingerprints: list[str]  # of the cards shown, in their order


def apply(call, cards: list[dict], keys: Iterable[str], policy: Policy, store) -> Outcome:
    """Split the engine's cards into shown and suppressed (`keys`: the draft_key of each
    of the call's drafts). Any store error: all shown."""
    keys = tuple(sorted(set(keys)))
    fingerprints = [card_fingerprint(card) for card in cards]
    everything = Outcome(cards, list(cards), [], keys, fingerprints)
    if not any(policy.may_suppress(card) for card in cards):
        return everything
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    try:
        overrides = store.overrides_for(call.patient_id, now - policy.lookback)
    except Exception:  # noqa: BLE001 - fail safe: never hide a card because of the store
        log.exception("could not read earlier overrides; showing every card", extra={
            "event": "suppression_lookup_failed", "hook_instance": call.hook_instance})
        return everything
    outcome, drafts = Outcome(cards, [], [], keys, []), frozenset(keys)
    for card, fingerprint in zip(cards, fingerprints):
        decision = decide(card, fingerprint, drafts, overrides, now, policy)
        if decision is None:
            outcome.shown.append(card)
            outcome.fingerprints.append(fingerprint)
        else:
            outcome.suppressed.append(decision)
    return outcome


def record(call, outcome: Outcome, orders: tuple[str, ...], store) -> list[dict]:
    """Keep the cards shown, the cards suppressed and the baclofen orders in one transaction;
    return the cards to answer with: if a suppression cannot be recorded, every card
    (nothing hidden unaccounted)."""
    # A call that hid nothing is recorded off its path (batched); one that hid a card
    # waits for the database, so that no card is hidden without a trace.
    write = store.record_cards if outcome.suppressed else store.record_cards_later
    try:
        write(call.service.id, call.service.hook, call.hook_instance, call.patient_id,
              outcome.shown, draft_keys=outcome.draft_keys, fingerprints=outcome.fingerprints,
              suppressed=outcome.suppressed, orders=orders)
    except Exception:  # noqa: BLE001 - logged, and the clinician still gets the cards
        log.exception("could not record cards; showing every card", extra={
            "event": "store_failed", "hook_instance": call.hook_instance})
        return outcome.found
    for item in outcome.suppressed:
        metrics.count_suppressed(call.service.id, item)
    if outcome.suppressed:
        log.info("cards suppressed", extra={
            "event": "cards_suppressed", "hook_instance": call.hook_instance,
            "topics": [f"{_topic(item.card)}:{item.why}" for item in outcome.suppressed]})
    return outcome.shown


def _topic(card: dict) -> str:
    return ((card.get("source") or {}).get("topic") or {}).get("code") or ""
