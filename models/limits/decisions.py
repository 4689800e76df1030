"""Decisions on limit proposals: what is decided automatically, who may decide the rest, and
the limit version each decision writes into the book.

Pure functions; the decision store (`data/decisions/`) keeps the records and the lake keeps
the book. The engine proposes (`models/limits/engine.py`); this module turns proposals and
underwriters' answers into decisions:

- **automatic**: a proposal the policy lets the system decide (its `automatic_rule`) is
  decided at once, as proposed;
- **human**: an underwriter accepts, modifies (another amount) or rejects a proposal with a
  reason, within their authority: the limit they keep or grant may not exceed their
  authority amount;
- **effective date**: an increase takes effect at once; a reduction after the policy's
  notice period (at once on a cancelling event: the proposal carries its notice).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.limits.book import PAIR_KEY

OUTCOMES = ("accepted", "modified", "rejected", "automatic")
#: Outcomes an underwriter gives (the `automatic` one is the system's).
HUMAN_OUTCOMES = ("accepted", "modified", "rejected")
#: Proposal columns kept in the decision store (the queue an underwriter reads).
PROPOSAL_COLUMNS = [
    "as_of_date", "policyholder_id", "buyer_id", "action", "proposed_action", "limit_amount",
    "recommended_amount", "requested_amount", "exposure", "grade", "previous_grade", "pd",
    "reason_codes", "explanation", "expected_loss_before", "expected_loss_after", "priority",
    "human_required", "automatic_rule", "deadline", "new_today", "model_version",
    "policy_version",
]  # fmt: skip


class DecisionRefused(ValueError):
    """A decision that may not be taken as asked; the message says why (nothing is written)."""


class AboveAuthority(DecisionRefused):
    """The limit decided is above the underwriter's authority (another must decide)."""

    def __init__(self, message: str, amount: float) -> None:
        super().__init__(message)
        self.amount = amount


def proposals_to_publish(recommendations: pd.DataFrame) -> pd.DataFrame:
    """The day's proposals: every recommendation that would change the book (not
    `maintain`), in queue order."""
    acting = recommendations.loc[recommendations["action"] != "maintain", PROPOSAL_COLUMNS]
    return acting.sort_values("priority", kind="stable", ignore_index=True)


def automatic_decisions(proposals: pd.DataFrame, recommendations: pd.DataFrame) -> pd.DataFrame:
    """The decisions the system takes alone today: the proposals with an automatic rule,
    decided as proposed, with the effective date and notice of their recommendation.

    `proposals` carry the store's `id`; the result has one row per automatic proposal:
    proposal_id, pair, recommended/decided action and amount, previous_amount, rule,
    effective_date, notice_days, model and policy versions.
    """
    auto = proposals.loc[proposals["automatic_rule"].notna()]
    timing = recommendations.set_index(PAIR_KEY)[["effective_date", "notice_days"]]
    auto = auto.join(timing, on=PAIR_KEY)
    return pd.DataFrame(
        {
            "proposal_id": auto["id"].to_numpy(),
            "policyholder_id": auto["policyholder_id"].to_numpy(),
            "buyer_id": auto["buyer_id"].to_numpy(),
            "recommended_action": auto["proposed_action"].to_numpy(),
            "recommended_amount": auto["recommended_amount"].to_numpy(dtype="float64"),
            "decided_action": auto["proposed_action"].to_numpy(),
            "decided_amount": auto["recommended_amount"].to_numpy(dtype="float64"),
            "previous_amount": auto["limit_amount"].to_numpy(dtype="float64"),
            "rule": auto["automatic_rule"].to_numpy(),
            "effective_date": pd.to_datetime(auto["effective_date"]).dt.date.to_numpy(),
            "notice_days": auto["notice_days"].to_numpy(dtype="int64"),
            "model_version": auto["model_version"].to_numpy(),
            "policy_version": auto["policy_version"].to_numpy(),
        }
    )


@dataclass(frozen=True)
class HumanDecision:
    """An underwriter's answer to one proposal, checked and ready to record."""

    outcome: str
    decided_action: str
    decided_amount: float
    effective_date: dt.date
    notice_days: int


