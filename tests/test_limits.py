"""The limit engine: every rule on hand-built pairs, then invariants as properties."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data.reference import EVENT_TYPES
from models.limits.engine import (
    PAIR_COLUMNS,
    REASON_CODES,
    RECOMMENDATION_COLUMNS,
    buyer_capacity,
    expected_losses,
    money_text,
    recommend_limits,
)
from models.limits.policy import ACTIONS, LimitPolicy, load_policy, parse_policy

POLICY = load_policy()
AS_OF = pd.Timestamp("2026-06-30")
MODEL = "pd-model-7"
CAP = POLICY.capacity
DEC = POLICY.decrease
HYST = POLICY.hysteresis
AUTH = POLICY.authority
DATE_COLUMNS = [c for c in PAIR_COLUMNS if c.endswith("_date")]
AMOUNT_COLUMNS = [
    "indemnity_pct",
    "discretionary_limit",
    "pd",
    "grade",
    "limit_amount",
    "requested_amount",
    "exposure",
    "equity",
    "turnover",
    "statement_age_months",
    "paid_within_terms_12m",
    "oldest_overdue_days",
    "political_risk_class",
    "scheduled_amount",
    "last_decision_grade",
]


def days_ago(days: int) -> pd.Timestamp:
    """A date `days` before the as-of date."""
    return AS_OF - pd.Timedelta(days=days)


def pair(**overrides: Any) -> dict[str, Any]:
    """One healthy pair (grade 4, well within capacity, no warning signs), with overrides."""
    row: dict[str, Any] = {
        "as_of_date": AS_OF,
        "policyholder_id": "P1",
        "buyer_id": "B1",
        "scheme": "first_euro",
        "indemnity_pct": 90.0,
        "discretionary_limit": 0.0,
        "country": "DE",
        "political_risk_class": 0,
        "pd": 0.01,
        "grade": 4,
        "previous_grade": 4,
        "limit_amount": 100_000.0,
        "requested_amount": np.nan,
        "exposure": 50_000.0,
        "equity": 2_000_000.0,
        "turnover": 10_000_000.0,
        "statement_age_months": 6.0,
        "paid_within_terms_12m": 500_000.0,
        "oldest_overdue_days": 0,
        "last_decrease_date": pd.NaT,
        **{f"last_{event}_date": pd.NaT for event in sorted(EVENT_TYPES)},
        "scheduled_amount": np.nan,
        "scheduled_date": pd.NaT,
        "last_decision_date": pd.NaT,
        "last_decision_grade": np.nan,
        "request_date": pd.NaT,
        "previous_action": None,
    }
    unknown = set(overrides) - set(row)
    assert not unknown, f"unknown pair columns {unknown}"
    row.update(overrides)
    return row


def frame(*rows: dict[str, Any]) -> pd.DataFrame:
    """The engine's typed input from `pair()` rows."""
    out = pd.DataFrame(list(rows), columns=PAIR_COLUMNS)
    for column in DATE_COLUMNS:
        out[column] = pd.to_datetime(out[column]).astype("datetime64[ns]")
    out = out.astype({c: "float64" for c in AMOUNT_COLUMNS})
    out["previous_grade"] = out["previous_grade"].astype("Float64").astype("Int64")
    return out


def recommend(*rows: dict[str, Any], policy: LimitPolicy = POLICY) -> pd.DataFrame:
    """Run the engine on hand-built rows."""
    return recommend_limits(frame(*rows), policy, MODEL)


def one(*rows: dict[str, Any], policy: LimitPolicy = POLICY) -> pd.Series:
    """The recommendation of the first row."""
    return recommend(*rows, policy=policy).iloc[0]


def codes(rec: pd.Series) -> list[str]:
    """The reason codes of one recommendation."""
    return rec["reason_codes"].split("|")


def with_policy(**changes: dict[str, Any]) -> LimitPolicy:
    """The default policy with some sections changed (validated like a file)."""
    config = POLICY.model_dump(exclude={"fingerprint"})
    for section, values in changes.items():
        config[section] = {**config[section], **values}
    return parse_policy(config, "test policy")


def statement_capacity(equity: float, turnover: float, grade: int = 4) -> float:
    """Capacity from a usable statement, by the policy's numbers."""
    return min(
        max(equity, 0.0) * CAP.equity_multiple.get(grade, 0.0),
        turnover * CAP.turnover_multiple.get(grade, 0.0),
    )


# --------------------------------------------------------------------------------------
# The builder itself, and a healthy pair.
# --------------------------------------------------------------------------------------


def test_builder_covers_every_input_column_with_the_engine_types():
    pairs = frame(pair())
    assert list(pairs.columns) == PAIR_COLUMNS
    assert all(pairs[c].dtype == "datetime64[ns]" for c in DATE_COLUMNS)
    assert pairs["previous_grade"].dtype == "Int64"
    assert pairs["limit_amount"].dtype == "float64"


def test_a_healthy_pair_is_maintained_with_no_change():
    rec = one(pair())
    assert rec["action"] == rec["proposed_action"] == "maintain"
    assert rec["recommended_amount"] == 100_000.0 and rec["change"] == 0.0
    assert rec["reason_codes"] == "NO_CHANGE"
    assert not rec["human_required"]
    assert rec["capacity"] == pytest.approx(statement_capacity(2_000_000.0, 10_000_000.0))
    assert rec["capacity_basis"] == "statement"


def test_missing_input_columns_are_named():
    with pytest.raises(ValueError, match="equity"):
        recommend_limits(frame(pair()).drop(columns="equity"), POLICY, MODEL)


