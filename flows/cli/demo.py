"""`solvency demo`: every pipeline step on a generated book, as a new user first sees it."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.app import LakeOption, app, run_context
from flows.cli.daily_commands import monitoring, print_action_summary, run_daily
from flows.cli.data_commands import DEMO_END, generate, ingest, status, training_set
from flows.cli.model_commands import backtest_limits, promote, train
from flows.cli.output import OUT

#: The demo's underwriter decides the most urgent items of each day's queue, up to this many.
UNDERWRITER_PER_DAY = 25
UNDERWRITER = "demo-underwriter"
#: The scripted underwriter leaves the queue of the demo's last days to the person trying
#: the workbench.
LEFT_FOR_YOU_DAYS = 3


def demo_underwriter(store):
    """The demo's underwriter account (added on first use, authority EUR 5 M)."""
    return store.user(UNDERWRITER) or store.add_user(
        UNDERWRITER, "underwriter", authority_amount=5_000_000
    )


def scripted_underwriter(ctx, store) -> int:
    """The demo's underwriter: decides the day's most urgent queue items by the stated rule
    of `models.limits.decisions.scripted_answers`; already decided items are left alone, so
    a rerun of the demo decides nothing twice."""
    from flows.underwriting import decide
    from models.limits.decisions import scripted_answers

    demo_underwriter(store)
    done = store.decisions(decided_by=UNDERWRITER, since=ctx.as_of, until=ctx.as_of)
    budget = max(0, UNDERWRITER_PER_DAY - len(done))  # a rerun of the day decides no more
    today = store.open_proposals(as_of=ctx.as_of, human_required=True)
    answers = scripted_answers(today.head(budget), ctx.policy.increase.max_grade)
    for answer in answers.itertuples():
        decide(ctx, store, int(answer.id), outcome=answer.outcome, user=UNDERWRITER,
               reason=answer.reason)  # fmt: skip
    return len(answers)


def daily_loop(ctx, first: dt.date, last: dt.date) -> None:
    """Day by day: the daily run (drop, rescoring, proposals, automatic decisions), then the
    scripted underwriter (but on the last `LEFT_FOR_YOU_DAYS` days); one line per day with
    the loop's figures."""
    from flows.daily import DailySteps

    rows, result = [], None
    for k in range((last - first).days + 1):
        day_ctx = ctx.on(first + dt.timedelta(days=k))
        result = run_daily(day_ctx, DailySteps())
        scripted = day_ctx.as_of <= last - dt.timedelta(days=LEFT_FOR_YOU_DAYS)
        decided = scripted_underwriter(day_ctx, day_ctx.decisions) if scripted else 0
        s = result.summary
        queue = len(day_ctx.decisions.open_proposals(human_required=True))
        rows.append(
            (day_ctx.day, f"{s['limits']:,}", f"{s['proposals']:,}", f"{s['automatic']:,}",
             f"{s['queue_new_today']:,}", f"{decided:,}", f"{queue:,}",
             f"{s['alerts_total']:,}",
             "–" if s["score_psi"] is None else f"{s['score_psi']:.3f}",
             f"{s.get('rows', 0):,}" + (f" ({s['quarantined_rows']:,} bad)"
                                         if s.get("quarantined_rows") else ""))
        )  # fmt: skip
    numbers = ("limits", "proposals", "automatic", "to a human", "decided", "queue left",
               "alerts", "PSI", "new rows")  # fmt: skip
    OUT.table(
        "The daily loop: proposals, automatic decisions, the underwriter's queue",
        ("as of", *numbers),
        rows,
        right=numbers,
    )
    if result is not None:
        OUT.line(f"latest outputs:    {result.pointer}")


def workbench_account(store) -> str | None:
    """The demo underwriter's workbench password: made (and returned, to be shown once) the
    first time; None when it has one already."""
    from flows.web.auth import hash_password, new_password

    if demo_underwriter(store).password_hash:
        return None
    password = new_password()
    store.set_password_hash(UNDERWRITER, hash_password(password))
    return password


@app.command()
def demo(
    buyers: Annotated[
        int, typer.Option("--buyers", min=10, help="Buyers in the demo book.")
    ] = 5000,
    months: Annotated[
        int, typer.Option("--months", help="Months of history (training needs 46 or more).")
    ] = 52,
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
        if settings.decision_db_url.startswith("sqlite:///"):  # and the decisions on it
            database = Path(settings.decision_db_url.removeprefix("sqlite:///"))
            for suffix in ("", "-wal", "-shm"):
                database.with_name(database.name + suffix).unlink(missing_ok=True)
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
    from models.registry import CHAMPION

    champion = ctx.registry.version_by_alias(CHAMPION)
    if champion is None:
        try:
            promote(force=None, tolerance=0.005)
        except typer.Exit:
            OUT.line("the current champion stays (see the gate's reasons above)")
    else:
        # A rerun replays the same days: a new champion would propose (and decide) anew.
        OUT.line(
            f"the demo keeps champion v{champion.version} so a rerun replays the same days; "
            "`solvency promote` puts the new challenger through the gate"
        )
    first = base + dt.timedelta(days=1)
    OUT.rule(
        f"5. the daily loop {first} .. {end}: each day's drop, rescoring, automatic decisions, "
        f"and an underwriter deciding up to {UNDERWRITER_PER_DAY} queue items a day (the last "
        f"{LEFT_FOR_YOU_DAYS} days are left for you in the workbench)"
    )
    daily_loop(run_context(first, lake_dir=lake, drop_dir=drops), first, end)
    monitoring(lake=lake)
    OUT.rule(f"6. credit-limit recommendations as of {DEMO_END}")
    store = ctx.store
    print_action_summary(store.read(DEMO_END, "recommendations"))
    OUT.rule("7. decision value: the loop replayed on the out-of-time months")
    backtest_limits(policy=None, lake=lake)
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
    OUT.rule("the underwriters' workbench")
    password = workbench_account(ctx.decisions)
    address = f"http://{settings.web_host}:{settings.web_port}/"
    waiting = len(ctx.decisions.open_proposals(human_required=True))
    OUT.line(
        f"The scripted underwriter left the last {LEFT_FOR_YOU_DAYS} days to you: {waiting} "
        f"item(s) wait in the queue. Start the workbench with `uv run solvency ui` and open "
        f"{address}"
    )
    if password:
        OUT.line(f"Sign in as {UNDERWRITER} with the password {password} (shown this once; "
                 f"`solvency users password {UNDERWRITER}` sets a new one).")  # fmt: skip
    else:
        OUT.line(f"Sign in as {UNDERWRITER} (its password was shown by the first demo run; "
                 f"`solvency users password {UNDERWRITER}` sets a new one).")  # fmt: skip
    OUT.line("More accounts: `solvency users add NAME --role underwriter|analyst|viewer "
             "--authority EUR`; API tokens: `solvency users token NAME`.")  # fmt: skip
