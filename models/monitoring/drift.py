"""Portfolio monitoring: drift against the training reference, grade migration, backtests.

Pure functions (frames in, frames / dicts out) used by the daily rescoring:

- `build_reference` summarises the training sample at training time: for the score and
  every model feature, the binning and the share of rows per bin (plus the missing share).
  It is plain JSON (lists, floats, strings), stored with the model, so drift can be
  computed later without the training data.
- `psi_against_reference` compares today's population with that reference: a population
  stability index (PSI, `models.pd.validation.psi_from_shares`) per feature and for the score,
  with the validation's lights (`PSI_WATCH`, `PSI_SHIFT`). Missing values are a bin of
  their own, so a feature that stops being filled shows up as drift; categories never seen
  in training fall into an "other" bin.
- `grade_migration` / `migration_summary`: who moved grade since the previous run.
- `cohort_backtest`: AUC and calibration by grade (Jeffreys test) of a matured cohort.

Numeric binning follows `models.pd.validation.psi`: interior quantile edges of the reference
(unique), a value equal to an edge goes to the bin above it (`side="right"`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype
from sklearn.metrics import roc_auc_score

from features.catalogue import CATALOGUE
from models.master_scale import MASTER_SCALE
from models.pd.validation import (
    NOT_APPLICABLE,
    calibration_table,
    psi_from_shares,
    psi_light,
    worst_light,
)

SCORE = "score"
OTHER = "other"  # the bin of categories never seen in the reference
NUMERIC, CATEGORICAL = "numeric", "categorical"
PSI_COLUMNS = ["name", "psi", "light", "missing_share_reference", "missing_share_now"]
MIGRATION_COLUMNS = ["previous_grade", "grade", "buyers"]
BACKTEST_COLUMNS = [
    "grade",
    "count",
    "share",
    "defaults",
    "mean_pd",
    "default_rate",
    "p_value",
    "light",
    "conservative",
]


# --- the training reference ----------------------------------------------------------------
def build_reference(
    frame: pd.DataFrame,
    features: list[str],
    pd_: np.ndarray,
    bins: int = 10,
    months: np.ndarray | pd.Series | None = None,
) -> dict[str, Any]:
    """The reference distribution of the score and each feature (JSON-serialisable).

    Layout: {"rows": n, "bins": bins, "score": spec, "features": {name: spec, ...}} in the
    order of `features`, where a numeric spec is {"kind": "numeric", "edges": [...],
    "shares": [...], "missing_share": m} (len(shares) = len(edges) + 1) and a categorical
    one (features flagged `categorical` in the catalogue, or non-numeric columns) is
    {"kind": "categorical", "categories": [...], "shares": [...], "missing_share": m}.
    Shares are of all rows: shares and missing_share add up to 1.

    `months` (the calendar month 1-12 of each row's as-of date) adds "by_month": {"11":
    {"rows": n, "score": spec, "features": {...}}, ...}, the same bins with the shares of
    that month's rows. Statement ages and open amounts follow the filing and invoicing
    seasons, so a day in November is compared with the Novembers the model was fitted on
    (`psi_against_reference(..., month=11)`), not with the average of the year.
    """
    pd_ = np.asarray(pd_, dtype="float64")
    if len(frame) == 0:
        raise ValueError("build_reference needs a non-empty sample")
    if pd_.shape != (len(frame),):
        raise ValueError("pd_ must have one value per row of the frame")
    if bins < 2:
        raise ValueError("bins must be at least 2")
    absent = [name for name in features if name not in frame.columns]
    if absent:
        raise ValueError(f"features missing from the frame: {absent}")
    reference = {
        "rows": len(frame),
        "bins": int(bins),
        SCORE: _numeric_reference(pd_, bins),
        "features": {
            name: (
                _categorical_reference(frame[name])
                if _is_categorical(name, frame[name])
                else _numeric_reference(_as_float(frame[name]), bins, _resolution(name))
            )
            for name in features
        },
    }
    if months is not None:
        months = np.asarray(months, dtype="int64")
        if months.shape != (len(frame),):
            raise ValueError("months must have one value per row of the frame")
        reference["by_month"] = {
            str(m): {
                "rows": int((months == m).sum()),
                SCORE: _spec_like(reference[SCORE], pd.Series(pd_[months == m])),
                "features": {
                    name: _spec_like(spec, frame.loc[months == m, name])
                    for name, spec in reference["features"].items()
                },
            }
            for m in np.unique(months).tolist()
        }
    return reference


def _spec_like(spec: dict[str, Any], values: pd.Series) -> dict[str, Any]:
    """`spec`'s bins (edges or categories) with the shares of `values`."""
    if spec["kind"] == CATEGORICAL:
        shares = _categorical_shares(values, spec["categories"])
        kept = {"categories": spec["categories"], "shares": shares[: len(spec["categories"])]}
    else:
        values = _binned_values(values, spec.get("resolution"))
        shares = _numeric_shares(values, np.asarray(spec["edges"], dtype="float64"))
        kept = {"edges": spec["edges"], "shares": shares[:-1]}
    out = {
        "kind": spec["kind"],
        **{k: [float(v) for v in vals] for k, vals in kept.items() if k != "categories"},
        **({"categories": spec["categories"]} if spec["kind"] == CATEGORICAL else {}),
        "missing_share": float(shares[-1]),
    }
    return out if "resolution" not in spec else {**out, "resolution": spec["resolution"]}


