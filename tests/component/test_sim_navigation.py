"""Navigation scenarios of the simulated PBX: synthesised prompts, data entry, speech menus,
intents, and companies whose menu changes while the PBX runs.

The behaviour is checked over real sockets (ARI over HTTP/WebSocket, RTP over UDP), the way the
app meets it; the frame-exact timing rules are checked on the company script without sockets.
Speech goes through the real local voice (Piper) and the real local Whisper, shared by all tests.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from app.media.wavfile import read_wav
from app.sim import ScenarioError, SimConfig, SimulatedPBX, UserPhoneConfig, load_scenarios
from app.sim.audio import FRAME_SAMPLES, SAMPLE_RATE, AudioLibrary, PromptVoice, default_tts_cache_dir
from app.sim.company import CallerSpeech, CompanyCall
from app.sim.farend import CompanyCallLog
from app.sim.scenario import DEFAULT_SCENARIOS_DIR, CollectNode, MenuNode, Scenario, load_scenario, load_scenario_file
from tests.sim_helpers import AriClient, EventSocket, call_company, hang_up, is_event, rms_dbfs, tone_energy

pytestmark = pytest.mark.corpus

ENTRY = "5552001"
SPEECH = "5551004"  # nav-speech.yaml: "briefly tell me why you're calling"
CHANGED = "5551014"  # nav-changed.yaml, and changed/nav-changed-v2.yaml
REORDER = (913.8, 1428.5, 1776.7)  # the SIT the entry test plays as its "invalid" message: easy to find in RTP

ENTRY_SCENARIO = {
    "name": "Entry Test",
    "number": ENTRY,
    "ring_seconds": 0.3,
    "answer_pause_seconds": 0.1,
    "nodes": {
        "entry": {
            "kind": "collect",
            "prompt": ["prompt:agent-pass"],  # "Please enter your password followed by the pound key."
            "max_digits": 8,
            "expect": "1234",
            "next": "accepted",
            "invalid_prompt": ["sit:reorder"],
            "attempts": 2,
            "on_fail": "rejected",
            "timeout_seconds": 10,
        },
        "accepted": {"kind": "hold", "music": "moh:reno_project-system", "seconds": 30, "next": "agent"},
        "agent": {"kind": "agent", "greeting": ["speech:kristoff.raw"]},
        "rejected": {"kind": "announcement", "audio": ["prompt:goodbye"]},
    },
}


def nav_files() -> list[Path]:
    return sorted(DEFAULT_SCENARIOS_DIR.glob("nav-*.yaml"))


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture
async def pbx(corpus) -> AsyncIterator[SimulatedPBX]:
    shipped = load_scenarios()
    scenarios = {
        ENTRY: Scenario.model_validate(ENTRY_SCENARIO),
        SPEECH: shipped[SPEECH],
        CHANGED: shipped[CHANGED],
    }
    config = SimConfig(scenarios=scenarios, user_phones={"PJSIP/userphone": UserPhoneConfig()}, corpus=corpus, seed=3)
    async with SimulatedPBX(config) as running:
        yield running


@pytest.fixture
async def client(pbx: SimulatedPBX) -> AsyncIterator[AriClient]:
    ari = AriClient(pbx.ari_url)
    yield ari
    await ari.close()


@pytest.fixture
async def events(client: AriClient) -> EventSocket:
    return await client.open_events()


def company_log(pbx: SimulatedPBX, channel_id: str) -> CompanyCallLog:
    return next(log for log in pbx.company_calls if log.channel_id == channel_id)


async def eventually(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        await asyncio.sleep(0.02)


async def caller_says(pbx: SimulatedPBX, text: str) -> np.ndarray:
    """The caller's words in the local voice, rendered the same way every time (the PBX's own
    prompt voice: the app's voice varies a little between renderings, and tiny.en with it)."""
    return await asyncio.to_thread(pbx.audio.voice.load, text)


