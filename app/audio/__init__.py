"""Audio understanding: pure functions and detectors over decoded far-end PCM (no I/O)."""

from app.audio.simple_detector import SimpleHoldDetector
from app.audio.types import AudioClass, Classification, DetectorOutput, HoldDetected, HumanDetected

__all__ = [
    "AudioClass",
    "Classification",
    "DetectorOutput",
    "HoldDetected",
    "HumanDetected",
    "SimpleHoldDetector",
]
