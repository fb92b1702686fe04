"""Reports at a component (部件): routed to its owner, and the components nearby suggested."""

from __future__ import annotations

import json

from dispatch_world import POINT_A, build_city
from sqlalchemy import text

from gridmgr.cases.workflow import StepInput, take_step
from gridmgr.categories.operations import load_default_catalogue
from gridmgr.components.importing import import_components
from gridmgr.extensions import db

LAMP_CODE = "1101010111000001"
FAR_LAMP_CODE = "1101010111000002"


def _lamps(tmp_path) -> None:
    """Two lamps: one at grid A owned by the power company (not the lamps' department, the
    municipal commission), and one about 100 m east."""
    build_city()
    load_default_catalogue()
    db.session.execute(text("UPDATE categories SET auto_dispatch = true WHERE code = 'C0111'"))
    db.session.commit()
    lon, lat = POINT_A
    features = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
         "properties": {"标识码": LAMP_CODE, "名称": "解放路1号路灯", "类别": "C0111",
                        "权属单位": "供电公司"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon + 0.0012, lat]},
         "properties": {"标识码": FAR_LAMP_CODE, "名称": "解放路2号路灯", "类别": "C0111"}},
    ]
    path = tmp_path / "lamps.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    import_components(path)


def _department(name: str) -> int:
    return db.session.scalar(text("SELECT id FROM departments WHERE name = :n"), {"n": name})


def test_a_report_at_a_lamp_owned_by_another_department_is_dispatched_to_that_owner(
        app_ctx, client, make_user, auth_headers, tmp_path):
    _lamps(tmp_path)
    inspector = make_user("inspector", region_code="110101001001001")
    operator = make_user("operator")

    answer = client.post("/api/v1/reports", headers=auth_headers(inspector), json={
        "component": LAMP_CODE, "description": "路灯不亮"})

    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["category_choice"]["code"] == "C0111"
    case_id = body["case"]["id"]
    take_step(case_id, "file", operator, StepInput())
    department = db.session.scalar(text("SELECT department_id FROM cases WHERE id = :i"),
                                   {"i": case_id})
    assert department == _department("供电公司") != _department("市政管理委员会")
    # The lamp's page lists the case.
    page = client.get(f"/api/v1/components/{LAMP_CODE}", headers=auth_headers(operator))
    assert [c["id"] for c in page.get_json()["properties"]["cases"]] == [case_id]


def test_a_lamp_report_without_a_component_is_told_the_lamps_nearby_and_goes_by_category(
        app_ctx, client, make_user, auth_headers, tmp_path):
    _lamps(tmp_path)
    inspector = make_user("inspector", region_code="110101001001001")
    operator = make_user("operator")
    lon, lat = POINT_A

    answer = client.post("/api/v1/reports", headers=auth_headers(inspector), json={
        "category": "C0111", "lon": lon + 0.0001, "lat": lat, "description": "灯不亮"})

    assert answer.status_code == 201, answer.get_json()
    nearby = answer.get_json()["nearby_components"]
    assert [c["code"] for c in nearby] == [LAMP_CODE]  # the other lamp is ~100 m away
    assert 5 < nearby[0]["distance_m"] < 15
    case_id = answer.get_json()["case"]["id"]
    take_step(case_id, "file", operator, StepInput())
    department = db.session.scalar(text("SELECT department_id FROM cases WHERE id = :i"),
                                   {"i": case_id})
    assert department == _department("市政管理委员会")


def test_a_report_naming_an_unknown_component_is_refused_and_nothing_is_stored(
        app_ctx, client, make_user, auth_headers, tmp_path):
    _lamps(tmp_path)
    inspector = make_user("inspector", region_code="110101001001001")

    answer = client.post("/api/v1/reports", headers=auth_headers(inspector), json={
        "component": "1101010111999999", "description": "路灯不亮"})

    assert answer.status_code == 422
    assert answer.get_json()["error"]["code"] == "unknown_component"
    assert db.session.scalar(text("SELECT count(*) FROM cases")) == 0


