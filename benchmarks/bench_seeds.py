"""Benchmark: the training recipe on generated books of other seeds, against the oracle.

The demo book (seed 42) is where the recipe was developed; books of other seeds (4,000
buyers x 48 months by default) are held out. Each goes through the real generator,
ingestion, features and the training flow's own steps (`plan_training`, `fold_frame`,
`fit_model(..., calibrate_on="cross_fit")`); per rolling-origin fold the LightGBM model's
out-of-time AUC is set against the oracle AUC of the generator's true PD on the same rows:
share = (AUC - 0.5) / (oracle - 0.5). Set-ups are cached under --workdir.

    uv run python -m benchmarks.bench_seeds
    uv run python -m benchmarks.bench_seeds --seeds 7 --buyers 2000   # small try-out
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.common import ROOT, build_lake, report_child, run_child

MONTHS = 48


def _measure(lake: Path, truth_dir: Path) -> dict:
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from data.lake import Lake
    from features.training import (
        build_training_set,
        fold_frame,
        latest_known_date,
        monthly_as_of_dates,
        plan_training,
    )
    from flows.features import FEATURE_INPUTS
    from flows.train import truth_for
    from models.pd.model import fit_model
    from models.pd.validation import oracle_auc

    tables = Lake(lake).read_tables(FEATURE_INPUTS)
    end = latest_known_date(tables)
    first = tables["invoices"]["issue_date"].min()
    plan = plan_training(monthly_as_of_dates(first + pd.offsets.MonthEnd(0), end), end, first)
    frame = build_training_set(tables, plan.first_as_of, plan.last_matured, end)
    frame = frame.loc[frame["label"].notna()].reset_index(drop=True)
    folds = []
    for k, fold in enumerate(plan.folds, 1):
        rows = fold_frame(frame, fold, seed=k)
        started = time.perf_counter()
        model = fit_model("lightgbm", rows, calibrate_on="cross_fit")
        seconds = time.perf_counter() - started
        test = rows.loc[rows["split"] == "test"]
        y = test["label"].astype(int).to_numpy()
        score = model.predict_pd(test)
        true_pd = truth_for(test, truth_dir)
        known = np.isfinite(true_pd)
        auc = float(roc_auc_score(y[known], score[known]))
        oracle = oracle_auc(y[known], true_pd[known])
        folds.append({"test_from": str(fold.test_start.date()), "auc": auc, "oracle": oracle,
                      "share": (auc - 0.5) / (oracle - 0.5),
                      "obs_pred": float(y.mean() / score.mean()), "fit_s": seconds})  # fmt: skip
    return {"rows": len(frame), "folds": folds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11, 23])
    parser.add_argument("--buyers", type=int, default=4_000)
    parser.add_argument("--workdir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        lake, truth = args.child.split(",")
        report_child(lambda: _measure(Path(lake), Path(truth)))
        return

    results = {}
    for seed in args.seeds:
        workdir = args.workdir / f"seed_{seed}_{args.buyers}_{MONTHS}"
        print(f"preparing a {args.buyers:,}-buyer, {MONTHS}-month book of seed {seed}…", flush=True)
        lake = build_lake(workdir, args.buyers, MONTHS, seed=seed)
        truth = workdir / "source" / "_truth"
        results[seed] = run_child("benchmarks.bench_seeds", [f"--child={lake},{truth}"])

    print(f"\nLightGBM, rolling-origin folds, {args.buyers:,} buyers x {MONTHS} months")
    print(f"{'seed':>5}  {'fold test from':<15}{'AUC':>7}{'oracle':>8}{'share':>7}"
          f"{'obs/pred':>9}{'fit s':>7}")  # fmt: skip
    means = []
    for seed, r in results.items():
        for m in r["folds"]:
            print(f"{seed:>5}  {m['test_from']:<15}{m['auc']:>7.3f}{m['oracle']:>8.3f}"
                  f"{m['share']:>7.2f}{m['obs_pred']:>9.2f}{m['fit_s']:>7.1f}")  # fmt: skip
        mean = sum(m["share"] for m in r["folds"]) / len(r["folds"])
        means.append(mean)
        print(f"{seed:>5}  mean share over the folds {mean:.2f} ({r['rows']:,} rows)")
    print(f"mean share over the seeds: {sum(means) / len(means):.2f} (target >= 0.75)")


if __name__ == "__main__":
    main()
