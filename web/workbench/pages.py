"""The workbench's pages: sign-in, each role's start page, the case list and the case page with
its steps. Thin: parse the form, call one domain function, render."""

from __future__ import annotations

import io
import secrets
import tempfile
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from flask import (
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import get_locale, refresh
from flask_wtf.csrf import CSRFError
from sqlalchemy import select, text

from gridmgr.calendar.deadlines import UNITS
from gridmgr.cases.intake import ReportInput, category_by_code, nearby_cases, submit_report
from gridmgr.cases.models import CHANNELS, OPEN_STATES, STATES
from gridmgr.cases.queries import case_detail, list_cases, tasks_for
from gridmgr.cases.workflow import StepInput, take_step
from gridmgr.categories.models import Category
from gridmgr.categories.operations import list_categories
from gridmgr.dispatch.rules import choose_receivers
from gridmgr.errors import DomainError, Forbidden, InvalidInput, translate
from gridmgr.extensions import db, limiter
from gridmgr.live.rooms import default_rooms
from gridmgr.opendata.writing import csv_line
from gridmgr.people.models import User
from gridmgr.people.operations import list_departments
from gridmgr.people.policy import authorize, can, scope_filter, user_city_id
from gridmgr.people.tokens import TokenError
from maps import csrf
from maps.viewer import access_token, sign_in, sign_out, signed_in_user
from mobile_api.http import store_uploads
from web.workbench import bp
from web.workbench.i18n import gettext

NO_STORE = {"Cache-Control": "no-store"}
CLOCKS = ("green", "yellow", "red", "paused")
QUEUE_SIZE = 100
LIST_SIZE = 50
CSV_ROWS = 10_000
# Each role's start page, and what a role must be allowed to open it (the policy decides).
START = {"operator": "workbench.operator", "duty_chief": "workbench.chief",
         "dispatcher": "workbench.dispatcher", "department": "workbench.department",
         "admin": "workbench.admin_home", "inspector": "workbench.cases"}
CSV_COLUMNS = ("code", "state", "channel", "category", "category_name", "grid_code", "lon",
               "lat", "description", "department_id", "worker_id", "deadline", "clock",
               "reporter_count", "created_at", "updated_at")


def _lang() -> str:
    return str(get_locale() or "zh")


def page_policy(nonce: str) -> str:
    """Only this site's scripts, and only those carrying this answer's nonce; Leaflet sets
    inline styles on its panes; photos and tiles from this site."""
    return (f"default-src 'self'; script-src 'self' 'nonce-{nonce}'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self'; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")


def render(template: str, status: int = 200, **context) -> tuple:
    """A workbench page in the request's language, with its nonce, policy and no caching."""
    nonce = secrets.token_urlsafe(16)
    body = render_template(f"workbench/{template}", lang=_lang(), nonce=nonce, _=gettext,
                           gettext=gettext, user=g.get("staff"), nav=_nav(g.get("staff")),
                           **context)
    return body, status, {**NO_STORE, "Content-Security-Policy": page_policy(nonce)}


def _nav(user: User | None) -> list[tuple[str, str]]:
    """The pages this user may open, as the policy says."""
    if user is None:
        return []
    pages = [("workbench.cases", gettext("Cases"))]
    if _may(user, "case.file"):
        pages += [("workbench.operator", gettext("Incoming reports")),
                  ("workbench.hotline", gettext("Hotline intake"))]
    if _may(user, "case.dispatch"):
        pages.append(("workbench.dispatcher", gettext("Dispatch")))
    if _may(user, "case.return"):
        pages.append(("workbench.department", gettext("Department queue")))
    if _may(user, "case.close"):
        pages.append(("workbench.chief", gettext("Duty chief")))
    if _may(user, "roster.manage"):
        pages.append(("workbench.admin_rosters", gettext("Rosters and shifts")))
    if _may(user, "admin.users"):
        pages.append(("workbench.admin_home", gettext("Administration")))
    return pages


def _own_ground(user: User) -> dict:
    """The policy's target for a page: the user's own scope, and for a receiver's action, their
    own department's and their own work."""
    return {"region_code": scope_filter(user), "city_id": user_city_id(user),
            "department_id": user.department_id, "assignee_id": user.id}


def _may(user: User, action: str) -> bool:
    return can(user, action, **_own_ground(user))


def require(action: str) -> User:
    """The signed-in staff member, allowed ``action`` in their own scope (403 otherwise)."""
    user = staff()
    authorize(user, action, **_own_ground(user))
    return user


def staff() -> User:
    """The signed-in staff member (401: sign in; 403: citizens have no workbench)."""
    user = signed_in_user()
    g.staff = user
    if user.role == "citizen":
        raise Forbidden("The workbench is for command-centre staff.", code="staff_only")
    return user


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site may follow the sign-in."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.before_request
def _fresh_request():
    # A test client may share one app context across requests: read locale and token again.
    refresh()
    g.pop(current_app.config["WTF_CSRF_FIELD_NAME"], None)
    g.pop("staff", None)
    if request.method == "POST":
        csrf.protect()


@bp.errorhandler(CSRFError)
def _forged_post(refused: CSRFError):
    """A post without this site's form token changes nothing and says so."""
    db.session.rollback()
    return render("refused.html", 400, title=gettext("Form expired"), code="csrf_failed",
                  message=gettext("This form has expired or came from another site; nothing "
                                  "was changed."))


@bp.errorhandler(TokenError)
def _signed_out(refused: TokenError):
    """Not signed in (or the session ended): the sign-in page, then back here."""
    db.session.rollback()
    if request.method == "GET" and not request.args.get("fragment"):
        return redirect(url_for("workbench.login", next=request.full_path.rstrip("?")))
    return render("refused.html", 401, title=gettext("Signed out"), code=refused.code,
                  message=gettext("Your session has ended; sign in again. Nothing was changed."))


@bp.errorhandler(DomainError)
def _refused(refused: DomainError):
    """A refusal as a readable page with its code; a step refused shows the case again."""
    db.session.rollback()
    titles = {403: gettext("Not allowed"), 404: gettext("Not found"),
              409: gettext("Changed meanwhile"), 429: gettext("Too many requests")}
    return render("refused.html", refused.status,
                  title=titles.get(refused.status, gettext("Not done")), code=refused.code,
                  message=translate(refused.message), back=request.referrer
                  if request.referrer and _safe_next(urlsplit(request.referrer).path) else None)


def _login_limit() -> str:
    return current_app.config.get("GRIDMGR_LOGIN_RATE_LIMIT", "10 per minute")


@bp.get("/")
def root():
    """A browser opening the site is led to the workbench (the sign-in page first)."""
    return redirect(url_for("workbench.start"))


@bp.get("/workbench/")
def start():
    """Each role's own start page."""
    user = staff()
    return redirect(url_for(START.get(user.role, "workbench.cases")))


@bp.route("/workbench/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():
    """The one sign-in page for all staff; the session is the wall's sealed cookie."""
    next_url = _safe_next(request.args.get("next"))
    if request.method == "GET":
        return render("login.html", next=next_url, error=None, username=None)
    username = request.form.get("username", "").strip()
    try:
        user = sign_in(username, request.form.get("password", ""))
    except DomainError as refused:
        if refused.status != 401:
            raise
        db.session.rollback()
        return render("login.html", 401, next=next_url, username=username,
                      error=gettext("Wrong user name or password."))
    db.session.commit()
    return redirect(next_url or url_for(START.get(user.role, "workbench.cases")))


@bp.post("/workbench/logout")
def logout():
    """Sign out and revoke the session's tokens."""
    sign_out()
    return redirect(url_for("workbench.login"))


@bp.get("/workbench/live-token")
def live_token():
    """A fresh access token for the page's ``/live`` connection, and the rooms it joins."""
    user = staff()
    return jsonify(token=access_token(), rooms=default_rooms(user)), 200, NO_STORE


@bp.get("/workbench/regions")
def regions():
    """Regions of the user's city whose name or code matches ``q``, with a point inside each
    (the hotline's address search)."""
    user = require("case.report")
    words = (request.args.get("q") or "").strip()[:100]
    if len(words) < 2:
        return jsonify(items=[])
    escaped = words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = db.session.execute(text("""
        SELECT code, name, ST_X(ST_PointOnSurface(geom)) AS lon,
               ST_Y(ST_PointOnSurface(geom)) AS lat
        FROM regions WHERE (CAST(:city AS integer) IS NULL OR city_id = :city)
          AND (code LIKE :prefix OR name ILIKE :words)
        ORDER BY length(code), code LIMIT 20"""),
        {"city": user_city_id(user), "prefix": escaped + "%", "words": f"%{escaped}%"}).all()
    return jsonify(items=[{"code": r.code, "name": r.name, "lon": r.lon, "lat": r.lat}
                          for r in rows]), 200, NO_STORE


# --- cases for everyone with read access ----------------------------------------------------

def _filters() -> dict:
    """The list's filters from the query string; a bad value is a 422 naming it."""
    args = request.args
    found: dict = {}
    states = [s for s in args.getlist("state") if s]
    for state in states:
        if state not in STATES:
            raise InvalidInput(f"state must be one of {', '.join(STATES)}.", code="bad_state")
    if states:
        found["state"] = states
    for name, allowed in (("clock", CLOCKS), ("channel", CHANNELS)):
        value = args.get(name) or None
        if value is not None and value not in allowed:
            raise InvalidInput(f"{name} must be one of {', '.join(allowed)}.", code=f"bad_{name}")
        if value:
            found[name] = value
    region = (args.get("region") or "").strip()
    if region:
        if not region.isdigit() or len(region) > 15:
            raise InvalidInput("region must be a region code (digits).", code="bad_region")
        found["region"] = region
    category = (args.get("category") or "").strip()
    if category:
        found["category"] = category[:32]
    words = (args.get("q") or "").strip()
    if words:
        found["words"] = words[:200]
    for name, key in (("from", "since"), ("to", "until")):
        value = args.get(name)
        if value:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise InvalidInput(f"{name} must be a date (YYYY-MM-DD).",
                                   code="bad_date") from None
            found[key] = moment if moment.tzinfo else moment.astimezone()
    return found


@bp.get("/workbench/cases")
def cases():
    """Search and filter the cases this user may see; ``format=csv`` exports the filtered
    list; ``fragment=rows`` answers only the rows (the live refresh)."""
    user = require("case.view")
    filters = _filters()
    if request.args.get("format") == "csv":
        return _csv(user, filters)
    page = list_cases(user, cursor=request.args.get("cursor") or None, limit=LIST_SIZE,
                      **filters)
    if request.args.get("fragment") == "rows":
        return render("case_rows.html", items=page["items"])
    more = {k: v for k, v in request.args.to_dict(flat=False).items() if k != "cursor"}
    next_url = url_for("workbench.cases", cursor=page["next_cursor"], **more) \
        if page["next_cursor"] else None
    return render("cases.html", items=page["items"], next_url=next_url,
                  args=request.args, states=STATES, clocks=CLOCKS, channels=CHANNELS,
                  categories=_category_choices(), month=datetime.now().strftime("%Y-%m"))


def _category_choices() -> list:
    """The active catalogue's codes and names for a form's select: ``list_categories``' rows
    without the classes and departments a select does not show."""
    return db.session.execute(select(Category.code, Category.name_zh, Category.name_en)
                              .where(Category.active.is_(True)).order_by(Category.code)).all()


def _csv(user: User, filters: dict) -> Response:
    """The filtered list as CSV (formula-like cells neutralised), up to :data:`CSV_ROWS`."""
    lines = [csv_line(CSV_COLUMNS)]
    cursor = None
    while len(lines) <= CSV_ROWS:
        page = list_cases(user, cursor=cursor, limit=200, **filters)
        lines += [csv_line(item.get(column) for column in CSV_COLUMNS) for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    return Response("\ufeff" + "".join(lines), mimetype="text/csv", headers={
        **NO_STORE, "Content-Disposition": 'attachment; filename="cases.csv"'})


@bp.get("/workbench/cases/<int:case_id>")
def case_page(case_id: int):
    """One case with its whole timeline; its buttons are exactly its ``available_actions``."""
    user = require("case.view")
    case = case_detail(case_id, user)
    photos_by_step: dict = {}
    for photo in case.get("photos", []):
        photos_by_step.setdefault(photo.get("history_id"), []).append(photo)
    duplicates = []
    if case["state"] in ("reported", "verified"):
        duplicates = [d for d in nearby_cases(case["lon"], case["lat"],
                                              category_by_code(case["category"]),
                                              exclude=case["id"])]
    names = {h["actor_id"]: h.get("actor_name") for h in case.get("history", [])}
    # The forms' choices are read only for the steps that offer them.
    needs = {n for a in case["available_actions"] for n in [a["action"], *a.get("needs", ())]}
    departments = list_departments() if "receiver" in needs else []
    return render("case.html", case=case, photos_by_step=photos_by_step, names=names,
                  departments=departments,
                  categories=_category_choices() if "file" in needs else [], units=UNITS,
                  duplicates=duplicates, proposal=_proposal(case, departments))


def _names(user_ids: set) -> dict[int, str]:
    ids = [i for i in user_ids if i]
    if not ids:
        return {}
    rows = db.session.execute(text(
        "SELECT id, COALESCE(display_name, username) AS name FROM users WHERE id = ANY(:ids)"),
        {"ids": ids}).all()
    return {r.id: r.name for r in rows}


def _proposal(case: dict, departments: list) -> dict | None:
    """The dispatch rules' proposal (department, worker, why) for a case awaiting dispatch."""
    return _proposals([case], departments).get(case["id"])


def _proposals(cases: list[dict], departments: list) -> dict[int, dict]:
    """The rules' proposal for each case awaiting dispatch that this user may dispatch: the
    rules' own statement for the whole list at once, and the workers' names in one query."""
    waiting = [c["id"] for c in cases if c["state"] == "filed"
               and any(a["action"] == "dispatch" for a in c["available_actions"])]
    found = choose_receivers(waiting)
    names = _names({f.worker_id for f in found.values()})
    by_id = {d.id: d for d in departments}
    return {case_id: {"department": by_id.get(f.department_id),
                      "worker_id": f.worker_id, "worker": names.get(f.worker_id),
                      "rule": f.rule} for case_id, f in found.items()}


def _number(name: str) -> float | None:
    value = (request.form.get(name) or "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a number.", code=f"bad_{name}") from None


def _step_input() -> StepInput:
    """The step form's fields as the workflow reads them."""
    form = request.form
    deadline = None
    if form.get("deadline"):
        try:
            deadline = datetime.fromisoformat(form["deadline"]).astimezone()
        except ValueError:
            raise InvalidInput("deadline must be a date and time.", code="bad_deadline") from None
    unit = form.get("unit") or None
    if unit is not None and unit not in UNITS:
        raise InvalidInput(f"unit must be one of {', '.join(UNITS)}.", code="bad_unit")
    note = (form.get("note") or "").strip() or None
    if note and len(note) > 4000:
        raise InvalidInput("The note may have at most 4000 characters.", code="note_too_long")
    files = [f for f in request.files.getlist("photos") if f and f.filename]
    return StepInput(
        note=note, lon=_number("lon"), lat=_number("lat"),
        department=form.get("department") or None, worker=form.get("worker") or None,
        category=form.get("category") or None, amount=_number("amount"), unit=unit,
        deadline=deadline, passed=form.get("passed", "true") != "false",
        valid=form.get("valid", "true") != "false", into=_case_ref(form.get("into")),
        photos=store_uploads(files))


def _case_ref(ref: str | None) -> int | None:
    """A case named on a form by its id or its code (a merge's surviving case)."""
    ref = (ref or "").strip()
    if not ref:
        return None
    found = db.session.scalar(text("SELECT id FROM cases WHERE code = :code"),
                              {"code": ref[:40]})
    if found is None and ref.isdigit() and len(ref) < 19:
        return int(ref)
    if found is None:
        raise InvalidInput(f"No case has the code {ref[:40]!r}.", code="into_not_found")
    return found


@bp.post("/workbench/cases/<int:case_id>/<action>")
def step(case_id: int, action: str):
    """Take one step of the loop through the workflow, as the API's step endpoint does."""
    user = staff()
    take_step(case_id, action, user, _step_input())
    back = _safe_next(request.form.get("back"))
    return redirect(back or url_for("workbench.case_page", case_id=case_id), code=303)


@bp.get("/workbench/report.pdf")
def monthly_pdf():
    """The monthly report of a period (YYYY-MM) for this user's city and scope, as PDF."""
    from gridmgr.reports import rendering
    from gridmgr.reports.monthly import monthly_report

    user = require("stats.view")
    period = request.args.get("period", "")
    if len(period) != 7 or period[4] != "-" or not (period[:4] + period[5:]).isdigit():
        raise InvalidInput("period must be a month, YYYY-MM.", code="bad_period")
    city_id = user_city_id(user) or db.session.scalar(text("SELECT min(id) FROM cities"))
    report = monthly_report(city_id, period, prefix=scope_filter(user))
    with tempfile.TemporaryDirectory() as folder:
        out = rendering.write(report, Path(folder) / "report.pdf", lang=_lang())
        data = out.read_bytes()
    return send_file(io.BytesIO(data), mimetype="application/pdf",
                     as_attachment=True, download_name=f"monthly-{period}.pdf")


# --- each role's start page -----------------------------------------------------------------

@bp.get("/workbench/operator")
def operator():
    """New reports from every channel, oldest first, each beside its possible duplicates."""
    user = require("case.file")
    page = list_cases(user, state=["reported", "verified"], oldest_first=True, limit=QUEUE_SIZE)
    items = page["items"]
    context = {"items": items, "duplicates": _duplicates(items),
               "inspectors": _inspectors_awaited(items)}
    if request.args.get("fragment") == "rows":
        return render("queue_rows.html", **context)
    return render("operator.html", **context)


# The intake's duplicate rule (gridmgr.cases.intake.nearby_cases: the category's radius and
# window, open states, nearest first) for a whole queue in one statement: the box from the
# cases' GiST index, then the exact distance on the sphere.
_QUEUE_DUPLICATES = text("""
SELECT q.id AS for_id, n.id, n.code, n.state, n.reporter_count, n.created_at, n.distance
FROM cases q JOIN categories k ON k.id = q.category_id
CROSS JOIN LATERAL (
    SELECT c.id, c.code, c.state, c.reporter_count, c.created_at,
           ST_Distance(c.location::geography, q.location::geography, false) AS distance
    FROM cases c
    WHERE ST_DWithin(c.location, q.location, k.duplicate_radius_m
                     / (111320 * greatest(cos(radians(ST_Y(q.location))), 0.01)))
      AND c.category_id = q.category_id
      AND c.created_at >= now() - make_interval(secs => k.duplicate_window_hours * 3600.0)
      AND c.state = ANY(:open) AND c.id <> q.id
      AND ST_DWithin(c.location::geography, q.location::geography, k.duplicate_radius_m, false)
    ORDER BY distance LIMIT 3
) n
WHERE q.id = ANY(:ids)
ORDER BY q.id, n.distance""")


def _duplicates(items: list[dict]) -> dict[int, list[dict]]:
    """Open cases of the same category near each report of the queue, in one query."""
    if not items:
        return {}
    found: dict[int, list[dict]] = {}
    rows = db.session.execute(_QUEUE_DUPLICATES, {"ids": [i["id"] for i in items],
                                                  "open": list(OPEN_STATES)}).all()
    for r in rows:
        found.setdefault(r.for_id, []).append({
            "id": r.id, "code": r.code, "state": r.state, "distance_m": round(r.distance, 1),
            "reporter_count": r.reporter_count, "created_at": r.created_at.isoformat()})
    return found


def _inspectors_awaited(items: list[dict]) -> dict[str, list[str]]:
    """For each grid whose citizen's report waits to be verified on site (the workflow's
    verify stage: the operator cannot file it before), the active inspectors of that grid."""
    grids = sorted({i["grid_code"] for i in items if i["state"] == "reported"
                    and i.get("source") == "citizen" and i.get("grid_code")})
    if not grids:
        return {}
    rows = db.session.execute(text("""
        SELECT g.code AS grid, COALESCE(u.display_name, u.username) AS name
        FROM unnest(CAST(:grids AS text[])) AS g(code)
        JOIN regions r ON g.code LIKE r.code || '%'
        JOIN users u ON u.region_id = r.id AND u.role = 'inspector' AND u.is_active
        ORDER BY g.code, length(r.code) DESC, name"""), {"grids": grids}).all()
    found: dict[str, list[str]] = {}
    for r in rows:
        found.setdefault(r.grid, []).append(r.name)
    return found


@bp.route("/workbench/hotline", methods=["GET", "POST"])
def hotline():
    """A phoned-in report: the place by a click on the map (or typed), category, text, caller."""
    user = require("case.file")
    error = None
    if request.method == "POST":
        form = request.form
        data = ReportInput(lon=_number("lon"), lat=_number("lat"),
                           category=form.get("category") or None,
                           description=(form.get("description") or "").strip() or None,
                           channel="hotline",
                           contact_name=(form.get("contact_name") or "").strip() or None,
                           contact_phone=(form.get("contact_phone") or "").strip() or None)
        if data.lon is None or data.lat is None:
            raise InvalidInput("Choose the place on the map (or type its longitude and "
                               "latitude).", code="location_required")
        result = submit_report(data, user)
        db.session.commit()
        return redirect(url_for("workbench.case_page", case_id=result.case_id), code=303)
    from web import boundaries

    return render("hotline.html", categories=list_categories(), error=error,
                  city=boundaries.city_view())


@bp.get("/workbench/dispatcher")
def dispatcher():
    """Filed cases awaiting dispatch, oldest first, with the rules' proposal for each."""
    user = require("case.dispatch")
    items = [t["case"] for t in tasks_for(user)["items"] if t["action"] == "dispatch"]
    departments = list_departments()
    proposals = _proposals(items, departments)
    returns = _last_returns([item["id"] for item in items])
    return render("dispatcher.html", items=items, proposals=proposals, returns=returns,
                  departments=departments)


def _last_returns(case_ids: list[int]) -> dict[int, str]:
    """The reason given with each case's latest return, if it was returned."""
    if not case_ids:
        return {}
    rows = db.session.execute(text("""
        SELECT DISTINCT ON (case_id) case_id, note FROM case_history
        WHERE case_id = ANY(:ids) AND action = 'return' ORDER BY case_id, id DESC"""),
        {"ids": case_ids}).all()
    return {r.case_id: r.note for r in rows}


@bp.get("/workbench/department")
def department():
    """The department's queue: dispatched to accept, accepted to handle, oldest first."""
    user = require("case.return")
    tasks = tasks_for(user)["items"]
    return render("department.html", tasks=tasks, units=UNITS)


@bp.get("/workbench/chief")
def chief():
    """Approvals waiting, overdue cases, checked cases to close."""
    user = require("case.close")
    tasks = tasks_for(user)["items"]
    overdue = list_cases(user, clock="red", state=["dispatched", "accepted"], oldest_first=True,
                         limit=QUEUE_SIZE)["items"]
    return render("chief.html", approvals=[t["case"] for t in tasks if t["action"] == "approve"],
                  closing=[t["case"] for t in tasks if t["action"] == "close"],
                  overdue=overdue, units=UNITS)
