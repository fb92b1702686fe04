"""Who sees what of a case: a citizen joins only a plausible duplicate, and joining never opens
another person's report; a citizen sees their own report and the public side of the rest,
never staff ids, staff notes, on-site points or the originals of staff photos."""

from __future__ import annotations

import io

from cityfixtures import city_fixture, jpeg_bytes, multipart  # noqa: F401
from sqlalchemy import text

from gridmgr.extensions import db

TABLES = ("cases", "reports", "case_history", "photos", "live_events")
ALICE_TEXT = "井盖破损，请打 13912345678 或写信 alice.w@example.cn"
ALICE_CONTACT = ("王爱丽", "13912345678", "alice.w@example.cn")
STAFF_NOTE = "施工队李师傅 13800001111 处理，内部记录"


def counts() -> dict:
    db.session.rollback()
    return {t: db.session.scalar(text(f"SELECT count(*) FROM {t}")) for t in TABLES}


def fetch(client, url, **kwargs):
    """GET a (streamed) photo and close the response."""
    response = client.get(url, **kwargs)
    response.get_data()
    response.close()
    return response


def step(client, headers, case_id, action, photos=None, **body):
    if photos:
        return client.post(f"/api/v1/cases/{case_id}/{action}", headers=headers,
                           **multipart({**{k: str(v) for k, v in body.items()},
                                        "photos": photos}))
    return client.post(f"/api/v1/cases/{case_id}/{action}", headers=headers, json=body)


def alices_case(client, city, headers, photo: bytes | None = None) -> tuple[int, float, float]:
    """Alice reports a broken manhole cover (C0101, radius 20 m) at a point with many decimals,
    with her phone and e-mail in the description and her contact details."""
    lon, lat = city.centre(0)
    lon, lat = lon + 0.0000123456, lat + 0.0000098765
    fields = {"lon": str(lon), "lat": str(lat), "category": "C0101",
              "description": ALICE_TEXT, "client_id": "alice-1",
              "contact_name": ALICE_CONTACT[0], "contact_phone": ALICE_CONTACT[1],
              "contact_email": ALICE_CONTACT[2]}
    if photo:
        fields["photos"] = [(io.BytesIO(photo), "cover.jpg")]
    answer = client.post("/api/v1/reports", headers=headers, **multipart(fields))
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["case"]["id"], lon, lat


def test_a_citizen_cannot_read_a_strangers_case_by_joining_it_from_afar_or_as_another_kind(
        client, city, make_user, auth_headers):
    alice, mallory = make_user("citizen"), make_user("citizen")
    case_id, lon, lat = alices_case(client, city, auth_headers(alice))
    before = counts()
    far_lon, far_lat = city.centre(3)  # about 250 m away, in another grid

    attempts = [
        {"lon": far_lon, "lat": far_lat, "category": "C0101"},  # far away
        {"lon": far_lon, "lat": far_lat},                        # far away, the case's kind
        {"lon": lon + 0.00005, "lat": lat, "category": "E0101"},  # near, another kind
        {"lon": lon + 0.00005, "lat": lat, "category": "C0101"},  # near, same kind
    ]
    for n, body in enumerate(attempts[:3]):
        for headers in (auth_headers(mallory), {}):  # signed in, and anonymous
            answer = client.post("/api/v1/reports", headers=headers, json={
                **body, "duplicate_of": case_id, "client_id": f"m-{n}",
                "description": "me too"})
            assert answer.status_code == 422, (body, answer.get_json())
            error = answer.get_json()["error"]
            assert error["code"] == "not_a_duplicate" and error["message"]
            assert counts() == before

    # Near and of the same kind, but reported longer ago than C0101's 72-hour window.
    db.session.execute(text("UPDATE cases SET created_at = now() - interval '73 hours'"))
    db.session.commit()
    before = counts()
    late = client.post("/api/v1/reports", headers=auth_headers(mallory), json={
        **attempts[3], "duplicate_of": case_id, "client_id": "m-late"})
    assert late.status_code == 422 and late.get_json()["error"]["code"] == "not_a_duplicate"
    assert counts() == before

    # Nothing was opened to her: the case stays Alice's alone.
    looked = client.get(f"/api/v1/cases/{case_id}", headers=auth_headers(mallory))
    assert looked.status_code == 403, looked.get_json()
    assert ALICE_CONTACT[1] not in looked.get_data(as_text=True)
    assert client.get("/api/v1/cases", headers=auth_headers(mallory)).get_json()["items"] == []


