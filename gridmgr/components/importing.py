"""Importing a component inventory (GeoJSON, Shapefile, GeoPackage, CSV with coordinates).

The file is read as boundary files are (``gridmgr.grids.importing.read_boundary_file``: any
CRS, ``--srid`` when it says none; GCJ-02 and BD-09 converted vertex by vertex), and loads
completely or not at all: every row is checked and every bad row named before anything is
written. Properties may be named in English or Chinese (:data:`FIELDS`).

Codes (16 digits, CJ/T 214): a code in the file must have the standard's structure, begin
with the county-level code of the district the component stands in, carry the class and
subclass of its category, and be unique. A row without a code gets the next serial of its
county, class and subclass. Re-importing updates the components with the same codes.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError
from sqlalchemy import text
from tqdm import tqdm

from gridmgr.components.models import CODE_LENGTH, STATES
from gridmgr.errors import DomainError, InvalidInput
from gridmgr.extensions import db
from gridmgr.geo.coords import check_coord_sys, transform_geometry
from gridmgr.grids.importing import _text, read_boundary_file
from gridmgr.grids.locating import OUTSIDE, current_index

# Each property and the names a file may give it, English or Chinese.
FIELDS = {
    "code": ("code", "标识码", "编码", "bsm"),
    "name": ("name", "名称", "mc"),
    "category": ("category", "subclass", "类别", "小类", "部件类别"),
    "department": ("department", "主管部门"),
    "owner": ("owner", "权属单位"),
    "maintainer": ("maintainer", "养护单位"),
    "state": ("state", "状态"),
}
STATE_NAMES = {"完好": "intact", "破损": "damaged", "丢失": "missing", "占用": "occupied",
               **{s: s for s in STATES}}
LON_FIELDS = ("lon", "lng", "longitude", "经度", "x")
LAT_FIELDS = ("lat", "latitude", "纬度", "y")
COMPONENT_CATEGORY = re.compile(r"^C?(\d{4})$", re.IGNORECASE)
SERIAL_DIGITS = 6
BATCH = 20_000


class InvalidComponents(DomainError):
    """A component file with bad rows; ``details["problems"]`` names every one."""

    status = 422

    def __init__(self, path: str, problems: list[dict]):
        kinds: dict[str, int] = defaultdict(int)
        for p in problems:
            kinds[p["problem"]] += 1
        summary = ", ".join(f"{n} × {kind.replace('_', ' ')}" for kind, n in sorted(kinds.items()))
        super().__init__("invalid_components",
                         f"{Path(path).name} was not imported: {summary}. Nothing was changed.",
                         problems=problems)


@dataclass
class ComponentImport:
    """What an import loaded (or, with ``dry_run``, would load)."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    codes_assigned: int = 0
    dry_run: bool = False
    codes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"rows": self.rows, "created": self.created, "updated": self.updated,
                "codes_assigned": self.codes_assigned, "dry_run": self.dry_run}


