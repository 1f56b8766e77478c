"""bayesltv: Bayesian lifetime value of subscription users, on PyMC and ArviZ."""

from bayesltv import checks, datasets, value
from bayesltv.data import StateSequences, SurvivalData
from bayesltv.distributions import ShiftedBetaGeometric
from bayesltv.errors import ConvergenceWarning, DataValidationError
from bayesltv.models import BetaGeometric, DirichletMarkov, NotFittedError

__version__ = "0.1.0"

__all__ = [
    "BetaGeometric",
    "ConvergenceWarning",
    "DataValidationError",
    "DirichletMarkov",
    "NotFittedError",
    "ShiftedBetaGeometric",
    "StateSequences",
    "SurvivalData",
    "checks",
    "datasets",
    "value",
]
