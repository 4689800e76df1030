"""Reason codes: the features that raise a buyer's PD the most, with readable texts.

Why: an underwriter must be able to say why a limit is cut ("pays late: 45 days beyond
terms"), and a buyer may ask. Only contributions > 0 qualify (a feature that lowers the PD
is never a reason for concern); fewer than `top` positive contributors leave the remaining
slots empty. Texts come from the feature catalogue's `reason` and the feature's value in its
unit. Vectorised over rows (argpartition on the contribution matrix; each distinct displayed
value is formatted once), so a million buyers take seconds.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from features.catalogue import CATALOGUE
from models.reports.format import money


def _formatter(name: str):
    """(round for display, format one rounded value) for a feature, from its catalogue unit."""
    feature = CATALOGUE.get(name)
    unit = feature.unit if feature else ""

    def sig3(v: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            mag = np.where(v == 0, 0, np.floor(np.log10(np.abs(np.where(v == 0, 1, v)))))
        scale = 10.0 ** (mag - 2)
        return np.round(v / scale) * scale

    if unit in ("days", "months", "count", "class", "index"):
        word = {"days": " days", "months": " months"}.get(unit, "")
        return np.round, lambda v: f"{v:.0f}{word}"
    if unit == "years":
        return (lambda v: np.round(v, 1)), lambda v: f"{v:.1f} years"
    if unit == "share":
        return (lambda v: np.round(v, 2)), lambda v: f"{v:.0%}"
    if unit == "ratio points":
        return (lambda v: np.round(v, 3)), lambda v: f"{v * 100:+.1f} points"
    if unit == "EUR":
        return sig3, partial(money, significant=3)
    if unit == "ln EUR":  # shown as the amount itself: ln(1 + x) -> x
        return (lambda v: sig3(np.expm1(v))), partial(money, significant=3)
    if unit == "flag":
        return (lambda v: np.round(v)), lambda v: "yes" if v >= 0.5 else "no"
    return (lambda v: np.round(v, 2) if unit in ("ratio", "score") else sig3(v)), (
        lambda v: f"{v:.4g}"
    )


def reason_label(name: str) -> str:
    """The catalogue's reason text, else its description, else the feature name."""
    feature = CATALOGUE.get(name)
    if feature is None:
        return name
    return feature.reason or feature.description


def _texts(name: str, values: pd.Series) -> np.ndarray:
    """'<reason>: <value in its unit>' for each value ('<reason>' alone for set flags)."""
    label = reason_label(name)
    out = np.empty(len(values), dtype=object)
    feature = CATALOGUE.get(name)
    if feature is not None and (feature.categorical or feature.unit == "code"):
        codes, uniques = pd.factorize(values.astype("object"))
        formatted = np.array([f"{label}: {v}" for v in uniques] + [f"{label}: not known"])
        out[:] = formatted[np.where(codes < 0, len(uniques), codes)]
        return out
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    missing = np.isnan(x)
    out[missing] = f"{label}: not available"
    if feature is not None and feature.unit == "flag":
        out[~missing] = label
        return out
    rounder, fmt = _formatter(name)
    shown = rounder(x[~missing])
    uniques, inverse = np.unique(shown, return_inverse=True)
    formatted = np.array([f"{label}: {fmt(v)}" for v in uniques], dtype=object)
    out[~missing] = formatted[inverse]
    return out


def reason_codes(contributions: pd.DataFrame, values: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    """Top `top` PD-raising features per row: `reason_k` (name) and `reason_k_text`.

    `contributions` (rows x features, > 0 raises the PD) and `values` (the feature values,
    same index) come from `PDModel.contributions(X)` and `X`. Slots without a positive
    contributor are missing (None).
    """
    if top < 1:
        raise ValueError("top must be at least 1")
    names = np.asarray(contributions.columns, dtype=object)
    n_rows, n_features = contributions.shape
    k = min(top, n_features)
    c = contributions.to_numpy(dtype="float64", na_value=0.0, copy=True)
    c[~(c > 0)] = -np.inf  # not a reason: zero, negative or missing
    if n_rows:
        part = (
            np.argpartition(-c, k - 1, axis=1)[:, :k]
            if k < n_features
            else np.tile(np.arange(n_features), (n_rows, 1))
        )
        part_values = np.take_along_axis(c, part, axis=1)
        order = np.argsort(-part_values, axis=1, kind="stable")
        chosen = np.take_along_axis(part, order, axis=1)
        chosen_values = np.take_along_axis(part_values, order, axis=1)
    else:
        chosen = np.zeros((0, k), dtype=np.int64)
        chosen_values = np.zeros((0, k))
    valid = np.isfinite(chosen_values)

    out: dict[str, np.ndarray] = {}
    texts: dict[str, np.ndarray] = {}
    for slot in range(top):
        column_names = np.full(n_rows, None, dtype=object)
        column_texts = np.full(n_rows, None, dtype=object)
        if slot < k:
            ok = valid[:, slot]
            column_names[ok] = names[chosen[ok, slot]]
            for j in np.unique(chosen[ok, slot]):
                rows = np.flatnonzero(ok & (chosen[:, slot] == j))
                feature = names[j]
                column_texts[rows] = _texts(feature, values[feature].iloc[rows])
        out[f"reason_{slot + 1}"] = column_names
        texts[f"reason_{slot + 1}_text"] = column_texts
    return pd.DataFrame({**out, **texts}, index=contributions.index)
