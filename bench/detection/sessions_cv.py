"""Labelled sessions for the cross-validated benchmark, each drawn from one fold's sources only.

Generalised from ``dataset.py`` (same ``Session``, ``Segment`` and labels; the same onset rule)
to manifest items and call-centre conditions:

``pickup``
    Hold (music and announcements) for 30-120 s, then a person. The hold plays the fold's
    music as a playlist (tracks of one package in a random order, starting mid-track; between
    tracks a 0.5-3 s gap of digital silence, the last seconds sometimes faded out; a one-track
    package loops with such a gap). Announcements come at unpredictable times (first after
    3-45 s, then every 10-120 s), from one voice or - a third of the holds - two voices (a queue
    announcement and a company message), played alone with silences around them, cut straight
    in, over the music bed (0, 6 or 12 dB SNR) or over a ducked bed; a quarter are chains of 2-3
    items with 0-1.2 s gaps. Music sometimes fades out before an announcement and back in after
    it, and stops for 2-5 s now and then. The pickup: the last thing before the person is an
    announcement three times in ten; the music stops abruptly, with a click and a gap, after a
    gap, fading out, or **goes on under the person's first words** (fading over 0.3-2 s). The
    person's line opens on its own floor, they talk 1.5-6 s, wait 0.8-2.5 s, and six times in
    ten talk again; the session runs 10 s past the first word (``human_onset``).
``pure_hold``
    3-10 minutes of such a hold and no person: every human decision is a false ring.

Conditions (``conditions.py``) are drawn per session from a stream of their own: the person's
room (coloured noise or a noise recording of the fold), babble (other speakers of the same
fold, mixed low), headset hiss, a noise gate with digital silence or comfort noise, AGC; then
on the whole call another codec and packet loss with concealment; last of all G.711 mu-law.
Everything depends only on the spec (its seed): any session renders alone, one at a time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from app.audio.types import AudioClass
from app.media.wavfile import load_audio
from bench.detection import conditions as cond
from bench.detection.dataset import (
    AFTER_ONSET_SECONDS,
    RATE,
    Session,
    _click,
    _Timeline,
    active_level_dbov,
    frame_levels_dbov,
    line_noise,
    speech_islands,
    telephone,
    utterance_span,
)
from bench.detection.folds import FoldPlan
from bench.detection.sources import Item, Manifest, load_sources

CvKind = Literal["pickup", "pure_hold"]
# A person's clip must be words: this share of its speech islands' Silero steps is speech.
WORDS_MIN_SPEECH_SHARE = 0.33

# Sessions per fold (the full benchmark) and their lengths.
PICKUPS_PER_FOLD = 40
PURE_HOLDS_PER_FOLD = 8
PICKUP_HOLD_SECONDS = (30.0, 120.0)
PURE_HOLD_SECONDS = (180.0, 600.0)
QUICK_PICKUPS = 2
QUICK_PICKUP_SECONDS = 30.0
QUICK_HOLDS = 1
QUICK_HOLD_SECONDS = 60.0

# The hold.
MUSIC_DBOV = (-30.0, -18.0)
ANNOUNCEMENT_DBOV = (-26.0, -16.0)
FIRST_ANNOUNCEMENT_SECONDS = (3.0, 45.0)
BETWEEN_ANNOUNCEMENTS = ((10.0, 60.0), (60.0, 120.0))  # 70% / 30%
SECOND_VOICE_CHANCE = 0.33  # of holds
SECOND_VOICE_SHARE = 0.35  # of that hold's announcements
CHAIN_CHANCE = 0.25
CHAIN_GAP_SECONDS = (0.0, 1.2)
STYLES = ("alone", "cut", "bed", "ducked")
STYLE_WEIGHTS = (0.35, 0.2, 0.3, 0.15)
BED_SNRS_DB = (0.0, 6.0, 12.0)
DUCK_DB = (10.0, 20.0)
SWITCH_GAP_SECONDS = (0.2, 1.0)
SILENT_RESUME_CHANCE = 0.2
SILENT_RESUME_SECONDS = (1.5, 5.0)
FADE_CHANCE = 0.25
FADE_SECONDS = (0.5, 2.5)
MUSIC_GAP_CHANCE = 0.1
MUSIC_GAP_SECONDS = (2.0, 5.0)
PLAYLIST_GAP_SECONDS = (0.5, 3.0)
PLAYLIST_FADE_CHANCE = 0.5
HOLD_FLOORS_DBOV = (None, None, -72.0, -66.0)

# The pickup and the person.
PICKUP_AFTER_ANNOUNCEMENT_CHANCE = 0.3
TRANSITIONS = ("abrupt", "click", "gap", "fade", "tail")
PICKUP_GAP_SECONDS = (0.2, 1.0)
TAIL_SECONDS = (0.3, 2.0)
LINE_OPEN_SECONDS = (0.05, 0.8)
FIRST_UTTERANCE_SECONDS = (1.5, 6.0)
SECOND_UTTERANCE_SECONDS = (1.0, 4.0)
SECOND_UTTERANCE_CHANCE = 0.6
REPLY_PAUSE_SECONDS = (0.8, 2.5)
VOICE_DBOV = (-30.0, -18.0)
HUMAN_FLOORS_DBOV = (-66.0, -62.0, -56.0, -50.0)
BABBLE_CLIP_SECONDS = 8.0

CONDITIONS_STREAM = 11


@dataclass(frozen=True)
class CvSpec:
    """One session to render: which fold's groups it draws from, and its seed."""

    id: str
    fold: str
    kind: CvKind
    seed: tuple[int, ...]
    seconds: float  # hold before the person | the whole pure hold
    source: str  # the manifest (``sources.load_sources`` argument)
    music: str
    voices: tuple[str, ...]  # 1 or 2 announcement voice groups
    speaker: str | None = None
    others: tuple[str, ...] = ()  # the fold's other speakers (babble)
    noise: tuple[str, ...] = ()  # the fold's noise groups (room noise recordings)
    # The closed loop (``closed_loop.py``): persons who never react, sessions whose line echoes us.
    passive_share: float = 0.15
    echo_share: float = 0.4


