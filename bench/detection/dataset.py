"""Labelled benchmark sessions built from the recording corpus, heard the way a call hears them.

Every session is 8 kHz int16 mixed from real recordings and then passed through G.711 mu-law
(after mixing, as the far end's audio reaches the app). Three kinds:

``pickup``
    Hold for 30-120 s (music; announcements every 20-60 s, played alone with short silences
    around them, cut straight in, or over the music at 0, 6 or 12 dB SNR; occasional gaps of
    silence; see *Hold variety* for what real PBXs add), then a person picks up: the music
    (or a last announcement) stops - abruptly, with a click and a short silence, or after
    0.2-1 s of silence - their line opens on its own noise floor (or a noise-suppressed, gated
    line), they talk for 1.5-6 s, pause as if waiting for an answer, and may talk again.
    ``human_onset`` is the first sample of their first word, found in the speech file by an
    energy threshold.
``pure_hold``
    3-10 minutes of hold and no person: any human decision is a false transfer. Together
    they cover every announcement of their split.
``tones``
    Ringback, busy (baresip recordings), synthetic North American SIT followed by an intercept
    message, and DTMF key presses (baresip).

Splits, by voice and by file (fixed here, never by chance), so that the test split holds
people, music and announcements no threshold was tuned on:

- voices: train kristoff, cq_ref, ve9qrp, hts1, forig (+ f2400, the same speaker coded),
  cross; test vk5qi, g3plx, hts2, morig (+ m2400), big_dog, mmt1. Not used: hts1a, hts2a,
  hts.raw and all.wav (copies or concatenations of the above), david4 and vk2tpm_004 (Silero
  VAD finds no speech in them: modem or vocoder test signals), the sine and modem test files.
- hold music: train macroform-cold_day, macroform-robot_dity, manolo_camp-morning_coffee;
  test macroform-the_simplicity, reno_project-system.
- announcements (one or more prompts played back to back; no prompt file in both splits):
  see ``SPLITS``.

Hold variety (what real PBXs do that a plain playlist does not), drawn from a random stream of
its own (``VARIETY_STREAM``) so that every other draw of a session is what it was before:

- an announcement made of several prompt files may pause between them (the PBX plays the
  files one after the other): ``CHAIN_GAP_*``;
- after an announcement played alone, the music may take seconds to come back, in digital
  silence (the PBX restarting the music-on-hold source): ``SILENT_RESUME_*``;
- the music may come back fading in: ``FADE_IN_*``;
- the person's line may be a loud one (a busy call centre, a cheap headset): its floor only
  ``LOUD_LINE_SNR_DB`` under the voice, ``LOUD_LINE_*``.

Everything is deterministic: a session depends only on the global seed and its own index,
so any one session can be rendered alone (``render``), and ``iter_sessions`` renders them
one at a time (hours of audio never sit in memory together).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from app.audio.types import AudioClass
from app.media.wavfile import load_audio
from app.sim.corpus import Corpus
from app.media.g711 import ulaw_decode, ulaw_encode

RATE = 8000
Split = Literal["train", "test"]
Kind = Literal["pickup", "pure_hold", "tones"]
SPLIT_NAMES: tuple[Split, ...] = ("train", "test")

LABELS: tuple[AudioClass, ...] = (
    AudioClass.SILENCE,
    AudioClass.RINGING,
    AudioClass.BUSY,
    AudioClass.SIT,
    AudioClass.DTMF,
    AudioClass.MUSIC,
    AudioClass.IVR_PROMPT,
    AudioClass.LIVE_HUMAN,
)

# How much of each kind a split holds (the full benchmark).
PICKUPS_PER_VOICE = 10
PURE_HOLDS_PER_SPLIT = 12
TONE_KINDS = ("ringback", "busy", "sit", "dtmf")
TONE_SESSIONS_PER_KIND = 2

# Shapes of a hold and a pickup (seconds unless named otherwise).
PICKUP_HOLD_SECONDS = (30.0, 120.0)
PURE_HOLD_SECONDS = (180.0, 600.0)
FIRST_MUSIC_SECONDS = (5.0, 40.0)
BETWEEN_ANNOUNCEMENTS_SECONDS = (20.0, 60.0)
SILENCE_GAP_CHANCE = 0.1
SILENCE_GAP_SECONDS = (2.0, 5.0)
ANNOUNCEMENT_GAP_SECONDS = (0.2, 1.0)
BED_SNRS_DB = (0.0, 6.0, 12.0)
LONG_ANNOUNCEMENT_WEIGHT = 0.3
PICKUP_AFTER_ANNOUNCEMENT_CHANCE = 0.3
PICKUP_GAP_SECONDS = (0.2, 1.0)
LINE_OPEN_SECONDS = (0.05, 0.8)
FIRST_UTTERANCE_SECONDS = (1.5, 6.0)
SECOND_UTTERANCE_SECONDS = (1.0, 4.0)
SECOND_UTTERANCE_CHANCE = 0.6
REPLY_PAUSE_SECONDS = (0.8, 2.5)
# Hold variety (see the module docstring), drawn from its own random stream.
VARIETY_STREAM = 7
CHAIN_GAP_CHANCE = 0.5
CHAIN_GAP_SECONDS = (0.3, 1.2)
SILENT_RESUME_CHANCE = 0.25
SILENT_RESUME_SECONDS = (1.5, 5.0)
FADE_IN_CHANCE = 0.3
FADE_IN_SECONDS = (0.5, 2.0)
LOUD_LINE_CHANCE = 0.15  # of the noisy lines
LOUD_LINE_SNR_DB = (15.0, 22.0)
AFTER_ONSET_SECONDS = 10.0  # every pickup session runs at least this long after the onset

# Levels in dBov: music RMS, speech level over its active frames (ITU nominal speech is about
# -20 dBm0, i.e. -23 dBov), channel floors.
MUSIC_DBOV = (-30.0, -18.0)
ANNOUNCEMENT_DBOV = (-26.0, -16.0)
VOICE_DBOV = (-30.0, -18.0)
HOLD_FLOORS_DBOV = (None, None, -72.0, -66.0)  # None: a digitally clean hold
HUMAN_FLOORS_DBOV = (-62.0, -56.0, -50.0, None)  # None: a noise-suppressed (gated) line
GATE_MIN_DBOV = -50.0
GATE_ABOVE_FLOOR_DB = 3.0
TONE_GAIN_DB = (-10.0, 0.0)

# Speech onset detection in a speech file: 5 ms frames above the file's own floor.
ONSET_FRAME = 40
ONSET_ABOVE_FLOOR_DB = 10.0
ONSET_BELOW_PEAK_DB = 30.0
CLICK_MAX_FRAMES = 6  # 30 ms
ISLAND_MIN_FRAMES = 20  # 100 ms of speech
ISLAND_LOUD_BELOW_PEAK_DB = 15.0
ISLAND_JOIN_FRAMES = 50  # gaps under 250 ms stay inside one stretch of speech
UTTERANCE_TAIL_SECONDS = 0.1  # a word's decay below the threshold
LONGEST_OVERRUN_SECONDS = 2.0  # an utterance runs past its planned length by this much at most

FULL_SCALE = 32768.0


@dataclass(frozen=True)
class Voice:
    """One person: the speech files (``speech:`` refs) recorded of them."""

    name: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class Announcement:
    """A hold announcement: corpus prompts played back to back."""

    name: str
    prompts: tuple[str, ...]
    long: bool = False


@dataclass(frozen=True)
class SplitSources:
    voices: tuple[Voice, ...]
    tracks: tuple[str, ...]
    announcements: tuple[Announcement, ...]
    intercept: str  # the announcement played after SIT tones

    def announcement(self, name: str) -> Announcement:
        return next(a for a in self.announcements if a.name == name)

    def files(self) -> set[str]:
        """Every corpus file this split uses (as refs), for disjointness checks."""
        refs = {f"speech:{f}" for v in self.voices for f in v.files}
        refs |= {f"moh:{t}" for t in self.tracks}
        refs |= {f"prompt:{p}" for a in self.announcements for p in a.prompts}
        return refs


SPLITS: dict[Split, SplitSources] = {
    "train": SplitSources(
        voices=(
            Voice("kristoff", ("kristoff.raw",)),
            Voice("cq_ref", ("cq_ref.raw",)),
            Voice("ve9qrp", ("ve9qrp.wav",)),
            Voice("hts1", ("hts1.raw",)),
            Voice("forig", ("forig.raw", "f2400.raw")),
            Voice("cross", ("cross.raw",)),
        ),
        tracks=("macroform-cold_day", "macroform-robot_dity", "manolo_camp-morning_coffee"),
        announcements=(
            Announcement("queue-periodic-announce", ("queue-periodic-announce",)),
            Announcement("queue-thankyou", ("queue-thankyou",)),
            Announcement("pls-hold-while-try", ("pls-hold-while-try",)),
            Announcement("queue-holdtime-5-minutes", ("queue-holdtime", "digits/5", "queue-minutes")),
            Announcement("queue-caller-number-3", ("queue-thereare", "digits/3")),
            Announcement("followme-pls-hold-while-try", ("followme/pls-hold-while-try",)),
            Announcement("ss-noservice", ("ss-noservice",)),
            Announcement("basic-pbx-ivr-main", ("basic-pbx-ivr-main",), long=True),
        ),
        intercept="ss-noservice",
    ),
    "test": SplitSources(
        voices=(
            Voice("vk5qi", ("vk5qi.wav",)),
            Voice("g3plx", ("g3plx.raw",)),
            Voice("hts2", ("hts2.raw",)),
            Voice("morig", ("morig.raw", "m2400.raw")),
            Voice("big_dog", ("big_dog.raw",)),
            Voice("mmt1", ("mmt1.raw",)),
        ),
        tracks=("macroform-the_simplicity", "reno_project-system"),
        announcements=(
            Announcement("queue-youarenext", ("queue-youarenext",)),
            Announcement("tt-allbusy", ("tt-allbusy",)),
            Announcement("one-moment-please", ("one-moment-please",)),
            Announcement("queue-callswaiting", ("queue-callswaiting",)),
            Announcement("queue-more-than-4-callers", ("queue-quantity1", "digits/4", "queue-quantity2")),
            Announcement("followme-status", ("followme/status",)),
            Announcement("all-circuits-busy-now", ("all-circuits-busy-now",)),
            Announcement("demo-congrats", ("demo-congrats",), long=True),
        ),
        intercept="all-circuits-busy-now",
    ),
}

# baresip's DTMF recordings, by key.
DTMF_FILES = {**{str(d): f"sound{d}.wav" for d in range(10)}, "*": "soundstar.wav", "#": "soundroute.wav"}
# North American SIT: three tones of these frequencies (Hz) and lengths (s).
SIT_FIRST_HZ = (913.8, 985.2)
SIT_SECOND_HZ = (1370.6, 1428.5)
SIT_THIRD_HZ = 1776.7
SIT_SECONDS = (0.274, 0.380)


@dataclass(frozen=True)
class Segment:
    """Ground truth for ``[t_start, t_end)`` seconds: its class and where the audio came from."""

    t_start: float
    t_end: float
    label: AudioClass
    source: str


@dataclass
class Session:
    id: str
    split: Split
    kind: Kind
    pcm: np.ndarray  # int16, 8 kHz, already through mu-law
    segments: list[Segment]
    human_onset: float | None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return len(self.pcm) / RATE


@dataclass(frozen=True)
class SessionSpec:
    """What to render: cheap to make, so the whole benchmark can be listed without its audio."""

    id: str
    split: Split
    kind: Kind
    seed: tuple[int, ...]
    seconds: float  # hold before the pickup | length of the pure hold | length of the tone
    voice: str | None = None
    track: str | None = None
    announcements: tuple[str, ...] = ()  # announcements that must play in this session
    tone: str | None = None


# -- the list of sessions -----------------------------------------------------------------------


def session_specs(seed: int = 0, *, split: Split | None = None, quick: bool = False) -> list[SessionSpec]:
    """Every session of the benchmark (or of one split); ``quick`` keeps a small, short subset."""
    specs: list[SessionSpec] = []
    for split_index, name in enumerate(SPLIT_NAMES):
        if split is not None and name != split:
            continue
        split_specs = _split_specs(seed, split_index, name)
        specs.extend(_quick_subset(split_specs) if quick else split_specs)
    return specs


def _split_specs(seed: int, split_index: int, split: Split) -> list[SessionSpec]:
    sources = SPLITS[split]
    rng = np.random.default_rng([seed, split_index])
    specs: list[SessionSpec] = []
    voices = sources.voices * PICKUPS_PER_VOICE
    for i, voice in enumerate(voices):
        specs.append(
            SessionSpec(
                id=f"{split}-pickup-{i:03d}-{voice.name}",
                split=split,
                kind="pickup",
                seed=(seed, split_index, 0, i),
                seconds=round(float(rng.uniform(*PICKUP_HOLD_SECONDS)), 2),
                voice=voice.name,
                track=sources.tracks[i % len(sources.tracks)],
            )
        )
    names = [a.name for a in sources.announcements]
    for i in range(PURE_HOLDS_PER_SPLIT):
        specs.append(
            SessionSpec(
                id=f"{split}-hold-{i:03d}",
                split=split,
                kind="pure_hold",
                seed=(seed, split_index, 1, i),
                seconds=round(float(rng.uniform(*PURE_HOLD_SECONDS)), 2),
                track=sources.tracks[i % len(sources.tracks)],
                announcements=tuple(names[i::PURE_HOLDS_PER_SPLIT]),
            )
        )
    for i, tone in enumerate(TONE_KINDS * TONE_SESSIONS_PER_KIND):
        specs.append(
            SessionSpec(
                id=f"{split}-tones-{i:03d}-{tone}",
                split=split,
                kind="tones",
                seed=(seed, split_index, 2, i),
                seconds=round(float(rng.uniform(6.0, 16.0)), 2),
                tone=tone,
            )
        )
    return specs


def _quick_subset(specs: list[SessionSpec]) -> list[SessionSpec]:
    """Three short pickups (different voices), one 90 s pure hold, one session of each tone."""
    pickups = [replace(s, seconds=min(s.seconds, 35.0)) for s in specs if s.kind == "pickup"][:3]
    holds = [replace(s, seconds=90.0) for s in specs if s.kind == "pure_hold"][:1]
    tones = [s for s in specs if s.kind == "tones"][: len(TONE_KINDS)]
    return pickups + holds + tones


def iter_sessions(
    corpus: Corpus, *, split: Split | None = None, seed: int = 0, quick: bool = False
) -> Iterator[Session]:
    """Render the sessions one at a time."""
    for spec in session_specs(seed, split=split, quick=quick):
        yield render(spec, corpus)


def build_sessions(corpus: Corpus, *, seed: int = 0, split: Split | None = None, quick: bool = False) -> list[Session]:
    """All sessions at once: hours of audio in memory (prefer ``iter_sessions``)."""
    return list(iter_sessions(corpus, split=split, seed=seed, quick=quick))


# -- rendering ----------------------------------------------------------------------------------


def render(spec: SessionSpec, corpus: Corpus) -> Session:
    """The session's audio and labels; the same spec always gives the same samples."""
    library = _library(corpus)
    rng = np.random.default_rng(list(spec.seed))
    sources = SPLITS[spec.split]
    if spec.kind == "pickup":
        timeline, onset, meta = _render_pickup(spec, sources, library, rng)
    elif spec.kind == "pure_hold":
        timeline, meta = _render_pure_hold(spec, sources, library, rng)
        onset = None
    else:
        timeline, meta = _render_tones(spec, sources, library, rng)
        onset = None
    pcm = telephone(timeline.samples())
    meta = {"seed": list(spec.seed), **meta}
    return Session(spec.id, spec.split, spec.kind, pcm, timeline.segments, onset, meta)


