"""Sign-in and tokens for the API: ``/api/v1/auth/...`` and ``/api/v1/me``.

Also the request-side helpers every other API module uses: :func:`current_user`,
:func:`auth_required` and :func:`auth_optional` read ``Authorization: Bearer <token>``.
What a signed-in user may do is decided in ``gridmgr.people.policy``, not here.
"""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from functools import wraps

from flask import current_app, g, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from gridmgr.errors import Forbidden
from gridmgr.extensions import db, limiter
from gridmgr.notify.messages import LANGUAGES
from gridmgr.people import operations
from gridmgr.people.models import User
from gridmgr.people.tokens import TokenError, decode_token, user_for_claims

SECURITY_SCHEME = "bearerAuth"
_USER_KEY = "gridmgr.user"

blp = Blueprint("auth", __name__, description="Sign-in, tokens and the signed-in user")


# --- request helpers -------------------------------------------------------------------------

def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer`` header; None when there is no header."""
    header = request.headers.get("Authorization")
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("token_invalid", "The Authorization header must be 'Bearer <token>'.")
    return token.strip()


def current_user() -> User | None:
    """The user this request's access token names (None when anonymous); a bad token is a 401.

    Resolved once per request and also left in ``g.user``. The cache lives in the request's
    environ, not in ``g``: an app context (hence ``g``) can outlive one request in tests.
    """
    if _USER_KEY not in request.environ:
        token = bearer_token()
        request.environ[_USER_KEY] = user_for_claims(decode_token(token)) if token else None
    g.user = request.environ[_USER_KEY]
    return g.user


def auth_required(*roles: str | Callable) -> Callable:
    """Require a valid access token (401) and, when roles are given, one of them (403)."""
    if len(roles) == 1 and callable(roles[0]):
        return auth_required()(roles[0])

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args, **kwargs):
            user = current_user()
            if user is None:
                raise TokenError("token_missing", "This request needs a bearer token.")
            if roles and user.role not in roles:
                raise Forbidden(f"This needs one of the roles: {', '.join(roles)}.",
                                role=user.role)
            return view(*args, **kwargs)

        _document_security(wrapper, optional=False)
        return wrapper

    return decorator


def auth_optional(view: Callable) -> Callable:
    """Set ``g.user`` from the bearer token when there is one (None otherwise); bad token: 401."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        current_user()
        return view(*args, **kwargs)

    _document_security(wrapper, optional=True)
    return wrapper


def _document_security(view: Callable, optional: bool) -> None:
    # flask-smorest merges ``_apidoc["manual_doc"]`` into the operation (what ``blp.doc`` does).
    doc = deepcopy(getattr(view, "_apidoc", {}))
    manual = doc.setdefault("manual_doc", {})
    manual["security"] = [{SECURITY_SCHEME: []}] + ([{}] if optional else [])
    responses = manual.setdefault("responses", {})
    responses.setdefault("401", {"description": "token_missing, token_invalid, token_expired "
                                                "or token_revoked"})
    if not optional:
        responses.setdefault("403", {"description": "forbidden: role or scope refuses it"})
    view._apidoc = doc


def register_security_scheme(api) -> None:
    """Declare the bearer scheme in the OpenAPI document."""
    api.spec.components.security_scheme(
        SECURITY_SCHEME, {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})


# --- schemas ---------------------------------------------------------------------------------

class CredentialsSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(1, 150))
    password = fields.String(required=True, load_only=True, validate=validate.Length(1, 1024))


class TokenPairSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})


class RevokeSchema(Schema):
    token = fields.String(metadata={"description": "another token of yours to revoke as well, "
                                                   "e.g. the refresh token when signing out"})


class RegistrationSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(1, 150))
    password = fields.String(required=True, load_only=True,
                             validate=validate.Length(operations.MIN_PASSWORD_LENGTH, 1024))
    display_name = fields.String(validate=validate.Length(1, 200))
    phone = fields.String(validate=validate.Length(3, 50))
    email = fields.Email(validate=validate.Length(3, 254))


