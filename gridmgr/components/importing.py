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

import io
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
from gridmgr.rowfiles import is_row_file, read_rows

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

    values = {key: _column_texts(attributes, columns.get(key), rows) for key in FIELDS}
    code_given = values["code"].notna().to_numpy()
    names = values["name"].where(values["name"].notna(), values["code"])
    names = names.where(names.notna(), pd.Series([f"#{i}" for i in range(1, rows + 1)]))
    names = names.tolist()

    # One batch lookup of every component's unit grid (and so its county and city); a point's
    # anchor is itself, other shapes' a point on their surface.
    empty = shapely.is_empty(geoms) | shapely.is_missing(geoms)
    points = shapely.get_type_id(geoms) == 0
    anchors = geoms.copy()
    others = ~points & ~empty
    anchors[others] = shapely.point_on_surface(geoms[others])
    anchors[empty] = shapely.Point(0, 0)
    index = current_index()
    region_ids = index.locate_ids(shapely.get_x(anchors), shapely.get_y(anchors))
    region_ids[empty] = OUTSIDE
    located = region_ids != OUTSIDE
    region_rows = np.full(rows, -1, dtype=np.int64)
    region_rows[located] = [index.row_of_id[i] for i in region_ids[located].tolist()]
    # Row -1 (outside every region) reads the None appended to each column.
    grid_codes = pd.Series(np.append(np.asarray(index.codes, dtype=object), None)[region_rows])
    city_ids = pd.Series(np.append(np.asarray(index.city_ids, dtype=object), None)[region_rows])

    codes = values["code"]
    well_formed = codes.str.fullmatch(r"[0-9]{16}").fillna(False).to_numpy(dtype=bool)
    digits = _category_digits(values["category"], codes, well_formed)
    categories = _component_categories()
    category_ids = digits.map(categories)
    counties = grid_codes.str[:6]
    states = values["state"].fillna("intact").str.lower().map(STATE_NAMES)

    problems: list[dict] = []

    def flag(kind: str, mask: np.ndarray, message, **extra) -> None:
        for i in np.flatnonzero(mask).tolist():
            ident = {"row": i + 1, "name": names[i], "code": codes[i]}
            problems.append({"problem": kind, **ident,
                             **{k: v(i) for k, v in extra.items()},
                             "message": message(i + 1, names[i], i)})

    flag("no_geometry", empty, lambda r, n, i: f"row {r} ({n}) has no location.")
    flag("outside_city", ~empty & ~located,
         lambda r, n, i: f"row {r} ({n}) lies outside every region of the city.")
    given = values["category"].where(values["category"].notna(), codes.str[6:10]).fillna("")
    flag("unknown_category", category_ids.isna().to_numpy(),
         lambda r, n, i: f"row {r} ({n}): {given[i]!r} is not a component subclass of the "
                         "catalogue.", category=lambda i: given[i])
    flag("bad_code", code_given & ~well_formed,
         lambda r, n, i: f"row {r} ({n}) has code {codes[i]!r}; a component code is "
                         f"{CODE_LENGTH} digits: county (6), class (2), subclass (2), "
                         f"serial ({SERIAL_DIGITS}).")
    flag("county_mismatch", well_formed & located & (codes.str[:6] != counties).to_numpy(),
         lambda r, n, i: f"row {r} ({n}) has code {codes[i]}, but it stands in county "
                         f"{counties[i]}, not {codes[i][:6]}.", county=lambda i: counties[i])
    flag("category_mismatch",
         well_formed & digits.notna().to_numpy() & (codes.str[6:10] != digits).to_numpy(),
         lambda r, n, i: f"row {r} ({n}) has code {codes[i]}, whose class and subclass "
                         f"{codes[i][6:10]} are not those of its category C{digits[i]}.")
    flag("bad_state", states.isna().to_numpy(),
         lambda r, n, i: f"row {r} ({n}) has state {values['state'][i]!r}; states are "
                         f"{', '.join(STATES)} (完好, 破损, 丢失, 占用).")
    problems.sort(key=lambda p: p["row"])
    repeated = codes[codes.notna() & codes.duplicated(keep=False)]
    for code, rows_with in sorted(repeated.groupby(repeated).groups.items()):
        numbers = [int(i) + 1 for i in rows_with]
        problems.append({"problem": "duplicate_code", "code": code, "rows": numbers,
                         "message": f"code {code} is used by rows " +
                                    ", ".join(map(str, numbers)) + "."})
    if problems:
        raise InvalidComponents(str(path), problems)

    codes, assigned = _assign_codes(codes, grid_codes, digits, city_ids)
    result = ComponentImport(rows=rows, codes_assigned=assigned, dry_run=dry_run,
                             codes=codes.tolist())
    existing = _existing_codes(codes[code_given].tolist())
    result.updated = sum(1 for c, city in zip(codes[code_given], city_ids[code_given],
                                              strict=True) if (city, c) in existing)
    result.created = rows - result.updated
    if dry_run:
        return result
    extra = [c for c in attributes.columns if c not in columns.values()]
    if extra:
        properties = attributes[extra].to_json(
            orient="records", lines=True, force_ascii=False, date_format="iso",
            default_handler=str).splitlines()
    else:
        properties = "{}"
    departments = _departments()
    load = pd.DataFrame({"code": codes, "name": pd.Series(names).str[:200],
                         "category_id": category_ids.astype("int64")})
    for party in ("department", "owner", "maintainer"):
        named = values[party].str[:200]
        load[party] = named
        load[f"{party}_id"] = (values[party].str.strip().str.lower().map(departments)
                               .astype("Int64"))
    load["grid_code"] = grid_codes
    load["city_id"] = city_ids.astype("Int64")
    load["state"] = states
    load["geom"] = shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True)
    load["properties"] = properties
    _write(load, progress)
    return result


