"""Scoring: PD, rating grade and reason codes for a features frame, with the model version.

Pure: the caller passes the model object (the flows load the champion from the registry).
Buyers already in default at as-of get grade 10 and PD 1 without being scored: a default
is a fact, not a probability.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.keys import positions
from data.partitions import buyer_partition
from models.master_scale import MASTER_SCALE
from models.pd.reasons import reason_codes

SCORE_COLUMNS = ["buyer_id", "as_of_date", "pd", "grade", "model_version"]
#: When a row's reason codes were computed (they may be carried from an earlier run).
REASONS_AS_OF = "reasons_as_of"


def score_buyers(
    features: pd.DataFrame,
    model,
    model_version: str,
    top_reasons: int = 3,
    explain: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per features row: buyer_id, as_of_date, pd, grade, model_version, reasons.

    `explain` (boolean mask) limits reason codes to the rows that need them (reason codes
    cost about 20 times the PD); by default every scored row gets them.
    """
    in_default = features["in_default_at_as_of"].fillna(False).to_numpy(dtype=bool)
    pd_ = np.ones(len(features))
    scored = ~in_default
    if scored.any():
        pd_[scored] = model.predict_pd(features.loc[scored])
    out = pd.DataFrame(
        {
            "buyer_id": features["buyer_id"].to_numpy(),
            "as_of_date": features["as_of_date"].to_numpy(),
            "pd": pd_,
            "grade": MASTER_SCALE.grade_of(pd_, in_default=in_default),
            "model_version": str(model_version),
        },
        index=features.index,
    )
    wanted = scored if explain is None else (scored & np.asarray(explain, dtype=bool))
    return out.join(explain_rows(features, model, wanted, top_reasons)).reset_index(drop=True)


def explain_rows(
    features: pd.DataFrame, model, wanted: np.ndarray, top_reasons: int = 3
) -> pd.DataFrame:
    """Reason-code columns for every row of `features`, computed only where `wanted`
    (the other rows' reasons stay missing), and `reasons_as_of`: the as-of date of the
    features they were computed on (missing where not computed)."""
    wanted = np.asarray(wanted, dtype=bool)
    values = features.loc[wanted, model.feature_names]
    contributions = (
        model.contributions(values)
        if len(values)  # LightGBM cannot explain zero rows
        else pd.DataFrame(0.0, index=values.index, columns=model.feature_names)
    )
    reasons = reason_codes(contributions, values, top=top_reasons).reindex(features.index)
    reasons[REASONS_AS_OF] = features["as_of_date"].where(wanted)
    return reasons


def needs_explanation(
    scores: pd.DataFrame,
    previous_scores: pd.DataFrame | None,
    recommendations: pd.DataFrame,
    alerts: pd.DataFrame,
) -> np.ndarray:
    """Rows of `scores` whose reason codes someone reads today (the rest are not computed).

    Why: reason codes cost about 20 times the PD, and on a daily rerun most buyers keep
    their grade, have no limit action and no alert. Explained: every scored buyer on the
    first run; afterwards a buyer whose grade changed (or who is new), who has a limit
    recommendation other than `maintain`, or who has an alert. Buyers in default are not
    scored, so never explained by the model (their event is the reason).
    """
    scored = scores["grade"].to_numpy() < MASTER_SCALE.default_grade
    if previous_scores is None:
        return scored
    ids = scores["buyer_id"]
    found = positions(ids, previous_scores["buyer_id"])
    before = previous_scores["grade"].to_numpy(dtype="float64", na_value=np.nan)
    previous = np.where(found >= 0, before[np.maximum(found, 0)], np.nan)
    changed = ~(previous == scores["grade"].to_numpy(dtype="float64"))
    acted = recommendations.loc[recommendations["action"] != "maintain", "buyer_id"]
    used = changed | (positions(ids, acted.unique()) >= 0)
    if len(alerts):
        used |= positions(ids, alerts["buyer_id"].unique()) >= 0
    return scored & used