def telephone(pcm: np.ndarray) -> np.ndarray:
    """Float or int samples -> int16 after a G.711 mu-law encode/decode, as a call carries them."""
    return ulaw_decode(ulaw_encode(_to_int16(pcm)))


class _Timeline:
    """Audio pieces laid end to end, each with its label (kept in samples: times stay exact)."""

    def __init__(self) -> None:
        self._pieces: list[np.ndarray] = []
        self._labels: list[tuple[int, int, AudioClass, str]] = []
        self.length = 0  # samples

    @property
    def seconds(self) -> float:
        return self.length / RATE

    @property
    def segments(self) -> list[Segment]:
        return [Segment(start / RATE, end / RATE, label, source) for start, end, label, source in self._labels]

    def add(self, pcm: np.ndarray, label: AudioClass, source: str) -> None:
        if len(pcm) == 0:
            return
        self._pieces.append(np.asarray(pcm, dtype=np.float64))
        self._labels.append((self.length, self.length + len(pcm), label, source))
        self.length += len(pcm)

    def map_samples(self, change) -> None:
        """Replace the audio by ``change(all samples)`` (same length: the labels stay)."""
        samples = change(self.samples())
        assert len(samples) == self.length
        self._pieces = [samples]

    def extend(self, other: _Timeline) -> None:
        offset = self.length
        self._pieces.extend(other._pieces)
        self._labels.extend((start + offset, end + offset, label, src) for start, end, label, src in other._labels)
        self.length += other.length

    def samples(self) -> np.ndarray:
        return np.concatenate(self._pieces) if self._pieces else np.zeros(0)


