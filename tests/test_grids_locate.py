"""Points resolve to their unit grid and ancestors, one at a time or in batches, always alike."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sqlalchemy import text
from test_grids_generate import CELL, YUZHONG, load_yuzhong

from gridmgr.extensions import db
from gridmgr.grids import locating
from gridmgr.grids.cli import grids
from gridmgr.grids.generation import generate_grids
from gridmgr.grids.locating import OUTSIDE, OutsideCity, locate, locate_many, locations_of

JIEFANGBEI = (106.5770, 29.5570)  # 解放碑, in the middle of 渝中区


def single(lon: float, lat: float) -> int:
    try:
        return locate(lon, lat).region.id
    except OutsideCity:
        return OUTSIDE


def random_points(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    west, south, east, north = db.session.execute(text(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
        "FROM (SELECT ST_Extent(geom) AS e FROM regions) s")).one()
    rng = np.random.default_rng(seed)
    return (rng.uniform(west - 0.01, east + 0.01, n), rng.uniform(south - 0.01, north + 0.01, n))


def postgis_answers(lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    """The documented rule written as one set-based PostGIS query over all the points."""
    rows = db.session.execute(text("""
        SELECT DISTINCT ON (p.n) p.n, r.id
        FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[]))
             WITH ORDINALITY AS p(lon, lat, n)
        JOIN regions r ON ST_Intersects(r.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326))
        ORDER BY p.n, char_length(r.code) DESC, r.code, r.city_id"""),
        {"lons": lons.tolist(), "lats": lats.tolist()}).all()
    answers = np.full(len(lons), OUTSIDE, dtype=np.int64)
    for n, region_id in rows:
        answers[n - 1] = region_id
    return answers


def test_single_and_batch_agree_with_postgis_on_random_points(app_ctx, data_dir):
    load_yuzhong(data_dir)
    generate_grids(within="district", cell_area_m2=CELL)
    lons, lats = random_points(20_000)

    batch = locate_many(lons, lats)
    expected = postgis_answers(lons, lats)
    assert (batch == expected).all()
    assert 0.2 < (batch != OUTSIDE).mean() < 0.9  # both inside and outside points were tried
    assert [single(x, y) for x, y in zip(lons[:400], lats[:400], strict=True)] \
        == batch[:400].tolist()


def test_a_point_resolves_to_its_grid_and_every_ancestor(app_ctx, data_dir, runner):
    load_yuzhong(data_dir)
    generate_grids(within="district", cell_area_m2=CELL)

    location = locate(*JIEFANGBEI)
    assert location.region.level == "grid" and location.region.code.startswith(YUZHONG)
    assert [a.code for a in location.ancestors] == [YUZHONG]
    [from_batch] = locations_of(locate_many([JIEFANGBEI[0]], [JIEFANGBEI[1]]))
    assert from_batch == location

    shown = runner.invoke(grids, ["locate", str(JIEFANGBEI[0]), str(JIEFANGBEI[1])])
    assert shown.exit_code == 0
    assert location.region.code in shown.output and "渝中区" in shown.output


def test_a_point_outside_every_region_is_outside_city(app_ctx, data_dir, runner):
    load_yuzhong(data_dir)
    with pytest.raises(OutsideCity) as outside:
        locate(116.397, 39.909)  # Tian'anmen, far from Chongqing
    assert outside.value.code == "outside_city" and outside.value.status == 422
    assert locate_many([116.397, np.nan], [39.909, 29.5]).tolist() == [OUTSIDE, OUTSIDE]
    assert locations_of(np.array([OUTSIDE])) == [None]
    shown = runner.invoke(grids, ["locate", "116.397", "39.909"])
    assert shown.exit_code == 1 and "outside_city" in shown.output


def test_without_grids_the_deepest_region_answers_and_new_grids_are_seen(app_ctx, data_dir):
    load_yuzhong(data_dir)
    assert locate(*JIEFANGBEI).region.code == YUZHONG
    [before] = locate_many([JIEFANGBEI[0]], [JIEFANGBEI[1]])
    assert before == locate(*JIEFANGBEI).region.id

    generate_grids(within="district", cell_area_m2=CELL)
    [after] = locate_many([JIEFANGBEI[0]], [JIEFANGBEI[1]])
    assert after == locate(*JIEFANGBEI).region.id != before


def test_points_on_shared_corners_and_edges_always_resolve_to_the_same_grid(app_ctx, data_dir):
    load_yuzhong(data_dir)
    generate_grids(within="district", cell_area_m2=CELL)
    # A vertex shared by four grids: every one of them holds it; the smallest code wins.
    corner = db.session.execute(text("""
        WITH pts AS (SELECT DISTINCT id, (ST_DumpPoints(geom)).geom AS p
                     FROM regions WHERE level = 'grid')
        SELECT ST_X(p), ST_Y(p) FROM pts GROUP BY p HAVING count(*) = 4
        ORDER BY ST_X(p), ST_Y(p) LIMIT 1""")).one()
    holders = db.session.scalars(text(
        "SELECT code FROM regions WHERE level = 'grid' AND "
        "ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) ORDER BY code"),
        {"x": corner[0], "y": corner[1]}).all()
    assert len(holders) == 4
    answers = {locate(*corner).region.code for _ in range(5)}
    assert answers == {holders[0]}
    batch = locate_many(np.full(3, corner[0]), np.full(3, corner[1]))
    assert {loc.region.code for loc in locations_of(batch)} == {holders[0]}

    # The middle of edges shared by two grids: the same answer by every path, every time.
    mids = db.session.execute(text("""
        SELECT ST_X(m), ST_Y(m) FROM (
            SELECT ST_LineInterpolatePoint(ST_GeometryN(ST_LineMerge(
                       ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 2)), 1), 0.5) AS m
            FROM regions a JOIN regions b ON a.level = 'grid' AND b.level = 'grid'
             AND a.id < b.id AND ST_Touches(a.geom, b.geom)
            WHERE ST_Dimension(ST_Intersection(a.geom, b.geom)) = 1
            LIMIT 50) s""")).all()
    assert len(mids) == 50
    lons, lats = np.array([m[0] for m in mids]), np.array([m[1] for m in mids])
    batch = locate_many(lons, lats)
    assert [single(x, y) for x, y in mids] == batch.tolist() == locate_many(lons, lats).tolist()
    assert (batch == postgis_answers(lons, lats)).all()


def test_a_boundary_changed_elsewhere_reaches_the_batch_index(app_ctx, data_dir,
                                                              monkeypatch):
    load_yuzhong(data_dir)
    [before] = locate_many([JIEFANGBEI[0]], [JIEFANGBEI[1]])
    assert before != OUTSIDE
    # Another process moves the district away (a plain UPDATE, as any writer may do).
    db.session.execute(text("UPDATE regions SET geom = ST_Translate(geom, 1, 0), "
                            "updated_at = now() WHERE code = :code"), {"code": YUZHONG})
    db.session.commit()
    monkeypatch.setattr(locating, "FULL_CHECK_SECONDS", 0.0)
    assert locate_many([JIEFANGBEI[0]], [JIEFANGBEI[1]]).tolist() == [OUTSIDE]
    assert locate_many([JIEFANGBEI[0] + 1], [JIEFANGBEI[1]]).tolist() == [before]


def test_threads_sharing_the_batch_index_get_the_same_answers(app_ctx, data_dir):
    load_yuzhong(data_dir)
    generate_grids(within="district", cell_area_m2=CELL)
    lons, lats = random_points(50_000, seed=11)
    index = locating.current_index()
    expected = index.locate_ids(lons, lats)
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: index.locate_ids(lons, lats), range(8)))
    assert all((a == expected).all() for a in answers)
