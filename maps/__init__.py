"""The command-centre map wall: the ``/wall`` page (folium), its login, tiles and feeds.

The page is built with folium and loads only the app's own scripts and styles
(``maps/static/vendor``, installed from npm by ``make install``). Everything large comes
from bounded endpoints under ``/maps/...``: unit grids as vector tiles from PostGIS
(``ST_AsMVT``), boundaries, cases and heat as bbox-limited feeds. Live updates arrive over the
``/live`` Socket.IO namespace.
"""

from __future__ import annotations

from flask import Blueprint, Flask
from flask_wtf.csrf import CSRFProtect

bp = Blueprint("maps", __name__, template_folder="templates", static_folder="static",
               static_url_path="/maps/static")
# The wall's forms are authenticated by its cookie, so each carries a CSRF token; the
# bearer-token API is not, and is not checked (WTF_CSRF_CHECK_DEFAULT is off).
csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    """Register the wall's blueprint, its CSRF check and translations (Chinese by default)."""
    from maps import i18n, views  # noqa: F401 - views registers the routes on bp

    csrf.init_app(app)
    i18n.init_app(app)
    app.register_blueprint(bp)
