"""People operations: sign-in, registration, users and departments.

Callers commit. Administrative operations take the acting user and ask the policy first; the
``gridmgr`` console acts as :func:`console_admin`, an unscoped administrator.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from blinker import Namespace
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from gridmgr.audit import operations as audit
from gridmgr.audit.models import AuditEntry
from gridmgr.errors import Conflict, DomainError, InvalidInput, NotFound
from gridmgr.extensions import db
from gridmgr.grids.models import City, Region
from gridmgr.grids.reading import find_region
from gridmgr.people.models import ROLES, STAFF_ROLES, Department, User
from gridmgr.people.passwords import dummy_hash, hash_password, needs_rehash, verify_password
from gridmgr.people.policy import authorize, can, scope_filter, user_city_id
from gridmgr.people.tokens import (
    TokenError,
    decode_token,
    end_all_tokens,
    issue_tokens,
    purge_expired_revocations,
    revoke_token,
    user_for_claims,
)

MIN_PASSWORD_LENGTH = 8
USERNAME = re.compile(r"^[\w.@+-]{2,150}$")
SCOPE_LEVELS = ("district", "street", "community")
_UNSET = object()

# Sent, in the caller's transaction, when what a user may do changed (a token revoked, the
# account disabled, the password, role, scope or department changed), with ``user_id`` and
# ``reason``: the live channel, which authenticates its connections through people, listens
# and has every server process check that user's connections again.
access_changed = Namespace().signal("access-changed")


def console_admin() -> User:
    """The operator at the ``gridmgr`` console: an unscoped administrator, never stored."""
    return User(id=0, username="console", role="admin", is_active=True)


# --- sign-in and tokens ----------------------------------------------------------------------

def authenticate(username: str, password: str) -> User:
    """The active user with these credentials; one 401 whatever was wrong, in similar time."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        verify_password(dummy_hash(), password)  # spend the same time as a real check
    elif verify_password(user.password_hash, password) and user.is_active:
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        return user
    raise DomainError("invalid_credentials", "The username or password is not right.", 401)


def sign_in(username: str, password: str) -> dict:
    """A token pair for valid credentials (see :func:`authenticate`)."""
    return issue_tokens(authenticate(username, password))


def refresh_tokens(refresh_token: str | None) -> dict:
    """A new pair for a valid refresh token, which is revoked; a second use is refused."""
    claims = decode_token(refresh_token, kind="refresh")
    user = user_for_claims(claims)
    if not revoke_token(claims):  # someone used it at the same moment
        raise TokenError("token_revoked", "The token has been revoked.")
    return issue_tokens(user)


def revoke_tokens(bearer: str | None, other: str | None = None) -> None:
    """Revoke the presented token and, optionally, another token of the same user; live
    connections opened with a revoked token are closed."""
    claims = _decode_any(bearer)
    other_claims = _decode_any(other) if other else None
    if other_claims is not None and other_claims["sub"] != claims["sub"]:
        raise TokenError("token_invalid", "Both tokens must belong to the same user.")
    purge_expired_revocations()
    revoke_token(claims)
    if other_claims is not None:
        revoke_token(other_claims)
    if str(claims["sub"]).isdigit():
        access_changed.send(None, user_id=int(claims["sub"]), reason="token_revoked")


def _decode_any(token: str | None) -> dict:
    try:
        return decode_token(token, kind="access")
    except TokenError as error:
        if error.code != "token_invalid":
            raise
    return decode_token(token, kind="refresh")


# --- users -----------------------------------------------------------------------------------

def register_citizen(username: str, password: str, display_name: str | None = None,
                     phone: str | None = None, email: str | None = None) -> User:
    """A new citizen account (self-registration); 409 ``name_reserved`` for a username or
    display name that is a staff member's."""
    _check_password(password)
    _refuse_staff_name(username)
    if display_name is not None:
        _refuse_staff_name(display_name)
    return _insert_user(User(username=username, password_hash=hash_password(password),
                             role="citizen", display_name=display_name, phone=phone,
                             email=email, is_active=True))


