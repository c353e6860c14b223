"""Typed REST client for the Asterisk REST Interface.

The caller chooses every id (channel, bridge, snoop, playback, recording name) before the request,
because the events about a resource often reach the websocket before the REST reply does.
Query parameters carry exactly the names of the ARI schema (camelCase where Asterisk uses it).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
from pydantic import TypeAdapter, ValidationError
from yarl import URL

from app.ari.errors import (
    AriConnectionError,
    AriError,
    AriNotFound,
    error_for_status,
    error_message,
)
from app.ari.models import Bridge, Channel, LiveRecording, Playback, StoredRecording

EVENTS_PATH = "/events"
# A close handshake with a peer that stopped answering must not stall a reconnect or shutdown.
WS_CLOSE_TIMEOUT = 2.0

QueryValue = str | int | bool | None
T = TypeVar("T")

_CHANNEL = TypeAdapter(Channel)
_CHANNELS = TypeAdapter(list[Channel])
_BRIDGE = TypeAdapter(Bridge)
_BRIDGES = TypeAdapter(list[Bridge])
_PLAYBACK = TypeAdapter(Playback)
_LIVE_RECORDING = TypeAdapter(LiveRecording)
_STORED_RECORDINGS = TypeAdapter(list[StoredRecording])
_OBJECT = TypeAdapter(dict[str, Any])


def _segment(resource_id: str) -> str:
    return quote(resource_id, safe="")


def _query(params: Mapping[str, QueryValue]) -> dict[str, str]:
    """ARI wants booleans as true/false; absent (None) parameters are left out."""
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _joined(ids: str | Sequence[str]) -> str:
    return ids if isinstance(ids, str) else ",".join(ids)


def _variables_body(variables: Mapping[str, str] | None) -> dict[str, Any] | None:
    return {"variables": dict(variables)} if variables else None


class AriClient:
    """One ARI server and one Stasis application name. Reuse it; it holds a connection pool."""

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        app: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.app = app
        self.timeout = timeout
        self._user = user
        self._password = password
        # Built by hand: aiohttp 3.14 deprecates BasicAuth objects; older versions lack encode_basic_auth.
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {credentials}"}
        self._session = session
        self._owns_session = session is None

    # --- lifecycle ---

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AriClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _http(self) -> aiohttp.ClientSession:
        # Created lazily: a ClientSession must be created inside the running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    # --- event websocket ---

    @property
    def events_url(self) -> URL:
        """The event websocket for our app only (no subscribeAll), authenticated by api_key."""
        url = URL(self.base_url + EVENTS_PATH)
        scheme = "wss" if url.scheme == "https" else "ws"
        return url.with_scheme(scheme).with_query(app=self.app, api_key=f"{self._user}:{self._password}")

    async def connect_events(self, *, heartbeat: float | None) -> aiohttp.ClientWebSocketResponse:
        """Open the event websocket; a refused handshake raises the typed error for its status."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._http().ws_connect(
                    self.events_url,
                    heartbeat=heartbeat,
                    timeout=aiohttp.ClientWSTimeout(ws_close=WS_CLOSE_TIMEOUT),
                )
        except aiohttp.WSServerHandshakeError as exc:
            raise error_for_status(
                exc.status, f"websocket handshake refused: {exc.message}", "GET", EVENTS_PATH
            ) from exc
        except TimeoutError as exc:
            raise AriConnectionError(f"no websocket after {self.timeout:g} s", "GET", EVENTS_PATH) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise AriConnectionError(str(exc) or type(exc).__name__, "GET", EVENTS_PATH) from exc

    # --- transport ---

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, QueryValue] | None = None,
        body: dict[str, Any] | None = None,
    ) -> bytes | None:
        """Raw reply body for a 2xx with content, None for an empty reply; typed errors otherwise."""
        url = URL(self.base_url + path, encoded=True)
        try:
            async with self._http().request(
                method,
                url,
                params=_query(params or {}),
                json=body,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                content = await response.read()
                if response.status >= 400:
                    raise error_for_status(response.status, _error_text(content, response.reason), method, path)
                return content or None
        except AriError:
            raise
        except TimeoutError as exc:
            raise AriConnectionError(f"no reply after {self.timeout:g} s", method, path) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise AriConnectionError(str(exc) or type(exc).__name__, method, path) from exc

    async def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, QueryValue] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        content = await self._send(method, path, params, body)
        if content is None:
            return None
        try:
            return json.loads(content)
        except ValueError as exc:
            raise AriError(200, f"reply is not JSON: {content[:80]!r}", method, path) from exc

    async def _typed(
        self,
        adapter: TypeAdapter[T],
        method: str,
        path: str,
        params: Mapping[str, QueryValue] | None = None,
        body: dict[str, Any] | None = None,
    ) -> T:
        data = await self._call(method, path, params, body)
        try:
            return adapter.validate_python(data)
        except ValidationError as exc:
            raise AriError(200, f"unexpected reply: {exc}", method, path) from exc

    # --- channels ---

    async def create_channel(
        self,
        endpoint: str,
        channel_id: str,
        *,
        other_channel_id: str | None = None,
        app_args: str = "",
        formats: str | None = "ulaw",
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """Create (not yet dial) a channel into our app: early media can be heard once dialled."""
        params = {
            "endpoint": endpoint,
            "app": self.app,
            "appArgs": app_args or None,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "formats": formats or None,
        }
        return await self._typed(_CHANNEL, "POST", "/channels/create", params, _variables_body(variables))

    async def dial(self, channel_id: str, *, caller: str | None = None, timeout: int | None = None) -> None:
        params = {"caller": caller, "timeout": timeout}
        await self._call("POST", f"/channels/{_segment(channel_id)}/dial", params)

    async def originate(
        self,
        endpoint: str,
        channel_id: str,
        *,
        app_args: str = "",
        formats: str | None = None,
        timeout: int | None = None,
        caller_id: str | None = None,
        other_channel_id: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """Dial ``endpoint``; the channel enters our app (StasisStart) when it answers."""
        params = {
            "endpoint": endpoint,
            "app": self.app,
            "appArgs": app_args or None,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "callerId": caller_id,
            "timeout": timeout,
            "formats": formats or None,
        }
        return await self._typed(_CHANNEL, "POST", "/channels", params, _variables_body(variables))

    async def answer(self, channel_id: str) -> None:
        await self._call("POST", f"/channels/{_segment(channel_id)}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal", *, missing_ok: bool = False) -> None:
        """DELETE the channel; with ``missing_ok`` a channel that is already gone is not an error."""
        try:
            await self._call("DELETE", f"/channels/{_segment(channel_id)}", {"reason": reason})
        except AriNotFound:
            if not missing_ok:
                raise

    async def send_dtmf(
        self,
        channel_id: str,
        dtmf: str,
        *,
        before: int = 0,
        between: int = 100,
        duration: int = 100,
        after: int = 0,
    ) -> None:
        """Returns at once (204); Asterisk sends no event when the digits have been played."""
        params = {"dtmf": dtmf, "before": before, "between": between, "duration": duration, "after": after}
        await self._call("POST", f"/channels/{_segment(channel_id)}/dtmf", params)

    async def snoop(
        self,
        channel_id: str,
        snoop_id: str,
        *,
        spy: str = "in",
        whisper: str = "none",
        app_args: str = "",
    ) -> Channel:
        params = {"spy": spy, "whisper": whisper, "app": self.app, "appArgs": app_args or None, "snoopId": snoop_id}
        return await self._typed(_CHANNEL, "POST", f"/channels/{_segment(channel_id)}/snoop", params)

    async def external_media(
        self,
        channel_id: str,
        external_host: str,
        *,
        format: str = "ulaw",
        encapsulation: str = "rtp",
        transport: str = "udp",
        direction: str = "both",
        connection_type: str = "client",
    ) -> Channel:
        """An RTP channel towards ``external_host`` (host:port); see ``Channel.rtp_address`` for the reply."""
        params = {
            "app": self.app,
            "channelId": channel_id,
            "external_host": external_host,
            "format": format,
            "encapsulation": encapsulation,
            "transport": transport,
            "connection_type": connection_type,
            "direction": direction,
        }
        return await self._typed(_CHANNEL, "POST", "/channels/externalMedia", params)

    async def get_variable(self, channel_id: str, name: str) -> str:
        path = f"/channels/{_segment(channel_id)}/variable"
        data = await self._call("GET", path, {"variable": name})
        value = data.get("value") if isinstance(data, dict) else None
        if not isinstance(value, str):
            raise AriError(200, f"unexpected reply: {data!r}", "GET", path)
        return value

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self._call("POST", f"/channels/{_segment(channel_id)}/variable", {"variable": name, "value": value})

    async def play(self, channel_id: str, media: str, playback_id: str) -> Playback:
        params = {"media": media, "playbackId": playback_id}
        return await self._typed(_PLAYBACK, "POST", f"/channels/{_segment(channel_id)}/play", params)

    async def record(
        self,
        channel_id: str,
        name: str,
        *,
        format: str = "wav",
        if_exists: str = "overwrite",
        max_duration_seconds: int = 0,
        beep: bool = False,
        terminate_on: str = "none",
    ) -> LiveRecording:
        params = _record_params(name, format, if_exists, max_duration_seconds, beep, terminate_on)
        return await self._typed(_LIVE_RECORDING, "POST", f"/channels/{_segment(channel_id)}/record", params)

    async def list_channels(self) -> list[Channel]:
        return await self._typed(_CHANNELS, "GET", "/channels")

    async def get_channel(self, channel_id: str) -> Channel:
        return await self._typed(_CHANNEL, "GET", f"/channels/{_segment(channel_id)}")

    # --- bridges ---

    async def create_bridge(self, bridge_id: str, *, type: str = "mixing,proxy_media", name: str = "") -> Bridge:
        """``mixing,proxy_media`` keeps media flowing through Asterisk (order matters)."""
        params = {"type": type, "bridgeId": bridge_id, "name": name or None}
        return await self._typed(_BRIDGE, "POST", "/bridges", params)

    async def add_channel(self, bridge_id: str, channel_ids: str | Sequence[str]) -> None:
        """422 if a channel has not had its own StasisStart yet; 400 if it does not exist."""
        await self._call("POST", f"/bridges/{_segment(bridge_id)}/addChannel", {"channel": _joined(channel_ids)})

    async def remove_channel(self, bridge_id: str, channel_ids: str | Sequence[str]) -> None:
        await self._call("POST", f"/bridges/{_segment(bridge_id)}/removeChannel", {"channel": _joined(channel_ids)})

    async def destroy_bridge(self, bridge_id: str, *, missing_ok: bool = False) -> None:
        try:
            await self._call("DELETE", f"/bridges/{_segment(bridge_id)}")
        except AriNotFound:
            if not missing_ok:
                raise

    async def list_bridges(self) -> list[Bridge]:
        return await self._typed(_BRIDGES, "GET", "/bridges")

    async def get_bridge(self, bridge_id: str) -> Bridge:
        return await self._typed(_BRIDGE, "GET", f"/bridges/{_segment(bridge_id)}")

    async def bridge_play(self, bridge_id: str, media: str, playback_id: str) -> Playback:
        params = {"media": media, "playbackId": playback_id}
        return await self._typed(_PLAYBACK, "POST", f"/bridges/{_segment(bridge_id)}/play", params)

    async def bridge_record(
        self,
        bridge_id: str,
        name: str,
        *,
        format: str = "wav",
        if_exists: str = "overwrite",
        max_duration_seconds: int = 0,
        beep: bool = False,
        terminate_on: str = "none",
    ) -> LiveRecording:
        params = _record_params(name, format, if_exists, max_duration_seconds, beep, terminate_on)
        return await self._typed(_LIVE_RECORDING, "POST", f"/bridges/{_segment(bridge_id)}/record", params)

    # --- recordings ---

    async def stop_recording(self, name: str) -> None:
        """Stop and store a live recording; RecordingFinished follows on the websocket."""
        await self._call("POST", f"/recordings/live/{_segment(name)}/stop")

    async def list_stored_recordings(self) -> list[StoredRecording]:
        return await self._typed(_STORED_RECORDINGS, "GET", "/recordings/stored")

    async def get_stored_recording_file(self, name: str) -> bytes:
        return await self._send("GET", f"/recordings/stored/{_segment(name)}/file") or b""

    async def stored_recording_chunks(self, name: str, *, chunk_bytes: int = 1 << 16) -> AsyncIterator[bytes]:
        """A stored recording's file as it arrives (a call's recording can be hundreds of MB):
        no overall time limit, but ``timeout`` seconds at most without a byte."""
        path = f"/recordings/stored/{_segment(name)}/file"
        url = URL(self.base_url + path, encoded=True)
        timeout = aiohttp.ClientTimeout(total=None, connect=self.timeout, sock_read=self.timeout)
        try:
            async with self._http().get(url, headers=self._headers, timeout=timeout) as response:
                if response.status >= 400:
                    content = await response.read()
                    raise error_for_status(response.status, _error_text(content, response.reason), "GET", path)
                async for chunk in response.content.iter_chunked(chunk_bytes):
                    yield chunk
        except AriError:
            raise
        except TimeoutError as exc:
            raise AriConnectionError(f"no data for {self.timeout:g} s", "GET", path) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise AriConnectionError(str(exc) or type(exc).__name__, "GET", path) from exc

    async def delete_stored_recording(self, name: str) -> None:
        await self._call("DELETE", f"/recordings/stored/{_segment(name)}")

    # --- server ---

    async def asterisk_info(self) -> dict[str, Any]:
        return await self._typed(_OBJECT, "GET", "/asterisk/info")

    async def get_application(self) -> dict[str, Any]:
        """Our app's subscriptions: ``channel_ids``, ``bridge_ids``, ``endpoint_ids``, ``device_names``."""
        return await self._typed(_OBJECT, "GET", f"/applications/{_segment(self.app)}")


def _record_params(
    name: str, format: str, if_exists: str, max_duration_seconds: int, beep: bool, terminate_on: str
) -> dict[str, QueryValue]:
    return {
        "name": name,
        "format": format,
        "ifExists": if_exists,
        "maxDurationSeconds": max_duration_seconds,
        "beep": beep,
        "terminateOn": terminate_on,
    }


def _error_text(content: bytes, reason: str | None) -> str:
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = None
    fallback = content.decode("utf-8", "replace").strip() or reason or "no message"
    return error_message(body, fallback)
