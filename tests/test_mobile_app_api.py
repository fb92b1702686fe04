"""What the phone app needs of the API, through the Flask test client: a step a phone sends
twice with one Idempotency-Key is taken once, an anonymous reporter rates a closed case with
the report's tracking token, anyone reads the region tiles (shapes, codes, names only), and
the app's page, manifest and service worker are served as a browser installs them, and a grid
inspector reads the map, hotspots and forecast of their own grids."""

from __future__ import annotations

import base64
import hashlib
import io
import re

import brotli
import mapbox_vector_tile
from cityfixtures import city_fixture, jpeg_bytes  # noqa: F401
from maps_city import tile_of
from sqlalchemy import text

from gridmgr.extensions import db


def photo():
    return (io.BytesIO(jpeg_bytes()), "after.jpg")


def step(client, headers, case_id, action, key=None, **body):
    headers = {**headers, **({"Idempotency-Key": key} if key else {})}
    files = body.pop("photos", None)
    if files:
        return client.post(f"/api/v1/cases/{case_id}/{action}", headers=headers,
                           data={**{k: str(v) for k, v in body.items()}, "photos": files},
                           content_type="multipart/form-data")
    return client.post(f"/api/v1/cases/{case_id}/{action}", headers=headers, json=body)


def count(sql: str, **params) -> int:
    return db.session.scalar(text(sql), params)


def a_handled_case(client, city, make_user, auth_headers):
    """An anonymous citizen's report taken to handled; (case id, token, people, point)."""
    lon, lat = city.centre(0)
    answer = client.post("/api/v1/reports", json={
        "lon": lon, "lat": lat, "category": "C0101", "client_id": "m-report-1"}).get_json()
    case_id, token = answer["case"]["id"], answer["tracking_token"]
    inspector = make_user("inspector", region_code=city.grids[0])
    checker = make_user("inspector", region_code="110105001")
    chief = make_user("duty_chief", region_code="110105")
    assert step(client, auth_headers(inspector), case_id, "verify", lon=lon, lat=lat
                ).status_code == 200
    assert step(client, auth_headers(chief), case_id, "file").status_code == 200
    assert step(client, auth_headers(chief), case_id, "dispatch").status_code == 200
    staff = make_user("department", department=db.session.scalar(text(
        "SELECT d.name FROM departments d JOIN cases c ON c.department_id = d.id "
        "WHERE c.id = :id"), {"id": case_id}))
    assert step(client, auth_headers(staff), case_id, "accept").status_code == 200
    assert step(client, auth_headers(staff), case_id, "handle", lon=lon, lat=lat,
                photos=[photo()]).status_code == 200
    return case_id, token, {"checker": checker, "chief": chief, "staff": staff}, (lon, lat)


def test_an_inspector_whose_check_was_sent_twice_has_it_taken_once(
        client, city, make_user, auth_headers):
    case_id, _, people, (lon, lat) = a_handled_case(client, city, make_user, auth_headers)
    headers = auth_headers(people["checker"])

    first = step(client, headers, case_id, "check", key="m-step-abc", lon=lon, lat=lat)
    again = step(client, headers, case_id, "check", key="m-step-abc", lon=lon, lat=lat)

    assert first.status_code == 200 and again.status_code == 200
    assert again.get_json() == first.get_json()
    assert count("SELECT count(*) FROM case_history WHERE case_id = :id AND action = 'check'",
                 id=case_id) == 1
    # Without the key, the same step again is the conflict it always was.
    plain = step(client, headers, case_id, "check", lon=lon, lat=lat)
    assert plain.status_code == 409 and plain.get_json()["error"]["code"] == "conflict"


def test_a_key_used_for_another_step_or_malformed_is_refused_and_changes_nothing(
        client, city, make_user, auth_headers):
    case_id, _, people, (lon, lat) = a_handled_case(client, city, make_user, auth_headers)
    headers = auth_headers(people["checker"])
    assert step(client, headers, case_id, "check", key="m-step-1", lon=lon, lat=lat
                ).status_code == 200
    history = count("SELECT count(*) FROM case_history WHERE case_id = :id", id=case_id)

    chief = auth_headers(people["chief"])
    reused = step(client, headers, case_id, "verify", key="m-step-1", lon=lon, lat=lat)
    assert reused.status_code == 422
    assert reused.get_json()["error"]["code"] == "idempotency_key_reused"
    bad = step(client, chief, case_id, "close", key="not a key!")
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "bad_idempotency_key"

    assert count("SELECT count(*) FROM case_history WHERE case_id = :id", id=case_id) == history
    assert count("SELECT state FROM cases WHERE id = :id", id=case_id) == "checked"
    assert count("SELECT count(*) FROM step_requests") == 1


