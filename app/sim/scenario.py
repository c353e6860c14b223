"""Scenario files: what a simulated company does when it is called.

A scenario is a YAML file (see ``scenarios/README.md``). This module holds its typed model and
loader; ``company.py`` runs it. Validation is strict: unknown keys, dangling node names, bad
DTMF keys, malformed audio references and intents whose destination is not a node (or not
reachable the way the intent says) are rejected with the file path and the field path.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.sim.audio import DIGIT_REFS, check_audio_ref, entered_node, is_synthesised

DEFAULT_SCENARIOS_DIR = Path(__file__).parent / "scenarios"
HANGUP = "hangup"
DTMF_KEYS = frozenset("0123456789*#ABCD")

AudioRef = Annotated[str, AfterValidator(check_audio_ref)]
AudioList = Annotated[list[AudioRef], Field(min_length=1)]


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _refuse_numbers(value: object) -> None:
    # YAML reads 02134 as a number (losing the 0): digits must be written in quotes.
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"write {value!r} in quotes: digits are text (a YAML number loses leading zeros)")


def spoken_words(text: str) -> str:
    """Lower case words without accents or punctuation, one space apart ("Bill, please!" -> "bill please")."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return " ".join(re.findall(r"[a-z0-9']+", text))


class MenuNode(_Strict):
    """An IVR menu: play the prompt, wait for a key (or listen to the caller), repeat, then give up."""

    kind: Literal["menu"]
    prompt: AudioList
    options: dict[str, str] = Field(default_factory=dict, description="DTMF key -> node")
    speech_options: dict[str, str] = Field(
        default_factory=dict,
        description="What the caller may say -> node; alternatives separated by |, matched as whole words",
    )
    timeout_seconds: float = Field(5.0, ge=0, description="Silence after the prompt before it repeats")
    repeats: int = Field(3, ge=1, description="How many times the prompt plays before on_timeout")
    on_timeout: str = Field(HANGUP, description="Node to go to after the last repeat, or 'hangup'")
    invalid_prompt: AudioList = Field(default_factory=lambda: ["prompt:pm-invalid-option"])
    no_match_prompt: AudioList = Field(
        default_factory=lambda: ["tts:Sorry, I didn't get that."],
        description="Played when what the caller said matches no speech option; then the menu starts over",
    )

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

    @field_validator("speech_options")
    @classmethod
    def _valid_phrases(cls, value: dict[str, str]) -> dict[str, str]:
        for phrases in value:
            if not all(spoken_words(phrase) for phrase in phrases.split("|")):
                raise ValueError(f"speech option {phrases!r} has an empty alternative (separate phrases with |)")
        return value

    @property
    def listens(self) -> bool:
        """The menu understands speech (it has speech options)."""
        return bool(self.speech_options)

    def speech_target(self, transcript: str) -> str | None:
        """The node for what the caller said: the first speech option (in file order) one of whose
        phrases occurs in it as whole words, case and punctuation ignored; None when none does."""
        heard = f" {spoken_words(transcript)} "
        for phrases, target in self.speech_options.items():
            if any(f" {spoken_words(phrase)} " in heard for phrase in phrases.split("|")):
                return target
        return None

    def targets(self) -> list[str]:
        return [*self.options.values(), *self.speech_options.values(), self.on_timeout]

    def clips(self) -> list[str]:
        return [*self.prompt, *self.invalid_prompt, *(self.no_match_prompt if self.listens else [])]

    def key_targets(self) -> list[str]:
        """Where the menu leads without the caller speaking."""
        return [*self.options.values(), self.on_timeout]


class CollectNode(_Strict):
    """Data entry (Asterisk ``Read``): the caller keys digits, ended by the terminator, by
    ``max_digits`` or by a pause; a wrong entry plays ``invalid_prompt`` and asks again."""

    kind: Literal["collect"]
    prompt: AudioList
    max_digits: int = Field(ge=1, le=32, description="The entry ends by itself after this many keys")
    terminator: str | None = Field("#", description="Key that ends the entry (not part of it); null: none")
    expect: list[str] | None = Field(
        None, description="Accepted entries; None: any entry up to the terminator, or of max_digits without one"
    )
    next: str
    invalid_prompt: AudioList = Field(default_factory=lambda: ["tts:That number is not valid."])
    attempts: int = Field(3, ge=1, description="Entries (or silences) allowed before on_fail")
    on_fail: str = HANGUP
    timeout_seconds: float = Field(
        8.0, gt=0, description="Quiet after the prompt (or after the last key) that ends an attempt"
    )

    @field_validator("expect", mode="before")
    @classmethod
    def _expect_as_list(cls, value: object) -> object:
        values = value if isinstance(value, list) else [value] if value is not None else None
        if values is not None:
            for item in values:
                _refuse_numbers(item)
        return values

    @field_validator("terminator")
    @classmethod
    def _terminator_is_a_key(cls, value: str | None) -> str | None:
        if value is not None and value not in DTMF_KEYS:
            raise ValueError(f"terminator {value!r} is not a DTMF key (one of 0-9 * # A-D)")
        return value

    @model_validator(mode="after")
    def _expected_entries_can_be_keyed(self) -> CollectNode:
        for entry in self.expect or []:
            if not entry or any(key not in DTMF_KEYS or key == self.terminator for key in entry):
                raise ValueError(f"expected entry {entry!r} must be DTMF keys, without the terminator")
            if len(entry) > self.max_digits:
                raise ValueError(f"expected entry {entry!r} is longer than max_digits {self.max_digits}")
        return self

    def accepts(self, entry: str) -> bool:
        if self.expect is not None:
            return entry in self.expect
        if self.terminator is None:
            return len(entry) == self.max_digits
        return 0 < len(entry) <= self.max_digits

    def targets(self) -> list[str]:
        return [self.next, self.on_fail]

    def clips(self) -> list[str]:
        return [*self.prompt, *self.invalid_prompt]

    def key_targets(self) -> list[str]:
        return self.targets()


class HoldAnnouncement(_Strict):
    at_seconds: float = Field(ge=0, description="Seconds into the hold when it first plays")
    every_seconds: float | None = Field(None, gt=0, description="Repeat period; None = once")
    audio: AudioList


def _check_range(value: tuple[float, float]) -> tuple[float, float]:
    low, high = value
    if low > high:
        raise ValueError(f"range [{low}, {high}]: the first number must not be larger than the second")
    return value


SecondsRange = Annotated[
    tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(ge=0)]], AfterValidator(_check_range)
]


