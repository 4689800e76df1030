"""Outputs of the daily rescoring, published per as-of date as one unit.

A run writes every file of its date (scores, recommendations, alerts, monitoring) into a
fresh folder `outputs/daily/<date>/<run_id>/`, then publishes them all at once by replacing
the pointer `outputs/daily/<date>.json` (one atomic rename). Readers only follow pointers, so:

- a rerun replaces the date's outputs as a unit (never a mix of two runs, no duplicates);
- a run that fails half-way never moves the pointer: the previous outputs stay visible;
- two runs of the same date cannot interleave: the date is locked (`RunBusyError`).

Every table is checked against its output contract (`models/outputs.py`, handed in as
`check`) while it is staged, so a broken table fails the run before anything is visible.
The pointer also records which steps produced the unit (`steps`): a run with steps switched
off (`solvency score`) publishes a smaller unit, and readers ask `has(date, file)`.

Folders of runs that never published (crashed) or were replaced are swept by the next run.
Like the lake, the store is owner-only (folders 0700, files 0600) unless the `shared_files`
setting says otherwise (`data.permissions`).
The same layout works on a shared file system; an object store would keep the pointer
idea (a conditional put of the pointer object).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from data.lake import OUTPUTS, atomic_write_csv, atomic_write_parquet, atomic_write_text
from data.permissions import dir_mode, make_dirs, open_for_writing

DAILY = "daily"
#: The columns of past recommendations the limit engine's hysteresis needs.
HISTORY_COLUMNS = ["policyholder_id", "buyer_id", "as_of_date", "proposed_action"]
#: A table check: returns the frame if it meets its contract, raises otherwise.
TableCheck = Callable[[str, pd.DataFrame], pd.DataFrame]
DateKey = str | dt.date


def day_key(date: DateKey) -> str:
    """The store's key of an as-of date: YYYY-MM-DD (ISO dates sort as text)."""
    return date.isoformat() if isinstance(date, dt.date) else str(date)


class RunBusyError(RuntimeError):
    """Another run of the same as-of date holds its lock."""


@dataclass
class Staging:
    """Files of one run being written; nothing is visible until `DailyStore.commit`."""

    date: str
    run_id: str
    folder: Path
    files: dict[str, str] = field(default_factory=dict)
    check: TableCheck | None = None

    def write_frame(self, name: str, frame: pd.DataFrame) -> Path:
        """Write one table after checking it against its contract."""
        if self.check is not None:
            frame = self.check(name, frame)
        path = self.folder / f"{name}.parquet"
        atomic_write_parquet(frame, path)
        self.files[f"{name}.parquet"] = path.name
        return path

    def write_csv(self, filename: str, frame: pd.DataFrame) -> Path:
        path = self.folder / filename
        atomic_write_csv(frame, path)
        self.files[filename] = path.name
        return path

    def write_text(self, filename: str, text: str) -> Path:
        path = self.folder / filename
        atomic_write_text(path, text)
        self.files[filename] = path.name
        return path