class _Library:
    """Corpus audio loaded once per process, with the measures the mixer needs."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus

    @functools.lru_cache(maxsize=None)
    def audio(self, ref: str) -> np.ndarray:
        return load_audio(self.corpus.resolve(ref)).astype(np.float64)

    @functools.lru_cache(maxsize=None)
    def active_dbov(self, ref: str) -> float:
        return active_level_dbov(self.audio(ref))

    @functools.lru_cache(maxsize=None)
    def rms_dbov(self, ref: str) -> float:
        return _dbov(self.audio(ref))

    @functools.lru_cache(maxsize=None)
    def floor_dbov(self, ref: str) -> float:
        """The quiet level of a speech file: its own room or line noise."""
        return float(np.percentile(frame_levels_dbov(self.audio(ref), 160), 10))

    @functools.lru_cache(maxsize=None)
    def islands(self, ref: str) -> tuple[tuple[int, int], ...]:
        return tuple(speech_islands(self.audio(ref)))


@functools.lru_cache(maxsize=4)
def _library(corpus: Corpus) -> _Library:
    return _Library(corpus)


def _render_pure_hold(
    spec: SessionSpec, sources: SplitSources, library: _Library, rng: np.random.Generator
) -> tuple[_Timeline, dict[str, Any]]:
    hold = _Hold(spec, sources, library, rng)
    timeline = hold.play(spec.seconds, list(spec.announcements))
    _add_floor(timeline, hold.floor_dbov, rng)
    return timeline, hold.meta()


def _render_pickup(
    spec: SessionSpec, sources: SplitSources, library: _Library, rng: np.random.Generator
) -> tuple[_Timeline, float, dict[str, Any]]:
    hold = _Hold(spec, sources, library, rng)
    timeline = hold.play(spec.seconds, [])
    context = "music"
    if rng.random() < PICKUP_AFTER_ANNOUNCEMENT_CHANCE:
        context = "announcement"
        hold.announce_alone(timeline, hold.pick_announcement(), resume_gap=False)
    _add_floor(timeline, hold.floor_dbov, rng)
    hold_end = timeline.seconds

    transition = str(rng.choice(["abrupt", "click", "gap"]))
    if transition == "click":
        timeline.add(_click(rng), AudioClass.SILENCE, "pickup-click")
    if transition in ("click", "gap"):
        timeline.add(np.zeros(_samples(rng.uniform(*PICKUP_GAP_SECONDS))), AudioClass.SILENCE, "pickup-gap")

    voice = next(v for v in sources.voices if v.name == spec.voice)
    person, onset_in_person, person_meta = _render_person(voice, library, rng, hold.variety)
    line_open = timeline.length
    timeline.extend(person)
    meta = {
        **hold.meta(),
        "voice": voice.name,
        "context": context,
        "transition": transition,
        "hold_end": round(hold_end, 3),
        "line_open": round(line_open / RATE, 3),
        "onset_sample": line_open + onset_in_person,
        **person_meta,
    }
    return timeline, (line_open + onset_in_person) / RATE, meta


class _Hold:
    """Builds hold audio: music with announcements, and the record of what played."""

    def __init__(self, spec: SessionSpec, sources: SplitSources, library: _Library, rng: np.random.Generator) -> None:
        self.sources = sources
        self.library = library
        self.rng = rng
        self.variety = np.random.default_rng([*spec.seed, VARIETY_STREAM])
        self.track_ref = f"moh:{spec.track}"
        track = library.audio(self.track_ref)
        self.music_position = int(rng.integers(0, len(track)))
        music_dbov = rng.uniform(*MUSIC_DBOV)
        self.music_gain = _gain(library.rms_dbov(self.track_ref), music_dbov)
        self.floor_dbov: float | None = HOLD_FLOORS_DBOV[int(rng.integers(len(HOLD_FLOORS_DBOV)))]
        self.played: list[dict[str, Any]] = []
        self._meta = {"track": spec.track, "music_dbov": round(music_dbov, 1), "hold_floor_dbov": self.floor_dbov}

    def meta(self) -> dict[str, Any]:
        return {**self._meta, "announcements": self.played}

    def play(self, seconds: float, required: list[str]) -> _Timeline:
        """Music first, then an announcement every 20-60 s of music, ending on music at ``seconds``."""
        timeline = _Timeline()
        self.music(timeline, min(self.rng.uniform(*FIRST_MUSIC_SECONDS), seconds))
        pending = list(required)
        while timeline.seconds < seconds - 5.0 or pending:
            name = pending.pop(0) if pending else self.pick_announcement()
            style = str(self.rng.choice(["alone", "cut", "bed"], p=[0.4, 0.2, 0.4]))
            if style == "bed":
                self.announce_over_music(timeline, name)
            else:
                self.announce_alone(timeline, name, resume_gap=style == "alone", lead_gap=style == "alone")
            between = self.rng.uniform(*BETWEEN_ANNOUNCEMENTS_SECONDS)
            fade_in = self.variety.uniform(*FADE_IN_SECONDS) if self.variety.random() < FADE_IN_CHANCE else 0.0
            self.music_with_gaps(timeline, max(min(between, seconds - timeline.seconds), 3.0), fade_in=fade_in)
            if fade_in:
                self.played[-1]["music_fades_in_s"] = round(fade_in, 2)
        return timeline

    def pick_announcement(self) -> str:
        announcements = self.sources.announcements
        weights = np.array([LONG_ANNOUNCEMENT_WEIGHT if a.long else 1.0 for a in announcements])
        return announcements[int(self.rng.choice(len(announcements), p=weights / weights.sum()))].name

    def music_segment(self, seconds: float) -> np.ndarray:
        """The track from where it last stopped, wrapping round as MOH does."""
        track = self.library.audio(self.track_ref)
        count = _samples(seconds)
        index = (self.music_position + np.arange(count)) % len(track)
        self.music_position = int((self.music_position + count) % len(track))
        return track[index]

    def music(self, timeline: _Timeline, seconds: float, fade_in: float = 0.0) -> None:
        music = self.music_segment(seconds) * self.music_gain
        ramp = min(_samples(fade_in), len(music))
        music[:ramp] *= np.linspace(0.0, 1.0, ramp) ** 2
        timeline.add(music, AudioClass.MUSIC, self.track_ref)

    def music_with_gaps(self, timeline: _Timeline, seconds: float, fade_in: float = 0.0) -> None:
        if self.rng.random() >= SILENCE_GAP_CHANCE:
            self.music(timeline, seconds, fade_in)
            return
        gap = self.rng.uniform(*SILENCE_GAP_SECONDS)
        before = self.rng.uniform(0.0, seconds)
        self.music(timeline, before, fade_in)
        timeline.add(np.zeros(_samples(gap)), AudioClass.SILENCE, "hold-gap")
        self.music(timeline, max(seconds - before, 1.0))

    def announcement_audio(self, name: str) -> tuple[np.ndarray, float, list[float]]:
        """The prompts at the announcement's level, and the gaps the PBX left between them."""
        announcement = self.sources.announcement(name)
        prompts = [self.library.audio(f"prompt:{p}") for p in announcement.prompts]
        level = self.rng.uniform(*ANNOUNCEMENT_DBOV)
        gain = _gain(active_level_dbov(np.concatenate(prompts)), level)
        gaps = [self._chain_gap() for _ in prompts[1:]]
        parts = [prompts[0]]
        for gap, prompt in zip(gaps, prompts[1:]):
            parts += [np.zeros(_samples(gap)), prompt]
        return np.concatenate(parts) * gain, level, gaps

    def _chain_gap(self) -> float:
        if self.variety.random() >= CHAIN_GAP_CHANCE:
            return 0.0
        return round(float(self.variety.uniform(*CHAIN_GAP_SECONDS)), 2)

    def announce_alone(self, timeline: _Timeline, name: str, *, resume_gap: bool, lead_gap: bool = True) -> None:
        """Music stops (after a short silence or not), the announcement plays on its own."""
        speech, level, chain_gaps = self.announcement_audio(name)
        if lead_gap:
            self.gap(timeline)
        start = timeline.seconds
        timeline.add(speech, AudioClass.IVR_PROMPT, name)
        played: dict[str, Any] = {"name": name, "t": round(start, 3), "style": "alone" if lead_gap else "cut"}
        if resume_gap:
            seconds = self.gap(timeline, silent_resume=True)
            played["resume_gap_s"] = round(seconds, 2)
        self.played.append({**played, "dbov": round(level, 1), **_chain_meta(chain_gaps)})

    def gap(self, timeline: _Timeline, *, silent_resume: bool = False) -> float:
        """The short silence of a PBX switching between music and an announcement; after one,
        now and then the long one of a music source restarting."""
        seconds = self.rng.uniform(*ANNOUNCEMENT_GAP_SECONDS)
        if silent_resume and self.variety.random() < SILENT_RESUME_CHANCE:
            seconds = self.variety.uniform(*SILENT_RESUME_SECONDS)
        timeline.add(np.zeros(_samples(seconds)), AudioClass.SILENCE, "hold-gap")
        return seconds

    def announce_over_music(self, timeline: _Timeline, name: str) -> None:
        speech, level, chain_gaps = self.announcement_audio(name)
        snr = float(self.rng.choice(BED_SNRS_DB))
        bed = self.music_segment(len(speech) / RATE)
        bed *= _gain(_dbov(bed), level - snr)
        start = timeline.seconds
        timeline.add(speech + bed, AudioClass.IVR_PROMPT, name)
        played = {"name": name, "t": round(start, 3), "style": "bed", "snr_db": snr, "dbov": round(level, 1)}
        self.played.append({**played, **_chain_meta(chain_gaps)})


