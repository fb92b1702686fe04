"""Importing boundary files (GeoJSON, Shapefile, zipped Shapefile, GeoPackage) as regions.

A file loads completely or not at all: every feature is checked (valid polygon, no sibling
overlaps, inside its parent, a unique code) and all problems are reported together before
anything is written. With ``repair=True`` what can be repaired is, and each change is listed.

Codes: a code read from ``code_field`` fills the level's own digits (zero-padded), after the
parent's code (or zeros when the file has no parents; a missing level keeps ``000``). A
full-length code (e.g. a 6-digit division code at district level) is taken as it is. Without
a code field, serials run west→east, then north→south inside each parent.

Re-importing updates by code: a region whose (city, code) exists keeps its id (and so its
children) and takes the file's name, boundary, parent and attributes; other regions stay.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity
from sqlalchemy import select, text
from tqdm import tqdm

from gridmgr.errors import DomainError, InvalidInput
from gridmgr.extensions import db
from gridmgr.geo.coords import check_coord_sys, transform_geometry
from gridmgr.geo.metric import areas_m2, equal_area_crs, make_polygonal_valid, polygonal
from gridmgr.grids.models import CODE_LENGTH, LEVELS, City
from gridmgr.grids.repair import settle_coverage
from gridmgr.grids.validation import (
    GAP_TOLERANCE_M2,
    OUTSIDE_PARENT_SHARE,
    OVERLAP_TOLERANCE_M2,
    gap_pieces,
    overlapping_pairs,
)

# Digits each level adds to its parent's code.
OWN_DIGITS = {"district": 6, "street": 3, "community": 3, "grid": 3}
# --repair clips a child to its parent when no more than this share of it lies outside.
CLIP_TO_PARENT_SHARE = 0.05
NAME_FIELDS = ("name", "名称", "mc", "boroname", "community")


class InvalidBoundaries(DomainError):
    """A boundary file with problems; ``details["problems"]`` names every offending feature."""

    status = 422

    def __init__(self, path: str, problems: list[dict]):
        kinds = defaultdict(int)
        for p in problems:
            kinds[p["problem"]] += 1
        summary = ", ".join(f"{n} × {kind.replace('_', ' ')}" for kind, n in sorted(kinds.items()))
        super().__init__("invalid_boundaries",
                         f"{Path(path).name} was not imported: {summary}. Nothing was changed.",
                         problems=problems)


@dataclass
class ImportResult:
    """What an import loaded: codes, counts, warnings (gaps) and the repairs it made."""

    city: str
    level: str
    codes: list[str] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    warnings: list[dict] = field(default_factory=list)
    changes: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"city": self.city, "level": self.level, "codes": self.codes,
                "created": self.created, "updated": self.updated,
                "warnings": self.warnings, "changes": self.changes}


@dataclass
class _Existing:
    id: int
    code: str
    name: str
    source_ref: str | None
    geom: BaseGeometry

    @property
    def label(self) -> str:
        return f"{self.name} ({self.code})"


@dataclass
class _Feature:
    row: int
    name: str
    source_ref: str | None
    parent_ref: str | None
    properties: dict
    geom: BaseGeometry
    invalid_reason: str | None = None
    parent: _Existing | None = None
    code: str | None = None

    @property
    def label(self) -> str:
        ref = f" [{self.source_ref}]" if self.source_ref not in (None, "", self.name) else ""
        return f"row {self.row}: {self.name}{ref}"

    def ident(self) -> dict:
        return {"row": self.row, "name": self.name, "source_ref": self.source_ref}


def import_regions(path: str | Path, level: str, *, city: str = "default",
                   srid: int | None = None, name_field: str | None = None,
                   code_field: str | None = None, parent_field: str | None = None,
                   coord_sys: str = "wgs84", repair: bool = False,
                   progress: bool = False) -> ImportResult:
    """Load the polygons of a boundary file as regions of ``level`` in ``city``, all or nothing."""
    if level not in LEVELS:
        raise InvalidInput(f"Unknown level {level!r}; use one of {', '.join(LEVELS)}.",
                           code="bad_level")
    coord_sys = check_coord_sys(coord_sys)
    frame = read_boundary_file(path, srid)
    for option, column in (("--name-field", name_field), ("--code-field", code_field),
                           ("--parent-field", parent_field)):
        if column is not None and column not in frame.columns:
            raise InvalidInput(
                f"{option} {column!r} is not a field of {Path(path).name}; its fields are "
                f"{', '.join(c for c in frame.columns if c != frame.geometry.name)}.",
                code="bad_field", field=column)
    if coord_sys != "wgs84" and not frame.crs.is_geographic:
        raise InvalidInput(f"--coord-sys {coord_sys} applies to longitude/latitude files; "
                           f"this file is in {frame.crs.name}.", code="bad_coord_sys")
    frame = frame.to_crs(4326)
    features = _features(frame, name_field or _guess_name_field(frame), code_field,
                         parent_field, coord_sys)
    problems: list[dict] = []
    changes: list[dict] = []
    drawn = [f.geom for f in features if not f.geom.is_empty]
    if not drawn:
        raise InvalidInput(f"{Path(path).name} holds no polygons (boundaries must be areas).",
                           code="no_polygons")
    crs = equal_area_crs(drawn)
    features = _check_geometries(features, crs, repair, problems, changes)
    city_row = db.session.scalar(select(City).where(City.slug == city))
    city_id = city_row.id if city_row else None

    parents = _parents(city_id, level)
    if parents:
        _assign_parents(features, parents, parent_field, crs, repair, problems, changes,
                        progress)
    elif parent_field:
        raise InvalidInput(f"--parent-field was given but the city has no regions above "
                           f"level {level} yet; import those first.", code="no_parents")
    _assign_codes(features, level, code_field, problems)

    in_file = {f.code for f in features}
    existing = [r for r in _existing(city_id, level) if r.code not in in_file]
    if repair:
        order = sorted(range(len(features)), key=lambda i: (features[i].code or "", i))
        containers = list({f.parent.id: f.parent.geom for f in features if f.parent}.values())
        geoms, made = settle_coverage([f.geom for f in features], [f.label for f in features],
                                      order, crs, containers,
                                      [(r.geom, r.label) for r in existing], progress)
        changes += made
        for f, g in zip(features, geoms, strict=True):
            if g.is_empty:
                problems.append({"problem": "covered", **f.ident(),
                                 "message": f"{f.label} lies entirely under its neighbours."})
            f.geom = g
    warnings = _gaps(features, existing, crs)
    _check_overlaps(features, existing, crs, problems)
    if problems:
        raise InvalidBoundaries(str(path), problems)

    result = ImportResult(city=city, level=level, changes=changes, warnings=warnings)
    _write(features, level, city, city_row, result, progress)
    return result


def _check_geometries(features: list[_Feature], crs: CRS, repair: bool, problems: list[dict],
                      changes: list[dict]) -> list[_Feature]:
    """Empty and invalid polygons: problems, or (repairing) left out and made valid. Returns
    the drawn ones."""
    for f in features:
        if f.geom.is_empty and repair:
            # Nothing to draw, so nothing to store: one feature of a national file must not
            # hold back the thousands of others.
            changes.append({"change": "left_out", "feature": f.label, **f.ident(),
                            "reason": f.invalid_reason or "no polygon",
                            "message": f"{f.label} has no polygon; it is left out."})
        elif f.geom.is_empty:
            problems.append({"problem": "empty_geometry", **f.ident(),
                             "message": f"{f.label} has no polygon."})
        elif f.invalid_reason:
            if repair:
                before = float(areas_m2([f.geom], crs)[0])
                f.geom = make_polygonal_valid(f.geom)
                if f.geom.is_empty:
                    problems.append({"problem": "empty_geometry", **f.ident(),
                                     "reason": f.invalid_reason,
                                     "message": f"{f.label} has no area left once made valid "
                                                f"({f.invalid_reason})."})
                    continue
                changes.append({"change": "made_valid", "feature": f.label,
                                "reason": f.invalid_reason, "area_before_m2": round(before, 1),
                                "area_after_m2": round(float(areas_m2([f.geom], crs)[0]), 1)})
            else:
                problems.append({"problem": "invalid_geometry", **f.ident(),
                                 "reason": f.invalid_reason,
                                 "message": f"{f.label} is not a valid polygon: "
                                            f"{f.invalid_reason}."})
                f.geom = make_polygonal_valid(f.geom)  # still checked for overlaps below
    return [f for f in features if not f.geom.is_empty]


def read_boundary_file(path: str | Path, srid: int | None = None) -> gpd.GeoDataFrame:
    """The polygon layer of a GeoJSON/Shapefile/zip/GeoPackage with its CRS (``srid`` if none)."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"No file at {path}.", code="file_not_found", path=str(path))
    try:
        layers = pyogrio.list_layers(path)
    except Exception as exc:  # pyogrio raises DataSourceError and friends
        raise InvalidInput(f"{path.name} is not a GeoJSON, Shapefile or GeoPackage file "
                           f"gridmgr can read ({exc}).", code="unreadable_file") from exc
    # Polygon layers first: a GeoPackage may also hold points or lines.
    spatial = sorted((name for name, geom_type in layers if geom_type is not None),
                     key=lambda name: "polygon" not in str(dict(layers.tolist())[name]).lower())
    if not spatial:
        raise InvalidInput(f"{path.name} has no geometry: it is not a spatial file "
                           "(GeoJSON, Shapefile or GeoPackage expected).", code="not_spatial")
    try:
        frame = pyogrio.read_dataframe(path, layer=spatial[0])
    except Exception as exc:
        raise InvalidInput(f"{path.name} could not be read: {exc}.",
                           code="unreadable_file") from exc
    if len(frame) == 0:
        raise InvalidInput(f"{path.name} holds no features.", code="empty_file")
    if srid is not None:
        try:
            crs = CRS.from_epsg(srid)
        except CRSError as exc:
            raise InvalidInput(f"--srid {srid} is not a known EPSG code.",
                               code="bad_srid") from exc
        frame = frame.set_crs(crs, allow_override=True)
    elif frame.crs is None:
        raise InvalidInput(
            f"{path.name} does not say which coordinate reference system it uses (no .prj); "
            "give it with --srid (e.g. --srid 3435 for Illinois East feet). Nothing was imported.",
            code="missing_crs")
    return frame


