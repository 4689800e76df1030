"""`solvency demo`: every pipeline step on a generated book, as a new user first sees it."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.app import LakeOption, app, run_context
from flows.cli.daily_commands import monitoring, print_action_summary, rescore
from flows.cli.data_commands import DEMO_END, generate, ingest, status, training_set
from flows.cli.model_commands import promote, train
from flows.cli.output import OUT


@app.command()
def demo(
    buyers: Annotated[
        int, typer.Option("--buyers", min=10, help="Buyers in the demo book.")
    ] = 5000,
    months: Annotated[
        int, typer.Option("--months", help="Months of history (the time split needs about 41).")
    ] = 48,
    dirty: Annotated[float, typer.Option("--dirty", help="Fraction of bad rows injected.")] = 0.002,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Regenerate the demo data and rebuild the lake.")
    ] = False,
    demo_dir: Annotated[
        Path | None,
        typer.Option(
            "--demo-dir", help="Where the demo portfolio is written (env SOLVENCY_DEMO_DIR)."
        ),
    ] = None,
    days: Annotated[
        int, typer.Option("--days", min=1, help="Daily runs backfilled up to the demo's end.")
    ] = 14,
    lake: LakeOption = None,
) -> None:
    """Run every pipeline step on a generated demo portfolio: generate, ingest, training
    set, train and promote, then a backfill of daily rescoring runs with new data each day
    (scores, limit recommendations, alerts, monitoring)."""
    from data.drops import split_daily_drops

    end = dt.date.fromisoformat(DEMO_END)
    ctx = run_context(end, lake_dir=lake, demo_dir=demo_dir)
    settings, lake, demo_dir = ctx.settings, ctx.settings.lake_dir, ctx.settings.demo_dir
    base = end - dt.timedelta(days=days)
    drops = demo_dir / "drops"
    if fresh:
        shutil.rmtree(demo_dir, ignore_errors=True)
        shutil.rmtree(lake, ignore_errors=True)
        if settings.mlflow_uri.startswith("sqlite:///"):  # a local store: start it over too
            Path(settings.mlflow_uri.removeprefix("sqlite:///")).unlink(missing_ok=True)
            if settings.mlflow_artifacts is not None:
                shutil.rmtree(settings.mlflow_artifacts, ignore_errors=True)
    if not (demo_dir / "buyers.parquet").exists():
        OUT.rule("1. generate the demo portfolio")
        generate(out=demo_dir, buyers=buyers, months=months, seed=42, dirty=dirty,
                 end=DEMO_END, default_rate=0.03, fmt="parquet")  # fmt: skip
    else:
        OUT.line(f"demo portfolio already in {demo_dir} (use --fresh to regenerate)")
    plan = split_daily_drops(demo_dir, base, end, drops)
    OUT.line(
        f"split into what was known on {base} ({drops / 'base'}) and {len(plan.days)} daily "
        f"drops up to {end} ({drops}/<date>/)"
    )
    OUT.rule(f"2. ingest the book as known on {base}")
    ingest(source=plan.base_dir, lake=lake, load_date=base.isoformat())
    status(lake=lake)
    OUT.rule("3. labelled training set with its time split")
    training_set(start=None, end=None, lake=lake)
    OUT.rule("4. train and validate PD models (MLflow), promote the challenger")
    train(lake=lake, truth=demo_dir / "_truth", register="lightgbm")
    try:
        promote(force=None, tolerance=0.005)
    except typer.Exit:
        OUT.line("the current champion stays (see the gate's reasons above)")
    first = base + dt.timedelta(days=1)
    OUT.rule(f"5. daily rescoring {first} .. {end}, ingesting each day's drop")
    rescore(as_of="", start=first.isoformat(), end=DEMO_END, drop_dir=drops, policy=None,
            lake=lake)  # fmt: skip
    monitoring(lake=lake)
    OUT.rule(f"6. credit-limit recommendations as of {DEMO_END}")
    store = ctx.store
    print_action_summary(store.read(DEMO_END, "recommendations"))
    OUT.rule("results")
    for label, value in (
        ("Limit recommendations report", store.path(DEMO_END, "recommendations.html")),
        ("Monitoring report", store.path(DEMO_END, "monitoring.html")),
        ("Monitoring history", store.root / "history.html"),
        ("Demo data", demo_dir),
        ("Lake", lake),
        ("Daily outputs", store.root),
        ("MLflow", f"{settings.mlflow_uri} (`uv run mlflow ui --backend-store-uri "
                   f"{settings.mlflow_uri}`)"),
    ):  # fmt: skip
        OUT.line(f"{label + ':':<30}{value}")
    OUT.line(
        "Quarantined rows: `solvency quarantine`. Re-running the demo is idempotent: the same "
        "files are not loaded twice and each date's outputs are replaced as a unit."
    )
