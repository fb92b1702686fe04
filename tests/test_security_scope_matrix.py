"""Who may reach what, over the whole API: a user of every role, scoped to one street, tries
every operation the app serves on the other street's objects and gets a refusal or an answer
without them; an anonymous caller gets nothing private from the public operations.

The operations come from the OpenAPI document (``/api/v1/openapi.json``) and, for the map wall,
Open311 and open data, which the document does not describe, from the app's URL map. A new
operation is covered without anyone listing it; one the matrix cannot place (a path parameter
it does not know, a body it cannot write) fails the test by name. Street A is 110101001,
street B 110101002, in one city (tests/dispatch_world.py).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from dispatch_world import (
    CATEGORY,
    GRID_A,
    OTHER_COMMUNITY,
    OTHER_GRID,
    OTHER_STREET,
    POINT_A,
    STREET,
    build_city,
    go_on_duty,
)
from maps_city import tile_of
from PIL import Image
from sqlalchemy import text

from gridmgr.cases.intake import ReportInput, submit_report
from gridmgr.cases.photos import store_photo
from gridmgr.cases.workflow import StepInput, take_step
from gridmgr.categories.operations import set_region_department
from gridmgr.dispatch.rosters import add_roster_entry
from gridmgr.extensions import db
from gridmgr.notify.operations import subscribe_push
from gridmgr.people.models import ROLES, Department
from gridmgr.webhooks.operations import add_endpoint

METHODS = ("get", "post", "put", "patch", "delete")
# Street B's case sits here, to 7 decimals; public answers publish 6 (docs/open311.md).
POINT_B = (116.3105371, 39.9005123)
# Where queries look for street B's objects: the centre of its unit grid.
NEAR_B = (116.3105, 39.9005)
BBOX_B = "116.309,39.899,116.312,39.902"
TILE_ZOOM = 16
EXIF_MARKER = "EXIF-street-B-camera"
PASSWORD = "pw-secret-123"
# Street B's webhook endpoint (its secret is written, never read back), its lamp's owner (staff
# in scope only) and its inspector's browser (the push service's address names the browser).
WEBHOOK_SECRET = "whsec-street-B-0123456789"
COMPONENT_CODE = "1101010020000001"
COMPONENT_OWNER = "乙权属单位"
PUSH_ENDPOINT_B = "https://push.example.org/send/street-b-browser"

# Path parameters, by "<the segment before it>/<name>", and the object of street B they name.
PATH_OBJECTS = {
    "cases/case_id": "case_id",
    "users/user_id": "user_id",
    "departments/department_id": "department_id",
    "rosters/entry_id": "roster_entry_id",
    "categories/code": "category",
    "categories/service_code": "category",
    "services/service_code": "category",
    "regions/code": "street",
    "regions/region_code": "street",
    "photos/sha256": "photo",
    "media/sha256": "photo",
    "track/token": "tracking_token",
    "tokens/token": "tracking_token",
    "requests/service_request_id": "case_code",
    "grids/z": "tile_z",
    "grids/x": "tile_x",
    "grids/y": "tile_y",
    "components/z": "tile_z",
    "components/x": "tile_x",
    "components/y": "tile_y",
    "tiles/z": "tile_z",
    "tiles/x": "tile_x",
    "tiles/y": "tile_y",
    "regions/z": "tile_z",
    "regions/x": "tile_x",
    "regions/y": "tile_y",
    "components/code": "component",
    "webhooks/endpoint_id": "webhook_endpoint_id",
}
# Parameters that name a format or a catch-all, not an object.
PATH_LITERALS = {"fmt": "json", "anything": "no-such-resource", "change": "pause",
                 "action": "dispatch"}
# Query parameters aimed at street B; other optional ones are left out.
QUERY_OBJECTS = {
    "region": "street", "parent": "street", "grid": "grid", "username": "worker_username",
    "bbox": "bbox", "lon": "lon", "lat": "lat", "category": "category", "level": "level",
    "size": "original", "period": "period", "text": "description", "case": "case_id",
    "to": "contact_email", "sig": "forged_signature", "q": "street",
}
# Query parameters of the pages the OpenAPI document does not describe.
PAGE_QUERIES = {
    "GET /workbench/cases": ("region", "category"),
    "GET /workbench/regions": ("q",),
    "GET /workbench/report.pdf": ("period",),
    "GET /workbench/admin/rosters": ("region", "username"),
}
# Bodies of the writes, each aimed at street B's objects.
BODIES = {
    "POST /api/v1/admin/users": lambda w: {
        "username": "intruder", "password": PASSWORD, "role": "inspector",
        "region_code": OTHER_STREET},
    "PATCH /api/v1/admin/users/{user_id}": lambda w: {"display_name": "改名"},
    "POST /api/v1/admin/departments": lambda w: {"name": "新部门"},
    "PATCH /api/v1/admin/departments/{department_id}": lambda w: {"name_en": "Renamed"},
    "POST /api/v1/admin/categories": lambda w: {
        "code": "E0199", "class": "E01", "name_zh": "新类", "name_en": "New"},
    "PATCH /api/v1/admin/categories/{code}": lambda w: {"description": "changed"},
    "PUT /api/v1/admin/categories/{code}/regions/{region_code}": lambda w: {
        "department_id": w["department_a"]},
    "POST /api/v1/rosters": lambda w: {"username": w["worker_username"],
                                       "grid_code": OTHER_GRID},
    "POST /api/v1/duty": lambda w: {"on_duty": False, "worker_id": w["user_id"]},
    "POST /api/v1/positions": lambda w: {"lon": POINT_B[0], "lat": POINT_B[1]},
    "PATCH /api/v1/me": lambda w: {"display_name": "我自己"},
    "POST /api/v1/admin/webhooks": lambda w: {
        "url": "https://hooks.example.org/intruder", "secret": "intruder-secret-0123",
        "events": ["*"], "region_code": OTHER_STREET},
    "POST /api/v1/admin/webhooks/{endpoint_id}/replay": lambda w: {"from": 1},
    "PATCH /api/v1/admin/components/{code}": lambda w: {"owner": "改了"},
    "POST /api/v1/cases/{case_id}/component-state": lambda w: {"state": "intact"},
    "POST /api/v1/notify/push/subscriptions": lambda w: {
        "endpoint": "https://push.example.org/send/street-a-browser",
        "keys": {"p256dh": "BAstreetA", "auth": "streetA"}},
    "DELETE /api/v1/notify/push/subscriptions": lambda w: {"endpoint": PUSH_ENDPOINT_B},
}
# The workbench's forms (a signed session's pages, posted with the site's form token).
FORMS = {
    "POST /workbench/cases/{case_id}/{action}": lambda w: {
        "department": str(w["department_a"])},
    "POST /workbench/admin/users": lambda w: {
        "username": "intruder", "password": PASSWORD, "role": "inspector",
        "region_code": OTHER_STREET},
    "POST /workbench/admin/users/{user_id}": lambda w: {"change": "disable"},
    "POST /workbench/admin/departments": lambda w: {"name": "新部门"},
    "POST /workbench/admin/categories/{code}": lambda w: {
        "auto_dispatch": "on", "department_id": str(w["department_a"])},
    "POST /workbench/admin/categories/{code}/regions": lambda w: {
        "region_code": OTHER_STREET, "department_id": str(w["department_a"])},
    "POST /workbench/admin/open311-keys": lambda w: {"name": "intruder-key"},
    "POST /workbench/admin/rosters": lambda w: {"username": w["worker_username"],
                                                "grid_code": OTHER_GRID},
    "POST /workbench/admin/rosters/{entry_id}": lambda w: {"remove": "1"},
    "POST /workbench/admin/calendar": lambda w: {"day": "2026-12-31", "kind": "holiday"},
    "POST /workbench/admin/calendar/remove": lambda w: {"day": "2026-12-31"},
    "POST /workbench/admin/calendar/hours": lambda w: {"periods": "08:00-12:00",
                                                       "weekdays": "1"},
    "POST /workbench/admin/calendar/country": lambda w: {"country": "US"},
    "POST /workbench/hotline": lambda w: {
        "lon": str(POINT_B[0]), "lat": str(POINT_B[1]), "category": CATEGORY,
        "description": "热线: 乙街道垃圾"},
}
# Writes whose target is the caller: any answer but a 5xx, as long as street B's data stays out.
SELF_TARGETED = {"PATCH /api/v1/me", "POST /api/v1/positions",
                 "POST /api/v1/notify/push/subscriptions",
                 "DELETE /api/v1/notify/push/subscriptions"}
# Operations with no scope by design, each with the policy's reason.
SCOPE_FREE = {
    "POST /api/v1/reports": "anyone may report a problem anywhere (policy SCOPE_FREE)",
    "POST /workbench/hotline": "a phoned-in report is a report: anyone may report a problem "
                               "anywhere (policy SCOPE_FREE)",
}
# Reads of what is public anyway, each with the reason: only private fields count there.
PUBLIC_READS = {
    "GET /workbench/regions": "region names and codes are open data (regions.geojson); the "
                              "hotline finds any address of the city, as anyone may report "
                              "anywhere",
}
# Pages of the app that hold no data of a scope (sign-in forms, static files, the API's docs).
NOT_SCOPED = ("/static/", "/maps/static/", "/wall/login", "/wall/logout", "/api/v1/docs",
              "/api/v1/openapi.json", "/workbench/static/", "/workbench/login",
              "/workbench/logout", "/m/static/")
# Pages behind the staff sign-in (the wall's and the workbench's session, or a bearer token).
SIGNED_PAGES = ("/maps/", "/wall", "/workbench/")

# Holes the matrix shows that are being closed elsewhere: (role or "anonymous", operation).
# Each one also runs as its own strict xfail below, so a closed hole fails until removed here.
KNOWN_HOLES: dict[tuple[str, str], str] = {}


@dataclass
class Operation:
    method: str
    path: str  # with {name} placeholders
    access: str  # "public", "optional" (a token adds rights) or "signed"
    query: list[tuple[str, bool]] = field(default_factory=list)  # (name, required)
    body_required: bool = False

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


def document_operations(client) -> list[Operation]:
    """Every operation the OpenAPI document lists, with its access and query parameters."""
    spec = client.get("/api/v1/openapi.json").get_json()
    ops = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            security = op.get("security") or []
            access = ("public" if not security else "optional" if {} in security
                      else "signed")
            params = [_resolve(spec, p) for p in item.get("parameters", [])
                      + op.get("parameters", [])]
            body = _resolve(spec, op.get("requestBody", {}))
            ops.append(Operation(method.upper(), path, access,
                                 [(p["name"], bool(p.get("required"))) for p in params
                                  if p.get("in") == "query"],
                                 bool(body.get("required"))))
    return ops


def wall_and_public_operations(app, documented: list[Operation]) -> list[Operation]:
    """The rest of the URL map: the wall's feeds and tiles (signed) and the public Open311 and
    open-data endpoints, which the OpenAPI document does not describe."""
    known = {op.key for op in documented}
    ops = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        if path.startswith(NOT_SCOPED) or rule.rule.startswith("/api/v1/"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if f"{method} {path}" in known:
                continue
            access = "signed" if path.startswith(SIGNED_PAGES) else "public"
            query = [(name, False) for name in PAGE_QUERIES.get(f"{method} {path}", ())]
            ops.append(Operation(method, path, access, query))
    return ops


def _resolve(spec: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


# --- the world -------------------------------------------------------------------------------

def _photo_with_exif() -> bytes:
    """A JPEG whose EXIF names the camera's place: only its original may carry the marker."""
    image = Image.new("RGB", (64, 48), "orange")
    exif = Image.Exif()
    exif[0x010E] = EXIF_MARKER  # ImageDescription
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def build_world(make_user) -> dict:
    """Two streets of one city; in street B a case with a photo and a reporter's contact
    details, an anonymous report, a worker on a roster with a browser subscribed to push, a
    department and its member, the category's own department for the street, a webhook
    endpoint and a lamp the case was reported at. Street A has a case of its own. Committed."""
    city = build_city(auto_dispatch=False)
    chief = make_user("duty_chief", username="city_chief", city_id=city["city_id"])
    department_a = Department(name="甲部门", name_en="Department A")
    department_b = Department(city_id=city["city_id"], name="乙部门", name_en="Department B")
    db.session.add_all([department_a, department_b])
    db.session.commit()
    citizen_b = make_user("citizen", username="citizen_b", display_name="乙市民",
                          phone="13900000002", email="citizen.b@example.org")
    worker_b = make_user("inspector", username="worker_b", region_code=OTHER_COMMUNITY,
                         display_name="乙巡查员", phone="13900000003",
                         email="worker.b@example.org")
    make_user("department", username="staff_b", department=department_b,
              region_code=OTHER_STREET, display_name="乙部门员工")
    add_roster_entry("worker_b", OTHER_GRID)
    go_on_duty(worker_b, POINT_B)
    entry_id = db.session.scalar(text("SELECT id FROM roster_entries ORDER BY id DESC LIMIT 1"))
    set_region_department(CATEGORY, OTHER_STREET, department_b.id, city_id=city["city_id"])
    db.session.commit()

    photo = store_photo(_photo_with_exif(), "b.jpg")
    report_b = submit_report(ReportInput(
        lon=POINT_B[0], lat=POINT_B[1], category=CATEGORY,
        description="乙街道垃圾, 联系 13700000009", contact_name="乙联系人",
        contact_phone="13900000001", contact_email="contact.b@example.org",
        photos=[photo]), citizen_b)
    take_step(report_b.case_id, "verify", worker_b,
              StepInput(valid=True, lon=POINT_B[0], lat=POINT_B[1]))
    take_step(report_b.case_id, "file", chief, StepInput())
    take_step(report_b.case_id, "dispatch", chief,
              StepInput(department=str(department_b.id)))
    anonymous = submit_report(ReportInput(lon=NEAR_B[0] + 0.0002, lat=NEAR_B[1],
                                          category=CATEGORY, description="匿名"), None)

    subscribe_push(worker_b, PUSH_ENDPOINT_B, "BAstreetB", "streetB", None)
    endpoint = add_endpoint("https://hooks.example.org/street-b", WEBHOOK_SECRET, ["*"],
                            region=OTHER_STREET)
    component_id = db.session.scalar(text("""
        INSERT INTO components (city_id, code, name, category_id, owner, grid_code, geom)
        SELECT :city, :code, '乙路灯', id, :owner, :grid, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)
        FROM categories WHERE code = :category RETURNING id"""), {
        "city": city["city_id"], "code": COMPONENT_CODE, "owner": COMPONENT_OWNER,
        "grid": OTHER_GRID, "lon": NEAR_B[0], "lat": NEAR_B[1], "category": CATEGORY})
    db.session.execute(text("INSERT INTO case_components (case_id, component_id) "
                            "VALUES (:case, :component)"),
                       {"case": report_b.case_id, "component": component_id})
    db.session.commit()

    citizen_a = make_user("citizen", username="citizen_a")
    report_a = submit_report(ReportInput(lon=POINT_A[0], lat=POINT_A[1], category=CATEGORY,
                                         description="甲街道垃圾"), citizen_a)
    tile_x, tile_y = tile_of(*POINT_B, TILE_ZOOM)
    return {
        "city_id": city["city_id"], "case_id": report_b.case_id,
        "case_code": report_b.case_code, "case_a": report_a.case_id,
        "user_id": worker_b.id, "worker_username": "worker_b",
        "department_id": department_b.id, "department_a": department_a.id,
        "roster_entry_id": entry_id, "category": CATEGORY, "street": OTHER_STREET,
        "grid": OTHER_GRID, "photo": photo.sha256, "tracking_token": anonymous.tracking_token,
        "bbox": BBOX_B, "lon": NEAR_B[0], "lat": NEAR_B[1], "level": "community",
        "original": "original", "tile_z": TILE_ZOOM, "tile_x": tile_x, "tile_y": tile_y,
        "period": datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m"),
        "citizen_a": citizen_a, "webhook_endpoint_id": endpoint.id,
        "component": COMPONENT_CODE, "description": "路边垃圾没人清理",
        "contact_email": "contact.b@example.org", "forged_signature": "0" * 64,
    }


