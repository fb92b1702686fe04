"""The wall's feeds: boundaries, open cases, heat, counters and a case's card.

Every query is limited to the viewer's city and region prefix, and bounded by a bbox and a
row limit, so the page stays small at 50,000 unit grids and 100,000 open cases.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import text

from gridmgr.calendar.deadlines import (
    HANDLING_CLOCK_SQL,
    clock_answer,
    current_clock_sql,
    overdue_sql,
)
from gridmgr.cases.models import OPEN_STATES, Case, CaseHistory, Photo
from gridmgr.errors import InvalidInput, NotFound
from gridmgr.extensions import db
from maps.viewer import Viewer

BOUNDARY_LEVELS = ("district", "street", "community")
MAX_BOUNDARIES = 3_000
MAX_CASE_MARKERS = 4_000
CLUSTER_CELLS = 24  # server-side clusters per bbox side when there are too many markers
MAX_HEAT_POINTS = 20_000
OVERDUE_LIST = 50

_OPEN = ", ".join(f"'{s}'" for s in OPEN_STATES)
# The handling clock as the wall shows it, by the one rule (docs/clock.md): a handled case
# keeps the colour it had when it was handled, a shelved one is paused; no deadline yet:
# 'waiting'.
CLOCK_SQL = f"coalesce({HANDLING_CLOCK_SQL}, 'waiting')"
_STAGE = current_clock_sql("c")
CLOCKS = ("green", "yellow", "red", "waiting")
_SCOPE = "c.city_id = :city AND c.grid_code LIKE :like"
_ENVELOPE = "ST_MakeEnvelope(:w, :s, :e, :n, 4326)"


def parse_bbox(value: str | None) -> tuple[float, float, float, float]:
    """``west,south,east,north`` in degrees, or a 400 ``bad_bbox``."""
    try:
        w, s, e, n = (float(part) for part in (value or "").split(","))
    except ValueError:
        raise InvalidInput("bbox must be west,south,east,north in degrees.",
                           code="bad_bbox") from None
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise InvalidInput("bbox must have west < east and south < north, within the globe.",
                           code="bad_bbox")
    return w, s, e, n


def parse_zoom(value: str | None, default: int = 14) -> int:
    """A zoom level 0..22, or a 400 ``bad_zoom``."""
    if value is None:
        return default
    if not value.isdigit() or int(value) > 22:
        raise InvalidInput("zoom must be an integer between 0 and 22.", code="bad_zoom")
    return int(value)


def _params(viewer: Viewer, bbox=None, **more) -> dict:
    params = {"city": viewer.city_id, "like": viewer.like, **more}
    if bbox is not None:
        params.update(zip("wsen", bbox, strict=True))
    return params


def scope_bounds(viewer: Viewer) -> list[list[float]] | None:
    """``[[south, west], [north, east]]`` of the viewer's region (or city); None when empty."""
    level_len = len(viewer.prefix) or 6
    row = db.session.execute(text("""
        SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b)
        FROM (SELECT ST_Extent(geom)::geometry AS b FROM regions
              WHERE city_id = :city AND code LIKE :like AND char_length(code) = :len) x
        WHERE b IS NOT NULL"""), _params(viewer, len=level_len)).first()
    return [[row[1], row[0]], [row[3], row[2]]] if row else None


def boundaries(viewer: Viewer, level: str, bbox, zoom: int) -> dict:
    """Boundaries of one level in the bbox, simplified to about half a pixel at ``zoom``."""
    if level not in BOUNDARY_LEVELS:
        raise InvalidInput(f"level must be one of {', '.join(BOUNDARY_LEVELS)}.",
                           code="bad_level")
    tolerance = 360.0 / (256 * 2 ** zoom) / 2
    rows = db.session.execute(text(f"""
        SELECT code, name,
               ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, :tol), 6)::json AS geometry,
               ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat
        FROM regions
        WHERE city_id = :city AND level = :level AND code LIKE :like AND geom && {_ENVELOPE}
        ORDER BY code LIMIT :limit"""),
        _params(viewer, bbox, level=level, tol=tolerance, limit=MAX_BOUNDARIES)).all()
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": r.geometry,
         "properties": {"code": r.code, "name": r.name, "label": [r.lat, r.lon]}}
        for r in rows]}