def reusable_reasons(
    scores: pd.DataFrame,
    previous_scores: pd.DataFrame | None,
    recommendations: pd.DataFrame,
    previous_recommendations: pd.DataFrame | None,
    alerts: pd.DataFrame,
    refresh_days: int,
) -> np.ndarray:
    """Rows of `scores` whose reason codes from the previous run still hold (carried, not
    recomputed).

    Why: most buyers on a limit action repeat it day after day (until an underwriter acts),
    and recomputing their TreeSHAP reasons each day costs ~20 PDs per buyer. Carried when
    the previous run has reasons for the buyer computed less than `refresh_days` ago by the
    same model version, its grade is the same, its (policyholder, proposed action) pairs
    are the same as in the previous run, it has no alert today, and today is not its
    refresh day: every `refresh_days` days, staggered by a stable hash of buyer_id, so each
    day recomputes about 1 / refresh_days of the carried buyers, not all on one day.
    """
    n = len(scores)
    if previous_scores is None or REASONS_AS_OF not in previous_scores or not n:
        return np.zeros(n, dtype=bool)
    as_of = pd.Timestamp(scores["as_of_date"].iloc[0])
    ids = scores["buyer_id"]
    found = positions(ids, previous_scores["buyer_id"])
    known = found >= 0
    at = np.maximum(found, 0)
    computed = pd.to_datetime(previous_scores[REASONS_AS_OF]).to_numpy()[at]
    age_days = (as_of.to_datetime64() - computed) / np.timedelta64(1, "D")
    fresh_enough = known & (age_days < refresh_days)  # NaT compares False: no reasons
    same_grade = known & (
        previous_scores["grade"].to_numpy(dtype="float64", na_value=np.nan)[at]
        == scores["grade"].to_numpy(dtype="float64")
    )
    same_actions = _action_signature(ids, recommendations) == _action_signature(
        ids, previous_recommendations
    )
    same_model = np.ones(n, dtype=bool)
    if "model_version" in previous_scores:  # another model's reasons explain another PD
        before = previous_scores["model_version"].take(at).astype("str").to_numpy(dtype=object)
        same_model = before == scores["model_version"].astype("str").to_numpy(dtype=object)
    alerted = np.zeros(n, dtype=bool)
    if len(alerts):
        alerted = positions(ids, alerts["buyer_id"].unique()) >= 0
    day = (as_of - pd.Timestamp("1970-01-01")).days
    refresh_day = (buyer_partition(ids, refresh_days) + day) % refresh_days == 0
    return fresh_enough & same_model & same_grade & same_actions & ~alerted & ~refresh_day


def carry_reasons(
    reasons: pd.DataFrame, scores: pd.DataFrame, previous_scores: pd.DataFrame, carried: np.ndarray
) -> pd.DataFrame:
    """`reasons` (aligned with `scores`) with the `carried` rows' reason columns taken from
    the previous run's scores, `reasons_as_of` included."""
    carried = np.asarray(carried, dtype=bool)
    if not carried.any():
        return reasons
    at = positions(scores.loc[carried, "buyer_id"], previous_scores["buyer_id"])
    columns = {}
    for column in reasons.columns:
        if column == REASONS_AS_OF:
            values = reasons[column].to_numpy(copy=True)
            values[carried] = previous_scores[column].take(at).to_numpy().astype(values.dtype)
        else:  # reason names and texts: text, missing where no reason
            values = reasons[column].to_numpy(dtype=object, na_value=None, copy=True)
            taken = previous_scores[column].take(at)
            values[carried] = taken.to_numpy(dtype=object, na_value=None)
        columns[column] = values
    return pd.DataFrame(columns, index=reasons.index)


def _action_signature(ids: pd.Series, recommendations: pd.DataFrame | None) -> np.ndarray:
    """Per buyer of `ids` (unique), an order-free hash of its (policyholder, proposed action)
    pairs: the wrapping sum of the pairs' 64-bit hashes (0 for a buyer without any)."""
    out = np.zeros(len(ids), dtype=np.uint64)
    if recommendations is None or recommendations.empty:
        return out
    at = positions(recommendations["buyer_id"], ids)
    keep = at >= 0
    pair = pd.util.hash_pandas_object(
        recommendations[["policyholder_id", "proposed_action"]], index=False
    ).to_numpy()
    np.add.at(out, at[keep], pair[keep])
    return out
