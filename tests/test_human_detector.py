"""The human detector's cues, each on its own, and the fingerprint of recordings (through mu-law)."""

from __future__ import annotations

import numpy as np
import pytest

from app.audio.features import band_flatness, frame_features
from app.audio.fingerprint import RecordingMemory, landmarks
from app.audio.human import HumanDetector, HumanSettings, ProbeRequest
from app.audio.types import AudioClass
from app.corpus import load_audio
from app.media.g711 import ulaw_decode, ulaw_encode

RATE = 8000


def telephone(samples: np.ndarray) -> np.ndarray:
    return ulaw_decode(ulaw_encode(np.clip(np.round(samples), -32768, 32767).astype(np.int16)))


def at_dbov(samples: np.ndarray, dbov: float) -> np.ndarray:
    rms = np.sqrt(np.mean(np.asarray(samples, dtype=np.float64) ** 2))
    return samples / rms * 32768.0 * 10 ** (dbov / 20)


def feed(detector: HumanDetector, pcm: np.ndarray, probs: np.ndarray, t0: float = 0.0):
    """Frames of ``pcm`` with a given speech probability per frame; returns the decisions."""
    features = frame_features(pcm)
    flatness = band_flatness(features.spectrum)
    decisions = []
    for i in range(len(features)):
        decision = detector.push_frame(
            t0 + i * 0.02, float(features.level_db[i]), float(flatness[i]), float(probs[i]),
            features.spectrum[i], float(features.zcr[i]),
        )
        if decision is not None:
            decisions.append(decision)
    return decisions


def voiced(seconds: float, rng: np.random.Generator, dbov: float = -22.0) -> np.ndarray:
    """A speech-like signal: a gliding harmonic voice in syllables of 200 ms."""
    t = np.arange(int(seconds * RATE)) / RATE
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t)
    return at_dbov(voice * envelope + 0.01 * rng.normal(size=len(t)), dbov)


def noise(seconds: float, dbov: float, rng: np.random.Generator) -> np.ndarray:
    return at_dbov(rng.normal(size=int(seconds * RATE)), dbov)


