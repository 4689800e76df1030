"""The transparent baseline: a points scorecard (binning, weight of evidence, logistic regression).

Why: a validator and an underwriter can read every number of it (which bin a buyer falls in,
what that bin is worth in points), and it is the benchmark the LightGBM challenger must beat.

Steps, all fitted on the training slice only:
1. **Binning** per numeric feature: right-closed quantile bins (up to `n_bins`, edges from
   a sample of at most `quantile_sample` rows), bins below `min_bin_share` merged into a
   neighbour; a missing value is its own bin (missingness often carries risk: no
   statements, no payment history). Categorical features (sector): one bin per category.
2. **Monotone bins**: where the catalogue knows the economic direction (`risk_direction`),
   adjacent bins whose default rates contradict it are pooled (pool-adjacent-violators), so
   the scorecard never rewards, e.g., paying later. The missing bin is left free.
3. **Weight of evidence** per bin, classic sign: WoE = ln(%good / %bad), > 0 safer than the
   average, smoothed towards the average with `prior_strength` pseudo-observations so tiny
   bins get modest values instead of +-infinity.
4. **Selection**: features with information value below `min_iv` are dropped; a logistic
   regression (sklearn, mild L2) is fitted on the WoE columns; features whose coefficient
   has the wrong sign (collinearity flipping a univariate relation, always > 0 with classic
   WoE) are dropped and the regression refitted until all signs agree.
5. **Points**: PDO 20, 600 points at good:bad odds of 50:1, the intercept spread evenly
   over the features; more points = safer.

Contributions (for reason codes) are coefficient x WoE per feature, in log-odds of default
relative to an average buyer (WoE 0): > 0 raises the PD.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

#: Fixed scorecard settings (one place; override through `fit_model(..., params=...)`).
DEFAULT_SCORECARD_PARAMS: dict[str, Any] = {
    "n_bins": 10,
    "min_bin_share": 0.02,
    "prior_strength": 20.0,
    "min_iv": 0.02,
    "C": 1.0,
    "quantile_sample": 1_000_000,
    "pdo": 20.0,
    "base_points": 600.0,
    "base_odds": 50.0,
    "seed": 42,
}

MISSING = "missing"


@dataclass
class FeatureBins:
    """Bins of one feature and their statistics on the training slice.

    Numeric: bin k (0-based) is (edges[k-1], edges[k]] with edges[-1] = +inf implied; the
    last bin is the missing bin. Categorical: one bin per category, then the missing bin
    (also used for categories never seen in training).
    """

    name: str
    categorical: bool
    edges: np.ndarray = field(default_factory=lambda: np.empty(0))
    categories: list[str] = field(default_factory=list)
    count: np.ndarray = field(default_factory=lambda: np.empty(0))
    defaults: np.ndarray = field(default_factory=lambda: np.empty(0))
    woe: np.ndarray = field(default_factory=lambda: np.empty(0))
    iv: float = 0.0

    @property
    def n_bins(self) -> int:
        """Number of bins including the missing bin."""
        return (len(self.categories) if self.categorical else len(self.edges) + 1) + 1

    def bin_index(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """Bin of every value (the missing bin for missing or unseen values)."""
        missing_bin = self.n_bins - 1
        if self.categorical:
            codes = pd.Categorical(
                pd.Series(values).astype("object"), categories=self.categories
            ).codes.astype(np.int64)
            return np.where(codes < 0, missing_bin, codes)
        x = np.asarray(values, dtype="float64")
        index = np.searchsorted(self.edges, x, side="left")
        return np.where(np.isnan(x), missing_bin, index)

    def labels(self) -> list[str]:
        if self.categorical:
            return [*self.categories, MISSING]
        bounds = [-np.inf, *self.edges, np.inf]
        return [f"({_num(lo)}, {_num(hi)}]" for lo, hi in _pairs(bounds)] + [MISSING]


def _pairs(values: list[float]) -> list[tuple[float, float]]:
    return list(itertools.pairwise(values))


def _num(value: float) -> str:
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def _quantile_edges(x: np.ndarray, n_bins: int) -> np.ndarray:
    probs = np.linspace(0, 1, n_bins + 1)[1:-1]
    return np.unique(np.quantile(x, probs, method="linear"))


def _merge_small(edges: np.ndarray, count: np.ndarray, min_count: float) -> np.ndarray:
    """Remove edges until every (non-missing) bin holds at least `min_count` rows."""
    edges, count = list(edges), list(count)
    while len(count) > 1 and min(count) < min_count:
        k = int(np.argmin(count))
        # merge with the smaller neighbour (the only one at either end)
        if k == 0:
            j = 1
        elif k == len(count) - 1:
            j = k - 1
        else:
            j = k - 1 if count[k - 1] <= count[k + 1] else k + 1
        lo = min(j, k)
        count[lo] += count[lo + 1]
        del count[lo + 1]
        del edges[lo]
    return np.asarray(edges, dtype="float64")


def _monotone_pool(
    edges: np.ndarray, count: np.ndarray, defaults: np.ndarray, direction: int
) -> np.ndarray:
    """Pool adjacent bins until default rates follow `direction` (+1 rising, -1 falling)."""
    blocks: list[list[float]] = []  # [defaults, count, last bin index]
    for k in range(len(count)):
        blocks.append([float(defaults[k]), float(count[k]), k])
        while len(blocks) > 1:
            (d1, n1, _), (d2, n2, last) = blocks[-2], blocks[-1]
            r1, r2 = d1 / max(n1, 1e-12), d2 / max(n2, 1e-12)
            if (r2 - r1) * direction >= 0:
                break
            blocks[-2:] = [[d1 + d2, n1 + n2, last]]
    keep = [int(b[2]) for b in blocks[:-1]]  # edge k separates bin k from bin k + 1
    return edges[keep] if keep else np.empty(0)


def _woe(count: np.ndarray, defaults: np.ndarray, prior_strength: float) -> np.ndarray:
    """Classic WoE = ln(%good / %bad) per bin, shrunk towards 0 for thin bins."""
    total_bad, total = defaults.sum(), count.sum()
    rate = total_bad / total
    good = count - defaults
    smoothed_log_odds = np.log(
        (defaults + prior_strength * rate) / (good + prior_strength * (1 - rate))
    )
    woe = np.log(rate / (1 - rate)) - smoothed_log_odds
    return np.where(count > 0, woe, 0.0)


def fit_bins(
    name: str,
    values: pd.Series,
    y: np.ndarray,
    direction: int,
    categorical: bool,
    params: Mapping[str, Any],
    rng: np.random.Generator,
) -> FeatureBins:
    """Bin one feature on the training slice and compute each bin's WoE."""
    y = np.asarray(y, dtype="float64")
    n = len(y)
    if categorical:
        cats = pd.Series(values).astype("object")
        seen = sorted(str(c) for c in pd.unique(cats.dropna()))
        bins = FeatureBins(name, True, categories=seen)
    else:
        x = np.asarray(values, dtype="float64")
        present = x[~np.isnan(x)]
        edges = np.empty(0)
        if len(present):
            sample_size = int(params["quantile_sample"])
            if len(present) > sample_size:
                present = rng.choice(present, sample_size, replace=False)
            edges = _quantile_edges(present, int(params["n_bins"]))
        bins = FeatureBins(name, False, edges=edges)
        index = bins.bin_index(x)
        count = np.bincount(index, minlength=bins.n_bins)[:-1]
        edges = _merge_small(edges, count, float(params["min_bin_share"]) * n)
        if direction != 0 and len(edges):
            bins = FeatureBins(name, False, edges=edges)
            index = bins.bin_index(x)
            count = np.bincount(index, minlength=bins.n_bins)[:-1]
            bad = np.bincount(index, weights=y, minlength=bins.n_bins)[:-1]
            edges = _monotone_pool(edges, count, bad, direction)
        bins = FeatureBins(name, False, edges=edges)
    index = bins.bin_index(values)
    bins.count = np.bincount(index, minlength=bins.n_bins).astype(np.int64)
    bins.defaults = np.bincount(index, weights=y, minlength=bins.n_bins).round().astype(np.int64)
    bins.woe = _woe(bins.count, bins.defaults, float(params["prior_strength"]))
    good, bad = bins.count - bins.defaults, bins.defaults
    bins.iv = float(np.sum((good / good.sum() - bad / bad.sum()) * bins.woe))
    return bins


