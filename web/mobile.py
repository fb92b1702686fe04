"""The phone app under ``/m/``: its page, manifest, service worker and the anonymous region
tiles its map shows. Everything else it does goes through the mobile API (``/api/v1``).

The page is a shell the service worker keeps on the phone: it opens without a network, and
reports and steps made offline wait in the phone's IndexedDB with the ids the API
de-duplicates on (a report's ``client_id``, a step's ``Idempotency-Key``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from pathlib import Path

from flask import Blueprint, Response, render_template, request, send_from_directory
from markupsafe import Markup

from gridmgr.dispatch.duty import position_interval
from maps import tiles
from web import boundaries

bp = Blueprint("mobile", __name__, url_prefix="/m", template_folder="templates",
               static_folder="static/mobile", static_url_path="/static")
STATIC = Path(__file__).parent / "static" / "mobile"
LANGS = ("zh", "en")
# The first screen's style and scripts travel inside the page: on a slow network every further
# request costs a round trip before its first byte (2 s on Chromium's "Slow 3G").
INLINE = {"style": "app.css", "queue": "queue.js", "app": "app.js"}
# The app runs only its own scripts (files of this site, and the page's inline ones by their
# hashes); Leaflet sets inline styles on map panes; tiles and photos come from this site (blob:
# for photos taken and not yet sent).
PAGE_POLICY = ("default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data: blob:; connect-src 'self'; worker-src 'self'; "
               "manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
               "frame-ancestors 'none'")


def _lang() -> str:
    return request.accept_languages.best_match(LANGS) or "zh"


@functools.lru_cache(maxsize=8)
def _inline_assets(versions: tuple) -> tuple[dict, str]:
    """The inline texts by name and the page's policy naming the scripts' hashes; ``versions``
    (the files' modification times) keys the cache, so an edited file is read again."""
    texts = {name: (STATIC / file).read_text(encoding="utf-8") for name, file in INLINE.items()}
    if any(re.search(r"</script|<!--", texts[name], re.IGNORECASE) for name in ("queue", "app")):
        raise ValueError("an inline script may not contain '</script' or '<!--'")
    hashes = " ".join(
        "'sha256-{}'".format(base64.b64encode(hashlib.sha256(texts[name].encode()).digest())
                             .decode()) for name in ("queue", "app"))
    return {name: Markup(text) for name, text in texts.items()}, PAGE_POLICY.format(hashes=hashes)


def inline_assets() -> tuple[dict, str]:
    """The page's inline style and scripts, and its Content-Security-Policy."""
    return _inline_assets(tuple((STATIC / file).stat().st_mtime_ns for file in INLINE.values()))


@bp.get("/")
def app_page():
    """The app's one page, its first screen complete in this one answer; the service worker
    answers it from the phone when offline."""
    settings = {**boundaries.city_view(), "position_seconds": position_interval()}
    inline, policy = inline_assets()
    return render_template("web/mobile.html", lang=_lang(), inline=inline,
                           city=json.dumps(settings, ensure_ascii=False)), 200, {
        "Content-Security-Policy": policy, "Cache-Control": "no-cache"}


@bp.get("/sw.js")
def service_worker():
    """The service worker, for the ``/m/`` scope, checked for updates on every visit."""
    response = send_from_directory(STATIC, "sw.js", mimetype="text/javascript", max_age=0)
    response.headers["Service-Worker-Allowed"] = "/m/"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/manifest.webmanifest")
def manifest():
    """The web app manifest: installable, standalone, opening on ``/m/``."""
    lang = _lang()
    body = {
        "name": "城市网格 · 随手拍" if lang == "zh" else "City grid · report a problem",
        "short_name": "网格通" if lang == "zh" else "Grid",
        "description": ("拍照上报城市问题，跟踪办理进度；网格员和处置人员的现场工作。"
                        if lang == "zh" else
                        "Report a problem in the city and follow it; on-site work for grid "
                        "inspectors and field workers."),
        "lang": lang, "start_url": "/m/", "scope": "/m/", "id": "/m/",
        "display": "standalone", "orientation": "portrait",
        "background_color": "#ffffff", "theme_color": "#0b5cad",
        "icons": [{"src": f"/m/static/icons/icon-{size}.png", "sizes": f"{size}x{size}",
                   "type": "image/png", "purpose": "any"} for size in (192, 512)] + [
            {"src": "/m/static/icons/maskable-512.png", "sizes": "512x512",
             "type": "image/png", "purpose": "maskable"}],
    }
    return Response(json.dumps(body, ensure_ascii=False), mimetype="application/manifest+json",
                    headers={"Cache-Control": "no-cache"})


def _tile_number(value: str, name: str) -> int:
    if not value.isdigit():
        raise tiles.BadTile("bad_tile_address", f"{name} must be a non-negative integer.",
                            **{name: value})
    return int(value)


@bp.get("/tiles/regions/<z>/<x>/<y>.pbf")
def region_tile(z: str, x: str, y: str):
    """Streets, communities and unit grids of tile z/x/y as MVT (layer ``regions``: code,
    name, level), for anyone."""
    zoom, col, row = (_tile_number(v, n) for v, n in ((z, "z"), (x, "x"), (y, "y")))
    data = boundaries.boundary_tile(zoom, col, row)
    return Response(data, mimetype=tiles.MVT_MIME,
                    headers={"Cache-Control": "public, max-age=3600"})
