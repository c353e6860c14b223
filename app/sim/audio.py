"""Audio for the simulated PBX: 20 ms frames, synthesised call-progress tones, corpus clips and
prompts spoken by the local text-to-speech voice.

Pure numpy, no I/O except loading clips through ``AudioLibrary``: corpus files, and ``tts:``
prompts, which ``PromptVoice`` renders with the local Piper voice once and keeps as WAV files.
Every frame is 160 int16 samples (8 kHz); ``None`` stands for a silent frame so that idle
channels cost nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.media.wavfile import load_audio, read_wav, write_wav
from app.sim.corpus import Corpus
from app.speech.types import resample

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE

# Asterisk's locally generated indications measured -13.1 dBFS RMS in the captures.
TONE_LEVEL_DBFS = -13.1
# A frame louder than this counts as someone talking (speech prompts sit at -17..-26 dBFS).
VOICE_RMS_THRESHOLD = 32768 * 10 ** (-40 / 20)

Frame = np.ndarray  # int16, FRAME_SAMPLES long

SIT_SEQUENCES: dict[str, tuple[tuple[float, float], ...]] = {
    # ITU-T E.180 / Telcordia special information tones: (frequency Hz, seconds)
    "intercept": ((913.8, 0.274), (1370.6, 0.274), (1776.7, 0.380)),
    "vacant-code": ((985.2, 0.380), (1370.6, 0.274), (1776.7, 0.380)),
    "reorder": ((913.8, 0.274), (1428.5, 0.380), (1776.7, 0.380)),
    "no-circuit": ((985.2, 0.380), (1428.5, 0.380), (1776.7, 0.380)),
}
AUDIO_REF_PATTERN = re.compile(r"^(prompt|moh|speech|tone|silence|sit|tts|entered)(?:\[([^\]]*)\])?:(.+)$", re.DOTALL)
# Other voices than the app's own (a Debian speech synthesiser): ``tts[flite:slt]:Hello?``.
OTHER_VOICES: dict[str, tuple[str, ...]] = {
    "flite": ("slt", "kal", "awb", "rms"),
    "espeak": ("en-us", "en-us+f3", "en-us+m3", "en-gb", "en-gb+f4", "en-gb-scotland"),
}
# ``entered:NODE`` names a collect node; the scenario checks that the node exists.
_NODE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class AudioRefError(ValueError):
    """An audio reference that cannot be parsed or loaded."""


def check_audio_ref(ref: str) -> str:
    """Validate the syntax of an audio reference (no file access)."""
    match = AUDIO_REF_PATTERN.match(ref)
    if not match:
        raise AudioRefError(
            f"{ref!r} is not an audio reference: use prompt:NAME, moh:TRACK, speech:FILE, tone:FILE, "
            f"silence:SECONDS, sit:{'|'.join(SIT_SEQUENCES)}, tts:TEXT, tts[VOICE]:TEXT or entered:NODE"
        )
    kind, voice, name = match.groups()
    if voice is not None:
        if kind != "tts":
            raise AudioRefError(f"{ref!r}: only tts: takes a voice in brackets")
        check_voice(voice)
    if kind == "silence":
        try:
            seconds = float(name)
        except ValueError:
            raise AudioRefError(f"{ref!r}: silence needs a number of seconds") from None
        if not 0 < seconds <= 600:
            raise AudioRefError(f"{ref!r}: silence must be between 0 and 600 seconds")
    elif kind == "sit" and name not in SIT_SEQUENCES:
        raise AudioRefError(f"{ref!r}: unknown SIT, use one of {', '.join(SIT_SEQUENCES)}")
    elif kind == "tts" and not name.strip():
        raise AudioRefError(f"{ref!r}: nothing to say")
    elif kind == "entered" and not _NODE_NAME.match(name):
        raise AudioRefError(f"{ref!r}: entered needs the name of a collect node")
    return ref


def check_voice(voice: str) -> str:
    """``ENGINE:NAME`` of another voice than the app's (``flite:slt``, ``espeak:en-us+f3``)."""
    engine, _, name = voice.partition(":")
    if name not in OTHER_VOICES.get(engine, ()):
        known = ", ".join(f"{e}:{n}" for e, names in OTHER_VOICES.items() for n in names)
        raise AudioRefError(f"unknown voice {voice!r}: use one of {known}")
    return voice


def is_synthesised(ref: str) -> bool:
    """``tts:TEXT`` or ``tts[VOICE]:TEXT``: rendered by a voice (in a worker thread, never on a media tick)."""
    return ref.startswith(("tts:", "tts["))


