"""Backtest of the next-week forecast and the hotspot test on a SYNTHETIC multi-year history.

The history is made up here, not observed: 3 years of daily cases in a few hundred unit grids
(a lattice, so neighbours are the 8 touching cells) and several categories, each category with
its own level, weekday profile, yearly season and slow trend, each grid with its own share of
each category, week-to-week gamma noise (overdispersion), and planted hotspots (a week in which
one grid × category gets several times its usual cases) in the backtest weeks. Real cities
have holidays, campaigns, weather and reporting changes that this does not.

For each of the last ``--weeks`` weeks the model is fitted on everything before the week (the
same functions the API uses: ``fit_patterns`` + ``forecast_week``) and compared with the week's
real counts per grid × category, against two naive forecasts: "the same week last year"
(the 7 days 364 days earlier) and "last week". ``model`` is the expected count (the API's
``expected``); ``model_median`` the median of its predictive distribution, the point forecast
that absolute error rewards (with sparse series MAE favours forecasts of 0). The hotspot test
(``assess_series``: own 12 weeks and the touching grids, Benjamini-Hochberg at 5 %) runs on
every backtest week; planted hotspots found (recall) and other series flagged (false positive
rate) are counted.

    .venv/bin/python bench/forecast.py [--grids 300] [--categories 6] [--years 3] [--weeks 12]

Prints the figures and writes bench/results/forecast.json.
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta

import numpy as np
from record import record

from gridmgr.prevention.forecast import (
    INTERVAL,
    LOOKBACK_DAYS,
    fit_patterns,
    forecast_week,
    nb_interval,
    recency_weights,
)
from gridmgr.prevention.hotspots import WEEKS, assess_series

FIRST_DAY = date(2023, 11, 27)  # a Monday


def synthesise(grids: int, categories: int, years: int, backtest_weeks: int, seed: int):
    """Daily counts (G, C, T) with known patterns, and the planted (grid, category, week)."""
    rng = np.random.default_rng(seed)
    days = 7 * 52 * years
    dates = [FIRST_DAY + timedelta(days=i) for i in range(days)]
    weekday = np.array([d.weekday() for d in dates])
    doy = np.array([d.timetuple().tm_yday for d in dates], dtype=float)
    t_years = np.arange(days) / 365.25
    level = rng.uniform(2, 40, categories)  # city-wide cases a day
    profile = rng.uniform(0.4, 1.4, (categories, 7))
    profile /= profile.mean(axis=1, keepdims=True)
    amplitude = rng.uniform(0.1, 0.5, categories)
    phase = rng.uniform(0, 365, categories)
    trend = rng.uniform(-0.1, 0.15, categories)  # per year, log scale
    city = (level[:, None] * profile[:, weekday]
            * (1 + amplitude[:, None] * np.cos(2 * np.pi * (doy[None, :] - phase[:, None])
                                               / 365.25))
            * np.exp(trend[:, None] * t_years[None, :]))  # (C, T)
    busy = rng.lognormal(0, 0.7, grids)
    shares = rng.dirichlet(np.full(grids, 1.5), size=categories).T * busy[:, None]
    shares /= shares.sum(axis=0, keepdims=True)  # (G, C)
    weeks = days // 7
    noise = rng.gamma(10, 1 / 10, (grids, categories, weeks))  # week-to-week overdispersion
    mean = shares[:, :, None] * city[None, :, :] * np.repeat(noise, 7, axis=2)
    planted = []
    spike_mean = np.zeros_like(mean)
    for week in range(weeks - backtest_weeks, weeks):
        chosen = rng.choice(grids * categories, size=max(1, grids * categories // 200),
                            replace=False)
        for g, c in zip(*np.unravel_index(chosen, (grids, categories)), strict=True):
            usual = mean[g, c, 7 * week:7 * week + 7]
            spike_mean[g, c, 7 * week:7 * week + 7] = np.maximum(3.0 * usual, 6.0 / 7)
            planted.append((int(g), int(c), int(week)))
    counts = rng.poisson(mean + spike_mean)
    return counts, dates, planted


def lattice_neighbours(grids: int) -> list[np.ndarray]:
    """The 8 touching cells of each grid on a lattice about as wide as tall."""
    width = int(np.ceil(np.sqrt(grids)))
    out = []
    for g in range(grids):
        row, col = divmod(g, width)
        cells = [(row + dr) * width + col + dc for dr in (-1, 0, 1) for dc in (-1, 0, 1)
                 if (dr or dc) and 0 <= col + dc < width and row + dr >= 0
                 and (row + dr) * width + col + dc < grids]
        out.append(np.array(cells, dtype=int))
    return out


def backtest(counts: np.ndarray, dates: list[date], planted: list[tuple], weeks: int) -> dict:
    grids, categories, days = counts.shape
    total_weeks = days // 7
    weekly = counts.reshape(grids, categories, total_weeks, 7).sum(axis=3)
    neighbours = lattice_neighbours(grids)
    planted_set = set(planted)
    series_category = np.tile(np.arange(categories), grids)
    errors = {"model": [], "model_median": [], "same_week_last_year": [], "last_week": []}
    errors_clean = {k: [] for k in errors}
    inside, fit_seconds = [], []
    found = flagged_other = other = found_history = flagged_history = 0
    for week in range(total_weeks - weeks, total_weeks):
        start = 7 * week
        began = time.perf_counter()
        history = counts[:, :, :start]
        patterns = fit_patterns(history.sum(axis=0), dates[0])
        ages = start - np.arange(start) - 0.5
        weights = recency_weights(ages) * (ages <= LOOKBACK_DAYS)
        weighted = (history * weights).sum(axis=2)  # (G, C)
        grid_share = weighted.sum(axis=1) / weighted.sum()
        result = forecast_week(patterns, dates[start], series_category, weighted.ravel(),
                               weighted.sum(axis=0), np.repeat(grid_share, categories))
        fit_seconds.append(time.perf_counter() - began)
        actual = weekly[:, :, week].ravel()
        median = nb_interval(result.mean, result.size, (0.5, 0.5))[0]
        naive = {"model": result.mean, "model_median": median,
                 "same_week_last_year": weekly[:, :, week - 52].ravel(),
                 "last_week": weekly[:, :, week - 1].ravel()}
        clean = np.array([(g, c, week) not in planted_set for g in range(grids)
                          for c in range(categories)])
        for name, guess in naive.items():
            errors[name].append(np.abs(guess - actual))
            errors_clean[name].append(np.abs(guess - actual)[clean])
        inside.append(((actual >= result.low) & (actual <= result.high))[clean])

        past = weekly[:, :, week - WEEKS:week]  # (G, C, 12)
        current = weekly[:, :, week]
        neighbour_sum = np.stack([current[n].sum(axis=0) for n in neighbours])  # (G, C)
        neighbour_count = np.array([len(n) for n in neighbours])
        prior = np.broadcast_to(past.mean(axis=(0, 2)), (grids, categories))
        test = assess_series(current.ravel(), past.reshape(-1, WEEKS), neighbour_sum.ravel(),
                             np.repeat(neighbour_count, categories), prior.ravel())
        hot = test.hotspot.reshape(grids, categories)
        by_history = ((test.q_history <= 0.05) & (current.ravel() >= 3)).reshape(hot.shape)
        for g, c in zip(*np.nonzero(by_history), strict=True):
            if (int(g), int(c), week) in planted_set:
                found_history += 1
            else:
                flagged_history += 1
        for g, c in zip(*np.nonzero(hot), strict=True):
            if (int(g), int(c), week) in planted_set:
                found += 1
            else:
                flagged_other += 1
        other += grids * categories - sum(1 for p in planted if p[2] == week)
    mae = {k: round(float(np.concatenate(v).mean()), 4) for k, v in errors.items()}
    mae_clean = {k: round(float(np.concatenate(v).mean()), 4) for k, v in errors_clean.items()}
    return {
        "mae_per_grid_category_week": mae,
        "mae_without_planted_weeks": mae_clean,
        "interval": list(INTERVAL),
        "interval_coverage": round(float(np.concatenate(inside).mean()), 4),
        "hotspots_planted": len(planted), "hotspots_found": found,
        "hotspot_recall": round(found / max(len(planted), 1), 4),
        "false_positives": flagged_other,
        "false_positive_rate": round(flagged_other / max(other, 1), 6),
        # the first test alone (own history), to show what the neighbour test adds
        "history_test_only": {"found": found_history,
                              "recall": round(found_history / max(len(planted), 1), 4),
                              "false_positives": flagged_history,
                              "false_positive_rate": round(flagged_history / max(other, 1), 6)},
        "fit_seconds_per_week_p50": round(float(np.median(fit_seconds)), 3),
        "mean_weekly_count": round(float(weekly[:, :, -weeks:].mean()), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grids", type=int, default=300)
    parser.add_argument("--categories", type=int, default=6)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--weeks", type=int, default=12, help="backtest weeks")
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args()
    began = time.perf_counter()
    counts, dates, planted = synthesise(args.grids, args.categories, args.years, args.weeks,
                                        args.seed)
    made = time.perf_counter() - began
    figures = backtest(counts, dates, planted, args.weeks)
    report = {"history": "synthetic (generated by bench/forecast.py, not observed data)",
              "grids": args.grids, "categories": args.categories, "years": args.years,
              "backtest_weeks": args.weeks, "seed": args.seed,
              "cases": int(counts.sum()), "synthesis_seconds": round(made, 2), **figures}
    record("forecast", report)
    print(f"synthetic history: {args.years} years, {args.grids} grids x {args.categories} "
          f"categories, {report['cases']:,} cases; backtest over the last {args.weeks} weeks")
    print("mean absolute error per grid x category x week "
          "(all weeks | without planted hotspots):")
    for name in figures["mae_per_grid_category_week"]:
        print(f"  {name:22s} {figures['mae_per_grid_category_week'][name]:.3f} | "
              f"{figures['mae_without_planted_weeks'][name]:.3f}")
    print(f"90 % interval coverage (no planted spikes): {figures['interval_coverage']:.1%}")
    print(f"planted hotspots found: {figures['hotspots_found']} of "
          f"{figures['hotspots_planted']} ({figures['hotspot_recall']:.1%}); false positives: "
          f"{figures['false_positives']} ({figures['false_positive_rate']:.3%} of other series)")
    alone = figures["history_test_only"]
    print(f"  own-history test alone: {alone['found']} found ({alone['recall']:.1%}), "
          f"{alone['false_positives']} false positives ({alone['false_positive_rate']:.3%})")
    print(f"fit + forecast per week: {figures['fit_seconds_per_week_p50']:.3f} s (median)")


if __name__ == "__main__":
    main()
