"""The demo city: 渝中区 (Chongqing) on its real boundary, with streets, communities and grids.

The district boundary is real (``gridmgr/data/demo``); its eleven streets carry the real
street names of 渝中区 and are Voronoi cells around the streets' approximate centres;
communities are Voronoi cells of evenly spread seeds inside each street; unit grids are
generated inside the communities; the default catalogue, staff, patrol
inspectors and four weeks of cases come with it (``gridmgr.demo.activity``). Everything goes
through the administrator's own paths (``import_regions``, ``generate_grids``, the history
import, the intake), and loading twice changes nothing.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import mapping
from sqlalchemy import select, text

from gridmgr.categories.models import Category
from gridmgr.categories.operations import load_default_catalogue
from gridmgr.demo.activity import load_activity
from gridmgr.demo.layout import seeds_inside, voronoi_split
from gridmgr.dispatch.duty import set_duty
from gridmgr.dispatch.rosters import add_roster_entry, list_roster
from gridmgr.extensions import db
from gridmgr.grids.generation import generate_grids
from gridmgr.grids.importing import import_regions
from gridmgr.grids.models import City, Region
from gridmgr.people import operations
from gridmgr.people.models import User

DATA = Path(__file__).resolve().parent.parent / "data" / "demo"
CITY_SLUG = "chongqing"
CITY_NAME = "重庆市"
DISTRICT_CODE = "500103"
DEMO_PASSWORD = "gridmgr-demo"
COMMUNITY_AREA_M2 = 300_000  # about 渝中区's 23 km² over its ~77 communities

# 渝中区's streets (街道) and roughly where each lies (lon, lat).
STREETS = [
    ("朝天门街道", 106.5815, 29.5640),
    ("解放碑街道", 106.5760, 29.5570),
    ("南纪门街道", 106.5660, 29.5490),
    ("七星岗街道", 106.5610, 29.5560),
    ("大溪沟街道", 106.5560, 29.5660),
    ("上清寺街道", 106.5470, 29.5620),
    ("两路口街道", 106.5450, 29.5540),
    ("菜园坝街道", 106.5520, 29.5460),
    ("石油路街道", 106.5280, 29.5400),
    ("大坪街道", 106.5190, 29.5460),
    ("化龙桥街道", 106.5180, 29.5600),
]

# Community names in the style of the district's own (社区).
COMMUNITY_NAMES = (
    "较场口", "民族路", "新华路", "人民公园", "五一路", "金汤街", "白象街", "十八梯",
    "中兴路", "石板坡", "燕喜洞", "领事巷", "枇杷山", "和平路", "长江一路", "鹅岭",
    "佛图关", "李子坝", "虎头岩", "嘉陵桥", "红岩村", "健康路", "马家堡", "袁家岗",
    "黄花园", "双钢路", "人和街", "桂花园", "学田湾", "大井巷", "巴蜀", "曾家岩",
    "中山四路", "罗家院", "肖家湾", "燕子岩", "储奇门", "凯旋路", "望龙门", "东水门",
    "朝东路", "千厮门", "洪崖洞", "小什字", "新街口", "沧白路", "打铜街", "陕西路",
    "三元庙", "重庆村", "通远门", "金汤门", "纯阳洞", "放牛巷", "归元寺", "兴隆街",
    "青年路", "文化街", "大同路", "八一路", "邹容路", "解放东路", "中华路", "上曾家岩",
    "下罗家湾", "菜园路", "滨江路", "黄沙溪", "浮图关", "遗爱祠", "大黄路", "谢家湾",
    "团结路", "石油新村", "天灯堡", "瑞天路", "嘉西村", "平安街", "化龙湾", "经纬大道",
    "长江二路", "体育路", "渝州路", "电力村", "上大田湾", "下大田湾", "月台坝", "三层岩",
)

DEMO_USERS = [
    # username, role, scope (region code suffix under the district; "" = the whole city)
    ("demo-admin", "admin", None),
    ("demo-operator", "operator", None),
    ("demo-dispatcher", "dispatcher", None),
    ("demo-chief", "duty_chief", None),
    ("demo-inspector", "inspector", "002"),  # 解放碑街道
]
JIEFANGBEI = (106.5770, 29.5570)  # demo-inspector is rostered on the unit grid here

# The subclasses a city's patrols report most, dispatched by the rules as soon as they are filed.
LIVE_CATEGORIES = ("E0101", "E0103", "E0201", "E0501", "E0502", "E0504",
                   "C0101", "C0111", "C0205", "C0302")
# Their handling limit in the demo: minutes, so that a dispatched case turns yellow (80 %) and
# red on the wall while one watches. They keep no acknowledgement limit of their own, so a
# dispatch is escalated after GRIDMGR_ACCEPT_LIMIT (``gridmgr demo serve``: 3 minutes).
LIVE_HANDLE_LIMIT = {"amount": 0.1, "unit": "urgent_hours"}  # 6 minutes
# A staff account of each department those categories go to.
DEPARTMENT_USERS = {"环卫中心": "demo-sanitation", "城管执法局": "demo-enforcement",
                    "公安交管局": "demo-traffic-police", "市政管理委员会": "demo-municipal",
                    "供水集团": "demo-water"}


@dataclass
class DemoResult:
    city: str
    counts: dict[str, int] = field(default_factory=dict)
    users: list[str] = field(default_factory=list)
    activity: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def load_demo(progress: bool = False) -> DemoResult:
    """Load (or refresh, unchanged) the demo city; returns the region counts per level."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gridmgr-demo-") as tmp:
        tmp_path = Path(tmp)
        import_regions(DATA / "yuzhong_500103.geojson", "district", city=CITY_SLUG,
                       code_field="code", name_field="name", repair=True, progress=progress)
        _name_city()
        district = _geometry(DISTRICT_CODE)

        cells = voronoi_split(district, np.array([(lon, lat) for _, lon, lat in STREETS]))
        kept = [(cell, name, f"{n:03d}") for n, (cell, (name, _, _))
                in enumerate(zip(cells, STREETS, strict=True), start=1) if cell is not None]
        _write_layer(tmp_path / "streets.geojson", *map(list, zip(*kept, strict=True)))
        import_regions(tmp_path / "streets.geojson", "street", city=CITY_SLUG,
                       code_field="code", name_field="name", repair=True, progress=progress)

        geoms, community_names, codes, parents = [], [], [], []
        pool = iter(COMMUNITY_NAMES)
        for street_code, street_name in _children(DISTRICT_CODE):
            street = _geometry(street_code)
            area = db.session.scalar(select(Region.area_m2).where(Region.code == street_code))
            count = max(2, round(area / COMMUNITY_AREA_M2))
            rng = np.random.default_rng(int(street_code))
            cells = voronoi_split(street, seeds_inside(street, count, rng))
            for n, cell in enumerate([c for c in cells if c is not None], start=1):
                geoms.append(cell)
                community_names.append(f"{next(pool, street_name[:-2] + str(n))}社区")
                codes.append(f"{n:03d}")
                parents.append(street_code)
        _write_layer(tmp_path / "communities.geojson", geoms, community_names, codes, parents)
        import_regions(tmp_path / "communities.geojson", "community", city=CITY_SLUG,
                       name_field="name", parent_field="parent", code_field="code",
                       repair=True, progress=progress)

    generate_grids(within="community", city=CITY_SLUG)
    load_default_catalogue()
    db.session.commit()
    result = DemoResult(city=CITY_SLUG, users=_demo_users())
    result.activity = load_activity(CITY_SLUG, DISTRICT_CODE, DEMO_PASSWORD)
    result.users += _live_dispatch()
    result.counts = dict(db.session.execute(text(
        "SELECT r.level, count(*) FROM regions r JOIN cities c ON c.id = r.city_id "
        "WHERE c.slug = :slug GROUP BY r.level"), {"slug": CITY_SLUG}).all())
    result.seconds = time.perf_counter() - started
    return result


