"""Four weeks of life in the demo city, so the wall, the statistics and the forecast have
something to show: past cases with whole timelines (through the history import, as a city
moving from its old system would load them), inspectors on patrol with live positions, and a
few fresh reports of today (through the intake, as phones send them).

Everything is seeded (``random.Random(2026)``) and keyed by fixed references (``DEMO-0001`` …)
and client ids, so loading twice adds nothing.
"""

from __future__ import annotations

import csv
import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, text

from gridmgr.cases.intake import ReportInput, submit_report
from gridmgr.dispatch.duty import record_position, set_duty
from gridmgr.dispatch.rosters import add_roster_entry
from gridmgr.errors import DomainError
from gridmgr.extensions import db
from gridmgr.legacy.importing import import_history
from gridmgr.people import operations
from gridmgr.people.models import User

PAST_CASES = 400
FRESH_REPORTS = 24
PATROL_SURNAMES = "张李王赵陈刘杨黄周吴徐孙"
COLUMNS = ("reference", "category", "lon", "lat", "step", "time", "actor_role", "actor",
           "department", "note")
DESCRIPTIONS = ("巡查发现", "市民反映", "路口附近", "小区门口", "人行道上", "公交站旁")


def load_activity(city_slug: str, district_code: str, password: str) -> dict:
    """Patrol inspectors, past cases and today's reports for the demo city; idempotent."""
    patrol = _patrol_inspectors(city_slug, district_code, password)
    imported = _import_past_cases(district_code)
    fresh = _fresh_reports(district_code, patrol)
    return {"inspectors": len(patrol), "past_cases": imported, "fresh_reports": fresh}


def _patrol_inspectors(city_slug: str, district_code: str, password: str) -> list[User]:
    """One grid inspector per street, rostered on a grid of it, on duty at its centre."""
    streets = db.session.execute(text(
        "SELECT id, code FROM regions WHERE level = 'street' AND code LIKE :district "
        "ORDER BY code"), {"district": district_code + "%"}).all()
    patrol = []
    for n, street in enumerate(streets, start=1):
        username = f"demo-patrol-{n}"
        user = db.session.scalar(select(User).where(User.username == username))
        if user is None:
            user = operations.create_user(
                operations.console_admin(), username, password, "inspector",
                region_code=street.code, city=city_slug,
                display_name=PATROL_SURNAMES[(n - 1) % len(PATROL_SURNAMES)] + "网格员")
            db.session.commit()
            grid = db.session.scalar(text(
                "SELECT code FROM regions WHERE level = 'grid' AND code LIKE :street "
                "ORDER BY code LIMIT 1"), {"street": street.code + "%"})
            add_roster_entry(username, grid)
        set_duty(user, True)
        lon, lat = db.session.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM regions "
            "WHERE id = :id) x"), {"id": street.id}).one()
        try:
            record_position(user, lon, lat)
        except DomainError as exc:  # loaded again within the position throttle: keep the last
            if exc.status != 429:
                raise
        patrol.append(user)
    db.session.commit()
    return patrol


def _random_points(district_code: str, count: int, seed: int) -> list[tuple[float, float]]:
    return [tuple(p) for p in db.session.execute(text(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, :n, :seed))).geom"
        " AS p FROM regions WHERE level = 'district' AND code = :code) x"),
        {"n": count, "seed": seed, "code": district_code}).all()]


def _import_past_cases(district_code: str) -> int:
    """Past cases in every outcome: closed on time or late, reworked, overdue, still open.
    Made once: their times count back from now, so a later load would write other times for
    the same references, and imported history is not rewritten."""
    if db.session.scalar(text("SELECT EXISTS (SELECT 1 FROM cases WHERE code = 'DEMO-0001')")):
        return 0
    categories = db.session.execute(text(
        "SELECT c.code, d.name FROM categories c JOIN departments d ON d.id = c.department_id "
        "WHERE c.active AND c.code ~ '^[CE][0-9]{4}$' ORDER BY c.code")).all()
    rng = random.Random(2026)
    now = datetime.now(UTC).replace(microsecond=0)
    rows = []
    for n, (lon, lat) in enumerate(_random_points(district_code, PAST_CASES, 2026), start=1):
        category, department = rng.choice(categories)
        reported = now - timedelta(days=rng.uniform(1, 28))
        rows.extend(_timeline(f"DEMO-{n:04d}", category, department, lon, lat, reported,
                              now, rng))
    with tempfile.TemporaryDirectory(prefix="gridmgr-demo-history-") as tmp:
        path = Path(tmp) / "history.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        result = import_history(path)
    return result.cases


def _timeline(reference, category, department, lon, lat, reported, now, rng) -> list[dict]:
    """The steps of one past case; where it stops decides its outcome."""
    citizen = rng.random() < 0.4
    steps = [("reported", "citizen" if citizen else "inspector",
              "市民" if citizen else "巡查网格员", "", rng.choice(DESCRIPTIONS))]
    if citizen:
        steps.append(("verify", "inspector", "巡查网格员", "", ""))
    steps += [("file", "operator", "受理员", "", ""),
              ("dispatch", "dispatcher", "派遣员", department, ""),
              ("accept", "department", department + "值班员", "", "")]
    outcome = rng.random()
    if outcome < 0.12:
        pass  # accepted, never handled: overdue by now
    elif outcome < 0.2:
        steps += [("handle", "department", department + "值班员", "", "已处置"),
                  ("rework", "duty_chief", "值班长", "", "核查未通过，返工"),
                  ("accept", "department", department + "值班员", "", ""),
                  ("handle", "department", department + "值班员", "", "返工完成")]
    else:
        steps.append(("handle", "department", department + "值班员", "", "已处置"))
    if outcome >= 0.12 and outcome < 0.9:
        steps += [("check", "inspector", "核查监督员", "", "现场核查通过"),
                  ("close", "duty_chief", "值班长", "", "")]
    rows, at = [], reported
    for step, role, actor, dept, note in steps:
        # Slow cases (a fifth) take days between steps; the rest hours.
        at += timedelta(minutes=round(rng.uniform(12, 1800 if outcome > 0.8 else 180)))
        if at >= now:
            break
        on_site = step in ("reported", "handle", "check")
        rows.append({"reference": reference, "category": category if step == "reported" else "",
                     "lon": f"{lon:.6f}" if on_site else "", "lat": f"{lat:.6f}" if on_site else "",
                     "step": step, "time": at.isoformat(), "actor_role": role, "actor": actor,
                     "department": dept, "note": note})
    return rows


def _fresh_reports(district_code: str, patrol: list[User]) -> int:
    """Today's patrol reports, sent through the intake as the inspectors' phones would."""
    categories = db.session.execute(text(
        "SELECT code FROM categories WHERE active AND code ~ '^[CE][0-9]{4}$' ORDER BY code"
    )).scalars().all()
    sent = 0
    for n, (lon, lat) in enumerate(_random_points(district_code, FRESH_REPORTS, 7), start=1):
        reporter = patrol[n % len(patrol)]
        result = submit_report(ReportInput(
            lon=lon, lat=lat, category=categories[(n * 7) % len(categories)],
            description="巡查发现", channel="patrol", client_id=f"demo-fresh-{n}"), reporter)
        sent += 1 if result.created else 0
    return sent
