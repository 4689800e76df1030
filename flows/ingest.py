"""The ingestion flow: validate a folder of source files into the lake, with a run summary."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from data.ingest import FileReport, ingest_directory, ingest_file, summary_line
from flows.context import RunContext
from models.reports.format import printable

#: Each file is one task: retried on transient I/O errors; never cached (it writes the lake).
ingest_file_task = task(
    ingest_file,
    name="ingest-file",
    retries=2,
    retry_delay_seconds=2,
    cache_policy=NO_CACHE,
    task_run_name="ingest {table}: {path.name}",
)


@flow(name="ingest", flow_run_name="ingest {source_dir} as of {ctx.as_of}")
def ingest_flow(ctx: RunContext, source_dir: Path) -> list[FileReport]:
    """Ingest every table file of `source_dir` into the lake, loaded as of `ctx.as_of`."""
    logger = get_run_logger()
    reports = ingest_directory(
        Path(source_dir),
        ctx.lake,
        ctx.as_of,
        progress=lambda message: logger.info("%s", printable(message)),
        ingest=ingest_file_task,
        options=ctx.settings.ingest_options(),
    )
    failed = [r for r in reports if r.status == "failed"]
    for report in failed:
        logger.error("%s", printable(summary_line(report)))
    for report in reports:  # names and messages from the files: no control characters
        for warning in report.warnings:
            logger.warning("%s: %s", printable(Path(report.source).name), printable(warning))
    logger.info(
        "ingested %d file(s), skipped %d, failed %d",
        sum(r.status == "ingested" for r in reports),
        sum(r.status == "skipped" for r in reports),
        len(failed),
    )
    return reports
