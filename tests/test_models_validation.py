"""Validation: Jeffreys traffic lights, PSI, KS and the report on constructed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta

from models.pd.validation import (
    GREEN,
    PSI_SHIFT,
    PSI_WATCH,
    RED,
    YELLOW,
    jeffreys_p_value,
    ks_statistic,
    oracle_auc,
    psi,
    psi_from_shares,
    psi_light,
    traffic_light,
    validate,
)


def _grade_sample(n: int, defaults: int, pd_: float) -> tuple[np.ndarray, np.ndarray]:
    y = np.zeros(n)
    y[:defaults] = 1
    return y, np.full(n, pd_)


def test_jeffreys_p_value_is_the_beta_cdf_at_the_mean_pd() -> None:
    assert jeffreys_p_value(5, 1000, 0.004) == pytest.approx(beta.cdf(0.004, 5.5, 995.5))


@pytest.mark.parametrize(
    ("n", "defaults", "pd_", "light"),
    [
        (1000, 10, 0.01, GREEN),  # as predicted
        (1000, 2, 0.01, GREEN),  # fewer defaults than predicted: conservative, still green
        (1000, 17, 0.01, YELLOW),  # p ~ 0.02
        (1000, 25, 0.01, RED),  # far too many defaults
        (50, 1, 0.01, GREEN),  # few buyers: one default is not yet evidence
    ],
)
def test_traffic_lights_on_constructed_grades(n, defaults, pd_, light) -> None:
    p = float(jeffreys_p_value(defaults, n, pd_))
    assert traffic_light(p) == light


def test_report_flags_the_underestimated_grade_and_overall_is_the_worst() -> None:
    y1, p1 = _grade_sample(2000, 20, 0.01)  # grade 5, fine
    y2, p2 = _grade_sample(2000, 140, 0.05)  # grade 7, 7 % observed vs 5 %: red
    y3, p3 = _grade_sample(2000, 40, 0.2)  # grade 9, far fewer: conservative
    y, p = np.concatenate([y1, y2, y3]), np.concatenate([p1, p2, p3])
    report = validate(y, p, segments={"size_class": np.repeat(["0", "1", "2"], 2000)})
    grades = report.by_grade
    assert grades.loc[5, "traffic_light"] == GREEN
    assert grades.loc[7, "traffic_light"] == RED
    assert grades.loc[9, "traffic_light"] == GREEN and grades.loc[9, "conservative"]
    assert grades.loc[1, "traffic_light"] == "n/a" and grades.loc[1, "count"] == 0
    assert report.overall_traffic_light == RED
    assert report.metrics["grades_red"] == 1
    assert report.metrics["largest_grade_share"] == pytest.approx(1 / 3)
    assert report.metrics["grade_hhi"] == pytest.approx(1 / 3)
    assert report.by_segment["size_class"].loc["1", "traffic_light"] == RED
    text = report.to_markdown()
    assert "Overall calibration traffic light: RED" in text
    assert "| 7 (high risk) | 2,000 |" in text
    record = report.to_dict()
    assert record["overall_traffic_light"] == RED
    assert record["by_grade"][6]["traffic_light"] == RED


def test_metrics_on_a_known_sample() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    report = validate(y, p)
    m = report.metrics
    assert m["auc"] == pytest.approx(0.75)
    assert m["gini"] == pytest.approx(0.5)
    assert m["ks"] == pytest.approx(0.5)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert m["log_loss"] == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    assert ks_statistic(y, p) == pytest.approx(0.5)
    assert oracle_auc(y, p) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="missing"):
        oracle_auc(y, np.array([0.1, np.nan, 0.2, 0.3]))


def test_psi_known_values() -> None:
    # 50/50 -> 25/75: (0.25-0.5) ln(0.5) + (0.75-0.5) ln(1.5)
    expected = 0.25 * np.log(2) + 0.25 * np.log(1.5)
    assert psi_from_shares([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)
    assert psi_from_shares([0.2] * 5, [0.2] * 5) == 0.0
    ref = np.arange(1000) / 1000
    assert psi(ref, ref) == pytest.approx(0.0)
    # shift half of the mass of the lower half to the upper half: 2 bins 25/75
    shifted = np.concatenate([ref[:250], ref[500:], ref[500:750]])
    assert psi(ref, shifted, bins=2) == pytest.approx(expected)
    assert (psi_light(0.05), psi_light(PSI_WATCH), psi_light(PSI_SHIFT)) == (GREEN, YELLOW, RED)


def test_reference_pd_adds_psi_and_true_pd_adds_oracle() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.001, 0.2, 5000)
    y = (rng.random(5000) < p).astype(int)
    report = validate(y, p, reference_pd=p * 3, true_pd=p)
    assert report.metrics["psi"] > PSI_SHIFT
    assert report.psi_traffic_light == RED
    assert report.metrics["oracle_auc"] == pytest.approx(report.metrics["auc"])
    assert "oracle AUC" in report.to_markdown()
    assert isinstance(report.by_grade, pd.DataFrame)
