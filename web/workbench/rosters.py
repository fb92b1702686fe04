"""Rosters and shifts: who covers which unit grid when, who is on duty, and who the dispatch
rules would send a case of each grid to now; adding, changing and removing an entry. The
checks, the changes and their audit entries are ``gridmgr.dispatch.rosters``'s, as on the API
(``/api/v1/rosters``); who may is the policy's ``roster.manage``."""

from __future__ import annotations

from flask import redirect, request, url_for
from sqlalchemy import text

from gridmgr.dispatch import rosters
from gridmgr.dispatch.models import ALL_WEEKDAYS
from gridmgr.dispatch.rules import choose_worker
from gridmgr.errors import Conflict, InvalidInput, NotFound
from gridmgr.extensions import db
from gridmgr.people.models import User
from gridmgr.people.policy import authorize, scope_filter, user_city_id
from web.workbench import bp
from web.workbench.i18n import gettext
from web.workbench.pages import render, require

# The rows one page shows; a narrower region or a worker's name finds the others.
ROSTER_ROWS = 300
# Which field of the form a refusal concerns, by its code (the rest: the form as a whole).
FIELD_OF = {"user_not_found": "username", "not_a_worker": "username",
            "grid_not_found": "grid_code", "city_required": "grid_code",
            "invalid_shift": "shift", "invalid_weekdays": "weekdays",
            "already_rostered": "shift"}


def _sentences() -> dict[str, str]:
    """Each refusal said for the form's reader, in the page's language."""
    return {
        "user_not_found": gettext("No user has this user name."),
        "not_a_worker": gettext("Only an active grid inspector can be rostered."),
        "grid_not_found": gettext("No unit grid of this city has this code (15 digits)."),
        "city_required": gettext("Several cities have a unit grid with this code."),
        "invalid_shift": gettext("Give the shift's start and end as HH:MM, both or neither "
                                 "(all day), and not the same time."),
        "invalid_weekdays": gettext("Choose at least one weekday."),
        "already_rostered": gettext("This inspector already has this shift on this grid."),
    }


def field_errors(refused: InvalidInput | NotFound | Conflict) -> dict[str, str]:
    """``{field: sentence}`` for a refused form, shown next to the field it concerns."""
    sentence = _sentences().get(refused.code) or refused.message
    return {FIELD_OF.get(refused.code, "form"): sentence}


def _region_prefix(user: User) -> str | None:
    """The region code the list is narrowed to (the user's own scope by default)."""
    region = (request.args.get("region") or "").strip()
    if region and (not region.isdigit() or len(region) > 15):
        raise InvalidInput("region must be a region code (digits).", code="bad_region")
    return region or scope_filter(user)


def _weekdays(form) -> list[int]:
    """The weekdays ticked on the form (none ticked: refused by the rosters' own check)."""
    return [int(d) for d in form.getlist("weekdays") if d.isdigit()]


@bp.get("/workbench/admin/rosters")
def admin_rosters():
    """The roster in the user's scope (or a region of it): each grid's workers, their shifts
    and weekdays, whether each is on duty, and whom the rules would send a case to now."""
    user = require("roster.manage")
    return _roster_page(user)


def _roster_page(user: User, status: int = 200, errors: dict | None = None,
                 form: dict | None = None):
    prefix = _region_prefix(user)
    city_id = user_city_id(user)
    authorize(user, "roster.manage", region_code=prefix, city_id=city_id)
    username = (request.args.get("username") or "").strip() or None
    entries = [e for e in rosters.list_roster(prefix, username)
               if city_id is None or e.grid.city_id == city_id][:ROSTER_ROWS]
    return render("admin_rosters.html", status, entries=entries,
                  on_duty=_on_duty({e.user_id for e in entries}),
                  receiving=_receiving_now({e.grid for e in entries}),
                  workers=_workers(user, prefix), region=prefix or "", username=username or "",
                  weekdays=ALL_WEEKDAYS, errors=errors or {}, form=form or {})


def _on_duty(user_ids: set[int]) -> dict[int, bool]:
    """Whether each worker is on duty now (their last ``/api/v1/duty``)."""
    if not user_ids:
        return {}
    rows = db.session.execute(text(
        "SELECT user_id, on_duty FROM worker_presence WHERE user_id = ANY(:ids)"),
        {"ids": list(user_ids)}).all()
    return {r.user_id: r.on_duty for r in rows}


