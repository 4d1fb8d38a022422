"""Webhook signatures: HMAC-SHA256 over ``"<timestamp>.<body>"`` (the Stripe/GitHub convention).

Header ``Workbench-Signature: t=<unix seconds>,v1=<hex digest>``. Receivers recompute the digest
with their endpoint secret over the timestamp, a dot and the raw body bytes, compare in constant
time, and refuse timestamps older than a few minutes (replays). ``verify`` is the reference
implementation the README's snippet mirrors.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Workbench-Signature"
TOLERANCE_SECONDS = 300


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    signed = str(int(timestamp)).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(*, secret: str, body: bytes, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={ts},v1={signature(secret=secret, timestamp=ts, body=body)}"


class SignatureError(ValueError):
    pass


def verify(
    *, secret: str, header: str, body: bytes, tolerance: int = TOLERANCE_SECONDS, now: float | None = None
) -> int:
    """Check ``header`` against ``body``; return the signed timestamp or raise SignatureError."""
    parts: dict[str, list[str]] = {}
    for item in (header or "").split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        ts = int(parts["t"][0])
    except (KeyError, ValueError) as exc:
        raise SignatureError("no timestamp in the signature header") from exc
    if abs((time.time() if now is None else now) - ts) > tolerance:
        raise SignatureError("timestamp outside the tolerance (a replay?)")
    expected = signature(secret=secret, timestamp=ts, body=body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", [])):
        raise SignatureError("signature does not match the body")
    return ts