def _refuse_staff_name(name: str) -> None:
    """409 ``name_reserved`` when ``name`` is, ignoring case and surrounding spaces, the
    username or display name of a staff member: a citizen may not pass for one."""
    wanted = name.strip().lower()
    taken = db.session.scalar(select(func.count()).select_from(User).where(
        User.role.in_(STAFF_ROLES),
        (func.lower(func.btrim(User.username)) == wanted)
        | (func.lower(func.btrim(User.display_name)) == wanted)))
    if taken:
        raise Conflict(f"The name {name.strip()!r:.60} belongs to the city's staff; choose "
                       "another.", code="name_reserved")


def create_user(actor: User, username: str, password: str, role: str, *,
                region_code: str | None = None, city: str | None = None,
                department: int | str | None = None, display_name: str | None = None,
                phone: str | None = None, email: str | None = None) -> User:
    """A new user with a role, a region scope (code; None: whole city) and a department."""
    _check_password(password)
    assignment = _role_assignment(role, region_code=region_code, city=city,
                                  department=department)
    _authorize_assignment(actor, assignment)
    user = User(username=username, password_hash=hash_password(password), is_active=True,
                display_name=display_name, phone=phone, email=email)
    _assign_role(user, assignment)
    created = _insert_user(user)
    audit.record(actor, "user.create", "user", created.id, after=_user_fields(created))
    return created


def update_user(actor: User, user: User, *, role: str | None = None, region_code=_UNSET,
                city=_UNSET, department=_UNSET, password: str | None = None,
                **fields) -> User:
    """Change a user's role, scope, department, password or profile fields.

    Every check runs before anything changes, against the actor's scope as it stands: when
    administrators edit themselves, ``actor`` and ``user`` are one object.
    """
    _authorize_on(actor, user)
    assignment = None
    if role is not None or region_code is not _UNSET or city is not _UNSET \
            or department is not _UNSET:
        assignment = _role_assignment(
            role or user.role,
            region_code=(user.region.code if user.region else None)
            if region_code is _UNSET else region_code,
            city=_city_slug(user) if city is _UNSET else city,
            department=user.department_id if department is _UNSET else department)
        _authorize_assignment(actor, assignment)
    if password is not None:
        _check_password(password)
    if fields.get("is_active") is False and user.id == actor.id:
        raise Conflict("You cannot disable your own account.", code="cannot_disable_self")

    before = _user_fields(user)
    reasons = []
    if assignment is not None and assignment != _current_assignment(user):
        _assign_role(user, assignment)
        reasons.append("access_changed")
    if password is not None:
        user.password_hash = hash_password(password)
        reasons.append("password_changed")
    if fields.get("is_active") is False and user.is_active:
        reasons.append("disabled")
    for name in ("display_name", "phone", "email", "is_active"):
        if name in fields:
            setattr(user, name, fields[name])
    _access_changed(user, reasons)
    db.session.flush()
    after = _user_fields(user)
    if after != before or password is not None:
        audit.record(actor, "user.password_reset" if password is not None and after == before
                     else "user.update", "user", user.id, before=before,
                     after={**after, "password_changed": True} if password is not None
                     else after)
    return user


def deactivate_user(actor: User, user: User) -> None:
    """Disable a user (history keeps referring to them); their tokens stop working."""
    _authorize_on(actor, user)
    if user.id == actor.id:
        raise Conflict("You cannot disable your own account.", code="cannot_disable_self")
    if user.is_active:
        before = _user_fields(user)
        user.is_active = False
        _access_changed(user, ["disabled"])
        audit.record(actor, "user.disable", "user", user.id, before=before,
                     after=_user_fields(user))
    db.session.flush()


def update_profile(user: User, *, current_password: str | None = None,
                   password: str | None = None, **fields) -> User:
    """A user changes their own display name, contact details, language or password.

    A new password ends every token of the user, the one this request came with included:
    the client signs in again with the new password.
    """
    if fields.get("display_name") is not None and user.role not in STAFF_ROLES:
        _refuse_staff_name(fields["display_name"])
    if password is not None:
        if current_password is None or not verify_password(user.password_hash,
                                                           current_password):
            raise InvalidInput("The current password is needed to set a new one.",
                               code="wrong_password")
        user.password_hash = hash_password(password)
        _access_changed(user, ["password_changed"])
    for name in ("display_name", "phone", "email", "language"):
        if name in fields:
            setattr(user, name, fields[name])
    db.session.flush()
    return user


