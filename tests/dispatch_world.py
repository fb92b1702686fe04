"""A small city for dispatch and live tests: two unit grids side by side in one street, one
grid in another street, a category, and helpers that file cases through the real workflow."""

from __future__ import annotations

from sqlalchemy import text

from gridmgr.cases.intake import ReportInput, submit_report
from gridmgr.cases.workflow import StepInput, take_step
from gridmgr.categories.models import Category, CategoryClass
from gridmgr.extensions import db
from gridmgr.grids.models import City, Region
from gridmgr.people.models import Department

DISTRICT = "110101"
STREET = "110101001"
COMMUNITY = "110101001001"
GRID_A = "110101001001001"
GRID_B = "110101001001002"
OTHER_STREET = "110101002"
OTHER_COMMUNITY = "110101002001"
OTHER_GRID = "110101002001001"
# Centres of the grids (each 0.001° square).
POINT_A = (116.3005, 39.9005)
POINT_B = (116.3015, 39.9005)
POINT_OTHER = (116.3105, 39.9005)
CATEGORY = "E0101"


def _box(west: float, south: float, east: float, north: float) -> str:
    return (f"SRID=4326;MULTIPOLYGON((({west} {south},{east} {south},{east} {north},"
            f"{west} {north},{west} {south})))")


def build_city(*, auto_dispatch: bool = True, limits: dict | None = None) -> dict:
    """The city, its regions, a department and category ``E0101``; committed."""
    city = City(slug="test-city", name="测试市", timezone="Asia/Shanghai")
    db.session.add(city)
    db.session.flush()
    shapes = [
        (DISTRICT, "district", None, (116.29, 39.89, 116.33, 39.92)),
        (STREET, "street", DISTRICT, (116.300, 39.900, 116.302, 39.901)),
        (COMMUNITY, "community", STREET, (116.300, 39.900, 116.302, 39.901)),
        (GRID_A, "grid", COMMUNITY, (116.300, 39.900, 116.301, 39.901)),
        (GRID_B, "grid", COMMUNITY, (116.301, 39.900, 116.302, 39.901)),
        (OTHER_STREET, "street", DISTRICT, (116.310, 39.900, 116.311, 39.901)),
        (OTHER_COMMUNITY, "community", OTHER_STREET, (116.310, 39.900, 116.311, 39.901)),
        (OTHER_GRID, "grid", OTHER_COMMUNITY, (116.310, 39.900, 116.311, 39.901)),
    ]
    regions: dict[str, Region] = {}
    for code, level, parent, box in shapes:
        region = Region(city_id=city.id, level=level, code=code, name=f"区域 {code}",
                        parent_id=regions[parent].id if parent else None, geom=_box(*box),
                        area_m2=10_000.0)
        db.session.add(region)
        db.session.flush()
        regions[code] = region
    department = Department(city_id=city.id, name="城管执法", name_en="Enforcement")
    db.session.add(department)
    db.session.flush()
    group = CategoryClass(code="E01", kind="event", name_zh="市容环境", name_en="Environment")
    db.session.add(group)
    db.session.flush()
    category = Category(code=CATEGORY, class_id=group.id, name_zh="暴露垃圾",
                        name_en="Exposed garbage", department_id=department.id,
                        auto_dispatch=auto_dispatch,
                        limits=limits or {"handle": {"amount": 2, "unit": "urgent_hours"}})
    db.session.add(category)
    db.session.commit()
    return {"city_id": city.id, "department_id": department.id, "category": category}


def report_and_file(reporter, operator, point=POINT_A) -> int:
    """An inspector reports at ``point`` and an operator files it: the case id (filed, and
    dispatched by the rules at once when the category has ``auto_dispatch``)."""
    result = submit_report(ReportInput(lon=point[0], lat=point[1], category=CATEGORY,
                                       description="垃圾堆放"), reporter)
    take_step(result.case_id, "file", operator, StepInput())
    return result.case_id


def case_row(case_id: int):
    db.session.expire_all()
    return db.session.execute(text(
        "SELECT id, state, worker_id, department_id, dispatched_at, version FROM cases "
        "WHERE id = :id"), {"id": case_id}).one()


def history(case_id: int, action: str | None = None) -> list:
    rows = db.session.execute(text(
        "SELECT action, from_state, to_state, details FROM case_history WHERE case_id = :id "
        "ORDER BY id"), {"id": case_id}).all()
    return [r for r in rows if action is None or r.action == action]


def outbox(event: str | None = None) -> list:
    rows = db.session.execute(text(
        "SELECT seq, event, payload, rooms FROM live_events ORDER BY id")).all()
    return [r for r in rows if event is None or r.event == event]


def go_on_duty(user, point=None) -> None:
    """Put ``user`` on duty (and at ``point``) directly, as the app's calls would leave it."""
    db.session.execute(text("""
        INSERT INTO worker_presence (user_id, on_duty, position, position_at)
        VALUES (:id, true, CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
                                ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END, now())
        ON CONFLICT (user_id) DO UPDATE SET on_duty = true, position = EXCLUDED.position,
            position_at = EXCLUDED.position_at"""),
        {"id": user.id, "lon": point[0] if point else None, "lat": point[1] if point else None})
    db.session.commit()
