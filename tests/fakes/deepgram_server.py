"""A fake Deepgram live transcription service: ``GET /v1/listen`` upgraded to a websocket.

It speaks the wire protocol the deepgram-sdk speaks to the real service: options in the query
string, ``Authorization: Token KEY`` (anything else: HTTP 401 before the upgrade), binary
audio messages in, JSON out: ``Results`` (interim, then final pieces, ``speech_final`` at the
end of an utterance), ``UtteranceEnd``, and ``Metadata`` before it closes in answer to
``{"type": "CloseStream"}``; ``KeepAlive`` and ``Finalize`` are accepted.

It "transcribes" by replaying a script: each ``ScriptedUtterance`` says which words are heard
between two points of the received audio (in seconds of audio, as Deepgram times them), and its
messages go out as soon as enough audio bytes have arrived, as a real stream's would. For an
utterance the fake sends: an interim of its first half at mid-way, the first half as a final
piece (``is_final`` without ``speech_final``), an interim of the rest at its end, and the last
piece ``endpointing`` ms later, with ``speech_final`` (or, with ``ending="utterance_end"``, a
final piece without it followed by ``UtteranceEnd`` ``utterance_end_ms`` later).

``Finalize`` makes it send every final of words already heard and then a ``Results`` marked
``from_finalize`` (empty when there is nothing left), as the service does.

``drop_after_seconds`` closes the connection abnormally (1011) after that much audio, as a
dying service would; ``hang_after_seconds`` keeps the connection open but sends nothing more
after that much audio, whatever it is sent, as a stalled one would. Every connection is recorded in ``sessions`` (query, headers, audio bytes,
control messages) for the test to check what the SDK sent.
"""

from __future__ import annotations

import json
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from aiohttp import WSMsgType, web

from tests.fakes import LoopbackServer

# The query options the live endpoint knows (the SDK's ``listen.v1.connect`` parameters).
KNOWN_OPTIONS = frozenset(
    "callback callback_method channels detect_entities diarize diarize_model dictation encoding endpointing "
    "extra interim_results keyterm keywords language language_hint mip_opt_out model multichannel numerals "
    "profanity_filter punctuate redact replace sample_rate search smart_format tag utterance_end_ms "
    "vad_events version".split()
)
BYTES_PER_SAMPLE = {"mulaw": 1, "alaw": 1, "linear16": 2}
_MODEL_UUID = "00000000-0000-0000-0000-000000000000"
_MODEL_INFO = {"name": "general-nova-3", "version": "2025-01-01.0", "arch": "nova-3"}


@dataclass(frozen=True)
class ScriptedUtterance:
    text: str
    start: float  # seconds of received audio
    end: float
    confidence: float = 0.97
    ending: Literal["speech_final", "utterance_end"] = "speech_final"


@dataclass
class DeepgramSession:
    """What one connection carried."""

    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    audio: bytearray = field(default_factory=bytearray)
    control: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    closed_by_client_request: bool = False


