"""Scorecard: monotone WoE along the catalogue's direction, missing bin, points, selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.pd.scorecard import DEFAULT_SCORECARD_PARAMS, MISSING, Scorecard, fit_bins


def _book(n: int = 40_000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    dbt = rng.gamma(1.5, 8, n)  # days beyond terms: risk rises
    current = rng.lognormal(0.2, 0.5, n)  # current ratio: risk falls
    noise = rng.normal(size=n)  # unrelated
    sector = rng.choice(list("CFGI"), n)
    no_statement = rng.random(n) < 0.3
    current[no_statement] = np.nan  # no statement: missing ratio, and riskier
    logit = (
        -3.6
        + 0.05 * dbt
        - 0.8 * np.nan_to_num(np.log(current))
        + 0.6 * no_statement
        + np.where(sector == "F", 0.5, 0.0)
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(
        {"dbt_12m": dbt, "current_ratio": current, "noise": noise, "sector": sector}
    )
    return frame, y


DIRECTIONS = {"dbt_12m": 1, "current_ratio": -1, "noise": 0, "sector": 0}


def test_woe_is_monotone_along_the_risk_direction() -> None:
    frame, y = _book()
    card = Scorecard().fit(frame, y, DIRECTIONS, {"sector"})
    dbt = card.bins["dbt_12m"]
    current = card.bins["current_ratio"]
    # classic WoE (ln %good / %bad): falls as days beyond terms rise, rises with liquidity
    assert np.all(np.diff(dbt.woe[:-1]) <= 0) and len(dbt.woe) > 4
    assert np.all(np.diff(current.woe[:-1]) >= 0) and len(current.woe) > 4
    # the missing bin is its own, riskier than average
    assert current.labels()[-1] == MISSING and current.woe[-1] < 0
    assert card.bins["sector"].labels() == ["C", "F", "G", "I", MISSING]
    assert card.bins["sector"].woe[1] == min(card.bins["sector"].woe[:-1])


def test_pool_adjacent_violators_merges_bins_against_the_direction() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 10, 20_000)
    rate = np.where(x < 5, 0.02, 0.10)
    rate[(x > 2) & (x < 3)] = 0.2  # a bump that contradicts a falling direction
    y = (rng.random(len(x)) < rate).astype(int)
    params = dict(DEFAULT_SCORECARD_PARAMS)
    free = fit_bins("x", pd.Series(x), y, 0, False, params, rng)
    falling = fit_bins("x", pd.Series(x), y, -1, False, params, rng)
    rates = falling.defaults[:-1] / falling.count[:-1]
    assert np.all(np.diff(rates) >= 0)  # classic risk direction -1: rate must not rise ...
    assert falling.n_bins < free.n_bins  # ... so bins were pooled


def test_points_selection_and_contributions() -> None:
    frame, y = _book()
    card = Scorecard().fit(frame, y, DIRECTIONS, {"sector"})
    assert "noise" not in card.selected
    assert card.dropped["noise"].startswith("information value")
    assert all(c < 0 for c in card.coef.values())
    table = card.scorecard_table()
    # more points for the lowest dbt bin than for the highest
    dbt = table.loc[table["feature"] == "dbt_12m"]
    assert dbt["points"].iloc[0] > dbt["points"].iloc[-2]
    # total points follow the PDO rule: +20 points halve the odds of default
    scores = card.score(frame.head(500))
    log_odds = card.log_odds(frame.head(500))
    slope = np.polyfit(log_odds, scores, 1)[0]
    assert slope == pytest.approx(-20 / np.log(2))
    contrib = card.contributions(frame.head(500), list(frame.columns))
    assert np.allclose(contrib.sum(axis=1) + card.intercept, log_odds)
    assert (contrib["noise"] == 0).all()
    summary = card.feature_summary()
    assert set(summary["feature"]) == set(frame.columns)


def test_unseen_category_and_missing_get_the_missing_bin() -> None:
    frame, y = _book(5000)
    card = Scorecard().fit(frame, y, DIRECTIONS, {"sector"})
    bins = card.bins["sector"]
    index = bins.bin_index(pd.Series(["C", "Z", None]))
    assert index.tolist() == [0, bins.n_bins - 1, bins.n_bins - 1]
