"""Uploads cost nothing before they are allowed, and public photo copies carry pixels only:
a refused step or report leaves no file and no row, a tiny picture declaring a huge size is
refused before it is decoded, steps are rate limited per user, and what a phone or a camera
wrote into a photo (comments, EXIF, text chunks) never reaches its public copy."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

from cityfixtures import OUTSIDE, city_fixture, jpeg_bytes, multipart  # noqa: F401
from PIL import Image, ImageFile, PngImagePlugin
from sqlalchemy import text

from gridmgr.extensions import db

ROOT = Path(__file__).resolve().parent.parent
PHONE = "13812345678"
ADDRESS = "朝阳路 88 号 3 单元"


def stored_files(app) -> set[Path]:
    root = Path(app.config["GRIDMGR_HOME"]) / "photos"
    return {p for p in root.rglob("*") if p.is_file()}


def counts() -> dict:
    return {table: db.session.scalar(text(f"SELECT count(*) FROM {table}"))
            for table in ("cases", "reports", "case_history", "photos")}


def refused(answer, status: int, code: str) -> None:
    assert answer.status_code == status, answer.get_json()
    assert answer.get_json()["error"]["code"] == code


def photo(color: str = "orange"):
    return (io.BytesIO(jpeg_bytes(color=color)), "site.jpg")


def step(client, headers, case_id, action, photos, **body):
    return client.post(f"/api/v1/cases/{case_id}/{action}", headers=headers,
                       **multipart({**{k: str(v) for k, v in body.items()}, "photos": photos}))


def reported_case(client, city, citizen_headers) -> int:
    lon, lat = city.centre(0)
    answer = client.post("/api/v1/reports", headers=citizen_headers, json={
        "lon": lon, "lat": lat, "category": "C0101", "client_id": "manhole-1"})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["case"]["id"]


def bomb_png(width: int = 7746, height: int = 7746) -> bytes:
    """A valid 1-bit PNG of ``width`` × ``height`` black pixels (60 megapixels by default):
    a few kB that a full decode would turn into hundreds of MB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    row = b"\0" * (1 + (width + 7) // 8)  # filter byte, then the row's bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def jpeg_markers(data: bytes) -> list[int]:
    """The markers of a JPEG's segments before its image data (SOS)."""
    assert data[:2] == b"\xff\xd8"
    markers, at = [], 2
    while at < len(data):
        assert data[at] == 0xFF
        marker = data[at + 1]
        markers.append(marker)
        if marker == 0xDA:  # start of scan: the pixels follow
            return markers
        (length,) = struct.unpack(">H", data[at + 2:at + 4])
        at += 2 + length
    return markers


# -- refused steps and reports write nothing ----------------------------------------------------

def test_a_citizen_who_tries_to_verify_a_case_with_photos_is_refused_and_nothing_is_stored(
        app, client, city, make_user, auth_headers):
    citizen = make_user("citizen")
    case_id = reported_case(client, city, auth_headers(citizen))
    lon, lat = city.centre(0)
    files, before = stored_files(app), counts()

    answer = step(client, auth_headers(citizen), case_id, "verify",
                  [photo("red"), photo("blue")], lon=lon, lat=lat)

    refused(answer, 403, "forbidden")
    assert stored_files(app) == files
    assert counts() == before


def test_an_inspector_of_another_grid_is_refused_and_only_the_grids_own_inspector_stores_photos(
        app, client, city, make_user, auth_headers):
    citizen = make_user("citizen")
    stranger = make_user("inspector", region_code=city.grids[1])
    own = make_user("inspector", region_code=city.grids[0])
    case_id = reported_case(client, city, auth_headers(citizen))
    lon, lat = city.centre(0)
    files, before = stored_files(app), counts()

    answer = step(client, auth_headers(stranger), case_id, "verify", [photo("purple")],
                  lon=lon, lat=lat)

    refused(answer, 403, "forbidden")
    assert "outside region" in answer.get_json()["error"]["message"]
    assert stored_files(app) == files
    assert counts() == before

    allowed = step(client, auth_headers(own), case_id, "verify", [photo("purple")],
                   lon=lon, lat=lat)
    assert allowed.status_code == 200, allowed.get_json()
    assert len(stored_files(app) - files) == 3  # original, public copy, thumbnail
    assert counts()["photos"] == before["photos"] + 1


def test_a_step_on_a_case_that_does_not_exist_stores_no_photo(
        app, client, city, make_user, auth_headers):
    chief = make_user("duty_chief")
    files, before = stored_files(app), counts()

    answer = step(client, auth_headers(chief), 987654, "close", [photo("green")])

    refused(answer, 404, "case_not_found")
    assert stored_files(app) == files
    assert counts() == before


def test_a_refused_report_stores_none_of_its_photos(app, client, city, make_user, auth_headers):
    citizen = auth_headers(make_user("citizen"))
    lon, lat = city.centre(1)
    files, before = stored_files(app), counts()

    unknown = client.post("/api/v1/reports", headers=citizen, **multipart({
        "lon": str(lon), "lat": str(lat), "category": "Z9999", "client_id": "r-1",
        "photos": [photo("olive"), photo("navy")]}))
    outside = client.post("/api/v1/reports", headers=citizen, **multipart({
        "lon": str(OUTSIDE[0]), "lat": str(OUTSIDE[1]), "category": "C0101",
        "client_id": "r-2", "photos": [photo("teal")]}))

    refused(unknown, 422, "unknown_category")
    refused(outside, 422, "outside_city")
    assert stored_files(app) == files
    assert counts() == before


def test_photos_linked_in_a_transaction_that_is_rolled_back_leave_no_file(
        app, client, city, make_user, auth_headers):
    """A refusal raised after the photos were written (a failed commit, a late conflict)."""
    from gridmgr.cases.photos import attach_photos, store_photo

    case_id = reported_case(client, city, auth_headers(make_user("citizen")))
    files = stored_files(app)

    attach_photos([store_photo(jpeg_bytes(color="maroon"), "a.jpg")], case_id=case_id)
    assert len(stored_files(app) - files) == 3
    db.session.rollback()
    assert stored_files(app) == files
    assert db.session.scalar(text("SELECT count(*) FROM photos")) == 0

    attach_photos([store_photo(jpeg_bytes(color="maroon"), "a.jpg")], case_id=case_id)
    db.session.commit()
    db.session.close()
    assert len(stored_files(app) - files) == 3
    assert db.session.scalar(text("SELECT count(*) FROM photos")) == 1


def test_a_photo_cut_short_is_found_when_decoded_and_the_allowed_step_is_undone(
        app, client, city, make_user, auth_headers):
    """Its header reads well, so it is decoded only once the step is allowed: the refusal then
    comes after the case was updated and the first photo written, and undoes both."""
    citizen = make_user("citizen")
    inspector = make_user("inspector", region_code=city.grids[0])
    case_id = reported_case(client, city, auth_headers(citizen))
    lon, lat = city.centre(0)
    whole = jpeg_bytes(320, 240, color="gold")
    cut = jpeg_bytes(320, 240, color="silver")
    cut = cut[:len(cut) // 2]
    files, before = stored_files(app), counts()

    answer = step(client, auth_headers(inspector), case_id, "verify",
                  [(io.BytesIO(whole), "a.jpg"), (io.BytesIO(cut), "b.jpg")], lon=lon, lat=lat)

    refused(answer, 415, "bad_photo")
    assert "b.jpg" in answer.get_json()["error"]["message"]
    assert stored_files(app) == files
    assert counts() == before
    assert db.session.scalar(text("SELECT state FROM cases WHERE id = :id"),
                             {"id": case_id}) == "reported"

    report = client.post("/api/v1/reports", headers=auth_headers(citizen), **multipart({
        "lon": str(lon), "lat": str(lat), "category": "C0101", "client_id": "cut-1",
        "photos": [(io.BytesIO(whole), "a.jpg"), (io.BytesIO(cut), "b.jpg")]}))
    refused(report, 415, "bad_photo")
    assert stored_files(app) == files
    assert counts() == before


def test_a_photo_cut_short_is_refused_after_the_monthly_reports_pdf_renderer_was_loaded(
        app, client, city, make_user, auth_headers, monkeypatch):
    """WeasyPrint, loaded by the first monthly report of a process, tells Pillow to pad cut
    images (``weasyprint.images`` sets ``LOAD_TRUNCATED_IMAGES`` when imported); a cut photo
    sent later to the same process is refused all the same."""
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    citizen = make_user("citizen")
    inspector = make_user("inspector", region_code=city.grids[0])
    case_id = reported_case(client, city, auth_headers(citizen))
    lon, lat = city.centre(0)
    cut = jpeg_bytes(320, 240, color="teal")
    files, before = stored_files(app), counts()

    answer = step(client, auth_headers(inspector), case_id, "verify",
                  [(io.BytesIO(cut[:len(cut) // 2]), "cut.jpg")], lon=lon, lat=lat)

    refused(answer, 415, "bad_photo")
    assert stored_files(app) == files
    assert counts() == before
    assert db.session.scalar(text("SELECT state FROM cases WHERE id = :id"),
                             {"id": case_id}) == "reported"


# -- decompression bombs -------------------------------------------------------------------------

def test_a_tiny_png_declaring_sixty_megapixels_is_refused_before_it_is_decoded(
        app, client, city, make_user, auth_headers):
    citizen = make_user("citizen")
    inspector = make_user("inspector", region_code=city.grids[0])
    case_id = reported_case(client, city, auth_headers(citizen))
    lon, lat = city.centre(0)
    bomb = bomb_png()
    assert len(bomb) < 16_000
    files, before = stored_files(app), counts()

    report = client.post("/api/v1/reports", headers=auth_headers(citizen), **multipart({
        "lon": str(lon), "lat": str(lat), "category": "C0101", "client_id": "bomb-1",
        "photos": (io.BytesIO(bomb), "bomb.png")}))
    verify = step(client, auth_headers(inspector), case_id, "verify",
                  [(io.BytesIO(bomb), "bomb.png")], lon=lon, lat=lat)

    for answer in (report, verify):
        refused(answer, 413, "photo_too_many_pixels")
        details = answer.get_json()["error"]["details"]
        assert details["limit"] == app.config["GRIDMGR_PHOTO_MAX_PIXELS"] < 7746 * 7746
        assert "megapixels" in answer.get_json()["error"]["message"]
    assert stored_files(app) == files
    assert counts() == before
    # Pillow's own limit is the same budget: nothing reaches a decoder beyond it.
    assert app.config["GRIDMGR_PHOTO_MAX_PIXELS"] == Image.MAX_IMAGE_PIXELS


BOMB_MEMORY = """
import io, json, resource, sys
sys.path.insert(0, "tests")
from test_security_uploads import bomb_png
from gridmgr import create_app
from gridmgr.cases.photos import store_photo
from gridmgr.errors import DomainError
bombs = [bomb_png(side, side) for side in (7746, 7416)]  # 60 MP, and 55 MP: just over 52 MP
app = create_app({"TESTING": True, "DATABASE_URL": sys.argv[1],
                  "SQLALCHEMY_DATABASE_URI": sys.argv[1], "GRIDMGR_HOME": sys.argv[2],
                  "SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256"})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
codes = []
with app.app_context():
    for bomb in bombs:
        try:
            store_photo(bomb, "bomb.png")
            codes.append(None)
        except DomainError as exc:
            codes.append(exc.code)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"codes": codes, "grown_kb": after - before}))
"""


def test_refusing_a_bomb_costs_almost_no_memory(database_url, tmp_path):
    """Measured in a process of its own: its peak resident memory is its own."""
    done = subprocess.run([sys.executable, "-c", BOMB_MEMORY, database_url, str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["codes"] == ["photo_too_many_pixels"] * 2
    assert answer["grown_kb"] < 20_000  # decoding either would take 55 MB at least
    assert not any(tmp_path.rglob("*.*"))


# -- the step rate limit ---------------------------------------------------------------------------

# Limits are off in the session's app; an app with them on is built in a separate process
# (Flask-Limiter keeps one object per process), on the same database.
LIMITED_STEPS = """
import json, sys, tempfile
from gridmgr import create_app
url, attempts = sys.argv[1], json.loads(sys.argv[2])
app = create_app({"TESTING": True, "DATABASE_URL": url, "SQLALCHEMY_DATABASE_URI": url,
                  "GRIDMGR_HOME": tempfile.mkdtemp(), "RATELIMIT_ENABLED": True,
                  "RATELIMIT_STORAGE_URI": "memory://",
                  "SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256",
                  "GRIDMGR_STEP_RATE_LIMIT": "3 per minute"})
client = app.test_client()
answers = []
for path, token in attempts:
    r = client.post(path, json={}, headers={"Authorization": f"Bearer {token}"})
    answers.append([r.status_code, (r.get_json() or {}).get("error", {}).get("code"),
                    r.headers.get("Retry-After")])
print(json.dumps(answers))
"""


def test_a_user_who_floods_steps_is_cut_off_while_another_user_is_still_served(
        database_url, client, city, make_user, auth_headers):
    from gridmgr.people.tokens import issue_tokens

    citizen = make_user("citizen")
    case_id = reported_case(client, city, auth_headers(citizen))
    flooder = issue_tokens(make_user("duty_chief"))["access_token"]
    other = issue_tokens(make_user("duty_chief"))["access_token"]
    missing = "/api/v1/cases/987654/close"
    attempts = [[missing, flooder]] * 4 + [[f"/api/v1/cases/{case_id}/cancel", flooder],
                                            [missing, other]]

    done = subprocess.run([sys.executable, "-c", LIMITED_STEPS, database_url,
                           json.dumps(attempts)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)

    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    assert [a[:2] for a in answers[:3]] == [[404, "case_not_found"]] * 3
    assert [a[:2] for a in answers[3:5]] == [[429, "too_many_requests"]] * 2
    assert 0 < int(answers[3][2]) <= 60  # a minute's window
    assert answers[5][:2] == [404, "case_not_found"]  # another chief is not held back
    # The refused cancel changed nothing.
    assert db.session.scalar(text("SELECT state FROM cases WHERE id = :id"),
                             {"id": case_id}) == "reported"
    assert db.session.scalar(text("SELECT count(*) FROM case_history")) == 1


# -- public copies carry pixels only ---------------------------------------------------------------

def jpeg_with_comment_and_gps(lon: float, lat: float) -> bytes:
    exif = Image.Exif()
    exif.get_ifd(0x8825).update({1: "N", 2: (39.0, 54.0, 1.0), 3: "E", 4: (116.0, 24.0, 2.0)})
    exif[0x010E] = f"call {PHONE}"  # ImageDescription
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "orange").save(
        out, "JPEG", exif=exif, comment=f"{PHONE} {ADDRESS}".encode(),
        xmp=f"<x:xmpmeta><dc:creator>{PHONE}</dc:creator></x:xmpmeta>".encode())
    return out.getvalue()


def png_with_text_chunks() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", f"{PHONE} {ADDRESS}")
    info.add_itxt("Description", f"住址 {ADDRESS}", lang="zh")
    info.add_text("Phone", PHONE, zip=True)  # a zTXt chunk
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (0, 128, 255)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def test_a_public_copy_keeps_no_comment_gps_or_text_chunk_of_the_upload(
        client, city, make_user, auth_headers):
    citizen = make_user("citizen")
    lon, lat = city.centre(2)
    jpeg, png = jpeg_with_comment_and_gps(lon, lat), png_with_text_chunks()
    assert PHONE.encode() in jpeg and b"\xff\xfe" in jpeg  # a COM segment
    assert Image.open(io.BytesIO(png)).info["comment"].startswith(PHONE)

    answer = client.post("/api/v1/reports", headers=auth_headers(citizen), **multipart({
        "lon": str(lon), "lat": str(lat), "category": "C0101", "client_id": "meta-1",
        "photos": [(io.BytesIO(jpeg), "a.jpg"), (io.BytesIO(png), "b.png")]}))
    assert answer.status_code == 201, answer.get_json()

    shas = db.session.scalars(text("SELECT sha256 FROM photos ORDER BY id")).all()
    assert len(shas) == 2
    for sha in shas:
        for size in ("public", "thumb"):
            response = client.get(f"/api/v1/photos/{sha}?size={size}")
            data = response.get_data()
            response.close()
            assert response.status_code == 200
            assert PHONE.encode() not in data
            assert ADDRESS.encode() not in data and "住址".encode() not in data
            markers = jpeg_markers(data)
            assert 0xFE not in markers  # no COM segment
            assert not {0xE1, 0xE2} & set(markers)  # no EXIF/XMP (APP1), no ICC (APP2)
            image = Image.open(io.BytesIO(data))
            assert not {"comment", "exif", "xmp", "icc_profile"} & set(image.info)
            assert not image.getexif()
    # The original is kept as sent, for its uploader and the staff who may see it.
    original = client.get(f"/api/v1/photos/{shas[0]}?size=original",
                          headers=auth_headers(citizen))
    assert PHONE.encode() in original.get_data()
    original.close()
