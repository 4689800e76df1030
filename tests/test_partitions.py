"""Buyer-hash partitions, reason codes where used, and combining partition outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data.partitions import BUYER_TABLES, buyer_partition, split_by_buyer, split_frame_by_buyer
from models.limits.engine import combine_recommendations, recommend_limits
from models.limits.policy import load_policy
from models.monitoring.alerts import combine_alerts
from models.pd.scoring import carry_reasons, needs_explanation, reusable_reasons

IDS = [f"B{k:05d}" for k in range(400)]


def _tables() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(3)
    buyers = pd.DataFrame({"buyer_id": IDS, "country": "DE"})
    invoices = pd.DataFrame(
        {"buyer_id": rng.choice([*IDS, "GHOST-1"], 3000), "amount": rng.random(3000)}
    )
    limits = pd.DataFrame({"policyholder_id": "P1", "buyer_id": IDS[::3], "limit_amount": 1.0})
    policies = pd.DataFrame({"policyholder_id": ["P1"], "scheme": ["whole_turnover"]})
    return {"buyers": buyers, "invoices": invoices, "limits": limits, "policies": policies}


def test_partition_of_a_buyer_is_stable_and_in_range() -> None:
    parts = buyer_partition(np.array(IDS), 7)
    assert parts.min() >= 0 and parts.max() < 7
    assert len(set(parts)) == 7  # 400 ids spread over every partition
    # the same ids in another order (another day, another process) land in the same place
    assert np.array_equal(buyer_partition(np.array(IDS[::-1]), 7), parts[::-1])
    with pytest.raises(ValueError, match="at least 1"):
        buyer_partition(np.array(IDS), 0)


def test_split_keeps_every_row_once_and_each_buyer_in_one_partition() -> None:
    tables = _tables()
    parts = split_by_buyer(tables, 4)
    assert len(parts) == 4
    for name, frame in tables.items():
        joined = pd.concat([p[name] for p in parts], ignore_index=True)
        if name in BUYER_TABLES:
            assert len(joined) == len(frame)  # nothing lost, nothing doubled
            key = sorted(frame.columns)
            pd.testing.assert_frame_equal(
                joined.sort_values(key, ignore_index=True)[key],
                frame.sort_values(key, ignore_index=True)[key],
            )
        else:
            assert all(p[name] is frame for p in parts)  # reference tables go whole
    homes = [
        {b: k for k, p in enumerate(parts) for b in p[t]["buyer_id"]} for t in BUYER_TABLES[:3:2]
    ]
    for buyer, k in homes[0].items():
        assert homes[1].get(buyer, k) == k
    ghost = [k for k, p in enumerate(parts) if (p["invoices"]["buyer_id"] == "GHOST-1").any()]
    assert len(ghost) == 1  # an unknown buyer's rows are kept, together
    assert split_by_buyer(tables, 1)[0]["invoices"] is tables["invoices"]


def test_a_frame_is_cut_like_the_tables() -> None:
    tables = _tables()
    parts = split_by_buyer(tables, 3)
    scores = pd.DataFrame({"buyer_id": IDS[::-1], "grade": 5})
    for part, cut in zip(parts, split_frame_by_buyer(scores, 3), strict=True):
        assert set(cut["buyer_id"]) == set(part["buyers"]["buyer_id"])
    assert split_frame_by_buyer(None, 3) == [None, None, None]


def test_reason_codes_are_needed_only_where_someone_reads_them() -> None:
    scores = pd.DataFrame(
        {"buyer_id": ["A", "B", "C", "D", "E", "F"], "grade": [3, 4, 5, 6, 10, 2]}
    )
    previous = pd.DataFrame({"buyer_id": ["A", "B", "C", "D", "E"], "grade": [3, 3, 5, 6, 9]})
    recs = pd.DataFrame(
        {"buyer_id": ["A", "C", "D"], "action": ["maintain", "decrease", "maintain"]}
    )
    alerts = pd.DataFrame({"buyer_id": ["D"]})
    wanted = needs_explanation(scores, previous, recs, alerts)
    # A unchanged, maintained, no alert: no; B changed grade; C a decrease; D an alert;
    # E in default (never explained by the model); F new.
    assert wanted.tolist() == [False, True, True, True, False, True]
    assert needs_explanation(scores, None, recs, alerts).tolist() == [True] * 4 + [False, True]
    quiet = needs_explanation(scores, previous, recs.iloc[:0], alerts.iloc[:0])
    assert quiet.tolist() == [False, True, False, False, False, True]


def _reason_frames(as_of: str):
    """Six buyers today and yesterday; A-E were explained yesterday on `2026-11-28`."""
    day = pd.Timestamp(as_of)
    scores = pd.DataFrame(
        {
            "buyer_id": list("ABCDEF"),
            "as_of_date": day,
            "grade": [3, 4, 5, 6, 5, 2],
            "model_version": "7",
        }
    )
    previous = pd.DataFrame(
        {
            "buyer_id": list("ABCDE"),
            "grade": [3, 3, 5, 6, 5],
            "model_version": "7",
            "reason_1": ["r_a", "r_b", "r_c", "r_d", None],
            "reason_1_text": ["a", "b", "c", "d", None],
            "reasons_as_of": pd.to_datetime(["2026-11-28"] * 4 + [None]),
        }
    )
    recs = pd.DataFrame(
        {
            "policyholder_id": "P1",
            "buyer_id": list("ABCD"),
            "proposed_action": ["decrease", "decrease", "decrease", "maintain"],
        }
    )
    return scores, previous, recs


def test_unchanged_reason_codes_are_carried_until_their_refresh_day() -> None:
    scores, previous, recs = _reason_frames("2026-11-29")
    yesterday = recs.assign(proposed_action=["decrease", "decrease", "maintain", "maintain"])
    no_alerts = pd.DataFrame({"buyer_id": pd.Series([], dtype=object)})
    far = 10_000  # a cycle so long that no refresh day of these six falls on 2026-11-29
    carried = reusable_reasons(scores, previous, recs, yesterday, no_alerts, far)
    # A same grade and actions: carried; B regraded; C its action changed; D same (a
    # maintain) but carried only if it needs reasons; E had no reasons; F is new.
    assert carried.tolist() == [True, False, False, True, False, False]
    with_alert = reusable_reasons(
        scores, previous, recs, yesterday, pd.DataFrame({"buyer_id": ["A"]}), far
    )
    assert with_alert.tolist() == [False, False, False, True, False, False]
    # another champion since yesterday: its PDs need its own reasons
    other_model = previous.assign(model_version=["6", "7", "7", "7", "7"])
    changed_model = reusable_reasons(scores, other_model, recs, yesterday, no_alerts, far)
    assert changed_model.tolist() == [False, False, False, True, False, False]
    # reasons older than the cycle are recomputed, whatever else holds
    assert not reusable_reasons(scores, previous, recs, yesterday, no_alerts, 1).any()
    assert not reusable_reasons(scores, None, recs, yesterday, no_alerts, far).any()
    assert not reusable_reasons(
        scores, previous.drop(columns="reasons_as_of"), recs, yesterday, no_alerts, far
    ).any()


def test_refresh_days_are_staggered_over_the_buyers() -> None:
    """Over one 7-day cycle every carried buyer is recomputed exactly once, spread evenly."""
    ids = [f"B{k:05d}" for k in range(7000)]
    refreshed = np.zeros(len(ids), dtype=int)
    per_day = []
    for offset in range(7):
        as_of = pd.Timestamp("2026-11-29") + pd.Timedelta(days=offset)
        scores = pd.DataFrame({"buyer_id": ids, "as_of_date": as_of, "grade": 5})
        previous = scores[["buyer_id", "grade"]].assign(
            reason_1="x", reasons_as_of=as_of - pd.Timedelta(days=1)
        )
        recs = pd.DataFrame(columns=["policyholder_id", "buyer_id", "proposed_action"])
        carried = reusable_reasons(scores, previous, recs, recs, recs.iloc[:0], 7)
        refreshed += ~carried
        per_day.append(int((~carried).sum()))
    assert refreshed.tolist() == [1] * len(ids)
    assert min(per_day) > 800 and max(per_day) < 1200  # about 1,000 a day, no spike


def test_carried_reasons_come_from_the_previous_run_with_their_date() -> None:
    scores, previous, _ = _reason_frames("2026-11-29")
    features = scores.assign(as_of_date=pd.Timestamp("2026-11-29"))
    fresh = pd.DataFrame(
        {
            "reason_1": [None, "new_b", None, None, None, "new_f"],
            "reason_1_text": [None, "nb", None, None, None, "nf"],
            "reasons_as_of": features["as_of_date"].where(
                np.array([False, True, False, False, False, True])
            ),
        }
    )
    carried = np.array([True, False, False, True, False, False])
    out = carry_reasons(fresh, scores, previous, carried)
    assert out["reason_1"].fillna("-").tolist() == ["r_a", "new_b", "-", "r_d", "-", "new_f"]
    assert out["reason_1_text"].fillna("-").tolist() == ["a", "nb", "-", "d", "-", "nf"]
    dates = out["reasons_as_of"].dt.strftime("%Y-%m-%d").tolist()
    assert dates[:2] == ["2026-11-28", "2026-11-29"] and dates[3] == "2026-11-28"
    assert out["reasons_as_of"].isna().tolist() == [False, False, True, False, True, False]
    assert carry_reasons(fresh, scores, previous, np.zeros(6, bool)) is fresh


@pytest.fixture(scope="module")
def limit_pairs() -> pd.DataFrame:
    """3,000 engine input pairs from the limits benchmark's synthetic book (every rule)."""
    from benchmarks.bench_limits import AS_OF, synthetic_inputs
    from models.limits.inputs import assemble_pairs

    frames = synthetic_inputs(3000, seed=5)
    tables = {
        k: v
        for k, v in frames.items()
        if k not in ("scores", "features", "previous_scores", "history")
    }
    return assemble_pairs(
        AS_OF, tables, frames["scores"], frames["features"], frames["previous_scores"],
        frames["history"], grace_days=load_policy().capacity.payment_grace_days,
    )  # fmt: skip


