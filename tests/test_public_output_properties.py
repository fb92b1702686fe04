"""Whatever text old rows hold (written straight into the database, as imported history and
rows from before intake checked text were), every public output stays well formed: GeoReport
JSON and XML (lists and one request), open-data CSV and GeoJSON, the statistics CSVs. A strict
reader parses each one, every CSV line is as wide as its header, no cell starts a formula."""

from __future__ import annotations

import pytest
from evaluation_world import build_month
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from public_outputs import OPEN311_WINDOW, public_documents
from sqlalchemy import text

from gridmgr.extensions import db
from gridmgr.opendata.redaction import redact
from gridmgr.people.models import User

# When a report may be published is the privacy sweep's story (test_privacy_sweep.py).
pytestmark = pytest.mark.usefixtures("publish_at_once")

K2 = "20261100000002"

# Any text PostgreSQL can hold (it refuses NUL), with the awkward characters made frequent:
# those XML forbids, formula starters, markup and CSV syntax.
AWKWARD = ["\x01", "\x08", "\x0b", "\x0c", "\x1f", "\ufffe", "\uffff", "=", "+", "-", "@",
           "\t", "\r", "\n", "\r\n", '"', "'", ",", "<", "&", "]]>", "\u2028", "\x85", "１"]
stored_text = st.lists(
    st.one_of(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8),
              st.sampled_from(AWKWARD)),
    max_size=12).map("".join).filter(lambda s: len(s) <= 200)


@pytest.fixture
def month(app_ctx, make_user):
    return build_month(make_user)


def _store(sql: str, **params) -> None:
    db.session.execute(text(sql), params)
    db.session.commit()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(description=stored_text, address=stored_text, display_name=stored_text,
       department=stored_text, category=stored_text, note=stored_text)
def test_any_stored_text_gives_well_formed_public_outputs(client, auth_headers, month,
                                                          description, address, display_name,
                                                          department, category, note):
    _store("UPDATE cases SET description = :v WHERE code = :code", v=description, code=K2)
    _store("UPDATE regions SET name = :v WHERE code IN ('110105', '110105001001001')",
           v=address)
    _store("UPDATE users SET display_name = :v WHERE username = 'insp1'", v=display_name)
    _store("UPDATE departments SET name = :v WHERE id = :id", v="部门" + department,
           id=month["departments"]["D1"])
    _store("UPDATE categories SET name_zh = :v, name_en = :v WHERE code = 'T0101'", v=category)
    _store("INSERT INTO case_history (case_id, actor_role, action, from_state, to_state, at, "
           "note) SELECT id, 'operator', 'cancel', state, 'cancelled', "
           "'2026-11-30T10:00:00+08:00', :n "
           "FROM cases WHERE code = :code", n=note, code=K2)
    chief = auth_headers(db.session.get(User, month["users"]["chief"]))

    documents = public_documents(client, K2, chief)  # parses and checks every document

    [one] = documents[f"/open311/v2/requests/{K2}.json"]
    assert one["description"] == redact(description)
    listed = {r["service_request_id"]: r
              for r in documents[f"/open311/v2/requests.json?{OPEN311_WINDOW}"]}
    assert listed[K2]["description"] == one["description"]
    xml = documents[f"/open311/v2/requests/{K2}.xml"].find("request/description").text
    # an XML parser reads every line break as a line feed
    assert (xml or "") == (one["description"] or "").replace("\r\n", "\n").replace("\r", "\n")
    features = documents["/open-data/cases.geojson"]["features"]
    assert len(features) == len(documents["/open-data/cases.csv"]) == 11
    people = documents["/api/v1/stats/people?period=2026-11&format=csv"]
    assert {row["username"] for row in people} >= {"insp1", "insp2"}
