"""DTMF receiver limits and false tones, measured through 8 kHz G.711 mu-law.

``run_dtmf_sweep(corpus)`` returns a JSON-able dict: acceptance rates of all 16 digits over
frequency offset (-5..+5%, each tone and both), twist (-10..+10 dB), tone length (10..80 ms)
and signal-to-noise ratio; the edges found; the 12 real key presses of the corpus (baresip);
and the digits and call-progress tones falsely reported over all the corpus's music and speech
(hold music, every IVR prompt, the codec2 recordings of people), with the CPU cost of the
whole tone path (``ToneDetector``) in 20 ms frames. Top-level scalars summarise it;
``python -m bench.detection.dtmf_sweep`` prints it as markdown tables.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from app.audio.tones import DTMF_DIGITS, DTMF_HIGH, DTMF_LOW, DtmfDetector, ToneDetector
from app.media.wavfile import load_audio
from app.sim.corpus import Corpus, ensure_corpus
from app.media.g711 import ulaw_decode, ulaw_encode

RATE = 8000
FRAME = 160
FULL_SCALE = 32768.0
NOMINAL_DBOV = -20.0  # each tone
NOMINAL_SECONDS = 0.08

# codec2 files that are not people talking (modem and vocoder test signals, a sine) or that
# repeat others (hts1a/hts2a are parts of hts1/hts2, all.wav and hts.raw concatenations,
# ve9qrp_10s the start of ve9qrp); a stem present as .raw and .wav is scanned once.
_NOT_SPEECH = {
    "700d_end_over",
    "sine1k_2Hz_spread",
    "sine1k_2ms_delay_2Hz_spread",
    "test_datac1_006",
    "testframes_700d",
    "david4",
    "vk2tpm_004",
}
_REPEATS = {"hts1a", "hts2a", "all", "hts", "ve9qrp_10s"}
BARESIP_KEYS = {**{str(d): f"sound{d}.wav" for d in range(10)}, "*": "soundstar.wav", "#": "soundroute.wav"}


def telephone(pcm: np.ndarray) -> np.ndarray:
    """Through a G.711 mu-law leg, as a call hears it."""
    return ulaw_decode(ulaw_encode(np.clip(np.round(pcm), -32768, 32767).astype(np.int16)))


def dtmf_tone(
    digit: str,
    seconds: float = NOMINAL_SECONDS,
    *,
    offset: float = 0.0,
    tones: str = "both",
    shift_hz: float = 0.0,
    twist_db: float = 0.0,
    dbov: float = NOMINAL_DBOV,
    phase: float = 0.0,
) -> np.ndarray:
    """One key's two tones (float samples). ``tones`` ("row", "column" or "both") are moved by
    ``offset`` (relative: 0.01 = +1%) and ``shift_hz``; ``twist_db`` is the column tone's level
    minus the row tone's, ``dbov`` the mean of the two levels."""
    row, column = divmod(DTMF_DIGITS.index(digit), 4)
    t = np.arange(int(round(seconds * RATE))) / RATE
    out = np.zeros(len(t))
    for name, nominal, level in (
        ("row", DTMF_LOW[row], dbov - twist_db / 2),
        ("column", DTMF_HIGH[column], dbov + twist_db / 2),
    ):
        freq = nominal * (1 + offset) + shift_hz if tones in (name, "both") else nominal
        out += FULL_SCALE * np.sqrt(2) * 10 ** (level / 20) * np.sin(2 * np.pi * freq * t + phase)
    return out


def heard_digits(pcm: np.ndarray, detector: DtmfDetector | None = None) -> str:
    """The digits a fresh receiver reports for ``pcm`` pushed in 20 ms frames."""
    detector = detector or DtmfDetector()
    samples = telephone(pcm)
    found = []
    for start in range(0, len(samples), FRAME):
        found.extend(detector.push(samples[start : start + FRAME], start / RATE))
    found.extend(detector.flush())
    return "".join(d.digit for d in found)


def acceptance_rate(
    *, variants: int = 2, seconds: float = NOMINAL_SECONDS, lead_step: int = 0, snr_db: float | None = None, **tone: Any
) -> float:
    """Share of the 16 digits x ``variants`` (phase, alignment by ``lead_step`` samples, noise
    seed) heard as exactly that digit; ``tone`` goes to ``dtmf_tone``."""
    hits = 0
    for index, digit in enumerate(DTMF_DIGITS):
        for variant in range(variants):
            key = dtmf_tone(digit, seconds, phase=1.3 * variant, **tone)
            pcm = np.concatenate((np.zeros(400 + lead_step * variant), key, np.zeros(800)))
            if snr_db is not None:
                rng = np.random.default_rng(variant + 10 * index)
                pcm = pcm + rng.normal(size=len(pcm)) * np.sqrt(np.mean(key**2) / 10 ** (snr_db / 10))
            hits += heard_digits(pcm) == digit
    return hits / (len(DTMF_DIGITS) * variants)