def shifted_reference(reference: dict[str, Any], delta: float) -> dict[str, Any]:
    """The reference of a model whose log-odds moved by `delta` (intercept recalibration):
    the same rows fall in the same score bins, whose PD edges move with the scores."""
    from models.pd.calibration import logit, sigmoid

    def moved(part: dict[str, Any]) -> dict[str, Any]:
        score = dict(part[SCORE])
        edges = np.asarray(score["edges"], dtype="float64")
        score["edges"] = sigmoid(logit(edges) + float(delta)).tolist()
        return {**part, SCORE: score}

    out = moved(reference)
    if "by_month" in reference:
        out["by_month"] = {m: moved(part) for m, part in reference["by_month"].items()}
    return out


def psi_against_reference(
    reference: dict[str, Any], frame: pd.DataFrame, pd_: np.ndarray, month: int | None = None
) -> pd.DataFrame:
    """PSI of today's score and features against the reference, one row each.

    With `month` (1-12) and a reference holding that calendar month ("by_month"), against
    the fitted rows of that month (same bins); otherwise against all of them.

    Columns `PSI_COLUMNS`: name ("score" first, then the reference's features in order),
    psi, light (`validation.psi_light`: green / yellow / red, "n/a" without a value),
    missing_share_reference, missing_share_now. A feature absent from `frame` (or an empty
    frame) has psi NaN and light "n/a".
    """
    pd_ = np.asarray(pd_, dtype="float64")
    if pd_.shape != (len(frame),):
        raise ValueError("pd_ must have one value per row of the frame")
    seasonal = reference.get("by_month", {}).get(str(month)) if month is not None else None
    if seasonal is not None and seasonal["rows"] > 0:
        reference = seasonal
    rows = [_psi_row(SCORE, reference[SCORE], pd.Series(pd_))]
    for name, spec in reference["features"].items():
        if name not in frame.columns:
            rows.append(_psi_row(name, spec, None))
        else:
            rows.append(_psi_row(name, spec, frame[name]))
    return pd.DataFrame(rows, columns=PSI_COLUMNS)


def _psi_row(name: str, spec: dict[str, Any], values: pd.Series | None) -> dict[str, Any]:
    expected = np.asarray([*spec["shares"], spec["missing_share"]], dtype="float64")
    if spec["kind"] == CATEGORICAL:
        expected = np.insert(expected, len(spec["categories"]), 0.0)  # the "other" bin
    if values is None or len(values) == 0:
        now, missing_now = np.nan, np.nan
    else:
        actual = (
            _categorical_shares(values, spec["categories"])
            if spec["kind"] == CATEGORICAL
            else _numeric_shares(
                _binned_values(values, spec.get("resolution")),
                np.asarray(spec["edges"], dtype="float64"),
            )
        )
        # A bin empty on both sides says nothing; dropping it keeps the PSI exact.
        used = (expected > 0) | (actual > 0)
        now = psi_from_shares(expected[used], actual[used])
        missing_now = float(actual[-1])
    return {
        "name": name,
        "psi": now,
        "light": psi_light(now) if np.isfinite(now) else NOT_APPLICABLE,
        "missing_share_reference": float(spec["missing_share"]),
        "missing_share_now": missing_now,
    }