def import_components(path: str | Path, *, srid: int | None = None, coord_sys: str = "wgs84",
                      dry_run: bool = False, progress: bool = False) -> ComponentImport:
    """Load the components of ``path``, all or nothing; InvalidComponents names every bad row."""
    coord_sys = check_coord_sys(coord_sys)
    frame = _read(Path(path), srid)
    if coord_sys != "wgs84" and not frame.crs.is_geographic:
        raise InvalidInput(f"--coord-sys {coord_sys} applies to longitude/latitude files; "
                           f"this file is in {frame.crs.name}.", code="bad_coord_sys")
    frame = frame.to_crs(4326)
    columns = _columns(frame)
    geoms = transform_geometry(frame.geometry.values.to_numpy(), coord_sys)
    attributes = frame.drop(columns=frame.geometry.name)
    rows = len(frame)

    problems: list[dict] = []
    values = {key: _column_texts(attributes, columns.get(key), rows) for key in FIELDS}
    names = [n or c or f"#{i}" for i, (n, c) in enumerate(
        zip(values["name"], values["code"], strict=True), start=1)]

    empty = shapely.is_empty(geoms) | shapely.is_missing(geoms)
    anchors = shapely.point_on_surface(np.where(empty, shapely.Point(0, 0), geoms))
    index = current_index()
    region_ids = index.locate_ids(shapely.get_x(anchors), shapely.get_y(anchors))
    region_ids[empty] = OUTSIDE
    grid_rows = index.row_of_id
    grid_codes = [index.codes[grid_rows[i]] if i != OUTSIDE else None
                  for i in region_ids.tolist()]
    city_ids = [index.city_ids[grid_rows[i]] if i != OUTSIDE else None
                for i in region_ids.tolist()]

    categories = _component_categories()
    departments = _departments()
    states = []
    category_ids = []
    for i in tqdm(range(rows), desc="checking components", unit="row", disable=not progress):
        row, name, code = i + 1, names[i], values["code"][i]
        ident = {"row": row, "name": name, "code": code}
        if empty[i]:
            problems.append({"problem": "no_geometry", **ident,
                             "message": f"row {row} ({name}) has no location."})
        elif grid_codes[i] is None:
            problems.append({"problem": "outside_city", **ident,
                             "message": f"row {row} ({name}) lies outside every region of "
                                        "the city."})
        digits = _category_digits(values["category"][i], code)
        category = categories.get(digits or "")
        category_ids.append(category)
        if category is None:
            given = values["category"][i] or (code[6:10] if code else "")
            problems.append({"problem": "unknown_category", **ident, "category": given,
                             "message": f"row {row} ({name}): {given!r} is not a component "
                                        "subclass of the catalogue."})
        if code is not None:
            if not (code.isascii() and code.isdigit() and len(code) == CODE_LENGTH):
                problems.append({"problem": "bad_code", **ident, "message":
                                 f"row {row} ({name}) has code {code!r}; a component code is "
                                 f"{CODE_LENGTH} digits: county (6), class (2), subclass (2), "
                                 f"serial ({SERIAL_DIGITS})."})
            else:
                if grid_codes[i] is not None and code[:6] != grid_codes[i][:6]:
                    problems.append({"problem": "county_mismatch", **ident,
                                     "county": grid_codes[i][:6], "message":
                                     f"row {row} ({name}) has code {code}, but it stands in "
                                     f"county {grid_codes[i][:6]}, not {code[:6]}."})
                if digits is not None and code[6:10] != digits:
                    problems.append({"problem": "category_mismatch", **ident, "message":
                                     f"row {row} ({name}) has code {code}, whose class and "
                                     f"subclass {code[6:10]} are not those of its category "
                                     f"C{digits}."})
        state = STATE_NAMES.get((values["state"][i] or "intact").lower())
        states.append(state)
        if state is None:
            problems.append({"problem": "bad_state", **ident, "message":
                             f"row {row} ({name}) has state {values['state'][i]!r}; states are "
                             f"{', '.join(STATES)} (完好, 破损, 丢失, 占用)."})
    by_code: dict[str, list[int]] = defaultdict(list)
    for i, code in enumerate(values["code"]):
        if code:
            by_code[code].append(i + 1)
    for code, rows_with in sorted(by_code.items()):
        if len(rows_with) > 1:
            problems.append({"problem": "duplicate_code", "code": code, "rows": rows_with,
                             "message": f"code {code} is used by rows " +
                                        ", ".join(map(str, rows_with)) + "."})
    if problems:
        raise InvalidComponents(str(path), problems)

    codes, assigned = _assign_codes(values["code"], grid_codes, category_ids, city_ids)
    result = ComponentImport(rows=rows, codes_assigned=assigned, dry_run=dry_run, codes=codes)
    existing = _existing_codes(codes)
    result.updated = sum(1 for c, city in zip(codes, city_ids, strict=True)
                         if (city, c) in existing)
    result.created = rows - result.updated
    if dry_run:
        return result
    extra = [c for c in attributes.columns if c not in columns.values()]
    properties = (attributes[extra].to_dict(orient="records") if extra
                  else [{} for _ in range(rows)])
    wkb = shapely.to_wkb(geoms, hex=True)
    records = ([codes[i], names[i][:200], category_ids[i],
                *_party(values["department"][i], departments),
                *_party(values["owner"][i], departments),
                *_party(values["maintainer"][i], departments),
                grid_codes[i], city_ids[i], states[i], wkb[i],
                json.dumps(properties[i], ensure_ascii=False, default=str)]
               for i in range(rows))
    _write(records, rows, progress)
    return result


