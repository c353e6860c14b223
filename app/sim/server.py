"""The simulated PBX as a server: ARI over real HTTP + WebSocket, RTP over real UDP.

``SimulatedPBX`` wires the pieces together: the telephony model (``telephony.Pbx``), the media
engine, the REST resources and the event websockets (one per application, as in production:
a second connection for the same app replaces the first, which gets ``ApplicationReplaced``).

Outside ``/ari`` (which stays what Asterisk serves) one control resource makes network trouble:
``POST /sim/rtp-impairment`` ``{"loss": 0.2, "jitter_ms": 40, "seconds": 5, "seed": 1,
"channel": "<externalMedia channel id>"?}`` impairs the RTP sent to the app (every externalMedia
channel, or the one named) from now for that long; ``GET /sim/rtp-impairment`` lists what it did.
Tests call ``SimulatedPBX.impair_rtp`` directly.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import shutil
import socket
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from app.sim.corpus import Corpus, ensure_corpus
from app.sim.audio import AudioLibrary, AudioRefError
from app.sim.company import CompanyCall
from app.sim.farend import CompanyCallLog, FarEnd, UserCallLog
from app.sim.media import ImpairedSending, MediaEngine, RtpImpairment, RtpPort
from app.sim.model import DEFAULT_ASTERISK_ID, AriError, Channel, Endpoint, ari_time, parse_endpoint
from app.sim.params import validate
from app.sim.phone import UserPhone, UserPhoneConfig
from app.sim.recordings import RecordingStore
from app.sim.rest import AriRest, Reply, match
from app.sim.scenario import Scenario, ScenarioError, load_scenarios
from app.sim.telephony import Pbx, PbxTiming, TimerHandle, UnknownMediaScheme

log = logging.getLogger(__name__)

# What a number nobody configured does: the carrier's "not in service" intercept.
UNKNOWN_NUMBER = Scenario(name="(unassigned number)", number="0", outcome="not_in_service", ring_seconds=0)
_AUTH_REALM = 'Basic realm="Asterisk REST Interface"'


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port
    ari_user: str = "holdslayer"
    ari_password: str = "holdslayer"
    scenarios: dict[str, Scenario] = field(default_factory=load_scenarios)
    user_phones: dict[str, UserPhoneConfig] = field(default_factory=lambda: {"PJSIP/userphone": UserPhoneConfig()})
    corpus: Corpus | None = None  # default: ensure_corpus()
    recordings_dir: Path | None = None  # default: a temporary directory, removed on stop()
    stasis_start_delay: float = 0.004  # StasisStart after the REST reply of create/externalMedia/snoop
    busy_hangup_seconds: float = 5.0
    asterisk_id: str = DEFAULT_ASTERISK_ID
    seed: int | None = None  # for the agents' line noise


def normalise_number(number: str) -> str:
    """Digits only, without the North American trunk prefix: +1 800 555 0100 -> 8005550100."""
    digits = re.sub(r"\D", "", number)
    return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits


@dataclass(frozen=True)
class RtpStats:
    """Packet counters of one externalMedia channel's RTP socket."""

    sent: int
    received: int
    dropped: int  # malformed datagrams or another payload type


