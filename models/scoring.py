"""Scoring: PD, rating grade and reason codes for a features frame, with the model version.

Pure: the caller passes the model object (the flows load the champion from the registry).
Buyers already in default at as-of get grade 10 and PD 1 without being scored: a default
is a fact, not a probability.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
    cost more than the PD); by default every scored row gets them.
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
    values = features.loc[wanted, model.feature_names]
    contributions = (
        model.contributions(values)
        if wanted.any()  # LightGBM cannot explain zero rows
        else pd.DataFrame(0.0, index=values.index, columns=model.feature_names)
    )
    reasons = reason_codes(contributions, values, top=top_reasons)
    return out.join(reasons).reset_index(drop=True)
