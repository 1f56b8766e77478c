r"""Lifetime value under the shifted beta-geometric model.

A user active now (their current period paid) after surviving :math:`t` periods has coin
posterior :math:`\theta \sim \mathrm{Beta}(\alpha, \beta + t)`, so the probability of still
being active :math:`k` periods from now is

.. math:: S(t+k \mid T > t) = \frac{B(\alpha, \beta + t + k)}{B(\alpha, \beta + t)}.

For one posterior draw of :math:`(\alpha, \beta)`, the expected value with rewards
:math:`r_k` and discount factor :math:`\delta = 1/(1+d)` is

.. math:: E = \sum_{k=1}^{H} \delta^k r_k \, S(t+k \mid T > t)

(plus :math:`r_0` with ``include_current``). Its predictive distribution is exact: the user
stays :math:`L \in \{0, \dots, H\}` more periods with :math:`P(L \ge k) = S(t+k \mid T>t)`,
and is worth :math:`\sum_{k \le L} \delta^k r_k`.

With an infinite horizon and a constant reward the sum has a closed form (Fader & Hardie
2010, "Customer-base valuation in a contractual setting", eq. 6):

.. math:: \sum_{k \ge 1} \delta^k S(t+k \mid T > t)
          = {}_2F_1(1, \beta + t; \alpha + \beta + t; \delta) - 1
          = \delta\,\frac{\beta + t}{\alpha + \beta + t}\,
            {}_2F_1(1, \beta + t + 1; \alpha + \beta + t + 1; \delta),

the last form being :math:`\delta` times their discounted expected residual lifetime
(DERL), which counts the next payment undiscounted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from scipy import special

from bayesltv.data.groups import GROUP_CODE
from bayesltv.data.survival import SurvivalData
from bayesltv.value.result import LTVResult, ValueAccumulator, discrete_hdi, draw_indices
from bayesltv.value.rewards import (
    RewardSpec,
    check_discount_rate,
    check_horizon,
    discount_factors,
    reward_schedule,
)

#: Memory for one chunk of survival curves (units × draws × periods), in bytes.
CHUNK_BYTES = 64 * 2**20
#: With an infinite horizon, predictive distributions are computed up to the period where
#: the discount factor falls below this (the tail beyond holds less value than this share).
INFINITE_HORIZON_TOLERANCE = 1e-6


def conditional_survival(alpha, beta, tenure, horizon: int) -> np.ndarray:
    r""":math:`S(t+k \mid T > t)` for :math:`k = 0, \dots, H+1` (last axis).

    ``alpha``, ``beta`` and ``tenure`` broadcast together; the result has their shape plus
    one axis of length ``horizon + 2``. Computed as the product of one-period retentions
    :math:`\prod_{j<k} (\beta+t+j)/(\alpha+\beta+t+j)`, equal to the ratio of Beta
    functions and an order of magnitude cheaper than ``betaln``.
    """
    alpha, beta, tenure = np.broadcast_arrays(alpha, beta, tenure)
    j = np.arange(horizon + 1)
    stay = (beta + tenure)[..., None] + j
    retention = stay / (alpha[..., None] + stay)
    survival = np.ones((*alpha.shape, horizon + 2))
    np.cumprod(retention, axis=-1, out=survival[..., 1:])
    return survival


def residual_lifetime_value(alpha, beta, tenure, discount_rate: float) -> np.ndarray:
    r"""Infinite-horizon :math:`\sum_{k\ge 1} \delta^k S(t+k \mid T>t)` via :math:`{}_2F_1`.

    Multiply by a constant reward per period for the residual value of an active user.

    A uniform coin (α = β = 1) has :math:`S(k) = 1/(k+1)`, so the sum is
    :math:`(-\log(1-\delta) - \delta)/\delta`; with :math:`d = 10\%`:

    >>> round(float(residual_lifetime_value(1.0, 1.0, 0, 0.1)), 6)
    1.637685
    """
    check_discount_rate(discount_rate)
    if discount_rate <= 0:
        raise ValueError(
            f"discount_rate is {discount_rate}; rule: an infinite horizon needs a positive "
            "discount rate"
        )
    delta = 1.0 / (1.0 + discount_rate)
    alpha, beta, tenure = np.broadcast_arrays(
        np.asarray(alpha, float), np.asarray(beta, float), np.asarray(tenure, float)
    )
    return special.hyp2f1(1.0, beta + tenure, alpha + beta + tenure, delta) - 1.0


def discounted_rewards(
    value: RewardSpec, discount_rate: float, horizon: int | None, include_current: bool
) -> tuple[np.ndarray, int, bool]:
    r"""Weights :math:`g_k = \delta^k r_k` for :math:`k = 0..H` (:math:`g_0 = 0` unless
    ``include_current``), the horizon used, and whether it stands for an infinite one."""
    check_discount_rate(discount_rate)
    infinite = horizon is None or horizon == np.inf
    if infinite:
        if np.ndim(value) != 0:
            raise ValueError(
                "an infinite horizon needs a constant reward (value is a schedule); rule: "
                "give a finite horizon for rewards that vary by period"
            )
        if discount_rate <= 0:
            raise ValueError(
                f"discount_rate is {discount_rate}; rule: an infinite horizon needs a "
                "positive discount rate"
            )
        horizon = int(np.ceil(np.log(INFINITE_HORIZON_TOLERANCE) / -np.log1p(discount_rate)))
    horizon = check_horizon(horizon)
    weights = discount_factors(discount_rate, horizon) * reward_schedule(value, horizon)
    if not include_current:
        weights[0] = 0.0
    return weights, horizon, infinite


def score_units(
    factories: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    tenure: np.ndarray,
    strata: np.ndarray,
    users: np.ndarray,
    n_strata: int,
    n_samples: int,
    weights: np.ndarray,
    hdi_prob: float,
    keep_draws: bool,
    closed_form: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> ValueAccumulator:
    """Value each unit (users sharing a cell and tenure) in memory-bounded chunks.

    ``factories(units)`` returns (α, β) arrays of shape (units, draws); ``closed_form``
    replaces the truncated expected value (infinite horizon).
    """
    horizon = len(weights) - 1
    accumulator = ValueAccumulator(len(tenure), n_strata, n_samples, hdi_prob, keep_draws)
    cumulative = np.cumsum(weights)  # value of staying L more periods, L = 0..H
    chunk = max(1, CHUNK_BYTES // (8 * n_samples * (horizon + 2)))
    for start in range(0, len(tenure), chunk):
        units = np.arange(start, min(start + chunk, len(tenure)))
        alpha, beta = factories(units)
        t = tenure[units][:, None]
        survival = conditional_survival(alpha, beta, t, horizon)  # units × draws × (H+2)
        expected = survival[..., :-1] @ weights
        stay = survival[..., :-1] - survival[..., 1:]
        stay[..., -1] = survival[..., -2]  # L = H: still active at the horizon
        within = np.maximum(stay @ cumulative**2 - (stay @ cumulative) ** 2, 0.0)
        if closed_form is not None:
            expected = closed_form(alpha, beta, t) + weights[0]
        predictive_hdi = discrete_hdi(cumulative, stay.mean(axis=1), hdi_prob)
        accumulator.add(units, strata[units], users[units], expected, within, predictive_hdi)
    return accumulator


class SurvivalFactories:
    """Posterior draws of (α, β) for the cells of any data set with the model's groups.

    Works for numeric covariates too (one cell per user) without forming draws × cells.
    """

    def __init__(self, model, data: SurvivalData, max_draws: int | None = None) -> None:
        posterior = model.idata["posterior"].to_dataset()
        posterior = posterior.isel(draw=draw_indices(posterior, max_draws))
        stacked = posterior.stack(sample=("chain", "draw"))
        self.samples = stacked.indexes["sample"]
        self.logit_mu = special.logit(stacked["mu"].transpose("sample", "group").values)
        self.log_kappa = np.log(stacked["kappa"].transpose("sample", "group").values)
        fitted = model.data
        labels = data.groups.labels[data.cells[GROUP_CODE].to_numpy()]
        self.group = fitted.groups.codes(pd.Series(labels))
        features = fitted.encoding.features
        self.design = fitted.encoding.design(data.cells) if features else None
        if features:
            self.mu_coef = stacked["logit_mu_coef"].transpose("sample", "feature").values
            self.kappa_coef = stacked["log_kappa_coef"].transpose("sample", "feature").values

    def __call__(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(α, β) of the given cells: arrays (cells, draws)."""
        logit_mu = self.logit_mu[:, self.group[cells]].T
        log_kappa = self.log_kappa[:, self.group[cells]].T
        if self.design is not None:
            x = self.design[cells]
            logit_mu = logit_mu + x @ self.mu_coef.T
            log_kappa = log_kappa + x @ self.kappa_coef.T
        mu, kappa = special.expit(logit_mu), np.exp(log_kappa)
        return mu * kappa, (1.0 - mu) * kappa