def fold_specs(
    plan: FoldPlan, fold_name: str, *, source: str, seed: int = 0, quick: bool = False
) -> list[CvSpec]:
    """The sessions of one fold: pickups cycling over its speakers, holds over its music."""
    fold = plan.fold(fold_name)
    fold_index = 99 if fold_name == "frozen" else int(fold_name.split("-")[1])
    rng = np.random.default_rng([seed, 1000 + fold_index])
    speakers, music, voices = fold.of("speech"), fold.of("music"), fold.of("announcement")
    noise = fold.of("noise")
    specs: list[CvSpec] = []

    def hold_voices(i: int) -> tuple[str, ...]:
        first = voices[i % len(voices)]
        if len(voices) > 1 and rng.random() < SECOND_VOICE_CHANCE:
            others = [v for v in voices if v != first]
            return (first, others[int(rng.integers(len(others)))])
        return (first,)

    pickups = QUICK_PICKUPS if quick else PICKUPS_PER_FOLD
    for i in range(pickups):
        speaker = speakers[i % len(speakers)]
        seconds = QUICK_PICKUP_SECONDS if quick else round(float(rng.uniform(*PICKUP_HOLD_SECONDS)), 2)
        specs.append(
            CvSpec(
                id=f"{fold_name}-pickup-{i:03d}",
                fold=fold_name,
                kind="pickup",
                seed=(seed, fold_index, 0, i),
                seconds=seconds,
                source=source,
                music=music[(i * 7 + 3) % len(music)],
                voices=hold_voices(i),
                speaker=speaker,
                others=tuple(s for s in speakers if s != speaker),
                noise=noise,
            )
        )
    holds = QUICK_HOLDS if quick else PURE_HOLDS_PER_FOLD
    for i in range(holds):
        seconds = QUICK_HOLD_SECONDS if quick else round(float(rng.uniform(*PURE_HOLD_SECONDS)), 2)
        specs.append(
            CvSpec(
                id=f"{fold_name}-hold-{i:03d}",
                fold=fold_name,
                kind="pure_hold",
                seed=(seed, fold_index, 1, i),
                seconds=seconds,
                source=source,
                music=music[i % len(music)],
                voices=hold_voices(i + 1),
                noise=noise,
            )
        )
    return specs


