r"""The shifted beta-geometric distribution as a first-class PyMC distribution.

A user churns at the first renewal boundary at which their coin comes up "churn". With a
per-user churn probability :math:`\theta \sim \mathrm{Beta}(\alpha, \beta)` drawn once, the
number of the period in which the user churns, :math:`T \in \{1, 2, \dots\}`, has

.. math::

    P(T = t) &= \frac{B(\alpha + 1, \beta + t - 1)}{B(\alpha, \beta)}, \\
    S(t) = P(T > t) &= \frac{B(\alpha, \beta + t)}{B(\alpha, \beta)}.

Both are evaluated in log space through ``betaln`` so that long horizons and extreme
parameters stay finite. The functions :func:`sbg_logpmf` and :func:`sbg_logsf` work on
PyTensor variables (the likelihood); :func:`sbg_logsf_numpy` is the same formula on
NumPy arrays, for post-processing posterior draws.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pymc.distributions.dist_math import betaln, check_parameters
from pymc.distributions.shape_utils import rv_size_is_none
from pytensor.graph.basic import Variable
from scipy import special

#: Smallest churn probability a simulated coin can take (see ``_sbg_random``).
MIN_COIN = 1e-12

__all__ = [
    "ShiftedBetaGeometric",
    "sbg_logpmf",
    "sbg_logsf",
    "sbg_logsf_numpy",
]


def sbg_logpmf(t, alpha, beta):
    """log P(T = t) = betaln(α + 1, β + t − 1) − betaln(α, β), for integer t ≥ 1."""
    return betaln(alpha + 1.0, beta + t - 1.0) - betaln(alpha, beta)


def sbg_logsf(t, alpha, beta):
    """log S(t) = log P(T > t) = betaln(α, β + t) − betaln(α, β), for integer t ≥ 0."""
    return betaln(alpha, beta + t) - betaln(alpha, beta)


def sbg_logsf_numpy(t, alpha, beta):
    """NumPy twin of :func:`sbg_logsf` for arrays of posterior draws (broadcasts)."""
    return special.betaln(alpha, beta + t) - special.betaln(alpha, beta)


def _sbg_random(alpha, beta, size):
    """Each user's coin θ ~ Beta(α, β) is drawn once, then T ~ Geometric(θ) on {1, 2, ...}.

    Built from PyMC's own random variables, so draws work on every PyTensor backend
    (C, Numba, JAX) without object-mode fallbacks.
    """
    if rv_size_is_none(size):
        alpha, beta = pt.broadcast_arrays(alpha, beta)
    theta = pm.Beta.dist(alpha, beta, size=size)
    # A coin can underflow to exactly 0 when α is tiny; a geometric with p = 0 is undefined,
    # so coins are floored at 1e-12 (a churn time of order 1e12 periods: never, in practice).
    return pm.Geometric.dist(pt.clip(theta, MIN_COIN, 1.0), size=size)


def _sbg_logp(value, alpha, beta):
    logp = pt.switch(value < 1, -np.inf, sbg_logpmf(value, alpha, beta))
    return check_parameters(logp, alpha > 0, beta > 0, msg="alpha > 0, beta > 0")


def _sbg_logcdf(value, alpha, beta):
    # P(T <= t) = 1 - S(t), as log1mexp of log S(t) for accuracy in the far tail.
    logcdf = pt.switch(value < 1, -np.inf, pt.log1mexp(sbg_logsf(pt.floor(value), alpha, beta)))
    return check_parameters(logcdf, alpha > 0, beta > 0, msg="alpha > 0, beta > 0")


def _as_float_tensor(x) -> pt.TensorVariable:
    """Parameters as floatX tensors: plain Python floats would otherwise become float32."""
    if isinstance(x, Variable):
        return x if x.dtype.startswith("float") else pt.cast(x, pytensor.config.floatX)
    return pt.as_tensor_variable(np.asarray(x, dtype=pytensor.config.floatX))


class ShiftedBetaGeometric:
    r"""Shifted beta-geometric distribution of the churn period :math:`T \ge 1`.

    ========  ==================================================================
    Support   :math:`t \in \{1, 2, \dots\}`
    PMF       :math:`B(\alpha + 1, \beta + t - 1) / B(\alpha, \beta)`
    Survival  :math:`B(\alpha, \beta + t) / B(\alpha, \beta)`
    Mean      :math:`(\alpha + \beta - 1) / (\alpha - 1)` for :math:`\alpha > 1`, else ∞
    ========  ==================================================================

    A ``pm.CustomDist``: ``pm.logp``, ``pm.logcdf``, ``pm.draw``, prior and posterior
    predictive sampling all work as for PyMC's built-in distributions.

    Parameters
    ----------
    alpha, beta : tensor_like of float
        Shape parameters (> 0) of the Beta "coin factory" of churn probabilities.

    Examples
    --------
    >>> import pymc as pm
    >>> from bayesltv.distributions import ShiftedBetaGeometric
    >>> with pm.Model():
    ...     a = pm.HalfNormal("a", 2.0)
    ...     b = pm.HalfNormal("b", 2.0)
    ...     t = ShiftedBetaGeometric("t", alpha=a, beta=b, observed=[1, 3, 2, 7])
    """

    def __new__(cls, name: str, alpha, beta, **kwargs):
        params = (_as_float_tensor(alpha), _as_float_tensor(beta))
        return pm.CustomDist(name, *params, **_CUSTOM_DIST, **kwargs)

    @classmethod
    def dist(cls, alpha, beta, **kwargs):
        params = (_as_float_tensor(alpha), _as_float_tensor(beta))
        return pm.CustomDist.dist(*params, **_CUSTOM_DIST, **kwargs)


_CUSTOM_DIST = {
    "dist": _sbg_random,
    "logp": _sbg_logp,
    "logcdf": _sbg_logcdf,
    "class_name": "ShiftedBetaGeometric",
}