def human_decision(
    proposal: dict,
    outcome: str,
    amount: float | None,
    authority: float | None,
    today: dt.date,
    notice_days: int,
    reason: str,
) -> HumanDecision:
    """Check an underwriter's answer and work out what it decides.

    `proposal`: the stored proposal (limit_amount, recommended_amount, proposed_action);
    `outcome`: accepted | modified | rejected; `amount`: the new limit when modified;
    `authority`: the underwriter's authority (EUR; None = none at all); `notice_days`: the
    policy's notice for a reduction (0 when the proposal's reduction is immediate).
    Raises `DecisionRefused` naming what is wrong.
    """
    if outcome not in HUMAN_OUTCOMES:
        raise DecisionRefused(
            f"outcome must be one of {', '.join(HUMAN_OUTCOMES)}, not {outcome!r}"
        )
    if not reason or not reason.strip():
        raise DecisionRefused("a reason is required: it is kept with the decision")
    current = float(proposal["limit_amount"])
    if outcome == "modified":
        if amount is None or not np.isfinite(amount) or amount < 0:
            raise DecisionRefused(
                f"a modified decision needs a new limit of 0 or more, got {amount}"
            )
        decided = float(amount)
    elif amount is not None:
        raise DecisionRefused(f"an amount goes with --modify only ({outcome} takes the proposal's)")
    else:
        decided = float(proposal["recommended_amount"]) if outcome == "accepted" else current
    # The limit the underwriter keeps in force or grants must be within their authority.
    if authority is None or decided > authority:
        held = "no authority" if authority is None else f"authority EUR {authority:,.0f}"
        raise AboveAuthority(
            f"a limit of EUR {decided:,.0f} is above your {held}: an underwriter with a "
            "higher authority must decide",
            decided,
        )
    if decided > current:
        action, notice = "increase", 0
    elif decided < current:
        action, notice = ("cancel" if decided == 0 else "decrease"), notice_days
    else:
        action, notice = "maintain", 0
    return HumanDecision(outcome, action, decided, today + dt.timedelta(days=notice), notice)


def limit_versions(decisions: pd.DataFrame, book: pd.DataFrame) -> pd.DataFrame:
    """The lake `limits` rows that decisions write: one version per decided pair and day
    (the latest decision of the day wins), amount decided, effective after its notice.

    `decisions`: policyholder_id, buyer_id, decided_amount, decided_at, effective_date,
    decided_action (rejections and decisions that keep the limit write no version).
    `book`: the limits in force (for the pair's exposure; 0 for a new pair).
    """
    changing = decisions.loc[decisions["decided_action"] != "maintain"].copy()
    changing["decision_date"] = (
        pd.to_datetime(changing["decided_at"], utc=True).dt.tz_localize(None).dt.normalize()
    )
    changing = changing.sort_values("decided_at", kind="stable").drop_duplicates(
        [*PAIR_KEY, "decision_date"], keep="last"
    )
    exposure = book.set_index(PAIR_KEY)["exposure"]
    rows = changing.join(exposure, on=PAIR_KEY)
    return pd.DataFrame(
        {
            "policyholder_id": rows["policyholder_id"].to_numpy(),
            "buyer_id": rows["buyer_id"].to_numpy(),
            "limit_amount": rows["decided_amount"].to_numpy(dtype="float64"),
            "requested_amount": np.full(len(rows), np.nan),
            "exposure": rows["exposure"].fillna(0.0).to_numpy(dtype="float64"),
            "decision_date": rows["decision_date"].to_numpy(dtype="datetime64[ns]"),
            "effective_date": pd.to_datetime(rows["effective_date"]).to_numpy(
                dtype="datetime64[ns]"
            ),
        }
    )


def last_decisions(decisions: pd.DataFrame) -> pd.DataFrame:
    """Per pair, the date of the latest decision (an underwriter's or the system's) and the
    buyer's grade then: what the engine compares to decide whether something material
    changed since (a decided pair is not proposed again without a reason).

    `decisions`: policyholder_id, buyer_id, decided_at and `grade` (the grade of the
    proposal decided; missing for a request answered at once).
    """
    human = decisions.copy()
    if human.empty:
        return pd.DataFrame(columns=[*PAIR_KEY, "last_decision_date", "last_decision_grade"])
    human["last_decision_date"] = (
        pd.to_datetime(human["decided_at"], utc=True).dt.tz_localize(None).dt.normalize()
    )
    latest = human.sort_values("decided_at", kind="stable").drop_duplicates(PAIR_KEY, keep="last")
    return latest.assign(last_decision_grade=latest["grade"].astype("float64"))[
        [*PAIR_KEY, "last_decision_date", "last_decision_grade"]
    ].reset_index(drop=True)


def scripted_answers(queue: pd.DataFrame, max_grade_for_increase: int) -> pd.DataFrame:
    """A stated underwriter rule, for the demo and the loop backtest: accept every cut and
    cancellation, grant an increase at `max_grade_for_increase` or better and refuse it
    beyond, keep the limit of a buyer without a score. One row per queue item: id,
    outcome, reason."""
    proposed = queue["proposed_action"].to_numpy()
    grade = queue["grade"].to_numpy(dtype="float64", na_value=np.nan)
    reducing = np.isin(proposed, ("decrease", "cancel"))
    granting = (proposed == "increase") & (grade <= max_grade_for_increase)
    outcome = np.where(reducing | granting, "accepted", "rejected")
    reason = np.select(
        [reducing, granting, proposed == "increase"],
        ["cut accepted: risk above appetite", "increase granted: grade within appetite",
         "increase refused: grade too weak"],
        "no score: the limit stays until the buyer can be rated",
    )  # fmt: skip
    return pd.DataFrame({"id": queue["id"].to_numpy(), "outcome": outcome, "reason": reason})
