"""Typed ARI failures: one class per status family, carrying Asterisk's own message."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


class AriError(Exception):
    """An ARI request failed. ``path`` is relative to the ``/ari`` base, as in the captures."""

    def __init__(self, status: int, message: str, method: str, path: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {message}")
        self.status = status
        self.message = message
        self.method = method
        self.path = path


class AriBadRequest(AriError):
    """400: invalid parameters, and also an unknown channel in addChannel/removeChannel."""


class AriUnauthorized(AriError):
    """401: wrong ARI user or password."""


class AriNotFound(AriError):
    """404: the channel, bridge, recording or playback does not exist (any more)."""


class AriConflict(AriError):
    """409: not in Stasis, duplicate id, wrong channel state for the operation."""


class AriPreconditionFailed(AriError):
    """412: the channel is in an invalid state for the operation."""


class AriUnprocessable(AriError):
    """422: e.g. addChannel before the channel's own StasisStart, unknown recording format."""


class AriServerError(AriError):
    """5xx: Asterisk could not allocate or create the resource."""


class AriConnectionError(AriError):
    """The request never got an HTTP answer (refused, reset, timed out). ``status`` is 0."""

    def __init__(self, message: str, method: str, path: str) -> None:
        super().__init__(0, message, method, path)


_BY_STATUS: dict[int, type[AriError]] = {
    400: AriBadRequest,
    401: AriUnauthorized,
    404: AriNotFound,
    409: AriConflict,
    412: AriPreconditionFailed,
    422: AriUnprocessable,
}


def error_for_status(status: int, message: str, method: str, path: str) -> AriError:
    """The typed error for an HTTP error status (unlisted 4xx such as 403/405 are plain AriError)."""
    if status >= 500:
        return AriServerError(status, message, method, path)
    return _BY_STATUS.get(status, AriError)(status, message, method, path)


def error_message(body: Any, fallback: str) -> str:
    """Asterisk's error text: ``{"message": ...}`` usually, ``{"error": ...}`` for allocation failures."""
    if isinstance(body, dict):
        for key in ("message", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
    return fallback


async def ignore_missing(request: Awaitable[T]) -> T | None:
    """Await an ARI request, treating 404 as "already gone", so cleanup can be repeated safely."""
    try:
        return await request
    except AriNotFound:
        return None
