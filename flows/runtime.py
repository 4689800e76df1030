"""Where the flows run: Prefect's task runner and its local API server, cache keys and the
bounds of Prefect's result cache.

Kept apart from the flows so that choosing threads, processes or a Dask cluster, the
start-up of Prefect's temporary server and the cache's housekeeping are one place each.

The daily steps cached by Prefect (the features and the matured-cohort backtest) are kept
as files in Prefect's local result storage (PREFECT_LOCAL_STORAGE_PATH, by default
`$PREFECT_HOME/storage`, i.e. ~/.prefect/storage). A cached result is reused for
`cache_days` (`cache_expiration`, the tasks' expiry) and the folder is pruned to
`cache_max_mb` before each daily run (`prune_result_cache`, oldest files first; files older
than `cache_days` go too): without it the folder only grows (tens of MB a day on a demo
book). A removed file is a cache miss: the step is computed again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import stat
import time
from pathlib import Path

from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

from flows.parent_watch import bind
from flows.settings import Settings, SettingsError

_CODE = Path(__file__).resolve().parents[1]
_LOG = logging.getLogger(__name__)


#: The project's cached results are named `solvency-<hash>` in Prefect's result storage,
#: which other Prefect projects of the same user share: pruning touches only these.
CACHE_KEY_PREFIX = "solvency-"


def cache_key(*parts: str) -> str:
    """A cache key of the project's own (see `CACHE_KEY_PREFIX`)."""
    return CACHE_KEY_PREFIX + fingerprint(*parts)


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

    bind(SubprocessASGIServer)  # it dies with this process, even killed (normally done)
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


def cache_expiration() -> dt.timedelta:
    """How long a cached daily step result is reused: `cache_days` of this process's settings.

    Read once, when `flows.daily` is imported (its task decorators), from the same sources as
    the settings of a command or of `solvency serve` (the environment and SOLVENCY_CONFIG;
    no command-line option sets it); the default when they are invalid (the command itself
    then stops naming the bad setting). Why not per run: Prefect fixes a task's expiry when
    the task is defined, and the cache is a property of the machine, not of a run.
    """
    try:
        days = Settings.from_env().cache_days
    except SettingsError:
        days = Settings.cache_days
    return dt.timedelta(days=days)


def prune_cache(
    folder: Path,
    max_bytes: int,
    max_age: dt.timedelta,
    now: float | None = None,
    prefix: str = "",
) -> list[Path]:
    """Remove the files of `folder` (and its subfolders) named `prefix...` older than
    `max_age`, then the oldest ones until the rest holds at most `max_bytes`; return the
    removed files, oldest first. A missing folder, or a file another process removed
    meanwhile, is no error; files without the prefix are neither counted nor touched."""
    now = time.time() if now is None else now
    found: list[tuple[float, int, Path]] = []
    paths = Path(folder).rglob("*") if Path(folder).is_dir() else []
    for path in paths:
        if not path.name.startswith(prefix):
            continue
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode):  # files only: no folders, no symbolic links
            found.append((info.st_mtime, info.st_size, path))
    found.sort(key=lambda f: f[0], reverse=True)  # newest first
    oldest = now - max_age.total_seconds()
    kept, removed = 0, []
    for mtime, size, path in found:
        if mtime >= oldest and kept + size <= max_bytes:
            kept += size
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed[::-1]


def result_cache_folder() -> Path | None:
    """Prefect's local result storage folder; None when results go to a storage block."""
    from prefect.settings import get_current_settings

    results = get_current_settings().results
    if results.default_storage_block:
        return None
    return Path(results.local_storage_path).expanduser()


def prune_result_cache(settings: Settings) -> list[Path]:
    """Bound the project's results in Prefect's cache by `cache_max_mb` and `cache_days`
    (before a daily run); other projects' results in the same folder are left alone."""
    folder = result_cache_folder()
    if folder is None:
        return []
    removed = prune_cache(
        folder,
        settings.cache_max_mb * 1024 * 1024,
        dt.timedelta(days=settings.cache_days),
        prefix=CACHE_KEY_PREFIX,
    )
    if removed:
        _LOG.info("removed %d old cached result file(s) from %s", len(removed), folder)
    return removed
