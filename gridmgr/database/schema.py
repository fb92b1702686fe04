"""What Alembic compares: gridmgr's tables, not PostGIS's own."""

from geoalchemy2 import alembic_helpers

POSTGIS_TABLES = {"spatial_ref_sys", "alembic_version"}


def include_object(obj, name, obj_type, reflected, compare_to) -> bool:
    """Leave PostGIS's tables alone; otherwise GeoAlchemy2's rules for spatial indexes."""
    if obj_type == "table" and name in POSTGIS_TABLES:
        return False
    return alembic_helpers.include_object(obj, name, obj_type, reflected, compare_to)
