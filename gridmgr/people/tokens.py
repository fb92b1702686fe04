"""Signed bearer tokens (JWT, HS256 only): issue, decode, revoke.

An access token authorises requests; a refresh token only buys a new pair. Both carry a
``jti`` so one token can be revoked; revoked ids are kept until the token would expire anyway.
Both also carry the user's token generation (``gen``): a password change or disabling the
account raises it, which ends every token issued before at once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
from flask import current_app
from sqlalchemy import bindparam, delete, exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import joinedload

from gridmgr.errors import DomainError
from gridmgr.extensions import db
from gridmgr.grids.models import Region
from gridmgr.people.models import RevokedToken, User

ALGORITHM = "HS256"
KINDS = ("access", "refresh")


class TokenError(DomainError):
    """A missing, malformed, expired or revoked token: 401 with a precise code."""

    status = 401

    def __init__(self, code: str, message: str):
        super().__init__(code, message)


def token_lifetime(kind: str) -> int:
    """Seconds a token of ``kind`` lives (``GRIDMGR_ACCESS_TOKEN_SECONDS`` / ``_REFRESH_``)."""
    if kind == "access":
        return int(current_app.config["GRIDMGR_ACCESS_TOKEN_SECONDS"])
    return int(current_app.config["GRIDMGR_REFRESH_TOKEN_SECONDS"])


def encode_token(user: User, kind: str, *, now: datetime | None = None,
                 lifetime: int | None = None) -> str:
    """One signed token of ``kind`` for ``user``; ``now``/``lifetime`` let callers back-date it."""
    if kind not in KINDS:
        raise ValueError(f"unknown token kind {kind!r}")
    now = now or datetime.now(UTC)
    seconds = token_lifetime(kind) if lifetime is None else lifetime
    claims = {
        "sub": str(user.id),
        "role": user.role,
        "type": kind,
        "jti": uuid.uuid4().hex,
        "gen": user.token_generation or 0,
        "iat": now,
        "exp": now + timedelta(seconds=seconds),
    }
    return jwt.encode(claims, _key(), algorithm=ALGORITHM)


def issue_tokens(user: User) -> dict:
    """A fresh access and refresh token pair for ``user``, as the token endpoint returns it."""
    return {
        "access_token": encode_token(user, "access"),
        "refresh_token": encode_token(user, "refresh"),
        "token_type": "Bearer",
        "expires_in": token_lifetime("access"),
    }


def decode_token(token: str | None, kind: str = "access") -> dict:
    """The claims of a valid, unexpired, unrevoked token of ``kind``; else a 401 TokenError."""
    claims = token_claims(token, kind)
    if db.session.get(RevokedToken, claims["jti"]) is not None:
        raise _revoked()
    return claims


def token_claims(token: str | None, kind: str = "access") -> dict:
    """The claims of a well-signed, unexpired token of ``kind``, read without the database:
    whether it was revoked is :func:`decode_token`'s or :func:`user_for_token`'s question."""
    if not token:
        raise TokenError("token_missing", "This request needs a bearer token.")
    try:
        claims = jwt.decode(token, _key(), algorithms=[ALGORITHM],
                            options={"require": ["exp", "iat", "jti", "sub"]})
    except jwt.ExpiredSignatureError:
        raise TokenError("token_expired", "The token has expired; sign in or refresh.") from None
    except jwt.InvalidTokenError:
        raise TokenError("token_invalid", "The token is not valid.") from None
    if claims.get("type") != kind:
        raise TokenError("token_invalid", f"This endpoint needs a {kind} token.")
    return claims


def _revoked() -> TokenError:
    return TokenError("token_revoked", "The token has been revoked.")


def revoke_token(claims: dict) -> bool:
    """Refuse the token with these claims from now on; False if it already was. Caller commits."""
    expires_at = datetime.fromtimestamp(claims["exp"], UTC)
    revoked = db.session.scalar(
        insert(RevokedToken).values(jti=claims["jti"], expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=["jti"]).returning(RevokedToken.jti))
    return revoked is not None


def purge_expired_revocations(now: datetime | None = None) -> int:
    """Forget revoked ids whose tokens have expired anyway; returns how many; caller commits."""
    result = db.session.execute(delete(RevokedToken)
                                .where(RevokedToken.expires_at < (now or datetime.now(UTC))))
    return result.rowcount


def user_for_claims(claims: dict) -> User:
    """The active user a token's ``sub`` names; a removed or disabled user's token is invalid,
    and one issued before the user's password changed (an older ``gen``) is revoked."""
    sub = str(claims.get("sub", ""))
    user = db.session.scalar(select(User).where(User.id == int(sub))) if sub.isdigit() else None
    return _usable(user, claims)


_USER_AND_REVOCATION = (
    select(User, exists().where(RevokedToken.jti == bindparam("jti")))
    .options(joinedload(User.region).load_only(Region.code, Region.city_id))
    .where(User.id == bindparam("sub"))
    # The row as stored now, even for a user this session already holds: a generation raised
    # or an account disabled a moment ago refuses this very request.
    .execution_options(populate_existing=True))


def user_for_token(token: str | None, kind: str = "access") -> User:
    """:func:`user_for_claims` of :func:`decode_token`, in one round trip: the user, their region
    (its code and city, which every scope check reads) and whether the token's id is revoked.
    Each request asks again, so a revoked token or a new generation ends it at once."""
    claims = token_claims(token, kind)
    sub = str(claims.get("sub", ""))
    row = db.session.execute(_USER_AND_REVOCATION, {"sub": int(sub), "jti": claims["jti"]}
                             ).one_or_none() if sub.isdigit() else None
    if row is None:
        return user_for_claims(decode_token(token, kind))  # its refusal, in its order
    user, revoked = row
    if revoked:
        raise _revoked()
    return _usable(user, claims)


def _usable(user: User | None, claims: dict) -> User:
    if user is None or not user.is_active:
        raise TokenError("token_invalid", "The token's user no longer exists or is disabled.")
    if claims.get("gen", 0) != (user.token_generation or 0):
        raise TokenError("token_revoked", "The token was issued before the account's password "
                                          "changed or it was disabled; sign in again.")
    return user


def end_all_tokens(user: User) -> None:
    """Refuse every token issued to ``user`` so far (a new generation). Caller commits."""
    user.token_generation = User.token_generation + 1  # in SQL: two changes at once count twice


def _key() -> str:
    return current_app.config["SECRET_KEY"]
