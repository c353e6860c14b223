"""Is the speech on the line a recording or a live person? Independent cues, one decision.

Pure and streaming: the pipeline feeds one observation per 20 ms frame (level, flatness,
Silero probability, spectrum) and one per analysis window (its class); ``HumanDetected`` comes
out once, with the evidence of every cue.

Why this is hard: on real holds the first speech after music is far more often an announcement
than a person, and the decision is revoked never, so it must be right. What tells them apart,
early:

- **Channel change** (``live_floor``). An announcement comes from the same PBX path as the
  music: a clean or faint digital floor, and the file's own pauses. A person's headset line
  opens on its own noise floor *before the first word* and that same floor fills their pauses.
  The cue needs both: a steady, noise-like floor in the lead-in between the end of the music
  and the first word, louder than anything the hold channel carried (``live_floor_min_dbov``
  and the floor learned in the hold's own gaps), and pauses after the first word on that floor
  (a recording with a noisy floor of its own pauses on *its* floor, not on the gap's).
- **Noise-suppressed line** (``gated_line``). A line whose noise suppressor gates it opens on
  digital silence, and its pauses between words drop from speech level to exact zero within
  one 20 ms frame. Recordings fade: no corpus prompt has one such closure (measured through
  mu-law at two levels).
- **Turn-taking** (``turn_taking``). A person says something short and waits for an answer: a
  pause of ``turn_pause_seconds`` (prompts' inner pauses are <= 0.52 s in the whole corpus)
  and more words, or a silence of ``waiting_seconds`` with no music coming back: one steady
  floor, an open microphone's (louder than the hold channel's) or a gate's digital silence
  right after a closure (recordings fade out; music may come back digitally silent).
- **Transcript** (``transcript``), when speech-to-text is on: "hi, this is ...", "how can I
  help" speak for a person; "your call is important", "press 1", "estimated wait" for a
  recording (a veto).
- **Active probe** (``probe_reply``): for a run that stopped without a verdict the pipeline may
  ask the session to say a short question; speech starting soon after it ends is contingent on
  it, which no recording is.

Runs: a run is a stretch of speech with its pauses. When speech resumes after a pause whose
floor differs from the run's earlier pauses (another noise floor, or a gate's digital silence
after an audible floor) a new talker has the line: the utterance starts a run of its own, so
that the vetoes of an announcement do not carry over to the person who speaks right after it.

Vetoes, any one of which blocks a decision for the run: **music under the speech** (a bed:
steady harmonic structure in the quieter frames), **music resuming** right after it (the run was
an announcement: its fingerprint is kept), **repetition** (the run's landmark hashes match a
recording heard earlier in the call, ``app.audio.fingerprint``) and **recording phrases** in the
transcript.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.audio.features import FrameFeatures, analyse_window
from app.audio.fingerprint import Match, RecordingMemory, landmarks
from app.audio.types import AudioClass, HumanDetected

FRAME_SECONDS = 0.02
SPEECH_PROB = 0.5  # a Silero step at or above this is speech
ZERO_DBOV = -90.0  # digital silence (mu-law's smallest step is about -78 dBov)
# A lead-in or pause frame this quiet belongs to a floor, not to the voice.
QUIET_MAX_DBOV = -40.0
# The hold channel's own floor shows in gaps this quiet (music's soft passages are louder).
HOLD_GAP_MAX_DBOV = -58.0
# Silero's verdict trails a new word's first loud frames by at most this many frames.
SILERO_LAG_FRAMES = 6
# A voice frame above this falling straight to digital silence is a noise gate closing.
GATE_FROM_DBOV = -56.0


@dataclass(frozen=True)
class HumanSettings:
    live_floor_min_dbov: float = -64.0  # an open microphone's floor; a PBX's digital path is quieter
    live_floor_max_dbov: float = -40.0
    floor_steady_db: float = 4.0  # lead-in frames within this of their median are one floor
    floor_min_flatness: float = 0.08  # noise-like, not a tonal tail of music
    lead_floor_frames: int = 5  # 100 ms of floor before the first word
    long_lead_frames: int = 10  # a lead this long needs no pause to confirm it
    pause_floor_frames: int = 2  # pauses after the first word on the lead's floor
    pause_match_db: float = 6.0
    above_hold_floor_db: float = 3.0
    gate_closures: int = 1  # after music and digital silence
    gate_closures_after_pause: int = 2  # inside a run: a recording's own digital gap is rarer than one
    min_decision_seconds: float = 0.4  # after the first word
    min_speech_seconds: float = 0.3
    turn_pause_seconds: float = 0.8
    waiting_seconds: float = 1.8
    floor_spread_db: float = 10.0  # a waiting line's quiet frames stay within this of their median
    max_waiting_run_seconds: float = 10.0  # a short utterance waits; an announcement runs on
    music_resume_seconds: float = 0.6  # loud non-speech this long ends a run: music is back
    run_end_quiet_seconds: float = 6.0
    bed_min_steadiness: float = 0.15
    check_every_frames: int = 25  # bed and fingerprint checks (the costly ones)
    decide_every_frames: int = 5
    utterance_pause_seconds: float = 0.2  # a pause this long may hand over to another source
    fingerprint_seconds: float = 1.5  # the run's last stretch matched against known recordings
    probe_after_quiet_seconds: float = 0.6
    probe_reply_seconds: float = 2.5


HUMAN_PHRASES = re.compile(
    r"\b(this is \w+|my name is|speaking|how (can|may) i (help|assist)|what can i do for you|"
    r"thank(s| you) for (holding|waiting)|sorry (for|about) the wait|are you there|hello\?)",
    re.IGNORECASE,
)
RECORDING_PHRASES = re.compile(
    r"\b(your call is (very )?important|press (\d|one|two|three|four|five|six|seven|eight|nine|zero|star|pound)|"
    r"estimated (wait|hold)|(calls?|callers?) (ahead|waiting)|next available|please (stay on the line|continue to hold|hold)|"
    r"all (of )?our (agents|representatives)|in the order (it was|they were) received|for quality|"
    r"you are (now )?(caller|number))",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ProbeRequest:
    """Ask the session to say a short question now (TTS) and report it with ``probe_played``."""

    t: float
    reason: str


@dataclass
class _Run:
    """One stretch of speech (pauses allowed) and what is known about its source."""

    onset_t: float
    lead_levels: np.ndarray
    lead_flatness: np.ndarray
    levels: list[float] = field(default_factory=list)
    flatness: list[float] = field(default_factory=list)
    spectra: list[np.ndarray] = field(default_factory=list)
    zcr: list[float] = field(default_factory=list)
    peak_dbov: float = -120.0
    speech_frames: int = 0
    last_speech_t: float = 0.0
    quiet_since: float | None = None
    loud_other_frames: int = 0  # consecutive loud frames Silero does not call speech
    closures: int = 0
    turns: int = 0
    bed: bool = False
    bed_steadiness: float = 0.0
    repeat: Match | None = None
    recording_phrase: str | None = None
    human_phrase: str | None = None
    probe_t_end: float | None = None
    probe_requested: bool = False
    probe_reply: bool = False
    frames_seen: int = 0
    utterance_start: int = 0  # index in ``levels`` of the newest utterance (after a pause)
    last_speech_index: int | None = None  # index in ``levels`` of the newest speech frame
    prior_floor_dbov: float | None = None  # the run's pause floor before the newest utterance
    split_from_run: bool = False  # began as a new channel after a pause in an earlier run

    def add(self, level: float, flatness: float, spectrum: np.ndarray, zcr: float) -> None:
        self.levels.append(level)
        self.flatness.append(flatness)
        self.spectra.append(spectrum)
        self.zcr.append(zcr)

    def age(self, t: float) -> float:
        return t - self.onset_t


class HumanDetector:
    """Fuses the cues into one HUMAN_DETECTED per hold (see the module docstring)."""

    def __init__(
        self,
        settings: HumanSettings = HumanSettings(),
        *,
        probe: Callable[[ProbeRequest], None] | None = None,
        sample_rate: int = 8000,
    ) -> None:
        self.settings = settings
        self.sample_rate = sample_rate
        self._probe = probe
        self.recordings = RecordingMemory(min_votes=30, min_share=0.08, min_prominence=3.0)
        self._recent: deque[tuple[float, float, np.ndarray, float]] = deque(maxlen=75)  # the last 1.5 s of frames
        self._hold_floor: deque[float] = deque(maxlen=500)  # quiet frames of the hold's own gaps
        self._pending_gap: list[float] = []  # quiet frames not yet known to belong to the hold
        self._loud_after_gap = 0
        self.decided = False
        self.on_hold = False
        self.announcements = 0
        self.run: _Run | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def reset(self) -> None:
        """A new wait: forget the current run and the decision; keep known recordings and the hold floor."""
        self._end_run(remember=False)
        self.decided = False
        self.on_hold = False
        self.announcements = 0

    # -- inputs ---------------------------------------------------------------------------

    def push_frame(
        self, t: float, level: float, flatness: float, speech_prob: float, spectrum: np.ndarray, zcr: float
    ) -> HumanDetected | None:
        s = self.settings
        speech = speech_prob >= SPEECH_PROB
        run = self.run
        if run is None:
            if not speech:
                self._observe_gap(level)
                self._recent.append((level, flatness, spectrum, zcr))
                return None
            run = self.run = self._start_run(t)
        run.add(level, flatness, spectrum, zcr)
        self._recent.append((level, flatness, spectrum, zcr))
        run.frames_seen += 1
        if level < ZERO_DBOV and len(run.levels) >= 2 and run.levels[-2] >= ZERO_DBOV:
            # The gate's frames are not ours: it may close inside the frame before this one.
            if max(run.levels[-3:-1]) >= GATE_FROM_DBOV:
                run.closures += 1
        if speech:
            # Silero is a step or two late on a new word, so the pause is counted in quiet frames
            # since the last speech frame (its loud first frames are not "music coming back").
            pause = self._pause_seconds(run)
            if pause >= s.utterance_pause_seconds:
                run = self._new_utterance(run, t)
            if pause >= s.turn_pause_seconds and not run.bed and run.speech_frames:
                run.turns += 1
                if run.probe_t_end is not None and 0.0 <= t - run.probe_t_end <= s.probe_reply_seconds:
                    run.probe_reply = True
            run.speech_frames += 1
            run.last_speech_index = len(run.levels) - 1
            run.last_speech_t = t + FRAME_SECONDS
            run.peak_dbov = max(run.peak_dbov, level)
            run.quiet_since = None
            run.loud_other_frames = 0
        else:
            # Loud without speech is music (or noise) coming back; it may dip between notes.
            loud = level >= QUIET_MAX_DBOV
            run.loud_other_frames = run.loud_other_frames + 1 if loud else max(0, run.loud_other_frames - 1)
            if not loud and run.quiet_since is None:
                run.quiet_since = t
            if loud:
                run.quiet_since = None
            if run.loud_other_frames * FRAME_SECONDS >= s.music_resume_seconds:
                self._announcement_over(t)
                return None
            if run.quiet_since is not None and t - run.quiet_since >= s.run_end_quiet_seconds:
                self._end_run(remember=not self.decided)
                return None
        if self.decided:
            return None
        if run.frames_seen % s.check_every_frames == 0:
            self._check_recording(run)
        self._maybe_probe(run, t)
        if run.frames_seen % s.decide_every_frames:
            return None
        return self._decide(run, t + FRAME_SECONDS)

    def on_window(self, audio_class: AudioClass) -> None:
        if audio_class == AudioClass.MUSIC:
            self.on_hold = True

    def on_transcript(self, text: str, t_start: float, t_end: float) -> None:
        run = self.run
        if run is None or t_end < run.onset_t - 0.5:
            return
        recording = RECORDING_PHRASES.search(text)
        if recording:
            run.recording_phrase = recording.group(0)
            return
        human = HUMAN_PHRASES.search(text)
        if human:
            run.human_phrase = human.group(0)

    def probe_played(self, t_start: float, t_end: float) -> None:
        """The session said the probe question between these stream times."""
        if self.run is not None:
            self.run.probe_t_end = t_end

    def source_class(self) -> AudioClass:
        """What the current speech is judged to be: LIVE_HUMAN, IVR_PROMPT or SPEECH (undecided)."""
        run = self.run
        if self.decided:
            return AudioClass.LIVE_HUMAN
        if run is None:
            return AudioClass.IVR_PROMPT if self.on_hold else AudioClass.SPEECH
        if run.bed or run.repeat is not None or run.recording_phrase:
            return AudioClass.IVR_PROMPT
        if self._live_floor(run)[0] or self._gated(run)[0]:
            return AudioClass.LIVE_HUMAN
        # On hold, speech after music is far more often an announcement than a person.
        return AudioClass.IVR_PROMPT if self.on_hold else AudioClass.SPEECH

    # -- runs -----------------------------------------------------------------------------

    def _start_run(self, t: float) -> _Run:
        """Speech began (this frame, which is in ``_recent`` next): find its first loud frame
        and the quiet lead-in before it."""
        history = list(self._recent)
        levels = np.array([h[0] for h in history]) if history else np.zeros(0)
        flatness = np.array([h[1] for h in history]) if history else np.zeros(0)
        # Silero is a step or few late: the voice began at the start of the loud frames before now.
        start = len(levels)
        while start > 0 and len(levels) - start < 25 and levels[start - 1] >= QUIET_MAX_DBOV:
            start -= 1
        lead_start = start
        while lead_start > 0 and start - lead_start < 50 and levels[lead_start - 1] < QUIET_MAX_DBOV:
            lead_start -= 1
        run = _Run(
            onset_t=t - (len(levels) - start) * FRAME_SECONDS,
            lead_levels=levels[lead_start:start],
            lead_flatness=flatness[lead_start:start],
        )
        # The loud frames already heard belong to the run.
        for level, flat, spectrum, zcr in history[start:]:
            run.add(level, flat, spectrum, zcr)
            run.peak_dbov = max(run.peak_dbov, level)
        self._pending_gap.clear()
        self._loud_after_gap = 0
        return run

    @staticmethod
    def _pause_seconds(run: _Run) -> float:
        if run.last_speech_index is None:
            return 0.0
        quiet = np.array(run.levels[run.last_speech_index + 1 : -1]) < QUIET_MAX_DBOV
        loud_before_word = len(quiet) - (int(np.flatnonzero(quiet)[-1]) + 1) if quiet.any() else len(quiet)
        if loud_before_word > SILERO_LAG_FRAMES:
            # Sound that Silero did not call speech came first (music coming back): no new word.
            return 0.0
        return float(np.count_nonzero(quiet)) * FRAME_SECONDS

    def _new_utterance(self, run: _Run, t: float) -> _Run:
        """Speech again after a pause: the pause is the new utterance's lead-in. A person who
        picks up right after an announcement speaks on a new channel; the cue compares the
        pause with the floor of the run's earlier pauses (the same channel gives the same floor).
        On such a change the utterance starts a run of its own: what was known about the
        earlier speech (a replay, a music bed) says nothing about the new talker."""
        levels = np.array(run.levels)
        assert run.last_speech_index is not None
        lead_start = run.last_speech_index + 1
        # The new word's loud first frames came before Silero's verdict: they are not lead-in.
        voice_start = len(levels) - 1
        while (
            voice_start > lead_start
            and len(levels) - voice_start <= SILERO_LAG_FRAMES
            and levels[voice_start - 1] >= QUIET_MAX_DBOV
        ):
            voice_start -= 1
        earlier = levels[run.utterance_start : lead_start]
        quiet = earlier[(earlier < run.peak_dbov - 20.0) & (earlier >= ZERO_DBOV)]
        prior_floor = float(np.median(quiet)) if len(quiet) >= self.settings.lead_floor_frames else None
        lead_levels = levels[lead_start:voice_start]
        lead_flatness = np.array(run.flatness[lead_start:voice_start])
        if self._channel_changed(lead_levels, prior_floor, earlier):
            self._end_run(remember=not self.decided)
            onset = t - (len(levels) - voice_start) * FRAME_SECONDS
            new = _Run(onset_t=onset, lead_levels=lead_levels, lead_flatness=lead_flatness)
            for i in range(voice_start, len(levels)):
                new.add(run.levels[i], run.flatness[i], run.spectra[i], run.zcr[i])
                new.peak_dbov = max(new.peak_dbov, run.levels[i])
            new.prior_floor_dbov = prior_floor
            new.split_from_run = True
            new.probe_t_end = run.probe_t_end
            self.run = new
            return new
        run.prior_floor_dbov = prior_floor
        run.lead_levels = lead_levels
        run.lead_flatness = lead_flatness
        run.utterance_start = voice_start
        run.closures = 0
        return run

    def _channel_changed(self, lead: np.ndarray, prior_floor: float | None, earlier: np.ndarray) -> bool:
        """The pause before this utterance sits on another floor than the run's earlier pauses."""
        s = self.settings
        audible = lead[(lead >= ZERO_DBOV) & (lead < QUIET_MAX_DBOV)]
        if len(audible) >= s.lead_floor_frames:
            floor = float(np.median(audible))
            steady = np.count_nonzero(np.abs(audible - floor) <= s.floor_steady_db) >= 0.7 * len(audible)
            if not steady or floor < s.live_floor_min_dbov:
                return False
            if prior_floor is None:
                # The earlier speech paused on digital silence (or not at all): a noisy line is new.
                return bool(np.count_nonzero(earlier < ZERO_DBOV) >= 2)
            return abs(floor - prior_floor) >= s.above_hold_floor_db
        # A gated line's digital silence after pauses on an audible floor.
        return prior_floor is not None and np.count_nonzero(lead < ZERO_DBOV) >= s.lead_floor_frames

    def _observe_gap(self, level: float) -> None:
        """Learn the hold channel's floor from its gaps: a steady quiet stretch that the hold's
        sound (not speech: a run would have started) follows for 200 ms."""
        if ZERO_DBOV <= level < HOLD_GAP_MAX_DBOV:
            if self._loud_after_gap:
                self._pending_gap.clear()
                self._loud_after_gap = 0
            self._pending_gap.append(level)
            del self._pending_gap[:-100]
            return
        if level < ZERO_DBOV:
            self._pending_gap.clear()
            return
        self._loud_after_gap += 1
        if self._loud_after_gap >= 10:
            gap = np.array(self._pending_gap)
            if len(gap) >= 10 and np.std(gap) <= 3.0:
                self._hold_floor.extend(gap.tolist())
            self._pending_gap.clear()
            self._loud_after_gap = 0

    def _announcement_over(self, t: float) -> None:
        self.announcements += 1
        self._end_run(remember=True)

    def _end_run(self, *, remember: bool) -> None:
        run = self.run
        if run is not None and remember and len(run.spectra) > 10:
            self.recordings.remember(landmarks(np.array(run.spectra[-1500:]), self.sample_rate))
        self.run = None

    def _check_recording(self, run: _Run) -> None:
        s = self.settings
        if len(run.spectra) < 25:
            return
        spectra = np.array(run.spectra[-int(s.fingerprint_seconds / FRAME_SECONDS) :])
        if run.repeat is None and len(self.recordings):
            run.repeat = self.recordings.matches(landmarks(spectra, self.sample_rate))
        if not run.bed:
            count = len(spectra)
            frames = FrameFeatures(np.array(run.levels[-count:]), np.array(run.zcr[-count:]), spectra)
            features, _ = analyse_window(frames, self.sample_rate)
            run.bed_steadiness = features.pause_steadiness
            run.bed = features.pause_steadiness >= s.bed_min_steadiness

    # -- cues -----------------------------------------------------------------------------

    def _hold_floor_dbov(self) -> float | None:
        return float(np.median(self._hold_floor)) if len(self._hold_floor) >= 10 else None

    def _live_floor(self, run: _Run) -> tuple[bool, dict[str, Any]]:
        s = self.settings
        # The lead's newest unbroken stretch of audible quiet: the line the words came on
        # (before it: the tail of what played, a click, a gap of digital silence).
        lead = run.lead_levels
        audible = (lead >= ZERO_DBOV) & (lead < QUIET_MAX_DBOV)
        broken = np.flatnonzero(~audible)
        if len(broken):
            audible[: broken[-1] + 1] = False
        if np.count_nonzero(audible) < s.lead_floor_frames:
            return False, {"lead_floor_frames": int(np.count_nonzero(audible))}
        floor = float(np.median(lead[audible]))
        steady = np.abs(lead[audible] - floor) <= s.floor_steady_db
        steady_frames = int(np.count_nonzero(steady))
        flat = float(np.median(run.lead_flatness[audible]))
        hold_floor = self._hold_floor_dbov()
        pauses = np.array(run.levels[run.utterance_start :])
        pauses = pauses[(pauses < run.peak_dbov - 20.0) & (pauses >= ZERO_DBOV)]
        matching = int(np.count_nonzero(np.abs(pauses - floor) <= s.pause_match_db))
        evidence = {
            "floor_dbov": round(floor, 1),
            "lead_floor_frames": steady_frames,
            "lead_flatness": round(flat, 3),
            "pause_frames_on_floor": matching,
            "hold_floor_dbov": None if hold_floor is None else round(hold_floor, 1),
            "prior_floor_dbov": None if run.prior_floor_dbov is None else round(run.prior_floor_dbov, 1),
        }
        ok = (
            steady_frames >= s.lead_floor_frames
            and steady_frames >= 0.7 * np.count_nonzero(audible)
            and s.live_floor_min_dbov <= floor <= s.live_floor_max_dbov
            and floor <= run.peak_dbov - 20.0
            and flat >= s.floor_min_flatness
            and (hold_floor is None or floor >= hold_floor + s.above_hold_floor_db)
            and (run.prior_floor_dbov is None or abs(floor - run.prior_floor_dbov) >= s.above_hold_floor_db)
            and (matching >= s.pause_floor_frames or steady_frames >= s.long_lead_frames)
        )
        return ok, evidence

    def _quiet_is_a_floor(self, run: _Run, seconds: float) -> bool:
        """The last ``seconds`` are one steady floor (a line waiting for an answer), not soft
        music fading back in after an announcement: no frame stands out of the floor."""
        s = self.settings
        quiet = np.array(run.levels[-int(round(seconds / FRAME_SECONDS)) :])
        floor = float(np.median(quiet))
        if np.max(quiet) > floor + s.floor_spread_db:
            return False
        if floor < ZERO_DBOV:
            # Digital silence is the PBX's as much as a gated line's: only a gate closing on
            # the last word (recordings fade out) makes it a line.
            return run.closures > 0
        # An open microphone's floor, not the quieter floor of the hold channel.
        hold_floor = self._hold_floor_dbov()
        return floor >= s.live_floor_min_dbov and (hold_floor is None or floor >= hold_floor + s.above_hold_floor_db)

    def _gated(self, run: _Run) -> tuple[bool, dict[str, Any]]:
        # The line opened on digital silence: the lead ends in zeros (bar the word's first,
        # partly gated frame); before them may be anything (the end of an announcement).
        lead = run.lead_levels
        zero = lead < ZERO_DBOV
        last_zero = int(np.flatnonzero(zero)[-1]) if zero.any() else -1
        lead_audible = len(lead) - 1 - last_zero if last_zero >= 0 else len(lead)
        lead_zero = 0
        while last_zero - lead_zero >= 0 and zero[last_zero - lead_zero]:
            lead_zero += 1
        needed = self.settings.gate_closures if run.utterance_start == 0 else self.settings.gate_closures_after_pause
        ok = lead_zero >= 2 and lead_audible <= 1 and run.closures >= needed
        return ok, {"lead_zero_frames": lead_zero, "gate_closures": run.closures}

    def _decide(self, run: _Run, t: float) -> HumanDetected | None:
        s = self.settings
        vetoes = {
            "music_bed": run.bed,
            "repeat": run.repeat is not None,
            "recording_phrase": run.recording_phrase,
        }
        if any(vetoes.values()):
            return None
        speech_seconds = run.speech_frames * FRAME_SECONDS
        old_enough = run.age(t) >= s.min_decision_seconds and speech_seconds >= s.min_speech_seconds
        live, live_evidence = self._live_floor(run)
        gated, gated_evidence = self._gated(run)
        quiet_for = 0.0 if run.quiet_since is None else t - run.quiet_since
        waiting = (
            quiet_for >= s.waiting_seconds
            and self._quiet_is_a_floor(run, s.waiting_seconds)
            and run.last_speech_t - run.onset_t <= s.max_waiting_run_seconds
            and speech_seconds >= s.min_speech_seconds
        )
        cues = {
            "live_floor": old_enough and live,
            "gated_line": old_enough and gated,
            "turn_taking": run.turns > 0 and speech_seconds >= s.min_speech_seconds,
            "waiting_for_reply": waiting,
            "transcript": run.human_phrase is not None,
            "probe_reply": run.probe_reply,
        }
        fired = [name for name, on in cues.items() if on]
        if not fired:
            return None
        self.decided = True
        confidence = min(0.99, 0.75 + 0.08 * len(fired))
        return HumanDetected(
            t=t,
            confidence=confidence,
            evidence={
                "rule": fired[0],
                "cues": fired,
                "speech_onset_t": round(run.onset_t, 3),
                "speech_seconds": round(speech_seconds, 2),
                "live_floor": live_evidence,
                "gated_line": gated_evidence,
                "turns": run.turns,
                "new_talker_after_pause": run.split_from_run,
                "quiet_seconds": round(quiet_for, 2),
                "music_bed_steadiness": round(run.bed_steadiness, 3),
                "repeat": None if run.repeat is None else run.repeat.prominence,
                "known_recordings": len(self.recordings),
                "transcript": run.human_phrase,
                "on_hold": self.on_hold,
                "announcements_before": self.announcements,
            },
        )

    def _maybe_probe(self, run: _Run, t: float) -> None:
        s = self.settings
        if (
            self._probe is None
            or run.probe_requested
            or run.quiet_since is None
            or t - run.quiet_since < s.probe_after_quiet_seconds
            or run.speech_frames * FRAME_SECONDS < s.min_speech_seconds
        ):
            return
        run.probe_requested = True
        self._probe(ProbeRequest(t=t, reason="speech stopped without music coming back"))