def user_scoped_to_a(role: str, make_user, world: dict):
    """A user of ``role`` on street A's side: staff scoped to street A; a citizen who reported
    street A's case; department staff of department A."""
    if role == "citizen":
        return world["citizen_a"]
    department = db.session.get(Department, world["department_a"]) if role == "department" \
        else None
    return make_user(role, username=f"{role}_a", region_code=STREET, department=department)


# --- what street B's objects look like in an answer --------------------------------------------

# Never to anyone outside street B's scope, never in public: contact details, password hashes,
# photo metadata.
PRIVATE_MARKERS = ("13900000001", "13900000002", "13900000003", "contact.b@example.org",
                   "citizen.b@example.org", "worker.b@example.org", "乙联系人", "$argon2",
                   EXIF_MARKER, WEBHOOK_SECRET, PUSH_ENDPOINT_B)
# Street B's data a user scoped to street A must not see.
SCOPED_MARKERS = PRIVATE_MARKERS + ("乙街道垃圾", "worker_b", "citizen_b", "staff_b",
                                    "乙巡查员", "乙市民", "乙部门员工", OTHER_COMMUNITY,
                                    COMPONENT_OWNER, "hooks.example.org/street-b")
# What an anonymous caller must never get: the above but street B's region codes and the
# case's text (public, redacted), plus the exact place and a phone number in the text.
PUBLIC_MARKERS = PRIVATE_MARKERS + ("worker_b", "citizen_b", "staff_b", "13700000009",
                                    "116.3105371", "39.9005123", COMPONENT_OWNER,
                                    "hooks.example.org/street-b")


