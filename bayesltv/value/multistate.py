r"""Lifetime value under the Dirichlet multi-state model.

A user in state :math:`s` with transition counts :math:`n` so far has, for one posterior
draw of the factories, own dice with rows :math:`P_i \sim \mathrm{Dirichlet}(a_i + n_i)`
(conjugacy). Given the dice, the state distribution :math:`k` periods ahead is
:math:`e_s P^k`, and the expected discounted value is

.. math:: V(P) = \sum_{k=1}^{H} \delta^k \, e_s P^k r_k

(plus :math:`r_0(s)` with ``include_current``). Because the same user keeps the same dice,
:math:`E[P^k] \ne (E P)^k`: plugging the mean matrix in ignores that sticky users stay
sticky. The expectation over the own dice has no closed form, so for each posterior draw it
is a Monte Carlo average over ``dice_per_draw`` sampled dice (the path is integrated
exactly); one path per sampled die gives the predictive layer.

The expected layer's per-draw values carry Monte Carlo noise of variance
:math:`s^2_d / M` (:math:`s^2_d`: variance of :math:`V(P)` over the own dice, :math:`M`
dice per draw). Its sd and HDI are computed after removing that noise
(:func:`bayesltv.value.result.denoise`), for users and for totals (where a unit of
:math:`w` identical users contributes :math:`w^2 s^2_d / M`); with small :math:`M` the
correction itself is imprecise, so raise ``dice_per_draw`` when intervals matter.

Users sharing cell, current state and counts are valued once (a *unit*).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numba
import numpy as np
import pandas as pd

from bayesltv.data.groups import GROUP_CODE
from bayesltv.data.sequences import StateSequences
from bayesltv.value.result import (
    LTVResult,
    ValueAccumulator,
    denoise,
    draw_indices,
    hdi_bounds,
)
from bayesltv.value.rewards import (
    check_horizon,
    discount_factors,
    state_rewards,
)

#: Lanes (unit × draw × die) simulated at once; bounds memory to ~100 MB for 7 states.
LANES_PER_CHUNK = 100_000


class DiceFactories:
    """Posterior draws of the Dirichlet parameters :math:`a = \\kappa m` per cell of ``data``.

    ``a`` has shape (draws, cells, transient origins, states); disallowed targets hold 0.
    """

    def __init__(self, model, data: StateSequences, max_draws: int | None) -> None:
        layout = model.layout()
        self.transient = layout.transient
        self.allowed = layout.allowed[layout.transient]
        cells = data.cells
        fitted = model.data
        columns = list(data.encoding.columns)
        labels = data.groups.labels[cells[GROUP_CODE].to_numpy()]
        group_of_cell = fitted.groups.codes(pd.Series(labels))
        per_covariates = {}  # factories of all groups, once per covariate combination
        per_cell = []
        for cell in range(len(cells)):
            key = tuple(cells[c].iloc[cell] for c in columns)
            if key not in per_covariates:
                mean, kappa = model.factory(dict(zip(columns, key, strict=True)))
                keep = draw_indices(mean, max_draws)
                mean = mean.isel(draw=keep).stack(sample=("chain", "draw"))
                kappa = kappa.isel(draw=keep).stack(sample=("chain", "draw"))
                m = mean.transpose("sample", "group", "origin", "target").values
                k = kappa.transpose("sample", "group", "origin").values
                per_covariates[key] = m * k[..., None] if model.heterogeneous else m
                samples = mean.indexes["sample"]
            per_cell.append(per_covariates[key][:, group_of_cell[cell]])
        self.samples = samples
        self.a = np.stack(per_cell, axis=1)
        self.heterogeneous = model.heterogeneous

    def lane_matrices(
        self, cells: np.ndarray, counts: np.ndarray, dice_per_draw: int, rng
    ) -> tuple[np.ndarray, np.ndarray]:
        """Own transition matrices of units (cells and count matrices) for every posterior
        draw and die: each lane's unit position and the matrices (lanes, K, K), unit-major,
        then draw, then die."""
        n_samples = len(self.samples)
        unit = np.repeat(np.arange(len(cells)), n_samples * dice_per_draw)
        sample = np.tile(np.repeat(np.arange(n_samples), dice_per_draw), len(cells))
        rows = self.dice(cells[unit], sample, counts[unit][:, self.transient], rng)
        return unit, full_matrices(rows, self.transient, counts.shape[-1])

    def dice(self, cell: np.ndarray, sample: np.ndarray, counts, rng) -> np.ndarray:
        """One own-dice draw per lane: rows over transient origins (lanes, T, states)."""
        a = self.a[sample, cell]
        if not self.heterogeneous:
            return a  # the homogeneous chain: every user moves with the mean rows
        # Dirichlet rows as normalised gammas, drawn for the allowed targets only
        gamma = np.zeros(a.shape)
        gamma[:, self.allowed] = rng.gamma((a + counts)[:, self.allowed])
        return gamma / gamma.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class UserUnits:
    """Users in transient states grouped by (cell, current state, transition counts).

    Attributes
    ----------
    cell, state : numpy.ndarray
        Each unit's cell and current state code.
    counts : numpy.ndarray
        Each unit's transition counts (units × states × states).
    users : numpy.ndarray
        Users per unit.
    of_user : numpy.ndarray
        Each user's unit, −1 for users in absorbing states.
    """

    cell: np.ndarray
    state: np.ndarray
    counts: np.ndarray
    users: np.ndarray
    of_user: np.ndarray

    @classmethod
    def from_sequences(cls, data: StateSequences) -> UserUnits:
        states = data.states
        users = data.users
        state = states.get_indexer(users["last_state"])
        cell = users["cell"].to_numpy()
        active = ~np.isin(state, states.get_indexer(list(data.absorbing)))
        keys = np.column_stack([cell, state, data.user_patterns])[active]
        unique_keys, representative, unit_of_active = np.unique(
            keys, axis=0, return_index=True, return_inverse=True
        )
        unit_of_active = unit_of_active.ravel()
        of_user = np.full(len(users), -1)
        of_user[active] = unit_of_active
        counts = data.user_counts(users.index[np.flatnonzero(active)[representative]])
        return cls(
            unique_keys[:, 0],
            unique_keys[:, 1],
            counts,
            np.bincount(unit_of_active, minlength=len(unique_keys)),
            of_user,
        )


def full_matrices(rows: np.ndarray, transient: np.ndarray, n_states: int) -> np.ndarray:
    """Transition matrices (lanes, K, K) from transient rows; absorbing rows are identity."""
    matrices = np.zeros((len(rows), n_states, n_states))
    matrices[:, np.arange(n_states), np.arange(n_states)] = 1.0
    matrices[:, transient, :] = rows
    return matrices


def lane_values(matrices: np.ndarray, start: np.ndarray, weights: np.ndarray, rng):
    r"""Expected value over paths and one sampled path's value, per lane.

    ``matrices`` (lanes, K, K) are the lanes' own transition matrices, ``weights[k, s]`` is
    :math:`\delta^k r_k(s)` (:math:`k = 0..H`). The expectation propagates the state
    distribution :math:`p_{k} = p_{k-1} P`; the path draws each next state by inverse CDF.
    """
    uniform = rng.random((len(start), len(weights)))
    return _lane_values(
        np.ascontiguousarray(matrices),
        start.astype(np.int64),
        np.ascontiguousarray(weights),
        uniform,
    )


@numba.njit(cache=True, parallel=True)
def _lane_values(matrices, start, weights, uniform):  # pragma: no cover - compiled
    lanes, k = start.shape[0], matrices.shape[1]
    horizon = weights.shape[0] - 1
    expected = np.empty(lanes)
    realised = np.empty(lanes)
    for lane in numba.prange(lanes):
        occupancy = np.zeros(k)
        following = np.empty(k)
        s = start[lane]
        occupancy[s] = 1.0
        value = weights[0, s]
        path_value = weights[0, s]
        for step in range(1, horizon + 1):
            following[:] = 0.0
            for i in range(k):
                p = occupancy[i]
                if p != 0.0:
                    for j in range(k):
                        following[j] += p * matrices[lane, i, j]
            for j in range(k):
                occupancy[j] = following[j]
                value += following[j] * weights[step, j]
            u = uniform[lane, step]
            cumulative = 0.0
            nxt = k - 1
            for j in range(k):
                cumulative += matrices[lane, s, j]
                if u < cumulative:
                    nxt = j
                    break
            s = nxt
            path_value += weights[step, s]
        expected[lane] = value
        realised[lane] = path_value
    return expected, realised


def discounted_state_rewards(rewards, states, discount_rate, horizon, include_current):
    horizon = check_horizon(horizon)
    weights = state_rewards(rewards, list(states), horizon)
    weights = weights * discount_factors(discount_rate, horizon)[:, None]
    if not include_current:
        weights[0] = 0.0
    return weights


def score_lanes(
    factories: DiceFactories,
    cells: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
    weights: np.ndarray,
    dice_per_draw: int,
    rng,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per unit and draw: mean over dice of the expected value, its variance over the dice,
    and the sampled paths' values (units, draws, dice)."""
    shape = (len(cells), len(factories.samples), dice_per_draw)
    unit, matrices = factories.lane_matrices(cells, counts, dice_per_draw, rng)
    expected, realised = lane_values(matrices, starts[unit], weights, rng)
    expected = expected.reshape(shape)
    spread = expected.var(axis=-1, ddof=1) if dice_per_draw > 1 else np.zeros(shape[:2])
    return expected.mean(axis=-1), spread, realised.reshape(shape)