def tts_voice(ref: str) -> tuple[str | None, str]:
    """(voice or None for the local Piper voice, text) of a ``tts`` reference."""
    match = AUDIO_REF_PATTERN.match(ref)
    if not match or match.group(1) != "tts":
        raise AudioRefError(f"{ref!r} is not a tts reference")
    return match.group(2), match.group(3)


def entered_node(ref: str) -> str | None:
    """The collect node whose entry ``entered:NODE`` reads back, digit by digit; else None."""
    return ref.removeprefix("entered:") if ref.startswith("entered:") else None


def digit_ref(digit: str) -> str:
    return f"prompt:digits/{digit}"


DIGIT_REFS = tuple(digit_ref(d) for d in "0123456789")


def _amplitude(dbfs: float) -> float:
    return 32768 * 10 ** (dbfs / 20)


def sine_mix(freqs: tuple[float, ...], seconds: float, rms_dbfs: float = TONE_LEVEL_DBFS) -> np.ndarray:
    """Equal-level sum of sines whose total RMS is ``rms_dbfs``."""
    t = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    per_tone = _amplitude(rms_dbfs) * np.sqrt(2.0 / len(freqs))
    wave = sum(np.sin(2 * np.pi * f * t) for f in freqs) * per_tone
    return np.clip(np.round(wave), -32768, 32767).astype(np.int16)


def cadence(freqs: tuple[float, ...], on: float, off: float) -> np.ndarray:
    """One period of an on/off call-progress tone (a whole number of frames)."""
    tone = sine_mix(freqs, on)
    return np.concatenate([tone, np.zeros(int(round(off * SAMPLE_RATE)), np.int16)])


def sit_tone(kind: str) -> np.ndarray:
    return np.concatenate([sine_mix((f,), seconds, rms_dbfs=-16.0) for f, seconds in SIT_SEQUENCES[kind]])


# North American indications, as Asterisk's indications.conf [us] generates them.
RINGBACK_CYCLE = cadence((440.0, 480.0), on=2.0, off=4.0)
BUSY_CYCLE = cadence((480.0, 620.0), on=0.5, off=0.5)


def noise_frame(rng: np.random.Generator, rms_dbfs: float) -> Frame:
    """A line noise floor: quiet, but not digital zero."""
    return np.clip(np.round(rng.normal(0.0, _amplitude(rms_dbfs), FRAME_SAMPLES)), -32768, 32767).astype(np.int16)


def is_voice(frame: np.ndarray | None) -> bool:
    if frame is None:
        return False
    samples = frame.astype(np.float32)
    return float(np.sqrt(np.mean(samples * samples))) > VOICE_RMS_THRESHOLD


class LoopCursor:
    """Plays a periodic signal frame by frame, from the start of its period."""

    def __init__(self, cycle: np.ndarray) -> None:
        self._cycle = cycle
        self._pos = 0

    def next_frame(self) -> Frame:
        end = self._pos + FRAME_SAMPLES
        if end <= len(self._cycle):
            frame = self._cycle[self._pos : end]
        else:
            frame = np.concatenate([self._cycle[self._pos :], self._cycle[: end - len(self._cycle)]])
        self._pos = end % len(self._cycle)
        return frame


class ClipCursor:
    """Plays a clip once, frame by frame; the last frame is zero-padded."""

    def __init__(self, pcm: np.ndarray) -> None:
        self._pcm = pcm
        self._pos = 0

    @property
    def done(self) -> bool:
        return self._pos >= len(self._pcm)

    def next_frame(self) -> Frame | None:
        if self.done:
            return None
        end = self._pos + FRAME_SAMPLES
        frame = self._pcm[self._pos : end]
        self._pos = end
        if len(frame) < FRAME_SAMPLES:
            frame = np.concatenate([frame, np.zeros(FRAME_SAMPLES - len(frame), np.int16)])
        return frame


