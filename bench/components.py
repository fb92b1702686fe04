"""Benchmark: importing a component inventory and finding the components near a point.

A district of about 20 km × 20 km and N street lamps (default 500,000) spread over it are
written to a CSV and loaded through ``import_components`` as an administrator's file would be
(codes assigned); then the lamps within 30 m of 2,000 random points are looked up
(``nearest_components``, the GiST index). Besides the import's wall time, the CPU seconds
of this process and of its PostgreSQL backend (read from /proc, a local server) say where
the time went on a busy machine. Database: ``DATABASE_URL`` when set, else a
database ``gridmgr_bench_components`` on 127.0.0.1:5432, emptied first.

    .venv/bin/python bench/components.py [N]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg2
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from record import record  # noqa: E402

from gridmgr import create_app  # noqa: E402
from gridmgr.extensions import db  # noqa: E402

WEST, SOUTH, SIZE = 116.2, 39.8, 0.2


def bench_app():
    url = os.environ.get("DATABASE_URL")
    if not url:
        admin = psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = 'gridmgr_bench_components'")
            if cur.fetchone() is None:
                cur.execute("CREATE DATABASE gridmgr_bench_components")
        admin.close()
        url = "postgresql+psycopg2://postgres@127.0.0.1:5432/gridmgr_bench_components"
    home = Path(tempfile.mkdtemp(prefix="gridmgr-bench-"))
    return create_app({"DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
                       "GRIDMGR_HOME": str(home), "RATELIMIT_ENABLED": False,
                       "SECRET_KEY": "bench-secret-key-of-sufficient-length-0123456789"})


def _backend_cpu_s(pid: int | None = None) -> tuple[int, float] | None:
    """The session's PostgreSQL backend and the CPU seconds it has used (None when the
    server's /proc is not this machine's)."""
    if pid is None:
        pid = db.session.scalar(text("SELECT pg_backend_pid()"))
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return pid, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    from flask_migrate import upgrade

    from gridmgr.categories.operations import load_default_catalogue
    from gridmgr.components.importing import import_components
    from gridmgr.components.operations import nearest_components

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
    with bench_app().app_context():
        upgrade()
        db.session.execute(text("TRUNCATE cities, categories, category_classes, departments "
                                "RESTART IDENTITY CASCADE"))
        db.session.execute(text("""
            INSERT INTO cities (slug, name, timezone) VALUES ('bench', 'bench', 'Asia/Shanghai');
            INSERT INTO regions (city_id, level, code, name, geom, area_m2)
            VALUES (1, 'district', '110101', 'bench district',
                    ST_Multi(ST_MakeEnvelope(:w, :s, :w + :d, :s + :d, 4326)), 4e8)"""),
            {"w": WEST, "s": SOUTH, "d": SIZE})
        db.session.commit()
        load_default_catalogue()
        rng = np.random.default_rng(7)
        lons = WEST + rng.random(count) * SIZE
        lats = SOUTH + rng.random(count) * SIZE
        path = Path(tempfile.mkdtemp()) / "lamps.csv"
        with path.open("w", encoding="utf-8") as f:
            f.write("name,category,owner,lon,lat\n")
            for i, (x, y) in enumerate(zip(lons.tolist(), lats.tolist(), strict=True)):
                f.write(f"lamp {i},C0111,供电公司,{x:.7f},{y:.7f}\n")
        backend = _backend_cpu_s()
        python = time.process_time()
        started = time.perf_counter()
        result = import_components(path)
        import_s = time.perf_counter() - started
        python_cpu_s = time.process_time() - python
        db_cpu_s = _backend_cpu_s(backend[0]) if backend else None
        assert result.created == count
        db.session.execute(text("ANALYZE components"))
        db.session.commit()
        points = rng.random((2000, 2)) * SIZE + (WEST, SOUTH)
        times, found = [], 0
        lookup_backend = _backend_cpu_s()
        lookup_python = time.process_time()
        for x, y in points.tolist():
            t = time.perf_counter()
            found += len(nearest_components(x, y, "C0111", 30.0))
            times.append((time.perf_counter() - t) * 1000)
        lookup_cpu_ms = (time.process_time() - lookup_python) * 1000
        if lookup_backend and (after := _backend_cpu_s(lookup_backend[0])):
            lookup_cpu_ms += (after[1] - lookup_backend[1]) * 1000
        figures = {"components": count, "import_s": round(import_s, 1),
                   "import_per_s": round(count / import_s),
                   "import_python_cpu_s": round(python_cpu_s, 1),
                   "import_db_cpu_s": round(db_cpu_s[1] - backend[1], 1) if db_cpu_s else None,
                   "lookup_30m_p50_ms": round(float(np.percentile(times, 50)), 2),
                   "lookup_30m_p95_ms": round(float(np.percentile(times, 95)), 2),
                   "lookup_cpu_ms": round(lookup_cpu_ms / len(times), 2),
                   "lookups": len(times), "found": found}
        print(figures)
        record("components", figures)


if __name__ == "__main__":
    main()