def test_components_answer_by_bbox_with_parties_for_staff_only(
        app_ctx, client, make_user, auth_headers, tmp_path):
    _lamps(tmp_path)
    lon, lat = POINT_A
    bbox = f"{lon - 0.0005},{lat - 0.0005},{lon + 0.0005},{lat + 0.0005}"

    anonymous = client.get(f"/api/v1/components?bbox={bbox}&category=C0111")
    assert anonymous.status_code == 200
    features = anonymous.get_json()["features"]
    assert [f["id"] for f in features] == [LAMP_CODE]
    assert "owner" not in features[0]["properties"]
    staff = client.get(f"/api/v1/components?bbox={bbox}",
                       headers=auth_headers(make_user("duty_chief")))
    assert staff.get_json()["features"][0]["properties"]["owner"] == "供电公司"
    assert client.get(f"/api/v1/components?bbox={bbox}&state=broken").status_code == 422


def test_an_administrator_edits_a_component_and_the_change_is_in_its_history(
        app_ctx, client, make_user, auth_headers, tmp_path):
    _lamps(tmp_path)
    inspector = make_user("inspector")
    refused = client.patch(f"/api/v1/admin/components/{LAMP_CODE}",
                           headers=auth_headers(inspector), json={"state": "damaged"})
    assert refused.status_code == 403
    assert db.session.scalar(text("SELECT state FROM components WHERE code = :c"),
                             {"c": LAMP_CODE}) == "intact"

    admin = make_user("admin")
    done = client.patch(f"/api/v1/admin/components/{LAMP_CODE}", headers=auth_headers(admin),
                        json={"state": "damaged", "owner": "市政管理委员会"})
    assert done.status_code == 200, done.get_json()
    history = done.get_json()["properties"]["history"]
    assert history[-1]["action"] == "edited"
    assert history[-1]["changes"]["before"] == {"state": "intact", "owner": "供电公司"}
    assert db.session.scalar(text(
        "SELECT owner_department_id FROM components WHERE code = :c"),
        {"c": LAMP_CODE}) == _department("市政管理委员会")


def _lamp_state() -> tuple[str, list]:
    state = db.session.scalar(text("SELECT state FROM components WHERE code = :c"),
                              {"c": LAMP_CODE})
    history = db.session.execute(text("""
        SELECT h.action, h.case_id FROM component_history h JOIN components c
        ON c.id = h.component_id WHERE c.code = :c AND h.action <> 'imported'"""),
        {"c": LAMP_CODE}).all()
    return state, [tuple(r) for r in history]


def test_a_closed_case_sets_its_lamp_repaired_and_an_open_one_is_refused(
        app_ctx, client, make_user, auth_headers, tmp_path):
    _lamps(tmp_path)
    db.session.execute(text("UPDATE components SET state = 'damaged' WHERE code = :c"),
                       {"c": LAMP_CODE})
    db.session.commit()
    inspector = make_user("inspector", region_code="110101001001001")
    chief = make_user("duty_chief")
    answer = client.post("/api/v1/reports", headers=auth_headers(inspector), json={
        "component": LAMP_CODE, "description": "路灯灯罩破损"})
    case_id = answer.get_json()["case"]["id"]
    path = f"/api/v1/cases/{case_id}/component-state"

    # The case is still open: its lamp keeps its state and its history.
    still_open = client.post(path, headers=auth_headers(chief), json={"state": "intact"})
    assert still_open.status_code == 409
    assert still_open.get_json()["error"]["code"] == "case_not_closed"
    assert _lamp_state() == ("damaged", [])
    # A state that does not exist is refused too.
    unknown = client.post(path, headers=auth_headers(chief), json={"state": "repaired"})
    assert unknown.status_code == 422 and _lamp_state() == ("damaged", [])
    # An inspector may not close cases, so may not set the lamp's state after one either.
    assert client.post(path, headers=auth_headers(inspector),
                       json={"state": "intact"}).status_code == 403

    # Handled, checked and closed (the workflow's own tests walk these steps).
    db.session.execute(text("UPDATE cases SET state = 'closed', closed_at = now() "
                            "WHERE id = :i"), {"i": case_id})
    db.session.commit()
    repaired = client.post(path, headers=auth_headers(chief), json={"state": "intact"})

    assert repaired.status_code == 200, repaired.get_json()
    assert repaired.get_json()["properties"]["state"] == "intact"
    assert _lamp_state() == ("intact", [("state_after_case", case_id)])
    public = client.get(f"/api/v1/components/{LAMP_CODE}").get_json()
    assert public["properties"]["state"] == "intact"
