"""The administrator's pages: users (create, role, scope, department, disable, reset
password), departments, and the audit log of every administrative change. Each change goes
through ``gridmgr.people.operations``, which writes its audit entry."""

from __future__ import annotations

from flask import redirect, request, url_for
from sqlalchemy import text

from gridmgr.calendar.deadlines import UNITS
from gridmgr.categories import operations as categories
from gridmgr.errors import Forbidden, InvalidInput
from gridmgr.extensions import db
from gridmgr.open311 import keys
from gridmgr.people import operations
from gridmgr.people.models import STAFF_ROLES, User
from gridmgr.people.policy import authorize, user_city_id
from web.workbench import bp
from web.workbench.pages import render, require


def _text(name: str) -> str | None:
    return (request.form.get(name) or "").strip() or None


def _own_city(actor) -> str | None:
    """A city's administrator creates users of her city (the whole city when no region is
    given); a platform administrator's new user without a region serves every city."""
    city_id = user_city_id(actor)
    if city_id is None:
        return None
    return db.session.scalar(text("SELECT slug FROM cities WHERE id = :id"), {"id": city_id})


@bp.get("/workbench/admin")
def admin_home():
    """Users and departments in the administrator's scope."""
    user = require("admin.users")
    return render("admin.html", users=operations.list_users(user),
                  departments=operations.list_departments(), roles=STAFF_ROLES + ("citizen",),
                  platform=user_city_id(user) is None)


@bp.post("/workbench/admin/users")
def admin_create_user():
    """A new user with role, region scope and department."""
    actor = require("admin.users")
    region_code = _text("region_code")
    created = operations.create_user(
        actor, _text("username") or "", request.form.get("password") or "",
        _text("role") or "", region_code=region_code,
        city=None if region_code else _own_city(actor),
        department=_text("department"), display_name=_text("display_name"))
    db.session.commit()
    return redirect(url_for("workbench.admin_user", user_id=created.id), code=303)


@bp.route("/workbench/admin/users/<int:user_id>", methods=["GET", "POST"])
def admin_user(user_id: int):
    """One user: change role, scope, department; disable; reset the password."""
    actor = require("admin.users")
    user = operations.get_user(actor, user_id)
    if request.method == "POST":
        what = request.form.get("change")
        if what == "access":
            operations.update_user(actor, user, role=_text("role"),
                                   region_code=_text("region_code"),
                                   department=_text("department"))
        elif what == "password":
            operations.update_user(actor, user, password=request.form.get("password") or "")
        elif what == "disable":
            operations.deactivate_user(actor, user)
        elif what == "enable":
            operations.update_user(actor, user, is_active=True)
        db.session.commit()
        return redirect(url_for("workbench.admin_user", user_id=user.id), code=303)
    return render("admin_user.html", subject=user, departments=operations.list_departments(),
                  roles=STAFF_ROLES + ("citizen",))


@bp.post("/workbench/admin/departments")
def admin_create_department():
    """A new department."""
    actor = require("admin.departments")
    operations.create_department(actor, _text("name") or "", _text("name_en"))
    db.session.commit()
    return redirect(url_for("workbench.admin_home"), code=303)


@bp.get("/workbench/admin/audit")
def admin_audit():
    """The latest administrative changes: who, when, what, before and after."""
    actor = require("admin.users")
    return render("audit.html", entries=operations.audit_log(actor))


@bp.get("/workbench/admin/categories")
def admin_categories():
    """Every category: its time limit per stage, automatic dispatch, default department and
    the regions that name their own department."""
    require("admin.categories")
    listed = categories.list_categories()
    return render("admin_categories.html", categories=listed, stages=categories.STAGES,
                  units=UNITS, departments=operations.list_departments(),
                  overrides={c.code: categories.region_departments(c) for c in listed})


def _limits(form) -> dict:
    """The per-stage limits the form gives (a stage left empty has no limit)."""
    limits = {}
    for stage in categories.STAGES:
        amount = (form.get(f"{stage}_amount") or "").strip()
        if not amount:
            continue
        try:
            value = float(amount)
        except ValueError:
            raise InvalidInput(f"The {stage} limit must be a number.",
                               code="invalid_limit") from None
        limits[stage] = {"amount": int(value) if value.is_integer() else value,
                         "unit": form.get(f"{stage}_unit")}
    return limits


@bp.post("/workbench/admin/categories/<code>")
def admin_category(code: str):
    """Change a category's limits, automatic dispatch and default department (audited)."""
    actor = require("admin.categories")
    # A category's own settings hold for the whole city: as on the API, not a street's admin.
    authorize(actor, "admin.categories")
    department = _text("department_id")
    if department is not None and not department.isdigit():
        raise InvalidInput("Choose a department from the list.", code="invalid_input")
    categories.update_category(code, {
        "limits": _limits(request.form), "auto_dispatch": request.form.get("auto_dispatch") == "on",
        "department_id": int(department) if department else None}, actor=actor)
    return redirect(url_for("workbench.admin_categories") + f"#cat-{code}", code=303)


@bp.post("/workbench/admin/categories/<code>/regions")
def admin_category_region(code: str):
    """A region's own department for the category (or none: ``clear``), audited."""
    actor = require("admin.categories")
    region_code = _text("region_code") or ""
    authorize(actor, "admin.categories", region_code=region_code, city_id=user_city_id(actor))
    if request.form.get("clear"):
        categories.clear_region_department(code, region_code, city_id=user_city_id(actor),
                                           actor=actor)
    else:
        department = _text("department_id") or ""
        if not department.isdigit():
            raise InvalidInput("Choose a department from the list.", code="invalid_input")
        categories.set_region_department(code, region_code, int(department),
                                         city_id=user_city_id(actor), actor=actor)
    return redirect(url_for("workbench.admin_categories") + f"#cat-{code}", code=303)


def _platform_admin() -> User:
    """Open311 keys serve every city: a platform administrator manages them."""
    actor = require("admin.users")
    if user_city_id(actor) is not None:
        raise Forbidden("Open311 keys serve every city: only a platform administrator manages "
                        "them.", code="forbidden")
    return actor


@bp.get("/workbench/admin/open311-keys")
def admin_open311_keys():
    """The Open311 API keys (names, when made, revoked or not); a new key is shown once."""
    _platform_admin()
    return render("admin_keys.html", keys=keys.list_api_keys(), new_key=None, new_name=None)


@bp.post("/workbench/admin/open311-keys")
def admin_open311_key():
    """Make a key (shown once on the answer) or revoke one; both audited."""
    actor = _platform_admin()
    name = _text("name") or ""
    if request.form.get("revoke"):
        keys.revoke_api_key(name, actor=actor)
        return redirect(url_for("workbench.admin_open311_keys"), code=303)
    made = keys.create_api_key(name, actor=actor)
    return render("admin_keys.html", keys=keys.list_api_keys(), new_key=made, new_name=name)