# --------------------------------------------------------------------------------------
# 1. Cancellations.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "code"), [("insolvency", "INSOLVENCY"), ("liquidation", "LIQUIDATION")]
)
def test_a_cancelling_event_cancels(event: str, code: str):
    rec = one(pair(**{f"last_{event}_date": days_ago(700)}))
    assert rec["action"] == rec["proposed_action"] == "cancel"
    assert rec["recommended_amount"] == 0.0
    assert rec["change"] == -100_000.0
    assert code in codes(rec)


def test_a_recent_claim_cancels_an_old_one_does_not():
    lookback = POLICY.cancel.claim_lookback_days
    recent = one(pair(last_claim_filed_date=days_ago(lookback)))
    assert recent["action"] == "cancel" and recent["recommended_amount"] == 0.0
    assert "CLAIM_FILED" in codes(recent)
    old = one(pair(last_claim_filed_date=days_ago(lookback + 1)))
    assert old["action"] == "maintain" and old["recommended_amount"] == 100_000.0
    assert "CLAIM_FILED" not in codes(old)


def test_the_cancel_grade_cancels_the_grade_before_does_not():
    g = POLICY.cancel.grade
    rec = one(pair(grade=g, previous_grade=g))
    assert rec["action"] == "cancel" and rec["recommended_amount"] == 0.0
    assert "CANCEL_GRADE" in codes(rec) and "IN_DEFAULT" not in codes(rec)
    before = one(pair(grade=g - 1, previous_grade=g - 1, requested_amount=np.nan))
    assert before["action"] != "cancel"


def test_grade_10_is_in_default_and_cancelled():
    rec = one(pair(grade=10, previous_grade=10, pd=1.0))
    assert rec["action"] == "cancel" and rec["recommended_amount"] == 0.0
    assert "IN_DEFAULT" in codes(rec) and "CANCEL_GRADE" not in codes(rec)


def test_other_events_cancel_only_when_the_policy_lists_them():
    dispute = pair(last_legal_dispute_date=days_ago(10))
    assert one(dispute)["action"] == "maintain"
    strict = with_policy(cancel={"events": ["insolvency", "liquidation", "legal_dispute"]})
    rec = one(dispute, policy=strict)
    assert rec["action"] == "cancel" and "CANCEL_EVENT" in codes(rec)


def test_a_large_grade_cancel_is_referred_an_insolvency_is_not():
    big = AUTH.max_change + 50_000.0
    by_grade = one(pair(grade=9, previous_grade=9, limit_amount=big))
    assert by_grade["action"] == "refer" and by_grade["proposed_action"] == "cancel"
    assert by_grade["recommended_amount"] == 0.0 and by_grade["human_required"]
    insolvent = one(pair(limit_amount=big, last_insolvency_date=days_ago(1)))
    assert insolvent["action"] == "cancel" and insolvent["recommended_amount"] == 0.0
    assert not insolvent["human_required"]


# --------------------------------------------------------------------------------------
# 2. Capacity and aggregate cover.
# --------------------------------------------------------------------------------------


def test_two_policyholders_over_capacity_are_cut_pro_rata():
    equity = 250_000.0
    capacity = statement_capacity(equity, 10_000_000.0)
    limits = (150_000.0, 100_000.0)
    aggregate = sum(limits)
    assert aggregate > capacity
    recs = recommend(
        pair(policyholder_id="P1", limit_amount=limits[0], equity=equity),
        pair(policyholder_id="P2", limit_amount=limits[1], equity=equity),
    )
    for (_, rec), limit in zip(recs.iterrows(), limits, strict=True):
        expected = capacity * limit / aggregate
        assert expected >= limit * (1 - DEC.max_step)  # within the step
        assert rec["action"] == "decrease"
        assert rec["recommended_amount"] == pytest.approx(expected)
        assert rec["aggregate_limit"] == aggregate
        assert rec["capacity"] == pytest.approx(capacity)
        assert codes(rec) == ["OVER_CAPACITY"]
    assert recs["recommended_amount"].sum() == pytest.approx(capacity)


@pytest.mark.parametrize(
    ("equity", "turnover"),
    [(2_000_000.0, 10_000_000.0), (2_000_000.0, 5_000_000.0), (500_000.0, 10_000_000.0)],
)
def test_statement_capacity_is_the_smaller_of_equity_and_turnover(equity: float, turnover: float):
    capacity, basis = buyer_capacity(frame(pair(equity=equity, turnover=turnover)), POLICY)
    assert capacity[0] == pytest.approx(statement_capacity(equity, turnover))
    assert basis[0] == "statement"


def test_negative_equity_gives_no_equity_capacity():
    capacity, basis = buyer_capacity(frame(pair(equity=-1.0)), POLICY)
    assert capacity[0] == 0.0 and basis[0] == "statement"
    rec = one(pair(equity=-1.0))
    assert rec["action"] == "decrease"
    assert rec["recommended_amount"] == pytest.approx(100_000.0 * (1 - DEC.max_step))
    assert {"OVER_CAPACITY", "STEP_CAPPED"} <= set(codes(rec))


def test_a_missing_amount_leaves_the_other_basis():
    only_turnover, _ = buyer_capacity(frame(pair(equity=np.nan)), POLICY)
    assert only_turnover[0] == pytest.approx(10_000_000.0 * CAP.turnover_multiple[4])
    only_equity, _ = buyer_capacity(frame(pair(turnover=np.nan)), POLICY)
    assert only_equity[0] == pytest.approx(2_000_000.0 * CAP.equity_multiple[4])


@pytest.mark.parametrize("age", [np.nan, CAP.max_statement_age_months + 0.5])
def test_without_a_usable_statement_capacity_comes_from_payments(age: float):
    paid = 100_000.0
    capacity = paid * CAP.payment_multiple[4]
    assert capacity < 100_000.0 * (1 - HYST.min_change_share)  # a cut worth a decision
    rec = one(pair(statement_age_months=age, paid_within_terms_12m=paid))
    assert rec["capacity_basis"] == "payments"
    assert rec["capacity"] == pytest.approx(capacity)
    assert rec["action"] == "decrease"
    assert rec["recommended_amount"] == pytest.approx(capacity)
    assert {"OVER_CAPACITY", "CAPACITY_FROM_PAYMENTS"} <= set(codes(rec))


