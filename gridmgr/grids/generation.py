"""Generating unit grids (万米单元网格) inside communities, streets or districts.

Cells of ``cell_area_m2`` lie on one square lattice per city, in the UTM zone of the city's
centre (so neighbouring parents' cells line up). Each cell is clipped to its parent; a piece
smaller than ``SLIVER_RATIO`` of a cell is merged into the neighbour sharing the longest edge
with it (ties: the earlier piece in lattice order; pieces that touch no larger piece merge with
each other). Cells wholly inside the parent are kept as they are; the others are clipped with
GEOS's rectangle clipping; everything else is shapely 2 array operations. Coordinates sit on a
1 mm grid, so neighbouring grids share their edges exactly.

Serial rule: within a parent, grids are numbered row by row from the north, each row from
west to east, by the lattice cell of the grid's largest piece (row = the cell's northing,
column = its easting); pieces of one cell cut apart by the parent's boundary follow each
other from west to east by the x of their representative point. The code is the parent's
code padded with ``000`` to 12 digits plus the 3-digit serial (15 digits); a parent holds at
most 999 grids.

Re-running is idempotent: each grid records the fingerprint of its parent's geometry and the
cell area; a parent whose grids carry the current fingerprint is left alone. A parent whose
geometry or cell area changed gets its generated grids rewritten in place (same codes keep
their rows and ids; surplus serials are deleted). A parent holding any grid that was not
generated (imported, or edited and so marked ``generated = false``) is never touched.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, field

import numpy as np
import pyproj
import shapely
from sqlalchemy import text

from gridmgr.errors import InvalidInput, NotFound
from gridmgr.extensions import db
from gridmgr.grids.models import CODE_LENGTH, LEVELS

MAX_GRIDS_PER_PARENT = 999
SLIVER_RATIO = 0.3
PRECISION_M = 0.001
# Beyond this many estimated cells a parent is refused without cutting it (memory guard).
_ESTIMATE_ONLY_FACTOR = 4

_DENSIFY_DEG = 0.0001  # about 10 m

PARENT_LEVELS = ("district", "street", "community")


@dataclass
class GenerationResult:
    """What one run did, parent by parent."""

    within: str
    cell_area_m2: float
    generated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    deleted: int = 0
    seconds: float = 0.0

    @property
    def grid_count(self) -> int:
        return sum(self.generated.values()) + sum(self.unchanged.values())

    def to_dict(self) -> dict:
        return {"within": self.within, "cell_area_m2": self.cell_area_m2,
                "generated": self.generated, "unchanged": self.unchanged,
                "skipped": self.skipped, "deleted": self.deleted,
                "grid_count": self.grid_count, "seconds": round(self.seconds, 3)}


@dataclass
class _Parent:
    id: int
    city_id: int
    code: str
    name: str
    wkb: bytes
    fingerprint: str
    grids: int
    manual_grids: int
    other_children: int
    fingerprints: list


_PARENTS_SQL = text("""
SELECT r.id, r.city_id, r.code, r.name, ST_AsBinary(r.geom) AS wkb,
       md5(ST_AsBinary(r.geom)) AS geom_md5,
       count(g.id) FILTER (WHERE g.level = 'grid') AS grids,
       count(g.id) FILTER (WHERE g.level = 'grid' AND NOT g.generated) AS manual_grids,
       count(g.id) FILTER (WHERE g.level <> 'grid') AS other_children,
       array_remove(array_agg(DISTINCT g.properties->>'generation')
                    FILTER (WHERE g.level = 'grid'), NULL) AS fingerprints
FROM regions r
JOIN cities c ON c.id = r.city_id
LEFT JOIN regions g ON g.parent_id = r.id
WHERE r.level = :level
  AND (CAST(:city AS text) IS NULL OR c.slug = :city)
  AND (CAST(:codes AS text[]) IS NULL OR r.code = ANY(CAST(:codes AS text[])))
