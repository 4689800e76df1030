"""The `solvency` command line: generate a demo book, ingest files, inspect the lake.

Heavy imports (Prefect, the generator) happen inside the commands, so `--help` is instant.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flows.settings import Settings, SettingsError

app = typer.Typer(
    name="solvency",
    help="Buyer solvency scoring and monitoring for trade credit insurance.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
console = Console()
#: The environment as the command found it (before the settings export PREFECT_API_URL).
_ENVIRONMENT_AT_START = dict(os.environ)
try:
    SETTINGS = Settings.from_env()
except SettingsError as exc:  # a bad SOLVENCY_* value or config file: say which, no traceback
    sys.exit(f"solvency: {exc}")
SETTINGS.export_prefect()
#: The demo book ends here; features and the load date use it so the demo is reproducible.
DEMO_END = "2026-11-30"

LakeOption = Annotated[
    Path,
    typer.Option("--lake", help="Lake folder (env SOLVENCY_LAKE).", show_default=True),
]


def _parse_date(value: str | None) -> dt.date | None:
    """The date given on the command line; None when the option was left empty."""
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"'{value}' is not a date in YYYY-MM-DD form") from exc


@app.command("settings")
def show_settings() -> None:
    """Show the effective settings, each with where it comes from (default, the file named
    by SOLVENCY_CONFIG, or an environment variable); see config/production.toml."""
    from dataclasses import asdict

    from flows.settings import ENVIRONMENT

    config = _ENVIRONMENT_AT_START.get("SOLVENCY_CONFIG")
    table = Table(
        title=f"solvency settings (config file: {config or 'none, SOLVENCY_CONFIG unset'})"
    )
    for column in ("setting", "value", "variable", "from"):
        table.add_column(column, overflow="fold")
    sources = Settings.sources(_ENVIRONMENT_AT_START)
    for name, value in asdict(SETTINGS).items():
        shown = "[dim]unset[/dim]" if value is None else str(value)
        table.add_row(name, shown, ENVIRONMENT[name], sources[name])
    console.print(table)


@app.command()
def generate(
    out: Annotated[
        Path, typer.Option("--out", help="Folder to write the portfolio's tables to.")
    ] = SETTINGS.demo_dir,
    buyers: Annotated[int, typer.Option("--buyers", min=10, help="Number of buyers.")] = 5000,
    months: Annotated[
        int, typer.Option("--months", min=1, max=240, help="Months of history.")
    ] = 24,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed: same seed, same portfolio.")
    ] = 42,
    dirty: Annotated[
        float,
        typer.Option("--dirty", min=0.0, max=0.5, help="Fraction of bad rows to inject per table."),
    ] = 0.0,
    end: Annotated[
        str, typer.Option("--end", help="Last day covered by the portfolio (YYYY-MM-DD).")
    ] = "2026-11-30",
    default_rate: Annotated[
        float,
        typer.Option("--default-rate", min=0.001, max=0.2, help="Target annual default rate."),
    ] = 0.03,
    fmt: Annotated[str, typer.Option("--format", help="File format: parquet or csv.")] = "parquet",
) -> None:
    """Generate a synthetic credit-insurance portfolio (buyers, statements, invoices, events,
    policies, limits, country risk) plus a `_truth/` folder the pipeline never ingests."""
    from data.generator import GeneratorConfig, generate_portfolio, write_portfolio

    if fmt not in ("parquet", "csv"):
        raise typer.BadParameter("--format must be parquet or csv")
    config = GeneratorConfig(
        n_buyers=buyers,
        months=months,
        seed=seed,
        dirty_fraction=dirty,
        end_date=_parse_date(end),
        annual_default_rate=default_rate,
    )
    started = time.perf_counter()
    with console.status("generating…") as status:
        portfolio = generate_portfolio(config, progress=lambda msg: status.update(msg))
        status.update(f"writing {fmt} files to {out}")
        paths = write_portfolio(portfolio, out, fmt=fmt)
    table = Table(title=f"Portfolio written to {out} ({time.perf_counter() - started:.1f} s)")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, frame in portfolio.tables.items():
        table.add_row(name, f"{len(frame):,}")
    console.print(table)
    console.print(f"{len(paths)} files; truth (never ingested) in {out / '_truth'}")


@app.command()
def ingest(
    source: Annotated[
        Path, typer.Argument(help="Folder with <table>.csv / <table>.parquet files.")
    ],
    lake: LakeOption = SETTINGS.lake_dir,
    load_date: Annotated[
        str | None,
        typer.Option("--load-date", help="Date of this load (YYYY-MM-DD); default today."),
    ] = None,
) -> None:
    """Validate source files against the data contracts and load them into the lake.

    Bad rows go to quarantine with their reason; the same file is never loaded twice;
    a corrected file supersedes earlier rows with the same keys. Exits 1 if a file failed.
    """
    from data.ingest import reports_frame
    from flows.ingest import ingest_flow

    if not source.is_dir():
        console.print(f"[red]source folder not found: {source}[/red]")
        raise typer.Exit(2)
    reports = ingest_flow(source, lake, _parse_date(load_date))
    _print_reports(reports_frame(reports))
    failed = [r for r in reports if r.status == "failed"]
    for report in failed:
        console.print(f"[red]failed[/red] {report.source}: {report.message}")
    console.print(f"lake: {lake}  (see `solvency quarantine --lake {lake}` for bad rows)")
    if failed:
        raise typer.Exit(1)


def _print_reports(frame) -> None:
    table = Table(title="Ingestion summary")
    for col in (
        "table",
        "file",
        "status",
        "read",
        "accepted",
        "quarantined",
        "superseded",
        "top reasons",
    ):
        table.add_column(
            col,
            justify="right" if col in ("read", "accepted", "quarantined", "superseded") else "left",
        )
    for r in frame.itertuples():
        table.add_row(
            r.table,
            Path(r.source).name,
            r.status,
            f"{r.rows_read:,}",
            f"{r.accepted:,}",
            f"{r.quarantined:,}",
            f"{r.superseded:,}",
            r.top_reasons or r.message,
        )
    console.print(table)


@app.command()
def quarantine(
    lake: LakeOption = SETTINGS.lake_dir,
    table: Annotated[str | None, typer.Option("--table", help="Only this table.")] = None,
    rows: Annotated[int, typer.Option("--rows", help="Also show this many quarantined rows.")] = 0,
) -> None:
    """Show quarantined rows by table, column and broken rule (and, with --rows, the rows)."""
    from data.ingest import quarantine_reasons
    from data.lake import QUARANTINE, Lake

    lk = Lake(lake)
    summary = quarantine_reasons(lk)
    if table:
        summary = summary[summary["table"] == table]
    if summary.empty:
        console.print("no quarantined rows")
        return
    out = Table(title=f"Quarantine in {lake}")
    for col in ("table", "column", "rule", "rows"):
        out.add_column(col, justify="right" if col == "rows" else "left")
    for r in summary.itertuples():
        out.add_row(r.table, r.column, r.rule, f"{r.rows:,}")
    console.print(out)
    if rows:
        detail = lk.read(QUARANTINE)
        if table:
            detail = detail[detail["table"] == table]
        cols = ["table", "source_file", "row_number", "column", "rule", "value"]
        console.print(detail[cols].head(rows).to_string(index=False))


@app.command()
def status(lake: LakeOption = SETTINGS.lake_dir) -> None:
    """What the lake holds: rows and files per table, and the loads so far."""
    import pyarrow.parquet as pq

    from data.lake import Lake

    lk = Lake(lake)
    manifest = lk.manifest()
    if not manifest.tables:
        console.print(f"the lake at {lake} is empty: run `solvency ingest DIR` first")
        return
    out = Table(title=f"Lake {lake} (manifest version {manifest.version})")
    for col in ("table", "rows", "files"):
        out.add_column(col, justify="left" if col == "table" else "right")
    for name, files in manifest.tables.items():
        n = sum(pq.ParquetFile(lk.root / f).metadata.num_rows for f in files)
        out.add_row(name, f"{n:,}", str(len(files)))
    console.print(out)
    console.print(f"{len(manifest.sources)} source file(s) ingested")


@app.command()
def features(
    as_of: Annotated[
        str, typer.Option("--as-of", help="As-of date (YYYY-MM-DD); default today.")
    ] = "",
    lake: LakeOption = SETTINGS.lake_dir,
) -> None:
    """Build point-in-time features of every buyer at an as-of date (lake output `features/`)."""
    import pandas as pd

    from flows.features import features_flow

    date = _parse_date(as_of) or dt.date.today()
    path = features_flow(lake, date.isoformat())
    frame = pd.read_parquet(path)
    _print_feature_summary(frame)
    console.print(f"features: {path}")


def _print_feature_summary(frame) -> None:
    from features.catalogue import CATALOGUE

    table = Table(title=f"Features of {len(frame):,} buyers: share missing by group")
    table.add_column("group")
    table.add_column("features", justify="right")
    table.add_column("missing", justify="right")
    groups: dict[str, list[str]] = {}
    for name, spec in CATALOGUE.items():
        groups.setdefault(spec.group, []).append(name)
    for group, names in groups.items():
        missing = frame[names].isna().to_numpy().mean()
        table.add_row(group, str(len(names)), f"{missing:.1%}")
    console.print(table)


@app.command()
def catalogue(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print as a Markdown table.")
    ] = False,
) -> None:
    """List every model feature: meaning, unit, source table and the direction that raises risk."""
    from features.catalogue import FEATURES, catalogue_markdown

    if markdown:
        print(catalogue_markdown())
        return
    table = Table(title=f"Feature catalogue ({len(FEATURES)} features)")
    for col in ("feature", "group", "unit", "source", "risk when higher", "description"):
        table.add_column(col)
    for f in FEATURES:
        table.add_row(f.name, f.group, f.unit, f.source, f.risk_direction, f.description)
    console.print(table)


@app.command("training-set")
def training_set(
    start: Annotated[
        str | None, typer.Option("--start", help="First as-of month (default: first data month).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Last as-of month (default: last known date).")
    ] = None,
    lake: LakeOption = SETTINGS.lake_dir,
) -> None:
    """Monthly labelled snapshots with a train / calibration / out-of-time test split."""
    import pandas as pd

    from flows.features import training_set_flow

    try:
        path = training_set_flow(lake, start, end)
    except ValueError as exc:
        console.print(f"[red]cannot build the training set:[/red] {exc}")
        raise typer.Exit(1) from None
    frame = pd.read_parquet(path, columns=["as_of_date", "label", "split"])
    summary = frame.groupby("split", observed=True).agg(
        rows=("label", "size"),
        labelled=("label", "count"),
        defaults=("label", "sum"),
        first=("as_of_date", "min"),
        last=("as_of_date", "max"),
    )
    table = Table(title="Training set by split")
    for col in ("split", "rows", "defaults", "default rate", "as-of dates"):
        table.add_column(col, justify="left" if col in ("split", "as-of dates") else "right")
    for name, r in summary.iterrows():
        rate = r["defaults"] / r["labelled"] if r["labelled"] else float("nan")
        table.add_row(
            str(name), f"{r['rows']:,}", f"{int(r['defaults']):,}", f"{rate:.2%}",
            f"{r['first']:%Y-%m-%d} .. {r['last']:%Y-%m-%d}",
        )  # fmt: skip
    console.print(table)
    console.print(f"training set: {path}")


@app.command()
def train(
    lake: LakeOption = SETTINGS.lake_dir,
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

    try:
        result = train_flow(lake, SETTINGS.mlflow_uri, SETTINGS.mlflow_artifacts, truth, register)
    except ValueError as exc:
        console.print(f"[red]cannot train:[/red] {exc}")
        raise typer.Exit(1) from None
    table = Table(title="Out-of-time validation (test split)")
    headline = ("auc", "gini", "brier", "ece", "psi", "oracle_auc")
    for col in ("model", *headline, "light", "registered"):
        table.add_column(col, justify="left" if col in ("model", "light") else "right")
    for m in result.models:
        table.add_row(
            m.kind,
            *(f"{m.metrics[k]:.3f}" if k in m.metrics else "–" for k in headline),
            m.traffic_light,
            f"v{m.registered_version}" if m.registered_version else "",
        )
    console.print(table)
    console.print(
        f"rows per split: {result.rows}; MLflow run {result.parent_run_id} at {SETTINGS.mlflow_uri}"
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
        decision, move = promote_flow(SETTINGS.mlflow_uri, tolerance, force)
    except LookupError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(decision.summary())
    if move is None:
        console.print('[yellow]champion unchanged[/yellow] (use --force "reason" to override)')
        raise typer.Exit(1)
    console.print(
        f"[green]champion is now version {move.version}[/green] (was {move.previous or 'none'})"
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
        move = rollback_flow(SETTINGS.mlflow_uri, version, reason)
    except LookupError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"champion is now version {move.version} (was {move.previous})")


@app.command()
def score(
    as_of: Annotated[
        str, typer.Option("--as-of", help="As-of date (YYYY-MM-DD); default today.")
    ] = "",
    top: Annotated[int, typer.Option("--top", help="Riskiest buyers to list.")] = 10,
    lake: LakeOption = SETTINGS.lake_dir,
) -> None:
    """Score every buyer with the champion: PD, grade, reason codes (lake output `scores/`)."""
    import pandas as pd

    from flows.score import score_flow
    from models.registry import NoChampionError

    date = _parse_date(as_of) or dt.date.today()
    try:
        path = score_flow(lake, date.isoformat(), SETTINGS.mlflow_uri)
    except NoChampionError as exc:
        console.print(f"[red]cannot score:[/red] {exc}")
        raise typer.Exit(1) from None
    scores = pd.read_parquet(path)
    _print_score_summary(scores, top)
    console.print(f"scores: {path}")


def _print_score_summary(scores, top: int) -> None:
    from models.master_scale import MASTER_SCALE

    grades = Table(
        title=f"{len(scores):,} buyers by grade (model v{scores['model_version'].iat[0]})"
    )
    for col in ("grade", "PD band", "buyers", "share", "mean PD"):
        grades.add_column(col, justify="right")
    bands = MASTER_SCALE.scale_frame().set_index("grade")
    for grade, rows in scores.groupby("grade"):
        band = bands.loc[grade]
        grades.add_row(
            str(grade),
            "in default" if grade == MASTER_SCALE.default_grade
            else f"{band['pd_lower']:.2%} – {band['pd_upper']:.2%}",
            f"{len(rows):,}",
            f"{len(rows) / len(scores):.1%}", f"{rows['pd'].mean():.2%}",
        )  # fmt: skip
    console.print(grades)
    worst = scores.loc[scores["grade"] < 10].nlargest(top, "pd")
    risky = Table(title=f"Top {len(worst)} PDs (not yet in default) and why")
    for col in ("buyer", "PD", "grade", "reasons"):
        risky.add_column(col, justify="right" if col in ("PD", "grade") else "left")
    for r in worst.itertuples():
        reasons = "; ".join(
            t for t in (r.reason_1_text, r.reason_2_text, r.reason_3_text) if isinstance(t, str)
        )
        risky.add_row(str(r.buyer_id), f"{r.pd:.2%}", str(r.grade), reasons)
    console.print(risky)


@app.command()
def recommend(
    as_of: Annotated[
        str, typer.Option("--as-of", help="As-of date (YYYY-MM-DD); default today.")
    ] = "",
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="Limit policy file (default config/limit_policy.yaml)."),
    ] = None,
    lake: LakeOption = SETTINGS.lake_dir,
) -> None:
    """Recommend an action for every credit limit (increase, decrease, maintain, cancel,
    refer) from the champion's scores and the limit policy; publish table, CSV and report."""
    from flows.limits import limits_flow
    from models.limits.policy import POLICY_PATH, PolicyError
    from models.registry import NoChampionError

    date = _parse_date(as_of) or dt.date.today()
    try:
        result = limits_flow(
            lake, date.isoformat(), SETTINGS.mlflow_uri, SETTINGS.mlflow_artifacts,
            policy or POLICY_PATH,
        )  # fmt: skip
    except (NoChampionError, PolicyError) as exc:
        console.print(f"[red]cannot recommend:[/red] {exc}")
        raise typer.Exit(1) from None
    _print_action_summary(result.summary, result.model_version, result.policy_version)
    console.print(f"report: {result.html}\ntable:  {result.parquet}\nCSV:    {result.csv}")


