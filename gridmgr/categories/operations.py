"""The category catalogue: the shipped defaults, imports (our format and Open311), edits,
validated time limits and the responsible department of a category in a region.

Our catalogue format (``gridmgr/data/categories.json``)::

    {"departments": [{"name", "name_en"}],
     "classes": [{"code": "C01", "kind": "component", "name_zh", "name_en"}],
     "categories": [{"code": "C0101", "class": "C01", "name_zh", "name_en", "department",
                     "duplicate_radius_m", "duplicate_window_hours", "keywords",
                     "limits": {"handle": {"amount": 4, "unit": "urgent_hours"}, ...},
                     "attributes": [...], "description", "auto_dispatch"}]}

Open311 (GeoReport v2) input: a ``services.json`` list, where each service becomes a category
(``service_code`` kept as its code, ``service_name`` its English name and, until someone
translates it, its Chinese name, ``group`` its major class, created as an *event* class unless
told otherwise, ``keywords`` split on commas, ``description`` kept); or one service definition
(``{"service_code", "attributes": [...]}``) whose attributes become that category's extra
questions. A service's ``metadata`` flag only says a definition exists: the category has extra
questions once that definition is imported. Imported services get :data:`OPEN311_LIMITS`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import contains_eager, joinedload

from gridmgr.audit import operations as audit
from gridmgr.calendar.deadlines import UNITS
from gridmgr.categories.models import KINDS, Category, CategoryClass, CategoryDepartment
from gridmgr.errors import Conflict, InvalidInput, NotFound
from gridmgr.extensions import db
from gridmgr.grids.models import Region
from gridmgr.grids.reading import find_region
from gridmgr.people.models import Department, User

DATA = Path(__file__).resolve().parent.parent / "data"
DEFAULT_CATALOGUE = DATA / "categories.json"

# Stages a limit can be set for: 核实, 立案, 派遣, 签收 (acknowledging a dispatch), 处置, 核查.
STAGES = ("verify", "file", "dispatch", "accept", "handle", "check")
OPEN311_LIMITS = {
    "verify": {"amount": 2, "unit": "working_hours"},
    "file": {"amount": 1, "unit": "working_hours"},
    "dispatch": {"amount": 1, "unit": "working_hours"},
    "accept": {"amount": 0.5, "unit": "working_hours"},
    "handle": {"amount": 3, "unit": "working_days"},
    "check": {"amount": 2, "unit": "working_hours"},
}
ATTRIBUTE_DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist",
                       "multivaluelist")
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,32}$")
EDITABLE = ("name_zh", "name_en", "description", "keywords", "duplicate_radius_m",
            "duplicate_window_hours", "limits", "attributes", "auto_dispatch", "active")


@dataclass
class ImportReport:
    """What an import did."""

    departments_created: int = 0
    classes_created: int = 0
    categories_created: int = 0
    categories_updated: int = 0
    categories_unchanged: int = 0
    attributes_set: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"{self.categories_created} categories created, {self.categories_updated} "
                f"updated, {self.categories_unchanged} unchanged; {self.classes_created} classes "
                f"and {self.departments_created} departments created")
        if self.attributes_set:
            text += f"; extra questions set for {', '.join(self.attributes_set)}"
        return text


# -- validation ----------------------------------------------------------------------------


def validate_limits(limits: Any) -> dict:
    """``{stage: {"amount", "unit"}}`` checked (known stage, known unit, positive amount)."""
    if not isinstance(limits, dict):
        raise InvalidInput("limits map each stage to an amount and a unit", code="invalid_limit")
    clean = {}
    for stage, limit in limits.items():
        if stage not in STAGES:
            raise InvalidInput(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}",
                               code="unknown_stage", stage=stage)
        if not isinstance(limit, dict):
            raise InvalidInput(f"the {stage} limit needs an amount and a unit",
                               code="invalid_limit", stage=stage)
        unit, amount = limit.get("unit"), limit.get("amount")
        if unit not in UNITS:
            raise InvalidInput(f"unknown unit {unit!r} for {stage}; units are {', '.join(UNITS)}",
                               code="unknown_unit", stage=stage)
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not amount > 0 \
                or amount != amount or amount == float("inf"):
            raise InvalidInput(f"the {stage} limit needs a positive amount",
                               code="invalid_limit", stage=stage)
        clean[stage] = {"amount": amount, "unit": unit}
    return clean


def validate_attributes(attributes: Any) -> list[dict]:
    """Open311 service-definition attributes, checked for code, datatype and values."""
    if not isinstance(attributes, list):
        raise InvalidInput("attributes are a list", code="invalid_attributes")
    seen = set()
    for i, attr in enumerate(attributes):
        if not isinstance(attr, dict) or not attr.get("code"):
            raise InvalidInput(f"attribute {i} needs a code", code="invalid_attributes")
        if attr["code"] in seen:
            raise InvalidInput(f"attribute code {attr['code']!r} appears twice",
                               code="invalid_attributes")
        seen.add(attr["code"])
        datatype = attr.get("datatype", "string")
        if datatype not in ATTRIBUTE_DATATYPES:
            raise InvalidInput(f"attribute {attr['code']!r} has unknown datatype {datatype!r}",
                               code="invalid_attributes")
        if datatype.endswith("valuelist"):
            values = attr.get("values")
            if not isinstance(values, list) or not values or not all(
                    isinstance(v, dict) and "key" in v for v in values):
                raise InvalidInput(f"attribute {attr['code']!r} needs values with keys",
                                   code="invalid_attributes")
    return attributes


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidInput(f"{name} must be a positive number", code="invalid_input", field=name)
    return float(value)


def _keywords(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [k.strip() for k in value.split(",") if k.strip()]
    if isinstance(value, list) and all(isinstance(k, str) for k in value):
        return [k.strip() for k in value if k.strip()]
    raise InvalidInput("keywords are a list of words or a comma-separated text",
                       code="invalid_input", field="keywords")


# -- lookups -------------------------------------------------------------------------------


def get_category(code: str) -> Category:
    """The category with this code (case-insensitive), or 404 ``category_not_found``."""
    category = db.session.scalar(select(Category).where(func.upper(Category.code) == code.upper()))
    if category is None:
        raise NotFound(f"No category has the code {code}.", code="category_not_found")
    return category


def get_class(code: str) -> CategoryClass:
    """The major class with this code, or 404 ``class_not_found``."""
    cls = db.session.scalar(select(CategoryClass).where(CategoryClass.code == code))
    if cls is None:
        raise NotFound(f"No category class has the code {code}.", code="class_not_found")
    return cls


def list_categories(kind: str | None = None, class_code: str | None = None,
                    include_inactive: bool = False) -> list[Category]:
    """Categories ordered by code, filtered by kind (component/event) and major class."""
    stmt = (select(Category).join(Category.category_class)
            .options(contains_eager(Category.category_class), joinedload(Category.department))
            .order_by(Category.code))
    if kind:
        stmt = stmt.where(CategoryClass.kind == kind)
    if class_code:
        stmt = stmt.where(CategoryClass.code == class_code)
    if not include_inactive:
        stmt = stmt.where(Category.active.is_(True))
    return list(db.session.scalars(stmt))


def list_classes() -> list[CategoryClass]:
    """Every major class, ordered by code."""
    return list(db.session.scalars(select(CategoryClass).order_by(CategoryClass.code)))


def _department_by_name(name: str, name_en: str | None, report: ImportReport) -> Department:
    dept = db.session.scalar(select(Department).where(Department.name == name))
    if dept is None:
        dept = Department(name=name, name_en=name_en)
        db.session.add(dept)
        db.session.flush()
        report.departments_created += 1
    elif name_en and not dept.name_en:
        dept.name_en = name_en
    return dept


def _class(code: str, kind: str, name_zh: str, name_en: str, report: ImportReport,
           update: bool) -> CategoryClass:
    if kind not in KINDS:
        raise InvalidInput(f"class {code}: kind is component or event", code="invalid_kind")
    cls = db.session.scalar(select(CategoryClass).where(CategoryClass.code == code))
    if cls is None:
        cls = CategoryClass(code=code, kind=kind, name_zh=name_zh, name_en=name_en)
        db.session.add(cls)
        db.session.flush()
        report.classes_created += 1
    elif update:
        cls.kind, cls.name_zh, cls.name_en = kind, name_zh, name_en
    return cls


def _apply(category: Category, values: dict) -> bool:
    """Set values on the category; True when anything changed."""
    changed = False
    for key, value in values.items():
        if getattr(category, key) != value:
            setattr(category, key, value)
            changed = True
    return changed


def _upsert(code: str, values: dict, report: ImportReport, update: bool) -> Category:
    category = db.session.scalar(select(Category).where(Category.code == code))
    if category is None:
        category = Category(code=code, **values)
        db.session.add(category)
        report.categories_created += 1
    elif update and _apply(category, values):
        report.categories_updated += 1
    else:
        report.categories_unchanged += 1
    return category


# -- imports -------------------------------------------------------------------------------


def import_catalogue(data: dict, update: bool = True) -> ImportReport:
    """Import our catalogue format; existing categories are updated unless ``update`` is False.
    Everything is checked first: a bad entry refuses the whole file and writes nothing."""
    report = ImportReport()
    try:
        for dept in data.get("departments", []):
            _department_by_name(dept["name"], dept.get("name_en"), report)
        classes = {}
        for cls in data.get("classes", []):
            classes[cls["code"]] = _class(cls["code"], cls["kind"], cls["name_zh"],
                                          cls["name_en"], report, update)
        for i, item in enumerate(data.get("categories", [])):
            code = item.get("code")
            if not isinstance(code, str) or not CODE_PATTERN.match(code):
                raise InvalidInput(f"category {i} needs a code of up to 32 letters or digits",
                                   code="invalid_code")
            cls = classes.get(item.get("class")) or get_class(item.get("class") or code[:3])
            dept_name = item.get("department")
            dept = _department_by_name(dept_name, None, report) if dept_name else None
            values = {
                "class_id": cls.id,
                "name_zh": item["name_zh"],
                "name_en": item.get("name_en") or item["name_zh"],
                "description": item.get("description"),
                "keywords": _keywords(item.get("keywords")),
                "department_id": dept.id if dept else None,
                "duplicate_radius_m": _positive("duplicate_radius_m",
                                                item.get("duplicate_radius_m", 50)),
                "duplicate_window_hours": _positive("duplicate_window_hours",
                                                    item.get("duplicate_window_hours", 72)),
                "limits": validate_limits(item.get("limits", {})),
                "attributes": validate_attributes(item.get("attributes", [])),
                "auto_dispatch": bool(item.get("auto_dispatch", False)),
            }
            _upsert(code, values, report, update)
    except (KeyError, TypeError) as exc:
        db.session.rollback()
        raise InvalidInput(f"the catalogue misses or mistypes a field: {exc}",
                           code="invalid_file") from None
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    return report


def load_default_catalogue(update: bool = False) -> ImportReport:
    """Load the shipped catalogue. Idempotent: by default existing categories (perhaps edited
    by the city) stay as they are and only what is missing is created."""
    data = json.loads(DEFAULT_CATALOGUE.read_text(encoding="utf-8"))
    return import_catalogue(data, update=update)


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (slug or "group")[:32]


def import_open311_services(services: list, kind: str = "event",
                            update: bool = True) -> ImportReport:
    """Each Open311 service becomes a category; each group a major class of ``kind``."""
    if kind not in KINDS:
        raise InvalidInput("kind is component or event", code="invalid_kind")
    report = ImportReport()
    try:
        for i, service in enumerate(services):
            if not isinstance(service, dict):
                raise InvalidInput(f"service {i} is not an object", code="invalid_file")
            code = str(service.get("service_code") or "").strip()
            name = (service.get("service_name") or "").strip()
            if not CODE_PATTERN.match(code) or not name:
                raise InvalidInput(f"service {i} needs a service_code and a service_name",
                                   code="invalid_file")
            group = (service.get("group") or "").strip() or "Open311"
            cls = _class(_slug(group), kind, group, group, report, update=False)
            existing = db.session.scalar(select(Category).where(Category.code == code))
            name_zh = name
            if existing is not None and existing.name_zh != existing.name_en:
                name_zh = existing.name_zh  # translated since: keep the translation
            values = {"class_id": cls.id, "name_en": name[:200], "name_zh": name_zh[:200],
                      "description": service.get("description") or None,
                      "keywords": _keywords(service.get("keywords"))}
            category = _upsert(code, values, report, update)
            if existing is None:
                category.limits = dict(OPEN311_LIMITS)
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    return report


def import_open311_definition(definition: dict) -> ImportReport:
    """An Open311 service definition: its attributes become the category's extra questions."""
    code = str(definition.get("service_code") or "")
    attributes = validate_attributes(definition.get("attributes"))
    category = get_category(code)
    category.attributes = sorted(attributes, key=lambda a: a.get("order") or 0)
    db.session.commit()
    report = ImportReport(categories_updated=1)
    report.attributes_set.append(category.code)
    return report