# -- audio of items -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _audio(path: str) -> np.ndarray:
    return load_audio(Path(path)).astype(np.float64)


@functools.lru_cache(maxsize=None)
def _islands(path: str) -> tuple[tuple[int, int], ...]:
    return tuple(speech_islands(_audio(path)))


@functools.lru_cache(maxsize=None)
@functools.lru_cache(maxsize=None)
def _speaks(path: str) -> bool:
    """Silero calls at least a third of the clip's speech islands speech: words, not a grunt."""
    from app.audio.vad import SileroStream

    audio = _audio(path)
    islands = _islands(path)
    stream = SileroStream()
    probs = np.array(stream.push(audio.astype(np.int16)))
    step = 256
    inside = [p for i, p in enumerate(probs) if any(a <= i * step < b for a, b in islands)]
    return bool(inside) and float(np.mean(np.array(inside) >= 0.5)) >= WORDS_MIN_SPEECH_SHARE


def _active_dbov(path: str) -> float:
    return active_level_dbov(_audio(path))


@functools.lru_cache(maxsize=None)
def _floor_dbov(path: str) -> float:
    return float(np.percentile(frame_levels_dbov(_audio(path), 160), 10))


def _item_audio(item: Item) -> np.ndarray:
    return np.concatenate([_audio(str(p)) for p in item.parts]) if len(item.parts) > 1 else _audio(str(item.parts[0]))


def _rms_dbov(pcm: np.ndarray) -> float:
    return cond.level_dbov(pcm)


def _gain(level: float, target: float) -> float:
    return float(10 ** ((target - level) / 20))


def _n(seconds: float) -> int:
    return int(round(seconds * RATE))


# -- rendering ----------------------------------------------------------------------------------


def render_cv(spec: CvSpec, manifest: Manifest | None = None) -> Session:
    manifest = manifest or load_sources(spec.source)
    rng = np.random.default_rng(list(spec.seed))
    crng = np.random.default_rng([*spec.seed, CONDITIONS_STREAM])
    conditions = cond.draw_conditions(crng, person=spec.kind == "pickup")
    hold = _Hold(spec, manifest, rng)
    if spec.kind == "pickup":
        timeline, onset, meta = _render_pickup(spec, manifest, hold, rng, conditions, crng)
    else:
        timeline = hold.play(spec.seconds)
        hold.add_floor(timeline)
        onset, meta = None, hold.meta()
    line, line_notes = cond.apply_line(timeline.samples(), conditions, crng)
    pcm = telephone(line)
    meta = {
        "seed": list(spec.seed),
        "fold": spec.fold,
        "conditions": conditions.names(),
        "condition_params": {**conditions.as_dict(), **meta.pop("person_notes", {}), **line_notes},
        **meta,
    }
    return Session(spec.id, spec.fold, spec.kind, pcm, timeline.segments, onset, meta)  # type: ignore[arg-type]


