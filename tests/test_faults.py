"""Clear, bounded faults: registry and MLflow store faults name the model, alias, version,
store and the way out; a refused concurrent run is one line on stderr; Prefect's temporary
server dies with the process that started it; Prefect's result cache expires and is bounded.

Real stores only: MLflow stores in temporary folders (a version deleted, an alias left
pointing nowhere, model files removed, a store locked by an open SQLite transaction or
overwritten with garbage), real lakes and daily-store locks, real `solvency` processes."""

from __future__ import annotations

import datetime as dt
import os
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data.daily_store import DailyStore
from data.lake import Lake
from flows.runtime import (
    CACHE_KEY_PREFIX,
    cache_expiration,
    prune_cache,
    prune_result_cache,
    result_cache_folder,
)
from flows.settings import Settings, SettingsError
from models.registry import (
    CHAMPION,
    MODEL_NAME,
    MissingArtifactsError,
    MissingVersionError,
    ModelRegistry,
    NoChampionError,
    RegistryError,
    StoreError,
)
from tests.book_fixtures import SlopeModel


def _registry(root: Path) -> ModelRegistry:
    return ModelRegistry(f"sqlite:///{root}/mlflow.db", root / "artifacts")


def _train(registry: ModelRegistry, slope: float) -> str:
    with registry.run("test", f"slope {slope}") as run:
        uri = registry.log_pd_model(SlopeModel(slope), ["dbt_12m"], set())
        return registry.register(uri, run.info.run_id, {"kind": "stand-in"}).version


@pytest.fixture
def two_champions(tmp_path) -> tuple[ModelRegistry, str, str]:
    """v1 was champion, v2 is: v1 carries previous-champion."""
    registry = _registry(tmp_path)
    v1 = _train(registry, 0.1)
    registry.move_alias(CHAMPION, v1, "first")
    v2 = _train(registry, 0.2)
    registry.move_alias(CHAMPION, v2, "second")
    return registry, v1, v2


# ------------------------------------------------------------------------ registry faults


def test_a_deleted_champion_version_is_named_with_the_store_and_the_way_back(two_champions):
    registry, v1, v2 = two_champions
    registry.client.delete_model_version(MODEL_NAME, v2)  # MLflow drops its aliases too
    store = str(Path(registry.tracking_uri.removeprefix("sqlite:///")).resolve())
    expected = (
        f"no version of '{MODEL_NAME}' carries the '{CHAMPION}' alias in the MLflow store "
        f"{store} any more: its version was deleted (a deleted version loses its aliases); "
        f"versions: v{v1} (previous-champion). Point it back with `solvency rollback` (the "
        "previous champion, or --version N) or promote the challenger (`solvency promote`)"
    )
    with pytest.raises(NoChampionError) as raised:
        registry.champion()
    assert str(raised.value) == expected
    with pytest.raises(NoChampionError) as raised:  # what the daily run calls
        registry.load_pd_model(CHAMPION)
    assert str(raised.value) == expected
    # the way out it names works
    registry.move_alias(CHAMPION, v1, "rollback")
    assert registry.champion().version == v1


def test_an_alias_pointing_at_a_version_the_store_lost_names_that_version(two_champions):
    """A partly restored store: the alias row survived, its version's row did not."""
    registry, v1, v2 = two_champions
    path = Path(registry.tracking_uri.removeprefix("sqlite:///")).resolve()
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM model_versions WHERE version = ?", (int(v2),))
    with pytest.raises(NoChampionError) as raised:
        registry.load_pd_model(CHAMPION)
    assert str(raised.value) == (
        f"the '{CHAMPION}' alias of '{MODEL_NAME}' points at version {v2}, which does not "
        f"exist in the MLflow store {path} (versions: v{v1} (previous-champion)): point it "
        "at an existing version (`solvency rollback --version N`, or `solvency promote` the "
        "challenger)"
    )
    with pytest.raises(MissingVersionError, match=rf"^the 'challenger' alias .* version {v2}"):
        registry.model_version("challenger")
    with pytest.raises(MissingVersionError) as raised:
        registry.load_pd_model(7)
    assert str(raised.value) == (
        f"version 7 of '{MODEL_NAME}' does not exist in the MLflow store {path}; "
        f"versions: v{v1} (previous-champion)"
    )
    with pytest.raises(MissingVersionError, match=f"version 9 of '{MODEL_NAME}' does not"):
        registry.move_alias(CHAMPION, 9, "rollback to a typo")
    # promotion and rollback still repair it
    registry.move_alias(CHAMPION, v1, "rollback")
    model, mv = registry.load_pd_model(CHAMPION)
    assert mv.version == v1 and model.slope == 0.1


