"""Local fakes of outside services, speaking their real wire protocols on 127.0.0.1.

This module holds what the LLM fakes (``openai_server``, ``anthropic_server``) share.
``FakeLlmServer`` is the provider-neutral part: a real aiohttp server that records every request
and answers from a script (a queue of ``ToolCall`` / ``TextReply`` / ``HttpError`` / ``RawReply``
/ ``Delayed``) or, when the script is empty, from a ``policy`` that behaves like a sensible model
(``intent_policy``). The provider modules only know their own JSON shapes.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
import re
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web



class LoopbackServer:
    """A real aiohttp server on a free 127.0.0.1 port; subclasses add their routes."""

    port: int = 0
    _runner: web.AppRunner | None = None

    def make_app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> None:
        self._runner = web.AppRunner(self.make_app(), shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


@dataclass(frozen=True)
class ToolCall:
    """The model calls one tool. A ``str`` ``arguments`` is sent verbatim (e.g. malformed JSON)."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)


@dataclass(frozen=True)
class TextReply:
    """The model answers in prose and calls no tool."""

    text: str


@dataclass(frozen=True)
class HttpError:
    """The service refuses: the status with the provider's error body (rate limit, overload...)."""

    status: int
    message: str = "scripted failure"
    retry_after: float | None = None


@dataclass(frozen=True)
class RawReply:
    """Send this JSON body verbatim with status 200 (a broken or unexpected answer)."""

    body: dict[str, Any]


@dataclass(frozen=True)
class Delayed:
    """Hold the answer for ``seconds`` (longer than the client's timeout, to test it)."""

    seconds: float
    reply: ToolCall | TextReply | HttpError | RawReply


Reply = ToolCall | TextReply | HttpError | RawReply | Delayed
Policy = Callable[["RecordedRequest"], ToolCall | TextReply]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: dict[str, Any]
    prompt: str  # every text the model would read (system + messages), joined by newlines
    tool_names: list[str]
    api_key: str  # the key the client presented, from whichever header carries it


class FakeLlmServer(LoopbackServer, ABC):
    """Base for the provider fakes; subclasses give the route, the auth check and the JSON shapes."""

    route: str = ""

    def __init__(self, *, api_key: str = "test-key", policy: Policy | None = None) -> None:
        self.api_key = api_key
        self.policy = policy
        self.requests: list[RecordedRequest] = []
        self._script: deque[Reply] = deque()
        self._stopping = asyncio.Event()

    # --- scripting -------------------------------------------------------------------------
    def script(self, *replies: Reply) -> None:
        self._script.extend(replies)

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]

    # --- provider specifics ----------------------------------------------------------------
    @property
    @abstractmethod
    def base_url(self) -> str:
        """What to pass to the SDK client as ``base_url``."""

    @abstractmethod
    def check_request(self, request: web.Request, body: dict[str, Any]) -> web.Response | None:
        """An error response when the request is not one the real service would accept."""

    @abstractmethod
    def record(self, request: web.Request, body: dict[str, Any]) -> RecordedRequest: ...

    @abstractmethod
    def render(self, reply: ToolCall | TextReply, body: dict[str, Any]) -> dict[str, Any]: ...

    @abstractmethod
    def render_error(self, error: HttpError) -> web.Response: ...

    # --- serving ---------------------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(self.route, self._handle)
        return app

    async def stop(self) -> None:
        self._stopping.set()  # releases handlers parked in a Delayed reply
        await super().stop()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return self.render_error(HttpError(400, "request body is not valid JSON"))
        refusal = self.check_request(request, body)
        if refusal is not None:
            return refusal
        recorded = self.record(request, body)
        self.requests.append(recorded)
        reply = self._next_reply(recorded)
        if isinstance(reply, Delayed):
            try:
                await asyncio.wait_for(self._stopping.wait(), reply.seconds)
            except TimeoutError:
                pass
            reply = reply.reply
        if isinstance(reply, HttpError):
            return self.render_error(reply)
        if isinstance(reply, RawReply):
            return web.json_response(reply.body)
        return web.json_response(self.render(reply, body))

    def _next_reply(self, recorded: RecordedRequest) -> Reply:
        if self._script:
            return self._script.popleft()
        if self.policy is not None:
            return self.policy(recorded)
        return HttpError(500, "the fake has no scripted reply and no policy")


# --- a sensible model, in a few lines ---------------------------------------------------------

_STOPWORDS = frozenset(
    "a an and the to for of or my i me you your please press say dial enter now about with on in is "
    "want need would like speak talk question questions help".split()
)
_OPTION_PATTERNS = (
    re.compile(r"(?:press|dial|enter|oprima)\s+([0-9*#])\s+(?:for|to)\s+([^.,;]+)", re.I),
    re.compile(r"(?:for|to)\s+([^.,;]+?),?\s+(?:press|dial|enter)\s+([0-9*#])", re.I),
)
_HUMAN_WORDS = ("representative", "operator", "agent", "associate", "person")


def _words(text: str) -> set[str]:
    return {w.rstrip("s") for w in re.findall(r"[a-z]+", text.lower()) if w not in _STOPWORDS}


def _shared_words(a: set[str], b: set[str]) -> int:
    """Words in common, where "bill" also matches "billing" (a crude stem)."""

    def same(x: str, y: str) -> bool:
        return x == y or (min(len(x), len(y)) >= 4 and (x.startswith(y) or y.startswith(x)))

    return sum(1 for x in a if any(same(x, y) for y in b))


def _prompt_line(prompt: str, label: str) -> str:
    found = re.search(rf"^{label}:\s*(.*)$", prompt, re.M | re.I)
    return found.group(1).strip().strip('"') if found else ""


def _menu_options(transcript: str) -> dict[str, str]:
    """Digit -> label, from the two commonest menu phrasings."""
    options: dict[str, str] = {}
    for digit, label in _OPTION_PATTERNS[0].findall(transcript):
        options.setdefault(digit, label.strip())
    for label, digit in _OPTION_PATTERNS[1].findall(transcript):
        options.setdefault(digit, label.strip())
    return options


def intent_policy(request: RecordedRequest) -> ToolCall:
    """Answer like a sensible model: press the option whose label shares most words with the
    intent, else the one for a person, else wait for more of the menu.

    It reads the ``Intent:`` and ``Transcript:`` lines of the prompt, as the navigator writes them.
    """
    intent = _words(_prompt_line(request.prompt, "Intent"))
    options = _menu_options(_prompt_line(request.prompt, "Transcript"))
    # the share of the label's words the intent covers, then how many: "charge" beats "pay your bill"
    # for "dispute a charge on my bill"
    scored = []
    for digit, label in options.items():
        label_words = _words(label)
        shared = _shared_words(label_words, intent)
        scored.append((shared / max(1, len(label_words)), shared, digit))
    scored.sort(reverse=True)
    if scored and scored[0][1] > 0:
        digit = scored[0][2]
        return ToolCall("press_digits", {"digits": digit, "reason": f"matches the intent: {options[digit]}"})
    for digit, label in options.items():
        if any(word in label.lower() for word in _HUMAN_WORDS):
            return ToolCall("press_digits", {"digits": digit, "reason": "no option matches; ask for a person"})
    return ToolCall("wait", {"seconds": 3, "reason": "no option heard yet"})
