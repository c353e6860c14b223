"""``holdslayer analyze``: any WAV in, a classification timeline and the decisions out."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.analyze import Span, run_analyze, timeline
from app.audio.types import AudioClass, Classification
from app.cli import main
from bench.detection.dataset import render, session_specs
from tests.conftest import REPO

WINDOW_KEYS = {"t", "class", "confidence"}
EVENT_KEYS = {"t", "event", "confidence", "evidence"}


def _wav(path: Path, samples: np.ndarray, rate: int, *, float32: bool = False) -> Path:
    """A WAV file of ``samples`` (frames x channels) as 16-bit PCM or 32-bit float."""
    frames = np.atleast_2d(samples.T).T
    channels = frames.shape[1]
    if float32:
        tag, width, body = 3, 4, frames.astype("<f4").tobytes()
    else:
        tag, width, body = 1, 2, frames.astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * channels * width, channels * width, 8 * width)
    data = b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(body)) + b"WAVE"
    data += b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(body)) + body
    path.write_bytes(data)
    return path


def _upsample(pcm: np.ndarray, rate: int) -> np.ndarray:
    positions = np.arange(int(len(pcm) * rate / 8000)) * 8000 / rate
    return np.interp(positions, np.arange(len(pcm)), pcm.astype(np.float64))


@pytest.fixture(scope="module")
def pickup(corpus):
    """A held-out hold-then-person session (about 45 s): music, announcements, a person."""
    return render(session_specs(0, split="test", quick=True)[0], corpus)


def _json_run(path: Path, capsys) -> list[dict]:
    assert main(["analyze", str(path), "--json", "--detector", "simple"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _check_json(records: list[dict], duration: float) -> None:
    windows = [r for r in records if "class" in r]
    events = [r for r in records if "event" in r]
    assert windows and all(set(r) == WINDOW_KEYS for r in windows)
    assert all(set(r) == EVENT_KEYS for r in events)
    assert {r["class"] for r in windows} <= {c.value for c in AudioClass}
    times = [r["t"] for r in windows]
    assert times == sorted(times) and times[-1] <= duration + 0.02
    assert len(windows) == int((duration - 3.0) / 0.5) + 1  # 3 s windows every 0.5 s
    assert "MUSIC" in {r["class"] for r in windows}
    assert all(0.0 <= r["confidence"] <= 1.0 for r in records)
    assert {"HOLD_DETECTED", "HUMAN_DETECTED"} <= {e["event"] for e in events}
    assert isinstance(next(e for e in events if e["event"] == "HUMAN_DETECTED")["evidence"]["rule"], str)


@pytest.mark.corpus
def test_a_16khz_stereo_recording_gives_a_timeline_and_the_person(tmp_path, capsys, pickup):
    wide = _upsample(pickup.pcm, 16000)
    stereo = np.stack([wide, 0.5 * wide], axis=1)  # the far end louder on the left
    path = _wav(tmp_path / "call.wav", stereo, 16000)

    assert main(["analyze", str(path), "--detector", "simple"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert "16000 Hz" in lines[0]
    spans = [line for line in lines[1:] if " s  " in line and not line.startswith(("HOLD", "HUMAN"))]
    classes = [line.split()[4] for line in spans]
    assert classes[0] == "MUSIC"
    assert all(a != b for a, b in zip(classes, classes[1:]))  # consecutive windows of a class are merged
    human = next(line for line in lines if line.startswith("HUMAN_DETECTED at"))
    assert float(human.split()[2]) >= pickup.human_onset

    _check_json(_json_run(path, capsys), pickup.duration)


@pytest.mark.corpus
def test_a_44khz_float_recording_reads_the_same(tmp_path, capsys, pickup):
    wide = _upsample(pickup.pcm, 44100) / 32768.0
    path = _wav(tmp_path / "call-float.wav", wide, 44100, float32=True)
    records = _json_run(path, capsys)
    _check_json(records, pickup.duration)


def test_a_file_that_is_not_audio_exits_2_with_a_message(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n")
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "analyze", str(text)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "not a RIFF/WAVE file" in result.stderr and str(text) in result.stderr
    assert result.stdout == ""


def test_a_missing_file_exits_2(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "nope.wav")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_the_timeline_merges_windows_and_tiles_the_time():
    def window(start: float, cls: AudioClass, confidence: float) -> Classification:
        return Classification(start, start + 3.0, cls, confidence)

    classes = [AudioClass.MUSIC] * 3 + [AudioClass.IVR_PROMPT] * 2 + [AudioClass.MUSIC]
    windows = [window(0.5 * i, cls, 0.5 + 0.1 * (i % 2)) for i, cls in enumerate(classes)]
    assert timeline(windows) == [
        Span(0.0, 2.75, AudioClass.MUSIC, pytest.approx(0.5 + 0.1 / 3), 3),
        Span(2.75, 3.75, AudioClass.IVR_PROMPT, pytest.approx(0.55), 2),
        Span(3.75, 5.5, AudioClass.MUSIC, pytest.approx(0.6), 1),
    ]


def _tone(freqs: tuple[float, ...], on: float, off: float, seconds: float, dbov: float = -16.0) -> np.ndarray:
    """A call-progress tone: ``freqs`` summed, ``on``/``off`` cadence (off 0: continuous)."""
    t = np.arange(int(seconds * 8000)) / 8000
    tone = sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)
    if off:
        tone = tone * ((t % (on + off)) < on)
    return tone * 32768 * 10 ** (dbov / 20) * np.sqrt(2)


@pytest.mark.corpus
def test_json_names_every_tone_kind_the_hold_and_both_stages_of_the_person(tmp_path, capsys, corpus, pickup):
    """One recording: dial tone, ringback, busy, reorder, DTMF, SIT with its intercept message,
    then a hold with announcements and a person. Every output is one JSON object per line, in
    the documented shape, and every kind of decision is there."""
    tone_specs = [s for s in session_specs(0, split="test") if s.kind == "tones"]
    tones = [render(next(s for s in tone_specs if s.tone == kind), corpus).pcm for kind in ("ringback", "busy", "sit", "dtmf")]
    synthetic = [_tone((350.0, 440.0), 1.0, 0.0, 3.0), _tone((480.0, 620.0), 0.25, 0.25, 4.0)]  # dial tone, reorder
    gap = np.zeros(8000)
    parts = [synthetic[0], gap, *[p for t in tones for p in (t.astype(np.float64), gap)], synthetic[1], gap]
    lead = np.concatenate(parts)
    pcm = np.concatenate([lead, pickup.pcm.astype(np.float64)])
    path = _wav(tmp_path / "everything.wav", np.clip(pcm, -32768, 32767).astype(np.int16), 8000)
    records = _json_run_pipeline(path, capsys)

    windows = [r for r in records if "class" in r]
    events = [r for r in records if "event" in r]
    assert windows and all(set(r) == WINDOW_KEYS for r in windows)
    assert all(set(r) == EVENT_KEYS and isinstance(r["evidence"], dict) for r in events)
    assert all(0.0 <= r["confidence"] <= 1.0 for r in records)
    kinds = {e["evidence"]["kind"] for e in events if e["event"] == "TONE_DETECTED"}
    assert {"dialtone", "ringback", "busy", "reorder", "dtmf", "sit"} <= kinds, kinds
    names = [e["event"] for e in events]
    assert {"HOLD_DETECTED", "HUMAN_SUSPECTED", "HUMAN_RETRACTED", "HUMAN_DETECTED"} <= set(names)
    onset = len(lead) / 8000 + pickup.human_onset
    detected = next(e for e in events if e["event"] == "HUMAN_DETECTED")
    assert detected["t"] >= onset and isinstance(detected["evidence"]["rule"], str)
    assert names.index("HUMAN_SUSPECTED") < names.index("HUMAN_DETECTED")
    retracted = next(e for e in events if e["event"] == "HUMAN_RETRACTED")
    assert retracted["evidence"]["suspected_t"] <= retracted["t"] and retracted["evidence"]["why"]


def _json_run_pipeline(path: Path, capsys) -> list[dict]:
    assert main(["analyze", str(path), "--json", "--detector", "pipeline"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.corpus
@pytest.mark.timeout(240)
def test_json_runs_to_the_end_on_every_file_of_the_wide_corpus_sample():
    """Announcements in many voices and languages, music of many kinds, people, noise: every
    file of the sample tier (scripts/bootstrap fetches it) is analysed to its end, one valid JSON
    object per line, the last window near the end of the file."""
    from bench.corpus import fetch

    root = fetch.ensure_wide_corpus("sample")
    items = fetch.load_manifest("sample")["items"]
    assert {item["kind"] for item in items} >= {"announcement", "music", "speech"}
    for item in items:
        path = root / item["path"]
        out = io.StringIO()
        assert run_analyze(path, as_json=True, detector="pipeline", stdout=out) == 0, item["id"]
        records = [json.loads(line) for line in out.getvalue().splitlines()]
        windows = [r for r in records if "class" in r]
        assert all(set(r) in (WINDOW_KEYS, EVENT_KEYS) for r in records), item["id"]
        if item["seconds"] >= 3.5:
            assert windows and windows[-1]["t"] >= item["seconds"] - 0.6, item["id"]
