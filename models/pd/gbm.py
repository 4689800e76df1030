"""The LightGBM challenger: gradient-boosted trees with monotone constraints and early stopping.

Why these choices:
- **Monotone constraints** from the feature catalogue's risk directions: the score may
  never improve when a risk-raising feature worsens (paying later, more leverage), which is
  what an underwriter and a validator expect, and it curbs overfitting to noise.
- **Native missing values** (no imputation: "no statement" is information) and the sector
  as a native categorical feature.
- **Early stopping** on a held-out slice of the training period (the latest as-of months
  for snapshot data, a stratified random slice otherwise), monitoring AUC: the PD level is
  set afterwards by the calibrator, so the trees only have to rank; stopping on log loss
  stops too early for ranking on rare defaults. Then, by default, the model is **refitted**
  on the whole training slice with the number of rounds found (scaled to the larger sample),
  so the latest months are not lost to the stopping slice.
- Optionally an **average of `n_models`** members (different seeds and, for undated data,
  different stopping slices): bagging lowers the variance on small samples.
- `fit_gbm_cross_fitted` also returns the out-of-fold raw scores of the early-stopping
  boosters on their slices, so the calibrator can be fitted without holding rows back from
  the trees (`pd_model.fit_model(..., calibrate_on="cross_fit")`).

All settings live in `DEFAULT_PARAMS`; LightGBM parameters and the training-loop settings
(`TRAINING_KEYS`) share one dict so one record describes a fit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np

#: The fixed hyper-parameters of the challenger (one place; tracked with every model).
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "metric": "auc",
    "learning_rate": 0.05,
    # Shallow trees and large leaves: monthly snapshots repeat each buyer ~12-40 times, so
    # a leaf of a few hundred rows can be a handful of buyers and the model memorises who
    # defaulted (held-out AUC peaks after ~50 rounds, then falls). 1,000-row leaves and
    # depth 4 hold up; they also keep SHAP contributions cheap (cost ~ leaves x depth^2).
    "num_leaves": 8,
    "max_depth": 4,
    "min_data_in_leaf": 1000,
    "min_sum_hessian_in_leaf": 1e-3,
    "lambda_l2": 10.0,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "max_bin": 255,
    "max_cat_to_onehot": 4,
    "cat_smooth": 10.0,
    "monotone_constraints_method": "intermediate",
    "seed": 42,
    "deterministic": True,
    "force_col_wise": True,
    "verbosity": -1,
    "num_threads": 0,
    # --- training loop (not passed to LightGBM) ---
    "num_boost_round": 2000,
    "early_stopping_rounds": 100,
    "validation_share": 0.2,
    "min_stopping_defaults": 1000,
    "refit": True,
    "n_models": 1,
}
#: Keys of DEFAULT_PARAMS that drive the training loop rather than LightGBM itself.
TRAINING_KEYS = frozenset(
    {
        "num_boost_round",
        "early_stopping_rounds",
        "validation_share",
        "min_stopping_defaults",
        "refit",
        "n_models",
    }
)


#: Below this many fitting rows the small-data setting applies (`params_for_size`).
SMALL_DATA_ROWS = 50_000
#: Small tables (thousands of rows, a few hundred defaults): deeper trees with small leaves
#: on half the features, three members refitted on all rows with different seeds;
#: learning rate 0.05 with at most 1,000 rounds and a patience of 60 (0.01, 5,000 and 300
#: scaled by 5: the same distance along the boosting path in a fifth of the trees); one
#: thread (on a few thousand rows a second thread brings nothing and, on a busy machine,
#: costs up to 100 times the time). Chosen by cross-validation inside the training folds of
#: the Polish bankruptcy benchmark (bench_polish), never on its test folds: of the settings
#: costing a seventh of learning rate 0.01's or less, the best inner AUC (0.001 below 0.01's)
#: and the only one as good in Brier score and calibration error. `refit: False` (the k fold
#: boosters as the members) costs 40 % less but ranked 0.002 lower, with a worse Brier score.
SMALL_DATA_PARAMS: dict[str, Any] = {
    "learning_rate": 0.05,
    "num_leaves": 63,
    "max_depth": 6,
    "min_data_in_leaf": 20,
    "lambda_l2": 0.0,
    "feature_fraction": 0.5,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "num_boost_round": 1000,
    "early_stopping_rounds": 60,
    "n_models": 3,
    "num_threads": 1,
}


def params_for_size(rows: int) -> dict[str, Any]:
    """The LightGBM overrides for a table of `rows` fitting rows: the one place the setting
    is chosen by data size (none above SMALL_DATA_ROWS: DEFAULT_PARAMS)."""
    return dict(SMALL_DATA_PARAMS) if rows < SMALL_DATA_ROWS else {}


#: Below this many rows LightGBM runs on one thread: a tree's work is then smaller than the
#: threads' synchronisation (7k rows, 200 rounds: 1.5 s on one thread, 5.5 s on two), and
#: on a shared machine spinning OpenMP threads slow every other job down.
SINGLE_THREAD_ROWS = 250_000


#: From this many rows a single early-stopping slice is used and its booster, fitted on the
#: other buyers (80 %), is the model: refitting on all rows would double the training cost
#: of a large book for a gain the learning curve does not show (20k to 100k buyers: no AUC).
REFIT_MAX_ROWS = 500_000


def threads_for(rows: int) -> int:
    """LightGBM threads for a fit on `rows` rows when the settings leave it automatic (0)."""
    return 1 if rows < SINGLE_THREAD_ROWS else 0


def merged_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """DEFAULT_PARAMS updated with `params` (unknown LightGBM keys pass through)."""
    return {**DEFAULT_PARAMS, **(params or {})}


class GBMEnsemble:
    """One or more LightGBM boosters whose raw scores (log-odds) are averaged."""

    def __init__(self, boosters: list[lgb.Booster], info: list[dict[str, Any]]) -> None:
        self.boosters = boosters
        self.info = info

    def raw_score(self, matrix: np.ndarray) -> np.ndarray:
        """Average log-odds of default over the members."""
        return np.mean([b.predict(matrix, raw_score=True) for b in self.boosters], axis=0)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Average per-feature SHAP contributions in log-odds (bias column dropped)."""
        parts = [b.predict(matrix, pred_contrib=True)[:, :-1] for b in self.boosters]
        return np.mean(parts, axis=0)

    def importance(self, kind: str = "gain") -> np.ndarray:
        """Total split gain (or split count) per feature, averaged over the members."""
        return np.mean([b.feature_importance(importance_type=kind) for b in self.boosters], axis=0)


