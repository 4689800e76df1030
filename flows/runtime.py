"""Where the flows run: Prefect's task runner and its local API server, and cache keys.

Kept apart from the flows so that choosing threads, processes or a Dask cluster, and the
start-up of Prefect's temporary server, are one place each.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from flows.settings import Settings

_CODE = Path(__file__).resolve().parents[1]


def fingerprint(*parts: str) -> str:
    """A short stable hash of text parts (cache keys, lake states)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def source_hash(*packages: str) -> str:
    """Hash of the code a cached result depends on: a code change invalidates the cache."""
    digest = hashlib.sha256()
    for package in packages:
        for path in sorted((_CODE / package).rglob("*.py")):
            digest.update(path.relative_to(_CODE).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_task_runner(settings: Settings):
    """The Prefect task runner the settings ask for: local threads (default), local
    processes, or Dask (the cluster at `dask_address`, else a local one) via prefect-dask."""
    workers = settings.workers or os.cpu_count() or 1
    if settings.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=workers)
    if settings.task_runner == "processes":
        return ProcessPoolTaskRunner(max_workers=workers)
    from prefect_dask import DaskTaskRunner

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    cluster = {"n_workers": settings.workers or 2, "threads_per_worker": 1}
    api_url = local_prefect_api()
    if api_url:  # the workers report to this process's Prefect API, not to one each
        cluster["env"] = {"PREFECT_API_URL": api_url}
    return DaskTaskRunner(cluster_kwargs=cluster)


def local_prefect_api() -> str | None:
    """In Prefect's local mode, start the temporary API server now and return its URL.

    Why: a Dask worker process without PREFECT_API_URL would start a temporary server of
    its own (tens of seconds each, competing for the same SQLite file). Started here, the
    flow itself then reuses the very same server (Prefect keeps one per process).
    """
    if os.environ.get("PREFECT_API_URL"):
        return None
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    return server.api_url


def stop_local_prefect_api() -> None:
    """Stop the temporary API servers this process started (normally done at exit).

    Why call it: at interpreter exit Prefect logs the stop to a console stream that may be
    closed already (a test runner's capture), which prints a logging traceback.
    """
    from prefect.logging.handlers import APILogWorker
    from prefect.server.api.server import SubprocessASGIServer

    servers = list(SubprocessASGIServer._instances.values())
    if servers:  # send the logs still queued for the server before it goes
        APILogWorker.drain_all(timeout=10)
    for server in servers:
        server.stop()
