"""Decision value of the limit policy, with the decision loop replayed: what its decisions
would have saved, and what they cost.

Over the monthly as-of dates of a labelled period (the out-of-time test months) the buyers
are scored with the model and the loop runs as it does every day: the engine proposes
against the book as earlier decisions left it, the system decides what the policy lets it
decide, referred items are decided by a stated underwriter rule (cuts accepted, increases
granted at good grades, the rest refused), cuts take effect after the notice period, and a
decided pair is left alone until something material changes. The outcome over the next 12
months (the training label and its default date) tells which buyers defaulted. Against
keeping the starting book unchanged it measures:

- avoided: the share of the cover on buyers that default within the horizon that is no
  longer in force on their default date (exposure at default taken as the limit in force,
  the usual worst case: buyers near default draw on their limits);
- retained: the share of the cover on buyers that do not default still in force once the
  decisions took effect, and the increases granted to them (the business kept);
- the loop's load: proposals per date, the share decided automatically, items for a human.

Simplifications, stated in the printout: the starting book is each pair's first limit
above 0 in the lake (the generated book keeps a pair's latest decisions only, and for a
buyer that defaulted the limit it had before); dates are month ends, so a 30-day
notice takes effect by the next date; buyers already in default at as-of are reported
apart (their cancellation is a fact, not a prediction).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.limits.book import PAIR_KEY, amounts_in_force
from models.limits.decisions import scripted_answers
from models.limits.engine import recommend_limits
from models.limits.inputs import assemble_pairs
from models.limits.policy import LimitPolicy
from models.master_scale import MASTER_SCALE
from models.pd.scoring import score_buyers

RESULT_COLUMNS = [
    "as_of_date",
    "policy",
    "policy_version",
    "model_version",
    "pairs",
    "defaulter_pairs",
    "defaulter_cover",
    "avoided_cover",
    "avoided_share",
    "performing_cover",
    "retained_cover",
    "retained_share",
    "increases_granted",
    "increases_to_defaulters",
    "already_in_default_cover",
    "proposals",
    "automatic",
    "to_a_human",
]


def policy_variant(
    policy: LimitPolicy,
    name: str,
    capacity_factor: float = 1.0,
    cancel_grade: int | None = None,
    increase_max_grade: int | None = None,
    notice_days: int | None = None,
) -> LimitPolicy:
    """A what-if copy of the policy: capacity multiples scaled, grade thresholds moved, the
    notice period changed."""
    cap = policy.capacity

    def scaled(table: dict[int, float]) -> dict[int, float]:
        return {g: min(10.0, m * capacity_factor) for g, m in table.items()}

    capacity = cap.model_copy(
        update={
            "equity_multiple": scaled(cap.equity_multiple),
            "turnover_multiple": scaled(cap.turnover_multiple),
            "payment_multiple": scaled(cap.payment_multiple),
        }
    )
    cancel = policy.cancel.model_copy(update={"grade": cancel_grade or policy.cancel.grade})
    increase = policy.increase.model_copy(
        update={"max_grade": increase_max_grade or policy.increase.max_grade}
    )
    notice = policy.notice.model_copy(
        update={"days": policy.notice.days if notice_days is None else notice_days}
    )
    return policy.model_copy(
        update={
            "version": f"{policy.version}+{name}",
            "capacity": capacity,
            "cancel": cancel,
            "increase": increase,
            "notice": notice,
        }
    )


def decision_value(recs: pd.DataFrame, defaulted: pd.Series) -> dict[str, float]:
    """Cover avoided on defaulters and retained on performers for one date's recommendations.

    `defaulted`: per buyer_id, 1 if it defaults within 12 months of as-of (0 otherwise);
    buyers in default already at as-of (the master scale's default grade) are counted apart.
    """
    limit = recs["limit_amount"].to_numpy(dtype="float64")
    after = recs["recommended_amount"].to_numpy(dtype="float64")
    in_default = (
        recs["grade"].to_numpy(dtype="float64", na_value=np.nan) >= MASTER_SCALE.default_grade
    )
    outcome = recs["buyer_id"].map(defaulted).to_numpy(dtype="float64", na_value=np.nan)
    known = ~np.isnan(outcome) & ~in_default
    bad = known & (outcome == 1)
    good = known & (outcome == 0)
    kept = np.minimum(after, limit)
    raised = np.maximum(after - limit, 0.0)
    defaulter_cover = limit[bad].sum()
    performing_cover = limit[good].sum()
    avoided = (limit - kept)[bad].sum()
    retained = kept[good].sum()
    return {
        "pairs": float(known.sum()),
        "defaulter_pairs": float(bad.sum()),
        "defaulter_cover": defaulter_cover,
        "avoided_cover": avoided,
        "avoided_share": avoided / defaulter_cover if defaulter_cover else np.nan,
        "performing_cover": performing_cover,
        "retained_cover": retained,
        "retained_share": retained / performing_cover if performing_cover else np.nan,
        "increases_granted": raised[good].sum(),
        "increases_to_defaulters": raised[bad].sum(),
        "already_in_default_cover": limit[in_default].sum(),
    }


def score_months(
    snapshots: pd.DataFrame, model, model_version: str
) -> dict[pd.Timestamp, pd.DataFrame]:
    """Scores (buyer_id, pd, grade) of every as-of month in `snapshots`, without reasons."""
    out = {}
    for date, rows in snapshots.groupby("as_of_date", sort=True):
        scores = score_buyers(
            rows, model, model_version, top_reasons=1, explain=np.zeros(len(rows), dtype=bool)
        )
        out[pd.Timestamp(date)] = scores[["buyer_id", "pd", "grade", "model_version"]]
    return out


def _starting_book(limits: pd.DataFrame, first: pd.Timestamp) -> pd.DataFrame:
    """Each pair's first limit above 0 as one version in force from before the first date:
    the book the loop starts from. The lake keeps each pair's latest decisions only (a
    defaulted buyer: the limit before and its cancellation), so the book is not rebuilt as
    it stood at each past date; the first version is the cover the buyer had before any
    default, which is what the decisions are judged on."""
    covered = limits.loc[limits["limit_amount"] > 0]
    earliest = covered.sort_values([*PAIR_KEY, "decision_date"], kind="stable").drop_duplicates(
        PAIR_KEY, keep="first"
    )
    return pd.DataFrame(
        {
            "policyholder_id": earliest["policyholder_id"].to_numpy(),
            "buyer_id": earliest["buyer_id"].to_numpy(),
            "limit_amount": earliest["limit_amount"].to_numpy(dtype="float64"),
            "requested_amount": earliest["requested_amount"].to_numpy(dtype="float64"),
            "exposure": earliest["exposure"].to_numpy(dtype="float64"),
            "decision_date": first - pd.Timedelta(days=1),
            "effective_date": pd.NaT,
        }
    ).astype({"decision_date": "datetime64[ns]", "effective_date": "datetime64[ns]"})


def _decide(recs: pd.DataFrame, policy: LimitPolicy, as_of: pd.Timestamp) -> pd.DataFrame:
    """The loop's decisions of one date: automatic ones as proposed; referred ones by the
    stated underwriter rule (`decisions.scripted_answers`); one row per decided pair with
    the amount, the effective date and the grade then."""
    acting = recs.loc[recs["action"] != "maintain"].reset_index(drop=True)
    human = acting["action"] == "refer"
    answers = scripted_answers(acting.loc[human].assign(id=0), policy.increase.max_grade)
    accepted = np.ones(len(acting), dtype=bool)
    accepted[np.flatnonzero(human)] = (answers["outcome"] == "accepted").to_numpy()
    amount = np.where(accepted, acting["recommended_amount"], acting["limit_amount"])
    return pd.DataFrame(
        {
            "policyholder_id": acting["policyholder_id"].to_numpy(),
            "buyer_id": acting["buyer_id"].to_numpy(),
            "decided_amount": amount,
            "changes": accepted & (acting["proposed_action"] != "maintain").to_numpy(),
            "effective_date": acting["effective_date"].fillna(as_of).to_numpy(),
            "grade": acting["grade"].astype("float64").to_numpy(),
            "human": human.to_numpy(),
        }
    )


def backtest_limits(
    snapshots: pd.DataFrame,
    dates: list[pd.Timestamp],
    tables: dict[str, pd.DataFrame],
    model,
    model_version: str,
    policies: dict[str, LimitPolicy],
) -> pd.DataFrame:
    """The decision loop replayed over `dates`, per policy variant: one row per (date,
    policy) with the decision value and the loop's figures.

    At each date the engine proposes against the book as the loop's earlier decisions left
    it; automatic proposals are decided as proposed, referred ones by the stated
    underwriter rule; decided limits take effect after their notice period; a decided pair
    is left alone until something material changes (the engine's own rule). The value of
    the decisions up to each date, against keeping the starting book unchanged: for a
    buyer defaulting within the horizon, the cover still in force on its default date; for
    the others, the cover in force once the date's decisions took effect.

    `snapshots`: the labelled monthly training set (features, `label`, `default_date`,
    `as_of_date`); `dates`: the as-of dates (the month before each is scored too, for
    downgrades).
    """
    dates = sorted(dates)
    wanted = set(dates) | {d - pd.offsets.MonthEnd(1) for d in dates}
    rows = snapshots.loc[snapshots["as_of_date"].isin(wanted)]
    scores = score_months(rows, model, model_version)
    start = _starting_book(tables["limits"], dates[0])
    results = []
    for name, policy in policies.items():
        versions, history, decided = start, None, None
        for date in dates:
            month = rows.loc[rows["as_of_date"] == date]
            pairs = assemble_pairs(
                date,
                {**tables, "limits": versions},
                scores[date],
                month[["buyer_id", "political_risk_class", "oldest_overdue_days"]],
                scores.get(date - pd.offsets.MonthEnd(1)),
                history,
                grace_days=policy.capacity.payment_grace_days,
                decisions=decided,
            )
            recs = recommend_limits(pairs, policy, model_version)
            taken = _decide(recs, policy, date)
            changed = taken.loc[taken["changes"]]
            versions = pd.concat(
                [
                    versions,
                    changed.assign(
                        limit_amount=changed["decided_amount"],
                        requested_amount=np.nan,
                        exposure=0.0,
                        decision_date=date,
                    )[versions.columns],
                ],
                ignore_index=True,
            )
            stamp = taken.assign(last_decision_date=date, last_decision_grade=taken["grade"])
            decided = pd.concat(
                [decided, stamp[[*PAIR_KEY, "last_decision_date", "last_decision_grade"]]]
            ).drop_duplicates(PAIR_KEY, keep="last")
            step = recs[[*PAIR_KEY, "as_of_date", "proposed_action"]]
            history = step if history is None else pd.concat([history, step], ignore_index=True)
            outcome = month.set_index("buyer_id")
            # defaulters: the cover on their default date; the others: once today's
            # decisions took effect (after the notice period)
            default_day = pd.to_datetime(recs["buyer_id"].map(outcome["default_date"]))
            settled = date + pd.Timedelta(days=policy.notice.days + 1)
            when = default_day.fillna(settled).to_numpy(dtype="datetime64[ns]")
            today = np.full(len(recs), date.to_datetime64())
            value = decision_value(
                recs.assign(
                    limit_amount=amounts_in_force(start, recs, today),
                    recommended_amount=amounts_in_force(versions, recs, when),
                ),
                outcome["label"],
            )
            results.append(
                {
                    "as_of_date": date,
                    "policy": name,
                    "policy_version": policy.version,
                    "model_version": model_version,
                    **value,
                    "proposals": len(taken),
                    "automatic": int((~taken["human"]).sum()),
                    "to_a_human": int(taken["human"].sum()),
                }
            )
    return pd.DataFrame(results, columns=RESULT_COLUMNS)


def summarise_backtest(results: pd.DataFrame) -> pd.DataFrame:
    """Per policy variant, the figures pooled over all dates (sums, then shares), with the
    loop's daily averages: proposals, share decided automatically, items for a human."""
    sums = results.groupby("policy", sort=False)[
        [
            "pairs",
            "defaulter_pairs",
            "defaulter_cover",
            "avoided_cover",
            "performing_cover",
            "retained_cover",
            "increases_granted",
            "increases_to_defaulters",
            "proposals",
            "automatic",
            "to_a_human",
        ]
    ].sum()
    sums["avoided_share"] = sums["avoided_cover"] / sums["defaulter_cover"]
    sums["retained_share"] = sums["retained_cover"] / sums["performing_cover"]
    sums["dates"] = results.groupby("policy", sort=False)["as_of_date"].nunique()
    sums["automatic_share"] = sums["automatic"] / sums["proposals"].where(sums["proposals"] > 0)
    sums["to_a_human_per_date"] = sums["to_a_human"] / sums["dates"]
    versions = results.groupby("policy", sort=False)[["policy_version", "model_version"]].first()
    return versions.join(sums)
