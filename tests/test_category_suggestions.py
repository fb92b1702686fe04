"""Categories suggested from what people write, learnt from the city's own cases.

The labelled descriptions (tests/data/category_texts.csv: 350, zh and en, every subclass of
the catalogue) are split once: three quarters become the city's cases, the rest (87) is held
back and only asked about. On it the suggester gets 84 % first and 92 % in its top three;
the test holds it to 75 % and 90 %.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from dispatch_world import POINT_A, build_city
from sqlalchemy import text

from gridmgr.categories.operations import load_default_catalogue
from gridmgr.cli import main
from gridmgr.extensions import db

TEXTS = Path(__file__).parent / "data" / "category_texts.csv"


def _rows() -> list[dict]:
    with TEXTS.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _split() -> tuple[list[dict], list[dict]]:
    rows = _rows()
    random.Random(7).shuffle(rows)
    held = len(rows) // 4
    return rows[held:], rows[:held]


def _cases(rows: list[dict]) -> None:
    """The city's past cases: each description filed under its category."""
    lon, lat = POINT_A
    db.session.execute(text("""
        INSERT INTO cases (id, code, city_id, state, source, channel, category_id, region_id,
                           grid_code, location, description)
        SELECT n, 'T' || n, r.city_id, 'closed', 'inspector', 'app', k.id, r.id, r.code,
               ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :text
        FROM (SELECT nextval('cases_id_seq') AS n) s, regions r, categories k
        WHERE r.code = '110101001001001' AND k.code = :code"""),
        [{"lon": lon, "lat": lat, "text": r["text"], "code": r["code"]} for r in rows])
    db.session.commit()


def test_the_labelled_set_covers_every_subclass_in_both_languages(app_ctx):
    rows = _rows()
    load_default_catalogue()
    catalogue = set(db.session.scalars(text("SELECT code FROM categories")))
    assert len(rows) >= 300
    assert {r["code"] for r in rows} == catalogue
    assert {r["lang"] for r in rows} == {"zh", "en"}


def test_a_suggester_trained_on_the_citys_cases_names_the_held_back_descriptions(
        app_ctx, client, runner):
    build_city()
    load_default_catalogue()
    train, held = _split()
    _cases(train)
    trained = runner.invoke(main, args=["categories", "train"])
    assert trained.exit_code == 0, trained.output
    assert f"trained on {len(train)} cases" in trained.output

    first = top3 = 0
    for row in held:
        answer = client.get("/api/v1/categories/suggest", query_string={
            "text": row["text"], "lon": POINT_A[0], "lat": POINT_A[1]})
        assert answer.status_code == 200
        codes = [s["code"] for s in answer.get_json()["suggestions"]]
        assert len(codes) == 3
        first += codes[0] == row["code"]
        top3 += row["code"] in codes
    print(f"held back {len(held)}: top-1 {first / len(held):.0%}, top-3 {top3 / len(held):.0%}")
    assert first / len(held) >= 0.75
    assert top3 / len(held) >= 0.90


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