def test_an_anonymous_reporter_follows_the_case_and_rates_it_with_the_token(
        client, city, make_user, auth_headers):
    case_id, token, people, (lon, lat) = a_handled_case(client, city, make_user, auth_headers)

    early = client.post(f"/api/v1/reports/track/{token}/rate", json={"rating": 5})
    assert early.status_code == 409 and early.get_json()["error"]["code"] == "conflict"
    assert count("SELECT rating FROM cases WHERE id = :id", id=case_id) is None

    assert step(client, auth_headers(people["checker"]), case_id, "check", lon=lon, lat=lat
                ).status_code == 200
    assert step(client, auth_headers(people["chief"]), case_id, "close").status_code == 200
    tracked = client.get(f"/api/v1/reports/track/{token}").get_json()
    assert tracked["case"]["state"] == "closed" and tracked["rating"] is None
    assert [p["stage"] for p in tracked["photos"]] == ["after"]
    with client.get(tracked["photos"][0]["url"]) as public_copy:
        assert public_copy.status_code == 200 and public_copy.mimetype == "image/jpeg"

    bad = client.post(f"/api/v1/reports/track/{token}/rate", json={"rating": 9})
    assert bad.status_code == 422
    rated = client.post(f"/api/v1/reports/track/{token}/rate", json={"rating": 4, "note": "好"})
    assert rated.status_code == 200, rated.get_json()
    # The answer of a step, as a signed-in reporter's rating gets it: nothing left to do.
    answer = rated.get_json()
    assert (answer["id"], answer["state"], answer["action"]) == (case_id, "closed", "rate")
    assert answer["available_actions"] == [] and answer["history_id"] == count(
        "SELECT id FROM case_history WHERE case_id = :id AND action = 'rate'", id=case_id)
    twice = client.post(f"/api/v1/reports/track/{token}/rate", json={"rating": 1})
    assert twice.status_code == 409 and twice.get_json()["error"]["code"] == "already_rated"
    unknown = client.post("/api/v1/reports/track/nope/rate", json={"rating": 1})
    assert unknown.status_code == 404

    assert count("SELECT rating FROM cases WHERE id = :id", id=case_id) == 4
    assert count("SELECT count(*) FROM case_history WHERE case_id = :id AND action = 'rate'",
                 id=case_id) == 1
    assert client.get(f"/api/v1/reports/track/{token}").get_json()["rating"] == 4


def test_anyone_reads_the_region_tiles_with_shapes_codes_and_names_only(client, city):
    lon, lat = city.centre(0)
    client.post("/api/v1/reports", json={"lon": lon, "lat": lat, "category": "C0101"})
    import math
    z = 15
    x = int((lon + 180) / 360 * 2**z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)
    answer = client.get(f"/m/tiles/regions/{z}/{x}/{y}.pbf")
    assert answer.status_code == 200
    layer = mapbox_vector_tile.decode(answer.data)["regions"]
    assert {f["properties"]["level"] for f in layer["features"]} >= {"grid"}
    assert all(set(f["properties"]) == {"code", "name", "level"} for f in layer["features"])
    refused = client.get("/m/tiles/regions/30/0/0.pbf")
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "bad_tile_zoom"


def test_the_app_is_served_installable_from_this_site_alone(client, city):
    page = client.get("/m/", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    policy = page.headers["Content-Security-Policy"]
    # The first screen's scripts travel in the page; the policy runs them by their hashes.
    inline = re.findall(rb"<script(?: type=\"module\")?>(.*?)</script>", page.data, re.S)
    assert len(inline) == 2 and b"<script src" not in page.data
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'"
                      for s in inline)
    assert f"script-src 'self' {hashes};" in policy and "frame-ancestors 'none'" in policy
    compressed = client.get("/m/", headers={"Accept-Language": "en", "Accept-Encoding": "br"})
    assert compressed.headers["Content-Encoding"] == "br"
    assert brotli.decompress(compressed.data) == page.data
    assert b'rel="manifest" href="/m/manifest.webmanifest"' in page.data
    assert b"http://" not in page.data and b"https://" not in page.data

    manifest = client.get("/m/manifest.webmanifest").get_json(force=True)
    assert manifest["start_url"] == "/m/" and manifest["display"] == "standalone"
    sizes = {icon["sizes"] for icon in manifest["icons"]}
    assert {"192x192", "512x512"} <= sizes
    for icon in manifest["icons"]:
        with client.get(icon["src"]) as image:
            assert image.status_code == 200 and image.data[:8] == b"\x89PNG\r\n\x1a\n"

    with client.get("/m/sw.js") as worker:
        assert worker.status_code == 200 and worker.mimetype == "text/javascript"
        assert worker.headers["Service-Worker-Allowed"] == "/m/"


def test_a_grid_inspector_reads_the_map_hotspots_and_forecast_of_their_grid_and_no_other(
        client, city, make_user, auth_headers):
    inspector = make_user("inspector", region_code=city.grids[0])
    headers = auth_headers(inspector)
    x, y = tile_of(*city.centre(0), 16)

    tile = client.get(f"/maps/tiles/grids/16/{x}/{y}.pbf", headers=headers)
    assert tile.status_code == 200
    features = mapbox_vector_tile.decode(tile.data)["grids"]["features"]
    assert {f["properties"]["code"] for f in features} == {city.grids[0]}
    for path in ("/api/v1/hotspots", "/api/v1/forecast"):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["region"] == city.grids[0]
    for path in (f"/api/v1/hotspots?region={city.grids[1]}",
                 f"/api/v1/forecast?region={city.grids[1]}", "/api/v1/forecast?region=110105"):
        refused = client.get(path, headers=headers)
        assert refused.status_code == 403, path
        assert refused.get_json()["error"]["code"] == "forbidden"

    # The wall stays the command side's: an inspector's token does not open its feeds.
    assert client.get("/maps/feeds/stats", headers=headers).status_code == 403
    worker = make_user("department")
    for path in (f"/maps/tiles/grids/16/{x}/{y}.pbf", "/api/v1/forecast"):
        assert client.get(path, headers=auth_headers(worker)).status_code == 403, path
