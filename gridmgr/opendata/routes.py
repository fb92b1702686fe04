"""Thin handlers: read the filters, stream the export."""

from __future__ import annotations

from flask import Response, request, stream_with_context

from gridmgr.opendata import bp
from gridmgr.opendata.exports import (
    case_filter,
    case_geojson_chunks,
    case_rows,
    csv_chunks,
    refuse_nul,
    region_geojson_chunks,
)

GEOJSON = "application/geo+json; charset=utf-8"
CSV = "text/csv; charset=utf-8"


@bp.before_request
def _readable_query() -> None:
    refuse_nul(request)


@bp.get("/cases.geojson")
def cases_geojson():
    """Cases as points; filters: start_date, end_date, category, region, state, limit."""
    rows = case_rows(case_filter(request.args))
    return Response(stream_with_context(case_geojson_chunks(rows)), content_type=GEOJSON)


@bp.get("/cases.csv")
def cases_csv():
    """Cases as CSV rows, with the same filters as the GeoJSON."""
    rows = case_rows(case_filter(request.args))
    return Response(stream_with_context(csv_chunks(rows)), content_type=CSV,
                    headers={"Content-Disposition": "attachment; filename=cases.csv"})


@bp.get("/regions.geojson")
def regions_geojson():
    """Boundaries of one level (``level``: district, street, community, grid)."""
    chunks = region_geojson_chunks(request.args.get("level", "district"),
                                   request.args.get("city") or None,
                                   request.args.get("region") or None)
    return Response(stream_with_context(chunks), content_type=GEOJSON)