def leaked(data: bytes, markers: tuple[str, ...]) -> list[str]:
    return [m for m in markers if m.encode() in data]


# --- building and judging one request --------------------------------------------------------

class CannotPlace(Exception):
    """The matrix does not know how to aim this operation at street B."""


def request_for(op: Operation, world: dict, signed: bool) -> dict:
    """Path, query and body of ``op`` aimed at street B's objects."""
    segments = op.path.split("/")
    path = []
    for index, segment in enumerate(segments):
        names = re.findall(r"{(\w+)}", segment)
        before = next((s for s in reversed(segments[:index]) if "{" not in s), "")
        for name in names:
            if name in PATH_LITERALS:
                value = PATH_LITERALS[name]
            elif f"{before}/{name}" in PATH_OBJECTS:
                value = world[PATH_OBJECTS[f"{before}/{name}"]]
            else:
                raise CannotPlace(f"path parameter {name!r} after {before!r}")
            segment = segment.replace(f"{{{name}}}", str(value))
        path.append(segment)
    query = {}
    for name, required in op.query:
        if name in QUERY_OBJECTS and (signed or name != "size"):
            query[name] = world[QUERY_OBJECTS[name]]
        elif required:
            raise CannotPlace(f"required query parameter {name!r}")
    if op.path.startswith("/maps/") and "bbox" not in query:
        query.update(bbox=BBOX_B, level="community")
    body = None
    if op.key in BODIES:
        body = BODIES[op.key](world)
    elif op.body_required and signed:
        raise CannotPlace("a required body the matrix cannot write")
    form = FORMS[op.key](world) if op.key in FORMS else None
    if form is None and op.method != "GET" and op.path.startswith("/workbench/") \
            and op.key not in SCOPE_FREE:
        raise CannotPlace("a workbench form the matrix cannot fill")
    return {"method": op.method, "path": "/".join(path), "query_string": query, "json": body,
            "form": form}


