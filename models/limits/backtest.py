"""Decision value of the limit policy: what its cuts would have saved, and what they cost.

At each monthly as-of date of a labelled period (the out-of-time test months), the buyers
are scored with the model, the engine recommends an action for every credit limit, and
the outcome over the next 12 months (the training label) tells which buyers defaulted.
Against keeping every limit unchanged it measures:

- avoided: the share of the cover on buyers that default within 12 months that the cuts
  and cancellations remove (exposure at default taken as the limit in force, the usual
  worst case: buyers near default draw on their limits);
- retained: the share of the cover on buyers that do not default that is kept, and the
  increases granted to them (the business the policy keeps writing).

Simplifications, stated in the printout: the limit book is the one in the lake (limits are
not rebuilt as they stood at each past date); each date is one decision on that book;
referred proposals count as accepted; buyers already in default at as-of are reported
apart (their cancellation is a fact, not a prediction).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
]


def policy_variant(
    policy: LimitPolicy,
    name: str,
    capacity_factor: float = 1.0,
    cancel_grade: int | None = None,
    increase_max_grade: int | None = None,
) -> LimitPolicy:
    """A what-if copy of the policy: capacity multiples scaled, grade thresholds moved."""
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
    return policy.model_copy(
        update={
            "version": f"{policy.version}+{name}",
            "capacity": capacity,
            "cancel": cancel,
            "increase": increase,
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


def backtest_limits(
    snapshots: pd.DataFrame,
    dates: list[pd.Timestamp],
    tables: dict[str, pd.DataFrame],
    model,
    model_version: str,
    policies: dict[str, LimitPolicy],
) -> pd.DataFrame:
    """One row per (as-of date, policy variant) with the decision-value figures.

    `snapshots`: the labelled monthly training set (features, `label`, `as_of_date`);
    `dates`: the as-of dates to test (the month before each is scored too, for downgrades).
    """
    wanted = set(dates) | {d - pd.offsets.MonthEnd(1) for d in dates}
    rows = snapshots.loc[snapshots["as_of_date"].isin(wanted)]
    scores = score_months(rows, model, model_version)
    results = []
    for date in sorted(dates):
        month = rows.loc[rows["as_of_date"] == date]
        defaulted = month.set_index("buyer_id")["label"]
        previous = scores.get(date - pd.offsets.MonthEnd(1))
        for name, policy in policies.items():
            pairs = assemble_pairs(
                date,
                tables,
                scores[date],
                month[["buyer_id", "political_risk_class", "oldest_overdue_days"]],
                previous,
                None,
                grace_days=policy.capacity.payment_grace_days,
            )
            recs = recommend_limits(pairs, policy, model_version)
            results.append(
                {
                    "as_of_date": date,
                    "policy": name,
                    "policy_version": policy.version,
                    "model_version": model_version,
                    **decision_value(recs, defaulted),
                }
            )
    return pd.DataFrame(results, columns=RESULT_COLUMNS)


def summarise_backtest(results: pd.DataFrame) -> pd.DataFrame:
    """Per policy variant, the figures pooled over all dates (sums, then shares)."""
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
        ]
    ].sum()
    sums["avoided_share"] = sums["avoided_cover"] / sums["defaulter_cover"]
    sums["retained_share"] = sums["retained_cover"] / sums["performing_cover"]
    sums["dates"] = results.groupby("policy", sort=False)["as_of_date"].nunique()
    versions = results.groupby("policy", sort=False)[["policy_version", "model_version"]].first()
    return versions.join(sums)
