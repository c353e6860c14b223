"""Is what we hear our own words coming back? Echo of the app's speech, told from the far end's.

When the app speaks into the call (a greeting, a probe question), a line or a far end may return
it: a hybrid's echo, a speakerphone, a PBX that loops audio. Those frames are loud, speech-like
and start right after ours: taken at face value they would pass for the far end talking, and
the app would hear its own words as a reply. A person who talks over us (double talk) is louder
than the echo the line returns at that moment.

Pure and streaming, on the detector's time axis. ``start`` gives the audio we are about to send
and the stream time it starts; every received frame then goes through ``judge``, which says
whether the frame is explained by our audio (echo only) or holds sound of the far end's own.

How: the echo path is a delay and a loss. Per 20 ms frame we compare levels (dBov): the received
level sequence is correlated with ours over the lags an echo path may have; once one lag explains
it (correlation over our loud frames), the loss is measured on them and a received frame is the
far end's own when it stands clearly over the echo that lag and loss predict. While the lag is
being learned (our first loud frames and the longest lag after them), a frame is echo if it is
no louder than our own audio a moment earlier, minus a minimal loss: our words cannot come back
louder than we sent them. When no lag explains what came back, the line returns no echo and
nothing is echo (a recording that carries on over our words correlates with nothing). A path
found once is used from the first frame of our next utterance: it is the same line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_SECONDS = 0.02
SILENT_DBOV = -120.0


@dataclass(frozen=True)
class EchoSettings:
    max_lag_frames: int = 30  # 600 ms: a PBX, a trunk and a far-end device round trip
    active_dbov: float = -45.0  # our frames this loud can produce an audible echo
    min_loss_db: float = 3.0  # no echo path returns our words louder than this under what we sent
    own_margin_db: float = 8.0  # over the predicted echo: the far end's own sound (double talk)
    min_frames_for_lag: int = 15  # of our loud frames, before a lag is trusted
    min_correlation: float = 0.7
    tail_frames: int = 10  # after the lag's reach, our audio may still ring in the line


@dataclass(frozen=True)
class EchoPath:
    lag_frames: int
    loss_db: float
    correlation: float


class EchoMonitor:
    """Tells echo of our own speech from the far end's sound, frame by frame."""

    def __init__(self, settings: EchoSettings = EchoSettings()) -> None:
        self.settings = settings
        self._ours = np.zeros(0)  # our levels per frame, from ``_t0``
        self._t0 = 0.0
        self._heard: list[float] = []  # received levels per frame from ``_t0``
        self.path: EchoPath | None = None  # the last echo path measured (kept across utterances)
        self._learning = False  # no path known yet for this utterance, and not yet ruled out
        self._active = False

    @property
    def active(self) -> bool:
        """Our speech (or its echo tail) is on the line now."""
        return self._active

    def start(self, t: float, pcm: np.ndarray) -> None:
        """We begin sending ``pcm`` (8 kHz int16) at stream time ``t``."""
        self._ours = frame_levels_dbov(pcm)
        self._t0 = t
        self._heard = []
        self._active = True
        self._learning = self.path is None

    def stop(self, t: float) -> None:
        """We stopped early (barge-in): nothing after ``t`` was sent."""
        if not self._active:
            return
        sent = max(0, int(round((t - self._t0) / FRAME_SECONDS)))
        self._ours = self._ours[:sent]

    def judge(self, t: float, level_dbov: float) -> bool:
        """Is the received frame at stream time ``t`` (its level) explained by our own audio?"""
        if not self._active:
            return False
        s = self.settings
        index = int(round((t - self._t0) / FRAME_SECONDS))
        if index < 0:
            return False
        if index >= len(self._ours) + s.max_lag_frames + s.tail_frames:
            self._active = False
            return False
        while len(self._heard) < index:
            self._heard.append(SILENT_DBOV)  # frames we never saw (a gap in the stream)
        self._heard.append(level_dbov)
        if len(self._heard) % 5 == 0:
            self._measure()
        if self.path is not None:
            return level_dbov <= self._predicted_echo(index) + s.own_margin_db
        if self._learning:
            return level_dbov <= self._predicted_echo(index) - s.min_loss_db
        return False

    def _predicted_echo(self, index: int) -> float:
        """The loudest echo our audio could produce at this frame."""
        s = self.settings
        if self.path is not None:
            lag, loss = self.path.lag_frames, self.path.loss_db
            window = self._ours[max(0, index - lag - 1) : max(0, index - lag + 2)]
            return float(np.max(window)) - loss if len(window) else SILENT_DBOV
        window = self._ours[max(0, index - s.max_lag_frames) : index + 1]
        return float(np.max(window)) if len(window) else SILENT_DBOV

    def _measure(self) -> None:
        """Find the lag whose shifted copy of our levels best explains what came back: the
        correlation over our loud frames at every lag at once (one matrix, not a loop of
        ``corrcoef``: this runs every 5 frames while we speak, in every call)."""
        s = self.settings
        heard = np.array(self._heard)
        best = _best_lag(self._ours, heard, s)
        if best is not None and best.correlation >= s.min_correlation and best.loss_db >= s.min_loss_db:
            self.path = best
            self._learning = False
        elif self._learning and self._learned_enough(heard):
            self._learning = False  # our loud frames came back at no lag: the line has no echo

    def _learned_enough(self, heard: np.ndarray) -> bool:
        s = self.settings
        loud = np.flatnonzero(self._ours >= s.active_dbov)
        return len(loud) >= s.min_frames_for_lag and len(heard) > loud[s.min_frames_for_lag - 1] + s.max_lag_frames


