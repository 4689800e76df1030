"""The PD model as a scikit-learn classifier, for any labelled table an analyst has.

    model = PDClassifier(monotone={"debt_ratio": +1}, categorical=["sector"])
    cross_val_score(make_pipeline(prep, model), X, y, scoring="roc_auc")

`fit(X, y)` fits the same models as the training flow (`fit_model`: LightGBM or the WoE
scorecard) and calibrates them inside the fit on out-of-fold scores of the training rows,
so `predict_proba` gives calibrated probabilities; `get_params` / `clone` work, so it fits
in a `Pipeline`, `cross_val_score` or a grid search.

Nothing is taken from the names of the columns: the trade-credit catalogue's monotone
directions and categorical types apply to our own snapshots only (the training flow), here
every constraint and every categorical column is given explicitly. The LightGBM setting is
chosen by the number of rows (`gbm.params_for_size`) unless `params` are given; below
`gbm.SMALL_DATA_ROWS` rows the fit also runs its BLAS calls (the scorecard's and the Platt
calibrator's logistic regressions) on one thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from models.pd import gbm
from models.pd.model import KINDS, PDModel, fit_model

#: Column names the fit uses for its own bookkeeping (a feature may not carry them).
_LABEL, _SPLIT = "__label__", "split"


def _frame(X: Any, names: Sequence[str] | None = None) -> pd.DataFrame:
    """X as a DataFrame: a frame as it is, an array with columns x0, x1, ... (or the names
    seen in fit)."""
    if isinstance(X, pd.DataFrame):
        return X
    values = np.asarray(X)
    if values.ndim != 2:
        raise ValueError(f"X must be 2-dimensional, got shape {values.shape}")
    columns = list(names) if names is not None else [f"x{k}" for k in range(values.shape[1])]
    if len(columns) != values.shape[1]:
        raise ValueError(f"X has {values.shape[1]} columns, the model was fitted on {len(columns)}")
    return pd.DataFrame(values, columns=columns)


class PDClassifier(ClassifierMixin, BaseEstimator):
    """A calibrated PD model (LightGBM or scorecard) with scikit-learn's interface.

    kind: 'lightgbm' or 'scorecard'; monotone: feature -> +1 (risk rises with it) or -1
    (falls), others free; categorical: the categorical features (non-numeric columns are
    categorical anyway); params: model settings (default: by data size for LightGBM);
    calibration: 'platt' or 'isotonic'.
    """

    def __init__(
        self,
        kind: str = "lightgbm",
        monotone: Mapping[str, int] | None = None,
        categorical: Sequence[str] | None = None,
        params: Mapping[str, Any] | None = None,
        calibration: str = "platt",
    ) -> None:
        self.kind = kind
        self.monotone = monotone
        self.categorical = categorical
        self.params = params
        self.calibration = calibration

    def fit(self, X: Any, y: Any) -> PDClassifier:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        frame = _frame(X)
        names = [str(c) for c in frame.columns]
        if len(set(names)) != len(names):
            raise ValueError("X has duplicate column names")
        reserved = {_LABEL, _SPLIT, "as_of_date"} & set(names)
        if reserved:
            raise ValueError(f"X may not have a column named {', '.join(sorted(reserved))}")
        target = np.asarray(y).ravel()
        if len(target) != len(frame):
            raise ValueError(f"X has {len(frame)} rows but y has {len(target)}")
        self.classes_ = np.unique(target)
        if len(self.classes_) != 2:
            raise ValueError(f"y needs exactly two classes (default or not), got {self.classes_}")
        directions = dict(self.monotone or {})
        unknown = sorted(set(directions) - set(names)) + sorted(
            set(self.categorical or ()) - set(names)
        )
        if unknown:
            raise ValueError(f"monotone / categorical name column(s) not in X: {unknown}")
        bad = {n: d for n, d in directions.items() if d not in (-1, 0, 1)}
        if bad:
            raise ValueError(f"monotone directions must be -1, 0 or +1: {bad}")
        data = frame.set_axis(names, axis=1).assign(
            **{_LABEL: (target == self.classes_[1]).astype(np.int8), _SPLIT: "train"}
        )
        params = self.params
        if params is None and self.kind == "lightgbm":
            params = gbm.params_for_size(len(data))
        # On a small table a second BLAS thread brings nothing, and on a busy machine its
        # spinning costs up to 8 times the time (the scorecard on 5,600 rows: 0.7 s on one
        # thread, 5.3 s on two); None leaves larger tables as they are.
        small = len(data) < gbm.SMALL_DATA_ROWS
        with threadpool_limits(limits=1 if small else None):
            self.model_: PDModel = fit_model(
                self.kind,
                data,
                features=names,
                params=params,
                label=_LABEL,
                # every feature's direction given: a column named like a catalogue feature
                # gets no constraint from the catalogue
                monotone={n: int(directions.get(n, 0)) for n in names},
                calibration=self.calibration,
                calibrate_on="cross_fit",
                categorical=list(self.categorical or ()),
            )
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities of (not default, default) per row."""
        check_is_fitted(self, "model_")
        frame = _frame(X, list(self.feature_names_in_))
        pd_ = self.model_.predict_pd(frame.set_axis([str(c) for c in frame.columns], axis=1))
        return np.column_stack([1.0 - pd_, pd_])

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of default (what `roc_auc` scoring may use)."""
        p = np.clip(self.predict_proba(X)[:, 1], 1e-12, 1 - 1e-12)
        return np.log(p / (1 - p))
