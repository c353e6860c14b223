"""The recordings a call flow plays (a SPEAK step's ``metadata.audio``), from files on this machine.

A reference is ``prompt:NAME`` (an Asterisk sound by name, e.g. ``prompt:one-moment-please`` or
``prompt:digits/1``, read from the sounds directory: ``Settings.sounds_dir``) or the path of a
WAV file. Nothing is fetched while a call runs: a missing file is a ``SoundError``, and the call
goes on without it. The test corpus the simulator plays from (``app.sim.corpus``) is not used.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from app.media.wavfile import WavError, load_audio

# The simulator's corpus knows these too (hold music, recorded voices, tones); a flow does not.
_CORPUS_ONLY = ("moh", "speech", "tone")


class SoundError(ValueError):
    """The reference names no playable file; the message says why."""


def sound_path(ref: str, sounds_dir: Path) -> Path:
    """The file ``ref`` names (which may not exist)."""
    kind, sep, name = ref.partition(":")
    if sep and kind == "prompt":
        relative = PurePosixPath(name)
        if not name or relative.is_absolute() or ".." in relative.parts:
            raise SoundError(f"{ref!r}: a prompt is a sound name such as prompt:one-moment-please")
        return Path(sounds_dir) / f"{relative}.wav"
    if sep and kind in _CORPUS_ONLY:
        raise SoundError(f"{ref!r}: {kind}: recordings exist only in the simulator's test corpus")
    return Path(ref)


def load_sound(ref: str, sounds_dir: Path, sample_rate: int = 8000) -> np.ndarray:
    """The recording as mono int16 at ``sample_rate``; raises ``SoundError``."""
    path = sound_path(ref, sounds_dir)
    if not path.is_file():
        raise SoundError(f"{ref!r}: no such file {path}")
    try:
        return load_audio(path, sample_rate)
    except (WavError, OSError) as exc:
        raise SoundError(f"{ref!r}: {exc}") from None
