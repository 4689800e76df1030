"""Benchmark on real data: the Polish companies bankruptcy set (UCI 365), forecasting year 1.

Runs the project's own training code through its scikit-learn estimator,
`models.pd.estimator.PDClassifier` (the training flow's `fit_model` inside), for both model
kinds (the LightGBM spec of `models/pd/gbm.py` and the WoE scorecard, each with Platt
calibration)
under repeated stratified 5-fold cross-validation (3 x 5 by default) and prints the mean
and spread of the out-of-fold AUC beside the published figures (Expert Systems 2024,
doi 10.1111/exsy.13599, hold-out AUC: LightGBM 0.960, best ensemble 0.964).

Protocol, fixed before looking at any test fold:
- the outer test fold is only predicted, never used to fit, stop or calibrate;
- the model is fitted on the whole outer training fold with `PDClassifier.fit` (calibrated
  inside the fit on cross-fitted scores): LightGBM early-stops on AUC by 5-fold
  stratified cross-validation inside the training fold (the data has no dates), is refitted
  on all of it, and the Platt calibrator is fitted on the out-of-fold scores of the 5 fold
  boosters (no row is given up to a separate calibration slice); the scorecard does the
  same with 5 scorecards each fitted without one fold;
- features Attr1..Attr64 as given (missing values native), no monotone constraints (the
  catalogue does not know these ratios), no resampling, no feature engineering.

Last measured (3 x 5 folds, seed 2024, 2 cores shared with other jobs: 137-145 s one fold
at a time, load 1-5; 116 s with --jobs 2, load 2-3): LightGBM AUC 0.9617 ± 0.0094, Brier
0.0148, ECE 0.0057; scorecard 0.8748 ± 0.0282 — above the published single LightGBM
(0.960), below the published best ensemble (0.964). The previous setting (learning rate 0.01) reached 0.9625 ± 0.0091, Brier
0.0147, ECE 0.0052 in 19 to 22 minutes.

Hyper-parameters: the project's `DEFAULT_PARAMS` are tuned against memorising buyers in
monthly snapshots (large leaves, shallow trees). This set is 7,027 independent statements
with 271 bankruptcies, so the estimator's setting by data size (`gbm.params_for_size`:
`SMALL_DATA_PARAMS` below 50,000 rows) applies a fixed small-data setting: deeper trees
(depth 6), small leaves (20 rows), feature subsampling 0.5, learning rate 0.05 (up to 1,000
rounds, patience 60), an average of 3 members refitted with different seeds, one thread.
The tree shape was chosen once on 3 x 5 folds of a different seed split before this
benchmark's folds were fixed (seed 2024); the learning rate, patience and members by
cross-validation inside the training folds of this benchmark's split, never on its test
folds. The published figures are printed only for the file they are for (UCI 365's
1year.arff, recognised by its sha256).

    uv run python -m benchmarks.bench_polish
    uv run python -m benchmarks.bench_polish --repeats 1    # quicker
    uv run python -m benchmarks.bench_polish --jobs 2       # two folds at a time
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold

from data.arff import read_arff
from models.pd.estimator import PDClassifier
from models.pd.validation import expected_calibration_error

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "polish_bankruptcy"
#: The published hold-out AUCs belong to this file only: UCI 365's 1year.arff, by its sha256.
PUBLISHED_FILE = "e1698d022a040369ab474fc234765edd75d3adc4392bad1d97c0d26a940f147b"
PUBLISHED = {"LightGBM": 0.960, "XGBoost": 0.956, "CatBoost": 0.958, "best ensemble": 0.964}
SEED = 2024


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """The ARFF file as a frame with `label` (1 = bankrupt) and the attribute names."""
    frame = read_arff(path)
    label = frame.pop("class").astype("int8")
    features = list(frame.columns)
    frame["label"] = label
    return frame, features


#: The data set of a worker process (`_start`), so each fold's task carries indices only.
_DATA: dict = {}


def _start(path: Path) -> None:
    frame, features = load(path)
    _DATA.update(frame=frame, features=features)


def _fold(task: tuple[np.ndarray, np.ndarray, list[str], dict | None]) -> dict:
    """Fit each kind on the training rows, predict the test rows: AUC, Brier, ECE, seconds."""
    train_idx, test_idx, kinds, gbm_params = task
    frame, features = _DATA["frame"], _DATA["features"]
    y = frame["label"].to_numpy()
    X_train, X_test = frame[features].iloc[train_idx], frame[features].iloc[test_idx]
    y_test = y[test_idx]
    scores = {}
    for kind in kinds:
        model = PDClassifier(kind, params=gbm_params if kind == "lightgbm" else None)
        tick = time.perf_counter()
        pd_ = model.fit(X_train, y[train_idx]).predict_proba(X_test)[:, 1]
        scores[kind] = {
            "seconds": time.perf_counter() - tick,
            "auc": roc_auc_score(y_test, pd_),
            "brier": float(np.mean((pd_ - y_test) ** 2)),
            "ece": expected_calibration_error(y_test, pd_),
        }
    return scores


def run(
    path: Path,
    repeats: int,
    folds: int,
    kinds: list[str],
    gbm_params: dict | None,
    seed: int = SEED,
    jobs: int = 1,
) -> dict:
    _start(path)
    frame, features = _DATA["frame"], _DATA["features"]
    y = frame["label"].to_numpy()
    print(
        f"{path.name}: {len(frame):,} statements, {int(y.sum())} bankrupt "
        f"({y.mean():.2%}), {len(features)} ratios, {int(frame[features].isna().sum().sum()):,} "
        f"missing cells; {repeats} x {folds}-fold stratified CV (seed {seed}), "
        f"{jobs} fold(s) at a time",
        flush=True,
    )
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    tasks = [(tr, te, kinds, gbm_params) for tr, te in splitter.split(np.zeros(len(y)), y)]
    results: dict[str, dict[str, list[float]]] = {
        k: {"auc": [], "brier": [], "ece": [], "seconds": []} for k in kinds
    }
    load_before, started = os.getloadavg()[0], time.perf_counter()
    with ExitStack() as stack:
        if jobs > 1:  # independent folds, one process each (every fit is single-threaded)
            pool = ProcessPoolExecutor(
                jobs, mp_context=get_context("spawn"), initializer=_start, initargs=(path,)
            )
            done = stack.enter_context(pool).map(_fold, tasks)
        else:
            done = map(_fold, tasks)
        for number, scores in enumerate(done):  # in fold order
            for kind in kinds:
                for key, value in scores[kind].items():
                    results[kind][key].append(value)
            print(
                f"  fold {number + 1:2d}: "
                + "  ".join(f"{k} AUC {scores[k]['auc']:.4f}" for k in kinds),
                flush=True,
            )
    seconds = time.perf_counter() - started
    print(
        f"({seconds:.0f} s; fits: "
        + ", ".join(f"{k} {sum(results[k]['seconds']):.0f} s" for k in kinds)
        + f"; 1-minute load average {load_before:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end, {os.cpu_count()} cores)"
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("SOLVENCY_POLISH_DATA", DATA / "1year.arff")),
        help="the year-1 ARFF file (env SOLVENCY_POLISH_DATA; default: the shared datasets)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--defaults", action="store_true", help="LightGBM with DEFAULT_PARAMS, no overrides"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="folds fitted at a time, one process each (each fit uses one core)",
    )
    args = parser.parse_args()
    if not args.data.is_file():
        parser.error(
            f"no Polish bankruptcy file at {args.data}: download 1year.arff of UCI data set 365 "
            "and pass --data PATH (or set SOLVENCY_POLISH_DATA)"
        )
    kinds = ["lightgbm", "scorecard"]
    params = {} if args.defaults else None  # None: the setting for the data's size
    jobs = max(1, min(args.jobs, args.repeats * args.folds))
    results = run(args.data, args.repeats, args.folds, kinds, params, jobs=jobs)
    n = args.repeats * args.folds
    print(f"\nOut-of-fold results over {n} test folds (mean ± sd):")
    names = {"lightgbm": "LightGBM (models/pd/gbm.py)", "scorecard": "WoE scorecard (baseline)"}
    for kind in kinds:
        r = {k: np.asarray(v) for k, v in results[kind].items()}
        print(
            f"  {names[kind]:27s} AUC {r['auc'].mean():.4f} ± {r['auc'].std(ddof=1):.4f}"
            f"  (min {r['auc'].min():.3f}, max {r['auc'].max():.3f})"
            f"  Brier {r['brier'].mean():.4f}  ECE {r['ece'].mean():.4f}"
        )
    if sha256(args.data) != PUBLISHED_FILE:
        print(f"Published figures: none for {args.data.name} (they are for UCI 365's 1year.arff)")
        return
    print("Published (hold-out AUC, Expert Systems 2024):")
    for name, auc in PUBLISHED.items():
        print(f"  {name:27s} AUC {auc:.3f}")
    best = float(np.mean(results["lightgbm"]["auc"]))
    verdict = "reached" if best >= PUBLISHED["best ensemble"] else "not reached"
    print(f"Target: best published ensemble 0.964 -> {verdict} (ours {best:.4f})")


if __name__ == "__main__":
    main()
