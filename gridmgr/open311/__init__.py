"""Open311 GeoReport v2 under ``/open311/v2``: any standard civic-reporting client can list the
services (categories), file requests (reports that follow the normal workflow) and follow them.

Status mapping (gridmgr state → GeoReport status) is in ``gridmgr.open311.requests``.
"""

from flask import Blueprint

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")

from gridmgr.open311 import routes  # noqa: E402,F401  (routes attach themselves to bp)
