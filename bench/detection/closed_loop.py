"""The closed loop: the app speaks to the far end, and the far end reacts, frame by frame.

The passive benchmark streams a pre-rendered session: its person never hears the app. The
product is interactive (``app.calls.handoff``): a suspected talker is greeted, a person answers
within a second or so, a recording carries on regardless. Here a session is rendered **while it
is streamed**: the real ``AudioPipeline`` hears it in 20 ms frames, its decisions drive the real
(pure) ``HandoffPolicy``, every ``Say`` plays the line's TTS audio (rendered once per text for the
whole run) and tells the pipeline (``our_speech_started`` / ``our_speech_ended``), and the far end
hears our words:

- the **hold** (music, announcements: the same draw as the passive session of the same spec)
  carries on regardless of what we say;
- the **person** (the pickup's speaker, from their own speech source) is *reactive* (most) or
  *passive* (``CvSpec.passive_share``: today's behaviour, never reacts). A reactive person
  follows the scripted plan of the passive session (first words, a pause, maybe more words)
  until we speak; while we speak they stop 0.2-0.6 s after our first word (at the quietest
  50 ms of that stretch: the syllable ends) and stay silent; after our words end they answer
  within 0.2-1.0 s with a short utterance (0.5-2 s of their source), then wait; 3.5-4.5 s of
  our silence after their words brings another short one ("hello?"), and 9-11 s of nobody
  answering since they began to wait makes them hang up: the session ends, the person is
  **lost** unless the user was rung before; all of it as we hear it, a round trip of the line
  (0.1-0.5 s, drawn per call) after our words: the person hears us late and we hear them late;
- **echo** (``CvSpec.echo_share`` of the sessions): the line returns our words 20-150 ms
  later, 15-35 dB down, through the call's codec, packet loss and G.711.

Causality. Every reaction of the person takes effect at least 0.2 s after the frame that caused
it, so the person's audio is committed ``HORIZON`` (60 ms) ahead of the frame the pipeline hears
and never changed afterwards; that lets the person's chain (their line floor, room, babble and
hiss beds; the noise gate and AGC, as per-frame state machines; the codec, streamed by
overlap-add, which looks 32 ms ahead) run incrementally with no delay. The hold does not depend
on us: it is rendered at once, through the trunk (AGC, codec, packet loss) as in the passive
session. The echo depends only on our words (known when a ``Say`` starts; cut at a ``Stop``):
through the codec as it is said. Packet loss is one pattern for the whole call, concealed per
frame (concealment is linear, so the hold's part and the streamed parts add up to the
concealment of the whole). One simplification: the codec is applied to the hold, the person
and the echo separately and the results summed (the codec imitation is not linear); they
overlap only in the music tail under a person's first words and when our echo meets a sound.
The sum goes through 8 kHz G.711 mu-law frame by frame.

``render_interactive(spec)`` builds the far end; ``run_interactive_session`` runs the loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.audio.types import AudioClass, Classification, HumanDetected, HumanRetracted, HumanSuspected
from app.calls.handoff import HandoffPolicy, HandoffSettings, Line, Say, Stop
from bench.detection import conditions as cond
from bench.detection.dataset import RATE, Segment, line_noise, telephone
from bench.detection.metrics import window_truth
from bench.detection.metrics_cv import CvResult, Event

FRAME = 160
HORIZON = 3 * FRAME  # the person's audio is committed this far ahead of the frame heard
PERSON_CAP_SECONDS = 30.0  # a pickup ends at the latest this long after the first word
END_AFTER_RING_SECONDS = 2.0  # ... or this long after the user was rung
RESUME_AFTER_FALSE_RING = 30.0  # as run.py: the wait goes on 30 s after a false ring

# The reactive person.
STOP_AFTER_OURS = (0.2, 0.6)
ANSWER_AFTER_OURS = (0.2, 1.0)
ANSWER_SECONDS = (0.5, 2.0)
HELLO_AFTER_SILENCE = (3.5, 4.5)
HELLO_SECONDS = (0.5, 1.5)
HANG_UP_AFTER = (9.0, 11.0)
FADE_SAMPLES = 80  # 10 ms: a cut word fades out

# The line's delay there and back (mouth to ear 50-250 ms each way on PSTN, mobile and VoIP
# trunks): a reaction to our words reaches us this much later than the person's own delay.
ROUND_TRIP_SECONDS = (0.1, 0.5)
LATENCY_STREAM = 29

# Echo.
ECHO_DELAY_SECONDS = (0.02, 0.15)
ECHO_LOSS_DB = (15.0, 35.0)

INTERACTION_STREAM = 23


# -- streaming conditions -----------------------------------------------------------------------


class StreamCodec:
    """``conditions.codec`` by streaming overlap-add: same frames, same arithmetic, no delay.

    Output sample ``j`` is final once the input up to ``j + 256`` has been fed (its last frame
    looks 32 ms ahead); ``ready`` says how far that is."""

    def __init__(self, length: int, low_hz: float, high_hz: float, step_db: float, floor_db: float) -> None:
        self.hop, self.size = cond.CODEC_HOP, cond.CODEC_FRAME
        self.x = np.zeros(length + self.hop + self.size + self.hop)
        self.out = np.zeros_like(self.x)
        self.filled = self.hop  # padded index up to which input was written
        self.next_start = 0
        self.window = np.sqrt(np.hanning(self.size + 1)[:-1])
        freqs = np.fft.rfftfreq(self.size, 1 / RATE)
        self.keep = (freqs >= low_hz) & (freqs <= high_hz)
        self.step_db, self.floor_db = step_db, floor_db

    def feed(self, samples: np.ndarray) -> None:
        self.x[self.filled : self.filled + len(samples)] = samples
        self.filled += len(samples)
        while self.next_start + self.size <= self.filled:
            s = self.next_start
            spectrum = np.fft.rfft(self.x[s : s + self.size] * self.window)
            spectrum[~self.keep] = 0.0
            mags = np.abs(spectrum)
            db = 20 * np.log10(np.maximum(mags, 1e-9))
            if self.step_db > 0:
                db = np.round(db / self.step_db) * self.step_db
            quantised = 10 ** (db / 20) * (db >= db.max() - self.floor_db) * (mags > 1e-9)
            synth = np.fft.irfft(quantised * np.exp(1j * np.angle(spectrum)), n=self.size) * self.window
            self.out[s : s + self.size] += synth
            self.next_start += self.hop

    @property
    def ready(self) -> int:
        return max(0, self.next_start - self.hop)

    def output(self, start: int, stop: int) -> np.ndarray:
        return self.out[start + self.hop : stop + self.hop]


class StreamGate:
    """``conditions.noise_gate`` frame by frame: closed before ``start`` and after a hangover."""

    def __init__(self, threshold_dbov: float, fill_dbov: float | None, rng: np.random.Generator, hangover: int = 3):
        self.threshold, self.fill_dbov, self.rng, self.hangover = threshold_dbov, fill_dbov, rng, hangover
        self.quiet_run = hangover
        self.closed_frames = 0

    def frame(self, x: np.ndarray, before_start: bool) -> np.ndarray:
        if not before_start:
            loud = cond.level_dbov(x) >= self.threshold
            self.quiet_run = 0 if loud else self.quiet_run + 1
        if before_start or self.quiet_run > self.hangover:
            self.closed_frames += 1
            if self.fill_dbov is None:
                return np.zeros(len(x))
            return cond.coloured_noise(len(x), self.fill_dbov, self.rng, alpha=0.5)
        return x


class StreamAgc:
    """``conditions.agc`` frame by frame (the gain ramps from the last frame's to this one's)."""

    def __init__(self, target_dbov: float, time_constant: float = 2.0, max_gain_db: float = 20.0,
                 min_gain_db: float = -10.0, max_step_db: float = 0.25, speech_above_dbov: float = -50.0):
        self.target, self.max_gain, self.min_gain, self.max_step = target_dbov, max_gain_db, min_gain_db, max_step_db
        self.speech_above = speech_above_dbov
        self.alpha = 1.0 - np.exp(-FRAME / RATE / time_constant)
        self.smoothed: float | None = None
        self.gain = 0.0

    def frame(self, x: np.ndarray) -> np.ndarray:
        level = cond.level_dbov(x)
        if level >= self.speech_above:
            power = 10 ** (level / 10)
            self.smoothed = power if self.smoothed is None else self.smoothed + self.alpha * (power - self.smoothed)
        before = self.gain
        if self.smoothed is not None:
            wanted = float(np.clip(self.target - 10 * np.log10(self.smoothed), self.min_gain, self.max_gain))
            self.gain += float(np.clip(wanted - self.gain, -self.max_step, self.max_step))
        return x * 10 ** (np.linspace(before, self.gain, len(x)) / 20)


# -- the person ---------------------------------------------------------------------------------


@dataclass
class Utterance:
    start: int  # session sample
    audio: np.ndarray  # at the voice's level
    kind: str  # "scripted" | "answer" | "hello"
    cut: int | None = None  # session sample where it was cut short

    @property
    def end(self) -> int:
        return self.start + len(self.audio) if self.cut is None else min(self.cut, self.start + len(self.audio))


class Person:
    """A far-end person: a plan of utterances that only changes ``>= 0.2 s`` after what changed it.

    ``reactive=False``: the scripted plan and nothing else (the passive benchmark's person)."""

    def __init__(
        self,
        source: np.ndarray,
        islands: tuple[tuple[int, int], ...],
        gain: float,
        scripted: list[tuple[int, int, int]],  # (session start, source from, source to)
        next_island: int,
        rng: np.random.Generator,
        *,
        reactive: bool,
    ) -> None:
        self.source, self.islands, self.gain, self.rng = source, islands, gain, rng
        self.reactive = reactive
        self.utterances = [Utterance(s, source[a:b] * gain, "scripted") for s, a, b in scripted]
        self.next_island = next_island
        self.hello_at: int | None = None
        self.hang_up_at: int | None = None
        self.waiting_since: int | None = None  # began to wait for an answer (None: answered)
        self.ours_from: int | None = None  # our words are heard since (None: we are silent)
        self.patience = 0  # samples of waiting before they hang up
        self.log: list[tuple[str, float]] = []
        if reactive and self.utterances:
            self._plan_waiting(self.utterances[0].end)
            self.hello_at = self.utterances[-1].end + _n(self.rng.uniform(*HELLO_AFTER_SILENCE))

    # what the person hears

    def hear_ours_start(self, at: int) -> None:
        self.ours_from = at
        if not self.reactive:
            return
        self.waiting_since = None
        self.hello_at = self.hang_up_at = None
        lo, hi = at + _n(STOP_AFTER_OURS[0]), at + _n(STOP_AFTER_OURS[1])
        cut = int(self.rng.uniform(lo, hi))
        for u in self.utterances:
            if u.end > lo and u.start < hi:  # talking (or about to) when they notice us
                quiet = _quietest(u.audio, max(lo - u.start, 0), min(hi - u.start, len(u.audio)))
                u.cut = max(u.start, u.start + quiet if quiet is not None else cut)
                self.log.append(("stopped", u.cut / RATE))
        self.utterances = [u for u in self.utterances if u.start < lo or u.cut is not None]

    def hear_ours_end(self, at: int) -> None:
        self.ours_from = None
        if not self.reactive:
            return
        start = at + _n(self.rng.uniform(*ANSWER_AFTER_OURS))
        self._say(start, self.rng.uniform(*ANSWER_SECONDS), "answer")

    def _say(self, start: int, seconds: float, kind: str) -> None:
        audio = self._take(seconds)
        self.utterances.append(Utterance(start, audio, kind))
        self.log.append((kind, start / RATE))
        self._plan_waiting(start + len(audio))

    def _plan_waiting(self, words_end: int) -> None:
        """After their words: "hello?" after a silence of ours, hang up after a long one."""
        if self.waiting_since is None:
            self.waiting_since = words_end
            self.patience = _n(self.rng.uniform(*HANG_UP_AFTER))
        self.hello_at = words_end + _n(self.rng.uniform(*HELLO_AFTER_SILENCE))
        self.hang_up_at = self.waiting_since + self.patience

    def _take(self, seconds: float) -> np.ndarray:
        """The next whole islands of their source, about ``seconds`` long (wrapping at the end)."""
        first = self.next_island % len(self.islands)
        start = self.islands[first][0]
        last = first
        while last + 1 < len(self.islands) and self.islands[last][1] - start < seconds * RATE:
            last += 1
        end = min(self.islands[last][1] + _n(0.1), len(self.source), start + _n(seconds + 1.0))
        if last + 1 < len(self.islands):
            end = min(end, self.islands[last + 1][0])
        self.next_island = last + 1
        return self.source[start:end] * self.gain

    # time passes

    def advance(self, now: int) -> None:
        """Planned reactions whose time came (planned >= 0.2 s ahead: audio up to now + HORIZON is final)."""
        if not self.reactive or self.ours_from is not None:
            return
        if self.talking(now):
            return
        if self.hello_at is not None and now >= self.hello_at - _n(0.2):
            at, self.hello_at = max(self.hello_at, now + _n(0.2)), None
            self._say(at, self.rng.uniform(*HELLO_SECONDS), "hello")

    def talking(self, at: int) -> bool:
        return any(u.start <= at < u.end for u in self.utterances)

    def hung_up(self, now: int) -> bool:
        return (
            self.reactive
            and self.hang_up_at is not None
            and self.ours_from is None
            and now >= self.hang_up_at
            and not self.talking(now)
        )

    def voice(self, start: int, stop: int) -> np.ndarray:
        out = np.zeros(stop - start)
        for u in self.utterances:
            a, b = max(u.start, start), min(u.end, stop)
            if a >= b:
                continue
            piece = u.audio[a - u.start : b - u.start].copy()
            if u.cut is not None:  # fade out the last 10 ms before the cut
                fade_from = u.cut - FADE_SAMPLES
                idx = np.arange(a, b)
                ramp = np.clip((u.cut - idx) / FADE_SAMPLES, 0.0, 1.0)
                piece = np.where(idx >= fade_from, piece * ramp, piece)
            out[a - start : b - start] += piece
        return out


def _quietest(audio: np.ndarray, lo: int, hi: int) -> int | None:
    """The start of the quietest 50 ms of ``audio[lo:hi]`` (the end of a syllable)."""
    if hi - lo < 400:
        return None
    frames = (hi - lo) // 40
    x = audio[lo : lo + frames * 40].reshape(frames, 40)
    levels = 10 * np.log10(np.mean(x * x, axis=1) + 1e-9)
    smoothed = np.convolve(levels, np.ones(10) / 10, mode="valid")
    return lo + int(np.argmin(smoothed)) * 40


def _n(seconds: float) -> int:
    return int(round(seconds * RATE))


# -- the far end --------------------------------------------------------------------------------


@dataclass
class FarEnd:
    """Everything the pipeline hears, rendered frame by frame; see the module docstring."""

    id: str
    fold: str
    kind: str
    hold: np.ndarray  # the hold through the trunk (float, before G.711), line-open onwards zero
    segments: list
    onset: float | None
    line_open: int | None
    person: Person | None
    person_kind: str | None  # "reactive" | "passive" | None
    beds: np.ndarray | None  # the person's line floor, room, babble, hiss (line-open onwards)
    gate: StreamGate | None
    agc: StreamAgc | None
    codec_params: dict[str, float] | None
    lost: np.ndarray  # per 20 ms frame of the session
    echo_delay: int | None  # samples (None: no echo on this line)
    echo_gain: float
    max_samples: int
    meta: dict[str, Any] = field(default_factory=dict)
    round_trip: int = 0  # samples from our words leaving to a reaction to them reaching us

    def __post_init__(self) -> None:
        self._echo: list[list[Any]] = []  # [start, audio, cut]
        self._ours: tuple[int, int] | None = None  # our words under way (samples)
        self._codec = StreamCodec(self.max_samples, **self.codec_params) if self.codec_params else None
        self._person_out = np.zeros(self.max_samples + HORIZON + FRAME) if self.person is not None else None
        self._person_done = self.line_open or 0  # person chain input rendered up to here
        self._last_good = np.zeros(FRAME)
        self._loss_run = 0

    # our words

    def ours_started(self, at: float, pcm: np.ndarray) -> None:
        sample = _n(at)
        self._ours = (sample, sample + len(pcm))
        heard = sample + self.round_trip  # what they do about it shows here on our side
        if self.person is not None and self.line_open is not None and heard >= self.line_open:
            self.person.hear_ours_start(heard)  # before the line opens, nobody is there to hear us
        if self.echo_delay is not None:
            x = np.asarray(pcm, dtype=np.float64) * self.echo_gain
            if self.codec_params:
                x = cond.codec(x, **self.codec_params)
            self._echo.append([sample + self.echo_delay, x, None])

    def ours_ended(self, at: float) -> None:
        sample = _n(at)
        self._ours = None
        if self.person is not None and self.person.ours_from is not None:
            self.person.hear_ours_end(sample + self.round_trip)
        if self._echo and self._echo[-1][2] is None:
            self._echo[-1][2] = sample + (self.echo_delay or 0)

    def echo(self, start: int, stop: int) -> np.ndarray:
        out = np.zeros(stop - start)
        for begin, audio, cut in self._echo:
            end = begin + len(audio) if cut is None else min(cut, begin + len(audio))
            a, b = max(begin, start), min(end, stop)
            if a < b:
                out[a - start : b - start] += audio[a - begin : b - begin]
        return out

    # frames

    def frame(self, index: int) -> np.ndarray:
        """The int16 frame ``index`` (20 ms) as the pipeline hears it."""
        start, stop = index * FRAME, (index + 1) * FRAME
        dynamic = self.echo(start, stop) if self._echo else None
        if self.person is not None and self.line_open is not None and stop > self.line_open:
            if start <= self.line_open < stop and self._ours is not None and self.person.ours_from is None:
                self.person.hear_ours_start(self.line_open)  # they pick up while we are talking
            self.person.advance(start)
            self._person_upto(stop + HORIZON)
            part = self._person_out[start - self.line_open if start >= self.line_open else 0 : stop - self.line_open]
            if start < self.line_open:
                part = np.concatenate([np.zeros(self.line_open - start), part])
            dynamic = part if dynamic is None else dynamic + part
        if dynamic is not None and index < len(self.lost):
            dynamic = self._conceal(dynamic, bool(self.lost[index]))
        hold = self.hold[start:stop]
        if len(hold) < FRAME:
            hold = np.concatenate([hold, np.zeros(FRAME - len(hold))])
        return telephone(hold if dynamic is None else hold + dynamic)

    def _conceal(self, x: np.ndarray, lost: bool) -> np.ndarray:
        if lost:
            self._loss_run += 1
            return np.zeros(FRAME) if self._loss_run > 5 else self._last_good * 10 ** (-3.0 * self._loss_run / 20)
        self._loss_run = 0
        self._last_good = x.copy()
        return x

    def _person_upto(self, stop: int) -> None:
        """Run the person's chain (voice + beds -> gate -> AGC -> codec) until output ``stop`` is final."""
        assert self.person is not None and self.line_open is not None and self.beds is not None
        onset = _n(self.onset or 0.0)
        need = stop - self.line_open + (cond.CODEC_FRAME if self._codec else 0)
        while (self._codec.ready if self._codec else self._person_done - self.line_open) < stop - self.line_open:
            a = self._person_done
            if a - self.line_open >= len(self.beds):
                x = np.zeros(FRAME)
            else:
                x = self.person.voice(a, a + FRAME) + _fit(self.beds[a - self.line_open : a - self.line_open + FRAME])
            if self.gate is not None:
                x = self.gate.frame(x, before_start=a + FRAME <= onset)
            if self.agc is not None:
                x = self.agc.frame(x)
            j = a - self.line_open
            if self._codec:
                self._codec.feed(x)
            elif j + FRAME <= len(self._person_out):
                self._person_out[j : j + FRAME] = x
            self._person_done += FRAME
            if self._person_done - self.line_open > need + 4 * FRAME:
                break
        if self._codec:
            ready = self._codec.ready
            lo = max(0, ready - 6 * FRAME)
            self._person_out[lo:ready] = self._codec.output(lo, ready)


def _fit(x: np.ndarray) -> np.ndarray:
    return x if len(x) == FRAME else np.concatenate([x, np.zeros(FRAME - len(x))])


# -- rendering a spec ---------------------------------------------------------------------------


def render_interactive(spec, manifest=None) -> FarEnd:
    """The far end of ``spec`` for the closed loop: the passive session's hold and person plan."""
    from bench.detection import sessions_cv as sc
    from bench.detection.sources import load_sources

    manifest = manifest or load_sources(spec.source)
    rng = np.random.default_rng(list(spec.seed))
    crng = np.random.default_rng([*spec.seed, sc.CONDITIONS_STREAM])
    irng = np.random.default_rng([*spec.seed, INTERACTION_STREAM])
    conditions = cond.draw_conditions(crng, person=spec.kind == "pickup")
    passive_share = getattr(spec, "passive_share", 0.15)
    echo_share = getattr(spec, "echo_share", 0.4)
    person_kind = None
    if spec.kind == "pickup":
        person_kind = "passive" if irng.random() < passive_share else "reactive"
    has_echo = irng.random() < echo_share
    echo_delay = _n(irng.uniform(*ECHO_DELAY_SECONDS)) if has_echo else None
    echo_loss = float(irng.uniform(*ECHO_LOSS_DB))
    round_trip = _n(np.random.default_rng([*spec.seed, LATENCY_STREAM]).uniform(*ROUND_TRIP_SECONDS))
    hold = sc._Hold(spec, manifest, rng)
    person = beds = gate = agc = None
    onset = line_open = None
    meta: dict[str, Any]
    if spec.kind == "pickup":
        timeline, tail, person_plan = _pickup_hold(spec, hold, rng)
        line_open = timeline.length
        speaker_items = manifest.items_of(spec.speaker or "")
        person_tl, onset_in_person, person_meta = sc._render_person(speaker_items, rng)
        onset_sample = line_open + onset_in_person
        onset = onset_sample / RATE
        babble_clips = sc._babble_clips(manifest, spec.others, conditions.babble_talkers, crng)
        room = sc._room_recording(manifest, spec.noise, crng) if conditions.room_dbov is not None else None
        length = onset_in_person + _n(PERSON_CAP_SECONDS) + HORIZON + 4 * FRAME
        beds, gate, agc, notes = _person_beds(
            length, conditions, crng, person_meta, onset_in_person, babble_clips, room
        )
        item = next(i for i in speaker_items if i.id == person_meta["utterances"][0]["item"])
        path = str(item.parts[0])
        source, islands = _speaker_source(speaker_items, item)
        gain = sc._gain(sc._active_dbov(path), person_meta["voice_dbov"])
        scripted, next_island = _scripted(person_tl, person_meta, line_open, islands)
        person = Person(source, islands, gain, scripted, next_island, irng, reactive=person_kind == "reactive")
        hold_source = timeline.samples()
        if tail is not None:
            hold_source = np.concatenate([hold_source, tail])
        max_samples = line_open + length
        segments = timeline.segments
        meta = {**hold.meta(), "speaker": spec.speaker, **person_plan, "line_open": round(line_open / RATE, 3),
                **{k: v for k, v in person_meta.items()}, "person_notes": notes}
    else:
        timeline = hold.play(spec.seconds)
        hold.add_floor(timeline)
        hold_source = timeline.samples()
        max_samples = len(hold_source)
        segments = timeline.segments
        meta = hold.meta()
    lost = cond.loss_pattern(max_samples // FRAME + 1, crng, loss_rate=conditions.loss_rate, mean_burst=conditions.loss_burst) \
        if conditions.loss_rate is not None else np.zeros(0, dtype=bool)
    lined = np.asarray(hold_source, dtype=np.float64)
    if conditions.agc_target_dbov is not None and conditions.agc_on_trunk:
        lined, _ = cond.agc(lined, conditions.agc_target_dbov)
    codec_params = cond.CODECS[conditions.codec] if conditions.codec else None
    if codec_params:
        lined = cond.codec(lined, **codec_params)
    if len(lost):
        lined = cond.conceal(lined, lost[: len(lined) // FRAME])
    meta = {
        "seed": list(spec.seed),
        "fold": spec.fold,
        "conditions": conditions.names(),
        "person_kind": person_kind,
        "echo": None if echo_delay is None else {"delay_s": round(echo_delay / RATE, 3), "loss_db": round(echo_loss, 1)},
        "round_trip_s": round(round_trip / RATE, 3),
        **meta,
    }
    return FarEnd(
        id=spec.id, fold=spec.fold, kind=spec.kind, hold=lined, segments=segments, onset=onset,
        line_open=line_open, person=person, person_kind=person_kind, beds=beds, gate=gate, agc=agc,
        codec_params=codec_params, lost=lost, echo_delay=echo_delay, echo_gain=10 ** (-echo_loss / 20),
        max_samples=max_samples, meta=meta, round_trip=round_trip,
    )


def _pickup_hold(spec, hold, rng):
    """``sessions_cv._render_pickup`` up to the person (the same draws): the hold and the music tail."""
    from bench.detection import sessions_cv as sc
    from app.audio.types import AudioClass
    from bench.detection.dataset import _click

    timeline = hold.play(spec.seconds)
    context = "music"
    if rng.random() < sc.PICKUP_AFTER_ANNOUNCEMENT_CHANCE:
        context = "announcement"
        hold.announce(timeline, "alone", resume=False)
    hold.add_floor(timeline)
    hold_end = timeline.seconds
    transition = str(rng.choice(sc.TRANSITIONS))
    if context == "announcement" and transition in ("fade", "tail"):
        transition = "gap"
    if transition == "click":
        timeline.add(_click(rng), AudioClass.SILENCE, "pickup-click")
    if transition in ("click", "gap"):
        timeline.add(np.zeros(_n(rng.uniform(*sc.PICKUP_GAP_SECONDS))), AudioClass.SILENCE, "pickup-gap")
    if transition == "fade":
        fade = _n(rng.uniform(*sc.FADE_SECONDS))
        tail = hold.bed(fade / RATE) * np.linspace(1.0, 0.0, fade) ** 2
        timeline.add(tail, AudioClass.MUSIC, "music-fade-out")
        timeline.add(np.zeros(_n(rng.uniform(*sc.PICKUP_GAP_SECONDS))), AudioClass.SILENCE, "pickup-gap")
    tail = None
    if transition == "tail":  # drawn after the person in the passive session; here before: same law
        count = _n(rng.uniform(*sc.TAIL_SECONDS))
        tail = hold.bed(count / RATE) * np.linspace(1.0, 0.0, count) ** 2
    return timeline, tail, {"context": context, "transition": transition, "hold_end": round(hold_end, 3)}


SPEAKER_SOURCE_MAX_SECONDS = 120.0


def _speaker_source(items, first) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """What the person may say: their first recording, then the speaker's others that hold words
    (at its level, after a short gap), up to ``SPEAKER_SOURCE_MAX_SECONDS``. A person never says
    the same audio twice; a source of one short clip that wrapped would replay it, and the
    detector rightly takes a replay for a recording."""
    from bench.detection import sessions_cv as sc

    first_path = str(first.parts[0])
    level = sc._active_dbov(first_path)
    start = next(i for i, item in enumerate(items) if item.id == first.id)
    gap = np.zeros(_n(0.5))
    parts: list[np.ndarray] = []
    islands: list[tuple[int, int]] = []
    offset = 0
    for step in range(len(items)):
        path = str(items[(start + step) % len(items)].parts[0])
        if step and not (sc._islands(path) and sc._speaks(path)):
            continue
        audio = sc._audio(path) * (1.0 if step == 0 else sc._gain(sc._active_dbov(path), level))
        islands += [(offset + a, offset + b) for a, b in sc._islands(path)]
        parts += [audio, gap]
        offset += len(audio) + len(gap)
        if offset >= _n(SPEAKER_SOURCE_MAX_SECONDS):
            break
    return np.concatenate(parts), tuple(islands)


def _scripted(person_tl, person_meta, line_open, islands):
    """The passive plan's utterances as (session start, source from, source to), and the next island."""
    plan = []
    starts = [s for s, _, label, _ in person_tl._labels if label.value == "LIVE_HUMAN"]
    last_to = 0
    for start, u in zip(starts, person_meta["utterances"]):
        plan.append((line_open + start, u["from_sample"], u["to_sample"]))
        last_to = u["to_sample"]
    next_island = next((i for i, (s, _) in enumerate(islands) if s >= last_to), 0)
    return plan, next_island


def _person_beds(length, conditions, rng, person_meta, onset, babble_clips, room):
    """The person's additive noises (line floor, room, babble, hiss) and their gate and AGC."""
    floor = person_meta["human_floor_dbov"]
    voice = person_meta["voice_dbov"]
    x = line_noise(length, floor, rng)
    notes: dict[str, Any] = {}
    if conditions.room_dbov is not None:
        if room is not None and len(room):
            x += cond._rms_scale(cond.loop_to(room, length, rng), conditions.room_dbov)
            notes["room"] = "recording"
        else:
            x += cond.coloured_noise(length, conditions.room_dbov, rng, conditions.room_alpha)
    if conditions.babble_snr_db is not None:
        x += cond.babble(babble_clips or [], length, voice - conditions.babble_snr_db, rng)
    if conditions.hiss_dbov is not None:
        x += cond.hiss(length, conditions.hiss_dbov, rng)
    gate = agc = None
    if conditions.gate:
        lead = cond.level_dbov(x[: max(onset, 1)]) if onset > FRAME else floor
        threshold = min(max(max(lead, floor) + conditions.gate_above_floor_db, -55.0), voice - 15.0)
        fill = conditions.comfort_dbov if conditions.gate == "comfort" else None
        gate = StreamGate(threshold, fill, rng)
        notes["gate_dbov"] = round(threshold, 1)
    if conditions.agc_target_dbov is not None and not conditions.agc_on_trunk:
        agc = StreamAgc(conditions.agc_target_dbov)
    return x, gate, agc, notes


# -- the loop -----------------------------------------------------------------------------------


def run_interactive_session(
    far: FarEnd,
    detector,
    speech: Callable[[str], np.ndarray],
    *,
    settings: HandoffSettings = HandoffSettings(),
) -> CvResult:
    """Stream ``far`` through ``detector`` with the handoff policy speaking back; see the module docstring."""
    detector.reset_for_hold()
    policy = HandoffPolicy(settings)
    events: list[Event] = []
    windows: dict[str, int] = {}
    heard: list[tuple[float, float, str]] = []
    cpu = 0.0
    onset = far.onset
    resume_at: float | None = None
    ring_t: float | None = None
    speaking: tuple[Line, float, float] | None = None  # line, start, planned end
    end_reason = "end"
    frames = far.max_samples // FRAME
    t_end = 0.0

    def said_end(at: float) -> None:
        nonlocal speaking
        assert speaking is not None
        detector.our_speech_ended(at)
        policy.on_said(speaking[0], at)
        far.ours_ended(at)
        events.append(Event("said_end", at, rule=speaking[0].value))
        speaking = None

    for index in range(frames):
        t = index * FRAME / RATE
        now = t + FRAME / RATE
        t_end = now
        if resume_at is not None and t >= resume_at:
            if speaking is not None:
                said_end(t)
            detector.reset_for_hold()
            policy = HandoffPolicy(settings)
            resume_at = None
        pcm = far.frame(index)
        started = time.process_time()
        outputs = detector.push(pcm, t)
        cpu += time.process_time() - started
        actions: list[Say | Stop] = []
        for output in outputs:
            if isinstance(output, Classification):
                heard.append((output.t_start, output.t_end, output.audio_class.value))
            elif isinstance(output, HumanDetected):
                events.append(Event("detected", output.t, rule=_rule(output.evidence)))
                actions += policy.on_detected(output)
                if onset is None or output.t < onset:
                    resume_at = output.t + RESUME_AFTER_FALSE_RING
                elif ring_t is None:
                    ring_t = output.t
                actions += policy.on_connecting()  # the user's phone rings
            elif isinstance(output, HumanSuspected):
                events.append(Event("suspected", output.t, rule=_rule(output.evidence)))
                actions += policy.on_suspected(output)
            elif isinstance(output, HumanRetracted):
                events.append(Event("retracted", output.t, suspected_t=output.suspected_t, rule=_rule(output.evidence)))
                actions += policy.on_retracted(output)
        if speaking is not None and now >= speaking[2]:
            said_end(speaking[2])
        actions += policy.tick(now, bool(getattr(detector, "far_end_speaking", False)))
        for action in actions:
            if isinstance(action, Stop):
                if speaking is not None:
                    events.append(Event("stopped", now, rule=action.reason[:40]))
                    said_end(now)
            elif speaking is None:
                audio = speech(action.text)
                detector.our_speech_started(now, audio)
                far.ours_started(now, audio)
                speaking = (action.line, now, now + len(audio) / RATE)
                events.append(Event("said", now, rule=action.line.value))
        if far.person is not None and far.person.hung_up(_n(now)):
            events.append(Event("hangup", now))
            end_reason = "hangup"
            break
        if ring_t is not None and now >= ring_t + END_AFTER_RING_SECONDS and now >= (onset or 0) + 10.0:
            end_reason = "rung"
            break
        if onset is not None and now >= onset + PERSON_CAP_SECONDS:
            end_reason = "cap"
            break
    if speaking is not None:
        said_end(t_end)
    segments = far.segments + _person_segments(far, t_end)
    for t0, t1, predicted in heard:
        truth = window_truth(segments, t0, t1)
        if truth is not None:
            key = f"{truth.value}>{predicted}"
            windows[key] = windows.get(key, 0) + 1
    meta = {k: far.meta[k] for k in ("conditions", "context", "transition", "speaker", "music", "voices",
                                      "spontaneous", "person_kind", "echo") if k in far.meta}
    meta["end"] = end_reason
    meta["mode"] = "interactive"
    if far.person is not None:
        meta["person_log"] = [(k, round(x, 2)) for k, x in far.person.log]
    return CvResult(
        session_id=far.id,
        fold=far.fold,
        kind=far.kind,
        duration=t_end,
        human_onset=onset,
        events=tuple(events),
        cpu_seconds=cpu,
        windows=windows,
        meta=meta,
    )


def _person_segments(far: FarEnd, t_end: float) -> list[Segment]:
    """The person's words as they were said (LIVE_HUMAN), the line between them (SILENCE)."""
    if far.person is None or far.line_open is None:
        return []
    spans = sorted((u.start, u.end) for u in far.person.utterances if u.end > u.start)
    segments, at = [], far.line_open
    for a, b in spans:
        if a > at:
            segments.append(Segment(at / RATE, a / RATE, AudioClass.SILENCE, "line-floor"))
        segments.append(Segment(max(a, at) / RATE, b / RATE, AudioClass.LIVE_HUMAN, "person"))
        at = max(at, b)
    if t_end * RATE > at:
        segments.append(Segment(at / RATE, t_end, AudioClass.SILENCE, "line-floor"))
    return segments


def _rule(evidence: dict[str, Any]) -> str | None:
    rule = evidence.get("rule") if isinstance(evidence, dict) else None
    return None if rule is None else str(rule)


# -- the lines' audio ---------------------------------------------------------------------------


def render_lines(settings: HandoffSettings = HandoffSettings()) -> dict[str, np.ndarray]:
    """Every line the policy may say, rendered once with the local TTS (Piper) for the whole run."""
    from app.speech import tts_from_settings

    tts = tts_from_settings("piper")
    texts = (settings.greeting, settings.intro, settings.probe, settings.hold_on)
    return {text: np.asarray(tts.synthesize(text, cache=True), dtype=np.int16) for text in texts}
