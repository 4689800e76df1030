"""Dirty rows: corrupted copies of clean rows mixed into the input tables.

Real deliveries contain bad rows; each corruption here breaks at least one rule of its
table's contract, so ingestion can be tested to quarantine exactly these rows, and the
``dirty_rows`` truth frame records where every one of them went.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from data.generator.columns import (
    _BUYER_WIDTH,
    _INVOICE_WIDTH,
    _PH_WIDTH,
    _const_str,
    _id_series,
    _str_series,
)
from data.generator.config import INPUT_TABLES, GeneratorConfig, _rng


def _empty_dirty_rows() -> pd.DataFrame:
    """The ``dirty_rows`` truth of a clean portfolio: same columns and dtypes, no rows."""
    return pd.DataFrame(
        {
            "table": pd.Series([], dtype="str"),
            "row_number": pd.Series([], dtype="int64"),
            "corruption": pd.Series([], dtype="str"),
        }
    )


#: Corruptions injected per table; each breaks at least one rule of the table's contract.
_CORRUPTIONS: dict[str, tuple[str, ...]] = {
    "buyers": (
        "bad_country", "bad_sector", "bad_legal_form", "missing_name", "missing_country",
        "unparseable_date",
    ),
    "financials": (
        "unknown_buyer", "negative_amount", "identity_violation", "filing_before_period_end",
        "bad_currency", "unparseable_date", "missing_total_assets",
    ),
    "invoices": (
        "negative_amount", "zero_amount", "due_before_issue", "paid_before_issue",
        "unknown_buyer", "unknown_policyholder", "duplicate_invoice_id", "unparseable_date",
        "bad_currency", "missing_amount", "missing_buyer_id",
    ),
    "events": (
        "bad_event_type", "unknown_buyer", "unknown_policyholder", "unparseable_date",
        "negative_amount", "missing_event_type",
    ),
    "policies": (
        "bad_scheme", "indemnity_out_of_range", "negative_amount", "missing_scheme",
        "xol_without_first_loss", "bad_waiting_days",
    ),
    "limits": (
        "unknown_buyer", "unknown_policyholder", "negative_amount", "zero_requested",
        "unparseable_date", "missing_limit",
    ),
    "country_risk": (
        "bad_country", "risk_class_out_of_range", "missing_risk_class", "gdp_in_percent",
    ),
}  # fmt: skip
_DATE_COLUMNS: dict[str, tuple[str, ...]] = {
    "buyers": ("incorporation_date",),
    "financials": ("period_end", "filing_date"),
    "invoices": ("issue_date", "due_date", "paid_date"),
    "events": ("event_date",),
    "policies": (),
    "limits": ("decision_date",),
    "country_risk": (),
}
_KEYS: dict[str, tuple[str, ...]] = {
    "buyers": ("buyer_id",),
    "financials": ("buyer_id", "period_end"),
    "invoices": ("invoice_id",),
    "events": ("buyer_id", "event_date", "event_type", "policyholder_id"),
    "policies": ("policyholder_id",),
    "limits": ("policyholder_id", "buyer_id"),
    "country_risk": ("country",),
}
_BAD_DATES = np.array(
    ["2024-13-45", "31/02/2025", "2025-02-30", "2025-06-31", "0000-00-00", "2025-1-"]
)
_SPARE_COUNTRIES = ("IE", "LU", "NO", "CH", "SK", "SI", "HR", "BG", "LT", "LV", "EE", "FI")


class _Fresh:
    """Ids that exist nowhere in the clean data, handed out without overlap."""

    def __init__(self, n_buyers: int, n_policies: int, n_invoices: int) -> None:
        self.next = {"B": n_buyers + 1, "P": n_policies + 1, "INV": n_invoices + 1}

    def ids(self, prefix: str, k: int) -> pd.Series:
        start = self.next[prefix]
        self.next[prefix] += k
        width = {"B": _BUYER_WIDTH, "P": _PH_WIDTH, "INV": _INVOICE_WIDTH}[prefix]
        return _id_series(prefix, np.arange(start, start + k), width)


def _text_dates(values: pd.Series) -> pd.Series:
    """datetime64 -> 'YYYY-MM-DD' strings (nulls kept), vectorised through Arrow."""
    arr = pa.Array.from_pandas(values).cast(pa.date32()).cast(pa.large_string())
    return pd.Series(pd.array(arr, dtype="str"), index=values.index)


def _month_end_shift(values: pd.Series, months: int) -> pd.Series:
    m = values.to_numpy().astype("datetime64[M]") + months
    return pd.Series(
        ((m + 1).astype("datetime64[D]") - 1).astype("datetime64[s]"), index=values.index
    )


def _corrupt(
    name: str,
    rows: pd.DataFrame,
    kinds: np.ndarray,
    rng: np.random.Generator,
    fresh: _Fresh,
    clean: pd.DataFrame,
    counts: dict[str, int],
) -> tuple[pd.DataFrame, np.ndarray]:
    """Apply one corruption per row (rows are copies of clean rows); return rows and labels.

    Rows get fresh keys so a corrupted copy never clashes with the clean row it came from
    (financials move to a period end six months away, which no buyer uses).
    """
    df = rows.copy()
    k = len(df)

    def m(kind: str) -> np.ndarray:
        return kinds == kind

    def pick(values: np.ndarray | list[str], mask: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=object)[rng.integers(0, len(values), int(mask.sum()))]

    if name == "buyers":
        df["buyer_id"] = fresh.ids("B", k).to_numpy()
        df.loc[m("bad_country"), "country"] = pick(["XX", "UK", "EU", "D", "deu"], m("bad_country"))
        df.loc[m("bad_sector"), "sector"] = pick(["Z", "47", "CC", "c"], m("bad_sector"))
        df.loc[m("bad_legal_form"), "legal_form"] = pick(
            ["GmbH", "LLC", "ltd"], m("bad_legal_form")
        )
        df.loc[m("missing_name"), "name"] = None
        df.loc[m("missing_country"), "country"] = None
    elif name == "financials":
        unknown = m("unknown_buyer")
        df.loc[unknown, "buyer_id"] = fresh.ids("B", int(unknown.sum())).to_numpy()
        shift = ~unknown
        df.loc[shift, "period_end"] = _month_end_shift(df.loc[shift, "period_end"], -6)
        df.loc[shift, "filing_date"] = df.loc[shift, "filing_date"] - pd.Timedelta(days=183)
        neg = m("negative_amount")
        df.loc[neg, "total_assets"] = -df.loc[neg, "total_assets"].abs() - 1.0
        idv = m("identity_violation")
        df.loc[idv, "total_assets"] = np.round(df.loc[idv, "total_assets"] * 1.5 + 1000.0)
        fb = m("filing_before_period_end")
        df.loc[fb, "filing_date"] = df.loc[fb, "period_end"] - pd.to_timedelta(
            rng.integers(1, 60, int(fb.sum())), unit="D"
        )
        df.loc[m("bad_currency"), "currency"] = pick(["EUU", "EURO", "€"], m("bad_currency"))
        df.loc[m("missing_total_assets"), "total_assets"] = np.nan
    elif name == "invoices":
        df["invoice_id"] = fresh.ids("INV", k).to_numpy()
        df.loc[m("negative_amount"), "amount"] = -df.loc[m("negative_amount"), "amount"]
        df.loc[m("zero_amount"), "amount"] = 0.0
        days = pd.to_timedelta(rng.integers(1, 31, k), unit="D")
        dbi = m("due_before_issue")
        df.loc[dbi, "due_date"] = df.loc[dbi, "issue_date"] - days[dbi]
        pbi = m("paid_before_issue")
        df.loc[pbi, "paid_date"] = df.loc[pbi, "issue_date"] - days[pbi]
        ub = m("unknown_buyer")
        df.loc[ub, "buyer_id"] = fresh.ids("B", int(ub.sum())).to_numpy()
        up = m("unknown_policyholder")
        df.loc[up, "policyholder_id"] = fresh.ids("P", int(up.sum())).to_numpy()
        df.loc[m("bad_currency"), "currency"] = pick(["EUU", "EURO", "€"], m("bad_currency"))
        df.loc[m("missing_amount"), "amount"] = np.nan
        df.loc[m("missing_buyer_id"), "buyer_id"] = None
    elif name == "events":
        df.loc[m("bad_event_type"), "event_type"] = pick(
            ["bankruptcy", "payment_default", "winding_up"], m("bad_event_type")
        )
        ub = m("unknown_buyer")
        df.loc[ub, "buyer_id"] = fresh.ids("B", int(ub.sum())).to_numpy()
        up = m("unknown_policyholder")
        df.loc[up, "policyholder_id"] = fresh.ids("P", int(up.sum())).to_numpy()
        neg = m("negative_amount")
        df.loc[neg, "amount"] = -(df.loc[neg, "amount"].fillna(1000.0).abs() + 1.0)
        df.loc[neg, "event_date"] = df.loc[neg, "event_date"] - pd.to_timedelta(
            rng.integers(1, 6, int(neg.sum())), unit="D"
        )
        df.loc[m("missing_event_type"), "event_type"] = None
    elif name == "policies":
        df["policyholder_id"] = fresh.ids("P", k).to_numpy()
        df.loc[m("bad_scheme"), "scheme"] = pick(
            ["whole_turnover", "XoL", "first-euro"], m("bad_scheme")
        )
        df.loc[m("indemnity_out_of_range"), "indemnity_pct"] = pick(
            [0.0, 120.0, 950.0], m("indemnity_out_of_range")
        ).astype(float)
        df.loc[m("negative_amount"), "discretionary_limit"] = -25_000.0
        df.loc[m("missing_scheme"), "scheme"] = None
        xf = m("xol_without_first_loss")
        df.loc[xf, "scheme"] = "excess_of_loss"
        df.loc[xf, "aggregate_first_loss"] = 0.0
        df.loc[m("bad_waiting_days"), "claim_waiting_days"] = pick(
            [-30, 1000], m("bad_waiting_days")
        ).astype(int)
    elif name == "limits":
        ub, up = m("unknown_buyer"), m("unknown_policyholder")
        df.loc[ub, "buyer_id"] = fresh.ids("B", int(ub.sum())).to_numpy()
        df.loc[up, "policyholder_id"] = fresh.ids("P", int(up.sum())).to_numpy()
        other = ~(ub | up)
        buyers_, phs_ = _unused_pairs(
            clean, counts["buyers"], counts["policies"], int(other.sum()), rng
        )
        df.loc[other, "buyer_id"] = buyers_
        df.loc[other, "policyholder_id"] = phs_
        neg = m("negative_amount")
        df.loc[neg, "limit_amount"] = -(df.loc[neg, "limit_amount"] + 1000.0)
        df.loc[m("zero_requested"), "requested_amount"] = 0.0
        df.loc[m("missing_limit"), "limit_amount"] = np.nan
    elif name == "country_risk":
        spare = [c for c in _SPARE_COUNTRIES if c not in set(clean["country"])]
        codes = np.array([spare[i % len(spare)] for i in range(k)], dtype=object)
        codes[m("bad_country")] = pick(["XX", "UK", "EU"], m("bad_country"))
        df["country"] = codes
        df.loc[m("risk_class_out_of_range"), "political_risk_class"] = pick(
            [8, 9, -1], m("risk_class_out_of_range")
        ).astype(int)
        df.loc[m("missing_risk_class"), "political_risk_class"] = pd.NA
        df.loc[m("gdp_in_percent"), "gdp_growth"] = (
            np.round(df.loc[m("gdp_in_percent"), "gdp_growth"].fillna(0.02) * 100, 1) + 0.5
        )

    for col in _DATE_COLUMNS[name]:
        df[col] = _text_dates(df[col])
    bad_date = m("unparseable_date")
    if bad_date.any():
        cols = np.array(_DATE_COLUMNS[name])
        # Garbage goes into a required date column where the table has one.
        required = cols[:1] if name in ("invoices", "events", "limits") else cols[-1:]
        df.loc[bad_date, str(required[0])] = pick(_BAD_DATES, bad_date)
    labels = kinds.astype(object)
    if name == "invoices" and m("duplicate_invoice_id").any():
        # A twin of each such row: same invoice id, another amount. Both are bad: which copy
        # is right is unknowable, so an ingest must quarantine every copy of the id.
        twins = df[m("duplicate_invoice_id")].copy()
        twins["amount"] = np.round(twins["amount"] * rng.uniform(1.1, 2.0, len(twins)), 2)
        df = pd.concat([df, twins], ignore_index=True)
        labels = np.concatenate([labels, np.full(len(twins), "duplicate_invoice_id", dtype=object)])
    return df, labels


def _unused_pairs(
    lim: pd.DataFrame, n_b: int, n_p: int, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """k (buyer_id, policyholder_id) pairs of existing ids that have no limit yet."""
    used = set()
    if len(lim):
        b = lim["buyer_id"].str.slice(1).astype("int64").to_numpy()
        p = lim["policyholder_id"].str.slice(1).astype("int64").to_numpy()
        used_codes = b * (n_p + 2) + p
    else:
        used_codes = np.zeros(0, dtype=np.int64)
    out_b: list[int] = []
    out_p: list[int] = []
    for _ in range(20):
        if len(out_b) >= k:
            break
        cb = rng.integers(1, n_b + 1, 2 * k + 4)
        cp = rng.integers(1, n_p + 1, 2 * k + 4)
        code = cb * (n_p + 2) + cp
        ok = ~np.isin(code, used_codes)
        for bb, pp, cc in zip(cb[ok], cp[ok], code[ok], strict=True):
            if cc not in used:
                used.add(cc)
                out_b.append(int(bb))
                out_p.append(int(pp))
    out_b, out_p = out_b[:k], out_p[:k]
    return (
        _id_series("B", np.array(out_b, dtype=np.int64), _BUYER_WIDTH).to_numpy(),
        _id_series("P", np.array(out_p, dtype=np.int64), _PH_WIDTH).to_numpy(),
    )


def _inject_dirty(
    config: GeneratorConfig, tables: dict[str, pd.DataFrame]
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Mix corrupted copies of clean rows into every input table at random positions.

    About `dirty_fraction` of each table's rows (at least one) are corrupted copies; clean
    rows are untouched and keep their order. Date columns of every table become
    'YYYY-MM-DD' text so that unparseable dates can be represented. The clean frames are
    taken out of `tables` one by one and released as soon as their dirty version is built.
    """
    rng = _rng(config, 12)
    counts = {"buyers": len(tables["buyers"]), "policies": len(tables["policies"])}
    fresh = _Fresh(counts["buyers"], counts["policies"], len(tables["invoices"]))
    out: dict[str, pd.DataFrame] = {}
    records = []
    for name in INPUT_TABLES:
        clean = tables.pop(name)
        for col in ("claim_waiting_days", "political_risk_class"):
            if col in clean:
                clean[col] = clean[col].astype("Int64")
        kinds_all = _CORRUPTIONS[name]
        k = max(1, round(config.dirty_fraction * len(clean)))
        if len(clean) == 0:
            for col in _DATE_COLUMNS[name]:
                clean[col] = _text_dates(clean[col])
            out[name] = clean
            continue
        kinds = np.array(kinds_all, dtype=object)[rng.permutation(k) % len(kinds_all)]
        src = np.sort(rng.integers(0, len(clean), k))
        rows = clean.iloc[src].reset_index(drop=True)
        dirty, labels = _corrupt(name, rows, kinds, rng, fresh, clean, counts)
        if name != "invoices":  # invoices got fresh ids; their only clash is the intended twin
            keys = list(_KEYS[name])
            clean_keys = clean[keys].copy()
            for col in set(keys) & set(_DATE_COLUMNS[name]):
                clean_keys[col] = _text_dates(clean_keys[col])
            both = pd.concat([clean_keys, dirty[keys]], ignore_index=True)
            clash = both.duplicated(keep=False).to_numpy()[len(clean_keys) :]
            del both, clean_keys
            dirty, labels = dirty[~clash].reset_index(drop=True), labels[~clash]
        merged, positions = _interleave(clean, dirty, rng, _DATE_COLUMNS[name])
        del clean
        out[name] = merged
        records.append(
            pd.DataFrame(
                {
                    "table": _const_str(name, len(dirty)),
                    "row_number": (positions + 1).astype(np.int64),
                    "corruption": _str_series(labels),
                }
            )
        )
    dirty_rows = pd.concat(records, ignore_index=True)
    dirty_rows = dirty_rows.sort_values(["table", "row_number"], kind="stable", ignore_index=True)
    return out, dirty_rows


