"""Scenario files: what a simulated company does when it is called.

A scenario is a YAML file (see ``scenarios/README.md``). This module holds its typed model and
loader; ``company.py`` runs it. Validation is strict: unknown keys, dangling node names, bad
DTMF keys and malformed audio references are rejected with the file path and the field path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.sim.audio import check_audio_ref

DEFAULT_SCENARIOS_DIR = Path(__file__).parent / "scenarios"
HANGUP = "hangup"
DTMF_KEYS = frozenset("0123456789*#ABCD")

AudioRef = Annotated[str, AfterValidator(check_audio_ref)]
AudioList = Annotated[list[AudioRef], Field(min_length=1)]


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MenuNode(_Strict):
    """An IVR menu: play the prompt, wait for a key, repeat, then give up."""

    kind: Literal["menu"]
    prompt: AudioList
    options: dict[str, str] = Field(default_factory=dict, description="DTMF key -> node")
    timeout_seconds: float = Field(5.0, ge=0, description="Silence after the prompt before it repeats")
    repeats: int = Field(3, ge=1, description="How many times the prompt plays before on_timeout")
    on_timeout: str = Field(HANGUP, description="Node to go to after the last repeat, or 'hangup'")
    invalid_prompt: AudioList = Field(default_factory=lambda: ["prompt:pm-invalid-option"])

    @field_validator("options", mode="before")
    @classmethod
    def _keys_as_strings(cls, value: object) -> object:
        # YAML reads `1: billing` with an int key.
        if isinstance(value, dict):
            return {str(key): target for key, target in value.items()}
        return value

    @field_validator("options")
    @classmethod
    def _valid_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key not in DTMF_KEYS:
                raise ValueError(f"option key {key!r} is not a DTMF key (one of 0-9 * # A-D)")
        return value

    def targets(self) -> list[str]:
        return [*self.options.values(), self.on_timeout]


class HoldAnnouncement(_Strict):
    at_seconds: float = Field(ge=0, description="Seconds into the hold when it first plays")
    every_seconds: float | None = Field(None, gt=0, description="Repeat period; None = once")
    audio: AudioList


class HoldNode(_Strict):
    """A hold queue: looped music interrupted by announcements, until an agent is free."""

    kind: Literal["hold"]
    music: AudioRef
    seconds: float = Field(gt=0, description="Seconds on hold before going to `next`")
    announcements: list[HoldAnnouncement] = Field(default_factory=list)
    hangup_after_seconds: float | None = Field(
        None, gt=0, description="The company drops the call after this long on hold (cause 16)"
    )
    next: str

    def targets(self) -> list[str]:
        return [self.next]


class AgentReply(_Strict):
    audio: AudioList
    after_seconds: float = Field(6.0, ge=0, description="Seconds after the agent's previous utterance")
    wait_for_speech: bool = Field(
        False, description="Speak only once the caller has said something and paused (or after_seconds passed)"
    )


class AgentNode(_Strict):
    """A live person: greets, then waits quietly on an open line and may speak again."""

    kind: Literal["agent"]
    greeting: AudioList
    replies: list[AgentReply] = Field(default_factory=list)
    noise_dbfs: float = Field(-62.0, le=-40, description="Line noise while the agent is silent")
    hangup_after_seconds: float | None = Field(None, gt=0, description="The agent hangs up (cause 16)")

    def targets(self) -> list[str]:
        return []


class AnnouncementNode(_Strict):
    """Play something once, then go on or hang up."""

    kind: Literal["announcement"]
    audio: AudioList
    then: str = HANGUP
    hangup_cause: int = Field(16, ge=1, le=127)

    def targets(self) -> list[str]:
        return [self.then]


Node = Annotated[MenuNode | HoldNode | AgentNode | AnnouncementNode, Field(discriminator="kind")]


class EarlyMedia(_Strict):
    """In-band audio before answer (Dial PROGRESS), e.g. a carrier's own ringback or a message."""

    after_seconds: float = Field(0.5, ge=0, description="Seconds after RINGING when PROGRESS comes")
    audio: AudioList
    loop: bool = False


