"""Limit report: summary sums match the input, the queue is right, the HTML is self-contained."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from models.limits.report import (
    ACTIONS,
    SUMMARY_COLUMNS,
    TOTAL,
    recommendations_html,
    review_queue,
    summary_by,
)
from models.reports.format import money

MONEY = ["limit_amount", "recommended_amount", "change", "expected_loss_before"]
MONEY += ["expected_loss_after"]
EVIL = "<script>alert(1)</script>"
BREAKOUT = '"><img src=x onerror=alert(1)>'


def _recs(n: int = 30, seed: int = 0) -> pd.DataFrame:
    """A small recommendations frame shaped like the limit engine's output."""
    rng = np.random.default_rng(seed)
    action = rng.choice(list(ACTIONS), size=n)
    grade = rng.integers(1, 11, size=n)
    previous = pd.array(np.clip(grade + rng.integers(-2, 3, size=n), 1, 10), dtype="Int64")
    previous[rng.random(n) < 0.2] = pd.NA
    pd_ = np.clip(0.0005 * 2.0 ** (grade - 1), 0, 1)
    limit = rng.choice([50_000.0, 250_000.0, 1_000_000.0, 3_500_000.0], size=n)
    factor = {"increase": 1.5, "decrease": 0.5, "cancel": 0.0, "refer": 1.0, "maintain": 1.0}
    recommended = limit * np.array([factor[a] for a in action])
    proposed = np.where(action == "refer", rng.choice(["increase", "decrease"], size=n), action)
    return pd.DataFrame(
        {
            "as_of_date": pd.Timestamp("2025-06-30"),
            "policyholder_id": [f"P{i % 4}" for i in range(n)],
            "buyer_id": [f"B{i % 25:03d}" for i in range(n)],
            "scheme": rng.choice(["first_euro", "excess_of_loss"], size=n),
            "country": rng.choice(["DE", "FR", "NL", "IT", "ES", "PL"], size=n),
            "political_risk_class": rng.integers(1, 8, size=n),
            "grade": grade,
            "previous_grade": previous,
            "pd": pd_,
            "limit_amount": limit,
            "requested_amount": np.where(rng.random(n) < 0.3, limit * 2, np.nan),
            "exposure": limit * rng.uniform(0, 1, size=n),
            "action": action,
            "proposed_action": proposed,
            "recommended_amount": recommended,
            "change": recommended - limit,
            "reason_codes": np.where(action == "maintain", "", "OVER_CAPACITY|STEP_CAPPED"),
            "explanation": [
                f"Grade {g}: engine says {a}." for g, a in zip(grade, action, strict=True)
            ],
            "expected_loss_before": pd_ * limit * 0.6,
            "expected_loss_after": pd_ * recommended * 0.6,
            "priority": rng.permutation(n) + 1,
            "human_required": (action == "refer") | (rng.random(n) < 0.15),
            "model_version": "pd-lgbm-7",
            "policy_version": "limits-2025.2",
        }
    )


def test_summary_by_action_lists_every_action_then_total_and_sums_match() -> None:
    recs = _recs()
    summary = summary_by(recs, "action")
    assert list(summary.index) == [*ACTIONS, TOTAL]
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    groups = recs.groupby("action")
    expected = pd.DataFrame(
        {
            "pairs": groups.size(),
            "buyers": groups["buyer_id"].nunique(),
            "limit_before": groups["limit_amount"].sum(),
            "limit_after": groups["recommended_amount"].sum(),
            "change": groups["change"].sum(),
            "expected_loss_before": groups["expected_loss_before"].sum(),
            "expected_loss_after": groups["expected_loss_after"].sum(),
            "human_required": groups["human_required"].sum(),
        }
    ).reindex(list(ACTIONS), fill_value=0)
    pd.testing.assert_frame_equal(
        summary.drop(index=TOTAL), expected, check_dtype=False, check_names=False
    )
    total = summary.loc[TOTAL]
    assert total["pairs"] == len(recs)
    assert total["buyers"] == recs["buyer_id"].nunique()
    assert total["human_required"] == recs["human_required"].sum()
    for column, source in [("limit_before", "limit_amount"), ("limit_after", "recommended_amount")]:
        assert total[column] == pytest.approx(recs[source].sum())
    assert total["change"] == pytest.approx(recs["change"].sum())
    assert total["expected_loss_after"] == pytest.approx(recs["expected_loss_after"].sum())


def test_summary_by_action_fills_absent_actions_with_zeros() -> None:
    recs = _recs()
    only = recs[recs["action"] == "increase"]
    summary = summary_by(only, "action")
    assert list(summary.index) == [*ACTIONS, TOTAL]
    assert summary.loc["increase", "pairs"] == len(only)
    assert (summary.loc[["decrease", "cancel", "refer", "maintain"]] == 0).all().all()