def fit_gbm(
    matrix: np.ndarray,
    y: np.ndarray,
    stopping_slices: Sequence[tuple[np.ndarray, np.ndarray]],
    feature_names: list[str],
    monotone: list[int],
    categorical: list[int],
    params: Mapping[str, Any] | None = None,
) -> GBMEnsemble:
    """Find the number of boosting rounds by early stopping, then fit `n_models` boosters.

    `matrix` is float32 (missing = NaN, categorical features as integer codes), `y` 0/1;
    each stopping pair is (rows fitted, rows of the early-stopping slice), boolean masks.
    - One pair (snapshot data: the latest months of held-out buyers): one booster stops on
      the slice.
    - Several pairs (undated data): cross-validated early stopping, the round that
      maximises the mean stopping metric over the pairs (`lgb.cv`): on a small sample one
      slice's optimum is noise (measured on the Polish data: 400 to 1,900 rounds).
    With `refit` every member is then trained on all rows with
    the rounds found, scaled by the ratio of rows (more rows support more rounds at the
    same learning rate); members differ by seed (bagging). Without `refit` (or from
    `REFIT_MAX_ROWS` rows with one pair) the members are the early-stopped boosters: one
    pair, that booster; several pairs, the k fold boosters cut at the best round.
    `fit_gbm_cross_fitted` is the same fit that also
    returns out-of-fold scores.
    """
    ensemble, _ = _fit(matrix, y, stopping_slices, feature_names, monotone, categorical, params)
    return ensemble


def fit_gbm_cross_fitted(
    matrix: np.ndarray,
    y: np.ndarray,
    stopping_slices: Sequence[tuple[np.ndarray, np.ndarray]],
    feature_names: list[str],
    monotone: list[int],
    categorical: list[int],
    params: Mapping[str, Any] | None = None,
) -> tuple[GBMEnsemble, np.ndarray]:
    """`fit_gbm` plus an out-of-fold raw score for every row of a stopping slice.

    Each stopping booster, cut at the best round, scores the rows of its slice, which it
    did not fit: an honest raw score (log-odds) for the calibrator at no extra training
    cost. Undated data: the k folds of a k-fold split (every row held out once), so every
    row gets a score. Snapshot data: the slices are held-out buyers' latest months, so the
    latest cohort gets scores and the other rows stay NaN. The pairs' slices must not
    overlap and no slice row may be fitted by its own pair. The ensemble returned is the
    one `fit_gbm` returns (refitted on all rows, or without `refit` the early-stopped
    boosters: several pairs, the k fold boosters cut at the best round).
    """
    pairs = [tuple(np.asarray(m, dtype=bool) for m in pair) for pair in stopping_slices]
    held = np.sum([valid for _, valid in pairs], axis=0)
    if np.any(held > 1) or any(np.any(f & v) for f, v in pairs):
        raise ValueError("cross-fitting needs disjoint slices that their own pair does not fit")
    ensemble, scores = _fit(
        matrix, y, pairs, feature_names, monotone, categorical, params, out_of_fold=True
    )
    assert scores is not None
    return ensemble, scores


