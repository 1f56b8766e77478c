r"""Discounting and reward schedules shared by both model families.

A value is a discounted sum of rewards: :math:`\sum_k \delta^k r_k` with
:math:`\delta = 1/(1+d)` for a per-period discount rate :math:`d`, and :math:`k` counting
periods from now (:math:`k = 0` is the current period, already paid by an active user).
Rewards may vary with :math:`k` (a planned price rise) and, in the multi-state model, with
the state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

RewardSpec = float | Sequence[float] | np.ndarray | pd.Series


def per_period_rate(annual_rate: float, periods_per_year: int = 12) -> float:
    r"""Per-period discount rate equivalent to an annual one: :math:`(1+d_y)^{1/n} - 1`.

    >>> round(per_period_rate(0.10), 6)
    0.007974
    """
    if annual_rate <= -1:
        raise ValueError(f"annual_rate is {annual_rate}; rule: a discount rate is above -1")
    if periods_per_year < 1:
        raise ValueError(f"periods_per_year is {periods_per_year}; rule: at least 1")
    return float((1.0 + annual_rate) ** (1.0 / periods_per_year) - 1.0)


def price_schedule(
    price: float,
    horizon: int,
    annual_increase: float = 0.0,
    periods_per_year: int = 12,
) -> pd.Series:
    r"""A price that rises by ``annual_increase`` every ``periods_per_year`` periods.

    :math:`r_k = p\,(1+g)^{\lfloor k / n \rfloor}` for :math:`k = 0, \dots, H` (periods from
    now): pass it as ``value=`` (or per state in ``rewards=``) for rewards that vary by period.

    >>> price_schedule(10.0, horizon=25, annual_increase=0.1).iloc[[0, 11, 12, 24]].tolist()
    [10.0, 10.0, 11.0, 12.100000000000001]
    """
    k = np.arange(horizon + 1)
    values = price * (1.0 + annual_increase) ** (k // periods_per_year)
    return pd.Series(values, index=pd.RangeIndex(horizon + 1, name="periods_ahead"), name="reward")


def discount_factors(discount_rate: float, horizon: int) -> np.ndarray:
    r""":math:`\delta^k` for :math:`k = 0, \dots, H`, with :math:`\delta = 1/(1+d)`."""
    check_discount_rate(discount_rate)
    return (1.0 / (1.0 + discount_rate)) ** np.arange(horizon + 1)


def check_discount_rate(discount_rate: float) -> None:
    if not np.isfinite(discount_rate) or discount_rate <= -1:
        raise ValueError(
            f"discount_rate is {discount_rate}; rule: a finite per-period rate above -1 "
            "(use per_period_rate() to convert an annual rate)"
        )


def check_horizon(horizon: int) -> int:
    if isinstance(horizon, bool) or not float(horizon).is_integer() or horizon < 1:
        raise ValueError(f"horizon is {horizon!r}; rule: a whole number of periods >= 1")
    return int(horizon)


def reward_schedule(value: RewardSpec, horizon: int, name: str = "value") -> np.ndarray:
    """Rewards :math:`r_k` for :math:`k = 0, \\dots, H` from a number or a schedule.

    A schedule is a sequence of length ``horizon + 1`` (entry ``k``: the reward ``k`` periods
    from now) or a pandas Series indexed by ``k`` covering ``0..horizon``.
    """
    if np.ndim(value) == 0:
        reward = float(value)
        if not np.isfinite(reward):
            raise ValueError(f"{name} is {reward}; rule: rewards are finite numbers")
        return np.full(horizon + 1, reward)
    if isinstance(value, pd.Series):
        missing = pd.RangeIndex(horizon + 1).difference(value.index)
        if len(missing):
            raise ValueError(
                f"{name} has no reward for periods ahead {list(missing[:5])}; rule: a reward "
                f"schedule covers periods 0..{horizon} (the horizon)"
            )
        schedule = value.loc[list(range(horizon + 1))].to_numpy(dtype=float)
    else:
        schedule = np.asarray(value, dtype=float)
        if schedule.shape != (horizon + 1,):
            raise ValueError(
                f"{name} has shape {schedule.shape}; rule: a reward schedule has one entry per "
                f"period ahead 0..{horizon}, shape ({horizon + 1},)"
            )
    if not np.isfinite(schedule).all():
        raise ValueError(f"{name} has non-finite rewards; rule: rewards are finite numbers")
    return schedule


def state_rewards(
    rewards: Mapping[str, RewardSpec] | pd.DataFrame, states: Sequence[str], horizon: int
) -> np.ndarray:
    """Reward of each state per period ahead, shape (``horizon + 1``, states).

    ``rewards`` maps state names to a number or a schedule (see :func:`reward_schedule`), or
    is a DataFrame with periods ahead as index and states as columns; states left out earn 0.
    """
    columns = rewards.columns if isinstance(rewards, pd.DataFrame) else list(rewards)
    unknown = [s for s in columns if s not in list(states)]
    if unknown:
        raise ValueError(
            f"rewards name unknown state(s) {unknown}; rule: states are among {list(states)}"
        )
    table = np.zeros((horizon + 1, len(states)))
    for position, state in enumerate(states):
        if state in columns:
            table[:, position] = reward_schedule(
                rewards[state], horizon, name=f"rewards[{state!r}]"
            )
    return table
