"""Everything that knows RTP: G.711, packets, jitter buffering, pacing, UDP endpoints, recordings."""

from app.media.endpoint import EndpointStats, NoFreePortError, RtpEndpoint
from app.media.health import MediaHealth
from app.media.jitter import Frame, JitterBuffer, JitterStats
from app.media.pacing import Pacer, RtpSender
from app.media.recorder import SpeechTrack, StreamingWavWriter

__all__ = [
    "EndpointStats",
    "Frame",
    "JitterBuffer",
    "JitterStats",
    "MediaHealth",
    "NoFreePortError",
    "Pacer",
    "RtpEndpoint",
    "RtpSender",
    "SpeechTrack",
    "StreamingWavWriter",
]