def sweep_frequency() -> list[dict[str, float]]:
    return [
        {
            "offset_percent": float(percent),
            **{tones: acceptance_rate(offset=percent / 100, tones=tones) for tones in ("both", "row", "column")},
        }
        for percent in np.round(np.arange(-5.0, 5.01, 0.5), 2)
    ]


def q24_operate_points() -> dict[str, float]:
    """Acceptance at Q.24's operate limit (+-1.5% + 2 Hz) and non-operate limit (+-3.5%), both tones."""
    return {
        "accepted_at_+1.5%+2Hz": acceptance_rate(offset=0.015, shift_hz=2.0),
        "accepted_at_-1.5%-2Hz": acceptance_rate(offset=-0.015, shift_hz=-2.0),
        "accepted_at_+3.5%": acceptance_rate(offset=0.035),
        "accepted_at_-3.5%": acceptance_rate(offset=-0.035),
    }


def sweep_twist() -> list[dict[str, float]]:
    return [{"twist_db": float(db), "accepted": acceptance_rate(twist_db=db)} for db in np.arange(-10.0, 10.01, 1.0)]


def sweep_duration() -> list[dict[str, float]]:
    """Four alignments of the tone against the receiver's 53-sample window grid."""
    return [
        {"ms": float(ms), "accepted": acceptance_rate(seconds=ms / 1000, variants=4, lead_step=13)}
        for ms in np.arange(10.0, 80.01, 2.5)
    ]


def sweep_snr() -> list[dict[str, float]]:
    """White noise over the whole band, relative to the two tones' power."""
    return [
        {"snr_db": float(snr), "accepted": acceptance_rate(snr_db=snr, variants=3)}
        for snr in (30, 25, 20, 15, 12, 10, 8, 6, 4, 0)
    ]


def real_key_presses(corpus: Corpus) -> dict[str, str]:
    """Each baresip key recording (44.1 kHz, resampled) -> the digits heard."""
    return {
        key: heard_digits(
            np.concatenate(
                (np.zeros(800), load_audio(corpus.resolve(f"tone:{name}")).astype(np.float64), np.zeros(1600))
            )
        )
        for key, name in BARESIP_KEYS.items()
    }


def music_and_speech(corpus: Corpus) -> list[tuple[str, Path]]:
    """(kind, path) of every hold music track, IVR prompt and codec2 recording of a person."""
    files: list[tuple[str, Path]] = [("music", path) for path in corpus.moh_tracks()]
    files += [("prompt", path) for path in sorted(corpus.prompts_dir.rglob("*.wav"))]
    seen: set[str] = set()
    for path in sorted(corpus.speech_dir.glob("raw/*.raw")) + sorted(corpus.speech_dir.glob("wav/*.wav")):
        if path.stem in _NOT_SPEECH or path.stem in _REPEATS or path.stem in seen:
            continue
        seen.add(path.stem)
        files.append(("speech", path))
    return files


def scan_for_false_tones(files: Iterable[tuple[str, Path]], frame_samples: int = FRAME) -> dict[str, Any]:
    """Every tone event a fresh ``ToneDetector`` reports over each file (all of them false: the
    files hold no tones), the hours scanned per kind and the CPU time inside ``push``."""
    events: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}
    cpu = 0.0
    for kind, path in files:
        samples = telephone(load_audio(path))
        detector = ToneDetector()
        started = time.process_time()
        found = []
        for start in range(0, len(samples), frame_samples):
            found.extend(detector.push(samples[start : start + frame_samples], start / RATE))
        found.extend(detector.flush())
        cpu += time.process_time() - started
        seconds[kind] = seconds.get(kind, 0.0) + len(samples) / RATE
        events += [{"file": path.name, "kind": e.kind, "t": e.t, "detail": e.detail} for e in found]
    total = sum(seconds.values())
    return {
        "hours": total / 3600,
        "hours_by_kind": {kind: s / 3600 for kind, s in seconds.items()},
        "events": events,
        "cpu_percent_of_one_core": 100 * cpu / total if total else 0.0,
        "cpu_us_per_20ms_frame": 1e6 * cpu / (total / 0.02) if total else 0.0,
    }


def _accepted_range(rows: list[dict[str, float]], key: str, value: str) -> tuple[float, float]:
    """The contiguous range of ``key`` around the nominal (0) where every case was accepted."""
    values = [row[key] for row in rows]
    centre = int(np.argmin(np.abs(values)))
    low = high = centre
    while low > 0 and rows[low - 1][value] == 1.0:
        low -= 1
    while high < len(rows) - 1 and rows[high + 1][value] == 1.0:
        high += 1
    return values[low], values[high]


