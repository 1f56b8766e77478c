"""Model families and their shared fitting base."""

from bayesltv.models.base import BayesianModel, NotFittedError
from bayesltv.models.beta_geometric import BetaGeometric

__all__ = ["BayesianModel", "BetaGeometric", "NotFittedError"]
