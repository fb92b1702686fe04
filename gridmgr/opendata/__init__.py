"""Open data (公开数据): cases and region boundaries for anyone, under ``/open-data``, and the
daily dump written by ``gridmgr export``. What is and is not published: see ``exports``."""

from flask import Blueprint

bp = Blueprint("opendata", __name__, url_prefix="/open-data")

from gridmgr.opendata import routes  # noqa: E402,F401  (routes attach themselves to bp)
