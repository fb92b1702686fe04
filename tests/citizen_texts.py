"""Citizens' own descriptions of problems, labelled with their category, and a city's past
cases made of them.

Two sets written for the tests (tests/data/README.md): ``category_citizen_history.csv`` stands
for what a city's cases taught (350), ``category_citizen_heldback.csv`` is only ever asked
about (350); five per subclass of the catalogue in each, zh and en, in the words a citizen
phones or types, not the catalogue's.
"""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import text

from gridmgr.extensions import db

DATA = Path(__file__).parent / "data"
HISTORY = DATA / "category_citizen_history.csv"
HELD_BACK = DATA / "category_citizen_heldback.csv"


def labelled(path: Path) -> list[dict]:
    """Rows of ``code``, ``lang``, ``text``."""
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def file_cases(rows: list[dict], region_code: str, point: tuple[float, float]) -> None:
    """Closed cases of the region's city at ``point``, each description under its category."""
    lon, lat = point
    db.session.execute(text("""
        INSERT INTO cases (id, code, city_id, state, source, channel, category_id, region_id,
                           grid_code, location, description)
        SELECT n, 'T' || n, r.city_id, 'closed', 'inspector', 'app', k.id, r.id, r.code,
               ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :text
        FROM (SELECT nextval('cases_id_seq') AS n) s, regions r, categories k
        WHERE r.code = :region AND k.code = :code"""),
        [{"lon": lon, "lat": lat, "text": r["text"], "code": r["code"], "region": region_code}
         for r in rows])
    db.session.commit()
