"""read_wav/write_wav on files built byte by byte, in every format telephony recordings come in."""

from __future__ import annotations

import struct
import wave

import numpy as np
import pytest

from app.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from app.media.wavfile import WavError, read_wav, write_wav

PCM = np.array([0, 1, -1, 1000, -1000, 32767, -32768, 12345, -23456, 256], dtype=np.int16)


def riff(
    tag: int, channels: int, rate: int, bits: int, body: bytes, *, before_data: bytes = b"", fmt_extra: bytes = b""
) -> bytes:
    block_align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block_align, block_align, bits) + fmt_extra
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + before_data
    chunks += b"data" + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) % 2 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def test_pcm16_round_trip_through_write_wav(tmp_path):
    path = tmp_path / "a.wav"
    write_wav(path, PCM, 8000)
    audio = read_wav(path)
    assert audio.sample_rate == 8000
    assert audio.pcm.dtype == np.int16
    assert np.array_equal(audio.pcm, PCM)
    with wave.open(str(path)) as w:  # and the stdlib agrees it is a plain 16-bit mono WAV
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 8000, len(PCM))


def test_duration(tmp_path):
    path = tmp_path / "a.wav"
    write_wav(path, np.zeros(12000, np.int16), 8000)
    assert read_wav(path).duration == 1.5


def test_pcm8_is_unsigned_and_scaled_to_16_bits(tmp_path):
    path = tmp_path / "u8.wav"
    path.write_bytes(riff(1, 1, 8000, 8, bytes([128, 0, 255, 129])))
    assert read_wav(path).pcm.tolist() == [0, -32768, 32512, 256]


def test_pcm24_keeps_the_top_16_bits(tmp_path):
    values = [0, 1 << 8, -(1 << 8), (1 << 23) - 1, -(1 << 23), 0x123456]
    body = b"".join(v.to_bytes(3, "little", signed=True) for v in values)
    path = tmp_path / "s24.wav"
    path.write_bytes(riff(1, 1, 16000, 24, body))
    audio = read_wav(path)
    assert audio.sample_rate == 16000
    assert audio.pcm.tolist() == [0, 1, -1, 32767, -32768, 0x1234]


def test_pcm32(tmp_path):
    path = tmp_path / "s32.wav"
    path.write_bytes(riff(1, 1, 8000, 32, np.array([0, 1 << 16, -(1 << 31), (1 << 31) - 1], "<i4").tobytes()))
    assert read_wav(path).pcm.tolist() == [0, 1, -32768, 32767]


@pytest.mark.parametrize(("bits", "dtype"), [(32, "<f4"), (64, "<f8")])
def test_float_is_scaled_and_clipped(tmp_path, bits, dtype):
    path = tmp_path / "f.wav"
    path.write_bytes(riff(3, 1, 8000, bits, np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0], dtype).tobytes()))
    assert read_wav(path).pcm.tolist() == [0, 16384, -16384, 32767, -32767, 32767, -32768]


def test_mulaw_wav(tmp_path):
    codes = ulaw_encode(PCM)
    path = tmp_path / "ulaw.wav"
    path.write_bytes(riff(7, 1, 8000, 8, codes))
    assert np.array_equal(read_wav(path).pcm, ulaw_decode(codes))


def test_alaw_wav(tmp_path):
    codes = alaw_encode(PCM)
    path = tmp_path / "alaw.wav"
    path.write_bytes(riff(6, 1, 8000, 8, codes))
    assert np.array_equal(read_wav(path).pcm, alaw_decode(codes))


def test_stereo_channels_are_averaged(tmp_path):
    frames = np.array([[100, 300], [-100, -300], [32767, 32767], [1000, -1000]], "<i2")
    path = tmp_path / "stereo.wav"
    path.write_bytes(riff(1, 2, 44100, 16, frames.tobytes()))
    audio = read_wav(path)
    assert audio.sample_rate == 44100
    assert audio.pcm.tolist() == [200, -200, 32767, 0]


def test_extensible_format_uses_the_subformat(tmp_path):
    # cbSize 22, valid bits, channel mask, then the SubFormat GUID whose first two bytes are the tag
    ulaw_guid = struct.pack("<H", 7) + bytes.fromhex("000000001000800000aa00389b71")
    extra = struct.pack("<HHI", 22, 8, 4) + ulaw_guid
    codes = ulaw_encode(PCM)
    path = tmp_path / "ext.wav"
    path.write_bytes(riff(0xFFFE, 1, 8000, 8, codes, fmt_extra=extra))
    assert np.array_equal(read_wav(path).pcm, ulaw_decode(codes))


def test_unknown_chunks_with_odd_sizes_are_skipped(tmp_path):
    odd = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\x00"  # padded to an even length
    path = tmp_path / "list.wav"
    path.write_bytes(riff(1, 1, 8000, 16, PCM.astype("<i2").tobytes(), before_data=odd))
    assert np.array_equal(read_wav(path).pcm, PCM)


def test_odd_trailing_byte_is_ignored(tmp_path):
    path = tmp_path / "odd.wav"
    path.write_bytes(riff(1, 1, 8000, 16, PCM.astype("<i2").tobytes() + b"\x01"))
    assert np.array_equal(read_wav(path).pcm, PCM)


BROKEN = {
    "text": b"this is not a wav file at all",
    "empty": b"",
    "rifx": b"RIFX" + b"\x00" * 40,
    "riff-not-wave": b"RIFF\x04\x00\x00\x00AVI ",
    "no-data-chunk": riff(1, 1, 8000, 16, b"")[: 12 + 8 + 16],
    "no-fmt-chunk": b"RIFF\x0c\x00\x00\x00WAVEdata\x00\x00\x00\x00",
    "short-fmt": b"RIFF\x1c\x00\x00\x00WAVEfmt \x04\x00\x00\x00\x01\x00\x01\x00data\x00\x00\x00\x00",
    "adpcm": riff(2, 1, 8000, 4, b"\x00" * 8),
    "pcm-12-bit": riff(1, 1, 8000, 12, b"\x00" * 8),
    "zero-channels": riff(1, 0, 8000, 16, b"\x00" * 8),
    "zero-rate": riff(1, 1, 0, 16, b"\x00" * 8),
}


@pytest.mark.parametrize("data", BROKEN.values(), ids=BROKEN.keys())
def test_unreadable_files_raise_wav_error(tmp_path, data):
    path = tmp_path / "broken.wav"
    path.write_bytes(data)
    with pytest.raises(WavError):
        read_wav(path)


def test_wav_error_names_the_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(WavError, match=r"notes\.txt"):
        read_wav(path)


def test_wav_seconds_reads_the_headers_only(tmp_path):
    from app.media.recorder import StreamingWavWriter
    from app.media.wavfile import wav_seconds

    path = tmp_path / "b.wav"
    path.write_bytes(riff(1, 1, 8000, 16, b"\x00\x00" * 12000, before_data=b"LIST\x04\x00\x00\x00abcd"))
    assert wav_seconds(path) == 1.5
    unfinished = StreamingWavWriter(tmp_path / "u.wav")
    unfinished.write(np.zeros(4000, np.int16))
    unfinished._file.flush()
    assert wav_seconds(tmp_path / "u.wav") == 0.5  # size unknown in the header: what the file holds
    (tmp_path / "x.wav").write_bytes(b"not a wav at all")
    with pytest.raises(WavError):
        wav_seconds(tmp_path / "x.wav")
