"""Photos: checked by decoding (never by file name), stored by SHA-256 under
``<GRIDMGR_HOME>/photos/``; the original stays private, the public copy and the thumbnail are
re-encoded without EXIF. EXIF GPS gives a location to reports sent without one."""

from __future__ import annotations

import hashlib
import io
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import text

from gridmgr.errors import DomainError, Forbidden, InvalidInput, NotFound
from gridmgr.extensions import db

try:  # HEIC/HEIF from iPhones, when pillow-heif is installed
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIC = True
except ImportError:  # pragma: no cover - optional
    HEIC = False

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 60_000_000
THUMBNAIL_SIZE = (320, 320)
MIME_OF_FORMAT = {"JPEG": "image/jpeg", "PNG": "image/png", "HEIF": "image/heic"}
EXTENSION_OF_MIME = {"image/jpeg": "jpg", "image/png": "png", "image/heic": "heic"}
_GPS_IFD = 0x8825


class PhotoTooLarge(DomainError):
    status = 413

    def __init__(self, size: int, limit: int):
        super().__init__("photo_too_large",
                         f"A photo of {size} bytes is larger than the limit of {limit} bytes.",
                         size=size, limit=limit)


class BadPhoto(DomainError):
    status = 415

    def __init__(self, name: str | None):
        super().__init__("bad_photo", f"The file {name or '(unnamed)'!s:.80} is not a JPEG, PNG"
                         f"{' or HEIC' if HEIC else ''} image that can be read.")


@dataclass(frozen=True)
class StoredPhoto:
    """A photo written to disk, ready to be linked to a case."""

    sha256: str
    mime: str
    width: int
    height: int
    size_bytes: int
    exif_lon: float | None
    exif_lat: float | None
    thumbnail_path: str


def photo_root() -> Path:
    return Path(current_app.config["GRIDMGR_HOME"]) / "photos"


def max_photo_bytes() -> int:
    return int(current_app.config.get("GRIDMGR_PHOTO_MAX_BYTES", DEFAULT_MAX_BYTES))


def store_photo(data: bytes, name: str | None = None) -> StoredPhoto:
    """Check, decode and store one uploaded photo; 413 ``photo_too_large``, 415 ``bad_photo``."""
    limit = max_photo_bytes()
    if len(data) > limit:
        raise PhotoTooLarge(len(data), limit)
    image = _decode(data, name)
    mime = MIME_OF_FORMAT[image.format]
    digest = hashlib.sha256(data).hexdigest()
    lon, lat = exif_location(image)
    root = photo_root()
    original = root / "original" / digest[:2] / f"{digest}.{EXTENSION_OF_MIME[mime]}"
    public = root / "public" / digest[:2] / f"{digest}.jpg"
    thumb = root / "thumb" / digest[:2] / f"{digest}.jpg"
    if not thumb.exists():
        for path in (original, public, thumb):
            path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(original, data)
        upright = ImageOps.exif_transpose(image).convert("RGB")
        _write_atomically(public, _jpeg(upright))
        upright.thumbnail(THUMBNAIL_SIZE)
        _write_atomically(thumb, _jpeg(upright))
    return StoredPhoto(digest, mime, image.width, image.height, len(data), lon, lat,
                       str(thumb.relative_to(root)))


def attach_photos(photos: list[StoredPhoto], *, case_id: int, report_id: int | None = None,
                  history_id: int | None = None, stage: str = "before",
                  uploaded_by: int | None = None, public: bool = True) -> None:
    """Link stored photos to a case (and the report or history step they came with)."""
    from gridmgr.cases.models import Photo

    for p in photos:
        db.session.add(Photo(sha256=p.sha256, mime=p.mime, width=p.width, height=p.height,
                             size_bytes=p.size_bytes, case_id=case_id, report_id=report_id,
                             history_id=history_id, stage=stage, public=public,
                             thumbnail_path=p.thumbnail_path, exif_lon=p.exif_lon,
                             exif_lat=p.exif_lat, uploaded_by=uploaded_by))


def photo_file(sha256: str, variant: str, viewer=None) -> tuple[Path, str]:
    """The file of a stored photo: ``public``, ``thumb`` or ``original`` (path, mime), for who
    may fetch that copy (``gridmgr.cases.views.may_fetch_photo``): originals (with EXIF) go
    only to their uploader and to staff who may see the case's private details."""
    from gridmgr.cases.views import may_fetch_photo
    from gridmgr.people.tokens import TokenError

    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise NotFound("No photo has this hash.", code="photo_not_found")
    rows = db.session.execute(text("""
        SELECT p.mime, p.public, p.uploaded_by, c.grid_code, c.city_id, c.reporter_id,
               c.department_id, c.worker_id
        FROM photos p LEFT JOIN cases c ON c.id = p.case_id WHERE p.sha256 = :h"""),
        {"h": sha256}).all()
    if not rows:
        raise NotFound("No photo has this hash.", code="photo_not_found")
    allowed = any(may_fetch_photo(
        viewer, variant, public=r.public, uploaded_by=r.uploaded_by, region_code=r.grid_code,
        city_id=r.city_id, reporter_id=r.reporter_id, department_id=r.department_id,
        assignee_id=r.worker_id) for r in rows)
    if not allowed and viewer is None:
        raise TokenError("token_missing", "Originals of photos need a signed-in user."
                         if variant == "original" else "This photo is private; sign in.")
    if not allowed:
        raise Forbidden("Originals of photos (with their EXIF) are for their uploader and "
                        "staff who may see private details." if variant == "original" else
                        "This photo is private to the staff of its case.")
    root = photo_root()
    if variant != "original":
        return root / variant / sha256[:2] / f"{sha256}.jpg", "image/jpeg"
    mime = rows[0].mime
    return root / "original" / sha256[:2] / f"{sha256}.{EXTENSION_OF_MIME[mime]}", mime


def exif_location(image: Image.Image) -> tuple[float | None, float | None]:
    """WGS 84 (lon, lat) from the image's EXIF GPS tags, or (None, None)."""
    try:
        gps = image.getexif().get_ifd(_GPS_IFD)
        lat = _dms(gps.get(2), gps.get(1))
        lon = _dms(gps.get(4), gps.get(3))
    except (AttributeError, KeyError, TypeError, ValueError, ZeroDivisionError):
        return None, None
    if lon is None or lat is None or not (-180 <= lon <= 180 and -90 <= lat <= 90):
        return None, None
    return lon, lat


def _dms(value, ref) -> float | None:
    if not value or len(value) != 3:
        return None
    degrees = float(value[0]) + float(value[1]) / 60 + float(value[2]) / 3600
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    return -degrees if ref in ("S", "W") else degrees


def _decode(data: bytes, name: str | None) -> Image.Image:
    # Decode fully: a renamed text file or a truncated image fails here, not later.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            if probe.format not in MIME_OF_FORMAT:
                raise BadPhoto(name)
            if probe.width * probe.height > MAX_PIXELS:
                raise InvalidInput(f"A photo of {probe.width}×{probe.height} pixels is too big.",
                                   code="photo_too_large")
            probe.verify()
            image = Image.open(io.BytesIO(data))
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadPhoto(name) from None
    return image


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, optimize=True)  # no exif= argument: EXIF dropped
    return out.getvalue()


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