def _chain_meta(gaps: list[float]) -> dict[str, Any]:
    return {"chain_gaps_s": gaps} if any(gaps) else {}


def _render_person(
    voice: Voice, library: _Library, rng: np.random.Generator, variety: np.random.Generator
) -> tuple[_Timeline, int, dict[str, Any]]:
    """The line opening on the person's channel, their words and pauses; and the onset in it (samples)."""
    person = _Timeline()
    gain_db = rng.uniform(*VOICE_DBOV)
    floor_choice = HUMAN_FLOORS_DBOV[int(rng.integers(len(HUMAN_FLOORS_DBOV)))]
    person.add(np.zeros(_samples(rng.uniform(*LINE_OPEN_SECONDS))), AudioClass.SILENCE, "line-open")
    onset = person.length

    ref = f"speech:{voice.files[int(rng.integers(len(voice.files)))]}"
    islands = library.islands(ref)
    start_island = int(rng.integers(len(islands))) if _speech_seconds(islands) > 8.0 else 0
    first = _add_utterance(person, library, ref, start_island, rng.uniform(*FIRST_UTTERANCE_SECONDS), gain_db)
    utterances = [first]
    person.add(np.zeros(_samples(rng.uniform(*REPLY_PAUSE_SECONDS))), AudioClass.SILENCE, "reply-pause")
    if rng.random() < SECOND_UTTERANCE_CHANCE:
        second = f"speech:{voice.files[int(rng.integers(len(voice.files)))]}"
        island = first.next_island if second == ref else 0
        seconds = rng.uniform(*SECOND_UTTERANCE_SECONDS)
        utterances.append(_add_utterance(person, library, second, island, seconds, gain_db))
    tail = max(onset / RATE + AFTER_ONSET_SECONDS - person.seconds, 1.0)
    person.add(np.zeros(_samples(tail)), AudioClass.SILENCE, "line-floor")

    # The person's channel floor is never quieter than the noise already in their recording.
    own_floor = max(library.floor_dbov(u.ref) - library.active_dbov(u.ref) for u in utterances) + gain_db
    if floor_choice is None:
        gate = max(GATE_MIN_DBOV, own_floor + GATE_ABOVE_FLOOR_DB)
        person.map_samples(lambda samples: _gated(samples, gate, onset))
        floor_meta: dict[str, Any] = {"human_line": "gated", "gate_dbov": round(gate, 1)}
    else:
        loud = gain_db - variety.uniform(*LOUD_LINE_SNR_DB) if variety.random() < LOUD_LINE_CHANCE else None
        level = max(floor_choice if loud is None else loud, own_floor)
        person.map_samples(lambda samples: samples + line_noise(len(samples), level, rng))
        floor_meta = {"human_line": "noisy" if loud is None else "loud", "human_floor_dbov": round(level, 1)}
    meta = {
        "utterances": [{"file": u.ref, "from_sample": u.start, "to_sample": u.end} for u in utterances],
        "voice_dbov": round(gain_db, 1),
        **floor_meta,
    }
    return person, onset, meta