class RandomAnnouncements(_Strict):
    """Announcements at unpredictable (seeded) times, each one of ``choices`` (several voices)."""

    choices: Annotated[list[AudioList], Field(min_length=1)] = Field(
        description="What may be said; one is drawn each time (e.g. the same words in several voices)"
    )
    first_after_seconds: SecondsRange = Field((5.0, 20.0), description="[min, max] seconds into the hold")
    gap_seconds: SecondsRange = Field((15.0, 45.0), description="[min, max] seconds from one end to the next start")
    seed: int | None = Field(None, description="Same seed, same times and choices on every call; None: per call")

    @model_validator(mode="after")
    def _gaps_are_positive(self) -> RandomAnnouncements:
        if self.gap_seconds[1] <= 0:
            raise ValueError("gap_seconds: the largest gap must be above 0")
        return self


class HoldNode(_Strict):
    """A hold queue: looped music interrupted by announcements, until an agent is free."""

    kind: Literal["hold"]
    music: AudioRef | Annotated[list[AudioRef], Field(min_length=1)] = Field(
        description="One looped track, or a playlist played in turn (with track_gap_seconds between)"
    )
    track_gap_seconds: float = Field(0.0, ge=0, le=10, description="Digital silence between playlist tracks")
    seconds: float = Field(gt=0, description="Seconds on hold before going to `next`")
    announcements: list[HoldAnnouncement] = Field(default_factory=list)
    random_announcements: RandomAnnouncements | None = None
    over_music: bool = Field(False, description="Announcements are mixed over the music (a bed) instead of pausing it")
    music_bed_db: float = Field(-12.0, le=0, ge=-60, description="Music level under an announcement when over_music")
    hangup_after_seconds: float | None = Field(
        None, gt=0, description="The company drops the call after this long on hold (cause 16)"
    )
    next: str

    @property
    def playlist(self) -> list[str]:
        return [self.music] if isinstance(self.music, str) else list(self.music)

    def targets(self) -> list[str]:
        return [self.next]

    def clips(self) -> list[str]:
        random = self.random_announcements
        chosen = [ref for choice in random.choices for ref in choice] if random else []
        return [*self.playlist, *(ref for a in self.announcements for ref in a.audio), *chosen]

    def key_targets(self) -> list[str]:
        return self.targets()


class AgentReply(_Strict):
    audio: AudioList
    after_seconds: float = Field(6.0, ge=0, description="Seconds after the agent's previous utterance")
    wait_for_speech: bool = Field(
        False, description="Speak only once the caller has said something and paused (or after_seconds passed)"
    )


