"""Data contracts: one pandera schema per input table of DESIGN §2, plus its key and references.

The schema is the single source of truth for a table's columns, types, nullability, ranges,
allowed codes and cross-field rules. Ingestion coerces raw values to the schema's types
itself (so an unparseable value is reported against its row and column instead of breaking
the whole column), then lets pandera check the typed frame, then checks keys and references
across tables. Every failure becomes a quarantine record naming row, column and rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pandera

from data.keys import duplicated, positions
from data.reference import (
    EVENT_TYPES,
    ISO_COUNTRIES,
    ISO_CURRENCIES,
    LEGAL_FORMS,
    NACE_SECTIONS,
    POLICY_SCHEMES,
    POLITICAL_RISK_CLASSES,
)

DATE = "datetime64[ns]"
EARLIEST_BUSINESS_DATE = pd.Timestamp("1990-01-01")
EARLIEST_INCORPORATION = pd.Timestamp("1800-01-01")
#: Relative tolerance of the balance-sheet identities (rounding in filed statements).
IDENTITY_TOLERANCE = 0.01

#: Whole numbers beyond this are not exact in a float64 (and overflow an int64 near 9.2e18).
MAX_WHOLE_NUMBER = 2**53
#: Money beyond ±10^15 (a thousand trillion in any currency) is a unit or typing error.
MAX_AMOUNT = 1e15
QUARANTINE_COLUMNS = ["table", "row_number", "column", "rule", "value", "record"]


def _text(*checks: pandera.Check, nullable: bool = False) -> pandera.Column:
    return pandera.Column(str, list(checks), nullable=nullable)


def _date(*checks: pandera.Check, nullable: bool = False) -> pandera.Column:
    return pandera.Column(DATE, list(checks), nullable=nullable)


def _amount(*checks: pandera.Check, nullable: bool = True) -> pandera.Column:
    return pandera.Column(float, list(checks), nullable=nullable)


def _money(*checks: pandera.Check, nullable: bool = True) -> pandera.Column:
    """An amount of money: bounded, and read from text without ambiguous separators."""
    bound = pandera.Check.in_range(
        -MAX_AMOUNT, MAX_AMOUNT, error=f"beyond ±{MAX_AMOUNT:.0e} (a unit or typing error)"
    )
    return pandera.Column(float, [*checks, bound], nullable=nullable, metadata={"money": True})


def _business_date(nullable: bool = False) -> pandera.Column:
    return _date(pandera.Check.ge(EARLIEST_BUSINESS_DATE), nullable=nullable)


#: Cross-field rules by their error text: the rule's name and the columns it compares.
_RULES: dict[str, tuple[str, tuple[str, ...]]] = {}


def _rule(name: str, error: str, columns: tuple[str, ...], fn) -> pandera.Check:
    """A cross-field rule; rows where a compared value is missing pass (nullability is per column)."""
    _RULES[error] = (name, columns)
    return pandera.Check(fn, name=name, error=error)


def _one_of(values, what: str) -> pandera.Check:
    return pandera.Check.isin(sorted(values), error=f"must be {what}")


def _within_tolerance(smaller: pd.Series, larger: pd.Series) -> pd.Series:
    slack = IDENTITY_TOLERANCE * larger.abs().fillna(0) + 1.0
    return ~(smaller > larger + slack)


NON_NEGATIVE = pandera.Check.ge(0)
POSITIVE = pandera.Check.gt(0)

BUYERS = pandera.DataFrameSchema(
    {
        "buyer_id": _text(pandera.Check.str_length(1, 64)),
        "name": _text(pandera.Check.str_length(1, 500)),
        "country": _text(_one_of(ISO_COUNTRIES, "an ISO 3166 alpha-2 country code")),
        "sector": _text(_one_of(NACE_SECTIONS, "a NACE section letter A-U")),
        "legal_form": _text(
            _one_of(LEGAL_FORMS, "one of " + ", ".join(sorted(LEGAL_FORMS))), nullable=True
        ),
        "incorporation_date": _date(pandera.Check.ge(EARLIEST_INCORPORATION), nullable=True),
    },
    name="buyers",
)

FINANCIALS = pandera.DataFrameSchema(
    {
        "buyer_id": _text(),
        "period_end": _business_date(),
        "filing_date": _business_date(),
        "currency": _text(_one_of(ISO_CURRENCIES, "an ISO 4217 currency code")),
        "revenue": _money(NON_NEGATIVE),
        "operating_income": _money(),
        "net_income": _money(),
        "total_assets": _money(NON_NEGATIVE, nullable=False),
        "current_assets": _money(NON_NEGATIVE),
        "cash": _money(NON_NEGATIVE),
        "receivables": _money(NON_NEGATIVE),
        "inventory": _money(NON_NEGATIVE),
        "total_liabilities": _money(NON_NEGATIVE),
        "current_liabilities": _money(NON_NEGATIVE),
        "long_term_debt": _money(NON_NEGATIVE),
        "equity": _money(),
        "retained_earnings": _money(),
        "interest_expense": _money(NON_NEGATIVE),
    },
    checks=[
        _rule(
            "filing_date >= period_end",
            "a statement cannot be filed before its period ends",
            ("filing_date", "period_end"),
            lambda df: ~(df["filing_date"] < df["period_end"]),
        ),
        _rule(
            "current_assets <= total_assets",
            "current assets exceed total assets",
            ("current_assets", "total_assets"),
            lambda df: _within_tolerance(df["current_assets"], df["total_assets"]),
        ),
        _rule(
            "cash + receivables + inventory <= current_assets",
            "cash, receivables and inventory exceed current assets",
            ("cash", "receivables", "inventory", "current_assets"),
            lambda df: _within_tolerance(
                df[["cash", "receivables", "inventory"]].sum(axis=1, min_count=1),
                df["current_assets"],
            ),
        ),
        _rule(
            "current_liabilities + long_term_debt <= total_liabilities",
            "current liabilities and long-term debt exceed total liabilities",
            ("current_liabilities", "long_term_debt", "total_liabilities"),
            lambda df: _within_tolerance(
                df[["current_liabilities", "long_term_debt"]].sum(axis=1, min_count=1),
                df["total_liabilities"],
            ),
        ),
        _rule(
            "total_assets = total_liabilities + equity",
            "balance sheet does not balance (assets != liabilities + equity)",
            ("total_assets", "total_liabilities", "equity"),
            lambda df: (
                ~(
                    (df["total_assets"] - df["total_liabilities"] - df["equity"]).abs()
                    > IDENTITY_TOLERANCE * df["total_assets"].abs() + 1.0
                )
            ),
        ),
    ],
    name="financials",
)

INVOICES = pandera.DataFrameSchema(
    {
        "invoice_id": _text(pandera.Check.str_length(1, 64)),
        "buyer_id": _text(),
        "policyholder_id": _text(),
        "issue_date": _business_date(),
        "due_date": _business_date(),
        "paid_date": _business_date(nullable=True),
        "amount": _money(POSITIVE, nullable=False),
        "currency": _text(_one_of(ISO_CURRENCIES, "an ISO 4217 currency code")),
    },
    checks=[
        _rule(
            "due_date >= issue_date",
            "invoice due before it was issued",
            ("due_date", "issue_date"),
            lambda df: ~(df["due_date"] < df["issue_date"]),
        ),
        _rule(
            "paid_date >= issue_date",
            "invoice paid before it was issued",
            ("paid_date", "issue_date"),
            lambda df: ~(df["paid_date"] < df["issue_date"]),
        ),
    ],
    name="invoices",
)

EVENTS = pandera.DataFrameSchema(
    {
        "buyer_id": _text(),
        "event_date": _business_date(),
        "event_type": _text(_one_of(EVENT_TYPES, "one of " + ", ".join(sorted(EVENT_TYPES)))),
        "policyholder_id": _text(nullable=True),
        "amount": _money(NON_NEGATIVE),
    },
    name="events",
)

POLICIES = pandera.DataFrameSchema(
    {
        "policyholder_id": _text(pandera.Check.str_length(1, 64)),
        "scheme": _text(_one_of(POLICY_SCHEMES, "one of " + ", ".join(sorted(POLICY_SCHEMES)))),
        "indemnity_pct": _amount(pandera.Check.in_range(0, 100, include_min=False), nullable=False),
        "claim_waiting_days": pandera.Column(
            "Int64", pandera.Check.in_range(0, 720), nullable=False
        ),
        "discretionary_limit": _money(NON_NEGATIVE),
        "aggregate_first_loss": _money(NON_NEGATIVE),
    },
    checks=[
        _rule(
            "excess_of_loss needs aggregate_first_loss > 0",
            "an excess-of-loss policy must state its aggregate first loss",
            ("scheme", "aggregate_first_loss"),
            lambda df: ~((df["scheme"] == "excess_of_loss") & ~(df["aggregate_first_loss"] > 0)),
        ),
    ],
    name="policies",
)

LIMITS = pandera.DataFrameSchema(
    {
        "policyholder_id": _text(),
        "buyer_id": _text(),
        "limit_amount": _money(NON_NEGATIVE, nullable=False),
        "requested_amount": _money(POSITIVE),
        "exposure": _money(NON_NEGATIVE, nullable=False),
        "decision_date": _business_date(),
        # When the decided limit takes effect for new shipments: after a notice period for
        # reductions (a future date is normal, not a fact from the future); empty = at once.
        "effective_date": _business_date(nullable=True),
    },
    checks=[
        _rule(
            "effective_date >= decision_date",
            "a limit cannot take effect before it is decided",
            ("effective_date", "decision_date"),
            lambda df: ~(df["effective_date"] < df["decision_date"]),
        ),
    ],
    name="limits",
)

COUNTRY_RISK = pandera.DataFrameSchema(
    {
        "country": _text(_one_of(ISO_COUNTRIES, "an ISO 3166 alpha-2 country code")),
        "political_risk_class": pandera.Column(
            "Int64",
            _one_of(POLITICAL_RISK_CLASSES, "a class from 0 to 7"),
            nullable=False,
        ),
        "gdp_growth": _amount(pandera.Check.in_range(-1.0, 1.0)),
        "inflation": _amount(pandera.Check.in_range(-1.0, 10.0)),
    },
    name="country_risk",
)


@dataclass(frozen=True)
class Reference:
    """A foreign key: every non-null value of `column` must be a key of table `target`."""

    column: str
    target: str
    target_column: str


@dataclass(frozen=True)
class TableContract:
    """A table's schema, its unique key, the references it makes and its 'known by' dates.

    `known_dates` are the columns that date when a fact became known to the insurer
    (DESIGN's point-in-time rule): such a date after the load date is impossible and is
    quarantined, since it would let a feature see the future.
    """

    name: str
    schema: pandera.DataFrameSchema
    key: tuple[str, ...]
    references: tuple[Reference, ...] = ()
    known_dates: tuple[str, ...] = ()
    required: tuple[str, ...] = field(default=())

    @property
    def columns(self) -> list[str]:
        return list(self.schema.columns)

    @property
    def required_columns(self) -> list[str]:
        """Columns a source file must contain (nullable ones may be absent: read as missing)."""
        return [c for c, col in self.schema.columns.items() if not col.nullable] + [
            c for c in self.required if self.schema.columns[c].nullable
        ]


def _buyer_ref(column: str = "buyer_id") -> Reference:
    return Reference(column, "buyers", "buyer_id")


def _policy_ref(column: str = "policyholder_id") -> Reference:
    return Reference(column, "policies", "policyholder_id")


#: Contracts in ingestion order: referenced tables come before the tables that refer to them.
CONTRACTS: dict[str, TableContract] = {
    c.name: c
    for c in (
        TableContract(
            "buyers", BUYERS, ("buyer_id",), required=("legal_form", "incorporation_date")
        ),
        TableContract("policies", POLICIES, ("policyholder_id",)),
        TableContract("country_risk", COUNTRY_RISK, ("country",)),
        TableContract(
            "financials",
            FINANCIALS,
            ("buyer_id", "period_end"),
            (_buyer_ref(),),
            known_dates=("period_end", "filing_date"),
        ),
        TableContract(
            "invoices",
            INVOICES,
            ("invoice_id",),
            (_buyer_ref(), _policy_ref()),
            known_dates=("issue_date", "paid_date"),
        ),
        TableContract(
            "events",
            EVENTS,
            # Two policyholders may file a claim on the same buyer on the same day: the
            # policyholder belongs to the key (DESIGN's key is buyer, date, type).
            ("buyer_id", "event_date", "event_type", "policyholder_id"),
            (_buyer_ref(), _policy_ref()),
            known_dates=("event_date",),
        ),
        TableContract(
            "limits",
            LIMITS,
            # Every decision is a version of the pair's limit (the book's history); a file
            # with the same pair and decision date corrects that version.
            ("policyholder_id", "buyer_id", "decision_date"),
            (_buyer_ref(), _policy_ref()),
            known_dates=("decision_date",),
        ),
    )
}


def empty_table(contract: TableContract) -> pd.DataFrame:
    """A table with no rows but the contract's columns and types (a table never loaded)."""
    dtypes = {name: str(col.dtype) for name, col in contract.schema.columns.items()}
    return pd.DataFrame(
        {name: pd.Series(dtype="str" if "str" in d else d) for name, d in dtypes.items()}
    )


class ContractError(ValueError):
    """A whole file breaks its contract (missing required column, unknown table)."""


@dataclass
class ValidationResult:
    """Rows of one batch split into accepted rows (typed) and quarantine records."""

    valid: pd.DataFrame
    quarantine: pd.DataFrame
    rows_in: int

    @property
    def rows_quarantined(self) -> int:
        return int(self.quarantine["row_number"].nunique()) if len(self.quarantine) else 0


@dataclass
class ColumnMatch:
    """How a file's header maps onto its contract, and what a reader of the summary must know."""

    rename: dict[str, str]  # header name -> contract name (letter case, spaces, hyphens)
    unknown: list[str]  # header names the contract does not know (not loaded)
    absent: list[str]  # nullable contract columns the file lacks (read as missing)

    def warnings(self, rows: int) -> list[str]:
        """One line per fact the file's owner should hear about (shown per file)."""
        out = [f"column '{k}' read as '{v}'" for k, v in self.rename.items()]
        out += [f"unknown column '{c}' not loaded" for c in self.unknown]
        out += [f"column '{c}' absent: missing in all {rows:,} rows" for c in self.absent]
        return out


def normalised_column_name(name: str) -> str:
    """`Buyer ID`, ` buyer-id ` and `BUYER_ID` are all `buyer_id`."""
    return "_".join(str(name).strip().lower().replace("-", " ").split())


def match_columns(frame_columns: list[str], contract: TableContract, source: str) -> ColumnMatch:
    """Map a header onto the contract: exact names first, then names that differ only in
    letter case, surrounding spaces or hyphens (`Revenue`, `Buyer ID`) — reported, never
    silent. Raise if a required column is still missing."""
    names = [str(c) for c in frame_columns]
    wanted = contract.columns
    rename: dict[str, str] = {}
    taken = {c for c in names if c in wanted}
    by_form = {normalised_column_name(c): c for c in wanted}
    for name in names:
        target = by_form.get(normalised_column_name(name))
        if name not in wanted and target and target not in taken:
            rename[name] = target
            taken.add(target)
    missing = [c for c in contract.required_columns if c not in taken]
    if missing:
        raise ContractError(
            f"{source}: table '{contract.name}' is missing required column(s) "
            f"{', '.join(missing)} (header: {', '.join(names)[:200]})"
        )
    unknown = [c for c in names if c not in wanted and c not in rename]
    absent = [c for c in wanted if c not in taken]
    return ColumnMatch(rename, unknown, absent)


#: Text that means "no value" in a number or date column (the contract's types cannot hold
#: it). A text column keeps it as written: country `NA` is Namibia, and a `NULL` id is a
#: bad id to show in quarantine, not an absent one.
MISSING_MARKERS = frozenset({"NA", "N/A", "#N/A", "NULL", "null", "NaN", "nan", "None"})
#: `1.234` in a money column of a text file: a thousands separator (1,234) or a decimal
#: point? Money has cents, not thousandths, so three decimals after 1-3 digits is ambiguous
#: — except in the currencies whose minor unit is a thousandth (ISO 4217).
THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})
_AMBIGUOUS_THOUSANDS = r"[+-]?[1-9]\d{0,2}\.\d{3}"


