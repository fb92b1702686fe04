"""The category catalogue over HTTP: ``/api/v1/categories`` (public) and
``/api/v1/admin/categories`` (administrators, through the policy's ``admin.categories``)."""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from gridmgr.categories import operations as ops
from gridmgr.categories.models import KINDS, Category
from gridmgr.errors import NotFound
from gridmgr.grids.reading import find_region
from gridmgr.people.policy import authorize
from mobile_api.auth import auth_required, current_user

blp = Blueprint("categories", __name__, description="Categories of problems (部件 / 事件)")

LANGS = ("zh", "en")


class CategoryQuery(Schema):
    kind = fields.String(validate=validate.OneOf(KINDS))
    class_code = fields.String(data_key="class", metadata={"description": "major class, e.g. C01"})
    lang = fields.String(validate=validate.OneOf(LANGS),
                         metadata={"description": "language of `name` (default: "
                                                  "Accept-Language, else zh)"})


class LangQuery(Schema):
    lang = fields.String(validate=validate.OneOf(LANGS))


class LimitSchema(Schema):
    amount = fields.Float(required=True)
    unit = fields.String(required=True, metadata={"enum": list(ops.UNITS)})


class DepartmentRefSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    name_en = fields.String(allow_none=True)


class CategorySchema(Schema):
    code = fields.String()
    kind = fields.String(metadata={"enum": list(KINDS)})
    class_code = fields.String(data_key="class")
    class_name_zh = fields.String()
    class_name_en = fields.String()
    name = fields.String(metadata={"description": "the name in the requested language"})
    name_zh = fields.String()
    name_en = fields.String()
    description = fields.String(allow_none=True)
    keywords = fields.List(fields.String())
    department = fields.Nested(DepartmentRefSchema, allow_none=True)
    limits = fields.Dict(keys=fields.String(metadata={"enum": list(ops.STAGES)}),
                         values=fields.Nested(LimitSchema))
    duplicate_radius_m = fields.Float()
    duplicate_window_hours = fields.Float()
    attributes = fields.List(fields.Dict(), metadata={
        "description": "extra questions, as Open311 service-definition attributes"})
    auto_dispatch = fields.Boolean()
    active = fields.Boolean()


class CategoryUpdateSchema(Schema):
    class_code = fields.String(data_key="class")
    name_zh = fields.String(validate=validate.Length(1, 200))
    name_en = fields.String(validate=validate.Length(1, 200))
    description = fields.String(allow_none=True)
    keywords = fields.List(fields.String())
    department_id = fields.Integer(allow_none=True)
    limits = fields.Raw(metadata={"description": "{stage: {amount, unit}}; stages "
                                                 + ", ".join(ops.STAGES) + "; units "
                                                 + ", ".join(ops.UNITS)})
    duplicate_radius_m = fields.Float()
    duplicate_window_hours = fields.Float()
    attributes = fields.Raw(metadata={"description": "Open311 attributes (a list)"})
    auto_dispatch = fields.Boolean()
    active = fields.Boolean()


class CategoryCreateSchema(CategoryUpdateSchema):
    code = fields.String(required=True, validate=validate.Length(1, 32))
    class_code = fields.String(data_key="class", required=True)
    name_zh = fields.String(required=True, validate=validate.Length(1, 200))
    name_en = fields.String(required=True, validate=validate.Length(1, 200))


class RegionDepartmentSchema(Schema):
    department_id = fields.Integer(required=True)


class RegionOverrideSchema(Schema):
    region_code = fields.String()
    region_name = fields.String()
    department = fields.Nested(DepartmentRefSchema)


def _lang(explicit: str | None) -> str:
    if explicit:
        return explicit
    return request.accept_languages.best_match(LANGS) or "zh"


def _dump(category: Category, lang: str) -> dict:
    cls, dept = category.category_class, category.department
    return {
        "code": category.code, "kind": cls.kind, "class_code": cls.code,
        "class_name_zh": cls.name_zh, "class_name_en": cls.name_en,
        "name": category.name_zh if lang == "zh" else category.name_en,
        "name_zh": category.name_zh, "name_en": category.name_en,
        "description": category.description, "keywords": category.keywords or [],
        "department": {"id": dept.id, "name": dept.name, "name_en": dept.name_en} if dept else None,
        "limits": category.limits or {}, "duplicate_radius_m": category.duplicate_radius_m,
        "duplicate_window_hours": category.duplicate_window_hours,
        "attributes": category.attributes or [], "auto_dispatch": category.auto_dispatch,
        "active": category.active,
    }


