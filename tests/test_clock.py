"""One clock: every stage's deadline comes from one module, and one rule colours it (green;
yellow from 80 % of the limit up to the deadline itself; red after the deadline; paused while
shelved). The lists and their clock filter, the wall's markers and card, the vector tiles,
the live events and the evaluation all answer by that rule, at the threshold and at the
deadline too."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from itertools import count
from zoneinfo import ZoneInfo

import mapbox_vector_tile
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from maps_city import STREET_A, build_city, tile_of
from sqlalchemy import text

from gridmgr.calendar.deadlines import (
    Calendar,
    clock_colour,
    clock_state,
    current_clock,
    start_stages,
    yellow_at,
)
from gridmgr.cases.events import CASE_RETURNING, live_payload
from gridmgr.cases.queries import list_cases
from gridmgr.evaluation.indicators import compute
from gridmgr.evaluation.periods import Period
from gridmgr.extensions import db
from maps.feeds import case_card, open_cases
from maps.tiles import grid_tile
from maps.viewer import Viewer

SHANGHAI = ZoneInfo("Asia/Shanghai")
GRID = f"{STREET_A}001001"
_codes = count(1)

UNIT_AMOUNTS = {
    "working_hours": st.sampled_from([0.5, 1, 2, 3.5, 8, 13]),
    "working_days": st.sampled_from([0.5, 1, 2, 3]),
    "urgent_hours": st.sampled_from([0.25, 1, 4, 24, 30]),
    "natural_days": st.sampled_from([1, 2, 7]),
}
limits = st.sampled_from(sorted(UNIT_AMOUNTS)).flatmap(
    lambda unit: st.tuples(st.just(unit), UNIT_AMOUNTS[unit]))
days = st.dates(min_value=date(2026, 3, 1), max_value=date(2026, 3, 31))
calendars = st.builds(
    lambda holidays, workdays, country: Calendar(
        tz=SHANGHAI, holidays=frozenset(holidays), workdays=frozenset(workdays) - set(holidays),
        country=country),
    st.sets(days, max_size=5), st.sets(days, max_size=3), st.sampled_from([None, "CN"]))
starts = st.builds(
    lambda day, minutes: datetime.combine(day, time(0), SHANGHAI) + timedelta(minutes=minutes),
    st.dates(min_value=date(2026, 3, 1), max_value=date(2026, 3, 20)),
    st.integers(0, 24 * 60 - 1))
# Where the instant falls: exactly at the threshold or the deadline, one microsecond either
# side of them, before the start, or anywhere in between and after.
WHERE = ("threshold", "before_threshold", "deadline", "after_deadline", "start", "between",
         "long_after")


def instant(where: str, start: datetime, yellow: datetime, deadline: datetime,
            fraction: float) -> datetime:
    tick = timedelta(microseconds=1)
    return {
        "threshold": yellow, "before_threshold": yellow - tick, "deadline": deadline,
        "after_deadline": deadline + tick, "start": start,
        "between": start + (deadline - start) * fraction,
        "long_after": deadline + timedelta(days=3) * fraction,
    }[where]


@pytest.fixture
def world(app_ctx, make_user):
    city = build_city()
    chief = make_user("duty_chief", city_id=city.city.id)
    viewer = Viewer(user=chief, city_id=city.city.id, city_name=city.city.name,
                    timezone="Asia/Shanghai", prefix="")
    region_id, lon, lat = db.session.execute(text("""
        SELECT id, ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM regions
        WHERE code = :code"""), {"code": GRID}).one()
    category_id = db.session.scalar(text("SELECT id FROM categories WHERE code = 'C0101'"))
    return {"city": city.city, "chief": chief, "viewer": viewer, "region_id": region_id,
            "lon": lon, "lat": lat, "category_id": category_id}


def insert_case(world, state: str, **columns) -> int:
    """A case row as the workflow would leave it, straight into the table."""
    values = {"code": f"T{next(_codes):013d}", "city": world["city"].id, "state": state,
              "source": columns.pop("source", "inspector"), "category": world["category_id"],
              "region": world["region_id"], "grid": GRID, "lon": world["lon"],
              "lat": world["lat"], "deadlines": json.dumps(columns.pop("deadlines", {})),
              "deadline": columns.pop("deadline", None),
              "yellow_at": columns.pop("yellow_at", None),
              "paused_at": columns.pop("paused_at", None)}
    assert not columns
    return db.session.scalar(text("""
        INSERT INTO cases (code, city_id, state, source, channel, category_id, region_id,
                           grid_code, location, deadlines, dispatched_at, deadline, yellow_at,
                           clock_unit, paused_at)
        VALUES (:code, :city, :state, :source, 'app', :category, :region, :grid,
                ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), CAST(:deadlines AS jsonb),
                CASE WHEN :deadline IS NULL THEN NULL ELSE now() - interval '1 hour' END,
                :deadline, :yellow_at, 'urgent_hours', :paused_at)
        RETURNING id"""), values)


def listed_colour(world, case_id: int) -> str | None:
    """The colour whose ``clock=`` filter lists the case (the API's list filter)."""
    found = [colour for colour in ("green", "yellow", "red", "paused")
             if case_id in [item["id"] for item in
                            list_cases(world["chief"], clock=colour, limit=200)["items"]]]
    assert len(found) <= 1, found
    return found[0] if found else None


def tile_overdue(world) -> int:
    z = 16
    x, y = tile_of(world["lon"], world["lat"], z)
    layers = mapbox_vector_tile.decode(grid_tile(world["viewer"], z, x, y, "overdue"))
    values = {f["properties"]["code"]: f["properties"]["value"]
              for f in layers["grids"]["features"]}
    return values[GRID]


def evaluation_overdue(world, now: datetime) -> int:
    period = Period(start=now - timedelta(days=30), end=now + timedelta(days=1), label="t")
    rows = compute("city", period, world["city"].id)
    return sum(row.counts["overdue"] for row in rows)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(limit=limits, cal=calendars, start=starts, where=st.sampled_from(WHERE),
       fraction=st.floats(0, 1))
def test_every_place_that_shows_a_clock_colours_it_as_the_rule_does(world, limit, cal, start,
                                                                      where, fraction):
    unit, amount = limit
    clock = start_stages({}, ("dispatch",), {"dispatch": {"amount": amount, "unit": unit}},
                         start, cal)
    deadline = datetime.fromisoformat(clock["dispatch"])
    yellow = datetime.fromisoformat(clock["yellow"]["dispatch"])
    assert yellow == yellow_at(start, deadline, unit, 0, cal)
    at = instant(where, start.astimezone(UTC), yellow, deadline, fraction)
    expected = clock_state(start, deadline, at, unit, cal)
    assert clock_colour(deadline, yellow, at) == expected

    # Every place compares the stored instants with the transaction's now(): move the case's
    # instants so that now() is the instant chosen (the comparisons stay exactly the same).
    db.session.rollback()
    try:
        now = db.session.scalar(text("SELECT now()"))
        shift = now - at
        handling = insert_case(world, "dispatched", deadline=deadline + shift,
                               yellow_at=yellow + shift)
        staged = insert_case(world, "filed", deadlines={
            "dispatch": (deadline + shift).isoformat(),
            "yellow": {"dispatch": (yellow + shift).isoformat()}})

        assert listed_colour(world, handling) == expected
        items = {item["id"]: item for item in list_cases(world["chief"], limit=200)["items"]}
        assert items[handling]["clock"] == expected
        assert items[staged]["stage_clock"] == {
            "stage": "dispatch", "deadline": (deadline + shift).astimezone(UTC).isoformat(),
            "colour": expected}

        markers = {m["id"]: m for m in open_cases(world["viewer"],
                                                  (116.2, 39.8, 116.5, 40.0))["cases"]}
        assert markers[handling]["clock"] == expected
        assert case_card(world["viewer"], handling)["clock"] == expected
        assert case_card(world["viewer"], staged)["stage_clock"]["colour"] == expected

        assert tile_overdue(world) == (1 if expected == "red" else 0)
        assert evaluation_overdue(world, now) == (1 if expected == "red" else 0)

        rows = {case_id: db.session.execute(text(
            f"SELECT {CASE_RETURNING} FROM cases WHERE id = :id"), {"id": case_id}).one()
            for case_id in (handling, staged)}
        assert live_payload(rows[handling], now)["clock"] == expected
        payload = live_payload(rows[staged], now)
        assert payload["stage_clock"]["colour"] == expected
        assert payload["stage_clock"] == current_clock(rows[staged], now)
    finally:
        db.session.rollback()


def test_a_shelved_case_is_paused_everywhere_and_counts_as_overdue_nowhere(world):
    now = db.session.scalar(text("SELECT now()"))
    shelved = insert_case(world, "shelved", deadline=now - timedelta(hours=1),
                          yellow_at=now - timedelta(hours=2), paused_at=now - timedelta(hours=3))
    assert listed_colour(world, shelved) == "paused"
    assert case_card(world["viewer"], shelved)["clock"] == "paused"
    assert case_card(world["viewer"], shelved)["stage_clock"] == {
        "stage": "handle", "deadline": (now - timedelta(hours=1)).astimezone(UTC).isoformat(),
        "colour": "paused"}
    assert tile_overdue(world) == 0
    assert evaluation_overdue(world, now) == 0


# -- stories: each stage's clock on the case answer ------------------------------------------

STAGE_STATES = [("verify", "reported", "citizen"), ("file", "reported", "inspector"),
                ("file", "verified", "citizen"), ("dispatch", "filed", "citizen"),
                ("accept", "dispatched", "citizen"), ("check", "handled", "citizen"),
                ("close", "checked", "citizen")]


@pytest.mark.parametrize(("stage", "state", "source"), STAGE_STATES)
def test_a_chief_sees_the_current_stage_clock_go_yellow_then_red(
        world, client, auth_headers, stage, state, source):
    """A one-hour stage started 10, 50 and 61 minutes ago is green, yellow, then red on the
    case's answer, and the list says the same."""
    headers = auth_headers(world["chief"])
    limit = {stage: {"amount": 1, "unit": "urgent_hours"}}
    for minutes, colour in ((10, "green"), (50, "yellow"), (61, "red")):
        started = datetime.now(UTC) - timedelta(minutes=minutes)
        deadlines = start_stages({}, (stage,), limit, started, Calendar())
        case_id = insert_case(world, state, source=source, deadlines=deadlines)
        db.session.commit()
        answer = client.get(f"/api/v1/cases/{case_id}", headers=headers)
        assert answer.status_code == 200
        assert answer.get_json()["stage_clock"] == {
            "stage": stage, "deadline": deadlines[stage], "colour": colour}
        page = client.get("/api/v1/cases?limit=200", headers=headers).get_json()
        assert [i["stage_clock"] for i in page["items"] if i["id"] == case_id] == [
            {"stage": stage, "deadline": deadlines[stage], "colour": colour}]


def test_a_citizen_report_starts_its_verify_clock_and_a_closed_case_has_none(
        world, client, auth_headers, make_user):
    """The intake times the verify stage by the category's limit; a closed case runs no
    clock."""
    db.session.execute(text("""
        UPDATE categories SET limits = '{"verify": {"amount": 2, "unit": "urgent_hours"}}'
        WHERE code = 'C0101'"""))
    db.session.commit()
    citizen = make_user("citizen")
    sent = client.post("/api/v1/reports", headers=auth_headers(citizen), json={
        "category": "C0101", "lon": world["lon"], "lat": world["lat"], "description": "井盖破损"})
    assert sent.status_code in (200, 201), sent.get_json()
    case_id = sent.get_json()["case"]["id"]
    answer = client.get(f"/api/v1/cases/{case_id}", headers=auth_headers(world["chief"]))
    clock = answer.get_json()["stage_clock"]
    assert clock["stage"] == "verify" and clock["colour"] == "green"
    due = datetime.fromisoformat(clock["deadline"])
    assert timedelta(hours=2) - timedelta(minutes=1) < due - datetime.now(UTC) <= timedelta(
        hours=2)
    event = db.session.execute(text("""
        SELECT payload FROM live_events WHERE event = 'case.created'
        ORDER BY id DESC LIMIT 1""")).scalar()
    assert event["stage_clock"] == clock

    closed = insert_case(world, "closed")
    db.session.commit()
    answer = client.get(f"/api/v1/cases/{closed}", headers=auth_headers(world["chief"]))
    assert answer.get_json()["stage_clock"] is None and answer.get_json()["clock"] is None
