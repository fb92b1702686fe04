"""Pages gridmgr serves to people outside the command centre: the phone app under ``/m/``
(:mod:`web.mobile`) for citizens, grid inspectors and department field workers.

Every asset is served by gridmgr itself (closed networks): the app's own modules, styles and
icons from ``web/static``, Leaflet, VectorGrid and socket.io from the wall's vendored copies
(``maps/static/vendor``, installed from npm by ``make install``).
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the phone app's blueprint."""
    from web.mobile import bp

    app.register_blueprint(bp)
    from web.workbench import bp as workbench_bp

    app.register_blueprint(workbench_bp)