def _coerce_column(
    raw: pd.Series, column: pandera.Column, thousandths: pd.Series | None = None
) -> tuple[pd.Series, pd.Series]:
    """Convert raw values to the contract type: the typed values (NA where a value could not
    be converted) and, per row, the rule a present value broke (None where fine).
    `thousandths` marks the rows whose currency has three decimals.

    Blank means missing or an empty / whitespace-only string (what a CSV gives for 'no
    value'); in number and date columns the MISSING_MARKERS too. Text is stripped once."""
    dtype = str(column.dtype)
    text = None if raw.dtype.kind in "biufcmM" else raw.astype("str").str.strip()
    blank = raw.isna()
    if text is not None:
        blank = blank | text.eq("")
        if dtype in (DATE, "float64", "Int64"):
            blank = blank | text.isin(MISSING_MARKERS)
    rule = pd.Series(None, index=raw.index, dtype="object")
    if dtype == DATE:
        values = _as_dates(raw, text, blank)
        rule[values.isna() & ~blank] = f"type: not a valid {_type_label(dtype)}"
        return values, rule
    if dtype in ("float64", "Int64"):
        money = (column.metadata or {}).get("money", False)
        return _as_numbers(raw, text, blank, dtype, money, thousandths)
    if raw.dtype.kind == "f":  # an id or code stored as a float has lost its digits
        rule[raw.notna()] = "type: text stored as a decimal number (digits may be lost)"
        return pd.Series(pd.NA, index=raw.index, dtype="str"), rule
    if text is None:
        text = raw.astype("str").str.strip()
    return text.where(~blank).astype("str"), rule