@dataclass(frozen=True)
class _Utterance:
    ref: str
    start: int  # samples in the speech file: the first word's first sample
    end: int
    next_island: int  # where the person would go on talking


def _add_utterance(
    timeline: _Timeline, library: _Library, ref: str, first_island: int, seconds: float, level_dbov: float
) -> _Utterance:
    """Speech from ``first_island`` on, whole stretches until ``seconds`` are filled.

    The first word starts exactly where the timeline stood (the file's quiet lead is left out:
    the line-open floor before it plays that role).
    """
    audio = library.audio(ref)
    islands = library.islands(ref)
    start, end = utterance_span(audio, islands, first_island, seconds)
    gain = _gain(library.active_dbov(ref), level_dbov)
    timeline.add(audio[start:end] * gain, AudioClass.LIVE_HUMAN, ref)
    return _Utterance(ref, start, end, next((i for i, (s, _) in enumerate(islands) if s >= end), 0))


def utterance_span(
    audio: np.ndarray, islands: tuple[tuple[int, int], ...], first_island: int, seconds: float
) -> tuple[int, int]:
    """(start, end) samples of whole stretches of speech from ``first_island`` on, until about
    ``seconds`` are filled; a talk with no real pause is cut at its quietest moment."""
    start = islands[first_island][0]
    last = first_island
    while last + 1 < len(islands) and islands[last][1] - start < seconds * RATE:
        last += 1
    end = min(islands[last][1] + _samples(UTTERANCE_TAIL_SECONDS), len(audio))
    if last + 1 < len(islands):
        end = min(end, islands[last + 1][0])
    target = start + _samples(seconds)
    if end - target > _samples(LONGEST_OVERRUN_SECONDS):
        # Talk without a real pause (a radio amateur's over): cut at its quietest moment.
        end = _quietest_sample(audio, target, target + _samples(LONGEST_OVERRUN_SECONDS))
    return start, end


