"""Reason codes: the largest PD-raising contributors, never a PD-lowering one, readable texts."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from models.pd.reasons import reason_codes


def test_picks_the_largest_positive_contributors_in_order() -> None:
    contrib = pd.DataFrame(
        {
            "dbt_12m": [0.9, -0.2, 0.0],
            "negative_equity": [0.1, 0.3, -0.1],
            "current_ratio": [0.5, -0.4, -0.3],
            "political_risk_class": [-1.0, 0.05, np.nan],
        },
        index=["B1", "B2", "B3"],
    )
    values = pd.DataFrame(
        {
            "dbt_12m": [45.2, 3.0, 0.0],
            "negative_equity": [1.0, 1.0, 0.0],
            "current_ratio": [0.61, 2.0, 1.5],
            "political_risk_class": [0.0, 5.0, 0.0],
        },
        index=["B1", "B2", "B3"],
    )
    reasons = reason_codes(contrib, values, top=3)
    assert reasons.index.tolist() == ["B1", "B2", "B3"]
    assert reasons.loc["B1", ["reason_1", "reason_2", "reason_3"]].tolist() == [
        "dbt_12m",
        "current_ratio",
        "negative_equity",
    ]
    assert reasons.loc["B1", "reason_1_text"] == "pays late (days beyond terms, 12 months): 45 days"
    assert reasons.loc["B1", "reason_2_text"] == "low liquidity (current ratio): 0.61"
    assert reasons.loc["B1", "reason_3_text"] == "negative equity"
    # B2: only two positive contributors; the third slot stays empty
    assert reasons.loc["B2", "reason_1"] == "negative_equity"
    assert reasons.loc["B2", "reason_2"] == "political_risk_class"
    assert reasons.loc["B2", "reason_2_text"] == "high country risk: 5"
    assert pd.isna(reasons.loc["B2", "reason_3"]) and pd.isna(reasons.loc["B2", "reason_3_text"])
    # B3: nothing raises the PD (zero, negative, missing): no reason at all
    assert reasons.loc["B3"].isna().all()


def test_units_and_missing_values_in_texts() -> None:
    contrib = pd.DataFrame(
        {"late90_share_12m": [1.0], "log_turnover": [0.5], "return_on_assets": [0.2]}
    )
    values = pd.DataFrame(
        {
            "late90_share_12m": [0.254],
            "log_turnover": [np.log1p(1_234_567)],
            "return_on_assets": [np.nan],
        }
    )
    texts = reason_codes(contrib, values, top=3).filter(like="_text").iloc[0].tolist()
    assert texts == [
        "90+ days late on a share of payments (12 months): 25%",
        "small turnover: EUR 1.23 M",
        "low or negative return on assets: not available",
    ]


def test_features_outside_the_catalogue_use_their_name() -> None:
    reasons = reason_codes(pd.DataFrame({"Attr27": [2.0]}), pd.DataFrame({"Attr27": [0.12345]}))
    assert reasons.loc[0, "reason_1_text"] == "Attr27: 0.123"  # three significant digits
    assert list(reasons.columns) == [
        "reason_1",
        "reason_2",
        "reason_3",
        "reason_1_text",
        "reason_2_text",
        "reason_3_text",
    ]


def test_never_a_negative_contributor_and_matches_a_slow_reference() -> None:
    rng = np.random.default_rng(3)
    names = ["dbt_3m", "dbt_12m", "paydex", "current_ratio", "altman_z", "sector", "open_amount"]
    contrib = pd.DataFrame(rng.normal(-0.3, 1, (2000, len(names))), columns=names)
    values = pd.DataFrame(rng.normal(10, 5, (2000, len(names))), columns=names)
    values["sector"] = rng.choice(list("CFGH"), 2000)
    reasons = reason_codes(contrib, values, top=3)
    for i in range(0, 2000, 37):
        row = contrib.iloc[i]
        expected = row[row > 0].sort_values(ascending=False).index[:3].tolist()
        got = [r for r in reasons.iloc[i][["reason_1", "reason_2", "reason_3"]] if pd.notna(r)]
        assert got == expected
    chosen = reasons["reason_1"].dropna()
    picked = contrib.to_numpy()[chosen.index, [names.index(n) for n in chosen]]
    assert (picked > 0).all()


def test_vectorised_speed() -> None:
    rng = np.random.default_rng(0)
    names = [f"dbt_{w}m" for w in (3, 6, 12)] + ["paydex", "current_ratio", "overdue_amount"]
    n = 300_000
    contrib = pd.DataFrame(rng.normal(0, 1, (n, len(names))), columns=names)
    values = pd.DataFrame(rng.gamma(2, 10, (n, len(names))), columns=names)
    started = time.perf_counter()
    reasons = reason_codes(contrib, values, top=3)
    assert time.perf_counter() - started < 10
    assert len(reasons) == n


def test_top_must_be_positive() -> None:
    with pytest.raises(ValueError):
        reason_codes(pd.DataFrame({"a": [1.0]}), pd.DataFrame({"a": [1.0]}), top=0)
