"""The ``bayesltv`` command line.

``bayesltv example fader-hardie`` fits the embedded Fader & Hardie (2007) data on years
1..7, prints the parameter summary, projects survival and retention over years 8..12
with posterior intervals next to the held-out truth, and values the customers still
active (expected and predictive lifetime value per segment and in total).

``bayesltv example streaming`` fits the multi-state model to the default simulated
streaming panel, prints the population transition matrix, a new user's projected plan
occupancy with intervals, the users' lifetime value by current plan and the value of an
upgrade from free to premium.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import pandas as pd

from bayesltv.data import StateSequences, SurvivalData
from bayesltv.datasets import fader_hardie, simulate_streaming
from bayesltv.models import BetaGeometric, DirichletMarkov
from bayesltv.models.base import METHODS
from bayesltv.value import LTVResult, per_period_rate

#: Monthly prices of the streaming example's plans (free users bring a little ad revenue).
STREAMING_PRICES = {"premium": 10.99, "duo": 14.99, "family": 17.99, "student": 5.99, "free": 0.3}


def _interval_table(draws, hdi_prob: float, name: str) -> pd.DataFrame:
    """Median and equal-tailed interval per (group, period) of a (chain, draw, ...) array."""
    tail = (1 - hdi_prob) / 2
    quantiles = draws.quantile([tail, 0.5, 1 - tail], dim=("chain", "draw"))
    table = quantiles.to_series().unstack("quantile")
    table.columns = [f"{name}_low", f"{name}_median", f"{name}_high"]
    return table


def _print_value(result: LTVResult, by: str, title: str) -> None:
    """Print a value summary by ``by`` and in total, both layers with their intervals."""
    table = pd.concat([result.summary(by=by), result.summary(by="total")])
    print(f"\n{title}")
    print(table.round(1).to_string())


def example_fader_hardie(args: argparse.Namespace) -> int:
    table = fader_hardie()
    fit_table = table[table["period"] <= args.fit_through]
    data = SurvivalData.from_survivors(
        fit_table, survivors="survivors", period="period", group="segment"
    )
    print(
        f"Fader & Hardie (2007): {data.n_users} customers in {data.groups.size} segments, "
        f"fitted on years 1..{args.fit_through} with method={args.method!r}\n"
    )
    model = BetaGeometric(cohort_prior="independent").fit(
        data,
        method=args.method,
        draws=args.draws,
        tune=args.draws,
        chains=args.chains,
        random_seed=args.seed,
    )
    with pd.option_context("display.width", 120, "display.precision", 3):
        print("Parameters (baseline factory per segment):")
        print(model.summary(hdi_prob=args.interval))
        if not model.convergence.ok:
            print("\nConvergence problems:\n- " + "\n- ".join(model.convergence.problems))

        horizon = int(table["period"].max())
        survival = model.survival(horizon=horizon).sel(period=slice(args.fit_through + 1, None))
        projected = _interval_table(survival, args.interval, "survival")
        actual = table.set_index(["segment", "period"])["survivors"]
        first = table[table["period"] == 0].set_index("segment")["survivors"]
        projected["actual"] = [
            actual.get((g, p), float("nan")) / first[g] for g, p in projected.index
        ]
        percent = round(100 * args.interval)
        print(f"\nProjected survival beyond the fit, {percent}% equal-tailed intervals, vs actual:")
        print(projected)

        retention = _interval_table(
            model.retention(horizon=horizon).sel(period=slice(args.fit_through + 1, None)),
            args.interval,
            "retention",
        )
        print(f"\nProjected retention r(t) = S(t)/S(t-1), with {percent}% equal-tailed intervals:")
        print(retention)

        value = model.ltv(
            data,
            value=args.value,
            discount_rate=args.discount,
            horizon=None,
            hdi_prob=args.interval,
        )
        _print_value(
            value,
            "group",
            f"Residual lifetime value of the customers active at year {args.fit_through} "
            f"({args.value:g} per year, {100 * args.discount:g}% yearly discount, infinite "
            f"horizon), {percent}% HDIs; expected = factory uncertainty only, predictive = "
            "also each customer's own lifetime:",
        )
    return 0


def example_streaming(args: argparse.Namespace) -> int:
    simulation = simulate_streaming(random_seed=args.seed)
    data = StateSequences.from_panel(
        simulation.panel,
        user="user",
        period="month",
        state="state",
        absorbing=["deleted"],
        covariates=["country"],
    )
    print(
        f"Simulated streaming panel: {data.n_users} users, {len(simulation.panel)} user-months,"
        f" {len(data.patterns)} unique transition patterns; method={args.method!r}\n"
    )
    model = DirichletMarkov().fit(
        data,
        method=args.method,
        draws=args.draws,
        tune=args.draws,
        chains=args.chains,
        random_seed=args.seed,
    )
    if not model.convergence.ok:
        print("Convergence problems:\n- " + "\n- ".join(model.convergence.problems) + "\n")
    percent = round(100 * args.interval)
    with pd.option_context("display.width", 140, "display.precision", 3):
        matrix = model.transition_matrix().mean(("chain", "draw")).isel(group=0)
        print("Population mean monthly transition matrix (country SE, posterior mean):")
        print(matrix.to_pandas())
        occupancy = model.occupancy(horizon=args.horizon, random_seed=args.seed).isel(group=0)
        table = _interval_table(occupancy.sel(period=args.horizon), args.interval, "share")
        print(
            f"\nPlan shares of a new user after {args.horizon} months, "
            f"{percent}% equal-tailed intervals:"
        )
        print(table)

        monthly = per_period_rate(args.discount)
        settings = dict(discount_rate=monthly, horizon=60, max_draws=200, random_seed=args.seed)
        value = model.ltv(
            data, STREAMING_PRICES, dice_per_draw=2, hdi_prob=args.interval, **settings
        )
        _print_value(
            value,
            "state",
            f"Users' lifetime value over 60 months by current plan (prices {STREAMING_PRICES}, "
            f"{100 * args.discount:g}% yearly discount), {percent}% HDIs:",
        )
        move = model.value_of_move("free", "premium", STREAMING_PRICES, **settings)
        print("\nValue of moving a new user (baseline country) from free to premium now:")
        print(move.round(2).to_string())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bayesltv", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    example = commands.add_parser("example", help="run a worked example on embedded data")
    datasets = example.add_subparsers(dest="dataset", required=True)
    fh = datasets.add_parser("fader-hardie", help="Fader & Hardie (2007) retention data")
    fh.add_argument("--method", choices=METHODS, default="nuts")
    fh.add_argument("--draws", type=int, default=1000, help="draws (and tuning steps) per chain")
    fh.add_argument("--chains", type=int, default=4)
    fh.add_argument("--seed", type=int, default=2007)
    fh.add_argument("--fit-through", type=int, default=7, help="last year used for fitting")
    fh.add_argument("--interval", type=float, default=0.94, help="interval probability")
    fh.add_argument("--value", type=float, default=1.0, help="payment per customer and year")
    fh.add_argument("--discount", type=float, default=0.10, help="yearly discount rate")
    fh.set_defaults(run=example_fader_hardie)
    streaming = datasets.add_parser("streaming", help="simulated streaming-plan panel")
    streaming.add_argument("--method", choices=METHODS, default="advi")
    streaming.add_argument("--draws", type=int, default=1000)
    streaming.add_argument("--chains", type=int, default=4)
    streaming.add_argument("--seed", type=int, default=0)
    streaming.add_argument("--horizon", type=int, default=12, help="months to project")
    streaming.add_argument("--interval", type=float, default=0.94)
    streaming.add_argument("--discount", type=float, default=0.10, help="yearly discount rate")
    streaming.set_defaults(run=example_streaming)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
