r"""Checking fitted models against data: predictive checks, hold-out forecasts, LOO.

- :func:`retention_ppc` (sBG): posterior predictive Kaplan–Meier retention or survival per
  group, replaying the data's own entries and censoring, against the observed curve.
- :func:`occupancy_ppc` (multi-state): the share of users in each state by periods since
  their first observation, for replicated users starting where the observed ones started.
- :func:`holdout_split` and :func:`holdout_check`: fit up to calendar period ``P``,
  forecast after it; mean absolute error, log predictive density and interval coverage.
- :func:`pointwise_log_likelihood` and :func:`loo`: PSIS-LOO through ArviZ. With aggregated
  data a *point* is one row of sufficient statistics, not one user: for the sBG one
  (cell, period) row of churn/censoring/entry counts, for the multi-state model one
  (cell, origin state, transition counts) pattern with all users sharing it, plus one
  point per group for the first states. Leaving a point out leaves out all those users at
  once, so LOO compares models' fit to such blocks.

Bands are highest-density intervals (ArviZ) of the posterior predictive draws; the column
names are ``hdi_50_low``, ``hdi_50_high``, ``hdi_94_low``, ... for ``hdi_probs=(0.5, 0.94)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from scipy import special

from bayesltv.data.groups import GROUP_CODE, Groups
from bayesltv.data.sequences import StateSequences, _period_numbers
from bayesltv.data.survival import COUNT_COLUMNS, SurvivalData
from bayesltv.distributions import sbg_logsf_numpy
from bayesltv.value.multistate import DiceFactories, UserUnits
from bayesltv.value.result import hdi_bounds
from bayesltv.value.survival import SurvivalFactories

HDI_PROBS = (0.5, 0.94)


def replicate_shares(share: np.ndarray, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shares observed among ``users`` independent users when each is in the state with
    probability ``share`` (binomial; ``users`` broadcasts against ``share``)."""
    users = np.broadcast_to(users, share.shape).astype(np.int64)
    p = np.clip(np.nan_to_num(share), 0.0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return rng.binomial(users, p) / users


def band_columns(draws: np.ndarray, hdi_probs: Sequence[float]) -> dict[str, np.ndarray]:
    """Mean and HDI bounds of draws along the last axis, as named columns."""
    columns = {"mean": draws.mean(axis=-1)}
    for prob in hdi_probs:
        bounds = hdi_bounds(draws, prob)
        columns[f"hdi_{round(prob * 100)}_low"] = bounds[..., 0]
        columns[f"hdi_{round(prob * 100)}_high"] = bounds[..., 1]
    return columns


# -- survival ----------------------------------------------------------------------------


def _dense_counts(data: SurvivalData) -> dict[str, np.ndarray]:
    """Churned, censored and entered users per cell (rows) and period 0..T (columns)."""
    width = data.max_period + 1
    dense = {}
    cell, period = data.counts["cell"].to_numpy(), data.counts["period"].to_numpy()
    for column in COUNT_COLUMNS:
        table = np.zeros((data.n_cells, width), np.int64)
        table[cell, period] = data.counts[column].to_numpy()
        dense[column] = table
    return dense


def simulate_life_tables(
    alpha: np.ndarray,
    beta: np.ndarray,
    counts: dict[str, np.ndarray],
    observed_until: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Users at risk and churned per draw, cell and period, replaying entries and censoring.

    A user at risk at period :math:`t` has survived :math:`t-1` periods, so whatever their
    entry their churn probability is the sBG hazard :math:`\alpha/(\alpha+\beta+t-1)`,
    independently of the other users: churns are binomial given those at risk. Periods up
    to ``observed_until`` (per cell) keep the observed churns; censoring and entries are
    replayed as observed (censoring capped by the users left).

    ``alpha``, ``beta``: (draws, cells). Returns two arrays (draws, cells, periods).
    """
    draws, cells = alpha.shape
    width = counts["churned"].shape[1]
    at_risk = np.zeros((draws, cells, width))
    churned = np.zeros((draws, cells, width))
    alive = np.broadcast_to(counts["entered"][:, 0], (draws, cells)).astype(np.int64)
    for t in range(1, width):
        at_risk[:, :, t] = alive
        hazard = alpha / (alpha + beta + t - 1)
        simulated = rng.binomial(alive, hazard)
        churn = np.where(t <= observed_until, counts["churned"][:, t], simulated)
        churn = np.minimum(churn, alive)
        churned[:, :, t] = churn
        left = alive - churn
        alive = left - np.minimum(counts["censored"][:, t], left) + counts["entered"][:, t]
    return at_risk, churned


def _curves(at_risk, churned, cell_group, n_groups, curve):
    """Kaplan–Meier retention or survival per group from cell life tables (..., cells, T)."""
    shape = (*at_risk.shape[:-2], n_groups, at_risk.shape[-1])
    risk = np.zeros(shape)
    churn = np.zeros(shape)
    for group in range(n_groups):
        cells = cell_group == group
        risk[..., group, :] = at_risk[..., cells, :].sum(axis=-2)
        churn[..., group, :] = churned[..., cells, :].sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        retention = 1.0 - churn / risk
    retention = retention[..., 1:]
    if curve == "retention":
        return retention
    if curve == "survival":
        # periods before a group's first user at risk (late entry) count as retention 1:
        # the curve is then survival since the first observed period
        return np.nancumprod(retention, axis=-1)
    raise ValueError(f"curve is {curve!r}; rule: 'retention' or 'survival'")


def _survival_table(model, data, curve, hdi_probs, max_draws, random_seed, observed_until):
    """Observed and replicated Kaplan–Meier curves per group (churns simulated after
    ``observed_until``, per cell)."""
    rng = np.random.default_rng(random_seed)
    factories = SurvivalFactories(model, data, max_draws)
    alpha, beta = factories(np.arange(data.n_cells))  # cells × draws
    counts = _dense_counts(data)
    at_risk, churned = simulate_life_tables(alpha.T, beta.T, counts, observed_until, rng)
    # the observed life table: the same replay with every churn as observed
    observed_risk, observed_churned = simulate_life_tables(
        alpha.T[:1], beta.T[:1], counts, np.full(data.n_cells, data.max_period), rng
    )
    cell_group = data.cells[GROUP_CODE].to_numpy()
    n_groups = data.groups.size
    predicted = _curves(at_risk, churned, cell_group, n_groups, curve)  # draws × groups × T
    observed = _curves(observed_risk[0], observed_churned[0], cell_group, n_groups, curve)
    periods = np.arange(1, observed.shape[-1] + 1)
    columns = band_columns(np.moveaxis(predicted, 0, -1), hdi_probs)
    table = pd.DataFrame(
        {"observed": observed.ravel(), **{k: v.ravel() for k, v in columns.items()}},
        index=pd.MultiIndex.from_product([data.groups.labels, periods], names=["group", "period"]),
    )
    table.attrs.update(curve=curve, hdi_probs=tuple(hdi_probs))
    at_risk_groups = _curves(
        observed_risk[0], observed_churned[0], cell_group, n_groups, "retention"
    )
    return table[np.isfinite(at_risk_groups).ravel()]


def retention_ppc(
    model,
    curve: str = "retention",
    hdi_probs: Sequence[float] = HDI_PROBS,
    max_draws: int | None = 500,
    random_seed: int | None = None,
) -> pd.DataFrame:
    """Posterior predictive retention (or survival) curves per group against the observed.

    For each posterior draw the fitted data are replayed: the same users enter and are
    censored when they were, churns are simulated (see :func:`simulate_life_tables`), and
    the Kaplan–Meier curve of the replica is computed exactly as the observed one.

    Returns
    -------
    pandas.DataFrame
        Index (group, period); columns ``observed``, ``mean`` and HDI bounds per
        ``hdi_probs``. Periods where a group has no user at risk are left out.
    """
    data = model.data
    observed_until = np.zeros(data.n_cells)
    return _survival_table(model, data, curve, hdi_probs, max_draws, random_seed, observed_until)


# -- multi-state -------------------------------------------------------------------------


def _tenure_occupancy(data: StateSequences) -> tuple[np.ndarray, np.ndarray]:
    """Observed users per (group, tenure, state) and users at risk per (cell, first state,
    tenure): absorbed users stay in their absorbing state until the data's last period."""
    history = data.history
    users = data.users
    end = int(history["period"].max())
    first = users["first_period"].to_numpy()
    last = users["last_period"].to_numpy()
    window = end - first
    width = int(window.max()) + 1
    group = data.cells[GROUP_CODE].to_numpy()[users["cell"].to_numpy()]
    k = data.n_states
    counts = np.zeros((data.groups.size, width, k))
    user = history["user"].to_numpy()
    tenure = history["period"].to_numpy() - first[user]
    np.add.at(counts, (group[user], tenure, history["state"].to_numpy()), 1)
    last_state = data.states.get_indexer(users["last_state"])
    absorbed = np.isin(last_state, data.states.get_indexer(list(data.absorbing)))
    tail = np.zeros((data.groups.size, width + 1, k))
    start = last - first + 1
    np.add.at(tail, (group[absorbed], start[absorbed], last_state[absorbed]), 1)
    np.add.at(tail, (group[absorbed], window[absorbed] + 1, last_state[absorbed]), -1)
    counts += np.cumsum(tail, axis=1)[:, :width]
    first_state = data.states.get_indexer(users["first_state"])
    return counts, (group, first_state, window, width)


def occupancy_ppc(
    model,
    hdi_probs: Sequence[float] = HDI_PROBS,
    max_draws: int | None = 200,
    users_per_draw: int = 200,
    random_seed: int | None = None,
) -> pd.DataFrame:
    """Share of users in each state by periods since their first observation, against the
    posterior predictive share of replicated users.

    Replicated users start in the observed users' first states, draw their own dice from
    their cohort's factory (:meth:`DirichletMarkov.occupancy`) and are weighted like the
    observed users still under observation at each tenure (absorbed users stay absorbed).
    The bands add the binomial noise of a share among that many users; ``mean`` is the
    expected share.

    Returns
    -------
    pandas.DataFrame
        Index (group, tenure, state); columns ``users`` (under observation), ``observed``
        (share), ``mean`` and HDI bounds of the predicted share.
    """
    data = model.data
    if data.encoding.columns:
        raise ValueError(
            "occupancy_ppc replicates users per cohort at baseline covariates; rule: use a "
            "model without covariates (covariate cells are not replayed yet)"
        )
    counts, (group, first_state, window, width) = _tenure_occupancy(data)
    k = data.n_states
    at_risk = np.zeros((data.groups.size, k, width))  # users by group, first state, tenure
    for g, s, w in zip(group, first_state, window, strict=True):
        at_risk[g, s, : w + 1] += 1
    predicted = None
    for s in np.flatnonzero(at_risk.sum(axis=(0, 2))):
        path = model.occupancy(
            horizon=width - 1,
            start=str(data.states[s]),
            users_per_draw=users_per_draw,
            max_draws=max_draws,
            random_seed=None if random_seed is None else random_seed + int(s),
        )
        values = path.stack(sample=("chain", "draw")).transpose(
            "group", "period", "state", "sample"
        )
        weighted = values.values * at_risk[:, s, :, None, None]
        predicted = weighted if predicted is None else predicted + weighted
    total = counts.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        predicted = predicted / at_risk.sum(axis=1)[:, :, None, None]
        observed = counts / total[..., None]
    rng = np.random.default_rng(random_seed)
    replicated = replicate_shares(predicted, total[:, :, None, None], rng)
    columns = band_columns(replicated, hdi_probs)
    columns["mean"] = predicted.mean(axis=-1)
    index = pd.MultiIndex.from_product(
        [data.groups.labels, np.arange(width), data.states], names=["group", "tenure", "state"]
    )
    table = pd.DataFrame(
        {
            "users": np.repeat(total.ravel(), k).astype(np.int64),
            "observed": observed.ravel(),
            **{name: value.ravel() for name, value in columns.items()},
        },
        index=index,
    )
    return table[table["users"] > 0]


def forecast_occupancy(
    model,
    data: StateSequences,
    steps: int,
    max_draws: int | None = 200,
    dice_per_draw: int = 4,
    random_seed: int | None = None,
) -> tuple[UserUnits, np.ndarray]:
    """Each unit's state distribution ``1..steps`` periods after its last observation.

    Own dice from :math:`\\mathrm{Dirichlet}(a + n)` per posterior draw, averaged over
    ``dice_per_draw`` dice. Returns the units and an array (units, draws, steps, states).
    """
    rng = np.random.default_rng(random_seed)
    units = UserUnits.from_sequences(data)
    factories = DiceFactories(model, data, max_draws)
    n_samples, k = len(factories.samples), data.n_states
    result = np.zeros((len(units.cell), n_samples, steps, k))
    per_chunk = max(1, 50_000 // (n_samples * dice_per_draw))
    for start in range(0, len(units.cell), per_chunk):
        chunk = np.arange(start, min(start + per_chunk, len(units.cell)))
        lane_unit, matrices = factories.lane_matrices(
            units.cell[chunk], units.counts[chunk], dice_per_draw, rng
        )
        lanes = len(lane_unit)
        occupancy = np.zeros((lanes, k))
        occupancy[np.arange(lanes), units.state[chunk][lane_unit]] = 1.0
        path = np.empty((lanes, steps, k))
        for step in range(steps):
            occupancy = np.einsum("ls,lst->lt", occupancy, matrices)
            path[:, step] = occupancy
        shape = (len(chunk), n_samples, dice_per_draw, steps, k)
        result[chunk] = path.reshape(shape).mean(axis=2)
    return units, result


# -- hold-out ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldoutSplit:
    """Data up to a calendar period (``train``) and the same users' full data (``test``).

    Attributes
    ----------
    train, test
        :class:`SurvivalData` or :class:`StateSequences` of the same users.
    at_period : int
        Last period in ``train`` (a period number: periods since the first cohort's
        acquisition for survival data, the panel's period numbers for sequences).
    excluded_users : int
        Users first seen after ``at_period`` (in neither part).
    """

    train: SurvivalData | StateSequences
    test: SurvivalData | StateSequences
    at_period: int
    excluded_users: int


def acquisition_offsets(groups: Groups) -> np.ndarray:
    """Periods from the first group's acquisition to each group's (0 for unordered groups)."""
    if not groups.ordered:
        return np.zeros(groups.size)
    return np.cumsum(groups.gaps)


def holdout_split(data: SurvivalData | StateSequences, at_period) -> HoldoutSplit:
    """Split data by calendar time: observations up to ``at_period`` to fit, the rest to test.

    Survival data: cohort ``c`` acquired ``o_c`` periods after the first cohort (from the
    ordered cohort labels; segments of survivor tables all start together) is seen up to
    age ``at_period − o_c``: users still active then are censored there. Sequences: rows at
    periods ``<= at_period`` (period numbers; dates and pandas Periods are accepted).
    Users first seen after ``at_period`` are left out of both parts, and counted.
    """
    if isinstance(data, SurvivalData):
        return _split_survival(data, int(at_period))
    if isinstance(data, StateSequences):
        return _split_sequences(data, at_period)
    raise TypeError(f"holdout_split takes SurvivalData or StateSequences, got {type(data)}")


def _split_survival(data: SurvivalData, at_period: int) -> HoldoutSplit:
    age = at_period - acquisition_offsets(data.groups)[data.cells[GROUP_CODE].to_numpy()]
    if data.users is None:
        if (age < 0).any():
            raise ValueError("survivor tables are split by age; rule: at_period >= 0")
        counts = data.counts.copy()
        limit = age[counts["cell"].to_numpy()]
        later = counts["period"].to_numpy() > limit
        counts.loc[later, "censored"] += counts.loc[later, "churned"]
        counts.loc[later, "churned"] = 0
        counts.loc[later, "period"] = limit[later].astype(np.int64)
        counts = counts.groupby(["cell", "period"], as_index=False)[list(COUNT_COLUMNS)].sum()
        train = SurvivalData(data.groups, data.encoding, data.cells, counts, None)
        return HoldoutSplit(train, data, at_period, 0)
    frame = _user_frame(data)
    user_age = age[data.users["cell"].to_numpy()]
    keep = (user_age >= 0) & (data.users["entry"].to_numpy() <= user_age)
    full = frame[keep]
    train = full.assign(
        duration=np.minimum(full["duration"], user_age[keep]),
        churned=full["churned"] & (full["duration"] <= user_age[keep]),
    )
    columns = {
        "duration": "duration",
        "churned": "churned",
        "entry": "entry",
        "user": "user",
        "cohort": data.groups.column,
        "covariates": list(data.encoding.columns),
    }
    return HoldoutSplit(
        SurvivalData.from_users(train, **columns),
        SurvivalData.from_users(full, **columns),
        at_period,
        int((~keep).sum()),
    )


def _user_frame(data: SurvivalData) -> pd.DataFrame:
    users = data.users
    cells = data.cells.iloc[users["cell"].to_numpy()]
    frame = pd.DataFrame(
        {
            "user": users.index.to_numpy(),
            "duration": users["duration"].to_numpy(),
            "churned": users["churned"].to_numpy(),
            "entry": users["entry"].to_numpy(),
        }
    )
    if data.groups.column is not None:
        frame[data.groups.column] = data.groups.labels[cells[GROUP_CODE].to_numpy()]
    for column in data.encoding.columns:
        frame[column] = cells[column].to_numpy()
    return frame


def _split_sequences(data: StateSequences, at_period) -> HoldoutSplit:
    if not isinstance(at_period, int | np.integer):
        at_period = int(_period_numbers(pd.DataFrame({"p": [at_period]}), "p")[0])
    history = data.history
    users = data.users
    kept = users["first_period"].to_numpy() <= at_period
    rows = history[kept[history["user"].to_numpy()]]
    cells = data.cells.iloc[users["cell"].to_numpy()[rows["user"].to_numpy()]]
    panel = pd.DataFrame(
        {
            "user": users.index.to_numpy()[rows["user"].to_numpy()],
            "period": rows["period"].to_numpy(),
            "state": data.states[rows["state"].to_numpy()],
        }
    )
    if data.groups.column is not None:
        panel["cohort"] = data.groups.labels[cells[GROUP_CODE].to_numpy()]
    for column in data.encoding.columns:
        panel[column] = cells[column].to_numpy()
    options = dict(
        user="user",
        period="period",
        state="state",
        states=list(data.states),
        absorbing=data.absorbing,
        cohort="cohort" if data.groups.column is not None else None,
        covariates=list(data.encoding.columns),
        allowed=data.allowed,
        split_gaps=True,
    )
    train = StateSequences.from_panel(panel[panel["period"] <= at_period], **options)
    test = StateSequences.from_panel(panel, **options)
    return HoldoutSplit(train, test, at_period, int((~kept).sum()))


@dataclass(frozen=True)
class HoldoutCheck:
    """Forecast against held-out observations.

    Attributes
    ----------
    table : pandas.DataFrame
        Per group (survival) or state (multi-state) and period after the split: ``observed``,
        forecast ``mean`` and HDI bounds.
    metrics : pandas.Series
        ``mae`` (mean absolute error of the survival or occupancy share), ``coverage_50``,
        ``coverage_94`` (share of held-out points inside the bands), ``log_predictive_density``
        (of the held-out observations given the training ones) and ``points``.
    """

    table: pd.DataFrame
    metrics: pd.Series


def _metrics(table: pd.DataFrame, hdi_probs, log_density: float) -> pd.Series:
    values = {"mae": float((table["observed"] - table["mean"]).abs().mean())}
    for prob in hdi_probs:
        pct = round(prob * 100)
        inside = (table["observed"] >= table[f"hdi_{pct}_low"] - 1e-12) & (
            table["observed"] <= table[f"hdi_{pct}_high"] + 1e-12
        )
        values[f"coverage_{pct}"] = float(inside.mean())
    values["log_predictive_density"] = log_density
    values["points"] = len(table)
    return pd.Series(values, name="holdout")


def holdout_check(
    model,
    split: HoldoutSplit,
    hdi_probs: Sequence[float] = HDI_PROBS,
    max_draws: int | None = 500,
    random_seed: int | None = None,
) -> HoldoutCheck:
    """Compare a model fitted on ``split.train`` with the held-out part of ``split.test``.

    Survival: Kaplan–Meier survival per group after each cohort's age at the split,
    predicted by replaying the test data with churns simulated after that age; the log
    predictive density is :math:`\\log \\overline{p(\\text{test})/p(\\text{train})}` over
    posterior draws (each user's held-out outcome given their training observation).
    Multi-state: the share of the users present at the split in each state at later
    periods, forecast from each user's own posterior dice; log predictive density from
    :meth:`DirichletMarkov.log_predictive_density`.
    """
    if isinstance(split.test, SurvivalData):
        return _check_survival(model, split, hdi_probs, max_draws, random_seed)
    return _check_sequences(model, split, hdi_probs, max_draws, random_seed)


def _check_survival(model, split, hdi_probs, max_draws, random_seed) -> HoldoutCheck:
    test = split.test
    age = split.at_period - acquisition_offsets(test.groups)[test.cells[GROUP_CODE].to_numpy()]
    table = _survival_table(model, test, "survival", hdi_probs, max_draws, random_seed, age)
    group_age = pd.Series(
        split.at_period - acquisition_offsets(test.groups), index=test.groups.labels
    )
    held_out = (
        table.index.get_level_values("period")
        > group_age.loc[table.index.get_level_values("group")].to_numpy()
    )
    table = table[held_out]
    # the density uses every posterior draw; max_draws only thins the simulation
    log_ratio = _aggregated_loglik(SurvivalFactories(model, test), test) - _aggregated_loglik(
        SurvivalFactories(model, split.train), split.train
    )
    log_density = float(special.logsumexp(log_ratio) - np.log(len(log_ratio)))
    return HoldoutCheck(table, _metrics(table, hdi_probs, log_density))


def _aggregated_loglik(factories: SurvivalFactories, data: SurvivalData) -> np.ndarray:
    """Log-likelihood of the data's counts per posterior draw (numpy, as in the model)."""
    counts = data.counts
    alpha, beta = factories(counts["cell"].to_numpy())  # rows × draws
    period = counts["period"].to_numpy()[:, None].astype(float)
    log_sf = sbg_logsf_numpy(period, alpha, beta)
    # P(T = t) = B(α + 1, β + t − 1) / B(α, β)
    log_pmf = special.betaln(alpha + 1, beta + np.maximum(period, 1) - 1) - special.betaln(
        alpha, beta
    )
    churned = counts["churned"].to_numpy()[:, None]
    rest = (counts["censored"] - counts["entered"]).to_numpy()[:, None]
    return (np.where(churned > 0, churned * log_pmf, 0.0) + rest * log_sf).sum(axis=0)


def _check_sequences(model, split, hdi_probs, max_draws, random_seed) -> HoldoutCheck:
    train, test = split.train, split.test
    at = split.at_period
    end = int(test.history["period"].max())
    steps = end - at
    if steps < 1:
        raise ValueError(f"no periods after at_period={at}; rule: the test data go beyond it")
    units, forecast = forecast_occupancy(model, train, steps, max_draws, random_seed=random_seed)
    k = test.n_states
    users = train.users
    # users present at the split: in a transient state at `at`, or absorbed before
    present = (users["last_period"].to_numpy() == at) | (units.of_user < 0)
    history = test.history
    position = test.users.index.get_indexer(users.index)
    state_at = np.full((len(users), steps), -1)
    rows = history[history["period"] > at]
    lookup = pd.Series(np.arange(len(users)), index=position)
    keep = np.isin(rows["user"].to_numpy(), position)
    train_user = lookup.loc[rows["user"].to_numpy()[keep]].to_numpy()
    state_at[train_user, rows["period"].to_numpy()[keep] - at - 1] = rows["state"].to_numpy()[keep]
    absorbed = units.of_user < 0
    last_state = train.states.get_indexer(users["last_state"])
    state_at[absorbed] = last_state[absorbed][:, None]
    # users absorbed after the split stay in their absorbing state to the end
    test_users = test.users.iloc[position]
    final = test.states.get_indexer(test_users["last_state"])
    later = np.isin(final, test.states.get_indexer(list(test.absorbing))) & ~absorbed
    after = np.arange(at + 1, end + 1)[None, :] > test_users["last_period"].to_numpy()[:, None]
    fill = later[:, None] & after
    state_at[fill] = np.broadcast_to(final[:, None], state_at.shape)[fill]
    observed_counts = np.zeros((steps, k))
    predicted = np.zeros((forecast.shape[1], steps, k))
    for step in range(steps):
        seen = present & (state_at[:, step] >= 0)
        np.add.at(observed_counts[step], state_at[seen, step], 1)
        moving = seen & ~absorbed
        weight = np.bincount(units.of_user[moving], minlength=len(units.cell))
        predicted[:, step] = np.einsum("u,uds->ds", weight, forecast[:, :, step])
        fixed = np.bincount(last_state[seen & absorbed], minlength=k)
        predicted[:, step] += fixed
    total = observed_counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = predicted / total[None, :, None]
        observed = observed_counts / total[:, None]
    rng = np.random.default_rng(None if random_seed is None else random_seed + 1)
    replicated = replicate_shares(share, total[None, :, None], rng)
    columns = band_columns(np.moveaxis(replicated, 0, -1), hdi_probs)
    columns["mean"] = share.mean(axis=0)
    table = pd.DataFrame(
        {
            "users": np.repeat(total, k).astype(np.int64),
            "observed": observed.ravel(),
            **{name: value.ravel() for name, value in columns.items()},
        },
        index=pd.MultiIndex.from_product(
            [np.arange(at + 1, end + 1), test.states], names=["period", "state"]
        ),
    )
    table = table[table["users"] > 0]
    log_density = float(model.log_predictive_density(test).sum())
    return HoldoutCheck(table, _metrics(table, hdi_probs, log_density))


# -- LOO ---------------------------------------------------------------------------------


def pointwise_log_likelihood(model, point: str = "user") -> xr.DataTree:
    """Store the pointwise log-likelihood in ``model.idata["log_likelihood"]`` and return the
    DataTree, ready for :func:`arviz.loo` and :func:`arviz.compare`.

    Parameters
    ----------
    point : {"user", "row"}
        ``"user"``: one point per user (the user's own likelihood term: churn or censoring
        less left truncation for the sBG; their path's Dirichlet-multinomial terms plus
        their first state for the multi-state model). Users with identical data are
        computed once and repeated (memory: draws × users). ``"row"``: one point per
        aggregated row as the model evaluates it (see the module docstring), much smaller
        but each point holds many users, so Pareto k is often high.
    """
    if model.method == "map":
        raise ValueError("a MAP fit has one draw; rule: LOO needs posterior draws (nuts, advi)")
    if point not in ("user", "row"):
        raise ValueError(f"point is {point!r}; rule: 'user' or 'row'")
    idata = model.idata
    if "log_likelihood" in idata.children:
        del idata["log_likelihood"]
    if point == "row":
        with model.model:
            pm.compute_log_likelihood(idata, extend_inferencedata=True, progressbar=False)
        return idata
    if isinstance(model.data, SurvivalData):
        values = _survival_user_loglik(model)
    else:
        values = _sequence_user_loglik(model)
    idata["log_likelihood"] = xr.DataTree(xr.Dataset({values.name: values}))
    return idata


def _survival_user_loglik(model) -> xr.DataArray:
    data = model.data
    if data.users is not None:
        users = data.users
        keys = users[["cell", "duration", "churned", "entry"]]
        ids = users.index
    else:  # survivor tables: each group's users entered at its first period
        counts = data.counts
        entry = counts[counts["entered"] > 0].set_index("cell")["period"]
        parts = []
        for column, flag in (("churned", True), ("censored", False)):
            rows = counts[counts[column] > 0]
            parts.append(
                pd.DataFrame(
                    {
                        "cell": np.repeat(rows["cell"], rows[column]),
                        "duration": np.repeat(rows["period"], rows[column]),
                        "churned": flag,
                    }
                )
            )
        keys = pd.concat(parts, ignore_index=True)
        keys["entry"] = entry.loc[keys["cell"]].to_numpy()
        ids = pd.RangeIndex(len(keys), name="user")
    unique, which = np.unique(keys.to_numpy(dtype=np.int64), axis=0, return_inverse=True)
    factories = SurvivalFactories(model, data)
    alpha, beta = factories(unique[:, 0])  # combos × draws
    duration = unique[:, 1][:, None].astype(float)
    log_pmf = special.betaln(alpha + 1, beta + np.maximum(duration, 1) - 1) - special.betaln(
        alpha, beta
    )
    exit_term = np.where(
        unique[:, 2][:, None] == 1, log_pmf, sbg_logsf_numpy(duration, alpha, beta)
    )
    values = exit_term - sbg_logsf_numpy(unique[:, 3][:, None].astype(float), alpha, beta)
    return _user_array(values[which.ravel()], factories.samples, ids, "survival")


def _sequence_user_loglik(model) -> xr.DataArray:
    data = model.data
    idata = model.idata
    with model.model:
        rows = pm.compute_log_likelihood(
            idata, var_names=["transitions"], extend_inferencedata=False, progressbar=False
        )
    per_pattern = rows["transitions"].stack(sample=("chain", "draw"))
    per_pattern = per_pattern.transpose(..., "sample").values  # patterns × draws
    per_pattern = per_pattern / data.patterns["weight"].to_numpy()[:, None]
    padded = np.vstack([per_pattern, np.zeros((1, per_pattern.shape[1]))])
    users = data.users
    paths = padded[data.user_patterns].sum(axis=1)  # users × draws
    initial = idata["posterior"]["initial"].to_dataset()["initial"]
    initial = initial.stack(sample=("chain", "draw")).transpose("group", "state", "sample")
    group = data.cells[GROUP_CODE].to_numpy()[users["cell"].to_numpy()]
    first = data.states.get_indexer(users["first_state"])
    values = paths + np.log(initial.values[group, first])
    return _user_array(values, initial.indexes["sample"], users.index, "paths")


def _user_array(values: np.ndarray, samples: pd.MultiIndex, users: pd.Index, name: str):
    chains, draws = len(samples.levels[0]), len(samples.levels[1])
    return xr.DataArray(
        np.moveaxis(values.reshape(len(users), chains, draws), 0, -1),
        dims=("chain", "draw", "user"),
        coords={
            "chain": samples.levels[0],
            "draw": samples.levels[1],
            "user": np.asarray(users),
        },
        name=name,
    )


def loo(model, point: str = "user", **kwargs):
    """PSIS-LOO of a fitted model (:func:`arviz.loo`) with the pointwise log-likelihood of
    :func:`pointwise_log_likelihood` added first."""
    return az.loo(pointwise_log_likelihood(model, point), **kwargs)
