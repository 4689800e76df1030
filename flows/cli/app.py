"""The `solvency` application object and the one place a command turns its options into a run.

Nothing happens at import: the settings are read when a command runs (`--help` never fails
on a bad setting), and every command builds its `RunContext` through `run_context`, so a
date is parsed once, the settings are read once and the policy file is loaded once.

Expected failures are handled once, here (`Commands.invoke`): a refusal (a lake or a date
already being written by another run) or a registry / MLflow store fault stops any command
with one red line on stderr and exit status 1, also when it comes out of a Prefect flow run
(calling a flow re-raises the exception its run failed with); Prefect's run log keeps its
line about it, without the traceback.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from data.permissions import use_shared_files
from flows.cli.output import OUT
from flows.context import RunContext, parse_date
from flows.settings import Settings, SettingsError

#: The project's failures a user acts on rather than reports, as (module, class): a
#: subclass counts too. Named, not imported, so that the check imports nothing (a class
#: whose module was never imported cannot have been raised).
EXPECTED_ERRORS = (
    ("data.lake", "LakeBusyError"),
    ("data.lake", "LakeStateError"),
    ("data.daily_store", "RunBusyError"),
    ("flows.daily", "SmallerRunError"),
    ("models.registry", "RegistryError"),
)
#: Prefect's loggers of flow and task runs (their records of a failed run carry a traceback).
RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


def expected_error(exc: BaseException | None) -> bool:
    """Whether `exc` is one of `EXPECTED_ERRORS` (shown as one line, without a traceback)."""
    for module, name in EXPECTED_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(exc, cls):
            return True
    return False


class _NoTracebackForExpected(logging.Filter):
    """Keeps a run log's line about an expected failure, without its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and expected_error(record.exc_info[1]):
            record.exc_info, record.exc_text = None, None
        return True


_RUN_LOG_FILTER = _NoTracebackForExpected()


class Commands(TyperGroup):
    """The app's command group: an expected failure of any command becomes one line."""

    def invoke(self, ctx):
        for name in RUN_LOGGERS:  # before Prefect configures them: it keeps logger filters
            if _RUN_LOG_FILTER not in logging.getLogger(name).filters:
                logging.getLogger(name).addFilter(_RUN_LOG_FILTER)
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if not expected_error(exc):
                raise
            OUT.fault(f"solvency: {exc}")
            raise typer.Exit(1) from None


app = typer.Typer(
    name="solvency",
    help="Buyer solvency scoring and monitoring for trade credit insurance.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    cls=Commands,
)


@dataclasses.dataclass
class _State:
    """The process's settings, read once by the first command that needs them."""

    settings: Settings | None = None
    #: The environment before the settings exported anything (for `solvency settings`).
    environment: dict[str, str] = dataclasses.field(default_factory=dict)


STATE = _State()


def fail(message: str, code: int = 1) -> NoReturn:
    """Stop the command with a red message and an exit code (no traceback)."""
    OUT.error(message)
    raise typer.Exit(code)


def settings() -> Settings:
    """The settings of this process: defaults, the SOLVENCY_CONFIG file, the environment."""
    if STATE.settings is None:
        STATE.environment = dict(os.environ)
        try:
            STATE.settings = Settings.from_env()
        except SettingsError as exc:  # a bad SOLVENCY_* value or config file: say which
            fail(f"solvency: {exc}", code=2)
        STATE.settings.export_prefect()
        use_shared_files(STATE.settings.shared_files)  # owner-only files unless shared
    return STATE.settings


def cli_date(value: str | None, option: str) -> dt.date | None:
    """A date option's value (None when left empty); a bad date names the option."""
    try:
        return parse_date(value, option)
    except ValueError as exc:
        raise typer.BadParameter(
            f"'{value}' is not a date in YYYY-MM-DD form", param_hint=option
        ) from exc


def run_context(as_of: dt.date | None = None, **overrides: Any) -> RunContext:
    """The run context of this command: the settings with the command's own options
    (`lake_dir=...`, `policy_path=...`; None = not given) and the as-of date (default
    today in the settings' time zone). A bad policy or monitoring file stops the command
    with the file's own message."""
    from models.limits.policy import PolicyError
    from models.monitoring.config import MonitoringConfigError

    base = settings()
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        resolved = dataclasses.replace(base, **given) if given else base
    except SettingsError as exc:  # a bad option value: say which
        fail(f"solvency: {exc}", code=2)
    try:
        return RunContext.build(resolved, as_of)
    except (PolicyError, MonitoringConfigError) as exc:
        fail(str(exc))


@app.callback()
def main() -> None:
    """Buyer solvency scoring and monitoring for trade credit insurance.

    Settings come from defaults, the TOML file named by SOLVENCY_CONFIG and SOLVENCY_*
    environment variables (`solvency settings` shows them); options override per call.
    """


LakeOption = Annotated[
    Path | None,
    typer.Option("--lake", help="Lake folder (default: the lake_dir setting, SOLVENCY_LAKE)."),
]
