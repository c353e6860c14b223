"""An in-process fake of the typed ARI client, for the rooms of a call session.

It records every request and answers like Asterisk 22 does where the rooms depend on it: a new
channel's own StasisStart follows its creation (as an ARI event on the call's queue, parsed by
the real event models), externalMedia replies carry the RTP address in ``channelvars``, and a
hang-up of a channel that is already gone is refused with 404 unless ``missing_ok``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from app.ari.errors import AriError, error_for_status
from app.ari.events import parse_event
from app.ari.models import Channel
from tests.ari_fake import channel as channel_json
from tests.ari_fake import event as event_json


@dataclass
class FakeAriHost:
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)  # the call's ARI events, in order
    requests: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    start_channels: bool = True  # False: created channels never get their StasisStart
    refuse: set[str] = field(default_factory=set)  # request names answered with an ARI error
    gone: set[str] = field(default_factory=set)  # channels Asterisk no longer has
    stored: dict[str, bytes] = field(default_factory=dict)  # recordings in Asterisk's spool
    recording_audio: bytes = b""  # the file a recording stores when it stops (a WAV)
    finish_recordings: bool = True  # False: a stopped recording never gets its RecordingFinished
    live: dict[str, str] = field(default_factory=dict)  # live recording name -> its bridge

    def _request(self, name: str, *args: Any) -> None:
        self.requests.append((name, args))
        if name in self.refuse:
            raise AriError(422, "refused by the fake", "POST", name)

    def names(self) -> list[str]:
        return [name for name, _ in self.requests]

    def push(self, event_type: str, **fields: Any) -> None:
        self.queue.put_nowait(parse_event(event_json(event_type, **fields)))

    def _started(self, channel_id: str, state: str = "Down") -> None:
        if self.start_channels:
            self.push("StasisStart", args=[], channel=channel_json(channel_id, state))

    async def create_channel(self, endpoint: str, channel_id: str, **kwargs: Any) -> None:
        self._request("create_channel", endpoint, channel_id, kwargs)
        self._started(channel_id)

    async def create_bridge(self, bridge_id: str, *, type: str = "mixing,proxy_media", name: str = "") -> None:
        self._request("create_bridge", bridge_id, type)

    async def add_channel(self, bridge_id: str, channel_ids: Any) -> None:
        self._request("add_channel", bridge_id, channel_ids)

    async def remove_channel(self, bridge_id: str, channel_ids: Any) -> None:
        self._request("remove_channel", bridge_id, channel_ids)

    async def external_media(self, channel_id: str, external_host: str, *, format: str = "ulaw", **kwargs: Any) -> Channel:
        self._request("external_media", channel_id, external_host, format)
        self._started(channel_id, "Up")
        reply = channel_json(channel_id)
        reply["channelvars"] = {"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1", "UNICASTRTP_LOCAL_PORT": "4000"}
        return Channel.model_validate(reply)

    async def snoop(self, channel_id: str, snoop_id: str, **kwargs: Any) -> None:
        self._request("snoop", channel_id, snoop_id, kwargs)
        self._started(snoop_id, "Up")

    async def dial(self, channel_id: str, **kwargs: Any) -> None:
        self._request("dial", channel_id, kwargs)

    async def send_dtmf(self, channel_id: str, digits: str, **kwargs: Any) -> None:
        self._request("send_dtmf", channel_id, digits, kwargs)

    async def hangup(self, channel_id: str, reason: str = "normal", *, missing_ok: bool = False) -> None:
        self._request("hangup", channel_id)
        if channel_id in self.gone and not missing_ok:
            raise AriError(404, "Channel not found", "DELETE", f"/channels/{channel_id}")

    async def destroy_bridge(self, bridge_id: str, *, missing_ok: bool = False) -> None:
        self._request("destroy_bridge", bridge_id)

    # -- recordings, as capture g: RecordingStarted before the 201, RecordingFinished after the stop

    def _recording_event(self, event_type: str, name: str, target: str, state: str) -> None:
        self.push(event_type, recording={"name": name, "format": "wav", "state": state, "target_uri": target})

    async def bridge_record(self, bridge_id: str, name: str, **kwargs: Any) -> None:
        self._request("bridge_record", bridge_id, name, kwargs)
        self._recording_event("RecordingStarted", name, f"bridge:{bridge_id}", "recording")
        self.live[name] = bridge_id

    async def stop_recording(self, name: str) -> None:
        self._request("stop_recording", name)
        if name not in self.live:
            raise error_for_status(404, "Recording not found", "POST", f"/recordings/live/{name}/stop")
        bridge_id = self.live.pop(name)
        self.stored[name] = self.recording_audio
        if self.finish_recordings:
            self._recording_event("RecordingFinished", name, f"bridge:{bridge_id}", "done")

    async def stored_recording_chunks(self, name: str, **kwargs: Any):
        self._request("stored_recording_chunks", name)
        if name not in self.stored:
            raise error_for_status(404, "Recording not found", "GET", f"/recordings/stored/{name}/file")
        data = self.stored[name]
        for start in range(0, len(data), 1000):
            yield data[start : start + 1000]

    async def delete_stored_recording(self, name: str) -> None:
        self._request("delete_stored_recording", name)
        if self.stored.pop(name, None) is None:
            raise error_for_status(404, "Recording not found", "DELETE", f"/recordings/stored/{name}")
