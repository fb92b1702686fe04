"""HTTP face of the wall: the page, its sign-in, tiles and feeds. Thin: parse, call, serialise."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Response, current_app, g, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext, refresh
from flask_wtf.csrf import CSRFError

from gridmgr.components import tiles as components_tiles
from gridmgr.errors import DomainError
from gridmgr.extensions import limiter
from gridmgr.people.policy import authorize
from gridmgr.people.tokens import TokenError
from maps import bp, csrf, feeds, prevention, tiles
from maps.page import wall_html
from maps.viewer import access_token, current_viewer, sign_in, sign_out

NO_STORE = {"Cache-Control": "no-store"}
# The sign-in page runs no script and posts only to this site.
LOGIN_POLICY = ("default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
                "form-action 'self'; frame-ancestors 'none'")


def _lang() -> str:
    return str(get_locale() or "zh")


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host) may follow the sign-in."""
    if not target:
        return url_for("maps.wall")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("maps.wall")
    return target


@bp.before_request
def _fresh_locale():
    # Flask-Babel keeps the locale on the app context, Flask-WTF the form token; a test client
    # may share one context across requests, so read both again for every request.
    refresh()
    g.pop(current_app.config["WTF_CSRF_FIELD_NAME"], None)


@bp.before_request
def _same_site_forms():
    # The wall's cookie signs its forms in, so a post must carry the token of a page this
    # site served (CSRFError otherwise; the bearer-token API is not under this blueprint).
    csrf.protect()


@bp.errorhandler(CSRFError)
def _forged_post(refused: CSRFError):
    """A post without this site's form token (another site's page, an expired session)
    changes nothing; the page says so and links to a fresh sign-in form."""
    return render_template("maps/login.html", lang=_lang(), next=url_for("maps.wall"),
                           username=None, refused=True,
                           error=gettext("This form has expired or came from another site; "
                                         "nothing was changed.")), 400, {
        **NO_STORE, "Content-Security-Policy": LOGIN_POLICY}


@bp.get("/wall")
def wall():
    """The full-screen wall; sends an unsigned-in visitor to the sign-in page."""
    try:
        viewer = current_viewer()
    except TokenError:
        return redirect(url_for("maps.login", next=request.full_path.rstrip("?")))
    nonce = secrets.token_urlsafe(16)
    return Response(wall_html(viewer, nonce), mimetype="text/html",
                    headers={**NO_STORE, "Content-Security-Policy": _wall_policy(nonce)})


def _wall_policy(nonce: str) -> str:
    """The browser itself refuses anything from another host, and runs no inline script but
    folium's, which carry this answer's ``nonce``; a configured absolute base-map URL is the
    one exception, for its images."""
    images = "'self' data: blob:"
    basemap = urlsplit(current_app.config.get("GRIDMGR_BASEMAP_URL") or "")
    if basemap.scheme in ("http", "https") and basemap.netloc:
        host = basemap.netloc.replace("{s}", "*")
        images += f" {basemap.scheme}://{host}"
    return (f"default-src 'self'; script-src 'self' 'nonce-{nonce}'; "
            "style-src 'self' 'unsafe-inline'; font-src 'self'; "
            f"img-src {images}; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")


@bp.route("/wall/login", methods=["GET", "POST"])
@limiter.limit("20/minute", methods=["POST"])
def login():
    """The wall's sign-in form; the tokens go into the signed session cookie."""
    next_url = _safe_next(request.args.get("next"))
    if request.method == "GET":
        return render_template("maps/login.html", lang=_lang(), next=next_url, error=None,
                               username=None), {"Content-Security-Policy": LOGIN_POLICY}
    username = request.form.get("username", "").strip()
    try:
        sign_in(username, request.form.get("password", ""))
    except DomainError as refused:
        if refused.status != 401:
            raise
        return render_template("maps/login.html", lang=_lang(), next=next_url, username=username,
                               error=gettext("Wrong user name or password.")), 401, {
            "Content-Security-Policy": LOGIN_POLICY}
    return redirect(next_url)


@bp.post("/wall/logout")
def logout():
    """Sign out of the wall and revoke its tokens."""
    sign_out()
    return redirect(url_for("maps.login"))


