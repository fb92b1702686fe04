"""Next week's cases per unit grid and category, with prediction intervals.

The model (docs/prevention.md) is multiplicative: a grid's expected count on day d in
category c is ``share[g, c] × city[c, d]``.

- ``city[c, d]``, the category's city-wide daily pattern, is a Poisson GLM fitted (Newton's
  method, all categories at once) to its daily city-wide counts over up to three years:
  ``log E[y_d] = b0 + weekday(d) + Σ_k (a_k sin 2πk·doy/365.25 + b_k cos 2πk·doy/365.25)
  + trend·years``, k = 1, 2. Seasonal terms are dropped with less than a year of history and the
  trend with less than eight weeks. One small GLM per category: fast for any number of grids.
- ``share[g, c]``, the grid's part of the category, is the grid's recency-weighted count over
  the city's (weights halve every ``HALF_LIFE_DAYS``, over ``LOOKBACK_DAYS``), shrunk toward the
  grid's share of all categories: ``(n[g,c] + α·m[g]) / (N[c] + α)`` with α = ``SHRINKAGE``
  pseudo-cases. So each grid follows its category's weekday and seasonal pattern (pooled over
  the city, where the data is) at its own level (from its own recent cases, where they are).
  Closed form for every series at once.
- Uncertainty: the week's count is Poisson given its mean, and the mean is uncertain as a
  gamma with shape ``n[g,c] + α·m[g]`` (the evidence behind the share), so the count is negative
  binomial with that size; intervals are its quantiles (default 5 % and 95 %).

Cancelled reports (invalid, 作废) are not problems and are not counted.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from scipy import stats
from sqlalchemy import text

from gridmgr.extensions import db

HISTORY_DAYS = 3 * 365
LOOKBACK_DAYS = 26 * 7
HALF_LIFE_DAYS = 56.0
SHRINKAGE = 2.0
HARMONICS = 2
INTERVAL = (0.05, 0.95)


@dataclass
class CategoryPatterns:
    """Fitted city-wide daily patterns: one coefficient row per category."""

    coefficients: np.ndarray  # (C, P); a row of NaN: a category without history
    first_day: date
    end_day: date  # the day after the history
    harmonics: int
    trend: bool

    def expected(self, days: list[date]) -> np.ndarray:
        """Expected city-wide counts, (C, len(days))."""
        design = _design(days, self.end_day, self.harmonics, self.trend)
        values = np.exp(np.nan_to_num(self.coefficients, nan=0.0) @ design.T)
        values[np.isnan(self.coefficients).any(axis=1)] = 0.0
        return values


def _design(days: list[date], end_day: date, harmonics: int, trend: bool) -> np.ndarray:
    ordinal = np.array([d.toordinal() for d in days], dtype=float)
    weekday = np.array([d.weekday() for d in days])
    doy = np.array([d.timetuple().tm_yday for d in days], dtype=float)
    columns = [np.ones(len(days))]
    columns += [(weekday == k).astype(float) for k in range(1, 7)]  # Monday is the baseline
    for k in range(1, harmonics + 1):
        angle = 2 * np.pi * k * doy / 365.25
        columns += [np.sin(angle), np.cos(angle)]
    if trend:
        columns.append((ordinal - end_day.toordinal()) / 365.25)
    return np.column_stack(columns)


def fit_patterns(daily: np.ndarray, first_day: date) -> CategoryPatterns:
    """Fit each category's Poisson GLM to its daily city-wide counts ``daily`` (C, T), the
    first column being ``first_day``: Newton's method on all categories at once."""
    n_days = daily.shape[1]
    days = [first_day + timedelta(days=i) for i in range(n_days)]
    end_day = first_day + timedelta(days=n_days)
    harmonics = HARMONICS if n_days >= 365 else 0
    trend = n_days >= 56
    design = _design(days, end_day, harmonics, trend)
    seen = daily.sum(axis=1) > 0
    coefficients = np.full((daily.shape[0], design.shape[1]), np.nan)
    if seen.any():
        coefficients[seen] = _poisson_glm(daily[seen], design)
    return CategoryPatterns(coefficients, first_day, end_day, harmonics, trend)


