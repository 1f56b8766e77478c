r"""Hierarchical Dirichlet multi-state model: each user's transition dice from "dice factories".

Users move between states (plans) each period. User :math:`u` has their own transition
matrix whose row :math:`i` is drawn once from the dice factory of their cell:

.. math::

    P_u[i, \cdot] \sim \mathrm{Dirichlet}(\kappa_i m_i), \qquad
    m_i = \operatorname{softmax}(\eta_i), \qquad \kappa_i = e^{\rho_i},

over the allowed targets of :math:`i` only. :math:`\eta_{ij}` is the log-odds of moving to
:math:`j` rather than to the row's reference target (staying, when allowed; else the first
allowed target), whose :math:`\eta` is 0. Groups (cohorts) and categorical covariates enter
:math:`\eta` and :math:`\rho` additively, with the same ``cohort_prior`` choices as
:class:`~bayesltv.BetaGeometric` (see :mod:`bayesltv.priors`).

Given the observed path (its first state fixed), with transition counts :math:`n_{ij}` and
:math:`N_i = \sum_j n_{ij}`, the marginal likelihood is Dirichlet-multinomial per row,
without multinomial coefficient since the order of the moves is observed:

.. math::

    L_u = \prod_i \frac{\Gamma(\kappa_i)}{\Gamma(\kappa_i + N_i)}
          \prod_j \frac{\Gamma(a_{ij} + n_{ij})}{\Gamma(a_{ij})}, \qquad a_{ij} = \kappa_i m_{ij}.

It is evaluated once per unique (cell, origin, counts) pattern and multiplied by the
pattern's weight. The posterior of a user's rows is conjugate:
:math:`\mathrm{Dirichlet}(a_i + n_{u,i\cdot})`.

New users' first state follows :math:`\pi_g \sim \mathrm{Dirichlet}(1, \dots, 1)` per group,
learned from the first observed state of each user.

With two states {active, churned}, churned absorbing, this is the shifted beta-geometric
model: :math:`\alpha = a_{\text{active},\text{churned}}`,
:math:`\beta = a_{\text{active},\text{active}}`, and :math:`\eta_{\text{active}\to\text{churned}}
= \operatorname{logit}\mu` (with the same priors, see :func:`default_priors`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from pymc_extras.prior import Prior
from scipy import special

from bayesltv.data.groups import GROUP_CODE
from bayesltv.data.sequences import ORIGIN, WEIGHT, StateSequences
from bayesltv.data.validation import describe_values
from bayesltv.errors import DataValidationError
from bayesltv.models.base import BayesianModel
from bayesltv.models.beta_geometric import default_priors as survival_priors
from bayesltv.priors import (
    group_coords,
    is_centered,
    linear_predictor,
)
from bayesltv.value import multistate as multistate_value
from bayesltv.value.result import draw_indices

#: Group effects of the multi-state model are non-centred by default: with random-walk
#: cohorts on the streaming tutorial data, centred η gave 37 divergences and R-hat 1.30
#: (≈560 leapfrog steps per draw), non-centred 0 divergences and R-hat 1.006.
CENTERED_BY_DEFAULT: frozenset[str] = frozenset()


def default_priors(cohort_prior: str = "hierarchical") -> dict[str, Prior]:
    """Weakly informative defaults for monthly plan transitions.

    - ``eta_intercept`` ~ Normal(−2, 2) for each log-odds of a move against the reference
      target (staying): a single move's monthly probability, relative to staying, between
      about 0.3% and 85% with 94% prior probability — plan changes are rare events.
    - ``log_kappa_intercept`` ~ Normal(1.5, 2) per origin state: κ between 0.1 and 200,
      from very heterogeneous users to nearly identical ones.
    - Group sigmas and covariate coefficients as in
      :func:`bayesltv.models.beta_geometric.default_priors` (``eta_*`` for ``logit_mu_*``).

    For the two-state model to reproduce :class:`~bayesltv.BetaGeometric` exactly, pass the
    sBG's priors: ``{"eta_intercept": Prior("Normal", mu=0, sigma=1.5),
    "log_kappa_intercept": Prior("Normal", mu=1, sigma=1.5)}``.
    """
    priors = {
        name.replace("logit_mu", "eta"): prior
        for name, prior in survival_priors(cohort_prior).items()
    }
    priors["eta_intercept"] = Prior("Normal", mu=-2.0, sigma=2.0)
    priors["log_kappa_intercept"] = Prior("Normal", mu=1.5, sigma=2.0)
    return priors


#: Above this, log rising factorials use their asymptotic series: a difference of two
#: log-gamma values near 1e16 would lose every significant digit.
LARGE_ARGUMENT = 1e5


def log_rising_factorial(x, n):
    r""":math:`\log \Gamma(x + n) - \log \Gamma(x) = \sum_{r<n} \log(x + r)`, stably.

    For :math:`x >` :data:`LARGE_ARGUMENT` the series
    :math:`n \log x + \tfrac{n(n-1)}{2x} - \tfrac{n(n-1)(2n-1)}{12 x^2}` is used
    (error :math:`O(n^4 / x^3)`), so that nearly homogeneous rows (huge κ) keep an accurate,
    smooth likelihood. Works on PyTensor tensors and NumPy arrays.
    """
    if isinstance(x, np.ndarray | float) and isinstance(n, np.ndarray | float | int):
        where, log, gammaln = np.where, np.log, special.gammaln
        small_x = np.minimum(x, LARGE_ARGUMENT)
        large_x = np.maximum(x, LARGE_ARGUMENT)
    else:
        where, log, gammaln = pt.switch, pt.log, pt.gammaln
        small_x = pt.minimum(x, LARGE_ARGUMENT)
        large_x = pt.maximum(x, LARGE_ARGUMENT)
    exact = gammaln(small_x + n) - gammaln(small_x)
    series = (
        n * log(large_x)
        + n * (n - 1) / (2 * large_x)
        - n * (n - 1) * (2 * n - 1) / (12 * large_x**2)
    )
    return where(x > LARGE_ARGUMENT, series, exact)


def dirichlet_multinomial_logp(value, kappa, a, allowed, weight):
    """Weighted Dirichlet-multinomial log-likelihood of each pattern's counts (no coefficient).

    ``a`` is only used where ``allowed`` (disallowed entries are replaced by 1 so that
    gradients stay finite).
    """
    a_safe = pt.switch(allowed, a, 1.0)
    per_target = pt.switch(allowed, log_rising_factorial(a_safe, value), 0.0)
    return weight * (per_target.sum(axis=-1) - log_rising_factorial(kappa, value.sum(axis=-1)))


def multinomial_logp(value, log_m, allowed, weight):
    """Weighted log-likelihood of each pattern's counts when all users share one matrix."""
    log_m_safe = pt.switch(allowed, log_m, 0.0)
    return weight * pt.switch(allowed, value * log_m_safe, 0.0).sum(axis=-1)