def _as_dates(raw: pd.Series, text: pd.Series | None, blank: pd.Series) -> pd.Series:
    """Dates of the contract: a time-zone-aware timestamp becomes its UTC date, a time of
    day is dropped (a fact is known on a day). `text`: the stripped text of a text column."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        parsed = raw.dt.tz_convert("UTC").dt.tz_localize(None)
    elif raw.dtype.kind == "M":
        parsed = raw
    else:
        text = raw.astype("str").str.strip() if text is None else text
        parsed = pd.to_datetime(text.where(~blank), format="ISO8601", errors="coerce", utc=True)
        parsed = parsed.dt.tz_localize(None)
    # Dates a nanosecond timestamp cannot hold (before 1678, after 2261) are typos, not
    # facts: they fail like any unparseable date instead of breaking the whole column.
    representable = (parsed >= pd.Timestamp.min) & (parsed <= pd.Timestamp.max)
    return parsed.where(representable).astype(DATE).dt.normalize()


def _as_numbers(
    raw: pd.Series,
    text: pd.Series | None,
    blank: pd.Series,
    dtype: str,
    money: bool,
    thousandths: pd.Series | None,
) -> tuple[pd.Series, pd.Series]:
    rule = pd.Series(None, index=raw.index, dtype="object")
    if raw.dtype.kind in "biuf":
        values = raw.astype("float64")
    else:
        text = (raw.astype("str").str.strip() if text is None else text).where(~blank)
        values = pd.to_numeric(text, errors="coerce")
        if money and pd.api.types.is_string_dtype(raw):  # text as written, not Decimal
            ambiguous = text.str.fullmatch(_AMBIGUOUS_THOUSANDS).fillna(False).astype(bool)
            if thousandths is not None:
                ambiguous &= ~thousandths
            rule[ambiguous] = (
                "ambiguous number: '.' may be a thousands separator (write 1234, or the "
                "amount with two decimals)"
            )
            values = values.where(~ambiguous)
    unparsed = values.isna() & ~blank
    rule[unparsed & rule.isna()] = f"type: not a valid {_type_label(dtype)}"
    infinite = values.notna() & ~np.isfinite(values)
    rule[infinite] = "type: not a finite number"
    values = values.where(~infinite)
    if dtype == "Int64":
        too_big = values.abs() > MAX_WHOLE_NUMBER
        rule[too_big] = f"whole number beyond ±{MAX_WHOLE_NUMBER:,}"
        fractional = values.notna() & ~too_big & (values != np.floor(values))
        rule[fractional] = f"type: not a valid {_type_label(dtype)}"
        return values.where(~too_big & ~fractional).astype("Int64"), rule
    return values.astype("float64"), rule


def coerce_frame(raw: pd.DataFrame, contract: TableContract) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Type the raw frame; return it with the (row position, column, value) that failed to parse."""
    typed: dict[str, pd.Series] = {}
    failures = []
    thousandths = (
        raw["currency"].astype("str").str.strip().str.upper().isin(THREE_DECIMAL_CURRENCIES)
        if "currency" in raw.columns
        else None
    )
    for name, column in contract.schema.columns.items():
        if name not in raw.columns:
            missing = pd.Series([None] * len(raw), dtype="object", index=raw.index)
            typed[name] = _coerce_column(missing, column)[0]
            continue
        values, rule = _coerce_column(raw[name], column, thousandths)
        bad = rule.notna().to_numpy()
        if bad.any():
            pos = np.flatnonzero(bad)
            failures.append(
                pd.DataFrame(
                    {
                        "position": pos,
                        "column": name,
                        "rule": rule.iloc[pos].astype("str").to_numpy(),
                        "value": raw[name].iloc[pos].astype("str").to_numpy(),
                    }
                )
            )
        typed[name] = values
    frame = pd.DataFrame(typed, index=pd.RangeIndex(len(raw)))
    return frame, _concat_failures(failures)


