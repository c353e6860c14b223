"""Voice activity detection at 8 kHz: Silero VAD (ONNX) says "speech", WebRTC VAD gates it on silence.

Pure compute over decoded far-end PCM; the only I/O is loading the ONNX model file once per
process. Numbers below are measured through G.711 mu-law on the corpus by
``python -m bench.detection.vad_bench``.

Silero VAD (``SileroVad``, ``SileroStream``)
    The network of the ONNX model shipped inside the ``silero-vad`` wheel, its weights read
    with ``onnx`` and run in numpy (``app.audio.silero_net``: the detector 30% cheaper than with
    an onnxruntime session, the same probabilities; never ``import silero_vad``: that imports torch). At 8 kHz
    it takes 256-sample steps (32 ms) plus the 32 samples before them as context, and carries a
    recurrent state (2, 1, 128) from step to step. One loaded network serves every stream of the
    process (it is immutable); each stream keeps its own state and context. It calls 0.0-0.2% of
    the opsound hold music speech and ~97% of the active steps of the IVR prompts.

    Deafness over a long hold: hold music slowly drags the carried state into a regime that
    under-reports speech; silence, line noise and speech do not. After 5 minutes of music the
    codec2 people's mean probability is 0.04-0.15 lower than on a fresh stream (vk5qi 0.86 ->
    0.75, ve9qrp 0.87 -> 0.72; their first step >= 0.5 comes up to 0.2 s later); the loss grows
    with the hold's length (10 minutes: worse again) and does not heal while the person talks.
    The policy (``reseed_after_quiet``): once no step has reached ``speech_threshold`` for that
    many seconds, the state is rebuilt from zero over the last ``reseed_warmup`` seconds of
    audio, so the state a person's first words meet has seen at most ~9 s of music. Speech never
    triggers it, so an utterance is never cut in two. ``reset()`` starts from zero on demand (a
    call's segment boundaries). Measured over all the opsound music and the four people:

        re-seed   warm-up   music steps >= 0.5 per hour   person's mean prob. lost   inferences/step
        never     -          29                            0.10                       1.00
        8 s       0 s        98                            0.02                       1.00
        8 s       1 s        65                            0.02                       1.12   (default)
        8 s       2 s        36                            0.02                       1.24

    A zeroed state alone gives short false-speech blips on music right after each re-seed; the
    warm-up (rebuilding the state over audio already heard) removes a third of them for 12% more
    inferences, two thirds with 2 s.

WebRTC VAD (``WebRtcGate``)
    ~2 us per 20 ms frame, but blind to music: it passes 93-98% of the hold music frames at
    aggressiveness 0 (77-97% at 3). It passes none of digital silence nor of line noise at
    -60..-45 dBov (after ~0.1 s learning the floor), and holds on through the short pauses inside
    speech, so it is the gate for Silero: "is anything voice-band there?".

``Vad``: the pipeline's facade
    One ``VadFrame`` per 20 ms frame: the latest Silero probability and the WebRTC verdict.
    Silero runs on a 32 ms step only when the gate passed one of the frames it overlaps; other
    steps report probability 0 and the state does not see them. On a silent or noisy line with
    nobody talking that saves nearly all of Silero's cost (0.03% of one core instead of 0.35%);
    on speech it loses <= 0.2% of the speech steps, where a level threshold at -60 dBov loses
    2.6% of the prompts' and 6.6% of noise-suppressed speech's (Silero holds its verdict through
    gated pauses, and so does the gate). Hold music keeps Silero running: ~0.4% of one core
    per call.
"""

from __future__ import annotations

import importlib.util
import threading
import weakref
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.audio.silero_net import CONTEXT_SAMPLES, STATE_SHAPE, STEP_SAMPLES, SileroNet, SileroWeightsError

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # one 20 ms RTP packet
SILERO_STEP_SAMPLES = STEP_SAMPLES  # 32 ms: the only step size the model takes at 8 kHz
SILERO_CONTEXT_SAMPLES = CONTEXT_SAMPLES
SILERO_STEP_SECONDS = SILERO_STEP_SAMPLES / SAMPLE_RATE
SILERO_PACKAGE = "silero-vad"
_SILERO_MODULE = "silero_vad"
_WEBRTC_FRAME_SIZES = (80, 160, 240)  # 10, 20, 30 ms at 8 kHz