def form_token(client) -> str:
    """The form token of the test client's session, as a workbench page carries it."""
    page = client.get("/workbench/login").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def send(client, request: dict, headers: dict | None = None):
    kwargs = {"query_string": request["query_string"], "headers": headers or {}}
    if request["json"] is not None:
        kwargs["json"] = request["json"]
    if request.get("form") is not None:
        kwargs["data"] = {**request["form"], "csrf_token": form_token(client)}
    response = client.open(request["path"], method=request["method"], **kwargs)
    response.get_data()  # buffered, so a file the answer streams is closed at once
    response.close()
    return response


def error_code(response) -> str | None:
    """The refusal's machine-readable code: the API's JSON, or a workbench page's."""
    if response.mimetype == "text/html":
        found = re.search(r'class="code">[^<]*<code>([^<]+)</code>', response.get_data(
            as_text=True))
        return found.group(1) if found else None
    return (response.get_json(silent=True) or {}).get("error", {}).get("code")


def judge_scoped(op: Operation, response) -> str | None:
    """None when a user of street A got a refusal or an answer without street B's data."""
    status = response.status_code
    markers = PRIVATE_MARKERS if op.access == "optional" or op.key in PUBLIC_READS \
        else SCOPED_MARKERS
    found = leaked(response.get_data(), markers)
    if found:
        return f"{status} with street B's data {found}"
    if status in (403, 404):
        return None if error_code(response) else f"{status} without an error code"
    if status >= 500:
        return f"{status}"
    if op.key in SELF_TARGETED or op.access == "optional":
        return None
    if 200 <= status < 300 and op.method == "GET":
        return None
    if op.path == "/wall" and status == 200:
        return None
    # A page that only leads to the user's own start page (the workbench's root).
    if op.method == "GET" and status == 302 and response.location.startswith("/workbench/"):
        return None
    return f"{status} {error_code(response) or ''}".strip() + " instead of a refusal"


