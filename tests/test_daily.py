"""The daily rescoring flow: idempotent, atomic per date, locked, and honest about its inputs."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from data.daily_store import DailyStore, RunBusyError
from data.lake import Lake
from flows.daily import daily_rescore_flow
from flows.deployments import MONITORING_CRON, RETRAIN_CRON, build_deployments, daily_cron
from flows.settings import Settings
from models.registry import NoChampionError
from tests.book_fixtures import END, context_for

_context = context_for


def _run(book, date: dt.date, drop_dir=None, uri=None):
    changes = {"drop_dir": drop_dir} if drop_dir is not None else {}
    if uri is not None:
        changes["mlflow_uri"] = uri
    return daily_rescore_flow(_context(book, date, **changes))


def _outputs(store: DailyStore, date: str) -> dict[str, pd.DataFrame]:
    return {n: store.read(date, n) for n in ("scores", "recommendations", "alerts", "migration")}


def test_rerun_of_a_date_replaces_its_outputs_as_one_unit(book):
    date = dt.date(2026, 11, 27)
    first = _run(book, date)
    # The run names its MLflow experiment; it must not leave one active for later runs
    # (mlflow.set_experiment exports MLFLOW_EXPERIMENT_ID to the whole process).
    assert "MLFLOW_EXPERIMENT_ID" not in os.environ
    store = DailyStore(book["lake"])
    before = _outputs(store, date.isoformat())
    run_before = store.pointer(date.isoformat())["run_id"]
    assert len(before["scores"]) == book["buyers"]
    assert first.summary["score_psi"] is not None  # drift against the stored reference
    assert not before["recommendations"][["policyholder_id", "buyer_id"]].duplicated().any()

    second = _run(book, date)
    after = _outputs(store, date.isoformat())
    assert store.pointer(date.isoformat())["run_id"] != run_before
    for name, frame in before.items():
        pd.testing.assert_frame_equal(frame, after[name], obj=name)
    runs = [p for p in (store.root / date.isoformat()).iterdir() if p.is_dir()]
    assert len(runs) == 1  # the replaced run is gone: no duplicates on disk either
    assert second.recommendations_html.exists() and second.monitoring_html.exists()
    assert "data:image/png;base64," in second.monitoring_html.read_text()


def test_a_failure_half_way_leaves_the_previous_outputs_and_a_rerun_completes(book, monkeypatch):
    date = dt.date(2026, 11, 28)
    _run(book, date)
    store = DailyStore(book["lake"])
    published = store.pointer(date.isoformat())
    before = store.read(date.isoformat(), "recommendations")

    def broken(*args, **kwargs):
        raise RuntimeError("injected failure in the recommendation step")

    monkeypatch.setattr("models.limits.recommend.recommend_limits", broken)
    with pytest.raises(RuntimeError, match="injected failure"):
        _run(book, date)
    assert store.pointer(date.isoformat()) == published
    pd.testing.assert_frame_equal(store.read(date.isoformat(), "recommendations"), before)

    monkeypatch.undo()
    _run(book, date)
    assert store.pointer(date.isoformat())["run_id"] != published["run_id"]
    pd.testing.assert_frame_equal(store.read(date.isoformat(), "recommendations"), before)


def test_two_runs_of_the_same_date_cannot_overlap(book):
    date = dt.date(2026, 11, 29)
    store = DailyStore(book["lake"])
    with store.lock(date.isoformat()), pytest.raises(RunBusyError, match="already running"):
        _run(book, date)
    assert store.pointer(date.isoformat()) is None  # the refused run published nothing


def test_a_missing_day_and_bad_rows_are_reported_and_the_run_goes_on(book):
    drops = book["root"] / "drops-edited"
    shutil.copytree(book["drops"], drops, dirs_exist_ok=True)
    shutil.rmtree(drops / "2026-11-29", ignore_errors=True)
    missing = _run(book, dt.date(2026, 11, 29), drop_dir=drops)
    assert missing.summary["inputs_missing"] is True

    day = drops / "2026-11-30"
    invoices = Lake(book["lake"]).read("invoices").head(1)
    bad = invoices.assign(invoice_id="BAD-1", amount=-5.0)
    bad.to_parquet(day / "invoices_bad.parquet", index=False)
    result = _run(book, dt.date(2026, 11, 30), drop_dir=drops)
    assert result.summary["inputs_missing"] is False
    assert result.summary["quarantined_rows"] >= 1
    quarantine = Lake(book["lake"]).read("quarantine")
    bad_rows = quarantine.loc[quarantine["record"].str.contains("BAD-1", regex=False)]
    assert set(bad_rows["column"]) == {"amount"} and (bad_rows["load_date"] == "2026-11-30").all()


def test_unchanged_reason_codes_are_carried_from_the_previous_day(book):
    """Day two keeps day one's reason codes (with the date they were computed) where
    nothing changed, and computes fresh ones (dated day two) elsewhere; none older than
    the weekly refresh."""
    first, second = dt.date(2026, 11, 29), dt.date(2026, 11, 30)
    _run(book, first)
    result = _run(book, second)
    store = DailyStore(book["lake"])
    before = store.read(first.isoformat(), "scores").set_index("buyer_id")
    after = store.read(second.isoformat(), "scores").set_index("buyer_id")
    reasons = ["reason_1", "reason_2", "reason_3", "reason_1_text", "reasons_as_of"]
    # carried rows keep the date their reasons were computed: day one or earlier
    carried = after.loc[after["reasons_as_of"] < pd.Timestamp(second)]
    fresh = after.loc[after["reasons_as_of"] == pd.Timestamp(second)]
    assert len(carried) == result.summary["reasons_carried"] > 0
    assert len(fresh) == result.summary["explained_buyers"] > 0
    assert len(carried) + len(fresh) == after["reasons_as_of"].notna().sum()
    pd.testing.assert_frame_equal(carried[reasons], before.loc[carried.index, reasons])
    assert (carried["grade"] == before.loc[carried.index, "grade"]).all()
    assert (pd.Timestamp(second) - carried["reasons_as_of"]).max() < pd.Timedelta(days=7)
    assert after.loc[after["reasons_as_of"].isna(), "reason_1"].isna().all()


def test_no_champion_stops_with_a_message_for_the_analyst(book, tmp_path):
    with pytest.raises(NoChampionError, match="solvency train"):
        _run(book, dt.date(2026, 11, 27), uri=f"sqlite:///{tmp_path}/empty.db")


def test_deployments_carry_their_schedules_and_parameters(tmp_path):
    settings = Settings(
        lake_dir=tmp_path / "lake",
        demo_dir=tmp_path / "demo",
        mlflow_uri="http://mlflow:5000",
        mlflow_artifacts=tmp_path / "artifacts",
        drop_dir=tmp_path / "drops",
        daily_time="05:30",
        timezone="Europe/Paris",
        auto_promote=True,
    )
    deployments = {d.name: d for d in build_deployments(settings)}
    assert set(deployments) == {"daily-rescore", "monthly-retrain", "monitoring-report"}
    daily = deployments["daily-rescore"].schedules[0].schedule
    assert (daily.cron, daily.timezone) == ("30 5 * * *", "Europe/Paris")
    params = deployments["daily-rescore"].parameters
    assert params["as_of"] is None
    served = Settings.from_mapping(params["settings"])  # what a scheduled run will use
    assert served == settings
    assert params["settings"]["drop_dir"] == str(tmp_path / "drops")
    assert params["settings"]["mlflow_uri"] == "http://mlflow:5000"
    assert deployments["monthly-retrain"].schedules[0].schedule.cron == RETRAIN_CRON
    assert deployments["monthly-retrain"].parameters["settings"]["auto_promote"] is True
    assert deployments["monitoring-report"].schedules[0].schedule.cron == MONITORING_CRON
    assert daily_cron("06:00") == "0 6 * * *"
    with pytest.raises(ValueError, match="HH:MM"):
        daily_cron("25:00")


@pytest.mark.slow
def test_partitions_on_threads_and_on_a_local_dask_cluster_give_identical_outputs(book, tmp_path):
    """The same date in 1 partition, in 5 partitions on threads, and in 5 partitions on a
    local Dask cluster of 2 worker processes (prefect-dask): the same published tables."""
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.daily import rescore_flow_for

    runs = {
        "single": (daily_rescore_flow, 10_000),
        "threads": (daily_rescore_flow.with_options(task_runner=ThreadPoolTaskRunner(2)), 60),
        "dask": (rescore_flow_for(Settings(task_runner="dask", workers=2)), 60),
    }
    outputs, summaries = {}, {}
    for name, (flow_, partition_buyers) in runs.items():
        lake = tmp_path / name
        shutil.copytree(book["lake"], lake)  # the same lake and the same earlier runs
        ctx = _context(book, END, lake_dir=lake, partition_buyers=partition_buyers, drop_dir=None)
        result = flow_(ctx)
        store = DailyStore(lake)
        outputs[name] = {
            **_outputs(store, END.isoformat()),
            "psi": store.read(END.isoformat(), "psi"),
        }
        summaries[name] = result.summary
    assert summaries["single"]["partitions"] == 1
    assert summaries["threads"]["partitions"] == summaries["dask"]["partitions"] == 5
    assert summaries["single"]["explained_buyers"] > 0
    for name in ("threads", "dask"):
        for table, frame in outputs["single"].items():
            pd.testing.assert_frame_equal(outputs[name][table], frame, obj=f"{name} {table}")
        same = {k: v for k, v in summaries[name].items() if k != "partitions"}
        assert same == {k: v for k, v in summaries["single"].items() if k != "partitions"}
    scores = outputs["single"]["scores"]
    assert scores["buyer_id"].is_monotonic_increasing and scores["buyer_id"].is_unique


def test_settings_come_from_a_config_file_overridden_by_the_environment(tmp_path):
    config = tmp_path / "production.toml"
    config.write_text(
        'lake_dir = "/shared/lake"\nmlflow_uri = "http://mlflow:5000"\n'
        'prefect_api_url = "http://prefect:4200/api"\ndask_address = "tcp://scheduler:8786"\n'
        "partition_buyers = 100000\nauto_promote = true\n"
    )
    settings = Settings.from_env(
        {"SOLVENCY_CONFIG": str(config), "MLFLOW_TRACKING_URI": "postgresql://db/mlflow"}
    )
    assert settings.lake_dir == Path("/shared/lake")
    assert settings.mlflow_uri == "postgresql://db/mlflow"  # the environment wins
    assert settings.task_runner == "dask"  # an address means the cluster
    assert settings.partitions(1_000_000) == 10 and settings.partitions(1) == 1
    assert settings.auto_promote is True and settings.prefect_api_url.startswith("http://prefect")
    default = Settings.from_env({})
    assert (default.task_runner, default.partitions(1_000_000)) == ("threads", 4)

    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from flows.runtime import build_task_runner

    runner = build_task_runner(settings)
    assert isinstance(runner, DaskTaskRunner) and runner.address == "tcp://scheduler:8786"
    assert isinstance(build_task_runner(default), ThreadPoolTaskRunner)


def test_the_shipped_production_example_is_a_valid_cluster_configuration():
    """config/production.toml: servers with database backends, shared lake, Dask cluster."""
    path = Path(__file__).resolve().parents[1] / "config" / "production.toml"
    environ = {"SOLVENCY_CONFIG": str(path), "SOLVENCY_WORKERS": "4"}
    settings = Settings.from_env(environ)
    assert settings.task_runner == "dask" and settings.dask_address.startswith("tcp://")
    assert settings.mlflow_uri.startswith("http") and settings.mlflow_artifacts is None
    assert settings.prefect_api_url.endswith("/api") and settings.lake_dir.is_absolute()
    sources = Settings.sources(environ)
    assert sources["workers"] == "environment" and sources["lake_dir"] == "file"
    assert sources["mlflow_artifacts"] == "default"
    assert Settings.from_env({}).mlflow_artifacts == Path("data/mlflow/artifacts")


@pytest.mark.parametrize(
    ("content", "environ", "message"),
    [
        ("lake = 'x'\n", {}, "unknown setting"),
        ("partition_buyers = 0\n", {}, "partition_buyers must be >= 1"),
        ("", {"SOLVENCY_TASK_RUNNER": "kubernetes"}, "task_runner must be one of"),
        ("", {"SOLVENCY_WORKERS": "two"}, "SOLVENCY_WORKERS"),
        ("", {"SOLVENCY_AUTO_PROMOTE": "maybe"}, "auto_promote"),
        ("lake_dir = [", {}, "not valid TOML"),
        ("", {"SOLVENCY_TIMEZONE": "Mars/Olympus"}, "timezone must be an IANA"),
        ("daily_time = '6h'\n", {}, "daily_time must be HH:MM"),
    ],
)
def test_a_bad_setting_is_named(tmp_path, content, environ, message):
    from flows.settings import SettingsError

    config = tmp_path / "bad.toml"
    config.write_text(content)
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"SOLVENCY_CONFIG": str(config), **environ})


def test_score_and_recommend_are_the_daily_flow_with_steps_off(book, tmp_path):
    """`solvency recommend` publishes into the same store as the daily run, so the next
    daily run's history sees its recommendations; a smaller run never silently replaces
    a fuller unit of its date."""
    from flows.daily import RECOMMEND_ONLY, SCORE_ONLY, SmallerRunError

    lake = tmp_path / "lake"
    shutil.copytree(book["lake"], lake)
    day, next_day = dt.date(2026, 11, 27), dt.date(2026, 11, 28)
    store = DailyStore(lake)
    for date in store.dates():  # start from a store without runs on or after `day`
        if date >= day.isoformat():
            store.pointer_path(date).unlink()
    recommended = daily_rescore_flow(_context(book, day, lake_dir=lake), RECOMMEND_ONLY)
    pointer = store.pointer(day.isoformat())
    assert pointer["steps"] == ["score", "limits"]
    assert {"scores.parquet", "recommendations.parquet", "recommendations.csv"} <= set(
        pointer["files"]
    )
    assert not store.has(day, "alerts.parquet") and not store.has(day, "monitoring.html")
    assert recommended.monitoring_html is None and recommended.summary["alerts_total"] is None

    daily_rescore_flow(_context(book, next_day, lake_dir=lake))
    previous, scores, history = store.previous_outputs(next_day, 90)
    assert previous == day.isoformat() and len(scores) == book["buyers"]
    assert (history["as_of_date"] == pd.Timestamp(day)).sum() == len(
        store.read(day, "recommendations")
    )

    published = store.pointer(next_day.isoformat())
    with pytest.raises(SmallerRunError, match="--replace"):
        daily_rescore_flow(_context(book, next_day, lake_dir=lake), SCORE_ONLY)
    assert store.pointer(next_day.isoformat()) == published
    import dataclasses

    daily_rescore_flow(
        _context(book, next_day, lake_dir=lake), dataclasses.replace(SCORE_ONLY, replace=True)
    )
    assert store.pointer(next_day.isoformat())["steps"] == ["score"]
    scored = store.read(next_day, "scores")
    in_default = scored["grade"] == 10
    # every scored buyer explained today (a buyer with nothing raising its PD has no code)
    assert (scored.loc[~in_default, "reasons_as_of"] == pd.Timestamp(next_day)).all()


def test_a_table_breaking_its_contract_is_never_published(book, tmp_path, monkeypatch):
    """The output contracts are checked while the run stages its files: a table with a
    wrong type stops the run and the date's published unit stays as it was."""
    from models.limits import recommend as recommend_module
    from models.outputs import OutputContractError

    lake = tmp_path / "lake"
    shutil.copytree(book["lake"], lake)
    store = DailyStore(lake)
    date = dt.date(2026, 11, 30)
    before = store.pointer(date)
    engine = recommend_module.recommend_limits

    def grades_as_floats(*args, **kwargs):
        recs = engine(*args, **kwargs)
        return recs.assign(grade=recs["grade"].astype("float64"))

    monkeypatch.setattr(recommend_module, "recommend_limits", grades_as_floats)
    with pytest.raises(
        OutputContractError,
        match=r"(?s)recommendations.*column grade: type must be Int64, is float64",
    ):
        daily_rescore_flow(_context(book, date, lake_dir=lake, drop_dir=None))
    assert store.pointer(date) == before