@bp.get("/maps/token")
def token():
    """A valid access token for the page's live connection and API calls."""
    viewer = current_viewer()
    return jsonify(token=access_token(), rooms=viewer.rooms), 200, NO_STORE


def _tile_number(value: str, name: str) -> int:
    if not value.isdigit():
        raise tiles.BadTile("bad_tile_address", f"{name} must be a non-negative integer.",
                            **{name: value})
    return int(value)


@bp.get("/maps/tiles/grids/<z>/<x>/<y>.pbf")
def grid_tile(z: str, x: str, y: str):
    """Unit grids of tile z/x/y as MVT (layer ``grids``); empty tile: 200 with zero bytes."""
    zoom, col, row = (_tile_number(v, n) for v, n in ((z, "z"), (x, "x"), (y, "y")))
    tiles.check_tile(zoom, col, row)
    measure = tiles.check_measure(request.args.get("measure", "open"))
    data = tiles.grid_tile(current_viewer("map.view"), zoom, col, row, measure, _lang())
    return Response(data, mimetype=tiles.MVT_MIME,
                    headers={"Cache-Control": "private, max-age=30"})


@bp.get("/maps/tiles/components/<z>/<x>/<y>.pbf")
def component_tile(z: str, x: str, y: str):
    """Components of the viewer's scope in tile z/x/y as MVT (layer ``components``, zoom 15
    and deeper), with their parties."""
    zoom, col, row = (_tile_number(v, n) for v, n in ((z, "z"), (x, "x"), (y, "y")))
    tiles.check_tile(zoom, col, row)
    viewer = current_viewer()
    data = components_tiles.component_tile(viewer.user, zoom, col, row, city_id=viewer.city_id,
                                           like=viewer.like)
    return Response(data, mimetype=tiles.MVT_MIME,
                    headers={"Cache-Control": "private, max-age=60"})


@bp.get("/maps/feeds/boundaries")
def boundaries_feed():
    """GeoJSON boundaries of ``level`` in ``bbox``, simplified for ``zoom``."""
    viewer = current_viewer()
    return jsonify(feeds.boundaries(viewer, request.args.get("level", ""),
                                    feeds.parse_bbox(request.args.get("bbox")),
                                    feeds.parse_zoom(request.args.get("zoom"))))


@bp.get("/maps/feeds/cases")
def cases_feed():
    """Open cases in ``bbox`` as markers, or clusters when there are too many."""
    viewer = current_viewer()
    return jsonify(feeds.open_cases(viewer, feeds.parse_bbox(request.args.get("bbox"))))


@bp.get("/maps/feeds/cases/<int:case_id>")
def case_feed(case_id: int):
    """The case card; ``?marker=1`` only the marker (null once closed)."""
    viewer = current_viewer()
    if request.args.get("marker"):
        return jsonify(marker=feeds.one_case_marker(viewer, case_id)), 200, NO_STORE
    return jsonify(feeds.case_card(viewer, case_id, _lang())), 200, NO_STORE


@bp.get("/maps/feeds/heat")
def heat_feed():
    """``[lat, lon]`` of the last 7 days' reports in ``bbox``."""
    viewer = current_viewer()
    return jsonify(points=feeds.heat(viewer, feeds.parse_bbox(request.args.get("bbox"))))


@bp.get("/maps/feeds/workers")
def workers_feed():
    """Workers of the scope with their last position and presence."""
    viewer = current_viewer()
    return jsonify(workers=feeds.workers(viewer)), 200, NO_STORE


@bp.get("/maps/feeds/stats")
def stats_feed():
    """Today's counters, the overdue list, tops and reports per hour."""
    viewer = current_viewer()
    return jsonify(feeds.counters(viewer, _lang())), 200, NO_STORE


@bp.get("/maps/feeds/hotspots")
def hotspots_feed():
    """GeoJSON of the scope's hotspot and recurring-problem grids (this week)."""
    viewer = current_viewer()
    return jsonify(prevention.hotspots(viewer, _lang())), 200, {
        "Cache-Control": "private, max-age=60"}


@bp.get("/maps/feeds/departments")
def departments_feed():
    """Departments and workers a dispatcher can choose on the case card."""
    viewer = current_viewer()
    authorize(viewer.user, "case.dispatch", region_code=viewer.prefix or None,
              city_id=viewer.city_id)
    return jsonify(feeds.receivers(viewer, _lang()))

