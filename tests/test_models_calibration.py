"""Calibration: a deliberately miscalibrated score gets a lower calibration error."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from models.pd.calibration import Calibrator, logit, sigmoid
from models.pd.validation import expected_calibration_error


def _sample(n: int = 60_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(-3.5, 1.0, n)
    true_pd = sigmoid(z)
    return true_pd, (rng.random(n) < true_pd).astype(int)


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_improves_ece_on_miscalibrated_scores(method: str) -> None:
    true_pd, y = _sample()
    # overconfident and too high: slope 2, shifted up by 1.5 log-odds
    raw = sigmoid(2.0 * logit(true_pd) + 1.5 + 3.5)
    half = len(y) // 2
    calibrator = Calibrator(method).fit(raw[:half], y[:half])
    before = expected_calibration_error(y[half:], raw[half:])
    after = expected_calibration_error(y[half:], calibrator.transform(raw[half:]))
    assert before > 0.05
    assert after < before / 5
    assert after < 0.006


def test_platt_recovers_the_distortion_and_keeps_the_ranking() -> None:
    true_pd, y = _sample()
    raw_logit = 2.0 * logit(true_pd) + 5.0
    calibrator = Calibrator("platt", scale="logit").fit(raw_logit, y)
    assert calibrator.slope_ == pytest.approx(0.5, abs=0.05)
    assert calibrator.intercept_ == pytest.approx(-2.5, abs=0.3)
    calibrated = calibrator.transform(raw_logit)
    assert roc_auc_score(y, calibrated) == pytest.approx(roc_auc_score(y, raw_logit))
    assert np.all(np.diff(calibrated[np.argsort(raw_logit)]) >= 0)


def test_useless_score_gets_the_average_rate_not_a_reversed_ranking() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(5000) < 0.05).astype(int)
    raw = np.where(y == 1, 0.01, 0.2)  # anti-predictive
    with pytest.warns(RuntimeWarning, match="slope"):
        calibrator = Calibrator().fit(raw, y)
    assert np.allclose(calibrator.transform(raw), y.mean())


def test_calibration_needs_both_outcomes() -> None:
    with pytest.raises(ValueError, match="both"):
        Calibrator().fit(np.array([0.1, 0.2]), np.array([0, 0]))