def contains_clip(received: np.ndarray, clip: np.ndarray, seconds: float = 0.8) -> bool:
    """Whether the start of ``clip`` occurs in ``received`` (normalised cross-correlation over
    mu-law: a copy scores near 1, other speech far lower)."""
    probe = clip[: int(seconds * SAMPLE_RATE)].astype(np.float64)
    signal = received.astype(np.float64)
    if len(signal) < len(probe) or not probe.any():
        return False
    size = 1 << (len(signal) + len(probe)).bit_length()
    correlation = np.fft.irfft(np.fft.rfft(signal, size) * np.conj(np.fft.rfft(probe, size)), size)[: len(signal)]
    windows = np.convolve(signal * signal, np.ones(len(probe)), "full")[len(probe) - 1 : len(signal) + len(probe) - 1]
    score = correlation / (np.sqrt(np.maximum(windows, 1e-9)) * np.linalg.norm(probe))
    return float(score.max()) > 0.9


# ---------------------------------------------------------------------------- the shipped companies


def test_every_nav_company_loads_with_intents_that_lead_to_their_destinations():
    files = nav_files()
    assert len(files) >= 13
    scenarios = {path.name: load_scenario(path) for path in files}
    numbers = [s.number for s in scenarios.values()]
    assert len(set(numbers)) == len(numbers) and all(n.startswith("5551") for n in numbers)
    shipped = load_scenarios()
    for name, scenario in scenarios.items():
        assert shipped[scenario.number] == scenario, name
        assert 2 <= len(scenario.intents) <= 4, name
        reachable = scenario.reachable(speech=True)
        for intent in scenario.intents:
            assert intent.destination in scenario.nodes and intent.destination in reachable, (name, intent)
        assert scenario.tts_refs(), f"{name}: prompts are synthesised"

    kinds = {type(node) for s in scenarios.values() for node in s.nodes.values()}
    assert CollectNode in kinds
    def speech_only(scenario: Scenario) -> bool:
        return any(isinstance(n, MenuNode) and n.listens and not n.options for n in scenario.nodes.values())

    listening = [s for s in scenarios.values() if speech_only(s)]
    assert listening and all(intent.speech for s in listening for intent in s.intents)
    assert any(i.user_data for s in scenarios.values() for i in s.intents)


def test_the_changed_menu_is_the_same_company_with_its_keys_moved():
    before = load_scenarios()[CHANGED]
    after = load_scenario_file("changed/nav-changed-v2.yaml")
    assert after.number == before.number and after.name == before.name
    assert [(i.intent, i.destination) for i in after.intents] == [(i.intent, i.destination) for i in before.intents]
    old_menu, new_menu = before.nodes["main"], after.nodes["main"]
    assert isinstance(old_menu, MenuNode) and isinstance(new_menu, MenuNode)
    assert old_menu.options["1"] == "hold_billing" and new_menu.options["3"] == "hold_billing"
    assert new_menu.options["1"] not in {i.destination for i in after.intents}  # the learned key now misleads
    # load_scenarios() reads no subdirectory: otherwise the two versions would clash on the number
    assert load_scenarios()[CHANGED].nodes["main"] == old_menu


def test_intents_and_entries_are_validated(tmp_path):
    base = "name: Check\nnumber: '123'\nnodes:\n  main: {kind: menu, prompt: [prompt:vm-press], options: {'1': hold}}\n"
    base += "  hold: {kind: hold, music: moh:reno_project-system, seconds: 5, next: agent}\n"
    base += "  agent: {kind: agent, greeting: [speech:kristoff.raw]}\n"
    path = tmp_path / "check.yaml"

    path.write_text(base + "intents: [{intent: billing, destination: nowhere}]\n")
    with pytest.raises(ScenarioError, match="destination 'nowhere' is not a node"):
        load_scenario(path)
    path.write_text(base + "intents: [{intent: billing, destination: hold, speech: true}]\n")
    with pytest.raises(ScenarioError, match="'hold' is mislabelled, keys"):
        load_scenario(path)
    path.write_text(base + "intents: [{intent: billing, destination: hold, user_data: {account_number: 123}}]\n")
    with pytest.raises(ScenarioError, match="in quotes"):
        load_scenario(path)

    entry = "name: Entry\nnumber: '124'\nnodes:\n  main: {kind: collect, prompt: [prompt:vm-press], max_digits: 5, "
    path.write_text(entry + "expect: 02134, next: main}\n")
    with pytest.raises(ScenarioError, match="in quotes"):
        load_scenario(path)
    path.write_text(entry + "expect: '12#', next: main}\n")
    with pytest.raises(ScenarioError, match="without the terminator"):
        load_scenario(path)
    path.write_text(entry + "next: main}\n  read: {kind: announcement, audio: ['entered:read']}\n")
    with pytest.raises(ScenarioError, match="'read' is not a collect node"):
        load_scenario(path)


