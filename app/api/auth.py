"""Who may use the API: a bearer token on every surface (REST, WebSocket, MCP), unless the
settings say explicitly that the app listens on this machine only and wants none.

The token comes as ``Authorization: Bearer <token>``; a browser's WebSocket cannot set headers,
so ``/ws/...`` also takes ``?token=``. ``GET /api/health`` stays open for container health
checks (without the token it tells nothing about calls: the list of live calls is left out); the
dashboard's static files and the API's description
(``/docs``, ``/openapi.json``) are open too: they hold no data, and the pages ask for the token
once and send it with every request. Everything else answers 401 without
it, and recordings and transcripts are behind it like the rest; so is ``/metrics`` (it names the
live calls): Prometheus sends the token with ``authorization: {credentials: ...}``. A WebSocket
handshake without it gets the same 401 (the ASGI extension ``websocket.http.response``, which
uvicorn serves with every WebSocket implementation it has).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from app.config import Settings

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROTECTED_PREFIXES = ("/api/", "/ws/", "/mcp", "/metrics")
OPEN_PATHS = frozenset({"/api/health"})


class AuthSettingsError(ValueError):
    pass


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def required_token(settings: Settings) -> str | None:
    """The token every request must bear, or None when the API is open (loopback only, and the
    settings ask for no token). Listening beyond this machine without a token is refused."""
    token = settings.api_token.get_secret_value() if settings.api_token else None
    if token:
        return token
    if not is_loopback(settings.api_host):
        raise AuthSettingsError(
            f"HOLDSLAYER_API_HOST={settings.api_host} listens beyond this machine: set HOLDSLAYER_API_TOKEN "
            "(every client then sends 'Authorization: Bearer <token>')"
        )
    return None


def needs_token(path: str) -> bool:
    return path not in OPEN_PATHS and path.startswith(PROTECTED_PREFIXES)


def presented_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials:
                return credentials.strip()
    if scope["type"] == "websocket":
        tokens = parse_qs(scope.get("query_string", b"").decode()).get("token")
        if tokens:
            return tokens[0]
    return None


def bears_token(scope: Scope, token: str | None) -> bool:
    """The request may see everything: the API wants no token, or it bears the right one."""
    if token is None:
        return True
    presented = presented_token(scope)
    return presented is not None and hmac.compare_digest(presented.encode(), token.encode())


UNAUTHORIZED_BODY = b'{"detail": "a valid bearer token is required (Authorization: Bearer <token>)"}'
UNAUTHORIZED_HEADERS = [
    (b"content-type", b"application/json"),
    (b"www-authenticate", b'Bearer realm="holdslayer"'),
    (b"content-length", str(len(UNAUTHORIZED_BODY)).encode()),
]
DENIAL_EXTENSION = "websocket.http.response"


class BearerTokenMiddleware:
    """Answers 401 with the reason as JSON when the token is missing or wrong: to a request, and
    to a WebSocket handshake (before it is accepted, so the client sees the status)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not needs_token(scope["path"]):
            await self.app(scope, receive, send)
            return
        if bears_token(scope, self.token):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            if DENIAL_EXTENSION not in (scope.get("extensions") or {}):
                # A server that cannot answer a handshake with a status of its own: refuse it
                # (the server then answers 403).
                await send({"type": "websocket.close", "code": 1008, "reason": "a valid token is required"})
                return
            # uvicorn's websockets-sansio implementation logs "ASGI callable returned without
            # completing handshake." after each such refusal: harmless, the client got its 401
            # (uvicorn pull request 3138).
            start, body = "websocket.http.response.start", "websocket.http.response.body"
        else:
            start, body = "http.response.start", "http.response.body"
        await send({"type": start, "status": 401, "headers": UNAUTHORIZED_HEADERS})
        await send({"type": body, "body": UNAUTHORIZED_BODY})
