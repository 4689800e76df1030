"""Scoring: PD, rating grade and reason codes for a features frame, with the model version.

Pure: the caller passes the model object (the flows load the champion from the registry).
Buyers already in default at as-of get grade 10 and PD 1 without being scored: a default
is a fact, not a probability.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.keys import positions
from models.master_scale import MASTER_SCALE
from models.reasons import reason_codes

SCORE_COLUMNS = ["buyer_id", "as_of_date", "pd", "grade", "model_version"]


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
    (the other rows' reasons stay missing)."""
    values = features.loc[np.asarray(wanted, dtype=bool), model.feature_names]
    contributions = (
        model.contributions(values)
        if len(values)  # LightGBM cannot explain zero rows
        else pd.DataFrame(0.0, index=values.index, columns=model.feature_names)
    )
    reasons = reason_codes(contributions, values, top=top_reasons)
    return reasons.reindex(features.index)


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