def _is_categorical(name: str, values: pd.Series) -> bool:
    feature = CATALOGUE.get(name)
    if feature is not None and feature.categorical:
        return True
    return not (is_numeric_dtype(values) or is_bool_dtype(values))


def _as_float(values: pd.Series | np.ndarray) -> np.ndarray:
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(
        dtype="float64", na_value=np.nan
    )


#: Units whose values are binned in whole units: a statement 10.97 months old (a leap year
#: later) and one 11.01 months old are the same to a credit analyst, but a quantile edge
#: between them would make a book with no change look like drift.
WHOLE_UNITS = frozenset({"months", "days", "count"})


def _resolution(name: str) -> float | None:
    feature = CATALOGUE.get(name)
    return 1.0 if feature is not None and feature.unit in WHOLE_UNITS else None


def _binned_values(values: pd.Series | np.ndarray, resolution: float | None) -> np.ndarray:
    numbers = _as_float(values)
    return numbers if resolution is None else np.round(numbers / resolution) * resolution


def _numeric_reference(
    values: np.ndarray, bins: int, resolution: float | None = None
) -> dict[str, Any]:
    values = _binned_values(values, resolution)
    present = values[~np.isnan(values)]
    finite = present[np.isfinite(present)]
    edges = (
        np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))
        if len(finite)
        else np.array([], dtype="float64")
    )
    shares = _numeric_shares(values, edges)
    spec = {
        "kind": NUMERIC,
        "edges": [float(e) for e in edges],
        "shares": [float(s) for s in shares[:-1]],
        "missing_share": float(shares[-1]),
    }
    return spec if resolution is None else {**spec, "resolution": resolution}


