"""A small real city for the map wall's tests: one district, two streets, four communities,
64 unit grids as squares in Beijing, the default category catalogue and a few cases."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from gridmgr.cases.intake import ReportInput, submit_report
from gridmgr.cases.workflow import StepInput, take_step
from gridmgr.categories.operations import load_default_catalogue
from gridmgr.extensions import db
from gridmgr.grids.models import City, Region
from gridmgr.people.models import Department

DISTRICT = "110101"
STREET_A = "110101001"
STREET_B = "110101002"
WEST, SOUTH = 116.30, 39.90
GRID_W, GRID_H = 0.005, 0.0025  # degrees; 4 x 4 grids per community


@dataclass
class WallCity:
    city: City
    department: Department

    def grid_centre(self, street: str, community: int, col: int, row: int) -> tuple[float, float]:
        """lon, lat of the centre of a grid (community 1 or 2; col, row 0..3)."""
        x0 = WEST + (0 if street == STREET_A else 0.02)
        y0 = SOUTH + (community - 1) * 0.01
        return x0 + (col + 0.5) * GRID_W, y0 + (row + 0.5) * GRID_H


def _square(w: float, s: float, e: float, n: float) -> str:
    return f"SRID=4326;MULTIPOLYGON((({w} {s},{e} {s},{e} {n},{w} {n},{w} {s})))"


def build_city() -> WallCity:
    """Regions of every level, the default catalogue and a department (committed)."""
    city = City(slug="wall-city", name="示范市", timezone="Asia/Shanghai")
    db.session.add(city)
    db.session.flush()

    def add(level, code, name, parent, box):
        region = Region(city_id=city.id, level=level, code=code, name=name,
                        parent_id=parent.id if parent else None, geom=_square(*box),
                        area_m2=1.0)
        db.session.add(region)
        db.session.flush()
        return region

    district = add("district", DISTRICT, "东城区", None, (WEST, SOUTH, WEST + 0.04, SOUTH + 0.02))
    for s, (street_code, street_name) in enumerate([(STREET_A, "东华门街道"),
                                                    (STREET_B, "景山街道")]):
        x0 = WEST + 0.02 * s
        street = add("street", street_code, street_name, district,
                     (x0, SOUTH, x0 + 0.02, SOUTH + 0.02))
        for c in range(2):
            y0 = SOUTH + 0.01 * c
            community = add("community", f"{street_code}{c + 1:03d}", f"{street_name}社区{c + 1}",
                            street, (x0, y0, x0 + 0.02, y0 + 0.01))
            serial = 1
            for row in range(3, -1, -1):  # north to south, west to east
                for col in range(4):
                    w, south = x0 + col * GRID_W, y0 + row * GRID_H
                    add("grid", f"{community.code}{serial:03d}", f"网格{serial}", community,
                        (w, south, w + GRID_W, south + GRID_H))
                    serial += 1
    db.session.commit()
    load_default_catalogue()
    db.session.commit()
    department = db.session.scalar(select(Department).order_by(Department.id).limit(1))
    return WallCity(city=city, department=department)


def report(reporter, lon: float, lat: float, category: str = "C0101",
           description: str = "井盖破损") -> int:
    """A report through the intake (as the API does); the new case's id."""
    return submit_report(ReportInput(lon=lon, lat=lat, category=category,
                                     description=description), reporter).case_id


def dispatch(case_id: int, dispatcher, department: Department) -> None:
    """File (when needed) and dispatch a case to a department."""
    state = db.session.scalar(text("SELECT state FROM cases WHERE id = :id"), {"id": case_id})
    if state in ("reported", "verified"):
        take_step(case_id, "file", dispatcher, StepInput())
    take_step(case_id, "dispatch", dispatcher, StepInput(department=str(department.id)))


def make_overdue(case_id: int) -> None:
    """Move a dispatched case's clock past its deadline (as if time had passed)."""
    db.session.execute(text("""
        UPDATE cases SET dispatched_at = now() - interval '3 days',
               yellow_at = now() - interval '2 days', deadline = now() - interval '1 day'
        WHERE id = :id"""), {"id": case_id})
    db.session.commit()


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The web-mercator tile x, y holding a point at zoom z."""
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def insert_history(city: WallCity, rows: list[tuple]) -> None:
    """Past cases straight into the table, as a city's history would be: rows of (grid code,
    category code, created); each closed five hours later."""
    db.session.execute(text("""
        INSERT INTO cases (code, city_id, state, source, channel, category_id, region_id,
                           grid_code, location, created_at, updated_at, closed_at)
        SELECT :code, :city, 'closed', 'inspector', 'patrol', k.id, g.id, g.code,
               ST_PointOnSurface(g.geom), :created, :created, :created + interval '5 hours'
        FROM regions g, categories k WHERE g.city_id = :city AND g.code = :grid
          AND k.code = :category"""),
        [{"code": f"H{n:08d}", "city": city.city.id, "grid": grid, "category": category,
          "created": created} for n, (grid, category, created) in enumerate(rows, start=1)])
    db.session.commit()


def twelve_weeks(city: WallCity, busy: list[str], quiet: list[str]) -> None:
    """Twelve weeks of history: each busy grid two cases a week (C0101, E0101), each quiet one
    every other week; in the last three days a burst of ten E0101 in each busy grid."""
    now = datetime.now(UTC)
    rows = []
    for week in range(1, 13):
        monday = now - timedelta(days=7 * week + 4)
        for grid in busy:
            rows += [(grid, "C0101", monday + timedelta(days=1, hours=2)),
                     (grid, "E0101", monday + timedelta(days=3, hours=5))]
        if week % 2:
            rows += [(grid, "C0101", monday + timedelta(days=2, hours=3)) for grid in quiet]
    for grid in busy:
        rows += [(grid, "E0101", now - timedelta(days=3, hours=k)) for k in range(10)]
    insert_history(city, rows)


def form_token(client, path: str = "/wall/login") -> str:
    """The CSRF token of the wall form at ``path``, as a browser would post it back."""
    page = client.get(path).text
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def wall_sign_in(client, username: str, password: str, next_url: str | None = None):
    """Sign in through the wall's form, with the token the sign-in page gave."""
    url = "/wall/login" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data={"username": username, "password": password,
                                  "csrf_token": form_token(client)})


# The workbench stories' staff: a role (or a second operator) and the username it signs in with.
STAFF_USERNAMES = {"operator": "op", "operator2": "op2", "dispatcher": "disp", "department": "dept",
                   "duty_chief": "chief", "admin": "boss", "inspector": "insp",
                   "citizen": "alice"}


def city_staff(city, make_user, names=tuple(STAFF_USERNAMES)) -> dict:
    """One user of each named role in the city: the department user works for its
    department, the inspector covers street A, the citizen belongs to no city."""
    users = {}
    for name in names:
        role, username = name.rstrip("0123456789"), STAFF_USERNAMES[name]
        if role == "inspector":
            users[name] = make_user(role, username=username, region_code=STREET_A)
        elif role == "citizen":
            users[name] = make_user(role, username=username)
        elif role == "department":
            users[name] = make_user(role, username=username, city_id=city.city.id,
                                    department=city.department)
        else:
            users[name] = make_user(role, username=username, city_id=city.city.id)
    return users
