"""Open data: cases and region boundaries as GeoJSON and CSV, streamed row by row.

What is published about a case: its code, category, state (and the GeoReport status), channel,
the codes of its unit grid and ancestors, the responsible unit, counts, times and location.
Nothing about a person and no free text: no reporter, no contact details, no description, no
notes (descriptions, redacted, are on the Open311 endpoint where a request is read one by one).
Every value is written through :mod:`gridmgr.opendata.writing`: text XML forbids is dropped,
CSV cells that would start a spreadsheet formula are quoted, locations are rounded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from gridmgr.errors import DomainError
from gridmgr.extensions import db
from gridmgr.grids.models import LEVELS
from gridmgr.opendata.redaction import public_decimals, published_case_sql
from gridmgr.opendata.writing import BOUNDARY_DECIMALS, csv_line, published

CASE_COLUMNS = ["code", "service_code", "category_name_zh", "category_name_en", "class_code",
                "kind", "state", "status", "source", "channel", "city", "district_code",
                "street_code", "community_code", "grid_code", "agency_responsible",
                "reporter_count", "created_at", "updated_at", "dispatched_at", "deadline",
                "closed_at", "lon", "lat"]
CASE_STATES = ("reported", "verified", "filed", "cancelled", "dispatched", "accepted", "handled",
               "checked", "closed", "shelved")
MAX_LIMIT = 100_000


@dataclass
class CaseFilter:
    """Which cases to publish: created in [start, end), categories, region code prefix, states."""

    start: datetime | None = None
    end: datetime | None = None
    categories: list[str] | None = None
    region: str | None = None
    states: list[str] | None = None
    limit: int | None = None


def refuse_nul(request) -> None:
    """A 400 for a GET whose path or query holds a NUL character: no stored text can hold
    one, and PostgreSQL refuses it even as a value to compare with."""
    values = [*request.args.keys(), *request.args.values(),
              *(str(v) for v in (request.view_args or {}).values())]
    if any("\x00" in value for value in values):
        raise DomainError("invalid_character", "The address holds a NUL character (%00).")


def case_filter(args) -> CaseFilter:
    """Read ``start_date``, ``end_date``, ``category``, ``region``, ``state`` and ``limit``."""
    from gridmgr.opendata.dates import parse_w3c_datetime

    def listed(name):
        return [v.strip() for v in (args.get(name) or "").split(",") if v.strip()] or None

    states = listed("state")
    expanded: list[str] = []
    for state in states or []:
        if state == "open":
            expanded += [s for s in CASE_STATES if s not in ("closed", "cancelled")]
        elif state in CASE_STATES or state == "closed":
            expanded.append(state)
        else:
            raise DomainError("invalid_state", f"state {state!r:.30} is not one of open, "
                              f"{', '.join(CASE_STATES)}.")
    if states and "closed" in states:
        expanded.append("cancelled")
    region = (args.get("region") or "").strip() or None
    if region is not None and not (region.isascii() and region.isdigit()):
        raise DomainError("invalid_region", "region is a region code prefix (digits).")
    limit = args.get("limit")
    if limit not in (None, ""):
        if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= MAX_LIMIT:
            raise DomainError("invalid_limit", f"limit is a whole number from 1 to {MAX_LIMIT}.")
        limit = int(limit)
    else:
        limit = None
    return CaseFilter(
        start=parse_w3c_datetime(args["start_date"], "start_date")
        if args.get("start_date") else None,
        end=parse_w3c_datetime(args["end_date"], "end_date") if args.get("end_date") else None,
        categories=listed("category"), region=region, states=sorted(set(expanded)) or None,
        limit=limit)


_CASES_SQL = """
SELECT c.code, cat.code AS service_code, cat.name_zh AS category_name_zh,
       cat.name_en AS category_name_en, cls.code AS class_code, cls.kind, c.state,
       CASE WHEN c.state IN ('closed', 'cancelled') THEN 'closed' ELSE 'open' END AS status,
       c.source, c.channel, city.slug AS city,
       left(c.grid_code, 6) AS district_code,
       CASE WHEN length(c.grid_code) >= 9 THEN left(c.grid_code, 9) END AS street_code,
       CASE WHEN length(c.grid_code) >= 12 THEN left(c.grid_code, 12) END AS community_code,
       c.grid_code, d.name AS agency_responsible, c.reporter_count,
       c.created_at, c.updated_at, c.dispatched_at, c.deadline, c.closed_at,
       round(ST_X(c.location)::numeric, :decimals)::float8 AS lon,
       round(ST_Y(c.location)::numeric, :decimals)::float8 AS lat
