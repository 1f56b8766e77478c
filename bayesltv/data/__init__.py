"""Validated model inputs and their sufficient statistics."""

from bayesltv.data.groups import CovariateEncoding, Groups
from bayesltv.data.sequences import StateSequences
from bayesltv.data.survival import SurvivalData

__all__ = ["CovariateEncoding", "Groups", "StateSequences", "SurvivalData"]
