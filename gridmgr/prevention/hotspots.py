"""Hotspots (grids and categories unusually busy this week) and recurring problems.

**The hotspot test** (docs/prevention.md). The period is the 7 days before ``end``; the
history is the ``weeks`` 7-day periods before it. For each unit grid × category with a case in
that window (and for each grid over all categories) let ``x`` be the period's count:

1. *Against its own history.* The weekly rate λ has a gamma prior worth ``PRIOR_WEEKS`` week
   centred on the category's mean per grid-week in the scope (``m``); after the history's
   ``S`` cases in ``N`` weeks the next week's count is negative binomial with size
   ``PRIOR_WEEKS·m + S`` and success probability ``(PRIOR_WEEKS + N) / (PRIOR_WEEKS + N + 1)``
   (mean ``(PRIOR_WEEKS·m + S) / (PRIOR_WEEKS + N)``). ``p_history = P(X ≥ x)``.
2. *Against its neighbours.* The same predictive, with the period's counts of the grids that
   touch it (``ST_DWithin`` 1e-7°, i.e. sharing an edge or a corner) as the "history":
   ``S`` = their cases of the category this period, ``N`` = how many they are.
   ``p_neighbours = P(X ≥ x)``. A city-wide surge (rain, a holiday) raises the neighbours too
   and is not a hotspot; a grid that is always busier than its neighbours fails test 1.
3. Each family of p-values is corrected with Benjamini–Hochberg (scipy's
   ``false_discovery_control``); a series is a **hotspot** when both q-values are at most
   ``alpha`` (default 0.05) and ``x`` is at least ``MIN_COUNT``.

**Recurring problems**: the same category in the same grid at least ``min_cases`` times in the
last ``window_days`` (default 3 in 28 days), or a case of it reported within ``reopen_days``
(default 14) after an earlier one there was closed.

Cancelled reports (作废, not real problems) are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from scipy import stats
from sqlalchemy import text

from gridmgr.extensions import db

WEEKS = 12
PRIOR_WEEKS = 1.0
ALPHA = 0.05
MIN_COUNT = 3
NEIGHBOUR_DEGREES = 1e-7


@dataclass
class HotspotTest:
    """The two tests for every series, and which series are hotspots."""

    expected_history: np.ndarray
    expected_neighbours: np.ndarray
    p_history: np.ndarray
    p_neighbours: np.ndarray
    q_history: np.ndarray
    q_neighbours: np.ndarray
    hotspot: np.ndarray


def _upper_tail(x: np.ndarray, prior_mean: np.ndarray, total: np.ndarray,
                periods: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(X ≥ x) and E[X] under the gamma-Poisson predictive after ``total`` cases in
    ``periods`` periods, with a prior worth PRIOR_WEEKS periods at ``prior_mean``."""
    size = PRIOR_WEEKS * prior_mean + total
    prob = (PRIOR_WEEKS + periods) / (PRIOR_WEEKS + periods + 1.0)
    return stats.nbinom.sf(x - 1, size, prob), size * (1 - prob) / prob


def assess_series(current: np.ndarray, history: np.ndarray, neighbour_sum: np.ndarray,
                neighbour_count: np.ndarray, prior_mean: np.ndarray, alpha: float = ALPHA,
                min_count: int = MIN_COUNT) -> HotspotTest:
    """Both tests for S series: ``current`` (S,) counts, ``history`` (S, N) past weekly counts,
    the neighbours' summed count and number (S,), the prior mean per grid-week (S,)."""
    current = np.asarray(current, dtype=float)
    prior_mean = np.maximum(np.asarray(prior_mean, dtype=float), 1e-6)
    weeks = np.full(current.shape, history.shape[1], dtype=float)
    p_history, e_history = _upper_tail(current, prior_mean, history.sum(axis=1), weeks)
    p_neighbours, e_neighbours = _upper_tail(current, prior_mean,
                                             np.asarray(neighbour_sum, dtype=float),
                                             np.asarray(neighbour_count, dtype=float))
    q_history = _bh(p_history)
    q_neighbours = _bh(p_neighbours)
    hotspot = (current >= min_count) & (q_history <= alpha) & (q_neighbours <= alpha)
    return HotspotTest(e_history, e_neighbours, p_history, p_neighbours, q_history,
                       q_neighbours, hotspot)


def _bh(p: np.ndarray) -> np.ndarray:
    return stats.false_discovery_control(p, method="bh") if p.size else p


# -- from the database -----------------------------------------------------------------------

_GRIDS = text("""
SELECT code FROM regions
WHERE city_id = :city_id AND level = 'grid' AND code LIKE :prefix
""")

# Grids sharing an edge or a corner (a hair of tolerance for boundaries that do not quite
# meet); the GiST index on regions.geom finds the candidates.
_NEIGHBOURS = text("""
SELECT a.code AS grid, b.code AS neighbour
FROM regions a JOIN regions b
  ON b.city_id = a.city_id AND b.level = 'grid' AND b.id <> a.id
 AND ST_DWithin(a.geom, b.geom, :tolerance)
WHERE a.city_id = :city_id AND a.level = 'grid' AND a.code LIKE :prefix
""")

_WEEKLY = text("""
SELECT grid_code, category_id,
       floor(extract(epoch FROM (:end - created_at)) / 604800)::int AS ago, count(*) AS n
FROM cases
WHERE city_id = :city_id AND created_at >= :start AND created_at < :end
  AND state <> 'cancelled' AND grid_code = ANY(:codes)
GROUP BY 1, 2, 3
""")


