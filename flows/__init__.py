"""Prefect flows and the `solvency` command line: thin orchestration over the pure code.

The machines this runs on have no internet: outbound telemetry of Prefect and MLflow is
off by default (an explicit setting in the environment still wins). Prefect's temporary API
server, whoever starts it, dies with the process that started it (`flows.parent_watch`).
"""

import os

from flows.parent_watch import bind_on_import

for _name, _value in {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    # The temporary local Prefect server migrates its database on first start, which can
    # take longer than Prefect's default wait on a small machine.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}.items():
    os.environ.setdefault(_name, _value)

bind_on_import()