def get_user(actor: User, user_id: int) -> User:
    """A user the actor may manage."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user has the id {user_id}.")
    _authorize_on(actor, user)
    return user


def list_users(actor: User, role: str | None = None) -> list[User]:
    """Users inside the actor's scope, by username."""
    authorize(actor, "admin.users", region_code=_scope_code(actor))
    stmt = select(User).order_by(User.username)
    if role:
        stmt = stmt.where(User.role == role)
    return [u for u in db.session.scalars(stmt) if _manages(actor, u)]


def find_user(username: str) -> User:
    """The user with this username."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"No user is called {username}.")
    return user


class RoleAssignment(NamedTuple):
    """A role with its scope and department, checked and resolved but given to nobody yet."""

    role: str
    region: Region | None
    city_id: int | None
    department: Department | None


def _current_assignment(user: User) -> RoleAssignment:
    return RoleAssignment(user.role, user.region, user.city_id, user.department)


def _access_changed(user: User, reasons: list[str]) -> None:
    """After a change of what ``user`` may do: a new password or a disabled account ends their
    tokens; any such change makes every server process check their live connections again."""
    if not reasons:
        return
    if {"password_changed", "disabled"} & set(reasons):
        end_all_tokens(user)
    access_changed.send(None, user_id=user.id, reason=reasons[0])


def _manages(actor: User, user: User) -> bool:
    return can(actor, "admin.users", **_user_target(user.role, _scope_code(user), user.city_id))


def _authorize_on(actor: User, user: User) -> None:
    authorize(actor, "admin.users", **_user_target(user.role, _scope_code(user), user.city_id))


def _authorize_assignment(actor: User, assignment: RoleAssignment) -> None:
    """The actor may give this role and scope: it lies inside the actor's own scope."""
    region = assignment.region
    authorize(actor, "admin.users", **_user_target(
        assignment.role, region.code if region else None,
        region.city_id if region else assignment.city_id))


def _user_target(role: str, region_code: str | None, city_id: int | None) -> dict:
    # Staff of no region and no city act in every city; citizens act only on their own cases.
    return {"region_code": region_code, "city_id": city_id,
            "every_city": role in STAFF_ROLES and region_code is None and city_id is None}


def _scope_code(user: User) -> str | None:
    return user.region.code if user.region is not None else None


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.",
                           code="password_too_short")


def _role_assignment(role: str, *, region_code: str | None, city: str | None,
                     department: int | str | None) -> RoleAssignment:
    """Check and resolve a role, scope and department without touching any user."""
    if role not in ROLES:
        raise InvalidInput(f"Unknown role {role!r}; roles are {', '.join(ROLES)}.",
                           code="unknown_role")
    if region_code and role not in STAFF_ROLES:
        raise InvalidInput("Only staff have a region scope; citizens have none.",
                           code="scope_not_allowed")
    region = _scope_region(region_code, city) if region_code else None
    dept = find_department(department) if department not in (None, "") else None
    if role == "department" and dept is None:
        raise InvalidInput("Department staff need a department.", code="department_required")
    city_id = region.city_id if region else (_city_id(city) if city else None)
    return RoleAssignment(role, region, city_id, dept)


def _assign_role(user: User, assignment: RoleAssignment) -> None:
    user.role = assignment.role
    user.region = assignment.region
    user.region_id = assignment.region.id if assignment.region else None
    user.city_id = assignment.city_id
    user.department = assignment.department
    user.department_id = assignment.department.id if assignment.department else None


def _scope_region(code: str, city: str | None) -> Region:
    region = find_region(code, _city_id(city) if city else None)
    if region.level not in SCOPE_LEVELS:
        raise InvalidInput("A scope is a district, street or community, not a unit grid.",
                           code="scope_level")
    return region


def _city_id(slug: str) -> int:
    city_id = db.session.scalar(select(City.id).where(City.slug == slug))
    if city_id is None:
        raise InvalidInput(f"No city is called {slug}.", code="unknown_city")
    return city_id


def _city_slug(user: User) -> str | None:
    if user.city_id is None:
        return None
    return db.session.scalar(select(City.slug).where(City.id == user.city_id))


