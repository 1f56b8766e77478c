"""Bad inputs raise DataValidationError naming the column, the offending value(s) and the rule."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import bayesltv as bl
from bayesltv import DataValidationError, SurvivalData


def pattern(*parts: str) -> str:
    """Regex matching the literal ``parts`` in this order, anything in between."""
    return ".*".join(re.escape(part) for part in parts)


# -- from_users -------------------------------------------------------------------------

USER_KWARGS = {
    "duration": "duration",
    "churned": "churned",
    "cohort": "cohort",
    "entry": "entry",
    "covariates": ["plan"],
    "user": "user",
}


def users() -> pd.DataFrame:
    """A valid users table; each test breaks one thing in a fresh copy."""
    return pd.DataFrame(
        {
            "user": [101, 102, 103, 104],
            "duration": [1, 2, 3, 4],
            "churned": [True, False, True, False],
            "cohort": [0, 0, 1, 1],
            "entry": [0, 1, 0, 2],
            "plan": ["basic", "premium", "basic", "premium"],
        }
    )


def test_error_is_a_value_error():
    assert issubclass(DataValidationError, ValueError)
    assert bl.DataValidationError is DataValidationError


def test_valid_table_is_accepted():
    data = SurvivalData.from_users(users(), **USER_KWARGS)
    assert data.n_users == 4


@pytest.mark.parametrize("column", ["duration", "churned", "cohort", "entry", "plan", "user"])
def test_from_users_missing_column(column):
    df = users().drop(columns=column)
    with pytest.raises(
        DataValidationError, match=pattern(f"'{column}'", "not found", "must exist")
    ):
        SurvivalData.from_users(df, **USER_KWARGS)


@pytest.mark.parametrize("column", ["duration", "churned", "cohort", "entry", "plan", "user"])
def test_from_users_missing_value(column):
    df = users()
    df[column] = df[column].astype(object)
    df.loc[2, column] = np.nan if column != "plan" else None
    with pytest.raises(
        DataValidationError, match=pattern(f"'{column}'", "1 missing value", "rows [2]", "NaN")
    ):
        SurvivalData.from_users(df, **USER_KWARGS)


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("duration", -1, ["'duration'", "negative", "-1", "rows [1]", ">= 0"]),
        ("entry", -2, ["'entry'", "negative", "-2", "rows [1]", ">= 0"]),
        ("duration", 2.5, ["'duration'", "non-integer", "2.5", "rows [1]", "whole number"]),
        ("duration", np.inf, ["'duration'", "non-integer", "inf", "rows [1]", "whole number"]),
        ("entry", 0.5, ["'entry'", "non-integer", "0.5", "rows [1]", "whole number"]),
        ("duration", "two", ["'duration'", "non-numeric", "'two'", "rows [1]", "whole number"]),
        ("churned", 2, ["'churned'", "[2]", "rows [1]", "True/False or 1/0"]),
        ("churned", "yes", ["'churned'", "['yes']", "rows [1]", "True/False or 1/0"]),
    ],
)
def test_from_users_bad_value(column, value, expected):
    df = users()
    df[column] = df[column].astype(object)
    df.loc[1, column] = value
    if not isinstance(value, str):
        df[column] = pd.to_numeric(df[column])
    with pytest.raises(DataValidationError, match=pattern(*expected)):
        SurvivalData.from_users(df, **USER_KWARGS)


def test_from_users_string_durations_are_not_numbers():
    df = users().assign(duration=["1", "2", "3", "4"])
    with pytest.raises(
        DataValidationError, match=pattern("'duration'", "non-numeric", "'1'", "whole number")
    ):
        SurvivalData.from_users(df, **USER_KWARGS)


def test_from_users_object_column_of_numbers_is_accepted():
    df = users().assign(duration=pd.Series([1, 2, 3, 4], dtype=object))
    data = SurvivalData.from_users(df, **USER_KWARGS)
    np.testing.assert_array_equal(data.users["duration"], [1, 2, 3, 4])


def test_from_users_churned_at_duration_zero():
    df = users()
    df.loc[2, ["duration", "churned"]] = [0, True]
    with pytest.raises(
        DataValidationError, match=pattern("'duration'", "is 0", "churned", "rows [2]", "period 1")
    ):
        SurvivalData.from_users(df, **USER_KWARGS)


def test_from_users_entry_after_duration():
    df = users()
    df.loc[1, "entry"] = 5  # censored at 2, entered at 5
    with pytest.raises(
        DataValidationError, match=pattern("'entry'", "'duration'", "rows [1]", "[5]", "entry <=")
    ):
        SurvivalData.from_users(df, **USER_KWARGS)


def test_from_users_churned_on_entry():
    df = users()
    df.loc[2, "entry"] = 3  # churned at 3
    with pytest.raises(
        DataValidationError,
        match=pattern("'entry'", "'duration'", "churned", "rows [2]", "[3]", "entry < duration"),
    ):
        SurvivalData.from_users(df, **USER_KWARGS)


def test_from_users_censored_on_entry_is_allowed():
    df = users()
    df.loc[1, "entry"] = 2  # censored at 2, first seen at 2
    assert SurvivalData.from_users(df, **USER_KWARGS).n_users == 4


def test_from_users_duplicate_user_ids():
    df = users()
    df.loc[3, "user"] = 101
    with pytest.raises(
        DataValidationError, match=pattern("'user'", "duplicated", "101", "one row per user")
    ):
        SurvivalData.from_users(df, **USER_KWARGS)


def test_from_users_duplicate_index_without_user_column():
    df = users().set_index(pd.Index([7, 8, 7, 9]))
    kwargs = {k: v for k, v in USER_KWARGS.items() if k != "user"}
    with pytest.raises(
        DataValidationError, match=pattern("index", "duplicated", "[7]", "one row per user")
    ):
        SurvivalData.from_users(df, **kwargs)


def test_from_users_empty_table():
    with pytest.raises(DataValidationError, match=pattern("users table", "no rows", "at least")):
        SurvivalData.from_users(users().iloc[:0], **USER_KWARGS)


@pytest.mark.parametrize(
    ("column", "categories", "unused"),
    [("cohort", [0, 1, 2], "[2]"), ("plan", ["basic", "gold", "premium"], "['gold']")],
)
def test_from_users_unused_category(column, categories, unused):
    df = users()
    df[column] = pd.Categorical(df[column], categories=categories)
    with pytest.raises(
        DataValidationError, match=pattern(f"'{column}'", unused, "no rows", "at least one user")
    ):
        SurvivalData.from_users(df, **USER_KWARGS)


@pytest.mark.parametrize(
    "table", [users().to_dict(orient="list"), users().to_numpy(), users()["duration"]]
)
def test_from_users_not_a_dataframe(table):
    with pytest.raises(
        DataValidationError, match=pattern("DataFrame", type(table).__name__, "rule")
    ):
        SurvivalData.from_users(table, **USER_KWARGS)


# -- from_survivors ---------------------------------------------------------------------

SURVIVOR_KWARGS = {"survivors": "survivors", "period": "period", "group": "segment"}


def survivors() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "segment": ["a", "a", "a", "b", "b", "b"],
            "period": [0, 1, 2, 0, 1, 2],
            "survivors": [100, 60, 40, 50, 45, 30],
        }
    )


def test_valid_survivors_are_accepted():
    assert SurvivalData.from_survivors(survivors(), **SURVIVOR_KWARGS).n_users == 150


@pytest.mark.parametrize("column", ["survivors", "period", "segment"])
def test_from_survivors_missing_column(column):
    table = survivors().drop(columns=column)
    with pytest.raises(
        DataValidationError, match=pattern(f"'{column}'", "not found", "must exist")
    ):
        SurvivalData.from_survivors(table, **SURVIVOR_KWARGS)


@pytest.mark.parametrize("column", ["survivors", "period", "segment"])
def test_from_survivors_missing_value(column):
    table = survivors()
    table[column] = table[column].astype(object)
    table.loc[4, column] = np.nan
    with pytest.raises(
        DataValidationError, match=pattern(f"'{column}'", "1 missing value", "rows [4]", "NaN")
    ):
        SurvivalData.from_survivors(table, **SURVIVOR_KWARGS)


def test_from_survivors_increase():
    table = survivors()
    table.loc[5, "survivors"] = 47  # b: 50, 45, 47
    with pytest.raises(
        DataValidationError,
        match=pattern(
            "'survivors'", "group 'b'", "45", "period 1", "47", "period 2", "never increase"
        ),
    ):
        SurvivalData.from_survivors(table, **SURVIVOR_KWARGS)


def test_from_survivors_non_consecutive_periods():
    table = survivors()
    table.loc[5, "period"] = 3  # b: 0, 1, 3
    with pytest.raises(
        DataValidationError,
        match=pattern("'period'", "group 'b'", "from 1 to 3", "consecutive"),
    ):
        SurvivalData.from_survivors(table, **SURVIVOR_KWARGS)


def test_from_survivors_duplicate_group_period():
    table = pd.concat([survivors(), survivors().iloc[[1]]], ignore_index=True)
    with pytest.raises(
        DataValidationError,
        match=pattern("'period'", "'segment'", "duplicated", "(1, 'a')", "one row per"),
    ):
        SurvivalData.from_survivors(table, **SURVIVOR_KWARGS)


def test_from_survivors_duplicate_period_without_group():
    table = survivors().query("segment == 'a'")
    table = pd.concat([table, table.iloc[[2]]], ignore_index=True)
    with pytest.raises(
        DataValidationError, match=pattern("'period'", "duplicated", "(2,)", "one row per")
    ):
        SurvivalData.from_survivors(table, survivors="survivors", period="period")


def test_from_survivors_empty_first_period():
    table = survivors()
    table.loc[3:5, "survivors"] = 0
    with pytest.raises(
        DataValidationError,
        match=pattern("'survivors'", "group 'b'", "is 0", "period 0", "at least one user"),
    ):
        SurvivalData.from_survivors(table, **SURVIVOR_KWARGS)


def test_from_survivors_negative():
    table = survivors()
    table.loc[5, "survivors"] = -5
    with pytest.raises(
        DataValidationError, match=pattern("'survivors'", "negative", "-5", "rows [5]", ">= 0")
    ):
        SurvivalData.from_survivors(table, **SURVIVOR_KWARGS)


def test_from_survivors_non_integer():
    table = survivors().astype({"survivors": float})
    table.loc[4, "survivors"] = 44.5
    with pytest.raises(
        DataValidationError, match=pattern("'survivors'", "non-integer", "44.5", "whole number")
    ):
        SurvivalData.from_survivors(table, **SURVIVOR_KWARGS)


def test_from_survivors_unused_category():
    table = survivors()
    table["segment"] = pd.Categorical(table["segment"], categories=["a", "b", "c"])
    with pytest.raises(
        DataValidationError, match=pattern("'segment'", "['c']", "no rows", "at least one user")
    ):
        SurvivalData.from_survivors(table, **SURVIVOR_KWARGS)


def test_from_survivors_empty_table():
    with pytest.raises(DataValidationError, match=pattern("survivors table", "no rows")):
        SurvivalData.from_survivors(survivors().iloc[:0], **SURVIVOR_KWARGS)


# -- with_covariates --------------------------------------------------------------------


def test_with_covariates_unknown_column():
    data = SurvivalData.from_users(users(), **USER_KWARGS)
    with pytest.raises(
        DataValidationError, match=pattern("'region'", "not in the data", "['plan']")
    ):
        data.with_covariates(["plan", "region"])


# -- prediction time --------------------------------------------------------------------


@pytest.fixture(scope="module")
def plan_model() -> bl.BetaGeometric:
    """A MAP fit on users with a categorical covariate ``plan`` (basic/premium)."""
    df = pd.DataFrame(
        {
            "duration": [1, 2, 3, 4, 2, 5, 1, 3, 4, 4],
            "churned": [1, 0, 1, 0, 1, 1, 0, 0, 1, 0],
            "plan": ["basic", "premium"] * 5,
        }
    )
    data = SurvivalData.from_users(df, "duration", "churned", covariates=["plan"])
    return bl.BetaGeometric().fit(data, method="map", random_seed=0)


def test_prediction_with_known_level(plan_model):
    curve = plan_model.survival(horizon=3, covariates={"plan": "premium"})
    assert curve.sizes == {"chain": 1, "draw": 1, "group": 1, "period": 4}
    assert np.all(np.isfinite(curve.values))


@pytest.mark.parametrize("method", ["survival", "factory", "retention"])
def test_prediction_unknown_level(plan_model, method):
    with pytest.raises(
        DataValidationError,
        match=pattern("'plan'", "unknown level", "'platinum'", "['basic', 'premium']"),
    ):
        getattr(plan_model, method)(covariates={"plan": "platinum"})


@pytest.mark.parametrize("method", ["survival", "factory"])
def test_prediction_unknown_covariate(plan_model, method):
    with pytest.raises(
        DataValidationError,
        match=pattern("'region'", "not in the fitted model", "['plan']"),
    ):
        getattr(plan_model, method)(covariates={"region": "eu"})


def test_infinite_numeric_covariate_is_rejected():
    users = pd.DataFrame(
        {"duration": [1, 2, 3], "churned": [True, False, True], "score": [0.5, np.inf, 1.0]}
    )
    with pytest.raises(DataValidationError, match=r"'score'.*inf.*finite"):
        SurvivalData.from_users(users, duration="duration", churned="churned", covariates=["score"])


def test_a_column_cannot_be_both_cohort_and_covariate():
    users = pd.DataFrame({"duration": [1, 2], "churned": [True, False], "cohort": [0, 1]})
    with pytest.raises(DataValidationError, match=r"'cohort'.*more than one role"):
        SurvivalData.from_users(
            users, duration="duration", churned="churned", cohort="cohort", covariates=["cohort"]
        )
