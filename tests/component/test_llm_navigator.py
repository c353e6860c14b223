"""The OpenAI and Anthropic navigators, through their real SDKs, against local fakes of each
service's wire protocol (tests/fakes). The SDK clients validate every answer strictly
(``_strict_response_validation``), so the fakes' JSON is held to the SDKs' own models."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, ValidationError

from app.ivr.llm_navigator import (
    AnthropicNavigator,
    FallbackNavigator,
    NavigatorConfigError,
    NavigatorUnavailable,
    OpenAINavigator,
    navigator_from_settings,
)
from app.ivr.llm_prompts import tools_for
from app.ivr.menu import DataRequest, Menu, MenuOption, parse_menu
from app.ivr.navigator import (
    Decision,
    EnterUserData,
    NavigationContext,
    OfflineNavigator,
    PressDigits,
    ReportHold,
    ReportHuman,
    ReportStuck,
    RequestUserData,
    Say,
    Turn,
    Wait,
)
from tests.fakes import (
    Delayed,
    FakeLlmServer,
    HttpError,
    RawReply,
    TextReply,
    ToolCall,
    intent_policy,
)
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI

REPO = Path(__file__).resolve().parents[2]
PROVIDERS = ("openai", "anthropic")
KEY = "test-key"
SHORT_TIMEOUT = 0.3


def make_context(
    transcript: str = "For sales, press 1. For billing, press 2. For anything else, press 0.",
    *,
    intent: str = "a question about my bill",
    available_data: dict[str, str] | None = None,
    **extra,
) -> NavigationContext:
    """A context for a prompt that has ended (two seconds of silence after it)."""
    menu = parse_menu(transcript, trailing_silence_seconds=2.0)
    return NavigationContext(
        intent=intent, transcript=transcript, menu=menu, available_data=available_data or {}, **extra
    )


@dataclass
class Provider:
    """One provider under test: its fake server and a navigator whose SDK client points at it."""

    name: str
    server: FakeLlmServer
    opened: list
    navigator: OpenAINavigator | AnthropicNavigator = field(init=False)

    def __post_init__(self) -> None:
        self.navigator = self.navigator_with()

    def navigator_with(self, **kwargs) -> OpenAINavigator | AnthropicNavigator:
        return build_navigator(self.name, self.server, self.opened, **kwargs)


def build_navigator(name: str, server: FakeLlmServer, opened: list, *, timeout: float = 2.0, api_key: str = KEY):
    """A navigator whose real SDK client points at ``server``; closed when the test ends."""
    if name == "openai":
        import openai

        client = openai.AsyncOpenAI(
            base_url=server.base_url, api_key=api_key, max_retries=0, _strict_response_validation=True
        )
        navigator = OpenAINavigator(client, model="gpt-test", timeout=timeout)
    else:
        import anthropic

        client = anthropic.AsyncAnthropic(
            base_url=server.base_url, api_key=api_key, max_retries=0, _strict_response_validation=True
        )
        navigator = AnthropicNavigator(client, model="claude-test", timeout=timeout)
    opened.append(navigator)
    return navigator


@pytest.fixture
async def opened() -> AsyncIterator[list]:
    navigators: list = []
    yield navigators
    for navigator in navigators:
        await navigator.aclose()


def fake_server(name: str, **kwargs) -> FakeLlmServer:
    return FakeOpenAI(api_key=KEY, **kwargs) if name == "openai" else FakeAnthropic(api_key=KEY, **kwargs)


@pytest.fixture(params=PROVIDERS)
async def provider(request, opened: list) -> AsyncIterator[Provider]:
    async with fake_server(request.param) as server:
        yield Provider(request.param, server, opened)


# --- each tool becomes its action --------------------------------------------------------------

TOOL_CASES = [
    (ToolCall("press_digits", {"digits": "2", "reason": "billing"}), PressDigits("2"), "billing"),
    (ToolCall("press_digits", {"digits": "*#0", "reason": "x"}), PressDigits("*#0"), "x"),
    (ToolCall("say", {"text": "billing question", "reason": "speech menu"}), Say("billing question"), "speech menu"),
    (ToolCall("wait", {"seconds": 4, "reason": "menu still playing"}), Wait(4.0), "menu still playing"),
    (
        ToolCall("request_user_data", {"field": "zip_code", "question": "What is your ZIP code?"}),
        RequestUserData("zip_code", "What is your ZIP code?"),
        "the menu asks for zip_code, which the vault does not hold",
    ),
    (
        ToolCall("enter_user_data", {"field": "account_number", "mode": "dtmf"}),
        EnterUserData("account_number", "dtmf"),
        "the menu asks for account_number",
    ),
    (ToolCall("report_stuck", {"reason": "menu loops"}), ReportStuck("menu loops"), "menu loops"),
    (ToolCall("report_hold", {}), ReportHold(), "this is a hold queue"),
    (ToolCall("report_human", {}), ReportHuman(), "a live person answered"),
]


@pytest.mark.parametrize(
    ("reply", "action", "reason"), TOOL_CASES, ids=[f"{case[0].name}-{n}" for n, case in enumerate(TOOL_CASES)]
)
async def test_each_tool_becomes_its_action(provider: Provider, reply, action, reason):
    provider.server.script(reply)
    ctx = make_context(available_data={"account_number": "both"})

    decision = await provider.navigator.decide(ctx)

    assert decision == Decision(action, reason, 0.8, provider.name)


def test_tool_schemas_are_json_schema_and_accept_the_valid_calls():
    tools = {tool.name: tool.parameters for tool in tools_for(make_context(available_data={"account_number": "both"}))}
    for schema in tools.values():
        Draft202012Validator.check_schema(schema)
    for reply, _, _ in TOOL_CASES:
        Draft202012Validator(tools[reply.name]).validate(reply.arguments)
    with pytest.raises(ValidationError):
        Draft202012Validator(tools["press_digits"]).validate({"digits": "2a", "reason": "r"})


# --- what the SDK puts on the wire -------------------------------------------------------------


async def test_request_carries_tools_required_choice_and_context(provider: Provider):
    provider.server.script(ToolCall("wait", {"seconds": 2, "reason": "r"}))
    ctx = make_context(
        available_data={"account_number": "dtmf", "zip_code": "both"},
        history=[Turn("Welcome to Acme. Main menu: for accounts press 1.", PressDigits("1"), 4.0)],
        previous_selections=["1"],
        attempt=2,
        warnings=["pressed 3 at this menu and it came back"],
    )

    await provider.navigator.decide(ctx)

    sent = provider.server.last_request
    assert sent.api_key == KEY
    assert sent.tool_names == [
        "press_digits",
        "say",
        "wait",
        "request_user_data",
        "enter_user_data",
        "report_stuck",
        "report_hold",
        "report_human",
    ]
    body = sent.body
    if provider.name == "openai":
        assert sent.path == "/v1/chat/completions"
        assert body["tool_choice"] == "required" and body["parallel_tool_calls"] is False
        assert body["model"] == "gpt-test"
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
        schemas = {t["function"]["name"]: t["function"]["parameters"] for t in body["tools"]}
    else:
        assert sent.path == "/v1/messages"
        assert sent.headers["anthropic-version"]
        assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
        assert body["model"] == "claude-test" and body["max_tokens"] > 0
        assert "exactly one tool" in body["system"]
        schemas = {t["name"]: t["input_schema"] for t in body["tools"]}
    assert schemas["enter_user_data"]["properties"]["field"]["enum"] == ["account_number", "zip_code"]
    assert schemas["press_digits"]["required"] == ["digits", "reason"]
    prompt = sent.prompt
    assert "Intent: a question about my bill" in prompt
    assert 'Transcript: "For sales, press 1. For billing, press 2. For anything else, press 0."' in prompt
    assert "- press 2: billing (topic)" in prompt
    assert 'heard "Welcome to Acme. Main menu: for accounts press 1." -> pressed 1' in prompt
    assert "Selections already made: 1" in prompt
    assert "Times this menu has been heard in this call: 2" in prompt
    assert "Warning: pressed 3 at this menu and it came back" in prompt
    assert "- account_number: keys only" in prompt and "- zip_code: keys or speech" in prompt


async def test_menu_details_reach_the_prompt(provider: Provider):
    provider.server.script(ToolCall("wait", {"seconds": 2, "reason": "r"}))
    menu = Menu(
        options=(MenuOption(key=None, spoken="billing", label="billing"),),
        data_requests=(DataRequest("account_number", frozenset({"dtmf"}), terminator="#", length=10),),
        complete=False,
        is_hold_message=False,
        open_question=True,
    )
    ctx = NavigationContext(intent="bill", transcript="Please enter your account number followed by", menu=menu)

    await provider.navigator.decide(ctx)

    prompt = provider.server.last_request.prompt
    assert "Menu read to the end: no, it is still being read" in prompt
    assert '- say "billing": billing (topic)' in prompt
    assert "The menu asks for: account_number (dtmf, 10 digits, ends with #)" in prompt
    assert "Note: the menu asks you to say why you are calling" in prompt
    assert "User data you may enter: none" in prompt


async def test_enter_user_data_is_not_offered_without_disclosable_data(provider: Provider):
    provider.server.script(ToolCall("report_hold", {}))
    await provider.navigator.decide(make_context(available_data={}))
    assert "enter_user_data" not in provider.server.last_request.tool_names


# --- unusable answers and dead providers -------------------------------------------------------

FAILURE_CASES = [
    ("letters in digits", ToolCall("press_digits", {"digits": "2a", "reason": "r"}), "invalid_tool_call"),
    ("digits missing", ToolCall("press_digits", {"reason": "r"}), "invalid_tool_call"),
    ("unknown tool", ToolCall("transfer_call", {"to": "billing"}), "invalid_tool_call"),
    ("field not disclosable", ToolCall("enter_user_data", {"field": "ssn", "mode": "dtmf"}), "invalid_tool_call"),
    (
        "never-enter field requested",
        ToolCall("request_user_data", {"field": "card_number", "question": "Your card number?"}),
        "invalid_tool_call",
    ),
    (
        "mode not allowed",
        ToolCall("enter_user_data", {"field": "account_number", "mode": "speech"}),
        "invalid_tool_call",
    ),
    ("wait too long", ToolCall("wait", {"seconds": 600, "reason": "r"}), "invalid_tool_call"),
    ("prose, no tool", TextReply("You should press 2 for billing."), "no_tool_call"),
    ("rate limited", HttpError(429, "Rate limit reached", retry_after=1), "rate_limited"),
    ("server error", HttpError(500, "The server had an error"), "server_error"),
    ("overloaded", HttpError(529, "Overloaded"), "server_error"),
    ("bad request", HttpError(400, "invalid model"), "rejected"),
    ("unreadable answer", RawReply({"id": "x", "unexpected": True}), "bad_response"),
]


@pytest.mark.parametrize(("reply", "kind"), [c[1:] for c in FAILURE_CASES], ids=[c[0] for c in FAILURE_CASES])
async def test_unusable_answers_make_the_navigator_unavailable(provider: Provider, reply, kind):
    provider.server.script(reply)
    with pytest.raises(NavigatorUnavailable) as raised:
        await provider.navigator.decide(make_context(available_data={"account_number": "dtmf"}))
    assert (raised.value.provider, raised.value.kind) == (provider.name, kind)


async def test_malformed_json_arguments_are_rejected(opened: list):
    async with FakeOpenAI(api_key=KEY) as server:
        server.script(ToolCall("press_digits", '{"digits": "2", "reason": '))
        with pytest.raises(NavigatorUnavailable, match="not JSON") as raised:
            await build_navigator("openai", server, opened).decide(make_context())
    assert raised.value.kind == "invalid_tool_call"


async def test_a_slow_provider_times_out(provider: Provider):
    provider.server.script(Delayed(5.0, ToolCall("press_digits", {"digits": "2", "reason": "late"})))
    navigator = provider.navigator_with(timeout=SHORT_TIMEOUT)
    with pytest.raises(NavigatorUnavailable) as raised:
        await navigator.decide(make_context())
    assert raised.value.kind == "timeout"


async def test_a_wrong_key_is_rejected(provider: Provider):
    with pytest.raises(NavigatorUnavailable) as raised:
        await provider.navigator_with(api_key="wrong").decide(make_context())
    assert raised.value.kind == "rejected" and "401" in raised.value.detail
    assert provider.server.requests == []


@pytest.mark.parametrize("name", PROVIDERS)
async def test_an_unreachable_provider_is_a_connection_failure(name: str, opened: list):
    async with fake_server(name) as server:
        navigator = build_navigator(name, server, opened)
    # the server is gone: nothing listens on its port any more
    with pytest.raises(NavigatorUnavailable) as raised:
        await navigator.decide(make_context())
    assert raised.value.kind == "connection"


# --- falling back to the offline navigator ---------------------------------------------------


async def test_fallback_uses_the_offline_navigator_when_the_provider_fails(provider: Provider):
    navigator = FallbackNavigator(provider.navigator, OfflineNavigator())
    provider.server.script(HttpError(500), ToolCall("press_digits", {"digits": "0", "reason": "operator"}))

    first = await navigator.decide(make_context())
    second = await navigator.decide(make_context())

    assert (first.action, first.navigator) == (PressDigits("2"), "offline")  # offline matched "billing"
    assert navigator.last_failure is not None and navigator.last_failure.kind == "server_error"
    assert (second.action, second.navigator) == (PressDigits("0"), provider.name)
    assert len(provider.server.requests) == 2


async def test_fallback_rests_a_failing_provider_then_tries_it_again(provider: Provider, manual_clock):
    clock = manual_clock
    navigator = FallbackNavigator(
        provider.navigator, OfflineNavigator(), failures_before_cooldown=2, cooldown_seconds=30, clock=clock
    )
    provider.server.script(HttpError(429), HttpError(503))

    for _ in range(3):
        assert (await navigator.decide(make_context())).navigator == "offline"
    assert len(provider.server.requests) == 2  # the third decision did not wait for the provider

    clock.t += 31
    provider.server.script(ToolCall("press_digits", {"digits": "2", "reason": "billing"}))
    assert (await navigator.decide(make_context())).navigator == provider.name
    assert len(provider.server.requests) == 3


# --- configuration -----------------------------------------------------------------------------


@dataclass
class LlmTestSettings:
    navigator: str = "auto"
    openai_api_key: str | None = None
    openai_model: str = "gpt-test"
    openai_base_url: str | None = None
    anthropic_api_key: str | None = None
    anthropic_model: str = "claude-test"
    anthropic_base_url: str | None = None
    llm_timeout: float = 2.0


def test_no_key_means_the_offline_navigator():
    offline = OfflineNavigator()
    assert navigator_from_settings(LlmTestSettings(), offline=offline) is offline


@pytest.mark.parametrize("name", PROVIDERS)
def test_a_named_provider_without_a_key_is_a_config_error(name: str, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(NavigatorConfigError, match=f"{name.upper()}_API_KEY"):
        navigator_from_settings(LlmTestSettings(navigator=name), offline=OfflineNavigator())
    with pytest.raises(NavigatorConfigError, match="needs an API key"):
        OpenAINavigator() if name == "openai" else AnthropicNavigator()


def test_an_unknown_navigator_name_is_a_config_error():
    with pytest.raises(NavigatorConfigError, match="unknown navigator 'gpt'"):
        navigator_from_settings(LlmTestSettings(navigator="gpt"), offline=OfflineNavigator())


@pytest.mark.parametrize("name", PROVIDERS)
async def test_a_configured_key_gives_that_provider_backed_by_offline(name: str):
    async with fake_server(name) as server:
        settings = LlmTestSettings(**{f"{name}_api_key": KEY, f"{name}_base_url": server.base_url})
        navigator = navigator_from_settings(settings, offline=OfflineNavigator())
        server.script(ToolCall("press_digits", {"digits": "2", "reason": "billing"}))

        decision = await navigator.decide(make_context())
        await navigator.aclose()

    assert isinstance(navigator, FallbackNavigator) and navigator.primary.name == name
    assert (decision.action, decision.navigator) == (PressDigits("2"), name)
    assert server.last_request.api_key == KEY


def test_the_sdks_are_not_imported_with_the_module():
    code = "import sys, app.ivr.llm_navigator; print(sorted({'openai', 'anthropic'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert result.stdout.strip() == "[]"


# --- a whole (small) menu tree, answered like a sensible model --------------------------------

COMPANY = {
    "": "Welcome to Acme Power. For outages, press 1. For billing and payments, press 2. "
    "To speak with a representative, press 0.",
    "2": "Billing. To pay your bill, press 1. For a copy of your statement, press 2. "
    "For questions about a charge, press 3.",
    "23": "DESTINATION: billing disputes",
    "0": "DESTINATION: operator",
}


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("provider_alive", [True, False], ids=["alive", "dead"])
@pytest.mark.parametrize(
    ("intent", "destination"),
    [("dispute a charge on my bill", "billing disputes"), ("update my mailing address", "operator")],
)
async def test_navigating_a_menu_tree(name: str, provider_alive: bool, intent: str, destination: str, opened: list):
    """With the provider up, the model decides every step; with it down, the offline navigator
    takes over and the call still gets there."""
    async with fake_server(name, policy=intent_policy) as server:
        navigator = FallbackNavigator(build_navigator(name, server, opened), OfflineNavigator())
        if not provider_alive:
            await server.stop()
        path, history, deciders = "", [], set()
        while not COMPANY[path].startswith("DESTINATION"):
            ctx = make_context(COMPANY[path], intent=intent, history=list(history), previous_selections=list(path))
            decision = await navigator.decide(ctx)
            assert isinstance(decision.action, PressDigits), decision
            deciders.add(decision.navigator)
            history.append(Turn(COMPANY[path], decision.action))
            path += decision.action.digits
    assert COMPANY[path] == f"DESTINATION: {destination}"
    assert deciders == {name if provider_alive else "offline"}
