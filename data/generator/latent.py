"""Buyers and their hidden creditworthiness: segments, latent paths, hazard, defaults, true PD.

This is the engine of the synthetic economy: every observable table (statements, payment
delays, events, limits) is derived from the latent score simulated here, and the truth the
models are judged against (default dates, the exact 12-month PD) is computed from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data.generator.columns import _BUYER_WIDTH, _dates, _id_series
from data.generator.config import (
    _ABBREVIATED,
    _COUNTRIES,
    _COUNTRY_CLASS_EFFECT,
    _HORIZON,
    _LEGAL_FORM_P,
    _NAME_FIRST,
    _NAME_SECOND,
    _NEVER_FILE,
    _NULL_DAY,
    _SECTORS,
    _SIZE_BOUNDS,
    _SIZE_EFFECT,
    GeneratorConfig,
    _Calendar,
    _rng,
)


@dataclass
class _Buyers:
    """Static attributes of the buyers, one array per attribute (no per-buyer objects)."""

    n: int
    country: np.ndarray  # int8 index into _COUNTRIES
    sector: np.ndarray  # int8 index into _SECTORS
    size: np.ndarray  # int8 0..3
    turnover: np.ndarray  # float64 EUR, latest annual level
    legal_form: np.ndarray  # int8 index into _LEGAL_FORM_ORDER
    inc_day: np.ndarray  # int32 day number or _NULL_DAY
    mu: np.ndarray  # float32 long-run latent level
    habit: np.ndarray  # float32 log-scale payment habit
    filer: np.ndarray  # bool: files statements at all
    abbreviated: np.ndarray  # bool: files balance sheet only
    fye: np.ndarray  # int8 fiscal-year-end month 1..12
    share_capital: np.ndarray  # float32 paid-in capital as share of assets
    name_words: np.ndarray  # (2, n) int16 indices into _NAME_FIRST, _NAME_SECOND


def _make_buyers(config: GeneratorConfig, cal: _Calendar) -> _Buyers:
    """Segments, size and age, and from them the buyer's long-run creditworthiness."""
    rng = _rng(config, 1)
    n = config.n_buyers
    cw = np.array([v[0] for v in _COUNTRIES.values()])
    country = rng.choice(len(cw), n, p=cw / cw.sum()).astype(np.int8)
    sw = np.array([v[0] for v in _SECTORS.values()])
    sector = rng.choice(len(sw), n, p=sw / sw.sum()).astype(np.int8)
    turnover = np.maximum(np.exp(rng.normal(np.log(1.2e6), 1.5, n)), 2e4)
    size = np.searchsorted(np.array(_SIZE_BOUNDS), turnover, side="right").astype(np.int8)
    cum = np.cumsum(_LEGAL_FORM_P[size], axis=1)
    legal_form = (rng.random(n)[:, None] > cum).sum(axis=1).clip(0, 5).astype(np.int8)
    # Age in years at the window start: log-normal, larger firms older; at least 3 months.
    age = np.exp(rng.normal(np.log(9.0), 0.85, n)) + 3.0 * size + rng.random(n) * 0.5
    # At most 150 years: the log-normal tail would otherwise date a few firms before 1800,
    # which the buyers contract rightly rejects.
    age = np.clip(age, 0.25, 150.0)
    inc_day = (cal.window_start - np.round(age * 365.25)).astype(np.int32)
    inc_day[rng.random(n) < 0.015] = _NULL_DAY
    cls = np.array([v[1] for v in _COUNTRIES.values()])
    sec_eff = np.array([v[1] for v in _SECTORS.values()])
    age_eff = 0.15 - 0.55 * np.exp(-age / 3.0)
    mu = (
        sec_eff[sector]
        + _COUNTRY_CLASS_EFFECT * cls[country]
        + _SIZE_EFFECT[size]
        + age_eff
        + rng.normal(0.0, config.idiosyncratic_sd, n)
    ).astype(np.float32)
    habit = rng.normal(0.0, 0.35, n).astype(np.float32)
    filer = rng.random(n) >= _NEVER_FILE[size]
    abbreviated = rng.random(n) < _ABBREVIATED[size]
    fye = np.where(rng.random(n) < 0.8, 12, rng.choice(np.array([3, 6, 9]), n)).astype(np.int8)
    share_capital = rng.uniform(0.03, 0.25, n).astype(np.float32)
    name_words = np.stack(
        [rng.integers(0, len(_NAME_FIRST), n), rng.integers(0, len(_NAME_SECOND), n)]
    ).astype(np.int16)
    return _Buyers(
        n, country, sector, size, turnover, legal_form, inc_day, mu, habit, filer,
        abbreviated, fye, share_capital, name_words,
    )  # fmt: skip


