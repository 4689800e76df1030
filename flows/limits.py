"""Limit policy backtest flow: the policy's decision value on the out-of-time months.

(The day's limit recommendations are a step of the daily rescoring, `flows/daily.py`.)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from prefect import flow, get_run_logger

from data.lake import spreadsheet_safe
from data.permissions import open_for_writing
from flows.context import RunContext
from models.limits.backtest import backtest_limits, policy_variant, summarise_backtest

LIMIT_TABLES = ("limits", "policies", "buyers", "financials", "invoices", "events")
LIMITS_EXPERIMENT = "limit-recommendations"

#: What-if settings shown beside the configured policy in the backtest, from the most
#: cautious to the most lenient: the trade-off between cover avoided and cover retained.
BACKTEST_VARIANTS = {
    "cautious": {"capacity_factor": 0.5, "cancel_grade": 8, "increase_max_grade": 4},
    "careful": {"capacity_factor": 0.75},
    "configured": {},
    "no notice": {"notice_days": 0},
    "generous": {"capacity_factor": 1.25},
    "lenient": {"capacity_factor": 1.6, "cancel_grade": 10, "increase_max_grade": 6},
    "capacity maxed": {"capacity_factor": 100.0},  # every multiple at the cap of 10
}
#: The decision-value targets drawn on the trade-off plot.
TARGET_AVOIDED, TARGET_RETAINED = 0.60, 0.95


def tradeoff_figure(summary: pd.DataFrame):
    """Cover avoided on defaulters against cover retained on the others, one point per
    policy setting, with the target corner: where a setting lands is the choice made."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    ax.fill_between([TARGET_AVOIDED, 1.0], TARGET_RETAINED, 1.0, color="#2e8b57", alpha=0.12,
                    label="target: >= 60 % avoided and >= 95 % retained")  # fmt: skip
    ax.plot(summary["avoided_share"], summary["retained_share"], "o", color="#1f4e79")
    placed: list[tuple[float, float]] = []
    for name, row in summary.iterrows():
        point = (row["avoided_share"], row["retained_share"])
        near = any(abs(point[0] - x) < 0.06 and abs(point[1] - y) < 0.02 for x, y in placed)
        ax.annotate(str(name), point, textcoords="offset points", fontsize=8,
                    xytext=(6, -12) if near else (6, 4))  # fmt: skip
        placed.append(point)
    ax.set(xlim=(0, 1), ylim=(min(0.5, summary["retained_share"].min() - 0.05), 1.0),
           xlabel="cover on defaulting buyers avoided", ylabel="cover on the others retained",
           title="Limit policy settings: loss avoided vs business kept")  # fmt: skip
    ax.xaxis.set_major_formatter("{x:.0%}")
    ax.yaxis.set_major_formatter("{x:.0%}")
    ax.legend(loc="lower left", fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


@flow(name="limit-backtest", flow_run_name="limit policy backtest ({split} months)")
def limit_backtest_flow(ctx: RunContext, split: str = "test") -> pd.DataFrame:
    """Decision value of the context's policy on the out-of-time months, for a few settings.

    Uses the latest published training set (`solvency training-set`) and the champion's
    validation model (fitted without the test months; the champion itself where a version
    has none).
    """
    logger = get_run_logger()
    lake, registry, policy = ctx.lake, ctx.registry, ctx.policy
    sets = lake.output_partitions("training_set")
    if not sets:
        raise RuntimeError("no training set published: run `solvency training-set` first")
    snapshots = lake.read_output("training_set", sets[-1])
    dates = sorted(
        pd.to_datetime(snapshots.loc[snapshots["split"] == split, "as_of_date"].unique())
    )
    if not dates:
        raise RuntimeError(f"the training set {sets[-1]} has no '{split}' months")
    version = registry.champion()
    # The production refit has seen these months' outcomes: its validation model has not.
    model, which = registry.validation_model(version)
    logger.info("champion v%s backtested through its %s", version.version, which)
    policies = {
        name: policy if not settings else policy_variant(policy, name, **settings)
        for name, settings in BACKTEST_VARIANTS.items()
    }
    logger.info(
        "backtest on %d %s months (%s .. %s), model v%s, policy %s",
        len(dates), split, dates[0].date(), dates[-1].date(), version.version, policy.version,
    )  # fmt: skip
    results = backtest_limits(
        snapshots, dates, lake.read_tables(LIMIT_TABLES), model, str(version.version), policies
    )
    summary = summarise_backtest(results)
    partition = f"{dates[0].date()}_{dates[-1].date()}"
    lake.write_output("limit_backtest", partition, results)
    plot = lake.root / "outputs" / "limit_backtest" / f"{partition}.png"
    partial = plot.with_name(f".{plot.name}.partial")  # never a half-written picture
    with open_for_writing(partial, "wb") as fh:  # owner-only unless files are shared
        tradeoff_figure(summary).savefig(fh, dpi=110, format="png")
    partial.replace(plot)
    run_name = f"backtest {dates[0].date()}..{dates[-1].date()}"
    with registry.run(LIMITS_EXPERIMENT, run_name):
        mlflow.log_params(
            {"model_version": version.version, "policy_version": policy.version, "split": split}
        )
        for name, row in summary.iterrows():
            mlflow.log_metrics(
                {
                    f"{name}_avoided_share": float(row["avoided_share"]),
                    f"{name}_retained_share": float(row["retained_share"]),
                    f"{name}_increases_granted": float(row["increases_granted"]),
                }
            )
        mlflow.log_artifact(str(ctx.settings.policy_path), artifact_path="policy")
        mlflow.log_artifact(str(plot), artifact_path="backtest")
        with tempfile.TemporaryDirectory() as tmp:
            for frame, name in ((results, "by_date.csv"), (summary, "summary.csv")):
                spreadsheet_safe(frame).to_csv(Path(tmp) / name)
                mlflow.log_artifact(str(Path(tmp) / name), artifact_path="backtest")
    return summary.assign(plot=str(plot))