FROM cases c
JOIN categories cat ON cat.id = c.category_id
JOIN category_classes cls ON cls.id = cat.class_id
JOIN cities city ON city.id = c.city_id
LEFT JOIN departments d ON d.id = c.department_id
WHERE (CAST(:start AS timestamptz) IS NULL OR c.created_at >= :start)
  AND (CAST(:end AS timestamptz) IS NULL OR c.created_at < :end)
  AND (CAST(:categories AS text[]) IS NULL OR cat.code = ANY(:categories))
  AND (CAST(:region AS text) IS NULL OR c.grid_code LIKE :region || '%')
  AND (CAST(:states AS text[]) IS NULL OR c.state = ANY(:states))
  AND {published}
ORDER BY c.created_at, c.id
LIMIT :limit
"""


def case_rows(selection: CaseFilter) -> Iterator[dict]:
    """The published fields of every selected case the public may see
    (:mod:`gridmgr.opendata.redaction`), oldest first, fetched in batches."""
    result = db.session.execute(
        text(_CASES_SQL.format(published=published_case_sql("c")))
        .execution_options(yield_per=1000),
        {"decimals": public_decimals(), "start": selection.start, "end": selection.end,
         "categories": selection.categories, "region": selection.region,
         "states": selection.states, "limit": selection.limit})
    for row in result.mappings():
        yield published({k: (v.isoformat() if isinstance(v, datetime) else v)
                         for k, v in row.items()})


def csv_chunks(rows: Iterator[dict]) -> Iterator[str]:
    """CSV text (header first), one chunk per row."""
    yield csv_line(CASE_COLUMNS)
    for row in rows:
        yield csv_line(row[name] for name in CASE_COLUMNS)


def _feature_collection(features: Iterator[str]) -> Iterator[str]:
    yield '{"type": "FeatureCollection", "features": ['
    first = True
    for feature in features:
        yield feature if first else "," + feature
        first = False
    yield "]}\n"


def case_geojson_chunks(rows: Iterator[dict]) -> Iterator[str]:
    """A GeoJSON FeatureCollection of case points, streamed feature by feature."""
    def features():
        for row in rows:
            geometry = {"type": "Point", "coordinates": [row["lon"], row["lat"]]}
            properties = {k: v for k, v in row.items() if k not in ("lon", "lat")}
            yield json.dumps({"type": "Feature", "id": row["code"], "geometry": geometry,
                              "properties": properties}, ensure_ascii=False)
    return _feature_collection(features())


_REGIONS_SQL = f"""
SELECT r.code, r.name, r.level, p.code AS parent_code, city.slug AS city,
       round(r.area_m2::numeric, 1)::float8 AS area_m2,
       ST_AsGeoJSON(r.geom, {BOUNDARY_DECIMALS}) AS geometry
FROM regions r
JOIN cities city ON city.id = r.city_id
LEFT JOIN regions p ON p.id = r.parent_id
WHERE r.level = :level
  AND (CAST(:city AS text) IS NULL OR city.slug = :city)
  AND (CAST(:region AS text) IS NULL OR r.code LIKE :region || '%')
ORDER BY city.slug, r.code
"""


def region_geojson_chunks(level: str, city: str | None = None,
                          region: str | None = None) -> Iterator[str]:
    """Boundaries of one level (district, street, community, grid) as streamed GeoJSON.

    The arguments are checked at once (a refusal is a 400); the query runs only when the
    stream is read. The request's session ends when the view returns, before a server sends
    the body: a cursor opened in the view would be closed with it, cutting the document short."""
    if level not in LEVELS:
        raise DomainError("invalid_level", f"level is one of {', '.join(LEVELS)}.")
    if region is not None and not region.isdigit():
        raise DomainError("invalid_region", "region is a region code prefix (digits).")

    def features():
        result = db.session.execute(text(_REGIONS_SQL).execution_options(yield_per=500),
                                    {"level": level, "city": city, "region": region})
        for row in result.mappings():
            properties = {k: row[k] for k in ("code", "name", "level", "parent_code", "city",
                                              "area_m2")}
            yield ('{"type": "Feature", "id": ' + json.dumps(published(row["code"]))
                   + ', "geometry": ' + row["geometry"] + ', "properties": '
                   + json.dumps(published(properties), ensure_ascii=False) + "}")
    return _feature_collection(features())
