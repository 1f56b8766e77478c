"""Time and peak memory of lifetime-value scoring per user, for both model families.

What is measured is the production of ``LTVResult.summary(by="user")``: the ``model.ltv(...)``
call plus ``.summary(by="user")`` (one row per user), at a horizon of 60 monthly periods and
a 1% monthly discount rate, with up to 1000 posterior draws. Values are computed once per
*unit* (users with identical sufficient statistics) and the per-user table is a lookup of
the units' summaries, so memory should stay far below the users × draws array of per-draw
values a naive implementation would allocate; that array's size (users × draws × 8 bytes)
is printed next to every measured peak.

**sBG** (:class:`bayesltv.BetaGeometric`): data from :func:`sbg_scaling.simulate` (12
monthly cohorts, covariate ``plan`` with 3 levels, 10% left-truncated users), aggregated by
``SurvivalData.from_users`` and fitted with NUTS (``cohort_prior="random_walk"``, 4 chains ×
250 draws, 500 tuning steps: 1000 posterior draws). Fitting sees only counts per (cell,
period), so its cost is flat in the users. Scored with ``value=9.99``. A unit is a (cell,
tenure) of active users: 36 here at any size (12 cohorts × 3 plans; a cohort's active users
all share the tenure at the calendar cut-off).

**Multi-state** (:class:`bayesltv.DirichletMarkov`): :func:`bayesltv.datasets.simulate_streaming`
with 24 monthly cohorts of users/24 users each (cohort ``c`` is observed for 24 − ``c``
months: about 11 panel rows per user), all 7 states (``deleted`` absorbing), groups =
cohorts, covariate ``country``, built by ``StateSequences.from_panel`` and fitted with ADVI
(``--vi-iterations`` iterations, then 1000 draws from the approximation). NUTS is not used:
on this model it took about 21 minutes at 10⁵ users for 2 chains × 500 draws
(``benchmarks/multistate_scaling.py``), far too slow at 10⁶. Scored with rewards premium
10.99, duo 14.99, family 17.99, student 5.99, free 0.3. A unit is the users sharing cell,
current state and whole transition-count matrix: their number keeps growing with the users.
Each unit is valued by Monte Carlo over *lanes* (units × draws × dice per draw; each lane
draws its own dice and propagates 60 periods), so the cost is lanes × (µs per lane): the
1000-draw rows stop at 10⁵ users and the 10⁶ row uses fewer draws (``USERS:DRAWS`` in
``--multistate-users``); the verdict extrapolates the measured µs per lane to 10⁶ users ×
1000 draws.

Each (family, size) runs in a fresh subprocess, which simulates, builds the data, fits
(``fit s``, everything included), scores twice with one posterior draw (the first call loads
the compiled lane kernel; ``warm-up s`` is the second: the step's fixed costs plus one lane
per unit and die), then the timed step ``ltv + summary s`` (wall time of
``model.ltv(...)`` and ``.summary(by="user")``; ``CPU s`` is the process CPU time over all
threads and ``load`` the 1-minute load average right after it: above the worker's own threads
means other processes shared the cores and the wall time is inflated). Memory of that step,
in the worker:

- ``RSS before MiB``: resident set size just before the step (data, fitted model, posterior);
- ``peak RSS MiB``: the kernel's high-water RSS (``VmHWM``) during the step, reset just before
  it through ``/proc/self/clear_refs``; where that is not possible, the highest RSS polled
  every 5 ms (:class:`_memory.PeakMemory`), a lower bound;
- ``Δ peak MiB``: ``peak RSS`` − ``RSS before``: what the scoring step itself added at its
  peak, including the returned per-user table (``table MiB``);
- ``tracemalloc MiB``: peak of Python/NumPy allocations during an untimed repeat of the step
  under :mod:`tracemalloc` (only where the timed step took under 60 s; buffers allocated by
  the compiled lane kernel are not traced);
- ``naive MiB``: users × draws used × 8 bytes.

``µs/lane`` is ``ltv + summary s`` divided by the lanes (an upper bound on the lane cost: the
fixed costs and the per-user table are included); ``marginal µs/lane`` subtracts the warm-up
from both the time and the lanes (the cost of one more lane; meaningful where the lanes
dominate, i.e. at the larger sizes), and is what the extrapolation uses; ``CPU µs/lane`` is the
same in process CPU time over all threads (about equal to the wall time when other processes
hold the other cores, or when the single-threaded NumPy work around the lane kernel
dominates).

Run from the repository root (about 13 minutes on 2 shared cores with the defaults, most of it
the multi-state ADVI fits and the 10⁵-user multi-state scoring)::

    .venv/bin/python benchmarks/ltv_scoring.py
    .venv/bin/python benchmarks/ltv_scoring.py --family sbg --sbg-users 1e6
    .venv/bin/python benchmarks/ltv_scoring.py --family multistate --multistate-users 1e4,1e6:50

A markdown table per family is printed, then a verdict on the target (scoring 10⁶ users with
1000 draws in seconds, memory far below the naive array). Each row is also written to stderr
as soon as it is done, so an interrupted run keeps the finished rows.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import subprocess
import sys
import time
import tracemalloc
import warnings
from collections.abc import Sequence

import numpy as np
from _memory import PeakMemory, peak_rss_self
from _report import markdown_table, worker_result
from sbg_scaling import aggregate as sbg_aggregate
from sbg_scaling import fit as sbg_fit
from sbg_scaling import simulate as sbg_simulate

HORIZON = 60
DISCOUNT_RATE = 0.01
SBG_VALUE = 9.99
REWARDS = {"premium": 10.99, "duo": 14.99, "family": 17.99, "student": 5.99, "free": 0.3}
MS_COHORTS = 24
POSTERIOR_DRAWS = 1000
TARGET_USERS = 1_000_000
SECONDS_TARGET = 60.0  # "seconds": at most a minute
FAR_BELOW = 10.0  # "far below": an order of magnitude
TRACEMALLOC_MAX_SECONDS = 60.0
POLL_SECONDS = 0.005
RESULT_PREFIX = "LTV_SCORING_RESULT "
MIB = 2**20

COMMON_COLUMNS = [
    ("users", "n_users", "{:,}"),
    ("units", "n_units", "{:,}"),
    ("draws used", "draws_used", "{:,}"),
]
MEMORY_COLUMNS = [
    ("warm-up s", "warmup_s", "{:.1f}"),
    ("ltv + summary s", "score_s", "{:.2f}"),
    ("CPU s", "cpu_s", "{:.1f}"),
    ("load", "load", "{:.1f}"),
    ("RSS before MiB", "rss_before_mib", "{:,.0f}"),
    ("peak RSS MiB", "peak_rss_mib", "{:,.0f}"),
    ("Δ peak MiB", "delta_peak_mib", "{:,.0f}"),
    ("table MiB", "table_mib", "{:,.0f}"),
    ("tracemalloc MiB", "tracemalloc_mib", "{:,.0f}"),
    ("naive MiB", "naive_mib", "{:,.0f}"),
    ("naive / Δ peak", "naive_ratio", "{:,.1f}×"),
]
SBG_COLUMNS = [
    *COMMON_COLUMNS,
    ("fit", "fit_method", "{}"),
    ("fit s", "fit_s", "{:.1f}"),
    *MEMORY_COLUMNS,
]
MS_COLUMNS = [
    *COMMON_COLUMNS,
    ("dice/draw", "dice_per_draw", "{}"),
    ("lanes", "lanes", "{:,}"),
    ("fit", "fit_method", "{}"),
    ("fit s", "fit_s", "{:.1f}"),
    *MEMORY_COLUMNS,
    ("µs/lane", "us_per_lane", "{:.2f}"),
    ("marginal µs/lane", "marginal_us_per_lane", "{:.2f}"),
    ("CPU µs/lane", "cpu_us_per_lane", "{:.2f}"),
]


def parse_sizes(text: str) -> list[int]:
    """``"1e4,1e5"`` → ``[10000, 100000]``."""
    return [size for size, _ in parse_runs(text)]


def parse_runs(text: str) -> list[tuple[int, int]]:
    """``"1e4,1e6:100"`` → ``[(10000, 1000), (1000000, 100)]`` (users, draws used)."""
    runs = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            users, _, draws = part.partition(":")
            runs.append((int(float(users)), int(float(draws)) if draws else POSTERIOR_DRAWS))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a list of USERS[:DRAWS]: {text!r}") from error
    if any(users < MS_COHORTS or draws < 1 for users, draws in runs):
        raise argparse.ArgumentTypeError(f"need ≥ {MS_COHORTS} users and ≥ 1 draw: {text!r}")
    return runs


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", choices=["sbg", "multistate", "both"], default="both")
    parser.add_argument(
        "--sbg-users",
        type=parse_sizes,
        default=parse_sizes("1e4,1e5,1e6"),
        help='comma-separated sBG sizes (default "1e4,1e5,1e6"; 1000 draws each)',
    )
    parser.add_argument(
        "--multistate-users",
        type=parse_runs,
        default=parse_runs("1e4,1e5,1e6:100"),
        help="comma-separated multi-state USERS[:DRAWS], DRAWS the posterior draws used "
        '(max_draws; default 1000) (default "1e4,1e5,1e6:100")',
    )
    parser.add_argument(
        "--dice-per-draw", type=int, default=1, help="multi-state own dice per draw (default 1)"
    )
    parser.add_argument("--draws", type=int, default=250, help="sBG NUTS draws per chain")
    parser.add_argument("--tune", type=int, default=500, help="sBG NUTS tuning steps")
    parser.add_argument("--chains", type=int, default=4, help="sBG NUTS chains")
    parser.add_argument(
        "--vi-iterations",
        type=int,
        default=10_000,
        help="multi-state ADVI iterations (default 10 000; the fit's own default is 20 000, "
        "which only lengthens the fit, not the scoring)",
    )
    parser.add_argument("--seed", type=int, default=2024, help="simulation and fit seed")
    parser.add_argument("--json", metavar="PATH", help="also write every row's figures as JSON")
    parser.add_argument("--worker", metavar="FAMILY:USERS:DRAWS", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- one (family, size) (worker subprocess) ----------------------------------------------


def progress(message: str) -> None:
    print(f"    {message}", file=sys.stderr, flush=True)


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water RSS of this process (Linux ≥ 4.0); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
    except OSError:
        return False
    return True


def kernel_peak_rss() -> int:
    """``VmHWM`` of this process in bytes (0 where ``/proc`` is unavailable)."""
    try:
        with open("/proc/self/status") as file:
            for line in file:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def warm_up(score) -> tuple[float, float]:
    """Score twice with one posterior draw; wall and CPU seconds of the second call.

    The first call loads (or compiles) the lane kernel; the second costs what the timed step
    costs apart from its extra draws: the fixed costs plus one lane per unit and die.
    """
    score(max_draws=1)
    start, start_cpu = time.perf_counter(), time.process_time()
    score(max_draws=1)
    return time.perf_counter() - start, time.process_time() - start_cpu


def measure_step(score) -> dict:
    """Time and memory of ``score()`` (returns the LTVResult and its per-user table)."""
    gc.collect()
    resettable = reset_peak_rss()
    with PeakMemory(os.getpid(), POLL_SECONDS, tree=False) as memory:
        rss_before = memory.current()
        start, start_cpu = time.perf_counter(), time.process_time()
        value, table = score()
        score_s = time.perf_counter() - start
        cpu_s = time.process_time() - start_cpu
    polled = max(memory.peak.values())
    peak = max(kernel_peak_rss(), polled) if resettable else polled
    result = {
        "n_units": len(value.units),
        "n_rows": len(table),
        "draws_used": len(value.samples),
        "score_s": score_s,
        "cpu_s": cpu_s,
        "load": os.getloadavg()[0],
        "rss_before_mib": rss_before / MIB,
        "peak_rss_mib": peak / MIB,
        "delta_peak_mib": (peak - rss_before) / MIB,
        "peak_source": "VmHWM" if resettable else "polled",
        "table_mib": table.memory_usage(index=True, deep=False).sum() / MIB,
    }
    del value, table
    if score_s < TRACEMALLOC_MAX_SECONDS:
        gc.collect()
        tracemalloc.start()
        score()
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result["tracemalloc_mib"] = traced_peak / MIB
    return result


def measure_sbg(n_users: int, draws_used: int, args: argparse.Namespace) -> dict:
    progress(f"sBG {n_users:,} users: simulate + aggregate")
    data = sbg_aggregate(sbg_simulate(n_users, args.seed))
    progress(f"sBG {n_users:,} users: NUTS fit")
    start = time.perf_counter()
    model = sbg_fit(data, args.draws, args.tune, args.chains, args.seed)
    fit_s = time.perf_counter() - start

    def score(max_draws=draws_used):
        value = model.ltv(
            data, value=SBG_VALUE, discount_rate=DISCOUNT_RATE, horizon=HORIZON, max_draws=max_draws
        )
        return value, value.summary(by="user")

    progress(f"sBG {n_users:,} users: scoring")
    warmup_s, _ = warm_up(score)
    result = measure_step(score)
    result.update(
        n_users=data.n_users,
        fit_method=f"NUTS {args.chains}×{args.draws}",
        fit_s=fit_s,
        warmup_s=warmup_s,
        problems=[f"NUTS: {problem}" for problem in model.convergence.problems],
    )
    return result


def measure_multistate(n_users: int, draws_used: int, args: argparse.Namespace) -> dict:
    from multistate_scaling import fit

    import bayesltv as bl
    from bayesltv.errors import ConvergenceWarning
    from bayesltv.value import multistate as multistate_value

    progress(f"multi-state {n_users:,} users: simulate + from_panel")
    per_cohort = np.full(MS_COHORTS, n_users // MS_COHORTS)
    per_cohort[: n_users % MS_COHORTS] += 1
    panel = bl.datasets.simulate_streaming(
        users_per_cohort=per_cohort, n_cohorts=MS_COHORTS, random_seed=args.seed
    ).panel
    panel_rows = len(panel)
    data = bl.StateSequences.from_panel(
        panel,
        user="user",
        period="month",
        state="state",
        absorbing=["deleted"],
        cohort="cohort",
        covariates=["country"],
    )
    del panel
    progress(f"multi-state {n_users:,} users: ADVI fit")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        model = fit(
            data, "advi", args.seed, draws=POSTERIOR_DRAWS, vi_iterations=args.vi_iterations
        )
        fit_s = time.perf_counter() - start
    problems = [f"ADVI: {w.message}" for w in caught if issubclass(w.category, ConvergenceWarning)]

    def score(max_draws=draws_used):
        value = model.ltv(
            data,
            rewards=REWARDS,
            discount_rate=DISCOUNT_RATE,
            horizon=HORIZON,
            dice_per_draw=args.dice_per_draw,
            max_draws=max_draws,
            random_seed=0,
        )
        return value, value.summary(by="user")

    progress(f"multi-state {n_users:,} users: scoring ({draws_used} draws)")
    warmup_s, warmup_cpu_s = warm_up(score)
    result = measure_step(score)
    lanes = result["n_units"] * result["draws_used"] * args.dice_per_draw
    extra_lanes = max(lanes - result["n_units"] * args.dice_per_draw, 1)
    result.update(
        n_users=data.n_users,
        panel_rows=panel_rows,
        n_patterns=len(data.patterns),
        dice_per_draw=args.dice_per_draw,
        lanes=lanes,
        us_per_lane=result["score_s"] / lanes * 1e6,
        marginal_us_per_lane=(result["score_s"] - warmup_s) / extra_lanes * 1e6,
        cpu_us_per_lane=(result["cpu_s"] - warmup_cpu_s) / extra_lanes * 1e6,
        fit_method=f"ADVI {args.vi_iterations:,} it.",
        fit_s=fit_s,
        warmup_s=warmup_s,
        problems=problems,
    )
    result["lanes_per_chunk"] = multistate_value.LANES_PER_CHUNK
    try:
        import numba

        result["threads"] = numba.get_num_threads()
    except ImportError:
        result["threads"] = 1
    return result


def worker(args: argparse.Namespace) -> None:
    """Measure one (family, size) and print the figures as one JSON line on stdout."""
    import bayesltv  # noqa: F401  (imported before timing; PyMC sets its log level on import)

    logging.getLogger("pymc").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")  # problems are reported through the result's "problems"
    family, users, draws = args.worker.split(":")
    measure = measure_sbg if family == "sbg" else measure_multistate
    result = measure(int(users), int(draws), args)
    result.update(
        family=family,
        requested=int(users),
        naive_mib=result["n_users"] * result["draws_used"] * 8 / MIB,
        worker_peak_rss_mib=peak_rss_self() / MIB,
    )
    result["naive_ratio"] = result["naive_mib"] / max(result["delta_peak_mib"], 1e-9)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# -- driver ------------------------------------------------------------------------------


def run(family: str, n_users: int, draws: int, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        f"{family}:{n_users}:{draws}",
        "--dice-per-draw",
        str(args.dice_per_draw),
        "--draws",
        str(args.draws),
        "--tune",
        str(args.tune),
        "--chains",
        str(args.chains),
        "--vi-iterations",
        str(args.vi_iterations),
        "--seed",
        str(args.seed),
    ]
    start = time.perf_counter()
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    what = f"{family} worker for {n_users:,} users"
    result = worker_result(completed.stdout.splitlines(), completed.returncode, RESULT_PREFIX, what)
    result["worker_s"] = time.perf_counter() - start
    return result


def memory_verdict(result: dict, draws: int) -> tuple[float, str]:
    """How far below the naive users × ``draws`` × 8 B array the step's peak stayed."""
    naive = result["n_users"] * draws * 8 / MIB
    ratio = naive / max(result["delta_peak_mib"], 1e-9)
    return ratio, (
        f"the step's peak added {result['delta_peak_mib']:,.0f} MiB to the process (peak "
        f"{result['peak_rss_mib']:,.0f} MiB, {result['table_mib']:,.0f} MiB of it the returned "
        f"table) against {naive:,.0f} MiB for a naive {result['n_users']:,} users × {draws:,} "
        f"draws × 8 B array ({ratio:,.1f}× less)"
    )


