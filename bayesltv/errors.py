"""Exceptions and warnings raised by bayesltv."""


class DataValidationError(ValueError):
    """Input data break a documented rule.

    The message always names the column, the offending value(s) and the rule, so the
    problem can be fixed without reading bayesltv's source.
    """


class ConvergenceWarning(UserWarning):
    """A fit shows signs that its posterior draws cannot be trusted.

    Raised after NUTS for divergent transitions, R-hat above 1.01 or a low effective
    sample size, and after variational fits whose objective did not settle.
    """