@blp.route("/categories")
@blp.arguments(CategoryQuery, location="query")
@blp.response(200, CategorySchema(many=True))
def list_categories(query):
    """Active categories with their class, department, limits and duplicate rule."""
    lang = _lang(query.get("lang"))
    rows = ops.list_categories(kind=query.get("kind"), class_code=query.get("class_code"))
    return [_dump(c, lang) for c in rows]


@blp.route("/categories/<code>")
@blp.arguments(LangQuery, location="query")
@blp.response(200, CategorySchema)
@blp.alt_response(404, description="category_not_found")
def get_category(query, code):
    """One category."""
    return _dump(ops.get_category(code), _lang(query.get("lang")))


@blp.route("/admin/categories", methods=["POST"])
@auth_required()
@blp.arguments(CategoryCreateSchema)
@blp.response(201, CategorySchema)
@blp.alt_response(403, description="forbidden: not an administrator")
@blp.alt_response(409, description="category_exists")
@blp.alt_response(422, description="unknown_stage, unknown_unit, invalid_limit, invalid_code")
def create_category(data):
    """Add a category to a major class (administrators)."""
    authorize(current_user(), "admin.categories")
    values = dict(data)
    category = ops.create_category(values.pop("code"), values.pop("class_code"),
                                   values.pop("name_zh"), values.pop("name_en"), **values)
    return _dump(category, _lang(None))


@blp.route("/admin/categories/<code>", methods=["PATCH"])
@auth_required()
@blp.arguments(CategoryUpdateSchema)
@blp.response(200, CategorySchema)
@blp.alt_response(403, description="forbidden: not an administrator")
@blp.alt_response(404, description="category_not_found")
@blp.alt_response(422, description="unknown_stage, unknown_unit, invalid_limit")
def update_category(data, code):
    """Change a category's names, limits, department, duplicate rule or questions."""
    user = current_user()
    authorize(user, "admin.categories")
    return _dump(ops.update_category(code, data, actor=user), _lang(None))


@blp.route("/admin/categories/<code>/regions")
@auth_required()
@blp.response(200, RegionOverrideSchema(many=True))
def list_region_departments(code):
    """The regions that name their own responsible department for the category."""
    authorize(current_user(), "admin.categories")
    return [{"region_code": r.code, "region_name": r.name,
             "department": {"id": d.id, "name": d.name, "name_en": d.name_en}}
            for r, d in ops.region_departments(ops.get_category(code))]


@blp.route("/admin/categories/<code>/regions/<region_code>", methods=["PUT"])
@auth_required()
@blp.arguments(RegionDepartmentSchema)
@blp.response(200, RegionOverrideSchema)
@blp.alt_response(403, description="forbidden: not an administrator of that region")
@blp.alt_response(404, description="category_not_found, region_not_found, department_not_found")
def set_region_department(data, code, region_code):
    """Make a department responsible for the category inside a region (and below it)."""
    user = current_user()
    authorize(user, "admin.categories", region_code=region_code, city_id=user.city_id)
    ops.set_region_department(code, region_code, data["department_id"], city_id=user.city_id,
                              actor=user)
    dept = ops.responsible_department(code, region_code, user.city_id)
    region = find_region(region_code, user.city_id)
    return {"region_code": region.code, "region_name": region.name,
            "department": {"id": dept.id, "name": dept.name, "name_en": dept.name_en}}


@blp.route("/admin/categories/<code>/regions/<region_code>", methods=["DELETE"])
@auth_required()
@blp.response(204)
@blp.alt_response(404, description="category_not_found, region_not_found, no_override")
def clear_region_department(code, region_code):
    """Remove a region's own department: the category's default applies again."""
    user = current_user()
    authorize(user, "admin.categories", region_code=region_code, city_id=user.city_id)
    if not ops.clear_region_department(code, region_code, city_id=user.city_id, actor=user):
        raise NotFound(f"Region {region_code} has no department of its own for {code}.",
                       code="no_override")


class SuggestQuery(Schema):
    text = fields.String(required=True, validate=validate.Length(1, 2000),
                         metadata={"description": "what the reporter wrote"})
    lon = fields.Float(allow_nan=False, validate=validate.Range(-180, 180))
    lat = fields.Float(allow_nan=False, validate=validate.Range(-90, 90))


@blp.route("/categories/suggest")
@blp.arguments(SuggestQuery, location="query")
@blp.response(200, description='{"suggestions": [{"code", "name", "confidence", "reason"}]}, '
                               "the top three, best first")
@blp.alt_response(422, description="text_required")
def suggest_categories(query):
    """Categories suggested for a description (learnt from the city's cases)."""
    from gridmgr.categories.suggest import suggest

    return {"suggestions": suggest(query["text"], query.get("lon"), query.get("lat"))}
