"""Locating points in the hierarchy: the unit grid (or deepest region) and every ancestor.

The rule, for one point and for a batch alike: of all regions whose closed boundary holds the
point, the deepest level wins (grid, then community, street, district); among equals (a point
on an edge or corner shared by several grids) the smallest code wins, then the smallest city
id. So a point on a shared edge always resolves to the same grid, whichever path asks.

``locate`` asks PostGIS (GiST index, one statement for the region and its ancestors).
``locate_many`` answers from an in-process index built lazily from the regions table: a
uniform hash grid whose cells are crossed by no boundary answer directly; the remaining points
are tested against the deepest-level regions whose boxes meet their cell, and what is left
goes through shapely STRtrees. Points outside every region come back as ``OUTSIDE`` (-1).

Freshness: every batch checks, in one index lookup, the table's file (a TRUNCATE replaces it)
and its highest id (any insert raises it); the full version (row count, last ``updated_at``,
highest id: a scan) is checked when the last full check is older than ``FULL_CHECK_SECONDS``.
Writers in this process call ``invalidate_index``; an update or delete made by another process
is therefore seen within ``FULL_CHECK_SECONDS``. Writers that bypass the ORM set ``updated_at``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import shapely
from sqlalchemy import text

from gridmgr.errors import DomainError, Sentence
from gridmgr.extensions import db
from gridmgr.grids.models import LEVELS

OUTSIDE = -1
_MIXED = -2
_MAX_HASH_CELLS = 16_000_000
_EPS_DEG = 1e-9


class OutsideCity(DomainError):
    status = 422

    def __init__(self, lon: float, lat: float):
        super().__init__("outside_city", Sentence(
            "The point (%(lon).6f, %(lat).6f) is outside every region of the city.",
            lon=lon, lat=lat), lon=lon, lat=lat)


@dataclass(frozen=True)
class RegionRef:
    id: int
    level: str
    code: str
    name: str

    def to_dict(self) -> dict:
        return {"id": self.id, "level": self.level, "code": self.code, "name": self.name}


@dataclass(frozen=True)
class Location:
    """The deepest region holding a point, and its ancestors from the district down."""

    region: RegionRef
    ancestors: tuple[RegionRef, ...]
    city_id: int

    def to_dict(self) -> dict:
        return {"region": self.region.to_dict(),
                "ancestors": [a.to_dict() for a in self.ancestors],
                "city_id": self.city_id}


def grid_at_sql(lon: str = ":lon", lat: str = ":lat") -> str:
    """The one rule of which region holds a point, as SQL (``id``, ``code``, ``city_id`` of at
    most one row; ``lon`` and ``lat`` are SQL): the deepest region containing it (the GiST
    index finds the few candidates); on a shared edge the smallest code wins. Statements that
    locate a point on their own (intake's) compose it; :class:`RegionIndex` follows it."""
    return f"""SELECT id, code, city_id FROM regions
    WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326))
    ORDER BY char_length(code) DESC, code, city_id
    LIMIT 1"""


# The region holding the point (:func:`grid_at_sql`); ancestors follow the parent chain in the
# same statement.
LOCATE_SQL = text(f"""
WITH RECURSIVE hit AS (
    {grid_at_sql()}
), chain AS (
    SELECT r.id, r.parent_id, r.level, r.code, r.name, r.city_id, 0 AS depth
    FROM regions r JOIN hit ON hit.id = r.id
    UNION ALL
    SELECT p.id, p.parent_id, p.level, p.code, p.name, p.city_id, chain.depth + 1
    FROM regions p JOIN chain ON p.id = chain.parent_id
)
SELECT id, level, code, name, city_id FROM chain ORDER BY depth
""")


_PREPARED = "gridmgr_locate"


def locate(lon: float, lat: float) -> Location:
    """The unit grid (or deepest region) holding (lon, lat) in WGS 84, with its ancestors."""
    lon, lat = float(lon), float(lat)
    connection = db.session.connection()
    # A server-side prepared statement per pooled connection: no parsing or planning per call.
    if _PREPARED not in connection.info:
        sql = LOCATE_SQL.text.replace(":lon", "$1").replace(":lat", "$2")
        connection.exec_driver_sql(f"PREPARE {_PREPARED}(float8, float8) AS {sql}")
        connection.info[_PREPARED] = True
    rows = connection.execute(text(f"EXECUTE {_PREPARED}(:lon, :lat)"),
                              {"lon": lon, "lat": lat}).all()
    if not rows:
        raise OutsideCity(lon, lat)
    refs = [RegionRef(r.id, r.level, r.code, r.name) for r in rows]
    return Location(region=refs[0], ancestors=tuple(reversed(refs[1:])), city_id=rows[0].city_id)


def locate_many(lons, lats) -> np.ndarray:
    """Region ids (int64) of the deepest region holding each WGS 84 point; OUTSIDE (-1) if none.

    Same rule as ``locate``; vectorised over numpy arrays (or sequences) of equal length.
    """
    return current_index().locate_ids(lons, lats)


def locations_of(ids: np.ndarray) -> list[Location | None]:
    """``Location`` objects (None for OUTSIDE) for ids returned by ``locate_many``."""
    return current_index().locations(ids)


def invalidate_index() -> None:
    """Drop this process's index; the next batch rebuilds it (writers call this after commit)."""
    with _lock:
        _cache.clear()


FULL_CHECK_SECONDS = 2.0
_QUICK_VERSION_SQL = text("SELECT pg_relation_filenode('regions'), "
                          "(SELECT coalesce(max(id), 0) FROM regions)")
_VERSION_SQL = text("SELECT count(*), max(updated_at), coalesce(max(id), 0) FROM regions")
_REGIONS_SQL = text("""
SELECT id, city_id, level, code, name, parent_id, ST_AsBinary(geom) AS wkb
FROM regions ORDER BY id
""")

_lock = threading.Lock()
_cache: dict[str, RegionIndex] = {}


def current_index() -> RegionIndex:
    """The in-process index for this database, rebuilt if the regions table changed."""
    key = str(db.engine.url)
    quick = tuple(db.session.execute(_QUICK_VERSION_SQL).one())
    index = _cache.get(key)
    now = time.monotonic()
    if (index is not None and index.version[0] == quick
            and now - index.checked_at < FULL_CHECK_SECONDS):
        return index
    version = (quick, tuple(db.session.execute(_VERSION_SQL).one()))
    with _lock:
        index = _cache.get(key)
        if index is None or index.version != version:
            index = RegionIndex.load(version)
            _cache[key] = index
        index.checked_at = now
        return index


class RegionIndex:
    """Every region in memory: per-level STRtrees plus a hash grid of boundary-free cells."""

    def __init__(self, version: tuple, rows: list) -> None:
        self.version = version
        self.checked_at = 0.0
        # GEOS prepared geometries build their internal indexes lazily and are not safe to
        # share between threads mid-query; batches in one process take turns (they are short).
        self._query_lock = threading.Lock()
        n = len(rows)
        self.ids = np.array([r.id for r in rows], dtype=np.int64)
        self.levels = [r.level for r in rows]
        self.codes = [r.code for r in rows]
        self.names = [r.name for r in rows]
        self.city_ids = [r.city_id for r in rows]
        self.row_of_id = {int(i): k for k, i in enumerate(self.ids)}
        self.parent_rows = [self.row_of_id.get(r.parent_id, -1) for r in rows]
        self.geoms = shapely.from_wkb([bytes(r.wkb) for r in rows]) if n else np.array([])
        # Rank = position in the winning order: deepest level, then code, then city id.
        order = sorted(range(n), key=lambda k: (-len(self.codes[k]), self.codes[k],
                                                self.city_ids[k]))
        self.rank = np.empty(n, dtype=np.int64)
        self.rank[order] = np.arange(n)
        self.trees = []
        for level in reversed(LEVELS):
            rows_at = np.array([k for k in range(n) if self.levels[k] == level], dtype=np.int64)
            if len(rows_at):
                self.trees.append((rows_at, shapely.STRtree(self.geoms[rows_at])))
        self._build_hash_grid()

    @classmethod
    def load(cls, version: tuple) -> RegionIndex:
        return cls(version, db.session.execute(_REGIONS_SQL).all())

    # -- lookups ---------------------------------------------------------------------------

    def locate_ids(self, lons, lats) -> np.ndarray:
        x = np.asarray(lons, dtype=np.float64).ravel()
        y = np.asarray(lats, dtype=np.float64).ravel()
        if x.shape != y.shape:
            raise ValueError("lons and lats must have the same length")
        with self._query_lock:
            rows = self._rows(x, y)
        out = np.full(len(rows), OUTSIDE, dtype=np.int64)
        hit = rows >= 0
        out[hit] = self.ids[rows[hit]]
        return out

    def locations(self, ids) -> list[Location | None]:
        """One shared ``Location`` per distinct region id (None for OUTSIDE or unknown ids)."""
        distinct, inverse = np.unique(np.asarray(ids, dtype=np.int64), return_inverse=True)
        made = [None if (row := self.row_of_id.get(i)) is None else self._location(row)
                for i in distinct.tolist()]
        return [made[k] for k in inverse.ravel().tolist()]

    def _location(self, row: int) -> Location:
        chain = []
        k = row
        while k >= 0:
            chain.append(RegionRef(int(self.ids[k]), self.levels[k], self.codes[k], self.names[k]))
            k = self.parent_rows[k]
        return Location(region=chain[0], ancestors=tuple(reversed(chain[1:])),
                        city_id=self.city_ids[row])

    def _rows(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        rows = np.full(len(x), OUTSIDE, dtype=np.int64)
        if self.cells is None or len(x) == 0:
            if len(x) and self.trees:
                rows[:] = self._rows_by_tree(x, y)
            return rows
        with np.errstate(invalid="ignore"):
            ix = np.floor((x - self.x0) / self.dx)
            iy = np.floor((y - self.y0) / self.dy)
            inside = (ix >= 0) & (ix < self.nx) & (iy >= 0) & (iy < self.ny)
        flat = iy[inside].astype(np.int64) * self.nx + ix[inside].astype(np.int64)
        rows[inside] = self.cells[flat]
        mixed = np.flatnonzero(rows <= _MIXED)
        if len(mixed) == 0:
            return rows
        if self.candidates is None:
            rows[mixed] = self._rows_by_tree(x[mixed], y[mixed])
            return rows
        found = self._rows_by_candidates(-rows[mixed] + _MIXED, x[mixed], y[mixed])
        rows[mixed] = found
        rest = mixed[found == OUTSIDE]
        if len(rest):
            rows[rest] = self._rows_by_tree(x[rest], y[rest], from_level=1)
        return rows

    def _rows_by_candidates(self, mixed_idx: np.ndarray, x: np.ndarray,
                            y: np.ndarray) -> np.ndarray:
        """Deepest-level regions whose box meets the point's cell, tested in rank order."""
        offsets, cand_rows = self.candidates
        start, end = offsets[mixed_idx], offsets[mixed_idx + 1]
        counts = end - start
        point = np.repeat(np.arange(len(x)), counts)
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        cand = cand_rows[np.repeat(start, counts) + within]
        hit = shapely.intersects_xy(self.geoms[cand], x[point], y[point])
        point, cand = point[hit], cand[hit]
        first = np.ones(len(point), dtype=bool)  # candidates are in rank order: first hit wins
        first[1:] = point[1:] != point[:-1]
        rows = np.full(len(x), OUTSIDE, dtype=np.int64)
        rows[point[first]] = cand[first]
        return rows

    def _rows_by_tree(self, x: np.ndarray, y: np.ndarray, from_level: int = 0) -> np.ndarray:
        """Deepest level first; among several hits the best rank (smallest code)."""
        rows = np.full(len(x), OUTSIDE, dtype=np.int64)
        todo = np.arange(len(x))
        points = shapely.points(x, y)
        for rows_at, tree in self.trees[from_level:]:
            if len(todo) == 0:
                break
            pt, hit = tree.query(points[todo], predicate="intersects")
            if len(pt) == 0:
                continue
            hit_rows = rows_at[hit]
            order = np.lexsort((self.rank[hit_rows], pt))
            pt, hit_rows = pt[order], hit_rows[order]
            first = np.ones(len(pt), dtype=bool)
            first[1:] = pt[1:] != pt[:-1]
            rows[todo[pt[first]]] = hit_rows[first]
            found = np.zeros(len(todo), dtype=bool)
            found[pt[first]] = True
            todo = todo[~found]
        return rows

    # -- the hash grid ---------------------------------------------------------------------

    def _build_hash_grid(self) -> None:
        """Cells that no boundary crosses form connected patches; each patch has one answer."""
        self.cells = None
        self.candidates = None
        if len(self.geoms) == 0:
            return
        from scipy import ndimage

        minx, miny, maxx, maxy = shapely.total_bounds(self.geoms)
        deepest = self.trees[0][0]
        typical_m = float(np.sqrt(np.median(shapely.area(self.geoms[deepest])))) * 111_320
        mid_cos = max(np.cos(np.radians((miny + maxy) / 2)), 0.05)
        cell_m = max(typical_m / 16, 2.0)
        dy = cell_m / 111_320
        dx = dy / mid_cos
        nx, ny = int((maxx - minx) / dx) + 2, int((maxy - miny) / dy) + 2
        if nx * ny > _MAX_HASH_CELLS:
            grow = np.sqrt(nx * ny / _MAX_HASH_CELLS)
            dx, dy = dx * grow, dy * grow
            nx, ny = int((maxx - minx) / dx) + 2, int((maxy - miny) / dy) + 2
        self.x0, self.y0, self.dx, self.dy, self.nx, self.ny = minx - dx / 2, miny - dy / 2, \
            dx, dy, nx, ny

        # Mark every cell a boundary passes through (segments no longer than a cell, so each
        # marks the cells of its bounding box, widened by a hair against rounding).
        rings = shapely.get_parts(shapely.boundary(self.geoms))
        rings = shapely.segmentize(rings, min(dx, dy) * 0.99)
        coords, ring_of = shapely.get_coordinates(rings, return_index=True)
        same = ring_of[1:] == ring_of[:-1]
        a, b = coords[:-1][same], coords[1:][same]
        lo_x = np.floor((np.minimum(a[:, 0], b[:, 0]) - _EPS_DEG - self.x0) / dx).astype(np.int64)
        hi_x = np.floor((np.maximum(a[:, 0], b[:, 0]) + _EPS_DEG - self.x0) / dx).astype(np.int64)
        lo_y = np.floor((np.minimum(a[:, 1], b[:, 1]) - _EPS_DEG - self.y0) / dy).astype(np.int64)
        hi_y = np.floor((np.maximum(a[:, 1], b[:, 1]) + _EPS_DEG - self.y0) / dy).astype(np.int64)
        marked = np.zeros((ny, nx), dtype=bool)
        span = int(max((hi_x - lo_x).max(initial=0), (hi_y - lo_y).max(initial=0)))
        for ox in range(span + 1):
            for oy in range(span + 1):
                use = (lo_x + ox <= hi_x) & (lo_y + oy <= hi_y)
                cx = np.clip(lo_x[use] + ox, 0, nx - 1)
                cy = np.clip(lo_y[use] + oy, 0, ny - 1)
                marked[cy, cx] = True

        labels, count = ndimage.label(~marked)
        flat_labels = labels.ravel()
        # The first cell of every patch (writing in reverse order leaves the first one).
        first = np.zeros(count + 1, dtype=np.int64)
        first[flat_labels[::-1]] = np.arange(len(flat_labels) - 1, -1, -1)
        first = first[1:]
        rep_y, rep_x = np.divmod(first, nx)
        answers = self._rows_by_tree(self.x0 + (rep_x + 0.5) * dx, self.y0 + (rep_y + 0.5) * dy)
        lookup = np.empty(count + 1, dtype=np.int32)
        lookup[0] = _MIXED
        lookup[1:] = answers
        self.cells = lookup[flat_labels]
        self._build_candidates()

    def _build_candidates(self, max_pairs_per_cell: int = 2) -> None:
        """For boundary cells, the deepest-level regions whose bounding box meets the cell.

        A region holding a point has a box holding it, so these candidates are complete for
        the deepest level; tested with ``intersects_xy`` in rank order they answer most points
        without an STRtree. Mixed cells are stored as ``-(2 + index)`` into a CSR list.
        """
        self.candidates = None
        mixed_cells = np.flatnonzero(self.cells == _MIXED)
        rows_at = self.trees[0][0]
        b = shapely.bounds(self.geoms[rows_at])
        ix0 = np.clip(np.floor((b[:, 0] - self.x0) / self.dx), 0, self.nx - 1).astype(np.int64)
        ix1 = np.clip(np.floor((b[:, 2] - self.x0) / self.dx), 0, self.nx - 1).astype(np.int64)
        iy0 = np.clip(np.floor((b[:, 1] - self.y0) / self.dy), 0, self.ny - 1).astype(np.int64)
        iy1 = np.clip(np.floor((b[:, 3] - self.y0) / self.dy), 0, self.ny - 1).astype(np.int64)
        w, h = ix1 - ix0 + 1, iy1 - iy0 + 1
        counts = w * h
        if len(mixed_cells) == 0 or counts.sum() > max_pairs_per_cell * self.cells.size:
            return
        region = np.repeat(np.arange(len(rows_at)), counts)
        local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        cell = (iy0[region] + local // w[region]) * self.nx + ix0[region] + local % w[region]
        keep = self.cells[cell] == _MIXED
        cell, cand = cell[keep], rows_at[region[keep]]
        mixed_index = np.searchsorted(mixed_cells, cell)
        order = np.lexsort((self.rank[cand], mixed_index))
        mixed_index, cand = mixed_index[order], cand[order]
        offsets = np.zeros(len(mixed_cells) + 1, dtype=np.int64)
        np.cumsum(np.bincount(mixed_index, minlength=len(mixed_cells)), out=offsets[1:])
        shapely.prepare(self.geoms[rows_at])
        self.cells[mixed_cells] = _MIXED - np.arange(len(mixed_cells), dtype=np.int32)
        self.candidates = (offsets, cand)

    @property
    def hash_stats(self) -> dict:
        """Size of the hash grid and the share of its cells that answer without a tree."""
        if self.cells is None:
            return {"cells": 0}
        return {"cells": int(self.cells.size), "nx": self.nx, "ny": self.ny,
                "cell_m": round(self.dy * 111_320, 2),
                "resolved_share": round(float(np.mean(self.cells > _MIXED)), 4),
                "candidate_lists": self.candidates is not None}
