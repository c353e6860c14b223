"""The full hold -> live human detector: tones, VAD, features, window classes, human cues.

A drop-in for ``SimpleHoldDetector`` (same constructor arguments, ``push``, ``reset_for_hold``,
``history``, ``hold_detected``, ``human_detected``). Pure and streaming: int16 PCM at 8 kHz in
(any chunk length, normally 20 ms RTP frames), ``Classification`` / ``HoldDetected`` /
``HumanDetected`` out.

Per 20 ms frame: the tone detector (DTMF, call-progress tones, SIT), the VAD (WebRTC gate,
Silero only where the gate passes and not while steady music plays), the frame features of
``app.audio.features`` (computed for blocks of 80 ms at once), and the human detector
(``app.audio.human``), which decides at frame resolution: a person is usually recognised
0.4-1 s after their first word.
Every ``hop_seconds`` the last ``window_seconds`` are classified (``app.audio.classifier``); the
class of a speech window is refined by the human detector (IVR_PROMPT, LIVE_HUMAN or SPEECH).

Hooks for the call session: ``expect_dtmf_echo`` (digits the app sent itself), ``on_transcript``
(speech-to-text results: phrase cues), and ``our_speech_started`` / ``our_speech_ended`` (the
app speaks into the call: frames that only carry our own words coming back, ``app.audio.echo``,
reach the human detector as the quiet line they replaced, so that our words are never a reply).
Frames the jitter buffer concealed (``push(..., concealed=True)``: packets lost or late, a stalled
stream) carry nothing of the line either and are replaced the same way: their digital silence
inside a word would look like a gate closing, a new line opening, and cut a person's words in two.
"""

from __future__ import annotations

import numpy as np

from app.audio.classifier import ClassifierSettings, ToneState, classify_window
from app.audio.features import FrameFeatures, FrameShapes, ShapeTracker, analyse_window, frame_features, frame_samples
from app.audio.echo import EchoMonitor
from app.audio.human import SPEECH_PROB, HumanDetector, HumanSettings
from app.audio.stats import median
from app.audio.tones import ToneDetector, ToneEvent
from app.audio.stream_clock import StreamClock
from app.audio.types import AudioClass, Classification, DetectorOutput, HoldDetected, HumanDetected
from app.audio.vad import Vad

# The stream clock may jump (lost packets, a paused source); beyond this the times re-anchor.
# The window's newest stretch whose Silero steps say whether it holds speech.
_SPEECH_SHARE_SECONDS = 1.0
# A SIT or a DTMF digit marks the windows that end within this long after it.
_TONE_MARK_SECONDS = 1.0
# Frames are analysed in blocks: numpy's per-call overhead dominates a single 20 ms frame. The
# outputs keep their frame times; a decision leaves at most 60 ms later than it could.
_BATCH_FRAMES = 4
# Silero rests while the hold plays steady music (it calls ~0% of music speech): speech over music
# is an announcement's bed, never the person, who comes on a line of their own after the music
# stops. A frame this far under the music's median level (a gap, a line opening, a pause in
# a voice), or this far over its loud frames (a new, louder source: a voice cutting in on a soft
# passage), wakes it for ``_LISTEN_SECONDS``. Without the second, a voice over a soft passage
# would never be heard: its windows stay MUSIC because Silero, resting, calls nothing speech.
_LISTEN_DROP_DB = 12.0
_LISTEN_RISE_DB = 10.0
_LISTEN_SECONDS = 3.0
# A window with this share of made-up frames (our echo, concealed packets) says nothing of music:
# they repeat one quiet frame of the line, and a stretch of identical frames passes for a steady
# tone (our greeting over a silent queue once made four windows MUSIC and a false HOLD_DETECTED).
_MADE_UP_MAX_SHARE = 0.2
# A frame this quiet is the line's floor, what our echo covers up.
LINE_FLOOR_MAX_DBOV = -40.0