class LineEcho(_Strict):
    """The far end returns what it receives, attenuated and delayed (hybrid echo)."""

    attenuation_db: float = Field(20.0, ge=3, le=60, description="How much quieter the echo is")
    delay_ms: float = Field(50.0, ge=20, le=500, description="Delay of the echo (at least one 20 ms frame)")


class AgentNode(_Strict):
    """A live person: greets, then waits quietly on an open line and may speak again.

    A person may also answer when spoken to (``answers``), say "Hello?" into a silent line
    (``hello_after_seconds``) and give up when nobody answers (``hangup_if_unanswered_seconds``).
    """

    kind: Literal["agent"]
    greeting: AudioList
    replies: list[AgentReply] = Field(default_factory=list)
    noise_dbfs: float = Field(-62.0, le=-40, description="Line noise while the agent is silent")
    hangup_after_seconds: float | None = Field(None, gt=0, description="The agent hangs up (cause 16)")
    # how the line sounds
    line: Literal["noise", "gated", "call_centre"] = Field(
        "noise", description="noise: an open line; gated: digital silence between words; call_centre: voices behind"
    )
    background: AudioList = Field(
        default_factory=lambda: ["speech:vk2tpm_004.wav", "speech:david4.wav"],
        description="call_centre: the other people in the room (looped)",
    )
    background_dbfs: float = Field(-42.0, le=-20, ge=-80, description="call_centre: level of the room")
    echo: LineEcho | None = None
    # how the person picks up
    pickup: Literal["immediate", "over_music", "click"] = Field(
        "immediate", description="over_music: greets over the hold music, which fades out; click: a click, then a gap"
    )
    pickup_gap_seconds: float = Field(0.0, ge=0, le=10, description="Line (noise or silence) before the greeting")
    music_fade_seconds: float = Field(1.5, gt=0, le=10, description="over_music: the music fades out over this")
    announcement: list[AudioRef] = Field(
        default_factory=list, description="Played before the person picks up (\"connecting you to an agent\")"
    )
    # how the person reacts
    answers: list[AudioList] = Field(
        default_factory=list, description="Short replies, one per time the caller speaks and pauses, in order"
    )
    answer_delay_seconds: SecondsRange = Field((0.3, 1.2), description="[min, max] of the pause before an answer")
    end_of_turn_seconds: float = Field(0.7, ge=0.2, le=3, description="Quiet after the caller's voice that ends a turn")
    hello: AudioList = Field(default_factory=lambda: ["tts[flite:slt]:Hello?"], description="Said into a silent line")
    # A person asks again in other words; saying the very same audio again is what a recording does.
    hello_again: list[AudioList] = Field(
        default_factory=lambda: [["tts[flite:slt]:Hello, are you there?"], ["tts[flite:slt]:Hi, can you hear me?"]],
        description="Said instead of `hello` the second, third ... time, in turn",
    )
    hello_after_seconds: float | None = Field(
        None, gt=0, description="Say `hello` after this long without hearing the caller (None: never)"
    )
    hellos: int = Field(2, ge=1, le=10, description="At most this many hellos")
    hangup_if_unanswered_seconds: float | None = Field(
        None, gt=0, description="Hang up (a lost person) after this long without hearing the caller"
    )

    @model_validator(mode="after")
    def _patience_is_ordered(self) -> AgentNode:
        hello, hangup = self.hello_after_seconds, self.hangup_if_unanswered_seconds
        if hello is not None and hangup is not None and hello >= hangup:
            raise ValueError(
                f"hello_after_seconds ({hello}) must be below hangup_if_unanswered_seconds ({hangup})"
            )
        return self

    def targets(self) -> list[str]:
        return []

    def clips(self) -> list[str]:
        extra = [*self.answers_flat(), *self.announcement]
        if self.hello_after_seconds is not None:
            extra += [*self.hello, *(ref for again in self.hello_again for ref in again)]
        if self.line == "call_centre":
            extra += self.background
        return [*self.greeting, *(ref for reply in self.replies for ref in reply.audio), *extra]

    def answers_flat(self) -> list[str]:
        return [ref for answer in self.answers for ref in answer]

    def key_targets(self) -> list[str]:
        return []


class AnnouncementNode(_Strict):
    """Play something once, then go on or hang up."""

    kind: Literal["announcement"]
    audio: AudioList
    then: str = HANGUP
    hangup_cause: int = Field(16, ge=1, le=127)

    def targets(self) -> list[str]:
        return [self.then]

    def clips(self) -> list[str]:
        return list(self.audio)

    def key_targets(self) -> list[str]:
        return self.targets()


Node = Annotated[MenuNode | CollectNode | HoldNode | AgentNode | AnnouncementNode, Field(discriminator="kind")]


