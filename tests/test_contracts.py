"""Every contract rule rejects what it should, names row, column and rule, and accepts valid data."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from data.contracts import CONTRACTS, ContractError, match_columns, validate_table

KNOWN = {"buyers": pd.Index(["B1", "B2", "B3"]), "policies": pd.Index(["P1", "P2"])}
LOAD_DATE = pd.Timestamp("2026-11-30")


def _validate(table: str, frame: pd.DataFrame):
    return validate_table(frame, CONTRACTS[table], KNOWN, LOAD_DATE)


@pytest.mark.parametrize("table", list(CONTRACTS))
def test_valid_rows_are_all_accepted_and_typed(clean_tables, table):
    frame = clean_tables[table]
    result = _validate(table, frame)
    assert result.quarantine.empty, result.quarantine.to_string()
    assert len(result.valid) == len(frame)
    schema = CONTRACTS[table].schema
    schema.validate(result.valid)  # the accepted rows carry the contract's types
    for name, column in schema.columns.items():
        if str(column.dtype).startswith("datetime64"):
            assert result.valid[name].dtype.kind == "M", name
    assert result.valid["_source_row"].tolist() == list(range(1, len(frame) + 1))


# (table, row, column, bad value, expected column in the record, expected rule fragment)
BREAKS = [
    ("buyers", 0, "country", "XX", "country", "ISO 3166"),
    ("buyers", 0, "sector", "Z", "sector", "NACE"),
    ("buyers", 0, "legal_form", "llc-ish", "legal_form", "one of"),
    ("buyers", 1, "buyer_id", "", "buyer_id", "required value missing"),
    ("buyers", 1, "name", "", "name", "required value missing"),
    (
        "buyers",
        0,
        "incorporation_date",
        "1750-01-01",
        "incorporation_date",
        "greater_than_or_equal_to",
    ),
    ("buyers", 2, "buyer_id", "B1", "buyer_id", "duplicate key"),
    (
        "financials",
        0,
        "filing_date",
        "2024-12-01",
        "filing_date,period_end",
        "filing_date >= period_end",
    ),
    ("financials", 0, "filing_date", "2027-01-05", "filing_date", "after the load date"),
    ("financials", 0, "currency", "EUU", "currency", "ISO 4217"),
    ("financials", 0, "revenue", "-5", "revenue", "greater_than_or_equal_to"),
    ("financials", 0, "cash", "not a number", "cash", "type: not a valid number"),
    (
        "financials",
        0,
        "current_assets",
        "900000",
        "current_assets,total_assets",
        "current_assets <= total_assets",
    ),
    (
        "financials",
        0,
        "inventory",
        "390000",
        "cash,receivables,inventory,current_assets",
        "cash + receivables",
    ),
    (
        "financials",
        0,
        "long_term_debt",
        "400000",
        "current_liabilities,long_term_debt,total_liabilities",
        "long_term_debt <= total_liabilities",
    ),
    (
        "financials",
        0,
        "equity",
        "200000",
        "total_assets,total_liabilities,equity",
        "total_assets = total_liabilities + equity",
    ),
    ("financials", 0, "total_assets", "", "total_assets", "required value missing"),
    ("financials", 0, "buyer_id", "B9", "buyer_id", "unknown buyer_id"),
    ("financials", 1, "buyer_id", "B1", "buyer_id,period_end", "duplicate key"),
    ("invoices", 0, "amount", "-12", "amount", "greater_than(0)"),
    ("invoices", 0, "amount", "0", "amount", "greater_than(0)"),
    ("invoices", 0, "due_date", "2025-01-01", "due_date,issue_date", "due_date >= issue_date"),
    ("invoices", 0, "paid_date", "2025-01-09", "paid_date,issue_date", "paid_date >= issue_date"),
    ("invoices", 0, "issue_date", "2024-13-45", "issue_date", "type: not a valid date"),
    ("invoices", 0, "issue_date", "1586-04-06", "issue_date", "type: not a valid date"),
    ("invoices", 0, "paid_date", "2026-12-02", "paid_date", "after the load date"),
    ("invoices", 1, "invoice_id", "I1", "invoice_id", "duplicate key"),
    ("invoices", 0, "buyer_id", "B404", "buyer_id", "unknown buyer_id"),
    ("invoices", 0, "policyholder_id", "P404", "policyholder_id", "unknown policyholder_id"),
    ("invoices", 0, "currency", "", "currency", "required value missing"),
    ("events", 0, "event_type", "bankruptcyish", "event_type", "one of"),
    ("events", 0, "event_date", "", "event_date", "required value missing"),
    ("events", 0, "policyholder_id", "P404", "policyholder_id", "unknown policyholder_id"),
    (
        "events",
        2,
        "policyholder_id",
        "P2",
        "buyer_id,event_date,event_type,policyholder_id",
        "duplicate key",
    ),
    ("policies", 0, "scheme", "whole_turnover", "scheme", "one of"),
    ("policies", 0, "indemnity_pct", "0", "indemnity_pct", "in_range"),
    ("policies", 0, "indemnity_pct", "101", "indemnity_pct", "in_range"),
    ("policies", 0, "claim_waiting_days", "90.5", "claim_waiting_days", "whole number"),
    (
        "policies",
        1,
        "aggregate_first_loss",
        "",
        "scheme,aggregate_first_loss",
        "excess_of_loss needs",
    ),
    ("limits", 0, "limit_amount", "-1", "limit_amount", "greater_than_or_equal_to"),
    ("limits", 0, "requested_amount", "0", "requested_amount", "greater_than(0)"),
    ("limits", 0, "exposure", "", "exposure", "required value missing"),
    ("limits", 0, "policyholder_id", "P404", "policyholder_id", "unknown policyholder_id"),
    ("limits", 1, "buyer_id", "B1", "policyholder_id,buyer_id,decision_date", "duplicate key"),
    (
        "limits",
        0,
        "effective_date",
        "2024-01-01",
        "effective_date,decision_date",
        "effective_date >= ",
    ),
    ("country_risk", 0, "political_risk_class", "8", "political_risk_class", "0 to 7"),
    ("country_risk", 0, "country", "ZZ", "country", "ISO 3166"),
    ("country_risk", 0, "inflation", "25", "inflation", "in_range"),
]


@pytest.mark.parametrize(("table", "row", "column", "bad", "where", "rule"), BREAKS)
def test_each_rule_quarantines_the_broken_row(clean_tables, table, row, column, bad, where, rule):
    frame = clean_tables[table].copy()
    if table == "limits" and column == "buyer_id":  # the same pair decided the same day
        frame.loc[row, "policyholder_id"] = frame.loc[0, "policyholder_id"]
        frame.loc[row, "decision_date"] = frame.loc[0, "decision_date"]
    frame.loc[row, column] = bad
    result = _validate(table, frame)
    hits = result.quarantine[
        result.quarantine["column"].eq(where)
        & result.quarantine["rule"].str.contains(rule, regex=False)
    ]
    assert len(hits) >= 1, result.quarantine.drop(columns="record").to_string()
    assert row + 1 in hits["row_number"].tolist()
    record = json.loads(hits[hits["row_number"] == row + 1]["record"].iloc[0])
    assert record[column] == bad or (bad == "" and record[column] in (None, ""))
    # rows in = accepted + quarantined, and the other rows are untouched
    assert len(result.valid) + result.rows_quarantined == len(frame)
    assert row + 1 not in result.valid["_source_row"].tolist()


def test_duplicate_keys_quarantine_every_copy(clean_tables):
    frame = pd.concat(
        [clean_tables["invoices"], clean_tables["invoices"].iloc[[0]]], ignore_index=True
    )
    result = _validate("invoices", frame)
    dup = result.quarantine[result.quarantine["rule"].str.contains("duplicate key")]
    assert sorted(dup["row_number"]) == [1, 4]
    assert sorted(result.valid["invoice_id"]) == ["I2", "I3"]


def test_a_row_with_two_problems_gets_two_records_but_counts_once(clean_tables):
    frame = clean_tables["invoices"].copy()
    frame.loc[0, "amount"] = "-3"
    frame.loc[0, "currency"] = "EUU"
    result = _validate("invoices", frame)
    assert len(result.quarantine) == 2
    assert result.rows_quarantined == 1
    assert len(result.valid) == 2


def test_missing_required_column_names_file_and_column(clean_tables):
    frame = clean_tables["invoices"].drop(columns=["due_date"])
    with pytest.raises(ContractError, match=r"invoices.csv.*due_date"):
        match_columns(list(frame.columns), CONTRACTS["invoices"], "invoices.csv")


def test_missing_nullable_column_is_read_as_missing_and_unknown_columns_reported(clean_tables):
    frame = clean_tables["country_risk"].drop(columns=["gdp_growth"]).assign(comment="x")
    match = match_columns(list(frame.columns), CONTRACTS["country_risk"], "country_risk.csv")
    assert match.unknown == ["comment"]
    result = _validate("country_risk", frame)
    assert result.quarantine.empty
    assert result.valid["gdp_growth"].isna().all()


def test_references_are_not_checked_when_the_target_is_unknown(clean_tables):
    result = validate_table(clean_tables["invoices"].assign(buyer_id="B404"), CONTRACTS["invoices"])
    assert result.quarantine.empty
