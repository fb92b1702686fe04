"""Stories around the whole loop, one per role, through the mobile API."""

from __future__ import annotations

import io

from cityfixtures import city_fixture, jpeg_bytes  # noqa: F401
from sqlalchemy import text

from gridmgr.extensions import db


def photo(name: str = "after.jpg", **kwargs):
    return (io.BytesIO(jpeg_bytes(**kwargs)), name)


def step(client, headers, case_id, action, **body):
    files = body.pop("photos", None)
    if files:
        return client.post(f"/api/v1/cases/{case_id}/{action}", headers=headers,
                           data={**{k: str(v) for k, v in body.items()}, "photos": files},
                           content_type="multipart/form-data")
    return client.post(f"/api/v1/cases/{case_id}/{action}", headers=headers, json=body)


def history_actions(case_id):
    return db.session.execute(text(
        "SELECT action FROM case_history WHERE case_id = :id ORDER BY id"), {"id": case_id}
    ).scalars().all()


def test_a_citizen_report_goes_around_the_whole_loop(client, city, make_user, auth_headers):
    citizen = make_user("citizen")
    inspector = make_user("inspector", region_code=city.grids[0])
    checker = make_user("inspector", region_code="110105001")
    chief = make_user("duty_chief", region_code="110105")
    lon, lat = city.centre(0)

    answer = client.post("/api/v1/reports", headers=auth_headers(citizen), json={
        "lon": lon, "lat": lat, "category": "C0101", "description": "井盖破损",
        "channel": "app", "client_id": "phone-1-0001",
        "contact_name": "张三", "contact_phone": "13800000000"})
    assert answer.status_code == 201, answer.get_json()
    case_id = answer.get_json()["case"]["id"]
    assert answer.get_json()["case"]["state"] == "reported"

    # A citizen's report must be verified on site before it is filed.
    refused = step(client, auth_headers(chief), case_id, "file")
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "verification_required"

    verified = step(client, auth_headers(inspector), case_id, "verify", lon=lon, lat=lat,
                    note="确认井盖破损")
    assert verified.status_code == 200, verified.get_json()
    assert step(client, auth_headers(chief), case_id, "file").status_code == 200

    dispatched = step(client, auth_headers(chief), case_id, "dispatch")
    assert dispatched.status_code == 200, dispatched.get_json()
    assert dispatched.get_json()["deadline"] is not None
    department_id = db.session.scalar(text("SELECT department_id FROM cases WHERE id = :id"),
                                      {"id": case_id})
    assert department_id is not None  # the category's responsible department
    staff = make_user("department", department=db.session.scalar(text(
        "SELECT name FROM departments WHERE id = :id"), {"id": department_id}))

    assert step(client, auth_headers(staff), case_id, "accept").status_code == 200
    no_photo = step(client, auth_headers(staff), case_id, "handle", lon=lon, lat=lat)
    assert no_photo.get_json()["error"]["code"] == "photo_required"
    far = step(client, auth_headers(staff), case_id, "handle", lon=lon + 0.01, lat=lat,
               photos=[photo()])
    assert far.status_code == 422 and far.get_json()["error"]["code"] == "too_far"
    handled = step(client, auth_headers(staff), case_id, "handle", lon=lon, lat=lat,
                   note="已更换井盖", photos=[photo()])
    assert handled.status_code == 200, handled.get_json()

    checked = step(client, auth_headers(checker), case_id, "check", lon=lon, lat=lat)
    assert checked.status_code == 200, checked.get_json()
    assert step(client, auth_headers(chief), case_id, "close").status_code == 200
    rated = step(client, auth_headers(citizen), case_id, "rate", rating=5, note="很快")
    assert rated.status_code == 200, rated.get_json()
    assert step(client, auth_headers(citizen), case_id, "rate", rating=1).status_code == 409

    assert history_actions(case_id) == ["report", "verify", "file", "dispatch", "accept",
                                        "handle", "check", "close", "rate"]
    detail = client.get(f"/api/v1/cases/{case_id}", headers=auth_headers(citizen)).get_json()
    assert detail["state"] == "closed" and detail["rating"] == 5
    assert [p["stage"] for p in detail["photos"]] == ["after"]
    assert detail["reports"][0]["contact_phone"] == "13800000000"
    hidden = client.get(f"/api/v1/cases/{case_id}", headers=auth_headers(staff)).get_json()
    assert "reports" not in hidden
