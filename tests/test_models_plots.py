"""Plots return matplotlib Figures that render headless."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.master_scale import grade_of
from models.pd.plots import (
    calibration_figure,
    feature_importance_figure,
    grade_distribution_figure,
    roc_figure,
)


def test_every_plot_is_a_figure_that_saves_as_png() -> None:
    rng = np.random.default_rng(0)
    pd_ = rng.uniform(0.0005, 0.3, 3000)
    y = (rng.random(3000) < pd_).astype(int)
    figures = [
        roc_figure(y, {"lightgbm": pd_, "oracle": pd_**0.9}),
        calibration_figure(y, pd_),
        grade_distribution_figure(grade_of(pd_), y, pd_),
        feature_importance_figure(pd.Series({"dbt_12m": 3.0, "paydex": 1.0}, name="gain")),
    ]
    for figure in figures:
        assert isinstance(figure, Figure)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        assert buffer.getvalue()[:4] == b"\x89PNG"
