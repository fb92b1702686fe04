"""The command centre's workbench: server-rendered pages where operators, dispatchers,
departments, duty chiefs and administrators work the loop.

One sign-in for all staff (the wall's sealed session cookie, ``maps.viewer``), every form
with the wall's CSRF check (``maps.csrf``), Chinese by default and English by a switch (the
wall's locale choice). Pages call the same domain functions as the API: lists and a case from
``gridmgr.cases.queries``, steps through ``gridmgr.cases.workflow.take_step``, and a case's
buttons are exactly its ``available_actions``. Every asset is local; a small module
(``static/workbench.js``) refreshes lists from ``/live`` without reloading.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("workbench", __name__, template_folder="templates", static_folder="static",
               static_url_path="/workbench/static")

# The modules register the routes.
from web.workbench import admin, calendars, pages, rosters  # noqa: E402,F401
