"""Rules 13-15: drugs to avoid for cramps (cyclobenzaprine, quinidine, benzodiazepines >= 65)."""
from __future__ import annotations

from .. import actions
from ..cardbuilder import Finding
from ..facts import Draft, Facts
from .base import each, rule


def _avoid(facts: Facts, topic: str, kind: str, summary: str, why: str, older_only: bool = False):
    def check(draft: Draft) -> Finding | None:
        if not (draft.starting and draft.order.kind == kind):
            return None
        if not (facts.cramp_context or "cramps" in draft.reason):
            return None
        if older_only and not facts.older_adult:
            return None
        removal = actions.suggestion(f"Remove the {draft.order.name} order", actions.delete_draft(draft))
        return Finding(topic, "warning", summary.format(name=draft.order.name, age=facts.age),
                       f"**{draft.order.name}** ordered in a cramp context (baclofen, muscle"
                       f" cramps or cirrhosis on record). {why}", [removal] if removal else [])
    return each(facts.drafts, check)


@rule(13, "avoid-cyclobenzaprine", "warning",
      "draft cyclobenzaprine in a cramp context (active or draft oral baclofen, active muscle-cramp"
      " Condition, or cirrhosis)", "delete the draft")
def avoid_cyclobenzaprine(facts: Facts):
    return _avoid(facts, "avoid-cyclobenzaprine", "cyclobenzaprine",
                  "Cyclobenzaprine for cramps: no evidence of benefit, raises fall risk",
                  "Cyclobenzaprine does not relieve cramps, has no proven benefit in chronic pain,"
                  " is anticholinergic and increases falls in older adults (Beers 2023: avoid).")


@rule(14, "avoid-quinidine", "warning", "draft quinidine in a cramp context", "delete the draft")
def avoid_quinidine(facts: Facts):
    return _avoid(facts, "avoid-quinidine", "quinidine",
                  "Quinidine for cramps: diarrhoea forces withdrawal in about 1 in 3",
                  "Quinidine works for cramps at 400 mg/day, but diarrhoea forces withdrawal in"
                  " about one third of patients; it is also proarrhythmic. Prefer other options.")


@rule(15, "benzodiazepine-older-adult", "warning",
      "draft benzodiazepine, age >= {age.older_adult_years}, cramp context", "delete the draft")
def benzodiazepine_older_adult(facts: Facts):
    return _avoid(facts, "benzodiazepine-older-adult", "benzodiazepines",
                  "Age {age}: avoid {name} in older adults (Beers 2023)",
                  "Benzodiazepines raise the risk of falls, fractures, delirium and cognitive"
                  " impairment in older adults (AGS Beers 2023: avoid).", older_only=True)