def run_scoped(client, ops, world, headers) -> dict[str, str]:
    """Every operation aimed at street B by the holder of ``headers``: failures by operation."""
    failures = {}
    for op in ops:
        if op.access == "public":
            continue
        if op.key in SCOPE_FREE:
            continue
        try:
            request = request_for(op, world, signed=True)
        except CannotPlace as why:
            failures[op.key] = f"cannot be placed: {why}"
            continue
        db.session.remove()
        verdict = judge_scoped(op, send(client, request, headers))
        if verdict:
            failures[op.key] = verdict
    return failures


def snapshot(world: dict) -> dict:
    """What a refused request must leave as it was: every table's rows and street B's objects."""
    db.session.remove()
    tables = db.session.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
    # A caller may subscribe her own browser; street B's subscription is compared below.
    counts = {t: db.session.scalar(text(f'SELECT count(*) FROM "{t}"')) for t in tables
              if t != "push_subscriptions"}
    objects = {
        "case": tuple(db.session.execute(text(
            "SELECT state, version, department_id, worker_id FROM cases WHERE id = :id"),
            {"id": world["case_id"]}).one()),
        "worker": tuple(db.session.execute(text(
            "SELECT role, region_id, display_name, is_active, password_hash FROM users "
            "WHERE id = :id"), {"id": world["user_id"]}).one()),
        "department": tuple(db.session.execute(text(
            "SELECT name, name_en, city_id FROM departments WHERE id = :id"),
            {"id": world["department_id"]}).one()),
        "category": tuple(db.session.execute(text(
            "SELECT description, department_id, active FROM categories WHERE code = :c"),
            {"c": CATEGORY}).one()),
        "push": tuple(db.session.execute(text(
            "SELECT user_id, p256dh, auth FROM push_subscriptions WHERE endpoint = :e"),
            {"e": PUSH_ENDPOINT_B}).one()),
        "webhook": tuple(db.session.execute(text(
            "SELECT url, state, region_code, events FROM webhook_endpoints WHERE id = :id"),
            {"id": world["webhook_endpoint_id"]}).one()),
        "component": tuple(db.session.execute(text(
            "SELECT name, state, owner FROM components WHERE code = :c"),
            {"c": COMPONENT_CODE}).one()),
    }
    return {"counts": counts, "objects": objects}