class _Hold:
    def __init__(self, spec: CvSpec, manifest: Manifest, rng: np.random.Generator) -> None:
        self.rng = rng
        self.spec = spec
        tracks = manifest.items_of(spec.music)
        if not tracks:
            raise ValueError(f"no music items in group {spec.music}")
        self.tracks = [tracks[i] for i in rng.permutation(len(tracks))]
        self.track_index = 0
        self.position = int(rng.integers(len(_item_audio(self.tracks[0]))))
        self.music_dbov = float(rng.uniform(*MUSIC_DBOV))
        self.voice_items = [manifest.items_of(v) for v in spec.voices]
        if not all(self.voice_items):
            raise ValueError(f"an announcement group of {spec.voices} has no items")
        self.second_share = SECOND_VOICE_SHARE if len(spec.voices) > 1 else 0.0
        self.floor_dbov = HOLD_FLOORS_DBOV[int(rng.integers(len(HOLD_FLOORS_DBOV)))]
        self.playlist_fade = rng.random() < PLAYLIST_FADE_CHANCE
        self.played: list[dict[str, Any]] = []
        self.playlist_gaps = 0

    def meta(self) -> dict[str, Any]:
        return {
            "music": self.spec.music,
            "voices": list(self.spec.voices),
            "music_dbov": round(self.music_dbov, 1),
            "hold_floor_dbov": self.floor_dbov,
            "playlist_gaps": self.playlist_gaps,
            "announcements": self.played,
        }

    # music

    def _track_gain(self, item: Item) -> float:
        return _gain(_rms_dbov(_item_audio(item)), self.music_dbov)

    def music(self, timeline: _Timeline, seconds: float, *, fade_in: float = 0.0, fade_out: float = 0.0) -> None:
        """``seconds`` of the playlist from where it stopped; a track's end brings the playlist gap."""
        remaining = _n(seconds)
        first = True
        while remaining > 0:
            item = self.tracks[self.track_index]
            audio = _item_audio(item)
            take = min(remaining, len(audio) - self.position)
            piece = audio[self.position : self.position + take] * self._track_gain(item)
            if first and fade_in:
                ramp = min(_n(fade_in), len(piece))
                piece[:ramp] *= np.linspace(0.0, 1.0, ramp) ** 2
            first = False
            self.position += take
            remaining -= take
            ends_track = self.position >= len(audio)
            if ends_track and self.playlist_fade:
                ramp = min(_n(self.rng.uniform(1.5, 4.0)), len(piece))
                piece[len(piece) - ramp :] *= np.linspace(1.0, 0.0, ramp) ** 2
            if remaining == 0 and fade_out:
                ramp = min(_n(fade_out), len(piece))
                piece[len(piece) - ramp :] *= np.linspace(1.0, 0.0, ramp) ** 2
            timeline.add(piece, AudioClass.MUSIC, item.id)
            if ends_track:
                gap = _n(self.rng.uniform(*PLAYLIST_GAP_SECONDS))
                timeline.add(np.zeros(gap), AudioClass.SILENCE, "playlist-gap")
                remaining -= min(gap, remaining)
                self.playlist_gaps += 1
                self.track_index = (self.track_index + 1) % len(self.tracks)
                self.position = 0

    def bed(self, seconds: float) -> np.ndarray:
        """Music for under an announcement (no playlist gap in the middle of one: wraps)."""
        item = self.tracks[self.track_index]
        audio = _item_audio(item)
        index = (self.position + np.arange(_n(seconds))) % len(audio)
        self.position = int((self.position + _n(seconds)) % len(audio))
        return audio[index] * self._track_gain(item)

    def music_with_gaps(self, timeline: _Timeline, seconds: float, fade_in: float = 0.0, fade_out: float = 0.0) -> None:
        if self.rng.random() >= MUSIC_GAP_CHANCE:
            self.music(timeline, seconds, fade_in=fade_in, fade_out=fade_out)
            return
        before = self.rng.uniform(0.0, seconds)
        self.music(timeline, before, fade_in=fade_in)
        timeline.add(np.zeros(_n(self.rng.uniform(*MUSIC_GAP_SECONDS))), AudioClass.SILENCE, "hold-gap")
        self.music(timeline, max(seconds - before, 1.0), fade_out=fade_out)

    # announcements

    def pick_items(self) -> tuple[int, list[Item]]:
        voice = 1 if self.second_share and self.rng.random() < self.second_share else 0
        items = self.voice_items[voice]
        weights = np.array([0.3 if i.meta.get("long") else 1.0 for i in items])
        count = 1
        if self.rng.random() < CHAIN_CHANCE and len(items) > 1:
            count = int(self.rng.integers(2, min(3, len(items)) + 1))
        chosen = self.rng.choice(len(items), size=count, replace=False, p=weights / weights.sum())
        return voice, [items[int(i)] for i in chosen]

    def announcement(self) -> tuple[list[tuple[np.ndarray, str | None]], dict[str, Any]]:
        """The pieces of one announcement (audio with its item id, or a gap with None)."""
        voice, items = self.pick_items()
        level = self.rng.uniform(*ANNOUNCEMENT_DBOV)
        audios = [_item_audio(i) for i in items]
        gain = _gain(active_level_dbov(np.concatenate(audios)), level)
        pieces: list[tuple[np.ndarray, str | None]] = []
        gaps = []
        for index, (item, audio) in enumerate(zip(items, audios)):
            if index:
                gap = float(self.rng.uniform(*CHAIN_GAP_SECONDS))
                gaps.append(round(gap, 2))
                if _n(gap):
                    pieces.append((np.zeros(_n(gap)), None))
            pieces.append((audio * gain, item.id))
        info = {"items": [i.id for i in items], "voice": self.spec.voices[voice], "dbov": round(level, 1)}
        if gaps:
            info["chain_gaps_s"] = gaps
        return pieces, info

    def announce(self, timeline: _Timeline, style: str, *, resume: bool = True) -> None:
        pieces, info = self.announcement()
        info.update(t=round(timeline.seconds, 3), style=style)
        if style in ("bed", "ducked"):
            under = self.rng.choice(BED_SNRS_DB) if style == "bed" else self.rng.uniform(*DUCK_DB)
            info["bed_db_under"] = round(float(under), 1)
            for audio, source in pieces:
                bed = self.bed(len(audio) / RATE)
                level = cond.level_dbov(audio) if source else info["dbov"]
                bed *= _gain(_rms_dbov(bed), min(level, info["dbov"]) - float(under))
                label = AudioClass.IVR_PROMPT if source else AudioClass.MUSIC
                timeline.add(audio + bed, label, source or self.tracks[self.track_index].id)
        else:
            if style == "alone":
                self.switch_gap(timeline)
            for audio, source in pieces:
                timeline.add(audio, AudioClass.IVR_PROMPT if source else AudioClass.SILENCE, source or "chain-gap")
            if style == "alone" and resume:
                info["resume_gap_s"] = round(self.switch_gap(timeline, silent_resume=True), 2)
        self.played.append(info)

    def switch_gap(self, timeline: _Timeline, *, silent_resume: bool = False) -> float:
        seconds = self.rng.uniform(*SWITCH_GAP_SECONDS)
        if silent_resume and self.rng.random() < SILENT_RESUME_CHANCE:
            seconds = self.rng.uniform(*SILENT_RESUME_SECONDS)
        timeline.add(np.zeros(_n(seconds)), AudioClass.SILENCE, "hold-gap")
        return seconds

    def play(self, seconds: float) -> _Timeline:
        """Music and announcements until ``seconds``, ending on music."""
        timeline = _Timeline()
        first = min(self.rng.uniform(*FIRST_ANNOUNCEMENT_SECONDS), seconds)
        fade_out = self.rng.uniform(*FADE_SECONDS) if self.rng.random() < FADE_CHANCE else 0.0
        self.music_with_gaps(timeline, first, fade_out=fade_out)
        while timeline.seconds < seconds - 5.0:
            style = str(self.rng.choice(STYLES, p=STYLE_WEIGHTS))
            self.announce(timeline, style)
            between = BETWEEN_ANNOUNCEMENTS[0] if self.rng.random() < 0.7 else BETWEEN_ANNOUNCEMENTS[1]
            length = max(min(self.rng.uniform(*between), seconds - timeline.seconds), 3.0)
            fade_in = self.rng.uniform(*FADE_SECONDS) if self.rng.random() < FADE_CHANCE else 0.0
            fade_out = self.rng.uniform(*FADE_SECONDS) if self.rng.random() < FADE_CHANCE else 0.0
            self.music_with_gaps(timeline, length, fade_in=fade_in, fade_out=fade_out)
        return timeline

    def add_floor(self, timeline: _Timeline) -> None:
        if self.floor_dbov is not None:
            floor = self.floor_dbov
            timeline.map_samples(lambda s: s + line_noise(len(s), floor, self.rng))