def _fit(
    matrix: np.ndarray,
    y: np.ndarray,
    stopping_slices: Sequence[tuple[np.ndarray, np.ndarray]],
    feature_names: list[str],
    monotone: list[int],
    categorical: list[int],
    params: Mapping[str, Any] | None,
    out_of_fold: bool = False,
) -> tuple[GBMEnsemble, np.ndarray | None]:
    """The fit behind `fit_gbm`; with `out_of_fold` (several pairs) also the fold scores."""
    settings = merged_params(params)
    lgb_params = {k: v for k, v in settings.items() if k not in TRAINING_KEYS}
    lgb_params["monotone_constraints"] = list(monotone)
    if not lgb_params.get("num_threads"):
        lgb_params["num_threads"] = threads_for(len(y))
    metric = str(lgb_params["metric"])
    y = np.asarray(y, dtype="float64")
    pairs = [tuple(np.asarray(m, dtype=bool) for m in pair) for pair in stopping_slices]
    for fit_rows, valid in pairs:
        if not (0 < y[valid].sum() < valid.sum() and 0 < y[fit_rows].sum() < fit_rows.sum()):
            raise ValueError("the early-stopping slice and the rest must both hold defaults")
    common = {"feature_name": feature_names, "categorical_feature": categorical}
    n_models, refit = int(settings["n_models"]), bool(settings["refit"])
    if refit and len(pairs) == 1 and len(y) >= REFIT_MAX_ROWS:
        refit = False  # a large table: the stopping booster is the model (see REFIT_MAX_ROWS)
    stop = [lgb.early_stopping(int(settings["early_stopping_rounds"]), verbose=False)]

    def seeded(member: int) -> dict[str, Any]:
        return {**lgb_params, "seed": int(settings["seed"]) + member}

    record: dict[str, Any] = {"stopping_folds": len(pairs)}
    boosters: list[lgb.Booster] = []
    scores: np.ndarray | None = None
    if len(pairs) == 1:
        fit_rows, valid = pairs[0]
        for member in range(1 if refit else n_models):
            train_set = lgb.Dataset(matrix[fit_rows], y[fit_rows], params=seeded(member), **common)
            valid_set = lgb.Dataset(matrix[valid], y[valid], reference=train_set, **common)
            booster = lgb.train(
                seeded(member),
                train_set,
                num_boost_round=int(settings["num_boost_round"]),
                valid_sets=[valid_set],
                valid_names=["stopping"],
                callbacks=stop,
            )
            best = int(booster.best_iteration or booster.current_iteration())
            record |= {
                "best_iteration": best,
                f"stopping_{metric}": booster.best_score["stopping"][metric],
            }
            if out_of_fold and member == 0:
                scores = np.full(len(y), np.nan)
                scores[valid] = booster.predict(matrix[valid], raw_score=True, num_iteration=best)
            if not refit:
                boosters.append(_truncate(booster, best))
        fitted_share = fit_rows.mean()
    else:
        folds = [(np.flatnonzero(f), np.flatnonzero(v)) for f, v in pairs]
        history = lgb.cv(
            seeded(0),
            lgb.Dataset(matrix, y, params=seeded(0), **common),
            num_boost_round=int(settings["num_boost_round"]),
            folds=folds,
            callbacks=stop,
            return_cvbooster=out_of_fold or not refit,
        )
        curve = history[f"valid {metric}-mean"]
        best = len(curve)
        record |= {"best_iteration": best, f"stopping_{metric}": float(curve[-1])}
        fitted_share = float(np.mean([f.mean() for f, _ in pairs]))
        if out_of_fold:
            scores = np.full(len(y), np.nan)
            for booster, (_, held) in zip(history["cvbooster"].boosters, folds, strict=True):
                scores[held] = booster.predict(matrix[held], raw_score=True, num_iteration=best)
        if not refit:
            # The k fold boosters, cut at the best round, are the members (n_models does not
            # apply): already trained, each on (k-1)/k of the rows, and exactly the scorers
            # whose out-of-fold scores the cross-fitted calibrator is fitted on.
            record["seed"] = int(settings["seed"])  # one seed, k different fold slices
            boosters = [_truncate(b, best) for b in history["cvbooster"].boosters]
    if refit:
        rounds = max(1, round(best / fitted_share))
        record["refit_rounds"] = rounds
        for member in range(n_models):
            full_set = lgb.Dataset(matrix, y, params=seeded(member), **common)
            boosters.append(lgb.train(seeded(member), full_set, num_boost_round=rounds))
    info = [{"seed": int(settings["seed"]) + k, **record} for k in range(len(boosters))]
    return GBMEnsemble(boosters, info), scores


def _truncate(booster: lgb.Booster, rounds: int) -> lgb.Booster:
    """A booster holding only its first `rounds` trees (so prediction needs no num_iteration)."""
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))
