"""Photos: checked from their header when they arrive (never by file name), decoded and stored
by SHA-256 under ``<GRIDMGR_HOME>/photos/`` only once a case accepts them, in the transaction
that links them (a refused or rolled-back request leaves no file). The original stays private;
the public copy and the thumbnail are re-encoded from pixels alone. EXIF GPS gives a location
to reports sent without one."""

from __future__ import annotations

import contextlib
import hashlib
import io
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from gridmgr.errors import DomainError, Forbidden, NotFound
from gridmgr.extensions import db

try:  # HEIC/HEIF from iPhones, when pillow-heif is installed
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIC = True
except ImportError:  # pragma: no cover - optional
    HEIC = False

DEFAULT_MAX_PIXELS = 52_000_000  # Config.GRIDMGR_PHOTO_MAX_PIXELS
# Pillow refuses to open anything larger (see _open); set again from the app's budget there.
Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS
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


class PhotoTooManyPixels(DomainError):
    status = 413

    def __init__(self, limit: int, width: int | None = None, height: int | None = None):
        size = f"of {width}×{height} pixels " if width and height else ""
        super().__init__("photo_too_many_pixels",
                         f"A photo {size}is larger than the limit of {limit:,} pixels "
                         f"({limit / 1e6:g} megapixels); send a smaller one.",
                         limit=limit, **({"width": width, "height": height} if size else {}))


@dataclass(frozen=True)
class StoredPhoto:
    """An uploaded photo checked from its header, ready to be linked to a case: its files are
    written when it is (:func:`attach_photos`)."""

    sha256: str
    mime: str
    width: int
    height: int
    size_bytes: int
    exif_lon: float | None
    exif_lat: float | None
    thumbnail_path: str
    data: bytes = field(repr=False, compare=False)
    name: str | None = field(default=None, repr=False, compare=False)


def photo_root() -> Path:
    return Path(current_app.config["GRIDMGR_HOME"]) / "photos"


def max_photo_bytes() -> int:
    return int(current_app.config["GRIDMGR_PHOTO_MAX_BYTES"])


def max_photo_pixels() -> int:
    return int(current_app.config["GRIDMGR_PHOTO_MAX_PIXELS"])


def store_photo(data: bytes, name: str | None = None) -> StoredPhoto:
    """Check one uploaded photo from its size and header, decoding no pixels and writing
    nothing; 413 ``photo_too_large`` (bytes) or ``photo_too_many_pixels``, 415 ``bad_photo``.
    It is decoded and written when a case accepts it (:func:`attach_photos`)."""
    limit = max_photo_bytes()
    if len(data) > limit:
        raise PhotoTooLarge(len(data), limit)
    image = _open(data, name)
    mime = MIME_OF_FORMAT[image.format]
    digest = hashlib.sha256(data).hexdigest()
    lon, lat = exif_location(image)
    return StoredPhoto(digest, mime, image.width, image.height, len(data), lon, lat,
                       f"thumb/{digest[:2]}/{digest}.jpg", data, name)


def attach_photos(photos: list[StoredPhoto], *, case_id: int, report_id: int | None = None,
                  history_id: int | None = None, stage: str = "before",
                  uploaded_by: int | None = None, public: bool = True) -> None:
    """Link checked photos to a case (and the report or history step they came with): each is
    decoded (415 ``bad_photo`` if its pixels cannot be) and its files written, unless stored
    already. Files written here are removed again if the transaction does not commit."""
    from gridmgr.cases.models import Photo

    for p in photos:
        db.session.info.setdefault(_WRITTEN, []).extend(_write_files(p))
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
    """WGS 84 (lon, lat) from the image's EXIF GPS tags, or (None, None). Only EXIF read with
    the header counts: Pillow would decode a whole PNG to look for it further on."""
    if "exif" not in image.info:
        return None, None
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


def _open(data: bytes, name: str | None) -> Image.Image:
    """The image as far as its header tells (size, format, EXIF): no pixel is decoded. Over the
    pixel budget, Pillow itself refuses at open (its limit is the same budget, its warning an
    error); the size check after it holds should a warning filter of another thread win."""
    budget = max_photo_pixels()
    Image.MAX_IMAGE_PIXELS = budget
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoTooManyPixels(budget) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise BadPhoto(name) from None
    if image.format not in MIME_OF_FORMAT:
        raise BadPhoto(name)
    if image.width * image.height > budget:
        raise PhotoTooManyPixels(budget, image.width, image.height)
    return image


def _write_files(photo: StoredPhoto) -> list[Path]:
    """Decode ``photo`` and write its original, public copy and thumbnail, unless stored
    already (the thumbnail is written last); the paths written."""
    root = photo_root()
    digest = photo.sha256
    original = root / "original" / digest[:2] / f"{digest}.{EXTENSION_OF_MIME[photo.mime]}"
    public = root / "public" / digest[:2] / f"{digest}.jpg"
    thumb = root / "thumb" / digest[:2] / f"{digest}.jpg"
    if thumb.exists():
        return []
    pixels = _pixels_only(_decode(photo))
    written: list[Path] = []
    try:
        for path, content in ((original, photo.data), (public, _jpeg(pixels))):
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(path, content)
            written.append(path)
        pixels.thumbnail(THUMBNAIL_SIZE)
        thumb.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(thumb, _jpeg(pixels))
        written.append(thumb)
    except BaseException:
        _remove(written)
        raise
    return written


def _decode(photo: StoredPhoto) -> Image.Image:
    # Decoding all pixels finds a truncated or corrupt image here, before anything is written.
    # Pillow pads a truncated image with grey instead when its process-wide switch says so,
    # and WeasyPrint (the monthly report's PDF) turns it on when it is imported: a photo cut
    # short would then be taken as whole by every later request of the process.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = _open(photo.data, photo.name)
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning):
        raise BadPhoto(photo.name) from None
    return image


_SRGB = ImageCms.createProfile("sRGB")


def _pixels_only(image: Image.Image) -> Image.Image:
    """The upright RGB pixels of ``image`` (in sRGB when it has a colour profile) in a new
    image that carries nothing else: no EXIF, XMP, ICC profile, JPEG comment or PNG text
    chunk can reach a public copy through it."""
    ImageOps.exif_transpose(image, in_place=True)
    if icc := image.info.get("icc_profile"):
        # A profile that cannot be read or applied: the pixels as they are.
        with contextlib.suppress(ImageCms.PyCMSError, OSError, ValueError):
            image = ImageCms.profileToProfile(image, ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                              _SRGB, outputMode="RGB")
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    pixels = Image.new("RGB", rgb.size)
    pixels.paste(rgb)
    return pixels


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, optimize=True)  # no exif= argument: EXIF dropped
    return out.getvalue()


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _remove(paths: list[Path]) -> None:
    for path in reversed(paths):  # the thumbnail first: it marks a photo as stored
        path.unlink(missing_ok=True)


# Files follow the transaction that links them: written by attach_photos, kept when it
# commits, removed when it rolls back or is closed without a commit (a refusal raised after
# the photos were attached, a failed commit, a 500).
_WRITTEN = "gridmgr.photo_files"


@event.listens_for(Session, "after_commit")
def _keep_written_files(session: Session) -> None:
    if session.get_nested_transaction() is None:  # a savepoint's commit is not the last word
        session.info.pop(_WRITTEN, None)


@event.listens_for(Session, "after_transaction_end")
def _remove_uncommitted_files(session: Session, transaction) -> None:
    if transaction.parent is None and (paths := session.info.pop(_WRITTEN, None)):
        _remove(paths)
