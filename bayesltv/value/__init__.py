"""Lifetime value with two layers of uncertainty, for both model families.

Models expose it as ``model.ltv(...)``, ``model.new_user_ltv(...)`` and, for the
multi-state model, ``value_function(...)`` and ``value_of_move(...)``.
"""

from bayesltv.value.result import LTVResult
from bayesltv.value.rewards import per_period_rate, price_schedule
from bayesltv.value.survival import residual_lifetime_value

__all__ = ["LTVResult", "per_period_rate", "price_schedule", "residual_lifetime_value"]
