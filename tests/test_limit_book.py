"""The limit book read point in time: versions, notice periods, withdrawn decisions."""

from __future__ import annotations

import pandas as pd

from models.limits.book import limits_as_of


def versions(*rows: tuple) -> pd.DataFrame:
    """(policyholder, buyer, amount, decided, effective or None) rows as the lake holds them."""
    frame = pd.DataFrame(
        rows, columns=["policyholder_id", "buyer_id", "limit_amount", "decision_date",
                       "effective_date"]
    )  # fmt: skip
    return frame.assign(
        requested_amount=float("nan"),
        exposure=10_000.0,
        decision_date=pd.to_datetime(frame["decision_date"]),
        effective_date=pd.to_datetime(frame["effective_date"]),
    )


def at(book: pd.DataFrame, day: str) -> dict[tuple[str, str], tuple[float, float]]:
    out = limits_as_of(book, pd.Timestamp(day))
    return {
        (r.policyholder_id, r.buyer_id): (r.limit_amount, r.scheduled_amount)
        for r in out.itertuples()
    }


def test_a_limit_as_of_a_date_is_the_one_in_force_that_day():
    book = versions(
        ("P1", "B1", 100_000.0, "2026-01-10", None),
        ("P1", "B1", 150_000.0, "2026-06-01", None),
        ("P2", "B1", 50_000.0, "2026-07-01", None),
    )
    (limit, scheduled), *others = at(book, "2026-03-01").values()
    assert limit == 100_000.0 and pd.isna(scheduled) and not others
    # a later decision loaded since does not change what was in force on a past date
    assert at(book, "2026-05-31")[("P1", "B1")][0] == 100_000.0
    assert at(book, "2026-06-15")[("P1", "B1")][0] == 150_000.0
    assert ("P2", "B1") not in at(book, "2026-06-30") and ("P2", "B1") in at(book, "2026-07-01")


def test_a_cut_takes_effect_after_its_notice_and_is_scheduled_until_then():
    book = versions(
        ("P1", "B1", 100_000.0, "2026-01-10", None),
        ("P1", "B1", 40_000.0, "2026-06-01", "2026-07-01"),
    )
    limit, scheduled = at(book, "2026-06-15")[("P1", "B1")]
    assert (limit, scheduled) == (100_000.0, 40_000.0)
    limit, scheduled = at(book, "2026-07-01")[("P1", "B1")]
    assert limit == 40_000.0 and pd.isna(scheduled)  # nothing pending any more


def test_a_later_decision_withdraws_a_change_still_pending():
    book = versions(
        ("P1", "B1", 100_000.0, "2026-01-10", None),
        ("P1", "B1", 40_000.0, "2026-06-01", "2026-07-01"),  # cut with notice
        ("P1", "B1", 90_000.0, "2026-06-10", None),  # then the underwriter reverses it
    )
    assert at(book, "2026-06-05")[("P1", "B1")] == (100_000.0, 40_000.0)
    assert at(book, "2026-06-10")[("P1", "B1")][0] == 90_000.0
    assert at(book, "2026-08-01")[("P1", "B1")][0] == 90_000.0  # the cut never takes effect


def test_a_new_limit_not_yet_in_force_shows_as_zero_with_its_schedule():
    book = versions(("P1", "B1", 60_000.0, "2026-06-01", "2026-06-20"))
    assert at(book, "2026-06-05")[("P1", "B1")] == (0.0, 60_000.0)
    assert at(book, "2026-05-31") == {}