def test_an_operator_may_still_join_a_report_to_a_case_by_decision(
        client, city, make_user, auth_headers):
    alice, operator = make_user("citizen"), make_user("operator")
    case_id, _, _ = alices_case(client, city, auth_headers(alice))
    far_lon, far_lat = city.centre(3)
    answer = client.post("/api/v1/reports", headers=auth_headers(operator), json={
        "lon": far_lon, "lat": far_lat, "category": "E0101", "duplicate_of": case_id,
        "client_id": "op-1", "channel": "hotline"})
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["case"]["id"] == case_id
    assert db.session.scalar(text("SELECT reporter_count FROM cases")) == 2


def test_a_neighbour_who_joins_sees_only_the_public_view_of_the_case(
        client, city, make_user, auth_headers):
    alice, bob = make_user("citizen"), make_user("citizen")
    case_id, lon, lat = alices_case(client, city, auth_headers(alice),
                                    photo=jpeg_bytes(gps=city.centre(0)))
    joined = client.post("/api/v1/reports", headers=auth_headers(bob), json={
        "lon": lon + 0.0001, "lat": lat, "category": "C0101", "duplicate_of": case_id,
        "description": "我也看到了", "contact_phone": "13700000000", "client_id": "bob-1"})
    assert joined.status_code == 201, joined.get_json()
    bobs_report = joined.get_json()["report"]["id"]

    answer = client.get(f"/api/v1/cases/{case_id}", headers=auth_headers(bob))
    assert answer.status_code == 200, answer.get_json()
    seen, raw = answer.get_json(), answer.get_data(as_text=True)
    # No trace of Alice: her id, her contact details, her words as she wrote them.
    for secret in (*ALICE_CONTACT, ALICE_TEXT):
        assert secret not in raw, secret
    assert seen["description"] == "井盖破损，请打 [redacted] 或写信 [redacted]"
    assert {h["actor_id"] for h in seen["history"]} == {None, bob.id}
    assert [(r["id"], r["reporter_id"]) for r in seen["reports"]] == [(bobs_report, bob.id)]
    assert seen["reports"][0]["description"] == "我也看到了"
    # Her point only as the city publishes it; no step's point at all.
    assert (seen["lon"], seen["lat"]) == (round(lon, 4), round(lat, 4)) != (lon, lat)
    assert all(h["lon"] is None and h["lat"] is None and h["note"] is None
               for h in seen["history"])
    # Her photo: the public copy, never the original with its EXIF.
    [photo] = seen["photos"]
    assert photo["original_url"] is None and photo["report_id"] is None
    assert fetch(client, photo["url"], headers=auth_headers(bob)).status_code == 200
    assert fetch(client, f"/api/v1/photos/{photo['sha256']}?size=original",
                 headers=auth_headers(bob)).status_code == 403
    # The lists and the sync show the same public view.
    for url in ("/api/v1/cases", "/api/v1/sync"):
        listed = client.get(url, headers=auth_headers(bob))
        assert listed.status_code == 200
        [item] = listed.get_json()["items"]
        assert item["id"] == case_id and (item["lon"], item["lat"]) == (round(lon, 4),
                                                                        round(lat, 4))
        for secret in ALICE_CONTACT:
            assert secret not in listed.get_data(as_text=True)

    # Alice sees her own report as she sent it, and nothing of Bob's.
    hers = client.get(f"/api/v1/cases/{case_id}", headers=auth_headers(alice)).get_json()
    assert [r["reporter_id"] for r in hers["reports"]] == [alice.id]
    assert hers["reports"][0]["description"] == ALICE_TEXT
    assert hers["reports"][0]["contact_phone"] == ALICE_CONTACT[1]
    assert (hers["reports"][0]["lon"], hers["reports"][0]["lat"]) == (lon, lat)
    assert hers["photos"][0]["original_url"]  # her own upload
    assert "13700000000" not in str(hers) and bob.id not in {
        h["actor_id"] for h in hers["history"]}


