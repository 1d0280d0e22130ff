"""Signing remediator webhook deliveries, and verifying them on the receiving side.

This module uses the standard library only, so that a receiver can copy it as it is.
The scheme is Stripe's and Slack's: the timestamp is bound into the signature, so a
captured request cannot be replayed later with a fresh timestamp.

    X-Remediator-Timestamp: 1714564800
    X-Remediator-Signature: v1=<hex HMAC-SHA256(secret, "1714564800." + raw body)>
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["DEFAULT_MAX_AGE", "SCHEME", "sign", "verify_signature"]

SCHEME = "v1"
DEFAULT_MAX_AGE = 300.0
"""Seconds a delivery stays acceptable: transit time plus clock skew, both ways."""


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The `X-Remediator-Signature` value for a body sent at `timestamp` (unix seconds)."""
    message = timestamp.encode("ascii") + b"." + body
    digest = hmac.new(_key(secret), message, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def verify_signature(
    secret: str | bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    max_age: float = DEFAULT_MAX_AGE,
    now: float | None = None,
) -> bool:
    """Whether a delivery is authentic and fresh; reject the request when this is False.

    `timestamp` and `signature` are the `X-Remediator-Timestamp` and
    `X-Remediator-Signature` header values, `body` the raw request body exactly as
    received (verify before parsing it: re-encoded JSON would not match). A timestamp more
    than `max_age` seconds in the past or the future is rejected, which stops replays of
    captured requests. Drop repeats of an `X-Remediator-Delivery` id you have already
    accepted, answering 2xx: retries keep it and are signed afresh, so remember ids longer
    than `max_age` (README.md says how long). The signature header may list several comma-separated
    `v1=` values (secret rotation): one matching is enough.
    """
    # Digits only: int() would also take " 17", "+17" or "1_7", which sign differently.
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > max_age:
        return False
    expected = sign(secret, timestamp, body).encode("ascii")
    candidates = (part.strip() for part in signature.split(","))
    # compare_digest takes the same time wherever the first difference is, so the
    # response time does not reveal how much of a forged signature was right.
    return any(
        hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
        for candidate in candidates
        if candidate.startswith(f"{SCHEME}=")
    )