def test_summary_by_grade_is_sorted_and_adds_up() -> None:
    recs = _recs()
    summary = summary_by(recs, "grade")
    grades = sorted(recs["grade"].unique())
    assert list(summary.index) == [*grades, TOTAL]
    body = summary.drop(index=TOTAL)
    assert body["pairs"].sum() == summary.loc[TOTAL, "pairs"] == len(recs)
    for column in ["limit_before", "change", "expected_loss_before"]:
        assert body[column].sum() == pytest.approx(summary.loc[TOTAL, column])


def test_review_queue_is_sorted_and_leaves_out_routine_rows() -> None:
    recs = _recs()
    queue = review_queue(recs, top=1000)
    assert queue["priority"].is_monotonic_increasing
    needs = recs["human_required"] | recs["action"].isin(["cancel", "decrease", "refer"])
    assert set(queue["priority"]) == set(recs.loc[needs, "priority"])
    routine = recs[recs["action"].eq("maintain") & ~recs["human_required"]]
    assert not routine.empty  # the generator must produce the case under test
    assert not set(routine["priority"]) & set(queue["priority"])
    for column in ["buyer_id", "action", "proposed_action", "reason_codes", "explanation"]:
        assert column in queue.columns
    assert len(review_queue(recs, top=5)) == 5
    assert review_queue(recs, top=5)["priority"].tolist() == queue["priority"].head(5).tolist()


def test_html_is_self_contained_with_embedded_plots() -> None:
    page = recommendations_html(_recs())
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("data:image/png;base64,") >= 3
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<script|<link|<iframe", page, flags=re.IGNORECASE)
    assert "2025-06-30" in page and "pd-lgbm-7" in page and "limits-2025.2" in page
    assert "EUR " in page and "%" in page


def test_html_escapes_text_from_the_data() -> None:
    recs = _recs()
    first = recs["priority"].idxmin()
    recs.loc[first, ["buyer_id", "action", "human_required"]] = [EVIL, "cancel", True]
    recs.loc[first, "explanation"] = EVIL
    page = recommendations_html(recs, title=EVIL)
    assert EVIL not in page
    assert "<script" not in page.lower()
    assert html_escaped(EVIL) in page


@pytest.mark.parametrize("payload", [EVIL, BREAKOUT])
def test_every_data_text_is_autoescaped(payload: str) -> None:
    """Ids, names, reasons and explanations appear only escaped: no markup from the data."""
    recs = _recs()
    urgent = recs["priority"].nsmallest(3).index
    recs.loc[urgent, "action"] = "cancel"  # in the review queue for sure
    recs.loc[urgent, "buyer_id"] = payload
    recs.loc[urgent, "policyholder_id"] = payload
    recs.loc[urgent, "explanation"] = payload
    recs.loc[urgent, "reason_codes"] = f"OVER_CAPACITY|{payload}"
    recs.loc[urgent, "country"] = payload
    recs["model_version"] = payload
    page = recommendations_html(recs, top=5)
    assert payload not in page
    assert "<script" not in page.lower() and "<img src=x" not in page
    escaped = html_escaped(payload).replace('"', "&#34;")
    # 5 cells of each queued row (policyholder, buyer, country, reasons, explanation),
    # the header line (model) and the country table's row
    assert page.count(escaped) == 3 * 5 + 1 + 1
    assert page.count("<img ") == page.count('<img src="data:image/png;base64,') == 3


def html_escaped(text: str) -> str:
    """What html.escape makes of the malicious text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@pytest.mark.parametrize("empty", [_recs().iloc[0:0], pd.DataFrame()])
def test_empty_frame_gives_zero_tables_and_a_page_saying_so(empty: pd.DataFrame) -> None:
    summary = summary_by(empty, "action")
    assert list(summary.index) == [*ACTIONS, TOTAL]
    assert (summary == 0).all().all()
    assert review_queue(empty).empty
    page = recommendations_html(empty)
    assert "no recommendations" in page.lower()
    assert "data:image/png;base64," not in page


def test_single_action_still_renders_every_plot() -> None:
    recs = _recs()
    page = recommendations_html(recs[recs["action"] == "maintain"], top=3)
    assert page.count("data:image/png;base64,") >= 3


def test_missing_columns_are_reported() -> None:
    with pytest.raises(ValueError, match="lacks columns"):
        summary_by(_recs().drop(columns="change"), "action")


@pytest.mark.parametrize(
    ("amount", "signed", "text"),
    [
        (1_234_567, False, "EUR 1.2 M"),
        (350_000, False, "EUR 350 k"),
        (-350_000, True, "EUR -350 k"),
        (2_500_000_000, True, "EUR +2.5 bn"),
        (999_999, False, "EUR 1.0 M"),
        (420, False, "EUR 420"),
        (0.2, True, "EUR 0"),
        (float("nan"), False, "–"),
    ],
)
def test_money_is_short_and_readable(amount: float, signed: bool, text: str) -> None:
    assert money(amount, signed=signed) == text