def default_tts_cache_dir() -> Path:
    env = os.environ.get("HOLDSLAYER_TTS_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "holdslayer" / "tts"


class PromptVoice:
    """Speaks ``tts:`` prompts with the local Piper voice (the app's bundled one), each text once:
    the 8 kHz int16 audio is kept as ``<cache_dir>/<sha256 of voice and text>.wav``, so later
    runs only read the file.

    Rendered without the voice's sampling noise, so the same text always gives the same samples
    (the app's own voice varies a little from one rendering to the next). ``load`` is blocking:
    ~0.1 s a sentence, plus ~1.5 s to load the voice once per process. ``renders`` counts the
    texts actually synthesised.
    """

    VOLUME = 0.9  # headroom: resampling must not clip
    SENTENCE_PAUSE_SECONDS = 0.25

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_tts_cache_dir()
        self.renders = 0
        self._voice_id: str | None = None

    @property
    def voice_id(self) -> str:
        """The voice file and the settings that shape its audio: another voice, another cache entry."""
        if self._voice_id is None:
            from app.speech.piper_tts import bundled_voice_path

            model = bundled_voice_path()
            self._voice_id = (
                f"piper:{model.name}:{model.stat().st_size}:noise=0:volume={self.VOLUME}:"
                f"pause={self.SENTENCE_PAUSE_SECONDS}:rate={SAMPLE_RATE}"
            )
        return self._voice_id

    def path(self, text: str) -> Path:
        digest = hashlib.sha256(f"{self.voice_id}\n{_spoken(text)}".encode()).hexdigest()
        return self.cache_dir / f"{digest}.wav"

    def load(self, text: str) -> np.ndarray:
        path = self.path(text)
        if path.exists():
            return read_wav(path).pcm
        pcm = self._synthesise(_spoken(text))
        self._store(path, pcm)
        return pcm

    def _synthesise(self, text: str) -> np.ndarray:
        from piper.config import SynthesisConfig  # (onnxruntime: loaded only when something is rendered)

        config = SynthesisConfig(volume=self.VOLUME, noise_scale=0.0, noise_w_scale=0.0)
        with _VOICE_LOCK:
            chunks = list(_piper_voice().synthesize(text, config))
            self.renders += 1
        pause = np.zeros(round(self.SENTENCE_PAUSE_SECONDS * SAMPLE_RATE), np.int16)
        parts: list[np.ndarray] = []
        for chunk in chunks:
            if parts:
                parts.append(pause)
            parts.append(resample(chunk.audio_int16_array, chunk.sample_rate, SAMPLE_RATE))
        if not parts:
            raise AudioRefError(f"the voice said nothing for {text!r}")
        return np.concatenate(parts).astype(np.int16)

    def _store(self, path: Path, pcm: np.ndarray) -> None:
        # Written aside and renamed: a reader (another test process) never sees half a file.
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".wav.part")
        os.close(handle)
        try:
            write_wav(temporary, pcm, SAMPLE_RATE)
            os.replace(temporary, path)
        finally:
            Path(temporary).unlink(missing_ok=True)


class OtherVoice:
    """Speaks ``tts[ENGINE:NAME]:TEXT`` with a Debian speech synthesiser (``flite`` or
    ``espeak-ng``), never the app's own voice: the people at a company sound like somebody else.

    Cached like ``PromptVoice``: ``<cache_dir>/<sha256 of voice and text>.wav``, 8 kHz int16,
    brought to about -20 dBFS RMS (the level of the corpus's speech). Deterministic: the same
    text gives the same samples. ``load`` blocks (a subprocess, ~0.1 s): call it off the tick.
    """

    LEVEL_DBFS = -20.0

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_tts_cache_dir()
        self.renders = 0

    def path(self, voice: str, text: str) -> Path:
        digest = hashlib.sha256(f"other:{voice}:level={self.LEVEL_DBFS}:rate={SAMPLE_RATE}\n{_spoken(text)}".encode()).hexdigest()
        return self.cache_dir / f"{digest}.wav"

    def load(self, voice: str, text: str) -> np.ndarray:
        check_voice(voice)
        path = self.path(voice, text)
        if path.exists():
            return read_wav(path).pcm
        pcm = self._synthesise(voice, _spoken(text))
        PromptVoice._store(self, path, pcm)  # type: ignore[arg-type]  # the same atomic write
        return pcm

    def _synthesise(self, voice: str, text: str) -> np.ndarray:
        engine, _, name = voice.partition(":")
        program = {"flite": "flite", "espeak": "espeak-ng"}[engine]
        if shutil.which(program) is None:
            raise AudioRefError(f"voice {voice!r} needs the Debian package {'flite' if engine == 'flite' else 'espeak-ng'}")
        with tempfile.TemporaryDirectory(prefix="holdslayer-voice-") as tmp:
            out = Path(tmp) / "out.wav"
            if engine == "flite":
                command = [program, "-voice", name, "-t", text, "-o", str(out)]
            else:
                command = [program, "-v", name, "-s", "165", "-w", str(out), text]
            subprocess.run(command, check=True, capture_output=True, timeout=60)
            audio = read_wav(out)
        self.renders += 1
        pcm = resample(audio.pcm, audio.sample_rate, SAMPLE_RATE).astype(np.float64)
        rms = float(np.sqrt(np.mean(pcm * pcm))) if len(pcm) else 0.0
        if rms <= 0:
            raise AudioRefError(f"the voice {voice!r} said nothing for {text!r}")
        pcm *= _amplitude(self.LEVEL_DBFS) / rms
        return np.clip(np.round(pcm), -32768, 32767).astype(np.int16)


