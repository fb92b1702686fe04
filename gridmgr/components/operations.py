"""Reading and editing components, the component a report names, and the nearest ones.

Anyone may read a component's public fields (code, name, category, state, place); staff of
the city also read its parties (department, owner, maintainer) and its cases. Administrators
edit components; every edit is written to the audit log and to the component's history.
"""

from __future__ import annotations

import json
import math

from flask import current_app
from sqlalchemy import text

from gridmgr.components.models import STATES, Component, ComponentHistory
from gridmgr.database.prepared import GENERIC_PLAN, Prepared
from gridmgr.errors import Conflict, InvalidInput, NotFound
from gridmgr.extensions import db
from gridmgr.people.models import User
from gridmgr.people.policy import authorize, in_scope

MAX_FEATURES = 5000
NEAREST_LIMIT = 3
EDITABLE = ("name", "state", "department", "owner", "maintainer")
COORDINATE_DIGITS = 7


def is_staff(user: User | None) -> bool:
    return user is not None and user.role != "citizen"


def _public(row) -> dict:
    return {"code": row.code, "name": row.name, "category": row.category,
            "category_name": row.category_name, "state": row.state,
            "grid_code": row.grid_code}


def _full(row) -> dict:
    return {**_public(row), "department": row.department, "owner": row.owner,
            "owner_department_id": row.owner_department_id, "maintainer": row.maintainer}


_SELECT = """
SELECT c.id, c.code, c.name, c.state, c.grid_code, c.city_id, c.department, c.owner,
       c.owner_department_id, c.maintainer, k.code AS category, k.name_zh AS category_name,
       ST_AsGeoJSON(c.geom, :digits) AS geometry
FROM components c JOIN categories k ON k.id = c.category_id
"""


def component_collection(user: User | None, bbox: tuple[float, float, float, float],
                         category: str | None = None, state: str | None = None,
                         limit: int = 1000) -> dict:
    """The components inside ``bbox`` as GeoJSON, by code; parties only for staff in scope."""
    west, south, east, north = bbox
    if not (west < east and south < north):
        raise InvalidInput("bbox must be west,south,east,north with west < east and "
                           "south < north.", code="bad_bbox")
    if state is not None and state not in STATES:
        raise InvalidInput(f"Unknown state {state!r}; use one of {', '.join(STATES)}.",
                           code="bad_state")
    if not 1 <= limit <= MAX_FEATURES:
        raise InvalidInput(f"limit must be between 1 and {MAX_FEATURES}.", code="bad_limit")
    rows = db.session.execute(text(_SELECT + """
        WHERE c.geom && ST_MakeEnvelope(:w, :s, :e, :n, 4326)
          AND ST_Intersects(c.geom, ST_MakeEnvelope(:w, :s, :e, :n, 4326))
          AND (CAST(:category AS text) IS NULL OR k.code = :category)
          AND (CAST(:state AS text) IS NULL OR c.state = :state)
        ORDER BY c.code LIMIT :limit"""), {
        "w": west, "s": south, "e": east, "n": north, "category": category, "state": state,
        "limit": limit + 1, "digits": COORDINATE_DIGITS}).all()
    features = [_feature(r, user) for r in rows[:limit]]
    return {"type": "FeatureCollection", "features": features,
            "numberReturned": len(features), "truncated": len(rows) > limit}


def _feature(row, user: User | None) -> dict:
    staff = is_staff(user) and in_scope(user, row.grid_code, row.city_id)
    return {"type": "Feature", "id": row.code, "geometry": json.loads(row.geometry),
            "properties": _full(row) if staff else _public(row)}


def _row(code: str):
    row = db.session.execute(text(_SELECT + " WHERE c.code = :code ORDER BY c.city_id LIMIT 1"),
                             {"code": code, "digits": COORDINATE_DIGITS}).one_or_none()
    if row is None:
        raise NotFound(f"No component has the code {code}.", code="component_not_found",
                       code_value=code)
    return row