class Scorecard:
    """Binned WoE logistic regression with a points table; see the module docstring."""

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.params: dict[str, Any] = {**DEFAULT_SCORECARD_PARAMS, **(params or {})}
        self.bins: dict[str, FeatureBins] = {}
        self.selected: list[str] = []
        self.coef: dict[str, float] = {}
        self.intercept: float = 0.0
        self.dropped: dict[str, str] = {}

    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        directions: Mapping[str, int],
        categorical: set[str],
    ) -> Scorecard:
        """Fit bins, WoE, the selection and the regression on the training slice."""
        y = np.asarray(y, dtype="float64")
        rng = np.random.default_rng(int(self.params["seed"]))
        self.bins = {
            name: fit_bins(
                name, X[name], y, directions.get(name, 0), name in categorical, self.params, rng
            )
            for name in X.columns
        }
        candidates = [n for n, b in self.bins.items() if b.iv >= float(self.params["min_iv"])]
        self.dropped = {
            n: f"information value {b.iv:.3f} < {self.params['min_iv']}"
            for n, b in self.bins.items()
            if n not in candidates
        }
        if not candidates:
            raise ValueError("no feature has enough information value for a scorecard")
        woe = self._woe_matrix(X, candidates)
        column = {n: k for k, n in enumerate(candidates)}
        while True:
            model = LogisticRegression(C=float(self.params["C"]), solver="lbfgs", max_iter=500)
            model.fit(woe[:, [column[n] for n in candidates]], y.astype(int))
            coef = model.coef_[0]
            wrong = [n for n, c in zip(candidates, coef, strict=True) if c >= 0]
            if not wrong:
                break
            for n in wrong:
                self.dropped[n] = "coefficient sign contradicts its WoE (collinearity)"
            candidates = [n for n in candidates if n not in wrong]
            if not candidates:
                raise ValueError("every scorecard feature was dropped for a wrong sign")
        self.selected = candidates
        self.coef = {n: float(c) for n, c in zip(candidates, coef, strict=True)}
        self.intercept = float(model.intercept_[0])
        return self

    def _woe_matrix(self, X: pd.DataFrame, names: list[str]) -> np.ndarray:
        out = np.empty((len(X), len(names)), dtype="float64")
        for k, name in enumerate(names):
            bins = self.bins[name]
            out[:, k] = bins.woe[bins.bin_index(X[name])]
        return out

    def contributions(self, X: pd.DataFrame, names: list[str]) -> pd.DataFrame:
        """coefficient x WoE per feature (log-odds vs an average buyer); 0 if not selected."""
        out = np.zeros((len(X), len(names)), dtype="float64")
        position = {n: k for k, n in enumerate(names)}
        woe = self._woe_matrix(X, self.selected)
        for k, name in enumerate(self.selected):
            out[:, position[name]] = self.coef[name] * woe[:, k]
        return pd.DataFrame(out, index=X.index, columns=names)

    def log_odds(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated log-odds of default (intercept + sum of contributions)."""
        woe = self._woe_matrix(X, self.selected)
        return self.intercept + woe @ np.array([self.coef[n] for n in self.selected])

    # --- points ------------------------------------------------------------------------
    @property
    def _factor(self) -> float:
        return float(self.params["pdo"]) / np.log(2.0)

    @property
    def _offset(self) -> float:
        return float(self.params["base_points"]) - self._factor * np.log(
            float(self.params["base_odds"])
        )

    def score(self, X: pd.DataFrame) -> np.ndarray:
        """Total points (more = safer): base at the configured odds, PDO per doubling."""
        return self._offset - self._factor * self.log_odds(X)

    def scorecard_table(self) -> pd.DataFrame:
        """One row per (feature, bin) of the selected features, as an analyst reads it."""
        k = len(self.selected)
        rows = []
        for name in self.selected:
            bins, coef = self.bins[name], self.coef[name]
            for label, n, d, w in zip(
                bins.labels(), bins.count, bins.defaults, bins.woe, strict=True
            ):
                points = -self._factor * (coef * w + self.intercept / k) + self._offset / k
                rows.append(
                    {
                        "feature": name,
                        "bin": label,
                        "count": int(n),
                        "defaults": int(d),
                        "default_rate": d / n if n else np.nan,
                        "woe": float(w),
                        "iv": bins.iv,
                        "coefficient": coef,
                        "points": round(points),
                    }
                )
        return pd.DataFrame(rows)

    def feature_summary(self) -> pd.DataFrame:
        """Every candidate feature: information value, bins, kept or why dropped."""
        return pd.DataFrame(
            [
                {
                    "feature": n,
                    "iv": b.iv,
                    "bins": b.n_bins,
                    "coefficient": self.coef.get(n, np.nan),
                    "status": "selected" if n in self.coef else f"dropped: {self.dropped[n]}",
                }
                for n, b in self.bins.items()
            ]
        ).sort_values("iv", ascending=False, ignore_index=True)
