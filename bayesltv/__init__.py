"""bayesltv: Bayesian lifetime value of subscription users, on PyMC and ArviZ."""

from bayesltv import datasets
from bayesltv.data import SurvivalData
from bayesltv.distributions import ShiftedBetaGeometric
from bayesltv.errors import ConvergenceWarning, DataValidationError
from bayesltv.models import BetaGeometric, NotFittedError

__version__ = "0.1.0"

__all__ = [
    "BetaGeometric",
    "ConvergenceWarning",
    "DataValidationError",
    "NotFittedError",
    "ShiftedBetaGeometric",
    "SurvivalData",
    "datasets",
]
