"""Model validation: discrimination, calibration by grade, concentration, segments, stability.

What a validator checks before a PD model is used, in one report:
- **discrimination**: AUC, Gini (= 2 AUC - 1), Kolmogorov-Smirnov;
- **accuracy of the PD**: Brier score, log loss, expected calibration error (ECE: the
  count-weighted mean |mean PD - default rate| over 10 equal-count PD bins), and the ratio of
  observed to predicted defaults;
- **calibration per grade** with the **Jeffreys test** (as in the ECB's instructions for
  IRB validation): with d defaults among n buyers, the posterior of the default rate under a
  Jeffreys prior is Beta(d + 1/2, n - d + 1/2); the p-value is its CDF at the grade's mean
  PD, i.e. how plausible a true rate no higher than predicted is. A small p-value says the
  model **underestimates** risk in that grade (one-sided: that is the error that loses
  money). Traffic light: red when p < 0.01, yellow when p < 0.05, green otherwise
  (`JEFFREYS_RED`, `JEFFREYS_YELLOW`). Overestimation is flagged separately with the other
  tail (1 - CDF < 0.05, "conservative"), informative only: it never turns a light red.
  The overall traffic light is the worst grade's.
- **concentration**: Herfindahl-Hirschman index of the grade shares and the largest share
  (a scale where most buyers sit in one grade does not differentiate);
- **segments** (e.g. political_risk_class, size_class): the same calibration test and AUC
  within each segment value;
- **stability**: population stability index of the PD between a reference sample (the
  training slice) and the validated sample, on 10 bins of the reference's quantiles;
  PSI < 0.10 stable, 0.10-0.25 watch, >= 0.25 shifted (`PSI_WATCH`, `PSI_SHIFT`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import beta
from sklearn.metrics import roc_auc_score, roc_curve

from models.master_scale import MASTER_SCALE, MasterScale
from models.reports.format import markdown_table

#: Jeffreys p-value thresholds (one-sided, underestimation of risk).
JEFFREYS_YELLOW = 0.05
JEFFREYS_RED = 0.01
#: Other tail: a p-value below this flags a grade as conservative (PD too high).
JEFFREYS_CONSERVATIVE = 0.05
#: Population stability index thresholds (score drift).
PSI_WATCH = 0.10
PSI_SHIFT = 0.25

GREEN, YELLOW, RED, NOT_APPLICABLE = "green", "yellow", "red", "n/a"
_SEVERITY = {NOT_APPLICABLE: -1, GREEN: 0, YELLOW: 1, RED: 2}
_EPS = 1e-12


def oracle_auc(y: np.ndarray, true_pd: np.ndarray) -> float:
    """AUC of the generator's true PD on the same rows: the best any model could reach.

    The truth file (`_truth/pd_monthly.parquet`) has no row for a buyer that had already
    defaulted (unobserved yet) at the month end; give those rows true_pd = 1.
    """
    true_pd = np.asarray(true_pd, dtype="float64")
    if np.isnan(true_pd).any():
        raise ValueError("true_pd has missing values (see the docstring for absent buyers)")
    return float(roc_auc_score(np.asarray(y, dtype=int), true_pd))


def ks_statistic(y: np.ndarray, score: np.ndarray) -> float:
    """Kolmogorov-Smirnov: the largest gap between the score CDFs of defaults and others."""
    fpr, tpr, _ = roc_curve(np.asarray(y, dtype=int), score)
    return float(np.max(tpr - fpr))


def expected_calibration_error(y: np.ndarray, pd_: np.ndarray, bins: int = 10) -> float:
    """Count-weighted mean |mean PD - default rate| over `bins` equal-count bins of the PD."""
    y = np.asarray(y, dtype="float64")
    pd_ = np.asarray(pd_, dtype="float64")
    order = np.argsort(pd_, kind="stable")
    error = 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk):
            error += len(chunk) * abs(pd_[chunk].mean() - y[chunk].mean())
    return error / len(y)


def jeffreys_p_value(defaults: np.ndarray, count: np.ndarray, mean_pd: np.ndarray) -> np.ndarray:
    """P(true default rate <= mean PD | d of n defaulted), Jeffreys prior; small = too low PD."""
    d = np.asarray(defaults, dtype="float64")
    n = np.asarray(count, dtype="float64")
    return beta.cdf(np.asarray(mean_pd, dtype="float64"), d + 0.5, n - d + 0.5)


def traffic_light(p_value: float) -> str:
    """Green / yellow / red from a one-sided Jeffreys p-value (underestimation)."""
    if not np.isfinite(p_value):
        return NOT_APPLICABLE
    if p_value < JEFFREYS_RED:
        return RED
    if p_value < JEFFREYS_YELLOW:
        return YELLOW
    return GREEN


def worst_light(lights: Any) -> str:
    lights = [str(x) for x in lights]
    return max(lights, key=_SEVERITY.__getitem__) if lights else NOT_APPLICABLE


def psi_from_shares(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI = sum (a - e) ln(a / e) over bins, with empty bins nudged to a tiny share."""
    e = np.clip(np.asarray(expected, dtype="float64"), 1e-6, None)
    a = np.clip(np.asarray(actual, dtype="float64"), 1e-6, None)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of `actual` against `expected` on its quantile bins."""
    expected = np.asarray(expected, dtype="float64")
    actual = np.asarray(actual, dtype="float64")
    expected, actual = expected[~np.isnan(expected)], actual[~np.isnan(actual)]
    if not len(expected) or not len(actual):
        raise ValueError("psi needs non-empty samples")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    e = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1)
    a = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1)
    return psi_from_shares(e / e.sum(), a / a.sum())


def psi_light(value: float) -> str:
    if not np.isfinite(value):
        return NOT_APPLICABLE
    return GREEN if value < PSI_WATCH else (YELLOW if value < PSI_SHIFT else RED)


def _safe_auc(y: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def calibration_table(
    y: np.ndarray, pd_: np.ndarray, groups: np.ndarray, order: list | None = None
) -> pd.DataFrame:
    """Count, defaults, mean PD, default rate, Jeffreys p-values and light per group."""
    frame = pd.DataFrame({"group": groups, "y": y, "pd": pd_})
    stats = frame.groupby("group", observed=True, sort=True).agg(
        count=("y", "size"), defaults=("y", "sum"), mean_pd=("pd", "mean")
    )
    if order is not None:
        stats = stats.reindex(order)
        stats["count"] = stats["count"].fillna(0)
        stats["defaults"] = stats["defaults"].fillna(0)
    stats["count"] = stats["count"].astype("int64")
    stats["defaults"] = stats["defaults"].astype("int64")
    n, d = stats["count"].to_numpy(), stats["defaults"].to_numpy()
    mean_pd = stats["mean_pd"].to_numpy(dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        stats["share"] = n / max(n.sum(), 1)
        stats["default_rate"] = np.where(n > 0, d / np.maximum(n, 1), np.nan)
        p_under = np.where(n > 0, jeffreys_p_value(d, n, mean_pd), np.nan)
    stats["p_underestimation"] = p_under
    stats["p_overestimation"] = 1.0 - p_under
    stats["traffic_light"] = [traffic_light(p) for p in p_under]
    stats["conservative"] = stats["p_overestimation"] < JEFFREYS_CONSERVATIVE
    columns = [
        "count",
        "share",
        "defaults",
        "mean_pd",
        "default_rate",
        "p_underestimation",
        "p_overestimation",
        "traffic_light",
        "conservative",
    ]
    return stats[columns]


@dataclass
class ValidationReport:
    """Validation results; `to_markdown()` is the human report, `to_dict()` the record."""

    metrics: dict[str, float]
    by_grade: pd.DataFrame
    by_segment: dict[str, pd.DataFrame] = field(default_factory=dict)
    overall_traffic_light: str = NOT_APPLICABLE
    psi_traffic_light: str = NOT_APPLICABLE
    title: str = "PD model validation"
    scale: MasterScale = MASTER_SCALE

    def to_dict(self) -> dict[str, Any]:
        def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
            return [
                {k: _plain(v) for k, v in row.items()}
                for row in frame.reset_index().to_dict(orient="records")
            ]

        return {
            "title": self.title,
            "metrics": {k: _plain(v) for k, v in self.metrics.items()},
            "overall_traffic_light": self.overall_traffic_light,
            "psi_traffic_light": self.psi_traffic_light,
            "by_grade": records(self.by_grade),
            "by_segment": {k: records(v) for k, v in self.by_segment.items()},
            "thresholds": {
                "jeffreys_yellow": JEFFREYS_YELLOW,
                "jeffreys_red": JEFFREYS_RED,
                "jeffreys_conservative": JEFFREYS_CONSERVATIVE,
                "psi_watch": PSI_WATCH,
                "psi_shift": PSI_SHIFT,
            },
            "master_scale_version": self.scale.version,
        }

    def to_markdown(self) -> str:
        m = self.metrics
        lines = [f"# {self.title}", ""]
        lines += [
            f"**Overall calibration traffic light: {self.overall_traffic_light.upper()}**"
            f" (worst grade; Jeffreys test, red p < {JEFFREYS_RED}, yellow p < "
            f"{JEFFREYS_YELLOW}, one-sided for underestimated risk)",
            "",
            "## Sample",
            "",
            markdown_table(
                ["rows", "defaults", "default rate", "mean PD", "observed / predicted"],
                [
                    [
                        f"{m['n']:,.0f}",
                        f"{m['defaults']:,.0f}",
                        _pct(m["default_rate"]),
                        _pct(m["mean_pd"]),
                        f"{m['observed_to_predicted']:.2f}",
                    ]
                ],
            ),
            "",
            "## Discrimination and accuracy",
            "",
        ]
        rows = [
            ["AUC", _f(m["auc"]), "area under the ROC curve (0.5 = random)"],
            ["Gini", _f(m["gini"]), "2 AUC - 1 (accuracy ratio)"],
            ["KS", _f(m["ks"]), "largest gap between the score distributions"],
            ["Brier score", _f(m["brier"], 5), "mean squared error of the PD"],
            ["log loss", _f(m["log_loss"], 5), "mean negative log-likelihood"],
            ["ECE", _f(m["ece"], 5), "expected calibration error, 10 equal-count bins"],
        ]
        if "oracle_auc" in m:
            rows.append(["oracle AUC", _f(m["oracle_auc"]), "AUC of the true PD (generated data)"])
            rows.append(["gap to oracle", _f(m["oracle_auc"] - m["auc"]), "oracle AUC - AUC"])
        if "reference_auc" in m:
            rows.append(["reference AUC", _f(m["reference_auc"]), "AUC of the reference PD"])
        if "psi" in m:
            rows.append(
                [
                    "PSI",
                    _f(m["psi"]),
                    f"score stability vs reference: {self.psi_traffic_light} "
                    f"(< {PSI_WATCH} stable, >= {PSI_SHIFT} shifted)",
                ]
            )
        lines += [markdown_table(["metric", "value", "meaning"], rows), ""]
        lines += ["## Calibration by grade", "", _grade_table(self.by_grade, self.scale), ""]
        lines += [
            f"Grade concentration: HHI {_f(m['grade_hhi'])} (1 / HHI = "
            f"{1 / max(m['grade_hhi'], _EPS):.1f} equally filled grades), largest grade "
            f"share {_pct(m['largest_grade_share'])}.",
            "",
        ]
        for name, frame in self.by_segment.items():
            lines += [f"## Segment: {name}", "", _segment_table(frame), ""]
        lines += ["## Master scale", "", self.scale.to_markdown(), ""]
        return "\n".join(lines)


def validate(
    y: np.ndarray | pd.Series,
    pd_: np.ndarray | pd.Series,
    grade: np.ndarray | pd.Series | None = None,
    segments: Mapping[str, np.ndarray | pd.Series] | None = None,
    reference_pd: np.ndarray | pd.Series | None = None,
    *,
    true_pd: np.ndarray | pd.Series | None = None,
    scale: MasterScale = MASTER_SCALE,
    title: str = "PD model validation",
) -> ValidationReport:
    """Validate PDs against observed 0/1 outcomes (see the module docstring).

    `grade` defaults to the master-scale grade of `pd_`; `reference_pd` (e.g. the training
    slice's PDs) adds the PSI; `true_pd` (generated data) adds the oracle AUC.
    """
    y = np.asarray(y, dtype="float64")
    p = np.asarray(pd_, dtype="float64")
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError("y and pd must be 1-d arrays of the same length")
    if np.isnan(y).any() or np.isnan(p).any():
        raise ValueError("y and pd must not have missing values")
    g = scale.grade_of(p) if grade is None else np.asarray(grade, dtype="int64")
    clipped = np.clip(p, _EPS, 1 - _EPS)
    n, d = len(y), float(y.sum())
    auc = _safe_auc(y, p)
    metrics: dict[str, float] = {
        "n": float(n),
        "defaults": d,
        "default_rate": d / n,
        "mean_pd": float(p.mean()),
        "observed_to_predicted": d / max(float(p.sum()), _EPS),
        "auc": auc,
        "gini": 2 * auc - 1,
        "ks": ks_statistic(y, p) if 0 < d < n else float("nan"),
        "brier": float(np.mean((p - y) ** 2)),
        "log_loss": float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))),
        "ece": expected_calibration_error(y, p),
    }
    by_grade = calibration_table(y, p, g, order=scale.grades)
    by_grade.index.name = "grade"
    shares = by_grade["share"].to_numpy()
    metrics["grade_hhi"] = float(np.sum(shares**2))
    metrics["largest_grade_share"] = float(shares.max())
    metrics["portfolio_p_underestimation"] = float(jeffreys_p_value(d, n, p.mean()))
    overall = worst_light(by_grade["traffic_light"])
    metrics["grades_red"] = float((by_grade["traffic_light"] == RED).sum())
    metrics["grades_yellow"] = float((by_grade["traffic_light"] == YELLOW).sum())

    by_segment: dict[str, pd.DataFrame] = {}
    for name, values in (segments or {}).items():
        values = _segment_labels(values)
        table = calibration_table(y, p, values)
        table.index.name = name
        table.insert(
            3,
            "auc",
            [_safe_auc(y[values == v], p[values == v]) for v in table.index],
        )
        by_segment[name] = table

    psi_value = float("nan")
    if reference_pd is not None:
        psi_value = psi(np.asarray(reference_pd, dtype="float64"), p)
        metrics["psi"] = psi_value
    if true_pd is not None:
        metrics["oracle_auc"] = oracle_auc(y, np.asarray(true_pd, dtype="float64"))
    return ValidationReport(
        metrics=metrics,
        by_grade=by_grade,
        by_segment=by_segment,
        overall_traffic_light=overall,
        psi_traffic_light=psi_light(psi_value),
        title=title,
        scale=scale,
    )


# --- formatting --------------------------------------------------------------------------
def _segment_labels(values: np.ndarray | pd.Series) -> np.ndarray:
    """Segment values as text: whole numbers without '.0', missing as 'missing'."""
    series = pd.Series(np.asarray(values, dtype=object))
    missing = series.isna().to_numpy()
    numeric = pd.to_numeric(series, errors="coerce")
    whole = numeric.notna().to_numpy() & np.isclose(numeric.fillna(0.5) % 1, 0)
    text = series.astype(str).to_numpy(dtype=object)
    text[whole] = numeric[whole].astype("int64").astype(str).to_numpy()
    text[missing] = "missing"
    return text.astype(str)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _f(value: float, digits: int = 3) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.{digits}f}"


def _pct(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.2%}"


def _p(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.3f}"


def _grade_table(frame: pd.DataFrame, scale: MasterScale) -> str:
    rows = []
    for grade, r in frame.iterrows():
        rows.append(
            [
                scale.label(int(grade)),
                f"{r['count']:,}",
                _pct(r["share"]),
                f"{r['defaults']:,}",
                _pct(r["mean_pd"]),
                _pct(r["default_rate"]),
                _p(r["p_underestimation"]),
                r["traffic_light"],
                "yes" if r["conservative"] else "",
            ]
        )
    return markdown_table(
        [
            "grade",
            "count",
            "share",
            "defaults",
            "mean PD",
            "default rate",
            "Jeffreys p (under)",
            "light",
            "conservative",
        ],
        rows,
    )


def _segment_table(frame: pd.DataFrame) -> str:
    rows = [
        [
            str(value),
            f"{r['count']:,}",
            f"{r['defaults']:,}",
            _f(r["auc"]),
            _pct(r["mean_pd"]),
            _pct(r["default_rate"]),
            _p(r["p_underestimation"]),
            r["traffic_light"],
        ]
        for value, r in frame.iterrows()
    ]
    return markdown_table(
        [
            frame.index.name or "segment",
            "count",
            "defaults",
            "AUC",
            "mean PD",
            "default rate",
            "Jeffreys p (under)",
            "light",
        ],
        rows,
    )
