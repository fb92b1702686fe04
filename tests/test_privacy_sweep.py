"""Everything the public can read about cases, swept at once: Open311 (JSON and XML, lists and
one request, with extensions, the updates), the open data (GeoJSON and CSV), the answer behind a
tracking token and a citizen's view of their own case. None of it holds a member of staff's id
or name, a note written between staff, a reporter's contact details, a citizen's report the
city has not verified yet, or a coordinate finer than the city publishes."""

from __future__ import annotations

import csv
import io
import json
from xml.etree import ElementTree

import pytest
from open311_world import IN_WEST, build_world
from sqlalchemy import select

from gridmgr.cases.models import Case
from gridmgr.cases.workflow import StepInput, take_step
from gridmgr.config import Config
from gridmgr.extensions import db
from gridmgr.people.models import User

NAME = ("Meimei", "Hanfeng")
PHONE = "13912340000"
EMAIL = "han.meimei@example.cn"
INTERNAL = "交李师傅处理 INTERNAL-MEMO"  # what staff write to each other
STAFF_NAMES = ("operator1", "inspector1")
# A phone's fix, finer than any published point.
POINTS = [(IN_WEST[0] + 0.0000123 * i, IN_WEST[1] + 0.0000456 * i) for i in (1, 2, 3, 4)]


def open311_post(client, world, point, description: str) -> dict:
    answer = client.post("/open311/v2/requests.json", data={
        "api_key": world.api_key, "service_code": "C9801", "long": point[0], "lat": point[1],
        "first_name": NAME[0], "last_name": NAME[1], "phone": PHONE, "email": EMAIL,
        "description": description})
    assert answer.status_code == 200, answer.data
    [created] = answer.get_json()
    case = db.session.scalar(select(Case).where(Case.code == created["service_request_id"]))
    return {"id": case.id, "code": case.code, "token": created["token"]}


def staff(world) -> tuple[User, User]:
    return db.session.get(User, world.inspector_id), db.session.get(User, world.operator_id)


def verify(world, case_id: int, point) -> None:
    inspector, _ = staff(world)
    take_step(case_id, "verify", inspector, StepInput(lon=point[0], lat=point[1],
                                                      note=f"现场核实 {INTERNAL}"))


def file(world, case_id: int) -> None:
    _, operator = staff(world)
    take_step(case_id, "file", operator, StepInput(note=f"立案 {INTERNAL}"))


def public_outputs(client, codes: list[str], token: str, own: tuple[int, dict]) -> dict:
    """Every public answer as text, by URL: Open311's lists and each request (404s kept
    too), the open data, the tracking answer and a citizen's own case."""
    outputs: dict[str, tuple[int, str]] = {}
    urls = []
    for fmt in ("json", "xml"):
        urls += [f"/open311/v2/requests.{fmt}", f"/open311/v2/requests.{fmt}?extensions=true",
                 f"/open311/v2/servicerequestupdates.{fmt}"]
        urls += [f"/open311/v2/requests/{code}.{fmt}?extensions=true" for code in codes]
    urls += ["/open-data/cases.geojson", "/open-data/cases.csv",
             f"/api/v1/reports/track/{token}"]
    for url in urls:
        response = client.get(url)
        outputs[url] = (response.status_code, response.get_data(as_text=True))
    case_id, headers = own
    response = client.get(f"/api/v1/cases/{case_id}", headers=headers)
    # Her own reports come back as she sent them; the rest of the case is the public view.
    case = response.get_json()
    assert [r["description"] for r in case.pop("reports")] == ["Another dark lamp"]
    outputs["own case"] = (response.status_code, json.dumps(case, ensure_ascii=False))
    response = client.get("/api/v1/cases", headers=headers)
    outputs["own list"] = (response.status_code, response.get_data(as_text=True))
    return outputs


def published_points(outputs: dict) -> list[float]:
    """Every longitude and latitude in the outputs, read as their clients read them."""
    values: list[float] = []
    for url, (status, body) in outputs.items():
        if status != 200:
            continue
        if url.startswith("/open311/v2/requests") and ".xml" in url:
            root = ElementTree.fromstring(body)
            values += [float(e.text) for tag in ("lat", "long") for e in root.iter(tag)]
        elif url.startswith("/open311/v2/requests"):
            values += [r[k] for r in json.loads(body) for k in ("lat", "long")]
        elif url.endswith(".geojson"):
            values += [c for f in json.loads(body)["features"]
                       for c in f["geometry"]["coordinates"]]
        elif url.endswith(".csv"):
            values += [float(r[k]) for r in csv.DictReader(io.StringIO(body))
                       for k in ("lon", "lat")]
        elif url == "own case":
            case = json.loads(body)
            values += [case["lon"], case["lat"]]
            values += [v for h in case["history"] for v in (h["lon"], h["lat"]) if v is not None]
        elif url == "own list":
            values += [v for item in json.loads(body)["items"] for v in (item["lon"], item["lat"])]
    return values


