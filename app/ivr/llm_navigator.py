"""LLM navigators (OpenAI, Anthropic) with tool calling, and the fallback that keeps calls going.

Each ``decide`` sends one stateless request: the rules (system prompt), the call so far as text,
and the navigation tools, with exactly one tool call required. The tool call is validated into
an action (``app.ivr.llm_prompts``). Whatever goes wrong with the provider (timeout, rate limit,
server or connection error, no tool call, a call that does not validate) raises
``NavigatorUnavailable``: ``FallbackNavigator`` then asks the offline navigator instead, so a
dead provider degrades to the offline path rather than ending the call.

The vendor SDKs are imported only when a provider navigator is built.
"""

from __future__ import annotations

import asyncio
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from pydantic import SecretStr

from app import provider_errors
from app.clock import Clock, MonotonicClock
from app.ivr.llm_prompts import (
    SYSTEM_PROMPT,
    ToolSpec,
    action_from_tool_call,
    render_context,
    tools_for,
)
from app.ivr.navigator import Decision, NavigationContext, Navigator

if TYPE_CHECKING:
    import anthropic
    import openai

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
DEFAULT_ANTHROPIC_MODEL = "claude-3-5-haiku-latest"
DEFAULT_TIMEOUT = 10.0  # seconds for the whole decision; menus wait about that long for a key
LLM_CONFIDENCE = 0.8  # a validated tool call; models' self-reported confidence is not worth asking for
_MAX_TOKENS = 512

FailureKind = Literal[
    "timeout",
    "rate_limited",
    "server_error",
    "connection",
    "rejected",  # any other 4xx: bad key, unknown model, request refused
    "bad_response",  # an answer the SDK cannot read
    "no_tool_call",
    "invalid_tool_call",
]


class NavigatorConfigError(ValueError):
    """A provider navigator cannot be built: no API key, or its SDK is not installed."""


class NavigatorUnavailable(RuntimeError):
    """The provider gave no usable decision this time; the caller should use another navigator."""

    def __init__(self, provider: str, kind: FailureKind, detail: str) -> None:
        super().__init__(f"{provider} navigator unavailable ({kind}): {detail}")
        self.provider = provider
        self.kind = kind
        self.detail = detail
        provider_errors.count(provider, "llm")


def _status_kind(status: int) -> FailureKind:
    if status == 429:
        return "rate_limited"
    return "server_error" if status >= 500 else "rejected"


def _api_key(given: str | None, env_var: str, provider: str) -> str:
    key = given or os.environ.get(env_var)
    if not key:
        raise NavigatorConfigError(
            f"the {provider} navigator needs an API key: pass api_key (HOLDSLAYER_{env_var}) or set {env_var}"
        )
    return key


class _LlmNavigator(ABC):
    """The provider-neutral half: deadline, validation, and turning failures into one type."""

    name: str
    client: Any
    _errors: Any  # the SDK module, for its exception classes

    def __init__(self, *, model: str, timeout: float) -> None:
        self.model = model
        self.timeout = timeout

    async def decide(self, ctx: NavigationContext) -> Decision:
        tools = tools_for(ctx)
        prompt = render_context(ctx)
        try:
            async with asyncio.timeout(self.timeout):  # bounds the SDK's retries too
                name, arguments = await self._tool_call(prompt, tools)
        except TimeoutError:
            raise NavigatorUnavailable(self.name, "timeout", f"no answer within {self.timeout:g} s") from None
        try:
            action, reason = action_from_tool_call(name, arguments, ctx)
        except ValueError as exc:  # InvalidToolCall, or an action's own check
            raise NavigatorUnavailable(self.name, "invalid_tool_call", f"{name}: {exc}") from None
        return Decision(action=action, reason=reason, confidence=LLM_CONFIDENCE, navigator=self.name)

    async def aclose(self) -> None:
        """Close the SDK client's connections (also those of a client passed in)."""
        await self.client.close()

    async def _guarded(self, request: Awaitable[T]) -> T:
        """Await an SDK request, turning its errors into ``NavigatorUnavailable``. Both SDKs name
        their exceptions alike (``self._errors`` is the SDK module)."""
        errors = self._errors
        try:
            return await request
        except errors.APITimeoutError:
            raise NavigatorUnavailable(self.name, "timeout", f"no answer within {self.timeout:g} s") from None
        except errors.APIConnectionError as exc:
            raise NavigatorUnavailable(self.name, "connection", str(exc)) from None
        except errors.APIStatusError as exc:
            raise NavigatorUnavailable(self.name, _status_kind(exc.status_code), str(exc)) from None
        except errors.APIError as exc:  # e.g. an answer that does not match the SDK's models
            raise NavigatorUnavailable(self.name, "bad_response", str(exc)) from None

    @abstractmethod
    async def _tool_call(self, prompt: str, tools: tuple[ToolSpec, ...]) -> tuple[str, dict[str, Any] | str]:
        """Ask the model; return the one tool call's name and arguments."""