def import_file(path: Path, kind: str = "event", update: bool = True) -> ImportReport:
    """Import a catalogue, an Open311 ``services.json`` list or one service definition."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}", code="invalid_file") from None
    if isinstance(data, list):
        return import_open311_services(data, kind=kind, update=update)
    if isinstance(data, dict) and "categories" in data:
        return import_catalogue(data, update=update)
    if isinstance(data, dict) and "service_code" in data and "attributes" in data:
        return import_open311_definition(data)
    if isinstance(data, dict) and isinstance(data.get("services"), list):
        return import_open311_services(data["services"], kind=kind, update=update)
    raise InvalidInput("not a catalogue, an Open311 services list or a service definition",
                       code="invalid_file")


# -- edits ---------------------------------------------------------------------------------


def _clean_changes(changes: dict) -> dict:
    clean = {}
    for key, value in changes.items():
        if key == "limits":
            value = validate_limits(value)
        elif key == "attributes":
            value = validate_attributes(value)
        elif key == "keywords":
            value = _keywords(value)
        elif key in ("duplicate_radius_m", "duplicate_window_hours"):
            value = _positive(key, value)
        elif key in ("name_zh", "name_en") and not (isinstance(value, str) and value.strip()):
            raise InvalidInput(f"{key} cannot be empty", code="invalid_input", field=key)
        elif key not in EDITABLE and key not in ("class_code", "department_id"):
            raise InvalidInput(f"{key} cannot be changed", code="invalid_input", field=key)
        clean[key] = value
    if "class_code" in clean:
        clean["class_id"] = get_class(clean.pop("class_code")).id
    dept_id = clean.get("department_id")
    if dept_id is not None and db.session.get(Department, dept_id) is None:
        raise NotFound(f"No department has the id {dept_id}.", code="department_not_found")
    return clean


def create_category(code: str, class_code: str, name_zh: str, name_en: str,
                    **values) -> Category:
    """A new category in an existing major class (409 ``category_exists`` when taken)."""
    if not CODE_PATTERN.match(code or ""):
        raise InvalidInput("a code is 1 to 32 letters, digits or . _ : -", code="invalid_code")
    if db.session.scalar(select(Category.id).where(func.upper(Category.code) == code.upper())):
        raise Conflict(f"A category with the code {code} exists.", code="category_exists")
    clean = _clean_changes({"class_code": class_code, "name_zh": name_zh, "name_en": name_en,
                            **values})
    category = Category(code=code, **clean)
    db.session.add(category)
    db.session.commit()
    return category


def update_category(code: str, changes: dict, actor: User | None = None) -> Category:
    """Change a category's names, limits, department, duplicate rule, questions or state; the
    change is written to the audit log (``actor`` None: the command line)."""
    category = get_category(code)
    clean = _clean_changes(changes)
    before = {key: getattr(category, key) for key in clean}
    for key, value in clean.items():
        setattr(category, key, value)
    audit.record(actor, "category.update", "category", category.code, before=_jsonable(before),
                 after=_jsonable(clean))
    db.session.commit()
    return category


def _jsonable(values: dict) -> dict:
    return {key: value if isinstance(value, dict | list | str | int | float | bool | None)
            else str(value) for key, value in values.items()}


def set_region_department(category_code: str, region_code: str, department_id: int,
                          city_id: int | None = None,
                          actor: User | None = None) -> CategoryDepartment:
    """Make ``department_id`` responsible for the category inside the region (and below);
    written to the audit log."""
    category = get_category(category_code)
    region = find_region(region_code, city_id)
    if db.session.get(Department, department_id) is None:
        raise NotFound(f"No department has the id {department_id}.", code="department_not_found")
    row = db.session.scalar(select(CategoryDepartment).where(
        CategoryDepartment.category_id == category.id, CategoryDepartment.region_id == region.id))
    before = None
    if row is None:
        row = CategoryDepartment(category_id=category.id, region_id=region.id)
        db.session.add(row)
    else:
        before = _override(region, row.department_id)
    row.department_id = department_id
    audit.record(actor, "category.region_department", "category", category.code,
                 before=before, after=_override(region, department_id))
    db.session.commit()
    return row


def _override(region: Region, department_id: int) -> dict:
    return {"region_code": region.code, "region_id": region.id, "city_id": region.city_id,
            "department_id": department_id}


def clear_region_department(category_code: str, region_code: str,
                            city_id: int | None = None, actor: User | None = None) -> bool:
    """Remove a region's override; False when there was none."""
    category = get_category(category_code)
    region = find_region(region_code, city_id)
    row = db.session.scalar(select(CategoryDepartment).where(
        CategoryDepartment.category_id == category.id, CategoryDepartment.region_id == region.id))
    if row is None:
        return False
    audit.record(actor, "category.region_department.clear", "category", category.code,
                 before=_override(region, row.department_id))
    db.session.delete(row)
    db.session.commit()
    return True