def _best_lag(ours: np.ndarray, heard: np.ndarray, s: EchoSettings) -> EchoPath | None:
    """The lag (0..max_lag_frames) at which ``heard`` correlates best with ``ours`` over our loud
    frames (at least ``min_frames_for_lag`` of them, both sides varying by 1 dB or more), the
    first one on a tie; None if no lag qualifies."""
    lags = np.arange(s.max_lag_frames + 1)
    counts = np.minimum(len(heard) - lags, len(ours))
    lags, counts = lags[counts > 0], counts[counts > 0]
    if not len(lags):
        return None
    width = int(counts[0])
    columns = np.arange(width)
    loud = (ours[:width] >= s.active_dbov)[None, :] & (columns[None, :] < counts[:, None])
    back = heard[np.minimum(lags[:, None] + columns[None, :], len(heard) - 1)]
    n = loud.sum(axis=1)
    usable = n >= s.min_frames_for_lag
    if not usable.any():
        return None
    ours_rows = np.broadcast_to(ours[:width], back.shape)
    safe_n = np.maximum(n, 1)
    a = np.where(loud, ours_rows - (np.where(loud, ours_rows, 0.0).sum(axis=1) / safe_n)[:, None], 0.0)
    b = np.where(loud, back - (np.where(loud, back, 0.0).sum(axis=1) / safe_n)[:, None], 0.0)
    saa, sbb = (a * a).sum(axis=1), (b * b).sum(axis=1)
    usable &= (np.sqrt(saa / safe_n) >= 1.0) & (np.sqrt(sbb / safe_n) >= 1.0)  # np.std of each side
    if not usable.any():
        return None
    correlation = np.where(usable, (a * b).sum(axis=1) / np.sqrt(np.where(usable, saa * sbb, 1.0)), -np.inf)
    row = int(np.argmax(correlation))
    rows = loud[row]
    return EchoPath(int(lags[row]), float(np.median(ours[:width][rows] - back[row][rows])), float(correlation[row]))


def frame_levels_dbov(pcm: np.ndarray) -> np.ndarray:
    """Level of each whole 20 ms frame of 8 kHz int16 audio, dBov."""
    pcm = np.asarray(pcm, dtype=np.float64)
    count = len(pcm) // 160
    if count == 0:
        return np.zeros(0)
    frames = pcm[: count * 160].reshape(count, 160) / 32768.0
    power = np.mean(frames * frames, axis=1)
    return 10.0 * np.log10(np.maximum(power, 1e-12))
