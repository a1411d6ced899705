"""Acknowledge links: HMAC-signed, expiring, naming the alert and the focal point they went to.

The signature covers fingerprint, focal point and expiry, so a link cannot be altered to
acknowledge another alert or to live longer. Verification is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode


def _signature(secret: bytes, fingerprint: str, focal_point: str, expires: int) -> str:
    message = f"{fingerprint}\n{focal_point}\n{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def ack_url(base_url: str, secret: bytes, fingerprint: str, focal_point: str, expires: int) -> str:
    query = urlencode(
        {
            "f": fingerprint,
            "p": focal_point,
            "e": expires,
            "s": _signature(secret, fingerprint, focal_point, expires),
        }
    )
    return f"{base_url.rstrip('/')}/v1/ack?{query}"


class AckLinkError(ValueError):
    """The link is forged, altered or expired."""


def verify(
    secret: bytes, fingerprint: str, focal_point: str, expires: int, signature: str, now: float
) -> None:
    expected = _signature(secret, fingerprint, focal_point, expires)
    if not hmac.compare_digest(expected, signature):
        raise AckLinkError("the link's signature does not match")
    if now >= expires:
        raise AckLinkError("the link has expired")
