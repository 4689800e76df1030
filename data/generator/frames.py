"""The input tables and the default truth as pandas frames, in the data contracts' layout.

The simulation works on integer codes and day numbers; these builders turn them into the
columns a source system would deliver (ids, names, country codes, dates).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data.generator.columns import (
    _BUYER_WIDTH,
    _INVOICE_WIDTH,
    _PH_WIDTH,
    _const_str,
    _dates,
    _id_array,
    _id_series,
    _str_series,
    _take_str,
)
from data.generator.config import (
    _COUNTRIES,
    _DEFAULT_KINDS,
    _EVENT_ORDER,
    _LEGAL_FORM_ORDER,
    _LEGAL_SUFFIX,
    _LOCAL_SUFFIX,
    _NAME_FIRST,
    _NAME_SECOND,
    _NULL_DAY,
    _SECTORS,
    CURRENCY,
)
from data.generator.latent import _Buyers
from data.generator.trade import _Invoices, _Pairs, _Policies


def _buyers_frame(b: _Buyers) -> pd.DataFrame:
    first, second = b.name_words
    countries = list(_COUNTRIES)
    suffixes = [
        _LOCAL_SUFFIX.get((c, f), _LEGAL_SUFFIX[f]) for c in countries for f in _LEGAL_FORM_ORDER
    ]
    suffix_code = b.country.astype(np.int32) * len(_LEGAL_FORM_ORDER) + b.legal_form
    name = pc.binary_join_element_wise(
        pa.array(_NAME_FIRST).take(pa.array(first)),
        pa.array(_NAME_SECOND).take(pa.array(second)),
        pa.array(suffixes).take(pa.array(suffix_code)),
        " ",
    )
    name = pc.utf8_rtrim_whitespace(name).cast(pa.large_string())
    return pd.DataFrame(
        {
            "buyer_id": _id_series("B", np.arange(1, b.n + 1), _BUYER_WIDTH),
            "name": pd.array(name, dtype="str"),
            "country": _take_str(countries, b.country),
            "sector": _take_str(list(_SECTORS), b.sector),
            "legal_form": _take_str(_LEGAL_FORM_ORDER, b.legal_form),
            "incorporation_date": _dates(b.inc_day),
        }
    )


def _invoices_frame(inv: _Invoices, pairs: _Pairs) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "invoice_id": _id_series("INV", np.arange(1, inv.n + 1), _INVOICE_WIDTH),
            "buyer_id": _id_series("B", inv.buyer.astype(np.int64) + 1, _BUYER_WIDTH),
            "policyholder_id": _id_series("P", pairs.ph[inv.pair].astype(np.int64) + 1, _PH_WIDTH),
            "issue_date": _dates(inv.issue),
            "due_date": _dates(inv.due),
            "paid_date": _dates(inv.paid),
            "amount": inv.amount,
            "currency": _const_str(CURRENCY, inv.n),
        }
    )


def _events_frame(ev: dict[str, np.ndarray]) -> pd.DataFrame:
    ph = ev["ph"]
    null = ph < 0
    ph_ids = _id_array("P", np.where(null, 0, ph).astype(np.int64) + 1, _PH_WIDTH)
    ph_ids = pc.if_else(pa.array(null), pa.scalar(None, pa.large_string()), ph_ids)
    return pd.DataFrame(
        {
            "buyer_id": _id_series("B", ev["buyer"].astype(np.int64) + 1, _BUYER_WIDTH),
            "event_date": _dates(ev["date"]),
            "event_type": _take_str(_EVENT_ORDER, ev["type"]),
            "policyholder_id": pd.array(ph_ids, dtype="str"),
            "amount": ev["amount"],
        }
    )


def _policies_frame(p: _Policies) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "policyholder_id": _id_series("P", np.arange(1, p.n + 1), _PH_WIDTH),
            "scheme": _take_str(("first_euro", "excess_of_loss"), p.xol.astype(np.int32)),
            "indemnity_pct": p.indemnity.astype(np.float64),
            "claim_waiting_days": p.waiting.astype(np.int64),
            "discretionary_limit": p.discretionary.astype(np.float64),
            "aggregate_first_loss": p.first_loss.astype(np.float64),
        }
    )


def _limits_frame(lim: dict[str, np.ndarray], pairs: _Pairs) -> pd.DataFrame:
    pair = lim["pair"]
    return pd.DataFrame(
        {
            "policyholder_id": _id_series("P", pairs.ph[pair].astype(np.int64) + 1, _PH_WIDTH),
            "buyer_id": _id_series("B", pairs.buyer[pair].astype(np.int64) + 1, _BUYER_WIDTH),
            "limit_amount": lim["limit"].astype(np.float64),
            "requested_amount": lim["requested"].astype(np.float64),
            "exposure": lim["exposure"].astype(np.float64),
            "decision_date": _dates(lim["decision"]),
            # Generated decisions take effect at once (the contract's empty effective date).
            "effective_date": pd.Series(pd.NaT, index=range(len(pair)), dtype="datetime64[ns]"),
        }
    )


def _country_risk_frame() -> pd.DataFrame:
    vals = list(_COUNTRIES.values())
    return pd.DataFrame(
        {
            "country": _str_series(np.array(list(_COUNTRIES), dtype=object)),
            "political_risk_class": np.array([v[1] for v in vals], dtype=np.int64),
            "gdp_growth": np.array([np.nan if v[2] is None else v[2] for v in vals]),
            "inflation": np.array([np.nan if v[3] is None else v[3] for v in vals]),
        }
    )


def _defaults_frame(b: _Buyers, tau: np.ndarray, kind: np.ndarray) -> pd.DataFrame:
    idx = np.flatnonzero(tau != _NULL_DAY)
    idx = idx[np.lexsort((idx, tau[idx]))]
    return pd.DataFrame(
        {
            "buyer_id": _id_series("B", idx.astype(np.int64) + 1, _BUYER_WIDTH),
            "default_date": _dates(tau[idx]),
            "default_kind": _take_str(_DEFAULT_KINDS, kind[idx]),
        }
    )
