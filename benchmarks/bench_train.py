"""Benchmark: the training recipe on about 3,000,000 snapshot rows (target <= 5 min on 2 cores).

Set-up (not timed, cached under --workdir): a generated book (`--buyers` x `--months`, the
real generator, ingestion and feature code), the labelled monthly snapshots the training
flow uses (`features.training.plan_training`: from the end of the lookback windows' warm-up
to the last matured month). The defaults (42,000 buyers x 96 months) give about 3.0M rows
for the production refit.

Timed, in a fresh process so its peak memory (max RSS) is its own, for the scorecard and
LightGBM each: the rolling-origin validation (one fit per fold, each on at most
`FOLD_MAX_ROWS` rows of a random share of the buyers, cross-fitted calibration), then the
production refit on every row; then PDs and reason-code contributions of the production
model.

    uv run python -m benchmarks.bench_train
    uv run python -m benchmarks.bench_train --buyers 5000     # small try-out
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.common import ROOT, build_lake, report_child, run_child

TARGET_SECONDS = 300.0


def _training_set(lake: Path, out: Path) -> Path:
    """Build (once) the training flow's rows of a lake into `out` (+ its plan's inputs)."""
    if out.exists():
        return out
    import pandas as pd

    from data.lake import Lake
    from features.training import (
        build_training_set,
        latest_known_date,
        monthly_as_of_dates,
        plan_training,
    )
    from flows.features import FEATURE_INPUTS

    tables = Lake(lake).read_tables(FEATURE_INPUTS)
    observation_end = latest_known_date(tables)
    first = tables["invoices"]["issue_date"].min()
    month_ends = monthly_as_of_dates(first + pd.offsets.MonthEnd(0), observation_end)
    plan = plan_training(month_ends, observation_end, first)
    frame = build_training_set(tables, plan.first_as_of, plan.last_matured, observation_end)
    frame = frame.loc[frame["label"].notna()].reset_index(drop=True)
    frame.to_parquet(out)
    dates = {"observation_end": str(observation_end.date()), "first": str(first.date())}
    out.with_suffix(".json").write_text(json.dumps(dates))
    return out


def _fit(path: Path) -> dict:
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from features.training import (
        fold_frame,
        monthly_as_of_dates,
        plan_training,
        production_frame,
    )
    from models.pd.model import fit_model

    started = time.perf_counter()
    frame = pd.read_parquet(path)
    dates = json.loads(path.with_suffix(".json").read_text())
    end = pd.Timestamp(dates["observation_end"])
    month_ends = monthly_as_of_dates(pd.Timestamp(dates["first"]) + pd.offsets.MonthEnd(0), end)
    plan = plan_training(month_ends, end, dates["first"])
    result: dict = {"read_s": time.perf_counter() - started, "rows": len(frame),
                    "months": int(frame["as_of_date"].nunique()), "folds": len(plan.folds)}  # fmt: skip
    production = production_frame(frame, plan)
    for kind in ("scorecard", "lightgbm"):
        started = time.perf_counter()
        aucs, fold_rows = [], []
        for k, fold in enumerate(plan.folds, 1):
            rows = fold_frame(frame, fold, seed=k)
            fold_rows.append(int(rows["split"].isin(["train", "calibration"]).sum()))
            model = fit_model(kind, rows, calibrate_on="cross_fit")
            test = rows.loc[rows["split"] == "test"]
            aucs.append(float(roc_auc_score(test["label"].astype(int), model.predict_pd(test))))
        result[f"{kind}_folds_s"] = time.perf_counter() - started
        result[f"{kind}_fold_aucs"] = aucs
        result["fold_rows"] = fold_rows
        started = time.perf_counter()
        model = fit_model(kind, production, calibrate_on="cross_fit")
        result[f"{kind}_production_s"] = time.perf_counter() - started
        started = time.perf_counter()
        model.predict_pd(production)
        result[f"{kind}_predict_s"] = time.perf_counter() - started
        started = time.perf_counter()
        model.contributions(production.iloc[:1_000_000])
        result[f"{kind}_contrib_1m_s"] = time.perf_counter() - started
        if kind == "lightgbm":
            result["lightgbm_rounds"] = [
                m.get("refit_rounds", m.get("best_iteration")) for m in model.info["members"]
            ]
    result["fit_s"] = sum(result[f"{k}_{s}_s"] for k in ("scorecard", "lightgbm")
                          for s in ("folds", "production"))  # fmt: skip
    result["mean_fold_auc"] = float(np.mean(result["lightgbm_fold_aucs"]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--buyers", type=int, default=42_000)
    parser.add_argument("--months", type=int, default=96)
    parser.add_argument("--workdir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        report_child(lambda: _fit(Path(args.case)))
        return

    workdir = args.workdir / f"train_{args.buyers}_{args.months}"
    print(f"preparing a {args.buyers:,}-buyer, {args.months}-month book (not timed)…", flush=True)
    lake = build_lake(workdir, args.buyers, args.months)
    path = _training_set(lake, workdir / "training_set.parquet")
    r = run_child("benchmarks.bench_train", [f"--case={path}"])
    print(
        f"training rows: {r['rows']:,} ({r['months']} as-of months); {r['folds']} validation "
        f"folds fitted on {', '.join(f'{n:,}' for n in r['fold_rows'])} rows; "
        f"read {r['read_s']:.1f} s"
    )
    for kind in ("scorecard", "lightgbm"):
        extra = f", {r['lightgbm_rounds']} rounds" if kind == "lightgbm" else ""
        aucs = " / ".join(f"{a:.3f}" for a in r[f"{kind}_fold_aucs"])
        print(
            f"{kind:9s}  folds {r[f'{kind}_folds_s']:6.1f} s (AUC {aucs}) | production refit "
            f"{r[f'{kind}_production_s']:6.1f} s{extra} | PD for all rows "
            f"{r[f'{kind}_predict_s']:5.1f} s | contributions 1M rows "
            f"{r[f'{kind}_contrib_1m_s']:5.1f} s"
        )
    met = r["fit_s"] <= TARGET_SECONDS
    print(
        f"validation + production, both models {r['fit_s']:.1f} s, whole run "
        f"{r['seconds']:.1f} s, peak {r['peak_gb']:.2f} GB | target <= {TARGET_SECONDS:.0f} s: "
        f"{'met' if met else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
