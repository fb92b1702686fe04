"""A small city for the case tests: one district, one street, one community and four unit
grids (plain boxes in Beijing), the default category catalogue, and photos made with Pillow.

Use it from a test module with ``from cityfixtures import city_fixture  # noqa: F401``,
then ask for the ``city`` fixture.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from PIL import Image
from shapely.geometry import MultiPolygon, box

from gridmgr.categories.operations import load_default_catalogue
from gridmgr.extensions import db
from gridmgr.grids.models import City, Region

CITY_SLUG = "test-city"  # the one tests/conftest.py's make_user puts its regions in
DISTRICT, STREET, COMMUNITY = "110105", "110105001", "110105001001"
WEST, SOUTH, SIZE = 116.40, 39.90, 0.002  # grids are 2 x 2 boxes of 0.002°
OUTSIDE = (121.47, 31.23)  # Shanghai: in no region of the test city


@dataclass
class TestCity:
    city_id: int
    grids: list[str]

    def centre(self, index: int = 0) -> tuple[float, float]:
        """lon, lat of the centre of grid ``index`` (0 south-west, 1 south-east, 2, 3 north)."""
        col, row = index % 2, index // 2
        return WEST + (col + 0.5) * SIZE, SOUTH + (row + 0.5) * SIZE

    def near(self, index: int = 0, metres_east: float = 0.0) -> tuple[float, float]:
        """A point ``metres_east`` of a grid's centre."""
        lon, lat = self.centre(index)
        return lon + metres_east / 85_300, lat


def _region(city: City, level: str, code: str, parent: Region | None, shape) -> Region:
    region = Region(city_id=city.id, level=level, code=code, name=f"{level} {code}",
                    parent_id=parent.id if parent else None,
                    geom=f"SRID=4326;{MultiPolygon([shape]).wkt}", area_m2=shape.area * 9.5e9)
    db.session.add(region)
    db.session.flush()
    return region


def build_city() -> TestCity:
    """Insert the city, its regions and the default catalogue; commit."""
    city = City(slug=CITY_SLUG, name="测试市", timezone="Asia/Shanghai")
    db.session.add(city)
    db.session.flush()
    whole = box(WEST, SOUTH, WEST + 2 * SIZE, SOUTH + 2 * SIZE)
    district = _region(city, "district", DISTRICT, None, whole)
    street = _region(city, "street", STREET, district, whole)
    community = _region(city, "community", COMMUNITY, street, whole)
    grids = []
    for index in range(4):
        col, row = index % 2, index // 2
        shape = box(WEST + col * SIZE, SOUTH + row * SIZE,
                    WEST + (col + 1) * SIZE, SOUTH + (row + 1) * SIZE)
        code = f"{COMMUNITY}{index + 1:03d}"
        _region(city, "grid", code, community, shape)
        grids.append(code)
    load_default_catalogue()
    db.session.commit()
    return TestCity(city.id, grids)


@pytest.fixture(name="city")
def city_fixture(app_ctx) -> TestCity:
    return build_city()


def jpeg_bytes(width: int = 64, height: int = 48, gps: tuple[float, float] | None = None,
               color: str = "orange") -> bytes:
    """A small JPEG, with EXIF GPS (lon, lat) when given."""
    image = Image.new("RGB", (width, height), color)
    out = io.BytesIO()
    if gps is None:
        image.save(out, "JPEG")
        return out.getvalue()
    exif = Image.Exif()
    lon, lat = gps
    exif.get_ifd(0x8825).update({
        1: "N" if lat >= 0 else "S", 2: _dms(abs(lat)),
        3: "E" if lon >= 0 else "W", 4: _dms(abs(lon))})
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def png_bytes(width: int = 32, height: int = 32) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (0, 128, 255, 200)).save(out, "PNG")
    return out.getvalue()


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60, 4)
    return (float(degrees), float(minutes), seconds)


def multipart(fields: dict) -> dict:
    """Keyword arguments for ``client.post`` with a multipart body encoded in memory (the test
    client would spool a large one to a temporary file it never closes)."""
    from werkzeug.datastructures import FileStorage, MultiDict
    from werkzeug.test import encode_multipart

    values = MultiDict()
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, tuple):
                item = FileStorage(item[0], filename=item[1], name=name,
                                   content_type="image/jpeg")
            values.add(name, item)
    boundary, body = encode_multipart(values)
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}
