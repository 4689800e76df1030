"""Benchmark: the limit recommendation engine on 2,000,000 (policyholder, buyer) pairs.

Target (issue 5): `assemble_pairs` + `recommend_limits` for 2M pairs in <= 30 s on 2 cores.

Set-up (not timed): seeded synthetic tables shaped like the lake's (`data/contracts.py`
columns and dtypes) plus the outputs the limit flow reads: ~1.3M buyers, 2M limits (1-4
policyholders per buyer out of ~20,000, ~5 % pending requests), policies of both schemes,
statements for ~60 % of buyers (some filed after as-of), ~5 invoices per buyer, events on
~2 % of buyers, scores, the previous scoring, features and two earlier recommendation runs.
They are written as Parquet to a work folder; each measured step then runs in a fresh
process (time and peak memory are its own):

1. read inputs + `assemble_pairs` (read timed apart);
2. read pairs + `recommend_limits` (read timed apart), with the action mix.

    uv run python -m benchmarks.bench_limits                    # 2,000,000 pairs
    uv run python -m benchmarks.bench_limits --pairs 200000 --seed 2   # quicker try-out
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from benchmarks.common import END_DATE, report_child, run_child

MODULE = "benchmarks.bench_limits"
TARGET_S = 30.0
LAKE_END = pd.Timestamp(END_DATE)
#: Two months before the lake ends: later statements, payments and events exist and must
#: be ignored (point in time).
AS_OF = pd.Timestamp("2026-09-30")
PAIRS_PER_BUYER = 1.54  # 2,000,000 pairs -> ~1.3M buyers
INVOICES_PER_BUYER = 5.0
TABLES = ("limits", "policies", "buyers", "financials", "invoices", "events")
OUTPUTS = ("scores", "previous_scores", "features", "history")
#: ISO country: (political-risk class, share of buyers); classes 5-7 hit the country caps.
COUNTRIES: dict[str, tuple[int, float]] = {
    "DE": (0, 0.19),
    "FR": (0, 0.14),
    "NL": (0, 0.07),
    "BE": (0, 0.04),
    "AT": (0, 0.03),
    "GB": (0, 0.07),
    "US": (0, 0.05),
    "SE": (0, 0.03),
    "DK": (0, 0.02),
    "IT": (1, 0.10),
    "ES": (1, 0.08),
    "PL": (1, 0.05),
    "CZ": (1, 0.03),
    "PT": (1, 0.02),
    "HU": (2, 0.02),
    "RO": (3, 0.02),
    "IN": (3, 0.01),
    "BR": (4, 0.01),
    "TR": (5, 0.01),
    "AR": (6, 0.005),
    "UA": (7, 0.005),
}


def _ids(prefix: str, n: int, width: int) -> pd.Series:
    return prefix + pd.Series(np.arange(n)).astype("str").str.zfill(width)


def _days(rng: np.random.Generator, low: int, high: int, size: int) -> np.ndarray:
    return rng.integers(low, high, size).astype("timedelta64[D]")


def _dates(values: np.ndarray) -> np.ndarray:
    return np.asarray(values).astype("datetime64[ns]")


def synthetic_inputs(n_pairs: int, seed: int) -> dict[str, pd.DataFrame]:
    """Lake tables (`TABLES`) and flow outputs (`OUTPUTS`) for `n_pairs` limits."""
    from data.reference import EVENT_TYPES
    from models.master_scale import MASTER_SCALE

    rng = np.random.default_rng(seed)
    end, as_of = np.datetime64(LAKE_END.date()), np.datetime64(AS_OF.date())
    n_buyers = round(n_pairs / PAIRS_PER_BUYER)
    n_holders = max(n_pairs // 100, 8)

    holder_ids = _ids("P", n_holders, 6)
    xol = rng.random(n_holders) < 0.3
    policies = pd.DataFrame(
        {
            "policyholder_id": holder_ids,
            "scheme": np.where(xol, "excess_of_loss", "first_euro"),
            "indemnity_pct": rng.integers(70, 96, n_holders).astype("float64"),
            "claim_waiting_days": pd.array(rng.choice([90, 120, 180], n_holders), dtype="Int64"),
            "discretionary_limit": np.where(
                xol, rng.choice([25e3, 50e3, 100e3], n_holders), np.nan
            ),
            "aggregate_first_loss": np.where(xol, rng.choice([50e3, 250e3], n_holders), np.nan),
        }
    )

    buyer_ids = _ids("B", n_buyers, 7)
    codes = np.array(list(COUNTRIES))
    share = np.array([s for _, s in COUNTRIES.values()])
    country = rng.choice(len(codes), n_buyers, p=share / share.sum())
    buyers = pd.DataFrame(
        {
            "buyer_id": buyer_ids,
            "name": "Buyer " + buyer_ids,
            "country": codes[country],
            "sector": rng.choice(list("CFGHM"), n_buyers),
            "legal_form": "private_limited",
            "incorporation_date": _dates(as_of - _days(rng, 365, 40 * 365, n_buyers)),
        }
    )

    # Limits: 1-4 distinct policyholders per buyer (mean 1.6; buyers past n_pairs get none).
    per_buyer = rng.choice([1, 2, 3, 4], n_buyers, p=[0.6, 0.25, 0.1, 0.05])
    if per_buyer.sum() < n_pairs:
        raise ValueError("too few buyers for the pairs asked")
    buyer = np.repeat(np.arange(n_buyers), per_buyer)[:n_pairs]
    rank = np.arange(n_pairs) - np.repeat(np.cumsum(per_buyer) - per_buyer, per_buyer)[:n_pairs]
    base = (n_holders * rng.random(n_buyers) ** 2).astype("int64")  # a few large policyholders
    stride = rng.integers(1, n_holders // 4, n_buyers)
    holder = (base[buyer] + rank * stride[buyer]) % n_holders
    order = rng.permutation(n_pairs)
    buyer, holder = buyer[order], holder[order]
    limit = np.clip(np.round(np.exp(rng.normal(np.log(60e3), 1.1, n_pairs)), -3), 10e3, 2e6)
    pending = rng.random(n_pairs) < 0.05
    new = pending & (rng.random(n_pairs) < 0.3)  # a request for a first limit
    limit[new] = 0.0
    asked = np.where(
        new, np.exp(rng.normal(np.log(50e3), 1.0, n_pairs)), limit * rng.uniform(1.1, 2.5, n_pairs)
    )
    requested = np.where(pending, np.maximum(np.round(asked, -3), 10e3), np.nan)
    used = np.where(
        rng.random(n_pairs) < 0.05, rng.uniform(1.0, 1.3, n_pairs), rng.beta(2, 3, n_pairs)
    )
    limits = pd.DataFrame(
        {
            "policyholder_id": holder_ids.array.take(holder),
            "buyer_id": buyer_ids.array.take(buyer),
            "limit_amount": limit,
            "requested_amount": requested,
            "exposure": np.round(limit * used, 2),
            "decision_date": _dates(as_of - _days(rng, 30, 1500, n_pairs)),
        }
    )

    # Statements: ~60 % of buyers, 1-2 year ends; some filed after as-of, some too old.
    filers = np.flatnonzero(rng.random(n_buyers) < 0.6)
    two = rng.random(len(filers)) < 0.5
    last_year = rng.choice([2023, 2024, 2025], len(filers), p=[0.15, 0.35, 0.5])
    fb = np.concatenate([filers, filers[two]])
    year = np.concatenate([last_year, last_year[two] - 1])
    m = len(fb)
    period_end = (year - 1969).astype("datetime64[Y]").astype("datetime64[D]") - 1
    ta = np.exp(rng.normal(np.log(8e6), 1.2, m))
    equity = ta * rng.uniform(-0.03, 0.6, m)
    tl = ta - equity
    revenue = np.where(rng.random(m) < 0.1, np.nan, ta * rng.uniform(0.4, 2.0, m))
    ca = ta * rng.uniform(0.3, 0.8, m)
    cl = tl * rng.uniform(0.3, 0.8, m)
    ltd = (tl - cl) * rng.uniform(0.5, 1.0, m)
    op = np.where(np.isnan(revenue), ta, revenue) * rng.normal(0.05, 0.06, m)
    financials = pd.DataFrame(
        {
            "buyer_id": buyer_ids.array.take(fb),
            "period_end": _dates(period_end),
            "filing_date": _dates(period_end + _days(rng, 60, 330, m)),
            "currency": "EUR",
            "revenue": revenue,
            "operating_income": op,
            "net_income": op * 0.7,
            "total_assets": ta,
            "current_assets": ca,
            "cash": ca * rng.uniform(0.05, 0.2, m),
            "receivables": ca * rng.uniform(0.2, 0.45, m),
            "inventory": ca * rng.uniform(0.1, 0.3, m),
            "total_liabilities": tl,
            "current_liabilities": cl,
            "long_term_debt": ltd,
            "equity": equity,
            "retained_earnings": equity * rng.uniform(0.0, 0.8, m),
            "interest_expense": ltd * 0.04,
        }
    )

    # Invoices: ~5 per buyer over 15 months, sized on the pair's limit (or request).
    pair = np.repeat(np.arange(n_pairs), rng.poisson(INVOICES_PER_BUYER / PAIRS_PER_BUYER, n_pairs))
    k = len(pair)
    issue = end - _days(rng, 0, 450, k)
    due = issue + rng.choice([30, 45, 60, 90], k).astype("timedelta64[D]")
    paid = np.maximum(due + np.round(rng.exponential(12.0, k) - 8).astype("timedelta64[D]"), issue)
    paid[(paid > end) | (rng.random(k) < 0.03)] = np.datetime64("NaT")
    size = np.fmax(limit, np.nan_to_num(requested))[pair]
    invoices = pd.DataFrame(
        {
            "invoice_id": _ids("I", k, 9),
            "buyer_id": limits["buyer_id"].array.take(pair),
            "policyholder_id": limits["policyholder_id"].array.take(pair),
            "issue_date": _dates(issue),
            "due_date": _dates(due),
            "paid_date": _dates(paid),
            "amount": np.round(size * np.exp(rng.normal(np.log(0.6), 0.5, k)), 2),
            "currency": "EUR",
        }
    )

    hit = rng.choice(n_buyers, n_buyers // 50, replace=False)
    kind = rng.choice(sorted(EVENT_TYPES), len(hit))
    claim = kind == "claim_filed"
    events = pd.DataFrame(
        {
            "buyer_id": buyer_ids.array.take(hit),
            "event_date": _dates(end - _days(rng, 0, 730, len(hit))),
            "event_type": kind,
            "policyholder_id": pd.Series(
                holder_ids.array.take(rng.integers(0, n_holders, len(hit)))
            ).where(claim),
            "amount": np.where(claim, np.round(rng.uniform(5e3, 200e3, len(hit)), 2), np.nan),
        }
    )

    # Flow outputs: scores (0.5 % of buyers unscored, 0.3 % in default), the previous
    # scoring (3 % new buyers), features, and the earlier runs within the hysteresis window.
    scored = np.flatnonzero(rng.random(n_buyers) >= 0.005)
    in_default = rng.random(len(scored)) < 0.003
    pd_ = np.clip(np.exp(rng.normal(np.log(0.004), 1.3, len(scored))), 0.0003, 1.0)
    pd_[in_default] = 1.0
    grade = MASTER_SCALE.grade_of(pd_, in_default)
    scores = pd.DataFrame(
        {
            "buyer_id": buyer_ids.array.take(scored),
            "as_of_date": _dates(np.full(len(scored), as_of)),
            "pd": pd_,
            "grade": grade,
            "model_version": "12",
        }
    )
    shift = rng.choice([-3, -2, -1, 0, 1], len(scored), p=[0.01, 0.03, 0.1, 0.76, 0.1])
    known = rng.random(len(scored)) >= 0.03
    previous_scores = pd.DataFrame(
        {
            "buyer_id": scores["buyer_id"].array[known],
            "grade": np.clip(grade + shift, 1, MASTER_SCALE.default_grade)[known],
        }
    )
    overdue = np.where(rng.random(n_buyers) < 0.15, np.round(rng.exponential(45.0, n_buyers)), 0.0)
    classes = np.array([c for c, _ in COUNTRIES.values()], dtype="float64")
    features = pd.DataFrame(
        {
            "buyer_id": buyer_ids,
            "political_risk_class": classes[country],
            "oldest_overdue_days": overdue,
        }
    )
    runs = [AS_OF - pd.offsets.MonthEnd(k) for k in (1, 2)]  # within the 90-day window
    actions = ["maintain", "decrease", "cancel", "increase", "refer"]
    history = pd.concat(
        [
            limits[["policyholder_id", "buyer_id"]].assign(
                as_of_date=run,
                proposed_action=rng.choice(actions, n_pairs, p=[0.9, 0.04, 0.01, 0.03, 0.02]),
            )
            for run in runs
        ],
        ignore_index=True,
    ).astype({"as_of_date": "datetime64[ns]"})
    return {
        "limits": limits,
        "policies": policies,
        "buyers": buyers,
        "financials": financials,
        "invoices": invoices,
        "events": events,
        "scores": scores,
        "previous_scores": previous_scores,
        "features": features,
        "history": history,
    }


def _read(workdir: Path, names: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    return {n: pq.read_table(workdir / f"{n}.parquet").to_pandas() for n in names}


def step_build(workdir: Path, n_pairs: int, seed: int) -> dict:
    """Generate the inputs and write them as Parquet (set-up, not part of the target)."""
    frames = synthetic_inputs(n_pairs, seed)
    for name, frame in frames.items():
        frame.to_parquet(workdir / f"{name}.parquet", index=False)
    return {"rows": {name: len(frame) for name, frame in frames.items()}}


def step_assemble(workdir: Path) -> dict:
    """Read the inputs, then time `assemble_pairs`; the pairs are saved for the next step."""
    from models.limits.inputs import assemble_pairs
    from models.limits.policy import load_policy

    grace = load_policy().capacity.payment_grace_days
    started = time.perf_counter()
    frames = _read(workdir, TABLES + OUTPUTS)
    read_s = time.perf_counter() - started
    tables = {name: frames[name] for name in TABLES}
    started = time.perf_counter()
    pairs = assemble_pairs(
        AS_OF,
        tables,
        frames["scores"],
        frames["features"],
        frames["previous_scores"],
        frames["history"],
        grace_days=grace,
    )
    seconds = time.perf_counter() - started
    pairs.to_parquet(workdir / "pairs.parquet", index=False)
    return {
        "read_s": read_s,
        "read_rows": sum(len(f) for f in frames.values()),
        "seconds": seconds,
        "rows": len(pairs),
    }


def step_recommend(workdir: Path) -> dict:
    """Read the pairs, then time `recommend_limits`; report the action mix."""
    from models.limits.engine import recommend_limits
    from models.limits.policy import load_policy

    policy = load_policy()
    started = time.perf_counter()
    pairs = pq.read_table(workdir / "pairs.parquet").to_pandas()
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    recs = recommend_limits(pairs, policy, model_version="12")
    seconds = time.perf_counter() - started
    return {
        "read_s": read_s,
        "seconds": seconds,
        "rows": len(recs),
        "policy_version": policy.version,
        "actions": recs["action"].value_counts().to_dict(),
        "proposed": recs["proposed_action"].value_counts().to_dict(),
        "human_required": int(recs["human_required"].sum()),
    }


def _line(label: str, seconds: float, rows: int, peak_gb: float | None = None) -> str:
    peak = f" | peak {peak_gb:5.2f} GB" if peak_gb is not None else ""
    return f"  {label:22s} {seconds:7.2f} s | {rows / seconds:>12,.0f} rows/s{peak}"


def _mix(counts: dict[str, int], total: int) -> str:
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v:,} ({v / total:.1%})" for k, v in items)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--workdir", type=Path, help="keep the inputs here (default: a temp folder)"
    )
    parser.add_argument(
        "--step", choices=["build", "assemble", "recommend"], help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.step:
        steps = {
            "build": lambda: step_build(args.workdir, args.pairs, args.seed),
            "assemble": lambda: step_assemble(args.workdir),
            "recommend": lambda: step_recommend(args.workdir),
        }
        report_child(steps[args.step])
        return

    with tempfile.TemporaryDirectory(prefix="bench_limits_") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"limit engine: {args.pairs:,} pairs, seed {args.seed}, as of {AS_OF.date()} "
            f"(lake to {LAKE_END.date()}); {os.cpu_count()} cores, load average {load}",
            flush=True,
        )
        common = [f"--workdir={workdir}", f"--pairs={args.pairs}", f"--seed={args.seed}"]
        built = run_child(MODULE, ["--step=build", *common])
        rows = ", ".join(f"{k} {v:,}" for k, v in built["rows"].items())
        print(f"  set-up (not timed)     {built['seconds']:7.2f} s | {rows}", flush=True)
        a = run_child(MODULE, ["--step=assemble", *common])
        print(_line("read inputs", a["read_s"], a["read_rows"]), flush=True)
        print(_line("assemble_pairs", a["seconds"], a["rows"], a["peak_gb"]), flush=True)
        r = run_child(MODULE, ["--step=recommend", *common])
        print(_line("read pairs", r["read_s"], r["rows"]))
        print(_line("recommend_limits", r["seconds"], r["rows"], r["peak_gb"]))
        total = a["seconds"] + r["seconds"]
        met = "met" if total <= TARGET_S else "not met"
        print(_line("assemble + recommend", total, r["rows"]))
        print(f"  target <= {TARGET_S:.0f} s: {met}")
        print(f"  policy {r['policy_version']}; actions: {_mix(r['actions'], r['rows'])}")
        print(f"  proposed before authority: {_mix(r['proposed'], r['rows'])}")
        print(f"  human required: {r['human_required']:,}")


if __name__ == "__main__":
    main()