def test_a_statement_of_exactly_the_maximum_age_is_still_used():
    rec = one(pair(statement_age_months=float(CAP.max_statement_age_months)))
    assert rec["capacity_basis"] == "statement"


def test_payment_capacity_is_not_mentioned_when_it_changes_nothing():
    rec = one(pair(statement_age_months=np.nan))
    assert rec["capacity_basis"] == "payments"
    assert rec["reason_codes"] == "NO_CHANGE"


# --------------------------------------------------------------------------------------
# Downgrades, overdue invoices, the maximum step.
# --------------------------------------------------------------------------------------


def test_a_downgrade_of_the_configured_notches_cuts():
    n = DEC.downgrade_notches
    rec = one(pair(grade=4 + n, previous_grade=4))
    assert rec["action"] == "decrease"
    assert rec["recommended_amount"] == pytest.approx(100_000.0 * (1 - DEC.downgrade_cut))
    assert codes(rec) == ["DOWNGRADE"]
    assert rec["explanation"].startswith(f"Decrease EUR 100k -> EUR 75k (grade 4 -> {4 + n})")


def test_a_smaller_downgrade_or_an_upgrade_does_not_cut():
    for grade in (4 + DEC.downgrade_notches - 1, 2):
        rec = one(pair(grade=grade, previous_grade=4))
        assert rec["action"] == "maintain" and rec["reason_codes"] == "NO_CHANGE"


def test_no_previous_grade_means_no_downgrade():
    rec = one(pair(grade=8, previous_grade=None))
    assert "DOWNGRADE" not in codes(rec)


@pytest.mark.parametrize(
    "overrides",
    [
        {"oldest_overdue_days": DEC.overdue_days},
        {"oldest_overdue_days": DEC.overdue_days + 100},
        {"last_overdue_notification_date": days_ago(91)},
        {"last_overdue_notification_date": days_ago(0)},
    ],
)
def test_overdue_invoices_cut(overrides: dict[str, Any]):
    rec = one(pair(**overrides))
    assert rec["action"] == "decrease"
    assert rec["recommended_amount"] == pytest.approx(100_000.0 * (1 - DEC.overdue_cut))
    assert codes(rec) == ["OVERDUE"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"oldest_overdue_days": DEC.overdue_days - 1},
        {"last_overdue_notification_date": days_ago(92)},
    ],
)
def test_overdue_below_the_thresholds_does_not_cut(overrides: dict[str, Any]):
    assert one(pair(**overrides))["reason_codes"] == "NO_CHANGE"


def test_several_signs_take_the_deepest_cut_not_the_sum():
    rec = one(pair(grade=6, previous_grade=4, oldest_overdue_days=90))
    deepest = min(1 - DEC.downgrade_cut, 1 - DEC.overdue_cut) * 100_000.0
    assert rec["recommended_amount"] == pytest.approx(deepest)
    assert {"DOWNGRADE", "OVERDUE"} <= set(codes(rec))
    assert "STEP_CAPPED" not in codes(rec)


def test_a_cut_beyond_the_maximum_step_is_capped():
    equity = 50_000.0  # capacity 40k against a 100k limit: a 60 % cut
    assert statement_capacity(equity, 10_000_000.0) < 100_000.0 * (1 - DEC.max_step)
    rec = one(pair(equity=equity))
    assert rec["action"] == "decrease"
    assert rec["recommended_amount"] == pytest.approx(100_000.0 * (1 - DEC.max_step))
    assert {"OVER_CAPACITY", "STEP_CAPPED"} <= set(codes(rec))


def test_an_insolvency_is_not_step_capped():
    rec = one(pair(equity=50_000.0, last_insolvency_date=days_ago(3)))
    assert rec["action"] == "cancel" and rec["recommended_amount"] == 0.0
    assert "STEP_CAPPED" not in codes(rec)


# --------------------------------------------------------------------------------------
# 3. Increases on pending requests.
# --------------------------------------------------------------------------------------


def test_a_request_within_capacity_at_a_good_grade_is_granted():
    rec = one(pair(requested_amount=150_000.0))
    assert rec["action"] == rec["proposed_action"] == "increase"
    assert rec["recommended_amount"] == 150_000.0 and rec["change"] == 50_000.0
    assert codes(rec) == ["REQUEST_GRANTED"]


def test_a_request_for_less_than_the_limit_is_not_pending():
    rec = one(pair(requested_amount=80_000.0))
    assert rec["action"] == "maintain" and rec["reason_codes"] == "NO_CHANGE"


def test_a_request_beyond_the_remaining_capacity_is_granted_in_part():
    equity = 150_000.0
    capacity = statement_capacity(equity, 10_000_000.0)
    rec = one(pair(equity=equity, requested_amount=200_000.0))
    assert rec["action"] == "increase"
    assert rec["recommended_amount"] == pytest.approx(100_000.0 + (capacity - 100_000.0))
    assert codes(rec) == ["REQUEST_PARTIAL"]


def test_two_requests_share_the_remaining_capacity_pro_rata():
    equity = 250_000.0  # capacity 200k, aggregate 100k: 100k left for 150k asked
    headroom = statement_capacity(equity, 10_000_000.0) - 100_000.0
    recs = recommend(
        pair(
            policyholder_id="P1", limit_amount=50_000.0, requested_amount=150_000.0, equity=equity
        ),
        pair(
            policyholder_id="P2", limit_amount=50_000.0, requested_amount=100_000.0, equity=equity
        ),
    )
    asked = np.array([100_000.0, 50_000.0])
    expected = 50_000.0 + headroom * asked / asked.sum()
    np.testing.assert_allclose(recs["recommended_amount"], expected)
    assert (recs["reason_codes"] == "REQUEST_PARTIAL").all()
    assert recs["recommended_amount"].sum() == pytest.approx(100_000.0 + headroom)