def _guess_name_field(frame: gpd.GeoDataFrame) -> str | None:
    lowered = {str(c).lower(): c for c in frame.columns if c != frame.geometry.name}
    for candidate in NAME_FIELDS:
        if candidate in lowered:
            return lowered[candidate]
    return next((c for low, c in lowered.items() if low.endswith("name")), None)


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _features(frame: gpd.GeoDataFrame, name_field: str | None, code_field: str | None,
              parent_field: str | None, coord_sys: str) -> list[_Feature]:
    attributes = json.loads(frame.drop(columns=frame.geometry.name).to_json(
        orient="records", date_format="iso", default_handler=str, force_ascii=False))
    geoms = transform_geometry(frame.geometry.values.to_numpy(), coord_sys)
    features = []
    for row, (props, geom) in enumerate(zip(attributes, geoms, strict=True), start=1):
        source_ref = _text(props.get(code_field)) if code_field else None
        name = (_text(props.get(name_field)) if name_field else None) or source_ref or f"#{row}"
        if geom is None or geom.is_empty:
            geom, reason = shapely.MultiPolygon(), None
        elif geom.geom_type not in ("Polygon", "MultiPolygon"):
            reason = f"a {geom.geom_type}, not a polygon"
            geom = polygonal(geom)
        else:
            reason = None if geom.is_valid else explain_validity(geom)
        features.append(_Feature(row=row, name=name, source_ref=source_ref,
                                 parent_ref=_text(props.get(parent_field)) if parent_field
                                 else None, properties=props, geom=geom, invalid_reason=reason))
    return features


