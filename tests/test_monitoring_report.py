"""Monitoring report: history from a published store, a self-contained page, the notebook."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data.daily_store import DailyStore
from models.limits.report import ACTIONS
from models.monitoring.alerts import ALERT_TYPES, alert_summary
from models.monitoring.report import (
    GRADES,
    history_frame,
    monitoring_html,
    psi_history,
)

DATES = ("2026-06-01", "2026-06-02", "2026-06-03")
EVIL = "<script>alert(1)</script>"
BREAKOUT = '"><img src=x onerror=alert(1)>'
FEATURES = ("equity_ratio", "days_beyond_terms", "turnover_growth", "statement_age_months")
NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "portfolio_monitoring.ipynb"
PNG = "data:image/png;base64,"


def _scores(rng: np.random.Generator, date: str, buyers: list[str]) -> pd.DataFrame:
    grade = rng.integers(1, 11, size=len(buyers))
    frame = pd.DataFrame(
        {
            "buyer_id": buyers,
            "as_of_date": pd.Timestamp(date),
            "pd": np.where(grade == 10, 1.0, 0.0005 * 2.0 ** (grade - 1)),
            "grade": grade.astype("int64"),
            "model_version": "3",
        }
    )
    for i in (1, 2, 3):
        frame[f"reason_{i}"] = "equity_ratio"
        frame[f"reason_{i}_text"] = "Low equity ratio"
    return frame


def _alerts(rng: np.random.Generator, date: str, scores: pd.DataFrame) -> pd.DataFrame:
    n = 9
    picked = scores.sample(n, random_state=int(rng.integers(1_000_000)))
    previous = pd.array(np.clip(picked["grade"].to_numpy() - 1, 1, 10), dtype="Int64")
    previous[0] = pd.NA
    return pd.DataFrame(
        {
            "as_of_date": pd.Timestamp(date),
            "buyer_id": [EVIL, *picked["buyer_id"].iloc[1:]],
            "alert": rng.choice(list(ALERT_TYPES), size=n),
            "severity": ["high", *rng.choice(["high", "medium", "low"], size=n - 1)],
            "reason": ["<b>insolvency filed</b>", *(["grade moved"] * (n - 1))],
            "grade": picked["grade"].to_numpy(),
            "previous_grade": previous,
            "pd": picked["pd"].to_numpy(),
            "limits": rng.integers(1, 4, size=n),
            "aggregate_limit": rng.choice([50_000.0, 250_000.0, 1_500_000.0], size=n),
            "policyholders": rng.integers(1, 3, size=n),
        }
    )


def _psi(rng: np.random.Generator) -> pd.DataFrame:
    values = np.round(rng.uniform(0, 0.35, size=len(FEATURES) + 1), 4)
    lights = np.where(values < 0.10, "green", np.where(values < 0.25, "yellow", "red"))
    return pd.DataFrame(
        {
            "name": ["score", *FEATURES],
            "psi": values,
            "light": lights,
            "missing_share_reference": 0.01,
            "missing_share_now": np.round(rng.uniform(0, 0.05, size=len(FEATURES) + 1), 3),
        }
    )


def _migration(previous: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    merged = previous[["buyer_id", "grade"]].merge(
        scores[["buyer_id", "grade"]], on="buyer_id", how="outer", suffixes=("_prev", "")
    )
    return (
        merged.astype({"grade_prev": "Int64", "grade": "Int64"})
        .groupby(["grade_prev", "grade"], dropna=False)
        .size()
        .rename("buyers")
        .reset_index()
        .rename(columns={"grade_prev": "previous_grade"})
    )


def _backtest(rng: np.random.Generator) -> pd.DataFrame:
    count = rng.integers(20, 80, size=9)
    mean_pd = 0.0005 * 2.0 ** np.arange(9)
    defaults = rng.binomial(count, np.minimum(mean_pd * 1.5, 1))
    return pd.DataFrame(
        {
            "grade": np.arange(1, 10),
            "count": count,
            "defaults": defaults,
            "mean_pd": mean_pd,
            "default_rate": defaults / count,
            "p_value": rng.uniform(0, 1, size=9),
            "light": rng.choice(["green", "yellow", "red"], size=9),
            "conservative": rng.random(9) < 0.3,
            "cohort_date": "2025-06-03",
        }
    )


def _recommendations(rng: np.random.Generator, scores: pd.DataFrame) -> pd.DataFrame:
    limit = rng.choice([50_000.0, 250_000.0], size=len(scores))
    return pd.DataFrame(
        {
            "policyholder_id": "P1",
            "buyer_id": scores["buyer_id"],
            "action": rng.choice(list(ACTIONS), size=len(scores)),
            "limit_amount": limit,
            "recommended_amount": limit,
        }
    )


def build_store(lake: Path, seed: int = 7) -> dict[str, dict]:
    """Publish three small daily runs through the real staging/commit API; their summaries."""
    rng = np.random.default_rng(seed)
    store = DailyStore(lake)
    previous = None
    summaries = {}
    for i, date in enumerate(DATES):
        buyers = [f"B{j:03d}" for j in range(i, 40 + i)]  # one gone, one new per day
        scores = _scores(rng, date, buyers)
        alerts = _alerts(rng, date, scores)
        psi = _psi(rng)
        recs = _recommendations(rng, scores)
        actions = recs["action"].value_counts()
        summary = {
            "as_of": date,
            "buyers": len(scores),
            "scored": int((scores["grade"] < 10).sum()),
            "in_default": int((scores["grade"] == 10).sum()),
            "model_version": "3",
            "policy_version": "2026.1",
            "score_psi": float(psi["psi"].iat[0]),
            "max_feature_psi": float(psi["psi"].iloc[1:].max()),
            "features_red": int((psi["light"].iloc[1:] == "red").sum()),
            "backtest_auc": 0.81 if i == 2 else None,
            "backtest_light": "yellow" if i == 2 else None,
            "alerts_total": len(alerts),
            "alerts": alert_summary(alerts),  # per type, zeros and "total" included
            "actions": {a: int(actions.get(a, 0)) for a in ACTIONS},
            "inputs_missing": i == 1,
            "quarantined_rows": i,
        }
        with store.lock(date):
            staging = store.stage(date)
            staging.write_frame("scores", scores)
            staging.write_frame("alerts", alerts)
            staging.write_frame("psi", psi)
            staging.write_frame("recommendations", recs)
            if previous is not None:
                staging.write_frame("migration", _migration(previous, scores))
            if i == 2:
                staging.write_frame("backtest", _backtest(rng))
            staging.write_text("monitoring.html", "<html></html>")
            store.commit(staging, summary)
        summaries[date] = summary
        previous = scores
    return summaries


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    root = tmp_path_factory.mktemp("lake")
    return root, build_store(root)


def _page(store: DailyStore, date: str, history: pd.DataFrame | None = None) -> str:
    files = store.pointer(date)["files"]

    def optional(name: str) -> pd.DataFrame | None:
        return store.read(date, name) if f"{name}.parquet" in files else None

    return monitoring_html(
        date,
        store.pointer(date)["summary"],
        optional("psi"),
        optional("migration"),
        optional("backtest"),
        optional("alerts"),
        history,
    )


def test_history_frame(lake: tuple[Path, dict[str, dict]]) -> None:
    root, summaries = lake
    history = history_frame(DailyStore(root))
    assert list(history["date"]) == list(DATES)
    shares = history[[f"grade_{g}" for g in GRADES]]
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    for row, date in zip(history.itertuples(index=False), DATES, strict=True):
        summary = summaries[date]
        assert row.buyers == summary["buyers"] and row.alerts_total == summary["alerts_total"]
        for kind in ALERT_TYPES:
            assert getattr(row, f"alerts_{kind}") == summary["alerts"].get(kind, 0)
        for action in ACTIONS:
            assert getattr(row, f"action_{action}") == summary["actions"][action]
    # alert counts per type add up to the total; shares match the scores file
    alert_columns = [f"alerts_{k}" for k in ALERT_TYPES]
    assert (history[alert_columns].sum(axis=1) == history["alerts_total"]).all()
    grades = DailyStore(root).read(DATES[0], "scores")["grade"]
    assert history["grade_10"].iat[0] == pytest.approx((grades == 10).mean())
    assert np.isnan(history["backtest_auc"].iat[0]) and history["backtest_auc"].iat[2] == 0.81
    assert list(history["inputs_missing"]) == [False, True, False]
    assert not history.columns.duplicated().any()


def test_thresholds_are_those_of_validation() -> None:
    """One definition of the PSI thresholds and lights: the report imports validation's."""
    from models.monitoring import report as monitoring_report
    from models.pd import validation

    assert monitoring_report.PSI_WATCH is validation.PSI_WATCH
    assert monitoring_report.PSI_SHIFT is validation.PSI_SHIFT
    assert monitoring_report.NOT_APPLICABLE is validation.NOT_APPLICABLE
    assert monitoring_report.psi_light is validation.psi_light