def _name_city() -> None:
    city = db.session.scalar(select(City).where(City.slug == CITY_SLUG))
    if city.name != CITY_NAME:
        city.name = CITY_NAME
        db.session.commit()


def _geometry(code: str):
    wkb = db.session.scalar(text(
        "SELECT ST_AsBinary(r.geom) FROM regions r JOIN cities c ON c.id = r.city_id "
        "WHERE c.slug = :slug AND r.code = :code"), {"slug": CITY_SLUG, "code": code})
    return shapely.from_wkb(bytes(wkb))


def _children(code: str) -> list[tuple[str, str]]:
    return db.session.execute(text(
        "SELECT r.code, r.name FROM regions r JOIN regions p ON p.id = r.parent_id "
        "JOIN cities c ON c.id = r.city_id WHERE c.slug = :slug AND p.code = :code "
        "ORDER BY r.code"), {"slug": CITY_SLUG, "code": code}).all()


def _write_layer(path: Path, geoms: list, names: list[str], codes: list[str],
                 parents: list[str] | None = None) -> None:
    """A GeoJSON file as an administrator would import it: name, own code digits, parent."""
    features = []
    for i, (geom, name, code) in enumerate(zip(geoms, names, codes, strict=True)):
        properties = {"name": name, "code": code}
        if parents:
            properties["parent"] = parents[i]
        features.append({"type": "Feature", "properties": properties,
                         "geometry": mapping(geom)})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features},
                               ensure_ascii=False))


