"""Commands on the data: settings, generate, ingest, quarantine, status, lake check/recover,
features, catalogue and the training set.

Heavy imports (Prefect, the generator) happen inside the commands, so `--help` is instant.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.app import LakeOption, app, cli_date, fail, run_context, settings
from flows.cli.output import OUT, plain_text

#: The demo book ends here; generation and the demo's load dates use it (reproducible).
DEMO_END = "2026-11-30"

lake_app = typer.Typer(
    help="Check the lake's manifest against its files, or recover a lost or broken manifest.",
    no_args_is_help=True,
)
app.add_typer(lake_app, name="lake")


@app.command("settings")
def show_settings() -> None:
    """Show the effective settings, each with where it comes from (default, the file named
    by SOLVENCY_CONFIG, or an environment variable); see config/production.toml."""
    from dataclasses import asdict

    from flows.cli.app import STATE
    from flows.settings import ENVIRONMENT, SECRET_FIELDS, Settings

    current = settings()
    config = STATE.environment.get("SOLVENCY_CONFIG")
    sources = Settings.sources(STATE.environment)
    OUT.table(
        f"solvency settings (config file: {config or 'none, SOLVENCY_CONFIG unset'})",
        ("setting", "value", "variable", "from"),
        [
            (
                name,
                "unset"
                if value is None
                else "(set, not shown)"
                if name in SECRET_FIELDS
                else str(value),
                ENVIRONMENT[name],
                sources[name],
            )
            for name, value in asdict(current).items()
        ],
    )


@app.command()
def generate(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Folder to write the portfolio's tables to (default: the demo folder)."
        ),
    ] = None,
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
    ] = DEMO_END,
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
        raise typer.BadParameter("--format must be parquet or csv", param_hint="--format")
    end_date = cli_date(end, "--end")
    defaults = settings()  # also makes the files owner-only unless shared_files
    out = out or defaults.demo_dir
    config = GeneratorConfig(
        n_buyers=buyers,
        months=months,
        seed=seed,
        dirty_fraction=dirty,
        end_date=end_date,
        annual_default_rate=default_rate,
    )
    started = time.perf_counter()
    with OUT.console.status("generating…") as status:  # messages as text, never markup
        portfolio = generate_portfolio(config, progress=lambda msg: status.update(plain_text(msg)))
        status.update(plain_text(f"writing {fmt} files to {out}"))
        paths = write_portfolio(portfolio, out, fmt=fmt)
    OUT.table(
        f"Portfolio written to {out} ({time.perf_counter() - started:.1f} s)",
        ("table", "rows"),
        [(name, f"{len(frame):,}") for name, frame in portfolio.tables.items()],
        right={"rows"},
    )
    OUT.line(f"{len(paths)} files; truth (never ingested) in {out / '_truth'}")


@app.command()
def ingest(
    source: Annotated[
        Path, typer.Argument(help="Folder with <table>.csv / <table>.parquet files.")
    ],
    lake: LakeOption = None,
    load_date: Annotated[
        str | None,
        typer.Option("--load-date", help="Date of this load (YYYY-MM-DD); default today."),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option(
            "--encoding",
            help="Encoding of the CSV files, e.g. cp1252 (default: UTF-8, or UTF-16 by its "
            "byte order mark; the source_encoding setting).",
        ),
    ] = None,
    delimiter: Annotated[
        str | None,
        typer.Option(
            "--delimiter",
            help="CSV delimiter: , ; | or tab (default: sniffed from each header).",
        ),
    ] = None,
    follow_links: Annotated[
        bool,
        typer.Option(
            "--follow-links",
            help="Follow symbolic links that point at files of the same folder (default: "
            "refuse every link; the source_links setting).",
        ),
    ] = False,
) -> None:
    """Validate source files against the data contracts and load them into the lake.

    Bad rows go to quarantine with their reason; the same file is never loaded twice;
    a corrected file supersedes earlier rows with the same keys. Each file stands alone:
    one that cannot be read fails by itself, the others load. Exits 1 if a file failed
    (unreadable, missing a column, not a table file, a refused link).
    """
    from data.ingest import reports_frame
    from flows.ingest import ingest_flow

    if not source.is_dir():
        fail(f"source folder not found: {source}", code=2)
    ctx = run_context(
        cli_date(load_date, "--load-date"),
        lake_dir=lake,
        source_encoding=encoding,
        source_delimiter=delimiter,
        source_links="inside" if follow_links else None,
    )
    reports = ingest_flow(ctx, source)
    frame = reports_frame(reports)
    numbers = ("read", "accepted", "quarantined", "superseded")
    OUT.table(
        "Ingestion summary",
        ("table", "file", "status", *numbers, "top reasons"),
        [
            (
                r.table,
                Path(r.source).name,
                r.status,
                f"{r.rows_read:,}",
                f"{r.accepted:,}",
                f"{r.quarantined:,}",
                f"{r.superseded:,}",
                r.top_reasons or r.message,
            )
            for r in frame.itertuples()
        ],
        right=numbers,
    )
    for report in reports:
        for warning in report.warnings:
            OUT.warning(f"{Path(report.source).name}: {warning}")
    failed = [r for r in reports if r.status == "failed"]
    for report in failed:
        OUT.error(f"failed {report.source}: {report.message}")
    OUT.line(
        f"lake: {ctx.lake.root}  (see `solvency quarantine --lake {ctx.lake.root}` for bad rows)"
    )
    if failed:
        raise typer.Exit(1)


@app.command()
def quarantine(
    lake: LakeOption = None,
    table: Annotated[str | None, typer.Option("--table", help="Only this table.")] = None,
    rows: Annotated[int, typer.Option("--rows", help="Also show this many quarantined rows.")] = 0,
) -> None:
    """Show quarantined rows by table, column and broken rule (and, with --rows, the rows)."""
    from data.ingest import quarantine_reasons
    from data.lake import QUARANTINE

    lk = run_context(lake_dir=lake).lake
    summary = quarantine_reasons(lk)
    if table:
        summary = summary[summary["table"] == table]
    if summary.empty:
        OUT.line("no quarantined rows")
        return
    OUT.table(
        f"Quarantine in {lk.root}",
        ("table", "column", "rule", "rows"),
        [(r.table, r.column, r.rule, f"{r.rows:,}") for r in summary.itertuples()],
        right={"rows"},
    )
    if rows:
        detail = lk.read(QUARANTINE)
        if table:
            detail = detail[detail["table"] == table]
        cols = ["table", "source_file", "row_number", "column", "rule", "value"]
        shown = detail[cols].head(rows)
        OUT.table(
            f"First {len(shown)} quarantined rows",
            cols,
            shown.astype("str").itertuples(index=False),
            right={"row_number"},
        )


@app.command()
def status(lake: LakeOption = None) -> None:
    """What the lake holds: rows and files per table, and the loads so far."""
    import pyarrow.parquet as pq

    lk = run_context(lake_dir=lake).lake
    manifest = lk.manifest()
    if not manifest.tables:
        OUT.line(f"the lake at {lk.root} is empty: run `solvency ingest DIR` first")
        return
    OUT.table(
        f"Lake {lk.root} (manifest version {manifest.version})",
        ("table", "rows", "files"),
        [
            (
                name,
                f"{sum(pq.ParquetFile(lk.root / f).metadata.num_rows for f in files):,}",
                str(len(files)),
            )
            for name, files in manifest.tables.items()
        ],
        right={"rows", "files"},
    )
    OUT.line(f"{len(manifest.sources)} source file(s) ingested")


@lake_app.command("check")
def lake_check(lake: LakeOption = None) -> None:
    """Check every part file the manifest lists (present, row count, checksum) and list the
    files it does not account for. Exits 1 when something is wrong."""
    from data.lake_recovery import check_lake

    root = run_context(lake_dir=lake).lake.root
    report = check_lake(root)
    for text in report.lines():
        OUT.line(text)
    if not report.ok:
        OUT.error(f"the lake at {root} needs attention: see `solvency lake recover --help`")
        raise typer.Exit(1)
    OUT.success(f"the lake at {root} is consistent")


@lake_app.command("recover")
def lake_recover(lake: LakeOption = None) -> None:
    """Rebuild a missing or unreadable manifest from the part files' own metadata, or move
    files the manifest does not list aside (into `_recovered/`). Never deletes a file."""
    from data.lake_recovery import recover_lake

    root = run_context(lake_dir=lake).lake.root
    report = recover_lake(root)
    for text in report.lines():
        OUT.line(text)


@app.command()
def features(
    as_of: Annotated[
        str, typer.Option("--as-of", help="As-of date (YYYY-MM-DD); default today.")
    ] = "",
    lake: LakeOption = None,
) -> None:
    """Build point-in-time features of every buyer at an as-of date (lake output `features/`)."""
    import pandas as pd

    from features.catalogue import CATALOGUE
    from flows.features import features_flow

    ctx = run_context(cli_date(as_of, "--as-of"), lake_dir=lake)
    path = features_flow(ctx)
    frame = pd.read_parquet(path)
    groups: dict[str, list[str]] = {}
    for name, spec in CATALOGUE.items():
        groups.setdefault(spec.group, []).append(name)
    OUT.table(
        f"Features of {len(frame):,} buyers: share missing by group",
        ("group", "features", "missing"),
        [
            (group, str(len(names)), f"{frame[names].isna().to_numpy().mean():.1%}")
            for group, names in groups.items()
        ],
        right={"features", "missing"},
    )
    OUT.line(f"features: {path}")


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
    OUT.table(
        f"Feature catalogue ({len(FEATURES)} features)",
        ("feature", "group", "unit", "source", "risk when higher", "description"),
        [(f.name, f.group, f.unit, f.source, f.risk_direction, f.description) for f in FEATURES],
    )


@app.command("training-set")
def training_set(
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="First as-of month (default: the first past the lookback windows' warm-up).",
        ),
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Last as-of month (default: last known date).")
    ] = None,
    lake: LakeOption = None,
) -> None:
    """Monthly labelled snapshots with the latest validation fold's train / calibration /
    out-of-time test split."""
    import pandas as pd

    from flows.features import training_set_flow

    first, last = cli_date(start, "--start"), cli_date(end, "--end")
    ctx = run_context(lake_dir=lake)
    try:
        path = training_set_flow(
            ctx,
            pd.Timestamp(first) if first else None,
            pd.Timestamp(last) if last else None,
        )
    except ValueError as exc:
        fail(f"cannot build the training set: {exc}")
    frame = pd.read_parquet(path, columns=["as_of_date", "label", "split"])
    summary = frame.groupby("split", observed=True).agg(
        rows=("label", "size"),
        labelled=("label", "count"),
        defaults=("label", "sum"),
        first=("as_of_date", "min"),
        last=("as_of_date", "max"),
    )
    rows = []
    for name, r in summary.iterrows():
        rate = r["defaults"] / r["labelled"] if r["labelled"] else float("nan")
        rows.append(
            (str(name), f"{r['rows']:,}", f"{int(r['defaults']):,}", f"{rate:.2%}",
             f"{r['first']:%Y-%m-%d} .. {r['last']:%Y-%m-%d}")
        )  # fmt: skip
    OUT.table(
        "Training set by split",
        ("split", "rows", "defaults", "default rate", "as-of dates"),
        rows,
        right={"rows", "defaults", "default rate"},
    )
    OUT.line(f"training set: {path}")
