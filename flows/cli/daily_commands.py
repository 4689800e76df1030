"""Commands of operations and underwriters: the daily rescoring (and its partial runs
`score` and `recommend`), the published recommendations, monitoring and the schedules."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.app import LakeOption, app, cli_date, fail, run_context, settings
from flows.cli.output import OUT, compact_money

AsOfOption = Annotated[
    str,
    typer.Option("--as-of", help="As-of date (YYYY-MM-DD); default today in the settings' zone."),
]
PolicyOption = Annotated[
    Path | None,
    typer.Option("--policy", help="Limit policy file (default: the policy_path setting)."),
]
ReplaceOption = Annotated[
    bool,
    typer.Option(
        "--replace", help="Replace the date's fuller published outputs with this smaller run."
    ),
]


def run_daily(ctx, steps):
    """One daily flow run, after bounding Prefect's result cache (`prune_result_cache`); the
    failures an operator can fix become one red line (a run of the date already going, no
    usable champion: the app's `Commands`; a smaller run: here)."""
    from flows.daily import SmallerRunError, rescore_flow_for
    from flows.runtime import prune_result_cache

    prune_result_cache(ctx.settings)
    try:
        return rescore_flow_for(ctx.settings)(ctx, steps)
    except SmallerRunError as exc:
        fail(f"the run of {ctx.day} stopped: {exc}")


@app.command()
def score(
    as_of: AsOfOption = "",
    top: Annotated[int, typer.Option("--top", help="Riskiest buyers to list.")] = 10,
    replace: ReplaceOption = False,
    lake: LakeOption = None,
) -> None:
    """Score every buyer with the champion: PD, grade and reason codes for every buyer.

    The daily rescoring with only its scoring step (no drop, limits, alerts or monitoring),
    published in the per-date output store like any run."""
    from flows.daily import SCORE_ONLY
    from models.master_scale import MASTER_SCALE

    ctx = run_context(cli_date(as_of, "--as-of"), lake_dir=lake)
    steps = SCORE_ONLY if not replace else _replacing(SCORE_ONLY)
    result = run_daily(ctx, steps)
    scores = ctx.store.read(result.as_of, "scores")
    bands = MASTER_SCALE.scale_frame().set_index("grade")
    rows = []
    for grade, group in scores.groupby("grade"):
        band = bands.loc[grade]
        rows.append(
            (str(grade),
             "in default" if grade == MASTER_SCALE.default_grade
             else f"{band['pd_lower']:.2%} – {band['pd_upper']:.2%}",
             f"{len(group):,}", f"{len(group) / len(scores):.1%}", f"{group['pd'].mean():.2%}")
        )  # fmt: skip
    OUT.table(
        f"{len(scores):,} buyers by grade (model v{scores['model_version'].iat[0]})",
        ("grade", "PD band", "buyers", "share", "mean PD"),
        rows,
        right={"grade", "PD band", "buyers", "share", "mean PD"},
    )
    worst = scores.loc[scores["grade"] < MASTER_SCALE.default_grade].nlargest(top, "pd")
    OUT.table(
        f"Top {len(worst)} PDs (not yet in default) and why",
        ("buyer", "PD", "grade", "reasons"),
        [
            (
                str(r.buyer_id),
                f"{r.pd:.2%}",
                str(r.grade),
                "; ".join(
                    t
                    for t in (r.reason_1_text, r.reason_2_text, r.reason_3_text)
                    if isinstance(t, str)
                ),
            )
            for r in worst.itertuples()
        ],
        right={"PD", "grade"},
    )
    OUT.line(f"scores: {ctx.store.path(result.as_of, 'scores.parquet')}")


def _replacing(steps):
    import dataclasses

    return dataclasses.replace(steps, replace=True)


def print_action_summary(recs) -> None:
    """Pairs, buyers, cover and expected loss by action (the underwriters' overview)."""
    from models.limits.report import summary_by

    summary = summary_by(recs, "action")
    model_version = recs["model_version"].iat[0] if len(recs) else "-"
    policy_version = recs["policy_version"].iat[0] if len(recs) else "-"
    numbers = ("pairs", "buyers", "cover before", "cover after", "change",
               "EL before", "EL after", "to a human")  # fmt: skip
    actions = list(summary.index)
    OUT.table(
        f"Limit recommendations, EUR (model v{model_version}, policy {policy_version})",
        ("action", *numbers),
        [
            (
                str(action),
                f"{int(r['pairs']):,}",
                f"{int(r['buyers']):,}",
                compact_money(r["limit_before"]),
                compact_money(r["limit_after"]),
                compact_money(r["change"]),
                compact_money(r["expected_loss_before"]),
                compact_money(r["expected_loss_after"]),
                f"{int(r['human_required']):,}",
            )
            for action, r in summary.iterrows()
        ],
        right=numbers,
        sections={actions.index("maintain")} if "maintain" in actions else (),
    )


@app.command()
def recommend(
    as_of: AsOfOption = "",
    policy: PolicyOption = None,
    replace: ReplaceOption = False,
    lake: LakeOption = None,
) -> None:
    """Recommend an action for every credit limit (increase, decrease, maintain, cancel,
    refer) from the champion's scores and the limit policy; publish table, CSV and report.

    The daily rescoring without the drop, alerts and monitoring steps."""
    from flows.daily import RECOMMEND_ONLY

    ctx = run_context(cli_date(as_of, "--as-of"), lake_dir=lake, policy_path=policy)
    result = run_daily(ctx, RECOMMEND_ONLY if not replace else _replacing(RECOMMEND_ONLY))
    recs = ctx.store.read(result.as_of, "recommendations")
    print_action_summary(recs)
    OUT.line(
        f"report: {result.recommendations_html}\n"
        f"table:  {ctx.store.path(result.as_of, 'recommendations.parquet')}\n"
        f"CSV:    {ctx.store.path(result.as_of, 'recommendations.csv')}"
    )


@app.command()
def recommendations(
    as_of: Annotated[
        str, typer.Option("--as-of", help="As-of date (YYYY-MM-DD); default the latest.")
    ] = "",
    action: Annotated[
        str | None,
        typer.Option(
            "--action", help="Only this action: increase, decrease, maintain, cancel, refer."
        ),
    ] = None,
    buyer: Annotated[str | None, typer.Option("--buyer", help="Only this buyer_id.")] = None,
    top: Annotated[int, typer.Option("--top", help="Rows to show, by review priority.")] = 20,
    lake: LakeOption = None,
) -> None:
    """Show published limit recommendations, most urgent first (review-queue order)."""
    import pandas as pd

    from models.limits.policy import ACTIONS

    if action is not None and action not in ACTIONS:
        raise typer.BadParameter(
            f"'{action}' is not one of {', '.join(ACTIONS)}", param_hint="--action"
        )
    wanted = cli_date(as_of, "--as-of")
    store = run_context(lake_dir=lake).store
    dates = store.dates_with("recommendations.parquet")
    if not dates:
        fail("no recommendations published yet: run `solvency rescore` or `solvency recommend`")
    date = wanted.isoformat() if wanted else dates[-1]
    if date not in dates:
        fail(f"no recommendations for {date}; published: {', '.join(dates[-10:])}")
    recs = store.read(date, "recommendations")
    if action:
        recs = recs.loc[recs["action"] == action]
    if buyer:
        recs = recs.loc[recs["buyer_id"] == buyer]
    shown = recs.sort_values("priority").head(top)
    OUT.table(
        f"{len(shown)} of {len(recs):,} recommendations as of {date} (EUR)",
        (
            "#",
            "policyholder",
            "buyer",
            "grade",
            "action",
            "limit",
            "recommended",
            "reasons",
            "explanation",
        ),
        [
            (
                str(r.priority),
                r.policyholder_id,
                r.buyer_id,
                "–"
                if pd.isna(r.grade)
                else f"{'' if pd.isna(r.previous_grade) else f'{r.previous_grade}→'}{r.grade}",
                r.action if r.action == r.proposed_action else f"{r.action} ({r.proposed_action})",
                compact_money(r.limit_amount),
                compact_money(r.recommended_amount),
                r.reason_codes.replace("|", " "),
                r.explanation,
            )
            for r in shown.itertuples()
        ],
        right={"#", "grade", "limit", "recommended"},
    )
    OUT.line(f"report: {store.path(date, 'recommendations.html')}")


@app.command()
def rescore(
    as_of: AsOfOption = "",
    start: Annotated[
        str, typer.Option("--from", help="Backfill: first as-of date (with --to).")
    ] = "",
    end: Annotated[str, typer.Option("--to", help="Backfill: last as-of date.")] = "",
    drop_dir: Annotated[
        Path | None,
        typer.Option(
            "--drop-dir",
            help="Folder of daily input drops <DIR>/<YYYY-MM-DD>/ ingested first "
            "(default: the drop_dir setting, SOLVENCY_DROP_DIR).",
        ),
    ] = None,
    policy: PolicyOption = None,
    lake: LakeOption = None,
) -> None:
    """The daily rescoring: ingest the day's drop, features, scores, limit recommendations,
    alerts and monitoring, published as one unit per date. --from/--to backfills."""
    from flows.daily import DailySteps, failed_drop_files

    if bool(start) != bool(end):
        raise typer.BadParameter("--from and --to go together", param_hint="--from/--to")
    first, last = cli_date(start, "--from"), cli_date(end, "--to")
    if first and first > last:
        raise typer.BadParameter(f"--from {first} is after --to {last}", param_hint="--from")
    ctx = run_context(
        cli_date(as_of, "--as-of") or first, lake_dir=lake, drop_dir=drop_dir, policy_path=policy
    )
    days = [
        ctx.as_of + dt.timedelta(days=k) for k in range(((last or ctx.as_of) - ctx.as_of).days + 1)
    ]
    rows, result, failures = [], None, []
    for day in days:
        result = run_daily(ctx.on(day), DailySteps())
        s, a = result.summary, result.summary["actions"]
        if failed_drop_files(s):
            failures.append(f"{result.as_of}: files not loaded: {failed_drop_files(s)}")
        bad = s.get("quarantined_rows", 0)
        inputs = "missing" if s.get("inputs_missing") else (
            f"{s.get('rows', 0):,}" + (f" ({bad:,} bad)" if bad else "")
            if ctx.settings.drop_dir else "–"
        )  # fmt: skip
        rows.append(
            (result.as_of, f"{s['buyers']:,}", f"v{s['model_version']}", f"{a['increase']:,}",
             f"{a['decrease']:,}", f"{a['cancel']:,}", f"{a['refer']:,}",
             f"{s['alerts_total']:,}", "–" if s["score_psi"] is None else f"{s['score_psi']:.3f}",
             inputs)
        )  # fmt: skip
    numbers = ("buyers", "model", "up", "down", "cancel", "refer", "alerts", "PSI", "new rows")
    OUT.table(
        f"Daily rescoring, {len(days)} date(s): actions on limits, alerts, score PSI",
        ("as of", *numbers),
        rows,
        right=numbers,
    )
    if result is not None:
        OUT.line(f"latest outputs:    {result.pointer}")
        OUT.line(f"limit report:      {result.recommendations_html}")
        OUT.line(f"monitoring report: {result.monitoring_html}")
    if failures:  # published from what loaded, but a scheduler must see the failure
        for failure in failures:
            OUT.error(failure)
        OUT.error("see `solvency quarantine` and the run log; fix the files and rerun the date")
        raise typer.Exit(1)


@app.command()
def monitoring(lake: LakeOption = None) -> None:
    """Write the monitoring history report across every published daily run."""
    from flows.daily import monitoring_history_flow

    try:
        path = monitoring_history_flow(run_context(lake_dir=lake))
    except RuntimeError as exc:
        fail(str(exc))
    OUT.line(f"monitoring history: {path}")


@app.command()
def serve(
    daily_time: Annotated[
        str | None,
        typer.Option("--time", help="Local time of the daily rescoring (HH:MM; default: setting)."),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option("--timezone", help="IANA time zone of the schedules (default: setting)."),
    ] = None,
) -> None:
    """Serve the scheduled deployments (daily rescore, monthly retrain, weekly monitoring
    report) against the Prefect API in PREFECT_API_URL; stops with Ctrl-C."""
    import dataclasses

    from prefect import serve as prefect_serve

    from flows.deployments import build_deployments
    from flows.settings import SettingsError

    given = {"daily_time": daily_time, "timezone": timezone}
    try:
        served = dataclasses.replace(settings(), **{k: v for k, v in given.items() if v})
    except SettingsError as exc:
        raise typer.BadParameter(str(exc), param_hint="--time/--timezone") from None
    deployments = build_deployments(served)
    for d in deployments:
        schedule = d.schedules[0].schedule
        OUT.line(f"{d.name}: cron '{schedule.cron}' ({schedule.timezone})")
    prefect_serve(*deployments)
