"""The training set (monthly snapshots + labels) and its time-ordered split.

A PD model is validated out of time: it is fitted on older cohorts and tested on the latest
cohorts whose outcome is fully known. Label windows overlap by construction (a 12-month
window starts every month), so the split leaves a horizon-long gap between periods: no
training row's label window reaches into the calibration or test period, and no calibration
row's into the test period. Otherwise a default seen in a training label would also be the
event predicted in validation, and validation would be optimistic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.labels import (
    DATE,
    DEFAULT_DEFINITION,
    DefaultDefinition,
    first_default_dates,
    label_snapshots,
)

SPLITS = ("train", "calibration", "test", "excluded")
#: (table, column) pairs that date when a fact became known: the latest one is the default
#: observation end (nothing after it can have been observed).
KNOWN_DATE_COLUMNS = (
    ("events", "event_date"),
    ("invoices", "paid_date"),
    ("invoices", "issue_date"),
    ("financials", "filing_date"),
)

SnapshotBuilder = Callable[[Mapping[str, pd.DataFrame], Sequence], pd.DataFrame]


def monthly_as_of_dates(start, end) -> list[pd.Timestamp]:
    """Month ends in [start, end] (dates at midnight): one snapshot per month and buyer."""
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    return list(pd.date_range(start, end, freq="ME", unit="ns"))


def latest_known_date(tables: Mapping[str, pd.DataFrame]) -> pd.Timestamp:
    """The latest 'known by' date over the tables (events, payments, issues, filings)."""
    latest = [
        tables[table][column].max()
        for table, column in KNOWN_DATE_COLUMNS
        if table in tables and column in tables[table].columns
    ]
    latest = [d for d in latest if pd.notna(d)]
    if not latest:
        raise ValueError(
            "cannot infer observation_end: no dated facts in events, invoices or financials; "
            "pass observation_end"
        )
    return pd.Timestamp(max(latest))


def build_training_set(
    tables: Mapping[str, pd.DataFrame],
    start,
    end,
    observation_end=None,
    definition: DefaultDefinition = DEFAULT_DEFINITION,
    snapshot_builder: SnapshotBuilder | None = None,
) -> pd.DataFrame:
    """Snapshots at every month end in [start, end] with their labels, for fitting a PD model.

    Features come from `snapshot_builder(tables, as_of_dates)` (default
    `features.snapshot.build_snapshots`), called once with all dates so the work over the
    invoices is shared. `observation_end` (default: the latest known date in the tables)
    is the last day whose facts are used for labels.

    Rows of buyers already in default at as_of (`in_default_at_as_of` from the snapshot,
    or `defaulted_before` from the labels) are dropped: they are rated 'in default', never
    scored, so a PD model must not learn from them (it would learn "already defaulted
    buyers default", inflating discrimination). Unmatured rows are kept with label <NA>
    (useful for monitoring); `assign_split` marks them 'excluded'.
    """
    dates = monthly_as_of_dates(start, end)
    if not dates:
        raise ValueError(f"no month end between {start} and {end}: no as-of date to build")
    for table in ("events", "invoices"):
        if table not in tables:
            # Without them every label would silently be 0: refuse instead.
            raise ValueError(f"tables has no '{table}' table: labels cannot be computed")
    observation_end = (
        latest_known_date(tables) if observation_end is None else pd.Timestamp(observation_end)
    )
    if snapshot_builder is None:
        from features.snapshot import build_snapshots

        snapshot_builder = build_snapshots

    snapshots = snapshot_builder(tables, dates)
    missing = [
        c for c in ("buyer_id", "as_of_date", "in_default_at_as_of") if c not in snapshots.columns
    ]
    if missing:
        raise ValueError(f"snapshot builder did not return column(s) {', '.join(missing)}")

    first_defaults = first_default_dates(
        tables["events"], tables["invoices"], definition, known_by=observation_end
    )
    labelled = label_snapshots(snapshots, first_defaults, observation_end, definition)
    in_default = labelled["in_default_at_as_of"].fillna(False).to_numpy(dtype=bool)
    keep = ~(in_default | labelled["defaulted_before"].to_numpy())
    return labelled.loc[keep].reset_index(drop=True)


@dataclass(frozen=True)
class TimeSplit:
    """As-of date ranges (inclusive) of the three periods.

    train: train_start (None: from the first date) .. train_end; calibration:
    calibration_start..calibration_end; test (out of time): test_start..test_end.
    """

    train_end: pd.Timestamp
    calibration_start: pd.Timestamp
    calibration_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    horizon_months: int = DEFAULT_DEFINITION.horizon_months
    observation_end: pd.Timestamp | None = None
    train_start: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        order = [
            self.train_end,
            self.calibration_start,
            self.calibration_end,
            self.test_start,
            self.test_end,
        ]
        if not (order[0] < order[1] <= order[2] < order[3] <= order[4]):  # periods must not overlap
            raise ValueError(f"time split periods out of order: {order}")
        if self.train_start is not None and self.train_start > self.train_end:
            raise ValueError(f"train starts {self.train_start} after it ends {self.train_end}")

    def describe(self) -> str:
        """The split in words, for logs and the validation report."""
        h = pd.DateOffset(months=self.horizon_months)

        def day(ts: pd.Timestamp) -> str:
            return f"{ts:%Y-%m-%d}"

        since = "" if self.train_start is None else f"{day(self.train_start)} .. "
        lines = [
            f"train:       as-of {since or '<= '}{day(self.train_end)}"
            f" (label windows end <= {day(self.train_end + h)})",
            f"calibration: as-of {day(self.calibration_start)} .. {day(self.calibration_end)}"
            f" (label windows end <= {day(self.calibration_end + h)})",
            f"test (out of time): as-of {day(self.test_start)} .. {day(self.test_end)}"
            f" (label windows end <= {day(self.test_end + h)})",
            f"horizon: {self.horizon_months} months",
        ]
        if self.observation_end is not None:
            lines.append(f"observation end: {day(self.observation_end)}")
        return "\n".join(lines)


def months_needed(
    horizon_months: int, test_months: int, calibration_months: int, train_months: int = 1
) -> int:
    """Matured monthly as-of dates a split needs: test + gap + calibration + gap + train.

    The gaps are horizon - 1 months each (a window (as_of, as_of + h] ends on the as-of date
    h months later), hence test + calibration + train + 2 * horizon - 2.
    """
    return test_months + calibration_months + train_months + 2 * horizon_months - 2


def plan_time_split(
    as_of_dates: Sequence | pd.DatetimeIndex,
    observation_end,
    definition: DefaultDefinition = DEFAULT_DEFINITION,
    test_months: int = 3,
    calibration_months: int = 3,
    min_train_months: int = 1,
) -> TimeSplit:
    """Plan train / calibration / out-of-time test periods over the given as-of dates.

    - test: the latest `test_months` as-of dates whose label window has matured
      (as_of + horizon <= observation_end);
    - calibration: the latest `calibration_months` as-of dates whose label window ends on
      or before test_start;
    - train: every as-of date whose label window ends on or before calibration_start
      (at least `min_train_months` of them).
    Raises ValueError saying how much history is needed when there are too few dates.
    """
    if min(test_months, calibration_months, min_train_months) < 1:
        raise ValueError("test_months, calibration_months and min_train_months must be >= 1")
    observation_end = pd.Timestamp(observation_end)
    dates = pd.DatetimeIndex(pd.to_datetime(list(as_of_dates))).astype(DATE)
    if dates.hasnans:
        raise ValueError("as-of dates must not be missing")
    dates = dates.unique().sort_values()
    h = definition.horizon_months
    ends = dates + definition.horizon
    need = months_needed(h, test_months, calibration_months, min_train_months)

    def too_short(stage: str, have: int, want: int) -> ValueError:
        span = f"{dates[0]:%Y-%m-%d} .. {dates[-1]:%Y-%m-%d}" if len(dates) else "no as-of dates"
        matured = int((ends <= observation_end).sum())
        return ValueError(
            f"not enough history for a time split: found {have} {stage} as-of date(s), "
            f"need {want}. With a {h}-month horizon, {test_months} test, "
            f"{calibration_months} calibration and {min_train_months} training month(s), "
            f"the split needs {need} consecutive monthly as-of dates whose label window has "
            f"matured (as_of + {h} months <= observation_end {observation_end:%Y-%m-%d}), "
            f"i.e. about {need + h} months of history: {test_months} test months, a gap of "
            f"{h - 1} months, {calibration_months} calibration months, a gap of {h - 1} months, "
            f"{min_train_months} training month(s). Given: {len(dates)} as-of date(s) "
            f"({span}), {matured} matured."
        )

    test = dates[ends <= observation_end][-test_months:]
    if len(test) < test_months:
        raise too_short("matured (test)", len(test), test_months)
    calibration = dates[ends <= test[0]][-calibration_months:]
    if len(calibration) < calibration_months:
        raise too_short("calibration", len(calibration), calibration_months)
    train = dates[ends <= calibration[0]]
    if len(train) < min_train_months:
        raise too_short("training", len(train), min_train_months)
    return TimeSplit(
        train_end=train[-1],
        calibration_start=calibration[0],
        calibration_end=calibration[-1],
        test_start=test[0],
        test_end=test[-1],
        horizon_months=h,
        observation_end=observation_end,
    )


def assign_split(frame: pd.DataFrame, split: TimeSplit) -> pd.Series:
    """'train' | 'calibration' | 'test' | 'excluded' per row (categorical, frame's index).

    By as_of_date; rows between the periods (the gaps) or after the test period are
    'excluded', and so is any row whose `label` is missing (unmatured or already in
    default) when the frame has a label column: a row without a known outcome can't be
    fitted or validated on.
    """
    as_of = frame["as_of_date"].astype(DATE).to_numpy()
    train = as_of <= split.train_end.to_datetime64()
    if split.train_start is not None:
        train &= as_of >= split.train_start.to_datetime64()
    periods = [
        train,
        (as_of >= split.calibration_start.to_datetime64())
        & (as_of <= split.calibration_end.to_datetime64()),
        (as_of >= split.test_start.to_datetime64()) & (as_of <= split.test_end.to_datetime64()),
    ]
    codes = np.select(periods, [0, 1, 2], default=3).astype(np.int8)
    if "label" in frame.columns:
        codes[frame["label"].isna().to_numpy()] = 3
    return pd.Series(
        pd.Categorical.from_codes(codes, categories=list(SPLITS)), index=frame.index, name="split"
    )


def warm_up_end(first_data_date, lookback_months: int | None = None) -> pd.Timestamp:
    """The first month-end as-of date whose every lookback window lies inside the data (the
    catalogue's `LOOKBACK_MONTHS` after the first data date): earlier dates are warm-up
    dates, their payment windows truncated by the start of the data, not by the buyer."""
    from features.catalogue import LOOKBACK_MONTHS

    months = LOOKBACK_MONTHS if lookback_months is None else lookback_months
    first = pd.Timestamp(first_data_date).normalize()
    return first + pd.DateOffset(months=months) + pd.offsets.MonthEnd(0)


def rolling_origin_splits(
    as_of_dates: Sequence | pd.DatetimeIndex,
    observation_end,
    *,
    folds: int = 3,
    train_start=None,
    definition: DefaultDefinition = DEFAULT_DEFINITION,
    test_months: int = 3,
    calibration_months: int = 3,
    min_train_months: int = 1,
) -> list[TimeSplit]:
    """Expanding-window out-of-time folds over the matured months, oldest first.

    Fold k's test months are the latest `test_months` matured as-of dates moved back by
    k x `test_months` (consecutive folds do not overlap); its calibration months are the
    latest `calibration_months` dates whose label window ends by the test's first date; it
    trains on every as-of date from `train_start` (e.g. `warm_up_end`) up to the month
    before calibration, so each fold uses all the history matured before its test and no
    training label reaches into its test months.
    Raises ValueError naming the fold that lacks history.
    """
    if folds < 1:
        raise ValueError("folds must be >= 1")
    observation_end = pd.Timestamp(observation_end)
    dates = pd.DatetimeIndex(pd.to_datetime(list(as_of_dates))).astype(DATE).unique()
    dates = dates.sort_values()
    start = None if train_start is None else pd.Timestamp(train_start)
    matured = dates[dates + definition.horizon <= observation_end]
    splits = []
    for k in range(folds):
        end = len(matured) - k * test_months
        test = matured[max(0, end - test_months) : end]
        if len(test) < test_months:
            raise ValueError(
                f"fold {folds - k} of {folds}: {len(test)} matured test month(s), need "
                f"{test_months} (as-of dates whose {definition.horizon_months}-month window "
                f"ended by {observation_end:%Y-%m-%d}); use fewer folds or more history"
            )
        calibration = dates[dates + definition.horizon <= test[0]][-calibration_months:]
        if len(calibration) < calibration_months:
            raise ValueError(
                f"fold {folds - k} of {folds}: {len(calibration)} calibration month(s) "
                f"matured before its test ({test[0]:%Y-%m-%d}), need {calibration_months}"
            )
        train = dates[dates < calibration[0]]
        if start is not None:
            train = train[train >= start]
        if len(train) < min_train_months:
            raise ValueError(
                f"fold {folds - k} of {folds}: {len(train)} training month(s) before "
                f"{calibration[0]:%Y-%m-%d}"
                + (f" from {start:%Y-%m-%d}" if start is not None else "")
                + f", need {min_train_months}"
            )
        splits.append(
            TimeSplit(
                train_end=train[-1],
                calibration_start=calibration[0],
                calibration_end=calibration[-1],
                test_start=test[0],
                test_end=test[-1],
                horizon_months=definition.horizon_months,
                observation_end=observation_end,
                train_start=train[0],
            )
        )
    return splits[::-1]


#: Out-of-time folds of a training's rolling-origin validation (fewer when history is short).
VALIDATION_FOLDS = 3


@dataclass(frozen=True)
class TrainingPlan:
    """The as-of dates a training uses, derived from the data window and the label horizon.

    - `first_as_of`: the first date whose every lookback window lies inside the data
      (`warm_up_end`); earlier dates would teach the model truncated payment windows.
    - `folds`: rolling-origin validation, oldest first; fold k fits every eligible date
      whose label matured before its test months (its 'train' and 'calibration' rows).
    - production: every eligible date up to `last_matured` (as-of + horizon <=
      observation end), the rows the registered model is refitted on.
    """

    first_as_of: pd.Timestamp
    last_matured: pd.Timestamp
    folds: tuple[TimeSplit, ...]
    observation_end: pd.Timestamp
    horizon_months: int = DEFAULT_DEFINITION.horizon_months

    def describe(self) -> str:
        lines = [
            f"eligible as-of dates from {self.first_as_of:%Y-%m-%d} (earlier months: warm-up "
            "of the lookback windows)",
            f"production fit: as-of {self.first_as_of:%Y-%m-%d} .. {self.last_matured:%Y-%m-%d}"
            f" (every label matured by {self.observation_end:%Y-%m-%d})",
        ]
        for k, fold in enumerate(self.folds, 1):
            lines.append(
                f"validation fold {k}: fit as-of {fold.train_start:%Y-%m-%d} .. "
                f"{fold.calibration_end:%Y-%m-%d}, test {fold.test_start:%Y-%m-%d} .. "
                f"{fold.test_end:%Y-%m-%d}"
            )
        return "\n".join(lines)


def plan_training(
    as_of_dates: Sequence | pd.DatetimeIndex,
    observation_end,
    first_data_date,
    *,
    folds: int = VALIDATION_FOLDS,
    definition: DefaultDefinition = DEFAULT_DEFINITION,
    test_months: int = 3,
) -> TrainingPlan:
    """Warm-up end, validation folds and production window over the given as-of dates.

    As many folds as asked if the history holds them, else fewer (at least one); raises
    ValueError saying how much history is needed when not even one fold fits.
    """
    observation_end = pd.Timestamp(observation_end)
    first = warm_up_end(first_data_date)
    dates = pd.DatetimeIndex(pd.to_datetime(list(as_of_dates))).astype(DATE)
    dates = dates[dates >= first].unique().sort_values()
    matured = dates[dates + definition.horizon <= observation_end]
    error: ValueError | None = None
    for n in range(folds, 0, -1):
        try:
            splits = rolling_origin_splits(
                dates,
                observation_end,
                folds=n,
                train_start=first,
                definition=definition,
                test_months=test_months,
            )
        except ValueError as exc:
            error = exc  # the one-fold attempt's reason is the one to report
            continue
        return TrainingPlan(
            first, matured[-1], tuple(splits), observation_end, definition.horizon_months
        )
    from features.catalogue import LOOKBACK_MONTHS

    h, lookback = definition.horizon_months, LOOKBACK_MONTHS
    need = lookback + 4 + h + test_months + h - 1
    raise ValueError(
        "not enough history for validation: the data starts "
        f"{pd.Timestamp(first_data_date):%Y-%m-%d} and ends {observation_end:%Y-%m-%d}; a training needs about {need} months: "
        f"~{lookback} months of warm-up for the lookback windows, at least 4 months to fit, "
        f"a {h}-month label horizon, {test_months} test months whose {h}-month window has "
        f"matured ({error})"
    )


def production_split(frame: pd.DataFrame, plan: TrainingPlan) -> pd.Series:
    """'train' for the rows the production model is refitted on, else 'excluded'."""
    as_of = frame["as_of_date"].astype(DATE)
    fitted = (as_of >= plan.first_as_of) & (as_of <= plan.last_matured)
    if "label" in frame.columns:
        fitted &= frame["label"].notna()
    codes = np.where(fitted.to_numpy(), 0, 3).astype(np.int8)
    return pd.Series(
        pd.Categorical.from_codes(codes, categories=list(SPLITS)), index=frame.index, name="split"
    )


#: Largest number of rows a validation fold is fitted on: the fold estimates how well the
#: recipe ranks, for which a random set of buyers of this size is plenty (the learning curve
#: gains nothing measurable from 20k to 100k buyers), and it keeps the folds of a 3M-row
#: training to a fraction of the production refit's cost. The production refit uses all rows.
FOLD_MAX_ROWS = 600_000


def buyers_sample(frame: pd.DataFrame, max_rows: int, seed: int = 0) -> np.ndarray:
    """Boolean mask keeping every row of a random share of the buyers, about `max_rows`
    rows in all (all rows when there are fewer): a buyer's months stay together."""
    if len(frame) <= max_rows:
        return np.ones(len(frame), dtype=bool)
    buyers, group = np.unique(frame["buyer_id"].to_numpy(dtype=object), return_inverse=True)
    draw = np.random.default_rng(seed).random(len(buyers))
    return draw[group] < max_rows / len(frame)


def fold_frame(frame: pd.DataFrame, fold: TimeSplit, seed: int = 0) -> pd.DataFrame:
    """The training rows with a validation fold's split: its fitted rows ('train' and
    'calibration', a `buyers_sample` of `FOLD_MAX_ROWS` on a large book) and 'test'."""
    rows = frame.assign(split=assign_split(frame, fold))
    fitted = rows["split"].isin(["train", "calibration"]).to_numpy()
    kept = buyers_sample(rows.loc[fitted], FOLD_MAX_ROWS, seed)
    if not kept.all():
        rows.loc[np.flatnonzero(fitted)[~kept], "split"] = "excluded"
    return rows


def production_frame(frame: pd.DataFrame, plan: TrainingPlan) -> pd.DataFrame:
    """The training rows split for the production refit (`production_split`)."""
    return frame.assign(split=production_split(frame, plan))