class DailyStore:
    """The published daily outputs of a lake: `<lake>/outputs/daily/`."""

    def __init__(self, lake_root: Path | str, check: TableCheck | None = None) -> None:
        self.root = Path(lake_root) / OUTPUTS / DAILY
        self.check = check

    def pointer_path(self, date: DateKey) -> Path:
        return self.root / f"{day_key(date)}.json"

    def dates(self) -> list[str]:
        """As-of dates with published outputs, oldest first."""
        return sorted(p.stem for p in self.root.glob("*.json")) if self.root.is_dir() else []

    def dates_with(self, filename: str) -> list[str]:
        """Published dates whose unit holds `filename` (e.g. 'recommendations.parquet')."""
        return [d for d in self.dates() if self.has(d, filename)]

    def pointer(self, date: DateKey) -> dict[str, Any] | None:
        path = self.pointer_path(date)
        return json.loads(path.read_text()) if path.exists() else None

    def has(self, date: DateKey, filename: str) -> bool:
        """Whether the published unit of `date` holds `filename`."""
        pointer = self.pointer(date)
        return pointer is not None and filename in pointer["files"]

    def previous_date(self, date: DateKey) -> str | None:
        """The latest published date strictly before `date` (ISO dates sort as text)."""
        earlier = [d for d in self.dates() if d < day_key(date)]
        return earlier[-1] if earlier else None

    def previous_outputs(
        self, date: DateKey, days: int
    ) -> tuple[str | None, pd.DataFrame | None, pd.DataFrame | None]:
        """What a run of `date` builds on: the previous run's date and scores (grades, PDs
        and the reason codes that may be carried forward), and the recommendations of the
        `days` days before `date` (the limit engine's hysteresis)."""
        key = day_key(date)
        previous = self.previous_date(key)
        scores = None
        if previous:
            columns = pq.read_schema(self.path(previous, "scores.parquet")).names
            scores = self.read(previous, "scores", [c for c in columns if c != "as_of_date"])
        start = (dt.date.fromisoformat(key) - dt.timedelta(days=days)).isoformat()
        dates = [d for d in self.dates_with("recommendations.parquet") if start <= d < key]
        history = (
            pd.concat(
                [self.read(d, "recommendations", HISTORY_COLUMNS) for d in dates],
                ignore_index=True,
            )
            if dates
            else None
        )
        return previous, scores, history

    def path(self, date: DateKey, filename: str) -> Path:
        """Where a published file of `date` is; KeyError naming what exists if absent."""
        date = day_key(date)
        pointer = self.pointer(date)
        if pointer is None:
            raise KeyError(f"nothing published for {date}")
        if filename not in pointer["files"]:
            raise KeyError(f"{filename} not published for {date}; have {sorted(pointer['files'])}")
        return self.root / date / pointer["run_id"] / pointer["files"][filename]

    def read(self, date: DateKey, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        return pq.read_table(self.path(date, f"{name}.parquet"), columns=columns).to_pandas()

    def read_text(self, date: DateKey, filename: str) -> str:
        return self.path(date, filename).read_text(encoding="utf-8")

    @contextlib.contextmanager
    def lock(self, date: DateKey) -> Iterator[None]:
        """Exclusive per-date lock (released by the OS if the process dies)."""
        date = day_key(date)
        make_dirs(self.root)
        path = self.root / f".{date}.lock"
        with open_for_writing(path, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise RunBusyError(
                    f"a rescoring of {date} is already running ({holder}); "
                    "wait for it to finish, then run again if needed"
                ) from exc
            try:
                fh.seek(0)
                fh.truncate()
                stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
                fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {stamp}")
                fh.flush()
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def stage(self, date: DateKey) -> Staging:
        """A fresh run folder for `date` (call under `lock(date)`); sweeps dead runs first."""
        date = day_key(date)
        self.sweep(date)
        run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        folder = self.root / date / run_id
        make_dirs(folder.parent)
        folder.mkdir(mode=dir_mode())
        return Staging(date, run_id, folder, check=self.check)

    def commit(
        self, staging: Staging, summary: dict[str, Any], steps: list[str] | None = None
    ) -> Path:
        """Publish every staged file of the run at once, then drop the replaced run."""
        pointer = {
            "date": staging.date,
            "run_id": staging.run_id,
            "published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "steps": steps or [],
            "files": dict(sorted(staging.files.items())),
            "summary": summary,
        }
        path = self.pointer_path(staging.date)
        atomic_write_text(path, json.dumps(pointer, indent=2, default=str))
        self.sweep(staging.date)
        return path

    def sweep(self, date: DateKey) -> None:
        """Remove run folders of `date` that the pointer does not name."""
        date = day_key(date)
        folder = self.root / date
        if not folder.is_dir():
            return
        current = (self.pointer(date) or {}).get("run_id")
        for run in folder.iterdir():
            if run.is_dir() and run.name != current:
                shutil.rmtree(run, ignore_errors=True)
