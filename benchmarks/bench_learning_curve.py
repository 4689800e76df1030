"""Benchmark: does the PD model learn more from more data? The gap to the generator's oracle,
by book size and by which rows the model is fitted on.

On generated books of the same seed (48 months ending 2026-11-30; the real generator,
ingestion and feature code) of 5,000, 20,000 and 100,000 buyers, the LightGBM PD model is
fitted three ways and validated on the same out-of-time test months:

- `time split`: today's training recipe (`plan_time_split`): train on every as-of date whose
  label window ended before the calibration months — on a 48-month book only the first
  months of data, when the 12-month payment windows are still filling (warm-up rows);
- `all matured`: train on every as-of date before the calibration months (their labels
  matured before the test months begin), calibration and test unchanged;
- `all matured, no warm-up`: the same without the as-of dates before the first data date +
  the longest lookback window (12 months), whose payment features are truncated.

Then the rolling-origin validation the production recipe will use: consecutive
out-of-time folds (two fit in 48 months), each trained on every matured as-of date from the warm-up end
(`features.training.rolling_origin_splits`, `warm_up_end`), per fold and averaged.

Reported per size and recipe: training rows, out-of-time AUC, the oracle AUC (the
generator's own 12-month PD on the same rows), the share of the achievable lift reached,
(AUC - 0.5) / (oracle - 0.5), and the fit time. If the share rises with the size, the gap
is data; if it stays flat with more rows, it is features or model.

    uv run python -m benchmarks.bench_learning_curve                   # 5k, 20k, 100k
    uv run python -m benchmarks.bench_learning_curve --sizes 5000 20000  # quicker

Set-up (generate + ingest, cached under --workdir) is not timed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.common import ROOT, build_lake, report_child, run_child

MONTHS = 48
#: Rolling-origin folds: on 48 months, 12 warm-up months and two 12-month label gaps leave
#: room for two 3-month test windows with at least two training months each.
FOLDS = 2
RECIPES = ("time split", "all matured", "all matured, no warm-up")


def _splits(frame, split, warm_up):
    """The split column of each recipe (train / calibration / test / excluded)."""
    import numpy as np

    from features.training import assign_split

    base = assign_split(frame, split).astype(str)
    as_of = frame["as_of_date"].to_numpy()
    labelled = frame["label"].notna().to_numpy()
    before_calibration = as_of < split.calibration_start.to_datetime64()
    matured = base.where(~(before_calibration & labelled), "train")
    no_warm_up = matured.where(~(as_of < np.datetime64(warm_up)), "excluded")
    return dict(zip(RECIPES, (base, matured, no_warm_up), strict=True))


def _measure(lake: Path, truth_dir: Path) -> dict:
    """Build the training set once, fit and validate each recipe (in this child process)."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from data.contracts import CONTRACTS, empty_table
    from data.lake import Lake
    from features.training import (
        assign_split,
        build_training_set,
        latest_known_date,
        monthly_as_of_dates,
        plan_time_split,
        rolling_origin_splits,
        warm_up_end,
    )
    from flows.features import FEATURE_INPUTS
    from flows.train import truth_for
    from models.pd.model import fit_model
    from models.pd.validation import oracle_auc

    store = Lake(lake)
    tables = {
        t: store.read(t) if store.has_table(t) else empty_table(CONTRACTS[t])
        for t in FEATURE_INPUTS
    }
    end = latest_known_date(tables)
    start = tables["invoices"]["issue_date"].min() + pd.offsets.MonthEnd(0)
    split = plan_time_split(monthly_as_of_dates(start, end), end)
    started = time.perf_counter()
    frame = build_training_set(tables, start, end, end)
    features_seconds = time.perf_counter() - started
    warm_up = warm_up_end(tables["invoices"]["issue_date"].min())

    def fit_and_test(column) -> dict:
        rows = frame.assign(split=np.asarray(column))
        rows = rows.loc[rows["split"] != "excluded"].reset_index(drop=True)
        started = time.perf_counter()
        model = fit_model("lightgbm", rows)
        fit_seconds = time.perf_counter() - started
        test = rows.loc[rows["split"] == "test"]
        y = test["label"].astype(int).to_numpy()
        score = model.predict_pd(test)
        true_pd = truth_for(test, truth_dir)
        known = np.isfinite(true_pd)
        auc = float(roc_auc_score(y[known], score[known]))
        oracle = oracle_auc(y[known], true_pd[known])
        train = rows.loc[rows["split"] == "train", "as_of_date"]
        return {
            "train_rows": len(train),
            "train_from": str(train.min().date()),
            "train_to": str(train.max().date()),
            "test_from": str(test["as_of_date"].min().date()),
            "test_rows": len(test),
            "auc": auc,
            "oracle_auc": oracle,
            "share": (auc - 0.5) / (oracle - 0.5),
            "observed_to_predicted": float(y.mean() / score.mean()),
            "fit_seconds": fit_seconds,
        }

    out: dict = {"rows": len(frame), "features_seconds": features_seconds, "recipes": {}}
    for recipe, column in _splits(frame, split, warm_up).items():
        out["recipes"][recipe] = fit_and_test(column.to_numpy())
    folds = rolling_origin_splits(monthly_as_of_dates(start, end), end, folds=FOLDS,
                                  train_start=warm_up, min_train_months=2)  # fmt: skip
    out["folds"] = [fit_and_test(assign_split(frame, fold).astype(str)) for fold in folds]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 20_000, 100_000])
    parser.add_argument("--workdir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        lake, truth = args.child.split(",")
        report_child(lambda: _measure(Path(lake), Path(truth)))
        return

    results = {}
    for buyers in args.sizes:
        workdir = args.workdir / f"scale_{buyers}_{MONTHS}"
        print(f"preparing a {buyers:,}-buyer, {MONTHS}-month book (not timed)…", flush=True)
        lake = build_lake(workdir, buyers, MONTHS)
        print(f"  training set and three fits on {buyers:,} buyers…", flush=True)
        results[buyers] = run_child(
            "benchmarks.bench_learning_curve", [f"--child={lake},{workdir / 'source' / '_truth'}"]
        )
        r = results[buyers]
        print(f"  {r['rows']:,} monthly rows, features {r['features_seconds']:.0f} s, "
              f"peak {r['peak_gb']:.1f} GB", flush=True)  # fmt: skip

    print(f"\nLightGBM out-of-time AUC by book size ({MONTHS} months, seed 42)")
    header = f"{'buyers':>8}  {'recipe':<26}{'train rows':>11}  {'train as-of':<23}"
    print(header + f"{'AUC':>7}{'oracle':>8}{'share':>7}{'obs/pred':>9}{'fit s':>7}")
    for buyers, r in results.items():
        for recipe, m in r["recipes"].items():
            print(
                f"{buyers:>8,}  {recipe:<26}{m['train_rows']:>11,}  "
                f"{m['train_from'] + '..' + m['train_to']:<23}{m['auc']:>7.3f}"
                f"{m['oracle_auc']:>8.3f}{m['share']:>7.2f}{m['observed_to_predicted']:>9.2f}"
                f"{m['fit_seconds']:>7.0f}"
            )
    print(f"\nRolling origin (expanding window from the warm-up end, {FOLDS} out-of-time folds)")
    print(f"{'buyers':>8}  {'fold test from':<15}{'train as-of':<23}{'train rows':>11}"
          f"{'AUC':>7}{'oracle':>8}{'share':>7}")  # fmt: skip
    for buyers, r in results.items():
        for m in r["folds"]:
            print(
                f"{buyers:>8,}  {m['test_from']:<15}{m['train_from'] + '..' + m['train_to']:<23}"
                f"{m['train_rows']:>11,}{m['auc']:>7.3f}{m['oracle_auc']:>8.3f}{m['share']:>7.2f}"
            )
        shares = [m["share"] for m in r["folds"]]
        aucs = [m["auc"] for m in r["folds"]]
        print(f"{buyers:>8,}  mean{'':<45}{sum(aucs) / len(aucs):>7.3f}{'':>8}"
              f"{sum(shares) / len(shares):>7.2f}")  # fmt: skip
    print(
        "share = (AUC - 0.5) / (oracle - 0.5): the part of the lift the generator's true PD "
        "gets that the model gets; obs/pred = observed default rate / mean predicted PD on "
        "the test months (1 = calibrated in level)."
    )


if __name__ == "__main__":
    main()
