"""A citizen's name, phone and e-mail never leave through a public interface: not through
Open311 (JSON or XML, with or without extensions), not through open data or its dump."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from open311_world import IN_WEST, build_world, verify_and_file
from sqlalchemy import select

from gridmgr.cases.models import Case, Report
from gridmgr.cli import main
from gridmgr.extensions import db

NAME = ("Xiaoming", "Zhangsan")
PHONE = "13912345678"
EMAIL = "zhang.xiaoming@example.cn"
PERSONAL = [NAME[0], NAME[1], PHONE, EMAIL, "139-1234-5678", "010-62345678"]


def test_nothing_personal_in_any_public_output(client, runner, app_ctx, tmp_path):
    world = build_world()
    answer = client.post("/open311/v2/requests.json", data={
        "api_key": world.api_key, "service_code": "C9801", "lat": IN_WEST[1],
        "long": IN_WEST[0], "first_name": NAME[0], "last_name": NAME[1], "phone": PHONE,
        "email": EMAIL,
        "description": f"Lamp out. Call me on 139-1234-5678 or 010-62345678, {EMAIL}"})
    assert answer.status_code == 200, answer.data
    code = answer.get_json()[0]["service_request_id"]
    token = answer.get_json()[0]["token"]
    case = db.session.scalar(select(Case).where(Case.code == code))
    verify_and_file(world, case.id, note=f"Called the reporter back on {PHONE}.")

    # The contact details were kept, privately, for the city's staff.
    report = db.session.scalar(select(Report))
    assert (report.contact_name, report.contact_phone, report.contact_email) == (
        "Xiaoming Zhangsan", PHONE, EMAIL)

    outputs = {}
    for fmt in ("json", "xml"):
        for path in ("discovery", "services", "services/C9801", "requests",
                     "requests?extensions=true", f"requests/{code}",
                     f"requests/{code}?extensions=true", f"tokens/{token}",
                     "servicerequestupdates"):
            base, _, query = path.partition("?")
            url = f"/open311/v2/{base}.{fmt}" + (f"?{query}" if query else "")
            response = client.get(url)
            assert response.status_code == 200, (url, response.data)
            outputs[url] = response.get_data(as_text=True)
    for url in ("/open-data/cases.geojson", "/open-data/cases.csv",
                "/open-data/regions.geojson?level=grid"):
        response = client.get(url)
        assert response.status_code == 200
        outputs[url] = response.get_data(as_text=True)
    assert runner.invoke(main, args=["export", "--out", str(tmp_path), "--date",
                                     case.created_at.astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()]
                         ).exit_code == 0
    for path in tmp_path.rglob("*"):
        if path.is_file():
            outputs[str(path)] = path.read_text(encoding="utf-8")

    assert code in outputs["/open311/v2/requests.json"]
    assert "Lamp out. Call me on [redacted]" in outputs["/open311/v2/requests.json"]
    for where, text in outputs.items():
        for secret in PERSONAL:
            assert secret not in text, f"{secret!r} leaked through {where}"