def music(seconds: float, dbov: float = -22.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    chord = sum(np.sin(2 * np.pi * f * t) for f in (262.0, 330.0, 392.0, 523.0))
    return at_dbov(chord, dbov)


def frames_of(seconds: float) -> int:
    return int(round(seconds / 0.02))


def test_person_on_an_open_line_after_music_is_found_within_a_second():
    rng = np.random.default_rng(1)
    floor = -56.0
    lead = noise(0.4, floor, rng)
    words = voiced(2.0, rng) + noise(2.0, floor, rng)
    pcm = telephone(np.concatenate([music(5.0), lead, words]))
    probs = np.concatenate([np.zeros(frames_of(5.4)), np.ones(frames_of(2.0))])
    detector = HumanDetector()
    decisions = feed(detector, pcm, probs)
    assert len(decisions) == 1
    decision = decisions[0]
    assert decision.evidence["rule"] == "live_floor"
    assert 5.4 < decision.t <= 5.4 + 1.0
    assert decision.evidence["live_floor"]["floor_dbov"] == pytest.approx(floor, abs=2.0)


def test_announcement_on_the_hold_channel_is_not_a_person():
    """The same words, but the lead-in is the PBX's faint floor: no channel change."""
    rng = np.random.default_rng(2)
    hold_floor = -70.0
    pcm = telephone(np.concatenate([music(5.0) + noise(5.0, hold_floor, rng), noise(0.4, hold_floor, rng), voiced(2.0, rng) + noise(2.0, hold_floor, rng), music(3.0)]))
    probs = np.concatenate([np.zeros(frames_of(5.4)), np.ones(frames_of(2.0)), np.zeros(frames_of(3.0))])
    detector = HumanDetector()
    assert feed(detector, pcm, probs) == []
    assert detector.announcements == 1  # music came back: the run was an announcement


def test_noise_suppressed_line_is_found_by_its_gate_closing_to_digital_silence():
    rng = np.random.default_rng(3)
    words = voiced(2.0, rng)
    # A gate: every 20 ms frame under -40 dBov becomes exact zero, here in two pauses.
    words[int(0.6 * RATE) : int(0.8 * RATE)] = 0.0
    words[int(1.2 * RATE) : int(1.4 * RATE)] = 0.0
    pcm = telephone(np.concatenate([music(5.0), np.zeros(int(0.3 * RATE)), words]))
    probs = np.concatenate([np.zeros(frames_of(5.3)), np.ones(frames_of(2.0))])
    decisions = feed(HumanDetector(), pcm, probs)
    assert [d.evidence["rule"] for d in decisions] == ["gated_line"]
    assert decisions[0].t <= 5.3 + 1.0


def test_a_short_utterance_then_a_pause_and_more_words_is_a_turn():
    rng = np.random.default_rng(4)
    # A faint PBX-like floor (no channel change, no gate): only the turn tells.
    pcm = telephone(np.concatenate([music(5.0), noise(0.3, -75.0, rng), voiced(1.5, rng), noise(1.0, -75.0, rng), voiced(1.0, rng)]))
    probs = np.concatenate([np.zeros(frames_of(5.3)), np.ones(frames_of(1.5)), np.zeros(frames_of(1.0)), np.ones(frames_of(1.0))])
    decisions = feed(HumanDetector(), pcm, probs)
    assert [d.evidence["rule"] for d in decisions] == ["turn_taking"]
    assert decisions[0].t >= 5.3 + 2.5


def test_recording_phrases_in_the_transcript_veto_and_human_phrases_decide():
    rng = np.random.default_rng(5)
    speech = np.concatenate([music(5.0), np.zeros(int(0.3 * RATE)), voiced(3.0, rng)])
    probs = np.concatenate([np.zeros(frames_of(5.3)), np.ones(frames_of(3.0))])
    pcm = telephone(speech)
    half = frames_of(6.5) * 160

    quiet_detector = HumanDetector()
    assert feed(quiet_detector, pcm[:half], probs[: frames_of(6.5)]) == []
    quiet_detector.on_transcript("Your call is important to us. Please continue to hold.", 5.3, 6.5)
    assert quiet_detector.source_class() == AudioClass.IVR_PROMPT

    person_detector = HumanDetector()
    feed(person_detector, pcm[:half], probs[: frames_of(6.5)])
    person_detector.on_transcript("Hi, this is Dana, how can I help you?", 5.3, 6.5)
    decisions = feed(person_detector, pcm[half:], probs[frames_of(6.5) :], t0=6.5)
    assert [d.evidence["rule"] for d in decisions] == ["transcript"]


def test_the_probe_is_requested_once_and_a_reply_after_it_decides():
    rng = np.random.default_rng(6)
    requests: list[ProbeRequest] = []
    detector = HumanDetector(HumanSettings(turn_pause_seconds=5.0, waiting_seconds=30.0), probe=requests.append)
    pcm = telephone(np.concatenate([music(5.0), noise(0.3, -75.0, rng), voiced(1.0, rng), noise(2.0, -75.0, rng)]))
    probs = np.concatenate([np.zeros(frames_of(5.3)), np.ones(frames_of(1.0)), np.zeros(frames_of(2.0))])
    assert feed(detector, pcm, probs) == []
    assert len(requests) == 1 and requests[0].t >= 6.3 + 0.6
    detector.probe_played(7.0, 7.6)
    detector.settings = HumanSettings(turn_pause_seconds=0.8, waiting_seconds=30.0)
    reply = telephone(voiced(1.0, rng) + noise(1.0, -75.0, rng))
    decisions = feed(detector, reply, np.ones(frames_of(1.0)), t0=8.3)
    assert decisions and "probe_reply" in decisions[0].evidence["cues"]


# -- fingerprints -----------------------------------------------------------------------------


@pytest.mark.corpus
def test_fingerprint_matches_a_replayed_announcement_over_another_music_bed(corpus):
    names = ["queue-periodic-announce", "tt-allbusy", "queue-youarenext", "one-moment-please", "queue-callswaiting"]
    prompts = {n: load_audio(corpus.resolve(f"prompt:{n}")).astype(np.float64) for n in names}
    bed_a = load_audio(corpus.resolve("moh:macroform-cold_day")).astype(np.float64)
    bed_b = load_audio(corpus.resolve("moh:reno_project-system")).astype(np.float64)
    memory = RecordingMemory(min_votes=30, min_share=0.08, min_prominence=3.0)
    for name in names:
        prompt = prompts[name]
        first_play = prompt + at_dbov(bed_a[: len(prompt)], -40.0)
        memory.remember(landmarks(frame_features(telephone(first_play)).spectrum))
    for index, name in enumerate(names):
        prompt = prompts[name][: int(1.5 * RATE)]
        bed = at_dbov(bed_b[40000 : 40000 + len(prompt)], -34.0)  # ~12 dB under the prompt
        replay = telephone(prompt + bed)[37:]  # another frame grid
        match = memory.matches(landmarks(frame_features(replay).spectrum))
        assert match is not None and match.recording == index, name


@pytest.mark.corpus
def test_fingerprint_does_not_match_people_or_other_prompts(corpus):
    known = ["queue-periodic-announce", "tt-allbusy", "queue-youarenext"]
    memory = RecordingMemory(min_votes=30, min_share=0.08, min_prominence=3.0)
    for name in known:
        memory.remember(landmarks(frame_features(telephone(load_audio(corpus.resolve(f"prompt:{name}")))).spectrum))
    others = [f"prompt:{n}" for n in ("one-moment-please", "queue-callswaiting", "all-circuits-busy-now", "queue-thankyou")]
    others += ["speech:kristoff.raw", "speech:vk5qi.wav", "speech:cq_ref.raw"]
    for ref in others:
        pcm = telephone(load_audio(corpus.resolve(ref)))
        for start in range(0, min(len(pcm), 5 * RATE) - int(1.5 * RATE) + 1, int(1.5 * RATE)):
            piece = pcm[start : start + int(1.5 * RATE)]
            assert memory.matches(landmarks(frame_features(piece).spectrum)) is None, ref


# -- segmentation and the quiet after speech ---------------------------------------------------


def fade_out(samples: np.ndarray, seconds: float) -> np.ndarray:
    count = int(seconds * RATE)
    out = samples.copy()
    out[-count:] *= np.linspace(1.0, 0.0, count) ** 3
    return out


def test_a_person_right_after_a_vetoed_announcement_is_judged_on_their_own_line():
    """The announcement's run is vetoed (a recording phrase); the person who speaks after a short
    pause on their own noisy floor starts a run of their own, although Silero calls their first
    loud frames late."""
    rng = np.random.default_rng(7)
    announcement = fade_out(voiced(2.0, rng), 0.2)
    floor = noise(0.5, -52.0, rng)
    person = voiced(2.0, rng) + noise(2.0, -52.0, rng)
    pcm = telephone(np.concatenate([music(5.0), np.zeros(int(0.3 * RATE)), announcement, floor, person]))
    person_onset = 5.3 + 2.0 + 0.5
    probs = np.concatenate(
        [np.zeros(frames_of(5.3)), np.ones(frames_of(2.0)), np.zeros(frames_of(0.5) + 3), np.ones(frames_of(2.0) - 3)]
    )
    detector = HumanDetector()
    half = frames_of(6.5)
    assert feed(detector, pcm[: half * 160], probs[:half]) == []
    detector.on_transcript("please continue to hold", 5.3, 6.5)
    decisions = feed(detector, pcm[half * 160 :], probs[half:], t0=6.5)
    assert [d.evidence["rule"] for d in decisions] == ["live_floor"]
    assert person_onset < decisions[0].t <= person_onset + 1.0


def test_digital_silence_after_a_fading_recording_is_not_a_person_waiting():
    rng = np.random.default_rng(8)
    pcm = telephone(np.concatenate([music(5.0), np.zeros(int(0.3 * RATE)), fade_out(voiced(2.0, rng), 0.3), np.zeros(3 * RATE)]))
    probs = np.concatenate([np.zeros(frames_of(5.3)), np.ones(frames_of(2.0)), np.zeros(frames_of(3.0))])
    assert feed(HumanDetector(), pcm, probs) == []


def test_a_gated_line_waiting_after_its_words_is_a_person():
    """The same words cut to digital silence by a gate (no fade): the line waits for an answer."""
    rng = np.random.default_rng(8)
    lead = noise(0.5, -75.0, rng)  # the PBX's faint floor: no channel change, no gated lead
    pcm = telephone(np.concatenate([music(5.0), lead, voiced(2.0, rng), np.zeros(3 * RATE)]))
    probs = np.concatenate([np.zeros(frames_of(5.5)), np.ones(frames_of(2.0)), np.zeros(frames_of(3.0))])
    decisions = feed(HumanDetector(), pcm, probs)
    assert [d.evidence["rule"] for d in decisions] == ["waiting_for_reply"]
    assert decisions[0].t <= 7.5 + 2.0


def test_a_gate_closing_inside_a_frame_is_still_a_closure():
    """The phone's suppressor has its own frame grid (here ~19 ms off ours) and closes as the
    voice has already faded to near its threshold: the frame it closes in is mostly zeros."""
    rng = np.random.default_rng(3)
    words = voiced(2.0, rng)
    for start in (0.6, 1.2):
        closing = int(start * RATE) + 150  # 10 samples of voice left in the frame it closes in
        words[closing - 400 : closing] = at_dbov(words[closing - 400 : closing], -47.0)
        words[closing - 10 : closing] = at_dbov(words[closing - 10 : closing], -62.0)
        words[closing : closing + int(0.2 * RATE)] = 0.0
    pcm = telephone(np.concatenate([music(5.0), np.zeros(int(0.3 * RATE)), words]))
    probs = np.concatenate([np.zeros(frames_of(5.3)), np.ones(frames_of(2.0))])
    decisions = feed(HumanDetector(), pcm, probs)
    assert [d.evidence["rule"] for d in decisions] == ["gated_line"]
    assert decisions[0].t <= 5.3 + 1.0