GROUP BY r.id
ORDER BY r.city_id, r.code
""")


def generate_grids(within: str = "community", cell_area_m2: float = 10_000,
                   city: str | None = None,
                   parents: list[str] | None = None) -> GenerationResult:
    """Cut every parent region of level ``within`` into unit grids of about ``cell_area_m2``.

    ``city`` (a slug) and ``parents`` (region codes) narrow the run. Commits on success;
    raises InvalidInput (``too_many_grids``) and changes nothing if a parent would pass 999.
    """
    started = time.perf_counter()
    if within not in PARENT_LEVELS:
        raise InvalidInput(f"Grids are generated within one of {', '.join(PARENT_LEVELS)}, "
                           f"not {within!r}.", code="bad_level", within=within)
    if not (isinstance(cell_area_m2, int | float) and math.isfinite(cell_area_m2)
            and 100 <= cell_area_m2 <= 10_000_000):
        raise InvalidInput("The cell area must be between 100 and 10,000,000 m².",
                           code="bad_cell_area", cell_area_m2=cell_area_m2)
    cell_area_m2 = float(cell_area_m2)
    if city is not None and db.session.execute(
            text("SELECT 1 FROM cities WHERE slug = :s"), {"s": city}).first() is None:
        raise NotFound(f"No city has the slug {city!r}.", code="unknown_city")

    rows = db.session.execute(_PARENTS_SQL, {"level": within, "city": city,
                                             "codes": list(parents) if parents else None}).all()
    if parents:
        missing = sorted(set(parents) - {r.code for r in rows})
        if missing:
            raise NotFound(f"No {within} has the code(s) {', '.join(missing)}.",
                           code="unknown_parent", codes=missing)
    if not rows:
        raise InvalidInput(f"There is no {within} to generate grids in; import them first.",
                           code="no_parents", within=within)

    result = GenerationResult(within=within, cell_area_m2=cell_area_m2)
    todo: list[_Parent] = []
    for r in rows:
        parent = _Parent(r.id, r.city_id, r.code, r.name, bytes(r.wkb),
                         f"{r.geom_md5}:{cell_area_m2:g}", r.grids, r.manual_grids,
                         r.other_children, list(r.fingerprints or []))
        if parent.other_children:
            below = LEVELS[LEVELS.index(within) + 1]
            result.skipped[parent.code] = (f"has {parent.other_children} child region(s); "
                                           f"generate within its {below} level instead")
        elif parent.manual_grids:
            result.skipped[parent.code] = (f"holds {parent.manual_grids} grid(s) not "
                                           "generated here (imported or edited); left as is")
        elif parent.grids and parent.fingerprints == [parent.fingerprint]:
            result.unchanged[parent.code] = parent.grids
        else:
            todo.append(parent)

    cut: list[tuple[_Parent, list, np.ndarray]] = []
    too_many: list[dict] = []
    for city_id in sorted({p.city_id for p in todo}):
        group = [p for p in todo if p.city_id == city_id]
        for parent, geoms, areas, estimate in _cut_city(group, cell_area_m2):
            if estimate is not None:
                too_many.append({"code": parent.code, "name": parent.name,
                                 "count": estimate, "estimated": True})
            elif len(geoms) > MAX_GRIDS_PER_PARENT:
                too_many.append({"code": parent.code, "name": parent.name, "count": len(geoms)})
            else:
                cut.append((parent, geoms, areas))
    if too_many:
        raise _too_many_error(too_many, within, cell_area_m2)

    if cut:
        result.deleted = _write(cut)
        for parent, geoms, _ in cut:
            result.generated[parent.code] = len(geoms)
    db.session.commit()
    if cut:
        from gridmgr.grids.locating import invalidate_index

        invalidate_index()
    result.seconds = time.perf_counter() - started
    return result


def _too_many_error(too_many: list[dict], within: str, cell_area_m2: float) -> InvalidInput:
    worst = max(p["count"] for p in too_many)
    suggested = math.ceil(cell_area_m2 * worst / MAX_GRIDS_PER_PARENT * 1.1 / 1000) * 1000
    listed = "; ".join(f"{p['name']} ({p['code']}): {'about ' if p.get('estimated') else ''}"
                       f"{p['count']} grids" for p in too_many)
    return InvalidInput(
        f"{len(too_many)} {within}(s) would get more than {MAX_GRIDS_PER_PARENT} unit grids, "
        f"the most a 3-digit serial allows: {listed}. Use a larger cell area "
        f"(e.g. --cell-area {suggested}); nothing was changed.",
        code="too_many_grids", parents=too_many, suggested_cell_area_m2=suggested)


def _utm_for(lon: float, lat: float) -> pyproj.CRS:
    zone = int((lon + 180) // 6) % 60 + 1
    return pyproj.CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _transformer(src: pyproj.CRS, dst: pyproj.CRS):
    tr = pyproj.Transformer.from_crs(src, dst, always_xy=True)

    def apply(xy: np.ndarray) -> np.ndarray:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return apply


def _cut_city(parents: list[_Parent], cell_area_m2: float):
    """Yield (parent, [grid geometries in WGS 84, in serial order], estimate-or-None)."""
    wgs = shapely.from_wkb([p.wkb for p in parents])
    bounds = shapely.total_bounds(wgs)
    utm = _utm_for((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
    to_m = _transformer(pyproj.CRS.from_epsg(4326), utm)
    to_deg = _transformer(utm, pyproj.CRS.from_epsg(4326))

    # Short segments first, so edges straight in degrees stay on the parent's boundary in metres.
    metric = shapely.transform(shapely.segmentize(wgs, _DENSIFY_DEG), to_m)
    metric = _snap(shapely.make_valid(metric))
    areas = shapely.area(metric)
    side = round(math.sqrt(cell_area_m2), 3)

    oversize = areas > _ESTIMATE_ONLY_FACTOR * MAX_GRIDS_PER_PARENT * cell_area_m2
    for k in np.flatnonzero(oversize):
        yield parents[k], [], None, int(areas[k] // cell_area_m2)
    keep = np.flatnonzero(~oversize & (areas > 0))
    if len(keep) == 0:
        return
    metric_keep = metric[keep]
    pieces, owner, cell_i, cell_j, rects = _clip_cells(metric_keep, side)
    groups = _merge_slivers(pieces, owner, cell_i, cell_j, rects, cell_area_m2 * SLIVER_RATIO)

    merged, g_owner, g_i, g_j, g_x = [], [], [], [], []
    multi = [g for g in groups if len(g) > 1]
    unions = {}
    if multi:
        # One vectorised union over a padded (group x member) array.
        table = np.full((len(multi), max(len(g) for g in multi)), None, dtype=object)
        for row, g in enumerate(multi):
            table[row, :len(g)] = pieces[g]
        unions = dict(zip([g[0] for g in multi], shapely.union_all(table, axis=1),
                          strict=True))
    rep_x = shapely.get_x(shapely.point_on_surface(pieces))
    for g in groups:
        root = g[0]
        merged.append(unions.get(root, pieces[root]) if len(g) > 1 else pieces[root])
        g_owner.append(owner[root])
        g_i.append(cell_i[root])
        g_j.append(cell_j[root])
        g_x.append(rep_x[root])
    merged = np.array(merged, dtype=object)
    g_owner, g_i, g_j, g_x = map(np.asarray, (g_owner, g_i, g_j, g_x))
    # Serial order: parent, then rows from the north, then west to east.
    order = np.lexsort((g_x, g_i, -g_j, g_owner))
    merged = merged[order]
    merged_deg = shapely.transform(merged, to_deg)
    # True areas: UTM areas divided by the projection's areal scale at each grid.
    centres = shapely.transform(shapely.centroid(merged), to_deg)
    scale = pyproj.Proj(utm).get_factors(shapely.get_x(centres), shapely.get_y(centres),
                                         errcheck=False).areal_scale
    true_areas = shapely.area(merged) / np.asarray(scale)
    owners_sorted = g_owner[order]
    starts = np.searchsorted(owners_sorted, np.arange(len(keep) + 1))
    for local, k in enumerate(keep):
        part = slice(starts[local], starts[local + 1])
        yield parents[k], list(merged_deg[part]), true_areas[part], None


def _round_mm(values: np.ndarray) -> np.ndarray:
    """Values on the 1 mm grid, rounded as GEOS rounds (so snapping them again is a no-op)."""
    return np.floor(values * (1 / PRECISION_M) + 0.5) / (1 / PRECISION_M)


def _snap(geoms: np.ndarray) -> np.ndarray:
    """Coordinates rounded to the 1 mm grid (cheap); the rare result made invalid is redone."""
    out = shapely.set_precision(geoms, PRECISION_M, mode="pointwise")
    bad = ~shapely.is_valid(out)
    if bad.any():
        out[bad] = shapely.set_precision(shapely.make_valid(geoms[bad]), PRECISION_M)
    return out


def _clip_cells(parents: np.ndarray, side: float):
    """All lattice cells meeting each parent, clipped to it and split into polygons."""
    b = shapely.bounds(parents)
    i0 = np.floor(b[:, 0] / side).astype(np.int64)
    i1 = np.ceil(b[:, 2] / side).astype(np.int64)
    j0 = np.floor(b[:, 1] / side).astype(np.int64)
    j1 = np.ceil(b[:, 3] / side).astype(np.int64)
    nx, ny = np.maximum(i1 - i0, 1), np.maximum(j1 - j0, 1)
    counts = nx * ny
    owner = np.repeat(np.arange(len(parents)), counts)
    local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    ci = i0[owner] + local % nx[owner]
    cj = j0[owner] + local // nx[owner]
    # Lattice lines on the 1 mm grid (rounded the way every piece is), so neighbouring cells
    # and the pieces clipped from them share these coordinates exactly.
    x0, y0, x1, y1 = (_round_mm(v * side) for v in (ci, cj, ci + 1, cj + 1))
    boxes = shapely.box(x0, y0, x1, y1)
    rects = np.column_stack([x0, y0, x1, y1])

    shapely.prepare(parents)
    owner_geoms = parents[owner]
    touching = shapely.intersects(owner_geoms, boxes)
    inside = touching & shapely.contains_properly(owner_geoms, boxes)
    edge = touching & ~inside
    # Clipping to a rectangle is far cheaper than a general overlay.
    clipped = _snap(np.array([
        shapely.clip_by_rect(g, *rect) for g, rect in zip(
            owner_geoms[edge], zip(x0[edge], y0[edge], x1[edge], y1[edge], strict=True),
            strict=True)], dtype=object))

    parts, part_of = shapely.get_parts(clipped, return_index=True)
    polygonal = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)
    parts, part_of = parts[polygonal], part_of[polygonal]
    edge_idx = np.flatnonzero(edge)[part_of]
    inside_idx = np.flatnonzero(inside)

    pieces = np.concatenate([boxes[inside_idx], parts])
    src = np.concatenate([inside_idx, edge_idx])
    # Keep pieces grouped by parent, in lattice order, so results do not depend on the split.
    order = np.lexsort((shapely.get_x(shapely.point_on_surface(pieces)), ci[src], cj[src],
                        owner[src]))
    src = src[order]
    return pieces[order], owner[src], ci[src], cj[src], rects[src]


def _cell_edges(pieces: np.ndarray, rects: np.ndarray) -> dict[tuple[int, str], list]:
    """For each piece, the stretches of its boundary lying on its cell's W/E/S/N lattice line."""
    rings, piece_of_ring = shapely.get_rings(pieces, return_index=True)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    same = ring_of[1:] == ring_of[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    piece = piece_of_ring[ring_of[:-1][same]]
    rect = rects[piece]
    edges: dict[tuple[int, str], list] = {}
    for side, axis, column in (("W", 0, 0), ("E", 0, 2), ("S", 1, 1), ("N", 1, 3)):
        on = (a[:, axis] == rect[:, column]) & (b[:, axis] == rect[:, column])
        lo = np.minimum(a[on, 1 - axis], b[on, 1 - axis])
        hi = np.maximum(a[on, 1 - axis], b[on, 1 - axis])
        for p, low, high in zip(piece[on].tolist(), lo.tolist(), hi.tolist(), strict=True):
            edges.setdefault((p, side), []).append((low, high))
    return edges


def _overlap(first: list, second: list) -> float:
    return sum(max(0.0, min(h1, h2) - max(l1, l2)) for l1, h1 in first for l2, h2 in second)


_NEIGHBOURS = ((1, 0, "E", "W"), (-1, 0, "W", "E"), (0, 1, "N", "S"), (0, -1, "S", "N"))


def _shared_edges(sliver_idx: np.ndarray, pieces: np.ndarray, owner: np.ndarray,
                  ci: np.ndarray, cj: np.ndarray, rects: np.ndarray):
    """(sliver, neighbour, shared edge length) for pieces of edge-adjacent cells of a parent.

    Pieces share edges only along lattice lines (the parent's own boundary is never shared
    between its pieces), so the shared length is the overlap of the two stretches of boundary
    on the common lattice line: exact, and far cheaper than intersecting the boundaries.
    """
    in_cell: dict[tuple[int, int, int], list[int]] = {}
    for k, key in enumerate(zip(owner.tolist(), ci.tolist(), cj.tolist(), strict=True)):
        in_cell.setdefault(key, []).append(k)
    pairs = []
    for s in sliver_idx.tolist():
        for di, dj, mine, theirs in _NEIGHBOURS:
            for t in in_cell.get((int(owner[s]), int(ci[s]) + di, int(cj[s]) + dj), ()):
                pairs.append((s, t, mine, theirs))
    involved = np.unique(np.array([p[:2] for p in pairs], dtype=np.int64).ravel()) \
        if pairs else np.zeros(0, dtype=np.int64)
    edges = _cell_edges(pieces[involved], rects[involved])
    local = {int(k): n for n, k in enumerate(involved.tolist())}
    a, b, shared = [], [], []
    for s, t, mine, theirs in pairs:
        length = _overlap(edges.get((local[s], mine), ()), edges.get((local[t], theirs), ()))
        a.append(s)
        b.append(t)
        shared.append(length)
    return (np.array(a, dtype=np.int64), np.array(b, dtype=np.int64),
            np.array(shared, dtype=np.float64))


def _merge_slivers(pieces: np.ndarray, owner: np.ndarray, ci: np.ndarray, cj: np.ndarray,
                   rects: np.ndarray, sliver_area: float) -> list[list[int]]:
    """Groups of piece indices, each group one grid; the group's first index is its root."""
    n = len(pieces)
    areas = shapely.area(pieces)
    is_sliver = areas < sliver_area
    target = np.arange(n)  # final root of every piece
    sliver_idx = np.flatnonzero(is_sliver)
    if len(sliver_idx):
        a, b, shared = _shared_edges(sliver_idx, pieces, owner, ci, cj, rects)
        edge = shared > 0
        a, b, shared = a[edge], b[edge], shared[edge]
        # Longest shared edge first; ties go to the lower piece index (lattice order).
        order = np.lexsort((b, -shared, a))
        a, b, shared = a[order], b[order], shared[order]
        resolved = ~is_sliver.copy()
        pending = set(sliver_idx.tolist())
        neighbours: dict[int, list[int]] = {}
        for s, t in zip(a.tolist(), b.tolist(), strict=True):
            neighbours.setdefault(s, []).append(t)
        while pending:
            progress = []
            for s in sorted(pending):
                for t in neighbours.get(s, ()):
                    if resolved[t]:
                        progress.append((s, target[t]))
                        break
            if not progress:
                break
            for s, root in progress:
                target[s] = root
                resolved[s] = True
                pending.discard(s)
        # Slivers touching only slivers (a parent smaller than a cell, or an islet): one grid
        # per connected set, rooted at its largest piece.
        parent_of = {s: s for s in pending}

        def find(x: int) -> int:
            while parent_of[x] != x:
                parent_of[x] = parent_of[parent_of[x]]
                x = parent_of[x]
            return x

        for s in pending:
            for t in neighbours.get(s, ()):
                if t in parent_of:
                    ra, rb = find(s), find(t)
                    if ra != rb:
                        parent_of[max(ra, rb)] = min(ra, rb)
        clusters: dict[int, list[int]] = {}
        for s in pending:
            clusters.setdefault(find(s), []).append(s)
        for members in clusters.values():
            root = max(members, key=lambda m: (areas[m], -m))
            for m in members:
                target[m] = root
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(int(target[i]), []).append(i)
    return [[root] + [m for m in members if m != root] for root, members in groups.items()]


def _write(cut: list[tuple[_Parent, list, np.ndarray]]) -> int:
    """Upsert the grids of every cut parent and drop its surplus generated grids."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for parent, geoms, areas in cut:
        prefix = parent.code.ljust(CODE_LENGTH["community"], "0")
        wkbs = shapely.to_wkb(np.array(geoms, dtype=object), hex=True)
        for serial, (wkb, area) in enumerate(zip(wkbs, areas.tolist(), strict=True), start=1):
            writer.writerow([parent.city_id, parent.id, f"{prefix}{serial:03d}",
                             f"{parent.name}{serial:03d}网格", wkb, area, parent.fingerprint])
    buffer.seek(0)
    connection = db.session.connection()
    cursor = connection.connection.cursor()
    cursor.execute("CREATE TEMP TABLE _new_grids (city_id int, parent_id int, code text, "
                   "name text, wkb text, area_m2 float8, fingerprint text) ON COMMIT DROP")
    cursor.copy_expert("COPY _new_grids FROM STDIN WITH (FORMAT csv)", buffer)
    cursor.execute("""
        INSERT INTO regions (city_id, level, code, name, parent_id, geom, area_m2,
                             properties, generated)
        SELECT city_id, 'grid', code, name, parent_id, g, area_m2,
               jsonb_build_object('generation', fingerprint), true
        FROM (SELECT *, ST_Multi(ST_GeomFromWKB(decode(wkb, 'hex'), 4326)) AS g
              FROM _new_grids) n
        ON CONFLICT (city_id, code) DO UPDATE
        SET geom = EXCLUDED.geom, area_m2 = EXCLUDED.area_m2, name = EXCLUDED.name,
            parent_id = EXCLUDED.parent_id, generated = true, updated_at = now(),
            properties = regions.properties || EXCLUDED.properties
    """)
    cursor.execute("""
        DELETE FROM regions r
        WHERE r.level = 'grid' AND r.generated
          AND r.parent_id IN (SELECT DISTINCT parent_id FROM _new_grids)
          AND NOT EXISTS (SELECT 1 FROM _new_grids n
                          WHERE n.city_id = r.city_id AND n.code = r.code)
    """)
    deleted = cursor.rowcount
    cursor.execute("DROP TABLE _new_grids")
    cursor.close()
    return deleted
