"""A fake OpenAI Chat Completions endpoint: ``POST /v1/chat/completions``, tool calls included.

Point the official SDK at it with ``AsyncOpenAI(base_url=server.base_url, api_key=server.api_key)``.
Shapes follow the SDK's own models (``openai.types.chat.ChatCompletion``), so a client built with
``_strict_response_validation=True`` accepts every answer; errors use the service's body
``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from typing import Any

from aiohttp import web

from tests.fakes import FakeLlmServer, HttpError, RecordedRequest, TextReply, ToolCall

_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ERROR_KINDS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


class FakeOpenAI(FakeLlmServer):
    route = "/v1/chat/completions"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def check_request(self, request: web.Request, body: dict[str, Any]) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {self.api_key}":
            return self.render_error(HttpError(401, "Incorrect API key provided."))
        problem = _request_problem(body)
        return None if problem is None else self.render_error(HttpError(400, problem))

    def record(self, request: web.Request, body: dict[str, Any]) -> RecordedRequest:
        return RecordedRequest(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            prompt="\n".join(_content_text(m.get("content")) for m in body["messages"]),
            tool_names=[tool["function"]["name"] for tool in body.get("tools", [])],
            api_key=request.headers.get("Authorization", "").removeprefix("Bearer "),
        )

    def render(self, reply: ToolCall | TextReply, body: dict[str, Any]) -> dict[str, Any]:
        number = next(self._ids)
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
        if isinstance(reply, ToolCall):
            arguments = reply.arguments if isinstance(reply.arguments, str) else json.dumps(reply.arguments)
            function = {"name": reply.name, "arguments": arguments}
            message["tool_calls"] = [{"id": f"call_fake{number}", "type": "function", "function": function}]
            finish_reason = "tool_calls"
        else:
            message["content"] = reply.text
            finish_reason = "stop"
        return {
            "id": f"chatcmpl-fake{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
            "system_fingerprint": "fp_fake",
        }

    def render_error(self, error: HttpError) -> web.Response:
        kind, code = _ERROR_KINDS.get(error.status, ("server_error", None))
        headers = {"x-request-id": "req_fake"}
        if error.retry_after is not None:
            headers["retry-after"] = str(error.retry_after)
        body = {"error": {"message": error.message, "type": kind, "param": None, "code": code}}
        return web.json_response(body, status=error.status, headers=headers)


def _request_problem(body: dict[str, Any]) -> str | None:
    """What the real service would reject in a chat completion request, or None."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    for index, message in enumerate(messages):
        if message.get("role") not in {"system", "developer", "user", "assistant", "tool"}:
            return f"messages[{index}].role is invalid"
    tools = body.get("tools", [])
    for index, tool in enumerate(tools):
        function = tool.get("function", {}) if isinstance(tool, dict) else {}
        if tool.get("type") != "function" or not _TOOL_NAME.match(str(function.get("name", ""))):
            return f"tools[{index}] must be a function tool with a valid name"
        parameters = function.get("parameters", {})
        if parameters.get("type") != "object":
            return f"tools[{index}].function.parameters must be a JSON schema of type object"
    choice = body.get("tool_choice")
    if choice is not None and not tools:
        return "'tool_choice' is only allowed when 'tools' are specified"
    if isinstance(choice, dict):
        if choice.get("function", {}).get("name") not in {t["function"]["name"] for t in tools}:
            return "tool_choice names a function that is not in tools"
    elif choice not in (None, "none", "auto", "required"):
        return f"invalid tool_choice {choice!r}"
    return None
