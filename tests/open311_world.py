"""A small city for the Open311 and open-data tests: one district down to two unit grids,
two services (one with extra questions), an operator, and an API key."""

from __future__ import annotations

from dataclasses import dataclass

from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, box

from gridmgr.categories.models import Category, CategoryClass
from gridmgr.extensions import db
from gridmgr.grids.models import City, Region
from gridmgr.open311.keys import create_api_key
from gridmgr.people.models import Department, User

# Two unit grids side by side in Dongcheng, Beijing (WGS 84).
WEST = (116.400, 39.900, 116.401, 39.901)
EAST = (116.401, 39.900, 116.402, 39.901)
IN_WEST = (116.4005, 39.9005)
IN_EAST = (116.4015, 39.9005)

TREE_QUESTIONS = [
    {"variable": True, "code": "SIZE", "datatype": "singlevaluelist", "required": True,
     "datatype_description": None, "order": 1,
     "description": {"en": "How big is the fallen tree?", "zh": "倒伏树木有多大？"},
     "values": [{"key": "small", "name": {"en": "Small", "zh": "小"}},
                {"key": "large", "name": {"en": "Large", "zh": "大"}}]},
    {"variable": True, "code": "BLOCKING", "datatype": "multivaluelist", "required": False,
     "datatype_description": None, "order": 2, "description": "What does it block?",
     "values": [{"key": "road", "name": "Road"}, {"key": "sidewalk", "name": "Sidewalk"}]},
    {"variable": True, "code": "GIRTH", "datatype": "number", "required": False,
     "datatype_description": "centimetres", "order": 3, "description": "Trunk girth"},
]


@dataclass
class World:
    city_id: int
    api_key: str
    operator_id: int
    inspector_id: int


def _region(city: City, level: str, code: str, name: str, bounds, parent=None) -> Region:
    region = Region(city_id=city.id, level=level, code=code, name=name,
                    parent_id=parent.id if parent else None,
                    geom=from_shape(MultiPolygon([box(*bounds)]), srid=4326), area_m2=9000.0)
    db.session.add(region)
    db.session.flush()
    return region


def build_city(slug: str = "dongcheng", district: str = "110101", name: str = "东城区",
               offset: float = 0.0) -> City:
    """A city with one district, street and community, and two unit grids (west, east)."""
    city = City(slug=slug, name=name, timezone="Asia/Shanghai")
    db.session.add(city)
    db.session.flush()
    shift = (offset, 0, offset, 0)
    outer = tuple(a + b for a, b in zip((WEST[0], WEST[1], EAST[2], EAST[3]), shift,
                                        strict=True))
    d = _region(city, "district", district, name, outer)
    s = _region(city, "street", district + "001", "东华门街道", outer, d)
    c = _region(city, "community", district + "001001", "多福巷社区", outer, s)
    _region(city, "grid", district + "001001001",
            "多福巷社区1号网格", tuple(a + b for a, b in zip(WEST, shift, strict=True)), c)
    _region(city, "grid", district + "001001002",
            "多福巷社区2号网格", tuple(a + b for a, b in zip(EAST, shift, strict=True)), c)
    return city


def build_world() -> World:
    """The city, its services, an operator and an Open311 key; committed."""
    city = build_city()
    department = Department(name="园林绿化局", name_en="Landscaping and Greening Bureau")
    db.session.add(department)
    greening = CategoryClass(code="E99", kind="event", name_zh="园林绿化", name_en="Greening")
    streets = CategoryClass(code="C98", kind="component", name_zh="道路交通",
                            name_en="Roads and traffic")
    db.session.add_all([greening, streets])
    db.session.flush()
    db.session.add_all([
        Category(code="E9901", class_id=greening.id, name_zh="树木倒伏", name_en="Fallen tree",
                 description="A tree or large branch has fallen.",
                 keywords=["tree", "branch", "树"], attributes=TREE_QUESTIONS,
                 department_id=department.id, limits={}),
        Category(code="C9801", class_id=streets.id, name_zh="路灯", name_en="Street lamp",
                 description="A street lamp is broken or dark.", keywords=["lamp"],
                 attributes=[], limits={}),
    ])
    operator = User(username="operator1", password_hash="x", role="operator", city_id=city.id)
    inspector = User(username="inspector1", password_hash="x", role="inspector",
                     city_id=city.id)
    db.session.add_all([operator, inspector])
    db.session.commit()
    return World(city.id, create_api_key("test-client"), operator.id, inspector.id)


def verify_and_file(world: World, case_id: int, note: str | None = None) -> None:
    """The normal loop's first steps: an inspector verifies on site, an operator files."""
    from gridmgr.cases.workflow import StepInput, take_step

    take_step(case_id, "verify", db.session.get(User, world.inspector_id),
              StepInput(lon=IN_WEST[0], lat=IN_WEST[1]))
    take_step(case_id, "file", db.session.get(User, world.operator_id), StepInput(note=note))