def test_a_request_at_a_weak_grade_is_declined():
    g = POLICY.increase.max_grade + 1
    rec = one(pair(grade=g, previous_grade=g, requested_amount=150_000.0))
    assert rec["action"] == "maintain" and rec["recommended_amount"] == 100_000.0
    assert codes(rec) == ["REQUEST_DECLINED_GRADE"]
    best_weak = POLICY.increase.max_grade
    at_max = one(pair(grade=best_weak, previous_grade=best_weak, requested_amount=150_000.0))
    assert at_max["proposed_action"] == "increase"
    # granted automatically only at the authority's grade or better, else by a human
    automatic = best_weak <= AUTH.increase_max_grade
    assert at_max["action"] == ("increase" if automatic else "refer")


def test_a_request_soon_after_a_decrease_is_declined():
    window = HYST.no_increase_after_decrease_days
    rec = one(pair(requested_amount=150_000.0, last_decrease_date=days_ago(window)))
    assert rec["action"] == "maintain" and rec["recommended_amount"] == 100_000.0
    assert codes(rec) == ["REQUEST_DECLINED_RECENT_DECREASE"]
    later = one(pair(requested_amount=150_000.0, last_decrease_date=days_ago(window + 1)))
    assert later["action"] == "increase"


def test_a_request_without_capacity_left_is_declined():
    equity = 100_000.0 / CAP.equity_multiple[4]  # capacity == the limit
    rec = one(pair(equity=equity, requested_amount=150_000.0))
    assert rec["capacity"] == pytest.approx(100_000.0)
    assert rec["action"] == "maintain" and rec["recommended_amount"] == 100_000.0
    assert codes(rec) == ["REQUEST_DECLINED_CAPACITY"]


def test_a_declined_request_with_payment_capacity_says_so():
    rec = one(pair(statement_age_months=np.nan, paid_within_terms_12m=125_000.0,
                   requested_amount=150_000.0))  # fmt: skip
    assert rec["capacity"] == pytest.approx(100_000.0)
    assert set(codes(rec)) == {"CAPACITY_FROM_PAYMENTS", "REQUEST_DECLINED_CAPACITY"}


def test_a_new_limit_from_zero_is_granted():
    rec = one(pair(limit_amount=0.0, exposure=0.0, requested_amount=40_000.0))
    assert rec["action"] == "increase" and rec["recommended_amount"] == 40_000.0
    assert codes(rec) == ["REQUEST_GRANTED"]


@pytest.mark.parametrize(
    "warning", [{"oldest_overdue_days": 90}, {"grade": 5, "previous_grade": 3}]
)
def test_a_new_limit_is_not_granted_on_a_buyer_with_warning_signs(warning: dict[str, Any]):
    rec = one(pair(limit_amount=0.0, exposure=0.0, requested_amount=50_000.0, **warning))
    assert rec["proposed_action"] != "increase"
    assert rec["recommended_amount"] == 0.0
    assert "REQUEST_DECLINED_WARNING" in codes(rec)


def test_a_declined_request_leaves_the_remaining_capacity_to_the_others():
    equity = 500_000.0  # capacity 400k, aggregate 200k: 200k left
    recs = recommend(
        pair(policyholder_id="P1", equity=equity, requested_amount=300_000.0,
             last_decrease_date=days_ago(10)),
        pair(policyholder_id="P2", equity=equity, requested_amount=300_000.0),
    )  # fmt: skip
    assert codes(recs.iloc[0]) == ["REQUEST_DECLINED_RECENT_DECREASE"]
    assert recs.iloc[1]["recommended_amount"] == 300_000.0
    assert codes(recs.iloc[1])[0] == "REQUEST_GRANTED"
    # a 200k increase is beyond the system's increase authority: a human grants it
    assert (recs.iloc[1]["action"] == "refer") == (AUTH.max_increase < 200_000.0)


# --------------------------------------------------------------------------------------
# 4. Hysteresis.
# --------------------------------------------------------------------------------------


def test_an_increase_below_the_minimum_amount_is_not_made():
    small = 100_000.0 + HYST.min_change_amount - 1_000.0
    rec = one(pair(requested_amount=small))
    assert rec["action"] == "maintain" and rec["recommended_amount"] == 100_000.0
    assert codes(rec) == ["BELOW_MIN_CHANGE"]


def test_a_change_below_the_minimum_share_is_not_made():
    limit = 200_000.0
    requested = limit * (1 + HYST.min_change_share) - 5_000.0
    assert requested - limit >= HYST.min_change_amount
    rec = one(pair(limit_amount=limit, requested_amount=requested))
    assert rec["action"] == "maintain" and rec["recommended_amount"] == limit
    assert codes(rec) == ["BELOW_MIN_CHANGE"]


def test_a_small_cut_over_capacity_is_not_made():
    equity = 120_000.0  # capacity 96k: a 4k cut
    rec = one(pair(equity=equity))
    assert rec["action"] == "maintain" and rec["recommended_amount"] == 100_000.0
    assert set(codes(rec)) == {"OVER_CAPACITY", "BELOW_MIN_CHANGE"}


def test_a_change_of_exactly_the_minimum_is_made():
    limit = 100_000.0
    requested = limit + max(HYST.min_change_amount, HYST.min_change_share * limit)
    assert one(pair(limit_amount=limit, requested_amount=requested))["action"] == "increase"


# --------------------------------------------------------------------------------------
# 5. Authority.
# --------------------------------------------------------------------------------------