_VOICE_LOCK = threading.Lock()  # one voice per process, one synthesis at a time
_voice: Any = None


def _piper_voice() -> Any:
    """The bundled Piper voice, loaded once (call with ``_VOICE_LOCK`` held)."""
    global _voice
    if _voice is None:
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        from app.speech.piper_tts import bundled_voice_path

        model = bundled_voice_path()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        config = PiperConfig.from_dict(json.loads(Path(f"{model}.json").read_text(encoding="utf-8")))
        session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        _voice = PiperVoice(config=config, session=session)
    return _voice


def _spoken(text: str) -> str:
    return " ".join(text.split())


@dataclass
class AudioLibrary:
    """Resolves audio references to 8 kHz int16 PCM, loading each file once.

    ``clip`` loads on demand and may block (a ``tts:`` prompt not yet rendered). Code on the
    event loop calls ``prepare`` first, which loads what is missing in a worker thread.
    """

    corpus: Corpus
    voice: PromptVoice = field(default_factory=PromptVoice)
    other_voices: OtherVoice | None = None  # default: one sharing ``voice``'s cache directory

    def __post_init__(self) -> None:
        if self.other_voices is None:
            self.other_voices = OtherVoice(self.voice.cache_dir)
        self._cache: dict[str, np.ndarray] = {}
        self._sequences: dict[tuple[str, ...], np.ndarray] = {}
        self._loading: dict[str, asyncio.Future[dict[str, np.ndarray]]] = {}

    def clip(self, ref: str) -> np.ndarray:
        pcm = self._cache.get(ref)
        if pcm is None:
            pcm = self._load(ref)
            self._cache[ref] = pcm
        return pcm

    def sequence(self, refs: list[str] | tuple[str, ...]) -> np.ndarray:
        """The clips played one after the other, as one array."""
        key = tuple(refs)
        pcm = self._sequences.get(key)
        if pcm is None:
            parts = [self.clip(ref) for ref in key]
            pcm = np.concatenate(parts) if parts else np.zeros(0, np.int16)
            self._sequences[key] = pcm
        return pcm

    def missing(self, refs: Iterable[str]) -> list[str]:
        """The references not loaded yet, sorted."""
        return sorted(ref for ref in set(refs) if ref not in self._cache)

    def prepare(self, refs: Iterable[str]) -> asyncio.Future[None]:
        """Load ``refs`` in a worker thread (each at most once, however many callers ask).

        Must be called on the event loop; the future fails with ``AudioRefError`` when one
        cannot be loaded.
        """
        loop = asyncio.get_running_loop()
        missing = self.missing(refs)
        batch = [ref for ref in missing if ref not in self._loading]
        if batch:
            loading = asyncio.ensure_future(asyncio.to_thread(self._load_all, batch))
            loading.add_done_callback(self._loaded)
            for ref in batch:
                self._loading[ref] = loading
        waits = {id(self._loading[ref]): self._loading[ref] for ref in missing if ref in self._loading}
        if not waits:
            done: asyncio.Future[None] = loop.create_future()
            done.set_result(None)
            return done
        return asyncio.ensure_future(_all_of(list(waits.values())))

    def _loaded(self, loading: asyncio.Future[dict[str, np.ndarray]]) -> None:
        # On the event loop: the cache is only ever written from there.
        for ref in [ref for ref, future in self._loading.items() if future is loading]:
            del self._loading[ref]
        if not loading.cancelled() and loading.exception() is None:
            self._cache.update(loading.result())

    def _load_all(self, refs: list[str]) -> dict[str, np.ndarray]:
        return {ref: self._load(ref) for ref in refs}

    def _load(self, ref: str) -> np.ndarray:
        check_audio_ref(ref)
        kind, _, name = ref.partition(":")
        kind = kind.split("[", 1)[0]  # tts[VOICE]:TEXT
        if kind == "silence":
            return np.zeros(int(round(float(name) * SAMPLE_RATE)), np.int16)
        if kind == "sit":
            return sit_tone(name)
        if kind == "entered":
            raise AudioRefError(f"{ref}: read back per call from what the caller entered, not a clip")
        try:
            if kind == "tts":
                voice, text = tts_voice(ref)
                if voice is not None:
                    assert self.other_voices is not None
                    return self.other_voices.load(voice, text)
                return self.voice.load(text)
            return load_audio(self.corpus.resolve(ref))
        except Exception as exc:  # a missing or unreadable file, or a voice that fails: report the reference
            raise AudioRefError(f"{ref}: {exc}") from exc


async def _all_of(loads: list[asyncio.Future[dict[str, np.ndarray]]]) -> None:
    for loading in loads:
        await asyncio.shield(loading)