def _insert_user(user: User) -> User:
    if not USERNAME.match(user.username or ""):
        raise InvalidInput("A username has 2 to 150 letters, digits or . @ + - _ characters.",
                           code="invalid_username")
    if db.session.scalar(select(func.count()).select_from(User)
                         .where(User.username == user.username)):
        raise Conflict(f"The username {user.username} is taken.", code="username_taken")
    db.session.add(user)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise Conflict(f"The username {user.username} is taken.",
                       code="username_taken") from None
    return user


# --- departments -----------------------------------------------------------------------------

def find_department(ref: int | str) -> Department:
    """A department by id or by (Chinese or English) name."""
    if isinstance(ref, int) or str(ref).isdigit():
        department = db.session.get(Department, int(ref))
    else:
        department = db.session.scalar(select(Department).where(
            (Department.name == ref) | (Department.name_en == ref)))
    if department is None:
        raise InvalidInput(f"No department is {ref}.", code="unknown_department")
    return department


def get_department(actor: User, department_id: int) -> Department:
    """One department the actor may manage."""
    authorize(actor, "admin.departments")
    department = db.session.get(Department, department_id)
    if department is None:
        raise NotFound(f"No department has the id {department_id}.")
    _authorize_department(actor, department.city_id)
    return department


def list_departments() -> list[Department]:
    """All departments by name (reading them needs no right: they are public names)."""
    return list(db.session.scalars(select(Department).order_by(Department.name)))


def create_department(actor: User, name: str, name_en: str | None = None,
                      city: str | None = None) -> Department:
    """A new department (of no city: of every city); names are unique."""
    authorize(actor, "admin.departments")
    city_id = _city_id(city) if city else None
    _authorize_department(actor, city_id)
    _ensure_unique_department(name, None)
    department = Department(name=name, name_en=name_en, city_id=city_id)
    db.session.add(department)
    db.session.flush()
    audit.record(actor, "department.create", "department", department.id,
                 after=_department_fields(department))
    return department


def update_department(actor: User, department: Department, **fields) -> Department:
    """Rename a department or move it to a city (both the old and the new in the actor's)."""
    _authorize_department(actor, department.city_id)
    city_id = department.city_id
    if "city" in fields:
        city_id = _city_id(fields["city"]) if fields["city"] else None
        _authorize_department(actor, city_id)
    if "name" in fields:
        _ensure_unique_department(fields["name"], department.id)

    before = _department_fields(department)
    if "name" in fields:
        department.name = fields["name"]
    if "name_en" in fields:
        department.name_en = fields["name_en"]
    department.city_id = city_id
    db.session.flush()
    if _department_fields(department) != before:
        audit.record(actor, "department.update", "department", department.id, before=before,
                     after=_department_fields(department))
    return department


def delete_department(actor: User, department: Department) -> None:
    """Remove a department nobody works in any more."""
    _authorize_department(actor, department.city_id)
    staff = db.session.scalar(select(func.count()).select_from(User)
                              .where(User.department_id == department.id, User.is_active))
    if staff:
        raise Conflict(f"{staff} active users still work in {department.name}.",
                       code="department_in_use")
    audit.record(actor, "department.delete", "department", department.id,
                 before=_department_fields(department))
    db.session.delete(department)
    db.session.flush()


def _authorize_department(actor: User, city_id: int | None) -> None:
    authorize(actor, "admin.departments", city_id=city_id, every_city=city_id is None)


def _ensure_unique_department(name: str, own_id: int | None) -> None:
    existing = db.session.scalar(select(Department.id).where(Department.name == name))
    if existing is not None and existing != own_id:
        raise Conflict(f"A department called {name} exists.", code="department_exists")


def _user_fields(user: User) -> dict:
    """What the audit log keeps of a user: access and profile, never the password's hash."""
    return {"username": user.username, "role": user.role, "display_name": user.display_name,
            "region_id": user.region_id, "city_id": user.city_id,
            "department_id": user.department_id, "is_active": user.is_active}


def _department_fields(department: Department) -> dict:
    return {"name": department.name, "name_en": department.name_en,
            "city_id": department.city_id}


def audit_log(actor: User, limit: int = 200) -> list[AuditEntry]:
    """The latest audit entries, newest first, for an administrator; a city's administrator
    reads the entries of her city only, a region's administrator those of her region only."""
    city, prefix = user_city_id(actor), scope_filter(actor)
    authorize(actor, "admin.users", region_code=prefix, city_id=city)
    return audit.read_log(city, limit, prefix)