def test_a_champion_without_its_model_files_names_them_and_what_to_do(tmp_path):
    registry = _registry(tmp_path)
    v1 = _train(registry, 0.1)
    registry.move_alias(CHAMPION, v1, "first")
    shutil.rmtree(tmp_path / "artifacts")
    with pytest.raises(MissingArtifactsError) as raised:
        registry.load_pd_model(CHAMPION)
    message = str(raised.value)
    assert message.startswith(
        f"the model files of '{MODEL_NAME}' version {v1} (the '{CHAMPION}' alias) are "
        f"missing: {tmp_path / 'artifacts'}/test/models/m-"
    )
    assert (
        f"does not hold the model (MLflow store {(tmp_path / 'mlflow.db').resolve()}, "
        f"artifact root {tmp_path / 'artifacts'}): restore the artifacts folder from a "
        "back-up, roll back to a version whose files exist (`solvency rollback --version N`), "
        "or train and promote a new model (`solvency train`, `solvency promote`)"
    ) in message
    assert "\n" not in message


def test_a_store_that_is_not_a_database_names_the_file(tmp_path):
    path = tmp_path / "mlflow.db"
    path.write_bytes(b"not a database " * 1000)
    registry = _registry(tmp_path)
    expected = (
        f"the MLflow store {path.resolve()} is not a usable SQLite database (file is not a "
        "database): restore it from a back-up, or move it away to start an empty store (then "
        "`solvency train` and `solvency promote`); the mlflow_uri setting "
        "(MLFLOW_TRACKING_URI) names it"
    )
    for call in (
        registry.champion,
        lambda: registry.version_by_alias(CHAMPION),  # not taken for "no champion"
        lambda: registry.run("test", "a run").__enter__(),
    ):
        with pytest.raises(StoreError) as raised:
            call()
        assert str(raised.value) == expected


def test_a_locked_store_names_the_file_after_mlflows_wait(tmp_path):
    """Another process mid-transaction on the store (an open exclusive transaction)."""
    path = tmp_path / "mlflow.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError) as raised:
            _registry(tmp_path).champion()
    finally:
        holder.close()
    assert str(raised.value) == (
        f"the MLflow store {path.resolve()} is locked by another process (database is "
        "locked): wait for the other training, promotion or daily run to finish, or stop "
        "the program holding the file, then run again"
    )
    assert isinstance(raised.value, RegistryError)


# ------------------------------------------------------------- one line from the command


@pytest.fixture(scope="module")
def prefect_api() -> str:
    """The session's temporary Prefect server, shared with the `solvency` processes below
    (each would otherwise start one of its own)."""
    from flows.runtime import local_prefect_api

    return local_prefect_api() or os.environ["PREFECT_API_URL"]


def _solvency(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )


def _env(root: Path, api: str) -> dict[str, str]:
    return {
        "PREFECT_API_URL": api,
        "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
        "SOLVENCY_MLFLOW_ARTIFACTS": str(root / "artifacts"),
        "SOLVENCY_DECISION_DB": f"sqlite:///{root}/decisions.db",
    }