def test_a_citizen_sees_the_public_side_of_a_departments_handling_of_their_case(
        client, city, make_user, auth_headers):
    citizen = make_user("citizen")
    inspector = make_user("inspector", region_code=city.grids[0])
    chief = make_user("duty_chief")
    case_id, lon, lat = alices_case(client, city, auth_headers(citizen))
    onsite = (lon + 0.00003, lat + 0.00002)
    assert step(client, auth_headers(inspector), case_id, "verify", lon=onsite[0],
                lat=onsite[1], note="现场核实，" + STAFF_NOTE).status_code == 200
    assert step(client, auth_headers(chief), case_id, "file").status_code == 200
    assert step(client, auth_headers(chief), case_id, "dispatch").status_code == 200
    department = db.session.scalar(text(
        "SELECT d.name FROM cases c JOIN departments d ON d.id = c.department_id"))
    worker = make_user("department", department=department)
    assert step(client, auth_headers(worker), case_id, "accept").status_code == 200
    after = jpeg_bytes(gps=onsite, color="green")
    handled = step(client, auth_headers(worker), case_id, "handle", lon=onsite[0],
                   lat=onsite[1], note=STAFF_NOTE,
                   photos=[(io.BytesIO(after), "after.jpg")])
    assert handled.status_code == 200, handled.get_json()

    # Staff see the whole case: who, where, their notes.
    full = client.get(f"/api/v1/cases/{case_id}", headers=auth_headers(chief)).get_json()
    assert {inspector.id, chief.id, worker.id} <= {h["actor_id"] for h in full["history"]}
    assert STAFF_NOTE in full["history"][-1]["note"]
    assert full["photos"][0]["original_url"]

    answer = client.get(f"/api/v1/cases/{case_id}", headers=auth_headers(citizen))
    assert answer.status_code == 200
    seen, raw = answer.get_json(), answer.get_data(as_text=True)
    assert [h["action"] for h in seen["history"]] == [
        "report", "verify", "file", "dispatch", "accept", "handle"]
    assert {h["actor_id"] for h in seen["history"]} == {None, citizen.id}
    assert (seen["worker_id"], seen["handler_id"], seen["verified_by_id"]) == (None,) * 3
    assert STAFF_NOTE not in raw and "13800001111" not in raw
    assert all(h["note"] is None and h["details"] == {} and h["lon"] is None
               and h["lat"] is None for h in seen["history"])
    assert str(onsite[0]) not in raw and str(round(onsite[0], 6)) not in raw
    # Her own report, as she sent it.
    assert seen["reports"][0]["contact_phone"] == ALICE_CONTACT[1]

    [photo] = seen["photos"]
    assert photo["stage"] == "after" and photo["original_url"] is None
    assert photo["sha256"] in seen["history"][-1]["photos"]
    public = fetch(client, photo["url"], headers=auth_headers(citizen))
    assert public.status_code == 200 and public.mimetype == "image/jpeg"
    original = f"/api/v1/photos/{photo['sha256']}?size=original"
    refused = fetch(client, original, headers=auth_headers(citizen))
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "forbidden"
    assert fetch(client, original, headers=auth_headers(worker)).data == after
    assert fetch(client, original, headers=auth_headers(chief)).status_code == 200