def survival_ltv(
    model,
    data: SurvivalData,
    value: RewardSpec,
    discount_rate: float = 0.0,
    horizon: int | None = 60,
    include_current: bool = False,
    hdi_prob: float = 0.94,
    keep_draws: bool = False,
    max_draws: int | None = None,
) -> LTVResult:
    r"""Residual lifetime value of the users of ``data``, given their history.

    :meth:`BetaGeometric.ltv <bayesltv.BetaGeometric.ltv>`. An active user with tenure
    :math:`t` is worth :math:`\sum_{k=1}^{H} \delta^k r_k B(\alpha, \beta+t+k)/B(\alpha,
    \beta+t)` per posterior draw (expected layer); the predictive layer adds their own coin
    and lifetime (exact, see :mod:`bayesltv.value.survival`). Churned users are worth 0.

    Parameters
    ----------
    data : SurvivalData
        Users to value (usually the fitted data); their groups must be the model's.
    value : float, sequence or pandas.Series
        Reward per period, or a schedule by periods ahead ``0..horizon`` (see
        :func:`bayesltv.value.price_schedule`).
    discount_rate : float
        Per-period rate :math:`d`, :math:`\delta = 1/(1+d)` (see
        :func:`bayesltv.value.per_period_rate`).
    horizon : int or None
        Periods ahead; ``None`` (or ``numpy.inf``) for an infinite horizon (constant reward
        and positive rate; closed form via the hypergeometric function).
    include_current : bool
        Add the current period's reward :math:`r_0`.
    hdi_prob : float
        Probability mass of the highest-density intervals.
    keep_draws : bool
        Keep every unit's per-draw values for ``draws(by="user")`` (memory: units × draws).
    max_draws : int, optional
        Use at most this many posterior draws (evenly thinned).

    Returns
    -------
    LTVResult
        ``summary(by="user" | "cohort" | covariate | "total")``, ``draws()``.
    """
    data = model.prepare(data)
    weights, horizon, infinite = discounted_rewards(value, discount_rate, horizon, include_current)
    factories = SurvivalFactories(model, data, max_draws)
    # Active users: those censored (still subscribed) at their duration; one unit per
    # (cell, tenure).
    active = data.counts[data.counts["censored"] > 0]
    cells = active["cell"].to_numpy()
    tenure = active["period"].to_numpy()
    closed_form = None
    if infinite:
        rate = float(value)

        def closed_form(alpha, beta, t):
            return rate * residual_lifetime_value(alpha, beta, t, discount_rate)

    accumulator = score_units(
        lambda units: factories(cells[units]),
        tenure,
        strata=cells,
        users=active["censored"].to_numpy(),
        n_strata=data.n_cells,
        n_samples=len(factories.samples),
        weights=weights,
        hdi_prob=hdi_prob,
        keep_draws=keep_draws,
        closed_form=closed_form,
    )
    strata = _strata(data)
    strata["users"] = np.bincount(cells, weights=active["censored"], minlength=data.n_cells)
    strata["users"] = strata["users"].astype(np.int64)
    units = pd.DataFrame(
        {"stratum": cells, "tenure": tenure, "users": active["censored"].to_numpy()},
        index=pd.RangeIndex(len(active), name="unit"),
    )
    users = None
    if data.users is not None:
        table = data.users
        keys = pd.MultiIndex.from_arrays([cells, tenure])
        unit = keys.get_indexer(pd.MultiIndex.from_frame(table[["cell", "duration"]]))
        unit[table["churned"].to_numpy()] = -1
        users = pd.DataFrame(
            {
                "group": strata["group"].to_numpy()[table["cell"].to_numpy()],
                "duration": table["duration"].to_numpy(),
                "churned": table["churned"].to_numpy(),
                "unit": unit,
            },
            index=table.index,
        )
    settings = _settings(data, discount_rate, horizon, infinite, include_current)
    return LTVResult.from_accumulator(
        accumulator, strata, units, users, factories.samples, settings
    )