def test_history_of_an_empty_store(tmp_path: Path) -> None:
    history = history_frame(DailyStore(tmp_path))
    assert history.empty and {"date", "grade_1", "grade_10", "alerts_downgrade"} <= set(history)
    assert psi_history(DailyStore(tmp_path)).empty


def test_psi_history(lake: tuple[Path, dict[str, dict]]) -> None:
    root, _ = lake
    frame = psi_history(DailyStore(root))
    assert len(frame) == len(DATES) * (len(FEATURES) + 1)
    assert list(frame.columns[:4]) == ["date", "name", "psi", "light"]


def test_monitoring_html_is_self_contained_and_escaped(lake: tuple[Path, dict[str, dict]]) -> None:
    root, _ = lake
    store = DailyStore(root)
    page = _page(store, DATES[-1], history_frame(store))
    assert page.count(PNG) >= 3 + 3  # psi, migration, backtest + three history plots
    assert not re.search(r"<script|<link|<iframe|src=\"(?!data:)|href=|url\(|@import", page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;insolvency filed&lt;/b&gt;" in page and "<b>" not in page
    assert "Portfolio monitoring as of 2026-06-03" in page
    for text in ("Stability (PSI)", "Grade migration", "Backtest", "Alerts", "Over time"):
        assert text in page
    assert "light-red" in page or "light-yellow" in page or "light-green" in page
    assert "<th>conservative</th>" in page
    assert page == _page(store, DATES[-1], history_frame(store))  # deterministic


@pytest.mark.parametrize("payload", [EVIL, BREAKOUT])
def test_every_data_text_is_autoescaped(lake: tuple[Path, dict[str, dict]], payload: str) -> None:
    """Buyer ids, alert texts, policyholders, feature names and summary values: escaped."""
    root, summaries = lake
    store = DailyStore(root)
    date = DATES[-1]
    alerts = store.read(date, "alerts").assign(severity="high")
    alerts[["buyer_id", "reason", "policyholders"]] = alerts[
        ["buyer_id", "reason", "policyholders"]
    ].astype(object)
    alerts.loc[:2, ["buyer_id", "reason", "policyholders"]] = payload
    alerts.loc[3, "alert"] = payload  # an alert type nobody configured
    psi = store.read(date, "psi")
    psi.loc[1, "name"] = payload
    summary = {**summaries[date], "model_version": payload, "policy_version": payload}
    page = monitoring_html(
        date, summary, psi, store.read(date, "migration"), None, alerts, history_frame(store)
    )
    assert payload not in page
    assert "<script" not in page.lower() and "<img src=x" not in page
    assert page.count("<img ") == page.count('<img src="data:image/png;base64,')
    escaped = payload.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    escaped = escaped.replace('"', "&#34;")
    # 3 rows x (buyer, reason, policyholders), the alert type in both alert tables, the
    # feature's PSI row, model and policy in the header line and the model card
    assert page.count(escaped) == 3 * 3 + 2 + 1 + 2 + 2


def test_monitoring_html_without_frames(lake: tuple[Path, dict[str, dict]]) -> None:
    _, summaries = lake
    page = monitoring_html(DATES[0], summaries[DATES[0]], None, None, None, None)
    assert PNG not in page
    assert "No migration" in page and "No matured cohort" in page
    assert "No PSI published" in page
    assert "counts from the run summary" in page
    empty = monitoring_html("2026-01-01", {}, None, pd.DataFrame(), None, None, pd.DataFrame())
    assert empty.startswith("<!DOCTYPE html>") and "No alerts" in empty


def test_first_run_page(lake: tuple[Path, dict[str, dict]]) -> None:
    """First date: no migration, no backtest; history up to the as-of date only."""
    root, _ = lake
    store = DailyStore(root)
    page = _page(store, DATES[0], history_frame(store))
    assert "No migration" in page and "1 published runs" in page
    assert page.count(PNG) == 1 + 3


def _execute_notebook(lake_root: Path) -> list[dict]:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    saved = os.environ.get("SOLVENCY_LAKE")
    os.environ["SOLVENCY_LAKE"] = str(lake_root)
    try:
        NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    finally:
        if saved is None:
            os.environ.pop("SOLVENCY_LAKE", None)
        else:
            os.environ["SOLVENCY_LAKE"] = saved
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]


