"""A webhook: each notification as a JSON POST, signed, retried with backoff.

The signature lets the receiver trust the body: ``X-HoldSlayer-Signature: sha256=<hex>`` is the
HMAC-SHA256, keyed with the shared secret, of ``<timestamp>.<body>``, where the timestamp (Unix
seconds) is ``X-HoldSlayer-Timestamp``; a receiver checks it with ``verify_signature`` (or the
same three lines in any language) and refuses old timestamps against replays. A 5xx answer or a
network error is retried (``attempts`` in all, the wait doubling from ``first_backoff``); a 4xx
is the receiver refusing this body, and is not.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time

import aiohttp

from app.notify.messages import Notification

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-HoldSlayer-Signature"
TIMESTAMP_HEADER = "X-HoldSlayer-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str, *, max_age: float = 300.0, now: float | None = None) -> bool:
    """True when ``signature`` is ours for this body and the timestamp is recent."""
    try:
        age = (time.time() if now is None else now) - float(timestamp)
    except ValueError:
        return False
    return abs(age) <= max_age and hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookError(Exception):
    pass


class WebhookChannel:
    name = "webhook"

    def __init__(self, url: str, secret: str, *, attempts: int = 4, first_backoff: float = 0.5, timeout: float = 10.0) -> None:
        self.url = url
        self.secret = secret
        self.attempts = attempts
        self.first_backoff = first_backoff
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def send(self, notification: Notification) -> None:
        body = json.dumps(notification.to_dict(), sort_keys=True).encode()
        backoff = self.first_backoff
        for attempt in range(1, self.attempts + 1):
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self.secret, timestamp, body),
            }
            try:
                async with aiohttp.ClientSession(timeout=self.timeout) as http:
                    async with http.post(self.url, data=body, headers=headers) as resp:
                        if resp.status < 400:
                            return
                        if resp.status < 500:
                            raise WebhookError(f"{self.url} refused the notification: HTTP {resp.status}")
                        problem = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt == self.attempts:
                raise WebhookError(f"{self.url}: {problem} after {attempt} attempts")
            log.info("webhook %s: %s; retrying in %.1f s", self.url, problem, backoff)
            await asyncio.sleep(backoff)
            backoff *= 2