def _read(path: Path, srid: int | None) -> gpd.GeoDataFrame:
    """The file as a frame with its CRS; a CSV's points from its longitude/latitude columns."""
    if path.suffix.lower() != ".csv":
        return read_boundary_file(path, srid)
    if not path.exists():
        raise InvalidInput(f"No file at {path}.", code="file_not_found", path=str(path))
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InvalidInput(f"{path.name} could not be read as CSV: {exc}.",
                           code="unreadable_file") from exc
    lowered = {str(c).strip().lower(): c for c in table.columns}
    lon = next((lowered[n] for n in LON_FIELDS if n in lowered), None)
    lat = next((lowered[n] for n in LAT_FIELDS if n in lowered), None)
    if lon is None or lat is None:
        raise InvalidInput(f"{path.name} needs longitude and latitude columns (lon/lat, "
                           "经度/纬度 or x/y).", code="no_coordinates")
    if len(table) == 0:
        raise InvalidInput(f"{path.name} holds no rows.", code="empty_file")
    x = pd.to_numeric(table[lon], errors="coerce").to_numpy()
    y = pd.to_numeric(table[lat], errors="coerce").to_numpy()
    points = shapely.points(x, y)
    points[~(np.isfinite(x) & np.isfinite(y))] = None
    try:
        crs = CRS.from_epsg(srid or 4326)
    except CRSError as exc:
        raise InvalidInput(f"--srid {srid} is not a known EPSG code.", code="bad_srid") from exc
    return gpd.GeoDataFrame(table.drop(columns=[lon, lat]), geometry=points, crs=crs)


def _columns(frame: gpd.GeoDataFrame) -> dict[str, str]:
    """Each known property and the file's column holding it."""
    lowered = {str(c).strip().lower(): c for c in frame.columns if c != frame.geometry.name}
    found = {}
    for key, names in FIELDS.items():
        column = next((lowered[n] for n in names if n in lowered), None)
        if column is not None:
            found[key] = column
    return found


def _column_texts(attributes: pd.DataFrame, column: str | None, rows: int) -> list[str | None]:
    if column is None:
        return [None] * rows
    return [(_text(v) or None) for v in attributes[column].tolist()]


def _category_digits(category: str | None, code: str | None) -> str | None:
    """The class and subclass digits of a row: its category (``C0111`` or ``0111``), else
    those its code carries."""
    if category:
        match = COMPONENT_CATEGORY.match(category.strip())
        return match.group(1) if match else category
    if code and len(code) == CODE_LENGTH and code.isdigit():
        return code[6:10]
    return None


def _component_categories() -> dict[str, int]:
    rows = db.session.execute(text(
        "SELECT k.code, k.id FROM categories k JOIN category_classes c ON c.id = k.class_id "
        "WHERE c.kind = 'component'")).all()
    return {m.group(1): r.id for r in rows if (m := COMPONENT_CATEGORY.match(r.code))}


def _departments() -> dict[str, int]:
    rows = db.session.execute(text("SELECT id, name, name_en FROM departments ORDER BY id"))
    found: dict[str, int] = {}
    for r in rows:
        for key in (r.name_en, r.name):
            if key:
                found.setdefault(key.strip().lower(), r.id)
    return found


def _party(name: str | None, departments: dict[str, int]) -> tuple[str | None, int | None]:
    """A party as the file names it, and the department of that name if there is one."""
    if not name:
        return None, None
    return name[:200], departments.get(name.strip().lower())


