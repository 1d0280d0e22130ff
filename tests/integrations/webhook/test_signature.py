"""`verify_signature`: what a receiver accepts and what it rejects."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
from remediator_integrations.webhook import sign, verify_signature

SECRET = "s3cret"
BODY = b'{"version":1,"event":"trigger"}'
TS = "1714564800"
NOW = 1714564800.0


def test_the_scheme_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(b"s3cret", b"1714564800." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, TS, BODY) == f"v1={expected}"
    assert sign(SECRET.encode(), TS, BODY) == f"v1={expected}"


def test_a_fresh_authentic_delivery_is_accepted() -> None:
    signature = sign(SECRET, TS, BODY)
    assert verify_signature(SECRET, TS, BODY, signature, max_age=300, now=NOW + 299)
    assert verify_signature(SECRET, TS, BODY, signature, max_age=300, now=NOW - 299)
    # Rotation: the header may carry several signatures; one good one is enough.
    rotated = f"v1={'0' * 64}, {signature}"
    assert verify_signature(SECRET, TS, BODY, rotated, now=NOW)


@pytest.mark.parametrize(
    ("secret", "timestamp", "body", "signature", "now"),
    [
        ("other", TS, BODY, sign(SECRET, TS, BODY), NOW),  # wrong secret
        (SECRET, TS, BODY + b" ", sign(SECRET, TS, BODY), NOW),  # tampered body
        (SECRET, "1714564801", BODY, sign(SECRET, TS, BODY), NOW),  # timestamp moved
        (SECRET, TS, BODY, sign(SECRET, TS, BODY), NOW + 301),  # stale: a replay
        (SECRET, TS, BODY, sign(SECRET, TS, BODY), NOW - 301),  # from the future
        (SECRET, TS, BODY, sign(SECRET, TS, BODY).upper(), NOW),  # not the v1 scheme
        (SECRET, TS, BODY, sign(SECRET, TS, BODY)[3:], NOW),  # no scheme
        (SECRET, TS, BODY, "v0=" + sign(SECRET, TS, BODY)[3:], NOW),  # other scheme
        (SECRET, TS, BODY, "", NOW),  # no signature
        (SECRET, "", BODY, sign(SECRET, "", BODY), NOW),  # no timestamp
        (SECRET, " 1714564800", BODY, sign(SECRET, " 1714564800", BODY), NOW),
        (SECRET, "+1714564800", BODY, sign(SECRET, "+1714564800", BODY), NOW),
        (SECRET, "1714564800.0", BODY, sign(SECRET, "1714564800.0", BODY), NOW),
        (SECRET, TS, BODY, "v1=ü", NOW),  # non-ASCII must not raise
    ],
)
def test_forged_tampered_stale_or_malformed_deliveries_are_rejected(
    secret: str, timestamp: str, body: bytes, signature: str, now: float
) -> None:
    assert not verify_signature(secret, timestamp, body, signature, max_age=300, now=now)


def test_now_defaults_to_the_clock() -> None:
    timestamp = str(int(time.time()))
    assert verify_signature(SECRET, timestamp, BODY, sign(SECRET, timestamp, BODY))
    assert not verify_signature(SECRET, TS, BODY, sign(SECRET, TS, BODY))
