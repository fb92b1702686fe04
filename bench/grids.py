"""Benchmark: import + unit-grid generation for a city of about 50,000 unit grids.

The city is central Chongqing on real boundaries: 渝中区, 江北区 and 南岸区 (about 508 km²)
from ``tests/data/china`` (the copy of 渝中区 shipped for the demo alone would give only
~2,500 grids). Streets (~5 km²) and communities
(~0.5 km²) are laid out inside them as Voronoi cells, written to GeoJSON files and imported
through ``import_regions`` like an administrator's files; then ``generate_grids`` cuts the
communities into 10,000 m² unit grids.

Database: ``DATABASE_URL`` when set (its regions are replaced), else a database
``gridmgr_bench`` on the PostgreSQL at 127.0.0.1:5432 (user postgres), dropped and created
afresh. Prints the figures and writes ``bench/results/grids.json``.

    .venv/bin/python bench/grids.py
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg2
import shapely
from shapely.geometry import mapping, shape
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from record import record  # noqa: E402

from gridmgr import create_app  # noqa: E402
from gridmgr.demo.layout import seeds_inside, voronoi_split  # noqa: E402
from gridmgr.extensions import db  # noqa: E402

SHARED = ROOT / "tests" / "data" / "china" / "chongqing_districts.geojson"
DISTRICTS = ("500103", "500105", "500108")  # 渝中区, 江北区, 南岸区
STREET_AREA_M2 = 5_000_000
COMMUNITY_AREA_M2 = 500_000
CITY = "bench"


def bench_app():
    """The app on the benchmark database (created afresh unless DATABASE_URL is set)."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        admin = psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = 'gridmgr_bench'")
            if cur.fetchone() is None:
                cur.execute("CREATE DATABASE gridmgr_bench")
        admin.close()
        url = "postgresql+psycopg2://postgres@127.0.0.1:5432/gridmgr_bench"
    home = Path(tempfile.mkdtemp(prefix="gridmgr-bench-"))
    return create_app({"DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
                       "GRIDMGR_HOME": str(home), "RATELIMIT_ENABLED": False,
                       "SECRET_KEY": "bench-secret-key-of-sufficient-length-0123456789"})


def migrate_and_empty() -> None:
    from flask_migrate import upgrade

    upgrade()
    db.session.execute(text("TRUNCATE cities RESTART IDENTITY CASCADE"))
    db.session.commit()


def _write(path: Path, geoms, names, codes, parents=None) -> None:
    features = []
    for i, (geom, name, code) in enumerate(zip(geoms, names, codes, strict=True)):
        props = {"name": name, "code": code}
        if parents is not None:
            props["parent"] = parents[i]
        features.append({"type": "Feature", "properties": props, "geometry": mapping(geom)})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features},
                               ensure_ascii=False))


def _split(parents: list[tuple[str, object]], target_area: float, level_name: str, limit: int):
    """Voronoi children of every (code, geometry) parent: (geoms, names, codes, parent codes)."""
    from gridmgr.geo.metric import areas_m2

    geoms, names, codes, parent_codes = [], [], [], []
    for code, geom in parents:
        count = int(min(limit, max(2, round(float(areas_m2([geom])[0]) / target_area))))
        cells = voronoi_split(geom, seeds_inside(geom, count, np.random.default_rng(int(code))))
        for n, cell in enumerate([c for c in cells if c is not None], start=1):
            geoms.append(cell)
            names.append(f"{level_name}{code}-{n}")
            codes.append(f"{n:03d}")
            parent_codes.append(code)
    return geoms, names, codes, parent_codes


def _level(level: str) -> list[tuple[str, object]]:
    rows = db.session.execute(text(
        "SELECT code, ST_AsBinary(geom) FROM regions WHERE level = :level ORDER BY code"),
        {"level": level}).all()
    return [(code, shapely.from_wkb(bytes(wkb))) for code, wkb in rows]


def build_city(workdir: Path) -> dict:
    """Import the districts, lay out and import streets and communities, generate grids."""
    from gridmgr.grids.generation import generate_grids
    from gridmgr.grids.importing import import_regions

    features = [f for f in json.loads(SHARED.read_text())["features"]
                if str(f["properties"]["code"]) in DISTRICTS]
    _write(workdir / "districts.geojson", [shape(f["geometry"]) for f in features],
           [f["properties"]["name"] for f in features],
           [str(f["properties"]["code"]) for f in features])
    timings = {}

    t = time.perf_counter()
    import_regions(workdir / "districts.geojson", "district", city=CITY, code_field="code",
                   name_field="name", repair=True)
    timings["import_districts_s"] = time.perf_counter() - t

    t = time.perf_counter()
    _write(workdir / "streets.geojson", *_split(_level("district"), STREET_AREA_M2, "街道", 99))
    timings["layout_streets_s"] = time.perf_counter() - t
    t = time.perf_counter()
    import_regions(workdir / "streets.geojson", "street", city=CITY, code_field="code",
                   name_field="name", parent_field="parent", repair=True)
    timings["import_streets_s"] = time.perf_counter() - t

    t = time.perf_counter()
    _write(workdir / "communities.geojson",
           *_split(_level("street"), COMMUNITY_AREA_M2, "社区", 999))
    timings["layout_communities_s"] = time.perf_counter() - t
    t = time.perf_counter()
    import_regions(workdir / "communities.geojson", "community", city=CITY, code_field="code",
                   name_field="name", parent_field="parent", repair=True)
    timings["import_communities_s"] = time.perf_counter() - t

    t = time.perf_counter()
    result = generate_grids(within="community", city=CITY)
    timings["generate_s"] = time.perf_counter() - t
    t = time.perf_counter()
    again = generate_grids(within="community", city=CITY)
    timings["generate_again_unchanged_s"] = time.perf_counter() - t
    assert not again.generated

    counts = dict(db.session.execute(text(
        "SELECT level, count(*) FROM regions GROUP BY level")).all())
    return {"counts": counts, "timings": timings, "grids_generated": result.grid_count}


def main() -> None:
    app = bench_app()
    with app.app_context(), tempfile.TemporaryDirectory() as tmp:
        migrate_and_empty()
        started = time.perf_counter()
        city = build_city(Path(tmp))
        total = time.perf_counter() - started
    timings = {k: round(v, 3) for k, v in city["timings"].items()}
    imports = sum(v for k, v in city["timings"].items() if k.startswith("import_"))
    figures = {
        "city": "渝中区 + 江北区 + 南岸区 (Chongqing), streets ~5 km², communities ~0.5 km²",
        "counts": city["counts"],
        "timings_s": timings,
        "import_s": round(imports, 3),
        "generate_s": timings["generate_s"],
        "import_plus_generate_s": round(imports + city["timings"]["generate_s"], 3),
        "total_with_layout_s": round(total, 3),
        "grids_per_s": round(city["grids_generated"] / city["timings"]["generate_s"]),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
    }
    record("grids", figures)
    print(json.dumps(figures, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