# --- the matrix ------------------------------------------------------------------------------

@pytest.fixture
def operations(app, client) -> list[Operation]:
    documented = document_operations(client)
    return documented + wall_and_public_operations(app, documented)


@pytest.mark.parametrize("role", ROLES)
def test_a_user_scoped_to_street_a_gets_nothing_of_street_b(role, app, client, make_user,
                                                            auth_headers, operations):
    world = build_world(make_user)
    user = user_scoped_to_a(role, make_user, world)
    headers = auth_headers(user)
    before = snapshot(world)

    failures = run_scoped(client, operations, world, headers)

    unexpected = {k: v for k, v in failures.items() if (role, k) not in KNOWN_HOLES}
    assert not unexpected, f"a {role} of street A reached street B:\n" + "\n".join(
        f"  {k}: {v}" for k, v in sorted(unexpected.items()))
    after = snapshot(world)
    if not any((role, k) in KNOWN_HOLES for k in failures):
        assert after == before


def test_the_matrix_sees_street_b_when_the_caller_may(app, client, make_user, auth_headers,
                                                      operations):
    """The city's own administrator covers street B: the same requests then answer with
    street B's data, so the markers and ids the matrix uses do find a leak."""
    world = build_world(make_user)
    admin = make_user("admin", username="city_admin", city_id=world["city_id"])
    failures = run_scoped(client, operations, world, auth_headers(admin))
    for reached in ("GET /api/v1/cases/{case_id}", "GET /api/v1/admin/users/{user_id}",
                    "GET /api/v1/rosters", "GET /maps/feeds/cases/{case_id}",
                    "GET /api/v1/stats/regions", "GET /api/v1/photos/{sha256}",
                    "DELETE /api/v1/rosters/{entry_id}"):
        assert reached in failures, reached