def _type_label(dtype: str) -> str:
    return {DATE: "date (YYYY-MM-DD, 1678-2261)", "float64": "number", "Int64": "whole number"}.get(
        dtype, "text"
    )


def _concat_failures(parts: list[pd.DataFrame]) -> pd.DataFrame:
    empty = pd.DataFrame(
        {
            "position": pd.Series(dtype="int64"),
            "column": pd.Series(dtype="str"),
            "rule": pd.Series(dtype="str"),
            "value": pd.Series(dtype="str"),
        }
    )
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty
    return pd.concat(parts, ignore_index=True)


def schema_failures(frame: pd.DataFrame, contract: TableContract, skip: np.ndarray) -> pd.DataFrame:
    """Run the pandera schema lazily and return its failures as (position, column, rule, value).

    Rows in `skip` already failed type coercion; their NA would only repeat that failure as
    'not nullable'.
    """
    try:
        contract.schema.validate(frame, lazy=True)
        return _concat_failures([])
    except pandera.errors.SchemaErrors as err:
        cases = err.failure_cases
    cases = cases[cases["index"].notna()]
    is_wide = cases["schema_context"].eq("DataFrameSchema").to_numpy()
    column_cases = cases[~is_wide]
    out = pd.DataFrame(
        {
            "position": column_cases["index"].astype("int64").to_numpy(),
            "column": column_cases["column"].astype("str").to_numpy(),
            "rule": column_cases["check"].astype("str").map(_readable_rule).to_numpy(),
            "value": column_cases["failure_case"].astype("str").to_numpy(),
        }
    )
    if skip.size:
        out = out[~(out["rule"].eq("required value missing") & np.isin(out["position"], skip))]
    return _concat_failures([out, _wide_rule_failures(frame, cases[is_wide])])