def _quietest_sample(pcm: np.ndarray, start: int, stop: int) -> int:
    """The start of the quietest 50 ms in ``pcm[start:stop]``."""
    levels = frame_levels_dbov(pcm[start:stop], ONSET_FRAME)
    smoothed = np.convolve(levels, np.ones(10) / 10, mode="valid")
    return start + int(np.argmin(smoothed)) * ONSET_FRAME


def _speech_seconds(islands: tuple[tuple[int, int], ...]) -> float:
    return sum(end - start for start, end in islands) / RATE


def _render_tones(
    spec: SessionSpec, sources: SplitSources, library: _Library, rng: np.random.Generator
) -> tuple[_Timeline, dict[str, Any]]:
    timeline = _Timeline()
    gain = 10 ** (rng.uniform(*TONE_GAIN_DB) / 20)
    floor = HOLD_FLOORS_DBOV[int(rng.integers(len(HOLD_FLOORS_DBOV)))]
    meta: dict[str, Any] = {"tone": spec.tone, "floor_dbov": floor}

    def silence(low: float, high: float) -> None:
        timeline.add(np.zeros(_samples(rng.uniform(low, high))), AudioClass.SILENCE, "silence")

    silence(0.3, 1.0)
    if spec.tone in ("ringback", "busy"):
        ref = f"tone:{spec.tone}.wav"
        tone = library.audio(ref)
        count = _samples(spec.seconds)
        label = AudioClass.RINGING if spec.tone == "ringback" else AudioClass.BUSY
        timeline.add(np.resize(tone, count) * gain, label, ref)
    elif spec.tone == "sit":
        announcement = sources.announcement(sources.intercept)
        message = np.concatenate([library.audio(f"prompt:{p}") for p in announcement.prompts])
        message = message * _gain(active_level_dbov(message), rng.uniform(*ANNOUNCEMENT_DBOV))
        for _ in range(2):
            timeline.add(sit_tones(rng) * gain, AudioClass.SIT, "synthetic-sit")
            silence(0.1, 0.4)
            timeline.add(message, AudioClass.IVR_PROMPT, announcement.name)
            silence(0.5, 1.5)
        meta["intercept"] = announcement.name
    else:
        digits = []
        for _ in range(2):
            keys, burst = _dtmf_burst(library, rng)
            timeline.add(burst * gain, AudioClass.DTMF, "baresip-dtmf:" + keys)
            digits.append(keys)
            silence(1.0, 2.5)
        meta["digits"] = digits
    silence(1.0, 2.0)
    _add_floor(timeline, floor, rng)
    return timeline, meta