def region_departments(category: Category) -> list[tuple[Region, Department]]:
    """The category's region overrides, ordered by region code."""
    rows = db.session.execute(
        select(Region, Department)
        .join(CategoryDepartment, CategoryDepartment.region_id == Region.id)
        .join(Department, Department.id == CategoryDepartment.department_id)
        .where(CategoryDepartment.category_id == category.id).order_by(Region.code)).all()
    return [(r, d) for r, d in rows]


# The department responsible for a category at a place: the override on the region of
# :grid or its nearest ancestor (in city :city when it is not NULL), else the category's own.
# Filing embeds it in the statement that chooses the receiver (``gridmgr.dispatch.rules``).
RESPONSIBLE_DEPARTMENT_SQL = """COALESCE(
    (SELECT cd.department_id
     FROM category_departments cd JOIN regions g ON g.id = cd.region_id
     WHERE cd.category_id = :category AND starts_with(:grid, g.code)
       AND (CAST(:city AS integer) IS NULL OR g.city_id = :city)
     ORDER BY char_length(g.code) DESC LIMIT 1),
    (SELECT department_id FROM categories WHERE id = :category))"""


def responsible_department(category: Category | str, region_code: str | None,
                           city_id: int | None = None) -> Department | None:
    """The department for the category at ``region_code``: the override on that region or its
    nearest ancestor (same city when ``city_id`` is given), else the category's default."""
    if isinstance(category, str):
        category = get_category(category)
    department_id = db.session.execute(
        text(f"SELECT {RESPONSIBLE_DEPARTMENT_SQL}"),
        {"category": category.id, "grid": region_code, "city": city_id}).scalar()
    return db.session.get(Department, department_id) if department_id is not None else None
