"""The limit book read point in time: versions, notice periods, withdrawn decisions."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from models.limits.book import amounts_in_force, limits_as_of


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


def test_amounts_in_force_on_each_pairs_own_date():
    book = versions(
        ("P1", "B1", 100.0, "2025-01-01", None),
        ("P1", "B1", 40.0, "2025-03-31", "2025-04-30"),  # a cut with 30 days' notice
        ("P2", "B2", 70.0, "2025-01-01", None),
    )
    pairs = pd.DataFrame({"policyholder_id": ["P1", "P1", "P2", "P3"],
                          "buyer_id": ["B1", "B1", "B2", "B3"]})  # fmt: skip
    when = pd.to_datetime(["2025-04-10", "2025-05-01", "2025-03-31", "2025-03-31"]).to_numpy()
    # the old limit until the notice ends, the cut after; an unknown pair has no cover
    assert amounts_in_force(book, pairs, when).tolist() == [100.0, 40.0, 70.0, 0.0]


_DAYS = pd.date_range("2025-01-01", periods=45, freq="D")


@st.composite
def _books(draw):
    """Random version histories of three pairs: decisions on any day, some with notice."""
    rows = []
    for k in range(draw(st.integers(1, 12))):
        pair = draw(st.sampled_from([("P1", "B1"), ("P1", "B2"), ("P2", "B1")]))
        decided = draw(st.integers(0, 30))
        notice = draw(st.sampled_from([None, 0, 3, 10]))
        effective = None if notice is None else _DAYS[decided + notice]
        amount = float(draw(st.sampled_from([0, 10, 20, 50, 100])) + k)  # distinct amounts
        rows.append((*pair, amount, _DAYS[decided], effective))
    return versions(*rows)


@settings(max_examples=60, deadline=None)
@given(book=_books(), days=st.lists(st.integers(0, 39), min_size=3, max_size=3))
def test_amounts_in_force_agree_with_the_book_read_on_each_date(book, days):
    pairs = pd.DataFrame({"policyholder_id": ["P1", "P1", "P2"], "buyer_id": ["B1", "B2", "B1"]})
    when = _DAYS[days].to_numpy()
    expected = []
    for i, pair in enumerate(pairs.itertuples(index=False)):
        read = at(book, str(_DAYS[days[i]].date()))
        expected.append(read.get((pair.policyholder_id, pair.buyer_id), (0.0, np.nan))[0])
    assert amounts_in_force(book, pairs, when).tolist() == expected
