"""Someone runs ``make demo`` (twice) and gets 渝中区 with streets, communities and unit grids."""

from __future__ import annotations

from sqlalchemy import text

from gridmgr.demo.cli import demo
from gridmgr.extensions import db
from gridmgr.grids.locating import locate

JIEFANGBEI = (106.5770, 29.5570)


def snapshot():
    return db.session.execute(text(
        "SELECT level, code, name, id, md5(ST_AsBinary(geom)) FROM regions ORDER BY code")).all()


def test_loading_the_demo_twice_gives_the_same_city(app_ctx, runner):
    first = runner.invoke(demo, ["load"])
    assert first.exit_code == 0, first.output
    assert "demo city chongqing" in first.output
    counts = dict(db.session.execute(text(
        "SELECT level, count(*) FROM regions GROUP BY level")).all())
    assert counts["district"] == 1 and counts["street"] == 11
    assert 50 <= counts["community"] <= 100
    assert 1500 <= counts["grid"] <= 4000
    streets = db.session.scalars(text(
        "SELECT name FROM regions WHERE level = 'street' ORDER BY code")).all()
    assert streets[:2] == ["朝天门街道", "解放碑街道"] and "七星岗街道" in streets
    assert all(name.endswith("社区") for name in db.session.scalars(text(
        "SELECT name FROM regions WHERE level = 'community'")))
    # Every community got grids and none passed the code's limit.
    assert db.session.scalar(text("""
        SELECT count(*) FROM regions c WHERE c.level = 'community'
        AND NOT EXISTS (SELECT 1 FROM regions g WHERE g.parent_id = c.id)""")) == 0
    before = snapshot()

    where = locate(*JIEFANGBEI)
    assert where.region.level == "grid"
    assert [a.level for a in where.ancestors] == ["district", "street", "community"]
    assert where.ancestors[0].name == "渝中区"

    second = runner.invoke(demo, ["load"])
    assert second.exit_code == 0, second.output
    db.session.expire_all()
    assert snapshot() == before


def test_the_demo_brings_staff_to_try_it_with(app_ctx, runner):
    assert runner.invoke(demo, ["load"]).exit_code == 0
    users = dict(db.session.execute(text(
        "SELECT u.username, r.code FROM users u LEFT JOIN regions r ON r.id = u.region_id "
        "WHERE u.username LIKE 'demo-%'")).all())
    assert {"demo-admin", "demo-operator", "demo-dispatcher", "demo-inspector"} <= set(users)
    assert users["demo-inspector"] == "500103002"  # 解放碑街道


def test_the_demo_city_is_alive_with_cases_patrols_and_a_catalogue(app_ctx, runner):
    assert runner.invoke(demo, ["load"]).exit_code == 0
    states = dict(db.session.execute(text(
        "SELECT state, count(*) FROM cases GROUP BY state")).all())
    assert sum(states.values()) == 424  # 400 past cases and 24 reports of today
    assert states["closed"] > 200 and states["reported"] >= 24
    overdue = db.session.scalar(text(
        "SELECT count(*) FROM cases WHERE state IN ('dispatched', 'accepted') "
        "AND deadline < now()"))
    assert overdue > 10  # the command centre has something to chase
    assert db.session.scalar(text("SELECT count(*) FROM categories")) >= 40
    on_duty = db.session.scalar(text(
        "SELECT count(*) FROM worker_presence WHERE on_duty AND position IS NOT NULL"))
    assert on_duty == 11  # one patrol inspector per street

    assert runner.invoke(demo, ["load"]).exit_code == 0
    assert db.session.scalar(text("SELECT count(*) FROM cases")) == 424