@dataclass
class _Latent:
    """The latent components; x is assembled on demand, never stored for every month."""

    z: np.ndarray  # (n_sim, n) float32 buyer AR(1)
    s: np.ndarray  # (n_sim, n_sectors) float64 sector AR(1)
    e: np.ndarray  # (n_sim,) float64 economy AR(1)

    def x(
        self, b: _Buyers, t: int | np.ndarray, idx: np.ndarray | slice = slice(None)
    ) -> np.ndarray:
        """Latent score of buyers `idx` at month(s) `t` (scalar t, or one t per buyer)."""
        mu, sec = b.mu[idx], b.sector[idx]
        return mu + self.z[t, idx] + (self.s[t, sec] + self.e[t]).astype(np.float32)


def _ar1(rng: np.random.Generator, phi: float, sd: float, shape: tuple[int, ...]) -> np.ndarray:
    """Stationary Gaussian AR(1) paths along axis 0 (started in the stationary law)."""
    out = np.empty(shape)
    out[0] = rng.normal(0.0, sd, shape[1:])
    innov = sd * np.sqrt(1.0 - phi**2)
    for t in range(1, shape[0]):
        out[t] = phi * out[t - 1] + rng.normal(0.0, innov, shape[1:])
    return out


def _simulate_latent(config: GeneratorConfig, cal: _Calendar, b: _Buyers) -> _Latent:
    """Simulate z, s, e over burn-in + window + horizon.

    The processes start in their stationary law and run `burn_in_months` before the window,
    so the window starts stationary and statements before it have a latent history.
    """
    rng = _rng(config, 2)
    s = _ar1(rng, config.sector_shock_phi, config.sector_shock_sd, (cal.n_sim, len(_SECTORS)))
    e = _ar1(rng, config.macro_shock_phi, config.macro_shock_sd, (cal.n_sim,))
    phi, sd = np.float32(config.latent_phi), config.latent_sd
    innov = np.float32(sd * np.sqrt(1.0 - config.latent_phi**2))
    z = np.empty((cal.n_sim, b.n), dtype=np.float32)
    z[0] = rng.standard_normal(b.n, dtype=np.float32) * np.float32(sd)
    for t in range(1, cal.n_sim):
        z[t] = phi * z[t - 1] + innov * rng.standard_normal(b.n, dtype=np.float32)
    return _Latent(z, s, e)


def _hazard(config: GeneratorConfig, a: float, x: np.ndarray) -> np.ndarray:
    return np.minimum(np.exp(a - config.hazard_slope * x.astype(np.float64)), config.hazard_cap)


def _calibrate_intercept(
    config: GeneratorConfig, cal: _Calendar, b: _Buyers, lat: _Latent
) -> float:
    """Solve for `a` so the expected 12-month default rate over the window hits the target.

    The rate is computed on the simulated latent paths (a subsample of at most 200k buyers):
    for each window month, the survival-weighted probability of defaulting in the following
    12 months, averaged over months. Conditioning on the simulated macro path means the
    realised rate matches the target up to default-sampling noise, while the within-window
    cycle is kept.
    """
    m = min(b.n, 200_000)
    idx = np.arange(m)
    t0 = cal.burn
    xs = np.stack([lat.x(b, t, idx) for t in range(t0, t0 + cal.months + _HORIZON)])
    g = np.exp(-config.hazard_slope * xs.astype(np.float64))
    del xs

    def rate(a: float) -> float:
        h = np.minimum(np.exp(a) * g, config.hazard_cap)
        c = np.concatenate([np.zeros((1, m)), np.cumsum(h, axis=0)])
        alive = np.exp(-c[1 : cal.months + 1])  # survived window months 0..w
        fwd = c[1 + _HORIZON : cal.months + 1 + _HORIZON] - c[1 : cal.months + 1]
        return float((alive * -np.expm1(-fwd)).sum() / alive.sum())

    # The rate is close to proportional to exp(a): the fixed-point step a += log(target / rate)
    # converges in a handful of iterations (monotonically, as the rate is concave in exp(a)).
    a = float(np.log(config.annual_default_rate / 12.0 / g.mean()))
    for _ in range(100):
        step = float(np.log(config.annual_default_rate / rate(a)))
        a += step
        if abs(step) < 1e-7:
            break
    return a