class _LoopScheduler:
    """``telephony.Scheduler`` on the running event loop; remembers handles to cancel on stop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._handles: set[asyncio.TimerHandle] = set()

    def now(self) -> float:
        return self._loop.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        handle: asyncio.TimerHandle | None = None

        def run() -> None:
            self._handles.discard(handle)
            try:
                callback()
            except Exception:
                log.exception("simulated PBX timer failed")

        handle = self._loop.call_later(delay, run)
        self._handles.add(handle)
        return handle

    def cancel_all(self) -> None:
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()


class _EventConnection:
    """One event websocket: events go out in order through a queue and a sender task."""

    def __init__(self, app: str, request: web.Request, ws: web.WebSocketResponse, sent: list[dict[str, Any]]) -> None:
        self.app = app
        self.transport = request.transport
        self.ws = ws
        self._sent = sent
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.sender = asyncio.create_task(self._send_loop())

    def send(self, event: dict[str, Any]) -> None:
        self._queue.put_nowait(event)

    def finish(self) -> None:
        self._queue.put_nowait(None)

    def abort(self) -> None:
        """Drop the TCP connection with a reset, no close frame (capture e)."""
        if self.transport is None or self.transport.is_closing():
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    async def _send_loop(self) -> None:
        while (event := await self._queue.get()) is not None:
            try:
                await self.ws.send_str(json.dumps(event))
            except (ConnectionError, RuntimeError):
                return
            self._sent.append(event)


class SimulatedPBX:
    """An ARI-compatible PBX for tests and the demo (see the module docstring)."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.sent_events: list[dict[str, Any]] = []
        self.rest_log: list[dict[str, Any]] = []
        self.company_calls: list[CompanyCallLog] = []
        self.user_calls: list[UserCallLog] = []
        self.registered_apps: set[str] = set()
        self.reachable = True  # False: every connection is cut at once, the PBX itself runs on
        self._active: dict[str, _EventConnection] = {}
        self._connections: set[_EventConnection] = set()
        self._scenarios = {normalise_number(number): s for number, s in self.config.scenarios.items()}
        self._rng = np.random.default_rng(self.config.seed)
        self._runner: web.AppRunner | None = None
        self._media_task: asyncio.Task[None] | None = None
        self._scheduler: _LoopScheduler | None = None
        self._temp_dir: Path | None = None
        self._started_at = 0.0
        self.impairments: list[ImpairedSending] = []  # every one applied, with what it did
        self.audio: AudioLibrary | None = None
        self.model: Pbx = None  # type: ignore[assignment]  # the telephony model, set in start()
        self.media: MediaEngine | None = None
        self.ari_url = ""
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start, or start again after ``stop()`` on the same port with nothing of the earlier run
        (no channels, bridges, recordings or registered applications), like a restarted Asterisk."""
        loop = asyncio.get_running_loop()
        self.registered_apps.clear()
        self._started_at = time.monotonic()
        self.audio = AudioLibrary(self.config.corpus or ensure_corpus())
        self._preload_scenarios()
        recordings_dir = self.config.recordings_dir
        if recordings_dir is None:
            self._temp_dir = recordings_dir = Path(tempfile.mkdtemp(prefix="holdslayer-sim-recordings-"))
        self._scheduler = _LoopScheduler(loop)
        self.model = Pbx(
            emit=self._emit,
            scheduler=self._scheduler,
            resolve_media=self._resolve_media,
            recordings=RecordingStore(recordings_dir),
            is_app_registered=self.registered_apps.__contains__,
            timing=PbxTiming(
                stasis_start_delay=self.config.stasis_start_delay,
                busy_hangup_seconds=self.config.busy_hangup_seconds,
            ),
            asterisk_id=self.config.asterisk_id,
        )
        self._rest = AriRest(self)
        self.media = MediaEngine(self.model)
        self._media_task = asyncio.create_task(self.media.run())
        app = web.Application()
        app.router.add_get("/ari/events", self._events_websocket)
        app.router.add_route("*", "/ari/{tail:.*}", self._rest_request)
        app.router.add_post("/sim/rtp-impairment", self._impair_request)
        app.router.add_get("/sim/rtp-impairment", self._impairments_request)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.port or self.config.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.ari_url = f"http://{self.config.host}:{self.port}/ari"
        log.info("simulated PBX listening on %s", self.ari_url)

    async def stop(self) -> None:
        """Stop at once, as a PBX that crashed or became unreachable: channels vanish without an
        event, the HTTP/WebSocket server closes, RTP stops. ``start()`` may follow (a restart)."""
        if self._scheduler is not None:
            self._scheduler.cancel_all()
        if self._media_task is not None:
            self._media_task.cancel()
            await asyncio.gather(self._media_task, return_exceptions=True)
            self._media_task = None
        for connection in list(self._connections):
            self._forget(connection)
            await connection.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for channel in list(self.model.channels.values()) if self.model else []:
            if channel.media is not None:
                channel.media.close()
                channel.media = None
        for recording in list(self.model.live_recordings.values()) if self.model else []:
            recording.writer.close()
        if self.model:
            self.model.live_recordings.clear()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    async def shut_down(self) -> None:
        """Stop as Asterisk does when told to (``core stop now``): every channel leaves Stasis,
        those events go out, then the server closes. ``start()`` may follow (a restart)."""
        self.model.shut_down()
        for connection in list(self._connections):
            connection.finish()  # after the StasisEnds already queued
            await asyncio.gather(connection.sender, return_exceptions=True)
        await self.stop()

    async def __aenter__(self) -> SimulatedPBX:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def snapshot(self) -> dict[str, list[str]]:
        return {"channels": list(self.model.channels), "bridges": list(self.model.bridges)}

    async def wait_idle(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.model.channels or self.model.bridges:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def rtp_stats(self, channel_id: str) -> RtpStats:
        port = self.model.channels[channel_id].media
        if not isinstance(port, RtpPort):
            raise ValueError(f"{channel_id} is not an externalMedia channel")
        return RtpStats(port.packets_sent, port.packets_received, port.packets_dropped)

    def impair_rtp(self, impairment: RtpImpairment, channel_id: str | None = None) -> list[ImpairedSending]:
        """Impair the RTP sent to the app from now on, on every externalMedia channel or the one
        named (``ValueError`` when there is none). Each port draws from ``seed`` + its place
        among the channels (by id), so the same call impaired twice loses the same packets."""
        ports = sorted(
            (channel.id, channel.media)
            for channel in self.model.channels.values()
            if isinstance(channel.media, RtpPort) and (channel_id is None or channel.id == channel_id)
        )
        if not ports:
            raise ValueError(f"no externalMedia channel {channel_id}" if channel_id else "no externalMedia channel")
        now = asyncio.get_running_loop().time()
        applied = []
        for index, (id_, port) in enumerate(ports):
            port.impairment = ImpairedSending(impairment, id_, now, impairment.seed + index)
            applied.append(port.impairment)
        self.impairments.extend(applied)
        return applied

    async def _impair_request(self, request: web.Request) -> web.StreamResponse:
        try:
            self._authenticate(request)
            body = await request.json()
            if not isinstance(body, dict) or set(body) - {"loss", "jitter_ms", "seconds", "seed", "channel"}:
                raise ValueError("expected an object with loss, jitter_ms, seconds, seed and channel (all optional)")
            impairment = RtpImpairment(
                loss=float(body.get("loss", 0.0)),
                jitter=float(body.get("jitter_ms", 0.0)) / 1000.0,
                seconds=float(body.get("seconds", 5.0)),
                seed=int(body.get("seed", 0)),
            )
            applied = self.impair_rtp(impairment, body.get("channel"))
        except AriError as exc:
            return _json_response(exc.status, exc.body, _auth_headers(exc.status))
        except (ValueError, TypeError) as exc:  # bad JSON, a bad value, no such channel
            return _json_response(400, {"message": str(exc)})
        return _json_response(200, {"impairments": [sending.as_dict() for sending in applied]})

    async def _impairments_request(self, request: web.Request) -> web.StreamResponse:
        try:
            self._authenticate(request)
        except AriError as exc:
            return _json_response(exc.status, exc.body, _auth_headers(exc.status))
        return _json_response(200, {"impairments": [sending.as_dict() for sending in self.impairments]})

    async def cut_off(self) -> None:
        """The network between the app and the PBX fails: websockets drop, every new request is
        cut, but calls go on in the PBX (``reconnect_network()`` ends it)."""
        self.reachable = False
        await self.drop_event_websockets()

    def reconnect_network(self) -> None:
        self.reachable = True

    async def drop_event_websockets(self) -> None:
        for connection in list(self._connections):
            self._forget(connection)
            connection.abort()
        await asyncio.sleep(0)

    async def place_inbound_call(
        self,
        exten: str,
        *,
        endpoint: str = "PJSIP/userphone",
        app: str = "holdslayer",
        args: list[str] | None = None,
        caller: tuple[str, str] = ("User Phone", "2000"),
    ) -> str:
        """The user's phone dials ``exten`` and the dialplan runs ``Stasis(app,dial,<exten>)`` (capture d).

        The channel arrives in state Ring; the app answers it. Returns the channel id.
        """
        if app not in self.registered_apps:
            raise ValueError(f"no event websocket has registered application {app!r}")
        parsed = parse_endpoint(endpoint)
        phone = self.config.user_phones.get(endpoint, UserPhoneConfig())
        assert self.audio is not None
        user_log = UserCallLog(channel_id="", endpoint=endpoint)
        channel = self.model.inbound(
            parsed,
            UserPhone(phone, self.audio, user_log),
            app=app,
            args=args if args is not None else ["dial", exten],
            exten=exten,
            caller=caller,
        )
        self.record_call(user_log, channel)
        return channel.id

    # ------------------------------------------------------------------ far ends

    def far_end_for(self, endpoint: Endpoint) -> tuple[FarEnd, CompanyCallLog | UserCallLog]:
        """Who answers a dialled endpoint: a user phone, else a company scenario by number."""
        phones = self.config.user_phones
        phone = phones.get(endpoint.raw) or phones.get(endpoint.raw.split("@")[0])
        assert self.audio is not None
        if phone is not None:
            user_log = UserCallLog(channel_id="", endpoint=endpoint.raw)
            return UserPhone(phone, self.audio, user_log), user_log
        scenario = self._scenarios.get(normalise_number(endpoint.number), UNKNOWN_NUMBER)
        company_log = CompanyCallLog(channel_id="", number=endpoint.number, scenario=scenario.name)
        return CompanyCall(scenario, self.audio, company_log, self._rng), company_log

    def install_scenario(self, scenario: Scenario) -> None:
        """Add a company, or replace the one at its number, for the calls placed from now on;
        calls already running keep theirs. A running PBX loads its audio files at once (a
        missing file raises ``ScenarioError``); its ``tts:`` prompts render with its first call."""
        if self.audio is not None:
            for ref in sorted(scenario.audio_refs()):
                try:
                    self.audio.clip(ref)
                except AudioRefError as exc:
                    raise ScenarioError(f"scenario {scenario.name!r} ({scenario.number}): {exc}") from None
        self._scenarios[normalise_number(scenario.number)] = scenario

    def record_call(self, call_log: CompanyCallLog | UserCallLog, channel: Channel) -> None:
        call_log.channel_id = channel.id
        if isinstance(call_log, CompanyCallLog):
            self.company_calls.append(call_log)
        else:
            self.user_calls.append(call_log)

    def _preload_scenarios(self) -> None:
        assert self.audio is not None
        scenarios = [*self.config.scenarios.values(), UNKNOWN_NUMBER]
        for scenario in scenarios:
            for ref in sorted(scenario.audio_refs()):
                try:
                    self.audio.clip(ref)
                except AudioRefError as exc:
                    raise ScenarioError(f"scenario {scenario.name!r} ({scenario.number}): {exc}") from None
        for endpoint, phone in self.config.user_phones.items():
            if phone.speech:
                try:
                    self.audio.clip(phone.speech)
                except AudioRefError as exc:
                    raise ScenarioError(f"user phone {endpoint}: {exc}") from None

    def _resolve_media(self, uri: str) -> np.ndarray | None:
        assert self.audio is not None
        scheme, _, name = uri.partition(":")
        if scheme not in ("sound", "recording", "digits"):
            raise UnknownMediaScheme(uri)
        if not name or ".." in name.split("/"):
            return None
        if scheme == "recording":
            return self.model.recordings.pcm(name)
        refs = [f"prompt:digits/{d}" for d in name if d.isdigit()] if scheme == "digits" else [f"prompt:{name}"]
        try:
            return self.audio.sequence(refs) if refs else None
        except AudioRefError:
            return None

    # ------------------------------------------------------------------ events

    def _emit(self, app: str, event: dict[str, Any]) -> None:
        connection = self._active.get(app)
        if connection is not None:
            connection.send({**event, "application": app})

    def _forget(self, connection: _EventConnection) -> None:
        self._connections.discard(connection)
        if self._active.get(connection.app) is connection:
            del self._active[connection.app]
        connection.finish()

    async def _events_websocket(self, request: web.Request) -> web.StreamResponse:
        if not self.reachable:
            return _cut(request)
        try:
            self._authenticate(request)
            params = validate("eventWebsocket", _query(request), None)
            app = params.get("app")
            if not app:
                raise AriError(400, "Missing parameter app")
            if "," in app or params.get("subscribeAll"):
                raise AriError(400, "The simulated PBX serves one application per websocket, without subscribeAll")
        except AriError as exc:
            return _json_response(exc.status, exc.body, _auth_headers(exc.status))
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        connection = _EventConnection(app, request, ws, self.sent_events)
        previous = self._active.get(app)
        if previous is not None:
            # The old socket stays open but hears nothing more (capture e).
            previous.send(
                {
                    "type": "ApplicationReplaced",
                    "timestamp": ari_time(),
                    "application": app,
                    "asterisk_id": self.model.asterisk_id,
                }
            )
            previous.finish()
        self._active[app] = connection
        self._connections.add(connection)
        self.registered_apps.add(app)
        try:
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            self._forget(connection)
            await asyncio.gather(connection.sender, return_exceptions=True)
        return ws

    # ------------------------------------------------------------------ REST

    async def _rest_request(self, request: web.Request) -> web.StreamResponse:
        if not self.reachable:
            return _cut(request)
        path = "/" + request.match_info["tail"]
        query = _query(request)
        body: Any = None
        reply: Reply
        try:
            self._authenticate(request)
            found = match(request.method, path)
            if found is None:
                raise AriError(404, "Resource not found")
            if found == "method":
                raise AriError(405, "Invalid method")
            route_, path_args = found
            if request.can_read_body:
                text = await request.text()
                if text.strip():
                    try:
                        body = json.loads(text)
                    except json.JSONDecodeError:
                        raise AriError(400, "Request body is not valid JSON") from None
            params = validate(route_.nickname, query, body) if route_.handler is not None else {}
            reply = await self._rest.dispatch(route_, path_args, params)
        except AriError as exc:
            reply = Reply(exc.status, exc.body)
        except Exception:
            log.exception("simulated PBX failed on %s %s", request.method, path)
            reply = Reply(500, {"message": "An internal error prevented this request from being handled"})
        self.rest_log.append(
            {
                "t": round(time.monotonic() - self._started_at, 4),
                "method": request.method,
                "path": path,
                "query": {name: values[-1] for name, values in query.items() if name != "api_key"} or None,
                "request_body": body,
                "status": reply.status,
                "body": reply.body
                if not isinstance(reply.body, bytes)
                else {"_binary": True, "bytes": len(reply.body)},
            }
        )
        if isinstance(reply.body, bytes):
            return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type)
        return _json_response(reply.status, reply.body, _auth_headers(reply.status))

    def _authenticate(self, request: web.Request) -> None:
        expected = f"{self.config.ari_user}:{self.config.ari_password}"
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                if base64.b64decode(header[6:]).decode() == expected:
                    return
            except (ValueError, UnicodeDecodeError):
                pass
        elif request.query.get("api_key") == expected:
            return
        raise AriError(401, "Authentication required")


def _cut(request: web.Request) -> web.Response:
    """No answer: the connection is reset, as by a network that fails."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=503)  # never reaches the client


