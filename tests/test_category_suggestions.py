"""Categories suggested from what people write, learnt from each city's own cases.

The city's history and the held-back descriptions are two sets of citizens' own wording
written for the tests (tests/citizen_texts.py: 350 each, zh and en, five per subclass). Asked
about the 350 held-back ones, a matcher on the catalogue's names and keywords gets 42.9 %
first and 67.1 % in its top three; the suggester trained on the history 76.0 % and 91.7 %
(measured in the same run, printed by the test, which holds it to 75 %, 90 % and 25 points
above the catalogue).
"""

from __future__ import annotations

from citizen_texts import HELD_BACK, HISTORY, file_cases, labelled
from dispatch_world import POINT_A, build_city
from sqlalchemy import text

from gridmgr.categories.operations import load_default_catalogue
from gridmgr.cli import main
from gridmgr.extensions import db

GRID_A = "110101001001001"


def test_the_citizens_sets_cover_every_subclass_in_both_languages_and_share_no_text(app_ctx):
    history, held = labelled(HISTORY), labelled(HELD_BACK)
    load_default_catalogue()
    catalogue = set(db.session.scalars(text("SELECT code FROM categories")))
    assert len(held) >= 300 and len(history) >= 300
    for rows in (history, held):
        assert {r["code"] for r in rows} == catalogue
        assert {(r["code"], r["lang"]) for r in rows} == {
            (c, lang) for c in catalogue for lang in ("zh", "en")}
    assert not {r["text"] for r in history} & {r["text"] for r in held}


def _asked(client, rows: list[dict]) -> tuple[float, float, str]:
    """Top-1 and top-3 accuracy of the suggestions at POINT_A, and the first one's reason."""
    first = top3 = 0
    reason = ""
    for row in rows:
        answer = client.get("/api/v1/categories/suggest", query_string={
            "text": row["text"], "lon": POINT_A[0], "lat": POINT_A[1]})
        assert answer.status_code == 200
        suggestions = answer.get_json()["suggestions"]
        codes = [s["code"] for s in suggestions]
        assert len(codes) == 3
        first += codes[0] == row["code"]
        top3 += row["code"] in codes
        reason = suggestions[0]["reason"]
    return first / len(rows), top3 / len(rows), reason


def test_a_suggester_trained_on_the_citys_cases_names_citizens_wording_better_than_the_catalogue(
        app_ctx, client, runner):
    build_city()
    load_default_catalogue()
    held = labelled(HELD_BACK)
    names_first, names_top3, reason = _asked(client, held)
    assert "catalogue" in reason

    history = labelled(HISTORY)
    file_cases(history, GRID_A, POINT_A)
    trained = runner.invoke(main, args=["categories", "train"])
    assert trained.exit_code == 0, trained.output
    assert f"test-city: trained on {len(history)} cases" in trained.output
    first, top3, reason = _asked(client, held)
    assert "learnt from the city's cases" in reason

    print(f"held back {len(held)}: catalogue alone top-1 {names_first:.1%}, top-3 "
          f"{names_top3:.1%}; trained on {len(history)} cases top-1 {first:.1%}, "
          f"top-3 {top3:.1%}")
    assert first >= 0.75 and top3 >= 0.90
    assert first >= names_first + 0.25


def test_a_new_city_is_matched_on_the_catalogue_and_a_manhole_cover_is_among_manhole_covers(
        app_ctx, client):
    load_default_catalogue()
    answer = client.get("/api/v1/categories/suggest", query_string={"text": "井盖坏了"})
    assert answer.status_code == 200
    suggestions = answer.get_json()["suggestions"]
    assert len(suggestions) == 3
    assert all(s["code"].startswith("C010") for s in suggestions)
    assert all("catalogue" in s["reason"] and "井盖" in s["reason"] for s in suggestions)
    assert suggestions[0]["confidence"] >= suggestions[1]["confidence"]

    empty = client.get("/api/v1/categories/suggest", query_string={"text": ""})
    assert empty.status_code == 422


def test_a_report_without_a_category_says_which_it_took_and_why_or_files_it_uncategorised(
        app_ctx, client, make_user, auth_headers):
    build_city()
    load_default_catalogue()
    inspector = make_user("inspector", region_code="110101001001001")
    lon, lat = POINT_A

    vague = client.post("/api/v1/reports", headers=auth_headers(inspector), json={
        "lon": lon, "lat": lat, "description": "这里有点问题"})
    assert vague.status_code == 201, vague.get_json()
    choice = vague.get_json()["category_choice"]
    assert choice["code"] == "uncategorised" and "operator" in choice["reason"]
    assert db.session.scalar(text(
        "SELECT k.code FROM cases c JOIN categories k ON k.id = c.category_id")) == \
        "uncategorised"

    clear = client.post("/api/v1/reports", headers=auth_headers(inspector), json={
        "lon": lon, "lat": lat, "description": "地铁口有人乞讨"})
    assert clear.status_code == 201, clear.get_json()
    choice = clear.get_json()["category_choice"]
    assert choice["code"] == "E0507" and "confidence" in choice["reason"]