def _draw_defaults(
    config: GeneratorConfig, cal: _Calendar, b: _Buyers, lat: _Latent, a: float
) -> np.ndarray:
    """Default day per buyer (or _NULL_DAY): first month where cumulative hazard passes Exp(1).

    The day inside the month is where the cumulative hazard crosses, interpolated linearly.
    """
    rng = _rng(config, 3)
    threshold = rng.exponential(1.0, b.n)
    cum = np.zeros(b.n)
    tau = np.full(b.n, _NULL_DAY, dtype=np.int32)
    for t in cal.window:
        h = _hazard(config, a, lat.x(b, t))
        new = (cum < threshold) & (cum + h >= threshold)
        frac = (threshold[new] - cum[new]) / h[new]
        ndays = cal.month_end(t) - cal.starts[t] + 1
        tau[new] = (cal.starts[t] + np.floor(frac * ndays).clip(0, ndays - 1)).astype(np.int32)
        cum += h
    return tau


def _true_pd(
    config: GeneratorConfig, b: _Buyers, lat: _Latent, a: float, t: int, idx: np.ndarray
) -> np.ndarray:
    """True 12-month PD of buyers `idx` given the state at the end of simulation month `t`.

    Given the state at month end t, the future scores x[t+1..t+12] are jointly Gaussian:
    component c (buyer, sector, economy; persistence phi_c, stationary sd_c) contributes mean
    phi_c^k * state_c and covariance sd_c^2 (phi_c^|j-k| - phi_c^(j+k)). The hazards
    h_k = exp(a - b x[t+k]) are therefore log-normal with exact means and covariances, which
    gives the exact mean m and variance v of the 12-month cumulative hazard H. The PD
    1 - E[exp(-H)] is then taken from a Gamma law with that mean and variance:
    1 - (1 + v/m)^(-m^2/v). This is exact in the first two moments (plain 1 - exp(-m) would
    overstate the PD of risky buyers by Jensen's inequality); the hazard cap is ignored (it
    binds only far in the tail). One function for the truth and for the generator's
    simulated underwriting, so both see the same PD.
    """
    bslope = config.hazard_slope
    k = np.arange(1, _HORIZON + 1)
    parts = [
        (config.latent_phi, config.latent_sd),
        (config.sector_shock_phi, config.sector_shock_sd),
        (config.macro_shock_phi, config.macro_shock_sd),
    ]
    jj, kk = np.meshgrid(k, k, indexing="ij")
    cov = sum(sd**2 * (phi ** np.abs(jj - kk) - phi ** (jj + kk)) for phi, sd in parts)
    const_k = a + 0.5 * bslope**2 * np.diag(cov)
    lognormal_cov = np.expm1(bslope**2 * cov)  # Cov(h_j, h_k) = E h_j E h_k (exp(b^2 C_jk) - 1)
    phi_z = config.latent_phi**k
    phi_s = config.sector_shock_phi**k
    phi_e = config.macro_shock_phi**k
    mu = b.mu[idx].astype(np.float64)
    z = lat.z[t, idx].astype(np.float64)
    s = lat.s[t, b.sector[idx]]
    e = lat.e[t]
    mean_h = np.exp(
        const_k[None, :]
        - bslope * (mu[:, None] + np.outer(z, phi_z) + np.outer(s, phi_s) + phi_e[None, :] * e)
    )
    m = mean_h.sum(axis=1)
    v = np.einsum("ij,ij->i", mean_h @ lognormal_cov, mean_h)
    del mean_h
    with np.errstate(divide="ignore", invalid="ignore"):
        pd_gamma = -np.expm1(-(m * m / v) * np.log1p(v / m))
    return np.where(v > 0, pd_gamma, -np.expm1(-m))


def _truth_pd(
    config: GeneratorConfig, cal: _Calendar, b: _Buyers, lat: _Latent, a: float, tau: np.ndarray
) -> pd.DataFrame:
    """True 12-month PD (see `_true_pd`) at every window month end, for buyers not yet defaulted."""
    ids, ends, pds, scores = [], [], [], []
    for t in cal.window:
        end = cal.month_end(t)
        alive = np.flatnonzero((tau == _NULL_DAY) | (tau > end))
        ids.append(alive.astype(np.int32))
        ends.append(np.full(len(alive), end, dtype=np.int32))
        pds.append(_true_pd(config, b, lat, a, t, alive))
        mu = b.mu[alive].astype(np.float64)
        z = lat.z[t, alive].astype(np.float64)
        scores.append(mu + z + lat.s[t, b.sector[alive]] + lat.e[t])
    idx = np.concatenate(ids)
    return pd.DataFrame(
        {
            "buyer_id": _id_series("B", idx.astype(np.int64) + 1, _BUYER_WIDTH),
            "month_end": _dates(np.concatenate(ends)),
            "pd_12m_true": np.concatenate(pds),
            "latent_score": np.concatenate(scores),
        }
    )
