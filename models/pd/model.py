"""PD models behind one interface: fit on 'train', calibrate on 'calibration', predict PDs.

`fit_model(kind, frame)` is the single training entry point used by the training flow and
the benchmarks; `PDModel.predict_pd` is what daily scoring calls. A fitted model is a plain
picklable object (sklearn / LightGBM objects and numpy arrays), deterministic, and predicts
on any frame that holds its feature columns (extra columns are ignored).

Time discipline: the frame's `split` column (features.training.assign_split) decides which
rows are used where. The ranking is learnt on 'train' only; LightGBM's early-stopping slice
is the latest 20 % of the training as-of months (a stratified random slice when the frame has
no `as_of_date`, e.g. the Polish benchmark); the PD level is set on 'calibration', a later
period. 'test' and 'excluded' rows are never touched.

`fit_model(..., calibrate_on="cross_fit")` instead fits on all 'train' and 'calibration'
rows and calibrates on out-of-fold scores of the early-stopping slices: every row for
undated data, the latest months of held-out buyers for snapshots (the production refit).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from features.catalogue import CATALOGUE, FEATURE_NAMES
from models.master_scale import MASTER_SCALE, MasterScale
from models.pd import gbm
from models.pd.calibration import Calibrator, Method
from models.pd.scorecard import DEFAULT_SCORECARD_PARAMS, Scorecard

KINDS = ("scorecard", "lightgbm")
#: Rows that set the PD level: the later 'calibration' period, or out-of-fold scores.
CalibrateOn = Literal["calibration", "cross_fit"]
_DIRECTION = {"up": 1, "down": -1, "none": 0}
#: Defaults in one held-out slice above which a single slice is used (`stopping_slices`).
STOPPING_DEFAULTS = 1000


def catalogue_directions(names: Iterable[str]) -> dict[str, int]:
    """+1 / -1 / 0 per feature from the catalogue; 0 for features it does not know."""
    return {n: _DIRECTION[CATALOGUE[n].risk_direction] if n in CATALOGUE else 0 for n in names}


class FeatureEncoder:
    """Turns a frame into the numeric matrix the trees see, the same way at fit and predict.

    Numeric features as float32 (missing = NaN); categorical ones as codes of the
    categories seen in training, NaN when missing or unseen. Categorical are the columns
    named in `categorical` and every non-numeric column; without `categorical`, the
    catalogue's categorical features (our own snapshots).
    """

    def __init__(
        self, frame: pd.DataFrame, names: list[str], categorical: Iterable[str] | None = None
    ) -> None:
        self.names = list(names)
        self.categories: dict[str, list[str]] = {}
        chosen = (
            {n for n in self.names if n in CATALOGUE and CATALOGUE[n].categorical}
            if categorical is None
            else set(categorical)
        )
        for name in self.names:
            column = frame[name]
            if name in chosen or not is_numeric_dtype(column):
                self.categories[name] = sorted(str(v) for v in pd.unique(column.dropna()))

    @property
    def categorical(self) -> list[str]:
        return [n for n in self.names if n in self.categories]

    def check(self, X: pd.DataFrame) -> None:
        missing = [n for n in self.names if n not in X.columns]
        if missing:
            raise KeyError(f"the frame lacks model feature(s): {', '.join(missing)}")

    def matrix(self, X: pd.DataFrame) -> np.ndarray:
        self.check(X)
        out = np.empty((len(X), len(self.names)), dtype=np.float32)
        for k, name in enumerate(self.names):
            if name in self.categories:
                codes = pd.Categorical(
                    X[name].astype("object"), categories=self.categories[name]
                ).codes
                out[:, k] = np.where(codes < 0, np.nan, codes)
            else:
                out[:, k] = pd.to_numeric(X[name]).to_numpy(dtype=np.float64, na_value=np.nan)
        return out


class PDModel:
    """A calibrated 12-month PD model; subclasses supply the raw score and contributions."""

    kind: str = ""

    def __init__(
        self,
        feature_names: list[str],
        calibrator: Calibrator,
        params: dict[str, Any],
        info: dict[str, Any],
        scale: MasterScale = MASTER_SCALE,
    ) -> None:
        self.feature_names = list(feature_names)
        self.calibrator = calibrator
        self.params = params
        self.info = info
        self.scale = scale

    # --- to implement ------------------------------------------------------------------
    def raw_score(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated log-odds of default."""
        raise NotImplementedError

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-row, per-feature contribution in log-odds; > 0 raises the PD."""
        raise NotImplementedError

    def feature_importance(self) -> pd.Series:
        """Global importance per feature (for the importance plot), largest first."""
        raise NotImplementedError

    # --- common ------------------------------------------------------------------------
    def predict_pd(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated 12-month PD, floored at the master scale's floor (float64)."""
        return self.scale.floor(self.calibrator.transform(self.raw_score(X)))

    def grade(self, X: pd.DataFrame, in_default: np.ndarray | pd.Series | None = None):
        """Master-scale grade of each row (10 where `in_default`)."""
        return self.scale.grade_of(self.predict_pd(X), in_default)

    def recalibrated(self, delta: float, note: dict[str, Any] | None = None) -> PDModel:
        """A copy with the calibrated log-odds moved by `delta` (intercept recalibration:
        the ranking and the features are unchanged); `note` is added to its info."""
        out = copy.copy(self)
        out.calibrator = self.calibrator.shifted(delta)
        shifts = [*self.info.get("intercept_shifts", []), {"delta": float(delta), **(note or {})}]
        out.info = {**self.info, "intercept_shifts": shifts}
        return out

    def describe(self) -> dict[str, Any]:
        """Kind, features, parameters, fit facts and calibration, for tracking."""
        return {
            "kind": self.kind,
            "features": self.feature_names,
            "params": self.params,
            "info": self.info,
            "calibration": self.calibrator.describe(),
            "master_scale_version": self.scale.version,
        }


