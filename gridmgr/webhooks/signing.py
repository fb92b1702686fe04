"""The signature of a webhook delivery: HMAC-SHA256 under the endpoint's secret over
``TIMESTAMP.BODY``, sent as ``X-Gridmgr-Timestamp`` and ``X-Gridmgr-Signature: sha256=HEX``."""

from __future__ import annotations

import hashlib
import hmac
import time

# A receiver refuses a delivery whose timestamp is further than this from its clock (seconds).
TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=HEX`` of ``timestamp.body`` under ``secret``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes,
           now: float | None = None, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """What a receiver checks: a fresh timestamp and the signature of exactly this body."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs((now if now is not None else time.time()) - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)