_REGIONS_SQL = text("""
SELECT id, code, name, source_ref, ST_AsBinary(geom) AS wkb
FROM regions WHERE city_id = :city_id AND level = :level ORDER BY code
""")


def _existing(city_id: int | None, level: str) -> list[_Existing]:
    if city_id is None:
        return []
    rows = db.session.execute(_REGIONS_SQL, {"city_id": city_id, "level": level}).all()
    return [_Existing(r.id, r.code, r.name, r.source_ref, shapely.from_wkb(bytes(r.wkb)))
            for r in rows]


def _parents(city_id: int | None, level: str) -> list[_Existing]:
    """The regions of the nearest level above ``level`` that the city has."""
    for parent_level in reversed(LEVELS[:LEVELS.index(level)]):
        regions = _existing(city_id, parent_level)
        if regions:
            return regions
    return []


def _assign_parents(features: list[_Feature], parents: list[_Existing], parent_field: str | None,
                    crs: CRS, repair: bool, problems: list[dict], changes: list[dict],
                    progress: bool = False) -> None:
    by_ref: dict[str, _Existing] = {}
    for p in parents:
        for key in (p.source_ref, p.name, p.code):  # the most specific wins
            if key:
                by_ref[key] = p
    tree = shapely.STRtree(np.asarray([p.geom for p in parents], dtype=object))
    for f in tqdm(features, desc="finding parents", unit="region", disable=not progress):
        if parent_field:
            f.parent = by_ref.get(f.parent_ref or "")
            if f.parent is None:
                problems.append({"problem": "unknown_parent", **f.ident(),
                                 "parent_ref": f.parent_ref,
                                 "message": f"{f.label} names parent {f.parent_ref!r}, "
                                            "which is not a region of the city."})
                continue
        else:
            candidates = tree.query(f.geom, predicate="intersects")
            if len(candidates) == 0:
                problems.append({"problem": "outside_parent", **f.ident(), "parent": None,
                                 "message": f"{f.label} lies outside every parent region."})
                continue
            shares = shapely.area(shapely.intersection(f.geom, tree.geometries[candidates]))
            best = max(zip(shares, candidates, strict=True),
                       key=lambda sc: (sc[0], -int(sc[1])))[1]
            f.parent = parents[int(best)]
    placed = [f for f in features if f.parent]
    if not placed:
        return
    owns = areas_m2([f.geom for f in placed], crs)
    outsides = areas_m2(shapely.difference(np.asarray([f.geom for f in placed], dtype=object),
                                           np.asarray([f.parent.geom for f in placed],
                                                      dtype=object)), crs)
    for f, own, outside in zip(placed, owns.tolist(), outsides.tolist(), strict=True):
        if outside <= max(OVERLAP_TOLERANCE_M2, OUTSIDE_PARENT_SHARE * own):
            continue
        if repair and outside <= CLIP_TO_PARENT_SHARE * own:
            f.geom = make_polygonal_valid(shapely.intersection(f.geom, f.parent.geom))
            changes.append({"change": "clipped_to_parent", "feature": f.label,
                            "parent": f.parent.label, "area_m2": round(outside, 1)})
        else:
            problems.append({"problem": "outside_parent", **f.ident(), "parent": f.parent.label,
                             "area_m2": round(outside, 1),
                             "message": f"{f.label} lies {outside:,.0f} m² outside its parent "
                                        f"{f.parent.label}."})