def open_cases(viewer: Viewer, bbox) -> dict:
    """Open cases in the bbox as markers; past :data:`MAX_CASE_MARKERS`, clusters (the cases
    of each cell of a 24 x 24 grid over the bbox, at their mean position)."""
    where = f"{_SCOPE} AND c.state IN ({_OPEN}) AND c.location && {_ENVELOPE}"
    too_many = db.session.scalar(text(f"""
        SELECT 1 FROM cases c WHERE {where} OFFSET :limit LIMIT 1"""),
        _params(viewer, bbox, limit=MAX_CASE_MARKERS))
    if not too_many:
        rows = db.session.execute(text(f"""
            SELECT c.id, c.code, ST_X(c.location) AS lon, ST_Y(c.location) AS lat, c.state,
                   k.kind, {CLOCK_SQL} AS clock
            FROM cases c JOIN categories cat ON cat.id = c.category_id
                 JOIN category_classes k ON k.id = cat.class_id
            WHERE {where}"""), _params(viewer, bbox)).all()
        return {"cases": [_marker(r) for r in rows], "clusters": []}
    w, s, e, n = bbox
    cell = max(e - w, n - s) / CLUSTER_CELLS
    clusters = db.session.execute(text(f"""
        SELECT avg(lon) AS lon, avg(lat) AS lat, count(*) AS n,
               count(*) FILTER (WHERE clock = 'red') AS red,
               count(*) FILTER (WHERE clock = 'yellow') AS yellow
        FROM (SELECT ST_X(c.location) AS lon, ST_Y(c.location) AS lat, {CLOCK_SQL} AS clock
              FROM cases c WHERE {where}) c
        GROUP BY floor(lon / :cell), floor(lat / :cell)"""),
        _params(viewer, bbox, cell=cell)).all()
    return {"cases": [], "clusters": [
        {"lat": r.lat, "lon": r.lon, "count": r.n, "red": r.red, "yellow": r.yellow}
        for r in clusters]}


def one_case_marker(viewer: Viewer, case_id: int) -> dict | None:
    """One case as a marker (None when closed, cancelled or outside the scope)."""
    row = db.session.execute(text(f"""
        SELECT c.id, c.code, ST_X(c.location) AS lon, ST_Y(c.location) AS lat, c.state,
               k.kind, {CLOCK_SQL} AS clock
        FROM cases c JOIN categories cat ON cat.id = c.category_id
             JOIN category_classes k ON k.id = cat.class_id
        WHERE {_SCOPE} AND c.id = :id AND c.state IN ({_OPEN})"""),
        _params(viewer, id=case_id)).first()
    return _marker(row) if row else None


def _marker(r) -> dict:
    return {"id": r.id, "code": r.code, "lat": r.lat, "lon": r.lon, "state": r.state,
            "kind": r.kind, "clock": r.clock}


def heat(viewer: Viewer, bbox) -> list[list[float]]:
    """``[lat, lon]`` of the last 7 days' reports in the bbox (at most MAX_HEAT_POINTS)."""
    rows = db.session.execute(text(f"""
        SELECT ST_Y(r.location), ST_X(r.location)
        FROM cases c JOIN reports r ON r.case_id = c.id
        WHERE {_SCOPE} AND c.location && {_ENVELOPE}
          AND r.created_at >= now() - interval '7 days'
        ORDER BY r.id DESC LIMIT :limit"""), _params(viewer, bbox, limit=MAX_HEAT_POINTS)).all()
    return [[lat, lon] for lat, lon in rows]