def find_hotspots(city_id: int, prefix: str | None = None, end: datetime | None = None,
                  weeks: int = WEEKS, alpha: float = ALPHA) -> dict:
    """Hotspots of the 7 days before ``end`` among the grids under ``prefix``."""
    end = end or datetime.now().astimezone()
    like = (prefix or "") + "%"
    grids = db.session.scalars(_GRIDS, {"city_id": city_id, "prefix": like}).all()
    pairs = db.session.execute(_NEIGHBOURS, {"city_id": city_id, "prefix": like,
                                             "tolerance": NEIGHBOUR_DEGREES}).all()
    neighbours: dict[str, list[str]] = {g: [] for g in grids}
    for grid, neighbour in pairs:
        neighbours[grid].append(neighbour)
    codes = sorted(set(grids) | {n for _, n in pairs})
    rows = db.session.execute(_WEEKLY, {
        "city_id": city_id, "codes": codes, "end": end,
        "start": end - timedelta(days=7 * (weeks + 1))}).all()
    period = {"start": (end - timedelta(days=7)).isoformat(), "end": end.isoformat(),
              "history_weeks": weeks}
    counts: dict[tuple[str, int | None], np.ndarray] = {}
    for r in rows:
        for key in ((r.grid_code, r.category_id), (r.grid_code, None)):
            counts.setdefault(key, np.zeros(weeks + 1))[r.ago] += r.n
    series = sorted((k for k in counts if k[0] in neighbours),
                    key=lambda k: (k[0], k[1] or 0))
    if not series:
        return {"period": period, "hotspots": []}
    # prior: the category's (or all categories') mean per grid-week of history in the scope
    history_total: dict[int | None, float] = {}
    for (grid, category), weekly in counts.items():
        if grid in neighbours:
            history_total[category] = history_total.get(category, 0.0) + weekly[1:].sum()
    grid_weeks = max(len(grids), 1) * weeks
    zero = np.zeros(weeks + 1)
    current = np.array([counts[k][0] for k in series])
    history = np.array([counts[k][1:] for k in series])
    neighbour_sum = np.array([sum(counts.get((n, k[1]), zero)[0] for n in neighbours[k[0]])
                              for k in series])
    neighbour_count = np.array([len(neighbours[k[0]]) for k in series])
    prior = np.array([(history_total.get(k[1], 0.0) + 0.5) / grid_weeks for k in series])
    result = assess_series(current, history, neighbour_sum, neighbour_count, prior, alpha)
    category_codes = dict(db.session.execute(text("SELECT id, code FROM categories")).all())
    hotspots = [{
        "grid_code": grid, "category": category_codes.get(category) if category else None,
        "count": int(current[i]), "expected_history": round(float(result.expected_history[i]), 3),
        "expected_neighbours": round(float(result.expected_neighbours[i]), 3),
        "q_history": float(result.q_history[i]), "q_neighbours": float(result.q_neighbours[i]),
    } for i, (grid, category) in enumerate(series) if result.hotspot[i]]
    hotspots.sort(key=lambda h: (h["q_history"], -h["count"]))
    return {"period": period, "hotspots": hotspots}


# The recent cases, and the closings that could have come before them (one scan each, then a
# hash join on grid and category: no per-case subquery).
_RECURRING = text("""
WITH recent AS (
    SELECT id, code, grid_code, category_id, created_at
    FROM cases
    WHERE city_id = :city_id AND grid_code LIKE :prefix AND state <> 'cancelled'
      AND created_at >= :since AND created_at < :end
), closings AS (
    SELECT id, grid_code, category_id, closed_at
    FROM cases
    WHERE city_id = :city_id AND grid_code LIKE :prefix AND state = 'closed'
      AND closed_at >= :since - make_interval(days => :reopen_days) AND closed_at < :end
), back AS (
    SELECT DISTINCT r.id
    FROM recent r JOIN closings e
      ON e.grid_code = r.grid_code AND e.category_id = r.category_id AND e.id <> r.id
     AND e.closed_at <= r.created_at
     AND e.closed_at > r.created_at - make_interval(days => :reopen_days)
)
SELECT r.grid_code, k.code AS category, count(*) AS cases,
       count(back.id) AS reappeared,
       array_agg(r.code ORDER BY r.created_at) AS codes, max(r.created_at) AS last_at
FROM recent r JOIN categories k ON k.id = r.category_id
LEFT JOIN back ON back.id = r.id
GROUP BY r.grid_code, k.code
HAVING count(*) >= :min_cases OR count(back.id) > 0
ORDER BY count(*) DESC, r.grid_code, k.code
""")


def recurring_problems(city_id: int, prefix: str | None = None, end: datetime | None = None,
                       window_days: int = 28, min_cases: int = 3,
                       reopen_days: int = 14) -> list[dict]:
    """The same category in the same grid again and again in the ``window_days`` before
    ``end``: at least ``min_cases`` cases, or one back within ``reopen_days`` of a closing."""
    end = end or datetime.now().astimezone()
    rows = db.session.execute(_RECURRING, {
        "city_id": city_id, "prefix": (prefix or "") + "%", "end": end,
        "since": end - timedelta(days=window_days), "min_cases": min_cases,
        "reopen_days": reopen_days}).all()
    return [{"grid_code": r.grid_code, "category": r.category, "cases": r.cases,
             "reappeared": r.reappeared, "case_codes": list(r.codes),
             "last_at": r.last_at.isoformat(),
             "kinds": [k for k, on in (("repeated", r.cases >= min_cases),
                                       ("reappeared", r.reappeared > 0)) if on]}
            for r in rows]