def _render_pickup(
    spec: CvSpec,
    manifest: Manifest,
    hold: _Hold,
    rng: np.random.Generator,
    conditions: cond.Conditions,
    crng: np.random.Generator,
) -> tuple[_Timeline, float, dict[str, Any]]:
    timeline = hold.play(spec.seconds)
    context = "music"
    if rng.random() < PICKUP_AFTER_ANNOUNCEMENT_CHANCE:
        context = "announcement"
        hold.announce(timeline, "alone", resume=False)
    hold.add_floor(timeline)
    hold_end = timeline.seconds
    transition = str(rng.choice(TRANSITIONS))
    if context == "announcement" and transition in ("fade", "tail"):
        transition = "gap"
    if transition == "click":
        timeline.add(_click(rng), AudioClass.SILENCE, "pickup-click")
    if transition in ("click", "gap"):
        timeline.add(np.zeros(_n(rng.uniform(*PICKUP_GAP_SECONDS))), AudioClass.SILENCE, "pickup-gap")
    if transition == "fade":
        fade = _n(rng.uniform(*FADE_SECONDS))
        tail = hold.bed(fade / RATE) * np.linspace(1.0, 0.0, fade) ** 2
        timeline.add(tail, AudioClass.MUSIC, "music-fade-out")
        timeline.add(np.zeros(_n(rng.uniform(*PICKUP_GAP_SECONDS))), AudioClass.SILENCE, "pickup-gap")

    speaker_items = manifest.items_of(spec.speaker or "")
    if not speaker_items:
        raise ValueError(f"no speech items in group {spec.speaker}")
    person, onset_in_person, person_meta = _render_person(speaker_items, rng)
    babble_clips = _babble_clips(manifest, spec.others, conditions.babble_talkers, crng)
    room = _room_recording(manifest, spec.noise, crng) if conditions.room_dbov is not None else None
    samples, notes = cond.apply_person(
        person.samples(),
        conditions,
        crng,
        floor_dbov=person_meta["human_floor_dbov"],
        voice_dbov=person_meta["voice_dbov"],
        onset=onset_in_person,
        babble_clips=babble_clips,
        room_recording=room,
    )
    person._pieces = [samples]  # same length: the labels stay
    line_open = timeline.length
    tail_meta: dict[str, Any] = {}
    if transition == "tail":
        # The music goes on under the person's line for a moment, fading out.
        count = min(_n(rng.uniform(*TAIL_SECONDS)), person.length)
        tail = hold.bed(count / RATE) * np.linspace(1.0, 0.0, count) ** 2
        mixed = person.samples()
        mixed[:count] += tail
        person._pieces = [mixed]
        tail_meta = {"music_tail_s": round(count / RATE, 2)}
        person._labels = [
            (s, e, AudioClass.MUSIC, "music-tail") if label == AudioClass.SILENCE and e <= count else (s, e, label, src)
            for s, e, label, src in person._labels
        ]
    timeline.extend(person)
    meta = {
        **hold.meta(),
        "speaker": spec.speaker,
        "context": context,
        "transition": transition,
        "hold_end": round(hold_end, 3),
        "line_open": round(line_open / RATE, 3),
        "onset_sample": line_open + onset_in_person,
        **tail_meta,
        **person_meta,
        "person_notes": notes,
    }
    return timeline, (line_open + onset_in_person) / RATE, meta


