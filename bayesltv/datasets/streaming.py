r"""A streaming-service panel with known truth: a Dirichlet-heterogeneous Markov chain.

Users of a streaming service move between plans month by month. Every user carries their own
transition matrix, drawn once at acquisition from Dirichlet "factories" per origin plan, so
the panel has exactly the structure the package's multi-state model estimates
(DESIGN.md §3): mean rows m_i = softmax(η_i), concentrations κ_i = exp(ρ_i), a categorical
covariate (country) and a slow drift across acquisition cohorts entering η and ρ additively.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

#: Plan states, in the order used for every categorical and array axis.
STATES: tuple[str, ...] = ("premium", "duo", "family", "student", "free", "lapsed", "deleted")
#: Absorbing states: a user's last row (never left, never modelled as an origin).
ABSORBING: tuple[str, ...] = ("deleted",)
#: States a user can be in and leave: the origins of the modelled rows, in ``STATES`` order.
TRANSIENT: tuple[str, ...] = tuple(s for s in STATES if s not in ABSORBING)

#: Allowed targets per transient origin; the first target is the reference (stay).
_TARGETS: dict[str, tuple[str, ...]] = {
    "premium": ("premium", "duo", "family", "free", "lapsed"),
    "duo": ("duo", "premium", "family", "free", "lapsed"),
    "family": ("family", "duo", "premium", "free", "lapsed"),
    "student": ("student", "premium", "free", "lapsed"),
    "free": ("free", "premium", "duo", "family", "student", "lapsed", "deleted"),
    "lapsed": ("lapsed", "premium", "free", "deleted"),
}


def _allowed_mask() -> np.ndarray:
    mask = np.zeros((len(STATES), len(STATES)), dtype=bool)
    for origin, targets in _TARGETS.items():
        for target in targets:
            mask[STATES.index(origin), STATES.index(target)] = True
    mask.setflags(write=False)
    return mask


#: Allowed transitions, origin (rows) × target (columns) in ``STATES`` order. Every transient
#: state may stay; the absorbing ``deleted`` row is all False (no transition out is modelled).
ALLOWED: np.ndarray = _allowed_mask()

# -- the true parameters ----------------------------------------------------------------
# Reference country ("SE"), cohort 0: mean monthly rows as probabilities (stay first) and the
# concentration κ of each row's Dirichlet factory. η is derived as log(m_j / m_stay).
_MEAN_ROW: dict[str, dict[str, float]] = {
    "premium": {"premium": 0.90, "duo": 0.02, "family": 0.02, "free": 0.04, "lapsed": 0.02},
    "duo": {"duo": 0.92, "premium": 0.02, "family": 0.02, "free": 0.02, "lapsed": 0.02},
    "family": {"family": 0.94, "duo": 0.015, "premium": 0.015, "free": 0.015, "lapsed": 0.015},
    "student": {"student": 0.88, "premium": 0.04, "free": 0.05, "lapsed": 0.03},
    "free": {
        "free": 0.85,
        "premium": 0.04,
        "duo": 0.01,
        "family": 0.01,
        "student": 0.01,
        "lapsed": 0.05,
        "deleted": 0.03,
    },
    "lapsed": {"lapsed": 0.70, "premium": 0.05, "free": 0.05, "deleted": 0.20},
}
_CONCENTRATION: dict[str, float] = {
    "premium": 20.0,
    "duo": 28.0,
    "family": 25.0,
    "student": 8.0,
    "free": 3.0,
    "lapsed": 2.5,
}
# Shift of η (log-odds of moving rather than staying) for the second country; absent = 0.
_ETA_COUNTRY: dict[tuple[str, str], float] = {
    ("premium", "duo"): 0.2,
    ("premium", "family"): 0.3,
    ("premium", "free"): -0.2,
    ("premium", "lapsed"): 0.3,
    ("duo", "family"): 0.2,
    ("duo", "lapsed"): 0.2,
    ("family", "lapsed"): 0.2,
    ("student", "premium"): 0.3,
    ("student", "free"): -0.2,
    ("free", "premium"): 0.3,
    ("free", "duo"): 0.2,
    ("free", "family"): 0.4,
    ("free", "student"): -0.5,
    ("free", "deleted"): 0.2,
    ("lapsed", "premium"): 0.2,
    ("lapsed", "deleted"): -0.3,
}
# Shift of ρ = log κ for the second country.
_RHO_COUNTRY: dict[str, float] = {
    "premium": 0.3,
    "duo": -0.2,
    "family": -0.2,
    "student": 0.2,
    "free": 0.4,
    "lapsed": -0.2,
}
# Drift per cohort (per month of acquisition) of η and ρ; absent = 0.
_ETA_DRIFT: dict[tuple[str, str], float] = {
    ("premium", "free"): 0.015,
    ("premium", "lapsed"): 0.01,
    ("student", "premium"): 0.02,
    ("free", "premium"): -0.01,
    ("free", "deleted"): 0.01,
    ("lapsed", "deleted"): 0.01,
}
_RHO_DRIFT: dict[str, float] = {"premium": -0.01, "free": 0.01}
# Initial-state distribution at acquisition, for the first and the second country.
_INITIAL: tuple[dict[str, float], dict[str, float]] = (
    {"premium": 0.30, "duo": 0.08, "family": 0.07, "student": 0.10, "free": 0.45},
    {"premium": 0.35, "duo": 0.10, "family": 0.10, "student": 0.05, "free": 0.40},
)


@dataclass(frozen=True, eq=False)
class StreamingTruth:
    """The known truth behind a :class:`StreamingPanel`.

    Attributes
    ----------
    states : tuple of str
        All states, in the order of the categoricals and array axes.
    transient : tuple of str
        Origins of the modelled rows (all states but the absorbing ones).
    absorbing : tuple of str
        Absorbing states (``("deleted",)``).
    reference : dict
        Reference target per transient origin: the origin itself (stay), where η is 0.
    allowed : pandas.DataFrame
        Boolean mask, origin (index) × target (columns), all states; absorbing rows all False.
    parameters : xarray.Dataset
        Coordinates ``country``, ``cohort`` (acquisition month), ``origin`` (transient
        states), ``target`` and ``state`` (all states). Variables: ``eta`` (country, cohort,
        origin, target; NaN where not allowed, 0 at the reference), ``rho`` (country, cohort,
        origin), ``mean_row`` = m (country, cohort, origin, target; 0 where not allowed),
        ``concentration`` = κ (country, cohort, origin), ``initial`` = π (country, state),
        and the parts they are built from: ``eta_base``, ``eta_drift`` (origin, target),
        ``eta_country`` (country, origin, target), ``rho_base``, ``rho_drift`` (origin),
        ``rho_country`` (country, origin).
    user_matrices : xarray.DataArray
        Each user's own monthly transition matrix P_u, dims (user, origin, target), with
        coordinates ``country`` and ``cohort`` along ``user``; rows sum to 1.
    """

    states: tuple[str, ...]
    transient: tuple[str, ...]
    absorbing: tuple[str, ...]
    reference: dict[str, str]
    allowed: pd.DataFrame
    parameters: xr.Dataset
    user_matrices: xr.DataArray


@dataclass(frozen=True, eq=False)
class StreamingPanel:
    """A simulated streaming panel and its truth.

    Attributes
    ----------
    panel : pandas.DataFrame
        One row per user and observed month: ``user``, ``month``, ``state``, ``cohort``,
        ``country``; sorted by user, then month.
    holdout : pandas.DataFrame
        The same columns for the months after the data ends (empty without
        ``horizon_beyond``).
    truth : StreamingTruth
        States, mask, parameters and each user's own matrix.
    """

    panel: pd.DataFrame
    holdout: pd.DataFrame
    truth: StreamingTruth


def _table(values: dict, shape: tuple[int, ...], fill: float = 0.0) -> np.ndarray:
    """A dict keyed by origin or (origin, target) names → an array over (origin[, target])."""
    out = np.full(shape, fill)
    for key, value in values.items():
        if isinstance(key, tuple):
            out[TRANSIENT.index(key[0]), STATES.index(key[1])] = value
        else:
            out[TRANSIENT.index(key)] = value
    return out


def simulate_streaming(
    users_per_cohort: int | Sequence[int] = 60,
    n_cohorts: int = 36,
    countries: Sequence[str] = ("SE", "US"),
    country_share: float = 0.5,
    country_effect: float = 1.0,
    drift: float = 1.0,
    horizon_beyond: int = 0,
    random_seed: int | np.random.Generator | None = 0,
) -> StreamingPanel:
    r"""Simulate a monthly panel of streaming-service plans with known truth.

    States, in this order: ``premium``, ``duo``, ``family``, ``student``, ``free``,
    ``lapsed`` (lapsed but still registered: can come back) and ``deleted`` (absorbing, a
    user's last row). The allowed transitions are :data:`ALLOWED` (also ``truth.allowed``):
    every transient state may stay, and

    ========  ===============================================================
    origin    allowed targets (the first, stay, is the reference r_i = i)
    ========  ===============================================================
    premium   premium, duo, family, free, lapsed
    duo       duo, premium, family, free, lapsed
    family    family, duo, premium, free, lapsed
    student   student, premium, free, lapsed
    free      free, premium, duo, family, student, lapsed, deleted
    lapsed    lapsed, premium, free, deleted
    ========  ===============================================================

    **Factories.** For a transient origin i with allowed targets A_i, a country g and an
    acquisition cohort c (the month the user was acquired, 0 … ``n_cohorts`` − 1)

    .. math::

        η_{g,c,i,j} &= η^0_{ij} + δ_{g}\,η^{g}_{ij} + c\,d\,η^{d}_{ij},
            \qquad η_{g,c,i,i} = 0, \\
        ρ_{g,c,i} &= ρ^0_i + δ_{g}\,ρ^{g}_i + c\,d\,ρ^{d}_i, \\
        m_{g,c,i} &= \operatorname{softmax}(η_{g,c,i,\cdot}) \text{ over } A_i, \qquad
        κ_{g,c,i} = \exp(ρ_{g,c,i}),

    where η_{ij} is the log-odds of moving to j rather than staying in i, δ_g is
    ``country_effect`` for the second country and 0 for the first (the reference) and d is
    ``drift``. The built-in values (reference country, cohort 0) have paid plans staying
    90–94 % a month, free users upgrading, lapsing or deleting slowly (85 % stay) and lapsed
    users mostly staying lapsed (70 %) or deleting (20 %); κ runs from 2.5 (lapsed, very
    heterogeneous) to 28 (duo). The country shifts η on most transitions and ρ on every
    origin; the drift makes premium → free and → lapsed, student → premium, free → deleted and
    lapsed → deleted more likely, free → premium less, by 0.01–0.02 on the log-odds per
    cohort, and ρ drifts by ∓0.01 per cohort for premium and free. ``truth.parameters``
    holds every number.

    **Users.** Each user u gets a country (the second with probability ``country_share``)
    and, once, their own matrix: for every transient origin i

    .. math::

        P_u[i, A_i] \sim \operatorname{Dirichlet}(κ_{g,c,i}\, m_{g,c,i}), \qquad
        P_u[i, j] = 0 \text{ for } j \notin A_i,

    so E P_u[i, j] = m_{ij} and Var P_u[i, j] = m_{ij}(1 − m_{ij}) / (κ_i + 1). The first
    state s_{u,c} ~ Categorical(π_g) (never lapsed or deleted), and then
    s_{u,t+1} ~ Categorical(P_u[s_{u,t}, ·]) every month with the same matrix.

    **Observation.** Months are calendar months 0, 1, …; cohort c is acquired in month c.
    A user is observed every month from c to the end of the data, month ``n_cohorts`` − 1
    inclusive (so the last cohort has a single row and no transition), or to the month they
    are deleted (their last row). With ``horizon_beyond`` = h > 0 the same users (no new
    acquisitions) are simulated for h more months, ``n_cohorts`` … ``n_cohorts`` + h − 1,
    with their own matrices, and returned separately as ``holdout``; the panel itself is the
    same as with h = 0 and the same seed.

    Parameters
    ----------
    users_per_cohort : int or sequence of int
        Users acquired in each cohort (one value for all, or one per cohort).
    n_cohorts : int
        Number of monthly cohorts; also the number of observed months.
    countries : sequence of str
        One or two country labels; the first is the reference (no shift).
    country_share : float
        Probability that a user belongs to the second country (ignored with one country).
    country_effect : float
        Scale on the built-in country shifts of η and ρ (0: countries behave alike, apart
        from their initial-state distributions).
    drift : float
        Scale on the built-in per-cohort drift of η and ρ (0: no drift).
    horizon_beyond : int
        Months to simulate past the end of the data, returned as ``holdout``.
    random_seed : int or numpy.random.Generator, optional
        Seed; the default 0 makes the default data set reproducible.

    Returns
    -------
    StreamingPanel
        ``panel`` and ``holdout`` (columns ``user``, ``month``, ``state`` and ``cohort``
        ints, ``state`` and ``country`` categoricals; ``state`` has the categories
        :data:`STATES` in order) and ``truth`` (:class:`StreamingTruth`).

    Notes
    -----
    The loop runs over months only; everything else is vectorised. On a laptop-class CPU,
    10⁵ users take well under a second and 10⁶ users over 24 months a few seconds and about
    2 GB of memory (the users' own matrices alone are 10⁶ × 6 × 7 floats, 336 MB).

    Examples
    --------
    >>> data = simulate_streaming()
    >>> data.panel.columns.tolist()
    ['user', 'month', 'state', 'cohort', 'country']
    >>> data.panel["user"].nunique()
    2160
    >>> data.truth.parameters["mean_row"].dims
    ('country', 'cohort', 'origin', 'target')
    """
    rng = np.random.default_rng(random_seed)
    countries = tuple(countries)
    if len(countries) not in (1, 2) or len(set(countries)) != len(countries):
        raise ValueError("countries must be one or two distinct labels")
    if n_cohorts < 1:
        raise ValueError("n_cohorts must be at least 1")
    if horizon_beyond < 0:
        raise ValueError("horizon_beyond must be non-negative")
    if not 0.0 <= country_share <= 1.0:
        raise ValueError("country_share must lie in [0, 1]")
    sizes = np.broadcast_to(np.asarray(users_per_cohort, dtype=np.int64), (n_cohorts,))
    if (sizes < 0).any():
        raise ValueError("users_per_cohort must be non-negative")

    n_states, n_origins, n_countries = len(STATES), len(TRANSIENT), len(countries)
    allowed = ALLOWED[:n_origins]  # transient origins × all targets
    stay = np.arange(n_origins)

    # -- parameters: η, ρ per (country, cohort, origin[, target]) --------------------------
    m0 = _table(
        {(i, j): p for i, row in _MEAN_ROW.items() for j, p in row.items()}, (n_origins, n_states)
    )
    with np.errstate(divide="ignore"):
        eta_base = np.where(allowed, np.log(m0) - np.log(m0[stay, stay])[:, None], np.nan)
    rho_base = np.log(_table(_CONCENTRATION, (n_origins,)))
    delta = country_effect * (np.arange(n_countries) > 0)
    eta_country = delta[:, None, None] * np.where(
        allowed, _table(_ETA_COUNTRY, (n_origins, n_states)), np.nan
    )
    rho_country = delta[:, None] * _table(_RHO_COUNTRY, (n_origins,))
    eta_drift = drift * np.where(allowed, _table(_ETA_DRIFT, (n_origins, n_states)), np.nan)
    rho_drift = drift * _table(_RHO_DRIFT, (n_origins,))
    cohorts = np.arange(n_cohorts)
    eta = (
        eta_base[None, None]
        + eta_country[:, None]
        + cohorts[None, :, None, None] * eta_drift[None, None]
    )
    rho = rho_base[None, None] + rho_country[:, None] + cohorts[None, :, None] * rho_drift
    weights = np.where(allowed, np.exp(np.where(allowed, eta, -np.inf)), 0.0)
    mean_row = weights / weights.sum(axis=-1, keepdims=True)
    concentration = np.exp(rho)
    initial = np.zeros((n_countries, n_states))
    for g in range(n_countries):
        for state, p in _INITIAL[min(g, 1)].items():
            initial[g, STATES.index(state)] = p

    # -- users: country, own matrix, first state --------------------------------------------
    cohort = np.repeat(cohorts, sizes)
    n_users = len(cohort)
    if n_countries == 2:
        country = (rng.random(n_users) < country_share).astype(np.int64)
    else:
        country = np.zeros(n_users, dtype=np.int64)
    matrices = np.zeros((n_users, n_origins, n_states))
    for i in range(n_origins):
        targets = np.flatnonzero(allowed[i])
        a = (concentration[:, :, i, None] * mean_row[:, :, i, targets])[country, cohort]
        g = rng.standard_gamma(a)
        total = g.sum(axis=1, keepdims=True)
        # a Dirichlet draw underflowing to all zeros is astronomically rare (stay has a > 1);
        # fall back to the mean row rather than dividing by zero
        row = np.where(total > 0, g / np.where(total > 0, total, 1.0), a / a.sum(1, keepdims=True))
        matrices[:, i, targets] = row
    first = _draw(rng, np.cumsum(initial, axis=1)[country])

    # -- months ---------------------------------------------------------------------------
    n_months = n_cohorts + horizon_beyond
    deleted = STATES.index("deleted")
    # each user's cumulative rows, flattened so that row (user, origin) is user·n_origins+origin
    cdf = np.cumsum(matrices, axis=2).reshape(n_users * n_origins, n_states)
    record = np.full((n_months, n_users), -1, dtype=np.int8)
    current = np.full(n_users, -1, dtype=np.int64)
    alive = np.zeros(n_users, dtype=bool)  # observed last month and not deleted
    starts = np.concatenate([[0], np.cumsum(sizes)])
    for t in range(n_months):
        movers = np.flatnonzero(alive)
        if len(movers):
            rows = np.take(cdf, movers * n_origins + current[movers], axis=0)
            current[movers] = _draw(rng, rows)
        present = alive.copy()
        if t < n_cohorts:
            new = slice(starts[t], starts[t + 1])
            current[new] = first[new]
            present[new] = True
        record[t] = np.where(present, current, -1)
        alive = present & (current != deleted)

    def frame(months: slice) -> pd.DataFrame:
        block = record[months].T  # user × month
        users, offset = np.nonzero(block >= 0)
        return pd.DataFrame(
            {
                "user": users.astype(np.int64, copy=False),
                "month": offset.astype(np.int64, copy=False) + (months.start or 0),
                "state": pd.Categorical.from_codes(block[users, offset], categories=STATES),
                "cohort": cohort[users],
                "country": pd.Categorical.from_codes(country[users], categories=countries),
            }
        )

    coords = {
        "country": list(countries),
        "cohort": cohorts,
        "origin": list(TRANSIENT),
        "target": list(STATES),
        "state": list(STATES),
    }
    parameters = xr.Dataset(
        {
            "eta": (("country", "cohort", "origin", "target"), eta),
            "rho": (("country", "cohort", "origin"), rho),
            "mean_row": (("country", "cohort", "origin", "target"), mean_row),
            "concentration": (("country", "cohort", "origin"), concentration),
            "initial": (("country", "state"), initial),
            "eta_base": (("origin", "target"), eta_base),
            "eta_country": (("country", "origin", "target"), eta_country),
            "eta_drift": (("origin", "target"), eta_drift),
            "rho_base": (("origin",), rho_base),
            "rho_country": (("country", "origin"), rho_country),
            "rho_drift": (("origin",), rho_drift),
        },
        coords=coords,
        attrs={"time_unit": "month"},
    )
    user_matrices = xr.DataArray(
        matrices,
        dims=("user", "origin", "target"),
        coords={
            "user": np.arange(n_users),
            "origin": list(TRANSIENT),
            "target": list(STATES),
            "country": ("user", np.asarray(countries)[country]),
            "cohort": ("user", cohort),
        },
        name="user_matrices",
    )
    truth = StreamingTruth(
        states=STATES,
        transient=TRANSIENT,
        absorbing=ABSORBING,
        reference={origin: origin for origin in TRANSIENT},
        allowed=pd.DataFrame(
            ALLOWED.copy(),
            index=pd.Index(STATES, name="origin"),
            columns=pd.Index(STATES, name="target"),
        ),
        parameters=parameters,
        user_matrices=user_matrices,
    )
    return StreamingPanel(
        panel=frame(slice(0, n_cohorts)),
        holdout=frame(slice(n_cohorts, n_months)),
        truth=truth,
    )


def _draw(rng: np.random.Generator, cdf: np.ndarray) -> np.ndarray:
    """One categorical draw per row of cumulative probabilities ``cdf`` (any total).

    The draw is the first index whose cumulative probability exceeds u · total, u ~ U[0, 1),
    so an index of probability zero is never chosen, whatever the rounding.
    """
    u = rng.random(len(cdf)) * cdf[:, -1]
    return (cdf <= u[:, None]).sum(axis=1)