def _edge(rows: list[dict[str, float]], *, accepted: float, longer: bool) -> float | None:
    """The shortest length from which every longer one has ``accepted`` (``longer``), or the
    longest up to which every shorter one has it."""
    ordered = sorted(rows, key=lambda row: row["ms"], reverse=longer)
    edge = None
    for row in ordered:
        if row["accepted"] != accepted:
            break
        edge = row["ms"]
    return edge


def run_dtmf_sweep(corpus: Corpus) -> dict[str, Any]:
    nominal = {
        digit: heard_digits(np.concatenate((np.zeros(400), dtmf_tone(digit), np.zeros(800)))) for digit in DTMF_DIGITS
    }
    frequency, twist, duration, snr = sweep_frequency(), sweep_twist(), sweep_duration(), sweep_snr()
    real = real_key_presses(corpus)
    scan = scan_for_false_tones(music_and_speech(corpus))
    false_digits = [e for e in scan["events"] if e["kind"] == "dtmf"]
    false_tones = [e for e in scan["events"] if e["kind"] != "dtmf"]
    freq_low, freq_high = _accepted_range(frequency, "offset_percent", "both")
    twist_low, twist_high = _accepted_range(twist, "twist_db", "accepted")
    clean_snr = [row["snr_db"] for row in snr if row["accepted"] == 1.0]
    digits_decoded = sum(heard == digit for digit, heard in nominal.items())
    real_decoded = sum(heard == key for key, heard in real.items())
    return {
        "digits_decoded": digits_decoded,
        "real_key_presses_decoded": f"{real_decoded}/{len(real)}",
        "false_digits": len(false_digits),
        "false_call_progress_tones": len(false_tones),
        "hours_scanned": round(scan["hours"], 3),
        "passed": digits_decoded == 16 and real_decoded == len(real) and not false_digits,
        "frequency_offset_accepted_percent": f"{freq_low:+.1f}..{freq_high:+.1f}",
        "twist_accepted_db": f"{twist_low:+.0f}..{twist_high:+.0f}",
        "shortest_always_accepted_ms": _edge(duration, accepted=1.0, longer=True),
        "longest_always_rejected_ms": _edge(duration, accepted=0.0, longer=False),
        "lowest_clean_snr_db": min(clean_snr, default=None),
        "cpu_percent_of_one_core": round(scan["cpu_percent_of_one_core"], 3),
        "cpu_us_per_20ms_frame": round(scan["cpu_us_per_20ms_frame"], 1),
        "q24_points": q24_operate_points(),
        "sweep": {"frequency": frequency, "twist": twist, "duration": duration, "snr": snr},
        "nominal_digits": nominal,
        "real_key_presses": real,
        "hours_by_kind": {kind: round(h, 3) for kind, h in scan["hours_by_kind"].items()},
        "false_events": scan["events"],
    }


def markdown(result: dict[str, Any]) -> str:
    lines = ["# DTMF receiver and false tones (8 kHz G.711 mu-law)", "", "| measure | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in result.items() if not isinstance(value, (dict, list))]
    lines += ["", "Q.24 limits, all 16 digits: " + ", ".join(f"{k} {v:.0%}" for k, v in result["q24_points"].items())]
    sweep = result["sweep"]
    lines += [
        "",
        "## Frequency offset (share of 16 digits x 2 phases heard)",
        "",
        "| offset % | both tones | row tone | column tone |",
        "|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['offset_percent']:+.1f} | {r['both']:.2f} | {r['row']:.2f} | {r['column']:.2f} |"
        for r in sweep["frequency"]
    ]
    lines += ["", "## Twist (column minus row, dB)", "", "| twist dB | accepted |", "|---:|---:|"]
    lines += [f"| {r['twist_db']:+.0f} | {r['accepted']:.2f} |" for r in sweep["twist"]]
    lines += ["", "## Tone length (4 alignments)", "", "| ms | accepted |", "|---:|---:|"]
    lines += [f"| {r['ms']:.1f} | {r['accepted']:.2f} |" for r in sweep["duration"]]
    lines += ["", "## White noise (SNR over the whole band)", "", "| SNR dB | accepted |", "|---:|---:|"]
    lines += [f"| {r['snr_db']:.0f} | {r['accepted']:.2f} |" for r in sweep["snr"]]
    hours = ", ".join(f"{kind} {h:.2f} h" for kind, h in result["hours_by_kind"].items())
    lines += ["", f"False events over {result['hours_scanned']:.2f} h ({hours}): {len(result['false_events'])}"]
    lines += [f"- {e['file']}: {e['kind']} at {e['t']:.2f} s {e['detail']}" for e in result["false_events"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(run_dtmf_sweep(ensure_corpus())))
