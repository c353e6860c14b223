"""Plain-socket clients for testing the simulated PBX: ARI over aiohttp, RTP over UDP.

Deliberately independent of ``app.ari``: these tests pin the simulator's wire behaviour, so
they speak HTTP, WebSocket and RTP directly.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np

from app.media.g711 import ulaw_decode, ulaw_encode
from app.media.rtp import RtpPacket, parse_rtp

APP = "holdslayer"
Predicate = Callable[[dict[str, Any]], bool]


def is_event(event_type: str, channel: str | None = None, **fields: Any) -> Predicate:
    """Match an event by type, the id of its channel (or Dial peer), and top-level fields."""

    def check(event: dict[str, Any]) -> bool:
        if event.get("type") != event_type:
            return False
        if channel is not None:
            subject = event.get("channel") or event.get("peer") or {}
            if subject.get("id") != channel:
                return False
        return all(event.get(name) == value for name, value in fields.items())

    return check


def summary(event: dict[str, Any]) -> str:
    """``Type:detail`` as the capture summaries write event orders (Dial:RINGING, ChannelStateChange:Up)."""
    kind = event["type"]
    if kind == "Dial":
        return f"Dial:{event['dialstatus']}"
    if kind == "ChannelStateChange":
        return f"ChannelStateChange:{event['channel']['state']}"
    return kind


class EventSocket:
    """One ARI event websocket, recording everything it receives."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self._url = url
        self.events: list[dict[str, Any]] = []
        self.received_at: list[float] = []  # time.monotonic() of each event's arrival
        self.closed = asyncio.Event()
        self._changed = asyncio.Event()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self) -> EventSocket:
        self.ws = await self._session.ws_connect(self._url)
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for message in self.ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    self.events.append(json.loads(message.data))
                    self.received_at.append(time.monotonic())
                    self._changed.set()
        except (aiohttp.ClientError, ConnectionError):
            pass
        finally:
            self.closed.set()
            self._changed.set()

    async def wait_for(self, predicate: Predicate, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if predicate(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                types = [summary(e) for e in self.events[-15:]]
                raise AssertionError(f"no matching event within {timeout} s; last events: {types}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    def arrival(self, event: dict[str, Any]) -> float:
        return self.received_at[next(i for i, e in enumerate(self.events) if e is event)]

    def about(self, channel_id: str) -> list[dict[str, Any]]:
        """Events whose channel (or Dial peer) is ``channel_id``, in arrival order."""
        return [e for e in self.events if (e.get("channel") or e.get("peer") or {}).get("id") == channel_id]

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


class AriClient:
    """REST + event websocket against one simulated PBX."""

    def __init__(self, ari_url: str, user: str = "holdslayer", password: str = "holdslayer") -> None:
        self.ari_url = ari_url
        self._credentials = f"{user}:{password}"
        token = base64.b64encode(self._credentials.encode()).decode()
        self.session = aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"})
        self.sockets: list[EventSocket] = []

    async def open_events(self, app: str = APP) -> EventSocket:
        url = f"{self.ari_url.replace('http', 'ws', 1)}/events?app={app}&api_key={self._credentials}"
        socket = await EventSocket(self.session, url).connect()
        self.sockets.append(socket)
        return socket

    async def request(
        self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        async with self.session.request(method, self.ari_url + path, params=params, json=body) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.read() or None

    async def post(self, path: str, **params: Any) -> tuple[int, Any]:
        return await self.request("POST", path, params=_stringify(params))

    async def get(self, path: str, **params: Any) -> tuple[int, Any]:
        return await self.request("GET", path, params=_stringify(params))

    async def delete(self, path: str, **params: Any) -> tuple[int, Any]:
        return await self.request("DELETE", path, params=_stringify(params))

    async def close(self) -> None:
        for socket in self.sockets:
            await socket.close()
        await self.session.close()


def _stringify(params: dict[str, Any]) -> dict[str, str]:
    return {name: str(value).lower() if isinstance(value, bool) else str(value) for name, value in params.items()}


@dataclass
class ReceivedPacket:
    arrival: float
    packet: RtpPacket


class _RtpProtocol(asyncio.DatagramProtocol):
    def __init__(self, received: list[ReceivedPacket]) -> None:
        self.received = received

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(ReceivedPacket(time.monotonic(), parse_rtp(data)))


@dataclass
class RtpPeer:
    """The app's end of an externalMedia channel: receives RTP and sends RTP from the same socket."""

    received: list[ReceivedPacket] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None
    _sequence: int = 1000
    _timestamp: int = 0

    async def open(self) -> RtpPeer:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: _RtpProtocol(self.received), local_addr=("127.0.0.1", 0)
        )
        return self

    @property
    def address(self) -> str:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return f"{host}:{port}"

    def audio(self, since: float | None = None) -> np.ndarray:
        """Decoded received audio, optionally only packets that arrived after ``since``."""
        packets = [r.packet for r in self.received if since is None or r.arrival >= since]
        return ulaw_decode(b"".join(p.payload for p in packets)) if packets else np.zeros(0, np.int16)

    def send_frame(self, pcm: np.ndarray, to: tuple[str, int]) -> None:
        assert self.transport is not None
        packet = RtpPacket(0, self._sequence, self._timestamp, 0x5EED, ulaw_encode(pcm))
        self.transport.sendto(packet.serialize(), to)
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp += len(pcm)

    async def send_audio(self, pcm: np.ndarray, to: tuple[str, int]) -> None:
        """Send PCM as 20 ms packets, paced in real time."""
        start = time.monotonic()
        for index, offset in enumerate(range(0, len(pcm) - 159, 160)):
            self.send_frame(pcm[offset : offset + 160], to)
            await asyncio.sleep(max(0.0, start + (index + 1) * 0.02 - time.monotonic()))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def tone_energy(pcm: np.ndarray, freqs: tuple[float, ...], rate: int = 8000) -> float:
    """Fraction of the signal's energy within 15 Hz of the given frequencies."""
    if len(pcm) == 0:
        return 0.0
    x = pcm.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    bins = np.fft.rfftfreq(len(x), 1 / rate)
    total = spectrum.sum()
    if total == 0:
        return 0.0
    near = np.zeros(len(bins), bool)
    for freq in freqs:
        near |= np.abs(bins - freq) < 15
    return float(spectrum[near].sum() / total)


def rms_dbfs(pcm: np.ndarray) -> float:
    if len(pcm) == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))
    return 20 * np.log10(max(rms, 1e-6) / 32768)


@dataclass
class CompanyCall:
    """The app's standard set-up for one company call (captures a and c)."""

    company: str
    bridge: str
    external_media: str
    peer: RtpPeer
    rtp_to: tuple[str, int]


async def call_company(
    client: AriClient, events: EventSocket, endpoint: str, prefix: str, *, dial_timeout: int = 30
) -> CompanyCall:
    """create -> StasisStart -> hold bridge -> externalMedia -> its StasisStart -> addChannel -> dial."""
    company, bridge, em = f"{prefix}-company", f"{prefix}-hold", f"{prefix}-em"
    status, _ = await client.post(
        "/channels/create", endpoint=endpoint, app=APP, appArgs=f"company,{prefix}", channelId=company,
        otherChannelId=f"{company}-2", formats="ulaw",
    )  # fmt: skip
    assert status == 200
    await events.wait_for(is_event("StasisStart", company))
    status, _ = await client.post("/bridges", type="mixing,proxy_media", bridgeId=bridge, name=bridge)
    assert status == 200
    assert (await client.post(f"/bridges/{bridge}/addChannel", channel=company))[0] == 204
    peer = await RtpPeer().open()
    status, reply = await client.post(
        "/channels/externalMedia", app=APP, channelId=em, external_host=peer.address, format="ulaw",
        encapsulation="rtp", transport="udp", connection_type="client", direction="both",
    )  # fmt: skip
    assert status == 200
    variables = reply["channelvars"]
    rtp_to = (variables["UNICASTRTP_LOCAL_ADDRESS"], int(variables["UNICASTRTP_LOCAL_PORT"]))
    await events.wait_for(is_event("StasisStart", em))
    assert (await client.post(f"/bridges/{bridge}/addChannel", channel=em))[0] == 204
    assert (await client.post(f"/channels/{company}/dial", timeout=dial_timeout))[0] == 204
    return CompanyCall(company, bridge, em, peer, rtp_to)


async def hang_up(client: AriClient, call: CompanyCall) -> None:
    """Delete what the app created for the call (whatever the far end already ended)."""
    for channel in (call.company, call.external_media):
        await client.delete(f"/channels/{channel}")
    await client.delete(f"/bridges/{call.bridge}")
    call.peer.close()
