"""The `solvency` command line: one Typer app, its commands grouped by who uses them.

- `data_commands`: settings, generate, ingest, quarantine, status, lake, features, catalogue,
  training-set;
- `model_commands`: train, promote, rollback, backtest-limits (risk analysts);
- `daily_commands`: rescore, score, recommend, recommendations, monitoring, serve
  (operations and underwriters);
- `demo`: every step on a generated book.

Importing it has no side effect beyond defining the commands: settings are read when a
command runs.
"""

from flows.cli import daily_commands, data_commands, demo, model_commands
from flows.cli.app import app

__all__ = ["app", "daily_commands", "data_commands", "demo", "model_commands"]