def _assign_codes(given: list[str | None], grid_codes: list[str | None],
                  category_ids: list[int | None],
                  city_ids: list[int | None]) -> tuple[list[str], int]:
    """Every row's code: its own, or the next serial after the highest of its county, class
    and subclass in the city (file and database together)."""
    prefixes = {}
    digits_of = {v: k for k, v in _component_categories().items()}
    for i, code in enumerate(given):
        if code is None:
            prefixes[i] = grid_codes[i][:6] + digits_of[category_ids[i]]
    if not prefixes:
        return list(given), 0
    highest: dict[tuple[int, str], int] = defaultdict(int)
    wanted = sorted(set(prefixes.values()))
    for row in db.session.execute(text(
            "SELECT city_id, left(code, 10) AS prefix, max(right(code, 6)::int) AS serial "
            "FROM components WHERE left(code, 10) = ANY(:prefixes) GROUP BY 1, 2"),
            {"prefixes": wanted}):
        highest[(row.city_id, row.prefix)] = row.serial
    for i, code in enumerate(given):
        if code is not None:
            key = (city_ids[i], code[:10])
            highest[key] = max(highest[key], int(code[10:]))
    codes = list(given)
    for i, prefix in prefixes.items():
        key = (city_ids[i], prefix)
        highest[key] += 1
        if highest[key] >= 10 ** SERIAL_DIGITS:
            raise InvalidInput(f"County, class and subclass {prefix} have no serials left.",
                               code="no_serials_left", prefix=prefix)
        codes[i] = prefix + str(highest[key]).zfill(SERIAL_DIGITS)
    return codes, len(prefixes)


def _existing_codes(codes: list[str]) -> set[tuple[int, str]]:
    rows = db.session.execute(text("SELECT city_id, code FROM components WHERE code = ANY(:c)"),
                              {"c": codes})
    return {(r.city_id, r.code) for r in rows}


_LOAD_TABLE = """CREATE TEMP TABLE component_load (
    code text, name text, category_id int, department text, department_id int, owner text,
    owner_department_id int, maintainer text, maintainer_department_id int, grid_code text,
    city_id int, state text, wkb text, properties jsonb) ON COMMIT DROP"""
# Every row inserted or updated by (city, code), and a history row for each, in one statement.
_UPSERT = """
WITH up AS (
    INSERT INTO components (code, name, category_id, department, department_id, owner,
                            owner_department_id, maintainer, maintainer_department_id,
                            grid_code, city_id, state, geom, properties)
    SELECT code, name, category_id, department, department_id, owner, owner_department_id,
           maintainer, maintainer_department_id, grid_code, city_id, state,
           ST_GeomFromWKB(decode(wkb, 'hex'), 4326), properties
    FROM component_load
    ON CONFLICT (city_id, code) DO UPDATE SET
        name = EXCLUDED.name, category_id = EXCLUDED.category_id,
        department = EXCLUDED.department, department_id = EXCLUDED.department_id,
        owner = EXCLUDED.owner, owner_department_id = EXCLUDED.owner_department_id,
        maintainer = EXCLUDED.maintainer,
        maintainer_department_id = EXCLUDED.maintainer_department_id,
        grid_code = EXCLUDED.grid_code, state = EXCLUDED.state, geom = EXCLUDED.geom,
        properties = EXCLUDED.properties, updated_at = now()
    RETURNING id, (xmax = 0) AS inserted
)
INSERT INTO component_history (component_id, action)
SELECT id, CASE WHEN inserted THEN 'imported' ELSE 'reimported' END FROM up
"""


def _write(records, rows: int, progress: bool) -> None:
    """One transaction: the rows copied into a temporary table, then upserted at once."""
    session = db.session
    try:
        raw = session.connection().connection
        with raw.cursor() as cursor, tqdm(total=rows, desc="writing components",
                                          unit="component", disable=not progress) as bar:
            cursor.execute(_LOAD_TABLE)
            batch = io.StringIO()
            writer = csv.writer(batch)
            count = 0
            for record in records:
                writer.writerow(record)
                count += 1
                if count % BATCH == 0:
                    _copy(cursor, batch)
                    batch = io.StringIO()
                    writer = csv.writer(batch)
                    bar.update(BATCH)
            _copy(cursor, batch)
            bar.update(count % BATCH)
            cursor.execute(_UPSERT)
        session.commit()
    except Exception:
        session.rollback()
        raise


def _copy(cursor, batch: io.StringIO) -> None:
    batch.seek(0)
    cursor.copy_expert("COPY component_load FROM STDIN (FORMAT csv)", batch)