def _code_prefix(level: str, parent: _Existing | None) -> str:
    """The parent's code and ``000`` for every level between it and ``level``."""
    width = CODE_LENGTH[level] - OWN_DIGITS[level]
    return (parent.code if parent else "").ljust(width, "0")


def _assign_codes(features: list[_Feature], level: str, code_field: str | None,
                  problems: list[dict]) -> None:
    own = OWN_DIGITS[level]
    if code_field:
        for f in features:
            prefix = _code_prefix(level, f.parent)
            value = f.source_ref or ""
            if not value.isdigit() or int(value) == 0:
                problems.append({"problem": "bad_code", **f.ident(), "message":
                                 f"{f.label} has code {value!r}; a code is a positive number."})
            elif len(value) == CODE_LENGTH[level]:
                if f.parent and not value.startswith(prefix):
                    problems.append({"problem": "code_outside_parent", **f.ident(), "message":
                                     f"{f.label} has code {value}, which does not begin with "
                                     f"its parent's code {prefix}."})
                f.code = value
            elif len(value) <= own:
                f.code = prefix + value.zfill(own)
            else:
                problems.append({"problem": "bad_code", **f.ident(), "message":
                                 f"{f.label} has code {value}: a {level} takes {own} digits "
                                 f"of its own or its full {CODE_LENGTH[level]}-digit code."})
    else:
        groups: dict[int | None, list[_Feature]] = defaultdict(list)
        for f in features:
            groups[f.parent.id if f.parent else None].append(f)
        for members in groups.values():
            if len(members) > 10 ** own - 1:
                parent = members[0].parent
                problems.append({"problem": "too_many_children", "count": len(members),
                                 "parent": parent.label if parent else None, "message":
                                 f"{len(members)} {level}s in one parent; codes allow "
                                 f"{10 ** own - 1}."})
                continue
            for serial, f in enumerate(_reading_order(members), start=1):
                f.code = _code_prefix(level, f.parent) + str(serial).zfill(own)
    by_code: dict[str, list[_Feature]] = defaultdict(list)
    for f in features:
        if f.code:
            by_code[f.code].append(f)
    for code, same in sorted(by_code.items()):
        if len(same) > 1:
            problems.append({"problem": "duplicate_code", "code": code,
                             "features": [f.ident() for f in same],
                             "message": f"code {code} is used by " +
                                        ", ".join(f.label for f in same) + "."})