Outcome = Literal["answer", "busy", "no_answer", "not_in_service", "congestion"]

DEFAULT_FAILURE_AUDIO: dict[str, list[str]] = {
    "not_in_service": ["sit:intercept", "prompt:ss-noservice"],
    "congestion": ["sit:no-circuit", "prompt:all-circuits-busy-now", "prompt:please-try-call-later"],
}
FAILURE_CAUSES = {"not_in_service": 1, "congestion": 16}


class Scenario(_Strict):
    name: str = Field(min_length=1)
    number: str = Field(pattern=r"^\+?[0-9]+$")
    outcome: Outcome = "answer"
    ring_seconds: float = Field(3.0, ge=0, description="Ringing before the company answers")
    early_media: EarlyMedia | None = None
    answer_pause_seconds: float = Field(0.5, ge=0, description="Silence after answer before the first node")
    failure_audio: list[AudioRef] | None = Field(
        None, description="What not_in_service / congestion play after answering (defaults per outcome)"
    )
    start: str | None = Field(None, description="First node; default: the first one listed")
    nodes: dict[str, Node] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _graph_is_closed(self) -> Scenario:
        if self.outcome == "answer" and not self.nodes:
            raise ValueError("outcome 'answer' needs at least one node")
        if HANGUP in self.nodes:
            raise ValueError(f"{HANGUP!r} is reserved and cannot name a node")
        if self.start is not None and self.start not in self.nodes:
            raise ValueError(f"start node {self.start!r} is not defined")
        for name, node in self.nodes.items():
            for target in node.targets():
                if target != HANGUP and target not in self.nodes:
                    raise ValueError(f"node {name!r} leads to undefined node {target!r}")
            if isinstance(node, HoldNode) and node.next == HANGUP:
                raise ValueError(f"hold node {name!r} must lead to a node (the agent), not hangup")
        return self

    @property
    def start_node(self) -> str:
        return self.start or next(iter(self.nodes))

    def failure_prompt(self) -> list[str]:
        return list(self.failure_audio or DEFAULT_FAILURE_AUDIO.get(self.outcome, []))

    def audio_refs(self) -> set[str]:
        """Every audio reference the scenario can play (to preload and check at start-up)."""
        refs: set[str] = set(self.failure_prompt()) if self.outcome in FAILURE_CAUSES else set()
        if self.early_media:
            refs.update(self.early_media.audio)
        for node in self.nodes.values():
            if isinstance(node, MenuNode):
                refs.update(node.prompt)
                refs.update(node.invalid_prompt)
            elif isinstance(node, HoldNode):
                refs.add(node.music)
                for announcement in node.announcements:
                    refs.update(announcement.audio)
            elif isinstance(node, AgentNode):
                refs.update(node.greeting)
                for reply in node.replies:
                    refs.update(reply.audio)
            else:
                refs.update(node.audio)
        return refs


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        lines.append(f"{where}: {err['msg']}")
    return "; ".join(lines)


def load_scenario(path: Path) -> Scenario:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: cannot read YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: expected a mapping at the top level")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{path}: {_describe(exc)}") from None


def load_scenarios(directory: Path | str | None = None) -> dict[str, Scenario]:
    """Every ``*.yaml`` scenario in ``directory`` (default: the shipped ones), keyed by number."""
    directory = Path(directory) if directory else DEFAULT_SCENARIOS_DIR
    scenarios: dict[str, Scenario] = {}
    origin: dict[str, Path] = {}
    for path in sorted(directory.glob("*.yaml")):
        scenario = load_scenario(path)
        if scenario.number in scenarios:
            raise ScenarioError(f"{path}: number {scenario.number} is already used by {origin[scenario.number]}")
        scenarios[scenario.number] = scenario
        origin[scenario.number] = path
    return scenarios
