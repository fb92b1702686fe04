"""Categories seen as Open311 services, and cities seen as jurisdictions.

A category is a service: its code is the service_code, its major class the group, its extra
questions (``Category.attributes``) the service definition. Names follow the request's
language: Chinese when it asks for ``zh``, English otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from gridmgr.errors import DomainError, NotFound
from gridmgr.extensions import db
from gridmgr.grids.models import City
from gridmgr.opendata.dates import parse_w3c_datetime

DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")


@dataclass(frozen=True)
class Jurisdiction:
    """The city a request addresses; ``city_id`` None means every city of the deployment."""

    city_id: int | None
    slug: str | None
    timezone: str | None


def resolve_jurisdiction(jurisdiction_id: str | None) -> Jurisdiction:
    """The city whose slug is ``jurisdiction_id``; empty means none given (all cities)."""
    slug = (jurisdiction_id or "").strip()
    if not slug:
        only = db.session.execute(select(City.id, City.slug, City.timezone).limit(2)).all()
        if len(only) == 1:  # a single-city deployment answers in its own timezone
            return Jurisdiction(None, None, only[0].timezone)
        return Jurisdiction(None, None, None)
    city = db.session.scalar(select(City).where(City.slug == slug))
    if city is None:
        raise NotFound(f"jurisdiction_id {slug!r} was not found.", code="jurisdiction_not_found")
    return Jurisdiction(city.id, city.slug, city.timezone)


def jurisdictions() -> list[str]:
    """The jurisdiction_id of every city (its slug)."""
    return list(db.session.scalars(select(City.slug).order_by(City.slug)))


def _text(value, lang: str) -> str | None:
    """A text that may be given per language (``{"zh": …, "en": …}``) in ``lang``."""
    if isinstance(value, dict):
        return value.get(lang) or value.get("en") or value.get("zh")
    return value


def _name(obj, lang: str) -> str:
    return (obj.name_zh if lang == "zh" else obj.name_en) or obj.name_en or obj.name_zh


def _keywords(keywords) -> str | None:
    if not keywords:
        return None
    if isinstance(keywords, str):
        return keywords
    return ", ".join(str(k) for k in keywords)


def _categories():
    from gridmgr.categories.models import Category

    return select(Category).options(joinedload(Category.category_class)).where(
        Category.active.is_(True))


def service_list(lang: str) -> list[dict]:
    """Every active category as a GeoReport service, ordered by service_code."""
    from gridmgr.categories.models import Category

    services = []
    for category in db.session.scalars(_categories().order_by(Category.code)):
        services.append({
            "service_code": category.code,
            "service_name": _name(category, lang),
            "description": _text(category.description, lang),
            "metadata": bool(category.attributes),
            "type": "realtime",
            "keywords": _keywords(category.keywords),
            "group": _name(category.category_class, lang),
        })
    return services


def find_category(service_code: str):
    """The active category whose code is ``service_code`` (case-insensitive), or 404."""
    from gridmgr.categories.models import Category

    code = (service_code or "").strip()
    category = db.session.scalar(_categories().where(func.upper(Category.code) == code.upper()))
    if category is None:
        raise NotFound(f"service_code {code!r} was not found.", code="service_not_found")
    return category


@dataclass(frozen=True)
class Service:
    """What filing a request needs of a category: its code and its questions."""

    code: str
    attributes: list


# Per process, by upper-case service code. A stale entry costs nothing wrong: the statement
# that stores a request checks the category and its questions again (``ReportInput.questions``)
# and a changed one is read anew (:func:`forget_service`).
_SERVICES: dict[str, Service] = {}


def service_to_file(service_code: str) -> Service:
    """The active category whose code is ``service_code`` (case-insensitive), or 404; read
    from the database only the first time in a process."""
    key = (service_code or "").strip().upper()
    found = _SERVICES.get(key)
    if found is None:
        category = find_category(service_code)
        found = Service(category.code, list(category.attributes or []))
        if len(_SERVICES) > 1024:
            _SERVICES.clear()
        _SERVICES[key] = found
    return found


def forget_service(service_code: str, attributes: list | None = None) -> None:
    """Drop what this process remembers of a service (or keep its questions as they are now)."""
    key = (service_code or "").strip().upper()
    old = _SERVICES.pop(key, None)
    if old is not None and attributes is not None:
        _SERVICES[key] = Service(old.code, list(attributes))


def _attribute(attribute: dict, lang: str, order: int) -> dict:
    values = attribute.get("values") or []
    return {
        "variable": bool(attribute.get("variable", True)),
        "code": str(attribute["code"]),
        "datatype": attribute.get("datatype", "string"),
        "required": bool(attribute.get("required", False)),
        "datatype_description": _text(attribute.get("datatype_description"), lang),
        "order": int(attribute.get("order", order)),
        "description": _text(attribute.get("description"), lang)
        or _text(attribute.get(f"description_{lang}"), lang) or "",
        "values": [{"key": str(v["key"]),
                    "name": _text(v.get("name") or v.get(f"name_{lang}") or v["key"], lang)}
                   for v in values],
    }


def service_attributes(category, lang: str = "en") -> list[dict]:
    """The category's extra questions as GeoReport attributes, in their order."""
    attributes = [_attribute(a, lang, i) for i, a in enumerate(category.attributes or [], 1)]
    return sorted(attributes, key=lambda a: a["order"])


def service_definition(service_code: str, lang: str) -> dict:
    """The GeoReport service definition of one category."""
    category = find_category(service_code)
    return {"service_code": category.code, "attributes": service_attributes(category, lang)}


def check_attributes(category, given: dict[str, list[str]]) -> dict[str, str | list[str]]:
    """Validate ``attribute[code]`` answers against the definition; returns them by code.

    Required questions must be answered; list answers must be among the listed keys;
    single-valued questions take one value; numbers must be numbers; unknown codes are refused.
    """
    definition = {a["code"]: a for a in service_attributes(category)}
    unknown = sorted(set(given) - set(definition))
    if unknown:
        raise DomainError("unknown_attribute",
                          f"attribute {unknown[0]!r} is not a question of service "
                          f"{category.code}.")
    answers: dict[str, str | list[str]] = {}
    for code, attribute in definition.items():
        values = [v for v in given.get(code, []) if v.strip() != ""]
        if not values:
            if attribute["required"] and attribute["variable"]:
                raise DomainError("missing_attribute",
                                  f"attribute[{code}] is required for service {category.code}: "
                                  f"{attribute['description']}".rstrip(": "))
            continue
        datatype = attribute["datatype"]
        keys = {v["key"] for v in attribute["values"]}
        if datatype == "multivaluelist":
            bad = [v for v in values if v not in keys]
            if bad:
                raise DomainError("invalid_attribute",
                                  f"attribute[{code}] value {bad[0]!r} is not one of "
                                  f"{', '.join(sorted(keys))}.")
            answers[code] = values
            continue
        if len(values) > 1:
            raise DomainError("invalid_attribute", f"attribute[{code}] takes a single value.")
        value = values[0]
        if datatype == "singlevaluelist" and value not in keys:
            raise DomainError("invalid_attribute",
                              f"attribute[{code}] value {value!r} is not one of "
                              f"{', '.join(sorted(keys))}.")
        if datatype == "number":
            try:
                float(value)
            except ValueError:
                raise DomainError("invalid_attribute",
                                  f"attribute[{code}] must be a number.") from None
        if datatype == "datetime":
            parse_w3c_datetime(value, f"attribute[{code}]")
        answers[code] = value
    return answers
