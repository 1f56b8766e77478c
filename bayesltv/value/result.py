r"""The result of valuing users: two layers of uncertainty, summarised without storing draws.

For a user and a posterior draw :math:`d` of the factories, the *expected* value
:math:`E_d = E[V \mid \text{draw } d, \text{history}]` averages over the user's own coin or
dice and future path; its spread over draws is what we do not know about the factories
(epistemic). The *predictive* value :math:`V` also varies with the user's own coin/dice and
path: its distribution is the mixture over draws, with mean :math:`\bar E` and variance
:math:`\operatorname{Var}_d(E_d) + \operatorname{mean}_d \operatorname{Var}(V \mid d)`.

Values are computed once per *unit* (users with identical sufficient statistics) and
accumulated per *stratum* (cell, and the current state for the multi-state model) within
each draw: a cohort's or the base's total is the sum of its users' values within each draw,
never a sum of intervals. The predictive total of many independent users is, within a draw,
approximately normal with the exact mean :math:`\sum_u E_{u,d}` and variance
:math:`\sum_u \operatorname{Var}(V_u \mid d)` (central limit theorem); that is how totals'
predictive intervals are drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats.base import array_stats
from scipy import sparse

LAYERS = ("expected", "predictive")
STATS = ("mean", "sd", "hdi_low", "hdi_high")
#: Columns of every summary: ``{layer}_{stat}``.
STAT_COLUMNS = [f"{layer}_{stat}" for layer in LAYERS for stat in STATS]
#: Normal draws per posterior draw for totals' predictive intervals.
TOTAL_PREDICTIVE_DRAWS = 16


def draw_indices(values: xr.DataArray | xr.Dataset, max_draws: int | None) -> np.ndarray:
    """Evenly spaced draw positions, the same in every chain, keeping chains × draws at most
    ``max_draws`` (all draws when ``None``)."""
    draws, chains = values.sizes["draw"], values.sizes["chain"]
    if max_draws is None or draws * chains <= max_draws:
        return np.arange(draws)
    per_chain = max(1, max_draws // chains)
    return np.unique(np.linspace(0, draws - 1, per_chain).astype(int))


def hdi_bounds(values: np.ndarray, hdi_prob: float) -> np.ndarray:
    """Highest-density interval along the last axis (ArviZ), shape (..., 2)."""
    if values.shape[-1] == 1:
        return np.repeat(values, 2, axis=-1)
    return np.asarray(array_stats.hdi(values, hdi_prob, axis=-1))


def discrete_hdi(support: np.ndarray, probabilities: np.ndarray, hdi_prob: float) -> np.ndarray:
    """Shortest interval of values holding at least ``hdi_prob`` of a discrete distribution.

    ``support`` (n,) or (units, n) values with ``probabilities`` (units, n); returns
    (units, 2). The values are sorted, and the shortest window of consecutive support
    points whose probabilities add to ``hdi_prob`` is chosen.
    """
    support = np.broadcast_to(support, probabilities.shape)
    order = np.argsort(support, axis=-1, kind="stable")
    values = np.take_along_axis(support, order, axis=-1)
    probs = np.take_along_axis(probabilities, order, axis=-1)
    cumulative = np.concatenate([np.zeros((len(probs), 1)), np.cumsum(probs, axis=-1)], axis=-1)
    cumulative /= cumulative[:, -1:]
    n = values.shape[-1]
    low = np.empty(len(values))
    high = np.empty(len(values))
    target = hdi_prob - 1e-12
    for row in range(len(values)):
        # smallest end j for each start i with cumulative[j+1] - cumulative[i] >= target
        ends = np.searchsorted(cumulative[row], cumulative[row, :n] + target, side="left") - 1
        valid = ends < n
        starts = np.flatnonzero(valid)
        width = values[row, ends[valid]] - values[row, starts]
        best = np.argmin(width)
        low[row] = values[row, starts[best]]
        high[row] = values[row, ends[valid][best]]
    return np.column_stack([low, high])


def sum_by(keys: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Sum the rows of ``values`` sharing a key in ``0..n-1`` (a sparse matrix product)."""
    indicator = sparse.csr_matrix(
        (np.ones(len(keys)), (keys, np.arange(len(keys)))), shape=(n, len(keys))
    )
    return np.asarray(indicator @ values)


