"""Stream time for detectors fed in pieces: sample counts mapped to the caller's clock."""

from __future__ import annotations

MAX_CLOCK_DRIFT_SECONDS = 0.25  # a larger jump in the caller's t is a gap in the stream: re-anchor


class StreamClock:
    """Tracks the stream time of sample 0 from the ``t`` that comes with each piece of audio.

    Small disagreements between the caller's clock and the sample count (jitter) are ignored so
    frame times stay evenly spaced; a jump beyond ``max_drift`` re-anchors.
    """

    def __init__(self, sample_rate: int, frame_samples: int, max_drift: float = MAX_CLOCK_DRIFT_SECONDS) -> None:
        self.sample_rate = sample_rate
        self.frame_samples = frame_samples
        self.max_drift = max_drift
        self.samples_total = 0
        self._t_anchor: float | None = None  # stream time of sample 0

    def advance(self, t: float, samples: int) -> None:
        """Account for ``samples`` new samples whose first one is at stream time ``t``."""
        if self._t_anchor is not None:
            expected = self._t_anchor + self.samples_total / self.sample_rate
            if abs(t - expected) > self.max_drift:
                self._t_anchor = t - self.samples_total / self.sample_rate
        else:
            self._t_anchor = t - self.samples_total / self.sample_rate
        self.samples_total += samples

    def frame_time(self, frame_index: int) -> float:
        assert self._t_anchor is not None, "advance() first"
        return self._t_anchor + frame_index * self.frame_samples / self.sample_rate
