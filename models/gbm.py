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
    "num_leaves": 31,
    "max_depth": -1,
    "min_data_in_leaf": 200,
    "min_sum_hessian_in_leaf": 1e-3,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
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
    "refit": True,
    "n_models": 1,
}
#: Keys of DEFAULT_PARAMS that drive the training loop rather than LightGBM itself.
TRAINING_KEYS = frozenset(
    {"num_boost_round", "early_stopping_rounds", "validation_share", "refit", "n_models"}
)


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
    """Fit `n_models` boosters; member k uses the pair `stopping_slices[k % len(...)]`.

    `matrix` is float32 (missing = NaN, categorical features as integer codes), `y` 0/1;
    each pair is (rows fitted, rows of the early-stopping slice), boolean masks over the rows.
    With `refit`, the final booster of each member is trained on every row.
    """
    settings = merged_params(params)
    lgb_params = {k: v for k, v in settings.items() if k not in TRAINING_KEYS}
    lgb_params["monotone_constraints"] = list(monotone)
    y = np.asarray(y, dtype="float64")
    boosters, info = [], []
    for member in range(int(settings["n_models"])):
        member_params = {**lgb_params, "seed": int(settings["seed"]) + member}
        fit_rows, valid = (
            np.asarray(mask, dtype=bool) for mask in stopping_slices[member % len(stopping_slices)]
        )
        if y[valid].min() == y[valid].max() or y[fit_rows].min() == y[fit_rows].max():
            raise ValueError("the early-stopping slice and the rest must both hold defaults")
        common = {
            "feature_name": feature_names,
            "categorical_feature": categorical,
            "free_raw_data": True,
        }
        train_set = lgb.Dataset(matrix[fit_rows], y[fit_rows], params=member_params, **common)
        valid_set = lgb.Dataset(
            matrix[valid], y[valid], reference=train_set, params=member_params, **common
        )
        booster = lgb.train(
            member_params,
            train_set,
            num_boost_round=int(settings["num_boost_round"]),
            valid_sets=[valid_set],
            valid_names=["stopping"],
            callbacks=[
                lgb.early_stopping(int(settings["early_stopping_rounds"]), verbose=False)
            ],
        )
        best = int(booster.best_iteration or booster.current_iteration())
        stopping_score = float(booster.best_score["stopping"][lgb_params["metric"]])
        record = {"best_iteration": best, "stopping_" + lgb_params["metric"]: stopping_score}
        if settings["refit"]:
            # More rows support proportionally more rounds at the same learning rate.
            rounds = max(1, round(best * len(y) / fit_rows.sum()))
            full_set = lgb.Dataset(matrix, y, params=member_params, **common)
            booster = lgb.train(member_params, full_set, num_boost_round=rounds)
            record["refit_rounds"] = rounds
        else:
            booster = _truncate(booster, best)
        boosters.append(booster)
        info.append(record)
    return GBMEnsemble(boosters, info)


def _truncate(booster: lgb.Booster, rounds: int) -> lgb.Booster:
    """A booster holding only its first `rounds` trees (so prediction needs no num_iteration)."""
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))
