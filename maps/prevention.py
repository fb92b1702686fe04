"""The wall's prevention layers: next week's forecast per unit grid, and this week's hotspots
and recurring problems (the models are in ``gridmgr.prevention``; docs/prevention.md).

- **Forecast**: the grid tiles' ``forecast`` measure. The city's whole forecast is computed
  once per process and kept :data:`FORECAST_SECONDS` (then renewed when a case arrived since,
  or at once when the week changes); a tile only looks up its own grids in it. A viewer's
  tiles hold only the grids of their scope.
- **Hotspots**: a small GeoJSON feed of the hotspot and recurring-problem grids of the
  viewer's scope (at most :data:`MAX_HOTSPOT_GRIDS`), kept per process and scope
  :data:`HOTSPOT_SECONDS`. The page reads it once and again every few minutes, not on every
  map move.

A busy city reports every few seconds: renewing on every new case would recompute all the
time (seconds each at 50,000 grids, bench/tiles.py), so the wall's copies live for minutes;
one request computes while the others wait for its answer.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from datetime import date, datetime, timedelta

from sqlalchemy import text

from gridmgr.calendar.deadlines import calendar_for_city
from gridmgr.extensions import db
from gridmgr.prevention.forecast import next_week_forecast
from gridmgr.prevention.hotspots import find_hotspots, recurring_problems
from maps.viewer import Viewer

TOP_CATEGORIES = 3
MAX_HOTSPOT_GRIDS = 500
HOTSPOT_SECONDS = 300
FORECAST_SECONDS = 600
_KEPT = 8

# The table's file node changes when it is emptied (TRUNCATE); max(id) when a case arrives.
_FINGERPRINT = text("SELECT pg_relation_filenode('cases'), (SELECT max(id) FROM cases)")
# key -> (computed at, max case id then, value)
_forecasts: OrderedDict[tuple, tuple[float, int | None, dict]] = OrderedDict()
_hotspots: OrderedDict[tuple, tuple[float, int | None, dict]] = OrderedDict()
_lock = threading.Lock()
_computing = {"forecast": threading.Lock(), "hotspots": threading.Lock()}


def _remember(store: OrderedDict, key: tuple, value) -> None:
    with _lock:
        store[key] = value
        while len(store) > _KEPT:
            store.popitem(last=False)


def _kept(store: OrderedDict, kind: str, key: tuple, seconds: float, compute) -> dict:
    """The kept value of ``key``, or a fresh one when it is older than ``seconds`` and a case
    arrived since (one computation at a time; the others then find it kept)."""
    filenode, last_id = db.session.execute(_FINGERPRINT).one()
    key = (str(db.engine.url), filenode, *key)

    def fresh(entry) -> bool:
        return entry is not None and (entry[1] == last_id
                                      or time.monotonic() - entry[0] < seconds)

    with _lock:
        entry = store.get(key)
    if fresh(entry):
        return entry[2]
    with _computing[kind]:
        with _lock:
            entry = store.get(key)
        if fresh(entry):
            return entry[2]
        entry = (time.monotonic(), last_id, compute())
        _remember(store, key, entry)
    return entry[2]


def _next_monday(tz) -> date:
    today = datetime.now(tz).date()
    return today + timedelta(days=7 - today.weekday())


def _category_names(lang: str) -> dict[str, str]:
    column = "name_en" if lang == "en" else "name_zh"
    return dict(db.session.execute(text(f"SELECT code, {column} FROM categories")).all())


def city_forecast(viewer: Viewer) -> tuple[dict, dict[str, dict]]:
    """``(week, {grid code: {expected, low, high, categories}})`` for the viewer's whole city
    (callers keep to the viewer's scope); computed once per new case and week."""
    tz = calendar_for_city(viewer.city_id).tz
    week_start = _next_monday(tz)

    def compute() -> dict:
        body = next_week_forecast(viewer.city_id, tz, None, week_start)
        return {"week": body["week"], "grids": {g["grid_code"]: g for g in body["grids"]}}

    kept = _kept(_forecasts, "forecast", (viewer.city_id, tz.key, week_start),
                 FORECAST_SECONDS, compute)
    return kept["week"], kept["grids"]


def forecast_for_grids(viewer: Viewer, codes: list[str], lang: str) -> list[tuple]:
    """``(code, expected, low, high, top categories)`` of the given grids inside the viewer's
    scope that have a forecast; the top categories as one line ("name 1.2 · name 0.4")."""
    _, grids = city_forecast(viewer)
    names = None
    out = []
    for code in codes:
        grid = grids.get(code)
        if grid is None or not code.startswith(viewer.prefix):
            continue
        if names is None:
            names = _category_names(lang)
        top = " · ".join(f"{names.get(c['category'], c['category'])} {c['expected']:.1f}"
                         for c in grid["categories"][:TOP_CATEGORIES])
        out.append((code, round(grid["expected"], 2), grid["low"], grid["high"], top))
    return out


def hotspots(viewer: Viewer, lang: str) -> dict:
    """GeoJSON of the scope's hotspot and recurring-problem grids, with what made them so."""
    def compute() -> dict:
        prefix = viewer.prefix or None
        found = find_hotspots(viewer.city_id, prefix)
        found["recurring"] = recurring_problems(viewer.city_id, prefix)
        return found

    found = _kept(_hotspots, "hotspots", (viewer.city_id, viewer.prefix), HOTSPOT_SECONDS,
                  compute)
    names = _category_names(lang)
    by_grid: dict[str, dict] = {}

    def grid(code: str) -> dict:
        return by_grid.setdefault(code, {"code": code, "hotspots": [], "recurring": []})

    for h in found["hotspots"]:
        grid(h["grid_code"])["hotspots"].append({
            "category": h["category"],
            "name": names.get(h["category"]) if h["category"] else None,
            "count": h["count"], "expected": h["expected_history"],
            "q": h["q_history"]})
    for r in found["recurring"]:
        grid(r["grid_code"])["recurring"].append({
            "category": r["category"], "name": names.get(r["category"], r["category"]),
            "cases": r["cases"], "reappeared": r["reappeared"], "kinds": r["kinds"]})
    # hotspots first (most significant first, as find_hotspots orders them), then recurring
    order = list(by_grid)[:MAX_HOTSPOT_GRIDS]
    rows = db.session.execute(text("""
        SELECT code, name, ST_AsGeoJSON(geom, 6)::json AS geometry,
               ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat
        FROM regions
        WHERE city_id = :city AND level = 'grid' AND code LIKE :like AND code = ANY(:codes)"""),
        {"city": viewer.city_id, "like": viewer.like, "codes": order}).all() if order else []
    shapes = {r.code: r for r in rows}
    features = []
    for code in order:
        shape = shapes.get(code)
        if shape is None:
            continue
        features.append({"type": "Feature", "geometry": shape.geometry, "properties": {
            **by_grid[code], "name": shape.name, "label": [shape.lat, shape.lon]}})
    return {"type": "FeatureCollection", "period": found["period"], "features": features,
            "truncated": len(by_grid) > MAX_HOTSPOT_GRIDS}