def accumulate(
    accumulator: ValueAccumulator,
    units: np.ndarray,
    strata: np.ndarray,
    users: np.ndarray,
    mean: np.ndarray,
    dice_spread: np.ndarray,
    realised: np.ndarray,
    dice_per_draw: int,
) -> None:
    """Add scored units: within-draw variance from the sampled paths, and the Monte Carlo
    noise of the per-draw dice averages (variance over dice / dice per draw) to remove."""
    pooled = realised.reshape(len(units), -1)
    if dice_per_draw > 1:
        within = realised.var(axis=-1, ddof=1)
        noise = dice_spread.mean(axis=-1) / dice_per_draw
    else:  # one die per draw: spread the pooled within-draw variance evenly, no correction
        within = np.repeat(
            np.maximum(pooled.var(axis=-1) - mean.var(axis=-1), 0.0)[:, None], mean.shape[1], 1
        )
        noise = 0.0
    accumulator.add(
        units, strata, users, mean, within, hdi_bounds(pooled, accumulator.hdi_prob), noise
    )


def multistate_ltv(
    model,
    data: StateSequences,
    rewards: Mapping | pd.DataFrame,
    discount_rate: float = 0.0,
    horizon: int = 60,
    include_current: bool = False,
    hdi_prob: float = 0.94,
    keep_draws: bool = False,
    max_draws: int | None = None,
    dice_per_draw: int = 4,
    random_seed: int | None = None,
) -> LTVResult:
    r"""Residual lifetime value of each user of ``data`` from their current state.

    :meth:`DirichletMarkov.ltv <bayesltv.DirichletMarkov.ltv>`. Per posterior draw, a user's
    own dice are drawn from :math:`\mathrm{Dirichlet}(a_i + n_{u,i\cdot})` given their
    counts, the path is integrated exactly (:math:`\sum_k \delta^k e_s P^k r_k`), and the
    expected layer averages ``dice_per_draw`` dice; one sampled path per die gives the
    predictive layer (see the module docstring). Users in absorbing states are worth 0.

    Parameters
    ----------
    data : StateSequences
        Users to value (usually the fitted sequences; same states and mask).
    rewards : mapping or pandas.DataFrame
        ``{state: reward per period or schedule by periods ahead}``; states left out earn 0.
    discount_rate, horizon, include_current, hdi_prob, keep_draws, max_draws
        As for :func:`bayesltv.value.survival.survival_ltv` (finite horizons only).
    dice_per_draw : int
        Own-dice samples per posterior draw and unit; the cost is units × draws × dice
        lanes of a few microseconds each.
    random_seed : int, optional
        Seed of the Monte Carlo.
    """
    data = model.prepare(data)
    rng = np.random.default_rng(random_seed)
    states = data.states
    weights = discounted_state_rewards(rewards, states, discount_rate, horizon, include_current)
    factories = DiceFactories(model, data, max_draws)
    grouped = UserUnits.from_sequences(data)
    users = data.users
    n_units = len(grouped.cell)
    unit_cell, unit_state, unit_users = grouped.cell, grouped.state, grouped.users
    unit_counts = grouped.counts
    stratum = unit_cell * len(states) + unit_state
    accumulator = ValueAccumulator(
        n_units, len(data.cells) * len(states), len(factories.samples), hdi_prob, keep_draws
    )
    per_chunk = max(1, LANES_PER_CHUNK // (len(factories.samples) * dice_per_draw))
    for start in range(0, n_units, per_chunk):
        chunk = np.arange(start, min(start + per_chunk, n_units))
        mean, spread, realised = score_lanes(
            factories,
            unit_cell[chunk],
            unit_state[chunk],
            unit_counts[chunk],
            weights,
            dice_per_draw,
            rng,
        )
        accumulate(
            accumulator,
            chunk,
            stratum[chunk],
            unit_users[chunk],
            mean,
            spread,
            realised,
            dice_per_draw,
        )
    strata = _strata(data)
    strata["users"] = np.bincount(stratum, weights=unit_users, minlength=len(strata)).astype(
        np.int64
    )
    units = pd.DataFrame(
        {"stratum": stratum, "state": states[unit_state], "users": unit_users},
        index=pd.RangeIndex(n_units, name="unit"),
    )
    user_table = pd.DataFrame(
        {
            "group": data.groups.labels[data.cells[GROUP_CODE].to_numpy()[users["cell"]]],
            "state": users["last_state"].to_numpy(),
            "unit": grouped.of_user,
        },
        index=users.index,
    )
    settings = _settings(model, data, discount_rate, horizon, include_current, dice_per_draw)
    return LTVResult.from_accumulator(
        accumulator, strata, units, user_table, factories.samples, settings
    )


def state_values(
    model,
    rewards,
    discount_rate: float,
    horizon: int,
    include_current: bool,
    covariates: Mapping | None,
    max_draws: int | None,
    dice_per_draw: int,
    random_seed,
):
    """Per group, draw and die: the value of a new user starting in each state.

    Returns the expected values and one sampled path's value, both (groups, draws, dice,
    states), with common random numbers across starting states, and the factories.
    """
    data = model.data
    rng = np.random.default_rng(random_seed)
    states = data.states
    weights = discounted_state_rewards(rewards, states, discount_rate, horizon, include_current)
    data.encoding.design_for(covariates)  # unknown covariates or levels are an error
    cells = pd.DataFrame(
        {GROUP_CODE: np.arange(data.groups.size)},
        index=pd.RangeIndex(data.groups.size, name="cell"),
    )
    for column, level in {**data.encoding.reference(), **(covariates or {})}.items():
        cells[column] = level
    factories = DiceFactories(model, _with_cells(data, cells), max_draws)
    n_samples, k = len(factories.samples), len(states)
    shape = (data.groups.size, n_samples, dice_per_draw, k)
    expected, realised = np.empty(shape), np.empty(shape)
    start = np.tile(np.arange(k), n_samples * dice_per_draw)
    no_history = np.zeros((1, k, k))
    for group in range(data.groups.size):  # one group's lanes at a time bounds memory
        _, matrices = factories.lane_matrices(np.array([group]), no_history, dice_per_draw, rng)
        values, paths = lane_values(np.repeat(matrices, k, axis=0), start, weights, rng)
        expected[group] = values.reshape(shape[1:])
        realised[group] = paths.reshape(shape[1:])
    return expected, realised, factories


def _with_cells(data: StateSequences, cells: pd.DataFrame) -> StateSequences:
    return replace(data, cells=cells)


def _strata(data: StateSequences) -> pd.DataFrame:
    """(cell, state) strata: ``group``, covariates and ``state``."""
    k = data.n_states
    cells = data.cells.loc[np.repeat(data.cells.index, k)].reset_index(drop=True)
    strata = pd.DataFrame({"group": data.groups.labels[cells[GROUP_CODE].to_numpy()]})
    for column in data.encoding.columns:
        strata[column] = cells[column].to_numpy()
    strata["state"] = np.tile(np.asarray(data.states), len(data.cells))
    return strata


def _settings(model, data, discount_rate, horizon, include_current, dice_per_draw) -> dict:
    return {
        "discount_rate": discount_rate,
        "horizon": horizon,
        "include_current": include_current,
        "dice_per_draw": dice_per_draw if model.heterogeneous else None,
        "group_column": data.groups.column,
    }


def value_function(
    model,
    rewards: Mapping | pd.DataFrame,
    discount_rate: float = 0.0,
    horizon: int = 60,
    include_current: bool = False,
    covariates: Mapping | None = None,
    hdi_prob: float = 0.94,
    max_draws: int | None = 250,
    dice_per_draw: int = 128,
    random_seed: int | None = None,
) -> LTVResult:
    r"""The value function :math:`V(s)` per group: a new user (no history) starting in
    state :math:`s` with own dice from the factory (baseline or given ``covariates``).

    :meth:`DirichletMarkov.value_function <bayesltv.DirichletMarkov.value_function>`;
    arguments as for :func:`multistate_ltv`. Read it with ``summary(by="state")`` or
    ``summary(by=["group", "state"])``. There are few units here (groups × states), so the
    defaults spend more Monte Carlo per draw (``dice_per_draw=128`` on ``max_draws=250``
    draws): a value's spread over posterior draws is small next to the spread over users'
    own dice, and must not drown in the latter's noise.
    """
    expected, realised, factories = state_values(
        model,
        rewards,
        discount_rate,
        horizon,
        include_current,
        covariates,
        max_draws,
        dice_per_draw,
        random_seed,
    )
    groups, states = model.data.groups.labels, model.data.states
    n_groups, n_samples, _, k = expected.shape
    # one unit per (group, state), group-major
    expected = np.moveaxis(expected, -1, 1).reshape(n_groups * k, n_samples, dice_per_draw)
    realised = np.moveaxis(realised, -1, 1).reshape(n_groups * k, n_samples, dice_per_draw)
    units = np.arange(n_groups * k)
    accumulator = ValueAccumulator(len(units), len(units), n_samples, hdi_prob, False)
    spread = expected.var(axis=-1, ddof=1) if dice_per_draw > 1 else np.zeros(expected.shape[:2])
    ones = np.ones(len(units), np.int64)
    accumulate(accumulator, units, units, ones, expected.mean(-1), spread, realised, dice_per_draw)
    strata = pd.DataFrame(
        {"group": np.repeat(groups, k), "state": np.tile(np.asarray(states), n_groups)}
    )
    for column, level in (covariates or {}).items():
        strata[column] = level
    strata["users"] = 1
    table = pd.DataFrame({"stratum": units, "state": strata["state"], "users": ones})
    settings = _settings(model, model.data, discount_rate, horizon, include_current, dice_per_draw)
    return LTVResult.from_accumulator(accumulator, strata, table, None, factories.samples, settings)


def new_user_multistate_ltv(
    model,
    rewards: Mapping | pd.DataFrame,
    discount_rate: float = 0.0,
    horizon: int = 60,
    covariates: Mapping | None = None,
    users: Mapping | None = None,
    hdi_prob: float = 0.94,
    max_draws: int | None = 250,
    dice_per_draw: int = 128,
    random_seed: int | None = None,
) -> LTVResult:
    r"""Value of a user acquired now per group: first state from the group's initial
    distribution :math:`\pi_g`, first period's reward included.

    :meth:`DirichletMarkov.new_user_ltv <bayesltv.DirichletMarkov.new_user_ltv>`. ``users``
    (``{group: count}``, default one per group) values a planned acquisition. Read it with
    ``summary(by="group")``.
    """
    expected, realised, factories = state_values(
        model,
        rewards,
        discount_rate,
        horizon,
        True,
        covariates,
        max_draws,
        dice_per_draw,
        random_seed,
    )
    data = model.data
    groups = data.groups.labels
    n_groups, n_samples = expected.shape[:2]
    initial = model.idata["posterior"]["initial"].stack(sample=("chain", "draw"))
    initial = initial.sel(sample=factories.samples).transpose("group", "sample", "state").values
    start_value = np.einsum("gdms,gds->gdm", expected, initial)
    rng = np.random.default_rng(None if random_seed is None else random_seed + 1)
    cumulative = np.cumsum(initial, axis=-1)[:, :, None, :]
    uniform = rng.random((*expected.shape[:3], 1))
    start = np.minimum((uniform > cumulative).sum(-1), len(data.states) - 1)
    sampled = np.take_along_axis(realised, start[..., None], axis=-1)[..., 0]
    counts = np.ones(n_groups, np.int64)
    if users is not None:
        data.groups.codes(pd.Series(list(users)))  # unknown groups are an error
        counts = np.array([int(users.get(g, 0)) for g in groups], np.int64)
    units = np.arange(n_groups)
    accumulator = ValueAccumulator(n_groups, n_groups, n_samples, hdi_prob, False)
    spread = (
        start_value.var(axis=-1, ddof=1) if dice_per_draw > 1 else np.zeros((n_groups, n_samples))
    )
    accumulate(
        accumulator, units, units, counts, start_value.mean(-1), spread, sampled, dice_per_draw
    )
    strata = pd.DataFrame({"group": groups, "users": counts})
    for column, level in (covariates or {}).items():
        strata[column] = level
    table = pd.DataFrame({"stratum": units, "users": counts})
    settings = _settings(model, data, discount_rate, horizon, True, dice_per_draw)
    return LTVResult.from_accumulator(accumulator, strata, table, None, factories.samples, settings)


def value_of_move(
    model,
    origin: str,
    target: str,
    rewards: Mapping | pd.DataFrame,
    discount_rate: float = 0.0,
    horizon: int = 60,
    include_current: bool = True,
    covariates: Mapping | None = None,
    hdi_prob: float = 0.94,
    max_draws: int | None = 250,
    dice_per_draw: int = 128,
    random_seed: int | None = None,
) -> pd.DataFrame:
    r"""Value of moving a new user from ``origin`` to ``target`` now, per group.

    :meth:`DirichletMarkov.value_of_move <bayesltv.DirichletMarkov.value_of_move>`:
    :math:`V(\text{target}) - V(\text{origin})` per posterior draw (the same own dice for
    both), with mean, sd, HDI and the probability that the move pays. ``include_current``
    counts this period's reward in both (the move takes effect now). This is the "clicky vs
    sticky" number: a state that pays more now can be worth less if users leave it faster.
    Warns when the own-dice Monte Carlo noise dominates the spread over posterior draws.
    """
    states = list(model.data.states)
    for name, state in (("origin", origin), ("target", target)):
        if state not in states:
            raise ValueError(f"{name} state {state!r} is not among the states {states}")
    expected, _, _ = state_values(
        model,
        rewards,
        discount_rate,
        horizon,
        include_current,
        covariates,
        max_draws,
        dice_per_draw,
        random_seed,
    )
    difference = expected[..., states.index(target)] - expected[..., states.index(origin)]
    noise = (difference.var(axis=-1, ddof=1).mean(-1) / dice_per_draw) if dice_per_draw > 1 else 0
    per_draw = denoise(difference.mean(axis=-1), noise)  # groups × draws
    share = np.asarray(noise) / np.maximum(difference.mean(axis=-1).var(axis=-1), 1e-300)
    if per_draw.shape[-1] > 1 and np.any(share > 0.5):
        warnings.warn(
            f"Monte Carlo noise is {float(np.max(share)):.0%} of the spread of the move's "
            "value over posterior draws; its sd and HDI are corrected for it but imprecise: "
            "raise dice_per_draw",
            stacklevel=3,
        )
    sd = per_draw.std(axis=-1)
    bounds = hdi_bounds(per_draw, hdi_prob)
    return pd.DataFrame(
        {
            "origin": origin,
            "target": target,
            "mean": per_draw.mean(axis=-1),
            "sd": sd,
            "hdi_low": bounds[:, 0],
            "hdi_high": bounds[:, 1],
            "prob_positive": (per_draw > 0).mean(axis=-1),
        },
        index=pd.Index(model.data.groups.labels, name="group"),
    )
