"""The `solvency` command line: one Typer app, its commands grouped by who uses them.

- `data_commands`: settings, generate, ingest, quarantine, status, lake, features, catalogue,
  training-set;
- `model_commands`: train, promote, rollback, backtest-limits (risk analysts);
- `daily_commands`: rescore, score, recommend, recommendations, monitoring, serve
  (operations and underwriters);
- `underwriting_commands`: queue, decide, decisions, request, users, db (the decision loop);
- `web_commands`: ui (the underwriters' workbench), users password, users token;
- `demo`: every step on a generated book.

Importing it has no side effect beyond defining the commands: settings are read when a
command runs.
"""

import sys

from flows.cli import (
    daily_commands,
    data_commands,
    demo,
    model_commands,
    underwriting_commands,
    web_commands,
)
from flows.cli.app import app

__all__ = [
    "app",
    "daily_commands",
    "data_commands",
    "demo",
    "main",
    "model_commands",
    "underwriting_commands",
    "web_commands",
]


def main() -> None:
    """The `solvency` entry point: the app, with the lake's refusals (a lost manifest, a
    load already running) as one red line and exit status 1 instead of a traceback."""
    from data.lake import LakeBusyError, LakeStateError
    from flows.cli.output import OUT

    try:
        app()
    except (LakeStateError, LakeBusyError) as exc:
        OUT.error(f"solvency: {exc}")
        sys.exit(1)
