"""GeoReport v2, call by call, in JSON and XML, as the specification describes it
(http://wiki.open311.org/GeoReport_v2), including its error cases."""

from __future__ import annotations

import io
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from open311_world import IN_EAST, IN_WEST, build_city, build_world, verify_and_file
from PIL import Image
from sqlalchemy import func, select

from gridmgr.cases.models import Case, Report
from gridmgr.cases.workflow import StepInput, take_step
from gridmgr.extensions import db
from gridmgr.open311.keys import revoke_api_key
from gridmgr.people.models import User

# When a report may be published is the privacy sweep's story (test_privacy_sweep.py).
pytestmark = pytest.mark.usefixtures("publish_at_once")

BASE = "/open311/v2"
FORMATS = ["json", "xml"]
REQUEST_FIELDS = ["service_request_id", "status", "status_notes", "service_name", "service_code",
                  "description", "agency_responsible", "service_notice", "requested_datetime",
                  "updated_datetime", "expected_datetime", "address", "address_id", "zipcode",
                  "lat", "long", "media_url"]
W3C = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d([+-]\d\d:\d\d|Z)$")


def _png_pixel() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1, 1), (10, 20, 30)).save(out, "PNG")
    return out.getvalue()


PNG_PIXEL = _png_pixel()


def body(response, fmt):
    """The document as Python: JSON as is; XML as (root tag, list of child dicts)."""
    if fmt == "json":
        return response.get_json()
    return ElementTree.fromstring(response.data)


def xml_items(root):
    """The children of an XML list document as dicts of element name → text."""
    return [{child.tag: child.text for child in item} for item in root]


def assert_content_type(response, fmt):
    expected = "application/json" if fmt == "json" else "text/xml"
    assert response.headers["Content-Type"] == f"{expected}; charset=utf-8"


def assert_errors(response, fmt, status, words):
    """An error answer: the status, and a list of {code, description} naming ``words``."""
    assert response.status_code == status, response.data
    assert_content_type(response, fmt)
    if fmt == "json":
        errors = response.get_json()
        assert isinstance(errors, list) and errors
        assert errors[0]["code"] == status
        description = errors[0]["description"]
    else:
        root = ElementTree.fromstring(response.data)
        assert root.tag == "errors" and root[0].tag == "error"
        assert root[0].find("code").text == str(status)
        description = root[0].find("description").text
    assert words.lower() in description.lower(), description


@pytest.fixture
def world(app_ctx):
    return build_world()


def post(client, world, fmt="json", **fields):
    data = {"api_key": world.api_key, "service_code": "C9801", "lat": str(IN_WEST[1]),
            "long": str(IN_WEST[0]), "description": "The lamp at the corner is dark."}
    data.update({k: v for k, v in fields.items() if v is not None})
    for key in [k for k, v in fields.items() if v is None]:
        data.pop(key, None)
    return client.post(f"{BASE}/requests.{fmt}", data=data)


def filed_id(response) -> str:
    return response.get_json()[0]["service_request_id"]


# -- discovery ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_discovery_names_the_endpoint_its_specification_and_formats(client, world, fmt):
    response = client.get(f"{BASE}/discovery.{fmt}")
    assert response.status_code == 200
    assert_content_type(response, fmt)
    if fmt == "json":
        document = response.get_json()
        endpoint = document["endpoints"][0]
        assert {"changeset", "contact", "key_service", "endpoints"} <= set(document)
        formats = endpoint["formats"]
    else:
        root = body(response, fmt)
        assert root.tag == "discovery"
        endpoint = {c.tag: c.text for c in root.find("endpoints").find("endpoint")}
        formats = [f.text for f in root.find("endpoints/endpoint/formats")]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2")
    assert endpoint["type"] == "production"
    assert set(formats) == {"text/xml", "application/json"}