def _dtmf_burst(library: _Library, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """6-10 key presses of 80-200 ms, 60-200 ms apart: one stretch of DTMF."""
    keys = "".join(rng.choice(list(DTMF_FILES), size=int(rng.integers(6, 11))))
    parts = []
    for index, key in enumerate(keys):
        if index:
            parts.append(np.zeros(_samples(rng.uniform(0.06, 0.2))))
        tone = library.audio(f"tone:{DTMF_FILES[key]}")
        parts.append(tone[: _samples(rng.uniform(0.08, 0.2))])
    return keys, np.concatenate(parts)


def sit_tones(rng: np.random.Generator, dbov: float = -16.0) -> np.ndarray:
    """A North American SIT: three rising tones (one of the standard frequency/length codes)."""
    freqs = (float(rng.choice(SIT_FIRST_HZ)), float(rng.choice(SIT_SECOND_HZ)), SIT_THIRD_HZ)
    lengths = (float(rng.choice(SIT_SECONDS)), float(rng.choice(SIT_SECONDS)), SIT_SECONDS[1])
    amplitude = FULL_SCALE * 10 ** (dbov / 20) * np.sqrt(2)
    parts = []
    for freq, length in zip(freqs, lengths):
        t = np.arange(_samples(length)) / RATE
        ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.005)  # 5 ms edges, no clicks
        parts.append(amplitude * ramp * np.sin(2 * np.pi * freq * t))
    return np.concatenate(parts)


