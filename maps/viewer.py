"""Who is looking at the wall, and what part of the city they may see.

The wall signs in through a web form (``/wall/login``). The token pair it gets is kept in
the sealed (encrypted), HttpOnly session cookie (``maps.session``), never in the page's
storage; an expired access token is renewed from the refresh token on the next request.
Script clients may instead send ``Authorization: Bearer <access token>`` to the feeds and
tiles.

A viewer sees one city, limited to their region (code prefix): a street's centre sees its
street, the city centre the whole city. The wall is for the command side: a role that may
read statistics (operator, duty chief, dispatcher, administrator).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import request, session
from sqlalchemy import select

from gridmgr.errors import InvalidInput, NotFound
from gridmgr.extensions import db
from gridmgr.grids.models import City
from gridmgr.people import operations
from gridmgr.people.models import User
from gridmgr.people.policy import authorize, can, scope_filter, user_city_id
from gridmgr.people.tokens import (
    TokenError,
    decode_token,
    token_claims,
    user_for_claims,
    user_for_token,
)

SESSION_KEY = "wall_tokens"
# The page asks for its token every few minutes; renewing it this long before it expires
# means the wall's parallel feed requests never race to renew an expired one.
RENEW_BEFORE_SECONDS = 600
_USER_KEY = "gridmgr.signed_in_user"


@dataclass(frozen=True)
class Viewer:
    """A signed-in wall viewer: the user, the city shown and the region code prefix."""

    user: User
    city_id: int
    city_name: str
    timezone: str
    prefix: str  # "" for the whole city

    @property
    def like(self) -> str:
        """The LIKE pattern matching every region or grid code inside the scope."""
        return self.prefix + "%"

    @property
    def rooms(self) -> list[str]:
        """The live channel rooms this wall listens to."""
        return [f"region:{self.prefix}"] if self.prefix else [f"city:{self.city_id}"]

    @property
    def may_dispatch(self) -> bool:
        return can(self.user, "case.dispatch", region_code=self.prefix or None,
                   city_id=self.city_id)


def sign_in(username: str, password: str) -> User:
    """Check the credentials and keep the token pair in the session; the signed-in user."""
    tokens = operations.sign_in(username, password)
    user = user_for_claims(decode_token(tokens["access_token"]))
    session[SESSION_KEY] = {"access": tokens["access_token"], "refresh": tokens["refresh_token"]}
    session.permanent = True
    return user


def sign_out() -> None:
    """Forget the session's tokens and revoke them."""
    tokens = session.pop(SESSION_KEY, None)
    if tokens:
        try:
            operations.revoke_tokens(tokens["access"], tokens["refresh"])
            db.session.commit()
        except TokenError:
            db.session.rollback()


def access_token() -> str:
    """A valid access token for this request's viewer (renewed from the refresh token)."""
    return _access_token(decode_token)


def signed_in_user() -> User:
    """The request's signed-in user, identified once per request: the token's signature and
    expiry checked in memory, then the user, their region and the token's revocation read in
    one query (``tokens.user_for_token``). Nothing is kept between requests, so a revoked
    token or a new token generation refuses the very next one."""
    known = request.environ.get(_USER_KEY)
    if known is not None:
        return known
    try:
        user = user_for_token(_access_token(token_claims))
    except TokenError as refused:
        if not _bearer() and refused.code != "token_expired":
            session.pop(SESSION_KEY, None)  # a session whose token is refused is over
        raise
    request.environ[_USER_KEY] = user
    return user


def _access_token(check: Callable[[str], dict]) -> str:
    """The request's access token (``check`` reads its claims or refuses it), renewed from the
    session's refresh token when it is about to expire."""
    bearer = _bearer()
    if bearer:
        check(bearer)
        return bearer
    tokens = session.get(SESSION_KEY)
    if not tokens:
        raise TokenError("token_missing", "Sign in to the wall first.")
    still_valid = False
    try:
        claims = check(tokens["access"])
        if claims["exp"] - time.time() > RENEW_BEFORE_SECONDS:
            return tokens["access"]
        still_valid = True
    except TokenError as exc:
        if exc.code != "token_expired":
            session.pop(SESSION_KEY, None)
            raise
    try:
        fresh = operations.refresh_tokens(tokens["refresh"])
    except TokenError:
        if still_valid:  # a parallel request renewed it a moment ago; this one still works
            db.session.rollback()
            return tokens["access"]
        raise
    db.session.commit()
    session[SESSION_KEY] = {"access": fresh["access_token"], "refresh": fresh["refresh_token"]}
    return fresh["access_token"]


def current_viewer(action: str = "stats.view") -> Viewer:
    """The request's viewer; 401 without a valid token, 403 for a role without ``action``
    (the wall: ``stats.view``; the map of grids a grid inspector also reads: ``map.view``)."""
    user = signed_in_user()
    prefix = scope_filter(user) or ""
    city_id = user_city_id(user)
    if city_id is None:
        city_id = _platform_city()
    authorize(user, action, region_code=prefix or None, city_id=city_id)
    city = db.session.get(City, city_id)
    if city is None:
        raise NotFound("The viewer's city does not exist.", code="city_not_found")
    return Viewer(user=user, city_id=city.id, city_name=city.name, timezone=city.timezone,
                  prefix=prefix)


def _platform_city() -> int:
    """For a platform-wide administrator: ``?city=<id>`` (remembered), else the first city."""
    asked = request.args.get("city")
    if asked is not None:
        if not asked.isdigit():
            raise InvalidInput("city must be a city id.", code="bad_city")
        session["wall_city"] = int(asked)
    if session.get("wall_city") is not None:
        return int(session["wall_city"])
    city_id = db.session.scalar(select(City.id).order_by(City.id).limit(1))
    if city_id is None:
        raise NotFound("No city is loaded yet.", code="city_not_found")
    return city_id


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
