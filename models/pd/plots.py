"""Validation plots as matplotlib Figures (ROC, calibration, grade distribution, importance).

Figures are built with `matplotlib.figure.Figure` directly, not pyplot: no global state, no
GUI backend needed (works headless in flows, renders as PNG through the Agg canvas when
saved or logged), and nothing leaks between calls. Callers save or log them
(`fig.savefig`, `mlflow.log_figure`); notebooks display them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

from models.master_scale import MASTER_SCALE, MasterScale

PDs = Mapping[str, np.ndarray]


def _as_dict(pd_: np.ndarray | PDs, name: str = "model") -> dict[str, np.ndarray]:
    if isinstance(pd_, Mapping):
        return {k: np.asarray(v, dtype="float64") for k, v in pd_.items()}
    return {name: np.asarray(pd_, dtype="float64")}


def roc_figure(y: np.ndarray, pd_: np.ndarray | PDs, title: str = "ROC curve") -> Figure:
    """ROC curve(s) with their AUC; pass {name: pd} to compare models (e.g. oracle)."""
    y = np.asarray(y, dtype=int)
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    for name, score in _as_dict(pd_).items():
        fpr, tpr, _ = roc_curve(y, score)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, score):.3f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="random")
    ax.set(xlabel="false positive rate (non-defaults flagged)", ylabel="true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def calibration_figure(
    y: np.ndarray, pd_: np.ndarray | PDs, bins: int = 10, title: str = "Calibration"
) -> Figure:
    """Mean predicted PD vs observed default rate on equal-count bins, log-log."""
    y = np.asarray(y, dtype="float64")
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    low, high = 1.0, 0.0
    for name, p in _as_dict(pd_).items():
        order = np.argsort(p, kind="stable")
        chunks = [c for c in np.array_split(order, bins) if len(c)]
        mean_pd = np.array([p[c].mean() for c in chunks])
        rate = np.array([y[c].mean() for c in chunks])
        # observed rates of 0 cannot be drawn on a log axis: show them at the bottom edge
        floor = max(mean_pd.min() / 3, 1e-5)
        ax.plot(mean_pd, np.maximum(rate, floor), marker="o", label=name)
        low, high = min(low, floor, mean_pd.min()), max(high, rate.max(), mean_pd.max())
    ax.plot([low, high], [low, high], linestyle=":", color="grey", label="perfect")
    ax.set(xscale="log", yscale="log", xlabel="mean predicted PD", ylabel="observed default rate")
    ax.set_title(f"{title} ({bins} equal-count bins)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def grade_distribution_figure(
    grade: np.ndarray,
    y: np.ndarray | None = None,
    pd_: np.ndarray | None = None,
    scale: MasterScale = MASTER_SCALE,
    title: str = "Grade distribution",
) -> Figure:
    """Share of rows per grade; with outcomes, default rate and mean PD per grade on top."""
    grades = scale.grades
    g = np.asarray(grade, dtype=int)
    counts = pd.Series(g).value_counts().reindex(grades, fill_value=0)
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    ax.bar(grades, counts / max(counts.sum(), 1), color="#7aa6c2", label="share of buyers")
    ax.set(xlabel="grade (1 best .. 9 worst, 10 in default)", ylabel="share of buyers")
    ax.set_xticks(grades)
    ax.set_title(title)
    if y is not None:
        frame = pd.DataFrame({"grade": g, "y": np.asarray(y, dtype="float64")})
        if pd_ is not None:
            frame["pd"] = np.asarray(pd_, dtype="float64")
        stats = frame.groupby("grade").mean().reindex(grades)
        right = ax.twinx()
        right.plot(grades, stats["y"], marker="o", color="#c0392b", label="default rate")
        if pd_ is not None:
            right.plot(grades, stats["pd"], marker="x", color="#2c3e50", label="mean PD")
        right.set(yscale="log", ylabel="rate")
        lines, labels = ax.get_legend_handles_labels()
        more, more_labels = right.get_legend_handles_labels()
        right.legend(lines + more, labels + more_labels, loc="upper left")
    fig.tight_layout()
    return fig


def feature_importance_figure(
    importance: pd.Series, top: int = 20, title: str = "Feature importance"
) -> Figure:
    """Horizontal bars of the `top` largest importances (e.g. PDModel.feature_importance())."""
    values = importance.sort_values(ascending=False).head(top)[::-1]
    fig = Figure(figsize=(7, 0.3 * len(values) + 1.2))
    ax = fig.subplots()
    ax.barh([str(i) for i in values.index], values.to_numpy(), color="#7aa6c2")
    ax.set(xlabel=importance.name or "importance")
    ax.set_title(title)
    fig.tight_layout()
    return fig
