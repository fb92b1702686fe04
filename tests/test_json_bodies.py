"""A report or case step read by msgspec loads to what its marshmallow schema gives, or goes to
the schema: a phone never gets a different answer because its body took the quick way."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from gridmgr.calendar.deadlines import UNITS
from gridmgr.cases.models import CHANNELS
from gridmgr.geo.coords import COORD_SYSTEMS
from mobile_api.cases import CASE_STEP_SCHEMA
from mobile_api.json_bodies import quick_load
from mobile_api.reports import REPORT_SCHEMA

SCHEMAS = (REPORT_SCHEMA, CASE_STEP_SCHEMA)

# Values near every rule's edges: ranges, lengths, choices, patterns, wrong types.
VALUES = st.one_of(
    st.none(), st.booleans(),
    st.integers(-2**70, 2**70), st.sampled_from([0, 1, 5, 6, -180, 180, 181, -91, 90, 2**62]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([179.999, -180.0, 90.0, 90.0001, 10_000.0, 0.0, 1e308]),
    st.text(max_size=70), st.text(alphabet="ab._:-9 中", min_size=0, max_size=66),
    st.sampled_from(["wgs84", "gcj02", "bd09", "WGS84", "app", "patrol", "fax",
                     "working_hours", "C0101", "x" * 32, "x" * 33, "a@b.cn", "2026-01-01"]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                         max_size=2),
)

TEXT = st.text(max_size=8) | st.sampled_from(["", "x" * 32, "x" * 33, "x" * 64, "x" * 65,
                                              "x" * 200, "x" * 201, "x" * 4000, "x" * 4001])
# Per field: values that pass its rules or just miss them.
FIELD_VALUES = {
    "lon": st.floats(-181, 181) | st.integers(-181, 181), "lat": st.floats(-91, 91),
    "coord_sys": st.sampled_from([*COORD_SYSTEMS, "WGS84", ""]),
    "channel": st.sampled_from([*CHANNELS, "fax"]),
    "unit": st.sampled_from([*UNITS, "weeks"]),
    "client_id": st.text(alphabet="Az09._:-/ 中", max_size=66),
    "duplicate_of": st.integers(-1, 2**63), "rating": st.integers(0, 6) | st.floats(0, 6),
    "amount": st.floats(-1, 10_001) | st.just(0), "passed": st.booleans() | st.integers(0, 1),
    "valid": st.booleans(), "contact_email": st.sampled_from(["a@b.cn", "not-mail"]),
}


@st.composite
def bodies(draw):
    """A schema, and a body of its own fields (now and then another key) with values that
    pass or just miss its rules."""
    schema = draw(st.sampled_from(SCHEMAS))
    keys = draw(st.lists(st.sampled_from(sorted(schema.fields) + ["extra"]), max_size=5,
                         unique=True))
    pool = {key: FIELD_VALUES.get(key, TEXT) for key in keys}
    # Mostly the field's own values, so that many bodies pass; now and then any value.
    return schema, {key: draw(draw(st.sampled_from([pool[key]] * 4 + [VALUES])))
                    for key in keys}


@settings(max_examples=1500, deadline=None)
@given(case=bodies())
def test_a_body_msgspec_accepts_loads_as_the_schema_loads_it(case):
    schema, body = case
    raw = json.dumps(body).encode()
    quick = quick_load(schema).load(raw)
    if quick is None:
        return  # the schema decides, as before
    try:
        expected = schema.load(json.loads(raw))
    except ValidationError as exc:
        raise AssertionError(f"msgspec accepted what the schema refuses: {exc.messages}") from exc
    assert quick == expected
    assert [type(v) for v in quick.values()] == [type(expected[k]) for k in quick]


def test_the_common_report_takes_the_quick_way_and_unusual_fields_do_not():
    quick = quick_load(REPORT_SCHEMA)
    report = {"lon": 106.577, "lat": 29.5477, "category": "C0101", "client_id": "p1-7",
              "description": "井盖破损 broken cover"}
    assert quick.load(json.dumps(report).encode()) == REPORT_SCHEMA.load(report)
    # An e-mail rule, a dict and an unknown key are the schema's alone.
    for extra in ({"contact_email": "a@b.cn"}, {"attributes": {"k": "v"}}, {"extra": 1}):
        assert quick.load(json.dumps({**report, **extra}).encode()) is None
    # Wrong types and broken JSON too, so that the schema's error is the one given.
    assert quick.load(b'{"lon": "east", "lat": 29.5}') is None
    assert quick.load(b'{"lon": 106.5,') is None
    assert quick.load('{"lon": 106.5}'.encode("utf-16")) is None