def _money(value: float) -> str:
    """Compact EUR amount for tables whose title says EUR: '8.6 M', '350 k'."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:,.1f} M"
    return f"{value / 1e3:,.0f} k"


def _print_action_summary(summary, model_version: str, policy_version: str) -> None:
    table = Table(
        title=f"Limit recommendations, EUR (model v{model_version}, policy {policy_version})"
    )
    for col in ("action", "pairs", "buyers", "cover before", "cover after", "change",
                "EL before", "EL after", "to a human"):  # fmt: skip
        table.add_column(col, justify="left" if col == "action" else "right")
    for action, r in summary.iterrows():
        table.add_row(
            str(action), f"{int(r['pairs']):,}", f"{int(r['buyers']):,}",
            _money(r["limit_before"]), _money(r["limit_after"]), _money(r["change"]),
            _money(r["expected_loss_before"]), _money(r["expected_loss_after"]),
            f"{int(r['human_required']):,}",
            end_section=action == "maintain",
        )  # fmt: skip
    console.print(table)


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
    lake: LakeOption = SETTINGS.lake_dir,
) -> None:
    """Show published limit recommendations, most urgent first (review-queue order)."""
    from data.daily_store import DailyStore
    from data.lake import Lake
    from models.limits.policy import ACTIONS

    lk = Lake(lake)
    store = DailyStore(lake)
    daily = store.dates()  # the daily runs' outputs come first, then `solvency recommend`'s
    dates = sorted(set(daily) | set(lk.output_partitions("recommendations")))
    if not dates:
        console.print(
            "[red]no recommendations published yet:[/red] run `solvency rescore` or "
            "`solvency recommend`"
        )
        raise typer.Exit(1)
    date = (_parse_date(as_of) or dt.date.fromisoformat(dates[-1])).isoformat()
    if date not in dates:
        console.print(
            f"[red]no recommendations for {date}[/red]; published: {', '.join(dates[-10:])}"
        )
        raise typer.Exit(1)
    if action is not None and action not in ACTIONS:
        raise typer.BadParameter(
            f"'{action}' is not one of {', '.join(ACTIONS)}", param_hint="--action"
        )
    if date in daily:
        recs = store.read(date, "recommendations")
        report = store.path(date, "recommendations.html")
    else:
        recs = lk.read_output("recommendations", date)
        report = lk.root / "outputs" / "recommendations" / f"{date}.html"
    if action:
        recs = recs.loc[recs["action"] == action]
    if buyer:
        recs = recs.loc[recs["buyer_id"] == buyer]
    shown = recs.sort_values("priority").head(top)
    table = Table(title=f"{len(shown)} of {len(recs):,} recommendations as of {date} (EUR)")
    for col in ("#", "policyholder", "buyer", "grade", "action", "limit", "recommended",
                "reasons", "explanation"):  # fmt: skip
        table.add_column(
            col, justify="right" if col in ("#", "grade", "limit", "recommended") else "left"
        )
    for r in shown.itertuples():
        previous = "" if pd_isna(r.previous_grade) else f"{r.previous_grade}→"
        table.add_row(
            str(r.priority), r.policyholder_id, r.buyer_id,
            "–" if pd_isna(r.grade) else f"{previous}{r.grade}",
            r.action if r.action == r.proposed_action else f"{r.action} ({r.proposed_action})",
            _money(r.limit_amount), _money(r.recommended_amount),
            r.reason_codes.replace("|", " "), r.explanation,
        )  # fmt: skip
    console.print(table)
    console.print(f"report: {report}")


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


@app.command("backtest-limits")
def backtest_limits(
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="Limit policy file (default config/limit_policy.yaml)."),
    ] = None,
    lake: LakeOption = SETTINGS.lake_dir,
) -> None:
    """Decision value of the limit policy on the out-of-time months: cover avoided on buyers
    that default within 12 months vs cover retained on the others, for a few settings."""
    from flows.limits import limit_backtest_flow
    from models.limits.policy import POLICY_PATH, PolicyError
    from models.registry import NoChampionError

    try:
        summary = limit_backtest_flow(
            lake, SETTINGS.mlflow_uri, SETTINGS.mlflow_artifacts, policy or POLICY_PATH
        )
    except (NoChampionError, PolicyError, RuntimeError) as exc:
        console.print(f"[red]cannot backtest:[/red] {exc}")
        raise typer.Exit(1) from None
    _print_backtest(summary)


def _print_backtest(summary) -> None:
    first = summary.iloc[0]
    table = Table(
        title=f"Limit policy backtest, {int(first['dates'])} out-of-time months, "
        f"model v{first['model_version']} (vs limits unchanged; EUR)"
    )
    for col in ("policy", "version", "defaulter cover", "avoided", "performing cover",
                "retained", "increases granted", "increases to defaulters"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("policy", "version") else "right")
    for name, r in summary.iterrows():
        table.add_row(
            str(name), str(r["policy_version"]), _money(r["defaulter_cover"]),
            f"{r['avoided_share']:.1%}", _money(r["performing_cover"]),
            f"{r['retained_share']:.1%}", _money(r["increases_granted"]),
            _money(r["increases_to_defaulters"]),
        )  # fmt: skip
    console.print(table)
    console.print(
        "avoided = share of the cover on buyers defaulting within 12 months removed by cuts and "
        "cancellations; retained = share of the cover on the other buyers kept. Same limit book "
        "at every date; referred proposals count as accepted; buyers already in default apart."
    )


@app.command()
def rescore(
    as_of: Annotated[
        str, typer.Option("--as-of", help="As-of date (YYYY-MM-DD); default today.")
    ] = "",
    start: Annotated[
        str, typer.Option("--from", help="Backfill: first as-of date (with --to).")
    ] = "",
    end: Annotated[str, typer.Option("--to", help="Backfill: last as-of date.")] = "",
    drop_dir: Annotated[
        Path | None,
        typer.Option(
            "--drop-dir",
            help="Folder of daily input drops <DIR>/<YYYY-MM-DD>/ ingested first "
            "(env SOLVENCY_DROP_DIR).",
        ),
    ] = SETTINGS.drop_dir,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="Limit policy file (default config/limit_policy.yaml)."),
    ] = None,
    lake: LakeOption = SETTINGS.lake_dir,
) -> None:
    """The daily rescoring: ingest the day's drop, features, scores, limit recommendations,
    alerts and monitoring, published as one unit per date. --from/--to backfills."""
    import pandas as pd

    from data.daily_store import RunBusyError
    from flows.daily import rescore_flow_for
    from models.limits.policy import POLICY_PATH, PolicyError
    from models.registry import NoChampionError

    if bool(start) != bool(end):
        raise typer.BadParameter("--from and --to go together", param_hint="--from/--to")
    if start:
        first, last = _parse_date(start), _parse_date(end)
        if first > last:
            raise typer.BadParameter(f"--from {first} is after --to {last}", param_hint="--from")
        dates = [d.date().isoformat() for d in pd.date_range(first, last, freq="D")]
    else:
        dates = [(_parse_date(as_of) or dt.date.today()).isoformat()]
    table = Table(
        title=f"Daily rescoring, {len(dates)} date(s): actions on limits, alerts, score PSI"
    )
    for col in ("as of", "buyers", "model", "up", "down", "cancel", "refer", "alerts", "PSI",
                "new rows"):  # fmt: skip
        table.add_column(col, justify="left" if col == "as of" else "right")
    result = None
    rescore_flow = rescore_flow_for(SETTINGS)
    for date in dates:
        try:
            result = rescore_flow(
                lake, SETTINGS.mlflow_uri, SETTINGS.mlflow_artifacts, date, drop_dir,
                policy or POLICY_PATH, partition_buyers=SETTINGS.partition_buyers,
            )  # fmt: skip
        except (NoChampionError, PolicyError, RunBusyError) as exc:
            console.print(f"[red]rescoring of {date} stopped:[/red] {exc}")
            raise typer.Exit(1) from None
        s = result.summary
        a = s["actions"]
        psi = "–" if s["score_psi"] is None else f"{s['score_psi']:.3f}"
        bad = s.get("quarantined_rows", 0)
        inputs = "missing" if s.get("inputs_missing") else (
            f"{s.get('rows', 0):,}" + (f" ({bad:,} bad)" if bad else "") if drop_dir else "–"
        )  # fmt: skip
        table.add_row(
            date, f"{s['buyers']:,}", f"v{s['model_version']}", f"{a['increase']:,}",
            f"{a['decrease']:,}", f"{a['cancel']:,}", f"{a['refer']:,}",
            f"{s['alerts_total']:,}", psi, inputs,
        )  # fmt: skip
    console.print(table)
    if result is not None:
        console.print(
            f"latest outputs: {result.pointer}\n"
            f"limit report:      {result.recommendations_html}\n"
            f"monitoring report: {result.monitoring_html}"
        )


@app.command()
def monitoring(lake: LakeOption = SETTINGS.lake_dir) -> None:
    """Write the monitoring history report across every published daily run."""
    from flows.daily import monitoring_history_flow

    try:
        path = monitoring_history_flow(lake)
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"monitoring history: {path}")


@app.command()
def serve(
    daily_time: Annotated[
        str, typer.Option("--time", help="Local time of the daily rescoring (HH:MM).")
    ] = SETTINGS.daily_time,
    timezone: Annotated[
        str, typer.Option("--timezone", help="IANA time zone of the schedules.")
    ] = SETTINGS.timezone,
) -> None:
    """Serve the scheduled deployments (daily rescore, monthly retrain, weekly monitoring
    report) against the Prefect API in PREFECT_API_URL; stops with Ctrl-C."""
    import dataclasses

    from prefect import serve as prefect_serve

    from flows.deployments import build_deployments

    settings = dataclasses.replace(SETTINGS, daily_time=daily_time, timezone=timezone)
    try:
        deployments = build_deployments(settings)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--time") from None
    for d in deployments:
        schedule = d.schedules[0].schedule
        console.print(f"{d.name}: cron '{schedule.cron}' ({schedule.timezone})")
    prefect_serve(*deployments)


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
        Path,
        typer.Option(
            "--demo-dir", help="Where the demo portfolio is written (env SOLVENCY_DEMO_DIR)."
        ),
    ] = SETTINGS.demo_dir,
    days: Annotated[
        int, typer.Option("--days", min=1, help="Daily runs backfilled up to the demo's end.")
    ] = 14,
    lake: LakeOption = SETTINGS.lake_dir,
) -> None:
    """Run every pipeline step on a generated demo portfolio: generate, ingest, training
    set, train and promote, then a backfill of daily rescoring runs with new data each day
    (scores, limit recommendations, alerts, monitoring)."""
    import shutil

    from data.daily_store import DailyStore
    from data.drops import split_daily_drops
    from models.limits.report import summary_by

    end = dt.date.fromisoformat(DEMO_END)
    base = end - dt.timedelta(days=days)
    drops = demo_dir / "drops"
    if fresh:
        shutil.rmtree(demo_dir, ignore_errors=True)
        shutil.rmtree(lake, ignore_errors=True)
        if SETTINGS.mlflow_uri.startswith("sqlite:///"):  # a local store: start it over too
            Path(SETTINGS.mlflow_uri.removeprefix("sqlite:///")).unlink(missing_ok=True)
            if SETTINGS.mlflow_artifacts is not None:
                shutil.rmtree(SETTINGS.mlflow_artifacts, ignore_errors=True)
    if not (demo_dir / "buyers.parquet").exists():
        console.rule("1. generate the demo portfolio")
        generate(
            out=demo_dir,
            buyers=buyers,
            months=months,
            seed=42,
            dirty=dirty,
            end=DEMO_END,
            default_rate=0.03,
            fmt="parquet",
        )
    else:
        console.print(f"demo portfolio already in {demo_dir} (use --fresh to regenerate)")
    plan = split_daily_drops(demo_dir, base, end, drops)
    console.print(
        f"split into what was known on {base} ({drops / 'base'}) and {len(plan.days)} daily "
        f"drops up to {end} ({drops}/<date>/)"
    )
    console.rule(f"2. ingest the book as known on {base}")
    ingest(source=plan.base_dir, lake=lake, load_date=base.isoformat())
    status(lake=lake)
    console.rule("3. labelled training set with its time split")
    training_set(start=None, end=None, lake=lake)
    console.rule("4. train and validate PD models (MLflow), promote the challenger")
    train(lake=lake, truth=demo_dir / "_truth", register="lightgbm")
    try:
        promote(force=None, tolerance=0.005)
    except typer.Exit:
        console.print("the current champion stays (see the gate's reasons above)")
    first = base + dt.timedelta(days=1)
    console.rule(f"5. daily rescoring {first} .. {end}, ingesting each day's drop")
    rescore(as_of="", start=first.isoformat(), end=DEMO_END, drop_dir=drops, policy=None, lake=lake)
    monitoring(lake=lake)
    console.rule(f"6. credit-limit recommendations as of {DEMO_END}")
    store = DailyStore(lake)
    recs = store.read(DEMO_END, "recommendations")
    _print_action_summary(
        summary_by(recs, "action"), recs["model_version"].iat[0], recs["policy_version"].iat[0]
    )
    console.rule("results")
    console.print(
        f"Limit recommendations report: {store.path(DEMO_END, 'recommendations.html')}\n"
        f"Monitoring report:            {store.path(DEMO_END, 'monitoring.html')}\n"
        f"Monitoring history:           {store.root / 'history.html'}\n"
        f"Demo data: {demo_dir}  |  lake: {lake}  |  daily outputs: {store.root}\n"
        f"MLflow: {SETTINGS.mlflow_uri} (`uv run mlflow ui --backend-store-uri {SETTINGS.mlflow_uri}`)\n"
        "Quarantined rows: `solvency quarantine`. Re-running the demo is idempotent: the same "
        "files are not loaded twice and each date's outputs are replaced as a unit."
    )


if __name__ == "__main__":
    app()