class TransitionLayout:
    """Which transitions are free parameters, and the reference target of each row.

    Attributes
    ----------
    states : pandas.Index
    allowed : numpy.ndarray
        Boolean origin × target mask.
    transient : numpy.ndarray
        Codes of origin states with transitions out.
    reference : numpy.ndarray
        Reference target per state (staying when allowed), −1 for absorbing states.
    free_origin, free_target : numpy.ndarray
        The allowed, non-reference transitions: the entries of η that are parameters.
    """

    def __init__(self, states: pd.Index, allowed: np.ndarray, absorbing: Sequence[str]) -> None:
        self.states = states
        self.allowed = np.asarray(allowed, dtype=bool)
        k = len(states)
        absorbing_codes = states.get_indexer(list(absorbing))
        self.transient = np.setdiff1d(np.arange(k), absorbing_codes)
        self.reference = np.full(k, -1)
        for i in self.transient:
            self.reference[i] = i if self.allowed[i, i] else int(np.flatnonzero(self.allowed[i])[0])
        free = self.allowed.copy()
        free[self.transient, self.reference[self.transient]] = False
        self.free_origin, self.free_target = np.nonzero(free)

    @property
    def transition_labels(self) -> list[str]:
        return [
            f"{self.states[i]}->{self.states[j]}"
            for i, j in zip(self.free_origin, self.free_target, strict=True)
        ]

    @property
    def origin_labels(self) -> list[str]:
        return list(self.states[self.transient])

    def log_mean_rows(self, eta_free, batch_shape):
        """log m (batch × transient origins × states) from free η (batch × free).

        Works on NumPy arrays (post-processing draws) and PyTensor tensors (the model).
        """
        k = len(self.states)
        position = {int(o): n for n, o in enumerate(self.transient)}
        rows = np.array([position[int(o)] for o in self.free_origin], dtype=np.int64)
        if isinstance(eta_free, np.ndarray):
            dense = np.zeros((*batch_shape, len(self.transient), k))
            dense[..., rows, self.free_target] = eta_free
            mask = self.allowed[self.transient]
            dense = np.where(mask, dense, -np.inf)
            return dense - special.logsumexp(dense, axis=-1, keepdims=True)
        dense = pt.zeros((*batch_shape, len(self.transient), k))
        dense = pt.set_subtensor(dense[..., rows, self.free_target], eta_free)
        mask = self.allowed[self.transient]
        dense = pt.switch(mask, dense, -np.inf)
        return dense - pt.logsumexp(dense, axis=-1, keepdims=True)