def _read(path: Path, srid: int | None) -> gpd.GeoDataFrame:
    """The file as a frame with its CRS; the points of a CSV or JSON-lines file from its
    longitude/latitude columns."""
    if not is_row_file(path):
        return read_boundary_file(path, srid)
    rows = read_rows(path, "component")
    lowered = {str(c).strip().lower(): c for c in rows.columns}
    lon = next((lowered[n] for n in LON_FIELDS if n in lowered), None)
    lat = next((lowered[n] for n in LAT_FIELDS if n in lowered), None)
    if lon is None or lat is None:
        raise InvalidInput(f"{path.name} needs longitude and latitude columns (lon/lat, "
                           "经度/纬度 or x/y).", code="no_coordinates")
    if len(rows) == 0:
        raise InvalidInput(f"{path.name} holds no rows.", code="empty_file")
    table = pd.DataFrame(rows.column_values(), columns=rows.columns, dtype=object)
    x = pd.to_numeric(table[lon], errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(table[lat], errors="coerce").to_numpy(dtype=float)
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


def _column_texts(attributes: pd.DataFrame, column: str | None, rows: int) -> pd.Series:
    """A column's values as stripped texts (None when empty), as the boundary import reads them."""
    if column is None:
        return pd.Series([None] * rows, dtype=object)
    return pd.Series([(_text(v) or None) for v in attributes[column].tolist()], dtype=object)


def _category_digits(category: pd.Series, codes: pd.Series, well_formed: np.ndarray) -> pd.Series:
    """The class and subclass digits of each row: its category (``C0111`` or ``0111``, else as
    given), else those its code carries."""
    named = category.str.strip()
    matched = named.str.extract(COMPONENT_CATEGORY, expand=False)
    digits = matched.where(matched.notna(), named)
    from_code = codes.str[6:10].where(pd.Series(well_formed))
    return digits.where(category.notna(), from_code)


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


def _assign_codes(given: pd.Series, grid_codes: pd.Series, digits: pd.Series,
                  city_ids: pd.Series) -> tuple[pd.Series, int]:
    """Every row's code: its own, or the next serial after the highest of its county, class
    and subclass in the city (file and database together)."""
    missing = given.isna()
    if not missing.any():
        return given, 0
    prefixes = grid_codes.str[:6] + digits
    highest: dict[tuple[int, str], int] = defaultdict(int)
    for row in db.session.execute(text(
            "SELECT city_id, left(code, 10) AS prefix, max(right(code, 6)::int) AS serial "
            "FROM components WHERE left(code, 10) = ANY(:prefixes) GROUP BY 1, 2"),
            {"prefixes": sorted(set(prefixes[missing]))}):
        highest[(row.city_id, row.prefix)] = row.serial
    own = pd.DataFrame({"city": city_ids[~missing], "prefix": given[~missing].str[:10],
                        "serial": given[~missing].str[10:].astype(int)})
    for (city, prefix), serial in own.groupby(["city", "prefix"])["serial"].max().items():
        highest[(city, prefix)] = max(highest[(city, prefix)], serial)
    wanted = pd.DataFrame({"city": city_ids[missing], "prefix": prefixes[missing]})
    base = np.array([highest[key] for key in zip(wanted["city"], wanted["prefix"],
                                                  strict=True)], dtype=np.int64)
    serials = base + wanted.groupby(["city", "prefix"]).cumcount().to_numpy() + 1
    if (serials >= 10 ** SERIAL_DIGITS).any():
        prefix = wanted["prefix"].to_numpy()[np.argmax(serials >= 10 ** SERIAL_DIGITS)]
        raise InvalidInput(f"County, class and subclass {prefix} have no serials left.",
                           code="no_serials_left", prefix=prefix)
    codes = given.copy()
    codes[missing] = wanted["prefix"] + pd.Series(serials, index=wanted.index).astype(
        str).str.zfill(SERIAL_DIGITS)
    return codes, int(missing.sum())


def _existing_codes(codes: list[str]) -> set[tuple[int, str]]:
    if not codes:
        return set()
    rows = db.session.execute(text("SELECT city_id, code FROM components WHERE code = ANY(:c)"),
                              {"c": codes})
    return {(r.city_id, r.code) for r in rows}


_LOAD_TABLE = """CREATE TEMP TABLE component_load (
    code text, name text, category_id int, department text, department_id int, owner text,
    owner_department_id int, maintainer text, maintainer_department_id int, grid_code text,
    city_id int, state text, geom geometry, properties jsonb) ON COMMIT DROP"""
# Every row inserted or updated by (city, code), and a history row for each, in one statement.
_UPSERT = """
WITH up AS (
    INSERT INTO components (code, name, category_id, department, department_id, owner,
                            owner_department_id, maintainer, maintainer_department_id,
                            grid_code, city_id, state, geom, properties)
    SELECT code, name, category_id, department, department_id, owner, owner_department_id,
           maintainer, maintainer_department_id, grid_code, city_id, state, geom, properties
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


def _write(load: pd.DataFrame, progress: bool) -> None:
    """One transaction: the rows copied into a temporary table (CSV in batches; geometries as
    hex EWKB), then upserted at once."""
    session = db.session
    try:
        raw = session.connection().connection
        with raw.cursor() as cursor, tqdm(total=len(load), desc="writing components",
                                          unit="component", disable=not progress) as bar:
            cursor.execute(_LOAD_TABLE)
            for first in range(0, len(load), BATCH):
                batch = io.StringIO()
                load.iloc[first:first + BATCH].to_csv(batch, header=False, index=False)
                batch.seek(0)
                cursor.copy_expert("COPY component_load FROM STDIN (FORMAT csv)", batch)
                bar.update(min(BATCH, len(load) - first))
            cursor.execute(_UPSERT)
        session.commit()
    except Exception:
        session.rollback()
        raise