def new_user_survival_ltv(
    model,
    value: RewardSpec,
    discount_rate: float = 0.0,
    horizon: int | None = 60,
    covariates: Mapping | None = None,
    users: Mapping | None = None,
    hdi_prob: float = 0.94,
    max_draws: int | None = None,
) -> LTVResult:
    r"""Value of a user acquired now, per group: the first payment plus the residual value.

    :meth:`BetaGeometric.new_user_ltv <bayesltv.BetaGeometric.new_user_ltv>`:
    :math:`\sum_{k=0}^{H} \delta^k r_k S(k)` with :math:`S(k) = B(\alpha, \beta+k) /
    B(\alpha, \beta)`. ``users`` (``{group: count}``, default one per group) values a
    planned acquisition; ``covariates`` picks the factory (default: the baseline). Other
    arguments as for :func:`survival_ltv`. Read it with ``summary(by="group")``.
    """
    weights, horizon, infinite = discounted_rewards(value, discount_rate, horizon, True)
    alpha, beta = model.factory(covariates)
    keep = draw_indices(alpha, max_draws)
    alpha = alpha.isel(draw=keep).stack(sample=("chain", "draw"))
    beta = beta.isel(draw=keep).stack(sample=("chain", "draw"))
    groups = model.data.groups.labels
    counts = np.ones(len(groups), np.int64)
    if users is not None:
        model.data.groups.codes(pd.Series(list(users)))  # unknown groups are an error
        counts = np.array([int(users.get(g, 0)) for g in groups], np.int64)
    closed_form = None
    if infinite:
        rate = float(value)

        def closed_form(a, b, t):
            return rate * residual_lifetime_value(a, b, t, discount_rate)

    alpha_values = alpha.transpose("group", "sample").values
    beta_values = beta.transpose("group", "sample").values
    codes = np.arange(len(groups))
    accumulator = score_units(
        lambda units: (alpha_values[units], beta_values[units]),
        np.zeros(len(groups), np.int64),
        strata=codes,
        users=counts,
        n_strata=len(groups),
        n_samples=alpha_values.shape[1],
        weights=weights,
        hdi_prob=hdi_prob,
        keep_draws=False,
        closed_form=closed_form,
    )
    strata = pd.DataFrame({"group": groups, "users": counts}, index=pd.RangeIndex(len(groups)))
    for column, level in (covariates or {}).items():
        strata[column] = level
    units = pd.DataFrame({"stratum": codes, "tenure": 0, "users": counts})
    settings = _settings(model.data, discount_rate, horizon, infinite, True)
    return LTVResult.from_accumulator(
        accumulator, strata, units, None, alpha.indexes["sample"], settings
    )


def _strata(data) -> pd.DataFrame:
    """Cells as strata: the group label (column ``group``) and covariate columns."""
    cells = data.cells
    strata = pd.DataFrame(
        {"group": data.groups.labels[cells[GROUP_CODE].to_numpy()]}, index=cells.index
    )
    for column in data.encoding.columns:
        strata[column] = cells[column].to_numpy()
    return strata


def _settings(data, discount_rate, horizon, infinite, include_current) -> dict:
    return {
        "discount_rate": discount_rate,
        "horizon": "infinite" if infinite else horizon,
        "include_current": include_current,
        "group_column": data.groups.column,
    }