class FakeDeepgram(LoopbackServer):
    def __init__(
        self,
        *,
        api_key: str = "test-key",
        script: list[ScriptedUtterance] | tuple[ScriptedUtterance, ...] = (),
        drop_after_seconds: float | None = None,
        hang_after_seconds: float | None = None,
    ) -> None:
        self.api_key = api_key
        self.script = list(script)
        self.drop_after_seconds = drop_after_seconds
        self.hang_after_seconds = hang_after_seconds
        self.sessions: list[DeepgramSession] = []

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/listen", self._listen)
        return app

    # --- one connection ----------------------------------------------------------------------
    async def _listen(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            return _http_error(401, "INVALID_AUTH", "Invalid credentials.")
        query = dict(request.query)
        problem = _query_problem(query)
        if problem is not None:
            return _http_error(400, "Bad Request", problem)
        session = DeepgramSession(query=query, headers={k.lower(): v for k, v in request.headers.items()})
        self.sessions.append(session)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        stream = _Stream(query, self.script)
        async for message in ws:
            heard = len(session.audio) / stream.bytes_per_second
            if self.hang_after_seconds is not None and heard >= self.hang_after_seconds:
                if message.type == WSMsgType.BINARY:
                    session.audio.extend(message.data)
                else:
                    session.control.append(json.loads(message.data))
                continue  # stalled: reads on, answers nothing
            if message.type == WSMsgType.BINARY:
                session.audio.extend(message.data)
                heard = len(session.audio) / stream.bytes_per_second
                if self.drop_after_seconds is not None and heard >= self.drop_after_seconds:
                    await ws.close(code=1011, message=b"NET-0001: the service went away")
                    return ws
                for out in stream.due(heard):
                    await self._send(ws, session, out)
            elif message.type == WSMsgType.TEXT:
                control = json.loads(message.data)
                session.control.append(control)
                if control.get("type") == "Finalize":
                    for out in stream.due(heard, closing=True):
                        await self._send(ws, session, out)
                    await self._send(ws, session, stream.finalized(heard))
                if control.get("type") == "CloseStream":
                    session.closed_by_client_request = True
                    heard = len(session.audio) / stream.bytes_per_second
                    for out in stream.due(heard, closing=True):
                        await self._send(ws, session, out)
                    await self._send(ws, session, stream.metadata(heard))
                    await ws.close()
                    return ws
        return ws

    @staticmethod
    async def _send(ws: web.WebSocketResponse, session: DeepgramSession, message: dict[str, Any]) -> None:
        session.sent.append(message)
        await ws.send_str(json.dumps(message))


@dataclass
class _Planned:
    at: float  # seconds of received audio at which it goes out
    covers_until: float  # a final's last word end (flushed by CloseStream once heard); inf otherwise
    message: dict[str, Any]


class _Stream:
    """The messages of one connection, in audio-time order."""

    def __init__(self, query: dict[str, str], script: list[ScriptedUtterance]) -> None:
        self.request_id = str(uuid.uuid4())
        rate = int(query.get("sample_rate", "16000"))
        self.bytes_per_second = rate * BYTES_PER_SAMPLE.get(query.get("encoding", "linear16"), 2)
        endpointing = float(query.get("endpointing", "10")) / 1000
        utterance_end = float(query.get("utterance_end_ms", "1000")) / 1000
        self.interim = query.get("interim_results") == "true"
        self._pending: list[_Planned] = []
        for utterance in script:
            self._plan(utterance, endpointing, utterance_end)
        self._pending.sort(key=lambda planned: planned.at)

    def due(self, heard: float, *, closing: bool = False) -> list[dict[str, Any]]:
        """Messages whose time has come; when closing, also every final of words already heard
        (CloseStream makes the service finalise what it has)."""
        ready = [p for p in self._pending if p.at <= heard or (closing and p.covers_until <= heard)]
        self._pending = [p for p in self._pending if not (p.at <= heard or (closing and p.covers_until <= heard))]
        return [p.message for p in ready if self.interim or p.message.get("is_final", True)]

    def finalized(self, heard: float) -> dict[str, Any]:
        """The answer to ``Finalize`` once the finals it flushed are out: nothing left to say."""
        return {**self._results([], is_final=True, speech_final=False, at=heard), "from_finalize": True}

    def metadata(self, heard: float) -> dict[str, Any]:
        return {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": "0" * 64,
            "created": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "duration": round(heard, 3),
            "channels": 1,
            "models": [_MODEL_UUID],
            "model_info": {_MODEL_UUID: _MODEL_INFO},
        }

    def _plan(self, utterance: ScriptedUtterance, endpointing: float, utterance_end: float) -> None:
        tokens = utterance.text.split()
        span = (utterance.end - utterance.start) / len(tokens)
        words = [
            {
                "word": token.strip(".,?!").lower(),
                "start": round(utterance.start + i * span, 3),
                "end": round(utterance.start + (i + 1) * span, 3),
                "confidence": utterance.confidence,
                "punctuated_word": token,
            }
            for i, token in enumerate(tokens)
        ]
        half = max(1, len(words) // 2)
        first, rest = words[:half], words[half:]
        middle = utterance.start + (utterance.end - utterance.start) / 2
        plan = [
            (middle, self._results(first, is_final=False, speech_final=False)),
            (words[half - 1]["end"], self._results(first, is_final=True, speech_final=False)),
        ]
        if rest:
            speech_final = utterance.ending == "speech_final"
            plan += [
                (utterance.end, self._results(rest, is_final=False, speech_final=False)),
                (utterance.end + endpointing, self._results(rest, is_final=True, speech_final=speech_final)),
            ]
        if utterance.ending == "utterance_end":
            plan.append(
                (utterance.end + utterance_end, {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": utterance.end})
            )
        for at, message in plan:
            is_final = message.get("is_final", False)
            covers_until = message["start"] + message["duration"] if is_final else float("inf")
            self._pending.append(_Planned(at, covers_until, message))

    def _results(
        self, words: list[dict[str, Any]], *, is_final: bool, speech_final: bool, at: float = 0.0
    ) -> dict[str, Any]:
        start, end = (words[0]["start"], words[-1]["end"]) if words else (at, at)
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(end - start, 3),
            "start": start,
            "is_final": is_final,
            "speech_final": speech_final,
            "channel": {
                "alternatives": [
                    {
                        "transcript": " ".join(w["punctuated_word"] for w in words),
                        "confidence": words[0]["confidence"] if words else 0.0,
                        "words": [dict(w) for w in words],
                    }
                ]
            },
            "metadata": {"request_id": self.request_id, "model_info": _MODEL_INFO, "model_uuid": _MODEL_UUID},
            "from_finalize": False,
        }


def _query_problem(query: dict[str, str]) -> str | None:
    unknown = sorted(set(query) - KNOWN_OPTIONS)
    if unknown:
        return f"unknown query parameters: {', '.join(unknown)}"
    encoding = query.get("encoding")
    if encoding is not None:
        if encoding not in BYTES_PER_SAMPLE:
            return f"unsupported encoding {encoding!r}"
        if "sample_rate" not in query:
            return "sample_rate is required when encoding is set"
    for name in ("sample_rate", "channels", "utterance_end_ms"):
        if name in query and not query[name].isdigit():
            return f"{name} must be an integer, got {query[name]!r}"
    for name in ("interim_results", "punctuate", "smart_format"):
        if name in query and query[name] not in ("true", "false"):
            return f"{name} must be true or false, got {query[name]!r}"
    if "utterance_end_ms" in query and query.get("interim_results") != "true":
        return "utterance_end_ms requires interim_results=true"
    return None


def _http_error(status: int, code: str, message: str) -> web.Response:
    body = {"err_code": code, "err_msg": message, "request_id": str(uuid.uuid4())}
    return web.json_response(body, status=status)