def test_an_operation_the_matrix_cannot_place_fails_by_name(app, client, make_user,
                                                            auth_headers):
    world = build_world(make_user)
    user = user_scoped_to_a("duty_chief", make_user, world)
    new = [Operation("GET", "/api/v1/cases/{case_id}/attachments/{attachment_id}", "signed"),
           Operation("POST", "/api/v1/widgets", "signed", body_required=True),
           Operation("GET", "/api/v1/widgets", "signed", query=[("colour", True)])]
    failures = run_scoped(client, new, world, auth_headers(user))
    assert failures == {
        "GET /api/v1/cases/{case_id}/attachments/{attachment_id}":
            "cannot be placed: path parameter 'attachment_id' after 'attachments'",
        "POST /api/v1/widgets": "cannot be placed: a required body the matrix cannot write",
        "GET /api/v1/widgets": "cannot be placed: required query parameter 'colour'"}


def test_the_matrix_covers_the_whole_api(client, app, operations):
    keys = {op.key for op in operations}
    assert len([k for k in keys if k.startswith(("GET /api", "POST /api", "PUT /api",
                                                 "PATCH /api", "DELETE /api"))]) >= 60
    for expected in ("POST /api/v1/cases/{case_id}/dispatch", "GET /maps/feeds/cases",
                     "GET /maps/tiles/grids/{z}/{x}/{y}.pbf", "GET /open-data/cases.csv",
                     "GET /open311/v2/requests.{fmt}"):
        assert expected in keys


# --- the public side -------------------------------------------------------------------------

def run_public(client, ops, world) -> dict[str, str]:
    """Every public or optionally signed operation, anonymously: no private field of street B;
    every signed one: 401 with a code."""
    failures = {}
    for op in ops:
        try:
            request = request_for(op, world, signed=False)
        except CannotPlace as why:
            failures[op.key] = f"cannot be placed: {why}"
            continue
        db.session.remove()
        response = send(client, request)
        status = response.status_code
        if op.access == "signed":
            if op.path == "/wall":
                ok = status == 302
            elif op.path.startswith("/workbench/"):
                ok = (status == 302 and "/workbench/login" in response.location
                      if op.method == "GET" else
                      status == 401 and error_code(response) == "token_missing")
            else:
                body = response.get_json(silent=True) or {}
                ok = status == 401 and body.get("error", {}).get("code") == "token_missing"
            if not ok:
                failures[op.key] = f"{status} for an anonymous caller instead of 401"
            continue
        found = leaked(response.get_data(), PUBLIC_MARKERS)
        if found:
            failures[op.key] = f"{status} with private data {found}"
        elif status >= 500:
            failures[op.key] = f"{status}"
    return failures


def test_an_anonymous_caller_gets_nothing_private(app, client, make_user, operations):
    world = build_world(make_user)
    before = snapshot(world)
    failures = run_public(client, operations, world)
    unexpected = {k: v for k, v in failures.items() if ("anonymous", k) not in KNOWN_HOLES}
    assert not unexpected, "an anonymous caller got:\n" + "\n".join(
        f"  {k}: {v}" for k, v in sorted(unexpected.items()))
    assert snapshot(world) == before


# --- holes being closed elsewhere, one strict xfail each ------------------------------------

@pytest.mark.parametrize("who, key", [
    pytest.param(who, key, marks=pytest.mark.xfail(strict=True, reason=reason))
    for (who, key), reason in KNOWN_HOLES.items()] or [
    pytest.param("none", "none", marks=pytest.mark.skip(reason="no known hole"))])
def test_a_known_hole(who, key, app, client, make_user, auth_headers, operations):
    world = build_world(make_user)
    ops = [op for op in operations if op.key == key]
    assert ops, f"{key} is no longer served: remove it from KNOWN_HOLES"
    if who == "anonymous":
        failures = run_public(client, ops, world)
    else:
        user = user_scoped_to_a(who, make_user, world)
        failures = run_scoped(client, ops, world, auth_headers(user))
    assert key not in failures, failures.get(key)


def test_a_street_chief_who_rosters_another_streets_worker_on_her_grid_is_refused(
        app, client, make_user, auth_headers):
    world = build_world(make_user)
    chief = user_scoped_to_a("duty_chief", make_user, world)
    make_user("inspector", username="worker_a", region_code=STREET)
    headers = auth_headers(chief)
    before = snapshot(world)

    response = client.post("/api/v1/rosters", headers=headers,
                           json={"username": "worker_b", "grid_code": GRID_A})

    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"
    assert snapshot(world) == before
    own = client.post("/api/v1/rosters", headers=headers,
                      json={"username": "worker_a", "grid_code": GRID_A})
    assert own.status_code == 201 and own.json["username"] == "worker_a"
