"""Photos: EXIF location fills a report without one, public copies lose their EXIF, thumbnails
exist, originals are private, and nothing is named after the upload."""

from __future__ import annotations

import io
from pathlib import Path

from cityfixtures import city_fixture, jpeg_bytes, multipart, png_bytes  # noqa: F401
from PIL import Image
from sqlalchemy import text

from gridmgr.extensions import db


def fetch(client, url, **kwargs):
    """GET a (streamed) photo and close the response."""
    response = client.get(url, **kwargs)
    response.get_data()
    response.close()
    return response


def test_a_photo_with_gps_locates_a_report_and_its_public_copy_has_no_exif(
        app, client, city, make_user, auth_headers):
    citizen = make_user("citizen")
    chief = make_user("duty_chief")
    other = make_user("citizen")
    lon, lat = city.centre(3)
    original = jpeg_bytes(gps=(lon, lat))
    answer = client.post("/api/v1/reports", headers=auth_headers(citizen), **multipart({
        "category": "C0101", "client_id": "exif-1",
        "photos": [(io.BytesIO(original), "../../etc/passwd.jpg"),
                   (io.BytesIO(png_bytes()), "x.png")]}))
    assert answer.status_code == 201, answer.get_json()
    grid = db.session.scalar(text("SELECT grid_code FROM cases"))
    assert grid == city.grids[3]

    detail = client.get(f"/api/v1/cases/{answer.get_json()['case']['id']}",
                        headers=auth_headers(citizen)).get_json()
    assert [p["mime"] for p in detail["photos"]] == ["image/jpeg", "image/png"]
    sha = detail["photos"][0]["sha256"]

    public = fetch(client, f"/api/v1/photos/{sha}")
    assert public.status_code == 200 and public.mimetype == "image/jpeg"
    image = Image.open(io.BytesIO(public.data))
    assert not image.getexif().get_ifd(0x8825)  # no GPS left
    thumb = Image.open(io.BytesIO(fetch(client, f"/api/v1/photos/{sha}?size=thumb").data))
    assert max(thumb.size) <= 320

    assert fetch(client, f"/api/v1/photos/{sha}?size=original").status_code == 401
    assert fetch(client, f"/api/v1/photos/{sha}?size=original",
                      headers=auth_headers(other)).status_code == 403
    own = fetch(client, f"/api/v1/photos/{sha}?size=original", headers=auth_headers(citizen))
    assert own.status_code == 200 and own.data == original
    staff = fetch(client, f"/api/v1/photos/{sha}?size=original", headers=auth_headers(chief))
    assert staff.status_code == 200

    home = Path(app.config["GRIDMGR_HOME"]) / "photos"
    stored = {p.name for p in home.rglob("*") if p.is_file()}
    assert all(name.startswith(sha) or len(name.split(".")[0]) == 64 for name in stored)
    assert not any("passwd" in name for name in stored)


def test_unknown_photo_hashes_are_404(client, city):
    assert fetch(client, "/api/v1/photos/" + "0" * 64).status_code == 404
    assert fetch(client, "/api/v1/photos/..%2F..%2Fsecret_key").status_code == 404
    answer = fetch(client, "/api/v1/photos/" + "a" * 64 + "?size=huge")
    assert answer.status_code == 422