@pytest.fixture
def world(app_ctx):
    return build_world()


def test_the_public_sees_verified_reports_only_without_staff_or_contacts_at_about_ten_metres(
        client, world, make_user, auth_headers):
    # Four citizens report a dark lamp; each leaves a name, a phone and an e-mail address.
    published = open311_post(client, world, POINTS[0], f"Lamp dark; call {PHONE} or {EMAIL}")
    verify(world, published["id"], POINTS[0])
    file(world, published["id"])
    waiting = open311_post(client, world, POINTS[1], "Lamp dark, not verified yet")
    false_report = open311_post(client, world, POINTS[2], "A false report")
    inspector, operator = staff(world)
    take_step(false_report["id"], "cancel", operator,
              StepInput(note=f"No lamp there. {INTERNAL}"))
    # A signed-in citizen's report, verified and filed: she reads her own case.
    citizen = make_user("citizen")
    headers = auth_headers(citizen)
    mine = client.post("/api/v1/reports", headers=headers, json={
        "lon": POINTS[3][0], "lat": POINTS[3][1], "category": "C9801",
        "description": "Another dark lamp", "contact_phone": PHONE, "client_id": "mine-1"})
    assert mine.status_code == 201, mine.get_json()
    own_id = mine.get_json()["case"]["id"]
    verify(world, own_id, POINTS[3])
    file(world, own_id)

    codes = [published["code"], waiting["code"], false_report["code"]]
    outputs = public_outputs(client, codes, published["token"], (own_id, headers))

    # The verified report is public; the unverified one and the one cancelled before any
    # verification are nowhere, and asking for them by code is a 404.
    assert published["code"] in outputs["/open311/v2/requests.json"][1]
    assert published["code"] in outputs["/open-data/cases.csv"][1]
    for hidden in (waiting, false_report):
        for url, (status, body) in outputs.items():
            assert hidden["code"] not in body or (status == 404 and hidden["code"] in url), url
        for fmt in ("json", "xml"):
            assert outputs[f"/open311/v2/requests/{hidden['code']}.{fmt}?extensions=true"][0] \
                == 404
    assert all(status == 200 for url, (status, _) in outputs.items()
               if not any(h["code"] in url for h in (waiting, false_report)))

    for url, (_, body) in outputs.items():
        for secret in (*NAME, PHONE, EMAIL, "INTERNAL-MEMO", "李师傅", *STAFF_NAMES):
            assert secret not in body, f"{secret!r} leaked through {url}"

    # No staff id: a citizen reads only her own id, and no one's who worked on the case.
    own = json.loads(outputs["own case"][1])
    assert {h["actor_id"] for h in own["history"]} == {None, citizen.id}
    assert (own["worker_id"], own["handler_id"], own["verified_by_id"]) == (None,) * 3
    assert all(h["note"] is None for h in own["history"])
    tracked = json.loads(outputs[f"/api/v1/reports/track/{published['token']}"][1])
    assert "actor_id" not in json.dumps(tracked)
    for staff_id in (inspector.id, operator.id):
        assert f'"actor_id": {staff_id}' not in outputs["own case"][1]

    # Every published point at four decimals (about 10 m), never the phone's fix.
    points = published_points(outputs)
    assert len(points) >= 12
    assert all(round(value, 4) == value for value in points), points
    for lon, lat in POINTS:
        for precise in (f"{lon:.7f}", f"{lat:.7f}", str(round(lon, 6)), str(round(lat, 6))):
            assert precise not in "".join(body for _, body in outputs.values())


def test_a_city_that_publishes_from_filing_keeps_a_verified_report_back_until_it_is_filed(
        app, client, world):
    assert Config.GRIDMGR_PUBLISH_CITIZEN_REPORTS_FROM == "verified"
    assert Config.GRIDMGR_PUBLIC_COORDINATE_DECIMALS == 4
    app.config.update(GRIDMGR_PUBLISH_CITIZEN_REPORTS_FROM="filed",
                      GRIDMGR_PUBLIC_COORDINATE_DECIMALS=3)
    try:
        report = open311_post(client, world, POINTS[0], "Lamp dark")
        verify(world, report["id"], POINTS[0])
        assert client.get(f"/open311/v2/requests/{report['code']}.json").status_code == 404
        assert report["code"] not in client.get("/open-data/cases.csv").get_data(as_text=True)
        file(world, report["id"])
        [request] = client.get(f"/open311/v2/requests/{report['code']}.json").get_json()
        assert (request["long"], request["lat"]) == (round(POINTS[0][0], 3),
                                                     round(POINTS[0][1], 3))
        [feature] = json.loads(client.get("/open-data/cases.geojson").data)["features"]
        assert feature["geometry"]["coordinates"] == [round(POINTS[0][0], 3),
                                                      round(POINTS[0][1], 3)]
    finally:
        app.config.update(GRIDMGR_PUBLISH_CITIZEN_REPORTS_FROM="verified",
                          GRIDMGR_PUBLIC_COORDINATE_DECIMALS=4)