# -- services ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_the_service_list_is_the_category_catalogue(client, world, fmt):
    response = client.get(f"{BASE}/services.{fmt}")
    assert response.status_code == 200
    assert_content_type(response, fmt)
    if fmt == "json":
        services = response.get_json()
    else:
        root = body(response, fmt)
        assert root.tag == "services" and all(child.tag == "service" for child in root)
        services = xml_items(root)
    by_code = {s["service_code"]: s for s in services}
    assert set(by_code) == {"C9801", "E9901"}
    tree = by_code["E9901"]
    assert set(tree) == {"service_code", "service_name", "description", "metadata", "type",
                         "keywords", "group"}
    assert tree["service_name"] == "Fallen tree"
    assert tree["group"] == "Greening"
    assert tree["type"] == "realtime"
    assert tree["keywords"] == "tree, branch, 树"
    assert tree["metadata"] in (True, "true")
    assert by_code["C9801"]["metadata"] in (False, "false")


@pytest.mark.parametrize("ask", [{"query_string": {"locale": "zh_CN"}},
                                 {"headers": {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}}])
def test_a_chinese_client_gets_chinese_service_names(client, world, ask):
    services = client.get(f"{BASE}/services.json", **ask).get_json()
    tree = next(s for s in services if s["service_code"] == "E9901")
    assert tree["service_name"] == "树木倒伏" and tree["group"] == "园林绿化"
    english = client.get(f"{BASE}/services.json", headers={"Accept-Language": "en-US"})
    assert "Fallen tree" in english.get_data(as_text=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_service_definition_lists_the_extra_questions(client, world, fmt):
    response = client.get(f"{BASE}/services/E9901.{fmt}")
    assert response.status_code == 200
    assert_content_type(response, fmt)
    if fmt == "json":
        definition = response.get_json()
        attributes = definition["attributes"]
        size = attributes[0]
        values = size["values"]
        assert definition["service_code"] == "E9901"
        assert size["variable"] is True and size["required"] is True and size["order"] == 1
    else:
        root = body(response, fmt)
        assert root.tag == "service_definition"
        assert root.find("service_code").text == "E9901"
        attributes = root.find("attributes").findall("attribute")
        size = {c.tag: c.text for c in attributes[0]}
        values = [{c.tag: c.text for c in v} for v in attributes[0].find("values")]
        assert size["variable"] == "true" and size["required"] == "true"
        assert size["order"] == "1"
    assert len(attributes) == 3
    assert size["code"] == "SIZE" and size["datatype"] == "singlevaluelist"
    assert size["description"] == "How big is the fallen tree?"
    assert values == [{"key": "small", "name": "Small"}, {"key": "large", "name": "Large"}]


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_unknown_service_code_is_a_404(client, world, fmt):
    assert_errors(client.get(f"{BASE}/services/X0000.{fmt}"), fmt, 404, "X0000")


@pytest.mark.parametrize("fmt", FORMATS)
def test_jurisdictions_are_the_cities(client, world, fmt):
    assert client.get(f"{BASE}/services.{fmt}?jurisdiction_id=").status_code == 200
    assert client.get(f"{BASE}/services.{fmt}?jurisdiction_id=dongcheng").status_code == 200
    assert_errors(client.get(f"{BASE}/services.{fmt}?jurisdiction_id=atlantis"), fmt, 404,
                  "jurisdiction_id")


def test_an_unoffered_format_is_a_404(client, world):
    response = client.get(f"{BASE}/services.csv")
    assert response.status_code == 404
    assert response.get_json()[0]["code"] == 404


# -- POST requests -----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_a_client_files_a_request_and_it_becomes_a_case(client, world, fmt):
    response = post(client, world, fmt, first_name="Li", last_name="Lei")
    assert response.status_code == 200, response.data
    assert_content_type(response, fmt)
    if fmt == "json":
        answer = response.get_json()
        assert isinstance(answer, list) and len(answer) == 1
        answer = answer[0]
    else:
        root = body(response, fmt)
        assert root.tag == "service_requests" and root[0].tag == "request"
        answer = {c.tag: c.text for c in root[0]}
    assert {"service_request_id", "service_notice", "account_id"} <= set(answer)
    assert isinstance(answer["service_request_id"], str)
    case = db.session.scalar(select(Case).where(Case.code == answer["service_request_id"]))
    assert case.state == "reported" and case.channel == "open311"
    assert case.grid_code == "110101001001001"
    report = db.session.scalar(select(Report).where(Report.case_id == case.id))
    assert report.contact_name == "Li Lei"


def test_the_api_key_may_come_in_the_query_string(client, world):
    response = client.post(f"{BASE}/requests.json?api_key={world.api_key}", data={
        "service_code": "C9801", "lat": IN_EAST[1], "long": IN_EAST[0]})
    assert response.status_code == 200, response.data
    assert db.session.scalar(select(Case.grid_code)) == "110101001001002"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("key, words", [(None, "api_key is required"),
                                        ("not-a-key", "not valid"),
                                        ("revoked", "not valid")])
def test_a_missing_bad_or_revoked_key_is_a_403_and_files_nothing(client, world, fmt, key, words):
    if key == "revoked":
        revoke_api_key("test-client")
        key = world.api_key
    assert_errors(post(client, world, fmt, api_key=key), fmt, 403, words)
    assert db.session.scalar(select(func.count(Case.id))) == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_address_without_coordinates_is_a_clear_400(client, world, fmt):
    response = post(client, world, fmt, lat=None, long=None,
                    address_string="1 Dongcheng Road")
    assert_errors(response, fmt, 400, "address_string")
    assert_errors(post(client, world, fmt, lat=None, long=None), fmt, 400, "lat and long")
    assert db.session.scalar(select(func.count(Case.id))) == 0


@pytest.mark.parametrize("fields, words", [
    ({"service_code": None}, "service_code is required"),
    ({"service_code": "X0000"}, "X0000"),
    ({"lat": "north"}, "lat must be a number"),
    ({"long": "500"}, "long must be between"),
    ({"lat": "10", "long": "10"}, "outside"),
    ({"service_code": "E9901"}, "attribute[SIZE] is required"),
    ({"service_code": "E9901", "attribute[SIZE]": "huge"}, "not one of"),
    ({"service_code": "E9901", "attribute[SIZE]": "large", "attribute[BLOCKING][]": "sky"},
     "not one of"),
    ({"service_code": "E9901", "attribute[SIZE]": "large", "attribute[GIRTH]": "thick"},
     "must be a number"),
    ({"service_code": "E9901", "attribute[SIZE]": "large", "attribute[COLOUR]": "red"},
     "COLOUR"),
    ({"jurisdiction_id": "atlantis"}, "jurisdiction_id"),
])
def test_bad_requests_are_refused_with_a_reason_and_file_nothing(client, world, fields, words):
    response = post(client, world, "json", **fields)
    status = 404 if "jurisdiction_id" in fields else 400
    assert_errors(response, "json", status, words)
    assert db.session.scalar(select(func.count(Case.id))) == 0


def test_attributes_single_and_multi_valued_are_kept_with_the_report(client, world):
    response = client.post(f"{BASE}/requests.json", data={
        "api_key": world.api_key, "service_code": "E9901", "lat": IN_WEST[1],
        "long": IN_WEST[0], "attribute[SIZE]": "large",
        "attribute[BLOCKING][]": ["road", "sidewalk"], "attribute[GIRTH]": "120"})
    assert response.status_code == 200, response.data
    report = db.session.scalar(select(Report))
    assert report.attributes == {"SIZE": "large", "BLOCKING": ["road", "sidewalk"],
                                 "GIRTH": "120"}


def test_a_multipart_request_carries_a_photo_that_becomes_the_media_url(client, world):
    photo = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(photo, "JPEG")
    photo.seek(0)
    response = client.post(f"{BASE}/requests.json", content_type="multipart/form-data", data={
        "api_key": world.api_key, "service_code": "C9801", "lat": str(IN_WEST[1]),
        "long": str(IN_WEST[0]), "media": (photo, "lamp.jpg")})
    assert response.status_code == 200, response.data
    code = filed_id(response)
    media_url = client.get(f"{BASE}/requests/{code}.json").get_json()[0]["media_url"]
    assert media_url.startswith("http") and media_url.endswith(".jpg")
    with client.get(media_url) as image:
        assert image.status_code == 200 and image.mimetype == "image/jpeg"
        assert Image.open(io.BytesIO(image.data)).size == (64, 48)


def test_the_public_photo_has_no_exif_and_a_bad_upload_files_nothing(client, world, app):
    photo = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x013B] = "Xiaoming Zhangsan"  # Artist
    Image.new("RGB", (32, 32), (0, 90, 200)).save(photo, "JPEG", exif=exif.tobytes())
    photo.seek(0)
    response = client.post(f"{BASE}/requests.json", content_type="multipart/form-data", data={
        "api_key": world.api_key, "service_code": "C9801", "lat": str(IN_WEST[1]),
        "long": str(IN_WEST[0]), "media": (photo, "lamp.jpg")})
    code = filed_id(response)
    media_url = client.get(f"{BASE}/requests/{code}.json").get_json()[0]["media_url"]
    with client.get(media_url) as image:
        assert len(Image.open(io.BytesIO(image.data)).getexif()) == 0
        assert b"Xiaoming" not in image.data

    photos_before = sorted(p.name for p in (Path(app.config["GRIDMGR_HOME"]) / "photos")
                           .rglob("*"))
    refused = client.post(f"{BASE}/requests.xml", content_type="multipart/form-data", data={
        "api_key": world.api_key, "service_code": "C9801", "lat": str(IN_WEST[1]),
        "long": str(IN_WEST[0]), "media": (io.BytesIO(b"not a picture"), "lamp.jpg")})
    assert_errors(refused, "xml", 400, "lamp.jpg")
    again = client.post(f"{BASE}/requests.json", content_type="multipart/form-data", data={
        "api_key": world.api_key, "service_code": "E9901", "lat": str(IN_WEST[1]),
        "long": str(IN_WEST[0]), "media": (io.BytesIO(PNG_PIXEL), "other.png")})
    assert_errors(again, "json", 400, "attribute[SIZE] is required")
    assert db.session.scalar(select(func.count(Case.id))) == 1
    assert sorted(p.name for p in (Path(app.config["GRIDMGR_HOME"]) / "photos")
                  .rglob("*")) == photos_before


