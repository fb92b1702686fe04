"""Sending one message: e-mail over SMTP, SMS through an HTTP gateway, Web Push.

Each sender raises :class:`SendError` when the message was not accepted; the delivery loop
retries it later. Nothing here runs in a request.
"""

from __future__ import annotations

import base64
import json
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests
from flask import current_app
from sqlalchemy import text

from gridmgr.config import gridmgr_home
from gridmgr.extensions import db

VAPID_KEY_FILE = "vapid_private.pem"


class SendError(Exception):
    """A message was not accepted; it is tried again later."""


class Mailer:
    """One SMTP session for a pass of the delivery loop, opened at the first e-mail."""

    def __init__(self) -> None:
        self._smtp: smtplib.SMTP | None = None
        self._failed: str | None = None

    def send(self, row) -> None:
        """Hand one message to the SMTP server (``GRIDMGR_SMTP_URL``)."""
        if self._failed:
            raise SendError(self._failed)
        smtp = self._session()
        message = EmailMessage()
        message["From"] = current_app.config["GRIDMGR_MAIL_FROM"]
        message["To"] = row.address
        message["Subject"] = row.subject or ""
        message["Content-Language"] = "zh-CN" if row.language == "zh" else "en"
        message["Message-ID"] = make_msgid(idstring=f"n{row.id}", domain="gridmgr")
        unsubscribe = (row.links or {}).get("unsubscribe")
        if unsubscribe:
            # One-click unsubscribe (RFC 8058): mail programs POST to the link.
            message["List-Unsubscribe"] = f"<{unsubscribe}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(row.body)
        try:
            smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            raise SendError(f"recipient refused: {error.recipients}") from error
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            self._failed = f"SMTP: {type(error).__name__}: {error}"
            raise SendError(self._failed) from error

    def _session(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        url = current_app.config.get("GRIDMGR_SMTP_URL")
        if not url:
            self._failed = "no SMTP server configured (GRIDMGR_SMTP_URL)"
            raise SendError(self._failed)
        parts = urlsplit(url)
        timeout = current_app.config["GRIDMGR_NOTIFY_TIMEOUT_SECONDS"]
        try:
            if parts.scheme == "smtps":
                smtp = smtplib.SMTP_SSL(parts.hostname, parts.port or 465, timeout=timeout,
                                        context=ssl.create_default_context())
            elif parts.scheme == "smtp":
                smtp = smtplib.SMTP(parts.hostname, parts.port or 25, timeout=timeout)
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
            else:
                raise SendError(f"GRIDMGR_SMTP_URL must start with smtp:// or smtps://, "
                                f"not {parts.scheme}://")
            if parts.username:
                smtp.login(unquote(parts.username), unquote(parts.password or ""))
        except (smtplib.SMTPException, OSError) as error:
            self._failed = f"SMTP: {type(error).__name__}: {error}"
            raise SendError(self._failed) from error
        self._smtp = smtp
        return smtp

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None


def send_sms(row) -> None:
    """POST the message to ``GRIDMGR_SMS_GATEWAY_URL`` in the shape of the body template."""
    config = current_app.config
    url = config.get("GRIDMGR_SMS_GATEWAY_URL")
    if not url:
        raise SendError("no SMS gateway configured (GRIDMGR_SMS_GATEWAY_URL)")
    content_type = config["GRIDMGR_SMS_CONTENT_TYPE"]
    escape = (lambda v: json.dumps(v, ensure_ascii=False)[1:-1]) if "json" in content_type \
        else (lambda v: v)
    short = row.body.split("\n\n")[0]
    body = (config["GRIDMGR_SMS_BODY_TEMPLATE"].replace("{to}", escape(row.address))
            .replace("{text}", escape(short)))
    _post(url, body.encode(), {"Content-Type": content_type})


def vapid_key_path() -> Path:
    """The VAPID private key in ``GRIDMGR_HOME``, made on first use."""
    from py_vapid import Vapid

    home = Path(current_app.config.get("GRIDMGR_HOME") or gridmgr_home())
    path = home / VAPID_KEY_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        key = Vapid()
        key.generate_keys()
        key.save_key(str(path))
        path.chmod(0o600)
    return path


def vapid_public_key() -> str:
    """The application server key a browser subscribes with (base64url, uncompressed point)."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from py_vapid import Vapid

    key = Vapid.from_file(str(vapid_key_path()))
    raw = key.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def send_push(row) -> None:
    """Encrypt and POST the message to the subscription's push service, signed with VAPID."""
    from pywebpush import WebPushException, webpush

    subscription = db.session.execute(text(
        "SELECT endpoint, p256dh, auth FROM push_subscriptions WHERE id = :id"),
        {"id": int(row.address)}).one_or_none()
    if subscription is None:
        raise SendError("the push subscription was removed")
    data = json.dumps({"title": row.subject, "body": row.body.split("\n\n")[0],
                       "url": (row.links or {}).get("link")}, ensure_ascii=False)
    sender = current_app.config["GRIDMGR_MAIL_FROM"]
    try:
        webpush({"endpoint": subscription.endpoint,
                 "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}},
                data=data, vapid_private_key=str(vapid_key_path()),
                vapid_claims={"sub": f"mailto:{sender}"},
                timeout=current_app.config["GRIDMGR_NOTIFY_TIMEOUT_SECONDS"], ttl=86400)
    except WebPushException as error:
        if error.response is not None and error.response.status_code in (404, 410):
            # The browser unsubscribed: forget it, and the message with it.
            db.session.execute(text("DELETE FROM push_subscriptions WHERE id = :id"),
                               {"id": int(row.address)})
        raise SendError(f"push: {error}") from error
    except requests.RequestException as error:
        raise SendError(f"push: {type(error).__name__}: {error}") from error


def _post(url: str, body: bytes, headers: dict) -> requests.Response:
    try:
        response = requests.post(url, data=body, headers=headers, allow_redirects=False,
                                 timeout=current_app.config["GRIDMGR_NOTIFY_TIMEOUT_SECONDS"])
    except requests.RequestException as error:
        raise SendError(f"{type(error).__name__}: {error}") from error
    if not 200 <= response.status_code < 300:
        raise SendError(f"HTTP {response.status_code}: {response.text[:200]}")
    return response