def test_an_increase_beyond_the_maximum_amount_is_referred():
    limit = AUTH.max_amount - 100_000.0
    requested = AUTH.max_amount + 100_000.0
    assert requested - limit <= AUTH.max_change
    rec = one(pair(limit_amount=limit, requested_amount=requested, equity=1e8, turnover=1e9))
    assert rec["action"] == "refer" and rec["proposed_action"] == "increase"
    assert rec["recommended_amount"] == requested
    assert rec["human_required"]
    assert {"REQUEST_GRANTED", "ABOVE_AUTHORITY"} <= set(codes(rec))


def test_a_change_beyond_the_maximum_change_is_referred():
    rec = one(pair(requested_amount=100_000.0 + AUTH.max_change + 50_000.0))
    assert rec["action"] == "refer" and rec["proposed_action"] == "increase"
    assert rec["human_required"] and "ABOVE_AUTHORITY" in codes(rec)


def test_a_large_cut_is_referred():
    limit = (AUTH.max_change + 50_000.0) / DEC.downgrade_cut
    rec = one(pair(limit_amount=limit, grade=6, previous_grade=4))
    assert rec["action"] == "refer" and rec["proposed_action"] == "decrease"
    assert rec["recommended_amount"] == pytest.approx(limit * (1 - DEC.downgrade_cut))
    assert {"DOWNGRADE", "ABOVE_AUTHORITY"} <= set(codes(rec))


def test_maintaining_a_large_limit_needs_no_human():
    rec = one(pair(limit_amount=AUTH.max_amount * 1.5, equity=1e8, turnover=1e9))
    assert rec["action"] == "maintain" and not rec["human_required"]


# --------------------------------------------------------------------------------------
# Country caps.
# --------------------------------------------------------------------------------------


def test_a_country_capped_at_zero_cuts_every_limit():
    assert POLICY.country_caps[7] == 0
    rec = one(pair(political_risk_class=7))
    assert rec["capacity"] == 0.0 and rec["capacity_basis"] == "country cap"
    assert rec["action"] == "decrease"
    assert rec["recommended_amount"] == pytest.approx(100_000.0 * (1 - DEC.max_step))
    assert {"OVER_CAPACITY", "STEP_CAPPED", "COUNTRY_CAP"} <= set(codes(rec))


def test_a_country_cap_bounds_the_aggregate_cover():
    cap = POLICY.country_caps[6]
    limit = cap * 1.2
    rec = one(pair(political_risk_class=6, limit_amount=limit, equity=1e8, turnover=1e9))
    assert rec["capacity"] == cap and rec["capacity_basis"] == "country cap"
    assert rec["action"] == "decrease" and rec["recommended_amount"] == pytest.approx(cap)
    assert {"OVER_CAPACITY", "COUNTRY_CAP"} <= set(codes(rec))


def test_a_country_cap_above_the_statement_capacity_changes_nothing():
    rec = one(pair(political_risk_class=6))  # statement capacity 1.6M > 500k cap
    assert rec["capacity"] == POLICY.country_caps[6]
    assert rec["reason_codes"] == "NO_CHANGE"
    uncapped = one(pair(political_risk_class=3))
    assert uncapped["capacity_basis"] == "statement"


# --------------------------------------------------------------------------------------
# Schemes and expected loss.
# --------------------------------------------------------------------------------------


def test_excess_of_loss_within_the_discretionary_limit_is_maintained():
    signs = {"grade": 6, "previous_grade": 4, "buyer_id": "B1"}
    recs = recommend(
        pair(policyholder_id="P1", **signs),
        pair(policyholder_id="P2", scheme="excess_of_loss", discretionary_limit=150_000.0, **signs),
    )
    twin, xol = recs.iloc[0], recs.iloc[1]
    assert twin["action"] == "decrease"
    assert xol["action"] == xol["proposed_action"] == "maintain"
    assert xol["recommended_amount"] == 100_000.0
    assert codes(xol) == ["WITHIN_DISCRETIONARY_LIMIT"]


def test_excess_of_loss_above_the_discretionary_limit_is_the_insurers_call():
    rec = one(
        pair(scheme="excess_of_loss", discretionary_limit=80_000.0, grade=6, previous_grade=4)
    )
    assert rec["action"] == "decrease" and "WITHIN_DISCRETIONARY_LIMIT" not in codes(rec)
    request = one(pair(scheme="excess_of_loss", discretionary_limit=120_000.0,
                       requested_amount=150_000.0))  # fmt: skip
    assert request["action"] == "increase" and request["recommended_amount"] == 150_000.0


def test_excess_of_loss_rule_can_be_switched_off():
    policy = with_policy(excess_of_loss={"respect_discretionary_limit": False})
    xol = pair(scheme="excess_of_loss", discretionary_limit=150_000.0, grade=6, previous_grade=4)
    assert one(xol, policy=policy)["action"] == "decrease"


def test_excess_of_loss_insolvency_still_cancels():
    rec = one(pair(scheme="excess_of_loss", discretionary_limit=150_000.0,
                   last_insolvency_date=days_ago(5)))  # fmt: skip
    assert rec["action"] == "cancel" and rec["recommended_amount"] == 0.0
    assert "INSOLVENCY" in codes(rec) and "WITHIN_DISCRETIONARY_LIMIT" not in codes(rec)


@pytest.mark.parametrize("indemnity", [90.0, 75.0])
@pytest.mark.parametrize("exposure", [50_000.0, 140_000.0])
def test_expected_loss_uses_the_rows_indemnity_and_the_covered_amount(
    indemnity: float, exposure: float
):
    rec = one(pair(indemnity_pct=indemnity, exposure=exposure, grade=6, previous_grade=4))
    rate = 0.01 * POLICY.lgd * indemnity / 100
    assert rec["recommended_amount"] < 100_000.0  # a cut after the downgrade
    assert rec["expected_loss_before"] == pytest.approx(rate * min(exposure, 100_000.0))
    # what was shipped under the old limit stays covered: the EL after a cut counts it
    after = rate * max(min(exposure, rec["recommended_amount"]), min(exposure, 100_000.0))
    assert rec["expected_loss_after"] == pytest.approx(after)


def test_expected_loss_with_a_pending_request_uses_the_requested_amount():
    rec = one(pair(requested_amount=150_000.0, exposure=50_000.0))
    rate = 0.01 * POLICY.lgd * 0.9
    assert rec["expected_loss_before"] == pytest.approx(rate * 100_000.0)
    assert rec["expected_loss_after"] == pytest.approx(rate * 150_000.0)
    before, after = expected_losses(
        frame(pair(requested_amount=150_000.0, exposure=200_000.0)), np.array([120_000.0]), 0.5
    )
    assert before[0] == pytest.approx(0.01 * 0.5 * 0.9 * 100_000.0)
    assert after[0] == pytest.approx(0.01 * 0.5 * 0.9 * 120_000.0)


# --------------------------------------------------------------------------------------
# Unscored buyers, the review queue, the output table.
# --------------------------------------------------------------------------------------


def test_a_buyer_without_a_score_is_referred_unchanged():
    rec = one(pair(grade=np.nan, pd=np.nan, previous_grade=None, requested_amount=150_000.0))
    assert rec["action"] == "refer" and rec["proposed_action"] == "maintain"
    assert rec["recommended_amount"] == 100_000.0 and rec["change"] == 0.0
    assert rec["reason_codes"] == "NO_SCORE"
    assert rec["human_required"]
    assert pd.isna(rec["grade"])


def test_a_buyer_without_a_score_but_insolvent_is_still_cancelled():
    rec = one(pair(grade=np.nan, pd=np.nan, last_insolvency_date=days_ago(3)))
    assert rec["action"] == "cancel" and rec["recommended_amount"] == 0.0
    assert "INSOLVENCY" in codes(rec) and "NO_SCORE" not in codes(rec)


def test_the_explanation_of_an_unscored_buyer_shows_no_nan():
    recs = recommend(pair(grade=np.nan, pd=np.nan), pair(buyer_id="B2", grade=6))
    assert "nan" not in recs.iloc[0]["explanation"].lower()
    assert recs.iloc[1]["explanation"].startswith("Decrease EUR 100k -> EUR 75k (grade 4 -> 6)")


def test_a_nullable_grade_with_a_missing_score_is_accepted():
    pairs = frame(pair(grade=np.nan, pd=np.nan), pair(buyer_id="B2"))
    pairs["grade"] = pairs["grade"].astype("Int64")
    recs = recommend_limits(pairs, POLICY, MODEL)
    assert list(recs["action"]) == ["refer", "maintain"]
    np.testing.assert_array_equal(buyer_capacity(pairs, POLICY)[0][0], 0.0)


def test_the_review_queue_puts_cancels_before_decreases_before_maintains():
    recs = recommend(
        pair(buyer_id="B1"),  # maintain
        pair(buyer_id="B2", grade=6, previous_grade=4),  # decrease
        pair(buyer_id="B3", last_insolvency_date=days_ago(1)),  # cancel
        pair(buyer_id="B4", oldest_overdue_days=90, limit_amount=50_000.0),  # decrease
        pair(buyer_id="B5", limit_amount=70_000.0),  # maintain
    )
    assert sorted(recs["priority"]) == list(range(1, len(recs) + 1))
    queue = recs.sort_values("priority")["action"].tolist()
    assert queue == ["cancel", "decrease", "decrease", "maintain", "maintain"]
    decreases = recs[recs["action"] == "decrease"].sort_values("priority")
    el_change = (decreases["expected_loss_before"] - decreases["expected_loss_after"]).abs()
    assert el_change.is_monotonic_decreasing


def test_output_columns_order_and_stamps():
    recs = recommend(pair(), pair(buyer_id="B2", grade=6, previous_grade=4))
    assert list(recs.columns) == RECOMMENDATION_COLUMNS
    assert (recs["model_version"] == MODEL).all()
    assert (recs["policy_version"] == POLICY.version).all()
    assert list(recs["buyer_id"]) == ["B1", "B2"]  # same order as the input
    assert recs["previous_grade"].dtype == "Int64"


def test_an_empty_input_gives_an_empty_table():
    recs = recommend_limits(frame(pair()).iloc[:0], POLICY, MODEL)
    assert recs.empty and list(recs.columns) == RECOMMENDATION_COLUMNS


def test_money_text_formats():
    amounts = np.array([0, 350_000, 999_499, 999_500, 1_000_000, 1_200_000, 12_345_678])
    assert money_text(amounts).to_pylist() == [
        "EUR 0",
        "EUR 350k",
        "EUR 999k",
        "EUR 1M",
        "EUR 1M",
        "EUR 1.2M",
        "EUR 12.3M",
    ]


def test_reason_codes_are_unique_and_listed_in_severity_order():
    assert len(set(REASON_CODES)) == len(REASON_CODES)
    rec = one(pair(grade=6, previous_grade=4, oldest_overdue_days=90, equity=50_000.0))
    listed = codes(rec)
    assert listed == sorted(listed, key=REASON_CODES.index)


# --------------------------------------------------------------------------------------
# Properties over random books.
# --------------------------------------------------------------------------------------

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
big = st.sampled_from([1e5, 3e5, 1e6, 2e6, 5e6, 2e7, 1e8])


def mostly(
    common: st.SearchStrategy, rare: st.SearchStrategy, one_in: int = 4
) -> st.SearchStrategy:
    """`common`, except one draw in `one_in` (roughly) from `rare`."""
    return st.integers(1, one_in).flatmap(lambda k: rare if k == 1 else common)