def counters(viewer: Viewer, lang: str = "zh") -> dict:
    """Today's figures in the city's time zone, the overdue list, tops and reports per hour."""
    # Midnight in the city, computed once (as an SQL expression it is re-evaluated per row).
    midnight = datetime.now(ZoneInfo(viewer.timezone)).replace(hour=0, minute=0, second=0,
                                                                microsecond=0)
    p = _params(viewer, tz=viewer.timezone, limit=OVERDUE_LIST, today=midnight)
    today = ":today"
    steps = db.session.execute(text(f"""
        SELECT h.to_state, count(DISTINCT h.case_id)
        FROM case_history h JOIN cases c ON c.id = h.case_id
        WHERE {_SCOPE} AND h.at >= {today}
          AND h.to_state IN ('filed', 'dispatched', 'handled', 'closed')
        GROUP BY h.to_state"""), p).all()
    clocks = dict(db.session.execute(text(f"""
        SELECT {CLOCK_SQL} AS clock, count(*) FROM cases c
        WHERE {_SCOPE} AND c.state IN ({_OPEN}) AND c.state <> 'shelved'
        GROUP BY 1"""), p).all())
    on_time = db.session.execute(text(f"""
        SELECT count(*) FILTER (WHERE c.handled_at <= c.deadline), count(*)
        FROM cases c
        WHERE {_SCOPE} AND c.handled_at >= {today} AND c.deadline IS NOT NULL
          AND c.state <> 'shelved'"""), p).first()
    overdue = db.session.execute(text(f"""
        SELECT c.id, c.code, c.grid_code, c.deadline, ST_X(c.location) AS lon,
               ST_Y(c.location) AS lat, cat.name_zh, cat.name_en
        FROM cases c JOIN categories cat ON cat.id = c.category_id
        WHERE {_SCOPE} AND c.state IN ({_OPEN}) AND c.state <> 'shelved'
          AND c.handled_at IS NULL AND {overdue_sql("c.deadline")}
        ORDER BY c.deadline LIMIT :limit"""), p).all()
    top_categories = db.session.execute(text(f"""
        SELECT cat.code, cat.name_zh, cat.name_en, count(*) AS n
        FROM cases c JOIN categories cat ON cat.id = c.category_id
        WHERE {_SCOPE} AND c.created_at >= {today}
        GROUP BY cat.code, cat.name_zh, cat.name_en ORDER BY n DESC, cat.code LIMIT 5"""),
        p).all()
    top_grids = db.session.execute(text(f"""
        SELECT t.grid_code, g.name, t.n
        FROM (SELECT c.grid_code, count(*) AS n FROM cases c
              WHERE {_SCOPE} AND c.created_at >= {today}
              GROUP BY c.grid_code ORDER BY n DESC, c.grid_code LIMIT 5) t
             LEFT JOIN regions g ON g.city_id = :city AND g.code = t.grid_code
        ORDER BY t.n DESC, t.grid_code"""), p).all()
    hours = dict(db.session.execute(text(f"""
        SELECT extract(hour FROM r.created_at AT TIME ZONE :tz)::int, count(*)
        FROM reports r JOIN cases c ON c.id = r.case_id
        WHERE {_SCOPE} AND r.created_at >= {today} GROUP BY 1"""), p).all())
    step = dict(steps)
    name = "name_en" if lang == "en" else "name_zh"
    return {
        "today": {"reported": sum(hours.values()), "filed": step.get("filed", 0),
                  "dispatched": step.get("dispatched", 0), "handled": step.get("handled", 0),
                  "closed": step.get("closed", 0)},
        "open": {colour: clocks.get(colour, 0) for colour in CLOCKS},
        "on_time_rate": round(on_time[0] / on_time[1], 4) if on_time[1] else None,
        "overdue": [{"id": r.id, "code": r.code, "grid_code": r.grid_code,
                     "deadline": _iso(r.deadline), "lat": r.lat, "lon": r.lon,
                     "category": getattr(r, name)} for r in overdue],
        "top_categories": [{"code": r.code, "name": getattr(r, name), "count": r.n}
                           for r in top_categories],
        "top_grids": [{"code": r.grid_code, "name": r.name, "count": r.n} for r in top_grids],
        "per_hour": [hours.get(h, 0) for h in range(24)],
    }