def _wide_rule_failures(frame: pd.DataFrame, cases: pd.DataFrame) -> pd.DataFrame:
    """One record per (row, cross-field rule), naming the compared columns and their values."""
    parts = []
    for error, group in cases.groupby("check", sort=False):
        name, columns = _RULES.get(str(error), (str(error), ()))
        pos = np.unique(group["index"].astype("int64").to_numpy())
        rows = frame.iloc[pos]
        value = pd.Series("", index=rows.index, dtype="str")
        for i, col in enumerate(columns):
            value = value.str.cat(col + "=" + _as_text(rows[col]), sep=", " if i else "")
        parts.append(
            pd.DataFrame(
                {
                    "position": pos,
                    "column": ",".join(columns),
                    "rule": name,
                    "value": value.to_numpy(),
                }
            )
        )
    return _concat_failures(parts)


def _readable_rule(check: str) -> str:
    if check == "not_nullable":
        return "required value missing"
    return check


def duplicate_key_failures(frame: pd.DataFrame, contract: TableContract) -> pd.DataFrame:
    """Every copy of a key seen more than once in a batch: which copy is right is unknowable."""
    pos = np.flatnonzero(duplicated(frame, list(contract.key)))
    return pd.DataFrame(
        {
            "position": pos,
            "column": ",".join(contract.key),
            "rule": "duplicate key in file",
            "value": _key_text(frame.iloc[pos], contract.key),
        }
    )