class OpenAINavigator(_LlmNavigator):
    """Chat Completions with function tools and ``tool_choice="required"``."""

    name = "openai"

    def __init__(
        self,
        client: openai.AsyncOpenAI | None = None,
        *,
        model: str = DEFAULT_OPENAI_MODEL,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 1,
    ) -> None:
        super().__init__(model=model, timeout=timeout)
        try:
            import openai
        except ImportError:
            raise NavigatorConfigError("the OpenAI navigator needs the openai package") from None
        self._errors = openai
        if client is None:
            key = _api_key(api_key, "OPENAI_API_KEY", "OpenAI")
            client = openai.AsyncOpenAI(api_key=key, base_url=base_url, timeout=timeout, max_retries=max_retries)
        self.client = client

    async def _tool_call(self, prompt: str, tools: tuple[ToolSpec, ...]) -> tuple[str, dict[str, Any] | str]:
        response = await self._guarded(
            self.client.chat.completions.create(
                model=self.model,
                messages=[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
                tools=[
                    {
                        "type": "function",
                        "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                    }
                    for t in tools
                ],
                tool_choice="required",
                parallel_tool_calls=False,
                timeout=self.timeout,
            )
        )
        calls = response.choices[0].message.tool_calls if response.choices else None
        if not calls or len(calls) != 1 or calls[0].type != "function":
            raise NavigatorUnavailable(self.name, "no_tool_call", f"expected one function call, got {calls or 'none'}")
        return calls[0].function.name, calls[0].function.arguments


class AnthropicNavigator(_LlmNavigator):
    """Messages API with tools and ``tool_choice={"type": "any"}``."""

    name = "anthropic"

    def __init__(
        self,
        client: anthropic.AsyncAnthropic | None = None,
        *,
        model: str = DEFAULT_ANTHROPIC_MODEL,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 1,
    ) -> None:
        super().__init__(model=model, timeout=timeout)
        try:
            import anthropic
        except ImportError:
            raise NavigatorConfigError("the Anthropic navigator needs the anthropic package") from None
        self._errors = anthropic
        if client is None:
            key = _api_key(api_key, "ANTHROPIC_API_KEY", "Anthropic")
            client = anthropic.AsyncAnthropic(api_key=key, base_url=base_url, timeout=timeout, max_retries=max_retries)
        self.client = client

    async def _tool_call(self, prompt: str, tools: tuple[ToolSpec, ...]) -> tuple[str, dict[str, Any] | str]:
        response = await self._guarded(
            self.client.messages.create(
                model=self.model,
                max_tokens=_MAX_TOKENS,
                system=SYSTEM_PROMPT,
                messages=[{"role": "user", "content": prompt}],
                tools=[{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools],
                tool_choice={"type": "any", "disable_parallel_tool_use": True},
                timeout=self.timeout,
            )
        )
        calls = [block for block in response.content if block.type == "tool_use"]
        if len(calls) != 1:
            raise NavigatorUnavailable(self.name, "no_tool_call", f"expected one tool_use block, got {len(calls)}")
        return calls[0].name, calls[0].input


class FallbackNavigator:
    """Ask ``primary``; when it is unavailable, ask ``fallback``. ``Decision.navigator`` says which
    one decided. After ``failures_before_cooldown`` failures in a row the primary is skipped for
    ``cooldown_seconds``, so a dead provider does not cost a timeout at every menu."""

    def __init__(
        self,
        primary: Navigator,
        fallback: Navigator,
        *,
        failures_before_cooldown: int = 2,
        cooldown_seconds: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.name = f"{primary.name}+{fallback.name}"
        self.failures_before_cooldown = failures_before_cooldown
        self.cooldown_seconds = cooldown_seconds
        self.clock = clock or MonotonicClock()
        self.last_failure: NavigatorUnavailable | None = None
        self._failures_in_a_row = 0
        self._skip_primary_until = float("-inf")

    async def decide(self, ctx: NavigationContext) -> Decision:
        if self.clock.now() >= self._skip_primary_until:
            try:
                decision = await self.primary.decide(ctx)
            except NavigatorUnavailable as exc:
                self._note_failure(exc)
            else:
                self._failures_in_a_row = 0
                return decision
        return await self.fallback.decide(ctx)

    async def aclose(self) -> None:
        for navigator in (self.primary, self.fallback):
            close = getattr(navigator, "aclose", None)
            if close is not None:
                await close()

    def _note_failure(self, exc: NavigatorUnavailable) -> None:
        self.last_failure = exc
        self._failures_in_a_row += 1
        log.warning("%s; using the %s navigator", exc, self.fallback.name)
        if self._failures_in_a_row >= self.failures_before_cooldown:
            self._skip_primary_until = self.clock.now() + self.cooldown_seconds
            self._failures_in_a_row = 0
            log.warning("skipping the %s navigator for %g s", self.primary.name, self.cooldown_seconds)


class LlmSettings(Protocol):
    """The settings ``navigator_from_settings`` reads (proposed fields of ``app.config.Settings``)."""

    navigator: str  # "auto" (an LLM when a key is set, else offline) | "offline" | "openai" | "anthropic"
    openai_api_key: SecretStr | str | None
    openai_model: str
    openai_base_url: str | None
    anthropic_api_key: SecretStr | str | None
    anthropic_model: str
    anthropic_base_url: str | None
    llm_timeout: float


def _secret(value: SecretStr | str | None) -> str | None:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def navigator_from_settings(settings: LlmSettings, *, offline: Navigator) -> Navigator:
    """The configured navigator: an LLM backed by ``offline``, or ``offline`` alone when no key is
    set. Naming a provider explicitly without its key raises ``NavigatorConfigError``."""
    choice = settings.navigator
    openai_key, anthropic_key = _secret(settings.openai_api_key), _secret(settings.anthropic_api_key)
    if choice == "auto":
        choice = "openai" if openai_key else "anthropic" if anthropic_key else "offline"
    if choice == "offline":
        return offline
    if choice == "openai":
        primary: Navigator = OpenAINavigator(
            model=settings.openai_model,
            api_key=openai_key,
            base_url=settings.openai_base_url,
            timeout=settings.llm_timeout,
        )
    elif choice == "anthropic":
        primary = AnthropicNavigator(
            model=settings.anthropic_model,
            api_key=anthropic_key,
            base_url=settings.anthropic_base_url,
            timeout=settings.llm_timeout,
        )
    else:
        raise NavigatorConfigError(f"unknown navigator {settings.navigator!r}: auto, offline, openai or anthropic")
    return FallbackNavigator(primary, offline)
