"""The wall's session cookie, sealed: encrypted and authenticated, not only signed.

The cookie carries the wall's token pair (``maps.viewer``). Flask's default cookie is signed
but readable (base64 JSON), so anyone who saw it could lift the refresh token. Here the same
cookie-session machinery seals the payload with Fernet (AES-CBC + HMAC-SHA256, from
``cryptography``) under a key derived from ``SECRET_KEY``: the cookie is only usable by this
app, and its timestamp lets the server refuse a cookie idle longer than
``PERMANENT_SESSION_LIFETIME``. Flask seals the cookie again on every request of a signed-in
wall (``SESSION_REFRESH_EACH_REQUEST``), so that limit slides with use.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, request
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature

_JSON = TaggedJSONSerializer()


@functools.lru_cache(maxsize=8)
def _fernet(secret: str | bytes) -> Fernet:
    """A Fernet key of its own for the session cookie, derived from an app secret."""
    material = secret.encode() if isinstance(secret, str) else secret
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"gridmgr-session-cookie",
               info=b"fernet").derive(material)
    return Fernet(base64.urlsafe_b64encode(key))


class SealedSerializer:
    """``dumps``/``loads`` as Flask's cookie serializer expects, with a sealed payload."""

    def __init__(self, secrets: list[str | bytes]):
        # The first key seals; every key (the current one and SECRET_KEY_FALLBACKS) opens.
        self._fernet = MultiFernet([_fernet(secret) for secret in secrets])

    def dumps(self, data: dict) -> str:
        return self._fernet.encrypt(_JSON.dumps(data).encode()).decode("ascii")

    def loads(self, value: str, max_age: int | None = None) -> dict:
        try:
            return _JSON.loads(self._fernet.decrypt(value.encode("ascii"), ttl=max_age))
        except (InvalidToken, UnicodeEncodeError) as refused:
            raise BadSignature("Not this app's session cookie, or idle too long.") from refused


class SealedCookieSessions(SecureCookieSessionInterface):
    """Cookie sessions whose content is encrypted; the cookie is Secure whenever the request
    came over HTTPS (directly, or through a trusted proxy's ``X-Forwarded-Proto``)."""

    def get_signing_serializer(self, app: Flask) -> SealedSerializer | None:
        if not app.secret_key:
            return None
        return SealedSerializer([app.secret_key, *(app.config.get("SECRET_KEY_FALLBACKS") or ())])

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure
