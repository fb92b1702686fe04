"""The ``/wall`` page, built with folium: a full-screen Leaflet map plus the side panel.

folium's default scripts and styles come from public CDNs; the wall replaces them with the
app's own copies (``maps/static/vendor``), so the page needs no other host. The page carries
only a small configuration object; every layer's data comes from ``/maps/...`` feeds.

folium writes its map script inline; the page's CSP allows no inline script but those that
carry the answer's nonce, and only folium's own ``<script>`` tags get it. Nothing from the
data can add one: the title is escaped, and the configuration's JSON has no ``<``.
"""

from __future__ import annotations

import json

import folium
from branca.element import Element
from flask import current_app, render_template, url_for
from flask_babel import get_locale
from markupsafe import escape
from sqlalchemy import text

from gridmgr.extensions import db
from maps.feeds import scope_bounds
from maps.i18n import page_strings
from maps.viewer import Viewer

# (name, file under maps/static) in load order.
SCRIPTS = [
    ("leaflet", "vendor/leaflet/leaflet.js"),
    ("markercluster", "vendor/markercluster/leaflet.markercluster.js"),
    ("heat", "vendor/heat/leaflet-heat.js"),
    ("vectorgrid", "vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js"),
    ("socketio", "vendor/socketio/socket.io.min.js"),
    ("chartjs", "vendor/chartjs/chart.umd.min.js"),
    ("wall", "wall.js"),
]
STYLES = [
    ("leaflet_css", "vendor/leaflet/leaflet.css"),
    ("markercluster_css", "vendor/markercluster/MarkerCluster.css"),
    ("markercluster_default_css", "vendor/markercluster/MarkerCluster.Default.css"),
    ("wall_css", "wall.css"),
]
# Web-mercator pyramid's first tile, when a scope has no boundary loaded yet.
WORLD = [[-60.0, -180.0], [75.0, 180.0]]


def _static(path: str) -> str:
    return url_for("maps.static", filename=path)


def wall_html(viewer: Viewer, nonce: str) -> str:
    """The whole HTML of the wall for ``viewer``; its inline scripts carry ``nonce``."""
    bounds = scope_bounds(viewer) or WORLD
    center = [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
    wall = folium.Map(location=center, zoom_start=12, tiles=None, control_scale=True,
                      prefer_canvas=True, max_zoom=20, min_zoom=3)
    # Only local assets, never folium's CDN list (jQuery, Bootstrap, Font Awesome are unused).
    wall.default_js = [(name, _static(path)) for name, path in SCRIPTS]
    wall.default_css = [(name, _static(path)) for name, path in STYLES]
    basemap = current_app.config.get("GRIDMGR_BASEMAP_URL")
    if basemap:
        folium.TileLayer(basemap, name="basemap", max_zoom=20,
                         attr=current_app.config.get("GRIDMGR_BASEMAP_ATTRIBUTION") or " ",
                         overlay=False, control=False).add_to(wall)
    wall.fit_bounds(bounds)
    root = wall.get_root()
    root.header.add_child(Element(
        f'<title>{escape(viewer.city_name)} · gridmgr</title>'
        f'<link rel="icon" type="image/svg+xml" href="{_static("favicon.svg")}">'),
        name="wall_head")
    lang = str(get_locale() or "zh")
    config = {
        "map": wall.get_name(),
        "lang": lang,
        "timezone": viewer.timezone,
        "city": {"id": viewer.city_id, "name": viewer.city_name},
        "scope": viewer.prefix,
        "rooms": viewer.rooms,
        "bounds": bounds,
        "mayDispatch": viewer.may_dispatch,
        # Live events after this one are replayed on connect, so nothing falls between the
        # page's first feeds and the live channel.
        "seq": db.session.scalar(text("SELECT coalesce(max(seq), 0) FROM live_events")),
        "urls": {
            "token": url_for("maps.token"),
            "tiles": url_for("maps.grid_tile", z=0, x=0, y=0).replace("/0/0/0.pbf",
                                                                      "/{z}/{x}/{y}.pbf"),
            "componentTiles": url_for("maps.component_tile", z=0, x=0, y=0).replace(
                "/0/0/0.pbf", "/{z}/{x}/{y}.pbf"),
            "boundaries": url_for("maps.boundaries_feed"),
            "cases": url_for("maps.cases_feed"),
            "case": url_for("maps.case_feed", case_id=0)[:-1],
            "heat": url_for("maps.heat_feed"),
            "workers": url_for("maps.workers_feed"),
            "stats": url_for("maps.stats_feed"),
            "hotspots": url_for("maps.hotspots_feed"),
            "departments": url_for("maps.departments_feed"),
            "dispatch": "/api/v1/cases/{id}/dispatch",
            "live": "/live",
            "logout": url_for("maps.logout"),
            "login": url_for("maps.login", next=url_for("maps.wall")),
        },
        "t": page_strings(),
    }
    panel = render_template("maps/panel.html", viewer=viewer, lang=lang,
                            config=_script_json(config))
    root.html.add_child(Element(panel), name="wall_panel")
    return root.render().replace("<script>", f'<script nonce="{nonce}">')


def _script_json(value: dict) -> str:
    """JSON to place inside a ``<script>`` element: no ``<``, ``>`` or ``&`` as such, so no
    string in it can close the element or look like a tag."""
    return (json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")
            .replace(">", "\\u003e").replace("&", "\\u0026"))
