"""Synthetic trade-credit-insurance portfolio: buyers, statements, payments, events, limits.

Everything observable is driven by one hidden quantity per buyer and month, its *latent
creditworthiness* ``x`` (higher is better):

    x[i, t] = mu[i] + z[i, t] + s[sector(i), t] + e[t]

- ``mu`` is the buyer's long-run level: sector, country (political-risk class), size class,
  company age and an idiosyncratic term;
- ``z`` is a buyer-specific Gaussian AR(1) around 0 (persistent shocks);
- ``s`` and ``e`` are sector-wide and economy-wide Gaussian AR(1) shocks.

From ``x`` follow the monthly default hazard ``h = min(exp(a - b * x), cap)`` (``a`` is
calibrated so the portfolio's 12-month default rate equals ``annual_default_rate``), the
ratios of the annual statements (fiscal-year average of ``x``) and the days late of every
invoice (``x`` in the month the invoice falls due). Payment delays therefore lengthen before a
default without any rule saying so: defaults happen where ``x`` has fallen. The credit limits
are the insurer's own past decisions: the shipped limit policy applied at each pair's last
review, on a grade close to the true PD's.

The ground truth is returned beside the tables: the true 12-month PD per buyer and month end
(a closed-form conditional expectation, see :func:`.latent._true_pd`), the defaults, and the
rows deliberately corrupted when ``dirty_fraction > 0``. ``data/README.md`` documents the
model, its parameters and measured figures.

All amounts are in EUR (``currency == "EUR"`` everywhere). Generation is vectorised with
numpy: loops run over months, fiscal-year ends or corruption kinds, never over buyers or
invoices, so a million buyers over 24 months (about 24 million invoices) fit in minutes.

The package follows the parts of that economy: ``config`` (table names, reference
parameters, :class:`GeneratorConfig`, calendar and random streams), ``latent`` (buyers,
latent paths, hazard, defaults, true PD), ``trade`` (policies, trading pairs, invoices),
``events`` (default kinds, events), ``statements`` (financial statements), ``underwriting``
(the insurer's past limit decisions), ``columns`` and ``frames`` (output encodings and
frames), ``dirt`` (dirty-row injection), ``portfolio`` (the orchestration,
:func:`generate_portfolio`) and ``writer`` (:func:`write_portfolio`, CSV or Parquet).
"""

from __future__ import annotations

from data.generator.config import INPUT_TABLES, TRUTH_TABLES, GeneratorConfig, Portfolio
from data.generator.portfolio import generate_portfolio
from data.generator.writer import write_portfolio

__all__ = [
    "INPUT_TABLES",
    "TRUTH_TABLES",
    "GeneratorConfig",
    "Portfolio",
    "generate_portfolio",
    "write_portfolio",
]