def _numeric_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of all rows per bin of `edges`, then the missing share (last)."""
    missing = np.isnan(values)
    counts = np.bincount(
        np.searchsorted(edges, values[~missing], side="right"), minlength=len(edges) + 1
    )
    return np.append(counts, missing.sum()) / len(values)


def _labels(values: pd.Series) -> pd.Series:
    """Category labels as text; whole numbers without ".0" (1 and 1.0 are one category)."""
    series = pd.Series(np.asarray(values, dtype=object))
    missing = series.isna()
    numeric = pd.to_numeric(series, errors="coerce")
    whole = numeric.notna() & np.isclose(numeric.fillna(0.5) % 1, 0)
    text = series.astype(str).astype(object)
    text[whole] = numeric[whole].astype("int64").astype(str).to_numpy()
    text[missing] = None
    return text


def _categorical_reference(values: pd.Series) -> dict[str, Any]:
    labels = _labels(values)
    counts = labels.value_counts(dropna=True)
    categories = sorted(str(c) for c in counts.index)
    n = len(labels)
    return {
        "kind": CATEGORICAL,
        "categories": categories,
        "shares": [float(counts[c]) / n for c in categories],
        "missing_share": float(labels.isna().sum()) / n,
    }


def _categorical_shares(values: pd.Series, categories: list[str]) -> np.ndarray:
    """Shares per reference category, then "other" (unseen), then missing (last)."""
    labels = _labels(values)
    missing = labels.isna().to_numpy()
    codes = pd.Index(categories, dtype=object).get_indexer(labels[~missing].to_numpy(dtype=object))
    codes = np.where(codes < 0, len(categories), codes)  # unseen -> "other"
    counts = np.bincount(codes, minlength=len(categories) + 1)
    return np.append(counts, missing.sum()) / len(labels)


# --- grade migration -----------------------------------------------------------------------
def grade_migration(previous: pd.DataFrame | None, current: pd.DataFrame) -> pd.DataFrame:
    """Buyers per (previous_grade, grade), long form, columns `MIGRATION_COLUMNS`.

    Over buyer_id: buyers in both runs have both grades; buyers only in `current` have
    previous_grade NA ("new"), buyers only in `previous` have grade NA ("gone"). Without
    a previous run every buyer is new. Grades are nullable integers; rows are sorted by
    previous grade then grade, NA last.
    """
    now = current[["buyer_id", "grade"]].drop_duplicates("buyer_id", keep="last")
    if previous is None:
        before = pd.DataFrame({"buyer_id": pd.Series([], dtype=now["buyer_id"].dtype), "grade": []})
    else:
        before = previous[["buyer_id", "grade"]].drop_duplicates("buyer_id", keep="last")
    both = before.rename(columns={"grade": "previous_grade"}).merge(now, "outer", "buyer_id")
    both["previous_grade"] = pd.array(both["previous_grade"], dtype="Int64")
    both["grade"] = pd.array(both["grade"], dtype="Int64")
    table = (
        both.groupby(["previous_grade", "grade"], dropna=False, sort=False)
        .size()
        .rename("buyers")
        .reset_index()
        .sort_values(["previous_grade", "grade"], na_position="last", kind="stable")
        .reset_index(drop=True)
    )
    table["buyers"] = table["buyers"].astype("int64")
    table["previous_grade"] = pd.array(table["previous_grade"], dtype="Int64")
    table["grade"] = pd.array(table["grade"], dtype="Int64")
    return table[MIGRATION_COLUMNS]


def migration_summary(migration: pd.DataFrame) -> dict[str, Any]:
    """Counts and shares of a `grade_migration` table.

    compared: buyers graded in both runs; upgraded / downgraded / stable: their shares
    (NaN when none compared); downgraded_2plus: how many fell two grades or more; new /
    gone: buyers only in the current / previous run. A fall into default (10) counts as a
    downgrade.
    """
    previous = pd.to_numeric(migration["previous_grade"], errors="coerce")
    grade = pd.to_numeric(migration["grade"], errors="coerce")
    buyers = pd.to_numeric(migration["buyers"], errors="coerce").fillna(0)
    both = previous.notna() & grade.notna()
    step = (grade - previous)[both]
    weight = buyers[both]
    compared = int(weight.sum())

    def share(mask: pd.Series) -> float:
        return float(weight[mask].sum()) / compared if compared else float("nan")

    return {
        "compared": compared,
        "upgraded": share(step < 0),
        "downgraded": share(step > 0),
        "stable": share(step == 0),
        "downgraded_2plus": int(weight[step >= 2].sum()),
        "new": int(buyers[previous.isna() & grade.notna()].sum()),
        "gone": int(buyers[previous.notna() & grade.isna()].sum()),
    }


# --- backtest of a matured cohort ----------------------------------------------------------
def cohort_backtest(
    y: np.ndarray, pd_: np.ndarray, grade: np.ndarray
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Discrimination and calibration of PDs against observed 12-month outcomes.

    Returns ({auc, defaults, count, mean_pd, default_rate, worst_light}, table) where the
    table has one row per grade present, in grade order, columns `BACKTEST_COLUMNS`
    (p_value = the one-sided Jeffreys p-value for underestimated risk, light = its traffic
    light; see `models.pd.validation.calibration_table`). auc is NaN with a single class.
    """
    y = np.asarray(y, dtype="float64")
    pd_ = np.asarray(pd_, dtype="float64")
    grade = np.asarray(grade, dtype="int64")
    if not (y.ndim == 1 and y.shape == pd_.shape == grade.shape):
        raise ValueError("y, pd_ and grade must be 1-d arrays of the same length")
    if len(y) == 0:
        raise ValueError("cohort_backtest needs at least one row")
    if np.isnan(y).any() or np.isnan(pd_).any():
        raise ValueError("y and pd_ must not have missing values")
    order = [g for g in MASTER_SCALE.grades if g in set(grade.tolist())]
    order += sorted(set(grade.tolist()) - set(order))
    table = calibration_table(y, pd_, grade, order=order)
    table = (
        table.rename(columns={"p_underestimation": "p_value", "traffic_light": "light"})
        .rename_axis("grade")
        .reset_index()
    )
    table = table.astype({"grade": "int64"})[BACKTEST_COLUMNS]
    defaults, count = int(y.sum()), len(y)
    auc = float("nan")
    if 0 < defaults < count:
        auc = float(roc_auc_score(y.astype(int), pd_))
    metrics = {
        "auc": auc,
        "defaults": defaults,
        "count": count,
        "mean_pd": float(pd_.mean()),
        "default_rate": defaults / count,
        "worst_light": worst_light(table["light"]),
    }
    return metrics, table
