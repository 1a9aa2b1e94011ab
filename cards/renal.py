"""Renal function: the most recent of a reported eGFR and an eGFR computed with CKD-EPI 2021
from serum creatinine (age at the sample, administrative gender)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Mapping

from .dates import age_on
from .knowledge import Knowledge
from .labs import LabValue


@dataclass(frozen=True)
class RenalValue:
    egfr: float  # mL/min/1.73m2
    when: datetime
    basis: str  # how it was obtained, for the card's detail
    reported_as: str = ""  # an eGFR given with a comparator, as reported (">29")

    def label(self) -> str:
        return f"eGFR {self.reported_as or f'{self.egfr:g}'} mL/min/1.73m2 ({self.when.date().isoformat()})"


def ckd_epi_2021(creatinine_mg_dl: float, age: int, female: bool, knowledge: Knowledge) -> float:
    k = knowledge["ckd_epi"]
    kappa = k["kappa_female"] if female else k["kappa_male"]
    alpha = k["alpha_female"] if female else k["alpha_male"]
    ratio = creatinine_mg_dl / kappa
    egfr = (k["constant"] * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** k["exponent_above_kappa"]
            * k["age_base"] ** age)
    return round(egfr * (k["female_factor"] if female else 1.0), k["round_to"])


def egfr_from_creatinine(creatinine: LabValue, birth_date: date | None, gender: str | None,
                         knowledge: Knowledge) -> RenalValue | None:
    """Unknown or other gender: the lower of the female and male results (the safer one)."""
    if birth_date is None:
        return None
    age = age_on(birth_date, creatinine.when.date())
    if age < knowledge.value("renal", "min_adult_age_for_ckd_epi") or creatinine.value <= 0:
        return None
    sexes = {"female": (True,), "male": (False,)}.get(gender or "", (True, False))
    egfr = min(ckd_epi_2021(creatinine.value, age, female, knowledge) for female in sexes)
    basis = (f"computed with CKD-EPI 2021 from creatinine {creatinine.value:g} mg/dL"
             f" ({creatinine.when.date().isoformat()}, age {age}"
             f"{'' if len(sexes) == 1 else ', gender not male/female: lower of both results'})")
    return RenalValue(egfr, creatinine.when, basis)


def latest_renal(labs: Mapping[str, list[LabValue]], birth_date: date | None, gender: str | None,
                 knowledge: Knowledge) -> RenalValue | None:
    """The most recent renal value; at the same time the lower one."""
    candidates = []
    reported = labs.get("egfr") or ()
    if reported:
        latest = reported[0]
        basis = (f"reported eGFR (read as {latest.value:g}, its nearest possible value)"
                 if latest.reported_as else "reported eGFR")
        candidates.append(RenalValue(latest.value, latest.when, basis, latest.reported_as))
    for creatinine in labs.get("creatinine") or ():
        computed = egfr_from_creatinine(creatinine, birth_date, gender, knowledge)
        if computed:
            candidates.append(computed)
            break
    if not candidates:
        return None
    return min(candidates, key=lambda v: (-v.when.timestamp(), v.egfr))
