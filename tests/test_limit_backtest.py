"""Decision value of the limit policy: the arithmetic of avoided and retained cover."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.limits.backtest import (
    _decide,
    decision_value,
    policy_variant,
    summarise_backtest,
)
from models.limits.policy import load_policy


def _recs(rows: list[tuple[str, int, float, float]]) -> pd.DataFrame:
    """(buyer_id, grade, limit, recommended) rows."""
    frame = pd.DataFrame(rows, columns=["buyer_id", "grade", "limit_amount", "recommended_amount"])
    frame["grade"] = frame["grade"].astype("Int64")
    return frame


def test_avoided_and_retained_shares_by_hand():
    recs = _recs(
        [
            ("B1", 8, 100.0, 0.0),  # defaults: all 100 avoided
            ("B2", 7, 300.0, 150.0),  # defaults: 150 avoided
            ("B3", 3, 200.0, 200.0),  # performs: kept
            ("B4", 5, 400.0, 300.0),  # performs: 300 of 400 kept
            ("B5", 2, 100.0, 160.0),  # performs: kept, +60 granted
            ("B6", 10, 500.0, 0.0),  # already in default: apart
            ("B7", 4, 50.0, 50.0),  # outcome unknown: left out
        ]
    )
    defaulted = pd.Series({"B1": 1, "B2": 1, "B3": 0, "B4": 0, "B5": 0, "B6": 1, "B7": np.nan})
    value = decision_value(recs, defaulted)
    assert value["defaulter_cover"] == 400.0 and value["avoided_cover"] == 250.0
    assert value["avoided_share"] == pytest.approx(250 / 400)
    assert value["performing_cover"] == 700.0 and value["retained_cover"] == 600.0
    assert value["retained_share"] == pytest.approx(600 / 700)
    assert value["increases_granted"] == 60.0 and value["increases_to_defaulters"] == 0.0
    assert value["already_in_default_cover"] == 500.0
    assert value["pairs"] == 5 and value["defaulter_pairs"] == 2


def test_unchanged_limits_avoid_nothing_and_retain_everything():
    recs = _recs([("B1", 5, 100.0, 100.0), ("B2", 5, 200.0, 200.0)])
    value = decision_value(recs, pd.Series({"B1": 1, "B2": 0}))
    assert value["avoided_share"] == 0.0 and value["retained_share"] == 1.0


def test_policy_variants_scale_capacity_and_move_thresholds():
    policy = load_policy()
    cautious = policy_variant(policy, "cautious", capacity_factor=0.5, cancel_grade=8)
    assert cautious.version == f"{policy.version}+cautious"
    assert cautious.cancel.grade == 8 and cautious.increase == policy.increase
    for grade, multiple in policy.capacity.equity_multiple.items():
        assert cautious.capacity.equity_multiple[grade] == pytest.approx(multiple * 0.5)
    assert cautious.notice == policy.notice
    assert policy_variant(policy, "no notice", notice_days=0).notice.days == 0


def test_summary_pools_dates_before_taking_shares():
    results = pd.DataFrame(
        {
            "as_of_date": pd.to_datetime(["2025-01-31", "2025-02-28"]),
            "policy": ["p", "p"],
            "policy_version": ["v", "v"],
            "model_version": ["1", "1"],
            "pairs": [10, 10],
            "defaulter_pairs": [1, 3],
            "defaulter_cover": [100.0, 300.0],
            "avoided_cover": [100.0, 0.0],
            "performing_cover": [1000.0, 1000.0],
            "retained_cover": [900.0, 1000.0],
            "increases_granted": [5.0, 5.0],
            "increases_to_defaulters": [0.0, 1.0],
            "proposals": [8, 2],
            "automatic": [6, 2],
            "to_a_human": [2, 0],
        }
    )
    row = summarise_backtest(results).loc["p"]
    assert row["automatic_share"] == pytest.approx(8 / 10)  # pooled, not the mean of 0.75 and 1
    assert row["to_a_human_per_date"] == pytest.approx(1.0)
    assert row["avoided_share"] == pytest.approx(100 / 400)  # not the mean of 1.0 and 0.0
    assert row["retained_share"] == pytest.approx(1900 / 2000)
    assert row["dates"] == 2


def test_the_loop_decides_automatic_items_as_proposed_and_referred_ones_by_the_rule():
    day = pd.Timestamp("2025-03-31")
    recs = pd.DataFrame(
        {
            "policyholder_id": ["P1"] * 5,
            "buyer_id": ["B1", "B2", "B3", "B4", "B5"],
            "action": ["maintain", "decrease", "refer", "refer", "refer"],
            "proposed_action": ["maintain", "decrease", "increase", "increase", "cancel"],
            "grade": pd.array([3, 6, 3, 8, 9], dtype="Int64"),
            "limit_amount": [100.0, 200.0, 300.0, 400.0, 500.0],
            "recommended_amount": [100.0, 150.0, 450.0, 600.0, 0.0],
            "effective_date": [pd.NaT, day + pd.Timedelta(days=30), pd.NaT, pd.NaT, day],
        }
    )
    taken = _decide(recs, load_policy(), day).set_index("buyer_id")
    assert "B1" not in taken.index  # nothing to decide on a maintained limit
    increase_max = load_policy().increase.max_grade
    assert 3 <= increase_max < 8  # the rule below grants at grade 3 and refuses at grade 8
    assert taken.loc["B2", "decided_amount"] == 150.0 and not taken.loc["B2", "human"]
    assert taken.loc["B2", "effective_date"] == day + pd.Timedelta(days=30)
    assert taken.loc["B3", "decided_amount"] == 450.0 and taken.loc["B3", "changes"]
    assert taken.loc["B4", "decided_amount"] == 400.0 and not taken.loc["B4", "changes"]
    assert taken.loc["B5", "decided_amount"] == 0.0 and taken.loc["B5", "human"]
    assert taken.loc["B3", "effective_date"] == day  # an increase at once
