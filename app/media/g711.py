"""G.711 mu-law and A-law codecs (ITU-T G.711) with lookup tables; no audioop (gone in 3.13).

Encoding indexes a 64 Ki table by the 16-bit sample, decoding a 256-entry table by the byte,
so both are one numpy ``take`` per frame.
"""

from __future__ import annotations

import numpy as np

_BIAS = 0x84
_CLIP = 32635


def _ulaw_encode_scalar(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, _CLIP) + _BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not sample & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _ulaw_decode_scalar(byte: int) -> int:
    byte = ~byte & 0xFF
    sign = byte & 0x80
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return -magnitude if sign else magnitude


def _alaw_encode_scalar(sample: int) -> int:
    sign = 0x00 if sample < 0 else 0x80
    if sample < 0:
        sample = -sample - 1 if sample > -32768 else 32767
    sample >>= 3  # A-law works on 13-bit magnitudes
    if sample < 32:
        code = sample >> 1
    else:
        exponent = 1
        value = sample >> 5
        while value > 1 and exponent < 7:
            value >>= 1
            exponent += 1
        mantissa = (sample >> exponent) & 0x0F
        code = (exponent << 4) | mantissa
    return (code | sign) ^ 0x55


def _alaw_decode_scalar(byte: int) -> int:
    byte ^= 0x55
    sign = byte & 0x80
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    if exponent == 0:
        magnitude = (mantissa << 4) + 8
    else:
        magnitude = ((mantissa << 4) + 0x108) << (exponent - 1)
    return magnitude if sign else -magnitude


_ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int32)
_ULAW_ENCODE = np.array([_ulaw_encode_scalar(int(s)) for s in _ALL_SAMPLES], dtype=np.uint8)
_ULAW_DECODE = np.array([_ulaw_decode_scalar(b) for b in range(256)], dtype=np.int16)
_ALAW_ENCODE = np.array([_alaw_encode_scalar(int(s)) for s in _ALL_SAMPLES], dtype=np.uint8)
_ALAW_DECODE = np.array([_alaw_decode_scalar(b) for b in range(256)], dtype=np.int16)

ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5


def _as_int16(pcm: np.ndarray) -> np.ndarray:
    pcm = np.asarray(pcm)
    if pcm.dtype != np.int16:
        raise TypeError(f"expected int16 PCM, got {pcm.dtype}")
    return pcm


def ulaw_encode(pcm: np.ndarray) -> bytes:
    """int16 PCM -> mu-law bytes."""
    return _ULAW_ENCODE[_as_int16(pcm).astype(np.int32) + 32768].tobytes()


def ulaw_decode(data: bytes) -> np.ndarray:
    """mu-law bytes -> int16 PCM."""
    return _ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def alaw_encode(pcm: np.ndarray) -> bytes:
    """int16 PCM -> A-law bytes."""
    return _ALAW_ENCODE[_as_int16(pcm).astype(np.int32) + 32768].tobytes()


def alaw_decode(data: bytes) -> np.ndarray:
    """A-law bytes -> int16 PCM."""
    return _ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]
