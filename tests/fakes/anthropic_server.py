"""A fake Anthropic Messages endpoint: ``POST /v1/messages``, tool use included.

Point the official SDK at it with ``AsyncAnthropic(base_url=server.base_url, api_key=server.api_key)``.
Shapes follow the SDK's own models (``anthropic.types.Message``), so a client built with
``_strict_response_validation=True`` accepts every answer; errors use the service's body
``{"type": "error", "error": {"type", "message"}, "request_id"}``.

The key is accepted from ``x-api-key`` (the documented header) or ``Authorization: Bearer``
(what the installed SDK sends for ``api_key``). A tool call's ``input`` is always a JSON object on
this wire, so a ``ToolCall`` with ``str`` arguments is parsed before it is sent.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from aiohttp import web

from tests.fakes import FakeLlmServer, HttpError, RecordedRequest, TextReply, ToolCall

_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def _block_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(block.get("text", "") for block in content if isinstance(block, dict))
    return ""


def _presented_key(request: web.Request) -> str:
    return request.headers.get("x-api-key") or request.headers.get("Authorization", "").removeprefix("Bearer ")


class FakeAnthropic(FakeLlmServer):
    route = "/v1/messages"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def check_request(self, request: web.Request, body: dict[str, Any]) -> web.Response | None:
        if _presented_key(request) != self.api_key:
            return self.render_error(HttpError(401, "invalid x-api-key"))
        if not request.headers.get("anthropic-version"):
            return self.render_error(HttpError(400, "anthropic-version: header is required"))
        problem = _request_problem(body)
        return None if problem is None else self.render_error(HttpError(400, problem))

    def record(self, request: web.Request, body: dict[str, Any]) -> RecordedRequest:
        texts = [_block_text(body.get("system"))] + [_block_text(m.get("content")) for m in body["messages"]]
        return RecordedRequest(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            prompt="\n".join(texts),
            tool_names=[tool["name"] for tool in body.get("tools", [])],
            api_key=_presented_key(request),
        )

    def render(self, reply: ToolCall | TextReply, body: dict[str, Any]) -> dict[str, Any]:
        number = next(self._ids)
        if isinstance(reply, ToolCall):
            arguments = json.loads(reply.arguments) if isinstance(reply.arguments, str) else reply.arguments
            content = [{"type": "tool_use", "id": f"toolu_fake{number}", "name": reply.name, "input": arguments}]
            stop_reason = "tool_use"
        else:
            content = [{"type": "text", "text": reply.text, "citations": None}]
            stop_reason = "end_turn"
        return {
            "id": f"msg_fake{number}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": 100, "output_tokens": 10},
        }

    def render_error(self, error: HttpError) -> web.Response:
        kind = _ERROR_TYPES.get(error.status, "api_error")
        headers = {"request-id": "req_fake"}
        if error.retry_after is not None:
            headers["retry-after"] = str(error.retry_after)
        body = {"type": "error", "error": {"type": kind, "message": error.message}, "request_id": "req_fake"}
        return web.json_response(body, status=error.status, headers=headers)


def _request_problem(body: dict[str, Any]) -> str | None:
    """What the real service would reject in a messages request, or None."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    if messages[0].get("role") != "user":
        return "messages: first message must use the \"user\" role"
    for index, message in enumerate(messages):
        if message.get("role") not in {"user", "assistant"}:
            return f"messages.{index}.role: Input should be 'user' or 'assistant'"
    tools = body.get("tools", [])
    for index, tool in enumerate(tools):
        if not _TOOL_NAME.match(str(tool.get("name", ""))):
            return f"tools.{index}.name: String should match pattern"
        if tool.get("input_schema", {}).get("type") != "object":
            return f"tools.{index}.input_schema.type: Input should be 'object'"
    choice = body.get("tool_choice")
    if choice is not None:
        if choice.get("type") not in {"auto", "any", "tool", "none"}:
            return "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
        if choice["type"] != "none" and not tools:
            return "tool_choice may only be specified while providing tools"
        if choice["type"] == "tool" and choice.get("name") not in {t["name"] for t in tools}:
            return "tool_choice names a tool that is not in tools"
    return None