def _key_text(frame: pd.DataFrame, key: tuple[str, ...]) -> np.ndarray:
    parts = [_as_text(frame[k]) for k in key]
    return (
        parts[0].str.cat(parts[1:], sep="|").to_numpy() if len(parts) > 1 else parts[0].to_numpy()
    )


def _as_text(values: pd.Series) -> pd.Series:
    """Values as readable text: dates without a time, missing as an empty string."""
    if values.dtype.kind == "M":
        return values.dt.strftime("%Y-%m-%d").fillna("")
    return values.astype("str").fillna("")


def reference_failures(
    frame: pd.DataFrame, contract: TableContract, known: Mapping[str, pd.Index]
) -> pd.DataFrame:
    """Rows referring to a buyer or policy that no accepted table row defines."""
    parts = []
    for ref in contract.references:
        keys = known.get(ref.target)
        if keys is None:
            continue
        values = frame[ref.column]
        unknown = values.notna().to_numpy() & (positions(values, keys) < 0)
        pos = np.flatnonzero(unknown)
        parts.append(
            pd.DataFrame(
                {
                    "position": pos,
                    "column": ref.column,
                    "rule": f"unknown {ref.target_column} (not in {ref.target})",
                    "value": values.iloc[pos].astype("str").to_numpy(),
                }
            )
        )
    return _concat_failures(parts)


