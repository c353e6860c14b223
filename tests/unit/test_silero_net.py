"""The Silero VAD network in numpy (app/audio/silero_net.py) against the authors' ONNX model run by
onnxruntime, step by step on telephone audio of every kind: the same probabilities and states."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.audio.silero_net import CONTEXT_SAMPLES, STATE_SHAPE, STEP_SAMPLES, SileroNet, SileroWeightsError
from app.audio.vad import SileroVad, VadModelError, silero_model_path
from tests.audio_fixtures import HUMANS, human, line_noise, moh_tracks, music, prompt, silence, telephone


class OnnxRuntimeSilero:
    """The reference: the wheel's ONNX file in an onnxruntime session, as the authors run it."""

    def __init__(self, path: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        self._rate = np.array(8000, dtype=np.int64)

    def step(self, window: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        probability, next_state = self._session.run(None, {"input": window, "state": state, "sr": self._rate})
        return float(probability[0, 0]), next_state


def run_both(pcm: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Both models over ``pcm`` (int16) with their own carried states: probabilities of each, and
    the largest difference of their states."""
    reference, ours = OnnxRuntimeSilero(silero_model_path()), SileroNet.load(silero_model_path())
    samples = pcm.astype(np.float32) / 32768.0
    window = np.zeros((1, CONTEXT_SAMPLES + STEP_SAMPLES), dtype=np.float32)
    ref_state = our_state = np.zeros(STATE_SHAPE, dtype=np.float32)
    ref_probs, our_probs, state_gap = [], [], 0.0
    for start in range(0, len(samples) - STEP_SAMPLES + 1, STEP_SAMPLES):
        window[0, CONTEXT_SAMPLES:] = samples[start : start + STEP_SAMPLES]
        p, ref_state = reference.step(window, ref_state)
        q, our_state = ours.step(window, our_state)
        ref_probs.append(p)
        our_probs.append(q)
        state_gap = max(state_gap, float(np.max(np.abs(ref_state - our_state))))
        window[0, :CONTEXT_SAMPLES] = window[0, -CONTEXT_SAMPLES:]
    return np.array(ref_probs), np.array(our_probs), state_gap


def test_the_numpy_network_gives_onnxruntimes_probabilities_on_every_kind_of_line(corpus):
    pieces = [
        telephone(music(corpus, moh_tracks(corpus)[0], 20.0)),
        telephone(prompt(corpus, "queue-periodic-announce")),
        *(telephone(human(corpus, name, max_seconds=15.0)) for name in HUMANS),
        telephone(line_noise(5.0, dbov=-55.0)),
        silence(3.0),
        telephone(music(corpus, moh_tracks(corpus)[1], 20.0)),
    ]
    ref, ours, state_gap = run_both(np.concatenate(pieces))
    assert len(ref) > 3000
    speech = ref >= 0.5
    assert 0.2 < speech.mean() < 0.8, "the audio holds both speech and what is not"
    assert np.max(np.abs(ref - ours)) < 1e-4
    assert np.array_equal(speech, ours >= 0.5)  # no step decided differently
    assert state_gap < 1e-2  # the carried state does not drift apart over two minutes


def test_the_step_returns_a_new_state_and_leaves_its_inputs_alone():
    net = SileroNet.load(silero_model_path())
    window = (np.random.default_rng(0).standard_normal((1, CONTEXT_SAMPLES + STEP_SAMPLES)) * 0.1).astype(np.float32)
    state = np.zeros(STATE_SHAPE, dtype=np.float32)
    window_before, state_before = window.copy(), state.copy()
    probability, next_state = net.step(window, state)
    assert isinstance(probability, float) and 0.0 <= probability <= 1.0
    assert next_state.shape == STATE_SHAPE and next_state.dtype == np.float32 and next_state is not state
    assert np.array_equal(window, window_before) and np.array_equal(state, state_before)
    assert np.any(next_state != 0.0)


def test_an_encoding_replayed_from_another_state_is_the_step_from_that_state_to_the_bit():
    # A re-seed's warm-up replays the newest steps' encodings from a zero state instead of
    # running the whole network again: that must change nothing.
    net = SileroNet.load(silero_model_path())
    rng = np.random.default_rng(3)
    windows = (rng.standard_normal((12, 1, CONTEXT_SAMPLES + STEP_SAMPLES)) * 0.1).astype(np.float32)
    encodings = [net.encode(window) for window in windows]
    for start in (np.zeros(STATE_SHAPE, dtype=np.float32), (rng.standard_normal(STATE_SHAPE) * 0.5).astype(np.float32)):
        stepped = replayed = start
        for window, encoded in zip(windows, encodings):
            p, stepped = net.step(window, stepped)
            q, replayed = net.decode(encoded, replayed)
            assert p == q
            assert np.array_equal(stepped, replayed)


def test_a_file_that_is_not_the_silero_model_is_a_clear_error(tmp_path: Path):
    not_onnx = tmp_path / "silero_vad.onnx"
    not_onnx.write_bytes(b"this is not a model")
    with pytest.raises(SileroWeightsError, match="not an ONNX model"):
        SileroNet.load(not_onnx)
    with pytest.raises(VadModelError, match="not the Silero VAD model"):
        SileroVad(not_onnx)


def test_an_onnx_model_without_the_networks_tensors_is_refused(tmp_path: Path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "other",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )  # fmt: skip
    other = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), str(other))
    with pytest.raises(SileroWeightsError, match="no tensors"):
        SileroNet.load(other)