def test_notebook_is_saved_without_outputs() -> None:
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_notebook_runs_against_the_store(lake: tuple[Path, dict[str, dict]]) -> None:
    root, _ = lake
    outputs = _execute_notebook(root)
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3
    text = "".join(o.get("text", "") for o in outputs)
    assert "3 published runs" in text and "2026-06-03" in text


def test_notebook_stops_cleanly_on_an_empty_lake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every code cell, run in this process (a kernel start costs seconds), must not raise."""
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("SOLVENCY_LAKE", str(tmp_path / "empty"))
    namespace: dict = {"__name__": "__main__"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for cell in notebook.cells:
            if cell.cell_type == "code":
                exec(compile(cell.source, "<cell>", "exec"), namespace)
    assert namespace["READY"] is False
    assert "No published daily runs" in printed.getvalue()


def test_a_red_backtest_suggests_intercept_recalibration() -> None:
    from models.monitoring.report import _backtest_section

    frame = pd.DataFrame(
        {"grade": [3, 5], "count": [1000, 500], "defaults": [10, 40], "mean_pd": [0.005, 0.05],
         "default_rate": [0.01, 0.08], "p_value": [0.2, 0.001], "light": ["green", "red"],
         "conservative": [False, False]}
    )  # fmt: skip
    section = _backtest_section(frame)
    # 50 defaults observed against 1000 x 0.005 + 500 x 0.05 = 30 predicted
    assert section["observed_to_predicted"] == "1.67"
    assert "solvency recalibrate" in section["advice"] and "1.67" in section["advice"]
    calm = _backtest_section(frame.assign(light=["green", "yellow"]))
    assert calm["advice"] == ""