def _poisson_glm(y: np.ndarray, design: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Maximum likelihood of ``log E[y[c]] = design @ beta[c]`` for every row c of ``y``.

    The Poisson log-likelihood is concave, so Newton's method from the mean converges; a small
    ridge on the non-intercept terms keeps a weekday never seen finite (its effect very
    negative) instead of running off to minus infinity.
    """
    n_series, n_params = y.shape[0], design.shape[1]
    beta = np.zeros((n_series, n_params))
    beta[:, 0] = np.log(y.mean(axis=1))
    ridge = np.full(n_params, 1e-3)
    ridge[0] = 0.0
    for _ in range(iterations):
        mu = np.exp(np.clip(beta @ design.T, -30, 30))  # (S, T)
        gradient = (y - mu) @ design - ridge * beta
        hessian = np.einsum("st,tp,tq->spq", mu, design, design) + np.diag(ridge)
        step = np.linalg.solve(hessian, gradient[:, :, None])[:, :, 0]
        # a Newton step far from the optimum can overshoot the exponential: cap it
        step *= np.minimum(1.0, 5.0 / np.maximum(np.abs(step).max(axis=1), 1e-12))[:, None]
        beta += step
        if np.abs(step).max() < 1e-8:
            break
    return beta


@dataclass
class WeekForecast:
    """Per series (grid × category): the week's expected count, interval and daily means."""

    mean: np.ndarray  # (S,)
    low: np.ndarray
    high: np.ndarray
    daily: np.ndarray  # (S, 7)
    size: np.ndarray  # negative binomial size (shape) behind the interval


def forecast_week(patterns: CategoryPatterns, week_start: date, series_category: np.ndarray,
                  weighted: np.ndarray, weighted_city: np.ndarray, prior_share: np.ndarray,
                  interval: tuple[float, float] = INTERVAL) -> WeekForecast:
    """The seven days from ``week_start`` for each series: ``weighted`` its recency-weighted
    count, ``weighted_city`` (C,) the category's, ``prior_share`` its grid's share of all."""
    days = [week_start + timedelta(days=i) for i in range(7)]
    city = patterns.expected(days)  # (C, 7)
    prior = SHRINKAGE * prior_share
    share = (weighted + prior) / (weighted_city[series_category] + SHRINKAGE)
    daily = share[:, None] * city[series_category]
    mean = daily.sum(axis=1)
    low, high = nb_interval(mean, weighted + prior, interval)
    return WeekForecast(mean, low, high, daily, weighted + prior)


def nb_interval(mean: np.ndarray, size: np.ndarray,
                interval: tuple[float, float] = INTERVAL) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles of a negative binomial with ``mean`` and ``size`` (variance mean + mean²/size)."""
    size = np.maximum(size, 1e-6)
    p = size / (size + np.maximum(mean, 1e-12))
    return (stats.nbinom.ppf(interval[0], size, p), stats.nbinom.ppf(interval[1], size, p))


def recency_weights(age_days: np.ndarray) -> np.ndarray:
    """Weight of a case ``age_days`` before the forecast week: halves every HALF_LIFE_DAYS."""
    return np.power(0.5, age_days / HALF_LIFE_DAYS)


# -- from the database -----------------------------------------------------------------------

_CITY_DAILY = text("""
SELECT category_id, (created_at AT TIME ZONE :tz)::date AS day, count(*) AS n
FROM cases
WHERE city_id = :city_id AND created_at >= :since AND created_at < :until
  AND state <> 'cancelled'
GROUP BY 1, 2
""")

_WEIGHTED = text("""
SELECT grid_code, category_id,
       sum(power(0.5::float8, (extract(epoch FROM (:until - created_at)) / 86400.0
                                / :half_life)::float8))::float8 AS w
FROM cases
WHERE city_id = :city_id AND created_at >= :lookback AND created_at < :until
  AND state <> 'cancelled'
GROUP BY 1, 2
""")


@dataclass(frozen=True)
class _CityModel:
    """What a week's forecast needs from the whole city, whatever the scope asked."""

    patterns: CategoryPatterns
    index: dict[int, int]  # category id -> row of the patterns
    codes: dict[int, str]  # category id -> code
    city_weighted: np.ndarray  # (C,)
    series: list[tuple[str, int, float]]  # (grid code, category id, weighted count)
    grid_share: dict[str, float]


_MODELS: OrderedDict[tuple, _CityModel | None] = OrderedDict()
_MODELS_LOCK = threading.Lock()
_MODELS_KEPT = 16

# A new case raises max(id) (read from the primary key); a TRUNCATE gives the table a new
# file. Steps do not count: they change the forecast only by cancelling a report, which shows
# with the next new case (in a city that reports all day, minutes later).
_FINGERPRINT = text("SELECT pg_relation_filenode('cases'), (SELECT max(id) FROM cases)")


def next_week_forecast(city_id: int, tz: ZoneInfo, prefix: str | None = None,
                       week_start: date | None = None) -> dict:
    """The forecast for the week from ``week_start`` (default: next Monday, local) for the
    grids under ``prefix``: per grid the expected total and interval, and per category.
    The city-wide part is kept per process until a new case arrives."""
    today = datetime.now(tz).date()
    week_start = week_start or today + timedelta(days=7 - today.weekday())
    weeks = {"start": week_start.isoformat(),
             "end": (week_start + timedelta(days=7)).isoformat()}
    key = (str(db.engine.url), city_id, tz.key, week_start,
           *db.session.execute(_FINGERPRINT).one())
    with _MODELS_LOCK:
        model = _MODELS.get(key, False)
    if model is False:
        model = _city_model(city_id, tz, week_start)
        with _MODELS_LOCK:
            _MODELS[key] = model
            while len(_MODELS) > _MODELS_KEPT:
                _MODELS.popitem(last=False)
    mine = [r for r in (model.series if model else ())
            if prefix is None or r[0].startswith(prefix)]
    if not mine:
        return {"week": weeks, "grids": []}
    result = forecast_week(
        model.patterns, week_start, np.array([model.index[r[1]] for r in mine]),
        np.array([r[2] for r in mine]), model.city_weighted,
        np.array([model.grid_share[r[0]] for r in mine]))
    return {"week": weeks, "grids": _by_grid(mine, result, model.codes)}


def _city_model(city_id: int, tz: ZoneInfo, week_start: date) -> _CityModel | None:
    until = datetime.combine(week_start, time(0), tz).astimezone(UTC)
    first_day = week_start - timedelta(days=HISTORY_DAYS)
    rows = db.session.execute(_CITY_DAILY, {
        "tz": tz.key, "city_id": city_id, "until": until,
        "since": datetime.combine(first_day, time(0), tz).astimezone(UTC)}).all()
    if not rows:
        return None
    category_ids = sorted({r.category_id for r in rows})
    # history starts with the city's first case
    first_day = max(first_day, min(r.day for r in rows))
    index = {c: i for i, c in enumerate(category_ids)}
    daily = np.zeros((len(category_ids), (week_start - first_day).days))
    for r in rows:
        daily[index[r.category_id], (r.day - first_day).days] = r.n
    weighted = [(r.grid_code, r.category_id, r.w) for r in db.session.execute(_WEIGHTED, {
        "city_id": city_id, "until": until, "half_life": HALF_LIFE_DAYS,
        "lookback": until - timedelta(days=LOOKBACK_DAYS)}) if r.category_id in index]
    if not weighted:
        return None
    city = np.zeros(len(category_ids))
    grid_total: dict[str, float] = {}
    for grid_code, category_id, w in weighted:
        city[index[category_id]] += w
        grid_total[grid_code] = grid_total.get(grid_code, 0.0) + w
    everything = sum(grid_total.values())
    codes = dict(db.session.execute(text("SELECT id, code FROM categories WHERE id = ANY(:ids)"),
                                    {"ids": category_ids}).all())
    return _CityModel(fit_patterns(daily, first_day), index, codes, city, weighted,
                      {g: w / everything for g, w in grid_total.items()})


def _by_grid(series: list[tuple[str, int, float]], result: WeekForecast,
             codes: dict[int, str]) -> list[dict]:
    grids: dict[str, list[int]] = {}
    for i, (grid_code, _, _) in enumerate(series):
        grids.setdefault(grid_code, []).append(i)
    order = sorted(grids)
    members = [grids[g] for g in order]
    variance = result.mean + result.mean ** 2 / result.size
    total = np.array([result.mean[m].sum() for m in members])
    total_var = np.array([variance[m].sum() for m in members])
    # the sum of the categories' negative binomials, matched on mean and variance
    low, high = nb_interval(total, total ** 2 / np.maximum(total_var - total, 1e-9))
    out = []
    for k, grid_code in enumerate(order):
        categories = sorted((
            {"category": codes[series[i][1]], "expected": round(float(result.mean[i]), 3),
             "low": int(result.low[i]), "high": int(result.high[i]),
             "by_day": [round(float(v), 3) for v in result.daily[i]]} for i in members[k]),
            key=lambda c: -c["expected"])
        out.append({"grid_code": grid_code, "expected": round(float(total[k]), 3),
                    "low": int(low[k]), "high": int(high[k]), "categories": categories})
    out.sort(key=lambda g: -g["expected"])
    return out