def denoise(expected: np.ndarray, noise: np.ndarray | float = 0.0) -> np.ndarray:
    r"""Per-draw values with Monte Carlo noise of variance ``noise`` (per row) removed.

    When each draw's value is itself a Monte Carlo average (the multi-state model's own
    dice), the spread over draws is :math:`\operatorname{Var}_{\text{epistemic}} +` noise.
    The deviations from the mean are shrunk by
    :math:`\sqrt{\max(\operatorname{Var} - \text{noise}, 0) / \operatorname{Var}}`, so that
    their variance is the unbiased epistemic variance and HDIs reflect it, not the noise.
    """
    noise = np.broadcast_to(np.asarray(noise, dtype=float), expected.shape[:-1])
    if not noise.any():
        return expected
    mean = expected.mean(axis=-1, keepdims=True)
    spread = expected.var(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        shrink = np.sqrt(np.clip(1.0 - noise / spread, 0.0, 1.0))
    shrink = np.where(spread > 0, shrink, 1.0)
    return mean + (expected - mean) * shrink[..., None]


def layer_stats(
    expected: np.ndarray,
    within_variance: np.ndarray,
    predictive_hdi: np.ndarray,
    hdi_prob: float,
) -> np.ndarray:
    """The 8 summary columns of units from their per-draw values (units × draws)."""
    mean = expected.mean(axis=-1)
    spread = expected.var(axis=-1)
    predictive_sd = np.sqrt(spread + within_variance.mean(axis=-1))
    return np.column_stack(
        [
            mean,
            np.sqrt(spread),
            hdi_bounds(expected, hdi_prob),
            mean,
            predictive_sd,
            predictive_hdi,
        ]
    )


class ValueAccumulator:
    """Collects units' summaries and strata's per-draw sums while units are scored in chunks."""

    def __init__(
        self, n_units: int, n_strata: int, n_samples: int, hdi_prob: float, keep_draws: bool
    ) -> None:
        self.hdi_prob = hdi_prob
        self.stats = np.zeros((n_units, len(STAT_COLUMNS)))
        self.strata_expected = np.zeros((n_strata, n_samples))
        self.strata_variance = np.zeros((n_strata, n_samples))
        self.strata_noise = np.zeros(n_strata)
        self.unit_draws = np.zeros((n_units, n_samples)) if keep_draws else None

    def add(
        self,
        units: np.ndarray,
        strata: np.ndarray,
        weights: np.ndarray,
        expected: np.ndarray,
        within_variance: np.ndarray,
        predictive_hdi: np.ndarray,
        noise: np.ndarray | float = 0.0,
    ) -> None:
        """Record a chunk: per-draw expected values and within-draw variances (units × draws),
        and the Monte Carlo noise variance of each unit's per-draw values (see
        :func:`denoise`)."""
        clean = denoise(expected, noise)
        self.stats[units] = layer_stats(clean, within_variance, predictive_hdi, self.hdi_prob)
        n = len(self.strata_expected)
        noise = np.broadcast_to(np.asarray(noise, dtype=float), len(units))
        self.strata_noise += sum_by(strata, (weights**2 * noise)[:, None], n)[:, 0]
        self.strata_expected += sum_by(strata, weights[:, None] * expected, n)
        self.strata_variance += sum_by(strata, weights[:, None] * within_variance, n)
        if self.unit_draws is not None:
            self.unit_draws[units] = expected


@dataclass(frozen=True)
class LTVResult:
    """Lifetime values with their two layers of uncertainty (see the module docstring).

    Build it with a model's ``ltv``, ``new_user_ltv`` or ``value_function``; read it with
    :meth:`summary` and, on request, :meth:`draws`.

    Attributes
    ----------
    strata : pandas.DataFrame
        The finest level totals are kept at: ``group`` (cohort or segment label), the
        covariates and, for the multi-state model, ``state``, with the number of ``users``.
    units : pandas.DataFrame
        One row per set of identical users: its ``stratum``, the number of ``users`` and the
        summary columns.
    users : pandas.DataFrame or None
        Per user (index: user id) descriptive columns and its ``unit`` (−1: no future value,
        e.g. churned); ``None`` when the data hold no user ids.
    settings : dict
        The discount rate, horizon and other choices the values were computed with.
    """

    strata: pd.DataFrame
    units: pd.DataFrame
    users: pd.DataFrame | None
    strata_expected: np.ndarray = field(repr=False)
    strata_variance: np.ndarray = field(repr=False)
    strata_noise: np.ndarray = field(repr=False)
    samples: pd.MultiIndex = field(repr=False)
    hdi_prob: float
    settings: dict
    unit_draws: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_accumulator(
        cls,
        accumulator: ValueAccumulator,
        strata: pd.DataFrame,
        units: pd.DataFrame,
        users: pd.DataFrame | None,
        samples: pd.MultiIndex,
        settings: dict,
    ) -> LTVResult:
        units = units.assign(**dict(zip(STAT_COLUMNS, accumulator.stats.T, strict=True)))
        return cls(
            strata,
            units,
            users,
            accumulator.strata_expected,
            accumulator.strata_variance,
            accumulator.strata_noise,
            samples,
            accumulator.hdi_prob,
            settings,
            accumulator.unit_draws,
        )

    def __repr__(self) -> str:
        n_users = int(self.strata["users"].sum())
        return (
            f"LTVResult({n_users:,} users in {len(self.units):,} units, "
            f"{len(self.samples):,} posterior draws, {self.settings})"
        )

    # -- summaries ---------------------------------------------------------------------

    def summary(self, by: str | Sequence[str] = "user") -> pd.DataFrame:
        """Mean, sd and HDI of the expected and predictive layers.

        Parameters
        ----------
        by : str or list of str
            ``"user"`` (one row per user), ``"unit"`` (one row per set of identical users,
            with their stratum's columns: the per-user values of survivor tables), ``"total"``
            (one row), or columns of :attr:`strata`: ``"group"`` (alias ``"cohort"`` or the
            data's group column), covariates, ``"state"``. Groups' values add their users
            within each draw.

        Returns
        -------
        pandas.DataFrame
            Columns ``users`` and ``{expected,predictive}_{mean,sd,hdi_low,hdi_high}``;
            ``attrs["hdi_prob"]`` holds the intervals' probability.
        """
        if by == "user":
            return self._user_summary()
        if by == "unit":
            return self._unit_summary()
        keys, labels = self._grouping(by)
        unit_keys = keys[self.units["stratum"].to_numpy()]
        if len(self.units) == len(labels) and (self.units["users"] == 1).all():
            # each row is one user of one unit: its exact summary, no normal approximation
            order = np.argsort(unit_keys)
            table = pd.DataFrame(
                self.units[STAT_COLUMNS].to_numpy()[order], columns=STAT_COLUMNS, index=labels
            )
            table.insert(0, "users", 1)
            table.attrs["hdi_prob"] = self.hdi_prob
            return table
        expected, variance = self._aggregate(keys, len(labels))
        rng = np.random.default_rng(0)
        noise = rng.standard_normal((*variance.shape, TOTAL_PREDICTIVE_DRAWS))
        predictive = (expected[..., None] + np.sqrt(variance)[..., None] * noise).reshape(
            len(labels), -1
        )
        stats = layer_stats(
            expected, variance, hdi_bounds(predictive, self.hdi_prob), self.hdi_prob
        )
        users = np.bincount(keys, weights=self.strata["users"].to_numpy(), minlength=len(labels))
        table = pd.DataFrame(stats, columns=STAT_COLUMNS, index=labels)
        table.insert(0, "users", users.astype(np.int64))
        table.attrs["hdi_prob"] = self.hdi_prob
        return table

    def draws(self, by: str | Sequence[str] = "total") -> xr.Dataset:
        """Per-draw values: ``expected`` and one ``predictive`` draw per posterior draw.

        ``by="user"`` needs ``keep_draws=True`` when valuing (users × draws can be large);
        its ``predictive`` is absent (per-user predictive draws are not kept).
        """
        coords = {
            "chain": self.samples.unique(level=0).to_numpy(),
            "draw": self.samples.unique(level=1).to_numpy(),
        }
        shape = (len(coords["chain"]), len(coords["draw"]))
        if by == "user":
            if self.unit_draws is None or self.users is None:
                raise ValueError(
                    "per-user draws were not kept; value with keep_draws=True (memory: users × "
                    "draws) on data with user ids"
                )
            unit = self.users["unit"].to_numpy()
            padded = np.vstack([self.unit_draws, np.zeros((1, self.unit_draws.shape[1]))])
            values = padded[unit].reshape(len(unit), *shape)
            expected = xr.DataArray(
                values, dims=("user", "chain", "draw"), coords={**coords, "user": self.users.index}
            )
            return xr.Dataset({"expected": expected})
        keys, labels = self._grouping(by)
        expected, variance = self._aggregate(keys, len(labels))
        noise = np.random.default_rng(0).standard_normal(variance.shape)
        predictive = expected + np.sqrt(variance) * noise
        name = labels.name if isinstance(labels.name, str) else "key"
        dims = (name, "chain", "draw")
        index_coords = {**coords, name: labels}
        return xr.Dataset(
            {
                layer: xr.DataArray(
                    values.reshape(len(labels), *shape), dims=dims, coords=index_coords
                )
                for layer, values in (("expected", expected), ("predictive", predictive))
            }
        )

    # -- helpers -----------------------------------------------------------------------

    def _user_summary(self) -> pd.DataFrame:
        if self.users is None:
            raise ValueError(
                "these values have no per-user rows (survivor tables and new users hold no "
                "user ids); use summary(by='group'), by='total' or another strata column "
                f"{[c for c in self.strata.columns if c != 'users']}"
            )
        stats = np.vstack([self.units[STAT_COLUMNS].to_numpy(), np.zeros((1, len(STAT_COLUMNS)))])
        unit = self.users["unit"].to_numpy()
        table = self.users.drop(columns="unit")
        table = table.assign(**dict(zip(STAT_COLUMNS, stats[unit].T, strict=True)))
        table.attrs["hdi_prob"] = self.hdi_prob
        return table

    def _unit_summary(self) -> pd.DataFrame:
        keys = self.strata.drop(columns="users").iloc[self.units["stratum"].to_numpy()]
        table = pd.concat(
            [keys.set_index(self.units.index), self.units.drop(columns="stratum")], axis=1
        )
        table = table.loc[:, ~table.columns.duplicated()]
        table.attrs["hdi_prob"] = self.hdi_prob
        return table

    def _grouping(self, by) -> tuple[np.ndarray, pd.Index]:
        if isinstance(by, str) and by == "total":
            return np.zeros(len(self.strata), np.int64), pd.Index(["total"], name="total")
        columns = [by] if isinstance(by, str) else list(by)
        aliases = {"cohort": "group", self.settings.get("group_column"): "group"}
        columns = [aliases.get(c, c) for c in columns]
        available = [c for c in self.strata.columns if c != "users"]
        unknown = [c for c in columns if c not in available]
        if unknown:
            raise ValueError(
                f"cannot summarise by {unknown}; rule: by is 'user', 'total' or among the "
                f"strata columns {available} ('cohort' or the data's group column means 'group')"
            )
        keys = self.strata[columns]
        index = pd.MultiIndex.from_frame(keys) if len(columns) > 1 else pd.Index(keys[columns[0]])
        labels = index.unique()
        return labels.get_indexer(index), labels

    def _aggregate(self, keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-draw sums of users' expected values (Monte Carlo noise removed, see
        :func:`denoise`) and of their within-draw predictive variances."""
        noise = sum_by(keys, self.strata_noise[:, None], n)[:, 0]
        expected = denoise(sum_by(keys, self.strata_expected, n), noise)
        return expected, sum_by(keys, self.strata_variance, n)
