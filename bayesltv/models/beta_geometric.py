r"""Hierarchical shifted beta-geometric (sBG) survival model.

Each user has a churn coin :math:`\theta_u \sim \mathrm{Beta}(\alpha, \beta)`, drawn once
from the "coin factory" of their cell (group × covariates), and churns at
:math:`T_u \sim \mathrm{Geometric}(\theta_u)`. The factory is parameterised by its mean
churn :math:`\mu = \alpha/(\alpha+\beta)` and concentration :math:`\kappa = \alpha+\beta`:

.. math::

    \operatorname{logit} \mu_{c} &= a_{g(c)} + x_c^\top b, \\
    \log \kappa_{c} &= k_{g(c)} + x_c^\top d,

where the group levels :math:`a_g, k_g` follow ``cohort_prior`` (see
:mod:`bayesltv.priors`) and :math:`x_c` are the cell's covariates (categorical levels as
indicators against the first level, numeric columns as given). Group-level
:math:`\alpha, \beta, \mu, \kappa` reported by :meth:`BetaGeometric.summary` are those of
the baseline covariates (reference levels, numeric covariates at 0).

Likelihood of a cell with :math:`c_t` churns, :math:`r_t` censorings and :math:`e_t`
entries at period :math:`t` (left truncation divides by :math:`S(e)`):

.. math::

    \log L = \sum_t c_t \log P(T=t) + r_t \log S(t) - e_t \log S(t).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from pymc_extras.prior import Prior
from scipy import special

from bayesltv.data.survival import COUNT_COLUMNS, GROUP_CODE, SurvivalData
from bayesltv.distributions import ShiftedBetaGeometric, sbg_logpmf, sbg_logsf, sbg_logsf_numpy
from bayesltv.models.base import BayesianModel
from bayesltv.priors import (
    GROUP_SIGMA_SCALE,
    group_coords,
    is_centered,
    linear_predictor,
)
from bayesltv.value.survival import new_user_survival_ltv, survival_ltv


def default_priors(cohort_prior: str = "hierarchical") -> dict[str, Prior]:
    """Weakly informative defaults.

    - ``logit_mu_intercept`` ~ Normal(0, 1.5): mean churn per period between 5% and 95%
      with 94% prior probability.
    - ``log_kappa_intercept`` ~ Normal(1, 1.5): concentration α+β between 0.2 and 45 —
      from very heterogeneous users to nearly identical ones.
    - ``*_group_sigma`` ~ HalfNormal(0.5) between exchangeable groups, HalfNormal(0.25)
      per unit gap for random-walk steps between neighbouring cohorts.
    - ``*_coef`` ~ Normal(0, 1): a covariate multiplies the churn odds or the concentration
      by up to about e² either way.
    """
    sigma = GROUP_SIGMA_SCALE.get(cohort_prior, GROUP_SIGMA_SCALE["hierarchical"])
    return {
        "logit_mu_intercept": Prior("Normal", mu=0.0, sigma=1.5),
        "log_kappa_intercept": Prior("Normal", mu=1.0, sigma=1.5),
        "logit_mu_group_sigma": Prior("HalfNormal", sigma=sigma),
        "log_kappa_group_sigma": Prior("HalfNormal", sigma=sigma),
        "logit_mu_coef": Prior("Normal", mu=0.0, sigma=1.0),
        "log_kappa_coef": Prior("Normal", mu=0.0, sigma=1.0),
    }


#: Group effects parameterised centred by default. A cohort's mean churn μ is pinned down by
#: its first observed period alone (P(T = 1) = μ), so its steps between cohorts are well
#: determined and a centred parameterisation mixes best, and stays fast as users grow; the
#: concentration κ needs several periods and is often barely identified per cohort, where
#: the non-centred form avoids the funnel. Measured in ``benchmarks/sbg_scaling.py``.
CENTERED_BY_DEFAULT = frozenset({"logit_mu"})


def aggregated_logp(value, alpha, beta, period):
    """Log-likelihood of each row of counts (churned, censored, entered) at ``period``."""
    log_sf = sbg_logsf(period, alpha, beta)
    return (
        value[..., 0] * sbg_logpmf(pt.maximum(period, 1), alpha, beta)
        + (value[..., 1] - value[..., 2]) * log_sf
    )


class BetaGeometric(BayesianModel):
    """Hierarchical shifted beta-geometric survival model (see the module docstring).

    Parameters
    ----------
    cohort_prior : {"pooled", "independent", "hierarchical", "random_walk"}, optional
        How groups share information. ``None``: ``"random_walk"`` for ordered cohorts,
        ``"independent"`` for unordered segments.
    covariates : sequence of str, optional
        Covariates of the data to use (default: all of them).
    priors : dict of str to pymc_extras.prior.Prior, optional
        Overrides of :func:`default_priors` by name.
    centered : bool or dict of str to bool, optional
        Parameterisation of the hierarchical and random-walk group effects: ``True`` draws
        the group deviations (or random-walk steps) directly, ``False`` as σ × N(0, 1)
        (non-centred), a dict chooses per parameter (``"logit_mu"``, ``"log_kappa"``).
        ``None``: centred for ``logit_mu``, non-centred for ``log_kappa``
        (see :data:`CENTERED_BY_DEFAULT`).

    Examples
    --------
    >>> import bayesltv as bl
    >>> table = bl.datasets.fader_hardie()
    >>> data = bl.SurvivalData.from_survivors(table.query("period <= 7"), survivors="survivors",
    ...                                       period="period", group="segment")
    >>> model = bl.BetaGeometric().fit(data, method="map")
    >>> model.summary().loc["alpha", "mean"].round(2).tolist()
    [0.7, 0.66]
    """

    summary_vars = ("alpha", "beta", "mu", "kappa")

    data_type = SurvivalData
    data_constructors = "SurvivalData.from_users(...) or SurvivalData.from_survivors(...)"
    default_priors = staticmethod(default_priors)

    def __init__(
        self,
        cohort_prior: str | None = None,
        covariates: Sequence[str] | None = None,
        priors: Mapping[str, Prior] | None = None,
        centered: bool | Mapping[str, bool] | None = None,
    ) -> None:
        super().__init__(cohort_prior, priors, centered)
        self.covariates = None if covariates is None else list(covariates)

    # -- model ---------------------------------------------------------------------------

    def prepare(self, data: SurvivalData) -> SurvivalData:
        """The data restricted to this model's covariates."""
        data = super().prepare(data)
        if self.covariates is None:
            return data
        return data.with_covariates(self.covariates)

    def build_model(self, data: SurvivalData) -> pm.Model:
        data = self.prepare(data)
        groups = data.groups
        kind, priors = self.group_priors(groups)
        features = data.encoding.features
        coords = {**group_coords(groups), "feature": features, "count": list(COUNT_COLUMNS)}
        cell_group = data.cells[GROUP_CODE].to_numpy()
        counts = data.counts

        with pm.Model(coords=coords) as model:
            design = pm.Data("design", data.design()) if features else None
            logit_mu_group, logit_mu_cell = linear_predictor(
                "logit_mu",
                kind,
                groups,
                priors,
                cell_group,
                design,
                centered=is_centered(self.centered, "logit_mu", CENTERED_BY_DEFAULT),
            )
            log_kappa_group, log_kappa_cell = linear_predictor(
                "log_kappa",
                kind,
                groups,
                priors,
                cell_group,
                design,
                centered=is_centered(self.centered, "log_kappa", CENTERED_BY_DEFAULT),
            )
            mu = pm.Deterministic("mu", pm.math.invlogit(logit_mu_group), dims="group")
            kappa = pm.Deterministic("kappa", pt.exp(log_kappa_group), dims="group")
            pm.Deterministic("alpha", mu * kappa, dims="group")
            pm.Deterministic("beta", (1.0 - mu) * kappa, dims="group")
            mu_cell = pm.math.invlogit(logit_mu_cell)
            kappa_cell = pt.exp(log_kappa_cell)
            row_cell = counts["cell"].to_numpy()
            pm.CustomDist(
                "survival",
                (mu_cell * kappa_cell)[row_cell],
                ((1.0 - mu_cell) * kappa_cell)[row_cell],
                counts["period"].to_numpy().astype(float),
                logp=aggregated_logp,
                signature="(),(),()->(3)",
                observed=counts[list(COUNT_COLUMNS)].to_numpy().astype(float),
            )
        return model

    # -- posterior quantities ----------------------------------------------------------

    def factory(self, covariates: Mapping | None = None) -> tuple[xr.DataArray, xr.DataArray]:
        """Posterior draws of (α, β) per group at the given covariate values.

        Parameters
        ----------
        covariates : mapping, optional
            ``{column: value}``; columns left out take the baseline (reference level, or 0
            for numeric columns). Unknown columns or levels are an error.
        """
        posterior = self.idata["posterior"]
        logit_mu = special.logit(posterior["mu"])
        log_kappa = np.log(posterior["kappa"])
        features = self.data.encoding.features
        if features:
            x = xr.DataArray(
                self.data.encoding.design_for(covariates), coords={"feature": features}
            )
            logit_mu = logit_mu + xr.dot(posterior["logit_mu_coef"], x, dim="feature")
            log_kappa = log_kappa + xr.dot(posterior["log_kappa_coef"], x, dim="feature")
        elif covariates:
            self.data.encoding.design_for(covariates)  # raises: the model has no covariates
        mu = special.expit(logit_mu)
        kappa = np.exp(log_kappa)
        return (mu * kappa).rename("alpha"), ((1 - mu) * kappa).rename("beta")

    def survival(
        self, horizon: int = 60, tenure: int = 0, covariates: Mapping | None = None
    ) -> xr.DataArray:
        r"""Posterior draws of survival, conditional on having survived ``tenure`` periods.

        .. math:: S(t \mid T > \tau) = B(\alpha, \beta + t) / B(\alpha, \beta + \tau),
                  \quad t = \tau, \dots, \tau + H

        Returns
        -------
        xarray.DataArray
            Dims (chain, draw, group, period); ``period`` counts periods since acquisition.
        """
        alpha, beta = self.factory(covariates)
        period = xr.DataArray(np.arange(tenure, tenure + horizon + 1), dims="period")
        period = period.assign_coords(period=period.values)
        log_s = sbg_logsf_numpy(period, alpha, beta) - sbg_logsf_numpy(tenure, alpha, beta)
        return np.exp(log_s).rename("survival").transpose("chain", "draw", "group", "period")

    def retention(self, horizon: int = 60, covariates: Mapping | None = None) -> xr.DataArray:
        r"""Posterior draws of retention :math:`r(t) = S(t)/S(t-1)`, i.e. (β+t−1)/(α+β+t−1).

        Retention rises with tenure although no user's coin changes: the users most likely
        to churn leave first (sorting).

        Returns
        -------
        xarray.DataArray
            Dims (chain, draw, group, period) for periods 1..``horizon``.
        """
        alpha, beta = self.factory(covariates)
        period = xr.DataArray(np.arange(1, horizon + 1), dims="period")
        period = period.assign_coords(period=period.values)
        rate = (beta + period - 1) / (alpha + beta + period - 1)
        return rate.rename("retention").transpose("chain", "draw", "group", "period")

    def sample_churn_periods(
        self,
        users_per_group: int = 1000,
        prior: bool = False,
        draws: int = 500,
        random_seed: int | None = None,
    ) -> xr.DataArray:
        """Churn periods of new users simulated through PyMC (prior or posterior predictive).

        Each simulated user draws a coin from their group's baseline factory and churns at a
        geometric time, via :class:`~bayesltv.distributions.ShiftedBetaGeometric`.

        Parameters
        ----------
        users_per_group : int
            Simulated users per group and per draw.
        prior : bool
            Draw from the prior predictive (``draws`` draws) instead of the posterior.

        Returns
        -------
        xarray.DataArray
            Dims (chain, draw, group, user) of integer churn periods ≥ 1.
        """
        with self.build_model(self.data) as model:
            model.add_coord("user", np.arange(users_per_group))
            ShiftedBetaGeometric(
                "churn_period",
                alpha=model["alpha"][:, None],
                beta=model["beta"][:, None],
                dims=("group", "user"),
            )
            if prior:
                tree = pm.sample_prior_predictive(
                    draws, var_names=["churn_period"], random_seed=random_seed
                )
                return tree["prior"]["churn_period"]
            tree = pm.sample_posterior_predictive(
                self.idata,
                var_names=["churn_period"],
                random_seed=random_seed,
                progressbar=False,
            )
            return tree["posterior_predictive"]["churn_period"]

    # -- value (see bayesltv.value.survival) ---------------------------------------------

    ltv = survival_ltv
    new_user_ltv = new_user_survival_ltv