def component_detail(user: User | None, code: str) -> dict:
    """One component as a Feature; staff in scope also get its history and its cases."""
    row = _row(code)
    feature = _feature(row, user)
    if is_staff(user) and in_scope(user, row.grid_code, row.city_id):
        feature["properties"]["cases"] = [dict(r._mapping) | {
            "created_at": r.created_at.isoformat(),
            "closed_at": r.closed_at.isoformat() if r.closed_at else None}
            for r in db.session.execute(text("""
                SELECT k.id, k.code, k.state, k.description, k.created_at, k.closed_at
                FROM case_components cc JOIN cases k ON k.id = cc.case_id
                WHERE cc.component_id = :id ORDER BY k.id DESC LIMIT 200"""), {"id": row.id})]
        feature["properties"]["history"] = [
            {"action": h.action, "at": h.at.isoformat(), "actor_id": h.actor_id,
             "case_id": h.case_id, "changes": h.changes}
            for h in db.session.scalars(db.select(ComponentHistory).where(
                ComponentHistory.component_id == row.id).order_by(ComponentHistory.id))]
    return feature


def edit_component(actor: User, code: str, changes: dict) -> dict:
    """An administrator's edit of a component's name, state or parties; audited."""
    component = db.session.scalar(db.select(Component).where(Component.code == code))
    if component is None:
        raise NotFound(f"No component has the code {code}.", code="component_not_found",
                       code_value=code)
    authorize(actor, "admin.categories", region_code=component.grid_code,
              city_id=component.city_id)
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidInput(f"{', '.join(unknown)} cannot be edited; editable: "
                           f"{', '.join(EDITABLE)}.", code="not_editable")
    if "state" in changes and changes["state"] not in STATES:
        raise InvalidInput(f"Unknown state {changes['state']!r}; use one of "
                           f"{', '.join(STATES)}.", code="bad_state")
    before = {k: getattr(component, k) for k in changes}
    for key, value in changes.items():
        setattr(component, key, value)
        if key in ("department", "owner", "maintainer"):
            setattr(component, f"{key}_department_id" if key != "department" else
                    "department_id", _department_named(value))
    component.updated_at = db.func.now()
    after = dict(changes)
    _record(component.id, "edited", actor, {"before": before, "after": after})
    from gridmgr.audit.operations import record

    record(actor, "component.edit", "component", component.code, before=before, after=after)
    db.session.commit()
    return component_detail(actor, code)


def _department_named(name: str | None) -> int | None:
    if not name:
        return None
    return db.session.scalar(text(
        "SELECT id FROM departments WHERE lower(name) = lower(:n) OR lower(name_en) = lower(:n) "
        "ORDER BY id LIMIT 1"), {"n": name.strip()})


def _record(component_id: int, action: str, actor: User | None, changes: dict,
            case_id: int | None = None) -> None:
    db.session.add(ComponentHistory(component_id=component_id, action=action,
                                    actor_id=actor.id if actor else None, case_id=case_id,
                                    changes=changes))


def set_state_after_case(actor: User, case_id: int, state: str) -> dict:
    """The state of the component a closed case was reported at, as the case left it
    (repaired: intact; replaced: intact), set by staff who may close the case."""
    if state not in STATES:
        raise InvalidInput(f"Unknown state {state!r}; use one of {', '.join(STATES)}.",
                           code="bad_state")
    row = db.session.execute(text("""
        SELECT k.state AS case_state, k.grid_code, k.city_id, c.id, c.code, c.state
        FROM cases k LEFT JOIN case_components cc ON cc.case_id = k.id
        LEFT JOIN components c ON c.id = cc.component_id WHERE k.id = :id"""),
        {"id": case_id}).one_or_none()
    if row is None:
        raise NotFound(f"No case has the id {case_id}.", code="case_not_found")
    authorize(actor, "case.close", region_code=row.grid_code, city_id=row.city_id)
    if row.id is None:
        raise InvalidInput(f"Case {case_id} was not reported at a component.",
                           code="no_component")
    if row.case_state != "closed":
        raise Conflict(f"Case {case_id} is {row.case_state}; a component's state is set "
                       "when its case is closed.", code="case_not_closed")
    db.session.execute(text("UPDATE components SET state = :s, updated_at = now() "
                            "WHERE id = :id"), {"s": state, "id": row.id})
    _record(row.id, "state_after_case", actor, {"before": {"state": row.state},
                                                "after": {"state": state}}, case_id)
    db.session.commit()
    return component_detail(actor, row.code)


