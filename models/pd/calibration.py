"""Calibration: turn a model's raw score into a 12-month PD on the calibration slice.

Why a separate step: a model fitted on older cohorts ranks buyers well but its probability
level drifts with the cycle (the training period's default rate is not today's), and
boosted trees are not probability-calibrated at all. The calibration slice is a later,
disjoint period, so the PD level is set on recent cohorts without refitting the ranking.

Methods:
- "platt" (default): logistic regression of the outcome on the logit of the raw score,
  PD = sigmoid(a + b * logit(raw)). Two parameters, robust with few defaults, and strictly
  monotone (it never changes the ranking, so AUC is unchanged and monotone constraints
  survive). A non-positive slope (a useless score) is clamped to 0 with a warning rather than
  reversing the ranking.
- "isotonic": non-parametric step function (sklearn IsotonicRegression); more flexible, but
  it needs many defaults and creates ties (flat steps), which cost some AUC.
"""

from __future__ import annotations

import copy
import warnings
from typing import Literal

import numpy as np
from scipy.optimize import brentq
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

Method = Literal["platt", "isotonic"]
Scale = Literal["probability", "logit"]
_EPS = 1e-9


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype="float64"), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype="float64")))


class Calibrator:
    """Maps raw scores to PDs; `scale` says whether raw scores are probabilities or log-odds."""

    def __init__(self, method: Method = "platt", scale: Scale = "probability") -> None:
        if method not in ("platt", "isotonic"):
            raise ValueError(f"unknown calibration method {method!r}")
        if scale not in ("probability", "logit"):
            raise ValueError(f"unknown raw score scale {scale!r}")
        self.method: Method = method
        self.scale: Scale = scale
        self.intercept_: float = 0.0
        self.slope_: float = 1.0
        self.isotonic_: IsotonicRegression | None = None
        self.n_: int = 0
        self.defaults_: int = 0

    def _z(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype="float64")
        return raw if self.scale == "logit" else logit(raw)

    def fit(self, raw: np.ndarray, y: np.ndarray) -> Calibrator:
        """Fit on the calibration slice's raw scores and 0/1 outcomes."""
        y = np.asarray(y, dtype="float64")
        z = self._z(raw)
        if z.shape != y.shape or z.ndim != 1:
            raise ValueError("raw and y must be 1-d arrays of the same length")
        self.n_, self.defaults_ = len(y), int(y.sum())
        if self.defaults_ == 0 or self.defaults_ == self.n_:
            raise ValueError("calibration needs both defaults and non-defaults")
        if self.method == "isotonic":
            self.isotonic_ = IsotonicRegression(
                y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip"
            ).fit(z, y)
            return self
        # C=inf: plain maximum likelihood; two parameters need no shrinkage.
        model = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000)
        model.fit(z.reshape(-1, 1), y.astype(int))
        self.slope_, self.intercept_ = float(model.coef_[0, 0]), float(model.intercept_[0])
        if self.slope_ <= 0:
            warnings.warn(
                f"calibration slope {self.slope_:.3f} <= 0: the score does not rank the "
                "calibration slice; using its average default rate for everyone",
                RuntimeWarning,
                stacklevel=2,
            )
            self.slope_ = 0.0
            rate = self.defaults_ / self.n_
            self.intercept_ = float(np.log(rate / (1 - rate)))
        return self

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated PD of each raw score (float64, in (0, 1))."""
        z = self._z(raw)
        if self.method == "isotonic":
            if self.isotonic_ is None:
                raise RuntimeError("calibrator is not fitted")
            return np.clip(self.isotonic_.predict(z), _EPS, 1 - _EPS)
        return sigmoid(self.intercept_ + self.slope_ * z)

    def shifted(self, delta: float) -> Calibrator:
        """A copy whose log-odds are moved by `delta`: the level changes, the ranking not."""
        if self.method != "platt":
            raise ValueError("an intercept shift needs Platt calibration (isotonic has none)")
        out = copy.deepcopy(self)
        out.intercept_ = self.intercept_ + float(delta)
        return out

    def fit_transform(self, raw: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.fit(raw, y).transform(raw)

    def describe(self) -> dict[str, float | str]:
        """Parameters for tracking and the validation report."""
        out: dict[str, float | str] = {
            "method": self.method,
            "n": self.n_,
            "defaults": self.defaults_,
        }
        if self.method == "platt":
            out |= {"intercept": self.intercept_, "slope": self.slope_}
        return out


def intercept_shift(pd_: np.ndarray, y: np.ndarray) -> float:
    """The log-odds shift that makes the PDs' sum equal the observed defaults.

    Intercept recalibration: when a model still ranks buyers well but the default level has
    moved (observed / predicted off on a matured cohort), only the intercept is refitted;
    slope and ranking stay as validated.
    """
    z = logit(np.asarray(pd_, dtype="float64"))
    y = np.asarray(y, dtype="float64")
    if z.shape != y.shape or z.ndim != 1 or len(y) == 0:
        raise ValueError("pd_ and y must be 1-d arrays of the same, non-zero length")
    target = float(y.sum())
    if target == 0 or target == len(y):
        raise ValueError("an intercept shift needs both defaults and non-defaults")
    return float(brentq(lambda d: float(sigmoid(z + d).sum()) - target, -20.0, 20.0))
