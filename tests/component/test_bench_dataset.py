"""The labelled benchmark sessions: deterministic, split by voice and file, mu-law coded, exact onsets."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from app.audio.types import AudioClass
from app.media.wavfile import load_audio
from app.media.g711 import ulaw_decode
from bench.detection.dataset import (
    AFTER_ONSET_SECONDS,
    LABELS,
    RATE,
    SPLITS,
    frame_levels_dbov,
    render,
    session_specs,
    speech_islands,
)

pytestmark = pytest.mark.corpus

MU_LAW_VALUES = set(ulaw_decode(bytes(range(256))).tolist())


@pytest.fixture(scope="module")
def quick_sessions(corpus):
    return [render(spec, corpus) for spec in session_specs(0, quick=True)]


def _digest(session) -> str:
    return hashlib.sha256(session.pcm.tobytes()).hexdigest()


def test_the_same_seed_gives_the_same_audio_and_labels(corpus, quick_sessions):
    again = [render(spec, corpus) for spec in session_specs(0, quick=True)]
    assert [_digest(s) for s in again] == [_digest(s) for s in quick_sessions]
    assert [s.segments for s in again] == [s.segments for s in quick_sessions]
    assert [s.human_onset for s in again] == [s.human_onset for s in quick_sessions]


def test_another_seed_gives_other_audio(corpus, quick_sessions):
    other = [render(spec, corpus) for spec in session_specs(1, quick=True)]
    assert [s.id for s in other] == [s.id for s in quick_sessions]
    assert all(_digest(a) != _digest(b) for a, b in zip(other, quick_sessions))


def test_splits_share_no_voice_track_or_prompt_file():
    train, test = SPLITS["train"], SPLITS["test"]
    assert not {v.name for v in train.voices} & {v.name for v in test.voices}
    assert not train.files() & test.files()
    assert len(test.voices) >= 2 and len(test.tracks) >= 2 and len(test.announcements) >= 3
    assert test.intercept in {a.name for a in test.announcements}
    assert train.intercept in {a.name for a in train.announcements}


def test_sessions_use_only_their_own_split(quick_sessions):
    for session in quick_sessions:
        sources = SPLITS[session.split]
        refs = sources.files()
        names = {a.name for a in sources.announcements}
        for segment in session.segments:
            if segment.source.startswith(("speech:", "moh:")):
                assert segment.source in refs, (session.id, segment)
            if segment.label == AudioClass.IVR_PROMPT:
                assert segment.source in names, (session.id, segment)


def test_every_announcement_plays_in_some_pure_hold_of_its_split():
    specs = session_specs(0)
    for split, sources in SPLITS.items():
        required = {name for s in specs if s.split == split and s.kind == "pure_hold" for name in s.announcements}
        assert required == {a.name for a in sources.announcements}


def test_a_pure_hold_plays_its_required_announcements(quick_sessions):
    hold = next(s for s in quick_sessions if s.kind == "pure_hold")
    spec = next(s for s in session_specs(0, quick=True) if s.id == hold.id)
    played = {seg.source for seg in hold.segments if seg.label == AudioClass.IVR_PROMPT}
    assert set(spec.announcements) <= played
    assert hold.human_onset is None
    assert {seg.label for seg in hold.segments} <= {AudioClass.MUSIC, AudioClass.IVR_PROMPT, AudioClass.SILENCE}


def test_the_full_benchmark_is_big_enough_to_measure_the_targets():
    specs = session_specs(0)
    pure_hold_hours = sum(s.seconds for s in specs if s.kind == "pure_hold") / 3600
    assert pure_hold_hours >= 1.5
    for split in SPLITS:
        pickups = [s for s in specs if s.split == split and s.kind == "pickup"]
        assert len(pickups) >= 50  # one miss in 50 is the 2% target
        assert {s.voice for s in pickups} == {v.name for v in SPLITS[split].voices}
        assert {s.track for s in pickups} == set(SPLITS[split].tracks)


def test_everything_is_mu_law_coded(quick_sessions):
    for session in quick_sessions:
        assert session.pcm.dtype == np.int16
        assert set(np.unique(session.pcm).tolist()) <= MU_LAW_VALUES, session.id


def test_segments_tile_each_session_with_known_labels(quick_sessions):
    for session in quick_sessions:
        assert session.segments[0].t_start == 0.0
        for before, after in zip(session.segments, session.segments[1:]):
            assert after.t_start == pytest.approx(before.t_end)
        assert session.segments[-1].t_end == pytest.approx(session.duration, abs=1 / RATE)
        assert {s.label for s in session.segments} <= set(LABELS)


def test_a_pickup_is_hold_then_a_person_from_the_onset(quick_sessions):
    pickups = [s for s in quick_sessions if s.kind == "pickup"]
    assert len(pickups) == 6
    for session in pickups:
        onset = session.human_onset
        first_human = next(s for s in session.segments if s.label == AudioClass.LIVE_HUMAN)
        assert first_human.t_start == onset
        assert first_human.source.startswith("speech:")
        before = [s for s in session.segments if s.t_end <= onset]
        after = [s for s in session.segments if s.t_start >= onset]
        assert AudioClass.MUSIC in {s.label for s in before}
        assert {s.label for s in after} <= {AudioClass.LIVE_HUMAN, AudioClass.SILENCE}
        assert session.duration - onset >= AFTER_ONSET_SECONDS


def test_the_onset_is_where_the_speech_energy_starts(quick_sessions):
    for session in (s for s in quick_sessions if s.kind == "pickup"):
        onset = session.meta["onset_sample"]
        assert session.human_onset == onset / RATE
        line_open = next(s for s in session.segments if s.source == "line-open")
        lead_start = max(int(round(line_open.t_start * RATE)), onset - 1600)
        lead = frame_levels_dbov(session.pcm[lead_start:onset], 40)  # up to 200 ms of the person's line floor
        start = frame_levels_dbov(session.pcm[onset : onset + 2400], 40)  # the first 300 ms of speech
        assert start.max() >= lead.max() + 10.0, session.id
        assert start[:2].max() > lead.max(), session.id  # the first 10 ms already rise above the floor


def test_the_person_is_their_speech_file_from_its_first_word(corpus, quick_sessions):
    for session in (s for s in quick_sessions if s.kind == "pickup"):
        first = session.meta["utterances"][0]
        source = load_audio(corpus.resolve(first["file"])).astype(np.float64)
        assert first["from_sample"] in {start for start, _ in speech_islands(source)}
        onset = session.meta["onset_sample"]
        heard = session.pcm[onset : onset + 2400].astype(np.float64)
        said = source[first["from_sample"] : first["from_sample"] + 2400]
        assert np.corrcoef(heard, said)[0, 1] > 0.9, session.id


def test_speech_islands_start_at_the_first_loud_frame_and_ignore_clicks_and_breaths():
    rng = np.random.default_rng(3)
    floor = rng.normal(scale=30.0, size=RATE * 3)  # about -61 dBov
    pcm = floor.copy()
    pcm[1000:1040] += 8000.0 * np.sin(np.arange(40))  # a 5 ms click
    pcm[4000:6400] += 250.0 * rng.normal(size=2400)  # a breath: above the floor, far under the speech
    t = np.arange(8000) / RATE
    pcm[12000:20000] += 6000.0 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 4 * t)) / 2  # speech-like
    assert speech_islands(pcm) == [(12000, 20000)]


@pytest.fixture(scope="module")
def train_holds(corpus):
    return [render(spec, corpus) for spec in session_specs(0, split="train") if spec.kind == "pure_hold"]


def _after(session, segment):
    return session.segments[session.segments.index(segment) + 1]


def test_hold_variety_chains_prompts_with_gaps(corpus, train_holds):
    """A multi-prompt announcement may pause between its files: its segment is the prompts plus
    the gaps, and played on its own each gap is quiet (digital silence, or the hold channel's
    faint floor; over music, the bed goes on under it)."""
    chained = [
        (session, played) for session in train_holds for played in session.meta["announcements"] if "chain_gaps_s" in played
    ]
    assert chained
    for session, played in chained:
        prompts = SPLITS["train"].announcement(played["name"]).prompts
        lengths = [len(load_audio(corpus.resolve(f"prompt:{p}"))) for p in prompts]
        segment = next(s for s in session.segments if s.label == AudioClass.IVR_PROMPT and s.t_start == pytest.approx(played["t"], abs=1e-3))
        assert segment.t_end - segment.t_start == pytest.approx((sum(lengths) / RATE) + sum(played["chain_gaps_s"]), abs=0.01)
        start = int(round(segment.t_start * RATE)) + lengths[0]
        gap = session.pcm[start + 80 : start + int(played["chain_gaps_s"][0] * RATE) - 80]
        if len(gap) and played["style"] != "bed":
            assert frame_levels_dbov(gap, 160).max() < -60.0, session.id


def test_hold_variety_resumes_the_music_after_seconds_of_digital_silence_or_fading_in(train_holds):
    slow = [(s, p) for s in train_holds for p in s.meta["announcements"] if p.get("resume_gap_s", 0.0) >= 1.5]
    fading = [(s, p) for s in train_holds for p in s.meta["announcements"] if "music_fades_in_s" in p]
    assert slow and fading
    for session, played in slow:
        prompt = next(s for s in session.segments if s.label == AudioClass.IVR_PROMPT and s.t_start == pytest.approx(played["t"], abs=1e-3))
        gap = _after(session, prompt)
        assert (gap.label, gap.source) == (AudioClass.SILENCE, "hold-gap")
        assert gap.t_end - gap.t_start == pytest.approx(played["resume_gap_s"], abs=0.01)
    checked = 0
    for session, played in fading:
        prompt = next(s for s in session.segments if s.label == AudioClass.IVR_PROMPT and s.t_start == pytest.approx(played["t"], abs=1e-3))
        music = next(s for s in session.segments[session.segments.index(prompt) :] if s.label == AudioClass.MUSIC)
        if music.t_end - music.t_start < played["music_fades_in_s"]:
            continue  # a silence gap of the hold cut the fade short
        start = int(round(music.t_start * RATE))
        ramp = frame_levels_dbov(session.pcm[start : start + int(played["music_fades_in_s"] * RATE)], 160)
        if ramp[-10:].max() < -50.0:
            continue  # the track itself is silent there
        assert ramp[:3].max() < ramp[-10:].max() - 10.0, session.id
        checked += 1
    assert checked