def _query(request: web.Request) -> dict[str, list[str]]:
    query: dict[str, list[str]] = {}
    for name, value in request.query.items():
        query.setdefault(name, []).append(value)
    return query


def _auth_headers(status: int) -> dict[str, str] | None:
    return {"WWW-Authenticate": _AUTH_REALM} if status == 401 else None


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    if status == 204 or body is None:
        return web.Response(status=status, headers=headers)
    return web.Response(status=status, text=json.dumps(body), content_type="application/json", headers=headers)


async def run_sim(
    host: str = "127.0.0.1",
    port: int = 8088,
    *,
    scenarios_dir: Path | str | None = None,
    ari_user: str = "holdslayer",
    ari_password: str = "holdslayer",
    user_phones: dict[str, UserPhoneConfig] | None = None,
    on_ready: Callable[[SimulatedPBX], None] | None = None,
) -> None:
    """Run a simulated PBX until cancelled (the ``holdslayer sim`` command)."""
    config = SimConfig(
        host=host,
        port=port,
        ari_user=ari_user,
        ari_password=ari_password,
        scenarios=load_scenarios(scenarios_dir),
        user_phones=user_phones or {"PJSIP/userphone": UserPhoneConfig(answer_after=2.0, speech="speech:vk5qi.wav")},
    )
    async with SimulatedPBX(config) as pbx:
        if on_ready is not None:
            on_ready(pbx)
        await asyncio.Event().wait()
