r"""Simulators with known truth, for tests, tutorials and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def simulate_survival(
    alpha: Sequence[float] | float = (1.0,),
    beta: Sequence[float] | float = (3.0,),
    users_per_cohort: int | Sequence[int] = 1000,
    observed_periods: int | Sequence[int] | None = None,
    covariate_effects: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
    entry_share: float = 0.0,
    max_entry: int = 3,
    random_seed: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    r"""Simulate users of a subscription product with known churn factories per cohort.

    Cohort ``c`` has factory Beta(α_c, β_c). A categorical covariate shifts the logit of
    the mean churn μ = α/(α+β) and the log of the concentration κ = α+β additively (the
    model's own parameterisation). Each user draws a coin θ ~ Beta(α, β) once and churns at
    T ~ Geometric(θ) ∈ {1, 2, …}.

    Observation: cohort ``c`` is watched for ``observed_periods[c]`` periods (a calendar
    cut-off: by default the last cohort is seen for 1 period, the first for as many periods
    as there are cohorts), so users still active then are right-censored. A share
    ``entry_share`` of users is left-truncated: first seen after surviving ``entry`` ~
    Uniform{1..max_entry} periods (capped below the window); users who churned before
    their entry are never seen, exactly as in real left-truncated data.

    Parameters
    ----------
    alpha, beta : float or sequence of float
        Factory parameters per cohort (one value: one cohort).
    users_per_cohort : int or sequence of int
        Users acquired per cohort (before left truncation removes some).
    observed_periods : int or sequence of int, optional
        Periods each cohort is observed for.
    covariate_effects : mapping, optional
        ``{column: {level: (logit_mu_shift, log_kappa_shift)}}``; levels are assigned to
        users uniformly at random. The first level should have shift (0, 0) to be the
        reference the model estimates against.
    entry_share : float
        Share of users first observed after some periods of tenure.
    max_entry : int
        Largest entry period.
    random_seed : int or numpy.random.Generator, optional

    Returns
    -------
    pandas.DataFrame
        One row per observed user: ``user``, ``cohort``, covariate columns, ``entry``,
        ``duration``, ``churned``, and the truth: ``true_alpha``, ``true_beta``,
        ``true_churn_period`` (T before censoring).
    """
    rng = np.random.default_rng(random_seed)
    alpha = np.atleast_1d(np.asarray(alpha, dtype=float))
    beta = np.atleast_1d(np.asarray(beta, dtype=float))
    alpha, beta = np.broadcast_arrays(alpha, beta)
    n_cohorts = len(alpha)
    sizes = np.broadcast_to(np.asarray(users_per_cohort, dtype=np.int64), (n_cohorts,))
    if observed_periods is None:
        observed_periods = np.arange(n_cohorts, 0, -1)
    windows = np.broadcast_to(np.asarray(observed_periods, dtype=np.int64), (n_cohorts,))

    cohort = np.repeat(np.arange(n_cohorts), sizes)
    n = len(cohort)
    logit_mu = np.log(alpha / beta)[cohort]
    log_kappa = np.log(alpha + beta)[cohort]
    columns: dict[str, np.ndarray] = {}
    for column, effects in (covariate_effects or {}).items():
        levels = list(effects)
        chosen = rng.integers(len(levels), size=n)
        columns[column] = np.asarray(levels, dtype=object)[chosen]
        shifts = np.asarray([effects[level] for level in levels], dtype=float)[chosen]
        logit_mu = logit_mu + shifts[:, 0]
        log_kappa = log_kappa + shifts[:, 1]
    mu = 1.0 / (1.0 + np.exp(-logit_mu))
    kappa = np.exp(log_kappa)
    user_alpha, user_beta = mu * kappa, (1.0 - mu) * kappa

    theta = rng.beta(user_alpha, user_beta)
    churn_period = rng.geometric(np.maximum(theta, np.finfo(float).tiny))
    window = windows[cohort]
    truncated = rng.random(n) < entry_share
    entry = np.where(truncated, rng.integers(1, max_entry + 1, size=n), 0)
    entry = np.minimum(entry, np.maximum(window - 1, 0))
    churned = churn_period <= window
    frame = pd.DataFrame(
        {
            "user": np.arange(n),
            "cohort": cohort,
            **columns,
            "entry": entry,
            "duration": np.where(churned, churn_period, window),
            "churned": churned,
            "true_alpha": user_alpha,
            "true_beta": user_beta,
            "true_churn_period": churn_period,
        }
    )
    seen = churn_period > entry
    return frame[seen].reset_index(drop=True)