class UserSchema(Schema):
    """A user as others may see them: no contact details."""

    id = fields.Integer()
    username = fields.String()
    display_name = fields.String(allow_none=True)
    role = fields.String()
    city_id = fields.Integer(allow_none=True)
    region_code = fields.Function(lambda u: u.region.code if u.region else None,
                                  metadata={"description": "scope; null is the whole city"})
    department_id = fields.Integer(allow_none=True)
    department = fields.Function(lambda u: u.department.name if u.department else None)
    is_active = fields.Boolean()
    created_at = fields.DateTime()


class PrivateUserSchema(UserSchema):
    """A user as they themselves and administrators see them: with contact details."""

    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    language = fields.String(allow_none=True, metadata={
        "description": "the language of their messages; null: the instance's"})


class ProfileUpdateSchema(Schema):
    display_name = fields.String(validate=validate.Length(1, 200))
    phone = fields.String(allow_none=True, validate=validate.Length(3, 50))
    email = fields.Email(allow_none=True, validate=validate.Length(3, 254))
    language = fields.String(allow_none=True, validate=validate.OneOf(LANGUAGES), metadata={
        "description": "zh or en, the language of one's messages; null: the instance's"})
    password = fields.String(load_only=True,
                             validate=validate.Length(operations.MIN_PASSWORD_LENGTH, 1024))
    current_password = fields.String(load_only=True)


# --- endpoints -------------------------------------------------------------------------------

def _login_limit() -> str:
    return current_app.config["GRIDMGR_LOGIN_RATE_LIMIT"]


def _register_limit() -> str:
    return current_app.config["GRIDMGR_REGISTER_RATE_LIMIT"]


@blp.route("/auth/token", methods=["POST"])
@limiter.limit(_login_limit)
@blp.arguments(CredentialsSchema)
@blp.response(200, TokenPairSchema)
@blp.alt_response(401, description="invalid_credentials (the same for an unknown user)")
@blp.alt_response(429, description="too_many_requests")
def token(credentials):
    """Sign in with username and password; get an access and a refresh token."""
    tokens = operations.sign_in(credentials["username"], credentials["password"])
    db.session.commit()
    return tokens


@blp.route("/auth/refresh", methods=["POST"])
@limiter.limit(_login_limit)
@blp.response(200, TokenPairSchema)
@blp.alt_response(401, description="token_missing, token_invalid, token_expired, token_revoked")
@blp.alt_response(429, description="too_many_requests")
def refresh():
    """Trade the refresh token (as Bearer) for a new pair; the old refresh token is revoked."""
    tokens = operations.refresh_tokens(bearer_token())
    db.session.commit()
    return tokens


@blp.route("/auth/revoke", methods=["POST"])
@blp.arguments(RevokeSchema(), required=False)
@blp.response(204)
@blp.alt_response(401, description="token_missing, token_invalid, token_expired, token_revoked")
def revoke(body):
    """Revoke the Bearer token (access or refresh), and ``token`` from the body if given."""
    operations.revoke_tokens(bearer_token(), (body or {}).get("token"))
    db.session.commit()


@blp.route("/auth/register", methods=["POST"])
@limiter.limit(_register_limit)
@blp.arguments(RegistrationSchema)
@blp.response(201, PrivateUserSchema)
@blp.alt_response(409, description="username_taken; name_reserved: the username or display name "
                                    "is a staff member's")
@blp.alt_response(429, description="too_many_requests")
def register(data):
    """A citizen creates an account; phone and email stay private."""
    user = operations.register_citizen(**data)
    db.session.commit()
    return user


@blp.route("/me", methods=["GET"])
@blp.response(200, PrivateUserSchema)
@auth_required
def me():
    """The signed-in user, with their own contact details and scope."""
    return current_user()


@blp.route("/me", methods=["PATCH"])
@blp.arguments(ProfileUpdateSchema)
@blp.response(200, PrivateUserSchema)
@auth_required
def update_me(data):
    """Change one's display name, contact details or password (the current one is needed).

    A new password ends every token of the user, this request's included, and closes their
    live connections: sign in again with the new password.
    """
    user = operations.update_profile(current_user(), **data)
    db.session.commit()
    return user
