"""The ARI operations the simulator serves, with their parameters as ari-api-docs defines them.

Requests are checked against this table before any handler runs. Unlike Asterisk, which ignores
parameters it does not know, the simulator rejects them (400 naming them), so that a misspelt
parameter in the app fails in CI instead of silently doing nothing against a real PBX.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.sim.model import AriError

TRUE_WORDS = {"yes", "true", "y", "t", "1", "on"}
FALSE_WORDS = {"no", "false", "n", "f", "0", "off"}
COMMON_PARAMS = {"api_key"}


@dataclass(frozen=True)
class Param:
    type: str = "string"  # string | int | boolean | object
    values: tuple[str, ...] | None = None  # allowable values (checked generically)
    multiple: bool = False  # may repeat / be comma separated


S = Param()
I = Param("int")  # noqa: E741 - mirrors the swagger dataType
B = Param("boolean")
BODY = Param("object")
MULTI = Param(multiple=True)


def _enum(*values: str) -> Param:
    return Param(values=values)


_ORIGINATE = {
    "endpoint": S, "extension": S, "context": S, "priority": I, "label": S, "app": S, "appArgs": S,
    "callerId": S, "timeout": I, "variables": BODY, "otherChannelId": S, "originator": S, "formats": S,
}  # fmt: skip
_PLAY = {"media": MULTI, "lang": S, "offsetms": I, "skipms": I}
_RECORD = {
    "name": S, "format": S, "maxDurationSeconds": I, "maxSilenceSeconds": I,
    "ifExists": _enum("fail", "overwrite", "append"), "beep": B, "terminateOn": _enum("none", "any", "*", "#"),
}  # fmt: skip

# nickname -> allowed query/body parameters (path parameters come from the route).
OPERATIONS: dict[str, dict[str, Param]] = {
    "getInfo": {"only": Param(values=("build", "system", "config", "status"), multiple=True)},
    "ping": {},
    "listApplications": {},
    "getApplication": {},
    "listChannels": {},
    "originate": {**_ORIGINATE, "channelId": S},
    "originateWithId": _ORIGINATE,
    "create": {
        "endpoint": S,
        "app": S,
        "appArgs": S,
        "channelId": S,
        "otherChannelId": S,
        "originator": S,
        "formats": S,
        "variables": BODY,
    },  # fmt: skip
    "externalMedia": {
        "channelId": S,
        "app": S,
        "variables": BODY,
        "external_host": S,
        "encapsulation": S,
        "transport": S,
        "connection_type": S,
        "format": S,
        "direction": S,
        "data": S,
        "transport_data": S,
    },  # fmt: skip
    "getChannel": {},
    "hangup": {"reason_code": S, "reason": S},
    "dial": {"caller": S, "timeout": I},
    "answer": {},
    "sendDTMF": {"dtmf": S, "before": I, "between": I, "duration": I, "after": I},
    "snoopChannel": {"spy": S, "whisper": S, "app": S, "appArgs": S, "snoopId": S},
    "snoopChannelWithId": {"spy": S, "whisper": S, "app": S, "appArgs": S},
    "getChannelVar": {"variable": S},
    "setChannelVar": {"variable": S, "value": S, "report_events": B},
    "playOnChannel": {**_PLAY, "playbackId": S},
    "playOnChannelWithId": _PLAY,
    "recordChannel": _RECORD,
    "startSilence": {},
    "stopSilence": {},
    "listBridges": {},
    "createBridge": {"type": S, "bridgeId": S, "name": S, "variables": BODY},
    "createBridgeWithId": {"type": S, "name": S, "variables": BODY},
    "getBridge": {},
    "destroyBridge": {},
    "addChannel": {"channel": MULTI, "role": S, "absorbDTMF": B, "mute": B, "inhibitConnectedLineUpdates": B},
    "removeChannel": {"channel": MULTI},
    "playOnBridge": {**_PLAY, "announcer_format": S, "playbackId": S},
    "playOnBridgeWithId": {**_PLAY, "announcer_format": S},
    "recordBridge": {**_RECORD, "recorder_format": S},
    "getPlayback": {},
    "stopPlayback": {},
    "listStored": {},
    "getStored": {},
    "deleteStored": {},
    "getStoredFile": {},
    "getLive": {},
    "cancelLive": {},
    "stopLive": {},
    "listEndpoints": {},
    "listEndpointsByTech": {},
    "getEndpoint": {},
    "eventWebsocket": {"app": S, "subscribeAll": B},
}


def _convert(nickname: str, name: str, spec: Param, raw: Any) -> Any:
    if spec.type == "object":
        if not isinstance(raw, dict):
            raise AriError(400, f"{nickname}: '{name}' must be a JSON object")
        return {str(key): str(value) for key, value in raw.items()}
    if spec.multiple:
        values = raw if isinstance(raw, list) else [raw]
        items = [item.strip() for value in values for item in str(value).split(",") if item.strip()]
        for item in items:
            if spec.values is not None and item not in spec.values:
                raise AriError(
                    400, f"{nickname}: invalid value {item!r} for '{name}' (allowed: {', '.join(spec.values)})"
                )
        return items
    if isinstance(raw, list):
        raw = raw[-1]
    text = str(raw).lower() if isinstance(raw, bool) else str(raw)
    if spec.type == "int":
        if not re.fullmatch(r"[+-]?\d+", text.strip()):
            raise AriError(400, f"{nickname}: '{name}' must be an integer, got {text!r}")
        return int(text)
    if spec.type == "boolean":
        word = text.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise AriError(400, f"{nickname}: '{name}' must be a boolean, got {text!r}")
    if spec.values is not None and text not in spec.values:
        raise AriError(400, f"{nickname}: invalid value {text!r} for '{name}' (allowed: {', '.join(spec.values)})")
    return text


def validate(nickname: str, query: Mapping[str, list[str]], body: Any) -> dict[str, Any]:
    """Typed parameters of one request: query first, then JSON body fields (as Asterisk merges them)."""
    specs = OPERATIONS[nickname]
    raw: dict[str, Any] = {name: values for name, values in query.items() if name not in COMMON_PARAMS}
    if body is not None:
        if not isinstance(body, dict):
            raise AriError(400, "Request body must be a JSON object")
        raw.update(body)
    unknown = sorted(name for name in raw if name not in specs)
    if unknown:
        raise AriError(
            400,
            f"Unknown parameter(s) for {nickname}: {', '.join(unknown)} "
            "(Asterisk would silently ignore them; the simulator refuses)",
        )
    return {name: _convert(nickname, name, specs[name], value) for name, value in raw.items()}