def test_a_media_url_sent_by_the_client_is_given_back(client, world):
    code = filed_id(post(client, world, media_url="https://photos.example.org/lamp.jpg"))
    found = client.get(f"{BASE}/requests/{code}.json").get_json()[0]
    assert found["media_url"] == "https://photos.example.org/lamp.jpg"
    assert_errors(post(client, world, media_url="javascript:alert(1)"), "json", 400,
                  "media_url")


def test_requests_speak_the_clients_language(client, world):
    code = filed_id(post(client, world))
    found = client.get(f"{BASE}/requests/{code}.xml?locale=zh-CN")
    request = xml_items(body(found, "xml"))[0]
    assert request["service_name"] == "路灯"
    assert request["service_notice"] == "已上报，等待监督员现场核实。"


def test_a_filed_request_follows_the_normal_workflow(client, world):
    code = filed_id(post(client, world))
    case = db.session.scalar(select(Case).where(Case.code == code))
    verify_and_file(world, case.id)
    answer = client.get(f"{BASE}/requests/{code}.json?extensions=true").get_json()[0]
    assert answer["status"] == "open"
    assert answer["extended_attributes"]["state"] == "filed"


# -- GET requests ------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_every_field_of_a_request_is_present_and_typed_as_the_specification_says(
        client, world, fmt):
    post(client, world)
    response = client.get(f"{BASE}/requests.{fmt}")
    assert response.status_code == 200
    assert_content_type(response, fmt)
    if fmt == "json":
        request = response.get_json()[0]
        assert list(request) == REQUEST_FIELDS
        assert request["media_url"] is None
        assert isinstance(request["lat"], float) and isinstance(request["long"], float)
    else:
        root = body(response, fmt)
        assert root.tag == "service_requests" and root[0].tag == "request"
        request = {c.tag: c.text for c in root[0]}
        # media_url is left out rather than sent empty
        assert list(request) == [f for f in REQUEST_FIELDS if f != "media_url"]
    assert request["status"] == "open"
    assert request["service_code"] == "C9801" and request["service_name"] == "Street lamp"
    assert request["description"] == "The lamp at the corner is dark."
    assert request["agency_responsible"] in (None, "")
    assert W3C.match(request["requested_datetime"]) and W3C.match(request["updated_datetime"])
    assert request["requested_datetime"].endswith("+08:00")
    assert "多福巷社区1号网格" in request["address"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_request_is_still_a_list(client, world, fmt):
    code = filed_id(post(client, world))
    response = client.get(f"{BASE}/requests/{code}.{fmt}")
    assert response.status_code == 200
    if fmt == "json":
        assert [r["service_request_id"] for r in response.get_json()] == [code]
    else:
        assert [r["service_request_id"] for r in xml_items(body(response, fmt))] == [code]
    assert_errors(client.get(f"{BASE}/requests/19990101000001.{fmt}"), fmt, 404,
                  "19990101000001")


def test_ids_filter_overrides_every_other_filter(client, world):
    first = filed_id(post(client, world))
    second = filed_id(post(client, world, service_code="E9901", **{"attribute[SIZE]": "small"}))
    filed_id(post(client, world))
    found = client.get(f"{BASE}/requests.json", query_string={
        "service_request_id": f"{first},{second}", "service_code": "NOPE",
        "status": "closed", "start_date": "2001-01-01T00:00:00Z",
        "end_date": "2001-01-02T00:00:00Z"}).get_json()
    assert sorted(r["service_request_id"] for r in found) == sorted([first, second])


def test_service_code_takes_a_comma_list(client, world):
    post(client, world)
    post(client, world, service_code="E9901", **{"attribute[SIZE]": "small"})
    lamps = client.get(f"{BASE}/requests.json?service_code=C9801").get_json()
    both = client.get(f"{BASE}/requests.json?service_code=C9801,E9901").get_json()
    assert [r["service_code"] for r in lamps] == ["C9801"]
    assert len(both) == 2


def test_status_open_and_closed(client, world):
    open_code = filed_id(post(client, world))
    cancelled = filed_id(post(client, world))
    operator = db.session.get(User, world.operator_id)
    case_id = db.session.scalar(select(Case.id).where(Case.code == cancelled))
    take_step(case_id, "cancel", operator, StepInput(note="Duplicate of an earlier report."))

    def codes(status):
        found = client.get(f"{BASE}/requests.json?status={status}").get_json()
        return {r["service_request_id"]: r for r in found}

    assert set(codes("open")) == {open_code}
    closed = codes("closed")
    assert set(closed) == {cancelled}
    assert closed[cancelled]["status_notes"] == "Duplicate of an earlier report."
    assert set(codes("open,closed")) == {open_code, cancelled}
    assert_errors(client.get(f"{BASE}/requests.json?status=pending"), "json", 400, "pending")


def test_dates_are_w3c_with_any_offset_and_fractions(client, world):
    code = filed_id(post(client, world))
    requested = client.get(f"{BASE}/requests/{code}.json").get_json()[0]["requested_datetime"]
    day = requested[:10]
    inside = client.get(f"{BASE}/requests.json", query_string={
        "start_date": f"{day}T00:00:00.000+14:00",
        "end_date": f"{day}T23:59:59.999999-12:00"}).get_json()
    assert [r["service_request_id"] for r in inside] == [code]
    before = client.get(f"{BASE}/requests.json", query_string={
        "start_date": "2020-01-01T00:00:00Z", "end_date": "2020-02-01T00:00:00Z"}).get_json()
    assert before == []


@pytest.mark.parametrize("query, words", [
    ({"start_date": "yesterday"}, "start_date"),
    ({"end_date": "2026-13-45"}, "end_date"),
    ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2025-01-01T00:00:00Z"}, "before"),
    ({"start_date": "2025-01-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}, "90 days"),
    ({"page_size": "0"}, "page_size"),
    ({"page_size": "5000"}, "page_size"),
    ({"page": "first"}, "page"),
])
def test_bad_filters_are_400s(client, world, query, words):
    for fmt in FORMATS:
        assert_errors(client.get(f"{BASE}/requests.{fmt}", query_string=query), fmt, 400,
                      words)


def test_pages_of_requests_newest_first(client, world):
    codes = [filed_id(post(client, world)) for _ in range(5)]
    first = client.get(f"{BASE}/requests.json?page_size=2").get_json()
    second = client.get(f"{BASE}/requests.json?page_size=2&page=2").get_json()
    third = client.get(f"{BASE}/requests.json?page_size=2&page=3").get_json()
    seen = [r["service_request_id"] for r in first + second + third]
    assert seen == list(reversed(codes))
    assert len(client.get(f"{BASE}/requests.json?limit=3").get_json()) == 3


@pytest.mark.parametrize("fmt", FORMATS)
def test_extensions_add_the_state_grid_duplicates_and_public_history(client, world, fmt):
    code = filed_id(post(client, world))
    case = db.session.scalar(select(Case).where(Case.code == code))
    verify_and_file(world, case.id, note="Filed for the lamp crew.")
    plain = client.get(f"{BASE}/requests.{fmt}")
    assert b"extended_attributes" not in plain.data
    response = client.get(f"{BASE}/requests.{fmt}?extensions=true")
    if fmt == "json":
        extended = response.get_json()[0]["extended_attributes"]
        notes = extended["notes"]
    else:
        element = body(response, fmt)[0].find("extended_attributes")
        extended = {c.tag: c.text for c in element}
        notes = [{c.tag: c.text for c in n} for n in element.find("notes")]
    assert extended["state"] == "filed"
    assert extended["grid_code"] == "110101001001001"
    assert "duplicates" in extended
    assert [n["state"] for n in notes] == ["reported", "verified", "filed"]
    # The operator's note is between staff: the public reads what the step means.
    assert notes[2]["description"] == "Filed as a case."


@pytest.mark.parametrize("fmt", FORMATS)
def test_requests_of_one_jurisdiction(client, world, fmt):
    build_city(slug="xicheng", district="110102", name="西城区", offset=0.01)
    db.session.commit()
    post(client, world)
    post(client, world, lat=str(IN_WEST[1]), long=str(IN_WEST[0] + 0.01))
    for slug, grid in (("dongcheng", "110101"), ("xicheng", "110102")):
        found = client.get(f"{BASE}/requests.json?jurisdiction_id={slug}&extensions=true")
        assert [r["extended_attributes"]["grid_code"][:6] for r in found.get_json()] == [grid]
    assert len(client.get(f"{BASE}/requests.json?jurisdiction_id=").get_json()) == 2
    refused = post(client, world, fmt, jurisdiction_id="xicheng")
    assert_errors(refused, fmt, 400, "jurisdiction")
    assert_errors(client.get(f"{BASE}/requests.{fmt}?jurisdiction_id=nowhere"), fmt, 404,
                  "jurisdiction_id")


# -- tokens and updates ------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_a_token_leads_to_its_request(client, world, fmt):
    answer = post(client, world).get_json()[0]
    response = client.get(f"{BASE}/tokens/{answer['token']}.{fmt}")
    assert response.status_code == 200
    found = response.get_json() if fmt == "json" else xml_items(body(response, fmt))
    assert found == [{"service_request_id": answer["service_request_id"],
                      "token": answer["token"]}]
    assert_errors(client.get(f"{BASE}/tokens/unknown-token.{fmt}"), fmt, 404, "token")


@pytest.mark.parametrize("fmt", FORMATS)
def test_request_updates_list_each_step_in_a_window(client, world, fmt):
    code = filed_id(post(client, world))
    # The request shared this test's session, whose read of the API key began a transaction
    # before the report was written: the operator's step starts a new one, later.
    db.session.rollback()
    case = db.session.scalar(select(Case).where(Case.code == code))
    take_step(case.id, "cancel", db.session.get(User, world.operator_id),
              StepInput(note="Not a city lamp."))
    response = client.get(f"{BASE}/servicerequestupdates.{fmt}")
    assert response.status_code == 200
    assert_content_type(response, fmt)
    if fmt == "json":
        updates = response.get_json()
    else:
        root = body(response, fmt)
        assert root.tag == "service_request_updates" and root[0].tag == "request_update"
        updates = xml_items(root)
    assert [u["status"] for u in updates] == ["open", "closed"]
    assert {u["service_request_id"] for u in updates} == {code}
    assert updates[1]["description"] == "Not a city lamp."
    assert all(isinstance(u["update_id"], str) and W3C.match(u["updated_datetime"])
               for u in updates)
    old = client.get(f"{BASE}/servicerequestupdates.{fmt}", query_string={
        "start_date": "2020-01-01T00:00:00+08:00", "end_date": "2020-01-02T00:00:00+08:00"})
    assert old.status_code == 200
    assert_errors(client.get(f"{BASE}/servicerequestupdates.{fmt}?start_date=soon"), fmt, 400,
                  "start_date")
