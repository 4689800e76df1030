"""Context features: the buyer's country risk, sector and age at as_of."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.reference import NACE_SECTIONS

CONTEXT_FEATURES = ["political_risk_class", "sector", "company_age_years"]
#: Sector as a categorical with every NACE section, so codes are the same in every snapshot.
SECTOR_DTYPE = pd.CategoricalDtype(sorted(NACE_SECTIONS))


def context_features(
    grid: pd.DataFrame, buyers: pd.DataFrame, country_risk: pd.DataFrame
) -> pd.DataFrame:
    """Country political-risk class, NACE section and company age for each (buyer, as_of) row."""
    info = buyers.set_index("buyer_id")[["country", "sector", "incorporation_date"]]
    rows = info.reindex(grid["buyer_id"].to_numpy())
    risk_class = country_risk.set_index("country")["political_risk_class"].astype("float64")
    age_days = (grid["as_of_date"].to_numpy() - rows["incorporation_date"].to_numpy()).astype(
        "timedelta64[D]"
    )
    return pd.DataFrame(
        {
            "political_risk_class": rows["country"].map(risk_class).to_numpy(),
            "sector": rows["sector"].astype(SECTOR_DTYPE).to_numpy(),
            # An unknown incorporation date gives NaT: missing, not int64-min days.
            "company_age_years": np.where(
                np.isnat(age_days), np.nan, age_days.astype("float64") / 365.25
            ),
        },
        index=grid.index,
    )