def test_partition_recommendations_combine_to_the_single_run(limit_pairs) -> None:
    policy = load_policy()
    whole = recommend_limits(limit_pairs, policy, "7")
    home = buyer_partition(limit_pairs["buyer_id"].to_numpy(), 3)
    parts = [
        recommend_limits(limit_pairs.loc[home == k].reset_index(drop=True), policy, "7")
        for k in (2, 0, 1)
    ]
    combined = combine_recommendations(parts, policy)
    pd.testing.assert_frame_equal(combined, whole)
    assert combine_recommendations([whole], policy) is whole


def test_partition_alerts_combine_in_reading_order() -> None:
    alerts = pd.DataFrame(
        {
            "as_of_date": pd.Timestamp("2026-11-30"),
            "buyer_id": ["B1", "B2", "B3"],
            "alert": ["downgrade", "insolvency", "downgrade"],
            "severity": ["medium", "high", "medium"],
            "aggregate_limit": [5.0, 1.0, 9.0],
            "reason": "r",
            "grade": [7, 10, 8],
            "previous_grade": [5, 4, 6],
            "pd": [0.1, 1.0, 0.2],
            "limits": 1,
            "policyholders": "P1",
        }
    )
    combined = combine_alerts([alerts.iloc[[0]], alerts.iloc[[1, 2]]])
    assert combined["buyer_id"].tolist()[0] == "B2"  # the most severe first
    assert combined["buyer_id"].tolist()[1:] == ["B3", "B1"]  # then the largest cover
