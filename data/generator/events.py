"""What the insurer learns about distress: default kinds, legal events and claims.

Events are derived from the defaults and the invoices (insolvencies, liquidations, claims
for unpaid invoices, overdue notifications, legal disputes); the credit limits the insurer
decided on them are simulated in `underwriting.py`.
"""

from __future__ import annotations

import numpy as np

from data.generator.config import (
    _DEFAULT_KIND_P,
    _EVENTS_WITH_AMOUNT,
    _LIQUIDATION_AFTER_INSOLVENCY,
    _NULL_DAY,
    GeneratorConfig,
    _Calendar,
    _rng,
)
from data.generator.latent import _Buyers
from data.generator.trade import _Invoices, _Pairs, _Policies


def _default_kinds(
    config: GeneratorConfig, b: _Buyers, inv: _Invoices, tau: np.ndarray
) -> np.ndarray:
    """Kind per buyer (index into _DEFAULT_KINDS, -1 if no default).

    A protracted default (non-payment without a legal event) needs an unpaid invoice: a
    buyer that left nothing unpaid is made an insolvency so every default stays observable.
    """
    rng = _rng(config, 8)
    kind = np.full(b.n, -1, dtype=np.int8)
    dflt = np.flatnonzero(tau != _NULL_DAY)
    p = _DEFAULT_KIND_P[(b.size[dflt] > 0).astype(int)]
    draw = (rng.random(len(dflt))[:, None] > np.cumsum(p, axis=1)).sum(axis=1).clip(0, 2)
    kind[dflt] = draw
    unpaid = np.zeros(b.n, dtype=bool)
    unpaid[inv.buyer[inv.paid == _NULL_DAY]] = True
    kind[(kind == 2) & ~unpaid] = 0
    return kind


def _make_events(
    config: GeneratorConfig,
    cal: _Calendar,
    b: _Buyers,
    p: _Policies,
    pairs: _Pairs,
    inv: _Invoices,
    tau: np.ndarray,
    kind: np.ndarray,
) -> dict[str, np.ndarray]:
    """Legal events of defaulters, claims, overdue notifications and disputes (dated <= end).

    Rows sharing the contract key (buyer, date, type, policyholder) are merged, amounts summed.
    """
    rng = _rng(config, 9)
    end = cal.end
    buyer_l, date_l, type_l, ph_l, amt_l = [], [], [], [], []

    def add(
        buyer: np.ndarray,
        date: np.ndarray,
        etype: int,
        ph: np.ndarray | None,
        amount: np.ndarray | None,
    ) -> None:
        ok = date <= end
        buyer_l.append(buyer[ok].astype(np.int32))
        date_l.append(date[ok].astype(np.int32))
        type_l.append(np.full(int(ok.sum()), etype, dtype=np.int8))
        ph_l.append(
            np.full(int(ok.sum()), -1, dtype=np.int32) if ph is None else ph[ok].astype(np.int32)
        )
        amt_l.append(np.full(int(ok.sum()), np.nan) if amount is None else amount[ok])

    ins = np.flatnonzero(kind == 0)
    ins_day = tau[ins] + rng.integers(0, 46, len(ins))
    add(ins, ins_day, 0, None, None)
    follow = rng.random(len(ins)) < _LIQUIDATION_AFTER_INSOLVENCY
    add(ins[follow], ins_day[follow] + 60 + rng.integers(0, 301, int(follow.sum())), 1, None, None)
    liq = np.flatnonzero(kind == 1)
    add(liq, tau[liq] + rng.integers(0, 61, len(liq)), 1, None, None)

    # Claims: one per (buyer, policyholder) left with unpaid invoices by a default, filed the
    # policy's waiting period after the earliest unpaid due date, for the total unpaid.
    open_inv = np.flatnonzero((inv.paid == _NULL_DAY) & (tau[inv.buyer] != _NULL_DAY))
    if len(open_inv):
        opair = inv.pair[open_inv]
        upair, inverse = np.unique(opair, return_inverse=True)
        earliest = np.full(len(upair), np.iinfo(np.int32).max, dtype=np.int64)
        np.minimum.at(earliest, inverse, inv.due[open_inv])
        total = np.bincount(inverse, inv.amount[open_inv], minlength=len(upair))
        ph = pairs.ph[upair]
        add(pairs.buyer[upair], earliest + p.waiting[ph], 2, ph, np.round(total, 2))

    # Overdue notifications: an invoice still unpaid `overdue_notice_days` after its due date.
    n_days = config.overdue_notice_days
    notice = inv.due.astype(np.int64) + n_days
    over = np.flatnonzero((notice <= end) & ((inv.paid == _NULL_DAY) | (inv.paid > notice)))
    add(inv.buyer[over], notice[over], 3, pairs.ph[inv.pair[over]], inv.amount[over])

    # Half of the disputes still open 30 days after the due date escalate to a legal dispute.
    escalate = inv.due.astype(np.int64) + 30
    disp = np.flatnonzero(inv.dispute & ((inv.paid == _NULL_DAY) | (inv.paid > escalate)))
    disp = disp[rng.random(len(disp)) < 0.5]
    add(inv.buyer[disp], escalate[disp], 4, pairs.ph[inv.pair[disp]], inv.amount[disp])

    buyer = np.concatenate(buyer_l).astype(np.int64)
    date = np.concatenate(date_l).astype(np.int64)
    etype = np.concatenate(type_l).astype(np.int64)
    ph = np.concatenate(ph_l).astype(np.int64)
    amount = np.concatenate(amt_l)
    base = date.min() if len(date) else 0
    key = (((buyer * (p.n + 1) + ph + 1) * 8 + etype) << 20) + (date - base)
    ukey, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    summed = np.bincount(inverse, np.nan_to_num(amount), minlength=len(ukey))
    etype_u = etype[first]
    summed = np.where(_EVENTS_WITH_AMOUNT[etype_u], np.round(summed, 2), np.nan)
    order = np.lexsort((etype_u, buyer[first], date[first]))
    sel = first[order]
    return {
        "buyer": buyer[sel].astype(np.int32),
        "date": date[sel].astype(np.int32),
        "type": etype[sel].astype(np.int8),
        "ph": ph[sel].astype(np.int32),
        "amount": summed[order],
    }