def _receiving_now(grids: set) -> dict[str, dict]:
    """For each grid, the worker the dispatch rules would give a case there now, and by which
    rule (``roster`` or ``nearest``), from the rules' own statement."""
    if not grids:
        return {}
    points = {r.id: r for r in db.session.execute(text("""
        SELECT id, ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat
        FROM regions WHERE id = ANY(:ids)"""), {"ids": [g.id for g in grids]})}
    found = {}
    for grid in grids:
        point = points[grid.id]
        worker_id, rule, _ = choose_worker(grid.code, grid.city_id, point.lon, point.lat)
        found[grid.code] = {"worker_id": worker_id, "rule": rule}
    names = dict(db.session.execute(text(
        "SELECT id, COALESCE(display_name, username) FROM users WHERE id = ANY(:ids)"),
        {"ids": [f["worker_id"] for f in found.values() if f["worker_id"]]}).all())
    for receiver in found.values():
        receiver["name"] = names.get(receiver["worker_id"])
    return found


def _workers(user: User, prefix: str | None) -> list[tuple[str, str]]:
    """(user name, display name) of the active workers the user may roster (the form's
    suggestions)."""
    rows = db.session.execute(text("""
        SELECT u.username, COALESCE(u.display_name, u.username) AS name
        FROM users u LEFT JOIN regions r ON r.id = u.region_id
        WHERE u.role = ANY(:roles) AND u.is_active
          AND (CAST(:city AS integer) IS NULL OR COALESCE(u.city_id, r.city_id) = :city)
          AND (CAST(:prefix AS text) IS NULL OR starts_with(r.code, :prefix))
        ORDER BY u.username LIMIT 500"""),
        {"roles": list(rosters.WORKER_ROLES), "city": user_city_id(user),
         "prefix": prefix}).all()
    return [(r.username, r.name) for r in rows]


@bp.post("/workbench/admin/rosters")
def admin_add_roster():
    """Roster a grid worker on a unit grid for a shift (audited); a refusal is shown next to
    its field and changes nothing."""
    user = require("roster.manage")
    listed = _region_prefix(user)
    form = request.form
    username = (form.get("username") or "").strip()
    grid_code = (form.get("grid_code") or "").strip()
    try:
        grid = rosters.find_grid(grid_code, user_city_id(user))
        rosters.authorize_roster(user, grid)
        rosters.authorize_roster(user, grid, rosters.find_worker(username))
        entry = rosters.add_roster_entry(username, grid.code, form.get("from") or None,
                                         form.get("to") or None, _weekdays(form), grid.city_id,
                                         actor=user)
    except (InvalidInput, NotFound, Conflict) as refused:
        db.session.rollback()
        return _roster_page(user, refused.status, field_errors(refused), {
            "username": username, "grid_code": grid_code, "from": form.get("from") or "",
            "to": form.get("to") or "", "weekdays": _weekdays(form)})
    # Back to the list as it was filtered, at the new entry.
    return redirect(url_for("workbench.admin_rosters", region=listed) +
                    f"#roster-{entry.id}", code=303)


@bp.route("/workbench/admin/rosters/<int:entry_id>", methods=["GET", "POST"])
def admin_roster_entry(entry_id: int):
    """One roster entry: change its shift and weekdays, or remove it (both audited)."""
    user = require("roster.manage")
    entry = rosters.get_roster_entry(entry_id)
    rosters.authorize_roster(user, entry.grid)
    if request.method == "GET":
        return render("admin_roster_entry.html", entry=entry, weekdays=ALL_WEEKDAYS,
                      errors={}, form=None)
    region = entry.grid.code
    if request.form.get("remove"):
        rosters.remove_roster_entry(entry.id, actor=user)
        return redirect(url_for("workbench.admin_rosters", region=region), code=303)
    form = request.form
    try:
        rosters.change_roster_entry(entry.id, form.get("from") or None, form.get("to") or None,
                                    _weekdays(form), actor=user)
    except (InvalidInput, Conflict) as refused:
        db.session.rollback()
        return render("admin_roster_entry.html", refused.status,
                      entry=rosters.get_roster_entry(entry_id), weekdays=ALL_WEEKDAYS,
                      errors=field_errors(refused),
                      form={"from": form.get("from") or "", "to": form.get("to") or "",
                            "weekdays": _weekdays(form)})
    return redirect(url_for("workbench.admin_rosters", region=region) + f"#roster-{entry_id}",
                    code=303)