def case_card(viewer: Viewer, case_id: int, lang: str = "zh") -> dict:
    """Everything the wall's case card shows; 404 outside the viewer's scope."""
    case = db.session.get(Case, case_id)
    if (case is None or case.city_id != viewer.city_id
            or not case.grid_code.startswith(viewer.prefix)):
        raise NotFound("No such case in your area.", code="case_not_found")
    category = case.category
    kind = category.category_class.kind if category is not None else None
    point = db.session.execute(text(f"""
        SELECT {CLOCK_SQL} AS clock, ST_Y(c.location) AS lat, ST_X(c.location) AS lon,
               {_STAGE["stage"]} AS stage, {_STAGE["deadline"]} AS stage_deadline,
               {_STAGE["colour"]} AS stage_colour
        FROM cases c WHERE c.id = :id"""), {"id": case.id}).first()
    people = _names([case.worker_id] + [h.actor_id for h in case.history])
    department = db.session.execute(text("SELECT name, name_en FROM departments WHERE id = :id"),
                                    {"id": case.department_id}).first()
    photos = db.session.query(Photo).filter(Photo.case_id == case.id, Photo.public.is_(True)) \
        .order_by(Photo.id).all()
    en = lang == "en"
    return {
        "id": case.id, "code": case.code, "state": case.state, "clock": point.clock, "kind": kind,
        "category": {"code": category.code,
                     "name": category.name_en if en else category.name_zh},
        "grid_code": case.grid_code,
        "description": case.description,
        "lat": point.lat, "lon": point.lon,
        "deadline": _iso(case.deadline),
        "stage_clock": clock_answer(point.stage, point.stage_deadline, point.stage_colour),
        "created_at": _iso(case.created_at),
        "department": ((department.name_en or department.name) if en else department.name)
        if department else None,
        "department_id": case.department_id,
        "worker": people.get(case.worker_id),
        "worker_id": case.worker_id,
        "history": [_step(h, people) for h in case.history],
        "photos": [{"id": p.id, "stage": p.stage, "url": photo_url(p),
                    "thumb": photo_url(p) + "?size=thumb"} for p in photos],
    }


def photo_url(photo: Photo) -> str:
    """Where the wall loads a photo's public copy (the cases API serves it)."""
    return f"/api/v1/photos/{photo.sha256}"


def _step(h: CaseHistory, people: dict[int, str]) -> dict:
    return {"action": h.action, "from": h.from_state, "to": h.to_state, "at": _iso(h.at),
            "actor": people.get(h.actor_id), "role": h.actor_role, "note": h.note}


def _names(ids: list[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = db.session.execute(text(
        "SELECT id, coalesce(display_name, username) FROM users WHERE id = ANY(:ids)"),
        {"ids": wanted}).all()
    return dict(rows)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None



def receivers(viewer: Viewer, lang: str = "zh") -> dict:
    """Departments of the city and the scope's workers, for the card's dispatch form."""
    departments = db.session.execute(text("""
        SELECT id, name, name_en FROM departments
        WHERE city_id IS NULL OR city_id = :city ORDER BY name"""), _params(viewer)).all()
    workers = db.session.execute(text("""
        SELECT u.id, coalesce(u.display_name, u.username) AS name, r.code
        FROM users u JOIN regions r ON r.id = u.region_id
        WHERE u.role = 'inspector' AND u.is_active AND r.city_id = :city AND r.code LIKE :like
        ORDER BY r.code, u.id LIMIT 500"""), _params(viewer)).all()
    return {
        "departments": [{"id": d.id, "name": (d.name_en or d.name) if lang == "en" else d.name}
                        for d in departments],
        "workers": [{"id": w.id, "name": w.name, "region_code": w.code} for w in workers],
    }


MAX_WORKERS = 2_000
STALE_POSITION_SECONDS = 600


def workers(viewer: Viewer) -> list[dict]:
    """Workers of the scope with a known position; ``online``: on duty and heard from lately."""
    rows = db.session.execute(text("""
        SELECT u.id, coalesce(u.display_name, u.username) AS name, r.code,
               ST_X(p.position) AS lon, ST_Y(p.position) AS lat, p.on_duty, p.position_at,
               p.on_duty AND p.position_at >= now() - make_interval(secs => :stale) AS online
        FROM worker_presence p JOIN users u ON u.id = p.user_id
             JOIN regions r ON r.id = u.region_id
        WHERE r.city_id = :city AND r.code LIKE :like AND u.is_active
          AND p.position IS NOT NULL
        ORDER BY u.id LIMIT :limit"""),
        _params(viewer, stale=STALE_POSITION_SECONDS, limit=MAX_WORKERS)).all()
    return [{"id": r.id, "name": r.name, "region_code": r.code, "lat": r.lat, "lon": r.lon,
             "on_duty": r.on_duty, "online": bool(r.online), "at": _iso(r.position_at)}
            for r in rows]