# -- reports at a component -----------------------------------------------------------------


def nearest_radius_m() -> float:
    return float(current_app.config["GRIDMGR_COMPONENT_RADIUS_M"])


# The category's id is resolved once (an InitPlan), not joined per row; the box is the radius
# in degrees at the point's latitude, so the GiST index on geom finds the few candidates and
# the exact (spheroid) distance is computed for those alone. Prepared once per connection and
# run as a generic plan: planned per lookup (PostgreSQL's own choice here) it cost twice the CPU.
_NEAREST = Prepared("gridmgr_nearest_components", """
SELECT code, name, state, distance FROM (
    SELECT c.code, c.name, c.state,
           ST_Distance(c.geom::geography,
                       ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) AS distance
    FROM components c
    WHERE c.category_id = (SELECT id FROM categories WHERE code = :category)
      AND c.geom && ST_MakeEnvelope(:west, :south, :east, :north, 4326)
) near
WHERE distance <= :radius
ORDER BY distance, code
LIMIT :limit
""", setup=GENERIC_PLAN)
# Metres per degree of latitude at the equator (the fewest anywhere) and of longitude at the
# equator; the box is widened by 1 % so that no component within the radius falls outside it.
_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON = 111_320.0


def nearest_components(lon: float, lat: float, category: str, radius_m: float | None = None,
                       limit: int = NEAREST_LIMIT) -> list[dict]:
    """The components of ``category`` within ``radius_m`` of (lon, lat), nearest first."""
    radius = nearest_radius_m() if radius_m is None else radius_m
    dlat = radius * 1.01 / _M_PER_DEG_LAT
    dlon = radius * 1.01 / (_M_PER_DEG_LON * max(math.cos(math.radians(lat)), 0.01))
    cursor = _NEAREST.execute({
        "lon": lon, "lat": lat, "category": category, "radius": radius, "limit": limit,
        "west": lon - dlon, "south": lat - dlat, "east": lon + dlon, "north": lat + dlat})
    with cursor:
        rows = cursor.fetchall()
    return [{"code": code, "name": name, "state": state, "distance_m": round(distance, 1)}
            for code, name, state, distance in rows]


def component_for_report(code: str) -> dict:
    """The component a report names: its id, category code and a point on it (lon, lat);
    422 ``unknown_component`` when no component has the code."""
    row = db.session.execute(text("""
        SELECT c.id, k.code AS category, ST_X(p) AS lon, ST_Y(p) AS lat
        FROM components c JOIN categories k ON k.id = c.category_id,
             LATERAL ST_PointOnSurface(c.geom) AS p
        WHERE c.code = :code ORDER BY c.city_id LIMIT 1"""), {"code": code}).one_or_none()
    if row is None:
        raise InvalidInput(f"No component has the code {code!r:.40}.",
                           code="unknown_component")
    return {"id": row.id, "category": row.category, "lon": row.lon, "lat": row.lat}


def link_case(case_id: int, component_id: int) -> None:
    """Record that the case was reported at the component (once; a resend changes nothing)."""
    db.session.execute(text(
        "INSERT INTO case_components (case_id, component_id) VALUES (:case, :component) "
        "ON CONFLICT (case_id) DO NOTHING"), {"case": case_id, "component": component_id})
    db.session.commit()

