"""Frame-level voice activity by level, for "has the far end finished talking?" decisions.

Pure and cheap: one dBov number per 20 ms frame, with hysteresis. Used by the call session to
wait for the end of a menu prompt before pressing keys; the audio classifier answers the harder
question of *what* is talking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FULL_SCALE = 32768.0


def level_dbov(pcm: np.ndarray) -> float:
    """RMS level in dB relative to full scale (digital silence -> -120). Called for every frame
    of every call: one dot product and scalar math (numpy's reductions cost several times more)."""
    if len(pcm) == 0:
        return -120.0
    samples = np.asarray(pcm, dtype=np.float64)
    energy = float(samples @ samples)
    if energy <= 0.0:
        return -120.0
    return 20.0 * math.log10(max(math.sqrt(energy / len(samples)), 1e-6) / FULL_SCALE)


@dataclass
class ActivityTracker:
    """Tracks when the far end last made sound and how long it has been quiet.

    A frame is active above ``on_dbov``; it stays active until the level drops below
    ``off_dbov`` (hysteresis, so word-internal dips do not count as pauses).
    """

    on_dbov: float = -40.0
    off_dbov: float = -46.0
    active: bool = False
    last_active_t: float | None = None
    first_active_t: float | None = None
    active_seconds: float = 0.0

    def push(self, pcm: np.ndarray, t: float, duration: float) -> None:
        level = level_dbov(pcm)
        threshold = self.off_dbov if self.active else self.on_dbov
        self.active = level > threshold
        if self.active:
            if self.first_active_t is None:
                self.first_active_t = t
            self.last_active_t = t + duration
            self.active_seconds += duration

    def quiet_for(self, now: float) -> float:
        """Seconds since the far end last made sound (0 while it is sounding, inf if it never did)."""
        if self.active:
            return 0.0
        if self.last_active_t is None:
            return float("inf")
        return max(0.0, now - self.last_active_t)

    def reset(self) -> None:
        self.active = False
        self.last_active_t = None
        self.first_active_t = None
        self.active_seconds = 0.0