def _render_person(items: list[Item], rng: np.random.Generator) -> tuple[_Timeline, int, dict[str, Any]]:
    person = _Timeline()
    voice_dbov = float(rng.uniform(*VOICE_DBOV))
    person.add(np.zeros(_n(rng.uniform(*LINE_OPEN_SECONDS))), AudioClass.SILENCE, "line-open")
    onset = person.length
    pick = int(rng.integers(len(items)))
    # A few items of the wide corpus (game voice packs' grunts, shouts and laughs) hold no words:
    # the next item of the group that does speaks instead (no extra draw: other sessions
    # unchanged). A person who picks up speaks words.
    for step in range(len(items)):
        item = items[(pick + step) % len(items)]
        path = str(item.parts[0])
        islands = _islands(path)
        if islands and _speaks(path):
            break
    if not islands:
        raise ValueError(f"{item.id}: no speech found")
    speech_seconds = sum(e - s for s, e in islands) / RATE
    start_island = int(rng.integers(len(islands))) if speech_seconds > 8.0 else 0
    first_end, next_island = _utterance(person, item, path, start_island, rng.uniform(*FIRST_UTTERANCE_SECONDS), voice_dbov)
    utterances = [{"item": item.id, "from_sample": islands[start_island][0], "to_sample": first_end}]
    person.add(np.zeros(_n(rng.uniform(*REPLY_PAUSE_SECONDS))), AudioClass.SILENCE, "reply-pause")
    if rng.random() < SECOND_UTTERANCE_CHANCE:
        end, _ = _utterance(person, item, path, next_island, rng.uniform(*SECOND_UTTERANCE_SECONDS), voice_dbov)
        utterances.append({"item": item.id, "from_sample": islands[next_island][0], "to_sample": end})
    tail = max(onset / RATE + AFTER_ONSET_SECONDS - person.seconds, 1.0)
    person.add(np.zeros(_n(tail)), AudioClass.SILENCE, "line-floor")
    own_floor = _floor_dbov(path) - _active_dbov(path) + voice_dbov
    floor = max(float(HUMAN_FLOORS_DBOV[int(rng.integers(len(HUMAN_FLOORS_DBOV)))]), own_floor)
    person.map_samples(lambda s: s + line_noise(len(s), floor, rng))
    meta = {
        "utterances": utterances,
        "voice_dbov": round(voice_dbov, 1),
        "human_floor_dbov": round(floor, 1),
        "spontaneous": item.meta.get("spontaneous"),
    }
    return person, onset, meta


