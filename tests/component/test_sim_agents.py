"""People on the simulated PBX's lines: agents who greet and wait, answer when spoken to, say
"Hello?" into a silent line and hang up when nobody answers; line echo, gated and call-centre
lines, pickups over the music; holds with random announcements and playlists.

The behaviour on the wire is tested over real sockets (ARI over HTTP/WebSocket, RTP over UDP,
an RTP peer that speaks or stays silent); exact sample-level properties (echo delay, fades,
seeded schedules) are tested on the company's frame generator directly.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.media.g711 import ulaw_decode
from app.sim import ScenarioError, SimConfig, SimulatedPBX, UserPhoneConfig
from app.sim.audio import FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE, AudioLibrary, OtherVoice, is_voice
from app.audio.features import frame_features
from app.audio.fingerprint import RecordingMemory, landmarks
from app.sim.company import CompanyCall
from app.sim.farend import CompanyCallLog, UserCallLog
from app.sim.phone import UserPhone
from app.sim.populations import generate_population
from app.sim.scenario import AgentNode, HoldNode, Scenario, load_scenario
from tests.sim_helpers import AriClient, EventSocket, call_company, hang_up, is_event, rms_dbfs

pytestmark = pytest.mark.corpus

needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="the Debian package flite is not installed")

IMPATIENT = "5552001"
REACTIVE = "5552002"
ECHO = "5552003"
GATED = "5552004"
NOISY = "5552005"


def _agent_company(number: str, agent: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": f"Agent {number}",
        "number": number,
        "ring_seconds": 0,
        "answer_pause_seconds": 0,
        "nodes": {"agent": {"kind": "agent", **agent}},
    }


SCENARIOS = [
    _agent_company(
        IMPATIENT,
        {
            "greeting": ["prompt:hello"],
            "hello": ["prompt:hello"],  # real speech: the test needs no synthesiser
            "hello_after_seconds": 4,
            "hangup_if_unanswered_seconds": 10,
        },
    ),
    _agent_company(
        REACTIVE,
        {
            "greeting": ["prompt:hello"],
            "answers": [["prompt:hello-world"], ["prompt:one-moment-please"]],
            "answer_delay_seconds": [0.3, 0.6],
            "hangup_if_unanswered_seconds": 15,
        },
    ),
    _agent_company(
        ECHO,
        {"greeting": ["prompt:hello"], "line": "gated", "echo": {"attenuation_db": 20, "delay_ms": 60}},
    ),
    _agent_company(GATED, {"greeting": ["speech:kristoff.raw"], "line": "gated"}),
    _agent_company(NOISY, {"greeting": ["speech:kristoff.raw"]}),
]


@pytest.fixture
async def pbx() -> AsyncIterator[SimulatedPBX]:
    config = SimConfig(
        scenarios={s["number"]: Scenario.model_validate(s) for s in SCENARIOS},
        user_phones={"PJSIP/userphone": UserPhoneConfig(answer_after=0.3)},
        seed=11,
    )
    pbx = SimulatedPBX(config)
    await pbx.start()
    yield pbx
    await pbx.stop()


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


def voice_tone(seconds: float, dbfs: float = -18.0, freq: float = 310.0) -> np.ndarray:
    """A steady voiced sound (what the company's endpointer takes for speech), without pauses."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return np.round(np.sin(2 * np.pi * freq * t) * 32768 * 10 ** (dbfs / 20) * np.sqrt(2)).astype(np.int16)


def voice_onsets(peer, since: float) -> list[float]:
    """Arrival times of the packets that start a stretch of voice (after >= 0.3 s without)."""
    onsets, quiet = [], 99
    for received in peer.received:
        if received.arrival < since:
            continue
        loud = is_voice(ulaw_decode(received.packet.payload))
        if loud and quiet >= 15:
            onsets.append(received.arrival)
        quiet = 0 if loud else quiet + 1
    return onsets


# ------------------------------------------------------------------ over real sockets


@pytest.mark.timeout(30)
async def test_nobody_answers_the_agent_says_hello_then_hangs_up(pbx, client, events):
    call = await call_company(client, events, f"PJSIP/{IMPATIENT}@trunk", "lost")
    answer = await events.wait_for(is_event("Dial", call.company, dialstatus="ANSWER"))
    destroyed = await events.wait_for(is_event("ChannelDestroyed", call.company), timeout=16)
    assert destroyed["cause"] == 16
    log = company_log(pbx, call.company)
    greeting, *hellos = log.utterances
    assert greeting.what == "greeting" and [u.what for u in hellos] == ["hello", "hello"]
    greeted_until = greeting.started_at + greeting.seconds
    # "Hello?" after ~4 s of silence, once more ~4 s later, then the hang-up ~10 s after the greeting
    # (the simulator's timers may run a few tenths late on a machine busy with other tests)
    assert hellos[0].started_at - greeted_until == pytest.approx(4.0, abs=0.5)
    assert hellos[1].started_at - greeted_until == pytest.approx(8.0, abs=0.5)
    hung_up = events.arrival(destroyed) - greeted_until
    assert 9.8 <= hung_up <= 10.6, hung_up
    assert log.lost_person and log.heard_caller_at is None and log.caller_turns == 0
    assert log.agent_hung_up_at is not None
    # the first word is logged when the greeting's voice starts, and is heard then on the RTP
    assert log.agent_first_word_at is not None and 0 <= log.agent_first_word_at - greeting.started_at < 0.3
    onsets = voice_onsets(call.peer, events.arrival(answer))
    assert len(onsets) == 3, onsets  # greeting, hello, hello: nothing else was said
    assert onsets[0] - log.agent_first_word_at == pytest.approx(0.0, abs=0.1)
    await hang_up(client, call)


@pytest.mark.timeout(30)
async def test_spoken_to_the_agent_answers_within_a_second_and_a_half(pbx, client, events):
    call = await call_company(client, events, f"PJSIP/{REACTIVE}@trunk", "talk")
    await events.wait_for(is_event("Dial", call.company, dialstatus="ANSWER"))
    log = company_log(pbx, call.company)
    await asyncio.sleep(1.5)  # "hello" (0.8 s), then the open line
    assert [u.what for u in log.utterances] == ["greeting"]

    await call.peer.send_audio(voice_tone(1.2), call.rtp_to)  # the caller speaks, then pauses
    stopped = time.monotonic()
    await asyncio.sleep(2.5)
    answers = [u for u in log.utterances if u.what == "answer"]
    assert len(answers) == 1
    latency = answers[0].started_at - stopped
    # endpointing (0.7 s of quiet) plus a human pause (0.3-0.6 s here)
    assert 0.9 <= latency <= 1.5, latency
    onsets = voice_onsets(call.peer, stopped)
    assert onsets and onsets[0] - stopped <= 1.6, onsets
    assert log.heard_caller_at is not None and log.heard_caller_at < stopped
    assert log.caller_turns == 1

    await call.peer.send_audio(voice_tone(0.8), call.rtp_to)  # a second turn: the second answer
    await asyncio.sleep(2.0)
    assert [u.what for u in log.utterances] == ["greeting", "answer", "answer"]
    assert not log.lost_person
    await hang_up(client, call)


@pytest.mark.timeout(20)
async def test_a_short_noise_is_no_turn_and_gets_no_answer(pbx, client, events):
    call = await call_company(client, events, f"PJSIP/{REACTIVE}@trunk", "click")
    await events.wait_for(is_event("Dial", call.company, dialstatus="ANSWER"))
    log = company_log(pbx, call.company)
    await asyncio.sleep(1.5)
    await call.peer.send_audio(voice_tone(0.16), call.rtp_to)  # a cough: under the 0.3 s of voice
    await asyncio.sleep(2.0)
    assert [u.what for u in log.utterances] == ["greeting"] and log.caller_turns == 0
    await hang_up(client, call)


@pytest.mark.timeout(20)
async def test_the_line_echoes_the_caller_delayed_and_attenuated(pbx, client, events):
    call = await call_company(client, events, f"PJSIP/{ECHO}@trunk", "echo")
    await events.wait_for(is_event("Dial", call.company, dialstatus="ANSWER"))
    await asyncio.sleep(1.5)  # after the greeting the gated line is digital silence
    burst = voice_tone(0.6, dbfs=-10.0, freq=1000.0)
    sent_at = time.monotonic()
    await call.peer.send_audio(burst, call.rtp_to)
    await asyncio.sleep(0.5)
    back = [(r.arrival, ulaw_decode(r.packet.payload)) for r in call.peer.received if r.arrival >= sent_at - 0.1]
    pcm = np.concatenate([frame for _, frame in back])
    loud = np.flatnonzero(np.abs(pcm) > 300)
    assert len(loud), "nothing came back"
    # level: 20 dB under what was sent (G.711 costs a fraction of a dB), frame by frame: a frame our
    # sender paced late on a busy machine leaves a gap in the burst, not a quieter echo
    echoed = pcm[loud[0] + FRAME_SAMPLES : loud[0] + 4000]
    levels = [rms_dbfs(f) for f in echoed[: len(echoed) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)]
    assert np.median([level for level in levels if level > -50.0]) == pytest.approx(-30.0, abs=1.5)
    # delay: the first echoed sample arrives at least the configured 60 ms after it was sent,
    # and not much later (the RTP path adds one or two 20 ms frames)
    packet = loud[0] // FRAME_SAMPLES
    arrival = back[packet][0] + (loud[0] % FRAME_SAMPLES) / SAMPLE_RATE  # (a packet's samples play in turn)
    lag = arrival - sent_at
    assert 0.055 <= lag <= 0.16, lag
    assert company_log(pbx, call.company).heard_caller_at > sent_at  # the person heard the caller
    await hang_up(client, call)


@pytest.mark.timeout(20)
async def test_a_gated_line_is_digital_silence_between_words(pbx, client, events):
    gated = await call_company(client, events, f"PJSIP/{GATED}@trunk", "gated")
    noisy = await call_company(client, events, f"PJSIP/{NOISY}@trunk", "noisy")
    await events.wait_for(is_event("Dial", gated.company, dialstatus="ANSWER"))
    await events.wait_for(is_event("Dial", noisy.company, dialstatus="ANSWER"))
    await asyncio.sleep(6.5)  # the 5 s greeting and some open line after it
    for call, want_zero in ((gated, True), (noisy, False)):
        pcm = call.peer.audio()
        frames = pcm[: len(pcm) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
        speaking = np.flatnonzero([is_voice(f) for f in frames])
        assert len(speaking) > 50
        within = frames[speaking[0] : speaking[-1] + 1]  # from the first word to the last
        zero = np.all(within == 0, axis=1)
        after = frames[speaking[-1] + 30 :]  # the line after the greeting
        if want_zero:
            assert zero.sum() >= 10, "no digital silence between words"
            assert np.all(frames[~np.array([is_voice(f) for f in frames])] == 0) or zero.sum() > 0
            assert len(after) > 20 and not after.any()
        else:
            assert zero.sum() == 0 and -75 < rms_dbfs(after.ravel()) < -50
    await hang_up(client, gated)
    await hang_up(client, noisy)


# ------------------------------------------------------------------ the company's frames, exactly


def _agent_call(corpus, agent: dict[str, Any], seed: int = 1, before: dict[str, Any] | None = None):
    nodes: dict[str, Any] = {}
    if before is not None:
        nodes["queue"] = before
    nodes["agent"] = {"kind": "agent", **agent}
    scenario = Scenario.model_validate(
        {"name": "Unit", "number": "1", "ring_seconds": 0, "answer_pause_seconds": 0, "nodes": nodes}
    )
    log = CompanyCallLog(channel_id="c", number="1", scenario="Unit")
    call = CompanyCall(scenario, AudioLibrary(corpus), log, np.random.default_rng(seed), transcriber=None)
    call.answered()
    return call, log


@needs_flite
def test_a_person_asks_again_in_other_words_never_a_replay_of_their_first_hello(corpus):
    # A person's second "Hello?" is never the first one's waveform; a recording's replay is, and
    # the detector's fingerprints rightly take a replay for a recording (an e2e person who said the
    # same "Hello?" three times was retracted as "a recording heard before on this line").
    call, _ = _agent_call(corpus, {"greeting": ["silence:0.1"], "hello_after_seconds": 2.5, "hellos": 3})
    frames = []
    for _ in range(int(10.0 / FRAME_SECONDS)):  # three hellos, 2.5 s apart
        frame = call.next_frame()
        call.hear(None)
        frames.append(np.zeros(FRAME_SAMPLES, np.int16) if frame is None else frame)
    voiced = np.array([is_voice(f) for f in frames])
    # Utterances: voiced frames, with pauses inside shorter than half a second.
    spoken, start, quiet = [], None, 0
    for index, v in enumerate([*voiced, *([False] * 30)]):
        if v:
            start, quiet = (index if start is None else start), 0
        elif start is not None:
            quiet += 1
            if quiet >= 25:
                spoken.append(np.concatenate(frames[start : index - quiet + 1]))
                start, quiet = None, 0
    assert len(spoken) == 3
    marks = lambda pcm: landmarks(frame_features(pcm, SAMPLE_RATE).spectrum, SAMPLE_RATE)  # noqa: E731
    memory = RecordingMemory(min_votes=30, min_share=0.08, min_prominence=3.0)  # the detector's
    assert memory.remember(marks(spoken[0]))
    assert memory.matches(marks(spoken[0])) is not None  # the same audio again would be a replay
    for again in spoken[1:]:
        assert memory.matches(marks(again)) is None


def test_echo_is_the_heard_audio_exactly_delayed_and_attenuated(corpus):
    call, _ = _agent_call(
        corpus,
        {"greeting": ["silence:0.1"], "line": "gated", "echo": {"attenuation_db": 20, "delay_ms": 45}},
    )
    rng = np.random.default_rng(0)
    heard = (rng.normal(0, 3000, FRAME_SAMPLES * 50)).astype(np.int16)
    sent = []
    for index in range(50):  # one tick: the company sends, then hears
        frame = call.next_frame()
        sent.append(np.zeros(FRAME_SAMPLES, np.int16) if frame is None else frame)
        call.hear(heard[index * FRAME_SAMPLES : (index + 1) * FRAME_SAMPLES])
    out = np.concatenate(sent).astype(np.float64)
    delay = int(0.045 * SAMPLE_RATE)
    # heard sample n goes back out as sent sample n + delay (the tick order allows any delay >= 20 ms)
    lag = np.argmax(np.correlate(out[: 40 * FRAME_SAMPLES], heard[: 30 * FRAME_SAMPLES].astype(np.float64), "valid"))
    assert lag == delay, lag
    segment = out[lag + 1000 : lag + 4000]
    assert np.allclose(segment, np.round(heard[1000:4000] * 0.1), atol=1)


def test_the_music_fades_out_under_the_greeting_and_the_first_word_is_the_persons(corpus):
    hold = {"kind": "hold", "music": "moh:macroform-cold_day", "seconds": 1.0, "next": "agent"}
    call, log = _agent_call(
        corpus, {"greeting": ["speech:kristoff.raw"], "pickup": "over_music", "music_fade_seconds": 1.0}, before=hold
    )
    frames = [call.next_frame() for _ in range(50 + 150)]
    library = AudioLibrary(corpus)
    music = library.clip("moh:macroform-cold_day")
    speech = library.clip("speech:kristoff.raw")
    agent = np.concatenate(frames[50:]).astype(np.float64)
    # what is left after taking the greeting out is the music, fading from full level to nothing
    rest = agent - speech[: len(agent)]
    start = rest[: 8 * FRAME_SAMPLES]
    assert np.allclose(start, music[50 * FRAME_SAMPLES : 58 * FRAME_SAMPLES], atol=int(0.15 * 32768 * 0.5))
    assert rms_dbfs(rest[60 * FRAME_SAMPLES : 100 * FRAME_SAMPLES]) < -60  # gone after the 1 s fade
    assert rms_dbfs(rest[: 10 * FRAME_SAMPLES]) > -40  # there at the start
    first_voice = next(i for i in range(0, len(speech), FRAME_SAMPLES) if is_voice(speech[i : i + FRAME_SAMPLES]))
    assert log.agent_first_word_stream_seconds == pytest.approx(1.0 + first_voice / SAMPLE_RATE, abs=0.021)


def test_a_click_and_a_gap_before_the_greeting_and_an_announcement_before_that(corpus):
    call, log = _agent_call(
        corpus,
        {
            "greeting": ["speech:kristoff.raw"],
            "announcement": ["prompt:pls-hold-while-try"],
            "pickup": "click",
            "pickup_gap_seconds": 1.0,
        },
    )
    frames = [call.next_frame() for _ in range(400)]
    announcement = AudioLibrary(corpus).clip("prompt:pls-hold-while-try")
    n = int(np.ceil(len(announcement) / FRAME_SAMPLES))
    click = frames[n]
    assert np.abs(click).max() > 10000  # the click
    gap = np.concatenate(frames[n + 1 : n + 50])
    assert rms_dbfs(gap) < -55  # the open line, no voice
    assert log.utterances[0].what == "greeting"
    assert log.utterances[0].stream_seconds == pytest.approx((n + 51) * FRAME_SECONDS, abs=0.021)
    assert log.agent_first_word_stream_seconds >= log.utterances[0].stream_seconds


def test_a_call_centre_line_has_voices_behind_at_the_set_level(corpus):
    call, _ = _agent_call(
        corpus,
        {"greeting": ["silence:0.2"], "line": "call_centre", "background": ["speech:cq_ref.raw"], "background_dbfs": -38},
    )
    room = AudioLibrary(corpus).clip("speech:cq_ref.raw")
    frames = [call.next_frame() for _ in range(10 + len(room) // FRAME_SAMPLES)]
    pcm = np.concatenate(frames[10:])  # one whole loop of the room, from the end of the greeting
    assert rms_dbfs(pcm) == pytest.approx(-38, abs=1)
    assert sum(is_voice(f) for f in frames) > 100  # loud enough to sound like people talking


def _hold_audio(corpus, hold: dict[str, Any], seconds: float, seed: int = 5):
    call, log = _agent_call(corpus, {"greeting": ["prompt:hello"]}, seed=seed, before={"kind": "hold", **hold})
    frames = [call.next_frame() for _ in range(int(seconds / FRAME_SECONDS))]
    return np.concatenate([np.zeros(FRAME_SAMPLES, np.int16) if f is None else f for f in frames]), call


RANDOM_HOLD = {
    "music": "moh:manolo_camp-morning_coffee",
    "seconds": 60,
    "next": "agent",
    "random_announcements": {
        "choices": [["prompt:queue-thankyou"], ["prompt:queue-callswaiting"], ["prompt:queue-periodic-announce"]],
        "first_after_seconds": [2, 10],
        "gap_seconds": [3, 12],
        "seed": 42,
    },
}


def test_random_announcements_are_the_same_for_a_seed_and_differ_for_another(corpus):
    first, call_a = _hold_audio(corpus, RANDOM_HOLD, 59.9, seed=1)
    again, call_b = _hold_audio(corpus, RANDOM_HOLD, 59.9, seed=2)  # another call (other line noise)
    assert np.array_equal(first, again)
    schedule = call_a._run.random_log
    assert schedule == call_b._run.random_log and len(schedule) >= 4
    assert 2 <= schedule[0][0] <= 10
    assert len({choice for _, choice in schedule}) >= 2  # several voices / texts
    other = {**RANDOM_HOLD, "random_announcements": {**RANDOM_HOLD["random_announcements"], "seed": 43}}
    _, call_c = _hold_audio(corpus, other, 59.9)
    assert call_c._run.random_log != schedule


def test_announcements_over_a_music_bed_keep_the_music_under_them(corpus):
    hold = {
        "music": "moh:manolo_camp-morning_coffee",
        "seconds": 10,
        "next": "agent",
        "over_music": True,
        "music_bed_db": -12,
        "announcements": [{"at_seconds": 1.0, "audio": ["prompt:queue-thankyou"]}],
    }
    pcm, _ = _hold_audio(corpus, hold, 3.0)
    library = AudioLibrary(corpus)
    music, said = library.clip("moh:manolo_camp-morning_coffee"), library.clip("prompt:queue-thankyou")
    start = int(1.0 * SAMPLE_RATE)
    under = pcm[start : start + len(said)].astype(np.float64) - said
    bed = music[start : start + len(said)] * 10 ** (-12 / 20)
    assert np.allclose(under, bed, atol=2)


def test_a_playlist_has_silence_between_tracks(corpus):
    library = AudioLibrary(corpus)
    first = library.clip("prompt:queue-thankyou")  # short "tracks" keep the test short
    hold = {"music": ["prompt:queue-thankyou", "prompt:hello"], "track_gap_seconds": 0.6, "seconds": 8, "next": "agent"}
    pcm, _ = _hold_audio(corpus, hold, 4.0)
    assert np.array_equal(pcm[: len(first)], first)
    gap = pcm[len(first) + FRAME_SAMPLES : len(first) + int(0.55 * SAMPLE_RATE)]
    assert len(gap) > 3000 and not gap.any()
    padded = int(np.ceil(len(first) / FRAME_SAMPLES)) * FRAME_SAMPLES  # clips end on a frame
    second = library.clip("prompt:hello")
    at = padded + int(0.6 * SAMPLE_RATE)
    assert np.array_equal(pcm[at : at + len(second)], second)


@needs_flite
def test_other_voices_render_once_and_are_not_the_apps_voice(tmp_path, corpus):
    voice = OtherVoice(tmp_path)
    pcm = voice.load("flite:slt", "Hello?")
    again = OtherVoice(tmp_path).load("flite:slt", "Hello?")
    assert voice.renders == 1 and np.array_equal(pcm, again)
    assert rms_dbfs(pcm) == pytest.approx(-20, abs=1)
    other = voice.load("flite:kal", "Hello?")
    assert len(other) != len(pcm) or not np.array_equal(other, pcm)
    library = AudioLibrary(corpus)
    assert library.voice.path("Hello?") != voice.path("flite:slt", "Hello?")


def _spoken_at(phone: UserPhone, heard: dict[int, np.ndarray], frames: int) -> list[float]:
    """Seconds (since answering) at which the user's phone started saying its words."""
    starts, speaking = [], False
    for n in range(frames):
        phone.hear(heard.get(n))
        frame = phone.next_frame()
        if frame is not None and not speaking:
            starts.append(round(n * FRAME_SECONDS, 2))
        speaking = frame is not None
    return starts


def test_a_user_on_a_silent_line_says_hello_again_and_answers_each_turn(corpus):
    library = AudioLibrary(corpus)
    words = len(library.clip("speech:kristoff.raw")) / SAMPLE_RATE
    config = UserPhoneConfig(answer_after=0, speech="speech:kristoff.raw", answers_prompt=True, hello_after_quiet=3.0)
    phone = UserPhone(config, library, UserCallLog(channel_id="u", endpoint="PJSIP/u"))
    phone.answered()
    starts = _spoken_at(phone, {}, int((6 + 2 * words + 0.5) / FRAME_SECONDS))
    # Nothing heard: "Hello?" after 3 s of quiet, and again 3 s after the words end.
    assert starts == pytest.approx([3.0, 6.0 + words], abs=0.05)

    phone = UserPhone(config, library, UserCallLog(channel_id="u", endpoint="PJSIP/u"))
    phone.answered()
    loud = np.full(FRAME_SAMPLES, 3000, np.int16)
    turn_end = int(1.0 / FRAME_SECONDS) + 25  # a question heard from 1.0 s to 1.5 s
    heard = {n: loud for n in range(int(1.0 / FRAME_SECONDS), turn_end)}
    starts = _spoken_at(phone, heard, int(2.5 / FRAME_SECONDS))
    assert starts == pytest.approx([turn_end * FRAME_SECONDS + 0.7], abs=0.05), "answers 0.7 s after the question"

    once = UserPhone(UserPhoneConfig(speech="speech:kristoff.raw"), library, UserCallLog(channel_id="u", endpoint="PJSIP/u"))
    once.answered()
    assert _spoken_at(once, {}, int((words + 8) / FRAME_SECONDS)) == pytest.approx([0.5], abs=0.05), "speaks once"
    with pytest.raises(ValueError, match="needs speech"):
        UserPhoneConfig(hello_after_quiet=3.0)


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"hello_after_seconds": 12, "hangup_if_unanswered_seconds": 10}, "nodes.agent.agent", "hello_after_seconds"),
        ({"answer_delay_seconds": [1.5, 0.5]}, "nodes.agent.agent.answer_delay_seconds", "first number"),
        ({"echo": {"delay_ms": 10}}, "nodes.agent.agent.echo.delay_ms", "greater than or equal to 20"),
        ({"echo": {"attenuation_db": 1}}, "nodes.agent.agent.echo.attenuation_db", "greater than or equal"),
        ({"line": "loud"}, "nodes.agent.agent.line", "'gated'"),
        ({"pickup": "shout"}, "nodes.agent.agent.pickup", "over_music"),
        ({"hello": ["tts[joe:medium]:Hello?"]}, "nodes.agent.agent.hello.0", "unknown voice"),
        ({"hangup_if_unanswered_seconds": 0}, "nodes.agent.agent.hangup_if_unanswered_seconds", "greater than 0"),
        ({"answers": [[]]}, "nodes.agent.agent.answers.0", "at least 1"),
        ({"background_dbfs": -10, "line": "call_centre"}, "nodes.agent.agent.background_dbfs", "less than or equal"),
    ],
)
def test_bad_agent_fields_are_refused_with_the_field_named(tmp_path: Path, change, field, words):
    import yaml

    data = _agent_company("5559999", {"greeting": ["prompt:hello"], **change})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    message = str(error.value)
    assert f"{field}:" in message and words in message, message


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"random_announcements": {"choices": []}}, "nodes.queue.hold.random_announcements.choices", "at least 1"),
        (
            {"random_announcements": {"choices": [["prompt:hello"]], "gap_seconds": [10, 5]}},
            "nodes.queue.hold.random_announcements.gap_seconds",
            "first number",
        ),
        ({"track_gap_seconds": -1}, "nodes.queue.hold.track_gap_seconds", "greater than or equal"),
        ({"music": []}, "nodes.queue.hold.music", "at least 1"),
        ({"music_bed_db": 6}, "nodes.queue.hold.music_bed_db", "less than or equal"),
    ],
)
def test_bad_hold_fields_are_refused_with_the_field_named(tmp_path: Path, change, field, words):
    import yaml

    data = {
        "name": "Bad Hold",
        "number": "5559998",
        "nodes": {
            "queue": {"kind": "hold", "music": "moh:macroform-cold_day", "seconds": 5, "next": "agent", **change},
            "agent": {"kind": "agent", "greeting": ["prompt:hello"]},
        },
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    message = str(error.value)
    assert field in message and words in message, message


def test_existing_agents_and_holds_keep_their_defaults():
    agent = AgentNode.model_validate({"kind": "agent", "greeting": ["prompt:hello"]})
    assert agent.line == "noise" and agent.echo is None and agent.answers == [] and agent.pickup == "immediate"
    assert agent.hello_after_seconds is None and agent.hangup_if_unanswered_seconds is None
    assert agent.clips() == ["prompt:hello"]
    hold = HoldNode.model_validate({"kind": "hold", "music": "moh:x", "seconds": 5, "next": "a"})
    assert hold.playlist == ["moh:x"] and not hold.over_music and hold.random_announcements is None


# ------------------------------------------------------------------ populations


def test_a_population_is_seeded_varied_and_valid():
    one = generate_population(40, seed=3)
    again = generate_population(40, seed=3)
    assert [s.model_dump() for s in one] == [s.model_dump() for s in again]
    other = generate_population(40, seed=4)
    assert [s.model_dump() for s in one] != [s.model_dump() for s in other]
    assert len({s.number for s in one}) == 40
    holds = [next(n for n in s.nodes.values() if isinstance(n, HoldNode)) for s in one]
    agents = [next(n for n in s.nodes.values() if isinstance(n, AgentNode)) for s in one]
    assert all(20 <= h.seconds <= 90 for h in holds)
    assert {a.line for a in agents} == {"noise", "gated", "call_centre"}
    assert {a.pickup for a in agents} == {"immediate", "over_music", "click"}
    assert any(a.echo for a in agents) and any(not a.echo for a in agents)
    passive = [a for a in agents if not a.answers]
    assert passive and len(passive) < len(agents)
    assert all(a.hangup_if_unanswered_seconds for a in agents)
    assert any(h.random_announcements for h in holds) and any(len(h.playlist) > 1 for h in holds)
    for scenario in one:  # every reference is well-formed and no agent speaks with the app's voice
        for node in scenario.nodes.values():
            if isinstance(node, AgentNode):
                assert not any(ref.startswith("tts:") for ref in node.clips())
