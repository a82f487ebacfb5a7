"""Learning rates across training horizons: the grid's rule and how its exponent is measured.

The grid searches each size's rate at its smallest budget; longer runs train at the chosen rate
times (D / D_search)^-horizon. The exponent is measured, not guessed: `benchmarks/grid_rate_check.py`
trains a large-budget point at several rates, locates the best one (`rate_optimum`) and reports the
exponent that carries the *chosen* rate there (`implied_horizon`) — the anchor the rule uses.

Which recorded runs the rule still counts (`is_current`, `split_by_recipe`) is decided here too, so
the grid (reuse or train again), its report (fit or list apart) and the research protocol
(predict from, check) apply one rule.
"""

from __future__ import annotations

import math


def horizon_rate(chosen: float, search_budget: int, budget: int, horizon: float) -> float:
    """The rate a run of `budget` bytes trains at: the searched rate, lowered by (D / D_search)^-horizon
    for longer runs (3 significant digits, so names and comparisons are stable)."""
    if horizon == 0.0 or budget <= search_budget:
        return chosen
    return float(f"{chosen * (budget / search_budget) ** -horizon:.3g}")


def expected_rate(tuning: dict | None, size: str, budget: int, fallback: float | None = None) -> float | None:
    """The rate the grid's tuning record asks of `size` at `budget` (`fallback` when it has none)."""
    entry = (tuning or {}).get(size)
    if not entry or "chosen_lr" not in entry:
        return fallback
    return horizon_rate(float(entry["chosen_lr"]), int(entry["budget"]), budget, float(entry.get("horizon", 0.0)))


def is_current(run: dict, tuning: dict | None) -> bool:
    """Whether a recorded run still counts: trained by the ladder's current recipe for its size and,
    where `tuning` records a chosen rate for the size, at the rate that choice and the horizon rule
    give its budget. The one rule `Grid.measure` (reuse or train again) and the report (fit or list
    apart) both apply."""
    from ..models.ladder import rung

    return (run.get("recipe") == rung(run["size"]).recipe
            and run.get("lr") == expected_rate(tuning, run["size"], run["budget"], fallback=run.get("lr")))


def split_by_recipe(runs: list[dict], tuning: dict | None = None) -> tuple[list[dict], list[dict]]:
    """(current, stale) by `is_current`: the runs `Grid.measure` would reuse, and the rest."""
    current: list[dict] = []
    stale: list[dict] = []
    for r in runs:
        (current if is_current(r, tuning) else stale).append(r)
    return current, stale


def rate_optimum(scores: dict[float, float]) -> tuple[float, bool]:
    """The rate minimising validation bpb: the vertex of the parabola through the best rate and its
    two neighbours in log(rate) when the best is interior (True), else the best rate tried itself,
    an edge (False: the optimum may lie beyond it). Diverged runs (non-finite bpb) are left out."""
    scores = {r: v for r, v in scores.items() if math.isfinite(v)}
    if not scores:
        raise ValueError("no rates scored")
    rates = sorted(scores)
    i = min(range(len(rates)), key=lambda k: scores[rates[k]])
    if i in (0, len(rates) - 1):
        return rates[i], False
    x = [math.log(r) for r in rates[i - 1 : i + 2]]
    y = [scores[r] for r in rates[i - 1 : i + 2]]
    # vertex of the parabola through three points (x need not be evenly spaced)
    d1, d2 = (y[1] - y[0]) / (x[1] - x[0]), (y[2] - y[1]) / (x[2] - x[1])
    curvature = (d2 - d1) / (x[2] - x[0])
    if curvature <= 0:
        return rates[i], True
    vertex = (x[0] + x[1]) / 2 - d1 / (2 * curvature)
    return math.exp(min(max(vertex, x[0]), x[2])), True


def implied_horizon(search_rate: float, search_budget: float, rate: float, budget: float) -> float:
    """The exponent g with rate = search_rate x (budget / search_budget)^-g."""
    return math.log(search_rate / rate) / math.log(budget / search_budget)
