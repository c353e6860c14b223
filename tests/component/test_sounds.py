"""What a SPEAK step plays (app.media.sounds): files on this machine, never the test corpus."""

from pathlib import Path

import numpy as np
import pytest

from app.media.sounds import SoundError, load_sound, sound_path
from app.media.wavfile import write_wav


def test_a_prompt_is_a_wav_in_the_sounds_directory(tmp_path: Path):
    assert sound_path("prompt:one-moment-please", tmp_path) == tmp_path / "one-moment-please.wav"
    assert sound_path("prompt:digits/1", tmp_path) == tmp_path / "digits" / "1.wav"
    assert sound_path("/srv/greeting.wav", tmp_path) == Path("/srv/greeting.wav")


@pytest.mark.parametrize("ref", ["prompt:", "prompt:../../etc/passwd", "prompt:/etc/passwd"])
def test_a_prompt_cannot_leave_the_sounds_directory(ref, tmp_path: Path):
    with pytest.raises(SoundError, match="sound name"):
        sound_path(ref, tmp_path)


@pytest.mark.parametrize("ref", ["moh:macroform-robot_dity", "speech:kristoff.raw", "tone:ringback.wav"])
def test_test_corpus_references_are_refused(ref, tmp_path: Path):
    with pytest.raises(SoundError, match="test corpus"):
        sound_path(ref, tmp_path)


def test_a_missing_file_is_an_error_and_nothing_is_fetched(tmp_path: Path):
    with pytest.raises(SoundError, match="no such file"):
        load_sound("prompt:one-moment-please", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_prompt_is_read_at_the_call_rate(tmp_path: Path):
    tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.int16)  # 1 s at 16 kHz
    write_wav(tmp_path / "beep.wav", tone, sample_rate=16000)
    pcm = load_sound("prompt:beep", tmp_path)
    assert pcm.dtype == np.int16 and len(pcm) == 8000
    assert 5000 < np.abs(pcm).max() <= 8000


def test_a_file_that_is_not_audio_is_an_error(tmp_path: Path):
    (tmp_path / "broken.wav").write_bytes(b"not a wav file")
    with pytest.raises(SoundError, match="broken"):
        load_sound("prompt:broken", tmp_path)
