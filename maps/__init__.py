"""The command-centre map wall: the ``/wall`` page (folium), its login, tiles and feeds.

The page is built with folium and loads only the app's own scripts and styles
(``maps/static/vendor``, installed from npm by ``make install``). Everything large comes
from bounded endpoints under ``/maps/...``: unit grids as vector tiles from PostGIS
(``ST_AsMVT``), boundaries, cases and heat as bbox-limited feeds. Live updates arrive over the
``/live`` Socket.IO namespace.
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("maps", __name__, template_folder="templates", static_folder="static",
               static_url_path="/maps/static")


def init_app(app: Flask) -> None:
    """Register the wall's blueprint and its translations (Chinese by default, English)."""
    from maps import i18n, views  # noqa: F401 - views registers the routes on bp

    i18n.init_app(app)
    app.register_blueprint(bp)
