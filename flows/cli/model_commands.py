"""Commands of the risk analysts: train, promote, rollback and the limit policy backtest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.app import LakeOption, app, fail, run_context
from flows.cli.output import OUT, compact_money


@app.command()
def train(
    lake: LakeOption = None,
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth",
            help="Generator truth folder (_truth/) for the oracle AUC; generated data only.",
        ),
    ] = None,
    register: Annotated[
        str,
        typer.Option(
            "--register", help="Model kind registered as challenger: lightgbm or scorecard."
        ),
    ] = "lightgbm",
) -> None:
    """Train and validate the scorecard and LightGBM PD models; register the challenger in MLflow."""
    from flows.train import train_flow

    ctx = run_context(lake_dir=lake)
    try:
        result = train_flow(ctx, truth, register)
    except ValueError as exc:
        fail(f"cannot train: {exc}")
    headline = ("auc", "gini", "brier", "ece", "psi", "oracle_auc")
    OUT.table(
        "Out-of-time validation (test split)",
        ("model", *headline, "light", "registered"),
        [
            (
                m.kind,
                *(f"{m.metrics[k]:.3f}" if k in m.metrics else "–" for k in headline),
                m.traffic_light,
                f"v{m.registered_version}" if m.registered_version else "",
            )
            for m in result.models
        ],
        right=headline,
    )
    OUT.line(
        f"rows per split: {result.rows}; MLflow run {result.parent_run_id} at "
        f"{ctx.settings.mlflow_uri}"
    )


@app.command()
def promote(
    force: Annotated[
        str | None,
        typer.Option("--force", help="Promote even if the gate refuses; give the reason."),
    ] = None,
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="Largest AUC loss against the champion allowed.")
    ] = 0.005,
) -> None:
    """Make the challenger the champion if it passes the gate (AUC and calibration on out-of-time data)."""
    from flows.train import promote_flow

    try:
        decision, move = promote_flow(run_context().registry, tolerance, force)
    except LookupError as exc:
        fail(str(exc))
    OUT.line(decision.summary())
    if move is None:
        fail('champion unchanged (use --force "reason" to override)')
    OUT.success(f"champion is now version {move.version} (was {move.previous or 'none'})")


@app.command()
def rollback(
    version: Annotated[
        str | None,
        typer.Option(
            "--version", help="Version to point the champion at (default: the previous one)."
        ),
    ] = None,
    reason: Annotated[
        str, typer.Option("--reason", help="Why (recorded on the model version).")
    ] = "rollback",
) -> None:
    """Point the champion alias back at an earlier model version."""
    from flows.train import rollback_flow

    try:
        move = rollback_flow(run_context().registry, version, reason)
    except LookupError as exc:
        fail(str(exc))
    OUT.line(f"champion is now version {move.version} (was {move.previous})")


@app.command("backtest-limits")
def backtest_limits(
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="Limit policy file (default: the policy_path setting)."),
    ] = None,
    lake: LakeOption = None,
) -> None:
    """Decision value of the limit policy on the out-of-time months: cover avoided on buyers
    that default within the label's horizon vs cover retained on the others, for a few
    settings."""
    from features.labels import DEFAULT_DEFINITION
    from flows.limits import limit_backtest_flow
    from models.registry import NoChampionError

    ctx = run_context(lake_dir=lake, policy_path=policy)
    try:
        summary = limit_backtest_flow(ctx)
    except (NoChampionError, RuntimeError) as exc:
        fail(f"cannot backtest: {exc}")
    first = summary.iloc[0]
    numbers = ("defaulter cover", "avoided", "performing cover", "retained", "increases",
               "to defaulters", "proposals/date", "automatic", "to a human/date")  # fmt: skip
    OUT.table(
        f"Decision loop backtest, {int(first['dates'])} out-of-time months, "
        f"model v{first['model_version']} (vs the book unchanged; EUR)",
        ("policy", *numbers),
        [
            (
                str(name),
                compact_money(r["defaulter_cover"]),
                f"{r['avoided_share']:.1%}",
                compact_money(r["performing_cover"]),
                f"{r['retained_share']:.1%}",
                compact_money(r["increases_granted"]),
                compact_money(r["increases_to_defaulters"]),
                f"{r['proposals'] / r['dates']:,.0f}",
                f"{r['automatic_share']:.0%}",
                f"{r['to_a_human_per_date']:,.0f}",
            )
            for name, r in summary.iterrows()
        ],
        right=numbers,
    )
    horizon = DEFAULT_DEFINITION.horizon_months
    OUT.line(
        f"avoided = share of the cover on buyers defaulting within {horizon} months no longer "
        "in force on their default date; retained = share of the cover on the other buyers "
        "still in force once the decisions took effect (after the notice period). The loop "
        "runs month by month: automatic decisions as proposed, referred ones by the stated "
        "underwriter rule (cuts accepted, increases at good grades granted, the rest "
        "refused); buyers already in default apart. Starting book: each pair's first limit "
        "above 0 in the lake (a defaulted buyer's cover before its cancellation)."
    )
    OUT.line(f"trade-off plot: {first['plot']}")
