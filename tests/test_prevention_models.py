"""The statistics behind prevention, on synthetic data whose truth is known."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from gridmgr.prevention.forecast import (
    LOOKBACK_DAYS,
    fit_patterns,
    forecast_week,
    recency_weights,
)
from gridmgr.prevention.hotspots import assess_series

# Monday .. Sunday: busy at the start of the week, quiet at the weekend
WEEKDAY = np.array([1.3, 1.2, 1.0, 1.0, 0.9, 0.4, 0.3])


def _city(days: int, grids: int, seed: int = 7):
    """Two years of one category in ``grids`` grids: weekday and yearly pattern, known shares."""
    rng = np.random.default_rng(seed)
    first = date(2024, 11, 4)  # a Monday
    dates = [first + timedelta(days=i) for i in range(days + 7)]
    doy = np.array([d.timetuple().tm_yday for d in dates])
    city_mean = 60 * WEEKDAY[[d.weekday() for d in dates]] * (1 + 0.3 * np.cos(
        2 * np.pi * (doy - 200) / 365.25))
    shares = rng.dirichlet(np.full(grids, 2.0))
    counts = rng.poisson(shares[:, None] * city_mean[None, :])  # (grids, days + 7)
    return first, dates, city_mean, shares, counts


def test_the_forecast_finds_the_weekday_pattern_and_its_interval_covers():
    days, grids = 728, 300  # 104 weeks: the forecast week starts on a Monday
    first, dates, city_mean, shares, counts = _city(days, grids)
    history, future = counts[:, :days], counts[:, days:]
    patterns = fit_patterns(history.sum(axis=0)[None, :], first)
    ages = days - np.arange(days) - 0.5
    recent = ages <= LOOKBACK_DAYS
    weights = recency_weights(ages) * recent
    weighted = (history * weights).sum(axis=1)
    week = forecast_week(patterns, dates[days], np.zeros(grids, dtype=int), weighted,
                         np.array([weighted.sum()]), weighted / weighted.sum())

    # the city's next week, day by day, within 8 % of the truth: weekday and season
    assert week.daily.sum(axis=0) == pytest.approx(city_mean[days:], rel=0.08)
    shape = week.daily.sum(axis=0) / week.daily.sum(axis=0).mean()
    assert shape == pytest.approx(WEEKDAY / WEEKDAY.mean(), rel=0.06)
    # each grid's week near its true mean, and the 90 % interval holds the real count
    truth = shares * city_mean[days:].sum()
    assert np.median(np.abs(week.mean - truth) / truth) < 0.2
    inside = (future.sum(axis=1) >= week.low) & (future.sum(axis=1) <= week.high)
    assert inside.mean() >= 0.85


def test_a_planted_spike_is_a_hotspot_and_a_normal_week_is_not():
    rng = np.random.default_rng(3)
    series = 200
    history = rng.poisson(2.0, size=(series, 12))
    normal = rng.poisson(2.0, size=series)
    neighbours = rng.poisson(2.0 * 4, size=series)
    prior = np.full(series, 2.0)

    quiet = assess_series(normal, history, neighbours, np.full(series, 4), prior)
    assert not quiet.hotspot.any()

    spiked = normal.copy()
    spiked[17] = 14  # a week of seven times the usual
    found = assess_series(spiked, history, neighbours, np.full(series, 4), prior)
    assert np.flatnonzero(found.hotspot).tolist() == [17]
    assert found.expected_history[17] == pytest.approx((2.0 + history[17].sum()) / 13)


def test_a_grid_busy_with_its_whole_neighbourhood_is_not_a_hotspot():
    history = np.full((3, 12), 2)
    # everyone around has as many as this grid: a city-wide surge, not a local hotspot
    surge = assess_series(np.array([12, 2, 2]), history, np.array([48, 8, 8]),
                          np.array([4, 4, 4]), np.full(3, 2.0))
    assert surge.q_history[0] < 0.05 and surge.q_neighbours[0] > 0.05
    assert not surge.hotspot.any()