def future_fact_failures(
    frame: pd.DataFrame, contract: TableContract, load_date: pd.Timestamp
) -> pd.DataFrame:
    """Facts dated after the load date: impossible, and a look-ahead leak if kept."""
    parts = []
    for col in contract.known_dates:
        pos = np.flatnonzero((frame[col] > load_date).to_numpy())
        parts.append(
            pd.DataFrame(
                {
                    "position": pos,
                    "column": col,
                    "rule": f"dated after the load date {load_date.date()}",
                    "value": _as_text(frame[col].iloc[pos]).to_numpy(),
                }
            )
        )
    return _concat_failures(parts)


def _records_json(raw: pd.DataFrame, positions: np.ndarray) -> np.ndarray:
    """The bad rows exactly as read, so quarantine loses nothing and can be repaired."""
    rows = raw.iloc[positions]
    return np.array(
        [
            json.dumps(r, default=str)
            for r in rows.astype("object").where(rows.notna(), None).to_dict("records")
        ],
        dtype=object,
    )


def validate_table(
    raw: pd.DataFrame,
    contract: TableContract,
    known: Mapping[str, pd.Index] | None = None,
    load_date: pd.Timestamp | None = None,
) -> ValidationResult:
    """Split one batch of raw rows into valid typed rows and quarantine records.

    `known` gives the keys of referenced tables (lake plus this load); references to tables
    not in it are not checked. A row with several problems gets one record per problem.
    Row numbers are 1-based data rows of the batch (the header is not counted).
    """
    raw = raw.reset_index(drop=True)
    frame, failures = coerce_frame(raw, contract)
    parts = [
        failures,
        schema_failures(frame, contract, failures["position"].unique()),
        duplicate_key_failures(frame, contract),
    ]
    if known:
        parts.append(reference_failures(frame, contract, known))
    if load_date is not None:
        parts.append(future_fact_failures(frame, contract, load_date))
    problems = _concat_failures(parts).sort_values(["position", "column"], kind="stable")
    bad = problems["position"].unique()
    quarantine = pd.DataFrame(
        {
            "table": contract.name,
            "row_number": problems["position"].to_numpy() + 1,
            "column": problems["column"].to_numpy(),
            "rule": problems["rule"].to_numpy(),
            "value": problems["value"].to_numpy(),
        }
    )
    record_by_pos = dict(zip(bad, _records_json(raw, bad), strict=True)) if len(bad) else {}
    quarantine["record"] = [record_by_pos[p] for p in problems["position"].to_numpy()]
    keep = np.ones(len(frame), dtype=bool)
    keep[bad] = False
    valid = frame[keep].copy()
    valid["_source_row"] = (np.flatnonzero(keep) + 1).astype("int64")
    return ValidationResult(
        valid=valid.reset_index(drop=True), quarantine=quarantine, rows_in=len(raw)
    )
