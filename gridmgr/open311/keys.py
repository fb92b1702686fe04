"""Issuing, checking and revoking Open311 API keys."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import func, select

from gridmgr.audit import operations as audit
from gridmgr.errors import Conflict, DomainError, NotFound
from gridmgr.extensions import db
from gridmgr.open311.models import ApiKey
from gridmgr.people.models import User


def key_digest(key: str) -> str:
    """What is stored of a key: its SHA-256, in hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_api_key(name: str, actor: User | None = None) -> str:
    """Make a key for ``name`` and return it; it is shown once and only its hash is kept. The
    audit log names it (``actor`` None: the command line), never the key."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise DomainError("invalid_name", "A key needs a name of 1 to 100 characters.")
    if db.session.scalar(select(ApiKey).where(ApiKey.name == name)) is not None:
        raise Conflict(f"A key named {name!r} already exists.", code="key_exists")
    key = secrets.token_urlsafe(32)
    created = ApiKey(name=name, key_hash=key_digest(key))
    db.session.add(created)
    db.session.flush()
    audit.record(actor, "open311_key.create", "open311_key", created.id, after={"name": name})
    db.session.commit()
    return key


def list_api_keys() -> list[ApiKey]:
    """Every key, oldest first, revoked ones included."""
    return list(db.session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def revoke_api_key(name: str, actor: User | None = None) -> ApiKey:
    """Revoke the key named ``name``; requests made with it are refused from now on (audited
    when it was active)."""
    key = db.session.scalar(select(ApiKey).where(ApiKey.name == name))
    if key is None:
        raise NotFound(f"No key is named {name!r}.", code="key_not_found")
    if key.revoked_at is None:
        key.revoked_at = func.now()
        audit.record(actor, "open311_key.revoke", "open311_key", key.id,
                     before={"name": key.name, "revoked": False},
                     after={"name": key.name, "revoked": True})
        db.session.commit()
    return key


def find_active_key(key: str | None) -> ApiKey | None:
    """The unrevoked key matching ``key``, or None."""
    if not key:
        return None
    found = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == key_digest(key)))
    if found is None or found.revoked_at is not None:
        return None
    return found