class VadModelError(RuntimeError):
    """The Silero VAD model file cannot be found or loaded."""


def silero_model_path() -> Path:
    """The ONNX file inside the installed ``silero-vad`` wheel, found without importing the package."""
    spec = importlib.util.find_spec(_SILERO_MODULE)  # a top-level find_spec runs none of its code
    if spec is None or spec.origin is None:
        raise VadModelError(
            f"the Silero VAD model ships in the Python package {SILERO_PACKAGE!r}, which is not installed"
        )
    path = Path(spec.origin).parent / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise VadModelError(
            f"the Python package {SILERO_PACKAGE!r} is installed but holds no model file at {path}"
        )
    return path


class SileroVad:
    """The Silero VAD network (``app.audio.silero_net``) loaded from the wheel's ONNX file. Holds
    no stream state and never changes: share it, across threads too."""

    _shared: SileroVad | None = None
    _shared_lock = threading.Lock()

    def __init__(self, model_path: Path | None = None) -> None:
        path = Path(model_path) if model_path is not None else silero_model_path()
        if not path.is_file():
            raise VadModelError(
                f"Silero VAD model file not found: {path} (it ships in the Python package {SILERO_PACKAGE!r})"
            )
        try:
            self._net = SileroNet.load(path)
        except SileroWeightsError as error:
            raise VadModelError(f"{error}: not the Silero VAD model this code knows") from error

    @classmethod
    def shared(cls) -> SileroVad:
        """The process-wide model, loaded on first use."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def encode(self, window: np.ndarray) -> np.ndarray:
        """A step's stateless part (``SileroNet.encode``): ``decode`` it from any state."""
        return self._net.encode(window)

    def encode_many(self, windows: np.ndarray) -> np.ndarray:
        """``encode`` of each row of ``windows`` (k, 288), in one go and to the bit."""
        return self._net.encode_many(windows)

    def decode(self, encoded: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        """``step`` of the window ``encoded`` came from, from ``state``."""
        return self._net.decode(encoded, state)


class _EncoderBatch:
    """The Silero streams of one thread and one model, whose steps are encoded together.

    The stateless part of a step (``SileroVad.encode``) depends only on the step's samples, and
    a call's samples reach its detector a block ahead of its steps (``SileroStream.lookahead``).
    When a stream needs a step that is not encoded yet, the steps every stream of the batch has
    ready are encoded with it in one stacked product (``SileroVad.encode_many``: each row the
    same bits as alone): with many calls held, most find their next steps encoded already, at a
    fraction of the cost. Streams whose last step was not run (a silent line, steady music) are
    left out: their next steps may not run either."""

    _local = threading.local()  # streams are pushed from the thread that made them: no locks

    def __init__(self, model: SileroVad) -> None:
        self.model = model
        self.streams: weakref.WeakSet[SileroStream] = weakref.WeakSet()

    @classmethod
    def joining(cls, stream: SileroStream, model: SileroVad) -> _EncoderBatch:
        batches = cls._local.__dict__.setdefault("batches", weakref.WeakKeyDictionary())
        batch = batches.get(model)
        if batch is None:
            batch = batches[model] = cls(model)
        batch.streams.add(stream)
        return batch

    def encode_ready(self, requester: SileroStream) -> None:
        windows: list[np.ndarray] = []
        owners: list[tuple[SileroStream, int]] = []
        for stream in list(self.streams):
            if stream is requester or stream.running:
                for index, window in stream.ready_windows():
                    windows.append(window)
                    owners.append((stream, index))
        if not windows:
            return
        # One window alone goes the single way: the same bits, less overhead.
        encodings = self.model.encode_many(np.stack(windows)) if len(windows) > 1 else [self.model.encode(windows[0][None])]
        for (stream, index), encoded in zip(owners, encodings):
            stream.encoded[index] = encoded


class SileroStream:
    """Silero VAD over one audio stream: int16 PCM of any length in, one probability per 32 ms step out.

    ``reseed_after_quiet``: seconds without a step at or above ``speech_threshold`` after which
    the state is rebuilt from zero over the last ``reseed_warmup`` seconds (None: never), so a
    long hold cannot make the model deaf.
    """

    def __init__(
        self,
        model: SileroVad | None = None,
        *,
        reseed_after_quiet: float | None = 8.0,
        reseed_warmup: float = 1.0,
        speech_threshold: float = 0.5,
    ) -> None:
        self._model = model if model is not None else SileroVad.shared()
        self._reseed_steps = (
            None if reseed_after_quiet is None else max(1, round(reseed_after_quiet / SILERO_STEP_SECONDS))
        )
        warmup_steps = round(reseed_warmup / SILERO_STEP_SECONDS) if reseed_after_quiet is not None else 0
        # The newest steps' encodings (``SileroVad.encode``): the warm-up replays only their recurrent part.
        self._recent: deque[np.ndarray] = deque(maxlen=warmup_steps)
        self._threshold = speech_threshold
        self._window = np.zeros((1, SILERO_CONTEXT_SAMPLES + SILERO_STEP_SAMPLES), dtype=np.float32)
        self._step = self._window[0, SILERO_CONTEXT_SAMPLES:]  # the step being filled, in place
        self._filled = 0
        self._step_audible = False
        self.steps = 0  # 32 ms steps completed
        self.model_runs = 0  # inferences, re-seed warm-ups included (steps the gate skipped are not run)
        self.reseeds = 0  # automatic re-seeds
        # Samples announced by ``lookahead`` and not pushed yet, and the encodings of steps they
        # complete (by step index), made ahead in a batch with other streams' (``_EncoderBatch``).
        self._ahead = np.zeros(0, dtype=np.float32)
        self.encoded: dict[int, np.ndarray] = {}
        self.running = False  # the newest step was run (its successors likely will be)
        self._batch: _EncoderBatch | None = None  # joined in the thread that first needs it
        self.reset()

    def reset(self) -> None:
        """Start from a zero state and context (a new segment); samples of an unfinished step are kept."""
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._window[0, :SILERO_CONTEXT_SAMPLES] = 0.0
        self.encoded.pop(self.steps, None)  # encoded with the context it no longer has
        self._recent.clear()
        self._quiet_steps = 0

    def lookahead(self, pcm: np.ndarray) -> None:
        """Announce int16 samples that ``push`` will be given next, in order (a detector has
        them a block ahead of its steps), so that the steps they complete can be encoded in a
        batch. Optional; samples pushed that differ from those announced void the announcement."""
        samples = np.asarray(pcm, dtype=np.float32) * (1.0 / 32768.0)
        self._ahead = np.concatenate((self._ahead, samples)) if len(self._ahead) else samples

    def ready_windows(self) -> list[tuple[int, np.ndarray]]:
        """The model inputs of the steps that the samples pushed and announced complete and that
        are not encoded yet, with their step indices."""
        have = self._filled + len(self._ahead)
        if have < SILERO_STEP_SAMPLES:
            return []
        tape = np.concatenate((self._window[0, : SILERO_CONTEXT_SAMPLES + self._filled], self._ahead))
        ready: list[tuple[int, np.ndarray]] = []
        for j in range(have // SILERO_STEP_SAMPLES):
            if self.steps + j not in self.encoded:
                start = j * SILERO_STEP_SAMPLES
                ready.append((self.steps + j, tape[start : start + SILERO_CONTEXT_SAMPLES + SILERO_STEP_SAMPLES]))
        return ready

    def push(self, pcm: np.ndarray, audible: bool = True) -> list[float]:
        """Feed int16 samples; returns the probabilities of the steps they complete, in order.

        ``audible=False`` marks samples a cheap gate found empty: a step made only of such
        samples is not run, reports 0 and leaves the state as it was.
        """
        samples = np.asarray(pcm, dtype=np.float32) * (1.0 / 32768.0)
        # (Equal bytes are equal samples here: int16 values scaled, never NaN nor -0.0.)
        if len(self._ahead) and not (
            len(self._ahead) >= len(samples) and self._ahead[: len(samples)].tobytes() == samples.tobytes()
        ):  # not what was announced: nothing encoded ahead can be trusted
            self._ahead = self._ahead[:0]
            self.encoded.clear()
        probabilities: list[float] = []
        start = 0
        while start < len(samples):
            take = min(SILERO_STEP_SAMPLES - self._filled, len(samples) - start)
            self._step[self._filled : self._filled + take] = samples[start : start + take]
            self._ahead = self._ahead[take:]  # announced and now in the step
            self._filled += take
            self._step_audible = self._step_audible or audible
            start += take
            if self._filled == SILERO_STEP_SAMPLES:
                probabilities.append(self._complete_step())
        return probabilities

    def _complete_step(self) -> float:
        if self._step_audible:
            encoded = self.encoded.pop(self.steps, None)
            if encoded is None and len(self._ahead):
                if self._batch is None:
                    self._batch = _EncoderBatch.joining(self, self._model)
                self._batch.encode_ready(self)
                encoded = self.encoded.pop(self.steps, None)
            if encoded is None:
                encoded = self._model.encode(self._window)
            probability, self._state = self._model.decode(encoded, self._state)
            self.model_runs += 1
            if self._recent.maxlen:
                self._recent.append(encoded)
        else:
            probability = 0.0
            self.encoded.pop(self.steps, None)
        self.running = self._step_audible
        # The step's tail becomes the next step's context.
        self._window[0, :SILERO_CONTEXT_SAMPLES] = self._window[0, -SILERO_CONTEXT_SAMPLES:]
        self._filled = 0
        self._step_audible = False
        self.steps += 1
        self._quiet_steps = 0 if probability >= self._threshold else self._quiet_steps + 1
        if self._reseed_steps is not None and self._quiet_steps >= self._reseed_steps:
            self._reseed()
        return probability

    def _reseed(self) -> None:
        state = np.zeros(STATE_SHAPE, dtype=np.float32)
        for encoded in self._recent:
            _, state = self._model.decode(encoded, state)
        self.model_runs += len(self._recent)
        self._state = state
        self._quiet_steps = 0
        self.reseeds += 1


class WebRtcGate:
    """WebRTC VAD on 10/20/30 ms frames at 8 kHz: is anything voice-band there? (Music passes too.)

    ``aggressiveness``: 0 passes the most .. 3 the least.
    """

    def __init__(self, aggressiveness: int = 0) -> None:
        import webrtcvad  # here, not at module import: the core loads without vendor libraries

        if aggressiveness not in (0, 1, 2, 3):
            raise ValueError(f"WebRTC VAD aggressiveness is 0..3, got {aggressiveness}")
        self._make = lambda: webrtcvad.Vad(aggressiveness)
        self._vad = self._make()

    def reset(self) -> None:
        """Forget what it adapted to (its noise estimate and hangover)."""
        self._vad = self._make()

    def is_speech(self, pcm: np.ndarray) -> bool:
        if len(pcm) not in _WEBRTC_FRAME_SIZES:
            raise ValueError(
                f"WebRTC VAD takes 10, 20 or 30 ms at 8 kHz ({_WEBRTC_FRAME_SIZES} samples), got {len(pcm)}"
            )
        return bool(self._vad.is_speech(np.asarray(pcm, dtype="<i2").tobytes(), SAMPLE_RATE))


@dataclass(frozen=True)
class VadFrame:
    """Voice activity at the 20 ms frame that starts at stream time ``t`` (seconds).

    ``speech_prob``: Silero's probability for the latest 32 ms step completed by this frame or
    before it (0 before the first step and for steps the gate skipped). ``gate``: the WebRTC
    verdict on this frame.
    """

    t: float
    speech_prob: float
    gate: bool


class Vad:
    """The pipeline's VAD for one call: a ``VadFrame`` per 20 ms frame, Silero only where the gate passes."""

    def __init__(
        self,
        model: SileroVad | None = None,
        *,
        webrtc_aggressiveness: int = 0,
        reseed_after_quiet: float | None = 8.0,
        reseed_warmup: float = 1.0,
    ) -> None:
        self.silero = SileroStream(model, reseed_after_quiet=reseed_after_quiet, reseed_warmup=reseed_warmup)
        self._gate = WebRtcGate(webrtc_aggressiveness)
        self._speech_prob = 0.0

    def push(self, pcm: np.ndarray, t: float) -> VadFrame:
        gate = self._gate.is_speech(pcm)
        probabilities = self.silero.push(pcm, audible=gate)
        if probabilities:
            self._speech_prob = probabilities[-1]
        return VadFrame(t=t, speech_prob=self._speech_prob, gate=gate)

    def reset(self) -> None:
        """A new segment (answered, bridged, back on hold): both detectors start afresh."""
        self.silero.reset()
        self._gate.reset()
        self._speech_prob = 0.0