class DirichletMarkov(BayesianModel):
    """Hierarchical Dirichlet-heterogeneous Markov chain (see the module docstring).

    Parameters
    ----------
    cohort_prior : {"pooled", "independent", "hierarchical", "random_walk"}, optional
        How cohorts share information on η and log κ. ``None``: ``"random_walk"`` for
        ordered cohorts.
    priors : dict of str to pymc_extras.prior.Prior, optional
        Overrides of :func:`default_priors` by name. The data's categorical covariates all
        enter η and log κ.
    centered : bool or dict of str to bool, optional
        Parameterisation of group effects (``"eta"``, ``"log_kappa"``); ``None``:
        non-centred for both (:data:`CENTERED_BY_DEFAULT`).
    heterogeneous : bool
        ``False`` fits the homogeneous Markov chain instead: every user of a cell moves with
        the same matrix :math:`m` (the limit κ → ∞), a baseline to compare against.
    """

    data_type = StateSequences
    data_constructors = "StateSequences.from_panel(...) or StateSequences.from_sequences(...)"
    default_priors = staticmethod(default_priors)

    def __init__(
        self,
        cohort_prior: str | None = None,
        priors: Mapping[str, Prior] | None = None,
        centered: bool | Mapping[str, bool] | None = None,
        heterogeneous: bool = True,
    ) -> None:
        super().__init__(cohort_prior, priors, centered)
        self.heterogeneous = heterogeneous

    @property
    def summary_vars(self) -> tuple[str, ...]:
        if self.heterogeneous:
            return ("transition_mean", "concentration")
        return ("transition_mean",)

    # -- model ---------------------------------------------------------------------------

    def layout(self, data: StateSequences | None = None) -> TransitionLayout:
        data = self.data if data is None else data
        return TransitionLayout(data.states, data.allowed.to_numpy(), data.absorbing)

    def build_model(self, data: StateSequences) -> pm.Model:
        data = self.prepare(data)
        layout = self.layout(data)
        groups = data.groups
        kind, priors = self.group_priors(groups)
        features = data.encoding.features
        states = list(data.states)
        coords = {
            **group_coords(groups),
            "feature": features,
            "transition": layout.transition_labels,
            "origin": layout.origin_labels,
            "target": states,
            "state": states,
        }
        cell_group = data.cells[GROUP_CODE].to_numpy()
        patterns = data.patterns
        origin_position = np.full(len(states), -1)
        origin_position[layout.transient] = np.arange(len(layout.transient))
        pattern_cell = patterns["cell"].to_numpy()
        pattern_origin = origin_position[patterns[ORIGIN].to_numpy()]

        with pm.Model(coords=coords) as model:
            design = pm.Data("design", data.design()) if features else None
            eta_group, eta_cell = linear_predictor(
                "eta",
                kind,
                groups,
                priors,
                cell_group,
                design,
                dims=("transition",),
                centered=is_centered(self.centered, "eta", CENTERED_BY_DEFAULT),
            )
            log_m_group = layout.log_mean_rows(eta_group, (groups.size,))
            pm.Deterministic(
                "transition_mean", pt.exp(log_m_group), dims=("group", "origin", "target")
            )
            log_m = layout.log_mean_rows(eta_cell, (data.cells.shape[0],))
            log_m = log_m[pattern_cell, pattern_origin]
            allowed = layout.allowed[patterns[ORIGIN].to_numpy()]
            weight = patterns[WEIGHT].to_numpy().astype(float)
            observed = patterns[data.count_columns].to_numpy().astype(float)
            if self.heterogeneous:
                log_kappa_group, log_kappa_cell = linear_predictor(
                    "log_kappa",
                    kind,
                    groups,
                    priors,
                    cell_group,
                    design,
                    dims=("origin",),
                    centered=is_centered(self.centered, "log_kappa", CENTERED_BY_DEFAULT),
                )
                pm.Deterministic("concentration", pt.exp(log_kappa_group), dims=("group", "origin"))
                kappa = pt.exp(log_kappa_cell)[pattern_cell, pattern_origin]
                pm.CustomDist(
                    "transitions",
                    kappa,
                    kappa[:, None] * pt.exp(log_m),
                    allowed,
                    weight,
                    logp=dirichlet_multinomial_logp,
                    signature="(),(k),(k),()->(k)",
                    observed=observed,
                )
            else:
                pm.CustomDist(
                    "transitions",
                    log_m,
                    allowed,
                    weight,
                    logp=multinomial_logp,
                    signature="(k),(k),()->(k)",
                    observed=observed,
                )

            initial = pm.Dirichlet(
                "initial", a=np.ones((groups.size, len(states))), dims=("group", "state")
            )
            counts = data.initial_counts.to_numpy()
            pm.Multinomial("first_state", n=counts.sum(axis=1), p=initial, observed=counts)
        return model

    # -- posterior quantities ----------------------------------------------------------

    def factory(self, covariates: Mapping | None = None) -> tuple[xr.DataArray, xr.DataArray]:
        """Posterior draws of the dice factories per group at the given covariate values.

        Returns
        -------
        (mean rows, concentrations)
            ``m`` with dims (chain, draw, group, origin, target) over transient origins, and
            ``κ`` with dims (chain, draw, group, origin) (infinite for the homogeneous
            chain).
        """
        posterior = self.idata["posterior"]
        mean = posterior["transition_mean"]
        # The homogeneous chain is the limit κ → ∞: every user's dice equal the mean rows.
        kappa = (
            posterior["concentration"]
            if self.heterogeneous
            else xr.full_like(mean.isel(target=0, drop=True), np.inf)
        )
        features = self.data.encoding.features
        if not features:
            if covariates:
                self.data.encoding.design_for(covariates)  # raises: the model has no covariates
            return mean, kappa
        layout = self.layout()
        x = xr.DataArray(self.data.encoding.design_for(covariates), coords={"feature": features})
        # Recover free η from the baseline mean rows, shift by the covariates, re-normalise.
        with np.errstate(divide="ignore"):  # disallowed targets: log 0, never used below
            log_mean = np.log(mean.transpose("chain", "draw", "group", "origin", "target").values)
        origin_position = {int(o): n for n, o in enumerate(layout.transient)}
        rows = np.array([origin_position[int(o)] for o in layout.free_origin])
        reference = layout.reference[layout.free_origin]
        eta = log_mean[..., rows, layout.free_target] - log_mean[..., rows, reference]
        shift = xr.dot(posterior["eta_coef"], x, dim="feature").transpose(
            "chain", "draw", "transition"
        )
        eta = eta + shift.values[:, :, None, :]
        log_m = layout.log_mean_rows(eta, eta.shape[:-1])
        mean = mean.copy(data=np.exp(log_m)).transpose(*mean.dims)
        if self.heterogeneous:
            kappa = kappa * np.exp(xr.dot(posterior["log_kappa_coef"], x, dim="feature"))
        return mean, kappa

    def transition_matrix(self, covariates: Mapping | None = None) -> xr.DataArray:
        """Posterior draws of the population mean transition matrix per group.

        Rows of absorbing states are the identity. Note that a population of heterogeneous
        users does not move like one user with this matrix (see :meth:`occupancy`).

        Returns
        -------
        xarray.DataArray
            Dims (chain, draw, group, origin, target) over all states.
        """
        mean, _ = self.factory(covariates)
        states = list(self.data.states)
        full = mean.reindex(origin=states, fill_value=0.0)
        identity = xr.DataArray(np.eye(len(states)), coords={"origin": states, "target": states})
        absorbing = xr.DataArray(
            [s in self.data.absorbing for s in states], coords={"origin": states}
        )
        return (
            xr.where(absorbing, identity, full)
            .rename("transition_matrix")
            .transpose("chain", "draw", "group", "origin", "target")
        )

    def user_transition_posterior(self, users: Sequence | None = None) -> xr.DataArray:
        r"""Each user's expected own transition matrix given their history.

        By conjugacy a user's row :math:`i` is
        :math:`\mathrm{Dirichlet}(a_i + n_{u,i\cdot})` given the factory, so its mean is
        :math:`(a_i + n_{u,i\cdot}) / (\kappa_i + N_{u,i})`, averaged here over the
        posterior draws of the factory. Users sharing a pattern are computed once.

        Parameters
        ----------
        users : sequence, optional
            User ids (default: all users).

        Returns
        -------
        xarray.DataArray
            Dims (user, origin, target) over all states (absorbing rows: identity).
        """
        data = self.data
        rows = np.arange(data.n_users) if users is None else data.users.index.get_indexer(users)
        counts = data.user_counts(None if users is None else users)
        cells = data.users["cell"].to_numpy()[rows]
        mean, kappa = self._cell_factories()
        a = kappa[..., None] * mean  # draws × cells × transient × target
        layout = self.layout()
        states = list(data.states)
        result = np.zeros((len(rows), len(states), len(states)))
        for n, origin in enumerate(layout.transient):
            if not self.heterogeneous:
                result[:, origin, :] = mean[:, cells, n, :].mean(axis=0)
                continue
            a_row = a[:, cells, n, :]  # draws × users × target
            n_row = counts[:, origin, :]
            posterior = (a_row + n_row) / (
                a_row.sum(-1, keepdims=True) + n_row.sum(-1, keepdims=True)
            )
            result[:, origin, :] = posterior.mean(axis=0)
        absorbing = data.states.get_indexer(list(data.absorbing))
        result[:, absorbing, absorbing] = 1.0
        return xr.DataArray(
            result,
            dims=("user", "origin", "target"),
            coords={"user": data.users.index[rows], "origin": states, "target": states},
            name="user_transition_posterior",
        )

    def log_predictive_density(
        self, extended: StateSequences, chunk: int | None = None
    ) -> pd.Series:
        r"""Log predictive density of each user's new transitions given their history.

        ``extended`` holds the same users observed for longer (the fitted history plus the
        held-out periods); the held-out transitions are the difference of the counts. Given
        a draw of the factories, a user's new counts :math:`n'` after history :math:`n`
        have the conjugate Dirichlet-multinomial probability

        .. math:: \prod_i \frac{\Gamma(\kappa_i + N_i)}{\Gamma(\kappa_i + N_i + N'_i)}
                  \prod_j \frac{\Gamma(a_{ij} + n_{ij} + n'_{ij})}{\Gamma(a_{ij} + n_{ij})}

        (:math:`\prod_j m_{ij}^{n'_{ij}}` for the homogeneous chain), and the density is
        its posterior mean: log-mean-exp over the draws.

        Parameters
        ----------
        chunk : int, optional
            Users per block; by default as many as keep each temporary array (draws × users
            × states²) near 64 MB.

        Returns
        -------
        pandas.Series
            One value per user of the fitted data (0 for users with no new transition).
        """
        users = self.data.users.index
        missing = users.difference(extended.users.index)
        if len(missing):
            raise DataValidationError(
                f"users {describe_values(missing)} of the fitted data are missing from the "
                "extended sequences; rule: extend every fitted user's history"
            )
        history = self.data.user_counts()
        new = extended.user_counts(users) - history
        if (new < 0).any():
            raise DataValidationError(
                "extended sequences have fewer transitions than the fitted history for users "
                f"{describe_values(users[(new < 0).any(axis=(1, 2))])}; rule: the extended "
                "data contain the fitted periods"
            )
        layout = self.layout()
        forbidden = ((new > 0) & ~layout.allowed[None]).any(axis=(1, 2))
        if forbidden.any():
            raise DataValidationError(
                f"held-out transitions of users {describe_values(users[forbidden])} are not "
                "in the fitted model's allowed mask; rule: held-out moves must be allowed "
                "(the model gives them probability 0)"
            )
        mean, kappa = self._cell_factories()
        cells = self.data.users["cell"].to_numpy()
        allowed = layout.allowed[layout.transient][None, None]
        result = np.zeros(len(users))
        if chunk is None:
            chunk = max(1, 2**26 // (8 * mean.shape[0] * mean.shape[2] * mean.shape[3]))
        for start in range(0, len(users), chunk):
            rows = slice(start, start + chunk)
            m = mean[:, cells[rows]]  # draws × users × transient × target
            n_old = history[rows][:, layout.transient][None]
            n_new = new[rows][:, layout.transient][None]
            if self.heterogeneous:
                k = kappa[:, cells[rows]]
                a = np.where(allowed, k[..., None] * m, 1.0) + n_old
                per_target = log_rising_factorial(a, n_new.astype(float))
                log_p = np.where(allowed, per_target, 0.0).sum(-1)
                log_p -= log_rising_factorial(k + n_old.sum(-1), n_new.sum(-1).astype(float))
            else:
                log_m = np.log(np.where(allowed, m, 1.0))
                log_p = np.where(allowed, n_new * log_m, 0.0).sum(-1)
            log_p = log_p.sum(-1)  # draws × users
            result[rows] = special.logsumexp(log_p, axis=0) - np.log(log_p.shape[0])
        return pd.Series(result, index=users, name="log_predictive_density")

    def _cell_factories(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean rows, concentrations) per posterior draw and cell, as NumPy arrays."""
        data = self.data
        cells = data.cells
        means, kappas = [], []
        for cell in range(len(cells)):
            covariates = {c: cells[c].iloc[cell] for c in data.encoding.columns}
            mean, kappa = self.factory(covariates)
            group = int(cells[GROUP_CODE].iloc[cell])
            means.append(_stack_draws(mean.isel(group=group)))
            kappas.append(_stack_draws(kappa.isel(group=group)))
        return np.stack(means, axis=1), np.stack(kappas, axis=1)

    def occupancy(
        self,
        horizon: int = 24,
        start: str | Mapping[str, float] | None = None,
        covariates: Mapping | None = None,
        heterogeneous: bool = True,
        users_per_draw: int = 200,
        max_draws: int | None = 500,
        random_seed: int | None = None,
    ) -> xr.DataArray:
        r"""State-probability paths of a new user, with posterior uncertainty.

        For each posterior draw, ``users_per_draw`` users draw their own dice from the
        factories and their state distribution is propagated exactly,
        :math:`p_{t+1} = p_t P_u`; the occupancy is the average over users (Monte Carlo
        over the dice only). With ``heterogeneous=False`` every user moves with the mean
        matrix instead, the "plug-in" shortcut that ignores that the same user keeps the
        same dice (it overstates mixing between states).

        Parameters
        ----------
        horizon : int
            Periods after the start.
        start : str or mapping, optional
            The starting state, or a distribution over states; default: the group's
            initial-state distribution :math:`\pi_g` (posterior draws).
        covariates : mapping, optional
            Covariate values (default: the baseline).
        max_draws : int, optional
            Use at most this many posterior draws (evenly thinned).

        Returns
        -------
        xarray.DataArray
            Dims (chain, draw, group, period, state), periods 0..``horizon``.
        """
        rng = np.random.default_rng(random_seed)
        matrix = self.transition_matrix(covariates)
        mean, kappa = self.factory(covariates)
        thin = draw_indices(matrix, max_draws)
        matrix, mean, kappa = (v.isel(draw=thin) for v in (matrix, mean, kappa))
        p0 = self._start_distribution(start, thin)
        layout = self.layout()
        states = list(self.data.states)
        chains, draws, groups = matrix.sizes["chain"], matrix.sizes["draw"], matrix.sizes["group"]
        k = len(states)
        out = np.zeros((chains, draws, groups, horizon + 1, k))
        for c in range(chains):
            for g in range(groups):
                base = matrix.isel(chain=c, group=g).transpose("draw", "origin", "target").values
                dist = p0.isel(chain=c, group=g).transpose("draw", "state").values
                if heterogeneous and self.heterogeneous:
                    dice = np.repeat(base[:, None], users_per_draw, axis=1)
                    a = (
                        kappa.isel(chain=c, group=g).transpose("draw", "origin").values[..., None]
                        * mean.isel(chain=c, group=g).transpose("draw", "origin", "target").values
                    )
                    draw_rows = rng.gamma(
                        np.broadcast_to(a[:, None], (draws, users_per_draw, *a.shape[1:]))
                    )
                    draw_rows /= draw_rows.sum(-1, keepdims=True)
                    dice[:, :, layout.transient, :] = draw_rows
                    p = np.repeat(dist[:, None], users_per_draw, axis=1)
                    out[c, :, g, 0] = dist
                    for t in range(1, horizon + 1):
                        p = np.einsum("dus,dust->dut", p, dice)
                        out[c, :, g, t] = p.mean(axis=1)
                else:
                    p = dist
                    out[c, :, g, 0] = p
                    for t in range(1, horizon + 1):
                        p = np.einsum("ds,dst->dt", p, base)
                        out[c, :, g, t] = p
        return xr.DataArray(
            out,
            dims=("chain", "draw", "group", "period", "state"),
            coords={
                "chain": matrix["chain"].values,
                "draw": matrix["draw"].values,
                "group": matrix["group"].values,
                "period": np.arange(horizon + 1),
                "state": states,
            },
            name="occupancy",
        )

    def _start_distribution(self, start, thin) -> xr.DataArray:
        states = list(self.data.states)
        initial = self.idata["posterior"]["initial"].isel(draw=thin)
        if start is None:
            return initial
        if isinstance(start, str):
            start = {start: 1.0}
        unknown = [s for s in start if s not in states]
        if unknown:
            raise ValueError(f"start state(s) {unknown} are not among the states {states}")
        vector = xr.DataArray([float(start.get(s, 0.0)) for s in states], coords={"state": states})
        if not np.isclose(float(vector.sum()), 1.0):
            raise ValueError(f"start probabilities sum to {float(vector.sum())}, not 1")
        return (initial * 0 + vector).transpose(*initial.dims)

    def simulate_paths(
        self,
        n_users: int = 1000,
        horizon: int = 24,
        start: str | None = None,
        group=None,
        covariates: Mapping | None = None,
        random_seed: int | None = None,
    ) -> pd.DataFrame:
        """Simulate new users' paths: a panel like the one the model was fitted on.

        Each simulated user takes a random posterior draw (parameter uncertainty), draws
        their own dice from that draw's factories (heterogeneity), a first state from the
        group's initial distribution unless ``start`` is given, then moves for ``horizon``
        periods (stopping at absorbing states).

        Returns
        -------
        pandas.DataFrame
            Columns ``user``, ``period``, ``state`` (categorical), ``group``.
        """
        rng = np.random.default_rng(random_seed)
        data = self.data
        states = data.states
        group = data.groups.labels[0] if group is None else group
        group_code = data.groups.codes(pd.Series([group]))[0]
        matrix = _stack_draws(self.transition_matrix(covariates).isel(group=group_code))
        mean, kappa = self.factory(covariates)
        a = _stack_draws(kappa.isel(group=group_code))[..., None] * _stack_draws(
            mean.isel(group=group_code)
        )
        initial = _stack_draws(self.idata["posterior"]["initial"].isel(group=group_code))
        layout = self.layout()
        which = rng.integers(matrix.shape[0], size=n_users)
        dice = matrix[which].copy()
        if self.heterogeneous:
            rows = rng.gamma(a[which])
            dice[:, layout.transient, :] = rows / rows.sum(-1, keepdims=True)
        if start is None:
            cumulative = initial[which].cumsum(-1)
            state = (rng.random((n_users, 1)) > cumulative).sum(-1)
        else:
            state = np.full(n_users, states.get_loc(start))
        state = np.minimum(state, len(states) - 1)
        path = np.empty((n_users, horizon + 1), dtype=np.int64)
        path[:, 0] = state
        for t in range(1, horizon + 1):
            cumulative = dice[np.arange(n_users), path[:, t - 1]].cumsum(-1)
            path[:, t] = np.minimum(
                (rng.random((n_users, 1)) > cumulative).sum(-1), len(states) - 1
            )
        absorbing = np.isin(path, states.get_indexer(list(data.absorbing)))
        # Keep each path up to and including its first absorbing state.
        after_absorbing = np.cumsum(np.cumsum(absorbing, axis=1), axis=1) > 1
        user, period = np.nonzero(~after_absorbing)
        return pd.DataFrame(
            {
                "user": user,
                "period": period,
                "state": pd.Categorical.from_codes(path[user, period], categories=states),
                "group": group,
            }
        )

    # -- value (see bayesltv.value.multistate) -------------------------------------------

    ltv = multistate_value.multistate_ltv
    new_user_ltv = multistate_value.new_user_multistate_ltv
    value_function = multistate_value.value_function
    value_of_move = multistate_value.value_of_move


def _stack_draws(values: xr.DataArray) -> np.ndarray:
    """(chain, draw, ...) → (chain·draw, ...) as a NumPy array."""
    stacked = values.stack(sample=("chain", "draw"))
    return np.moveaxis(stacked.values, -1, 0)
