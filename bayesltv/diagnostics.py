"""Convergence diagnostics surfaced to the user as warnings, never hidden.

After NUTS: divergent transitions, R-hat above 1.01 and bulk/tail effective sample sizes
below 100 per chain (Vehtari et al. 2021) are each reported with the variables concerned.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import arviz as az
import numpy as np
import xarray as xr

from bayesltv.errors import ConvergenceWarning

RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100


@dataclass
class ConvergenceReport:
    """What the diagnostics found; ``problems`` is empty when the fit looks healthy."""

    divergences: int = 0
    max_rhat: float = float("nan")
    min_ess_bulk: float = float("nan")
    min_ess_tail: float = float("nan")
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = (
            f"divergences={self.divergences}, max R-hat={self.max_rhat:.3f}, "
            f"min ESS bulk={self.min_ess_bulk:.0f}, tail={self.min_ess_tail:.0f}"
        )
        return "\n- ".join([head, *self.problems]) if self.problems else f"{head}: no problems"


def check_nuts(idata, var_names: list[str], warn: bool = True) -> ConvergenceReport:
    """Diagnose a NUTS fit over ``var_names`` and warn about every problem found."""
    report = ConvergenceReport()
    posterior = idata["posterior"]
    chains = posterior.sizes["chain"]
    if "sample_stats" in idata.children and "diverging" in idata["sample_stats"].data_vars:
        report.divergences = int(idata["sample_stats"]["diverging"].sum())
    rhat = az.rhat(idata, var_names=var_names).to_dataset()
    ess_bulk = az.ess(idata, var_names=var_names, method="bulk").to_dataset()
    ess_tail = az.ess(idata, var_names=var_names, method="tail").to_dataset()
    report.max_rhat = _max(rhat)
    report.min_ess_bulk = _min(ess_bulk)
    report.min_ess_tail = _min(ess_tail)

    if report.divergences:
        total = posterior.sizes["chain"] * posterior.sizes["draw"]
        report.problems.append(
            f"{report.divergences} divergent transitions out of {total} draws: the posterior "
            "has regions the sampler could not explore; consider target_accept=0.95 or a "
            "different cohort_prior"
        )
    bad_rhat = _names_where(rhat, lambda v: v > RHAT_MAX)
    if bad_rhat:
        report.problems.append(
            f"R-hat above {RHAT_MAX} (max {report.max_rhat:.3f}) for {bad_rhat}: chains "
            "disagree; run longer or check the model"
        )
    ess_min = ESS_PER_CHAIN_MIN * chains
    bad_ess = sorted(
        set(_names_where(ess_bulk, lambda v: v < ess_min))
        | set(_names_where(ess_tail, lambda v: v < ess_min))
    )
    if bad_ess:
        report.problems.append(
            f"effective sample size below {ess_min} ({ESS_PER_CHAIN_MIN} per chain; min bulk "
            f"{report.min_ess_bulk:.0f}, tail {report.min_ess_tail:.0f}) for {bad_ess}: "
            "draw more samples"
        )
    if warn:
        for problem in report.problems:
            warnings.warn(problem, ConvergenceWarning, stacklevel=3)
    return report


def _max(ds: xr.Dataset) -> float:
    return max((float(ds[v].max()) for v in ds.data_vars), default=float("nan"))


def _min(ds: xr.Dataset) -> float:
    return min((float(ds[v].min()) for v in ds.data_vars), default=float("nan"))


def _names_where(ds: xr.Dataset, bad) -> list[str]:
    return [name for name in ds.data_vars if bool(np.any(bad(ds[name].to_numpy())))]