def _demo_users() -> list[str]:
    """A few staff accounts to try the system with (password ``gridmgr-demo``), made once."""
    made = []
    for username, role, scope in DEMO_USERS:
        if db.session.scalar(select(User.id).where(User.username == username)) is None:
            operations.create_user(
                operations.console_admin(), username, DEMO_PASSWORD, role,
                region_code=f"{DISTRICT_CODE}{scope}" if scope else None, city=CITY_SLUG,
                display_name=username)
            made.append(username)
    db.session.commit()
    return made


def _live_dispatch() -> list[str]:
    """Switch automatic dispatch on for :data:`LIVE_CATEGORIES` with their short handling
    limit, give each of their departments a staff account, and roster demo-inspector on the
    unit grid at 解放碑, on duty (``gridmgr demo serve`` moves it along that grid). After the
    four weeks of history, whose deadlines keep the catalogue's limits. Returns the accounts
    made."""
    made = []
    for category in db.session.scalars(select(Category).where(
            Category.code.in_(LIVE_CATEGORIES))):
        category.auto_dispatch = True
        limits = {stage: limit for stage, limit in (category.limits or {}).items()
                  if stage != "accept"}
        category.limits = {**limits, "handle": LIVE_HANDLE_LIMIT}
        department = category.department
        if department is None:
            continue
        username = DEPARTMENT_USERS.get(department.name, f"demo-department-{department.id}")
        if db.session.scalar(select(User.id).where(User.username == username)) is None:
            operations.create_user(operations.console_admin(), username, DEMO_PASSWORD,
                                   "department", city=CITY_SLUG, department=department.id,
                                   display_name=f"{department.name}值班员")
            made.append(username)
    db.session.commit()

    inspector = db.session.scalar(select(User).where(User.username == "demo-inspector"))
    if not list_roster(username=inspector.username):
        street = f"{DISTRICT_CODE}002"
        grid = db.session.scalar(text(
            "SELECT code FROM regions WHERE level = 'grid' AND starts_with(code, :street) "
            "ORDER BY ST_Distance(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)), code LIMIT 1"),
            {"street": street, "lon": JIEFANGBEI[0], "lat": JIEFANGBEI[1]})
        add_roster_entry(inspector.username, grid)
    set_duty(inspector, True)
    return made