class AudioPipeline:
    """Streaming classifier of the far end's audio with one HOLD and one HUMAN decision per wait."""

    def __init__(
        self,
        sample_rate: int = 8000,
        window_seconds: float = 3.0,
        hop_seconds: float = 0.5,
        *,
        hold_music_seconds: float = 3.0,
        # The newest classifications kept for inspection (a minute): each goes out as an output
        # anyway, and a long hold must not hoard them (~1.3 kB each, and objects the garbage
        # collector walks: 2000 of them were 2.6 MB per held call, grown over 17 minutes).
        max_history: int = 120,
        human: HumanSettings = HumanSettings(),
        classifier: ClassifierSettings = ClassifierSettings(),
        vad: Vad | None = None,
    ) -> None:
        if sample_rate != 8000:
            raise ValueError("the pipeline runs on 8 kHz telephone audio")
        self.sample_rate = sample_rate
        self.window_seconds = window_seconds
        self.hop_seconds = hop_seconds
        self._frame = frame_samples(sample_rate)
        self.window_frames = _whole_frames(window_seconds, "window_seconds")
        self.hop_frames = _whole_frames(hop_seconds, "hop_seconds")
        self.hold_music_windows = max(1, round(hold_music_seconds / hop_seconds))
        self.max_history = max_history
        self._classifier = classifier
        self._tones = ToneDetector()
        self._vad = vad if vad is not None else Vad()
        self.human = HumanDetector(human, sample_rate=sample_rate)
        self._echo = EchoMonitor()
        self.echo_frames = 0  # frames taken for our own words coming back
        self.concealed_frames = 0  # frames the jitter buffer made up for missing packets
        self.far_end_speaking = False  # the newest analysed frame is far-end speech (not our echo)
        # The newest quiet frame that was not our echo: what an echo frame is replaced with (a
        # loud one, music or a word Silero missed, repeated would pass for music coming back).
        self._line_frame: tuple[float, np.ndarray, float] | None = None
        self._pending = np.zeros(0, dtype=np.int16)
        self._announced = 0  # samples announced (``announce``) and not pushed yet
        self._pending_concealed = np.zeros(0, dtype=bool)  # per sample of ``_pending``
        self._clock = StreamClock(sample_rate, self._frame)
        self._frames_total = 0
        # The last window of frames (row-aligned) and their Silero probabilities.
        self._levels = np.zeros(0)
        self._zcr = np.zeros(0)
        self._spectra = np.zeros((0, 129))
        self._probs = np.zeros(0)
        self._made_up = np.zeros(0, dtype=bool)
        # What the windows' spectral features take from each frame, derived once per frame, for
        # the frames since the last window at once (numpy's per-call overhead again).
        self._shape_tracker = ShapeTracker(sample_rate)
        self._shapes = np.zeros((0, len(FrameShapes.COLUMNS)))
        self._shaped_total = 0  # frames derived so far
        self._sit_t = -np.inf
        self._dtmf_t = -np.inf
        self.tone_events: list[ToneEvent] = []
        self.history: list[Classification] = []
        self.hold_detected = False
        self.human_detected = False
        self._music_windows = 0
        self._first_music_t: float | None = None
        self._steady_music_dbov: float | None = None  # the music's median level while Silero rests
        self._music_peak_dbov = 0.0  # and the level of its loud frames (90th percentile)
        self._listen_until = -np.inf

    # -- the detector interface -----------------------------------------------------------

    def reset_for_hold(self) -> None:
        """The menu is done and the wait begins: forget the decisions (known recordings stay)."""
        self.human.reset()
        self.hold_detected = False
        self.human_detected = False
        self._music_windows = 0
        self._first_music_t = None
        self.history.clear()

    def restart_hold_detection(self) -> None:
        """We answered a menu: music heard before says nothing about where the answer led."""
        self.hold_detected = False
        self._music_windows = 0
        self._first_music_t = None

    def expect_dtmf_echo(self, digits: str, now: float) -> None:
        """Digits the app is sending: heard back, they are reported as echoes, not as far-end keys."""
        self._tones.expect_echo(digits, now=now)

    def on_transcript(self, text: str, t_start: float, t_end: float) -> None:
        """A speech-to-text result for the far end's audio between these stream times."""
        self.human.on_transcript(text, t_start, t_end)

    def know_recordings(self, stored: list[bytes]) -> int:
        """Recordings heard on earlier calls to this company (``known_recordings`` of those
        calls): a replay of one is an announcement from its first seconds. How many were new."""
        return self.human.recordings.load(stored)

    def known_recordings(self) -> list[bytes]:
        """Fingerprints of the recordings this call knows, for the next call to the company."""
        return self.human.recordings.export()

    def announce(self, pcm: np.ndarray) -> None:
        """Audio that ``push`` will be given next, in order, given as soon as it arrives (the
        call's frame is read from its socket before the call's task hears it). Silero's steps in
        it are then encoded in a batch with those of every other call announced meanwhile
        (``app.audio.vad``): with many calls held, a fraction of the cost, the same numbers.
        Optional; pushed audio that differs from what was announced is heard all the same."""
        pcm = np.asarray(pcm, dtype=np.int16)
        self._announced += len(pcm)
        self._vad.silero.lookahead(pcm)

    def _announce_rest(self, pcm: np.ndarray) -> None:
        """``push`` announces what was not announced of ``pcm``: Silero is told every sample."""
        already = min(self._announced, len(pcm))
        self._announced -= already
        if already < len(pcm):
            self._vad.silero.lookahead(pcm[already:])

    def our_speech_started(self, t: float, pcm: np.ndarray) -> None:
        """The app begins to send ``pcm`` (8 kHz int16) into the call at stream time ``t``."""
        self._echo.start(t, pcm)
        self.human.our_speech_started(t)

    def our_speech_ended(self, t: float) -> None:
        """The app's words ended (or were cut short) at stream time ``t``."""
        self._echo.stop(t)
        self.human.our_speech_ended(t)

    def push(self, pcm: np.ndarray, t: float, *, concealed: bool = False) -> list[DetectorOutput | ToneEvent]:
        """Feed received audio (int16 mono, any length) whose first sample is at stream time ``t``;
        ``concealed``: the jitter buffer made it up for packets that did not come.

        Returns window classifications, the hold and human decisions, and every tone event
        (DTMF, ringback, busy, reorder, SIT) as the tone detector reports it."""
        pcm = np.asarray(pcm, dtype=np.int16)
        self._clock.advance(t, len(pcm))
        self._announce_rest(pcm)
        made_up = np.full(len(pcm), concealed)
        buffered = np.concatenate([self._pending, pcm]) if len(self._pending) else pcm
        buffered_concealed = np.concatenate([self._pending_concealed, made_up]) if len(self._pending) else made_up
        count = len(buffered) // self._frame
        if count < _BATCH_FRAMES:
            self._pending = buffered.copy()
            self._pending_concealed = buffered_concealed.copy()
            return []
        whole = count * self._frame
        self._pending = buffered[whole:].copy()
        self._pending_concealed = buffered_concealed[whole:].copy()
        frames_concealed = buffered_concealed[:whole].reshape(count, self._frame).all(axis=1)
        first_t = self._frame_time(self._frames_total)
        outputs: list[DetectorOutput | ToneEvent] = []
        for event in self._tones.push(buffered[:whole], first_t):
            self._on_tone(event)
            outputs.append(event)  # the session acts on SIT / busy / DTMF itself
        features = frame_features(buffered[:whole], self.sample_rate)
        # Python floats for the per-frame logic (``tolist`` gives exactly ``float(array[i])``):
        # numpy scalars cost more than the comparisons made with them.
        levels = features.level_db.tolist()
        zcrs = features.zcr.tolist()
        concealed_flags = frames_concealed.tolist()
        probs_list = [0.0] * count
        made_up_list = [False] * count
        for i in range(count):
            frame_t = self._frame_time(self._frames_total + i)
            frame = buffered[i * self._frame : (i + 1) * self._frame]
            echo = self._echo.active and self._echo.judge(frame_t, levels[i])
            made_up_frame = echo or concealed_flags[i]
            if made_up_frame:
                self._stand_in(features, i)
                levels[i], zcrs[i] = float(features.level_db[i]), float(features.zcr[i])
                self.echo_frames += int(echo)
                self.concealed_frames += int(not echo)
                self._vad.silero.push(frame, audible=False)
                prob = 0.0
            elif self._listening(levels[i], frame_t):
                prob = float(self._vad.push(frame, frame_t).speech_prob)
            else:
                self._vad.silero.push(frame, audible=False)  # keeps its 32 ms steps aligned
                prob = 0.0
            probs_list[i] = prob
            made_up_list[i] = made_up_frame
            level = levels[i]
            self.far_end_speaking = bool(prob >= SPEECH_PROB and level >= self.human.foreground_min_dbov())
            if not made_up_frame and prob < SPEECH_PROB and level < LINE_FLOOR_MAX_DBOV:
                self._line_frame = (level, features.spectrum[i], zcrs[i])
            for decision in self.human.push_frame(frame_t, level, prob, features.spectrum[i], zcrs[i]):
                if self.human_detected:
                    break
                self.human_detected = isinstance(decision, HumanDetected)
                outputs.append(decision)
            done = self._frames_total + i + 1
            if done % self.hop_frames == 0 and done >= self.window_frames:
                start = i + 1 - self.window_frames
                probs = np.array(probs_list)
                window = FrameFeatures(
                    _tail(self._levels, features.level_db, start, i + 1),
                    _tail(self._zcr, features.zcr, start, i + 1),
                    _tail(self._spectra, features.spectrum, start, i + 1),
                )
                window_probs = _tail(self._probs, probs, start, i + 1)
                made_up = _tail(self._made_up, np.array(made_up_list), start, i + 1)
                outputs.extend(
                    self._on_window(window, window_probs, self._frame_time(done), float(np.mean(made_up)), self._shapes_upto(done, window))
                )
        probs = np.array(probs_list)
        keep = self.window_frames
        self._levels = np.concatenate([self._levels, features.level_db])[-keep:]
        self._zcr = np.concatenate([self._zcr, features.zcr])[-keep:]
        self._spectra = np.concatenate([self._spectra, features.spectrum])[-keep:]
        self._probs = np.concatenate([self._probs, probs])[-keep:]
        self._made_up = np.concatenate([self._made_up, np.array(made_up_list)])[-keep:]
        self._frames_total += count
        return outputs

    # -- internals ------------------------------------------------------------------------

    def _shapes_upto(self, done: int, window: FrameFeatures) -> FrameShapes:
        """The window's ``FrameShapes``, deriving those of its frames not derived yet (the frames
        since the last window: their stand-ins are in by now)."""
        new = done - self._shaped_total
        rows = self._shape_tracker.push(window.spectrum[len(window) - new :]).values
        self._shapes = np.concatenate([self._shapes, rows])[-self.window_frames :]
        self._shaped_total = done
        return FrameShapes(self._shapes[-len(window) :])

    def _stand_in(self, features: FrameFeatures, i: int) -> None:
        """A frame with nothing of the far end in it (our own words coming back, or made up for a
        lost packet): the line as it sounded before, for every consumer."""
        level, spectrum, zcr = self._line_frame or (-120.0, np.zeros_like(features.spectrum[i]), 0.0)
        features.level_db[i] = level
        features.spectrum[i] = spectrum
        features.zcr[i] = zcr

    def _listening(self, level: float, t: float) -> bool:
        """Does this frame need Silero? Always, except inside steady music."""
        if self._steady_music_dbov is None or self.human.run is not None:
            return True
        if level < self._steady_music_dbov - _LISTEN_DROP_DB or level > self._music_peak_dbov + _LISTEN_RISE_DB:
            self._listen_until = t + _LISTEN_SECONDS
        return t < self._listen_until

    def _on_tone(self, event: ToneEvent) -> None:
        self.tone_events.append(event)
        del self.tone_events[:-100]
        decided = float(event.detail.get("decided_at", event.t))
        if event.kind == "sit":
            self._sit_t = decided
        elif event.kind == "dtmf" and not event.detail.get("echo"):
            self._dtmf_t = decided

    def _on_window(
        self, frames: FrameFeatures, probs: np.ndarray, t_end: float, made_up_share: float, shapes: FrameShapes
    ) -> list[DetectorOutput]:
        t_start = t_end - self.window_seconds
        features, _ = analyse_window(frames, self.sample_rate, shapes)
        recent = probs[-round(_SPEECH_SHARE_SECONDS / 0.02) :]
        speech_share = float(np.mean(recent >= SPEECH_PROB)) if len(recent) else 0.0
        current = self._tones.current
        tones = ToneState(
            steady=None if current is None else current.kind,
            sit=t_end - self._sit_t <= _TONE_MARK_SECONDS,
            dtmf=t_end - self._dtmf_t <= _TONE_MARK_SECONDS,
        )
        window_share = float(np.mean(probs >= SPEECH_PROB)) if len(probs) else 0.0
        audio_class, confidence = classify_window(features, speech_share, tones, self._classifier, window_share)
        self.human.on_window(audio_class, t_start, t_end)
        self._steady_music_dbov = median(frames.level_db) if audio_class == AudioClass.MUSIC else None
        self._music_peak_dbov = features.peak_dbov
        if audio_class == AudioClass.SPEECH:
            audio_class = AudioClass.LIVE_HUMAN if self.human_detected else self.human.source_class()
        if audio_class == AudioClass.MUSIC and made_up_share < _MADE_UP_MAX_SHARE:
            self._music_windows += 1
            if self._first_music_t is None:
                self._first_music_t = t_start
        values = features.as_dict()
        values["speech_share"] = speech_share
        classification = Classification(t_start, t_end, audio_class, confidence, values)
        self.history.append(classification)
        if len(self.history) > self.max_history * 1.1:
            del self.history[: len(self.history) - self.max_history]
        outputs: list[DetectorOutput] = [classification]
        if not self.hold_detected and self._music_windows >= self.hold_music_windows:
            self.hold_detected = True
            outputs.append(
                HoldDetected(
                    t=t_end,
                    confidence=min(0.99, 0.6 + 0.03 * self._music_windows * self.hop_seconds),
                    evidence={
                        "rule": "music",
                        "music_seconds": self._music_windows * self.hop_seconds,
                        "first_music_t": self._first_music_t,
                        "announcements": self.human.announcements,
                    },
                )
            )
        return outputs

    def _frame_time(self, frame_index: int) -> float:
        return self._clock.frame_time(frame_index)


def _tail(previous: np.ndarray, current: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of ``current`` (this push's frames), negative ``start`` reaching back
    into ``previous`` (the frames of earlier pushes)."""
    if start >= 0:
        return current[start:stop]
    return np.concatenate([previous[len(previous) + start :], current[:stop]])


def _whole_frames(seconds: float, name: str) -> int:
    frames = seconds / 0.02
    if frames < 1 or abs(frames - round(frames)) > 1e-6:
        raise ValueError(f"{name} must be a whole number of 20 ms frames, got {seconds}")
    return int(round(frames))