def _reading_order(members: list[_Feature]) -> list[_Feature]:
    """West→east, then north→south: rows as tall as the median feature, from the north."""
    points = [f.geom.representative_point() for f in members]
    heights = [f.geom.bounds[3] - f.geom.bounds[1] for f in members]
    row_height = float(np.median(heights)) or 1.0
    top = max(p.y for p in points)
    keyed = sorted(zip(members, points, strict=True),
                   key=lambda mp: (math.floor((top - mp[1].y) / row_height), mp[1].x, mp[1].y))
    return [f for f, _ in keyed]


def _gaps(features: list[_Feature], existing: list[_Existing], crs: CRS) -> list[dict]:
    """The gaps between siblings (inside their parent, if any), as warnings."""
    groups: dict[int | None, list[_Feature]] = defaultdict(list)
    for f in features:
        groups[f.parent.id if f.parent else None].append(f)
    warnings = []
    for members in groups.values():
        parent = members[0].parent
        # Siblings already in the database fill their part of the parent too.
        others = [r.geom for r in existing if parent is None or r.code.startswith(parent.code)]
        gaps = gap_pieces([f.geom for f in members] + others, parent.geom if parent else None)
        for gap, area in zip(gaps, areas_m2(gaps, crs), strict=True):
            if area > GAP_TOLERANCE_M2:
                p = gap.representative_point()
                warnings.append({"warning": "gap", "area_m2": round(float(area), 1),
                                 "parent": parent.label if parent else None,
                                 "at": [round(p.x, 6), round(p.y, 6)],
                                 "message": f"{area:,.0f} m² near ({p.x:.5f}, {p.y:.5f}) "
                                            "belongs to no region"
                                            + (f" of {parent.label}." if parent else ".")})
    return warnings


def _check_overlaps(features: list[_Feature], existing: list[_Existing], crs: CRS,
                    problems: list[dict]) -> None:
    labels = [f.label for f in features] + [r.label for r in existing]
    geoms = [f.geom for f in features] + [r.geom for r in existing]
    for i, j, area in overlapping_pairs(geoms, crs, OVERLAP_TOLERANCE_M2):
        problems.append({"problem": "overlap", "features": [labels[i], labels[j]],
                         "area_m2": round(area, 1),
                         "message": f"{labels[i]} and {labels[j]} overlap by {area:,.0f} m²."})


_UPSERT_SQL = text("""
INSERT INTO regions (city_id, level, code, name, parent_id, source_ref, geom, area_m2,
                     properties, generated)
SELECT :city_id, :level, :code, :name, :parent_id, :source_ref, g.geom,
       ST_Area(g.geom::geography), CAST(:properties AS jsonb), false
FROM (SELECT ST_Multi(ST_GeomFromWKB(:wkb, 4326)) AS geom) AS g
ON CONFLICT (city_id, code) DO UPDATE SET
    level = EXCLUDED.level, name = EXCLUDED.name, parent_id = EXCLUDED.parent_id,
    source_ref = EXCLUDED.source_ref, geom = EXCLUDED.geom, area_m2 = EXCLUDED.area_m2,
    properties = EXCLUDED.properties, updated_at = now()
""")


def _write(features: list[_Feature], level: str, city: str, city_row: City | None,
           result: ImportResult, progress: bool) -> None:
    """One transaction: the city if new, then every region inserted or updated by code."""
    session = db.session
    try:
        if city_row is None:
            city_row = City(slug=city, name=city)
            session.add(city_row)
            session.flush()
        known = set(session.scalars(text(
            "SELECT code FROM regions WHERE city_id = :c").bindparams(c=city_row.id)))
        rows = [{"city_id": city_row.id, "level": level, "code": f.code, "name": f.name[:200],
                 "parent_id": f.parent.id if f.parent else None,
                 "source_ref": f.source_ref[:200] if f.source_ref else None,
                 "wkb": shapely.to_wkb(f.geom), "properties": json.dumps(f.properties)}
                for f in sorted(features, key=lambda f: f.code)]
        with tqdm(total=len(rows), desc=f"writing {level} regions", unit="region",
                  disable=not progress) as bar:
            for start in range(0, len(rows), 500):
                batch = rows[start:start + 500]
                session.execute(_UPSERT_SQL, batch)
                bar.update(len(batch))
        result.codes = [r["code"] for r in rows]
        result.updated = sum(1 for code in result.codes if code in known)
        result.created = len(result.codes) - result.updated
        session.commit()
    except Exception:
        session.rollback()
        raise
