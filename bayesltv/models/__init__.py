"""Model families and their shared fitting base."""

from bayesltv.models.base import BayesianModel, NotFittedError
from bayesltv.models.beta_geometric import BetaGeometric
from bayesltv.models.dirichlet_markov import DirichletMarkov

__all__ = ["BayesianModel", "BetaGeometric", "DirichletMarkov", "NotFittedError"]
