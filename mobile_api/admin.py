"""Administration of users and departments: ``/api/v1/admin/users``, ``/api/v1/admin/departments``.

Administrators only; a region-scoped administrator manages only the users inside the region.
Responses include phone and email (administrators may see them) but never password hashes.
"""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from gridmgr.extensions import db
from gridmgr.people import operations
from gridmgr.people.models import ROLES
from gridmgr.people.policy import authorize
from mobile_api.auth import PrivateUserSchema, auth_required, current_user

blp = Blueprint("admin_people", __name__, description="Administration: users and departments")

REGION_CODE = validate.Regexp(r"^[0-9]{6,12}$", error="a 6, 9 or 12 digit region code")


class UserQuery(Schema):
    role = fields.String(validate=validate.OneOf(ROLES))


class UserCreateSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(1, 150))
    password = fields.String(required=True, load_only=True,
                             validate=validate.Length(operations.MIN_PASSWORD_LENGTH, 1024))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    region_code = fields.String(allow_none=True, validate=REGION_CODE,
                                metadata={"description": "scope; omit for the whole city"})
    city = fields.String(allow_none=True, metadata={"description": "city slug"})
    department_id = fields.Integer(allow_none=True)
    display_name = fields.String(allow_none=True, validate=validate.Length(1, 200))
    phone = fields.String(allow_none=True, validate=validate.Length(3, 50))
    email = fields.Email(allow_none=True, validate=validate.Length(3, 254))


class UserUpdateSchema(Schema):
    password = fields.String(load_only=True,
                             validate=validate.Length(operations.MIN_PASSWORD_LENGTH, 1024))
    role = fields.String(validate=validate.OneOf(ROLES))
    region_code = fields.String(allow_none=True, validate=REGION_CODE)
    city = fields.String(allow_none=True)
    department_id = fields.Integer(allow_none=True)
    display_name = fields.String(allow_none=True, validate=validate.Length(1, 200))
    phone = fields.String(allow_none=True, validate=validate.Length(3, 50))
    email = fields.Email(allow_none=True, validate=validate.Length(3, 254))
    is_active = fields.Boolean()


class DepartmentSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(1, 200))
    name_en = fields.String(allow_none=True, validate=validate.Length(1, 200))
    city_id = fields.Integer(dump_only=True, allow_none=True)
    city = fields.String(load_only=True, allow_none=True, metadata={"description": "city slug"})
    created_at = fields.DateTime(dump_only=True)


class DepartmentUpdateSchema(DepartmentSchema):
    name = fields.String(validate=validate.Length(1, 200))


# --- users -----------------------------------------------------------------------------------

@blp.route("/admin/users", methods=["GET"])
@blp.arguments(UserQuery, location="query")
@blp.response(200, PrivateUserSchema(many=True))
@auth_required
def list_users(query):
    """Users inside the administrator's scope."""
    return operations.list_users(current_user(), role=query.get("role"))


@blp.route("/admin/users", methods=["POST"])
@blp.arguments(UserCreateSchema)
@blp.response(201, PrivateUserSchema)
@blp.alt_response(409, description="username_taken")
@blp.alt_response(404, description="region_not_found")
@blp.alt_response(422, description="unknown_role, city_required, department_required, ...")
@auth_required
def create_user(data):
    """Create a user with a role, a region scope and a department."""
    user = operations.create_user(
        current_user(), data["username"], data["password"], data["role"],
        region_code=data.get("region_code"), city=data.get("city"),
        department=data.get("department_id"), display_name=data.get("display_name"),
        phone=data.get("phone"), email=data.get("email"))
    db.session.commit()
    return user


@blp.route("/admin/users/<int:user_id>", methods=["GET"])
@blp.response(200, PrivateUserSchema)
@auth_required
def get_user(user_id):
    """One user."""
    return operations.get_user(current_user(), user_id)


@blp.route("/admin/users/<int:user_id>", methods=["PATCH"])
@blp.arguments(UserUpdateSchema)
@blp.response(200, PrivateUserSchema)
@auth_required
def update_user(data, user_id):
    """Change a user's role, scope, department, password, profile or active flag.

    Only to a role and scope inside the administrator's own (herself included). A new password
    or disabling ends the user's tokens; any change of access closes their live connections.
    """
    actor = current_user()
    user = operations.get_user(actor, user_id)
    if "department_id" in data:
        data["department"] = data.pop("department_id")
    operations.update_user(actor, user, **data)
    db.session.commit()
    return user


@blp.route("/admin/users/<int:user_id>", methods=["DELETE"])
@blp.response(204)
@auth_required
def deactivate_user(user_id):
    """Disable a user: they can no longer sign in and their tokens stop working."""
    actor = current_user()
    operations.deactivate_user(actor, operations.get_user(actor, user_id))
    db.session.commit()


# --- departments -----------------------------------------------------------------------------

@blp.route("/admin/departments", methods=["GET"])
@blp.response(200, DepartmentSchema(many=True))
@auth_required
def list_departments():
    """All departments."""
    authorize(current_user(), "admin.departments")
    return operations.list_departments()


@blp.route("/admin/departments", methods=["POST"])
@blp.arguments(DepartmentSchema)
@blp.response(201, DepartmentSchema)
@blp.alt_response(409, description="department_exists")
@auth_required
def create_department(data):
    """Create a department."""
    department = operations.create_department(current_user(), data["name"],
                                              data.get("name_en"), data.get("city"))
    db.session.commit()
    return department


@blp.route("/admin/departments/<int:department_id>", methods=["GET"])
@blp.response(200, DepartmentSchema)
@auth_required
def get_department(department_id):
    """One department."""
    return operations.get_department(current_user(), department_id)


@blp.route("/admin/departments/<int:department_id>", methods=["PATCH"])
@blp.arguments(DepartmentUpdateSchema)
@blp.response(200, DepartmentSchema)
@auth_required
def update_department(data, department_id):
    """Rename a department or move it to a city."""
    actor = current_user()
    department = operations.update_department(
        actor, operations.get_department(actor, department_id), **data)
    db.session.commit()
    return department


@blp.route("/admin/departments/<int:department_id>", methods=["DELETE"])
@blp.response(204)
@blp.alt_response(409, description="department_in_use")
@auth_required
def delete_department(department_id):
    """Delete a department nobody works in any more."""
    actor = current_user()
    operations.delete_department(actor, operations.get_department(actor, department_id))
    db.session.commit()