def test_speech_options_match_whole_words_in_file_order():
    menu = MenuNode.model_validate(
        {
            "kind": "menu",
            "prompt": ["prompt:vm-press"],
            "speech_options": {"technical support|tech support": "tech", "bill|billing": "billing", "agent": "agent"},
        }
    )
    assert menu.speech_target("Bill and please.") == "billing"
    assert menu.speech_target("My TECH support, question; and my billing") == "tech"
    assert menu.speech_target("a billion things") is None  # "bill" is not a word of it
    assert menu.speech_target("the agency") is None
    with pytest.raises(ValueError, match="empty alternative"):
        MenuNode.model_validate({"kind": "menu", "prompt": ["prompt:x"], "speech_options": {"billing||bill": "x"}})


# ---------------------------------------------------------------------------- synthesised prompts


def test_tts_prompts_render_at_8_khz_once_and_are_read_back_from_disk(tmp_path, monkeypatch):
    text = "For billing, press 1."
    voice = PromptVoice(tmp_path)
    pcm = voice.load(text)
    assert pcm.dtype == np.int16 and 1.0 < len(pcm) / SAMPLE_RATE < 3.0
    assert rms_dbfs(pcm) > -30
    stored = read_wav(voice.path(text))
    assert stored.sample_rate == SAMPLE_RATE and np.array_equal(stored.pcm, pcm)
    assert voice.renders == 1

    again = PromptVoice(tmp_path)  # a later run: the file is read, the voice is not used
    assert np.array_equal(again.load("For  billing,\npress 1."), pcm)  # the same words, spaced otherwise
    assert again.renders == 0
    assert voice.path("For billing, press 2.") != voice.path(text)

    monkeypatch.setenv("HOLDSLAYER_TTS_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert default_tts_cache_dir() == tmp_path / "elsewhere"
    assert PromptVoice().cache_dir == tmp_path / "elsewhere"


async def test_prepare_loads_tts_prompts_in_a_worker_thread_once(corpus, tmp_path):
    library = AudioLibrary(corpus, PromptVoice(tmp_path))
    refs = ["tts:Press 2 for sales.", "prompt:vm-press"]
    assert library.missing(refs) == sorted(refs)
    first, second = library.prepare(refs), library.prepare(refs)  # a second caller waits for the same work
    await asyncio.gather(first, second)
    assert library.missing(refs) == [] and library.voice.renders == 1
    assert rms_dbfs(library.clip("tts:Press 2 for sales.")) > -30


# ---------------------------------------------------------------------------- data entry over ARI


async def test_collect_accepts_the_right_entry_and_goes_on(pbx, client, events):
    call = await call_company(client, events, f"PJSIP/{ENTRY}@trunk", "ok")
    log = company_log(pbx, call.company)
    await eventually(lambda: log.path == ["entry"], what="the entry prompt")
    assert (await client.post(f"/channels/{call.company}/dtmf", dtmf="1234#", between=80, duration=80))[0] == 204
    await eventually(lambda: log.path == ["entry", "accepted"], timeout=3, what="the next node")
    assert log.entered == {"entry": "1234"} and log.dtmf == "1234#"
    await hang_up(client, call)
    assert await pbx.wait_idle(2)


async def test_collect_rejects_a_wrong_entry_says_so_and_asks_again(pbx, client, events):
    call = await call_company(client, events, f"PJSIP/{ENTRY}@trunk", "retry")
    log = company_log(pbx, call.company)
    await eventually(lambda: log.path == ["entry"], what="the entry prompt")
    await client.post(f"/channels/{call.company}/dtmf", dtmf="99#", between=80, duration=80)
    await eventually(lambda: log.entered == {"entry": "99"}, timeout=3, what="the wrong entry")
    rejected_at = time.monotonic()
    await asyncio.sleep(2.0)
    invalid_message = call.peer.audio(since=rejected_at)[: int(0.9 * SAMPLE_RATE)]
    assert tone_energy(invalid_message, REORDER) > 0.6
    assert rms_dbfs(call.peer.audio(since=rejected_at + 1.2)) > -35  # then the prompt again
    assert log.path == ["entry"]

    await client.post(f"/channels/{call.company}/dtmf", dtmf="1234#", between=80, duration=80)
    await eventually(lambda: log.path == ["entry", "accepted"], timeout=3, what="the next node")
    assert log.entered == {"entry": "1234"}
    await hang_up(client, call)
    assert await pbx.wait_idle(2)


async def test_collect_gives_up_after_its_attempts(pbx, client, events):
    call = await call_company(client, events, f"PJSIP/{ENTRY}@trunk", "fail")
    log = company_log(pbx, call.company)
    await eventually(lambda: log.path == ["entry"], what="the entry prompt")
    await client.post(f"/channels/{call.company}/dtmf", dtmf="1#", between=80, duration=80)
    await eventually(lambda: log.entered == {"entry": "1"}, timeout=3, what="the first entry")
    await client.post(f"/channels/{call.company}/dtmf", dtmf="2#", between=80, duration=80)
    destroyed = await events.wait_for(is_event("ChannelDestroyed", call.company), timeout=5)
    assert destroyed["cause"] == 16
    assert (log.path, log.entered, log.ended_by) == (["entry", "rejected"], {"entry": "2"}, "far_end")
    await hang_up(client, call)
    assert await pbx.wait_idle(2)


# ---------------------------------------------------------------------------- speech menus over RTP


@pytest.mark.timeout(90)
async def test_speech_menu_understands_the_caller_and_says_so_when_it_does_not(pbx, client, events):
    nonsense, billing = [await caller_says(pbx, text) for text in ("Blue giraffe sandwich.", "Billing, please.")]
    call = await call_company(client, events, f"PJSIP/{SPEECH}@trunk", "talk")
    log = company_log(pbx, call.company)
    answer = await events.wait_for(is_event("Dial", call.company, dialstatus="ANSWER"), timeout=3)
    await eventually(lambda: log.path == ["main"], timeout=30, what="the speech menu (its prompt is synthesised)")
    await asyncio.sleep(1.0)
    assert rms_dbfs(call.peer.audio(since=events.arrival(answer))) > -35  # the synthesised prompt is on the line

    await call.peer.send_audio(nonsense, call.rtp_to)  # over the prompt: barge-in
    await eventually(lambda: len(log.heard) == 1, timeout=10, what="the first transcript")
    understood_at = time.monotonic()
    # What the caller said, not a menu word: Whisper may mishear one word of it ("let me draw a
    # sandwich") when a loaded machine delivers the audio late.
    assert log.heard[0][0] == "main" and {"giraffe", "sandwich"} & set(re.findall(r"[a-z]+", log.heard[0][1].lower()))
    assert log.path == ["main"]
    await asyncio.sleep(2.0)
    no_match = pbx.audio.clip("tts:Sorry, I didn't get that.")
    assert contains_clip(call.peer.audio(since=understood_at - 0.1), no_match)

    await call.peer.send_audio(billing, call.rtp_to)
    await eventually(lambda: len(log.path) == 2, timeout=10, what="the billing queue")
    assert log.path == ["main", "hold_billing"] and log.reached("hold_billing")
    assert "bill" in log.heard[1][1].lower()
    assert log.dtmf == ""
    await hang_up(client, call)
    assert await pbx.wait_idle(2)


# ---------------------------------------------------------------------------- a menu that changes


@pytest.mark.timeout(90)
async def test_install_scenario_changes_the_company_for_new_calls_only(pbx, client, events):
    before = await call_company(client, events, f"PJSIP/{CHANGED}@trunk", "v1")
    old_log = company_log(pbx, before.company)
    await eventually(lambda: old_log.path == ["main"], timeout=30, what="the old menu")

    pbx.install_scenario(load_scenario_file("changed/nav-changed-v2.yaml"))
    after = await call_company(client, events, f"PJSIP/{CHANGED}@trunk", "v2")
    new_log = company_log(pbx, after.company)
    await eventually(lambda: new_log.path == ["main"], timeout=30, what="the new menu")

    for call in (before, after):  # the key the billing option had when the flow was learned
        assert (await client.post(f"/channels/{call.company}/dtmf", dtmf="1"))[0] == 204
    await eventually(lambda: len(old_log.path) == 2 and len(new_log.path) == 2, timeout=3, what="both choices")
    assert old_log.path == ["main", "hold_billing"]
    assert new_log.path == ["main", "outages"] and not new_log.reached("hold_billing")
    assert old_log.scenario == new_log.scenario == "Riverside Internet"
    for call in (before, after):
        await hang_up(client, call)
    assert await pbx.wait_idle(2)


# ---------------------------------------------------------------------------- the company script, without sockets


@dataclass
class ScriptedTranscriber:
    """Answers each utterance with the next text, at once."""

    texts: list[str]
    utterances: list[np.ndarray] = field(default_factory=list)

    def transcribe(self, pcm: np.ndarray, done: Callable[[str], None]) -> None:
        self.utterances.append(pcm)
        done(self.texts.pop(0))


def _company(corpus, scenario: dict, transcriber: ScriptedTranscriber | None = None) -> CompanyCall:
    parsed = Scenario.model_validate({"name": "Script", "number": "1", "answer_pause_seconds": 0, **scenario})
    log = CompanyCallLog(channel_id="c", number="1", scenario="Script")
    company = CompanyCall(parsed, AudioLibrary(corpus), log, np.random.default_rng(1), transcriber)
    company.answered()
    return company


def _voice(seconds: float) -> list[np.ndarray]:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tone = (3000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)  # -20 dBFS: well above the voice threshold
    return [tone[i : i + FRAME_SAMPLES] for i in range(0, len(tone), FRAME_SAMPLES)]


def _tick(company: CompanyCall, heard: np.ndarray | None = None) -> np.ndarray | None:
    frame = company.next_frame()
    company.hear(heard)
    return frame


def test_caller_speech_needs_enough_voice_and_ends_after_a_pause():
    speech = CallerSpeech()
    assert all(speech.feed(frame) is None for frame in _voice(0.2))  # a short noise ...
    assert all(speech.feed(None) is None for _ in range(60))  # ... is forgotten
    assert all(speech.feed(frame) is None for frame in _voice(0.5))
    assert speech.speaking
    ends = [speech.feed(None) for _ in range(CallerSpeech.END_QUIET)]
    assert all(e is None for e in ends[:-1]) and ends[-1] is not None
    assert len(ends[-1]) / SAMPLE_RATE == pytest.approx(0.2 + 0.5 + 0.3)  # lead-in, voice, tail
    assert not speech.speaking


def test_speech_menu_stops_its_prompt_for_the_caller_and_follows_the_words(corpus):
    transcriber = ScriptedTranscriber(["Uh, billing please."])
    company = _company(
        corpus,
        {
            "nodes": {
                "main": {"kind": "menu", "prompt": ["prompt:basic-pbx-ivr-main"],
                         "speech_options": {"bill|billing": "billing"}, "no_match_prompt": ["prompt:privacy-incorrect"]},
                "billing": {"kind": "hold", "music": "moh:reno_project-system", "seconds": 5, "next": "agent"},
                "agent": {"kind": "agent", "greeting": ["speech:kristoff.raw"]},
            }
        },
        transcriber,
    )  # fmt: skip
    assert all(_tick(company) is not None for _ in range(25))  # half a second of the prompt
    during_speech = [_tick(company, frame) for frame in _voice(0.6)]
    assert all(f is not None for f in during_speech[: CallerSpeech.MIN_VOICE - 1])
    assert all(f is None for f in during_speech[CallerSpeech.MIN_VOICE :])  # barge-in: the prompt stopped
    for _ in range(CallerSpeech.END_QUIET):
        _tick(company)
    assert len(transcriber.utterances) == 1
    assert company.log.heard == [("main", "Uh, billing please.")]
    _tick(company)
    assert company.log.path == ["main", "billing"]


def test_speech_menu_says_no_match_then_starts_over_and_still_takes_keys(corpus):
    transcriber = ScriptedTranscriber(["Something else entirely."])
    company = _company(
        corpus,
        {
            "nodes": {
                "main": {"kind": "menu", "prompt": ["silence:0.2"], "options": {"1": "billing"},
                         "speech_options": {"billing": "billing"}, "no_match_prompt": ["sit:reorder"],
                         "timeout_seconds": 4},
                "billing": {"kind": "hold", "music": "moh:reno_project-system", "seconds": 5, "next": "agent"},
                "agent": {"kind": "agent", "greeting": ["speech:kristoff.raw"]},
            }
        },
        transcriber,
    )  # fmt: skip
    for frame in [*_voice(0.5), *[None] * CallerSpeech.END_QUIET]:
        _tick(company, frame)
    assert company.log.heard == [("main", "Something else entirely.")]
    message = np.concatenate([_tick(company) for _ in range(10)])
    assert tone_energy(message, REORDER) > 0.9  # the no-match message, not the menu
    company.receive_dtmf("1")
    _tick(company)
    assert company.log.path == ["main", "billing"]


def test_collect_counts_silence_as_an_attempt_and_ends_at_max_digits(corpus):
    scenario = {
        "nodes": {
            "zip": {"kind": "collect", "prompt": ["silence:0.2"], "max_digits": 5, "terminator": None,
                    "expect": ["94107"], "attempts": 2, "timeout_seconds": 0.4, "next": "done", "on_fail": "gave_up"},
            "done": {"kind": "announcement", "audio": ["silence:1"]},
            "gave_up": {"kind": "announcement", "audio": ["silence:1"]},
        }
    }  # fmt: skip
    silent = _company(corpus, scenario)
    frames = 0
    while not silent.log.reached("gave_up"):
        _tick(silent)
        frames += 1
        assert frames < 500
    assert silent.log.path == ["zip", "gave_up"] and silent.log.entered == {}
    assert frames == 2 * (10 + 20) + 1  # two prompts, each followed by 0.4 s of waiting

    typed = _company(corpus, scenario)
    _tick(typed)
    for key in "94107":
        typed.receive_dtmf(key)
    _tick(typed)
    assert typed.log.path == ["zip", "done"] and typed.log.entered == {"zip": "94107"}


def test_collect_pause_ends_a_partial_entry_and_the_confirmation_reads_it_back(corpus):
    company = _company(
        corpus,
        {
            "nodes": {
                "member": {"kind": "collect", "prompt": ["silence:0.2"], "max_digits": 10, "timeout_seconds": 0.4,
                           "next": "confirm"},
                "confirm": {"kind": "menu", "prompt": ["prompt:you-entered", "entered:member"],
                            "options": {"1": "member"}},
            }
        },
    )  # fmt: skip
    _tick(company)
    for key in "42":
        company.receive_dtmf(key)
    quiet = 0
    while (first := _tick(company)) is None:  # no "#": 0.4 s without a key ends the entry
        quiet += 1
        assert quiet < 100
    assert quiet == 20
    assert company.log.path == ["member", "confirm"] and company.log.entered == {"member": "42"}
    expected = AudioLibrary(corpus).sequence(["prompt:you-entered", "prompt:digits/4", "prompt:digits/2"])
    played = np.concatenate([first, *[_tick(company) for _ in range(len(expected) // FRAME_SAMPLES - 1)]])
    assert np.array_equal(played, expected[: len(played)])