#: An event date: mostly none, sometimes within the lookback windows, sometimes long ago.
rare_days = mostly(st.none(), st.integers(0, 800), one_in=15)
#: Amounts in whole thousands (sums stay exact in any order), now and then millions.
thousands = mostly(
    st.sampled_from([0.0, 5e3, 20e3, 50e3, 100e3, 150e3, 250e3, 400e3]),
    st.integers(0, 3_000).map(lambda k: k * 1e3),
)
maybe_days = st.one_of(st.none(), st.integers(0, 400))


@st.composite
def books(draw: st.DrawFn) -> pd.DataFrame:
    """1-20 pairs on 1-8 buyers; buyer attributes (grade, capacity, events) shared by pairs."""
    n_buyers = draw(st.integers(1, 8))
    keys = draw(
        st.lists(
            st.tuples(st.integers(0, 4), st.integers(0, n_buyers - 1)),
            min_size=draw(st.integers(1, 20)),
            max_size=20,
            unique=True,
        ).filter(bool)
    )
    holders = {
        p: {
            "scheme": draw(st.sampled_from(["first_euro", "excess_of_loss"])),
            "indemnity_pct": float(draw(st.integers(50, 100))),
            "discretionary_limit": draw(
                st.one_of(st.just(np.nan), st.just(0.0), st.integers(0, 500).map(lambda k: k * 1e3))
            ),
        }
        for p in sorted({p for p, _ in keys})
    }
    buyers = {}
    for b in sorted({b for _, b in keys}):
        buyers[b] = {
            "grade": draw(mostly(st.integers(1, 8), st.integers(1, 10))),
            "previous_grade": draw(st.one_of(st.none(), st.integers(1, 10))),
            "pd": draw(st.floats(0.0003, 1.0)),
            "political_risk_class": draw(st.sampled_from([0, 0, 0, 1, 2, 3, 4, 5, 6, 7])),
            "equity": draw(mostly(big, st.sampled_from([np.nan, -1e6, -1.0, 0.0]))),
            "turnover": draw(
                mostly(st.builds(lambda x: 5 * x, big), st.sampled_from([np.nan, 0.0]))
            ),
            "statement_age_months": draw(
                mostly(st.floats(0.0, 24.0), st.one_of(st.just(np.nan), st.floats(24.0, 60.0)))
            ),
            "paid_within_terms_12m": draw(thousands),
            "oldest_overdue_days": draw(st.sampled_from([0, 0, 0, 0, 15, 30, 59, 60, 120])),
            **{
                f"last_{event}_date": (None if (d := draw(rare_days)) is None else days_ago(d))
                for event in sorted(EVENT_TYPES)
            },
        }
    rows = []
    for p, b in keys:
        decrease = draw(maybe_days)
        rows.append(
            pair(
                policyholder_id=f"P{p}",
                buyer_id=f"B{b}",
                limit_amount=draw(thousands),
                requested_amount=draw(st.one_of(st.just(np.nan), thousands.filter(bool))),
                exposure=draw(thousands),
                last_decrease_date=None if decrease is None else days_ago(decrease),
                **holders[p],
                **buyers[b],
            )
        )
    return frame(*rows)


@PROPERTY
@given(data=st.data())
def test_a_worse_grade_never_gives_a_higher_limit(data: st.DataObject):
    pairs = data.draw(books())
    buyer = data.draw(st.sampled_from(sorted(pairs["buyer_id"].unique())))
    mine = pairs["buyer_id"] == buyer
    grade = int(pairs.loc[mine, "grade"].iloc[0])
    worse_grade = data.draw(st.integers(min(grade + 1, 10), 10))
    worse = pairs.copy()
    worse.loc[mine, "grade"] = float(worse_grade)
    before = recommend_limits(pairs, POLICY, MODEL)["recommended_amount"].to_numpy()
    after = recommend_limits(worse, POLICY, MODEL)["recommended_amount"].to_numpy()
    assert np.all(after <= before + 1e-6), (grade, worse_grade)
    np.testing.assert_array_equal(after[~mine.to_numpy()], before[~mine.to_numpy()])


@PROPERTY
@given(pairs=books())
def test_an_insolvent_buyer_is_always_cancelled(pairs: pd.DataFrame):
    """Cancelled at once, automatically; a limit already at 0 without a request is left
    alone (nothing to cancel)."""
    recs = recommend_limits(pairs, POLICY, MODEL)
    insolvent = pairs["last_insolvency_date"].notna().to_numpy()
    nothing = (pairs["limit_amount"] <= 0).to_numpy() & ~(
        pairs["requested_amount"] > pairs["limit_amount"]
    ).to_numpy()
    cancelled = recs.loc[insolvent & ~nothing]
    assert (cancelled["action"] == "cancel").all()
    assert (cancelled["automatic_rule"] == "cancel_on_event").all()
    assert (cancelled["notice_days"] == 0).all()
    assert (recs.loc[insolvent, "recommended_amount"] == 0.0).all()
    assert (recs.loc[insolvent & nothing, "action"] == "maintain").all()


@PROPERTY
@given(pairs=books())
def test_amounts_and_expected_losses_are_never_negative(pairs: pd.DataFrame):
    recs = recommend_limits(pairs, POLICY, MODEL)
    for column in ("recommended_amount", "expected_loss_before", "expected_loss_after"):
        values = recs[column].to_numpy()
        assert np.isfinite(values).all() and (values >= 0).all(), column
    assert np.allclose(recs["change"], recs["recommended_amount"] - recs["limit_amount"])


