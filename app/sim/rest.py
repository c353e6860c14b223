"""The ARI REST resources of the simulated PBX: routing, argument checks, replies.

Handlers translate HTTP into ``Pbx`` operations and back; the rules themselves live in
``telephony.py``. Replies and error bodies follow Asterisk 22 (capture f).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

from app.sim.farend import CompanyCallLog, FarEnd, UserCallLog
from app.sim.media import RTP_FORMATS, RtpPort
from app.sim.model import HANGUP_REASONS, AriError, Bridge, Channel, Endpoint, ari_time, parse_endpoint
from app.sim.telephony import Pbx

ASTERISK_VERSION = "22.10.1"
# Codec names Asterisk knows (core show codecs); the simulator carries only G.711 over RTP.
KNOWN_FORMATS = {
    "ulaw", "alaw", "gsm", "g722", "g723", "g726", "g726aal2", "g729", "ilbc", "lpc10", "speex", "speex16",
    "speex32", "opus", "silk", "siren7", "siren14", "testlaw", "adpcm", "codec2", "slin", "slin12", "slin16",
    "slin24", "slin32", "slin44", "slin48", "slin96", "slin192",
}  # fmt: skip
UNSUPPORTED_MEDIA_SCHEMES = {"tone", "number", "characters"}


class HostConfig(Protocol):
    @property
    def host(self) -> str: ...

    @property
    def user_phones(self) -> Collection[str]: ...


class PbxHost(Protocol):
    """What the resources need of the simulated PBX (``server.SimulatedPBX``).

    A protocol rather than the class: the server imports this module, so importing the server
    here would be a cycle.
    """

    model: Pbx

    @property
    def config(self) -> HostConfig: ...

    @property
    def registered_apps(self) -> Collection[str]: ...

    def far_end_for(self, endpoint: Endpoint) -> tuple[FarEnd, CompanyCallLog | UserCallLog]: ...

    def record_call(self, call_log: CompanyCallLog | UserCallLog, channel: Channel) -> None: ...


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON value, or bytes for a file
    content_type: str = "application/json"


Handler = Callable[["AriRest", dict[str, str], dict[str, Any]], Awaitable[Reply]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    nickname: str
    handler: Handler | None  # None: documented in ARI but not simulated (501)


_ROUTES: list[Route] = []


def route(method: str, path: str, nickname: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _ROUTES.append(Route(method, _compile(path), nickname, handler))
        return handler

    return register


def _compile(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None | str:
    """The route for a request, or "method" if only the method is wrong, or None."""
    path_exists = False
    for candidate in _ROUTES:
        found = candidate.pattern.match(path)
        if found:
            if candidate.method == method:
                return candidate, found.groupdict()
            path_exists = True
    return "method" if path_exists else None


def _caller_id(text: str | None) -> tuple[str, str]:
    if not text:
        return ("", "")
    found = re.fullmatch(r'\s*"?([^"<]*?)"?\s*<([^>]*)>\s*', text)
    if found:
        return found.group(1).strip(), found.group(2).strip()
    return ("", text.strip())


def _formats(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    for name in names:
        if name not in KNOWN_FORMATS:
            raise AriError(400, f"Provided format ({name}) was not found")
    return names


def _app_args(text: str | None) -> list[str]:
    return text.split(",") if text else []


def _require(params: dict[str, Any], name: str, message: str | None = None) -> Any:
    value = params.get(name)
    if value in (None, "", []):
        raise AriError(400, message or f"Missing required parameter '{name}'")
    return value


class AriRest:
    """The handlers, bound to one simulated PBX."""

    def __init__(self, sim: PbxHost) -> None:
        self.sim = sim
        self.model = sim.model
        self.started_at = ari_time()

    async def dispatch(self, route_: Route, path_args: dict[str, str], params: dict[str, Any]) -> Reply:
        if route_.handler is None:
            raise AriError(501, f"{route_.nickname} is not implemented by the simulated PBX")
        return await route_.handler(self, path_args, params)

    # ------------------------------------------------------------------ asterisk, applications

    @route("GET", "/asterisk/info", "getInfo")
    async def get_info(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        info = {
            "build": {
                "os": "Linux",
                "kernel": "6.x",
                "machine": "x86_64",
                "options": "OPTIONAL_API",
                "date": self.started_at,
                "user": "holdslayer-sim",
            },  # fmt: skip
            "system": {"version": ASTERISK_VERSION, "entity_id": self.model.asterisk_id},
            "config": {"name": "", "default_language": "en", "setid": {"user": "", "group": ""}},
            "status": {"startup_time": self.started_at, "last_reload_time": self.started_at},
        }
        only = params.get("only")
        return Reply(200, {key: value for key, value in info.items() if not only or key in only})

    @route("GET", "/asterisk/ping", "ping")
    async def ping(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return Reply(200, {"asterisk_id": self.model.asterisk_id, "ping": "pong", "timestamp": ari_time()})

    @route("GET", "/applications", "listApplications")
    async def list_applications(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return Reply(200, [self.model.application(app) for app in sorted(self.sim.registered_apps)])

    @route("GET", "/applications/{applicationName}", "getApplication")
    async def get_application(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        name = path["applicationName"]
        if name not in self.sim.registered_apps:
            raise AriError(404, "Application not found")
        return Reply(200, self.model.application(name))

    # ------------------------------------------------------------------ channels

    @route("GET", "/channels", "listChannels")
    async def list_channels(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return Reply(200, [c.to_json() for c in self.model.channels.values() if not c.hanging_up])

    @route("POST", "/channels", "originate")
    async def originate(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return self._originate(params.get("channelId"), params)

    @route("POST", "/channels/create", "create")
    async def create(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        endpoint = parse_endpoint(_require(params, "endpoint", "Endpoint must be specified"))
        formats = _formats(params.get("formats"))
        far_end, call_log = self.sim.far_end_for(endpoint)
        channel = self.model.create(
            endpoint,
            far_end,
            app=params.get("app"),
            app_args=_app_args(params.get("appArgs")),
            channel_id=params.get("channelId"),
            other_id=params.get("otherChannelId"),
            variables=params.get("variables", {}),
            formats=formats,
        )
        self.sim.record_call(call_log, channel)
        return Reply(200, channel.to_json())

    @route("POST", "/channels/externalMedia", "externalMedia")
    async def external_media(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        app = _require(params, "app", "Missing parameter app")
        audio_format = _require(params, "format", "Missing parameter format")
        host = params.get("external_host")
        if not host:
            raise AriError(400, "external_host is required for all but websocket server connections")
        for name, wanted in (("encapsulation", "rtp"), ("transport", "udp"), ("connection_type", "client")):
            if params.get(name, wanted) != wanted:
                raise AriError(400, f"The simulated PBX supports externalMedia with {name}={wanted} only")
        if params.get("direction", "both") != "both":
            raise AriError(400, "Invalid direction specified")
        if audio_format not in KNOWN_FORMATS:
            raise AriError(500, "An internal error prevented this request from being handled")
        if audio_format not in RTP_FORMATS:
            raise AriError(400, f"The simulated PBX carries ulaw or alaw, not {audio_format}")
        remote = _host_port(host)
        if params.get("channelId") in self.model.channels:
            raise AriError(409, "Channel with given unique ID already exists")
        port = await RtpPort.open(self.sim.config.host, remote, audio_format)
        try:
            channel = self.model.external_media(
                channel_id=params.get("channelId"),
                app=app,
                external_host=host,
                audio_format=audio_format,
                variables=params.get("variables", {}),
                media=port,
                local_address=port.local_address,
            )
        except AriError:
            port.close()
            raise
        return Reply(200, channel.to_json(with_channelvars=True))

    @route("GET", "/channels/{channelId}", "getChannel")
    async def get_channel(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return Reply(200, self.model.channel(path["channelId"]).to_json())

    @route("POST", "/channels/{channelId}", "originateWithId")
    async def originate_with_id(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return self._originate(path["channelId"], params)

    def _originate(self, channel_id: str | None, params: dict[str, Any]) -> Reply:
        endpoint = parse_endpoint(_require(params, "endpoint", "Endpoint must be specified"))
        app = params.get("app")
        if not app or any(params.get(name) for name in ("extension", "context", "priority", "label")):
            raise AriError(
                400, "The simulated PBX originates into a Stasis application only: give app, not a dialplan location"
            )
        formats = _formats(params.get("formats"))
        timeout = params.get("timeout", 30)
        far_end, call_log = self.sim.far_end_for(endpoint)
        channel = self.model.originate(
            endpoint,
            far_end,
            app=app,
            app_args=_app_args(params.get("appArgs")),
            channel_id=channel_id,
            other_id=params.get("otherChannelId"),
            variables=params.get("variables", {}),
            formats=formats,
            caller_id=_caller_id(params.get("callerId")),
            timeout=timeout if timeout > 0 else 0,
        )
        self.sim.record_call(call_log, channel)
        return Reply(200, channel.to_json())

    @route("DELETE", "/channels/{channelId}", "hangup")
    async def hangup(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        channel = self.model.channel(path["channelId"])
        reason, code = params.get("reason"), params.get("reason_code")
        if reason and code:
            raise AriError(400, "The reason and reason_code can't both be specified")
        cause = 16
        if reason:
            if reason not in HANGUP_REASONS:
                raise AriError(400, "Invalid reason for hangup provided")
            cause = HANGUP_REASONS[reason]
        elif code:
            if not code.isdigit():
                raise AriError(400, "Invalid reason for hangup provided")
            cause = int(code)
        self.model.hangup(channel, cause)
        return Reply(204)

    @route("POST", "/channels/{channelId}/dial", "dial")
    async def dial(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        channel = self.model.channel(path["channelId"])
        caller = None
        if params.get("caller"):
            caller = self.model.channels.get(params["caller"])
            if caller is None:
                raise AriError(404, "Caller not found")
        self.model.dial(channel, caller, max(0, params.get("timeout", 0)))
        return Reply(204)

    @route("POST", "/channels/{channelId}/answer", "answer")
    async def answer(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        self.model.answer(self.model.channel(path["channelId"]))
        return Reply(204)

    @route("POST", "/channels/{channelId}/dtmf", "sendDTMF")
    async def send_dtmf(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        channel = self.model.channel(path["channelId"])
        self.model.send_dtmf(
            channel,
            params.get("dtmf", ""),
            before=params.get("before", 0),
            between=params.get("between", 100),
            duration=params.get("duration", 100),
            after=params.get("after", 0),
        )
        return Reply(204)

    @route("POST", "/channels/{channelId}/snoop", "snoopChannel")
    async def snoop(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return self._snoop(path["channelId"], params.get("snoopId"), params)

    @route("POST", "/channels/{channelId}/snoop/{snoopId}", "snoopChannelWithId")
    async def snoop_with_id(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return self._snoop(path["channelId"], path["snoopId"], params)

    def _snoop(self, target_id: str, snoop_id: str | None, params: dict[str, Any]) -> Reply:
        target = self.model.channel(target_id)
        directions = ("none", "both", "out", "in")
        spy, whisper = params.get("spy", "none"), params.get("whisper", "none")
        if spy not in directions:
            raise AriError(400, "Invalid direction specified for spy")
        if whisper not in directions:
            raise AriError(400, "Invalid direction specified for whisper")
        if spy == "none" and whisper == "none":
            raise AriError(400, "Direction must be specified for at least spy or whisper")
        app = _require(params, "app", "Application name is required")
        channel = self.model.snoop(
            target,
            spy=spy,
            whisper=whisper,
            app=app,
            app_args=_app_args(params.get("appArgs")),
            snoop_id=snoop_id,
        )
        return Reply(200, channel.to_json())

    @route("GET", "/channels/{channelId}/variable", "getChannelVar")
    async def get_variable(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        channel = self.model.channel(path["channelId"])
        name = _require(params, "variable", "Variable name is required")
        return Reply(200, {"value": self.model.get_variable(channel, name)})

    @route("POST", "/channels/{channelId}/variable", "setChannelVar")
    async def set_variable(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        channel = self.model.channel(path["channelId"])
        name = _require(params, "variable", "Variable name is required")
        self.model.set_variable(channel, name, params.get("value", ""))
        return Reply(204)

    @route("POST", "/channels/{channelId}/play", "playOnChannel")
    async def play_on_channel(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return self._play(self.model.channel(path["channelId"]), params.get("playbackId"), params)

    @route("POST", "/channels/{channelId}/play/{playbackId}", "playOnChannelWithId")
    async def play_on_channel_with_id(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return self._play(self.model.channel(path["channelId"]), path["playbackId"], params)

    @route("POST", "/channels/{channelId}/record", "recordChannel")
    async def record_channel(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return self._record(self.model.channel(path["channelId"]), params)

    @route("POST", "/channels/{channelId}/silence", "startSilence")
    async def start_silence(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        channel = self.model.channel(path["channelId"])
        if not channel.in_stasis:
            raise AriError(409, "Channel not in Stasis application")
        return Reply(204)

    @route("DELETE", "/channels/{channelId}/silence", "stopSilence")
    async def stop_silence(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return await self.start_silence(path, params)

    # ------------------------------------------------------------------ bridges

    @route("GET", "/bridges", "listBridges")
    async def list_bridges(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return Reply(200, [b.to_json() for b in self.model.bridges.values()])

    @route("POST", "/bridges", "createBridge")
    async def create_bridge(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        bridge = self.model.create_bridge(params.get("type"), params.get("bridgeId"), params.get("name"))
        return Reply(200, bridge.to_json())

    @route("POST", "/bridges/{bridgeId}", "createBridgeWithId")
    async def create_bridge_with_id(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        bridge = self.model.create_bridge(params.get("type"), path["bridgeId"], params.get("name"))
        return Reply(200, bridge.to_json())

    @route("GET", "/bridges/{bridgeId}", "getBridge")
    async def get_bridge(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return Reply(200, self.model.bridge(path["bridgeId"]).to_json())

    @route("DELETE", "/bridges/{bridgeId}", "destroyBridge")
    async def destroy_bridge(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        self.model.destroy_bridge(self.model.bridge(path["bridgeId"]))
        return Reply(204)

    @route("POST", "/bridges/{bridgeId}/addChannel", "addChannel")
    async def add_channel(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        bridge = self.model.bridge(path["bridgeId"])
        channels = _require(params, "channel", "Missing parameter channel")
        self.model.add_channels(bridge, channels, params.get("role"))
        return Reply(204)

    @route("POST", "/bridges/{bridgeId}/removeChannel", "removeChannel")
    async def remove_channel(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        bridge = self.model.bridge(path["bridgeId"])
        channels = _require(params, "channel", "Missing parameter channel")
        self.model.remove_channels(bridge, channels)
        return Reply(204)

    @route("POST", "/bridges/{bridgeId}/play", "playOnBridge")
    async def play_on_bridge(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return self._play(self.model.bridge(path["bridgeId"]), params.get("playbackId"), params)

    @route("POST", "/bridges/{bridgeId}/play/{playbackId}", "playOnBridgeWithId")
    async def play_on_bridge_with_id(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return self._play(self.model.bridge(path["bridgeId"]), path["playbackId"], params)

    @route("POST", "/bridges/{bridgeId}/record", "recordBridge")
    async def record_bridge(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return self._record(self.model.bridge(path["bridgeId"]), params)

    # ------------------------------------------------------------------ playbacks, recordings

    def _play(self, target: Channel | Bridge, playback_id: str | None, params: dict[str, Any]) -> Reply:
        media = _require(params, "media", "Missing parameter media")
        for uri in media:
            scheme = uri.partition(":")[0]
            if scheme in UNSUPPORTED_MEDIA_SCHEMES:
                raise AriError(
                    400, f"The simulated PBX does not play {scheme}: media (use sound:, recording:, digits:)"
                )
        playback = self.model.play(
            target,
            media,
            playback_id=playback_id,
            language=params.get("lang", "en"),
            offset_ms=params.get("offsetms", 0),
        )
        return Reply(201, playback.to_json())

    def _record(self, target: Channel | Bridge, params: dict[str, Any]) -> Reply:
        recording = self.model.record(
            target,
            name=_require(params, "name", "Recording name is required"),
            audio_format=_require(params, "format", "Recording format is required"),
            max_duration=max(0, params.get("maxDurationSeconds", 0)),
            if_exists=params.get("ifExists", "fail"),
            beep=params.get("beep", False),
        )
        return Reply(201, recording.to_json(state="queued"))

    @route("GET", "/playbacks/{playbackId}", "getPlayback")
    async def get_playback(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return Reply(200, self.model.playback(path["playbackId"]).to_json())

    @route("DELETE", "/playbacks/{playbackId}", "stopPlayback")
    async def stop_playback(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        self.model.stop_playback(self.model.playback(path["playbackId"]))
        return Reply(204)

    @route("GET", "/recordings/stored", "listStored")
    async def list_stored(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return Reply(200, self.model.recordings.list())

    @route("GET", "/recordings/stored/{recordingName}", "getStored")
    async def get_stored(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return Reply(200, self.model.recordings.get(path["recordingName"]))

    @route("DELETE", "/recordings/stored/{recordingName}", "deleteStored")
    async def delete_stored(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        self.model.recordings.delete(path["recordingName"])
        return Reply(204)

    @route("GET", "/recordings/stored/{recordingName}/file", "getStoredFile")
    async def get_stored_file(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return Reply(200, self.model.recordings.read(path["recordingName"]), content_type="audio/wav")

    @route("GET", "/recordings/live/{recordingName}", "getLive")
    async def get_live(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return Reply(200, self.model.live_recording(path["recordingName"]).to_json())

    @route("DELETE", "/recordings/live/{recordingName}", "cancelLive")
    async def cancel_live(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        self.model.cancel_recording(self.model.live_recording(path["recordingName"]))
        return Reply(204)

    @route("POST", "/recordings/live/{recordingName}/stop", "stopLive")
    async def stop_live(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        self.model.stop_recording(self.model.live_recording(path["recordingName"]))
        return Reply(204)

    # ------------------------------------------------------------------ endpoints (the user phones)

    def _endpoints(self) -> list[dict[str, Any]]:
        endpoints = []
        for raw in self.sim.config.user_phones:
            technology, _, resource = raw.partition("/")
            resource = resource.split("@")[0]
            busy = [
                c.id
                for c in self.model.channels.values()
                if c.dialstring.split("@")[0] == resource and not c.hanging_up
            ]
            endpoints.append({"technology": technology, "resource": resource, "state": "online", "channel_ids": busy})
        return endpoints

    @route("GET", "/endpoints", "listEndpoints")
    async def list_endpoints(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        return Reply(200, self._endpoints())

    @route("GET", "/endpoints/{tech}", "listEndpointsByTech")
    async def list_endpoints_by_tech(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        found = [e for e in self._endpoints() if e["technology"].lower() == path["tech"].lower()]
        if not found:
            raise AriError(404, "Endpoint not found")
        return Reply(200, found)

    @route("GET", "/endpoints/{tech}/{resource}", "getEndpoint")
    async def get_endpoint(self, path: dict[str, str], params: dict[str, Any]) -> Reply:
        for endpoint in self._endpoints():
            if endpoint["technology"].lower() == path["tech"].lower() and endpoint["resource"] == path["resource"]:
                return Reply(200, endpoint)
        raise AriError(404, "Endpoint not found")


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise AriError(400, f"external_host must be host:port, got {text!r}")
    return host.strip("[]"), int(port)


# Documented ARI operations the simulator does not carry: a clear 501 instead of a 404.
for _method, _path in (
    ("POST", "/channels/{channelId}/continue"), ("POST", "/channels/{channelId}/move"),
    ("POST", "/channels/{channelId}/redirect"), ("POST", "/channels/{channelId}/ring"),
    ("DELETE", "/channels/{channelId}/ring"), ("POST", "/channels/{channelId}/progress"),
    ("POST", "/channels/{channelId}/mute"), ("DELETE", "/channels/{channelId}/mute"),
    ("POST", "/channels/{channelId}/hold"), ("DELETE", "/channels/{channelId}/hold"),
    ("POST", "/channels/{channelId}/moh"), ("DELETE", "/channels/{channelId}/moh"),
    ("GET", "/channels/{channelId}/variables"), ("POST", "/channels/{channelId}/variables"),
    ("GET", "/channels/{channelId}/rtp_statistics"), ("POST", "/channels/{channelId}/transfer_progress"),
    ("POST", "/bridges/{bridgeId}/moh"), ("DELETE", "/bridges/{bridgeId}/moh"),
    ("GET", "/bridges/{bridgeId}/variable"), ("POST", "/bridges/{bridgeId}/variable"),
    ("POST", "/playbacks/{playbackId}/control"), ("POST", "/recordings/stored/{recordingName}/copy"),
    ("POST", "/recordings/live/{recordingName}/pause"), ("DELETE", "/recordings/live/{recordingName}/pause"),
    ("POST", "/recordings/live/{recordingName}/mute"), ("DELETE", "/recordings/live/{recordingName}/mute"),
    ("POST", "/applications/{applicationName}/subscription"),
    ("DELETE", "/applications/{applicationName}/subscription"), ("PUT", "/applications/{applicationName}/eventFilter"),
    ("POST", "/events/user/{eventName}"), ("GET", "/deviceStates"), ("GET", "/mailboxes"),
    ("GET", "/asterisk/variable"), ("POST", "/asterisk/variable"), ("GET", "/asterisk/modules"),
):  # fmt: skip
    _ROUTES.append(Route(_method, _compile(_path), f"{_method} {_path}", None))
