"""Benchmark: fitting both PD models on 3,000,000 snapshot rows (target <= 5 min on 2 cores).

Set-up (not timed, cached under --workdir): a generated book (`--buyers` x `--months`, the
real generator, ingestion and feature code), monthly snapshots from 12 months after the
first invoice (so the 12-month payment features are complete) to the observation end,
labelled and split by `plan_time_split` (3 test months, 3 calibration months, every
earlier matured month for training). The defaults (76,000 buyers x 96 months) give
about 3.0M rows in the train + calibration slices, the rows a fit reads.

Timed, in a fresh process so its peak memory (max RSS) is its own: reading the training
set, `fit_model("scorecard")`, `fit_model("lightgbm")` (early stopping, refit, Platt
calibration), then predicting PDs and reason-code contributions for every fitted row.

    uv run python -m benchmarks.bench_train
    uv run python -m benchmarks.bench_train --buyers 8000     # small try-out
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.common import ROOT, build_lake, report_child, run_child

TARGET_SECONDS = 300.0


def _training_set(lake: Path, out: Path) -> Path:
    """Build (once) the labelled, split training set of a lake into `out`."""
    if out.exists():
        return out
    import pandas as pd

    from data.lake import Lake
    from features.training import (
        assign_split,
        build_training_set,
        latest_known_date,
        monthly_as_of_dates,
        plan_time_split,
    )
    from flows.features import FEATURE_INPUTS

    tables = Lake(lake).read_tables(FEATURE_INPUTS)
    observation_end = latest_known_date(tables)
    first = tables["invoices"]["issue_date"].min() + pd.offsets.MonthEnd(0)
    start = first + pd.DateOffset(months=12) + pd.offsets.MonthEnd(0)
    frame = build_training_set(tables, start, observation_end, observation_end)
    split = plan_time_split(monthly_as_of_dates(start, observation_end), observation_end)
    frame["split"] = assign_split(frame, split)
    frame = frame.loc[frame["split"] != "excluded"].reset_index(drop=True)
    frame.to_parquet(out)
    return out


def _fit(path: Path) -> dict:
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from models.pd.model import fit_model

    started = time.perf_counter()
    frame = pd.read_parquet(path)
    fitted = frame.loc[frame["split"].isin(["train", "calibration"])]
    test = frame.loc[frame["split"] == "test"]
    result: dict = {
        "read_s": time.perf_counter() - started,
        "rows_fitted": len(fitted),
        "train_rows": int((frame["split"] == "train").sum()),
        "calibration_rows": int((frame["split"] == "calibration").sum()),
        "test_rows": len(test),
        "train_months": int(frame.loc[frame["split"] == "train", "as_of_date"].nunique()),
    }
    y_test = test["label"].to_numpy(dtype=np.int8)
    for kind in ("scorecard", "lightgbm"):
        started = time.perf_counter()
        model = fit_model(kind, frame)
        result[f"{kind}_fit_s"] = time.perf_counter() - started
        started = time.perf_counter()
        model.predict_pd(fitted)
        result[f"{kind}_predict_s"] = time.perf_counter() - started
        started = time.perf_counter()
        model.contributions(fitted.iloc[:1_000_000])
        result[f"{kind}_contrib_1m_s"] = time.perf_counter() - started
        result[f"{kind}_test_auc"] = float(roc_auc_score(y_test, model.predict_pd(test)))
        if kind == "lightgbm":
            result["lightgbm_rounds"] = [m.get("refit_rounds") for m in model.info["members"]]
    result["fit_s"] = result["scorecard_fit_s"] + result["lightgbm_fit_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--buyers", type=int, default=76_000)
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
        f"training set: {r['rows_fitted']:,} rows fitted = {r['train_rows']:,} train "
        f"({r['train_months']} months) + {r['calibration_rows']:,} calibration; "
        f"{r['test_rows']:,} test rows; read {r['read_s']:.1f} s"
    )
    for kind in ("scorecard", "lightgbm"):
        extra = f", {r['lightgbm_rounds']} rounds" if kind == "lightgbm" else ""
        print(
            f"{kind:9s}  fit {r[f'{kind}_fit_s']:6.1f} s{extra} | PD for all fitted rows "
            f"{r[f'{kind}_predict_s']:5.1f} s | contributions 1M rows "
            f"{r[f'{kind}_contrib_1m_s']:5.1f} s | out-of-time AUC {r[f'{kind}_test_auc']:.3f}"
        )
    met = r["fit_s"] <= TARGET_SECONDS
    print(
        f"both fits {r['fit_s']:.1f} s, whole run {r['seconds']:.1f} s, peak {r['peak_gb']:.2f} GB"
        f" | target fits <= {TARGET_SECONDS:.0f} s: {'met' if met else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
