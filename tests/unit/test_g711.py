"""G.711 against the code points of ITU-T G.711 (tables 1a/2a), in 16-bit PCM units.

mu-law works on 14-bit samples (16-bit / 4) and A-law on 13-bit samples (16-bit / 8); the
expected values below are the ITU decision and reconstruction values scaled to 16 bits.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.media.g711 import ALAW_SILENCE, ULAW_SILENCE, alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

ALL_BYTES = bytes(range(256))
ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


def ulaw(sample: int) -> int:
    return ulaw_encode(np.array([sample], np.int16))[0]


def alaw(sample: int) -> int:
    return alaw_encode(np.array([sample], np.int16))[0]


# --- mu-law ------------------------------------------------------------------------------


def test_ulaw_zero_and_extremes():
    assert ulaw(0) == 0xFF == ULAW_SILENCE
    assert ulaw(-1) == 0x7F  # negative zero code
    assert ulaw(32767) == 0x80
    assert ulaw(-32768) == 0x00


# ITU-T G.711 mu-law: segment end decision values 31, 95, 223, 479, 991, 2015, 4063 (14-bit), times 4.
ULAW_SEGMENT_STARTS = [4 * v for v in (31, 95, 223, 479, 991, 2015, 4063)]


@pytest.mark.parametrize("segment", range(1, 8))
def test_ulaw_segment_boundaries(segment):
    start = ULAW_SEGMENT_STARTS[segment - 1]
    below = ~ulaw(start - 1) & 0xFF
    at = ~ulaw(start) & 0xFF
    assert (below >> 4, below & 0x0F) == (segment - 1, 15)  # last step of the segment below
    assert (at >> 4, at & 0x0F) == (segment, 0)
    # negative samples mirror positive ones with the sign bit clear
    assert ulaw(-start) == ulaw(start) & 0x7F


def expected_ulaw_decode(byte: int) -> int:
    """ITU reconstruction value: ((2m + 33) << e) - 33 in 14-bit units."""
    code = ~byte & 0xFF
    exponent, mantissa = (code >> 4) & 7, code & 0x0F
    magnitude = 4 * (((2 * mantissa + 33) << exponent) - 33)
    return -magnitude if code & 0x80 else magnitude


def test_ulaw_decode_table_all_256_values():
    decoded = ulaw_decode(ALL_BYTES)
    assert decoded.dtype == np.int16
    assert decoded.tolist() == [expected_ulaw_decode(b) for b in range(256)]


def test_ulaw_decode_known_values():
    # values of the classic Sun/CCITT g711.c table
    table = ulaw_decode(ALL_BYTES)
    assert table[0x00] == -32124 and table[0x01] == -31100 and table[0x0F] == -16764
    assert table[0x70] == -120 and table[0x7E] == -8 and table[0x7F] == 0
    assert table[0x80] == 32124 and table[0xFF] == 0
    # segment bases for mantissa 0 on the positive side
    assert [table[0xFF - 16 * e] for e in range(8)] == [0, 132, 396, 924, 1980, 4092, 8316, 16764]


def test_ulaw_round_trip_error_is_bounded_by_half_a_step():
    codes = np.frombuffer(ulaw_encode(ALL_SAMPLES), np.uint8)
    decoded = ulaw_decode(codes.tobytes()).astype(np.int32)
    exponent = ((~codes) >> 4) & 7
    half_step = 4 << exponent.astype(np.int32)  # the step is 2 << e in 14-bit units
    error = np.abs(decoded - ALL_SAMPLES.astype(np.int32))
    in_range = np.abs(ALL_SAMPLES.astype(np.int32)) <= 32635  # beyond this the encoder clips
    assert np.all(error[in_range] <= half_step[in_range])
    assert set(np.abs(decoded[~in_range]).tolist()) == {32124}


# --- A-law -------------------------------------------------------------------------------


def test_alaw_zero_and_extremes():
    assert alaw(0) == 0xD5 == ALAW_SILENCE
    assert alaw(-1) == 0x55
    assert alaw(32767) == 0xAA
    assert alaw(-32768) == 0x2A


# A-law segments start at 32, 64, ..., 2048 (13-bit), i.e. powers of two from 256 in 16-bit units.
ALAW_SEGMENT_STARTS = [8 * (32 << k) for k in range(7)]


@pytest.mark.parametrize("segment", range(1, 8))
def test_alaw_segment_boundaries(segment):
    start = ALAW_SEGMENT_STARTS[segment - 1]
    below = alaw(start - 1) ^ 0x55
    at = alaw(start) ^ 0x55
    assert below & 0x80 and at & 0x80  # positive
    assert ((below >> 4) & 7, below & 0x0F) == (segment - 1, 15)
    assert ((at >> 4) & 7, at & 0x0F) == (segment, 0)
    # A-law is symmetric around -1/0: -x-1 codes like x, with the sign bit clear
    assert alaw(-start - 1) == alaw(start) & 0x7F


def expected_alaw_decode(byte: int) -> int:
    """ITU reconstruction value: 2m + 1 in segment 0, (2m + 33) << (e - 1) above, in 12-bit units."""
    code = byte ^ 0x55
    exponent, mantissa = (code >> 4) & 7, code & 0x0F
    magnitude = 8 * (2 * mantissa + 1 if exponent == 0 else (2 * mantissa + 33) << (exponent - 1))
    return magnitude if code & 0x80 else -magnitude


def test_alaw_decode_table_all_256_values():
    decoded = alaw_decode(ALL_BYTES)
    assert decoded.dtype == np.int16
    assert decoded.tolist() == [expected_alaw_decode(b) for b in range(256)]


def test_alaw_decode_known_values():
    table = alaw_decode(ALL_BYTES)
    assert table[:4].tolist() == [-5504, -5248, -6016, -5760]  # Sun/CCITT g711.c
    assert table[0xD5] == 8 and table[0x55] == -8
    assert table[0xAA] == 32256 and table[0x2A] == -32256


def test_alaw_round_trip_error_is_bounded_by_half_a_step():
    codes = np.frombuffer(alaw_encode(ALL_SAMPLES), np.uint8)
    decoded = alaw_decode(codes.tobytes()).astype(np.int32)
    exponent = ((codes ^ 0x55) >> 4) & 7
    half_step = 8 << np.maximum(exponent.astype(np.int32) - 1, 0)  # segments 0 and 1 share a step
    error = np.abs(decoded - ALL_SAMPLES.astype(np.int32))
    assert np.all(error <= half_step)


# --- both --------------------------------------------------------------------------------


@pytest.mark.parametrize("encode", [ulaw_encode, alaw_encode])
def test_encoders_reject_non_int16(encode):
    with pytest.raises(TypeError):
        encode(np.zeros(160, np.float32))


@pytest.mark.parametrize(("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)])
def test_one_byte_per_sample_and_sign_symmetry(encode, decode):
    pcm = (np.sin(np.arange(160) / 5) * 20000).astype(np.int16)
    payload = encode(pcm)
    assert isinstance(payload, bytes) and len(payload) == 160
    table = decode(ALL_BYTES).astype(np.int32)
    assert np.array_equal(table[:128], -table[128:])  # the sign bit only flips the sign


@pytest.mark.parametrize(("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)])
def test_reconstruction_values_survive_another_pass(encode, decode):
    once = decode(encode(ALL_SAMPLES))
    assert np.array_equal(decode(encode(once)), once)