_PREFECT_LOG_LINE = re.compile(r"\d\d:\d\d:\d\d\.\d{3} \| ")


def _one_line(result: subprocess.CompletedProcess, line: str) -> None:
    """Exit status 1, `line` as the last line on stderr, no traceback, nothing on stdout."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    # Prefect's own log lines (its exit may log after ours: "EventsWorker - Still processing")
    ours = [t for t in result.stderr.splitlines() if t and not _PREFECT_LOG_LINE.match(t)]
    assert ours[-1] == line, result.stderr
    assert result.stderr.count("solvency: ") == 1
    assert line not in result.stdout


def test_a_refused_concurrent_ingest_is_one_line(tmp_path, prefect_api, clean_tables, write_tables):
    source, lake = write_tables(clean_tables), tmp_path / "lake"
    with Lake(lake).locked():  # another load is writing the lake
        result = _solvency(
            "ingest", str(source), "--lake", str(lake), env=_env(tmp_path, prefect_api)
        )
    _one_line(
        result, f"solvency: another process is writing the lake at {lake}; wait for it to finish"
    )
    assert "Encountered exception during execution: LakeBusyError(" in result.stderr


def test_a_refused_rescore_of_a_date_being_run_is_one_line(tmp_path, prefect_api):
    lake = tmp_path / "lake"
    with DailyStore(lake).lock("2026-11-30"):  # a run of that date is going
        holder = (DailyStore(lake).root / ".2026-11-30.lock").read_text()
        result = _solvency(
            "rescore", "--as-of", "2026-11-30", "--lake", str(lake),
            env=_env(tmp_path, prefect_api),
        )  # fmt: skip
    _one_line(
        result,
        f"solvency: a rescoring of 2026-11-30 is already running ({holder}); wait for it to "
        "finish, then run again if needed",
    )


def test_a_store_fault_in_a_command_is_one_line(tmp_path, prefect_api):
    (tmp_path / "mlflow.db").write_bytes(b"garbage " * 1000)
    result = _solvency("rollback", "--version", "1", env=_env(tmp_path, prefect_api))
    _one_line(
        result,
        f"solvency: the MLflow store {(tmp_path / 'mlflow.db').resolve()} is not a usable "
        "SQLite database (file is not a database): restore it from a back-up, or move it away "
        "to start an empty store (then `solvency train` and `solvency promote`); the "
        "mlflow_uri setting (MLFLOW_TRACKING_URI) names it",
    )


# ------------------------------------------------- Prefect's server dies with its parent

_STARTS = {
    # the project's own start (the Dask runner's workers share it)
    "local_prefect_api": (
        "import time\n"
        "from flows.runtime import local_prefect_api\n"
        "print(local_prefect_api(), flush=True)\n"
        "time.sleep(600)\n"
    ),
    # Prefect's own start, at a flow's first run
    "first flow run": (
        "import time\n"
        "import flows\n"
        "from prefect import flow\n"
        "flow(lambda: 1, name='one')()\n"
        "print('ran', flush=True)\n"
        "time.sleep(600)\n"
    ),
}


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for an init that may not reap)."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("start", list(_STARTS))
def test_the_temporary_prefect_server_dies_with_a_killed_parent(tmp_path, start):
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    parent = subprocess.Popen(
        [sys.executable, "-c", _STARTS[start]], stdout=subprocess.PIPE, text=True, env=env
    )
    servers: list[int] = []
    try:
        ready, _, _ = select.select([parent.stdout], [], [], 300)
        assert ready and parent.stdout.readline().strip(), "the server did not start"
        servers = [p for p in _children(parent.pid) if "uvicorn" in _cmdline(p)]
        assert len(servers) == 1 and _running(servers[0])
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _running(servers[0]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _running(servers[0]), "the server outlived its killed parent by 30 s"
    finally:
        parent.kill()
        parent.wait(timeout=30)
        for pid in servers:  # this test's own server, should it have survived
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


# ------------------------------------------------------------- the result cache's bounds


def test_prune_cache_removes_expired_then_oldest_files_beyond_the_size(tmp_path):
    now = 1_800_000_000.0
    folder = tmp_path / "storage"
    ages = {"a": 10, "b": 5, "c": 3, "d": 2, "e": 1}  # days old; 100 bytes each
    for name, days in ages.items():
        path = folder / ("sub" if name == "c" else "") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 100)
        os.utime(path, (now - days * 86400, now - days * 86400))
    (folder / "link").symlink_to(folder / "e")  # not a file of its own: never removed
    removed = prune_cache(folder, max_bytes=250, max_age=dt.timedelta(days=7), now=now)
    # a is expired; of b, c, d, e (400 bytes) the two newest fit in 250 bytes
    assert removed == [folder / "a", folder / "b", folder / "sub" / "c"]
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == ["d", "e", "link"]
    assert prune_cache(folder, 250, dt.timedelta(days=7), now=now) == []
    assert prune_cache(tmp_path / "nowhere", 1, dt.timedelta(days=1)) == []
    assert prune_cache(folder, 0, dt.timedelta(days=7), now=now, prefix="e") == [folder / "e"]


def test_cache_settings_are_read_named_and_bound_the_daily_tasks(monkeypatch):
    from flows.daily import daily_features, matured_cohorts

    defaults = Settings()
    assert (defaults.cache_days, defaults.cache_max_mb) == (7, 500)
    environ = {"SOLVENCY_CACHE_DAYS": "3", "SOLVENCY_CACHE_MAX_MB": "64"}
    assert Settings.from_env(environ).cache_days == 3
    assert Settings.from_env(environ).cache_max_mb == 64
    with pytest.raises(SettingsError, match="cache_max_mb must be >= 1, got 0"):
        Settings.from_env({"SOLVENCY_CACHE_MAX_MB": "0"})
    with pytest.raises(SettingsError, match=r"setting cache_days \(SOLVENCY_CACHE_DAYS\)"):
        Settings.from_env({"SOLVENCY_CACHE_DAYS": "soon"})
    # the tasks' expiry: the process's setting, the default when the settings are invalid
    expiry = dt.timedelta(days=Settings.from_env().cache_days)
    assert daily_features.cache_expiration == matured_cohorts.cache_expiration == expiry
    monkeypatch.setenv("SOLVENCY_CACHE_DAYS", "3")
    assert cache_expiration() == dt.timedelta(days=3)
    monkeypatch.setenv("SOLVENCY_CACHE_DAYS", "-1")
    assert cache_expiration() == dt.timedelta(days=7)


def test_cached_results_land_in_the_folder_that_is_pruned(tmp_path, prefect_api):
    """Prefect writes a cached task's result where `prune_result_cache` looks, and the
    daily run's pruning keeps that folder within its settings."""
    from prefect import flow, task
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    key = CACHE_KEY_PREFIX + "faults-test-cached-result"

    @task(cache_key_fn=lambda *_: key, cache_expiration=cache_expiration())
    def cached() -> str:
        return "x" * 200_000

    @flow(name="cached")
    def run() -> str:
        return cached()

    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: tmp_path / "storage"}):
        run()
        folder = result_cache_folder()
        assert folder == tmp_path / "storage" and (folder / key).is_file()
        old = folder / f"{CACHE_KEY_PREFIX}old-result"
        other = folder / "another-projects-result"  # the folder is shared: never touched
        stamp = time.time() - 8 * 86400
        for path in (old, other):
            path.write_bytes(b"x" * 100)
            os.utime(path, (stamp, stamp))
        assert prune_result_cache(Settings()) == [old]  # 7 days: the old one goes
        assert other.is_file()
        assert prune_result_cache(Settings(cache_max_mb=1)) == []  # 0.2 MB fits in 1 MB
        assert (folder / key).is_file()
