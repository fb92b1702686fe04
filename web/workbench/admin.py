"""The administrator's pages: users, departments, categories' time limits, rosters, and the
audit log of every administrative change."""

from __future__ import annotations

from web.workbench import bp
from web.workbench.pages import render, require


@bp.get("/workbench/admin")
def admin_home():
    """The administrator's start page."""
    require("admin.users")
    return render("admin.html")
