"""One call from the day's book and scores to the limit recommendations.

The daily rescoring (each buyer partition) and any other caller use this, so the engine's
inputs are assembled one way only.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from models.limits.engine import recommend_limits
from models.limits.inputs import assemble_pairs
from models.limits.policy import LimitPolicy

#: Columns of the day's features the limit engine reads.
FEATURE_COLUMNS = ["buyer_id", "political_risk_class", "oldest_overdue_days"]


def recommend_for_book(
    as_of: pd.Timestamp,
    tables: Mapping[str, pd.DataFrame],
    scores: pd.DataFrame,
    features: pd.DataFrame,
    previous_scores: pd.DataFrame | None,
    history: pd.DataFrame | None,
    policy: LimitPolicy,
    model_version: str,
    decisions: pd.DataFrame | None = None,
    requests: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Recommendations for every limit in force or scheduled at `as_of`, and every open
    request (see `assemble_pairs` for what each input holds, `recommend_limits` for the
    rules)."""
    pairs = assemble_pairs(
        as_of,
        tables,
        scores,
        features[FEATURE_COLUMNS],
        previous_scores,
        history,
        grace_days=policy.capacity.payment_grace_days,
        decisions=decisions,
        requests=requests,
    )
    return recommend_limits(pairs, policy, model_version)