def _utterance(
    timeline: _Timeline, item: Item, path: str, first_island: int, seconds: float, level_dbov: float
) -> tuple[int, int]:
    """Whole stretches of speech from ``first_island`` until ``seconds`` are filled (dataset.py's rule)."""
    audio = _audio(path)
    islands = _islands(path)
    start, end = utterance_span(audio, islands, first_island, seconds)
    timeline.add(audio[start:end] * _gain(_active_dbov(path), level_dbov), AudioClass.LIVE_HUMAN, item.id)
    return end, next((i for i, (s, _) in enumerate(islands) if s >= end), 0)


def _babble_clips(manifest: Manifest, groups: tuple[str, ...], talkers: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``talkers`` clips of the fold's other speakers (never the person's own recordings)."""
    if not talkers or not groups:
        return []
    clips = []
    for i in range(talkers):
        items = manifest.items_of(groups[int(rng.integers(len(groups)))])
        audio = _item_audio(items[int(rng.integers(len(items)))])
        start = int(rng.integers(max(1, len(audio) - _n(BABBLE_CLIP_SECONDS))))
        clips.append(audio[start : start + _n(BABBLE_CLIP_SECONDS)])
    return clips


def _room_recording(manifest: Manifest, groups: tuple[str, ...], rng: np.random.Generator) -> np.ndarray | None:
    if not groups:
        return None
    items = manifest.items_of(groups[int(rng.integers(len(groups)))])
    return _item_audio(items[int(rng.integers(len(items)))]) if items else None