class ScorecardModel(PDModel):
    kind = "scorecard"

    def __init__(self, scorecard: Scorecard, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scorecard = scorecard

    def raw_score(self, X: pd.DataFrame) -> np.ndarray:
        _require(X, self.feature_names)
        return self.scorecard.log_odds(X)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        _require(X, self.feature_names)
        return self.scorecard.contributions(X, self.feature_names)

    def points(self, X: pd.DataFrame) -> np.ndarray:
        """Scorecard points (more = safer) before calibration."""
        return self.scorecard.score(X)

    def scorecard_table(self) -> pd.DataFrame:
        return self.scorecard.scorecard_table()

    def feature_summary(self) -> pd.DataFrame:
        return self.scorecard.feature_summary()

    def feature_importance(self) -> pd.Series:
        """|coefficient| x standard deviation of the WoE on the training slice."""
        values = {}
        for name in self.feature_names:
            if name not in self.scorecard.coef:
                values[name] = 0.0
                continue
            bins = self.scorecard.bins[name]
            weights = bins.count / bins.count.sum()
            mean = np.sum(weights * bins.woe)
            sd = np.sqrt(np.sum(weights * (bins.woe - mean) ** 2))
            values[name] = abs(self.scorecard.coef[name]) * sd
        return pd.Series(values, name="importance").sort_values(ascending=False)


class LightGBMModel(PDModel):
    kind = "lightgbm"

    def __init__(self, ensemble: gbm.GBMEnsemble, encoder: FeatureEncoder, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ensemble = ensemble
        self.encoder = encoder

    def raw_score(self, X: pd.DataFrame) -> np.ndarray:
        return self.ensemble.raw_score(self.encoder.matrix(X))

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        values = self.ensemble.contributions(self.encoder.matrix(X))
        return pd.DataFrame(values, index=X.index, columns=self.feature_names)

    def feature_importance(self) -> pd.Series:
        """Total split gain per feature (averaged over the members)."""
        gain = self.ensemble.importance("gain")
        return pd.Series(gain, index=self.feature_names, name="importance").sort_values(
            ascending=False
        )


def _require(X: pd.DataFrame, names: list[str]) -> None:
    missing = [n for n in names if n not in X.columns]
    if missing:
        raise KeyError(f"the frame lacks model feature(s): {', '.join(missing)}")


def _labels(frame: pd.DataFrame, split: str, label: str) -> tuple[pd.DataFrame, np.ndarray]:
    rows = frame.loc[(frame["split"] == split).to_numpy() & frame[label].notna().to_numpy()]
    if rows.empty:
        raise ValueError(f"no labelled '{split}' rows in the frame")
    y = rows[label].to_numpy(dtype=np.int8)
    if y.min() == y.max():
        raise ValueError(f"the '{split}' rows need both defaults and non-defaults")
    return rows, y


def stopping_slices(
    rows: pd.DataFrame,
    y: np.ndarray,
    share: float,
    seed: int,
    min_defaults: int = STOPPING_DEFAULTS,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rows fitted, early-stopping rows) boolean masks over the training rows.

    Snapshot data (`as_of_date` and `buyer_id`): buyers are dealt at random into k = 1 /
    `share` groups; the stopping slice of group g is its buyers' rows in the latest `share`
    of the training as-of months (at least one month), and none of group g's rows is fitted.
    Both restrictions matter: monthly snapshots of one buyer are near-copies sharing one
    future default, so a slice of the fitted buyers' later months rewards memorising buyers
    and early stopping never stops (measured on the demo book: stopping AUC 0.84,
    out-of-time AUC 0.68). When group 0's slice holds at least `min_defaults` defaults it is
    used alone (large books: one slice is stable and 5 fits would cost minutes); otherwise
    all k pairs are returned for cross-validated early stopping (small books: one slice of
    a few dozen defaults stops anywhere between 5 and 500 rounds).
    Without dates: every fold of a stratified k-fold split (grouped by `buyer_id` if any).
    """
    k = max(2, round(1 / share))
    rng = np.random.default_rng(seed)
    has_buyer = "buyer_id" in rows.columns
    if has_buyer:
        buyers, group = np.unique(rows["buyer_id"].to_numpy(dtype=object), return_inverse=True)
    if "as_of_date" in rows.columns:
        dates = np.sort(rows["as_of_date"].unique())
        if len(dates) < 2:
            raise ValueError("early stopping on time needs at least two training as-of months")
        n_late = min(len(dates) - 1, max(1, round(share * len(dates))))
        late = rows["as_of_date"].to_numpy() >= dates[-n_late]
        if not has_buyer:
            return [(~late, late)]
        dealt = rng.permutation(len(buyers)) % k  # balanced groups of buyers
        held_group = dealt[group]
        pairs = [(held_group != g, (held_group == g) & late) for g in range(k)]
        # a small book: a group's latest months may hold no default; such a slice cannot
        # stop anything (and cannot calibrate), so it is left out
        pairs = [(f, v) for f, v in pairs if 0 < y[v].sum() < v.sum() and y[f].sum() > 0]
        if not pairs:
            raise ValueError(
                "too few defaults for early stopping: no group of buyers has a default in "
                f"the latest {n_late} training month(s); more buyers or history are needed"
            )
        if y[pairs[0][1]].sum() >= min_defaults or len(y) >= gbm.REFIT_MAX_ROWS:
            return pairs[:1]  # a large book: one slice is stable (see gbm.REFIT_MAX_ROWS)
        return pairs
    if has_buyer:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        folds = splitter.split(np.zeros(len(y)), y, groups=group)
    else:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        folds = splitter.split(np.zeros(len(y)), y)
    pairs = []
    for _, held_out in folds:
        held = np.zeros(len(y), dtype=bool)
        held[held_out] = True
        pairs.append((~held, held))
    return pairs


def fit_model(
    kind: str,
    frame: pd.DataFrame,
    features: list[str] | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    label: str = "label",
    monotone: Mapping[str, int] | None = None,
    calibration: Method = "platt",
    calibrate_on: CalibrateOn = "calibration",
    scale: MasterScale = MASTER_SCALE,
    categorical: Iterable[str] | None = None,
) -> PDModel:
    """Fit a 'scorecard' or 'lightgbm' PD model and calibrate it (`calibration` method).

    `features` defaults to the catalogue's FEATURE_NAMES; features unknown to the catalogue
    are allowed (numeric, no monotone constraint) so the same code fits other data sets.
    `monotone` overrides the catalogue directions (+1 risk rises with the feature, -1 falls,
    0 free). `params` overrides `gbm.DEFAULT_PARAMS` or `scorecard.DEFAULT_SCORECARD_PARAMS`.
    `categorical` names the categorical features (default: the catalogue's, plus any
    non-numeric column). For tables that are not our snapshots, `PDClassifier`
    (`models/pd/estimator.py`) gives every feature's direction and type explicitly.

    `calibrate_on` says which rows set the PD level:
    - "calibration" (default): the ranking is fitted on the 'train' rows and the
      calibrator on the 'calibration' rows, a later period.
    - "cross_fit": the model is fitted on every labelled 'train' and 'calibration' row
      (there need be no 'calibration' row), and the calibrator on out-of-fold raw scores
      of the early-stopping slices of `stopping_slices`. Undated data: the k stratified
      folds, so every row is scored once. Snapshot data: held-out buyers' latest months,
      so the PD level is set on the latest matured cohort by scorers that never saw those
      buyers (the training flow's production refit). For LightGBM the stopping boosters
      themselves score their slices (`gbm.fit_gbm_cross_fitted`); for the scorecard one
      scorecard per slice, fitted without that slice's buyers. No row is lost to a
      calibration period; the calibrator never sees a score of a row the scorer fitted.
      'test' and 'excluded' rows stay untouched either way.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {KINDS}")
    if calibrate_on not in ("calibration", "cross_fit"):
        raise ValueError(f"unknown calibrate_on {calibrate_on!r}; 'calibration' or 'cross_fit'")
    names = list(FEATURE_NAMES if features is None else features)
    directions = catalogue_directions(names) | dict(monotone or {})
    if calibrate_on == "cross_fit":
        return _fit_cross_fitted(
            kind, frame, names, directions, params, label, calibration, scale, categorical
        )
    train, y_train = _labels(frame, "train", label)
    calib, y_calib = _labels(frame, "calibration", label)
    info: dict[str, Any] = {
        "n_train": len(train),
        "defaults_train": int(y_train.sum()),
        "n_calibration": len(calib),
        "defaults_calibration": int(y_calib.sum()),
    }
    if "as_of_date" in train.columns:
        info |= {
            "train_as_of": [str(train["as_of_date"].min()), str(train["as_of_date"].max())],
            "calibration_as_of": [str(calib["as_of_date"].min()), str(calib["as_of_date"].max())],
        }
    encoder = FeatureEncoder(train, names, categorical)
    if kind == "scorecard":
        card = Scorecard(params).fit(train[names], y_train, directions, set(encoder.categorical))
        calibrator = Calibrator(calibration, scale="logit").fit(card.log_odds(calib), y_calib)
        info |= {"selected_features": len(card.selected)}
        return ScorecardModel(
            card,
            feature_names=names,
            calibrator=calibrator,
            params=dict(card.params),
            info=info,
            scale=scale,
        )
    settings = gbm.merged_params(params)
    slices = stopping_slices(
        train,
        y_train,
        float(settings["validation_share"]),
        int(settings["seed"]),
        int(settings["min_stopping_defaults"]),
    )
    categorical = [k for k, n in enumerate(names) if n in encoder.categories]
    ensemble = gbm.fit_gbm(
        encoder.matrix(train),
        y_train,
        slices,
        names,
        monotone=[0 if n in encoder.categories else directions[n] for n in names],
        categorical=categorical,
        params=settings,
    )
    info |= {
        "members": ensemble.info,
        "stopping_rows": int(slices[0][1].sum()),
        "stopping_fit_rows": int(slices[0][0].sum()),
    }
    calibrator = Calibrator(calibration, scale="logit").fit(
        ensemble.raw_score(encoder.matrix(calib)), y_calib
    )
    return LightGBMModel(
        ensemble,
        encoder,
        feature_names=names,
        calibrator=calibrator,
        params=settings,
        info=info,
        scale=scale,
    )


def _fit_cross_fitted(
    kind: str,
    frame: pd.DataFrame,
    names: list[str],
    directions: dict[str, int],
    params: Mapping[str, Any] | None,
    label: str,
    calibration: Method,
    scale: MasterScale,
    categorical: Iterable[str] | None = None,
) -> PDModel:
    """`fit_model(..., calibrate_on="cross_fit")`: see its docstring."""
    usable = frame["split"].isin(["train", "calibration"]).to_numpy()
    rows = frame.loc[usable & frame[label].notna().to_numpy()]
    if rows.empty:
        raise ValueError("no labelled 'train' or 'calibration' rows in the frame")
    y = rows[label].to_numpy(dtype=np.int8)
    if y.min() == y.max():
        raise ValueError("the 'train' and 'calibration' rows need both defaults and non-defaults")
    encoder = FeatureEncoder(rows, names, categorical)
    if kind == "scorecard":
        card_params = {**DEFAULT_SCORECARD_PARAMS, **(params or {})}
        folds = stopping_slices(rows, y, 0.2, int(card_params["seed"]), STOPPING_DEFAULTS)
        out_of_fold = np.full(len(y), np.nan)
        categorical = set(encoder.categorical)
        for fitted, held in folds:
            fold_card = Scorecard(params).fit(
                rows.loc[fitted, names], y[fitted], directions, categorical
            )
            out_of_fold[held] = fold_card.log_odds(rows.loc[held, names])
        if len(folds) == 1 and len(rows) >= gbm.REFIT_MAX_ROWS:
            card = fold_card  # a large book: as for LightGBM, the sliced fit is the model
        else:
            card = Scorecard(params).fit(rows[names], y, directions, categorical)
    else:
        settings = gbm.merged_params(params)
        folds = stopping_slices(
            rows,
            y,
            float(settings["validation_share"]),
            int(settings["seed"]),
            int(settings["min_stopping_defaults"]),
        )
        ensemble, out_of_fold = gbm.fit_gbm_cross_fitted(
            encoder.matrix(rows),
            y,
            folds,
            names,
            monotone=[0 if n in encoder.categories else directions[n] for n in names],
            categorical=[k for k, n in enumerate(names) if n in encoder.categories],
            params=settings,
        )
    scored = np.isfinite(out_of_fold)
    calibrator = Calibrator(calibration, scale="logit").fit(out_of_fold[scored], y[scored])
    info: dict[str, Any] = {
        "calibrate_on": "cross_fit",
        "n_train": len(rows),
        "defaults_train": int(y.sum()),
        "n_calibration": int(scored.sum()),
        "defaults_calibration": int(y[scored].sum()),
        "cross_fit_folds": len(folds),
    }
    if "as_of_date" in rows.columns:
        fitted, calib = rows["as_of_date"], rows.loc[scored, "as_of_date"]
        info |= {
            "train_as_of": [str(fitted.min()), str(fitted.max())],
            "calibration_as_of": [str(calib.min()), str(calib.max())],
        }
    if kind == "scorecard":
        info |= {"selected_features": len(card.selected)}
        return ScorecardModel(
            card,
            feature_names=names,
            calibrator=calibrator,
            params=dict(card.params),
            info=info,
            scale=scale,
        )
    info |= {"members": ensemble.info}
    return LightGBMModel(
        ensemble,
        encoder,
        feature_names=names,
        calibrator=calibrator,
        params=settings,
        info=info,
        scale=scale,
    )
