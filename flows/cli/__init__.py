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
    """The `solvency` entry point: the app (whose command group turns the expected failures,
    such as the lake's refusals, into one red line on stderr and exit status 1)."""
    app()