def test_a_city_with_one_category_is_suggested_nothing_and_training_it_is_refused(
        app_ctx, client):
    import pytest

    from gridmgr.categories import suggest
    from gridmgr.categories.suggest import train
    from gridmgr.errors import InvalidInput

    suggest._cache.clear()  # a catalogue an earlier test read is kept for a minute
    build_city()  # its catalogue: one category, E0101
    answer = client.get("/api/v1/categories/suggest", query_string={"text": "路边垃圾没人清理"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json() == {"suggestions": []}

    with pytest.raises(InvalidInput) as refused:
        train()
    assert refused.value.code == "too_few_categories"
    assert db.session.scalar(text("SELECT count(*) FROM category_suggesters")) == 0


def test_a_resent_report_without_a_category_gets_its_case_even_when_the_suggestion_changed(
        app, app_ctx, client, make_user, auth_headers):
    build_city()
    load_default_catalogue()
    inspector = make_user("inspector", region_code="110101001001001")
    lon, lat = POINT_A
    body = {"lon": lon, "lat": lat, "description": "地铁口有人乞讨", "client_id": "phone-7"}
    first = client.post("/api/v1/reports", headers=auth_headers(inspector), json=body)
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["category_choice"]["code"] == "E0507"

    # Retraining or a new threshold changes what the same words are filed under.
    threshold = app.config["GRIDMGR_CATEGORY_MIN_CONFIDENCE"]
    app.config["GRIDMGR_CATEGORY_MIN_CONFIDENCE"] = 1.01
    try:
        resend = client.post("/api/v1/reports", headers=auth_headers(inspector), json=body)
    finally:
        app.config["GRIDMGR_CATEGORY_MIN_CONFIDENCE"] = threshold
    assert resend.status_code == 200, resend.get_json()
    assert resend.get_json()["case"] == first.get_json()["case"]
    assert db.session.scalar(text("SELECT count(*) FROM cases")) == 1


def _city(slug: str, district: str, west: float, south: float) -> None:
    db.session.execute(text("""
        WITH c AS (INSERT INTO cities (slug, name, timezone) VALUES (:slug, :slug,
                   'Asia/Shanghai') RETURNING id)
        INSERT INTO regions (city_id, level, code, name, geom, area_m2)
        SELECT id, 'district', :district, :slug,
               ST_Multi(ST_MakeEnvelope(:w, :s, :w + 0.1, :s + 0.1, 4326)), 1e8 FROM c"""),
        {"slug": slug, "district": district, "w": west, "s": south})
    db.session.commit()


def test_each_city_learns_its_own_wording_and_a_city_with_few_cases_keeps_the_catalogue(
        app_ctx, client, runner):
    build_city()  # test-city, around POINT_A
    load_default_catalogue()
    _city("mountain-city", "500103", 106.5, 29.5)
    _city("new-city", "320102", 118.7, 32.0)
    mountain, new = (106.55, 29.55), (118.75, 32.05)
    # "坝坝烟" is one word in both cities' mouths: in test-city it has always meant a barbecue
    # in the yard, in mountain-city leaves burnt there.
    local = ["坝坝烟又起来了", "楼下坝坝烟呛人", "晚上坝坝烟好大", "又是坝坝烟，窗户都不敢开",
             "坝坝烟熏了一晚上", "院子里的坝坝烟天天有", "隔壁坝坝烟没完没了", "这周第三次坝坝烟"]
    history = labelled(HISTORY)
    file_cases(history[:150] + [{"text": t, "code": "E0506"} for t in local], GRID_A, POINT_A)
    file_cases(history[150:] + [{"text": t, "code": "E0106"} for t in local], "500103",
               mountain)
    file_cases(history[:5], "320102", new)

    trained = runner.invoke(main, args=["categories", "train"])
    assert trained.exit_code == 0, trained.output
    assert "mountain-city: trained on 208 cases" in trained.output
    assert "test-city: trained on 158 cases" in trained.output
    assert "new-city: 5 cases, fewer than 100; suggestions come from the catalogue" in \
        trained.output
    assert db.session.scalar(text("SELECT count(*) FROM category_suggesters")) == 2

    def first(point: tuple[float, float]) -> dict:
        answer = client.get("/api/v1/categories/suggest", query_string={
            "text": "坝坝烟熏得人受不了", "lon": point[0], "lat": point[1]})
        assert answer.status_code == 200
        return answer.get_json()["suggestions"][0]

    assert first(POINT_A)["code"] == "E0506"
    assert first(mountain)["code"] == "E0106"
    assert "learnt from the city's cases" in first(mountain)["reason"]
    assert "catalogue" in first(new)["reason"]

    # Trained alone, a city's suggester changes and the others' stay as they were.
    again = runner.invoke(main, args=["categories", "train", "--city", "new-city"])
    assert again.exit_code == 0 and "new-city: 5 cases" in again.output
    unknown = runner.invoke(main, args=["categories", "train", "--city", "atlantis"])
    assert unknown.exit_code == 1 and "city_not_found" in unknown.output
    assert db.session.scalar(text("SELECT count(*) FROM category_suggesters")) == 2