def test_a_scheduled_run_rebuilds_its_context_from_the_deployment_parameters(book, tmp_path):
    """What `solvency serve` records (plain settings values) is all a scheduled run needs."""
    import dataclasses

    from flows.daily import scheduled_rescore_flow

    lake = tmp_path / "lake"
    shutil.copytree(book["lake"], lake)
    served = dataclasses.replace(
        book["settings"], lake_dir=lake, drop_dir=None,
        decision_db_url=f"sqlite:///{tmp_path}/decisions.db",
    )  # fmt: skip
    parameters = json.loads(json.dumps(served.to_mapping()))  # as the Prefect API keeps them
    result = scheduled_rescore_flow(as_of="2026-11-30", settings=parameters)
    assert result.as_of == "2026-11-30" and result.pointer.is_relative_to(lake)
    assert DailyStore(lake).pointer("2026-11-30")["steps"] == [
        "score", "limits", "decisions", "alerts", "monitoring"
    ]  # fmt: skip


def test_a_drop_file_that_fails_publishes_the_day_and_the_run_ends_failed(
    book, tmp_path, monkeypatch
):
    """The day's outputs come from what loaded; the scheduler (and the CLI's exit code)
    still sees the failed files."""
    import dataclasses

    from typer.testing import CliRunner

    from flows.cli import app
    from flows.daily import DropFilesFailedError, scheduled_rescore_flow

    lake = tmp_path / "lake"
    shutil.copytree(book["lake"], lake)
    drops = tmp_path / "drops"
    shutil.copytree(book["drops"], drops)
    day = drops / "2026-11-30"
    (day / "notes.txt").write_text("not a table")
    (day / "events_extra.csv").write_bytes(b"buyer_id,event_date\nB\xe9,2026-11-30\n")
    served = dataclasses.replace(
        book["settings"], lake_dir=lake, drop_dir=drops,
        decision_db_url=f"sqlite:///{tmp_path}/decisions.db",
    )  # fmt: skip
    parameters = json.loads(json.dumps(served.to_mapping()))
    with pytest.raises(DropFilesFailedError, match=r"notes\.txt, events_extra\.csv"):
        scheduled_rescore_flow(as_of="2026-11-30", settings=parameters)
    published = DailyStore(lake).pointer("2026-11-30")
    assert published["summary"]["failed_files"] == ["notes.txt", "events_extra.csv"]
    summary = published["summary"]
    assert summary["files_failed"] == 2 and summary["files"] > 2  # the rest of the drop ran
    # the command line, with the same settings as the process's own
    monkeypatch.setattr(sys.modules["flows.cli.app"].STATE, "settings", served)
    result = CliRunner().invoke(app, ["rescore", "--as-of", "2026-11-30"])
    assert result.exit_code == 1, result.output
    assert "files not loaded: notes.txt, events_extra.csv" in result.output