class Intent(_Strict):
    """What a caller may want from the company and where a good navigation ends (metadata for
    end-to-end tests and the navigation benchmark; the company itself never reads it)."""

    intent: str = Field(min_length=1, description="What the user wants, in their words")
    destination: str = Field(description="The node the call must reach")
    user_data: dict[str, str] = Field(
        default_factory=dict, description="Vault field -> value the company expects (account_number, zip_code, ...)"
    )
    speech: bool = Field(False, description="The destination can only be reached by speaking")

    @field_validator("user_data", mode="before")
    @classmethod
    def _values_are_text(cls, value: object) -> object:
        if isinstance(value, dict):
            for item in value.values():
                _refuse_numbers(item)
            for name in value:
                if not re.fullmatch(r"[a-z][a-z0-9_]*", str(name)):
                    raise ValueError(f"user_data field {name!r} is not a vault field name (snake_case)")
        return value


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
    intents: list[Intent] = Field(default_factory=list, description="What callers want and where it leads")

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
            for ref in node.clips():
                read_back = entered_node(ref)
                if read_back is not None and not isinstance(self.nodes.get(read_back), CollectNode):
                    raise ValueError(f"node {name!r} reads back {ref!r}, but {read_back!r} is not a collect node")
        self._intents_lead_somewhere()
        return self

    def _intents_lead_somewhere(self) -> None:
        if not self.intents:
            return
        by_keys = self.reachable(speech=False)
        by_any = self.reachable(speech=True)
        for index, intent in enumerate(self.intents):
            where = f"intents.{index} ({intent.intent!r})"
            if intent.destination not in self.nodes:
                raise ValueError(f"{where}: destination {intent.destination!r} is not a node")
            if intent.destination not in by_any:
                raise ValueError(f"{where}: no way leads from {self.start_node!r} to {intent.destination!r}")
            if intent.speech == (intent.destination in by_keys):
                how = "keys (or waiting) reach it: speech: false" if intent.speech else "only speech does: speech: true"
                raise ValueError(f"{where}: {intent.destination!r} is mislabelled, {how}")

    def reachable(self, *, speech: bool) -> set[str]:
        """Nodes a call can get to from the start: by keys, entries and waiting, and by speaking too when ``speech``."""
        seen = {self.start_node} if self.nodes else set()
        queue = list(seen)
        while queue:
            node = self.nodes[queue.pop()]
            for target in node.targets() if speech else node.key_targets():
                if target != HANGUP and target not in seen:
                    seen.add(target)
                    queue.append(target)
        return seen

    @property
    def start_node(self) -> str:
        return self.start or next(iter(self.nodes))

    def failure_prompt(self) -> list[str]:
        return list(self.failure_audio or DEFAULT_FAILURE_AUDIO.get(self.outcome, []))

    def _all_clips(self) -> Iterator[str]:
        if self.outcome in FAILURE_CAUSES:
            yield from self.failure_prompt()
        if self.early_media:
            yield from self.early_media.audio
        for node in self.nodes.values():
            yield from node.clips()

    def audio_refs(self) -> set[str]:
        """The audio references loaded from files or generated (to preload and check at start-up).

        Not the synthesised prompts (``tts_refs``, rendered per call in a worker thread); a
        read-back (``entered:NODE``) counts as the digit prompts it is spoken with.
        """
        refs = {ref for ref in self._all_clips() if not is_synthesised(ref) and entered_node(ref) is None}
        if any(entered_node(ref) is not None for ref in self._all_clips()):
            refs.update(DIGIT_REFS)
        return refs

    def tts_refs(self) -> set[str]:
        """The ``tts:`` prompts the scenario can play."""
        return {ref for ref in self._all_clips() if is_synthesised(ref)}


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        lines.append(f"{where}: {err['msg']}")
    return "; ".join(lines)


def load_scenario(path: Path) -> Scenario:
    """One scenario file; ``ScenarioError`` names the file and the failing field."""
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


def load_scenario_file(path: Path | str) -> Scenario:
    """A scenario file by path, or by its path inside the shipped directory when no such file
    exists from here: ``load_scenario_file("changed/nav-changed-v2.yaml")`` is the changed menu."""
    path = Path(path)
    if not path.exists() and not path.is_absolute():
        path = DEFAULT_SCENARIOS_DIR / path
    return load_scenario(path)


def load_scenarios(directory: Path | str | None = None) -> dict[str, Scenario]:
    """Every ``*.yaml`` scenario in ``directory`` (default: the shipped ones), keyed by number.

    Subdirectories are not read: ``changed/`` holds later versions of shipped companies (same
    numbers), installed on purpose with ``SimulatedPBX.install_scenario``.
    """
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