# -- signal helpers -----------------------------------------------------------------------------


def frame_levels_dbov(pcm: np.ndarray, frame: int) -> np.ndarray:
    """Level of every whole frame of ``frame`` samples, dBov (-120 for digital silence)."""
    count = len(pcm) // frame
    frames = np.asarray(pcm[: count * frame], dtype=np.float64).reshape(count, frame)
    power = np.mean(frames * frames, axis=1)
    return 10.0 * np.log10(np.maximum(power, 1e-12 * FULL_SCALE**2) / FULL_SCALE**2)


def active_level_dbov(pcm: np.ndarray) -> float:
    """The level of the loud part of speech or music: RMS of the 20 ms frames within 20 dB of the loud ones."""
    levels = frame_levels_dbov(pcm, 160)
    if len(levels) == 0:
        return -120.0
    active = levels[levels >= np.percentile(levels, 95) - 20.0]
    return float(10.0 * np.log10(np.mean(10.0 ** (active / 10.0))))


def speech_islands(pcm: np.ndarray) -> list[tuple[int, int]]:
    """Stretches of speech in a speech file as (first sample, end sample).

    A 5 ms frame is speech when it stands ``ONSET_ABOVE_FLOOR_DB`` over the file's quiet level
    and no more than ``ONSET_BELOW_PEAK_DB`` under its loud level. Bursts under 30 ms (clicks)
    are dropped, stretches closer than 250 ms join, and a stretch counts when it lasts 100 ms
    and reaches the loud level of the file's speech (a breath or a bump of noise does not).
    The first sample of a stretch is the start of its first frame above the threshold.
    """
    levels = frame_levels_dbov(pcm, ONSET_FRAME)
    if len(levels) == 0:
        return []
    loud = np.percentile(levels, 95)
    threshold = max(np.percentile(levels, 10) + ONSET_ABOVE_FLOOR_DB, loud - ONSET_BELOW_PEAK_DB)
    active = np.concatenate([[False], levels >= threshold, [False]])
    edges = np.flatnonzero(np.diff(active.astype(np.int8)))
    joined: list[list[int]] = []
    for start, end in zip(edges[::2], edges[1::2]):
        if end - start < CLICK_MAX_FRAMES:
            continue
        if joined and start - joined[-1][1] < ISLAND_JOIN_FRAMES:
            joined[-1][1] = end
        else:
            joined.append([start, end])
    return [
        (s * ONSET_FRAME, e * ONSET_FRAME)
        for s, e in joined
        if e - s >= ISLAND_MIN_FRAMES and np.max(levels[s:e]) >= loud - ISLAND_LOUD_BELOW_PEAK_DB
    ]


def line_noise(count: int, dbov: float, rng: np.random.Generator) -> np.ndarray:
    """A line or room noise floor: noise with a gentle low-frequency tilt, at ``dbov``."""
    tilted = np.convolve(rng.normal(size=count + 2), [1.0, 0.7, 0.4], mode="valid")
    return tilted / np.sqrt(np.mean(tilted * tilted)) * FULL_SCALE * 10 ** (dbov / 20)


def _add_floor(timeline: _Timeline, dbov: float | None, rng: np.random.Generator) -> None:
    """A channel noise under everything the timeline holds so far (nothing when ``dbov`` is None)."""
    if dbov is not None:
        timeline.map_samples(lambda samples: samples + line_noise(len(samples), dbov, rng))


def _gated(pcm: np.ndarray, gate_dbov: float, onset: int) -> np.ndarray:
    """A noise suppressor: nothing before the first word, then every 20 ms frame under
    ``gate_dbov`` zeroed (frames counted from the first word, so that it is never cut)."""
    out = np.array(pcm, dtype=np.float64)
    out[:onset] = 0.0
    speech = out[onset:]
    levels = frame_levels_dbov(speech, 160)
    frames = speech[: len(levels) * 160].reshape(-1, 160)
    frames[levels < gate_dbov] = 0.0
    return out


def _click(rng: np.random.Generator) -> np.ndarray:
    """A switching click: a few milliseconds of a decaying pulse."""
    peak = FULL_SCALE * 10 ** (rng.uniform(-20.0, -8.0) / 20)
    t = np.arange(40)
    return peak * np.exp(-t / 6.0) * np.cos(np.pi * t / 3.0)


def _dbov(pcm: np.ndarray) -> float:
    power = float(np.mean(np.square(pcm, dtype=np.float64))) if len(pcm) else 0.0
    return 10.0 * np.log10(max(power, 1e-12 * FULL_SCALE**2) / FULL_SCALE**2)


def _gain(level_dbov: float, target_dbov: float) -> float:
    return float(10 ** ((target_dbov - level_dbov) / 20))


def _samples(seconds: float) -> int:
    return int(round(seconds * RATE))


def _to_int16(pcm: np.ndarray) -> np.ndarray:
    return np.clip(np.round(pcm), -32768, 32767).astype(np.int16)