def sbg_verdict(results: list[dict]) -> str:
    large = max(results, key=lambda r: r["requested"])
    full = large["requested"] >= TARGET_USERS and large["draws_used"] >= POSTERIOR_DRAWS
    time_met = large["score_s"] <= SECONDS_TARGET
    ratio, memory = memory_verdict(large, large["draws_used"])
    met = time_met and ratio >= FAR_BELOW and full
    return (
        f"sBG: target {'MET' if met else 'NOT met'}"
        + ("" if full else " (not measured at 10⁶ users × 1000 draws)")
        + f": at {large['n_users']:,} users ({large['requested']:,} simulated, the rest "
        f"left-truncated away) with {large['draws_used']:,} draws, ltv + summary(by='user') "
        f"took {large['score_s']:.2f} s over {large['n_units']:,} units (a unit per cell and "
        f"tenure), and {memory}."
    )


def multistate_verdict(results: list[dict], ltv_default_dice: int = 4) -> str:
    large = max(results, key=lambda r: (r["requested"], r["draws_used"]))
    units, dice = large["n_units"], large["dice_per_draw"]
    threads = large.get("threads", 1)

    def minutes(seconds: float) -> str:
        return f"{seconds:,.0f} s ({seconds / 60:.1f} min)"

    def estimate(us_per_lane: float, n_dice: int) -> float:
        return large["warmup_s"] + units * (POSTERIOR_DRAWS * n_dice - dice) * us_per_lane / 1e6

    if large["draws_used"] >= POSTERIOR_DRAWS:
        seconds = large["score_s"]
        timing = f"took {minutes(seconds)} (measured)"
    else:
        seconds = estimate(large["marginal_us_per_lane"], dice)
        timing = (
            f"would take about {minutes(seconds)} at the marginal "
            f"{large['marginal_us_per_lane']:.1f} µs per lane measured with "
            f"{large['draws_used']:,} draws ({large['cpu_us_per_lane']:.1f} CPU µs/lane; lane "
            f"kernel on {threads} threads, load {large['load']:.1f} on {os.cpu_count()} cores)"
        )
    if ltv_default_dice != dice:
        more = estimate(large["marginal_us_per_lane"], ltv_default_dice)
        timing += f", and about {minutes(more)} with ltv's default {ltv_default_dice} dice/draw"
    time_met = seconds <= SECONDS_TARGET
    # memory is bounded by the chunk, not the draws: the largest Δ peak of any row against the
    # naive array of the largest size at the target's draws
    worst = max(results, key=lambda r: r["delta_peak_mib"])
    naive = large["n_users"] * POSTERIOR_DRAWS * 8 / MIB
    ratio = naive / max(worst["delta_peak_mib"], 1e-9)
    full = any(r["draws_used"] >= POSTERIOR_DRAWS for r in results)
    evidence = ", ".join(
        f"{r['delta_peak_mib']:,.0f} MiB at {r['n_users']:,} users × {r['draws_used']:,} draws"
        for r in results
    )
    growth = ", ".join(f"{r['n_units']:,} at {r['n_users']:,}" for r in results)
    return (
        f"Multi-state: time target {'MET' if time_met else 'NOT met'}, memory target "
        f"{'MET' if ratio >= FAR_BELOW and full else 'NOT met'}"
        + ("" if large["requested"] >= TARGET_USERS else " (largest size below 10⁶ users)")
        + f". Scoring {large['n_users']:,} users ({units:,} units) with {POSTERIOR_DRAWS:,} "
        f"draws × {dice} dice {timing}: "
        + ("seconds" if time_met else "minutes, not seconds, because each unit is valued by")
        + (
            ""
            if time_met
            else " Monte Carlo over draws × dice lanes and the units (distinct cell, current "
            "state and transition counts) grow with the users"
        )
        + f" (units: {growth}). Lanes are scored in chunks of at most "
        f"{large.get('lanes_per_chunk', 0):,}, so once a step has more lanes than one chunk, "
        f"more draws add time, not memory (Δ peak {evidence}). The largest of these, "
        f"{worst['delta_peak_mib']:,.0f} MiB, is {ratio:,.1f}× below the {naive:,.0f} MiB of a "
        f"naive {large['n_users']:,} users × {POSTERIOR_DRAWS:,} draws × 8 B array; at "
        f"{large['n_users']:,} users the process peaked at {large['peak_rss_mib']:,.0f} MiB "
        f"({large['rss_before_mib']:,.0f} MiB before the step: data, model and posterior; "
        f"{large['table_mib']:,.0f} MiB the returned table)."
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker is not None:
        worker(args)
        return
    print(
        f"LTV scoring: ltv(...) + summary(by='user'), horizon {HORIZON}, discount rate "
        f"{DISCOUNT_RATE}, seed {args.seed}; {os.cpu_count()} CPUs; each row in a fresh "
        "process. Target: 10⁶ users × 1000 draws in seconds (≤ "
        f"{SECONDS_TARGET:.0f} s here), memory far below (≥ {FAR_BELOW:.0f}×) the naive "
        "users × draws × 8 B array.",
        flush=True,
    )
    plan = []
    if args.family in ("sbg", "both"):
        plan += [("sbg", n, POSTERIOR_DRAWS) for n in args.sbg_users]
    if args.family in ("multistate", "both"):
        plan += [("multistate", n, draws) for n, draws in args.multistate_users]
    results: dict[str, list[dict]] = {"sbg": [], "multistate": []}
    for family, n_users, draws in plan:
        print(f"  running {family} {n_users:,} users, {draws} draws ...", file=sys.stderr)
        result = run(family, n_users, draws, args)
        results[family].append(result)
        columns = SBG_COLUMNS if family == "sbg" else MS_COLUMNS
        row = markdown_table([result], columns).splitlines()[-1]
        print(f"  {row}  ({result['worker_s']:.0f} s)", file=sys.stderr, flush=True)
    verdicts = []
    if results["sbg"]:
        print(
            f"\n### sBG (BetaGeometric): NUTS {args.chains} chains × {args.draws} draws "
            f"({args.tune} tune), value {SBG_VALUE}\n"
        )
        print(markdown_table(results["sbg"], SBG_COLUMNS))
        verdicts.append(sbg_verdict(results["sbg"]))
    if results["multistate"]:
        threads = results["multistate"][0].get("threads", 1)
        print(
            f"\n### Multi-state (DirichletMarkov): {MS_COHORTS} cohorts, 7 states, ADVI "
            f"{args.vi_iterations:,} iterations then {POSTERIOR_DRAWS} draws (NUTS is far too "
            f"slow at 10⁶ users), dice/draw {args.dice_per_draw}, lane kernel on {threads} "
            "threads\n"
        )
        print(markdown_table(results["multistate"], MS_COLUMNS))
        verdicts.append(multistate_verdict(results["multistate"]))
    print("\nVerdict: " + " ".join(verdicts))
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=1)
    for family_results in results.values():
        for result in family_results:
            for problem in result["problems"]:
                print(f"  {result['family']} {result['requested']:,} users: {problem}")
            if result["peak_source"] != "VmHWM":
                print(f"  {result['family']} {result['requested']:,} users: peak RSS polled")


if __name__ == "__main__":
    main()
