"""Orchestration: the order in which the parts of the synthetic economy are generated.

The order follows the causal chain (buyers, latent paths, defaults, trade, events,
statements, the insurer's limit decisions on them, truth) and each component draws from its
own random stream, so the whole portfolio is a pure function of the config. Large
intermediates are released as soon as their frame is built to keep peak memory low for a
million buyers.
"""

from __future__ import annotations

from collections.abc import Callable

from data.generator.config import _NULL_DAY, GeneratorConfig, Portfolio, _Calendar
from data.generator.dirt import _empty_dirty_rows, _inject_dirty
from data.generator.events import _default_kinds, _make_events
from data.generator.frames import (
    _buyers_frame,
    _country_risk_frame,
    _defaults_frame,
    _events_frame,
    _invoices_frame,
    _limits_frame,
    _policies_frame,
)
from data.generator.latent import (
    _calibrate_intercept,
    _draw_defaults,
    _make_buyers,
    _simulate_latent,
    _truth_pd,
)
from data.generator.statements import _financials_frame, _statement_columns
from data.generator.trade import _make_invoices, _make_pairs, _make_policies
from data.generator.underwriting import _make_limits


def generate_portfolio(
    config: GeneratorConfig, progress: Callable[[str], None] | None = None
) -> Portfolio:
    """Generate a whole portfolio; identical output for an identical config (seed included)."""
    say = progress or (lambda _msg: None)
    cal = _Calendar.build(config)
    say(f"buyers: {config.n_buyers:,}")
    buyers = _make_buyers(config, cal)
    say(f"latent paths: {cal.n_sim} months (burn-in {cal.burn})")
    lat = _simulate_latent(config, cal, buyers)
    a = _calibrate_intercept(config, cal, buyers, lat)
    say(f"hazard intercept a = {a:.4f} for annual default rate {config.annual_default_rate:.2%}")
    tau = _draw_defaults(config, cal, buyers, lat, a)
    say(f"defaults in window: {int((tau != _NULL_DAY).sum()):,}")
    policies = _make_policies(config)
    pairs = _make_pairs(config, buyers, policies)
    say(f"policyholders: {policies.n:,}, trading pairs: {pairs.n:,}")
    inv = _make_invoices(config, cal, buyers, lat, pairs, tau, say)
    say(f"invoices: {inv.n:,}")
    kind = _default_kinds(config, buyers, inv, tau)
    events = _make_events(config, cal, buyers, policies, pairs, inv, tau, kind)
    say(f"events: {len(events['buyer']):,}")
    statements = _statement_columns(config, cal, buyers, lat, tau)
    say(f"statements: {len(statements.get('bi', ())):,}")
    limits = _make_limits(config, cal, buyers, lat, a, pairs, inv, events, statements)
    say(f"limits: {len(limits['pair']):,}")
    invoices = _invoices_frame(inv, pairs)
    del inv  # the largest intermediate: release it before the truth is built
    financials = _financials_frame(statements)
    del statements
    pd_monthly = _truth_pd(config, cal, buyers, lat, a, tau)
    say(f"truth rows: {len(pd_monthly):,}")
    del lat
    tables = {
        "buyers": _buyers_frame(buyers),
        "financials": financials,
        "invoices": invoices,
        "events": _events_frame(events),
        "policies": _policies_frame(policies),
        "limits": _limits_frame(limits, pairs),
        "country_risk": _country_risk_frame(),
    }
    del invoices, financials
    defaults = _defaults_frame(buyers, tau, kind)
    dirty_rows = _empty_dirty_rows()
    if config.dirty_fraction > 0:
        say(f"injecting dirty rows ({config.dirty_fraction:.1%})")
        tables, dirty_rows = _inject_dirty(config, tables)
    truth = {"pd_monthly": pd_monthly, "defaults": defaults, "dirty_rows": dirty_rows}
    say("done")
    return Portfolio(tables=tables, truth=truth)