def _interleave(
    clean: pd.DataFrame, dirty: pd.DataFrame, rng: np.random.Generator, date_cols: tuple[str, ...]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Put dirty rows at random positions among clean rows; return frame and dirty positions.

    Built column by column (dates of the clean rows turned into text on the way) so that a
    large table is never copied whole more than once.
    """
    n_clean, n_dirty = len(clean), len(dirty)
    total = n_clean + n_dirty
    pos = np.sort(rng.choice(total, n_dirty, replace=False))
    is_dirty = np.zeros(total, dtype=bool)
    is_dirty[pos] = True
    perm = rng.permutation(n_dirty)
    order = np.empty(total, dtype=np.int64)
    order[~is_dirty] = np.arange(n_clean)
    order[is_dirty] = n_clean + perm
    columns: dict[str, pd.Series] = {}
    for col in clean.columns:
        c = _text_dates(clean[col]) if col in date_cols else clean[col]
        d = dirty[col]
        if isinstance(c.dtype, np.dtype) and c.dtype.kind in "fiub" and d.dtype == c.dtype:
            values = np.empty(total, dtype=c.dtype)
            values[~is_dirty] = c.to_numpy()
            values[is_dirty] = d.to_numpy()[perm]
            columns[col] = pd.Series(values)
        else:
            columns[col] = pd.concat([c, d], ignore_index=True).take(order).reset_index(drop=True)
    positions = np.empty(n_dirty, dtype=np.int64)
    positions[perm] = pos
    return pd.DataFrame(columns), positions
