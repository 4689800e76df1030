"""Commands of the risk analysts: train, promote, rollback and the limit policy backtest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.app import LakeOption, app, cli_date, fail, run_context
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
    """Validate the scorecard and LightGBM PD models on rolling-origin out-of-time folds,
    refit them on every matured row, and register the production refit as the challenger."""
    from flows.train import train_flow

    ctx = run_context(lake_dir=lake)
    try:
        result = train_flow(ctx, truth, register)
    except ValueError as exc:
        fail(f"cannot train: {exc}")
    headline = ("auc", "gini", "brier", "ece", "observed_to_predicted", "oracle_auc")
    folds = int(result.models[0].metrics.get("folds", 1))
    OUT.table(
        f"Out-of-time validation: latest of {folds} rolling-origin folds (mean over the folds)",
        ("model", *("obs/pred" if k == "observed_to_predicted" else k for k in headline),
         "light", "registered"),
        [
            (
                m.kind,
                *(_with_mean(m.metrics, k) for k in headline),
                m.traffic_light,
                f"v{m.registered_version} (production refit)" if m.registered_version else "",
            )
            for m in result.models
        ],
        right=("auc", "gini", "brier", "ece", "obs/pred", "oracle_auc"),
    )  # fmt: skip
    OUT.line(result.plan)
    OUT.line(
        f"rows: {', '.join(f'{k} {v:,}' for k, v in result.rows.items())}; MLflow run "
        f"{result.parent_run_id} at {ctx.settings.mlflow_uri}"
    )


def _with_mean(metrics: dict[str, float], name: str) -> str:
    """'0.781 (0.770)': the latest fold's figure and the mean over the folds, if recorded."""
    if name not in metrics:
        return "–"
    mean = metrics.get(f"mean_{name}")
    return f"{metrics[name]:.3f}" + (f" ({mean:.3f})" if mean is not None else "")


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
def recalibrate(
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Date whose matured cohorts set the level (default: today)."),
    ] = None,
    cohorts: Annotated[
        int | None,
        typer.Option("--cohorts", min=1, help="Matured month-end cohorts (default: monitoring's)."),
    ] = None,
    lake: LakeOption = None,
) -> None:
    """Refit only the champion's intercept on its latest matured cohorts (the level drifted,
    the ranking holds) and register the result as the challenger; `solvency promote` next."""
    from flows.train import recalibrate_flow
    from models.registry import NoChampionError

    ctx = run_context(lake_dir=lake, as_of=cli_date(as_of, "--as-of"))
    try:
        result = recalibrate_flow(ctx, cohorts)
    except (NoChampionError, ValueError) as exc:
        fail(f"cannot recalibrate: {exc}")
    names = ("auc", "mean_pd", "default_rate", "observed_to_predicted", "light")
    OUT.table(
        f"Champion v{result.champion} on its matured cohorts {result.cohorts} "
        f"({result.rows:,} buyers, {result.defaults:,} defaults)",
        ("", "AUC", "mean PD", "default rate", "obs/pred", "light"),
        [
            (side, *(v if isinstance(v, str) else f"{v:.4f}" for v in (f[n] for n in names)))
            for side, f in (("before", result.before), ("after", result.after))
        ],
        right=("AUC", "mean PD", "default rate", "obs/pred"),
    )
    OUT.success(
        f"log-odds moved by {result.delta:+.4f}; registered as v{result.registered_version} "
        "(challenger): `solvency promote` puts it through the gate"
    )


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