@PROPERTY
@given(pairs=books(), seed=st.integers(0, 2**32 - 1))
def test_the_same_inputs_give_the_same_outputs_in_any_order(pairs: pd.DataFrame, seed: int):
    first = recommend_limits(pairs, POLICY, MODEL)
    pd.testing.assert_frame_equal(first, recommend_limits(pairs, POLICY, MODEL))
    shuffled = pairs.sample(frac=1.0, random_state=seed % 2**32).reset_index(drop=True)
    second = recommend_limits(shuffled, POLICY, MODEL)
    key = ["policyholder_id", "buyer_id"]
    a = first.sort_values(key).reset_index(drop=True)
    b = second.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a.drop(columns="priority"), b.drop(columns="priority"))


@PROPERTY
@given(pairs=books())
def test_every_row_has_known_reasons_and_one_action(pairs: pd.DataFrame):
    recs = recommend_limits(pairs, POLICY, MODEL)
    assert len(recs) == len(pairs)
    for text in recs["reason_codes"]:
        listed = text.split("|")
        assert listed and all(listed), text
        assert set(listed) <= set(REASON_CODES), text
    assert recs["action"].isin(ACTIONS).all()
    assert recs["proposed_action"].isin(ACTIONS).all()
    assert (recs["human_required"] == (recs["action"] == "refer")).all()


@PROPERTY
@given(pairs=books())
def test_the_review_queue_puts_human_decisions_first_then_money_at_risk(pairs: pd.DataFrame):
    recs = recommend_limits(pairs, POLICY, MODEL)
    assert sorted(recs["priority"]) == list(range(1, len(recs) + 1))
    queue = recs.sort_values("priority")
    human = queue["human_required"].to_numpy(dtype=int)
    assert np.all(np.diff(human) <= 0)  # every human item before every automatic one
    el = (queue["expected_loss_before"] - queue["expected_loss_after"]).abs().to_numpy()
    same_group = np.diff(human) == 0
    assert np.all(np.diff(el)[same_group] <= 1e-12)


# --------------------------------------------------------------------------------------
# The decision loop: nothing that would not change the book, automatic vs human,
# notice periods, deadlines, what is new today.
# --------------------------------------------------------------------------------------


def test_nothing_is_proposed_on_a_limit_already_at_zero():
    rec = one(pair(limit_amount=0.0, exposure=0.0, last_insolvency_date=days_ago(3)))
    assert rec["action"] == "maintain" and "NO_COVER" in codes(rec)
    asked = one(pair(limit_amount=0.0, requested_amount=50_000.0, last_insolvency_date=days_ago(3)))
    assert asked["action"] == "cancel"  # a request on an insolvent buyer gets its answer


def test_a_cut_already_decided_is_not_proposed_again_during_its_notice():
    downgraded = {"grade": 6, "previous_grade": 4}
    first = one(pair(**downgraded))
    assert first["action"] == "decrease"
    again = one(
        pair(**downgraded, scheduled_amount=first["recommended_amount"],
             scheduled_date=AS_OF + pd.Timedelta(days=20))
    )  # fmt: skip
    assert again["action"] == "maintain" and codes(again) == ["DOWNGRADE", "CHANGE_SCHEDULED"]
    deeper = one(pair(**downgraded, scheduled_amount=first["recommended_amount"] + 50_000.0))
    assert deeper["action"] == "decrease"  # the scheduled cut is not enough any more


def test_a_pair_decided_by_an_underwriter_stays_quiet_until_something_material_changes():
    decided = {"grade": 6, "previous_grade": 4, "last_decision_date": days_ago(5),
               "last_decision_grade": 6}  # fmt: skip
    quiet = one(pair(**decided))
    assert quiet["action"] == "maintain" and "DECIDED_RECENTLY" in codes(quiet)
    window = POLICY.queue.reconsider_after_days
    material = {
        "grade moved": {"grade": 7},
        "new event": {"last_overdue_notification_date": days_ago(1)},
        "new request": {"requested_amount": 150_000.0, "request_date": days_ago(1)},
        "exposure over the limit": {"exposure": 120_000.0},
        "window over": {"last_decision_date": days_ago(window + 1)},
    }
    for name, change in material.items():
        rec = one(pair(**{**decided, **change}))
        assert "DECIDED_RECENTLY" not in codes(rec), name


def test_automatic_decisions_stay_within_the_systems_authority():
    small_cut = one(pair(grade=6, previous_grade=4))
    assert small_cut["automatic_rule"] == "decrease_within_authority"
    assert not small_cut["human_required"] and pd.isna(small_cut["deadline"])
    big = one(pair(grade=6, previous_grade=4, limit_amount=2 * AUTH.max_change / DEC.downgrade_cut,
                   exposure=50_000.0))  # fmt: skip
    assert big["action"] == "refer" and big["human_required"] and pd.isna(big["automatic_rule"])
    # a referral gets its answer deadline in business days (2026-06-30 is a Tuesday)
    assert big["deadline"] == np.busday_offset(
        "2026-06-30", POLICY.queue.deadline_business_days, roll="forward"
    ).astype("datetime64[ns]")


def test_reductions_wait_for_the_notice_period_except_on_a_cancelling_event():
    cut = one(pair(grade=6, previous_grade=4))
    assert cut["notice_days"] == POLICY.notice.days
    assert cut["effective_date"] == AS_OF + pd.Timedelta(days=POLICY.notice.days)
    insolvent = one(pair(last_insolvency_date=days_ago(1)))
    assert insolvent["notice_days"] == 0 and insolvent["effective_date"] == AS_OF
    grant = one(pair(requested_amount=150_000.0))
    assert grant["action"] == "increase" and grant["effective_date"] == AS_OF


def test_new_today_flags_what_the_previous_run_did_not_propose():
    downgraded = {"grade": 6, "previous_grade": 4}
    assert one(pair(**downgraded))["new_today"]
    assert not one(pair(**downgraded, previous_action="decrease"))["new_today"]
    assert not one(pair())["new_today"]  # maintain is never new
