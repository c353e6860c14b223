"""A simple, cheap hold -> live human detector over the far end's audio.

Pure: PCM in, classifications and two decisions out, ~0.1 ms per 20 ms packet. A later, full
detector (tones, VAD, fingerprints, transcripts) replaces it; this one must hear the hold, stay
quiet through hold music and recorded announcements, and notice a person who picks up.

Windows
    Every ``hop_seconds`` the last ``window_seconds`` are classified from the features of
    ``app.audio.features``: SILENCE (quiet, or a bare noise floor), RINGING / BUSY (tone pairs
    by band energy; no cadence check), speech-like (no held pitches *and* deep loudness swings),
    else MUSIC. A speech-like window is IVR_PROMPT when it shows a sign of a recording,
    LIVE_HUMAN when an open microphone has been heard in its run, SPEECH otherwise.

Hold
    HoldDetected once music has filled ``hold_music_seconds`` of windows since the last
    ``reset_for_hold`` (announcements may interrupt it).

Live human: why "speech after music" is not enough
    On real holds the first speech after music is far more often an announcement than a
    person. So the detector follows each *speech run* (speech-like windows, pauses of up to
    ``run_gap_seconds`` allowed, ended by ``return_to_music_windows`` of music) and weighs
    where its sound comes from:

    - recording cues. Pauses of digital or gated silence: a PBX playing a file, no microphone
      open. A music bed under the speech (the quieter frames hold steady pitches). Loudness
      curves that repeat a recording heard earlier in the call (a cheap fingerprint: low and
      high band loudness, correlated against the runs that ended without a person, e.g. the
      periodic announcement). Music resuming after the run (return to music: it was an
      announcement, and its fingerprint is kept).
    - live cue. Pauses that sit on a steady (no trend, within 6 dB), noise-like floor between
      gated silence and speech: the room, headset or line noise of an open microphone. The
      line may open on it before the first word (a lead of 0.4 s or more, counted once, when
      the run starts). A floor at the level of the hold music's own rests is the music
      recording's hiss, not a microphone, and does not count.

    Rules, checked every window; the first to hold fires, once until ``reset_for_hold``:

    1. ``live_floor``: since the run's last recording cue the far end has filled
       ``live_min_speech_windows`` speech windows and ``live_floor_frames`` frames of open
       microphone floor (twice that once the run has shown gated silence: a breath after a
       gated pause can hold a steady level for a moment); the newest half window on its own
       is speech or a bare floor, not music (a window still looks like speech for a moment
       after an announcement hands back to music, and that music's rests must not pass for a
       person's pauses); music beds are not a regular part of the run. Typically 2-3.5 s
       after a person's first word (a person who talks on without a pause: at their first
       pause).
    2. ``turn_taking``: on hold, the far end has talked, gone quiet for a whole window
       (without music: long enough for an answer) and talked again, ``turns_needed`` times in
       one run, with no music bed and no repeat. A person greets, waits, asks "hello?";
       announcements hand back to music. The safety net for a person on a digitally clean
       line (noise suppression), 10 s or more after they start.

    ``HumanDetected.evidence`` carries the rule, the run's onset and length, the live and
    recording cues counted and the hold context.

Known gaps, for the full detector: a recording with a noisy floor passes rule 1 the first
time it plays (measured: about 1 in 3 such announcements); a person who talks without pausing
is heard only at their first pause (5 s for one of the corpus voices); a line floor louder
than -42 dBov is not taken for an open microphone (a music bed could be); passages of music
that sound like speech over a noisy floor (percussive, no sustained pitch) can pass rule 1.
``python -m tests.audio_fixtures`` measures all of this on the corpus and prints the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.audio.features import (
    FloorMasks,
    FrameFeatures,
    WindowFeatures,
    analyse_window,
    band_powers,
    concat_frames,
    frame_features,
    frame_samples,
    window_features,
)
from app.audio.stream_clock import StreamClock
from app.audio.types import AudioClass, Classification, DetectorOutput, HoldDetected, HumanDetected

# Call-progress tones are two fixed sine pairs: their spectrum barely changes.
_TONE_MIN_STEADINESS = 0.8
# The stream clock may jump (lost packets, a paused source); beyond this the times re-anchor.
# Fingerprint: band loudness curves smoothed over 100 ms, compared over 1.5 s; a recording is
# remembered by its last 30 s at most.
_SMOOTH_FRAMES = 5
_MATCH_FRAMES = 75
_ENVELOPE_RANGE_DB = 40.0
_MAX_REMEMBERED_FRAMES = 1500
# A run whose speech windows show a music bed this often (one in N) is an announcement over
# music: a floor heard between its music-filled windows is the bed's quiet moment.
_BED_SHARE_BLOCKS = 3
# How much more open-line floor a run needs once it has shown gated silence.
_AFTER_CLEAN_FLOOR_FACTOR = 2
# A break this short does not split a stretch of noise floor.
_BRIDGED_BREAK_FRAMES = 3
# The music's own floor: how many frames of it are remembered, how many make it known.
_MUSIC_FLOOR_CAPACITY = 3000
_MIN_MUSIC_FLOOR_FRAMES = 8


class _KnownRecordings:
    """Fingerprints of the speech runs that ended without being judged live (announcements that
    gave way to music or silence, menu prompts): their two band loudness curves.

    A run repeats a known recording when its last 1.5 s correlate (normalised, per band) with a
    stretch of one of them. Curves are smoothed over 100 ms so that the 20 ms frame grid falling
    differently on a replay does not matter.
    """

    def __init__(self, capacity: int, min_correlation: float) -> None:
        self._curves: list[np.ndarray] = []
        self._capacity = capacity
        self._min_correlation = min_correlation

    def __len__(self) -> int:
        return len(self._curves)

    def remember(self, powers: np.ndarray) -> None:
        curves = _loudness_curves(powers[:, -_MAX_REMEMBERED_FRAMES:])
        if curves.shape[1] >= _MATCH_FRAMES:
            self._curves.append(curves)
            del self._curves[: -self._capacity]

    def matches(self, powers: np.ndarray) -> bool:
        if powers.shape[1] < _MATCH_FRAMES + _SMOOTH_FRAMES - 1 or not self._curves:
            return False
        probe = _loudness_curves(powers[:, -(_MATCH_FRAMES + _SMOOTH_FRAMES - 1) :])
        probe = probe - np.mean(probe, axis=1, keepdims=True)
        probe /= np.linalg.norm(probe, axis=1, keepdims=True) + 1e-9
        return any(self._best_correlation(known, probe) >= self._min_correlation for known in self._curves)

    @staticmethod
    def _best_correlation(known: np.ndarray, probe: np.ndarray) -> float:
        """Max over positions of the mean (over bands) normalised correlation."""
        length = probe.shape[1]
        if known.shape[1] < length:
            return 0.0
        total = np.zeros(known.shape[1] - length + 1)
        for band, unit in zip(known, probe):
            numerator = np.correlate(band, unit, mode="valid")  # the probe has zero mean
            sums = np.concatenate([[0.0], np.cumsum(band)])
            squares = np.concatenate([[0.0], np.cumsum(band * band)])
            window_sum = sums[length:] - sums[:-length]
            spread = squares[length:] - squares[:-length] - window_sum**2 / length
            total += numerator / np.sqrt(np.maximum(spread, 1e-9))
        return float(np.max(total)) / len(probe)


def _loudness_curves(powers: np.ndarray) -> np.ndarray:
    """Band powers -> smoothed dB curves, floored at a fixed depth below their peak."""
    kernel = np.ones(_SMOOTH_FRAMES) / _SMOOTH_FRAMES
    smoothed = np.array([np.convolve(band, kernel, mode="valid") for band in powers])
    curves = 10.0 * np.log10(np.maximum(smoothed, 1e-3))
    return np.maximum(curves, np.max(curves, axis=1, keepdims=True) - _ENVELOPE_RANGE_DB)


class _FloorLevels:
    """The levels of the noise floor heard in the gaps of the hold music (its recording's hiss)."""

    def __init__(self, capacity: int, margin_db: float) -> None:
        self._levels = np.zeros(0)
        self._capacity = capacity
        self._margin_db = margin_db

    def add(self, levels: np.ndarray) -> None:
        if len(levels):
            self._levels = np.concatenate([self._levels, levels])[-self._capacity :]

    def covers(self, levels: np.ndarray) -> np.ndarray:
        """Which of ``levels`` lie within the range of the music's own floor."""
        if len(self._levels) < _MIN_MUSIC_FLOOR_FRAMES:
            return np.zeros(len(levels), dtype=bool)
        low, high = np.percentile(self._levels, [5, 95])
        return (levels >= low - self._margin_db) & (levels <= high + self._margin_db)


@dataclass
class _SpeechRun:
    """One stretch of speech-like audio and the cues gathered about its source."""

    onset_t: float  # start of the window in which it was first heard
    after_music: bool
    last_speech_t: float
    windows: int = 0
    speech_windows: int = 0
    waiting: bool = False  # gone silent (no music) after talking
    turns: int = 0  # times it talked again after such a silence
    # Live evidence since the last recording cue.
    floor_frames: int = 0
    speech_windows_since_cue: int = 0
    # Totals over the run, for the evidence and rule 2.
    floor_frames_total: int = 0
    clean_cues: int = 0
    bed_windows: int = 0
    repeat_windows: int = 0
    # Band powers of the run's latest frames, its fingerprint (see _KnownRecordings).
    powers: np.ndarray = field(default_factory=lambda: np.zeros((2, 0)))
    floor_levels: list[float] = field(default_factory=list)

    def add_powers(self, powers: np.ndarray) -> None:
        self.powers = np.concatenate([self.powers, powers], axis=1)[:, -_MAX_REMEMBERED_FRAMES:]

    def recording_cue(self) -> None:
        self.floor_frames = 0
        self.speech_windows_since_cue = 0


class SimpleHoldDetector:
    """Streaming classifier of the far end's audio; see the module docstring for the rules."""

    def __init__(
        self,
        sample_rate: int = 8000,
        window_seconds: float = 3.0,
        hop_seconds: float = 0.5,
        *,
        silence_peak_dbov: float = -45.0,
        speech_max_harmonic_steadiness: float = 0.12,
        speech_min_loudness_std_db: float = 6.0,
        music_max_flatness: float = 0.25,
        tone_min_share: float = 0.75,
        music_bed_min_steadiness: float = 0.15,
        live_floor_frames: int = 8,
        lead_floor_frames: int = 20,
        music_floor_margin_db: float = 3.0,
        live_min_speech_windows: int = 2,
        hold_music_seconds: float = 5.0,
        return_to_music_windows: int = 2,
        run_gap_seconds: float = 6.0,
        turns_needed: int = 2,
        repeat_min_correlation: float = 0.91,
        max_known_recordings: int = 32,
        max_history: int = 7200,
    ) -> None:
        frame = frame_samples(sample_rate)
        self.sample_rate = sample_rate
        self.window_frames = _whole_frames(window_seconds, sample_rate, frame, "window_seconds")
        self.hop_frames = _whole_frames(hop_seconds, sample_rate, frame, "hop_seconds")
        if self.hop_frames > self.window_frames:
            raise ValueError("hop_seconds must not be longer than window_seconds")
        self.hop_seconds = self.hop_frames * frame / sample_rate
        self.window_seconds = self.window_frames * frame / sample_rate
        self.silence_peak_dbov = silence_peak_dbov
        self.speech_max_harmonic_steadiness = speech_max_harmonic_steadiness
        self.speech_min_loudness_std_db = speech_min_loudness_std_db
        self.music_max_flatness = music_max_flatness
        self.tone_min_share = tone_min_share
        self.music_bed_min_steadiness = music_bed_min_steadiness
        self.live_floor_frames = live_floor_frames
        self.lead_floor_frames = lead_floor_frames
        self.live_min_speech_windows = live_min_speech_windows
        self.hold_music_windows = max(1, int(round(hold_music_seconds / self.hop_seconds)))
        self.return_to_music_windows = return_to_music_windows
        self.run_gap_seconds = run_gap_seconds
        self.turns_needed = turns_needed
        self.max_history = max_history

        self._frame = frame
        self._pending = np.zeros(0, dtype=np.int16)
        self._frames: FrameFeatures | None = None  # frames some future window still needs
        self._frames_offset = 0  # stream index of self._frames[0]
        self._frames_total = 0
        self._next_window_end = self.window_frames
        self._clock = StreamClock(sample_rate, self._frame)
        self._known_recordings = _KnownRecordings(max_known_recordings, repeat_min_correlation)
        self._music_floor = _FloorLevels(_MUSIC_FLOOR_CAPACITY, music_floor_margin_db)

        self.history: list[Classification] = []
        self.hold_detected = False
        self.human_detected = False
        self._reset_context()

    def _reset_context(self) -> None:
        self._run: _SpeechRun | None = None
        self._music_windows = 0
        self._music_streak = 0
        self._first_music_t: float | None = None
        self._announcements = 0
        self._last_sound: AudioClass | None = None

    def reset_for_hold(self) -> None:
        """The menu is done and the wait begins: forget the menu's speech and the decisions.

        Recordings already heard stay known: menus and holds often replay the same prompts.
        """
        self._end_run()
        self._reset_context()
        self.hold_detected = False
        self.human_detected = False
        self.history.clear()

    def push(self, pcm: np.ndarray, t: float, *, concealed: bool = False) -> list[DetectorOutput]:
        """Feed received audio (int16 mono, any length) whose first sample is at stream time ``t``.
        ``concealed`` (made up for lost packets) is taken as heard: this baseline judges levels only."""
        pcm = np.asarray(pcm, dtype=np.int16)
        self._clock.advance(t, len(pcm))
        buffered = np.concatenate([self._pending, pcm]) if len(self._pending) else pcm
        whole = len(buffered) // self._frame * self._frame
        self._pending = buffered[whole:].copy()
        if whole == 0:
            return []
        new_frames = frame_features(buffered[:whole], self.sample_rate)
        self._frames = new_frames if self._frames is None else concat_frames([self._frames, new_frames])
        self._frames_total += len(new_frames)

        outputs: list[DetectorOutput] = []
        while self._next_window_end <= self._frames_total:
            end = self._next_window_end - self._frames_offset
            outputs.extend(self._on_window(self._frames.slice(end - self.window_frames, end)))
            self._next_window_end += self.hop_frames
        keep_from = self._next_window_end - self.window_frames - self._frames_offset
        if keep_from > 0:
            self._frames = self._frames.slice(keep_from, len(self._frames))
            self._frames_offset += keep_from
        return outputs

    # -- time ---------------------------------------------------------------------------------

    def _frame_time(self, frame_index: int) -> float:
        return self._clock.frame_time(frame_index)

    # -- one window ---------------------------------------------------------------------------

    def _on_window(self, frames: FrameFeatures) -> list[DetectorOutput]:
        t_end = self._frame_time(self._next_window_end)
        t_start = t_end - self.window_seconds
        features, masks = analyse_window(frames, self.sample_rate)
        audio_class, confidence = self._base_class(features)
        if audio_class == AudioClass.MUSIC:
            self._on_music(frames, masks, t_end)
        elif audio_class == AudioClass.SPEECH:
            audio_class, confidence = self._on_speech(frames, features, masks, t_start, t_end)
        else:
            self._on_other(frames, audio_class, t_end)
        if audio_class != AudioClass.SILENCE:
            self._last_sound = audio_class

        classification = Classification(t_start, t_end, audio_class, confidence, features.as_dict())
        self._record(classification)
        outputs: list[DetectorOutput] = [classification]
        if (
            not self.hold_detected
            and audio_class == AudioClass.MUSIC
            and self._music_windows >= self.hold_music_windows
        ):
            outputs.append(self._hold_decision(t_end))
        if not self.human_detected and self._run is not None:
            decision = self._human_decision(frames, t_end)
            if decision is not None:
                outputs.append(decision)
        return outputs

    def _base_class(self, f: WindowFeatures) -> tuple[AudioClass, float]:
        if f.peak_dbov < self.silence_peak_dbov:
            return AudioClass.SILENCE, _confidence(self.silence_peak_dbov - f.peak_dbov, 10.0)
        tone_share = f.ring_ratio + f.busy_ratio
        if tone_share >= self.tone_min_share and f.spectral_steadiness >= _TONE_MIN_STEADINESS:
            tone = AudioClass.BUSY if f.busy_ratio > tone_share / 4 else AudioClass.RINGING
            return tone, _confidence(tone_share - self.tone_min_share, 0.25)
        pitch_margin = (self.speech_max_harmonic_steadiness - f.harmonic_steadiness) / 0.05
        depth_margin = (f.loudness_std_db - self.speech_min_loudness_std_db) / 4.0
        if pitch_margin > 0 and depth_margin > 0:
            return AudioClass.SPEECH, _confidence(min(pitch_margin, depth_margin), 1.0)
        if f.flatness > self.music_max_flatness:
            # Neither held notes nor speech rhythm, and noise-like: a noise floor, not music.
            return AudioClass.SILENCE, _confidence(f.flatness - self.music_max_flatness, 0.25)
        return AudioClass.MUSIC, _confidence(-max(pitch_margin, depth_margin), 1.0)

    def _on_music(self, frames: FrameFeatures, masks: FloorMasks, t_end: float) -> None:
        self._learn_music_floor(frames, masks)
        self._music_windows += 1
        self._music_streak += 1
        if self._first_music_t is None:
            self._first_music_t = t_end - self.window_seconds
        if self._run is not None and self._music_streak >= self.return_to_music_windows:
            # Music resumed: the run was an announcement.
            self._announcements += 1
            self._end_run()

    def _on_other(self, frames: FrameFeatures, audio_class: AudioClass, t_end: float) -> None:
        self._music_streak = 0
        run = self._run
        if run is None:
            return
        run.windows += 1
        run.waiting |= audio_class == AudioClass.SILENCE
        self._extend_fingerprint(run, frames)
        if t_end - run.last_speech_t >= self.run_gap_seconds:
            self._end_run()

    def _on_speech(
        self, frames: FrameFeatures, f: WindowFeatures, masks: FloorMasks, t_start: float, t_end: float
    ) -> tuple[AudioClass, float]:
        self._music_streak = 0
        run = self._run
        first_window = run is None
        if run is None:
            run = self._run = _SpeechRun(
                onset_t=t_start, after_music=self._last_sound == AudioClass.MUSIC, last_speech_t=t_end
            )
        run.windows += 1
        run.speech_windows += 1
        run.last_speech_t = t_end
        if run.waiting:
            # Talking again after a silence long enough for an answer: a turn.
            run.turns += 1
            run.waiting = False
        self._extend_fingerprint(run, frames)

        # Only the newest hop is news, except when the run starts: the line may have opened on
        # its noise floor before the first word. Such a lead counts only as one unbroken stretch
        # (a rest between notes of quiet music is shorter). Open-microphone floor frames count
        # after the latest clean stretch, the mark of a recording, and only if the hold music
        # did not already carry a floor at that level (a music recording's own hiss).
        news = self.window_frames if first_window else self.hop_frames
        clean = masks.clean[-news:]
        floor = masks.noise_floor[-news:]
        if first_window:
            floor = _long_stretches(floor, self.lead_floor_frames)
        levels = frames.level_db[-news:]
        if clean.any():
            run.recording_cue()
            run.clean_cues += 1
            after = np.flatnonzero(clean)[-1] + 1
            floor, levels = floor[after:], levels[after:]
        fresh = floor & ~self._music_floor.covers(levels)
        if fresh.any():
            count = int(np.count_nonzero(fresh))
            run.floor_frames += count
            run.floor_frames_total += count
            run.floor_levels.append(float(np.median(levels[fresh])))

        bed = f.pause_steadiness >= self.music_bed_min_steadiness
        repeat = self._known_recordings.matches(run.powers)
        run.bed_windows += bed
        run.repeat_windows += repeat
        if bed or repeat:
            run.recording_cue()
        elif not clean.any():
            run.speech_windows_since_cue += 1

        if bed or repeat or f.clean_fraction > 0:
            return AudioClass.IVR_PROMPT, 0.6 + 0.15 * repeat + 0.1 * bed
        if run.floor_frames >= self._floor_frames_needed(run):
            return AudioClass.LIVE_HUMAN, min(0.95, 0.6 + 0.1 * run.speech_windows_since_cue)
        return AudioClass.SPEECH, 0.6

    # -- decisions ----------------------------------------------------------------------------

    def _hold_decision(self, t: float) -> HoldDetected:
        self.hold_detected = True
        music_seconds = self._music_windows * self.hop_seconds
        return HoldDetected(
            t=t,
            confidence=min(0.99, 0.6 + 0.03 * music_seconds),
            evidence={
                "rule": "music",
                "music_seconds": music_seconds,
                "first_music_t": self._first_music_t,
                "announcements": self._announcements,
            },
        )

    def _human_decision(self, frames: FrameFeatures, t: float) -> HumanDetected | None:
        run = self._run
        assert run is not None
        if (
            run.floor_frames >= self._floor_frames_needed(run)
            and run.speech_windows_since_cue >= self.live_min_speech_windows
            and run.bed_windows * _BED_SHARE_BLOCKS < run.speech_windows
            and self._recent_class(frames) in (AudioClass.SPEECH, AudioClass.SILENCE)
        ):
            rule = "live_floor"
            confidence = min(0.95, 0.7 + 0.05 * run.speech_windows_since_cue)
        elif (
            self.hold_detected
            and run.turns >= self.turns_needed
            and run.bed_windows == 0
            and run.repeat_windows == 0
        ):
            rule, confidence = "turn_taking", 0.6
        else:
            return None
        self.human_detected = True
        return HumanDetected(
            t=t,
            confidence=confidence,
            evidence={
                "rule": rule,
                "speech_onset_t": run.onset_t,
                "speech_seconds": run.speech_windows * self.hop_seconds,
                "turns": run.turns,
                "open_floor_seconds": run.floor_frames_total * self._frame / self.sample_rate,
                "noise_floor_dbov": float(np.median(run.floor_levels)) if run.floor_levels else None,
                "clean_silence_cues": run.clean_cues,
                "after_music": run.after_music,
                "on_hold": self.hold_detected,
                "announcements_before": self._announcements,
                "known_recordings": len(self._known_recordings),
            },
        )

    def _floor_frames_needed(self, run: _SpeechRun) -> int:
        """Gated silence heard in the run speaks for a recording: outweigh it with more floor
        (a breath after a gated pause in a recording can hold a steady level for a moment)."""
        return self.live_floor_frames * (_AFTER_CLEAN_FLOOR_FACTOR if run.clean_cues else 1)

    def _learn_music_floor(self, frames: FrameFeatures, masks: FloorMasks) -> None:
        """Remember the floor of rests *between* notes: the hop before the window's newest half,
        when that half is music too (a floor after the last note may be a line that opened)."""
        end = len(frames) - self.window_frames // 2
        rest = masks.noise_floor[end - self.hop_frames : end]
        if rest.any() and self._recent_class(frames) == AudioClass.MUSIC:
            self._music_floor.add(frames.level_db[end - self.hop_frames : end][rest])

    def _recent_class(self, frames: FrameFeatures) -> AudioClass:
        """The base class of the newest half of the window on its own."""
        recent = frames.slice(len(frames) - self.window_frames // 2, len(frames))
        return self._base_class(window_features(recent, self.sample_rate))[0]

    # -- fingerprints of recordings -----------------------------------------------------------

    def _extend_fingerprint(self, run: _SpeechRun, frames: FrameFeatures) -> None:
        """Add the newest hop (the whole window at the run's start) to the run's fingerprint."""
        news = frames.slice(len(frames) - self.hop_frames, len(frames)) if run.windows > 1 else frames
        run.add_powers(band_powers(news, self.sample_rate))

    def _end_run(self) -> None:
        if self._run is not None and not self.human_detected:
            self._known_recordings.remember(self._run.powers)
        self._run = None

    def _record(self, classification: Classification) -> None:
        self.history.append(classification)
        if len(self.history) > self.max_history * 1.1:
            del self.history[: len(self.history) - self.max_history]


def _long_stretches(mask: np.ndarray, min_length: int) -> np.ndarray:
    """Keep only the runs of True at least ``min_length`` long, bridging breaks of a few frames
    (a click or a breath does not close a line)."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    kept = np.zeros(len(mask), dtype=bool)
    run_start = None
    for index, (start, stop) in enumerate(zip(starts, stops)):
        run_start = start if run_start is None else run_start
        bridged = index + 1 < len(starts) and starts[index + 1] - stop <= _BRIDGED_BREAK_FRAMES
        if not bridged:
            if stop - run_start >= min_length:
                kept[run_start:stop] = mask[run_start:stop]
            run_start = None
    return kept


def _whole_frames(seconds: float, sample_rate: int, frame: int, name: str) -> int:
    frames = seconds * sample_rate / frame
    if frames < 1 or abs(frames - round(frames)) > 1e-6:
        raise ValueError(f"{name} must be a whole number of 20 ms frames, got {seconds}")
    return int(round(frames))


def _confidence(margin: float, scale: float) -> float:
    """Map a margin past a threshold to 0.5 .. 0.99."""
    return float(min(0.99, 0.5 + 0.5 * np.tanh(max(margin, 0.0) / scale)))
